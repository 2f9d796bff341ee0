// Full Jacobians of one articulated step, T-step rollouts and their reverse mode, for one
// environment, host and device.
//
// Coordinates are MuJoCo's (mjd_transitionFD): the state x = [qpos (nq), qvel (nv)] is
// differentiated in tangent coordinates dx = [dqpos (nv), dqvel (nv)], where the tangent of a
// ball or free joint's quaternion is the rotation vector in its child frame (engine/step_vjp.h).
//   A = dx'/dx  (2nv x 2nv),  B = dx'/du  (2nv x nu),  both row-major: A[i * 2nv + j] = dx'_i/dx_j.
// Three ways to A and B, which agree to rounding (tests):
//   step_jacobian_jvp  forward sweeps (step_jvp), K columns per sweep, ceil((2nv + nu) / K) sweeps
//   step_jacobian_vjp  reverse sweeps (engine/step_vjp.h). The primal is recorded once, and the
//                      structure of the step is used: every stage's acceleration depends on
//                      (q, v, u) only through the generalized force f - M(q) a, whose derivative
//                      D_s = d(f - M a)/d(q, v, u) (nv x (2nv + nu)) takes ceil(nv / K)
//                      stage_force_vjp sweeps of K unit cotangents (with the constraint stage's
//                      implicit-function-theorem adjoint when the stage made rows); the 2nv rows of [A | B] then follow from the
//                      integrator's reverse sweep (step_sweep) with D_s^T as the force adjoint, K
//                      rows per sweep. The heavy inverse-dynamics sweep carries nv cotangents per
//                      stage instead of 2nv
//   step_jacobian      the analytic path, fastest: D_s in closed form (force_derivative: the
//                      recursive Newton-Euler derivatives, O(nv depth) spatial products, the
//                      nonzero (ancestor/descendant) pairs only) and a dense forward assembly
//                      through the tree-sparse solves (the primal's factor, rows fused two
//                      ancestors at a time) and the integrator, written straight into A and B;
//                      a stage with constraint rows (ift mode) adds the partial P = d(J' f)/dx
//                      (constraints_vjp on unit cotangents, the dofs that support a row only)
//                      and solves with the solver's Hessian factor instead
// Rollouts (model_rollout) and their reverse mode (model_rollout_vjp from the stored trajectory,
// model_rollout_vjp_checkpointed with sqrt(T) checkpoints) follow engine/rollout.h.
//
// Workspaces are the caller's, sized by the functions below, so nothing here allocates: `ws`
// holds Scalars (a Data, the VJP's primal record, the stage force derivatives and the analytic
// path's scratch), `tws` holds tangents Vec<S, K> (a tangent/adjoint Data and the seeds and
// results of one sweep).
#pragma once

#include "engine/core.h"
#include "engine/data.h"
#include "engine/forward.h"
#include "engine/model_view.h"
#include "engine/rollout.h"
#include "engine/small_vec.h"
#include "engine/step_jvp.h"
#include "engine/step_vjp.h"

