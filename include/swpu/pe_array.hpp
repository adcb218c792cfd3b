// PE array: G groups x L MAC lanes, FP16 x FP16 -> FP32. The PEs are plain C++ state inside this
// module (no module or signal per PE). In FF and BP a group accumulates the products of a step into
// the accumulators of the window positions the bi-directional switches return them to; in WG the
// group's adder tree reduces the step's products into one weight gradient.
#pragma once

#include <cstdint>
#include <vector>

#include <systemc>

#include "swpu/config.hpp"

namespace swpu {

// Rounds a float to the nearest FP16 value (round to nearest even), returned as float.
float round_to_fp16(float x);
// FP16 bit pattern <-> float.
uint16_t float_to_fp16_bits(float x);
float fp16_bits_to_float(uint16_t h);

class PeArray : public sc_core::sc_module {
public:
    PeArray(sc_core::sc_module_name name, const ChipConfig& cfg);

    int groups() const { return m_groups; }
    int lanes() const { return m_lanes; }

    // Accumulator register file: one FP32 accumulator per group and window position.
    void clear_accumulators();
    // One lane's MAC: operands are FP16 values; the product is exact in FP32, the add rounds.
    void mac(int group, int position, float weight, float operand) {
        float& a = m_acc[size_t(group) * m_window + position];
        a = a + weight * operand;
    }
    float accumulator(int group, int position) const { return m_acc[size_t(group) * m_window + position]; }
    // WG: the adder tree of a group sums one cycle's lane products (FP32) into the running gradient.
    static float reduce(const float* products, int n) {
        float s = 0.0f;
        for (int i = 0; i < n; ++i) s += products[i];
        return s;
    }

private:
    int m_groups, m_lanes, m_window;
    std::vector<float> m_acc;
};

}  // namespace swpu
