#include "swpu/pe_array.hpp"

#include <cmath>
#include <cstring>
#include <stdexcept>

#include "swpu/compaction_network.hpp"
#include "swpu/pass_plan.hpp"

namespace swpu {

uint16_t float_to_fp16_bits(float x) {
    uint32_t f;
    std::memcpy(&f, &x, 4);
    const uint32_t sign = (f >> 16) & 0x8000u;
    const uint32_t exp = (f >> 23) & 0xffu;
    uint32_t mant = f & 0x7fffffu;
    if (exp == 0xffu) return uint16_t(sign | 0x7c00u | (mant ? 0x200u : 0u));  // inf / nan
    int e = int(exp) - 127 + 15;
    if (e >= 31) return uint16_t(sign | 0x7c00u);  // overflow -> inf
    if (e <= 0) {
        // Subnormal half (or zero): shift the mantissa with its hidden bit, round to nearest even.
        if (e < -10) return uint16_t(sign);
        mant |= 0x800000u;
        const int shift = 14 - e;
        uint32_t half = mant >> shift;
        const uint32_t rem = mant & ((1u << shift) - 1);
        const uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1u))) ++half;
        return uint16_t(sign | half);
    }
    uint32_t half = (uint32_t(e) << 10) | (mant >> 13);
    const uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (half & 1u))) ++half;  // may carry into the exponent: correct
    return uint16_t(sign | half);
}

float fp16_bits_to_float(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    const uint32_t mant = h & 0x3ffu;
    float out;
    if (exp == 0) {
        out = std::ldexp(float(mant), -24);
        if (sign) out = -out;
        return out;
    }
    uint32_t f;
    if (exp == 31) f = sign | 0x7f800000u | (mant << 13);
    else f = sign | ((exp - 15 + 127) << 23) | (mant << 13);
    std::memcpy(&out, &f, 4);
    return out;
}

float round_to_fp16(float x) { return fp16_bits_to_float(float_to_fp16_bits(x)); }

float fp16_to_float(uint16_t h) {
    // The 65536 values once: the multipliers' operand decode costs a table read.
    static const std::vector<float> table = [] {
        std::vector<float> t(65536);
        for (uint32_t i = 0; i < 65536; ++i) t[i] = fp16_bits_to_float(uint16_t(i));
        return t;
    }();
    return table[h];
}

PeArray::PeArray(sc_core::sc_module_name name, const ChipConfig& cfg)
    : sc_core::sc_module(name),
      clk("clk"),
      reset("reset"),
      packets_in("packets_in"),
      obuf_request("obuf_request"),
      obuf_response("obuf_response"),
      done_out("done_out"),
      release_out("release_out"),
      m_cfg(cfg),
      m_groups(cfg.pe_array.groups),
      m_lanes(cfg.pe_array.lanes),
      m_window(cfg.compaction.window),
      m_sets(cfg.pe_array.accumulator_sets),
      m_acc(size_t(m_sets) * m_groups * m_window, 0.0f),
      m_pipe(size_t(cfg.pe_array.multiplier_latency)),
      m_pipe_valid(size_t(cfg.pe_array.multiplier_latency), 0),
      m_depth(cfg.pe_array.multiplier_latency),
      m_set_busy(size_t(m_sets), 0),
      m_decoupled(cfg.decoupled()) {
    SC_HAS_PROCESS(PeArray);
    SC_METHOD(tick);
    sensitive << clk.pos();
    dont_initialize();
}

void PeArray::clear_accumulators(int set) {
    std::fill(m_acc.begin() + std::ptrdiff_t(size_t(set) * m_groups * m_window),
              m_acc.begin() + std::ptrdiff_t(size_t(set + 1) * m_groups * m_window), 0.0f);
}

