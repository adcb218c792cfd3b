// Hamming-distance clustering reorder unit (paper technique 1).
//
// When masks change it reads one line-mask bit-vector per item (a filter in FF/WG: bits (c, r); an
// input channel in BP: bits (k, r)) and greedily forms clusters of G items: a cluster starts with
// the lowest-numbered unassigned item, then repeatedly takes the unassigned item with the smallest
// Hamming distance to the cluster's union mask (ties: fewest new lines, then lowest number). Each
// comparison is one XOR/popcount over the bit-vector, ceil(bits / width) unit-operations, spread
// over the unit's XOR/popcount units. The output is the reorder table (a permutation).
#pragma once

#include <cstdint>
#include <vector>

#include <systemc>

#include "swpu/config.hpp"
#include "swpu/stats.hpp"

namespace swpu {

// One bit-vector per item.
struct LineMaskSet {
    int items = 0, bits = 0, words = 0;
    std::vector<uint64_t> data;  // items x words
    void resize(int n_items, int n_bits);
    uint64_t* item(int i) { return &data[size_t(i) * words]; }
    const uint64_t* item(int i) const { return &data[size_t(i) * words]; }
    void set(int i, int b) { item(i)[b >> 6] |= 1ull << (b & 63); }
};

// Line masks of a weighted layer seen by a pass: FF/WG cluster filters, BP clusters channels.
LineMaskSet line_masks_for(const WeightMask& m, Pass pass);

struct ReorderResult {
    std::vector<int> order;   // order[i] = item placed at slot i; clusters are slots [jG, jG+G)
    int64_t cycles = 0;
    int64_t hamming_ops = 0;  // unit-operations (ceil(bits/width) per comparison)
};

class ReorderUnit : public sc_core::sc_module {
public:
    ReorderUnit(sc_core::sc_module_name name, const ChipConfig& cfg);

    // Clusters the items into groups of G; natural order when the unit is disabled (no cost).
    ReorderResult cluster(const LineMaskSet& masks, int group_size) const;

    // Lines issued for an order: sum over clusters of popcount(union of the cluster's masks).
    static int64_t union_cost(const LineMaskSet& masks, const std::vector<int>& order, int group_size);

    bool enabled() const { return m_enabled; }

private:
    bool m_enabled;
    int m_units, m_width;
};

}  // namespace swpu
