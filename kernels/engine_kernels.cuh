// CUDA kernels and the CUDA engine for the closed-form models: thin __global__ wrappers over the
// per-environment functions of engine/ (step.h, rollout.h). No physics lives here.
//
// Per-step kernels (step, JVP, VJP, Jacobian) give a block kBlock environments and stage its rows
// through shared memory: the block reads and writes its slice of each (B, W) array as one
// contiguous, coalesced range, while each thread works on its own row. Rows are padded to an odd
// number of words so threads reading their rows hit distinct banks. Every kernel loops over
// tiles (grid-stride), so any batch size, from 1 to billions, is covered by a bounded grid.
// Rollout, finite-difference and checkpoint kernels read and write global memory directly.
//
// Kernel arguments: model parameters and step size, sizes, then inputs, then outputs.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <memory>

#include "engine/cuda_engine_factory.h"
#include "engine/dispatch.h"
#include "engine/rollout.h"
#include "engine/simulator.h"
#include "engine/step.h"
#include "kernels/check.cuh"

namespace phydream {
namespace kernels {

constexpr int kBlock = 128;            // environments (threads) per block in staged kernels
constexpr int kThreads = 256;          // threads per block in the unstaged kernels
constexpr std::int64_t kMaxBlocks = 1 << 20;  // grid cap; grid-stride loops cover the rest

// row stride in shared memory: odd, so the rows of a warp's threads start in distinct banks
template <int W>
constexpr int padded() {
  return W % 2 == 0 ? W + 1 : W;
}

inline unsigned grid_for(std::int64_t items, int per_block) {
  const std::int64_t blocks = (items + per_block - 1) / per_block;
  return static_cast<unsigned>(std::max<std::int64_t>(1, std::min(blocks, kMaxBlocks)));
}

// rows [first, first + n) of a (B, W) array into shared rows of stride padded<W>(), coalesced
template <int W, class S>
__device__ __forceinline__ void load_rows(const S* __restrict__ src, std::int64_t first, int n,
                                          S* tile) {
  const S* base = src + first * W;
  for (int i = threadIdx.x; i < n * W; i += blockDim.x) {
    tile[(i / W) * padded<W>() + i % W] = base[i];
  }
}

// the reverse of load_rows
template <int W, class S>
__device__ __forceinline__ void store_rows(S* __restrict__ dst, std::int64_t first, int n,
                                           const S* tile) {
  S* base = dst + first * W;
  for (int i = threadIdx.x; i < n * W; i += blockDim.x) {
    base[i] = tile[(i / W) * padded<W>() + i % W];
  }
}

// shared bytes of a staged kernel with rows of the given widths; must fit the 48 KiB static limit
template <class S>
constexpr int staged_bytes(std::initializer_list<int> widths) {
  int words = 0;
  for (int w : widths) words += (w % 2 == 0 ? w + 1 : w) * kBlock;
  return words * static_cast<int>(sizeof(S));
}

// runs body(first, n) for each tile of kBlock environments this block owns (grid-stride), with
// n = the environments in the tile; the barrier after it lets the next tile reuse shared memory
template <class Body>
__device__ __forceinline__ void for_each_tile(std::int64_t batch, Body&& body) {
  for (std::int64_t first = std::int64_t(blockIdx.x) * kBlock; first < batch;
       first += std::int64_t(gridDim.x) * kBlock) {
    body(first, static_cast<int>(min(std::int64_t(kBlock), batch - first)));
    __syncthreads();
  }
}

// =============================================================================================
// per-step kernels, staged through shared memory

template <Integrator I, class Model, class S = typename Model::scalar_type>
__global__ void __launch_bounds__(kBlock)
    step_kernel(typename Model::Params p, S h, std::int64_t batch, const S* __restrict__ x,
                const S* __restrict__ u, S* __restrict__ x_next) {
  constexpr int nx = Model::nx, nu = Model::nu;
  static_assert(staged_bytes<S>({nx, nu, nx}) <= 48 * 1024, "step tile too large");
  __shared__ S sx[kBlock * padded<nx>()];
  __shared__ S su[kBlock * padded<nu>()];
  __shared__ S sxn[kBlock * padded<nx>()];
  const int t = threadIdx.x;
  for_each_tile(batch, [&](std::int64_t first, int n) {
    load_rows<nx>(x, first, n, sx);
    load_rows<nu>(u, first, n, su);
    __syncthreads();
    if (t < n) {
      step<I, Model>(p, h, sx + t * padded<nx>(), su + t * padded<nu>(), sxn + t * padded<nx>());
    }
    __syncthreads();
    store_rows<nx>(x_next, first, n, sxn);
  });
}

template <Integrator I, class Model, class S = typename Model::scalar_type>
__global__ void __launch_bounds__(kBlock)
    step_jvp_kernel(typename Model::Params p, S h, std::int64_t batch, const S* __restrict__ x,
                    const S* __restrict__ u, const S* __restrict__ dx, const S* __restrict__ du,
                    S* __restrict__ x_next, S* __restrict__ dx_next) {
  constexpr int nx = Model::nx, nu = Model::nu;
  static_assert(staged_bytes<S>({nx, nu, nx, nu, nx, nx}) <= 48 * 1024, "jvp tile too large");
  __shared__ S sx[kBlock * padded<nx>()];
  __shared__ S su[kBlock * padded<nu>()];
  __shared__ S sdx[kBlock * padded<nx>()];
  __shared__ S sdu[kBlock * padded<nu>()];
  __shared__ S sxn[kBlock * padded<nx>()];
  __shared__ S sdxn[kBlock * padded<nx>()];
  const int t = threadIdx.x;
  for_each_tile(batch, [&](std::int64_t first, int n) {
    load_rows<nx>(x, first, n, sx);
    load_rows<nu>(u, first, n, su);
    load_rows<nx>(dx, first, n, sdx);
    load_rows<nu>(du, first, n, sdu);
    __syncthreads();
    if (t < n) {
      step_jvp<I, Model>(p, h, sx + t * padded<nx>(), su + t * padded<nu>(),
                         sdx + t * padded<nx>(), sdu + t * padded<nu>(), sxn + t * padded<nx>(),
                         sdxn + t * padded<nx>());
    }
    __syncthreads();
    store_rows<nx>(x_next, first, n, sxn);
    store_rows<nx>(dx_next, first, n, sdxn);
  });
}

template <Integrator I, class Model, class S = typename Model::scalar_type>
__global__ void __launch_bounds__(kBlock)
    step_vjp_kernel(typename Model::Params p, S h, std::int64_t batch, const S* __restrict__ x,
                    const S* __restrict__ u, const S* __restrict__ g_next, S* __restrict__ gx,
                    S* __restrict__ gu) {
  constexpr int nx = Model::nx, nu = Model::nu;
  static_assert(staged_bytes<S>({nx, nu, nx, nx, nu}) <= 48 * 1024, "vjp tile too large");
  __shared__ S sx[kBlock * padded<nx>()];
  __shared__ S su[kBlock * padded<nu>()];
  __shared__ S sgn[kBlock * padded<nx>()];
  __shared__ S sgx[kBlock * padded<nx>()];
  __shared__ S sgu[kBlock * padded<nu>()];
  const int t = threadIdx.x;
  for_each_tile(batch, [&](std::int64_t first, int n) {
    load_rows<nx>(x, first, n, sx);
    load_rows<nu>(u, first, n, su);
    load_rows<nx>(g_next, first, n, sgn);
    load_rows<nx>(gx, first, n, sgx);  // accumulated into
    load_rows<nu>(gu, first, n, sgu);
    __syncthreads();
    if (t < n) {
      step_vjp<I, Model>(p, h, sx + t * padded<nx>(), su + t * padded<nu>(),
                         sgx + t * padded<nx>(), sgu + t * padded<nu>(), sgn + t * padded<nx>());
    }
    __syncthreads();
    store_rows<nx>(gx, first, n, sgx);
    store_rows<nu>(gu, first, n, sgu);
  });
}

template <Integrator I, bool kForward, class Model, class S = typename Model::scalar_type>
__global__ void __launch_bounds__(kBlock)
    jacobian_kernel(typename Model::Params p, S h, std::int64_t batch, const S* __restrict__ x,
                    const S* __restrict__ u, S* __restrict__ x_next, S* __restrict__ jac_x,
                    S* __restrict__ jac_u) {
  constexpr int nx = Model::nx, nu = Model::nu;
  static_assert(staged_bytes<S>({nx, nu, nx, nx * nx, nx * nu}) <= 48 * 1024,
                "jacobian tile too large");
  __shared__ S sx[kBlock * padded<nx>()];
  __shared__ S su[kBlock * padded<nu>()];
  __shared__ S sxn[kBlock * padded<nx>()];
  __shared__ S sjx[kBlock * padded<nx * nx>()];
  __shared__ S sju[kBlock * padded<nx * nu>()];
  const int t = threadIdx.x;
  for_each_tile(batch, [&](std::int64_t first, int n) {
    load_rows<nx>(x, first, n, sx);
    load_rows<nu>(u, first, n, su);
    __syncthreads();
    if (t < n) {
      if constexpr (kForward) {
        jacobian_fwd<I, Model>(p, h, sx + t * padded<nx>(), su + t * padded<nu>(),
                               sxn + t * padded<nx>(), sjx + t * padded<nx * nx>(),
                               sju + t * padded<nx * nu>());
      } else {
        jacobian_rev<I, Model>(p, h, sx + t * padded<nx>(), su + t * padded<nu>(),
                               x_next != nullptr ? sxn + t * padded<nx>() : nullptr,
                               sjx + t * padded<nx * nx>(), sju + t * padded<nx * nu>());
      }
    }
    __syncthreads();
    if (x_next != nullptr) store_rows<nx>(x_next, first, n, sxn);
    store_rows<nx * nx>(jac_x, first, n, sjx);
    store_rows<nx * nu>(jac_u, first, n, sju);
  });
}

// =============================================================================================
// unstaged kernels

// one thread per (environment, input column): 2 (nx + nu) perturbed steps run in parallel
template <Integrator I, class Model, class S = typename Model::scalar_type>
__global__ void jacobian_fd_kernel(typename Model::Params p, S h, std::int64_t batch, S eps,
                                   const S* __restrict__ x, const S* __restrict__ u,
                                   S* __restrict__ jac_x, S* __restrict__ jac_u) {
  constexpr int nx = Model::nx, nu = Model::nu, K = nx + nu;
  for (std::int64_t idx = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < batch * K;
       idx += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t b = idx / K;
    const int c = static_cast<int>(idx % K);
    S xl[nx], ul[nu], column[nx];
    for (int i = 0; i < nx; ++i) xl[i] = x[b * nx + i];
    for (int i = 0; i < nu; ++i) ul[i] = u[b * nu + i];
    jacobian_fd_column<I, Model>(p, h, xl, ul, c, eps, column);
    for (int i = 0; i < nx; ++i) {
      if (c < nx) {
        jac_x[(b * nx + i) * nx + c] = column[i];
      } else {
        jac_u[(b * nx + i) * nu + (c - nx)] = column[i];
      }
    }
  }
}

template <Integrator I, class Model, class S = typename Model::scalar_type>
__global__ void rollout_kernel(typename Model::Params p, S h, std::int64_t batch,
                               std::int64_t horizon, const S* __restrict__ x0,
                               const S* __restrict__ actions, S* __restrict__ states) {
  constexpr int nx = Model::nx, nu = Model::nu;
  for (std::int64_t b = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; b < batch;
       b += std::int64_t(gridDim.x) * blockDim.x) {
    rollout<I, Model>(p, h, x0 + b * nx, actions + b * horizon * nu, horizon,
                      states + b * (horizon + 1) * nx);
  }
}

template <Integrator I, class Model, class S = typename Model::scalar_type>
__global__ void rollout_vjp_kernel(typename Model::Params p, S h, std::int64_t batch,
                                   std::int64_t horizon, std::int64_t interval,
                                   const S* __restrict__ x0, const S* __restrict__ actions,
                                   const S* __restrict__ states, const S* __restrict__ g_states,
                                   const S* __restrict__ g_final, S* __restrict__ scratch,
                                   S* __restrict__ gx0, S* __restrict__ g_actions) {
  constexpr int nx = Model::nx, nu = Model::nu;
  const std::int64_t scratch_size = checkpoint_scratch_states(horizon, interval) * nx;
  for (std::int64_t b = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; b < batch;
       b += std::int64_t(gridDim.x) * blockDim.x) {
    const S* gs = g_states != nullptr ? g_states + b * (horizon + 1) * nx : nullptr;
    const S* gf = g_final != nullptr ? g_final + b * nx : nullptr;
    if (states != nullptr) {
      rollout_vjp<I, Model>(p, h, states + b * (horizon + 1) * nx, actions + b * horizon * nu,
                            horizon, gx0 + b * nx, g_actions + b * horizon * nu, gs, gf);
    } else {
      rollout_vjp_checkpointed<I, Model>(p, h, x0 + b * nx, actions + b * horizon * nu, horizon,
                                         interval, scratch + b * scratch_size, gx0 + b * nx,
                                         g_actions + b * horizon * nu, gs, gf);
    }
  }
}

template <class S>
__global__ void nonfinite_rows_kernel(std::int64_t batch, std::int64_t row_size,
                                      const S* __restrict__ data, std::uint8_t* __restrict__ flags) {
  for (std::int64_t b = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; b < batch;
       b += std::int64_t(gridDim.x) * blockDim.x) {
    flags[b] = any_nonfinite(data + b * row_size, row_size);
  }
}

// =============================================================================================
// the engine: launches on the configured stream, never synchronises except in synchronize()

template <class Model>
class CudaEngine final : public StepEngine<typename Model::scalar_type> {
 public:
  using S = typename Model::scalar_type;
  static constexpr int nx = Model::nx, nu = Model::nu;

