// The smooth (constraint-free) dynamics of an articulated model, one function per stage, in the
// order MuJoCo's documentation ("Computation" chapter) runs them in mj_forward. Each stage reads
// the model and some Data fields and writes others; forward.h chains them, step_jvp.h and
// step_vjp.h mirror them stage by stage (keep this decomposition stable).
//
//   stage                 reads                                  writes
//   kinematics            qpos                                   qpos (ball/free quaternions
//                                                                normalised in place), xpos,
//                                                                xquat, xmat, xipos, ximat,
//                                                                xanchor, xaxis
//   com_pos               xipos, ximat, xmat, xanchor, xaxis     subtree_com, cinert, cdof
//   crb                   cinert, cdof                           crb, qM
//   factor_m              qM                                     qLD, qLDiagInv
//   com_vel               qvel, cdof                             cvel, cdof_dot
//   rne                   qvel, cinert, cdof, cvel, cdof_dot     cacc, cfrc_body, qfrc_bias
//   passive               qpos, qvel                             qfrc_passive
//   actuation             ctrl                                   actuator_force, qfrc_actuator
//   acceleration          qfrc_passive, qfrc_bias,               qfrc_smooth, qacc
//                         qfrc_actuator, qLD, qLDiagInv
//
// Conventions (MuJoCo's):
//   - com-based spatial quantities (cinert, cdof, cvel, cdof_dot, cacc, cfrc_body) are expressed
//     in a world-aligned frame whose origin is the centre of mass of the body's kinematic tree,
//     subtree_com[body_rootid]; motion vectors are (angular; linear), force vectors
//     (torque; force), spatial inertias in the 10-number cinert layout (engine/spatial.h)
//   - qM is dense (nv x nv), symmetric, both triangles written; it is nonzero only where one dof
//     is an ancestor of the other (dof_parentid chains). Downstream stages read only the lower
//     triangle: entry (i, j) with j an ancestor of i or j = i
//   - qLD holds M = L^T D L (Featherstone's LTDL, which keeps the tree's sparsity): L unit lower
//     triangular, stored below the diagonal on the ancestor pattern, D on the diagonal;
//     qLDiagInv = 1 / D, so a solve multiplies, as MuJoCo does
//   - the bias force takes gravity as an upward acceleration of the world (cacc of body 0 is
//     -gravity), unless gravity is disabled
//
//   - crb and cfrc_body of body 0 (the world) stay zero: trees are separate below the world
//
// Integration (forward.h) adds: euler_acceleration (qM, qfrc_smooth -> qH, qHDiagInv,
// qacc_euler), integrate_pos, and the RK4 stage bookkeeping (rk_qpos, rk_qvel, rk_dqpos,
// rk_dqvel).
//
// The arithmetic is grouped as MuJoCo 2.2.2 groups it (measured against the installed library:
// sums of 6-vectors, rotations by quaternions, normalisation, the order of subtree sums, the
// off-centre correction of a rotating joint), so that forward() reproduces mj_forward's
// intermediates and step() mj_step's trajectories bit for bit on x86-64 in double; the tests
// compare every intermediate and 1000-step trajectories.
#pragma once

#include "engine/data.h"
#include "engine/model_view.h"
#include "engine/spatial.h"

