// The VCD waveform: header, scopes and value changes parse, and the signals agree with the run's
// counters (the sum of valid lanes over the window equals the valid MACs of the window).
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {

namespace fs = std::filesystem;

struct Vcd {
    std::map<std::string, std::string> id_of;  // scope.name -> id (clk: "clk")
    std::map<std::string, int> width;
    std::vector<std::pair<uint64_t, std::map<std::string, int64_t>>> changes;  // time -> id -> value
    uint64_t end_time = 0;
    bool header_ok = false, scope_ok = false;
};

Vcd parse(const fs::path& p) {
    Vcd v;
    std::ifstream in(p);
    std::string line;
    bool defs = true;
    uint64_t t = 0;
    std::vector<std::string> scope;
    while (std::getline(in, line)) {
        if (defs) {
            if (line.rfind("$timescale", 0) == 0) v.header_ok = true;
            if (line.rfind("$scope module swpu", 0) == 0) v.scope_ok = true;
            if (line.rfind("$scope module", 0) == 0) {
                std::istringstream s(line);
                std::string kw, mod, name;
                s >> kw >> mod >> name;
                scope.push_back(name);
            }
            if (line.rfind("$upscope", 0) == 0 && !scope.empty()) scope.pop_back();
            if (line.rfind("$var", 0) == 0) {
                std::istringstream s(line);
                std::string var, kind, id, name;
                int w;
                s >> var >> kind >> w >> id >> name;
                v.id_of[scope.size() > 1 ? scope.back() + "." + name : name] = id;
                v.width[id] = w;
            }
            if (line.rfind("$enddefinitions", 0) == 0) defs = false;
            continue;
        }
        if (line.empty() || line[0] == '$') continue;
        if (line[0] == '#') {
            t = std::stoull(line.substr(1));
            v.changes.push_back({t, {}});
            v.end_time = t;
            continue;
        }
        int64_t val;
        std::string id;
        if (line[0] == 'b') {
            const auto sp = line.find(' ');
            val = std::stoll(line.substr(1, sp - 1), nullptr, 2);
            id = line.substr(sp + 1);
        } else {
            val = line[0] - '0';
            id = line.substr(1);
        }
        v.changes.back().second[id] = val;
    }
    return v;
}

// Sum over clock cycles of a signal's value in [from, to) ps: integral of the value over time / period.
int64_t cycle_sum(const Vcd& v, const std::string& id, uint64_t period, uint64_t from = 0, uint64_t to = UINT64_MAX) {
    __int128 acc = 0;
    int64_t cur = 0;
    uint64_t last = 0;
    for (const auto& [t, ch] : v.changes) {
        const uint64_t lo = std::max(last, from), hi = std::min(t, to);
        if (hi > lo) acc += (__int128)cur * (hi - lo);
        last = t;
        auto it = ch.find(id);
        if (it != ch.end()) cur = it->second;
    }
    return int64_t(acc / period);
}

nlohmann::json run(const std::string& extra, const fs::path& dir) {
    const std::string cmd = std::string("SC_COPYRIGHT_MESSAGE=DISABLE ") + SWPU_SIM_BINARY + " --config " + SWPU_SOURCE_DIR +
                            "/configs/swpu.json --set workload.width=0.125 --out " + dir.string() + " -q " + extra;
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    std::ifstream in(dir / "report.json");
    return nlohmann::json::parse(in);
}

// Cycle engine: one scope per clocked unit; the PE array's busy lanes summed over every cycle of the
// run equal the MACs the run performed.
TEST(Vcd, WholeRunSignalsMatchCounters) {
    const fs::path dir = fs::temp_directory_path() / ("swpu_vcd_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const auto r = run("--vcd " + (dir / "run.vcd").string() + " --vcd-window 0:100000000", dir);
    const Vcd v = parse(dir / "run.vcd");
    EXPECT_TRUE(v.header_ok);
    EXPECT_TRUE(v.scope_ok);
    for (const char* s : {"clk", "controller.phase", "controller.layer", "controller.ctrl_state", "controller.stall",
                          "controller.reorder_busy", "dma.busy", "dbl_controller.state", "dbl_controller.window",
                          "dbl_controller.credits", "compaction_network.input_state", "compaction_network.stage_valid",
                          "pe_array.lanes_busy", "pe_array.groups_busy", "pe_array.writebacks_pending", "pe_array.stall",
                          "weight_buffer.requests_active", "activation_buffer.conflicts", "output_buffer.requests_active",
                          "reorder_unit.state", "fifo.steps", "fifo.lane_packets"})
        EXPECT_TRUE(v.id_of.count(s)) << s;
    const uint64_t period = 1481;  // ps at 675 MHz
    EXPECT_EQ(cycle_sum(v, v.id_of.at("pe_array.lanes_busy"), period), r["totals"]["valid_macs"].get<int64_t>());
    // The FIFOs were used: steps waited in the step FIFO at some point.
    EXPECT_GT(cycle_sum(v, v.id_of.at("fifo.steps"), period), 0);
    // The waveform spans the run.
    EXPECT_EQ(v.end_time / period, r["totals"]["cycles"].get<uint64_t>());
    fs::remove_all(dir);
}

// Fast engine: the step model's per-cycle summary (ticked inside the window) matches its counters.
TEST(Vcd, FastEngineSummaryMatchesCounters) {
    const fs::path dir = fs::temp_directory_path() / ("swpu_vcdf_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const auto r = run("--engine fast --vcd " + (dir / "run.vcd").string() + " --vcd-window 0:100000000", dir);
    const Vcd v = parse(dir / "run.vcd");
    for (const char* s : {"datapath.lanes_valid", "datapath.groups_busy", "datapath.segments_busy", "controller.phase"})
        EXPECT_TRUE(v.id_of.count(s)) << s;
    EXPECT_FALSE(v.id_of.count("pe_array.lanes_busy")) << "the fast engine's units do not run";
    const uint64_t period = 1481;
    EXPECT_EQ(cycle_sum(v, v.id_of.at("datapath.lanes_valid"), period), r["totals"]["valid_macs"].get<int64_t>());
    EXPECT_EQ(v.end_time / period, r["totals"]["cycles"].get<uint64_t>());
    fs::remove_all(dir);
}

TEST(Vcd, WindowKeepsFilesSmallAndMatchesTheWholeRun) {
    const fs::path dir = fs::temp_directory_path() / ("swpu_vcdw_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const auto r = run("--vcd " + (dir / "all.vcd").string() + " --vcd-window 0:100000000", dir);
    // A window over the start of the first 3x3 conv's forward pass: the array is busy there.
    uint64_t a = 0;
    for (const auto& l : r["layers"])
        if (l["layer"] == "layer1.0.conv1" && l["pass"] == "FF") a = l["start_cycle"].get<uint64_t>() + 100;
    ASSERT_GT(a, 0u);
    const uint64_t b = a + 2000;
    run("--vcd " + (dir / "w.vcd").string() + " --vcd-window " + std::to_string(a) + ":" + std::to_string(b), dir);
    const Vcd w = parse(dir / "w.vcd"), all = parse(dir / "all.vcd");
    const uint64_t period = 1481;
    EXPECT_EQ(w.changes.front().first, a * period);
    EXPECT_EQ(w.end_time, b * period);
    // The window shows exactly what the whole-run waveform shows over the same cycles.
    for (const char* sig : {"pe_array.lanes_busy", "pe_array.groups_busy", "controller.phase", "controller.layer",
                            "dma.busy", "dbl_controller.state", "fifo.lane_packets"}) {
        const int64_t in_window = cycle_sum(w, w.id_of.at(sig), period);
        const int64_t same_cycles = cycle_sum(all, all.id_of.at(sig), period, a * period, b * period);
        EXPECT_EQ(in_window, same_cycles) << sig;
    }
    EXPECT_GT(cycle_sum(w, w.id_of.at("pe_array.lanes_busy"), period), 0);
    EXPECT_LT(fs::file_size(dir / "w.vcd"), fs::file_size(dir / "all.vcd"));
    fs::remove_all(dir);
}

}  // namespace
