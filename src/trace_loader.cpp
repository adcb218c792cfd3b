// Reader of trace directories (docs/trace-format.md, version 1). Every problem becomes a
// TraceError naming the file, the layer and the field; nothing else escapes load_trace.
#include "swpu/json_strict.hpp"
#include "swpu/npy.hpp"
#include "swpu/workload.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <new>
#include <set>
#include <sstream>

namespace swpu {

std::string TraceError::message() const {
    std::string m = "trace error: " + (file.empty() ? std::string("<trace>") : file);
    if (!layer.empty()) m += ": layer '" + layer + "'";
    if (!field.empty()) m += ": field '" + field + "'";
    m += ": " + reason;
    return m;
}

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr uint64_t kStreamTraceAct = 0x101;
constexpr uint64_t kStreamTraceGrad = 0x102;
constexpr uint64_t kMaxManifestBytes = uint64_t(256) << 20;      // 256 MiB of JSON
constexpr int kMaxBatch = 65536;

std::string dims(const std::vector<int64_t>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
    return s + "]";
}

std::string brief(const json& j) {
    std::string s = j.dump();
    if (s.size() > 60) s = s.substr(0, 57) + "...";
    return s;
}

std::string fmt_num(double v) {
    std::ostringstream o;
    o << v;
    return o.str();
}

uint64_t valid_bits(const Layer& L, int c) {
    const uint64_t full = L.S == 64 ? ~uint64_t(0) : ((uint64_t(1) << L.S) - 1);
    if (L.op != LayerOp::FC) return full;
    const int64_t left = int64_t(L.fc_in) - int64_t(c) * L.S;
    if (left >= L.S) return full;
    if (left <= 0) return 0;
    return (uint64_t(1) << left) - 1;
}

// A bit array read from a .npy file: packed (uint8, NumPy's big bit order) or one bool per byte.
struct BitArray {
    std::vector<uint8_t> data;
    bool packed = true;
    bool get(uint64_t i) const { return packed ? (data[i >> 3] >> (7 - (i & 7))) & 1u : data[i] != 0; }
};

class Loader {
public:
    Loader(const std::string& dir, uint64_t seed, uint64_t max_memory)
        : dir_(dir), seed_(seed), max_memory_(max_memory) {
        manifest_ = (fs::path(dir) / "manifest.json").string();
    }

    Trace run() {
        json m = read_manifest();
        parse_header(m);
        check_layers(m);
        parse_iterations(m);
        t_.source = dir_;
        return std::move(t_);
    }

    const std::string& manifest_path() const { return manifest_; }

private:
    [[noreturn]] void fail(const std::string& layer, const std::string& field, const std::string& reason,
                           const std::string& file = std::string()) const {
        throw TraceError{file.empty() ? manifest_ : file, layer, field, reason};
    }

    // --- JSON accessors --------------------------------------------------------------------------
    const json& member(const json& obj, const char* key, const std::string& layer, const std::string& field) const {
        auto it = obj.find(key);
        if (it == obj.end()) fail(layer, field, "missing (required)");
        return *it;
    }
    const json& object(const json& v, const std::string& layer, const std::string& field) const {
        if (!v.is_object()) fail(layer, field, std::string("expected an object, got ") + v.type_name());
        return v;
    }
    // One rule everywhere: a key the format does not define is an error (a misspelt optional key
    // would otherwise silently give the default).
    void only_keys(const json& obj, std::initializer_list<const char*> known, const std::string& layer,
                   const std::string& prefix) const {
        for (auto kv = obj.begin(); kv != obj.end(); ++kv) {
            bool ok = false;
            for (const char* k : known) ok |= kv.key() == k;
            if (ok) continue;
            std::string list;
            for (const char* k : known) list += std::string(list.empty() ? "" : ", ") + k;
            fail(layer, prefix + kv.key(), "unknown field (known here: " + list + ")");
        }
    }
    int64_t integer(const json& v, const std::string& layer, const std::string& field, int64_t lo,
                    int64_t hi) const {
        if (!v.is_number_integer())
            fail(layer, field, "expected an integer, got " + std::string(v.type_name()) + " " + brief(v));
        int64_t x;
        if (v.is_number_unsigned()) {
            const uint64_t u = v.get<uint64_t>();
            if (u > uint64_t(INT64_MAX)) fail(layer, field, "integer " + brief(v) + " out of range");
            x = int64_t(u);
        } else {
            x = v.get<int64_t>();
        }
        if (x < lo || x > hi)
            fail(layer, field, "value " + std::to_string(x) + " out of range [" + std::to_string(lo) + ", " +
                                   std::to_string(hi) + "]");
        return x;
    }
    double number(const json& v, const std::string& layer, const std::string& field) const {
        if (!v.is_number()) fail(layer, field, "expected a number, got " + std::string(v.type_name()) + " " + brief(v));
        const double d = v.get<double>();
        if (!std::isfinite(d)) fail(layer, field, "number is not finite");
        return d;
    }
    std::string string(const json& v, const std::string& layer, const std::string& field) const {
        if (!v.is_string()) fail(layer, field, "expected a string, got " + std::string(v.type_name()) + " " + brief(v));
        return v.get<std::string>();
    }
    std::vector<int64_t> int_list(const json& v, const std::string& layer, const std::string& field) const {
        if (!v.is_array()) fail(layer, field, "expected a list of integers, got " + std::string(v.type_name()));
        if (v.size() > 16) fail(layer, field, "list of " + std::to_string(v.size()) + " integers is too long");
        std::vector<int64_t> out;
        for (size_t i = 0; i < v.size(); ++i) {
            if (!v[i].is_number_integer())
                fail(layer, field, "expected a list of integers, element " + std::to_string(i) + " is " + brief(v[i]));
            if (v[i].is_number_unsigned() && v[i].get<uint64_t>() > uint64_t(INT64_MAX))
                fail(layer, field, "element " + std::to_string(i) + " out of range");
            out.push_back(v[i].get<int64_t>());
        }
        return out;
    }

