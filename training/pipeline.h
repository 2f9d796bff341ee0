// The per-element work of the training pipeline, shared by the CPU loops and the CUDA kernels:
// drawing samples, picking states along rollouts, laying out the engine's outputs for the loss.
#pragma once

#include <cstdint>

#include "engine/core.h"
#include "training/random.h"

namespace phydream::training {

/// lo + (hi - lo) r with a separate multiply and add: nvcc would otherwise fuse them into an
/// FMA, and the CPU and CUDA samplers must draw bit-identical batches.
PHYDREAM_HD double lerp_unfused(double lo, double hi, double r) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(lo, __dmul_rn(__dsub_rn(hi, lo), r));
#else
  return lo + (hi - lo) * r;
#endif
}

/// Entry (b, c) of a uniform sample in [lo_c, hi_c].
template <class S>
PHYDREAM_HD S sample_entry(std::uint64_t seed, std::uint64_t stream, std::int64_t b, int c,
                           int width, S lo, S hi) {
  const double r = uniform01(seed, stream, static_cast<std::uint64_t>(b) * width + c);
  return static_cast<S>(lerp_unfused(double(lo), double(hi), r));
}

/// How far outside the sampling box, in box widths, a rollout state may lie before pick_state
/// takes it for diverged. Random-action rollouts leave the box for physical reasons: the
/// half-cheetah's joint velocities, sampled in +-1, reach +-15 within 20 steps (up to 14 widths
/// out), so only a blow-up should be rejected. (A bound of one width rejected 95 % of those
/// states, and the training states were then nearly all the rollouts' starts.)
constexpr double kRolloutDivergedWidths = 100.0;

/// Environment b's state at a random step of its rollout, or its initial state when that state
/// has diverged (non-finite, or more than kRolloutDivergedWidths box widths outside the box).
template <class S>
PHYDREAM_HD void pick_state(std::int64_t b, std::int64_t T, int nx, std::uint64_t seed,
                            std::uint64_t stream, const S* lo, const S* hi, const S* states,
                            S* x) {
  const double r = uniform01(seed, stream, static_cast<std::uint64_t>(b));
  std::int64_t t = static_cast<std::int64_t>(r * double(T + 1));
  if (t > T) t = T;
  const S* row = states + (b * (T + 1) + t) * nx;
  bool ok = true;
  for (int i = 0; i < nx; ++i) {
    const S reach = static_cast<S>(kRolloutDivergedWidths) * (hi[i] - lo[i]);
    ok = ok && isfinite_(row[i]) && row[i] >= lo[i] - reach && row[i] <= hi[i] + reach;
  }
  const S* src = ok ? row : states + b * (T + 1) * nx;
  for (int i = 0; i < nx; ++i) x[b * nx + i] = src[i];
}

/// Row b of inputs = [x, u] and of target_jac = [jac_x | jac_u] (when target_jac is not null).
template <class S>
PHYDREAM_HD void assemble_row(std::int64_t b, int nx, int nu, const S* x, const S* u,
                              const S* jac_x, const S* jac_u, S* inputs, S* target_jac) {
  const int d = nx + nu;
  for (int i = 0; i < nx; ++i) inputs[b * d + i] = x[b * nx + i];
  for (int j = 0; j < nu; ++j) inputs[b * d + nx + j] = u[b * nu + j];
  if (target_jac == nullptr) return;
  for (int i = 0; i < nx; ++i) {
    for (int j = 0; j < nx; ++j) target_jac[(b * nx + i) * d + j] = jac_x[(b * nx + i) * nx + j];
    for (int j = 0; j < nu; ++j) {
      target_jac[(b * nx + i) * d + nx + j] = jac_u[(b * nx + i) * nu + j];
    }
  }
}

}  // namespace phydream::training
