// One environment's step x' = step(x, u), its derivatives and its full Jacobians.
//
// Everything here works on one environment with fixed-size arrays; the CPU backend loops it over
// the batch with threads and the CUDA kernels run it one environment per thread. The integrator is
// a template parameter so each kernel is specialised; backends dispatch the runtime choice once
// per call, outside the loop.
#pragma once

#include "engine/integrator.h"
#include "engine/small_vec.h"

namespace phydream {

/// x' = step(x, u). x: (nx), u: (nu), xn: (nx) written; xn must not alias x.
template <Integrator I, class Model, class S = typename Model::scalar_type>
PHYDREAM_HD void step(const typename Model::Params& p, S h, const S* x, const S* u, S* xn) {
  if constexpr (I == Integrator::euler) {
    euler_step<Model>(p, h, x, u, xn);
  } else if constexpr (I == Integrator::semi_implicit_euler) {
    semi_implicit_euler_step<Model>(p, h, x, u, xn);
  } else {
    rk4_step<Model>(p, h, x, u, xn);
  }
}

/// Forward mode: dxn = dx'/dx dx + dx'/du du, and the primal xn. Overwrites xn and dxn.
template <Integrator I, class Model, class T, class S = typename Model::scalar_type>
PHYDREAM_HD void step_jvp(const typename Model::Params& p, S h, const S* x, const S* u,
                          const T* dx, const T* du, S* xn, T* dxn) {
  if constexpr (I == Integrator::euler) {
    euler_step_jvp<Model>(p, h, x, u, dx, du, xn, dxn);
  } else if constexpr (I == Integrator::semi_implicit_euler) {
    semi_implicit_euler_step_jvp<Model>(p, h, x, u, dx, du, xn, dxn);
  } else {
    rk4_step_jvp<Model>(p, h, x, u, dx, du, xn, dxn);
  }
}

/// Reverse mode: gx += (dx'/dx)^T gxn, gu += (dx'/du)^T gxn. Accumulates into gx and gu.
template <Integrator I, class Model, class T, class S = typename Model::scalar_type>
PHYDREAM_HD void step_vjp(const typename Model::Params& p, S h, const S* x, const S* u, T* gx,
                          T* gu, const T* gxn) {
  if constexpr (I == Integrator::euler) {
    euler_step_vjp<Model>(p, h, x, u, gx, gu, gxn);
  } else if constexpr (I == Integrator::semi_implicit_euler) {
    semi_implicit_euler_step_vjp<Model>(p, h, x, u, gx, gu, gxn);
  } else {
    rk4_step_vjp<Model>(p, h, x, u, gx, gu, gxn);
  }
}

/// Full Jacobians by one forward sweep carrying nx + nu directions.
/// xn: (nx), jac_x: (nx, nx) with jac_x[i nx + j] = dx'_i/dx_j, jac_u: (nx, nu); all overwritten.
template <Integrator I, class Model, class S = typename Model::scalar_type>
PHYDREAM_HD void jacobian_fwd(const typename Model::Params& p, S h, const S* x, const S* u, S* xn,
                              S* jac_x, S* jac_u) {
  constexpr int nx = Model::nx, nu = Model::nu, K = nx + nu;
  using T = Vec<S, K>;
  T dx[nx], du[nu], dxn[nx];
  for (int j = 0; j < nx; ++j) dx[j] = T::unit(j);
  for (int j = 0; j < nu; ++j) du[j] = T::unit(nx + j);
  step_jvp<I, Model>(p, h, x, u, dx, du, xn, dxn);
  for (int i = 0; i < nx; ++i) {
    for (int j = 0; j < nx; ++j) jac_x[i * nx + j] = dxn[i][j];
    for (int j = 0; j < nu; ++j) jac_u[i * nu + j] = dxn[i][nx + j];
  }
}

/// Full Jacobians by one reverse sweep carrying nx cotangents (the rows). Same layout as
/// jacobian_fwd; xn (nx) is written too when not null.
template <Integrator I, class Model, class S = typename Model::scalar_type>
PHYDREAM_HD void jacobian_rev(const typename Model::Params& p, S h, const S* x, const S* u, S* xn,
                              S* jac_x, S* jac_u) {
  constexpr int nx = Model::nx, nu = Model::nu;
  using T = Vec<S, nx>;
  T gxn[nx], gx[nx], gu[nu];
  for (int i = 0; i < nx; ++i) {
    gxn[i] = T::unit(i);
    gx[i] = T::zero();
  }
  for (int j = 0; j < nu; ++j) gu[j] = T::zero();
  step_vjp<I, Model>(p, h, x, u, gx, gu, gxn);
  // gx[j][i] = d x'_i / d x_j: the cotangent of input j in sweep i
  for (int i = 0; i < nx; ++i) {
    for (int j = 0; j < nx; ++j) jac_x[i * nx + j] = gx[j][i];
    for (int j = 0; j < nu; ++j) jac_u[i * nu + j] = gu[j][i];
  }
  if (xn != nullptr) step<I, Model>(p, h, x, u, xn);
}

/// Column `col` of [dx'/dx | dx'/du] by central differences: col < nx perturbs x[col], otherwise
/// u[col - nx]. The step is eps * max(1, |v|) and the divisor is the difference actually
/// represented, (v + h) - (v - h), so rounding of the perturbed input does not bias the slope.
/// out: (nx) written.
template <Integrator I, class Model, class S = typename Model::scalar_type>
PHYDREAM_HD void jacobian_fd_column(const typename Model::Params& p, S h, const S* x, const S* u,
                                    int col, S eps, S* out) {
  constexpr int nx = Model::nx, nu = Model::nu;
  S xp[nx], up[nu], yp[nx], ym[nx];
  for (int i = 0; i < nx; ++i) xp[i] = x[i];
  for (int i = 0; i < nu; ++i) up[i] = u[i];
  S* v = col < nx ? &xp[col] : &up[col - nx];
  const S v0 = *v;
  const S step_size = eps * (abs_(v0) > S(1) ? abs_(v0) : S(1));
  const S v_plus = v0 + step_size, v_minus = v0 - step_size;
  *v = v_plus;
  step<I, Model>(p, h, xp, up, yp);
  *v = v_minus;
  step<I, Model>(p, h, xp, up, ym);
  const S inv_width = S(1) / (v_plus - v_minus);
  for (int i = 0; i < nx; ++i) out[i] = (yp[i] - ym[i]) * inv_width;
}

}  // namespace phydream
