// Log-routing compaction network with bi-directional switches (paper technique 3), and the crossbar
// of the unstructured baseline.
//
// A step offers a window of N candidate positions with a valid bit each. The window is split into
// D disconnected segments of N/D positions; each segment's log network (log2(N/D) stages) moves
// every valid element left by its count of preceding invalid elements, one power of two per stage,
// and its L/D output lanes take the packed elements, L/D per cycle. The fullest segment sets the
// pace: cycles = max_d ceil(valid_d / (L/D)). Driven in reverse, the same switches return each
// product to its original position (scatter). The crossbar instead routes any candidate to any of
// the L lanes: cycles = ceil(valid / L), with one per-weight index read per operand.
//
// Clocked behaviour (cycle engine): the input stage takes a step from the DBL controller when its
// line is in a line register (a read response of the activation buffer) and its weight word has
// arrived (a response of the weight buffer); it then emits one lane packet per cycle for the step's
// cycles into the log stages, modelled as `stages` pipeline registers (at least one: the output
// register). A full PE-array input freezes the stages (back-pressure). A dropped step (DBL off)
// spends one input cycle and emits nothing; a window marker (a window without steps) spends one
// cycle so that its write-back is triggered. When a line's last step leaves the input stage its line
// register is free and a credit returns to the DBL controller.
#pragma once

#include <cstdint>
#include <deque>
#include <stdexcept>
#include <string>
#include <vector>

#include <systemc>

#include "swpu/channel.hpp"
#include "swpu/config.hpp"
#include "swpu/datapath_messages.hpp"
#include "swpu/stats.hpp"

namespace swpu {

// Functional mode: the FP16 data of one lane packet. FF/BP: the step's weight word (one weight per
// group, from the weight buffer) and the operand each lane took from the line register. WG: per
// group, the activation and the output gradient each lane of the group's network took (the groups'
// networks pack different positions). `lanes` marks the lanes carrying an operand.
struct LanePayload {
    uint32_t seq = 0;                 // the packet this slot belongs to
    std::vector<uint16_t> weight;     // [G]
    std::vector<uint16_t> operand;    // FF/BP: [L]; WG: [G][L] activations
    std::vector<uint16_t> grad;       // WG: [G][L] output gradients
    std::vector<uint64_t> lanes;      // FF/BP: [1]; WG: [G]
};

// Decoupled groups: what the G per-group routers put on the lanes in one cycle, and the events of that
// cycle: lines every group has now finished (WG: their read-modify-writes), windows every group has
// now finished (FF/BP: their write-backs) and the tile's end. A lane packet names it by `payload`; the
// slices live in a ring as deep as the path to the PE array's accumulate stage.
struct GroupSlice {
    uint32_t seq = 0;
    uint64_t groups = 0;               // groups that emit a packet this cycle
    std::vector<uint64_t> valid;       // [G] the operand bits of the group's step
    std::vector<int32_t> window;       // [G]
    std::vector<int16_t> line;         // [G]
    std::vector<int8_t> s;             // [G]
    std::vector<uint8_t> cycle, drop;  // [G] which cycle of the step; a dropped step (DBL off)
    std::vector<int32_t> window_ends;  // FF/BP: windows whose last product is in this cycle
    std::vector<int32_t> rmw_words;    // WG: the read-modify-writes of the lines finished in this cycle
    bool tile_end = false;
    LanePayload data;                  // functional mode: the FP16 operands and weights
};

// What one step through the network costs.
struct CompactionCost {
    int cycles = 0;   // cycles to drain the packed operands onto the lanes
    int valid = 0;    // operands (valid positions)
    int hops = 0;     // switches set to 'shift' over all stages (forward direction)
};

class CompactionNetwork : public sc_core::sc_module {
public:
    sc_core::sc_in<bool> clk;
    sc_core::sc_in<bool> reset;
    In<StepCmd> steps_in;          // from the DBL controller
    In<BufResponse> line_in;       // line data from the activation buffer
    In<BufResponse> weight_in;     // weight words from the weight buffer
    Out<LanePacket> packets_out;   // to the PE array
    Out<int> credit_out;           // line registers freed, back to the DBL controller
    // Decoupled groups: accumulator sets written back (FF/BP) or read-modify-writes served (WG), from
    // the PE array; gates a group's start of a window or line.
    sc_core::sc_port<FifoInIf<int>, 1, sc_core::SC_ZERO_OR_MORE_BOUND> release_in;

