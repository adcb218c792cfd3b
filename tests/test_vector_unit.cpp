// Unit testbench of the vector unit: the work of each non-convolution layer (element-ops and DRAM
// bytes, by hand), and port-level, the clocked unit's cycles: lanes element-ops per cycle.
#include <gtest/gtest.h>

#include "swpu/vector_unit.hpp"
#include "unit_harness.hpp"

namespace swpu::test {
namespace {

// SGD with momentum over 1000 kept weights, 4 ops each (momentum, decay, update): 4000 element-ops
// on 32 lanes = ceil(4000 / 32) = 125 cycles.
TEST(VectorUnit, SgdWorkByHand) {
    RunConfig cfg;
    VectorUnit vu("vu", cfg);
    const VectorWork w = vu.sgd_work(1000);
    EXPECT_EQ(w.ops, 4000);
    EXPECT_EQ(w.compute_cycles, 125);
}

// Port-level: the command pushed at edge c is taken at c + 1; the unit is busy c + 1 .. c + 125 and
// pushes done in its last busy cycle: done is visible at c + 126. A second command waiting behind it
// is taken in the next cycle (c + 126), busy c + 126 .. c + 250, done visible at c + 251: no idle
// cycle between two commands.
TEST(VectorUnitClocked, LanesElementOpsPerCycle) {
    RunConfig cfg;
    struct Top : UnitTop {
        VectorUnit vu;
        Fifo<VectorWork> cmd{"cmd", 1};
        Fifo<int> done{"done", 1};
        Top(sc_core::sc_module_name n, const RunConfig& c) : UnitTop(n), vu("vu", c) {
            vu.clk(clk);
            vu.reset(reset);
            vu.cmd_in(cmd);
            vu.done_out(done);
        }
    } top("top", cfg);
    int64_t pushed = 0, first = -1, second = -1;
    top.stimulus = [&](UnitTop& t) {
        const VectorWork w = top.vu.sgd_work(1000);
        pushed = t.cycle();
        top.cmd.push(w);
        t.edge();
        while (!top.cmd.can_push()) t.edge();  // the unit took the first command
        top.cmd.push(w);
        while ((first < 0 || second < 0) && t.cycle() < pushed + 1000) {
            t.edge();
            if (top.done.can_pop()) {
                top.done.pop();
                (first < 0 ? first : second) = t.cycle();
            }
        }
    };
    sc_core::sc_start();
    EXPECT_EQ(first - pushed, 126);
    EXPECT_EQ(second - pushed, 251);
    const Counters k = top.vu.take_counters();
    EXPECT_EQ(k.vector_cycles, 250);
    EXPECT_EQ(k.vector_ops, 8000);
}

}  // namespace
}  // namespace swpu::test
