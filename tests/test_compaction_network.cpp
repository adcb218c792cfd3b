// Unit testbench of the log-routing compaction network and its bi-directional switches.
#include <random>
#include <sstream>
#include <set>

#include <gtest/gtest.h>

#include "swpu/compaction_network.hpp"
#include "testbench.hpp"
#include "unit_harness.hpp"

namespace swpu {
namespace {

RunConfig cfg_with(int window, int segments, int lanes, const char* routing = "log") {
    RunConfig c;
    c.compaction.window = window;
    c.compaction.segments = segments;
    c.compaction.routing = routing;
    c.pe_array.lanes = lanes;
    return c;
}

// Independent model of the log shifter: every element moves left by its count of preceding
// invalid elements, one power of two per stage. Checks that no two elements meet in a slot after
// any stage (the network is conflict-free) and counts the switches set to shift.
int simulate_stages(uint64_t seg, int width, int stages, bool& conflict) {
    std::vector<int> pos, shift;
    int rank = 0;
    for (int i = 0; i < width; ++i)
        if ((seg >> i) & 1u) {
            pos.push_back(i);
            shift.push_back(i - rank++);
        }
    int hops = 0;
    conflict = false;
    for (int b = 0; b < stages; ++b) {
        std::set<int> occupied;
        for (size_t e = 0; e < pos.size(); ++e) {
            if ((shift[e] >> b) & 1) {
                pos[e] -= 1 << b;
                ++hops;
            }
            if (!occupied.insert(pos[e]).second) conflict = true;
        }
    }
    for (size_t e = 0; e < pos.size(); ++e)
        if (pos[e] != int(e)) conflict = true;
    return hops;
}

TEST(CompactionNetwork, StagesAreLogOfSegmentWidth) {
    EXPECT_EQ(CompactionNetwork("a", cfg_with(64, 4, 16)).stages(), 4);   // 16 inputs per segment
    EXPECT_EQ(CompactionNetwork("b", cfg_with(64, 1, 16)).stages(), 6);   // 64 inputs
    EXPECT_EQ(CompactionNetwork("c", cfg_with(32, 8, 16)).stages(), 2);   // 4 inputs
}

// Compaction then the reverse switches return every result to its position, for random bitmaps and
// shapes.
TEST(CompactionNetwork, CompactThenScatterIsIdentity) {
    std::mt19937_64 rng(42);
    const int shapes[][3] = {{64, 4, 16}, {64, 1, 16}, {64, 8, 16}, {32, 2, 8}, {16, 4, 4}, {64, 2, 32}};
    int idx = 0;
    for (const auto& sh : shapes) {
        const RunConfig cfg = cfg_with(sh[0], sh[1], sh[2]);
        CompactionNetwork net(("n" + std::to_string(idx++)).c_str(), cfg);
        const uint64_t wmask = sh[0] == 64 ? ~0ull : ((1ull << sh[0]) - 1);
        std::vector<int> lanes;
        for (int t = 0; t < 2000; ++t) {
            uint64_t v = rng() & wmask;
            if (t % 3 == 0) v &= rng();  // sparser patterns too
            const CompactionCost c = net.cost(v);
            std::set<int> seen;
            int last_position[64];
            for (int& x : last_position) x = -1;
            for (int j = 0; j < c.cycles; ++j) {
                net.route(v, j, lanes);
                int busy = 0;
                for (int l = 0; l < net.lanes(); ++l) {
                    const int p = lanes[l];
                    if (p < 0) continue;
                    ++busy;
                    ASSERT_TRUE((v >> p) & 1u) << "lane carries an invalid position";
                    ASSERT_TRUE(seen.insert(p).second) << "position delivered twice";
                    // A segment's lanes only carry that segment's positions.
                    const int per = net.lanes() / net.segments();
                    ASSERT_EQ(l / per, p / net.segment_width());
                    // The reverse traversal, driven by the forward control bits, returns the
                    // lane's result to the position its operand came from.
                    ASSERT_EQ(net.scatter(v, l, j), p);
                    // Compaction keeps the order of a segment's elements across lanes and cycles.
                    const int seg_index = l / per;
                    ASSERT_GT(p, last_position[seg_index]);
                    last_position[seg_index] = p;
                }
                EXPECT_EQ(busy, net.lanes_busy_in_cycle(v, j));
            }
            net.route(v, c.cycles, lanes);  // one cycle past the cost: nothing left
            for (int p : lanes) EXPECT_EQ(p, -1);
            EXPECT_EQ(int(seen.size()), __builtin_popcountll(v));
            EXPECT_EQ(c.valid, __builtin_popcountll(v));
        }
    }
}

// Cycles and switch activity match the stage structure on random bitmaps.
TEST(CompactionNetwork, HopsMatchStageSimulation) {
    std::mt19937_64 rng(7);
    CompactionNetwork net("n", cfg_with(64, 4, 16));
    for (int t = 0; t < 3000; ++t) {
        const uint64_t v = rng() & rng();
        int hops = 0, cycles = 0;
        for (int d = 0; d < 4; ++d) {
            const uint64_t seg = (v >> (16 * d)) & 0xffff;
            bool conflict = false;
            hops += simulate_stages(seg, 16, 4, conflict);
            ASSERT_FALSE(conflict);
            cycles = std::max(cycles, (__builtin_popcountll(seg) + 3) / 4);
        }
        const CompactionCost c = net.cost(v);
        EXPECT_EQ(c.hops, hops);
        EXPECT_EQ(c.cycles, cycles);
    }
}

// Segment imbalance on hand-made windows (4 segments of 16 positions, 4 lanes each).
TEST(CompactionNetwork, SegmentImbalance) {
    CompactionNetwork d4("d4", cfg_with(64, 4, 16));
    CompactionNetwork d1("d1", cfg_with(64, 1, 16));
    const uint64_t seg0_full = 0xffffull;
    // All 16 valid operands in segment 0: its 4 lanes need 4 cycles; connected: 1 cycle.
    EXPECT_EQ(d4.cost(seg0_full).cycles, 4);
    EXPECT_EQ(d1.cost(seg0_full).cycles, 1);
    // Spread evenly, 4 per segment: 1 cycle either way.
    const uint64_t even = 0x000f000f000f000full;
    EXPECT_EQ(d4.cost(even).cycles, 1);
    EXPECT_EQ(d1.cost(even).cycles, 1);
    // 5, 16, 0, 1 valid: max(2, 4, 0, 1) = 4 cycles; connected: ceil(22/16) = 2.
    const uint64_t mixed = 0x1full | (0xffffull << 16) | (1ull << 63);
    EXPECT_EQ(d4.cost(mixed).cycles, 4);
    EXPECT_EQ(d1.cost(mixed).cycles, 2);
    // Dense window: 64 / 16 = 4 cycles both ways; empty: 0.
    EXPECT_EQ(d4.cost(~0ull).cycles, 4);
    EXPECT_EQ(d1.cost(~0ull).cycles, 4);
    EXPECT_EQ(d4.cost(0).cycles, 0);
    // Hops by hand: segment pattern 0b1010 (positions 1, 3): shifts 1 and 2 -> 1 + 1 = 2 switches.
    EXPECT_EQ(CompactionNetwork::hops_of_segment(0b1010), 2);
    // 0b1000_0000_0000_0000: one element shifted by 15 = 0b1111 -> 4 switches.
    EXPECT_EQ(CompactionNetwork::hops_of_segment(0x8000), 4);
}

TEST(CompactionNetwork, CrossbarPacksAnyPositionAndCountsRoutes) {
    CompactionNetwork x("x", cfg_with(64, 4, 16, "crossbar"));
    EXPECT_TRUE(x.crossbar());
    const uint64_t mixed = 0x1full | (0xffffull << 16) | (1ull << 63);
    EXPECT_EQ(x.cost(mixed).cycles, 2);  // ceil(22 / 16)
    EXPECT_EQ(x.cost(mixed).valid, 22);
}

// A wrong switch setting gives a wrong result: one segment of 16 with valid positions 1, 3, 6 and
// 7 packs them into slots 0-3 (shifts 1, 2, 4, 4: stage 0 moves position 1 to 0, stage 1 moves 3 to
// 1, stage 2 moves 6 and 7 to 2 and 3). Flipping stage 2's control bit at position 2 returns the
// result of lane 2 (operand from position 6) to position 2 instead; the others are unaffected.
TEST(CompactionNetwork, WrongSwitchSettingReturnsAWrongPosition) {
    CompactionNetwork net("n", cfg_with(16, 1, 4));
    const uint64_t v = (1u << 1) | (1u << 3) | (1u << 6) | (1u << 7);
    std::vector<int> lanes;
    net.route(v, 0, lanes);
    EXPECT_EQ(lanes, (std::vector<int>{1, 3, 6, 7}));
    for (int l = 0; l < 4; ++l) EXPECT_EQ(net.scatter(v, l, 0), lanes[size_t(l)]);
    net.inject_switch_fault(0, 2, 2);
    EXPECT_EQ(net.scatter(v, 0, 0), 1);
    EXPECT_EQ(net.scatter(v, 1, 0), 3);
    EXPECT_EQ(net.scatter(v, 2, 0), 2);  // wrong: should be 6
    EXPECT_EQ(net.scatter(v, 3, 0), 7);
}

// Port-level testbench: the network between driven channels (steps, line data, weight words in; lane
// packets and line credits out), on its own clock.
struct NetworkTop : test::UnitTop {
    CompactionNetwork net;
    Fifo<StepCmd> steps{"steps", 4};
    Fifo<BufResponse> lines{"lines", 4}, weights{"weights", 4};
    Fifo<LanePacket> packets;
    Fifo<int> credits{"credits", 4};
    NetworkTop(sc_core::sc_module_name n, const RunConfig& cfg, int out_depth)
        : UnitTop(n), net("net", cfg), packets("packets", out_depth) {
        net.clk(clk);
        net.reset(reset);
        net.steps_in(steps);
        net.line_in(lines);
        net.weight_in(weights);
        net.packets_out(packets);
        net.credit_out(credits);
        net.configure(Pass::FF, nullptr, std::vector<int>(16, 0));
    }
};

StepCmd ff_step(uint64_t valid, uint8_t flags) {
    StepCmd st;
    st.valid = valid;
    st.groups = 0xffff;
    st.flags = flags;
    return st;
}

// A step whose window has v = 13 valid positions, all in segment 0 (64 positions, 4 segments of 16,
// 4 lanes each): ceil(13 / 4) = 4 packets. Pushed with its line and weight word at edge c: the input
// stage takes it at c + 1 and emits a packet per cycle into the 4 log stages; packet j leaves the last
// stage at c + 1 + j + 4 and is visible to the PE array at c + 6 + j. The line register frees after the
// step's last input cycle (c + 4): the credit is visible at c + 5.
TEST(CompactionNetworkUnit, WindowLeavesAfterItsCyclesPlusTheStages) {
    RunConfig cfg;
    int64_t pushed = 0, credit_seen = -1;
    std::vector<int64_t> seen;
    std::vector<int> lanes;
    NetworkTop top("top", cfg, 2);
    top.stimulus = [&](test::UnitTop&) {
        pushed = top.cycle();
        top.lines.push(BufResponse{});
        top.weights.push(BufResponse{});
        top.steps.push(ff_step(0x1fff, StepCmd::FirstOfLine | StepCmd::LastOfLine | StepCmd::LastOfWindow));
        while (seen.size() < 4 && top.cycle() < pushed + 40) {
            top.edge();
            if (top.packets.can_pop()) {
                const LanePacket p = top.packets.pop();
                seen.push_back(top.cycle());
                lanes.push_back(top.net.lanes_busy_in_cycle(p.valid, p.cycle));
            }
            if (credit_seen < 0 && top.credits.can_pop()) {
                top.credits.pop();
                credit_seen = top.cycle();
            }
        }
    };
    sc_core::sc_start();
    ASSERT_EQ(seen.size(), 4u);
    for (int j = 0; j < 4; ++j) EXPECT_EQ(seen[size_t(j)] - pushed, 6 + j) << "packet " << j;
    EXPECT_EQ(lanes, (std::vector<int>{4, 4, 4, 1}));
    EXPECT_EQ(credit_seen - pushed, 5);
    const Counters k = top.net.take_counters();
    EXPECT_EQ(k.compute_cycles, 4);
    EXPECT_EQ(k.switch_traversals, 13 * 4);
}

// The lockstep crossbar (routing = crossbar): one segment as wide as the window, its 16 lane
// multiplexers each a select tree of log2(64) = 6 levels with a register per level (the pipelining of
// the log stages). A window with 5, 16, 0 and 1 valid positions in its quarters (22 valid) leaves in
// ceil(22 / 16) = 2 packets, where four segments of 4 lanes would need max(2, 4, 0, 1) = 4. Pushed at
// edge c: the input stage takes it at c + 1, packet j enters the select tree at c + 1 + j, leaves its
// 6th register at c + 1 + j + 6 and is visible to the PE array at c + 8 + j. The line register frees
// after the step's last input cycle (c + 2): the credit is visible at c + 3. Lane k of packet j carries
// the (16j + k)-th valid position (the k-th valid element goes to lane k); the crossbar counts its
// routes itself: 22 operands to the lanes and 22 products back to each of the 16 groups' positions.
TEST(CompactionNetworkUnit, CrossbarPacksTheWindowWithoutSegmentLoss) {
    const RunConfig cfg = cfg_with(64, 4, 16, "crossbar");
    const uint64_t mixed = 0x1full | (0xffffull << 16) | (1ull << 63);
    int64_t pushed = 0, credit_seen = -1;
    std::vector<int64_t> seen;
    std::vector<int> lanes;
    std::vector<std::vector<int>> positions;
    NetworkTop top("top", cfg, 2);
    top.stimulus = [&](test::UnitTop&) {
        pushed = top.cycle();
        top.lines.push(BufResponse{});
        top.weights.push(BufResponse{});
        top.steps.push(ff_step(mixed, StepCmd::FirstOfLine | StepCmd::LastOfLine | StepCmd::LastOfWindow));
        while (seen.size() < 2 && top.cycle() < pushed + 40) {
            top.edge();
            if (top.packets.can_pop()) {
                const LanePacket p = top.packets.pop();
                seen.push_back(top.cycle());
                lanes.push_back(top.net.lanes_busy_in_cycle(p.valid, p.cycle));
                std::vector<int> pos;
                top.net.route(p.valid, p.cycle, pos);
                positions.push_back(pos);
            }
            if (credit_seen < 0 && top.credits.can_pop()) {
                top.credits.pop();
                credit_seen = top.cycle();
            }
        }
    };
    sc_core::sc_start();
    EXPECT_EQ(top.net.stages(), 6);
    ASSERT_EQ(seen.size(), 2u);
    for (int j = 0; j < 2; ++j) EXPECT_EQ(seen[size_t(j)] - pushed, 8 + j) << "packet " << j;
    EXPECT_EQ(lanes, (std::vector<int>{16, 6}));
    // Packet 0: positions 0-4 and 16-26; packet 1: 27-31 and 63, lanes 6-15 idle.
    EXPECT_EQ(positions[0], (std::vector<int>{0, 1, 2, 3, 4, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26}));
    EXPECT_EQ(positions[1], (std::vector<int>{27, 28, 29, 30, 31, 63, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1}));
    EXPECT_EQ(credit_seen - pushed, 3);
    const Counters k = top.net.take_counters();
    EXPECT_EQ(k.compute_cycles, 2);
    EXPECT_EQ(k.crossbar_routes, 22 * (1 + 16));
    EXPECT_EQ(k.switch_traversals, 0);
    EXPECT_EQ(k.switch_hops, 0);
}

// A step whose line has not arrived waits: the operand-wait counter counts the cycles. Line data
// pushed 3 edges after the step: the step is visible at c + 1, its line at c + 4: 3 waiting cycles.
TEST(CompactionNetworkUnit, StepWaitsForItsLine) {
    RunConfig cfg;
    NetworkTop top("top", cfg, 2);
    int64_t pushed = 0, first = -1;
    top.stimulus = [&](test::UnitTop&) {
        pushed = top.cycle();
        top.weights.push(BufResponse{});
        top.steps.push(ff_step(0x1, StepCmd::FirstOfLine | StepCmd::LastOfLine));
        top.edge();
        top.edge();
        top.edge();
        top.lines.push(BufResponse{});
        while (first < 0 && top.cycle() < pushed + 40) {
            top.edge();
            if (top.packets.can_pop()) {
                top.packets.pop();
                first = top.cycle();
            }
        }
    };
    sc_core::sc_start();
    EXPECT_EQ(top.net.take_counters().operand_wait_cycles, 3);
    EXPECT_EQ(first - pushed, 3 + 6);  // three cycles later than an unobstructed step
}

// Back-pressure: a lane-packet FIFO of one entry nobody reads. The first packet fills it; the next
// reaches the last stage and holds every register: the network counts frozen cycles, and emits no
// more than the FIFO and its stages hold: 1 + 4 packets of two steps' 8 (each step: 16 valid in
// each of segments 0 and 1, 4 lanes per segment -> 4 cycles).
TEST(CompactionNetworkUnit, FullOutputFreezesTheStages) {
    RunConfig cfg;
    NetworkTop top("top", cfg, 1);
    top.stimulus = [&](test::UnitTop& t) {
        top.lines.push(BufResponse{});
        top.weights.push(BufResponse{});
        top.weights.push(BufResponse{});
        top.steps.push(ff_step(~0ull >> 32, StepCmd::FirstOfLine));
        top.steps.push(ff_step(~0ull >> 32, StepCmd::LastOfLine));
        t.until(t.cycle() + 30);
    };
    sc_core::sc_start();
    const Counters k = top.net.take_counters();
    EXPECT_EQ(top.packets.occupancy(), 1);
    EXPECT_EQ(k.compute_cycles, 5);  // input cycles before the freeze: the FIFO entry and the 4 stages
    EXPECT_GT(k.backpressure_cycles, 20);
}

// Decoupled groups (pe_array.group_sync = decoupled): the network holds a router per group behind the
// groups' operand FIFOs. Two groups, one window of 64 positions, three lines; every step offers 64
// valid operands, 16 in each segment of 4 lanes: 4 cycles. Group 0 keeps 3 weights of every line (12
// cycles per line), group 1 keeps 1 (4 cycles). The testbench is the DBL controller: it issues a line
// (the command and the line's and weights' data at once) whenever it holds a credit, starting with
// `depth` credits; the network returns one when both groups have finished a line.
//   FIFO of 2 lines: lines 0 and 1 are pushed at c and c + 1 and arrive at c + 1 and c + 2. Group 0
//   works line 0 at c+1..c+12; group 1 line 0 at c+1..c+4 and line 1 at c+5..c+8, then waits: line 0
//   is freed at c + 12 (group 0's last cycle), its credit is seen at c + 13, line 2 is pushed then and
//   arrives at c + 14: group 1 works it at c+14..c+17. Group 0 works line 1 at c+13..c+24 and line 2 at
//   c+25..c+36. Compute: c+1..c+36 = 36 cycles = group 0's own 36: no buffer stall.
//   FIFO of 1 line: each line is pushed when the one before is freed: line 1 at c + 13 (arrives
//   c + 14), line 2 at c + 26 (group 0 finishes line 1 at c + 25; arrives c + 27): group 0 works
//   c+1..c+12, c+14..c+25, c+27..c+38: 38 cycles, 2 of them waiting for a line.
// A slice (the groups' packets of one cycle) leaves the 4 stage registers and is seen 5 cycles after
// its cycle. Idle group lanes: group 1 works 12 of group 0's 36 cycles: (2 x 36 - 48) x 16 = 384.
struct DecoupledRun {
    int64_t last_seen = -1, g1_line2_seen = -1;
    int credits_seen = 0;
    bool tile_end = false;
    std::vector<int32_t> window_ends;
    Counters k;
};

DecoupledRun run_decoupled(int depth) {
    DecoupledRun out;
    const std::string text = test::in_child([&] {
        RunConfig cfg;
        cfg.pe_array.groups = 2;
        cfg.pe_array.group_sync = "decoupled";
        cfg.pe_array.group_fifo_depth = depth;
        GroupLineTable tb;
        tb.groups = 2;
        for (int line = 0; line < 3; ++line) {
            GroupLine gl;
            gl.line = int16_t(line);
            gl.act_words = 4;
            gl.weight_words = 1;
            if (line == 2) gl.flags = StepCmd::LastOfWindow | StepCmd::LastOfTile;
            tb.lines.push_back(gl);
            tb.offsets.push_back(uint32_t(tb.steps.size()));
            for (int s = 0; s < 3; ++s) tb.steps.push_back(GroupStep{~0ull, int8_t(s), false});  // group 0
            tb.offsets.push_back(uint32_t(tb.steps.size()));
            tb.steps.push_back(GroupStep{~0ull, 0, false});  // group 1
            tb.offsets.push_back(uint32_t(tb.steps.size()));
        }
        NetworkTop top("top", cfg, 4);
        top.net.configure(Pass::FF, nullptr, {0, 1});
        top.net.configure_groups(&tb, 0);
        DecoupledRun r;
        top.stimulus = [&](test::UnitTop&) {
            const int64_t c = top.cycle();
            int credits = depth, next = 0;
            while (top.cycle() < c + 80) {
                while (top.credits.can_pop()) {
                    credits += top.credits.pop();
                    ++r.credits_seen;
                }
                if (credits > 0 && next < 3) {
                    StepCmd st;
                    st.kind = StepCmd::Line;
                    st.entry = next++;
                    top.steps.push(st);
                    top.lines.push(BufResponse{});
                    top.weights.push(BufResponse{});
                    --credits;
                }
                top.edge();
                while (top.packets.can_pop()) {
                    const LanePacket p = top.packets.pop();
                    const GroupSlice& sl = top.net.slice(p.payload);
                    if (sl.groups & 1u) r.last_seen = top.cycle() - c;
                    if ((sl.groups & 2u) && sl.line[1] == 2 && sl.cycle[1] == 0 && r.g1_line2_seen < 0)
                        r.g1_line2_seen = top.cycle() - c;
                    for (int32_t w : sl.window_ends) r.window_ends.push_back(w);
                    r.tile_end |= sl.tile_end;
                }
            }
            r.k = top.net.take_counters();
        };
        sc_core::sc_start();
        std::ostringstream o;
        o << r.last_seen << " " << r.g1_line2_seen << " " << r.credits_seen << " " << r.tile_end << " "
          << r.window_ends.size() << " " << r.k.compute_cycles << " " << r.k.buffer_stall_cycles << " "
          << r.k.idle_group_lane_slots << " " << r.k.idle_pack_lane_slots << " " << r.k.switch_traversals << " "
          << r.k.lane_slots;
        return o.str();
    });
    std::istringstream in(text);
    int tile_end = 0;
    size_t ends = 0;
    in >> out.last_seen >> out.g1_line2_seen >> out.credits_seen >> tile_end >> ends >> out.k.compute_cycles >>
        out.k.buffer_stall_cycles >> out.k.idle_group_lane_slots >> out.k.idle_pack_lane_slots >>
        out.k.switch_traversals >> out.k.lane_slots;
    out.tile_end = tile_end != 0;
    out.window_ends.assign(ends, 0);
    EXPECT_TRUE(in) << text;
    return out;
}

TEST(CompactionNetworkUnit, DecoupledGroupsRunAheadByTheirFifo) {
    const DecoupledRun d2 = run_decoupled(2), d1 = run_decoupled(1);
    // Group 0's last packet (its last cycle + 5); group 1's first packet of line 2 (c + 14 + 5, c + 27 + 5).
    EXPECT_EQ(d2.last_seen, 36 + 5);
    EXPECT_EQ(d1.last_seen, 38 + 5);
    EXPECT_EQ(d2.g1_line2_seen, 14 + 5);
    EXPECT_EQ(d1.g1_line2_seen, 27 + 5);
    for (const DecoupledRun* r : {&d2, &d1}) {
        EXPECT_EQ(r->credits_seen, 3);  // one per line
        EXPECT_TRUE(r->tile_end);
        EXPECT_EQ(r->window_ends.size(), 1u);  // the window's write-back rides with the last line
        EXPECT_EQ(r->k.idle_group_lane_slots, 384);
        EXPECT_EQ(r->k.idle_pack_lane_slots, 0);
        EXPECT_EQ(r->k.switch_traversals, 12 * 64 * 4);  // 12 steps of 64 operands through 4 stages of the group's own network
    }
    EXPECT_EQ(d2.k.compute_cycles, 36);
    EXPECT_EQ(d2.k.buffer_stall_cycles, 0);
    EXPECT_EQ(d1.k.compute_cycles, 38);
    EXPECT_EQ(d1.k.buffer_stall_cycles, 2);
    EXPECT_EQ(d1.k.lane_slots, 2 * 16 * 38);
}

}  // namespace
}  // namespace swpu
