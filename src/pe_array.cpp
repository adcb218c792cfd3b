#include "swpu/pe_array.hpp"

#include <cmath>
#include <cstring>

namespace swpu {

uint16_t float_to_fp16_bits(float x) {
    uint32_t f;
    std::memcpy(&f, &x, 4);
    const uint32_t sign = (f >> 16) & 0x8000u;
    const uint32_t exp = (f >> 23) & 0xffu;
    uint32_t mant = f & 0x7fffffu;
    if (exp == 0xffu) return uint16_t(sign | 0x7c00u | (mant ? 0x200u : 0u));  // inf / nan
    int e = int(exp) - 127 + 15;
    if (e >= 31) return uint16_t(sign | 0x7c00u);  // overflow -> inf
    if (e <= 0) {
        // Subnormal half (or zero): shift the mantissa with its hidden bit, round to nearest even.
        if (e < -10) return uint16_t(sign);
        mant |= 0x800000u;
        const int shift = 14 - e;
        uint32_t half = mant >> shift;
        const uint32_t rem = mant & ((1u << shift) - 1);
        const uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1u))) ++half;
        return uint16_t(sign | half);
    }
    uint32_t half = (uint32_t(e) << 10) | (mant >> 13);
    const uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (half & 1u))) ++half;  // may carry into the exponent: correct
    return uint16_t(sign | half);
}

float fp16_bits_to_float(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    const uint32_t mant = h & 0x3ffu;
    float out;
    if (exp == 0) {
        out = std::ldexp(float(mant), -24);
        if (sign) out = -out;
        return out;
    }
    uint32_t f;
    if (exp == 31) f = sign | 0x7f800000u | (mant << 13);
    else f = sign | ((exp - 15 + 127) << 23) | (mant << 13);
    std::memcpy(&out, &f, 4);
    return out;
}

float round_to_fp16(float x) { return fp16_bits_to_float(float_to_fp16_bits(x)); }

PeArray::PeArray(sc_core::sc_module_name name, const ChipConfig& cfg)
    : sc_core::sc_module(name),
      m_groups(cfg.pe_array.groups),
      m_lanes(cfg.pe_array.lanes),
      m_window(cfg.compaction.window),
      m_acc(size_t(m_groups) * m_window, 0.0f) {}

void PeArray::clear_accumulators() { std::fill(m_acc.begin(), m_acc.end(), 0.0f); }

}  // namespace swpu
