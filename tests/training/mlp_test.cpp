// The MLP's forward Jacobian and its loss gradients (MSE backward, JAL double backward) for every
// activation, metric and scaling: against central differences of the loss in double, against the
// independent forward-mode implementation in naive_mlp.h, and a linear network's closed form.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <tuple>
#include <vector>

#include "engine/errors.h"
#include "loss_cases.h"
#include "naive_mlp.h"
#include "training/mlp_cpu.h"

namespace phydream::testing {
namespace {

using training::Activation;
using training::CpuMlp;
using training::JacScaling;
using training::JalMetric;
using training::LossConfig;
using training::MlpSpec;

TEST(Activations, DerivativesMatchDifferences) {
  for (Activation a : {Activation::tanh, Activation::silu, Activation::softplus, Activation::relu}) {
    for (double z : {-30.0, -3.1, -0.4, 0.3, 1.7, 4.2, 30.0}) {
      double f, d1, d2, fp, fm, d1p, d1m, unused;
      const double h = 1e-6;
      training::activate(a, z, &f, &d1, &d2);
      training::activate(a, z + h, &fp, &d1p, &unused);
      training::activate(a, z - h, &fm, &d1m, &unused);
      EXPECT_NEAR(d1, (fp - fm) / (2 * h), 1e-8) << training::activation_name(a) << " z=" << z;
      EXPECT_NEAR(d2, (d1p - d1m) / (2 * h), 1e-8) << training::activation_name(a) << " z=" << z;
      EXPECT_TRUE(std::isfinite(f)) << training::activation_name(a) << " z=" << z;
    }
  }
}

// the forward Jacobian against central differences of the prediction
TEST(MlpForward, JacobianMatchesDifferences) {
  for (Activation a : {Activation::tanh, Activation::silu, Activation::softplus}) {
    for (bool residual : {false, true}) {
      const MlpSpec spec = make_spec(a, residual);
      CpuMlp<double> net(spec, loss_config(1, 0, JalMetric::mse, JacScaling::none, spec));
      const auto theta = training::init_params<double>(spec, 3);
      const Batch b = random_batch(spec, 4, 9);
      const int k = spec.n_out(), d = spec.n_in();
      std::vector<double> pred(4 * k), jac(4 * k * d), pp(4 * k), pm(4 * k);
      net.forward(4, theta.data(), b.inputs.data(), pred.data(), jac.data());
      for (int j = 0; j < d; ++j) {
        auto in = b.inputs;
        for (int s = 0; s < 4; ++s) in[s * d + j] += 1e-6;
        net.forward(4, theta.data(), in.data(), pp.data(), nullptr);
        for (int s = 0; s < 4; ++s) in[s * d + j] -= 2e-6;
        net.forward(4, theta.data(), in.data(), pm.data(), nullptr);
        for (int s = 0; s < 4; ++s) {
          for (int i = 0; i < k; ++i) {
            EXPECT_NEAR(jac[(s * k + i) * d + j], (pp[s * k + i] - pm[s * k + i]) / 2e-6, 1e-7);
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// loss gradients, for every activation x metric x scaling x loss weighting

class LossGradient : public ::testing::TestWithParam<LossCase> {
 protected:
  MlpSpec spec() const { return make_spec(std::get<0>(GetParam()), std::get<3>(GetParam()) != 1); }
  LossConfig cfg(const MlpSpec& s) const { return case_config(GetParam(), s); }
};

TEST_P(LossGradient, MatchesCentralDifferencesOfTheLoss) {
  const MlpSpec s = spec();
  const LossConfig c = cfg(s);
  CpuMlp<double> net(s, c);
  auto theta = training::init_params<double>(s, 11);
  const Batch b = random_batch(s, 5, 17);
  std::vector<double> grad(s.num_params());
  const auto terms = net.loss_and_grad(b.N, theta.data(), b.inputs.data(), b.targets.data(),
                                       b.target_jac.data(), grad.data());
  EXPECT_TRUE(std::isfinite(terms.total));
  EXPECT_NEAR(terms.total, c.lambda_mse * terms.mse + c.lambda_jal * terms.jal, 1e-12);
  std::vector<double> scratch(s.num_params());
  double worst = 0, scale = 1e-3;
  for (double g : grad) scale = std::max(scale, std::abs(g));
  for (std::size_t p = 0; p < s.num_params(); ++p) {
    const double t0 = theta[p], h = 1e-6;
    theta[p] = t0 + h;
    const double lp = net.loss_and_grad(b.N, theta.data(), b.inputs.data(), b.targets.data(),
                                        b.target_jac.data(), scratch.data()).total;
    theta[p] = t0 - h;
    const double lm = net.loss_and_grad(b.N, theta.data(), b.inputs.data(), b.targets.data(),
                                        b.target_jac.data(), scratch.data()).total;
    theta[p] = t0;
    worst = std::max(worst, std::abs(grad[p] - (lp - lm) / (2 * h)));
  }
  EXPECT_LT(worst, 1e-6 * scale) << "largest gradient entry " << scale;
}

TEST_P(LossGradient, EqualsForwardModeOverParameters) {
  const MlpSpec s = spec();
  const LossConfig c = cfg(s);
  CpuMlp<double> net(s, c);
  const auto theta = training::init_params<double>(s, 23);
  const Batch b = random_batch(s, 4, 29);
  std::vector<double> grad(s.num_params());
  const auto terms = net.loss_and_grad(b.N, theta.data(), b.inputs.data(), b.targets.data(),
                                       b.target_jac.data(), grad.data());
  // the independent implementation, differentiated in forward mode over every parameter
  std::vector<naive::DualP> theta_d;
  for (std::size_t p = 0; p < theta.size(); ++p) {
    theta_d.push_back(naive::DualP::variable(theta[p], p, theta.size()));
  }
  const naive::DualP L = naive::loss(s, c, theta_d, b.N, b.inputs.data(), b.targets.data(),
                                     b.target_jac.data());
  EXPECT_NEAR(terms.total, L.v, 1e-12 * std::max(1.0, std::abs(L.v)));
  double scale = 1e-3;
  for (double g : grad) scale = std::max(scale, std::abs(g));
  for (std::size_t p = 0; p < theta.size(); ++p) {
    EXPECT_NEAR(grad[p], L.grad(p), 1e-11 * scale) << "parameter " << p;
  }
}

INSTANTIATE_TEST_SUITE_P(AllLosses, LossGradient, all_loss_cases({0, 1, 2}), loss_case_name);

// ---------------------------------------------------------------------------------------------
// a linear network (no hidden layer): J = diag(out_std) W diag(1 / in_std) (+ [I 0]) for every
// sample, so JAL (mse, no scaling) has the closed-form gradient
//   dL/dW = 2 / (k d) diag(out_std) mean_b(J - J*_b) diag(1 / in_std),  dL/db = 0
TEST(LinearNetwork, JalGradientHasClosedForm) {
  MlpSpec s = make_spec(Activation::tanh, true);
  s.hidden.clear();
  const LossConfig c = loss_config(0, 1, JalMetric::mse, JacScaling::none, s);
  CpuMlp<double> net(s, c);
  const auto theta = training::init_params<double>(s, 5);
  const Batch b = random_batch(s, 7, 6);
  std::vector<double> grad(s.num_params());
  net.loss_and_grad(b.N, theta.data(), b.inputs.data(), b.targets.data(), b.target_jac.data(),
                    grad.data());
  const int k = s.n_out(), d = s.n_in();
  for (int i = 0; i < k; ++i) {
    for (int j = 0; j < d; ++j) {
      const double J = s.out_std[i] * theta[i * d + j] / s.in_std[j] + (i == j ? 1.0 : 0.0);
      double mean_diff = 0;
      for (int n = 0; n < b.N; ++n) mean_diff += J - b.target_jac[(n * k + i) * d + j];
      mean_diff /= b.N;
      const double expected = 2.0 / (k * d) * s.out_std[i] * mean_diff / s.in_std[j];
      EXPECT_NEAR(grad[s.weight_offset(0) + i * d + j], expected, 1e-14) << i << "," << j;
    }
  }
  for (int i = 0; i < k; ++i) EXPECT_EQ(grad[s.bias_offset(0) + i], 0.0);
}

TEST(LinearNetwork, JalVanishesAtTheTrueJacobian) {
  // a linear map fitted exactly: with J* = J and targets = predictions, every gradient is zero
  MlpSpec s = make_spec(Activation::tanh, false);
  s.hidden.clear();
  CpuMlp<double> net(s, loss_config(1, 1, JalMetric::mse, JacScaling::none, s));
  const auto theta = training::init_params<double>(s, 8);
  const Batch b = random_batch(s, 3, 4);
  std::vector<double> pred(3 * 4), jac(3 * 4 * 6), grad(s.num_params());
  net.forward(3, theta.data(), b.inputs.data(), pred.data(), jac.data());
  const auto terms = net.loss_and_grad(3, theta.data(), b.inputs.data(), pred.data(), jac.data(),
                                       grad.data());
  EXPECT_EQ(terms.total, 0.0);
  for (double g : grad) EXPECT_EQ(g, 0.0);
}

TEST(MlpPrecision, FloatAgreesWithDouble) {
  const MlpSpec s = make_spec(Activation::silu, true);
  const LossConfig c = loss_config(0.5, 1.0, JalMetric::mse, JacScaling::zscore, s);
  CpuMlp<double> netd(s, c);
  CpuMlp<float> netf(s, c);
  const auto thd = training::init_params<double>(s, 1);
  const std::vector<float> thf(thd.begin(), thd.end());
  const Batch b = random_batch(s, 32, 2);
  const std::vector<float> in(b.inputs.begin(), b.inputs.end()),
      tg(b.targets.begin(), b.targets.end()), tj(b.target_jac.begin(), b.target_jac.end());
  std::vector<double> gd(s.num_params());
  std::vector<float> gf(s.num_params());
  const auto td = netd.loss_and_grad(32, thd.data(), b.inputs.data(), b.targets.data(),
                                     b.target_jac.data(), gd.data());
  const auto tf = netf.loss_and_grad(32, thf.data(), in.data(), tg.data(), tj.data(), gf.data());
  EXPECT_NEAR(tf.total, td.total, 1e-5 * td.total);
  double scale = 0;
  for (double g : gd) scale = std::max(scale, std::abs(g));
  for (std::size_t p = 0; p < gd.size(); ++p) EXPECT_NEAR(gf[p], gd[p], 1e-4 * scale) << p;
}

TEST(MlpValidation, BadSpecsAndConfigsAreRejected) {
  MlpSpec s = make_spec(Activation::tanh, true);
  s.hidden = {4, 0};
  EXPECT_THROW(s.validate(), InputError);
  s = make_spec(Activation::tanh, true);
  s.in_std[2] = 0;
  EXPECT_THROW(s.validate(), InputError);
  s = make_spec(Activation::tanh, true);
  s.out_mean.pop_back();
  EXPECT_THROW(s.validate(), InputError);
  LossConfig c;
  c.lambda_mse = 0;
  EXPECT_THROW(c.validate(4, 2), InputError);
  c.lambda_mse = -1;
  EXPECT_THROW(c.validate(4, 2), InputError);
  c.lambda_mse = 1;
  c.scaling = JacScaling::std;
  EXPECT_NO_THROW(c.validate(4, 2));  // without a JAL term there is nothing to scale
  c.lambda_jal = 1;
  EXPECT_THROW(c.validate(4, 2), InputError);  // JAL scaled by std needs jac_std
  EXPECT_THROW(training::parse_activation("gelu"), InputError);
  EXPECT_THROW(training::parse_scaling("l2"), InputError);
  EXPECT_EQ(training::parse_metric("frobenius"), JalMetric::frobenius);
  EXPECT_EQ(training::parse_metric("huber"), JalMetric::huber);
  EXPECT_THROW(training::parse_metric("l2"), InputError);
  c.scaling = JacScaling::none;
  c.metric = JalMetric::huber;
  for (double bad : {0.0, -1.0, double(NAN), double(INFINITY)}) {
    c.huber_delta = bad;
    EXPECT_THROW(c.validate(4, 2), InputError) << bad;
  }
}

// the huber metric's two regimes, against the other metrics on the same batch: with delta above
// every error it is eq. 1's squared metric; with delta below every error it is
// delta (2 L1 - delta), so its gradient is 2 delta times the L1 metric's
TEST(HuberMetric, IsTheSquaredMetricBelowDeltaAndLinearAbove) {
  const MlpSpec s = make_spec(Activation::tanh, true);
  const auto theta = training::init_params<double>(s, 41);
  const Batch b = random_batch(s, 5, 43);
  auto run = [&](JalMetric m, double delta, std::vector<double>& grad) {
    LossConfig c = loss_config(0, 1.4, m, JacScaling::zscore, s);  // JAL only
    c.huber_delta = delta;
    CpuMlp<double> net(s, c);
    grad.assign(s.num_params(), 0.0);
    return net.loss_and_grad(b.N, theta.data(), b.inputs.data(), b.targets.data(),
                             b.target_jac.data(), grad.data());
  };
  // the largest scaled error of this batch bounds where the two regimes hold
  std::vector<double> g_sq, g_l1, g_hub;
  const auto sq = run(JalMetric::mse, 1.0, g_sq);
  const auto l1 = run(JalMetric::l1, 1.0, g_l1);
  ASSERT_GT(l1.jal, 0.0);

  const auto big = run(JalMetric::huber, 1e3, g_hub);
  EXPECT_NEAR(big.jal, sq.jal, 1e-14 * sq.jal);
  for (std::size_t p = 0; p < g_sq.size(); ++p) EXPECT_NEAR(g_hub[p], g_sq[p], 1e-13) << p;

  const double delta = 1e-9;  // below every entry's error in this random batch
  const auto tiny = run(JalMetric::huber, delta, g_hub);
  EXPECT_NEAR(tiny.jal, delta * (2 * l1.jal - delta), 1e-12 * tiny.jal);
  for (std::size_t p = 0; p < g_l1.size(); ++p) {
    EXPECT_NEAR(g_hub[p], 2 * delta * g_l1[p], 1e-12 * delta * std::abs(g_l1[p]) + 1e-30) << p;
  }
}

}  // namespace
}  // namespace phydream::testing
