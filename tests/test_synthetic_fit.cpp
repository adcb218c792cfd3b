// The default synthetic workload against the real Fashion-MNIST trace it was fitted to
// (configs/traces/resnet18-fmnist-substructured, scripts/fit_workload.py, docs/workload.md):
// per-layer activation and gradient densities, the Hamming distances between filters' line masks,
// and how masks change from one mask update to the next, each within a stated tolerance.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "swpu/config.hpp"
#include "swpu/workload.hpp"

using namespace swpu;
namespace fs = std::filesystem;

namespace {

const fs::path kReal = fs::path(SWPU_SOURCE_DIR) / "configs" / "traces" / "resnet18-fmnist-substructured";

// Effective line masks of a layer: line (k, j) kept when its row keeps a weight.
std::vector<std::vector<uint8_t>> lines_of(const WeightMask& m) {
    const int J = m.C * m.R;
    std::vector<std::vector<uint8_t>> v(size_t(m.K), std::vector<uint8_t>(size_t(J)));
    for (int k = 0; k < m.K; ++k)
        for (int j = 0; j < J; ++j) v[size_t(k)][size_t(j)] = m.rows[size_t(k) * J + j] != 0;
    return v;
}

double mean_hamming(const WeightMask& m) {
    const auto v = lines_of(m);
    double sum = 0;
    int64_t pairs = 0;
    for (size_t a = 0; a < v.size(); ++a)
        for (size_t b = a + 1; b < v.size(); ++b) {
            int d = 0;
            for (size_t j = 0; j < v[a].size(); ++j) d += v[a][j] != v[b][j];
            sum += double(d) / double(v[a].size());
            ++pairs;
        }
    return pairs ? sum / double(pairs) : 0.0;
}

double line_density(const WeightMask& m) {
    int64_t kept = 0;
    for (uint64_t r : m.rows) kept += r != 0;
    return double(kept) / double(m.rows.size());
}

// Fraction of the lines kept at `a` that are no longer kept at `b`.
double lines_dropped(const WeightMask& a, const WeightMask& b) {
    int64_t kept = 0, dropped = 0;
    for (size_t i = 0; i < a.rows.size(); ++i)
        if (a.rows[i] != 0) {
            ++kept;
            dropped += b.rows[i] == 0;
        }
    return kept ? double(dropped) / double(kept) : 0.0;
}

double grad_density(const LayerWork& w) { return w.grad_nonzero.density(); }
double input_density(const Trace& t, const LayerWork& w) {
    const Layer& L = t.net.layers[size_t(w.layer)];
    if (L.op == LayerOp::FC) return double(w.input_nonzero.count()) / double(int64_t(w.input_nonzero.N) * L.fc_in);
    return w.input_nonzero.density();
}

bool pruned_conv(const Trace& t, const LayerWork& w) {
    const Layer& L = t.net.layers[size_t(w.layer)];
    return L.op != LayerOp::FC && L.name != "conv1";
}

struct Pair {
    Trace real, synth;
};

const Pair& traces() {
    static const Pair p = [] {
        Pair r;
        r.real = load_trace(kReal.string(), 1);
        RunConfig cfg;  // the default workload
        WorkloadParams sp = cfg.workload;
        // The real trace's size and sparsity; everything else is the default (fitted) model.
        sp.batch = r.real.batch;
        sp.iterations = 2;
        sp.update_interval = 1;
        const LayerWork& last = r.real.iterations.back().layers[1];
        sp.weight_sparsity = 1.0 - last.mask.density();
        r.synth = make_synthetic_trace(sp, r.real.net, cfg.simulation.seed);
        return r;
    }();
    return p;
}

}  // namespace

TEST(SyntheticFit, TheRealTraceIsTheFittedOne) {
    const Trace& real = traces().real;
    ASSERT_GE(real.iterations.size(), 2u);
    EXPECT_EQ(real.mode, PruneMode::SubStructured);
    EXPECT_EQ(real.net.in_h, 28);
}

