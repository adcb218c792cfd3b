// libFuzzer harness: the trace loader (load_trace) on a trace directory laid out from the input.
// The input is the manifest.json text, optionally followed by a NUL byte and the bytes of one
// .npy file that replaces tiny/conv1.line.npy (JSON cannot contain a raw NUL, so the split is
// unambiguous). The other files are copied once into a temporary directory: the shipped trace's
// (seed: its manifest) and, under tiny/, those of tests/fuzz/seeds/trace/tiny.json (a width-1/16,
// 8x8-input trace that loads in well under a millisecond, so most executions reach the .npy
// files). Invariants: only TraceError escapes, and it names a file and gives a reason.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "fuzz_check.hpp"
#include "swpu/workload.hpp"

namespace {

namespace fs = std::filesystem;

const char* const kReplaced = "tiny/conv1.line.npy";

struct TraceDir {
    fs::path dir;
    std::string original;  // bytes of kReplaced as shipped
    bool replaced = false;

    TraceDir() {
        // tmpfs when there is one: on ext4, rewriting manifest.json flushes it to disk on close.
        std::error_code ec;
        const fs::path base = fs::is_directory("/dev/shm", ec) ? fs::path("/dev/shm") : fs::temp_directory_path();
        std::string tmpl = (base / "swpu_fuzz_trace_XXXXXX").string();
        SWPU_FUZZ_CHECK(mkdtemp(&tmpl[0]) != nullptr, "mkdtemp");
        dir = tmpl;
        const fs::path src = fs::path(SWPU_SOURCE_DIR) / "configs" / "traces" / "resnet18-cifar-digits-substructured";
        fs::copy(src, dir, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
        fs::remove(dir / "manifest.json");
        fs::copy(fs::path(SWPU_SOURCE_DIR) / "tests" / "fuzz" / "seeds" / "trace" / "tiny", dir / "tiny",
                 fs::copy_options::recursive | fs::copy_options::overwrite_existing);
        std::ifstream in(dir / kReplaced, std::ios::binary);
        original.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        SWPU_FUZZ_CHECK(!original.empty(), "tests/fuzz/seeds/trace/tiny/conv1.line.npy exists");
    }
    ~TraceDir() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    static void write(const fs::path& p, const char* data, size_t size) {
        std::ofstream out(p, std::ios::binary | std::ios::trunc);
        out.write(data, std::streamsize(size));
        SWPU_FUZZ_CHECK(bool(out), "write into the temporary trace directory");
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static TraceDir t;
    const char* text = reinterpret_cast<const char*>(data);
    size_t manifest_len = size;
    for (size_t i = 0; i < size; ++i)
        if (data[i] == 0) {
            manifest_len = i;
            break;
        }
    TraceDir::write(t.dir / "manifest.json", text, manifest_len);
    if (manifest_len < size) {
        TraceDir::write(t.dir / kReplaced, text + manifest_len + 1, size - manifest_len - 1);
        t.replaced = true;
    } else if (t.replaced) {
        TraceDir::write(t.dir / kReplaced, t.original.data(), t.original.size());
        t.replaced = false;
    }
    try {
        // A 256 MiB limit keeps the fuzzer inside libFuzzer's 2 GB RSS limit.
        const swpu::Trace tr = swpu::load_trace(t.dir.string(), 1, uint64_t(256) << 20);
        SWPU_FUZZ_CHECK(!tr.iterations.empty(), "an accepted trace has iterations");
        for (const auto& it : tr.iterations)
            SWPU_FUZZ_CHECK(it.layers.size() == tr.net.weighted_layers().size(), "one entry per weighted layer");
    } catch (const swpu::TraceError& e) {
        SWPU_FUZZ_CHECK(!e.file.empty() && !e.reason.empty(), "TraceError names a file and a reason");
    }
    return 0;
}
