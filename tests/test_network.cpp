// Networks (ResNet-18 graphs, FC conv form) and the built-in synthetic trace generator.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "swpu/workload.hpp"

using namespace swpu;

namespace {

std::vector<std::string> expected_weighted_names() {
    std::vector<std::string> v = {"conv1"};
    for (int s = 1; s <= 4; ++s)
        for (int b = 0; b < 2; ++b) {
            const std::string p = "layer" + std::to_string(s) + "." + std::to_string(b);
            v.push_back(p + ".conv1");
            v.push_back(p + ".conv2");
            if (s > 1 && b == 0) v.push_back(p + ".downsample");
        }
    v.push_back("fc");
    return v;
}

std::vector<std::string> weighted_names(const Network& n) {
    std::vector<std::string> v;
    for (int i : n.weighted_layers()) v.push_back(n.layers[size_t(i)].name);
    return v;
}

int64_t real_weights(const Layer& L) {
    return L.op == LayerOp::FC ? int64_t(L.K) * L.fc_in : int64_t(L.K) * L.C * L.R * L.S;
}

uint64_t full_row(const Layer& L, int c) {
    const uint64_t full = L.S == 64 ? ~uint64_t(0) : ((uint64_t(1) << L.S) - 1);
    if (L.op != LayerOp::FC) return full;
    const int64_t left = int64_t(L.fc_in) - int64_t(c) * L.S;
    if (left >= L.S) return full;
    return left <= 0 ? 0 : ((uint64_t(1) << left) - 1);
}

bool same_mask(const WeightMask& a, const WeightMask& b) {
    return a.K == b.K && a.C == b.C && a.R == b.R && a.S == b.S && a.rows == b.rows;
}
bool same_bitmap(const Bitmap4D& a, const Bitmap4D& b) {
    return a.N == b.N && a.C == b.C && a.H == b.H && a.W == b.W && a.bits == b.bits;
}
bool same_trace(const Trace& a, const Trace& b) {
    if (a.iterations.size() != b.iterations.size()) return false;
    for (size_t i = 0; i < a.iterations.size(); ++i) {
        const Iteration &x = a.iterations[i], &y = b.iterations[i];
        if (x.index != y.index || x.mask_update != y.mask_update || x.layers.size() != y.layers.size()) return false;
        for (size_t l = 0; l < x.layers.size(); ++l) {
            if (x.layers[l].layer != y.layers[l].layer) return false;
            if (!same_mask(x.layers[l].mask, y.layers[l].mask)) return false;
            if (!same_bitmap(x.layers[l].input_nonzero, y.layers[l].input_nonzero)) return false;
            if (!same_bitmap(x.layers[l].grad_nonzero, y.layers[l].grad_nonzero)) return false;
        }
    }
    return true;
}

const LayerWork& work_of(const Trace& t, const std::string& name, int iteration = 0) {
    for (const LayerWork& w : t.iterations.at(size_t(iteration)).layers)
        if (t.net.layers[size_t(w.layer)].name == name) return w;
    throw std::runtime_error("no layer " + name);
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// Networks
// ------------------------------------------------------------------------------------------------
TEST(Network, ImageNetMacsAndParams) {
    Network n = build_network("resnet18-imagenet");
    EXPECT_NEAR(double(n.total_macs()), 1.814e9, 0.01 * 1.814e9);
    EXPECT_NEAR(double(n.total_params()), 11.69e6, 0.01 * 11.69e6);
    // The exact torchvision figures.
    EXPECT_EQ(n.total_macs(), 1814073344);
    EXPECT_EQ(n.total_params(), 11689512);
    EXPECT_EQ(n.in_c, 3);
    EXPECT_EQ(n.in_h, 224);
    EXPECT_EQ(n.num_classes, 1000);
}

TEST(Network, CifarMacsAndParams) {
    Network n = build_network("resnet18-cifar");
    EXPECT_NEAR(double(n.total_macs()), 0.556e9, 0.01 * 0.556e9);
    EXPECT_NEAR(double(n.total_params()), 11.17e6, 0.01 * 11.17e6);
    EXPECT_EQ(n.total_params(), 11173962);
    EXPECT_EQ(n.in_h, 32);
    EXPECT_EQ(n.num_classes, 10);
    EXPECT_EQ(n.find("maxpool"), -1);  // no max-pool in the CIFAR form
}

TEST(Network, WeightedLayersInForwardOrder) {
    for (const char* name : {"resnet18-cifar", "resnet18-imagenet"}) {
        Network n = build_network(name);
        EXPECT_EQ(weighted_names(n), expected_weighted_names()) << name;
    }
}

TEST(Network, LayerNamesAndOps) {
    Network n = build_network("resnet18-imagenet");
    const std::map<std::string, LayerOp> want = {
        {"conv1", LayerOp::Conv},          {"bn1", LayerOp::BatchNorm},
        {"relu", LayerOp::ReLU},           {"maxpool", LayerOp::MaxPool},
        {"layer1.0.conv1", LayerOp::Conv}, {"layer1.0.bn1", LayerOp::BatchNorm},
        {"layer1.0.relu1", LayerOp::ReLU}, {"layer1.0.conv2", LayerOp::Conv},
        {"layer1.0.bn2", LayerOp::BatchNorm}, {"layer1.0.add", LayerOp::Add},
        {"layer1.0.relu2", LayerOp::ReLU}, {"layer2.0.downsample", LayerOp::Conv},
        {"layer2.0.downsample.bn", LayerOp::BatchNorm}, {"avgpool", LayerOp::AvgPool},
        {"fc", LayerOp::FC},               {"loss", LayerOp::Loss}};
    for (const auto& kv : want) {
        const int i = n.find(kv.first);
        ASSERT_GE(i, 0) << kv.first;
        EXPECT_EQ(n.layers[size_t(i)].op, kv.second) << kv.first;
    }
    EXPECT_EQ(n.find("layer1.0.downsample"), -1);  // identity shortcut in stage 1
    // Names are unique.
    std::set<std::string> names;
    for (const Layer& l : n.layers) EXPECT_TRUE(names.insert(l.name).second) << l.name;
    // The residual add takes bn2 and the shortcut.
    const Layer& add = n.layers[size_t(n.find("layer2.0.add"))];
    ASSERT_EQ(add.inputs.size(), 2u);
    EXPECT_EQ(add.inputs[0], n.find("layer2.0.bn2"));
    EXPECT_EQ(add.inputs[1], n.find("layer2.0.downsample.bn"));
    const Layer& add1 = n.layers[size_t(n.find("layer1.1.add"))];
    EXPECT_EQ(add1.inputs[1], n.find("layer1.0.relu2"));
    EXPECT_EQ(n.layers[size_t(n.find("layer2.0.downsample"))].inputs[0], n.find("layer1.1.relu2"));
    EXPECT_EQ(n.layers[size_t(n.find("layer1.0.conv1"))].inputs[0], n.find("maxpool"));
    EXPECT_EQ(std::string(to_string(LayerOp::MaxPool)), "maxpool");
}

TEST(Network, ShapesChain) {
    for (const char* name : {"resnet18-cifar", "resnet18-imagenet"}) {
        for (double width : {1.0, 0.125, 0.3}) {
            Network n = build_network(name, width);
            for (size_t i = 0; i < n.layers.size(); ++i) {
                const Layer& l = n.layers[i];
                ASSERT_FALSE(l.inputs.empty()) << l.name;
                for (size_t k = 0; k < l.inputs.size(); ++k) {
                    const int p = l.inputs[k];
                    ASSERT_LT(p, int(i)) << l.name << ": not topological";
                    int c, h, w;
                    if (p < 0) {
                        c = n.in_c;
                        h = n.in_h;
                        w = n.in_w;
                    } else {
                        c = n.layers[size_t(p)].out_c;
                        h = n.layers[size_t(p)].out_h;
                        w = n.layers[size_t(p)].out_w;
                    }
                    EXPECT_EQ(l.in_c, c) << name << " " << l.name;
                    EXPECT_EQ(l.in_h, h) << name << " " << l.name;
                    EXPECT_EQ(l.in_w, w) << name << " " << l.name;
                }
                if (l.op == LayerOp::Conv) {
                    EXPECT_EQ(l.C, l.in_c) << l.name;
                    EXPECT_EQ(l.H, l.in_h) << l.name;
                    EXPECT_EQ(l.W, l.in_w) << l.name;
                    EXPECT_EQ(l.P, (l.H + 2 * l.pad - l.R) / l.stride + 1) << l.name;
                    EXPECT_EQ(l.Q, (l.W + 2 * l.pad - l.S) / l.stride + 1) << l.name;
                    EXPECT_EQ(l.out_c, l.K);
                    EXPECT_EQ(l.out_h, l.P);
                    EXPECT_EQ(l.out_w, l.Q);
                    EXPECT_EQ(l.macs(), int64_t(l.K) * l.C * l.R * l.S * l.P * l.Q);
                    EXPECT_EQ(l.params(), int64_t(l.K) * l.C * l.R * l.S);
                }
            }
            EXPECT_EQ(n.layers.back().name, "loss");
            EXPECT_EQ(n.layers.back().inputs[0], n.find("fc"));
        }
    }
}

TEST(Network, ImageNetStemAndPooling) {
    Network n = build_network("resnet18-imagenet");
    const Layer& c1 = n.layers[size_t(n.find("conv1"))];
    EXPECT_EQ(c1.R, 7);
    EXPECT_EQ(c1.stride, 2);
    EXPECT_EQ(c1.pad, 3);
    EXPECT_EQ(c1.P, 112);
    const Layer& mp = n.layers[size_t(n.find("maxpool"))];
    EXPECT_EQ(mp.R, 3);
    EXPECT_EQ(mp.S, 3);
    EXPECT_EQ(mp.stride, 2);
    EXPECT_EQ(mp.pad, 1);
    EXPECT_EQ(mp.H, 112);
    EXPECT_EQ(mp.P, 56);
    EXPECT_EQ(mp.out_c, 64);
    const Layer& ap = n.layers[size_t(n.find("avgpool"))];
    EXPECT_EQ(ap.R, 7);
    EXPECT_EQ(ap.S, 7);
    EXPECT_EQ(ap.P, 1);
    EXPECT_EQ(ap.out_c, 512);
    const Layer& ds = n.layers[size_t(n.find("layer3.0.downsample"))];
    EXPECT_EQ(ds.R, 1);
    EXPECT_EQ(ds.stride, 2);
    EXPECT_EQ(ds.pad, 0);
    EXPECT_EQ(ds.C, 128);
    EXPECT_EQ(ds.K, 256);
    EXPECT_EQ(ds.P, 14);
    const Layer& bn = n.layers[size_t(n.find("layer3.0.bn1"))];
    EXPECT_EQ(bn.params(), 2 * 256);
    EXPECT_EQ(bn.macs(), 0);
}

TEST(Network, FcConvForm) {
    Network n = build_network("resnet18-cifar");
    const Layer& fc = n.layers[size_t(n.find("fc"))];
    EXPECT_EQ(fc.op, LayerOp::FC);
    EXPECT_EQ(fc.fc_in, 512);
    EXPECT_EQ(fc.K, 10);
    EXPECT_EQ(fc.C, 32);  // ceil(512 / 16)
    EXPECT_EQ(fc.R, 1);
    EXPECT_EQ(fc.S, 16);
    EXPECT_EQ(fc.H, 1);
    EXPECT_EQ(fc.W, 16);
    EXPECT_EQ(fc.stride, 1);
    EXPECT_EQ(fc.pad, 0);
    EXPECT_EQ(fc.P, 1);
    EXPECT_EQ(fc.Q, 1);
    EXPECT_EQ(fc.macs(), 5120);
    EXPECT_EQ(fc.params(), 5120 + 10);
    EXPECT_EQ(fc.in_c, 512);
    EXPECT_EQ(fc.in_h, 1);
    EXPECT_EQ(fc.out_c, 10);

    // A block length that does not divide F: the last block is padded.
    Network m = build_network("resnet18-cifar", 0.125, 7, -1, -1, 24);
    const Layer& f2 = m.layers[size_t(m.find("fc"))];
    EXPECT_EQ(f2.fc_in, 64);
    EXPECT_EQ(f2.C, 3);  // ceil(64 / 24)
    EXPECT_EQ(f2.S, 24);
    EXPECT_EQ(f2.W, 24);
    EXPECT_EQ(f2.K, 7);
    EXPECT_EQ(f2.macs(), 7 * 64);  // padding does no work
    EXPECT_EQ(m.fc_block, 24);
}

TEST(Network, WidthAndInputSize) {
    Network n = build_network("resnet18-cifar", 0.125);
    EXPECT_EQ(n.layers[size_t(n.find("conv1"))].K, 8);
    EXPECT_EQ(n.layers[size_t(n.find("layer2.0.conv1"))].K, 16);
    EXPECT_EQ(n.layers[size_t(n.find("layer3.0.conv1"))].K, 32);
    EXPECT_EQ(n.layers[size_t(n.find("layer4.1.conv2"))].K, 64);
    EXPECT_EQ(n.layers[size_t(n.find("fc"))].fc_in, 64);
    Network t = build_network("resnet18-cifar", 0.001);  // channels never drop below 1
    EXPECT_EQ(t.layers[size_t(t.find("conv1"))].K, 1);
    EXPECT_EQ(t.layers[size_t(t.find("layer4.0.conv1"))].K, 1);
    Network r = build_network("resnet18-cifar", 0.3);  // round(19.2) = 19, round(38.4) = 38
    EXPECT_EQ(r.layers[size_t(r.find("conv1"))].K, 19);
    EXPECT_EQ(r.layers[size_t(r.find("layer2.0.conv1"))].K, 38);
    Network i = build_network("resnet18-imagenet", 1.0, 100, 64, 96);
    EXPECT_EQ(i.num_classes, 100);
    EXPECT_EQ(i.layers[size_t(i.find("conv1"))].P, 32);
    EXPECT_EQ(i.layers[size_t(i.find("conv1"))].Q, 48);
    EXPECT_EQ(i.layers[size_t(i.find("layer4.1.conv2"))].P, 2);
    EXPECT_EQ(i.layers[size_t(i.find("layer4.1.conv2"))].Q, 3);
    Network tiny = build_network("resnet18-imagenet", 1.0, -1, 1, 1);  // still well formed
    EXPECT_EQ(tiny.layers[size_t(tiny.find("fc"))].fc_in, 512);
}

TEST(Network, InvalidArguments) {
    EXPECT_THROW(build_network("resnet50"), std::invalid_argument);
    EXPECT_THROW(build_network(""), std::invalid_argument);
    EXPECT_THROW(build_network("resnet18-cifar", 0.0), std::invalid_argument);
    EXPECT_THROW(build_network("resnet18-cifar", -1.0), std::invalid_argument);
    EXPECT_THROW(build_network("resnet18-cifar", std::nan("")), std::invalid_argument);
    EXPECT_THROW(build_network("resnet18-cifar", 1000.0), std::invalid_argument);
    EXPECT_THROW(build_network("resnet18-cifar", 1.0, 0), std::invalid_argument);
    EXPECT_THROW(build_network("resnet18-cifar", 1.0, -5), std::invalid_argument);
    EXPECT_THROW(build_network("resnet18-cifar", 1.0, 10, 0, 32), std::invalid_argument);
    EXPECT_THROW(build_network("resnet18-cifar", 1.0, 10, 32, 100000), std::invalid_argument);
    EXPECT_THROW(build_network("resnet18-cifar", 1.0, 10, 32, 32, 0), std::invalid_argument);
    EXPECT_THROW(build_network("resnet18-cifar", 1.0, 10, 32, 32, 65), std::invalid_argument);
    try {
        build_network("vgg16");
        FAIL();
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("vgg16"), std::string::npos);
    }
}

TEST(Network, PruneModeStrings) {
    const std::vector<std::pair<PruneMode, std::string>> all = {
        {PruneMode::Dense, "dense"},          {PruneMode::Structured, "structured"},
        {PruneMode::Unstructured, "unstructured"}, {PruneMode::ShapeOnly, "shape-only"},
        {PruneMode::LineOnly, "line-only"},   {PruneMode::SubStructured, "sub-structured"}};
    for (const auto& kv : all) {
        EXPECT_EQ(std::string(to_string(kv.first)), kv.second);
        PruneMode m = PruneMode::Dense;
        EXPECT_TRUE(parse_prune_mode(kv.second, m));
        EXPECT_EQ(m, kv.first);
    }
    PruneMode m = PruneMode::LineOnly;
    EXPECT_FALSE(parse_prune_mode("substructured", m));
    EXPECT_FALSE(parse_prune_mode("", m));
    EXPECT_FALSE(parse_prune_mode("Dense", m));
    EXPECT_EQ(m, PruneMode::LineOnly);
}

TEST(WorkloadTypes, WeightMaskAndBitmap) {
    WeightMask m;
    m.resize(2, 3, 3, 3, true);
    EXPECT_EQ(m.rows.size(), 18u);
    EXPECT_EQ(m.kept_count(), 54);
    EXPECT_DOUBLE_EQ(m.density(), 1.0);
    m.row(1, 2, 0) = 0b101;
    EXPECT_TRUE(m.kept(1, 2, 0, 0));
    EXPECT_FALSE(m.kept(1, 2, 0, 1));
    EXPECT_EQ(m.kept_count(), 53);
    m.resize(1, 1, 1, 64, true);
    EXPECT_EQ(m.kept_count(), 64);
    m.resize(4, 1, 1, 5, false);
    EXPECT_EQ(m.kept_count(), 0);
    EXPECT_THROW(m.resize(1, 1, 1, 65, true), std::invalid_argument);

    Bitmap4D b;
    b.resize(2, 3, 4, 70);
    EXPECT_EQ(b.words_per_row, 2);
    EXPECT_EQ(b.count(), 0);
    b.set(1, 2, 3, 69, true);
    b.set(0, 0, 0, 0, true);
    EXPECT_TRUE(b.get(1, 2, 3, 69));
    EXPECT_FALSE(b.get(1, 2, 3, 68));
    EXPECT_EQ(b.count(), 2);
    EXPECT_DOUBLE_EQ(b.density(), 2.0 / (2 * 3 * 4 * 70));
    b.set(1, 2, 3, 69, false);
    EXPECT_EQ(b.count(), 1);
}

TEST(WorkloadTypes, FillBernoulliIsSeededAndRespectsPadding) {
    Bitmap4D a, b;
    a.resize(2, 5, 1, 16);
    b.resize(2, 5, 1, 16);
    fill_bernoulli(a, 0.5, 42, 70);  // FC conv form of F = 70, B = 16
    fill_bernoulli(b, 0.5, 42, 70);
    EXPECT_EQ(a.bits, b.bits);
    for (int n = 0; n < 2; ++n)
        for (int w = 6; w < 16; ++w) EXPECT_FALSE(a.get(n, 4, 0, w));
    fill_bernoulli(b, 0.5, 43, 70);
    EXPECT_NE(a.bits, b.bits);
    fill_bernoulli(a, 1.0, 1);
    EXPECT_EQ(a.count(), 2 * 5 * 16);
    fill_bernoulli(a, 0.0, 1);
    EXPECT_EQ(a.count(), 0);
    EXPECT_NE(derive_seed(1, 2, 3, 4), derive_seed(1, 2, 4, 3));
    EXPECT_EQ(derive_seed(1, 2, 3, 4), derive_seed(1, 2, 3, 4));
}

// ------------------------------------------------------------------------------------------------
// Synthetic traces
// ------------------------------------------------------------------------------------------------
TEST(Synthetic, DefaultsAndStructure) {
    WorkloadParams p;
    uint64_t seed = 1;  // simulation.seed
    p.iterations = 3;
    p.update_interval = 1;  // a mask update every iteration
    p.batch = 2;
    Trace t = make_synthetic_trace(p, seed);
    EXPECT_EQ(t.source, "built-in synthetic");
    EXPECT_EQ(t.net.name, "resnet18-cifar");
    EXPECT_EQ(t.batch, 2);
    EXPECT_EQ(t.mode, PruneMode::SubStructured);
    ASSERT_EQ(t.iterations.size(), 3u);
    const std::vector<int> wl = t.net.weighted_layers();
    for (size_t i = 0; i < 3; ++i) {
        const Iteration& it = t.iterations[i];
        EXPECT_EQ(it.index, int(i));
        EXPECT_TRUE(it.mask_update);
        ASSERT_EQ(it.layers.size(), wl.size());
        for (size_t w = 0; w < wl.size(); ++w) {
            const LayerWork& lw = it.layers[w];
            const Layer& L = t.net.layers[size_t(wl[w])];
            EXPECT_EQ(lw.layer, wl[w]);
            EXPECT_EQ(lw.mask.K, L.K);
            EXPECT_EQ(lw.mask.C, L.C);
            EXPECT_EQ(lw.mask.R, L.R);
            EXPECT_EQ(lw.mask.S, L.S);
            EXPECT_EQ(lw.input_nonzero.N, 2);
            EXPECT_EQ(lw.grad_nonzero.N, 2);
            if (L.op == LayerOp::FC) {
                EXPECT_EQ(lw.input_nonzero.C, L.C);
                EXPECT_EQ(lw.input_nonzero.H, 1);
                EXPECT_EQ(lw.input_nonzero.W, L.S);
                EXPECT_EQ(lw.grad_nonzero.C, L.K);
                EXPECT_EQ(lw.grad_nonzero.H, 1);
                EXPECT_EQ(lw.grad_nonzero.W, 1);
            } else {
                EXPECT_EQ(lw.input_nonzero.C, L.C);
                EXPECT_EQ(lw.input_nonzero.H, L.H);
                EXPECT_EQ(lw.input_nonzero.W, L.W);
                EXPECT_EQ(lw.grad_nonzero.C, L.K);
                EXPECT_EQ(lw.grad_nonzero.H, L.P);
                EXPECT_EQ(lw.grad_nonzero.W, L.Q);
            }
        }
    }
    // The first conv is unpruned by default.
    EXPECT_DOUBLE_EQ(t.iterations[0].layers[0].mask.density(), 1.0);
}

TEST(Synthetic, SameSeedSameTraceDifferentSeedDifferent) {
    WorkloadParams p;
    uint64_t seed = 1;  // simulation.seed
    p.iterations = 2;
    p.update_interval = 1;  // a mask update every iteration
    seed = 7;
    Trace a = make_synthetic_trace(p, seed);
    Trace b = make_synthetic_trace(p, seed);
    EXPECT_TRUE(same_trace(a, b));
    seed = 8;
    Trace c = make_synthetic_trace(p, seed);
    EXPECT_FALSE(same_trace(a, c));
    // Masks and bitmaps both change with the seed.
    EXPECT_FALSE(same_mask(work_of(a, "layer2.0.conv1").mask, work_of(c, "layer2.0.conv1").mask));
    EXPECT_FALSE(same_bitmap(work_of(a, "layer2.0.conv1").input_nonzero, work_of(c, "layer2.0.conv1").input_nonzero));
}

namespace {
uint64_t fingerprint(const Trace& t) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a over the 64-bit words
    auto mix = [&](uint64_t v) {
        h ^= v;
        h *= 1099511628211ull;
    };
    for (const Iteration& it : t.iterations)
        for (const LayerWork& lw : it.layers) {
            for (uint64_t r : lw.mask.rows) mix(r);
            for (uint64_t r : lw.input_nonzero.bits) mix(r);
            for (uint64_t r : lw.grad_nonzero.bits) mix(r);
        }
    return h;
}
}  // namespace

