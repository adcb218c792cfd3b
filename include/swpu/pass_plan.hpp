// The plan of one (layer, pass), shared by both engines: the geometry of windows and lines, the
// valid bits of every (window, line, kernel position), the tiles (what the DMA moves), the cluster
// order, and in functional mode the layer's values. The clocked units read it as their
// configuration; the fast engine walks its steps (fast_engine.hpp).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "swpu/config.hpp"
#include "swpu/stats.hpp"
#include "swpu/workload.hpp"

namespace swpu {

class PeArray;
class FastEngine;
class DramFormat;

// Values of one weighted layer for functional mode (conv form, FP16-representable floats).
struct LayerValues {
    std::vector<float> weight;    // [K][C][R][S]; pruned entries are ignored (the mask rules)
    std::vector<float> input;     // [N][C][H][W]; zero exactly where input_nonzero is 0
    std::vector<float> grad_out;  // [N][K][P][Q]; zero exactly where grad_nonzero is 0
    std::vector<float> out;       // FF result  [N][K][P][Q]
    std::vector<float> grad_in;   // BP result  [N][C][H][W]
    std::vector<float> grad_w;    // WG result  [K][C][R][S]
    // FF/BP result as stored in DRAM (FP16) and read back, in the layout of out / grad_in (functional
    // mode on the cycle engine; empty otherwise). out / grad_in hold the FP32 sums as accumulated.
    std::vector<float> stored;
};

// Functional mode on the cycle engine: the decoded contents of the global buffers for the tile that
// runs, in the layout of LayerValues (decoded from the bytes the DMA delivered when the tile
// starts; docs/architecture.md, functional mode). The units read their operands here and write
// their results here; the store streams are encoded from here.
struct OnChipValues {
    std::vector<float> source;   // activation buffer: FF/WG input [N][C][H][W], BP output gradient
    std::vector<float> grad;     // activation buffer, WG: output gradient [N][K][P][Q]
    std::vector<float> weight;   // weight buffer [K][C][R][S] (pruned entries 0)
    std::vector<float> result;   // output buffer, FF/BP: out [N][K][P][Q] or dI [N][C][H][W]
    std::vector<float> grad_w;   // output buffer, WG: FP32 accumulators [K][C][R][S]
};

// One tile: a cluster of G items (filters or channels) over a band of windows.
struct Tile {
    int cluster = 0;
    int w_begin = 0, w_end = 0;
    int64_t load_bytes = 0;   // DRAM -> buffers before the tile can start
    int64_t store_bytes = 0;  // buffers -> DRAM after the tile
    int64_t wbuf_fill_accesses = 0, abuf_fill_accesses = 0, obuf_drain_accesses = 0;
    // Filter-oriented BP: the block of input channels whose partial dI the output buffer holds, and
    // whether the tile is the block's last cluster (the partials are final and leave for DRAM).
    int x_begin = 0, x_end = 0;
    bool last_of_block = true;
    // What the load counts, in stream order (dram_format.hpp encodes it byte for byte): the source
    // rows of windows [act_w_begin, act_w_end), the cluster's weights (mask rows [x_begin, x_end)),
    // WG the cluster's output-gradient rows of the band, WG the reloaded FP32 partial gradients.
    bool act_load = false, weight_load = false, partial_reload = false;
    int act_w_begin = 0, act_w_end = 0;
    // WG with spilled partial gradients: the last part of load_bytes, read from where the previous
    // tile (the cluster's previous band) stored them, once that store is complete.
    int64_t partial_bytes = 0;
};

class PassPlan {
public:
    PassPlan(const ChipConfig& cfg, const Layer& layer, const LayerWork& work, Pass pass, int batch,
             const std::vector<int>& order, LayerValues* values);
    const ChipConfig& config() const { return m_cfg; }

    const std::vector<Tile>& tiles() const { return m_tiles; }
    int clusters() const { return m_clusters; }
    int windows() const { return m_windows; }
    int64_t dense_macs() const;
    std::string tiling_note() const { return m_note; }

