// The seed's double pendulum (PhyDream paper, section 3.1): two point masses on massless rods.
//
// state x = [theta1, theta2, omega1, omega2] (angles from the downward vertical),
// action u = [a1, a2], added to the angular accelerations (not torques), exactly as the seed:
//
//   D    = 2 m1 + m2 - m2 cos(2 (theta1 - theta2))
//   th1'' = [-g (2 m1 + m2) sin th1 - m2 g sin(th1 - 2 th2)
//            - 2 sin(th1 - th2) m2 (w2^2 l2 + w1^2 l1 cos(th1 - th2))] / (l1 D) + a1
//   th2'' = [2 sin(th1 - th2) (w1^2 l1 (m1 + m2) + g (m1 + m2) cos th1
//            + w2^2 l2 m2 cos(th1 - th2))] / (l2 D) + a2
//
// D >= 2 m1 > 0, so the accelerations are smooth everywhere for positive masses.
#pragma once

#include "engine/small_vec.h"

namespace phydream::models {

template <class Scalar>
struct DoublePendulum {
  using scalar_type = Scalar;
  static constexpr int nq = 2;
  static constexpr int nu = 2;
  static constexpr int nx = 2 * nq;

  struct Params {
    Scalar m1, m2;  // kg, > 0
    Scalar l1, l2;  // m, > 0
    Scalar g;       // m/s^2
  };
  static constexpr int nparams = 5;
  PHYDREAM_HD static Params params_from(const double* v) {
    return Params{Scalar(v[0]), Scalar(v[1]), Scalar(v[2]), Scalar(v[3]), Scalar(v[4])};
  }

  // the primal intermediates shared by accel, its JVP and its VJP
  struct Primal {
    Scalar s1, c1;      // sin, cos theta1
    Scalar sd, cd;      // sin, cos (theta1 - theta2)
    Scalar s12, c12;    // sin, cos (theta1 - 2 theta2)
    Scalar s2d;         // sin 2(theta1 - theta2)
    Scalar den;         // D
    Scalar p;           // w2^2 l2 + w1^2 l1 cos(th1 - th2)
    Scalar qq;          // w1^2 l1 (m1 + m2) + g (m1 + m2) cos th1 + w2^2 l2 m2 cos(th1 - th2)
    Scalar n1, n2;      // numerators
    Scalar alpha1, alpha2;  // accelerations without the action
  };

  PHYDREAM_HD static Primal primal(const Params& p, const Scalar* q, const Scalar* qd) {
    Primal r;
    const Scalar delta = q[0] - q[1];
    sincos_(q[0], &r.s1, &r.c1);
    sincos_(delta, &r.sd, &r.cd);
    sincos_(q[0] - Scalar(2) * q[1], &r.s12, &r.c12);
    // cos 2d and sin 2d from the double-angle identities: one sincos fewer
    const Scalar c2d = r.cd * r.cd - r.sd * r.sd;
    r.s2d = Scalar(2) * r.sd * r.cd;
    const Scalar msum = p.m1 + p.m2;
    r.den = Scalar(2) * p.m1 + p.m2 - p.m2 * c2d;
    const Scalar w1sq = qd[0] * qd[0], w2sq = qd[1] * qd[1];
    r.p = w2sq * p.l2 + w1sq * p.l1 * r.cd;
    r.qq = w1sq * p.l1 * msum + p.g * msum * r.c1 + w2sq * p.l2 * p.m2 * r.cd;
    r.n1 = -p.g * (Scalar(2) * p.m1 + p.m2) * r.s1 - p.m2 * p.g * r.s12 -
           Scalar(2) * r.sd * p.m2 * r.p;
    r.n2 = Scalar(2) * r.sd * r.qq;
    r.alpha1 = r.n1 / (p.l1 * r.den);
    r.alpha2 = r.n2 / (p.l2 * r.den);
    return r;
  }

  /// qdd = a(q, qd, u). q, qd: (2), u: (2), qdd: (2) written.
  PHYDREAM_HD static void accel(const Params& p, const Scalar* q, const Scalar* qd,
                                const Scalar* u, Scalar* qdd) {
    const Primal r = primal(p, q, qd);
    qdd[0] = r.alpha1 + u[0];
    qdd[1] = r.alpha2 + u[1];
  }

