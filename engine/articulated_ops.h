// The per-environment operations of the articulated backends, host and device: one call of the
// Simulator API for one environment, over that environment's rows of the batch arrays. The CPU
// engine (engine/articulated_engine.h) loops them over OpenMP threads, the CUDA engine
// (kernels/articulated.cu) over a grid; both run exactly this code.
//
// Rows: x = [qpos (nq), qvel (nv)], u = ctrl (nu), tangents and cotangents dx = [dqpos (nv),
// dqvel (nv)] (engine/articulated_jacobian.h), Jacobians (2nv x 2nv) and (2nv x nu) row-major.
//
// Gradient modes (ModelView::grad_mode, GradMode in engine/model_view.h), per engine:
//   ift       every call as written in step_jvp.h / step_vjp.h (the constraint solve by the
//             implicit function theorem in both directions)
//   unrolled  forward mode through the solver's iterations (engine/constraint_unrolled.h):
//             JVPs and Jacobians by forward sweeps; a VJP, whose reverse sweep the solver's
//             iterations do not have, is the transposed forward Jacobian of the step applied to
//             the cotangent (the same linear map, at 2nv + nu directions' cost)
//   fd        central differences of the whole step: Jacobians by articulated_jacobian_fd, a JVP
//             by one central difference along the direction, a VJP by the transposed Jacobian
// Rollout VJPs run the per-step VJP of the mode backwards along the trajectory.
//
// Workspaces, the caller's (one pair per thread, reused from environment to environment):
//   ws   articulated_workspace_sizes(m).scalars Scalars: a Data, the VJP's primal record, the
//        stage force derivatives, three states and a control for finite differences, and for
//        the unrolled and fd modes a step Jacobian and two cotangents, then with the
//        time-of-impact correction (engine/toi.h) its scratch
//   tws  articulated_workspace_sizes(m).tangents entries of Vec<S, kArticulatedChunk>; the
//        one-direction calls (JVP, VJP, rollout VJP) view the same memory as Vec<S, 1>
#pragma once

#include "engine/articulated_jacobian.h"
#include "engine/core.h"
#include "engine/simulator.h"
#include "engine/data.h"
#include "engine/forward.h"
#include "engine/model.h"
#include "engine/model_view.h"
#include "engine/small_vec.h"
#include "engine/step_jvp.h"
#include "engine/step_vjp.h"
#include "engine/toi.h"

