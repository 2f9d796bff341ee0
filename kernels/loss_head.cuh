// The loss head of the CUDA trainer (kernels/mlp_kernels.cu), in its own header so that the CPU
// tests can run the same kernels: tests/kernels/loss_head_emulated_test.cpp compiles it with a
// host compiler under tests/emulation/block_emulation.h, which runs each block's threads as
// fibers switched at __syncthreads. So the code here uses only what that emulation provides:
// one-dimensional grids and blocks, __shared__ arrays, __syncthreads; no warp intrinsics or
// atomics. Everything is in an unnamed namespace: the emulated host build (tests) and the CUDA
// build (the library) never share a symbol.
//
// The loss (training/mlp.h) in double: batch reductions over the grid (loss_partials_kernel and
// loss_finish_kernel, a few passes), then the elementwise gradient (loss_grad_kernel), queued by
// run_loss_head through the caller's launcher.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "training/mlp.h"

namespace phydream::training {
namespace {

constexpr int kThreads = 256;                 // threads per block, elementwise kernels
constexpr int kReduceThreads = 512;           // threads per block, block reductions (power of 2)
constexpr std::int64_t kMaxBlocks = 1 << 20;  // grid cap; grid-stride loops cover the rest

unsigned grid_for(std::int64_t items, int per_block) {
  const std::int64_t blocks = (items + per_block - 1) / per_block;
  return static_cast<unsigned>(std::max<std::int64_t>(1, std::min(blocks, kMaxBlocks)));
}

// =============================================================================================
// block reductions: blockDim.x must be kReduceThreads, and every thread of the block must call

// the sum of v over the block, returned to every thread; shm holds kReduceThreads doubles
__device__ double block_sum(double v, double* shm) {
  const int t = threadIdx.x;
  shm[t] = v;
  __syncthreads();
  for (int s = kReduceThreads / 2; s > 0; s /= 2) {
    if (t < s) shm[t] += shm[t + s];
    __syncthreads();
  }
  const double total = shm[0];
  __syncthreads();  // shm is reused by the next call
  return total;
}

// a candidate extreme of a tensor: its value and index (i < 0: no candidate)
template <class S>
struct Extreme {
  S v;
  std::int64_t i;
};

// whether b replaces a as the minimum (kMin) or maximum: strictly better, or equal at a smaller
// index, so the reduction finds the first occurrence, as the CPU's sequential scan does
template <bool kMin, class S>
__device__ bool better(const Extreme<S>& b, const Extreme<S>& a) {
  if (b.i < 0) return false;
  if (a.i < 0) return true;
  if (kMin ? b.v < a.v : b.v > a.v) return true;
  return b.v == a.v && b.i < a.i;
}

// the best of the block's candidates, returned to every thread
template <bool kMin, class S>
__device__ Extreme<S> block_extreme(Extreme<S> mine, S* sv, std::int64_t* si) {
  const int t = threadIdx.x;
  sv[t] = mine.v;
  si[t] = mine.i;
  __syncthreads();
  for (int s = kReduceThreads / 2; s > 0; s /= 2) {
    if (t < s) {
      const Extreme<S> a{sv[t], si[t]}, b{sv[t + s], si[t + s]};
      if (better<kMin>(b, a)) {
        sv[t] = b.v;
        si[t] = b.i;
      }
    }
    __syncthreads();
  }
  const Extreme<S> best{sv[0], si[0]};
  __syncthreads();
  return best;
}

// =============================================================================================
// the loss head (loss_head in mlp_cpu.cpp), in double

struct LossParams {
  std::int64_t N = 0;
  int k = 0, d = 0;
  double lambda_mse = 0, lambda_jal = 0;
  JalMetric metric = JalMetric::mse;
  double huber_delta = 1.0;  // metric huber
  JacScaling scaling = JacScaling::none;
  bool jal = false;                 // the loss has a JAL term (lambda_jal != 0)
  const double* jac_std = nullptr;  // (k d), device memory; scaling std only
};

// the parameters of a batch of N samples (k outputs, d inputs) under cfg; jac_std: cfg's jac_std
// where the kernels read it (device memory on a GPU), for scaling std
LossParams loss_params(const LossConfig& cfg, std::int64_t N, int k, int d, const double* jac_std) {
  LossParams p;
  p.N = N;
  p.k = k;
  p.d = d;
  p.lambda_mse = cfg.lambda_mse;
  p.lambda_jal = cfg.lambda_jal;
  p.metric = cfg.metric;
  p.huber_delta = cfg.huber_delta;
  p.scaling = cfg.scaling;
  p.jal = cfg.uses_jacobian();
  p.jac_std = cfg.scaling == JacScaling::std ? jac_std : nullptr;
  return p;
}

// what scaling one Jacobian batch needs (Scaled in mlp_cpu.cpp, without the scaled values,
// which are recomputed entry by entry)
struct ScaleStats {
  double lo = 0, range = 1;  // minmax
  bool range_active = false;
  std::int64_t arg_lo = 0, arg_hi = 0;
  double mean = 0, sigma = 1;  // zscore
};

// the batch statistics the elementwise gradient kernel needs
struct LossStats {
  ScaleStats net, target;          // of the network's Jacobians J and of the targets J*
  double g_lo = 0, g_hi = 0;       // minmax: dJAL/dlo, dJAL/dhi
  double mean_g = 0, mean_gs = 0;  // zscore: mean(G_s), mean(G_s s)
};

__device__ double std_divisor(const double* jac_std, std::int64_t e, int kd) {
  const double s = jac_std[e % kd];
  return s > kScaleRangeFloor ? s : 1.0;
}

// entry e of the scaled batch, s(J)_e
template <class S>
__device__ double scaled(const LossParams& p, const ScaleStats& st, std::int64_t e, S J) {
  switch (p.scaling) {
    case JacScaling::minmax:
      return (J - st.lo) / st.range;
    case JacScaling::zscore:
      return (J - st.mean) / st.sigma;
    case JacScaling::std:
      return J / std_divisor(p.jac_std, e, p.k * p.d);
    case JacScaling::none:
    default:
      return J;
  }
}

// G_s of one entry from D_e = diff (and, for frobenius, the norm of its sample's D)
__device__ double metric_grad(const LossParams& p, double diff, double norm) {
  const double n = double(p.N * p.k * p.d);
  switch (p.metric) {
    case JalMetric::l1:
      return (diff > 0 ? 1.0 : diff < 0 ? -1.0 : 0.0) / n;
    case JalMetric::huber:
      return huber_grad(diff, p.huber_delta) / n;
    case JalMetric::frobenius:
      return norm > kFrobeniusFloor ? diff / (norm * double(p.N)) : 0.0;
    case JalMetric::mse:
    default:
      return 2.0 * diff / n;
  }
}

// The loss head's batch reductions, spread over a grid. Each pass is a partial kernel, every
// block reducing its grid-stride share into one LossPartial, then a single-block finishing
// kernel that reduces the partials in block order into the LossStats (and terms) the next pass
// and loss_grad_kernel read:
//   pass 0: the MSE sum; minmax: each Jacobian batch's extremes; zscore: their sums
//   pass 1: zscore only: the squared deviations from the means
//   pass 2: with JAL: the metric's sum (frobenius: the per-sample norms, kept in norms) and what
//           the backward of the network's scaling needs (minmax, zscore)
// The grid depends on the batch's size only (loss_blocks), never on the device, so the sums are
// taken in the same order on every run and every GPU: the result is deterministic.
constexpr int kLossBlocks = 256;  // the most blocks of a partial pass; <= kReduceThreads
static_assert(kLossBlocks <= kReduceThreads, "the finishing kernels give a thread one partial");

int loss_blocks(std::int64_t entries) {
  const std::int64_t blocks = (entries + kReduceThreads - 1) / kReduceThreads;
  return static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(blocks, kLossBlocks)));
}

