// Forward mode (JVP) of the contact-free step: hand-written tangent sweeps of every stage of
// engine/smooth.h and of the integrators of engine/forward.h, carrying K directions at once.
//
// Tangent convention (MuJoCo's mjd_transitionFD, see the contract): the state tangent is
// dx = (dqpos (nv), dqvel (nv)); a hinge or slide coordinate's tangent is its derivative, a free
// joint's position tangent is the world-frame displacement, and a ball or free quaternion's
// tangent is the rotation vector r in the joint's (child) frame: q(eps) = q exp(eps r), i.e.
// integrate_pos(qpos, eps dqpos, 1). Output tangents are in the same coordinates at the next
// state.
//
// The tangent workspace is a Data<T> over the model's DataLayout, T = Vec<S, K> (engine/small_vec.h),
// one T per Data entry (layout.size T's = layout.size * K scalars per environment):
//   - every field holds the directional derivative of the same field of the primal Data, with
//     these exceptions:
//   - qpos: entries [0, nv) hold the tangent of qpos in tangent coordinates (indexed by dof),
//     rk_qpos likewise (the step start); entries [nv, nq) are unused
//   - qM: both triangles written, like the primal; qLD, qLDiagInv, qH, qHDiagInv are unused: the
//     factorisations' tangents are folded into the solves, d(M^-1 f) = M^-1 (df - dM M^-1 f)
//   - qacc_euler: the tangent of the Euler step's acceleration; rk_qvel, rk_dqpos, rk_dqvel the
//     tangents of the RK4 bookkeeping (rk_dqpos in tangent coordinates; the Euler step uses it as
//     scratch for the next position's tangent)
// So the tangent workspace of one environment is data_layout(m).size entries of Vec<S, K>; no
// other scratch is needed (the primal workspace is the Data<S> of step()).
//
// Each stage X of smooth.h has X_jvp(m, d, t): it reads the primal Data d after X (and the
// stages before it) and the tangents of X's inputs in t, and overwrites the tangents of X's
// outputs in t: kinematics_jvp, com_pos_jvp, crb_jvp, com_vel_jvp, passive_jvp, rne_jvp,
// actuation_jvp, acceleration_jvp (which also stands for factor_m), chained by forward_jvp;
// then euler_acceleration_jvp and integrate_pos_jvp for the integrators. forward_jvp skips the
// position stages (writing zeros) when every position tangent is zero, as in the Jacobian
// columns of velocities and controls. Nothing allocates.
//
// step_jvp() computes the primal step exactly as step() does (bit for bit) and the K tangents
// along with it, one primal pass.
#pragma once

#include "engine/constraint_jvp.h"
#include "engine/forward.h"
#include "engine/small_vec.h"