    // --- manifest -------------------------------------------------------------------------------
    json read_manifest() {
        std::error_code ec;
        if (!fs::exists(fs::path(dir_), ec)) fail("", "", "trace directory '" + dir_ + "' does not exist");
        if (!fs::is_directory(fs::path(dir_), ec)) fail("", "", "'" + dir_ + "' is not a directory");
        fs::file_status st = fs::status(manifest_, ec);
        if (ec || !fs::exists(st)) fail("", "", "missing manifest: no manifest.json in the trace directory");
        if (!fs::is_regular_file(st)) fail("", "", "manifest.json is not a regular file");
        const uint64_t size = fs::file_size(manifest_, ec);
        if (ec) fail("", "", "cannot stat manifest.json: " + ec.message());
        if (size > kMaxManifestBytes)
            fail("", "", "manifest.json of " + std::to_string(size) + " bytes is larger than the limit of " +
                             std::to_string(kMaxManifestBytes) + " bytes");
        std::ifstream in(manifest_, std::ios::binary);
        if (!in) fail("", "", "cannot open manifest.json");
        std::string text(size, '\0');
        if (size > 0 && !in.read(&text[0], std::streamsize(size))) fail("", "", "read error on manifest.json");
        root_ = fs::weakly_canonical(fs::absolute(fs::path(dir_)), ec);
        if (ec) fail("", "", "cannot resolve the trace directory: " + ec.message());
        try {
            return parse_json_strict(text);
        } catch (const DuplicateKeyError& e) {
            fail("", e.path.empty() ? e.key : e.path + "." + e.key,
                 "duplicate key: given twice in one object (JSON would silently keep the last)");
        } catch (const json::out_of_range& e) {
            fail("", "", std::string("JSON number out of range: ") + e.what());
        } catch (const json::parse_error& e) {
            // e.what(): "[json.exception.parse_error.101] parse error at line L, column C: ..."
            std::string w = e.what();
            const size_t p = w.find("] ");
            if (p != std::string::npos) w = w.substr(p + 2);
            fail("", "", "JSON syntax error: " + w);
        }
    }

    void parse_header(const json& m) {
        if (!m.is_object()) fail("", "", std::string("the manifest must be a JSON object, got ") + m.type_name());
        only_keys(m, {"format", "version", "network", "batch", "pruning", "source", "layers", "iterations"}, "", "");
        const std::string format = string(member(m, "format", "", "format"), "", "format");
        if (format != "swpu-trace") fail("", "format", "expected \"swpu-trace\", got \"" + format + "\"");
        const json& ver = member(m, "version", "", "version");
        if (!ver.is_number_integer() || (ver.get<int64_t>() != 1 && ver.get<int64_t>() != 2))
            fail("", "version", "unsupported version " + brief(ver) + " (this reader reads versions 1 and 2)");
        version_ = int(ver.get<int64_t>());

        const json& net = object(member(m, "network", "", "network"), "", "network");
        only_keys(net, {"name", "width", "num_classes", "input"}, "", "network.");
        const std::string name = string(member(net, "name", "", "network.name"), "", "network.name");
        if (name != "resnet18-cifar" && name != "resnet18-imagenet")
            fail("", "network.name", "unknown network '" + name + "' (known: resnet18-cifar, resnet18-imagenet)");
        double width = 1.0;
        if (net.contains("width")) {
            width = number(net["width"], "", "network.width");
            if (!(width > 0 && width <= 16))
                fail("", "network.width", "width " + fmt_num(width) + " out of range (0, 16]");
        }
        int num_classes = -1;
        if (net.contains("num_classes"))
            num_classes = int(integer(net["num_classes"], "", "network.num_classes", 1, 1000000));
        int in_h = -1, in_w = -1;
        if (net.contains("input")) {
            std::vector<int64_t> in = int_list(net["input"], "", "network.input");
            if (in.size() != 3) fail("", "network.input", "expected [C, H, W], got " + dims(in));
            if (in[0] != 3) fail("", "network.input", "the built-in networks take 3 input channels, got " + dims(in));
            if (in[1] < 1 || in[1] > 4096 || in[2] < 1 || in[2] > 4096)
                fail("", "network.input", "height and width must be in [1, 4096], got " + dims(in));
            in_h = int(in[1]);
            in_w = int(in[2]);
        }
        t_.batch = int(integer(member(m, "batch", "", "batch"), "", "batch", 1, kMaxBatch));

        const json& pr = object(member(m, "pruning", "", "pruning"), "", "pruning");
        only_keys(pr, {"mode", "fc_block"}, "", "pruning.");
        const std::string mode = string(member(pr, "mode", "", "pruning.mode"), "", "pruning.mode");
        if (!parse_prune_mode(mode, t_.mode))
            fail("", "pruning.mode",
                 "unknown mode '" + mode +
                     "' (known: dense, structured, unstructured, shape-only, line-only, sub-structured)");
        int fc_block = 16;
        if (pr.contains("fc_block")) fc_block = int(integer(pr["fc_block"], "", "pruning.fc_block", 1, 64));

        try {
            t_.net = build_network(name, width, num_classes, in_h, in_w, fc_block);
        } catch (const std::invalid_argument& e) {
            fail("", "network", e.what());
        }
        wl_ = t_.net.weighted_layers();
    }