void PeArray::configure(const PassPlan* plan, const CompactionNetwork* net, const std::vector<int>& items, int tile) {
    m_plan = plan;
    m_net = net;
    m_items = items;
    m_real_items = 0;
    for (int it : items) m_real_items += it >= 0;
    m_tile = tile;
    m_tile_w0 = plan->tiles()[size_t(tile)].w_begin;
    // WG products pass the adder tree before they accumulate; filter-oriented BP's channel sums pass
    // it after the channel's last product (the same stages in the same path: counted here).
    const bool tree = plan->pass() == Pass::WG || plan->bp_filter();
    const int depth = m_cfg.pe_array.multiplier_latency + (tree ? m_cfg.pe_array.reduce_latency : 0);
    if (plan->bp_filter()) {
        const Tile& t = plan->tiles()[size_t(tile)];
        if (t.cluster == 0) {  // a block's first cluster: no partial holds data yet
            m_block_w0 = t.w_begin;
            m_block_x0 = t.x_begin;
            m_block_xn = t.x_end - t.x_begin;
            m_partial_written.assign(size_t(t.w_end - t.w_begin) * size_t(m_block_xn), 0);
        }
        m_last_of_block = t.last_of_block;
    }
    if (depth != m_depth) {
        if (m_in_flight) throw std::logic_error("pe_array: reconfigured with packets in flight");
        m_depth = depth;
        m_pipe.assign(size_t(depth), LanePacket{});
        m_pipe_valid.assign(size_t(depth), 0);
    }
}

Counters PeArray::take_counters() {
    Counters k = m_k;
    m_k = Counters{};
    return k;
}

void PeArray::do_reset() {
    std::fill(m_pipe_valid.begin(), m_pipe_valid.end(), 0);
    std::fill(m_set_busy.begin(), m_set_busy.end(), 0);
    m_in_flight = 0;
    m_set = 0;
    m_rmw_pending = 0;
    m_tile_end = false;
    m_slice_counted = false;
    m_slice_event = 0;
    m_release_pending = 0;
    for (int s = 0; s < m_sets; ++s) clear_accumulators(s);
    show(0, 0, 0);
}

void PeArray::show(int lanes, int groups, int stall_cause) {
    // Signals change only when the value does: an idle array costs no signal updates.
    if (lanes != m_shown_lanes) lanes_busy.write(m_shown_lanes = lanes);
    if (groups != m_shown_groups) groups_busy.write(m_shown_groups = groups);
    if (stall_cause != m_shown_stall) stall.write(m_shown_stall = stall_cause);
    int wb = m_rmw_pending;
    for (uint8_t b : m_set_busy) wb += b;
    if (wb != m_shown_wb) writebacks_pending.write(m_shown_wb = wb);
}

namespace {
constexpr uint32_t kRmwTag = 0x80000000u;
}

