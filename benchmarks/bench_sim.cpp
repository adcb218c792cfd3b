// Simulator speed benchmark. One scenario per process (a SystemC model elaborates once):
//   bench_sim layer     FF of a ResNet-18-sized conv layer (layer3: 256x256x3x3 on 8x8, batch 4)
//   bench_sim cifar     a whole ResNet-18 CIFAR training iteration (batch 1, all passes)
//   bench_sim imagenet  a whole ResNet-18 ImageNet training iteration (batch 1, all passes)
// Options: --engine cycle|fast (default cycle: the clocked units), --tick (fast engine: tick every
// clock cycle instead of skipping time per tile), --functional.
// Prints one JSON line: simulated cycles, host seconds of the simulation (sc_start), cycles per
// host second, and peak resident memory. benchmarks/run_benchmarks.sh repeats and takes medians.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <sys/resource.h>

#include "swpu/chip.hpp"
#include "swpu/config.hpp"
#include "swpu/workload.hpp"

int sc_main(int argc, char* argv[]) {
    std::string scenario = argc > 1 ? argv[1] : "cifar";
    bool tick = false, functional = false;
    std::string engine = "cycle";
    for (int i = 2; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--tick")) tick = true;
        else if (!std::strcmp(argv[i], "--functional")) functional = true;
        else if (!std::strcmp(argv[i], "--engine") && i + 1 < argc) engine = argv[++i];
        else {
            std::fprintf(stderr, "bench_sim: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    swpu::RunConfig cfg = swpu::load_config(std::string(SWPU_SOURCE_DIR) + "/configs/swpu.json");
    cfg.simulation.time_skip = !tick;
    cfg.simulation.engine = engine;
    if (functional) cfg.simulation.mode = "functional";
    swpu::Trace trace;
    swpu::WorkloadParams p = cfg.workload;
    // The network as the simulator builds it from the config's workload section (width, FC blocking).
    auto network = [&](const std::string& name) {
        return swpu::build_network(name, p.width, -1, -1, -1, p.fc_block);
    };
    const auto g0 = std::chrono::steady_clock::now();
    if (scenario == "layer") {
        p.batch = 4;
        trace = swpu::make_synthetic_trace(p, network("resnet18-cifar"), cfg.simulation.seed);
    } else if (scenario == "cifar") {
        trace = swpu::make_synthetic_trace(p, network("resnet18-cifar"), cfg.simulation.seed);
    } else if (scenario == "imagenet") {
        trace = swpu::make_synthetic_trace(p, network("resnet18-imagenet"), cfg.simulation.seed);
    } else {
        std::fprintf(stderr, "bench_sim: unknown scenario '%s' (layer, cifar, imagenet)\n", scenario.c_str());
        return 2;
    }
    const double gen_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - g0).count();
    swpu::SwpuChip chip("swpu", cfg);
    const swpu::Layer* layer = nullptr;
    swpu::LayerValues values;
    if (scenario == "layer") {
        const int li = trace.net.find("layer3.1.conv1");
        layer = &trace.net.layers[li];
        int slot = 0;
        for (int w : trace.net.weighted_layers()) {
            if (w == li) break;
            ++slot;
        }
        // Functional mode: FP16 values consistent with the layer's masks and bitmaps.
        if (functional) values = swpu::make_layer_values(*layer, trace.iterations[0].layers[slot], p.batch, 1);
        chip.set_single(layer, &trace.iterations[0].layers[slot], swpu::Pass::FF, p.batch,
                        functional ? &values : nullptr, true);
    } else {
        chip.set_trace(&trace);
    }
    const auto t0 = std::chrono::steady_clock::now();
    sc_core::sc_start();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    std::printf("{\"scenario\": \"%s\", \"engine\": \"%s\", \"mode\": \"%s\", \"simulated_cycles\": %lld, \"host_seconds\": %.4f, "
                "\"cycles_per_second\": %.0f, \"trace_generation_seconds\": %.4f, \"peak_rss_mb\": %.1f}\n",
                scenario.c_str(), engine.c_str(), tick ? "tick" : (functional ? "functional" : "timing"),
                (long long)chip.total_cycles(), s, double(chip.total_cycles()) / s, gen_s, ru.ru_maxrss / 1024.0);
    return 0;
}
