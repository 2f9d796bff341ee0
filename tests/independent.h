// An independent implementation of every model and integrator, for cross-checking the engine:
// written from the textbook formulas with generic arithmetic, differentiated by forward-mode
// dual numbers instead of hand-written derivatives. It shares no code with engine/ or models/.
#pragma once

#include <array>
#include <cmath>
#include <vector>

namespace phydream::testing::independent {

/// A forward-mode dual number with N derivative components.
template <int N>
struct Dual {
  double v = 0;
  std::array<double, N> d{};

  Dual() = default;
  Dual(double value) : v(value) {}  // NOLINT: constants promote implicitly
  static Dual variable(double value, int k) {
    Dual r(value);
    r.d[k] = 1.0;
    return r;
  }
};

template <int N>
Dual<N> operator+(const Dual<N>& a, const Dual<N>& b) {
  Dual<N> r(a.v + b.v);
  for (int k = 0; k < N; ++k) r.d[k] = a.d[k] + b.d[k];
  return r;
}
template <int N>
Dual<N> operator-(const Dual<N>& a, const Dual<N>& b) {
  Dual<N> r(a.v - b.v);
  for (int k = 0; k < N; ++k) r.d[k] = a.d[k] - b.d[k];
  return r;
}
template <int N>
Dual<N> operator-(const Dual<N>& a) {
  return Dual<N>(0.0) - a;
}
template <int N>
Dual<N> operator*(const Dual<N>& a, const Dual<N>& b) {
  Dual<N> r(a.v * b.v);
  for (int k = 0; k < N; ++k) r.d[k] = a.d[k] * b.v + a.v * b.d[k];
  return r;
}
template <int N>
Dual<N> operator/(const Dual<N>& a, const Dual<N>& b) {
  Dual<N> r(a.v / b.v);
  for (int k = 0; k < N; ++k) r.d[k] = (a.d[k] * b.v - a.v * b.d[k]) / (b.v * b.v);
  return r;
}
template <int N>
Dual<N> sin(const Dual<N>& a) {
  Dual<N> r(std::sin(a.v));
  for (int k = 0; k < N; ++k) r.d[k] = std::cos(a.v) * a.d[k];
  return r;
}
template <int N>
Dual<N> cos(const Dual<N>& a) {
  Dual<N> r(std::cos(a.v));
  for (int k = 0; k < N; ++k) r.d[k] = -std::sin(a.v) * a.d[k];
  return r;
}
template <int N>
Dual<N> square(const Dual<N>& a) {
  return a * a;
}
inline double square(double a) { return a * a; }
using std::cos;
using std::sin;

// ---------------------------------------------------------------------------------------------
// continuous dynamics f(x, u) = dx/dt over a generic number type T; p are the parameters in the
// registry's order

template <class T>
std::vector<T> pendulum_rhs(const std::vector<T>& x, const std::vector<T>& u,
                            const std::vector<double>& p) {
  const double m = p[0], l = p[1], g = p[2], b = p[3];
  // I theta'' = tau - b omega - m g l sin(theta), I = m l^2
  const T thetadd = (u[0] - T(b) * x[1] - T(m * g * l) * sin(x[0])) / T(m * l * l);
  return {x[1], thetadd};
}

// the seed's formulas, transcribed term by term from section 3.1
template <class T>
std::vector<T> double_pendulum_rhs(const std::vector<T>& x, const std::vector<T>& u,
                                   const std::vector<double>& p) {
  const double m1 = p[0], m2 = p[1], l1 = p[2], l2 = p[3], g = p[4];
  const T th1 = x[0], th2 = x[1], w1 = x[2], w2 = x[3];
  const T denominator = T(2 * m1 + m2) - T(m2) * cos(T(2.0) * (th1 - th2));
  const T th1dd = (T(-g * (2 * m1 + m2)) * sin(th1) - T(m2 * g) * sin(th1 - T(2.0) * th2) -
                   T(2.0) * sin(th1 - th2) * T(m2) *
                       (square(w2) * T(l2) + square(w1) * T(l1) * cos(th1 - th2))) /
                      (T(l1) * denominator) +
                  u[0];
  const T th2dd = (T(2.0) * sin(th1 - th2) *
                   (square(w1) * T(l1 * (m1 + m2)) + T(g * (m1 + m2)) * cos(th1) +
                    square(w2) * T(l2 * m2) * cos(th1 - th2))) /
                      (T(l2) * denominator) +
                  u[1];
  return {w1, w2, th1dd, th2dd};
}

// the frictionless cart-pole as gym's CartPoleEnv computes it (pole half-length l)
template <class T>
std::vector<T> cartpole_rhs(const std::vector<T>& x, const std::vector<T>& u,
                            const std::vector<double>& p) {
  const double mc = p[0], mp = p[1], l = p[2], g = p[3];
  const double total = mc + mp, pml = mp * l;
  const T s = sin(x[1]), c = cos(x[1]);
  const T temp = (u[0] + T(pml) * x[3] * x[3] * s) / T(total);
  const T thetaacc = (T(g) * s - c * temp) / (T(l) * (T(4.0 / 3.0) - T(mp) * c * c / T(total)));
  const T xacc = temp - T(pml) * thetaacc * c / T(total);
  return {x[2], x[3], xacc, thetaacc};
}

// ---------------------------------------------------------------------------------------------
// integrators over a generic number type: x' = Phi(x, u)

enum class Scheme { euler, semi_implicit_euler, rk4 };

template <class T, class Rhs>
std::vector<T> integrate(Scheme scheme, Rhs rhs, const std::vector<T>& x,
                         const std::vector<T>& u, double h) {
  const std::size_t n = x.size(), nq = n / 2;
  auto axpy = [](const std::vector<T>& a, double s, const std::vector<T>& b) {
    std::vector<T> r(a.size());
    for (std::size_t i = 0; i < a.size(); ++i) r[i] = a[i] + T(s) * b[i];
    return r;
  };
  if (scheme == Scheme::euler) return axpy(x, h, rhs(x, u));
  if (scheme == Scheme::semi_implicit_euler) {
    const std::vector<T> f = rhs(x, u);
    std::vector<T> r(n);
    for (std::size_t i = 0; i < nq; ++i) r[nq + i] = x[nq + i] + T(h) * f[nq + i];
    for (std::size_t i = 0; i < nq; ++i) r[i] = x[i] + T(h) * r[nq + i];
    return r;
  }
  const std::vector<T> k1 = rhs(x, u);
  const std::vector<T> k2 = rhs(axpy(x, h / 2, k1), u);
  const std::vector<T> k3 = rhs(axpy(x, h / 2, k2), u);
  const std::vector<T> k4 = rhs(axpy(x, h, k3), u);
  std::vector<T> r(n);
  for (std::size_t i = 0; i < n; ++i) {
    r[i] = x[i] + T(h / 6) * (k1[i] + T(2.0) * k2[i] + T(2.0) * k3[i] + k4[i]);
  }
  return r;
}

}  // namespace phydream::testing::independent
