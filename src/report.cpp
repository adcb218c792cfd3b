#include "swpu/report.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <sstream>
#include <stdexcept>

#include <unistd.h>

namespace swpu {

using nlohmann::json;

namespace {

json derived(const ChipConfig& cfg, const Counters& c) {
    json j = c.to_json();
    const double f_hz = cfg.clock_mhz() * 1e6;
    const double lanes = double(cfg.pe_array.groups) * cfg.pe_array.lanes;
    j["time_us"] = double(c.cycles) / f_hz * 1e6;
    // Utilization = useful MACs / (G x L x cycles), over all cycles and over compute cycles.
    j["utilization"] = c.cycles ? double(c.valid_macs) / (lanes * double(c.cycles)) : 0.0;
    j["compute_utilization"] = c.utilization();
    j["effective_macs_per_cycle"] = c.cycles ? double(c.dense_macs) / double(c.cycles) : 0.0;
    return j;
}

}  // namespace

json build_report(const RunConfig& cfg, const RunInfo& info, const std::vector<LayerPassResult>& results,
                  const EnergyResult* energy) {
    json r;
    r["tool"] = "swpu-sim";
    r["report_version"] = 1;
    r["config_file"] = info.config_file;
    r["config_files"] = cfg.source_files;  // applied base first ("extends"); "config" is the result
    r["config"] = cfg.to_json();
    r["clock_mhz"] = cfg.clock_mhz();
    r["f_max_mhz"] = cfg.f_max_mhz(cfg.chip.voltage);
    // The ASSUMED parameters with the values this run used, and the FOUND facts.
    const json eff = cfg.to_json();
    json assumed = json::object(), found = json::object();
    for (const auto& d : config_schema_docs()) {
        const json* node = &eff;
        std::string rest = d.path;
        for (size_t dot; (dot = rest.find('.')) != std::string::npos; rest = rest.substr(dot + 1))
            node = &(*node)[rest.substr(0, dot)];
        (d.status == "ASSUMED" ? assumed : found)[d.path] = (*node)[rest];
    }
    r["assumptions"] = {
        {"note", "swpu-sim models a reconstruction of SWPU: the paper states only headline facts (FOUND); "
                 "every other choice is an ASSUMED, documented config parameter (docs/config.md, docs/architecture.md)."},
        {"calibration", "energy.cal_compute/sram/interconnect/control/leakage = one factor fitted so that configs/peak.json "
                        "(0.56 V, 90% sub-structured weight and 90% activation sparsity, dense input image) gives 126.04 "
                        "TFLOPS/W on the convolution passes (docs/energy.md, scripts/calibrate_energy.py): that figure is "
                        "calibrated, not a reproduced claim"},
        {"assumed", assumed},
        {"found", found},
    };
    r["workload"] = {{"source", info.trace_source}, {"network", info.network}, {"batch", info.batch},
                     {"iterations", info.iterations}, {"pruning", info.pruning}};
    Counters total;
    std::map<std::string, Counters> phase;
    json layers = json::array();
    int unmodeled = 0;
    if (energy && energy->per_entry.size() != results.size())
        throw std::logic_error("the energy result does not price these results");
    for (size_t i = 0; i < results.size(); ++i) {
        const LayerPassResult& res = results[i];
        total += res.c;
        phase[to_string(res.pass)] += res.c;
        json l = derived(cfg, res.c);
        if (energy) {
            l["energy_chip_uj"] = energy->per_entry[i].chip_pj * 1e-6;
            l["energy_dram_uj"] = energy->per_entry[i].dram_pj * 1e-6;
        }
        l["iteration"] = res.iteration;
        l["layer"] = res.layer;
        l["op"] = res.op;
        l["pass"] = to_string(res.pass);
        l["modeled"] = res.modeled;
        l["start_cycle"] = res.start_cycle;
        if (!res.note.empty()) l["note"] = res.note;
        if (!res.modeled) ++unmodeled;
        layers.push_back(l);
    }
    json t = derived(cfg, total);
    t["cycles"] = info.total_cycles;  // wall cycles of the whole run
    t["time_us"] = double(info.total_cycles) / (cfg.clock_mhz() * 1e6) * 1e6;
    t["utilization"] = info.total_cycles
                           ? double(total.valid_macs) / (double(cfg.pe_array.groups) * cfg.pe_array.lanes * double(info.total_cycles))
                           : 0.0;
    t["effective_macs_per_cycle"] = info.total_cycles ? double(total.dense_macs) / double(info.total_cycles) : 0.0;
    t["host_seconds"] = info.host_seconds;
    t["simulated_cycles_per_host_second"] = info.host_seconds > 0 ? double(info.total_cycles) / info.host_seconds : 0.0;
    t["unmodeled_entries"] = unmodeled;
    r["totals"] = t;
    json ph = json::object();
    for (auto& [name, c] : phase) ph[name] = derived(cfg, c);
    r["per_phase"] = ph;
    if (energy) r["energy"] = energy_json(*energy);
    r["layers"] = layers;
    return r;
}

std::string layers_csv(const ChipConfig& cfg, const std::vector<LayerPassResult>& results) {
    std::ostringstream o;
    o << "iteration,layer,op,pass,modeled,start_cycle,time_us,utilization";
    for (const auto& n : Counters::names()) o << "," << n;
    o << "\n";
    const double f_hz = cfg.clock_mhz() * 1e6;
    const double lanes = double(cfg.pe_array.groups) * cfg.pe_array.lanes;
    o << std::setprecision(9);
    for (const auto& r : results) {
        o << r.iteration << "," << r.layer << "," << r.op << "," << to_string(r.pass) << "," << (r.modeled ? 1 : 0)
          << "," << r.start_cycle << "," << double(r.c.cycles) / f_hz * 1e6 << ","
          << (r.c.cycles ? double(r.c.valid_macs) / (lanes * double(r.c.cycles)) : 0.0);
        for (auto v : r.c.values()) o << "," << v;
        o << "\n";
    }
    return o.str();
}

namespace {

// What each energy figure covers (chip or chip + DRAM; whole run or conv passes).
json energy_scope() {
    const std::string chip = "chip: PE array, buffers, interconnect, vector and reorder units, control, clock and leakage; "
                             "no DRAM";
    const std::string sys = "system: chip + DRAM";
    const std::string run = "whole run: every pass and vector-unit op of every iteration";
    const std::string conv = "conv passes: FF + BP + WG of the conv and FC layers only";
    return {
        {"chip_uj", chip + "; " + run},
        {"dram_uj", "DRAM only; " + run},
        {"total_uj", sys + "; " + run},
        {"power_mw", chip + "; " + run},
        {"system_power_mw", sys + "; " + run},
        {"effective_tflops_per_w", chip + "; " + run + "; effective FLOPs = 2 x dense MACs"},
        {"system_effective_tflops_per_w", sys + "; " + run + "; effective FLOPs = 2 x dense MACs"},
        {"conv.chip_uj", chip + "; " + conv},
        {"conv.power_mw", chip + "; " + conv},
        {"conv.effective_tflops_per_w", chip + "; " + conv + "; the figure the paper's peak (126.04 TFLOPS/W) is compared with"},
    };
}

json components_uj(const EnergyBreakdown& b) {
    json comp = json::object();
    for (auto& [k, v] : b.component_pj) comp[k] = v * 1e-6;
    comp["leakage"] = b.leakage_pj * 1e-6;
    return comp;
}

// TFLOPS/W = FLOPs / energy (pJ), since (FLOP/s) / (J/s) = FLOP/J and 1 FLOP/pJ = 1 TFLOPS/W.
double per_pj(double flops, double pj) { return pj > 0 ? flops / pj : 0.0; }

}  // namespace

json energy_json(const EnergyResult& e) {
    const EnergyBreakdown& b = e.run;
    const double eff_flops = 2.0 * double(e.dense_macs), real_flops = 2.0 * double(e.valid_macs);
    const double s = e.seconds;
    json j;
    j["voltage"] = e.voltage;
    j["clock_mhz"] = e.clock_mhz;
    j["dynamic_scale"] = e.dynamic_scale;
    j["leakage_scale"] = e.leakage_scale;
    j["leakage_mw"] = e.leakage_mw;
    j["per_component_uj"] = components_uj(b);
    j["chip_uj"] = b.chip_pj * 1e-6;
    j["dram_uj"] = b.dram_pj * 1e-6;
    j["total_uj"] = (b.chip_pj + b.dram_pj) * 1e-6;
    j["power_mw"] = s > 0 ? b.chip_pj * 1e-12 / s * 1e3 : 0.0;
    j["system_power_mw"] = s > 0 ? (b.chip_pj + b.dram_pj) * 1e-12 / s * 1e3 : 0.0;
    j["effective_tflops"] = s > 0 ? eff_flops / s * 1e-12 : 0.0;
    j["real_tflops"] = s > 0 ? real_flops / s * 1e-12 : 0.0;
    j["effective_tflops_per_w"] = per_pj(eff_flops, b.chip_pj);
    j["real_tflops_per_w"] = per_pj(real_flops, b.chip_pj);
    j["system_effective_tflops_per_w"] = per_pj(eff_flops, b.chip_pj + b.dram_pj);
    j["chip_uj_per_iteration"] = b.chip_pj * 1e-6 / e.iterations;
    json ph = json::object();
    for (const auto& [name, pb] : e.per_phase)
        ph[name] = {{"chip_uj", pb.chip_pj * 1e-6},
                    {"dram_uj", pb.dram_pj * 1e-6},
                    {"effective_tflops_per_w", per_pj(2.0 * double(e.phase_dense_macs.at(name)), pb.chip_pj)}};
    j["per_phase"] = ph;
    const double conv_s = double(e.conv_cycles) / (e.clock_mhz * 1e6);
    const double conv_flops = 2.0 * double(e.conv_dense_macs);
    j["conv"] = {{"chip_uj", e.conv.chip_pj * 1e-6},
                 {"dram_uj", e.conv.dram_pj * 1e-6},
                 {"cycles", e.conv_cycles},
                 {"power_mw", conv_s > 0 ? e.conv.chip_pj * 1e-12 / conv_s * 1e3 : 0.0},
                 {"effective_tflops", conv_s > 0 ? conv_flops / conv_s * 1e-12 : 0.0},
                 {"effective_tflops_per_w", per_pj(conv_flops, e.conv.chip_pj)},
                 {"per_component_uj", components_uj(e.conv)}};
    j["best_layer_pass"] = {{"name", e.best_layer_pass}, {"effective_tflops_per_w", e.best_effective_tflops_per_w}};
    j["note"] = "chip energy excludes DRAM (reported apart); efficiency counts effective FLOPs = 2 x dense MACs";
    j["scope"] = energy_scope();
    return j;
}

std::string summary_text(const json& r) {
    std::ostringstream o;
    const json& t = r["totals"];
    o << std::fixed;
    o << "swpu-sim: " << r["workload"]["network"].get<std::string>() << ", batch " << r["workload"]["batch"].get<int>()
      << ", " << r["workload"]["iterations"].get<int>() << " iteration(s), pruning "
      << r["workload"]["pruning"].get<std::string>() << " (" << r["workload"]["source"].get<std::string>() << ")\n";
    o << "  chip     : " << r["config"]["pe_array"]["groups"].get<int>() << "x" << r["config"]["pe_array"]["lanes"].get<int>()
      << " MAC lanes at " << std::setprecision(1) << r["clock_mhz"].get<double>() << " MHz, "
      << std::setprecision(2) << r["config"]["chip"]["voltage"].get<double>() << " V\n";
    o << "  cycles   : " << t["cycles"].get<int64_t>() << " (" << std::setprecision(1) << t["time_us"].get<double>()
      << " us at the clock)\n";
    o << "  MACs     : " << t["valid_macs"].get<int64_t>() << " performed, " << t["dense_macs"].get<int64_t>()
      << " dense-equivalent\n";
    o << "  util.    : " << std::setprecision(3) << t["utilization"].get<double>() << " of G*L*cycles ("
      << t["compute_utilization"].get<double>() << " of compute cycles)\n";
    o << "  buffers  : weight " << t["wbuf_reads"].get<int64_t>() << " rd / " << t["wbuf_writes"].get<int64_t>()
      << " wr, activation " << t["abuf_reads"].get<int64_t>() << " rd / " << t["abuf_writes"].get<int64_t>()
      << " wr, output " << t["obuf_reads"].get<int64_t>() << " rd / " << t["obuf_writes"].get<int64_t>() << " wr\n";
    o << "  DRAM     : " << t["dram_read_bytes"].get<int64_t>() << " B read, " << t["dram_write_bytes"].get<int64_t>()
      << " B written, " << t["stall_dram_cycles"].get<int64_t>() << " stall cycles\n";
    for (const char* p : {"FF", "BP", "WG", "other"}) {
        if (!r["per_phase"].contains(p)) continue;
        const json& c = r["per_phase"][p];
        o << "  " << std::left << std::setw(8) << p << std::right << ": " << c["cycles"].get<int64_t>()
          << " cycles, utilization " << std::setprecision(3) << c["utilization"].get<double>() << "\n";
    }
    if (r.contains("energy")) {
        // Each figure with its scope: chip (without DRAM) or system (chip + DRAM); the whole run
        // or the conv passes (FF + BP + WG) alone. Effective FLOPs = 2 x dense MACs.
        const json& e = r["energy"];
        const json& c = e["conv"];
        o << std::setprecision(3);
        o << "  energy   : whole run: chip " << e["chip_uj"].get<double>() << " uJ + DRAM "
          << e["dram_uj"].get<double>() << " uJ = system " << e["total_uj"].get<double>() << " uJ\n";
        o << "  power    : whole run: chip " << e["power_mw"].get<double>() << " mW, system "
          << e["system_power_mw"].get<double>() << " mW\n";
        o << "  TFLOPS/W : effective, whole run: chip " << std::setprecision(2)
          << e["effective_tflops_per_w"].get<double>() << ", system "
          << e["system_effective_tflops_per_w"].get<double>() << "; conv passes: chip "
          << c["effective_tflops_per_w"].get<double>() << " (" << std::setprecision(3) << c["chip_uj"].get<double>()
          << " uJ, " << c["power_mw"].get<double>() << " mW)\n";
    }
    return o.str();
}

void write_files_atomically(const std::string& dir, const std::vector<std::pair<std::string, std::string>>& files) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw std::runtime_error(dir + ": cannot create the output directory: " + ec.message());
    std::vector<std::string> temps;
    auto cleanup = [&]() {
        for (auto& t : temps) std::remove(t.c_str());
    };
    for (const auto& [name, content] : files) {
        const std::string final_path = (fs::path(dir) / name).string();
        const std::string tmp = final_path + ".tmp." + std::to_string(::getpid());
        temps.push_back(tmp);
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) {
            cleanup();
            throw std::runtime_error(final_path + ": cannot write: " + std::strerror(errno));
        }
        out << content;
        out.flush();
        if (!out) {
            cleanup();
            throw std::runtime_error(final_path + ": write failed: " + std::strerror(errno));
        }
    }
    for (size_t i = 0; i < files.size(); ++i) {
        const std::string final_path = (fs::path(dir) / files[i].first).string();
        if (std::rename(temps[i].c_str(), final_path.c_str()) != 0) {
            cleanup();
            throw std::runtime_error(final_path + ": cannot rename into place: " + std::strerror(errno));
        }
    }
}

}  // namespace swpu
