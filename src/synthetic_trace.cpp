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

// Shape mask Ms[c][r] (S-bit rows) with round(d * G) of the G real (c, r, s) groups kept. Conv
// layers: the kept groups gather in rows (fitted to real masks, docs/workload.md): round(d^a * C R)
// rows (a = row_exponent, within what the count allows) keep at least one group each and the other
// kept groups fill random free slots of those rows; a < 0 draws the groups uniformly instead.
std::vector<uint64_t> make_shape_rows(const Layer& L, double d, Rng& rng, double row_exponent = -1.0) {
    std::vector<uint64_t> rows(size_t(L.C) * L.R, 0);
    if (L.op == LayerOp::FC) {
        const int64_t G = L.fc_in;
        std::vector<uint8_t> keep = choose_subset(G, round_count(d, G), rng);
        for (int64_t f = 0; f < G; ++f)
            if (keep[size_t(f)]) rows[size_t(f / L.S)] |= uint64_t(1) << (f % L.S);
    } else if (row_exponent < 0) {
        const int64_t G = int64_t(L.C) * L.R * L.S;
        std::vector<uint8_t> keep = choose_subset(G, round_count(d, G), rng);
        for (int64_t g = 0; g < G; ++g)
            if (keep[size_t(g)]) rows[size_t(g / L.S)] |= uint64_t(1) << (g % L.S);
    } else {
        const int64_t J = int64_t(L.C) * L.R, S = L.S, G = J * S;
        const int64_t kept = round_count(d, G);
        int64_t n_rows = round_count(d > 0 ? std::pow(d, row_exponent) : 0.0, J);
        n_rows = std::max(n_rows, (kept + S - 1) / S);
        n_rows = std::min(n_rows, std::min(J, kept));
        std::vector<uint8_t> on = choose_subset(J, n_rows, rng);
        std::vector<uint32_t> free_slots;
        for (int64_t j = 0; j < J; ++j) {
            if (!on[size_t(j)]) continue;
            const int64_t first = int64_t(rng.below(uint64_t(S)));
            rows[size_t(j)] |= uint64_t(1) << first;
            for (int64_t s = 0; s < S; ++s)
                if (s != first) free_slots.push_back(uint32_t(j * S + s));
        }
        std::vector<uint8_t> extra = choose_subset(int64_t(free_slots.size()), kept - n_rows, rng);
        for (size_t i = 0; i < free_slots.size(); ++i)
            if (extra[i]) rows[free_slots[i] / uint32_t(S)] |= uint64_t(1) << (free_slots[i] % uint32_t(S));
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

// The group masks a layer's weight mask is built from, kept between mask updates so that the next
// update evolves them (dynamic pruning re-ranks groups; most keep their rank) instead of redrawing.
struct MaskState {
    std::vector<uint8_t> lines;   // [K*J]: line kept (structured conv: the filter's lines)
    std::vector<uint64_t> shape;  // [J]: kept (c, r, s) groups of row j = c*R + r
    WeightMask mask;              // the effective mask (unstructured evolves it directly)
};

// Swaps round(churn * kept) kept items with as many pruned ones (only items with valid[i]), so
// the count of kept items stays the same.
void swap_flags(std::vector<uint8_t>& f, const std::vector<uint8_t>& valid, double churn, Rng& rng) {
    std::vector<uint32_t> on, off;
    for (size_t i = 0; i < f.size(); ++i) {
        if (!valid[i]) continue;
        (f[i] ? on : off).push_back(uint32_t(i));
    }
    const size_t m = std::min(size_t(round_count(churn, int64_t(on.size()))), off.size());
    if (m == 0) return;
    rng.shuffle(on);
    rng.shuffle(off);
    for (size_t i = 0; i < m; ++i) {
        f[on[i]] = 0;
        f[off[i]] = 1;
    }
}

// swap_flags on the bits of S-bit rows; valid_row[j] selects the bits that may be kept.
void swap_row_bits(std::vector<uint64_t>& rows, const std::vector<uint64_t>& valid_row, int S, double churn,
                   Rng& rng) {
    std::vector<uint8_t> f(rows.size() * size_t(S)), valid(f.size());
    for (size_t j = 0; j < rows.size(); ++j)
        for (int s = 0; s < S; ++s) {
            f[j * size_t(S) + size_t(s)] = uint8_t((rows[j] >> s) & 1u);
            valid[j * size_t(S) + size_t(s)] = uint8_t((valid_row[j] >> s) & 1u);
        }
    swap_flags(f, valid, churn, rng);
    for (size_t j = 0; j < rows.size(); ++j) {
        uint64_t r = 0;
        for (int s = 0; s < S; ++s)
            if (f[j * size_t(S) + size_t(s)]) r |= uint64_t(1) << s;
        rows[j] = r;
    }
}

WeightMask make_mask(const Layer& L, PruneMode mode, double d, const WorkloadParams& p, Rng& rng,
                     MaskState& st) {
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
        st.lines = lines;
        st.shape = shape;
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
            std::vector<uint8_t> lines(size_t(K) * J, 0);
            for (int k = 0; k < K; ++k)
                if (keep[size_t(k)])
                    for (int j = 0; j < J; ++j) lines[size_t(k) * J + j] = 1;
            apply_lines(lines, full);
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
            std::vector<uint64_t> shape = make_shape_rows(L, d, rng, p.shape_row_exponent);
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
            std::vector<uint64_t> shape = make_shape_rows(L, d_shape, rng, p.shape_row_exponent);
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
    st.mask = m;
    return m;
}

// Sets whole channels of `b` (already sized, all zero): round(d C) channels chosen at random
// are non-zero at every position of every image.
void fill_channels(Bitmap4D& b, double d, Rng& rng) {
    const std::vector<uint8_t> on = choose_subset(b.C, round_count(d, b.C), rng);
    for (int n = 0; n < b.N; ++n)
        for (int c = 0; c < b.C; ++c) {
            if (!on[size_t(c)]) continue;
            for (int h = 0; h < b.H; ++h) {
                uint64_t* row = b.row(n, c, h);
                for (int w = 0; w < b.words_per_row; ++w) {
                    const int left = b.W - 64 * w;
                    row[w] = left >= 64 ? ~uint64_t(0) : ((uint64_t(1) << left) - 1);
                }
            }
        }
}

// The next mask update of a layer: the previous update's groups with a fraction p.mask_churn of
// the kept ones swapped for pruned ones (per granularity: filters for structured conv layers,
// shape groups, then lines re-balanced to the target; elements for unstructured). Line families
// stay: most of each filter's lines are untouched.
WeightMask evolve_mask(const Layer& L, PruneMode mode, double d, const WorkloadParams& p, Rng& rng,
                       MaskState& st) {
    const int K = L.K, C = L.C, R = L.R, S = L.S;
    const int J = C * R;
    const double churn = p.mask_churn;
    std::vector<uint64_t> full(static_cast<size_t>(J));
    for (int c = 0; c < C; ++c)
        for (int r = 0; r < R; ++r) full[size_t(c) * R + r] = valid_bits(L, c);
    const int64_t target = round_count(d, real_weights(L));
    auto line_weights = [&](const std::vector<uint64_t>& shape) {
        std::vector<int> w(static_cast<size_t>(J));
        for (int j = 0; j < J; ++j) w[size_t(j)] = __builtin_popcountll(shape[size_t(j)]);
        return w;
    };
    auto swap_lines = [&](const std::vector<int>& w) {
        std::vector<uint8_t> valid(st.lines.size());
        for (size_t i = 0; i < valid.size(); ++i) valid[i] = w[i % size_t(J)] > 0;
        swap_flags(st.lines, valid, churn, rng);
        rebalance_lines(st.lines, J, w, target, rng);
    };
    WeightMask m;
    m.resize(K, C, R, S, false);
    switch (mode) {
        case PruneMode::Dense:
            return st.mask;
        case PruneMode::Unstructured:
            swap_row_bits(st.mask.rows, [&] {
                std::vector<uint64_t> v(st.mask.rows.size());
                for (size_t i = 0; i < v.size(); ++i) v[i] = full[i % size_t(J)];
                return v;
            }(), S, churn, rng);
            return st.mask;
        case PruneMode::Structured:
            if (L.op == LayerOp::FC) {
                swap_row_bits(st.shape, full, S, churn, rng);
            } else {
                std::vector<uint8_t> filt(static_cast<size_t>(K)), valid(static_cast<size_t>(K), 1);
                for (int k = 0; k < K; ++k) filt[size_t(k)] = st.lines[size_t(k) * J];
                swap_flags(filt, valid, churn, rng);
                for (int k = 0; k < K; ++k)
                    for (int j = 0; j < J; ++j) st.lines[size_t(k) * J + j] = filt[size_t(k)];
            }
            break;
        case PruneMode::ShapeOnly:
            swap_row_bits(st.shape, full, S, p.shape_churn, rng);
            break;
        case PruneMode::LineOnly:
            swap_lines(line_weights(full));
            break;
        case PruneMode::SubStructured:
            swap_row_bits(st.shape, full, S, p.shape_churn, rng);
            swap_lines(line_weights(st.shape));
            break;
    }
    for (int k = 0; k < K; ++k)
        for (int j = 0; j < J; ++j) m.rows[size_t(k) * J + j] = st.lines[size_t(k) * J + j] ? st.shape[size_t(j)] : 0;
    st.mask = m;
    return m;
}


void validate(const WorkloadParams& p) {
    auto bad = [](const std::string& what) { throw std::invalid_argument("synthetic workload: " + what); };
    (void)p.mode();  // a known pruning mode
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
    if (!(p.mask_churn >= 0 && p.mask_churn <= 1))
        bad("mask_churn must be in [0, 1], got " + std::to_string(p.mask_churn));
    if (!(p.shape_churn >= 0 && p.shape_churn <= 1))
        bad("shape_churn must be in [0, 1], got " + std::to_string(p.shape_churn));
    if (std::isnan(p.shape_row_exponent) || p.shape_row_exponent > 1)
        bad("shape_row_exponent must be at most 1 (or < 0 for uniform shape groups)");
    if (std::isnan(p.input_density) || p.input_density > 1)
        bad("input_density must be in [0, 1] (or < 0 for the per-layer defaults)");
    if (std::isnan(p.grad_density) || p.grad_density > 1)
        bad("grad_density must be in [0, 1] (or < 0 for the per-layer defaults)");
}

}  // namespace

// Default densities, fitted to the Fashion-MNIST trace configs/traces/resnet18-fmnist-substructured
// by scripts/fit_workload.py (docs/workload.md, docs/data/workload_fit.json): the mean non-zero
// fraction of each layer's input activations and of the output gradient reaching each weighted
// layer (recorded from autograd, BN's backward exact), over the trace's recorded iterations.
namespace {
// FITTED_TABLES_BEGIN (scripts/fit_workload.py --cpp prints these two tables)
const std::map<std::string, double> kInputDensity = {
    {"relu", 0.4887},
    {"layer1.0.relu1", 0.4770},
    {"layer1.0.relu2", 0.7065},
    {"layer1.1.relu1", 0.5190},
    {"layer1.1.relu2", 0.7508},
    {"layer2.0.relu1", 0.5342},
    {"layer2.0.relu2", 0.4936},
    {"layer2.1.relu1", 0.5177},
    {"layer2.1.relu2", 0.6068},
    {"layer3.0.relu1", 0.4412},
    {"layer3.0.relu2", 0.4746},
    {"layer3.1.relu1", 0.4677},
    {"layer3.1.relu2", 0.5570},
    {"layer4.0.relu1", 0.4812},
    {"layer4.0.relu2", 0.4902},
    {"layer4.1.relu1", 0.4799},
    {"avgpool", 0.9095},
};
const std::map<std::string, double> kGradDensity = {
    {"conv1", 0.9688},
    {"layer1.0.conv1", 0.7917},
    {"layer1.0.conv2", 0.9375},
    {"layer1.1.conv1", 0.7708},
    {"layer1.1.conv2", 0.7917},
    {"layer2.0.conv1", 0.7240},
    {"layer2.0.conv2", 0.9375},
    {"layer2.0.downsample", 0.9375},
    {"layer2.1.conv1", 0.8021},
    {"layer2.1.conv2", 0.8177},
    {"layer3.0.conv1", 0.7448},
    {"layer3.0.conv2", 0.9609},
    {"layer3.0.downsample", 0.9609},
    {"layer3.1.conv1", 0.8073},
    {"layer3.1.conv2", 0.8594},
    {"layer4.0.conv1", 0.7734},
    {"layer4.0.conv2", 0.8789},
    {"layer4.0.downsample", 0.8789},
    {"layer4.1.conv1", 0.7904},
    {"layer4.1.conv2", 0.4570},
};
// FITTED_TABLES_END
}  // namespace

// Default density (fraction of non-zeros) of the output tensor of layer `producer` (-1 = image):
// the fitted density of the input of the weighted layers that read it.
double synthetic_default_density(const Network& net, int producer) {
    if (producer < 0) return 1.0;  // the image is dense
    const std::string& n = net.layers.at(size_t(producer)).name;
    auto f = kInputDensity.find(n);
    if (f != kInputDensity.end()) return f->second;
    if (n == "maxpool") return 0.80;  // ImageNet form only: not in the fitted (CIFAR-form) trace
    return 0.50;
}

// Default density of the output gradient of weighted layer `layer`.
double synthetic_default_grad_density(const Network& net, int layer) {
    const Layer& L = net.layers.at(size_t(layer));
    if (L.op == LayerOp::FC) return 1.0;  // softmax cross-entropy: dense
    auto f = kGradDensity.find(L.name);
    return f != kGradDensity.end() ? f->second : 1.0;
}

PruneMode WorkloadParams::mode() const {
    PruneMode m;
    if (!parse_prune_mode(pruning, m)) throw std::invalid_argument("synthetic workload: unknown pruning mode '" + pruning + "'");
    return m;
}

Trace make_synthetic_trace(const WorkloadParams& p, uint64_t seed) {
    validate(p);
    return make_synthetic_trace(p, build_network(p.network, p.width, -1, -1, -1, p.fc_block), seed);
}

Trace make_synthetic_trace(const WorkloadParams& p, const Network& net, uint64_t seed) {
    validate(p);
    Trace t;
    t.net = net;
    t.batch = p.batch;
    t.mode = p.mode();
    t.source = "built-in synthetic";
    const std::vector<int> wl = net.weighted_layers();
    const double density = 1.0 - p.weight_sparsity;
    const int N = p.batch;

    std::vector<WeightMask> masks(wl.size());
    std::vector<MaskState> states(wl.size());
    for (int i = 0; i < p.iterations; ++i) {
        Iteration it;
        it.index = i;
        it.mask_update = (i % p.update_interval) == 0;
        if (it.mask_update) {
            // Dynamic pruning: the first update draws the masks, each later one evolves them
            // (p.mask_churn of the kept groups change), each from its own seed stream.
            const uint64_t epoch = uint64_t(i / p.update_interval);
            for (size_t w = 0; w < wl.size(); ++w) {
                const Layer& L = net.layers[size_t(wl[w])];
                Rng rng(derive_seed(seed, kStreamMask, epoch, w));
                const bool first = w == 0 && !p.prune_first_layer;
                const PruneMode mode = first ? PruneMode::Dense : t.mode;
                masks[w] = epoch == 0 ? make_mask(L, mode, density, p, rng, states[w])
                                      : evolve_mask(L, mode, density, p, rng, states[w]);
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
            fill_bernoulli(b, d, derive_seed(seed, kStreamAct, uint64_t(i), uint64_t(producer + 1)));
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
                               derive_seed(seed, kStreamAct, uint64_t(i), uint64_t(producer + 1)), L.fc_in);
            } else {
                lw.input_nonzero = tensor_bits(producer);
            }
            lw.grad_nonzero.resize(N, L.K, L.P, L.Q);
            if (p.grad_density >= 0) {
                fill_bernoulli(lw.grad_nonzero, p.grad_density,
                               derive_seed(seed, kStreamGrad, uint64_t(i), uint64_t(li)));
            } else {
                // Fitted model: BN's backward spreads the gradient over every position of a
                // channel, so the zeros come in whole channels (for every image of the batch):
                // round(d K) channels are non-zero, the rest zero (docs/workload.md).
                Rng rng(derive_seed(seed, kStreamGrad, uint64_t(i), uint64_t(li)));
                fill_channels(lw.grad_nonzero, synthetic_default_grad_density(net, li), rng);
            }
            it.layers.push_back(std::move(lw));
        }
        t.iterations.push_back(std::move(it));
    }
    return t;
}

}  // namespace swpu
