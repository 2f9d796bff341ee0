// Forward-mode dual numbers: a value and K tangents, for running scalar code unchanged under
// differentiation (engine/constraint_unrolled.h runs the constraint solver on them).
//
// Dual<S, K> x = (v, d) stands for v + d eps with eps^2 = 0, K directions at once (d a
// Vec<S, K>, engine/small_vec.h). Every operation computes its value with exactly the floating
// point operation the plain scalar code performs (a + b, a * b, a / b, sqrt), in the same
// order, so a computation run on duals has values equal to the scalar computation bit for bit
// (on the host; a device compiler that contracts multiply-adds may contract the two codes
// differently). Comparisons compare the values only, so the control flow is the scalar
// code's, and the tangents are the derivative of the computation along that control flow.
//
// Conversions: from S (and so from integers and enumerators, as S(0), S(kStateQuadratic)) with
// zero tangents; explicitly to int (the value), for integers stored as Scalars.
#pragma once

#include "engine/core.h"
#include "engine/small_vec.h"

namespace phydream {

/// A value and the tangents of K directions; trivially copyable, usable in kernels.
template <class S, int K>
struct Dual {
  S v;          // value
  Vec<S, K> d;  // tangents

  Dual() = default;
  PHYDREAM_HD constexpr Dual(S value) : v(value), d{} {}  // implicit: a constant
  PHYDREAM_HD constexpr Dual(S value, const Vec<S, K>& tangent) : v(value), d(tangent) {}
  PHYDREAM_HD explicit operator int() const { return static_cast<int>(v); }

