// The CPU backend for articulated models: the per-environment functions of engine/forward.h,
// step_jvp.h, step_vjp.h and articulated_jacobian.h looped over the batch with OpenMP threads.
// Each thread owns one set of workspaces (primal data, tangents, adjoints), allocated once when
// the engine is built, so no call allocates per environment.
//
// The CUDA engine's workspaces start as whatever the device's memory pool held, and the CPU's
// are reused from one environment to the next, so a read of a workspace slot before any write
// would go unnoticed here and give garbage there. With PHYDREAM_POISON_WORKSPACES=1 in the
// environment every workspace is filled with quiet NaN before each environment, so such a read
// turns into a NaN that the tests see (tests/CMakeLists.txt runs every suite that way; the CUDA
// engine poisons its workspaces before each call).
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "engine/articulated.h"
#include "engine/articulated_ops.h"
#include "engine/data.h"
#include "engine/forward.h"
#include "engine/model_view.h"
#include "engine/simulator.h"
#include "engine/step_jvp.h"
#include "engine/step_vjp.h"

namespace phydream {

template <class S>
class ArticulatedCpuEngine final : public StepEngine<S> {
 public:
  // tangent directions (Jacobian columns) or cotangents (rows) carried per sweep
  static constexpr int K = kArticulatedChunk;
  using T = Vec<S, K>;

  explicit ArticulatedCpuEngine(const EngineConfig& config)
      : arrays_(*config.model, false, config.grad_mode, config.toi_correction),
        m_(arrays_.view()),
        sizes_(articulated_workspace_sizes(m_)),
        threads_(config.threads > 0 ? config.threads : omp_get_max_threads()) {
    scalar_ws_.resize(static_cast<std::size_t>(sizes_.scalars) * threads_);
    tangent_ws_.resize(static_cast<std::size_t>(sizes_.tangents) * threads_);
  }

  void step(std::int64_t batch, const S* x, const S* u, S* x_next) override {
    const int nx = m_.nq + m_.nv, nu = m_.nu;
    for_each_env(batch, [&](std::int64_t b, S* ws, T*) {
      articulated_step(m_, ws, x + b * nx, u + b * nu, x_next + b * nx);
    });
  }

  void step_jvp(std::int64_t batch, const S* x, const S* u, const S* dx, const S* du, S* x_next,
                S* dx_next) override {
    const int nx = m_.nq + m_.nv, ndx = 2 * m_.nv, nu = m_.nu;
    for_each_env(batch, [&](std::int64_t b, S* ws, T* tws) {
      articulated_jvp(m_, ws, tws, x + b * nx, u + b * nu, dx + b * ndx, du + b * nu,
                      x_next + b * nx, dx_next + b * ndx);
    });
  }

  void step_vjp(std::int64_t batch, const S* x, const S* u, S* gx, S* gu,
                const S* g_next) override {
    const int nx = m_.nq + m_.nv, ndx = 2 * m_.nv, nu = m_.nu;
    for_each_env(batch, [&](std::int64_t b, S* ws, T* tws) {
      articulated_vjp(m_, ws, tws, x + b * nx, u + b * nu, gx + b * ndx, gu + b * nu,
                      g_next + b * ndx);
    });
  }

  void jacobian(std::int64_t batch, const S* x, const S* u, S* x_next, S* jac_x, S* jac_u,
                JacobianMode mode) override {
    const int nx = m_.nq + m_.nv, ndx = 2 * m_.nv, nu = m_.nu;
    for_each_env(batch, [&](std::int64_t b, S* ws, T* tws) {
      S* xn = x_next != nullptr ? x_next + b * nx : nullptr;
      articulated_jacobian(m_, ws, tws, x + b * nx, u + b * nu, xn, jac_x + b * ndx * ndx,
                           jac_u + b * ndx * nu, mode);
    });
  }

  void jacobian_fd(std::int64_t batch, const S* x, const S* u, S* jac_x, S* jac_u,
                   S eps) override {
    const int nx = m_.nq + m_.nv, ndx = 2 * m_.nv, nu = m_.nu;
    for_each_env(batch, [&](std::int64_t b, S* ws, T*) {
      articulated_jacobian_fd(m_, ws, x + b * nx, u + b * nu, eps, jac_x + b * ndx * ndx,
                              jac_u + b * ndx * nu);
    });
  }

