// Unit testbench of the hamming-distance clustering reorder unit: cost against brute force and
// natural order on small cases, and its cycle count by hand.
#include <algorithm>
#include <functional>
#include <numeric>
#include <random>

#include <gtest/gtest.h>

#include "swpu/reorder_unit.hpp"
#include "unit_harness.hpp"

namespace swpu {
namespace {

// Optimum over all partitions of the items into clusters of G (small n only).
int64_t brute_force_optimum(const LineMaskSet& m, int G) {
    const int n = m.items;
    std::vector<int> order;
    std::vector<char> used(n, 0);
    int64_t best = INT64_MAX;
    std::function<void()> rec = [&]() {
        if (int(order.size()) == n) {
            best = std::min(best, ReorderUnit::union_cost(m, order, G));
            return;
        }
        // Canonical form: a cluster starts with its lowest unused item; members increase.
        const bool starts = order.size() % G == 0;
        int lo = 0;
        if (starts) {
            while (used[lo]) ++lo;
            used[lo] = 1;
            order.push_back(lo);
            rec();
            order.pop_back();
            used[lo] = 0;
            return;
        }
        for (int i = order.back() + 1; i < n; ++i) {
            if (used[i]) continue;
            used[i] = 1;
            order.push_back(i);
            rec();
            order.pop_back();
            used[i] = 0;
        }
    };
    rec();
    return best;
}

// Items from `families` latent masks with a few flipped bits, interleaved in natural order.
LineMaskSet family_masks(int n, int bits, int families, double flip, uint64_t seed) {
    std::mt19937_64 rng(seed);
    auto u = [&]() { return double(rng() >> 11) * (1.0 / 9007199254740992.0); };
    std::vector<std::vector<bool>> base(families, std::vector<bool>(bits));
    for (auto& f : base)
        for (int b = 0; b < bits; ++b) f[b] = u() < 0.5;
    LineMaskSet m;
    m.resize(n, bits);
    for (int i = 0; i < n; ++i)
        for (int b = 0; b < bits; ++b)
            if (base[i % families][b] != (u() < flip)) m.set(i, b);
    return m;
}

TEST(ReorderUnit, GreedyBeatsNaturalOrderAndApproachesOptimum) {
    RunConfig cfg;
    ReorderUnit unit("ru", cfg);
    std::vector<int> natural(8);
    std::iota(natural.begin(), natural.end(), 0);
    double worst_ratio = 1.0;
    for (int G : {2, 4}) {
        for (uint64_t seed = 1; seed <= 20; ++seed) {
            const LineMaskSet m = family_masks(8, 24, 8 / G, 0.08, seed);
            const ReorderResult r = unit.cluster(m, G);
            std::vector<int> sorted = r.order;
            std::sort(sorted.begin(), sorted.end());
            ASSERT_EQ(sorted, natural) << "the reorder table is a permutation";
            const int64_t greedy = ReorderUnit::union_cost(m, r.order, G);
            const int64_t nat = ReorderUnit::union_cost(m, natural, G);
            const int64_t opt = brute_force_optimum(m, G);
            EXPECT_LE(opt, greedy);
            EXPECT_LE(greedy, nat) << "G=" << G << " seed=" << seed;
            worst_ratio = std::max(worst_ratio, double(greedy) / double(opt));
        }
    }
    // Greedy clustering stays close to the optimum on family-structured masks.
    EXPECT_LE(worst_ratio, 1.25);
    RecordProperty("worst_greedy_over_optimum", std::to_string(worst_ratio));
}

TEST(ReorderUnit, DisabledKeepsNaturalOrderForFree) {
    RunConfig cfg;
    cfg.reorder_unit.enabled = false;
    ReorderUnit unit("ru", cfg);
    const LineMaskSet m = family_masks(32, 40, 4, 0.1, 3);
    const ReorderResult r = unit.cluster(m, 16);
    for (int i = 0; i < 32; ++i) EXPECT_EQ(r.order[i], i);
    EXPECT_EQ(r.cycles, 0);
    EXPECT_EQ(r.hamming_ops, 0);
}

// Cycle count by hand: 32 items, G = 16, 100-bit masks (one 256-bit unit-operation per compare),
// 8 XOR/popcount units. Cluster 1: 15 rounds over 31, 30, ..., 17 candidates = 360 compares; a round
// scans ceil(candidates / 8) cycles: 31..25 -> 4 each (28), 24..17 -> 3 each (24) = 52 cycles.
// Cluster 2: 15 rounds over 15, ..., 1 = 120 compares: 15..9 -> 2 each (14), 8..1 -> 1 each (8) =
// 22 cycles. Plus one cycle per placed item (2 seeds + 30 picks = 32): 52 + 22 + 32 = 106 cycles.
TEST(ReorderUnit, CyclesByHand) {
    RunConfig cfg;
    ReorderUnit unit("ru", cfg);
    const LineMaskSet m = family_masks(32, 100, 4, 0.1, 5);
    const ReorderResult r = unit.cluster(m, 16);
    EXPECT_EQ(r.hamming_ops, 480);
    EXPECT_EQ(r.cycles, 106);
    // Wider masks take more unit-operations per compare: 600 bits = 3 operations.
    const LineMaskSet wide = family_masks(32, 600, 4, 0.1, 5);
    EXPECT_EQ(unit.cluster(wide, 16).hamming_ops, 480 * 3);
}

TEST(ReorderUnit, LineMasksOrientation) {
    WeightMask w;
    w.resize(3, 2, 2, 3, false);
    w.row(1, 0, 1) = 0b101;  // filter 1, channel 0, row 1
    w.row(2, 1, 0) = 0b010;  // filter 2, channel 1, row 0
    const LineMaskSet ff = line_masks_for(w, Pass::FF);  // per filter, bits (c, r)
    EXPECT_EQ(ff.items, 3);
    EXPECT_EQ(ff.bits, 4);
    EXPECT_EQ(ff.item(1)[0], 1ull << (0 * 2 + 1));
    EXPECT_EQ(ff.item(2)[0], 1ull << (1 * 2 + 0));
    const LineMaskSet bp = line_masks_for(w, Pass::BP);  // per channel, bits (k, r)
    EXPECT_EQ(bp.items, 2);
    EXPECT_EQ(bp.bits, 6);
    EXPECT_EQ(bp.item(0)[0], 1ull << (1 * 2 + 1));
    EXPECT_EQ(bp.item(1)[0], 1ull << (2 * 2 + 0));
}

// Port-level testbench: the clocked state machine on its own clock. The command pushed at edge c is
// taken at c + 1; the unit is busy for the 106 cycles derived above (c + 1 ... c + 106) and pushes
// done in its last busy cycle: done is visible at c + 107. Its table equals the direct computation.
TEST(ReorderUnitClocked, StateMachineCyclesByHand) {
    RunConfig cfg;
    const LineMaskSet m = family_masks(32, 100, 4, 0.1, 5);
    struct Top : test::UnitTop {
        ReorderUnit unit;
        Fifo<ReorderCmd> cmd{"cmd", 1};
        Fifo<int> done{"done", 1};
        Top(sc_core::sc_module_name n, const RunConfig& c) : UnitTop(n), unit("unit", c) {
            unit.clk(clk);
            unit.reset(reset);
            unit.cmd_in(cmd);
            unit.done_out(done);
        }
    } top("top", cfg);
    int64_t pushed = 0, seen = 0;
    top.stimulus = [&](test::UnitTop& t) {
        pushed = t.cycle();
        top.cmd.push(ReorderCmd{&m, 16});
        while (!top.done.can_pop() && t.cycle() < pushed + 1000) t.edge();
        seen = t.cycle();
    };
    sc_core::sc_start();
    EXPECT_EQ(seen - pushed, 107);
    const ReorderResult direct = top.unit.cluster(m, 16);
    EXPECT_EQ(top.unit.last_result().order, direct.order);
    EXPECT_EQ(top.unit.last_result().cycles, 106);
    EXPECT_EQ(top.unit.last_result().hamming_ops, 480);
}

}  // namespace
}  // namespace swpu
