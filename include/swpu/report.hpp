// Reports: report.json (config echo, assumptions, totals, per phase, per layer and pass),
// layers.csv, and a short human summary. Files are written atomically.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "swpu/config.hpp"
#include "swpu/energy.hpp"
#include "swpu/stats.hpp"
#include "swpu/workload.hpp"

namespace swpu {

struct RunInfo {
    std::string config_file;
    std::string trace_source;
    std::string network;
    int batch = 1;
    int iterations = 1;
    std::string pruning;
    double host_seconds = 0;
    int64_t total_cycles = 0;
};

// With an energy result (EnergyModel::evaluate of the same results), the report holds its "energy"
// block and each entry's energy.
nlohmann::json build_report(const RunConfig& cfg, const RunInfo& info, const std::vector<LayerPassResult>& results,
                            const EnergyResult* energy = nullptr);
std::string layers_csv(const ChipConfig& cfg, const std::vector<LayerPassResult>& results);
// The report's "energy" block: every figure with its scope (chip or chip + DRAM; whole run or conv passes).
nlohmann::json energy_json(const EnergyResult& energy);
std::string summary_text(const nlohmann::json& report);

// Writes every (name, content) pair into dir atomically: all temporary files first, then renames.
// Throws std::runtime_error naming the file on failure (and removes the temporaries).
void write_files_atomically(const std::string& dir, const std::vector<std::pair<std::string, std::string>>& files);

}  // namespace swpu
