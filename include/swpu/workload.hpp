// The workload side of the simulator: networks, weight masks, activation bitmaps and the
// training iterations that a trace (built-in synthetic or recorded) asks the chip to run.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace swpu {

// ---------------------------------------------------------------------------------------------
// Network description
// ---------------------------------------------------------------------------------------------
enum class LayerOp { Conv, FC, BatchNorm, ReLU, MaxPool, AvgPool, Add, Loss };
const char* to_string(LayerOp op);

// One layer of the network graph. Weighted layers (Conv, FC) carry the conv geometry; an FC layer
// of F inputs and fc_block B is expressed in conv form with C = ceil(F/B) "channels", R = 1,
// S = B, H = 1, W = B, stride 1, pad 0, so P = Q = 1 (a line is one block of B inputs).
struct Layer {
    std::string name;
    LayerOp op = LayerOp::Conv;
    std::vector<int> inputs;  // indices of producer layers in Network::layers; -1 = network input
    // Output tensor of this layer, per image.
    int out_c = 0, out_h = 0, out_w = 0;
    // Input tensor (of the first input), per image.
    int in_c = 0, in_h = 0, in_w = 0;
    // Conv geometry (Conv, FC in conv form) and pooling window (MaxPool, AvgPool: R = S = kernel).
    int K = 0, C = 0, R = 1, S = 1, H = 0, W = 0, stride = 1, pad = 0, P = 0, Q = 0;
    int fc_in = 0;  // FC only: the real input count F (C*S may exceed it by padding the last block)

    bool weighted() const { return op == LayerOp::Conv || op == LayerOp::FC; }
    // MACs of the dense layer for one image (FF; BP and WG have the same count, BP of a strided
    // conv included: it is counted as the FF's MACs, the useful products).
    int64_t macs() const;
    int64_t params() const;  // weights (+ bias for FC, + gamma/beta for BN)
    int64_t out_elems() const { return int64_t(out_c) * out_h * out_w; }
    int64_t in_elems() const { return int64_t(in_c) * in_h * in_w; }
};

struct Network {
    std::string name;   // "resnet18-cifar" or "resnet18-imagenet"
    double width = 1.0; // channel multiplier
    int num_classes = 0;
    int in_c = 0, in_h = 0, in_w = 0;
    int fc_block = 16;
    std::vector<Layer> layers;  // topological (forward) order

    std::vector<int> weighted_layers() const;  // indices of Conv/FC layers in forward order
    int find(const std::string& layer_name) const;  // -1 when absent
    int64_t total_macs() const;   // forward, dense, one image
    int64_t total_params() const; // conv + fc weights + fc bias + BN gamma/beta
};

// Builds ResNet-18. Layer names follow torchvision: conv1, layer1.0.conv1, ..., layer2.0.downsample,
// fc (a downsample conv comes after its block's conv2). BN/ReLU/Add/pool layers are named after the
// conv they follow, e.g. "layer1.0.bn1", "layer1.0.relu1", "layer1.0.add", "maxpool", "avgpool".
// Throws std::invalid_argument for an unknown name or bad parameters.
Network build_network(const std::string& name, double width = 1.0, int num_classes = -1,
                      int in_h = -1, int in_w = -1, int fc_block = 16);

// ---------------------------------------------------------------------------------------------
// Masks and bitmaps
// ---------------------------------------------------------------------------------------------
enum class PruneMode { Dense, Structured, Unstructured, ShapeOnly, LineOnly, SubStructured };
const char* to_string(PruneMode m);
bool parse_prune_mode(const std::string& s, PruneMode& out);

// Effective weight mask of one weighted layer, M[k][c][r][s], stored as one S-bit word per
// kernel row (k, c, r): bit s set = weight kept. S <= 64. Works for every pruning mode.
struct WeightMask {
    int K = 0, C = 0, R = 0, S = 0;
    std::vector<uint64_t> rows;  // index (k*C + c)*R + r

    void resize(int k, int c, int r, int s, bool keep_all);
    uint64_t row(int k, int c, int r) const { return rows[(size_t(k) * C + c) * R + r]; }
    uint64_t& row(int k, int c, int r) { return rows[(size_t(k) * C + c) * R + r]; }
    bool kept(int k, int c, int r, int s) const { return (row(k, c, r) >> s) & 1u; }
    int64_t kept_count() const;
    double density() const;  // kept / (K*C*R*S)
};

// Non-zero bitmap of a [N][C][H][W] tensor; each (n, c, h) row is W bits in ceil(W/64) words.
struct Bitmap4D {
    int N = 0, C = 0, H = 0, W = 0;
    int words_per_row = 0;
    std::vector<uint64_t> bits;

    void resize(int n, int c, int h, int w);
    const uint64_t* row(int n, int c, int h) const {
        return &bits[((size_t(n) * C + c) * H + h) * words_per_row];
    }
    uint64_t* row(int n, int c, int h) { return &bits[((size_t(n) * C + c) * H + h) * words_per_row]; }
    bool get(int n, int c, int h, int w) const { return (row(n, c, h)[w >> 6] >> (w & 63)) & 1u; }
    void set(int n, int c, int h, int w, bool v);
    int64_t count() const;
    double density() const;
};