TEST(Synthetic, SeedIsPortable) {
    // The generator draws from std::mt19937_64 (its sequence is fixed by the C++ standard) through
    // its own integer/real/shuffle code, so a seed gives the same trace with any standard library.
    // This fingerprint pins that: a change of it is a change of the generator's model (update
    // docs/workload.md and this value together).
    WorkloadParams p;
    uint64_t seed = 1;  // simulation.seed
    seed = 123;
    p.iterations = 2;
    p.update_interval = 1;  // a mask update every iteration
    Network n = build_network("resnet18-cifar", 0.125);
    const uint64_t h = fingerprint(make_synthetic_trace(p, n, seed));
    EXPECT_EQ(h, fingerprint(make_synthetic_trace(p, n, seed)));
    EXPECT_EQ(h, 15261920145090204438ull) << "fingerprint " << h;
}

class SyntheticModes : public ::testing::TestWithParam<PruneMode> {};

TEST_P(SyntheticModes, AchievedSparsityAndStructure) {
    const PruneMode mode = GetParam();
    for (double sparsity : {0.7, 0.5, 0.9}) {
        WorkloadParams p;
        uint64_t seed = 1;  // simulation.seed
        p.pruning = to_string(mode);
        p.weight_sparsity = sparsity;
        seed = 11;
        Trace t = make_synthetic_trace(p, seed);  // full-width resnet18-cifar
        const std::vector<int> wl = t.net.weighted_layers();
        int64_t kept_all = 0, total_all = 0;
        for (size_t w = 0; w < wl.size(); ++w) {
            const Layer& L = t.net.layers[size_t(wl[w])];
            const WeightMask& m = t.iterations[0].layers[w].mask;
            const double target = (w == 0 || mode == PruneMode::Dense) ? 0.0 : sparsity;
            const double achieved = 1.0 - double(m.kept_count()) / double(real_weights(L));
            EXPECT_NEAR(achieved, target, 0.02) << to_string(mode) << " " << L.name << " s=" << sparsity;
            if (w > 0) {
                kept_all += m.kept_count();
                total_all += real_weights(L);
            }
            // Padding of an FC block is never a kept weight; rows never exceed S bits.
            for (int k = 0; k < m.K; ++k)
                for (int c = 0; c < m.C; ++c)
                    for (int r = 0; r < m.R; ++r) ASSERT_EQ(m.row(k, c, r) & ~full_row(L, c), 0u);
            if (w == 0) continue;
            switch (mode) {
                case PruneMode::Structured:  // whole filters; FC: whole input neurons
                    if (L.op == LayerOp::FC) {
                        for (int k = 1; k < m.K; ++k)
                            for (int c = 0; c < m.C; ++c) ASSERT_EQ(m.row(k, c, 0), m.row(0, c, 0)) << L.name;
                        break;
                    }
                    for (int k = 0; k < m.K; ++k) {
                        const bool on = m.row(k, 0, 0) != 0;
                        for (int c = 0; c < m.C; ++c)
                            for (int r = 0; r < m.R; ++r)
                                ASSERT_EQ(m.row(k, c, r), on ? full_row(L, c) : 0u) << L.name << " k=" << k;
                    }
                    break;
                case PruneMode::ShapeOnly:  // the same mask for every filter
                    for (int k = 1; k < m.K; ++k)
                        for (int c = 0; c < m.C; ++c)
                            for (int r = 0; r < m.R; ++r) ASSERT_EQ(m.row(k, c, r), m.row(0, c, r)) << L.name;
                    break;
                case PruneMode::LineOnly:  // each kernel row all or nothing
                    for (int k = 0; k < m.K; ++k)
                        for (int c = 0; c < m.C; ++c)
                            for (int r = 0; r < m.R; ++r) {
                                const uint64_t v = m.row(k, c, r);
                                ASSERT_TRUE(v == 0 || v == full_row(L, c)) << L.name;
                            }
                    break;
                case PruneMode::SubStructured: {  // M = line & shape
                    bool line_pruned = false, shape_pruned = false;
                    for (int c = 0; c < m.C; ++c)
                        for (int r = 0; r < m.R; ++r) {
                            uint64_t shape = 0;
                            for (int k = 0; k < m.K; ++k) shape |= m.row(k, c, r);
                            if (shape != full_row(L, c)) shape_pruned = true;
                            for (int k = 0; k < m.K; ++k) {
                                const uint64_t v = m.row(k, c, r);
                                ASSERT_TRUE(v == 0 || v == shape) << L.name;
                                if (shape && !v) line_pruned = true;
                            }
                        }
                    if (sparsity > 0.1) {
                        EXPECT_TRUE(line_pruned) << L.name;
                        EXPECT_TRUE(shape_pruned) << L.name;
                    }
                    break;
                }
                case PruneMode::Unstructured: {  // element-wise: partial rows exist
                    int partial = 0;
                    for (uint64_t v : m.rows) partial += (v != 0 && v != full_row(L, 0));
                    if (L.op == LayerOp::Conv && L.R > 1) {
                        EXPECT_GT(partial, 0) << L.name;
                    }
                    break;
                }
                case PruneMode::Dense:
                    break;
            }
        }
        if (mode != PruneMode::Dense) {
            EXPECT_NEAR(1.0 - double(kept_all) / double(total_all), sparsity, 0.01) << to_string(mode);
        }
        if (mode == PruneMode::Dense) break;
    }
}

