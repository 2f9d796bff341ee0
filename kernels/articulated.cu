// CUDA kernels and engine for articulated models: the per-environment functions of
// engine/articulated_ops.h (the same code the CPU backend runs) in grid-stride loops.
//
// The model lives in device memory as ModelArrays' two blocks (ints and Scalars), uploaded once;
// kernels get a ModelView pointing into them by value. Every thread works through environments
// b = tid, tid + stride, ... with its own workspace (primal data, K-direction tangents), so the
// workspace is sized by the grid, not by the batch: the grid is capped such that all workspaces
// fit in kWorkspaceBudget bytes, and any batch size is covered by the grid-stride loop. The
// engine keeps its workspaces between calls and grows them only when a call needs more.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <memory>

#include "engine/articulated.h"
#include "engine/articulated_ops.h"
#include "engine/backend.h"
#include "kernels/check.cuh"
#include "kernels/engine_kernels.cuh"

namespace phydream {
namespace kernels {
namespace {

constexpr int kArtThreads = 128;
constexpr std::int64_t kWorkspaceBudget = std::int64_t(2) << 30;  // bytes of per-thread workspaces

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

// device memory released in stream order when the call's launches are queued
template <class E>
class StreamArray {
 public:
  StreamArray(std::int64_t count, cudaStream_t stream) : stream_(stream) {
    if (count > 0) ptr_ = static_cast<E*>(cuda_malloc(sizeof(E) * count, stream));
  }
  StreamArray(const StreamArray&) = delete;
  StreamArray& operator=(const StreamArray&) = delete;
  ~StreamArray() {
    if (ptr_ != nullptr) {
      try {
        cuda_free(ptr_, stream_);
      } catch (...) {  // never throw from a destructor; the runtime reports the error again
      }
    }
  }
  E* get() const { return ptr_; }

 private:
  E* ptr_ = nullptr;
  cudaStream_t stream_;
};

template <class S>
class ArticulatedCudaEngine final : public StepEngine<S> {
 public:
  using T = Vec<S, kArticulatedChunk>;

  explicit ArticulatedCudaEngine(const EngineConfig& config)
      : arrays_(*config.model, false, config.grad_mode, config.toi_correction), stream_(static_cast<cudaStream_t>(config.stream)) {
    const auto& ints = arrays_.int_block();
    const auto& reals = arrays_.real_block();
    ints_dev_ = static_cast<int*>(cuda_malloc(sizeof(int) * std::max<std::size_t>(1, ints.size()), stream_));
    reals_dev_ = static_cast<S*>(cuda_malloc(sizeof(S) * std::max<std::size_t>(1, reals.size()), stream_));
    if (!ints.empty()) cuda_memcpy_to_device(ints_dev_, ints.data(), sizeof(int) * ints.size(), stream_);
    if (!reals.empty()) cuda_memcpy_to_device(reals_dev_, reals.data(), sizeof(S) * reals.size(), stream_);
    m_ = arrays_.view_at(ints_dev_, reals_dev_);
    sizes_ = articulated_workspace_sizes(arrays_.view());
  }
  ArticulatedCudaEngine(const ArticulatedCudaEngine&) = delete;
  ArticulatedCudaEngine& operator=(const ArticulatedCudaEngine&) = delete;
  ~ArticulatedCudaEngine() override {
    try {
      cuda_free(ints_dev_, stream_);
      cuda_free(reals_dev_, stream_);
      cuda_free(ws_, stream_);
      cuda_free(tws_, stream_);
      cuda_free(status_, stream_);
    } catch (...) {  // never throw from a destructor
    }
  }

