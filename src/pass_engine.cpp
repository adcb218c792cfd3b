#include "swpu/pass_engine.hpp"

#include <algorithm>
#include <deque>
#include <stdexcept>

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
class TileTimeline {
public:
    TileTimeline(const ChipConfig& cfg, int stages, Pass pass)
        : m_fifo(cfg.compaction.step_fifo_depth), m_lines(cfg.dbl.line_buffers), m_slack(cfg.pe_array.input_fifo_depth - 1),
          m_pipe(std::max(1, stages) + 1 + cfg.pe_array.multiplier_latency + (pass == Pass::WG ? cfg.pe_array.reduce_latency : 0)),
          m_sets(cfg.pe_array.accumulator_sets), m_abanks(cfg.buffers.activation.banks), m_wbanks(cfg.buffers.weight.banks),
          m_obanks(cfg.buffers.output.banks), m_la(cfg.buffers.activation.read_latency),
          m_lw(cfg.buffers.weight.read_latency), m_lo(cfg.buffers.output.read_latency) {}

    void begin(int64_t mask_cycles) {
        m_dbl0 = 1 + mask_cycles;
        m_issue = m_dbl0 - 1;
        m_net_end = 0;
        m_wbuf_free = m_abuf_free = m_obuf_free = 0;
        m_pops.clear();
        m_wstarts.clear();
        m_line_ends.clear();
        m_line_issue = m_dbl0 - 1;
        m_set_free.assign(size_t(m_sets), 0);
        m_set = 0;
        m_pe_next = 0;
        m_last_acc = 0;
        m_end = 0;
        m_rmw_starts.clear();
        m_window_start = true;
        m_line_ready = 0;
    }
    // A step of `cycles` network cycles; `line_words` > 0 when it starts a line (its read's words).
    void step(int64_t line_words, int64_t weight_words, int cycles, int64_t rmw_words) {
        int64_t issue = std::max(m_issue + 1, m_dbl0);
        if (int(m_pops.size()) >= m_fifo) issue = std::max(issue, m_pops[m_pops.size() - size_t(m_fifo)] + 1);
        if (weight_words && int(m_wstarts.size()) >= m_fifo)
            issue = std::max(issue, m_wstarts[m_wstarts.size() - size_t(m_fifo)] + 1);
        m_issue = issue;
        int64_t start = std::max(m_net_end + 1, issue + 1);
        if (weight_words) {
            const int64_t ws = std::max(issue + 1, m_wbuf_free);
            const int64_t occ = (weight_words + m_wbanks - 1) / m_wbanks;
            m_wbuf_free = ws + occ;
            m_wstarts.push_back(ws);
            start = std::max(start, ws + occ + m_lw);
        }
        if (line_words) {
            // The read was issued when a line register was free (its line m_lines back has ended).
            int64_t il = std::max(m_line_issue + 1, m_dbl0);
            if (int(m_line_ends.size()) >= m_lines) il = std::max(il, m_line_ends[m_line_ends.size() - size_t(m_lines)] + 1);
            m_line_issue = il;
            const int64_t ls = std::max(il + 1, m_abuf_free);
            const int64_t occ = (line_words + m_abanks - 1) / m_abanks;
            m_abuf_free = ls + occ;
            start = std::max(start, ls + occ + m_la);
        }
        start = std::max(start, m_net_block);
        m_pops.push_back(start);
        m_net_end = start + cycles - 1;
        // The PE array: in order, one packet per cycle, after the pipeline.
        int64_t a0 = std::max(start + m_pipe, m_pe_next);
        if (m_window_start) a0 = std::max(a0, m_set_free[size_t(m_set)]);
        m_window_start = false;
        int64_t a_last = a0 + cycles - 1;
        if (rmw_words) {  // the read-modify-write waits for a slot of the request queue
            if (int(m_rmw_starts.size()) >= m_sets) a_last = std::max(a_last, m_rmw_starts[m_rmw_starts.size() - size_t(m_sets)] + 1);
            const int64_t rs = std::max(a_last + 1, m_obuf_free);
            const int64_t occ = (rmw_words + m_obanks - 1) / m_obanks;
            m_obuf_free = rs + occ;
            m_rmw_starts.push_back(rs);
            m_end = std::max(m_end, rs + occ + m_lo + 1);
        }
        // A PE wait beyond what the lane FIFO absorbs holds the network's next step back.
        const int64_t wait = a_last - (m_net_end + m_pipe);
        m_net_block = wait > m_slack ? m_net_end + 1 + (wait - m_slack) : 0;
        m_pe_next = a_last + 1;
        m_last_acc = a_last;
        m_end = std::max(m_end, a_last);
    }
    void end_line() { m_line_ends.push_back(m_net_end); }
    // FF/BP: the window's results write back from its accumulator set.
    void end_window(int64_t store_words) {
        const int64_t ws = std::max(m_last_acc + 1, m_obuf_free);
        const int64_t occ = (store_words + m_obanks - 1) / m_obanks;
        m_obuf_free = ws + occ;
        m_set_free[size_t(m_set)] = ws + occ + 1;
        m_end = std::max(m_end, ws + occ + 1);
        m_set = (m_set + 1) % m_sets;
        m_window_start = true;
    }
    void next_window_start() { m_window_start = true; }
    // Cycles from the controller's command to the PE array's done (both handshake registers).
    int64_t wall() const { return m_end; }

private:
    int m_fifo, m_lines, m_slack;
    int64_t m_pipe;
    int m_sets, m_abanks, m_wbanks, m_obanks, m_la, m_lw, m_lo;
    int64_t m_dbl0 = 0, m_issue = 0, m_net_end = 0, m_net_block = 0;
    int64_t m_wbuf_free = 0, m_abuf_free = 0, m_obuf_free = 0, m_line_issue = 0, m_line_ready = 0;
    std::deque<int64_t> m_pops, m_wstarts, m_line_ends, m_rmw_starts;
    std::vector<int64_t> m_set_free;
    int m_set = 0;
    int64_t m_pe_next = 0, m_last_acc = 0, m_end = 0;
    bool m_window_start = true;
};

}  // namespace

