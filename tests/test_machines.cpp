// The machine options the baselines are made of (docs/baselines.md): decoupled groups (the crossbar
// machine and SWPU's group_sync = decoupled), per-pass skip switches, FP8 operands and fused BN/ReLU.
// Cycle counts are derived by hand from the clocked units' rules (docs/architecture.md, "Decoupled
// groups" and "Cycle rules of the clocked units") and checked on both engines; each run is a child
// process (a SystemC model elaborates once per process).
#include <set>

#include <gtest/gtest.h>

#include "swpu/energy.hpp"
#include "swpu/vector_unit.hpp"
#include "testbench.hpp"

namespace swpu::test {
namespace {

nlohmann::json run_json(const RunConfig& cfg, const Layer& l, const LayerWork& w, Pass pass) {
    const std::string out = in_child([&] {
        auto rs = run_single(cfg, l, w, pass, 1, nullptr, /*cluster=*/false);
        return results_json(rs, 0);
    });
    nlohmann::json j = nlohmann::json::parse(out, nullptr, false);
    if (j.is_discarded() || j["results"].size() != 1u) {
        ADD_FAILURE() << out;
        return nlohmann::json::object();
    }
    return j["results"][0];
}

RunConfig fast_config() {
    RunConfig cfg;
    cfg.simulation.engine = "fast";
    return cfg;
}

RunConfig engine_config(const char* engine) {
    RunConfig cfg;
    cfg.simulation.engine = engine;
    return cfg;
}

// The dense layer of tests/test_cycles.cpp (K = 32, C = 8, 3x3, 10x10 input -> one 64-position
// window). With every weight kept and every input non-zero, all 16 groups have the same work, so the
// decoupled groups never wait for each other and the tile takes what the lockstep tile takes:
//   per group and line (c, r): 3 steps x ceil(64 / 16) = 12 cycles; 24 lines -> 288 compute cycles;
//   cycle 0 is the first bank cycle of the first line's read (5 activation words over 8 banks: one
//   cycle; its 3 weight words likewise), which arrives after the read latency (1) at cycle 2; the
//   groups work cycles 2..289 and the last one passes the window's last line at 289; the PE array
//   takes the window's end 4 router stages + 1 + 3 multiplier stages later (297) and writes the
//   window's 64 result words over 8 banks in cycles 298..305; the acknowledgement (306) is seen and
//   the tile done at 307. Wall: command 1 + mask load 5 (18 words, 4 per cycle) + first issue 1 +
//   307 = 314, as lockstep.
TEST(Machines, DecoupledGroupsOnADenseLayerTakeWhatLockstepTakes) {
    const Layer l = conv_layer(32, 8, 3, 3, 10, 10, 1, 0);
    const LayerWork w = random_work(l, 1, PruneMode::Dense, 0.0, 1.0, 1.0, 7);
    for (const char* engine : {"cycle", "fast"}) {
    SCOPED_TRACE(engine);
    RunConfig lock = engine_config(engine);
    RunConfig dec = engine_config(engine);
    dec.pe_array.group_sync = "decoupled";
    const nlohmann::json a = run_json(lock, l, w, Pass::FF);
    const nlohmann::json b = run_json(dec, l, w, Pass::FF);
    EXPECT_EQ(b["compute_cycles"], 2 * 288);
    EXPECT_EQ(b["valid_macs"], l.macs());
    EXPECT_EQ(b["buffer_stall_cycles"], 0);
    // Same DRAM traffic (line-compressed weights), same tiles: the same wall cycles.
    EXPECT_EQ(b["cycles"], a["cycles"]);
    EXPECT_EQ(b["dram_read_bytes"], a["dram_read_bytes"]);
    // Every group's own network carries its operands: 16 x the shared network's stage traversals.
    EXPECT_EQ(b["switch_traversals"].get<int64_t>(), 16 * a["switch_traversals"].get<int64_t>());
    // One line read and one weight word (16 groups x 3 values x 16 bit = 768 bit: 3 words) per line
    // and window, against lockstep's one 256-bit word per step (3 per line): equal weight reads.
    EXPECT_EQ(b["abuf_reads"], a["abuf_reads"]);
    EXPECT_EQ(b["wbuf_reads"], a["wbuf_reads"]);
    }
}

// The crossbar machine on the same dense layer: weights element-compressed (16 filters x 72 weights x
// (16 + 4 index) bits); per line 48 weights x 20 bits = 960 bits = 4 words (one bank cycle).
//   DRAM fill: input 1760 B + cluster 0's weights 1152 x 2 B + 1152 x 4 bit = 2880 B = 4640 B:
//   transactions of 4096 and 544 B, 64 + 9 bursts of 64 B = 4672 B / 12.8 B/ns = 365 ns, complete
//   100 ns later: 465 ns -> 314 cycles of 1481 ps. Tiles: 316 each: as above, but the crossbar's
//   select tree has log2(64) = 6 levels where a log segment of 16 has 4 (cluster 1's weights load
//   behind tile 0). Drain: 2048 B -> 176 cycles (tests/test_cycles.cpp).
TEST(Machines, CrossbarMachineOnADenseLayer) {
    const Layer l = conv_layer(32, 8, 3, 3, 10, 10, 1, 0);
    const LayerWork w = random_work(l, 1, PruneMode::Dense, 0.0, 1.0, 1.0, 7);
    for (const char* engine : {"cycle", "fast"}) {
    SCOPED_TRACE(engine);
    RunConfig cfg = engine_config(engine);
    cfg.compaction.routing = "crossbar";
    cfg.pe_array.group_sync = "decoupled";
    cfg.reorder_unit.enabled = false;
    const nlohmann::json k = run_json(cfg, l, w, Pass::FF);
    EXPECT_EQ(k["compute_cycles"], 2 * 288);
    EXPECT_EQ(k["dram_read_bytes"], 1760 + 2 * 2880);
    EXPECT_EQ(k["cycles"], 314 + 2 * 316 + 176);
    // Per cluster: 24 lines x (5 activation words + 4 weight words).
    EXPECT_EQ(k["abuf_reads"], 2 * 24 * 5);
    EXPECT_EQ(k["wbuf_reads"], 2 * 24 * 4);
    EXPECT_EQ(k["crossbar_routes"], l.macs());
    EXPECT_EQ(k["index_reads"], 32 * 72);
    }
}

// Two groups, a 1x1 layer of 2 input channels on an 8x8 map (one 64-position window, dense input):
// filter 0 keeps only channel 0, filter 1 only channel 1. A step of 64 operands takes 4 cycles.
//   Lockstep: the cluster steps through both lines, one group idle in each: 2 x 4 = 8 cycles.
//   Decoupled, FIFO of 4 lines (cycle 0: the first read's first bank cycle): line 0 (4 activation
//   words and 1 weight word over 8 banks: 1 cycle, latency 1) arrives at 2, group 0 works 2..5; line
//   1 is issued a cycle after line 0, read at 1 and arrives at 3, group 1 works 3..6: 7 - 2 = 5.
//   Decoupled, FIFO of 1 line: line 1 needs line 0's credit: line 0 is passed by both groups at 5
//   (group 0's last cycle), the credit seen and line 1 issued at 6, read at 7, arrived at 9; group 1
//   works 9..12: 13 - 2 = 11 cycles, of which group 1 works 4: 7 cycles of buffer stall.
TEST(Machines, DecoupledGroupsRunAheadByTheirFifo) {
    const Layer l = conv_layer(2, 2, 1, 1, 8, 8, 1, 0);
    LayerWork w = random_work(l, 1, PruneMode::Dense, 0.0, 1.0, 1.0, 3);
    w.mask.row(0, 1, 0) = 0;
    w.mask.row(1, 0, 0) = 0;
    for (const char* engine : {"cycle", "fast"}) {
    SCOPED_TRACE(engine);
    auto cfg_for = [&](const char* sync, int depth) {
        RunConfig c = engine_config(engine);
        c.pe_array.groups = 2;
        c.reorder_unit.enabled = false;
        c.pe_array.group_sync = sync;
        c.pe_array.group_fifo_depth = depth;
        return c;
    };
    EXPECT_EQ(run_json(cfg_for("lockstep", 4), l, w, Pass::FF)["compute_cycles"], 8);
    const nlohmann::json d4 = run_json(cfg_for("decoupled", 4), l, w, Pass::FF);
    EXPECT_EQ(d4["compute_cycles"], 5);
    EXPECT_EQ(d4["buffer_stall_cycles"], 1);  // group 1, the busiest (4 cycles), starts at 3, not 2
    const nlohmann::json d1 = run_json(cfg_for("decoupled", 1), l, w, Pass::FF);
    EXPECT_EQ(d1["compute_cycles"], 11);
    EXPECT_EQ(d1["buffer_stall_cycles"], 7);
    EXPECT_EQ(d1["valid_macs"], 2 * 64);
    // The FIFO of 1 line costs the 6 cycles between the two lines' arrivals in the wall too.
    EXPECT_EQ(d1["cycles"].get<int64_t>() - d4["cycles"].get<int64_t>(), 6);
    }
}

// A whole training iteration (narrow ResNet-18, CIFAR form) of the fine-grained machine (decoupled
// groups with per-group crossbars, element-indexed weights) and of SWPU with decoupled groups, on
// both engines: every action count identical and the cycles to the cycle (but the cycle engine's
// reset). Its strided 1x1 layers' BP has windows in which no group works: their write-backs still
// wait for their accumulator sets.
TEST(Machines, DecoupledWholeIterationEnginesAgree) {
    WorkloadParams p;
    p.batch = 1;
    const Trace tr = make_synthetic_trace(p, build_network("resnet18-cifar", 0.125), 1);
    for (const char* routing : {"crossbar", "log"}) {
        SCOPED_TRACE(routing);
        auto run = [&](const char* engine) {
            return in_child([&] {
                RunConfig cfg = engine_config(engine);
                cfg.pe_array.group_sync = "decoupled";
                cfg.compaction.routing = routing;
                SwpuChip chip("chip", cfg);
                chip.set_trace(&tr);
                sc_core::sc_start();
                return results_json(chip.results(), chip.total_cycles());
            });
        };
        const nlohmann::json a = nlohmann::json::parse(run("cycle"), nullptr, false);
        const nlohmann::json b = nlohmann::json::parse(run("fast"), nullptr, false);
        ASSERT_FALSE(a.is_discarded());
        ASSERT_FALSE(b.is_discarded());
        ASSERT_EQ(a["results"].size(), b["results"].size());
        const std::set<std::string> time_only = {"cycles", "stall_dram_cycles", "start_cycle", "operand_wait_cycles",
                                                 "backpressure_cycles", "accumulator_stall_cycles", "bank_conflict_cycles"};
        for (size_t i = 0; i < a["results"].size(); ++i)
            for (auto it = a["results"][i].begin(); it != a["results"][i].end(); ++it)
                if (it.value().is_number_integer() && !time_only.count(it.key()))
                    EXPECT_EQ(it.value(), b["results"][i][it.key()]) << a["results"][i]["layer"] << " " << it.key();
        EXPECT_GT(a["total_cycles"].get<int64_t>(), 100000);
        EXPECT_EQ(a["total_cycles"].get<int64_t>(), b["total_cycles"].get<int64_t>() + 1);  // the reset cycle
    }
}

// Skip switches: with every weight kept, a 50%-dense input and a 50%-dense output gradient, a pass
// that does not skip its operands' zeros performs the dense layer's MACs.
TEST(Machines, PassesThatDoNotSkipComputeEveryProduct) {
    const Layer l = conv_layer(16, 8, 1, 1, 8, 8, 1, 0);  // 1x1: no padding, every position in bounds
    const LayerWork w = random_work(l, 1, PruneMode::SubStructured, 0.5, 0.5, 0.5, 11);
    int64_t kept = w.mask.kept_count();
    ASSERT_LT(kept, 16 * 8);
    RunConfig skip = fast_config();
    RunConfig none = fast_config();
    none.skip = {false, false, false, false, false, false, false};
    const int64_t positions = 64;
    EXPECT_EQ(run_json(none, l, w, Pass::FF)["valid_macs"], 16 * 8 * positions);
    EXPECT_EQ(run_json(none, l, w, Pass::WG)["valid_macs"], 16 * 8 * positions);
    // FF skipping only the pruned weights: every kept weight meets every position.
    RunConfig weights_only = fast_config();
    weights_only.skip.ff_activations = false;
    EXPECT_EQ(run_json(weights_only, l, w, Pass::FF)["valid_macs"], kept * positions);
    // Skipping everything: fewer than that.
    EXPECT_LT(run_json(skip, l, w, Pass::FF)["valid_macs"].get<int64_t>(), kept * positions);
}

// FP8 operands: half the bytes of every stored operand. The dense layer's first DRAM fill:
//   input 8 channels x 10 rows x (10 values x 1 B + 2 B bitmap) = 960 B,
//   cluster 0's weights 16 x 8 x 3 lines x 3 values x 1 B = 1152 B + line mask 48 B = 1200 B;
//   cluster 1's 1200 B: 960 + 2 x 1200 = 3360 B read (FP16: 1760 + 2 x 2352 = 6464 B).
TEST(Machines, Fp8OperandsHalveTheBytes) {
    const Layer l = conv_layer(32, 8, 3, 3, 10, 10, 1, 0);
    const LayerWork w = random_work(l, 1, PruneMode::Dense, 0.0, 1.0, 1.0, 7);
    RunConfig cfg = fast_config();
    cfg.pe_array.mult_format = "fp8";
    const nlohmann::json k = run_json(cfg, l, w, Pass::FF);
    EXPECT_EQ(k["dram_read_bytes"], 960 + 2 * 1200);
    EXPECT_EQ(k["dram_write_bytes"], 2 * 16 * 64);
    // The multiplier's energy per MAC is the FP8 entry of the table.
    Counters c;
    c.valid_macs = 1000;
    const EnergyModel e8(cfg);
    const double pj = e8.of(c).component_pj.at("pe_array");
    EXPECT_NEAR(pj, 1000 * cfg.energy.fp8_mult_pj * cfg.energy.cal_compute, 1e-9);
}

// Fused BN/ReLU: the vector unit's element-ops stay, their tensors' DRAM round trip goes.
TEST(Machines, FusedBnReluMakesNoDramTrip) {
    RunConfig plain, fused;
    fused.vector_unit.fuse_bn_relu = true;
    VectorUnit a("a", plain), b("b", fused);
    Layer bn;
    bn.op = LayerOp::BatchNorm;
    bn.out_c = bn.in_c = 64;
    bn.out_h = bn.out_w = bn.in_h = bn.in_w = 8;
    for (Pass p : {Pass::FF, Pass::BP}) {
        const VectorWork x = a.layer_work(bn, p, 2), y = b.layer_work(bn, p, 2);
        EXPECT_GT(x.read_bytes + x.write_bytes, 0);
        EXPECT_EQ(y.read_bytes + y.write_bytes, 0);
        EXPECT_EQ(y.ops, x.ops);
        EXPECT_EQ(y.compute_cycles, x.compute_cycles);
    }
}

// The SGD update in the WG epilogue: the final weight gradients of each cluster (16 filters x 8 x 3 x 3
// FP32 = 4608 B) stay on chip, and the update reads weights and momentum only (6 B per weight).
TEST(Machines, FusedSgdKeepsTheGradientsOnChip) {
    const Layer l = conv_layer(32, 8, 3, 3, 10, 10, 1, 0);
    const LayerWork w = random_work(l, 1, PruneMode::Dense, 0.0, 1.0, 1.0, 7);
    RunConfig plain = fast_config(), fused = fast_config();
    fused.vector_unit.fuse_sgd = true;
    EXPECT_EQ(run_json(plain, l, w, Pass::WG)["dram_write_bytes"], 2 * 4608);
    EXPECT_EQ(run_json(fused, l, w, Pass::WG)["dram_write_bytes"], 0);
    const std::string bytes = in_child([&] {
        VectorUnit a("a", plain), b("b", fused);
        return std::to_string(a.sgd_work(1000).read_bytes) + " " + std::to_string(b.sgd_work(1000).read_bytes);
    });
    EXPECT_EQ(bytes, "10000 6000");
}

// Filter-oriented BP (pe_array.bp_orientation = filter) on a dense layer with fewer input channels
// than groups: K = 16, C = 4, 3x3, pad 1, 8x8 (dI and dO 8x8: one 64-position window of 8 rows, four
// segments of 2 rows). Every (r, s) leaves 7 or 8 valid rows and columns: every segment of some step
// holds 14-16 valid positions -> ceil(16 / 4 lanes) = 4 cycles per step, in either orientation.
//   channel: one cluster of the 4 channels (12 groups idle), lines (k, r) 16 x 3, 3 positions each:
//     144 steps x 4 = 576 cycles; a weight word per step (4 weights, one 256-bit word): 144 reads;
//     the window's 4 x 64 FP16 results: 16 words written.
//   filter: one cluster of the 16 filters, lines (c, r) 4 x 3, 3 positions: 36 steps x 4 = 144
//     cycles; 36 weight words. The groups' line stores: 16 filters x 3 rows x 5 words (8 output rows
//     x (8 + 2) x 16 bit = 1280 bit) = 240, the same words as channel's 48 lines x 5. Per input
//     channel the adder tree sums 16 partials at 64 positions (15 x 64 adds) and writes 64 FP32 =
//     8 words (the first and only cluster: no read); the drain reads the 4 x 8 words.
//   Timeline of the filter tile: mask load 3 (16 x 12 x 3 bits = 9 words, 4 per cycle), command at
//   0, first issue at 4; the line stores' 240 words occupy the 8 banks 30 cycles from 5, answer at
//   36 (read latency 1): steps start at 36 + 4i; the last (i = 35) at 176 ends at 179, its products
//   accumulate after 4 stages + 1 + 3 multiplier + 4 adder-tree stages (191), its channel's partial
//   writes at 192 (one bank cycle), acknowledged at 194: the tile's wall.
//   The same on both engines.
TEST(Machines, FilterOrientedBpFillsTheGroupsOfANarrowLayer) {
    const Layer l = conv_layer(16, 4, 3, 3, 8, 8, 1, 1);
    const LayerWork w = random_work(l, 1, PruneMode::Dense, 0.0, 1.0, 1.0, 11);
    for (const char* engine : {"cycle", "fast"}) {
    SCOPED_TRACE(engine);
    RunConfig chan = engine_config(engine), filt = engine_config(engine);
    filt.pe_array.bp_orientation = "filter";
    const nlohmann::json a = run_json(chan, l, w, Pass::BP);
    const nlohmann::json b = run_json(filt, l, w, Pass::BP);
    const int64_t products = 16 * 4 * 22 * 22;  // (7 + 8 + 7) valid rows x columns per (k, c)
    EXPECT_EQ(a["valid_macs"], products);
    EXPECT_EQ(b["valid_macs"], products);
    EXPECT_EQ(a["compute_cycles"], 576);
    EXPECT_EQ(b["compute_cycles"], 144);
    EXPECT_EQ(a["steps"], 144);
    EXPECT_EQ(b["steps"], 36);
    EXPECT_EQ(a["wbuf_reads"], 144);
    EXPECT_EQ(b["wbuf_reads"], 36);
    EXPECT_EQ(a["abuf_reads"], 240);
    EXPECT_EQ(b["abuf_reads"], 240);
    EXPECT_EQ(a["obuf_writes"], 16);
    EXPECT_EQ(b["obuf_writes"], 4 * 8);
    EXPECT_EQ(b["obuf_reads"], 4 * 8);
    EXPECT_EQ(b["adder_tree_adds"], 15 * 64 * 4);
    EXPECT_EQ(b["cycles"].get<int64_t>() - b["stall_dram_cycles"].get<int64_t>(), 194);
    }
}

// Two clusters of filters (K = 32): the second cluster's channel partials are read-modify-writes
// (4 x 8 words read, 4 x 8 written), the first cluster's plain writes; the drain reads 32 words.
// Both engines.
TEST(Machines, FilterOrientedBpAccumulatesClustersInTheOutputBuffer) {
    const Layer l = conv_layer(32, 4, 3, 3, 8, 8, 1, 1);
    const LayerWork w = random_work(l, 1, PruneMode::Dense, 0.0, 1.0, 1.0, 12);
    for (const char* engine : {"cycle", "fast"}) {
        SCOPED_TRACE(engine);
        RunConfig filt = engine_config(engine);
        filt.pe_array.bp_orientation = "filter";
        const nlohmann::json b = run_json(filt, l, w, Pass::BP);
        EXPECT_EQ(b["compute_cycles"], 2 * 144);
        EXPECT_EQ(b["obuf_writes"], 2 * 4 * 8);
        EXPECT_EQ(b["obuf_reads"], 4 * 8 + 4 * 8);
        EXPECT_EQ(b["valid_macs"], 32 * 4 * 22 * 22);
    }
}

// A whole training iteration (narrow ResNet-18, CIFAR form) with filter-oriented BP, with the log
// network and with the crossbar, on both engines: every action count identical and the cycles to the
// cycle (but the cycle engine's reset and the one pass below).
TEST(Machines, FilterOrientedBpWholeIterationEnginesAgree) {
    WorkloadParams p;
    p.batch = 1;
    const Trace tr = make_synthetic_trace(p, build_network("resnet18-cifar", 0.125), 1);
    for (const char* routing : {"log", "crossbar"}) {
        SCOPED_TRACE(routing);
        auto run = [&](const char* engine) {
            return in_child([&] {
                RunConfig cfg = engine_config(engine);
                cfg.pe_array.bp_orientation = "filter";
                cfg.compaction.routing = routing;
                SwpuChip chip("chip", cfg);
                chip.set_trace(&tr);
                sc_core::sc_start();
                return results_json(chip.results(), chip.total_cycles());
            });
        };
        const nlohmann::json a = nlohmann::json::parse(run("cycle"), nullptr, false);
        const nlohmann::json b = nlohmann::json::parse(run("fast"), nullptr, false);
        ASSERT_FALSE(a.is_discarded());
        ASSERT_FALSE(b.is_discarded());
        ASSERT_EQ(a["results"].size(), b["results"].size());
        const std::set<std::string> time_only = {"cycles", "stall_dram_cycles", "start_cycle", "operand_wait_cycles",
                                                 "backpressure_cycles", "accumulator_stall_cycles", "bank_conflict_cycles"};
        for (size_t i = 0; i < a["results"].size(); ++i)
            for (auto it = a["results"][i].begin(); it != a["results"][i].end(); ++it)
                if (it.value().is_number_integer() && !time_only.count(it.key()))
                    EXPECT_EQ(it.value(), b["results"][i][it.key()]) << a["results"][i]["layer"] << " " << it.key();
        // Every pass to the cycle but one: with the crossbar, layer2.0.downsample's BP (1x1, stride 2:
        // every step is an input channel's only step, so every packet ends a channel and the two
        // accumulator sets alternate each cycle, each waiting for its write) takes one cycle more on
        // the cycle engine: the fast engine's lane-FIFO slack rule frees the network a cycle early.
        int64_t differ = 0;
        for (size_t i = 0; i < a["results"].size(); ++i)
            if (a["results"][i]["cycles"] != b["results"][i]["cycles"]) {
                ++differ;
                EXPECT_EQ(a["results"][i]["layer"], "layer2.0.downsample");
                EXPECT_EQ(a["results"][i]["cycles"].get<int64_t>(), b["results"][i]["cycles"].get<int64_t>() + 1);
            }
        const bool xbar = std::string(routing) == "crossbar";
        EXPECT_EQ(differ, xbar ? 1 : 0);
        EXPECT_GT(a["total_cycles"].get<int64_t>(), 100000);
        EXPECT_EQ(a["total_cycles"].get<int64_t>(), b["total_cycles"].get<int64_t>() + 1 + differ);  // the reset cycle
    }
}

}  // namespace
}  // namespace swpu::test
