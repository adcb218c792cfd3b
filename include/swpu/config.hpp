// Chip configuration: every parameter of the reconstruction, with its default, range and status
// (FOUND in the paper or ASSUMED by us). The schema in config.cpp is the single source of truth:
// the loader validates against it and docs/config.md is generated from it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "swpu/workload.hpp"

namespace swpu {

struct BufferConfig {
    int kib = 128;        // capacity
    int banks = 8;        // independent banks (each one read and one write per cycle)
    int width_bits = 256; // bits per bank access
    int read_latency = 1; // cycles from a read's bank access to its data at the requester
};

struct ChipConfig {
    struct Chip {
        std::string name = "swpu";
        int process_nm = 28;
        double voltage = 1.0;                      // supply (V)
        std::optional<double> frequency_mhz;       // empty: f_max(voltage)
        double v_min = 0.56, v_max = 1.0, v_nom = 1.0;
        double f_max_mhz_at_vnom = 675.0;
        double vth = 0.40;
        double alpha = 1.3;
    } chip;
    struct PeArray {
        int groups = 16;
        int lanes = 16;
        std::string mult_format = "fp16";
        std::string acc_format = "fp32";
        int multiplier_latency = 3;   // FP16 multiplier pipeline stages
        int reduce_latency = 4;       // WG adder-tree pipeline stages
        int accumulator_sets = 2;     // accumulator register files per group (window double buffering)
        int input_fifo_depth = 2;     // lane-packet FIFO between the network and the array
        std::string group_sync = "lockstep";  // "lockstep" or "decoupled" (per-group operand FIFOs)
        int group_fifo_depth = 4;     // decoupled: lines a group's operand FIFO holds
        std::string bp_orientation = "channel";  // BP: groups hold input channels ("channel") or FF's filters ("filter")
        int bp_line_sets = 2;         // filter-oriented BP: windows of dO rows a group's line store holds
    } pe_array;
    struct Compaction {
        int window = 64;
        int segments = 4;
        std::string routing = "log";  // "log" (log-stage compaction + bi-directional switches) or "crossbar"
        int step_fifo_depth = 4;      // steps queued between the DBL controller and the network
    } compaction;
    struct Reorder {
        bool enabled = true;
        int hamming_units = 8;
        int hamming_width_bits = 256;
    } reorder_unit;
    struct Dbl {
        bool enabled = true;
        int line_buffers = 4;         // line registers: lines read ahead of the network
        int mask_words_per_cycle = 4; // 64-bit mask words the controller reads per cycle
    } dbl;
    struct Buffers {
        BufferConfig weight{128, 8, 256};
        BufferConfig activation{256, 8, 256};
        BufferConfig output{128, 8, 256};
    } buffers;
    struct Dram {
        double bandwidth_gbps = 12.8;
        double latency_ns = 100.0;
        int burst_bytes = 64;
    } dram;
    struct Dma {
        int max_transfer_bytes = 4096;
        bool double_buffering = true;
    } dma;
    struct Memory {
        bool activation_compression = true;
        int weight_index_bits = 4;
    } memory;
    // Which zeros a machine skips in each pass (weights: pruned weights; the operands' zeros).
    struct Skip {
        bool ff_weights = true, ff_activations = true;
        bool bp_weights = true, bp_gradients = true;
        bool wg_weights = true, wg_activations = true, wg_gradients = true;
    } skip;
    struct VectorUnit {
        bool fuse_bn_relu = false;    // BN + ReLU ride the conv's write-back and the next load
        bool fuse_sgd = false;        // the SGD update runs in each layer's WG epilogue
        int lanes = 32;
        int bn_forward_ops = 4;
        int bn_backward_ops = 8;
        int relu_ops = 1;
        int pool_ops = 1;
        int add_ops = 1;
        int loss_ops = 8;
        int sgd_ops = 4;
        int mask_update_ops = 3;
    } vector_unit;