namespace phydream {

namespace detail {

// ---------------------------------------------------------------------------------------------
// mixed primal (S) / tangent (T) products of the spatial algebra; the tangent is linear in its
// argument, the primal factor is a value

/// a x b of 3-vectors, any element types.
template <class R, class A, class B>
PHYDREAM_HD void cross3_any(R* res, const A* a, const B* b) {
  res[0] = a[1] * b[2] - a[2] * b[1];
  res[1] = a[2] * b[0] - a[0] * b[2];
  res[2] = a[0] * b[1] - a[1] * b[0];
}

/// Hamilton product of quaternions stored as 4 entries (w, x, y, z), any element types.
template <class R, class A, class B>
PHYDREAM_HD void quat_mul_any(R* res, const A* a, const B* b) {
  res[0] = a[0] * b[0] - a[1] * b[1] - a[2] * b[2] - a[3] * b[3];
  res[1] = a[0] * b[1] + a[1] * b[0] + a[2] * b[3] - a[3] * b[2];
  res[2] = a[0] * b[2] - a[1] * b[3] + a[2] * b[0] + a[3] * b[1];
  res[3] = a[0] * b[3] + a[1] * b[2] - a[2] * b[1] + a[3] * b[0];
}

template <class S>
PHYDREAM_HD void quat_array(S* a, const Quat<S>& q) {
  a[0] = q.w;
  a[1] = q.x;
  a[2] = q.y;
  a[3] = q.z;
}

/// d(a b) = da b + a db for primal quaternions a, b and tangents da, db.
template <class S, class T>
PHYDREAM_HD void quat_mul_jvp(const Quat<S>& a, const T* da, const Quat<S>& b, const T* db, T* res) {
  S pa[4], pb[4];
  quat_array(pa, a);
  quat_array(pb, b);
  T x[4], y[4];
  quat_mul_any(x, da, pb);
  quat_mul_any(y, pa, db);
  for (int k = 0; k < 4; ++k) res[k] = x[k] + y[k];
}

/// d(a b) with b constant.
template <class S, class T>
PHYDREAM_HD void quat_mul_jvp_left(const T* da, const Quat<S>& b, T* res) {
  S pb[4];
  quat_array(pb, b);
  quat_mul_any(res, da, pb);
}

/// The tangent of q exp(r) at r = 0 along dr: q (0, dr / 2).
template <class S, class T>
PHYDREAM_HD void quat_local_jvp(const Quat<S>& q, const T* dr, T* res) {
  S pq[4];
  quat_array(pq, q);
  const T half[4] = {tangent_zero<T>(), S(0.5) * dr[0], S(0.5) * dr[1], S(0.5) * dr[2]};
  quat_mul_any(res, pq, half);
}

/// The local rotation vector of a quaternion tangent: 2 Im(conj(q) dq) (q unit).
template <class S, class T>
PHYDREAM_HD void quat_local_from_jvp(const Quat<S>& q, const T* dq, T* dr) {
  const S conj[4] = {q.w, -q.x, -q.y, -q.z};
  T p[4];
  quat_mul_any(p, conj, dq);
  for (int k = 0; k < 3; ++k) dr[k] = S(2) * p[k + 1];
}

/// d(q / |q|): (dq - qn (qn . dq)) / |q| with qn = q / |q| (the primal q before normalising).
template <class S, class T>
PHYDREAM_HD void quat_normalize_jvp(const Quat<S>& q, const T* dq, T* res) {
  const S n = sqrt_(q.w * q.w + q.x * q.x + q.y * q.y + q.z * q.z);
  // the primal maps a (near) zero quaternion to the identity, a constant
  if (n < min_norm<S>()) {
    for (int k = 0; k < 4; ++k) res[k] = tangent_zero<T>();
    return;
  }
  const S inv = S(1) / n;
  const S qn[4] = {q.w * inv, q.x * inv, q.y * inv, q.z * inv};
  const T along = qn[0] * dq[0] + qn[1] * dq[1] + qn[2] * dq[2] + qn[3] * dq[3];
  for (int k = 0; k < 4; ++k) res[k] = inv * (dq[k] - qn[k] * along);
}

/// d(R(q)) of quat_to_mat (row-major), for the primal q and its tangent dq.
template <class S, class T>
PHYDREAM_HD void quat_to_mat_jvp(const Quat<S>& q, const T* dq, T* dm) {
  const T& dw = dq[0];
  const T& dx = dq[1];
  const T& dy = dq[2];
  const T& dz = dq[3];
  const S w2 = S(2) * q.w, x2 = S(2) * q.x, y2 = S(2) * q.y, z2 = S(2) * q.z;
  dm[0] = w2 * dw + x2 * dx - y2 * dy - z2 * dz;
  dm[4] = w2 * dw - x2 * dx + y2 * dy - z2 * dz;
  dm[8] = w2 * dw - x2 * dx - y2 * dy + z2 * dz;
  dm[1] = y2 * dx + x2 * dy - z2 * dw - w2 * dz;
  dm[3] = y2 * dx + x2 * dy + z2 * dw + w2 * dz;
  dm[2] = z2 * dx + x2 * dz + y2 * dw + w2 * dy;
  dm[6] = z2 * dx + x2 * dz - y2 * dw - w2 * dy;
  dm[5] = z2 * dy + y2 * dz - x2 * dw - w2 * dx;
  dm[7] = z2 * dy + y2 * dz + x2 * dw + w2 * dx;
}

/// d(quat_rotate(q, v)) for a constant v: with t = w v + u x v, rotate = v + 2 u x t, so
/// d = 2 (du x t + u x dt), dt = dw v + du x v.
template <class S, class T>
PHYDREAM_HD void quat_rotate_jvp(const Quat<S>& q, const T* dq, const Vec3<S>& v, T* res) {
  const S u[3] = {q.x, q.y, q.z};
  const S t[3] = {q.w * v[0] + q.y * v[2] - q.z * v[1], q.w * v[1] + q.z * v[0] - q.x * v[2],
                  q.w * v[2] + q.x * v[1] - q.y * v[0]};
  const T du[3] = {dq[1], dq[2], dq[3]};
  T dt[3], a[3], b[3];
  cross3_any(dt, du, v.v);
  for (int k = 0; k < 3; ++k) dt[k] += v[k] * dq[0];
  cross3_any(a, du, t);
  cross3_any(b, u, dt);
  for (int k = 0; k < 3; ++k) res[k] = S(2) * (a[k] + b[k]);
}

/// R v for a row-major tangent matrix dR and a constant v.
template <class S, class T>
PHYDREAM_HD void mat_vec_jvp(const T* dm, const S* v, T* res) {
  for (int r = 0; r < 3; ++r) res[r] = dm[3 * r] * v[0] + dm[3 * r + 1] * v[1] + dm[3 * r + 2] * v[2];
}

// below this angle the closed forms of the exponential and logarithm maps' derivatives cancel
// catastrophically; their Taylor series (to the 6th or 8th power) are exact to rounding there
template <class S>
PHYDREAM_HD constexpr S series_angle() { return S(0.05); }

/// The tangent of exp(phi) = (cos(th/2), sin(th/2)/th phi), th = |phi|, along dphi: the rotation
/// MuJoCo's quaternion integration builds from axis phi/th and angle th.
template <class S, class T>
PHYDREAM_HD void quat_exp_jvp(const Vec3<S>& phi, const T* dphi, T* res) {
  const S th2 = dot(phi, phi);
  const S th = sqrt_(th2);
  S s, g;  // s = sin(th/2) / th, g = (th/2 cos(th/2) - sin(th/2)) / th^3 = s'(th) / th
  if (th < series_angle<S>()) {
    s = S(0.5) - th2 / S(48) + th2 * th2 / S(3840) - th2 * th2 * th2 / S(645120);
    g = -S(1) / S(24) + th2 / S(960) - th2 * th2 / S(107520) + th2 * th2 * th2 / S(23224320);
  } else {
    S sh, ch;
    sincos_(S(0.5) * th, &sh, &ch);
    s = sh / th;
    g = (S(0.5) * th * ch - sh) / (th2 * th);
  }
  const T pd = phi[0] * dphi[0] + phi[1] * dphi[1] + phi[2] * dphi[2];
  res[0] = (-S(0.5) * s) * pd;
  for (int k = 0; k < 3; ++k) res[k + 1] = s * dphi[k] + (g * phi[k]) * pd;
}

/// The tangent of quat_to_rotvec(p) along dp: r = f(s, w) u with u = Im p, s = |u|, w = Re p,
/// f = angle / s, angle = 2 atan2(s, w) wrapped to (-pi, pi]; so
/// dr = f du + u (g1 (u . du) + g2 dw), g1 = (df/ds) / s, g2 = df/dw = -2 / (s^2 + w^2).
template <class S, class T>
PHYDREAM_HD void quat_to_rotvec_jvp(const Quat<S>& p, const T* dp, T* res) {
  const S u[3] = {p.x, p.y, p.z};
  const S s2 = u[0] * u[0] + u[1] * u[1] + u[2] * u[2];
  const S s = sqrt_(s2);
  const S w = p.w;
  const S n2 = s2 + w * w;
  S f, g1;
  if (s < series_angle<S>() * abs_(w)) {
    // angle = 2 atan(t) with t = s / w for either sign of w (the wrap makes it so)
    const S t2 = s2 / (w * w);
    f = (S(2) / w) * (S(1) - t2 / S(3) + t2 * t2 / S(5) - t2 * t2 * t2 / S(7) + t2 * t2 * t2 * t2 / S(9));
    g1 = (S(2) / (w * w * w)) *
         (-S(2) / S(3) + S(4) * t2 / S(5) - S(6) * t2 * t2 / S(7) + S(8) * t2 * t2 * t2 / S(9));
  } else {
    S angle = S(2) * atan2_(s, w);
    if (angle > pi<S>()) angle -= S(2) * pi<S>();
    f = angle / s;
    g1 = (S(2) * w / n2 - f) / s2;
  }
  const S g2 = -S(2) / n2;
  const T udu = u[0] * dp[1] + u[1] * dp[2] + u[2] * dp[3];
  const T along = g1 * udu + g2 * dp[0];
  for (int k = 0; k < 3; ++k) res[k] = f * dp[k + 1] + u[k] * along;
}

/// d(inertia_com) for the primal diag (constant), frame R, offset d and mass (constant), the
/// tangents dR (9) and dd (3).
template <class S, class T>
PHYDREAM_HD void inertia_com_jvp(const S* diag, const S* frame, const T* dframe, const S* off,
                                 const T* doff, S mass, T* res) {
  // d(R diag R^T)_ij = sum_k diag_k (dR_ik R_jk + R_ik dR_jk)
  T drdr[9];
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) {
      T acc = tangent_zero<T>();
      for (int k = 0; k < 3; ++k) {
        acc += (diag[k] * frame[3 * j + k]) * dframe[3 * i + k] + (diag[k] * frame[3 * i + k]) * dframe[3 * j + k];
      }
      drdr[3 * i + j] = acc;
    }
  }
  const S m2 = S(2) * mass;
  res[0] = drdr[0] + (m2 * off[1]) * doff[1] + (m2 * off[2]) * doff[2];
  res[1] = drdr[4] + (m2 * off[0]) * doff[0] + (m2 * off[2]) * doff[2];
  res[2] = drdr[8] + (m2 * off[0]) * doff[0] + (m2 * off[1]) * doff[1];
  res[3] = drdr[1] - (mass * off[1]) * doff[0] - (mass * off[0]) * doff[1];
  res[4] = drdr[2] - (mass * off[2]) * doff[0] - (mass * off[0]) * doff[2];
  res[5] = drdr[5] - (mass * off[2]) * doff[1] - (mass * off[1]) * doff[2];
  for (int k = 0; k < 3; ++k) res[6 + k] = mass * doff[k];
  res[9] = tangent_zero<T>();
}

