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
    TileWalk wk(m_cfg, m_net.stages(), /*reduce=*/true, m_cfg.pe_array.bp_line_sets, k, probe);
    m_plan.cluster_items(t.cluster, wk.items);
    wk.tl.begin(load_masks(t, wk.items, k));
    if (t.cluster == 0) m_partial_valid.assign(size_t(t.w_end - t.w_begin) * (t.x_end - t.x_begin), 0);
    for (int w = t.w_begin; w < t.w_end; ++w) {
        const int64_t window_cycles0 = wk.cycles;
        wk.new_line(bp_filter_store_words(wk, w));  // read with the window's first step
        for (int x = t.x_begin; x < t.x_end; ++x)
            if (bp_filter_channel<Functional>(wk, w, x)) bp_filter_channel_end<Functional>(wk, t, w, x);
        if (wk.line_read) wk.tl.end_line();  // the line-store set frees when the window's last step has left
        if (wk.cycles == window_cycles0 && w + 1 == t.w_end) {
            // A tile whose last window has no step: a marker carries the tile's end.
            ++wk.cycles;
            ++k.marker_cycles;
            if (probe) probe->cycle(0, 0, 0);
            wk.tl.step(0, 0, 1, 0);
        }
    }
    if constexpr (Functional) {
        // A channel no cluster contributed to has a zero gradient.
        if (t.last_of_block)
            for (int w = t.w_begin; w < t.w_end; ++w)
                for (int x = t.x_begin; x < t.x_end; ++x)
                    if (!m_partial_valid[size_t(w - t.w_begin) * (t.x_end - t.x_begin) + (x - t.x_begin)])
                        for (int pos = 0; pos < m_plan.window_positions(w); ++pos) m_plan.grad_in_at(w, pos, x) = 0.0f;
    }
    k.compute_cycles += wk.cycles;
    k.lane_slots += int64_t(m_plan.m_G) * m_plan.m_L * wk.cycles;
    m_tile_wall = wk.tl.wall();
    return wk.cycles;
}

int64_t FastEngine::bp_filter_store_words(const TileWalk& wk, int w) const {
    // Each real group's R output-gradient rows of the window. DBL reads only rows that hold a
    // non-zero for some s (it sees the bitmap); without DBL every row.
    const int R = m_plan.m_g.R, S = m_plan.m_g.S;
    const int64_t row_words = m_plan.line_read_accesses(w);
    int64_t words = 0;
    for (int item : wk.items) {
        if (item < 0) continue;
        for (int r = 0; r < R; ++r) {
            const size_t base = (size_t(w) * m_plan.m_lines + size_t(item) * R + r) * S;
            bool any = !m_dbl.enabled();
            for (int s = 0; s < S && !any; ++s) any = m_plan.m_valid[base + s] != 0;
            if (any) words += row_words;
        }
    }
    return words;
}

template <bool Functional>
bool FastEngine::bp_filter_channel(TileWalk& wk, int w, int x) {
    // Input channel x's lines (x, r) and positions s, the cluster's union (every one without DBL).
    const int R = m_plan.m_g.R, S = m_plan.m_g.S;
    const bool dbl = m_dbl.enabled();
    const uint64_t full = S >= 64 ? ~0ull : ((1ull << S) - 1);
    if (Functional) m_pe.clear_accumulators(0);
    bool steps = false;
    for (int r = 0; r < R; ++r) {
        const uint64_t u = m_dbl.union_row(x * R + r);
        if (dbl && !u) continue;
        for (uint64_t sb = dbl ? u : full; sb; sb &= sb - 1) steps |= bp_filter_step<Functional>(wk, w, x, r, __builtin_ctzll(sb));
    }
    return steps;
}

