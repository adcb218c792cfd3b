// Filter-oriented BP on the fast engine (pe_array.bp_orientation = "filter"; docs/architecture.md,
// "Filter-oriented BP").
//
// The cluster is FF's: group g holds filter k_g and walks FF's lines (c, r) and positions s, the
// union of the cluster's masks the reorder unit made tight. Its operand is its own filter's output
// gradient: at the start of a window each group reads its filter's R rows (of the zero-inserted dO
// the window's dI positions need) into its line store, so a step's valid bits differ per group
// (dO[k_g] shifted by (r, s), where W[k_g, c, r, s] is kept) and every group packs them through its
// own network. Its products return to their dI positions through its own bi-directional switches
// into its accumulators. When the cluster has walked an input channel's lines, an adder tree sums
// the G groups' accumulators position by position: the cluster's part of dI[c] over the window,
// which a read-modify-write adds into the channel's FP32 partial in the output buffer (a plain
// write for the first cluster that contributes to it). After the block's last cluster the partials
// leave for DRAM in the operand format (the tile's store).
#include <algorithm>

#include "swpu/fast_engine.hpp"
#include "tile_timeline.hpp"

namespace swpu {

template <bool Functional>
int64_t FastEngine::run_tile_bp_filter(const Tile& t, Counters& k, CycleProbe* probe) {
    std::vector<int> items;
    m_plan.cluster_items(t.cluster, items);
    const int64_t mask_cycles = load_masks(t, items, k);
    TileTimeline tl(m_cfg, m_net.stages(), /*reduce=*/true, m_cfg.pe_array.bp_line_sets);
    tl.begin(mask_cycles);
    const auto& g = m_plan.m_g;
    const int G = m_plan.m_G, L = m_plan.m_L, S = g.S, R = g.R;
    const bool dbl = m_dbl.enabled();
    const uint64_t full = S >= 64 ? ~0ull : ((1ull << S) - 1);
    const int stages = m_net.stages();
    const bool xbar = m_net.crossbar();
    const int64_t wf = m_plan.m_weight_fetch_accesses;
    const int obits = m_cfg.buffers.output.width_bits;
    int real = 0;
    for (int it : items) real += it >= 0;
    const int X = t.x_end - t.x_begin;
    if (t.cluster == 0) m_partial_valid.assign(size_t(t.w_end - t.w_begin) * X, 0);
    int64_t cycles = 0;
    uint64_t vg[64];
    size_t gidx[64];
    int cg[64];
    float partial[64];

    for (int w = t.w_begin; w < t.w_end; ++w) {
        const int64_t window_cycles0 = cycles;
        // The groups' line stores: each real group's R output-gradient rows of the window. DBL reads
        // only rows that hold a non-zero for some s (it sees the bitmap); without DBL every row.
        const int64_t row_words = m_plan.line_read_accesses(w);
        int64_t store_words = 0;
        for (int gi = 0; gi < G; ++gi) {
            if (items[gi] < 0) continue;
            for (int r = 0; r < R; ++r) {
                const size_t base = (size_t(w) * m_plan.m_lines + size_t(items[gi]) * R + r) * S;
                bool any = !dbl;
                for (int s = 0; s < S && !any; ++s) any = m_plan.m_valid[base + s] != 0;
                if (any) store_words += row_words;
            }
        }
        bool rows_read = false;
        auto read_rows = [&]() -> int64_t {  // the rows' words when this step is the window's first
            if (rows_read) return 0;
            rows_read = true;
            k.abuf_reads += store_words;
            return store_words;
        };
        const int positions = m_plan.window_positions(w);
        const int64_t partial_words = (int64_t(positions) * 32 + obits - 1) / obits;
        for (int x = t.x_begin; x < t.x_end; ++x) {
            bool channel_steps = false;
            if (Functional) m_pe.clear_accumulators(0);
            for (int r = 0; r < R; ++r) {
                const int line = x * R + r;
                const uint64_t u = m_dbl.union_row(line);
                if (dbl && !u) continue;
                for (uint64_t sb = dbl ? u : full; sb; sb &= sb - 1) {
                    const int s = __builtin_ctzll(sb);
                    int act = 0, maxc = 0;
                    for (int gi = 0; gi < G; ++gi) {
                        cg[gi] = 0;
                        vg[gi] = 0;
                        if (items[gi] < 0 || !((m_dbl.group_row(gi, line) >> s) & 1u)) continue;
                        ++act;
                        gidx[gi] = (size_t(w) * m_plan.m_lines + size_t(items[gi]) * R + r) * S + s;
                        vg[gi] = m_plan.m_valid[gidx[gi]];
                        cg[gi] = m_cost_cycles[gidx[gi]];
                        maxc = std::max(maxc, cg[gi]);
                    }
                    const int64_t lw = act && maxc ? read_rows() : (dbl ? 0 : read_rows());
                    k.wbuf_reads += dbl && !(act && maxc) ? 0 : wf;
                    if (!dbl) k.zero_detects += G;
                    if (act == 0 || maxc == 0) {
                        // Nothing to compute: DBL never issues it; without DBL the weight word is
                        // fetched, zero-detected and dropped in one issue cycle.
                        if (dbl) continue;
                        tl.step(lw, wf, 1, 0);
                        ++k.steps_dropped;
                        ++k.dropped_step_cycles;
                        ++cycles;
                        if (probe) probe->cycle(0, 0, 0);
                        continue;
                    }
                    ++k.steps;
                    channel_steps = true;
                    tl.step(lw, wf, maxc, 0);
                    int busy = 0;
                    for (int gi = 0; gi < G; ++gi) {
                        if (!cg[gi]) continue;
                        ++busy;
                        const int v = m_cost_valid[gidx[gi]];
                        k.valid_macs += v;
                        k.acc_updates += v;
                        k.idle_pack_lane_slots += int64_t(L) * maxc - v;
                        if (xbar) {
                            k.crossbar_routes += 2 * int64_t(v);  // to the lanes, back to the positions
                        } else {
                            k.switch_traversals += int64_t(v) * stages;
                            k.switch_hops += m_cost_hops[gidx[gi]];
                            k.scatter_traversals += int64_t(v) * stages;
                        }
                    }
                    k.idle_group_lane_slots += int64_t(G - busy) * L * maxc;
                    cycles += maxc;
                    if (probe) {
                        for (int j = 0; j < maxc; ++j) {
                            int lanes = 0, groups = 0;
                            for (int gi = 0; gi < G; ++gi)
                                if (cg[gi] > j) {
                                    lanes += m_net.lanes_busy_in_cycle(vg[gi], j);
                                    ++groups;
                                }
                            probe->cycle(lanes, groups, 0);
                        }
                    }
                    if constexpr (Functional) {
                        for (int gi = 0; gi < G; ++gi) {
                            if (!cg[gi]) continue;
                            const float wv = m_plan.weight_value(items[gi], x, r, s);
                            if (!xbar) m_net.reverse_paths(vg[gi], m_reverse);  // this group's switches
                            for (int j = 0; j < cg[gi]; ++j) {
                                m_net.route(vg[gi], j, m_lane_pos);
                                for (int ln = 0; ln < L; ++ln) {
                                    const int pos = m_lane_pos[ln];
                                    if (pos < 0) continue;
                                    m_pe.mac(0, gi, xbar ? pos : m_reverse.back(ln, j), wv,
                                             m_plan.source_value(w, pos, items[gi], r, s));
                                }
                            }
                        }
                    }
                }
            }
            if (!channel_steps) continue;
            // The cross-group sum of channel x over the window, added into its FP32 partial.
            uint8_t& written = m_partial_valid[size_t(w - t.w_begin) * X + (x - t.x_begin)];
            const bool rmw = written != 0;
            k.adder_tree_adds += int64_t(real - 1) * positions;
            k.obuf_writes += partial_words;
            if (rmw) k.obuf_reads += partial_words;
            tl.end_window(partial_words, rmw);
            if constexpr (Functional) {
                for (int pos = 0; pos < positions; ++pos) {
                    int n = 0;
                    for (int gi = 0; gi < G; ++gi)
                        if (items[gi] >= 0) partial[n++] = m_pe.accumulator(0, gi, pos);
                    const float sum = PeArray::reduce(partial, n);
                    float& out = m_plan.grad_in_at(w, pos, x);
                    out = rmw ? out + sum : sum;
                }
            }
            written = 1;
        }
        if (cycles == window_cycles0 && w + 1 == t.w_end) {
            // A tile whose last window has no step: a marker carries the tile's end.
            ++cycles;
            ++k.marker_cycles;
            if (probe) probe->cycle(0, 0, 0);
            tl.step(0, 0, 1, 0);
        }
    }
    if constexpr (Functional) {
        // A channel no cluster contributed to has a zero gradient.
        if (t.last_of_block)
            for (int w = t.w_begin; w < t.w_end; ++w)
                for (int x = t.x_begin; x < t.x_end; ++x)
                    if (!m_partial_valid[size_t(w - t.w_begin) * X + (x - t.x_begin)])
                        for (int pos = 0; pos < m_plan.window_positions(w); ++pos) m_plan.grad_in_at(w, pos, x) = 0.0f;
    }
    k.compute_cycles += cycles;
    k.lane_slots += int64_t(G) * L * cycles;
    m_tile_wall = tl.wall();
    return cycles;
}

template int64_t FastEngine::run_tile_bp_filter<true>(const Tile&, Counters&, CycleProbe*);
template int64_t FastEngine::run_tile_bp_filter<false>(const Tile&, Counters&, CycleProbe*);

}  // namespace swpu
