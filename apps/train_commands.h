// The training subcommands of `phydream`: train, eval, mlp-grad, experiment. Exit statuses as
// in commands.h: InputError (bad config, arrays, options) is 2, a failure while running is 1.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace phydream::cli {

struct TrainArgs {
  std::string config;
  std::string out = "runs/train";
  std::string backend = "auto";
  std::optional<std::int64_t> steps;   // overrides train.steps (the total)
  std::optional<std::int64_t> seed;    // overrides train.seed
  bool resume = false;
  int threads = 0;
  bool quiet = false;
};

struct EvalArgs {
  std::string checkpoint;
  std::string out;
  int threads = 0;
};

struct MlpGradArgs {
  std::string checkpoint, inputs, targets, target_jacobians, out;
  std::string loss = "both";  // mse | jal | both
  std::string scaling;        // empty: the checkpoint's
  std::string metric;         // empty: the checkpoint's
  std::optional<double> lambda_mse, lambda_jal;
  std::optional<double> huber_delta;  // metric huber; empty: the checkpoint's
};

struct ExperimentArgs {
  std::string config;
  std::string out;
  std::string backend = "auto";
  int threads = 0;
  std::optional<std::int64_t> steps;   // overrides every run's train.steps
  std::optional<int> seeds;            // use the first N seeds of the experiment
  bool quiet = false;
};

int run_train(const TrainArgs& args);
int run_eval(const EvalArgs& args);
int run_mlp_grad(const MlpGradArgs& args);
int run_experiment(const ExperimentArgs& args);

}  // namespace phydream::cli
