// The training pipeline: sample states and actions on the backend, let the engine compute next
// states and Jacobians into the trainer's buffers, evaluate the loss and its gradient, take an
// Adam step. Everything stays in backend memory; the host reads the loss only at log steps.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/buffer.h"
#include "engine/simulator.h"
#include "training/config.h"
#include "training/engine.h"
#include "training/sampler.h"

namespace phydream::training {

/// What a log step reports.
struct StepLog {
  std::int64_t step = 0;       // steps done
  LossTerms terms;             // on the batch of this step
  double lr = 0;
  double samples_per_s = 0;    // since the previous log step
  // samples drawn by this Trainer so far (the statistics sample included) and how many of them
  // came from a constraint solve stopped at the model's iteration cap (Simulator::solver_status)
  std::int64_t samples_drawn = 0;
  std::int64_t capped_solves = 0;
};

/// Everything needed to save, evaluate or resume a model (host copies, double precision).
struct ModelState {
  TrainConfig config;
  MlpSpec spec;            // with its normalisation statistics
  LossConfig loss;         // with jac_std
  std::int64_t step = 0;   // optimizer steps taken
  std::vector<double> theta;
  std::vector<double> adam_m, adam_v;  // empty in a checkpoint saved without optimizer state
};

/// The learning rate at step t (0-based) of `total`.
double learning_rate(const OptimizerConfig& o, std::int64_t t, std::int64_t total);

/// The spec of a model for `config` on environment `env`, before statistics: sizes, widths,
/// activation, identity normalisation.
MlpSpec make_spec(const TrainConfig& config, const EnvInfo& env);

template <class S>
class Trainer {
 public:
  /// Builds the simulator and engines; the model is not initialised until initialise() or
  /// restore(). `backend` is resolved already (cpu or cuda). InputError for an environment
  /// whose tangent is not its state (nq != nv).
  Trainer(const TrainConfig& config, Backend backend, int threads = 0, void* stream = nullptr);

  /// Fresh start: normalisation statistics (and the true Jacobians' per-entry std) from
  /// config.train.stats_samples samples, then Glorot-initialised parameters.
  void initialise();
  /// Continues from a saved state (same config architecture): parameters, Adam moments, step.
  void restore(const ModelState& state);

  /// Runs `steps` optimizer steps; calls `log` at every config.train.log_every-th step and at
  /// the last one. Throws when, by then, a sample's constraint solve was non-finite (its
  /// targets would poison the loss) or the loss is not finite.
  void run(std::int64_t steps, const std::function<void(const StepLog&)>& log);

  /// A host copy of the model and optimizer state.
  ModelState state() const;

  std::int64_t step() const { return step_; }
  /// [ok, iteration_cap, nonfinite] solve counts over the samples drawn so far (a host read).
  std::array<std::int64_t, 3> solver_counts() { return sampler_.solver_counts(); }
  const MlpSpec& spec() const { return spec_; }
  const LossConfig& loss() const { return loss_; }
  Simulator<S>& simulator() { return sim_; }
  Backend backend() const { return backend_; }
  /// The kernels that run the MLP ("eigen", "fused", "gemm"); "none" before initialise().
  const char* mlp_kernels() const { return mlp_ ? mlp_->kernels() : "none"; }

 private:
  TrainConfig config_;
  Backend backend_;
  void* stream_;
  int threads_;
  Simulator<S> sim_;
  std::unique_ptr<TrainOps<S>> ops_;
  std::unique_ptr<MlpEngine<S>> mlp_;
  BatchSampler<S> sampler_;
  MlpSpec spec_;
  LossConfig loss_;
  std::int64_t step_ = 0;
  bool ready_ = false;
  Buffer<S> theta_, grad_, adam_m_, adam_v_;
  Buffer<double> terms_;
};

/// Random streams of the trainer: batches of step t use streams (t << 4) + k; the statistics
/// sample and evaluation use streams above 2^60, apart from every training step.
constexpr std::uint64_t kStatsStream = 1ULL << 60;
constexpr std::uint64_t kEvalStream = 1ULL << 61;

}  // namespace phydream::training
