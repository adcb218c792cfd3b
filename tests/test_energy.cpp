// Energy model: counts x table with voltage scaling, the leakage model, and the calibrated peak.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "swpu/energy.hpp"

namespace swpu {
namespace {

// Energy is the sum of action counts times the table, scaled by (V / v_nom)^2, plus leakage x time.
TEST(Energy, CountsTimesTableByHand) {
    RunConfig cfg;
    cfg.energy.cal_compute = cfg.energy.cal_sram = cfg.energy.cal_interconnect = cfg.energy.cal_control =
        cfg.energy.cal_leakage = 1.0;
    Counters c;
    c.valid_macs = 1000;    // 1000 x 0.67 pJ
    c.acc_updates = 1000;   // 1000 x (0.55 + 0.06) pJ
    c.wbuf_reads = 10;      // 10 x 9 pJ
    c.dram_read_bytes = 100;  // 800 bits x 8 pJ, off chip
    c.cycles = 675;         // 1 us at 675 MHz: clock 675 x 15 pJ, leakage 10 mW x 1 us = 10000 pJ
    EnergyModel m(cfg);
    const EnergyBreakdown b = m.of(c);
    EXPECT_NEAR(b.component_pj.at("pe_array"), 670.0 + 610.0, 1e-9);
    EXPECT_NEAR(b.component_pj.at("weight_buffer"), 90.0, 1e-9);
    EXPECT_NEAR(b.component_pj.at("clock_tree"), 675 * 15.0, 1e-9);
    EXPECT_NEAR(b.dram_pj, 6400.0, 1e-9);
    EXPECT_NEAR(b.leakage_pj, 10000.0, 1e-6);
    EXPECT_NEAR(b.chip_pj, 670.0 + 610.0 + 90.0 + 675 * 15.0 + 10000.0, 1e-6);
}

TEST(Energy, VoltageScaling) {
    RunConfig nom, low;
    low.chip.voltage = 0.56;
    EnergyModel a(nom), b(low);
    EXPECT_DOUBLE_EQ(a.dynamic_scale(), 1.0);
    EXPECT_NEAR(b.dynamic_scale(), 0.56 * 0.56, 1e-12);
    // Leakage: P(V) = P(v_nom) (V / v_nom) exp(k (V - v_nom)), k = 2 / V.
    EXPECT_NEAR(b.leakage_scale(), 0.56 * std::exp(2.0 * (0.56 - 1.0)), 1e-12);
    Counters c;
    c.valid_macs = 12345;
    const double pe_nom = a.of(c).component_pj.at("pe_array"), pe_low = b.of(c).component_pj.at("pe_array");
    EXPECT_NEAR(pe_low / pe_nom, 0.56 * 0.56, 1e-12);
    // DRAM is on its own supply: no scaling.
    c.dram_write_bytes = 1000;
    EXPECT_DOUBLE_EQ(a.of(c).dram_pj, b.of(c).dram_pj);
}

TEST(Energy, FrequencyFollowsAlphaPowerLaw) {
    RunConfig c;
    EXPECT_DOUBLE_EQ(c.f_max_mhz(1.0), 675.0);
    // (0.16^1.3 / 0.56) / (0.6^1.3 / 1.0) x 675 MHz
    const double expect = 675.0 * (std::pow(0.16, 1.3) / 0.56) / std::pow(0.6, 1.3);
    EXPECT_NEAR(c.f_max_mhz(0.56), expect, 1e-9);
    EXPECT_NEAR(c.f_max_mhz(0.56), 216.2, 0.1);
}

// The calibrated peak: configs/peak.json (0.56 V, 90% sub-structured weight sparsity, 90%
// activation and gradient sparsity) lands on the paper's 126.04 TFLOPS/W within 3%.
TEST(Energy, CalibratedPeakReproducesThePaper) {
    namespace fs = std::filesystem;
    const fs::path out = fs::temp_directory_path() / ("swpu_peak_" + std::to_string(::getpid()));
    const std::string cmd = std::string("SC_COPYRIGHT_MESSAGE=DISABLE ") + SWPU_SIM_BINARY + " --config " +
                            SWPU_SOURCE_DIR + "/configs/peak.json --out " + out.string() + " -q";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    std::ifstream in(out / "report.json");
    const nlohmann::json r = nlohmann::json::parse(in);
    const double peak = r["energy"]["conv"]["effective_tflops_per_w"].get<double>();
    RecordProperty("peak_tflops_per_w", std::to_string(peak));
    EXPECT_NEAR(peak, 126.04, 0.03 * 126.04);
    EXPECT_NEAR(r["clock_mhz"].get<double>(), 216.2, 0.1);
    // Every calibration factor stays within 0.5x-2x of the cited table.
    for (const char* k : {"cal_compute", "cal_sram", "cal_interconnect", "cal_control", "cal_dram", "cal_leakage"}) {
        const double f = r["config"]["energy"][k].get<double>();
        EXPECT_GE(f, 0.5) << k;
        EXPECT_LE(f, 2.0) << k;
    }
    fs::remove_all(out);
}

}  // namespace
}  // namespace swpu
