// Training and evaluation data, drawn on the backend: states and actions from the sampling box
// (uniformly, or along random-action rollouts), next states and Jacobians from the simulator,
// laid out as the MLP's inputs, targets and target Jacobians. Nothing leaves backend memory.
#pragma once

#include <array>
#include <cstdint>

#include "engine/buffer.h"
#include "engine/simulator.h"
#include "training/config.h"
#include "training/engine.h"

namespace phydream::training {

template <class S>
class BatchSampler {
 public:
  BatchSampler(const SamplingConfig& sampling, Backend backend, Simulator<S>& sim,
               TrainOps<S>& ops, void* stream = nullptr);

  /// Draws N samples from random `stream` under `seed`. States come from the sampling box
  /// scaled by `box_scale` about its centre (1: the training box); with `with_jacobian` the
  /// target Jacobians are computed too. Rollout mode follows the sampling config.
  void draw(std::int64_t N, std::uint64_t seed, std::uint64_t stream, bool with_jacobian,
            double box_scale = 1.0);

  /// Uniform states and action sequences (N, T, nu) for evaluation rollouts.
  void draw_rollout_inputs(std::int64_t N, std::int64_t T, std::uint64_t seed,
                           std::uint64_t stream, double box_scale, Buffer<S>& x0,
                           Buffer<S>& actions);

  // the last draw (backend memory)
  const S* x() const { return x_.data(); }
  const S* u() const { return u_.data(); }
  const S* inputs() const { return inputs_.data(); }        // (N, nx + nu)
  const S* targets() const { return x_next_.data(); }       // (N, nx)
  const S* target_jac() const { return target_jac_.data(); }  // (N, nx, nx + nu)

  /// How the constraint solver fared on every sample drawn so far (each draw's simulator call
  /// that makes its targets: Simulator::solver_status), host copies: [ok, iteration_cap,
  /// nonfinite] counts of samples. A read waits for the backend.
  std::array<std::int64_t, 3> solver_counts();

 private:
  void reserve(std::int64_t N, bool with_jacobian);
  void set_box(double box_scale);

  SamplingConfig sampling_;
  Backend backend_;
  void* stream_;
  Simulator<S>& sim_;
  TrainOps<S>& ops_;
  int nx_, nu_;
  std::int64_t capacity_ = -1;
  bool jac_capacity_ = false;
  double box_scale_ = -1;
  Buffer<S> state_lo_, state_hi_, action_lo_, action_hi_;
  Buffer<S> x_, u_, x_next_, jac_x_, jac_u_, inputs_, target_jac_;
  Buffer<S> roll_x0_, roll_actions_, roll_states_;
  Buffer<std::uint8_t> solver_flags_;              // (N) the last draw's SolveFlag per sample
  Buffer<unsigned long long> solver_counts_;       // (3) running counts, see solver_counts()
  std::int64_t solverless_ = 0;                    // samples of built-in environments (all ok)
};

}  // namespace phydream::training
