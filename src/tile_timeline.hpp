// The fast engine's per-tile timeline (private to src/fast_engine*.cpp).
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <vector>

#include "swpu/config.hpp"
#include "swpu/fast_engine.hpp"
#include "swpu/stats.hpp"

namespace swpu {

// The fast engine's timeline of one tile on the clocked datapath, step by step (not cycle by cycle):
// the same rules as the units (docs/architecture.md, cycle rules). The DBL controller issues a step
// per cycle, at most `fifo` ahead of the network; line reads go ahead as far as the line registers
// allow (a register frees when its line's last step leaves the network's input); a read occupies the
// bank cycles of its words and answers after the read latency. The network starts a step when the
// step, its weight word and (first step of a line) its line are there, and emits one packet per
// cycle. The PE array accumulates a packet stages + 1 + multiplier latency cycles after its
// emission, waits for a free accumulator set at a window's start and for the output buffer's request
// queue at a WG step's end; a wait longer than the lane FIFO absorbs holds the network back.
class TileTimeline {
public:
    // `reduce`: results pass the adder tree (WG; filter-oriented BP's cross-group sum); `line_registers`:
    // how many lines (or group line-store sets) may be read ahead.
    TileTimeline(const ChipConfig& cfg, int stages, bool reduce, int line_registers)
        : m_fifo(cfg.compaction.step_fifo_depth), m_lines(line_registers), m_slack(cfg.pe_array.input_fifo_depth - 1),
          m_pipe(std::max(1, stages) + 1 + cfg.pe_array.multiplier_latency + (reduce ? cfg.pe_array.reduce_latency : 0)),
          m_sets(cfg.pe_array.accumulator_sets), m_abanks(cfg.buffers.activation.banks), m_wbanks(cfg.buffers.weight.banks),
          m_obanks(cfg.buffers.output.banks), m_la(cfg.buffers.activation.read_latency),
          m_lw(cfg.buffers.weight.read_latency), m_lo(cfg.buffers.output.read_latency) {}

