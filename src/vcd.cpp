#include "swpu/vcd.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <stdexcept>

#include <unistd.h>

#include "swpu/chip.hpp"

namespace swpu {

VcdWriter::VcdWriter(sc_core::sc_module_name name, const std::string& file, SwpuChip& chip, int64_t start,
                     int64_t end)
    : sc_core::sc_module(name), m_file(file), m_chip(chip), m_start(start), m_end(end),
      m_period_ps(chip.clock_period().value()) {
    {
        // Fail early (bad path) rather than after the run.
        std::ofstream probe(m_file + ".tmp", std::ios::trunc);
        if (!probe) throw std::runtime_error(m_file + ": cannot write");
    }
    std::remove((m_file + ".tmp").c_str());
    for (const TracedSignal& t : chip.traced_signals()) m_vars.push_back({t.scope, t.name, "", t.width, t.isig, t.bsig});
    for (size_t i = 0; i < m_vars.size(); ++i) {  // identifiers: printable ASCII from '"', two characters past 93
        const size_t a = i % 93, b = i / 93;
        m_vars[i].id = std::string(1, char('"' + a)) + (b ? std::string(1, char('"' + b - 1)) : "");
    }
    m_at_start.assign(m_vars.size(), 0);
    SC_HAS_PROCESS(VcdWriter);
    SC_METHOD(record);
    for (auto& v : m_vars) {
        if (v.isig) sensitive << v.isig->value_changed_event();
        else sensitive << v.bsig->value_changed_event();
    }
}

VcdWriter::~VcdWriter() = default;

int64_t VcdWriter::value_of(const Var& v) const { return v.isig ? int64_t(v.isig->read()) : int64_t(v.bsig->read()); }

void VcdWriter::record() {
    const uint64_t now = sc_core::sc_time_stamp().value();
    const int64_t cycle = int64_t(now / m_period_ps);
    for (size_t i = 0; i < m_vars.size(); ++i) {
        Var& v = m_vars[i];
        const int64_t val = value_of(v);
        if (val == v.last) continue;
        v.last = val;
        if (cycle < m_start) m_at_start[i] = val;
        else if (cycle < m_end) m_changes.push_back({now, int(i), val});
    }
    if (m_limit && m_over_cycle < 0 && cycle >= m_start && estimated_bytes(cycle) > m_limit) {
        m_over_cycle = cycle;  // refused: stop now rather than fill memory and disk
        // Without its "Info: Simulation stopped by user." on stdout: swpu-sim reports the refusal.
        sc_core::sc_report_handler::set_actions("/OSCI/SystemC", sc_core::SC_INFO, sc_core::SC_DO_NOTHING);
        sc_core::sc_stop();
    }
}

uint64_t VcdWriter::estimated_bytes(int64_t cycle) const {
    const int64_t cycles = std::max<int64_t>(0, std::min(cycle, m_end) - m_start);
    return 1024 + uint64_t(cycles) * 32 + uint64_t(m_changes.size()) * 20;
}

namespace {
std::string bits(int64_t v, int width) {
    if (width == 1) return std::to_string(v & 1);
    std::string s = "b";
    bool started = false;
    for (int b = width - 1; b >= 0; --b) {
        const int bit = int((uint64_t(v) >> b) & 1u);
        if (bit) started = true;
        if (started) s += char('0' + bit);
    }
    if (!started) s += '0';
    return s;
}
}  // namespace

void VcdWriter::close() {
    if (m_closed) return;
    m_closed = true;
    const std::string tmp = m_file + ".tmp";
    std::ofstream o(tmp, std::ios::trunc);
    if (!o) throw std::runtime_error(m_file + ": cannot write");
    o << "$date swpu-sim run $end\n$version swpu-sim block-level signals $end\n$timescale 1ps $end\n";
    o << "$comment clock period " << m_period_ps << " ps; window cycles " << m_start << " to " << m_end
      << " $end\n";
    o << "$scope module swpu $end\n$var wire 1 ! clk $end\n";
    // One scope per unit, in the order the chip lists them.
    std::vector<std::string> scopes;
    for (const auto& v : m_vars)
        if (std::find(scopes.begin(), scopes.end(), v.scope) == scopes.end()) scopes.push_back(v.scope);
    for (const auto& sc : scopes) {
        o << "$scope module " << sc << " $end\n";
        for (const auto& v : m_vars) {
            if (v.scope != sc) continue;
            o << "$var wire " << v.width << " " << v.id << " " << v.name;
            if (v.width > 1) o << " [" << v.width - 1 << ":0]";
            o << " $end\n";
        }
        o << "$upscope $end\n";
    }
    o << "$upscope $end\n$enddefinitions $end\n";
    const int64_t last_cycle = std::min<int64_t>(m_end, m_chip.now_cycle());
    // The check of record() runs at value changes only: a quiet stretch up to the end costs no
    // memory but a clock line per cycle in the file.
    if (m_limit && estimated_bytes(last_cycle) > m_limit) {
        o.close();
        std::remove(tmp.c_str());
        throw std::runtime_error("--vcd-window " + std::to_string(m_start) + ":" + std::to_string(m_end) +
                                 ": the VCD would take about " + std::to_string(estimated_bytes(last_cycle) >> 20) +
                                 " MiB (32 bytes per cycle plus 20 per value change), more than the limit of " +
                                 std::to_string(m_limit >> 20) +
                                 " MiB (config field limits.vcd_mib); nothing was written: narrow the window or "
                                 "raise the limit");
    }
    o << "#" << uint64_t(m_start) * m_period_ps << "\n$dumpvars\n1!\n";
    std::vector<int64_t> cur = m_at_start;
    size_t ci = 0;
    // Changes at the window's first instant override the values in force.
    while (ci < m_changes.size() && m_changes[ci].time_ps == uint64_t(m_start) * m_period_ps) {
        cur[m_changes[ci].var] = m_changes[ci].value;
        ++ci;
    }
    for (size_t i = 0; i < m_vars.size(); ++i) {
        const std::string b = bits(cur[i], m_vars[i].width);
        o << b << (m_vars[i].width == 1 ? "" : " ") << m_vars[i].id << "\n";
    }
    o << "$end\n";
    for (int64_t c = m_start; c < last_cycle; ++c) {
        const uint64_t t0 = uint64_t(c) * m_period_ps;
        if (c != m_start) {
            o << "#" << t0 << "\n1!\n";
            // Last value per variable at this instant.
            std::vector<std::pair<int, int64_t>> here;
            while (ci < m_changes.size() && m_changes[ci].time_ps < t0 + m_period_ps) {
                here.push_back({m_changes[ci].var, m_changes[ci].value});
                ++ci;
            }
            for (size_t h = 0; h < here.size(); ++h) {
                bool later = false;
                for (size_t h2 = h + 1; h2 < here.size(); ++h2) later |= here[h2].first == here[h].first;
                if (later || cur[here[h].first] == here[h].second) continue;
                cur[here[h].first] = here[h].second;
                const Var& v = m_vars[here[h].first];
                o << bits(here[h].second, v.width) << (v.width == 1 ? "" : " ") << v.id << "\n";
            }
        }
        o << "#" << t0 + m_period_ps / 2 << "\n0!\n";
    }
    o << "#" << uint64_t(last_cycle) * m_period_ps << "\n";
    o.flush();
    if (!o) {
        std::remove(tmp.c_str());
        throw std::runtime_error(m_file + ": write failed");
    }
    o.close();
    if (std::rename(tmp.c_str(), m_file.c_str()) != 0) {
        std::remove(tmp.c_str());
        throw std::runtime_error(m_file + ": cannot rename into place");
    }
}

}  // namespace swpu
