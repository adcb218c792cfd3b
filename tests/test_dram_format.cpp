// The DRAM formats (include/swpu/dram_format.hpp) against the byte-count model of PassPlan: every
// tile's encoded load and store stream is exactly as long as the plan counts, over every pruning
// mode, strides 1 and 2, 1x1 / 3x3 / 7x7 / FC, FF / BP / WG, DBL on and off, the crossbar's
// element-indexed weights, activation compression on and off, filter-oriented BP, FP8 operands,
// and buffers small enough to force bands, weight reloads and spilled gradients. Then the round
// trip (encode, decode) and, on the chip, a corrupted DRAM value (a source row, a weight, an output
// gradient) changing exactly the outputs it feeds: the datapath computes on what the DMA delivered.
#include <cmath>
#include <cstring>
#include <numeric>
#include <sstream>

#include <gtest/gtest.h>

#include "swpu/dram_format.hpp"
#include "testbench.hpp"

namespace swpu::test {
namespace {

struct Shape {
    const char* name;
    int K, C, R, S, H, W, stride, pad, N;
    bool fc;
};

const Shape kShapes[] = {
    {"k16c8_1x1", 16, 8, 1, 1, 6, 6, 1, 0, 1, false},
    {"k19c5_3x3p1", 19, 5, 3, 3, 7, 7, 1, 1, 2, false},
    {"k20c6_3x3s2p1", 20, 6, 3, 3, 9, 9, 2, 1, 1, false},
    {"k17c3_7x7s2p3", 17, 3, 7, 7, 12, 12, 2, 3, 1, false},
    {"k16c4_3x3_wide", 16, 4, 3, 3, 3, 70, 1, 1, 1, false},
    {"k8c16_1x1s2", 8, 16, 1, 1, 8, 8, 2, 0, 2, false},
    {"k40c24_3x3p1_big", 40, 24, 3, 3, 16, 16, 1, 1, 2, false},
    {"fc_k12_f50", 12, 50, 1, 16, 1, 16, 1, 0, 3, true},
};

const PruneMode kModes[] = {PruneMode::Dense, PruneMode::Structured, PruneMode::Unstructured,
                            PruneMode::ShapeOnly, PruneMode::LineOnly, PruneMode::SubStructured};

// Machine variants: the formats and the tilings they change.
const char* const kVariants[] = {"", "nodbl", "crossbar", "nocompress", "bpfilter", "bpfilter_nodbl",
                                 "bpfilter_crossbar", "noskip", "fp8", "small", "small_bpfilter",
                                 "small_nocompress", "small_fused", "single_buffer"};

RunConfig variant_config(const std::string& v) {
    RunConfig cfg;
    const auto has = [&](const char* what) { return v.find(what) != std::string::npos; };
    if (has("nodbl")) cfg.dbl.enabled = false;
    if (has("crossbar")) {
        cfg.compaction.routing = "crossbar";
        cfg.pe_array.group_sync = "decoupled";  // element-indexed weights
    }
    if (has("nocompress")) cfg.memory.activation_compression = false;
    if (has("bpfilter")) cfg.pe_array.bp_orientation = "filter";
    if (has("noskip")) cfg.skip = {false, false, false, false, false, false, false};
    if (has("fp8")) cfg.pe_array.mult_format = "fp8";
    if (has("small")) {  // bands, per-band weight reloads, spilled WG partials, channel blocks
        cfg.buffers.activation.kib = 1;
        cfg.buffers.weight.kib = 1;
        cfg.buffers.output.kib = 2;
    }
    if (has("fused")) cfg.vector_unit.fuse_sgd = true;
    if (has("single_buffer")) cfg.dma.double_buffering = false;
    return cfg;
}

struct Built {
    Layer l;
    LayerWork w;
    LayerValues v;
    std::vector<int> order;
};

Built build(const Shape& sh, PruneMode mode, Pass pass, const RunConfig& cfg, uint64_t seed) {
    Built b;
    b.l = sh.fc ? fc_layer(sh.K, sh.C, sh.S) : conv_layer(sh.K, sh.C, sh.R, sh.S, sh.H, sh.W, sh.stride, sh.pad);
    b.w = random_work(b.l, sh.N, mode, 0.6, 0.55, 0.5, seed);
    b.v = make_layer_values(b.l, b.w, sh.N, seed + 99);
    const int items = pass == Pass::BP && !cfg.bp_filter() ? b.l.C : b.l.K;
    b.order.resize(size_t(items));
    std::iota(b.order.begin(), b.order.end(), 0);
    // A scrambled cluster order: the formats follow the clusters, not the natural order.
    for (size_t i = 0; i + 1 < b.order.size(); i += 2) std::swap(b.order[i], b.order[i + 1]);
    return b;
}

// A plan of the pass with the natural cluster order (what the tests below read of it, the first
// tile's part sizes and the kinds of load, does not depend on the order).
struct NaturalPlan {
    std::vector<int> order;
    PassPlan plan;
    NaturalPlan(const RunConfig& cfg, const Layer& l, const LayerWork& w, Pass pass, int N, LayerValues& v)
        : order(natural(cfg, l, pass)), plan(cfg, l, w, pass, N, order, &v) {}
    static std::vector<int> natural(const RunConfig& cfg, const Layer& l, Pass pass) {
        std::vector<int> o(size_t(pass == Pass::BP && !cfg.bp_filter() ? l.C : l.K));
        std::iota(o.begin(), o.end(), 0);
        return o;
    }
    LoadParts first_parts(const LayerValues& v) const {
        std::vector<uint8_t> bytes;
        return DramFormat(plan).encode_load(plan.tiles()[0], v, bytes);
    }
};

// (b) Every stream's length is the plan's count; and the corpus reaches what it claims to.
TEST(DramFormat, StreamLengthsEqualThePlansByteCounts) {
    int passes = 0, tiles = 0, multi_band = 0, reloads = 0, spills = 0, blocks = 0;
    for (int si = 0; si < int(std::size(kShapes)); ++si)
        for (PruneMode mode : kModes)
            for (Pass pass : {Pass::FF, Pass::BP, Pass::WG})
                for (const char* var : kVariants) {
                    const std::string v = var;
                    if (v.find("bpfilter") != std::string::npos && pass != Pass::BP) continue;
                    const RunConfig cfg = variant_config(v);
                    const Shape& sh = kShapes[si];
                    Built b = build(sh, mode, pass, cfg, 500 + uint64_t(si) * 31 + uint64_t(mode) * 7);
                    const PassPlan plan(cfg, b.l, b.w, pass, sh.N, b.order, &b.v);
                    const DramFormat fmt(plan);
                    OnChipValues on;
                    fmt.init_buffers(on);
                    ++passes;
                    std::vector<uint8_t> bytes;
                    int loads_of_act = 0;
                    for (size_t i = 0; i < plan.tiles().size(); ++i) {
                        const Tile& t = plan.tiles()[i];
                        const std::string where = std::string(sh.name) + "/" + to_string(mode) + "/" + to_string(pass) +
                                                  "/" + v + " tile " + std::to_string(i);
                        bytes.clear();
                        const LoadParts parts = fmt.encode_load(t, b.v, bytes);
                        ASSERT_EQ(int64_t(bytes.size()), t.load_bytes) << where;
                        ASSERT_EQ(parts.total(), t.load_bytes) << where;
                        bytes.clear();
                        if (t.store_bytes > 0) fmt.encode_store(t, on, bytes);
                        ASSERT_EQ(int64_t(bytes.size()), t.store_bytes) << where;
                        ++tiles;
                        loads_of_act += t.act_load;
                        reloads += t.weight_load && i > 0 && plan.tiles()[i - 1].cluster == t.cluster;
                        spills += t.partial_reload;
                        blocks += t.x_begin > 0;
                    }
                    multi_band += loads_of_act > 1;
                }
    RecordProperty("passes", passes);
    RecordProperty("tiles", tiles);
    EXPECT_GT(multi_band, 0) << "no pass with activation bands";
    EXPECT_GT(reloads, 0) << "no pass reloading a cluster's weights";
    EXPECT_GT(spills, 0) << "no pass spilling WG partial gradients";
    EXPECT_GT(blocks, 0) << "no filter-oriented BP pass with channel blocks";
}

// (c) Decoding a tile's load gives back the values it encoded (operands exactly: they are FP16),
// and a store stream read back gives the output buffer's results.
TEST(DramFormat, EncodeDecodeRoundTrip) {
    for (int si : {1, 2, 6, 7})
        for (PruneMode mode : {PruneMode::Unstructured, PruneMode::SubStructured, PruneMode::LineOnly})
            for (Pass pass : {Pass::FF, Pass::BP, Pass::WG})
                for (const char* var : {"", "nodbl", "crossbar", "nocompress", "bpfilter", "small", "small_bpfilter"}) {
                    const std::string v = var;
                    if (v.find("bpfilter") != std::string::npos && pass != Pass::BP) continue;
                    const RunConfig cfg = variant_config(v);
                    const Shape& sh = kShapes[si];
                    Built b = build(sh, mode, pass, cfg, 900 + uint64_t(si) * 13 + uint64_t(mode));
                    const Layer& l = b.l;
                    const PassPlan plan(cfg, l, b.w, pass, sh.N, b.order, &b.v);
                    const DramFormat fmt(plan);
                    OnChipValues on;
                    fmt.init_buffers(on);
                    const std::string what = std::string(sh.name) + "/" + to_string(mode) + "/" + to_string(pass) + "/" + v;
                    std::vector<uint8_t> bytes;
                    for (const Tile& t : plan.tiles()) {
                        bytes.clear();
                        const LoadParts p = fmt.encode_load(t, b.v, bytes);
                        fmt.decode_load(t, bytes.data(), bytes.data() + p.source, bytes.data() + p.source + p.weight, on);
                    }
                    // Every operand the pass loads is back, bit for bit; what no tile loads is NaN.
                    const std::vector<float>& src = pass == Pass::BP ? b.v.grad_out : b.v.input;
                    int wrong = 0, loaded = 0;
                    for (size_t i = 0; i < src.size(); ++i) {
                        if (std::isnan(on.source[i])) continue;
                        ++loaded;
                        wrong += on.source[i] != src[i];
                    }
                    EXPECT_EQ(wrong, 0) << what;
                    EXPECT_GT(loaded, 0) << what;
                    if (pass == Pass::WG) {
                        for (size_t i = 0; i < b.v.grad_out.size(); ++i) wrong += on.grad[i] != b.v.grad_out[i];
                        EXPECT_EQ(wrong, 0) << what << ": output gradients";
                    } else {
                        for (int k = 0; k < l.K; ++k)
                            for (int c = 0; c < l.C; ++c)
                                for (int r = 0; r < l.R; ++r)
                                    for (int s = 0; s < l.S; ++s) {
                                        const size_t i = ((size_t(k) * l.C + c) * l.R + r) * l.S + s;
                                        wrong += on.weight[i] != (b.w.mask.kept(k, c, r, s) ? b.v.weight[i] : 0.0f);
                                    }
                        EXPECT_EQ(wrong, 0) << what << ": weights";
                    }
                    // Results: FP16-representable values in the output buffer, stored and read back.
                    std::vector<float>& res = pass == Pass::WG ? on.grad_w : on.result;
                    for (size_t i = 0; i < res.size(); ++i) res[i] = round_to_fp16(float(int(i % 97) - 48) / 64.0f);
                    LayerValues back = b.v;
                    if (pass != Pass::WG) back.stored.assign(res.size(), -1000.0f);
                    std::vector<float>& got = pass == Pass::WG ? back.grad_w : back.stored;
                    std::fill(got.begin(), got.end(), -1000.0f);
                    for (const Tile& t : plan.tiles()) {
                        if (t.store_bytes == 0) continue;
                        bytes.clear();
                        fmt.encode_store(t, on, bytes);
                        fmt.decode_store(t, bytes.data(), back);
                    }
                    for (size_t i = 0; i < got.size(); ++i) {
                        const float want = pass != Pass::WG || plan.group_mask().kept(int(i / (l.C * l.R * l.S)), int(i / (l.R * l.S) % l.C),
                                                                                       int(i / l.S % l.R), int(i % l.S))
                                               ? res[i]
                                               : -1000.0f;
                        wrong += got[i] != want;
                    }
                    EXPECT_EQ(wrong, 0) << what << ": results";
                }
}

// (d) The chip computes on the bytes the DMA delivered: one FP16 value of the source rows, changed
// in DRAM after the preload, changes the functional result exactly where that operand contributes
// (the reference recomputed with the changed operand agrees everywhere; the unchanged reference
// disagrees exactly at the outputs the changed operand feeds).
class DramCorruption : public testing::TestWithParam<Pass> {};

TEST_P(DramCorruption, ChangesExactlyTheAffectedOutputs) {
    const Pass pass = GetParam();
    RunConfig cfg;
    cfg.simulation.mode = "functional";
    cfg.memory.activation_compression = false;  // dense rows: the value of (n 0, row 0, channel 0, col j) at 2 j
    const Layer l = conv_layer(16, 4, 3, 3, 10, 10, 1, 1);
    const int N = 1;
    const LayerWork w = random_work(l, N, PruneMode::SubStructured, 0.5, 0.7, 0.7, 123);
    LayerValues vals = make_layer_values(l, w, N, 124);
    std::vector<float>& operand = pass == Pass::BP ? vals.grad_out : vals.input;
    const int cols = pass == Pass::BP ? l.Q : l.W;
    int j = 0;
    while (j < cols && operand[size_t(j)] == 0.0f) ++j;
    ASSERT_LT(j, cols);
    const float changed = operand[size_t(j)] * 2.0f;  // exact in FP16
    LayerValues modified = vals;
    (pass == Pass::BP ? modified.grad_out : modified.input)[size_t(j)] = changed;

    {
        const int64_t rows = pass == Pass::BP ? int64_t(l.K) * l.P * l.Q : int64_t(l.C) * l.H * l.W;
        ASSERT_EQ(NaturalPlan(cfg, l, w, pass, N, vals).first_parts(vals).source, rows * 2)
            << "the source rows are not resident";
    }
    SwpuChip chip("chip", cfg);
    // The pass's DRAM image starts at address 0 with tile 0's load stream, source rows first: the
    // value at 2 j. A DRAM fault turns every read of it into the changed value.
    const uint16_t flip = float_to_fp16_bits(operand[size_t(j)]) ^ float_to_fp16_bits(changed);
    chip.dram.inject_fault(uint64_t(2 * j), uint8_t(flip & 0xff));
    chip.dram.inject_fault(uint64_t(2 * j + 1), uint8_t(flip >> 8));
    chip.set_single(&l, &w, pass, N, &vals, true);
    sc_core::sc_start();
    auto ref = [&](const LayerValues& v) { return pass == Pass::FF ? ref_ff(l, v, N) : ref_bp(l, v, N); };
    const std::vector<double> before = ref(vals), after = ref(modified);
    const std::vector<float>& sim = pass == Pass::FF ? vals.out : vals.grad_in;
    ASSERT_EQ(sim.size(), before.size());
    int affected = 0, bad = 0;
    for (size_t i = 0; i < sim.size(); ++i) {
        const double tol = 1e-3 * (1.0 + std::fabs(after[i]));
        const bool feeds = after[i] != before[i];
        const bool moved = std::fabs(sim[i] - before[i]) > tol;
        if (std::fabs(sim[i] - after[i]) > tol && ++bad < 5)
            ADD_FAILURE() << "element " << i << ": simulated " << sim[i] << ", reference with the changed operand " << after[i];
        if (!feeds && moved && ++bad < 5) ADD_FAILURE() << "element " << i << " changed, but the operand does not feed it";
        if (feeds && std::fabs(after[i] - before[i]) > 2 * tol) {
            ++affected;
            if (!moved && ++bad < 5) ADD_FAILURE() << "element " << i << " did not change, but the operand feeds it";
        }
    }
    EXPECT_EQ(bad, 0);
    EXPECT_GT(affected, 0);
}

INSTANTIATE_TEST_SUITE_P(Passes, DramCorruption, testing::Values(Pass::FF, Pass::BP),
                         [](const testing::TestParamInfo<Pass>& i) { return std::string(to_string(i.param)); });

// The same for the other parts of a load stream: the first FP16 value of a weight (FF, BP), of an
// output gradient (WG) or of a source row (WG) read with its exponent's low bit inverted (a DRAM
// fault: the value doubled or halved). Dense formats (DBL off, no compression, dense operands):
// the part's bytes are values, its first value at the part's offset in tile 0's stream. Which
// tensor element it is depends on the cluster order the chip chose, so the test finds it back:
// exactly one element, changed the same way, makes the reference match the result, and the
// unchanged reference does not.
struct PartCase {
    Pass pass;
    const char* part;  // "weight", "grad", "source"
};

void PrintTo(const PartCase& c, std::ostream* os) { *os << to_string(c.pass) << "/" << c.part; }

class DramCorruptionPart : public testing::TestWithParam<PartCase> {};

TEST_P(DramCorruptionPart, ChangesWhatThatOperandFeeds) {
    const PartCase pc = GetParam();
    const std::string part = pc.part;
    RunConfig cfg;
    cfg.simulation.mode = "functional";
    cfg.memory.activation_compression = false;
    cfg.dbl.enabled = false;
    const Layer l = conv_layer(16, 4, 3, 3, 8, 8, 1, 1);
    const int N = 1;
    const LayerWork w = random_work(l, N, PruneMode::Dense, 0.0, 1.0, 1.0, 321);
    LayerValues vals = make_layer_values(l, w, N, 322);
    const LayerValues original = vals;
    const LoadParts lp = NaturalPlan(cfg, l, w, pc.pass, N, vals).first_parts(vals);
    const int64_t at = part == "source" ? 0 : part == "weight" ? lp.source : lp.source + lp.weight;
    const int64_t len = part == "source" ? lp.source : part == "weight" ? lp.weight : lp.grad;
    ASSERT_GE(len, 2) << "tile 0 loads no " << part;
    constexpr uint16_t kFlip = 0x0400;  // the exponent's low bit
    SwpuChip chip("chip", cfg);
    chip.dram.inject_fault(uint64_t(at + 1), uint8_t(kFlip >> 8));  // the value's high byte (little-endian)
    chip.set_single(&l, &w, pc.pass, N, &vals, true);
    sc_core::sc_start();
    auto ref = [&](const LayerValues& v) {
        return pc.pass == Pass::FF ? ref_ff(l, v, N) : pc.pass == Pass::BP ? ref_bp(l, v, N) : ref_wg(l, v, w.mask, N);
    };
    const std::vector<float>& sim = pc.pass == Pass::FF ? vals.out : pc.pass == Pass::BP ? vals.grad_in : vals.grad_w;
    auto matches = [&](const std::vector<double>& r) {
        for (size_t i = 0; i < sim.size(); ++i)
            if (std::fabs(sim[i] - r[i]) > 1e-3 * (1.0 + std::fabs(r[i]))) return false;
        return true;
    };
    EXPECT_FALSE(matches(ref(original))) << "a changed " << part << " value in DRAM went unnoticed";
    std::vector<float> LayerValues::*tensor = part == "weight" ? &LayerValues::weight
                                                    : part == "grad" ? &LayerValues::grad_out
                                                                     : &LayerValues::input;
    int matching = 0;
    for (size_t i = 0; i < (original.*tensor).size(); ++i) {
        const float x = (original.*tensor)[i];
        if (x == 0.0f) continue;  // pruned or zero: not stored in a dense line as a value the fault can move
        LayerValues m = original;
        (m.*tensor)[i] = fp16_bits_to_float(uint16_t(float_to_fp16_bits(x) ^ kFlip));
        matching += matches(ref(m));
    }
    EXPECT_EQ(matching, 1) << "the result is not the reference with one " << part << " value changed";
}

INSTANTIATE_TEST_SUITE_P(Parts, DramCorruptionPart,
                         testing::Values(PartCase{Pass::FF, "weight"}, PartCase{Pass::BP, "weight"},
                                         PartCase{Pass::WG, "grad"}, PartCase{Pass::WG, "source"}),
                         [](const testing::TestParamInfo<PartCase>& i) {
                             return std::string(to_string(i.param.pass)) + "_" + i.param.part;
                         });

// The chip's byte path across tiles: buffers small enough that the source rows come in bands, the
// cluster weights are reloaded per band, WG spills its partial gradients and filter-oriented BP
// works in channel blocks, with and without double buffering (the halves alternate): the results
// still match the Eigen reference, and the FF/BP values read back from DRAM are the sums rounded
// to FP16.
struct TiledCase {
    Pass pass;
    const char* variant;
};

void PrintTo(const TiledCase& c, std::ostream* os) { *os << to_string(c.pass) << "/" << c.variant; }

class DramTiled : public testing::TestWithParam<TiledCase> {};

TEST_P(DramTiled, BandsReloadsAndSpillsComputeCorrectly) {
    const TiledCase tc = GetParam();
    RunConfig cfg = variant_config(std::string("small_") + tc.variant);
    cfg.simulation.mode = "functional";
    const Shape& sh = kShapes[6];  // k40c24_3x3p1_big
    const Layer l = conv_layer(sh.K, sh.C, sh.R, sh.S, sh.H, sh.W, sh.stride, sh.pad);
    const LayerWork w = random_work(l, sh.N, PruneMode::SubStructured, 0.6, 0.55, 0.5, 4242);
    LayerValues vals = make_layer_values(l, w, sh.N, 4243);
    // The kinds of load the tiling makes (they do not depend on the cluster order).
    int source_loads = 0, weight_loads = 0, partial_loads = 0, tiles = 0;
    const NaturalPlan natural(cfg, l, w, tc.pass, sh.N, vals);
    for (const Tile& t : natural.plan.tiles()) {
        ++tiles;
        source_loads += t.act_load;
        weight_loads += t.weight_load;
        partial_loads += t.partial_reload;
    }
    SwpuChip chip("chip", cfg);
    chip.set_single(&l, &w, tc.pass, sh.N, &vals, true);
    sc_core::sc_start();
    EXPECT_GT(source_loads, 1) << "the source rows are resident: no bands";
    if (tc.pass == Pass::WG)
        EXPECT_GT(partial_loads, 0) << "no partial gradients were spilled";
    else
        EXPECT_GT(weight_loads, (l.K + 15) / 16) << "no cluster's weights were reloaded";
    const std::vector<double> ref =
        tc.pass == Pass::FF ? ref_ff(l, vals, sh.N) : tc.pass == Pass::BP ? ref_bp(l, vals, sh.N) : ref_wg(l, vals, w.mask, sh.N);
    const std::vector<float>& sim = tc.pass == Pass::FF ? vals.out : tc.pass == Pass::BP ? vals.grad_in : vals.grad_w;
    ASSERT_EQ(sim.size(), ref.size());
    int bad = 0;
    for (size_t i = 0; i < sim.size(); ++i)
        if (!(std::fabs(sim[i] - ref[i]) <= 1e-4 * (1.0 + std::fabs(ref[i]))) && ++bad < 5)
            ADD_FAILURE() << "element " << i << ": simulated " << sim[i] << ", reference " << ref[i];
    EXPECT_EQ(bad, 0) << tiles << " tiles";
    if (tc.pass != Pass::WG) {
        ASSERT_EQ(vals.stored.size(), sim.size());
        int differ = 0;
        for (size_t i = 0; i < sim.size(); ++i) differ += float_to_fp16_bits(vals.stored[i]) != float_to_fp16_bits(sim[i]);
        EXPECT_EQ(differ, 0);
    }
}

INSTANTIATE_TEST_SUITE_P(Tiles, DramTiled,
                         testing::Values(TiledCase{Pass::FF, ""}, TiledCase{Pass::BP, ""}, TiledCase{Pass::WG, ""},
                                         TiledCase{Pass::BP, "bpfilter"}, TiledCase{Pass::FF, "single_buffer"},
                                         TiledCase{Pass::WG, "single_buffer"}, TiledCase{Pass::FF, "nocompress"},
                                         TiledCase{Pass::WG, "fused"}),
                         [](const testing::TestParamInfo<TiledCase>& i) {
                             return std::string(to_string(i.param.pass)) + (*i.param.variant ? "_" : "") + i.param.variant;
                         });

}  // namespace
}  // namespace swpu::test
