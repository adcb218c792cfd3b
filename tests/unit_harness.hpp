// Port-level unit testbenches (as MatchLib's unittests/<Unit>Top): a unit on its own clock, its
// channels driven and observed cycle by cycle by a testbench thread. Cycle c is the rising edge at
// c ns; what the thread pushes at edge c is visible to the unit at edge c + 1 (registered channels).
#pragma once

#include <cstdint>
#include <functional>

#include <systemc>

namespace swpu::test {

class UnitTop : public sc_core::sc_module {
public:
    sc_core::sc_clock clk{"clk", sc_core::sc_time(1, sc_core::SC_NS), 0.5, sc_core::SC_ZERO_TIME, true};
    sc_core::sc_signal<bool> reset{"reset"};

    explicit UnitTop(sc_core::sc_module_name name) : sc_core::sc_module(name) {
        SC_HAS_PROCESS(UnitTop);
        SC_THREAD(run);
    }
    // The test's stimulus: called with the top after reset; returns when the test is done.
    std::function<void(UnitTop&)> stimulus;

    int64_t cycle() const { return int64_t(sc_core::sc_time_stamp() / sc_core::sc_time(1, sc_core::SC_NS)); }
    void edge() { sc_core::wait(clk.posedge_event()); }
    void until(int64_t c) {
        while (cycle() < c) edge();
    }

private:
    void run() {
        reset.write(true);
        edge();  // cycle 0: the units see reset
        reset.write(false);
        edge();  // cycle 1: running
        if (stimulus) stimulus(*this);
        sc_core::sc_stop();
    }
};

}  // namespace swpu::test
