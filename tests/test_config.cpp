// Chip configuration (src/config.cpp): the default file equals the built-in defaults, the
// alpha-power-law clock, bad configs that must each be refused with a ConfigError naming the file,
// the JSON path and the reason, --set overrides, and docs/config.md carrying the generated table.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "swpu/config.hpp"

using namespace swpu;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const std::string kSourceDir = SWPU_SOURCE_DIR;
const std::string kDefaultConfig = kSourceDir + "/configs/swpu.json";

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

std::string read_text(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

struct TempDir {
    fs::path path;
    TempDir() {
        static int counter = 0;
        path = fs::temp_directory_path() /
               ("swpu_config_test_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    fs::path write(const std::string& name, const std::string& text) const {
        std::ofstream o(path / name, std::ios::binary | std::ios::trunc);
        o << text;
        return path / name;
    }
};

// Runs f, which must throw ConfigError; returns it (or a marker error when nothing / something else
// was thrown, so the field checks that follow fail with a readable message).
template <typename F>
ConfigError catch_config_error(F&& f) {
    try {
        f();
    } catch (const ConfigError& e) {
        return e;
    } catch (const std::exception& e) {
        return ConfigError{"<not a ConfigError>", "<not a ConfigError>",
                           std::string("threw another exception: ") + e.what()};
    } catch (...) {
        return ConfigError{"<not a ConfigError>", "<not a ConfigError>", "threw a non-standard exception"};
    }
    return ConfigError{"<nothing thrown>", "<nothing thrown>", "accepted"};
}

// A bad config given as JSON text, the path the error must name and a piece of its reason.
struct BadConfig {
    std::string what;
    std::string text;
    std::string path;
    std::string reason;
};

const std::vector<BadConfig>& bad_configs() {
    static const std::vector<BadConfig> cases = {
        {"unknown top-level key", R"({"bogus": 1})", "bogus", "unknown key"},
        {"unknown nested key", R"({"chip": {"volts": 0.9}})", "chip.volts", "unknown key"},
        {"unknown key two levels down", R"({"buffers": {"weight": {"size": 4}}})", "buffers.weight.size",
         "unknown key"},
        {"unknown buffer", R"({"buffers": {"scratch": {"kib": 4}}})", "buffers.scratch", "unknown key"},
        {"string for an integer", R"({"pe_array": {"lanes": "16"}})", "pe_array.lanes",
         "expected integer, got string"},
        {"fraction for an integer", R"({"pe_array": {"lanes": 16.5}})", "pe_array.lanes",
         "expected integer, got number"},
        {"null for an integer", R"({"pe_array": {"groups": null}})", "pe_array.groups",
         "expected integer, got null"},
        {"number for a boolean", R"({"dbl": {"enabled": 1}})", "dbl.enabled", "expected true or false, got integer"},
        {"string for a boolean", R"({"reorder_unit": {"enabled": "yes"}})", "reorder_unit.enabled",
         "expected true or false, got string"},
        {"object for a number", R"({"chip": {"voltage": {"value": 1.0}}})", "chip.voltage",
         "expected a number, got object"},
        {"array for a number", R"({"dram": {"bandwidth_gbps": [12.8]}})", "dram.bandwidth_gbps",
         "expected a number, got array"},
        {"string for an optional number", R"({"chip": {"frequency_mhz": "fast"}})", "chip.frequency_mhz",
         "expected a number or null, got string"},
        {"number for a string", R"({"chip": {"name": 5}})", "chip.name", "expected a string, got integer"},
        {"negative seed", R"({"simulation": {"seed": -1}})", "simulation.seed", "non-negative integer"},
        {"negative lanes", R"({"pe_array": {"lanes": -4}})", "pe_array.lanes", "out of range [1, 64]"},
        {"zero lanes", R"({"pe_array": {"lanes": 0}})", "pe_array.lanes", "out of range [1, 64]"},
        {"too many groups", R"({"pe_array": {"groups": 65}})", "pe_array.groups", "out of range [1, 64]"},
        {"non-power-of-two window", R"({"compaction": {"window": 48}})", "compaction.window", "power of two"},
        {"non-power-of-two banks", R"({"buffers": {"output": {"banks": 6}}})", "buffers.output.banks",
         "power of two"},
        {"segments not dividing lanes", R"({"pe_array": {"lanes": 12}, "compaction": {"segments": 8}})",
         "pe_array.lanes", "must be a multiple of compaction.segments (8)"},
        {"lanes above the window", R"({"pe_array": {"lanes": 16}, "compaction": {"window": 8}})", "pe_array.lanes",
         "must not exceed compaction.window"},
        {"segments above the window",
         R"({"pe_array": {"lanes": 4}, "compaction": {"window": 2, "segments": 4}})", "compaction.segments",
         "must not exceed compaction.window"},
        {"voltage below v_min", R"({"chip": {"voltage": 0.5}})", "chip.voltage",
         "outside the chip's supply range [0.56, 1] V"},
        {"voltage above v_max", R"({"chip": {"voltage": 1.2}})", "chip.voltage",
         "outside the chip's supply range [0.56, 1] V"},
        {"frequency above f_max at 0.6 V", R"({"chip": {"voltage": 0.6, "frequency_mhz": 300}})",
         "chip.frequency_mhz", "exceeds f_max(0.6 V)"},
        {"frequency above f_max at 1.0 V", R"({"chip": {"frequency_mhz": 700}})", "chip.frequency_mhz",
         "exceeds f_max(1 V) = 675 MHz"},
        {"vth above v_min", R"({"chip": {"vth": 0.6}})", "chip.vth", "must be below chip.v_min"},
        {"v_min above v_max", R"({"chip": {"v_min": 0.9, "v_max": 0.8, "v_nom": 0.85, "voltage": 0.85}})",
         "chip.v_min", "must be below chip.v_max"},
        {"v_nom outside the supply range", R"({"chip": {"v_nom": 1.1}})", "chip.v_nom",
         "must lie within [chip.v_min, chip.v_max]"},
        {"alpha out of range", R"({"chip": {"alpha": 2.5}})", "chip.alpha", "out of range [1, 2]"},
        {"invalid routing", R"({"compaction": {"routing": "mesh"}})", "compaction.routing",
         "value 'mesh' is not one of 'log', 'crossbar'"},
        {"invalid simulation mode", R"({"simulation": {"mode": "fast"}})", "simulation.mode", "is not one of"},
        {"invalid pruning mode", R"({"workload": {"pruning": "random"}})", "workload.pruning", "is not one of"},
        {"invalid multiplier format", R"({"pe_array": {"mult_format": "bf16"}})", "pe_array.mult_format",
         "value 'bf16' is not one of 'fp16'"},
        {"section given as a number", R"({"chip": 5})", "chip", "expected an object (a section), got integer"},
        {"nested section given as a string", R"({"buffers": {"weight": "big"}})", "buffers.weight",
         "expected an object (a section), got string"},
        {"input density above 1", R"({"workload": {"input_density": 1.5}})", "workload.input_density",
         "out of range [-1, 1]"},
        {"input density between -1 and 0", R"({"workload": {"input_density": -0.5}})", "workload.input_density",
         "use -1 for per-layer defaults"},
        {"gradient density between -1 and 0", R"({"workload": {"grad_density": -0.2}})", "workload.grad_density",
         "use -1 for per-layer defaults"},
        {"weight sparsity of 1", R"({"workload": {"weight_sparsity": 1.0}})", "workload.weight_sparsity",
         "out of range"},
        {"calibration factor above 2", R"({"energy": {"cal_sram": 3.0}})", "energy.cal_sram",
         "out of range [0.5, 2]"},
        {"calibration factor below 0.5", R"({"energy": {"cal_compute": 0.25}})", "energy.cal_compute",
         "out of range [0.5, 2]"},
        {"negative energy", R"({"energy": {"fp16_mult_pj": -1}})", "energy.fp16_mult_pj", "out of range"},
        {"buffer banks wider than its capacity",
         R"({"buffers": {"weight": {"kib": 1, "banks": 64, "width_bits": 256}}})", "buffers.weight.banks",
         "banks x width exceeds the capacity"},
        {"DMA transfer below a DRAM burst", R"({"dma": {"max_transfer_bytes": 32}})", "dma.max_transfer_bytes",
         "must be at least dram.burst_bytes"},
        {"invalid JSON: trailing comma", "{\n  \"chip\": {\"voltage\": 1.0,}\n}", "", "invalid JSON"},
        {"invalid JSON: empty document", "", "", "invalid JSON"},
        {"top-level array", R"([{"chip": {"voltage": 1.0}}])", "", "the document must be a JSON object"},
        {"top-level number", "42", "", "the document must be a JSON object"},
    };
    return cases;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Defaults

TEST(ConfigDefaults, DefaultFileLoadsAndEqualsBuiltInDefaults) {
    const RunConfig loaded = load_config(kDefaultConfig);
    const RunConfig builtin;
    EXPECT_EQ(loaded.to_json(), builtin.to_json()) << "configs/swpu.json drifted from the defaults in config.hpp";
    EXPECT_EQ(loaded.source_file, kDefaultConfig);
    EXPECT_FALSE(loaded.chip.frequency_mhz.has_value());
    EXPECT_EQ(loaded.clock_mhz(), 675.0);
    EXPECT_EQ(loaded.pe_array.groups * loaded.pe_array.lanes, 256);
}

TEST(ConfigDefaults, BuiltInDefaultsPassValidation) {
    EXPECT_NO_THROW(validate(RunConfig{}));
}

TEST(ConfigDefaults, EmptyObjectGivesTheDefaults) {
    const RunConfig c = config_from_json_text("{}", "empty.json");
    EXPECT_EQ(c.to_json(), RunConfig{}.to_json());
    EXPECT_EQ(c.source_file, "empty.json");
}

TEST(ConfigDefaults, CommentKeysAndCommentsAreIgnored) {
    const RunConfig c = config_from_json_text(R"({
        "_comment": "top-level note",
        "chip": {"_comment": "nested note", "voltage": 0.9},
        "buffers": {"weight": {"_comment_kib": "prefix form", "kib": 64}},
        "// also a note": 1,
        /* a C comment */
        "dbl": {"enabled": false} // a line comment
    })", "comments.json");
    EXPECT_DOUBLE_EQ(c.chip.voltage, 0.9);
    EXPECT_EQ(c.buffers.weight.kib, 64);
    EXPECT_FALSE(c.dbl.enabled);
}

TEST(ConfigDefaults, PartialFileKeepsTheOtherDefaults) {
    const RunConfig c = config_from_json_text(
        R"({"pe_array": {"lanes": 8}, "compaction": {"routing": "crossbar"}, "simulation": {"engine": "fast"}})",
        "partial.json");
    EXPECT_EQ(c.pe_array.lanes, 8);
    EXPECT_EQ(c.compaction.routing, "crossbar");
    RunConfig expected;
    expected.pe_array.lanes = 8;
    expected.compaction.routing = "crossbar";
    expected.simulation.engine = "fast";
    EXPECT_EQ(c.to_json(), expected.to_json());
}

TEST(ConfigDefaults, EffectiveConfigRoundTripsThroughJson) {
    RunConfig c;
    c.chip.voltage = 0.8;
    c.chip.frequency_mhz = 300.0;
    c.compaction.routing = "crossbar";
    c.simulation.engine = "fast";  // the crossbar machine runs on the fast engine
    c.simulation.seed = 12345678901234ull;
    c.workload.input_density = 0.4;
    const RunConfig back = config_from_json_text(c.to_json().dump(), "roundtrip.json");
    EXPECT_EQ(back.to_json(), c.to_json());
    ASSERT_TRUE(back.chip.frequency_mhz.has_value());
    EXPECT_EQ(*back.chip.frequency_mhz, 300.0);
    EXPECT_EQ(back.simulation.seed, 12345678901234ull);
}

TEST(ConfigDefaults, ExplicitFrequencyAtOrBelowFmaxIsAccepted) {
    const RunConfig c = config_from_json_text(R"({"chip": {"voltage": 0.6, "frequency_mhz": 269}})", "ok.json");
    EXPECT_EQ(c.clock_mhz(), 269.0);
    EXPECT_NEAR(c.clock_period_ns(), 1000.0 / 269.0, 1e-12);
    const RunConfig at_fmax = config_from_json_text(R"({"chip": {"frequency_mhz": 675}})", "ok.json");
    EXPECT_EQ(at_fmax.clock_mhz(), 675.0);
}

// ---------------------------------------------------------------------------------------------
// Clock: alpha-power law f ~ (V - Vth)^a / V anchored at 675 MHz, 1.0 V

TEST(ConfigClock, FmaxAtNominalVoltageIsExactly675) {
    const RunConfig c;
    EXPECT_EQ(c.f_max_mhz(1.0), 675.0);
    EXPECT_EQ(c.clock_mhz(), 675.0);
}

TEST(ConfigClock, FmaxAtMinimumVoltageIsAbout216) {
    const RunConfig c;
    // 675 * ((0.56-0.4)^1.3 / 0.56) / ((1.0-0.4)^1.3 / 1.0) = 216.21 MHz.
    EXPECT_NEAR(c.f_max_mhz(0.56), 216.2, 1.0);
    const double expected = 675.0 * (std::pow(0.16, 1.3) / 0.56) / std::pow(0.6, 1.3);
    EXPECT_NEAR(c.f_max_mhz(0.56), expected, 1e-9);
    EXPECT_NEAR(c.f_max_mhz(0.6), 269.7, 1.0);
    EXPECT_NEAR(c.f_max_mhz(0.7), 391.6, 1.0);
}

TEST(ConfigClock, FmaxIncreasesWithVoltageAndVanishesAtVth) {
    const RunConfig c;
    double prev = 0;
    for (double v = 0.56; v <= 1.0 + 1e-12; v += 0.01) {
        const double f = c.f_max_mhz(v);
        EXPECT_GT(f, prev) << "at " << v << " V";
        prev = f;
    }
    EXPECT_EQ(c.f_max_mhz(0.4), 0.0);
    EXPECT_EQ(c.f_max_mhz(0.3), 0.0);
}

TEST(ConfigClock, DerivedGeometry) {
    const RunConfig c;
    EXPECT_EQ(c.lanes_per_segment(), 4);
    EXPECT_EQ(c.window_per_segment(), 16);
    EXPECT_FALSE(c.functional());
}

// ---------------------------------------------------------------------------------------------
// Bad configs

TEST(ConfigErrors, AtLeastTwentyDistinctBadConfigs) {
    std::set<std::string> texts;
    for (const auto& b : bad_configs()) texts.insert(b.text);
    EXPECT_GE(texts.size(), 20u);
    EXPECT_EQ(texts.size(), bad_configs().size()) << "duplicate bad config";
}

TEST(ConfigErrors, EachBadConfigTextIsRefusedWithPathAndReason) {
    for (const auto& b : bad_configs()) {
        SCOPED_TRACE(b.what + ": " + b.text);
        const ConfigError e = catch_config_error([&] { config_from_json_text(b.text, "bad.json"); });
        EXPECT_EQ(e.file, "bad.json");
        EXPECT_EQ(e.path, b.path);
        EXPECT_TRUE(contains(e.reason, b.reason)) << "reason: " << e.reason << "\nexpected to contain: " << b.reason;
        const std::string msg = e.message();
        EXPECT_TRUE(contains(msg, "bad.json")) << msg;
        EXPECT_TRUE(contains(msg, b.path.empty() ? "(document)" : b.path)) << msg;
        EXPECT_TRUE(contains(msg, e.reason)) << msg;
    }
}

TEST(ConfigErrors, EachBadConfigFileIsRefusedWithItsFileName) {
    TempDir dir;
    int i = 0;
    for (const auto& b : bad_configs()) {
        SCOPED_TRACE(b.what + ": " + b.text);
        const fs::path p = dir.write("bad_" + std::to_string(i++) + ".json", b.text);
        const ConfigError e = catch_config_error([&] { load_config(p.string()); });
        EXPECT_EQ(e.file, p.string());
        EXPECT_EQ(e.path, b.path);
        EXPECT_TRUE(contains(e.reason, b.reason)) << "reason: " << e.reason;
    }
}

TEST(ConfigErrors, InvalidJsonNamesLineAndColumn) {
    const ConfigError e =
        catch_config_error([] { config_from_json_text("{\n  \"chip\": {\n    \"voltage\": 1.0,\n  }\n}\n", "syntax.json"); });
    EXPECT_EQ(e.file, "syntax.json");
    EXPECT_EQ(e.path, "");
    EXPECT_TRUE(contains(e.reason, "invalid JSON")) << e.reason;
    EXPECT_TRUE(contains(e.reason, "line 4")) << e.reason;
    EXPECT_TRUE(contains(e.reason, "column")) << e.reason;
    EXPECT_TRUE(contains(e.message(), "config error: syntax.json: (document): invalid JSON")) << e.message();
}

TEST(ConfigErrors, MissingFile) {
    TempDir dir;
    const std::string missing = (dir.path / "no_such_config.json").string();
    const ConfigError e = catch_config_error([&] { load_config(missing); });
    EXPECT_EQ(e.file, missing);
    EXPECT_EQ(e.path, "");
    EXPECT_TRUE(contains(e.reason, "cannot open the file")) << e.reason;
    EXPECT_TRUE(contains(e.message(), missing)) << e.message();
}

TEST(ConfigErrors, FirstProblemWinsAndIsReportedOnce) {
    // Two problems: the unknown key comes first in the document and is the one reported.
    const ConfigError e =
        catch_config_error([] { config_from_json_text(R"({"aaa": 1, "pe_array": {"lanes": 0}})", "two.json"); });
    EXPECT_EQ(e.path, "aaa");
}

// A number too large for a double is a bad value, not a crash: nlohmann throws json::out_of_range
// (error 406, "number overflow"), which is not a json::parse_error.
TEST(ConfigErrors, NumberOverflowIsAConfigError) {
    const ConfigError e =
        catch_config_error([] { config_from_json_text(R"({"chip": {"voltage": 1e999}})", "overflow.json"); });
    EXPECT_EQ(e.file, "overflow.json");
    EXPECT_TRUE(contains(e.reason, "invalid JSON")) << e.reason;
}

// ---------------------------------------------------------------------------------------------
// --set overrides

TEST(ConfigOverride, GoodOverridesChangeTheField) {
    RunConfig c = load_config(kDefaultConfig);
    apply_override(c, "pe_array.lanes=8");
    EXPECT_EQ(c.pe_array.lanes, 8);
    apply_override(c, "dbl.enabled=false");
    EXPECT_FALSE(c.dbl.enabled);
    apply_override(c, "workload.width=0.25");
    EXPECT_DOUBLE_EQ(c.workload.width, 0.25);
    apply_override(c, "buffers.activation.kib=512");
    EXPECT_EQ(c.buffers.activation.kib, 512);
    apply_override(c, "simulation.seed=9223372036854775807");
    EXPECT_EQ(c.simulation.seed, 9223372036854775807ull);
    apply_override(c, "chip.name=\"my chip\"");
    EXPECT_EQ(c.chip.name, "my chip");
    apply_override(c, "energy.cal_dram=1.5");
    EXPECT_DOUBLE_EQ(c.energy.cal_dram, 1.5);
    EXPECT_EQ(c.source_file, kDefaultConfig);
}

// Crossbar routing runs on both engines; a refused override changes nothing.
TEST(ConfigValidate, CrossbarRunsOnTheCycleEngine) {
    RunConfig c;
    apply_override(c, "compaction.routing=crossbar");
    EXPECT_EQ(c.compaction.routing, "crossbar");
    EXPECT_TRUE(c.cycle_engine());
    try {
        apply_override(c, "compaction.segments=128");
        FAIL() << "more segments than window positions accepted";
    } catch (const ConfigError& e) {
        EXPECT_EQ(e.path, "compaction.segments");
    }
    EXPECT_EQ(c.compaction.segments, 4);  // a refused override changes nothing
}

// Filter-oriented BP exists on both engines with lockstep groups; with decoupled groups it is refused
// with the field, and the refused override changes nothing.
TEST(ConfigValidate, FilterOrientedBpNeedsLockstepGroups) {
    for (const char* engine : {"cycle", "fast"}) {
        RunConfig c;
        apply_override(c, std::string("simulation.engine=") + engine);
        apply_override(c, "pe_array.group_sync=decoupled");
        try {
            apply_override(c, "pe_array.bp_orientation=filter");
            FAIL() << "filter-oriented BP accepted with decoupled groups on the " << engine << " engine";
        } catch (const ConfigError& e) {
            EXPECT_EQ(e.path, "pe_array.bp_orientation");
            EXPECT_NE(e.reason.find("lockstep"), std::string::npos) << e.reason;
        }
        EXPECT_EQ(c.pe_array.bp_orientation, "channel");
        apply_override(c, "pe_array.group_sync=lockstep");
        apply_override(c, "pe_array.bp_orientation=filter");
        EXPECT_TRUE(c.bp_filter());
    }
}

TEST(ConfigOverride, BareWordIsAString) {
    RunConfig c;
    apply_override(c, "simulation.engine=fast");
    EXPECT_EQ(c.simulation.engine, "fast");
    apply_override(c, "compaction.routing=crossbar");
    EXPECT_EQ(c.compaction.routing, "crossbar");
    apply_override(c, "workload.network=resnet18-imagenet");
    EXPECT_EQ(c.workload.network, "resnet18-imagenet");
    apply_override(c, "simulation.mode=functional");
    EXPECT_TRUE(c.functional());
    apply_override(c, "chip.name=test-chip");
    EXPECT_EQ(c.chip.name, "test-chip");
}

TEST(ConfigOverride, VoltageOverrideMovesTheClockToFmax) {
    RunConfig c = load_config(kDefaultConfig);
    apply_override(c, "chip.voltage=0.7");
    EXPECT_DOUBLE_EQ(c.chip.voltage, 0.7);
    EXPECT_EQ(c.clock_mhz(), c.f_max_mhz(0.7));
    EXPECT_NEAR(c.clock_mhz(), 391.6, 1.0);
    apply_override(c, "chip.voltage=0.56");
    EXPECT_NEAR(c.clock_mhz(), 216.2, 1.0);
}

TEST(ConfigOverride, FrequencyCanBeSetAndCleared) {
    RunConfig c;
    apply_override(c, "chip.frequency_mhz=500");
    ASSERT_TRUE(c.chip.frequency_mhz.has_value());
    EXPECT_EQ(c.clock_mhz(), 500.0);
    apply_override(c, "chip.frequency_mhz=null");
    EXPECT_FALSE(c.chip.frequency_mhz.has_value());
    EXPECT_EQ(c.clock_mhz(), 675.0);
}

TEST(ConfigOverride, EveryParameterAcceptsItsDefault) {
    RunConfig c;
    for (const auto& d : config_schema_docs()) {
        SCOPED_TRACE(d.path);
        EXPECT_NO_THROW(apply_override(c, d.path + "=" + d.default_value.dump()));
    }
    EXPECT_EQ(c.to_json(), RunConfig{}.to_json());
}

struct BadOverride {
    std::string assignment;
    std::string path;
    std::string reason;
};

TEST(ConfigOverride, BadOverridesAreRefusedAndLeaveTheConfigUnchanged) {
    const std::vector<BadOverride> cases = {
        {"chip.volts=0.9", "chip.volts", "unknown parameter"},
        {"bogus=1", "bogus", "unknown parameter"},
        {"chip=1", "chip", "is a section"},
        {"buffers.weight={\"kib\":64}", "buffers.weight", "is a section"},
        {"chip.voltage", "chip.voltage", "expected PATH=VALUE"},
        {"=0.7", "=0.7", "expected PATH=VALUE"},
        {"pe_array.lanes=abc", "pe_array.lanes", "expected integer, got string"},
        {"pe_array.lanes=", "pe_array.lanes", "expected integer, got string"},
        {"pe_array.lanes=0", "pe_array.lanes", "out of range"},
        {"pe_array.lanes=10", "pe_array.lanes", "must be a multiple of compaction.segments (4)"},
        {"compaction.window=48", "compaction.window", "power of two"},
        {"compaction.routing=mesh", "compaction.routing", "is not one of"},
        {"dbl.enabled=1", "dbl.enabled", "expected true or false"},
        {"dbl.enabled=yes", "dbl.enabled", "expected true or false, got string"},
        {"chip.voltage=1.2", "chip.voltage", "outside the chip's supply range"},
        {"chip.voltage=0.5", "chip.voltage", "outside the chip's supply range"},
        {"chip.frequency_mhz=700", "chip.frequency_mhz", "exceeds f_max(1 V) = 675 MHz"},
        {"energy.cal_leakage=0.1", "energy.cal_leakage", "out of range [0.5, 2]"},
        {"workload.input_density=2", "workload.input_density", "out of range"},
    };
    const RunConfig original = load_config(kDefaultConfig);
    for (const auto& b : cases) {
        SCOPED_TRACE("--set " + b.assignment);
        RunConfig c = original;
        const ConfigError e = catch_config_error([&] { apply_override(c, b.assignment); });
        EXPECT_EQ(e.path, b.path);
        EXPECT_TRUE(contains(e.reason, b.reason)) << "reason: " << e.reason;
        EXPECT_TRUE(contains(e.file, "--set")) << "file: " << e.file;
        EXPECT_EQ(c.to_json(), original.to_json()) << "a refused override changed the config";
    }
}

TEST(ConfigOverride, FrequencyAboveFmaxAfterVoltageDrop) {
    // A frequency that was fine at 1.0 V becomes too high when the voltage drops.
    RunConfig c;
    apply_override(c, "chip.frequency_mhz=600");
    const ConfigError e = catch_config_error([&] { apply_override(c, "chip.voltage=0.6"); });
    EXPECT_EQ(e.path, "chip.frequency_mhz");
    EXPECT_TRUE(contains(e.reason, "exceeds f_max(0.6 V)")) << e.reason;
    EXPECT_DOUBLE_EQ(c.chip.voltage, 1.0);
    // Lowering the frequency first makes the voltage drop legal.
    apply_override(c, "chip.frequency_mhz=250");
    apply_override(c, "chip.voltage=0.6");
    EXPECT_EQ(c.clock_mhz(), 250.0);
}

TEST(ConfigOverride, CrossFieldErrorNamesTheOverriddenFileAndPath) {
    RunConfig c = load_config(kDefaultConfig);
    const ConfigError e = catch_config_error([&] { apply_override(c, "chip.voltage=0.3"); });
    EXPECT_EQ(e.path, "chip.voltage");
    EXPECT_TRUE(contains(e.file, "--set chip.voltage")) << e.file;
    EXPECT_TRUE(contains(e.file, kDefaultConfig)) << e.file;
}

// simulation.seed is a uint64_t documented as [0, 1.8e19]: seeds above INT64_MAX must be accepted,
// in a file and through --set (nlohmann stores them as unsigned; reading one as int64_t wraps).
TEST(ConfigOverride, SeedAboveInt64MaxIsAccepted) {
    RunConfig c;
    EXPECT_NO_THROW(apply_override(c, "simulation.seed=10000000000000000000"));
    EXPECT_EQ(c.simulation.seed, 10000000000000000000ull);
    RunConfig f;
    EXPECT_NO_THROW(f = config_from_json_text(R"({"simulation": {"seed": 10000000000000000000}})", "seed.json"));
    EXPECT_EQ(f.simulation.seed, 10000000000000000000ull);
}

// Same as NumberOverflowIsAConfigError, through --set.
TEST(ConfigOverride, NumberOverflowIsAConfigError) {
    RunConfig c;
    const ConfigError e = catch_config_error([&] { apply_override(c, "chip.voltage=1e999"); });
    EXPECT_EQ(e.path, "chip.voltage");
    EXPECT_TRUE(contains(e.file, "--set")) << e.file;
}

// ---------------------------------------------------------------------------------------------
// Schema and documentation

TEST(ConfigSchema, EveryParameterIsDocumented) {
    const auto docs = config_schema_docs();
    ASSERT_GT(docs.size(), 50u);
    std::set<std::string> paths;
    for (const auto& d : docs) {
        SCOPED_TRACE(d.path);
        EXPECT_TRUE(paths.insert(d.path).second) << "duplicate parameter";
        EXPECT_TRUE(d.status == "FOUND" || d.status == "ASSUMED") << d.status;
        EXPECT_FALSE(d.doc.empty());
        EXPECT_FALSE(d.reason.empty());
        EXPECT_FALSE(d.type.empty());
        EXPECT_EQ(d.path.find('|'), std::string::npos);
        EXPECT_EQ(d.doc.find('|'), std::string::npos) << "a '|' would break the markdown table";
        EXPECT_EQ(d.reason.find('|'), std::string::npos) << "a '|' would break the markdown table";
    }
    // The paper's headline facts are FOUND; everything in to_json() is in the schema and vice versa.
    auto status_of = [&](const std::string& p) {
        for (const auto& d : docs)
            if (d.path == p) return d.status;
        return std::string("<missing>");
    };
    EXPECT_EQ(status_of("chip.process_nm"), "FOUND");
    EXPECT_EQ(status_of("chip.v_min"), "FOUND");
    EXPECT_EQ(status_of("chip.v_max"), "FOUND");
    EXPECT_EQ(status_of("chip.f_max_mhz_at_vnom"), "FOUND");
    EXPECT_EQ(status_of("pe_array.lanes"), "ASSUMED");
    EXPECT_EQ(status_of("compaction.window"), "ASSUMED");

    std::set<std::string> from_json;
    std::function<void(const json&, const std::string&)> walk = [&](const json& j, const std::string& prefix) {
        for (auto it = j.begin(); it != j.end(); ++it) {
            const std::string p = prefix.empty() ? it.key() : prefix + "." + it.key();
            if (it.value().is_object()) walk(it.value(), p);
            else from_json.insert(p);
        }
    };
    walk(RunConfig{}.to_json(), "");
    EXPECT_EQ(from_json, paths);
}

TEST(ConfigSchema, MarkdownTableHasOneRowPerParameter) {
    const std::string md = config_markdown();
    std::istringstream in(md);
    std::string line;
    std::vector<std::string> lines;
    while (std::getline(in, line)) lines.push_back(line);
    ASSERT_EQ(lines.size(), config_schema_docs().size() + 3);  // header, rule, the "extends" row
    EXPECT_EQ(lines[0], "| parameter | default | unit | range | status | meaning | why this default |");
    EXPECT_EQ(lines[2].rfind("| `extends` | `null` |", 0), 0u) << lines[2];
    for (const auto& d : config_schema_docs())
        EXPECT_TRUE(contains(md, "| `" + d.path + "` | `")) << d.path;
}

TEST(ConfigSchema, DocsContainTheGeneratedTableVerbatim) {
    const fs::path doc = fs::path(kSourceDir) / "docs" / "config.md";
    ASSERT_TRUE(fs::exists(doc)) << doc;
    const std::string text = read_text(doc);
    const std::string begin = "<!-- BEGIN GENERATED: swpu-sim --config-doc -->\n";
    const std::string end = "<!-- END GENERATED -->";
    const auto b = text.find(begin);
    const auto e = text.find(end);
    ASSERT_NE(b, std::string::npos) << "docs/config.md lacks the BEGIN GENERATED marker";
    ASSERT_NE(e, std::string::npos) << "docs/config.md lacks the END GENERATED marker";
    ASSERT_LT(b, e);
    // Between the markers: the generated table and nothing else (blank lines around it are allowed).
    std::string generated = text.substr(b + begin.size(), e - b - begin.size());
    while (!generated.empty() && generated.front() == '\n') generated.erase(0, 1);
    while (!generated.empty() && generated.back() == '\n') generated.pop_back();
    std::string table = config_markdown();
    while (!table.empty() && table.back() == '\n') table.pop_back();
    EXPECT_EQ(generated, table)
        << "docs/config.md is out of date: regenerate the table with build/swpu-sim --config-doc";
    EXPECT_TRUE(contains(text, config_markdown()));
}

// ---------------------------------------------------------------------------------------------
// Overlays: "extends" applies another config first (resolved relative to the file), then the file

TEST(ConfigExtends, OverlayAppliesTheBaseThenItsOwnFields) {
    TempDir dir;
    fs::create_directories(dir.path / "sub");
    const fs::path base = dir.write("base.json", R"({"chip": {"voltage": 0.9}, "buffers": {"weight": {"kib": 64}}})");
    const fs::path top = dir.write("sub/top.json", R"({"_comment": "an overlay", "extends": "../base.json",
                                                      "chip": {"voltage": 0.7}})");
    const RunConfig c = load_config(top.string());
    EXPECT_DOUBLE_EQ(c.chip.voltage, 0.7);           // the overlay wins
    EXPECT_EQ(c.buffers.weight.kib, 64);             // the base's field reaches the overlay
    EXPECT_EQ(c.buffers.activation.kib, RunConfig{}.buffers.activation.kib);  // defaults below both
    EXPECT_EQ(c.source_file, top.string());
    ASSERT_EQ(c.source_files.size(), 2u);
    EXPECT_EQ(fs::path(c.source_files[0]), (dir.path / "sub/../base.json").lexically_normal());
    EXPECT_EQ(c.source_files[1], top.string());
}

TEST(ConfigExtends, ChainsApplyInOrderAndNestedExtendsIsUnknown) {
    TempDir dir;
    dir.write("a.json", R"({"chip": {"voltage": 0.9}, "dram": {"bandwidth_gbps": 25.6}})");
    dir.write("b.json", R"({"extends": "a.json", "chip": {"voltage": 0.8}})");
    const fs::path c_path = dir.write("c.json", R"({"extends": "b.json", "dram": {"bandwidth_gbps": 6.4}})");
    const RunConfig c = load_config(c_path.string());
    EXPECT_DOUBLE_EQ(c.chip.voltage, 0.8);
    EXPECT_DOUBLE_EQ(c.dram.bandwidth_gbps, 6.4);
    EXPECT_EQ(c.source_files.size(), 3u);
    const fs::path nested = dir.write("nested.json", R"({"chip": {"extends": "a.json"}})");
    const ConfigError e = catch_config_error([&] { load_config(nested.string()); });
    EXPECT_EQ(e.path, "chip.extends");
    EXPECT_TRUE(contains(e.reason, "unknown key")) << e.reason;
}

TEST(ConfigExtends, CyclesAreRefusedNamingTheChain) {
    TempDir dir;
    const fs::path a = dir.write("a.json", R"({"extends": "b.json"})");
    dir.write("b.json", R"({"extends": "a.json"})");
    ConfigError e = catch_config_error([&] { load_config(a.string()); });
    EXPECT_EQ(e.path, "extends");
    EXPECT_TRUE(contains(e.reason, "closes a cycle")) << e.reason;
    EXPECT_TRUE(contains(e.reason, "a.json")) << e.reason;
    EXPECT_TRUE(contains(e.reason, "b.json")) << e.reason;
    const fs::path self = dir.write("self.json", R"({"extends": "./self.json"})");
    e = catch_config_error([&] { load_config(self.string()); });
    EXPECT_EQ(e.file, self.string());
    EXPECT_TRUE(contains(e.reason, "closes a cycle")) << e.reason;
}

TEST(ConfigExtends, MissingOrMistypedBaseAndBadBaseFieldsAreRefused) {
    TempDir dir;
    const fs::path missing = dir.write("missing.json", R"({"extends": "nowhere/base.json"})");
    ConfigError e = catch_config_error([&] { load_config(missing.string()); });
    EXPECT_EQ(e.file, missing.string());
    EXPECT_EQ(e.path, "extends");
    EXPECT_TRUE(contains(e.reason, "cannot open")) << e.reason;
    EXPECT_TRUE(contains(e.reason, (dir.path / "nowhere/base.json").string())) << e.reason;
    for (const char* v : {"3", "\"\"", "null", "[\"a.json\"]"}) {
        const fs::path p = dir.write("typed.json", std::string("{\"extends\": ") + v + "}");
        e = catch_config_error([&] { load_config(p.string()); });
        EXPECT_EQ(e.path, "extends") << v;
        EXPECT_TRUE(contains(e.reason, "expected the path")) << v << ": " << e.reason;
    }
    // A bad field of the base is reported against the base file, not the overlay.
    const fs::path bad_base = dir.write("bad_base.json", R"({"chip": {"voltage": "high"}})");
    const fs::path top = dir.write("top.json", R"({"extends": "bad_base.json"})");
    e = catch_config_error([&] { load_config(top.string()); });
    EXPECT_EQ(fs::path(e.file), bad_base);
    EXPECT_EQ(e.path, "chip.voltage");
    // Cross-field validation sees the merged result: the base alone is valid, the overlay is not.
    dir.write("ok_base.json", R"({"compaction": {"segments": 4}})");
    const fs::path clash = dir.write("clash.json", R"({"extends": "ok_base.json", "pe_array": {"lanes": 2}})");
    e = catch_config_error([&] { load_config(clash.string()); });
    EXPECT_EQ(e.path, "pe_array.lanes");
}

TEST(ConfigExtends, CommittedOverlaysResolveToSwpuPlusTheirFields) {
    // configs/peak.json and every configs/baselines/*.json extend configs/swpu.json: the resolved
    // config equals swpu.json with the overlay's own fields applied (--set of each).
    std::vector<fs::path> files{kSourceDir + "/configs/peak.json"};
    for (const auto& e : fs::directory_iterator(kSourceDir + "/configs/baselines"))
        if (e.path().extension() == ".json") files.push_back(e.path());
    ASSERT_GT(files.size(), 2u);
    for (const auto& f : files) {
        SCOPED_TRACE(f.string());
        const json doc = json::parse(read_text(f));
        ASSERT_TRUE(doc.contains("extends"));
        const RunConfig got = load_config(f.string());
        // swpu.json's document with the overlay's fields merged in, loaded as one plain file
        json merged = json::parse(read_text(kDefaultConfig));
        json overlay = doc;
        overlay.erase("extends");
        overlay.erase("_comment");
        merged.merge_patch(overlay);
        const RunConfig want = config_from_json_text(merged.dump(), "merged.json");
        EXPECT_EQ(got.to_json(), want.to_json());
        EXPECT_NE(got.to_json(), load_config(kDefaultConfig).to_json()) << "the overlay changes nothing";
        EXPECT_EQ(got.source_files.size(), 2u);
    }
}