namespace phydream {

namespace detail {

// The spatial products below take any element types: primal Scalars, or tangents Vec<S, K> on
// one side (engine/step_jvp.h uses them for the tangent sweeps). The grouping is MuJoCo 2.2.2's,
// which makes the primal bitwise equal to MuJoCo's; the tangents inherit it.

/// a . b for 6-vectors, summed as MuJoCo 2.2.2's mju_dot for n = 6 (four lanes, then the tail):
/// ((a0 b0 + a2 b2) + (a1 b1 + a3 b3)) + (a4 b4 + a5 b5)
template <class A, class B>
PHYDREAM_HD auto dot6(const A* a, const B* b) -> decltype(a[0] * b[0]) {
  return ((a[0] * b[0] + a[2] * b[2]) + (a[1] * b[1] + a[3] * b[3])) + (a[4] * b[4] + a[5] * b[5]);
}

/// Spatial inertia (cinert layout) times a motion vector: the momentum (I_o w + mc x v; m v - mc x w).
template <class R, class I, class V>
PHYDREAM_HD void inertia_mul(R* res, const I* in, const V* v) {
  res[0] = in[0] * v[0] + in[3] * v[1] + in[4] * v[2] - in[8] * v[4] + in[7] * v[5];
  res[1] = in[3] * v[0] + in[1] * v[1] + in[5] * v[2] + in[8] * v[3] - in[6] * v[5];
  res[2] = in[4] * v[0] + in[5] * v[1] + in[2] * v[2] - in[7] * v[3] + in[6] * v[4];
  res[3] = in[8] * v[1] - in[7] * v[2] + in[9] * v[3];
  res[4] = in[6] * v[2] - in[8] * v[0] + in[9] * v[4];
  res[5] = in[7] * v[0] - in[6] * v[1] + in[9] * v[5];
}

/// Motion cross product v x m (Featherstone's crm): (w x m_ang; w x m_lin + v x m_ang).
template <class R, class V, class M>
PHYDREAM_HD void cross_motion(R* res, const V* v, const M* m) {
  res[0] = -v[2] * m[1] + v[1] * m[2];
  res[1] = v[2] * m[0] - v[0] * m[2];
  res[2] = -v[1] * m[0] + v[0] * m[1];
  res[3] = -v[2] * m[4] + v[1] * m[5];
  res[4] = v[2] * m[3] - v[0] * m[5];
  res[5] = -v[1] * m[3] + v[0] * m[4];
  res[3] += -v[5] * m[1] + v[4] * m[2];
  res[4] += v[5] * m[0] - v[3] * m[2];
  res[5] += -v[4] * m[0] + v[3] * m[1];
}

/// Force cross product v x* f (Featherstone's crf = -crm^T): (w x f_ang + v x f_lin; w x f_lin).
template <class R, class V, class F>
PHYDREAM_HD void cross_force(R* res, const V* v, const F* f) {
  res[0] = -v[2] * f[1] + v[1] * f[2];
  res[1] = v[2] * f[0] - v[0] * f[2];
  res[2] = -v[1] * f[0] + v[0] * f[1];
  res[3] = -v[2] * f[4] + v[1] * f[5];
  res[4] = v[2] * f[3] - v[0] * f[5];
  res[5] = -v[1] * f[3] + v[0] * f[4];
  res[0] += -v[5] * f[4] + v[4] * f[5];
  res[1] += v[5] * f[3] - v[3] * f[5];
  res[2] += -v[4] * f[3] + v[3] * f[4];
}

/// Spatial inertia (cinert layout) of a body of `mass` with principal moments `diag` along the
/// columns of `frame` (world), centre of mass at `offset` from the origin. Parallel-axis theorem:
/// I_o = R diag R^T + m (|d|^2 1 - d d^T).
template <class S>
PHYDREAM_HD void inertia_com(S* res, const S* diag, const S* frame, const S* offset, S mass) {
  // R diag R^T, entry (i, j) = sum_k R_ik (diag_k R_jk)
  S rdr[9];
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) {
      rdr[3 * i + j] = frame[3 * i] * (diag[0] * frame[3 * j]) +
                       frame[3 * i + 1] * (diag[1] * frame[3 * j + 1]) +
                       frame[3 * i + 2] * (diag[2] * frame[3 * j + 2]);
    }
  }
  const S* d = offset;
  res[0] = rdr[0] + mass * (d[1] * d[1] + d[2] * d[2]);
  res[1] = rdr[4] + mass * (d[0] * d[0] + d[2] * d[2]);
  res[2] = rdr[8] + mass * (d[0] * d[0] + d[1] * d[1]);
  res[3] = rdr[1] - mass * d[0] * d[1];
  res[4] = rdr[2] - mass * d[0] * d[2];
  res[5] = rdr[5] - mass * d[1] * d[2];
  res[6] = mass * d[0];
  res[7] = mass * d[1];
  res[8] = mass * d[2];
  res[9] = mass;
}