/// out = dM x for the tree-sparse symmetric tangent dM (lower triangle read) and primal x.
template <class S, class T>
PHYDREAM_HD_STAGE void tree_mul_tangent(const ModelView<S>& m, const T* dM, const S* x, T* out) {
  const int nv = m.nv;
  for (int i = 0; i < nv; ++i) out[i] = dM[nv * i + i] * x[i];
  for (int i = 0; i < nv; ++i) {
    for (int j = m.dof_parentid[i]; j >= 0; j = m.dof_parentid[j]) {
      out[i] += dM[nv * i + j] * x[j];
      out[j] += dM[nv * i + j] * x[i];
    }
  }
}

template <class T>
PHYDREAM_HD void zero_tangent(T* a, int n) {
  for (int i = 0; i < n; ++i) a[i] = tangent_zero<T>();
}

}  // namespace detail

// =============================================================================================
// position-dependent stages

/// Tangent of kinematics: reads t.qpos (tangent coordinates), writes t.xpos, t.xquat, t.xmat,
/// t.xipos, t.ximat, t.xanchor, t.xaxis. d: the primal after kinematics().
template <class S, class T>
PHYDREAM_HD_STAGE void kinematics_jvp(const ModelView<S>& m, const Data<S>& d, const Data<T>& t) {
  detail::zero_tangent(t.xpos, 3);
  detail::zero_tangent(t.xquat, 4);
  detail::zero_tangent(t.xmat, 9);
  detail::zero_tangent(t.xipos, 3);
  detail::zero_tangent(t.ximat, 9);
  for (int i = 1; i < m.nbody; ++i) {
    const int p = m.body_parentid[i];
    // the primal chain is recomputed (as in kinematics()) for the values the tangents need
    const Mat3<S> rp = load_mat3(d.xmat + 9 * p);
    const Vec3<S> bpos = load_vec3(m.body_pos + 3 * i);
    const Quat<S> bquat = load_quat(m.body_quat + 4 * i);
    Vec3<S> pos = mat_vec(rp, bpos) + load_vec3(d.xpos + 3 * p);
    Quat<S> quat = quat_mul(load_quat(d.xquat + 4 * p), bquat);
    T dpos[3], dquat[4];
    detail::mat_vec_jvp(t.xmat + 9 * p, bpos.v, dpos);
    for (int k = 0; k < 3; ++k) dpos[k] += t.xpos[3 * p + k];
    detail::quat_mul_jvp_left(t.xquat + 4 * p, bquat, dquat);

    for (int j = m.body_jntadr[i]; j < m.body_jntadr[i] + m.body_jntnum[i]; ++j) {
      const int type = m.jnt_type[j];
      const S* q = d.qpos + m.jnt_qposadr[j];
      const T* dq = t.qpos + m.jnt_dofadr[j];
      const Vec3<S> jpos = load_vec3(m.jnt_pos + 3 * j);
      const Vec3<S> jaxis = load_vec3(m.jnt_axis + 3 * j);
      if (type == static_cast<int>(JointType::free)) {
        pos = load_vec3(q);
        quat = load_quat(q + 3);
        for (int k = 0; k < 3; ++k) dpos[k] = dq[k];
        detail::quat_local_jvp(quat, dq + 3, dquat);
        for (int k = 0; k < 3; ++k) {
          t.xanchor[3 * j + k] = dpos[k];
          t.xaxis[3 * j + k] = tangent_zero<T>();
        }
        continue;
      }
      const Vec3<S> anchor = quat_rotate(quat, jpos) + pos;
      const Vec3<S> axis = quat_rotate(quat, jaxis);
      T danchor[3], daxis[3];
      detail::quat_rotate_jvp(quat, dquat, jpos, danchor);
      for (int k = 0; k < 3; ++k) danchor[k] += dpos[k];
      detail::quat_rotate_jvp(quat, dquat, jaxis, daxis);
      for (int k = 0; k < 3; ++k) {
        t.xanchor[3 * j + k] = danchor[k];
        t.xaxis[3 * j + k] = daxis[k];
      }
      if (type == static_cast<int>(JointType::slide)) {
        const S disp = q[0] - m.qpos0[m.jnt_qposadr[j]];
        pos = pos + disp * axis;
        for (int k = 0; k < 3; ++k) dpos[k] += axis[k] * dq[0] + disp * daxis[k];
        continue;
      }
      Quat<S> qloc;
      T dqloc[4];
      if (type == static_cast<int>(JointType::ball)) {
        qloc = load_quat(q);
        detail::quat_local_jvp(qloc, dq, dqloc);
      } else {
        const S angle = q[0] - m.qpos0[m.jnt_qposadr[j]];
        qloc = quat_from_axis_angle(jaxis, angle);
        S sh, ch;
        sincos_(S(0.5) * angle, &sh, &ch);
        dqloc[0] = (-S(0.5) * sh) * dq[0];
        for (int k = 0; k < 3; ++k) dqloc[k + 1] = (S(0.5) * ch * jaxis[k]) * dq[0];
      }
      T dnew[4];
      detail::quat_mul_jvp(quat, dquat, qloc, dqloc, dnew);
      quat = quat_mul(quat, qloc);
      for (int k = 0; k < 4; ++k) dquat[k] = dnew[k];
      // pos' = anchor - quat' jpos
      T drot[3];
      detail::quat_rotate_jvp(quat, dquat, jpos, drot);
      pos = ((anchor - pos) - quat_rotate(quat, jpos)) + pos;
      for (int k = 0; k < 3; ++k) dpos[k] = danchor[k] - drot[k];
    }

    // normalised frame, rotation matrix, inertial frame
    T dqn[4];
    detail::quat_normalize_jvp(quat, dquat, dqn);
    const Quat<S> qn = quat_normalize(quat);
    for (int k = 0; k < 4; ++k) t.xquat[4 * i + k] = dqn[k];
    for (int k = 0; k < 3; ++k) t.xpos[3 * i + k] = dpos[k];
    detail::quat_to_mat_jvp(qn, dqn, t.xmat + 9 * i);
    T dip[3];
    detail::mat_vec_jvp(t.xmat + 9 * i, m.body_ipos + 3 * i, dip);
    for (int k = 0; k < 3; ++k) t.xipos[3 * i + k] = dip[k] + dpos[k];
    const Quat<S> iquat = load_quat(m.body_iquat + 4 * i);
    T dqi[4];
    detail::quat_mul_jvp_left(dqn, iquat, dqi);
    detail::quat_to_mat_jvp(quat_mul(qn, iquat), dqi, t.ximat + 9 * i);
  }
}

