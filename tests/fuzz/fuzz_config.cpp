// libFuzzer harness: a config document (the bytes of a --config file) through parsing and
// validation, the entry point load_config uses. Invariants: only ConfigError escapes, its message
// names the file, and an accepted config survives to_json -> parse -> to_json unchanged.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.hpp"
#include "swpu/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    swpu::RunConfig cfg;
    try {
        cfg = swpu::config_from_json_text(text, "fuzz.json");
    } catch (const swpu::ConfigError& e) {
        SWPU_FUZZ_CHECK(e.message().find("fuzz.json") != std::string::npos, "ConfigError names the file");
        SWPU_FUZZ_CHECK(!e.reason.empty(), "ConfigError has a reason");
        return 0;
    }
    const std::string once = cfg.to_json().dump();
    swpu::RunConfig again;
    try {
        again = swpu::config_from_json_text(once, "roundtrip.json");
    } catch (const swpu::ConfigError& e) {
        SWPU_FUZZ_CHECK(false, "an accepted config's to_json() is accepted again");
    }
    SWPU_FUZZ_CHECK(again.to_json().dump() == once, "to_json round trip is exact");
    return 0;
}
