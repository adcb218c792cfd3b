// Latency-insensitive channels between the clocked units of the cycle engine, in the style of
// MatchLib's Connections: a bounded FIFO of the hardware's depth with registered semantics.
//
// Every unit's process runs on the rising clock edge. What a producer pushes in cycle t becomes
// visible to the consumer in cycle t+1 (the FIFO's storage is a register), and a slot freed by a
// pop in cycle t can be reused in cycle t+1 (no combinational path from the consumer's ready to the
// producer). A producer that finds the channel full holds its item that cycle: back-pressure.
// A consumer with nothing to do waits on data_written_event() instead of evaluating every edge.
#pragma once

#include <cstdint>
#include <deque>
#include <stdexcept>
#include <string>
#include <vector>

#include <systemc>

namespace swpu {

template <class T>
class FifoInIf : public virtual sc_core::sc_interface {
public:
    virtual bool can_pop() const = 0;        // an item is visible this cycle
    virtual const T& peek() const = 0;       // the oldest visible item
    virtual T pop() = 0;                     // consume it (the slot frees next cycle)
    virtual int visible() const = 0;         // items visible this cycle and not yet popped
    virtual const sc_core::sc_event& data_written_event() const = 0;
};

template <class T>
class FifoOutIf : public virtual sc_core::sc_interface {
public:
    virtual bool can_push() const = 0;
    virtual void push(const T& v) = 0;
    virtual const sc_core::sc_event& data_read_event() const = 0;
};

template <class T>
class Fifo : public sc_core::sc_prim_channel, public FifoInIf<T>, public FifoOutIf<T> {
public:
    Fifo(const char* name, int depth) : sc_core::sc_prim_channel(name), m_depth(depth) {
        if (depth < 1) throw std::invalid_argument(std::string(name) + ": FIFO depth must be at least 1");
    }

    bool can_pop() const override { return m_popped < int(m_items.size()) - m_staged; }
    const T& peek() const override { return m_items[size_t(m_popped)]; }
    T pop() override {
        if (!can_pop()) throw std::logic_error(std::string(name()) + ": pop from an empty FIFO");
        T v = m_items[size_t(m_popped)];
        ++m_popped;
        request_update();
        return v;
    }
    int visible() const override { return int(m_items.size()) - m_staged - m_popped; }
    bool can_push() const override { return int(m_items.size()) < m_depth; }
    void push(const T& v) override {
        if (!can_push()) throw std::logic_error(std::string(name()) + ": push into a full FIFO");
        m_items.push_back(v);
        ++m_staged;
        request_update();
    }
    const sc_core::sc_event& data_written_event() const override { return m_written; }
    const sc_core::sc_event& data_read_event() const override { return m_read; }

    int depth() const { return m_depth; }
    int occupancy() const { return int(m_items.size()); }  // committed + staged (what the VCD shows)
    int64_t pushes() const { return m_pushes; }

protected:
    void update() override {
        if (m_popped) {
            m_items.erase(m_items.begin(), m_items.begin() + m_popped);
            m_popped = 0;
            m_read.notify(sc_core::SC_ZERO_TIME);
        }
        if (m_staged) {
            m_pushes += m_staged;
            m_staged = 0;
            m_written.notify(sc_core::SC_ZERO_TIME);
        }
    }

private:
    int m_depth;
    std::deque<T> m_items;  // committed items first, then the ones staged this cycle
    int m_staged = 0, m_popped = 0;
    int64_t m_pushes = 0;
    sc_core::sc_event m_written, m_read;
};

// Typed ports at a unit's boundary.
template <class T>
using In = sc_core::sc_port<FifoInIf<T>>;
template <class T>
using Out = sc_core::sc_port<FifoOutIf<T>>;

}  // namespace swpu
