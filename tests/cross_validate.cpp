// Cross-validation of the fast engine against the cycle engine on a corpus of random points.
//
// Each point is a random layer (odd and small shapes, 1x1 / 3x3 / 5x5 kernels, strides 1 and 2,
// padding, FC layers), pass (FF, BP, WG), pruning mode and sparsity, activation and gradient
// densities, batch 1-4, and a random chip (groups, lanes, window, segments, banks, DBL and reorder
// on/off, line registers, latencies, accumulator sets, log or crossbar routing, lockstep or decoupled
// groups with operand FIFOs of 1-8 lines, channel- or filter-oriented BP (one in three lockstep BP
// points, line stores of 1-4 windows)). It runs on both engines, each in its own
// process (a SystemC model elaborates once per process), and compares: every action count must be
// identical, and the cycles are reported with their relative difference and, where they differ,
// the stall counters of the cycle engine that explain it.
//
//   swpu-crossval --points 300 --seed 1 --markdown docs/data/crossval.md --csv docs/data/crossval.csv
//
// Exit status: 0 when every point's action counts agree and its cycles differ by at most --bound
// percent, 1 otherwise, 2 on a bad command line.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "testbench.hpp"

namespace swpu::test {
namespace {

struct Point {
    int id = 0;
    Layer layer;
    Pass pass = Pass::FF;
    PruneMode mode = PruneMode::SubStructured;
    double sparsity = 0, in_density = 1, grad_density = 1;
    int batch = 1;
    uint64_t seed = 0;
    RunConfig cfg;
    std::string describe() const;
};

std::string Point::describe() const {
    std::ostringstream o;
    const Layer& l = layer;
    o << (l.op == LayerOp::FC ? "fc" : "conv") << " K" << l.K << " C" << l.C << " " << l.R << "x" << l.S << " in "
      << l.H << "x" << l.W << " st" << l.stride << " pad" << l.pad << " N" << batch << " " << to_string(pass) << " "
      << to_string(mode) << " sp" << std::fixed;
    o.precision(2);
    o << sparsity << " act" << in_density << " grad" << grad_density << " | G" << cfg.pe_array.groups << " L"
      << cfg.pe_array.lanes << " win" << cfg.compaction.window << " D" << cfg.compaction.segments << " banks"
      << cfg.buffers.activation.banks << "/" << cfg.buffers.weight.banks << "/" << cfg.buffers.output.banks
      << (cfg.dbl.enabled ? " dbl" : " nodbl") << (cfg.reorder_unit.enabled ? " reorder" : " noreorder") << " lb"
      << cfg.dbl.line_buffers << " mul" << cfg.pe_array.multiplier_latency << " acc" << cfg.pe_array.accumulator_sets
      << " rl" << cfg.buffers.activation.read_latency << (cfg.compaction.routing == "crossbar" ? " xbar" : "");
    if (cfg.decoupled()) o << " decoupled fifo" << cfg.pe_array.group_fifo_depth;
    if (cfg.bp_filter()) o << " bpfilter sets" << cfg.pe_array.bp_line_sets;
    return o.str();
}

template <class T>
T pick(std::mt19937_64& rng, std::initializer_list<T> v) {
    return *(v.begin() + std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng));
}

Point random_point(int id, std::mt19937_64& rng) {
    auto uni = [&](int a, int b) { return std::uniform_int_distribution<int>(a, b)(rng); };
    auto real = [&](double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng); };
    for (;;) {
        Point p;
        p.id = id;
        p.seed = rng();
        if (uni(0, 9) == 0) {
            p.layer = fc_layer(uni(1, 40), uni(1, 100), pick(rng, {4, 8, 16}));
        } else {
            const int R = pick(rng, {1, 3, 3, 5});
            const int stride = pick(rng, {1, 2});
            const int pad = uni(0, R / 2);
            const int H = uni(std::max(1, R - 2 * pad), 20), W = uni(std::max(1, R - 2 * pad), 20);
            p.layer = conv_layer(uni(1, 48), uni(1, 24), R, R, H, W, stride, pad);
        }
        p.pass = pick(rng, {Pass::FF, Pass::BP, Pass::WG});
        p.mode = pick(rng, {PruneMode::Dense, PruneMode::Structured, PruneMode::Unstructured, PruneMode::ShapeOnly,
                            PruneMode::LineOnly, PruneMode::SubStructured});
        p.sparsity = p.mode == PruneMode::Dense ? 0.0 : real(0.0, 0.95);
        p.in_density = real(0.05, 1.0);
        p.grad_density = real(0.05, 1.0);
        p.batch = uni(1, 4);
        RunConfig& c = p.cfg;
        c.pe_array.groups = pick(rng, {4, 8, 16});
        c.pe_array.lanes = pick(rng, {8, 16});
        c.compaction.window = pick(rng, {16, 32, 64});
        c.compaction.segments = pick(rng, {1, 2, 4, 8});
        for (BufferConfig* b : {&c.buffers.activation, &c.buffers.weight, &c.buffers.output}) {
            b->banks = pick(rng, {1, 2, 4, 8, 16});
            b->read_latency = pick(rng, {1, 1, 2});
        }
        c.dbl.enabled = uni(0, 3) != 0;
        c.reorder_unit.enabled = uni(0, 1) == 1;
        c.dbl.line_buffers = pick(rng, {1, 2, 4, 4});
        c.compaction.step_fifo_depth = pick(rng, {2, 4, 8});
        c.pe_array.multiplier_latency = pick(rng, {1, 3, 4});
        c.pe_array.accumulator_sets = pick(rng, {1, 2, 2});
        c.compaction.routing = pick(rng, {"log", "log", "crossbar"});
        c.pe_array.group_sync = pick(rng, {"lockstep", "lockstep", "decoupled"});
        c.pe_array.group_fifo_depth = uni(1, 8);
        // One in three lockstep BP points with filter-oriented BP, its line stores 1-4 windows deep,
        // drawn from the point's own seed: the corpus's other draws stay those of earlier corpora.
        std::mt19937_64 orient(p.seed ^ 0x9e3779b97f4a7c15ull);
        if (p.pass == Pass::BP && !c.decoupled() && std::uniform_int_distribution<int>(0, 2)(orient) == 0) {
            c.pe_array.bp_orientation = "filter";
            c.pe_array.bp_line_sets = pick(orient, {1, 2, 2, 4});
        }
        c.simulation.seed = p.seed;
        try {
            validate(c);
        } catch (const ConfigError&) {
            continue;
        }
        return p;
    }
}