    sc_core::sc_signal<int> stage_valid{"stage_valid"};  // pipeline registers holding a packet
    sc_core::sc_signal<int> input_state{"input_state"};  // 0 idle, 1 step, 2 wait line, 3 wait weight, 4 frozen

    // `functional`: lane packets carry operand values (simulation.mode = functional).
    CompactionNetwork(sc_core::sc_module_name name, const ChipConfig& cfg, bool functional = false);

    // Cycle engine: the pass of the next tile and the cluster in the groups (configuration
    // registers). The plan supplies WG's per-group gradient bits (may be null for FF/BP).
    void configure(Pass pass, const PassPlan* plan, const std::vector<int>& items);
    // Decoupled groups: the tile's line table (the DBL controller's) and its first window.
    void configure_groups(const GroupLineTable* table, int first_window);
    bool decoupled() const { return m_decoupled; }
    const GroupSlice& slice(uint32_t seq) const {
        const GroupSlice& sl = m_slices[seq & (m_slices.size() - 1)];
        if (sl.seq != seq) throw std::logic_error("compaction network: a group slice was overwritten in flight");
        return sl;
    }
    Counters take_counters();
    std::string debug_state() const {
        if (m_decoupled) {
            std::string gs;
            for (const GroupState& g : m_gs) gs += " " + std::to_string(g.ptr) + (g.busy ? "*" : "");
            return "compaction_network (decoupled): lines received " + std::to_string(m_received) + ", arrived " +
                   std::to_string(m_arrived) + ", freed " + std::to_string(m_freed) + ", released " +
                   std::to_string(m_released - m_release_base) + ", act/weight answers " + std::to_string(m_act_avail) +
                   "/" + std::to_string(m_weight_avail) + ", group lines" + gs + "; ";
        }
        return "compaction_network: step " + std::to_string(m_step_j) + "/" + std::to_string(m_step_cycles) +
               ", in stages " + std::to_string(m_in_pipe) + ", line loaded " + std::to_string(m_line_loaded) +
               ", steps visible " + std::to_string(steps_in->visible()) + ", lines visible " +
               std::to_string(line_in->visible()) + ", weights visible " + std::to_string(weight_in->visible()) + "; ";
    }

    bool crossbar() const { return m_crossbar; }
    int window() const { return m_window; }
    int segments() const { return m_segments; }
    int segment_width() const { return m_seg_width; }
    int lanes() const { return m_lanes; }
    int stages() const { return m_stages; }

    // Cost of a window with the given valid bits (bit i = position i of the window).
    CompactionCost cost(uint64_t valid) const {
        CompactionCost c;
        if (m_crossbar) {
            c.valid = __builtin_popcountll(valid);
            c.cycles = m_cycles_of[c.valid];
            return c;
        }
        for (int d = 0; d < m_segments; ++d) {
            const uint64_t seg = (valid >> (d * m_seg_width)) & m_seg_mask;
            int n, h;
            if (!m_seg_table.empty()) {
                n = __builtin_popcountll(seg);
                h = m_seg_table[seg];
            } else {
                n = __builtin_popcountll(seg);
                h = hops_of_segment(seg);
            }
            c.valid += n;
            c.hops += h;
            const int cyc = m_cycles_of[n];
            if (cyc > c.cycles) c.cycles = cyc;
        }
        return c;
    }

    // Operands delivered to the lanes in cycle j (0-based) of a window: the per-cycle view that
    // the ticking mode and the VCD use. Sums over j to cost(valid).valid.
    int lanes_busy_in_cycle(uint64_t valid, int j) const;
    // Filter-oriented BP: group g's valid bits at (line, s) of window w, its own filter's dO row
    // shifted by (r, s) (0 when the group does not keep the weight).
    uint64_t bp_filter_valid(const LanePacket& p, int g) const;
    bool bp_filter() const { return m_bp_filter; }

    // Functional view: for cycle j of the window, the window position feeding each lane
    // (-1 = idle lane). Lane l of segment d takes the (j*L/D + l)-th valid element of segment d.
    void route(uint64_t valid, int j, std::vector<int>& lane_position) const;