    void begin(int64_t mask_cycles) {
        m_dbl0 = 1 + mask_cycles;
        m_issue = m_dbl0 - 1;
        m_net_end = 0;
        m_wbuf_free = m_abuf_free = m_obuf_free = 0;
        m_pops.clear();
        m_wstarts.clear();
        m_line_ends.clear();
        m_line_issue = m_dbl0 - 1;
        m_set_free.assign(size_t(m_sets), 0);
        m_set = 0;
        m_pe_next = 0;
        m_last_acc = 0;
        m_end = 0;
        m_rmw_starts.clear();
        m_window_start = true;
    }
    // A step of `cycles` network cycles; `line_words` > 0 when it starts a line (its read's words).
    void step(int64_t line_words, int64_t weight_words, int cycles, int64_t rmw_words) {
        int64_t issue = std::max(m_issue + 1, m_dbl0);
        if (int(m_pops.size()) >= m_fifo) issue = std::max(issue, m_pops[m_pops.size() - size_t(m_fifo)] + 1);
        if (weight_words && int(m_wstarts.size()) >= m_fifo)
            issue = std::max(issue, m_wstarts[m_wstarts.size() - size_t(m_fifo)] + 1);
        m_issue = issue;
        int64_t start = std::max(m_net_end + 1, issue + 1);
        if (weight_words) {
            const int64_t ws = std::max(issue + 1, m_wbuf_free);
            const int64_t occ = (weight_words + m_wbanks - 1) / m_wbanks;
            m_wbuf_free = ws + occ;
            m_wstarts.push_back(ws);
            start = std::max(start, ws + occ + m_lw);
        }
        if (line_words) {
            // The read was issued when a line register was free (its line m_lines back has ended).
            int64_t il = std::max(m_line_issue + 1, m_dbl0);
            if (int(m_line_ends.size()) >= m_lines) il = std::max(il, m_line_ends[m_line_ends.size() - size_t(m_lines)] + 1);
            m_line_issue = il;
            const int64_t ls = std::max(il + 1, m_abuf_free);
            const int64_t occ = (line_words + m_abanks - 1) / m_abanks;
            m_abuf_free = ls + occ;
            start = std::max(start, ls + occ + m_la);
        }
        start = std::max(start, m_net_block);
        m_pops.push_back(start);
        m_net_end = start + cycles - 1;
        // The PE array: in order, one packet per cycle, after the pipeline.
        int64_t a0 = std::max(start + m_pipe, m_pe_next);
        if (m_window_start) a0 = std::max(a0, m_set_free[size_t(m_set)]);
        m_window_start = false;
        int64_t a_last = a0 + cycles - 1;
        if (rmw_words) {  // the read-modify-write waits for a slot of the request queue
            if (int(m_rmw_starts.size()) >= m_sets) a_last = std::max(a_last, m_rmw_starts[m_rmw_starts.size() - size_t(m_sets)] + 1);
            const int64_t rs = std::max(a_last + 1, m_obuf_free);
            const int64_t occ = (rmw_words + m_obanks - 1) / m_obanks;
            m_obuf_free = rs + occ;
            m_rmw_starts.push_back(rs);
            m_end = std::max(m_end, rs + occ + m_lo + 1);
        }
        // A PE wait beyond what the lane FIFO absorbs holds the network's next step back.
        const int64_t wait = a_last - (m_net_end + m_pipe);
        m_net_block = wait > m_slack ? m_net_end + 1 + (wait - m_slack) : 0;
        m_pe_next = a_last + 1;
        m_last_acc = a_last;
        m_end = std::max(m_end, a_last);
    }
    void end_line() { m_line_ends.push_back(m_net_end); }
    // FF/BP: the window's results write back from its accumulator set (`rmw`: a read-modify-write,
    // acknowledged after the read latency; the set holds the sum until then).
    void end_window(int64_t store_words, bool rmw = false) {
        const int64_t ws = std::max(m_last_acc + 1, m_obuf_free);
        const int64_t occ = (store_words + m_obanks - 1) / m_obanks;
        m_obuf_free = ws + occ;
        m_set_free[size_t(m_set)] = ws + occ + 1 + (rmw ? m_lo : 0);
        m_end = std::max(m_end, ws + occ + 1 + (rmw ? m_lo : 0));
        m_set = (m_set + 1) % m_sets;
        m_window_start = true;
    }
    // Cycles from the controller's command to the PE array's done (both handshake registers).
    int64_t wall() const { return m_end; }

private:
    int m_fifo, m_lines, m_slack;
    int64_t m_pipe;
    int m_sets, m_abanks, m_wbanks, m_obanks, m_la, m_lw, m_lo;
    int64_t m_dbl0 = 0, m_issue = 0, m_net_end = 0, m_net_block = 0;
    int64_t m_wbuf_free = 0, m_abuf_free = 0, m_obuf_free = 0, m_line_issue = 0;
    std::deque<int64_t> m_pops, m_wstarts, m_line_ends, m_rmw_starts;
    std::vector<int64_t> m_set_free;
    int m_set = 0;
    int64_t m_pe_next = 0, m_last_acc = 0, m_end = 0;
    bool m_window_start = true;
};

// The state of one lockstep tile's walk through its steps (src/fast_engine.cpp and
// src/fast_engine_bp_filter.cpp): the timeline, the tile's counters and probe, the cluster in the
// groups, the cycles so far, and the read of the current line (issued with its first step).
struct TileWalk {
    TileWalk(const ChipConfig& cfg, int stages, bool reduce, int line_registers, Counters& counters, CycleProbe* p)
        : tl(cfg, stages, reduce, line_registers), k(counters), probe(p) {}
    TileTimeline tl;
    Counters& k;
    CycleProbe* probe;
    std::vector<int> items;  // items[g]: the item group g holds (-1: idle)
    int64_t cycles = 0;
    int64_t line_words = 0;  // activation-buffer words of the current line's read
    bool line_read = false;
    void new_line(int64_t words) {
        line_words = words;
        line_read = false;
    }
    // The words of the read when the calling step is the line's first (one read, broadcast).
    int64_t take_line() {
        if (line_read) return 0;
        line_read = true;
        k.abuf_reads += line_words;
        return line_words;
    }
};

}  // namespace swpu
