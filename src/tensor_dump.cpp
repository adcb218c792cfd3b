#include "swpu/tensor_dump.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <unistd.h>

#include "swpu/npy.hpp"
#include "swpu/pe_array.hpp"

namespace swpu {

namespace fs = std::filesystem;

bool DumpFilter::wants(int iteration, const std::string& layer, Pass pass) const {
    if (!iterations.empty() && std::find(iterations.begin(), iterations.end(), iteration) == iterations.end())
        return false;
    if (!layers.empty() && std::find(layers.begin(), layers.end(), layer) == layers.end()) return false;
    return passes.empty() || std::find(passes.begin(), passes.end(), pass) != passes.end();
}

namespace {

std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream in(s);
    std::string item;
    while (std::getline(in, item, ',')) out.push_back(item);
    if (!s.empty() && s.back() == ',') out.push_back("");
    return out;
}

std::vector<uint8_t> fp16_bytes(const float* v, size_t n) {
    std::vector<uint8_t> b(2 * n);
    for (size_t i = 0; i < n; ++i) {
        const uint16_t h = float_to_fp16_bits(v[i]);
        b[2 * i] = uint8_t(h & 0xff);
        b[2 * i + 1] = uint8_t(h >> 8);
    }
    return b;
}

std::vector<uint8_t> fp32_bytes(const float* v, size_t n) {
    std::vector<uint8_t> b(4 * n);
    std::memcpy(b.data(), v, 4 * n);  // little-endian hosts only (x86-64, AArch64)
    return b;
}

// FC tensors are held in conv form ([rows][ceil(F/B)][1][B]); the dump gives them as [rows][F].
std::vector<float> fc_rows(const std::vector<float>& conv, int rows, const Layer& l) {
    std::vector<float> out(size_t(rows) * l.fc_in);
    for (int i = 0; i < rows; ++i)
        for (int x = 0; x < l.fc_in; ++x) out[size_t(i) * l.fc_in + x] = conv[size_t(i) * l.C * l.S + x];
    return out;
}

}  // namespace

std::string parse_dump_filter(const std::string& iterations, const std::string& layers, const std::string& passes,
                              const Network& net, int trace_iterations, DumpFilter& out) {
    out = DumpFilter{};
    for (const std::string& it : iterations.empty() ? std::vector<std::string>{} : split(iterations)) {
        size_t used = 0;
        long v = -1;
        try {
            v = std::stol(it, &used);
        } catch (...) {
            used = 0;
        }
        if (it.empty() || used != it.size() || v < 0)
            return "--dump-iterations " + iterations + ": '" + it + "' is not an iteration number (0, 1, ...)";
        if (v >= trace_iterations)
            return "--dump-iterations " + iterations + ": iteration " + it + " is not run (the run has " +
                   std::to_string(trace_iterations) + " iteration(s), 0.." + std::to_string(trace_iterations - 1) + ")";
        out.iterations.push_back(int(v));
    }
    for (const std::string& name : layers.empty() ? std::vector<std::string>{} : split(layers)) {
        const int li = net.find(name);
        if (li < 0 || !net.layers[size_t(li)].weighted()) {
            std::string names;
            const auto wl = net.weighted_layers();
            for (size_t i = 0; i < wl.size() && i < 4; ++i) names += (i ? ", " : "") + net.layers[size_t(wl[i])].name;
            return "--dump-layers " + layers + ": '" + name + "' is not a conv or fc layer of " + net.name + " (e.g. " +
                   names + ", ...)";
        }
        out.layers.push_back(name);
    }
    for (const std::string& p : passes.empty() ? std::vector<std::string>{} : split(passes)) {
        if (p == "FF") out.passes.push_back(Pass::FF);
        else if (p == "BP") out.passes.push_back(Pass::BP);
        else if (p == "WG") out.passes.push_back(Pass::WG);
        else return "--dump-passes " + passes + ": '" + p + "' is not a pass (FF, BP or WG)";
    }
    return std::string();
}

