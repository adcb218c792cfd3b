// Trace directories (docs/trace-format.md): a writer of small traces, round trips, and bad traces
// that must each produce a TraceError naming the right file, layer and field.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "swpu/npy.hpp"
#include "swpu/workload.hpp"

using namespace swpu;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        static int counter = 0;
        path = fs::temp_directory_path() /
               ("swpu_trace_test_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

void write_file(const fs::path& p, const std::vector<uint8_t>& bytes) {
    fs::create_directories(p.parent_path());
    std::ofstream o(p, std::ios::binary | std::ios::trunc);
    o.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}
void write_text(const fs::path& p, const std::string& s) {
    std::ofstream o(p, std::ios::binary | std::ios::trunc);
    o << s;
}
std::vector<uint8_t> read_file(const fs::path& p) {
    std::ifstream i(p, std::ios::binary);
    return std::vector<uint8_t>((std::istreambuf_iterator<char>(i)), std::istreambuf_iterator<char>());
}

// Writes a small trace: resnet18-cifar at width 0.125 (8..64 channels), and remembers what the
// loader must return. Masks and bitmaps are random bits in their natural (manifest) forms; the
// expected conv-form data is derived here independently of the loader.
class TraceWriter {
public:
    TraceWriter(const fs::path& dir, PruneMode mode = PruneMode::SubStructured, int batch = 1, int fc_block = 16)
        : dir_(dir), mode_(mode), batch_(batch), rng_(2024) {
        net = build_network("resnet18-cifar", 0.125, 10, 32, 32, fc_block);
        manifest = {{"format", "swpu-trace"},
                    {"version", 1},
                    {"network", {{"name", "resnet18-cifar"}, {"width", 0.125}, {"num_classes", 10}, {"input", {3, 32, 32}}}},
                    {"batch", batch},
                    {"pruning", {{"mode", to_string(mode)}, {"fc_block", fc_block}}},
                    {"source", {{"generator", "tests/test_trace_loader.cpp"}, {"seed", 1}}}};
        json layers = json::array();
        for (int li : net.weighted_layers()) {
            const Layer& L = net.layers[size_t(li)];
            if (L.op == LayerOp::FC)
                layers.push_back({{"name", L.name}, {"type", "fc"}, {"in_features", L.fc_in}, {"out_features", L.K}});
            else
                layers.push_back({{"name", L.name},
                                  {"type", "conv"},
                                  {"in_channels", L.C},
                                  {"out_channels", L.K},
                                  {"kernel", L.R},
                                  {"stride", L.stride},
                                  {"pad", L.pad},
                                  {"in_hw", {L.H, L.W}},
                                  {"out_hw", {L.P, L.Q}}});
        }
        manifest["layers"] = layers;
        manifest["iterations"] = json::array();
        add_iteration(0, true, 2.30, 0.1);
        add_iteration(5, false, 1.83, nullptr);
    }

    void save() const { write_text(dir_ / "manifest.json", manifest.dump(2)); }

    json& layer_entry(int iteration, const std::string& name) {
        return manifest["iterations"][size_t(iteration)]["layers"][name];
    }
    fs::path file_of(int iteration, const std::string& name, const std::string& key) {
        return dir_ / layer_entry(iteration, name)[key]["file"].get<std::string>();
    }

    Network net;
    json manifest;
    // Expected loader output per iteration and weighted layer position; bitmaps with N == 0 were
    // given as densities.
    std::vector<std::vector<WeightMask>> masks;
    std::vector<std::vector<Bitmap4D>> inputs, grads;
    std::vector<std::vector<double>> input_density, grad_density;

private:
    std::vector<uint8_t> random_bits(uint64_t n, double p) {
        std::vector<uint8_t> v(n);
        std::bernoulli_distribution b(p);
        for (auto& x : v) x = b(rng_);
        return v;
    }
    json put(const std::string& rel, const std::vector<uint8_t>& bits, const std::vector<int64_t>& shape) {
        write_file(dir_ / rel, npy::serialize_bytes(npy::pack_bits(bits)));
        return {{"file", rel}, {"shape", shape}};
    }

    void add_iteration(int index, bool update, double loss, json acc) {
        char it[16];
        std::snprintf(it, sizeof it, "it%04d", index);
        json layers = json::object();
        std::vector<WeightMask> ms;
        std::vector<Bitmap4D> ins, grs;
        std::vector<double> ids, gds;
        const std::vector<int> wl = net.weighted_layers();
        for (size_t w = 0; w < wl.size(); ++w) {
            const Layer& L = net.layers[size_t(wl[w])];
            const bool fc = L.op == LayerOp::FC;
            const int K = L.K, C = L.C, R = L.R, S = L.S, F = L.fc_in, N = batch_;
            const std::string base = std::string(it) + "/" + L.name;
            json e = json::object();
            WeightMask m;
            m.resize(K, C, R, S, false);
            if (mode_ == PruneMode::Unstructured) {
                const uint64_t n = fc ? uint64_t(K) * F : uint64_t(K) * C * R * S;
                std::vector<uint8_t> el = random_bits(n, 0.4);
                e["element_mask"] = put(base + ".elem.npy", el, fc ? std::vector<int64_t>{K, F} : std::vector<int64_t>{K, C, R, S});
                for (int k = 0; k < K; ++k)
                    for (int c = 0; c < C; ++c)
                        for (int r = 0; r < R; ++r)
                            for (int s = 0; s < S; ++s) {
                                const bool on = fc ? (c * S + s < F && el[size_t(k) * F + size_t(c) * S + s])
                                                   : el[((size_t(k) * C + c) * R + r) * S + s];
                                if (on) m.row(k, c, r) |= uint64_t(1) << s;
                            }
            } else {
                const uint64_t nl = uint64_t(K) * C * R, ns = fc ? uint64_t(F) : uint64_t(C) * R * S;
                std::vector<uint8_t> line = random_bits(nl, 0.6), shape = random_bits(ns, 0.7);
                if (mode_ == PruneMode::Dense || mode_ == PruneMode::ShapeOnly) line.assign(nl, 1);
                if (mode_ == PruneMode::Dense || mode_ == PruneMode::LineOnly || mode_ == PruneMode::Structured)
                    shape.assign(ns, 1);
                if (mode_ == PruneMode::Structured)
                    for (int k = 0; k < K; ++k)
                        for (int j = 0; j < C * R; ++j) line[size_t(k) * C * R + j] = line[size_t(k) * C * R];
                e["line_mask"] = put(base + ".line.npy", line, fc ? std::vector<int64_t>{K, C} : std::vector<int64_t>{K, C, R});
                e["shape_mask"] = put(base + ".shape.npy", shape, fc ? std::vector<int64_t>{F} : std::vector<int64_t>{C, R, S});
                for (int k = 0; k < K; ++k)
                    for (int c = 0; c < C; ++c)
                        for (int r = 0; r < R; ++r)
                            for (int s = 0; s < S; ++s) {
                                const bool sh = fc ? (c * S + s < F && shape[size_t(c) * S + s])
                                                   : shape[(size_t(c) * R + r) * S + s];
                                if (line[(size_t(k) * C + c) * R + r] && sh) m.row(k, c, r) |= uint64_t(1) << s;
                            }
            }
            ms.push_back(m);
            // Every third conv layer gives densities, the others (and the FC layer) bitmaps.
            Bitmap4D in, gr;
            if (w % 3 == 2 && !fc) {
                e["input_density"] = 0.4;
                e["output_grad_density"] = 0.6;
                ids.push_back(0.4);
                gds.push_back(0.6);
            } else {
                ids.push_back(-1);
                gds.push_back(-1);
                if (fc) {
                    std::vector<uint8_t> a = random_bits(uint64_t(N) * F, 0.5), g = random_bits(uint64_t(N) * K, 0.5);
                    e["input_nonzero"] = put(base + ".act.npy", a, {N, F});
                    e["output_grad_nonzero"] = put(base + ".grad.npy", g, {N, K});
                    in.resize(N, C, 1, S);
                    for (int n = 0; n < N; ++n)
                        for (int f = 0; f < F; ++f) in.set(n, f / S, 0, f % S, a[size_t(n) * F + f]);
                    gr.resize(N, K, 1, 1);
                    for (int n = 0; n < N; ++n)
                        for (int k = 0; k < K; ++k) gr.set(n, k, 0, 0, g[size_t(n) * K + k]);
                } else {
                    std::vector<uint8_t> a = random_bits(uint64_t(N) * C * L.H * L.W, 0.5);
                    std::vector<uint8_t> g = random_bits(uint64_t(N) * K * L.P * L.Q, 0.5);
                    e["input_nonzero"] = put(base + ".act.npy", a, {N, C, L.H, L.W});
                    e["output_grad_nonzero"] = put(base + ".grad.npy", g, {N, K, L.P, L.Q});
                    in.resize(N, C, L.H, L.W);
                    size_t i = 0;
                    for (int n = 0; n < N; ++n)
                        for (int c = 0; c < C; ++c)
                            for (int h = 0; h < L.H; ++h)
                                for (int x = 0; x < L.W; ++x) in.set(n, c, h, x, a[i++]);
                    gr.resize(N, K, L.P, L.Q);
                    i = 0;
                    for (int n = 0; n < N; ++n)
                        for (int k = 0; k < K; ++k)
                            for (int h = 0; h < L.P; ++h)
                                for (int x = 0; x < L.Q; ++x) gr.set(n, k, h, x, g[i++]);
                }
            }
            ins.push_back(in);
            grs.push_back(gr);
            layers[L.name] = e;
        }
        json itj = {{"index", index}, {"loss", loss}, {"accuracy", acc}, {"mask_update", update}, {"layers", layers}};
        manifest["iterations"].push_back(itj);
        masks.push_back(ms);
        inputs.push_back(ins);
        grads.push_back(grs);
        input_density.push_back(ids);
        grad_density.push_back(gds);
    }

    fs::path dir_;
    PruneMode mode_;
    int batch_;
    std::mt19937 rng_;
};

void expect_round_trip(const TraceWriter& w, const Trace& t) {
    ASSERT_EQ(t.iterations.size(), w.masks.size());
    const std::vector<int> wl = t.net.weighted_layers();
    for (size_t i = 0; i < t.iterations.size(); ++i) {
        ASSERT_EQ(t.iterations[i].layers.size(), wl.size());
        for (size_t l = 0; l < wl.size(); ++l) {
            const LayerWork& lw = t.iterations[i].layers[l];
            const std::string& name = t.net.layers[size_t(wl[l])].name;
            EXPECT_EQ(lw.layer, wl[l]);
            EXPECT_EQ(lw.mask.K, w.masks[i][l].K) << name;
            EXPECT_EQ(lw.mask.S, w.masks[i][l].S) << name;
            EXPECT_EQ(lw.mask.rows, w.masks[i][l].rows) << name << " iteration " << i;
            if (w.input_density[i][l] < 0) {
                EXPECT_EQ(lw.input_nonzero.N, w.inputs[i][l].N) << name;
                EXPECT_EQ(lw.input_nonzero.C, w.inputs[i][l].C) << name;
                EXPECT_EQ(lw.input_nonzero.H, w.inputs[i][l].H) << name;
                EXPECT_EQ(lw.input_nonzero.W, w.inputs[i][l].W) << name;
                EXPECT_EQ(lw.input_nonzero.bits, w.inputs[i][l].bits) << name << " iteration " << i;
                EXPECT_EQ(lw.grad_nonzero.bits, w.grads[i][l].bits) << name << " iteration " << i;
                EXPECT_EQ(lw.grad_nonzero.C, w.grads[i][l].C) << name;
            }
        }
    }
}

// Loads `dir` expecting a TraceError whose message contains every one of `parts`.
::testing::AssertionResult fails_with(const fs::path& dir, const std::vector<std::string>& parts) {
    try {
        load_trace(dir.string(), 1);
    } catch (const TraceError& e) {
        const std::string msg = e.message();
        if (std::getenv("SWPU_SHOW_TRACE_ERRORS")) std::printf("    %s\n", msg.c_str());
        for (const std::string& p : parts)
            if (msg.find(p) == std::string::npos)
                return ::testing::AssertionFailure() << "message lacks \"" << p << "\": " << msg;
        return ::testing::AssertionSuccess() << msg;
    } catch (const std::exception& e) {
        return ::testing::AssertionFailure() << "threw a non-TraceError: " << e.what();
    } catch (...) {
        return ::testing::AssertionFailure() << "threw an unknown exception";
    }
    return ::testing::AssertionFailure() << "loaded without error";
}

// A good trace in a fresh directory, modified by `edit` before the manifest is saved.
struct BadTrace {
    TempDir tmp;
    TraceWriter w;
    explicit BadTrace(PruneMode mode = PruneMode::SubStructured) : w(tmp.path, mode) {}
    fs::path path() const { return tmp.path; }
    std::string manifest() const { return (tmp.path / "manifest.json").string(); }
};

}  // namespace

