// Activity counters. Every counter is an exact integer; energy is computed from them afterwards
// (Accelergy convention: action counts x energy per action), so re-pricing needs no re-simulation.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace swpu {

enum class Pass { FF, BP, WG, Other };
const char* to_string(Pass p);

struct Counters {
    // Time.
    int64_t cycles = 0;            // wall cycles of this unit of work (compute + stalls)
    int64_t compute_cycles = 0;    // cycles the PE array issued steps
    int64_t dropped_step_cycles = 0;  // DBL off: fetch cycles of steps no group needed
    int64_t marker_cycles = 0;     // network cycles of window markers (a window without steps)
    int64_t stall_dram_cycles = 0; // waiting for a DMA load (or store drain)
    int64_t buffer_stall_cycles = 0;  // buffer ports could not serve the groups' reads in time
    int64_t mask_load_cycles = 0;  // DBL controller reading a new cluster's mask words
    int64_t operand_wait_cycles = 0;  // network input idle inside a tile: line data or weight word not yet there
    int64_t backpressure_cycles = 0;  // network frozen: the PE array did not take its packet
    int64_t accumulator_stall_cycles = 0;  // PE array waiting for a free accumulator set or output-buffer port
    int64_t bank_conflict_cycles = 0;  // buffer requests that waited a cycle for a bank another requester held
    int64_t reorder_cycles = 0;    // hamming clustering when masks changed
    int64_t vector_cycles = 0;     // non-conv work on the vector unit
    // Work.
    int64_t dense_macs = 0;        // MACs of the dense layer (effective work)
    int64_t valid_macs = 0;        // MACs performed (useful: non-zero weight x non-zero operand)
    int64_t steps = 0;             // issued steps (one weight word broadcast to the groups)
    int64_t steps_dropped = 0;     // DBL off: steps fetched and dropped after zero detection
    int64_t lane_slots = 0;        // G x L x compute_cycles
    int64_t idle_group_lane_slots = 0;  // lanes of groups whose weight is pruned in the step (imbalance)
    int64_t idle_pack_lane_slots = 0;   // lanes of active groups left empty by compaction
    // Sparse datapath activity.
    int64_t switch_traversals = 0; // operand x stage passes through the log network (forward)
    int64_t switch_hops = 0;       // switches set to 'shift' (forward)
    int64_t scatter_traversals = 0;  // bi-directional switches driven in reverse (results back)
    int64_t crossbar_routes = 0;   // operands routed through the crossbar (crossbar routing)
    int64_t index_reads = 0;       // per-weight index reads (crossbar routing)
    int64_t zero_detects = 0;      // operands passed through zero detection
    int64_t mask_reads = 0;        // mask words read by the DBL controller
    int64_t hamming_ops = 0;       // XOR/popcount operations of the reorder unit (word-level)
    int64_t acc_updates = 0;       // accumulator read-modify-writes (FP32 adds)
    int64_t adder_tree_adds = 0;   // WG: products reduced by the adder tree
    int64_t vector_ops = 0;        // vector unit element-ops
    // Memories.
    int64_t wbuf_reads = 0, wbuf_writes = 0;
    int64_t abuf_reads = 0, abuf_writes = 0;
    int64_t obuf_reads = 0, obuf_writes = 0;
    int64_t dram_read_bytes = 0, dram_write_bytes = 0;
    int64_t dram_transactions = 0;

    Counters& operator+=(const Counters& o);
    nlohmann::json to_json() const;
    static std::vector<std::string> names();           // stable order for CSV
    std::vector<int64_t> values() const;               // same order
    double utilization() const { return lane_slots ? double(valid_macs) / double(lane_slots) : 0.0; }
};

// Result of one (layer, pass) or a non-conv layer.
struct LayerPassResult {
    int iteration = 0;
    std::string layer;
    std::string op;
    Pass pass = Pass::FF;
    bool modeled = true;  // false: the datapath does not model this work (reported, never dropped)
    std::string note;
    int64_t start_cycle = 0;
    Counters c;
};

}  // namespace swpu