/// The dofs of a joint type.
PHYDREAM_HD int joint_dofs(int type) { return type == 0 ? 6 : type == 1 ? 3 : 1; }
/// The qpos entries of a joint type.
PHYDREAM_HD int joint_qpos(int type) { return type == 0 ? 7 : type == 1 ? 4 : 1; }

}  // namespace detail

// =============================================================================================
// position-dependent stages

/// Forward kinematics: the world pose of every body, inertial frame, joint anchor and axis.
/// Ball and free joint quaternions in qpos are normalised in place first, as MuJoCo does.
template <class S>
PHYDREAM_HD_STAGE void kinematics(const ModelView<S>& m, const Data<S>& d) {
  // the world
  for (int k = 0; k < 3; ++k) d.xpos[k] = d.xipos[k] = S(0);
  store(d.xquat, Quat<S>{S(1), S(0), S(0), S(0)});
  for (int k = 0; k < 9; ++k) d.xmat[k] = d.ximat[k] = (k % 4 == 0) ? S(1) : S(0);

  for (int i = 1; i < m.nbody; ++i) {
    const int p = m.body_parentid[i];
    // the body frame before its joints: the parent's frame composed with the body's offset
    const Mat3<S> rp = load_mat3(d.xmat + 9 * p);
    Vec3<S> pos = mat_vec(rp, load_vec3(m.body_pos + 3 * i)) + load_vec3(d.xpos + 3 * p);
    Quat<S> quat = quat_mul(load_quat(d.xquat + 4 * p), load_quat(m.body_quat + 4 * i));

    // each joint moves the frame in turn
    for (int j = m.body_jntadr[i]; j < m.body_jntadr[i] + m.body_jntnum[i]; ++j) {
      const int type = m.jnt_type[j];
      S* q = d.qpos + m.jnt_qposadr[j];
      const Vec3<S> jpos = load_vec3(m.jnt_pos + 3 * j);
      const Vec3<S> jaxis = load_vec3(m.jnt_axis + 3 * j);
      if (type == static_cast<int>(JointType::free)) {
        // the joint is the body's pose in the world
        pos = load_vec3(q);
        store(q + 3, quat_normalize(load_quat(q + 3)));
        quat = load_quat(q + 3);
        store(d.xanchor + 3 * j, pos);
        store(d.xaxis + 3 * j, jaxis);
        continue;
      }
      // the anchor and axis before the joint moves the body (a hinge leaves both in place)
      const Vec3<S> anchor = quat_rotate(quat, jpos) + pos;
      const Vec3<S> axis = quat_rotate(quat, jaxis);
      store(d.xanchor + 3 * j, anchor);
      store(d.xaxis + 3 * j, axis);
      if (type == static_cast<int>(JointType::slide)) {
        pos = pos + (q[0] - m.qpos0[m.jnt_qposadr[j]]) * axis;
      } else {
        // rotate about the anchor: the body origin follows the rotated anchor offset,
        // pos' = ((anchor - pos) - quat' jpos) + pos, grouped as MuJoCo 2.2.2 does
        if (type == static_cast<int>(JointType::ball)) {
          store(q, quat_normalize(load_quat(q)));
          quat = quat_mul(quat, load_quat(q));
        } else {
          quat = quat_mul(quat, quat_from_axis_angle(jaxis, q[0] - m.qpos0[m.jnt_qposadr[j]]));
        }
        pos = ((anchor - pos) - quat_rotate(quat, jpos)) + pos;
      }
    }

    // the body frame, its rotation matrix, and the inertial frame
    quat = quat_normalize(quat);
    const Mat3<S> r = quat_to_mat(quat);
    store(d.xpos + 3 * i, pos);
    store(d.xquat + 4 * i, quat);
    store(d.xmat + 9 * i, r);
    store(d.xipos + 3 * i, mat_vec(r, load_vec3(m.body_ipos + 3 * i)) + pos);
    store(d.ximat + 9 * i, quat_to_mat(quat_mul(quat, load_quat(m.body_iquat + 4 * i))));
  }
}

