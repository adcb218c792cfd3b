#include "swpu/compaction_network.hpp"

#include <stdexcept>

namespace swpu {

CompactionNetwork::CompactionNetwork(sc_core::sc_module_name name, const ChipConfig& cfg)
    : sc_core::sc_module(name),
      m_crossbar(cfg.compaction.routing == "crossbar"),
      m_window(cfg.compaction.window),
      m_segments(m_crossbar ? 1 : cfg.compaction.segments),
      m_seg_width(m_window / m_segments),
      m_lanes(cfg.pe_array.lanes),
      m_lanes_per_seg(m_lanes / m_segments),
      m_stages(0),
      m_seg_mask(m_seg_width >= 64 ? ~0ull : ((1ull << m_seg_width) - 1)) {
    while ((1 << m_stages) < m_seg_width) ++m_stages;
    for (int n = 0; n <= 64; ++n) m_cycles_of[n] = (n + m_lanes_per_seg - 1) / m_lanes_per_seg;
    if (!m_crossbar && m_seg_width <= 16) {
        m_seg_table.resize(size_t(1) << m_seg_width);
        for (size_t p = 0; p < m_seg_table.size(); ++p) m_seg_table[p] = uint16_t(hops_of_segment(p));
    }
}

int CompactionNetwork::hops_of_segment(uint64_t seg) {
    // Element at position i moves left by the number of invalid positions below it; stage b
    // shifts by 2^b, so the element sets popcount(shift) switches.
    int hops = 0, rank = 0;
    while (seg) {
        const int i = __builtin_ctzll(seg);
        hops += __builtin_popcount(unsigned(i - rank));
        ++rank;
        seg &= seg - 1;
    }
    return hops;
}

int CompactionNetwork::lanes_busy_in_cycle(uint64_t valid, int j) const {
    int busy = 0;  // the crossbar is one segment as wide as the window
    for (int d = 0; d < m_segments; ++d) {
        const int n = __builtin_popcountll((valid >> (d * m_seg_width)) & m_seg_mask) - j * m_lanes_per_seg;
        busy += n <= 0 ? 0 : (n < m_lanes_per_seg ? n : m_lanes_per_seg);
    }
    return busy;
}

void CompactionNetwork::route(uint64_t valid, int j, std::vector<int>& lane_position) const {
    // The crossbar is one segment as wide as the window, so one code path serves both.
    lane_position.assign(m_lanes, -1);
    for (int d = 0; d < m_segments; ++d) {
        // Compaction keeps order: the k-th valid element of the segment lands in packed slot k
        // (the log stages shift it left by its count of preceding invalid elements; the
        // stage-by-stage model is checked in tests/test_compaction_network.cpp).
        uint64_t seg = (valid >> (d * m_seg_width)) & m_seg_mask;
        for (int k = 0; seg; ++k, seg &= seg - 1) {
            const int slot = k - j * m_lanes_per_seg;
            if (slot < 0) continue;
            if (slot >= m_lanes_per_seg) break;
            lane_position[d * m_lanes_per_seg + slot] = d * m_seg_width + __builtin_ctzll(seg);
        }
    }
}

int CompactionNetwork::scatter(uint64_t valid, int lane, int position) const {
    // Reverse traversal: the lane's packed slot moves right by the same shift, stage by stage.
    const int d = lane / m_lanes_per_seg;
    const uint64_t seg = (valid >> (d * m_seg_width)) & m_seg_mask;
    const int i = position - d * m_seg_width;
    if (i < 0 || i >= m_seg_width || !((seg >> i) & 1u))
        throw std::logic_error("bi-directional switch: result has no path back");
    const int rank = __builtin_popcountll(seg & ((1ull << i) - 1));
    int pos = rank;
    const int shift = i - rank;
    for (int b = 0; b < m_stages; ++b)
        if ((shift >> b) & 1) pos += (1 << b);
    return d * m_seg_width + pos;
}

}  // namespace swpu
