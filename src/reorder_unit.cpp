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
      m_enabled(cfg.reorder_unit.enabled),
      m_units(cfg.reorder_unit.hamming_units),
      m_width(cfg.reorder_unit.hamming_width_bits) {}

ReorderResult ReorderUnit::cluster(const LineMaskSet& masks, int G) const {
    ReorderResult res;
    res.order.resize(masks.items);
    std::iota(res.order.begin(), res.order.end(), 0);
    if (!m_enabled || masks.items <= G) return res;
    const int W = masks.words;
    const int64_t ops_per_compare = (masks.bits + m_width - 1) / m_width;
    std::vector<char> used(masks.items, 0);
    std::vector<uint64_t> uni(W);
    int64_t compares = 0, picks = 0;
    int slot = 0;
    for (int seed = 0; seed < masks.items; ++seed) {
        if (used[seed]) continue;
        used[seed] = 1;
        res.order[slot++] = seed;
        const uint64_t* sm = masks.item(seed);
        for (int w = 0; w < W; ++w) uni[w] = sm[w];
        ++picks;
        for (int n = 1; n < G && slot < masks.items; ++n) {
            int best = -1, best_d = 0, best_g = 0;
            for (int i = seed + 1; i < masks.items; ++i) {
                if (used[i]) continue;
                const uint64_t* m = masks.item(i);
                int d = 0, g = 0;
                for (int w = 0; w < W; ++w) {
                    d += __builtin_popcountll(uni[w] ^ m[w]);
                    g += __builtin_popcountll(m[w] & ~uni[w]);
                }
                ++compares;
                if (best < 0 || d < best_d || (d == best_d && g < best_g)) {
                    best = i;
                    best_d = d;
                    best_g = g;
                }
            }
            if (best < 0) break;
            used[best] = 1;
            res.order[slot++] = best;
            const uint64_t* bm = masks.item(best);
            for (int w = 0; w < W; ++w) uni[w] |= bm[w];
            ++picks;
        }
    }
    res.hamming_ops = compares * ops_per_compare;
    // The units share the comparisons of a pick; one cycle per pick to update the union and the table.
    res.cycles = (res.hamming_ops + m_units - 1) / m_units + picks;
    return res;
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
