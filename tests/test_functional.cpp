// Functional check of the sparse datapath: FF outputs, BP input gradients and WG weight gradients
// computed by the simulated PE array (FP16 x FP16 -> FP32, through the DBL controller, the
// compaction network and the bi-directional switches) against an Eigen reference, for random
// layers and masks of every pruning mode, and the exact count of MACs performed.
#include <cmath>
#include <sstream>

#include <gtest/gtest.h>

#include "testbench.hpp"

namespace swpu::test {
namespace {

struct Shape {
    const char* name;
    int K, C, R, S, H, W, stride, pad, N;
    bool fc;
};

// 1x1, 3x3 with padding, stride 2, a 7x7 stem, channel counts that are not multiples of the
// lanes/groups, rows wider than the window, and an FC layer.
const Shape kShapes[] = {
    {"k16c8_1x1", 16, 8, 1, 1, 6, 6, 1, 0, 1, false},
    {"k19c5_3x3p1", 19, 5, 3, 3, 7, 7, 1, 1, 2, false},
    {"k20c6_3x3s2p1", 20, 6, 3, 3, 9, 9, 2, 1, 1, false},
    {"k17c3_7x7s2p3", 17, 3, 7, 7, 12, 12, 2, 3, 1, false},
    {"k16c4_3x3_wide", 16, 4, 3, 3, 3, 70, 1, 1, 1, false},
    {"k8c16_1x1s2", 8, 16, 1, 1, 8, 8, 2, 0, 2, false},
    {"fc_k12_f50", 12, 50, 1, 16, 1, 16, 1, 0, 3, true},
};

struct Case {
    int shape;
    PruneMode mode;
    Pass pass;
    std::string variant;  // "", "noreorder", "crossbar", "nodbl", "d1", "fast", "decoupled", "noskip", "bpfilter"...; "_fast": fast engine
};

void PrintTo(const Case& c, std::ostream* os) {
    *os << kShapes[c.shape].name << "/" << to_string(c.mode) << "/" << to_string(c.pass) << "/" << c.variant;
}

std::string case_name(const testing::TestParamInfo<Case>& info) {
    std::string m = to_string(info.param.mode);
    for (auto& ch : m)
        if (ch == '-') ch = '_';
    std::string n = std::string(kShapes[info.param.shape].name) + "_" + m + "_" + to_string(info.param.pass);
    if (!info.param.variant.empty()) n += "_" + info.param.variant;
    return n;
}

std::vector<Case> all_cases() {
    std::vector<Case> v;
    const PruneMode modes[] = {PruneMode::Dense, PruneMode::Structured, PruneMode::Unstructured,
                               PruneMode::ShapeOnly, PruneMode::LineOnly, PruneMode::SubStructured};
    for (int s = 0; s < int(std::size(kShapes)); ++s)
        for (PruneMode m : modes)
            for (Pass p : {Pass::FF, Pass::BP, Pass::WG}) v.push_back({s, m, p, ""});
    // Variants on a subset: reorder off, crossbar routing, DBL off, one connected segment, decoupled
    // groups, and the fast engine (the default is the cycle engine; "_fast": the fast engine).
    for (int s : {1, 2, 4, 6})
        for (Pass p : {Pass::FF, Pass::BP, Pass::WG})
            for (const char* var : {"noreorder", "crossbar", "crossbar_fast", "nodbl", "d1", "fast", "decoupled",
                                    "decoupled_fast", "crossbar_decoupled", "crossbar_decoupled_fast"})
                v.push_back({s, s == 6 ? PruneMode::Unstructured : PruneMode::SubStructured, p, var});
    // Decoupled groups without DBL, and a machine that skips nothing (every operand and weight is
    // computed; the FC layer's block padding would count as inputs, so conv layers only).
    for (int s : {1, 2})
        for (Pass p : {Pass::FF, Pass::BP, Pass::WG}) {
            v.push_back({s, PruneMode::SubStructured, p, "decoupled_nodbl"});
            v.push_back({s, PruneMode::Unstructured, p, "crossbar_decoupled_nodbl"});
            v.push_back({s, PruneMode::Unstructured, p, "crossbar_decoupled_nodbl_fast"});
        }
    for (int s : {0, 1, 2, 4})
        for (Pass p : {Pass::FF, Pass::BP, Pass::WG}) v.push_back({s, PruneMode::SubStructured, p, "noskip"});
    // Filter-oriented BP (FF's clusters, per-group dO lines, cross-group sums into FP32 partials):
    // every shape and mode, and without DBL, with the crossbar, without skipping.
    // On the cycle engine, with "_fast" copies on the fast engine.
    for (int s = 0; s < int(std::size(kShapes)); ++s)
        for (PruneMode m : modes)
            for (const char* var : {"bpfilter", "bpfilter_fast"}) v.push_back({s, m, Pass::BP, var});
    for (int s : {1, 2, 6})
        for (const char* var : {"bpfilter_nodbl", "bpfilter_crossbar", "bpfilter_noreorder", "bpfilter_noskip",
                                "bpfilter_nodbl_fast", "bpfilter_crossbar_fast", "bpfilter_noreorder_fast",
                                "bpfilter_noskip_fast"})
            v.push_back({s, s == 6 ? PruneMode::Unstructured : PruneMode::SubStructured, Pass::BP, var});
    return v;
}

class Functional : public testing::TestWithParam<Case> {};

TEST_P(Functional, MatchesEigenReference) {
    const Case& cs = GetParam();
    const Shape& sh = kShapes[cs.shape];
    RunConfig cfg;
    cfg.simulation.mode = "functional";
    if (cs.variant == "noreorder") cfg.reorder_unit.enabled = false;
    const auto has = [&](const char* what) { return cs.variant.find(what) != std::string::npos; };
    if (has("fast")) cfg.simulation.engine = "fast";
    if (has("bpfilter")) cfg.pe_array.bp_orientation = "filter";
    if (has("noreorder")) cfg.reorder_unit.enabled = false;
    if (has("crossbar")) cfg.compaction.routing = "crossbar";
    if (has("decoupled")) cfg.pe_array.group_sync = "decoupled";
    if (has("nodbl")) cfg.dbl.enabled = false;
    const bool noskip = has("noskip");
    if (noskip) cfg.skip = {false, false, false, false, false, false, false};
    if (cs.variant == "d1") cfg.compaction.segments = 1;
    const Layer l = sh.fc ? fc_layer(sh.K, sh.C, sh.S) : conv_layer(sh.K, sh.C, sh.R, sh.S, sh.H, sh.W, sh.stride, sh.pad);
    const uint64_t seed = 1000 + cs.shape * 37 + int(cs.mode) * 7 + int(cs.pass);
    const LayerWork w = random_work(l, sh.N, cs.mode, 0.6, 0.55, 0.5, seed);
    LayerValues vals = make_layer_values(l, w, sh.N, seed + 99);
    auto results = run_single(cfg, l, w, cs.pass, sh.N, &vals, /*cluster=*/true);
    ASSERT_FALSE(results.empty());
    const Counters& k = results.back().c;

    // Absolute-value copies give each output's sum of |products|: the scale of the FP32 error.
    LayerValues absv = vals;
    for (auto* t : {&absv.weight, &absv.input, &absv.grad_out})
        for (auto& x : *t) x = std::fabs(x);
    // 0/1 copies count the products (MACs) the datapath must perform.
    LayerValues ones = vals;
    for (auto* t : {&ones.weight, &ones.input, &ones.grad_out})
        for (auto& x : *t) x = x != 0.0f || noskip ? 1.0f : 0.0f;
    // A machine that skips no pruned weight computes every weight's gradient.
    WeightMask all_kept;
    all_kept.resize(w.mask.K, w.mask.C, w.mask.R, w.mask.S, true);
    const WeightMask& computed = noskip ? all_kept : w.mask;

    std::vector<double> ref, mag, cnt;
    const std::vector<float>* sim = nullptr;
    if (cs.pass == Pass::FF) {
        ref = ref_ff(l, vals, sh.N);
        mag = ref_ff(l, absv, sh.N);
        cnt = ref_ff(l, ones, sh.N);
        sim = &vals.out;
    } else if (cs.pass == Pass::BP) {
        ref = ref_bp(l, vals, sh.N);
        mag = ref_bp(l, absv, sh.N);
        cnt = ref_bp(l, ones, sh.N);
        sim = &vals.grad_in;
    } else {
        ref = ref_wg(l, vals, computed, sh.N);
        mag = ref_wg(l, absv, computed, sh.N);
        cnt = ref_wg(l, ones, computed, sh.N);
        sim = &vals.grad_w;
    }
    ASSERT_EQ(sim->size(), ref.size());
    double macs = 0;
    int bad = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
        macs += cnt[i];
        const double tol = 4e-5 * mag[i];
        if (mag[i] == 0.0) {
            // Nothing contributes (pruned weight, zero operands): the result is exactly zero.
            if ((*sim)[i] != 0.0f && ++bad < 5) ADD_FAILURE() << "element " << i << " should be exactly 0, got " << (*sim)[i];
        } else if (std::fabs((*sim)[i] - ref[i]) > tol && ++bad < 5) {
            ADD_FAILURE() << "element " << i << ": simulated " << (*sim)[i] << ", reference " << ref[i] << ", tolerance " << tol;
        }
    }
    EXPECT_EQ(bad, 0);
    // The cycle engine's FF/BP results also went to DRAM as FP16 store streams and were read back:
    // exactly the accumulated sums rounded to FP16 (so within the bound plus one FP16 rounding).
    if (!has("fast") && cs.pass != Pass::WG) {
        ASSERT_EQ(vals.stored.size(), sim->size());
        int differ = 0;
        for (size_t i = 0; i < sim->size(); ++i) differ += float_to_fp16_bits(vals.stored[i]) != float_to_fp16_bits((*sim)[i]);
        EXPECT_EQ(differ, 0) << "values read back from DRAM differ from the stored results";
    }
    // Every useful product is performed exactly once; nothing else is.
    EXPECT_EQ(k.valid_macs, int64_t(std::llround(macs)));
    // Lane-slot identity: every lane slot is a MAC, an idle group's lane, an unfilled lane, a dropped
    // step or a window marker.
    EXPECT_EQ(k.lane_slots, k.valid_macs + k.idle_group_lane_slots + k.idle_pack_lane_slots +
                                int64_t(cfg.pe_array.groups) * cfg.pe_array.lanes *
                                    (k.dropped_step_cycles + k.marker_cycles + k.buffer_stall_cycles));
}

INSTANTIATE_TEST_SUITE_P(AllPassesModesShapes, Functional, testing::ValuesIn(all_cases()), case_name);

// A wrong setting of the bi-directional switches is caught by the reference check: the FF results of
// a dense layer with one reverse-switch control bit flipped (segment 0, stage 1, position 1) no
// longer match the Eigen reference, on the cycle engine.
TEST(FunctionalFault, WrongSwitchSettingIsCaught) {
    RunConfig cfg;
    cfg.simulation.mode = "functional";
    const Layer l = conv_layer(16, 4, 3, 3, 10, 10, 1, 1);
    const LayerWork w = random_work(l, 1, PruneMode::Dense, 0.0, 0.6, 1.0, 77);
    LayerValues vals = make_layer_values(l, w, 1, 78);
    SwpuChip chip("chip", cfg);
    chip.compaction_network.inject_switch_fault(0, 1, 1);
    chip.set_single(&l, &w, Pass::FF, 1, &vals, true);
    sc_core::sc_start();
    const std::vector<double> ref = ref_ff(l, vals, 1);
    int bad = 0;
    for (size_t i = 0; i < ref.size(); ++i) bad += std::fabs(vals.out[i] - ref[i]) > 1e-3 * (1.0 + std::fabs(ref[i]));
    EXPECT_GT(bad, 0) << "a flipped switch went unnoticed";
}

// The PE array multiplies what the packets carry: a stuck sign wire on one lane of the network's
// output changes the results (were the operands read from the layer's tensors, it would not).
class FunctionalLaneFault : public testing::TestWithParam<Pass> {};

TEST_P(FunctionalLaneFault, CorruptedLaneOperandIsCaught) {
    const Pass pass = GetParam();
    RunConfig cfg;
    cfg.simulation.mode = "functional";
    const Layer l = conv_layer(16, 4, 3, 3, 10, 10, 1, 1);
    const LayerWork w = random_work(l, 1, PruneMode::Dense, 0.0, 1.0, 1.0, 91);
    LayerValues vals = make_layer_values(l, w, 1, 92);
    SwpuChip chip("chip", cfg);
    chip.compaction_network.inject_lane_fault(0);
    chip.set_single(&l, &w, pass, 1, &vals, true);
    sc_core::sc_start();
    const std::vector<double> ref =
        pass == Pass::FF ? ref_ff(l, vals, 1) : pass == Pass::BP ? ref_bp(l, vals, 1) : ref_wg(l, vals, w.mask, 1);
    const std::vector<float>& sim = pass == Pass::FF ? vals.out : pass == Pass::BP ? vals.grad_in : vals.grad_w;
    ASSERT_EQ(sim.size(), ref.size());
    int bad = 0;
    for (size_t i = 0; i < ref.size(); ++i) bad += std::fabs(sim[i] - ref[i]) > 1e-3 * (1.0 + std::fabs(ref[i]));
    EXPECT_GT(bad, 0) << "a corrupted lane operand went unnoticed";
}

INSTANTIATE_TEST_SUITE_P(Passes, FunctionalLaneFault, testing::Values(Pass::FF, Pass::BP, Pass::WG),
                         [](const testing::TestParamInfo<Pass>& i) { return std::string(to_string(i.param)); });

}  // namespace
}  // namespace swpu::test
