// AVX-512 (F/BW/VL/DQ) vector abstraction for the kernels in *_impl.h. Include only from
// *_avx512.cpp translation units (compiled with the AVX-512 flags). Internal linkage.
//
// int8 products (linear_impl.h): a row's 4-byte activation group is broadcast to every int32
// lane and multiplied with the 4 packed bytes of each lane's column. Without VNNI, vpmaddubsw
// needs an unsigned operand, so it multiplies |W| by the activation carrying W's sign;
// |W| <= 127 and |q| <= 127 keep each pair sum within int16 (2 * 127 * 127 < 32767), so
// nothing saturates and the int32 sums are exact. With VNNI (Avx512Vnni), vpdpbusd multiplies
// u8 by s8: the activations come shifted to q + 128 and the excess 128 * sum_c W[j, c],
// computed when the weights are packed, is subtracted.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace pytransformer::kernels::cpu {
namespace {

struct Avx512 {
  using V = __m512;
  using I = __m512i;
  static constexpr int kLanes = 16;
  static constexpr int kBytes = 64;
  // Linear tiles: kPanelVectors vectors of columns x kFloatRows / kInt8Rows rows (measured:
  // int8 tiles of more than 16 accumulators run at half speed with GCC 12).
  static constexpr int kPanelVectors = 4, kFloatRows = 6, kInt8Rows = 4;

