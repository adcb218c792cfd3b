// swpu-sim command line: chip config + trace in, cycle-accurate SystemC run, reports out.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <systemc>

#include "swpu/chip.hpp"
#include "swpu/config.hpp"
#include "swpu/energy.hpp"
#include "swpu/report.hpp"
#include "swpu/tensor_dump.hpp"
#include "swpu/vcd.hpp"
#include "swpu/workload.hpp"

namespace {

constexpr int kExitBadInput = 2;

int bad_input(const std::string& msg) {
    std::cerr << "swpu-sim: " << msg << "\n";
    return kExitBadInput;
}

bool parse_window(const std::string& s, int64_t& a, int64_t& b) {
    const auto colon = s.find(':');
    if (colon == std::string::npos) return false;
    try {
        size_t i1 = 0, i2 = 0;
        a = std::stoll(s.substr(0, colon), &i1);
        b = std::stoll(s.substr(colon + 1), &i2);
        if (i1 != colon || i2 != s.size() - colon - 1) return false;
    } catch (...) {
        return false;
    }
    return a >= 0 && b > a;
}

// What the energy figures price: the clock, and per action the count (run's wall cycles for the
// clock tree) and the calibrated pJ at the run's voltage. Re-pricing saved counts with another
// table or voltage (scripts/swpu/reprice.py) multiplies these out instead of re-simulating.
nlohmann::json pricing_json(const swpu::ChipConfig& cfg, const swpu::EnergyModel& energy,
                            const swpu::Counters* wall) {
    nlohmann::json p;
    p["voltage"] = cfg.chip.voltage;
    p["clock_mhz"] = cfg.clock_mhz();
    p["f_max_mhz"] = cfg.f_max_mhz(cfg.chip.voltage);
    p["leakage_mw"] = energy.leakage_mw();
    nlohmann::json actions = nlohmann::json::array();
    for (const auto& a : energy.actions()) {
        nlohmann::json j = {{"component", a.component}, {"action", a.action}, {"class", a.cls},
                            {"pj", energy.calibrated_pj(a)}};
        if (wall) j["count"] = a.count(*wall);
        actions.push_back(j);
    }
    p["actions"] = actions;
    if (wall) p["cycles"] = wall->cycles;
    return p;
}

}  // namespace

