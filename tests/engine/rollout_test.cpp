// Rollouts and their reverse mode: against repeated steps, against central differences of a
// trajectory loss in double, and checkpointed against stored (exactly equal).
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "engine/rollout.h"
#include "test_util.h"

namespace phydream::testing {
namespace {

template <class C>
class Rollout : public ::testing::Test {
 protected:
  using Model = typename C::Model;
  using S = typename C::Scalar;
  static constexpr Integrator I = C::integrator;
  static constexpr int nx = Model::nx, nu = Model::nu;
  typename Model::Params p = default_params<Model>();
  S h = static_cast<S>(default_dt<Model>());
  std::mt19937_64 rng{99};

  void sample(long long T, std::vector<S>& x0, std::vector<S>& U) {
    double x[nx], u[nu];
    random_input<Model>(rng, x, u);
    x0.assign(x, x + nx);
    U.clear();
    for (long long t = 0; t < T; ++t) {
      random_input<Model>(rng, x, u);
      for (int i = 0; i < nu; ++i) U.push_back(static_cast<S>(0.3 * u[i]));
    }
  }

  // L = 1/2 |x_T|^2 + sum_t c_t . x_t for a fixed weight c (exercises g_states)
  double loss(const std::vector<S>& x0, const std::vector<S>& U, long long T,
              const std::vector<S>& c) {
    std::vector<S> states((T + 1) * nx);
    rollout<I, Model>(p, h, x0.data(), U.data(), T, states.data());
    double l = 0;
    for (int i = 0; i < nx; ++i) l += 0.5 * double(states[T * nx + i]) * double(states[T * nx + i]);
    for (std::size_t k = 0; k < c.size(); ++k) l += double(c[k]) * double(states[k]);
    return l;
  }
};

// the reverse mode is compared with finite differences in double only (float loses the digits
// central differences need); float is covered by checkpointed-vs-stored and the Simulator tests
template <class C>
class RolloutDouble : public Rollout<C> {};

using DoubleCases =
    ::testing::Types<Case<models::Pendulum, double, Integrator::euler>,
                     Case<models::Pendulum, double, Integrator::semi_implicit_euler>,
                     Case<models::Pendulum, double, Integrator::rk4>,
                     Case<models::DoublePendulum, double, Integrator::euler>,
                     Case<models::DoublePendulum, double, Integrator::semi_implicit_euler>,
                     Case<models::DoublePendulum, double, Integrator::rk4>,
                     Case<models::Cartpole, double, Integrator::euler>,
                     Case<models::Cartpole, double, Integrator::semi_implicit_euler>,
                     Case<models::Cartpole, double, Integrator::rk4>>;

TYPED_TEST_SUITE(Rollout, AllCases, CaseNames);
TYPED_TEST_SUITE(RolloutDouble, DoubleCases, CaseNames);

TYPED_TEST(Rollout, EqualsRepeatedSteps) {
  using S = typename TestFixture::S;
  using Model = typename TestFixture::Model;
  constexpr int nx = TestFixture::nx, nu = TestFixture::nu;
  constexpr Integrator I = TestFixture::I;
  const long long T = 37;
  std::vector<S> x0, U;
  this->sample(T, x0, U);
  std::vector<S> states((T + 1) * nx);
  rollout<I, Model>(this->p, this->h, x0.data(), U.data(), T, states.data());
  std::vector<S> x = x0, xn(nx);
  for (long long t = 0; t < T; ++t) {
    step<I, Model>(this->p, this->h, x.data(), U.data() + t * nu, xn.data());
    x = xn;
    for (int i = 0; i < nx; ++i) ASSERT_EQ(states[(t + 1) * nx + i], x[i]) << t;
  }
}

TYPED_TEST(Rollout, CheckpointedEqualsStored) {
  using S = typename TestFixture::S;
  using Model = typename TestFixture::Model;
  constexpr int nx = TestFixture::nx, nu = TestFixture::nu;
  constexpr Integrator I = TestFixture::I;
  for (long long T : {0LL, 1LL, 2LL, 17LL, 64LL}) {
    std::vector<S> x0, U;
    this->sample(T, x0, U);
    std::vector<S> states((T + 1) * nx), g_states((T + 1) * nx), g_final(nx);
    rollout<I, Model>(this->p, this->h, x0.data(), U.data(), T, states.data());
    for (std::size_t k = 0; k < g_states.size(); ++k) g_states[k] = S(0.01) * S(k % 7);
    for (int i = 0; i < nx; ++i) g_final[i] = states[T * nx + i];
    std::vector<S> gx0_ref(nx, S(0)), gU_ref(T * nu, S(0));
    rollout_vjp<I, Model>(this->p, this->h, states.data(), U.data(), T, gx0_ref.data(),
                          gU_ref.data(), g_states.data(), g_final.data());
    const long long sqrt_t = default_checkpoint_interval(T);
    for (long long k : {1LL, 3LL, sqrt_t, T > 0 ? T : 1LL, T + 5}) {
      std::vector<S> scratch(checkpoint_scratch_states(T, k) * nx);
      std::vector<S> gx0(nx, S(0)), gU(T * nu, S(0));
      rollout_vjp_checkpointed<I, Model>(this->p, this->h, x0.data(), U.data(), T, k,
                                         scratch.data(), gx0.data(), gU.data(), g_states.data(),
                                         g_final.data());
      EXPECT_EQ(gx0, gx0_ref) << "T " << T << " interval " << k;
      EXPECT_EQ(gU, gU_ref) << "T " << T << " interval " << k;
    }
  }
}

TYPED_TEST(RolloutDouble, GradientMatchesCentralDifferences) {
  using Model = typename TestFixture::Model;
  constexpr int nx = TestFixture::nx, nu = TestFixture::nu;
  constexpr Integrator I = TestFixture::I;
  const long long T = 20;
  for (int trial = 0; trial < 5; ++trial) {
    std::vector<double> x0, U;
    this->sample(T, x0, U);
    // moderate states: over 20 steps the fast double pendulum is chaotic enough that no finite
    // difference stencil resolves its gradient to 1e-6 (the derivative itself is still exact)
    for (double& e : x0) e *= 0.3;
    std::vector<double> c((T + 1) * nx);
    std::uniform_real_distribution<double> dist(-0.1, 0.1);
    for (double& e : c) e = dist(this->rng);
    std::vector<double> states((T + 1) * nx);
    rollout<I, Model>(this->p, this->h, x0.data(), U.data(), T, states.data());
    std::vector<double> g_final(states.end() - nx, states.end());
    std::vector<double> gx0(nx, 0.0), gU(T * nu, 0.0);
    rollout_vjp<I, Model>(this->p, this->h, states.data(), U.data(), T, gx0.data(), gU.data(),
                          c.data(), g_final.data());
    // fourth-order central differences of the loss in every input: over 20 steps of a chaotic
    // system the second-order stencil's truncation error is too large to test against
    auto fd = [&](std::vector<double>& v, std::size_t k) {
      const double v0 = v[k], e = 1e-4 * std::max(1.0, std::abs(v0));
      auto at = [&](double d) {
        v[k] = v0 + d;
        const double l = this->loss(x0, U, T, c);
        v[k] = v0;
        return l;
      };
      return (8 * (at(e) - at(-e)) - (at(2 * e) - at(-2 * e))) / (12 * e);
    };
    // chaotic systems amplify: the scale of the gradient sets the tolerance
    double scale = 1;
    for (double g : gx0) scale = std::max(scale, std::abs(g));
    for (double g : gU) scale = std::max(scale, std::abs(g));
    for (int i = 0; i < nx; ++i) {
      EXPECT_NEAR(gx0[i], fd(x0, i), 1e-6 * scale) << "x0[" << i << "] trial " << trial;
    }
    for (long long k = 0; k < T * nu; ++k) {
      EXPECT_NEAR(gU[k], fd(U, k), 1e-6 * scale) << "U[" << k << "] trial " << trial;
    }
  }
}

TEST(RolloutScratch, SizesAndDefaultInterval) {
  EXPECT_EQ(default_checkpoint_interval(0), 1);
  EXPECT_EQ(default_checkpoint_interval(1), 1);
  EXPECT_EQ(default_checkpoint_interval(100), 10);
  EXPECT_EQ(default_checkpoint_interval(101), 11);
  // T = 100, k = 10: 10 checkpoints + a segment of 11 states
  EXPECT_EQ(checkpoint_scratch_states(100, 10), 21);
  // memory grows like sqrt(T)
  const long long T = 10000, k = default_checkpoint_interval(T);
  EXPECT_LE(checkpoint_scratch_states(T, k), 2 * k + 1);
}

}  // namespace
}  // namespace phydream::testing
