// Off-chip memory and data movement: a TLM-2.0 DRAM target, a DMA engine (TLM initiator) with a
// read and a write channel, and the on-chip global buffers.
//
// TLM style: loosely timed with annotated delays (blocking transport). The DRAM serializes its
// data bus: a transaction occupies the bus for ceil(bytes/burst)*burst / bandwidth after the bus is
// free, and its data is complete `latency` later (pipelined: latency overlaps the next transfer).
// Contention between the read and write channels is therefore real.
//
// Bytes: a payload with a data pointer (functional mode) moves real bytes between the DRAM's
// backing store and the pointed-to storage; a payload without one (timing mode) moves none. The
// timing is the same either way. Debug transport (zero time, no statistics) preloads the DRAM image
// of a pass and reads its results back.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include <systemc>
#include <tlm>
#include <tlm_utils/simple_initiator_socket.h>
#include <tlm_utils/multi_passthrough_target_socket.h>

#include "swpu/channel.hpp"
#include "swpu/config.hpp"
#include "swpu/datapath_messages.hpp"
#include "swpu/stats.hpp"

namespace swpu {

class Dram : public sc_core::sc_module {
public:
    // One target socket, any number of initiators (the DMA's read and write channels).
    tlm_utils::multi_passthrough_target_socket<Dram> socket;

    Dram(sc_core::sc_module_name name, const ChipConfig& cfg);

    int64_t read_bytes() const { return m_read_bytes; }
    int64_t write_bytes() const { return m_write_bytes; }
    int64_t transactions() const { return m_transactions; }
    sc_core::sc_time busy_time() const { return m_busy_time; }
    int64_t stored_bytes() const { return int64_t(m_store.size()); }
    // Fault injection (functional mode): every read of the byte at `address`, by the DMA or a debug
    // read, returns it with the bits of `flip` inverted; writes store what they are given. A
    // resilience study's bit flips, and the tests' proof that the datapath computes on what DRAM
    // delivered (tests/test_dram_format.cpp).
    void inject_fault(uint64_t address, uint8_t flip) { m_faults[address] ^= flip; }

private:
    void b_transport(int initiator, tlm::tlm_generic_payload& trans, sc_core::sc_time& delay);
    unsigned int transport_dbg(int initiator, tlm::tlm_generic_payload& trans);
    // Copies between the payload and the backing store; false for an unsupported payload.
    bool move_bytes(tlm::tlm_generic_payload& trans);

    // The backing store, grown on demand: bytes never written read as zero.
    std::vector<uint8_t> m_store;
    std::map<uint64_t, uint8_t> m_faults;  // address -> bits inverted on every read

    double m_ns_per_byte;
    sc_core::sc_time m_latency;
    int m_burst;
    sc_core::sc_time m_bus_free;
    sc_core::sc_time m_busy_time;
    int64_t m_read_bytes = 0, m_write_bytes = 0, m_transactions = 0;
};

// One piece of a transfer's on-chip side: `bytes` at `data` (a global buffer's storage).
struct DmaSegment {
    uint8_t* data = nullptr;
    int64_t bytes = 0;
};

// A transfer request: bytes between DRAM at `address` and a global buffer. In functional mode the
// on-chip side is a list of segments (the transfer's stream scattered to or gathered from the
// buffers it fills or drains, in order); in timing mode the list is empty and no bytes move.
struct DmaRequest {
    int64_t bytes = 0;
    bool write = false;
    uint64_t id = 0;
    uint64_t address = 0;
    std::vector<DmaSegment> segments;
};

class Dma : public sc_core::sc_module {
public:
    tlm_utils::simple_initiator_socket<Dma> rd_socket;
    tlm_utils::simple_initiator_socket<Dma> wr_socket;
    sc_core::sc_signal<bool> busy_signal{"busy"};  // a transfer is under way (block-level, for the VCD)

    Dma(sc_core::sc_module_name name, const ChipConfig& cfg);

