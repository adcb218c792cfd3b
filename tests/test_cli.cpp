// The swpu-sim command line, run as a separate process in a temporary directory: a good run and
// its reports, bad inputs (exit status 2, a message naming the file or field on stderr, nothing
// written), and the informational options (--help, --print-config, --config-doc).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "swpu/config.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const std::string kBinary = SWPU_SIM_BINARY;
const std::string kSourceDir = SWPU_SOURCE_DIR;
// Keeps the runs short: a quarter-width ResNet-18.
const std::string kFast = "--set workload.width=0.25";

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

std::string read_text(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string shell_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'') out += "'\\''";
        else out += c;
    }
    return out + "'";
}

struct ProcResult {
    int status = -1;  // exit status, or -1 when the process did not exit normally
    std::string out, err;
};

// A temporary working directory holding a copy of configs/swpu.json at configs/swpu.json.
class CliTest : public ::testing::Test {
protected:
    fs::path dir;

    void SetUp() override {
        static int counter = 0;
        dir = fs::temp_directory_path() / ("swpu_cli_test_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
        fs::remove_all(dir);
        fs::create_directories(dir / "configs");
        fs::copy_file(fs::path(kSourceDir) / "configs" / "swpu.json", dir / "configs" / "swpu.json");
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }

    // Runs swpu-sim with args (already shell-quoted where needed) in dir, stdin closed.
    ProcResult run(const std::string& args) const {
        const std::string out_file = (dir / ".stdout").string(), err_file = (dir / ".stderr").string();
        const std::string cmd = "cd " + shell_quote(dir.string()) + " && " + shell_quote(kBinary) + " " + args +
                                " </dev/null >" + shell_quote(out_file) + " 2>" + shell_quote(err_file);
        const int raw = std::system(cmd.c_str());
        ProcResult r;
        r.status = (raw != -1 && WIFEXITED(raw)) ? WEXITSTATUS(raw) : -1;
        r.out = read_text(out_file);
        r.err = read_text(err_file);
        fs::remove(out_file);
        fs::remove(err_file);
        return r;
    }

    fs::path write(const std::string& name, const std::string& text) const {
        std::ofstream o(dir / name, std::ios::binary | std::ios::trunc);
        o << text;
        return dir / name;
    }

    // The out directory of a refused run must not exist, or be empty.
    void expect_nothing_written(const std::string& out_name) const {
        const fs::path out = dir / out_name;
        if (fs::exists(out)) {
            EXPECT_TRUE(fs::is_directory(out) && fs::is_empty(out)) << out << " was written to";
        }
        for (const auto& entry : fs::directory_iterator(dir)) {
            const std::string name = entry.path().filename().string();
            EXPECT_TRUE(name == "configs" || name == out_name || name == "bad.json" || name == "traces")
                << "unexpected file left in the working directory: " << name;
        }
    }

    // A refused run: exit status 2, stderr names every one of `names`, nothing on stdout, no reports.
    void expect_refused(const std::string& args, const std::vector<std::string>& names,
                        bool quiet_stdout = true) const {
        SCOPED_TRACE("swpu-sim " + args);
        const ProcResult r = run(args);
        EXPECT_EQ(r.status, 2) << "stderr: " << r.err;
        for (const auto& n : names) EXPECT_TRUE(contains(r.err, n)) << "stderr does not name '" << n << "': " << r.err;
        if (quiet_stdout) EXPECT_TRUE(r.out.empty()) << "stdout: " << r.out;
        expect_nothing_written("out_bad");
    }
};

// ---------------------------------------------------------------------------------------------
// A good run

TEST_F(CliTest, DefaultConfigRunWritesReports) {
    const ProcResult r = run("--config configs/swpu.json --out out " + kFast);
    ASSERT_EQ(r.status, 0) << "stderr: " << r.err << "\nstdout: " << r.out;
    EXPECT_TRUE(contains(r.out, "cycles")) << r.out;
    EXPECT_TRUE(contains(r.out, "utilization")) << r.out;

    const fs::path out = dir / "out";
    ASSERT_TRUE(fs::exists(out / "report.json"));
    json report;
    ASSERT_NO_THROW(report = json::parse(read_text(out / "report.json")));
    for (const char* key : {"totals", "layers", "per_phase", "assumptions", "config", "energy"})
        EXPECT_TRUE(report.contains(key)) << "report.json lacks '" << key << "'";
    ASSERT_TRUE(report["totals"].contains("cycles"));
    EXPECT_GT(report["totals"]["cycles"].get<int64_t>(), 0);
    ASSERT_TRUE(report["layers"].is_array());
    EXPECT_GT(report["layers"].size(), 0u);
    EXPECT_DOUBLE_EQ(report["config"]["workload"]["width"].get<double>(), 0.25) << "--set not echoed in the report";
    EXPECT_EQ(report["config"], [] {
        swpu::RunConfig c;
        c.workload.width = 0.25;
        return c.to_json();
    }());

    ASSERT_TRUE(fs::exists(out / "layers.csv"));
    std::istringstream csv(read_text(out / "layers.csv"));
    std::string header, line;
    ASSERT_TRUE(static_cast<bool>(std::getline(csv, header)));
    EXPECT_TRUE(contains(header, "layer")) << header;
    EXPECT_TRUE(contains(header, "cycles")) << header;
    const auto columns = std::count(header.begin(), header.end(), ',') + 1;
    size_t rows = 0;
    while (std::getline(csv, line)) {
        if (line.empty()) continue;
        ++rows;
        EXPECT_EQ(std::count(line.begin(), line.end(), ',') + 1, columns) << "row " << rows << ": " << line;
    }
    EXPECT_EQ(rows, report["layers"].size());

    EXPECT_TRUE(fs::exists(out / "energy_reference_table.yaml"));
    EXPECT_TRUE(fs::exists(out / "action_counts.yaml"));
    for (const auto& entry : fs::directory_iterator(out))
        EXPECT_NE(entry.path().filename().string().rfind(".", 0), 0u)
            << "temporary file left behind: " << entry.path();
}

// ---------------------------------------------------------------------------------------------
// Bad inputs: exit status 2, a message naming the file or field, nothing written

// The summary prints each energy figure with its scope (chip / system, whole run / conv passes),
// each equal to the report's field of that scope, and the chip power times the run's time is the
// chip energy (not the chip + DRAM energy).
TEST_F(CliTest, SummaryPrintsEachFigureWithItsScope) {
    const ProcResult r = run("--config configs/swpu.json --out out " + kFast);
    ASSERT_EQ(r.status, 0) << "stderr: " << r.err;
    const json rep = json::parse(read_text(dir / "out" / "report.json"));
    const json& e = rep["energy"];
    double chip = 0, dram = 0, sys = 0, pw = 0, spw = 0, eff = 0, seff = 0, ceff = 0, cuj = 0, cpw = 0;
    const auto line = [&](const std::string& head) {
        const auto at = r.out.find(head);
        EXPECT_NE(at, std::string::npos) << head << " missing from:\n" << r.out;
        return at == std::string::npos ? std::string() : r.out.substr(at, r.out.find('\n', at) - at);
    };
    ASSERT_EQ(std::sscanf(line("  energy   : ").c_str(), "  energy   : whole run: chip %lf uJ + DRAM %lf uJ = system %lf uJ",
                          &chip, &dram, &sys), 3) << r.out;
    ASSERT_EQ(std::sscanf(line("  power    : ").c_str(), "  power    : whole run: chip %lf mW, system %lf mW", &pw, &spw), 2)
        << r.out;
    ASSERT_EQ(std::sscanf(line("  TFLOPS/W : ").c_str(),
                          "  TFLOPS/W : effective, whole run: chip %lf, system %lf; conv passes: chip %lf (%lf uJ, %lf mW)",
                          &eff, &seff, &ceff, &cuj, &cpw), 5) << r.out;
    EXPECT_NEAR(chip, e["chip_uj"].get<double>(), 1e-3);
    EXPECT_NEAR(dram, e["dram_uj"].get<double>(), 1e-3);
    EXPECT_NEAR(sys, e["total_uj"].get<double>(), 1e-3);
    EXPECT_NEAR(pw, e["power_mw"].get<double>(), 1e-3);
    EXPECT_NEAR(spw, e["system_power_mw"].get<double>(), 1e-3);
    EXPECT_NEAR(eff, e["effective_tflops_per_w"].get<double>(), 0.01);
    EXPECT_NEAR(seff, e["system_effective_tflops_per_w"].get<double>(), 0.01);
    EXPECT_NEAR(ceff, e["conv"]["effective_tflops_per_w"].get<double>(), 0.01);
    EXPECT_NEAR(cuj, e["conv"]["chip_uj"].get<double>(), 1e-3);
    EXPECT_NEAR(cpw, e["conv"]["power_mw"].get<double>(), 1e-3);
    const double time_s = rep["totals"]["time_us"].get<double>() * 1e-6;
    EXPECT_NEAR(pw * 1e-3 * time_s * 1e6, chip, 1e-3 * chip);  // chip power x time = chip energy
    EXPECT_NEAR(spw * 1e-3 * time_s * 1e6, sys, 1e-3 * sys);
    ASSERT_TRUE(e.contains("scope"));
    for (const char* k : {"chip_uj", "total_uj", "power_mw", "effective_tflops_per_w", "conv.effective_tflops_per_w"})
        EXPECT_TRUE(e["scope"].contains(k)) << k;
    EXPECT_TRUE(contains(e["scope"]["total_uj"].get<std::string>(), "chip + DRAM"));
    EXPECT_TRUE(contains(e["scope"]["conv.effective_tflops_per_w"].get<std::string>(), "conv passes"));
    ASSERT_EQ(rep["config_files"].size(), 1u);
}

// An overlay runs as its base plus its fields; a cycle of "extends" is refused with status 2.
TEST_F(CliTest, OverlayConfigRunsAndExtendsCycleIsRefused) {
    write("configs/dense.json", R"({"extends": "swpu.json", "workload": {"pruning": "dense"}})");
    const ProcResult r = run("--config configs/dense.json --print-config");
    ASSERT_EQ(r.status, 0) << r.err;
    const json cfg = json::parse(r.out);
    EXPECT_EQ(cfg["workload"]["pruning"], "dense");
    EXPECT_EQ(cfg["pe_array"]["groups"], 16);
    write("configs/a.json", R"({"extends": "b.json"})");
    write("configs/b.json", R"({"extends": "a.json"})");
    expect_refused("--config configs/a.json --out out_bad", {"configs/a.json", "extends", "closes a cycle"});
    expect_refused("--config configs/dense.json --set workload.pruning=none --out out_bad", {"workload.pruning"});
}

TEST_F(CliTest, BadConfigFileIsRefused) {
    write("bad.json", R"({"chip": {"voltage": 1.0}, "bogus_key": 3})");
    expect_refused("--config bad.json --out out_bad " + kFast, {"bad.json", "bogus_key", "unknown key"});
}

TEST_F(CliTest, BadConfigValueIsRefused) {
    write("bad.json", R"({"pe_array": {"lanes": 0}})");
    expect_refused("--config bad.json --out out_bad " + kFast, {"bad.json", "pe_array.lanes", "out of range"});
}

TEST_F(CliTest, InvalidJsonIsRefused) {
    write("bad.json", "{\"chip\": {\"voltage\": 1.0,}}\n");
    expect_refused("--config bad.json --out out_bad " + kFast, {"bad.json", "invalid JSON"});
}

TEST_F(CliTest, MissingConfigFileIsRefused) {
    expect_refused("--config configs/no_such.json --out out_bad " + kFast, {"configs/no_such.json"});
}

TEST_F(CliTest, MissingConfigOptionIsRefused) {
    expect_refused("--out out_bad " + kFast, {"--config"});
}

TEST_F(CliTest, BadSetValueIsRefused) {
    expect_refused("--config configs/swpu.json --out out_bad --set pe_array.lanes=abc", {"--set", "pe_array.lanes"});
}

// --layer/--pass: one (layer, pass) of the first iteration, after the reorder unit clusters it.
TEST_F(CliTest, SingleLayerPass) {
    const ProcResult r = run("--config configs/swpu.json --layer layer1.0.conv1 --pass WG --out out_single -q " + kFast);
    ASSERT_EQ(r.status, 0) << r.err;
    json report;
    ASSERT_NO_THROW(report = json::parse(read_text(dir / "out_single" / "report.json")));
    int passes = 0;
    for (const auto& l : report["layers"])
        if (l["pass"] != "other") {
            ++passes;
            EXPECT_EQ(l["layer"], "layer1.0.conv1");
            EXPECT_EQ(l["pass"], "WG");
            EXPECT_GT(l["valid_macs"].get<int64_t>(), 0);
        }
    EXPECT_EQ(passes, 1);
}

TEST_F(CliTest, BadSingleLayerIsRefused) {
    expect_refused("--config configs/swpu.json --out out_bad --layer nope --pass FF " + kFast,
                   {"--layer nope", "no weighted", "layer1.0.conv1"});
    expect_refused("--config configs/swpu.json --out out_bad --layer conv1 " + kFast, {"--layer", "--pass"});
    expect_refused("--config configs/swpu.json --out out_bad --pass FF " + kFast, {"--pass", "--layer"});
    expect_refused("--config configs/swpu.json --out out_bad --layer conv1 --pass BP " + kFast, {"conv1", "no BP pass"});
    expect_refused("--config configs/swpu.json --out out_bad --layer conv1 --pass XX " + kFast, {"--pass"});
}

TEST_F(CliTest, UnknownSetPathIsRefused) {
    expect_refused("--config configs/swpu.json --out out_bad --set chip.volts=0.9", {"chip.volts", "unknown"});
}

TEST_F(CliTest, SetFrequencyAboveFmaxIsRefused) {
    expect_refused("--config configs/swpu.json --out out_bad --set chip.voltage=0.6 --set chip.frequency_mhz=400",
                   {"chip.frequency_mhz", "f_max"});
}

TEST_F(CliTest, SetWithoutEqualsIsRefused) {
    expect_refused("--config configs/swpu.json --out out_bad --set chip.voltage", {"PATH=VALUE"});
}

TEST_F(CliTest, UnknownOptionIsRefused) {
    expect_refused("--config configs/swpu.json --out out_bad --frobnicate " + kFast, {"--frobnicate"});
}

TEST_F(CliTest, VcdWindowWithoutVcdIsRefused) {
    expect_refused("--config configs/swpu.json --out out_bad --vcd-window 0:100 " + kFast, {"--vcd-window", "--vcd"});
}

TEST_F(CliTest, BadVcdWindowIsRefused) {
    for (const std::string w : {"100:50", "abc", "5", "-1:10", "0:10x", "10:10"}) {
        expect_refused("--config configs/swpu.json --out out_bad --vcd out_bad/run.vcd --vcd-window " + shell_quote(w) +
                           " " + kFast,
                       {"--vcd-window", w});
        EXPECT_FALSE(fs::exists(dir / "out_bad" / "run.vcd"));
    }
}

TEST_F(CliTest, UnwritableVcdIsRefused) {
    // stdout is not checked here: SystemC prints its W569 deprecation warning for the VCD writer's
    // sc_module(const char*) constructor there.
    expect_refused("--config configs/swpu.json --out out_bad --vcd no_such_dir/run.vcd " + kFast,
                   {"--vcd", "no_such_dir/run.vcd"}, /*quiet_stdout=*/false);
}

TEST_F(CliTest, MissingTraceDirectoryIsRefused) {
    expect_refused("--config configs/swpu.json --out out_bad --trace traces/no_such_trace " + kFast, {"no_such_trace"});
}

TEST_F(CliTest, BadTraceDirectoryIsRefused) {
    fs::create_directories(dir / "traces" / "empty_trace");
    expect_refused("--config configs/swpu.json --out out_bad --trace traces/empty_trace " + kFast, {"empty_trace"});
}

TEST_F(CliTest, UnwritableOutDirIsRefused) {
    write("bad.json", "{}");  // a regular file where the out directory's parent should be
    const ProcResult r = run("--config configs/swpu.json --out bad.json/out " + kFast);
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_TRUE(contains(r.err, "bad.json/out")) << r.err;
}

// ---------------------------------------------------------------------------------------------
// Informational options

TEST_F(CliTest, HelpListsTheMainOptions) {
    const ProcResult r = run("--help");
    EXPECT_EQ(r.status, 0) << r.err;
    // The help says which engine is cycle-accurate and what the fast one is.
    EXPECT_TRUE(contains(r.out, "'cycle' (the default) is the")) << r.out;
    EXPECT_TRUE(contains(r.out, "cycle-accurate model")) << r.out;
    EXPECT_TRUE(contains(r.out, "'fast' is a step-level model")) << r.out;
    for (const char* opt : {"--config", "--trace", "--set", "--vcd", "--vcd-window", "--out", "--print-config",
                            "--config-doc", "--engine", "--layer", "--pass"})
        EXPECT_TRUE(contains(r.out, opt)) << "--help does not mention " << opt << ":\n" << r.out;
}

TEST_F(CliTest, PrintConfigPrintsTheEffectiveConfig) {
    const ProcResult r = run("--config configs/swpu.json --print-config --set chip.voltage=0.7 --engine fast "
                             "--set compaction.routing=crossbar");
    ASSERT_EQ(r.status, 0) << r.err;
    json j;
    ASSERT_NO_THROW(j = json::parse(r.out)) << r.out;
    swpu::RunConfig expected;
    expected.chip.voltage = 0.7;
    expected.compaction.routing = "crossbar";
    expected.simulation.engine = "fast";
    EXPECT_EQ(j, expected.to_json());
    EXPECT_FALSE(fs::exists(dir / "out")) << "--print-config wrote the default out directory";
}

TEST_F(CliTest, PrintConfigOfTheDefaultFile) {
    const ProcResult r = run("--config configs/swpu.json --print-config");
    ASSERT_EQ(r.status, 0) << r.err;
    json j;
    ASSERT_NO_THROW(j = json::parse(r.out)) << r.out;
    EXPECT_EQ(j, swpu::RunConfig{}.to_json());
}

TEST_F(CliTest, ConfigDocPrintsTheTable) {
    const ProcResult r = run("--config-doc");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, swpu::config_markdown());
    EXPECT_TRUE(contains(r.out, "| `chip.voltage` |")) << r.out;
}

}  // namespace