INSTANTIATE_TEST_SUITE_P(AllModes, SyntheticModes,
                         ::testing::Values(PruneMode::Dense, PruneMode::Structured, PruneMode::Unstructured,
                                           PruneMode::ShapeOnly, PruneMode::LineOnly, PruneMode::SubStructured),
                         [](const ::testing::TestParamInfo<PruneMode>& i) {
                             std::string s = to_string(i.param);
                             for (char& ch : s)
                                 if (ch == '-') ch = '_';
                             return s;
                         });

TEST(Synthetic, ShapeFractionSplitsTheSparsity) {
    // density = d_shape * d_line, d_shape = d^f: with s = 0.75 (d = 0.25) and f = 0.5, half of the
    // "log-density" goes to each: d_shape = d_line = 0.5.
    for (double f : {0.5, 0.25, 0.0, 1.0}) {
        WorkloadParams p;
        uint64_t seed = 1;  // simulation.seed
        p.weight_sparsity = 0.75;
        p.shape_fraction = f;
        Trace t = make_synthetic_trace(p, seed);
        const WeightMask& m = work_of(t, "layer3.0.conv2").mask;
        int64_t shape_kept = 0;
        for (int c = 0; c < m.C; ++c)
            for (int r = 0; r < m.R; ++r) {
                uint64_t shape = 0;
                for (int k = 0; k < m.K; ++k) shape |= m.row(k, c, r);
                shape_kept += __builtin_popcountll(shape);
            }
        const double d_shape = double(shape_kept) / double(int64_t(m.C) * m.R * m.S);
        EXPECT_NEAR(d_shape, std::pow(0.25, f), 0.02) << "f=" << f;
        EXPECT_NEAR(m.density(), 0.25, 0.01) << "f=" << f;
    }
}

