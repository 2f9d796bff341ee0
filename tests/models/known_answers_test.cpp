// Known answers: linearisations at equilibria, which have closed forms for every integrator,
// and a physical check (the small-angle period of the pendulum).
#include <gtest/gtest.h>

#include <array>
#include <cmath>

#include "engine/step.h"
#include "models/cartpole.h"
#include "models/double_pendulum.h"
#include "models/pendulum.h"

namespace phydream::testing {
namespace {

// small dense matrices for the closed forms
template <int N>
using Mat = std::array<std::array<double, N>, N>;

template <int N>
Mat<N> matmul(const Mat<N>& a, const Mat<N>& b) {
  Mat<N> r{};
  for (int i = 0; i < N; ++i)
    for (int k = 0; k < N; ++k)
      for (int j = 0; j < N; ++j) r[i][j] += a[i][k] * b[k][j];
  return r;
}

template <int N>
Mat<N> identity() {
  Mat<N> r{};
  for (int i = 0; i < N; ++i) r[i][i] = 1;
  return r;
}

// the exact one-step maps of each integrator for a linear system x' = M x + N u:
// returns (A, B) with x_next = A x + B u; N is given as a matrix with nu columns padded to n
template <int N>
void linear_step(Integrator integ, const Mat<N>& M, const Mat<N>& Nu, double h, Mat<N>& A,
                 Mat<N>& B) {
  const Mat<N> I = identity<N>();
  if (integ == Integrator::euler) {
    for (int i = 0; i < N; ++i)
      for (int j = 0; j < N; ++j) {
        A[i][j] = I[i][j] + h * M[i][j];
        B[i][j] = h * Nu[i][j];
      }
    return;
  }
  if (integ == Integrator::rk4) {
    // A = I + hM + (hM)^2/2 + (hM)^3/6 + (hM)^4/24, B = h (I + hM/2 + (hM)^2/6 + (hM)^3/24) N
    Mat<N> hM{};
    for (int i = 0; i < N; ++i)
      for (int j = 0; j < N; ++j) hM[i][j] = h * M[i][j];
    const Mat<N> hM2 = matmul<N>(hM, hM), hM3 = matmul<N>(hM2, hM), hM4 = matmul<N>(hM3, hM);
    Mat<N> S{};
    for (int i = 0; i < N; ++i)
      for (int j = 0; j < N; ++j) {
        A[i][j] = I[i][j] + hM[i][j] + hM2[i][j] / 2 + hM3[i][j] / 6 + hM4[i][j] / 24;
        S[i][j] = h * (I[i][j] + hM[i][j] / 2 + hM2[i][j] / 6 + hM3[i][j] / 24);
      }
    B = matmul<N>(S, Nu);
    return;
  }
  // semi-implicit Euler on x = [q, v] with M = [[0, I], [Kq, Kv]], N = [[0], [Nv]]:
  // v' = v + h (Kq q + Kv v + Nv u), q' = q + h v'
  const int nq = N / 2;
  // rows of v' first, then q' = q + h v'
  for (int i = 0; i < nq; ++i)
    for (int j = 0; j < N; ++j) {
      A[nq + i][j] = I[nq + i][j] + h * M[nq + i][j];
      B[nq + i][j] = h * Nu[nq + i][j];
    }
  for (int i = 0; i < nq; ++i)
    for (int j = 0; j < N; ++j) {
      A[i][j] = I[i][j] + h * A[nq + i][j];
      B[i][j] = h * B[nq + i][j];
    }
}

// checks the engine's forward and reverse Jacobians at (x, u) against the closed form
template <class Model, int N>
void expect_linearisation(const typename Model::Params& p, double h, const double* x,
                          const double* u, const Mat<N>& M, const Mat<N>& Nu) {
  constexpr int nx = Model::nx, nu = Model::nu;
  static_assert(nx == N);
  for (Integrator integ : {Integrator::euler, Integrator::semi_implicit_euler, Integrator::rk4}) {
    SCOPED_TRACE(integ == Integrator::euler ? "euler" : integ == Integrator::rk4 ? "rk4" : "sie");
    Mat<N> A{}, B{};
    linear_step<N>(integ, M, Nu, h, A, B);
    for (bool forward : {true, false}) {
      double xn[nx], jx[nx * nx], ju[nx * nu];
      auto run = [&](auto tag) {
        constexpr Integrator I = decltype(tag)::value;
        if (forward) {
          jacobian_fwd<I, Model>(p, h, x, u, xn, jx, ju);
        } else {
          jacobian_rev<I, Model>(p, h, x, u, xn, jx, ju);
        }
      };
      if (integ == Integrator::euler) run(std::integral_constant<Integrator, Integrator::euler>{});
      if (integ == Integrator::semi_implicit_euler) {
        run(std::integral_constant<Integrator, Integrator::semi_implicit_euler>{});
      }
      if (integ == Integrator::rk4) run(std::integral_constant<Integrator, Integrator::rk4>{});
      for (int i = 0; i < nx; ++i) {
        for (int j = 0; j < nx; ++j) EXPECT_NEAR(jx[i * nx + j], A[i][j], 1e-13) << i << "," << j;
        for (int j = 0; j < nu; ++j) EXPECT_NEAR(ju[i * nu + j], B[i][j], 1e-13) << i << "," << j;
      }
    }
  }
}

TEST(KnownAnswers, PendulumLinearisationAtRest) {
  using Model = models::Pendulum<double>;
  const double m = 1.5, l = 0.8, g = 9.81, b = 0.3, h = 0.05;
  const double v[] = {m, l, g, b};
  const auto p = Model::params_from(v);
  const double x[] = {0, 0}, u[] = {0};
  // theta'' = -(g/l) theta - b/(m l^2) omega + u/(m l^2)
  Mat<2> M{}, Nu{};
  M[0][1] = 1;
  M[1][0] = -g / l;
  M[1][1] = -b / (m * l * l);
  Nu[1][0] = 1 / (m * l * l);
  expect_linearisation<Model, 2>(p, h, x, u, M, Nu);
}

TEST(KnownAnswers, DoublePendulumLinearisationAtRest) {
  using Model = models::DoublePendulum<double>;
  const double m1 = 1.2, m2 = 0.7, l1 = 0.9, l2 = 1.4, g = 9.81, h = 0.1;
  const double v[] = {m1, m2, l1, l2, g};
  const auto p = Model::params_from(v);
  const double x[] = {0, 0, 0, 0}, u[] = {0, 0};
  // the seed's formulas linearised at theta = omega = 0 (denominator 2 m1):
  //   th1'' = -g (m1 + m2) / (m1 l1) th1 + g m2 / (m1 l1) th2 + a1
  //   th2'' =  g (m1 + m2) / (m1 l2) (th1 - th2) + a2
  Mat<4> M{}, Nu{};
  M[0][2] = M[1][3] = 1;
  M[2][0] = -g * (m1 + m2) / (m1 * l1);
  M[2][1] = g * m2 / (m1 * l1);
  M[3][0] = g * (m1 + m2) / (m1 * l2);
  M[3][1] = -g * (m1 + m2) / (m1 * l2);
  Nu[2][0] = Nu[3][1] = 1;
  expect_linearisation<Model, 4>(p, h, x, u, M, Nu);
}

TEST(KnownAnswers, CartpoleLinearisationUpright) {
  using Model = models::Cartpole<double>;
  const double mc = 1.0, mp = 0.1, l = 0.5, g = 9.8, h = 0.02;
  const double v[] = {mc, mp, l, g};
  const auto p = Model::params_from(v);
  const double x[] = {0.3, 0, 0, 0}, u[] = {0};
  // theta'' = (g theta - F / M) / (l (4/3 - mp / M)), x'' = F / M - mp l theta'' / M
  const double M_ = mc + mp, den = l * (4.0 / 3.0 - mp / M_);
  const double tt_theta = g / den, tt_f = -1 / (M_ * den);
  Mat<4> M{}, Nu{};
  M[0][2] = M[1][3] = 1;
  M[3][1] = tt_theta;
  M[2][1] = -mp * l / M_ * tt_theta;
  Nu[3][0] = tt_f;
  Nu[2][0] = 1 / M_ - mp * l / M_ * tt_f;
  expect_linearisation<Model, 4>(p, h, x, u, M, Nu);
}

TEST(KnownAnswers, PendulumSmallAnglePeriod) {
  using Model = models::Pendulum<double>;
  const double l = 2.0, g = 9.81, h = 1e-4;
  const double v[] = {1.0, l, g, 0.0};
  const auto p = Model::params_from(v);
  // small amplitude: period 2 pi sqrt(l / g) (1 + theta0^2 / 16 + ...); rk4 at h = 1e-4
  const double theta0 = 1e-3;
  const double period = 2 * M_PI * std::sqrt(l / g) * (1 + theta0 * theta0 / 16);
  const long steps = std::lround(period / h);
  double x[2] = {theta0, 0}, xn[2];
  const double u[1] = {0};
  // integrate to the nearest step, then the last fraction with a shorter step
  for (long t = 0; t < steps; ++t) {
    step<Integrator::rk4, Model>(p, h, x, u, xn);
    x[0] = xn[0];
    x[1] = xn[1];
  }
  const double rest = period - steps * h;
  step<Integrator::rk4, Model>(p, rest, x, u, xn);
  EXPECT_NEAR(xn[0], theta0, 1e-9);
  EXPECT_NEAR(xn[1], 0.0, 1e-8);
}

}  // namespace
}  // namespace phydream::testing
