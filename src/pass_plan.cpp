#include "swpu/pass_plan.hpp"

#include <algorithm>
#include <stdexcept>

#include "swpu/pe_array.hpp"

namespace swpu {

namespace {

// Bits [start, start + len) of a bit row of nbits (bits outside the row read as 0), len <= 64.
inline uint64_t extract_bits(const uint64_t* row, int nbits, int start, int len) {
    const int lo = start, hi = start + len;
    const int clo = lo < 0 ? 0 : lo, chi = hi > nbits ? nbits : hi;
    if (clo >= chi) return 0;
    const int wi = clo >> 6, bi = clo & 63;
    const int nwords = (nbits + 63) >> 6;
    uint64_t v = row[wi] >> bi;
    if (bi && wi + 1 < nwords) v |= row[wi + 1] << (64 - bi);
    const int n = chi - clo;
    if (n < 64) v &= (1ull << n) - 1;
    return v << (clo - lo);
}

// A bitmap of the same shape with every position set: what a machine that does not skip an
// operand's zeros treats as valid.
Bitmap4D all_ones_like(const Bitmap4D& b) {
    Bitmap4D d;
    d.resize(b.N, b.C, b.H, b.W);
    for (int n = 0; n < b.N; ++n)
        for (int c = 0; c < b.C; ++c)
            for (int h = 0; h < b.H; ++h) {
                uint64_t* row = d.row(n, c, h);
                for (int i = 0; i < d.words_per_row; ++i) {
                    const int bits = std::min(64, b.W - 64 * i);
                    row[i] = bits >= 64 ? ~0ull : ((1ull << bits) - 1);
                }
            }
    return d;
}

inline int floor_mod(int x, int m) { int r = x % m; return r < 0 ? r + m : r; }
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The fast engine's timeline of one tile on the clocked datapath, step by step (not cycle by cycle):
// the same rules as the units (docs/architecture.md, cycle rules). The DBL controller issues a step
// per cycle, at most `fifo` ahead of the network; line reads go ahead as far as the line registers
// allow (a register frees when its line's last step leaves the network's input); a read occupies the
// bank cycles of its words and answers after the read latency. The network starts a step when the
// step, its weight word and (first step of a line) its line are there, and emits one packet per
// cycle. The PE array accumulates a packet stages + 1 + multiplier latency cycles after its
// emission, waits for a free accumulator set at a window's start and for the output buffer's request
// queue at a WG step's end; a wait longer than the lane FIFO absorbs holds the network back.
}  // namespace

PassPlan::PassPlan(const ChipConfig& cfg, const Layer& layer, const LayerWork& work, Pass pass, int batch,
                   const std::vector<int>& order, LayerValues* values)
    : m_cfg(cfg), m_layer(layer), m_work(work), m_pass(pass), m_batch(batch), m_order(order), m_values(values),
      m_G(cfg.pe_array.groups), m_L(cfg.pe_array.lanes), m_Nw(cfg.compaction.window) {
    // What this pass skips (config `skip`): a zero the machine does not skip is valid.
    const auto& sk = cfg.skip;
    m_skip_weights = pass == Pass::FF ? sk.ff_weights : pass == Pass::BP ? sk.bp_weights : sk.wg_weights;
    const bool skip_operand = pass == Pass::FF ? sk.ff_activations : pass == Pass::BP ? sk.bp_gradients : sk.wg_activations;
    const Bitmap4D& operand = pass == Pass::BP ? work.grad_nonzero : work.input_nonzero;
    if (!skip_operand) m_dense_operand = all_ones_like(operand);
    m_operand_bits = skip_operand ? &operand : &m_dense_operand;
    if (pass == Pass::WG && !sk.wg_gradients) m_dense_grad = all_ones_like(work.grad_nonzero);
    m_grad_bits = pass != Pass::WG || sk.wg_gradients ? &work.grad_nonzero : &m_dense_grad;
    m_bp_filter = pass == Pass::BP && cfg.bp_filter();
    if (!m_skip_weights) {
        const WeightMask& m = work.mask;
        if (pass == Pass::BP && !m_bp_filter) m_bp_mask.resize(m.C, m.K, m.R, m.S, true);
        else m_bp_mask.resize(m.K, m.C, m.R, m.S, true);
        m_group_mask = &m_bp_mask;
    } else if (pass == Pass::BP && !m_bp_filter) {
        // Blocked transpose of the rows: [k][c][r] -> [c][k][r].
        const WeightMask& m = work.mask;
        m_bp_mask.resize(m.C, m.K, m.R, m.S, false);
        const int B = 16;
        for (int k0 = 0; k0 < m.K; k0 += B)
            for (int c0 = 0; c0 < m.C; c0 += B)
                for (int k = k0; k < std::min(m.K, k0 + B); ++k)
                    for (int c = c0; c < std::min(m.C, c0 + B); ++c)
                        for (int r = 0; r < m.R; ++r) m_bp_mask.row(c, k, r) = m.row(k, c, r);
        m_group_mask = &m_bp_mask;
    } else {
        m_group_mask = &work.mask;
    }
    build_geometry();
    build_source();
    build_valid_table();
    build_tiles();
}

int64_t PassPlan::dense_macs() const { return m_layer.macs() * m_batch; }

void PassPlan::build_geometry() {
    const Layer& l = m_layer;
    Geometry& g = m_g;
    g.R = l.R;
    g.S = l.S;
    g.N = m_batch;
    if (m_pass == Pass::BP) {
        g.Gd = l.C;
        g.Rd = l.K;
        g.Oh = l.H;
        g.Ow = l.W;
        g.a = 1;
        g.b = -1;
        g.c0 = l.pad;
        g.Hs = (l.P - 1) * l.stride + 1;
        g.Ws = (l.Q - 1) * l.stride + 1;
    } else {
        g.Gd = l.K;
        g.Rd = l.C;
        g.Oh = l.P;
        g.Ow = l.Q;
        g.a = l.stride;
        g.b = 1;
        g.c0 = -l.pad;
        g.Hs = l.H;
        g.Ws = l.W;
    }
    g.total_rows = g.N * g.Oh;
    if (g.Ow >= m_Nw) {
        g.m = 1;
        g.chunks = (g.Ow + m_Nw - 1) / m_Nw;
        m_windows = g.total_rows * g.chunks;
    } else {
        g.m = m_Nw / g.Ow;
        g.chunks = 1;
        m_windows = (g.total_rows + g.m - 1) / g.m;
    }
    // Filter-oriented BP keeps the BP geometry (windows over dI, operand lines (k, r) of the
    // zero-inserted output gradient) but clusters FF's filters and walks the mask's lines (c, r).
    m_items = m_bp_filter ? l.K : g.Gd;
    m_mask_x = m_bp_filter ? l.C : g.Rd;
    m_clusters = (m_items + m_G - 1) / m_G;
    m_lines = g.Rd * g.R;
    if (int(m_order.size()) != m_items) throw std::logic_error("reorder table size does not match the layer");
    // One line of a window from the activation buffer: the source span of the window's rows.
    // One line of a window from the activation buffer: per output row of the window, the source
    // span its positions and the S kernel positions touch (FP16 values).
    m_line_span_bits = int64_t((g.chunks > 1 ? m_Nw : g.Ow) * g.a + g.S - 1) * m_cfg.operand_bits();
    m_weight_fetch_accesses = (int64_t(m_G) * m_cfg.operand_bits() + m_cfg.buffers.weight.width_bits - 1) / m_cfg.buffers.weight.width_bits;
}

void PassPlan::build_source() {
    const Layer& l = m_layer;
    if (m_pass == Pass::BP) {
        // Transposed convolution: the output gradient with stride-1 zeros inserted.
        const Bitmap4D& gr = *m_operand_bits;
        m_src_storage.resize(m_batch, l.K, m_g.Hs, m_g.Ws);
        for (int n = 0; n < m_batch; ++n)
            for (int k = 0; k < l.K; ++k)
                for (int p = 0; p < l.P; ++p)
                    for (int q = 0; q < l.Q; ++q)
                        if (gr.get(n, k, p, q)) m_src_storage.set(n, k, p * l.stride, q * l.stride, true);
        m_src = &m_src_storage;
    } else {
        m_src = m_operand_bits;
    }
    if (m_g.a > 1) {
        const int a = m_g.a;
        m_phase.resize(a);
        for (int ph = 0; ph < a; ++ph) {
            Bitmap4D& d = m_phase[ph];
            d.resize(m_batch, m_g.Rd, m_g.Hs, (m_g.Ws + a - 1) / a);
            for (int n = 0; n < m_batch; ++n)
                for (int x = 0; x < m_g.Rd; ++x)
                    for (int h = 0; h < m_g.Hs; ++h)
                        for (int j = 0; ph + j * a < m_g.Ws; ++j)
                            if (m_src->get(n, x, h, ph + j * a)) d.set(n, x, h, j, true);
        }
    }
}

uint64_t PassPlan::source_bits(int n, int x, int srow, int off, int j0, int len) const {
    if (srow < 0 || srow >= m_g.Hs) return 0;
    if (m_g.a == 1) return extract_bits(m_src->row(n, x, srow), m_g.Ws, j0 + off, len);
    const int ph = floor_mod(off, m_g.a);
    const int base = (off - ph) / m_g.a;
    const Bitmap4D& d = m_phase[ph];
    return extract_bits(d.row(n, x, srow), d.W, j0 + base, len);
}

void PassPlan::window_rows(int w, int& first_row, int& rows, int& j0, int& len) const {
    if (m_g.chunks > 1 || m_g.m == 1) {
        first_row = w / m_g.chunks;
        rows = 1;
        j0 = (w % m_g.chunks) * m_Nw;
        len = std::min(m_Nw, m_g.Ow - j0);
    } else {
        first_row = w * m_g.m;
        rows = std::min(m_g.m, m_g.total_rows - first_row);
        j0 = 0;
        len = m_g.Ow;
    }
}

int PassPlan::window_positions(int w) const {
    int first, rows, j0, len;
    window_rows(w, first, rows, j0, len);
    return rows * len;
}

void PassPlan::build_valid_table() {
    const Geometry& g = m_g;
    const size_t entries = size_t(m_windows) * m_lines * g.S;
    m_valid.assign(entries, 0);
    for (int w = 0; w < m_windows; ++w) {
        int first, rows, j0, len;
        window_rows(w, first, rows, j0, len);
        for (int x = 0; x < g.Rd; ++x)
            for (int r = 0; r < g.R; ++r) {
                uint64_t* out = &m_valid[(size_t(w) * m_lines + size_t(x) * g.R + r) * g.S];
                for (int i = 0; i < rows; ++i) {
                    const int row = first + i;
                    const int n = row / g.Oh, o = row % g.Oh;
                    const int srow = o * g.a + g.b * r + g.c0;
                    if (srow < 0 || srow >= g.Hs) continue;
                    for (int s = 0; s < g.S; ++s)
                        out[s] |= source_bits(n, x, srow, g.b * s + g.c0, j0, len) << (i * len);
                }
            }
    }
    if (m_pass == Pass::WG) {
        const Bitmap4D& gr = *m_grad_bits;
        m_grad_window.assign(size_t(m_windows) * g.Gd, 0);
        for (int w = 0; w < m_windows; ++w) {
            int first, rows, j0, len;
            window_rows(w, first, rows, j0, len);
            for (int k = 0; k < g.Gd; ++k) {
                uint64_t bits = 0;
                for (int i = 0; i < rows; ++i) {
                    const int row = first + i;
                    const int n = row / g.Oh, o = row % g.Oh;
                    bits |= extract_bits(gr.row(n, k, o), g.Ow, j0, len) << (i * len);
                }
                m_grad_window[size_t(w) * g.Gd + k] = bits;
            }
        }
    }
}

void PassPlan::cluster_items(int cluster, std::vector<int>& items) const {
    items.assign(m_G, -1);
    for (int i = 0; i < m_G; ++i) {
        const int slot = cluster * m_G + i;
        if (slot < m_items) items[i] = m_order[slot];
    }
}

int64_t PassPlan::weight_bytes_for(const std::vector<int>& items, int x0, int x1) const {
    // DRAM weight format: line-compressed (DBL on: kept lines' S values + the line mask bits),
    // element-compressed (crossbar: non-zeros + index bits), dense (DBL off).
    const WeightMask& m = *m_group_mask;  // rows of each item contiguous
    if (x1 < 0) x1 = m_mask_x;
    int64_t lines = 0, nnz = 0, real = 0;
    for (int it : items) {
        if (it < 0) continue;
        ++real;
        for (int x = x0; x < x1; ++x)
            for (int r = 0; r < m_g.R; ++r) {
                const uint64_t row = m.row(it, x, r);
                if (row) ++lines;
                nnz += __builtin_popcountll(row);
            }
    }
    const int64_t mask_bytes = (real * (x1 - x0) * m_g.R + 7) / 8;
    const int64_t ob = m_cfg.operand_bits() / 8;
    if (m_cfg.element_indexed())
        return nnz * ob + (nnz * m_cfg.memory.weight_index_bits + 7) / 8;
    if (m_cfg.dbl.enabled) return lines * m_g.S * ob + mask_bytes;
    return real * (x1 - x0) * m_g.R * m_g.S * ob;
}

void PassPlan::band_rows(int w0, int w1, std::vector<BandRows>& out) const {
    const Geometry& g = m_g;
    const Layer& l = m_layer;
    out.clear();
    int f0, r0, j0, len;
    window_rows(w0, f0, r0, j0, len);
    int f1, r1, j1, len1;
    window_rows(w1 - 1, f1, r1, j1, len1);
    const int last = f1 + r1 - 1;
    for (int n = f0 / g.Oh; n <= last / g.Oh; ++n) {
        const int olo = std::max(f0, n * g.Oh) - n * g.Oh;
        const int ohi = std::min(last, n * g.Oh + g.Oh - 1) - n * g.Oh;
        int lo, hi;
        if (m_pass == Pass::BP) {  // z rows -> real dO rows
            const int zlo = std::max(0, olo + g.c0 - (g.R - 1)), zhi = std::min(g.Hs - 1, ohi + g.c0);
            lo = (zlo + l.stride - 1) / l.stride;
            hi = zhi / l.stride;
        } else {
            lo = std::max(0, olo * g.a + g.c0);
            hi = std::min(g.Hs - 1, ohi * g.a + g.c0 + g.R - 1);
        }
        if (lo <= hi) out.push_back({n, lo, hi});
    }
}

void PassPlan::build_tiles() {
    const Geometry& g = m_g;
    const Layer& l = m_layer;
    const bool compress = m_cfg.memory.activation_compression;
    const int64_t abuf_half = int64_t(m_cfg.buffers.activation.kib) * 1024 / (m_cfg.dma.double_buffering ? 2 : 1);
    const int64_t wbuf_half = int64_t(m_cfg.buffers.weight.kib) * 1024 / (m_cfg.dma.double_buffering ? 2 : 1);
    const int64_t obuf_half = int64_t(m_cfg.buffers.output.kib) * 1024 / (m_cfg.dma.double_buffering ? 2 : 1);
    const Bitmap4D& stored = m_pass == Pass::BP ? m_work.grad_nonzero : m_work.input_nonzero;
    const int st_cols = m_pass == Pass::BP ? l.Q : l.W;
    const int64_t ob = m_cfg.operand_bits() / 8;  // bytes of a stored operand or result
    auto row_bytes = [&](const Bitmap4D& bm, int n, int ch, int row, int cols) -> int64_t {
        if (!compress) return int64_t(cols) * ob;
        int64_t nz = 0;
        const uint64_t* p = bm.row(n, ch, row);
        for (int i = 0; i < bm.words_per_row; ++i) nz += __builtin_popcountll(p[i]);
        return nz * ob + (cols + 7) / 8;
    };
    std::vector<BandRows> rows;
    auto input_bytes = [&](int w0, int w1, int64_t& dram, int64_t& buffer) {
        band_rows(w0, w1, rows);
        dram = buffer = 0;
        for (const BandRows& nr : rows)
            for (int h = nr.lo; h <= nr.hi; ++h) {
                buffer += int64_t(g.Rd) * st_cols * ob;
                for (int x = 0; x < g.Rd; ++x) dram += row_bytes(stored, nr.n, x, h, st_cols);
            }
    };
    // Bands: consecutive windows whose source rows fit half the activation buffer and whose FP32
    // partial sums (FF/BP) fit half the output buffer.
    std::vector<std::pair<int, int>> bands;
    for (int w = 0; w < m_windows;) {
        int end = w + 1;
        int positions = window_positions(w);
        while (end < m_windows) {
            int64_t d, b;
            input_bytes(w, end + 1, d, b);
            const int pos2 = positions + window_positions(end);
            // FP32 partial sums: G items' (FF/BP), every input channel's (filter-oriented BP).
            const int64_t partials = m_bp_filter ? l.C : m_G;
            const bool out_fits = m_pass == Pass::WG || partials * pos2 * 4 <= obuf_half;
            if (b > abuf_half || !out_fits) break;
            positions = pos2;
            ++end;
        }
        bands.push_back({w, end});
        w = end;
    }
    int64_t all_d, all_b;
    input_bytes(0, m_windows, all_d, all_b);
    const bool resident = all_b <= abuf_half;
    int64_t first_b;
    {
        int64_t d;
        input_bytes(bands[0].first, bands[0].second, d, first_b);
    }
    if (first_b > abuf_half) m_note += "a single window's source rows exceed the activation buffer half; ";
    if (m_bp_filter) {
        build_tiles_bp_filter(bands, resident, input_bytes);
        return;
    }
    const int wbits = m_cfg.buffers.weight.width_bits, abits = m_cfg.buffers.activation.width_bits,
              obits = m_cfg.buffers.output.width_bits;
    std::vector<int> items;
    for (int c = 0; c < m_clusters; ++c) {
        cluster_items(c, items);
        int real = 0;
        for (int it : items) real += it >= 0;
        const int64_t wbytes = m_pass == Pass::WG ? (int64_t(real) * m_lines + 7) / 8 : weight_bytes_for(items);
        const bool w_resident = wbytes <= wbuf_half;
        if (!w_resident && bands.size() > 1) m_note += "cluster weights exceed the weight buffer half: reloaded per band; ";
        // WG: the cluster's FP32 weight-gradient accumulators live in the output buffer.
        int64_t kept = 0;
        if (m_pass == Pass::WG)
            for (int it : items)
                if (it >= 0)
                    for (int x = 0; x < g.Rd; ++x)
                        for (int r = 0; r < g.R; ++r) kept += __builtin_popcountll(m_group_mask->row(it, x, r));
        const bool dw_spill = m_pass == Pass::WG && kept * 4 > obuf_half && bands.size() > 1;
        for (size_t b = 0; b < bands.size(); ++b) {
            Tile t;
            t.cluster = c;
            t.w_begin = bands[b].first;
            t.w_end = bands[b].second;
            t.x_end = m_mask_x;
            int64_t d, bb;
            input_bytes(t.w_begin, t.w_end, d, bb);
            if (!resident || (c == 0 && b == 0)) {
                t.act_load = true;
                t.act_w_begin = resident ? 0 : t.w_begin;
                t.act_w_end = resident ? m_windows : t.w_end;
                t.load_bytes += resident ? all_d : d;
                t.abuf_fill_accesses += ((resident ? all_b : bb) * 8 + abits - 1) / abits;
            }
            if (b == 0 || !w_resident) {
                t.weight_load = true;
                t.load_bytes += wbytes;
                t.wbuf_fill_accesses += (wbytes * 8 + wbits - 1) / wbits;
            }
            int positions = 0;
            for (int w = t.w_begin; w < t.w_end; ++w) positions += window_positions(w);
            if (m_pass == Pass::WG) {
                // The cluster's output-gradient rows for the band's positions.
                int64_t gd = 0;
                for (int it : items) {
                    if (it < 0) continue;
                    for (int w = t.w_begin; w < t.w_end; ++w) {
                        int f2, r2, j2, len2;
                        window_rows(w, f2, r2, j2, len2);
                        for (int i = 0; i < r2; ++i) {
                            const int row = f2 + i, n = row / g.Oh, o = row % g.Oh;
                            if (j2 == 0) gd += row_bytes(m_work.grad_nonzero, n, it, o, g.Ow);
                        }
                    }
                }
                t.load_bytes += gd;
                t.abuf_fill_accesses += (gd * 8 + abits - 1) / abits;
                if (dw_spill && b > 0) {  // reload the partial gradients
                    t.partial_reload = true;
                    t.partial_bytes = kept * 4;
                    t.load_bytes += kept * 4;
                }
                // With the SGD update in the WG epilogue the final gradients never leave the chip.
                const bool fused_update = m_cfg.vector_unit.fuse_sgd && b + 1 == bands.size();
                if (b + 1 == bands.size() || dw_spill) {
                    if (!fused_update) t.store_bytes += kept * 4;
                    t.obuf_drain_accesses += (kept * 32 + obits - 1) / obits;
                }
            } else {
                t.store_bytes += int64_t(real) * positions * ob;  // outputs in the operand format
                t.obuf_drain_accesses += (int64_t(real) * positions * ob * 8 + obits - 1) / obits;
            }
            m_tiles.push_back(t);
        }
    }
}

void PassPlan::build_tiles_bp_filter(const std::vector<std::pair<int, int>>& bands, bool act_resident,
                                     const std::function<void(int, int, int64_t&, int64_t&)>& input_bytes) {
    // Bands outer, channel blocks, clusters inner: a block's FP32 partial dI (every channel of the
    // block at every position of the band) stays in the output buffer while the K / G clusters add
    // their contributions; after the block's last cluster it leaves for DRAM in the operand format.
    const Layer& l = m_layer;
    const int64_t obuf_half = int64_t(m_cfg.buffers.output.kib) * 1024 / (m_cfg.dma.double_buffering ? 2 : 1);
    const int64_t wbuf_half = int64_t(m_cfg.buffers.weight.kib) * 1024 / (m_cfg.dma.double_buffering ? 2 : 1);
    const int wbits = m_cfg.buffers.weight.width_bits, abits = m_cfg.buffers.activation.width_bits,
              obits = m_cfg.buffers.output.width_bits;
    const int64_t ob = m_cfg.operand_bits() / 8;
    std::vector<int> items;
    int64_t all_weights = 0;
    for (int c = 0; c < m_clusters; ++c) {
        cluster_items(c, items);
        all_weights += weight_bytes_for(items);
    }
    // The layer's weights stay in the weight buffer across bands when they fit its half.
    const bool w_resident = all_weights <= wbuf_half;
    int64_t all_d = 0, all_b = 0;
    if (act_resident) input_bytes(0, m_windows, all_d, all_b);
    for (size_t b = 0; b < bands.size(); ++b) {
        int positions = 0;
        for (int w = bands[b].first; w < bands[b].second; ++w) positions += window_positions(w);
        const int block = int(std::max<int64_t>(1, std::min<int64_t>(l.C, obuf_half / (int64_t(positions) * 4))));
        if (block < l.C && b == 0) m_note += "the partial dI of all input channels exceeds the output buffer half: channel blocks; ";
        int64_t d = 0, bb = 0;
        input_bytes(bands[b].first, bands[b].second, d, bb);
        bool first_tile_of_band = true;
        for (int x0 = 0; x0 < l.C; x0 += block) {
            const int x1 = std::min(l.C, x0 + block);
            for (int c = 0; c < m_clusters; ++c) {
                cluster_items(c, items);
                Tile t;
                t.cluster = c;
                t.w_begin = bands[b].first;
                t.w_end = bands[b].second;
                t.x_begin = x0;
                t.x_end = x1;
                t.last_of_block = c + 1 == m_clusters;
                // Output-gradient rows of every filter for the band (the clusters share them).
                if (first_tile_of_band && (!act_resident || b == 0)) {
                    t.act_load = true;
                    t.act_w_begin = act_resident ? 0 : t.w_begin;
                    t.act_w_end = act_resident ? m_windows : t.w_end;
                    t.load_bytes += act_resident ? all_d : d;
                    t.abuf_fill_accesses += ((act_resident ? all_b : bb) * 8 + abits - 1) / abits;
                }
                first_tile_of_band = false;
                if (b == 0 || !w_resident) {
                    t.weight_load = true;
                    const int64_t wbytes = weight_bytes_for(items, x0, x1);
                    t.load_bytes += wbytes;
                    t.wbuf_fill_accesses += (wbytes * 8 + wbits - 1) / wbits;
                }
                if (t.last_of_block) {  // the FP32 partials are read, converted and stored
                    t.store_bytes += int64_t(x1 - x0) * positions * ob;
                    t.obuf_drain_accesses += (int64_t(x1 - x0) * positions * 32 + obits - 1) / obits;
                }
                m_tiles.push_back(t);
            }
        }
    }
    if (!w_resident && bands.size() > 1) m_note += "the layer's weights exceed the weight buffer half: reloaded per band; ";
}

void PassPlan::window_position(int w, int pos, int& n, int& o, int& j) const {
    int first, rows, j0, len;
    window_rows(w, first, rows, j0, len);
    const int row = first + pos / len;
    j = j0 + pos % len;
    n = row / m_g.Oh;
    o = row % m_g.Oh;
}

float PassPlan::source_value(int w, int pos, int x, int r, int s) const {
    const Geometry& g = m_g;
    const Layer& l = m_layer;
    int n, o, j;
    window_position(w, pos, n, o, j);
    const int srow = o * g.a + g.b * r + g.c0, scol = j * g.a + g.b * s + g.c0;
    if (srow < 0 || srow >= g.Hs || scol < 0 || scol >= g.Ws) return 0.0f;
    if (m_pass == Pass::BP) {
        if (srow % l.stride || scol % l.stride) return 0.0f;
        const std::vector<float>& src = m_onchip ? m_onchip->source : m_values->grad_out;
        return src[((size_t(n) * l.K + x) * l.P + srow / l.stride) * l.Q + scol / l.stride];
    }
    const std::vector<float>& src = m_onchip ? m_onchip->source : m_values->input;
    return src[((size_t(n) * l.C + x) * l.H + srow) * l.W + scol];
}

float PassPlan::weight_value(int item, int x, int r, int s) const {
    const Layer& l = m_layer;
    const bool item_is_filter = m_pass != Pass::BP || m_bp_filter;
    const int k = item_is_filter ? item : x, c = item_is_filter ? x : item;
    if (!m_skip_weights && !m_work.mask.kept(k, c, r, s)) return 0.0f;  // computed, but pruned: zero
    return (m_onchip ? m_onchip->weight : m_values->weight)[((size_t(k) * l.C + c) * l.R + r) * l.S + s];
}

float PassPlan::grad_value(int w, int pos, int item) const {
    const Layer& l = m_layer;
    int n, o, j;
    window_position(w, pos, n, o, j);
    return (m_onchip ? m_onchip->grad : m_values->grad_out)[((size_t(n) * l.K + item) * l.P + o) * l.Q + j];
}

float& PassPlan::grad_w_at(int item, int x, int r, int s) const {
    const Layer& l = m_layer;
    return (m_onchip ? m_onchip->grad_w : m_values->grad_w)[((size_t(item) * l.C + x) * l.R + r) * l.S + s];
}

float& PassPlan::grad_in_at(int w, int pos, int channel) const {
    const Layer& l = m_layer;
    int n, o, j;
    window_position(w, pos, n, o, j);
    return (m_onchip ? m_onchip->result : m_values->grad_in)[((size_t(n) * l.C + channel) * l.H + o) * l.W + j];
}

int64_t PassPlan::line_read_accesses(int w) const {
    int first_row, rows, j0, len;
    window_rows(w, first_row, rows, j0, len);
    const int64_t width = m_cfg.buffers.activation.width_bits;
    return (rows * m_line_span_bits + width - 1) / width;
}

int64_t PassPlan::window_store_accesses(int w, int real_items) const {
    const int64_t width = m_cfg.buffers.output.width_bits;
    return (int64_t(real_items) * window_positions(w) * m_cfg.operand_bits() + width - 1) / width;
}

int64_t PassPlan::dw_rmw_accesses() const {
    // The cluster's G FP32 gradient accumulators of one (line, s) sit side by side in the output
    // buffer: one wide read-modify-write serves every group of the step.
    const int64_t width = m_cfg.buffers.output.width_bits;
    return (int64_t(m_G) * 32 + width - 1) / width;
}

void PassPlan::store_window(int w, const std::vector<int>& items, const PeArray& pe, int set) const {
    const Layer& l = m_layer;
    int first, rows, j0, len;
    window_rows(w, first, rows, j0, len);
    for (int g = 0; g < int(items.size()); ++g) {
        if (items[g] < 0) continue;
        for (int pos = 0; pos < rows * len; ++pos) {
            const int row = first + pos / len, j = j0 + pos % len;
            const int n = row / m_g.Oh, o = row % m_g.Oh;
            const float v = pe.accumulator(set, g, pos);
            if (m_pass == Pass::FF)
                (m_onchip ? m_onchip->result : m_values->out)[((size_t(n) * l.K + items[g]) * l.P + o) * l.Q + j] = v;
            else
                (m_onchip ? m_onchip->result : m_values->grad_in)[((size_t(n) * l.C + items[g]) * l.H + o) * l.W + j] = v;
        }
    }
}

}  // namespace swpu
