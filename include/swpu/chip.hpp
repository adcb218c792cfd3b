// The SWPU chip: top-level SystemC module with the controller process that replays training
// iterations through the datapath, memories and vector unit.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <systemc>

#include "swpu/channel.hpp"
#include "swpu/compaction_network.hpp"
#include "swpu/config.hpp"
#include "swpu/dbl_controller.hpp"
#include "swpu/dram_format.hpp"
#include "swpu/memory.hpp"
#include "swpu/fast_engine.hpp"
#include "swpu/pass_plan.hpp"
#include "swpu/pe_array.hpp"
#include "swpu/reorder_unit.hpp"
#include "swpu/stats.hpp"
#include "swpu/tensor_dump.hpp"
#include "swpu/vector_unit.hpp"
#include "swpu/workload.hpp"

namespace swpu {

// Block-level signals (what the VCD shows). One value per clock cycle while ticking.
struct ChipSignals {
    sc_core::sc_signal<int> phase{"phase"};            // 0 idle, 1 FF, 2 BP, 3 WG, 4 vector, 5 reorder
    sc_core::sc_signal<int> layer{"layer"};            // index of the layer in the network (-1 none)
    sc_core::sc_signal<int> ctrl_state{"ctrl_state"};  // 0 idle, 1 wait-load, 2 compute, 3 drain
    sc_core::sc_signal<int> groups_busy{"groups_busy"};
    sc_core::sc_signal<int> lanes_valid{"lanes_valid"};
    sc_core::sc_signal<int> segments_busy{"segments_busy"};
    sc_core::sc_signal<bool> stall{"stall"};
    sc_core::sc_signal<bool> reorder_busy{"reorder_busy"};
};

// A signal the VCD writer records: its module scope, name and bit width.
struct TracedSignal {
    std::string scope, name;
    int width;
    const sc_core::sc_signal_in_if<int>* isig;
    const sc_core::sc_signal_in_if<bool>* bsig;
};

class SwpuChip : public sc_core::sc_module {
    // First: the units are built from them. The chip part of the run config, and how it is simulated.
    const ChipConfig& m_cfg;
    const SimulationParams m_sim;

public:
    SwpuChip(sc_core::sc_module_name name, const RunConfig& run);

    // Work to run when the simulation starts (set one before sc_start).
    void set_trace(const Trace* trace) { m_trace = trace; }
    // A single (layer, pass) of `work`, after clustering its masks when `cluster_first` (the CLI's
    // --layer/--pass, the unit and cycle tests, the benchmarks). Values: functional mode operands.
    void set_single(const Layer* layer, const LayerWork* work, Pass pass, int batch, LayerValues* values,
                    bool cluster_first = true);
    // Ticks every tile that starts before cycle `end`, regardless of time skipping, so the signals
    // are exact up to there (a VCD window ending at `end`).
    void tick_until(int64_t end) { m_tick_end = end; }
    void set_progress(std::function<void(double)> cb) { m_progress = std::move(cb); }
    // Functional mode: the operands and results of the selected passes go to `dump` (--dump-tensors).
    // `single_step`: the training step recorded for the single (layer, pass) run.
    void set_tensor_dump(TensorDump* dump, int single_step = 0) {
        m_dump = dump;
        m_single_step = single_step;
    }

    const std::vector<LayerPassResult>& results() const { return m_results; }
    int64_t total_cycles() const { return m_total_cycles; }
    bool finished() const { return m_finished; }
    const ChipConfig& config() const { return m_cfg; }
    sc_core::sc_time clock_period() const { return m_period; }
    ChipSignals& signals() { return m_sig; }
    // What the VCD shows: the controller's block-level state, and one scope per clocked unit with its
    // state (cycle engine) or the step model's per-cycle summary (fast engine).
    std::vector<TracedSignal> traced_signals();
    int64_t now_cycle() const { return int64_t(sc_core::sc_time_stamp().value() / m_period.value()); }