// ------------------------------------------------------------------------------------------------
// npy
// ------------------------------------------------------------------------------------------------
TEST(Npy, RoundTripAndVersions) {
    std::vector<uint8_t> data = {0, 1, 2, 255, 128};
    npy::ByteArray a;
    std::string err;
    ASSERT_TRUE(npy::parse_bytes(npy::serialize_bytes(data), a, err)) << err;
    EXPECT_EQ(a.data, data);
    EXPECT_EQ(a.length, 5u);
    EXPECT_EQ(a.descr, "|u1");
    EXPECT_EQ(npy::serialize_bytes(data).size() % 64, 5u);  // header padded to 64 bytes
    // Versions 2.0 and 3.0 have a 4-byte header length.
    for (int major : {2, 3}) {
        std::string header = "{'descr': '<u1', 'fortran_order': False, 'shape': (5,), }";
        header += std::string(64 - (12 + header.size() + 1) % 64, ' ') + "\n";
        std::vector<uint8_t> f = {0x93, 'N', 'U', 'M', 'P', 'Y', uint8_t(major), 0};
        const uint32_t n = uint32_t(header.size());
        for (int i = 0; i < 4; ++i) f.push_back(uint8_t(n >> (8 * i)));
        f.insert(f.end(), header.begin(), header.end());
        f.insert(f.end(), data.begin(), data.end());
        ASSERT_TRUE(npy::parse_bytes(f, a, err)) << err;
        EXPECT_EQ(a.major, major);
        EXPECT_EQ(a.data, data);
    }
    // Bit packing follows np.packbits (big bit order).
    std::vector<uint8_t> bits = {1, 0, 0, 0, 0, 0, 0, 1, 1, 1};
    EXPECT_EQ(npy::pack_bits(bits), (std::vector<uint8_t>{0x81, 0xC0}));
    EXPECT_EQ(npy::unpack_bits(npy::pack_bits(bits), 10), bits);
}