    void check_layers(const json& m) {
        const json& layers = member(m, "layers", "", "layers");
        if (!layers.is_array()) fail("", "layers", std::string("expected a list, got ") + layers.type_name());
        const Network& net = t_.net;
        // Names first: missing, unknown and duplicate layers.
        std::vector<std::string> names;
        std::set<std::string> seen;
        for (size_t i = 0; i < layers.size(); ++i) {
            const std::string f = "layers[" + std::to_string(i) + "]";
            const json& e = object(layers[i], "", f);
            const std::string n = string(member(e, "name", "", f + ".name"), "", f + ".name");
            if (!seen.insert(n).second) fail(n, f + ".name", "duplicate layer");
            const int idx = net.find(n);
            if (idx < 0 || !net.layers[size_t(idx)].weighted())
                fail(n, f + ".name", "extra layer: not a conv/fc layer of " + net.name);
            names.push_back(n);
        }
        for (size_t i = 0; i < wl_.size(); ++i) {
            const std::string& n = net.layers[size_t(wl_[i])].name;
            if (!seen.count(n))
                fail(n, "layers", "missing layer: " + net.name + " has " + std::to_string(wl_.size()) +
                                      " conv/fc layers, this one is not listed");
        }
        for (size_t i = 0; i < wl_.size(); ++i) {
            const std::string& n = net.layers[size_t(wl_[i])].name;
            if (names[i] != n)
                fail(names[i], "layers[" + std::to_string(i) + "].name",
                     "layer order: expected '" + n + "' at position " + std::to_string(i) + " (forward order)");
        }
        // Then field by field.
        for (size_t i = 0; i < wl_.size(); ++i) {
            const Layer& L = net.layers[size_t(wl_[i])];
            const json& e = layers[i];
            const std::string f = "layers[" + std::to_string(i) + "].";
            const std::string ctx = " (" + net.name + " at width " + fmt_num(net.width) + ")";
            auto expect_int = [&](const char* key, int64_t want) {
                const int64_t got = integer(member(e, key, L.name, f + key), L.name, f + key, INT64_MIN, INT64_MAX);
                if (got != want)
                    fail(L.name, f + key, "expected " + std::to_string(want) + ", got " + std::to_string(got) + ctx);
            };
            auto expect_pair = [&](const char* key, int64_t a, int64_t b) {
                const std::vector<int64_t> got = int_list(member(e, key, L.name, f + key), L.name, f + key);
                if (got != std::vector<int64_t>{a, b})
                    fail(L.name, f + key, "expected " + dims({a, b}) + ", got " + dims(got) + ctx);
            };
            const std::string type = string(member(e, "type", L.name, f + "type"), L.name, f + "type");
            if (L.op == LayerOp::FC)
                only_keys(e, {"name", "type", "in_features", "out_features"}, L.name, f);
            else
                only_keys(e, {"name", "type", "in_channels", "out_channels", "kernel", "stride", "pad", "in_hw", "out_hw"},
                          L.name, f);
            if (L.op == LayerOp::FC) {
                if (type != "fc") fail(L.name, f + "type", "expected \"fc\", got \"" + type + "\"");
                expect_int("in_features", L.fc_in);
                expect_int("out_features", L.K);
            } else {
                if (type != "conv") fail(L.name, f + "type", "expected \"conv\", got \"" + type + "\"");
                expect_int("in_channels", L.C);
                expect_int("out_channels", L.K);
                const json& k = member(e, "kernel", L.name, f + "kernel");
                if (k.is_array())
                    expect_pair("kernel", L.R, L.S);
                else
                    expect_int("kernel", L.R);
                expect_int("stride", L.stride);
                expect_int("pad", L.pad);
                expect_pair("in_hw", L.H, L.W);
                expect_pair("out_hw", L.P, L.Q);
            }
        }
    }

