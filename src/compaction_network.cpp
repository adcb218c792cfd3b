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
    const int per = m_crossbar ? m_lanes : m_lanes_per_seg;
    for (int n = 0; n <= 64; ++n) m_cycles_of[n] = (n + per - 1) / per;
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
    if (m_crossbar) {
        const int n = __builtin_popcountll(valid) - j * m_lanes;
        return n <= 0 ? 0 : (n < m_lanes ? n : m_lanes);
    }
    int busy = 0;
    for (int d = 0; d < m_segments; ++d) {
        const int n = __builtin_popcountll((valid >> (d * m_seg_width)) & m_seg_mask) - j * m_lanes_per_seg;
        busy += n <= 0 ? 0 : (n < m_lanes_per_seg ? n : m_lanes_per_seg);
    }
    return busy;
}

void CompactionNetwork::route(uint64_t valid, int j, std::vector<int>& lane_position) const {
    lane_position.assign(m_lanes, -1);
    const int segs = m_crossbar ? 1 : m_segments;
    const int width = m_crossbar ? m_window : m_seg_width;
    const int per = m_crossbar ? m_lanes : m_lanes_per_seg;
    for (int d = 0; d < segs; ++d) {
        uint64_t seg = m_crossbar ? valid : ((valid >> (d * width)) & m_seg_mask);
        // Log-stage compaction: compute each valid element's destination by shifting it left by
        // its preceding-invalid count one stage at a time (what the switches do).
        int packed[64];
        int npacked = 0;
        int rank = 0;
        for (int i = 0; i < width; ++i) {
            if (!((seg >> i) & 1u)) continue;
            int pos = i;
            const int shift = i - rank;
            for (int b = 0; b < m_stages || (m_crossbar && b < 7); ++b)
                if ((shift >> b) & 1) pos -= (1 << b);
            if (pos != rank) throw std::logic_error("compaction network: element lost its slot");
            packed[pos] = i;
            ++rank;
            ++npacked;
        }
        for (int l = 0; l < per; ++l) {
            const int slot = j * per + l;
            if (slot < npacked) lane_position[d * per + l] = d * width + packed[slot];
        }
    }
}

int CompactionNetwork::scatter(uint64_t valid, int lane, int position) const {
    // Reverse traversal: the lane's packed slot moves right by the same shift, stage by stage.
    const int width = m_crossbar ? m_window : m_seg_width;
    const int per = m_crossbar ? m_lanes : m_lanes_per_seg;
    const int d = lane / per;
    const uint64_t seg = m_crossbar ? valid : ((valid >> (d * width)) & m_seg_mask);
    const int i = position - d * width;
    if (i < 0 || i >= width || !((seg >> i) & 1u))
        throw std::logic_error("bi-directional switch: result has no path back");
    const int rank = __builtin_popcountll(seg & ((i == 0) ? 0 : ((1ull << i) - 1)));
    int pos = rank;
    const int shift = i - rank;
    for (int b = 0; b < 7; ++b)
        if ((shift >> b) & 1) pos += (1 << b);
    return d * width + pos;
}

}  // namespace swpu