  PHYDREAM_HD Dual& operator+=(const Dual& o) {
    v += o.v;
    d += o.d;
    return *this;
  }
  PHYDREAM_HD Dual& operator-=(const Dual& o) {
    v -= o.v;
    d -= o.d;
    return *this;
  }
  // d(a b) = b da + a db, with the old value of a
  PHYDREAM_HD Dual& operator*=(const Dual& o) {
    d = o.v * d + v * o.d;
    v *= o.v;
    return *this;
  }
  // d(a / b) = (da - (a / b) db) / b
  PHYDREAM_HD Dual& operator/=(const Dual& o) {
    v /= o.v;
    d = (d - v * o.d) / o.v;
    return *this;
  }
  PHYDREAM_HD Dual& operator+=(S s) {
    v += s;
    return *this;
  }
  PHYDREAM_HD Dual& operator-=(S s) {
    v -= s;
    return *this;
  }
  PHYDREAM_HD Dual& operator*=(S s) {
    v *= s;
    d *= s;
    return *this;
  }
  PHYDREAM_HD Dual& operator/=(S s) {
    v /= s;
    d = d / s;
    return *this;
  }
};

/// The dual number type of a tangent type: Vec<S, K> -> Dual<S, K>.
template <class T>
struct DualOf;
template <class S, int K>
struct DualOf<Vec<S, K>> {
  using type = Dual<S, K>;
};

// ---------------------------------------------------------------------------------------------
// arithmetic: dual with dual, dual with a constant on either side

template <class S, int K>
PHYDREAM_HD Dual<S, K> operator-(const Dual<S, K>& a) {
  return Dual<S, K>(-a.v, -a.d);
}
template <class S, int K>
PHYDREAM_HD Dual<S, K> operator+(Dual<S, K> a, const Dual<S, K>& b) { return a += b; }
template <class S, int K>
PHYDREAM_HD Dual<S, K> operator-(Dual<S, K> a, const Dual<S, K>& b) { return a -= b; }
template <class S, int K>
PHYDREAM_HD Dual<S, K> operator*(Dual<S, K> a, const Dual<S, K>& b) { return a *= b; }
template <class S, int K>
PHYDREAM_HD Dual<S, K> operator/(Dual<S, K> a, const Dual<S, K>& b) { return a /= b; }

template <class S, int K>
PHYDREAM_HD Dual<S, K> operator+(Dual<S, K> a, S s) { return a += s; }
template <class S, int K>
PHYDREAM_HD Dual<S, K> operator+(S s, const Dual<S, K>& a) { return Dual<S, K>(s + a.v, a.d); }
template <class S, int K>
PHYDREAM_HD Dual<S, K> operator-(Dual<S, K> a, S s) { return a -= s; }
template <class S, int K>
PHYDREAM_HD Dual<S, K> operator-(S s, const Dual<S, K>& a) { return Dual<S, K>(s - a.v, -a.d); }
template <class S, int K>
PHYDREAM_HD Dual<S, K> operator*(Dual<S, K> a, S s) { return a *= s; }
template <class S, int K>
PHYDREAM_HD Dual<S, K> operator*(S s, const Dual<S, K>& a) { return Dual<S, K>(s * a.v, s * a.d); }
template <class S, int K>
PHYDREAM_HD Dual<S, K> operator/(Dual<S, K> a, S s) { return a /= s; }
// d(s / a) = -(s / a) da / a
template <class S, int K>
PHYDREAM_HD Dual<S, K> operator/(S s, const Dual<S, K>& a) {
  const S v = s / a.v;
  return Dual<S, K>(v, (v * a.d) / -a.v);
}

// ---------------------------------------------------------------------------------------------
// comparisons: the values only

#define PHYDREAM_DUAL_COMPARISON(op)                                                            \
  template <class S, int K>                                                                     \
  PHYDREAM_HD bool operator op(const Dual<S, K>& a, const Dual<S, K>& b) { return a.v op b.v; } \
  template <class S, int K>                                                                     \
  PHYDREAM_HD bool operator op(const Dual<S, K>& a, S b) { return a.v op b; }                   \
  template <class S, int K>                                                                     \
  PHYDREAM_HD bool operator op(S a, const Dual<S, K>& b) { return a op b.v; }
PHYDREAM_DUAL_COMPARISON(==)
PHYDREAM_DUAL_COMPARISON(!=)
PHYDREAM_DUAL_COMPARISON(<)
PHYDREAM_DUAL_COMPARISON(<=)
PHYDREAM_DUAL_COMPARISON(>)
PHYDREAM_DUAL_COMPARISON(>=)
#undef PHYDREAM_DUAL_COMPARISON

// ---------------------------------------------------------------------------------------------
// the scalar maths of engine/core.h and engine/constraint.h (found by argument-dependent lookup
// from the templates that call them); max_ and min_ are engine/constraint.h's generic templates

/// sqrt, d sqrt(a) = da / (2 sqrt(a)); at a = 0, where that is unbounded, the tangent is 0:
/// the solver takes square roots of positive values except |T| = 0 of an elliptic cone, whose
/// derivative its branches never use there.
template <class S, int K>
PHYDREAM_HD Dual<S, K> sqrt_(const Dual<S, K>& a) {
  const S v = sqrt_(a.v);
  return Dual<S, K>(v, v > S(0) ? a.d / (S(2) * v) : Vec<S, K>::zero());
}

/// |a|, with the tangent of a's side (+da at 0).
template <class S, int K>
PHYDREAM_HD Dual<S, K> abs_(const Dual<S, K>& a) {
  return Dual<S, K>(abs_(a.v), a.v < S(0) ? -a.d : a.d);
}

/// Whether the value is finite (the tangents are not looked at, so a solve on duals ends with
/// the status of the scalar solve).
template <class S, int K>
PHYDREAM_HD bool isfinite_(const Dual<S, K>& a) {
  return isfinite_(a.v);
}

/// Whether x is exactly zero, for skipping zero terms (a dual number only when its tangents are
/// zero too, below, so that no skipped term carries a derivative).
template <class S>
PHYDREAM_HD bool exact_zero(const S& x) {
  return x == S(0);
}

/// Whether a is exactly zero with zero tangents: a term with a zero value but a nonzero tangent
/// may not be skipped.
template <class S, int K>
PHYDREAM_HD bool exact_zero(const Dual<S, K>& a) {
  if (a.v != S(0)) return false;
  for (int k = 0; k < K; ++k) {
    if (a.d.v[k] != S(0)) return false;
  }
  return true;
}

}  // namespace phydream