  static __mmask16 mask16(int count) { return static_cast<__mmask16>((1u << count) - 1u); }

  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float value) { return _mm512_set1_ps(value); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V load_partial(const float* p, int count) { return _mm512_maskz_loadu_ps(mask16(count), p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static void store_partial(float* p, V v, int count) { _mm512_mask_storeu_ps(p, mask16(count), v); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V div(V a, V b) { return _mm512_div_ps(a, b); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V min(V a, V b) { return _mm512_min_ps(a, b); }
  static V max(V a, V b) { return _mm512_max_ps(a, b); }
  static V abs(V a) { return _mm512_abs_ps(a); }
  static V round(V a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static V scale_by_power_of_two(V a, V n) { return _mm512_scalef_ps(a, n); }

  // Halving tree: lanes l and l + 8, then + 4, + 2, + 1.
  static float reduce(V v) {
    const __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
  }
  static float reduce_max(V v) { return _mm512_reduce_max_ps(v); }

  // Lane p = reduce(v[p]) bit for bit (the same halving tree, 16 vectors at a time): 16 sums
  // for 15 vector additions instead of 16 scalar reductions (attention scores).
  static constexpr bool kReducesSixteen = true;
  static __attribute__((always_inline)) V reduce_each(const V (&v)[16]) {
    // Transposed order (4 x 4), so that the result lands in lane p = index p.
    V w[8];
    #pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) {
      const int first = 2 * i, second = 2 * i + 1;
      const V a = v[first % 4 * 4 + first / 4], b = v[second % 4 * 4 + second / 4];
      w[i] = add(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
    }
    V u[4];
    #pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
      u[i] = add(_mm512_shuffle_f32x4(w[2 * i], w[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                 _mm512_shuffle_f32x4(w[2 * i], w[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    }
    V z[2];
    #pragma GCC unroll 2
    for (int i = 0; i < 2; ++i) {
      z[i] = add(_mm512_shuffle_ps(u[2 * i], u[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                 _mm512_shuffle_ps(u[2 * i], u[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    }
    return add(_mm512_shuffle_ps(z[0], z[1], _MM_SHUFFLE(2, 0, 2, 0)),
               _mm512_shuffle_ps(z[0], z[1], _MM_SHUFFLE(3, 1, 3, 1)));
  }

  static V load_f16(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static V bf16_to_f32(__m256i bits) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bits), 16));
  }
  static V load_bf16(const uint16_t* p) {
    return bf16_to_f32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  // Block weights (linear_impl.h): kLanes bytes as floats, each byte's low and high nibble,
  // or each byte as a signed integer.
  static void load_nibbles(const uint8_t* p, V& low, V& high) {
    const __m512i bytes = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    low = _mm512_cvtepi32_ps(_mm512_and_si512(bytes, _mm512_set1_epi32(15)));
    high = _mm512_cvtepi32_ps(_mm512_srli_epi32(bytes, 4));
  }
  static V load_i8_as_float(const int8_t* p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }

  // dst[0:count) = clamp(round_half_even(v), -127, 127) as int8.
  static void store_i8(int8_t* dst, V v, int count) {
    const V clamped = min(max(round(v), set1(-127.0f)), set1(127.0f));
    const __m128i bytes = _mm512_cvtsepi32_epi8(_mm512_cvttps_epi32(clamped));
    if (count == kLanes) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), bytes);
    } else {
      _mm_mask_storeu_epi8(dst, mask16(count), bytes);
    }
  }

  static I zero_i() { return _mm512_setzero_si512(); }
  static I load_i8(const int8_t* p) { return _mm512_loadu_si512(p); }
  static I load_i32(const int32_t* p) { return _mm512_loadu_si512(p); }
  static I sub_i32(I a, I b) { return _mm512_sub_epi32(a, b); }
  static V to_float(I v) { return _mm512_cvtepi32_ps(v); }
  // The 4 bytes at p in every int32 lane; byte b of lane l's column at 4 * l + b.
  static I broadcast_group(const uint8_t* p) {
    int32_t group;
    std::memcpy(&group, p, sizeof(group));
    return _mm512_set1_epi32(group);
  }
  static constexpr int packed_byte(int lane, int byte) { return 4 * lane + byte; }
  struct WeightPrep {
    I magnitude;
    __mmask64 negative;
  };
  static constexpr bool kCompensated = false;
  static WeightPrep prepare_weight(I w) { return {_mm512_abs_epi8(w), _mm512_movepi8_mask(w)}; }
  static void dot(I& acc, I x, const WeightPrep& w) {
    const I signed_x = _mm512_mask_sub_epi8(x, w.negative, _mm512_setzero_si512(), x);
    const I pairs = _mm512_maddubs_epi16(w.magnitude, signed_x);
    acc = _mm512_add_epi32(acc, _mm512_madd_epi16(pairs, _mm512_set1_epi16(1)));
  }
};

struct Avx512Vnni : Avx512 {
  using WeightPrep = I;
  static constexpr bool kCompensated = true;
  static WeightPrep prepare_weight(I w) { return w; }
  static void dot(I& acc, I x, I w) { acc = _mm512_dpbusd_epi32(acc, x, w); }

  // The full int8 tile (linear_impl.h: kInt8Rows x kPanelVectors = 4 x 4) in assembly: from
  // the intrinsics GCC 12 copies every accumulator at every step (measured 320 GMAC/s on one
  // core, against 435 for this loop, where vpdpbusd peaks at ~465). Same products and sums
  // as dot(). acc[r * 4 + v] = sum over the groups of rows[r] . panel vector v, from zero;
  // rows: 4 rows `stride` bytes apart, u8 (q + 128); panel: groups x 4 vectors of 64 bytes.
  static constexpr int kInt8TileRows = 4;
  static void int8_tile(const uint8_t* rows, int64_t stride, const int8_t* panel, int64_t groups,
                        I* acc) {
    if (groups <= 0) {  // the loop below runs at least once
      for (int t = 0; t < 16; ++t) acc[t] = _mm512_setzero_si512();
      return;
    }
    const uint8_t* row2 = rows + 2 * stride;
    asm volatile(
        "vpxord %%zmm0, %%zmm0, %%zmm0\n\t"
        "vmovdqa64 %%zmm0, %%zmm1\n\t vmovdqa64 %%zmm0, %%zmm2\n\t vmovdqa64 %%zmm0, %%zmm3\n\t"
        "vmovdqa64 %%zmm0, %%zmm4\n\t vmovdqa64 %%zmm0, %%zmm5\n\t vmovdqa64 %%zmm0, %%zmm6\n\t"
        "vmovdqa64 %%zmm0, %%zmm7\n\t vmovdqa64 %%zmm0, %%zmm8\n\t vmovdqa64 %%zmm0, %%zmm9\n\t"
        "vmovdqa64 %%zmm0, %%zmm10\n\t vmovdqa64 %%zmm0, %%zmm11\n\t vmovdqa64 %%zmm0, %%zmm12\n\t"
        "vmovdqa64 %%zmm0, %%zmm13\n\t vmovdqa64 %%zmm0, %%zmm14\n\t vmovdqa64 %%zmm0, %%zmm15\n\t"
        "1:\n\t"
        "vmovdqu64 (%[w]), %%zmm16\n\t"
        "vmovdqu64 64(%[w]), %%zmm17\n\t"
        "vmovdqu64 128(%[w]), %%zmm18\n\t"
        "vmovdqu64 192(%[w]), %%zmm19\n\t"
        "vpbroadcastd (%[row0]), %%zmm20\n\t"
        "vpdpbusd %%zmm16, %%zmm20, %%zmm0\n\t vpdpbusd %%zmm17, %%zmm20, %%zmm1\n\t"
        "vpdpbusd %%zmm18, %%zmm20, %%zmm2\n\t vpdpbusd %%zmm19, %%zmm20, %%zmm3\n\t"
        "vpbroadcastd (%[row0],%[stride]), %%zmm21\n\t"
        "vpdpbusd %%zmm16, %%zmm21, %%zmm4\n\t vpdpbusd %%zmm17, %%zmm21, %%zmm5\n\t"
        "vpdpbusd %%zmm18, %%zmm21, %%zmm6\n\t vpdpbusd %%zmm19, %%zmm21, %%zmm7\n\t"
        "vpbroadcastd (%[row2]), %%zmm22\n\t"
        "vpdpbusd %%zmm16, %%zmm22, %%zmm8\n\t vpdpbusd %%zmm17, %%zmm22, %%zmm9\n\t"
        "vpdpbusd %%zmm18, %%zmm22, %%zmm10\n\t vpdpbusd %%zmm19, %%zmm22, %%zmm11\n\t"
        "vpbroadcastd (%[row2],%[stride]), %%zmm23\n\t"
        "vpdpbusd %%zmm16, %%zmm23, %%zmm12\n\t vpdpbusd %%zmm17, %%zmm23, %%zmm13\n\t"
        "vpdpbusd %%zmm18, %%zmm23, %%zmm14\n\t vpdpbusd %%zmm19, %%zmm23, %%zmm15\n\t"
        "add $256, %[w]\n\t add $4, %[row0]\n\t add $4, %[row2]\n\t"
        "dec %[groups]\n\t jnz 1b\n\t"
        "vmovdqu64 %%zmm0, (%[acc])\n\t vmovdqu64 %%zmm1, 64(%[acc])\n\t"
        "vmovdqu64 %%zmm2, 128(%[acc])\n\t vmovdqu64 %%zmm3, 192(%[acc])\n\t"
        "vmovdqu64 %%zmm4, 256(%[acc])\n\t vmovdqu64 %%zmm5, 320(%[acc])\n\t"
        "vmovdqu64 %%zmm6, 384(%[acc])\n\t vmovdqu64 %%zmm7, 448(%[acc])\n\t"
        "vmovdqu64 %%zmm8, 512(%[acc])\n\t vmovdqu64 %%zmm9, 576(%[acc])\n\t"
        "vmovdqu64 %%zmm10, 640(%[acc])\n\t vmovdqu64 %%zmm11, 704(%[acc])\n\t"
        "vmovdqu64 %%zmm12, 768(%[acc])\n\t vmovdqu64 %%zmm13, 832(%[acc])\n\t"
        "vmovdqu64 %%zmm14, 896(%[acc])\n\t vmovdqu64 %%zmm15, 960(%[acc])\n\t"
        : [w] "+r"(panel), [row0] "+r"(rows), [row2] "+r"(row2), [groups] "+r"(groups)
        : [stride] "r"(stride), [acc] "r"(acc)
        : "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",
          "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17",
          "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23");
  }
};

}  // namespace
}  // namespace pytransformer::kernels::cpu
