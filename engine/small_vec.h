// Fixed-size vectors for host/device code, and the tangent type of the derivative routines.
//
// Derivative routines are templated on a tangent type T. With T = Scalar a JVP pushes one
// direction and a VJP pulls one cotangent. With T = Vec<Scalar, K> every "scalar" tangent carries
// K directions at once, so one forward sweep gives K Jacobian columns and one reverse sweep K
// rows, sharing the primal computation. The arithmetic below is exactly what the derivative code
// needs: T + T, T - T, -T, Scalar * T, T * Scalar, T / Scalar and the compound forms.
#pragma once

#include "engine/core.h"

namespace phydream {

/// A fixed-size vector of N scalars; an aggregate, trivially copyable, usable in kernels.
template <class Scalar, int N>
struct Vec {
  Scalar v[N];

  PHYDREAM_HD Scalar& operator[](int i) { return v[i]; }
  PHYDREAM_HD const Scalar& operator[](int i) const { return v[i]; }

  PHYDREAM_HD static Vec zero() {
    Vec r;
    for (int i = 0; i < N; ++i) r.v[i] = Scalar(0);
    return r;
  }
  PHYDREAM_HD static Vec unit(int k) {
    Vec r = zero();
    r.v[k] = Scalar(1);
    return r;
  }

  PHYDREAM_HD Vec& operator+=(const Vec& o) {
    for (int i = 0; i < N; ++i) v[i] += o.v[i];
    return *this;
  }
  PHYDREAM_HD Vec& operator-=(const Vec& o) {
    for (int i = 0; i < N; ++i) v[i] -= o.v[i];
    return *this;
  }
  PHYDREAM_HD Vec& operator*=(Scalar s) {
    for (int i = 0; i < N; ++i) v[i] *= s;
    return *this;
  }
};

template <class S, int N>
PHYDREAM_HD Vec<S, N> operator+(Vec<S, N> a, const Vec<S, N>& b) { return a += b; }
template <class S, int N>
PHYDREAM_HD Vec<S, N> operator-(Vec<S, N> a, const Vec<S, N>& b) { return a -= b; }
template <class S, int N>
PHYDREAM_HD Vec<S, N> operator-(Vec<S, N> a) { return a *= S(-1); }
template <class S, int N>
PHYDREAM_HD Vec<S, N> operator*(S s, Vec<S, N> a) { return a *= s; }
template <class S, int N>
PHYDREAM_HD Vec<S, N> operator*(Vec<S, N> a, S s) { return a *= s; }
// a true division per component, so K-direction sweeps round exactly like K one-direction ones
template <class S, int N>
PHYDREAM_HD Vec<S, N> operator/(Vec<S, N> a, S s) {
  for (int i = 0; i < N; ++i) a.v[i] /= s;
  return a;
}

/// Zero of a tangent type: Scalar(0) or Vec::zero().
template <class T>
struct TangentTraits {
  static constexpr int lanes = 1;  // directions a tangent carries
  PHYDREAM_HD static T zero() { return T(0); }
};
template <class S, int N>
struct TangentTraits<Vec<S, N>> {
  static constexpr int lanes = N;
  PHYDREAM_HD static Vec<S, N> zero() { return Vec<S, N>::zero(); }
};
template <class T>
PHYDREAM_HD T tangent_zero() { return TangentTraits<T>::zero(); }

/// Lane k of a tangent: a Scalar's only one (k = 0), or a Vec's k-th component.
template <class S>
PHYDREAM_HD S& tangent_lane(S& t, int /*k*/) { return t; }
template <class S, int N>
PHYDREAM_HD S& tangent_lane(Vec<S, N>& t, int k) { return t[k]; }
template <class S>
PHYDREAM_HD S tangent_lane(const S& t, int /*k*/) { return t; }
template <class S, int N>
PHYDREAM_HD S tangent_lane(const Vec<S, N>& t, int k) { return t[k]; }

/// A tangent as a Vec of its lanes (Vec<S, 1> for a Scalar), and back.
template <class S>
PHYDREAM_HD Vec<S, 1> as_lanes(const S& t) {
  Vec<S, 1> v;
  v[0] = t;
  return v;
}
template <class S, int N>
PHYDREAM_HD Vec<S, N> as_lanes(const Vec<S, N>& t) { return t; }
template <class S>
PHYDREAM_HD void from_lanes(const Vec<S, 1>& v, S& t) { t = v[0]; }
template <class S, int N>
PHYDREAM_HD void from_lanes(const Vec<S, N>& v, Vec<S, N>& t) { t = v; }

}  // namespace phydream
