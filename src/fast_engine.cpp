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
    std::vector<int> items;
    m_plan.cluster_items(t.cluster, items);
    const int64_t mask_cycles = load_masks(t, items, k);
    TileTimeline tl(m_cfg, m_net.stages(), m_plan.m_pass == Pass::WG, m_cfg.dbl.line_buffers);
    tl.begin(mask_cycles);
    const auto& g = m_plan.m_g;
    const int G = m_plan.m_G, L = m_plan.m_L, S = g.S;
    const bool dbl = m_dbl.enabled();
    const uint64_t full = S >= 64 ? ~0ull : ((1ull << S) - 1);
    const int stages = m_net.stages();
    const bool xbar = m_net.crossbar();  // one shared crossbar per cluster instead of the log network
    const int64_t wf = m_plan.m_weight_fetch_accesses;
    const int64_t rmw = m_plan.dw_rmw_accesses();
    const Layer& l = m_plan.m_layer;
    int64_t cycles = 0;
    uint64_t vg[64];
    int cg[64];
    CompactionCost gcost[64];
    float products[64];
    // DBL off: a weight word no group needs (or with an empty window) is still fetched and
    // zero-detected, then dropped: it spends one issue cycle.
    auto drop_step = [&](auto& read_line) {
        if (dbl) return;
        const int64_t lw = read_line();
        if (!Reduce) k.wbuf_reads += wf;  // WG steps take no weight word
        tl.step(lw, Reduce ? 0 : wf, 1, 0);
        k.zero_detects += G;
        ++k.steps_dropped;
        ++k.dropped_step_cycles;
        ++cycles;
        if (probe) probe->cycle(0, 0, 0);
    };

    for (int w = t.w_begin; w < t.w_end; ++w) {
        const int64_t window_cycles0 = cycles;
        if (Functional && !Reduce) m_pe.clear_accumulators(0);
        int first_row, rows, j0, len;
        m_plan.window_rows(w, first_row, rows, j0, len);
        const int64_t line_read = m_plan.line_read_accesses(w);
        for (int line = 0; line < m_plan.m_lines; ++line) {
            const uint64_t u = m_dbl.union_row(line);
            if (dbl && !u) continue;
            // The DBL controller reads a line only when one of its steps issues (or, DBL off, is
            // fetched and dropped); a line whose every position has an empty window is never read.
            bool line_read_done = false;
            auto read_line = [&]() -> int64_t {  // the words of the read when this step starts the line
                if (line_read_done) return 0;
                line_read_done = true;
                k.abuf_reads += line_read;  // one read, broadcast to every group of the cluster
                return line_read;
            };
            const int x = line / g.R, r = line % g.R;
            const size_t base = (size_t(w) * m_plan.m_lines + line) * S;
            for (uint64_t sb = dbl ? u : full; sb; sb &= sb - 1) {
                const int s = __builtin_ctzll(sb);
                const size_t idx = base + s;
                const uint64_t V = m_plan.m_valid[idx];
                if constexpr (!Reduce) {
                    // FF / BP through the log network: one compaction serves every group of the cluster.
                    const int act = m_dbl.active_groups(line, s);
                    if (act == 0 || V == 0) {
                        drop_step(read_line);
                        continue;
                    }
                    const int64_t lw = read_line();
                    if (!dbl) k.zero_detects += G;
                    k.wbuf_reads += wf;
                    const int c = m_cost_cycles[idx];
                    tl.step(lw, wf, c, 0);
                    const int val = m_cost_valid[idx];
                    ++k.steps;
                    k.valid_macs += int64_t(val) * act;
                    k.acc_updates += int64_t(val) * act;
                    k.idle_group_lane_slots += int64_t(G - act) * L * c;
                    k.idle_pack_lane_slots += int64_t(act) * (int64_t(L) * c - val);
                    if (xbar) {
                        k.crossbar_routes += int64_t(val) * (1 + act);  // to the lanes, back to each group's positions
                    } else {
                        k.switch_traversals += int64_t(val) * stages;
                        k.switch_hops += m_cost_hops[idx];
                        k.scatter_traversals += int64_t(val) * stages * act;
                    }
                    cycles += c;
                    if (probe) {
                        const int lps = m_net.lanes() / m_net.segments();
                        for (int j = 0; j < c; ++j) {
                            int segs = 0;
                            for (int d = 0; d < m_net.segments(); ++d) {
                                const uint64_t seg = (V >> (d * m_net.segment_width())) &
                                                     (m_net.segment_width() >= 64 ? ~0ull : ((1ull << m_net.segment_width()) - 1));
                                segs += __builtin_popcountll(seg) > j * lps;
                            }
                            probe->cycle(m_net.lanes_busy_in_cycle(V, j) * act, act, segs);
                        }
                    }
                    if constexpr (Functional) {
                        if (!xbar) m_net.reverse_paths(V, m_reverse);  // the bi-directional switches' control bits
                        for (int j = 0; j < c; ++j) {
                            m_net.route(V, j, m_lane_pos);
                            for (int gi = 0; gi < G; ++gi) {
                                if (items[gi] < 0 || !((m_dbl.group_row(gi, line) >> s) & 1u)) continue;
                                const float wv = m_plan.weight_value(items[gi], x, r, s);
                                for (int ln = 0; ln < L; ++ln) {
                                    const int pos = m_lane_pos[ln];
                                    if (pos < 0) continue;
                                    m_pe.mac(0, gi, xbar ? pos : m_reverse.back(ln, j), wv, m_plan.source_value(w, pos, x, r, s));
                                }
                            }
                        }
                    }
                } else {
                    // WG through per-group log networks: valid = operand & the group's gradient.
                    int act = 0, maxc = 0;
                    for (int gi = 0; gi < G; ++gi) {
                        cg[gi] = 0;
                        vg[gi] = 0;
                        if (items[gi] < 0 || !((m_dbl.group_row(gi, line) >> s) & 1u)) continue;
                        ++act;
                        vg[gi] = V & m_plan.m_grad_window[size_t(w) * g.Gd + items[gi]];
                    }
                    if (act) {
                        for (int gi = 0; gi < G; ++gi) {
                            if (!vg[gi]) continue;
                            gcost[gi] = m_net.cost(vg[gi]);
                            cg[gi] = gcost[gi].cycles;
                            if (cg[gi] > maxc) maxc = cg[gi];
                        }
                    }
                    if (act == 0 || maxc == 0) {
                        drop_step(read_line);
                        continue;
                    }
                    const int64_t lw = read_line();
                    if (!dbl) k.zero_detects += G;
                    ++k.steps;
                    tl.step(lw, 0, maxc, rmw);
                    int busy_groups = 0;
                    for (int gi = 0; gi < G; ++gi) {
                        if (!cg[gi]) continue;
                        ++busy_groups;
                        const CompactionCost& cc = gcost[gi];
                        k.valid_macs += cc.valid;
                        k.adder_tree_adds += cc.valid;
                        if (xbar) {
                            k.crossbar_routes += cc.valid;
                        } else {
                            k.switch_traversals += int64_t(cc.valid) * stages;
                            k.switch_hops += cc.hops;
                        }
                        k.idle_pack_lane_slots += int64_t(L) * maxc - cc.valid;
                    }
                    k.obuf_reads += rmw;  // read-modify-write of the cluster's FP32 gradient accumulators
                    k.obuf_writes += rmw;
                    k.idle_group_lane_slots += int64_t(G - busy_groups) * L * maxc;
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
                            float& acc = m_plan.m_values->grad_w[((size_t(items[gi]) * l.C + x) * l.R + r) * l.S + s];
                            for (int j = 0; j < cg[gi]; ++j) {
                                m_net.route(vg[gi], j, m_lane_pos);
                                int n = 0;
                                for (int ln = 0; ln < L; ++ln)
                                    if (m_lane_pos[ln] >= 0)
                                        products[n++] = m_plan.source_value(w, m_lane_pos[ln], x, r, s) *
                                                        m_plan.grad_value(w, m_lane_pos[ln], items[gi]);
                                acc += PeArray::reduce(products, n);
                            }
                        }
                    }
                }
            }
            if (line_read_done) tl.end_line();
        }
        if (cycles == window_cycles0 && (!Reduce || w + 1 == t.w_end)) {
            // A window without steps: its marker spends one network cycle to carry the window's
            // end (FF/BP: its write-back) or the tile's end through the datapath.
            ++cycles;
            ++k.marker_cycles;
            if (probe) probe->cycle(0, 0, 0);
            tl.step(0, 0, 1, 0);
        }
        if (!Reduce) {
            // Results of the window leave the accumulators for the output buffer.
            int real = 0;
            for (int it : items) real += it >= 0;
            k.obuf_writes += m_plan.window_store_accesses(w, real);
            tl.end_window(m_plan.window_store_accesses(w, real));
            if constexpr (Functional) m_plan.store_window(w, items, m_pe, 0);
        }
    }
    k.compute_cycles += cycles;
    k.lane_slots += int64_t(G) * L * cycles;
    // The tile's wall cycles on the clocked datapath, from the timeline.
    m_tile_wall = tl.wall();
    return cycles;
}

}  // namespace swpu
