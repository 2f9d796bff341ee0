// Constraints of an articulated model and MuJoCo's soft-constraint solver, with MuJoCo 2.2.2's
// semantics (the Computation chapter; mj_makeConstraint, mj_fwdConstraint, mj_solNewton) so that
// trajectories with contact can be compared with mj_step:
//
//   geom_poses        world pose of every geom (geom_xpos, geom_xmat), as mj_kinematics
//   collision         narrow phase over the model's collision candidates (engine/collision.h):
//                     contacts con_* (dist, pos, frame, candidate)
//   make_constraints  the constraint rows, in MuJoCo's order: dof friction loss, joint limits,
//                     contacts (frictionless: 1 row; pyramidal cone: 2 (condim - 1) edges
//                     n +- mu_k t_k; elliptic cone: condim rows n, t1, t2); their Jacobian
//                     efc_J, violation efc_pos, margin; the regulariser R = (1 - imp) / imp *
//                     diagApprox with the impedance imp(pos) from solimp, the friction rows'
//                     R from impratio, D = 1 / R; and the reference acceleration
//                     aref = -B (J qvel) - K imp (pos - margin) from solref (both forms)
//   solve_constraints MuJoCo's primal Newton method: qacc minimises
//                       0.5 (qacc - qacc_smooth)' M (qacc - qacc_smooth) + s(J qacc - aref)
//                     with s the soft-constraint cost of each row's state (quadratic, satisfied,
//                     linear friction loss, elliptic cone zones); Newton directions with the
//                     exact Hessian H = M + J' (d2 s) J, an exact line search (one-dimensional
//                     Newton with bracketing), MuJoCo's tolerance on the scaled improvement and
//                     gradient, the iteration cap, and the warm start from the last solution
//                     (qacc_warmstart) or qacc_smooth, whichever costs less
//   constraints       all of the above, called by forward() after the smooth dynamics: on exit
//                     qacc is the constrained acceleration and qfrc_constraint = J' efc_force
//
// A model whose constraints are all disabled or absent has nefc_max = 0: then constraints() only
// copies qacc_smooth, and the step is exactly the contact-free one. Every function is PHYDREAM_HD
// and allocates nothing: the capacities (ncon_max, nefc_max) are fixed by the model, and all
// scratch lives in Data. A solve that reaches the iteration cap without meeting the tolerance,
// or produces a non-finite value, is reported in d.solver_status (never silently).
//
// The solver (solve_constraints and its helpers) is templated on the data's scalar S and the
// model's MS separately: the simulation runs it with S = MS, the unrolled derivatives
// (engine/constraint_unrolled.h) run the same code on a Data of dual numbers S = Dual<MS, K>
// (engine/dual.h), whose values are those of the simulation's solve bit for bit.
#pragma once

#include "engine/collision.h"
#include "engine/smooth.h"

