// Chip configuration schema, loader and validation.
#include "swpu/config.hpp"
#include "swpu/json_strict.hpp"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace swpu {
namespace {

using nlohmann::json;

enum class Kind { Int, UInt, Double, OptDouble, Bool, String };

struct Field {
    std::string path;
    Kind kind;
    std::string status;  // FOUND or ASSUMED
    std::string unit;
    std::string doc;
    std::string reason;
    double lo = -1e300, hi = 1e300;
    bool pow2 = false;
    std::vector<std::string> choices;
    std::function<json(const RunConfig&)> get;
    std::function<void(RunConfig&, const json&)> set;
};

template <typename Acc>
Field make(std::string path, Kind kind, std::string status, std::string unit, std::string doc,
           std::string reason, Acc acc) {
    Field f;
    f.path = std::move(path);
    f.kind = kind;
    f.status = std::move(status);
    f.unit = std::move(unit);
    f.doc = std::move(doc);
    f.reason = std::move(reason);
    f.get = [acc](const RunConfig& c) -> json {
        auto& v = acc(const_cast<RunConfig&>(c));
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::optional<double>>) {
            return v ? json(*v) : json(nullptr);
        } else {
            return json(v);
        }
    };
    f.set = [acc](RunConfig& c, const json& j) {
        auto& v = acc(c);
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::optional<double>>) {
            if (j.is_null()) v.reset(); else v = j.get<double>();
        } else {
            v = j.get<T>();
        }
    };
    return f;
}


#define ACC(expr) [](RunConfig& c) -> auto& { return c.expr; }

