// Training configuration: what `phydream train` reads from JSON, validated strictly (every
// unknown key, wrong type or out-of-range value is an InputError naming the file and the key).
//
// {
//   "env": "double_pendulum",                 a built-in environment (see `phydream envs`), or
//   "env_model": "../half_cheetah.xml",       an articulated model file (MJCF .xml or JSON);
//                                             exactly one of the two. A relative path is
//                                             resolved against the directory of the file that
//                                             holds the config (not the working directory).
//                                             Only models with hinge and slide joints (nq = nv):
//                                             the trainer takes the state as its own tangent.
//   "disable": ["contact", "limit"],          env_model only: MJCF disable flags to set
//   "params": {"m1": 1.0},                    env only: overrides of the environment
//   "integrator": "euler", "dt": 0.1,         optional (env_model: the model's by default)
//   "sampling": {"mode": "uniform" | "rollout", "horizon": 20,
//                "state_low": [...], "state_high": [...],        default: the environment's box
//                "action_low": [...], "action_high": [...]},     (nx and nu entries)
//   "model": {"hidden": [64, 64], "activation": "tanh", "residual": true},
//   "loss": {"lambda_mse": 1, "lambda_jal": 0,
//            "metric": "mse" | "frobenius" | "l1" | "huber",    (training/mlp.h)
//            "huber_delta": 1,                        metric huber only, > 0
//            "scaling": "none" | "minmax" | "zscore" | "std"},
//   "optimizer": {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
//                 "weight_decay": 0, "schedule": "constant" | "cosine", "lr_min": 0},
//   "train": {"steps": 2000, "batch": 256, "seed": 0, "dtype": "f32", "log_every": 50,
//             "checkpoint_every": 0, "stats_samples": 16384,
//             "kernels": "auto" | "fused" | "gemm"},     the MLP's CUDA kernels (engine.h)
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
#include "training/engine.h"
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
  MlpKernels kernels = MlpKernels::automatic;  // CUDA backend: which kernels run the MLP
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
  std::string env;        // a built-in environment; empty when env_model is set
  std::string env_model;  // an articulated model file, absolute path; empty for a built-in env
  std::string env_model_name;  // the model's name (MJCF <mujoco model=...>, else the file's)
  std::vector<std::string> disable;  // env_model: disable flags
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
  /// What is trained on, for messages and summaries: env, or the model's name.
  const std::string& env_label() const { return env_model.empty() ? env : env_model_name; }
};

/// Parses and validates a config; `source` (a file name) prefixes every error message, and a
/// relative env_model path is resolved against `base_dir` (empty: the working directory).
TrainConfig parse_train_config(const nlohmann::json& j, const std::string& source,
                               const std::string& base_dir = "");
/// Reads and parses a JSON file, env_model relative to the file's directory; InputError for a
/// missing file or malformed JSON.
TrainConfig load_train_config(const std::string& path);
/// The config as JSON, every field explicit (defaults filled in), parseable again (env_model as
/// an absolute path).
nlohmann::json to_json(const TrainConfig& c);

/// Applies `patch` on top of `base` recursively (objects merge, everything else replaces):
/// how experiment variants derive from a base config.
nlohmann::json merge_json(nlohmann::json base, const nlohmann::json& patch);

}  // namespace phydream::training
