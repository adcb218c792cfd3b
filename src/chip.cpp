#include "swpu/chip.hpp"

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

SwpuChip::SwpuChip(sc_core::sc_module_name name, const ChipConfig& cfg)
    : sc_core::sc_module(name),
      dram("dram", cfg),
      dma("dma", cfg),
      weight_buffer("weight_buffer", cfg.buffers.weight, cfg.dma.double_buffering),
      activation_buffer("activation_buffer", cfg.buffers.activation, cfg.dma.double_buffering),
      output_buffer("output_buffer", cfg.buffers.output, cfg.dma.double_buffering),
      reorder_unit("reorder_unit", cfg),
      dbl_controller("dbl_controller", cfg),
      compaction_network("compaction_network", cfg),
      pe_array("pe_array", cfg),
      vector_unit("vector_unit", cfg),
      m_cfg(cfg) {
    // Time resolution is SystemC's default 1 ps: the period is a whole number of picoseconds.
    m_period = sc_time::from_value(uint64_t(std::llround(cfg.clock_period_ns() * 1000.0)));
    dma.rd_socket.bind(dram.socket);
    dma.wr_socket.bind(dram.socket);
    SC_HAS_PROCESS(SwpuChip);
    SC_THREAD(controller);
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

void SwpuChip::wait_cycles(int64_t n) {
    if (n > 0) sc_core::wait(m_period * double(n));
}

bool SwpuChip::ticking(int64_t from) const {
    if (!m_cfg.simulation.time_skip) return true;
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
    PassEngine eng(m_cfg, layer, work, pass, batch, order, dbl_controller, compaction_network, pe_array, values);
    res.note = eng.tiling_note();
    k.dense_macs = eng.dense_macs();
    const int phase = pass == Pass::FF ? 1 : pass == Pass::BP ? 2 : 3;
    const int layer_index = work.layer;
    const auto& tiles = eng.tiles();
    const int64_t dram_tx0 = dram.transactions();
    std::vector<uint64_t> ticket(tiles.size(), 0);
    auto load = [&](size_t i) {
        if (tiles[i].load_bytes > 0) ticket[i] = dma.submit(tiles[i].load_bytes, false);
        k.dram_read_bytes += tiles[i].load_bytes;
    };
    if (!tiles.empty()) load(0);
    Ticker ticker(*this);
    for (size_t i = 0; i < tiles.size(); ++i) {
        const Tile& t = tiles[i];
        if (m_cfg.dma.double_buffering && i + 1 < tiles.size()) load(i + 1);
        set_block(phase, layer_index, 1);
        const int64_t t0 = now_cycle();
        if (ticket[i]) {
            m_sig.stall.write(!dma.complete(ticket[i], false));
            dma.wait_for(ticket[i], false);
        }
        m_sig.stall.write(false);
        k.stall_dram_cycles += now_cycle() - t0;
        k.wbuf_writes += t.wbuf_fill_accesses;
        k.abuf_writes += t.abuf_fill_accesses;
        set_block(phase, layer_index, 2);
        const int64_t c0 = now_cycle();
        if (ticking(c0)) {
            ticker.cycles = 0;
            const int64_t cyc = eng.run_tile(t, k, &ticker);
            if (cyc != ticker.cycles) throw std::logic_error("ticking mode and the step costs disagree");
            m_sig.lanes_valid.write(0);
            m_sig.groups_busy.write(0);
            m_sig.segments_busy.write(0);
        } else {
            wait_cycles(eng.run_tile(t, k, nullptr));
        }
        if (!m_cfg.dma.double_buffering && i + 1 < tiles.size()) load(i + 1);
        if (t.store_bytes > 0) {
            dma.submit(t.store_bytes, true);
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
    k.cycles = now_cycle() - res.start_cycle;
    set_block(0, -1, 0);
    return res;
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
    wait_cycles(vw.compute_cycles);
    const int64_t d0 = now_cycle();
    set_block(4, -1, 3);
    dma.drain();
    k.stall_dram_cycles = now_cycle() - d0;
    k.vector_cycles = vw.compute_cycles;
    k.vector_ops = vw.ops;
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
    ReorderResult rr = reorder_unit.cluster(masks, m_cfg.pe_array.groups);
    order = rr.order;
    wait_cycles(rr.cycles);
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
    if (m_cfg.functional()) {
        values.resize(wl.size());
        for (size_t i = 0; i < wl.size(); ++i)
            values[i] = make_layer_values(net.layers[wl[i]], it.layers[i], N, m_cfg.simulation.seed * 7919 + iter_no * 131 + i);
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
        m_results.push_back(run_reorder(l, it.layers[i].mask, Pass::BP, m_order_bp[i]));
    }
    // Forward.
    for (size_t li = 0; li < net.layers.size(); ++li) {
        const Layer& l = net.layers[li];
        if (l.weighted()) {
            const int i = slot_of[li];
            m_results.push_back(run_pass(l, it.layers[i], Pass::FF, N, m_order_fw[i], vals(i)));
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
                m_results.push_back(run_pass(l, it.layers[i], Pass::BP, N, m_order_bp[i], vals(i)));
            }
        } else {
            m_results.push_back(run_vector(vector_unit.layer_work(l, Pass::BP, N), l.name, Pass::BP));
        }
        if (m_progress) m_progress(double(m_work_done) / double(std::max<int64_t>(1, m_work_total)));
    }
    // Weight update of the kept weights.
    for (size_t i = 0; i < wl.size(); ++i) {
        const Layer& l = net.layers[wl[i]];
        LayerPassResult u = run_vector(vector_unit.sgd_work(it.layers[i].mask.kept_count()), l.name, Pass::Other);
        m_results.push_back(u);
    }
}

void SwpuChip::controller() {
    set_block(0, -1, 0);
    if (m_trace) {
        // Work estimate for the progress line: tiles are not known yet, count passes instead.
        m_work_total = 0;
        for (size_t i = 0; i < m_trace->iterations.size(); ++i) m_work_total += 3 * m_trace->net.weighted_layers().size();
        for (size_t i = 0; i < m_trace->iterations.size(); ++i) run_iteration(*m_trace, m_trace->iterations[i], int(i));
    } else if (m_single_layer) {
        std::vector<int> order;
        if (m_single_cluster) {
            LayerPassResult r = run_reorder(*m_single_layer, m_single_work->mask,
                                            m_single_pass == Pass::BP ? Pass::BP : Pass::FF, order);
            m_results.push_back(r);
        } else {
            const int items = m_single_pass == Pass::BP ? m_single_layer->C : m_single_layer->K;
            order.resize(items);
            for (int i = 0; i < items; ++i) order[i] = i;
        }
        m_results.push_back(run_pass(*m_single_layer, *m_single_work, m_single_pass, m_single_batch, order,
                                     m_single_values));
    }
    m_total_cycles = now_cycle();
    m_finished = true;
    // No sc_stop(): with the controller done and the DMA idle, no event is left and sc_start returns.
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
    v.out.assign(size_t(batch) * l.K * l.P * l.Q, 0.0f);
    v.grad_in.assign(size_t(batch) * l.C * l.H * l.W, 0.0f);
    v.grad_w.assign(size_t(l.K) * l.C * l.R * l.S, 0.0f);
    return v;
}

}  // namespace swpu
