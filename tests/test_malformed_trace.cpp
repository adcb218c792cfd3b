// A corpus of malformed traces, generated from the shipped trace in a temporary directory and run
// through the swpu-sim binary: every manifest key removed or of the wrong type; negative, zero
// and huge dimensions; unknown and duplicated keys; missing, empty, truncated, oversized and
// corrupted .npy files; path traversal, a symbolic link to /dev/zero, a directory in place of a
// file; traces and VCD windows over the resource limits. Each must be refused with exit status
// 2, a message naming the file and the field, and no output written. The keys the format calls
// optional are checked to load, with their defaults.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "swpu/npy.hpp"
#include "swpu/workload.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const std::string kBinary = SWPU_SIM_BINARY;
const fs::path kShipped = fs::path(SWPU_SOURCE_DIR) / "configs" / "traces" / "resnet18-cifar-digits-substructured";
// The file the .npy cases corrupt, and the field that refers to it.
const std::string kNpy = "it0102/conv1.line.npy";
const std::string kNpyField = "iterations[0].line_mask";

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

std::string read_text(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_bytes(const fs::path& p, const std::string& bytes) {
    std::ofstream o(p, std::ios::binary | std::ios::trunc);
    o << bytes;
}

std::string shell_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

// A .npy image with the given header dictionary and data; header_len < 0: the true length.
std::string npy_image(const std::string& dict, const std::string& data, long header_len = -1) {
    std::string header = dict;
    while ((10 + header.size() + 1) % 64 != 0) header += ' ';
    header += '\n';
    const size_t len = header_len < 0 ? header.size() : size_t(header_len);
    std::string f = "\x93NUMPY";
    f += '\x01';
    f += '\x00';
    f += char(len & 0xff);
    f += char((len >> 8) & 0xff);
    return f + header + data;
}

std::string dict(const std::string& descr, const std::string& fortran, const std::string& shape) {
    return "{'descr': '" + descr + "', 'fortran_order': " + fortran + ", 'shape': " + shape + ", }";
}

struct ProcResult {
    int status = -1;
    std::string out, err;
};

class MalformedTrace : public ::testing::Test {
protected:
    fs::path work;
    int traces = 0;

    void SetUp() override {
        static int counter = 0;
        work = fs::temp_directory_path() /
               ("swpu_malformed_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
        fs::remove_all(work);
        fs::create_directories(work);
        fs::copy_file(fs::path(SWPU_SOURCE_DIR) / "configs" / "swpu.json", work / "swpu.json");
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(work, ec);
    }

    // A copy of the shipped trace. Its .npy files are hard links unless `own_files` (then a case
    // may change them); manifest.json is always a file of its own.
    fs::path copy_trace(bool own_files = false) {
        const fs::path dir = work / ("trace" + std::to_string(traces++));
        fs::copy(kShipped, dir,
                 fs::copy_options::recursive | (own_files ? fs::copy_options::none : fs::copy_options::create_hard_links));
        fs::remove(dir / "manifest.json");
        write_bytes(dir / "manifest.json", read_text(kShipped / "manifest.json"));
        return dir;
    }
    static json manifest_of(const fs::path& dir) { return json::parse(read_text(dir / "manifest.json")); }
    static void save(const fs::path& dir, const json& m) {
        fs::remove(dir / "manifest.json");
        write_bytes(dir / "manifest.json", m.dump(1));
    }

    ProcResult run(const std::string& args) const {
        const fs::path out_file = work / ".stdout", err_file = work / ".stderr";
        const std::string cmd = "cd " + shell_quote(work.string()) + " && " + shell_quote(kBinary) + " " + args +
                                " </dev/null >" + shell_quote(out_file.string()) + " 2>" +
                                shell_quote(err_file.string());
        const int raw = std::system(cmd.c_str());
        ProcResult r;
        r.status = (raw != -1 && WIFEXITED(raw)) ? WEXITSTATUS(raw) : -1;
        r.out = read_text(out_file);
        r.err = read_text(err_file);
        return r;
    }

    // Exit status 2, stderr names every one of `names`, nothing on stdout, no output directory.
    void expect_refused_args(const std::string& args, const std::vector<std::string>& names) {
        SCOPED_TRACE("swpu-sim " + args);
        fs::remove_all(work / "out");
        const ProcResult r = run(args + " --out out");
        EXPECT_EQ(r.status, 2) << "stderr: " << r.err;
        for (const auto& n : names) EXPECT_TRUE(contains(r.err, n)) << "stderr does not name '" << n << "': " << r.err;
        EXPECT_TRUE(r.out.empty()) << "stdout: " << r.out;
        EXPECT_FALSE(fs::exists(work / "out")) << "a refused run created its output directory";
    }
    void expect_refused(const fs::path& trace, const std::vector<std::string>& names) {
        expect_refused_args("--config swpu.json --trace " + shell_quote(trace.string()), names);
    }
};

// Every object member of the manifest worth mutating: the header, the first and the last entry
// of `layers`, and the first iteration with its first (conv) and last (fc) layer entries.
void collect(const json& j, const json::json_pointer& at, std::vector<json::json_pointer>& out) {
    if (j.is_object()) {
        for (auto it = j.begin(); it != j.end(); ++it) {
            const json::json_pointer p = at / it.key();
            if (p.to_string() == "/source") continue;  // free-form provenance, never interpreted
            if (at.to_string() == "/iterations/0/layers" && it.key() != "conv1" && it.key() != "fc") continue;
            out.push_back(p);
            collect(it.value(), p, out);
        }
    } else if (j.is_array() && !j.empty()) {
        const std::string s = at.to_string();
        if (s == "/iterations") {
            collect(j[0], at / 0, out);
        } else if (s == "/layers") {
            collect(j[0], at / 0, out);
            collect(j[j.size() - 1], at / (j.size() - 1), out);
        }
    }
}

// The key a message must name for a mutation at p: the last member name on the path.
std::string key_of(const json::json_pointer& p) {
    json::json_pointer q = p;
    while (!q.empty()) {
        const std::string k = q.back();
        if (k.empty() || !std::isdigit(static_cast<unsigned char>(k[0]))) return k;
        q.pop_back();
    }
    return "";
}

// The layer a message must name (mutations inside iterations[0].layers.<name>), or "".
std::string layer_of(const json::json_pointer& p) {
    const std::string s = p.to_string(), pre = "/iterations/0/layers/";
    if (s.rfind(pre, 0) != 0) return "";
    const std::string rest = s.substr(pre.size());
    return rest.substr(0, rest.find('/'));
}

const std::set<std::string> kOptional = {"/network/width", "/network/num_classes", "/network/input",
                                         "/pruning/fc_block", "/iterations/0/mask_update",
                                         "/iterations/0/loss", "/iterations/0/accuracy"};

}  // namespace

TEST_F(MalformedTrace, TheShippedTraceLoads) {
    const swpu::Trace t = swpu::load_trace(kShipped.string(), 1);
    EXPECT_EQ(t.iterations.size(), 2u);
    EXPECT_EQ(t.batch, 4);
}

TEST_F(MalformedTrace, EveryRequiredKeyRemoved) {
    const json base = manifest_of(kShipped);
    std::vector<json::json_pointer> paths;
    collect(base, json::json_pointer(), paths);
    ASSERT_GT(paths.size(), 40u);
    int refused = 0;
    for (const auto& p : paths) {
        if (kOptional.count(p.to_string())) continue;
        const fs::path dir = copy_trace();
        json m = base;
        m[p.parent_pointer()].erase(p.back());
        save(dir, m);
        std::vector<std::string> names = {(dir / "manifest.json").string(), "field '", key_of(p)};
        if (!layer_of(p).empty()) names.push_back("layer '" + layer_of(p) + "'");
        SCOPED_TRACE("removed " + p.to_string());
        expect_refused(dir, names);
        ++refused;
    }
    EXPECT_GT(refused, 40);
}

TEST_F(MalformedTrace, OptionalKeysRemovedLoadWithTheirDefaults) {
    const json base = manifest_of(kShipped);
    for (const auto& s : kOptional) {
        SCOPED_TRACE("removed " + s);
        const fs::path dir = copy_trace();
        json m = base;
        const json::json_pointer p(s);
        m[p.parent_pointer()].erase(p.back());
        save(dir, m);
        swpu::Trace t;
        ASSERT_NO_THROW(t = swpu::load_trace(dir.string(), 1));
        EXPECT_DOUBLE_EQ(t.net.width, 1.0);
        ASSERT_GE(t.net.find("fc"), 0);
        EXPECT_EQ(t.net.layers[size_t(t.net.find("fc"))].K, 10);  // num_classes: 10 for resnet18-cifar
        EXPECT_EQ(t.net.layers[0].H, 32);                          // input: [3, 32, 32]
        EXPECT_EQ(t.net.fc_block, 16);
        EXPECT_TRUE(t.iterations[0].mask_update);  // the first iteration's default
        EXPECT_DOUBLE_EQ(t.iterations[0].loss, s == "/iterations/0/loss" ? -1.0 : base["iterations"][0]["loss"].get<double>());
    }
    // mask_update's default for the other iterations is false.
    const fs::path dir = copy_trace();
    json m = base;
    m["iterations"][1].erase("mask_update");
    save(dir, m);
    EXPECT_FALSE(swpu::load_trace(dir.string(), 1).iterations[1].mask_update);
}

TEST_F(MalformedTrace, EveryKeyOfTheWrongType) {
    const json base = manifest_of(kShipped);
    std::vector<json::json_pointer> paths;
    collect(base, json::json_pointer(), paths);
    for (const auto& p : paths) {
        const json& v = base[p];
        json wrong;
        if (v.is_string()) wrong = 7;
        else if (v.is_number()) wrong = "7";
        else if (v.is_boolean()) wrong = "true";
        else if (v.is_array()) wrong = json::object({{"a", 1}});
        else if (v.is_object()) wrong = json::array({1});
        else wrong = json::array();  // null (accuracy): an array is no number either
        for (const json& w : {wrong, json(nullptr)}) {
            // null is the documented "unknown" of loss and accuracy.
            if (w.is_null() && (p.back() == "loss" || p.back() == "accuracy")) continue;
            const fs::path dir = copy_trace();
            json m = base;
            m[p] = w;
            save(dir, m);
            std::vector<std::string> names = {(dir / "manifest.json").string(), "field '", key_of(p)};
            if (!layer_of(p).empty()) names.push_back("layer '" + layer_of(p) + "'");
            SCOPED_TRACE(p.to_string() + " = " + w.dump());
            expect_refused(dir, names);
        }
    }
    // An element of a list of integers.
    for (const char* s : {"/network/input/1", "/layers/0/in_hw/0", "/iterations/0/layers/conv1/line_mask/shape/0"}) {
        const fs::path dir = copy_trace();
        json m = base;
        m[json::json_pointer(s)] = "32";
        save(dir, m);
        SCOPED_TRACE(s);
        expect_refused(dir, {(dir / "manifest.json").string(), key_of(json::json_pointer(s))});
    }
}

TEST_F(MalformedTrace, NegativeZeroAndHugeDimensions) {
    const json base = manifest_of(kShipped);
    const size_t fc = base["layers"].size() - 1;
    const int64_t huge = 1000000000000;  // 1e12
    struct Dim {
        std::string at;
        std::vector<json> values;
        std::string field;
    };
    const std::vector<Dim> dims = {
        {"/batch", {-1, 0, huge, 65537}, "batch"},
        {"/network/width", {0, -1, 1e9, 16.5}, "network.width"},
        {"/network/num_classes", {0, -5, huge}, "network.num_classes"},
        {"/network/input", {json{3, -32, 32}, json{3, 0, 32}, json{3, 100000, 32}, json{3, 32, huge}, json{3, 32}},
         "network.input"},
        {"/pruning/fc_block", {0, -1, 1000}, "pruning.fc_block"},
        {"/layers/0/in_channels", {-3, 0, huge}, "layers[0].in_channels"},
        {"/layers/0/out_channels", {-64, 0, huge}, "layers[0].out_channels"},
        {"/layers/0/kernel", {-3, 0, huge, json{3, -3}, json{0, 0}}, "layers[0].kernel"},
        {"/layers/0/stride", {-1, 0, huge}, "layers[0].stride"},
        {"/layers/0/pad", {-1, huge}, "layers[0].pad"},
        {"/layers/0/in_hw", {json{-32, 32}, json{0, 0}, json{huge, 32}}, "layers[0].in_hw"},
        {"/layers/0/out_hw", {json{32, -32}, json{0, 32}, json{32, huge}}, "layers[0].out_hw"},
        {"/layers/" + std::to_string(fc) + "/in_features", {-512, 0, huge},
         "layers[" + std::to_string(fc) + "].in_features"},
        {"/layers/" + std::to_string(fc) + "/out_features", {-10, 0, huge},
         "layers[" + std::to_string(fc) + "].out_features"},
        {"/iterations/0/index", {-1, huge}, "iterations[0].index"},
        {"/iterations/0/layers/conv1/line_mask/shape",
         {json{-64, 3, 3}, json{0, 3, 3}, json{64, 3, huge}, json{huge, huge, huge}, json::array()},
         "iterations[0].line_mask.shape"},
        {"/iterations/0/layers/conv1/input_nonzero/shape", {json{4, 3, 32, -32}, json{4, 3, 0, 32}, json{huge, 3, 32, 32}},
         "iterations[0].input_nonzero.shape"},
    };
    for (const auto& d : dims)
        for (const json& v : d.values) {
            const fs::path dir = copy_trace();
            json m = base;
            m[json::json_pointer(d.at)] = v;
            save(dir, m);
            SCOPED_TRACE(d.at + " = " + v.dump());
            expect_refused(dir, {(dir / "manifest.json").string(), "field '" + d.field});
        }
}

TEST_F(MalformedTrace, UnknownKeysAtEveryLevel) {
    const json base = manifest_of(kShipped);
    const std::vector<std::pair<std::string, std::string>> typos = {
        {"/batchh", "batchh"},
        {"/network/widht", "network.widht"},
        {"/pruning/fc_blok", "pruning.fc_blok"},
        {"/layers/0/strde", "layers[0].strde"},
        {"/iterations/0/mask_updte", "iterations[0].mask_updte"},
        {"/iterations/0/layers/conv1/line_msk", "iterations[0].line_msk"},
        {"/iterations/0/layers/conv1/line_mask/fiel", "iterations[0].line_mask.fiel"},
    };
    for (const auto& [at, field] : typos) {
        const fs::path dir = copy_trace();
        json m = base;
        m[json::json_pointer(at)] = 16;
        save(dir, m);
        SCOPED_TRACE(at);
        expect_refused(dir, {(dir / "manifest.json").string(), "field '" + field + "'", "unknown field"});
    }
}

TEST_F(MalformedTrace, DuplicatedKeys) {
    const std::string text = manifest_of(kShipped).dump();
    const std::vector<std::tuple<std::string, std::string, std::string>> dups = {
        {"\"batch\":4", "\"batch\":4,\"batch\":8", "batch"},
        {"\"fc_block\":16", "\"fc_block\":16,\"fc_block\":8", "pruning.fc_block"},
        {"\"name\":\"resnet18-cifar\"", "\"name\":\"resnet18-cifar\",\"name\":\"resnet18-cifar\"", "network.name"},
        {"\"mask_update\":true", "\"mask_update\":true,\"mask_update\":false", "iterations[0].mask_update"},
    };
    for (const auto& [from, to, field] : dups) {
        const size_t at = text.find(from);
        ASSERT_NE(at, std::string::npos) << from;
        const fs::path dir = copy_trace();
        std::string t = text;
        t.replace(at, from.size(), to);
        fs::remove(dir / "manifest.json");
        write_bytes(dir / "manifest.json", t);
        SCOPED_TRACE(to);
        expect_refused(dir, {(dir / "manifest.json").string(), "field '" + field + "'", "duplicate key"});
    }
}

TEST_F(MalformedTrace, DuplicatedKeyInAConfig) {
    write_bytes(work / "dup.json", "{\"chip\": {\"voltage\": 1.0, \"voltage\": 0.6}}");
    expect_refused_args("--config dup.json", {"dup.json", "chip.voltage", "duplicate key"});
}

TEST_F(MalformedTrace, BrokenNpyFiles) {
    const std::string good = read_text(kShipped / kNpy);
    ASSERT_GT(good.size(), 128u);
    swpu::npy::ByteArray arr;
    std::string err;
    ASSERT_TRUE(swpu::npy::parse_bytes(std::vector<uint8_t>(good.begin(), good.end()), arr, err)) << err;
    const std::string data(arr.data.begin(), arr.data.end());
    const std::string n = std::to_string(data.size());
    struct Bad {
        std::string what;
        std::function<void(const fs::path&)> make;
        std::string reason;
    };
    const std::vector<Bad> bads = {
        {"missing", [](const fs::path& f) { fs::remove(f); }, "file not found"},
        {"empty", [](const fs::path& f) { write_bytes(f, ""); }, "not a .npy file"},
        {"truncated", [&](const fs::path& f) { write_bytes(f, good.substr(0, good.size() - 5)); }, "truncated"},
        {"cut in the header", [&](const fs::path& f) { write_bytes(f, good.substr(0, 40)); }, "truncated"},
        {"trailing bytes", [&](const fs::path& f) { write_bytes(f, good + std::string(100, '\0')); }, "bytes after"},
        {"oversized (3 GB)", [](const fs::path& f) { write_bytes(f, ""); fs::resize_file(f, uint64_t(3) << 30); },
         "exceeds the limit"},
        {"wrong dtype", [&](const fs::path& f) { write_bytes(f, npy_image(dict("<f4", "False", "(" + n + ",)"), data)); },
         "wrong dtype"},
        {"2-D shape", [&](const fs::path& f) { write_bytes(f, npy_image(dict("|u1", "False", "(" + n + ", 1)"), data)); },
         "not 1-D"},
        {"wrong length", [&](const fs::path& f) {
             write_bytes(f, npy_image(dict("|u1", "False", "(" + std::to_string(data.size() - 1) + ",)"),
                                      data.substr(1)));
         }, "packed length mismatch"},
        {"Fortran order", [&](const fs::path& f) { write_bytes(f, npy_image(dict("|u1", "True", "(" + n + ",)"), data)); },
         "fortran_order"},
        {"header length too long", [&](const fs::path& f) {
             write_bytes(f, npy_image(dict("|u1", "False", "(" + n + ",)"), data, 60000));
         }, "truncated"},
        {"header length too short", [&](const fs::path& f) {
             write_bytes(f, npy_image(dict("|u1", "False", "(" + n + ",)"), data, 20));
         }, "corrupted .npy header"},
        {"bad magic", [&](const fs::path& f) { std::string g = good; g[1] = 'X'; write_bytes(f, g); }, "bad magic"},
        {"bool value 2", [&](const fs::path& f) {
             std::string bits(size_t(64 * 3 * 3), '\x01');
             bits[5] = '\x02';
             write_bytes(f, npy_image(dict("|b1", "False", "(" + std::to_string(bits.size()) + ",)"), bits));
         }, "bool"},
        {"a directory", [](const fs::path& f) { fs::remove(f); fs::create_directory(f); }, "not a regular file"},
    };
    for (const auto& b : bads) {
        SCOPED_TRACE(b.what);
        const fs::path dir = copy_trace(/*own_files=*/true);
        b.make(dir / kNpy);
        expect_refused(dir, {(dir / kNpy).string(), "field '" + kNpyField + "'", b.reason});
    }
}

TEST_F(MalformedTrace, FileReferencesThatLeaveTheTrace) {
    const json base = manifest_of(kShipped);
    const json::json_pointer file("/iterations/0/layers/conv1/line_mask/file");
    for (const char* ref : {"../x.npy", "it0102/../../x.npy", "../../../../../../etc/passwd", "/dev/zero", ""}) {
        SCOPED_TRACE(ref);
        const fs::path dir = copy_trace();
        json m = base;
        m[file] = ref;
        save(dir, m);
        expect_refused(dir, {(dir / "manifest.json").string(), "field '" + kNpyField + ".file'"});
    }
    // Symbolic links: to /dev/zero, and to a good .npy outside the trace.
    for (const fs::path target : {fs::path("/dev/zero"), kShipped / kNpy}) {
        SCOPED_TRACE(target.string());
        const fs::path dir = copy_trace(/*own_files=*/true);
        fs::remove(dir / kNpy);
        fs::create_symlink(target, dir / kNpy);
        expect_refused(dir, {(dir / "manifest.json").string(), "field '" + kNpyField + ".file'", "through a link"});
    }
}

TEST_F(MalformedTrace, ManifestItselfBroken) {
    struct Bad {
        std::string what;
        std::function<void(const fs::path&)> make;
        std::string reason;
    };
    const std::vector<Bad> bads = {
        {"missing", [](const fs::path& d) { fs::remove(d / "manifest.json"); }, "missing manifest"},
        {"empty", [](const fs::path& d) { write_bytes(d / "manifest.json", ""); }, "JSON syntax error"},
        {"truncated", [](const fs::path& d) {
             const std::string t = read_text(d / "manifest.json");
             write_bytes(d / "manifest.json", t.substr(0, t.size() / 2));
         }, "JSON syntax error"},
        {"a directory", [](const fs::path& d) { fs::remove(d / "manifest.json"); fs::create_directory(d / "manifest.json"); },
         "not a regular file"},
        {"a list", [](const fs::path& d) { write_bytes(d / "manifest.json", "[1, 2]"); }, "must be a JSON object"},
        {"number overflow", [](const fs::path& d) { write_bytes(d / "manifest.json", "{\"batch\": 1e999}"); }, "out of range"},
    };
    for (const auto& b : bads) {
        SCOPED_TRACE(b.what);
        const fs::path dir = copy_trace();
        b.make(dir);
        expect_refused(dir, {(dir / "manifest.json").string(), b.reason});
    }
}

TEST_F(MalformedTrace, TracesOverTheMemoryLimitAreRefusedWithTheEstimate) {
    // The largest batch the format allows: ~19 GiB of bitmaps for the shipped trace's two iterations.
    const swpu::Network net = swpu::build_network("resnet18-cifar", 1.0, 10, 32, 32, 16);
    ASSERT_GT(swpu::trace_memory_bytes(net, 65536, 2), uint64_t(16) << 30);
    const json base = manifest_of(kShipped);
    {
        const fs::path dir = copy_trace();
        json m = base;
        m["batch"] = 65536;
        save(dir, m);
        expect_refused(dir, {(dir / "manifest.json").string(), "field 'iterations'", "trace too large", "MiB in all",
                             "limits.trace_memory_mib"});
    }
    // The limit is a config field: the shipped trace itself is refused under a 1 MiB limit.
    expect_refused_args("--config swpu.json --set limits.trace_memory_mib=1 --trace " + shell_quote(kShipped.string()),
                        {"trace too large", "limits.trace_memory_mib"});
    // The synthetic trace too.
    expect_refused_args("--config swpu.json --set workload.network=resnet18-imagenet --set workload.batch=4096 "
                        "--set workload.iterations=1000",
                        {"swpu.json", "workload", "trace too large", "MiB in all", "limits.trace_memory_mib"});
}

TEST_F(MalformedTrace, VcdWindowOverTheLimitIsStoppedWithTheEstimate) {
    // A window over the whole run (the run ends long before cycle 1e11) under a 1 MiB limit: about
    // 32 k cycles in, the run stops, nothing is written.
    expect_refused_args("--config swpu.json --set workload.width=0.25 --set limits.vcd_mib=1 --vcd run.vcd "
                        "--vcd-window 0:100000000000",
                        {"--vcd-window", "MiB", "limits.vcd_mib", "nothing was written"});
    EXPECT_FALSE(fs::exists(work / "run.vcd"));
    EXPECT_FALSE(fs::exists(work / "run.vcd.tmp"));
    // The same window under the default limit (2 GiB) runs to the end.
    fs::remove_all(work / "out");
    const ProcResult r = run("--config swpu.json --set workload.width=0.25 --vcd run.vcd --vcd-window 0:100000000000 "
                             "--out out -q");
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(fs::exists(work / "run.vcd"));
    EXPECT_TRUE(fs::exists(work / "out" / "report.json"));
}

// Version 2: recorded FP16 tensors (the bundled trace with real tensors). Each broken tensor is
// refused with exit status 2, naming the file or field and the reason.
namespace {
const fs::path kV2 = fs::path(SWPU_SOURCE_DIR) / "tests" / "data" / "resnet18-cifar-digits-tensors";

// The tensor entry of `layer`/`key` in the first iteration of a manifest.
json& tensor_entry(json& m, const std::string& layer, const std::string& key) {
    return m["iterations"][0]["layers"][layer][key];
}
}  // namespace

TEST_F(MalformedTrace, VersionTwoTensorsLoadAndBrokenOnesAreRefused) {
    const swpu::Trace t = swpu::load_trace(kV2.string(), 1);
    const int fc = int(t.iterations[0].layers.size()) - 1;
    const swpu::LayerWork& w = t.iterations[0].layers[size_t(fc)];
    ASSERT_TRUE(w.tensors);
    const swpu::Layer& L = t.net.layers[size_t(w.layer)];
    EXPECT_EQ(w.tensors->weight.size(), size_t(L.K) * L.C * L.S);  // conv form of [K, F]
    EXPECT_FALSE(t.iterations[0].layers[1].tensors == nullptr);      // layer1.0.conv1 is recorded
    EXPECT_TRUE(t.iterations[0].layers[2].tensors == nullptr);       // layer1.0.conv2 is not

    auto copy_v2 = [&]() {
        const fs::path dir = work / ("v2_" + std::to_string(traces++));
        fs::copy(kV2, dir, fs::copy_options::recursive);
        return dir;
    };
    const std::string layer = "layer1.0.conv1";
    const json m0 = manifest_of(kV2);
    const std::string in_rel = m0["iterations"][0]["layers"][layer]["input"]["file"];
    const std::string w_rel = m0["iterations"][0]["layers"][layer]["weight"]["file"];
    const std::string act_rel = m0["iterations"][0]["layers"][layer]["input_nonzero"]["file"];
    swpu::npy::Array in;
    std::string err;
    ASSERT_TRUE(swpu::npy::read_array((kV2 / in_rel).string(), in, err)) << err;
    ASSERT_EQ(in.descr, "<f2");
    auto save_array = [](const fs::path& p, const swpu::npy::Array& a) {
        const std::vector<uint8_t> img = swpu::npy::serialize_array(a.descr, a.shape, a.data);
        write_bytes(p, std::string(img.begin(), img.end()));
    };
    const std::string field = "iterations[0].input";

    {  // tensors in a version 1 manifest
        const fs::path d = copy_v2();
        json m = manifest_of(d);
        m["version"] = 1;
        save(d, m);
        expect_refused(d, {"layer 'conv1'", "iterations[0].input", "need format version 2"});
    }
    {  // float32 instead of float16
        const fs::path d = copy_v2();
        swpu::npy::Array a = in;
        a.descr = "<f4";
        a.data.resize(a.data.size() * 2);
        save_array(d / in_rel, a);
        expect_refused(d, {(d / in_rel).string(), field, "dtype mismatch", "float16"});
    }
    {  // the file's shape differs from the layer's
        const fs::path d = copy_v2();
        swpu::npy::Array a = in;
        std::swap(a.shape[2], a.shape[1]);
        a.shape[1] = in.shape[2] / 2;
        a.shape[2] = in.shape[1] * 2;
        save_array(d / in_rel, a);
        expect_refused(d, {(d / in_rel).string(), field, "shape mismatch"});
    }
    {  // the manifest's shape differs from the layer's
        const fs::path d = copy_v2();
        json m = manifest_of(d);
        tensor_entry(m, layer, "weight")["shape"][0] = 3;
        save(d, m);
        expect_refused(d, {"layer1.0.conv1", "weight.shape", "expected"});
    }
    {  // a value where the bitmap says zero
        swpu::npy::ByteArray act;
        ASSERT_TRUE(swpu::npy::read_bytes((kV2 / act_rel).string(), act, err)) << err;
        const std::vector<uint8_t> bits = swpu::npy::unpack_bits(act.data, in.data.size() / 2);
        size_t zero = bits.size();
        for (size_t i = 0; i < bits.size() && zero == bits.size(); ++i)
            if (!bits[i]) zero = i;
        ASSERT_LT(zero, bits.size()) << "the recorded input has no zero";
        const fs::path d = copy_v2();
        swpu::npy::Array a = in;
        a.data[2 * zero] = 0x00;
        a.data[2 * zero + 1] = 0x3c;  // 1.0
        save_array(d / in_rel, a);
        expect_refused(d, {"layer1.0.conv1", field, "non-zero where input_nonzero is 0"});
    }
    {  // NaN
        const fs::path d = copy_v2();
        swpu::npy::Array a = in;
        a.data[0] = 0x00;
        a.data[1] = 0x7e;
        save_array(d / in_rel, a);
        expect_refused(d, {(d / in_rel).string(), field, "not finite"});
    }
    {  // values with a density instead of a bitmap
        const fs::path d = copy_v2();
        json m = manifest_of(d);
        m["iterations"][0]["layers"][layer].erase("input_nonzero");
        m["iterations"][0]["layers"][layer]["input_density"] = 0.5;
        save(d, m);
        expect_refused(d, {"layer1.0.conv1", field, "input_nonzero bitmap"});
    }
    {  // an unknown key in a tensor entry, a missing file
        const fs::path d = copy_v2();
        json m = manifest_of(d);
        tensor_entry(m, layer, "weight")["dtype"] = "float16";
        save(d, m);
        expect_refused(d, {"layer1.0.conv1", "weight.dtype", "unknown field"});
        const fs::path d2 = copy_v2();
        fs::remove(d2 / w_rel);
        expect_refused(d2, {(d2 / w_rel).string(), "file not found"});
    }
}