std::vector<Field> build_schema() {
    std::vector<Field> s;
    auto add = [&](Field f, double lo, double hi, bool pow2 = false,
                   std::vector<std::string> choices = {}) {
        f.lo = lo;
        f.hi = hi;
        f.pow2 = pow2;
        f.choices = std::move(choices);
        s.push_back(std::move(f));
    };
    // chip
    add(make("chip.name", Kind::String, "ASSUMED", "", "Name echoed in reports.", "Free text.",
             ACC(chip.name)), 0, 0);
    add(make("chip.process_nm", Kind::Int, "FOUND", "nm", "Technology node.",
             "Paper: synthesized in 28 nm CMOS. Informational; the energy table is for this node.",
             ACC(chip.process_nm)), 1, 1000);
    add(make("chip.voltage", Kind::Double, "FOUND", "V", "Supply voltage of the run.",
             "Paper: 0.56 V to 1.0 V. Default 1.0 V, the maximum-frequency point.",
             ACC(chip.voltage)), 0.0, 10.0);
    add(make("chip.frequency_mhz", Kind::OptDouble, "ASSUMED", "MHz",
             "Clock frequency; null picks f_max(voltage). Refused above f_max(voltage).",
             "A chip runs at most at the frequency its supply allows.", ACC(chip.frequency_mhz)),
        1.0, 100000.0);
    add(make("chip.v_min", Kind::Double, "FOUND", "V", "Lowest supported supply voltage.",
             "Paper: 0.56 V.", ACC(chip.v_min)), 0.1, 10.0);
    add(make("chip.v_max", Kind::Double, "FOUND", "V", "Highest supported supply voltage.",
             "Paper: 1.0 V.", ACC(chip.v_max)), 0.1, 10.0);
    add(make("chip.v_nom", Kind::Double, "ASSUMED", "V",
             "Nominal voltage: the anchor of f_max and of the energy table.",
             "The paper's 675 MHz is quoted at 1.0 V; energies are tabulated there too.",
             ACC(chip.v_nom)), 0.1, 10.0);
    add(make("chip.f_max_mhz_at_vnom", Kind::Double, "FOUND", "MHz",
             "Maximum frequency at v_nom.", "Paper: 675 MHz at 1.0 V.",
             ACC(chip.f_max_mhz_at_vnom)), 1.0, 100000.0);
    add(make("chip.vth", Kind::Double, "ASSUMED", "V", "Threshold voltage of the alpha-power law.",
             "Typical 28 nm HPC/LP devices: 0.35-0.45 V; 0.40 V gives f(0.56 V) ~ 216 MHz.",
             ACC(chip.vth)), 0.0, 1.0);
    add(make("chip.alpha", Kind::Double, "ASSUMED", "", "Velocity-saturation exponent of the alpha-power law f ~ (V-Vth)^a / V.",
             "Sakurai-Newton alpha of short-channel devices is 1.2-1.4.", ACC(chip.alpha)), 1.0, 2.0);
    // PE array
    add(make("pe_array.groups", Kind::Int, "ASSUMED", "", "PE groups G: each holds one filter (FF, WG) or one input channel (BP) of a cluster.",
             "16 groups x 16 lanes = 256 FP16 MACs, an edge-training array size (GANPU, LNPU class).",
             ACC(pe_array.groups)), 1, 64);
    add(make("pe_array.lanes", Kind::Int, "ASSUMED", "", "MAC lanes L per group.",
             "See pe_array.groups; must be a multiple of compaction.segments.",
             ACC(pe_array.lanes)), 1, 64);
    add(make("pe_array.mult_format", Kind::String, "ASSUMED", "", "Multiplier operand format: 'fp16', or 'fp8' (8-bit operands: a cheaper multiplier, half the buffer and DRAM bytes of every operand and stored result; accumulation stays as acc_format).",
             "The 126.04 TFLOPS/W peak is compared with GANPU's FP16 figure, so FP16 operands; 'fp8' is for baselines of FP8 processors (LNPU, Trainer's FP8 mode).",
             ACC(pe_array.mult_format)), 0, 0, false, {"fp16", "fp8"});
    add(make("pe_array.acc_format", Kind::String, "ASSUMED", "", "Accumulator format.",
             "FP32 accumulation is the usual choice for FP16 training.",
             ACC(pe_array.acc_format)), 0, 0, false, {"fp32"});
    add(make("pe_array.multiplier_latency", Kind::Int, "ASSUMED", "cycles", "Pipeline stages of the FP16 multipliers (cycle engine).",
             "An FP16 multiplier closes 675 MHz in 28 nm with 2-3 stages; 3 is the safe choice.",
             ACC(pe_array.multiplier_latency)), 1, 16);
    add(make("pe_array.reduce_latency", Kind::Int, "ASSUMED", "cycles", "Pipeline stages of a group's WG adder tree (cycle engine).",
             "log2(16 lanes) = 4 FP32 adder levels, one per stage.", ACC(pe_array.reduce_latency)), 1, 16);
    add(make("pe_array.accumulator_sets", Kind::Int, "ASSUMED", "", "Accumulator register files per group: a window's results write back from one while the next window accumulates in another (cycle engine).",
             "Double buffering hides the write-back behind the next window's compute.", ACC(pe_array.accumulator_sets)), 1, 4);
    add(make("pe_array.input_fifo_depth", Kind::Int, "ASSUMED", "packets", "Lane-packet FIFO between the compaction network and the PE array (cycle engine).",
             "Two entries: the minimum for full throughput with a registered ready.", ACC(pe_array.input_fifo_depth)), 1, 64);
    add(make("pe_array.group_sync", Kind::String, "ASSUMED", "", "How the G groups of a cluster advance: 'lockstep' (every group steps through the union of the cluster's lines and positions together, one shared compaction per step) or 'decoupled' (the cluster's lines are read once and broadcast into per-group operand FIFOs; each group steps through its own lines and positions through its own compaction network and may run ahead of the slowest by group_fifo_depth lines).",
             "The abstract does not say how the workload is balanced across groups; lockstep is the simpler reading (one network), decoupled the alternative a designer would weigh (G networks, less idling). docs/architecture.md.",
             ACC(pe_array.group_sync)), 0, 0, false, {"lockstep", "decoupled"});
    add(make("pe_array.group_fifo_depth", Kind::Int, "ASSUMED", "lines", "Decoupled groups: lines a group's operand FIFO holds, i.e. how far the fastest group may run ahead of the slowest. The cycle engine sizes the queues that feed the FIFOs (line and weight reads and their answers, the line credits) and the output buffer's request queue (WG read-modify-writes) to at least this depth.",
             "Four line registers per group, as the DBL controller's line_buffers of the lockstep machine.", ACC(pe_array.group_fifo_depth)), 1, 1024);
    add(make("pe_array.bp_orientation", Kind::String, "ASSUMED", "", "What a group holds in BP. 'channel': an input channel (the cluster steps through the union of G channels' masks over all K filters' output-gradient lines, which are shared by the groups). 'filter': FF's filter cluster (each group reads its own filter's output-gradient rows into a group line store, steps through FF's line and position union, products return to their dI positions through each group's own network and switches, and an adder tree sums the G groups' partial dI of an input channel, which accumulates across clusters in the output buffer in FP32). Lockstep groups only.",
             "The abstract does not say how BP uses the sub-structured masks; 'channel' reuses FF's datapath unchanged, 'filter' keeps the clusters the reorder unit formed (the masks are grouped by filter) at the price of per-group operand lines, a cross-group reduction and partial-sum read-modify-writes. docs/architecture.md.",
             ACC(pe_array.bp_orientation)), 0, 0, false, {"channel", "filter"});
    add(make("pe_array.bp_line_sets", Kind::Int, "ASSUMED", "windows", "Filter-oriented BP: windows of output-gradient rows a group's line store holds (R rows of its filter per window).",
             "Two: the next window's rows load while the current window computes, as a double buffer.", ACC(pe_array.bp_line_sets)), 1, 16);
    // compaction network
    add(make("compaction.window", Kind::Int, "ASSUMED", "positions", "Compaction window N: output positions considered per step.",
             "64 = 4 x 16 lanes: dense work takes N/L = 4 cycles per step, room to pack sparse rows. Power of two (log network), at most 64.",
             ACC(compaction.window)), 1, 64, true);
    add(make("compaction.segments", Kind::Int, "ASSUMED", "", "Disconnected segments D of the log-routing network (each compacts window/D inputs onto lanes/D outputs).",
             "4 segments of 16 inputs: log2(16) = 4 switch stages, short wires ('spatial disconnect').",
             ACC(compaction.segments)), 1, 64, true);
    add(make("compaction.routing", Kind::String, "ASSUMED", "", "'log': log-stage compaction with bi-directional switches (SWPU). 'crossbar': an N x L crossbar instead (one segment, no packing loss, wire-dominated energy): with lockstep groups one crossbar per cluster, its products returned to each group's positions through crossbar paths (the ablation of technique 3); with decoupled groups (pe_array.group_sync) one crossbar per group matching the group's element-indexed weights (value + index words) to its operands (the fine-grained machines). Its select tree of log2(window) levels is pipelined like the log stages: log2(window) cycles.",
             "Baselines are configs of the same machine.", ACC(compaction.routing)), 0, 0, false, {"log", "crossbar"});
    add(make("compaction.step_fifo_depth", Kind::Int, "ASSUMED", "steps", "Steps (and their weight words) the DBL controller may issue ahead of the network (cycle engine).",
             "Covers the weight buffer's read latency plus a step of slack.", ACC(compaction.step_fifo_depth)), 1, 64);
    // reorder unit
    add(make("reorder_unit.enabled", Kind::Bool, "FOUND", "", "Hamming-distance clustering reorders filters (FF/WG) or channels (BP) into clusters of G; off: natural order.",
             "Paper technique 1.", ACC(reorder_unit.enabled)), 0, 0);
    add(make("reorder_unit.hamming_units", Kind::Int, "ASSUMED", "", "XOR/popcount units working in parallel.",
             "Small next to the MAC array; clustering runs only when masks change.",
             ACC(reorder_unit.hamming_units)), 1, 1024);
    add(make("reorder_unit.hamming_width_bits", Kind::Int, "ASSUMED", "bits", "Mask bits one unit compares per cycle.",
             "One buffer word.", ACC(reorder_unit.hamming_width_bits)), 8, 4096, true);
    // DBL controller
    add(make("dbl.enabled", Kind::Bool, "FOUND", "", "Detect-before-load: only lines/positions some group of the cluster needs (and with a valid operand) are read; off: every line is read and zero-detected, dropped steps cost a fetch cycle.",
             "Paper technique 2.", ACC(dbl.enabled)), 0, 0);
    add(make("dbl.line_buffers", Kind::Int, "ASSUMED", "lines", "Line registers in front of the network: lines read ahead of the step that uses them (cycle engine).",
             "A line read's round trip (request register, bank, read latency, response register) is 4 cycles: 4 registers keep one line per cycle flowing when lines are short.", ACC(dbl.line_buffers)), 1, 64);
    add(make("dbl.mask_words_per_cycle", Kind::Int, "ASSUMED", "words", "64-bit mask words the DBL controller reads per cycle when it loads a cluster (cycle engine).",
             "A 256-bit metadata port.", ACC(dbl.mask_words_per_cycle)), 1, 1024);
    // buffers
    auto buf = [&](const std::string& name, auto kib, auto banks, auto width, auto latency, const std::string& what) {
        add(make("buffers." + name + ".kib", Kind::Int, "ASSUMED", "KiB", "Capacity of the " + what + " buffer (two halves when double buffering).",
                 "Edge training chips carry 100-500 KB of global SRAM in total.", kib), 1, 65536);
        add(make("buffers." + name + ".banks", Kind::Int, "ASSUMED", "", "Banks of the " + what + " buffer.",
                 "Enough banks to feed one access per bank per cycle.", banks), 1, 256, true);
        add(make("buffers." + name + ".width_bits", Kind::Int, "ASSUMED", "bits", "Bits per access of the " + what + " buffer.",
                 "256 bits = 16 FP16 values, one lane-row.", width), 16, 4096, true);
        add(make("buffers." + name + ".read_latency", Kind::Int, "ASSUMED", "cycles", "Cycles from a bank access of the " + what + " buffer to its data at the requester (cycle engine).",
                 "A 28 nm SRAM macro reads in one cycle at 675 MHz.", latency), 1, 16);
    };
    buf("weight", ACC(buffers.weight.kib), ACC(buffers.weight.banks), ACC(buffers.weight.width_bits), ACC(buffers.weight.read_latency), "weight");
    buf("activation", ACC(buffers.activation.kib), ACC(buffers.activation.banks), ACC(buffers.activation.width_bits), ACC(buffers.activation.read_latency), "activation / output-gradient");
    buf("output", ACC(buffers.output.kib), ACC(buffers.output.banks), ACC(buffers.output.width_bits), ACC(buffers.output.read_latency), "output / gradient");
    // DRAM + DMA
    add(make("dram.bandwidth_gbps", Kind::Double, "ASSUMED", "GB/s", "DRAM bandwidth.",
             "LPDDR4-class x32 channel: 12.8 GB/s.", ACC(dram.bandwidth_gbps)), 0.01, 10000);
    add(make("dram.latency_ns", Kind::Double, "ASSUMED", "ns", "DRAM access latency per transaction.",
             "LPDDR4 row miss plus controller: ~100 ns.", ACC(dram.latency_ns)), 0, 100000);
    add(make("dram.burst_bytes", Kind::Int, "ASSUMED", "bytes", "DRAM burst: transfers are rounded up to whole bursts.",
             "LPDDR4 BL16 x 32 bit = 64 B.", ACC(dram.burst_bytes)), 1, 4096, true);
    add(make("dma.max_transfer_bytes", Kind::Int, "ASSUMED", "bytes", "Largest TLM transaction the DMA issues; longer tiles are split.",
             "Bounds a transaction's duration; each transaction pays the DRAM latency once.",
             ACC(dma.max_transfer_bytes)), 16, 1 << 24, true);
    add(make("dma.double_buffering", Kind::Bool, "ASSUMED", "", "Overlap the next tile's load with the current tile's compute.",
             "Standard for accelerators with global buffers.", ACC(dma.double_buffering)), 0, 0);
    add(make("memory.activation_compression", Kind::Bool, "ASSUMED", "", "Activations/gradients in DRAM are stored as a non-zero bitmap plus the non-zero FP16 values.",
             "Zero-skipping training chips keep ReLU sparsity compressed off chip.",
             ACC(memory.activation_compression)), 0, 0);
    add(make("memory.weight_index_bits", Kind::Int, "ASSUMED", "bits", "Index bits per non-zero weight in the element-compressed (unstructured) weight format.",
             "Relative indexing within a kernel row.", ACC(memory.weight_index_bits)), 1, 32);
    // which zeros each pass skips
    auto sk = [&](const std::string& name, auto acc, const std::string& doc) {
        add(make("skip." + name, Kind::Bool, "ASSUMED", "", doc + " Off: the machine computes them (a zero operand is multiplied like any other), reading what the skipping machine would not.",
                 "SWPU skips every zero it knows of; the baselines of earlier processors skip a subset per pass (docs/baselines.md).", acc), 0, 0);
    };
    sk("ff_weights", ACC(skip.ff_weights), "FF skips pruned weights.");
    sk("ff_activations", ACC(skip.ff_activations), "FF skips zero input activations.");
    sk("bp_weights", ACC(skip.bp_weights), "BP skips pruned weights.");
    sk("bp_gradients", ACC(skip.bp_gradients), "BP skips zero output gradients.");
    sk("wg_weights", ACC(skip.wg_weights), "WG computes no gradient of a pruned weight.");
    sk("wg_activations", ACC(skip.wg_activations), "WG skips zero input activations.");
    sk("wg_gradients", ACC(skip.wg_gradients), "WG skips zero output gradients.");
    // vector unit
    add(make("vector_unit.fuse_bn_relu", Kind::Bool, "ASSUMED", "", "BN and ReLU fused into the conv: the BN statistics accumulate during the conv's write-back and normalize + ReLU apply as the next layer loads its input (FF), the BN backward sums during the BP write-back; their element-ops still run on the vector unit, but their tensors make no DRAM round trip of their own.",
             "The abstract does not say; fusing is what an edge training chip's designers would weigh (Trainer reformulates BN for this reason). Off by default: the unfused chip is the conservative reading.",
             ACC(vector_unit.fuse_bn_relu)), 0, 0);
    add(make("vector_unit.fuse_sgd", Kind::Bool, "ASSUMED", "", "The SGD update of a layer runs in its WG epilogue while the weight gradients are still in the output buffer: they are neither written to DRAM by WG nor read back by the update (weights and momentum still make their round trip).",
             "The abstract does not say; an edge training chip's designers would weigh it (it removes 8 bytes of DRAM traffic per kept weight). Off by default: the conservative reading.",
             ACC(vector_unit.fuse_sgd)), 0, 0);
    auto vu = [&](const std::string& name, auto acc, int lo, const std::string& doc, const std::string& reason) {
        add(make("vector_unit." + name, Kind::Int, "ASSUMED", name == "lanes" ? "" : "ops/element", doc, reason, acc), lo, 1 << 20);
    };
    vu("lanes", ACC(vector_unit.lanes), 1, "SIMD lanes of the vector unit (BN, ReLU, pooling, add, loss, SGD, mask update).", "One FP32 op per lane per cycle.");
    vu("bn_forward_ops", ACC(vector_unit.bn_forward_ops), 0, "Ops per element of BN forward (statistics + normalize).", "mean, variance, scale, shift.");
    vu("bn_backward_ops", ACC(vector_unit.bn_backward_ops), 0, "Ops per element of BN backward.", "Two reductions plus the element update.");
    vu("relu_ops", ACC(vector_unit.relu_ops), 0, "Ops per element of ReLU (forward or backward mask).", "A compare/select.");
    vu("pool_ops", ACC(vector_unit.pool_ops), 0, "Ops per window element of pooling.", "A compare or an add.");
    vu("add_ops", ACC(vector_unit.add_ops), 0, "Ops per element of the residual add.", "An add.");
    vu("loss_ops", ACC(vector_unit.loss_ops), 0, "Ops per logit of softmax cross-entropy.", "exp, sum, divide, subtract.");
    vu("sgd_ops", ACC(vector_unit.sgd_ops), 0, "Ops per unpruned weight of the SGD-with-momentum update.", "Momentum, decay, update.");
    vu("mask_update_ops", ACC(vector_unit.mask_update_ops), 0, "Ops per weight of a mask update (L2 norms of groups, threshold compare).", "square, add, compare.");
    // simulation
    add(make("simulation.engine", Kind::String, "ASSUMED", "", "'cycle': the clocked SystemC units (one clock; cycles emerge from stalls, back-pressure, bank conflicts and latencies). 'fast': the step-level model (same plan, cycles from per-step costs plus the cycle engine's fill/drain rules), for sweeps.",
             "The fast engine is checked against the cycle engine on a random corpus (docs/architecture.md).", ACC(simulation.engine)), 0, 0, false, {"cycle", "fast"});
    add(make("simulation.mode", Kind::String, "ASSUMED", "", "'timing': counts only. 'functional': the datapath also computes FP16 x FP16 -> FP32 values; on the cycle engine the DMA's TLM payloads carry the bytes of the DRAM formats and the units compute on what they delivered.",
             "Both run the same schedule and give identical counts.", ACC(simulation.mode)), 0, 0, false, {"timing", "functional"});
    add(make("simulation.time_skip", Kind::Bool, "ASSUMED", "", "Fast engine: advance SystemC time once per tile instead of once per clock cycle (the cycle engine always ticks).",
             "Exact: the cycles skipped are the ones ticking would give (tested).", ACC(simulation.time_skip)), 0, 0);
    add(make("simulation.seed", Kind::UInt, "ASSUMED", "", "Seed of synthetic masks and bitmaps.", "Same seed, same run.",
             ACC(simulation.seed)), 0, 1.8e19);
    // workload
    add(make("workload.network", Kind::String, "ASSUMED", "", "Built-in network of the synthetic trace (without --trace).",
             "The paper's benchmark network; CIFAR form for speed.", ACC(workload.network)), 0, 0, false, {"resnet18-cifar", "resnet18-imagenet"});
    add(make("workload.width", Kind::Double, "ASSUMED", "", "Channel multiplier of the network.", "1.0 = standard ResNet-18.",
             ACC(workload.width)), 0.01, 8.0);
    add(make("workload.batch", Kind::Int, "ASSUMED", "images", "Images per training iteration.", "Edge training uses small batches.",
             ACC(workload.batch)), 1, 4096);
    add(make("workload.iterations", Kind::Int, "ASSUMED", "", "Training iterations simulated.", "One iteration shows every pass.",
             ACC(workload.iterations)), 1, 1000000);
    add(make("workload.update_interval", Kind::Int, "ASSUMED", "iterations", "Masks are recomputed (and the reorder unit re-runs) every this many iterations.",
             "Dynamic pruning; iteration 0 always clusters.", ACC(workload.update_interval)), 1, 1000000);
    add(make("workload.pruning", Kind::String, "FOUND", "", "Pruning mode of the synthetic masks.",
             "Paper: sub-structured = shape-wise + line-wise.", ACC(workload.pruning)), 0, 0, false,
        {"dense", "structured", "unstructured", "shape-only", "line-only", "sub-structured"});
    add(make("workload.weight_sparsity", Kind::Double, "ASSUMED", "", "Target fraction of pruned weights per pruned layer.",
             "Sub-structured pruning keeps ResNet-18 accuracy at high ratios; 0.7 is a mid-training point.",
             ACC(workload.weight_sparsity)), 0.0, 0.999);
    add(make("workload.shape_fraction", Kind::Double, "ASSUMED", "", "Share of the (log-)density taken by shape pruning in sub-structured mode.",
             "Even split between the two granularities.", ACC(workload.shape_fraction)), 0.0, 1.0);
    add(make("workload.line_families", Kind::Int, "ASSUMED", "", "Latent families of filters sharing line masks (sub-structured, line-only).",
             "Fitted to a Fashion-MNIST trace (docs/workload.md): one family with heavy flips fits its line masks best.", ACC(workload.line_families)), 1, 1 << 20);
    add(make("workload.family_flip", Kind::Double, "ASSUMED", "", "Probability that a filter's line bit differs from its family's.",
             "Fitted to a Fashion-MNIST trace (docs/workload.md): weakly correlated line masks.", ACC(workload.family_flip)), 0.0, 0.5);
    add(make("workload.mask_churn", Kind::Double, "ASSUMED", "", "Fraction of the kept groups (lines, shape groups, filters or elements) swapped for pruned ones at each mask update after the first.",
             "Masks evolve between updates; fitted to a Fashion-MNIST trace (docs/workload.md).", ACC(workload.mask_churn)), 0.0, 1.0);
    add(make("workload.shape_churn", Kind::Double, "ASSUMED", "", "Fraction of the kept shape groups swapped for pruned ones at each mask update after the first (sub-structured, shape-only).",
             "Fitted to a Fashion-MNIST trace (docs/workload.md).", ACC(workload.shape_churn)), 0.0, 1.0);
    add(make("workload.shape_row_exponent", Kind::Double, "ASSUMED", "", "Conv shape masks: the kept (c, r, s) groups fill d_shape^a of the kernel rows (c, r); negative: groups drawn uniformly.",
             "Real shape pruning removes whole kernel rows more often than chance; fitted to a Fashion-MNIST trace (docs/workload.md).", ACC(workload.shape_row_exponent)), -1.0, 1.0);
    add(make("workload.prune_first_layer", Kind::Bool, "ASSUMED", "", "Prune the first conv too.",
             "Usually kept dense: 3 input channels, accuracy-critical.", ACC(workload.prune_first_layer)), 0, 0);
    add(make("workload.input_density", Kind::Double, "ASSUMED", "", "Density of non-zero input activations of every layer (the network's input image stays dense); negative: per-layer defaults (docs/workload.md).",
             "Published ReLU sparsity of ResNet-18 training.", ACC(workload.input_density)), -1.0, 1.0);
    add(make("workload.grad_density", Kind::Double, "ASSUMED", "", "Density of non-zero output gradients; negative: per-layer defaults.",
             "ReLU backward zeroes the same positions as forward.", ACC(workload.grad_density)), -1.0, 1.0);
    add(make("workload.fc_block", Kind::Int, "ASSUMED", "weights", "FC line length: a line of an FC layer is this many consecutive inputs.",
             "Matches the lane count; at most 64.", ACC(workload.fc_block)), 1, 64);
    // energy reference table
    auto en = [&](const std::string& name, auto acc, const std::string& unit, const std::string& doc,
                  const std::string& reason, double lo = 0.0, double hi = 1e6) {
        add(make("energy." + name, Kind::Double, "ASSUMED", unit, doc, reason, acc), lo, hi);
    };
    en("fp16_mult_pj", ACC(energy.fp16_mult_pj), "pJ", "FP16 multiply.", "Horowitz ISSCC 2014 (45 nm, 1.1 pJ) scaled to 28 nm, 1.0 V.");
    en("fp8_mult_pj", ACC(energy.fp8_mult_pj), "pJ", "FP8 multiply (pe_array.mult_format = fp8).", "A 4x4-bit mantissa product plus an exponent add: about 0.3x the FP16 multiplier (Horowitz 2014 8-bit multiply 0.2 pJ at 45 nm; scaled to 28 nm with the exponent logic).");
    en("fp32_add_pj", ACC(energy.fp32_add_pj), "pJ", "FP32 add (accumulate, adder tree).", "Horowitz 2014 (0.9 pJ at 45 nm) scaled to 28 nm.");
    en("acc_rf_pj", ACC(energy.acc_rf_pj), "pJ", "Accumulator register-file read+write per MAC.", "Small RF: 0.02-0.1 pJ per access.");
    en("switch_stage_pj", ACC(energy.switch_stage_pj), "pJ", "One FP16 operand through one stage of the log network.", "16 2:1 muxes plus a short local wire.");
    en("switch_hop_pj", ACC(energy.switch_hop_pj), "pJ", "Extra energy of a switch set to shift (toggling select and longer wire).", "A fraction of a stage traversal.");
    en("scatter_stage_pj", ACC(energy.scatter_stage_pj), "pJ", "One FP32 result through one stage in reverse (bi-directional switches).", "Twice a FP16 traversal: 32-bit results.");
    en("crossbar_route_pj", ACC(energy.crossbar_route_pj), "pJ", "One operand through a group's N x L crossbar (crossbar routing) at N = 64 input ports; the figure scales with compaction.window / 64 (its wires grow with its ports).", "Wire-dominated: 16 bits x ~0.2 mm x 0.15 pJ/bit/mm plus select decode, for a 64-input crossbar.");
    en("index_read_pj", ACC(energy.index_read_pj), "pJ", "Per-weight index read (crossbar routing).", "Small RF access.");
    en("zero_detect_pj", ACC(energy.zero_detect_pj), "pJ", "Zero detection of one FP16 operand.", "A 15-input NOR tree.");
    en("mask_read_pj", ACC(energy.mask_read_pj), "pJ", "One 64-bit mask word read by the DBL controller.", "Small SRAM/RF, 64 bits.");
    en("hamming_op_pj", ACC(energy.hamming_op_pj), "pJ", "One XOR/popcount unit-operation (hamming_width_bits wide).", "~2 fJ per bit for XOR plus popcount tree at 256 bits.");
    en("vector_op_pj", ACC(energy.vector_op_pj), "pJ", "One FP32 element-op of the vector unit.", "Mix of FP32 adds and multiplies.");
    en("clock_pj_per_cycle", ACC(energy.clock_pj_per_cycle), "pJ", "Clock tree and control per cycle of the run.", "Clock power is 10-25% of an accelerator's dynamic power.");
    en("weight_buffer_access_pj", ACC(energy.weight_buffer_access_pj), "pJ", "One weight-buffer access (width_bits).", "CACTI-class 28 nm: 16 KB bank, 256-bit access.");
    en("activation_buffer_access_pj", ACC(energy.activation_buffer_access_pj), "pJ", "One activation-buffer access.", "CACTI-class 28 nm: 32 KB bank, 256-bit access.");
    en("output_buffer_access_pj", ACC(energy.output_buffer_access_pj), "pJ", "One output-buffer access.", "CACTI-class 28 nm: 16 KB bank, 256-bit access.");
    en("dram_pj_per_bit", ACC(energy.dram_pj_per_bit), "pJ/bit", "DRAM access energy (off chip; reported apart from the chip).", "LPDDR4: 5-15 pJ/bit.");
    en("leakage_pe_array_mw", ACC(energy.leakage_pe_array_mw), "mW", "Leakage of the PE array and datapath at v_nom.", "28 nm HPC logic, ~256 FP16 MACs.");
    en("leakage_sram_mw", ACC(energy.leakage_sram_mw), "mW", "Leakage of the global buffers at v_nom.", "~12 uW/KB for 512 KB of 28 nm SRAM.");
    en("leakage_other_mw", ACC(energy.leakage_other_mw), "mW", "Leakage of the controllers, vector unit and reorder unit at v_nom.", "Small next to the array.");
    en("leakage_dibl_per_v", ACC(energy.leakage_dibl_per_v), "1/V", "Leakage power model P(V) = P(v_nom) * (V/v_nom) * exp(k (V - v_nom)).", "DIBL makes subthreshold current grow exponentially with V.", 0.0, 20.0);
    auto cal = [&](const std::string& name, auto acc, const std::string& what) {
        add(make("energy." + name, Kind::Double, "ASSUMED", "", "Calibration factor of the " + what + " entries.",
                 "One number per component class, fitted to the 126.04 TFLOPS/W peak (docs/energy.md); kept in 0.5-2x of the cited sources.", acc), 0.5, 2.0);
    };
    cal("cal_compute", ACC(energy.cal_compute), "compute (multiply, add, RF, vector)");
    cal("cal_sram", ACC(energy.cal_sram), "SRAM buffer");
    cal("cal_interconnect", ACC(energy.cal_interconnect), "interconnect (switches, crossbar)");
    cal("cal_control", ACC(energy.cal_control), "control (zero detection, masks, hamming, clock)");
    cal("cal_dram", ACC(energy.cal_dram), "DRAM");
    cal("cal_leakage", ACC(energy.cal_leakage), "leakage");
    // resource limits: refused up front, with the estimate, rather than exhausting the host
    add(make("limits.trace_memory_mib", Kind::Int, "ASSUMED", "MiB", "Largest memory the masks and bitmaps of a trace (recorded or synthetic, all iterations) may take; a larger trace is refused before anything is allocated.",
             "8 GiB fits a workstation; raise it on a larger machine.", ACC(limits.trace_memory_mib)), 1, 1 << 30);
    add(make("limits.vcd_mib", Kind::Int, "ASSUMED", "MiB", "Largest VCD a --vcd-window may produce, estimated while the run proceeds at 32 bytes per cycle plus 20 per value change; a run whose VCD passes it is stopped and refused, nothing written.",
             "2 GiB of VCD is about 60 M cycles, more than GTKWave handles comfortably.", ACC(limits.vcd_mib)), 1, 1 << 30);
    return s;
}