TEST(Npy, RejectsBadFiles) {
    npy::ByteArray a;
    std::string err;
    std::vector<uint8_t> good = npy::serialize_bytes({1, 2, 3});
    auto with_header = [](const std::string& dict) {
        std::vector<uint8_t> f = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
        std::string h = dict + "\n";
        f.push_back(uint8_t(h.size() & 0xff));
        f.push_back(uint8_t(h.size() >> 8));
        f.insert(f.end(), h.begin(), h.end());
        f.push_back(7);
        return f;
    };
    EXPECT_FALSE(npy::parse_bytes({}, a, err));
    EXPECT_NE(err.find("not a .npy"), std::string::npos) << err;
    std::vector<uint8_t> bad = good;
    bad[1] = 'X';
    EXPECT_FALSE(npy::parse_bytes(bad, a, err));
    EXPECT_NE(err.find("magic"), std::string::npos) << err;
    bad = good;
    bad[6] = 4;
    EXPECT_FALSE(npy::parse_bytes(bad, a, err));
    EXPECT_NE(err.find("version"), std::string::npos) << err;
    bad = std::vector<uint8_t>(good.begin(), good.end() - 1);
    EXPECT_FALSE(npy::parse_bytes(bad, a, err));
    EXPECT_NE(err.find("truncated"), std::string::npos) << err;
    bad = std::vector<uint8_t>(good.begin(), good.begin() + 40);
    EXPECT_FALSE(npy::parse_bytes(bad, a, err));
    EXPECT_NE(err.find("truncated"), std::string::npos) << err;
    bad = good;
    bad.push_back(0);
    EXPECT_FALSE(npy::parse_bytes(bad, a, err));
    EXPECT_NE(err.find("bytes after"), std::string::npos) << err;
    EXPECT_FALSE(npy::parse_bytes(with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }"), a, err));
    EXPECT_NE(err.find("dtype"), std::string::npos) << err;
    EXPECT_FALSE(npy::parse_bytes(with_header("{'descr': '|u1', 'fortran_order': True, 'shape': (1,), }"), a, err));
    EXPECT_NE(err.find("fortran_order"), std::string::npos) << err;
    EXPECT_FALSE(npy::parse_bytes(with_header("{'descr': '|u1', 'fortran_order': False, 'shape': (1, 1), }"), a, err));
    EXPECT_NE(err.find("1-D"), std::string::npos) << err;
    EXPECT_FALSE(npy::parse_bytes(with_header("{'descr': '|u1', 'fortran_order': False}"), a, err));
    EXPECT_NE(err.find("shape"), std::string::npos) << err;
    EXPECT_FALSE(npy::parse_bytes(with_header("{'descr': '|u1', 'fortran_order': False, 'shape': (99999999999999999999999,), }"), a, err));
    EXPECT_FALSE(npy::parse_bytes(with_header("not a dict"), a, err));
    EXPECT_FALSE(npy::parse_bytes(with_header("{'descr': '|b1', 'fortran_order': False, 'shape': (1,), }"), a, err));
    EXPECT_NE(err.find("bool"), std::string::npos) << err;  // the data byte is 7
    // A huge announced length with a small file: refused without allocating it.
    EXPECT_FALSE(npy::parse_bytes(with_header("{'descr': '|u1', 'fortran_order': False, 'shape': (1000000000000000,), }"), a, err));
    EXPECT_NE(err.find("truncated"), std::string::npos) << err;
    EXPECT_TRUE(npy::parse_bytes(with_header("{'descr': '|u1', 'fortran_order': False, 'shape': (1,), }"), a, err)) << err;
}

// ------------------------------------------------------------------------------------------------
// Good traces
// ------------------------------------------------------------------------------------------------
TEST(TraceLoader, GoodTraceRoundTrips) {
    TempDir tmp;
    TraceWriter w(tmp.path);
    w.save();
    Trace t = load_trace(tmp.path.string(), 9);
    EXPECT_EQ(t.net.name, "resnet18-cifar");
    EXPECT_DOUBLE_EQ(t.net.width, 0.125);
    EXPECT_EQ(t.net.layers[size_t(t.net.find("conv1"))].K, 8);
    EXPECT_EQ(t.batch, 1);
    EXPECT_EQ(t.mode, PruneMode::SubStructured);
    EXPECT_EQ(t.source, tmp.path.string());
    ASSERT_EQ(t.iterations.size(), 2u);
    EXPECT_EQ(t.iterations[0].index, 0);
    EXPECT_EQ(t.iterations[1].index, 5);
    EXPECT_TRUE(t.iterations[0].mask_update);
    EXPECT_FALSE(t.iterations[1].mask_update);
    EXPECT_DOUBLE_EQ(t.iterations[0].loss, 2.30);
    EXPECT_DOUBLE_EQ(t.iterations[0].accuracy, 0.1);
    EXPECT_DOUBLE_EQ(t.iterations[1].accuracy, -1);  // null: unknown
    expect_round_trip(w, t);

    // Densities draw seeded bitmaps: same seed same bits, other seed other bits.
    Trace t2 = load_trace(tmp.path.string(), 9);
    Trace t3 = load_trace(tmp.path.string(), 10);
    const size_t l = 2;  // a layer given by densities
    ASSERT_GE(w.input_density[0][l], 0);
    EXPECT_EQ(t.iterations[0].layers[l].input_nonzero.bits, t2.iterations[0].layers[l].input_nonzero.bits);
    EXPECT_NE(t.iterations[0].layers[l].input_nonzero.bits, t3.iterations[0].layers[l].input_nonzero.bits);
    EXPECT_NEAR(t.iterations[0].layers[l].input_nonzero.density(), 0.4, 0.03);
    EXPECT_NEAR(t.iterations[0].layers[l].grad_nonzero.density(), 0.6, 0.03);
}

TEST(TraceLoader, OtherModesAndFcBlocks) {
    for (PruneMode mode : {PruneMode::Unstructured, PruneMode::Dense, PruneMode::ShapeOnly, PruneMode::LineOnly,
                           PruneMode::Structured}) {
        TempDir tmp;
        TraceWriter w(tmp.path, mode, 2, 24);  // batch 2; FC of 64 inputs in 3 blocks of 24
        w.save();
        Trace t;
        ASSERT_NO_THROW(t = load_trace(tmp.path.string(), 1)) << to_string(mode);
        EXPECT_EQ(t.mode, mode);
        EXPECT_EQ(t.net.fc_block, 24);
        expect_round_trip(w, t);
    }
    // Dense traces may omit the masks: all ones (but never the padding of an FC block).
    TempDir tmp;
    TraceWriter w(tmp.path, PruneMode::Dense, 1, 24);
    for (auto& it : w.manifest["iterations"])
        for (auto& kv : it["layers"].items()) {
            kv.value().erase("line_mask");
            kv.value().erase("shape_mask");
        }
    w.save();
    Trace t = load_trace(tmp.path.string(), 1);
    for (const LayerWork& lw : t.iterations[0].layers) {
        const Layer& L = t.net.layers[size_t(lw.layer)];
        const int64_t real = L.op == LayerOp::FC ? int64_t(L.K) * L.fc_in : int64_t(L.K) * L.C * L.R * L.S;
        EXPECT_EQ(lw.mask.kept_count(), real) << L.name;
    }
}

TEST(TraceLoader, BoolArraysAndKernelPairsAccepted) {
    TempDir tmp;
    TraceWriter w(tmp.path);
    // Rewrite conv1's line mask as an unpacked bool array and give kernels as [R, S].
    const fs::path f = w.file_of(0, "conv1", "line_mask");
    npy::ByteArray a;
    std::string err;
    ASSERT_TRUE(npy::read_bytes(f.string(), a, err)) << err;
    std::vector<uint8_t> bits = npy::unpack_bits(a.data, 8 * 3 * 3);
    write_file(f, npy::serialize_bytes(bits, "|b1"));
    for (auto& l : w.manifest["layers"])
        if (l["type"] == "conv") l["kernel"] = {l["kernel"], l["kernel"]};
    w.save();
    Trace t = load_trace(tmp.path.string(), 1);
    expect_round_trip(w, t);
}

// ------------------------------------------------------------------------------------------------
// Bad traces: each must give a TraceError naming the file, the layer and the field.
// ------------------------------------------------------------------------------------------------
TEST(TraceLoaderErrors, MissingManifest) {
    TempDir tmp;
    EXPECT_TRUE(fails_with(tmp.path, {"trace error: ", "manifest.json", "missing manifest"}));
    EXPECT_TRUE(fails_with(tmp.path / "nope", {"does not exist"}));
}

TEST(TraceLoaderErrors, JsonSyntaxError) {
    BadTrace b;
    write_text(b.path() / "manifest.json", "{\n  \"format\": \"swpu-trace\",\n  \"version\": 1,,\n}\n");
    EXPECT_TRUE(fails_with(b.path(), {b.manifest(), "JSON syntax error", "line 3", "column"}));
    write_text(b.path() / "manifest.json", "");
    EXPECT_TRUE(fails_with(b.path(), {"JSON syntax error"}));
    write_text(b.path() / "manifest.json", "[1, 2]");
    EXPECT_TRUE(fails_with(b.path(), {"must be a JSON object"}));
}

TEST(TraceLoaderErrors, WrongFormatOrVersion) {
    {
        BadTrace b;
        b.w.manifest["format"] = "swpu-trace-v0";
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {b.manifest(), "field 'format'", "swpu-trace-v0"}));
    }
    {
        BadTrace b;
        b.w.manifest["version"] = 3;
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {"field 'version'", "unsupported version 3", "versions 1 and 2"}));
    }
    {
        BadTrace b;
        b.w.manifest["version"] = "1";
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {"field 'version'"}));
    }
    {
        BadTrace b;
        b.w.manifest.erase("format");
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {"field 'format'", "missing"}));
    }
}