namespace {
// Line vectors (one bit per visible (c, r) line) of the filters of a mask.
std::vector<std::vector<uint8_t>> line_vectors(const WeightMask& m) {
    std::vector<int> visible;  // lines whose shape row keeps something in some filter
    for (int c = 0; c < m.C; ++c)
        for (int r = 0; r < m.R; ++r) {
            bool any = false;
            for (int k = 0; k < m.K && !any; ++k) any = m.row(k, c, r) != 0;
            if (any) visible.push_back(c * m.R + r);
        }
    std::vector<std::vector<uint8_t>> v(size_t(m.K));
    for (int k = 0; k < m.K; ++k)
        for (int j : visible) v[size_t(k)].push_back(m.rows[size_t(k) * m.C * m.R + j] != 0);
    return v;
}

int hamming(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
    int d = 0;
    for (size_t i = 0; i < a.size(); ++i) d += a[i] != b[i];
    return d;
}

struct FamilyStats {
    int components = 0;
    double within = 0, across = 0;  // mean pairwise hamming distance / vector length
};

// Recovers the families by linking filters closer than half the mean distance (connected
// components), then measures the mean distance within and across the recovered families.
FamilyStats family_stats(const WeightMask& m) {
    auto v = line_vectors(m);
    const int K = m.K;
    const double len = double(v[0].size());
    std::vector<std::vector<int>> d(size_t(K), std::vector<int>(size_t(K), 0));
    double mean = 0;
    for (int a = 0; a < K; ++a)
        for (int b = a + 1; b < K; ++b) {
            d[size_t(a)][size_t(b)] = d[size_t(b)][size_t(a)] = hamming(v[size_t(a)], v[size_t(b)]);
            mean += d[size_t(a)][size_t(b)];
        }
    mean /= double(K) * (K - 1) / 2;
    std::vector<int> comp(size_t(K), -1);
    FamilyStats st;
    for (int s = 0; s < K; ++s) {
        if (comp[size_t(s)] >= 0) continue;
        std::vector<int> stack = {s};
        comp[size_t(s)] = st.components;
        while (!stack.empty()) {
            int a = stack.back();
            stack.pop_back();
            for (int b = 0; b < K; ++b)
                if (comp[size_t(b)] < 0 && d[size_t(a)][size_t(b)] < 0.5 * mean) {
                    comp[size_t(b)] = st.components;
                    stack.push_back(b);
                }
        }
        ++st.components;
    }
    double sw = 0, sa = 0;
    int64_t nw = 0, na = 0;
    for (int a = 0; a < K; ++a)
        for (int b = a + 1; b < K; ++b) {
            if (comp[size_t(a)] == comp[size_t(b)]) {
                sw += d[size_t(a)][size_t(b)];
                ++nw;
            } else {
                sa += d[size_t(a)][size_t(b)];
                ++na;
            }
        }
    st.within = nw ? sw / double(nw) / len : 0;
    st.across = na ? sa / double(na) / len : 0;
    return st;
}
}  // namespace

