// The whole training pipeline on the CUDA backend against the CPU backend: the device sampler
// (uniform in the box, or along rollouts), the engine's next states and Jacobians written into the
// trainer's buffers, the loss and its double backward (fused and GEMM kernels), Adam; for a
// built-in environment and an articulated model with contact. The same config
// and seed give the same draws on both backends (the samplers are bit-identical), so the losses
// logged along the way, the trained parameters and the evaluation agree to rounding: tightly in
// double, loosely in float. Skips cleanly without a device. Label: gpu.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/backend.h"
#include "training/config.h"
#include "training/trainer.h"

namespace phydream::testing {
namespace {

using json = nlohmann::json;

#define SKIP_WITHOUT_GPU() \
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device visible"

json config(const std::string& env, const std::string& kernels, const std::string& sampling) {
  json j{{"model", {{"hidden", {32, 32}}, {"activation", "tanh"}, {"residual", true}}},
         {"loss", {{"lambda_mse", 1.0}, {"lambda_jal", 1.0}}},
         {"optimizer", {{"lr", 3e-3}}},
         {"train", {{"steps", 40}, {"batch", 64}, {"seed", 5}, {"log_every", 10},
                    {"stats_samples", 512}, {"kernels", kernels}}},
         {"eval", {{"samples", 256}, {"rollout_envs", 16}, {"horizon", 8},
                   {"ood_factors", {1.0, 2.0}}, {"ood_horizon", 4}}}};
  if (env.size() > 4 && env.substr(env.size() - 4) == ".xml") {
    j["env_model"] = std::string(PHYDREAM_SOURCE_DIR) + "/assets/" + env;
  } else {
    j["env"] = env;
  }
  if (sampling == "rollout") j["sampling"] = {{"mode", "rollout"}, {"horizon", 6}};
  return j;
}

double rel(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-12); }

// trains the config on both backends and compares what each run logs and ends with
template <class S>
void check(const json& j, double tol) {
  const training::TrainConfig c = training::parse_train_config(j, "cfg");
  const std::string where = c.env_label() + " kernels " + j["train"]["kernels"].get<std::string>() +
                            " sampling " + (j.contains("sampling") ? "rollout" : "uniform") +
                            (sizeof(S) == 4 ? " float" : " double");
  std::vector<training::StepLog> logs[2];
  training::ModelState state[2];
  const Backend backends[2] = {Backend::cpu, Backend::cuda};
  for (int k = 0; k < 2; ++k) {
    training::Trainer<S> t(c, backends[k]);
    t.initialise();
    if (backends[k] == Backend::cuda) {
      EXPECT_EQ(t.mlp_kernels(), j["train"]["kernels"].get<std::string>()) << where;
    }
    t.run(c.train.steps, [&](const training::StepLog& l) { logs[k].push_back(l); });
    state[k] = t.state();
  }
  ASSERT_EQ(logs[0].size(), logs[1].size()) << where;
  for (std::size_t i = 0; i < logs[0].size(); ++i) {
    const training::LossTerms &a = logs[1][i].terms, &b = logs[0][i].terms;
    EXPECT_LE(rel(a.total, b.total), tol) << "total at log " << i << ", " << where;
    EXPECT_LE(rel(a.mse, b.mse), tol) << "mse at log " << i << ", " << where;
    EXPECT_LE(rel(a.jal, b.jal), tol) << "jal at log " << i << ", " << where;
  }
  // the normalisation statistics come from the same draws
  for (std::size_t i = 0; i < state[0].spec.in_std.size(); ++i) {
    EXPECT_LE(rel(state[1].spec.in_std[i], state[0].spec.in_std[i]), tol) << where;
  }
  double worst = 0, scale = 0;
  for (std::size_t i = 0; i < state[0].theta.size(); ++i) {
    worst = std::max(worst, std::abs(state[1].theta[i] - state[0].theta[i]));
    scale = std::max(scale, std::abs(state[0].theta[i]));
  }
  EXPECT_LE(worst / scale, tol) << "parameters, " << where;
}

TEST(GpuTraining, BuiltInEnvironmentTrainsAsOnTheCpu) {
  SKIP_WITHOUT_GPU();
  for (const char* kernels : {"fused", "gemm"}) {
    for (const char* sampling : {"uniform", "rollout"}) {
      check<double>(config("double_pendulum", kernels, sampling), 1e-8);
      check<float>(config("double_pendulum", kernels, sampling), 1e-3);
    }
  }
}

// the articulated CUDA engine (contact, the constraint solve and its IFT Jacobians) inside the
// pipeline
TEST(GpuTraining, ArticulatedModelWithContactTrainsAsOnTheCpu) {
  SKIP_WITHOUT_GPU();
  check<double>(config("half_cheetah.xml", "fused", "rollout"), 1e-8);
  check<double>(config("half_cheetah.xml", "gemm", "uniform"), 1e-8);
}

}  // namespace
}  // namespace phydream::testing
