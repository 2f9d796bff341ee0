// The registry's double_pendulum is the seed's (section 3.1): its defaults, its formulas, explicit
// Euler at dt = 0.1, through the public Simulator API.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "engine/simulator.h"
#include "independent.h"
#include "models/envs.h"
#include "test_util.h"

namespace phydream::testing {
namespace {

TEST(SeedDoublePendulum, RegistryDefaultsAreTheSeeds) {
  const EnvInfo& e = find_env("double_pendulum");
  EXPECT_EQ(e.nx, 4);
  EXPECT_EQ(e.nu, 2);
  EXPECT_EQ(e.dt, 0.1);
  EXPECT_EQ(e.integrator, Integrator::euler);
  ASSERT_EQ(e.params.size(), 5u);
  const char* names[] = {"m1", "m2", "l1", "l2", "g"};
  const double values[] = {1, 1, 1, 1, 9.81};
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(e.params[i].name, names[i]);
    EXPECT_EQ(e.params[i].default_value, values[i]);
  }
  EXPECT_EQ(e.state_names, (std::vector<std::string>{"theta1", "theta2", "omega1", "omega2"}));
}

// theta1 = pi/2, everything else 0: sin terms are 1, cos(theta1 - theta2) = 0, D = 4, so
// theta1'' = (-3 g - g) / 4 = -g and theta2'' = 0; one Euler step of 0.1 s
TEST(SeedDoublePendulum, HandComputedStep) {
  SimulatorOptions o;
  o.backend = Backend::cpu;
  Simulator<double> sim(o);
  const double x[] = {M_PI / 2, 0, 0, 0}, u[] = {0, 0};
  double xn[4];
  sim.step(1, x, u, xn);
  EXPECT_DOUBLE_EQ(xn[0], M_PI / 2);
  EXPECT_DOUBLE_EQ(xn[1], 0);
  EXPECT_NEAR(xn[2], -0.981, 1e-15);
  EXPECT_NEAR(xn[3], 0, 1e-15);
  // the action adds to the accelerations: a = (1, -2) adds (0.1, -0.2) to the velocities
  const double ua[] = {1, -2};
  sim.step(1, x, ua, xn);
  EXPECT_NEAR(xn[2], -0.981 + 0.1, 1e-15);
  EXPECT_NEAR(xn[3], -0.2, 1e-15);
}

// a batch through the public API against the seed's formulas transcribed in tests/independent.h,
// values and both Jacobians (dual numbers), to rounding
TEST(SeedDoublePendulum, BatchMatchesIndependentTranscription) {
  constexpr int nx = 4, nu = 2, K = 6;
  constexpr std::int64_t B = 1000;
  SimulatorOptions o;
  o.backend = Backend::cpu;
  Simulator<double> sim(o);
  std::mt19937_64 rng(7);
  std::vector<double> x(B * nx), u(B * nu);
  for (std::int64_t b = 0; b < B; ++b) {
    random_input<models::DoublePendulum<double>>(rng, &x[b * nx], &u[b * nu]);
  }
  std::vector<double> xn(B * nx), jx(B * nx * nx), ju(B * nx * nu), jxr(B * nx * nx),
      jur(B * nx * nu);
  sim.jacobian(B, x.data(), u.data(), xn.data(), jx.data(), ju.data(), JacobianMode::forward);
  sim.jacobian(B, x.data(), u.data(), nullptr, jxr.data(), jur.data(), JacobianMode::reverse);

  using D = independent::Dual<K>;
  const std::vector<double> params = {1, 1, 1, 1, 9.81};
  for (std::int64_t b = 0; b < B; ++b) {
    std::vector<D> xd(nx), ud(nu);
    for (int i = 0; i < nx; ++i) xd[i] = D::variable(x[b * nx + i], i);
    for (int i = 0; i < nu; ++i) ud[i] = D::variable(u[b * nu + i], nx + i);
    const auto y = independent::integrate(
        independent::Scheme::euler,
        [&](const std::vector<D>& s, const std::vector<D>& a) {
          return independent::double_pendulum_rhs(s, a, params);
        },
        xd, ud, 0.1);
    for (int i = 0; i < nx; ++i) {
      const double scale = std::max(1.0, std::abs(y[i].v));
      ASSERT_NEAR(xn[b * nx + i], y[i].v, 1e-13 * scale) << b << "," << i;
      for (int j = 0; j < K; ++j) {
        const double ref = y[i].d[j];
        const double tol = 1e-12 * std::max(1.0, std::abs(ref));
        const double fwd = j < nx ? jx[(b * nx + i) * nx + j] : ju[(b * nx + i) * nu + j - nx];
        const double rev = j < nx ? jxr[(b * nx + i) * nx + j] : jur[(b * nx + i) * nu + j - nx];
        ASSERT_NEAR(fwd, ref, tol) << "forward, env " << b << " entry " << i << "," << j;
        ASSERT_NEAR(rev, ref, tol) << "reverse, env " << b << " entry " << i << "," << j;
      }
    }
  }
}

}  // namespace
}  // namespace phydream::testing