/// Tangent of com_pos: writes t.subtree_com, t.cinert, t.cdof.
template <class S, class T>
PHYDREAM_HD_STAGE void com_pos_jvp(const ModelView<S>& m, const Data<S>& d, const Data<T>& t) {
  // subtree centres of mass: the same sums of mass-weighted positions, then the division
  detail::zero_tangent(t.subtree_com, 3 * m.nbody);
  for (int i = m.nbody - 1; i > 0; --i) {
    const int p = m.body_parentid[i];
    for (int k = 0; k < 3; ++k) {
      t.subtree_com[3 * i + k] += m.body_mass[i] * t.xipos[3 * i + k];
      t.subtree_com[3 * p + k] += t.subtree_com[3 * i + k];
    }
  }
  for (int i = 0; i < m.nbody; ++i) {
    if (m.body_subtreemass[i] < detail::min_norm<S>()) {
      for (int k = 0; k < 3; ++k) t.subtree_com[3 * i + k] = t.xipos[3 * i + k];
    } else {
      const S inv = S(1) / m.body_subtreemass[i];
      for (int k = 0; k < 3; ++k) t.subtree_com[3 * i + k] = inv * t.subtree_com[3 * i + k];
    }
  }

  // body inertias
  detail::zero_tangent(t.cinert, 10);
  for (int i = 1; i < m.nbody; ++i) {
    const int r = m.body_rootid[i];
    S off[3];
    T doff[3];
    for (int k = 0; k < 3; ++k) {
      off[k] = d.xipos[3 * i + k] - d.subtree_com[3 * r + k];
      doff[k] = t.xipos[3 * i + k] - t.subtree_com[3 * r + k];
    }
    detail::inertia_com_jvp(m.body_inertia + 3 * i, d.ximat + 9 * i, t.ximat + 9 * i, off, doff,
                            m.body_mass[i], t.cinert + 10 * i);
  }

  // dof axes
  for (int j = 0; j < m.njnt; ++j) {
    const int b = m.jnt_bodyid[j];
    const int type = m.jnt_type[j];
    const int r = m.body_rootid[b];
    T* dcdof = t.cdof + 6 * m.jnt_dofadr[j];
    S off[3];
    T doff[3];
    for (int k = 0; k < 3; ++k) {
      off[k] = d.subtree_com[3 * r + k] - d.xanchor[3 * j + k];
      doff[k] = t.subtree_com[3 * r + k] - t.xanchor[3 * j + k];
    }
    if (type == static_cast<int>(JointType::slide)) {
      for (int k = 0; k < 3; ++k) {
        dcdof[k] = tangent_zero<T>();
        dcdof[3 + k] = t.xaxis[3 * j + k];
      }
      continue;
    }
    if (type == static_cast<int>(JointType::hinge)) {
      const S* axis = d.xaxis + 3 * j;
      const T* daxis = t.xaxis + 3 * j;
      T a[3], c[3];
      detail::cross3_any(a, daxis, off);
      detail::cross3_any(c, axis, doff);
      for (int k = 0; k < 3; ++k) {
        dcdof[k] = daxis[k];
        dcdof[3 + k] = a[k] + c[k];
      }
      continue;
    }
    if (type == static_cast<int>(JointType::free)) {
      detail::zero_tangent(dcdof, 18);
      dcdof += 18;
    }
    for (int c = 0; c < 3; ++c) {
      const S axis[3] = {d.xmat[9 * b + c], d.xmat[9 * b + 3 + c], d.xmat[9 * b + 6 + c]};
      const T daxis[3] = {t.xmat[9 * b + c], t.xmat[9 * b + 3 + c], t.xmat[9 * b + 6 + c]};
      T a[3], e[3];
      detail::cross3_any(a, daxis, off);
      detail::cross3_any(e, axis, doff);
      for (int k = 0; k < 3; ++k) {
        dcdof[6 * c + k] = daxis[k];
        dcdof[6 * c + 3 + k] = a[k] + e[k];
      }
    }
  }
}

