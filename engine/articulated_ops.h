// The per-environment operations of the articulated backends, host and device: one call of the
// Simulator API for one environment, over that environment's rows of the batch arrays. The CPU
// engine (engine/articulated_engine.h) loops them over OpenMP threads, the CUDA engine
// (kernels/articulated.cu) over a grid; both run exactly this code.
//
// Rows: x = [qpos (nq), qvel (nv)], u = ctrl (nu), tangents and cotangents dx = [dqpos (nv),
// dqvel (nv)] (engine/articulated_jacobian.h), Jacobians (2nv x 2nv) and (2nv x nu) row-major.
//
// Workspaces, the caller's (one pair per thread, reused from environment to environment):
//   ws   articulated_workspace_sizes(m).scalars Scalars: a Data, the VJP's primal record, the
//        stage force derivatives, and three states and a control for finite differences
//   tws  articulated_workspace_sizes(m).tangents entries of Vec<S, kArticulatedChunk>; the
//        one-direction calls (JVP, VJP, rollout VJP) view the same memory as Vec<S, 1>
#pragma once

#include "engine/articulated_jacobian.h"
#include "engine/core.h"
#include "engine/data.h"
#include "engine/forward.h"
#include "engine/model.h"
#include "engine/model_view.h"
#include "engine/small_vec.h"
#include "engine/step_jvp.h"
#include "engine/step_vjp.h"