TEST(TraceLoaderErrors, UnknownNetworkOrBadNetworkFields) {
    {
        BadTrace b;
        b.w.manifest["network"]["name"] = "resnet50";
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {"field 'network.name'", "unknown network 'resnet50'"}));
    }
    {
        BadTrace b;
        b.w.manifest["network"]["input"] = {1, 32, 32};
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {"field 'network.input'", "3 input channels"}));
    }
    {
        BadTrace b;
        b.w.manifest["network"]["width"] = -0.5;
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {"field 'network.width'", "out of range"}));
    }
    {
        BadTrace b;
        b.w.manifest["pruning"]["mode"] = "hybrid";
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {"field 'pruning.mode'", "unknown mode 'hybrid'"}));
    }
    {
        BadTrace b;
        b.w.manifest["batch"] = 0;
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {"field 'batch'", "out of range"}));
    }
}

TEST(TraceLoaderErrors, MissingAndExtraLayersInTheLayerList) {
    {
        BadTrace b;
        b.w.manifest["layers"].erase(5);  // layer2.0.conv1
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {"layer 'layer2.0.conv1'", "field 'layers'", "missing layer"}));
    }
    {
        BadTrace b;
        b.w.manifest["layers"].push_back({{"name", "layer5.0.conv1"}, {"type", "conv"}});
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {"layer 'layer5.0.conv1'", "field 'layers[21].name'", "extra layer"}));
    }
    {
        BadTrace b;
        std::swap(b.w.manifest["layers"][1], b.w.manifest["layers"][2]);
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {"layer 'layer1.0.conv2'", "layer order"}));
    }
    {
        BadTrace b;
        b.w.manifest["layers"].push_back(b.w.manifest["layers"][3]);
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {"layer 'layer1.1.conv1'", "duplicate layer"}));
    }
}