/// Tangent of crb: writes t.crb, t.qM (both triangles; armature is constant).
template <class S, class T>
PHYDREAM_HD_STAGE void crb_jvp(const ModelView<S>& m, const Data<S>& d, const Data<T>& t) {
  for (int k = 0; k < 10 * m.nbody; ++k) t.crb[k] = t.cinert[k];
  for (int i = m.nbody - 1; i > 0; --i) {
    const int p = m.body_parentid[i];
    if (p > 0) {
      for (int k = 0; k < 10; ++k) t.crb[10 * p + k] += t.crb[10 * i + k];
    }
  }
  const int nv = m.nv;
  detail::zero_tangent(t.qM, nv * nv);
  for (int i = 0; i < nv; ++i) {
    // f = crb cdof_i, df = dcrb cdof_i + crb dcdof_i
    const int b = m.dof_bodyid[i];
    S f[6];
    T df[6], df2[6];
    detail::inertia_mul(f, d.crb + 10 * b, d.cdof + 6 * i);
    detail::inertia_mul(df, t.crb + 10 * b, d.cdof + 6 * i);
    detail::inertia_mul(df2, d.crb + 10 * b, t.cdof + 6 * i);
    for (int k = 0; k < 6; ++k) df[k] += df2[k];
    for (int j = i; j >= 0; j = m.dof_parentid[j]) {
      const T v = detail::dot6(t.cdof + 6 * j, f) + detail::dot6(d.cdof + 6 * j, df);
      t.qM[nv * i + j] = v;
      t.qM[nv * j + i] = v;
    }
  }
}

// =============================================================================================
// velocity-dependent stages

/// Tangent of com_vel: writes t.cvel, t.cdof_dot (reads t.qvel, t.cdof).
template <class S, class T>
PHYDREAM_HD_STAGE void com_vel_jvp(const ModelView<S>& m, const Data<S>& d, const Data<T>& t) {
  detail::zero_tangent(t.cvel, 6);
  for (int i = 1; i < m.nbody; ++i) {
    // the primal velocity along the body's joints, recomputed as in com_vel()
    S v[6];
    T dv[6];
    for (int k = 0; k < 6; ++k) {
      v[k] = d.cvel[6 * m.body_parentid[i] + k];
      dv[k] = t.cvel[6 * m.body_parentid[i] + k];
    }
    for (int j = m.body_jntadr[i]; j < m.body_jntadr[i] + m.body_jntnum[i]; ++j) {
      const int type = m.jnt_type[j];
      int dof = m.jnt_dofadr[j];
      int nrot = 0;  // the dofs whose cdof_dot is v x cdof, starting at dof
      if (type == static_cast<int>(JointType::free)) {
        detail::zero_tangent(t.cdof_dot + 6 * dof, 18);
        // world translation axes: constant cdof, so only dqvel moves the velocity
        S pt[6];
        for (int k = 0; k < 6; ++k) {
          pt[k] = d.cdof[6 * dof + k] * d.qvel[dof] + d.cdof[6 * dof + 6 + k] * d.qvel[dof + 1] +
                  d.cdof[6 * dof + 12 + k] * d.qvel[dof + 2];
        }
        for (int k = 0; k < 6; ++k) {
          v[k] += pt[k];
          for (int c = 0; c < 3; ++c) dv[k] += d.cdof[6 * (dof + c) + k] * t.qvel[dof + c];
        }
        dof += 3;
        nrot = 3;
      } else if (type == static_cast<int>(JointType::ball)) {
        nrot = 3;
      } else {
        nrot = 1;
      }
      // cdof_dot = v x cdof with the velocity before the joint's own motion
      for (int r = 0; r < nrot; ++r) {
        T a[6], b[6];
        detail::cross_motion(a, dv, d.cdof + 6 * (dof + r));
        detail::cross_motion(b, v, t.cdof + 6 * (dof + r));
        for (int k = 0; k < 6; ++k) t.cdof_dot[6 * (dof + r) + k] = a[k] + b[k];
      }
      S pt[6];
      for (int k = 0; k < 6; ++k) {
        S s = S(0);
        for (int r = 0; r < nrot; ++r) s += d.cdof[6 * (dof + r) + k] * d.qvel[dof + r];
        pt[k] = s;
      }
      for (int k = 0; k < 6; ++k) {
        v[k] += pt[k];
        for (int r = 0; r < nrot; ++r) {
          dv[k] += d.qvel[dof + r] * t.cdof[6 * (dof + r) + k] + d.cdof[6 * (dof + r) + k] * t.qvel[dof + r];
        }
      }
    }
    for (int k = 0; k < 6; ++k) t.cvel[6 * i + k] = dv[k];
  }
}