std::string run_point(const Point& p, const char* engine) {
    return in_child([&] {
        RunConfig cfg = p.cfg;
        cfg.simulation.engine = engine;
        const LayerWork w = random_work(p.layer, p.batch, p.mode, p.sparsity, p.in_density, p.grad_density, p.seed);
        SwpuChip chip("chip", cfg);
        chip.set_single(&p.layer, &w, p.pass, p.batch, nullptr, true);
        sc_core::sc_start();
        return results_json(chip.results(), chip.total_cycles());
    });
}

// Counters that only the cycle engine has (its stalls) or that are wall time. With decoupled groups
// the compute cycles are a span of the groups' timeline (first line's arrival to the last group's last
// cycle), so they, the lane slots over them and the busiest group's waits are time too.
bool time_only(const std::string& k, bool decoupled) {
    if (decoupled && (k == "compute_cycles" || k == "lane_slots" || k == "buffer_stall_cycles")) return true;
    return k == "cycles" || k == "stall_dram_cycles" || k == "start_cycle" || k == "operand_wait_cycles" ||
           k == "backpressure_cycles" || k == "accumulator_stall_cycles" || k == "bank_conflict_cycles";
}

struct Outcome {
    bool actions_equal = true;
    std::string mismatch;
    int64_t cycles_cycle = 0, cycles_fast = 0;
    double diff_pct = 0;
    int64_t operand_wait = 0, backpressure = 0, accumulator_stall = 0, conflicts = 0;
    std::string error;
};

Outcome compare(const std::string& a, const std::string& b, bool decoupled) {
    Outcome o;
    nlohmann::json ja, jb;
    try {
        ja = nlohmann::json::parse(a);
        jb = nlohmann::json::parse(b);
    } catch (const std::exception&) {
        o.error = "cycle: " + a.substr(0, 300) + " | fast: " + b.substr(0, 300);
        o.actions_equal = false;
        return o;
    }
    const auto& ra = ja["results"];
    const auto& rb = jb["results"];
    if (ra.size() != rb.size()) {
        o.actions_equal = false;
        o.mismatch = "result count";
        return o;
    }
    for (size_t i = 0; i < ra.size(); ++i)
        for (auto it = ra[i].begin(); it != ra[i].end(); ++it) {
            if (!it.value().is_number_integer() || time_only(it.key(), decoupled)) continue;
            if (it.value() != rb[i][it.key()]) {
                o.actions_equal = false;
                o.mismatch += it.key() + " " + it.value().dump() + " vs " + rb[i][it.key()].dump() + "; ";
            }
        }
    const auto& pass = ra.back();
    o.cycles_cycle = pass["cycles"].get<int64_t>();
    o.cycles_fast = rb.back()["cycles"].get<int64_t>();
    o.diff_pct = 100.0 * double(o.cycles_fast - o.cycles_cycle) / double(std::max<int64_t>(1, o.cycles_cycle));
    o.operand_wait = pass["operand_wait_cycles"].get<int64_t>();
    o.backpressure = pass["backpressure_cycles"].get<int64_t>();
    o.accumulator_stall = pass["accumulator_stall_cycles"].get<int64_t>();
    o.conflicts = pass["bank_conflict_cycles"].get<int64_t>();
    return o;
}