const std::vector<Field>& schema() {
    static const std::vector<Field> s = build_schema();
    return s;
}

const Field* find_field(const std::string& path) {
    for (const auto& f : schema())
        if (f.path == path) return &f;
    return nullptr;
}

bool is_section(const std::string& prefix) {
    for (const auto& f : schema())
        if (f.path.size() > prefix.size() && f.path.compare(0, prefix.size(), prefix) == 0 &&
            f.path[prefix.size()] == '.')
            return true;
    return false;
}

std::string kind_name(Kind k) {
    switch (k) {
        case Kind::Int: return "integer";
        case Kind::UInt: return "non-negative integer";
        case Kind::Double: return "number";
        case Kind::OptDouble: return "number or null";
        case Kind::Bool: return "boolean";
        case Kind::String: return "string";
    }
    return "?";
}

std::string json_type(const json& j) {
    if (j.is_null()) return "null";
    if (j.is_boolean()) return "boolean";
    if (j.is_number_integer() || j.is_number_unsigned()) return "integer";
    if (j.is_number()) return "number";
    if (j.is_string()) return "string";
    if (j.is_array()) return "array";
    return "object";
}

std::string fmt_num(double v) {
    std::ostringstream o;
    o << v;
    return o.str();
}

void set_field(RunConfig& cfg, const Field& f, const json& v, const std::string& file) {
    auto fail = [&](const std::string& why) { throw ConfigError{file, f.path, why}; };
    switch (f.kind) {
        case Kind::Int:
        case Kind::UInt:
            if (!(v.is_number_integer() || v.is_number_unsigned()))
                fail("expected " + kind_name(f.kind) + ", got " + json_type(v) + " " + v.dump());
            if (f.kind == Kind::UInt && !v.is_number_unsigned() && v.get<int64_t>() < 0)
                fail("expected a non-negative integer, got " + v.dump());
            break;
        case Kind::Double:
            if (!v.is_number()) fail("expected a number, got " + json_type(v) + " " + v.dump());
            break;
        case Kind::OptDouble:
            if (!v.is_number() && !v.is_null())
                fail("expected a number or null, got " + json_type(v) + " " + v.dump());
            break;
        case Kind::Bool:
            if (!v.is_boolean()) fail("expected true or false, got " + json_type(v) + " " + v.dump());
            break;
        case Kind::String:
            if (!v.is_string()) fail("expected a string, got " + json_type(v) + " " + v.dump());
            break;
    }
    if (v.is_number()) {
        double d = v.get<double>();
        if (!std::isfinite(d)) fail("value is not finite");
        if (d < f.lo || d > f.hi)
            fail("value " + v.dump() + " is out of range [" + fmt_num(f.lo) + ", " + fmt_num(f.hi) + "]");
        if (f.kind == Kind::Int && (d > 2147483647.0)) fail("value " + v.dump() + " is too large");
        if (f.pow2) {
            int64_t i = v.get<int64_t>();
            if (i <= 0 || (i & (i - 1)) != 0)
                fail("value " + v.dump() + " must be a power of two (the hardware's log-stage structure needs it)");
        }
    }
    if (!f.choices.empty()) {
        std::string s = v.get<std::string>();
        bool ok = false;
        for (auto& c : f.choices) ok |= (c == s);
        if (!ok) {
            std::string list;
            for (auto& c : f.choices) list += (list.empty() ? "" : ", ") + ("'" + c + "'");
            fail("value '" + s + "' is not one of " + list);
        }
    }
    f.set(cfg, v);
}

