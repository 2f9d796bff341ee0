// Every model x integrator x dtype: the hand-written JVP, VJP and both Jacobians against central
// differences in double, against each other (adjoint identity, forward vs reverse sweep), against
// an independent dual-number implementation, and the primal outputs against the plain step.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "engine/step.h"
#include "independent.h"
#include "test_util.h"

namespace phydream::testing {
namespace {

template <class C>
class Derivatives : public ::testing::Test {
 protected:
  using Model = typename C::Model;
  using ModelD = typename C::ModelD;
  using S = typename C::Scalar;
  static constexpr Integrator I = C::integrator;
  static constexpr int nx = Model::nx, nu = Model::nu, K = nx + nu;

  typename Model::Params p = default_params<Model>();
  typename ModelD::Params pd = default_params<ModelD>();
  S h = static_cast<S>(default_dt<Model>());
  double hd = default_dt<Model>();
  std::mt19937_64 rng{20261122};

  // a random input, rounded to S so the double references are taken at the same point
  void sample(double* x, double* u) {
    random_input<ModelD>(rng, x, u);
    for (int i = 0; i < nx; ++i) x[i] = static_cast<double>(static_cast<S>(x[i]));
    for (int i = 0; i < nu; ++i) u[i] = static_cast<double>(static_cast<S>(u[i]));
  }

  // central differences in double: J (nx, nx + nu), row-major
  std::vector<double> fd_jacobian(const double* x, const double* u) {
    std::vector<double> J(nx * K);
    for (int c = 0; c < K; ++c) {
      double xp[nx], up[nu], yp[nx], ym[nx];
      std::copy(x, x + nx, xp);
      std::copy(u, u + nu, up);
      double& v = c < nx ? xp[c] : up[c - nx];
      const double v0 = v, e = 1e-6 * std::max(1.0, std::abs(v0));
      v = v0 + e;
      step<I, ModelD>(pd, hd, xp, up, yp);
      v = v0 - e;
      step<I, ModelD>(pd, hd, xp, up, ym);
      for (int i = 0; i < nx; ++i) J[i * K + c] = (yp[i] - ym[i]) / (2 * e);
    }
    return J;
  }

  // the analytic Jacobian in S as (nx, nx + nu) doubles, and the primal it returned
  std::vector<double> analytic(const double* x, const double* u, bool forward,
                               std::vector<S>* xn_out = nullptr) {
    S xs[nx], us[nu], xn[nx], jx[nx * nx], ju[nx * nu];
    std::copy(x, x + nx, xs);
    std::copy(u, u + nu, us);
    if (forward) {
      jacobian_fwd<I, Model>(p, h, xs, us, xn, jx, ju);
    } else {
      jacobian_rev<I, Model>(p, h, xs, us, xn, jx, ju);
    }
    if (xn_out != nullptr) xn_out->assign(xn, xn + nx);
    std::vector<double> J(nx * K);
    for (int i = 0; i < nx; ++i) {
      for (int j = 0; j < nx; ++j) J[i * K + j] = jx[i * nx + j];
      for (int j = 0; j < nu; ++j) J[i * K + nx + j] = ju[i * nu + j];
    }
    return J;
  }

