#include "swpu/memory.hpp"

#include <cmath>


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

uint64_t Dma::submit(int64_t bytes, bool write) {
    Channel& ch = write ? m_wr : m_rd;
    DmaRequest r;
    r.bytes = bytes;
    r.write = write;
    r.id = ++ch.submitted;
    ch.queue.push_back(r);
    ch.kick.notify(sc_core::SC_ZERO_TIME);
    return r.id;
}

void Dma::wait_for(uint64_t ticket, bool write) {
    Channel& ch = write ? m_wr : m_rd;
    while (ch.completed < ticket) sc_core::wait(ch.progress);
}

void Dma::drain() {
    wait_for(m_rd.submitted, false);
    wait_for(m_wr.submitted, true);
}

void Dma::run(Channel& ch, tlm_utils::simple_initiator_socket<Dma>& sock, bool write) {
    tlm::tlm_generic_payload trans;
    for (;;) {
        while (ch.queue.empty()) sc_core::wait(ch.kick);
        DmaRequest r = ch.queue.front();
        ch.queue.pop_front();
        ch.active = true;
        m_state_changed.notify(sc_core::SC_ZERO_TIME);
        // Issue the request as back-to-back transactions; each returns its completion time.
        sc_time last = sc_core::SC_ZERO_TIME;
        int64_t left = r.bytes;
        while (left > 0) {
            const int64_t len = left < m_max_transfer ? left : m_max_transfer;
            trans.set_command(write ? tlm::TLM_WRITE_COMMAND : tlm::TLM_READ_COMMAND);
            trans.set_address(0);
            trans.set_data_ptr(nullptr);  // timing only: the values travel with the tile operands
            trans.set_data_length(unsigned(len));
            trans.set_streaming_width(unsigned(len));
            trans.set_byte_enable_ptr(nullptr);
            trans.set_dmi_allowed(false);
            trans.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
            sc_time delay = sc_core::SC_ZERO_TIME;
            sock->b_transport(trans, delay);
            if (trans.is_response_error()) SC_REPORT_ERROR("swpu/dma", "DRAM transaction failed");
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

GlobalBuffer::GlobalBuffer(sc_core::sc_module_name name, const BufferConfig& cfg, bool double_buffered)
    : sc_core::sc_module(name),
      m_capacity(int64_t(cfg.kib) * 1024),
      m_width(cfg.width_bits),
      m_banks(cfg.banks),
      m_double(double_buffered) {}

}  // namespace swpu
