// Cycle counts derived by hand from the hardware's rules (docs/architecture.md), and the exactness
// of the two simulation shortcuts: timing mode vs functional mode, time skipping vs ticking.
#include <cmath>
#include <set>

#include <gtest/gtest.h>

#include "testbench.hpp"

namespace swpu::test {
namespace {

// Clock period in ps as the chip uses it: 1e6 / 675 MHz = 1481.48 -> 1481 ps.
constexpr int64_t kPeriodPs = 1481;
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

LayerWork dense_work(const Layer& l, int N) {
    LayerWork w = random_work(l, N, PruneMode::Dense, 0.0, 1.0, 1.0, 7);
    return w;
}

// A dense 3x3 layer whose work fills the array exactly: K = 32 (2 clusters of G = 16), C = 8,
// 10x10 input without padding -> 8x8 outputs = one 64-position window (8 rows of 8). Every step
// offers 64 valid operands: 16 per segment over 4 lanes per segment = 4 cycles, all 256 lanes busy.
// Both engines must give the numbers derived here from the clocked units' rules.
std::string dense_layer_run(const char* engine) {
    return in_child([&] {
        RunConfig cfg;
        cfg.simulation.engine = engine;
        const Layer l = conv_layer(32, 8, 3, 3, 10, 10, 1, 0);
        const LayerWork w = dense_work(l, 1);
        auto rs = run_single(cfg, l, w, Pass::FF, 1, nullptr, /*cluster=*/false);
        return results_json(rs, 0);
    });
}

TEST(Cycles, DenseLayerFillsTheArray) {
    const Layer l = conv_layer(32, 8, 3, 3, 10, 10, 1, 0);
    for (const char* engine : {"cycle", "fast"}) {
        SCOPED_TRACE(engine);
        const nlohmann::json j = nlohmann::json::parse(dense_layer_run(engine));
        ASSERT_EQ(j["results"].size(), 1u) << j.dump();
        const nlohmann::json& k = j["results"][0];
        // Compute: 2 clusters x (C*R*S = 72 steps) x 4 cycles = 576 = MACs / (G*L) = 32*8*9*64 / 256.
        EXPECT_EQ(k["compute_cycles"], 576);
        EXPECT_EQ(k["compute_cycles"].get<int64_t>(), l.macs() / 256);
        EXPECT_EQ(k["valid_macs"].get<int64_t>(), l.macs());
        EXPECT_EQ(k["steps"], 144);
        EXPECT_EQ(k["idle_group_lane_slots"].get<int64_t>() + k["idle_pack_lane_slots"].get<int64_t>(), 0);
        // Fill: tile 0 loads the whole input (resident) and cluster 0's weights, line-compressed:
        //   input, compressed (bitmap + values): 8 channels x 10 rows x (10 values * 2 B + 2 B bitmap) = 1760 B
        //   weights: 16 filters x 8 x 3 lines x 3 values x 2 B = 2304 B + line mask 16*24 bits = 48 B
        //   = 4112 B -> transactions of 4096 B and 16 B; the bus moves 64 + 1 bursts of 64 B:
        //   4160 B / 12.8 B/ns = 325 ns, data complete 100 ns later = 425 ns -> next edge: 287 cycles.
        const int64_t fill = ceil_div(425000, kPeriodPs);
        EXPECT_EQ(fill, 287);
        // One tile on the clocked datapath (docs/architecture.md, cycle rules):
        //   mask load: 16 groups x 24 lines x 3 bits = 18 words at 4 words per cycle  =   5
        //   tile command and done handshake (a register each way)                      =   2
        //   first line (8 rows x 10 values x 16 bit = 5 words: 1 bank cycle) + read latency 1 = 2
        //   compute: 72 steps x 4 cycles                                               = 288
        //   last packet: 4 log stages + 3 multiplier stages                            =   7
        //   write-back: 16 groups x 64 positions x 16 bit = 64 words over 8 banks = 8, ack 2 = 10
        const int64_t tile = 5 + 2 + 2 + 288 + 7 + 10;
        EXPECT_EQ(tile, 314);
        EXPECT_EQ(k["mask_load_cycles"], 2 * 5);
        // Cluster 1's weights (2352 B) load during tile 0 (193 cycles < 314): hidden.
        // Drain: the last tile's outputs, 16 x 64 x 2 B = 2048 B: 160 ns + 100 ns = 260 ns -> 176 cycles.
        const int64_t drain = ceil_div(260000, kPeriodPs);
        EXPECT_EQ(drain, 176);
        EXPECT_EQ(k["cycles"].get<int64_t>(), fill + 2 * tile + drain);
        EXPECT_EQ(k["stall_dram_cycles"].get<int64_t>(), fill + drain);
        EXPECT_EQ(k["dram_read_bytes"], 1760 + 2 * 2352);
        EXPECT_EQ(k["dram_write_bytes"], 2 * 2048);
        // Inside a tile only the fill waits: the first step reaches the network one cycle after its
        // issue, its line and weight word three cycles after: 2 operand-wait cycles per tile (a stall
        // counter of the clocked network; the fast engine has none). No back-pressure or accumulator stall.
        EXPECT_EQ(k["operand_wait_cycles"], std::string(engine) == "cycle" ? 2 * 2 : 0);
        EXPECT_EQ(k["backpressure_cycles"], 0);
        EXPECT_EQ(k["accumulator_stall_cycles"], 0);
    }
}

// Segment imbalance on a hand-made window: a 1x1 layer, one input channel, 8x8 positions. Valid
// positions: segment 0 has 5, segment 1 has 16, segment 2 none, segment 3 one.
TEST(Cycles, FullestSegmentSetsThePace) {
    const Layer l = conv_layer(16, 1, 1, 1, 8, 8, 1, 0);
    LayerWork w = random_work(l, 1, PruneMode::Dense, 0.0, 0.0, 1.0, 3);
    for (int i : {0, 3, 5, 9, 15}) w.input_nonzero.set(0, 0, i / 8, i % 8, true);
    for (int i = 16; i < 32; ++i) w.input_nonzero.set(0, 0, i / 8, i % 8, true);
    w.input_nonzero.set(0, 0, 63 / 8, 63 % 8, true);
    std::string log4 = in_child([&] {
        RunConfig cfg;
        return std::to_string(run_single(cfg, l, w, Pass::FF, 1, nullptr, false)[0].c.compute_cycles);
    });
    // max(ceil(5/4), ceil(16/4), 0, ceil(1/4)) = 4 cycles.
    EXPECT_EQ(log4, "4");
    std::string log1 = in_child([&] {
        RunConfig cfg;
        cfg.compaction.segments = 1;
        return std::to_string(run_single(cfg, l, w, Pass::FF, 1, nullptr, false)[0].c.compute_cycles);
    });
    // One connected segment: ceil(22 / 16) = 2 cycles.
    EXPECT_EQ(log1, "2");
    std::string xbar = in_child([&] {
        RunConfig cfg;
        cfg.compaction.routing = "crossbar";
        return std::to_string(run_single(cfg, l, w, Pass::FF, 1, nullptr, false)[0].c.compute_cycles);
    });
    // A crossbar (lockstep: one per cluster) is one segment as wide as the window: ceil(22 / 16) = 2.
    EXPECT_EQ(xbar, "2");
}

// A layer with little reuse is bounded by DRAM bandwidth: 1x1, K = C = 256 on 2x2 outputs.
// Each cluster's weights (16 x 256 x 2 B + mask) take ~527 cycles to load, its compute 256 cycles.
TEST(Cycles, DramBoundLayerIsBoundedByBandwidth) {
    RunConfig cfg;
    const Layer l = conv_layer(256, 256, 1, 1, 2, 2, 1, 0);
    const LayerWork w = dense_work(l, 1);
    auto rs = run_single(cfg, l, w, Pass::FF, 1, nullptr, false);
    const Counters& k = rs[0].c;
    // 256 steps of one cycle (4 valid operands in segment 0) per cluster, 16 clusters.
    EXPECT_EQ(k.compute_cycles, 16 * 256);
    const double bytes_per_cycle = 12.8 * kPeriodPs / 1000.0;  // 18.96 B per cycle
    const int64_t bound = int64_t(std::ceil(double(k.dram_read_bytes + k.dram_write_bytes) / bytes_per_cycle));
    EXPECT_GE(k.cycles, bound);
    // Above the bound only by the per-request latency (68 cycles each of 16 loads and the drain),
    // burst rounding and the edge alignment.
    EXPECT_LE(k.cycles, bound + 17 * 70 + 300);
    // The datapath waits for DRAM longer than it computes.
    EXPECT_GT(k.stall_dram_cycles, k.compute_cycles);
}

struct ModeCase {
    Pass pass;
    const char* routing;
    bool dbl;
    const char* engine;
};

void PrintTo(const ModeCase& m, std::ostream* os) {
    *os << to_string(m.pass) << "/" << m.routing << "/" << (m.dbl ? "dbl" : "nodbl") << "/" << m.engine;
}

class Exactness : public testing::TestWithParam<ModeCase> {};
class CycleExactness : public testing::TestWithParam<ModeCase> {};

// Counters of one (layer, pass) run on a fresh chip in a child process (functional mode computes
// values too).
std::string counts_of(const ModeCase& mc, const Layer& l, const LayerWork& w, int N, bool functional, bool skip) {
    return in_child([&] {
        RunConfig cfg;
        cfg.simulation.engine = mc.engine;
        cfg.compaction.routing = mc.routing;
        cfg.dbl.enabled = mc.dbl;
        cfg.simulation.mode = functional ? "functional" : "timing";
        cfg.simulation.time_skip = skip;
        LayerValues v = make_layer_values(l, w, N, 5);
        SwpuChip chip("chip", cfg);
        chip.set_single(&l, &w, mc.pass, N, functional ? &v : nullptr, true);
        sc_core::sc_start();
        return results_json(chip.results(), chip.total_cycles());
    });
}

// Timing mode and functional mode run the same schedule: identical cycles and action counts.
TEST_P(Exactness, TimingEqualsFunctional) {
    const Layer l = conv_layer(40, 12, 3, 3, 9, 9, 2, 1);
    const LayerWork w = random_work(l, 2, PruneMode::SubStructured, 0.7, 0.5, 0.4, 11);
    const std::string a = counts_of(GetParam(), l, w, 2, false, true), b = counts_of(GetParam(), l, w, 2, true, true);
    EXPECT_NE(a.find("total_cycles"), std::string::npos) << a;
    EXPECT_EQ(a, b);
}

// Fast engine: time skipping advances SystemC time once per tile; ticking waits every clock cycle.
// Both must give identical cycle and action counts. (The cycle engine always ticks.)
TEST_P(Exactness, SkippingEqualsTicking) {
    const Layer l = conv_layer(24, 10, 3, 3, 12, 12, 1, 1);
    const LayerWork w = random_work(l, 1, PruneMode::SubStructured, 0.6, 0.5, 0.5, 13);
    const std::string a = counts_of(GetParam(), l, w, 1, false, true), b = counts_of(GetParam(), l, w, 1, false, false);
    EXPECT_NE(a.find("total_cycles"), std::string::npos) << a;
    EXPECT_EQ(a, b);
}

const ModeCase kModeCases[] = {
    {Pass::FF, "log", true, "fast"},  {Pass::BP, "log", true, "fast"},  {Pass::WG, "log", true, "fast"},
    {Pass::FF, "log", false, "fast"}, {Pass::BP, "log", false, "fast"}, {Pass::WG, "log", false, "fast"},
    {Pass::FF, "crossbar", false, "fast"}, {Pass::BP, "crossbar", true, "fast"}, {Pass::WG, "crossbar", false, "fast"},
};
const ModeCase kCycleCases[] = {
    {Pass::FF, "log", true, "cycle"},  {Pass::BP, "log", true, "cycle"},  {Pass::WG, "log", true, "cycle"},
    {Pass::FF, "log", false, "cycle"}, {Pass::BP, "log", false, "cycle"}, {Pass::WG, "log", false, "cycle"},
    {Pass::FF, "crossbar", false, "cycle"}, {Pass::BP, "crossbar", true, "cycle"}, {Pass::WG, "crossbar", false, "cycle"},
};

std::string mode_name(const testing::TestParamInfo<ModeCase>& i) {
    return std::string(to_string(i.param.pass)) + "_" + i.param.routing + (i.param.dbl ? "_dbl" : "_nodbl") + "_" +
           i.param.engine;
}

INSTANTIATE_TEST_SUITE_P(Passes, Exactness, testing::ValuesIn(kModeCases), mode_name);

// The cycle engine: timing mode and functional mode give identical cycles and counts too.
TEST_P(CycleExactness, TimingEqualsFunctional) {
    const Layer l = conv_layer(40, 12, 3, 3, 9, 9, 2, 1);
    const LayerWork w = random_work(l, 2, PruneMode::SubStructured, 0.7, 0.5, 0.4, 11);
    const std::string a = counts_of(GetParam(), l, w, 2, false, true), b = counts_of(GetParam(), l, w, 2, true, true);
    EXPECT_NE(a.find("total_cycles"), std::string::npos) << a;
    EXPECT_EQ(a, b);
}

INSTANTIATE_TEST_SUITE_P(Passes, CycleExactness, testing::ValuesIn(kCycleCases), mode_name);

// A whole training iteration (narrow ResNet-18, CIFAR form) ticked and skipped: identical.
TEST(Cycles, WholeIterationSkippingEqualsTicking) {
    WorkloadParams p;
    p.batch = 1;
    const Trace tr = make_synthetic_trace(p, build_network("resnet18-cifar", 0.125), 1);
    auto run = [&](bool skip) {
        return in_child([&] {
            RunConfig cfg;
            cfg.simulation.engine = "fast";
            cfg.simulation.time_skip = skip;
            SwpuChip chip("chip", cfg);
            chip.set_trace(&tr);
            sc_core::sc_start();
            return results_json(chip.results(), chip.total_cycles());
        });
    };
    const std::string a = run(true), b = run(false);
    EXPECT_GT(a.size(), 1000u) << a;
    EXPECT_EQ(a, b);
}

// A whole training iteration (narrow ResNet-18, CIFAR form, batch 2) on both engines: every action
// count identical, total cycles within 0.5% (docs/architecture.md lists what the fast engine does not
// see: the cycle engine's operand waits, back-pressure and accumulator stalls).
TEST(Cycles, WholeIterationEnginesAgree) {
    WorkloadParams p;
    p.batch = 2;
    const Trace tr = make_synthetic_trace(p, build_network("resnet18-cifar", 0.125), 1);
    auto run = [&](const char* engine) {
        return in_child([&] {
            RunConfig cfg;
            cfg.simulation.engine = engine;
            SwpuChip chip("chip", cfg);
            chip.set_trace(&tr);
            sc_core::sc_start();
            return results_json(chip.results(), chip.total_cycles());
        });
    };
    const nlohmann::json a = nlohmann::json::parse(run("cycle")), b = nlohmann::json::parse(run("fast"));
    ASSERT_EQ(a["results"].size(), b["results"].size());
    const std::set<std::string> time_only = {"cycles", "stall_dram_cycles", "start_cycle", "operand_wait_cycles",
                                             "backpressure_cycles", "accumulator_stall_cycles", "bank_conflict_cycles"};
    for (size_t i = 0; i < a["results"].size(); ++i)
        for (auto it = a["results"][i].begin(); it != a["results"][i].end(); ++it)
            if (it.value().is_number_integer() && !time_only.count(it.key()))
                EXPECT_EQ(it.value(), b["results"][i][it.key()]) << a["results"][i]["layer"] << " " << it.key();
    const double ca = a["total_cycles"].get<double>(), cb = b["total_cycles"].get<double>();
    EXPECT_GT(ca, 100000);
    EXPECT_NEAR(cb / ca, 1.0, 0.005) << ca << " vs " << cb;
}

}  // namespace
}  // namespace swpu::test