    // --- iterations -----------------------------------------------------------------------------
    void parse_iterations(const json& m) {
        const json& its = member(m, "iterations", "", "iterations");
        if (!its.is_array()) fail("", "iterations", std::string("expected a list, got ") + its.type_name());
        if (its.empty()) fail("", "iterations", "no iterations: a trace needs at least one");
        // Memory needed, checked before anything is allocated.
        const Network& net = t_.net;
        const std::string too_large = trace_memory_check(net, t_.batch, its.size(), max_memory_);
        if (!too_large.empty()) fail("", "iterations", too_large);
        int64_t prev_index = -1;
        for (size_t p = 0; p < its.size(); ++p) {
            const std::string f = "iterations[" + std::to_string(p) + "]";
            const json& it = object(its[p], "", f);
            only_keys(it, {"index", "loss", "accuracy", "mask_update", "layers"}, "", f + ".");
            Iteration out;
            out.index = int(integer(member(it, "index", "", f + ".index"), "", f + ".index", 0, INT32_MAX));
            if (out.index <= prev_index)
                fail("", f + ".index",
                     "iteration indices must increase: " + std::to_string(out.index) + " after " +
                         std::to_string(prev_index));
            prev_index = out.index;
            for (const char* key : {"loss", "accuracy"}) {
                auto v = it.find(key);
                if (v == it.end() || v->is_null()) continue;
                const double x = number(*v, "", f + "." + key);
                (std::string(key) == "loss" ? out.loss : out.accuracy) = x;
            }
            out.mask_update = p == 0;
            if (it.contains("mask_update")) {
                const json& mu = it["mask_update"];
                if (!mu.is_boolean()) fail("", f + ".mask_update", "expected true or false, got " + brief(mu));
                out.mask_update = mu.get<bool>();
            }
            const json& ls = object(member(it, "layers", "", f + ".layers"), "", f + ".layers");
            for (auto kv = ls.begin(); kv != ls.end(); ++kv) {
                const int idx = net.find(kv.key());
                if (idx < 0 || !net.layers[size_t(idx)].weighted())
                    fail(kv.key(), f + ".layers", "extra layer: not a conv/fc layer of " + net.name);
            }
            for (size_t w = 0; w < wl_.size(); ++w) {
                const Layer& L = net.layers[size_t(wl_[w])];
                auto e = ls.find(L.name);
                if (e == ls.end()) fail(L.name, f + ".layers", "missing layer: every conv/fc layer needs an entry");
                out.layers.push_back(parse_layer_work(*e, L, wl_[w], w, p, f + "."));
            }
            t_.iterations.push_back(std::move(out));
        }
    }

    // Checks path safety and reads {"file": ..., "shape": [...]} whose shape must equal `expected`.
    BitArray read_bits(const json& entry, const Layer& L, const std::string& field,
                       const std::vector<int64_t>& expected, bool batch_first) {
        object(entry, L.name, field);
        for (auto kv = entry.begin(); kv != entry.end(); ++kv)
            if (kv.key() != "file" && kv.key() != "shape")
                fail(L.name, field + "." + kv.key(), "unknown field (expected \"file\" and \"shape\")");
        const std::vector<int64_t> shape =
            int_list(member(entry, "shape", L.name, field + ".shape"), L.name, field + ".shape");
        if (batch_first && shape.size() == expected.size() && !shape.empty() && shape[0] != expected[0] &&
            std::equal(shape.begin() + 1, shape.end(), expected.begin() + 1))
            fail(L.name, field + ".shape",
                 "batch mismatch: expected " + dims(expected) + ", got " + dims(shape) + " (manifest batch is " +
                     std::to_string(expected[0]) + ")");
        if (shape != expected) fail(L.name, field + ".shape", "expected " + dims(expected) + ", got " + dims(shape));
        uint64_t count = 1;
        for (int64_t d : expected) count *= uint64_t(d);

        const std::string rel = string(member(entry, "file", L.name, field + ".file"), L.name, field + ".file");
        const fs::path full = resolve(rel, L, field + ".file");
        const std::string fpath = full.string();
        npy::ByteArray arr;
        std::string err;
        if (!npy::read_bytes(fpath, arr, err, count + 64)) fail(L.name, field, err, fpath);
        BitArray b;
        const uint64_t packed_len = (count + 7) / 8;
        if (arr.is_bool) {
            if (arr.length != count)
                fail(L.name, field,
                     "length mismatch: a bool array must hold one value per element, " + std::to_string(count) +
                         " for shape " + dims(expected) + ", got " + std::to_string(arr.length),
                     fpath);
            b.packed = false;
        } else {
            if (arr.length != packed_len)
                fail(L.name, field,
                     "packed length mismatch: shape " + dims(expected) + " needs ceil(" + std::to_string(count) +
                         " / 8) = " + std::to_string(packed_len) + " bytes, the array has " +
                         std::to_string(arr.length),
                     fpath);
            if (count % 8 != 0 && packed_len > 0) {
                const uint8_t tail = arr.data[packed_len - 1] & uint8_t(0xffu >> (count % 8));
                if (tail != 0)
                    fail(L.name, field, "corrupted: non-zero padding bits after the last element", fpath);
            }
        }
        b.data = std::move(arr.data);
        return b;
    }

