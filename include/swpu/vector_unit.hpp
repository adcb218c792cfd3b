// Vector unit: the non-convolution work of training (BN, ReLU, pooling, residual add, loss, SGD
// update, mask update). `lanes` FP32 element-ops per cycle; operands stream from/to DRAM through
// the DMA, overlapped with the computation (the slower of the two sets the time).
#pragma once

#include <cstdint>
#include <string>

#include <systemc>

#include "swpu/channel.hpp"
#include "swpu/config.hpp"
#include "swpu/stats.hpp"
#include "swpu/workload.hpp"

namespace swpu {

struct VectorWork {
    std::string what;        // "bn_forward", "relu_backward", "sgd", ...
    int64_t elements = 0;
    int64_t ops = 0;         // element-ops
    int64_t read_bytes = 0;  // DRAM traffic
    int64_t write_bytes = 0;
    int64_t compute_cycles = 0;
};

// Clocked behaviour (cycle engine): on a command it works `lanes` element-ops per cycle,
// ceil(ops / lanes) cycles, and reports done in its last busy cycle. Its operands stream through the
// DMA meanwhile (the controller waits for both).
class VectorUnit : public sc_core::sc_module {
public:
    sc_core::sc_in<bool> clk;
    sc_core::sc_in<bool> reset;
    In<VectorWork> cmd_in;
    Out<int> done_out;
    sc_core::sc_signal<bool> busy{"busy"};

    VectorUnit(sc_core::sc_module_name name, const ChipConfig& cfg);
    Counters take_counters();

    // The work a non-weighted layer does in a pass (FF or BP) for a batch of `batch` images.
    VectorWork layer_work(const Layer& layer, Pass pass, int batch) const;
    // SGD with momentum over the kept weights of a layer (FP16 weights, FP32 gradient/momentum).
    VectorWork sgd_work(int64_t kept_weights) const;
    // Dynamic pruning's mask update: group L2 norms over all weights and a threshold compare.
    VectorWork mask_update_work(int64_t weights) const;

    int lanes() const { return m_lanes; }

private:
    void tick();
    VectorWork finish(VectorWork w) const;
    const ChipConfig& m_cfg;
    int m_lanes;
    int64_t m_ops_left = 0;
    bool m_woken = false;
    Counters m_k;
};

}  // namespace swpu