    // What the clocked units and the fast engine read.
    Pass pass() const { return m_pass; }
    int lines() const { return m_lines; }
    int kernel_s() const { return m_g.S; }
    int kernel_r() const { return m_g.R; }
    int items() const { return m_g.Gd; }
    // Filter-oriented BP (pe_array.bp_orientation = filter): clusters of FF's filters, lines (c, r)
    // of the mask, each group's operand its own filter's output-gradient rows.
    bool bp_filter() const { return m_bp_filter; }
    int cluster_item_count() const { return m_items; }
    // Operand valid bits of window w at line (x*R + r) and kernel position s.
    uint64_t valid(int w, int line, int s) const { return m_valid[(size_t(w) * m_lines + line) * m_g.S + s]; }
    // WG: output-gradient valid bits of window w for item (filter) `item`.
    uint64_t grad_bits(int w, int item) const { return m_grad_window[size_t(w) * m_g.Gd + item]; }
    void cluster_items(int cluster, std::vector<int>& items) const;
    const WeightMask& group_mask() const { return *m_group_mask; }
    int window_positions(int w) const;
    int64_t line_read_accesses(int w) const;         // activation-buffer words of one line of window w
    int64_t weight_fetch_accesses() const { return m_weight_fetch_accesses; }  // one step's weight word
    int64_t window_store_accesses(int w, int real_items) const;  // FF/BP: results of a window
    int64_t dw_rmw_accesses() const;                 // WG: the G gradient accumulators of one (line, s)
    LayerValues* values() const { return m_values; }
    // Functional mode on the cycle engine: operands are read from, and results written to, the
    // buffers' decoded contents instead of the layer values (null: the layer values).
    void read_buffers(OnChipValues* onchip) { m_onchip = onchip; }
    const OnChipValues* buffers() const { return m_onchip; }
    float& grad_w_at(int item, int x, int r, int s) const;  // WG: the FP32 gradient the PE array adds to
    float source_value(int w, int pos, int x, int r, int s) const;
    float grad_value(int w, int pos, int item) const;
    float weight_value(int item, int x, int r, int s) const;  // W as the group holding `item` sees it
    float& grad_in_at(int w, int pos, int channel) const;     // BP: dI of input channel `channel` at a window position
    // FF/BP: the window's results from accumulator set `set` of the PE array into the layer values.
    void store_window(int w, const std::vector<int>& items, const PeArray& pe, int set) const;

private:
    friend class FastEngine;  // the step loop reads the tables directly (hot path)
    friend class DramFormat;  // the DRAM formats walk the geometry the byte counts walk
    struct Geometry {
        int Gd = 0, Rd = 0, R = 0, S = 0;
        int Oh = 0, Ow = 0, N = 0;
        int a = 1, b = 1, c0 = 0;  // source index = out * a + b * kernel + c0 (rows and columns)
        int Hs = 0, Ws = 0;        // source plane
        int m = 1, chunks = 1;     // rows per window, windows per row
        int total_rows = 0;
    };
    void build_geometry();
    void build_source();
    void build_valid_table();
    void build_tiles();
    uint64_t source_bits(int n, int x, int srow, int off, int j0, int len) const;
    void window_rows(int w, int& first_row, int& rows, int& j0, int& len) const;
    // Window w's position pos: image n, output row o, column j.
    void window_position(int w, int pos, int& n, int& o, int& j) const;
    // Real source rows (in the stored tensor) that the windows [w0, w1) need: (image, first, last).
    struct BandRows {
        int n, lo, hi;
    };
    void band_rows(int w0, int w1, std::vector<BandRows>& out) const;
    void build_tiles_bp_filter(const std::vector<std::pair<int, int>>& bands, bool act_resident,
                               const std::function<void(int, int, int64_t&, int64_t&)>& input_bytes);
    // DRAM bytes of the cluster's weights of mask rows x in [x0, x1) (x1 < 0: all).
    int64_t weight_bytes_for(const std::vector<int>& items, int x0 = 0, int x1 = -1) const;

    const ChipConfig& m_cfg;
    const Layer& m_layer;
    const LayerWork& m_work;
    Pass m_pass;
    int m_batch;
    const std::vector<int>& m_order;
    LayerValues* m_values;
    OnChipValues* m_onchip = nullptr;

    // The mask as the groups see it: FF/WG the layer's mask; BP its transpose (rows of one input
    // channel contiguous), built once so that cluster loads stream through memory.
    // With pruned weights not skipped (config skip.*_weights off), an all-kept mask instead.
    WeightMask m_bp_mask;
    const WeightMask* m_group_mask = nullptr;
    bool m_skip_weights = true;
    // The operand bits this pass treats as valid: the stored bitmaps, or all ones where the machine
    // does not skip that operand's zeros (the DRAM formats still use the stored bitmaps).
    Bitmap4D m_dense_operand, m_dense_grad;
    const Bitmap4D* m_operand_bits = nullptr;
    const Bitmap4D* m_grad_bits = nullptr;
    Geometry m_g;
    int m_G, m_L, m_Nw;
    int m_windows = 0, m_clusters = 0, m_lines = 0;
    bool m_bp_filter = false;
    int m_items = 0;   // what the clusters partition: Gd, or K for filter-oriented BP
    int m_mask_x = 0;  // rows x of the group mask per item (Rd, or C for filter-oriented BP)
    // Source bitmap: phase-decimated rows (stride > 1) of the operand the groups share.
    Bitmap4D m_src_storage;               // BP: zero-inserted output gradients
    const Bitmap4D* m_src = nullptr;
    std::vector<Bitmap4D> m_phase;        // a > 1: phase-decimated copies of the source
    // Valid table: for window w, line (x, r), position s: the window's valid bits.
    std::vector<uint64_t> m_valid;
    std::vector<uint64_t> m_grad_window;  // WG: [w][k] the output-gradient bits of the window
    std::vector<Tile> m_tiles;
    int64_t m_line_span_bits = 0;         // bits of one output row's source span of a line
    int64_t m_weight_fetch_accesses = 0;  // weight buffer accesses for one step's weight word
    std::string m_note;
};

}  // namespace swpu
