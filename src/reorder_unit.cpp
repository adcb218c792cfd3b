#include "swpu/reorder_unit.hpp"

#include <numeric>

namespace swpu {

void LineMaskSet::resize(int n_items, int n_bits) {
    items = n_items;
    bits = n_bits;
    words = (n_bits + 63) / 64;
    data.assign(size_t(items) * words, 0);
}

LineMaskSet line_masks_for(const WeightMask& m, Pass pass) {
    LineMaskSet s;
    if (pass == Pass::BP) {
        s.resize(m.C, m.K * m.R);
        for (int k = 0; k < m.K; ++k)
            for (int c = 0; c < m.C; ++c)
                for (int r = 0; r < m.R; ++r)
                    if (m.row(k, c, r)) s.set(c, k * m.R + r);
    } else {
        s.resize(m.K, m.C * m.R);
        for (int k = 0; k < m.K; ++k)
            for (int c = 0; c < m.C; ++c)
                for (int r = 0; r < m.R; ++r)
                    if (m.row(k, c, r)) s.set(k, c * m.R + r);
    }
    return s;
}

ReorderUnit::ReorderUnit(sc_core::sc_module_name name, const ChipConfig& cfg)
    : sc_core::sc_module(name),
      clk("clk"),
      reset("reset"),
      cmd_in("cmd_in"),
      done_out("done_out"),
      m_enabled(cfg.reorder_unit.enabled),
      m_units(cfg.reorder_unit.hamming_units),
      m_width(cfg.reorder_unit.hamming_width_bits) {
    SC_HAS_PROCESS(ReorderUnit);
    SC_METHOD(tick);
    sensitive << clk.pos();
    dont_initialize();
}

namespace {
// The candidate closest to the union (ties: fewest new lines, then lowest number), and how many
// candidates were compared.
int best_candidate(const LineMaskSet& masks, const std::vector<char>& used, const std::vector<uint64_t>& uni,
                   int seed, int64_t& compared) {
    int best = -1, best_d = 0, best_g = 0;
    for (int i = seed + 1; i < masks.items; ++i) {
        if (used[size_t(i)]) continue;
        const uint64_t* m = masks.item(i);
        int d = 0, g = 0;
        for (int w = 0; w < masks.words; ++w) {
            d += __builtin_popcountll(uni[size_t(w)] ^ m[w]);
            g += __builtin_popcountll(m[w] & ~uni[size_t(w)]);
        }
        ++compared;
        if (best < 0 || d < best_d || (d == best_d && g < best_g)) {
            best = i;
            best_d = d;
            best_g = g;
        }
    }
    return best;
}
}  // namespace

ReorderResult ReorderUnit::cluster(const LineMaskSet& masks, int G) const {
    ReorderResult res;
    res.order.resize(masks.items);
    std::iota(res.order.begin(), res.order.end(), 0);
    if (!m_enabled || masks.items <= G) return res;
    const int W = masks.words;
    const int64_t ops_per_compare = (masks.bits + m_width - 1) / m_width;
    std::vector<char> used(masks.items, 0);
    std::vector<uint64_t> uni(W);
    int64_t compares = 0, cycles = 0;
    int slot = 0;
    for (int seed = 0; seed < masks.items; ++seed) {
        if (used[seed]) continue;
        used[seed] = 1;
        res.order[slot++] = seed;
        const uint64_t* sm = masks.item(seed);
        for (int w = 0; w < W; ++w) uni[w] = sm[w];
        ++cycles;  // the seed cycle
        for (int n = 1; n < G && slot < masks.items; ++n) {
            int64_t round = 0;
            const int best = best_candidate(masks, used, uni, seed, round);
            if (best < 0) break;
            compares += round;
            cycles += (round * ops_per_compare + m_units - 1) / m_units + 1;  // scan cycles, then the pick cycle
            used[best] = 1;
            res.order[slot++] = best;
            const uint64_t* bm = masks.item(best);
            for (int w = 0; w < W; ++w) uni[w] |= bm[w];
        }
    }
    res.hamming_ops = compares * ops_per_compare;
    res.cycles = cycles;
    return res;
}

void ReorderUnit::place(int item) {
    m_used[size_t(item)] = 1;
    m_res.order[size_t(m_slot++)] = item;  // one write of the table memory
    const uint64_t* m = m_masks->item(item);
    for (int w = 0; w < m_masks->words; ++w) m_union[size_t(w)] = m_in_cluster == 0 ? m[w] : (m_union[size_t(w)] | m[w]);
    ++m_in_cluster;
    placed.write(m_slot);
}

void ReorderUnit::start_round() {
    // The comparisons of a round stream through the units; the result is the scan's outcome.
    int64_t round = 0;
    m_best = best_candidate(*m_masks, m_used, m_union, m_seed, round);
    m_res.hamming_ops += round * m_ops_per_compare;
    m_scan_left = (round * m_ops_per_compare + m_units - 1) / m_units;
}

void ReorderUnit::tick() {
    if (m_woken) {
        m_woken = false;
        return;
    }
    if (reset.read()) {
        m_state = Idle;
        state.write(0);
        return;
    }
    if (m_state == Idle) {
        if (!cmd_in->can_pop()) {
            m_woken = true;
            next_trigger(cmd_in->data_written_event());
            return;
        }
        const ReorderCmd cmd = cmd_in->pop();
        m_masks = cmd.masks;
        m_groups = cmd.groups;
        m_res = ReorderResult{};
        m_res.order.assign(size_t(m_masks->items), -1);
        m_used.assign(size_t(m_masks->items), 0);
        m_union.assign(size_t(m_masks->words), 0);
        m_ops_per_compare = (m_masks->bits + m_width - 1) / m_width;
        m_slot = 0;
        m_seed = -1;
        m_state = Seed;
    }
    ++m_res.cycles;
    bool round_over = false;
    if (m_state == Seed) {
        do ++m_seed; while (m_used[size_t(m_seed)]);
        m_in_cluster = 0;
        place(m_seed);
        state.write(1);
        round_over = true;
    } else if (m_state == Scan) {
        state.write(2);
        if (--m_scan_left == 0) m_state = Pick;
        return;
    } else {  // Pick
        place(m_best);
        state.write(3);
        round_over = true;
    }
    if (!round_over) return;
    if (m_slot == m_masks->items) {
        done_out->push(1);
        m_state = Idle;
        return;
    }
    if (m_in_cluster == m_groups) {
        m_state = Seed;
        return;
    }
    start_round();
    if (m_best < 0) {
        m_state = Seed;
    } else if (m_scan_left == 0) {
        m_state = Pick;
    } else {
        m_state = Scan;
    }
}

int64_t ReorderUnit::union_cost(const LineMaskSet& masks, const std::vector<int>& order, int G) {
    int64_t total = 0;
    std::vector<uint64_t> uni(masks.words);
    for (size_t start = 0; start < order.size(); start += G) {
        std::fill(uni.begin(), uni.end(), 0);
        for (size_t i = start; i < order.size() && i < start + G; ++i) {
            const uint64_t* m = masks.item(order[i]);
            for (int w = 0; w < masks.words; ++w) uni[w] |= m[w];
        }
        for (auto u : uni) total += __builtin_popcountll(u);
    }
    return total;
}

}  // namespace swpu