TEST(TraceLoaderErrors, ShapesThatDoNotChain) {
    {
        BadTrace b;
        b.w.manifest["layers"][2]["in_channels"] = 16;
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {"layer 'layer1.0.conv2'", "field 'layers[2].in_channels'",
                                          "expected 8, got 16"}));
    }
    {
        BadTrace b;
        b.w.manifest["layers"][5]["out_hw"] = {32, 32};  // layer2.0.conv1 has stride 2
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {"layer 'layer2.0.conv1'", "field 'layers[5].out_hw'",
                                          "expected [16, 16], got [32, 32]"}));
    }
    {
        BadTrace b;
        b.w.manifest["layers"][20]["in_features"] = 512;
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {"layer 'fc'", "field 'layers[20].in_features'", "expected 64, got 512"}));
    }
    {
        BadTrace b;
        b.w.manifest["layers"][20]["type"] = "conv";
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {"layer 'fc'", "field 'layers[20].type'"}));
    }
}

TEST(TraceLoaderErrors, MaskOfTheWrongShape) {
    BadTrace b;
    b.w.layer_entry(0, "layer1.0.conv1")["line_mask"]["shape"] = {8, 3};
    b.w.save();
    EXPECT_TRUE(fails_with(b.path(), {b.manifest(), "layer 'layer1.0.conv1'", "field 'iterations[0].line_mask.shape'",
                                      "expected [8, 8, 3], got [8, 3]"}));
    // Absurd sizes are refused from the manifest alone.
    BadTrace c;
    c.w.layer_entry(1, "fc")["shape_mask"]["shape"] = {int64_t(1) << 50};
    c.w.save();
    EXPECT_TRUE(fails_with(c.path(), {"layer 'fc'", "field 'iterations[1].shape_mask.shape'", "expected [64]"}));
}

