// The CUDA trainer's loss head (kernels/loss_head.cuh: the grid-wide reductions, their finishing
// kernels and the elementwise gradient), run on the CPU under tests/emulation/block_emulation.h,
// against the CPU trainer's loss_head (training/mlp_cpu.cpp): every JAL metric x Jacobian
// scaling, MSE-only and JAL-only weightings, float and double, one block to many, and a grid
// capped so that each thread reduces several entries. This checks the kernels' logic (passes,
// partials, extremes and their indices, the scaling's backward) where CI has no GPU; the same
// kernels on a GPU are checked by tests/kernels/mlp_gpu_test.cu. Label: cpu.
#include "emulation/block_emulation.h"
// (the emulation first: it defines what the kernels' CUDA keywords mean on the host)
#include "kernels/loss_head.cuh"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "training/loss_cases.h"
#include "training/mlp.h"
#include "training/mlp_cpu.h"

namespace phydream::testing {
namespace {

using training::JacScaling;
using training::JalMetric;
using training::LossConfig;
using training::LossParams;
using training::LossPartial;
using training::LossStats;

template <class S>
std::vector<S> uniform(std::int64_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(-1.5, 1.5);
  std::vector<S> v(static_cast<std::size_t>(n));
  for (S& x : v) x = static_cast<S>(dist(rng));
  return v;
}

// the largest |a - b| over the largest |b| (or 1e-30)
template <class S>
double rel_err(const std::vector<S>& a, const std::vector<S>& b) {
  double num = 0, den = 1e-30;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, std::abs(double(a[i]) - double(b[i])));
    den = std::max(den, std::abs(double(b[i])));
  }
  return num / den;
}

// the emulated kernels against training::loss_head for one config, batch size and grid cap
template <class S>
void check(const LossConfig& cfg, std::int64_t N, int max_blocks, std::uint64_t seed) {
  const training::MlpSpec spec = make_spec(training::Activation::tanh, true);
  const int k = spec.n_out(), d = spec.n_in();
  const bool jal = cfg.uses_jacobian();
  const std::vector<S> pred = uniform<S>(N * k, seed), targets = uniform<S>(N * k, seed + 1);
  const std::vector<S> jac = uniform<S>(N * k * d, seed + 2),
                       target_jac = uniform<S>(N * k * d, seed + 3);
  const std::string where = std::string(training::metric_name(cfg.metric)) + " " +
                            training::scaling_name(cfg.scaling) + " lambda " +
                            std::to_string(cfg.lambda_mse) + "/" + std::to_string(cfg.lambda_jal) +
                            " N " + std::to_string(N) + " max_blocks " +
                            std::to_string(max_blocks) + (sizeof(S) == 4 ? " float" : " double");

  std::vector<S> want_gp(N * k), want_gj(N * k * d);
  const training::LossTerms want =
      training::loss_head(cfg, N, k, d, pred.data(), targets.data(), jal ? jac.data() : nullptr,
                          jal ? target_jac.data() : nullptr, want_gp.data(), want_gj.data());

  const LossParams p = training::loss_params(cfg, N, k, d, cfg.jac_std.data());
  std::vector<double> norms(N, -7.0), terms(3, -7.0);
  std::vector<LossPartial<S>> partials(training::kLossBlocks);
  LossStats stats;
  // sentinels: every entry must be written
  std::vector<S> gp(N * k, S(123)), gj(N * k * d, S(123));
  training::run_loss_head<S>(p, pred.data(), targets.data(), jal ? jac.data() : nullptr,
                             jal ? target_jac.data() : nullptr, norms.data(), &stats,
                             partials.data(), terms.data(), gp.data(), jal ? gj.data() : nullptr,
                             emulation::EmulatedLaunch{}, max_blocks);

  const double tol = sizeof(S) == 4 ? 1e-6 : 1e-12;
  const double want_terms[3] = {want.total, want.mse, want.jal};
  const char* names[3] = {"total", "mse", "jal"};
  for (int t = 0; t < 3; ++t) {
    EXPECT_NEAR(terms[t], want_terms[t], 1e-12 * std::max(1.0, std::abs(want_terms[t])))
        << names[t] << ", " << where;
  }
  EXPECT_LE(rel_err(gp, want_gp), tol) << "g_pred, " << where;
  if (jal) EXPECT_LE(rel_err(gj, want_gj), tol) << "g_jac, " << where;
}

LossConfig config(double lmse, double ljal, JalMetric m, JacScaling s) {
  return loss_config(lmse, ljal, m, s, make_spec(training::Activation::tanh, true));
}

class EmulatedLossHead : public ::testing::TestWithParam<std::tuple<JalMetric, JacScaling>> {};

TEST_P(EmulatedLossHead, MatchesCpuLossHead) {
  const auto [m, s] = GetParam();
  for (const LossConfig& cfg : {config(0.7, 1.3, m, s), config(0.0, 1.0, m, s)}) {
    // one block, several, and the grid capped at 2 blocks (several entries per thread)
    for (const auto& [N, cap] : std::vector<std::pair<std::int64_t, int>>{
             {1, training::kLossBlocks}, {7, training::kLossBlocks}, {300, training::kLossBlocks},
             {300, 2}}) {
      check<double>(cfg, N, cap, 17 + N);
      check<float>(cfg, N, cap, 29 + N);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllMetricsAndScalings, EmulatedLossHead,
    ::testing::Combine(::testing::Values(JalMetric::mse, JalMetric::frobenius, JalMetric::l1,
                                         JalMetric::huber),
                       ::testing::Values(JacScaling::none, JacScaling::minmax, JacScaling::zscore,
                                         JacScaling::std)),
    [](const ::testing::TestParamInfo<std::tuple<JalMetric, JacScaling>>& info) {
      return std::string(training::metric_name(std::get<0>(info.param))) + "_" +
             training::scaling_name(std::get<1>(info.param));
    });

// MSE only: one pass, no Jacobians (null pointers, as the engine passes them)
TEST(EmulatedLossHead, MseOnlyReadsNoJacobians) {
  for (std::int64_t N : {1, 300}) {
    check<double>(config(1.0, 0.0, JalMetric::mse, JacScaling::none), N, training::kLossBlocks, 5);
    check<float>(config(1.0, 0.0, JalMetric::mse, JacScaling::minmax), N, 2, 6);
  }
}

// the emulation itself: a kernel whose threads skip a barrier is refused, not run on
TEST(BlockEmulation, DivergentBarrierThrows) {
  const auto kernel = [] {
    if (threadIdx.x != 0) __syncthreads();
  };
  EXPECT_THROW(emulation::BlockScheduler::instance().launch(2, 4, kernel), std::logic_error);
  // and the scheduler is usable again afterwards: a block-wide sum through shared memory
  std::vector<int> out(3, 0);
  const auto sum = [&] {
    static int shm[8];
    shm[threadIdx.x] = static_cast<int>(blockIdx.x * 10 + threadIdx.x);
    __syncthreads();
    if (threadIdx.x == 0) {
      int s = 0;
      for (int t = 0; t < 8; ++t) s += shm[t];
      out[blockIdx.x] = s;
    }
  };
  emulation::BlockScheduler::instance().launch(3, 8, sum);
  EXPECT_EQ(out, (std::vector<int>{28, 108, 188}));
}

}  // namespace
}  // namespace phydream::testing