namespace phydream {

/// Scalars of `ws` for every function of this file: a Data (data_layout(m).size), the VJP's
/// primal record (vjp_scratch_size(m)), the stage force derivatives (stages x nv x (2nv + nu);
/// 1 stage for Euler, 4 for RK4), the analytic derivative's scratch (22 nbody + 45 nv) and the
/// dense assembly's (5 nv (2nv + nu)).
template <class S>
PHYDREAM_HD long long jacobian_scalar_size(const ModelView<S>& m) {
  const long long ncol = 2 * m.nv + m.nu;
  return static_cast<long long>(data_layout(m).size) + vjp_scratch_size(m) +
         (adjoint::stage_count(m) + 5LL) * m.nv * ncol + 22LL * m.nbody + 45LL * m.nv;
}

/// Entries (each a Vec<S, K>, whatever K) of `tws`: a tangent Data (data_layout(m).size), then
/// 4 nv + nu entries of sweep seeds and results.
template <class S>
PHYDREAM_HD long long jacobian_tangent_size(const ModelView<S>& m) {
  return static_cast<long long>(data_layout(m).size) + 4 * m.nv + m.nu;
}

namespace articulated_detail {

// d <- (x, u): qpos, qvel from x = [qpos, qvel], ctrl from u (zero when u is null), time 0 and
// the solver's warm start 0 (as after mj_resetData)
template <class S>
PHYDREAM_HD_STAGE void load_state(const ModelView<S>& m, const Data<S>& d, const S* x, const S* u) {
  d.time[0] = S(0);
  for (int i = 0; i < m.nq; ++i) d.qpos[i] = x[i];
  for (int i = 0; i < m.nv; ++i) {
    d.qvel[i] = x[m.nq + i];
    d.qacc_warmstart[i] = S(0);  // a step from a given state is a function of it alone
  }
  for (int i = 0; i < m.nu; ++i) d.ctrl[i] = u != nullptr ? u[i] : S(0);
}

// the solver starts cold before every step of a rollout, as a single step() from the state does:
// a rollout is then exactly the composition of its steps, which its reverse mode re-runs one at
// a time (and the checkpointed reverse mode re-simulates, bit for bit)
template <class S>
PHYDREAM_HD void cold_start(const ModelView<S>& m, const Data<S>& d) {
  for (int i = 0; i < m.nv; ++i) d.qacc_warmstart[i] = S(0);
}

// x <- the state held in d
template <class S>
PHYDREAM_HD_STAGE void save_state(const ModelView<S>& m, const Data<S>& d, S* x) {
  for (int i = 0; i < m.nq; ++i) x[i] = d.qpos[i];
  for (int i = 0; i < m.nv; ++i) x[m.nq + i] = d.qvel[i];
}

}  // namespace articulated_detail

// =============================================================================================
// Jacobians

/// A (2nv x 2nv) and B (2nv x nu) from forward sweeps of K directions each; x_next (nq + nv) gets
/// the next state when not null. x: (nq + nv), u: (nu). ws: jacobian_scalar_size(m) Scalars,
/// tws: jacobian_tangent_size(m) entries. Overwrites A, B, x_next.
template <class S, int K>
PHYDREAM_HD_STAGE void step_jacobian_jvp(const ModelView<S>& m, S* ws, Vec<S, K>* tws, const S* x,
                                   const S* u, S* x_next, S* A, S* B) {
  using T = Vec<S, K>;
  const int nv = m.nv, nu = m.nu, ndx = 2 * nv, ncol = ndx + nu;
  const DataLayout layout = data_layout(m);
  const Data<S> d = data_at(layout, ws);
  const Data<T> t = data_at(layout, tws);
  T* dqpos = tws + layout.size;  // (nv) seeds
  T* dqvel = dqpos + nv;         // (nv)
  T* dctrl = dqvel + nv;         // (nu)
  T* out = dctrl + nu;           // (2nv) dqpos', dqvel'
  for (int c0 = 0; c0 < ncol; c0 += K) {
    // directions c0 .. c0 + K - 1: unit vectors of [dqpos, dqvel, dctrl]
    for (int i = 0; i < ncol; ++i) dqpos[i] = T::zero();
    for (int k = 0; k < K && c0 + k < ncol; ++k) dqpos[c0 + k][k] = S(1);
    articulated_detail::load_state(m, d, x, u);
    step_jvp<S, K>(m, d, t, dqpos, dqvel, dctrl, out, out + nv);
    for (int i = 0; i < ndx; ++i) {
      for (int k = 0; k < K && c0 + k < ncol; ++k) {
        const int c = c0 + k;
        if (c < ndx) {
          A[i * ndx + c] = out[i][k];
        } else {
          B[i * nu + (c - ndx)] = out[i][k];
        }
      }
    }
  }
  if (x_next != nullptr) {
    // without a column to sweep (nv = nu = 0), the next state comes from a plain step
    if (ncol == 0) {
      articulated_detail::load_state(m, d, x, u);
      step(m, d);
    }
    articulated_detail::save_state(m, d, x_next);
  }
}

namespace adjoint {

// the stage adjoint of the reverse Jacobian: lam -> D_s^T lam with the stored force derivative
// D_s (nv x (2nv + nu), rows: cotangent unit vectors of f; columns: q tangent, v, u)
template <class S, class T>
struct ForceMatrixAdjoint {
  const ModelView<S>& m;
  const S* dmat;  // (stages x nv x (2nv + nu))
  PHYDREAM_HD void operator()(const StagePrimal<S>& /*p*/, int stage, T* g_qpos, T* g_qvel,
                              T* g_ctrl, const T* lam) const {
    const int nv = m.nv, nu = m.nu, ncol = 2 * nv + nu;
    const S* dm = dmat + static_cast<long long>(stage) * nv * ncol;
    for (int i = 0; i < nv; ++i) {
      const T l = lam[i];
      const S* row = dm + i * ncol;
      for (int j = 0; j < nv; ++j) g_qpos[j] += row[j] * l;
      for (int j = 0; j < nv; ++j) g_qvel[j] += row[nv + j] * l;
      for (int j = 0; j < nu; ++j) g_ctrl[j] += row[2 * nv + j] * l;
    }
  }
};

}  // namespace adjoint

/// A and B from reverse sweeps (see the top of this file): one primal pass, ceil(nv / K) force
/// sweeps per stage and ceil(2nv / K) integrator sweeps of K cotangents; same arguments and
/// outputs as step_jacobian_jvp.
template <class S, int K>
PHYDREAM_HD_STAGE void step_jacobian_vjp(const ModelView<S>& m, S* ws, Vec<S, K>* tws, const S* x,
                                   const S* u, S* x_next, S* A, S* B) {
  using T = Vec<S, K>;
  const int nv = m.nv, nu = m.nu, ndx = 2 * nv, ncol = ndx + nu;
  const DataLayout layout = data_layout(m);
  const Data<S> d = data_at(layout, ws);
  S* primal = ws + layout.size;
  S* dmat = primal + vjp_scratch_size(m);
  const Data<T> a = data_at(layout, tws);
  T* seed = tws + layout.size;  // (2nv) cotangent seeds
  T* g_x = seed + ndx;          // (2nv) cotangents of qpos, qvel
  T* g_u = g_x + ndx;           // (nu)

  articulated_detail::load_state(m, d, x, u);
  step_vjp_primal(m, d, primal);

  // D_s = d(f - M a)/d(q, v, u) per stage, K rows (unit cotangents of f) per sweep
  for (int s = 0; s < adjoint::stage_count(m); ++s) {
    const adjoint::StagePrimal<S> p = adjoint::stage_primal(m, d, primal, s);
    if (adjoint::rk4_restores_stages(m)) adjoint::rk4_restore_stage(m, d, primal, s);
    S* dm = dmat + static_cast<long long>(s) * nv * ncol;
    for (int i0 = 0; i0 < nv; i0 += K) {
      for (int i = 0; i < nv; ++i) seed[i] = T::zero();
      for (int i = 0; i < ndx; ++i) g_x[i] = T::zero();
      for (int i = 0; i < nu; ++i) g_u[i] = T::zero();
      for (int k = 0; k < K && i0 + k < nv; ++k) seed[i0 + k][k] = S(1);
      adjoint::stage_force_vjp(m, d, primal, p, a, g_x, g_x + nv, g_u, seed);
      for (int k = 0; k < K && i0 + k < nv; ++k) {
        S* row = dm + (i0 + k) * ncol;
        for (int j = 0; j < ndx; ++j) row[j] = g_x[j][k];
        for (int j = 0; j < nu; ++j) row[ndx + j] = g_u[j][k];
      }
    }
  }
  if (adjoint::rk4_restores_stages(m)) adjoint::rk4_restore_step(m, d, primal);

  // rows r0 .. r0 + K - 1 of [A | B]: the integrator's reverse sweep with D_s^T as force adjoint
  const adjoint::ForceMatrixAdjoint<S, T> force{m, dmat};
  for (int r0 = 0; r0 < ndx; r0 += K) {
    for (int i = 0; i < ndx; ++i) {
      seed[i] = T::zero();
      g_x[i] = T::zero();
    }
    for (int i = 0; i < nu; ++i) g_u[i] = T::zero();
    for (int k = 0; k < K && r0 + k < ndx; ++k) seed[r0 + k][k] = S(1);
    adjoint::step_sweep(m, d, primal, a, force, seed, seed + nv, g_x, g_x + nv, g_u);
    // sweep k's cotangent of input j is row r0 + k, column j
    for (int k = 0; k < K && r0 + k < ndx; ++k) {
      const int r = r0 + k;
      for (int j = 0; j < ndx; ++j) A[r * ndx + j] = g_x[j][k];
      for (int j = 0; j < nu; ++j) B[r * nu + j] = g_u[j][k];
    }
  }
  if (x_next != nullptr) articulated_detail::save_state(m, d, x_next);
}

// =============================================================================================
// the analytic Jacobian: stage force derivatives in closed form, assembled densely
//
// The derivative D = d(f - M(q) a - C(q, v))/d(q, v, u) of a stage (nv x (2nv + nu), a held) in
// closed form, O(nv depth) spatial products instead of nv reverse sweeps (the recursive
// Newton-Euler derivatives of Carpentier and Mansard, "Analytical derivatives of rigid body
// dynamics algorithms", RSS 2018, rederived in MuJoCo's com-based frame with the origin held
// fixed, see engine/step_vjp.h). With S_k = cdof_k, vpre/vpost the velocity before/after dof
// j's group (apre the acceleration before it, gravity and qacc included), I_b, F_b the body
// inertia and subtree force (with qacc), composites Ic_b = sum I, Bc_b = sum B over subtree(b),
//   B(I, v) = v x* I - I (v x .) + ((.) x* I v)      (d(I a + v x* I v) along a motion of v, a)
// a perturbation of q_j moves subtree(body(j)) by S_j and changes velocities and accelerations
// by S_j x (v - vpre_j) + ... (see below); body-attached terms cancel against the motion of S_k,
// leaving, for the inverse dynamics tau = M a + C:
//   eta_j = cdof_dot_j, alpha_j = -(S_j x apre_j) - (eta_j x vpre_j), gamma_j = (vpre_j + vpost_j) x S_j
//   dtau_k/dq_j = S_k . (Bc_b(k) eta_j + Ic_b(k) alpha_j)          k moved by j (j in P(k))
//               = S_k . (S_j x* F_b(j) + Bc_b(j) eta_j + Ic_b(j) alpha_j)   k a strict ancestor
//                                                                          of j's group
//   dtau_k/dv_j = S_k . (Bc_b(k) S_j + Ic_b(k) gamma_j)            b(k) in subtree(body(j))
//               = S_k . (Bc_b(j) S_j + Ic_b(j) gamma_j)            b(k) a strict ancestor
// plus the passive and actuator terms. The reverse sweeps (force_vjp with unit cotangents) give
// the same D; the tests compare the two.

namespace articulated_detail {

// a . b for 9-vectors
template <class S>
PHYDREAM_HD S dot9(const S* a, const S* b) {
  return ((a[0] * b[0] + a[1] * b[1]) + (a[2] * b[2] + a[3] * b[3])) +
         ((a[4] * b[4] + a[5] * b[5]) + (a[6] * b[6] + a[7] * b[7])) + a[8] * b[8];
}

// the first dof of dof j's group (a free joint's translations or rotations, a ball's rotations)
template <class S>
PHYDREAM_HD int group_start(const ModelView<S>& m, int j) {
  const int jnt = m.dof_jntid[j], da = m.jnt_dofadr[jnt];
  const int type = m.jnt_type[jnt];
  if (type == static_cast<int>(JointType::free)) return j < da + 3 ? da : da + 3;
  return type == static_cast<int>(JointType::ball) ? da : j;
}

// B(I, v) = v x* I - I (v x .) + ((.) x* I v) in closed form. With I = [[J, [c]x], [-[c]x, m]]
// (J the rotational inertia about the origin, c = mass * com offset, cinert's layout),
// v = (w; n) and I v = (t; f), the blocks reduce (Jacobi identity) to
//   B = [[TL, 0], [-2 [f]x, 0]],   TL = P + P^T - n c^T - c n^T + 2 (n . c) 1 - [t]x,  P = [w]x J
// so B x depends on x's angular part only. Stored per body as TL (row-major 3 x 3), then f (3).
template <class S>
PHYDREAM_HD void body_coriolis(const S* in, const S* v, S* out) {
  const S jm[9] = {in[0], in[3], in[4], in[3], in[1], in[5], in[4], in[5], in[2]};
  const S* c = in + 6;
  const S* w = v;
  const S* n = v + 3;
  S t[3], f[3], cn[3], cw[3];
  adjoint::cross3(c, n, cn);
  adjoint::cross3(c, w, cw);
  for (int i = 0; i < 3; ++i) {
    t[i] = jm[3 * i] * w[0] + jm[3 * i + 1] * w[1] + jm[3 * i + 2] * w[2] + cn[i];
    f[i] = in[9] * n[i] - cw[i];
  }
  // P = [w]x J, column by column: w x J e_j
  S pm[9];
  for (int j = 0; j < 3; ++j) {
    const S col[3] = {jm[j], jm[3 + j], jm[6 + j]};
    S wc[3];
    adjoint::cross3(w, col, wc);
    for (int i = 0; i < 3; ++i) pm[3 * i + j] = wc[i];
  }
  const S nc = n[0] * c[0] + n[1] * c[1] + n[2] * c[2];
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) {
      out[3 * i + j] = pm[3 * i + j] + pm[3 * j + i] - n[i] * c[j] - c[i] * n[j] + (i == j ? S(2) * nc : S(0));
    }
  }
  // - [t]x
  out[1] += t[2];
  out[2] -= t[1];
  out[3] -= t[2];
  out[5] += t[0];
  out[6] += t[1];
  out[7] -= t[0];
  for (int i = 0; i < 3; ++i) out[9 + i] = f[i];
}

