// AVX2 + FMA + F16C vector abstraction for the kernels in *_impl.h. Include only from
// *_avx2.cpp / *_avx2_vnni.cpp translation units. Internal linkage.
//
// int8 products (linear_impl.h, a broadcast 4-byte activation group against 4 packed bytes
// per int32 lane): vpmaddubsw of |W| (unsigned) with the activation carrying W's sign
// (vpsignb); |W|, |q| <= 127 keep pair sums within int16, so the int32 sums are exact.
// Avx2Vnni (AVX-VNNI, *_avx2_vnni.cpp only) uses vpdpbusd with activations shifted to q + 128
// and subtracts 128 * sum_c W[j, c] (computed at packing), as simd_avx512.h describes.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace pytransformer::kernels::cpu {
namespace {

struct Avx2 {
  using V = __m256;
  using I = __m256i;
  static constexpr int kLanes = 8;
  static constexpr int kBytes = 32;
  // Linear tiles: kPanelVectors vectors of columns x kFloatRows / kInt8Rows rows.
  static constexpr int kPanelVectors = 2, kFloatRows = 6, kInt8Rows = 4;

  static __m256i lane_mask(int count) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }

  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float value) { return _mm256_set1_ps(value); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V load_partial(const float* p, int count) { return _mm256_maskload_ps(p, lane_mask(count)); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static void store_partial(float* p, V v, int count) { _mm256_maskstore_ps(p, lane_mask(count), v); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V div(V a, V b) { return _mm256_div_ps(a, b); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V min(V a, V b) { return _mm256_min_ps(a, b); }
  static V max(V a, V b) { return _mm256_max_ps(a, b); }
  static V abs(V a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  static V round(V a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // a * 2^n for integral n in [-127, 127] (2^-127 flushes to 0).
  static V scale_by_power_of_two(V a, V n) {
    const __m256i exponent = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_mul_ps(a, _mm256_castsi256_ps(_mm256_slli_epi32(exponent, 23)));
  }

  // Halving tree: lanes l and l + 4, then + 2, + 1.
  static float reduce(V v) {
    const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
  }
  static float reduce_max(V v) {
    const __m128 s4 = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 s2 = _mm_max_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_max_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
  }

  static V load_f16(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static V bf16_to_f32(__m128i bits) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(bits), 16));
  }
  static V load_bf16(const uint16_t* p) {
    return bf16_to_f32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  // Block weights (linear_impl.h): kLanes bytes as floats, each byte's low and high nibble,
  // or each byte as a signed integer.
  static void load_nibbles(const uint8_t* p, V& low, V& high) {
    const __m256i bytes = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
    low = _mm256_cvtepi32_ps(_mm256_and_si256(bytes, _mm256_set1_epi32(15)));
    high = _mm256_cvtepi32_ps(_mm256_srli_epi32(bytes, 4));
  }
  static V load_i8_as_float(const int8_t* p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }

  // dst[0:count) = clamp(round_half_even(v), -127, 127) as int8.
  static void store_i8(int8_t* dst, V v, int count) {
    const V clamped = min(max(round(v), set1(-127.0f)), set1(127.0f));
    const __m256i words = _mm256_cvtps_epi32(clamped);
    const __m128i halves = _mm_packs_epi32(_mm256_castsi256_si128(words),
                                           _mm256_extracti128_si256(words, 1));
    const __m128i bytes = _mm_packs_epi16(halves, halves);
    if (count == kLanes) {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), bytes);
    } else {
      int8_t buffer[16];
      _mm_storeu_si128(reinterpret_cast<__m128i*>(buffer), bytes);
      std::memcpy(dst, buffer, static_cast<size_t>(count));
    }
  }

  static I zero_i() { return _mm256_setzero_si256(); }
  static I load_i8(const int8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static I load_i32(const int32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static I sub_i32(I a, I b) { return _mm256_sub_epi32(a, b); }
  static V to_float(I v) { return _mm256_cvtepi32_ps(v); }
  // The 4 bytes at p in every int32 lane; byte b of lane l's column at 4 * l + b.
  static I broadcast_group(const uint8_t* p) {
    int32_t group;
    std::memcpy(&group, p, sizeof(group));
    return _mm256_set1_epi32(group);
  }
  static constexpr int packed_byte(int lane, int byte) { return 4 * lane + byte; }

  struct WeightPrep {
    I magnitude;
    I sign;
  };
  static constexpr bool kCompensated = false;
  static WeightPrep prepare_weight(I w) { return {_mm256_abs_epi8(w), w}; }
  static void dot(I& acc, I x, const WeightPrep& w) {
    const I pairs = _mm256_maddubs_epi16(w.magnitude, _mm256_sign_epi8(x, w.sign));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
  }
};

#ifdef __AVXVNNI__
struct Avx2Vnni : Avx2 {
  using WeightPrep = I;
  static constexpr bool kCompensated = true;
  static WeightPrep prepare_weight(I w) { return w; }
  static void dot(I& acc, I x, I w) { acc = _mm256_dpbusd_avx_epi32(acc, x, w); }
};
#endif

}  // namespace
}  // namespace pytransformer::kernels::cpu
