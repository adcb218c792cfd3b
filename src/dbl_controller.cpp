#include "swpu/dbl_controller.hpp"

namespace swpu {

DblController::DblController(sc_core::sc_module_name name, const ChipConfig& cfg)
    : sc_core::sc_module(name), m_enabled(cfg.dbl.enabled), m_groups(cfg.pe_array.groups) {}

void DblController::load_cluster(const WeightMask& mask, const std::vector<int>& items, Counters& k) {
    const int Rd = mask.C;
    m_groups = int(items.size());
    m_lines = Rd * mask.R;
    m_S = mask.S;
    m_union.assign(m_lines, 0);
    m_group_rows.assign(size_t(m_groups) * m_lines, 0);
    m_count.assign(size_t(m_lines) * m_S, 0);
    for (int g = 0; g < m_groups; ++g) {
        if (items[g] < 0) continue;
        for (int line = 0; line < m_lines; ++line) {
            const uint64_t row = mask.rows[size_t(items[g]) * m_lines + line];  // rows of one item are contiguous
            m_group_rows[size_t(g) * m_lines + line] = row;
            m_union[line] |= row;
            uint8_t* cnt = &m_count[size_t(line) * m_S];
            for (uint64_t bits = row; bits; bits &= bits - 1) ++cnt[__builtin_ctzll(bits)];
        }
    }
    // The controller reads the cluster's mask metadata once: one S-bit row per group and line.
    k.mask_reads += (int64_t(m_groups) * m_lines * m_S + 63) / 64;
}

}  // namespace swpu