// Bc x + Ic y for a composite B (TL, f as body_coriolis stores it) and inertia (cinert layout)
template <class S>
PHYDREAM_HD adjoint::Six<S> composite_mul(const S* bc, const S* ic, const adjoint::Six<S>& x,
                                          const adjoint::Six<S>& y) {
  adjoint::Six<S> r = adjoint::inertia_mul(ic, y);
  S fx[3];
  adjoint::cross3(bc + 9, x.v, fx);
  for (int i = 0; i < 3; ++i) {
    r.v[i] += bc[3 * i] * x.v[0] + bc[3 * i + 1] * x.v[1] + bc[3 * i + 2] * x.v[2];
    r.v[3 + i] -= S(2) * fx[i];
  }
  return r;
}

// I + a [phi]x + b [phi]x^2 as a row-major 3 x 3
template <class S>
PHYDREAM_HD void so3_matrix(const S* phi, S a, S b, S* R) {
  const S x = phi[0], y = phi[1], z = phi[2];
  const S xx = x * x, yy = y * y, zz = z * z;
  R[0] = S(1) - b * (yy + zz);
  R[1] = -a * z + b * x * y;
  R[2] = a * y + b * x * z;
  R[3] = a * z + b * x * y;
  R[4] = S(1) - b * (xx + zz);
  R[5] = -a * x + b * y * z;
  R[6] = -a * y + b * x * z;
  R[7] = a * x + b * y * z;
  R[8] = S(1) - b * (xx + yy);
}

// y[c] = a x[c] for c < n, rows that never overlap (restrict: vectorised)
template <class S>
PHYDREAM_HD void row_scaled(S* __restrict__ y, const S* __restrict__ x, S a, int n) {
  for (int c = 0; c < n; ++c) y[c] = a * x[c];
}

// x[c] <- a x[c], y[c] = x[c] for c < n, rows that never overlap
template <class S>
PHYDREAM_HD void row_scale_copy(S* __restrict__ x, S* __restrict__ y, S a, int n) {
  for (int c = 0; c < n; ++c) y[c] = x[c] = a * x[c];
}

// dof k moves its coordinate linearly under integrate_pos (hinge, slide, a free joint's
// translation): its qpos' tangent row is e_k + h (its qvel' tangent row)
template <class S>
PHYDREAM_HD bool linear_dof(const ModelView<S>& m, int k) {
  const int jnt = m.dof_jntid[k];
  const int type = m.jnt_type[jnt];
  if (type == static_cast<int>(JointType::free)) return k < m.jnt_dofadr[jnt] + 3;
  return type != static_cast<int>(JointType::ball);
}

// v[c] = h g[c], q[c] = h v[c] for c < n, rows that never overlap
template <class S>
PHYDREAM_HD void rows_v_q(const S* __restrict__ g, S* __restrict__ v, S* __restrict__ q, S h, int n) {
  for (int c = 0; c < n; ++c) {
    const S t = h * g[c];
    v[c] = t;
    q[c] = h * t;
  }
}

// the tangent map of qpos' = qpos (+) h w along (dqpos = [I 0 0], dw = V): out (nv x ncol) =
// R(h w)^T [I 0 0] + h J_r(h w) V per ball/free rotation, [I 0 0] + h V otherwise. Row k's
// columns c < ndx go to out_a[k lda + c], the others to out_b[k ldb + c - ndx] (one block:
// out_a = out, out_b = out + ndx, lda = ldb = ncol; or straight into A and B)
// With rotations_only, the rows of linear dofs (linear_dof) are left to the caller.
template <class S>
PHYDREAM_HD_STAGE void integrate_pos_jacobian(const ModelView<S>& m, const S* w, S h, const S* V, int ncol,
                                        int ndx, S* out_a, int lda, S* out_b, int ldb,
                                        bool rotations_only = false) {
  const int nb = ncol - ndx;
  for (int j = 0; j < m.njnt; ++j) {
    const int type = m.jnt_type[j];
    int da = m.jnt_dofadr[j];
    const int nlin = type == static_cast<int>(JointType::free) ? 3
                     : type == static_cast<int>(JointType::ball) ? 0 : 1;
    for (int k = da; k < (rotations_only ? da : da + nlin); ++k) {
      const S* vk = V + k * ncol;
      row_scaled(out_a + k * lda, vk, h, ndx);
      row_scaled(out_b + k * ldb, vk + ndx, h, nb);
      out_a[k * lda + k] += S(1);
    }
    if (nlin == 1) continue;
    da += nlin;
    const S phi[3] = {h * w[da], h * w[da + 1], h * w[da + 2]};
    const adjoint::So3Coef<S> co = adjoint::so3_coef(phi);
    S rt[9], jr[9];
    so3_matrix(phi, -co.s1, co.s2, rt);  // R^T
    so3_matrix(phi, -co.s2, co.s3, jr);  // J_r
    for (int r = 0; r < 3; ++r) {
      const S* j0 = V + da * ncol;
      const S* j1 = j0 + ncol;
      const S* j2 = j1 + ncol;
      const S a0 = jr[3 * r], a1 = jr[3 * r + 1], a2 = jr[3 * r + 2];
      S* ak = out_a + (da + r) * lda;
      S* bk = out_b + (da + r) * ldb;
      for (int c = 0; c < ndx; ++c) ak[c] = h * (a0 * j0[c] + a1 * j1[c] + a2 * j2[c]);
      for (int c = 0; c < nb; ++c) bk[c] = h * (a0 * j0[ndx + c] + a1 * j1[ndx + c] + a2 * j2[ndx + c]);
      for (int c = 0; c < 3; ++c) ak[da + c] += rt[3 * r + c];
    }
  }
}

// y[c] -= a x[c] for c < n, rows of one block that never overlap (restrict: vectorised)
template <class S>
PHYDREAM_HD void row_sub_scaled(S* __restrict__ y, const S* __restrict__ x, S a, int n) {
  int c = 0;
  for (; c + 4 <= n; c += 4) {
    y[c] -= a * x[c];
    y[c + 1] -= a * x[c + 1];
    y[c + 2] -= a * x[c + 2];
    y[c + 3] -= a * x[c + 3];
  }
  for (; c < n; ++c) y[c] -= a * x[c];
}

// y1[c] -= a1 x[c], y2[c] -= a2 x[c] for c < n, rows of one block that never overlap
template <class S>
PHYDREAM_HD void row_sub_scaled2(S* __restrict__ y1, S a1, S* __restrict__ y2, S a2,
                                 const S* __restrict__ x, int n) {
  for (int c = 0; c < n; ++c) {
    y1[c] -= a1 * x[c];
    y2[c] -= a2 * x[c];
  }
}

// y[c] <- d y[c] - a1 x1[c] - a2 x2[c] for c < n, rows of one block that never overlap
template <class S>
PHYDREAM_HD void row_scale_sub2(S* __restrict__ y, S d, const S* __restrict__ x1, S a1,
                                const S* __restrict__ x2, S a2, int n) {
  for (int c = 0; c < n; ++c) y[c] = d * y[c] - a1 * x1[c] - a2 * x2[c];
}

// rows <- H^-1 rows for a factor of H (nv x nv) and a row-major (nv x ncol) block; the factor's
// sparsity is the dof tree's (row i couples to its ancestors only)
template <class S>
PHYDREAM_HD_STAGE void solve_rows(const ModelView<S>& m, const S* ld, const S* diag_inv, S* x, int ncol) {
  const int nv = m.nv;
  // leaves first: every ancestor j of row i loses L_ij row i, two ancestors at a time
  for (int i = nv - 1; i >= 0; --i) {
    const S* xi = x + i * ncol;
    const S* li = ld + nv * i;
    int j = m.dof_parentid[i];
    while (j >= 0) {
      const int j2 = m.dof_parentid[j];
      if (j2 < 0) {
        row_sub_scaled(x + j * ncol, xi, li[j], ncol);
        break;
      }
      row_sub_scaled2(x + j * ncol, li[j], x + j2 * ncol, li[j2], xi, ncol);
      j = m.dof_parentid[j2];
    }
  }
  // roots first: row i <- D_i^-1 row i - sum over its ancestors j of L_ij row j, two at a time
  for (int i = 0; i < nv; ++i) {
    S* xi = x + i * ncol;
    const S* li = ld + nv * i;
    int j1 = m.dof_parentid[i];
    int j2 = j1 >= 0 ? m.dof_parentid[j1] : -1;
    if (j2 >= 0) {
      row_scale_sub2(xi, diag_inv[i], x + j1 * ncol, li[j1], x + j2 * ncol, li[j2], ncol);
      j1 = m.dof_parentid[j2];
    } else {
      const S di = diag_inv[i];
      for (int c = 0; c < ncol; ++c) xi[c] *= di;
    }
    while (j1 >= 0) {
      j2 = m.dof_parentid[j1];
      if (j2 < 0) {
        row_sub_scaled(xi, x + j1 * ncol, li[j1], ncol);
        break;
      }
      row_scale_sub2(xi, S(1), x + j1 * ncol, li[j1], x + j2 * ncol, li[j2], ncol);
      j1 = m.dof_parentid[j2];
    }
  }
}

