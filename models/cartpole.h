// Classic cart-pole (Barto, Sutton & Anderson 1983, without friction, as in OpenAI gym).
//
// state x = [x, theta, xdot, thetadot] (theta = 0 upright), action u = [force on the cart]
//   temp     = (F + m_p l thetadot^2 sin theta) / (m_c + m_p)
//   theta''  = (g sin theta - cos theta temp) / (l (4/3 - m_p cos^2 theta / (m_c + m_p)))
//   x''      = temp - m_p l theta'' cos theta / (m_c + m_p)
// with l the pole's half-length.
#pragma once

#include "engine/small_vec.h"

namespace phydream::models {

template <class Scalar>
struct Cartpole {
  using scalar_type = Scalar;
  static constexpr int nq = 2;
  static constexpr int nu = 1;
  static constexpr int nx = 2 * nq;

  struct Params {
    Scalar mass_cart;  // kg, > 0
    Scalar mass_pole;  // kg, > 0
    Scalar length;     // pole half-length, m, > 0
    Scalar gravity;    // m/s^2
  };
  static constexpr int nparams = 4;
  PHYDREAM_HD static Params params_from(const double* v) {
    return Params{Scalar(v[0]), Scalar(v[1]), Scalar(v[2]), Scalar(v[3])};
  }

  struct Primal {
    Scalar s, c;       // sin, cos theta
    Scalar inv_mass;   // 1 / (m_c + m_p)
    Scalar temp;
    Scalar den;        // l (4/3 - m_p c^2 / M), > 0 since m_p / M < 1
    Scalar thetadd, xdd;
  };

  PHYDREAM_HD static Primal primal(const Params& p, const Scalar* q, const Scalar* qd,
                                   const Scalar* u) {
    Primal r;
    sincos_(q[1], &r.s, &r.c);
    r.inv_mass = Scalar(1) / (p.mass_cart + p.mass_pole);
    r.temp = (u[0] + p.mass_pole * p.length * qd[1] * qd[1] * r.s) * r.inv_mass;
    r.den = p.length * (Scalar(4) / Scalar(3) - p.mass_pole * r.c * r.c * r.inv_mass);
    r.thetadd = (p.gravity * r.s - r.c * r.temp) / r.den;
    r.xdd = r.temp - p.mass_pole * p.length * r.thetadd * r.c * r.inv_mass;
    return r;
  }

  /// qdd = a(q, qd, u). q, qd: (2) = [x, theta], [xdot, thetadot]; u: (1); qdd: (2) written.
  PHYDREAM_HD static void accel(const Params& p, const Scalar* q, const Scalar* qd,
                                const Scalar* u, Scalar* qdd) {
    const Primal r = primal(p, q, qd, u);
    qdd[0] = r.xdd;
    qdd[1] = r.thetadd;
  }

  /// Forward mode of accel (overwrites qdd, dqdd).
  template <class T>
  PHYDREAM_HD static void accel_jvp(const Params& p, const Scalar* q, const Scalar* qd,
                                    const Scalar* u, const T* dq, const T* dqd, const T* du,
                                    Scalar* qdd, T* dqdd) {
    const Primal r = primal(p, q, qd, u);
    const Scalar mpl = p.mass_pole * p.length;
    const T dtemp = r.inv_mass * du[0] + (mpl * Scalar(2) * qd[1] * r.s * r.inv_mass) * dqd[1] +
                    (mpl * qd[1] * qd[1] * r.c * r.inv_mass) * dq[1];
    const T dden = (Scalar(2) * mpl * r.c * r.s * r.inv_mass) * dq[1];
    const T dnum = (p.gravity * r.c + r.s * r.temp) * dq[1] - r.c * dtemp;
    const T dthetadd = (dnum - r.thetadd * dden) / r.den;
    qdd[0] = r.xdd;
    qdd[1] = r.thetadd;
    dqdd[1] = dthetadd;
    dqdd[0] = dtemp - (mpl * r.inv_mass) * (r.c * dthetadd - (r.thetadd * r.s) * dq[1]);
  }

  /// Reverse mode of accel (accumulates into gq, gqd, gu).
  template <class T>
  PHYDREAM_HD static void accel_vjp(const Params& p, const Scalar* q, const Scalar* qd,
                                    const Scalar* u, T* gq, T* gqd, T* gu, const T* gqdd) {
    const Primal r = primal(p, q, qd, u);
    const Scalar mpl = p.mass_pole * p.length;
    // xdd = temp - mpl thetadd c / M
    T gtemp = gqdd[0];
    const T gthetadd = gqdd[1] - (mpl * r.c * r.inv_mass) * gqdd[0];
    T gtheta = (mpl * r.thetadd * r.s * r.inv_mass) * gqdd[0];
    // thetadd = num / den
    const T gnum = gthetadd / r.den;
    const T gden = -(r.thetadd / r.den) * gthetadd;
    // num = g s - c temp, den = l (4/3 - m_p c^2 / M)
    gtheta += (p.gravity * r.c + r.s * r.temp) * gnum +
              (Scalar(2) * mpl * r.c * r.s * r.inv_mass) * gden;
    gtemp -= r.c * gnum;
    // temp = (F + mpl thetadot^2 s) / M
    gu[0] += r.inv_mass * gtemp;
    gqd[1] += (mpl * Scalar(2) * qd[1] * r.s * r.inv_mass) * gtemp;
    gtheta += (mpl * qd[1] * qd[1] * r.c * r.inv_mass) * gtemp;
    gq[1] += gtheta;
  }
};

}  // namespace phydream::models