TensorDump::TensorDump(const std::string& dir, DumpFilter filter, nlohmann::json run)
    : m_dir(dir), m_filter(std::move(filter)), m_run(std::move(run)) {
    std::error_code ec;
    if (fs::exists(dir, ec)) {
        if (!fs::is_directory(dir, ec)) throw std::runtime_error("--dump-tensors " + dir + ": exists and is not a directory");
        if (!fs::is_empty(dir, ec))
            throw std::runtime_error("--dump-tensors " + dir + ": the directory is not empty (give a new or empty one)");
    }
    fs::path d = fs::absolute(fs::path(dir)).lexically_normal();
    if (d.filename().empty()) d = d.parent_path();
    m_final = d.string();
    m_tmp = (d.parent_path() / ("." + d.filename().string() + ".tmp-" + std::to_string(::getpid()))).string();
    fs::remove_all(m_tmp, ec);
    if (!fs::create_directories(m_tmp, ec) || ec)
        throw std::runtime_error("--dump-tensors " + dir + ": cannot create the temporary directory " + m_tmp +
                                 (ec ? ": " + ec.message() : ""));
}

TensorDump::~TensorDump() {
    if (m_committed) return;
    std::error_code ec;
    fs::remove_all(m_tmp, ec);
}

std::string TensorDump::write(const std::string& rel, const std::string& descr, const std::vector<uint64_t>& shape,
                              const std::vector<uint8_t>& bytes) {
    const fs::path p = fs::path(m_tmp) / rel;
    std::error_code ec;
    fs::create_directories(p.parent_path(), ec);
    std::string err;
    if (ec || !npy::write_array(p.string(), descr, shape, bytes, err))
        throw std::runtime_error("--dump-tensors: " + (err.empty() ? "cannot create " + p.parent_path().string() : err));
    return rel;
}

