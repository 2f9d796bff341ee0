// Time integrators for second-order systems x = [q, qd], each followed by its hand-written
// forward (JVP) and reverse (VJP) derivative.
//
// A Model provides (see models/pendulum.h for the smallest one):
//   scalar_type, nq, nu, nx = 2 nq, Params,
//   accel(p, q, qd, u, qdd)                                   qdd = a(q, qd, u)
//   accel_jvp<T>(p, q, qd, u, dq, dqd, du, qdd, dqdd)         overwrites qdd, dqdd
//   accel_vjp<T>(p, q, qd, u, gq, gqd, gu, gqdd)              accumulates gq, gqd, gu
// The action is held constant over the step (zero-order hold).
//
// Conventions of every *_jvp / *_vjp here:
//   jvp: (inputs, input tangents, outputs, output tangents); outputs and tangents are overwritten.
//   vjp: (inputs, input cotangents, output cotangent last); input cotangents are accumulated (+=).
// The tangent type T is Scalar (one direction) or Vec<Scalar, K> (K directions in one sweep).
#pragma once

#include "engine/small_vec.h"

namespace phydream {

/// The integration schemes every model can be stepped with.
enum class Integrator : int {
  euler = 0,                // the seed's explicit Euler: q' = q + h qd, qd' = qd + h a(q, qd, u)
  semi_implicit_euler = 1,  // symplectic Euler: qd' = qd + h a(q, qd, u), q' = q + h qd'
  rk4 = 2,                  // classic fourth-order Runge-Kutta on x' = f(x, u)
};

namespace detail {

// f(x, u) = [qd, a(q, qd, u)], the first-order form used by rk4
template <class Model, class S = typename Model::scalar_type>
PHYDREAM_HD void rhs(const typename Model::Params& p, const S* x, const S* u, S* k) {
  constexpr int nq = Model::nq;
  for (int i = 0; i < nq; ++i) k[i] = x[nq + i];
  Model::accel(p, x, x + nq, u, k + nq);
}

template <class Model, class T, class S = typename Model::scalar_type>
PHYDREAM_HD void rhs_jvp(const typename Model::Params& p, const S* x, const S* u, const T* dx,
                         const T* du, S* k, T* dk) {
  constexpr int nq = Model::nq;
  for (int i = 0; i < nq; ++i) {
    k[i] = x[nq + i];
    dk[i] = dx[nq + i];
  }
  Model::accel_jvp(p, x, x + nq, u, dx, dx + nq, du, k + nq, dk + nq);
}

template <class Model, class T, class S = typename Model::scalar_type>
PHYDREAM_HD void rhs_vjp(const typename Model::Params& p, const S* x, const S* u, T* gx, T* gu,
                         const T* gk) {
  constexpr int nq = Model::nq;
  for (int i = 0; i < nq; ++i) gx[nq + i] += gk[i];
  Model::accel_vjp(p, x, x + nq, u, gx, gx + nq, gu, gk + nq);
}

}  // namespace detail

// =============================================================================================
// explicit Euler (the seed's scheme, section 3.1.1)

template <class Model, class S = typename Model::scalar_type>
PHYDREAM_HD void euler_step(const typename Model::Params& p, S h, const S* x, const S* u, S* xn) {
  constexpr int nq = Model::nq;
  S a[nq];
  Model::accel(p, x, x + nq, u, a);
  for (int i = 0; i < nq; ++i) {
    xn[i] = x[i] + h * x[nq + i];
    xn[nq + i] = x[nq + i] + h * a[i];
  }
}

template <class Model, class T, class S = typename Model::scalar_type>
PHYDREAM_HD void euler_step_jvp(const typename Model::Params& p, S h, const S* x, const S* u,
                                const T* dx, const T* du, S* xn, T* dxn) {
  constexpr int nq = Model::nq;
  S a[nq];
  T da[nq];
  Model::accel_jvp(p, x, x + nq, u, dx, dx + nq, du, a, da);
  for (int i = 0; i < nq; ++i) {
    xn[i] = x[i] + h * x[nq + i];
    xn[nq + i] = x[nq + i] + h * a[i];
    dxn[i] = dx[i] + h * dx[nq + i];
    dxn[nq + i] = dx[nq + i] + h * da[i];
  }
}

template <class Model, class T, class S = typename Model::scalar_type>
PHYDREAM_HD void euler_step_vjp(const typename Model::Params& p, S h, const S* x, const S* u,
                                T* gx, T* gu, const T* gxn) {
  constexpr int nq = Model::nq;
  T ga[nq];
  for (int i = 0; i < nq; ++i) {
    gx[i] += gxn[i];
    gx[nq + i] += h * gxn[i] + gxn[nq + i];
    ga[i] = h * gxn[nq + i];
  }
  Model::accel_vjp(p, x, x + nq, u, gx, gx + nq, gu, ga);
}

// =============================================================================================
// semi-implicit (symplectic) Euler: velocity first, then position with the new velocity

template <class Model, class S = typename Model::scalar_type>
PHYDREAM_HD void semi_implicit_euler_step(const typename Model::Params& p, S h, const S* x,
                                          const S* u, S* xn) {
  constexpr int nq = Model::nq;
  S a[nq];
  Model::accel(p, x, x + nq, u, a);
  for (int i = 0; i < nq; ++i) {
    xn[nq + i] = x[nq + i] + h * a[i];
    xn[i] = x[i] + h * xn[nq + i];
  }
}

template <class Model, class T, class S = typename Model::scalar_type>
PHYDREAM_HD void semi_implicit_euler_step_jvp(const typename Model::Params& p, S h, const S* x,
                                              const S* u, const T* dx, const T* du, S* xn,
                                              T* dxn) {
  constexpr int nq = Model::nq;
  S a[nq];
  T da[nq];
  Model::accel_jvp(p, x, x + nq, u, dx, dx + nq, du, a, da);
  for (int i = 0; i < nq; ++i) {
    xn[nq + i] = x[nq + i] + h * a[i];
    xn[i] = x[i] + h * xn[nq + i];
    dxn[nq + i] = dx[nq + i] + h * da[i];
    dxn[i] = dx[i] + h * dxn[nq + i];
  }
}

template <class Model, class T, class S = typename Model::scalar_type>
PHYDREAM_HD void semi_implicit_euler_step_vjp(const typename Model::Params& p, S h, const S* x,
                                              const S* u, T* gx, T* gu, const T* gxn) {
  constexpr int nq = Model::nq;
  T ga[nq];
  for (int i = 0; i < nq; ++i) {
    // qd' feeds q' = q + h qd' as well as the output directly
    const T gqd_new = gxn[nq + i] + h * gxn[i];
    gx[i] += gxn[i];
    gx[nq + i] += gqd_new;
    ga[i] = h * gqd_new;
  }
  Model::accel_vjp(p, x, x + nq, u, gx, gx + nq, gu, ga);
}

// =============================================================================================
// classic RK4 on x' = f(x, u) with u held over the step

template <class Model, class S = typename Model::scalar_type>
PHYDREAM_HD void rk4_step(const typename Model::Params& p, S h, const S* x, const S* u, S* xn) {
  constexpr int nx = Model::nx;
  S k[nx], xs[nx], acc[nx];
  detail::rhs<Model>(p, x, u, k);  // k1
  for (int i = 0; i < nx; ++i) {
    acc[i] = k[i];
    xs[i] = x[i] + S(0.5) * h * k[i];
  }
  detail::rhs<Model>(p, xs, u, k);  // k2
  for (int i = 0; i < nx; ++i) {
    acc[i] += S(2) * k[i];
    xs[i] = x[i] + S(0.5) * h * k[i];
  }
  detail::rhs<Model>(p, xs, u, k);  // k3
  for (int i = 0; i < nx; ++i) {
    acc[i] += S(2) * k[i];
    xs[i] = x[i] + h * k[i];
  }
  detail::rhs<Model>(p, xs, u, k);  // k4
  for (int i = 0; i < nx; ++i) xn[i] = x[i] + h / S(6) * (acc[i] + k[i]);
}

template <class Model, class T, class S = typename Model::scalar_type>
PHYDREAM_HD void rk4_step_jvp(const typename Model::Params& p, S h, const S* x, const S* u,
                              const T* dx, const T* du, S* xn, T* dxn) {
  constexpr int nx = Model::nx;
  S k[nx], xs[nx], acc[nx];
  T dk[nx], dxs[nx], dacc[nx];
  detail::rhs_jvp<Model>(p, x, u, dx, du, k, dk);  // k1
  for (int i = 0; i < nx; ++i) {
    acc[i] = k[i];
    dacc[i] = dk[i];
    xs[i] = x[i] + S(0.5) * h * k[i];
    dxs[i] = dx[i] + (S(0.5) * h) * dk[i];
  }
  detail::rhs_jvp<Model>(p, xs, u, dxs, du, k, dk);  // k2
  for (int i = 0; i < nx; ++i) {
    acc[i] += S(2) * k[i];
    dacc[i] += S(2) * dk[i];
    xs[i] = x[i] + S(0.5) * h * k[i];
    dxs[i] = dx[i] + (S(0.5) * h) * dk[i];
  }
  detail::rhs_jvp<Model>(p, xs, u, dxs, du, k, dk);  // k3
  for (int i = 0; i < nx; ++i) {
    acc[i] += S(2) * k[i];
    dacc[i] += S(2) * dk[i];
    xs[i] = x[i] + h * k[i];
    dxs[i] = dx[i] + h * dk[i];
  }
  detail::rhs_jvp<Model>(p, xs, u, dxs, du, k, dk);  // k4
  for (int i = 0; i < nx; ++i) {
    xn[i] = x[i] + h / S(6) * (acc[i] + k[i]);
    dxn[i] = dx[i] + (h / S(6)) * (dacc[i] + dk[i]);
  }
}

template <class Model, class T, class S = typename Model::scalar_type>
PHYDREAM_HD void rk4_step_vjp(const typename Model::Params& p, S h, const S* x, const S* u, T* gx,
                              T* gu, const T* gxn) {
  constexpr int nx = Model::nx;
  // recompute the stage states x2, x3, x4 (the primal of the forward sweep)
  S k[nx], x2[nx], x3[nx], x4[nx];
  detail::rhs<Model>(p, x, u, k);
  for (int i = 0; i < nx; ++i) x2[i] = x[i] + S(0.5) * h * k[i];
  detail::rhs<Model>(p, x2, u, k);
  for (int i = 0; i < nx; ++i) x3[i] = x[i] + S(0.5) * h * k[i];
  detail::rhs<Model>(p, x3, u, k);
  for (int i = 0; i < nx; ++i) x4[i] = x[i] + h * k[i];

  // xn = x + h/6 (k1 + 2 k2 + 2 k3 + k4)
  T gk[nx], gs[nx];
  for (int i = 0; i < nx; ++i) {
    gx[i] += gxn[i];
    gk[i] = (h / S(6)) * gxn[i];  // cotangent of k4
    gs[i] = tangent_zero<T>();
  }
  // k4 = f(x4), x4 = x + h k3
  detail::rhs_vjp<Model>(p, x4, u, gs, gu, gk);
  for (int i = 0; i < nx; ++i) {
    gx[i] += gs[i];
    gk[i] = (h / S(3)) * gxn[i] + h * gs[i];  // cotangent of k3
    gs[i] = tangent_zero<T>();
  }
  // k3 = f(x3), x3 = x + h/2 k2
  detail::rhs_vjp<Model>(p, x3, u, gs, gu, gk);
  for (int i = 0; i < nx; ++i) {
    gx[i] += gs[i];
    gk[i] = (h / S(3)) * gxn[i] + (S(0.5) * h) * gs[i];  // cotangent of k2
    gs[i] = tangent_zero<T>();
  }
  // k2 = f(x2), x2 = x + h/2 k1
  detail::rhs_vjp<Model>(p, x2, u, gs, gu, gk);
  for (int i = 0; i < nx; ++i) {
    gx[i] += gs[i];
    gk[i] = (h / S(6)) * gxn[i] + (S(0.5) * h) * gs[i];  // cotangent of k1
  }
  // k1 = f(x)
  detail::rhs_vjp<Model>(p, x, u, gx, gu, gk);
}

}  // namespace phydream