  void step(std::int64_t batch, const S* x, const S* u, S* x_next) override {
    launch("articulated step", batch, false, [&](unsigned grid, S* ws, T* tws, std::uint8_t* status) {
      art_step_kernel<S><<<grid, kArtThreads, 0, stream_>>>(m_, sizes_, ws, tws, status, batch, x, u, x_next);
    });
  }
  void step_jvp(std::int64_t batch, const S* x, const S* u, const S* dx, const S* du, S* x_next,
                S* dx_next) override {
    launch("articulated step_jvp", batch, true, [&](unsigned grid, S* ws, T* tws, std::uint8_t* status) {
      art_jvp_kernel<S><<<grid, kArtThreads, 0, stream_>>>(m_, sizes_, ws, tws, status, batch, x, u, dx, du,
                                                           x_next, dx_next);
    });
  }
  void step_vjp(std::int64_t batch, const S* x, const S* u, S* gx, S* gu, const S* g_next) override {
    launch("articulated step_vjp", batch, true, [&](unsigned grid, S* ws, T* tws, std::uint8_t* status) {
      art_vjp_kernel<S><<<grid, kArtThreads, 0, stream_>>>(m_, sizes_, ws, tws, status, batch, x, u, gx, gu,
                                                           g_next);
    });
  }
  void jacobian(std::int64_t batch, const S* x, const S* u, S* x_next, S* jac_x, S* jac_u,
                JacobianMode mode) override {
    mode = articulated_jacobian_route(m_, mode);
    launch("articulated jacobian", batch, mode != JacobianMode::analytic, [&](unsigned grid, S* ws, T* tws, std::uint8_t* status) {
      art_jacobian_kernel<S><<<grid, kArtThreads, 0, stream_>>>(
          m_, sizes_, ws, tws, status, batch, mode, x, u, x_next, jac_x, jac_u);
    });
  }
  void jacobian_fd(std::int64_t batch, const S* x, const S* u, S* jac_x, S* jac_u, S eps) override {
    launch("articulated jacobian_fd", batch, false, [&](unsigned grid, S* ws, T* tws, std::uint8_t* status) {
      art_jacobian_fd_kernel<S><<<grid, kArtThreads, 0, stream_>>>(m_, sizes_, ws, tws, status, batch, eps, x,
                                                                   u, jac_x, jac_u);
    });
  }
  void rollout(std::int64_t batch, std::int64_t horizon, const S* x0, const S* actions,
               S* states) override {
    launch("articulated rollout", batch, false, [&](unsigned grid, S* ws, T* tws, std::uint8_t* status) {
      art_rollout_kernel<S><<<grid, kArtThreads, 0, stream_>>>(m_, sizes_, ws, tws, status, batch, horizon,
                                                               x0, actions, states);
    });
  }
  void rollout_vjp(std::int64_t batch, std::int64_t horizon, const S* x0, const S* actions,
                   const S* states, S* gx0, S* g_actions, const S* g_states, const S* g_final,
                   std::int64_t interval) override {
    const std::int64_t per_thread =
        states != nullptr ? 0 : articulated_checkpoint_scalars(arrays_.view(), horizon, interval);
    launch("articulated rollout_vjp", batch, true, [&](unsigned grid, S* ws, T* tws, std::uint8_t* status) {
      StreamArray<S> checkpoints(per_thread * grid * kArtThreads, stream_);
      art_rollout_vjp_kernel<S><<<grid, kArtThreads, 0, stream_>>>(
          m_, sizes_, ws, tws, status, batch, horizon, interval, per_thread, checkpoints.get(), x0, actions,
          states, g_states, g_final, gx0, g_actions);
    });
  }
  void nonfinite_rows(std::int64_t batch, std::int64_t row_size, const S* data,
                      std::uint8_t* flags) override {
    nonfinite_rows_kernel<S><<<grid_for(batch, kThreads), kThreads, 0, stream_>>>(batch, row_size,
                                                                            data, flags);
    check_launch("articulated nonfinite_rows");
  }
  void solver_status(std::int64_t batch, std::uint8_t* flags) override {
    check_cuda(cudaMemcpyAsync(flags, status_, static_cast<std::size_t>(batch), cudaMemcpyDeviceToDevice,
                               stream_),
               "solver_status");
  }
  void synchronize() override { check_cuda(cudaStreamSynchronize(stream_), "synchronize"); }

 private:
  // a grid of at most batch threads whose workspaces (tangents only when the call uses them)
  // fit in kWorkspaceBudget, with those workspaces for this call
  template <class L>
  void launch(const char* what, std::int64_t batch, bool tangents, L&& body) {
    const std::int64_t per_thread = static_cast<std::int64_t>(sizeof(S)) * sizes_.scalars +
                                    (tangents ? static_cast<std::int64_t>(sizeof(T)) * sizes_.tangents : 0);
    const std::int64_t cap = std::max<std::int64_t>(kArtThreads, kWorkspaceBudget / per_thread);
    const std::int64_t threads = std::min<std::int64_t>(batch, cap);
    const std::int64_t blocks = (threads + kArtThreads - 1) / kArtThreads;
    const std::int64_t slots = blocks * kArtThreads;
    S* ws = reserve(&ws_, &ws_capacity_, slots * sizes_.scalars);
    T* tws = tangents ? reserve(&tws_, &tws_capacity_, slots * sizes_.tangents) : nullptr;
    std::uint8_t* status = reserve(&status_, &status_capacity_, batch);
    body(static_cast<unsigned>(blocks), ws, tws, status);
    check_launch(what);
  }

  // the engine's workspace, grown when a call needs more; calls queue on stream_, so one call's
  // kernels finish with it before the next call's start
  template <class E>
  E* reserve(E** ptr, std::int64_t* capacity, std::int64_t count) {
    if (count > *capacity) {
      cuda_free(*ptr, stream_);
      *ptr = nullptr;
      *capacity = 0;
      *ptr = static_cast<E*>(cuda_malloc(sizeof(E) * count, stream_));
      *capacity = count;
    }
    return *ptr;
  }

  ModelArrays<S> arrays_;
  cudaStream_t stream_;
  int* ints_dev_ = nullptr;
  S* reals_dev_ = nullptr;
  ModelView<S> m_{};
  ArticulatedWorkspaceSizes sizes_{};
  S* ws_ = nullptr;
  T* tws_ = nullptr;
  std::uint8_t* status_ = nullptr;  // SolveFlag per environment of the last call
  std::int64_t ws_capacity_ = 0, tws_capacity_ = 0, status_capacity_ = 0;
};

}  // namespace

template <class S>
std::unique_ptr<StepEngine<S>> make_articulated_cuda_engine(const EngineConfig& config) {
  return std::make_unique<ArticulatedCudaEngine<S>>(config);
}

template std::unique_ptr<StepEngine<float>> make_articulated_cuda_engine<float>(const EngineConfig&);
template std::unique_ptr<StepEngine<double>> make_articulated_cuda_engine<double>(const EngineConfig&);

}  // namespace kernels
}  // namespace phydream