void apply_object(RunConfig& cfg, const json& obj, const std::string& prefix, const std::string& file) {
    for (auto it = obj.begin(); it != obj.end(); ++it) {
        std::string path = prefix.empty() ? it.key() : prefix + "." + it.key();
        if (it.key().rfind("_comment", 0) == 0 || it.key().rfind("//", 0) == 0) continue;  // annotations
        if (prefix.empty() && it.key() == "extends") continue;  // applied first, by apply_config_document
        if (const Field* f = find_field(path)) {
            set_field(cfg, *f, it.value(), file);
        } else if (is_section(path)) {
            if (!it.value().is_object())
                throw ConfigError{file, path, "expected an object (a section), got " + json_type(it.value())};
            apply_object(cfg, it.value(), path, file);
        } else {
            throw ConfigError{file, path, "unknown key (see docs/config.md for the parameters)"};
        }
    }
}

}  // namespace

std::string ConfigError::message() const {
    return "config error: " + file + ": " + (path.empty() ? std::string("(document)") : path) + ": " + reason;
}

double ChipConfig::f_max_mhz(double v) const {
    // Alpha-power law f ~ (V - Vth)^a / V, anchored at f_max_mhz_at_vnom for v_nom.
    if (v <= chip.vth) return 0.0;
    auto g = [&](double x) { return std::pow(x - chip.vth, chip.alpha) / x; };
    return chip.f_max_mhz_at_vnom * g(v) / g(chip.v_nom);
}

