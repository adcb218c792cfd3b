// Unit testbench of the detect-before-load controller: the union it forms over a cluster, and the
// reads it saves on hand-made masks, counted exactly.
#include <gtest/gtest.h>

#include "testbench.hpp"

namespace swpu::test {
namespace {

// K = 16 (one cluster), C = 4, 3x3 kernels. Hand-made masks:
//  - line (c=1, r) pruned in every filter, r = 0..2      -> 3 lines no group needs
//  - line (c=2, r=0) pruned in filters 0..7 only          -> still needed by filters 8..15
//  - shape (c=0, r=0, s=2) pruned in every filter         -> line (0, 0) needs 2 of 3 positions
WeightMask hand_mask(const Layer& l) {
    WeightMask m;
    m.resize(l.K, l.C, l.R, l.S, true);
    for (int k = 0; k < l.K; ++k) {
        for (int r = 0; r < 3; ++r) m.row(k, 1, r) = 0;
        if (k < 8) m.row(k, 2, 0) = 0;
        m.row(k, 0, 0) &= ~(1ull << 2);
    }
    return m;
}

TEST(DblController, UnionAndActiveGroups) {
    ChipConfig cfg;
    const Layer l = conv_layer(16, 4, 3, 3, 5, 5, 1, 0);
    const WeightMask m = hand_mask(l);
    DblController dbl("dbl", cfg);
    Counters k;
    std::vector<int> items(16);
    for (int i = 0; i < 16; ++i) items[i] = i;
    dbl.load_cluster(m, items, k);
    EXPECT_EQ(dbl.lines(), 12);
    EXPECT_EQ(dbl.union_row(0 * 3 + 0), 0b011u);
    for (int r = 0; r < 3; ++r) EXPECT_EQ(dbl.union_row(1 * 3 + r), 0u);
    EXPECT_EQ(dbl.union_row(2 * 3 + 0), 0b111u);
    EXPECT_EQ(dbl.active_groups(2 * 3 + 0, 1), 8);
    EXPECT_EQ(dbl.active_groups(3 * 3 + 2, 2), 16);
    EXPECT_EQ(dbl.group_row(3, 2 * 3 + 0), 0u);
    EXPECT_EQ(dbl.group_row(12, 2 * 3 + 0), 0b111u);
    // Mask metadata: 16 groups x 12 lines x 3 bits = 576 bits = 9 words.
    EXPECT_EQ(k.mask_reads, 9);
}

// 5x5 input, no padding -> 3x3 = 9 output positions in one window, all valid (dense input):
// every issued step costs ceil(9 / 4) = 3 cycles (all 9 positions fall in segment 0).
// DBL on: 9 lines read, 8 lines x 3 + 2 = 26 steps -> 78 cycles, 26 weight words.
// DBL off: 12 lines read, 36 step positions fetched and zero-detected (16 weights each);
// the 10 no group needs are dropped at 1 cycle each -> 78 + 10 = 88 cycles.
TEST(DblController, CountsTheReadsItSaves) {
    const Layer l = conv_layer(16, 4, 3, 3, 5, 5, 1, 0);
    LayerWork w = random_work(l, 1, PruneMode::Dense, 0.0, 1.0, 1.0, 1);
    w.mask = hand_mask(l);
    auto run = [&](bool dbl) {
        return in_child([&] {
            ChipConfig cfg;
            cfg.dbl.enabled = dbl;
            const auto rs = run_single(cfg, l, w, Pass::FF, 1, nullptr, false);
            return rs.back().c.to_json().dump();
        });
    };
    const auto on = nlohmann::json::parse(run(true));
    const auto off = nlohmann::json::parse(run(false));
    EXPECT_EQ(on["steps"], 26);
    EXPECT_EQ(on["compute_cycles"], 78);
    EXPECT_EQ(on["wbuf_reads"], 26);
    EXPECT_EQ(on["abuf_reads"], 9);  // one 256-bit access per line: 3 rows x 5 values x 16 bits = 240
    EXPECT_EQ(on["zero_detects"], 0);
    EXPECT_EQ(on["steps_dropped"], 0);
    EXPECT_EQ(off["steps"], 26);
    EXPECT_EQ(off["steps_dropped"], 10);
    EXPECT_EQ(off["compute_cycles"], 88);
    EXPECT_EQ(off["dropped_step_cycles"], 10);
    EXPECT_EQ(off["wbuf_reads"], 36);
    EXPECT_EQ(off["abuf_reads"], 12);
    EXPECT_EQ(off["zero_detects"], 36 * 16);
    // Same useful work either way.
    EXPECT_EQ(on["valid_macs"], off["valid_macs"]);
    // Group-steps: 23 steps with all 16 groups, 3 steps (line (2, 0)) with 8 groups; 9 operands each.
    EXPECT_EQ(on["valid_macs"], (23 * 16 + 3 * 8) * 9);
}

}  // namespace
}  // namespace swpu::test
