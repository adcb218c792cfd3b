#include "swpu/chip.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>

namespace swpu {

using sc_core::sc_time;

// Ticking mode: one SystemC wait per clock cycle, with the block-level signals updated each cycle.
class SwpuChip::Ticker : public CycleProbe {
public:
    explicit Ticker(SwpuChip& chip) : m_chip(chip) {}
    void cycle(int lanes_busy, int groups_busy, int segments_busy) override {
        ChipSignals& s = m_chip.m_sig;
        s.lanes_valid.write(lanes_busy);
        s.groups_busy.write(groups_busy);
        s.segments_busy.write(segments_busy);
        sc_core::wait(m_chip.m_period);
        ++cycles;
    }
    int64_t cycles = 0;

private:
    SwpuChip& m_chip;
};

SwpuChip::SwpuChip(sc_core::sc_module_name name, const RunConfig& run)
    : sc_core::sc_module(name),
      m_cfg(run.chip_config()),
      m_sim(run.simulation),
      dram("dram", m_cfg),
      dma("dma", m_cfg),
      weight_buffer("weight_buffer", m_cfg.buffers.weight, m_cfg.dma.double_buffering, GlobalBuffer::Role::Weight),
      activation_buffer("activation_buffer", m_cfg.buffers.activation, m_cfg.dma.double_buffering,
                        GlobalBuffer::Role::Activation),
      output_buffer("output_buffer", m_cfg.buffers.output, m_cfg.dma.double_buffering, GlobalBuffer::Role::Output),
      reorder_unit("reorder_unit", m_cfg),
      dbl_controller("dbl_controller", m_cfg),
      compaction_network("compaction_network", m_cfg, run.functional()),
      pe_array("pe_array", m_cfg),
      vector_unit("vector_unit", m_cfg),
      tile_cmd("tile_cmd", 1),
      tile_done("tile_done", 1),
      // Decoupled groups issue a line per cycle, as many ahead as the operand FIFOs hold.
      line_req("line_req", m_cfg.decoupled() ? std::max(m_cfg.dbl.line_buffers, m_cfg.pe_array.group_fifo_depth) : m_cfg.dbl.line_buffers),
      weight_req("weight_req", m_cfg.decoupled() ? std::max(m_cfg.compaction.step_fifo_depth, m_cfg.pe_array.group_fifo_depth)
                                               : m_cfg.compaction.step_fifo_depth),
      // Decoupled groups: the request queue is as deep as the operand FIFOs (the routers' WG gate).
      obuf_req("obuf_req", m_cfg.decoupled() ? std::max(m_cfg.pe_array.accumulator_sets, m_cfg.pe_array.group_fifo_depth)
                                           : m_cfg.pe_array.accumulator_sets),
      // Decoupled groups: the answers fill the operand FIFOs' entries, as many as they hold.
      line_resp("line_resp", m_cfg.decoupled() ? std::max(m_cfg.dbl.line_buffers, m_cfg.pe_array.group_fifo_depth) : m_cfg.dbl.line_buffers),
      weight_resp("weight_resp", m_cfg.decoupled() ? std::max(m_cfg.compaction.step_fifo_depth, m_cfg.pe_array.group_fifo_depth)
                                                 : m_cfg.compaction.step_fifo_depth),
      // Every write-back and read-modify-write in flight can be acknowledged without waiting.
      obuf_resp("obuf_resp", std::max(m_cfg.pe_array.accumulator_sets, m_cfg.decoupled() ? m_cfg.pe_array.group_fifo_depth : 0) +
                                 m_cfg.buffers.output.read_latency + 2),
      steps("steps", m_cfg.compaction.step_fifo_depth),
      line_credits("line_credits", m_cfg.decoupled() ? std::max(m_cfg.dbl.line_buffers, m_cfg.pe_array.group_fifo_depth)
                                                   : m_cfg.dbl.line_buffers),
      lane_packets("lane_packets", m_cfg.pe_array.input_fifo_depth),
      group_release("group_release", 2),
      reorder_cmd("reorder_cmd", 1),
      reorder_done("reorder_done", 1),
      vector_cmd("vector_cmd", 1),
      vector_done("vector_done", 1) {
    const ChipConfig& cfg = m_cfg;
    // Time resolution is SystemC's default 1 ps: the period is a whole number of picoseconds.
    m_period = sc_time::from_value(uint64_t(std::llround(cfg.clock_period_ns() * 1000.0)));
    dma.rd_socket.bind(dram.socket);
    dma.wr_socket.bind(dram.socket);
    // The datapath: controller -> DBL controller -> (activation, weight buffers) -> compaction
    // network -> PE array -> output buffer -> controller.
    sc_core::sc_signal_in_if<bool>* clk = &clock_off;
    if (m_sim.cycle_engine()) {
        // sc_stop() ends a clocked run; its informational message is not news to the user.
        sc_core::sc_report_handler::set_actions("/OSCI/SystemC", sc_core::SC_INFO, sc_core::SC_DO_NOTHING);
        clock = std::make_unique<sc_core::sc_clock>("clk", m_period, 0.5, sc_core::SC_ZERO_TIME, true);
        clk = clock.get();
    }
    for (sc_core::sc_in<bool>* c : {&dbl_controller.clk, &compaction_network.clk, &pe_array.clk, &weight_buffer.clk,
                                    &activation_buffer.clk, &output_buffer.clk, &reorder_unit.clk, &vector_unit.clk})
        c->bind(*clk);
    for (sc_core::sc_in<bool>* r : {&dbl_controller.reset, &compaction_network.reset, &pe_array.reset,
                                    &weight_buffer.reset, &activation_buffer.reset, &output_buffer.reset,
                                    &reorder_unit.reset, &vector_unit.reset})
        r->bind(reset);
    vector_unit.cmd_in(vector_cmd);
    vector_unit.done_out(vector_done);
    reorder_unit.cmd_in(reorder_cmd);
    reorder_unit.done_out(reorder_done);
    dbl_controller.cmd_in(tile_cmd);
    dbl_controller.credit_in(line_credits);
    dbl_controller.line_request(line_req);
    dbl_controller.weight_request(weight_req);
    dbl_controller.steps_out(steps);
    activation_buffer.request(line_req);
    activation_buffer.response(line_resp);
    weight_buffer.request(weight_req);
    weight_buffer.response(weight_resp);
    compaction_network.steps_in(steps);
    compaction_network.line_in(line_resp);
    compaction_network.weight_in(weight_resp);
    compaction_network.packets_out(lane_packets);
    compaction_network.credit_out(line_credits);
    pe_array.packets_in(lane_packets);
    pe_array.obuf_request(obuf_req);
    pe_array.obuf_response(obuf_resp);
    pe_array.done_out(tile_done);
    pe_array.release_out(group_release);
    compaction_network.release_in(group_release);
    output_buffer.request(obuf_req);
    output_buffer.response(obuf_resp);
    SC_HAS_PROCESS(SwpuChip);
    SC_THREAD(controller);
    if (clock) {
        SC_METHOD(monitor_fifos);
        sensitive << m_monitor_start;
        dont_initialize();
    }
}

std::vector<TracedSignal> SwpuChip::traced_signals() {
    std::vector<TracedSignal> v;
    auto i = [&](const std::string& scope, const std::string& name, int width, const sc_core::sc_signal_in_if<int>& sig) {
        v.push_back({scope, name, width, &sig, nullptr});
    };
    auto b = [&](const std::string& scope, const std::string& name, const sc_core::sc_signal_in_if<bool>& sig) {
        v.push_back({scope, name, 1, nullptr, &sig});
    };
    i("controller", "phase", 3, m_sig.phase);
    i("controller", "layer", 8, m_sig.layer);
    i("controller", "ctrl_state", 2, m_sig.ctrl_state);
    b("controller", "stall", m_sig.stall);
    b("controller", "reorder_busy", m_sig.reorder_busy);
    b("dma", "busy", dma.busy_signal);
    if (!m_sim.cycle_engine()) {  // the step model's per-cycle summary
        i("datapath", "groups_busy", 8, m_sig.groups_busy);
        i("datapath", "lanes_valid", 16, m_sig.lanes_valid);
        i("datapath", "segments_busy", 8, m_sig.segments_busy);
        return v;
    }
    b("controller", "reset", reset);
    i("dbl_controller", "state", 2, dbl_controller.state);
    i("dbl_controller", "window", 16, dbl_controller.window);
    i("dbl_controller", "line", 16, dbl_controller.line);
    i("dbl_controller", "credits", 8, dbl_controller.credits);
    i("compaction_network", "input_state", 3, compaction_network.input_state);
    i("compaction_network", "stage_valid", 4, compaction_network.stage_valid);
    i("pe_array", "lanes_busy", 16, pe_array.lanes_busy);
    i("pe_array", "groups_busy", 8, pe_array.groups_busy);
    i("pe_array", "writebacks_pending", 4, pe_array.writebacks_pending);
    i("pe_array", "stall", 2, pe_array.stall);
    for (GlobalBuffer* g : {&weight_buffer, &activation_buffer, &output_buffer}) {
        i(g->basename(), "requests_active", 4, g->requests_active);
        i(g->basename(), "conflicts", 8, g->conflicts);
    }
    i("reorder_unit", "state", 2, reorder_unit.state);
    i("reorder_unit", "placed", 16, reorder_unit.placed);
    b("vector_unit", "busy", vector_unit.busy);
    // FIFO occupancy, sampled mid-cycle by the monitor (which runs only when a VCD asks for it).
    m_trace_fifos = true;
    const char* names[kTracedFifos] = {"steps", "lane_packets", "line_data", "weight_words", "obuf_requests"};
    for (int f = 0; f < kTracedFifos; ++f) i("fifo", names[f], 8, m_fifo_occupancy[f]);
    return v;
}

void SwpuChip::monitor_fifos() {
    const int occ[kTracedFifos] = {steps.occupancy(), lane_packets.occupancy(), line_resp.occupancy(),
                                   weight_resp.occupancy(), obuf_req.occupancy()};
    for (int f = 0; f < kTracedFifos; ++f)
        if (m_fifo_occupancy[f].read() != occ[f]) m_fifo_occupancy[f].write(occ[f]);
    next_trigger(clock->negedge_event());
}

void SwpuChip::set_single(const Layer* layer, const LayerWork* work, Pass pass, int batch, LayerValues* values,
                          bool cluster_first) {
    m_single_layer = layer;
    m_single_work = work;
    m_single_pass = pass;
    m_single_batch = batch;
    m_single_values = values;
    m_single_cluster = cluster_first;
}

int64_t SwpuChip::run_tile_clocked(const PassPlan& plan, const Tile& t, int index) {
    // Configuration registers of the units for this tile, then the command; the tile is done when
    // the PE array reports its last result written.
    std::vector<int> items;
    plan.cluster_items(t.cluster, items);
    compaction_network.configure(plan.pass(), &plan, items);
    if (m_cfg.decoupled()) compaction_network.configure_groups(&dbl_controller.group_lines(), t.w_begin);
    pe_array.configure(&plan, &compaction_network, items, index);
    const int64_t c0 = now_cycle();
    while (!tile_cmd.can_push()) sc_core::wait(tile_cmd.data_read_event());
    tile_cmd.push(TileCmd{index});
    // A tile that makes no progress for a million cycles is a deadlock of the model: say where.
    int64_t seen = -1;
    while (!tile_done.can_pop()) {
        sc_core::wait(m_period * 1e6, tile_done.data_written_event());
        if (tile_done.can_pop()) break;
        const int64_t progress = lane_packets.pushes() + steps.pushes() + obuf_req.pushes();
        if (progress == seen)
            throw std::logic_error("cycle engine: no progress in tile " + std::to_string(index) + " of layer " +
                                   std::to_string(m_sig.layer.read()) + " at cycle " +
                                   std::to_string(now_cycle()) + ": " + dbl_controller.debug_state() +
                                   compaction_network.debug_state() + pe_array.debug_state());
        seen = progress;
    }
    tile_done.pop();
    return now_cycle() - c0;
}

void SwpuChip::collect_unit_counters(Counters& k) {
    k += dbl_controller.take_counters();
    k += compaction_network.take_counters();
    k += pe_array.take_counters();
    k += weight_buffer.take_counters();
    k += activation_buffer.take_counters();
    k += output_buffer.take_counters();
}

void SwpuChip::wait_cycles(int64_t n) {
    if (n > 0) sc_core::wait(m_period * double(n));
}

bool SwpuChip::ticking(int64_t from) const {
    if (!m_sim.time_skip) return true;
    if (m_tick_end < 0) return false;
    return from <= m_tick_end;  // everything before the window's end ticks: exact signals there
}

void SwpuChip::set_block(int phase, int layer, int state) {
    m_sig.phase.write(phase);
    m_sig.layer.write(layer);
    m_sig.ctrl_state.write(state);
}

LayerPassResult SwpuChip::run_pass(const Layer& layer, const LayerWork& work, Pass pass, int batch,
                                   const std::vector<int>& order, LayerValues* values) {
    LayerPassResult res;
    res.layer = layer.name;
    res.op = to_string(layer.op);
    res.pass = pass;
    res.iteration = m_iteration;
    res.start_cycle = now_cycle();
    Counters& k = res.c;
    PassPlan plan(m_cfg, layer, work, pass, batch, order, values);
    // Fast engine: the step model over the units' combinational logic; cycle engine: the units run.
    std::unique_ptr<FastEngine> fast;
    if (m_sim.cycle_engine()) dbl_controller.configure(&plan);
    else fast = std::make_unique<FastEngine>(plan, dbl_controller, compaction_network, pe_array);
    res.note = plan.tiling_note();
    k.dense_macs = plan.dense_macs();
    const int phase = pass == Pass::FF ? 1 : pass == Pass::BP ? 2 : 3;
    const int layer_index = work.layer;
    const auto& tiles = plan.tiles();
    const int64_t dram_tx0 = dram.transactions();
    std::vector<uint64_t> ticket(tiles.size(), 0), reload_ticket(tiles.size(), 0), store_ticket(tiles.size(), 0);
    // Functional mode on the cycle engine: the DMA moves the bytes of the pass's DRAM image into the
    // buffers, the units compute on their decoded contents, results leave as bytes and are read
    // back. The fast engine and fp8 operands (no FP8 value format) keep reading the layer values.
    const bool carry_bytes = values && m_sim.cycle_engine() && m_cfg.operand_bits() == 16;
    std::unique_ptr<DramFormat> format;
    OnChipValues onchip;
    PassDramMap map;
    std::vector<std::vector<uint8_t>> drained(carry_bytes ? tiles.size() : 0);  // the output buffer's store streams
    const int halves = m_cfg.dma.double_buffering ? 2 : 1;
    if (carry_bytes) {
        format = std::make_unique<DramFormat>(plan);
        preload_image(*format, tiles, *values, map);
        format->init_buffers(onchip);
        plan.read_buffers(&onchip);
    }
    // The buffer storage tile i's load lands in: source rows then WG gradients in the activation
    // buffer, weights in the weight buffer, reloaded partials in the output buffer.
    auto landing = [&](size_t i, uint8_t*& src, uint8_t*& wt, uint8_t*& gr, uint8_t*& part) {
        const LoadParts& lp = map.load_parts[i];
        const int h = int(i % size_t(halves));
        src = activation_buffer.half_storage(h, lp.source + lp.grad);
        gr = src + lp.source;
        wt = weight_buffer.half_storage(h, lp.weight);
        part = output_buffer.half_storage(h, lp.partial);
    };
    // A tile's load, prefetched; WG's reloaded partial gradients are not part of it (reload below).
    auto load = [&](size_t i) {
        const int64_t bytes = tiles[i].load_bytes - tiles[i].partial_bytes;
        if (bytes > 0) {
            if (carry_bytes) {
                uint8_t *src, *wt, *gr, *part;
                landing(i, src, wt, gr, part);
                const LoadParts& lp = map.load_parts[i];
                ticket[i] = dma.submit(bytes, false, map.load_address[i], {{src, lp.source}, {wt, lp.weight}, {gr, lp.grad}});
            } else {
                ticket[i] = dma.submit(bytes, false);
            }
        }
        k.dram_read_bytes += tiles[i].load_bytes;
    };
    // WG with spilled partial gradients: tile i reads back what the previous tile (the cluster's
    // previous band) stored, so the read waits until that store is in DRAM (read after write).
    auto reload = [&](size_t i) {
        const Tile& t = tiles[i];
        if (i == 0 || tiles[i - 1].cluster != t.cluster || tiles[i - 1].store_bytes != t.partial_bytes)
            throw std::logic_error("tile " + std::to_string(i) + " reloads partial gradients no previous band stored");
        dma.wait_for(store_ticket[i - 1], true);
        if (carry_bytes) {
            uint8_t *src, *wt, *gr, *part;
            landing(i, src, wt, gr, part);
            reload_ticket[i] = dma.submit(t.partial_bytes, false, map.store_address[i - 1], {{part, t.partial_bytes}});
        } else {
            reload_ticket[i] = dma.submit(t.partial_bytes, false);
        }
    };
    if (!tiles.empty()) load(0);
    Ticker ticker(*this);
    for (size_t i = 0; i < tiles.size(); ++i) {
        const Tile& t = tiles[i];
        if (m_cfg.dma.double_buffering && i + 1 < tiles.size()) load(i + 1);
        set_block(phase, layer_index, 1);
        const int64_t t0 = now_cycle();
        if (t.partial_bytes > 0) {
            m_sig.stall.write(true);
            reload(i);
        }
        for (const uint64_t tk : {ticket[i], reload_ticket[i]})
            if (tk) {
                m_sig.stall.write(!dma.complete(tk, false));
                dma.wait_for(tk, false);
            }
        m_sig.stall.write(false);
        k.stall_dram_cycles += now_cycle() - t0;
        if (carry_bytes && t.load_bytes > 0) {  // the buffers' new contents, decoded for the units
            uint8_t *src, *wt, *gr, *part;
            landing(i, src, wt, gr, part);
            format->decode_load(t, src, wt, gr, onchip);
            if (t.partial_bytes > 0) format->decode_partials(t, part, onchip);
        }
        k.wbuf_writes += t.wbuf_fill_accesses;
        k.abuf_writes += t.abuf_fill_accesses;
        set_block(phase, layer_index, 2);
        const int64_t c0 = now_cycle();
        if (m_sim.cycle_engine()) {
            run_tile_clocked(plan, t, int(i));
        } else if (ticking(c0)) {
            ticker.cycles = 0;
            const int64_t cyc = fast->run_tile(t, k, &ticker);
            if (cyc != ticker.cycles) throw std::logic_error("ticking mode and the step costs disagree");
            m_sig.lanes_valid.write(0);
            m_sig.groups_busy.write(0);
            m_sig.segments_busy.write(0);
            wait_cycles(fast->tile_wall() - cyc);  // the datapath's fill, drain and stalls around the compute
        } else {
            fast->run_tile(t, k, nullptr);
            wait_cycles(fast->tile_wall());  // its compute cycles plus the datapath's fill, drain and stalls
        }
        if (!m_cfg.dma.double_buffering && i + 1 < tiles.size()) load(i + 1);
        if (t.store_bytes > 0) {
            if (carry_bytes) {
                std::vector<uint8_t>& out = drained[i];
                format->encode_store(t, onchip, out);
                if (int64_t(out.size()) != t.store_bytes)
                    throw std::logic_error("DRAM format: tile " + std::to_string(i) + " stores " + std::to_string(out.size()) +
                                           " bytes, the plan counts " + std::to_string(t.store_bytes));
                store_ticket[i] = dma.submit(t.store_bytes, true, map.store_address[i], {{out.data(), t.store_bytes}});
            } else {
                store_ticket[i] = dma.submit(t.store_bytes, true);
            }
            k.dram_write_bytes += t.store_bytes;
            k.obuf_reads += t.obuf_drain_accesses;
        }
        m_work_done += 1;
    }
    set_block(phase, layer_index, 3);
    const int64_t d0 = now_cycle();
    dma.drain();
    k.stall_dram_cycles += now_cycle() - d0;
    k.dram_transactions += dram.transactions() - dram_tx0;
    if (carry_bytes) read_back(*format, tiles, map, onchip, pass, *values);
    if (m_sim.cycle_engine()) collect_unit_counters(k);
    k.cycles = now_cycle() - res.start_cycle;
    set_block(0, -1, 0);
    return res;
}

void SwpuChip::preload_image(const DramFormat& format, const std::vector<Tile>& tiles, const LayerValues& values,
                             PassDramMap& map) {
    // The pass's DRAM image: each tile's load stream contiguous at its own address (data several
    // tiles load is stored once per tile), then room for each tile's store stream. Streams start
    // on a burst boundary.
    const uint64_t align = uint64_t(std::max(1, m_cfg.dram.burst_bytes));
    auto aligned = [&](uint64_t a) { return (a + align - 1) / align * align; };
    map.load_address.assign(tiles.size(), 0);
    map.store_address.assign(tiles.size(), 0);
    map.load_parts.assign(tiles.size(), LoadParts{});
    uint64_t at = 0;
    std::vector<uint8_t> stream;
    for (size_t i = 0; i < tiles.size(); ++i) {
        if (tiles[i].load_bytes == 0) continue;
        stream.clear();
        map.load_parts[i] = format.encode_load(tiles[i], values, stream);
        if (int64_t(stream.size()) != tiles[i].load_bytes || map.load_parts[i].partial != tiles[i].partial_bytes)
            throw std::logic_error("DRAM format: tile " + std::to_string(i) + " loads " + std::to_string(stream.size()) +
                                   " bytes, the plan counts " + std::to_string(tiles[i].load_bytes));
        // The reloaded partial gradients (the stream's last part) are read from the previous
        // band's store stream, not from the image.
        const int64_t image = tiles[i].load_bytes - tiles[i].partial_bytes;
        map.load_address[i] = at;
        if (image > 0) dma.debug_access(at, stream.data(), image, true);
        at = aligned(at + uint64_t(image));
    }
    for (size_t i = 0; i < tiles.size(); ++i) {
        map.store_address[i] = at;
        at = aligned(at + uint64_t(tiles[i].store_bytes));
    }
}

void SwpuChip::read_back(const DramFormat& format, const std::vector<Tile>& tiles, const PassDramMap& map,
                         const OnChipValues& onchip, Pass pass, LayerValues& values) {
    // The testbench reads the pass's results from DRAM, in tile order (a later store of the same
    // results, WG's final gradients after a spill, overwrites an earlier one).
    std::vector<uint8_t> bytes;
    values.stored.clear();
    for (size_t i = 0; i < tiles.size(); ++i) {
        if (tiles[i].store_bytes == 0) continue;
        bytes.resize(size_t(tiles[i].store_bytes));
        dma.debug_access(map.store_address[i], bytes.data(), tiles[i].store_bytes, false);
        format.decode_store(tiles[i], bytes.data(), values);
    }
    // Fused SGD: the final weight gradients never leave the chip; the testbench reads them from the
    // output buffer's contents. FF/BP: DRAM holds FP16 results; the FP32 sums as accumulated (what
    // the dump's unrounded tensors and the FP32 error bound refer to) are read from the output
    // buffer's contents too.
    if (pass == Pass::WG && m_cfg.vector_unit.fuse_sgd) values.grad_w = onchip.grad_w;
    if (pass == Pass::FF) values.out = onchip.result;
    if (pass == Pass::BP) values.grad_in = onchip.result;
}

LayerPassResult SwpuChip::run_vector(const VectorWork& vw, const std::string& layer, Pass pass) {
    LayerPassResult res;
    res.layer = layer;
    res.op = vw.what;
    res.pass = pass;
    res.iteration = m_iteration;
    res.start_cycle = now_cycle();
    Counters& k = res.c;
    const int64_t tx0 = dram.transactions();
    set_block(4, -1, 2);
    // Operands stream in and results stream out while the lanes compute.
    if (vw.read_bytes > 0) dma.submit(vw.read_bytes, false);
    if (vw.write_bytes > 0) dma.submit(vw.write_bytes, true);
    if (m_sim.cycle_engine() && vw.ops > 0) {
        vector_cmd.push(vw);
        while (!vector_done.can_pop()) sc_core::wait(vector_done.data_written_event());
        vector_done.pop();
        const Counters u = vector_unit.take_counters();
        k.vector_cycles = u.vector_cycles;
        k.vector_ops = u.vector_ops;
    } else {
        wait_cycles(vw.compute_cycles);
        k.vector_cycles = vw.compute_cycles;
        k.vector_ops = vw.ops;
    }
    const int64_t d0 = now_cycle();
    set_block(4, -1, 3);
    dma.drain();
    k.stall_dram_cycles = now_cycle() - d0;
    k.dram_read_bytes = vw.read_bytes;
    k.dram_write_bytes = vw.write_bytes;
    k.dram_transactions = dram.transactions() - tx0;
    k.cycles = now_cycle() - res.start_cycle;
    set_block(0, -1, 0);
    return res;
}

LayerPassResult SwpuChip::run_reorder(const Layer& layer, const WeightMask& mask, Pass pass, std::vector<int>& order) {
    LayerPassResult res;
    res.layer = layer.name;
    res.op = pass == Pass::BP ? "reorder_channels" : "reorder_filters";
    res.pass = Pass::Other;
    res.iteration = m_iteration;
    res.start_cycle = now_cycle();
    const LineMaskSet masks = line_masks_for(mask, pass);
    if (!reorder_unit.enabled()) {
        order.resize(masks.items);
        for (int i = 0; i < masks.items; ++i) order[i] = i;
        res.note = "reorder unit disabled: natural order";
        return res;
    }
    set_block(5, -1, 2);
    m_sig.reorder_busy.write(true);
    // The line masks come from DRAM (written there by the mask update).
    const int64_t bytes = (int64_t(masks.items) * masks.bits + 7) / 8;
    const int64_t tx0 = dram.transactions();
    const uint64_t t = dma.submit(bytes, false);
    dma.wait_for(t, false);
    const int64_t after_load = now_cycle();
    ReorderResult rr;
    if (m_sim.cycle_engine() && masks.items > m_cfg.pe_array.groups) {
        reorder_cmd.push(ReorderCmd{&masks, m_cfg.pe_array.groups});
        while (!reorder_done.can_pop()) sc_core::wait(reorder_done.data_written_event());
        reorder_done.pop();
        rr = reorder_unit.last_result();
    } else {
        rr = reorder_unit.cluster(masks, m_cfg.pe_array.groups);
        wait_cycles(rr.cycles);
    }
    order = rr.order;
    m_sig.reorder_busy.write(false);
    res.c.stall_dram_cycles = after_load - res.start_cycle;
    res.c.reorder_cycles = rr.cycles;
    res.c.hamming_ops = rr.hamming_ops;
    res.c.dram_read_bytes = bytes;
    res.c.dram_transactions = dram.transactions() - tx0;
    res.c.cycles = now_cycle() - res.start_cycle;
    set_block(0, -1, 0);
    return res;
}

void SwpuChip::run_iteration(const Trace& tr, const Iteration& it, int iter_no) {
    m_iteration = iter_no;
    const Network& net = tr.net;
    const int N = tr.batch;
    const std::vector<int> wl = net.weighted_layers();
    if (m_order_fw.size() != wl.size()) {
        m_order_fw.assign(wl.size(), {});
        m_order_bp.assign(wl.size(), {});
    }
    std::vector<int> slot_of(net.layers.size(), -1);
    for (size_t i = 0; i < wl.size(); ++i) slot_of[wl[i]] = int(i);
    // Functional mode: values drawn to match this iteration's bitmaps.
    std::vector<LayerValues> values;
    if (m_sim.functional()) {
        values.resize(wl.size());
        for (size_t i = 0; i < wl.size(); ++i)
            values[i] = make_layer_values(net.layers[wl[i]], it.layers[i], N, m_sim.seed * 7919 + iter_no * 131 + i);
    }
    auto vals = [&](size_t i) -> LayerValues* { return values.empty() ? nullptr : &values[i]; };

    // Dynamic pruning: new masks -> the vector unit recomputes them (a mask-update iteration), and
    // the reorder unit re-clusters every layer whose masks differ from the ones it last clustered
    // (a recorded trace may sample iterations between which the masks changed).
    if (it.mask_update) {
        int64_t weights = 0;
        for (int li : wl) weights += net.layers[li].params();
        m_results.push_back(run_vector(vector_unit.mask_update_work(weights), "all", Pass::Other));
    }
    if (m_clustered_hash.size() != wl.size()) m_clustered_hash.assign(wl.size(), 0);
    for (size_t i = 0; i < wl.size(); ++i) {
        uint64_t h = 1469598103934665603ull;  // FNV-1a over the mask rows
        for (uint64_t row : it.layers[i].mask.rows) h = (h ^ row) * 1099511628211ull;
        if (!m_order_fw[i].empty() && h == m_clustered_hash[i]) continue;
        m_clustered_hash[i] = h;
        const Layer& l = net.layers[wl[i]];
        m_results.push_back(run_reorder(l, it.layers[i].mask, Pass::FF, m_order_fw[i]));
        // Filter-oriented BP keeps FF's clusters: no channel clustering.
        if (!m_cfg.bp_filter()) m_results.push_back(run_reorder(l, it.layers[i].mask, Pass::BP, m_order_bp[i]));
    }
    // Forward.
    for (size_t li = 0; li < net.layers.size(); ++li) {
        const Layer& l = net.layers[li];
        if (l.weighted()) {
            const int i = slot_of[li];
            m_results.push_back(run_pass(l, it.layers[i], Pass::FF, N, m_order_fw[i], vals(i)));
            dump_pass(it.index, l, it.layers[i], Pass::FF, N, vals(i));
        } else {
            m_results.push_back(run_vector(vector_unit.layer_work(l, Pass::FF, N), l.name, Pass::FF));
        }
        if (m_progress) m_progress(double(m_work_done) / double(std::max<int64_t>(1, m_work_total)));
    }
    // Backward: the loss first, then layers in reverse; a conv computes WG then BP.
    for (size_t r = net.layers.size(); r-- > 0;) {
        const Layer& l = net.layers[r];
        if (l.weighted()) {
            const int i = slot_of[r];
            m_results.push_back(run_pass(l, it.layers[i], Pass::WG, N, m_order_fw[i], vals(i)));
            dump_pass(it.index, l, it.layers[i], Pass::WG, N, vals(i));
            if (m_cfg.vector_unit.fuse_sgd)  // the update in the WG epilogue, while dW is on chip
                m_results.push_back(run_vector(vector_unit.sgd_work(it.layers[i].mask.kept_count()), l.name, Pass::Other));
            const bool first_layer = !l.inputs.empty() && l.inputs[0] == -1;
            if (first_layer) {
                LayerPassResult skip;
                skip.iteration = iter_no;
                skip.layer = l.name;
                skip.op = to_string(l.op);
                skip.pass = Pass::BP;
                skip.modeled = true;
                skip.note = "skipped: no gradient is needed for the network input";
                skip.start_cycle = now_cycle();
                m_results.push_back(skip);
            } else {
                const std::vector<int>& bp_order = m_cfg.bp_filter() ? m_order_fw[i] : m_order_bp[i];
                m_results.push_back(run_pass(l, it.layers[i], Pass::BP, N, bp_order, vals(i)));
                dump_pass(it.index, l, it.layers[i], Pass::BP, N, vals(i));
            }
        } else {
            m_results.push_back(run_vector(vector_unit.layer_work(l, Pass::BP, N), l.name, Pass::BP));
        }
        if (m_progress) m_progress(double(m_work_done) / double(std::max<int64_t>(1, m_work_total)));
    }
    // Weight update of the kept weights (unless each ran in its WG epilogue).
    for (size_t i = 0; i < wl.size() && !m_cfg.vector_unit.fuse_sgd; ++i) {
        const Layer& l = net.layers[wl[i]];
        LayerPassResult u = run_vector(vector_unit.sgd_work(it.layers[i].mask.kept_count()), l.name, Pass::Other);
        m_results.push_back(u);
    }
}

void SwpuChip::dump_pass(int step, const Layer& l, const LayerWork& w, Pass pass, int batch, const LayerValues* v) {
    if (m_dump && v && m_dump->wants(m_iteration, l.name, pass)) m_dump->record(m_iteration, step, l, w, pass, batch, *v);
}

void SwpuChip::controller() {
    set_block(0, -1, 0);
    if (clock && m_trace_fifos) m_monitor_start.notify(sc_core::SC_ZERO_TIME);
    if (clock) {  // reset: the units clear their state on the first clock edge
        reset.write(true);
        wait_cycles(1);
        reset.write(false);
    }
    if (m_trace) {
        // Work estimate for the progress line: tiles are not known yet, count passes instead.
        m_work_total = 0;
        for (size_t i = 0; i < m_trace->iterations.size(); ++i) m_work_total += 3 * m_trace->net.weighted_layers().size();
        for (size_t i = 0; i < m_trace->iterations.size(); ++i) run_iteration(*m_trace, m_trace->iterations[i], int(i));
    } else if (m_single_layer) {
        std::vector<int> order;
        if (m_single_cluster) {
            const bool channels = m_single_pass == Pass::BP && !m_cfg.bp_filter();
            LayerPassResult r = run_reorder(*m_single_layer, m_single_work->mask, channels ? Pass::BP : Pass::FF, order);
            m_results.push_back(r);
        } else {
            const int items = m_single_pass == Pass::BP && !m_cfg.bp_filter() ? m_single_layer->C : m_single_layer->K;
            order.resize(items);
            for (int i = 0; i < items; ++i) order[i] = i;
        }
        m_results.push_back(run_pass(*m_single_layer, *m_single_work, m_single_pass, m_single_batch, order,
                                     m_single_values));
        dump_pass(m_single_step, *m_single_layer, *m_single_work, m_single_pass, m_single_batch, m_single_values);
    }
    m_total_cycles = now_cycle();
    m_finished = true;
    // With a clock the simulation never runs out of events: stop it. Without one (fast engine), no
    // event is left once the controller is done and the DMA idle, and sc_start returns by itself.
    if (clock) sc_core::sc_stop();
}

LayerValues make_layer_values(const Layer& l, const LayerWork& work, int batch, uint64_t seed) {
    LayerValues v;
    std::mt19937_64 rng(seed);
    auto val = [&]() {
        // Uniform in [-1, 1) away from zero, rounded to FP16.
        const double u = double(rng() >> 11) * (1.0 / 9007199254740992.0);
        float x = float(u * 2.0 - 1.0);
        if (x == 0.0f) x = 0.5f;
        return round_to_fp16(x);
    };
    v.weight.assign(size_t(l.K) * l.C * l.R * l.S, 0.0f);
    for (int k = 0; k < l.K; ++k)
        for (int c = 0; c < l.C; ++c)
            for (int r = 0; r < l.R; ++r)
                for (int s = 0; s < l.S; ++s) {
                    const float x = val();
                    v.weight[((size_t(k) * l.C + c) * l.R + r) * l.S + s] = work.mask.kept(k, c, r, s) ? x : 0.0f;
                }
    v.input.assign(size_t(batch) * l.C * l.H * l.W, 0.0f);
    for (int n = 0; n < batch; ++n)
        for (int c = 0; c < l.C; ++c)
            for (int h = 0; h < l.H; ++h)
                for (int w = 0; w < l.W; ++w) {
                    const float x = val();
                    if (work.input_nonzero.get(n, c, h, w)) v.input[((size_t(n) * l.C + c) * l.H + h) * l.W + w] = x;
                }
    v.grad_out.assign(size_t(batch) * l.K * l.P * l.Q, 0.0f);
    for (int n = 0; n < batch; ++n)
        for (int k = 0; k < l.K; ++k)
            for (int p = 0; p < l.P; ++p)
                for (int q = 0; q < l.Q; ++q) {
                    const float x = val();
                    if (work.grad_nonzero.get(n, k, p, q)) v.grad_out[((size_t(n) * l.K + k) * l.P + p) * l.Q + q] = x;
                }
    // A version 2 trace's recorded values replace the random ones (pruned weights stay zero).
    if (const LayerTensors* t = work.tensors.get()) {
        for (size_t i = 0; i < t->weight.size(); ++i)
            v.weight[i] = work.mask.rows[i / size_t(l.S)] >> (i % size_t(l.S)) & 1u ? fp16_bits_to_float(t->weight[i]) : 0.0f;
        for (size_t i = 0; i < t->input.size(); ++i) v.input[i] = fp16_bits_to_float(t->input[i]);
        for (size_t i = 0; i < t->grad_out.size(); ++i) v.grad_out[i] = fp16_bits_to_float(t->grad_out[i]);
    }
    v.out.assign(size_t(batch) * l.K * l.P * l.Q, 0.0f);
    v.grad_in.assign(size_t(batch) * l.C * l.H * l.W, 0.0f);
    v.grad_w.assign(size_t(l.K) * l.C * l.R * l.S, 0.0f);
    return v;
}

}  // namespace swpu