TEST(Synthetic, LineFamiliesAreMeasurable) {
    for (PruneMode mode : {PruneMode::LineOnly, PruneMode::SubStructured}) {
        WorkloadParams p;
        uint64_t seed = 1;  // simulation.seed
        p.pruning = to_string(mode);
        p.weight_sparsity = 0.7;
        p.line_families = 4;
        p.family_flip = 0.1;
        p.shape_row_exponent = -1;  // uniform shape groups: the distances below are derived for them
        seed = 3;
        Trace t = make_synthetic_trace(p, seed);
        const WeightMask& m = work_of(t, "layer3.0.conv2").mask;  // K = 256 filters, 768 lines each
        FamilyStats st = family_stats(m);
        EXPECT_EQ(st.components, 4) << to_string(mode);
        EXPECT_LT(st.within, 0.5 * st.across) << to_string(mode);
        // Two members of a family differ where either flipped: about 2 p (1 - p) = 0.18.
        EXPECT_NEAR(st.within, 0.18, 0.05) << to_string(mode);
    }
    // Without families (one per filter) there is no such structure.
    WorkloadParams p;
    uint64_t seed = 1;  // simulation.seed
    p.pruning = to_string(PruneMode::LineOnly);
    p.line_families = 1000000;
    Trace t = make_synthetic_trace(p, seed);
    FamilyStats st = family_stats(work_of(t, "layer3.0.conv2").mask);
    EXPECT_GT(st.components, 100);
    // One family and no flips: every filter has the same line mask up to the re-balancing.
    p.line_families = 1;
    p.family_flip = 0.0;
    Trace u = make_synthetic_trace(p, seed);
    auto v = line_vectors(work_of(u, "layer3.0.conv2").mask);
    double mean = 0;
    for (size_t a = 0; a < v.size(); ++a)
        for (size_t b = a + 1; b < v.size(); ++b) mean += hamming(v[a], v[b]);
    mean /= double(v.size()) * double(v.size() - 1) / 2 * double(v[0].size());
    EXPECT_LT(mean, 0.02);
}