// rows <- H^-1 rows for a dense Cholesky factor L L' = H (constraint.h's cholesky: row-major
// nv x nv, lower triangle) and a row-major (nv x ncol) block
// (rows subtracted two at a time, as solve_rows does: half the passes over the target row)
template <class S>
PHYDREAM_HD_STAGE void cholesky_solve_rows(const S* l, int nv, S* x, int ncol) {
  for (int i = 0; i < nv; ++i) {
    S* xi = x + i * ncol;
    int k = 0;
    for (; k + 1 < i; k += 2) {
      row_scale_sub2(xi, S(1), x + k * ncol, l[nv * i + k], x + (k + 1) * ncol, l[nv * i + k + 1], ncol);
    }
    if (k < i) row_sub_scaled(xi, x + k * ncol, l[nv * i + k], ncol);
    const S di = S(1) / l[nv * i + i];
    for (int c = 0; c < ncol; ++c) xi[c] *= di;
  }
  for (int i = nv - 1; i >= 0; --i) {
    S* xi = x + i * ncol;
    int k = i + 1;
    for (; k + 1 < nv; k += 2) {
      row_scale_sub2(xi, S(1), x + k * ncol, l[nv * k + i], x + (k + 1) * ncol, l[nv * (k + 1) + i], ncol);
    }
    if (k < nv) row_sub_scaled(xi, x + k * ncol, l[nv * k + i], ncol);
    const S di = S(1) / l[nv * i + i];
    for (int c = 0; c < ncol; ++c) xi[c] *= di;
  }
}

// rows rows[0 .. n) of P (below; dof indices stored as Scalars) by one constraints_vjp sweep of
// n <= lanes(T) unit cotangents; seeds: 3 nv entries of T
template <class S, class T>
PHYDREAM_HD_STAGE void constraint_force_partial_rows(const ModelView<S>& m, const Data<S>& d, const S* qvel,
                                                     const S* cdof, const Data<T>& a, T* seeds, const S* rows,
                                                     int n, S* P, int ncol) {
  const int nv = m.nv;
  T* lam = seeds;
  T* gq = lam + nv;
  T* gv = gq + nv;
  for (int i = 0; i < nv; ++i) lam[i] = gq[i] = gv[i] = tangent_zero<T>();
  for (int k = 0; k < n; ++k) tangent_lane(lam[static_cast<int>(rows[k])], k) = S(1);
  constraints_vjp(m, d, qvel, cdof, a, gq, gv, lam);
  for (int k = 0; k < n; ++k) {
    S* row = P + static_cast<int>(rows[k]) * ncol;
    for (int j = 0; j < nv; ++j) {
      row[j] = tangent_lane(gq[j], k);
      row[nv + j] = tangent_lane(gv[j], k);
    }
  }
}

// P = d(J' f)/d(q, v) at the solution of the stage d holds, the acceleration held (the P of
// engine/constraint_vjp.h: dJ' f + J' df|qacc), row by row: constraints_vjp on unit cotangents.
// Row k is zero unless some row's Jacobian involves dof k structurally (a contact's when k
// supports one of its bodies; a limit's or friction loss's own dof): only those rows are swept,
// K per sweep of K lanes and the last few (fewer than K / 2) by one-lane sweeps, whose cost does
// not grow with K (the tangent workspace read as Vec<S, 1>, as rollout_vjp does). P: (nv x ncol)
// row-major, the control columns 0 (no row depends on the control), overwritten. qvel, cdof: the
// stage's. tws: jacobian_tangent_size(m) entries (scratch); mark: nv Scalars (scratch).
template <class S, int K>
PHYDREAM_HD_STAGE void constraint_force_partial(const ModelView<S>& m, const Data<S>& d, const S* qvel,
                                                const S* cdof, Vec<S, K>* tws, S* mark, S* P, int ncol) {
  const int nv = m.nv;
  const int nefc = static_cast<int>(d.nefc[0]);
  for (int k = 0; k < nv; ++k) mark[k] = S(0);
  for (int i = 0; i < nefc; ++i) {
    if (static_cast<int>(d.efc_type[i]) >= kConstraintContactFrictionless) {
      const int cand = static_cast<int>(d.con_cand[static_cast<int>(d.efc_id[i])]);
      for (int side = 0; side < 2; ++side) {
        int b = m.geom_bodyid[side == 0 ? m.cand_geom1[cand] : m.cand_geom2[cand]];
        while (b > 0 && m.body_dofnum[b] == 0) b = m.body_parentid[b];
        if (b == 0) continue;
        for (int k = m.body_dofadr[b] + m.body_dofnum[b] - 1; k >= 0; k = m.dof_parentid[k]) mark[k] = S(1);
      }
    } else {
      for (int k = 0; k < nv; ++k) {
        if (d.efc_J[nv * i + k] != S(0)) mark[k] = S(1);
      }
    }
  }
  int nrow = 0;  // the marked rows, listed in mark[0, nrow) (k >= nrow when row k is listed)
  for (int k = 0; k < nv; ++k) {
    if (mark[k] != S(0)) mark[nrow++] = S(k);
  }
  for (int i = 0; i < nv * ncol; ++i) P[i] = S(0);
  const DataLayout layout = data_layout(m);
  int r0 = 0;
  for (; nrow - r0 >= (K + 1) / 2; r0 += K) {
    constraint_force_partial_rows(m, d, qvel, cdof, data_at(layout, tws), tws + layout.size, mark + r0,
                                  nrow - r0 < K ? nrow - r0 : K, P, ncol);
  }
  Vec<S, 1>* t1 = reinterpret_cast<Vec<S, 1>*>(tws);
  for (; r0 < nrow; ++r0) {
    constraint_force_partial_rows(m, d, qvel, cdof, data_at(layout, t1), t1 + layout.size, mark + r0, 1, P, ncol);
  }
}

}  // namespace articulated_detail

/// Scalars of scratch force_derivative needs.
template <class S>
PHYDREAM_HD int force_derivative_scratch_size(const ModelView<S>& m) {
  return 22 * m.nbody + 45 * m.nv;
}