    fs::path resolve(const std::string& rel, const Layer& L, const std::string& field) {
        if (rel.empty()) fail(L.name, field, "empty path");
        const fs::path p(rel);
        if (p.is_absolute() || p.has_root_name() || p.has_root_directory())
            fail(L.name, field, "path '" + rel + "' leaves the trace directory (absolute paths are not allowed)");
        const fs::path norm = p.lexically_normal();
        if (!norm.empty() && *norm.begin() == "..")
            fail(L.name, field, "path '" + rel + "' leaves the trace directory");
        const fs::path full = fs::path(dir_) / norm;
        std::error_code ec;
        const fs::path canon = fs::weakly_canonical(fs::absolute(full), ec);
        if (ec) fail(L.name, field, "cannot resolve path '" + rel + "': " + ec.message());
        // Symbolic links may not lead out of the directory either.
        auto r = root_.begin();
        auto c = canon.begin();
        for (; r != root_.end(); ++r, ++c) {
            if (r->empty() && std::next(r) == root_.end()) break;  // trailing separator
            if (c == canon.end() || *r != *c)
                fail(L.name, field, "path '" + rel + "' leaves the trace directory (through a link)");
        }
        return full;
    }

    LayerWork parse_layer_work(const json& e, const Layer& L, int li, size_t wpos, size_t ipos, const std::string& f) {
        object(e, L.name, f + "layers." + L.name);
        static const std::set<std::string> allowed = {"line_mask",           "shape_mask",         "element_mask",
                                                      "input_nonzero",       "input_density",      "output_grad_nonzero",
                                                      "output_grad_density", "weight",           "input",
                                                      "output_grad"};
        for (auto kv = e.begin(); kv != e.end(); ++kv) {
            if (!allowed.count(kv.key()))
                fail(L.name, f + kv.key(),
                     "unknown field (expected line_mask + shape_mask or element_mask, input_nonzero or "
                     "input_density, output_grad_nonzero or output_grad_density, and in version 2 weight, input, "
                     "output_grad)");
            if (version_ < 2 && (kv.key() == "weight" || kv.key() == "input" || kv.key() == "output_grad"))
                fail(L.name, f + kv.key(), "recorded tensors need format version 2 (the manifest says version 1)");
        }
        LayerWork lw;
        lw.layer = li;
        parse_masks(e, L, lw.mask, f);
        parse_bitmaps(e, L, lw, wpos, ipos, f);
        parse_tensors(e, L, lw, f);
        return lw;
    }

    // Version 2: recorded FP16 values ({"file", "shape"}, a float16 .npy of that shape), stored in
    // conv form. A non-zero input or gradient value where its bitmap says zero is an error: the
    // datapath would skip a product the framework computed.
    void parse_tensors(const json& e, const Layer& L, LayerWork& lw, const std::string& f) {
        const bool fc = L.op == LayerOp::FC;
        const int64_t N = t_.batch;
        if (!e.contains("weight") && !e.contains("input") && !e.contains("output_grad")) return;
        auto t = std::make_shared<LayerTensors>();
        if (e.contains("weight")) {
            const auto shp = fc ? std::vector<int64_t>{L.K, L.fc_in} : std::vector<int64_t>{L.K, L.C, L.R, L.S};
            std::vector<uint16_t> v = read_tensor(e["weight"], L, f + "weight", shp);
            t->weight = fc ? fc_to_conv(v, L.K, L) : std::move(v);
        }
        if (e.contains("input")) {
            if (!e.contains("input_nonzero"))
                fail(L.name, f + "input", "recorded input values need the input_nonzero bitmap, not input_density");
            const auto shp = fc ? std::vector<int64_t>{N, L.fc_in} : std::vector<int64_t>{N, L.C, L.H, L.W};
            std::vector<uint16_t> v = read_tensor(e["input"], L, f + "input", shp);
            t->input = fc ? fc_to_conv(v, int(N), L) : std::move(v);
            check_against_bitmap(t->input, lw.input_nonzero, L, f + "input", "input_nonzero");
        }
        if (e.contains("output_grad")) {
            if (!e.contains("output_grad_nonzero"))
                fail(L.name, f + "output_grad",
                     "recorded output gradients need the output_grad_nonzero bitmap, not output_grad_density");
            const auto shp = fc ? std::vector<int64_t>{N, L.K} : std::vector<int64_t>{N, L.K, L.P, L.Q};
            t->grad_out = read_tensor(e["output_grad"], L, f + "output_grad", shp);
            check_against_bitmap(t->grad_out, lw.grad_nonzero, L, f + "output_grad", "output_grad_nonzero");
        }
        lw.tensors = std::move(t);
    }

    // [rows][F] -> [rows][ceil(F/B)][1][B] with the last block's padding zero.
    static std::vector<uint16_t> fc_to_conv(const std::vector<uint16_t>& v, int rows, const Layer& L) {
        std::vector<uint16_t> out(size_t(rows) * L.C * L.S, 0);
        for (int i = 0; i < rows; ++i)
            for (int x = 0; x < L.fc_in; ++x) out[size_t(i) * L.C * L.S + x] = v[size_t(i) * L.fc_in + x];
        return out;
    }

