#include "swpu/dbl_controller.hpp"

#include <stdexcept>

#include "swpu/pass_plan.hpp"

namespace swpu {

DblController::DblController(sc_core::sc_module_name name, const ChipConfig& cfg)
    : sc_core::sc_module(name),
      clk("clk"),
      reset("reset"),
      cmd_in("cmd_in"),
      credit_in("credit_in"),
      line_request("line_request"),
      weight_request("weight_request"),
      steps_out("steps_out"),
      m_enabled(cfg.dbl.enabled),
      m_words_per_cycle(cfg.dbl.mask_words_per_cycle),
      m_groups(cfg.pe_array.groups),
      m_cfg(cfg),
      m_decoupled(cfg.decoupled()),
      m_xbar(cfg.element_indexed()) {
    m_line_registers = m_decoupled ? cfg.pe_array.group_fifo_depth : cfg.dbl.line_buffers;
    SC_HAS_PROCESS(DblController);
    SC_METHOD(tick);
    sensitive << clk.pos();
    dont_initialize();
}

void DblController::load_cluster(const WeightMask& mask, const std::vector<int>& items, Counters& k, int x0, int x1) {
    const int Rd = mask.C;
    if (x1 < 0) x1 = Rd;
    m_groups = int(items.size());
    m_lines = Rd * mask.R;
    m_S = mask.S;
    m_union.assign(m_lines, 0);
    m_group_rows.assign(size_t(m_groups) * m_lines, 0);
    m_count.assign(size_t(m_lines) * m_S, 0);
    m_enable.assign(size_t(m_lines) * m_S, 0);
    for (int g = 0; g < m_groups; ++g) {
        if (items[g] < 0) continue;
        for (int line = x0 * mask.R; line < x1 * mask.R; ++line) {
            const uint64_t row = mask.rows[size_t(items[g]) * m_lines + line];  // rows of one item are contiguous
            m_group_rows[size_t(g) * m_lines + line] = row;
            m_union[line] |= row;
            uint8_t* cnt = &m_count[size_t(line) * m_S];
            uint64_t* en = &m_enable[size_t(line) * m_S];
            for (uint64_t bits = row; bits; bits &= bits - 1) {
                const int s = __builtin_ctzll(bits);
                ++cnt[s];
                en[s] |= 1ull << g;
            }
        }
    }
    // The controller reads the cluster's mask metadata once: one S-bit row per group and line.
    k.mask_reads += (int64_t(m_groups) * (x1 - x0) * mask.R * m_S + 63) / 64;
}

void DblController::configure(const PassPlan* plan) {
    m_plan = plan;
    m_loaded_cluster = -1;
    // Filter-oriented BP reads into the groups' line stores (`bp_line_sets` windows) instead of the
    // line registers; between passes every register is free.
    const int regs = m_decoupled ? m_cfg.pe_array.group_fifo_depth
                                 : plan->bp_filter() ? m_cfg.pe_array.bp_line_sets : m_cfg.dbl.line_buffers;
    m_credits += regs - m_line_registers;
    m_line_registers = regs;
}

Counters DblController::take_counters() {
    Counters k = m_k;
    m_k = Counters{};
    return k;
}

std::string DblController::debug_state() const {
    return "dbl_controller: state " + std::to_string(int(m_state)) + ", step " + std::to_string(m_idx) + "/" +
           std::to_string(m_list.size()) + ", line reads " + std::to_string(m_next_line) + "/" +
           std::to_string(m_line_starts.size()) + ", credits " + std::to_string(m_credits) + "; ";
}

void DblController::show(int st) {
    if (st != m_shown_state) state.write(m_shown_state = st);
    int w = -1, ln = -1;
    if (m_decoupled && m_idx < m_table.lines.size()) {
        w = m_table.lines[m_idx].window;
        ln = m_table.lines[m_idx].line;
    } else if (!m_decoupled && m_idx < m_list.size()) {
        w = m_list[m_idx].window;
        ln = m_list[m_idx].line;
    }
    if (w != m_shown_window) window.write(m_shown_window = w);
    if (ln != m_shown_line) line.write(m_shown_line = ln);
    if (m_credits != m_shown_credits) credits.write(m_shown_credits = m_credits);
}

void DblController::build_window(int w, bool last_window) {
    const size_t window_first = m_list.size();
    const PassPlan& plan = *m_plan;
    const bool wg = plan.pass() == Pass::WG;
    const uint64_t full = m_S >= 64 ? ~0ull : ((1ull << m_S) - 1);
    for (int line = 0; line < m_lines; ++line) {
        const uint64_t u = m_union[size_t(line)];
        if (m_enabled && !u) continue;  // no group of the cluster keeps this line: never read
        const size_t first = m_list.size();
        for (uint64_t sb = m_enabled ? u : full; sb; sb &= sb - 1) {
            const int s = __builtin_ctzll(sb);
            const uint64_t V = plan.valid(w, line, s);
            const uint64_t en = group_enables(line, s);
            bool work = en && V;
            if (work && wg) {  // WG: some kept group must also have a non-zero output gradient
                work = false;
                for (uint64_t gb = en; gb && !work; gb &= gb - 1)
                    work = (V & plan.grad_bits(w, m_items[size_t(__builtin_ctzll(gb))])) != 0;
            }
            if (!work && m_enabled) continue;  // detected before load: never read, never issued
            StepCmd st;
            st.valid = V;
            st.groups = en;
            st.window = w;
            st.line = int16_t(line);
            st.s = int8_t(s);
            st.kind = work ? StepCmd::Normal : StepCmd::Drop;
            m_list.push_back(st);
        }
        if (m_list.size() > first) {
            m_list[first].flags |= StepCmd::FirstOfLine;
            m_list.back().flags |= StepCmd::LastOfLine;
            m_line_starts.push_back(first);
            m_line_words.push_back(plan.line_read_accesses(w));
        }
    }
    // A window without steps still writes its (zero) results back in FF/BP: a marker carries its end
    // through the datapath. In WG only the tile's end needs carrying.
    if (m_list.size() == window_first && (!wg || last_window)) {
        StepCmd st;
        st.window = w;
        st.kind = StepCmd::Marker;
        m_list.push_back(st);
    }
    if (m_list.size() > window_first) {
        if (!wg) m_list.back().flags |= StepCmd::LastOfWindow;
        if (last_window) m_list.back().flags |= StepCmd::LastOfTile;
    }
}

void DblController::build_window_bp_filter(const Tile& t, int w) {
    // Filter-oriented BP: FF's lines (x, r) of the block and positions s of the cluster's union (all
    // S without DBL), one weight word per step; a step works when some group keeping W[k_g, x, r, s]
    // has a non-zero in its dO row shifted by (r, s). The window's first step reads every group's R
    // dO rows into its line store (DBL: only rows with a non-zero); its last frees the store's set.
    const PassPlan& plan = *m_plan;
    const int R = plan.kernel_r();
    const uint64_t full = m_S >= 64 ? ~0ull : ((1ull << m_S) - 1);
    const size_t window_first = m_list.size();
    for (int x = t.x_begin; x < t.x_end; ++x) {
        bool work_in_channel = false;
        for (int r = 0; r < R; ++r) {
            const int line = x * R + r;
            const uint64_t u = m_union[size_t(line)];
            if (m_enabled && !u) continue;
            for (uint64_t sb = m_enabled ? u : full; sb; sb &= sb - 1) {
                const int s = __builtin_ctzll(sb);
                const uint64_t en = group_enables(line, s);
                bool work = false;
                for (uint64_t gb = en; gb && !work; gb &= gb - 1)
                    work = plan.valid(w, m_items[size_t(__builtin_ctzll(gb))] * R + r, s) != 0;
                if (!work && m_enabled) continue;
                StepCmd st;
                st.groups = en;
                st.window = w;
                st.line = int16_t(line);
                st.s = int8_t(s);
                st.kind = work ? StepCmd::Normal : StepCmd::Drop;
                m_list.push_back(st);
                work_in_channel |= work;
            }
        }
        if (work_in_channel) m_list.back().flags |= StepCmd::LastOfChannel;
    }
    if (m_list.size() > window_first) {
        int64_t words = 0;
        const int64_t row_words = plan.line_read_accesses(w);
        for (int item : m_items) {
            if (item < 0) continue;
            for (int r = 0; r < R; ++r) {
                bool any = !m_enabled;
                for (int s = 0; s < m_S && !any; ++s) any = plan.valid(w, item * R + r, s) != 0;
                if (any) words += row_words;
            }
        }
        m_list[window_first].flags |= StepCmd::FirstOfLine;
        m_list.back().flags |= StepCmd::LastOfLine;
        m_line_starts.push_back(window_first);
        m_line_words.push_back(words);
    } else if (w + 1 == t.w_end) {
        // A tile whose last window has no step: a marker carries the tile's end.
        StepCmd st;
        st.window = w;
        st.kind = StepCmd::Marker;
        m_list.push_back(st);
    }
    if (w + 1 == t.w_end) m_list.back().flags |= StepCmd::LastOfTile;
}

void DblController::build_group_lines(int w, bool last_window) {
    // Every group's own steps on each line: a group steps only through its own kept weights (DBL on:
    // pruned weights and empty windows are known before the fetch; off: each of the group's weights
    // is fetched and zero-detected, a zero or an empty window dropped at one cycle of the group). The
    // crossbar machine stores weights element-compressed: a pruned weight is never fetched.
    const PassPlan& plan = *m_plan;
    const bool wg = plan.pass() == Pass::WG;
    const uint64_t full = m_S >= 64 ? ~0ull : ((1ull << m_S) - 1);
    const int G = m_groups, ob = m_cfg.operand_bits(), wbits = m_cfg.buffers.weight.width_bits;
    // WG: a group's S gradient sums of a line are adjacent FP32 accumulators of the output buffer.
    const int32_t dw_line_words = int32_t((int64_t(m_S) * 32 + m_cfg.buffers.output.width_bits - 1) / m_cfg.buffers.output.width_bits);
    int real = 0;
    for (int it : m_items) real += it >= 0;
    const size_t window_first = m_table.lines.size();
    auto open_line = [&](int line) {
        GroupLine gl;
        gl.window = w;
        gl.line = int16_t(line);
        gl.rmw_before = m_rmw_lines;
        m_table.lines.push_back(gl);
        m_table.offsets.push_back(uint32_t(m_table.steps.size()));
    };
    for (int line = 0; line < m_lines; ++line) {
        if (m_enabled && !m_union[size_t(line)]) continue;  // no group of the cluster keeps this line
        open_line(line);
        int64_t kept = 0, kept_lines = 0;
        int32_t rmw = 0;
        for (int g = 0; g < G; ++g) {
            if (m_items[size_t(g)] >= 0) {
                const uint64_t row = group_row(g, line);
                kept += __builtin_popcountll(row);
                kept_lines += row != 0;
                const uint64_t grad = wg ? plan.grad_bits(w, m_items[size_t(g)]) : ~0ull;
                bool worked = false;
                for (uint64_t sb = m_xbar || m_enabled ? row : full; sb; sb &= sb - 1) {
                    const int s = __builtin_ctzll(sb);
                    const uint64_t v = plan.valid(w, line, s) & grad;
                    if (!m_enabled) ++m_k.zero_detects;
                    if (m_xbar) ++m_k.index_reads;  // the weight's index word, matched to the operands
                    GroupStep st;
                    st.valid = v;
                    st.s = int8_t(s);
                    if (!((row >> s) & 1u) || !v) {
                        if (m_enabled) continue;
                        st.drop = true;
                        ++m_k.steps_dropped;
                    } else {
                        ++m_k.steps;
                        worked = true;
                    }
                    m_table.steps.push_back(st);
                }
                if (wg && worked) rmw += dw_line_words;
            }
            m_table.offsets.push_back(uint32_t(m_table.steps.size()));
        }
        GroupLine& gl = m_table.lines.back();
        gl.act_words = int32_t(plan.line_read_accesses(w));
        // The cluster's weights of the line: value + index words (crossbar), or the kept lines' S values.
        if (wg) gl.weight_words = 0;
        else if (m_xbar) gl.weight_words = int32_t((kept * (ob + m_cfg.memory.weight_index_bits) + wbits - 1) / wbits);
        else gl.weight_words = int32_t(((m_enabled ? kept_lines : real) * m_S * ob + wbits - 1) / wbits);
        gl.rmw_words = rmw;
        m_rmw_lines += rmw > 0;
    }
    // A window without lines still writes its (zero) results back in FF/BP; in WG only the tile's
    // end needs carrying: a marker entry without a read.
    if (m_table.lines.size() == window_first && (!wg || last_window)) {
        open_line(0);
        for (int g = 0; g < G; ++g) m_table.offsets.push_back(uint32_t(m_table.steps.size()));
    }
    if (m_table.lines.size() > window_first) {
        if (!wg) m_table.lines.back().flags |= StepCmd::LastOfWindow;
        if (last_window) m_table.lines.back().flags |= StepCmd::LastOfTile;
    }
}

bool DblController::issue_group_line() {
    if (m_credits == 0) return false;  // some group's operand FIFO is full
    const GroupLine& gl = m_table.lines[m_idx];
    if ((gl.act_words && !line_request->can_push()) || (gl.weight_words && !weight_request->can_push()) ||
        !steps_out->can_push())
        return false;
    if (gl.act_words) {
        BufRequest rq;
        rq.kind = BufRequest::Read;
        rq.accesses = gl.act_words;
        rq.first_bank = int((m_lines_read * rq.accesses) % m_cfg.buffers.activation.banks);
        line_request->push(rq);
        ++m_lines_read;
    }
    if (gl.weight_words) {
        BufRequest rq;
        rq.kind = BufRequest::Read;
        rq.accesses = gl.weight_words;
        rq.first_bank = int(m_words_read % m_cfg.buffers.weight.banks);
        weight_request->push(rq);
        m_words_read += rq.accesses;
    }
    StepCmd st;
    st.kind = StepCmd::Line;
    st.entry = int32_t(m_idx);
    st.window = gl.window;
    st.line = gl.line;
    st.flags = gl.flags;
    steps_out->push(st);
    --m_credits;
    ++m_idx;
    return true;
}

bool DblController::issue_line() {
    if (m_next_line == m_line_starts.size() || m_credits == 0 || !line_request->can_push()) return false;
    BufRequest rq;
    rq.kind = BufRequest::Read;
    rq.accesses = int(m_line_words[m_next_line]);
    rq.first_bank = int((m_lines_read * rq.accesses) % m_cfg.buffers.activation.banks);
    line_request->push(rq);
    --m_credits;
    ++m_lines_read;
    ++m_next_line;
    return true;
}

bool DblController::issue_step() {
    const StepCmd& st = m_list[m_idx];
    // FF/BP broadcast a weight word per step; WG multiplies activations by output gradients.
    const bool weight = st.kind != StepCmd::Marker && m_plan->pass() != Pass::WG;
    if (weight && !weight_request->can_push()) return false;
    if (!steps_out->can_push()) return false;
    if (weight) {
        BufRequest rq;
        rq.kind = BufRequest::Read;
        rq.accesses = int(m_plan->weight_fetch_accesses());
        rq.first_bank = int((m_words_read * rq.accesses) % m_cfg.buffers.weight.banks);
        weight_request->push(rq);
        ++m_words_read;
    }
    if (st.kind == StepCmd::Normal) {
        ++m_k.steps;
        if (!m_enabled) m_k.zero_detects += m_groups;  // detect-after-load: every word is checked
    } else if (st.kind == StepCmd::Drop) {
        ++m_k.steps_dropped;
        m_k.zero_detects += m_groups;
    }
    steps_out->push(st);
    ++m_idx;
    return true;
}

void DblController::tick() {
    if (m_woken) {  // woken by a command between edges: it is visible at the next edge
        m_woken = false;
        return;
    }
    if (reset.read()) {
        m_state = Idle;
        m_credits = m_line_registers;
        m_list.clear();
        m_line_starts.clear();
        m_line_words.clear();
        m_idx = m_next_line = 0;
        show(0);
        return;
    }
    while (credit_in->can_pop()) m_credits += credit_in->pop();
    if (m_state == Idle) {
        if (!cmd_in->can_pop()) {
            show(0);
            m_woken = true;
            next_trigger(cmd_in->data_written_event() | credit_in->data_written_event());  // credits keep the VCD true
            return;
        }
        const TileCmd cmd = cmd_in->pop();
        const Tile& t = m_plan->tiles()[size_t(cmd.tile)];
        m_list.clear();
        m_line_starts.clear();
        m_line_words.clear();
        m_idx = m_next_line = 0;
        // Filter-oriented BP loads the mask rows of the tile's block of input channels only.
        const bool bp_filter = m_plan->bp_filter();
        const int64_t key = int64_t(t.cluster) * (int64_t(1) << 32) + (bp_filter ? t.x_begin : 0);
        if (key != m_loaded_cluster) {
            m_plan->cluster_items(t.cluster, m_items);
            Counters k;
            if (bp_filter) load_cluster(m_plan->group_mask(), m_items, k, t.x_begin, t.x_end);
            else load_cluster(m_plan->group_mask(), m_items, k);
            m_k.mask_reads += k.mask_reads;
            m_loaded_cluster = key;
            m_mask_wait = mask_load_cycles(k.mask_reads);
        }
        // Detection is combinational logic on the masks and bitmaps: the tile's steps, in order.
        if (m_decoupled) {
            m_table.groups = m_groups;
            m_table.lines.clear();
            m_table.offsets.clear();
            m_table.steps.clear();
            m_rmw_lines = 0;
            for (int w = t.w_begin; w < t.w_end; ++w) build_group_lines(w, w + 1 == t.w_end);
        } else if (bp_filter) {
            for (int w = t.w_begin; w < t.w_end; ++w) build_window_bp_filter(t, w);
        } else {
            for (int w = t.w_begin; w < t.w_end; ++w) build_window(w, w + 1 == t.w_end);
        }
        m_state = m_mask_wait > 0 ? MaskLoad : Issue;
    }
    if (m_state == MaskLoad) {
        ++m_k.mask_load_cycles;
        if (--m_mask_wait == 0) m_state = Issue;
        show(1);
        return;
    }
    if (m_decoupled) {  // one line per cycle, as far ahead as the groups' operand FIFOs allow
        if (m_idx == m_table.lines.size()) {
            m_state = Idle;
            show(0);
            return;
        }
        show(issue_group_line() ? 2 : 3);
        return;
    }
    // Two issue ports per cycle: a line read (as far ahead as the line registers allow) and a step.
    issue_line();
    if (m_idx == m_list.size() && m_next_line == m_line_starts.size()) {
        m_state = Idle;
        show(0);
        return;
    }
    if (m_idx < m_list.size()) show(issue_step() ? 2 : 3);
}

}  // namespace swpu