nlohmann::json RunConfig::to_json() const {
    json out = json::object();
    for (const auto& f : schema()) {
        json* node = &out;
        std::string rest = f.path;
        size_t dot;
        while ((dot = rest.find('.')) != std::string::npos) {
            node = &(*node)[rest.substr(0, dot)];
            rest = rest.substr(dot + 1);
        }
        (*node)[rest] = f.get(*this);
    }
    return out;
}

void validate(const RunConfig& c) {
    const std::string& file = c.source_file;
    auto fail = [&](const std::string& path, const std::string& why) { throw ConfigError{file, path, why}; };
    if (c.chip.v_min >= c.chip.v_max) fail("chip.v_min", "must be below chip.v_max");
    if (c.chip.v_nom < c.chip.v_min || c.chip.v_nom > c.chip.v_max)
        fail("chip.v_nom", "must lie within [chip.v_min, chip.v_max]");
    if (c.chip.vth >= c.chip.v_min) fail("chip.vth", "must be below chip.v_min, or the chip cannot run at v_min");
    if (c.chip.voltage < c.chip.v_min - 1e-9 || c.chip.voltage > c.chip.v_max + 1e-9)
        fail("chip.voltage", "value " + fmt_num(c.chip.voltage) + " V is outside the chip's supply range [" +
                                 fmt_num(c.chip.v_min) + ", " + fmt_num(c.chip.v_max) + "] V");
    const double fmax = c.f_max_mhz(c.chip.voltage);
    if (c.chip.frequency_mhz && *c.chip.frequency_mhz > fmax * (1 + 1e-9))
        fail("chip.frequency_mhz", "value " + fmt_num(*c.chip.frequency_mhz) + " MHz exceeds f_max(" +
                                       fmt_num(c.chip.voltage) + " V) = " + fmt_num(fmax) + " MHz");
    if (c.pe_array.lanes % c.compaction.segments != 0)
        fail("pe_array.lanes", "must be a multiple of compaction.segments (" + std::to_string(c.compaction.segments) + ")");
    if (c.compaction.segments > c.compaction.window)
        fail("compaction.segments", "must not exceed compaction.window");
    if (c.bp_filter() && c.decoupled())
        fail("pe_array.bp_orientation", "filter-oriented BP is modelled with lockstep groups only (pe_array.group_sync = \"lockstep\")");
    if (c.pe_array.lanes > c.compaction.window)
        fail("pe_array.lanes", "must not exceed compaction.window (a step offers at most window operands)");
    auto buf = [&](const std::string& n, const BufferConfig& b) {
        if (int64_t(b.banks) * b.width_bits / 8 > int64_t(b.kib) * 1024)
            fail("buffers." + n + ".banks", "banks x width exceeds the capacity");
    };
    buf("weight", c.buffers.weight);
    buf("activation", c.buffers.activation);
    buf("output", c.buffers.output);
    if (c.dram.burst_bytes > c.dma.max_transfer_bytes)
        fail("dma.max_transfer_bytes", "must be at least dram.burst_bytes");
    if (c.workload.input_density >= 0 && c.workload.input_density > 1) fail("workload.input_density", "must be at most 1");
    if (c.workload.input_density < 0 && c.workload.input_density != -1)
        fail("workload.input_density", "use -1 for per-layer defaults or a density in [0, 1]");
    if (c.workload.grad_density < 0 && c.workload.grad_density != -1)
        fail("workload.grad_density", "use -1 for per-layer defaults or a density in [0, 1]");
}

