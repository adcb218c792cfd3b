// VCD waveform of the chip's block-level signals in a cycle window (GTKWave-readable). Changes are
// recorded by a SystemC method sensitive to the signals and written, with a clock, when closed; the
// file appears complete or not at all.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <systemc>

namespace swpu {

class SwpuChip;

class VcdWriter : public sc_core::sc_module {
public:
    VcdWriter(sc_core::sc_module_name name, const std::string& file, SwpuChip& chip, int64_t start_cycle,
              int64_t end_cycle);
    ~VcdWriter() override;
    // Writes the file (temporary + rename). Throws std::runtime_error on failure.
    void close();

    // Resource limit (config field limits.vcd_mib): once the estimated file passes `bytes` during
    // the run, the writer stops the simulation (sc_stop) and over_limit() turns true; the caller
    // then refuses the run and writes nothing. 0: no limit.
    void set_limit_bytes(uint64_t bytes) { m_limit = bytes; }
    bool over_limit() const { return m_over_cycle >= 0; }
    int64_t over_limit_cycle() const { return m_over_cycle; }
    // Estimated size of the file once the window is recorded up to `cycle`: 32 bytes per cycle
    // (the clock's two edges) plus 20 per value change, plus the header.
    uint64_t estimated_bytes(int64_t cycle) const;

private:
    struct Var {
        std::string scope, name, id;
        int width;
        const sc_core::sc_signal_in_if<int>* isig;
        const sc_core::sc_signal_in_if<bool>* bsig;
        int64_t last = -1;
    };
    struct Change {
        uint64_t time_ps;
        int var;
        int64_t value;
    };
    void record();
    int64_t value_of(const Var& v) const;

    std::string m_file;
    SwpuChip& m_chip;
    int64_t m_start, m_end;
    uint64_t m_period_ps;
    std::vector<Var> m_vars;
    std::vector<Change> m_changes;
    std::vector<int64_t> m_at_start;  // values in force when the window opens
    bool m_closed = false;
    uint64_t m_limit = 0;
    int64_t m_over_cycle = -1;
};

}  // namespace swpu
