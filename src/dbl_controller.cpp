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
      m_cfg(cfg) {
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
    const int w = m_idx < m_list.size() ? m_list[m_idx].window : -1;
    if (w != m_shown_window) window.write(m_shown_window = w);
    const int ln = m_idx < m_list.size() ? m_list[m_idx].line : -1;
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

bool DblController::issue_line() {
    if (m_next_line == m_line_starts.size() || m_credits == 0 || !line_request->can_push()) return false;
    const StepCmd& st = m_list[m_line_starts[m_next_line]];
    BufRequest rq;
    rq.kind = BufRequest::Read;
    rq.accesses = int(m_plan->line_read_accesses(st.window));
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
        m_credits = m_cfg.dbl.line_buffers;
        m_list.clear();
        m_line_starts.clear();
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
        m_idx = m_next_line = 0;
        if (t.cluster != m_loaded_cluster) {
            m_plan->cluster_items(t.cluster, m_items);
            Counters k;
            load_cluster(m_plan->group_mask(), m_items, k);
            m_k.mask_reads += k.mask_reads;
            m_loaded_cluster = t.cluster;
            m_mask_wait = mask_load_cycles(k.mask_reads);
        }
        // Detection is combinational logic on the masks and bitmaps: the tile's steps, in order.
        for (int w = t.w_begin; w < t.w_end; ++w) build_window(w, w + 1 == t.w_end);
        m_state = m_mask_wait > 0 ? MaskLoad : Issue;
    }
    if (m_state == MaskLoad) {
        ++m_k.mask_load_cycles;
        if (--m_mask_wait == 0) m_state = Issue;
        show(1);
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
