#include "swpu/dbl_controller.hpp"

namespace swpu {

DblController::DblController(sc_core::sc_module_name name, const ChipConfig& cfg)
    : sc_core::sc_module(name), m_enabled(cfg.dbl.enabled), m_groups(cfg.pe_array.groups) {}

void DblController::load_cluster(const WeightMask& mask, Pass pass, const std::vector<int>& items, Counters& k) {
    const bool bp = pass == Pass::BP;
    const int Rd = bp ? mask.K : mask.C;
    m_groups = int(items.size());
    m_lines = Rd * mask.R;
    m_S = mask.S;
    m_union.assign(m_lines, 0);
    m_group_rows.assign(size_t(m_groups) * m_lines, 0);
    m_count.assign(size_t(m_lines) * m_S, 0);
    // FF/WG rows of one filter are contiguous: group-major. BP rows of one channel are strided by
    // C*R: line-major keeps the cluster's channels of one filter together.
    auto take = [&](int g, int x, int r) {
        const int it = items[g];
        const uint64_t row = bp ? mask.row(x, it, r) : mask.row(it, x, r);
        const int line = x * mask.R + r;
        m_group_rows[size_t(g) * m_lines + line] = row;
        m_union[line] |= row;
        uint8_t* cnt = &m_count[size_t(line) * m_S];
        for (uint64_t b = row; b; b &= b - 1) ++cnt[__builtin_ctzll(b)];
    };
    if (bp) {
        for (int x = 0; x < Rd; ++x)
            for (int g = 0; g < m_groups; ++g)
                if (items[g] >= 0)
                    for (int r = 0; r < mask.R; ++r) take(g, x, r);
    } else {
        for (int g = 0; g < m_groups; ++g)
            if (items[g] >= 0)
                for (int x = 0; x < Rd; ++x)
                    for (int r = 0; r < mask.R; ++r) take(g, x, r);
    }
    // The controller reads the cluster's mask metadata once: one S-bit row per group and line.
    k.mask_reads += (int64_t(m_groups) * m_lines * m_S + 63) / 64;
}

}  // namespace swpu