namespace phydream {

/// Directions (Jacobian columns) or cotangents (rows) per sweep of the Jacobian calls: a multiple
/// of the SIMD width, and 2nv + nu of the benchmark models is covered in 1 to 3 sweeps.
constexpr int kArticulatedChunk = 8;

struct ArticulatedWorkspaceSizes {
  long long scalars = 0;   // Scalars per environment slot
  long long tangents = 0;  // Vec<S, kArticulatedChunk> entries per environment slot
};

template <class S>
PHYDREAM_HD ArticulatedWorkspaceSizes articulated_workspace_sizes(const ModelView<S>& m) {
  ArticulatedWorkspaceSizes s;
  s.scalars = jacobian_scalar_size(m) + 3LL * (m.nq + m.nv) + m.nu;
  s.tangents = jacobian_tangent_size(m);
  return s;
}

/// Checkpoint Scalars of one environment's rollout VJP with re-simulation.
template <class S>
PHYDREAM_HD long long articulated_checkpoint_scalars(const ModelView<S>& m, long long horizon,
                                                     long long interval) {
  return rollout_checkpoint_size(m, horizon, interval);
}

/// x_next = step(x, u).
template <class S>
PHYDREAM_HD void articulated_step(const ModelView<S>& m, S* ws, const S* x, const S* u, S* x_next) {
  const Data<S> d = data_at(data_layout(m), ws);
  articulated_detail::load_state(m, d, x, u);
  step(m, d);
  articulated_detail::save_state(m, d, x_next);
}

/// x_next and dx_next = A dx + B du (one direction). dx, dx_next: (2nv), du: (nu).
template <class S, int KW>
PHYDREAM_HD void articulated_jvp(const ModelView<S>& m, S* ws, Vec<S, KW>* tws, const S* x,
                                 const S* u, const S* dx, const S* du, S* x_next, S* dx_next) {
  using T = Vec<S, 1>;
  const int nv = m.nv, nu = m.nu;
  const DataLayout layout = data_layout(m);
  const Data<S> d = data_at(layout, ws);
  T* t1 = reinterpret_cast<T*>(tws);
  const Data<T> t = data_at(layout, t1);
  T* seed = t1 + layout.size;  // dqpos, dqvel (2nv), dctrl (nu), then the result (2nv)
  T* out = seed + 2 * nv + nu;
  for (int i = 0; i < 2 * nv; ++i) seed[i][0] = dx[i];
  for (int i = 0; i < nu; ++i) seed[2 * nv + i][0] = du[i];
  articulated_detail::load_state(m, d, x, u);
  step_jvp<S, 1>(m, d, t, seed, seed + nv, seed + 2 * nv, out, out + nv);
  articulated_detail::save_state(m, d, x_next);
  for (int i = 0; i < 2 * nv; ++i) dx_next[i] = out[i][0];
}

/// gx += A^T g_next, gu += B^T g_next (one cotangent). gx, g_next: (2nv), gu: (nu).
template <class S, int KW>
PHYDREAM_HD void articulated_vjp(const ModelView<S>& m, S* ws, Vec<S, KW>* tws, const S* x,
                                 const S* u, S* gx, S* gu, const S* g_next) {
  using T = Vec<S, 1>;
  const int nv = m.nv, nu = m.nu;
  const DataLayout layout = data_layout(m);
  const Data<S> d = data_at(layout, ws);
  T* t1 = reinterpret_cast<T*>(tws);
  const Data<T> a = data_at(layout, t1);
  T* gn = t1 + layout.size;  // g_next (2nv), then gx (2nv), gu (nu)
  T* gxs = gn + 2 * nv;
  T* gus = gxs + 2 * nv;
  for (int i = 0; i < 2 * nv; ++i) {
    gn[i][0] = g_next[i];
    gxs[i][0] = gx[i];
  }
  for (int i = 0; i < nu; ++i) gus[i][0] = gu[i];
  articulated_detail::load_state(m, d, x, u);
  step_vjp<S, 1>(m, d, ws + layout.size, a, gn, gn + nv, gxs, gxs + nv, gus);
  for (int i = 0; i < 2 * nv; ++i) gx[i] = gxs[i][0];
  for (int i = 0; i < nu; ++i) gu[i] = gus[i][0];
}

/// Full Jacobians by forward sweeps of kArticulatedChunk directions; x_next when not null.
template <class S>
PHYDREAM_HD void articulated_jacobian_fwd(const ModelView<S>& m, S* ws,
                                          Vec<S, kArticulatedChunk>* tws, const S* x, const S* u,
                                          S* x_next, S* jac_x, S* jac_u) {
  step_jacobian_jvp<S, kArticulatedChunk>(m, ws, tws, x, u, x_next, jac_x, jac_u);
}

/// Full Jacobians by reverse sweeps of kArticulatedChunk cotangents; x_next when not null.
template <class S>
PHYDREAM_HD void articulated_jacobian_rev(const ModelView<S>& m, S* ws,
                                          Vec<S, kArticulatedChunk>* tws, const S* x, const S* u,
                                          S* x_next, S* jac_x, S* jac_u) {
  step_jacobian_vjp<S, kArticulatedChunk>(m, ws, tws, x, u, x_next, jac_x, jac_u);
}

/// Full Jacobians by closed-form derivatives of the inverse dynamics (articulated_jacobian.h's
/// step_jacobian); x_next when not null.
template <class S>
PHYDREAM_HD void articulated_jacobian_analytic(const ModelView<S>& m, S* ws, const S* x,
                                               const S* u, S* x_next, S* jac_x, S* jac_u) {
  step_jacobian<S>(m, ws, x, u, x_next, jac_x, jac_u);
}

/// Full Jacobians by central differences in tangent coordinates, 2 (2nv + nu) steps. A position
/// column perturbs dof k by +-s with integrate_pos, s = eps * max(1, |coordinate|) for hinge,
/// slide and free-joint translation dofs and s = eps for rotation dofs (a rotation vector about
/// the current orientation); the output difference of positions is differentiate_pos. Velocity
/// and control columns use s = eps * max(1, |value|) and divide by the difference represented.
template <class S>
PHYDREAM_HD void articulated_jacobian_fd(const ModelView<S>& m, S* ws, const S* x, const S* u,
                                         S eps, S* jac_x, S* jac_u) {
  const int nq = m.nq, nv = m.nv, nu = m.nu, nx = nq + nv, ndx = 2 * nv;
  S* xs = ws + jacobian_scalar_size(m);  // perturbed state (nx)
  S* yp = xs + nx;                       // next state of the + perturbation (nx)
  S* ym = yp + nx;                       // next state of the - perturbation (nx)
  S* us = ym + nx;                       // perturbed control (nu)
  for (int c = 0; c < ndx + nu; ++c) {
    S width = S(0);
    for (int sign = 1; sign >= -1; sign -= 2) {
      for (int i = 0; i < nx; ++i) xs[i] = x[i];
      for (int i = 0; i < nu; ++i) us[i] = u[i];
      if (c < nv) {
        // the dof's coordinate: hinge and slide have one, free translation three, rotations none
        const int j = m.dof_jntid[c];
        const int type = m.jnt_type[j];
        const int local = c - m.jnt_dofadr[j];
        const bool rotation = type == static_cast<int>(JointType::ball) ||
                              (type == static_cast<int>(JointType::free) && local >= 3);
        const S v0 = rotation ? S(0) : x[m.jnt_qposadr[j] + local];
        const S s = eps * (abs_(v0) > S(1) ? abs_(v0) : S(1));
        // the step as integrate_pos represents it: exact for rotations, rounded for coordinates
        S* dq = ym;  // scratch for the tangent step, consumed before ym is written
        for (int i = 0; i < nv; ++i) dq[i] = S(0);
        dq[c] = sign > 0 ? s : -s;
        integrate_pos(m, xs, dq, S(1));
        if (rotation) {
          width = S(2) * s;
        } else {
          const S moved = xs[m.jnt_qposadr[j] + local];
          width = sign > 0 ? moved : width - moved;
        }
      } else {
        S* v = c < ndx ? &xs[nq + c - nv] : &us[c - ndx];
        const S v0 = *v;
        const S s = eps * (abs_(v0) > S(1) ? abs_(v0) : S(1));
        *v = sign > 0 ? v0 + s : v0 - s;
        width = sign > 0 ? *v : width - *v;
      }
      articulated_step(m, ws, xs, us, sign > 0 ? yp : ym);
    }
    const S inv = S(1) / width;
    // positions: (y+ (-) y-) / width in tangent coordinates; velocities: plain differences
    S* dpos = xs;  // reuse: nv entries
    differentiate_pos(m, dpos, ym, yp, S(1));
    for (int i = 0; i < ndx; ++i) {
      const S dy = i < nv ? dpos[i] : yp[nq + i - nv] - ym[nq + i - nv];
      if (c < ndx) {
        jac_x[i * ndx + c] = dy * inv;
      } else {
        jac_u[i * nu + (c - ndx)] = dy * inv;
      }
    }
  }
}

/// states[0] = x0, states[t + 1] = step(states[t], actions[t]).
template <class S>
PHYDREAM_HD void articulated_rollout(const ModelView<S>& m, S* ws, const S* x0, const S* actions,
                                     long long horizon, S* states) {
  model_rollout(m, ws, x0, actions, horizon, states);
}

/// Rollout VJP from the stored trajectory (engine/articulated_jacobian.h).
template <class S, int KW>
PHYDREAM_HD void articulated_rollout_vjp(const ModelView<S>& m, S* ws, Vec<S, KW>* tws,
                                         const S* states, const S* actions, long long horizon,
                                         S* gx0, S* g_actions, const S* g_states, const S* g_final) {
  model_rollout_vjp(m, ws, reinterpret_cast<Vec<S, 1>*>(tws), states, actions, horizon, gx0,
                    g_actions, g_states, g_final);
}

/// Rollout VJP re-simulated from checkpoints every `interval` steps; checkpoints:
/// articulated_checkpoint_scalars(m, horizon, interval) Scalars.
template <class S, int KW>
PHYDREAM_HD void articulated_rollout_vjp_checkpointed(const ModelView<S>& m, S* ws,
                                                      Vec<S, KW>* tws, const S* x0,
                                                      const S* actions, long long horizon,
                                                      long long interval, S* checkpoints, S* gx0,
                                                      S* g_actions, const S* g_states,
                                                      const S* g_final) {
  model_rollout_vjp_checkpointed(m, ws, reinterpret_cast<Vec<S, 1>*>(tws), x0, actions, horizon,
                                 interval, checkpoints, gx0, g_actions, g_states, g_final);
}

}  // namespace phydream