  /// Forward mode of accel (overwrites qdd, dqdd).
  template <class T>
  PHYDREAM_HD static void accel_jvp(const Params& p, const Scalar* q, const Scalar* qd,
                                    const Scalar* u, const T* dq, const T* dqd, const T* du,
                                    Scalar* qdd, T* dqdd) {
    const Primal r = primal(p, q, qd);
    const Scalar msum = p.m1 + p.m2;
    const T ddelta = dq[0] - dq[1];
    // d of each intermediate, in the order of the forward computation
    const T ds1 = r.c1 * dq[0];
    const T dc1 = -r.s1 * dq[0];
    const T dsd = r.cd * ddelta;
    const T dcd = -r.sd * ddelta;
    const T ds12 = r.c12 * (dq[0] - Scalar(2) * dq[1]);
    const T dden = (Scalar(2) * p.m2 * r.s2d) * ddelta;  // d(-m2 cos 2d) = 2 m2 sin 2d dd
    const T dp = (Scalar(2) * qd[1] * p.l2) * dqd[1] + (Scalar(2) * qd[0] * p.l1 * r.cd) * dqd[0] +
                 (qd[0] * qd[0] * p.l1) * dcd;
    const T dqq = (Scalar(2) * qd[0] * p.l1 * msum) * dqd[0] + (p.g * msum) * dc1 +
                  (Scalar(2) * qd[1] * p.l2 * p.m2 * r.cd) * dqd[1] +
                  (qd[1] * qd[1] * p.l2 * p.m2) * dcd;
    const T dn1 = (-p.g * (Scalar(2) * p.m1 + p.m2)) * ds1 - (p.m2 * p.g) * ds12 -
                  (Scalar(2) * p.m2 * r.p) * dsd - (Scalar(2) * p.m2 * r.sd) * dp;
    const T dn2 = (Scalar(2) * r.qq) * dsd + (Scalar(2) * r.sd) * dqq;
    // quotient rule: alpha = n / (l D)  =>  dalpha = (dn - alpha l dD) / (l D)
    qdd[0] = r.alpha1 + u[0];
    qdd[1] = r.alpha2 + u[1];
    dqdd[0] = (dn1 - (r.alpha1 * p.l1) * dden) / (p.l1 * r.den) + du[0];
    dqdd[1] = (dn2 - (r.alpha2 * p.l2) * dden) / (p.l2 * r.den) + du[1];
  }

  /// Reverse mode of accel (accumulates into gq, gqd, gu).
  template <class T>
  PHYDREAM_HD static void accel_vjp(const Params& p, const Scalar* q, const Scalar* qd,
                                    const Scalar* u, T* gq, T* gqd, T* gu, const T* gqdd) {
    (void)u;
    const Primal r = primal(p, q, qd);
    const Scalar msum = p.m1 + p.m2;
    gu[0] += gqdd[0];
    gu[1] += gqdd[1];
    // alpha_i = n_i / (l_i D)
    const T gn1 = gqdd[0] / (p.l1 * r.den);
    const T gn2 = gqdd[1] / (p.l2 * r.den);
    const T gden = -(r.alpha1 / r.den) * gqdd[0] - (r.alpha2 / r.den) * gqdd[1];
    // n1 = -g (2 m1 + m2) s1 - m2 g s12 - 2 m2 sd p
    const T gs1 = (-p.g * (Scalar(2) * p.m1 + p.m2)) * gn1;
    const T gs12 = (-p.m2 * p.g) * gn1;
    T gsd = (-Scalar(2) * p.m2 * r.p) * gn1;
    const T gp = (-Scalar(2) * p.m2 * r.sd) * gn1;
    // n2 = 2 sd qq
    gsd += (Scalar(2) * r.qq) * gn2;
    const T gqq = (Scalar(2) * r.sd) * gn2;
    // qq = w1^2 l1 M + g M c1 + w2^2 l2 m2 cd
    gqd[0] += (Scalar(2) * qd[0] * p.l1 * msum) * gqq;
    const T gc1 = (p.g * msum) * gqq;
    gqd[1] += (Scalar(2) * qd[1] * p.l2 * p.m2 * r.cd) * gqq;
    T gcd = (qd[1] * qd[1] * p.l2 * p.m2) * gqq;
    // p = w2^2 l2 + w1^2 l1 cd
    gqd[1] += (Scalar(2) * qd[1] * p.l2) * gp;
    gqd[0] += (Scalar(2) * qd[0] * p.l1 * r.cd) * gp;
    gcd += (qd[0] * qd[0] * p.l1) * gp;
    // D = 2 m1 + m2 - m2 cos 2d, trig of d = th1 - th2, of th1 - 2 th2 and of th1
    const T gdelta = (Scalar(2) * p.m2 * r.s2d) * gden + r.cd * gsd - r.sd * gcd;
    gq[0] += gdelta + r.c12 * gs12 + r.c1 * gs1 - r.s1 * gc1;
    gq[1] += -gdelta - (Scalar(2) * r.c12) * gs12;
  }
};

}  // namespace phydream::models