/// Tangent of rne: writes t.cacc, t.cfrc_body, t.qfrc_bias.
template <class S, class T>
PHYDREAM_HD_STAGE void rne_jvp(const ModelView<S>& m, const Data<S>& d, const Data<T>& t) {
  detail::zero_tangent(t.cacc, 6);
  detail::zero_tangent(t.cfrc_body, 6);
  for (int i = 1; i < m.nbody; ++i) {
    const int p = m.body_parentid[i];
    const int adr = m.body_dofadr[i], num = m.body_dofnum[i];
    for (int k = 0; k < 6; ++k) {
      T s = t.cacc[6 * p + k];
      for (int j = 0; j < num; ++j) {
        s += d.qvel[adr + j] * t.cdof_dot[6 * (adr + j) + k] + d.cdof_dot[6 * (adr + j) + k] * t.qvel[adr + j];
      }
      t.cacc[6 * i + k] = s;
    }
    // f = I a + v x* (I v): df = dI a + I da + dv x* (I v) + v x* (dI v + I dv)
    const S* in = d.cinert + 10 * i;
    const T* din = t.cinert + 10 * i;
    const S* v = d.cvel + 6 * i;
    const T* dv = t.cvel + 6 * i;
    S iv[6];
    T a[6], b[6], div[6], c[6], e[6];
    detail::inertia_mul(a, din, d.cacc + 6 * i);
    detail::inertia_mul(b, in, t.cacc + 6 * i);
    detail::inertia_mul(iv, in, v);
    detail::inertia_mul(div, din, v);
    detail::inertia_mul(c, in, dv);
    for (int k = 0; k < 6; ++k) div[k] += c[k];
    detail::cross_force(c, dv, iv);
    detail::cross_force(e, v, div);
    for (int k = 0; k < 6; ++k) t.cfrc_body[6 * i + k] = a[k] + b[k] + c[k] + e[k];
  }
  for (int i = m.nbody - 1; i > 0; --i) {
    const int p = m.body_parentid[i];
    if (p > 0) {
      for (int k = 0; k < 6; ++k) t.cfrc_body[6 * p + k] += t.cfrc_body[6 * i + k];
    }
  }
  for (int i = 0; i < m.nv; ++i) {
    const int b = m.dof_bodyid[i];
    t.qfrc_bias[i] = detail::dot6(t.cdof + 6 * i, d.cfrc_body + 6 * b) +
                     detail::dot6(d.cdof + 6 * i, t.cfrc_body + 6 * b);
  }
}

/// Tangent of passive: writes t.qfrc_passive (reads t.qpos in tangent coordinates, t.qvel).
template <class S, class T>
PHYDREAM_HD_STAGE void passive_jvp(const ModelView<S>& m, const Data<S>& d, const Data<T>& t) {
  detail::zero_tangent(t.qfrc_passive, m.nv);
  if (m.disabled(kDisablePassive)) return;
  for (int j = 0; j < m.njnt; ++j) {
    const S k = m.jnt_stiffness[j];
    if (k == S(0)) continue;
    const int type = m.jnt_type[j];
    int qa = m.jnt_qposadr[j];
    int dof = m.jnt_dofadr[j];
    if (type == static_cast<int>(JointType::hinge) || type == static_cast<int>(JointType::slide)) {
      t.qfrc_passive[dof] = -k * t.qpos[dof];
      continue;
    }
    if (type == static_cast<int>(JointType::free)) {
      for (int c = 0; c < 3; ++c) t.qfrc_passive[dof + c] = -k * t.qpos[dof + c];
      qa += 3;
      dof += 3;
    }
    // dif = rotvec(conj(q_spring) q), q moved by q exp(dr)
    const Quat<S> q = load_quat(d.qpos + qa);
    const Quat<S> qs = load_quat(m.qpos_spring + qa);
    T dq[4], dp[4], ddif[3];
    detail::quat_local_jvp(q, t.qpos + dof, dq);
    S cs[4];
    detail::quat_array(cs, quat_conj(qs));
    detail::quat_mul_any(dp, cs, dq);
    detail::quat_to_rotvec_jvp(quat_mul(quat_conj(qs), q), dp, ddif);
    for (int c = 0; c < 3; ++c) t.qfrc_passive[dof + c] = -k * ddif[c];
  }
  for (int i = 0; i < m.nv; ++i) t.qfrc_passive[i] -= m.dof_damping[i] * t.qvel[i];
}

/// Tangent of actuation: writes t.actuator_force, t.qfrc_actuator (reads t.ctrl). A clamped
/// control (strictly outside its range) has zero derivative; on or inside the range it passes.
template <class S, class T>
PHYDREAM_HD_STAGE void actuation_jvp(const ModelView<S>& m, const Data<S>& d, const Data<T>& t) {
  detail::zero_tangent(t.qfrc_actuator, m.nv);
  for (int a = 0; a < m.nu; ++a) {
    bool passes = !m.disabled(kDisableActuation);
    if (passes && m.actuator_ctrllimited[a] && !m.disabled(kDisableClampctrl)) {
      const S c = d.ctrl[a];
      passes = !(c < m.actuator_ctrlrange[2 * a]) && !(c > m.actuator_ctrlrange[2 * a + 1]);
    }
    t.actuator_force[a] = passes ? t.ctrl[a] : tangent_zero<T>();
  }
  if (m.disabled(kDisableActuation)) return;
  for (int a = 0; a < m.nu; ++a) {
    t.qfrc_actuator[m.jnt_dofadr[m.actuator_trnid[a]]] += m.actuator_gear[a] * t.actuator_force[a];
  }
}