int sc_main(int argc, char* argv[]) {
    setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 1);
    CLI::App app{
        "swpu-sim: cycle-accurate SystemC simulator of SWPU, a 28 nm sparse DNN training processor with\n"
        "dynamic sub-structured (shape-wise + line-wise) weight pruning.\n\n"
        "Two engines share one plan (tiling, windows, cluster order). 'cycle' (the default) is the\n"
        "cycle-accurate model: clocked SystemC units (DBL controller, global buffers with banks, compaction\n"
        "network, PE array) on one clock, whose cycles come from their stalls, back-pressure, bank conflicts\n"
        "and latencies. 'fast' is a step-level model for sweeps (10-20x faster): per-step costs plus the\n"
        "cycle engine's fill/drain rules, checked against the cycle engine on a random corpus\n"
        "(docs/architecture.md). Every machine option runs on both engines: crossbar routing, decoupled\n"
        "groups and filter-oriented BP (pe_array.bp_orientation=filter) included.\n\n"
        "Runs training iterations (FF, BP, WG passes and the non-conv work) of a sparse trace on the chip\n"
        "described by a JSON config, and reports cycles, utilization, memory traffic and energy per layer\n"
        "and pass. Without --trace it runs the built-in synthetic ResNet-18 trace of the config's\n"
        "'workload' section. Parameters marked ASSUMED in docs/config.md are our reconstruction.\n\n"
        "Examples:\n"
        "  swpu-sim --config configs/swpu.json\n"
        "  swpu-sim --config configs/swpu.json --set chip.voltage=0.56 --set workload.batch=4\n"
        "  swpu-sim --config configs/swpu.json --trace configs/traces/resnet18-cifar-digits-substructured\n"
        "  swpu-sim --config configs/swpu.json --vcd run.vcd --vcd-window 0:20000\n"
        "  swpu-sim --config configs/swpu.json --layer layer3.1.conv1 --pass FF --set workload.batch=4\n"
        "  swpu-sim --config configs/swpu.json --set simulation.mode=functional --dump-tensors dump \\\n"
        "           --dump-iterations 0 --dump-layers conv1,layer1.0.conv1 --dump-passes FF,WG\n"
        "  /usr/bin/python3 scripts/check_functional.py dump    # the dumped results against PyTorch\n\n"
        "Exit status: 0 success, 2 bad input (config, trace, command line), 1 internal error."};
    app.set_help_flag("-h,--help", "Print this help and exit");
    std::string config_file, trace_dir, out_dir = "out", vcd_file, vcd_window, engine, layer_name, pass_name;
    std::vector<std::string> sets;
    std::string dump_dir, dump_iterations, dump_layers, dump_passes;
    bool quiet = false, print_config = false, print_pricing = false, config_doc = false;
    app.add_option("-c,--config", config_file, "Chip config (JSON); see docs/config.md")->check(CLI::ExistingFile);
    app.add_option("-t,--trace", trace_dir, "Sparse training trace directory (docs/trace-format.md)");
    app.add_option("-o,--out", out_dir, "Output directory for report.json, layers.csv, energy files")
        ->capture_default_str();
    app.add_option("-s,--set", sets, "Override one config field: PATH=VALUE (repeatable), e.g. chip.voltage=0.7");
    app.add_option("--engine", engine, "Simulation engine: cycle (clocked units, the default) or fast (step-level)")
        ->check(CLI::IsMember({"cycle", "fast"}));
    app.add_option("--layer", layer_name, "Run only this weighted layer (e.g. layer3.1.conv1) of the trace's first "
                                          "iteration, in the pass given by --pass, after clustering its masks");
    app.add_option("--pass", pass_name, "The pass of --layer: FF, BP or WG")->check(CLI::IsMember({"FF", "BP", "WG"}));
    app.add_option("--vcd", vcd_file, "Write a VCD waveform of the block-level signals to FILE");
    app.add_option("--vcd-window", vcd_window, "Cycle window START:END of the VCD (default 0:100000)");
    app.add_option("--dump-tensors", dump_dir,
                   "Functional mode: write .npy files of the operands and results of every selected (iteration, "
                   "layer, pass) and a manifest.json to DIR (new or empty; written whole or not at all; "
                   "docs/functional.md)");
    app.add_option("--dump-iterations", dump_iterations,
                   "With --dump-tensors: comma-separated iterations of the run (0-based positions in the trace; "
                   "default all)");
    app.add_option("--dump-layers", dump_layers,
                   "With --dump-tensors: comma-separated conv/fc layer names, e.g. conv1,layer1.0.conv1 (default all)");
    app.add_option("--dump-passes", dump_passes, "With --dump-tensors: comma-separated passes among FF,BP,WG (default all)");
    app.add_flag("-q,--quiet", quiet, "No summary on stdout and no progress on stderr");
    app.add_flag("--print-config", print_config, "Print the effective config (after --set) as JSON and exit");
    app.add_flag("--print-pricing", print_pricing,
                 "Print the effective clock (clock_mhz, f_max_mhz) and the energy per action at the config's voltage "
                 "as JSON, and exit");
    app.add_flag("--config-doc", config_doc, "Print the parameter table of docs/config.md and exit");
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        return kExitBadInput;
    }
    if (config_doc) {
        std::cout << swpu::config_markdown();
        return 0;
    }
    if (config_file.empty()) return bad_input("--config FILE is required (the default chip is configs/swpu.json)");

    swpu::RunConfig cfg;
    try {
        cfg = swpu::load_config(config_file);
        // The engine first, then the overrides, then the whole config is validated.
        if (!engine.empty()) cfg.simulation.engine = engine;
        for (const auto& s : sets) swpu::apply_override(cfg, s);
        swpu::validate(cfg);
    } catch (const swpu::ConfigError& e) {
        return bad_input(e.message());
    }
    if (print_config) {
        std::cout << cfg.to_json().dump(2) << "\n";
        return 0;
    }
    if (print_pricing) {
        std::cout << pricing_json(cfg, swpu::EnergyModel(cfg), nullptr).dump(2) << "\n";
        return 0;
    }
    if (layer_name.empty() != pass_name.empty())
        return bad_input(layer_name.empty() ? "--pass needs --layer NAME" : "--layer needs --pass FF|BP|WG");
    if (dump_dir.empty() && !(dump_iterations.empty() && dump_layers.empty() && dump_passes.empty()))
        return bad_input("--dump-iterations, --dump-layers and --dump-passes select what --dump-tensors DIR writes: "
                         "give --dump-tensors");
    if (!dump_dir.empty() && !cfg.functional())
        return bad_input("--dump-tensors needs functional mode (values are computed only there): add --set "
                         "simulation.mode=functional");
    int64_t win_a = 0, win_b = 100000;
    if (!vcd_window.empty()) {
        if (vcd_file.empty()) return bad_input("--vcd-window needs --vcd FILE");
        if (!parse_window(vcd_window, win_a, win_b))
            return bad_input("--vcd-window: expected START:END in cycles with 0 <= START < END, got '" + vcd_window + "'");
    }

    swpu::Trace trace;
    try {
        if (!trace_dir.empty()) {
            trace = swpu::load_trace(trace_dir, cfg.simulation.seed, uint64_t(cfg.limits.trace_memory_mib) << 20);
        } else {
            const swpu::Network net = swpu::build_network(cfg.workload.network, cfg.workload.width, -1, -1, -1,
                                                          cfg.workload.fc_block);
            const std::string too_large = swpu::trace_memory_check(net, cfg.workload.batch, uint64_t(cfg.workload.iterations),
                                                                   uint64_t(cfg.limits.trace_memory_mib) << 20);
            if (!too_large.empty())
                return bad_input("config error: " + cfg.source_file + ": workload: synthetic " + too_large);
            trace = swpu::make_synthetic_trace(cfg.workload, net, cfg.simulation.seed);
        }
    } catch (const swpu::TraceError& e) {
        return bad_input(e.message());
    } catch (const std::invalid_argument& e) {
        return bad_input(std::string("workload: ") + e.what());
    }
    // --layer/--pass: one (layer, pass) of the first iteration instead of whole iterations.
    const swpu::Layer* single_layer = nullptr;
    const swpu::LayerWork* single_work = nullptr;
    swpu::Pass single_pass = swpu::Pass::FF;
    swpu::LayerValues single_values;
    if (!layer_name.empty()) {
        const int li = trace.net.find(layer_name);
        const auto wl = trace.net.weighted_layers();
        const auto slot = std::find(wl.begin(), wl.end(), li);
        if (li < 0 || slot == wl.end()) {
            std::string names;
            for (size_t i = 0; i < wl.size() && i < 6; ++i) names += (i ? ", " : "") + trace.net.layers[wl[i]].name;
            return bad_input("--layer " + layer_name + ": no weighted (conv or fc) layer of that name in " +
                             trace.net.name + " (e.g. " + names + ", ...)");
        }
        single_layer = &trace.net.layers[size_t(li)];
        single_work = &trace.iterations[0].layers[size_t(slot - wl.begin())];
        single_pass = pass_name == "FF" ? swpu::Pass::FF : pass_name == "BP" ? swpu::Pass::BP : swpu::Pass::WG;
        if (single_pass == swpu::Pass::BP && !single_layer->inputs.empty() && single_layer->inputs[0] == -1)
            return bad_input("--layer " + layer_name + " --pass BP: the network's first layer has no BP pass "
                             "(no gradient is needed for the network input)");
        if (cfg.functional())
            single_values = swpu::make_layer_values(*single_layer, *single_work, trace.batch, cfg.simulation.seed);
    }
    std::unique_ptr<swpu::TensorDump> dump;
    if (!dump_dir.empty()) {
        swpu::DumpFilter filter;
        const std::string why = swpu::parse_dump_filter(dump_iterations, dump_layers, dump_passes, trace.net,
                                                        single_layer ? 1 : int(trace.iterations.size()), filter);
        if (!why.empty()) return bad_input(why);
        const nlohmann::json run = {{"config", config_file}, {"trace", trace.source}, {"network", trace.net.name},
                                    {"width", trace.net.width}, {"batch", trace.batch},
                                    {"pruning", swpu::to_string(trace.mode)}, {"engine", cfg.simulation.engine},
                                    {"seed", cfg.simulation.seed}};
        try {
            dump = std::make_unique<swpu::TensorDump>(dump_dir, filter, run);
        } catch (const std::exception& e) {
            return bad_input(e.what());
        }
    }
    const bool show_progress = !quiet && isatty(STDERR_FILENO);
    const auto t0 = std::chrono::steady_clock::now();
    swpu::SwpuChip chip("swpu", cfg);
    if (single_layer)
        chip.set_single(single_layer, single_work, single_pass, trace.batch,
                        cfg.functional() ? &single_values : nullptr, true);
    else
        chip.set_trace(&trace);
    if (dump) chip.set_tensor_dump(dump.get(), trace.iterations[0].index);
    std::unique_ptr<swpu::VcdWriter> vcd;
    if (!vcd_file.empty()) {
        try {
            vcd = std::make_unique<swpu::VcdWriter>("vcd_writer", vcd_file, chip, win_a, win_b);
            vcd->set_limit_bytes(uint64_t(cfg.limits.vcd_mib) << 20);
        } catch (const std::exception& e) {
            return bad_input(std::string("--vcd: ") + e.what());
        }
        chip.tick_until(win_b);
    }
    const bool out_dir_existed = std::filesystem::exists(out_dir);
    {
        std::error_code ec;
        std::filesystem::create_directories(out_dir, ec);
        if (ec || !std::filesystem::is_directory(out_dir))
            return bad_input("--out " + out_dir + ": cannot create the output directory" + (ec ? ": " + ec.message() : ""));
    }

    auto last = t0;
    if (show_progress) {
        chip.set_progress([&](double frac) {
            const auto now = std::chrono::steady_clock::now();
            if (std::chrono::duration<double>(now - t0).count() < 1.0) return;
            if (std::chrono::duration<double>(now - last).count() < 0.25) return;
            last = now;
            std::fprintf(stderr, "\rswpu-sim: %5.1f%% of the conv passes, %.1f s", 100.0 * frac,
                         std::chrono::duration<double>(now - t0).count());
            std::fflush(stderr);
        });
    }
    sc_core::sc_start();
    if (show_progress && std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() >= 1.0)
        std::fprintf(stderr, "\r%60s\r", "");
    if (vcd && vcd->over_limit()) {
        std::error_code ec;
        if (!out_dir_existed) std::filesystem::remove(out_dir, ec);  // only if still empty
        const int64_t c = vcd->over_limit_cycle();
        bad_input("--vcd-window " + std::to_string(win_a) + ":" + std::to_string(win_b) + ": at cycle " +
                  std::to_string(c) + " the VCD already needed about " + std::to_string(vcd->estimated_bytes(c) >> 20) +
                  " MiB (32 bytes per cycle plus 20 per value change), more than the limit of " +
                  std::to_string(cfg.limits.vcd_mib) + " MiB (config field limits.vcd_mib); the run was stopped " +
                  "and nothing was written: narrow the window or raise the limit");
        // The stopped model's SC_THREADs are suspended mid-run with live objects on their stacks,
        // which SystemC never unwinds: end here, as a refusal, without tearing them down.
        std::cerr.flush();
        dump.reset();  // removes its temporary directory
        std::_Exit(kExitBadInput);
    }
    if (!chip.finished()) {
        std::cerr << "swpu-sim: internal error: the simulation stopped before the workload finished\n";
        return 1;
    }
    const double host_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    swpu::RunInfo info;
    info.config_file = config_file;
    info.trace_source = trace.source;
    info.network = trace.net.name;
    info.batch = trace.batch;
    info.iterations = int(trace.iterations.size());
    info.pruning = swpu::to_string(trace.mode);
    info.host_seconds = host_s;
    info.total_cycles = chip.total_cycles();
    swpu::EnergyModel energy(cfg);
    const swpu::EnergyResult priced = energy.evaluate(chip.results(), chip.total_cycles(), info.iterations);
    nlohmann::json report = swpu::build_report(cfg, info, chip.results(), &priced);
    std::vector<std::pair<std::string, std::string>> files;
    {
        swpu::Counters wall;
        for (const auto& r : chip.results()) wall += r.c;
        wall.cycles = chip.total_cycles();
        report["pricing"] = pricing_json(cfg, energy, &wall);
    }
    files.push_back({"report.json", report.dump(2) + "\n"});
    files.push_back({"layers.csv", swpu::layers_csv(cfg, chip.results())});
    files.push_back({"energy_reference_table.yaml", energy.accelergy_ert_yaml()});
    files.push_back({"action_counts.yaml", energy.accelergy_action_counts_yaml(chip.results())});
    try {
        if (vcd) vcd->close();
        swpu::write_files_atomically(out_dir, files);
        if (dump) dump->commit();
    } catch (const std::exception& e) {
        std::error_code ec;
        if (!out_dir_existed) std::filesystem::remove(out_dir, ec);  // only if still empty
        std::cerr << "swpu-sim: " << e.what() << "\n";
        return kExitBadInput;
    }
    if (!quiet) {
        std::cout << swpu::summary_text(report);
        std::cout << "  reports  : " << out_dir << "/report.json, " << out_dir << "/layers.csv\n";
        if (dump) std::cout << "  tensors  : " << dump_dir << "/manifest.json (" << dump->entries() << " layer-passes)\n";
        std::cout << "  host     : " << std::setprecision(2) << std::fixed << host_s << " s, "
                  << std::setprecision(0) << double(chip.total_cycles()) / std::max(host_s, 1e-9)
                  << " simulated cycles/s\n";
    }
    return 0;
}
