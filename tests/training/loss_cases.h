// Test data shared by the CPU and GPU trainer suites: a small network with non-trivial
// normalisation, random batches, loss configs, and the grid of activation x JAL metric x
// Jacobian scaling x loss weighting every loss test runs over.
#pragma once

#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "training/mlp.h"

namespace phydream::testing {

/// nx = 4, nu = 2 with non-trivial normalisation and the given hidden widths.
inline training::MlpSpec make_spec(training::Activation act, bool residual,
                                   std::vector<int> hidden = {6, 5}) {
  training::MlpSpec s;
  s.nx = 4;
  s.nu = 2;
  s.hidden = std::move(hidden);
  s.activation = act;
  s.residual = residual;
  s.in_mean = {0.1, -0.2, 0.3, 0.0, 0.5, -0.5};
  s.in_std = {1.5, 0.7, 2.0, 1.1, 0.9, 1.3};
  s.out_mean = {0.05, -0.1, 0.2, 0.0};
  s.out_std = {0.3, 0.8, 1.7, 1.2};
  return s;
}

/// Glorot weights, then every parameter (biases included) moved by up to `spread`, so the
/// biases matter.
inline std::vector<double> random_theta(const training::MlpSpec& spec, std::uint64_t seed,
                                        double spread = 0.1) {
  std::vector<double> theta = training::init_params<double>(spec, seed);
  std::mt19937_64 rng(seed + 1000);
  std::uniform_real_distribution<double> dist(-spread, spread);
  for (double& t : theta) t += dist(rng);
  return theta;
}

struct Batch {
  std::int64_t N = 0;
  std::vector<double> inputs, targets, target_jac;
};

/// Inputs, targets and target Jacobians uniform in [-1.5, 1.5].
inline Batch random_batch(const training::MlpSpec& spec, std::int64_t N, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(-1.5, 1.5);
  Batch b;
  b.N = N;
  const int k = spec.n_out(), d = spec.n_in();
  for (std::int64_t e = 0; e < N * d; ++e) b.inputs.push_back(dist(rng));
  for (std::int64_t e = 0; e < N * k; ++e) b.targets.push_back(dist(rng));
  for (std::int64_t e = 0; e < N * k * d; ++e) b.target_jac.push_back(dist(rng));
  return b;
}

/// A loss config; with scaling std, a jac_std with one zero entry (left unscaled).
inline training::LossConfig loss_config(double lmse, double ljal, training::JalMetric m,
                                        training::JacScaling s, const training::MlpSpec& spec) {
  training::LossConfig c;
  c.lambda_mse = lmse;
  c.lambda_jal = ljal;
  c.metric = m;
  c.scaling = s;
  // (small enough that the random batches' errors fall on both sides of it)
  c.huber_delta = 0.3;
  if (s == training::JacScaling::std) {
    for (int e = 0; e < spec.n_out() * spec.n_in(); ++e) c.jac_std.push_back(0.5 + 0.1 * (e % 7));
    c.jac_std[3] = 0.0;
  }
  return c;
}

/// (activation, metric, scaling, weights) with weights 0: MSE + JAL, 1: JAL only, 2: MSE only.
using LossCase = std::tuple<training::Activation, training::JalMetric, training::JacScaling, int>;

/// The case's loss config (JAL-only cases use residual = false, the others residual = true).
inline training::LossConfig case_config(const LossCase& c, const training::MlpSpec& spec) {
  const int w = std::get<3>(c);
  return loss_config(w == 1 ? 0.0 : 0.7, w == 2 ? 0.0 : 1.3, std::get<1>(c), std::get<2>(c), spec);
}

inline std::string loss_case_name(const ::testing::TestParamInfo<LossCase>& info) {
  const int w = std::get<3>(info.param);
  return std::string(training::activation_name(std::get<0>(info.param))) + "_" +
         training::metric_name(std::get<1>(info.param)) + "_" +
         training::scaling_name(std::get<2>(info.param)) + "_" +
         (w == 0 ? "both" : w == 1 ? "jal" : "mse");
}

/// Every activation x metric x scaling with the given weightings.
inline auto all_loss_cases(std::vector<int> weights) {
  using training::Activation;
  using training::JacScaling;
  using training::JalMetric;
  return ::testing::Combine(
      ::testing::Values(Activation::tanh, Activation::silu, Activation::softplus,
                        Activation::relu),
      ::testing::Values(JalMetric::mse, JalMetric::frobenius, JalMetric::l1, JalMetric::huber),
      ::testing::Values(JacScaling::none, JacScaling::minmax, JacScaling::zscore,
                        JacScaling::std),
      ::testing::ValuesIn(weights));
}

}  // namespace phydream::testing