bool PeArray::accumulate_bp_filter(const LanePacket& p) {
    // Each group accumulates its own products (its own dO operands times its own weight) at the dI
    // positions its switches return them to; an input channel's last packet sends the adder tree's
    // sum of the groups' accumulators, position by position, into the channel's FP32 partial.
    const int G = m_groups, L = m_lanes;
    if (m_set_busy[size_t(m_set)]) {  // the set still writes back an earlier channel
        ++m_k.accumulator_stall_cycles;
        show(0, 0, 1);
        return false;
    }
    const bool channel_end = p.flags & StepCmd::LastOfChannel;
    if (channel_end && !obuf_request->can_push()) {
        ++m_k.accumulator_stall_cycles;
        show(0, 0, 2);
        return false;
    }
    int lanes = 0, busy = 0;
    if (p.kind == StepCmd::Normal) {
        const LanePayload* pl = m_plan->values() ? &m_net->payload(p.payload) : nullptr;
        const bool xbar = m_net->crossbar();
        for (uint64_t gb = p.groups; gb; gb &= gb - 1) {
            const int g = __builtin_ctzll(gb);
            const uint64_t vg = m_net->bp_filter_valid(p, g);
            if (!vg) continue;
            const int n = m_net->lanes_busy_in_cycle(vg, p.cycle);
            ++busy;
            lanes += n;
            m_k.valid_macs += n;
            m_k.acc_updates += n;
            m_k.idle_pack_lane_slots += L - n;
            if (!pl) continue;
            if (xbar) m_net->route(vg, p.cycle, m_lane_pos);
            else m_net->reverse_paths(vg, m_reverse);
            const float wv = fp16_to_float(pl->weight[size_t(g)]);
            for (uint64_t lb = pl->lanes[size_t(g)]; lb; lb &= lb - 1) {
                const int ln = __builtin_ctzll(lb);
                mac(m_set, g, xbar ? m_lane_pos[size_t(ln)] : m_reverse.back(ln, p.cycle), wv,
                    fp16_to_float(pl->operand[size_t(g) * L + ln]));
            }
        }
        m_k.idle_group_lane_slots += int64_t(G - busy) * L;
    }
    if (channel_end) {
        const int w = p.window, x = p.line / m_plan->kernel_r();
        const int positions = m_plan->window_positions(w);
        const int obits = m_cfg.buffers.output.width_bits;
        const int n = int((int64_t(positions) * 32 + obits - 1) / obits);
        uint8_t& written = m_partial_written[size_t(w - m_block_w0) * size_t(m_block_xn) + size_t(x - m_block_x0)];
        BufRequest rq;
        rq.kind = written ? BufRequest::Rmw : BufRequest::Write;
        rq.accesses = n;
        rq.first_bank = int((int64_t(w) * n) % m_cfg.buffers.output.banks);
        rq.tag = uint32_t(m_set + 1);  // the set holds the sum until the write is acknowledged
        obuf_request->push(rq);
        m_set_busy[size_t(m_set)] = 1;
        m_k.adder_tree_adds += int64_t(m_real_items - 1) * positions;
        if (m_plan->values()) {
            float partial[64];
            for (int pos = 0; pos < positions; ++pos) {
                int k = 0;
                for (int g = 0; g < G; ++g)
                    if (m_items[size_t(g)] >= 0) partial[k++] = accumulator(m_set, g, pos);
                const float sum = reduce(partial, k);
                float& out = m_plan->grad_in_at(w, pos, x);
                out = written ? out + sum : sum;
            }
            clear_accumulators(m_set);
        }
        written = 1;
        m_set = (m_set + 1) % m_sets;
    }
    if (p.flags & StepCmd::LastOfTile) {
        m_tile_end = true;
        if (m_plan->values() && m_last_of_block) bp_filter_zero_unwritten();
    }
    show(lanes, busy, 0);
    return true;
}

void PeArray::bp_filter_zero_unwritten() {
    // A channel no cluster contributed to has a zero gradient.
    const int windows = m_block_xn ? int(m_partial_written.size()) / m_block_xn : 0;
    for (int wi = 0; wi < windows; ++wi)
        for (int xi = 0; xi < m_block_xn; ++xi)
            if (!m_partial_written[size_t(wi) * size_t(m_block_xn) + size_t(xi)])
                for (int pos = 0; pos < m_plan->window_positions(m_block_w0 + wi); ++pos)
                    m_plan->grad_in_at(m_block_w0 + wi, pos, m_block_x0 + xi) = 0.0f;
}