void TensorDump::record(int iteration, int step, const Layer& l, const LayerWork& work, Pass pass, int batch,
                        const LayerValues& v) {
    using nlohmann::json;
    const bool fc = l.op == LayerOp::FC;
    const uint64_t N = uint64_t(batch), K = uint64_t(l.K), F = uint64_t(l.fc_in);
    char dir[32];
    std::snprintf(dir, sizeof dir, "it%04d", iteration);
    const std::string base = std::string(dir) + "/" + l.name + "/" + to_string(pass) + "/";
    json files = json::object();
    auto put = [&](const char* name, const char* dtype, const std::vector<uint64_t>& shape,
                   const std::vector<uint8_t>& bytes, const char* what) {
        const std::string descr = std::string(dtype) == "float16" ? "<f2" : std::string(dtype) == "float32" ? "<f4" : "|u1";
        files[name] = {{"file", write(base + name + ".npy", descr, shape, bytes)},
                       {"shape", shape},
                       {"dtype", dtype},
                       {"what", what}};
    };
    // Shapes: conv as the framework's NCHW / KCRS; FC as [N, F], [K, F], [N, K].
    const std::vector<uint64_t> w_shape = fc ? std::vector<uint64_t>{K, F}
                                             : std::vector<uint64_t>{K, uint64_t(l.C), uint64_t(l.R), uint64_t(l.S)};
    const std::vector<uint64_t> in_shape = fc ? std::vector<uint64_t>{N, F}
                                              : std::vector<uint64_t>{N, uint64_t(l.C), uint64_t(l.H), uint64_t(l.W)};
    const std::vector<uint64_t> out_shape = fc ? std::vector<uint64_t>{N, K}
                                               : std::vector<uint64_t>{N, K, uint64_t(l.P), uint64_t(l.Q)};
    auto form = [&](const std::vector<float>& t, int rows) { return fc ? fc_rows(t, rows, l) : t; };
    std::vector<uint8_t> mask;
    if (fc) {
        mask.resize(K * F);
        for (int k = 0; k < l.K; ++k)
            for (int x = 0; x < l.fc_in; ++x) mask[size_t(k) * F + x] = work.mask.kept(k, x / l.S, 0, x % l.S);
    } else {
        mask.resize(K * l.C * l.R * l.S);
        size_t i = 0;
        for (int k = 0; k < l.K; ++k)
            for (int c = 0; c < l.C; ++c)
                for (int r = 0; r < l.R; ++r)
                    for (int s = 0; s < l.S; ++s) mask[i++] = work.mask.kept(k, c, r, s);
    }
    put("mask", "uint8", w_shape, mask, "weight mask (1 = kept), as the datapath applied it");
    if (pass != Pass::WG) {
        const std::vector<float> w = form(v.weight, l.K);
        put("weight", "float16", w_shape, fp16_bytes(w.data(), w.size()), "stored weights (pruned entries 0)");
    }
    if (pass != Pass::BP) {
        const std::vector<float> x = form(v.input, batch);
        put("input", "float16", in_shape, fp16_bytes(x.data(), x.size()), "input activations");
    }
    if (pass != Pass::FF)
        put("grad_output", "float16", out_shape, fp16_bytes(v.grad_out.data(), v.grad_out.size()),
            "gradient of the layer's output");
    if (pass == Pass::FF) {
        put("output", "float32", out_shape, fp32_bytes(v.out.data(), v.out.size()), "O as accumulated (FP32)");
        // The cycle engine's functional mode read the stored values back from DRAM.
        const std::vector<float>& st = v.stored.empty() ? v.out : v.stored;
        put("output_stored", "float16", out_shape, fp16_bytes(st.data(), st.size()),
            "O as written back (rounded to FP16)");
    } else if (pass == Pass::BP) {
        const std::vector<float> g = form(v.grad_in, batch);
        put("grad_input", "float32", in_shape, fp32_bytes(g.data(), g.size()), "dI as accumulated (FP32)");
        const std::vector<float> st = v.stored.empty() ? g : form(v.stored, batch);
        put("grad_input_stored", "float16", in_shape, fp16_bytes(st.data(), st.size()),
            "dI as written back (rounded to FP16)");
    } else {
        const std::vector<float> g = form(v.grad_w, l.K);
        put("grad_weight", "float32", w_shape, fp32_bytes(g.data(), g.size()),
            "dW as accumulated and stored (FP32; pruned entries 0)");
    }
    json e = {{"iteration", iteration}, {"step", step}, {"layer", l.name}, {"type", fc ? "fc" : "conv"},
              {"pass", to_string(pass)}, {"batch", batch}, {"files", files}};
    if (fc) {
        e["in_features"] = l.fc_in;
        e["out_features"] = l.K;
    } else {
        e["in_channels"] = l.C;
        e["out_channels"] = l.K;
        e["kernel"] = {l.R, l.S};
        e["stride"] = l.stride;
        e["padding"] = l.pad;
        e["in_hw"] = {l.H, l.W};
        e["out_hw"] = {l.P, l.Q};
    }
    m_entries.push_back(e);
}

void TensorDump::commit() {
    nlohmann::json m = {{"format", "swpu-tensor-dump"}, {"version", 1}, {"run", m_run}, {"entries", m_entries}};
    const fs::path mp = fs::path(m_tmp) / "manifest.json";
    {
        std::ofstream out(mp, std::ios::trunc);
        out << m.dump(1) << "\n";
        if (!out) throw std::runtime_error("--dump-tensors: write error on " + mp.string());
    }
    std::error_code ec;
    if (fs::exists(m_final, ec)) fs::remove(m_final, ec);  // empty (checked at the start)
    fs::rename(m_tmp, m_final, ec);
    if (ec) throw std::runtime_error("--dump-tensors " + m_dir + ": cannot move the dump into place: " + ec.message());
    m_committed = true;
}

}  // namespace swpu