    // Energy reference table at v_nom (pJ per action) and leakage (mW), Accelergy style, plus one
    // calibration factor per component class. Sources in docs/energy.md.
    struct Energy {
        double fp16_mult_pj = 0.67;
        double fp8_mult_pj = 0.2;
        double fp32_add_pj = 0.55;
        double acc_rf_pj = 0.06;
        double switch_stage_pj = 0.015;
        double switch_hop_pj = 0.005;
        double scatter_stage_pj = 0.03;
        double crossbar_route_pj = 0.5;
        double index_read_pj = 0.05;
        double zero_detect_pj = 0.01;
        double mask_read_pj = 0.5;
        double hamming_op_pj = 0.5;
        double vector_op_pj = 0.8;
        double clock_pj_per_cycle = 15.0;
        double weight_buffer_access_pj = 9.0;
        double activation_buffer_access_pj = 12.0;
        double output_buffer_access_pj = 9.0;
        double dram_pj_per_bit = 8.0;
        double leakage_pe_array_mw = 3.0;
        double leakage_sram_mw = 6.0;
        double leakage_other_mw = 1.0;
        double leakage_dibl_per_v = 2.0;
        double cal_compute = 0.833;
        double cal_sram = 0.833;
        double cal_interconnect = 0.833;
        double cal_control = 0.833;
        double cal_dram = 1.0;
        double cal_leakage = 0.833;
    } energy;



    // Derived quantities.
    double f_max_mhz(double v) const;  // alpha-power law anchored at f_max_mhz_at_vnom, v_nom
    double clock_mhz() const { return chip.frequency_mhz ? *chip.frequency_mhz : f_max_mhz(chip.voltage); }
    double clock_period_ns() const { return 1000.0 / clock_mhz(); }
    int lanes_per_segment() const { return pe_array.lanes / compaction.segments; }
    int window_per_segment() const { return compaction.window / compaction.segments; }
    int operand_bits() const { return pe_array.mult_format == "fp8" ? 8 : 16; }
    bool decoupled() const { return pe_array.group_sync == "decoupled"; }
    // Decoupled groups with crossbars: weights stored element-compressed (value + index words).
    bool element_indexed() const { return decoupled() && compaction.routing == "crossbar"; }
    // BP keeps FF's filter clusters: per-group output-gradient lines, a cross-group reduction per input channel.
    bool bp_filter() const { return pe_array.bp_orientation == "filter"; }
};

// How a run is simulated (the config's `simulation` section).
struct SimulationParams {
    std::string engine = "cycle";  // "cycle" (clocked units) or "fast" (step-level model)
    std::string mode = "timing";   // "timing" or "functional"
    bool time_skip = true;
    uint64_t seed = 1;
    bool functional() const { return mode == "functional"; }
    bool cycle_engine() const { return engine == "cycle"; }
};

// Resource limits of a run (the config's `limits` section).
struct RunLimits {
    int trace_memory_mib = 8192;  // masks and bitmaps of all iterations of a trace
    int vcd_mib = 2048;           // a --vcd-window's file, checked while the run proceeds
};

// One config file: the chip (the hardware the units are built from, ChipConfig), the synthetic
// workload it runs, how it is simulated and the run's limits. The units see only the chip part.
struct RunConfig : ChipConfig {
    SimulationParams simulation;
    WorkloadParams workload;  // the synthetic workload (swpu/workload.hpp)
    RunLimits limits;

    std::string source_file = "<defaults>";  // where it was loaded from
    // The files applied, base first: a file that "extends" another is applied after it.
    std::vector<std::string> source_files;

    const ChipConfig& chip_config() const { return *this; }
    bool functional() const { return simulation.functional(); }
    bool cycle_engine() const { return simulation.cycle_engine(); }
    nlohmann::json to_json() const;  // the effective configuration, every field
};

// Bad configuration: names the file, the JSON path and the reason.
struct ConfigError {
    std::string file, path, reason;
    std::string message() const;
};

// Loads a config file on top of the defaults and validates it. Throws ConfigError.
RunConfig load_config(const std::string& file);
// Parses a JSON document (already read) on top of the defaults. Throws ConfigError.
RunConfig config_from_json_text(const std::string& text, const std::string& file_name);
// Applies "path=value" (value parsed as JSON, else taken as a string). Throws ConfigError.
void apply_override(RunConfig& cfg, const std::string& assignment);
// Cross-field checks (frequency <= f_max, lanes divisible by segments, ...). Throws ConfigError.
void validate(const RunConfig& cfg);

// One documented parameter of the schema.
struct ConfigFieldDoc {
    std::string path, type, status, unit, range, doc, reason;
    nlohmann::json default_value;
};
std::vector<ConfigFieldDoc> config_schema_docs();
std::string config_markdown();  // docs/config.md's parameter table, generated

}  // namespace swpu
