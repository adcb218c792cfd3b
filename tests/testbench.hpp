// Shared helpers of the unit testbenches: hand-built layers, random masks and bitmaps drawn
// independently of the simulator's own generator, a single-pass chip run, and an Eigen reference
// of the three training passes (im2col + matrix products in double precision).
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <Eigen/Dense>
#include <systemc>

#include "swpu/chip.hpp"
#include "swpu/config.hpp"
#include "swpu/workload.hpp"

namespace swpu::test {

inline Layer conv_layer(int K, int C, int R, int S, int H, int W, int stride, int pad) {
    Layer l;
    l.name = "test_conv";
    l.op = LayerOp::Conv;
    l.inputs = {0};  // not the network input: BP is computed
    l.K = K; l.C = C; l.R = R; l.S = S; l.H = H; l.W = W; l.stride = stride; l.pad = pad;
    l.P = (H + 2 * pad - R) / stride + 1;
    l.Q = (W + 2 * pad - S) / stride + 1;
    l.in_c = C; l.in_h = H; l.in_w = W;
    l.out_c = K; l.out_h = l.P; l.out_w = l.Q;
    return l;
}

// FC layer of F inputs and K outputs in conv form with block B.
inline Layer fc_layer(int K, int F, int B) {
    Layer l = conv_layer(K, (F + B - 1) / B, 1, B, 1, B, 1, 0);
    l.name = "test_fc";
    l.op = LayerOp::FC;
    l.fc_in = F;
    return l;
}

// Masks of every pruning mode at roughly `sparsity`, drawn with our own RNG.
inline WeightMask random_mask(const Layer& l, PruneMode mode, double sparsity, uint64_t seed) {
    std::mt19937_64 rng(seed);
    auto coin = [&](double p_keep) { return double(rng() >> 11) * (1.0 / 9007199254740992.0) < p_keep; };
    WeightMask m;
    m.resize(l.K, l.C, l.R, l.S, true);
    const double keep = 1.0 - sparsity;
    const uint64_t full = l.S >= 64 ? ~0ull : ((1ull << l.S) - 1);
    std::vector<uint64_t> shape(size_t(l.C) * l.R, full);
    switch (mode) {
        case PruneMode::Dense: break;
        case PruneMode::Structured:
            for (int k = 0; k < l.K; ++k)
                if (!coin(keep))
                    for (int c = 0; c < l.C; ++c)
                        for (int r = 0; r < l.R; ++r) m.row(k, c, r) = 0;
            break;
        case PruneMode::Unstructured:
            for (auto& row : m.rows) {
                uint64_t v = 0;
                for (int s = 0; s < l.S; ++s) v |= uint64_t(coin(keep)) << s;
                row = v;
            }
            break;
        case PruneMode::ShapeOnly:
        case PruneMode::LineOnly:
        case PruneMode::SubStructured: {
            const bool sh = mode != PruneMode::LineOnly, ln = mode != PruneMode::ShapeOnly;
            const double pk = (sh && ln) ? std::sqrt(keep) : keep;
            if (sh)
                for (auto& v : shape) {
                    v = 0;
                    for (int s = 0; s < l.S; ++s) v |= uint64_t(coin(pk)) << s;
                }
            for (int k = 0; k < l.K; ++k)
                for (int c = 0; c < l.C; ++c)
                    for (int r = 0; r < l.R; ++r) {
                        const bool line = ln ? coin(pk) : true;
                        m.row(k, c, r) = line ? shape[size_t(c) * l.R + r] : 0;
                    }
            break;
        }
    }
    return m;
}

inline void random_bitmap(Bitmap4D& b, int N, int C, int H, int W, double density, uint64_t seed) {
    std::mt19937_64 rng(seed);
    b.resize(N, C, H, W);
    for (int n = 0; n < N; ++n)
        for (int c = 0; c < C; ++c)
            for (int h = 0; h < H; ++h)
                for (int w = 0; w < W; ++w)
                    if (double(rng() >> 11) * (1.0 / 9007199254740992.0) < density) b.set(n, c, h, w, true);
}

inline LayerWork random_work(const Layer& l, int N, PruneMode mode, double wsp, double in_density, double grad_density,
                             uint64_t seed) {
    LayerWork w;
    w.layer = 0;
    w.mask = random_mask(l, mode, wsp, seed);
    random_bitmap(w.input_nonzero, N, l.C, l.H, l.W, in_density, seed + 1);
    random_bitmap(w.grad_nonzero, N, l.K, l.P, l.Q, grad_density, seed + 2);
    if (l.op == LayerOp::FC)  // inputs beyond F do not exist
        for (int n = 0; n < N; ++n)
            for (int c = 0; c < l.C; ++c)
                for (int s = 0; s < l.S; ++s)
                    if (c * l.S + s >= l.fc_in) w.input_nonzero.set(n, c, 0, s, false);
    return w;
}

// Runs one (layer, pass) on a fresh chip. A SystemC process elaborates once: one call per test.
inline std::vector<LayerPassResult> run_single(const RunConfig& cfg, const Layer& l, const LayerWork& w, Pass pass,
                                               int N, LayerValues* values, bool cluster = true) {
    SwpuChip chip("chip", cfg);
    chip.set_single(&l, &w, pass, N, values, cluster);
    sc_core::sc_start();
    return chip.results();
}

// ---- Eigen reference (double precision) ----------------------------------------------------
// cols[(c*R + r)*S + s][p*Q + q] = input[n][c][p*st + r - pad][q*st + s - pad]
inline Eigen::MatrixXd im2col(const Layer& l, const std::vector<float>& in, int n) {
    Eigen::MatrixXd m = Eigen::MatrixXd::Zero(l.C * l.R * l.S, l.P * l.Q);
    for (int c = 0; c < l.C; ++c)
        for (int r = 0; r < l.R; ++r)
            for (int s = 0; s < l.S; ++s)
                for (int p = 0; p < l.P; ++p)
                    for (int q = 0; q < l.Q; ++q) {
                        const int h = p * l.stride + r - l.pad, w = q * l.stride + s - l.pad;
                        if (h < 0 || h >= l.H || w < 0 || w >= l.W) continue;
                        m((c * l.R + r) * l.S + s, p * l.Q + q) = in[((size_t(n) * l.C + c) * l.H + h) * l.W + w];
                    }
    return m;
}

inline Eigen::MatrixXd weight_matrix(const Layer& l, const std::vector<float>& wt) {
    Eigen::MatrixXd m(l.K, l.C * l.R * l.S);
    for (int k = 0; k < l.K; ++k)
        for (int i = 0; i < l.C * l.R * l.S; ++i) m(k, i) = wt[size_t(k) * l.C * l.R * l.S + i];
    return m;
}

inline Eigen::MatrixXd grad_matrix(const Layer& l, const std::vector<float>& g, int n) {
    Eigen::MatrixXd m(l.K, l.P * l.Q);
    for (int k = 0; k < l.K; ++k)
        for (int i = 0; i < l.P * l.Q; ++i) m(k, i) = g[(size_t(n) * l.K + k) * l.P * l.Q + i];
    return m;
}

// FF: out[n] = W * cols(n).
inline std::vector<double> ref_ff(const Layer& l, const LayerValues& v, int N) {
    std::vector<double> out(size_t(N) * l.K * l.P * l.Q);
    const Eigen::MatrixXd W = weight_matrix(l, v.weight);
    for (int n = 0; n < N; ++n) {
        const Eigen::MatrixXd o = W * im2col(l, v.input, n);
        for (int k = 0; k < l.K; ++k)
            for (int i = 0; i < l.P * l.Q; ++i) out[(size_t(n) * l.K + k) * l.P * l.Q + i] = o(k, i);
    }
    return out;
}

// BP: dcols = W^T * dO(n), scattered back (col2im) into dI.
inline std::vector<double> ref_bp(const Layer& l, const LayerValues& v, int N) {
    std::vector<double> out(size_t(N) * l.C * l.H * l.W, 0.0);
    const Eigen::MatrixXd W = weight_matrix(l, v.weight);
    for (int n = 0; n < N; ++n) {
        const Eigen::MatrixXd d = W.transpose() * grad_matrix(l, v.grad_out, n);
        for (int c = 0; c < l.C; ++c)
            for (int r = 0; r < l.R; ++r)
                for (int s = 0; s < l.S; ++s)
                    for (int p = 0; p < l.P; ++p)
                        for (int q = 0; q < l.Q; ++q) {
                            const int h = p * l.stride + r - l.pad, w = q * l.stride + s - l.pad;
                            if (h < 0 || h >= l.H || w < 0 || w >= l.W) continue;
                            out[((size_t(n) * l.C + c) * l.H + h) * l.W + w] += d((c * l.R + r) * l.S + s, p * l.Q + q);
                        }
    }
    return out;
}

// WG: dW = sum_n dO(n) * cols(n)^T, masked (pruned weights get no gradient).
inline std::vector<double> ref_wg(const Layer& l, const LayerValues& v, const WeightMask& mask, int N) {
    Eigen::MatrixXd acc = Eigen::MatrixXd::Zero(l.K, l.C * l.R * l.S);
    for (int n = 0; n < N; ++n) acc += grad_matrix(l, v.grad_out, n) * im2col(l, v.input, n).transpose();
    std::vector<double> out(size_t(l.K) * l.C * l.R * l.S);
    for (int k = 0; k < l.K; ++k)
        for (int c = 0; c < l.C; ++c)
            for (int r = 0; r < l.R; ++r)
                for (int s = 0; s < l.S; ++s) {
                    const size_t i = ((size_t(k) * l.C + c) * l.R + r) * l.S + s;
                    out[i] = mask.kept(k, c, r, s) ? acc(k, (c * l.R + r) * l.S + s) : 0.0;
                }
    return out;
}

}  // namespace swpu::test