  explicit CudaEngine(const EngineConfig& config)
      : params_(Model::params_from(config.params.data())),
        h_(static_cast<S>(config.dt)),
        integrator_(config.integrator),
        stream_(static_cast<cudaStream_t>(config.stream)) {}

  void step(std::int64_t batch, const S* x, const S* u, S* x_next) override {
    dispatch_integrator(integrator_, [&](auto tag) {
      constexpr Integrator I = decltype(tag)::value;
      PHYDREAM_LAUNCH(grid_for(batch, kBlock), kBlock, 0, stream_, step_kernel<I, Model>)
      (params_, h_, batch, x, u, x_next);
    });
    check_launch("step_kernel");
  }

  void step_jvp(std::int64_t batch, const S* x, const S* u, const S* dx, const S* du, S* x_next,
                S* dx_next) override {
    dispatch_integrator(integrator_, [&](auto tag) {
      constexpr Integrator I = decltype(tag)::value;
      PHYDREAM_LAUNCH(grid_for(batch, kBlock), kBlock, 0, stream_, step_jvp_kernel<I, Model>)
      (params_, h_, batch, x, u, dx, du, x_next, dx_next);
    });
    check_launch("step_jvp_kernel");
  }

  void step_vjp(std::int64_t batch, const S* x, const S* u, S* gx, S* gu,
                const S* g_next) override {
    dispatch_integrator(integrator_, [&](auto tag) {
      constexpr Integrator I = decltype(tag)::value;
      PHYDREAM_LAUNCH(grid_for(batch, kBlock), kBlock, 0, stream_, step_vjp_kernel<I, Model>)
      (params_, h_, batch, x, u, g_next, gx, gu);
    });
    check_launch("step_vjp_kernel");
  }

