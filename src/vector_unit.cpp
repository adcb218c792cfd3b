#include "swpu/vector_unit.hpp"

#include "swpu/stats.hpp"

namespace swpu {

VectorUnit::VectorUnit(sc_core::sc_module_name name, const ChipConfig& cfg)
    : sc_core::sc_module(name), clk("clk"), reset("reset"), cmd_in("cmd_in"), done_out("done_out"), m_cfg(cfg),
      m_lanes(cfg.vector_unit.lanes) {
    SC_HAS_PROCESS(VectorUnit);
    SC_METHOD(tick);
    sensitive << clk.pos();
    dont_initialize();
}

Counters VectorUnit::take_counters() {
    Counters k = m_k;
    m_k = Counters{};
    return k;
}

void VectorUnit::tick() {
    if (m_woken) {
        m_woken = false;
        return;
    }
    if (reset.read()) {
        m_ops_left = 0;
        busy.write(false);
        return;
    }
    if (m_ops_left == 0) {
        if (!cmd_in->can_pop()) {
            if (busy.read()) busy.write(false);
            m_woken = true;
            next_trigger(cmd_in->data_written_event());
            return;
        }
        const VectorWork w = cmd_in->pop();
        m_ops_left = w.ops;
        m_k.vector_ops += w.ops;
        if (!busy.read()) busy.write(true);
    }
    // One cycle: `lanes` element-ops.
    ++m_k.vector_cycles;
    m_ops_left = m_ops_left > m_lanes ? m_ops_left - m_lanes : 0;
    if (m_ops_left == 0) done_out->push(1);
}

VectorWork VectorUnit::finish(VectorWork w) const {
    w.compute_cycles = (w.ops + m_lanes - 1) / m_lanes;
    return w;
}

VectorWork VectorUnit::layer_work(const Layer& l, Pass pass, int batch) const {
    const auto& v = m_cfg.vector_unit;
    VectorWork w;
    const bool fwd = pass == Pass::FF;
    const int64_t out = l.out_elems() * batch;
    const int64_t in = l.in_elems() * batch;
    switch (l.op) {
        case LayerOp::BatchNorm:
            w.what = fwd ? "bn_forward" : "bn_backward";
            w.elements = out;
            w.ops = out * (fwd ? v.bn_forward_ops : v.bn_backward_ops);
            // FF: read x, write y (FP16). BP: read dy and x, write dx.
            w.read_bytes = out * (fwd ? 2 : 4);
            w.write_bytes = out * 2;
            break;
        case LayerOp::ReLU:
            w.what = fwd ? "relu_forward" : "relu_backward";
            w.elements = out;
            w.ops = out * v.relu_ops;
            // FF: read x, write y and its non-zero bitmap. BP: read dy and the bitmap, write dx.
            w.read_bytes = out * 2 + (fwd ? 0 : (out + 7) / 8);
            w.write_bytes = out * 2 + (fwd ? (out + 7) / 8 : 0);
            break;
        case LayerOp::MaxPool:
        case LayerOp::AvgPool: {
            const bool maxp = l.op == LayerOp::MaxPool;
            w.what = std::string(maxp ? "maxpool" : "avgpool") + (fwd ? "_forward" : "_backward");
            const int64_t window = int64_t(l.R) * l.S;
            w.elements = out;
            w.ops = out * window * v.pool_ops;
            w.read_bytes = fwd ? in * 2 : out * 2 + (maxp ? (out * 4 + 7) / 8 : 0);
            w.write_bytes = fwd ? out * 2 + (maxp ? (out * 4 + 7) / 8 : 0) : in * 2;
            break;
        }
        case LayerOp::Add:
            w.what = fwd ? "add_forward" : "add_backward";
            w.elements = out;
            w.ops = out * v.add_ops;
            // FF: two operands in, one out. BP: the gradient fans out to both branches.
            w.read_bytes = fwd ? out * 4 : out * 2;
            w.write_bytes = fwd ? out * 2 : out * 4;
            break;
        case LayerOp::Loss:
            w.what = fwd ? "loss_forward" : "loss_backward";
            w.elements = in;
            w.ops = in * v.loss_ops;
            w.read_bytes = in * 2;
            w.write_bytes = fwd ? batch * 4 : in * 2;
            break;
        default:
            w.what = "none";
            break;
    }
    if (v.fuse_bn_relu && (l.op == LayerOp::BatchNorm || l.op == LayerOp::ReLU)) {
        // Fused into the conv: the tensor is normalized and rectified on its way between the conv's
        // write-back and the next layer's load; no DRAM round trip of its own (ops unchanged).
        w.what += "_fused";
        w.read_bytes = w.write_bytes = 0;
    }
    return finish(w);
}

VectorWork VectorUnit::sgd_work(int64_t kept) const {
    VectorWork w;
    w.what = "sgd_update";
    w.elements = kept;
    w.ops = kept * m_cfg.vector_unit.sgd_ops;
    w.read_bytes = kept * (2 + 4 + 4);  // weight FP16, gradient FP32, momentum FP32
    w.write_bytes = kept * (2 + 4);     // weight, momentum
    if (m_cfg.vector_unit.fuse_sgd) {   // in the WG epilogue: the gradient is read on chip
        w.what += "_fused";
        w.read_bytes = kept * (2 + 4);
    }
    return finish(w);
}

VectorWork VectorUnit::mask_update_work(int64_t weights) const {
    VectorWork w;
    w.what = "mask_update";
    w.elements = weights;
    w.ops = weights * m_cfg.vector_unit.mask_update_ops;
    w.read_bytes = weights * 2;
    w.write_bytes = (weights + 7) / 8;  // new mask bits (upper bound: element granularity)
    return finish(w);
}

}  // namespace swpu