/// Tangent of acceleration: writes t.qfrc_smooth and t.qacc = M^-1 (dqfrc_smooth - dM qacc).
template <class S, class T>
PHYDREAM_HD_STAGE void acceleration_jvp(const ModelView<S>& m, const Data<S>& d, const Data<T>& t) {
  const int nv = m.nv;
  detail::tree_mul_tangent(m, t.qM, d.qacc, t.qacc);
  for (int i = 0; i < nv; ++i) {
    t.qfrc_smooth[i] = (t.qfrc_passive[i] - t.qfrc_bias[i]) + t.qfrc_actuator[i];
    t.qacc[i] = t.qfrc_smooth[i] - t.qacc[i];
  }
  solve_m(m, d, t.qacc);
}

/// Whether any position tangent is nonzero: without one, every position-dependent tangent is
/// zero and its stages can be skipped (Jacobian columns of velocities and controls).
template <class S, class T>
PHYDREAM_HD bool has_position_tangent(const ModelView<S>& m, const Data<T>& t) {
  for (int i = 0; i < m.nv; ++i) {
    const S* v = reinterpret_cast<const S*>(&t.qpos[i]);
    for (int k = 0; k < static_cast<int>(sizeof(T) / sizeof(S)); ++k) {
      if (v[k] != S(0)) return true;
    }
  }
  return false;
}

/// Tangent of forward(): every tangent intermediate from t.qpos (tangent coordinates, nv),
/// t.qvel and t.ctrl. d: the primal after forward().
template <class S, class T>
PHYDREAM_HD_STAGE void forward_jvp(const ModelView<S>& m, const Data<S>& d, const Data<T>& t) {
  if (has_position_tangent<S>(m, t)) {
    kinematics_jvp(m, d, t);
    com_pos_jvp(m, d, t);
    crb_jvp(m, d, t);
  } else {
    // every position-dependent tangent is zero
    detail::zero_tangent(t.xpos, 3 * m.nbody);
    detail::zero_tangent(t.xquat, 4 * m.nbody);
    detail::zero_tangent(t.xmat, 9 * m.nbody);
    detail::zero_tangent(t.xipos, 3 * m.nbody);
    detail::zero_tangent(t.ximat, 9 * m.nbody);
    detail::zero_tangent(t.xanchor, 3 * m.njnt);
    detail::zero_tangent(t.xaxis, 3 * m.njnt);
    detail::zero_tangent(t.subtree_com, 3 * m.nbody);
    detail::zero_tangent(t.cinert, 10 * m.nbody);
    detail::zero_tangent(t.cdof, 6 * m.nv);
    detail::zero_tangent(t.crb, 10 * m.nbody);
    detail::zero_tangent(t.qM, m.nv * m.nv);
  }
  com_vel_jvp(m, d, t);
  passive_jvp(m, d, t);
  rne_jvp(m, d, t);
  actuation_jvp(m, d, t);
  acceleration_jvp(m, d, t);
  constraints_jvp(m, d, t);
}

// =============================================================================================
// integration

/// Tangent of integrate_pos(qpos, qvel, h) (h constant): the output position tangent dqpos_out
/// (nv, tangent coordinates at the integrated position) from the tangents dqpos (nv, at qpos)
/// and dqvel (nv). qpos, qvel: the primal inputs (qpos before integration). dqpos_out may not
/// alias dqpos or dqvel.
template <class S, class T>
PHYDREAM_HD_STAGE void integrate_pos_jvp(const ModelView<S>& m, const S* qpos, const S* qvel, S h,
                                   const T* dqpos, const T* dqvel, T* dqpos_out) {
  for (int j = 0; j < m.njnt; ++j) {
    const int type = m.jnt_type[j];
    const S* q = qpos + m.jnt_qposadr[j];
    int dof = m.jnt_dofadr[j];
    if (type == static_cast<int>(JointType::hinge) || type == static_cast<int>(JointType::slide)) {
      dqpos_out[dof] = dqpos[dof] + h * dqvel[dof];
      continue;
    }
    if (type == static_cast<int>(JointType::free)) {
      for (int k = 0; k < 3; ++k) dqpos_out[dof + k] = dqpos[dof + k] + h * dqvel[dof + k];
      q += 3;
      dof += 3;
    }
    // q' = normalize(q exp(h w)), q moved by q exp(dr), w by dw
    const Quat<S> q0 = load_quat(q);
    const Vec3<S> phi = h * load_vec3(qvel + dof);
    S speed;
    const Vec3<S> axis = normalize3(load_vec3(qvel + dof), &speed);
    const Quat<S> rot = quat_from_axis_angle(axis, h * speed);
    const Quat<S> prod = quat_mul(q0, rot);
    const Quat<S> qn = quat_normalize(prod);
    T dq0[4], dphi[3], drot[4], dprod[4], dqn[4];
    detail::quat_local_jvp(q0, dqpos + dof, dq0);
    for (int k = 0; k < 3; ++k) dphi[k] = h * dqvel[dof + k];
    detail::quat_exp_jvp(phi, dphi, drot);
    detail::quat_mul_jvp(q0, dq0, rot, drot, dprod);
    detail::quat_normalize_jvp(prod, dprod, dqn);
    detail::quat_local_from_jvp(qn, dqn, dqpos_out + dof);
  }
}