namespace {

json parse_config_document(const std::string& text, const std::string& file) {
    json doc;
    try {
        doc = parse_json_strict(text, /*ignore_comments=*/true);
    } catch (const DuplicateKeyError& e) {
        throw ConfigError{file, e.path.empty() ? e.key : e.path + "." + e.key,
                          "duplicate key: given twice in one object (JSON would silently keep the last)"};
    } catch (const json::exception& e) {  // parse_error, and out_of_range 406 for 1e999
        std::string what = e.what();
        auto p = what.find("parse error");
        throw ConfigError{file, "", "invalid JSON: " + (p == std::string::npos ? what : what.substr(p))};
    }
    if (!doc.is_object()) throw ConfigError{file, "", "the document must be a JSON object"};
    return doc;
}

// A path's identity for cycle detection: canonical where the file system can say, else lexical.
std::string config_identity(const std::filesystem::path& p) {
    std::error_code ec;
    auto c = std::filesystem::weakly_canonical(p, ec);
    return (ec ? std::filesystem::absolute(p, ec).lexically_normal() : c).string();
}

// Applies `doc` (read from `file`) on top of cfg: first the config its "extends" names, resolved
// relative to `file`'s directory (recursively), then its own keys. `chain` holds the identities of
// the files being applied, outermost first, and refuses a cycle.
void apply_config_document(RunConfig& cfg, const json& doc, const std::string& file,
                           std::vector<std::string>& chain, std::vector<std::string>& files) {
    auto ext = doc.find("extends");
    if (ext != doc.end()) {
        if (!ext->is_string() || ext->get<std::string>().empty())
            throw ConfigError{file, "extends", "expected the path of the config this file extends (a non-empty "
                                               "string, relative to this file's directory), got " +
                                                   json_type(*ext) + " " + ext->dump()};
        const std::filesystem::path base_path =
            (std::filesystem::path(file).parent_path() / ext->get<std::string>()).lexically_normal();
        const std::string base = base_path.string();
        const std::string id = config_identity(base_path);
        for (size_t i = 0; i < chain.size(); ++i) {
            if (chain[i] != id) continue;
            std::string cycle;
            for (size_t j = i; j < chain.size(); ++j) cycle += chain[j] + " -> ";
            throw ConfigError{file, "extends", "\"" + ext->get<std::string>() + "\" closes a cycle: " + cycle + id};
        }
        std::ifstream in(base_path, std::ios::binary);
        if (!in)
            throw ConfigError{file, "extends", "cannot open \"" + ext->get<std::string>() + "\" (resolved to " + base +
                                                   ", relative to this file's directory)"};
        std::stringstream ss;
        ss << in.rdbuf();
        if (in.bad()) throw ConfigError{file, "extends", "cannot read " + base};
        const json base_doc = parse_config_document(ss.str(), base);
        chain.push_back(id);
        apply_config_document(cfg, base_doc, base, chain, files);
        chain.pop_back();
    }
    try {
        apply_object(cfg, doc, "", file);
    } catch (const json::exception& e) {
        throw ConfigError{file, "", std::string("invalid value: ") + e.what()};
    }
    files.push_back(file);
}

}  // namespace

