// Evaluation of a trained model against the simulator (the seed's Figures 5-7):
//   one step   MSE of the predicted next state and of the predicted Jacobian on fresh samples
//   rollouts   open-loop rollouts of model and simulator from the same states under the same
//              random actions: MSE at every horizon h = 1 .. H (Fig. 6)
//   OOD        the same one-step and rollout errors as the state box grows by a factor (Fig. 7)
//   examples   predicted and true Jacobians at a few states (Fig. 5)
// Evaluation runs on the CPU in double precision, whatever backend trained the model, so its
// numbers do not depend on where it runs.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "training/trainer.h"

namespace phydream::training {

struct OodRow {
  double factor = 1;
  double one_step_mse = 0;
  double jacobian_mse = 0;
  double rollout_mse = 0;         // at eval.ood_horizon, mean over environments
  double rollout_mse_median = 0;  // at eval.ood_horizon, median over environments
};

struct JacobianExample {
  std::vector<double> x, u;       // (nx), (nu)
  std::vector<double> model, truth;  // (nx, nx + nu) row-major
};

struct EvalResult {
  double one_step_mse = 0;       // mean over samples and state entries
  double jacobian_mse = 0;       // mean over samples and Jacobian entries
  double jacobian_rel_err = 0;   // mean over samples of |J - J*|_F / |J*|_F
  std::vector<double> rollout_mse;         // (H): h = 1 .. H, mean over environments kept
  std::vector<double> rollout_mse_median;  // (H): the median over environments kept, robust
                                           // to the few trajectories an explicit scheme blows up
  std::int64_t rollout_envs = 0;         // environments in the rollout statistics
  std::int64_t simulator_diverged = 0;   // dropped: the true trajectory left the finite range
  std::int64_t model_diverged = 0;       // dropped: the model's trajectory became non-finite
  std::vector<OodRow> ood;
  std::vector<JacobianExample> examples;
};

/// Evaluates `state` with its config's eval settings.
EvalResult evaluate(const ModelState& state, int threads = 0);

nlohmann::json to_json(const EvalResult& r);

}  // namespace phydream::training