/// Tangent of euler_acceleration: t.qacc_euler = H^-1 (dqfrc_smooth + dqfrc_constraint - dM
/// qacc_euler) with H = M + h diag(damping) when some dof is damped, else t.qacc.
template <class S, class T>
PHYDREAM_HD_STAGE void euler_acceleration_jvp(const ModelView<S>& m, const Data<S>& d, const Data<T>& t) {
  const int nv = m.nv;
  if (!detail::has_damping(m)) {
    for (int i = 0; i < nv; ++i) t.qacc_euler[i] = t.qacc[i];
    return;
  }
  detail::tree_mul_tangent(m, t.qM, d.qacc_euler, t.qacc_euler);
  for (int i = 0; i < nv; ++i) t.qacc_euler[i] = t.qfrc_smooth[i] - t.qacc_euler[i];
  if (m.nefc_max > 0) {
    for (int i = 0; i < nv; ++i) t.qacc_euler[i] += t.qfrc_constraint[i];
  }
  solve_ltdl(m, d.qH, d.qHDiagInv, t.qacc_euler);
}

/// One step and its JVP for K directions: d holds (qpos, qvel, ctrl) on entry and the next state
/// on exit, computed exactly as step() does; dqpos, dqvel (nv) and dctrl (nu) are the input
/// tangents, dqpos_next and dqvel_next (nv) receive the output tangents (overwritten; they may
/// alias the inputs). t: the tangent workspace (a Data<Vec<S, K>> over data_layout(m)).
template <class S, int K>
PHYDREAM_HD_STAGE void step_jvp(const ModelView<S>& m, const Data<S>& d, const Data<Vec<S, K>>& t,
                          const Vec<S, K>* dqpos, const Vec<S, K>* dqvel, const Vec<S, K>* dctrl,
                          Vec<S, K>* dqpos_next, Vec<S, K>* dqvel_next) {
  const S h = m.timestep;
  const int nv = m.nv;
  unrolled_begin_step(m, d, t);  // the unrolled mode's record of the solver's start
  for (int i = 0; i < nv; ++i) {
    t.qpos[i] = dqpos[i];
    t.qvel[i] = dqvel[i];
  }
  for (int a = 0; a < m.nu; ++a) t.ctrl[a] = dctrl[a];

  forward(m, d);
  forward_jvp(m, d, t);
  if (m.integrator == static_cast<int>(ModelIntegrator::euler)) {
    detail::euler_acceleration(m, d);
    euler_acceleration_jvp(m, d, t);
    for (int i = 0; i < nv; ++i) {
      d.qvel[i] += d.qacc_euler[i] * h;
      t.qvel[i] += h * t.qacc_euler[i];
    }
    integrate_pos_jvp(m, d.qpos, d.qvel, h, t.qpos, t.qvel, t.rk_dqpos);
    integrate_pos(m, d.qpos, d.qvel, h);
    d.time[0] += h;
    for (int i = 0; i < nv; ++i) {
      dqpos_next[i] = t.rk_dqpos[i];
      dqvel_next[i] = t.qvel[i];
    }
    return;
  }

  // RK4, as step(): the tangents follow each stage
  for (int i = 0; i < m.nq; ++i) d.rk_qpos[i] = d.qpos[i];
  for (int i = 0; i < nv; ++i) {
    d.rk_qvel[i] = d.qvel[i];
    d.rk_dqpos[i] = detail::rk4_b<S>(0) * d.qvel[i];
    d.rk_dqvel[i] = detail::rk4_b<S>(0) * d.qacc[i];
    t.rk_qpos[i] = t.qpos[i];
    t.rk_qvel[i] = t.qvel[i];
    t.rk_dqpos[i] = detail::rk4_b<S>(0) * t.qvel[i];
    t.rk_dqvel[i] = detail::rk4_b<S>(0) * t.qacc[i];
  }
  for (int s = 1; s < 4; ++s) {
    const S a = detail::rk4_a<S>(s - 1);
    for (int i = 0; i < m.nq; ++i) d.qpos[i] = d.rk_qpos[i];
    for (int i = 0; i < nv; ++i) {
      d.qvel[i] = a * d.qvel[i];
      t.qvel[i] = a * t.qvel[i];
    }
    integrate_pos_jvp(m, d.qpos, d.qvel, h, t.rk_qpos, t.qvel, t.qpos);
    integrate_pos(m, d.qpos, d.qvel, h);
    for (int i = 0; i < nv; ++i) {
      d.qvel[i] = d.rk_qvel[i] + (a * d.qacc[i]) * h;
      t.qvel[i] = t.rk_qvel[i] + (a * h) * t.qacc[i];
    }
    forward(m, d);
    forward_jvp(m, d, t);
    const S b = detail::rk4_b<S>(s);
    for (int i = 0; i < nv; ++i) {
      d.rk_dqpos[i] += b * d.qvel[i];
      d.rk_dqvel[i] += b * d.qacc[i];
      t.rk_dqpos[i] += b * t.qvel[i];
      t.rk_dqvel[i] += b * t.qacc[i];
    }
  }
  for (int i = 0; i < m.nq; ++i) d.qpos[i] = d.rk_qpos[i];
  // the position tangent goes to t.qpos first: dqpos_next may alias nothing we still read
  integrate_pos_jvp(m, d.qpos, d.rk_dqpos, h, t.rk_qpos, t.rk_dqpos, t.qpos);
  integrate_pos(m, d.qpos, d.rk_dqpos, h);
  for (int i = 0; i < nv; ++i) {
    d.qvel[i] = d.rk_qvel[i] + d.rk_dqvel[i] * h;
    dqvel_next[i] = t.rk_qvel[i] + h * t.rk_dqvel[i];
    dqpos_next[i] = t.qpos[i];
  }
  d.time[0] += h;
}

}  // namespace phydream