    void check_against_bitmap(const std::vector<uint16_t>& v, const Bitmap4D& bm, const Layer& L,
                              const std::string& field, const char* bitmap) const {
        size_t i = 0;
        for (int n = 0; n < bm.N; ++n)
            for (int c = 0; c < bm.C; ++c)
                for (int h = 0; h < bm.H; ++h)
                    for (int w = 0; w < bm.W; ++w, ++i)
                        if ((v[i] & 0x7fffu) != 0 && !bm.get(n, c, h, w))
                            fail(L.name, field,
                                 "value " + std::to_string(i) + " (conv-form index [" + std::to_string(n) + ", " +
                                     std::to_string(c) + ", " + std::to_string(h) + ", " + std::to_string(w) +
                                     "]) is non-zero where " + bitmap + " is 0");
    }

    std::vector<uint16_t> read_tensor(const json& entry, const Layer& L, const std::string& field,
                                      const std::vector<int64_t>& expected) {
        object(entry, L.name, field);
        for (auto kv = entry.begin(); kv != entry.end(); ++kv)
            if (kv.key() != "file" && kv.key() != "shape")
                fail(L.name, field + "." + kv.key(), "unknown field (expected \"file\" and \"shape\")");
        const std::vector<int64_t> shape =
            int_list(member(entry, "shape", L.name, field + ".shape"), L.name, field + ".shape");
        if (shape != expected) fail(L.name, field + ".shape", "expected " + dims(expected) + ", got " + dims(shape));
        uint64_t count = 1;
        for (int64_t d : expected) count *= uint64_t(d);
        tensor_bytes_ += count * 2;
        if (tensor_bytes_ > max_memory_)
            fail(L.name, field, "the recorded tensors need more than the limit of " + std::to_string(max_memory_ >> 20) +
                                    " MiB (config field limits.trace_memory_mib)");
        const std::string rel = string(member(entry, "file", L.name, field + ".file"), L.name, field + ".file");
        const std::string fpath = resolve(rel, L, field + ".file").string();
        npy::Array arr;
        std::string err;
        if (!npy::read_array(fpath, arr, err, count * 8 + 64)) fail(L.name, field, err, fpath);  // room for a wrong dtype: say so
        if (arr.descr != "<f2")
            fail(L.name, field, "dtype mismatch: expected float16 ('<f2'), the file holds '" + arr.descr + "'", fpath);
        std::vector<int64_t> got(arr.shape.begin(), arr.shape.end());
        if (got != expected)
            fail(L.name, field, "shape mismatch: the manifest and the layer say " + dims(expected) + ", the file holds " +
                                    dims(got), fpath);
        std::vector<uint16_t> v(count);
        for (uint64_t i = 0; i < count; ++i) {
            v[i] = uint16_t(arr.data[2 * i] | (arr.data[2 * i + 1] << 8));
            if ((v[i] & 0x7c00u) == 0x7c00u)
                fail(L.name, field, "value " + std::to_string(i) + " is not finite (inf or NaN)", fpath);
        }
        return v;
    }