TEST(Synthetic, DefaultActivationDensities) {
    WorkloadParams p;
    uint64_t seed = 1;  // simulation.seed
    p.batch = 4;
    Trace t = make_synthetic_trace(p, seed);
    const Network& n = t.net;
    for (const LayerWork& lw : t.iterations[0].layers) {
        const Layer& L = n.layers[size_t(lw.layer)];
        const double want = synthetic_default_density(n, L.inputs[0]);
        if (L.op == LayerOp::FC) {
            EXPECT_NEAR(double(lw.input_nonzero.count()) / double(4 * L.fc_in), want, 0.05) << L.name;
            EXPECT_EQ(lw.grad_nonzero.count(), int64_t(4) * L.K);  // softmax gradient: dense
        } else {
            EXPECT_NEAR(lw.input_nonzero.density(), want, 0.03) << L.name;
        }
    }
    EXPECT_DOUBLE_EQ(work_of(t, "conv1").input_nonzero.density(), 1.0);  // the image
    EXPECT_DOUBLE_EQ(synthetic_default_density(n, -1), 1.0);
    // The per-layer values are fitted to a real trace: tests/test_synthetic_fit.cpp compares them.
    // A shortcut's input is the same tensor as the block's conv1 input.
    EXPECT_TRUE(same_bitmap(work_of(t, "layer2.0.downsample").input_nonzero, work_of(t, "layer2.0.conv1").input_nonzero));
    // Output gradients (fitted model, BN's backward exact): whole channels are zero or non-zero,
    // for every image, round(d K) of them non-zero at the layer's default gradient density.
    for (const LayerWork& lw : t.iterations[0].layers) {
        const Layer& L = n.layers[size_t(lw.layer)];
        if (L.op == LayerOp::FC) continue;
        const double d = synthetic_default_grad_density(n, lw.layer);
        EXPECT_NEAR(lw.grad_nonzero.density(), std::round(d * L.K) / L.K, 1e-12) << L.name;
        const int64_t plane = int64_t(L.P) * L.Q;
        for (int c = 0; c < L.K; ++c) {
            int64_t on = 0;
            for (int img = 0; img < 4; ++img)
                for (int h = 0; h < L.P; ++h)
                    for (int w = 0; w < L.Q; ++w) on += lw.grad_nonzero.get(img, c, h, w);
            EXPECT_TRUE(on == 0 || on == 4 * plane) << L.name << " channel " << c;
        }
    }
}