// one block's share of one pass; [0] of a pair is the network's Jacobians J, [1] the targets J*
template <class S>
struct LossPartial {
  double mse = 0;
  Extreme<S> lo[2] = {{S(0), -1}, {S(0), -1}}, hi[2] = {{S(0), -1}, {S(0), -1}};
  double sum[2] = {0, 0};  // pass 0: of the entries; pass 1: of their squared deviations
  double metric = 0;
  double a1 = 0, a2 = 0;
};

template <class S>
__device__ const S* jac_of(int j, const S* jac, const S* target_jac) {
  return j == 0 ? jac : target_jac;
}

// what the backward of the network's scaling needs from entry e: its (a1, a2) terms, given
// G_s = gs and the scaled entry sj (LossStats' g_lo, g_hi for minmax; mean_g, mean_gs for zscore)
template <class S>
__device__ void scaling_terms(const LossParams& p, const ScaleStats& net, S J, double sj, double gs,
                              double* a1, double* a2) {
  if (p.scaling == JacScaling::zscore) {
    *a1 += gs;
    *a2 += gs * sj;
  } else if (net.range_active) {
    // s_e = (J_e - lo) / (hi - lo): ds/dlo = (J_e - hi) / r^2, ds/dhi = -(J_e - lo) / r^2
    const double r2 = net.range * net.range, hi = net.lo + net.range;
    *a1 += gs * (J - hi) / r2;
    *a2 -= gs * (J - net.lo) / r2;
  } else {
    *a1 -= gs / net.range;  // the range is the constant floor: only lo moves s
  }
}

