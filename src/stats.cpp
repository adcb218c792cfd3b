#include "swpu/stats.hpp"

namespace swpu {

const char* to_string(Pass p) {
    switch (p) {
        case Pass::FF: return "FF";
        case Pass::BP: return "BP";
        case Pass::WG: return "WG";
        case Pass::Other: return "other";
    }
    return "?";
}

#define SWPU_COUNTERS(X)                                                                          \
    X(cycles) X(compute_cycles) X(dropped_step_cycles) X(marker_cycles) X(stall_dram_cycles) X(buffer_stall_cycles) X(mask_load_cycles)     \
    X(operand_wait_cycles) X(backpressure_cycles) X(accumulator_stall_cycles) X(bank_conflict_cycles) X(reorder_cycles)     \
    X(vector_cycles) X(dense_macs) X(valid_macs) X(steps) X(steps_dropped) X(lane_slots)         \
    X(idle_group_lane_slots) X(idle_pack_lane_slots) X(switch_traversals) X(switch_hops)         \
    X(scatter_traversals) X(crossbar_routes) X(index_reads) X(zero_detects) X(mask_reads)        \
    X(hamming_ops) X(acc_updates) X(adder_tree_adds) X(vector_ops) X(wbuf_reads) X(wbuf_writes)  \
    X(abuf_reads) X(abuf_writes) X(obuf_reads) X(obuf_writes) X(dram_read_bytes)                 \
    X(dram_write_bytes) X(dram_transactions)

Counters& Counters::operator+=(const Counters& o) {
#define ADD(f) f += o.f;
    SWPU_COUNTERS(ADD)
#undef ADD
    return *this;
}

nlohmann::json Counters::to_json() const {
    nlohmann::json j;
#define PUT(f) j[#f] = f;
    SWPU_COUNTERS(PUT)
#undef PUT
    return j;
}

std::vector<std::string> Counters::names() {
    return {
#define NAME(f) #f,
        SWPU_COUNTERS(NAME)
#undef NAME
    };
}

std::vector<int64_t> Counters::values() const {
    return {
#define VAL(f) f,
        SWPU_COUNTERS(VAL)
#undef VAL
    };
}

}  // namespace swpu
