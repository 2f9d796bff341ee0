// The host/device macro and scalar helpers every physics function is written with.
//
// Physics code is written once, templated on Scalar (float for speed, double for gradient checks)
// and compiled twice: by the host compiler for the CPU backend and by nvcc for the kernels.
// Inside PHYDREAM_HD functions: fixed-size types only -- no allocation, exceptions, virtuals or
// STL containers.
#pragma once

#include <cmath>
#include <cstdint>

// PHYDREAM_HD_STAGE marks the large per-stage functions of the articulated engine (one pass over
// the model's tree each): on the device they stay real calls, since force-inlining dozens of them
// into every kernel multiplies compile time without making the kernels faster.
#if defined(__CUDACC__)
#define PHYDREAM_HD __host__ __device__ __forceinline__
#define PHYDREAM_HD_STAGE __host__ __device__ __noinline__
#define PHYDREAM_HOST_DEVICE __host__ __device__
#else
#define PHYDREAM_HD inline
#define PHYDREAM_HD_STAGE inline
#define PHYDREAM_HOST_DEVICE
#endif

namespace phydream {

// the scalar maths used by the models; overloads pick the float or double version on both sides
PHYDREAM_HD float sin_(float x) { return sinf(x); }
PHYDREAM_HD double sin_(double x) { return sin(x); }
PHYDREAM_HD float cos_(float x) { return cosf(x); }
PHYDREAM_HD double cos_(double x) { return cos(x); }
PHYDREAM_HD float sqrt_(float x) { return sqrtf(x); }
PHYDREAM_HD double sqrt_(double x) { return sqrt(x); }
PHYDREAM_HD float abs_(float x) { return fabsf(x); }
PHYDREAM_HD double abs_(double x) { return fabs(x); }
#if defined(__CUDA_ARCH__)
PHYDREAM_HD bool isfinite_(float x) { return isfinite(x); }
PHYDREAM_HD bool isfinite_(double x) { return isfinite(x); }
#else
PHYDREAM_HD bool isfinite_(float x) { return std::isfinite(x); }
PHYDREAM_HD bool isfinite_(double x) { return std::isfinite(x); }
#endif

PHYDREAM_HD void sincos_(float x, float* s, float* c) {
#if defined(__CUDA_ARCH__)
  sincosf(x, s, c);
#else
  *s = std::sin(x);
  *c = std::cos(x);
#endif
}
PHYDREAM_HD void sincos_(double x, double* s, double* c) {
#if defined(__CUDA_ARCH__)
  sincos(x, s, c);
#else
  *s = std::sin(x);
  *c = std::cos(x);
#endif
}

/// 1 if any of row[0, n) is NaN or infinite, else 0: the check behind
/// Simulator::nonfinite_rows on every backend.
template <class S>
PHYDREAM_HD std::uint8_t any_nonfinite(const S* row, std::int64_t n) {
  std::uint8_t bad = 0;
  for (std::int64_t i = 0; i < n; ++i) bad |= !isfinite_(row[i]);
  return bad;
}

}  // namespace phydream
