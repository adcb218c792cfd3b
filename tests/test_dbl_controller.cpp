// Unit testbench of the detect-before-load controller: the union it forms over a cluster, and the
// reads it saves on hand-made masks, counted exactly.
#include <gtest/gtest.h>

#include "datapath_top.hpp"
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
    RunConfig cfg;
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
            RunConfig cfg;
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

// Port-level: the clocked controller on the hand-made cluster above (9 mask words, 9 lines, 26
// steps, one 9-position window), with the rest of the datapath attached. The command pushed at edge
// c is taken at c + 1; the mask words take ceil(9 / 4) = 3 cycles (c+1 .. c+3); issue starts at c + 4
// with one line read and one step per cycle. The step FIFO (4 deep) and the line registers (4) let it
// run 4 steps and 4 lines ahead; the network takes step 0 at c + 7 (line and weight word read at c + 5,
// answered at c + 6) and frees a FIFO slot, so step 4 issues at c + 8. Every step costs ceil(9/4) = 3
// network cycles; the tile ends when the last window's write-back is acknowledged.
TEST(DblControllerClocked, MaskLoadThenIssueAheadOfTheNetwork) {
    RunConfig cfg;
    const Layer l = conv_layer(16, 4, 3, 3, 5, 5, 1, 0);
    LayerWork w = random_work(l, 1, PruneMode::Dense, 0.0, 1.0, 1.0, 3);
    w.mask = hand_mask(l);
    DatapathTop top("top", cfg);
    std::vector<int> order(16);
    for (int i = 0; i < 16; ++i) order[size_t(i)] = i;
    const PassPlan plan(cfg, l, w, Pass::FF, 1, order, nullptr);
    ASSERT_EQ(plan.tiles().size(), 1u);
    std::vector<int64_t> steps_at(1, 0), lines_at(1, 0);  // [i]: pushes counted at edge c + i
    int64_t pushed = 0, done_at = -1;
    top.stimulus = [&](UnitTop& t) {
        top.configure(plan, 0);
        pushed = t.cycle();
        top.cmd.push(TileCmd{0});
        for (int i = 0; i < 200 && done_at < 0; ++i) {
            t.edge();
            steps_at.push_back(top.steps.pushes());
            lines_at.push_back(top.line_req.pushes());
            if (top.done.can_pop()) done_at = t.cycle();
        }
    };
    sc_core::sc_start();
    // steps_at[i] = steps pushed up to edge c + i (a push at edge e is counted from edge e + 1).
    ASSERT_GT(steps_at.size(), 12u);
    EXPECT_EQ(steps_at[3], 0);  // mask load c+1 .. c+3
    EXPECT_EQ(steps_at[4], 0);
    EXPECT_EQ(steps_at[5], 1);  // step 0 pushed at c+4
    EXPECT_EQ(steps_at[8], 4);  // steps 0-3 at c+4 .. c+7: the FIFO is full
    EXPECT_EQ(steps_at[9], 5);  // step 4 at c+8, after the network took step 0 at c+7
    EXPECT_EQ(lines_at[8], 4);  // four line registers: lines 0-3 read at c+4 .. c+7
    EXPECT_EQ(lines_at[9], 4);  // line 4 waits for line 0's register
    // Done: 26 steps x 3 cycles from c + 7 = last input cycle c + 84; the last packet accumulates
    // 4 stages + 1 + 3 multiplier stages later (c + 92); write-back of 16 x 9 positions x 16 bit =
    // 9 words over 8 banks = 2 cycles (c + 93, c + 94), acknowledged c + 95 (visible c + 96), done
    // pushed at c + 96 and visible to the controller at c + 97.
    EXPECT_EQ(done_at - pushed, 97);
    const Counters k = top.dbl.take_counters();
    EXPECT_EQ(k.steps, 26);
    EXPECT_EQ(k.mask_reads, 9);
    EXPECT_EQ(k.mask_load_cycles, 3);
    EXPECT_EQ(top.abuf.take_counters().abuf_reads, 9);  // one word per line read
    EXPECT_EQ(top.wbuf.take_counters().wbuf_reads, 26);
}

}  // namespace
}  // namespace swpu::test