  void jacobian(std::int64_t batch, const S* x, const S* u, S* x_next, S* jac_x, S* jac_u,
                JacobianMode mode) override {
    dispatch_integrator(integrator_, [&](auto tag) {
      constexpr Integrator I = decltype(tag)::value;
      if (mode != JacobianMode::reverse) {  // analytic: the forward sweep
        PHYDREAM_LAUNCH(grid_for(batch, kBlock), kBlock, 0, stream_,
                        jacobian_kernel<I, true, Model>)
        (params_, h_, batch, x, u, x_next, jac_x, jac_u);
      } else {
        PHYDREAM_LAUNCH(grid_for(batch, kBlock), kBlock, 0, stream_,
                        jacobian_kernel<I, false, Model>)
        (params_, h_, batch, x, u, x_next, jac_x, jac_u);
      }
    });
    check_launch("jacobian_kernel");
  }

  void jacobian_fd(std::int64_t batch, const S* x, const S* u, S* jac_x, S* jac_u,
                   S eps) override {
    dispatch_integrator(integrator_, [&](auto tag) {
      constexpr Integrator I = decltype(tag)::value;
      PHYDREAM_LAUNCH(grid_for(batch * (nx + nu), kThreads), kThreads, 0, stream_,
                      jacobian_fd_kernel<I, Model>)
      (params_, h_, batch, eps, x, u, jac_x, jac_u);
    });
    check_launch("jacobian_fd_kernel");
  }

