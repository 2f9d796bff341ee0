// The CPU trainer's dispatched products (training/cpu_gemm.h): every instruction set this CPU
// runs against a plain triple loop, the whole MLP loss gradient under each set against the
// baseline's, the choice of set (names, PHYDREAM_CPU_ISA's errors, unsupported sets refused), and
// the trainer's OpenMP thread limit.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "engine/errors.h"
#include "loss_cases.h"
#include "training/cpu_gemm.h"
#include "training/mlp_cpu.h"

namespace phydream::testing {
namespace {

using training::CpuIsa;

const CpuIsa kAllIsas[] = {CpuIsa::baseline, CpuIsa::avx2, CpuIsa::avx512};

// restores the set in use when a test ends
class IsaGuard {
 public:
  IsaGuard() : saved_(training::cpu_isa()) {}
  ~IsaGuard() { training::set_cpu_isa(saved_); }

 private:
  CpuIsa saved_;
};

std::vector<CpuIsa> supported_isas() {
  std::vector<CpuIsa> out;
  for (CpuIsa isa : kAllIsas) {
    if (training::cpu_isa_supported(isa)) out.push_back(isa);
  }
  return out;
}

template <class S>
std::vector<S> random_matrix(std::int64_t rows, std::int64_t cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<S> m(static_cast<std::size_t>(rows * cols));
  for (auto& x : m) x = static_cast<S>(u(rng));
  return m;
}

// c (m x n) = sum_p a(i, p) b(p, j), with a(i, p) and b(p, j) read through the given accessors,
// in double
template <class A, class B>
std::vector<double> naive(std::int64_t m, std::int64_t n, std::int64_t k, A a, B b) {
  std::vector<double> c(static_cast<std::size_t>(m * n), 0.0);
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (std::int64_t p = 0; p < k; ++p) s += double(a(i, p)) * double(b(p, j));
      c[i * n + j] = s;
    }
  }
  return c;
}

template <class S>
void check_products(CpuIsa isa, std::int64_t m, std::int64_t n, std::int64_t k) {
  training::set_cpu_isa(isa);
  // inner products of k terms in [-1, 1]: rounding grows like sqrt(k) eps
  const double tol = (sizeof(S) == 4 ? 2e-6 : 4e-15) * (4.0 + double(k));
  const std::string where = std::string(training::cpu_isa_name(isa)) + (sizeof(S) == 4 ? " f32 " : " f64 ") +
                            std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k);
  auto expect_near_all = [&](const std::vector<S>& got, const std::vector<double>& want, const char* op) {
    ASSERT_EQ(got.size(), want.size());
    double worst = 0;
    for (std::size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(double(got[i]) - want[i]));
    EXPECT_LE(worst, tol) << op << " " << where;
  };
  {
    // c = a b^T: a (m x k), b (n x k)
    const auto a = random_matrix<S>(m, k, 1), b = random_matrix<S>(n, k, 2);
    std::vector<S> c(static_cast<std::size_t>(m * n), S(7));
    training::gemm_abt<S>(m, n, k, a.data(), b.data(), c.data());
    expect_near_all(c, naive(m, n, k, [&](auto i, auto p) { return a[i * k + p]; },
                             [&](auto p, auto j) { return b[j * k + p]; }), "gemm_abt");
  }
  {
    // c = a^T b: a (m x k), b (m x n), c (k x n)
    const auto a = random_matrix<S>(m, k, 3), b = random_matrix<S>(m, n, 4);
    std::vector<S> c(static_cast<std::size_t>(k * n), S(7));
    training::gemm_atb<S>(m, n, k, a.data(), b.data(), c.data());
    expect_near_all(c, naive(k, n, m, [&](auto i, auto p) { return a[p * k + i]; },
                             [&](auto p, auto j) { return b[p * n + j]; }), "gemm_atb");
  }
  {
    // c = a b: a (m x k), b (k x n)
    const auto a = random_matrix<S>(m, k, 5), b = random_matrix<S>(k, n, 6);
    std::vector<S> c(static_cast<std::size_t>(m * n), S(7));
    training::gemm_ab<S>(m, n, k, a.data(), b.data(), c.data());
    expect_near_all(c, naive(m, n, k, [&](auto i, auto p) { return a[i * k + p]; },
                             [&](auto p, auto j) { return b[p * n + j]; }), "gemm_ab");
  }
}