    void parse_masks(const json& e, const Layer& L, WeightMask& m, const std::string& f) {
        const bool fc = L.op == LayerOp::FC;
        const int K = L.K, C = L.C, R = L.R, S = L.S, F = L.fc_in;
        const bool has_line = e.contains("line_mask"), has_shape = e.contains("shape_mask"),
                   has_elem = e.contains("element_mask");
        const PruneMode mode = t_.mode;
        const std::string mname = to_string(mode);
        if (has_elem && (has_line || has_shape))
            fail(L.name, f + "element_mask", "element_mask cannot be combined with line_mask/shape_mask");
        if (has_line != has_shape)
            fail(L.name, f + (has_line ? "shape_mask" : "line_mask"),
                 std::string("missing: ") + (has_line ? "line_mask" : "shape_mask") + " needs its partner");
        if (has_elem && mode != PruneMode::Unstructured)
            fail(L.name, f + "element_mask",
                 "mode mismatch: element_mask is for mode 'unstructured', the trace is '" + mname + "'");
        if (has_line && mode == PruneMode::Unstructured)
            fail(L.name, f + "line_mask",
                 "mode mismatch: mode 'unstructured' takes element_mask, not line_mask/shape_mask");
        m.resize(K, C, R, S, false);
        const int J = C * R;
        if (!has_line && !has_elem) {
            if (mode != PruneMode::Dense)
                fail(L.name, f + (mode == PruneMode::Unstructured ? "element_mask" : "line_mask"),
                     "missing: masks may be omitted only in mode 'dense' (mode is '" + mname + "')");
            for (int k = 0; k < K; ++k)
                for (int c = 0; c < C; ++c)
                    for (int r = 0; r < R; ++r) m.row(k, c, r) = valid_bits(L, c);
            return;
        }
        if (has_elem) {
            const std::vector<int64_t> shp = fc ? std::vector<int64_t>{K, F} : std::vector<int64_t>{K, C, R, S};
            BitArray b = read_bits(e["element_mask"], L, f + "element_mask", shp, false);
            if (fc) {
                for (int k = 0; k < K; ++k)
                    for (int x = 0; x < F; ++x)
                        if (b.get(uint64_t(k) * F + x)) m.row(k, x / S, 0) |= uint64_t(1) << (x % S);
            } else {
                uint64_t i = 0;
                for (size_t row = 0; row < m.rows.size(); ++row)
                    for (int s = 0; s < S; ++s, ++i)
                        if (b.get(i)) m.rows[row] |= uint64_t(1) << s;
            }
            return;
        }
        // line_mask + shape_mask
        const std::vector<int64_t> lshape = fc ? std::vector<int64_t>{K, C} : std::vector<int64_t>{K, C, R};
        const std::vector<int64_t> sshape = fc ? std::vector<int64_t>{F} : std::vector<int64_t>{C, R, S};
        BitArray lb = read_bits(e["line_mask"], L, f + "line_mask", lshape, false);
        BitArray sb = read_bits(e["shape_mask"], L, f + "shape_mask", sshape, false);
        std::vector<uint64_t> shape(size_t(J), 0);
        if (fc) {
            for (int x = 0; x < F; ++x)
                if (sb.get(uint64_t(x))) shape[size_t(x / S)] |= uint64_t(1) << (x % S);
        } else {
            uint64_t i = 0;
            for (int j = 0; j < J; ++j)
                for (int s = 0; s < S; ++s, ++i)
                    if (sb.get(i)) shape[size_t(j)] |= uint64_t(1) << s;
        }
        int64_t pruned_lines = 0, pruned_shape = 0;
        for (int k = 0; k < K; ++k)
            for (int j = 0; j < J; ++j) {
                const bool on = lb.get(uint64_t(k) * J + j);
                if (!on) ++pruned_lines;
                m.rows[size_t(k) * J + j] = on ? shape[size_t(j)] : 0;
            }
        for (int j = 0; j < J; ++j)
            pruned_shape += __builtin_popcountll(valid_bits(L, j / R) & ~shape[size_t(j)]);
        // Structure required by the mode.
        switch (mode) {
            case PruneMode::Dense:
                if (pruned_lines || pruned_shape)
                    fail(L.name, f + "line_mask",
                         "mode mismatch: mode 'dense' but the masks prune " + std::to_string(pruned_lines) +
                             " lines and " + std::to_string(pruned_shape) + " shape positions");
                break;
            case PruneMode::ShapeOnly:
                if (pruned_lines)
                    fail(L.name, f + "line_mask",
                         "mode mismatch: mode 'shape-only' but line_mask prunes " + std::to_string(pruned_lines) +
                             " lines (it must be all ones)");
                break;
            case PruneMode::LineOnly:
                if (pruned_shape)
                    fail(L.name, f + "shape_mask",
                         "mode mismatch: mode 'line-only' but shape_mask prunes " + std::to_string(pruned_shape) +
                             " positions (it must be all ones)");
                break;
            case PruneMode::Structured: {
                for (int k = 0; k < K; ++k) {
                    const bool first = lb.get(uint64_t(k) * J);
                    for (int j = 1; j < J; ++j)
                        if (lb.get(uint64_t(k) * J + j) != first)
                            fail(L.name, f + "line_mask",
                                 "mode mismatch: mode 'structured' but filter " + std::to_string(k) +
                                     " is partly pruned (structured pruning keeps or removes whole filters)");
                }
                if (!fc) {
                    for (int c = 0; c < C; ++c) {
                        const bool first = shape[size_t(c) * R] & 1u;
                        for (int r = 0; r < R; ++r) {
                            const uint64_t v = shape[size_t(c) * R + r];
                            if (v != (first ? valid_bits(L, c) : 0))
                                fail(L.name, f + "shape_mask",
                                     "mode mismatch: mode 'structured' but input channel " + std::to_string(c) +
                                         " is partly pruned (structured pruning keeps or removes whole channels)");
                        }
                    }
                }
                break;
            }
            default:
                break;
        }
    }