PassEngine::PassEngine(const ChipConfig& cfg, const Layer& layer, const LayerWork& work, Pass pass, int batch,
                       const std::vector<int>& order, DblController& dbl, CompactionNetwork& net, PeArray& pe,
                       LayerValues* values)
    : m_cfg(cfg), m_layer(layer), m_work(work), m_pass(pass), m_batch(batch), m_order(order), m_dbl(dbl),
      m_net(net), m_pe(pe), m_values(values),
      m_G(cfg.pe_array.groups), m_L(cfg.pe_array.lanes), m_Nw(cfg.compaction.window) {
    if (pass == Pass::BP) {
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

int64_t PassEngine::dense_macs() const { return m_layer.macs() * m_batch; }

void PassEngine::build_geometry() {
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
    m_clusters = (g.Gd + m_G - 1) / m_G;
    m_lines = g.Rd * g.R;
    if (int(m_order.size()) != g.Gd) throw std::logic_error("reorder table size does not match the layer");
    // One line of a window from the activation buffer: the source span of the window's rows.
    // One line of a window from the activation buffer: per output row of the window, the source
    // span its positions and the S kernel positions touch (FP16 values).
    m_line_span_bits = int64_t((g.chunks > 1 ? m_Nw : g.Ow) * g.a + g.S - 1) * 16;
    m_weight_fetch_accesses = (int64_t(m_G) * 16 + m_cfg.buffers.weight.width_bits - 1) / m_cfg.buffers.weight.width_bits;
}

void PassEngine::build_source() {
    const Layer& l = m_layer;
    if (m_pass == Pass::BP) {
        // Transposed convolution: the output gradient with stride-1 zeros inserted.
        const Bitmap4D& gr = m_work.grad_nonzero;
        m_src_storage.resize(m_batch, l.K, m_g.Hs, m_g.Ws);
        for (int n = 0; n < m_batch; ++n)
            for (int k = 0; k < l.K; ++k)
                for (int p = 0; p < l.P; ++p)
                    for (int q = 0; q < l.Q; ++q)
                        if (gr.get(n, k, p, q)) m_src_storage.set(n, k, p * l.stride, q * l.stride, true);
        m_src = &m_src_storage;
    } else {
        m_src = &m_work.input_nonzero;
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

uint64_t PassEngine::source_bits(int n, int x, int srow, int off, int j0, int len) const {
    if (srow < 0 || srow >= m_g.Hs) return 0;
    if (m_g.a == 1) return extract_bits(m_src->row(n, x, srow), m_g.Ws, j0 + off, len);
    const int ph = floor_mod(off, m_g.a);
    const int base = (off - ph) / m_g.a;
    const Bitmap4D& d = m_phase[ph];
    return extract_bits(d.row(n, x, srow), d.W, j0 + base, len);
}

void PassEngine::window_rows(int w, int& first_row, int& rows, int& j0, int& len) const {
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

int PassEngine::window_positions(int w) const {
    int first, rows, j0, len;
    window_rows(w, first, rows, j0, len);
    return rows * len;
}

void PassEngine::build_valid_table() {
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
    if (m_pass != Pass::WG) {
        m_cost_cycles.resize(entries);
        m_cost_valid.resize(entries);
        m_cost_hops.resize(entries);
        for (size_t i = 0; i < entries; ++i) {
            const CompactionCost c = m_net.cost(m_valid[i]);
            m_cost_cycles[i] = uint8_t(c.cycles);
            m_cost_valid[i] = uint8_t(c.valid);
            m_cost_hops[i] = uint16_t(c.hops);
        }
    } else {
        const Bitmap4D& gr = m_work.grad_nonzero;
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

void PassEngine::cluster_items(int cluster, std::vector<int>& items) const {
    items.assign(m_G, -1);
    for (int i = 0; i < m_G; ++i) {
        const int slot = cluster * m_G + i;
        if (slot < m_g.Gd) items[i] = m_order[slot];
    }
}

int64_t PassEngine::weight_bytes_for(const std::vector<int>& items) const {
    // DRAM weight format: line-compressed (DBL on: kept lines' S values + the line mask bits),
    // element-compressed (crossbar: non-zeros + index bits), dense (DBL off).
    const WeightMask& m = *m_group_mask;  // rows of each item contiguous
    int64_t lines = 0, nnz = 0, real = 0;
    for (int it : items) {
        if (it < 0) continue;
        ++real;
        for (int x = 0; x < m_g.Rd; ++x)
            for (int r = 0; r < m_g.R; ++r) {
                const uint64_t row = m.row(it, x, r);
                if (row) ++lines;
                nnz += __builtin_popcountll(row);
            }
    }
    const int64_t mask_bytes = (real * m_lines + 7) / 8;
    if (m_cfg.compaction.routing == "crossbar")
        return nnz * 2 + (nnz * m_cfg.memory.weight_index_bits + 7) / 8;
    if (m_cfg.dbl.enabled) return lines * m_g.S * 2 + mask_bytes;
    return real * m_lines * m_g.S * 2;
}

void PassEngine::build_tiles() {
    const Geometry& g = m_g;
    const Layer& l = m_layer;
    const bool compress = m_cfg.memory.activation_compression;
    const int64_t abuf_half = int64_t(m_cfg.buffers.activation.kib) * 1024 / (m_cfg.dma.double_buffering ? 2 : 1);
    const int64_t wbuf_half = int64_t(m_cfg.buffers.weight.kib) * 1024 / (m_cfg.dma.double_buffering ? 2 : 1);
    const int64_t obuf_half = int64_t(m_cfg.buffers.output.kib) * 1024 / (m_cfg.dma.double_buffering ? 2 : 1);
    // Real source rows (in the stored tensor) a band of windows needs, per image.
    const Bitmap4D& stored = m_pass == Pass::BP ? m_work.grad_nonzero : m_work.input_nonzero;
    const int st_cols = m_pass == Pass::BP ? l.Q : l.W;
    auto band_rows = [&](int w0, int w1, std::vector<std::pair<int, std::pair<int, int>>>& out) {
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
            if (lo <= hi) out.push_back({n, {lo, hi}});
        }
    };
    auto row_bytes = [&](const Bitmap4D& bm, int n, int ch, int row, int cols) -> int64_t {
        if (!compress) return int64_t(cols) * 2;
        int64_t nz = 0;
        const uint64_t* p = bm.row(n, ch, row);
        for (int i = 0; i < bm.words_per_row; ++i) nz += __builtin_popcountll(p[i]);
        return nz * 2 + (cols + 7) / 8;
    };
    std::vector<std::pair<int, std::pair<int, int>>> rows;
    auto input_bytes = [&](int w0, int w1, int64_t& dram, int64_t& buffer) {
        band_rows(w0, w1, rows);
        dram = buffer = 0;
        for (auto& nr : rows)
            for (int h = nr.second.first; h <= nr.second.second; ++h) {
                buffer += int64_t(g.Rd) * st_cols * 2;
                for (int x = 0; x < g.Rd; ++x) dram += row_bytes(stored, nr.first, x, h, st_cols);
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
            const bool out_fits = m_pass == Pass::WG || int64_t(m_G) * pos2 * 4 <= obuf_half;
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
                        for (int r = 0; r < g.R; ++r) kept += __builtin_popcountll(m_work.mask.row(it, x, r));
        const bool dw_spill = m_pass == Pass::WG && kept * 4 > obuf_half && bands.size() > 1;
        for (size_t b = 0; b < bands.size(); ++b) {
            Tile t;
            t.cluster = c;
            t.w_begin = bands[b].first;
            t.w_end = bands[b].second;
            int64_t d, bb;
            input_bytes(t.w_begin, t.w_end, d, bb);
            if (!resident || (c == 0 && b == 0)) {
                t.load_bytes += resident ? all_d : d;
                t.abuf_fill_accesses += ((resident ? all_b : bb) * 8 + abits - 1) / abits;
            }
            if (b == 0 || !w_resident) {
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
                if (dw_spill && b > 0) t.load_bytes += kept * 4;  // reload the partial gradients
                if (b + 1 == bands.size() || dw_spill) {
                    t.store_bytes += kept * 4;
                    t.obuf_drain_accesses += (kept * 32 + obits - 1) / obits;
                }
            } else {
                t.store_bytes += int64_t(real) * positions * 2;  // FP16 outputs
                t.obuf_drain_accesses += (int64_t(real) * positions * 16 + obits - 1) / obits;
            }
            m_tiles.push_back(t);
        }
    }
}

float PassEngine::source_value(int w, int pos, int x, int r, int s) const {
    const Geometry& g = m_g;
    const Layer& l = m_layer;
    int first, rows, j0, len;
    window_rows(w, first, rows, j0, len);
    const int row = first + pos / len, j = j0 + pos % len;
    const int n = row / g.Oh, o = row % g.Oh;
    const int srow = o * g.a + g.b * r + g.c0, scol = j * g.a + g.b * s + g.c0;
    if (srow < 0 || srow >= g.Hs || scol < 0 || scol >= g.Ws) return 0.0f;
    if (m_pass == Pass::BP) {
        if (srow % l.stride || scol % l.stride) return 0.0f;
        return m_values->grad_out[((size_t(n) * l.K + x) * l.P + srow / l.stride) * l.Q + scol / l.stride];
    }
    return m_values->input[((size_t(n) * l.C + x) * l.H + srow) * l.W + scol];
}

float PassEngine::weight_value(int item, int x, int r, int s) const {
    const Layer& l = m_layer;
    const int k = m_pass == Pass::BP ? x : item, c = m_pass == Pass::BP ? item : x;
    return m_values->weight[((size_t(k) * l.C + c) * l.R + r) * l.S + s];
}

float PassEngine::grad_value(int w, int pos, int item) const {
    const Layer& l = m_layer;
    int first, rows, j0, len;
    window_rows(w, first, rows, j0, len);
    const int row = first + pos / len, j = j0 + pos % len;
    const int n = row / m_g.Oh, o = row % m_g.Oh;
    return m_values->grad_out[((size_t(n) * l.K + item) * l.P + o) * l.Q + j];
}

int64_t PassEngine::tile_fill_drain(const Tile& t) const {
    // The clocked datapath's latency around a tile's compute cycles (docs/architecture.md, "cycle
    // rules"): the command reaches the DBL controller (1); its first line read and weight word pass a
    // request register (1), the banks and the read latency; the network's input stage then issues the
    // compute cycles; the last packet crosses the log stages and the FIFO into the multiplier (and, WG,
    // adder-tree) pipeline, accumulates, and its write (FF/BP: the window's write-back; WG: the last
    // read-modify-write) is acknowledged before the PE array reports the tile done (1).
    const auto& b = m_cfg.buffers;
    auto words = [](int64_t n, int banks) { return (n + banks - 1) / banks; };
    int64_t fill = words(line_read_accesses(t.w_begin), b.activation.banks) + b.activation.read_latency;
    if (m_pass != Pass::WG)
        fill = std::max<int64_t>(fill, words(m_weight_fetch_accesses, b.weight.banks) + b.weight.read_latency);
    const int64_t stages = std::max(1, m_net.stages());
    int64_t pipe = m_cfg.pe_array.multiplier_latency + (m_pass == Pass::WG ? m_cfg.pe_array.reduce_latency : 0);
    int64_t tail;
    if (m_pass == Pass::WG) {
        tail = words(dw_rmw_accesses(), b.output.banks) + b.output.read_latency + 2;
    } else {
        std::vector<int> items;
        cluster_items(t.cluster, items);
        int real = 0;
        for (int it : items) real += it >= 0;
        tail = words(window_store_accesses(t.w_end - 1, real), b.output.banks) + 2;
    }
    return 2 + fill + stages + pipe + tail;
}

int64_t PassEngine::line_read_accesses(int w) const {
    int first_row, rows, j0, len;
    window_rows(w, first_row, rows, j0, len);
    const int64_t width = m_cfg.buffers.activation.width_bits;
    return (rows * m_line_span_bits + width - 1) / width;
}

int64_t PassEngine::window_store_accesses(int w, int real_items) const {
    const int64_t width = m_cfg.buffers.output.width_bits;
    return (int64_t(real_items) * window_positions(w) * 16 + width - 1) / width;
}

int64_t PassEngine::dw_rmw_accesses() const {
    // The cluster's G FP32 gradient accumulators of one (line, s) sit side by side in the output
    // buffer: one wide read-modify-write serves every group of the step.
    const int64_t width = m_cfg.buffers.output.width_bits;
    return (int64_t(m_G) * 32 + width - 1) / width;
}

void PassEngine::store_window(int w, const std::vector<int>& items, int set) {
    const Layer& l = m_layer;
    int first, rows, j0, len;
    window_rows(w, first, rows, j0, len);
    for (int g = 0; g < int(items.size()); ++g) {
        if (items[g] < 0) continue;
        for (int pos = 0; pos < rows * len; ++pos) {
            const int row = first + pos / len, j = j0 + pos % len;
            const int n = row / m_g.Oh, o = row % m_g.Oh;
            const float v = m_pe.accumulator(set, g, pos);
            if (m_pass == Pass::FF)
                m_values->out[((size_t(n) * l.K + items[g]) * l.P + o) * l.Q + j] = v;
            else
                m_values->grad_in[((size_t(n) * l.C + items[g]) * l.H + o) * l.W + j] = v;
        }
    }
}

int64_t PassEngine::run_tile(const Tile& t, Counters& k, CycleProbe* probe) {
    const bool log = m_cfg.compaction.routing == "log";
    const bool reduce = m_pass == Pass::WG;
    const bool fn = m_values != nullptr;
    if (log) {
        if (reduce) return fn ? run_tile_impl<true, true, true>(t, k, probe) : run_tile_impl<true, true, false>(t, k, probe);
        return fn ? run_tile_impl<true, false, true>(t, k, probe) : run_tile_impl<true, false, false>(t, k, probe);
    }
    if (reduce) return fn ? run_tile_impl<false, true, true>(t, k, probe) : run_tile_impl<false, true, false>(t, k, probe);
    return fn ? run_tile_impl<false, false, true>(t, k, probe) : run_tile_impl<false, false, false>(t, k, probe);
}

template <bool Log, bool Reduce, bool Functional>
int64_t PassEngine::run_tile_impl(const Tile& t, Counters& k, CycleProbe* probe) {
    std::vector<int> items;
    cluster_items(t.cluster, items);
    int64_t mask_cycles = 0;
    if (m_loaded_cluster != t.cluster) {
        const int64_t words0 = k.mask_reads;
        m_dbl.load_cluster(*m_group_mask, items, k);
        mask_cycles = m_dbl.mask_load_cycles(k.mask_reads - words0);
        k.mask_load_cycles += mask_cycles;
        m_loaded_cluster = t.cluster;
    }
    TileTimeline tl(m_cfg, m_net.stages(), m_pass);
    tl.begin(mask_cycles);
    const Geometry& g = m_g;
    const int G = m_G, L = m_L, S = g.S;
    const bool dbl = m_dbl.enabled();
    const uint64_t full = S >= 64 ? ~0ull : ((1ull << S) - 1);
    const int stages = m_net.stages();
    const int64_t wf = m_weight_fetch_accesses;
    const int64_t rmw = dw_rmw_accesses();
    const Layer& l = m_layer;
    int64_t cycles = 0;
    std::vector<int64_t> gcyc(G, 0);           // crossbar: per-group cycles in the window
    std::vector<int64_t> gvalid(G, 0);
    std::vector<int> timeline;                 // crossbar + probe: lanes busy per cycle of the window
    std::vector<int> gtimeline;                // crossbar + probe: groups busy per cycle
    uint64_t vg[64];
    int cg[64];
    CompactionCost gcost[64];
    float products[64];
    // DBL off: a weight word no group needs (or with an empty window) is still fetched and
    // zero-detected, then dropped: it spends one issue cycle.
    auto drop_step = [&](auto& read_line) {
        if (dbl) return;
        const int64_t lw = read_line();
        if (!Reduce) k.wbuf_reads += wf;  // WG steps take no weight word
        if (Log) tl.step(lw, Reduce ? 0 : wf, 1, 0);
        k.zero_detects += G;
        ++k.steps_dropped;
        ++k.dropped_step_cycles;
        ++cycles;
        if (probe) probe->cycle(0, 0, 0);
    };

    for (int w = t.w_begin; w < t.w_end; ++w) {
        const int64_t window_cycles0 = cycles;
        if (Functional && !Reduce) m_pe.clear_accumulators(0);
        int first_row, rows, j0, len;
        window_rows(w, first_row, rows, j0, len);
        const int64_t line_read = line_read_accesses(w);
        int64_t win_wreads = 0, win_areads = 0;  // crossbar: buffer accesses the groups need
        if (!Log) {
            std::fill(gcyc.begin(), gcyc.end(), 0);
            std::fill(gvalid.begin(), gvalid.end(), 0);
            if (probe) { timeline.clear(); gtimeline.clear(); }
        }
        for (int line = 0; line < m_lines; ++line) {
            const uint64_t u = m_dbl.union_row(line);
            if (dbl && !u) continue;
            // The DBL controller reads a line only when one of its steps issues (or, DBL off, is
            // fetched and dropped); a line whose every position has an empty window is never read.
            bool line_read_done = false;
            auto read_line = [&]() -> int64_t {  // the words of the read when this step starts the line
                if (line_read_done) return 0;
                line_read_done = true;
                k.abuf_reads += line_read;  // one read, broadcast to every group of the cluster
                return line_read;
            };
            if constexpr (!Log) {
                // Decoupled groups work on different lines at different times: each group reads
                // the lines it needs itself (every line without DBL).
                int readers = 0;
                for (int gi = 0; gi < G; ++gi)
                    if (items[gi] >= 0 && (!dbl || m_dbl.group_row(gi, line))) ++readers;
                k.abuf_reads += line_read * readers;
                win_areads += line_read * readers;
            }
            const int x = line / g.R, r = line % g.R;
            const size_t base = (size_t(w) * m_lines + line) * S;
            for (uint64_t sb = dbl ? u : full; sb; sb &= sb - 1) {
                const int s = __builtin_ctzll(sb);
                const size_t idx = base + s;
                const uint64_t V = m_valid[idx];
                if constexpr (!Log) {
                    // Crossbar: each group walks its own non-zero weights (per-weight indices).
                    for (int gi = 0; gi < G; ++gi) {
                        if (items[gi] < 0 || !((m_dbl.group_row(gi, line) >> s) & 1u)) continue;
                        const uint64_t v = Reduce ? (V & m_grad_window[size_t(w) * g.Gd + items[gi]]) : V;
                        const int pop = __builtin_popcountll(v);
                        k.wbuf_reads += 1;
                        ++win_wreads;
                        k.index_reads += 1;
                        if (!dbl) k.zero_detects += 1;
                        int c = (pop + L - 1) / L;
                        if (pop == 0) {
                            if (dbl) continue;
                            ++k.steps_dropped;
                            c = 1;  // fetched, detected, dropped: the group's fetch slot is spent
                        } else {
                            ++k.steps;
                        }
                        if (probe) {
                            const int64_t t0 = gcyc[gi];
                            if (int64_t(timeline.size()) < t0 + c) { timeline.resize(t0 + c, 0); gtimeline.resize(t0 + c, 0); }
                            for (int j = 0; j < c; ++j) {
                                const int busy = std::min(L, std::max(0, pop - j * L));
                                timeline[t0 + j] += busy;
                                gtimeline[t0 + j] += busy > 0;
                            }
                        }
                        gcyc[gi] += c;
                        gvalid[gi] += pop;
                        k.valid_macs += pop;
                        k.crossbar_routes += pop;
                        if (Reduce) k.adder_tree_adds += pop; else k.acc_updates += pop;
                        if (Reduce && pop) { k.obuf_reads += 1; k.obuf_writes += 1; }
                        if constexpr (Functional) {
                            for (int j = 0; j < c && pop; ++j) {
                                m_net.route(v, j, m_lane_pos);
                                if constexpr (Reduce) {
                                    int n = 0;
                                    for (int ln = 0; ln < L; ++ln)
                                        if (m_lane_pos[ln] >= 0)
                                            products[n++] = source_value(w, m_lane_pos[ln], x, r, s) *
                                                            grad_value(w, m_lane_pos[ln], items[gi]);
                                    m_values->grad_w[((size_t(items[gi]) * l.C + x) * l.R + r) * l.S + s] +=
                                        PeArray::reduce(products, n);
                                } else {
                                    const float wv = weight_value(items[gi], x, r, s);
                                    for (int ln = 0; ln < L; ++ln) {
                                        const int pos = m_lane_pos[ln];
                                        if (pos < 0) continue;
                                        m_pe.mac(0, gi, pos, wv, source_value(w, pos, x, r, s));
                                    }
                                }
                            }
                        }
                    }
                } else if constexpr (!Reduce) {
                    // FF / BP through the log network: one compaction serves every group of the cluster.
                    const int act = m_dbl.active_groups(line, s);
                    if (act == 0 || V == 0) {
                        drop_step(read_line);
                        continue;
                    }
                    const int64_t lw = read_line();
                    if (!dbl) k.zero_detects += G;
                    k.wbuf_reads += wf;
                    const int c = m_cost_cycles[idx];
                    tl.step(lw, wf, c, 0);
                    const int val = m_cost_valid[idx];
                    ++k.steps;
                    k.valid_macs += int64_t(val) * act;
                    k.acc_updates += int64_t(val) * act;
                    k.idle_group_lane_slots += int64_t(G - act) * L * c;
                    k.idle_pack_lane_slots += int64_t(act) * (int64_t(L) * c - val);
                    k.switch_traversals += int64_t(val) * stages;
                    k.switch_hops += m_cost_hops[idx];
                    k.scatter_traversals += int64_t(val) * stages * act;
                    cycles += c;
                    if (probe) {
                        const int lps = m_net.lanes() / m_net.segments();
                        for (int j = 0; j < c; ++j) {
                            int segs = 0;
                            for (int d = 0; d < m_net.segments(); ++d) {
                                const uint64_t seg = (V >> (d * m_net.segment_width())) &
                                                     (m_net.segment_width() >= 64 ? ~0ull : ((1ull << m_net.segment_width()) - 1));
                                segs += __builtin_popcountll(seg) > j * lps;
                            }
                            probe->cycle(m_net.lanes_busy_in_cycle(V, j) * act, act, segs);
                        }
                    }
                    if constexpr (Functional) {
                        for (int j = 0; j < c; ++j) {
                            m_net.route(V, j, m_lane_pos);
                            for (int gi = 0; gi < G; ++gi) {
                                if (items[gi] < 0 || !((m_dbl.group_row(gi, line) >> s) & 1u)) continue;
                                const float wv = weight_value(items[gi], x, r, s);
                                for (int ln = 0; ln < L; ++ln) {
                                    const int pos = m_lane_pos[ln];
                                    if (pos < 0) continue;
                                    const int back = m_net.scatter(V, ln, pos);  // bi-directional switches
                                    m_pe.mac(0, gi, back, wv, source_value(w, pos, x, r, s));
                                }
                            }
                        }
                    }
                } else {
                    // WG through per-group log networks: valid = operand & the group's gradient.
                    int act = 0, maxc = 0;
                    for (int gi = 0; gi < G; ++gi) {
                        cg[gi] = 0;
                        vg[gi] = 0;
                        if (items[gi] < 0 || !((m_dbl.group_row(gi, line) >> s) & 1u)) continue;
                        ++act;
                        vg[gi] = V & m_grad_window[size_t(w) * g.Gd + items[gi]];
                    }
                    if (act) {
                        for (int gi = 0; gi < G; ++gi) {
                            if (!vg[gi]) continue;
                            gcost[gi] = m_net.cost(vg[gi]);
                            cg[gi] = gcost[gi].cycles;
                            if (cg[gi] > maxc) maxc = cg[gi];
                        }
                    }
                    if (act == 0 || maxc == 0) {
                        drop_step(read_line);
                        continue;
                    }
                    const int64_t lw = read_line();
                    if (!dbl) k.zero_detects += G;
                    ++k.steps;
                    tl.step(lw, 0, maxc, rmw);
                    int busy_groups = 0;
                    for (int gi = 0; gi < G; ++gi) {
                        if (!cg[gi]) continue;
                        ++busy_groups;
                        const CompactionCost& cc = gcost[gi];
                        k.valid_macs += cc.valid;
                        k.adder_tree_adds += cc.valid;
                        k.switch_traversals += int64_t(cc.valid) * stages;
                        k.switch_hops += cc.hops;
                        k.idle_pack_lane_slots += int64_t(L) * maxc - cc.valid;
                    }
                    k.obuf_reads += rmw;  // read-modify-write of the cluster's FP32 gradient accumulators
                    k.obuf_writes += rmw;
                    k.idle_group_lane_slots += int64_t(G - busy_groups) * L * maxc;
                    cycles += maxc;
                    if (probe) {
                        for (int j = 0; j < maxc; ++j) {
                            int lanes = 0, groups = 0;
                            for (int gi = 0; gi < G; ++gi)
                                if (cg[gi] > j) {
                                    lanes += m_net.lanes_busy_in_cycle(vg[gi], j);
                                    ++groups;
                                }
                            probe->cycle(lanes, groups, 0);
                        }
                    }
                    if constexpr (Functional) {
                        for (int gi = 0; gi < G; ++gi) {
                            if (!cg[gi]) continue;
                            float& acc = m_values->grad_w[((size_t(items[gi]) * l.C + x) * l.R + r) * l.S + s];
                            for (int j = 0; j < cg[gi]; ++j) {
                                m_net.route(vg[gi], j, m_lane_pos);
                                int n = 0;
                                for (int ln = 0; ln < L; ++ln)
                                    if (m_lane_pos[ln] >= 0)
                                        products[n++] = source_value(w, m_lane_pos[ln], x, r, s) *
                                                        grad_value(w, m_lane_pos[ln], items[gi]);
                                acc += PeArray::reduce(products, n);
                            }
                        }
                    }
                }
            }
            if (Log && line_read_done) tl.end_line();
        }
        if constexpr (!Log) {
            int64_t maxc = 0;
            for (int gi = 0; gi < G; ++gi) maxc = std::max(maxc, gcyc[gi]);
            for (int gi = 0; gi < G; ++gi) {
                k.idle_group_lane_slots += (maxc - gcyc[gi]) * L;
                k.idle_pack_lane_slots += gcyc[gi] * L - gvalid[gi];
            }
            // The buffers serve one access per bank per cycle: per-group weight words and line
            // reads beyond that stretch the window (buffer-port stall).
            const int64_t port = std::max(ceil_div(win_wreads, m_cfg.buffers.weight.banks),
                                          ceil_div(win_areads, m_cfg.buffers.activation.banks));
            const int64_t wcyc = std::max(maxc, port);
            k.buffer_stall_cycles += wcyc - maxc;
            cycles += wcyc;
            if (probe)
                for (int64_t j = 0; j < wcyc; ++j)
                    probe->cycle(j < int64_t(timeline.size()) ? timeline[j] : 0,
                                 j < int64_t(gtimeline.size()) ? gtimeline[j] : 0, 0);
        }
        if (Log && cycles == window_cycles0 && (!Reduce || w + 1 == t.w_end)) {
            // A window without steps: its marker spends one network cycle to carry the window's
            // end (FF/BP: its write-back) or the tile's end through the datapath.
            ++cycles;
            ++k.marker_cycles;
            if (probe) probe->cycle(0, 0, 0);
            if (Log) tl.step(0, 0, 1, 0);
        }
        if (!Reduce) {
            // Results of the window leave the accumulators for the output buffer.
            int real = 0;
            for (int it : items) real += it >= 0;
            k.obuf_writes += window_store_accesses(w, real);
            if (Log) tl.end_window(window_store_accesses(w, real));
            if constexpr (Functional) store_window(w, items, 0);
        }
    }
    k.compute_cycles += cycles;
    k.lane_slots += int64_t(G) * L * cycles;
    // The tile's wall cycles on the clocked datapath: the timeline (log routing), or the compute
    // cycles plus the mask load and the fill/drain of the datapath (crossbar machine).
    m_tile_wall = Log ? tl.wall() : cycles + mask_cycles + tile_fill_drain(t);
    return cycles;
}

}  // namespace swpu