TEST(TraceLoaderErrors, PackedLengthMismatch) {
    BadTrace b;
    const fs::path f = b.w.file_of(0, "layer1.0.conv2", "shape_mask");
    write_file(f, npy::serialize_bytes(std::vector<uint8_t>(8, 0xff)));  // 72 bits need 9 bytes
    b.w.save();
    EXPECT_TRUE(fails_with(b.path(), {f.string(), "layer 'layer1.0.conv2'", "field 'iterations[0].shape_mask'",
                                      "packed length mismatch", "9 bytes"}));
}

TEST(TraceLoaderErrors, TruncatedNpy) {
    BadTrace b;
    const fs::path f = b.w.file_of(1, "layer1.0.conv1", "input_nonzero");
    std::vector<uint8_t> bytes = read_file(f);
    bytes.resize(bytes.size() - 10);
    write_file(f, bytes);
    b.w.save();
    EXPECT_TRUE(fails_with(b.path(), {f.string(), "layer 'layer1.0.conv1'", "field 'iterations[1].input_nonzero'",
                                      "truncated"}));
    bytes.resize(30);  // inside the header
    write_file(f, bytes);
    EXPECT_TRUE(fails_with(b.path(), {f.string(), "truncated"}));
}

TEST(TraceLoaderErrors, CorruptedNpy) {
    BadTrace b;
    const fs::path f = b.w.file_of(0, "conv1", "line_mask");
    std::vector<uint8_t> bytes = read_file(f);
    bytes[0] = 'X';
    write_file(f, bytes);
    b.w.save();
    EXPECT_TRUE(fails_with(b.path(), {f.string(), "layer 'conv1'", "field 'iterations[0].line_mask'", "bad magic"}));
    // Garbage in the header dict.
    bytes = read_file(f);
    bytes[0] = 0x93;
    bytes[12] = '#';
    write_file(f, bytes);
    EXPECT_TRUE(fails_with(b.path(), {f.string(), "corrupted .npy header"}));
    // Non-zero padding bits after the last element (72 bits = 9 bytes: no padding; use a bitmap of
    // the FC layer: 10 grad bits -> 2 bytes, 6 padding bits).
    BadTrace c;
    const fs::path g = c.w.file_of(0, "fc", "output_grad_nonzero");
    write_file(g, npy::serialize_bytes({0xff, 0xff}));
    c.w.save();
    EXPECT_TRUE(fails_with(c.path(), {g.string(), "layer 'fc'", "padding bits"}));
    // A directory where a file should be.
    BadTrace d;
    const fs::path h = d.w.file_of(0, "fc", "line_mask");
    fs::remove(h);
    fs::create_directories(h);
    d.w.save();
    EXPECT_TRUE(fails_with(d.path(), {h.string(), "layer 'fc'", "not a regular file"}));
    // A missing file.
    BadTrace e;
    fs::remove(e.w.file_of(1, "layer4.1.conv2", "line_mask"));
    e.w.save();
    EXPECT_TRUE(fails_with(e.path(), {"layer 'layer4.1.conv2'", "field 'iterations[1].line_mask'", "file not found"}));
}