// partials[blockIdx.x] of one pass (see above); kReduceThreads threads per block
template <class S>
__global__ void __launch_bounds__(kReduceThreads)
    loss_partials_kernel(LossParams p, int pass, const S* __restrict__ pred,
                         const S* __restrict__ targets, const S* __restrict__ jac,
                         const S* __restrict__ target_jac, const LossStats* __restrict__ stats,
                         double* __restrict__ norms, LossPartial<S>* __restrict__ partials) {
  __shared__ double shm[kReduceThreads];
  __shared__ S sv[kReduceThreads];
  __shared__ std::int64_t si[kReduceThreads];
  const std::int64_t first = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const std::int64_t stride = std::int64_t(gridDim.x) * blockDim.x;
  const std::int64_t Nk = p.N * p.k, n = Nk * p.d;
  LossPartial<S> out;

  if (pass == 0) {
    double acc = 0;
    for (std::int64_t e = first; e < Nk; e += stride) {
      const double diff = double(pred[e]) - double(targets[e]);
      acc += diff * diff;
    }
    out.mse = block_sum(acc, shm);
    for (int j = 0; p.jal && j < 2; ++j) {
      const S* J = jac_of(j, jac, target_jac);
      if (p.scaling == JacScaling::minmax) {
        Extreme<S> lo{S(0), -1}, hi{S(0), -1};
        for (std::int64_t e = first; e < n; e += stride) {
          const Extreme<S> c{J[e], e};
          if (better<true>(c, lo)) lo = c;
          if (better<false>(c, hi)) hi = c;
        }
        out.lo[j] = block_extreme<true>(lo, sv, si);
        out.hi[j] = block_extreme<false>(hi, sv, si);
      } else if (p.scaling == JacScaling::zscore) {
        acc = 0;
        for (std::int64_t e = first; e < n; e += stride) acc += double(J[e]);
        out.sum[j] = block_sum(acc, shm);
      }
    }
  } else if (pass == 1) {
    const LossStats s = *stats;
    for (int j = 0; j < 2; ++j) {
      const S* J = jac_of(j, jac, target_jac);
      const double mean = j == 0 ? s.net.mean : s.target.mean;
      double acc = 0;
      for (std::int64_t e = first; e < n; e += stride) {
        const double c = double(J[e]) - mean;
        acc += c * c;
      }
      out.sum[j] = block_sum(acc, shm);
    }
  } else {
    // the metric on D = s(J) - s(J*)
    const LossStats s = *stats;
    const bool scaling_grad = p.scaling == JacScaling::minmax || p.scaling == JacScaling::zscore;
    double acc = 0, a1 = 0, a2 = 0;
    if (p.metric == JalMetric::frobenius) {
      const int kd = p.k * p.d;
      for (std::int64_t b = first; b < p.N; b += stride) {
        double sq = 0;
        for (std::int64_t e = b * kd; e < (b + 1) * kd; ++e) {
          const double diff = scaled(p, s.net, e, jac[e]) - scaled(p, s.target, e, target_jac[e]);
          sq += diff * diff;
        }
        const double norm = sqrt(sq);
        norms[b] = norm;
        acc += norm;
        for (std::int64_t e = b * kd; scaling_grad && e < (b + 1) * kd; ++e) {
          const double sj = scaled(p, s.net, e, jac[e]);
          const double gs = metric_grad(p, sj - scaled(p, s.target, e, target_jac[e]), norm);
          scaling_terms(p, s.net, jac[e], sj, gs, &a1, &a2);
        }
      }
    } else {
      for (std::int64_t e = first; e < n; e += stride) {
        const double sj = scaled(p, s.net, e, jac[e]);
        const double diff = sj - scaled(p, s.target, e, target_jac[e]);
        acc += p.metric == JalMetric::mse     ? diff * diff
               : p.metric == JalMetric::huber ? huber_value(diff, p.huber_delta)
                                              : fabs(diff);
        if (scaling_grad) scaling_terms(p, s.net, jac[e], sj, metric_grad(p, diff, 0.0), &a1, &a2);
      }
    }
    out.metric = block_sum(acc, shm);
    out.a1 = block_sum(a1, shm);
    out.a2 = block_sum(a2, shm);
  }
  if (threadIdx.x == 0) partials[blockIdx.x] = out;
}

