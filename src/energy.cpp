#include "swpu/energy.hpp"

#include <cmath>
#include <iomanip>
#include <sstream>

namespace swpu {

using nlohmann::json;

EnergyModel::EnergyModel(const ChipConfig& cfg) : m_cfg(cfg) {
    const double v = cfg.chip.voltage, vn = cfg.chip.v_nom;
    m_dyn = (v / vn) * (v / vn);
    m_leak = (v / vn) * std::exp(cfg.energy.leakage_dibl_per_v * (v - vn));
    const auto& e = cfg.energy;
    m_actions = {
        {"pe_array", cfg.pe_array.mult_format + "_mult", "compute", cfg.pe_array.mult_format == "fp8" ? e.fp8_mult_pj : e.fp16_mult_pj,
         [](const Counters& c) { return c.valid_macs; }},
        {"pe_array", "fp32_add", "compute", e.fp32_add_pj, [](const Counters& c) { return c.acc_updates + c.adder_tree_adds; }},
        {"pe_array", "acc_rf_update", "compute", e.acc_rf_pj, [](const Counters& c) { return c.acc_updates; }},
        {"compaction_network", "stage_traversal", "interconnect", e.switch_stage_pj, [](const Counters& c) { return c.switch_traversals; }},
        {"compaction_network", "switch_hop", "interconnect", e.switch_hop_pj, [](const Counters& c) { return c.switch_hops; }},
        {"compaction_network", "scatter_stage", "interconnect", e.scatter_stage_pj, [](const Counters& c) { return c.scatter_traversals; }},
        // A crossbar's wires grow with its input ports: the table's figure is for a 64-position window.
        {"crossbar", "route", "interconnect", e.crossbar_route_pj * cfg.compaction.window / 64.0,
         [](const Counters& c) { return c.crossbar_routes; }},
        {"crossbar", "index_read", "control", e.index_read_pj, [](const Counters& c) { return c.index_reads; }},
        {"dbl_controller", "zero_detect", "control", e.zero_detect_pj, [](const Counters& c) { return c.zero_detects; }},
        {"dbl_controller", "mask_read", "control", e.mask_read_pj, [](const Counters& c) { return c.mask_reads; }},
        {"reorder_unit", "hamming_op", "control", e.hamming_op_pj, [](const Counters& c) { return c.hamming_ops; }},
        {"vector_unit", "element_op", "compute", e.vector_op_pj, [](const Counters& c) { return c.vector_ops; }},
        {"clock_tree", "cycle", "control", e.clock_pj_per_cycle, [](const Counters& c) { return c.cycles; }},
        {"weight_buffer", "access", "sram", e.weight_buffer_access_pj, [](const Counters& c) { return c.wbuf_reads + c.wbuf_writes; }},
        {"activation_buffer", "access", "sram", e.activation_buffer_access_pj, [](const Counters& c) { return c.abuf_reads + c.abuf_writes; }},
        {"output_buffer", "access", "sram", e.output_buffer_access_pj, [](const Counters& c) { return c.obuf_reads + c.obuf_writes; }},
        {"dram", "bit", "dram", e.dram_pj_per_bit, [](const Counters& c) { return (c.dram_read_bytes + c.dram_write_bytes) * 8; }},
    };
}

double EnergyModel::calibrated_pj(const Action& a) const {
    const auto& e = m_cfg.energy;
    double cal = 1.0;
    if (a.cls == "compute") cal = e.cal_compute;
    else if (a.cls == "sram") cal = e.cal_sram;
    else if (a.cls == "interconnect") cal = e.cal_interconnect;
    else if (a.cls == "control") cal = e.cal_control;
    else if (a.cls == "dram") cal = e.cal_dram;
    // DRAM has its own supply: it does not scale with the chip's voltage.
    return a.pj_nom * cal * (a.cls == "dram" ? 1.0 : m_dyn);
}

double EnergyModel::leakage_mw() const {
    const auto& e = m_cfg.energy;
    return (e.leakage_pe_array_mw + e.leakage_sram_mw + e.leakage_other_mw) * e.cal_leakage * m_leak;
}

EnergyBreakdown EnergyModel::of(const Counters& c) const {
    EnergyBreakdown b;
    for (const auto& a : m_actions) {
        const double pj = double(a.count(c)) * calibrated_pj(a);
        if (a.cls == "dram") b.dram_pj += pj;
        else b.component_pj[a.component] += pj;
    }
    const double seconds = double(c.cycles) / (m_cfg.clock_mhz() * 1e6);
    b.leakage_pj = leakage_mw() * 1e-3 * seconds * 1e12;
    b.chip_pj = b.leakage_pj;
    for (auto& [k, v] : b.component_pj) b.chip_pj += v;
    return b;
}

void EnergyModel::annotate(json& report, const std::vector<LayerPassResult>& results, int64_t total_cycles) const {
    Counters total;
    std::map<std::string, Counters> phase;
    for (const auto& r : results) {
        total += r.c;
        phase[to_string(r.pass)] += r.c;
    }
    // The run's wall cycles (not the sum over entries) price the clock tree and leakage.
    Counters wall = total;
    wall.cycles = total_cycles;
    const EnergyBreakdown b = of(wall);
    const double seconds = double(total_cycles) / (m_cfg.clock_mhz() * 1e6);
    const double eff_flops = 2.0 * double(total.dense_macs);
    const double real_flops = 2.0 * double(total.valid_macs);
    json e;
    e["voltage"] = m_cfg.chip.voltage;
    e["clock_mhz"] = m_cfg.clock_mhz();
    e["dynamic_scale"] = m_dyn;
    e["leakage_scale"] = m_leak;
    e["leakage_mw"] = leakage_mw();
    json comp = json::object();
    for (auto& [k, v] : b.component_pj) comp[k] = v * 1e-6;
    comp["leakage"] = b.leakage_pj * 1e-6;
    e["per_component_uj"] = comp;
    e["chip_uj"] = b.chip_pj * 1e-6;
    e["dram_uj"] = b.dram_pj * 1e-6;
    e["total_uj"] = (b.chip_pj + b.dram_pj) * 1e-6;
    e["power_mw"] = seconds > 0 ? b.chip_pj * 1e-12 / seconds * 1e3 : 0.0;
    e["system_power_mw"] = seconds > 0 ? (b.chip_pj + b.dram_pj) * 1e-12 / seconds * 1e3 : 0.0;
    e["effective_tflops"] = seconds > 0 ? eff_flops / seconds * 1e-12 : 0.0;
    e["real_tflops"] = seconds > 0 ? real_flops / seconds * 1e-12 : 0.0;
    // TFLOPS/W = FLOPs / energy (pJ) since (FLOP/s)/(J/s) = FLOP/J and 1 FLOP/pJ = 1 TFLOPS/W.
    e["effective_tflops_per_w"] = b.chip_pj > 0 ? eff_flops / b.chip_pj : 0.0;
    e["real_tflops_per_w"] = b.chip_pj > 0 ? real_flops / b.chip_pj : 0.0;
    e["system_effective_tflops_per_w"] = (b.chip_pj + b.dram_pj) > 0 ? eff_flops / (b.chip_pj + b.dram_pj) : 0.0;
    const int iters = report.contains("workload") ? report["workload"]["iterations"].get<int>() : 1;
    e["chip_uj_per_iteration"] = b.chip_pj * 1e-6 / std::max(1, iters);
    json ph = json::object();
    for (auto& [name, c] : phase) {
        const EnergyBreakdown pb = of(c);
        ph[name] = {{"chip_uj", pb.chip_pj * 1e-6},
                    {"dram_uj", pb.dram_pj * 1e-6},
                    {"effective_tflops_per_w", pb.chip_pj > 0 ? 2.0 * double(c.dense_macs) / pb.chip_pj : 0.0}};
    }
    e["per_phase"] = ph;
    // The convolution passes alone (FF + BP + WG on the PE array): the datapath's efficiency.
    Counters conv;
    for (const auto& r : results)
        if (r.c.dense_macs > 0) conv += r.c;  // conv and FC passes (vector-unit entries have none)
    const EnergyBreakdown cb = of(conv);
    json cc = json::object();
    for (auto& [k2, v] : cb.component_pj) cc[k2] = v * 1e-6;
    cc["leakage"] = cb.leakage_pj * 1e-6;
    const double conv_s = double(conv.cycles) / (m_cfg.clock_mhz() * 1e6);
    e["conv"] = {{"chip_uj", cb.chip_pj * 1e-6},
                 {"dram_uj", cb.dram_pj * 1e-6},
                 {"cycles", conv.cycles},
                 {"power_mw", conv_s > 0 ? cb.chip_pj * 1e-12 / conv_s * 1e3 : 0.0},
                 {"effective_tflops", conv_s > 0 ? 2.0 * double(conv.dense_macs) / conv_s * 1e-12 : 0.0},
                 {"effective_tflops_per_w", cb.chip_pj > 0 ? 2.0 * double(conv.dense_macs) / cb.chip_pj : 0.0},
                 {"per_component_uj", cc}};
    // The best single conv layer-pass of the run.
    double best = 0;
    std::string best_name;
    for (const auto& r : results) {
        if (!(r.pass == Pass::FF || r.pass == Pass::BP || r.pass == Pass::WG) || r.c.dense_macs == 0) continue;
        const EnergyBreakdown lb = of(r.c);
        const double eff = lb.chip_pj > 0 ? 2.0 * double(r.c.dense_macs) / lb.chip_pj : 0.0;
        if (eff > best) {
            best = eff;
            best_name = r.layer + " " + to_string(r.pass);
        }
    }
    e["best_layer_pass"] = {{"name", best_name}, {"effective_tflops_per_w", best}};
    e["note"] = "chip energy excludes DRAM (reported apart); efficiency counts effective FLOPs = 2 x dense MACs";
    report["energy"] = e;
    if (report.contains("layers")) {
        auto& layers = report["layers"];
        for (size_t i = 0; i < results.size() && i < layers.size(); ++i) {
            const EnergyBreakdown lb = of(results[i].c);
            layers[i]["energy_chip_uj"] = lb.chip_pj * 1e-6;
            layers[i]["energy_dram_uj"] = lb.dram_pj * 1e-6;
        }
    }
}

std::string EnergyModel::accelergy_ert_yaml() const {
    std::ostringstream o;
    o << std::setprecision(6);
    o << "# Energy reference table (pJ per action) at " << m_cfg.chip.voltage << " V, calibrated.\n";
    o << "ERT:\n  version: 0.3\n  tables:\n";
    std::string last;
    for (const auto& a : m_actions) {
        if (a.component != last) {
            o << "  - name: swpu." << a.component << "\n    actions:\n";
            last = a.component;
        }
        o << "    - name: " << a.action << "\n      arguments: null\n      energy: " << calibrated_pj(a) << "\n";
    }
    o << "  - name: swpu.leakage\n    actions:\n    - name: idle_power_mw\n      arguments: null\n      energy: "
      << leakage_mw() << "\n";
    return o.str();
}

std::string EnergyModel::accelergy_action_counts_yaml(const std::vector<LayerPassResult>& results) const {
    Counters total;
    for (const auto& r : results) total += r.c;
    std::ostringstream o;
    o << "# Action counts of the whole run (sum over layers and passes).\n";
    o << "action_counts:\n  version: 0.3\n  local:\n";
    std::string last;
    for (const auto& a : m_actions) {
        if (a.component != last) {
            o << "  - name: swpu." << a.component << "\n    action_counts:\n";
            last = a.component;
        }
        o << "    - name: " << a.action << "\n      counts: " << a.count(total) << "\n";
    }
    return o.str();
}

}  // namespace swpu