    void parse_bitmaps(const json& e, const Layer& L, LayerWork& lw, size_t wpos, size_t ipos, const std::string& f) {
        const bool fc = L.op == LayerOp::FC;
        const int64_t N = t_.batch;
        // Input activations.
        {
            const bool has_map = e.contains("input_nonzero"), has_d = e.contains("input_density");
            if (has_map && has_d)
                fail(L.name, f + "input_density", "give either input_nonzero or input_density, not both");
            if (!has_map && !has_d) fail(L.name, f + "input_nonzero", "missing: give input_nonzero or input_density");
            if (fc)
                lw.input_nonzero.resize(int(N), L.C, 1, L.S);
            else
                lw.input_nonzero.resize(int(N), L.C, L.H, L.W);
            if (has_d) {
                const double d = density(e["input_density"], L, f + "input_density");
                fill_bernoulli(lw.input_nonzero, d, derive_seed(seed_, kStreamTraceAct, ipos, wpos),
                               fc ? L.fc_in : -1);
            } else if (fc) {
                BitArray b = read_bits(e["input_nonzero"], L, f + "input_nonzero", {N, L.fc_in}, true);
                for (int n = 0; n < N; ++n)
                    for (int x = 0; x < L.fc_in; ++x)
                        if (b.get(uint64_t(n) * L.fc_in + x)) lw.input_nonzero.set(n, x / L.S, 0, x % L.S, true);
            } else {
                BitArray b = read_bits(e["input_nonzero"], L, f + "input_nonzero", {N, L.C, L.H, L.W}, true);
                fill_from(lw.input_nonzero, b);
            }
        }
        // Output gradients.
        {
            const bool has_map = e.contains("output_grad_nonzero"), has_d = e.contains("output_grad_density");
            if (has_map && has_d)
                fail(L.name, f + "output_grad_density",
                     "give either output_grad_nonzero or output_grad_density, not both");
            if (!has_map && !has_d)
                fail(L.name, f + "output_grad_nonzero", "missing: give output_grad_nonzero or output_grad_density");
            lw.grad_nonzero.resize(int(N), L.K, L.P, L.Q);
            if (has_d) {
                const double d = density(e["output_grad_density"], L, f + "output_grad_density");
                fill_bernoulli(lw.grad_nonzero, d, derive_seed(seed_, kStreamTraceGrad, ipos, wpos));
            } else {
                const std::vector<int64_t> shp =
                    fc ? std::vector<int64_t>{N, L.K} : std::vector<int64_t>{N, L.K, L.P, L.Q};
                BitArray b = read_bits(e["output_grad_nonzero"], L, f + "output_grad_nonzero", shp, true);
                fill_from(lw.grad_nonzero, b);
            }
        }
    }

    double density(const json& v, const Layer& L, const std::string& field) const {
        const double d = number(v, L.name, field);
        if (!(d >= 0.0 && d <= 1.0)) fail(L.name, field, "density out of range: " + fmt_num(d) + " (must be in [0, 1])");
        return d;
    }

    static void fill_from(Bitmap4D& bm, const BitArray& b) {
        uint64_t i = 0;
        for (int n = 0; n < bm.N; ++n)
            for (int c = 0; c < bm.C; ++c)
                for (int h = 0; h < bm.H; ++h) {
                    uint64_t* row = bm.row(n, c, h);
                    for (int w = 0; w < bm.W; ++w, ++i)
                        if (b.get(i)) row[w >> 6] |= uint64_t(1) << (w & 63);
                }
    }

    std::string dir_, manifest_;
    fs::path root_;
    uint64_t seed_;
    uint64_t max_memory_;
    uint64_t tensor_bytes_ = 0;
    int version_ = 1;
    Trace t_;
    std::vector<int> wl_;
};

}  // namespace

uint64_t trace_memory_bytes(const Network& net, int batch, uint64_t iterations) {
    const uint64_t N = uint64_t(std::max(batch, 0));
    uint64_t per_iter = 0;
    for (int li : net.weighted_layers()) {
        const Layer& L = net.layers[size_t(li)];
        per_iter += uint64_t(L.K) * L.C * L.R * 8;
        per_iter += N * L.C * L.H * uint64_t((L.W + 63) / 64) * 8;
        per_iter += N * L.K * L.P * uint64_t((L.Q + 63) / 64) * 8;
    }
    if (iterations != 0 && per_iter > UINT64_MAX / iterations) return UINT64_MAX;
    return per_iter * iterations;
}

std::string trace_memory_check(const Network& net, int batch, uint64_t iterations, uint64_t max_bytes) {
    const uint64_t need = trace_memory_bytes(net, batch, iterations);
    if (need <= max_bytes) return std::string();
    const uint64_t per_iter = iterations ? trace_memory_bytes(net, batch, 1) : 0;
    return "trace too large: " + std::to_string(iterations) + " iteration(s) of " + net.name + " at batch " +
           std::to_string(batch) + " need about " + std::to_string(per_iter >> 20) + " MiB each, " +
           std::to_string(need >> 20) + " MiB in all, more than the limit of " + std::to_string(max_bytes >> 20) +
           " MiB (config field limits.trace_memory_mib)";
}

Trace load_trace(const std::string& dir, uint64_t seed, uint64_t max_memory_bytes) {
    Loader loader(dir, seed, max_memory_bytes);
    try {
        return loader.run();
    } catch (const TraceError&) {
        throw;
    } catch (const std::bad_alloc&) {
        throw TraceError{loader.manifest_path(), "", "", "out of memory while loading the trace"};
    } catch (const nlohmann::json::exception& e) {
        throw TraceError{loader.manifest_path(), "", "", std::string("malformed manifest: ") + e.what()};
    } catch (const std::exception& e) {
        throw TraceError{loader.manifest_path(), "", "", std::string("cannot load the trace: ") + e.what()};
    } catch (...) {
        throw TraceError{loader.manifest_path(), "", "", "cannot load the trace: unknown error"};
    }
}

}  // namespace swpu
