// The CUDA engine for articulated models: the per-environment functions of
// engine/articulated_ops.h (the same code the CPU backend runs) in grid-stride loops, whose
// kernels are in kernels/articulated_kernels.cuh and launched through kernels/articulated_launch.h.
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
#include "kernels/articulated_launch.h"
#include "kernels/check.cuh"
#include "kernels/engine_kernels.cuh"

namespace phydream {
namespace kernels {
namespace {

constexpr std::int64_t kWorkspaceBudget = std::int64_t(2) << 30;  // bytes of per-thread workspaces

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
    try {
      ints_dev_ = static_cast<int*>(cuda_malloc(sizeof(int) * std::max<std::size_t>(1, ints.size()), stream_));
      reals_dev_ = static_cast<S*>(cuda_malloc(sizeof(S) * std::max<std::size_t>(1, reals.size()), stream_));
      if (!ints.empty()) cuda_memcpy_to_device(ints_dev_, ints.data(), sizeof(int) * ints.size(), stream_);
      if (!reals.empty()) cuda_memcpy_to_device(reals_dev_, reals.data(), sizeof(S) * reals.size(), stream_);
    } catch (...) {  // a half-built engine's destructor does not run: free what was allocated
      for (void* p : {static_cast<void*>(ints_dev_), static_cast<void*>(reals_dev_)}) {
        try {
          cuda_free(p, stream_);
        } catch (...) {
        }
      }
      throw;
    }
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
    launch("articulated step", batch, false, [&](const ArtLaunch<S>& l) {
      launch_art_step(l, batch, x, u, x_next);
    });
  }
  void step_jvp(std::int64_t batch, const S* x, const S* u, const S* dx, const S* du, S* x_next,
                S* dx_next) override {
    launch("articulated step_jvp", batch, true, [&](const ArtLaunch<S>& l) {
      launch_art_jvp(l, batch, x, u, dx, du, x_next, dx_next);
    });
  }
  void step_vjp(std::int64_t batch, const S* x, const S* u, S* gx, S* gu, const S* g_next) override {
    launch("articulated step_vjp", batch, true, [&](const ArtLaunch<S>& l) {
      launch_art_vjp(l, batch, x, u, gx, gu, g_next);
    });
  }
  void jacobian(std::int64_t batch, const S* x, const S* u, S* x_next, S* jac_x, S* jac_u,
                JacobianMode mode) override {
    mode = articulated_jacobian_route(m_, mode);
    // the analytic route needs tangents only for the constraint rows' IFT (step_jacobian)
    const bool tangents = mode != JacobianMode::analytic || m_.nefc_max > 0;
    launch("articulated jacobian", batch, tangents, [&](const ArtLaunch<S>& l) {
      launch_art_jacobian(l, batch, mode, x, u, x_next, jac_x, jac_u);
    });
  }
  void jacobian_fd(std::int64_t batch, const S* x, const S* u, S* jac_x, S* jac_u, S eps) override {
    launch("articulated jacobian_fd", batch, false, [&](const ArtLaunch<S>& l) {
      launch_art_jacobian_fd(l, batch, eps, x, u, jac_x, jac_u);
    });
  }
  void rollout(std::int64_t batch, std::int64_t horizon, const S* x0, const S* actions,
               S* states) override {
    launch("articulated rollout", batch, false, [&](const ArtLaunch<S>& l) {
      launch_art_rollout(l, batch, horizon, x0, actions, states);
    });
  }
  void rollout_vjp(std::int64_t batch, std::int64_t horizon, const S* x0, const S* actions,
                   const S* states, S* gx0, S* g_actions, const S* g_states, const S* g_final,
                   std::int64_t interval) override {
    const std::int64_t per_thread =
        states != nullptr ? 0 : articulated_checkpoint_scalars(arrays_.view(), horizon, interval);
    launch("articulated rollout_vjp", batch, true, [&](const ArtLaunch<S>& l) {
      StreamArray<S> checkpoints(per_thread * l.grid * kArtThreads, stream_);
      launch_art_rollout_vjp(l, batch, horizon, interval, per_thread, checkpoints.get(), x0, actions,
                             states, g_states, g_final, gx0, g_actions);
    });
  }
  void nonfinite_rows(std::int64_t batch, std::int64_t row_size, const S* data,
                      std::uint8_t* flags) override {
    PHYDREAM_LAUNCH(grid_for(batch, kThreads), kThreads, 0, stream_, nonfinite_rows_kernel<S>)(batch, row_size,
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
    if (poison_workspaces()) {  // all bits set: a quiet NaN in float and in double
      check_cuda(cudaMemsetAsync(ws, 0xFF, sizeof(S) * slots * sizes_.scalars, stream_), what);
      if (tws != nullptr) {
        check_cuda(cudaMemsetAsync(tws, 0xFF, sizeof(T) * slots * sizes_.tangents, stream_), what);
      }
    }
    std::uint8_t* status = reserve(&status_, &status_capacity_, batch);
    body(ArtLaunch<S>{m_, sizes_, ws, tws, status, static_cast<unsigned>(blocks), stream_});
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