TEST(Synthetic, ImageNetDefaultsIncludeMaxPool) {
    WorkloadParams p;
    uint64_t seed = 1;  // simulation.seed
    p.network = "resnet18-imagenet";
    p.pruning = to_string(PruneMode::Dense);
    Trace t = make_synthetic_trace(p, seed);
    const Network& n = t.net;
    EXPECT_NEAR(work_of(t, "layer1.0.conv1").input_nonzero.density(),
                synthetic_default_density(n, n.find("maxpool")), 0.02);
    EXPECT_NEAR(work_of(t, "conv1").grad_nonzero.density(), synthetic_default_grad_density(n, n.find("conv1")), 0.02);
    EXPECT_EQ(work_of(t, "fc").mask.K, 1000);
}

TEST(Synthetic, ExplicitDensities) {
    WorkloadParams p;
    uint64_t seed = 1;  // simulation.seed
    p.batch = 2;
    p.input_density = 0.3;
    p.grad_density = 0.2;
    p.fc_block = 24;  // 512 inputs: the last block is padded
    Trace t = make_synthetic_trace(p, seed);
    for (const LayerWork& lw : t.iterations[0].layers) {
        const Layer& L = t.net.layers[size_t(lw.layer)];
        const double tol = L.op == LayerOp::FC ? 0.06 : 0.03;
        if (L.op == LayerOp::FC) {
            EXPECT_NEAR(double(lw.input_nonzero.count()) / double(2 * L.fc_in), 0.3, tol);
            for (int n = 0; n < 2; ++n)
                for (int s = L.fc_in - (L.C - 1) * L.S; s < L.S; ++s) EXPECT_FALSE(lw.input_nonzero.get(n, L.C - 1, 0, s));
            EXPECT_NEAR(lw.grad_nonzero.density(), 0.2, 0.2);  // only 20 bits
        } else {
            // input_density is the layers' activations'; the network's input image stays dense
            const bool reads_image = L.inputs.at(0) < 0;
            EXPECT_NEAR(lw.input_nonzero.density(), reads_image ? 1.0 : 0.3, tol) << L.name;
            EXPECT_NEAR(lw.grad_nonzero.density(), 0.2, tol) << L.name;
        }
    }
    // Padding of the FC weights is never kept either.
    const LayerWork& fc = work_of(t, "fc");
    for (int k = 0; k < fc.mask.K; ++k) EXPECT_EQ(fc.mask.row(k, fc.mask.C - 1, 0) >> 8, 0u);  // 512 = 21*24 + 8
}

