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
};

}  // namespace swpu