RunConfig config_from_json_text(const std::string& text, const std::string& file) {
    const json doc = parse_config_document(text, file);
    RunConfig cfg;
    cfg.source_file = file;
    std::vector<std::string> chain{config_identity(file)}, files;
    apply_config_document(cfg, doc, file, chain, files);
    cfg.source_files = files;
    validate(cfg);
    return cfg;
}

RunConfig load_config(const std::string& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw ConfigError{file, "", "cannot open the file"};
    std::stringstream ss;
    ss << in.rdbuf();
    if (in.bad()) throw ConfigError{file, "", "cannot read the file"};
    return config_from_json_text(ss.str(), file);
}

void apply_override(RunConfig& cfg, const std::string& assignment) {
    const std::string where = "--set " + assignment;
    auto eq = assignment.find('=');
    if (eq == std::string::npos || eq == 0)
        throw ConfigError{"--set", assignment, "expected PATH=VALUE, e.g. chip.voltage=0.7"};
    std::string path = assignment.substr(0, eq), text = assignment.substr(eq + 1);
    const Field* f = find_field(path);
    if (!f) {
        throw ConfigError{"--set", path, is_section(path) ? "is a section; name one of its fields"
                                                           : "unknown parameter (see docs/config.md)"};
    }
    json v;
    try {
        v = parse_json_strict(text);
    } catch (const DuplicateKeyError& e) {
        throw ConfigError{"--set", path, "value " + text + ": " + e.message()};
    } catch (const json::parse_error&) {
        v = text;  // bare words are strings: --set compaction.routing=crossbar
        try {
            (void)v.dump();  // reports and error messages print it: it must be valid UTF-8
        } catch (const json::type_error&) {
            throw ConfigError{"--set", path, "value is not valid UTF-8 text"};
        }
    } catch (const json::exception&) {  // out_of_range 406: a number that overflows a double
        throw ConfigError{"--set", path, "value " + text + " is not a finite number"};
    }
    RunConfig trial = cfg;
    set_field(trial, *f, v, "--set");
    trial.source_file = cfg.source_file;
    try {
        validate(trial);
    } catch (ConfigError& e) {
        e.file = "--set " + path + " (on " + cfg.source_file + ")";
        throw;
    }
    (void)where;
    cfg = trial;
}

