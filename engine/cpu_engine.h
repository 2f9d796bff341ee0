// The CPU backend: the same per-environment physics as the kernels, looped over the batch with
// OpenMP threads (static schedule: every environment costs the same).
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "engine/dispatch.h"
#include "engine/rollout.h"
#include "engine/simulator.h"
#include "engine/step.h"

namespace phydream {

template <class Model>
class CpuEngine final : public StepEngine<typename Model::scalar_type> {
 public:
  using S = typename Model::scalar_type;
  static constexpr int nx = Model::nx, nu = Model::nu;

  explicit CpuEngine(const EngineConfig& config)
      : params_(Model::params_from(config.params.data())),
        h_(static_cast<S>(config.dt)),
        integrator_(config.integrator),
        threads_(config.threads > 0 ? config.threads : omp_get_max_threads()) {}

  void step(std::int64_t batch, const S* x, const S* u, S* x_next) override {
    dispatch_integrator(integrator_, [&](auto tag) {
      constexpr Integrator I = decltype(tag)::value;
      for_each_env(batch, [&](std::int64_t b) {
        phydream::step<I, Model>(params_, h_, x + b * nx, u + b * nu, x_next + b * nx);
      });
    });
  }

  void step_jvp(std::int64_t batch, const S* x, const S* u, const S* dx, const S* du, S* x_next,
                S* dx_next) override {
    dispatch_integrator(integrator_, [&](auto tag) {
      constexpr Integrator I = decltype(tag)::value;
      for_each_env(batch, [&](std::int64_t b) {
        phydream::step_jvp<I, Model>(params_, h_, x + b * nx, u + b * nu, dx + b * nx,
                                     du + b * nu, x_next + b * nx, dx_next + b * nx);
      });
    });
  }

  void step_vjp(std::int64_t batch, const S* x, const S* u, S* gx, S* gu,
                const S* g_next) override {
    dispatch_integrator(integrator_, [&](auto tag) {
      constexpr Integrator I = decltype(tag)::value;
      for_each_env(batch, [&](std::int64_t b) {
        phydream::step_vjp<I, Model>(params_, h_, x + b * nx, u + b * nu, gx + b * nx,
                                     gu + b * nu, g_next + b * nx);
      });
    });
  }

  void jacobian(std::int64_t batch, const S* x, const S* u, S* x_next, S* jac_x, S* jac_u,
                JacobianMode mode) override {
    dispatch_integrator(integrator_, [&](auto tag) {
      constexpr Integrator I = decltype(tag)::value;
      for_each_env(batch, [&](std::int64_t b) {
        S scratch[nx];
        S* xn = x_next != nullptr ? x_next + b * nx : scratch;
        if (mode != JacobianMode::reverse) {  // analytic: the forward sweep
          jacobian_fwd<I, Model>(params_, h_, x + b * nx, u + b * nu, xn, jac_x + b * nx * nx,
                                 jac_u + b * nx * nu);
        } else {
          jacobian_rev<I, Model>(params_, h_, x + b * nx, u + b * nu,
                                 x_next != nullptr ? xn : nullptr, jac_x + b * nx * nx,
                                 jac_u + b * nx * nu);
        }
      });
    });
  }

  void jacobian_fd(std::int64_t batch, const S* x, const S* u, S* jac_x, S* jac_u,
                   S eps) override {
    dispatch_integrator(integrator_, [&](auto tag) {
      constexpr Integrator I = decltype(tag)::value;
      for_each_env(batch, [&](std::int64_t b) {
        S column[nx];
        for (int c = 0; c < nx + nu; ++c) {
          jacobian_fd_column<I, Model>(params_, h_, x + b * nx, u + b * nu, c, eps, column);
          for (int i = 0; i < nx; ++i) {
            if (c < nx) {
              jac_x[(b * nx + i) * nx + c] = column[i];
            } else {
              jac_u[(b * nx + i) * nu + (c - nx)] = column[i];
            }
          }
        }
      });
    });
  }

  void rollout(std::int64_t batch, std::int64_t horizon, const S* x0, const S* actions,
               S* states) override {
    dispatch_integrator(integrator_, [&](auto tag) {
      constexpr Integrator I = decltype(tag)::value;
      for_each_env(batch, [&](std::int64_t b) {
        phydream::rollout<I, Model>(params_, h_, x0 + b * nx, actions + b * horizon * nu,
                                    horizon, states + b * (horizon + 1) * nx);
      });
    });
  }

  void rollout_vjp(std::int64_t batch, std::int64_t horizon, const S* x0, const S* actions,
                   const S* states, S* gx0, S* g_actions, const S* g_states, const S* g_final,
                   std::int64_t interval) override {
    dispatch_integrator(integrator_, [&](auto tag) {
      constexpr Integrator I = decltype(tag)::value;
      if (states != nullptr) {
        for_each_env(batch, [&](std::int64_t b) {
          phydream::rollout_vjp<I, Model>(
              params_, h_, states + b * (horizon + 1) * nx, actions + b * horizon * nu, horizon,
              gx0 + b * nx, g_actions + b * horizon * nu,
              g_states != nullptr ? g_states + b * (horizon + 1) * nx : nullptr,
              g_final != nullptr ? g_final + b * nx : nullptr);
        });
        return;
      }
      // one scratch block per thread, reused across the environments it handles
      const std::int64_t scratch_size = checkpoint_scratch_states(horizon, interval) * nx;
      std::vector<S> scratch(static_cast<std::size_t>(scratch_size * threads_));
      for_each_env(batch, [&](std::int64_t b) {
        S* mine = scratch.data() + omp_get_thread_num() * scratch_size;
        rollout_vjp_checkpointed<I, Model>(
            params_, h_, x0 + b * nx, actions + b * horizon * nu, horizon, interval, mine,
            gx0 + b * nx, g_actions + b * horizon * nu,
            g_states != nullptr ? g_states + b * (horizon + 1) * nx : nullptr,
            g_final != nullptr ? g_final + b * nx : nullptr);
      });
    });
  }

  void nonfinite_rows(std::int64_t batch, std::int64_t row_size, const S* data,
                      std::uint8_t* flags) override {
    for_each_env(batch, [&](std::int64_t b) { flags[b] = any_nonfinite(data + b * row_size, row_size); });
  }

  // the built-in environments have no constraint solver
  void solver_status(std::int64_t batch, std::uint8_t* flags) override {
    std::fill(flags, flags + batch, static_cast<std::uint8_t>(SolveFlag::ok));
  }

  void synchronize() override {}

 private:
  template <class F>
  void for_each_env(std::int64_t batch, F&& f) const {
    // small batches run inline: a parallel region costs microseconds
    if (batch < 64 || threads_ == 1) {
      for (std::int64_t b = 0; b < batch; ++b) f(b);
      return;
    }
#pragma omp parallel for schedule(static) num_threads(threads_)
    for (std::int64_t b = 0; b < batch; ++b) f(b);
  }

  typename Model::Params params_;
  S h_;
  Integrator integrator_;
  int threads_;
};

}  // namespace phydream
