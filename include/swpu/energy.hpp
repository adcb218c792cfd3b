// Energy model: action counts (from the simulation) x energy per action (the config's reference
// table, scaled to the run's voltage) + leakage power x time. Computed after the simulation, so a
// re-pricing at another voltage or with another table needs no re-simulation.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "swpu/config.hpp"
#include "swpu/stats.hpp"

namespace swpu {

struct EnergyBreakdown {
    std::map<std::string, double> component_pj;  // on-chip dynamic energy per component
    double leakage_pj = 0;
    double chip_pj = 0;  // on-chip dynamic + leakage
    double dram_pj = 0;  // off-chip
};

// The priced run: every energy figure a report shows, computed once by EnergyModel::evaluate and
// rendered by the report (report.hpp, energy_json).
struct EnergyResult {
    double voltage = 0, clock_mhz = 0, dynamic_scale = 1, leakage_scale = 1, leakage_mw = 0;
    int iterations = 1;
    // Whole run, priced at its wall cycles (clock tree and leakage run for the whole time).
    EnergyBreakdown run;
    double seconds = 0;
    int64_t dense_macs = 0, valid_macs = 0;
    std::map<std::string, EnergyBreakdown> per_phase;   // FF, BP, WG, other
    std::map<std::string, int64_t> phase_dense_macs;
    // The convolution passes alone (FF + BP + WG of the conv and FC layers): the datapath's efficiency.
    EnergyBreakdown conv;
    int64_t conv_cycles = 0, conv_dense_macs = 0;
    std::string best_layer_pass;  // the most efficient single conv layer-pass
    double best_effective_tflops_per_w = 0;
    std::vector<EnergyBreakdown> per_entry;  // one per result, in the results' order
};

class EnergyModel {
public:
    explicit EnergyModel(const ChipConfig& cfg);

    double dynamic_scale() const { return m_dyn; }    // (V / v_nom)^2
    double leakage_scale() const { return m_leak; }   // P_leak(V) / P_leak(v_nom)
    double leakage_mw() const;                        // at the run's voltage, calibrated

    EnergyBreakdown of(const Counters& c) const;
    // Prices a run: its results, its wall cycles and the number of training iterations it ran.
    EnergyResult evaluate(const std::vector<LayerPassResult>& results, int64_t total_cycles, int iterations) const;
    // Accelergy-style files: energy reference table and action counts.
    std::string accelergy_ert_yaml() const;
    std::string accelergy_action_counts_yaml(const std::vector<LayerPassResult>& results) const;

    struct Action {
        std::string component, action, cls;
        double pj_nom;  // table entry at v_nom, before calibration
        int64_t (*count)(const Counters&);
    };
    const std::vector<Action>& actions() const { return m_actions; }
    double calibrated_pj(const Action& a) const;  // at the run's voltage

private:
    const ChipConfig& m_cfg;
    double m_dyn, m_leak;
    std::vector<Action> m_actions;
};

}  // namespace swpu