TEST(TraceLoaderErrors, WrongDtype) {
    BadTrace b;
    const fs::path f = b.w.file_of(0, "layer3.0.downsample", "line_mask");
    std::vector<uint8_t> bytes = read_file(f);
    const std::string s(bytes.begin(), bytes.end());
    const size_t at = s.find("|u1");
    ASSERT_NE(at, std::string::npos);
    bytes[at] = '<';
    bytes[at + 1] = 'f';
    bytes[at + 2] = '4';
    write_file(f, bytes);
    b.w.save();
    EXPECT_TRUE(fails_with(b.path(), {f.string(), "layer 'layer3.0.downsample'", "field 'iterations[0].line_mask'",
                                      "wrong dtype '<f4'"}));
}

TEST(TraceLoaderErrors, PathEscapingTheDirectory) {
    {
        BadTrace b;
        write_file(b.path().parent_path() / "outside.npy", npy::serialize_bytes({0}));
        b.w.layer_entry(0, "layer1.1.conv1")["shape_mask"]["file"] = "../outside.npy";
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {"layer 'layer1.1.conv1'", "field 'iterations[0].shape_mask.file'",
                                          "leaves the trace directory"}));
        fs::remove(b.path().parent_path() / "outside.npy");
    }
    {
        BadTrace b;
        b.w.layer_entry(0, "layer1.1.conv1")["shape_mask"]["file"] = "it0000/../../x.npy";
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {"field 'iterations[0].shape_mask.file'", "leaves the trace directory"}));
    }
    {
        BadTrace b;
        b.w.layer_entry(0, "layer1.1.conv1")["shape_mask"]["file"] = "/etc/passwd";
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {"field 'iterations[0].shape_mask.file'", "absolute paths"}));
    }
    {
        // A symbolic link inside the directory that points outside of it.
        BadTrace b;
        TempDir other;
        const fs::path f = b.w.file_of(0, "layer1.1.conv1", "shape_mask");
        fs::copy_file(f, other.path / "real.npy");
        fs::remove(f);
        fs::create_symlink(other.path / "real.npy", f);
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {"field 'iterations[0].shape_mask.file'", "through a link"}));
    }
}

TEST(TraceLoaderErrors, DensityOutOfRange) {
    BadTrace b;
    b.w.layer_entry(1, "layer1.0.conv2")["input_density"] = 1.5;  // position 2: a density layer
    b.w.save();
    EXPECT_TRUE(fails_with(b.path(), {b.manifest(), "layer 'layer1.0.conv2'", "field 'iterations[1].input_density'",
                                      "density out of range: 1.5"}));
    BadTrace c;
    c.w.layer_entry(0, "layer1.0.conv2")["output_grad_density"] = "high";
    c.w.save();
    EXPECT_TRUE(fails_with(c.path(), {"field 'iterations[0].output_grad_density'", "expected a number"}));
}

TEST(TraceLoaderErrors, BatchMismatch) {
    BadTrace b;
    b.w.layer_entry(0, "layer1.0.conv1")["input_nonzero"]["shape"] = {2, 8, 32, 32};
    b.w.save();
    EXPECT_TRUE(fails_with(b.path(), {"layer 'layer1.0.conv1'", "field 'iterations[0].input_nonzero.shape'",
                                      "batch mismatch", "expected [1, 8, 32, 32], got [2, 8, 32, 32]"}));
    BadTrace c;
    c.w.layer_entry(0, "fc")["output_grad_nonzero"]["shape"] = {4, 10};
    c.w.save();
    EXPECT_TRUE(fails_with(c.path(), {"layer 'fc'", "field 'iterations[0].output_grad_nonzero.shape'", "batch mismatch"}));
    BadTrace d;
    d.w.layer_entry(0, "layer1.0.conv1")["output_grad_nonzero"]["shape"] = {1, 8, 16, 16};
    d.w.save();
    EXPECT_TRUE(fails_with(d.path(), {"field 'iterations[0].output_grad_nonzero.shape'", "expected [1, 8, 32, 32]"}));
}

TEST(TraceLoaderErrors, ModeVersusMasks) {
    {
        // element_mask in sub-structured mode.
        BadTrace b;
        json& e = b.w.layer_entry(0, "layer2.0.conv2");
        e["element_mask"] = e["line_mask"];
        e.erase("line_mask");
        e.erase("shape_mask");
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {"layer 'layer2.0.conv2'", "field 'iterations[0].element_mask'",
                                          "mode mismatch", "'sub-structured'"}));
    }
    {
        // line/shape masks in unstructured mode.
        BadTrace b(PruneMode::Unstructured);
        b.w.layer_entry(1, "fc")["line_mask"] = b.w.layer_entry(1, "fc")["element_mask"];
        b.w.layer_entry(1, "fc")["shape_mask"] = b.w.layer_entry(1, "fc")["element_mask"];
        b.w.layer_entry(1, "fc").erase("element_mask");
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {"layer 'fc'", "field 'iterations[1].line_mask'", "mode mismatch"}));
    }
    {
        // A missing mask outside of dense mode.
        BadTrace b;
        b.w.layer_entry(0, "conv1").erase("line_mask");
        b.w.layer_entry(0, "conv1").erase("shape_mask");
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {"layer 'conv1'", "field 'iterations[0].line_mask'", "only in mode 'dense'"}));
    }
    {
        // line_mask without its shape_mask.
        BadTrace b;
        b.w.layer_entry(0, "conv1").erase("shape_mask");
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {"layer 'conv1'", "field 'iterations[0].shape_mask'", "missing"}));
    }
    {
        // Masks that prune in a dense trace; a pruned line mask in shape-only mode.
        BadTrace b;
        b.w.manifest["pruning"]["mode"] = "dense";
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {"layer 'conv1'", "field 'iterations[0].line_mask'", "mode mismatch",
                                          "mode 'dense'"}));
        b.w.manifest["pruning"]["mode"] = "shape-only";
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {"layer 'conv1'", "mode 'shape-only' but line_mask prunes"}));
        b.w.manifest["pruning"]["mode"] = "structured";
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {"layer 'conv1'", "mode 'structured'", "partly pruned"}));
    }
}

