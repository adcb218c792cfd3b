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

EnergyResult EnergyModel::evaluate(const std::vector<LayerPassResult>& results, int64_t total_cycles, int iterations) const {
    EnergyResult e;
    e.voltage = m_cfg.chip.voltage;
    e.clock_mhz = m_cfg.clock_mhz();
    e.dynamic_scale = m_dyn;
    e.leakage_scale = m_leak;
    e.leakage_mw = leakage_mw();
    e.iterations = std::max(1, iterations);
    Counters total, conv;
    std::map<std::string, Counters> phase;
    e.per_entry.reserve(results.size());
    for (const auto& r : results) {
        total += r.c;
        phase[to_string(r.pass)] += r.c;
        if (r.c.dense_macs > 0) conv += r.c;  // conv and FC passes (vector-unit entries have none)
        e.per_entry.push_back(of(r.c));
        const bool conv_pass = r.pass == Pass::FF || r.pass == Pass::BP || r.pass == Pass::WG;
        const EnergyBreakdown& lb = e.per_entry.back();
        const double eff = lb.chip_pj > 0 ? 2.0 * double(r.c.dense_macs) / lb.chip_pj : 0.0;
        if (conv_pass && r.c.dense_macs > 0 && eff > e.best_effective_tflops_per_w) {
            e.best_effective_tflops_per_w = eff;
            e.best_layer_pass = r.layer + " " + to_string(r.pass);
        }
    }
    // The run's wall cycles (not the sum over entries) price the clock tree and leakage.
    Counters wall = total;
    wall.cycles = total_cycles;
    e.run = of(wall);
    e.seconds = double(total_cycles) / (m_cfg.clock_mhz() * 1e6);
    e.dense_macs = total.dense_macs;
    e.valid_macs = total.valid_macs;
    for (auto& [name, c] : phase) {
        e.per_phase[name] = of(c);
        e.phase_dense_macs[name] = c.dense_macs;
    }
    e.conv = of(conv);
    e.conv_cycles = conv.cycles;
    e.conv_dense_macs = conv.dense_macs;
    return e;
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
