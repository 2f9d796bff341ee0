// Damped pendulum: a point mass on a massless rod, torque at the pivot.
//
// state x = [theta, omega] (theta = 0 hanging down), action u = [torque]
//   theta'' = (u - damping * omega) / (mass * length^2) - (gravity / length) * sin(theta)
#pragma once

#include "engine/small_vec.h"

namespace phydream::models {

template <class Scalar>
struct Pendulum {
  using scalar_type = Scalar;
  static constexpr int nq = 1;  // generalized coordinates
  static constexpr int nu = 1;  // actions
  static constexpr int nx = 2 * nq;

  /// Physical parameters, in the order of the registry's parameter list.
  struct Params {
    Scalar mass;     // kg, > 0
    Scalar length;   // m, > 0
    Scalar gravity;  // m/s^2
    Scalar damping;  // N m s / rad, >= 0
  };
  static constexpr int nparams = 4;
  PHYDREAM_HD static Params params_from(const double* v) {
    return Params{Scalar(v[0]), Scalar(v[1]), Scalar(v[2]), Scalar(v[3])};
  }

  /// qdd = a(q, qd, u). q, qd: (nq), u: (nu), qdd: (nq) written.
  PHYDREAM_HD static void accel(const Params& p, const Scalar* q, const Scalar* qd,
                                const Scalar* u, Scalar* qdd) {
    const Scalar inv_inertia = Scalar(1) / (p.mass * p.length * p.length);
    qdd[0] = (u[0] - p.damping * qd[0]) * inv_inertia - p.gravity / p.length * sin_(q[0]);
  }

  /// Forward mode of accel: dqdd = da/dq dq + da/dqd dqd + da/du du (overwrites qdd, dqdd).
  template <class T>
  PHYDREAM_HD static void accel_jvp(const Params& p, const Scalar* q, const Scalar* qd,
                                    const Scalar* u, const T* dq, const T* dqd, const T* du,
                                    Scalar* qdd, T* dqdd) {
    Scalar s, c;
    sincos_(q[0], &s, &c);
    const Scalar inv_inertia = Scalar(1) / (p.mass * p.length * p.length);
    const Scalar g_over_l = p.gravity / p.length;
    qdd[0] = (u[0] - p.damping * qd[0]) * inv_inertia - g_over_l * s;
    dqdd[0] = inv_inertia * du[0] - (p.damping * inv_inertia) * dqd[0] - (g_over_l * c) * dq[0];
  }

  /// Reverse mode of accel: gq += (da/dq)^T gqdd, gqd += ..., gu += ... (accumulates).
  template <class T>
  PHYDREAM_HD static void accel_vjp(const Params& p, const Scalar* q, const Scalar* qd,
                                    const Scalar* u, T* gq, T* gqd, T* gu, const T* gqdd) {
    (void)qd;
    (void)u;
    const Scalar inv_inertia = Scalar(1) / (p.mass * p.length * p.length);
    gu[0] += inv_inertia * gqdd[0];
    gqd[0] -= (p.damping * inv_inertia) * gqdd[0];
    gq[0] -= (p.gravity / p.length * cos_(q[0])) * gqdd[0];
  }
};

}  // namespace phydream::models