  void rollout(std::int64_t batch, std::int64_t horizon, const S* x0, const S* actions,
               S* states) override {
    dispatch_integrator(integrator_, [&](auto tag) {
      constexpr Integrator I = decltype(tag)::value;
      PHYDREAM_LAUNCH(grid_for(batch, kThreads), kThreads, 0, stream_, rollout_kernel<I, Model>)
      (params_, h_, batch, horizon, x0, actions, states);
    });
    check_launch("rollout_kernel");
  }

  void rollout_vjp(std::int64_t batch, std::int64_t horizon, const S* x0, const S* actions,
                   const S* states, S* gx0, S* g_actions, const S* g_states, const S* g_final,
                   std::int64_t interval) override {
    // checkpoints and one re-simulated segment per environment, released in stream order
    S* scratch = nullptr;
    if (states == nullptr) {
      const std::int64_t per_env = checkpoint_scratch_states(horizon, interval) * nx;
      scratch = static_cast<S*>(cuda_malloc(sizeof(S) * per_env * batch, stream_));
    }
    dispatch_integrator(integrator_, [&](auto tag) {
      constexpr Integrator I = decltype(tag)::value;
      PHYDREAM_LAUNCH(grid_for(batch, kThreads), kThreads, 0, stream_, rollout_vjp_kernel<I, Model>)
      (params_, h_, batch, horizon, interval, x0, actions, states, g_states, g_final, scratch, gx0,
       g_actions);
    });
    const cudaError_t launch = cudaGetLastError();
    if (scratch != nullptr) cuda_free(scratch, stream_);
    check_cuda(launch, "rollout_vjp_kernel");
  }