/// D = d(f - M(q) a - C(q, v))/d(q, v, u) of one stage in closed form (see above), a held at
/// p.qacc; f = qfrc_passive + qfrc_actuator. D: (nv x (2nv + nu)) row-major, columns (q tangent,
/// v, u), overwritten. scratch: force_derivative_scratch_size(m) Scalars. crb (nbody x 10): the
/// composite inertias of the stage's state (Data::crb) when the caller has them, else null.
template <class S>
PHYDREAM_HD_STAGE void force_derivative(const ModelView<S>& m, const adjoint::StagePrimal<S>& p,
                                  S* scratch, S* D, const S* crb = nullptr) {
  using adjoint::Six;
  using adjoint::six_load;
  using adjoint::dot6;
  const int nv = m.nv, nu = m.nu, nb = m.nbody, ncol = 2 * nv + nu;
  S* bc = scratch;          // (nbody x 12) composite B (body_coriolis's TL, f)
  S* ics = bc + 12 * nb;    // (nbody x 10) composite inertia, unless crb is given
  S* vpre = ics + 10 * nb;  // (nv x 6) velocity before the dof's group
  S* vpost = vpre + 6 * nv; // (nv x 6) velocity after it
  S* apre = vpost + 6 * nv; // (nv x 6) acceleration before it
  S* rk = apre + 6 * nv;    // (nv x 9) row k's projections: Bc_b(k)^T S_k (angular part, the
                            // linear one is 0), then Ic_b(k) S_k (6)
  S* cq = rk + 9 * nv;      // (nv x 9) column j's position partner (eta_j angular part, alpha_j)
  S* cv = cq + 9 * nv;      // (nv x 9) column j's velocity partner (S_j angular part, gamma_j)

  // body B(I, v) and inertias, then their subtree sums (separate trees below the world)
  for (int i = 0; i < 12; ++i) bc[i] = S(0);
  for (int b = 1; b < nb; ++b) {
    articulated_detail::body_coriolis(p.cinert + 10 * b, p.cvel + 6 * b, bc + 12 * b);
  }
  for (int b = nb - 1; b > 0; --b) {
    const int par = m.body_parentid[b];
    if (par > 0) {
      for (int i = 0; i < 12; ++i) bc[12 * par + i] += bc[12 * b + i];
    }
  }
  if (crb == nullptr) {
    for (int i = 0; i < 10; ++i) ics[i] = S(0);
    for (int i = 10; i < 10 * nb; ++i) ics[i] = p.cinert[i];
    for (int b = nb - 1; b > 0; --b) {
      const int par = m.body_parentid[b];
      if (par > 0) {
        for (int i = 0; i < 10; ++i) ics[10 * par + i] += ics[10 * b + i];
      }
    }
  }
  const S* ic = crb != nullptr ? crb : ics;

  // velocity and acceleration before and after each group, body by body
  for (int b = 1; b < nb; ++b) {
    Six<S> v = six_load(p.cvel + 6 * m.body_parentid[b]);
    Six<S> acc = six_load(p.acc + 6 * m.body_parentid[b]);
    const int end = m.body_dofadr[b] + m.body_dofnum[b];
    for (int k0 = m.body_dofadr[b]; k0 < end;) {
      int k1 = k0 + 1;
      while (k1 < end && articulated_detail::group_start(m, k1) == k0) ++k1;
      for (int k = k0; k < k1; ++k) {
        adjoint::six_store(vpre + 6 * k, v);
        adjoint::six_store(apre + 6 * k, acc);
      }
      for (int k = k0; k < k1; ++k) {
        const Six<S> cd = six_load(p.cdof + 6 * k);
        v += adjoint::scale(p.qvel[k], cd);
        acc += adjoint::scale(p.qvel[k], six_load(p.cdof_dot + 6 * k)) + adjoint::scale(p.qacc[k], cd);
      }
      for (int k = k0; k < k1; ++k) adjoint::six_store(vpost + 6 * k, v);
      k0 = k1;
    }
  }

  // the rows' projections Bc^T S_k = (TL^T S_k,ang + 2 f x S_k,lin; 0) and Ic S_k
  for (int k = 0; k < nv; ++k) {
    const S* bk = bc + 12 * m.dof_bodyid[k];
    const S* sk = p.cdof + 6 * k;
    S fs[3];
    adjoint::cross3(bk + 9, sk + 3, fs);
    for (int c = 0; c < 3; ++c) {
      rk[9 * k + c] = bk[c] * sk[0] + bk[3 + c] * sk[1] + bk[6 + c] * sk[2] + S(2) * fs[c];
    }
    const Six<S> is = adjoint::inertia_mul(ic + 10 * m.dof_bodyid[k], six_load(sk));
    for (int c = 0; c < 6; ++c) rk[9 * k + 3 + c] = is.v[c];
  }

  // columns j: the partners of the rows below j, and the entries of the rows above it (strict
  // ancestors of j's group: position; of body(j): velocity)
  for (int i = 0; i < nv * ncol; ++i) D[i] = S(0);
  for (int j = 0; j < nv; ++j) {
    const int bj = m.dof_bodyid[j];
    const int g0 = articulated_detail::group_start(m, j);
    const int f0 = m.body_dofadr[bj];
    const Six<S> sj = six_load(p.cdof + 6 * j);
    const Six<S> eta = six_load(p.cdof_dot + 6 * j);
    const Six<S> vp = six_load(vpre + 6 * j);
    const Six<S> alpha = adjoint::scale(S(-1), adjoint::crm(sj, six_load(apre + 6 * j)) + adjoint::crm(eta, vp));
    const Six<S> gamma = adjoint::crm(vp + six_load(vpost + 6 * j), sj);
    const Six<S> phi = adjoint::crf(sj, six_load(p.frc + 6 * bj)) +
                       articulated_detail::composite_mul(bc + 12 * bj, ic + 10 * bj, eta, alpha);
    const Six<S> psi = articulated_detail::composite_mul(bc + 12 * bj, ic + 10 * bj, sj, gamma);
    for (int c = 0; c < 3; ++c) {
      cq[9 * j + c] = eta.v[c];
      cv[9 * j + c] = sj.v[c];
    }
    for (int c = 0; c < 6; ++c) {
      cq[9 * j + 3 + c] = alpha.v[c];
      cv[9 * j + 3 + c] = gamma.v[c];
    }
    for (int k = m.dof_parentid[g0]; k >= 0; k = m.dof_parentid[k]) {
      D[k * ncol + j] -= dot6(six_load(p.cdof + 6 * k), phi);
    }
    for (int k = m.dof_parentid[f0]; k >= 0; k = m.dof_parentid[k]) {
      D[k * ncol + nv + j] -= dot6(six_load(p.cdof + 6 * k), psi);
    }
  }
  // rows k, the pairs enumerated from below (no ancestor tests): position columns j that move
  // dof k (j = k or an ancestor of k, and the later dofs of k's group); velocity columns: every
  // dof of each body whose first dof is k or an ancestor of k
  for (int k = 0; k < nv; ++k) {
    const S* r = rk + 9 * k;
    S* drow = D + k * ncol;
    const int gk = articulated_detail::group_start(m, k);
    for (int j = k + 1; j < nv && articulated_detail::group_start(m, j) == gk; ++j) {
      drow[j] -= articulated_detail::dot9(r, cq + 9 * j);
    }
    for (int a = k; a >= 0; a = m.dof_parentid[a]) {
      drow[a] -= articulated_detail::dot9(r, cq + 9 * a);
      const int b = m.dof_bodyid[a];
      if (m.body_dofadr[b] == a) {
        for (int j = a; j < a + m.body_dofnum[b]; ++j) drow[nv + j] -= articulated_detail::dot9(r, cv + 9 * j);
      }
    }
  }

  // passive: springs (ball and free rotations through J_r(r)^-1) and damping
  if (!m.disabled(kDisablePassive)) {
    for (int j = 0; j < m.njnt; ++j) {
      const S k = m.jnt_stiffness[j];
      const int type = m.jnt_type[j];
      int da = m.jnt_dofadr[j];
      if (k != S(0)) {
        if (type == static_cast<int>(JointType::hinge) || type == static_cast<int>(JointType::slide)) {
          D[da * ncol + da] -= k;
        } else {
          int qa = m.jnt_qposadr[j];
          if (type == static_cast<int>(JointType::free)) {
            for (int c = 0; c < 3; ++c) D[(da + c) * ncol + da + c] -= k;
            da += 3;
            qa += 3;
          }
          const Vec3<S> r = quat_sub(load_quat(p.qpos + qa), load_quat(m.qpos_spring + qa));
          const adjoint::So3Coef<S> co = adjoint::so3_coef(r.v);
          S jinv[9];
          articulated_detail::so3_matrix(r.v, S(0.5), co.c2, jinv);  // J_r(r)^-1
          for (int a = 0; a < 3; ++a) {
            for (int c = 0; c < 3; ++c) D[(da + a) * ncol + da + c] -= k * jinv[3 * a + c];
          }
        }
      }
    }
    for (int i = 0; i < nv; ++i) D[i * ncol + nv + i] -= m.dof_damping[i];
  }
  // actuation: gear on the joint's dof where the clamp passes the control
  if (!m.disabled(kDisableActuation)) {
    for (int a = 0; a < nu; ++a) {
      if (adjoint::ctrl_passes(m, a, p.ctrl[a])) {
        D[m.jnt_dofadr[m.actuator_trnid[a]] * ncol + 2 * nv + a] += m.actuator_gear[a];
      }
    }
  }
}

/// D += -d(M(q) x)/dq for a fixed vector x (nv): force_derivative's inertial part alone, at zero
/// velocity and without gravity (its eta, velocity and force terms vanish), into the position
/// columns of D (nv x ncol, row-major). The derivative of Euler's implicitly damped acceleration
/// with constraints needs it for x = a_e - qacc (step_jacobian). cdof (nv x 6), cinert (nbody x
/// 10): the stage's; crb (nbody x 10): its composite inertias, or null. scratch:
/// force_derivative_scratch_size(m) Scalars.
template <class S>
PHYDREAM_HD_STAGE void inertia_derivative_add(const ModelView<S>& m, const S* cdof, const S* cinert,
                                              const S* crb, const S* x, S* scratch, S* D, int ncol) {
  using adjoint::Six;
  using adjoint::six_load;
  using adjoint::dot6;
  const int nv = m.nv, nb = m.nbody;
  S* acc = scratch;         // (nbody x 6) body accelerations of x
  S* frc = acc + 6 * nb;    // (nbody x 6) subtree forces I a
  S* ics = frc + 6 * nb;    // (nbody x 10) composite inertias, unless crb is given
  S* apre = ics + 10 * nb;  // (nv x 6) acceleration before the dof's group
  S* rk = apre + 6 * nv;    // (nv x 6) row k's projection Ic_b(k) S_k
  S* al = rk + 6 * nv;      // (nv x 6) column j's alpha_j = -(S_j x apre_j)
  if (crb == nullptr) {
    for (int i = 0; i < 10; ++i) ics[i] = S(0);
    for (int i = 10; i < 10 * nb; ++i) ics[i] = cinert[i];
    for (int b = nb - 1; b > 0; --b) {
      const int par = m.body_parentid[b];
      if (par > 0) {
        for (int i = 0; i < 10; ++i) ics[10 * par + i] += ics[10 * b + i];
      }
    }
  }
  const S* ic = crb != nullptr ? crb : ics;
  for (int i = 0; i < 6; ++i) acc[i] = frc[i] = S(0);
  for (int b = 1; b < nb; ++b) {
    Six<S> a = six_load(acc + 6 * m.body_parentid[b]);
    const int end = m.body_dofadr[b] + m.body_dofnum[b];
    for (int k0 = m.body_dofadr[b]; k0 < end;) {
      int k1 = k0 + 1;
      while (k1 < end && articulated_detail::group_start(m, k1) == k0) ++k1;
      for (int k = k0; k < k1; ++k) adjoint::six_store(apre + 6 * k, a);
      for (int k = k0; k < k1; ++k) a += adjoint::scale(x[k], six_load(cdof + 6 * k));
      k0 = k1;
    }
    adjoint::six_store(acc + 6 * b, a);
    adjoint::six_store(frc + 6 * b, adjoint::inertia_mul(cinert + 10 * b, a));
  }
  for (int b = nb - 1; b > 0; --b) {
    const int par = m.body_parentid[b];
    if (par > 0) adjoint::six_add_to(frc + 6 * par, six_load(frc + 6 * b));
  }
  for (int k = 0; k < nv; ++k) {
    const Six<S> sk = six_load(cdof + 6 * k);
    adjoint::six_store(rk + 6 * k, adjoint::inertia_mul(ic + 10 * m.dof_bodyid[k], sk));
    adjoint::six_store(al + 6 * k, adjoint::scale(S(-1), adjoint::crm(sk, six_load(apre + 6 * k))));
  }
  // columns j: the rows of the strict ancestors of j's group
  for (int j = 0; j < nv; ++j) {
    const int bj = m.dof_bodyid[j];
    const Six<S> phi = adjoint::crf(six_load(cdof + 6 * j), six_load(frc + 6 * bj)) +
                       adjoint::inertia_mul(ic + 10 * bj, six_load(al + 6 * j));
    for (int k = m.dof_parentid[articulated_detail::group_start(m, j)]; k >= 0; k = m.dof_parentid[k]) {
      D[k * ncol + j] -= dot6(six_load(cdof + 6 * k), phi);
    }
  }
  // rows k: the columns that move dof k (k, its ancestors, the later dofs of its group)
  for (int k = 0; k < nv; ++k) {
    const Six<S> r = six_load(rk + 6 * k);
    S* drow = D + k * ncol;
    const int gk = articulated_detail::group_start(m, k);
    for (int j = k + 1; j < nv && articulated_detail::group_start(m, j) == gk; ++j) {
      drow[j] -= dot6(r, six_load(al + 6 * j));
    }
    for (int a = k; a >= 0; a = m.dof_parentid[a]) drow[a] -= dot6(r, six_load(al + 6 * a));
  }
}