    // Queues a transfer and returns its ticket; completion is in order per channel. With segments
    // (their bytes summing to `bytes`) the transactions carry the data.
    uint64_t submit(int64_t bytes, bool write, uint64_t address = 0, std::vector<DmaSegment> segments = {});
    // Zero-time debug access to the DRAM through the read socket (a testbench's preload and
    // read-back): no statistics, no time.
    void debug_access(uint64_t address, uint8_t* data, int64_t bytes, bool write);
    // Blocks the calling thread until the ticket is complete.
    void wait_for(uint64_t ticket, bool write);
    bool complete(uint64_t ticket, bool write) const {
        return (write ? m_wr.completed : m_rd.completed) >= ticket;
    }
    // Blocks until every queued transfer is complete.
    void drain();
    bool busy() const { return m_rd.active || m_wr.active; }

private:
    struct Channel {
        std::deque<DmaRequest> queue;
        uint64_t submitted = 0, completed = 0;
        bool active = false;
        sc_core::sc_event kick, progress;
    };
    void rd_thread() { run(m_rd, rd_socket, false); }
    void wr_thread() { run(m_wr, wr_socket, true); }
    void run(Channel& ch, tlm_utils::simple_initiator_socket<Dma>& sock, bool write);
    void update_busy() { busy_signal.write(m_rd.active || m_wr.active); }  // the signal's one driver
    sc_core::sc_event m_state_changed;

    Channel m_rd, m_wr;
    std::vector<uint8_t> m_staging;  // a transaction whose bytes span two segments
    int m_max_transfer;
    sc_core::sc_time m_clock;
};

// A global buffer: capacity, banks and ports. In functional mode each half of a double buffer also
// has byte storage: what the DMA delivered into it or drains from it (docs/architecture.md,
// functional mode).
//
// Clocked behaviour (cycle engine): requesters are bound to the request/response multiports in
// pairs (client i: request port i, response port i). Each bank has one read and one write port:
// per cycle it serves one read access and one write access. A request's words go to consecutive
// banks; in a cycle a request is served as far as its banks are free, and the rest waits (a word
// whose bank another requester holds this cycle is a bank conflict). Clients are served
// round-robin. A read's response leaves `read_latency` cycles after its last word, a write's one
// cycle after; a read-modify-write reads now and writes its banks `read_latency + 1` cycles later
// (the adder in between), and answers then. The DMA fills and drains the other half of a double
// buffer through its own port, so it never meets these requests.
class GlobalBuffer : public sc_core::sc_module {
public:
    enum class Role { Weight, Activation, Output };

    sc_core::sc_in<bool> clk;
    sc_core::sc_in<bool> reset;
    sc_core::sc_port<FifoInIf<BufRequest>, 0> request;     // one binding per client
    sc_core::sc_port<FifoOutIf<BufResponse>, 0> response;  // same order

    sc_core::sc_signal<int> requests_active{"requests_active"};
    sc_core::sc_signal<int> conflicts{"conflicts"};  // words that waited for a bank this cycle

    GlobalBuffer(sc_core::sc_module_name name, const BufferConfig& cfg, bool double_buffered, Role role);
    int64_t capacity_bytes() const { return m_capacity; }
    int64_t half_bytes() const { return m_double ? m_capacity / 2 : m_capacity; }
    int width_bits() const { return m_width; }
    int banks() const { return m_banks; }
    // Accesses needed to move `bits` through this buffer's port.
    int64_t accesses_for_bits(int64_t bits) const { return (bits + m_width - 1) / m_width; }
    Counters take_counters();
    // Functional mode: the byte storage of half `half` (0 without double buffering), at least
    // `bytes` long.
    uint8_t* half_storage(int half, int64_t bytes);

private:
    struct Active {
        BufRequest rq;
        int done = 0;
        bool busy = false;
    };
    struct Due {
        int64_t cycle;
        int client;
        uint32_t tag;
    };
    void tick();
    void count(BufRequest::Kind kind, int words);

    int64_t m_capacity;
    int m_width, m_banks, m_latency;
    bool m_double;
    Role m_role;
    uint64_t m_period_ps;
    std::vector<Active> m_active;
    std::vector<int> m_read_owner, m_write_owner;     // this cycle's holder of each bank's ports
    std::vector<std::vector<uint8_t>> m_write_reserved;  // RMW writes booked for future cycles (ring)
    std::deque<Due> m_due;
    int m_rr = 0;
    bool m_woken = false;
    sc_core::sc_event_or_list m_any_request;
    int m_shown_active = -1, m_shown_conflicts = -1;
    Counters m_k;
    std::vector<uint8_t> m_half_bytes[2];

    void end_of_elaboration() override;
};

}  // namespace swpu