TEST(Synthetic, MaskUpdatesAndIterations) {
    WorkloadParams p;
    uint64_t seed = 1;  // simulation.seed
    p.iterations = 5;
    p.update_interval = 2;
    Network n = build_network("resnet18-cifar", 0.25);
    Trace t = make_synthetic_trace(p, n, seed);
    ASSERT_EQ(t.iterations.size(), 5u);
    const bool updates[5] = {true, false, true, false, true};
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(t.iterations[size_t(i)].index, i);
        EXPECT_EQ(t.iterations[size_t(i)].mask_update, updates[i]);
    }
    for (size_t w = 1; w < t.iterations[0].layers.size(); ++w) {
        EXPECT_TRUE(same_mask(t.iterations[0].layers[w].mask, t.iterations[1].layers[w].mask));
        EXPECT_TRUE(same_mask(t.iterations[2].layers[w].mask, t.iterations[3].layers[w].mask));
        EXPECT_FALSE(same_mask(t.iterations[1].layers[w].mask, t.iterations[2].layers[w].mask));
    }
    // Activations change every iteration.
    EXPECT_FALSE(same_bitmap(t.iterations[0].layers[3].input_nonzero, t.iterations[1].layers[3].input_nonzero));
    EXPECT_EQ(t.net.layers[size_t(t.iterations[0].layers[1].layer)].K, 16);
}

TEST(Synthetic, PruneFirstLayer) {
    WorkloadParams p;
    uint64_t seed = 1;  // simulation.seed
    p.prune_first_layer = true;
    p.pruning = to_string(PruneMode::Unstructured);
    Trace t = make_synthetic_trace(p, seed);
    EXPECT_NEAR(work_of(t, "conv1").mask.density(), 0.3, 0.02);
}

TEST(Synthetic, InvalidParameters) {
    auto bad = [](auto edit) {
        WorkloadParams p;
        uint64_t seed = 1;  // simulation.seed
        edit(p);
        EXPECT_THROW(make_synthetic_trace(p, seed), std::invalid_argument);
    };
    bad([](WorkloadParams& p) { p.network = "alexnet"; });
    bad([](WorkloadParams& p) { p.pruning = "random"; });
    bad([](WorkloadParams& p) { p.batch = 0; });
    bad([](WorkloadParams& p) { p.iterations = 0; });
    bad([](WorkloadParams& p) { p.update_interval = 0; });
    bad([](WorkloadParams& p) { p.weight_sparsity = 1.5; });
    bad([](WorkloadParams& p) { p.weight_sparsity = std::nan(""); });
    bad([](WorkloadParams& p) { p.shape_fraction = -0.1; });
    bad([](WorkloadParams& p) { p.line_families = 0; });
    bad([](WorkloadParams& p) { p.family_flip = 2; });
    bad([](WorkloadParams& p) { p.input_density = 1.01; });
    bad([](WorkloadParams& p) { p.grad_density = std::nan(""); });
    bad([](WorkloadParams& p) { p.fc_block = 65; });
}

TEST(Synthetic, ExtremeSparsities) {
    for (PruneMode mode : {PruneMode::Structured, PruneMode::Unstructured, PruneMode::ShapeOnly, PruneMode::LineOnly,
                           PruneMode::SubStructured}) {
        WorkloadParams p;
        uint64_t seed = 1;  // simulation.seed
        p.pruning = to_string(mode);
        Network n = build_network("resnet18-cifar", 0.125);
        p.weight_sparsity = 1.0;
        Trace t = make_synthetic_trace(p, n, seed);
        for (size_t w = 1; w < t.iterations[0].layers.size(); ++w)
            EXPECT_EQ(t.iterations[0].layers[w].mask.kept_count(), 0) << to_string(mode);
        p.weight_sparsity = 0.0;
        Trace u = make_synthetic_trace(p, n, seed);
        for (size_t w = 0; w < u.iterations[0].layers.size(); ++w) {
            const Layer& L = n.layers[size_t(u.iterations[0].layers[w].layer)];
            EXPECT_EQ(u.iterations[0].layers[w].mask.kept_count(), real_weights(L)) << to_string(mode);
        }
    }
}