  // the FD error bound: S rounding of the analytic result dominates for float
  static double fd_tol() { return sizeof(S) == 4 ? 1e-4 : 1e-7; }
};

TYPED_TEST_SUITE(Derivatives, AllCases, CaseNames);

TYPED_TEST(Derivatives, JacobiansMatchCentralDifferences) {
  constexpr int nx = TestFixture::nx, nu = TestFixture::nu;
  for (int trial = 0; trial < 50; ++trial) {
    double x[nx], u[nu];
    this->sample(x, u);
    const auto fd = this->fd_jacobian(x, u);
    const auto fwd = this->analytic(x, u, true);
    const auto rev = this->analytic(x, u, false);
    EXPECT_LT(rel_err(fwd, fd), this->fd_tol()) << "forward sweep, trial " << trial;
    EXPECT_LT(rel_err(rev, fd), this->fd_tol()) << "reverse sweep, trial " << trial;
    // the comparison is not vacuous: FD and analytic differ in the last bits somewhere
    EXPECT_NE(fwd, fd);
  }
}

TYPED_TEST(Derivatives, ForwardAndReverseJacobiansAgreeToRounding) {
  constexpr int nx = TestFixture::nx, nu = TestFixture::nu;
  using S = typename TestFixture::S;
  for (int trial = 0; trial < 50; ++trial) {
    double x[nx], u[nu];
    this->sample(x, u);
    EXPECT_LT(rel_err(this->analytic(x, u, true), this->analytic(x, u, false)),
              rounding_tol<S>())
        << "trial " << trial;
  }
}

TYPED_TEST(Derivatives, JvpMatchesDirectionalDifference) {
  constexpr int nx = TestFixture::nx, nu = TestFixture::nu;
  constexpr Integrator I = TestFixture::I;
  using S = typename TestFixture::S;
  using Model = typename TestFixture::Model;
  using ModelD = typename TestFixture::ModelD;
  std::uniform_real_distribution<double> dir(-1, 1);
  for (int trial = 0; trial < 50; ++trial) {
    double x[nx], u[nu], dx[nx], du[nu];
    this->sample(x, u);
    for (double& v : dx) v = dir(this->rng);
    for (double& v : du) v = dir(this->rng);
    // central difference along (dx, du), in double
    const double e = 1e-6;
    double xp[nx], up[nu], xm[nx], um[nu], yp[nx], ym[nx];
    for (int i = 0; i < nx; ++i) {
      xp[i] = x[i] + e * dx[i];
      xm[i] = x[i] - e * dx[i];
    }
    for (int i = 0; i < nu; ++i) {
      up[i] = u[i] + e * du[i];
      um[i] = u[i] - e * du[i];
    }
    step<I, ModelD>(this->pd, this->hd, xp, up, yp);
    step<I, ModelD>(this->pd, this->hd, xm, um, ym);
    std::vector<double> fd(nx);
    for (int i = 0; i < nx; ++i) fd[i] = (yp[i] - ym[i]) / (2 * e);
    // the JVP in S with a single tangent direction
    S xs[nx], us[nu], dxs[nx], dus[nu], xn[nx], dxn[nx];
    std::copy(x, x + nx, xs);
    std::copy(u, u + nu, us);
    std::copy(dx, dx + nx, dxs);
    std::copy(du, du + nu, dus);
    step_jvp<I, Model>(this->p, this->h, xs, us, dxs, dus, xn, dxn);
    EXPECT_LT(rel_err(std::vector<double>(dxn, dxn + nx), fd), this->fd_tol()) << trial;
  }
}

TYPED_TEST(Derivatives, VjpMatchesTransposedDifferences) {
  constexpr int nx = TestFixture::nx, nu = TestFixture::nu, K = nx + nu;
  constexpr Integrator I = TestFixture::I;
  using S = typename TestFixture::S;
  using Model = typename TestFixture::Model;
  std::uniform_real_distribution<double> dir(-1, 1);
  for (int trial = 0; trial < 50; ++trial) {
    double x[nx], u[nu], w[nx];
    this->sample(x, u);
    for (double& v : w) v = dir(this->rng);
    const auto J = this->fd_jacobian(x, u);
    std::vector<double> expected(K, 0.0);  // J^T w
    for (int i = 0; i < nx; ++i) {
      for (int j = 0; j < K; ++j) expected[j] += J[i * K + j] * w[i];
    }
    S xs[nx], us[nu], ws[nx], gx[nx] = {}, gu[nu] = {};
    std::copy(x, x + nx, xs);
    std::copy(u, u + nu, us);
    std::copy(w, w + nx, ws);
    step_vjp<I, Model>(this->p, this->h, xs, us, gx, gu, ws);
    std::vector<double> got(gx, gx + nx);
    got.insert(got.end(), gu, gu + nu);
    EXPECT_LT(rel_err(got, expected), this->fd_tol()) << trial;
  }
}

TYPED_TEST(Derivatives, AdjointIdentityHolds) {
  constexpr int nx = TestFixture::nx, nu = TestFixture::nu;
  constexpr Integrator I = TestFixture::I;
  using S = typename TestFixture::S;
  using Model = typename TestFixture::Model;
  std::uniform_real_distribution<double> dir(-1, 1);
  for (int trial = 0; trial < 100; ++trial) {
    double x[nx], u[nu];
    this->sample(x, u);
    S xs[nx], us[nu], v[nx], vu[nu], w[nx], xn[nx], jv[nx], gx[nx] = {}, gu[nu] = {};
    std::copy(x, x + nx, xs);
    std::copy(u, u + nu, us);
    for (S& e : v) e = static_cast<S>(dir(this->rng));
    for (S& e : vu) e = static_cast<S>(dir(this->rng));
    for (S& e : w) e = static_cast<S>(dir(this->rng));
    step_jvp<I, Model>(this->p, this->h, xs, us, v, vu, xn, jv);
    step_vjp<I, Model>(this->p, this->h, xs, us, gx, gu, w);
    double lhs = 0, rhs = 0, scale = 0;  // <w, J v> and <J^T w, v>
    for (int i = 0; i < nx; ++i) {
      lhs += double(w[i]) * double(jv[i]);
      scale += std::abs(double(w[i]) * double(jv[i]));
    }
    for (int i = 0; i < nx; ++i) rhs += double(gx[i]) * double(v[i]);
    for (int i = 0; i < nu; ++i) rhs += double(gu[i]) * double(vu[i]);
    EXPECT_LE(std::abs(lhs - rhs), rounding_tol<S>() * std::max(scale, 1.0)) << trial;
  }
}

TYPED_TEST(Derivatives, PrimalOutputsEqualThePlainStep) {
  constexpr int nx = TestFixture::nx, nu = TestFixture::nu;
  constexpr Integrator I = TestFixture::I;
  using S = typename TestFixture::S;
  using Model = typename TestFixture::Model;
  for (int trial = 0; trial < 20; ++trial) {
    double x[nx], u[nu];
    this->sample(x, u);
    S xs[nx], us[nu], plain[nx], dx[nx] = {}, du[nu] = {}, xn_jvp[nx], dxn[nx];
    std::copy(x, x + nx, xs);
    std::copy(u, u + nu, us);
    step<I, Model>(this->p, this->h, xs, us, plain);
    step_jvp<I, Model>(this->p, this->h, xs, us, dx, du, xn_jvp, dxn);
    std::vector<S> xn_fwd, xn_rev;
    this->analytic(x, u, true, &xn_fwd);
    this->analytic(x, u, false, &xn_rev);
    const std::vector<S> expected(plain, plain + nx);
    EXPECT_EQ(std::vector<S>(xn_jvp, xn_jvp + nx), expected);
    EXPECT_EQ(xn_fwd, expected);
    EXPECT_EQ(xn_rev, expected);
  }
}

TYPED_TEST(Derivatives, VjpAccumulatesIntoItsOutputs) {
  constexpr int nx = TestFixture::nx, nu = TestFixture::nu;
  constexpr Integrator I = TestFixture::I;
  using S = typename TestFixture::S;
  using Model = typename TestFixture::Model;
  double x[nx], u[nu];
  this->sample(x, u);
  S xs[nx], us[nu], w[nx], g1x[nx] = {}, g1u[nu] = {}, g2x[nx], g2u[nu];
  std::copy(x, x + nx, xs);
  std::copy(u, u + nu, us);
  for (int i = 0; i < nx; ++i) w[i] = S(0.5) + S(i);
  for (S& e : g2x) e = S(3);
  for (S& e : g2u) e = S(-2);
  step_vjp<I, Model>(this->p, this->h, xs, us, g1x, g1u, w);
  step_vjp<I, Model>(this->p, this->h, xs, us, g2x, g2u, w);
  // equal up to the order of the additions: (3 + a) + b against 3 + (a + b)
  const double tol = rounding_tol<S>() * 10;
  for (int i = 0; i < nx; ++i) EXPECT_NEAR(g2x[i], S(3) + g1x[i], tol * (3 + std::abs(g1x[i])));
  for (int i = 0; i < nu; ++i) EXPECT_NEAR(g2u[i], S(-2) + g1u[i], tol * (2 + std::abs(g1u[i])));
}

TYPED_TEST(Derivatives, MultiDirectionSweepsEqualSingleDirectionOnes) {
  constexpr int nx = TestFixture::nx, nu = TestFixture::nu, K = nx + nu;
  constexpr Integrator I = TestFixture::I;
  using S = typename TestFixture::S;
  using Model = typename TestFixture::Model;
  double x[nx], u[nu];
  this->sample(x, u);
  S xs[nx], us[nu], xn[nx];
  std::copy(x, x + nx, xs);
  std::copy(u, u + nu, us);
  const auto J = this->analytic(x, u, true);
  const auto Jr = this->analytic(x, u, false);
  for (int c = 0; c < K; ++c) {  // column c by a one-direction JVP
    S dx[nx] = {}, du[nu] = {}, dxn[nx];
    (c < nx ? dx[c] : du[c - nx]) = S(1);
    step_jvp<I, Model>(this->p, this->h, xs, us, dx, du, xn, dxn);
    for (int i = 0; i < nx; ++i) EXPECT_EQ(double(dxn[i]), J[i * K + c]) << i << "," << c;
  }
  for (int r = 0; r < nx; ++r) {  // row r by a one-cotangent VJP
    S w[nx] = {}, gx[nx] = {}, gu[nu] = {};
    w[r] = S(1);
    step_vjp<I, Model>(this->p, this->h, xs, us, gx, gu, w);
    for (int j = 0; j < nx; ++j) EXPECT_EQ(double(gx[j]), Jr[r * K + j]) << r << "," << j;
    for (int j = 0; j < nu; ++j) EXPECT_EQ(double(gu[j]), Jr[r * K + nx + j]) << r << "," << j;
  }
}

// the engine against the dual-number implementation in tests/independent.h
TYPED_TEST(Derivatives, MatchesIndependentDualNumberImplementation) {
  constexpr int nx = TestFixture::nx, nu = TestFixture::nu, K = nx + nu;
  constexpr Integrator I = TestFixture::I;
  using S = typename TestFixture::S;
  using Model = typename TestFixture::Model;
  using ModelD = typename TestFixture::ModelD;
  using D = independent::Dual<K>;
  const auto scheme = I == Integrator::euler                 ? independent::Scheme::euler
                      : I == Integrator::semi_implicit_euler ? independent::Scheme::semi_implicit_euler
                                                             : independent::Scheme::rk4;
  const std::vector<double> params = test_param_values<ModelD>();
  auto rhs = [&](const std::vector<D>& x, const std::vector<D>& u) {
    if constexpr (std::is_same_v<ModelD, models::Pendulum<double>>) {
      return independent::pendulum_rhs(x, u, params);
    } else if constexpr (std::is_same_v<ModelD, models::DoublePendulum<double>>) {
      return independent::double_pendulum_rhs(x, u, params);
    } else {
      return independent::cartpole_rhs(x, u, params);
    }
  };
  for (int trial = 0; trial < 50; ++trial) {
    double x[nx], u[nu];
    this->sample(x, u);
    std::vector<D> xd(nx), ud(nu);
    for (int i = 0; i < nx; ++i) xd[i] = D::variable(x[i], i);
    for (int i = 0; i < nu; ++i) ud[i] = D::variable(u[i], nx + i);
    const std::vector<D> y = independent::integrate(scheme, rhs, xd, ud, this->hd);
    std::vector<double> y_ref(nx), J_ref(nx * K);
    for (int i = 0; i < nx; ++i) {
      y_ref[i] = y[i].v;
      for (int j = 0; j < K; ++j) J_ref[i * K + j] = y[i].d[j];
    }
    std::vector<S> xn;
    const auto J = this->analytic(x, u, true, &xn);
    EXPECT_LT(rel_err(to_double(xn), y_ref), rounding_tol<S>()) << "next state, trial " << trial;
    EXPECT_LT(rel_err(J, J_ref), 100 * rounding_tol<S>()) << "Jacobian, trial " << trial;
  }
}

}  // namespace
}  // namespace phydream::testing