// the sum over the blocks of one field of the partials, in block order (each thread holds at
// most one partial: blocks <= kReduceThreads), returned to every thread
template <class S, class F>
__device__ double partials_sum(const LossPartial<S>* partials, int blocks, F&& field, double* shm) {
  const int t = threadIdx.x;
  return block_sum(t < blocks ? field(partials[t]) : 0.0, shm);
}

// one batch's minmax statistics from its extremes
template <class S>
__device__ void minmax_stats(Extreme<S> lo, Extreme<S> hi, ScaleStats* st) {
  st->arg_lo = lo.i;
  st->arg_hi = hi.i;
  st->lo = double(lo.v);
  const double width = double(hi.v) - st->lo;
  st->range_active = width > kScaleRangeFloor;
  st->range = st->range_active ? width : kScaleRangeFloor;
}

// one block of kReduceThreads: reduces the partials of `pass` into *stats and terms (total,
// mse, jal)
template <class S>
__global__ void __launch_bounds__(kReduceThreads)
    loss_finish_kernel(LossParams p, int pass, int blocks,
                       const LossPartial<S>* __restrict__ partials, LossStats* __restrict__ stats,
                       double* __restrict__ terms) {
  __shared__ double shm[kReduceThreads];
  __shared__ S sv[kReduceThreads];
  __shared__ std::int64_t si[kReduceThreads];
  const int t = threadIdx.x;
  const double Nk = double(p.N * p.k), n = Nk * p.d;
  LossStats s = pass == 0 ? LossStats{} : *stats;
  ScaleStats* st[2] = {&s.net, &s.target};
  const auto sum_of = [&](auto field) { return partials_sum(partials, blocks, field, shm); };

  if (pass == 0) {
    const double mse = sum_of([](const LossPartial<S>& q) { return q.mse; }) / Nk;
    for (int j = 0; p.jal && j < 2; ++j) {
      if (p.scaling == JacScaling::minmax) {
        const Extreme<S> none{S(0), -1};
        const Extreme<S> lo = block_extreme<true>(t < blocks ? partials[t].lo[j] : none, sv, si);
        const Extreme<S> hi = block_extreme<false>(t < blocks ? partials[t].hi[j] : none, sv, si);
        minmax_stats(lo, hi, st[j]);
      } else if (p.scaling == JacScaling::zscore) {
        st[j]->mean = sum_of([j](const LossPartial<S>& q) { return q.sum[j]; }) / n;
      }
    }
    if (t == 0) {
      terms[0] = p.lambda_mse * mse;
      terms[1] = mse;
      terms[2] = 0;
    }
  } else if (pass == 1) {
    for (int j = 0; j < 2; ++j) {
      const double var = sum_of([j](const LossPartial<S>& q) { return q.sum[j]; }) / n;
      st[j]->sigma = sqrt(var + kZscoreEps);
    }
  } else {
    const double sum = sum_of([](const LossPartial<S>& q) { return q.metric; });
    const double jal = sum / (p.metric == JalMetric::frobenius ? double(p.N) : n);
    const double a1 = sum_of([](const LossPartial<S>& q) { return q.a1; });
    const double a2 = sum_of([](const LossPartial<S>& q) { return q.a2; });
    if (p.scaling == JacScaling::zscore) {
      s.mean_g = a1 / n;
      s.mean_gs = a2 / n;
    } else if (p.scaling == JacScaling::minmax) {
      s.g_lo = a1;
      s.g_hi = a2;
    }
    if (t == 0) {
      terms[0] = p.lambda_mse * terms[1] + p.lambda_jal * jal;
      terms[2] = jal;
    }
  }
  if (t == 0) *stats = s;
}