namespace articulated_detail {

// step_vjp_primal for Euler: the same step (bit for bit) and the same record in `primal` (acc,
// frc to rounding), cheaper when a dof is damped: no factor and solve of M alone (the implicit
// step's acceleration and every derivative read the factor of M + h diag(damping) only; d.qacc,
// qLD are left stale), and the inverse dynamics with qacc_euler as a correction of rne's
template <class S>
PHYDREAM_HD_STAGE void euler_primal(const ModelView<S>& m, const Data<S>& d, S* primal) {
  if (!detail::has_damping(m)) {
    step_vjp_primal(m, d, primal);
    return;
  }
  const int nq = m.nq, nv = m.nv, nb = m.nbody;
  const S h = m.timestep;
  adjoint::copy_n(primal + 12 * nb, d.qpos, nq);
  adjoint::copy_n(primal + 12 * nb + nq, d.qvel, nv);
  kinematics(m, d);
  com_pos(m, d);
  crb(m, d);
  com_vel(m, d);
  passive(m, d);
  rne(m, d);
  actuation(m, d);
  for (int i = 0; i < nv; ++i) d.qfrc_smooth[i] = (d.qfrc_passive[i] - d.qfrc_bias[i]) + d.qfrc_actuator[i];
  detail::euler_acceleration(m, d);
  // the inverse dynamics with qacc_euler from rne's (qacc = 0): a_b = cacc_b + da_b with
  // da_b = da_parent + sum_{k in b} cdof_k qacc_k, F_b = cfrc_body_b + sum_{c in subtree(b)} I_c da_c
  // (inverse_dynamics_primal's acc, frc, to rounding)
  S* acc = primal;
  S* frc = primal + 6 * nb;
  for (int i = 0; i < 6; ++i) acc[i] = frc[i] = S(0);
  for (int b = 1; b < nb; ++b) {
    adjoint::Six<S> da = adjoint::six_load(acc + 6 * m.body_parentid[b]);
    for (int k = m.body_dofadr[b]; k < m.body_dofadr[b] + m.body_dofnum[b]; ++k) {
      da += adjoint::scale(d.qacc_euler[k], adjoint::six_load(d.cdof + 6 * k));
    }
    adjoint::six_store(acc + 6 * b, da);
    adjoint::six_store(frc + 6 * b, adjoint::inertia_mul(d.cinert + 10 * b, da));
  }
  for (int b = nb - 1; b > 0; --b) {
    const int par = m.body_parentid[b];
    if (par > 0) adjoint::six_add_to(frc + 6 * par, adjoint::six_load(frc + 6 * b));
  }
  for (int i = 0; i < 6 * nb; ++i) acc[i] += d.cacc[i];
  for (int i = 6; i < 6 * nb; ++i) frc[i] += d.cfrc_body[i];
  for (int i = 0; i < nv; ++i) d.qvel[i] += d.qacc_euler[i] * h;
  integrate_pos(m, d.qpos, d.qvel, h);
  d.time[0] += h;
}

}  // namespace articulated_detail

