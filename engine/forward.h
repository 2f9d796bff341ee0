// Forward dynamics and the time step of an articulated model, with MuJoCo 2.2.2's
// semantics so that trajectories can be compared with mj_step:
//
//   forward(m, d)   every stage of engine/smooth.h in order: from qpos, qvel, ctrl to qacc
//   step(m, d)      forward, then one step of the model's integrator, in place:
//     euler  semi-implicit Euler with the dof damping integrated implicitly (MuJoCo's
//            mj_Euler): when some dof has damping > 0,
//              qacc_euler = (M + h diag(damping))^-1 qfrc_smooth
//            (qfrc_smooth already holds -damping qvel; qfrc_constraint is added when the model
//            has constraints), else qacc_euler = qacc; then
//              qvel' = qvel + h qacc_euler,  qpos' = integrate_pos(qpos, qvel', h)
//     rk4    classic four-stage Runge-Kutta on (qpos, qvel) (MuJoCo's mj_RungeKutta with N = 4):
//            stage s > 1 starts from qpos_s = integrate_pos(qpos_0, a_s v_{s-1}, h),
//            qvel_s = qvel_0 + (a_s acc_{s-1}) h with a = (1/2, 1/2, 1); the step ends at
//              qpos' = integrate_pos(qpos_0, sum_s b_s v_s, h),  qvel' = qvel_0 + (sum_s b_s acc_s) h
//            with b = (1/6, 1/3, 1/3, 1/6). Positions are integrated on the joint manifold, so
//            ball and free quaternions stay unit; damping is explicit here, as in MuJoCo
//   integrate_pos   qpos <- qpos (+) h qvel: hinge and slide add, ball and free quaternions rotate
//                   by the angular velocity in the body (child) frame, q exp(h w), and free
//                   positions move by the world-frame linear velocity
//   differentiate_pos   its inverse: qvel = (qpos2 (-) qpos1) / h
//
// Data holds the state (qpos, qvel, ctrl, time) on entry of step() and the next state on exit;
// the intermediates left in Data are those of the last forward pass (RK4: the fourth stage).
// Every function here is PHYDREAM_HD and allocates nothing: all scratch lives in Data.
#pragma once

#include "engine/constraint.h"
#include "engine/smooth.h"