// Per layer, over the real trace's recorded iterations: the default synthetic densities are within
// 0.03 of the real ones (the bitmaps are drawn at the fitted means, so only sampling noise,
// whole-channel rounding and the spread between the recorded iterations remain).
TEST(SyntheticFit, DensitiesPerLayer) {
    const Trace& real = traces().real;
    const Trace& syn = traces().synth;
    const size_t n = real.iterations[0].layers.size();
    ASSERT_EQ(syn.iterations[0].layers.size(), n);
    for (size_t w = 0; w < n; ++w) {
        double ri = 0, rg = 0;
        for (const Iteration& it : real.iterations) {
            ri += input_density(real, it.layers[w]);
            rg += grad_density(it.layers[w]);
        }
        ri /= double(real.iterations.size());
        rg /= double(real.iterations.size());
        const LayerWork& s = syn.iterations[0].layers[w];
        const std::string& name = real.net.layers[size_t(s.layer)].name;
        EXPECT_NEAR(input_density(syn, s), ri, 0.03) << name << " input";
        EXPECT_NEAR(grad_density(s), rg, 0.03) << name << " output gradient";
    }
}

// Filters' line masks: mean normalised Hamming distance between two filters within 0.03 of the real
// one in every pruned conv layer, at the real trace's sparsity (last recorded iteration).
TEST(SyntheticFit, LineMaskHammingDistances) {
    const Trace& real = traces().real;
    const Trace& syn = traces().synth;
    const Iteration& r = real.iterations.back();
    const Iteration& s = syn.iterations[0];
    double worst = 0;
    for (size_t w = 0; w < r.layers.size(); ++w) {
        if (!pruned_conv(real, r.layers[w])) continue;
        const std::string& name = real.net.layers[size_t(r.layers[w].layer)].name;
        const double hr = mean_hamming(r.layers[w].mask), hs = mean_hamming(s.layers[w].mask);
        EXPECT_NEAR(hs, hr, 0.03) << name << " (line density real " << line_density(r.layers[w].mask)
                                  << ", synthetic " << line_density(s.layers[w].mask) << ")";
        worst = std::max(worst, std::fabs(hs - hr));
    }
    RecordProperty("worst_hamming_difference", std::to_string(worst));
}

// Masks evolve: between two mask updates the synthetic masks keep most of their lines, dropping a
// fraction within 0.03 of the real trace's (mean over the pruned conv layers); a redraw would drop
// about 1 - line density (~0.5 and more).
TEST(SyntheticFit, MasksEvolveBetweenUpdates) {
    const Trace& real = traces().real;
    const Trace& syn = traces().synth;
    int a = -1, b = -1;  // two consecutive recorded mask updates
    for (size_t i = 0; i + 1 < real.iterations.size(); ++i)
        if (real.iterations[i].mask_update && real.iterations[i + 1].mask_update) {
            a = int(i);
            b = int(i + 1);
            break;
        }
    ASSERT_GE(a, 0) << "the real trace needs two consecutive recorded mask updates";
    double real_drop = 0, syn_drop = 0;
    int layers = 0;
    for (size_t w = 0; w < real.iterations[size_t(a)].layers.size(); ++w) {
        if (!pruned_conv(real, real.iterations[size_t(a)].layers[w])) continue;
        real_drop += lines_dropped(real.iterations[size_t(a)].layers[w].mask, real.iterations[size_t(b)].layers[w].mask);
        syn_drop += lines_dropped(syn.iterations[0].layers[w].mask, syn.iterations[1].layers[w].mask);
        ++layers;
    }
    ASSERT_GT(layers, 0);
    real_drop /= layers;
    syn_drop /= layers;
    EXPECT_NEAR(syn_drop, real_drop, 0.03);
    EXPECT_GT(syn_drop, 0.0);
    EXPECT_LT(syn_drop, 0.3);
}
