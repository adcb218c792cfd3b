// libFuzzer harness: --set PATH=VALUE overrides. The input is up to 8 assignments, one per
// line, applied in order to the default config, as `swpu-sim --set A --set B ...` does.
// Invariants: only ConfigError escapes, an accepted override leaves a config that validates and
// prints as JSON, and a refused one leaves the config unchanged.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.hpp"
#include "swpu/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::string kDefaults = swpu::RunConfig().to_json().dump();
    const std::string text(reinterpret_cast<const char*>(data), size);
    swpu::RunConfig cfg;
    bool changed = false, checked_refusal = false;
    size_t start = 0;
    for (int n = 0; n < 8 && start <= text.size(); ++n) {
        size_t end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        const std::string assignment = text.substr(start, end - start);
        start = end + 1;
        // Comparing whole configs is slow: once per input is enough to catch a half-applied --set.
        const bool check = !checked_refusal;
        const std::string before = check && changed ? cfg.to_json().dump() : kDefaults;
        try {
            swpu::apply_override(cfg, assignment);
            changed = true;
        } catch (const swpu::ConfigError& e) {
            SWPU_FUZZ_CHECK(!e.reason.empty(), "ConfigError has a reason");
            if (check) SWPU_FUZZ_CHECK(cfg.to_json().dump() == before, "a refused --set changes nothing");
            checked_refusal = true;
        }
    }
    if (!changed) return 0;
    // (fuzz_config checks the round trip of accepted configs through the file loader.)
    try {
        swpu::validate(cfg);
        (void)cfg.to_json().dump();  // what --print-config and every report print
    } catch (const swpu::ConfigError&) {
        SWPU_FUZZ_CHECK(false, "a config accepted by --set validates");
    } catch (const nlohmann::json::exception&) {
        SWPU_FUZZ_CHECK(false, "a config accepted by --set can be printed as JSON");
    }
    return 0;
}
