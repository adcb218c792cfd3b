// WeightMask and Bitmap4D members and the portable random helpers of the workload side.
#include "swpu/workload.hpp"

#include <algorithm>
#include <random>
#include <stdexcept>

namespace swpu {

namespace {
int popcount64(uint64_t x) { return __builtin_popcountll(x); }
}  // namespace

void WeightMask::resize(int k, int c, int r, int s, bool keep_all) {
    if (k < 0 || c < 0 || r < 0 || s < 0)
        throw std::invalid_argument("WeightMask::resize: negative dimension");
    if (s > 64) throw std::invalid_argument("WeightMask::resize: S = " + std::to_string(s) + " > 64");
    K = k;
    C = c;
    R = r;
    S = s;
    const uint64_t full = s == 64 ? ~uint64_t(0) : ((uint64_t(1) << s) - 1);
    rows.assign(size_t(k) * size_t(c) * size_t(r), keep_all ? full : 0);
}

int64_t WeightMask::kept_count() const {
    int64_t n = 0;
    for (uint64_t w : rows) n += popcount64(w);
    return n;
}

double WeightMask::density() const {
    const int64_t total = int64_t(K) * C * R * S;
    return total > 0 ? double(kept_count()) / double(total) : 0.0;
}

void Bitmap4D::resize(int n, int c, int h, int w) {
    if (n < 0 || c < 0 || h < 0 || w < 0) throw std::invalid_argument("Bitmap4D::resize: negative dimension");
    N = n;
    C = c;
    H = h;
    W = w;
    words_per_row = (w + 63) / 64;
    bits.assign(size_t(n) * size_t(c) * size_t(h) * size_t(words_per_row), 0);
}

void Bitmap4D::set(int n, int c, int h, int w, bool v) {
    uint64_t& word = row(n, c, h)[w >> 6];
    const uint64_t m = uint64_t(1) << (w & 63);
    if (v)
        word |= m;
    else
        word &= ~m;
}

int64_t Bitmap4D::count() const {
    int64_t t = 0;
    for (uint64_t w : bits) t += popcount64(w);
    return t;
}

double Bitmap4D::density() const {
    const int64_t total = int64_t(N) * C * H * W;
    return total > 0 ? double(count()) / double(total) : 0.0;
}

namespace {
uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}
}  // namespace

uint64_t derive_seed(uint64_t seed, uint64_t a, uint64_t b, uint64_t c) {
    uint64_t h = splitmix64(seed);
    h = splitmix64(h ^ a);
    h = splitmix64(h ^ (b * 0xD6E8FEB86659FD93ull));
    h = splitmix64(h ^ (c * 0xA0761D6478BD642Full));
    return h;
}

void fill_bernoulli(Bitmap4D& bm, double density, uint64_t seed, int64_t valid_cw) {
    if (!(density >= 0.0 && density <= 1.0))
        throw std::invalid_argument("fill_bernoulli: density must be in [0, 1]");
    std::fill(bm.bits.begin(), bm.bits.end(), 0);
    std::mt19937_64 g(seed);
    // A bit is set when the top 53 bits of a draw, as an integer, are below density * 2^53
    // (exact in IEEE double; density 1 sets every bit, density 0 none).
    const uint64_t thr = uint64_t(density * 9007199254740992.0);
    for (int n = 0; n < bm.N; ++n)
        for (int c = 0; c < bm.C; ++c)
            for (int h = 0; h < bm.H; ++h) {
                uint64_t* row = bm.row(n, c, h);
                for (int w = 0; w < bm.W; ++w) {
                    if (valid_cw >= 0 && int64_t(c) * bm.W + w >= valid_cw) continue;
                    if ((g() >> 11) < thr) row[w >> 6] |= uint64_t(1) << (w & 63);
                }
            }
}

}  // namespace swpu
