// The fast engine's decoupled datapaths (docs/architecture.md, "Decoupled groups"): the crossbar
// machine of the fine-grained baselines and SWPU's `pe_array.group_sync = decoupled` option. The
// cluster's lines are read once and broadcast, with their weights, into per-group operand FIFOs of
// `pe_array.group_fifo_depth` lines; each group then steps through its own kept weights only, through
// its own router (a crossbar with per-weight indices, or a log compaction network of its own), and
// may run ahead of the slowest group by the FIFO's depth.
#include <algorithm>

#include "swpu/fast_engine.hpp"

namespace swpu {

namespace {

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Per-line timeline of the decoupled groups of one tile: the clocked units' rules (docs/architecture.md,
// "Cycle rules of the clocked units"), one entry per line instead of per cycle. Cycle 0 is the first
// bank cycle of the tile's first read. The DBL controller issues one line per cycle, when every
// group's operand FIFO has a free entry (a credit: the line `depth` back was passed by every group a
// cycle before); the line's read and its weights' read start a cycle after the issue, each buffer
// serving its requests in order over ceil(words / banks) cycles, and the line arrives `read_latency`
// cycles after the later of the two. A group with steps on the line starts it when it has finished
// its previous line, the line has arrived and its gate is open, and works its own cycles; a group
// without steps passes the line when it has arrived and its gate is open. The cycle in which the last group passes a line
// carries the line's events to the PE array, which accumulates them `pipe` (router stages + 1 +
// multiplier [+ adder tree]) cycles later and sends its requests to the output buffer (served in
// order from the next cycle, ceil(words / banks) cycles each): FF/BP a window's write-back, whose
// acknowledgement (one cycle after its last bank cycle) reaches the routers two cycles later and
// opens the window `sets` ahead; WG a line's read-modify-writes, whose acknowledgement (read latency
// + 1 after its last bank cycle) opens, two cycles later, the line `depth` lines-with-requests ahead
// (the request queue is as deep as the operand FIFOs). The tile is done one cycle after its last
// acknowledgement (or with its last accumulate when it has none).
class DecoupledTimeline {
public:
    DecoupledTimeline(const ChipConfig& cfg, int groups, int pipe)
        : m_G(groups), m_depth(cfg.pe_array.group_fifo_depth), m_sets(cfg.pe_array.accumulator_sets),
          m_abanks(cfg.buffers.activation.banks), m_wbanks(cfg.buffers.weight.banks), m_obanks(cfg.buffers.output.banks),
          m_la(cfg.buffers.activation.read_latency), m_lw(cfg.buffers.weight.read_latency),
          m_lo(cfg.buffers.output.read_latency), m_pipe(pipe), m_avail(size_t(groups), 0),
          m_set_free(size_t(cfg.pe_array.accumulator_sets), 0) {}