#include <sys/wait.h>
#include <unistd.h>

namespace swpu::test {

// Runs f() in a child process and returns the string it produced: a SystemC model elaborates once
// per process, so a test that compares two simulations runs each in its own child.
template <typename F>
std::string in_child(F f) {
    int fd[2];
    if (pipe(fd) != 0) return "pipe failed";
    const pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        std::string out;
        try {
            out = f();
        } catch (const std::exception& e) {
            out = std::string("exception: ") + e.what();
        }
        size_t off = 0;
        while (off < out.size()) {
            const ssize_t n = write(fd[1], out.data() + off, out.size() - off);
            if (n <= 0) break;
            off += size_t(n);
        }
        close(fd[1]);
        _exit(0);
    }
    close(fd[1]);
    std::string out;
    char buf[65536];
    ssize_t n;
    while ((n = read(fd[0], buf, sizeof buf)) > 0) out.append(buf, size_t(n));
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return out;
}

// Counters of every result of a run, as one JSON text (for exact comparisons).
inline std::string results_json(const std::vector<LayerPassResult>& rs, int64_t total_cycles) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& r : rs) {
        nlohmann::json e = r.c.to_json();
        e["layer"] = r.layer;
        e["pass"] = to_string(r.pass);
        e["op"] = r.op;
        e["start_cycle"] = r.start_cycle;
        j.push_back(e);
    }
    return nlohmann::json{{"total_cycles", total_cycles}, {"results", j}}.dump();
}

}  // namespace swpu::test
