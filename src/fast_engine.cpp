#include "swpu/fast_engine.hpp"

#include "tile_timeline.hpp"

#include <algorithm>
#include <deque>
#include <stdexcept>

namespace swpu {

FastEngine::FastEngine(const PassPlan& plan, DblController& dbl, CompactionNetwork& net, PeArray& pe)
    : m_plan(plan), m_cfg(plan.config()), m_dbl(dbl), m_net(net), m_pe(pe) {
    // FF/BP: the compaction cost of every (window, line, position) once, shared by all clusters.
    const size_t entries = m_plan.m_valid.size();
    if (m_plan.m_pass != Pass::WG) {
        m_cost_cycles.resize(entries);
        m_cost_valid.resize(entries);
        m_cost_hops.resize(entries);
        for (size_t i = 0; i < entries; ++i) {
            const CompactionCost c = m_net.cost(m_plan.m_valid[i]);
            m_cost_cycles[i] = uint8_t(c.cycles);
            m_cost_valid[i] = uint8_t(c.valid);
            m_cost_hops[i] = uint16_t(c.hops);
        }
    }
}

int64_t FastEngine::tile_fill_drain(const Tile& t) const {
    // The clocked datapath's latency around a tile's compute cycles (docs/architecture.md, "cycle
    // rules"): the command reaches the DBL controller (1); its first line read and weight word pass a
    // request register (1), the banks and the read latency; the network's input stage then issues the
    // compute cycles; the last packet crosses the log stages and the FIFO into the multiplier (and, WG,
    // adder-tree) pipeline, accumulates, and its write (FF/BP: the window's write-back; WG: the last
    // read-modify-write) is acknowledged before the PE array reports the tile done (1).
    const auto& b = m_cfg.buffers;
    auto words = [](int64_t n, int banks) { return (n + banks - 1) / banks; };
    int64_t fill = words(m_plan.line_read_accesses(t.w_begin), b.activation.banks) + b.activation.read_latency;
    if (m_plan.m_pass != Pass::WG)
        fill = std::max<int64_t>(fill, words(m_plan.m_weight_fetch_accesses, b.weight.banks) + b.weight.read_latency);
    const int64_t stages = std::max(1, m_net.stages());
    int64_t pipe = m_cfg.pe_array.multiplier_latency + (m_plan.m_pass == Pass::WG ? m_cfg.pe_array.reduce_latency : 0);
    int64_t tail;
    if (m_plan.m_pass == Pass::WG) {
        tail = words(m_plan.dw_rmw_accesses(), b.output.banks) + b.output.read_latency + 2;
    } else {
        std::vector<int> items;
        m_plan.cluster_items(t.cluster, items);
        int real = 0;
        for (int it : items) real += it >= 0;
        tail = words(m_plan.window_store_accesses(t.w_end - 1, real), b.output.banks) + 2;
    }
    return 2 + fill + stages + pipe + tail;
}

int64_t FastEngine::run_tile(const Tile& t, Counters& k, CycleProbe* probe) {
    if (m_cfg.decoupled()) return run_tile_decoupled(t, k, probe);
    if (m_plan.bp_filter())
        return m_plan.m_values ? run_tile_bp_filter<true>(t, k, probe) : run_tile_bp_filter<false>(t, k, probe);
    const bool reduce = m_plan.m_pass == Pass::WG;
    const bool fn = m_plan.m_values != nullptr;
    if (reduce) return fn ? run_tile_impl<true, true>(t, k, probe) : run_tile_impl<true, false>(t, k, probe);
    return fn ? run_tile_impl<false, true>(t, k, probe) : run_tile_impl<false, false>(t, k, probe);
}

int64_t FastEngine::load_masks(const Tile& t, const std::vector<int>& items, Counters& k) {
    const int64_t key = int64_t(t.cluster) * (int64_t(1) << 32) + t.x_begin;  // cluster and block of mask rows
    if (m_loaded_cluster == key) return 0;
    const int64_t words0 = k.mask_reads;
    m_dbl.load_cluster(*m_plan.m_group_mask, items, k, t.x_begin, t.x_end);
    const int64_t mask_cycles = m_dbl.mask_load_cycles(k.mask_reads - words0);
    k.mask_load_cycles += mask_cycles;
    m_loaded_cluster = key;
    return mask_cycles;
}

template <bool Reduce, bool Functional>
int64_t FastEngine::run_tile_impl(const Tile& t, Counters& k, CycleProbe* probe) {
    TileWalk wk(m_cfg, m_net.stages(), Reduce, m_cfg.dbl.line_buffers, k, probe);
    m_plan.cluster_items(t.cluster, wk.items);
    wk.tl.begin(load_masks(t, wk.items, k));
    const int S = m_plan.m_g.S;
    const bool dbl = m_dbl.enabled();
    const uint64_t full = S >= 64 ? ~0ull : ((1ull << S) - 1);
    for (int w = t.w_begin; w < t.w_end; ++w) {
        const int64_t window_cycles0 = wk.cycles;
        if (Functional && !Reduce) m_pe.clear_accumulators(0);
        const int64_t line_read = m_plan.line_read_accesses(w);
        for (int line = 0; line < m_plan.m_lines; ++line) {
            // The DBL controller reads a line only when one of its steps issues (or, DBL off, is
            // fetched and dropped); a line whose every position has an empty window is never read.
            const uint64_t u = m_dbl.union_row(line);
            if (dbl && !u) continue;
            wk.new_line(line_read);
            const size_t base = (size_t(w) * m_plan.m_lines + line) * S;
            for (uint64_t sb = dbl ? u : full; sb; sb &= sb - 1) {
                const int s = __builtin_ctzll(sb);
                if constexpr (Reduce) wg_step<Functional>(wk, w, line, s, base + s);
                else ff_step<Functional>(wk, w, line, s, base + s);
            }
            if (wk.line_read) wk.tl.end_line();
        }
        end_window<Reduce, Functional>(wk, t, w, window_cycles0);
    }
    k.compute_cycles += wk.cycles;
    k.lane_slots += int64_t(m_plan.m_G) * m_plan.m_L * wk.cycles;
    m_tile_wall = wk.tl.wall();  // the tile's wall cycles on the clocked datapath
    return wk.cycles;
}

void FastEngine::drop_step(TileWalk& wk, bool weight_word) {
    if (m_dbl.enabled()) return;  // DBL never issues it
    const int64_t lw = wk.take_line();
    if (weight_word) wk.k.wbuf_reads += m_plan.m_weight_fetch_accesses;  // WG steps take no weight word
    wk.tl.step(lw, weight_word ? m_plan.m_weight_fetch_accesses : 0, 1, 0);
    wk.k.zero_detects += m_plan.m_G;
    ++wk.k.steps_dropped;
    ++wk.k.dropped_step_cycles;
    ++wk.cycles;
    if (wk.probe) wk.probe->cycle(0, 0, 0);
}

template <bool Functional>
void FastEngine::ff_step(TileWalk& wk, int w, int line, int s, size_t idx) {
    // FF / BP through the log network: one compaction serves every group of the cluster.
    Counters& k = wk.k;
    const int G = m_plan.m_G, L = m_plan.m_L;
    const uint64_t V = m_plan.m_valid[idx];
    const int act = m_dbl.active_groups(line, s);
    if (act == 0 || V == 0) return drop_step(wk, true);
    const int64_t lw = wk.take_line();
    if (!m_dbl.enabled()) k.zero_detects += G;
    const int64_t wf = m_plan.m_weight_fetch_accesses;
    k.wbuf_reads += wf;
    const int c = m_cost_cycles[idx];
    wk.tl.step(lw, wf, c, 0);
    const int val = m_cost_valid[idx];
    ++k.steps;
    k.valid_macs += int64_t(val) * act;
    k.acc_updates += int64_t(val) * act;
    k.idle_group_lane_slots += int64_t(G - act) * L * c;
    k.idle_pack_lane_slots += int64_t(act) * (int64_t(L) * c - val);
    if (m_net.crossbar()) {
        k.crossbar_routes += int64_t(val) * (1 + act);  // to the lanes, back to each group's positions
    } else {
        const int stages = m_net.stages();
        k.switch_traversals += int64_t(val) * stages;
        k.switch_hops += m_cost_hops[idx];
        k.scatter_traversals += int64_t(val) * stages * act;
    }
    wk.cycles += c;
    if (wk.probe) probe_ff(*wk.probe, V, c, act);
    if constexpr (Functional) ff_products(wk, w, line, s, V, c);
}

void FastEngine::probe_ff(CycleProbe& probe, uint64_t V, int c, int act) const {
    const int lps = m_net.lanes() / m_net.segments();
    const int sw = m_net.segment_width();
    const uint64_t seg_mask = sw >= 64 ? ~0ull : ((1ull << sw) - 1);
    for (int j = 0; j < c; ++j) {
        int segs = 0;
        for (int d = 0; d < m_net.segments(); ++d) segs += __builtin_popcountll((V >> (d * sw)) & seg_mask) > j * lps;
        probe.cycle(m_net.lanes_busy_in_cycle(V, j) * act, act, segs);
    }
}

void FastEngine::ff_products(const TileWalk& wk, int w, int line, int s, uint64_t V, int c) {
    const int R = m_plan.m_g.R, x = line / R, r = line % R;
    const bool xbar = m_net.crossbar();
    if (!xbar) m_net.reverse_paths(V, m_reverse);  // the bi-directional switches' control bits
    for (int j = 0; j < c; ++j) {
        m_net.route(V, j, m_lane_pos);
        for (int gi = 0; gi < m_plan.m_G; ++gi) {
            if (wk.items[gi] < 0 || !((m_dbl.group_row(gi, line) >> s) & 1u)) continue;
            const float wv = m_plan.weight_value(wk.items[gi], x, r, s);
            for (int ln = 0; ln < m_plan.m_L; ++ln) {
                const int pos = m_lane_pos[ln];
                if (pos < 0) continue;
                m_pe.mac(0, gi, xbar ? pos : m_reverse.back(ln, j), wv, m_plan.source_value(w, pos, x, r, s));
            }
        }
    }
}

template <bool Functional>
void FastEngine::wg_step(TileWalk& wk, int w, int line, int s, size_t idx) {
    // WG through per-group log networks: valid = operand & the group's gradient.
    Counters& k = wk.k;
    const auto& g = m_plan.m_g;
    const int G = m_plan.m_G, L = m_plan.m_L;
    const uint64_t V = m_plan.m_valid[idx];
    uint64_t vg[64];
    int cg[64];
    CompactionCost gcost[64];
    int act = 0, maxc = 0;
    for (int gi = 0; gi < G; ++gi) {
        cg[gi] = 0;
        vg[gi] = 0;
        if (wk.items[gi] < 0 || !((m_dbl.group_row(gi, line) >> s) & 1u)) continue;
        ++act;
        vg[gi] = V & m_plan.m_grad_window[size_t(w) * g.Gd + wk.items[gi]];
        if (!vg[gi]) continue;
        gcost[gi] = m_net.cost(vg[gi]);
        cg[gi] = gcost[gi].cycles;
        maxc = std::max(maxc, cg[gi]);
    }
    if (act == 0 || maxc == 0) return drop_step(wk, false);
    const int64_t lw = wk.take_line();
    if (!m_dbl.enabled()) k.zero_detects += G;
    ++k.steps;
    const int64_t rmw = m_plan.dw_rmw_accesses();
    wk.tl.step(lw, 0, maxc, rmw);
    int busy_groups = 0;
    for (int gi = 0; gi < G; ++gi) {
        if (!cg[gi]) continue;
        ++busy_groups;
        const CompactionCost& cc = gcost[gi];
        k.valid_macs += cc.valid;
        k.adder_tree_adds += cc.valid;
        if (m_net.crossbar()) {
            k.crossbar_routes += cc.valid;
        } else {
            k.switch_traversals += int64_t(cc.valid) * m_net.stages();
            k.switch_hops += cc.hops;
        }
        k.idle_pack_lane_slots += int64_t(L) * maxc - cc.valid;
    }
    k.obuf_reads += rmw;  // read-modify-write of the cluster's FP32 gradient accumulators
    k.obuf_writes += rmw;
    k.idle_group_lane_slots += int64_t(G - busy_groups) * L * maxc;
    wk.cycles += maxc;
    if (wk.probe) probe_groups(*wk.probe, vg, cg, maxc);
    if constexpr (Functional) {
        const Layer& l = m_plan.m_layer;
        const int x = line / g.R, r = line % g.R;
        float products[64];
        for (int gi = 0; gi < G; ++gi) {
            if (!cg[gi]) continue;
            float& acc = m_plan.m_values->grad_w[((size_t(wk.items[gi]) * l.C + x) * l.R + r) * l.S + s];
            for (int j = 0; j < cg[gi]; ++j) {
                m_net.route(vg[gi], j, m_lane_pos);
                int n = 0;
                for (int ln = 0; ln < L; ++ln)
                    if (m_lane_pos[ln] >= 0)
                        products[n++] = m_plan.source_value(w, m_lane_pos[ln], x, r, s) *
                                        m_plan.grad_value(w, m_lane_pos[ln], wk.items[gi]);
                acc += PeArray::reduce(products, n);
            }
        }
    }
}

void FastEngine::probe_groups(CycleProbe& probe, const uint64_t* vg, const int* cg, int maxc) const {
    for (int j = 0; j < maxc; ++j) {
        int lanes = 0, groups = 0;
        for (int gi = 0; gi < m_plan.m_G; ++gi)
            if (cg[gi] > j) {
                lanes += m_net.lanes_busy_in_cycle(vg[gi], j);
                ++groups;
            }
        probe.cycle(lanes, groups, 0);
    }
}

template <bool Reduce, bool Functional>
void FastEngine::end_window(TileWalk& wk, const Tile& t, int w, int64_t window_cycles0) {
    if (wk.cycles == window_cycles0 && (!Reduce || w + 1 == t.w_end)) {
        // A window without steps: its marker spends one network cycle to carry the window's end
        // (FF/BP: its write-back) or the tile's end through the datapath.
        ++wk.cycles;
        ++wk.k.marker_cycles;
        if (wk.probe) wk.probe->cycle(0, 0, 0);
        wk.tl.step(0, 0, 1, 0);
    }
    if constexpr (!Reduce) {
        // Results of the window leave the accumulators for the output buffer.
        int real = 0;
        for (int it : wk.items) real += it >= 0;
        const int64_t words = m_plan.window_store_accesses(w, real);
        wk.k.obuf_writes += words;
        wk.tl.end_window(words);
        if constexpr (Functional) m_plan.store_window(w, wk.items, m_pe, 0);
    }
}

}  // namespace swpu
