// Port-level testbench of the PE array: lane packets pushed straight into its input FIFO (the rest of
// the datapath idle), its write-back requests served by the output buffer, its tile-done observed.
// A 1x1 layer (K = 16, C = 1) on 16x16 outputs: windows of 4 rows x 16 = 64 positions; a window's
// write-back is 16 groups x 64 positions x 16 bit = 64 words over 8 banks = 8 bank cycles.
#include <gtest/gtest.h>

#include "datapath_top.hpp"
#include "testbench.hpp"

namespace swpu::test {
namespace {

struct Outcome {
    int64_t done_after = -1;
    Counters pe;
};

// Two one-packet windows pushed on consecutive edges c and c + 1.
Outcome two_windows(int sets) {
    RunConfig cfg;
    cfg.pe_array.accumulator_sets = sets;
    const Layer l = conv_layer(16, 1, 1, 1, 16, 16, 1, 0);
    const LayerWork w = random_work(l, 1, PruneMode::Dense, 0.0, 1.0, 1.0, 9);
    DatapathTop top("top", cfg);
    std::vector<int> order(16);
    for (int i = 0; i < 16; ++i) order[size_t(i)] = i;
    const PassPlan plan(cfg, l, w, Pass::FF, 1, order, nullptr);
    Outcome out;
    top.stimulus = [&](UnitTop& t) {
        top.configure(plan, 0);
        const int64_t c = t.cycle();
        LanePacket p;
        p.valid = 0xffff;  // 16 valid positions in segment 0: 4 lanes busy per group
        p.groups = 0xffff;
        p.cycles = 1;
        p.window = 0;
        p.flags = StepCmd::LastOfWindow;
        top.packets.push(p);
        t.edge();
        p.window = 1;
        p.flags = StepCmd::LastOfWindow | StepCmd::LastOfTile;
        top.packets.push(p);
        while (!top.done.can_pop() && t.cycle() < c + 100) t.edge();
        out.done_after = t.cycle() - c;
    };
    sc_core::sc_start();
    out.pe = top.pe.take_counters();
    return out;
}

// One accumulator set: window 0's packet accumulates at c + 4 (visible c + 1, 3 multiplier stages)
// and writes back over c + 5 .. c + 12, acknowledged at c + 14. Window 1's packet reaches the
// accumulate stage at c + 5 and waits for the set until c + 14 (9 stall cycles); its write-back runs
// c + 15 .. c + 22, acknowledged at c + 24; done visible at c + 25.
TEST(PeArrayUnit, OneAccumulatorSetWaitsForTheWriteBack) {
    const Outcome o = two_windows(1);
    EXPECT_EQ(o.done_after, 25);
    EXPECT_EQ(o.pe.accumulator_stall_cycles, 9);
    EXPECT_EQ(o.pe.valid_macs, 2 * 4 * 16);
}

// Two sets: window 1 accumulates at c + 5 in the other set; its write-back queues behind window 0's
// at the output buffer (c + 13 .. c + 20), acknowledged at c + 22; done visible at c + 23. No stall.
TEST(PeArrayUnit, TwoAccumulatorSetsHideTheWriteBack) {
    const Outcome o = two_windows(2);
    EXPECT_EQ(o.done_after, 23);
    EXPECT_EQ(o.pe.accumulator_stall_cycles, 0);
}

}  // namespace
}  // namespace swpu::test