  void rollout(std::int64_t batch, std::int64_t horizon, const S* x0, const S* actions,
               S* states) override {
    const int nx = m_.nq + m_.nv, nu = m_.nu;
    for_each_env(batch, [&](std::int64_t b, S* ws, T*) {
      articulated_rollout(m_, ws, x0 + b * nx, actions + b * horizon * nu, horizon,
                          states + b * (horizon + 1) * nx);
    });
  }

  void rollout_vjp(std::int64_t batch, std::int64_t horizon, const S* x0, const S* actions,
                   const S* states, S* gx0, S* g_actions, const S* g_states, const S* g_final,
                   std::int64_t interval) override {
    const int nx = m_.nq + m_.nv, ndx = 2 * m_.nv, nu = m_.nu;
    // re-simulation from checkpoints keeps O(sqrt(T)) states per thread
    const std::int64_t scratch =
        states != nullptr ? 0 : articulated_checkpoint_scalars(m_, horizon, interval);
    std::vector<S> checkpoints(static_cast<std::size_t>(scratch * threads_),
                               poison_workspaces() ? std::numeric_limits<S>::quiet_NaN() : S(0));
    for_each_env(batch, [&](std::int64_t b, S* ws, T* tws) {
      const S* gs = g_states != nullptr ? g_states + b * (horizon + 1) * ndx : nullptr;
      const S* gf = g_final != nullptr ? g_final + b * ndx : nullptr;
      if (states != nullptr) {
        articulated_rollout_vjp(m_, ws, tws, states + b * (horizon + 1) * nx,
                                actions + b * horizon * nu, horizon, gx0 + b * ndx,
                                g_actions + b * horizon * nu, gs, gf);
      } else {
        S* mine = checkpoints.data() + omp_get_thread_num() * scratch;
        articulated_rollout_vjp_checkpointed(m_, ws, tws, x0 + b * nx, actions + b * horizon * nu,
                                             horizon, interval, mine, gx0 + b * ndx,
                                             g_actions + b * horizon * nu, gs, gf);
      }
    });
  }

  void nonfinite_rows(std::int64_t batch, std::int64_t row_size, const S* data,
                      std::uint8_t* flags) override {
#pragma omp parallel for schedule(static) num_threads(threads_) if (batch >= 16 && threads_ > 1)
    for (std::int64_t b = 0; b < batch; ++b) flags[b] = any_nonfinite(data + b * row_size, row_size);
  }

  void solver_status(std::int64_t batch, std::uint8_t* flags) override {
    std::copy(status_.begin(), status_.begin() + batch, flags);
  }

  void synchronize() override {}

 private:
  // f(b, scalar workspace, tangent workspace) for every environment, recording each one's
  // solver outcome in status_; small batches inline
  template <class F>
  void for_each_env(std::int64_t batch, F&& f) {
    status_.resize(static_cast<std::size_t>(batch));
    const bool poison = poison_workspaces();
    T nan_tangent;
    for (int i = 0; i < K; ++i) nan_tangent.v[i] = std::numeric_limits<S>::quiet_NaN();
    auto run = [&](std::int64_t b, int thread) {
      S* ws = scalar_ws_.data() + static_cast<std::size_t>(sizes_.scalars) * thread;
      T* tws = tangent_ws_.data() + static_cast<std::size_t>(sizes_.tangents) * thread;
      if (poison) {
        std::fill(ws, ws + sizes_.scalars, std::numeric_limits<S>::quiet_NaN());
        std::fill(tws, tws + sizes_.tangents, nan_tangent);
      }
      reset_solver_outcome(m_, ws);
      f(b, ws, tws);
      status_[static_cast<std::size_t>(b)] = solver_outcome(m_, ws);
    };
    if (batch < 16 || threads_ == 1) {
      for (std::int64_t b = 0; b < batch; ++b) run(b, 0);
      return;
    }
#pragma omp parallel for schedule(static) num_threads(threads_)
    for (std::int64_t b = 0; b < batch; ++b) run(b, omp_get_thread_num());
  }

  ModelArrays<S> arrays_;
  ModelView<S> m_;
  ArticulatedWorkspaceSizes sizes_;
  int threads_;
  std::vector<S> scalar_ws_;
  std::vector<T> tangent_ws_;
  std::vector<std::uint8_t> status_;  // SolveFlag per environment of the last call
};

}  // namespace phydream
