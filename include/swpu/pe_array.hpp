// PE array: G groups x L MAC lanes, FP16 x FP16 -> FP32. The PEs are plain C++ state inside this
// module (no module or signal per PE).
//
// Clocked behaviour (cycle engine): lane packets from the compaction network enter a multiplier
// pipeline of `multiplier_latency` stages (WG: plus the adder tree's `reduce_latency` stages). At
// the pipeline's end a packet accumulates in one cycle (functional mode: the FP16 weight word and lane
// operands the packet carries, multiplied exactly and added in FP32): FF/BP into the accumulators of the window
// positions the bi-directional switches return the products to, WG into the step's FP32 weight
// gradients through a read-modify-write of the output buffer. A window's last packet hands its
// accumulator set to the write-back (a write request to the output buffer) and switches to the
// next set; when that set is still writing back, the array stalls and back-pressure reaches the
// network. The tile is done when its last packet has accumulated and every write is acknowledged.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <systemc>

#include "swpu/channel.hpp"
#include "swpu/compaction_network.hpp"
#include "swpu/config.hpp"
#include "swpu/datapath_messages.hpp"
#include "swpu/stats.hpp"

namespace swpu {


// Rounds a float to the nearest FP16 value (round to nearest even), returned as float.
float round_to_fp16(float x);
// FP16 bit pattern <-> float.
uint16_t float_to_fp16_bits(float x);
float fp16_bits_to_float(uint16_t h);
float fp16_to_float(uint16_t h);  // the same by table lookup (hot path)

class PeArray : public sc_core::sc_module {
public:
    sc_core::sc_in<bool> clk;
    sc_core::sc_in<bool> reset;
    In<LanePacket> packets_in;         // from the compaction network
    Out<BufRequest> obuf_request;      // write-back and read-modify-write to the output buffer
    In<BufResponse> obuf_response;     // their acknowledgements
    Out<TileDone> done_out;            // to the controller
    // Decoupled groups: a window's accumulator set written back (FF/BP) or a line's read-modify-write
    // served (WG), to the per-group routers.
    sc_core::sc_port<FifoOutIf<int>, 1, sc_core::SC_ZERO_OR_MORE_BOUND> release_out;

    // Block-level state for the VCD.
    sc_core::sc_signal<int> lanes_busy{"lanes_busy"};
    sc_core::sc_signal<int> groups_busy{"groups_busy"};
    sc_core::sc_signal<int> writebacks_pending{"writebacks_pending"};
    sc_core::sc_signal<int> stall{"stall"};  // 0 none, 1 accumulator set busy, 2 output-buffer request port full

    PeArray(sc_core::sc_module_name name, const ChipConfig& cfg);

    int groups() const { return m_groups; }
    int lanes() const { return m_lanes; }

    // Cycle engine: the pass and cluster of the next tile (configuration registers, written by the
    // controller between tiles).
    void configure(const PassPlan* plan, const CompactionNetwork* net, const std::vector<int>& items, int tile);
    // Counters of the actions this unit performed since the last call.
    Counters take_counters();
    std::string debug_state() const {
        std::string busy;
        for (uint8_t b : m_set_busy) busy += char('0' + b);
        return "pe_array: in flight " + std::to_string(m_in_flight) + ", sets busy " + busy + ", rmw pending " +
               std::to_string(m_rmw_pending) + ", tile end " + std::to_string(m_tile_end) + "; ";
    }

    // Accumulator register files: one FP32 accumulator per set, group and window position.
    void clear_accumulators(int set);
    // One lane's MAC: operands are FP16 values; the product is exact in FP32, the add rounds.
    void mac(int set, int group, int position, float weight, float operand) {
        float& a = m_acc[(size_t(set) * m_groups + group) * m_window + position];
        a = a + weight * operand;
    }
    float accumulator(int set, int group, int position) const {
        return m_acc[(size_t(set) * m_groups + group) * m_window + position];
    }
    // WG: the adder tree of a group sums one cycle's lane products (FP32) into the running gradient.
    static float reduce(const float* products, int n) {
        float s = 0.0f;
        for (int i = 0; i < n; ++i) s += products[i];
        return s;
    }

private:
    void tick();
    void do_reset();
    bool accumulate(const LanePacket& p);  // false: stalled this cycle
    bool accumulate_groups(const LanePacket& p);  // decoupled groups
    void accumulate_group_values(const GroupSlice& sl);
    void accumulate_values(const LanePacket& p);
    bool accumulate_bp_filter(const LanePacket& p);  // filter-oriented BP
    void bp_filter_zero_unwritten();                 // a block's channels no cluster contributed to
    void show(int lanes, int groups, int stall_cause);

    const ChipConfig& m_cfg;
    int m_groups, m_lanes, m_window, m_sets;
    std::vector<float> m_acc;
    // Pipeline registers between the network and the accumulate stage.
    std::vector<LanePacket> m_pipe;
    std::vector<uint8_t> m_pipe_valid;
    int m_depth = 1, m_in_flight = 0;
    // Accumulator sets: which one accumulates, which are writing back.
    int m_set = 0;
    std::vector<uint8_t> m_set_busy;
    std::vector<int> m_write_queue;     // sets in write-back order (acknowledged in order)
    int m_rmw_pending = 0;
    bool m_tile_end = false;
    // Decoupled groups: a slice's events (write-backs, read-modify-writes) issue one request each; a
    // slice whose requests do not all fit waits with its products counted.
    bool m_decoupled = false;
    int m_tile_w0 = 0;
    bool m_slice_counted = false;
    size_t m_slice_event = 0;
    int m_release_pending = 0;
    uint32_t m_rmw_issued = 0;
    bool m_woken = false;
    // Tile context.
    const PassPlan* m_plan = nullptr;
    const CompactionNetwork* m_net = nullptr;
    std::vector<int> m_items;
    int m_real_items = 0;
    // Filter-oriented BP: the channel flag register, one bit per (window, input channel) of the
    // tile's block: the channel's FP32 partial in the output buffer holds data (a read-modify-write
    // adds to it; a plain write starts it).
    std::vector<uint8_t> m_partial_written;
    int m_block_w0 = 0, m_block_x0 = 0, m_block_xn = 0;
    bool m_last_of_block = false;
    int m_tile = 0;
    uint32_t m_tag = 0;
    std::vector<int> m_lane_pos, m_lane_back;
    CompactionNetwork::ReversePaths m_reverse;
    std::vector<float> m_products, m_operands;
    Counters m_k;
    int m_shown_lanes = -1, m_shown_groups = -1, m_shown_stall = -1, m_shown_wb = -1;
};

}  // namespace swpu
