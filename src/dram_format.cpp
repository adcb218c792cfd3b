#include "swpu/dram_format.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "swpu/pe_array.hpp"

namespace swpu {

namespace {

// A bit string written from bit 0 of its first byte.
class BitWriter {
public:
    explicit BitWriter(std::vector<uint8_t>& out) : m_out(out), m_start(out.size()) {}
    void put(uint64_t v, int bits) {
        for (int i = 0; i < bits; ++i, ++m_n) {
            if ((m_n & 7) == 0) m_out.push_back(0);
            if (v >> i & 1u) m_out[m_start + size_t(m_n >> 3)] |= uint8_t(1u << (m_n & 7));
        }
    }

private:
    std::vector<uint8_t>& m_out;
    size_t m_start;
    int64_t m_n = 0;
};

class BitReader {
public:
    explicit BitReader(const uint8_t* p) : m_p(p) {}
    uint64_t get(int bits) {
        uint64_t v = 0;
        for (int i = 0; i < bits; ++i, ++m_n) v |= uint64_t(m_p[m_n >> 3] >> (m_n & 7) & 1u) << i;
        return v;
    }
    const uint8_t* end() const { return m_p + (m_n + 7) / 8; }

private:
    const uint8_t* m_p;
    int64_t m_n = 0;
};

}  // namespace

DramFormat::DramFormat(const PassPlan& plan)
    : m_plan(plan),
      m_l(plan.m_layer),
      m_ob(plan.m_cfg.operand_bits() / 8),
      m_compress(plan.m_cfg.memory.activation_compression) {}

void DramFormat::put_value(float x, std::vector<uint8_t>& out) const {
    const uint16_t h = float_to_fp16_bits(x);
    if (m_ob == 1) {
        out.push_back(uint8_t(h >> 8));
        return;
    }
    out.push_back(uint8_t(h & 0xff));
    out.push_back(uint8_t(h >> 8));
}

float DramFormat::get_value(const uint8_t* p) const {
    if (m_ob == 1) return fp16_bits_to_float(uint16_t(p[0] << 8));
    return fp16_bits_to_float(uint16_t(p[0] | p[1] << 8));
}

void DramFormat::put_row(const Bitmap4D& bits, const std::vector<float>& t, int n, int ch, int row, int channels,
                         int rows, int cols, std::vector<uint8_t>& out) const {
    const float* v = &t[((size_t(n) * channels + ch) * rows + row) * cols];
    if (!m_compress) {
        for (int j = 0; j < cols; ++j) put_value(v[j], out);
        return;
    }
    const uint64_t* b = bits.row(n, ch, row);
    BitWriter bw(out);
    for (int j = 0; j < cols; ++j) bw.put(b[j >> 6] >> (j & 63) & 1u, 1);
    for (int j = 0; j < cols; ++j)
        if (b[j >> 6] >> (j & 63) & 1u) put_value(v[j], out);
}

const uint8_t* DramFormat::get_row(const uint8_t* p, std::vector<float>& t, int n, int ch, int row, int channels,
                                   int rows, int cols) const {
    float* v = &t[((size_t(n) * channels + ch) * rows + row) * cols];
    if (!m_compress) {
        for (int j = 0; j < cols; ++j, p += m_ob) v[j] = get_value(p);
        return p;
    }
    const uint8_t* vals = p + (cols + 7) / 8;
    for (int j = 0; j < cols; ++j) {
        if (p[j >> 3] >> (j & 7) & 1u) {
            v[j] = get_value(vals);
            vals += m_ob;
        } else {
            v[j] = 0.0f;
        }
    }
    return vals;
}

size_t DramFormat::weight_index(int item, int x, int r, int s) const {
    const bool item_is_filter = m_plan.m_pass != Pass::BP || m_plan.m_bp_filter;
    const int k = item_is_filter ? item : x, c = item_is_filter ? x : item;
    return ((size_t(k) * m_l.C + c) * m_l.R + r) * m_l.S + s;
}

bool DramFormat::weight_kept(int item, int x, int r, int s) const {
    const bool item_is_filter = m_plan.m_pass != Pass::BP || m_plan.m_bp_filter;
    const int k = item_is_filter ? item : x, c = item_is_filter ? x : item;
    return m_plan.m_work.mask.kept(k, c, r, s);
}

void DramFormat::init_buffers(OnChipValues& on) const {
    const Layer& l = m_l;
    const int N = m_plan.m_batch;
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const size_t in = size_t(N) * l.C * l.H * l.W, go = size_t(N) * l.K * l.P * l.Q, wt = size_t(l.K) * l.C * l.R * l.S;
    const Pass pass = m_plan.m_pass;
    on.source.assign(pass == Pass::BP ? go : in, nan);
    on.grad.assign(pass == Pass::WG ? go : 0, nan);
    on.weight.assign(pass == Pass::WG ? 0 : wt, 0.0f);  // a weight no format stores is a pruned one
    on.result.assign(pass == Pass::FF ? go : pass == Pass::BP ? in : 0, 0.0f);
    on.grad_w.assign(pass == Pass::WG ? wt : 0, 0.0f);
}

LoadParts DramFormat::encode_load(const Tile& t, const LayerValues& v, std::vector<uint8_t>& out) const {
    const PassPlan& p = m_plan;
    const PassPlan::Geometry& g = p.m_g;
    const Layer& l = m_l;
    const Pass pass = p.m_pass;
    LoadParts parts;
    size_t mark = out.size();
    if (t.act_load) {
        const Bitmap4D& stored = pass == Pass::BP ? p.m_work.grad_nonzero : p.m_work.input_nonzero;
        const std::vector<float>& src = pass == Pass::BP ? v.grad_out : v.input;
        const int channels = pass == Pass::BP ? l.K : l.C, rows_of = pass == Pass::BP ? l.P : l.H,
                  cols = pass == Pass::BP ? l.Q : l.W;
        std::vector<PassPlan::BandRows> rows;
        p.band_rows(t.act_w_begin, t.act_w_end, rows);
        for (const PassPlan::BandRows& nr : rows)
            for (int h = nr.lo; h <= nr.hi; ++h)
                for (int x = 0; x < g.Rd; ++x) put_row(stored, src, nr.n, x, h, channels, rows_of, cols, out);
    }
    parts.source = int64_t(out.size() - mark);
    mark = out.size();
    std::vector<int> items;
    p.cluster_items(t.cluster, items);
    if (t.weight_load) {
        const WeightMask& m = *p.m_group_mask;
        if (pass == Pass::WG) {
            BitWriter bw(out);
            for (int it : items)
                if (it >= 0)
                    for (int x = 0; x < g.Rd; ++x)
                        for (int r = 0; r < g.R; ++r) bw.put(m.row(it, x, r) != 0, 1);
        } else {
            const int x0 = p.m_bp_filter ? t.x_begin : 0, x1 = p.m_bp_filter ? t.x_end : p.m_mask_x;
            const ChipConfig& cfg = p.m_cfg;
            auto value = [&](int it, int x, int r, int s) {
                return weight_kept(it, x, r, s) ? v.weight[weight_index(it, x, r, s)] : 0.0f;
            };
            if (cfg.element_indexed()) {
                for (int it : items)
                    if (it >= 0)
                        for (int x = x0; x < x1; ++x)
                            for (int r = 0; r < g.R; ++r)
                                for (uint64_t row = m.row(it, x, r); row; row &= row - 1)
                                    put_value(value(it, x, r, __builtin_ctzll(row)), out);
                BitWriter bw(out);
                for (int it : items)
                    if (it >= 0)
                        for (int x = x0; x < x1; ++x)
                            for (int r = 0; r < g.R; ++r)
                                for (uint64_t row = m.row(it, x, r); row; row &= row - 1)
                                    bw.put(uint64_t(__builtin_ctzll(row)), cfg.memory.weight_index_bits);
            } else if (cfg.dbl.enabled) {
                BitWriter bw(out);
                for (int it : items)
                    if (it >= 0)
                        for (int x = x0; x < x1; ++x)
                            for (int r = 0; r < g.R; ++r) bw.put(m.row(it, x, r) != 0, 1);
                for (int it : items)
                    if (it >= 0)
                        for (int x = x0; x < x1; ++x)
                            for (int r = 0; r < g.R; ++r)
                                if (m.row(it, x, r))
                                    for (int s = 0; s < g.S; ++s) put_value(value(it, x, r, s), out);
            } else {
                for (int it : items)
                    if (it >= 0)
                        for (int x = x0; x < x1; ++x)
                            for (int r = 0; r < g.R; ++r)
                                for (int s = 0; s < g.S; ++s) put_value(value(it, x, r, s), out);
            }
        }
    }
    parts.weight = int64_t(out.size() - mark);
    mark = out.size();
    if (pass == Pass::WG) {
        for (int it : items) {
            if (it < 0) continue;
            for (int w = t.w_begin; w < t.w_end; ++w) {
                int f, rows, j0, len;
                p.window_rows(w, f, rows, j0, len);
                if (j0 != 0) continue;
                for (int i = 0; i < rows; ++i) {
                    const int row = f + i, n = row / g.Oh, o = row % g.Oh;
                    put_row(p.m_work.grad_nonzero, v.grad_out, n, it, o, l.K, l.P, l.Q, out);
                }
            }
        }
    }
    parts.grad = int64_t(out.size() - mark);
    mark = out.size();
    if (t.partial_reload) {
        // The partial gradients the previous band stored: counted here, read by the DMA from that
        // band's store stream (chip.cpp), so the image holds no bytes for them.
        int64_t kept = 0;
        for (int it : items)
            if (it >= 0)
                for (int x = 0; x < g.Rd; ++x)
                    for (int r = 0; r < g.R; ++r) kept += __builtin_popcountll(p.m_group_mask->row(it, x, r));
        out.resize(out.size() + size_t(kept) * 4, 0);
    }
    parts.partial = int64_t(out.size() - mark);
    return parts;
}

void DramFormat::decode_load(const Tile& t, const uint8_t* source, const uint8_t* weight, const uint8_t* grad,
                             OnChipValues& on) const {
    const PassPlan& p = m_plan;
    const PassPlan::Geometry& g = p.m_g;
    const Layer& l = m_l;
    const Pass pass = p.m_pass;
    if (t.act_load) {
        const int channels = pass == Pass::BP ? l.K : l.C, rows_of = pass == Pass::BP ? l.P : l.H,
                  cols = pass == Pass::BP ? l.Q : l.W;
        std::vector<PassPlan::BandRows> rows;
        p.band_rows(t.act_w_begin, t.act_w_end, rows);
        const uint8_t* q = source;
        for (const PassPlan::BandRows& nr : rows)
            for (int h = nr.lo; h <= nr.hi; ++h)
                for (int x = 0; x < g.Rd; ++x) q = get_row(q, on.source, nr.n, x, h, channels, rows_of, cols);
    }
    std::vector<int> items;
    p.cluster_items(t.cluster, items);
    if (t.weight_load && pass != Pass::WG) {
        // The decoder walks the lines of the cluster; which lines and elements are there it takes
        // from the stream (DBL: the line mask; crossbar: the index of each non-zero), the count of
        // non-zeros per line from the mask the DBL controller holds.
        const WeightMask& m = *p.m_group_mask;
        const int x0 = p.m_bp_filter ? t.x_begin : 0, x1 = p.m_bp_filter ? t.x_end : p.m_mask_x;
        const ChipConfig& cfg = p.m_cfg;
        const uint8_t* q = weight;
        if (cfg.element_indexed()) {
            int64_t nnz = 0;
            for (int it : items)
                if (it >= 0)
                    for (int x = x0; x < x1; ++x)
                        for (int r = 0; r < g.R; ++r) nnz += __builtin_popcountll(m.row(it, x, r));
            BitReader idx(q + nnz * m_ob);
            const int ib = cfg.memory.weight_index_bits;
            for (int it : items)
                if (it >= 0)
                    for (int x = x0; x < x1; ++x)
                        for (int r = 0; r < g.R; ++r)
                            for (uint64_t row = m.row(it, x, r); row; row &= row - 1) {
                                const int s = int(idx.get(ib)), at = __builtin_ctzll(row);
                                if (s != (ib >= 31 ? at : at & ((1 << ib) - 1)))
                                    throw std::logic_error("weight stream: an index disagrees with the mask");
                                on.weight[weight_index(it, x, r, at)] = get_value(q);
                                q += m_ob;
                            }
        } else if (cfg.dbl.enabled) {
            BitReader lines(q);
            int64_t real = 0;
            for (int it : items) real += it >= 0;
            const uint8_t* vals = q + (real * (x1 - x0) * g.R + 7) / 8;
            for (int it : items)
                if (it >= 0)
                    for (int x = x0; x < x1; ++x)
                        for (int r = 0; r < g.R; ++r)
                            if (lines.get(1))
                                for (int s = 0; s < g.S; ++s, vals += m_ob)
                                    on.weight[weight_index(it, x, r, s)] = get_value(vals);
        } else {
            for (int it : items)
                if (it >= 0)
                    for (int x = x0; x < x1; ++x)
                        for (int r = 0; r < g.R; ++r)
                            for (int s = 0; s < g.S; ++s, q += m_ob) on.weight[weight_index(it, x, r, s)] = get_value(q);
        }
    }
    if (pass == Pass::WG && grad) {
        const uint8_t* q = grad;
        for (int it : items) {
            if (it < 0) continue;
            for (int w = t.w_begin; w < t.w_end; ++w) {
                int f, rows, j0, len;
                p.window_rows(w, f, rows, j0, len);
                if (j0 != 0) continue;
                for (int i = 0; i < rows; ++i) {
                    const int row = f + i, n = row / g.Oh, o = row % g.Oh;
                    q = get_row(q, on.grad, n, it, o, l.K, l.P, l.Q);
                }
            }
        }
    }
}

void DramFormat::encode_store(const Tile& t, const OnChipValues& on, std::vector<uint8_t>& out) const {
    const PassPlan& p = m_plan;
    const PassPlan::Geometry& g = p.m_g;
    const Layer& l = m_l;
    std::vector<int> items;
    p.cluster_items(t.cluster, items);
    if (p.m_pass == Pass::WG) {
        for (int it : items)
            if (it >= 0)
                for (int x = 0; x < g.Rd; ++x)
                    for (int r = 0; r < g.R; ++r)
                        for (uint64_t row = p.m_group_mask->row(it, x, r); row; row &= row - 1) {
                            const float v = on.grad_w[((size_t(it) * l.C + x) * l.R + r) * l.S + __builtin_ctzll(row)];
                            uint32_t b;
                            std::memcpy(&b, &v, 4);
                            for (int i = 0; i < 4; ++i) out.push_back(uint8_t(b >> (8 * i)));
                        }
        return;
    }
    // FF: out [N][K][P][Q]; BP: dI [N][C][H][W]; the channel count of the result tensor.
    const int channels = p.m_pass == Pass::FF ? l.K : l.C;
    auto put_item = [&](int item) {
        for (int w = t.w_begin; w < t.w_end; ++w)
            for (int pos = 0; pos < p.window_positions(w); ++pos) {
                int n, o, j;
                p.window_position(w, pos, n, o, j);
                put_value(on.result[((size_t(n) * channels + item) * g.Oh + o) * g.Ow + j], out);
            }
    };
    if (p.m_bp_filter) {
        for (int x = t.x_begin; x < t.x_end; ++x) put_item(x);
    } else {
        for (int it : items)
            if (it >= 0) put_item(it);
    }
}

void DramFormat::get_gradients(const std::vector<int>& items, const uint8_t* data, std::vector<float>& grad_w) const {
    // The kept FP32 gradients of the items, in the order encode_store writes them.
    const PassPlan& p = m_plan;
    const PassPlan::Geometry& g = p.m_g;
    const Layer& l = m_l;
    for (int it : items)
        if (it >= 0)
            for (int x = 0; x < g.Rd; ++x)
                for (int r = 0; r < g.R; ++r)
                    for (uint64_t row = p.m_group_mask->row(it, x, r); row; row &= row - 1, data += 4) {
                        const uint32_t b = uint32_t(data[0]) | uint32_t(data[1]) << 8 | uint32_t(data[2]) << 16 |
                                           uint32_t(data[3]) << 24;
                        float f;
                        std::memcpy(&f, &b, 4);
                        grad_w[((size_t(it) * l.C + x) * l.R + r) * l.S + __builtin_ctzll(row)] = f;
                    }
}

void DramFormat::decode_partials(const Tile& t, const uint8_t* data, OnChipValues& on) const {
    std::vector<int> items;
    m_plan.cluster_items(t.cluster, items);
    get_gradients(items, data, on.grad_w);
}

void DramFormat::decode_store(const Tile& t, const uint8_t* data, LayerValues& v) const {
    const PassPlan& p = m_plan;
    const PassPlan::Geometry& g = p.m_g;
    const Layer& l = m_l;
    std::vector<int> items;
    p.cluster_items(t.cluster, items);
    if (p.m_pass == Pass::WG) {
        get_gradients(items, data, v.grad_w);
        return;
    }
    std::vector<float>& res = v.stored;
    res.resize(p.m_pass == Pass::FF ? v.out.size() : v.grad_in.size(), 0.0f);
    const int channels = p.m_pass == Pass::FF ? l.K : l.C;
    auto get_item = [&](int item) {
        for (int w = t.w_begin; w < t.w_end; ++w)
            for (int pos = 0; pos < p.window_positions(w); ++pos, data += m_ob) {
                int n, o, j;
                p.window_position(w, pos, n, o, j);
                res[((size_t(n) * channels + item) * g.Oh + o) * g.Ow + j] = get_value(data);
            }
    };
    if (p.m_bp_filter) {
        for (int x = t.x_begin; x < t.x_end; ++x) get_item(x);
    } else {
        for (int it : items)
            if (it >= 0) get_item(it);
    }
}

}  // namespace swpu
