// A port-level testbench top of the datapath units without the controller and the DMA: the DBL
// controller, the three global buffers, the compaction network and the PE array, wired as in the
// chip, on their own 1 ns clock. A test drives a unit's input channel (the tile command, or lane
// packets straight into the PE array) and observes the channels at the unit's boundary edge by edge.
#pragma once

#include <vector>

#include "swpu/compaction_network.hpp"
#include "swpu/dbl_controller.hpp"
#include "swpu/memory.hpp"
#include "swpu/pass_plan.hpp"
#include "swpu/pe_array.hpp"
#include "unit_harness.hpp"

namespace swpu::test {

struct DatapathTop : UnitTop {
    const RunConfig& cfg;
    DblController dbl;
    GlobalBuffer wbuf, abuf, obuf;
    CompactionNetwork net;
    PeArray pe;
    Fifo<TileCmd> cmd{"cmd", 1};
    Fifo<TileDone> done{"done", 1};
    Fifo<BufRequest> line_req, weight_req, obuf_req;
    Fifo<BufResponse> line_resp, weight_resp, obuf_resp;
    Fifo<StepCmd> steps;
    Fifo<int> credits;
    Fifo<LanePacket> packets;

    DatapathTop(sc_core::sc_module_name n, const RunConfig& c)
        : UnitTop(n), cfg(c), dbl("dbl", c),
          wbuf("wbuf", c.buffers.weight, true, GlobalBuffer::Role::Weight),
          abuf("abuf", c.buffers.activation, true, GlobalBuffer::Role::Activation),
          obuf("obuf", c.buffers.output, true, GlobalBuffer::Role::Output),
          net("net", c), pe("pe", c),
          line_req("line_req", c.dbl.line_buffers), weight_req("weight_req", c.compaction.step_fifo_depth),
          obuf_req("obuf_req", c.pe_array.accumulator_sets), line_resp("line_resp", c.dbl.line_buffers),
          weight_resp("weight_resp", c.compaction.step_fifo_depth),
          obuf_resp("obuf_resp", c.pe_array.accumulator_sets + c.buffers.output.read_latency + 2),
          steps("steps", c.compaction.step_fifo_depth), credits("credits", c.dbl.line_buffers),
          packets("packets", c.pe_array.input_fifo_depth) {
        for (sc_core::sc_in<bool>* k : {&dbl.clk, &wbuf.clk, &abuf.clk, &obuf.clk, &net.clk, &pe.clk}) k->bind(clk);
        for (sc_core::sc_in<bool>* r : {&dbl.reset, &wbuf.reset, &abuf.reset, &obuf.reset, &net.reset, &pe.reset})
            r->bind(reset);
        dbl.cmd_in(cmd);
        dbl.credit_in(credits);
        dbl.line_request(line_req);
        dbl.weight_request(weight_req);
        dbl.steps_out(steps);
        abuf.request(line_req);
        abuf.response(line_resp);
        wbuf.request(weight_req);
        wbuf.response(weight_resp);
        net.steps_in(steps);
        net.line_in(line_resp);
        net.weight_in(weight_resp);
        net.packets_out(packets);
        net.credit_out(credits);
        pe.packets_in(packets);
        pe.obuf_request(obuf_req);
        pe.obuf_response(obuf_resp);
        pe.done_out(done);
        obuf.request(obuf_req);
        obuf.response(obuf_resp);
    }

    // The units' configuration registers for tile `index` of `plan` (what the controller writes).
    void configure(const PassPlan& plan, int index) {
        std::vector<int> items;
        plan.cluster_items(plan.tiles()[size_t(index)].cluster, items);
        dbl.configure(&plan);
        net.configure(plan.pass(), &plan, items);
        pe.configure(&plan, &net, items, index);
    }
};

}  // namespace swpu::test
