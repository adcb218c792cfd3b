// The fast engine: the step-level model. It walks a plan's steps in C++, counting every action the
// clocked units count, and derives a tile's wall cycles from a per-step timeline of the clocked
// datapath's rules (src/fast_engine.cpp, docs/architecture.md "Two engines, one plan").
#pragma once

#include <cstdint>
#include <vector>

#include "swpu/compaction_network.hpp"
#include "swpu/config.hpp"
#include "swpu/dbl_controller.hpp"
#include "swpu/pass_plan.hpp"
#include "swpu/pe_array.hpp"
#include "swpu/stats.hpp"

namespace swpu {

// Per-cycle observer used by the ticking mode and the VCD: called once per compute cycle with the
// operands delivered to lanes and the groups busy in that cycle.
struct CycleProbe {
    virtual ~CycleProbe() = default;
    virtual void cycle(int lanes_busy, int groups_busy, int segments_busy) = 0;
};

struct TileWalk;  // src/tile_timeline.hpp

class FastEngine {
public:
    // The units lend their combinational logic (mask unions, compaction costs and routes, the
    // accumulators); their clocked processes do not run.
    FastEngine(const PassPlan& plan, DblController& dbl, CompactionNetwork& net, PeArray& pe);

    // Runs the steps of one tile; returns its compute cycles. With a probe, the per-cycle activity
    // is reported cycle by cycle (ticking mode); counts are identical either way.
    int64_t run_tile(const Tile& t, Counters& k, CycleProbe* probe);
    // The last run_tile's wall cycles on the clocked datapath (>= its compute cycles).
    int64_t tile_wall() const { return m_tile_wall; }
    // The cycles the clocked datapath spends around a tile's compute cycles (fill of the read and
    // issue path, drain of the network, multiplier and write-back), from the same rules.
    int64_t tile_fill_drain(const Tile& t) const;

private:
    // Loads the cluster's masks into the DBL controller when the tile starts a new cluster; returns
    // the cycles of the load.
    int64_t load_masks(const Tile& t, const std::vector<int>& items, Counters& k);
    // Lockstep groups (SWPU): one compaction per step serves the cluster (FF/BP); WG packs per group.
    template <bool Reduce, bool Functional>
    int64_t run_tile_impl(const Tile& t, Counters& k, CycleProbe* probe);
    // One FF/BP step (line, s) of window w: valid-table entry idx.
    template <bool Functional>
    void ff_step(TileWalk& wk, int w, int line, int s, size_t idx);
    // One WG step: per group, the operand's and the group's output gradient's valid bits.
    template <bool Functional>
    void wg_step(TileWalk& wk, int w, int line, int s, size_t idx);
    // DBL off: a step no group needs is fetched, zero-detected and dropped in one issue cycle.
    void drop_step(TileWalk& wk, bool weight_word);
    // FF/BP functional mode: the step's products into the groups' accumulators.
    void ff_products(const TileWalk& wk, int w, int line, int s, uint64_t valid, int cycles);
    // The probe's per-cycle activity of an FF/BP step shared by `active` groups.
    void probe_ff(CycleProbe& probe, uint64_t valid, int cycles, int active) const;
    // The probe's per-cycle activity of per-group packed steps (WG, filter-oriented BP).
    void probe_groups(CycleProbe& probe, const uint64_t* valid, const int* cycles, int max_cycles) const;
    // The end of a window: a marker when it had no step, FF/BP's write-back.
    template <bool Reduce, bool Functional>
    void end_window(TileWalk& wk, const Tile& t, int w, int64_t window_cycles0);
    // Decoupled groups: the crossbar machine, or log routing with pe_array.group_sync = decoupled
    // (src/fast_engine_decoupled.cpp).
    int64_t run_tile_decoupled(const Tile& t, Counters& k, CycleProbe* probe);
    template <bool Xbar, bool Reduce, bool Functional>
    int64_t decoupled_impl(const Tile& t, Counters& k, CycleProbe* probe);
    // Filter-oriented BP (src/fast_engine_bp_filter.cpp): FF's clusters, per-group operand lines,
    // a cross-group sum per input channel into FP32 partials in the output buffer.
    template <bool Functional>
    int64_t run_tile_bp_filter(const Tile& t, Counters& k, CycleProbe* probe);
    int64_t bp_filter_store_words(const TileWalk& wk, int w) const;  // the groups' rows of window w
    template <bool Functional>
    bool bp_filter_channel(TileWalk& wk, int w, int x);  // false when the channel had no step
    template <bool Functional>
    bool bp_filter_step(TileWalk& wk, int w, int x, int r, int s);
    template <bool Functional>
    void bp_filter_channel_end(TileWalk& wk, const Tile& t, int w, int x);

    const PassPlan& m_plan;
    const ChipConfig& m_cfg;
    DblController& m_dbl;
    CompactionNetwork& m_net;
    PeArray& m_pe;
    std::vector<uint8_t> m_cost_cycles, m_cost_valid;  // FF/BP: per (window, line, position)
    std::vector<uint16_t> m_cost_hops;
    std::vector<int> m_lane_pos;
    CompactionNetwork::ReversePaths m_reverse;
    int64_t m_loaded_cluster = -1;        // cluster (and block of mask rows) in the DBL controller
    std::vector<uint8_t> m_partial_valid;  // filter-oriented BP: [window - w_begin][channel] partial written
    int64_t m_tile_wall = 0;
};

}  // namespace swpu