  void nonfinite_rows(std::int64_t batch, std::int64_t row_size, const S* data,
                      std::uint8_t* flags) override {
    PHYDREAM_LAUNCH(grid_for(batch, kThreads), kThreads, 0, stream_, nonfinite_rows_kernel<S>)
    (batch, row_size, data, flags);
    check_launch("nonfinite_rows_kernel");
  }

  // the built-in environments have no constraint solver
  void solver_status(std::int64_t batch, std::uint8_t* flags) override {
    check_cuda(cudaMemsetAsync(flags, static_cast<int>(SolveFlag::ok), static_cast<std::size_t>(batch), stream_),
               "solver_status");
  }

  void synchronize() override { check_cuda(cudaStreamSynchronize(stream_), "synchronize"); }

 private:
  typename Model::Params params_;
  S h_;
  Integrator integrator_;
  cudaStream_t stream_;
};

}  // namespace kernels

template <class Model>
std::unique_ptr<StepEngine<typename Model::scalar_type>> make_cuda_engine(
    const EngineConfig& config) {
  return std::make_unique<kernels::CudaEngine<Model>>(config);
}

}  // namespace phydream

/// Instantiates the CUDA engine of a model template for float and double (in kernels/<model>.cu).
#define PHYDREAM_INSTANTIATE_CUDA_ENGINE(ModelT)                                          \
  template std::unique_ptr<phydream::StepEngine<float>>                                   \
  phydream::make_cuda_engine<ModelT<float>>(const phydream::EngineConfig&);               \
  template std::unique_ptr<phydream::StepEngine<double>>                                  \
  phydream::make_cuda_engine<ModelT<double>>(const phydream::EngineConfig&);