TEST(CpuGemm, EverySupportedSetMatchesTripleLoop) {
  IsaGuard guard;
  // odd sizes exercise every set's edge loops; 1-wide and 0-deep products the degenerate paths
  const std::int64_t shapes[][3] = {{1, 1, 1}, {7, 3, 5}, {33, 17, 65}, {130, 64, 256},
                                    {257, 31, 9}, {5, 1, 300}, {1, 40, 3}, {6, 4, 0}};
  for (CpuIsa isa : supported_isas()) {
    for (const auto& s : shapes) {
      check_products<float>(isa, s[0], s[1], s[2]);
      check_products<double>(isa, s[0], s[1], s[2]);
    }
  }
}

// the vectorised float tanh: close to tanh in every set, the same wherever the values lie, and
// NaN and the infinities handled as tanhf does
TEST(CpuGemm, VectorTanhIsAccurateAndIndependentOfAlignment) {
  IsaGuard guard;
  std::vector<float> x;
  for (int i = -4000; i <= 4000; ++i) x.push_back(static_cast<float>(i) * 0.004f);  // [-16, 16]
  for (float v : {0.0f, -0.0f, 1e-30f, -1e-20f, 3e-8f, 1e-4f, 9.0f, 40.0f, -40.0f, 1e30f}) x.push_back(v);
  const auto n = static_cast<std::int64_t>(x.size());
  for (CpuIsa isa : supported_isas()) {
    training::set_cpu_isa(isa);
    std::vector<float> y(x.size());
    training::tanh_f32(n, x.data(), y.data());
    double worst = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double want = std::tanh(double(x[i]));
      // relative to the value, with a floor of the smallest normal float's neighbourhood
      worst = std::max(worst, std::abs(double(y[i]) - want) / std::max(std::abs(want), 1e-30));
    }
    EXPECT_LE(worst, 1e-6) << training::cpu_isa_name(isa);  // a few float ulps (eps = 1.2e-7)
    // the same values at every offset from a 64-byte boundary
    std::vector<float> buf(x.size() + 16), out(x.size() + 16);
    for (int off = 1; off < 16; ++off) {
      std::copy(x.begin(), x.end(), buf.begin() + off);
      training::tanh_f32(n, buf.data() + off, out.data() + off);
      for (std::size_t i = 0; i < x.size(); ++i) {
        ASSERT_EQ(out[off + i], y[i]) << training::cpu_isa_name(isa) << " offset " << off << " x " << x[i];
      }
    }
    const float special[4] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                              -std::numeric_limits<float>::infinity(), 2.0f};
    float ys[4];
    training::tanh_f32(4, special, ys);
    EXPECT_TRUE(std::isnan(ys[0])) << training::cpu_isa_name(isa);
    EXPECT_EQ(ys[1], 1.0f) << training::cpu_isa_name(isa);
    EXPECT_EQ(ys[2], -1.0f) << training::cpu_isa_name(isa);
  }
}

// the trainer's whole loss gradient (MSE and the JAL double backward) agrees across sets
TEST(CpuGemm, MlpGradientAgreesAcrossSets) {
  IsaGuard guard;
  const training::MlpSpec spec = make_spec(training::Activation::tanh, true);
  const auto theta = training::init_params<double>(spec, 5);
  const Batch batch = random_batch(spec, 37, 11);
  training::CpuMlp<double> net(
      spec, loss_config(1, 0.5, training::JalMetric::mse, training::JacScaling::none, spec));
  const std::size_t P = spec.num_params();
  training::set_cpu_isa(CpuIsa::baseline);
  std::vector<double> g0(P);
  const auto t0 = net.loss_and_grad(37, theta.data(), batch.inputs.data(), batch.targets.data(),
                                    batch.target_jac.data(), g0.data());
  double scale = 0;
  for (double g : g0) scale = std::max(scale, std::abs(g));
  ASSERT_GT(scale, 0.0);
  for (CpuIsa isa : supported_isas()) {
    training::set_cpu_isa(isa);
    std::vector<double> g(P);
    const auto t = net.loss_and_grad(37, theta.data(), batch.inputs.data(), batch.targets.data(),
                                     batch.target_jac.data(), g.data());
    EXPECT_NEAR(t.total, t0.total, 1e-13 * std::abs(t0.total)) << training::cpu_isa_name(isa);
    double worst = 0;
    for (std::size_t i = 0; i < P; ++i) worst = std::max(worst, std::abs(g[i] - g0[i]));
    EXPECT_LE(worst, 1e-12 * scale) << training::cpu_isa_name(isa);
  }
}