/// Centres of mass of the subtrees, com-based body inertias and dof motion axes.
template <class S>
PHYDREAM_HD_STAGE void com_pos(const ModelView<S>& m, const Data<S>& d) {
  // subtree centres of mass: mass-weighted positions summed up the tree (children first, then
  // the body's own term, as MuJoCo 2.2.2 orders the sum), then divided
  for (int k = 0; k < 3 * m.nbody; ++k) d.subtree_com[k] = S(0);
  for (int i = m.nbody - 1; i > 0; --i) {
    const int p = m.body_parentid[i];
    for (int k = 0; k < 3; ++k) {
      d.subtree_com[3 * i + k] += d.xipos[3 * i + k] * m.body_mass[i];
      d.subtree_com[3 * p + k] += d.subtree_com[3 * i + k];
    }
  }
  for (int i = 0; i < m.nbody; ++i) {
    // a massless subtree has no centre of mass: use the body's own inertial frame position
    if (m.body_subtreemass[i] < detail::min_norm<S>()) {
      for (int k = 0; k < 3; ++k) d.subtree_com[3 * i + k] = d.xipos[3 * i + k];
    } else {
      const S inv = S(1) / m.body_subtreemass[i];
      for (int k = 0; k < 3; ++k) d.subtree_com[3 * i + k] *= inv;
    }
  }

  // body inertias about the centre of mass of their tree
  for (int k = 0; k < 10; ++k) d.cinert[k] = S(0);
  for (int i = 1; i < m.nbody; ++i) {
    const S* com = d.subtree_com + 3 * m.body_rootid[i];
    const S offset[3] = {d.xipos[3 * i] - com[0], d.xipos[3 * i + 1] - com[1], d.xipos[3 * i + 2] - com[2]};
    detail::inertia_com(d.cinert + 10 * i, m.body_inertia + 3 * i, d.ximat + 9 * i, offset, m.body_mass[i]);
  }

  // dof motion axes: (axis; axis x (com - anchor)) for rotations, (0; axis) for translations
  for (int j = 0; j < m.njnt; ++j) {
    const int b = m.jnt_bodyid[j];
    const int type = m.jnt_type[j];
    S* cdof = d.cdof + 6 * m.jnt_dofadr[j];
    const S* com = d.subtree_com + 3 * m.body_rootid[b];
    const Vec3<S> offset = load_vec3(com) - load_vec3(d.xanchor + 3 * j);
    if (type == static_cast<int>(JointType::slide)) {
      store(cdof, Vec3<S>::zero());
      store(cdof + 3, load_vec3(d.xaxis + 3 * j));
    } else if (type == static_cast<int>(JointType::hinge)) {
      const Vec3<S> axis = load_vec3(d.xaxis + 3 * j);
      store(cdof, axis);
      store(cdof + 3, cross(axis, offset));
    } else {
      // free: three world translations first
      if (type == static_cast<int>(JointType::free)) {
        for (int k = 0; k < 3; ++k) {
          for (int c = 0; c < 6; ++c) cdof[6 * k + c] = (c == 3 + k) ? S(1) : S(0);
        }
        cdof += 18;
      }
      // ball, and the rotations of free: the body's axes (columns of xmat), about the anchor
      const Mat3<S> r = load_mat3(d.xmat + 9 * b);
      for (int k = 0; k < 3; ++k) {
        const Vec3<S> axis = mat_col(r, k);
        store(cdof + 6 * k, axis);
        store(cdof + 6 * k + 3, cross(axis, offset));
      }
    }
  }
}