namespace phydream {

/// Constraint row types (mjtConstraint's numbering for those PhyDream makes).
enum ConstraintType : int {
  kConstraintFrictionDof = 1,
  kConstraintLimitJoint = 3,
  kConstraintContactFrictionless = 5,
  kConstraintContactPyramidal = 6,
  kConstraintContactElliptic = 7,
};

/// Constraint row states at a solution (mjtConstraintState's numbering).
enum ConstraintState : int {
  kStateSatisfied = 0,
  kStateQuadratic = 1,
  kStateLinearNeg = 2,
  kStateLinearPos = 3,
  kStateCone = 4,
};

/// How the last solve ended.
enum SolverStatus : int {
  kSolverConverged = 0,   // improvement or gradient below the tolerance, or no constraint
  kSolverStalled = 1,     // the line search found no improvement: at the solution to rounding
  kSolverMaxIter = 2,     // the iteration cap was reached first
  kSolverNonfinite = 3,   // a non-finite value appeared
};

/// Whether a solve ending in `status` is to be flagged for its environment.
PHYDREAM_HD bool solver_failed(int status) { return status >= kSolverMaxIter; }

namespace detail {

// MuJoCo's bounds on impedance and denominators (mjMINIMP, mjMAXIMP, mjMINVAL)
template <class S>
PHYDREAM_HD constexpr S min_imp() { return S(0.0001); }
template <class S>
PHYDREAM_HD constexpr S max_imp() { return S(0.9999); }
template <class S>
PHYDREAM_HD constexpr S min_val() { return S(1e-15); }

template <class S>
PHYDREAM_HD S max_(S a, S b) { return a > b ? a : b; }
template <class S>
PHYDREAM_HD S min_(S a, S b) { return a < b ? a : b; }

PHYDREAM_HD float pow_(float x, float y) { return powf(x, y); }
PHYDREAM_HD double pow_(double x, double y) { return pow(x, y); }

/// Rows of one contact: 1 frictionless, 2 (condim - 1) pyramid edges, condim elliptic.
PHYDREAM_HD int contact_rows(int condim, int cone) {
  return condim == 1 ? 1 : (cone == 0 ? 2 * (condim - 1) : condim);
}

}  // namespace detail

// =============================================================================================
// geometry and Jacobians

/// World pose of every geom: geom_xmat from the body quaternion times the geom's, geom_xpos =
/// xmat geom_pos + xpos (mj_kinematics' order of operations).
template <class S>
PHYDREAM_HD_STAGE void geom_poses(const ModelView<S>& m, const Data<S>& d) {
  for (int g = 0; g < m.ngeom; ++g) {
    const int b = m.geom_bodyid[g];
    store(d.geom_xmat + 9 * g, quat_to_mat(quat_mul(load_quat(d.xquat + 4 * b), load_quat(m.geom_quat + 4 * g))));
    store(d.geom_xpos + 3 * g, mat_vec(load_mat3(d.xmat + 9 * b), load_vec3(m.geom_pos + 3 * g)) + load_vec3(d.xpos + 3 * b));
  }
}

/// The Jacobian of a world point attached to `body` (MuJoCo's mj_jac): jacp (3 x nv) maps qvel
/// to the point's world velocity, jacr (3 x nv, may be null) to the body's angular velocity.
/// Both row-major and fully overwritten.
template <class S>
PHYDREAM_HD void point_jacobian(const ModelView<S>& m, const Data<S>& d, const S* point, int body, S* jacp, S* jacr) {
  const int nv = m.nv;
  for (int k = 0; k < 3 * nv; ++k) {
    jacp[k] = S(0);
    if (jacr) jacr[k] = S(0);
  }
  const S* com = d.subtree_com + 3 * m.body_rootid[body];
  const S off[3] = {point[0] - com[0], point[1] - com[1], point[2] - com[2]};
  while (body > 0 && m.body_dofnum[body] == 0) body = m.body_parentid[body];
  if (body == 0) return;
  for (int da = m.body_dofadr[body] + m.body_dofnum[body] - 1; da >= 0; da = m.dof_parentid[da]) {
    const S* c = d.cdof + 6 * da;
    if (jacr) {
      for (int k = 0; k < 3; ++k) jacr[k * nv + da] = c[k];
    }
    const S t[3] = {c[1] * off[2] - c[2] * off[1], c[2] * off[0] - c[0] * off[2], c[0] * off[1] - c[1] * off[0]};
    for (int k = 0; k < 3; ++k) jacp[k * nv + da] = c[3 + k] + t[k];
  }
}

// =============================================================================================
// collision

/// Contacts of every collision candidate into con_*; ncon their number (at most ncon_max).
template <class S>
PHYDREAM_HD_STAGE void collision(const ModelView<S>& m, const Data<S>& d) {
  int n = 0;
  Contact<S> found[kMaxContactsPerPair];
  for (int c = 0; c < m.ncand; ++c) {
    const int g1 = m.cand_geom1[c], g2 = m.cand_geom2[c];
    const int k = collide_geoms<S>(m.geom_type[g1], m.geom_type[g2], d.geom_xpos + 3 * g1, d.geom_xmat + 9 * g1,
                                   m.geom_size + 3 * g1, d.geom_xpos + 3 * g2, d.geom_xmat + 9 * g2,
                                   m.geom_size + 3 * g2, m.cand_margin[c], found);
    for (int i = 0; i < k; ++i, ++n) {
      d.con_cand[n] = S(c);
      d.con_dist[n] = found[i].dist;
      for (int j = 0; j < 3; ++j) d.con_pos[3 * n + j] = found[i].pos[j];
      for (int j = 0; j < 9; ++j) d.con_frame[9 * n + j] = found[i].frame[j];
    }
  }
  d.ncon[0] = S(n);
}

// =============================================================================================
// constraint rows

namespace detail {

/// Appends one row's bookkeeping (the Jacobian row is written by the caller).
template <class S>
PHYDREAM_HD void set_row(const Data<S>& d, int r, int type, int id, S pos, S margin, S frictionloss) {
  d.efc_type[r] = S(type);
  d.efc_id[r] = S(id);
  d.efc_pos[r] = pos;
  d.efc_margin[r] = margin;
  d.efc_frictionloss[r] = frictionloss;
}

/// Impedance imp(pos - margin) from solimp = (dmin, dmax, width, midpoint, power), and its
/// derivative (MuJoCo's getimpedance); solimp already clamped.
template <class S>
PHYDREAM_HD void impedance(const S* solimp, S pos, S margin, S* imp, S* imp_pos) {
  if (solimp[0] == solimp[1] || solimp[2] <= min_val<S>()) {
    *imp = S(0.5) * (solimp[0] + solimp[1]);
    *imp_pos = S(0);
    return;
  }
  S x = (pos - margin) / solimp[2];
  S sign = S(1);
  if (x < S(0)) {
    x = -x;
    sign = S(-1);
  }
  if (x >= S(1) || x <= S(0)) {
    *imp = x >= S(1) ? solimp[1] : solimp[0];
    *imp_pos = S(0);
    return;
  }
  S y, dy;
  const S p = solimp[4], mid = solimp[3];
  if (p == S(1)) {
    y = x;
    dy = S(1);
  } else if (x <= mid) {
    const S a = S(1) / pow_(mid, p - S(1));
    y = a * pow_(x, p);
    dy = p * a * pow_(x, p - S(1));
  } else {
    const S b = S(1) / pow_(S(1) - mid, p - S(1));
    y = S(1) - b * pow_(S(1) - x, p);
    dy = p * b * pow_(S(1) - x, p - S(1));
  }
  *imp = solimp[0] + y * (solimp[1] - solimp[0]);
  *imp_pos = dy * sign * (solimp[1] - solimp[0]) / solimp[2];
}

/// solref and solimp of a row's element, made safe as MuJoCo does: mixed solref forms fall
/// back to the default, the time constant is at least 2 timesteps (unless refsafe is disabled),
/// solimp is clamped to its valid range.
template <class S>
PHYDREAM_HD void sol_params(const ModelView<S>& m, const S* solref_in, const S* solimp_in, S* solref, S* solimp) {
  solref[0] = solref_in[0];
  solref[1] = solref_in[1];
  if ((solref[0] > S(0)) != (solref[1] > S(0))) {
    solref[0] = S(0.02);
    solref[1] = S(1);
  }
  if (!m.disabled(kDisableRefsafe) && solref[0] > S(0)) solref[0] = max_(solref[0], S(2) * m.timestep);
  for (int k = 0; k < 5; ++k) solimp[k] = solimp_in[k];
  solimp[0] = min_(max_imp<S>(), max_(min_imp<S>(), solimp[0]));
  solimp[1] = min_(max_imp<S>(), max_(min_imp<S>(), solimp[1]));
  solimp[2] = max_(S(0), solimp[2]);
  solimp[3] = min_(max_imp<S>(), max_(min_imp<S>(), solimp[3]));
  solimp[4] = max_(S(1), solimp[4]);
}

}  // namespace detail

/// The constraint rows of the current configuration (see the top of this file): efc_* for rows
/// [0, nefc), con_efc_adr and con_mu for every contact. Needs kinematics, com_pos, crb (cdof,
/// subtree_com), collision, and qvel for efc_vel and efc_aref.
template <class S>
PHYDREAM_HD_STAGE void make_constraints(const ModelView<S>& m, const Data<S>& d) {
  const int nv = m.nv;
  int r = 0;
  int nf = 0;
  const bool on = !m.disabled(kDisableConstraint);

  // dof friction loss
  if (on && !m.disabled(kDisableFrictionloss)) {
    for (int i = 0; i < nv; ++i) {
      if (!(m.dof_frictionloss[i] > S(0))) continue;
      for (int k = 0; k < nv; ++k) d.efc_J[nv * r + k] = S(k == i);
      detail::set_row(d, r, kConstraintFrictionDof, i, S(0), S(0), m.dof_frictionloss[i]);
      d.efc_diagApprox[r] = m.dof_invweight0[i];
      ++r;
      ++nf;
    }
  }

  // joint limits
  if (on && !m.disabled(kDisableLimit)) {
    for (int j = 0; j < m.njnt; ++j) {
      if (!m.jnt_limited[j]) continue;
      const int type = m.jnt_type[j];
      const S margin = m.jnt_margin[j];
      const int dof = m.jnt_dofadr[j];
      if (type == static_cast<int>(JointType::slide) || type == static_cast<int>(JointType::hinge)) {
        const S value = d.qpos[m.jnt_qposadr[j]];
        for (int side = -1; side <= 1; side += 2) {
          const S dist = S(side) * (m.jnt_range[2 * j + (side + 1) / 2] - value);
          if (!(dist < margin)) continue;
          for (int k = 0; k < nv; ++k) d.efc_J[nv * r + k] = S(0);
          d.efc_J[nv * r + dof] = S(-side);
          detail::set_row(d, r, kConstraintLimitJoint, j, dist, margin, S(0));
          d.efc_diagApprox[r] = m.dof_invweight0[dof];
          ++r;
        }
      } else if (type == static_cast<int>(JointType::ball)) {
        S angle;
        const Vec3<S> axis = normalize3(quat_to_rotvec(load_quat(d.qpos + m.jnt_qposadr[j])), &angle);
        const S dist = detail::max_(m.jnt_range[2 * j], m.jnt_range[2 * j + 1]) - angle;
        if (!(dist < margin)) continue;
        for (int k = 0; k < nv; ++k) d.efc_J[nv * r + k] = S(0);
        for (int k = 0; k < 3; ++k) d.efc_J[nv * r + dof + k] = -axis[k];
        detail::set_row(d, r, kConstraintLimitJoint, j, dist, margin, S(0));
        d.efc_diagApprox[r] = m.dof_invweight0[dof];
        ++r;
      }
    }
  }

  // contacts
  const int ncon = static_cast<int>(d.ncon[0]);
  S* jac = d.efc_jac_scratch;  // 6 x nv: body 1's point Jacobian, body 2's, then the difference
  for (int c = 0; c < ncon; ++c) {
    const int cand = static_cast<int>(d.con_cand[c]);
    const int condim = m.cand_condim[cand];
    const S includemargin = m.cand_margin[cand] - m.cand_gap[cand];
    const S dist = d.con_dist[c];
    if (!(dist < includemargin) || !on || m.disabled(kDisableContact)) {
      d.con_efc_adr[c] = S(-1);
      continue;
    }
    d.con_efc_adr[c] = S(r);
    const int b1 = m.geom_bodyid[m.cand_geom1[cand]];
    const int b2 = m.geom_bodyid[m.cand_geom2[cand]];
    const S* pos = d.con_pos + 3 * c;
    const S* frame = d.con_frame + 9 * c;
    point_jacobian(m, d, pos, b1, jac, static_cast<S*>(nullptr));
    point_jacobian(m, d, pos, b2, jac + 3 * nv, static_cast<S*>(nullptr));
    for (int k = 0; k < 3 * nv; ++k) jac[3 * nv + k] -= jac[k];
    // the difference in the contact frame: rows normal, tangent 1, tangent 2 into jac[0, 3 nv)
    const int nframe = condim > 1 ? 3 : 1;
    for (int a = 0; a < nframe; ++a) {
      for (int k = 0; k < nv; ++k) {
        jac[nv * a + k] = frame[3 * a] * jac[3 * nv + k] + frame[3 * a + 1] * jac[4 * nv + k] +
                          frame[3 * a + 2] * jac[5 * nv + k];
      }
    }
    const S* fr = m.cand_friction + 5 * cand;
    const S tran = m.body_invweight0[2 * b1] + m.body_invweight0[2 * b2];
    if (condim == 1) {
      for (int k = 0; k < nv; ++k) d.efc_J[nv * r + k] = jac[k];
      detail::set_row(d, r, kConstraintContactFrictionless, c, dist, includemargin, S(0));
      d.efc_diagApprox[r] = tran;
      ++r;
    } else if (m.cone == 0) {
      for (int a = 1; a < condim; ++a) {
        const S mu = fr[a - 1];
        for (int sgn = 0; sgn < 2; ++sgn) {
          const S f = sgn == 0 ? mu : -mu;
          for (int k = 0; k < nv; ++k) d.efc_J[nv * r + k] = jac[k] + f * jac[nv * a + k];
          detail::set_row(d, r, kConstraintContactPyramidal, c, dist, includemargin, S(0));
          d.efc_diagApprox[r] = tran + mu * mu * tran;
          ++r;
        }
      }
    } else {
      for (int a = 0; a < condim; ++a) {
        for (int k = 0; k < nv; ++k) d.efc_J[nv * r + k] = jac[nv * a + k];
        detail::set_row(d, r, kConstraintContactElliptic, c, a == 0 ? dist : S(0), a == 0 ? includemargin : S(0), S(0));
        d.efc_diagApprox[r] = tran;
        ++r;
      }
    }
  }
  const int nefc = r;
  d.nefc[0] = S(nefc);
  d.nf[0] = S(nf);

  // impedance, regulariser and reference parameters, one element (dof, limit side, contact) at
  // a time: the impedance comes from the element's first row
  for (int i = 0; i < nefc;) {
    const int type = static_cast<int>(d.efc_type[i]);
    const int id = static_cast<int>(d.efc_id[i]);
    S solref[2], solimp[5];
    int dim = 1;
    if (type == kConstraintFrictionDof) {
      detail::sol_params(m, m.dof_solref + 2 * id, m.dof_solimp + 5 * id, solref, solimp);
    } else if (type == kConstraintLimitJoint) {
      detail::sol_params(m, m.jnt_solref + 2 * id, m.jnt_solimp + 5 * id, solref, solimp);
    } else {
      const int cand = static_cast<int>(d.con_cand[id]);
      detail::sol_params(m, m.cand_solref + 2 * cand, m.cand_solimp + 5 * cand, solref, solimp);
      dim = detail::contact_rows(m.cand_condim[cand], m.cone);
    }
    S imp, imp_pos;
    detail::impedance(solimp, d.efc_pos[i], d.efc_margin[i], &imp, &imp_pos);
    for (int j = 0; j < dim; ++j) {
      S* kbip = d.efc_KBIP + 4 * (i + j);
      d.efc_R[i + j] = detail::max_(detail::min_val<S>(), (S(1) - imp) * d.efc_diagApprox[i + j] / imp);
      const bool friction = type == kConstraintFrictionDof || (type == kConstraintContactElliptic && j > 0);
      const S dmax2 = detail::max_(detail::min_val<S>(), solimp[1] * solimp[1]);
      if (friction) {
        kbip[0] = S(0);
      } else if (solref[0] > S(0)) {
        kbip[0] = S(1) / detail::max_(detail::min_val<S>(), solimp[1] * solimp[1] * solref[0] * solref[0] * solref[1] * solref[1]);
      } else {
        kbip[0] = -solref[0] / dmax2;
      }
      kbip[1] = solref[1] > S(0) ? S(2) / detail::max_(detail::min_val<S>(), solimp[1] * solref[0])
                                 : -solref[1] / detail::max_(detail::min_val<S>(), solimp[1]);
      kbip[2] = imp;
      kbip[3] = imp_pos;
    }
    // frictional contacts: R of the friction directions from impratio, the regularised cone's mu
    if (type == kConstraintContactPyramidal || type == kConstraintContactElliptic) {
      const int cand = static_cast<int>(d.con_cand[id]);
      const int condim = m.cand_condim[cand];
      const S* fr = m.cand_friction + 5 * cand;
      const S r1 = d.efc_R[i] / detail::max_(detail::min_val<S>(), m.impratio);
      const S mu = fr[0] * sqrt_(r1 / d.efc_R[i]);
      d.con_mu[id] = mu;
      if (type == kConstraintContactElliptic) {
        d.efc_R[i + 1] = r1;
        for (int j = 1; j < condim - 1; ++j) d.efc_R[i + j + 1] = r1 * fr[0] * fr[0] / (fr[j] * fr[j]);
      } else {
        const S rpy = S(2) * mu * mu * d.efc_R[i];
        for (int j = 0; j < dim; ++j) d.efc_R[i + j] = rpy;
      }
    } else if (type == kConstraintContactFrictionless) {
      d.con_mu[id] = S(0);
    }
    i += dim;
  }
  for (int i = 0; i < nefc; ++i) {
    d.efc_D[i] = S(1) / d.efc_R[i];
    const S imp = d.efc_KBIP[4 * i + 2];
    d.efc_diagApprox[i] = d.efc_R[i] * imp / (S(1) - imp);
  }

  // reference acceleration from the constraint velocity J qvel
  for (int i = 0; i < nefc; ++i) {
    S v = S(0);
    for (int k = 0; k < nv; ++k) v += d.efc_J[nv * i + k] * d.qvel[k];
    d.efc_vel[i] = v;
    const S* kbip = d.efc_KBIP + 4 * i;
    d.efc_aref[i] = -kbip[1] * v - kbip[0] * kbip[2] * (d.efc_pos[i] - d.efc_margin[i]);
  }
}

// =============================================================================================
// the soft-constraint cost and its solver

namespace detail {

// the solver's functions take the data's scalar S and the model's MS separately (S = MS, or
// S = Dual<MS, K> for the unrolled derivatives)

/// res = efc_J x (nefc).
template <class S, class MS = S>
PHYDREAM_HD void mul_jac(const ModelView<MS>& m, const Data<S>& d, int nefc, const S* x, S* res) {
  for (int i = 0; i < nefc; ++i) {
    S v = S(0);
    for (int k = 0; k < m.nv; ++k) v += d.efc_J[m.nv * i + k] * x[k];
    res[i] = v;
  }
}

/// res = efc_J' f (nv).
template <class S, class MS = S>
PHYDREAM_HD void mul_jac_t(const ModelView<MS>& m, const Data<S>& d, int nefc, const S* f, S* res) {
  for (int k = 0; k < m.nv; ++k) res[k] = S(0);
  for (int i = 0; i < nefc; ++i) {
    if (exact_zero(f[i])) continue;
    for (int k = 0; k < m.nv; ++k) res[k] += d.efc_J[m.nv * i + k] * f[i];
  }
}

/// res = M x with the dense mass matrix (both triangles stored).
template <class S, class MS = S>
PHYDREAM_HD void mul_m(const ModelView<MS>& m, const Data<S>& d, const S* x, S* res) {
  for (int i = 0; i < m.nv; ++i) {
    S v = S(0);
    for (int k = 0; k < m.nv; ++k) v += d.qM[m.nv * i + k] * x[k];
    res[i] = v;
  }
}

/// Cholesky factor of the n x n symmetric matrix a (lower triangle, in place); pivots below
/// min_val are raised to it, as mju_cholFactor does.
template <class S>
PHYDREAM_HD void cholesky(S* a, int n) {
  for (int j = 0; j < n; ++j) {
    S djj = a[n * j + j];
    for (int k = 0; k < j; ++k) djj -= a[n * j + k] * a[n * j + k];
    djj = sqrt_(max_(djj, min_val<S>()));
    a[n * j + j] = djj;
    for (int i = j + 1; i < n; ++i) {
      S v = a[n * i + j];
      for (int k = 0; k < j; ++k) v -= a[n * i + k] * a[n * j + k];
      a[n * i + j] = v / djj;
    }
  }
}

/// x <- (L L')^-1 x with the factor from cholesky(). T: Scalar or Vec<Scalar, K>.
template <class S, class T>
PHYDREAM_HD void cholesky_solve(const S* l, int n, T* x) {
  for (int i = 0; i < n; ++i) {
    for (int k = 0; k < i; ++k) x[i] -= l[n * i + k] * x[k];
    x[i] = x[i] / l[n * i + i];
  }
  for (int i = n - 1; i >= 0; --i) {
    for (int k = i + 1; k < n; ++k) x[i] -= l[n * k + i] * x[k];
    x[i] = x[i] / l[n * i + i];
  }
}

}  // namespace detail

/// The constraint forces, states and cost at jar = J qacc - aref (mj_constraintUpdate): writes
/// efc_force, efc_state, qfrc_constraint = J' efc_force; returns the constraint part of the
/// cost. With `cone_hessian`, also each cone-zone contact's 3 x 3 Hessian of the cost in jar,
/// into sol_quad rows of that contact (9 entries from its first row's 3).
template <class S, class MS = S>
PHYDREAM_HD S constraint_update(const ModelView<MS>& m, const Data<S>& d, const S* jar, bool cone_hessian) {
  const int nefc = static_cast<int>(d.nefc[0]);
  const int nf = static_cast<int>(d.nf[0]);
  S cost = S(0);
  for (int i = 0; i < nefc; ++i) d.efc_force[i] = -d.efc_D[i] * jar[i];
  // friction loss: quadratic near zero, linear beyond R floss (a Huber cost)
  for (int i = 0; i < nf; ++i) {
    const S f = d.efc_frictionloss[i], rf = d.efc_R[i] * f;
    if (jar[i] <= -rf) {
      cost += -S(0.5) * rf * f - f * jar[i];
      d.efc_force[i] = f;
      d.efc_state[i] = S(kStateLinearNeg);
    } else if (jar[i] >= rf) {
      cost += -S(0.5) * rf * f + f * jar[i];
      d.efc_force[i] = -f;
      d.efc_state[i] = S(kStateLinearPos);
    } else {
      cost += S(0.5) * d.efc_D[i] * jar[i] * jar[i];
      d.efc_state[i] = S(kStateQuadratic);
    }
  }
  for (int i = nf; i < nefc; ++i) {
    if (static_cast<int>(d.efc_type[i]) != kConstraintContactElliptic) {
      if (jar[i] >= S(0)) {
        d.efc_force[i] = S(0);
        d.efc_state[i] = S(kStateSatisfied);
      } else {
        cost += S(0.5) * d.efc_D[i] * jar[i] * jar[i];
        d.efc_state[i] = S(kStateQuadratic);
      }
      continue;
    }
    // elliptic cone: in the scaled space U = (mu jar_n, friction_k jar_k) the cone is circular
    const int c = static_cast<int>(d.efc_id[i]);
    const int cand = static_cast<int>(d.con_cand[c]);
    const int dim = m.cand_condim[cand];
    const MS* fr = m.cand_friction + 5 * cand;
    const S mu = d.con_mu[c];
    S u[3];
    u[0] = jar[i] * mu;
    S tt = S(0);
    for (int j = 1; j < dim; ++j) {
      u[j] = jar[i + j] * fr[j - 1];
      tt += u[j] * u[j];
    }
    const S n = u[0], t = sqrt_(tt);
    int state;
    if (n >= mu * t || (t <= S(0) && n >= S(0))) {
      for (int j = 0; j < dim; ++j) d.efc_force[i + j] = S(0);
      state = kStateSatisfied;
    } else if (mu * n + t <= S(0) || (t <= S(0) && n < S(0))) {
      for (int j = 0; j < dim; ++j) cost += S(0.5) * d.efc_D[i + j] * jar[i + j] * jar[i + j];
      state = kStateQuadratic;
    } else {
      // middle zone: cost 0.5 Dm (N - mu T)^2
      const S dm = d.efc_D[i] / (mu * mu * (S(1) + mu * mu));
      const S nmt = n - mu * t;
      cost += S(0.5) * dm * nmt * nmt;
      d.efc_force[i] = -dm * nmt * mu;
      for (int j = 1; j < dim; ++j) d.efc_force[i + j] = -d.efc_force[i] / t * u[j] * fr[j - 1];
      state = kStateCone;
      if (cone_hessian) {
        // d2 cost / d jar2 = scale' H_u scale with H_u of 0.5 Dm (N - mu T)^2 in U
        S h[9];
        h[0] = S(1);
        for (int j = 1; j < dim; ++j) h[j] = -mu / t * u[j];
        for (int a = 1; a < dim; ++a) {
          for (int b = a; b < dim; ++b) h[a * dim + b] = mu * n / (t * t * t) * u[b] * u[a];
          h[a * dim + a] += mu * mu - mu * n / t;
        }
        for (int a = 0; a < dim; ++a) {
          const S sa = dm * (a == 0 ? mu : S(fr[a - 1]));
          for (int b = a; b < dim; ++b) h[a * dim + b] *= sa * (b == 0 ? mu : S(fr[b - 1]));
        }
        for (int a = 0; a < dim; ++a) {
          for (int b = a + 1; b < dim; ++b) h[b * dim + a] = h[a * dim + b];
        }
        for (int k = 0; k < dim * dim; ++k) d.sol_quad[3 * i + k] = h[k];
      }
    }
    for (int j = 0; j < dim; ++j) d.efc_state[i + j] = S(state);
    i += dim - 1;
  }
  detail::mul_jac_t(m, d, nefc, d.efc_force, d.qfrc_constraint);
  return cost;
}

namespace detail {

/// The Newton Hessian H = M + J' D_quadratic J + sum over cone contacts of J_c' H_c J_c, factored
/// in place into sol_H. Needs constraint_update(..., cone_hessian = true) at the current point.
template <class S, class MS = S>
PHYDREAM_HD void newton_hessian(const ModelView<MS>& m, const Data<S>& d) {
  const int nv = m.nv, nefc = static_cast<int>(d.nefc[0]);
  S* h = d.sol_H;
  for (int k = 0; k < nv * nv; ++k) h[k] = d.qM[k];
  for (int i = 0; i < nefc; ++i) {
    const int state = static_cast<int>(d.efc_state[i]);
    if (state == kStateQuadratic) {
      const S* j = d.efc_J + nv * i;
      const S di = d.efc_D[i];
      for (int a = 0; a < nv; ++a) {
        if (exact_zero(j[a])) continue;
        const S dja = di * j[a];
        for (int b = 0; b <= a; ++b) h[nv * a + b] += dja * j[b];
      }
    } else if (state == kStateCone) {
      const int dim = m.cand_condim[static_cast<int>(d.con_cand[static_cast<int>(d.efc_id[i])])];
      const S* hc = d.sol_quad + 3 * i;
      for (int p = 0; p < dim; ++p) {
        const S* jp = d.efc_J + nv * (i + p);
        for (int q = 0; q < dim; ++q) {
          const S* jq = d.efc_J + nv * (i + q);
          const S w = hc[dim * p + q];
          for (int a = 0; a < nv; ++a) {
            const S wa = w * jp[a];
            for (int b = 0; b <= a; ++b) h[nv * a + b] += wa * jq[b];
          }
        }
      }
      i += dim - 1;
    }
  }
  cholesky(h, nv);
}

/// Cost of the Gauss term 0.5 (qacc - qacc_smooth)' (M qacc - qfrc_smooth).
template <class S, class MS = S>
PHYDREAM_HD S gauss_cost(const ModelView<MS>& m, const Data<S>& d, const S* ma, const S* qacc) {
  S g = S(0);
  for (int i = 0; i < m.nv; ++i) g += S(0.5) * (ma[i] - d.qfrc_smooth[i]) * (qacc[i] - d.qacc_smooth[i]);
  return g;
}

/// Cost along the search line qacc + alpha search, with its first two derivatives in alpha.
/// The per-row quadratics are in sol_quad (line_prepare); gauss holds the Gauss term's.
template <class S>
struct LinePoint {
  S alpha, cost, d1, d2;
};

template <class S, class MS = S>
PHYDREAM_HD LinePoint<S> line_eval(const ModelView<MS>& m, const Data<S>& d, const S* gauss, S alpha) {
  const int nefc = static_cast<int>(d.nefc[0]);
  const int nf = static_cast<int>(d.nf[0]);
  S q[3] = {gauss[0], gauss[1], gauss[2]};
  S cost = S(0), d1 = S(0), d2 = S(0);
  const S* jaref = d.efc_jar;
  const S* jv = d.sol_Jv;
  for (int i = 0; i < nf; ++i) {
    const S x = jaref[i] + alpha * jv[i];
    const S f = d.efc_frictionloss[i], rf = d.efc_R[i] * f;
    if (-rf < x && x < rf) {
      for (int k = 0; k < 3; ++k) q[k] += d.sol_quad[3 * i + k];
    } else if (x <= -rf) {
      q[0] += f * (-S(0.5) * rf - jaref[i]);
      q[1] += -f * jv[i];
    } else {
      q[0] += f * (-S(0.5) * rf + jaref[i]);
      q[1] += f * jv[i];
    }
  }
  for (int i = nf; i < nefc; ++i) {
    if (static_cast<int>(d.efc_type[i]) != kConstraintContactElliptic) {
      if (jaref[i] + alpha * jv[i] < S(0)) {
        for (int k = 0; k < 3; ++k) q[k] += d.sol_quad[3 * i + k];
      }
      continue;
    }
    const int c = static_cast<int>(d.efc_id[i]);
    const int dim = m.cand_condim[static_cast<int>(d.con_cand[c])];
    const S* quad = d.sol_quad + 3 * i;
    const S mu = d.con_mu[c];
    const S n = quad[3] + alpha * quad[4];
    const S tsq = quad[5] + alpha * (S(2) * quad[6] + alpha * quad[7]);
    if (tsq <= S(0)) {
      if (n < S(0)) {
        for (int k = 0; k < 3; ++k) q[k] += quad[k];
      }
    } else {
      const S t = sqrt_(tsq);
      if (n >= mu * t) {
        // top zone: no cost
      } else if (mu * n + t <= S(0)) {
        for (int k = 0; k < 3; ++k) q[k] += quad[k];
      } else {
        const S dm = quad[8];
        const S n1 = quad[4];
        const S t1 = (quad[6] + alpha * quad[7]) / t;
        const S t2 = quad[7] / t - (quad[6] + alpha * quad[7]) * t1 / (t * t);
        const S r = n - mu * t;
        cost += S(0.5) * dm * r * r;
        d1 += dm * r * (n1 - mu * t1);
        d2 += dm * ((n1 - mu * t1) * (n1 - mu * t1) + r * (-mu * t2));
      }
    }
    i += dim - 1;
  }
  cost += alpha * alpha * q[2] + alpha * q[1] + q[0];
  d1 += S(2) * alpha * q[2] + q[1];
  d2 += S(2) * q[2];
  if (!(d2 > S(0))) d2 = min_val<S>();
  return LinePoint<S>{alpha, cost, d1, d2};
}

/// The line's quadratics: Gauss term into gauss[3], each row's 0.5 D (jar + alpha Jv)^2 into
/// sol_quad, and each elliptic contact's cone quantities (N, its slope, |T|^2's coefficients,
/// Dm) into sol_quad[3 i + 3 .. 3 i + 8]. Needs sol_search, sol_Mv, sol_Jv, sol_Ma, efc_jar.
template <class S, class MS = S>
PHYDREAM_HD void line_prepare(const ModelView<MS>& m, const Data<S>& d, S gauss0, S* gauss) {
  const int nv = m.nv, nefc = static_cast<int>(d.nefc[0]);
  S a = S(0), b = S(0), c = S(0);
  for (int k = 0; k < nv; ++k) {
    a += d.sol_search[k] * d.sol_Ma[k];
    b += d.sol_search[k] * d.qfrc_smooth[k];
    c += d.sol_search[k] * d.sol_Mv[k];
  }
  gauss[0] = gauss0;
  gauss[1] = a - b;
  gauss[2] = S(0.5) * c;
  for (int i = 0; i < nefc; ++i) {
    S* quad = d.sol_quad + 3 * i;
    const S jar = d.efc_jar[i], jv = d.sol_Jv[i], di = d.efc_D[i];
    quad[0] = jar * di * jar;
    quad[1] = jv * di * jar;
    quad[2] = jv * di * jv;
    if (static_cast<int>(d.efc_type[i]) == kConstraintContactElliptic) {
      const int con = static_cast<int>(d.efc_id[i]);
      const int cand = static_cast<int>(d.con_cand[con]);
      const int dim = m.cand_condim[cand];
      const MS* fr = m.cand_friction + 5 * cand;
      const S mu = d.con_mu[con];
      S uu = S(0), uv = S(0), vv = S(0);
      for (int j = 1; j < dim; ++j) {
        const S dj = d.efc_D[i + j], jarj = d.efc_jar[i + j], jvj = d.sol_Jv[i + j];
        quad[0] += jarj * dj * jarj;
        quad[1] += jvj * dj * jarj;
        quad[2] += jvj * dj * jvj;
        const S u = jarj * fr[j - 1], v = jvj * fr[j - 1];
        uu += u * u;
        uv += u * v;
        vv += v * v;
      }
      quad[3] = jar * mu;
      quad[4] = jv * mu;
      quad[5] = uu;
      quad[6] = uv;
      quad[7] = vv;
      quad[8] = di / (mu * mu * (S(1) + mu * mu));
      quad[0] *= S(0.5);
      quad[2] *= S(0.5);
      i += dim - 1;
      continue;
    }
    quad[0] *= S(0.5);
    quad[2] *= S(0.5);
  }
}

/// The exact line search along sol_search: one-dimensional Newton steps on the convex cost,
/// first one-sided until the derivative changes sign, then within the bracket, until the
/// derivative is below MuJoCo's scaled tolerance; returns the step (0: no improvement).
template <class S, class MS = S>
PHYDREAM_HD S line_search(const ModelView<MS>& m, const Data<S>& d, S gauss0) {
  const int nv = m.nv;
  constexpr int kMaxEval = 50;
  S snorm = S(0);
  for (int k = 0; k < nv; ++k) snorm += d.sol_search[k] * d.sol_search[k];
  snorm = sqrt_(snorm);
  if (snorm < min_val<S>()) return S(0);
  const S scale = m.meaninertia * S(nv > 1 ? nv : 1);
  const S gtol = m.tolerance * S(0.01) * snorm * scale;

  mul_m(m, d, d.sol_search, d.sol_Mv);
  mul_jac(m, d, static_cast<int>(d.nefc[0]), d.sol_search, d.sol_Jv);
  S gauss[3];
  line_prepare(m, d, gauss0, gauss);

  int evals = 0;
  auto eval = [&](S alpha) {
    ++evals;
    return line_eval(m, d, gauss, alpha);
  };
  const LinePoint<S> p0 = eval(S(0));
  LinePoint<S> p1 = eval(p0.alpha - p0.d1 / p0.d2);
  if (p0.cost < p1.cost) p1 = p0;
  if (abs_(p1.d1) < gtol) return p1.alpha;

  // one-sided: Newton steps while the derivative keeps its sign
  const S dir = p1.d1 < S(0) ? S(1) : S(-1);
  LinePoint<S> p2 = p1;
  bool moved = false;
  while (p1.d1 * dir <= -gtol && evals < kMaxEval) {
    p2 = p1;
    moved = true;
    p1 = eval(p1.alpha - p1.d1 / p1.d2);
    if (abs_(p1.d1) < gtol) return p1.alpha;
  }
  if (evals >= kMaxEval || !moved) return p1.alpha;

  // bracketed: [p2, p1] holds the minimum; candidates are the Newton points of both ends and
  // the midpoint; an end moves to a candidate whose derivative has its sign and is smaller
  LinePoint<S> n1 = eval(p1.alpha - p1.d1 / p1.d2);
  LinePoint<S> n2 = p1;
  while (evals < kMaxEval) {
    const LinePoint<S> mid = eval(S(0.5) * (p1.alpha + p2.alpha));
    const LinePoint<S> cands[3] = {n1, n2, mid};
    int best = -1;
    for (int i = 0; i < 3; ++i) {
      if (abs_(cands[i].d1) < gtol && (best < 0 || cands[i].cost < cands[best].cost)) best = i;
    }
    if (best >= 0) return cands[best].alpha;
    bool moved1 = false, moved2 = false;
    for (int e = 0; e < 2; ++e) {
      LinePoint<S>& p = e == 0 ? p1 : p2;
      bool& mv = e == 0 ? moved1 : moved2;
      for (int i = 0; i < 3; ++i) {
        if ((p.d1 < S(0) && cands[i].d1 < S(0) && p.d1 < cands[i].d1) ||
            (p.d1 > S(0) && cands[i].d1 > S(0) && p.d1 > cands[i].d1)) {
          p = cands[i];
          mv = true;
        }
      }
    }
    if (moved1) n1 = eval(p1.alpha - p1.d1 / p1.d2);
    if (moved2) n2 = eval(p2.alpha - p2.d1 / p2.d2);
    if (!moved1 && !moved2) return mid.cost < p0.cost ? mid.alpha : S(0);
  }
  if (p1.cost <= p2.cost && p1.cost < p0.cost) return p1.alpha;
  if (p2.cost <= p1.cost && p2.cost < p0.cost) return p2.alpha;
  return S(0);
}

/// Gradient grad = M qacc - qfrc_smooth - qfrc_constraint and Newton direction into sol_*.
template <class S, class MS = S>
PHYDREAM_HD void newton_gradient(const ModelView<MS>& m, const Data<S>& d) {
  for (int k = 0; k < m.nv; ++k) {
    d.sol_grad[k] = d.sol_Ma[k] - d.qfrc_smooth[k] - d.qfrc_constraint[k];
    d.sol_Mgrad[k] = d.sol_grad[k];
  }
  cholesky_solve(d.sol_H, m.nv, d.sol_Mgrad);
}

}  // namespace detail

/// qacc from the constraint rows (see the top of this file): warm start, Newton iterations;
/// leaves efc_jar, efc_force, efc_state, qfrc_constraint at the solution, sol_H holding the
/// Cholesky factor of the Hessian there (what the implicit-function-theorem derivatives
/// solve with), solver_iter and solver_status.
template <class S, class MS = S>
PHYDREAM_HD_STAGE void solve_constraints(const ModelView<MS>& m, const Data<S>& d) {
  const int nv = m.nv, nefc = static_cast<int>(d.nefc[0]);
  d.solver_iter[0] = S(0);
  d.solver_status[0] = S(kSolverConverged);
  if (nefc == 0) {
    for (int k = 0; k < nv; ++k) {
      d.qacc[k] = d.qacc_warmstart[k] = d.qacc_smooth[k];
      d.qfrc_constraint[k] = S(0);
    }
    return;
  }

  // warm start: the last solution if it costs less than qacc_smooth
  for (int k = 0; k < nv; ++k) d.qacc[k] = d.qacc_smooth[k];
  if (!m.disabled(kDisableWarmstart)) {
    detail::mul_jac(m, d, nefc, d.qacc_warmstart, d.efc_jar);
    for (int i = 0; i < nefc; ++i) d.efc_jar[i] -= d.efc_aref[i];
    detail::mul_m(m, d, d.qacc_warmstart, d.sol_Ma);
    const S warm = constraint_update(m, d, d.efc_jar, false) + detail::gauss_cost(m, d, d.sol_Ma, d.qacc_warmstart);
    detail::mul_jac(m, d, nefc, d.qacc_smooth, d.efc_jar);
    for (int i = 0; i < nefc; ++i) d.efc_jar[i] -= d.efc_aref[i];
    const S cold = constraint_update(m, d, d.efc_jar, false);
    if (!(warm > cold)) {
      for (int k = 0; k < nv; ++k) d.qacc[k] = d.qacc_warmstart[k];
    }
  }

  // Newton iterations
  detail::mul_m(m, d, d.qacc, d.sol_Ma);
  detail::mul_jac(m, d, nefc, d.qacc, d.efc_jar);
  for (int i = 0; i < nefc; ++i) d.efc_jar[i] -= d.efc_aref[i];
  S gauss = detail::gauss_cost(m, d, d.sol_Ma, d.qacc);
  S cost = constraint_update(m, d, d.efc_jar, true) + gauss;
  detail::newton_hessian(m, d);
  detail::newton_gradient(m, d);
  for (int k = 0; k < nv; ++k) d.sol_search[k] = -d.sol_Mgrad[k];
  const S scale = S(1) / (m.meaninertia * S(nv > 1 ? nv : 1));
  int iter = 0;
  int status = kSolverMaxIter;
  while (iter < m.iterations) {
    const S alpha = detail::line_search(m, d, gauss);
    if (alpha == S(0)) {
      status = kSolverStalled;
      break;
    }
    for (int k = 0; k < nv; ++k) {
      d.qacc[k] += alpha * d.sol_search[k];
      d.sol_Ma[k] += alpha * d.sol_Mv[k];
    }
    for (int i = 0; i < nefc; ++i) d.efc_jar[i] += alpha * d.sol_Jv[i];
    const S old = cost;
    gauss = detail::gauss_cost(m, d, d.sol_Ma, d.qacc);
    cost = constraint_update(m, d, d.efc_jar, true) + gauss;
    detail::newton_hessian(m, d);
    detail::newton_gradient(m, d);
    ++iter;
    S gnorm = S(0);
    for (int k = 0; k < nv; ++k) gnorm += d.sol_grad[k] * d.sol_grad[k];
    const S improvement = (old - cost) * scale;
    const S gradient = sqrt_(gnorm) * scale;
    if (improvement < m.tolerance || gradient < m.tolerance) {
      status = kSolverConverged;
      break;
    }
    for (int k = 0; k < nv; ++k) d.sol_search[k] = -d.sol_Mgrad[k];
  }
  if (m.iterations == 0) status = kSolverConverged;
  // a stalled line search left its quadratics in sol_quad: restore the cone Hessians at the
  // solution, which the implicit-function-theorem derivatives read (engine/constraint_jvp.h)
  if (status == kSolverStalled) constraint_update(m, d, d.efc_jar, true);
  for (int k = 0; k < nv; ++k) {
    d.qacc_warmstart[k] = d.qacc[k];
    if (!isfinite_(d.qacc[k])) status = kSolverNonfinite;
  }
  d.solver_iter[0] = S(iter);
  d.solver_status[0] = S(status);
}

/// The whole constraint stage after the smooth dynamics (forward() calls it): geom poses,
/// collision, constraint rows, and the solve; qacc_smooth keeps the unconstrained acceleration.
template <class S>
PHYDREAM_HD_STAGE void constraints(const ModelView<S>& m, const Data<S>& d) {
  for (int k = 0; k < m.nv; ++k) d.qacc_smooth[k] = d.qacc[k];
  if (m.nefc_max == 0) {
    for (int k = 0; k < m.nv; ++k) d.qfrc_constraint[k] = S(0);
    d.ncon[0] = d.nefc[0] = d.nf[0] = S(0);
    d.solver_iter[0] = S(0);
    d.solver_status[0] = S(kSolverConverged);
    return;
  }
  geom_poses(m, d);
  collision(m, d);
  make_constraints(m, d);
  solve_constraints(m, d);
  // the engines report the worst outcome of a call's solves per environment
  if (d.solver_status[0] > d.solver_worst[0]) d.solver_worst[0] = d.solver_status[0];
}

}  // namespace phydream
