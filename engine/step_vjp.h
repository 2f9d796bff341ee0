// Reverse mode (VJP) of one articulated step (engine/forward.h): hand-written adjoint sweeps of
// every stage, K cotangents at once.
//
// Coordinates. Cotangents live in MuJoCo's tangent coordinates (mjd_transitionFD): a position
// cotangent has nv entries, one per dof; the tangent of a ball or free joint's quaternion is the
// rotation vector in the joint's child frame, qpos (+) dq = integrate_pos(qpos, dq, 1).
//
// How each stage is reversed (equations in the comments at each function):
//   - integrate_pos: qpos' = qpos (+) h qvel. Per ball/free rotation, with phi = h w,
//     dq' = R(phi)^T dq + h J_r(phi) dw (R: rotation of exp(phi), J_r: the right Jacobian of
//     SO(3)); hinge, slide and free translation are linear.
//   - Euler (MuJoCo 2.2.2's mj_Euler): qvel' = qvel + h qacc_e with H qacc_e = f, H = M + h diag
//     (damping) when some dof is damped (damping integrated implicitly), else H = M; then
//     qpos' = integrate_pos(qpos, qvel', h).
//   - RK4: four forward() stages; the stage primals are kept in primal_scratch and each stage's
//     acceleration is reversed in turn, its state being qpos (+) c h X_prev, qvel + c h F_prev.
//     With constraints, the sweep re-runs each stage's forward() from its record and warm start
//     (the same solve, bit for bit) before reversing its constraint force, and restores d as
//     step() left it at the end.
//   - acceleration (forward(): kinematics, com quantities, CRBA, LTDL factor, RNE, passive,
//     actuation, solve). At the solution H(q) a = f(q, v, u), so with a held fixed,
//       g_f = H^-1 g_a                      (the solve; H symmetric)
//       g_(q,v,u) += (d/d(q,v,u) [f - M(q) a - C(q, v)])^T g_f
//     and M(q) a + C(q, v) = RNE(q, v, a) is the inverse dynamics with the acceleration
//     included (mj_rne with flg_acc = 1): the cotangent of the mass matrix (CRBA) flows through
//     the same sweep as the bias forces, in O(nbody) instead of differentiating M entry by entry.
//     The armature and h diag(damping) terms of H do not depend on q or v.
//   - RNE, com quantities and kinematics. qfrc_bias, M a and everything in between are
//     invariant under a change of the frame origin (MuJoCo's subtree_com of the root), so the
//     position derivative is taken with that origin held fixed. Then a perturbation dq of dof k
//     moves every body it supports rigidly by the spatial motion cdof_k dq_k, and a
//     body-attached quantity changes as (Featherstone's spatial algebra, x = crm, x* = crf)
//       motion m (cdof):   dm = xi x m,     inertia I (cinert):   dI = xi x* I - I (xi x .)
//     with xi = sum_k cdof_k dq_k over the dofs moving it: for cinert all dofs of the body and
//     its ancestors; for cdof_j those up to j's joint (a ball's or a free joint's rotation axes
//     are columns of the body's xmat, so all three of its rotation dofs move each of them).
//     Pulling a cotangent back through such a map gives a spatial force per body or per dof
//     (the "deposits" below); summing deposits up the tree and projecting on cdof_k gives the
//     position cotangent of dof k: g_q[k] += cdof_k . (sum of deposits of everything dof k moves).
//
// Data flow. step_vjp = step_vjp_primal + step_vjp_sweep. The primal pass runs step() (bit for
// bit) and records per stage (Euler 1, RK4 4) everything the sweep reads, so the sweep
// recomputes no primal and several sweeps (the row blocks of a Jacobian) can share one pass:
//   recorded                              read by
//   qpos                                  passive_vjp (ball/free springs: r = log(q_spring^-1 q))
//   qvel                                  inverse_dynamics_vjp (v_k), the next stage's
//                                         integrate_pos_vjp (RK4: X_s)
//   qacc (the acceleration held fixed)    inverse_dynamics_vjp
//   factor, 1/D (qLD; Euler with damping: qH)   the solve of acceleration_vjp
//   cdof, cdof_dot, cinert, cvel          inverse_dynamics_vjp
//   acc, frc (inverse dynamics with qacc) inverse_dynamics_vjp (a_b, F_b)
//   ctrl (d.ctrl, unchanged by a step)    actuation_vjp (the clamp)
//   Euler: qvel' (d.qvel after the step)  integrate_pos_vjp;  RK4: sum b_s X_s, the final one
// Euler leaves its forward() intermediates in d (only qpos and qvel are overwritten by the update,
// and those are saved first); RK4 copies each stage's into primal_scratch.
//
// Conventions (DESIGN.md): VJPs ACCUMULATE (+=) into input cotangents; every function takes the
// inputs, then the input cotangents, then the output cotangent last, except step_vjp,
// step_vjp_sweep and step_sweep, whose argument order is the contract's (output cotangents
// first). Everything is PHYDREAM_HD, never allocates, and keeps its intermediates in the
// caller's workspaces: primal_scratch (vjp_scratch_size Scalars) and an adjoint Data<Vec<S, K>>
// over the model's DataLayout, whose fields hold cotangents of the same-named primal fields or
// sweep scratch as documented at each use.
#pragma once

#include "engine/core.h"
#include "engine/data.h"
#include "engine/forward.h"
#include "engine/model.h"
#include "engine/model_view.h"
#include "engine/small_vec.h"
#include "engine/spatial.h"