bool PeArray::accumulate(const LanePacket& p) {
    const Pass pass = m_plan->pass();
    if (m_plan->bp_filter()) return accumulate_bp_filter(p);
    const int G = m_groups, L = m_lanes;
    int lanes = 0, busy = 0;
    if (pass != Pass::WG) {
        if (m_set_busy[size_t(m_set)]) {  // the set still writes back an earlier window
            ++m_k.accumulator_stall_cycles;
            show(0, 0, 1);
            return false;
        }
        const bool window_end = p.flags & StepCmd::LastOfWindow;
        if (window_end && !obuf_request->can_push()) {
            ++m_k.accumulator_stall_cycles;
            show(0, 0, 2);
            return false;
        }
        if (p.kind == StepCmd::Normal) {
            const int n = m_net->lanes_busy_in_cycle(p.valid, p.cycle);
            const int act = __builtin_popcountll(p.groups);
            m_k.valid_macs += int64_t(n) * act;
            m_k.acc_updates += int64_t(n) * act;
            m_k.idle_group_lane_slots += int64_t(G - act) * L;
            m_k.idle_pack_lane_slots += int64_t(act) * (L - n);
            lanes = n * act;
            busy = act;
            if (m_plan->values()) accumulate_values(p);
        }
        if (window_end) {
            const int w = p.window;
            const int n = int(m_plan->window_store_accesses(w, m_real_items));
            BufRequest rq;
            rq.kind = BufRequest::Write;
            rq.accesses = n;
            rq.first_bank = int((int64_t(w) * n) % m_cfg.buffers.output.banks);
            rq.tag = uint32_t(m_set + 1);
            obuf_request->push(rq);
            m_set_busy[size_t(m_set)] = 1;
            if (m_plan->values()) {
                m_plan->store_window(w, m_items, *this, m_set);
                clear_accumulators(m_set);
            }
            m_set = (m_set + 1) % m_sets;
        }
    } else if (p.kind == StepCmd::Normal) {
        const bool step_end = p.cycle + 1 == p.cycles;
        if (step_end && !obuf_request->can_push()) {
            ++m_k.accumulator_stall_cycles;
            show(0, 0, 2);
            return false;
        }
        for (uint64_t gb = p.groups; gb; gb &= gb - 1) {
            const int g = __builtin_ctzll(gb);
            const uint64_t vg = p.valid & m_plan->grad_bits(p.window, m_items[size_t(g)]);
            if (!vg) continue;
            const int n = m_net->lanes_busy_in_cycle(vg, p.cycle);
            ++busy;
            lanes += n;
            m_k.valid_macs += n;
            m_k.adder_tree_adds += n;
            m_k.idle_pack_lane_slots += L - n;
        }
        m_k.idle_group_lane_slots += int64_t(G - busy) * L;
        if (m_plan->values()) accumulate_values(p);
        if (step_end) {
            const int n = int(m_plan->dw_rmw_accesses());
            BufRequest rq;
            rq.kind = BufRequest::Rmw;
            rq.accesses = n;
            rq.first_bank = int((int64_t(p.line) * m_plan->kernel_s() + p.s) * n % m_cfg.buffers.output.banks);
            rq.tag = kRmwTag;
            obuf_request->push(rq);
            ++m_rmw_pending;
        }
    }
    if (p.flags & StepCmd::LastOfTile) m_tile_end = true;
    show(lanes, busy, 0);
    return true;
}

bool PeArray::accumulate_groups(const LanePacket& p) {
    // Decoupled groups: each group's packet of the slice is its own step's cycle.
    const GroupSlice& sl = m_net->slice(p.payload);
    const Pass pass = m_plan->pass();
    int lanes = 0, busy = 0;
    if (!m_slice_counted) {
        for (uint64_t gb = sl.groups; gb; gb &= gb - 1) {
            const size_t g = size_t(__builtin_ctzll(gb));
            if (sl.drop[g]) continue;
            const int n = m_net->lanes_busy_in_cycle(sl.valid[g], sl.cycle[g]);
            m_k.valid_macs += n;
            if (pass == Pass::WG) m_k.adder_tree_adds += n;
            else m_k.acc_updates += n;
            lanes += n;
            ++busy;
        }
        if (m_plan->values()) accumulate_group_values(sl);
        m_slice_counted = true;
    }
    // The slice's write-backs and read-modify-writes, as far as the request port takes them.
    const size_t events = sl.window_ends.size() + sl.rmw_words.size();
    while (m_slice_event < events) {
        if (!obuf_request->can_push()) {
            ++m_k.accumulator_stall_cycles;
            show(lanes, busy, 2);
            return false;
        }
        BufRequest rq;
        if (m_slice_event < sl.window_ends.size()) {
            const int w = sl.window_ends[m_slice_event];
            const int set = (w - m_tile_w0) % m_sets;
            // The routers' gate keeps a group out of a window until its set is released.
            if (m_set_busy[size_t(set)]) throw std::logic_error("pe_array: a window ended on an accumulator set still writing back");
            const int n = int(m_plan->window_store_accesses(w, m_real_items));
            rq.kind = BufRequest::Write;
            rq.accesses = n;
            rq.first_bank = int((int64_t(w) * n) % m_cfg.buffers.output.banks);
            rq.tag = uint32_t(set + 1);
            m_set_busy[size_t(set)] = 1;
            if (m_plan->values()) {
                m_plan->store_window(w, m_items, *this, set);
                clear_accumulators(set);
            }
        } else {
            const int n = sl.rmw_words[m_slice_event - sl.window_ends.size()];
            rq.kind = BufRequest::Rmw;
            rq.accesses = n;
            rq.first_bank = int((int64_t(m_rmw_issued++) * n) % m_cfg.buffers.output.banks);
            rq.tag = kRmwTag;
            ++m_rmw_pending;
        }
        obuf_request->push(rq);
        ++m_slice_event;
    }
    m_slice_counted = false;
    m_slice_event = 0;
    if (sl.tile_end) m_tile_end = true;
    show(lanes, busy, 0);
    return true;
}