/// A (2nv x 2nv) and B (2nv x nu) analytically: one primal pass (step_vjp_primal), the stage
/// force derivatives in closed form (force_derivative), and a dense forward assembly through the
/// solves and the integrator (Euler: G = H^-1 D, v' = v + h a, q' = q (+) h v'; RK4: the four
/// stages chained). The fastest of the three; agrees with step_jacobian_jvp/vjp to rounding.
///
/// A stage that made constraint rows (IFT gradient mode) adds the implicit function theorem in
/// closed form: with E = force_derivative at the constrained acceleration qacc and P = d(J' f)/dx
/// at fixed qacc (articulated_detail::constraint_force_partial), the constrained acceleration
/// moves by G = sol_H^-1 (E + P) (the solver's own Hessian factor, engine/constraint_jvp.h).
/// Euler with implicit damping then solves (M + h diag(damping)) a_e = M qacc (MuJoCo's
/// mj_Euler: the force qfrc_smooth + qfrc_constraint is M qacc), whose derivative is
/// D = E_e - E + M G with E_e the force derivative at a_e, taken as (M + h B)^-1 (X - h B G) + G
/// with X = E_e - E = -d(M (a_e - qacc))/dq (inertia_derivative_add); RK4 stages chain G as they
/// chain the contact-free H^-1 D. The partial P takes one constraints_vjp sweep of K unit
/// cotangents per K of its rows that can be nonzero (tws: jacobian_tangent_size(m) entries);
/// nothing else differs from the smooth path.
/// tws may be null only for a model that makes no constraint rows (nefc_max == 0): without it
/// the constraints are not differentiated.
/// x: (nq + nv), u: (nu), x_next (nq + nv, or null) written; ws: jacobian_scalar_size(m)
/// Scalars. Overwrites A, B, x_next.
template <class S, int K>
PHYDREAM_HD_STAGE void step_jacobian(const ModelView<S>& m, S* ws, Vec<S, K>* tws, const S* x, const S* u,
                                     S* x_next, S* A, S* B) {
  const int nv = m.nv, nu = m.nu, ndx = 2 * nv, ncol = ndx + nu;
  const long long blk = static_cast<long long>(nv) * ncol;
  const DataLayout layout = data_layout(m);
  const Data<S> d = data_at(layout, ws);
  S* primal = ws + layout.size;
  S* dm = primal + vjp_scratch_size(m);  // (nv x ncol) one stage's D, then G = H^-1 (...)
  S* scratch = dm + adjoint::stage_count(m) * blk;
  S* q = scratch + force_derivative_scratch_size(m);  // (nv x ncol) position tangent map
  S* v = q + blk;                                      // (nv x ncol) velocity tangent map
  S* vb = v + blk;                                     // (nv x ncol) sum b_s V_s
  S* gb = vb + blk;                                    // (nv x ncol) sum b_s G_s
  S* tmp = gb + blk;                                   // (nv x ncol)
  // the constraint stages' IFT (ift mode; the unrolled one takes the forward sweeps)
  const bool rows = tws != nullptr && m.nefc_max > 0 && m.grad_mode == static_cast<int>(GradMode::ift);

  articulated_detail::load_state(m, d, x, u);
  const S h = m.timestep;

  if (adjoint::stage_count(m) == 1) {
    // G = H^-1 D; v' rows: [0 I 0] + h G; q' rows: integrate_pos's tangent map along v'
    if (rows) {
      step_vjp_primal(m, d, primal, false);  // with the constraint solve (euler_primal skips it)
    } else {
      articulated_detail::euler_primal(m, d, primal);
    }
    const adjoint::StagePrimal<S> p = adjoint::stage_primal(m, d, primal, 0);
    const int nefc = rows ? static_cast<int>(d.nefc[0]) : 0;
    if (nefc == 0) {
      force_derivative(m, p, scratch, dm, d.crb);  // d's forward intermediates are the stage's
      articulated_detail::solve_rows(m, p.factor, p.diag_inv, dm, ncol);
    } else if (!detail::has_damping(m)) {
      // a = qacc: G = sol_H^-1 (E + P)
      force_derivative(m, p, scratch, dm, d.crb);
      articulated_detail::constraint_force_partial(m, d, p.qvel, p.cdof, tws, v, q, ncol);
      for (long long i = 0; i < blk; ++i) dm[i] += q[i];
      articulated_detail::cholesky_solve_rows(d.sol_H, nv, dm, ncol);
    } else {
      // E_e at a_e (the recorded stage), X = -d(M (a_e - qacc))/dq = E_e - E with E at the
      // constrained qacc, P, then G = sol_H^-1 (E + P) into q and D = E_e - E + M G = X + M G;
      // with M = (M + h B) - h B (B = diag(damping)) the solve below is
      // (M + h B)^-1 D = (M + h B)^-1 (X - h B G) + G: no product with M
      force_derivative(m, p, scratch, v, d.crb);
      S* delta = tmp;  // (nv) a_e - qacc
      for (int i = 0; i < nv; ++i) delta[i] = d.qacc_euler[i] - d.qacc[i];
      for (long long i = 0; i < blk; ++i) dm[i] = S(0);
      inertia_derivative_add(m, p.cdof, p.cinert, d.crb, delta, scratch, dm, ncol);
      articulated_detail::constraint_force_partial(m, d, p.qvel, p.cdof, tws, tmp, q, ncol);
      for (long long i = 0; i < blk; ++i) q[i] += v[i] - dm[i];
      articulated_detail::cholesky_solve_rows(d.sol_H, nv, q, ncol);
      for (int i = 0; i < nv; ++i) {
        const S hb = h * m.dof_damping[i];
        if (hb != S(0)) articulated_detail::row_sub_scaled(dm + i * ncol, q + i * ncol, hb, ncol);
      }
      articulated_detail::solve_rows(m, p.factor, p.diag_inv, dm, ncol);
      for (long long i = 0; i < blk; ++i) dm[i] += q[i];
    }
    // v' rows into A and B; a linear dof's q' row (e_i + h v' row) at once, the others' v' rows
    // also back into dm, for the ball/free rotations' q' rows below
    for (int i = 0; i < nv; ++i) {
      S* row = dm + i * ncol;
      S* arow = A + (nv + i) * ndx;
      S* brow = B + (nv + i) * nu;
      if (articulated_detail::linear_dof(m, i)) {
        S* qa = A + i * ndx;
        articulated_detail::rows_v_q(row, arow, qa, h, ndx);
        articulated_detail::rows_v_q(row + ndx, brow, B + i * nu, h, nu);
        arow[nv + i] += S(1);
        qa[nv + i] += h;
        qa[i] += S(1);
      } else {
        articulated_detail::row_scale_copy(row, arow, h, ndx);
        arow[nv + i] = row[nv + i] += S(1);
        articulated_detail::row_scale_copy(row + ndx, brow, h, nu);
      }
    }
    articulated_detail::integrate_pos_jacobian(m, d.qvel, h, dm, ncol, ndx, A, ndx, B, nu, true);
  } else {
    step_vjp_primal(m, d, primal);
    // stage s: Q_s, V_s the tangent maps of its state, G_s = H_s^-1 (Dq Q_s + Dv V_s + Du)
    for (long long i = 0; i < blk; ++i) q[i] = v[i] = vb[i] = gb[i] = S(0);
    for (int i = 0; i < nv; ++i) {
      q[i * ncol + i] = S(1);
      v[i * ncol + nv + i] = S(1);
    }
    const bool restores = rows && adjoint::rk4_restores_stages(m);
    for (int s = 0; s < 4; ++s) {
      const adjoint::StagePrimal<S> p = adjoint::stage_primal(m, d, primal, s);
      force_derivative(m, p, scratch, dm);
      // a stage with rows: d re-runs its forward() (the same solve) for the rows and sol_H
      if (restores) adjoint::rk4_restore_stage(m, d, primal, s);
      const int nefc = restores ? static_cast<int>(d.nefc[0]) : 0;
      if (nefc > 0) {
        S* pm = dm + blk;
        articulated_detail::constraint_force_partial(m, d, p.qvel, p.cdof, tws, pm + blk, pm, ncol);
        for (long long i = 0; i < blk; ++i) dm[i] += pm[i];
      }
      if (s > 0) {
        // tmp = Dq Q_s + Dv V_s + [0 0 Du]
        for (int i = 0; i < nv; ++i) {
          S* row = tmp + i * ncol;
          const S* drow = dm + i * ncol;
          for (int c = 0; c < ndx; ++c) row[c] = S(0);
          for (int c = 0; c < nu; ++c) row[ndx + c] = drow[ndx + c];
          for (int l = 0; l < nv; ++l) {
            const S dq = drow[l], dv = drow[nv + l];
            for (int c = 0; c < ncol; ++c) row[c] += dq * q[l * ncol + c] + dv * v[l * ncol + c];
          }
        }
        for (long long i = 0; i < blk; ++i) dm[i] = tmp[i];
      }
      if (nefc > 0) {
        articulated_detail::cholesky_solve_rows(d.sol_H, nv, dm, ncol);
      } else {
        articulated_detail::solve_rows(m, p.factor, p.diag_inv, dm, ncol);
      }
      const S b = detail::rk4_b<S>(s);
      for (long long i = 0; i < blk; ++i) {
        vb[i] += b * v[i];
        gb[i] += b * dm[i];
      }
      if (s == 3) break;
      // the next stage starts at qpos0 (+) a h X_s, qvel0 + a h F_s
      const S ah = detail::rk4_a<S>(s) * h;
      articulated_detail::integrate_pos_jacobian(m, p.qvel, ah, v, ncol, ndx, q, ncol, q + ndx, ncol);
      for (long long i = 0; i < blk; ++i) v[i] = ah * dm[i];
      for (int i = 0; i < nv; ++i) v[i * ncol + nv + i] += S(1);
    }
    // x' = (qpos0 (+) h sum b X_s, qvel0 + h sum b F_s), straight into A and B
    for (int i = 0; i < nv; ++i) {
      for (int c = 0; c < ndx; ++c) A[(nv + i) * ndx + c] = h * gb[i * ncol + c];
      A[(nv + i) * ndx + nv + i] += S(1);
      for (int c = 0; c < nu; ++c) B[(nv + i) * nu + c] = h * gb[i * ncol + ndx + c];
    }
    articulated_detail::integrate_pos_jacobian(m, adjoint::rk4_velocity_sum(m, primal), h, vb, ncol, ndx,
                                               A, ndx, B, nu);
    if (restores) {
      // d holds stage 3's forward(): with the next state it is as step() left it (rk4_restore_step)
      const S* next = adjoint::rk4_warmstart(m, primal, 4);
      adjoint::copy_n(d.qpos, next, m.nq);
      adjoint::copy_n(d.qvel, next + m.nq, nv);
    }
  }
  if (x_next != nullptr) articulated_detail::save_state(m, d, x_next);
}

/// step_jacobian of a model that makes no constraint rows (nefc_max == 0, or a contact-free
/// view): no tangent workspace.
template <class S>
PHYDREAM_HD_STAGE void step_jacobian(const ModelView<S>& m, S* ws, const S* x, const S* u, S* x_next,
                                     S* A, S* B) {
  step_jacobian<S, 1>(m, ws, static_cast<Vec<S, 1>*>(nullptr), x, u, x_next, A, B);
}

// =============================================================================================
// rollouts

/// states[0] = x0, states[t + 1] = step(states[t], actions[t]) for t < horizon.
/// x0: (nq + nv), actions: (horizon x nu), states: ((horizon + 1) x (nq + nv)) written.
/// ws: at least data_layout(m).size Scalars (jacobian_scalar_size(m) will do).
template <class S>
PHYDREAM_HD_STAGE void model_rollout(const ModelView<S>& m, S* ws, const S* x0, const S* actions,
                               long long horizon, S* states) {
  const int nx = m.nq + m.nv;
  const Data<S> d = data_at(data_layout(m), ws);
  for (int i = 0; i < nx; ++i) states[i] = x0[i];
  articulated_detail::load_state(m, d, x0, static_cast<const S*>(nullptr));
  for (long long t = 0; t < horizon; ++t) {
    for (int i = 0; i < m.nu; ++i) d.ctrl[i] = actions[t * m.nu + i];
    articulated_detail::cold_start(m, d);
    step(m, d);
    articulated_detail::save_state(m, d, states + (t + 1) * nx);
  }
}

