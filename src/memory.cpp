#include "swpu/memory.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>


namespace swpu {

using sc_core::sc_time;
using sc_core::SC_NS;

Dram::Dram(sc_core::sc_module_name name, const ChipConfig& cfg)
    : sc_core::sc_module(name),
      socket("socket"),
      m_ns_per_byte(1.0 / cfg.dram.bandwidth_gbps),  // GB/s = bytes/ns
      m_latency(cfg.dram.latency_ns, SC_NS),
      m_burst(cfg.dram.burst_bytes),
      m_bus_free(sc_core::SC_ZERO_TIME),
      m_busy_time(sc_core::SC_ZERO_TIME) {
    socket.register_b_transport(this, &Dram::b_transport);
    socket.register_transport_dbg(this, &Dram::transport_dbg);
}

bool Dram::move_bytes(tlm::tlm_generic_payload& trans) {
    uint8_t* data = trans.get_data_ptr();
    if (!data) return true;  // timing only
    if (trans.get_byte_enable_ptr() || trans.get_streaming_width() < trans.get_data_length()) return false;
    const uint64_t addr = trans.get_address(), len = trans.get_data_length();
    if (trans.is_write()) {
        if (m_store.size() < addr + len) m_store.resize(addr + len, 0);
        std::memcpy(m_store.data() + addr, data, len);
    } else if (trans.is_read()) {
        const uint64_t have = addr < m_store.size() ? std::min<uint64_t>(len, m_store.size() - addr) : 0;
        if (have) std::memcpy(data, m_store.data() + addr, have);
        std::memset(data + have, 0, len - have);
        for (auto f = m_faults.lower_bound(addr); f != m_faults.end() && f->first < addr + len; ++f)
            data[f->first - addr] ^= f->second;
    }
    return true;
}

unsigned int Dram::transport_dbg(int /*initiator*/, tlm::tlm_generic_payload& trans) {
    if (!trans.get_data_ptr() || !move_bytes(trans)) {
        trans.set_response_status(tlm::TLM_GENERIC_ERROR_RESPONSE);
        return 0;
    }
    trans.set_response_status(tlm::TLM_OK_RESPONSE);
    return trans.get_data_length();
}

void Dram::b_transport(int /*initiator*/, tlm::tlm_generic_payload& trans, sc_time& delay) {
    const int64_t len = trans.get_data_length();
    if (len <= 0) {
        trans.set_response_status(tlm::TLM_GENERIC_ERROR_RESPONSE);
        return;
    }
    const int64_t bursts = (len + m_burst - 1) / m_burst;
    const sc_time occupancy(double(bursts * m_burst) * m_ns_per_byte, SC_NS);
    const sc_time issue = sc_core::sc_time_stamp() + delay;
    const sc_time start = issue > m_bus_free ? issue : m_bus_free;
    m_bus_free = start + occupancy;
    m_busy_time += occupancy;
    const sc_time done = m_bus_free + m_latency;
    delay = done - sc_core::sc_time_stamp();
    if (trans.is_read()) m_read_bytes += len; else m_write_bytes += len;
    ++m_transactions;
    if (!move_bytes(trans)) {
        trans.set_response_status(tlm::TLM_BYTE_ENABLE_ERROR_RESPONSE);
        return;
    }
    trans.set_response_status(tlm::TLM_OK_RESPONSE);
}

Dma::Dma(sc_core::sc_module_name name, const ChipConfig& cfg)
    : sc_core::sc_module(name),
      rd_socket("rd_socket"),
      wr_socket("wr_socket"),
      m_max_transfer(cfg.dma.max_transfer_bytes),
      m_clock(sc_time::from_value(uint64_t(std::llround(cfg.clock_period_ns() * 1000.0)))) {
    SC_HAS_PROCESS(Dma);
    SC_THREAD(rd_thread);
    SC_THREAD(wr_thread);
    SC_METHOD(update_busy);
    sensitive << m_state_changed;
    dont_initialize();
}

uint64_t Dma::submit(int64_t bytes, bool write, uint64_t address, std::vector<DmaSegment> segments) {
    Channel& ch = write ? m_wr : m_rd;
    DmaRequest r;
    r.bytes = bytes;
    r.write = write;
    r.id = ++ch.submitted;
    r.address = address;
    if (!segments.empty()) {
        int64_t sum = 0;
        for (const DmaSegment& s : segments) sum += s.bytes;
        if (sum != bytes) throw std::logic_error(std::string(name()) + ": segments do not add up to the transfer");
    }
    r.segments = std::move(segments);
    ch.queue.push_back(std::move(r));
    ch.kick.notify(sc_core::SC_ZERO_TIME);
    return r.id;
}

void Dma::wait_for(uint64_t ticket, bool write) {
    Channel& ch = write ? m_wr : m_rd;
    while (ch.completed < ticket) sc_core::wait(ch.progress);
}

void Dma::debug_access(uint64_t address, uint8_t* data, int64_t bytes, bool write) {
    tlm::tlm_generic_payload trans;
    trans.set_command(write ? tlm::TLM_WRITE_COMMAND : tlm::TLM_READ_COMMAND);
    trans.set_address(address);
    trans.set_data_ptr(data);
    trans.set_data_length(unsigned(bytes));
    trans.set_streaming_width(unsigned(bytes));
    trans.set_byte_enable_ptr(nullptr);
    if (bytes > 0 && rd_socket->transport_dbg(trans) != unsigned(bytes))
        SC_REPORT_ERROR("swpu/dma", "DRAM debug access failed");
}

void Dma::drain() {
    wait_for(m_rd.submitted, false);
    wait_for(m_wr.submitted, true);
}

void Dma::run(Channel& ch, tlm_utils::simple_initiator_socket<Dma>& sock, bool write) {
    tlm::tlm_generic_payload trans;
    for (;;) {
        while (ch.queue.empty()) sc_core::wait(ch.kick);
        DmaRequest r = std::move(ch.queue.front());
        ch.queue.pop_front();
        ch.active = true;
        m_state_changed.notify(sc_core::SC_ZERO_TIME);
        // Issue the request as back-to-back transactions; each returns its completion time.
        sc_time last = sc_core::SC_ZERO_TIME;
        int64_t left = r.bytes;
        size_t seg = 0;      // the segment the next byte of the stream belongs to
        int64_t in_seg = 0;  // and its offset there
        // The bytes of [seg, in_seg) onwards, `len` of them: gathered into (write) or scattered from
        // (read, after the transaction) the staging buffer when they span segments.
        auto walk = [&](int64_t len, uint8_t* staging, bool to_staging) {
            int64_t done = 0;
            while (done < len) {
                const DmaSegment& s = r.segments[seg];
                const int64_t n = std::min(len - done, s.bytes - in_seg);
                if (n > 0 && to_staging) std::memcpy(staging + done, s.data + in_seg, size_t(n));
                if (n > 0 && !to_staging) std::memcpy(s.data + in_seg, staging + done, size_t(n));  // an empty segment may have no storage
                done += n;
                in_seg += n;
                if (in_seg == s.bytes) {
                    ++seg;
                    in_seg = 0;
                }
            }
        };
        while (left > 0) {
            const int64_t len = left < m_max_transfer ? left : m_max_transfer;
            uint8_t* data = nullptr;  // timing mode: no bytes
            bool staged = false;
            if (!r.segments.empty()) {
                while (r.segments[seg].bytes == 0) ++seg;
                const DmaSegment& s = r.segments[seg];
                if (s.bytes - in_seg >= len) {  // within one segment: the payload points at the buffer
                    data = s.data + in_seg;
                    in_seg += len;
                    if (in_seg == s.bytes) {
                        ++seg;
                        in_seg = 0;
                    }
                } else {
                    staged = true;
                    m_staging.resize(size_t(len));
                    data = m_staging.data();
                    if (write) walk(len, data, true);
                }
            }
            const size_t seg0 = seg;
            const int64_t in_seg0 = in_seg;
            trans.set_command(write ? tlm::TLM_WRITE_COMMAND : tlm::TLM_READ_COMMAND);
            trans.set_address(r.address + uint64_t(r.bytes - left));
            trans.set_data_ptr(data);
            trans.set_data_length(unsigned(len));
            trans.set_streaming_width(unsigned(len));
            trans.set_byte_enable_ptr(nullptr);
            trans.set_dmi_allowed(false);
            trans.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
            sc_time delay = sc_core::SC_ZERO_TIME;
            sock->b_transport(trans, delay);
            if (trans.is_response_error()) SC_REPORT_ERROR("swpu/dma", "DRAM transaction failed");
            if (staged && !write) {
                seg = seg0;
                in_seg = in_seg0;
                walk(len, m_staging.data(), false);
            }
            if (delay > last) last = delay;
            left -= len;
        }
        // The DMA is clocked with the chip: completion is seen at the next clock edge.
        const sc_time now = sc_core::sc_time_stamp();
        const uint64_t period = m_clock.value();
        const uint64_t t = (now + last).value();
        const uint64_t edge = (t + period - 1) / period * period;
        if (edge > now.value()) sc_core::wait(sc_time::from_value(edge) - now);
        ++ch.completed;
        ch.active = false;
        m_state_changed.notify(sc_core::SC_ZERO_TIME);
        ch.progress.notify(sc_core::SC_ZERO_TIME);
    }
}

GlobalBuffer::GlobalBuffer(sc_core::sc_module_name name, const BufferConfig& cfg, bool double_buffered, Role role)
    : sc_core::sc_module(name),
      clk("clk"),
      reset("reset"),
      request("request"),
      response("response"),
      m_capacity(int64_t(cfg.kib) * 1024),
      m_width(cfg.width_bits),
      m_banks(cfg.banks),
      m_latency(cfg.read_latency),
      m_double(double_buffered),
      m_role(role),
      m_period_ps(0),
      m_read_owner(size_t(cfg.banks), -1),
      m_write_owner(size_t(cfg.banks), -1),
      m_write_reserved(size_t(cfg.read_latency + 2), std::vector<uint8_t>(size_t(cfg.banks), 0)) {
    SC_HAS_PROCESS(GlobalBuffer);
    SC_METHOD(tick);
    sensitive << clk.pos();
    dont_initialize();
}

void GlobalBuffer::end_of_elaboration() {
    if (request.size() != response.size())
        throw std::logic_error(std::string(name()) + ": request and response ports must be bound in pairs");
    m_active.assign(size_t(request.size()), Active{});
    for (int i = 0; i < request.size(); ++i) m_any_request |= request[i]->data_written_event();
}

uint8_t* GlobalBuffer::half_storage(int half, int64_t bytes) {
    std::vector<uint8_t>& v = m_half_bytes[m_double ? half & 1 : 0];
    if (int64_t(v.size()) < bytes) v.resize(size_t(bytes));
    return v.data();
}

Counters GlobalBuffer::take_counters() {
    Counters k = m_k;
    m_k = Counters{};
    return k;
}

void GlobalBuffer::count(BufRequest::Kind kind, int words) {
    const bool rd = kind != BufRequest::Write, wr = kind != BufRequest::Read;
    switch (m_role) {
        case Role::Weight: if (rd) m_k.wbuf_reads += words; if (wr) m_k.wbuf_writes += words; break;
        case Role::Activation: if (rd) m_k.abuf_reads += words; if (wr) m_k.abuf_writes += words; break;
        case Role::Output: if (rd) m_k.obuf_reads += words; if (wr) m_k.obuf_writes += words; break;
    }
}

void GlobalBuffer::tick() {
    if (m_woken) {  // woken by a request between edges: it is visible at the next edge
        m_woken = false;
        return;
    }
    if (m_period_ps == 0) {
        const sc_core::sc_clock* c = dynamic_cast<const sc_core::sc_clock*>(clk.get_interface());
        if (!c) throw std::logic_error(std::string(name()) + ": clk must be bound to an sc_clock");
        m_period_ps = c->period().value();
    }
    const int64_t now = int64_t(sc_core::sc_time_stamp().value() / m_period_ps);
    if (reset.read()) {
        for (auto& a : m_active) a = Active{};
        m_due.clear();
        for (auto& r : m_write_reserved) std::fill(r.begin(), r.end(), 0);
        return;
    }
    // Answers whose time has come (in order; a full response channel holds the rest).
    while (!m_due.empty() && m_due.front().cycle <= now) {
        const Due& d = m_due.front();
        if (!response[d.client]->can_push()) break;
        response[d.client]->push(BufResponse{d.tag});
        m_due.pop_front();
    }
    const size_t ring = m_write_reserved.size();
    std::vector<uint8_t>& booked_now = m_write_reserved[size_t(now % int64_t(ring))];
    std::vector<uint8_t>& booked_rmw = m_write_reserved[size_t((now + m_latency + 1) % int64_t(ring))];
    std::fill(m_read_owner.begin(), m_read_owner.end(), -1);
    for (int b = 0; b < m_banks; ++b) m_write_owner[size_t(b)] = booked_now[size_t(b)] ? -2 : -1;
    std::fill(booked_now.begin(), booked_now.end(), 0);
    const int clients = int(m_active.size());
    int active = 0, waited = 0;
    for (int n = 0; n < clients; ++n) {
        const int i = (m_rr + n) % clients;
        Active& a = m_active[size_t(i)];
        if (!a.busy) {
            if (!request[i]->can_pop()) continue;
            a.rq = request[i]->pop();
            a.done = 0;
            a.busy = true;
        }
        ++active;
        const BufRequest& rq = a.rq;
        std::vector<int>& owner = rq.kind == BufRequest::Write ? m_write_owner : m_read_owner;
        while (a.done < rq.accesses) {
            const int b = (rq.first_bank + a.done) % m_banks;
            const bool rmw_write_free = rq.kind != BufRequest::Rmw || !booked_rmw[size_t(b)];
            if (owner[size_t(b)] != -1 || !rmw_write_free) {
                if (owner[size_t(b)] != i) ++waited;  // another requester holds the bank
                break;
            }
            owner[size_t(b)] = i;
            if (rq.kind == BufRequest::Rmw) booked_rmw[size_t(b)] = 1;
            ++a.done;
        }
        if (a.done == rq.accesses) {
            count(rq.kind, rq.accesses);
            const int64_t delay = rq.kind == BufRequest::Read ? m_latency : rq.kind == BufRequest::Write ? 1 : m_latency + 1;
            Due d{now + delay, i, rq.tag};
            auto it = m_due.end();
            while (it != m_due.begin() && (it - 1)->cycle > d.cycle) --it;
            m_due.insert(it, d);
            a.busy = false;
        }
    }
    if (waited) ++m_k.bank_conflict_cycles;
    m_rr = clients ? (m_rr + 1) % clients : 0;
    if (active != m_shown_active) requests_active.write(m_shown_active = active);
    if (waited != m_shown_conflicts) conflicts.write(m_shown_conflicts = waited);
    bool booked = false;
    for (const auto& r : m_write_reserved)
        for (uint8_t v : r) booked |= v != 0;
    bool pending = !m_due.empty() || booked;
    for (int i = 0; i < clients && !pending; ++i) pending = m_active[size_t(i)].busy || request[i]->can_pop();
    if (!pending) {
        m_woken = true;
        next_trigger(m_any_request);
    }
}

}  // namespace swpu