/// Composite rigid body inertias and the joint-space inertia matrix (CRBA), armature included.
template <class S>
PHYDREAM_HD_STAGE void crb(const ModelView<S>& m, const Data<S>& d) {
  // composite inertias: each body's own, plus its descendants' (trees are separate below the world)
  for (int k = 0; k < 10 * m.nbody; ++k) d.crb[k] = d.cinert[k];
  for (int i = m.nbody - 1; i > 0; --i) {
    const int p = m.body_parentid[i];
    if (p > 0) {
      for (int k = 0; k < 10; ++k) d.crb[10 * p + k] += d.crb[10 * i + k];
    }
  }

  // M(i, j) = cdof_j . (crb_i cdof_i) for j an ancestor of i: dof i moves the composite of its body
  const int nv = m.nv;
  for (int k = 0; k < nv * nv; ++k) d.qM[k] = S(0);
  for (int i = 0; i < nv; ++i) {
    S f[6];
    detail::inertia_mul(f, d.crb + 10 * m.dof_bodyid[i], d.cdof + 6 * i);
    d.qM[nv * i + i] = m.dof_armature[i] + detail::dot6(d.cdof + 6 * i, f);
    for (int j = m.dof_parentid[i]; j >= 0; j = m.dof_parentid[j]) {
      d.qM[nv * i + j] = d.qM[nv * j + i] = detail::dot6(d.cdof + 6 * j, f);
    }
  }
}

/// L^T D L factorisation of a tree-sparse symmetric positive definite matrix `a` (nv x nv, lower
/// triangle read) into `ld` (L strictly below the diagonal, D on it) and diag_inv = 1 / D.
/// Featherstone's LTDL (RBDA, section 6.5): eliminating leaves first creates no fill-in.
template <class S>
PHYDREAM_HD_STAGE void factor_ltdl(const ModelView<S>& m, const S* a, S* ld, S* diag_inv) {
  const int nv = m.nv;
  for (int i = 0; i < nv; ++i) {
    for (int j = m.dof_parentid[i]; j >= 0; j = m.dof_parentid[j]) ld[nv * i + j] = a[nv * i + j];
    ld[nv * i + i] = a[nv * i + i];
  }
  for (int k = nv - 1; k >= 0; --k) {
    for (int i = m.dof_parentid[k]; i >= 0; i = m.dof_parentid[i]) {
      const S t = ld[nv * k + i] / ld[nv * k + k];
      for (int j = i; j >= 0; j = m.dof_parentid[j]) ld[nv * i + j] -= t * ld[nv * k + j];
      ld[nv * k + i] = t;
    }
  }
  for (int k = 0; k < nv; ++k) diag_inv[k] = S(1) / ld[nv * k + k];
}

/// x <- (L^T D L)^-1 x with a factor from factor_ltdl. T is Scalar or Vec<Scalar, K> (K
/// right-hand sides entry-wise).
template <class S, class T>
PHYDREAM_HD_STAGE void solve_ltdl(const ModelView<S>& m, const S* ld, const S* diag_inv, T* x) {
  const int nv = m.nv;
  // x <- L^-T x, leaves first
  for (int i = nv - 1; i >= 0; --i) {
    for (int j = m.dof_parentid[i]; j >= 0; j = m.dof_parentid[j]) x[j] -= ld[nv * i + j] * x[i];
  }
  // x <- D^-1 x
  for (int i = 0; i < nv; ++i) x[i] = diag_inv[i] * x[i];
  // x <- L^-1 x, roots first
  for (int i = 0; i < nv; ++i) {
    for (int j = m.dof_parentid[i]; j >= 0; j = m.dof_parentid[j]) x[i] -= ld[nv * i + j] * x[j];
  }
}

/// M = L^T D L into qLD, qLDiagInv.
template <class S>
PHYDREAM_HD_STAGE void factor_m(const ModelView<S>& m, const Data<S>& d) {
  factor_ltdl(m, d.qM, d.qLD, d.qLDiagInv);
}

/// x <- M^-1 x with the factor in d.
template <class S, class T>
PHYDREAM_HD_STAGE void solve_m(const ModelView<S>& m, const Data<S>& d, T* x) {
  solve_ltdl(m, d.qLD, d.qLDiagInv, x);
}

// =============================================================================================
// velocity-dependent stages

