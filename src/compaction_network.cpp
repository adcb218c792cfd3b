#include "swpu/compaction_network.hpp"

#include <algorithm>

#include <stdexcept>

#include "swpu/pass_plan.hpp"
#include "swpu/pe_array.hpp"

namespace swpu {

CompactionNetwork::CompactionNetwork(sc_core::sc_module_name name, const ChipConfig& cfg, bool functional)
    : sc_core::sc_module(name),
      clk("clk"),
      reset("reset"),
      steps_in("steps_in"),
      line_in("line_in"),
      weight_in("weight_in"),
      packets_out("packets_out"),
      credit_out("credit_out"),
      release_in("release_in"),
      m_crossbar(cfg.compaction.routing == "crossbar"),
      m_window(cfg.compaction.window),
      m_segments(m_crossbar ? 1 : cfg.compaction.segments),
      m_seg_width(m_window / m_segments),
      m_lanes(cfg.pe_array.lanes),
      m_groups(cfg.pe_array.groups),
      m_lanes_per_seg(m_lanes / m_segments),
      m_stages(0),
      m_seg_mask(m_seg_width >= 64 ? ~0ull : ((1ull << m_seg_width) - 1)) {
    while ((1 << m_stages) < m_seg_width) ++m_stages;
    for (int n = 0; n <= 64; ++n) m_cycles_of[n] = (n + m_lanes_per_seg - 1) / m_lanes_per_seg;
    if (!m_crossbar && m_seg_width <= 16) {
        m_seg_table.resize(size_t(1) << m_seg_width);
        for (size_t p = 0; p < m_seg_table.size(); ++p) m_seg_table[p] = uint16_t(hops_of_segment(p));
    }
    // The log stages are pipeline registers; a network without stages still has its output register.
    m_pipe.assign(size_t(std::max(1, m_stages)), LanePacket{});
    if (functional) {
        // Packets in flight: the stages, the PE array's input FIFO and its multiplier/adder pipeline.
        const size_t in_flight = m_pipe.size() + size_t(cfg.pe_array.input_fifo_depth) +
                                 size_t(cfg.pe_array.multiplier_latency + cfg.pe_array.reduce_latency) + 2;
        size_t ring = 1;
        while (ring < in_flight) ring <<= 1;
        m_payloads.resize(ring);
        for (LanePayload& pl : m_payloads) {
            pl.weight.assign(size_t(m_groups), 0);
            pl.operand.assign(size_t(m_groups) * m_lanes, 0);
            pl.grad.assign(size_t(m_groups) * m_lanes, 0);
            pl.lanes.assign(size_t(m_groups), 0);
        }
    }
    m_pipe_valid.assign(m_pipe.size(), 0);
    m_decoupled = cfg.decoupled();
    m_fifo_depth = cfg.pe_array.group_fifo_depth;
    m_sets = cfg.pe_array.accumulator_sets;
    if (m_decoupled) {
        // Slices in flight: the stages, the PE array's input FIFO and its multiplier/adder pipeline.
        const size_t in_flight = m_pipe.size() + size_t(cfg.pe_array.input_fifo_depth) +
                                 size_t(cfg.pe_array.multiplier_latency + cfg.pe_array.reduce_latency) + 2;
        size_t ring = 1;
        while (ring < in_flight) ring <<= 1;
        m_slices.resize(ring);
        const size_t G = size_t(m_groups);
        for (GroupSlice& sl : m_slices) {
            sl.valid.assign(G, 0);
            sl.window.assign(G, 0);
            sl.line.assign(G, 0);
            sl.s.assign(G, 0);
            sl.cycle.assign(G, 0);
            sl.drop.assign(G, 0);
            if (functional) {
                sl.data.weight.assign(G, 0);
                sl.data.operand.assign(G * size_t(m_lanes), 0);
                sl.data.grad.assign(G * size_t(m_lanes), 0);
                sl.data.lanes.assign(G, 0);
            }
        }
        m_gs.assign(G, GroupState{});
    }
    SC_HAS_PROCESS(CompactionNetwork);
    SC_METHOD(tick);
    sensitive << clk.pos();
    dont_initialize();
}

void CompactionNetwork::configure(Pass pass, const PassPlan* plan, const std::vector<int>& items) {
    if (pass == Pass::WG && !plan) throw std::logic_error("compaction network: WG needs the plan's gradient bits");
    m_pass = pass;
    m_plan = plan;
    m_items = items;
    m_bp_filter = plan && plan->bp_filter();
}

uint64_t CompactionNetwork::bp_filter_valid(const LanePacket& p, int g) const {
    if (!((p.groups >> g) & 1u)) return 0;
    const int R = m_plan->kernel_r();
    return m_plan->valid(p.window, m_items[size_t(g)] * R + p.line % R, p.s);
}

void CompactionNetwork::configure_groups(const GroupLineTable* table, int first_window) {
    // Between tiles every group has finished and every slice has left: the FIFOs start empty.
    m_table = table;
    m_tile_w0 = first_window;
    for (GroupState& gs : m_gs) gs = GroupState{};
    m_cmds.clear();
    m_arrived = m_freed = m_received = 0;
    m_act_avail = m_weight_avail = 0;
    // Releases count from the start of the run: those of earlier tiles may still be on their way.
    m_release_base = m_release_events;
    m_first_arrival = m_last_work = -1;
}

int64_t CompactionNetwork::now_cycle() {
    if (m_period_ps == 0) {
        const sc_core::sc_clock* c = dynamic_cast<const sc_core::sc_clock*>(clk.get_interface());
        if (!c) throw std::logic_error(std::string(name()) + ": clk must be bound to an sc_clock");
        m_period_ps = c->period().value();
    }
    return int64_t(sc_core::sc_time_stamp().value() / m_period_ps);
}

bool CompactionNetwork::group_may_start(const GroupLine& gl) const {
    const int64_t released = m_released - m_release_base;  // this tile's
    if (m_pass != Pass::WG)  // the window's accumulator set has written back the window `sets` before
        return gl.window - m_tile_w0 < m_sets + released;
    // WG: the request queue holds `depth` read-modify-writes: the one `depth` lines back has been served.
    return gl.rmw_before < m_fifo_depth || released >= gl.rmw_before - m_fifo_depth + 1;
}

void CompactionNetwork::group_start_step(int g) {
    GroupState& gs = m_gs[size_t(g)];
    const GroupStep& st = m_table->steps[gs.step];
    gs.j = 0;
    if (st.drop) {  // fetched, detected zero, dropped: one cycle of the group
        gs.cycles = 1;
        return;
    }
    const CompactionCost c = cost(st.valid);
    gs.cycles = c.cycles;
    gs.valid += c.valid;
    if (m_crossbar) {
        m_k.crossbar_routes += c.valid;  // the group's own crossbar; its products return along the same paths
    } else {
        m_k.switch_traversals += int64_t(c.valid) * m_stages;  // the group's own network
        m_k.switch_hops += c.hops;
        if (m_pass != Pass::WG) m_k.scatter_traversals += int64_t(c.valid) * m_stages;
    }
}

void CompactionNetwork::group_tile_end() {
    // Compute cycles: from the first line's arrival to the last group's last cycle; what the busiest
    // group spends waiting (for lines, FIFO entries, accumulator sets, the request queue) is its buffer
    // stall.
    const int64_t span = m_last_work < 0 ? 0 : m_last_work + 1 - m_first_arrival;
    int64_t busiest = 0, work = 0;
    for (const GroupState& gs : m_gs) {
        busiest = std::max(busiest, gs.work);
        work += gs.work;
        m_k.idle_pack_lane_slots += gs.work * m_lanes - gs.valid;
    }
    m_k.idle_group_lane_slots += (int64_t(m_groups) * busiest - work) * m_lanes;
    m_k.buffer_stall_cycles += span - busiest;
    m_k.compute_cycles += span;
    m_k.lane_slots += int64_t(m_groups) * m_lanes * span;
}

void CompactionNetwork::group_stage() {
    const int64_t now = now_cycle();
    if (release_in.size() > 0)
        while (release_in->can_pop()) m_released += release_in->pop();
    while (steps_in->can_pop()) {
        m_cmds.push_back(steps_in->pop().entry);
        ++m_received;
    }
    while (line_in->can_pop()) {
        line_in->pop();
        ++m_act_avail;
    }
    while (weight_in->can_pop()) {
        weight_in->pop();
        ++m_weight_avail;
    }
    // A line enters every group's FIFO when its data and its weights have arrived (in order).
    while (!m_cmds.empty()) {
        const GroupLine& gl = m_table->lines[size_t(m_cmds.front())];
        if ((gl.act_words && !m_act_avail) || (gl.weight_words && !m_weight_avail)) break;
        if (gl.act_words) --m_act_avail;
        if (gl.weight_words) --m_weight_avail;
        m_cmds.pop_front();
        ++m_arrived;
        if (m_first_arrival < 0) m_first_arrival = now;
    }
    if (!m_table) {  // no decoupled tile configured yet: the FIFOs are empty
        show_state(m_cmds.empty() ? 0 : 2);
        return;
    }
    const GroupLineTable& tb = *m_table;
    if (++m_slice_seq == 0) ++m_slice_seq;  // 0 means "no slice"
    GroupSlice& sl = m_slices[m_slice_seq & (m_slices.size() - 1)];
    sl.seq = m_slice_seq;
    sl.groups = 0;
    sl.window_ends.clear();
    sl.rmw_words.clear();
    sl.tile_end = false;
    size_t freed = m_arrived;
    for (int g = 0; g < m_groups; ++g) {
        GroupState& gs = m_gs[size_t(g)];
        // An idle group takes the next entry of its FIFO when the entry's gate is open (its window's
        // accumulator set, or its request-queue slot, is free): an entry without steps of its own is
        // passed over, the next one with steps started.
        while (!gs.busy && gs.ptr < m_arrived) {
            if (!group_may_start(tb.lines[gs.ptr])) break;
            if (tb.first(gs.ptr, g) == tb.end(gs.ptr, g)) {
                ++gs.ptr;
                continue;
            }
            gs.busy = true;
            gs.step = tb.first(gs.ptr, g);
            gs.step_end = tb.end(gs.ptr, g);
            group_start_step(g);
        }
        if (gs.busy) {
            const GroupStep& st = tb.steps[gs.step];
            const GroupLine& gl = tb.lines[gs.ptr];
            sl.groups |= 1ull << g;
            sl.valid[size_t(g)] = st.valid;
            sl.window[size_t(g)] = gl.window;
            sl.line[size_t(g)] = gl.line;
            sl.s[size_t(g)] = st.s;
            sl.cycle[size_t(g)] = uint8_t(gs.j);
            sl.drop[size_t(g)] = st.drop;
            if (!sl.data.weight.empty() && !st.drop && m_plan->values()) fill_group_payload(sl, g);
            ++gs.work;
            m_last_work = now;
            if (++gs.j == gs.cycles) {
                if (++gs.step == gs.step_end) {  // the line is finished: the group looks at its next one next cycle
                    gs.busy = false;
                    ++gs.ptr;
                } else {
                    group_start_step(g);
                }
            }
        }
        freed = std::min(freed, gs.ptr);
    }
    // Lines every group has now finished: their FIFO entries free (a credit each), and their events
    // ride with this cycle's products to the PE array.
    for (; m_freed < freed; ++m_freed) {
        const GroupLine& gl = tb.lines[m_freed];
        if (gl.rmw_words) {
            sl.rmw_words.push_back(gl.rmw_words);
            ++m_release_events;
        }
        if (gl.flags & StepCmd::LastOfWindow) {
            sl.window_ends.push_back(gl.window);
            ++m_release_events;
        }
        if (gl.flags & StepCmd::LastOfTile) {
            sl.tile_end = true;
            group_tile_end();
        }
        ++m_credit_pending;
    }
    if (m_credit_pending && credit_out->can_push()) {
        credit_out->push(m_credit_pending);
        m_credit_pending = 0;
    }
    if (sl.groups || sl.tile_end || !sl.window_ends.empty() || !sl.rmw_words.empty()) {
        LanePacket& p = m_pipe[0];
        p = LanePacket{};
        p.groups = sl.groups;
        p.kind = StepCmd::Line;
        p.flags = sl.tile_end ? uint8_t(StepCmd::LastOfTile) : uint8_t(0);
        p.payload = sl.seq;
        m_pipe_valid[0] = 1;
        ++m_in_pipe;
        show_state(1);
    } else {
        if (--m_slice_seq == 0) --m_slice_seq;  // the slot stays free
        show_state(m_cmds.empty() ? 0 : 2);
    }
}

void CompactionNetwork::fill_group_payload(GroupSlice& sl, int g) {
    // What the group's router puts on its lanes: the operands of its own step from the line in its
    // FIFO entry, and its own weight of the entry.
    const PassPlan& plan = *m_plan;
    const int R = plan.kernel_r(), L = m_lanes;
    const int w = sl.window[size_t(g)], x = sl.line[size_t(g)] / R, r = sl.line[size_t(g)] % R, s = sl.s[size_t(g)];
    const int item = m_items[size_t(g)];
    LanePayload& pl = sl.data;
    route(sl.valid[size_t(g)], sl.cycle[size_t(g)], m_lane_pos);
    uint64_t lanes = 0;
    for (int ln = 0; ln < L; ++ln) {
        const int pos = m_lane_pos[size_t(ln)];
        if (pos < 0) continue;
        lanes |= 1ull << ln;
        pl.operand[size_t(g) * L + ln] = float_to_fp16_bits(plan.source_value(w, pos, x, r, s));
        if (m_pass == Pass::WG) pl.grad[size_t(g) * L + ln] = float_to_fp16_bits(plan.grad_value(w, pos, item));
    }
    if (m_fault_lane >= 0) pl.operand[size_t(g) * L + m_fault_lane] ^= 0x8000u;
    pl.lanes[size_t(g)] = lanes;
    if (m_pass != Pass::WG) pl.weight[size_t(g)] = float_to_fp16_bits(plan.weight_value(item, x, r, s));
}

Counters CompactionNetwork::take_counters() {
    Counters k = m_k;
    m_k = Counters{};
    return k;
}

void CompactionNetwork::show_state(int state) {
    if (state != m_shown_state) input_state.write(m_shown_state = state);
    if (m_in_pipe != m_shown_valid) stage_valid.write(m_shown_valid = m_in_pipe);
}

void CompactionNetwork::start_step(const StepCmd& st) {
    m_step = st;
    m_step_j = 0;
    m_step_cycles = 1;  // a dropped step or a window marker spends one input cycle
    if (st.kind != StepCmd::Normal) return;
    const int act = __builtin_popcountll(st.groups);
    if (m_bp_filter) {
        // Filter-oriented BP: each group packs its own dO bits through its own network; the step
        // takes the slowest group's cycles and the products return through the group's switches.
        LanePacket p;
        p.groups = st.groups;
        p.window = st.window;
        p.line = st.line;
        p.s = st.s;
        int maxc = 0;
        for (uint64_t gb = st.groups; gb; gb &= gb - 1) {
            const uint64_t vg = bp_filter_valid(p, __builtin_ctzll(gb));
            if (!vg) continue;
            const CompactionCost c = cost(vg);
            if (m_crossbar) {
                m_k.crossbar_routes += 2 * int64_t(c.valid);  // to the lanes, back to the positions
            } else {
                m_k.switch_traversals += int64_t(c.valid) * m_stages;
                m_k.switch_hops += c.hops;
                m_k.scatter_traversals += int64_t(c.valid) * m_stages;
            }
            maxc = std::max(maxc, c.cycles);
        }
        if (maxc == 0) throw std::logic_error("compaction network: a filter-oriented BP step with no operand was issued");
        m_step_cycles = maxc;
        return;
    }
    if (m_pass != Pass::WG) {
        const CompactionCost c = cost(st.valid);
        m_step_cycles = c.cycles;
        if (m_crossbar) {
            m_k.crossbar_routes += int64_t(c.valid) * (1 + act);  // to the lanes, back to each group's positions
            return;
        }
        m_k.switch_traversals += int64_t(c.valid) * m_stages;
        m_k.switch_hops += c.hops;
        m_k.scatter_traversals += int64_t(c.valid) * m_stages * act;  // results return per group
        return;
    }
    // WG: one network per group (the valid bits include the group's own output gradient).
    int maxc = 0;
    for (uint64_t gb = st.groups; gb; gb &= gb - 1) {
        const int g = __builtin_ctzll(gb);
        const uint64_t vg = st.valid & m_plan->grad_bits(st.window, m_items[size_t(g)]);
        if (!vg) continue;
        const CompactionCost c = cost(vg);
        if (m_crossbar) {
            m_k.crossbar_routes += c.valid;
        } else {
            m_k.switch_traversals += int64_t(c.valid) * m_stages;
            m_k.switch_hops += c.hops;
        }
        maxc = std::max(maxc, c.cycles);
    }
    if (maxc == 0) throw std::logic_error("compaction network: a WG step with no operand was issued");
    m_step_cycles = maxc;
}

void CompactionNetwork::input_stage() {
    if (m_step_j >= m_step_cycles) {
        if (!steps_in->can_pop()) {
            show_state(0);
            return;
        }
        const StepCmd& st = steps_in->peek();
        if ((st.flags & StepCmd::FirstOfLine) && !m_line_loaded) {
            if (!line_in->can_pop()) {
                ++m_k.operand_wait_cycles;
                show_state(2);
                return;
            }
            line_in->pop();
            m_line_loaded = true;
        }
        if (st.kind != StepCmd::Marker && m_pass != Pass::WG) {
            if (!weight_in->can_pop()) {
                ++m_k.operand_wait_cycles;
                show_state(3);
                return;
            }
            weight_in->pop();
        }
        start_step(steps_in->pop());
    }
    ++m_k.compute_cycles;
    m_k.lane_slots += int64_t(m_lanes) * m_groups;
    const bool last = m_step_j + 1 == m_step_cycles;
    if (m_step.kind == StepCmd::Drop) ++m_k.dropped_step_cycles;
    if (m_step.kind == StepCmd::Marker) ++m_k.marker_cycles;
    {  // a dropped step's packet carries no operand, only the window's and tile's end flags
        LanePacket& p = m_pipe[0];
        p.valid = m_step.valid;
        p.groups = m_step.groups;
        p.window = m_step.window;
        p.line = m_step.line;
        p.s = m_step.s;
        p.cycle = uint8_t(m_step_j);
        p.cycles = uint8_t(m_step_cycles);
        p.kind = m_step.kind;
        p.flags = last ? m_step.flags
                       : uint8_t(m_step.flags & ~(StepCmd::LastOfLine | StepCmd::LastOfWindow | StepCmd::LastOfTile |
                                                  StepCmd::LastOfChannel));
        p.payload = 0;
        if (!m_payloads.empty() && m_step.kind == StepCmd::Normal && m_plan && m_plan->values()) fill_payload(p);
        m_pipe_valid[0] = 1;
        ++m_in_pipe;
    }
    ++m_step_j;
    if (last && (m_step.flags & StepCmd::LastOfLine)) {
        m_line_loaded = false;
        if (!credit_out->can_push()) throw std::logic_error("compaction network: line credit channel overflow");
        credit_out->push(1);
    }
    show_state(1);
}

void CompactionNetwork::tick() {
    if (m_woken) {  // woken by a step between edges: it is visible at the next edge
        m_woken = false;
        return;
    }
    if (reset.read()) {
        std::fill(m_pipe_valid.begin(), m_pipe_valid.end(), 0);
        m_in_pipe = 0;
        m_step_j = m_step_cycles = 0;
        m_line_loaded = false;
        m_released = m_release_events = m_release_base = 0;
        show_state(0);
        return;
    }
    const size_t last = m_pipe.size() - 1;
    if (m_pipe_valid[last]) {
        if (!packets_out->can_push()) {  // the whole network holds its registers
            ++m_k.backpressure_cycles;
            show_state(4);
            return;
        }
        packets_out->push(m_pipe[last]);
        m_pipe_valid[last] = 0;
        --m_in_pipe;
    }
    for (size_t i = last; i > 0; --i) {
        m_pipe[i] = m_pipe[i - 1];
        m_pipe_valid[i] = m_pipe_valid[i - 1];
    }
    m_pipe_valid[0] = 0;
    if (m_decoupled) {
        group_stage();
        // Nothing announced, arriving or in flight: wait for the next line command.
        if (m_in_pipe == 0 && m_freed == m_received && m_cmds.empty() && !m_credit_pending && !steps_in->can_pop()) {
            m_woken = true;
            next_trigger(steps_in->data_written_event());
        }
        return;
    }
    input_stage();
    if (m_in_pipe == 0 && m_step_j >= m_step_cycles && !steps_in->can_pop()) {
        m_woken = true;
        next_trigger(steps_in->data_written_event());
    }
}

void CompactionNetwork::fill_payload(LanePacket& p) {
    // What the packet's wires carry, read from the line register and the weight word: the values
    // the units hold are the plan's tensors (FP16-representable, sent as FP16 bit patterns).
    if (++m_seq == 0) ++m_seq;  // 0 means "no payload"
    p.payload = m_seq;
    LanePayload& pl = m_payloads[m_seq & (m_payloads.size() - 1)];
    pl.seq = m_seq;
    const PassPlan& plan = *m_plan;
    const int R = plan.kernel_r(), x = p.line / R, r = p.line % R, s = p.s, L = m_lanes;
    if (m_bp_filter) {
        // Each group's own dO operands from its line store, and its own weight W[k_g, x, r, s].
        for (uint64_t gb = p.groups; gb; gb &= gb - 1) {
            const int g = __builtin_ctzll(gb);
            const int item = m_items[size_t(g)];
            const uint64_t vg = bp_filter_valid(p, g);
            uint64_t lanes = 0;
            if (vg) {
                route(vg, p.cycle, m_lane_pos);
                for (int ln = 0; ln < L; ++ln) {
                    const int pos = m_lane_pos[size_t(ln)];
                    if (pos < 0) continue;
                    lanes |= 1ull << ln;
                    pl.operand[size_t(g) * L + ln] = float_to_fp16_bits(plan.source_value(p.window, pos, item, r, s));
                }
                if (m_fault_lane >= 0) pl.operand[size_t(g) * L + m_fault_lane] ^= 0x8000u;
            }
            pl.lanes[size_t(g)] = lanes;
            pl.weight[size_t(g)] = float_to_fp16_bits(plan.weight_value(item, x, r, s));
        }
        return;
    }
    if (m_pass != Pass::WG) {
        route(p.valid, p.cycle, m_lane_pos);
        uint64_t lanes = 0;
        for (int ln = 0; ln < L; ++ln) {
            const int pos = m_lane_pos[size_t(ln)];
            if (pos < 0) continue;
            lanes |= 1ull << ln;
            pl.operand[size_t(ln)] = float_to_fp16_bits(plan.source_value(p.window, pos, x, r, s));
        }
        if (m_fault_lane >= 0) pl.operand[size_t(m_fault_lane)] ^= 0x8000u;
        pl.lanes[0] = lanes;
        for (uint64_t gb = p.groups; gb; gb &= gb - 1) {
            const int g = __builtin_ctzll(gb);
            pl.weight[size_t(g)] = float_to_fp16_bits(plan.weight_value(m_items[size_t(g)], x, r, s));
        }
        return;
    }
    for (uint64_t gb = p.groups; gb; gb &= gb - 1) {
        const int g = __builtin_ctzll(gb);
        const int item = m_items[size_t(g)];
        const uint64_t vg = p.valid & plan.grad_bits(p.window, item);
        uint64_t lanes = 0;
        if (vg) {
            route(vg, p.cycle, m_lane_pos);
            for (int ln = 0; ln < L; ++ln) {
                const int pos = m_lane_pos[size_t(ln)];
                if (pos < 0) continue;
                lanes |= 1ull << ln;
                pl.operand[size_t(g) * L + ln] = float_to_fp16_bits(plan.source_value(p.window, pos, x, r, s));
                pl.grad[size_t(g) * L + ln] = float_to_fp16_bits(plan.grad_value(p.window, pos, item));
            }
            if (m_fault_lane >= 0) pl.operand[size_t(g) * L + m_fault_lane] ^= 0x8000u;
        }
        pl.lanes[size_t(g)] = lanes;
    }
}

int CompactionNetwork::hops_of_segment(uint64_t seg) {
    // Element at position i moves left by the number of invalid positions below it; stage b
    // shifts by 2^b, so the element sets popcount(shift) switches.
    int hops = 0, rank = 0;
    while (seg) {
        const int i = __builtin_ctzll(seg);
        hops += __builtin_popcount(unsigned(i - rank));
        ++rank;
        seg &= seg - 1;
    }
    return hops;
}

int CompactionNetwork::lanes_busy_in_cycle(uint64_t valid, int j) const {
    int busy = 0;  // the crossbar is one segment as wide as the window
    for (int d = 0; d < m_segments; ++d) {
        const int n = __builtin_popcountll((valid >> (d * m_seg_width)) & m_seg_mask) - j * m_lanes_per_seg;
        busy += n <= 0 ? 0 : (n < m_lanes_per_seg ? n : m_lanes_per_seg);
    }
    return busy;
}

void CompactionNetwork::route(uint64_t valid, int j, std::vector<int>& lane_position) const {
    // The crossbar is one segment as wide as the window, so one code path serves both.
    lane_position.assign(m_lanes, -1);
    for (int d = 0; d < m_segments; ++d) {
        // Compaction keeps order: the k-th valid element of the segment lands in packed slot k
        // (the log stages shift it left by its count of preceding invalid elements; the
        // stage-by-stage model is checked in tests/test_compaction_network.cpp).
        uint64_t seg = (valid >> (d * m_seg_width)) & m_seg_mask;
        for (int k = 0; seg; ++k, seg &= seg - 1) {
            const int slot = k - j * m_lanes_per_seg;
            if (slot < 0) continue;
            if (slot >= m_lanes_per_seg) break;
            lane_position[d * m_lanes_per_seg + slot] = d * m_seg_width + __builtin_ctzll(seg);
        }
    }
}

void CompactionNetwork::reverse_paths(uint64_t valid, ReversePaths& out) const {
    out.stages = m_stages;
    out.seg_width = m_seg_width;
    out.lanes_per_seg = m_lanes_per_seg;
    for (int d = 0; d < m_segments; ++d) {
        uint64_t* ctrl = out.ctrl[d];
        for (int b = 0; b < m_stages; ++b) ctrl[b] = 0;
        // Forward, stage by stage: element i with shift i - rank moves left by 2^b at stage b when
        // bit b of its shift is set; the stage records where it arrives.
        uint64_t seg = (valid >> (d * m_seg_width)) & m_seg_mask;
        for (int rank = 0; seg; ++rank, seg &= seg - 1) {
            int pos = __builtin_ctzll(seg);
            const int shift = pos - rank;
            for (int b = 0; b < m_stages; ++b)
                if ((shift >> b) & 1) {
                    pos -= 1 << b;
                    ctrl[b] |= 1ull << pos;
                }
        }
        if (d == m_fault_segment && m_fault_stage >= 0 && m_fault_stage < m_stages)
            ctrl[m_fault_stage] ^= 1ull << m_fault_position;
    }
}

int CompactionNetwork::ReversePaths::back(int lane, int cycle) const {
    const int d = lane / lanes_per_seg;
    int pos = cycle * lanes_per_seg + lane % lanes_per_seg;  // the packed slot the lane took
    for (int b = stages - 1; b >= 0; --b)
        if ((ctrl[d][b] >> pos) & 1) pos += 1 << b;  // undo stage b's shift
    if (pos >= seg_width) throw std::logic_error("bi-directional switch: a result left its segment");
    return d * seg_width + pos;
}

}  // namespace swpu