    // Sub-blocks.
    std::unique_ptr<sc_core::sc_clock> clock;  // cycle engine: the one clock at f(V)
    sc_core::sc_signal<bool> clock_off{"clock_off"};  // fast engine: the units' clock input, never toggling
    sc_core::sc_signal<bool> reset{"reset"};
    Dram dram;
    Dma dma;
    GlobalBuffer weight_buffer, activation_buffer, output_buffer;
    ReorderUnit reorder_unit;
    DblController dbl_controller;
    CompactionNetwork compaction_network;
    PeArray pe_array;
    VectorUnit vector_unit;

    // Channels between the datapath units (cycle engine), with the hardware's depths.
    Fifo<TileCmd> tile_cmd;
    Fifo<TileDone> tile_done;
    Fifo<BufRequest> line_req, weight_req, obuf_req;
    Fifo<BufResponse> line_resp, weight_resp, obuf_resp;
    Fifo<StepCmd> steps;
    Fifo<int> line_credits;
    Fifo<LanePacket> lane_packets;
    Fifo<int> group_release;  // decoupled groups: PE array -> routers (sets written back, RMWs served)
    Fifo<ReorderCmd> reorder_cmd;
    Fifo<int> reorder_done;
    Fifo<VectorWork> vector_cmd;
    Fifo<int> vector_done;

private:
    class Ticker;
    void controller();
    void run_iteration(const Trace& tr, const Iteration& it, int iter_no);
    LayerPassResult run_pass(const Layer& layer, const LayerWork& work, Pass pass, int batch,
                             const std::vector<int>& order, LayerValues* values);
    LayerPassResult run_vector(const VectorWork& vw, const std::string& layer, Pass pass);
    LayerPassResult run_reorder(const Layer& layer, const WeightMask& mask, Pass pass, std::vector<int>& order);
    void wait_cycles(int64_t n);
    void monitor_fifos();
    int64_t run_tile_clocked(const PassPlan& plan, const Tile& t, int index);
    void collect_unit_counters(Counters& k);
    void preload_image(const DramFormat& format, const std::vector<Tile>& tiles, const LayerValues& values,
                       PassDramMap& map);
    void read_back(const DramFormat& format, const std::vector<Tile>& tiles, const PassDramMap& map,
                   const OnChipValues& onchip, Pass pass, LayerValues& values);
    bool ticking(int64_t from) const;
    void set_block(int phase, int layer, int state);
    void dump_pass(int step, const Layer& l, const LayerWork& w, Pass pass, int batch, const LayerValues* v);

    sc_core::sc_time m_period;
    static constexpr int kTracedFifos = 5;
    sc_core::sc_signal<int> m_fifo_occupancy[kTracedFifos];
    bool m_trace_fifos = false;
    sc_core::sc_event m_monitor_start;
    ChipSignals m_sig;
    const Trace* m_trace = nullptr;
    const Layer* m_single_layer = nullptr;
    const LayerWork* m_single_work = nullptr;
    Pass m_single_pass = Pass::FF;
    int m_single_batch = 1;
    LayerValues* m_single_values = nullptr;
    bool m_single_cluster = true;
    int64_t m_tick_end = -1;
    TensorDump* m_dump = nullptr;
    int m_single_step = 0;
    std::function<void(double)> m_progress;
    std::vector<LayerPassResult> m_results;
    std::vector<std::vector<int>> m_order_fw, m_order_bp;  // per weighted layer
    std::vector<uint64_t> m_clustered_hash;                 // masks the orders were computed for
    int64_t m_total_cycles = 0;
    bool m_finished = false;
    int m_iteration = 0;
    int64_t m_work_total = 0, m_work_done = 0;
};

// Random FP16-representable values consistent with a layer's bitmaps and mask (functional mode).
LayerValues make_layer_values(const Layer& layer, const LayerWork& work, int batch, uint64_t seed);

}  // namespace swpu