// the trainer's thread limit: the calling thread's OpenMP regions (and Eigen's GEMM, which reads
// the same setting) are limited while it is in scope, and the caller's setting comes back
TEST(CpuThreads, LimitAppliesInScopeAndIsRestored) {
  const int before = omp_get_max_threads();
  {
    const training::OmpThreadLimit limit(1);
    EXPECT_EQ(omp_get_max_threads(), 1);
    int team = 0;
#pragma omp parallel
    {
#pragma omp single
      team = omp_get_num_threads();
    }
    EXPECT_EQ(team, 1);
  }
  EXPECT_EQ(omp_get_max_threads(), before);
  {
    const training::OmpThreadLimit none(0);  // 0: as it was
    EXPECT_EQ(omp_get_max_threads(), before);
  }
  // a one-thread network leaves the caller's setting alone and computes what the default does
  const training::MlpSpec spec = make_spec(training::Activation::tanh, false);
  const auto theta = training::init_params<double>(spec, 2);
  const Batch batch = random_batch(spec, 300, 4);  // above the loops' parallel threshold
  const auto cfg = loss_config(1, 1, training::JalMetric::mse, training::JacScaling::none, spec);
  training::CpuMlp<double> one(spec, cfg, 1), all(spec, cfg);
  std::vector<double> g1(spec.num_params()), ga(spec.num_params());
  one.loss_and_grad(300, theta.data(), batch.inputs.data(), batch.targets.data(), batch.target_jac.data(), g1.data());
  EXPECT_EQ(omp_get_max_threads(), before);
  all.loss_and_grad(300, theta.data(), batch.inputs.data(), batch.targets.data(), batch.target_jac.data(), ga.data());
  double scale = 0, worst = 0;
  for (std::size_t i = 0; i < g1.size(); ++i) {
    scale = std::max(scale, std::abs(ga[i]));
    worst = std::max(worst, std::abs(g1[i] - ga[i]));
  }
  EXPECT_LE(worst, 1e-12 * scale);
  EXPECT_THROW(training::CpuMlp<double>(spec, cfg, -1), InputError);
}

TEST(CpuGemm, NamesParseAndUnknownOnesAreRefused) {
  for (CpuIsa isa : kAllIsas) {
    EXPECT_EQ(training::parse_cpu_isa(training::cpu_isa_name(isa), "test"), isa);
  }
  EXPECT_EQ(training::parse_cpu_isa("auto", "test"), training::cpu_isa_best());
  try {
    training::parse_cpu_isa("sse9", "PHYDREAM_CPU_ISA");
    FAIL() << "an unknown name was accepted";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("PHYDREAM_CPU_ISA"), std::string::npos) << msg;
    EXPECT_NE(msg.find("sse9"), std::string::npos) << msg;
    EXPECT_NE(msg.find("avx512"), std::string::npos) << msg;
  }
}

TEST(CpuGemm, TheBestSetIsSupportedAndUnsupportedOnesAreRefused) {
  IsaGuard guard;
  EXPECT_TRUE(training::cpu_isa_supported(CpuIsa::baseline));
  EXPECT_TRUE(training::cpu_isa_supported(training::cpu_isa_best()));
  for (CpuIsa isa : kAllIsas) {
    if (training::cpu_isa_supported(isa)) {
      EXPECT_TRUE(training::cpu_isa_built(isa));
      EXPECT_LE(static_cast<int>(isa), static_cast<int>(training::cpu_isa_best()));
      training::set_cpu_isa(isa);
      EXPECT_EQ(training::cpu_isa(), isa);
    } else {
      EXPECT_THROW(training::set_cpu_isa(isa), InputError) << training::cpu_isa_name(isa);
    }
  }
}

}  // namespace
}  // namespace phydream::testing
