// Detect-before-load controller (paper technique 2).
//
// For the cluster in the PE groups it forms, from the mask metadata, the union of the groups' line
// masks and for every line (x, r) the positions s that some group keeps, and the number of groups
// active at each (x, r, s). The issue stage then reads only those lines and weight words (and skips
// a step whose operand window is empty, from the activation bitmap). Disabled, the controller
// issues every line and position: the data is read, zero-detected, and dropped afterwards.
#pragma once

#include <cstdint>
#include <vector>

#include <systemc>

#include "swpu/config.hpp"
#include "swpu/stats.hpp"

namespace swpu {

class DblController : public sc_core::sc_module {
public:
    DblController(sc_core::sc_module_name name, const ChipConfig& cfg);

    bool enabled() const { return m_enabled; }

    // Loads the cluster: items[g] is the item held by group g (-1 = idle group in a layer's last
    // cluster). `mask` is in the groups' orientation, rows [item][x][r]: the layer's mask for FF/WG
    // (items are filters), its transpose for BP (items are input channels).
    void load_cluster(const WeightMask& mask, const std::vector<int>& items, Counters& k);

    int lines() const { return m_lines; }  // Rd * R
    int S() const { return m_S; }
    uint64_t union_row(int line) const { return m_union[line]; }
    uint64_t group_row(int g, int line) const { return m_group_rows[size_t(g) * m_lines + line]; }
    int active_groups(int line, int s) const { return m_count[size_t(line) * m_S + s]; }
    int group_count() const { return m_groups; }

private:
    bool m_enabled;
    int m_groups = 0, m_lines = 0, m_S = 0;
    std::vector<uint64_t> m_union;       // per line (x*R + r): S-bit union over the cluster
    std::vector<uint64_t> m_group_rows;  // per group, per line
    std::vector<uint8_t> m_count;        // per line, per s: groups active
};

}  // namespace swpu
