// libFuzzer harness: --set PATH=VALUE overrides. The input is up to 8 assignments, one per
// line, applied in order to the default config, as `swpu-sim --set A --set B ...` does.
// Invariants: only ConfigError escapes, an accepted override leaves a config that validates and
// round-trips through to_json, and a refused one leaves the config unchanged.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.hpp"
#include "swpu/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    swpu::ChipConfig cfg;
    bool checked_refusal = false;
    size_t start = 0;
    for (int n = 0; n < 8 && start <= text.size(); ++n) {
        size_t end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        const std::string assignment = text.substr(start, end - start);
        start = end + 1;
        // Comparing whole configs is slow: once per input is enough to catch a half-applied --set.
        const std::string before = checked_refusal ? std::string() : cfg.to_json().dump();
        try {
            swpu::apply_override(cfg, assignment);
        } catch (const swpu::ConfigError& e) {
            SWPU_FUZZ_CHECK(!e.reason.empty(), "ConfigError has a reason");
            if (!checked_refusal)
                SWPU_FUZZ_CHECK(cfg.to_json().dump() == before, "a refused --set changes nothing");
            checked_refusal = true;
        }
    }
    try {
        swpu::validate(cfg);
        const std::string once = cfg.to_json().dump();
        SWPU_FUZZ_CHECK(swpu::config_from_json_text(once, "roundtrip.json").to_json().dump() == once,
                        "to_json round trip is exact");
    } catch (const swpu::ConfigError&) {
        SWPU_FUZZ_CHECK(false, "a config accepted by --set validates and round-trips");
    }
    return 0;
}