    // Reverse direction (bi-directional switches), stage by stage: the control bits each stage set
    // when the window's operands went forward (bit p of stage b: the element at p after stage b
    // arrived shifted by 2^b) drive the same switches backwards, so a result leaving lane `lane` in
    // cycle `cycle` of the step moves right by 2^b wherever stage b had shifted. A wrong control bit
    // returns a result to a wrong position.
    struct ReversePaths {
        int stages = 0, seg_width = 0, lanes_per_seg = 0;
        uint64_t ctrl[64][7] = {};  // [segment][stage]
        int back(int lane, int cycle) const;  // window position the lane's result returns to
    };
    void reverse_paths(uint64_t valid, ReversePaths& out) const;
    int scatter(uint64_t valid, int lane, int cycle) const {
        ReversePaths r;
        reverse_paths(valid, r);
        return r.back(lane, cycle);
    }
    // Fault injection (tests): flip the control bit of `stage` at `position` of `segment` in every
    // reverse traversal from now on.
    void inject_switch_fault(int segment, int stage, int position) {
        m_fault_segment = segment;
        m_fault_stage = stage;
        m_fault_position = position;
    }

    // Fault injection (tests): a stuck sign wire on output lane `lane`: every FP16 operand that
    // lane carries from now on has its sign flipped (functional mode).
    void inject_lane_fault(int lane) { m_fault_lane = lane; }

    static int hops_of_segment(uint64_t seg);

    // The data of a packet in flight (functional mode). Packets leave the network, wait in the PE
    // array's input FIFO and pipeline, and are consumed in order: the payloads live in a ring as
    // deep as that path, so a slot is reused only after its packet has accumulated.
    const LanePayload& payload(uint32_t seq) const {
        const LanePayload& pl = m_payloads[seq & (m_payloads.size() - 1)];
        if (pl.seq != seq) throw std::logic_error("compaction network: a packet's payload was overwritten in flight");
        return pl;
    }

private:
    void fill_payload(LanePacket& p);
    void tick();
    void input_stage();
    void start_step(const StepCmd& st);
    void show_state(int state);
    // Decoupled groups.
    struct GroupState {
        size_t ptr = 0;          // the next line of the tile the group has not finished
        bool busy = false;
        uint32_t step = 0, step_end = 0;
        int j = 0, cycles = 0;
        int64_t work = 0, valid = 0;  // the tile's cycles and operands of the group
    };
    void group_stage();
    bool group_may_start(const GroupLine& gl) const;
    void group_start_step(int g);
    void group_tile_end();
    void fill_group_payload(GroupSlice& sl, int g);
    int64_t now_cycle();

    // Cycle engine state.
    int m_fault_segment = -1, m_fault_stage = -1, m_fault_position = -1, m_fault_lane = -1;
    Pass m_pass = Pass::FF;
    bool m_bp_filter = false;
    const PassPlan* m_plan = nullptr;
    std::vector<int> m_items;
    std::vector<LanePacket> m_pipe;
    std::vector<uint8_t> m_pipe_valid;
    int m_in_pipe = 0;
    StepCmd m_step;
    int m_step_cycles = 0, m_step_j = 0;  // j < cycles: a step is being emitted
    bool m_line_loaded = false;
    bool m_woken = false;
    int m_shown_state = -1, m_shown_valid = -1;
    Counters m_k;

    bool m_crossbar;
    int m_window, m_segments, m_seg_width, m_lanes, m_groups, m_lanes_per_seg, m_stages;
    uint64_t m_seg_mask;
    std::vector<LanePayload> m_payloads;  // functional mode: ring of packet data (power-of-two size)
    uint32_t m_seq = 0;
    std::vector<int> m_lane_pos;
    // Decoupled groups: the per-group routers' state and the operand FIFOs' shared storage (an entry
    // is freed when every group has finished its line).
    bool m_decoupled;
    int m_fifo_depth, m_sets;
    const GroupLineTable* m_table = nullptr;
    int m_tile_w0 = 0;
    std::vector<GroupState> m_gs;
    std::deque<int32_t> m_cmds;  // lines announced, data not yet arrived
    size_t m_arrived = 0, m_freed = 0, m_received = 0;
    int m_act_avail = 0, m_weight_avail = 0;
    int64_t m_released = 0;        // windows written back (FF/BP) or lines served (WG) since reset
    int64_t m_release_events = 0;  // write-backs and read-modify-writes sent to the PE array since reset
    int64_t m_release_base = 0;    // m_release_events when the tile started
    int m_credit_pending = 0;
    int64_t m_first_arrival = -1, m_last_work = -1;
    std::vector<GroupSlice> m_slices;
    uint32_t m_slice_seq = 0;
    uint64_t m_period_ps = 0;
    std::vector<uint16_t> m_seg_table;  // hops per segment pattern when the segment is <= 16 wide
    int m_cycles_of[65];                // cycles to drain n packed operands of a segment
};

}  // namespace swpu
