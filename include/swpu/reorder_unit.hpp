// Hamming-distance clustering reorder unit (paper technique 1).
//
// When masks change it reads one line-mask bit-vector per item (a filter in FF/WG: bits (c, r); an
// input channel in BP: bits (k, r)) and greedily forms clusters of G items: a cluster starts with
// the lowest-numbered unassigned item, then repeatedly takes the unassigned item with the smallest
// Hamming distance to the cluster's union mask (ties: fewest new lines, then lowest number). Each
// comparison is one XOR/popcount over the bit-vector, ceil(bits / width) unit-operations, spread
// over the unit's XOR/popcount units. The output is the reorder table (a permutation).
//
// Clocked behaviour (cycle engine), a state machine: a seed cycle places the lowest unassigned item
// (writes its table entry, loads the union register); a round of scan cycles streams every candidate
// through the U units, U unit-operations per cycle, ceil(candidates x ceil(bits/width) / U) cycles;
// a pick cycle places the best candidate and ORs it into the union. The table lives in the unit's own
// memory (one write per placed item); the controller reads it when the unit reports done.
#pragma once

#include <cstdint>
#include <vector>

#include <systemc>

#include "swpu/channel.hpp"
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

// Controller -> reorder unit: cluster these masks into groups of `groups`.
struct ReorderCmd {
    const LineMaskSet* masks = nullptr;
    int groups = 0;
};

class ReorderUnit : public sc_core::sc_module {
public:
    sc_core::sc_in<bool> clk;
    sc_core::sc_in<bool> reset;
    In<ReorderCmd> cmd_in;
    Out<int> done_out;  // the table is written; carries nothing else

    sc_core::sc_signal<int> state{"state"};  // 0 idle, 1 seed, 2 scan, 3 pick
    sc_core::sc_signal<int> placed{"placed"};

    ReorderUnit(sc_core::sc_module_name name, const ChipConfig& cfg);

    // The same state machine's result and cycles computed directly (fast engine, tests); natural
    // order at no cost when the unit is disabled or the items fit one cluster.
    ReorderResult cluster(const LineMaskSet& masks, int group_size) const;
    // Cycle engine: the table and counts of the last clustering the clocked unit finished.
    const ReorderResult& last_result() const { return m_res; }

    // Lines issued for an order: sum over clusters of popcount(union of the cluster's masks).
    static int64_t union_cost(const LineMaskSet& masks, const std::vector<int>& order, int group_size);

    bool enabled() const { return m_enabled; }

private:
    enum State { Idle, Seed, Scan, Pick };
    void tick();
    void start_round();
    void place(int item);

    bool m_enabled;
    int m_units, m_width;
    // Clocked state.
    State m_state = Idle;
    const LineMaskSet* m_masks = nullptr;
    int m_groups = 0, m_seed = 0, m_in_cluster = 0, m_slot = 0, m_best = -1;
    int64_t m_scan_left = 0, m_ops_per_compare = 0;
    std::vector<char> m_used;
    std::vector<uint64_t> m_union;
    ReorderResult m_res;
    bool m_woken = false;
};

}  // namespace swpu