// ---------------------------------------------------------------------------------------------
// Training iterations
// ---------------------------------------------------------------------------------------------
// Real values of one weighted layer recorded in a version 2 trace, as FP16 bit patterns in conv form
// (FC: C = ceil(F/B) blocks of B, the padding of the last block zero). An empty vector: not
// recorded (functional mode draws random values for it).
struct LayerTensors {
    std::vector<uint16_t> weight;    // [K][C][R][S]
    std::vector<uint16_t> input;     // [N][C][H][W]; zero where input_nonzero is 0 (checked)
    std::vector<uint16_t> grad_out;  // [N][K][P][Q]; zero where grad_nonzero is 0 (checked)
};

// What one weighted layer asks of the chip in one iteration.
struct LayerWork {
    int layer = -1;           // index into Network::layers
    WeightMask mask;          // effective weight mask (conv form for FC)
    Bitmap4D input_nonzero;   // [N][C][H][W] of the layer's input (FC: [N][C'][1][B] conv form)
    Bitmap4D grad_nonzero;    // [N][K][P][Q] of the gradient of the layer's output
    std::shared_ptr<const LayerTensors> tensors;  // version 2 traces: recorded values, else null
};

struct Iteration {
    int index = 0;
    bool mask_update = false;    // masks recomputed at this step: the reorder unit re-runs
    double loss = -1, accuracy = -1;  // recorded values, -1 when unknown
    std::vector<LayerWork> layers;    // one per weighted layer, forward order
};

struct Trace {
    Network net;
    int batch = 1;
    PruneMode mode = PruneMode::SubStructured;
    std::string source;        // "built-in synthetic" or the trace directory
    std::vector<Iteration> iterations;
};

// Parameters of the built-in synthetic trace (config section "workload").
// The synthetic workload: the config's `workload` section (docs/config.md gives every default and
// its reason) and the generator's input, one struct. The seed is the simulation's (simulation.seed).
struct WorkloadParams {
    std::string network = "resnet18-cifar";
    double width = 1.0;
    int batch = 1;
    int iterations = 1;
    int update_interval = 100;     // iteration i has mask_update when i % update_interval == 0
    std::string pruning = "sub-structured";  // a PruneMode's name (mode())
    double weight_sparsity = 0.7;  // target fraction of pruned weights per conv/fc layer
    double shape_fraction = 0.5;   // sub-structured: share of the sparsity taken by shape pruning
    // line_families, family_flip, mask_churn: fitted to a Fashion-MNIST trace (docs/workload.md)
    int line_families = 1;         // sub-structured/line-only: filters share line masks within a family
    double family_flip = 0.42;     // probability that a filter's line bit differs from its family's
    double mask_churn = 0.0918;    // fraction of kept groups swapped at each later mask update
    double shape_churn = 0.0442;   // the same for shape groups (sub-structured, shape-only)
    double shape_row_exponent = 0.8937;  // kept shape groups fill d^a of the rows (< 0: uniform)
    bool prune_first_layer = false;
    double input_density = -1;     // < 0: per-layer defaults (see docs/workload.md)
    double grad_density = -1;
    int fc_block = 16;

    PruneMode mode() const;  // the pruning mode named by `pruning`; throws std::invalid_argument
};

// Builds a seeded synthetic trace on the built-in network p.network at p.width: same parameters and
// seed, same trace on every machine.
Trace make_synthetic_trace(const WorkloadParams& p, uint64_t seed);
// Same model on a caller-built network (any width or input size, e.g. from build_network);
// p.network, p.width and p.fc_block are not used (net.fc_block is). Throws std::invalid_argument.
Trace make_synthetic_trace(const WorkloadParams& p, const Network& net, uint64_t seed);

// Default non-zero density of the output tensor of layer `producer` (-1 = the network input)
// used by the synthetic trace when input_density / grad_density < 0 (table in docs/workload.md).
double synthetic_default_density(const Network& net, int producer);
// Default non-zero density of the output gradient of weighted layer `layer` (grad_density < 0).
double synthetic_default_grad_density(const Network& net, int layer);

// Seeded, portable random helpers shared by the synthetic generator and the trace loader.
// Seed of an independent stream (splitmix64 mixing of `seed` and the stream coordinates a, b, c).
uint64_t derive_seed(uint64_t seed, uint64_t a, uint64_t b = 0, uint64_t c = 0);
// Fills `bm` (already sized) with i.i.d. bits, each set with probability `density` in [0, 1],
// drawn in (n, c, h, w) order from std::mt19937_64(seed). When valid_cw >= 0 (FC conv form,
// H == 1) the bits with c * W + w >= valid_cw (padding of the last block) stay zero, undrawn.
void fill_bernoulli(Bitmap4D& bm, double density, uint64_t seed, int64_t valid_cw = -1);

// Error while reading a trace: names the file, the layer (may be empty) and the field.
struct TraceError {
    std::string file, layer, field, reason;
    std::string message() const;
};

// Reads a trace directory (docs/trace-format.md). Throws TraceError. A trace whose masks and
// bitmaps would need more than max_memory_bytes (trace_memory_bytes) is refused before anything
// is allocated.
Trace load_trace(const std::string& dir, uint64_t seed, uint64_t max_memory_bytes = uint64_t(8) << 30);

// Bytes the masks and bitmaps of `iterations` iterations of `net` at `batch` take in memory
// (saturates at UINT64_MAX).
uint64_t trace_memory_bytes(const Network& net, int batch, uint64_t iterations);
// Empty when trace_memory_bytes(...) <= max_bytes, else the refusal with the estimate.
std::string trace_memory_check(const Network& net, int batch, uint64_t iterations, uint64_t max_bytes);

}  // namespace swpu