void PeArray::accumulate_group_values(const GroupSlice& sl) {
    // Each group multiplies its own weight with the operands its router put on its lanes; FF/BP
    // products return to their window positions (the group's crossbar paths or its switches driven
    // in reverse) in the accumulator set of the group's window; WG: the group's adder tree sums them
    // into the weight gradient of its (item, x, r, s).
    const PassPlan& plan = *m_plan;
    const LanePayload& pl = sl.data;
    const int L = m_lanes, R = plan.kernel_r();
    const bool xbar = m_net->crossbar();
    for (uint64_t gb = sl.groups; gb; gb &= gb - 1) {
        const int g = __builtin_ctzll(gb);
        if (sl.drop[size_t(g)]) continue;
        const uint64_t lanes = pl.lanes[size_t(g)];
        const uint64_t v = sl.valid[size_t(g)];
        const int j = sl.cycle[size_t(g)];
        if (plan.pass() != Pass::WG) {
            const int set = (sl.window[size_t(g)] - m_tile_w0) % m_sets;
            if (xbar) m_net->route(v, j, m_lane_pos);
            else m_net->reverse_paths(v, m_reverse);
            const float wv = fp16_to_float(pl.weight[size_t(g)]);
            for (uint64_t lb = lanes; lb; lb &= lb - 1) {
                const int ln = __builtin_ctzll(lb);
                const int pos = xbar ? m_lane_pos[size_t(ln)] : m_reverse.back(ln, j);
                mac(set, g, pos, wv, fp16_to_float(pl.operand[size_t(g) * L + ln]));
            }
            continue;
        }
        m_products.resize(size_t(L));
        int n = 0;
        for (uint64_t lb = lanes; lb; lb &= lb - 1) {
            const size_t i = size_t(g) * L + size_t(__builtin_ctzll(lb));
            m_products[size_t(n++)] = fp16_to_float(pl.operand[i]) * fp16_to_float(pl.grad[i]);
        }
        const int line = sl.line[size_t(g)], x = line / R, r = line % R, s = sl.s[size_t(g)];
        plan.grad_w_at(m_items[size_t(g)], x, r, s) += reduce(m_products.data(), n);
    }
}