namespace phydream {

// engine/constraint_vjp.h (included at the end of this file)
template <class S, class T>
PHYDREAM_HD_STAGE void constraints_vjp(const ModelView<S>& m, const Data<S>& d, const S* qvel, const S* cdof,
                                       const Data<T>& a, T* g_qpos, T* g_qvel, const T* lam_c);

namespace adjoint {

// =============================================================================================
// spatial 6-vectors whose entries are primal Scalars or tangents (Vec<S, K>); the products below
// mix the two (primal * tangent -> tangent), which is all a linear sweep needs

template <class X>
struct Six {
  X v[6];  // (angular; linear) for a motion, (torque; force) for a force
};

template <class A, class B>
using Prod = decltype(A() * B());

template <class X>
PHYDREAM_HD Six<X> six_zero() {
  Six<X> r;
  for (int i = 0; i < 6; ++i) r.v[i] = tangent_zero<X>();
  return r;
}
template <class X>
PHYDREAM_HD Six<X> six_load(const X* p) {
  Six<X> r;
  for (int i = 0; i < 6; ++i) r.v[i] = p[i];
  return r;
}
template <class X>
PHYDREAM_HD void six_store(X* p, const Six<X>& a) {
  for (int i = 0; i < 6; ++i) p[i] = a.v[i];
}
template <class X>
PHYDREAM_HD void six_add_to(X* p, const Six<X>& a) {
  for (int i = 0; i < 6; ++i) p[i] += a.v[i];
}
template <class X>
PHYDREAM_HD Six<X> operator+(Six<X> a, const Six<X>& b) {
  for (int i = 0; i < 6; ++i) a.v[i] += b.v[i];
  return a;
}
template <class X>
PHYDREAM_HD Six<X> operator-(Six<X> a, const Six<X>& b) {
  for (int i = 0; i < 6; ++i) a.v[i] -= b.v[i];
  return a;
}
template <class X>
PHYDREAM_HD Six<X>& operator+=(Six<X>& a, const Six<X>& b) {
  for (int i = 0; i < 6; ++i) a.v[i] += b.v[i];
  return a;
}
template <class X>
PHYDREAM_HD Six<X>& operator-=(Six<X>& a, const Six<X>& b) {
  for (int i = 0; i < 6; ++i) a.v[i] -= b.v[i];
  return a;
}

/// s a (one factor primal, the other a tangent, or both primal).
template <class A, class B>
PHYDREAM_HD Six<Prod<A, B>> scale(const A& s, const Six<B>& a) {
  Six<Prod<A, B>> r;
  for (int i = 0; i < 6; ++i) r.v[i] = s * a.v[i];
  return r;
}

/// a . b: the power of a force on a motion.
template <class A, class B>
PHYDREAM_HD Prod<A, B> dot6(const Six<A>& a, const Six<B>& b) {
  return a.v[0] * b.v[0] + a.v[1] * b.v[1] + a.v[2] * b.v[2] + a.v[3] * b.v[3] + a.v[4] * b.v[4] +
         a.v[5] * b.v[5];
}

// r = a x b on 3-vectors given by their first entries
template <class A, class B, class R>
PHYDREAM_HD void cross3(const A* a, const B* b, R* r) {
  r[0] = a[1] * b[2] - a[2] * b[1];
  r[1] = a[2] * b[0] - a[0] * b[2];
  r[2] = a[0] * b[1] - a[1] * b[0];
}

/// a x b (Featherstone's crm): (a_w x b_w, a_w x b_v + a_v x b_w).
template <class A, class B>
PHYDREAM_HD Six<Prod<A, B>> crm(const Six<A>& a, const Six<B>& b) {
  using R = Prod<A, B>;
  Six<R> r;
  R t[3];
  cross3(a.v, b.v, r.v);
  cross3(a.v, b.v + 3, r.v + 3);
  cross3(a.v + 3, b.v, t);
  for (int i = 0; i < 3; ++i) r.v[3 + i] += t[i];
  return r;
}

/// a x* f (Featherstone's crf = -crm^T): (a_w x f_t + a_v x f_f, a_w x f_f).
template <class A, class B>
PHYDREAM_HD Six<Prod<A, B>> crf(const Six<A>& a, const Six<B>& f) {
  using R = Prod<A, B>;
  Six<R> r;
  R t[3];
  cross3(a.v, f.v, r.v);
  cross3(a.v + 3, f.v + 3, t);
  for (int i = 0; i < 3; ++i) r.v[i] += t[i];
  cross3(a.v, f.v + 3, r.v + 3);
  return r;
}

/// I m for a spatial inertia in MuJoCo's 10-number layout (rot xx yy zz xy xz yz, mc, mass):
/// (I_o w + mc x v, mass v - mc x w), as spatial.h's inertia_mul.
template <class S, class X>
PHYDREAM_HD Six<X> inertia_mul(const S* in, const Six<X>& m) {
  Six<X> r;
  const X* w = m.v;
  const X* v = m.v + 3;
  r.v[0] = in[0] * w[0] + in[3] * w[1] + in[4] * w[2];
  r.v[1] = in[3] * w[0] + in[1] * w[1] + in[5] * w[2];
  r.v[2] = in[4] * w[0] + in[5] * w[1] + in[2] * w[2];
  X t[3];
  cross3(in + 6, v, t);
  for (int i = 0; i < 3; ++i) r.v[i] += t[i];
  cross3(in + 6, w, t);
  for (int i = 0; i < 3; ++i) r.v[3 + i] = in[9] * v[i] - t[i];
  return r;
}

// =============================================================================================
// SO(3): the rotation of a rotation vector and the right Jacobian, applied to tangents
//
//   R(phi)         = I + s1 [phi]x + s2 [phi]x^2,   s1 = sin t / t, s2 = (1 - cos t) / t^2
//   J_r(phi)^T     = I + s2 [phi]x + s3 [phi]x^2,   s3 = (t - sin t) / t^3
//   J_r(r)^-T      = I - 1/2 [r]x + c2 [r]x^2,      c2 = 1/t^2 - cos(t/2) / (2 t sin(t/2))
// with t = |phi| (Barfoot, "State Estimation for Robotics", sec. 7.1). exp(phi + d) =
// exp(phi) exp(J_r(phi) d); the log of exp(r) exp(d) is r + J_r(r)^-1 d.

template <class S>
struct So3Coef {
  S s1, s2, s3, c2;
};

// below this angle the closed forms cancel catastrophically; there the Taylor series, truncated
// after the t^4 term, is exact to rounding (next term ~ t^6 / 40320)
template <class S>
PHYDREAM_HD constexpr S series_angle() { return sizeof(S) == 4 ? S(0.25) : S(0.02); }

template <class S>
PHYDREAM_HD So3Coef<S> so3_coef(const S* phi) {
  const S t2 = phi[0] * phi[0] + phi[1] * phi[1] + phi[2] * phi[2];
  const S t = sqrt_(t2);
  So3Coef<S> c;
  if (t < series_angle<S>()) {
    const S t4 = t2 * t2;
    c.s1 = S(1) - t2 / S(6) + t4 / S(120);
    c.s2 = S(0.5) - t2 / S(24) + t4 / S(720);
    c.s3 = S(1) / S(6) - t2 / S(120) + t4 / S(5040);
    c.c2 = S(1) / S(12) + t2 / S(720) + t4 / S(30240);
  } else {
    S s, co, sh, ch;
    sincos_(t, &s, &co);
    sincos_(S(0.5) * t, &sh, &ch);
    c.s1 = s / t;
    c.s2 = (S(1) - co) / t2;
    c.s3 = (t - s) / (t2 * t);
    c.c2 = S(1) / t2 - ch / (S(2) * t * sh);
  }
  return c;
}

// out += w (g + a [phi]x g + b [phi]x^2 g), phi primal, g and out tangents
template <class S, class T>
PHYDREAM_HD void so3_apply_add(const S* phi, S a, S b, S w, const T* g, T* out) {
  T pg[3], ppg[3];
  cross3(phi, g, pg);
  cross3(phi, pg, ppg);
  for (int i = 0; i < 3; ++i) out[i] += w * (g[i] + a * pg[i] + b * ppg[i]);
}

// =============================================================================================
// the stage primal an acceleration adjoint reads

/// Pointers to what one forward() left behind (in a Data or a stored record) plus the inverse
/// dynamics with its acceleration (acc, frc), computed once by the primal pass.
template <class S>
struct StagePrimal {
  const S* qpos;      // position (nq)
  const S* qvel;      // velocity (nv)
  const S* ctrl;      // control (nu)
  const S* qacc;      // the solved acceleration: qacc, or Euler's qacc_euler (nv)
  const S* factor;    // L^T D L factor of the matrix it was solved with: qLD or qH (nv x nv)
  const S* diag_inv;  // 1 / D of that factor: qLDiagInv or qHDiagInv (nv)
  const S* cdof;      // (nv x 6)
  const S* cdof_dot;  // (nv x 6)
  const S* cinert;    // (nbody x 10)
  const S* cvel;      // (nbody x 6)
  const S* acc;       // body accelerations with qacc, gravity included (nbody x 6)
  const S* frc;       // subtree forces with qacc (nbody x 6)
};

// the inverse dynamics' primal with the acceleration included (mj_rne with flg_acc = 1):
//   a_b = a_parent + sum_{k in b} (cdof_dot_k v_k + cdof_k qacc_k),  a_world = (0, -gravity)
//   F_b = I_b a_b + v_b x* (I_b v_b) + sum_children F_c
// acc, frc: (nbody x 6) written
template <class S>
PHYDREAM_HD_STAGE void inverse_dynamics_primal(const ModelView<S>& m, const S* qvel, const S* qacc,
                                         const S* cdof, const S* cdof_dot, const S* cinert,
                                         const S* cvel, S* acc, S* frc) {
  const int nb = m.nbody;
  for (int i = 0; i < 6; ++i) acc[i] = frc[i] = S(0);
  if (!m.disabled(kDisableGravity)) {
    for (int i = 0; i < 3; ++i) acc[3 + i] = -m.gravity[i];
  }
  for (int b = 1; b < nb; ++b) {
    Six<S> ab = six_load(acc + 6 * m.body_parentid[b]);
    for (int k = m.body_dofadr[b]; k < m.body_dofadr[b] + m.body_dofnum[b]; ++k) {
      ab += scale(qvel[k], six_load(cdof_dot + 6 * k)) + scale(qacc[k], six_load(cdof + 6 * k));
    }
    six_store(acc + 6 * b, ab);
    const Six<S> v = six_load(cvel + 6 * b);
    six_store(frc + 6 * b, inertia_mul(cinert + 10 * b, ab) + crf(v, inertia_mul(cinert + 10 * b, v)));
  }
  for (int b = nb - 1; b > 0; --b) {
    const int par = m.body_parentid[b];
    if (par > 0) six_add_to(frc + 6 * par, six_load(frc + 6 * b));
  }
}

// Scalars of one stored RK4 stage: qpos, qvel, qacc, cdof, cdof_dot, cinert, cvel, qLD,
// qLDiagInv, acc, frc
template <class S>
PHYDREAM_HD int stage_record_size(const ModelView<S>& m) {
  return m.nq + 15 * m.nv + 28 * m.nbody + m.nv * m.nv;
}

// the stages of the model's integrator: Euler 1, RK4 4
template <class S>
PHYDREAM_HD int stage_count(const ModelView<S>& m) {
  return m.integrator == static_cast<int>(ModelIntegrator::rk4) ? 4 : 1;
}

// the record of RK4 stage s in primal_scratch, then nv Scalars of sum_s b_s X_s after the four;
// Euler: acc, frc (12 nbody), then the input qpos (nq), qvel (nv)
template <class S>
PHYDREAM_HD StagePrimal<S> stage_primal(const ModelView<S>& m, const Data<S>& d,
                                        const S* primal, int s) {
  const int nq = m.nq, nv = m.nv, nb = m.nbody;
  StagePrimal<S> p;
  p.ctrl = d.ctrl;
  if (stage_count(m) == 1) {
    // the forward() intermediates stay in d; only the state was overwritten by the update
    const bool implicit = detail::has_damping(m);
    p.acc = primal;
    p.frc = primal + 6 * nb;
    p.qpos = primal + 12 * nb;
    p.qvel = p.qpos + nq;
    p.qacc = d.qacc_euler;
    p.factor = implicit ? d.qH : d.qLD;
    p.diag_inv = implicit ? d.qHDiagInv : d.qLDiagInv;
    p.cdof = d.cdof;
    p.cdof_dot = d.cdof_dot;
    p.cinert = d.cinert;
    p.cvel = d.cvel;
    return p;
  }
  const S* at = primal + s * stage_record_size(m);
  p.qpos = at;
  p.qvel = p.qpos + nq;
  p.qacc = p.qvel + nv;
  p.cdof = p.qacc + nv;
  p.cdof_dot = p.cdof + 6 * nv;
  p.cinert = p.cdof_dot + 6 * nv;
  p.cvel = p.cinert + 10 * nb;
  p.factor = p.cvel + 6 * nb;
  p.diag_inv = p.factor + nv * nv;
  p.acc = p.diag_inv + nv;
  p.frc = p.acc + 6 * nb;
  return p;
}

// RK4: sum_s b_s X_s, the velocity the final position update integrates (nv)
template <class S>
PHYDREAM_HD const S* rk4_velocity_sum(const ModelView<S>& m, const S* primal) {
  return primal + 4 * stage_record_size(m);
}

// copies n Scalars to dst
template <class S>
PHYDREAM_HD void copy_n(S* dst, const S* src, int n) {
  for (int i = 0; i < n; ++i) dst[i] = src[i];
}

// An RK4 step of a model with constraints also records, after sum_s b_s X_s, each stage's
// solver warm start (4 nv) and the next state (nq + nv): the reverse sweep re-runs stage s's
// forward() from its record (the same solve, bit for bit) to have its constraint rows and
// Hessian factor in d, and then restores d as step() left it.
template <class S>
PHYDREAM_HD bool rk4_restores_stages(const ModelView<S>& m) {
  return stage_count(m) == 4 && m.nefc_max > 0;
}
template <class S>
PHYDREAM_HD S* rk4_warmstart(const ModelView<S>& m, S* primal, int s) {
  return primal + 4 * stage_record_size(m) + m.nv + s * m.nv;
}
template <class S>
PHYDREAM_HD const S* rk4_warmstart(const ModelView<S>& m, const S* primal, int s) {
  return primal + 4 * stage_record_size(m) + m.nv + s * m.nv;
}

// d <- stage s of the recorded RK4 step: its state and warm start, then forward()
template <class S>
PHYDREAM_HD_STAGE void rk4_restore_stage(const ModelView<S>& m, const Data<S>& d, const S* primal, int s) {
  const S* at = primal + s * stage_record_size(m);
  copy_n(d.qpos, at, m.nq);
  copy_n(d.qvel, at + m.nq, m.nv);
  copy_n(d.qacc_warmstart, rk4_warmstart(m, primal, s), m.nv);
  forward(m, d);
}

// d <- as step() left it: stage 3's forward() and the next state
template <class S>
PHYDREAM_HD_STAGE void rk4_restore_step(const ModelView<S>& m, const Data<S>& d, const S* primal) {
  rk4_restore_stage(m, d, primal, 3);
  const S* next = rk4_warmstart(m, primal, 4);
  copy_n(d.qpos, next, m.nq);
  copy_n(d.qvel, next + m.nq, m.nv);
}

// records RK4 stage s from d after its forward()
template <class S>
PHYDREAM_HD_STAGE void store_stage(const ModelView<S>& m, const Data<S>& d, S* primal, int s) {
  const int nq = m.nq, nv = m.nv, nb = m.nbody;
  S* at = primal + s * stage_record_size(m);
  S* qvel = at + nq;
  S* qacc = qvel + nv;
  S* cdof = qacc + nv;
  S* cdof_dot = cdof + 6 * nv;
  S* cinert = cdof_dot + 6 * nv;
  S* cvel = cinert + 10 * nb;
  S* factor = cvel + 6 * nb;
  S* diag_inv = factor + nv * nv;
  S* acc = diag_inv + nv;
  copy_n(at, d.qpos, nq);
  copy_n(qvel, d.qvel, nv);
  copy_n(qacc, d.qacc, nv);
  copy_n(cdof, d.cdof, 6 * nv);
  copy_n(cdof_dot, d.cdof_dot, 6 * nv);
  copy_n(cinert, d.cinert, 10 * nb);
  copy_n(cvel, d.cvel, 6 * nb);
  copy_n(factor, d.qLD, nv * nv);
  copy_n(diag_inv, d.qLDiagInv, nv);
  inverse_dynamics_primal(m, d.qvel, d.qacc, d.cdof, d.cdof_dot, d.cinert, d.cvel, acc, acc + 6 * nb);
}

// =============================================================================================
// passive forces (mj_passive): springs about qpos_spring and dof damping
//   hinge/slide, free translation:  f = -k (q - q_spring)
//   ball, free rotation:            f = -k r, r = log(q_spring^-1 q), so df = -k J_r(r)^-1 dq
//   every dof:                      f -= damping v

/// Accumulates g_qpos (nv, tangent) and g_qvel (nv) from the cotangent g_frc (nv) of
/// qfrc_passive at position qpos (nq).
template <class S, class T>
PHYDREAM_HD_STAGE void passive_vjp(const ModelView<S>& m, const S* qpos, T* g_qpos, T* g_qvel,
                             const T* g_frc) {
  if (m.disabled(kDisablePassive)) return;
  for (int j = 0; j < m.njnt; ++j) {
    const int qa = m.jnt_qposadr[j], da = m.jnt_dofadr[j], type = m.jnt_type[j];
    const S k = m.jnt_stiffness[j];
    if (k == S(0)) continue;
    int rot_q = qa, rot_d = da;
    if (type == static_cast<int>(JointType::free)) {
      for (int c = 0; c < 3; ++c) g_qpos[da + c] += (-k) * g_frc[da + c];
      rot_q = qa + 3;
      rot_d = da + 3;
    }
    if (type == static_cast<int>(JointType::free) || type == static_cast<int>(JointType::ball)) {
      const Vec3<S> r = quat_sub(load_quat(qpos + rot_q), load_quat(m.qpos_spring + rot_q));
      const So3Coef<S> c = so3_coef(r.v);
      // J_r(r)^-T g = g - 1/2 r x g + c2 r x (r x g)
      so3_apply_add(r.v, S(-0.5), c.c2, -k, g_frc + rot_d, g_qpos + rot_d);
    } else {
      g_qpos[da] += (-k) * g_frc[da];
    }
  }
  for (int i = 0; i < m.nv; ++i) g_qvel[i] += (-m.dof_damping[i]) * g_frc[i];
}

// =============================================================================================
// actuation (mj_fwdActuation, motors): force = clamp(ctrl) when ctrllimited, qfrc_actuator at
// the joint's dof += gear force. The clamp passes the derivative strictly inside the range
// (lo < ctrl < hi) and stops it outside and on the bounds, where a one-sided derivative is 0.

template <class S>
PHYDREAM_HD bool ctrl_passes(const ModelView<S>& m, int a, S ctrl) {
  if (!m.actuator_ctrllimited[a] || m.disabled(kDisableClampctrl)) return true;
  return ctrl > m.actuator_ctrlrange[2 * a] && ctrl < m.actuator_ctrlrange[2 * a + 1];
}

/// Accumulates g_ctrl (nu) from the cotangent g_frc (nv) of qfrc_actuator at control ctrl (nu).
template <class S, class T>
PHYDREAM_HD_STAGE void actuation_vjp(const ModelView<S>& m, const S* ctrl, T* g_ctrl, const T* g_frc) {
  if (m.disabled(kDisableActuation)) return;
  for (int a = 0; a < m.nu; ++a) {
    if (!ctrl_passes(m, a, ctrl[a])) continue;
    g_ctrl[a] += m.actuator_gear[a] * g_frc[m.jnt_dofadr[m.actuator_trnid[a]]];
  }
}

// =============================================================================================
// inverse dynamics tau = M(q) qacc + C(q, v) (mj_crb's mass matrix times qacc plus mj_rne's bias,
// armature left out: it does not depend on q or v), reversed at fixed qacc.
//
// Forward, in MuJoCo's com-based frame (origin held fixed, see the header):
//   v_b   = v_parent + sum_{k in b} cdof_k v_k              (cvel; velocity before a joint: vpre)
//   cdof_dot_k = vpre(k) x cdof_k                           (0 for free translations)
//   a_b   = a_parent + sum_{k in b} (cdof_dot_k v_k + cdof_k qacc_k),  a_world = (0, -gravity)
//   f_b   = I_b a_b + v_b x* (I_b v_b),   F_b = f_b + sum_{children} F_c
//   tau_k = cdof_k . F_b(k)
// Reverse, with rho = sign * g_tau the cotangent of tau:
//   mu_b    = mu_parent + sum_{k in b} rho_k cdof_k              (cotangent of F_b and f_b)
//   alpha_b = I_b mu_b + sum_children alpha_c                    (cotangent of a_b)
//   nu_b    = -(mu x* I v) + I (mu x v) + sum_children nu_(c, at vparent)   (cotangent of v_b)
//   g_v_k  += cdof_dot_k . alpha_b + cdof_k . nu(after k's joint)
//   g_cdof_k = rho_k F_b + qacc_k alpha_b + v_k nu - vpre x* beta_k,   beta_k = v_k alpha_b
//   nu(vpre) = nu + sum_{k in joint} cdof_k x* beta_k
//   deposits: body b  -(mu x* I a) - (a x* I mu) - (u x* I v) - (v x* I u),  u = mu x v
//             (for y = I m with cotangent u: -(u x* I m) - (m x* I u)), and per dof
//             cdof_k x* g_cdof_k (free translations excluded: their cdof is fixed)
//   g_q_k  += cdof_k . (deposits of body b(k) and its subtree, and of the cdofs k moves)

// the dofs of joint j that share one motion-axis rule ("group"): a free joint's translations
// and its rotations, a ball's three rotations, a hinge's or slide's single dof
template <class S>
PHYDREAM_HD int joint_dofs(const ModelView<S>& m, int j) {
  const int type = m.jnt_type[j];
  return type == static_cast<int>(JointType::free) ? 6 : type == static_cast<int>(JointType::ball) ? 3 : 1;
}

/// Accumulates g_qpos (nv, tangent) and g_qvel (nv) from the cotangent sign * g_tau (nv) of the
/// inverse dynamics at the stage primal p (with its acceleration p.qacc, p.acc, p.frc).
/// Adjoint scratch in a: cfrc_body (mu), cacc (alpha), cvel (nu), crb (first 6 nbody: the
/// per-body deposit sums).
template <class S, class T>
PHYDREAM_HD_STAGE void inverse_dynamics_vjp(const ModelView<S>& m, const StagePrimal<S>& p,
                                      const Data<T>& a, T* g_qpos, T* g_qvel, const T* g_tau,
                                      S sign) {
  const int nb = m.nbody;
  T* mu = a.cfrc_body;
  T* alpha = a.cacc;
  T* nu = a.cvel;
  T* dep = a.crb;

  // roots to leaves: mu_b; the subtree sums start empty
  for (int i = 0; i < 6; ++i) mu[i] = alpha[i] = nu[i] = dep[i] = tangent_zero<T>();
  for (int b = 1; b < nb; ++b) {
    const int par = m.body_parentid[b];
    Six<T> mb = par > 0 ? six_load(mu + 6 * par) : six_zero<T>();
    for (int k = m.body_dofadr[b]; k < m.body_dofadr[b] + m.body_dofnum[b]; ++k) {
      mb += scale(sign * g_tau[k], six_load(p.cdof + 6 * k));
    }
    six_store(mu + 6 * b, mb);
    for (int i = 0; i < 6; ++i) alpha[6 * b + i] = nu[6 * b + i] = dep[6 * b + i] = tangent_zero<T>();
  }

  // leaves to roots: every cotangent of body b and its dofs
  for (int b = nb - 1; b > 0; --b) {
    const int par = m.body_parentid[b];
    const S* in = p.cinert + 10 * b;
    const Six<S> v = six_load(p.cvel + 6 * b);
    const Six<S> ab = six_load(p.acc + 6 * b);
    const Six<S> fb = six_load(p.frc + 6 * b);
    const Six<S> iv = inertia_mul(in, v);
    const Six<S> ia = inertia_mul(in, ab);

    // reverse of f_b = I a + v x* (I v)
    const Six<T> mb = six_load(mu + 6 * b);
    const Six<T> imu = inertia_mul(in, mb);
    const Six<T> u = crm(mb, v);  // cotangent of I v carried by v x* (.)
    const Six<T> iu = inertia_mul(in, u);
    const Six<T> al = six_load(alpha + 6 * b) + imu;
    Six<T> nub = six_load(nu + 6 * b) - crf(mb, iv) + iu;
    Six<T> h = six_load(dep + 6 * b) - crf(mb, ia) - crf(ab, imu) - crf(u, iv) - crf(v, iu);

    // the body's joints, last first; within a body, vpre of a joint is the parent's velocity
    // plus the earlier joints' contributions
    const int ja = m.body_jntadr[b], jn = m.body_jntnum[b];
    for (int j = ja + jn - 1; j >= ja; --j) {
      const int da = m.jnt_dofadr[j];
      const int nd = joint_dofs(m, j);
      const bool is_free = m.jnt_type[j] == static_cast<int>(JointType::free);
      // a free joint has two groups: rotations (da + 3..5), then translations (da..da + 2)
      for (int grp = is_free ? 1 : 0; grp >= 0; --grp) {
        const int k0 = is_free ? da + 3 * grp : da;
        const int k1 = is_free ? k0 + 3 : da + nd;
        const bool fixed_axes = is_free && grp == 0;  // free translations: cdof constant, cdof_dot 0
        Six<T> nu_pre = nub;
        Six<T> g_dep = six_zero<T>();
        if (fixed_axes) {
          for (int k = k0; k < k1; ++k) g_qvel[k] += dot6(six_load(p.cdof + 6 * k), nub);
        } else {
          Six<S> vpre = six_load(p.cvel + 6 * par);
          for (int k = m.body_dofadr[b]; k < k0; ++k) vpre += scale(p.qvel[k], six_load(p.cdof + 6 * k));
          for (int k = k0; k < k1; ++k) {
            const Six<S> cd = six_load(p.cdof + 6 * k);
            g_qvel[k] += dot6(six_load(p.cdof_dot + 6 * k), al) + dot6(cd, nub);
            const Six<T> bk = scale(p.qvel[k], al);  // cotangent of cdof_dot_k
            const Six<T> gc = scale(sign * g_tau[k], fb) + scale(p.qacc[k], al) +
                              scale(p.qvel[k], nub) - crf(vpre, bk);  // cotangent of cdof_k
            nu_pre += crf(cd, bk);
            g_dep += crf(cd, gc);
          }
        }
        nub = nu_pre;
        // deposits of this group's axes are moved by the group and everything before it
        h += g_dep;
        for (int k = k1 - 1; k >= k0; --k) g_qpos[k] += dot6(six_load(p.cdof + 6 * k), h);
      }
    }
    if (par > 0) {
      six_add_to(alpha + 6 * par, al);
      six_add_to(nu + 6 * par, nub);
      six_add_to(dep + 6 * par, h);
    }
  }
}

// =============================================================================================
// the generalized force f = passive - bias + actuator and the acceleration of one stage

/// Reverse mode of f(q, v, u) - M(q) a, a held at the stage's acceleration: accumulates g_qpos
/// (nv, tangent), g_qvel (nv) and g_ctrl (nu) from lam (nv), the cotangent of f.
template <class S, class T>
PHYDREAM_HD_STAGE void force_vjp(const ModelView<S>& m, const StagePrimal<S>& p, const Data<T>& a,
                           T* g_qpos, T* g_qvel, T* g_ctrl, const T* lam) {
  passive_vjp(m, p.qpos, g_qpos, g_qvel, lam);
  actuation_vjp(m, p.ctrl, g_ctrl, lam);
  inverse_dynamics_vjp(m, p, a, g_qpos, g_qvel, lam, S(-1));
}

// the inverse-dynamics primal of the constrained acceleration qacc, recorded after the Euler
// stage's when the step integrates damping implicitly (qacc_euler != qacc) and the model has
// constraints: acc, frc (12 nbody)
template <class S>
PHYDREAM_HD bool records_constrained_acc(const ModelView<S>& m) {
  return stage_count(m) == 1 && m.nefc_max > 0 && detail::has_damping(m);
}

/// Reverse mode of the whole stage force f = qfrc_smooth + qfrc_constraint - H a (a held at
/// the stage's acceleration): force_vjp, plus, when the stage made constraint rows, the
/// implicit-function-theorem adjoint of qfrc_constraint (engine/constraint_vjp.h):
///   <lam, dqfrc_constraint> = <lam_c - lam, dqfrc_smooth - dM qacc> + <lam_c, P>,
///   lam_c = sol_H^-1 M lam,
/// the first term a second force_vjp with the acceleration held at the constrained qacc (the
/// same as the stage's unless Euler integrates damping implicitly), the second constraints_vjp.
/// d must hold the stage's forward() (for RK4 with constraints: rk4_restore_stage first).
/// Adjoint scratch in a: qacc_smooth (lam_c), qfrc_constraint, and what force_vjp and
/// constraints_vjp use.
template <class S, class T>
PHYDREAM_HD_STAGE void stage_force_vjp(const ModelView<S>& m, const Data<S>& d, const S* primal,
                                 const StagePrimal<S>& p, const Data<T>& a, T* g_qpos,
                                 T* g_qvel, T* g_ctrl, const T* lam) {
  const int nv = m.nv;
  const int nefc = m.nefc_max > 0 ? static_cast<int>(d.nefc[0]) : 0;
  if (nefc == 0) {
    force_vjp(m, p, a, g_qpos, g_qvel, g_ctrl, lam);
    return;
  }
  T* lc = a.qacc_smooth;
  for (int i = 0; i < nv; ++i) {
    T v = tangent_zero<T>();
    for (int k = 0; k < nv; ++k) v += d.qM[nv * i + k] * lam[k];
    lc[i] = v;
  }
  detail::cholesky_solve(d.sol_H, nv, lc);
  if (records_constrained_acc(m)) {
    force_vjp(m, p, a, g_qpos, g_qvel, g_ctrl, lam);
    StagePrimal<S> pc = p;
    pc.qacc = d.qacc;
    pc.acc = primal + 12 * m.nbody + m.nq + nv;
    pc.frc = pc.acc + 6 * m.nbody;
    T* diff = a.qfrc_constraint;
    for (int i = 0; i < nv; ++i) diff[i] = lc[i] - lam[i];
    force_vjp(m, pc, a, g_qpos, g_qvel, g_ctrl, diff);
  } else {
    force_vjp(m, p, a, g_qpos, g_qvel, g_ctrl, lc);
  }
  constraints_vjp(m, d, p.qvel, p.cdof, a, g_qpos, g_qvel, lc);
}

// the stage adjoint of the plain VJP: stage_force_vjp on the stage's primal
template <class S, class T>
struct ForceAdjoint {
  const ModelView<S>& m;
  const Data<S>& d;
  const S* primal;
  const Data<T>& a;
  PHYDREAM_HD void operator()(const StagePrimal<S>& p, int stage, T* g_qpos, T* g_qvel,
                              T* g_ctrl, const T* lam) const {
    if (rk4_restores_stages(m)) rk4_restore_stage(m, d, primal, stage);
    stage_force_vjp(m, d, primal, p, a, g_qpos, g_qvel, g_ctrl, lam);
  }
};

/// Reverse mode of the stage acceleration a(q, v, u) (qacc, or Euler's qacc_euler when the stage
/// solved with qH): accumulates g_qpos (nv, tangent), g_qvel (nv) and g_ctrl (nu) from g_qacc
/// (nv). The solve x = H^-1 b has H symmetric, so the cotangent of b is H^-1 g, the same solve
/// (smooth.h) on K right-hand sides; the cotangent of H goes through the inverse dynamics.
/// `stage_adjoint(p, stage, g_qpos, g_qvel, g_ctrl, lam)` pulls lam = H^-1 g_qacc back.
/// Adjoint scratch in a: qacc (lam).
template <class S, class T, class StageAdjoint>
PHYDREAM_HD_STAGE void acceleration_vjp(const ModelView<S>& m, const StagePrimal<S>& p, int stage,
                                  const Data<T>& a, const StageAdjoint& stage_adjoint, T* g_qpos,
                                  T* g_qvel, T* g_ctrl, const T* g_qacc) {
  T* lam = a.qacc;
  if (lam != g_qacc) {
    for (int i = 0; i < m.nv; ++i) lam[i] = g_qacc[i];
  }
  solve_ltdl(m, p.factor, p.diag_inv, lam);
  stage_adjoint(p, stage, g_qpos, g_qvel, g_ctrl, lam);
}

// =============================================================================================
// integrate_pos: qpos' = qpos (+) h qvel

/// Reverse mode of integrate_pos(m, qpos, qvel, h) in tangent coordinates: accumulates g_qpos
/// (nv) and g_qvel (nv) from g_qpos_next (nv), given the integrated velocity qvel (nv).
/// Per ball or free rotation, with phi = h w: g_q += R(phi) g', g_w += h J_r(phi)^T g'.
template <class S, class T>
PHYDREAM_HD_STAGE void integrate_pos_vjp(const ModelView<S>& m, const S* qvel, S h, T* g_qpos,
                                   T* g_qvel, const T* g_qpos_next) {
  for (int j = 0; j < m.njnt; ++j) {
    const int type = m.jnt_type[j];
    int da = m.jnt_dofadr[j];
    if (type == static_cast<int>(JointType::free)) {
      for (int c = 0; c < 3; ++c) {
        g_qpos[da + c] += g_qpos_next[da + c];
        g_qvel[da + c] += h * g_qpos_next[da + c];
      }
      da += 3;
    }
    if (type == static_cast<int>(JointType::free) || type == static_cast<int>(JointType::ball)) {
      const S phi[3] = {h * qvel[da], h * qvel[da + 1], h * qvel[da + 2]};
      const So3Coef<S> c = so3_coef(phi);
      so3_apply_add(phi, c.s1, c.s2, S(1), g_qpos_next + da, g_qpos + da);
      so3_apply_add(phi, c.s2, c.s3, h, g_qpos_next + da, g_qvel + da);
    } else {
      g_qpos[da] += g_qpos_next[da];
      g_qvel[da] += h * g_qpos_next[da];
    }
  }
}

// =============================================================================================
// the reverse sweep of a recorded step

/// Reverse mode of the integrator over the stage primals recorded by step_vjp_primal, each
/// stage's force adjoint delegated to stage_adjoint (see acceleration_vjp). Accumulates g_qpos,
/// g_qvel (nv) and g_ctrl (nu) from g_qpos_next, g_qvel_next (nv).
/// Adjoint scratch in a: qvel, qfrc_passive, qfrc_smooth, qfrc_bias, qacc_euler, rk_qvel,
/// rk_dqpos, rk_dqvel, and what stage_adjoint uses.
template <class S, class T, class StageAdjoint>
PHYDREAM_HD_STAGE void step_sweep(const ModelView<S>& m, const Data<S>& d, const S* primal,
                            const Data<T>& a, const StageAdjoint& stage_adjoint,
                            const T* g_qpos_next, const T* g_qvel_next, T* g_qpos, T* g_qvel,
                            T* g_ctrl) {
  const int nv = m.nv;
  const S h = m.timestep;

  if (stage_count(m) == 1) {
    // Euler: qpos' = qpos (+) h qvel' (d.qvel holds qvel'), qvel' = qvel + h qacc_e
    T* g_vn = a.qvel;           // cotangent of qvel'
    T* g_acc = a.qfrc_passive;  // cotangent of qacc_e
    for (int i = 0; i < nv; ++i) g_vn[i] = g_qvel_next[i];
    integrate_pos_vjp(m, d.qvel, h, g_qpos, g_vn, g_qpos_next);
    for (int i = 0; i < nv; ++i) {
      g_qvel[i] += g_vn[i];
      g_acc[i] = h * g_vn[i];
    }
    acceleration_vjp(m, stage_primal(m, d, primal, 0), 0, a, stage_adjoint, g_qpos, g_qvel,
                     g_ctrl, g_acc);
    return;
  }

  // RK4: x' = (qpos0 (+) h sum b_s X_s, qvel0 + h sum b_s F_s), X_s the stage velocity, F_s the
  // stage acceleration; stage s > 0 runs at (qpos0 (+) a_s h X_(s-1), qvel0 + a_s h F_(s-1))
  T* g_dx = a.rk_dqpos;       // cotangent of sum b_s X_s
  T* g_df = a.rk_dqvel;       // cotangent of sum b_s F_s
  T* carry_x = a.rk_qvel;     // cotangent of X_s from stage s + 1's position
  T* carry_f = a.qacc_euler;  // cotangent of F_s from stage s + 1's velocity
  T* g_f = a.qfrc_passive;    // cotangent of F_s in total
  T* tq = a.qfrc_smooth;      // stage position cotangent (tangent at the stage position)
  T* tv = a.qfrc_bias;        // stage velocity cotangent
  for (int i = 0; i < nv; ++i) {
    g_dx[i] = tangent_zero<T>();
    g_df[i] = h * g_qvel_next[i];
    g_qvel[i] += g_qvel_next[i];
    carry_x[i] = tangent_zero<T>();
    carry_f[i] = tangent_zero<T>();
  }
  integrate_pos_vjp(m, rk4_velocity_sum(m, primal), h, g_qpos, g_dx, g_qpos_next);
  for (int s = 3; s >= 0; --s) {
    const StagePrimal<S> p = stage_primal(m, d, primal, s);
    for (int i = 0; i < nv; ++i) {
      g_f[i] = detail::rk4_b<S>(s) * g_df[i] + carry_f[i];
      tq[i] = tangent_zero<T>();
      tv[i] = detail::rk4_b<S>(s) * g_dx[i] + carry_x[i];
    }
    acceleration_vjp(m, p, s, a, stage_adjoint, tq, tv, g_ctrl, g_f);
    if (s == 0) {
      for (int i = 0; i < nv; ++i) {
        g_qpos[i] += tq[i];
        g_qvel[i] += tv[i];
      }
      break;
    }
    // stage s started at qpos0 (+) a h X_(s-1), qvel0 + a h F_(s-1)
    const S ah = detail::rk4_a<S>(s - 1) * h;
    for (int i = 0; i < nv; ++i) {
      g_qvel[i] += tv[i];
      carry_f[i] = ah * tv[i];
      carry_x[i] = tangent_zero<T>();
    }
    integrate_pos_vjp(m, stage_primal(m, d, primal, s - 1).qvel, ah, g_qpos, carry_x, tq);
  }
}

}  // namespace adjoint

// =============================================================================================
// the step

/// Scalars of primal_scratch (a function of the model's sizes and integrator):
///   Euler: 12 nbody + nq + nv   (inverse-dynamics primal, the input state; the other stage
///                                primals stay in d), and 12 nbody more when the constrained
///                                acceleration differs from the integrated one
///                                (records_constrained_acc)
///   RK4:   4 (nq + 15 nv + 28 nbody + nv^2) + nv   (per stage qpos, qvel, qacc, cdof, cdof_dot,
///                                cinert, cvel, qLD, qLDiagInv and the inverse-dynamics primal;
///                                then the weighted stage velocity), and with constraints
///                                5 nv + nq more (the stages' warm starts, the next state)
template <class S>
PHYDREAM_HD int vjp_scratch_size(const ModelView<S>& m) {
  if (adjoint::stage_count(m) == 4) {
    return 4 * adjoint::stage_record_size(m) + m.nv +
           (adjoint::rk4_restores_stages(m) ? 5 * m.nv + m.nq : 0);
  }
  return 12 * m.nbody + m.nq + m.nv + (adjoint::records_constrained_acc(m) ? 12 * m.nbody : 0);
}

/// The primal half of step_vjp: step() on d (input state in, next state out, bit for bit as
/// step()), recording in primal_scratch (vjp_scratch_size(m) Scalars) what the reverse sweeps
/// read. Any number of step_vjp_sweep calls may follow, as long as d is not modified in between
/// (Euler's stage intermediates stay in d; an RK4 sweep with constraints re-runs the stages in d
/// and restores it). record_constrained = false skips the constrained acceleration's inverse
/// dynamics (records_constrained_acc), which only the reverse sweeps read.
template <class S>
PHYDREAM_HD_STAGE void step_vjp_primal(const ModelView<S>& m, const Data<S>& d, S* primal_scratch,
                                       bool record_constrained = true) {
  const int nq = m.nq, nv = m.nv, nb = m.nbody;
  const S h = m.timestep;
  if (adjoint::stage_count(m) == 1) {
    // forward() at the input, then MuJoCo's Euler update as forward.h's step()
    adjoint::copy_n(primal_scratch + 12 * nb, d.qpos, nq);
    adjoint::copy_n(primal_scratch + 12 * nb + nq, d.qvel, nv);
    forward(m, d);
    detail::euler_acceleration(m, d);
    adjoint::inverse_dynamics_primal(m, d.qvel, d.qacc_euler, d.cdof, d.cdof_dot, d.cinert, d.cvel,
                                     primal_scratch, primal_scratch + 6 * nb);
    if (record_constrained && adjoint::records_constrained_acc(m)) {
      S* acc = primal_scratch + 12 * nb + nq + nv;
      adjoint::inverse_dynamics_primal(m, d.qvel, d.qacc, d.cdof, d.cdof_dot, d.cinert, d.cvel, acc, acc + 6 * nb);
    }
    for (int i = 0; i < nv; ++i) d.qvel[i] += d.qacc_euler[i] * h;
    integrate_pos(m, d.qpos, d.qvel, h);
    d.time[0] += h;
    return;
  }

  // RK4: forward.h's step(), each stage recorded after its forward()
  const bool restores = adjoint::rk4_restores_stages(m);
  if (restores) adjoint::copy_n(adjoint::rk4_warmstart(m, primal_scratch, 0), d.qacc_warmstart, nv);
  forward(m, d);
  adjoint::store_stage(m, d, primal_scratch, 0);
  for (int i = 0; i < nq; ++i) d.rk_qpos[i] = d.qpos[i];
  for (int i = 0; i < nv; ++i) {
    d.rk_qvel[i] = d.qvel[i];
    d.rk_dqpos[i] = detail::rk4_b<S>(0) * d.qvel[i];
    d.rk_dqvel[i] = detail::rk4_b<S>(0) * d.qacc[i];
  }
  for (int s = 1; s < 4; ++s) {
    const S c = detail::rk4_a<S>(s - 1);
    for (int i = 0; i < nq; ++i) d.qpos[i] = d.rk_qpos[i];
    for (int i = 0; i < nv; ++i) d.qvel[i] = c * d.qvel[i];
    integrate_pos(m, d.qpos, d.qvel, h);
    for (int i = 0; i < nv; ++i) d.qvel[i] = d.rk_qvel[i] + (c * d.qacc[i]) * h;
    if (restores) adjoint::copy_n(adjoint::rk4_warmstart(m, primal_scratch, s), d.qacc_warmstart, nv);
    forward(m, d);
    adjoint::store_stage(m, d, primal_scratch, s);
    const S b = detail::rk4_b<S>(s);
    for (int i = 0; i < nv; ++i) {
      d.rk_dqpos[i] += b * d.qvel[i];
      d.rk_dqvel[i] += b * d.qacc[i];
    }
  }
  adjoint::copy_n(primal_scratch + 4 * adjoint::stage_record_size(m), d.rk_dqpos, nv);
  for (int i = 0; i < nq; ++i) d.qpos[i] = d.rk_qpos[i];
  integrate_pos(m, d.qpos, d.rk_dqpos, h);
  for (int i = 0; i < nv; ++i) d.qvel[i] = d.rk_qvel[i] + d.rk_dqvel[i] * h;
  d.time[0] += h;
  if (restores) {
    S* next = adjoint::rk4_warmstart(m, primal_scratch, 4);
    adjoint::copy_n(next, d.qpos, nq);
    adjoint::copy_n(next + nq, d.qvel, nv);
  }
}

/// The reverse half of step_vjp: K cotangents of the step recorded by step_vjp_primal (d and
/// primal_scratch as it left them). Accumulates g_qpos (nv, tangent), g_qvel (nv) and g_ctrl
/// (nu) from g_qpos_next, g_qvel_next (nv). a: adjoint Data over data_layout(m) (scratch).
template <class S, int K>
PHYDREAM_HD_STAGE void step_vjp_sweep(const ModelView<S>& m, const Data<S>& d, const S* primal_scratch,
                                const Data<Vec<S, K>>& a, const Vec<S, K>* g_qpos_next,
                                const Vec<S, K>* g_qvel_next, Vec<S, K>* g_qpos,
                                Vec<S, K>* g_qvel, Vec<S, K>* g_ctrl) {
  const adjoint::ForceAdjoint<S, Vec<S, K>> force{m, d, primal_scratch, a};
  adjoint::step_sweep(m, d, primal_scratch, a, force, g_qpos_next, g_qvel_next, g_qpos, g_qvel,
                      g_ctrl);
  if (adjoint::rk4_restores_stages(m)) adjoint::rk4_restore_step(m, d, primal_scratch);
}

/// Reverse mode of step(): with x = [qpos, qvel] and x' = step(x, ctrl), accumulates
/// g_qpos (nv, tangent) += (dqpos'/dqpos)^T g_qpos_next + (dqvel'/dqpos)^T g_qvel_next,
/// g_qvel (nv) and g_ctrl (nu) likewise, for K cotangents at once (entry-wise Vec<S, K>).
/// d: the input state (qpos, qvel, ctrl) on entry; on exit the next state, exactly as step()
/// leaves it. primal_scratch: vjp_scratch_size(m) Scalars. a: adjoint Data over
/// data_layout(m) (its contents are scratch). step_vjp_primal + step_vjp_sweep.
template <class S, int K>
PHYDREAM_HD_STAGE void step_vjp(const ModelView<S>& m, const Data<S>& d, S* primal_scratch,
                          const Data<Vec<S, K>>& a, const Vec<S, K>* g_qpos_next,
                          const Vec<S, K>* g_qvel_next, Vec<S, K>* g_qpos, Vec<S, K>* g_qvel,
                          Vec<S, K>* g_ctrl) {
  step_vjp_primal(m, d, primal_scratch);
  step_vjp_sweep<S, K>(m, d, primal_scratch, a, g_qpos_next, g_qvel_next, g_qpos, g_qvel, g_ctrl);
}

}  // namespace phydream

#include "engine/constraint_vjp.h"  // IWYU pragma: keep (constraints_vjp's definition)
