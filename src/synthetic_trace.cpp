// Built-in synthetic training trace: seeded weight masks for every pruning mode and i.i.d.
// activation / gradient bitmaps. The model and its parameters are documented in docs/workload.md.
//
// Portability: every random draw comes from std::mt19937_64 (whose output sequence the C++
// standard fixes) through our own integer/real/shuffle code below, never through
// std::uniform_*_distribution or std::shuffle (whose outputs differ between standard libraries).
#include "swpu/workload.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <stdexcept>

namespace swpu {
namespace {

// Stream kinds for derive_seed.
constexpr uint64_t kStreamMask = 1;
constexpr uint64_t kStreamAct = 2;
constexpr uint64_t kStreamGrad = 3;

class Rng {
public:
    explicit Rng(uint64_t seed) : g_(seed) {}
    // Uniform in [0, 1) with 53 random bits.
    double uniform() { return double(g_() >> 11) * (1.0 / 9007199254740992.0); }
    // Uniform integer in [0, n), n >= 1, unbiased (rejection of the 2^64 mod n lowest draws).
    uint64_t below(uint64_t n) {
        const uint64_t threshold = (uint64_t(0) - n) % n;
        for (;;) {
            uint64_t x = g_();
            if (x >= threshold) return x % n;
        }
    }
    template <class T>
    void shuffle(std::vector<T>& v) {  // Fisher-Yates
        for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[size_t(below(i))]);
    }

private:
    std::mt19937_64 g_;
};

int64_t round_count(double fraction, int64_t n) {
    int64_t k = int64_t(std::llround(fraction * double(n)));
    return k < 0 ? 0 : (k > n ? n : k);
}

// A uniformly random subset of `keep` of n items (partial Fisher-Yates), as 0/1 flags. Ranking
// the items by i.i.d. random scores and keeping the top `keep` is the same distribution: this is
// how the "lowest-norm groups" of a real pruner are stood in for.
std::vector<uint8_t> choose_subset(int64_t n, int64_t keep, Rng& rng) {
    std::vector<uint8_t> flag(size_t(n), 0);
    if (keep >= n) {
        std::fill(flag.begin(), flag.end(), 1);
        return flag;
    }
    std::vector<uint32_t> idx(static_cast<size_t>(n));
    std::iota(idx.begin(), idx.end(), 0u);
    for (int64_t i = 0; i < keep; ++i) {
        const int64_t j = i + int64_t(rng.below(uint64_t(n - i)));
        std::swap(idx[size_t(i)], idx[size_t(j)]);
        flag[idx[size_t(i)]] = 1;
    }
    return flag;
}

// Bits of kernel row (c, *) that are real weights: all S bits for a conv, and for an FC layer in
// conv form only the s with c*B + s < F (the padding of the last block is not a weight).
uint64_t valid_bits(const Layer& L, int c) {
    const uint64_t full = L.S == 64 ? ~uint64_t(0) : ((uint64_t(1) << L.S) - 1);
    if (L.op != LayerOp::FC) return full;
    const int64_t left = int64_t(L.fc_in) - int64_t(c) * L.S;
    if (left >= L.S) return full;
    if (left <= 0) return 0;
    return (uint64_t(1) << left) - 1;
}

int64_t real_weights(const Layer& L) {
    return L.op == LayerOp::FC ? int64_t(L.K) * L.fc_in : int64_t(L.K) * L.C * L.R * L.S;
}

// Shape mask Ms[c][r] (S-bit rows) with round(d * G) of the G real (c, r, s) groups kept.
std::vector<uint64_t> make_shape_rows(const Layer& L, double d, Rng& rng) {
    std::vector<uint64_t> rows(size_t(L.C) * L.R, 0);
    if (L.op == LayerOp::FC) {
        const int64_t G = L.fc_in;
        std::vector<uint8_t> keep = choose_subset(G, round_count(d, G), rng);
        for (int64_t f = 0; f < G; ++f)
            if (keep[size_t(f)]) rows[size_t(f / L.S)] |= uint64_t(1) << (f % L.S);
    } else {
        const int64_t G = int64_t(L.C) * L.R * L.S;
        std::vector<uint8_t> keep = choose_subset(G, round_count(d, G), rng);
        for (int64_t g = 0; g < G; ++g)
            if (keep[size_t(g)]) rows[size_t(g / L.S)] |= uint64_t(1) << (g % L.S);
    }
    return rows;
}

// Line masks Ml[k][j], j = c*R + r, with latent families: filter k belongs to family fam[k]
// (balanced, random membership); each family has a base mask with round(dl * J) lines kept; each
// filter copies its family's base, each bit differing from it with probability `flip` through
// density-preserving flips (a kept base bit is dropped with probability flip / (2 dl), a pruned
// one kept with probability flip / (2 (1 - dl)), so the expected density stays dl).
std::vector<uint8_t> make_family_lines(int K, int J, double dl, int families, double flip, Rng& rng) {
    std::vector<uint8_t> lines(size_t(K) * J, 0);
    if (K == 0 || J == 0) return lines;
    const int F = std::max(1, std::min(families, K));
    std::vector<int> perm(static_cast<size_t>(K));
    std::iota(perm.begin(), perm.end(), 0);
    rng.shuffle(perm);
    std::vector<int> fam(static_cast<size_t>(K));
    for (int i = 0; i < K; ++i) fam[size_t(perm[size_t(i)])] = i % F;
    std::vector<std::vector<uint8_t>> base(static_cast<size_t>(F));
    for (int f = 0; f < F; ++f) base[size_t(f)] = choose_subset(J, round_count(dl, J), rng);
    const double p_drop = dl > 0 ? std::min(1.0, flip / (2 * dl)) : 0.0;
    const double p_add = dl < 1 ? std::min(1.0, flip / (2 * (1 - dl))) : 0.0;
    for (int k = 0; k < K; ++k) {
        const std::vector<uint8_t>& b = base[size_t(fam[size_t(k)])];
        uint8_t* row = &lines[size_t(k) * J];
        for (int j = 0; j < J; ++j) {
            const double u = rng.uniform();
            row[j] = b[size_t(j)] ? uint8_t(!(u < p_drop)) : uint8_t(u < p_add);
        }
    }
    return lines;
}

// Toggles randomly chosen lines (only lines of non-zero weight) until the number of kept weights,
// sum of lines[k][j] * weight[j], is as close as possible to `target`.
void rebalance_lines(std::vector<uint8_t>& lines, int J, const std::vector<int>& weight, int64_t target,
                     Rng& rng) {
    int64_t E = 0;
    for (size_t i = 0; i < lines.size(); ++i)
        if (lines[i]) E += weight[i % size_t(J)];
    if (E == target) return;
    const bool dec = E > target;
    std::vector<uint32_t> cand;
    for (size_t i = 0; i < lines.size(); ++i)
        if (bool(lines[i]) == dec && weight[i % size_t(J)] > 0) cand.push_back(uint32_t(i));
    rng.shuffle(cand);
    for (uint32_t i : cand) {
        if (E == target || (dec ? E < target : E > target)) break;
        const int64_t w = weight[i % size_t(J)];
        const int64_t next = dec ? E - w : E + w;
        const bool take = dec ? (next >= target || (E - target) > (target - next))
                              : (next <= target || (target - E) > (next - target));
        if (take) {
            lines[i] = dec ? 0 : 1;
            E = next;
        }
    }
}

WeightMask make_mask(const Layer& L, PruneMode mode, double d, const SyntheticParams& p, Rng& rng) {
    WeightMask m;
    m.resize(L.K, L.C, L.R, L.S, false);
    const int K = L.K, C = L.C, R = L.R, S = L.S;
    const int J = C * R;
    std::vector<uint64_t> full(static_cast<size_t>(J));
    for (int c = 0; c < C; ++c)
        for (int r = 0; r < R; ++r) full[size_t(c) * R + r] = valid_bits(L, c);

    auto apply_lines = [&](const std::vector<uint8_t>& lines, const std::vector<uint64_t>& shape) {
        for (int k = 0; k < K; ++k)
            for (int j = 0; j < J; ++j)
                m.rows[size_t(k) * J + j] = lines[size_t(k) * J + j] ? shape[size_t(j)] : 0;
    };
    auto line_weights = [&](const std::vector<uint64_t>& shape) {
        std::vector<int> w(static_cast<size_t>(J));
        for (int j = 0; j < J; ++j) w[size_t(j)] = __builtin_popcountll(shape[size_t(j)]);
        return w;
    };
    const int64_t target = round_count(d, real_weights(L));

    switch (mode) {
        case PruneMode::Dense:
            for (int k = 0; k < K; ++k)
                for (int j = 0; j < J; ++j) m.rows[size_t(k) * J + j] = full[size_t(j)];
            break;
        case PruneMode::Structured: {
            if (L.op == LayerOp::FC) {
                // Whole input neurons: pruning output neurons of the classifier would drop classes.
                std::vector<uint64_t> shape = make_shape_rows(L, d, rng);
                apply_lines(std::vector<uint8_t>(size_t(K) * J, 1), shape);
                break;
            }
            std::vector<uint8_t> keep = choose_subset(K, round_count(d, K), rng);
            for (int k = 0; k < K; ++k)
                if (keep[size_t(k)])
                    for (int j = 0; j < J; ++j) m.rows[size_t(k) * J + j] = full[size_t(j)];
            break;
        }
        case PruneMode::Unstructured: {
            const int64_t n = real_weights(L);
            std::vector<uint8_t> keep = choose_subset(n, target, rng);
            if (L.op == LayerOp::FC) {
                for (int64_t i = 0; i < n; ++i) {
                    if (!keep[size_t(i)]) continue;
                    const int64_t k = i / L.fc_in, f = i % L.fc_in;
                    m.rows[size_t(k) * J + size_t(f / S)] |= uint64_t(1) << (f % S);
                }
            } else {
                for (int64_t i = 0; i < n; ++i)
                    if (keep[size_t(i)]) m.rows[size_t(i / S)] |= uint64_t(1) << (i % S);
            }
            break;
        }
        case PruneMode::ShapeOnly: {
            std::vector<uint64_t> shape = make_shape_rows(L, d, rng);
            apply_lines(std::vector<uint8_t>(size_t(K) * J, 1), shape);
            break;
        }
        case PruneMode::LineOnly: {
            std::vector<uint8_t> lines = make_family_lines(K, J, d, p.line_families, p.family_flip, rng);
            rebalance_lines(lines, J, line_weights(full), target, rng);
            apply_lines(lines, full);
            break;
        }
        case PruneMode::SubStructured: {
            // Multiplicative split: d = d_shape * d_line with d_shape = d^f, d_line = d^(1-f).
            const double f = p.shape_fraction;
            const double d_shape = std::pow(d, f);
            std::vector<uint64_t> shape = make_shape_rows(L, d_shape, rng);
            std::vector<int> w = line_weights(shape);
            int64_t shape_kept = 0, shape_total = 0;
            for (int j = 0; j < J; ++j) {
                shape_kept += w[size_t(j)];
                shape_total += __builtin_popcountll(full[size_t(j)]);
            }
            // Line density that compensates the rounding of the shape mask.
            const double ds_real = shape_total > 0 ? double(shape_kept) / double(shape_total) : 0.0;
            const double d_line = ds_real > 0 ? std::min(1.0, d / ds_real) : 0.0;
            std::vector<uint8_t> lines = make_family_lines(K, J, d_line, p.line_families, p.family_flip, rng);
            rebalance_lines(lines, J, w, target, rng);
            apply_lines(lines, shape);
            break;
        }
    }
    return m;
}

bool ends_with(const std::string& s, const std::string& suf) {
    return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

void validate(const SyntheticParams& p) {
    auto bad = [](const std::string& what) { throw std::invalid_argument("synthetic workload: " + what); };
    if (p.batch < 1 || p.batch > 65536) bad("batch must be in [1, 65536], got " + std::to_string(p.batch));
    if (p.iterations < 1 || p.iterations > 1000000)
        bad("iterations must be in [1, 1000000], got " + std::to_string(p.iterations));
    if (p.update_interval < 1) bad("update_interval must be >= 1, got " + std::to_string(p.update_interval));
    if (!(p.weight_sparsity >= 0 && p.weight_sparsity <= 1))
        bad("weight_sparsity must be in [0, 1], got " + std::to_string(p.weight_sparsity));
    if (!(p.shape_fraction >= 0 && p.shape_fraction <= 1))
        bad("shape_fraction must be in [0, 1], got " + std::to_string(p.shape_fraction));
    if (p.line_families < 1) bad("line_families must be >= 1, got " + std::to_string(p.line_families));
    if (!(p.family_flip >= 0 && p.family_flip <= 1))
        bad("family_flip must be in [0, 1], got " + std::to_string(p.family_flip));
    if (std::isnan(p.input_density) || p.input_density > 1)
        bad("input_density must be in [0, 1] (or < 0 for the per-layer defaults)");
    if (std::isnan(p.grad_density) || p.grad_density > 1)
        bad("grad_density must be in [0, 1] (or < 0 for the per-layer defaults)");
}

// Layers that consume the output of each layer.
std::vector<std::vector<int>> consumers_of(const Network& net) {
    std::vector<std::vector<int>> cons(net.layers.size());
    for (size_t i = 0; i < net.layers.size(); ++i)
        for (int in : net.layers[i].inputs)
            if (in >= 0) cons[size_t(in)].push_back(int(i));
    return cons;
}

// The ReLU whose backward pass sets the zeros of the gradient of layer idx's output: following
// BN and Add layers. -1 when there is none (the FC layer, whose output gradient is dense).
int following_relu(const Network& net, const std::vector<std::vector<int>>& cons, int idx) {
    int cur = idx;
    for (int steps = 0; steps < 8; ++steps) {
        if (cons[size_t(cur)].size() != 1) return -1;
        const int nxt = cons[size_t(cur)][0];
        const LayerOp op = net.layers[size_t(nxt)].op;
        if (op == LayerOp::ReLU) return nxt;
        if (op != LayerOp::BatchNorm && op != LayerOp::Add) return -1;
        cur = nxt;
    }
    return -1;
}

}  // namespace

// Default density (fraction of non-zeros) of the output tensor of layer `producer` (-1 = image).
// The table and its sources are in docs/workload.md.
double synthetic_default_density(const Network& net, int producer) {
    if (producer < 0) return 1.0;  // the image is dense
    const std::string& n = net.layers.at(size_t(producer)).name;
    if (n == "relu") return 0.50;
    if (n == "maxpool") return 0.80;
    if (n == "avgpool") return 0.90;
    static const double relu1[4] = {0.45, 0.40, 0.35, 0.25};
    static const double relu2[4] = {0.60, 0.55, 0.50, 0.40};
    if (n.size() > 6 && n.compare(0, 5, "layer") == 0 && n[5] >= '1' && n[5] <= '4') {
        const int s = n[5] - '1';
        if (ends_with(n, ".relu1")) return relu1[s];
        if (ends_with(n, ".relu2")) return relu2[s];
    }
    return 0.50;
}

Trace make_synthetic_trace(const SyntheticParams& p) {
    validate(p);
    return make_synthetic_trace(p, build_network(p.network, 1.0, -1, -1, -1, p.fc_block));
}

Trace make_synthetic_trace(const SyntheticParams& p, const Network& net) {
    validate(p);
    Trace t;
    t.net = net;
    t.batch = p.batch;
    t.mode = p.mode;
    t.source = "built-in synthetic";
    const std::vector<int> wl = net.weighted_layers();
    const std::vector<std::vector<int>> cons = consumers_of(net);
    const double density = 1.0 - p.weight_sparsity;
    const int N = p.batch;

    std::vector<WeightMask> masks(wl.size());
    for (int i = 0; i < p.iterations; ++i) {
        Iteration it;
        it.index = i;
        it.mask_update = (i % p.update_interval) == 0;
        if (it.mask_update) {
            // Dynamic pruning: each update draws fresh masks from its own seed stream.
            const uint64_t epoch = uint64_t(i / p.update_interval);
            for (size_t w = 0; w < wl.size(); ++w) {
                const Layer& L = net.layers[size_t(wl[w])];
                Rng rng(derive_seed(p.seed, kStreamMask, epoch, w));
                const bool first = w == 0 && !p.prune_first_layer;
                masks[w] = make_mask(L, first ? PruneMode::Dense : p.mode, density, p, rng);
            }
        }

        // One bitmap per activation tensor and iteration, shared by all its consumers.
        std::map<int, Bitmap4D> tensors;
        auto tensor_bits = [&](int producer) -> const Bitmap4D& {
            auto f = tensors.find(producer);
            if (f != tensors.end()) return f->second;
            Bitmap4D b;
            if (producer < 0)
                b.resize(N, net.in_c, net.in_h, net.in_w);
            else {
                const Layer& P = net.layers[size_t(producer)];
                b.resize(N, P.out_c, P.out_h, P.out_w);
            }
            // The network's input image stays dense: input_density is the layers' activations'.
            const double d = producer >= 0 && p.input_density >= 0 ? p.input_density
                                                                   : synthetic_default_density(net, producer);
            fill_bernoulli(b, d, derive_seed(p.seed, kStreamAct, uint64_t(i), uint64_t(producer + 1)));
            return tensors.emplace(producer, std::move(b)).first->second;
        };

        for (size_t w = 0; w < wl.size(); ++w) {
            const int li = wl[w];
            const Layer& L = net.layers[size_t(li)];
            LayerWork lw;
            lw.layer = li;
            lw.mask = masks[w];
            const int producer = L.inputs.at(0);
            if (L.op == LayerOp::FC) {
                lw.input_nonzero.resize(N, L.C, 1, L.S);
                const double d = p.input_density >= 0 ? p.input_density : synthetic_default_density(net, producer);
                fill_bernoulli(lw.input_nonzero, d,
                               derive_seed(p.seed, kStreamAct, uint64_t(i), uint64_t(producer + 1)), L.fc_in);
            } else {
                lw.input_nonzero = tensor_bits(producer);
            }
            lw.grad_nonzero.resize(N, L.K, L.P, L.Q);
            if (p.grad_density >= 0) {
                fill_bernoulli(lw.grad_nonzero, p.grad_density,
                               derive_seed(p.seed, kStreamGrad, uint64_t(i), uint64_t(li)));
            } else {
                const int relu = following_relu(net, cons, li);
                if (relu < 0) {
                    fill_bernoulli(lw.grad_nonzero, 1.0, 0);  // FC: softmax cross-entropy gradient
                } else {
                    // The gradient reaching the conv is zero where the following ReLU's output is
                    // zero (BN's backward treated as zero-preserving: see docs/workload.md).
                    lw.grad_nonzero = tensor_bits(relu);
                }
            }
            it.layers.push_back(std::move(lw));
        }
        t.iterations.push_back(std::move(it));
    }
    return t;
}

}  // namespace swpu