void PeArray::accumulate_values(const LanePacket& p) {
    // The operands are what the packet carries: FP16 values from the network (operands) and the
    // weight word; each product is exact in FP32 and accumulates with one FP32 rounding.
    if (p.payload == 0) throw std::logic_error("pe_array: functional mode but the packet carries no data");
    const LanePayload& pl = m_net->payload(p.payload);
    const PassPlan& plan = *m_plan;
    const int L = m_lanes;
    if (plan.pass() != Pass::WG) {
        // The bi-directional switches, driven in reverse by the forward control bits, return each
        // lane's product to its window position; a crossbar sends it back along the path its
        // operand came (the select each lane's multiplexer held).
        const bool xbar = m_net->crossbar();
        if (xbar) m_net->route(p.valid, p.cycle, m_lane_pos);
        else m_net->reverse_paths(p.valid, m_reverse);
        m_lane_back.assign(size_t(L), -1);
        m_operands.resize(size_t(L));
        const uint64_t lanes = pl.lanes[0];
        for (uint64_t lb = lanes; lb; lb &= lb - 1) {
            const int ln = __builtin_ctzll(lb);
            m_lane_back[size_t(ln)] = xbar ? m_lane_pos[size_t(ln)] : m_reverse.back(ln, p.cycle);
            m_operands[size_t(ln)] = fp16_to_float(pl.operand[size_t(ln)]);
        }
        for (uint64_t gb = p.groups; gb; gb &= gb - 1) {
            const int g = __builtin_ctzll(gb);
            const float wv = fp16_to_float(pl.weight[size_t(g)]);
            for (uint64_t lb = lanes; lb; lb &= lb - 1) {
                const int ln = __builtin_ctzll(lb);
                mac(m_set, g, m_lane_back[size_t(ln)], wv, m_operands[size_t(ln)]);
            }
        }
        return;
    }
    // WG: each group's adder tree sums its lanes' products into the FP32 gradient of (item, x, r, s)
    // (the read-modify-write of the output buffer).
    const int R = plan.kernel_r(), x = p.line / R, r = p.line % R, s = p.s;
    m_products.resize(size_t(L));
    for (uint64_t gb = p.groups; gb; gb &= gb - 1) {
        const int g = __builtin_ctzll(gb);
        const uint64_t lanes = pl.lanes[size_t(g)];
        if (!lanes) continue;  // this group's operands ended in an earlier cycle of the step
        int n = 0;
        for (uint64_t lb = lanes; lb; lb &= lb - 1) {
            const size_t i = size_t(g) * L + size_t(__builtin_ctzll(lb));
            m_products[size_t(n++)] = fp16_to_float(pl.operand[i]) * fp16_to_float(pl.grad[i]);
        }
        const int item = m_items[size_t(g)];
        plan.grad_w_at(item, x, r, s) += reduce(m_products.data(), n);
    }
}

void PeArray::tick() {
    if (m_woken) {  // woken by a packet between edges: it is visible at the next edge
        m_woken = false;
        return;
    }
    if (reset.read()) {
        do_reset();
        return;
    }
    while (obuf_response->can_pop()) {
        const BufResponse a = obuf_response->pop();
        if (a.tag == kRmwTag) --m_rmw_pending;
        else m_set_busy[size_t(a.tag - 1)] = 0;
        m_release_pending += m_decoupled;
    }
    if (m_release_pending && release_out.size() > 0 && release_out->can_push()) {
        release_out->push(m_release_pending);
        m_release_pending = 0;
    }
    const size_t last = size_t(m_depth - 1);
    bool advance = true;
    if (m_pipe_valid[last]) {
        if (m_decoupled ? accumulate_groups(m_pipe[last]) : accumulate(m_pipe[last])) {
            m_pipe_valid[last] = 0;
            --m_in_flight;
        } else {
            advance = false;
        }
    } else {
        show(0, 0, 0);
    }
    if (advance) {
        for (size_t i = last; i > 0; --i) {
            m_pipe[i] = m_pipe[i - 1];
            m_pipe_valid[i] = m_pipe_valid[i - 1];
        }
        m_pipe_valid[0] = 0;
        if (packets_in->can_pop()) {
            m_pipe[0] = packets_in->pop();
            m_pipe_valid[0] = 1;
            ++m_in_flight;
        }
    }
    bool writing = m_rmw_pending > 0;
    for (uint8_t b : m_set_busy) writing |= b != 0;
    if (m_tile_end && m_in_flight == 0 && !writing && done_out->can_push()) {
        done_out->push(TileDone{m_tile});
        m_tile_end = false;
    }
    if (m_in_flight == 0 && !m_tile_end && !writing && !m_release_pending && !packets_in->can_pop()) {
        show(0, 0, 0);
        m_woken = true;
        next_trigger(packets_in->data_written_event());
    }
}

}  // namespace swpu
