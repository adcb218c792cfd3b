// Unit testbench of the DMA and the DRAM over TLM-2.0 (loosely timed): a tester thread submits
// transfers through the DMA's interface, the DMA's channels issue transactions through their
// initiator sockets to the DRAM's target socket, and the completion times are checked against the
// bus rule derived by hand (docs/architecture.md, "DMA and DRAM"): a transaction occupies the data
// bus for ceil(bytes / burst) x burst / bandwidth once the bus is free, its data are complete
// `latency` later, and the DMA sees a request complete at the next clock edge after its last data.
// Default chip: 12.8 B/ns, 64 B bursts, 100 ns latency, 675 MHz simulated as a 1481 ps period.
#include <functional>
#include <vector>

#include <gtest/gtest.h>
#include <systemc>

#include "swpu/config.hpp"
#include "swpu/memory.hpp"

namespace swpu::test {
namespace {

constexpr uint64_t kPeriodPs = 1481;
uint64_t next_edge_ps(uint64_t ps) { return (ps + kPeriodPs - 1) / kPeriodPs * kPeriodPs; }

struct DmaTop : sc_core::sc_module {
    Dram dram;
    Dma dma;
    std::function<void(DmaTop&)> script;
    SC_HAS_PROCESS(DmaTop);
    DmaTop(sc_core::sc_module_name n, const RunConfig& cfg) : sc_core::sc_module(n), dram("dram", cfg), dma("dma", cfg) {
        dma.rd_socket.bind(dram.socket);
        dma.wr_socket.bind(dram.socket);
        SC_THREAD(run);
    }
    void run() { script(*this); }
    static uint64_t now_ps() { return sc_core::sc_time_stamp().value(); }
};

// 4112 B (the dense test layer's first fill, tests/test_cycles.cpp): transactions of 4096 and 16 B,
// 64 + 1 bursts = 4160 B / 12.8 B/ns = 325 ns on the bus, complete at 425 ns, seen at the next edge:
// 287 x 1481 ps = 425,047 ps.
TEST(DmaDram, OneReadFollowsTheBusRule) {
    RunConfig cfg;
    DmaTop top("top", cfg);
    uint64_t done = 0;
    top.script = [&](DmaTop& t) {
        t.dma.wait_for(t.dma.submit(4112, false), false);
        done = DmaTop::now_ps();
    };
    sc_core::sc_start();
    EXPECT_EQ(done, next_edge_ps(425000));
    EXPECT_EQ(done, 287 * kPeriodPs);
    EXPECT_EQ(top.dram.transactions(), 2);
    EXPECT_EQ(top.dram.read_bytes(), 4112);
    EXPECT_EQ(top.dram.busy_time().value(), 325000u);
}

// With 1024 B transactions the same request is 4 x 1024 + 16 B: 16 x 4 + 1 = 65 bursts, the same
// 4160 B on the bus (no per-transaction cost): the same completion, five transactions.
TEST(DmaDram, TransfersSplitAtTheMaximumTransaction) {
    RunConfig cfg;
    cfg.dma.max_transfer_bytes = 1024;
    DmaTop top("top", cfg);
    uint64_t done = 0;
    top.script = [&](DmaTop& t) {
        t.dma.wait_for(t.dma.submit(4112, false), false);
        done = DmaTop::now_ps();
    };
    sc_core::sc_start();
    EXPECT_EQ(done, 287 * kPeriodPs);
    EXPECT_EQ(top.dram.transactions(), 5);
}

// A read and a write of 4096 B submitted together contend for the one data bus: the first holds it
// 0-320 ns (complete at 420 ns, edge 284: 420,604 ps), the second 320-640 ns (complete at 740 ns,
// edge 500: 740,500 ps). Which channel goes first is the kernel's choice; the pair is not.
TEST(DmaDram, ReadAndWriteChannelsShareTheBus) {
    RunConfig cfg;
    DmaTop top("top", cfg);
    std::vector<uint64_t> done;
    top.script = [&](DmaTop& t) {
        const uint64_t r = t.dma.submit(4096, false), w = t.dma.submit(4096, true);
        t.dma.wait_for(r, false);
        t.dma.wait_for(w, true);
        done.push_back(DmaTop::now_ps());
    };
    sc_core::sc_start();
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0], next_edge_ps(740000));
    EXPECT_EQ(done[0], 500 * kPeriodPs);
    EXPECT_EQ(top.dram.busy_time().value(), 640000u);
    EXPECT_EQ(top.dram.read_bytes(), 4096);
    EXPECT_EQ(top.dram.write_bytes(), 4096);
}

