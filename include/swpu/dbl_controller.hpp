// Detect-before-load controller (paper technique 2).
//
// For the cluster in the PE groups it forms, from the mask metadata, the union of the groups' line
// masks and for every line (x, r) the positions s that some group keeps, and the number of groups
// active at each (x, r, s). The issue stage then reads only those lines and weight words (and skips
// a step whose operand window is empty, from the activation bitmap). Disabled, the controller
// issues every line and position: the data is read, zero-detected, and dropped afterwards.
//
// Clocked behaviour (cycle engine): on a tile command it reads the cluster's mask words
// (`mask_words_per_cycle` per cycle) when the cluster changed, then walks the tile's windows. For each
// window it detects the steps from the masks and bitmaps, and issues one step per cycle: a read of
// the step's line to the activation buffer when the line starts (only with a free line register:
// credits returned by the network), a read of the step's weight word to the weight buffer, and the
// step command to the network. A full channel stalls the issue.
//
// Decoupled groups (pe_array.group_sync = decoupled): the controller detects, per line of the tile,
// every group's own steps (GroupLineTable) and issues one line per cycle: the line's read to the
// activation buffer, the cluster's weights of the line to the weight buffer, and the line command to
// the per-group routers. A line needs a free entry in every group's operand FIFO: group_fifo_depth
// credits, one returned when every group has finished the line.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <systemc>

#include "swpu/channel.hpp"
#include "swpu/config.hpp"
#include "swpu/datapath_messages.hpp"
#include "swpu/stats.hpp"

namespace swpu {

struct Tile;

class DblController : public sc_core::sc_module {
public:
    sc_core::sc_in<bool> clk;
    sc_core::sc_in<bool> reset;
    In<TileCmd> cmd_in;              // from the controller
    In<int> credit_in;               // freed line registers, from the network
    Out<BufRequest> line_request;    // to the activation buffer
    Out<BufRequest> weight_request;  // to the weight buffer
    Out<StepCmd> steps_out;          // to the compaction network

    sc_core::sc_signal<int> state{"state"};    // 0 idle, 1 mask load, 2 issue, 3 issue stalled
    sc_core::sc_signal<int> window{"window"};
    sc_core::sc_signal<int> line{"line"};
    sc_core::sc_signal<int> credits{"credits"};

    DblController(sc_core::sc_module_name name, const ChipConfig& cfg);

    bool enabled() const { return m_enabled; }

    // Loads the cluster: items[g] is the item held by group g (-1 = idle group in a layer's last
    // cluster). `mask` is in the groups' orientation, rows [item][x][r]: the layer's mask for FF/WG
    // (items are filters), its transpose for BP (items are input channels).
    // Only rows x in [x0, x1) are read (x1 < 0: all); the others read as pruned (filter-oriented BP
    // loads the lines of its tile's block of input channels).
    void load_cluster(const WeightMask& mask, const std::vector<int>& items, Counters& k, int x0 = 0, int x1 = -1);
    // Cycles the clocked controller spends reading the mask words of one cluster load.
    int64_t mask_load_cycles(int64_t mask_words) const {
        return (mask_words + m_words_per_cycle - 1) / m_words_per_cycle;
    }

    int lines() const { return m_lines; }  // Rd * R
    int S() const { return m_S; }
    uint64_t union_row(int line) const { return m_union[line]; }
    uint64_t group_row(int g, int line) const { return m_group_rows[size_t(g) * m_lines + line]; }
    int active_groups(int line, int s) const { return m_count[size_t(line) * m_S + s]; }
    uint64_t group_enables(int line, int s) const { return m_enable[size_t(line) * m_S + s]; }
    int group_count() const { return m_groups; }

    // Cycle engine: the pass of the next tiles (configuration register).
    void configure(const PassPlan* plan);
    // Decoupled groups: the current tile's lines and every group's steps on them.
    const GroupLineTable& group_lines() const { return m_table; }
    Counters take_counters();
    std::string debug_state() const;

private:
    void tick();
    void build_window(int w, bool last_window);
    void build_window_bp_filter(const Tile& t, int w);  // filter-oriented BP: the window's steps of the tile's block
    bool issue_line();  // one line read ahead; false when none was issued
    bool issue_step();  // one step; false when stalled
    void build_group_lines(int w, bool last_window);  // decoupled groups: the window's lines
    bool issue_group_line();                          // decoupled groups: one line; false when stalled
    void show(int st);

    bool m_enabled;
    int m_words_per_cycle;
    int m_groups = 0, m_lines = 0, m_S = 0;
    std::vector<uint64_t> m_union;       // per line (x*R + r): S-bit union over the cluster
    std::vector<uint64_t> m_group_rows;  // per group, per line
    std::vector<uint8_t> m_count;        // per line, per s: groups active
    std::vector<uint64_t> m_enable;      // per line, per s: bit g = group g keeps the weight

    // Cycle engine state.
    const ChipConfig& m_cfg;
    const PassPlan* m_plan = nullptr;
    enum State { Idle, MaskLoad, Issue };
    State m_state = Idle;
    int64_t m_loaded_cluster = -1;  // cluster (and, filter-oriented BP, block of input channels) whose masks are loaded
    int64_t m_mask_wait = 0;
    std::vector<int> m_items;     // the cluster in the groups
    std::vector<StepCmd> m_list;  // the tile's steps, in issue order
    std::vector<size_t> m_line_starts;  // indices of the steps that start a line
    std::vector<int64_t> m_line_words;  // each line's read (filter-oriented BP: the groups' dO rows of the window)
    int m_line_registers = 0;           // credits when every line register is free
    size_t m_idx = 0, m_next_line = 0;
    int m_credits = 0;
    int64_t m_lines_read = 0, m_words_read = 0;
    bool m_decoupled, m_xbar;
    GroupLineTable m_table;
    int32_t m_rmw_lines = 0;
    bool m_woken = false;
    int m_shown_state = -1, m_shown_window = -1, m_shown_line = -1, m_shown_credits = -1;
    Counters m_k;
};

}  // namespace swpu