/// Body velocities and the time derivatives of the dof axes.
template <class S>
PHYDREAM_HD_STAGE void com_vel(const ModelView<S>& m, const Data<S>& d) {
  for (int k = 0; k < 6; ++k) d.cvel[k] = S(0);
  for (int i = 1; i < m.nbody; ++i) {
    S v[6];
    for (int k = 0; k < 6; ++k) v[k] = d.cvel[6 * m.body_parentid[i] + k];
    for (int j = m.body_jntadr[i]; j < m.body_jntadr[i] + m.body_jntnum[i]; ++j) {
      const int type = m.jnt_type[j];
      int dof = m.jnt_dofadr[j];
      if (type == static_cast<int>(JointType::hinge) || type == static_cast<int>(JointType::slide)) {
        // the axis moves with the velocity of the frame it is attached to (its own velocity
        // would add cdof x cdof = 0)
        detail::cross_motion(d.cdof_dot + 6 * dof, v, d.cdof + 6 * dof);
        for (int k = 0; k < 6; ++k) v[k] += d.cdof[6 * dof + k] * d.qvel[dof];
        continue;
      }
      if (type == static_cast<int>(JointType::free)) {
        // world-fixed translation axes; their velocity moves the rotation axes' anchor
        for (int k = 0; k < 18; ++k) d.cdof_dot[6 * dof + k] = S(0);
        S t[6];
        for (int k = 0; k < 6; ++k) {
          t[k] = d.cdof[6 * dof + k] * d.qvel[dof] + d.cdof[6 * dof + 6 + k] * d.qvel[dof + 1] +
                 d.cdof[6 * dof + 12 + k] * d.qvel[dof + 2];
        }
        for (int k = 0; k < 6; ++k) v[k] += t[k];
        dof += 3;
      }
      // three rotation axes fixed in the body: all with the velocity before the rotation (the
      // terms of the joint's own rotation cancel in cdof_dot . qvel)
      for (int r = 0; r < 3; ++r) detail::cross_motion(d.cdof_dot + 6 * (dof + r), v, d.cdof + 6 * (dof + r));
      S t[6];
      for (int k = 0; k < 6; ++k) {
        t[k] = d.cdof[6 * dof + k] * d.qvel[dof] + d.cdof[6 * dof + 6 + k] * d.qvel[dof + 1] +
               d.cdof[6 * dof + 12 + k] * d.qvel[dof + 2];
      }
      for (int k = 0; k < 6; ++k) v[k] += t[k];
    }
    for (int k = 0; k < 6; ++k) d.cvel[6 * i + k] = v[k];
  }
}

/// Recursive Newton-Euler with zero joint acceleration: qfrc_bias = C(q, v) qvel + g(q), gravity
/// entering as an acceleration -gravity of the world (Featherstone, RBDA section 5.3).
template <class S>
PHYDREAM_HD_STAGE void rne(const ModelView<S>& m, const Data<S>& d) {
  for (int k = 0; k < 6; ++k) d.cacc[k] = d.cfrc_body[k] = S(0);
  if (!m.disabled(kDisableGravity)) {
    for (int k = 0; k < 3; ++k) d.cacc[3 + k] = -m.gravity[k];
  }
  // forward: accelerations cacc = cacc_parent + sum cdof_dot qvel, forces I a + v x* I v
  for (int i = 1; i < m.nbody; ++i) {
    const int p = m.body_parentid[i];
    const int adr = m.body_dofadr[i], num = m.body_dofnum[i];
    S t[6];
    for (int k = 0; k < 6; ++k) {
      S s = S(0);
      for (int j = 0; j < num; ++j) s += d.cdof_dot[6 * (adr + j) + k] * d.qvel[adr + j];
      t[k] = s;
    }
    for (int k = 0; k < 6; ++k) d.cacc[6 * i + k] = d.cacc[6 * p + k] + t[k];
    S iv[6], vxiv[6];
    detail::inertia_mul(d.cfrc_body + 6 * i, d.cinert + 10 * i, d.cacc + 6 * i);
    detail::inertia_mul(iv, d.cinert + 10 * i, d.cvel + 6 * i);
    detail::cross_force(vxiv, d.cvel + 6 * i, iv);
    for (int k = 0; k < 6; ++k) d.cfrc_body[6 * i + k] += vxiv[k];
  }
  // backward: each body carries its subtree
  for (int i = m.nbody - 1; i > 0; --i) {
    const int p = m.body_parentid[i];
    if (p > 0) {
      for (int k = 0; k < 6; ++k) d.cfrc_body[6 * p + k] += d.cfrc_body[6 * i + k];
    }
  }
  // project onto the dofs
  for (int i = 0; i < m.nv; ++i) {
    d.qfrc_bias[i] = detail::dot6(d.cdof + 6 * i, d.cfrc_body + 6 * m.dof_bodyid[i]);
  }
}