TEST(TraceLoaderErrors, MissingOrExtraLayersInAnIteration) {
    {
        BadTrace b;
        b.w.manifest["iterations"][1]["layers"].erase("fc");
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {"layer 'fc'", "field 'iterations[1].layers'", "missing layer"}));
    }
    {
        BadTrace b;
        b.w.manifest["iterations"][0]["layers"]["layer1.0.bn1"] = json::object();
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {"layer 'layer1.0.bn1'", "field 'iterations[0].layers'", "extra layer"}));
    }
    {
        BadTrace b;
        b.w.layer_entry(0, "layer1.0.conv1")["input_nonzeros"] = 0.5;
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {"layer 'layer1.0.conv1'", "field 'iterations[0].input_nonzeros'",
                                          "unknown field"}));
    }
    {
        BadTrace b;
        b.w.layer_entry(0, "layer1.0.conv1").erase("output_grad_nonzero");
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {"layer 'layer1.0.conv1'", "field 'iterations[0].output_grad_nonzero'",
                                          "missing"}));
    }
    {
        BadTrace b;
        b.w.layer_entry(0, "layer1.0.conv1")["input_density"] = 0.5;  // and input_nonzero
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {"field 'iterations[0].input_density'", "not both"}));
    }
}

TEST(TraceLoaderErrors, IterationFields) {
    {
        BadTrace b;
        b.w.manifest["iterations"][1]["index"] = 0;
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {"field 'iterations[1].index'", "must increase"}));
    }
    {
        BadTrace b;
        b.w.manifest["iterations"][0]["mask_update"] = "yes";
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {"field 'iterations[0].mask_update'"}));
    }
    {
        BadTrace b;
        b.w.manifest["iterations"] = json::array();
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {"field 'iterations'", "at least one"}));
    }
    {
        BadTrace b;
        b.w.manifest["iterations"][0]["layers"]["conv1"]["line_mask"] = "it0000/conv1.line.npy";
        b.w.save();
        EXPECT_TRUE(fails_with(b.path(), {"layer 'conv1'", "field 'iterations[0].line_mask'", "expected an object"}));
    }
}

TEST(TraceLoaderErrors, NeverThrowsAnythingElse) {
    // Cut the manifest and one .npy file at many places: every outcome is a TraceError.
    BadTrace b;
    b.w.save();
    const std::string text = b.w.manifest.dump(2);
    for (size_t cut = 0; cut < text.size(); cut += text.size() / 40 + 1) {
        write_text(b.path() / "manifest.json", text.substr(0, cut));
        EXPECT_TRUE(fails_with(b.path(), {"trace error: "})) << "cut at " << cut;
    }
    b.w.save();
    const fs::path f = b.w.file_of(0, "layer1.0.conv1", "line_mask");
    const std::vector<uint8_t> bytes = read_file(f);
    for (size_t cut = 0; cut < bytes.size(); cut += 7) {
        write_file(f, std::vector<uint8_t>(bytes.begin(), bytes.begin() + long(cut)));
        EXPECT_TRUE(fails_with(b.path(), {"trace error: ", f.string()})) << "cut at " << cut;
    }
    // Random byte flips in the manifest: load or TraceError, nothing else.
    std::mt19937 rng(5);
    for (int i = 0; i < 60; ++i) {
        std::string t = text;
        for (int k = 0; k < 3; ++k) t[rng() % t.size()] = char(rng() % 128);
        write_text(b.path() / "manifest.json", t);
        try {
            load_trace(b.path().string(), 1);
        } catch (const TraceError&) {
        } catch (...) {
            ADD_FAILURE() << "non-TraceError exception for a corrupted manifest";
        }
    }
}

TEST(TraceLoaderErrors, MessageFormat) {
    TraceError e{"t/manifest.json", "layer1.0.conv1", "line_mask.shape", "expected [64, 64, 3], got [64, 3]"};
    EXPECT_EQ(e.message(),
              "trace error: t/manifest.json: layer 'layer1.0.conv1': field 'line_mask.shape': expected [64, 64, 3], "
              "got [64, 3]");
    TraceError f{"t/manifest.json", "", "", "missing manifest"};
    EXPECT_EQ(f.message(), "trace error: t/manifest.json: missing manifest");
}