std::vector<ConfigFieldDoc> config_schema_docs() {
    std::vector<ConfigFieldDoc> out;
    RunConfig defaults;
    for (const auto& f : schema()) {
        ConfigFieldDoc d;
        d.path = f.path;
        d.type = kind_name(f.kind);
        d.status = f.status;
        d.unit = f.unit;
        d.doc = f.doc;
        d.reason = f.reason;
        d.default_value = f.get(defaults);
        if (!f.choices.empty()) {
            for (auto& c : f.choices) d.range += (d.range.empty() ? "" : " | ") + c;
        } else if (f.kind != Kind::Bool && f.kind != Kind::String) {
            d.range = "[" + fmt_num(f.lo) + ", " + fmt_num(f.hi) + "]" + (f.pow2 ? ", power of two" : "");
        }
        out.push_back(d);
    }
    return out;
}

std::string config_markdown() {
    std::ostringstream o;
    o << "| parameter | default | unit | range | status | meaning | why this default |\n";
    o << "| --- | --- | --- | --- | --- | --- | --- |\n";
    // Not a parameter: the loader's overlay key (apply_config_document), top level only.
    o << "| `extends` | `null` | path | a config file, relative to this file's directory | - | Overlay: the named config is "
         "applied first (itself possibly an overlay), then this file's own fields; a cycle or a missing file is an error. "
         "| A variant (baseline, peak point) holds only what differs from the chip it extends. |\n";
    for (const auto& d : config_schema_docs()) {
        o << "| `" << d.path << "` | `" << d.default_value.dump() << "` | " << d.unit << " | " << d.range
          << " | " << d.status << " | " << d.doc << " | " << d.reason << " |\n";
    }
    return o.str();
}

}  // namespace swpu