template <bool Functional>
bool FastEngine::bp_filter_step(TileWalk& wk, int w, int x, int r, int s) {
    // Per group: its filter's dO bits shifted by (r, s), where it keeps W[k_g, x, r, s].
    Counters& k = wk.k;
    const int G = m_plan.m_G, L = m_plan.m_L, R = m_plan.m_g.R, S = m_plan.m_g.S, line = x * R + r;
    uint64_t vg[64];
    size_t gidx[64];
    int cg[64];
    int act = 0, maxc = 0;
    for (int gi = 0; gi < G; ++gi) {
        cg[gi] = 0;
        vg[gi] = 0;
        if (wk.items[gi] < 0 || !((m_dbl.group_row(gi, line) >> s) & 1u)) continue;
        ++act;
        gidx[gi] = (size_t(w) * m_plan.m_lines + size_t(wk.items[gi]) * R + r) * S + s;
        vg[gi] = m_plan.m_valid[gidx[gi]];
        cg[gi] = m_cost_cycles[gidx[gi]];
        maxc = std::max(maxc, cg[gi]);
    }
    if (act == 0 || maxc == 0) {
        drop_step(wk, true);
        return false;
    }
    const int64_t lw = wk.take_line();
    const int64_t wf = m_plan.m_weight_fetch_accesses;
    k.wbuf_reads += wf;  // FF's weight word: W[k_g, x, r, s] of every group
    if (!m_dbl.enabled()) k.zero_detects += G;
    ++k.steps;
    wk.tl.step(lw, wf, maxc, 0);
    int busy = 0;
    for (int gi = 0; gi < G; ++gi) {
        if (!cg[gi]) continue;
        ++busy;
        const int v = m_cost_valid[gidx[gi]];
        k.valid_macs += v;
        k.acc_updates += v;
        k.idle_pack_lane_slots += int64_t(L) * maxc - v;
        if (m_net.crossbar()) {
            k.crossbar_routes += 2 * int64_t(v);  // to the lanes, back to the positions
        } else {
            k.switch_traversals += int64_t(v) * m_net.stages();  // the group's own network
            k.switch_hops += m_cost_hops[gidx[gi]];
            k.scatter_traversals += int64_t(v) * m_net.stages();  // and its own switches back
        }
    }
    k.idle_group_lane_slots += int64_t(G - busy) * L * maxc;
    wk.cycles += maxc;
    if (wk.probe) probe_groups(*wk.probe, vg, cg, maxc);
    if constexpr (Functional) {
        for (int gi = 0; gi < G; ++gi) {
            if (!cg[gi]) continue;
            const float wv = m_plan.weight_value(wk.items[gi], x, r, s);
            if (!m_net.crossbar()) m_net.reverse_paths(vg[gi], m_reverse);  // this group's switches
            for (int j = 0; j < cg[gi]; ++j) {
                m_net.route(vg[gi], j, m_lane_pos);
                for (int ln = 0; ln < L; ++ln) {
                    const int pos = m_lane_pos[ln];
                    if (pos < 0) continue;
                    m_pe.mac(0, gi, m_net.crossbar() ? pos : m_reverse.back(ln, j), wv,
                             m_plan.source_value(w, pos, wk.items[gi], r, s));
                }
            }
        }
    }
    return true;
}

template <bool Functional>
void FastEngine::bp_filter_channel_end(TileWalk& wk, const Tile& t, int w, int x) {
    // The adder tree sums the groups' accumulators position by position; the sum goes into channel
    // x's FP32 partial (a plain write when no earlier cluster wrote it).
    const int positions = m_plan.window_positions(w);
    const int obits = m_cfg.buffers.output.width_bits;
    const int64_t words = (int64_t(positions) * 32 + obits - 1) / obits;
    int real = 0;
    for (int it : wk.items) real += it >= 0;
    uint8_t& written = m_partial_valid[size_t(w - t.w_begin) * (t.x_end - t.x_begin) + (x - t.x_begin)];
    const bool rmw = written != 0;
    wk.k.adder_tree_adds += int64_t(real - 1) * positions;
    wk.k.obuf_writes += words;
    if (rmw) wk.k.obuf_reads += words;
    wk.tl.end_window(words, rmw);
    if constexpr (Functional) {
        float partial[64];
        for (int pos = 0; pos < positions; ++pos) {
            int n = 0;
            for (int gi = 0; gi < m_plan.m_G; ++gi)
                if (wk.items[gi] >= 0) partial[n++] = m_pe.accumulator(0, gi, pos);
            const float sum = PeArray::reduce(partial, n);
            float& out = m_plan.grad_in_at(w, pos, x);
            out = rmw ? out + sum : sum;
        }
    }
    written = 1;
}

template int64_t FastEngine::run_tile_bp_filter<true>(const Tile&, Counters&, CycleProbe*);
template int64_t FastEngine::run_tile_bp_filter<false>(const Tile&, Counters&, CycleProbe*);

}  // namespace swpu
