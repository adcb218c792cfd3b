// The DRAM formats of a pass's operands and results, byte for byte what PassPlan::build_tiles
// counts (functional mode; docs/architecture.md, "Functional mode: the bytes").
//
// A tile's load is one stream, its parts in this order:
//   1. source rows (activations; BP output gradients), per (image, row, channel) one row: the row's
//      non-zero bitmap, (cols + 7) / 8 bytes, then its non-zero values (memory.activation_compression),
//      or the row's cols values (dense);
//   2. the cluster's weights: WG the line mask (a bit per item and line); else DBL on: the line mask
//      (a bit per item, mask row and kernel row) then each kept line's S values; crossbar
//      (element-indexed): the non-zero values then their kernel-row positions in
//      memory.weight_index_bits each; DBL off: every weight;
//   3. WG: the cluster's output-gradient rows of the band, per item, row-compressed as in 1;
//   4. WG with spilled gradients: the FP32 partial gradients (as the previous band stored them).
// A store stream: FF/BP the results of the cluster's items (filter-oriented BP: the block's
// channels) over the band's window positions in the operand format; WG the kept FP32 gradients.
// Values are FP16 (fp8 operands: the FP16 value's high byte, E5M2), little-endian; bit strings are
// packed from bit 0 of their first byte. Pruned weights inside a stored line are stored as zero.
#pragma once

#include <cstdint>
#include <vector>

#include "swpu/pass_plan.hpp"

namespace swpu {

// Byte lengths of the parts of a load stream, in stream order.
struct LoadParts {
    int64_t source = 0, weight = 0, grad = 0, partial = 0;
    int64_t total() const { return source + weight + grad + partial; }
};

// Where a pass's streams are in DRAM (functional mode, cycle engine): per tile, its load stream at
// load_address (parts in stream order) and its store stream at store_address.
struct PassDramMap {
    std::vector<uint64_t> load_address, store_address;
    std::vector<LoadParts> load_parts;
};

class DramFormat {
public:
    explicit DramFormat(const PassPlan& plan);

    // The load stream of tile `t`, from the layer values (appended to `out`).
    LoadParts encode_load(const Tile& t, const LayerValues& v, std::vector<uint8_t>& out) const;
    // Decodes the parts the buffers received into their decoded contents (`source`, `grad` may be
    // null when the part is empty; the partial gradients stay where the output buffer holds them).
    void decode_load(const Tile& t, const uint8_t* source, const uint8_t* weight, const uint8_t* grad,
                     OnChipValues& on) const;
    // WG: the partial gradients a spilled band stored (its store stream), reloaded into the output
    // buffer's accumulators of tile `t`'s cluster.
    void decode_partials(const Tile& t, const uint8_t* data, OnChipValues& on) const;
    // The store stream of tile `t` from the output buffer's contents (appended to `out`).
    void encode_store(const Tile& t, const OnChipValues& on, std::vector<uint8_t>& out) const;
    // A store stream read back from DRAM, into the layer's results: FF/BP into `stored` (sized as
    // out / grad_in), WG into grad_w.
    void decode_store(const Tile& t, const uint8_t* data, LayerValues& v) const;
    // Empty buffer contents for the pass: operands not delivered read as NaN (a tile that computes
    // on bytes no load brought gives NaN results), results and accumulators zero.
    void init_buffers(OnChipValues& on) const;

private:
    // Row-compressed (or dense) rows of a tensor [n][ch][row][cols] with its non-zero bitmap.
    void put_row(const Bitmap4D& bits, const std::vector<float>& t, int n, int ch, int row, int channels,
                 int rows, int cols, std::vector<uint8_t>& out) const;
    const uint8_t* get_row(const uint8_t* p, std::vector<float>& t, int n, int ch, int row, int channels, int rows,
                           int cols) const;
    void put_value(float x, std::vector<uint8_t>& out) const;
    void get_gradients(const std::vector<int>& items, const uint8_t* data, std::vector<float>& grad_w) const;
    float get_value(const uint8_t* p) const;
    // The stored weight of group item `item` at mask row x, kernel position (r, s): its index in
    // [K][C][R][S], and whether the mask keeps it.
    size_t weight_index(int item, int x, int r, int s) const;
    bool weight_kept(int item, int x, int r, int s) const;

    const PassPlan& m_plan;
    const Layer& m_l;
    int m_ob;  // bytes of an operand or stored result
    bool m_compress;
};

}  // namespace swpu