namespace phydream {

/// Directions (Jacobian columns) or cotangents (rows) per sweep of the Jacobian calls: a multiple
/// of the SIMD width, and 2nv + nu of the benchmark models is covered in 1 to 3 sweeps.
constexpr int kArticulatedChunk = 8;

struct ArticulatedWorkspaceSizes {
  long long scalars = 0;   // Scalars per environment slot
  long long tangents = 0;  // Vec<S, kArticulatedChunk> entries per environment slot
};

/// Whether a VJP of the model goes through its full Jacobian (unrolled solver with constraint
/// rows possible, or central differences), not through a reverse sweep.
template <class S>
PHYDREAM_HD bool vjp_by_jacobian(const ModelView<S>& m) {
  return m.grad_mode == static_cast<int>(GradMode::fd) ||
         (m.grad_mode == static_cast<int>(GradMode::unrolled) && m.nefc_max > 0);
}

namespace articulated_detail {
// Scalars of ws before the finite-difference states, and the Jacobian-VJP scratch after them
template <class S>
PHYDREAM_HD long long fd_scratch_offset(const ModelView<S>& m) {
  return jacobian_scalar_size(m);
}
template <class S>
PHYDREAM_HD long long jacobian_vjp_offset(const ModelView<S>& m) {
  return jacobian_scalar_size(m) + 3LL * (m.nq + m.nv) + m.nu;
}
// the time-of-impact correction's scratch (engine/toi.h), after the Jacobian-VJP scratch
template <class S>
PHYDREAM_HD long long toi_offset(const ModelView<S>& m) {
  const long long ndx = 2LL * m.nv;
  return jacobian_vjp_offset(m) + (vjp_by_jacobian(m) ? ndx * (ndx + m.nu) + 3 * ndx + m.nu : 0);
}
}  // namespace articulated_detail

template <class S>
PHYDREAM_HD ArticulatedWorkspaceSizes articulated_workspace_sizes(const ModelView<S>& m) {
  ArticulatedWorkspaceSizes s;
  // the Jacobian-VJP scratch: A (ndx x ndx), B (ndx x nu), the cotangent (ndx), and a rollout
  // step's cotangents in and out (ndx, ndx, nu); then the time-of-impact correction's
  s.scalars = articulated_detail::toi_offset(m) + (m.toi_correction ? toi_scratch_size(m) : 0);
  s.tangents = jacobian_tangent_size(m);
  return s;
}

/// Starts recording the constraint solver's outcome of the environment about to run in ws.
template <class S>
PHYDREAM_HD void reset_solver_outcome(const ModelView<S>& m, S* ws) {
  ws[data_layout(m).solver_worst] = S(0);
}

/// The SolveFlag (engine/simulator.h) of the environment that ran in ws since
/// reset_solver_outcome: the worst solve of every forward() it made.
template <class S>
PHYDREAM_HD std::uint8_t solver_outcome(const ModelView<S>& m, const S* ws) {
  const S worst = ws[data_layout(m).solver_worst];
  if (!(worst < S(kSolverNonfinite))) return static_cast<std::uint8_t>(SolveFlag::nonfinite);
  if (worst >= S(kSolverMaxIter)) return static_cast<std::uint8_t>(SolveFlag::iteration_cap);
  return static_cast<std::uint8_t>(SolveFlag::ok);
}

/// The relative step of the fd mode's differences: 1e-6 in double, 1e-3 in float.
template <class S>
PHYDREAM_HD S default_fd_eps() {
  return sizeof(S) == 4 ? S(1e-3) : S(1e-6);
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

/// x_next and the central difference along (dx, du), in tangent coordinates:
///   dx_next = (step(x (+) s dx, u + s du) (-) step(x (-) s dx, u - s du)) / 2s,
/// s = eps max(1, |x|_inf, |u|_inf) / max(|dx|_inf, |du|_inf), eps = default_fd_eps.
template <class S>
PHYDREAM_HD void articulated_jvp_fd(const ModelView<S>& m, S* ws, const S* x, const S* u, const S* dx,
                                    const S* du, S* x_next, S* dx_next) {
  const int nq = m.nq, nv = m.nv, nu = m.nu, nx = nq + nv;
  S* xs = ws + articulated_detail::fd_scratch_offset(m);  // perturbed state (nx)
  S* yp = xs + nx;                                         // next state of the + side (nx)
  S* ym = yp + nx;                                         // next state of the - side (nx)
  S* us = ym + nx;                                         // perturbed control (nu)
  S size = S(1), dir = S(0);
  for (int i = 0; i < nx; ++i) size = abs_(x[i]) > size ? abs_(x[i]) : size;
  for (int i = 0; i < nu; ++i) size = abs_(u[i]) > size ? abs_(u[i]) : size;
  for (int i = 0; i < 2 * nv; ++i) dir = abs_(dx[i]) > dir ? abs_(dx[i]) : dir;
  for (int i = 0; i < nu; ++i) dir = abs_(du[i]) > dir ? abs_(du[i]) : dir;
  if (dir == S(0)) {
    articulated_step(m, ws, x, u, x_next);
    for (int i = 0; i < 2 * nv; ++i) dx_next[i] = S(0);
    return;
  }
  const S s = default_fd_eps<S>() * size / dir;
  for (int sign = 1; sign >= -1; sign -= 2) {
    for (int i = 0; i < nx; ++i) xs[i] = x[i];
    for (int i = 0; i < nv; ++i) {
      dx_next[i] = S(sign) * s * dx[i];  // scratch for the position step
      xs[nq + i] = x[nq + i] + S(sign) * s * dx[nv + i];
    }
    integrate_pos(m, xs, dx_next, S(1));
    for (int i = 0; i < nu; ++i) us[i] = u[i] + S(sign) * s * du[i];
    articulated_step(m, ws, xs, us, sign > 0 ? yp : ym);
  }
  differentiate_pos(m, dx_next, ym, yp, S(1));
  const S inv = S(1) / (S(2) * s);
  for (int i = 0; i < nv; ++i) {
    dx_next[i] *= inv;
    dx_next[nv + i] = (yp[nq + i] - ym[nq + i]) * inv;
  }
  articulated_step(m, ws, x, u, x_next);
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
  if (m.grad_mode == static_cast<int>(GradMode::fd)) {
    articulated_jvp_fd(m, ws, x, u, dx, du, x_next, dx_next);
    return;
  }
  for (int i = 0; i < 2 * nv; ++i) seed[i][0] = dx[i];
  for (int i = 0; i < nu; ++i) seed[2 * nv + i][0] = du[i];
  articulated_detail::load_state(m, d, x, u);
  step_jvp<S, 1>(m, d, t, seed, seed + nv, seed + 2 * nv, out, out + nv);
  articulated_detail::save_state(m, d, x_next);
  for (int i = 0; i < 2 * nv; ++i) dx_next[i] = out[i][0];
}

template <class S, int KW>
PHYDREAM_HD void articulated_vjp_by_jacobian(const ModelView<S>& m, S* ws, Vec<S, KW>* tws, const S* x,
                                             const S* u, S* gx, S* gu, const S* g_next);

/// gx += A^T g_next, gu += B^T g_next (one cotangent). gx, g_next: (2nv), gu: (nu).
template <class S, int KW>
PHYDREAM_HD void articulated_vjp(const ModelView<S>& m, S* ws, Vec<S, KW>* tws, const S* x,
                                 const S* u, S* gx, S* gu, const S* g_next) {
  if (vjp_by_jacobian(m)) {
    articulated_vjp_by_jacobian(m, ws, tws, x, u, gx, gu, g_next);
    return;
  }
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

/// The route a Jacobian request takes: the closed-form derivatives (analytic) differentiate the
/// constraint solve by the implicit function theorem (step_jacobian), so every request of the
/// unrolled mode on a model that can make constraint rows (nefc_max > 0) takes the forward
/// sweeps instead (its solver has forward mode only, engine/constraint_unrolled.h).
template <class S>
PHYDREAM_HD JacobianMode articulated_jacobian_route(const ModelView<S>& m, JacobianMode mode) {
  if (m.nefc_max > 0 && m.grad_mode == static_cast<int>(GradMode::unrolled)) return JacobianMode::forward;
  return mode;
}

/// Full Jacobians as the model's grad_mode and the requested sweep direction give them:
/// central differences in the fd mode, else the route's sweeps; x_next when not null.
template <class S, int KW>
PHYDREAM_HD void articulated_jacobian(const ModelView<S>& m, S* ws, Vec<S, KW>* tws, const S* x, const S* u,
                                      S* x_next, S* jac_x, S* jac_u, JacobianMode mode) {
  if (m.grad_mode == static_cast<int>(GradMode::fd)) {
    articulated_jacobian_fd(m, ws, x, u, default_fd_eps<S>(), jac_x, jac_u);
    if (x_next != nullptr) articulated_step(m, ws, x, u, x_next);
    return;
  }
  mode = articulated_jacobian_route(m, mode);
  if (mode == JacobianMode::forward) {
    step_jacobian_jvp<S, KW>(m, ws, tws, x, u, x_next, jac_x, jac_u);
  } else if (mode == JacobianMode::analytic) {
    step_jacobian<S, KW>(m, ws, tws, x, u, x_next, jac_x, jac_u);
  } else {
    step_jacobian_vjp<S, KW>(m, ws, tws, x, u, x_next, jac_x, jac_u);
  }
}

/// articulated_jacobian with JacobianMode::forward (which every grad_mode routes to the forward
/// sweeps or, in the fd mode, to central differences), without the other routes' code, which the
/// VJP kernels that inline it would otherwise carry.
template <class S, int KW>
PHYDREAM_HD void articulated_jacobian_forward(const ModelView<S>& m, S* ws, Vec<S, KW>* tws, const S* x,
                                              const S* u, S* x_next, S* jac_x, S* jac_u) {
  if (m.grad_mode == static_cast<int>(GradMode::fd)) {
    articulated_jacobian_fd(m, ws, x, u, default_fd_eps<S>(), jac_x, jac_u);
    if (x_next != nullptr) articulated_step(m, ws, x, u, x_next);
    return;
  }
  step_jacobian_jvp<S, KW>(m, ws, tws, x, u, x_next, jac_x, jac_u);
}

/// gx += A^T g_next, gu += B^T g_next with A, B from articulated_jacobian_forward (the unrolled
/// and fd modes' VJP). g_next is copied first: it may live in memory the Jacobian overwrites.
template <class S, int KW>
PHYDREAM_HD void articulated_vjp_by_jacobian(const ModelView<S>& m, S* ws, Vec<S, KW>* tws, const S* x,
                                             const S* u, S* gx, S* gu, const S* g_next) {
  const int ndx = 2 * m.nv, nu = m.nu;
  S* A = ws + articulated_detail::jacobian_vjp_offset(m);
  S* B = A + ndx * ndx;
  S* g = B + ndx * nu;
  for (int i = 0; i < ndx; ++i) g[i] = g_next[i];
  articulated_jacobian_forward(m, ws, tws, x, u, static_cast<S*>(nullptr), A, B);
  for (int i = 0; i < ndx; ++i) {
    const S gi = g[i];
    if (gi == S(0)) continue;
    for (int j = 0; j < ndx; ++j) gx[j] += A[i * ndx + j] * gi;
    for (int j = 0; j < nu; ++j) gu[j] += B[i * nu + j] * gi;
  }
}

namespace articulated_detail {
// the per-step VJP of a rollout's reverse sweep in the unrolled and fd modes: the step's full
// Jacobian transposed (articulated_vjp_by_jacobian), through scalar copies of the cotangents
// (the Jacobian's sweeps reuse the tangent workspace that holds them)
template <class S, int KW>
struct JacobianStepVjp {
  const ModelView<S>& m;
  S* ws;
  Vec<S, KW>* tws;
  PHYDREAM_HD void operator()(const S* x, const S* u, const Vec<S, 1>* g_next, Vec<S, 1>* g_x,
                              Vec<S, 1>* g_u) const {
    const int ndx = 2 * m.nv, nu = m.nu;
    S* gin = ws + jacobian_vjp_offset(m) + ndx * (ndx + nu) + ndx;  // after A, B and g
    S* gx = gin + ndx;
    S* gu = gx + ndx;
    for (int i = 0; i < ndx; ++i) {
      gin[i] = g_next[i][0];
      gx[i] = S(0);
    }
    for (int i = 0; i < nu; ++i) gu[i] = S(0);
    articulated_vjp_by_jacobian(m, ws, tws, x, u, gx, gu, gin);
    // the caller zeroed g_x, g_u, but the Jacobian's sweeps have overwritten them since
    for (int i = 0; i < ndx; ++i) g_x[i][0] = gx[i];
    for (int i = 0; i < nu; ++i) g_u[i][0] = gu[i];
  }
};
}  // namespace articulated_detail

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
  if (m.toi_correction) {
    ModelView<S> flight = m;  // the step without contact: the flight around an impact
    flight.disableflags |= kDisableContact;
    S* scratch = ws + articulated_detail::toi_offset(m);
    Vec<S, 1>* t1 = reinterpret_cast<Vec<S, 1>*>(tws);
    if (vjp_by_jacobian(m)) {
      model_rollout_vjp_toi(m, ws, t1, states, actions, horizon, gx0, g_actions, g_states, g_final,
                            articulated_detail::JacobianStepVjp<S, KW>{m, ws, tws},
                            articulated_detail::JacobianStepVjp<S, KW>{flight, ws, tws}, scratch);
    } else {
      model_rollout_vjp_toi(m, ws, t1, states, actions, horizon, gx0, g_actions, g_states, g_final,
                            articulated_detail::SweepStepVjp<S>{m, ws, t1},
                            articulated_detail::SweepStepVjp<S>{flight, ws, t1}, scratch);
    }
    return;
  }
  if (vjp_by_jacobian(m)) {
    const articulated_detail::JacobianStepVjp<S, KW> step{m, ws, tws};
    model_rollout_vjp(m, ws, reinterpret_cast<Vec<S, 1>*>(tws), states, actions, horizon, gx0, g_actions,
                      g_states, g_final, step);
    return;
  }
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
  if (vjp_by_jacobian(m)) {
    const articulated_detail::JacobianStepVjp<S, KW> step{m, ws, tws};
    model_rollout_vjp_checkpointed(m, ws, reinterpret_cast<Vec<S, 1>*>(tws), x0, actions, horizon, interval,
                                   checkpoints, gx0, g_actions, g_states, g_final, step);
    return;
  }
  model_rollout_vjp_checkpointed(m, ws, reinterpret_cast<Vec<S, 1>*>(tws), x0, actions, horizon,
                                 interval, checkpoints, gx0, g_actions, g_states, g_final);
}

}  // namespace phydream