namespace phydream {

/// Every stage of the dynamics: qacc and every intermediate from qpos, qvel and ctrl; the
/// constraint stage (engine/constraint.h) last, which leaves qacc unchanged (and qacc_smooth a
/// copy of it) for a model without constraints.
template <class S>
PHYDREAM_HD_STAGE void forward(const ModelView<S>& m, const Data<S>& d) {
  // position
  kinematics(m, d);
  com_pos(m, d);
  crb(m, d);
  factor_m(m, d);
  // velocity
  com_vel(m, d);
  passive(m, d);
  rne(m, d);
  // actuation and acceleration
  actuation(m, d);
  acceleration(m, d);
  // constraints: contacts, limits, friction loss
  constraints(m, d);
}

/// qpos <- qpos (+) h qvel on the joint manifold. qpos: (nq), qvel: (nv).
template <class S>
PHYDREAM_HD_STAGE void integrate_pos(const ModelView<S>& m, S* qpos, const S* qvel, S h) {
  for (int j = 0; j < m.njnt; ++j) {
    const int type = m.jnt_type[j];
    S* q = qpos + m.jnt_qposadr[j];
    const S* v = qvel + m.jnt_dofadr[j];
    if (type == static_cast<int>(JointType::free)) {
      for (int k = 0; k < 3; ++k) q[k] += v[k] * h;
      q += 3;
      v += 3;
    }
    if (type == static_cast<int>(JointType::free) || type == static_cast<int>(JointType::ball)) {
      store(q, quat_integrate(load_quat(q), load_vec3(v), h));
    } else {
      q[0] += v[0] * h;
    }
  }
}

/// qvel = (qpos2 (-) qpos1) / h: the velocity that integrate_pos turns qpos1 into qpos2 with in
/// time h (ball and free rotations: the rotation vector of qpos1^-1 qpos2, in qpos1's frame).
/// qvel: (nv), qpos1, qpos2: (nq).
template <class S>
PHYDREAM_HD_STAGE void differentiate_pos(const ModelView<S>& m, S* qvel, const S* qpos1, const S* qpos2, S h) {
  for (int j = 0; j < m.njnt; ++j) {
    const int type = m.jnt_type[j];
    const S* q1 = qpos1 + m.jnt_qposadr[j];
    const S* q2 = qpos2 + m.jnt_qposadr[j];
    S* v = qvel + m.jnt_dofadr[j];
    if (type == static_cast<int>(JointType::free)) {
      for (int k = 0; k < 3; ++k) v[k] = (q2[k] - q1[k]) / h;
      q1 += 3;
      q2 += 3;
      v += 3;
    }
    if (type == static_cast<int>(JointType::free) || type == static_cast<int>(JointType::ball)) {
      const Vec3<S> r = quat_sub(load_quat(q2), load_quat(q1));
      for (int k = 0; k < 3; ++k) v[k] = r[k] / h;
    } else {
      v[0] = (q2[0] - q1[0]) / h;
    }
  }
}

namespace detail {

/// Whether any dof has damping, which the Euler step then integrates implicitly.
template <class S>
PHYDREAM_HD bool has_damping(const ModelView<S>& m) {
  for (int i = 0; i < m.nv; ++i) {
    if (m.dof_damping[i] > S(0)) return true;
  }
  return false;
}

/// The Euler step's acceleration into d.qacc_euler: (M + h diag(damping))^-1 (qfrc_smooth +
/// qfrc_constraint) when some dof is damped (factor in qH, qHDiagInv), else qacc.
template <class S>
PHYDREAM_HD_STAGE void euler_acceleration(const ModelView<S>& m, const Data<S>& d) {
  const int nv = m.nv;
  if (!has_damping(m)) {
    for (int i = 0; i < nv; ++i) d.qacc_euler[i] = d.qacc[i];
    return;
  }
  // M + h diag(damping): the damping force at the end-of-step velocity
  for (int i = 0; i < nv; ++i) {
    for (int j = m.dof_parentid[i]; j >= 0; j = m.dof_parentid[j]) d.qH[nv * i + j] = d.qM[nv * i + j];
    d.qH[nv * i + i] = d.qM[nv * i + i] + m.timestep * m.dof_damping[i];
  }
  factor_ltdl(m, d.qH, d.qH, d.qHDiagInv);
  if (m.nefc_max > 0) {
    for (int i = 0; i < nv; ++i) d.qacc_euler[i] = d.qfrc_smooth[i] + d.qfrc_constraint[i];
  } else {
    for (int i = 0; i < nv; ++i) d.qacc_euler[i] = d.qfrc_smooth[i];
  }
  solve_ltdl(m, d.qH, d.qHDiagInv, d.qacc_euler);
}

/// The RK4 tableau (a: stage offsets along the previous stage's derivative; b: weights).
template <class S>
PHYDREAM_HD S rk4_a(int s) { return s == 2 ? S(1) : S(0.5); }
template <class S>
PHYDREAM_HD S rk4_b(int s) { return (s == 0 || s == 3) ? S(1) / S(6) : S(1) / S(3); }

}  // namespace detail

/// One time step in place: forward, then the model's integrator (see the top of this file).
template <class S>
PHYDREAM_HD_STAGE void step(const ModelView<S>& m, const Data<S>& d) {
  const S h = m.timestep;
  const int nv = m.nv;
  forward(m, d);
  if (m.integrator == static_cast<int>(ModelIntegrator::euler)) {
    detail::euler_acceleration(m, d);
    for (int i = 0; i < nv; ++i) d.qvel[i] += d.qacc_euler[i] * h;
    integrate_pos(m, d.qpos, d.qvel, h);
    d.time[0] += h;
    return;
  }

  // RK4: the stage-1 derivative is the forward pass above
  for (int i = 0; i < m.nq; ++i) d.rk_qpos[i] = d.qpos[i];
  for (int i = 0; i < nv; ++i) {
    d.rk_qvel[i] = d.qvel[i];
    d.rk_dqpos[i] = detail::rk4_b<S>(0) * d.qvel[i];
    d.rk_dqvel[i] = detail::rk4_b<S>(0) * d.qacc[i];
  }
  for (int s = 1; s < 4; ++s) {
    // the stage state, from the step start along the previous stage's derivative
    const S a = detail::rk4_a<S>(s - 1);
    for (int i = 0; i < m.nq; ++i) d.qpos[i] = d.rk_qpos[i];
    for (int i = 0; i < nv; ++i) d.qvel[i] = a * d.qvel[i];
    integrate_pos(m, d.qpos, d.qvel, h);
    for (int i = 0; i < nv; ++i) d.qvel[i] = d.rk_qvel[i] + (a * d.qacc[i]) * h;
    forward(m, d);
    const S b = detail::rk4_b<S>(s);
    for (int i = 0; i < nv; ++i) {
      d.rk_dqpos[i] += b * d.qvel[i];
      d.rk_dqvel[i] += b * d.qacc[i];
    }
  }
  for (int i = 0; i < m.nq; ++i) d.qpos[i] = d.rk_qpos[i];
  integrate_pos(m, d.qpos, d.rk_dqpos, h);
  for (int i = 0; i < nv; ++i) d.qvel[i] = d.rk_qvel[i] + d.rk_dqvel[i] * h;
  d.time[0] += h;
}

}  // namespace phydream
