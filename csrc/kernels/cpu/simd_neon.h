// aarch64 Advanced SIMD (NEON) vector abstraction for the kernels in *_impl.h. Include only
// from *_neon.cpp translation units. Internal linkage.
//
// int8 products use baseline NEON (no dot-product extension): vmull_s8 / vmlal_s8 add two
// products per int16 lane (|2 * 127 * 127| < 32767, exact) and vpadalq_s16 widens them into
// int32 lanes, so the sums equal the reference's exactly. Int32 lane l sums bytes 2l, 2l + 1,
// 2l + 8 and 2l + 9: the packed weights put lane l's column there (packed_byte) and a
// broadcast activation group (a, b, c, d) reads (a b) x 4 then (c d) x 4.
#pragma once

#include <arm_neon.h>

#include <cstdint>
#include <cstring>

namespace pytransformer::kernels::cpu {
namespace {

struct Neon {
  using V = float32x4_t;
  using I = int8x16_t;
  static constexpr int kLanes = 4;
  static constexpr int kBytes = 16;
  // Linear tiles: kPanelVectors vectors of columns x kFloatRows / kInt8Rows rows.
  static constexpr int kPanelVectors = 4, kFloatRows = 6, kInt8Rows = 4;

  static V zero() { return vdupq_n_f32(0.0f); }
  static V set1(float value) { return vdupq_n_f32(value); }
  static V load(const float* p) { return vld1q_f32(p); }
  static V load_partial(const float* p, int count) {
    float buffer[4] = {};
    std::memcpy(buffer, p, sizeof(float) * static_cast<size_t>(count));
    return vld1q_f32(buffer);
  }
  static void store(float* p, V v) { vst1q_f32(p, v); }
  static void store_partial(float* p, V v, int count) {
    float buffer[4];
    vst1q_f32(buffer, v);
    std::memcpy(p, buffer, sizeof(float) * static_cast<size_t>(count));
  }
  static V add(V a, V b) { return vaddq_f32(a, b); }
  static V sub(V a, V b) { return vsubq_f32(a, b); }
  static V mul(V a, V b) { return vmulq_f32(a, b); }
  static V div(V a, V b) { return vdivq_f32(a, b); }
  static V fmadd(V a, V b, V c) { return vfmaq_f32(c, a, b); }
  static V min(V a, V b) { return vminq_f32(a, b); }
  static V max(V a, V b) { return vmaxq_f32(a, b); }
  static V abs(V a) { return vabsq_f32(a); }
  static V round(V a) { return vrndnq_f32(a); }
  // a * 2^n for integral n in [-127, 127] (2^-127 flushes to 0).
  static V scale_by_power_of_two(V a, V n) {
    const int32x4_t exponent = vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127));
    return vmulq_f32(a, vreinterpretq_f32_s32(vshlq_n_s32(exponent, 23)));
  }

  // Halving tree: lanes l and l + 2, then + 1.
  static float reduce(V v) {
    const float32x2_t half = vadd_f32(vget_low_f32(v), vget_high_f32(v));
    return vget_lane_f32(vpadd_f32(half, half), 0);
  }
  static float reduce_max(V v) { return vmaxvq_f32(v); }

  static V load_f16(const uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
  static V load_bf16(const uint16_t* p) { return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16)); }
  // Block weights (linear_impl.h): kLanes bytes as floats, each byte's low and high nibble,
  // or each byte as a signed integer.
  static uint32x4_t load_u8_lanes(const uint8_t* p) {
    uint32_t word;
    std::memcpy(&word, p, sizeof(word));
    return vmovl_u16(vget_low_u16(vmovl_u8(vreinterpret_u8_u32(vdup_n_u32(word)))));
  }
  static void load_nibbles(const uint8_t* p, V& low, V& high) {
    const uint32x4_t bytes = load_u8_lanes(p);
    low = vcvtq_f32_u32(vandq_u32(bytes, vdupq_n_u32(15)));
    high = vcvtq_f32_u32(vshrq_n_u32(bytes, 4));
  }
  static V load_i8_as_float(const int8_t* p) {
    int32_t word;
    std::memcpy(&word, p, sizeof(word));
    const int16x8_t words = vmovl_s8(vreinterpret_s8_s32(vdup_n_s32(word)));
    return vcvtq_f32_s32(vmovl_s16(vget_low_s16(words)));
  }

  // dst[0:count) = clamp(round_half_even(v), -127, 127) as int8.
  static void store_i8(int8_t* dst, V v, int count) {
    const V clamped = min(max(round(v), set1(-127.0f)), set1(127.0f));
    const int16x4_t words = vmovn_s32(vcvtq_s32_f32(clamped));
    const int8x8_t bytes = vmovn_s16(vcombine_s16(words, words));
    int8_t buffer[8];
    vst1_s8(buffer, bytes);
    std::memcpy(dst, buffer, static_cast<size_t>(count));
  }

  static I zero_i() { return vdupq_n_s8(0); }
  static I load_i8(const int8_t* p) { return vld1q_s8(p); }
  // The int32 accumulators live in the bits of an I (16 bytes = 4 int32 lanes).
  static I load_i32(const int32_t* p) { return vreinterpretq_s8_s32(vld1q_s32(p)); }
  static I sub_i32(I a, I b) {
    return vreinterpretq_s8_s32(vsubq_s32(vreinterpretq_s32_s8(a), vreinterpretq_s32_s8(b)));
  }
  static V to_float(I v) { return vcvtq_f32_s32(vreinterpretq_s32_s8(v)); }
  static I broadcast_group(const uint8_t* p) {
    uint16_t low, high;
    std::memcpy(&low, p, sizeof(low));
    std::memcpy(&high, p + 2, sizeof(high));
    return vreinterpretq_s8_u16(vcombine_u16(vdup_n_u16(low), vdup_n_u16(high)));
  }
  static constexpr int packed_byte(int lane, int byte) { return (byte < 2 ? 0 : 6) + 2 * lane + byte; }

  using WeightPrep = I;
  static constexpr bool kCompensated = false;
  static WeightPrep prepare_weight(I w) { return w; }
  static void dot(I& acc, I x, I w) {
    int16x8_t pairs = vmull_s8(vget_low_s8(x), vget_low_s8(w));
    pairs = vmlal_s8(pairs, vget_high_s8(x), vget_high_s8(w));
    acc = vreinterpretq_s8_s32(vpadalq_s16(vreinterpretq_s32_s8(acc), pairs));
  }
};

}  // namespace
}  // namespace pytransformer::kernels::cpu
