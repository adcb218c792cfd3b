// Log-routing compaction network with bi-directional switches (paper technique 3), and the crossbar
// of the unstructured baseline.
//
// A step offers a window of N candidate positions with a valid bit each. The window is split into
// D disconnected segments of N/D positions; each segment's log network (log2(N/D) stages) moves
// every valid element left by its count of preceding invalid elements, one power of two per stage,
// and its L/D output lanes take the packed elements, L/D per cycle. The fullest segment sets the
// pace: cycles = max_d ceil(valid_d / (L/D)). Driven in reverse, the same switches return each
// product to its original position (scatter). The crossbar instead routes any candidate to any of
// the L lanes: cycles = ceil(valid / L), with one per-weight index read per operand.
#pragma once

#include <cstdint>
#include <vector>

#include <systemc>

#include "swpu/config.hpp"
#include "swpu/stats.hpp"

namespace swpu {

// What one step through the network costs.
struct CompactionCost {
    int cycles = 0;   // cycles to drain the packed operands onto the lanes
    int valid = 0;    // operands (valid positions)
    int hops = 0;     // switches set to 'shift' over all stages (forward direction)
};

class CompactionNetwork : public sc_core::sc_module {
public:
    CompactionNetwork(sc_core::sc_module_name name, const ChipConfig& cfg);

    bool crossbar() const { return m_crossbar; }
    int window() const { return m_window; }
    int segments() const { return m_segments; }
    int segment_width() const { return m_seg_width; }
    int lanes() const { return m_lanes; }
    int stages() const { return m_stages; }

    // Cost of a window with the given valid bits (bit i = position i of the window).
    CompactionCost cost(uint64_t valid) const {
        CompactionCost c;
        if (m_crossbar) {
            c.valid = __builtin_popcountll(valid);
            c.cycles = m_cycles_of[c.valid];
            return c;
        }
        for (int d = 0; d < m_segments; ++d) {
            const uint64_t seg = (valid >> (d * m_seg_width)) & m_seg_mask;
            int n, h;
            if (!m_seg_table.empty()) {
                n = __builtin_popcountll(seg);
                h = m_seg_table[seg];
            } else {
                n = __builtin_popcountll(seg);
                h = hops_of_segment(seg);
            }
            c.valid += n;
            c.hops += h;
            const int cyc = m_cycles_of[n];
            if (cyc > c.cycles) c.cycles = cyc;
        }
        return c;
    }

    // Operands delivered to the lanes in cycle j (0-based) of a window: the per-cycle view that
    // the ticking mode and the VCD use. Sums over j to cost(valid).valid.
    int lanes_busy_in_cycle(uint64_t valid, int j) const;

    // Functional view: for cycle j of the window, the window position feeding each lane
    // (-1 = idle lane). Lane l of segment d takes the (j*L/D + l)-th valid element of segment d.
    void route(uint64_t valid, int j, std::vector<int>& lane_position) const;

    // Reverse direction (bi-directional switches): the position each lane's result returns to is
    // the position it came from; returns it after checking the path exists in the network.
    int scatter(uint64_t valid, int lane, int position) const;

    // Accounts the activity of one step in the counters (forward routing, plus the reverse pass
    // when results return to positions).
    void account(const CompactionCost& c, int groups_served, bool scatter_back, Counters& k) const {
        if (m_crossbar) {
            k.crossbar_routes += int64_t(c.valid) * groups_served;
            k.index_reads += int64_t(c.valid) * groups_served;
        } else {
            k.switch_traversals += int64_t(c.valid) * m_stages;
            k.switch_hops += c.hops;
            if (scatter_back) k.scatter_traversals += int64_t(c.valid) * m_stages * groups_served;
        }
    }

    static int hops_of_segment(uint64_t seg);

private:
    bool m_crossbar;
    int m_window, m_segments, m_seg_width, m_lanes, m_lanes_per_seg, m_stages;
    uint64_t m_seg_mask;
    std::vector<uint16_t> m_seg_table;  // hops per segment pattern when the segment is <= 16 wide
    int m_cycles_of[65];                // cycles to drain n packed operands of a segment
};

}  // namespace swpu