/// Joint springs about qpos_spring (ball and free rotations by quaternion difference) and dof
/// damping; zero when passive forces are disabled.
template <class S>
PHYDREAM_HD_STAGE void passive(const ModelView<S>& m, const Data<S>& d) {
  for (int i = 0; i < m.nv; ++i) d.qfrc_passive[i] = S(0);
  if (m.disabled(kDisablePassive)) return;
  for (int j = 0; j < m.njnt; ++j) {
    const S k = m.jnt_stiffness[j];
    if (k == S(0)) continue;
    const int type = m.jnt_type[j];
    int qa = m.jnt_qposadr[j];
    S* f = d.qfrc_passive + m.jnt_dofadr[j];
    if (type == static_cast<int>(JointType::hinge) || type == static_cast<int>(JointType::slide)) {
      f[0] = -k * (d.qpos[qa] - m.qpos_spring[qa]);
      continue;
    }
    if (type == static_cast<int>(JointType::free)) {
      for (int c = 0; c < 3; ++c) f[c] = -k * (d.qpos[qa + c] - m.qpos_spring[qa + c]);
      f += 3;
      qa += 3;
    }
    const Vec3<S> dif = quat_sub(load_quat(d.qpos + qa), load_quat(m.qpos_spring + qa));
    for (int c = 0; c < 3; ++c) f[c] = -k * dif[c];
  }
  for (int i = 0; i < m.nv; ++i) d.qfrc_passive[i] -= m.dof_damping[i] * d.qvel[i];
}

/// The control an actuator applies: clamped to ctrlrange when ctrllimited (unless clamping is
/// disabled).
template <class S>
PHYDREAM_HD S actuator_ctrl(const ModelView<S>& m, const Data<S>& d, int a) {
  S c = d.ctrl[a];
  if (m.actuator_ctrllimited[a] && !m.disabled(kDisableClampctrl)) {
    const S lo = m.actuator_ctrlrange[2 * a], hi = m.actuator_ctrlrange[2 * a + 1];
    c = c < lo ? lo : (c > hi ? hi : c);
  }
  return c;
}

/// Motors: actuator_force = (clamped) ctrl, qfrc_actuator = sum over actuators of gear * force
/// on their joint's dof; both zero when actuation is disabled.
template <class S>
PHYDREAM_HD_STAGE void actuation(const ModelView<S>& m, const Data<S>& d) {
  for (int i = 0; i < m.nv; ++i) d.qfrc_actuator[i] = S(0);
  for (int a = 0; a < m.nu; ++a) {
    d.actuator_force[a] = m.disabled(kDisableActuation) ? S(0) : actuator_ctrl(m, d, a);
  }
  if (m.disabled(kDisableActuation)) return;
  for (int a = 0; a < m.nu; ++a) {
    d.qfrc_actuator[m.jnt_dofadr[m.actuator_trnid[a]]] += m.actuator_gear[a] * d.actuator_force[a];
  }
}

/// qfrc_smooth = passive - bias + actuator, qacc = M^-1 qfrc_smooth.
template <class S>
PHYDREAM_HD_STAGE void acceleration(const ModelView<S>& m, const Data<S>& d) {
  for (int i = 0; i < m.nv; ++i) {
    d.qfrc_smooth[i] = (d.qfrc_passive[i] - d.qfrc_bias[i]) + d.qfrc_actuator[i];
    d.qacc[i] = d.qfrc_smooth[i];
  }
  solve_m(m, d, d.qacc);
}

}  // namespace phydream