    // One line: its read's words, each group's cycles on it (0: no steps of the group), and (WG) the
    // output-buffer accesses of its groups' read-modify-writes. A window marker has no words at all.
    void line(int64_t act_words, int64_t weight_words, const int64_t* group_cycles, int64_t rmw_accesses) {
        int64_t issue = m_issue + 1;
        if (int64_t(m_freed.size()) >= m_depth) issue = std::max(issue, m_freed[m_freed.size() - size_t(m_depth)] + 1);
        m_issue = issue;
        int64_t arrive = issue + 1;  // a marker enters the FIFOs when the routers take its command
        if (act_words) {
            const int64_t start = std::max(issue + 1, m_abuf_free);
            m_abuf_free = start + ceil_div(act_words, m_abanks);
            arrive = std::max(arrive, m_abuf_free + m_la);
        }
        if (weight_words) {
            const int64_t start = std::max(issue + 1, m_wbuf_free);
            m_wbuf_free = start + ceil_div(weight_words, m_wbanks);
            arrive = std::max(arrive, m_wbuf_free + m_lw);
        }
        if (m_first_arrival < 0) m_first_arrival = arrive;
        int64_t gate = m_window_gate;
        const int64_t before = int64_t(m_served.size());
        if (before >= m_depth) gate = std::max(gate, m_served[size_t(before - m_depth)]);
        int64_t freed = std::max(arrive, m_last_freed);
        for (int g = 0; g < m_G; ++g) {
            int64_t& a = m_avail[size_t(g)];
            if (!group_cycles[g]) {  // passes the line when it has arrived and its gate is open
                a = std::max({a, arrive, gate});
                freed = std::max(freed, a);
                continue;
            }
            a = std::max({a, arrive, gate}) + group_cycles[g];
            freed = std::max(freed, a - 1);
            m_last_work = std::max(m_last_work, a - 1);
        }
        m_freed.push_back(freed);
        m_last_freed = freed;
        m_done = std::max(m_done, freed + m_pipe);
        if (rmw_accesses) {
            const int64_t start = std::max(freed + m_pipe + 1, m_obuf_free);
            m_obuf_free = start + ceil_div(rmw_accesses, m_obanks);
            const int64_t ack = m_obuf_free + m_lo;  // read latency + 1 after the last bank cycle
            m_served.push_back(ack + 2);
            m_done = std::max(m_done, ack + 1);
        }
    }
    void begin_window(int w) { m_window_gate = m_set_free[size_t(w % m_sets)]; }
    // FF/BP: the window's write-back, with the events of its last line.
    void end_window(int w, int64_t store_words) {
        const int64_t start = std::max(m_last_freed + m_pipe + 1, m_obuf_free);
        m_obuf_free = start + ceil_div(store_words, m_obanks);
        const int64_t ack = m_obuf_free;  // one cycle after the last bank cycle
        m_set_free[size_t(w % m_sets)] = ack + 2;
        m_done = std::max(m_done, ack + 1);
    }
    // The cycle the PE array reports the tile done (from cycle 0).
    int64_t done() const { return m_done; }
    // Cycles from the first line's arrival to the last group's last cycle.
    int64_t compute_span() const { return m_last_work < 0 ? 0 : m_last_work + 1 - m_first_arrival; }

private:
    int m_G, m_depth, m_sets, m_abanks, m_wbanks, m_obanks, m_la, m_lw, m_lo, m_pipe;
    std::vector<int64_t> m_avail, m_set_free, m_freed, m_served;
    int64_t m_issue = -2, m_abuf_free = 0, m_wbuf_free = 0, m_obuf_free = 0, m_window_gate = 0;
    int64_t m_last_freed = 0, m_last_work = -1, m_done = 0, m_first_arrival = -1;
};

}  // namespace

int64_t FastEngine::run_tile_decoupled(const Tile& t, Counters& k, CycleProbe* probe) {
    const bool xbar = m_cfg.element_indexed();
    const bool reduce = m_plan.m_pass == Pass::WG;
    const bool fn = m_plan.m_values != nullptr;
    if (xbar) {
        if (reduce) return fn ? decoupled_impl<true, true, true>(t, k, probe) : decoupled_impl<true, true, false>(t, k, probe);
        return fn ? decoupled_impl<true, false, true>(t, k, probe) : decoupled_impl<true, false, false>(t, k, probe);
    }
    if (reduce) return fn ? decoupled_impl<false, true, true>(t, k, probe) : decoupled_impl<false, true, false>(t, k, probe);
    return fn ? decoupled_impl<false, false, true>(t, k, probe) : decoupled_impl<false, false, false>(t, k, probe);
}

template <bool Xbar, bool Reduce, bool Functional>
int64_t FastEngine::decoupled_impl(const Tile& t, Counters& k, CycleProbe* probe) {
    std::vector<int> items;
    m_plan.cluster_items(t.cluster, items);
    const int64_t mask_cycles = load_masks(t, items, k);
    const auto& g = m_plan.m_g;
    const int G = m_plan.m_G, L = m_plan.m_L, S = g.S;
    const bool dbl = m_dbl.enabled();
    const uint64_t full = S >= 64 ? ~0ull : ((1ull << S) - 1);
    const int stages = m_net.stages();
    const int ob = m_cfg.operand_bits();
    const int wbits = m_cfg.buffers.weight.width_bits;
    const int64_t dw_line_words = ceil_div(int64_t(S) * 32, m_cfg.buffers.output.width_bits);
    const Layer& l = m_plan.m_layer;
    int real = 0;
    for (int it : items) real += it >= 0;
    // A slice leaves the router stages into the lane-packet FIFO and the multiplier (and adder-tree)
    // pipeline: it accumulates stages + 1 + latency cycles after its cycle.
    const int pipe = std::max(1, stages) + 1 + m_cfg.pe_array.multiplier_latency + (Reduce ? m_cfg.pe_array.reduce_latency : 0);
    DecoupledTimeline tl(m_cfg, G, pipe);
    std::vector<int64_t> gline(size_t(G), 0), gwork(size_t(G), 0), gvalid(size_t(G), 0);
    std::vector<int64_t> busy_lanes, busy_groups;  // probe: per-cycle activity (difference arrays)
    float products[64];
    auto mark = [&](int64_t from, int64_t n, int64_t lanes) {
        if (!probe || n <= 0) return;
        if (int64_t(busy_lanes.size()) < from + n + 1) { busy_lanes.resize(size_t(from + n + 1), 0); busy_groups.resize(size_t(from + n + 1), 0); }
        busy_lanes[size_t(from)] += lanes;
        busy_lanes[size_t(from + n)] -= lanes;
        busy_groups[size_t(from)] += 1;
        busy_groups[size_t(from + n)] -= 1;
    };

    for (int w = t.w_begin; w < t.w_end; ++w) {
        if (Functional && !Reduce) m_pe.clear_accumulators(0);
        if (!Reduce) tl.begin_window(w);
        const int64_t line_read = m_plan.line_read_accesses(w);
        bool window_lines = false;
        for (int line = 0; line < m_plan.m_lines; ++line) {
            const uint64_t u = m_dbl.union_row(line);
            if (dbl && !u) continue;
            window_lines = true;
            const int x = line / g.R, r = line % g.R;
            const size_t base = (size_t(w) * m_plan.m_lines + line) * S;
            std::fill(gline.begin(), gline.end(), 0);
            int64_t kept = 0, kept_lines = 0, rmw = 0;
            for (int gi = 0; gi < G; ++gi) {
                if (items[gi] < 0) continue;
                const uint64_t row = m_dbl.group_row(gi, line);
                kept += __builtin_popcountll(row);
                kept_lines += row != 0;
                // The crossbar's weights are element-compressed: a pruned weight is not stored, so
                // it is never fetched. The log machine stores kept lines (DBL) or every weight.
                const uint64_t visit = Xbar || dbl ? row : full;
                bool line_steps = false;
                for (uint64_t sb = visit; sb; sb &= sb - 1) {
                    const int s = __builtin_ctzll(sb);
                    const bool kept_w = (row >> s) & 1u;
                    uint64_t v = m_plan.m_valid[base + size_t(s)];
                    if (Reduce) v &= m_plan.m_grad_window[size_t(w) * g.Gd + items[gi]];
                    if (!dbl) k.zero_detects += 1;
                    if (Xbar) k.index_reads += 1;
                    if (!kept_w || !v) {
                        if (dbl) continue;  // DBL: pruned weights and empty windows are known before the fetch
                        ++k.steps_dropped;  // fetched, detected, dropped: one cycle of the group (an unfilled slot)
                        ++gline[size_t(gi)];
                        continue;
                    }
                    int c, val, hops = 0;
                    if (Xbar) {
                        val = __builtin_popcountll(v);
                        c = (val + L - 1) / L;
                        k.crossbar_routes += val;
                    } else {
                        const CompactionCost cc = m_net.cost(v);
                        c = cc.cycles;
                        val = cc.valid;
                        hops = cc.hops;
                        k.switch_traversals += int64_t(val) * stages;  // the group's own network
                        k.switch_hops += hops;
                        if (!Reduce) k.scatter_traversals += int64_t(val) * stages;
                    }
                    ++k.steps;
                    k.valid_macs += val;
                    if (Reduce) {
                        k.adder_tree_adds += val;
                        line_steps = true;
                    } else {
                        k.acc_updates += val;
                    }
                    mark(gwork[size_t(gi)] + gline[size_t(gi)], c, (val + c - 1) / c);
                    gline[size_t(gi)] += c;
                    gvalid[size_t(gi)] += val;
                    if constexpr (Functional) {
                        if (!Xbar && !Reduce) m_net.reverse_paths(v, m_reverse);
                        for (int j = 0; j < c; ++j) {
                            m_net.route(v, j, m_lane_pos);
                            if constexpr (Reduce) {
                                int n = 0;
                                for (int ln = 0; ln < L; ++ln)
                                    if (m_lane_pos[size_t(ln)] >= 0)
                                        products[n++] = m_plan.source_value(w, m_lane_pos[size_t(ln)], x, r, s) *
                                                        m_plan.grad_value(w, m_lane_pos[size_t(ln)], items[gi]);
                                m_plan.m_values->grad_w[((size_t(items[gi]) * l.C + x) * l.R + r) * l.S + s] +=
                                    PeArray::reduce(products, n);
                            } else {
                                const float wv = m_plan.weight_value(items[gi], x, r, s);
                                for (int ln = 0; ln < L; ++ln) {
                                    const int pos = m_lane_pos[size_t(ln)];
                                    if (pos < 0) continue;
                                    const int back = Xbar ? pos : m_reverse.back(ln, j);
                                    m_pe.mac(0, gi, back, wv, m_plan.source_value(w, pos, x, r, s));
                                }
                            }
                        }
                    }
                }
                // WG: the group's S gradient sums of the line are adjacent FP32 accumulators in the
                // output buffer: one read-modify-write of the line's word(s) per group.
                if (line_steps) rmw += dw_line_words;
            }
            // One read of the line, broadcast into every group's FIFO with the groups' weights of the
            // line: value + index words (crossbar), or the kept lines' S values (log).
            int64_t wwords;
            if (Reduce) wwords = 0;
            else if (Xbar) wwords = ceil_div(kept * (ob + m_cfg.memory.weight_index_bits), wbits);
            else wwords = ceil_div((dbl ? kept_lines : real) * S * ob, wbits);
            k.abuf_reads += line_read;
            k.wbuf_reads += wwords;
            k.obuf_reads += rmw;
            k.obuf_writes += rmw;
            tl.line(line_read, wwords, gline.data(), rmw);
            for (int gi = 0; gi < G; ++gi) gwork[size_t(gi)] += gline[size_t(gi)];
        }
        if (!window_lines && (!Reduce || w + 1 == t.w_end)) {
            // A window without lines: its marker carries the window's end (FF/BP: its write-back) or
            // the tile's end through the FIFOs.
            std::fill(gline.begin(), gline.end(), 0);
            tl.line(0, 0, gline.data(), 0);
        }
        if (!Reduce) {
            const int64_t store = m_plan.window_store_accesses(w, real);
            k.obuf_writes += store;
            tl.end_window(w, store);
            if constexpr (Functional) m_plan.store_window(w, items, m_pe, 0);
        }
    }
    // Compute cycles: from the first line's arrival to the last group's last cycle (the groups' own
    // cycles plus their waits for reads, FIFO entries and accumulator sets: buffer stalls). The read
    // before, and the router/multiplier latency and write-back after, count toward the wall only.
    const int64_t cycles = tl.compute_span();
    int64_t busiest = 0;
    for (int gi = 0; gi < G; ++gi) busiest = std::max(busiest, gwork[size_t(gi)]);
    int64_t work = 0;
    for (int gi = 0; gi < G; ++gi) {
        work += gwork[size_t(gi)];
        k.idle_pack_lane_slots += gwork[size_t(gi)] * L - gvalid[size_t(gi)];
    }
    k.idle_group_lane_slots += (int64_t(G) * busiest - work) * L;
    k.buffer_stall_cycles += cycles - busiest;  // the busiest group waiting for operands or a FIFO entry
    k.compute_cycles += cycles;
    k.lane_slots += int64_t(G) * L * cycles;
    if (probe) {
        // The groups' own work, packed from each group's start (an approximation of the timeline's
        // placement: the same busy slots, shown without the waits).
        int64_t lanes = 0, groups = 0;
        for (int64_t c = 0; c < cycles; ++c) {
            if (c < int64_t(busy_lanes.size())) { lanes += busy_lanes[size_t(c)]; groups += busy_groups[size_t(c)]; }
            probe->cycle(int(std::min<int64_t>(lanes, int64_t(G) * L)), int(std::min<int64_t>(groups, G)), 0);
        }
    }
    // Wall: the command reaches the DBL controller (1), the mask load, its first issue (1), then cycle 0
    // (the first read) to the done the controller takes in the same cycle.
    m_tile_wall = mask_cycles + 2 + tl.done();
    return cycles;
}

}  // namespace swpu