// g_pred (N k) and, with JAL, g_jac (N k d): the loss gradient w.r.t. the predictions and the
// network's Jacobians, from the statistics of loss_finish_kernel
template <class S>
__global__ void loss_grad_kernel(LossParams p, const S* __restrict__ pred,
                                 const S* __restrict__ targets, const S* __restrict__ jac,
                                 const S* __restrict__ target_jac,
                                 const double* __restrict__ norms,
                                 const LossStats* __restrict__ stats, S* __restrict__ g_pred,
                                 S* __restrict__ g_jac) {
  const std::int64_t Nk = p.N * p.k, n = p.jal ? Nk * p.d : 0;
  const int kd = p.k * p.d;
  for (std::int64_t idx = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < Nk + n;
       idx += std::int64_t(gridDim.x) * blockDim.x) {
    if (idx < Nk) {
      const double diff = double(pred[idx]) - double(targets[idx]);
      g_pred[idx] = static_cast<S>(p.lambda_mse * 2.0 * diff / double(Nk));
      continue;
    }
    const std::int64_t e = idx - Nk;
    const LossStats& s = *stats;
    const double sj = scaled(p, s.net, e, jac[e]);
    const double diff = sj - scaled(p, s.target, e, target_jac[e]);
    const double gs =
        metric_grad(p, diff, p.metric == JalMetric::frobenius ? norms[e / kd] : 0.0);
    double gj = gs;  // none
    switch (p.scaling) {
      case JacScaling::minmax:
        gj = gs / s.net.range;
        if (e == s.net.arg_lo) gj += s.g_lo;
        if (e == s.net.arg_hi) gj += s.g_hi;
        break;
      case JacScaling::zscore:
        gj = (gs - s.mean_g - sj * s.mean_gs) / s.net.sigma;
        break;
      case JacScaling::std:
        gj = gs / std_divisor(p.jac_std, e, kd);
        break;
      case JacScaling::none:
        break;
    }
    g_jac[e] = static_cast<S>(p.lambda_jal * gj);
  }
}

// Queues the loss head: the reductions' passes, then the gradient. launch(name, grid, block,
// kernel, args...) launches kernel<<<grid, block>>>(args...) (and checks it); max_blocks caps the
// reductions' grid (kLossBlocks, or fewer: the tests use it to give each thread several entries).
// pred, targets, g_pred: (N, k); jac, target_jac, g_jac: (N, k, d) with p.jal, else unused;
// norms: (N); stats: 1; partials: (max_blocks); terms: 3 (total, mse, jal).
template <class S, class Launch>
void run_loss_head(const LossParams& p, const S* pred, const S* targets, const S* jac,
                   const S* target_jac, double* norms, LossStats* stats, LossPartial<S>* partials,
                   double* terms, S* g_pred, S* g_jac, Launch&& launch,
                   int max_blocks = kLossBlocks) {
  const int blocks = std::min(max_blocks, loss_blocks(p.jal ? p.N * p.k * p.d : p.N * p.k));
  for (int pass = 0; pass < (p.jal ? 3 : 1); ++pass) {
    if (pass == 1 && p.scaling != JacScaling::zscore) continue;
    launch("loss_partials_kernel", static_cast<unsigned>(blocks), kReduceThreads,
           loss_partials_kernel<S>, p, pass, pred, targets, jac, target_jac,
           static_cast<const LossStats*>(stats), norms, partials);
    launch("loss_finish_kernel", 1u, kReduceThreads, loss_finish_kernel<S>, p, pass, blocks,
           static_cast<const LossPartial<S>*>(partials), stats, terms);
  }
  const std::int64_t items = p.N * p.k * (p.jal ? 1 + p.d : 1);
  launch("loss_grad_kernel", grid_for(items, kThreads), kThreads, loss_grad_kernel<S>, p, pred,
         targets, jac, target_jac, static_cast<const double*>(norms),
         static_cast<const LossStats*>(stats), g_pred, g_jac);
}

}  // namespace
}  // namespace phydream::training
