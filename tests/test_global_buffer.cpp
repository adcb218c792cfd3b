// Port-level testbench of a global buffer: requests pushed into its request ports cycle by cycle,
// responses observed at its response ports. Each number is derived by hand from the buffer's rules
// (include/swpu/memory.hpp): a request pushed at edge c is visible at c + 1 and served there as far
// as its banks are free; a read answers read_latency cycles after its last word, a write one cycle
// after; the response is visible one cycle after it is pushed.
#include <gtest/gtest.h>

#include "swpu/memory.hpp"
#include "unit_harness.hpp"

namespace swpu::test {
namespace {

struct BufferTop : UnitTop {
    GlobalBuffer buf;
    Fifo<BufRequest> req0{"req0", 4}, req1{"req1", 4};
    Fifo<BufResponse> resp0{"resp0", 4}, resp1{"resp1", 4};

    BufferTop(sc_core::sc_module_name n, const BufferConfig& cfg)
        : UnitTop(n), buf("buf", cfg, false, GlobalBuffer::Role::Activation) {
        buf.clk(clk);
        buf.reset(reset);
        buf.request(req0);
        buf.response(resp0);
        buf.request(req1);
        buf.response(resp1);
    }
    // Cycles until a response is visible on `r` (polled every edge).
    int64_t wait_response(Fifo<BufResponse>& r) {
        while (!r.can_pop()) edge();
        r.pop();
        return cycle();
    }
    // The edges at which a response first becomes visible on each port (both polled every edge).
    void wait_both(int64_t& seen0, int64_t& seen1) {
        seen0 = seen1 = -1;
        while (seen0 < 0 || seen1 < 0) {
            if (seen0 < 0 && resp0.can_pop()) { resp0.pop(); seen0 = cycle(); }
            if (seen1 < 0 && resp1.can_pop()) { resp1.pop(); seen1 = cycle(); }
            if (seen0 < 0 || seen1 < 0) edge();
        }
    }
};

BufRequest read(int bank, int words, uint32_t tag = 0) {
    BufRequest q;
    q.kind = BufRequest::Read;
    q.first_bank = bank;
    q.accesses = words;
    q.tag = tag;
    return q;
}

BufferConfig config(int banks, int latency) {
    BufferConfig c;
    c.banks = banks;
    c.read_latency = latency;
    return c;
}

// One word, read latency 1: pushed at c, served at c + 1, answered (pushed) at c + 2, visible at c + 3.
TEST(GlobalBufferUnit, ReadLatency) {
    int64_t pushed = 0, seen = 0;
    BufferTop top("top", config(8, 1));
    top.stimulus = [&](UnitTop&) {
        pushed = top.cycle();
        top.req0.push(read(3, 1));
        seen = top.wait_response(top.resp0);
    };
    sc_core::sc_start();
    EXPECT_EQ(seen - pushed, 3);
    EXPECT_EQ(top.buf.take_counters().abuf_reads, 1);
}

// Two requesters, the same bank, the same cycle: one is served, the other waits exactly one cycle.
TEST(GlobalBufferUnit, BankConflictCostsOneCycle) {
    int64_t pushed = 0, seen0 = 0, seen1 = 0;
    BufferTop top("top", config(8, 1));
    top.stimulus = [&](UnitTop&) {
        pushed = top.cycle();
        top.req0.push(read(5, 1));
        top.req1.push(read(5, 1));
        top.wait_both(seen0, seen1);
    };
    sc_core::sc_start();
    const int64_t first = std::min(seen0, seen1), second = std::max(seen0, seen1);
    EXPECT_EQ(first - pushed, 3);
    EXPECT_EQ(second - first, 1);
    const Counters k = top.buf.take_counters();
    EXPECT_EQ(k.bank_conflict_cycles, 1);
    EXPECT_EQ(k.abuf_reads, 2);
}

// Different banks in the same cycle: no conflict, both answered together.
TEST(GlobalBufferUnit, DifferentBanksInParallel) {
    int64_t seen0 = 0, seen1 = 0;
    BufferTop top("top", config(8, 1));
    top.stimulus = [&](UnitTop&) {
        top.req0.push(read(0, 4));  // banks 0-3
        top.req1.push(read(4, 4));  // banks 4-7
        top.wait_both(seen0, seen1);
    };
    sc_core::sc_start();
    EXPECT_EQ(seen0, seen1);
    EXPECT_EQ(top.buf.take_counters().bank_conflict_cycles, 0);
}

// A request wider than the banks takes one cycle per round over them: 20 words on 8 banks = 3
// cycles (c+1, c+2, c+3); latency 2 -> pushed at c + 5, visible at c + 6.
TEST(GlobalBufferUnit, WideRequestTakesOneCyclePerBankRound) {
    int64_t pushed = 0, seen = 0;
    BufferTop top("top", config(8, 2));
    top.stimulus = [&](UnitTop&) {
        pushed = top.cycle();
        top.req0.push(read(6, 20));
        seen = top.wait_response(top.resp0);
    };
    sc_core::sc_start();
    EXPECT_EQ(seen - pushed, 6);
    EXPECT_EQ(top.buf.take_counters().bank_conflict_cycles, 0);  // the request's own rounds are no conflict
}

// A read-modify-write books its banks' write ports read_latency + 1 cycles after its read: a write
// from another requester to the same bank in that cycle waits one cycle. RMW at c (visible c+1, read
// c+1, write booked at c+3 with latency 1); a write pushed at c+2 (visible and served at c+3) meets it.
TEST(GlobalBufferUnit, ReadModifyWriteBooksTheWritePort) {
    int64_t pushed_w = 0, seen_w = 0, seen_rmw = 0, pushed_rmw = 0;
    BufferTop top("top", config(8, 1));
    top.stimulus = [&](UnitTop&) {
        BufRequest rmw = read(2, 1);
        rmw.kind = BufRequest::Rmw;
        pushed_rmw = top.cycle();
        top.req0.push(rmw);
        top.edge();
        top.edge();
        BufRequest w = read(2, 1);
        w.kind = BufRequest::Write;
        pushed_w = top.cycle();
        top.req1.push(w);
        top.wait_both(seen_rmw, seen_w);
    };
    sc_core::sc_start();
    // RMW: read at c+1, write at c+3, answered (pushed) at c+3, visible c+4.
    EXPECT_EQ(seen_rmw - pushed_rmw, 4);
    // The write: visible at c+3 where the RMW holds bank 2's write port -> served c+4, answered c+5,
    // visible c+6 = (pushed_w = c+2) + 4, one cycle later than an unobstructed write (3).
    EXPECT_EQ(seen_w - pushed_w, 4);
    const Counters k = top.buf.take_counters();
    EXPECT_EQ(k.bank_conflict_cycles, 1);
    EXPECT_EQ(k.abuf_reads, 1);
    EXPECT_EQ(k.abuf_writes, 2);
}

}  // namespace
}  // namespace swpu::test
