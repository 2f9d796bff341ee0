// Training configuration: what `phydream train` reads from JSON, validated strictly (every
// unknown key, wrong type or out-of-range value is an InputError naming the file and the key).
//
// {
//   "env": "double_pendulum",                 required; see `phydream envs`
//   "params": {"m1": 1.0},                    optional overrides of the environment
//   "integrator": "euler", "dt": 0.1,         optional
//   "sampling": {"mode": "uniform" | "rollout", "horizon": 20,
//                "state_low": [...], "state_high": [...],        default: the environment's box
//                "action_low": [...], "action_high": [...]},
//   "model": {"hidden": [64, 64], "activation": "tanh", "residual": true},
//   "loss": {"lambda_mse": 1, "lambda_jal": 0, "metric": "mse", "scaling": "none"},
//   "optimizer": {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
//                 "weight_decay": 0, "schedule": "constant" | "cosine", "lr_min": 0},
//   "train": {"steps": 2000, "batch": 256, "seed": 0, "dtype": "f32", "log_every": 50,
//             "checkpoint_every": 0, "stats_samples": 16384},
//   "eval": {"samples": 4096, "rollout_envs": 256, "horizon": 50,
//            "ood_factors": [1, 1.5, 2, 2.5, 3], "ood_horizon": 10, "seed": 1000003}
// }
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/simulator.h"
#include "training/adam.h"
#include "training/mlp.h"

namespace phydream::training {

enum class SamplingMode { uniform, rollout };

struct SamplingConfig {
  SamplingMode mode = SamplingMode::uniform;
  std::int64_t horizon = 20;  // rollout mode: states are picked along rollouts this long
  std::vector<double> state_low, state_high, action_low, action_high;  // filled from the env
};

struct ModelConfig {
  std::vector<int> hidden = {64, 64};
  Activation activation = Activation::tanh;
  bool residual = true;
};

struct OptimizerConfig {
  AdamConfig adam;
  std::string schedule = "constant";  // constant | cosine
  double lr_min = 0;                  // cosine: the final learning rate
};

struct TrainLoopConfig {
  std::int64_t steps = 2000;
  std::int64_t batch = 256;
  std::uint64_t seed = 0;
  std::string dtype = "f32";
  std::int64_t log_every = 50;
  std::int64_t checkpoint_every = 0;  // 0: only at the end
  std::int64_t stats_samples = 16384;  // samples for the normalisation statistics
};

struct EvalConfig {
  std::int64_t samples = 4096;
  std::int64_t rollout_envs = 256;
  std::int64_t horizon = 50;
  std::vector<double> ood_factors = {1.0, 1.5, 2.0, 2.5, 3.0};
  std::int64_t ood_horizon = 10;
  std::uint64_t seed = 1000003;
};

struct TrainConfig {
  std::string env;
  std::vector<std::pair<std::string, double>> params;
  std::optional<std::string> integrator;
  std::optional<double> dt;
  SamplingConfig sampling;
  ModelConfig model;
  LossConfig loss;
  OptimizerConfig optimizer;
  TrainLoopConfig train;
  EvalConfig eval;

  /// The simulator options this config describes (backend and threads from the caller).
  SimulatorOptions simulator_options(Backend backend, int threads, void* stream = nullptr) const;
};

/// Parses and validates a config; `source` (a file name) prefixes every error message.
TrainConfig parse_train_config(const nlohmann::json& j, const std::string& source);
/// Reads and parses a JSON file; InputError for a missing file or malformed JSON.
TrainConfig load_train_config(const std::string& path);
/// The config as JSON, every field explicit (defaults filled in), parseable again.
nlohmann::json to_json(const TrainConfig& c);

/// Applies `patch` on top of `base` recursively (objects merge, everything else replaces):
/// how experiment variants derive from a base config.
nlohmann::json merge_json(nlohmann::json base, const nlohmann::json& patch);

}  // namespace phydream::training