int run(int argc, char** argv) {
    int points = 300;
    uint64_t seed = 1;
    double bound = 5.0;
    std::string md, csv;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::cerr << "swpu-crossval: " << a << " needs a value\n";
                std::exit(2);
            }
            return argv[++i];
        };
        try {
            if (a == "--points") points = std::stoi(next());
            else if (a == "--seed") seed = std::stoull(next());
            else if (a == "--bound") bound = std::stod(next());
            else if (a == "--markdown") md = next();
            else if (a == "--csv") csv = next();
            else {
                std::cerr << "swpu-crossval: unknown option " << a
                          << "\nusage: swpu-crossval [--points N] [--seed S] [--bound PCT] [--markdown FILE] [--csv FILE]\n";
                return 2;
            }
        } catch (const std::exception&) {
            std::cerr << "swpu-crossval: bad value for " << a << "\n";
            return 2;
        }
    }
    if (points < 1) {
        std::cerr << "swpu-crossval: --points must be at least 1\n";
        return 2;
    }
    std::mt19937_64 rng(seed);
    std::vector<Point> corpus;
    for (int i = 0; i < points; ++i) corpus.push_back(random_point(i, rng));
    std::vector<Outcome> out;
    int action_fail = 0, bound_fail = 0, within1 = 0, exact = 0;
    std::vector<double> absdiff;
    for (const Point& p : corpus) {
        Outcome o = compare(run_point(p, "cycle"), run_point(p, "fast"), p.cfg.decoupled());
        if (!o.actions_equal) {
            ++action_fail;
            std::cerr << "point " << p.id << " (" << p.describe() << "): action counts differ: " << o.mismatch << o.error
                      << "\n";
        }
        const double d = std::fabs(o.diff_pct);
        absdiff.push_back(d);
        exact += o.cycles_cycle == o.cycles_fast;
        within1 += d <= 1.0;
        if (d > bound) {
            ++bound_fail;
            std::cerr << "point " << p.id << " (" << p.describe() << "): cycles " << o.cycles_cycle << " vs fast "
                      << o.cycles_fast << " (" << o.diff_pct << "%) beyond the bound\n";
        }
        out.push_back(o);
    }
    std::vector<double> sorted = absdiff;
    std::sort(sorted.begin(), sorted.end());
    const double median = sorted[sorted.size() / 2], worst = sorted.back();
    std::ostringstream sum;
    sum.precision(3);
    sum << std::fixed;
    sum << "points " << points << " (seed " << seed << "): action counts identical in " << points - action_fail << "; cycles "
        << "identical in " << exact << ", within 1% in " << within1 << "; |difference| median " << median << "%, worst "
        << worst << "% (bound " << bound << "%)\n";
    std::cout << sum.str();
    if (!csv.empty()) {
        std::ofstream f(csv + ".tmp");
        f << "point,description,actions_equal,cycles_cycle_engine,cycles_fast_engine,difference_pct,operand_wait_cycles,"
             "backpressure_cycles,accumulator_stall_cycles,bank_conflict_cycles\n";
        for (size_t i = 0; i < corpus.size(); ++i) {
            const Outcome& o = out[i];
            f << i << ",\"" << corpus[i].describe() << "\"," << (o.actions_equal ? 1 : 0) << "," << o.cycles_cycle << ","
              << o.cycles_fast << "," << o.diff_pct << "," << o.operand_wait << "," << o.backpressure << ","
              << o.accumulator_stall << "," << o.conflicts << "\n";
        }
        f.close();
        std::rename((csv + ".tmp").c_str(), csv.c_str());
    }
    if (!md.empty()) {
        std::ofstream f(md + ".tmp");
        f << "<!-- generated by: swpu-crossval --points " << points << " --seed " << seed << " --bound " << bound
          << " --markdown ... -->\n";
        f << "| | |\n|---|---|\n";
        f << "| points | " << points << " (seed " << seed << ") |\n";
        f << "| action counts identical | " << points - action_fail << " of " << points << " |\n";
        f << "| cycles identical | " << exact << " of " << points << " |\n";
        f << "| cycles within 1% | " << within1 << " of " << points << " |\n";
        f.precision(3);
        f << std::fixed;
        f << "| median / worst cycle difference | " << median << "% / " << worst << "% |\n\n";
        f << "Points beyond 1%, with the cycle engine's stall counters (the cost the fast engine does not model):\n\n";
        f << "| point | configuration | cycle engine | fast engine | difference | operand wait | back-pressure | "
             "accumulator stall | bank conflicts |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n";
        for (size_t i = 0; i < corpus.size(); ++i) {
            const Outcome& o = out[i];
            if (std::fabs(o.diff_pct) <= 1.0) continue;
            f << "| " << i << " | " << corpus[i].describe() << " | " << o.cycles_cycle << " | " << o.cycles_fast << " | "
              << o.diff_pct << "% | " << o.operand_wait << " | " << o.backpressure << " | " << o.accumulator_stall << " | "
              << o.conflicts << " |\n";
        }
        f.close();
        std::rename((md + ".tmp").c_str(), md.c_str());
    }
    return action_fail || bound_fail ? 1 : 0;
}

}  // namespace
}  // namespace swpu::test

int sc_main(int argc, char* argv[]) { return swpu::test::run(argc, argv); }
