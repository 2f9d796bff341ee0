// The device side of the articulated engine (kernels/articulated.cu): a grid-stride loop over
// environments and one kernel per Simulator call, each running the per-environment function of
// engine/articulated_ops.h. Included by the launcher files kernels/articulated_launch_*.cu only,
// each of which instantiates the kernels it launches: the kernels are large, and splitting them
// over translation units lets ptxas compile them in parallel.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "engine/articulated_ops.h"
#include "kernels/articulated_launch.h"
#include "kernels/check.cuh"

namespace phydream {
namespace kernels {
namespace {

// grid-stride loop over environments: f(b, thread's scalar workspace, its tangent workspace),
// recording each environment's solver outcome (SolveFlag) in status[b]
template <class S, class F>
__device__ __forceinline__ void for_each_env(const ModelView<S>& m, std::int64_t batch,
                                             ArticulatedWorkspaceSizes sz, S* ws,
                                             Vec<S, kArticulatedChunk>* tws, std::uint8_t* status,
                                             F&& f) {
  const std::int64_t tid = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const std::int64_t stride = std::int64_t(gridDim.x) * blockDim.x;
  S* my_ws = ws + tid * sz.scalars;
  Vec<S, kArticulatedChunk>* my_tws = tws != nullptr ? tws + tid * sz.tangents : nullptr;
  for (std::int64_t b = tid; b < batch; b += stride) {
    reset_solver_outcome(m, my_ws);
    f(b, my_ws, my_tws);
    status[b] = solver_outcome(m, my_ws);
  }
}

template <class S>
__global__ void art_step_kernel(ModelView<S> m, ArticulatedWorkspaceSizes sz, S* ws,
                                Vec<S, kArticulatedChunk>* tws, std::uint8_t* status, std::int64_t batch,
                                const S* __restrict__ x, const S* __restrict__ u, S* __restrict__ xn) {
  const int nx = m.nq + m.nv, nu = m.nu;
  for_each_env(m, batch, sz, ws, tws, status, [&](std::int64_t b, S* w, Vec<S, kArticulatedChunk>*) {
    articulated_step(m, w, x + b * nx, u + b * nu, xn + b * nx);
  });
}

template <class S>
__global__ void art_jvp_kernel(ModelView<S> m, ArticulatedWorkspaceSizes sz, S* ws,
                               Vec<S, kArticulatedChunk>* tws, std::uint8_t* status, std::int64_t batch, const S* x,
                               const S* u, const S* dx, const S* du, S* xn, S* dxn) {
  const int nx = m.nq + m.nv, ndx = 2 * m.nv, nu = m.nu;
  for_each_env(m, batch, sz, ws, tws, status, [&](std::int64_t b, S* w, Vec<S, kArticulatedChunk>* t) {
    articulated_jvp(m, w, t, x + b * nx, u + b * nu, dx + b * ndx, du + b * nu, xn + b * nx,
                    dxn + b * ndx);
  });
}

template <class S>
__global__ void art_vjp_kernel(ModelView<S> m, ArticulatedWorkspaceSizes sz, S* ws,
                               Vec<S, kArticulatedChunk>* tws, std::uint8_t* status, std::int64_t batch, const S* x,
                               const S* u, S* gx, S* gu, const S* g_next) {
  const int nx = m.nq + m.nv, ndx = 2 * m.nv, nu = m.nu;
  for_each_env(m, batch, sz, ws, tws, status, [&](std::int64_t b, S* w, Vec<S, kArticulatedChunk>* t) {
    articulated_vjp(m, w, t, x + b * nx, u + b * nu, gx + b * ndx, gu + b * nu, g_next + b * ndx);
  });
}

template <class S>
__global__ void art_jacobian_kernel(ModelView<S> m, ArticulatedWorkspaceSizes sz, S* ws,
                                    Vec<S, kArticulatedChunk>* tws, std::uint8_t* status, std::int64_t batch, JacobianMode mode,
                                    const S* x, const S* u, S* xn, S* jx, S* ju) {
  const int nx = m.nq + m.nv, ndx = 2 * m.nv, nu = m.nu;
  for_each_env(m, batch, sz, ws, tws, status, [&](std::int64_t b, S* w, Vec<S, kArticulatedChunk>* t) {
    S* next = xn != nullptr ? xn + b * nx : nullptr;
    articulated_jacobian(m, w, t, x + b * nx, u + b * nu, next, jx + b * ndx * ndx, ju + b * ndx * nu, mode);
  });
}

template <class S>
__global__ void art_jacobian_fd_kernel(ModelView<S> m, ArticulatedWorkspaceSizes sz, S* ws,
                                       Vec<S, kArticulatedChunk>* tws, std::uint8_t* status, std::int64_t batch, S eps,
                                       const S* x, const S* u, S* jx, S* ju) {
  const int nx = m.nq + m.nv, ndx = 2 * m.nv, nu = m.nu;
  for_each_env(m, batch, sz, ws, tws, status, [&](std::int64_t b, S* w, Vec<S, kArticulatedChunk>*) {
    articulated_jacobian_fd(m, w, x + b * nx, u + b * nu, eps, jx + b * ndx * ndx, ju + b * ndx * nu);
  });
}

template <class S>
__global__ void art_rollout_kernel(ModelView<S> m, ArticulatedWorkspaceSizes sz, S* ws,
                                   Vec<S, kArticulatedChunk>* tws, std::uint8_t* status, std::int64_t batch,
                                   std::int64_t horizon, const S* x0, const S* actions, S* states) {
  const int nx = m.nq + m.nv, nu = m.nu;
  for_each_env(m, batch, sz, ws, tws, status, [&](std::int64_t b, S* w, Vec<S, kArticulatedChunk>*) {
    articulated_rollout(m, w, x0 + b * nx, actions + b * horizon * nu, horizon,
                        states + b * (horizon + 1) * nx);
  });
}

template <class S>
__global__ void art_rollout_vjp_kernel(ModelView<S> m, ArticulatedWorkspaceSizes sz, S* ws,
                                       Vec<S, kArticulatedChunk>* tws, std::uint8_t* status, std::int64_t batch,
                                       std::int64_t horizon, std::int64_t interval,
                                       std::int64_t checkpoint_scalars, S* checkpoints,
                                       const S* x0, const S* actions, const S* states,
                                       const S* g_states, const S* g_final, S* gx0, S* g_actions) {
  const int nx = m.nq + m.nv, ndx = 2 * m.nv, nu = m.nu;
  const std::int64_t tid = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  for_each_env(m, batch, sz, ws, tws, status, [&](std::int64_t b, S* w, Vec<S, kArticulatedChunk>* t) {
    const S* gs = g_states != nullptr ? g_states + b * (horizon + 1) * ndx : nullptr;
    const S* gf = g_final != nullptr ? g_final + b * ndx : nullptr;
    if (states != nullptr) {
      articulated_rollout_vjp(m, w, t, states + b * (horizon + 1) * nx, actions + b * horizon * nu,
                              horizon, gx0 + b * ndx, g_actions + b * horizon * nu, gs, gf);
    } else {
      articulated_rollout_vjp_checkpointed(m, w, t, x0 + b * nx, actions + b * horizon * nu, horizon,
                                           interval, checkpoints + tid * checkpoint_scalars,
                                           gx0 + b * ndx, g_actions + b * horizon * nu, gs, gf);
    }
  });
}

}  // namespace
}  // namespace kernels
}  // namespace phydream