namespace articulated_detail {

// the running cotangent of a rollout's reverse sweep: the seed slot of the tangent workspace
// (2nv entries of Vec<S, 1> after the tangent Data), so that it needs no storage of its own
template <class S>
PHYDREAM_HD Vec<S, 1>* rollout_cotangent(const ModelView<S>& m, Vec<S, 1>* tws) {
  return tws + data_layout(m).size;
}

// g += the trajectory cotangent of state t (2nv, tangent), when there is one
template <class S>
PHYDREAM_HD void add_state_cotangent(int ndx, const S* g_states, long long t, Vec<S, 1>* g) {
  if (g_states != nullptr) {
    for (int i = 0; i < ndx; ++i) g[i][0] += g_states[t * ndx + i];
  }
}

// g <- g_final + g_states[horizon]: the cotangent of the last state
template <class S>
PHYDREAM_HD_STAGE void start_rollout_cotangent(const ModelView<S>& m, Vec<S, 1>* tws, long long horizon,
                                         const S* g_states, const S* g_final) {
  const int ndx = 2 * m.nv;
  Vec<S, 1>* g = rollout_cotangent(m, tws);
  for (int i = 0; i < ndx; ++i) g[i][0] = g_final != nullptr ? g_final[i] : S(0);
  add_state_cotangent(ndx, g_states, horizon, g);
}

// the per-step VJP of a rollout's reverse sweep: step_vjp from the state (x, u), accumulating
// g_x (2nv) and g_u (nu) from g_next (2nv)
template <class S>
struct SweepStepVjp {
  const ModelView<S>& m;
  S* ws;
  Vec<S, 1>* tws;
  PHYDREAM_HD void operator()(const S* x, const S* u, const Vec<S, 1>* g_next, Vec<S, 1>* g_x,
                              Vec<S, 1>* g_u) const {
    const DataLayout layout = data_layout(m);
    const Data<S> d = data_at(layout, ws);
    load_state(m, d, x, u);
    step_vjp<S, 1>(m, d, ws + layout.size, data_at(layout, tws), g_next, g_next + m.nv, g_x, g_x + m.nv, g_u);
  }
};

// back-propagates the running cotangent (that of state t1) through steps t1 - 1 ... t0 of a
// stored segment whose state t is seg[(t - t0) (nq + nv)], each step by step_vjp_fn (a
// SweepStepVjp or the like); leaves the cotangent of state t0 in its place
template <class S, class StepVjp>
PHYDREAM_HD_STAGE void backprop_model_segment(const ModelView<S>& m, Vec<S, 1>* tws, const S* seg,
                                        const S* actions, const S* g_states, long long t0,
                                        long long t1, S* g_actions, const StepVjp& step_vjp_fn) {
  using T = Vec<S, 1>;
  const int nu = m.nu, nx = m.nq + m.nv, ndx = 2 * m.nv;
  T* g_next = rollout_cotangent(m, tws);  // (2nv) cotangent of state t + 1
  T* g_x = g_next + ndx;                  // (2nv) cotangent of state t
  T* g_u = g_x + ndx;                     // (nu)
  for (long long t = t1 - 1; t >= t0; --t) {
    for (int i = 0; i < ndx; ++i) g_x[i] = T::zero();
    for (int i = 0; i < nu; ++i) g_u[i] = T::zero();
    step_vjp_fn(seg + (t - t0) * nx, actions + t * nu, g_next, g_x, g_u);
    for (int i = 0; i < nu; ++i) g_actions[t * nu + i] += g_u[i][0];
    for (int i = 0; i < ndx; ++i) g_next[i] = g_x[i];
    add_state_cotangent(ndx, g_states, t, g_next);
  }
}

// gx0 += the running cotangent (that of state 0)
template <class S>
PHYDREAM_HD_STAGE void finish_rollout_cotangent(const ModelView<S>& m, Vec<S, 1>* tws, S* gx0) {
  const Vec<S, 1>* g = rollout_cotangent(m, tws);
  for (int i = 0; i < 2 * m.nv; ++i) gx0[i] += g[i][0];
}

}  // namespace articulated_detail

/// Reverse mode of model_rollout from the stored trajectory.
/// states: ((horizon + 1) x (nq + nv)) from model_rollout; actions: (horizon x nu);
/// g_states: ((horizon + 1) x 2nv) cotangent of every state in tangent coordinates, or null;
/// g_final: (2nv) added to the cotangent of states[horizon], or null.
/// Accumulates gx0 (2nv, tangent) += dL/dx0 and g_actions (horizon x nu) += dL/dU.
/// ws: jacobian_scalar_size(m) Scalars; tws: jacobian_tangent_size(m) entries of Vec<S, 1>.
/// step_vjp_fn: the per-step VJP (default: step_vjp's reverse sweep; articulated_ops.h passes the
/// Jacobian-based one of the unrolled and fd modes).
template <class S, class StepVjp>
PHYDREAM_HD_STAGE void model_rollout_vjp(const ModelView<S>& m, S* /*ws*/, Vec<S, 1>* tws, const S* states,
                                   const S* actions, long long horizon, S* gx0, S* g_actions,
                                   const S* g_states, const S* g_final, const StepVjp& step_vjp_fn) {
  articulated_detail::start_rollout_cotangent(m, tws, horizon, g_states, g_final);
  articulated_detail::backprop_model_segment(m, tws, states, actions, g_states, 0, horizon, g_actions, step_vjp_fn);
  articulated_detail::finish_rollout_cotangent(m, tws, gx0);
}
template <class S>
PHYDREAM_HD_STAGE void model_rollout_vjp(const ModelView<S>& m, S* ws, Vec<S, 1>* tws, const S* states,
                                   const S* actions, long long horizon, S* gx0, S* g_actions,
                                   const S* g_states, const S* g_final) {
  model_rollout_vjp(m, ws, tws, states, actions, horizon, gx0, g_actions, g_states, g_final,
                    articulated_detail::SweepStepVjp<S>{m, ws, tws});
}

/// Scalars of the checkpoint scratch model_rollout_vjp_checkpointed needs: a checkpoint every
/// `interval` steps and one re-simulated segment, checkpoint_scratch_states(horizon, interval)
/// states of nq + nv (engine/rollout.h; about 2 sqrt(T) states for interval = sqrt(T)).
template <class S>
PHYDREAM_HD long long rollout_checkpoint_size(const ModelView<S>& m, long long horizon,
                                              long long interval) {
  return checkpoint_scratch_states(horizon, interval) * (m.nq + m.nv);
}

/// Reverse mode of model_rollout without the stored trajectory: keeps a checkpoint every
/// `interval` (>= 1) steps on the way forward (default_checkpoint_interval(T) = ceil(sqrt(T))
/// minimises memory) and re-simulates one segment at a time on the way back.
/// checkpoints: rollout_checkpoint_size(m, horizon, interval) Scalars. Other arguments and
/// outputs as model_rollout_vjp, with x0 (nq + nv) in place of the trajectory; the results equal
/// model_rollout_vjp's bitwise (the re-simulated states are the stored ones).
template <class S, class StepVjp>
PHYDREAM_HD_STAGE void model_rollout_vjp_checkpointed(const ModelView<S>& m, S* ws, Vec<S, 1>* tws,
                                                const S* x0, const S* actions, long long horizon,
                                                long long interval, S* checkpoints, S* gx0,
                                                S* g_actions, const S* g_states,
                                                const S* g_final, const StepVjp& step_vjp_fn) {
  const int nx = m.nq + m.nv, nu = m.nu;
  const long long segments = (horizon + interval - 1) / interval;
  S* seg = checkpoints + segments * nx;  // (interval + 1) x nx: one segment's states
  const Data<S> d = data_at(data_layout(m), ws);

  // forward: keep the first state of every segment
  articulated_detail::load_state(m, d, x0, static_cast<const S*>(nullptr));
  for (long long t = 0; t < horizon; ++t) {
    if (t % interval == 0) articulated_detail::save_state(m, d, checkpoints + (t / interval) * nx);
    for (int i = 0; i < nu; ++i) d.ctrl[i] = actions[t * nu + i];
    articulated_detail::cold_start(m, d);
    step(m, d);
  }

  // backward, last segment first: re-simulate it from its checkpoint, then back-propagate
  articulated_detail::start_rollout_cotangent(m, tws, horizon, g_states, g_final);
  for (long long s = segments - 1; s >= 0; --s) {
    const long long t0 = s * interval;
    const long long t1 = t0 + interval < horizon ? t0 + interval : horizon;
    model_rollout(m, ws, checkpoints + s * nx, actions + t0 * nu, t1 - t0 - 1, seg);
    articulated_detail::backprop_model_segment(m, tws, seg, actions, g_states, t0, t1, g_actions, step_vjp_fn);
  }
  articulated_detail::finish_rollout_cotangent(m, tws, gx0);
}
template <class S>
PHYDREAM_HD_STAGE void model_rollout_vjp_checkpointed(const ModelView<S>& m, S* ws, Vec<S, 1>* tws,
                                                const S* x0, const S* actions, long long horizon,
                                                long long interval, S* checkpoints, S* gx0,
                                                S* g_actions, const S* g_states,
                                                const S* g_final) {
  model_rollout_vjp_checkpointed(m, ws, tws, x0, actions, horizon, interval, checkpoints, gx0, g_actions,
                                 g_states, g_final, articulated_detail::SweepStepVjp<S>{m, ws, tws});
}

}  // namespace phydream