// Two 64 B reads on one channel complete in order, the second issued when the first completes: the
// first is on the bus 0-5 ns, complete at 105 ns, seen at edge 71 (105,151 ps); the second is on
// the bus from then for 5 ns, complete 100 ns later at 210,151 ps, seen at edge 142 (210,302 ps).
TEST(DmaDram, RequestsOfAChannelCompleteInOrder) {
    RunConfig cfg;
    DmaTop top("top", cfg);
    uint64_t first = 0, second = 0;
    top.script = [&](DmaTop& t) {
        const uint64_t a = t.dma.submit(64, false), b = t.dma.submit(64, false);
        t.dma.wait_for(a, false);
        first = DmaTop::now_ps();
        EXPECT_FALSE(t.dma.complete(b, false));
        t.dma.wait_for(b, false);
        second = DmaTop::now_ps();
    };
    sc_core::sc_start();
    EXPECT_EQ(first, 71 * kPeriodPs);
    EXPECT_EQ(second, next_edge_ps(first + 105000));
    EXPECT_EQ(second, 142 * kPeriodPs);
}

// Functional mode: a write's payload carries bytes into the DRAM's store and a read's payload brings
// them back, split at the maximum transaction and scattered over segments that do not line up with
// the transactions; the timing is that of the same transfers without data.
TEST(DmaDram, PayloadsCarryBytesWithUnchangedTiming) {
    RunConfig cfg;
    cfg.dma.max_transfer_bytes = 1024;
    DmaTop top("top", cfg);
    std::vector<uint8_t> src(4112), a(1000), b(3000), c(112);
    for (size_t i = 0; i < src.size(); ++i) src[i] = uint8_t(i * 7 + 3);
    uint64_t write_done = 0, read_done = 0;
    top.script = [&](DmaTop& t) {
        const uint64_t w = t.dma.submit(4112, true, 8192, {{src.data(), 4112}});
        t.dma.wait_for(w, true);
        write_done = DmaTop::now_ps();
        const uint64_t r = t.dma.submit(4112, false, 8192, {{a.data(), 1000}, {nullptr, 0}, {b.data(), 3000}, {c.data(), 112}});
        t.dma.wait_for(r, false);
        read_done = DmaTop::now_ps();
    };
    sc_core::sc_start();
    EXPECT_EQ(write_done, 287 * kPeriodPs);  // as OneReadFollowsTheBusRule: the same bus rule
    EXPECT_EQ(top.dram.transactions(), 10);
    std::vector<uint8_t> back(a);
    back.insert(back.end(), b.begin(), b.end());
    back.insert(back.end(), c.begin(), c.end());
    EXPECT_EQ(back, src);
    EXPECT_GE(top.dram.stored_bytes(), 8192 + 4112);
    EXPECT_GT(read_done, write_done);
}

// Debug transport: a testbench's zero-time preload and read-back, without statistics; bytes never
// written read as zero.
TEST(DmaDram, DebugTransportPreloadsAndReadsBack) {
    RunConfig cfg;
    DmaTop top("top", cfg);
    std::vector<uint8_t> got(16, 0xee), via_dma(6, 0xee);
    uint64_t at = 1;
    top.script = [&](DmaTop& t) {
        uint8_t pre[6] = {1, 2, 3, 4, 5, 6};
        t.dma.debug_access(100, pre, 6, true);
        t.dma.debug_access(96, got.data(), 16, false);
        at = DmaTop::now_ps();
        t.dma.wait_for(t.dma.submit(6, false, 100, {{via_dma.data(), 6}}), false);
    };
    sc_core::sc_start();
    EXPECT_EQ(at, 0u);
    EXPECT_EQ(got, (std::vector<uint8_t>{0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 0, 0, 0, 0, 0, 0}));
    EXPECT_EQ(via_dma, (std::vector<uint8_t>{1, 2, 3, 4, 5, 6}));
    EXPECT_EQ(top.dram.transactions(), 1);
    EXPECT_EQ(top.dram.read_bytes(), 6);
}

// An injected fault inverts its bits in every read of its byte (DMA or debug), not in what is
// stored: writing the byte again does not clear it, and a byte outside the read is untouched.
TEST(DmaDram, InjectedFaultFlipsEveryReadOfItsByte) {
    RunConfig cfg;
    DmaTop top("top", cfg);
    std::vector<uint8_t> dbg(4, 0xee), via_dma(4, 0xee), again(4, 0xee);
    top.dram.inject_fault(201, 0x81);
    top.dram.inject_fault(300, 0xff);  // outside every read below
    top.script = [&](DmaTop& t) {
        uint8_t pre[4] = {0x10, 0x20, 0x30, 0x40};
        t.dma.debug_access(200, pre, 4, true);
        t.dma.debug_access(200, dbg.data(), 4, false);
        t.dma.wait_for(t.dma.submit(4, false, 200, {{via_dma.data(), 4}}), false);
        t.dma.wait_for(t.dma.submit(4, true, 200, {{pre, 4}}), true);  // rewrite the same bytes
        t.dma.debug_access(200, again.data(), 4, false);
    };
    sc_core::sc_start();
    const std::vector<uint8_t> want{0x10, 0x20 ^ 0x81, 0x30, 0x40};
    EXPECT_EQ(dbg, want);
    EXPECT_EQ(via_dma, want);
    EXPECT_EQ(again, want);
}

}  // namespace
}  // namespace swpu::test
