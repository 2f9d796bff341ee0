// Forward mode of the constraint stage (engine/constraint.h) by the implicit function theorem.
//
// At the solver's solution qacc, with every row's state (quadratic, satisfied, linear friction
// loss, cone zone) held fixed, the optimality condition of the soft-constraint cost is
//   g(qacc, p) = M qacc - qfrc_smooth - J' f(J qacc - aref; D) = 0,
// where f is each row's force: -D jar (quadratic), 0 (satisfied), -+ frictionloss (linear), the
// cone force (middle zone). Differentiating at fixed state,
//   H dqacc = dqfrc_smooth - dM qacc + dJ' f + J' df|qacc,
//   df|qacc = (df/djar) (dJ qacc - daref) + (df/dD) dD,
// with H = dg/dqacc = M + J' (-df/djar) J, exactly the Newton Hessian the solver factored at its
// last iterate (sol_H): one solve with that factor per direction. The tangents of the rows'
// inputs come from the smooth stages' tangents (xpos, xmat, cdof, subtree_com, qM, qfrc_smooth):
// geom poses, contact geometry (collide_geoms_jvp, engine/collision.h), the Jacobian of each
// contact point, the distance, the impedance imp(pos) and through it R and D (every row of an
// element scales with its first row's R, so dR / R = -dimp / (imp (1 - imp))), and
// aref = -B (J qvel) - K imp (pos - margin).
//
// Not differentiated: a limited ball joint's row (its Jacobian turns with the rotation axis);
// the Simulator refuses gradients of models that have one (engine/articulated.cpp). Where the
// state would change under the perturbation (an active-set switch), this is the one-sided
// derivative of the branch the solver found, as for any IFT gradient.
//
// In the unrolled gradient mode (ModelView::grad_mode == GradMode::unrolled) the rows' tangents
// are computed here all the same, and the solve's tangent is instead that of the solver's
// iterations as computed (constraints_unrolled_jvp, engine/constraint_unrolled.h, included at the
// end of this file).
#pragma once

#include "engine/collision.h"
#include "engine/constraint.h"
#include "engine/small_vec.h"

namespace phydream {

/// The solve's tangent by its iterations (engine/constraint_unrolled.h).
template <class S, class T>
PHYDREAM_HD_STAGE void constraints_unrolled_jvp(const ModelView<S>& m, const Data<S>& d, const Data<T>& t);

namespace detail {

/// Tangent of point_jacobian's jacp for a point with tangent dpoint: reads t.cdof and
/// t.subtree_com; djacp (3 x nv of T) overwritten.
template <class S, class T>
PHYDREAM_HD void point_jacobian_jvp(const ModelView<S>& m, const Data<S>& d, const Data<T>& t, const S* point,
                                    const T* dpoint, int body, T* djacp) {
  const int nv = m.nv;
  for (int k = 0; k < 3 * nv; ++k) djacp[k] = tangent_zero<T>();
  const int root = m.body_rootid[body];
  const S* com = d.subtree_com + 3 * root;
  const S off[3] = {point[0] - com[0], point[1] - com[1], point[2] - com[2]};
  T doff[3];
  for (int k = 0; k < 3; ++k) doff[k] = dpoint[k] - t.subtree_com[3 * root + k];
  while (body > 0 && m.body_dofnum[body] == 0) body = m.body_parentid[body];
  if (body == 0) return;
  for (int da = m.body_dofadr[body] + m.body_dofnum[body] - 1; da >= 0; da = m.dof_parentid[da]) {
    const S* c = d.cdof + 6 * da;
    const T* dc = t.cdof + 6 * da;
    // d(c_lin + c_ang x off) = dc_lin + dc_ang x off + c_ang x doff
    djacp[0 * nv + da] = dc[3] + (dc[1] * off[2] - dc[2] * off[1]) + (c[1] * doff[2] - c[2] * doff[1]);
    djacp[1 * nv + da] = dc[4] + (dc[2] * off[0] - dc[0] * off[2]) + (c[2] * doff[0] - c[0] * doff[2]);
    djacp[2 * nv + da] = dc[5] + (dc[0] * off[1] - dc[1] * off[0]) + (c[0] * doff[1] - c[1] * doff[0]);
  }
}

}  // namespace detail

/// Tangent of constraints(): reads the primal Data after forward() (rows, states, forces, the
/// factor in sol_H) and the smooth stages' tangents in t (t.qacc holding qacc_smooth's tangent
/// on entry); writes t.qacc_smooth, the tangents of geom poses, contacts, efc_J, efc_pos, efc_D,
/// efc_aref, efc_force, and t.qacc, t.qfrc_constraint. Uses t.efc_jac_scratch as scratch.
template <class S, class T>
PHYDREAM_HD_STAGE void constraints_jvp(const ModelView<S>& m, const Data<S>& d, const Data<T>& t) {
  const int nv = m.nv;
  for (int k = 0; k < nv; ++k) t.qacc_smooth[k] = t.qacc[k];
  const int nefc = m.nefc_max > 0 ? static_cast<int>(d.nefc[0]) : 0;
  if (nefc == 0) {
    for (int k = 0; k < nv; ++k) t.qfrc_constraint[k] = tangent_zero<T>();
    // the unrolled solve keeps the next solve's start (an RK4 stage's warm start)
    if (m.grad_mode == static_cast<int>(GradMode::unrolled)) constraints_unrolled_jvp(m, d, t);
    return;
  }

  // geom poses: geom_xmat = xmat R(geom_quat), geom_xpos = xmat geom_pos + xpos
  for (int g = 0; g < m.ngeom; ++g) {
    const int b = m.geom_bodyid[g];
    const Mat3<S> rg = quat_to_mat(load_quat(m.geom_quat + 4 * g));
    const T* dx = t.xmat + 9 * b;
    for (int r = 0; r < 3; ++r) {
      for (int c = 0; c < 3; ++c) {
        t.geom_xmat[9 * g + 3 * r + c] = dx[3 * r] * rg.m[c] + dx[3 * r + 1] * rg.m[3 + c] + dx[3 * r + 2] * rg.m[6 + c];
      }
      const S* gp = m.geom_pos + 3 * g;
      t.geom_xpos[3 * g + r] = dx[3 * r] * gp[0] + dx[3 * r + 1] * gp[1] + dx[3 * r + 2] * gp[2] + t.xpos[3 * b + r];
    }
  }

  // contact geometry, candidate by candidate as collision() found it
  {
    int n = 0;
    Contact<S> con[kMaxContactsPerPair];
    for (int c = 0; c < m.ncand; ++c) {
      const int g1 = m.cand_geom1[c], g2 = m.cand_geom2[c];
      // the tangents straight into t's contact arrays, in collision()'s order
      n += collide_geoms_jvp<S, T>(
          m.geom_type[g1], m.geom_type[g2], d.geom_xpos + 3 * g1, d.geom_xmat + 9 * g1, m.geom_size + 3 * g1,
          d.geom_xpos + 3 * g2, d.geom_xmat + 9 * g2, m.geom_size + 3 * g2, m.cand_margin[c], t.geom_xpos + 3 * g1,
          t.geom_xmat + 9 * g1, t.geom_xpos + 3 * g2, t.geom_xmat + 9 * g2, con,
          ContactTangentRef<T>::arrays(t.con_dist + n, t.con_pos + 3 * n, t.con_frame + 9 * n));
    }
  }

  // Jacobian and violation tangents
  for (int k = 0; k < nefc * nv; ++k) t.efc_J[k] = tangent_zero<T>();
  for (int i = 0; i < nefc; ++i) {
    t.efc_pos[i] = tangent_zero<T>();
    if (static_cast<int>(d.efc_type[i]) == kConstraintLimitJoint) {
      // hinge or slide: dist = side (range - q) and J = -side at the dof, so ddist = J dq
      for (int k = 0; k < nv; ++k) {
        if (d.efc_J[nv * i + k] != S(0)) t.efc_pos[i] += d.efc_J[nv * i + k] * t.qpos[k];
      }
    }
  }
  const int ncon = static_cast<int>(d.ncon[0]);
  S* jac = d.efc_jac_scratch;   // primal: body 1's point Jacobian, then the difference (3 x nv each)
  T* djac = t.efc_jac_scratch;  // its tangent likewise
  for (int c = 0; c < ncon; ++c) {
    const int r = static_cast<int>(d.con_efc_adr[c]);
    if (r < 0) continue;
    const int cand = static_cast<int>(d.con_cand[c]);
    const int condim = m.cand_condim[cand];
    const int b1 = m.geom_bodyid[m.cand_geom1[cand]];
    const int b2 = m.geom_bodyid[m.cand_geom2[cand]];
    const S* pos = d.con_pos + 3 * c;
    const T* dpos = t.con_pos + 3 * c;
    const S* frame = d.con_frame + 9 * c;
    const T* dframe = t.con_frame + 9 * c;
    point_jacobian(m, d, pos, b1, jac, static_cast<S*>(nullptr));
    point_jacobian(m, d, pos, b2, jac + 3 * nv, static_cast<S*>(nullptr));
    for (int k = 0; k < 3 * nv; ++k) jac[3 * nv + k] -= jac[k];
    detail::point_jacobian_jvp(m, d, t, pos, dpos, b1, djac);
    detail::point_jacobian_jvp(m, d, t, pos, dpos, b2, djac + 3 * nv);
    for (int k = 0; k < 3 * nv; ++k) djac[3 * nv + k] -= djac[k];
    // d(frame_a . jacdif) for the frame rows, into djac[0, 3 nv)
    const int nframe = condim > 1 ? 3 : 1;
    for (int a = 0; a < nframe; ++a) {
      for (int k = 0; k < nv; ++k) {
        T v = tangent_zero<T>();
        for (int q = 0; q < 3; ++q) v += dframe[3 * a + q] * jac[(3 + q) * nv + k] + frame[3 * a + q] * djac[(3 + q) * nv + k];
        djac[a * nv + k] = v;
      }
    }
    const S* fr = m.cand_friction + 5 * cand;
    if (condim == 1) {
      for (int k = 0; k < nv; ++k) t.efc_J[nv * r + k] = djac[k];
      t.efc_pos[r] = t.con_dist[c];
    } else if (m.cone == 0) {
      int row = r;
      for (int a = 1; a < condim; ++a) {
        for (int sgn = 0; sgn < 2; ++sgn, ++row) {
          const S f = sgn == 0 ? fr[a - 1] : -fr[a - 1];
          for (int k = 0; k < nv; ++k) t.efc_J[nv * row + k] = djac[k] + f * djac[nv * a + k];
          t.efc_pos[row] = t.con_dist[c];
        }
      }
    } else {
      for (int a = 0; a < condim; ++a) {
        for (int k = 0; k < nv; ++k) t.efc_J[nv * (r + a) + k] = djac[nv * a + k];
      }
      t.efc_pos[r] = t.con_dist[c];
    }
  }

  // impedance, D and aref tangents, element by element (rows of one element share imp)
  for (int i = 0; i < nefc;) {
    const int type = static_cast<int>(d.efc_type[i]);
    int dim = 1;
    if (type >= kConstraintContactFrictionless) {
      const int cand = static_cast<int>(d.con_cand[static_cast<int>(d.efc_id[i])]);
      dim = detail::contact_rows(m.cand_condim[cand], m.cone);
    }
    const S imp = d.efc_KBIP[4 * i + 2], imp_pos = d.efc_KBIP[4 * i + 3];
    const T dimp = imp_pos * t.efc_pos[i];
    // R_j = c_j (1 - imp) / imp for every row j of the element: dR / R = -dimp / (imp (1 - imp))
    const S rel = S(1) / (imp * (S(1) - imp));
    for (int j = 0; j < dim; ++j) {
      const int row = i + j;
      t.efc_D[row] = (d.efc_D[row] * rel) * dimp;
      t.efc_KBIP[4 * row + 2] = dimp;
      T dvel = tangent_zero<T>();
      for (int k = 0; k < nv; ++k) dvel += t.efc_J[nv * row + k] * d.qvel[k] + d.efc_J[nv * row + k] * t.qvel[k];
      t.efc_vel[row] = dvel;
      const S* kbip = d.efc_KBIP + 4 * row;
      // aref = -B vel - K imp (pos - margin); a cone's friction rows have pos = margin = 0
      const T dpos = j == 0 || type != kConstraintContactElliptic ? t.efc_pos[row] : tangent_zero<T>();
      t.efc_aref[row] = -kbip[1] * dvel - kbip[0] * ((d.efc_pos[row] - d.efc_margin[row]) * dimp + kbip[2] * dpos);
    }
    i += dim;
  }

  if (m.grad_mode == static_cast<int>(GradMode::unrolled)) {
    // the rows' tangents are the same; the solve's is that of the iterations as computed
    constraints_unrolled_jvp(m, d, t);
    return;
  }

  // partial force tangents at fixed qacc: df = (df/djar) (dJ qacc - daref) + (df/dD) dD, into
  // t.efc_force; then the right-hand side into t.qacc
  for (int i = 0; i < nefc; ++i) {
    T djar = -t.efc_aref[i];
    for (int k = 0; k < nv; ++k) djar += t.efc_J[nv * i + k] * d.qacc[k];
    t.efc_jar[i] = djar;
  }
  for (int i = 0; i < nefc; ++i) {
    const int state = static_cast<int>(d.efc_state[i]);
    if (state == kStateQuadratic) {
      t.efc_force[i] = -(d.efc_jar[i] * t.efc_D[i] + d.efc_D[i] * t.efc_jar[i]);
    } else if (state == kStateCone) {
      const int dim = m.cand_condim[static_cast<int>(d.con_cand[static_cast<int>(d.efc_id[i])])];
      const S* hc = d.sol_quad + 3 * i;
      const T drel = t.efc_D[i] / d.efc_D[i];
      for (int p = 0; p < dim; ++p) {
        T v = d.efc_force[i + p] * drel;
        for (int q = 0; q < dim; ++q) v -= hc[dim * p + q] * t.efc_jar[i + q];
        t.efc_force[i + p] = v;
      }
      i += dim - 1;
    } else {
      t.efc_force[i] = tangent_zero<T>();
    }
  }
  // rhs = dqfrc_smooth - dM qacc + dJ' f + J' df
  for (int k = 0; k < nv; ++k) {
    T v = t.qfrc_smooth[k];
    for (int l = 0; l < nv; ++l) v -= t.qM[nv * k + l] * d.qacc[l];
    for (int i = 0; i < nefc; ++i) {
      v += t.efc_J[nv * i + k] * d.efc_force[i];
      if (d.efc_J[nv * i + k] != S(0)) v += d.efc_J[nv * i + k] * t.efc_force[i];
    }
    t.qacc[k] = v;
  }
  detail::cholesky_solve(d.sol_H, nv, t.qacc);

  // the forces' full tangents: add (df/djar) J dqacc, then dqfrc_constraint = dJ' f + J' df
  for (int i = 0; i < nefc; ++i) {
    const int state = static_cast<int>(d.efc_state[i]);
    if (state == kStateQuadratic) {
      T jd = tangent_zero<T>();
      for (int k = 0; k < nv; ++k) jd += d.efc_J[nv * i + k] * t.qacc[k];
      t.efc_force[i] -= d.efc_D[i] * jd;
    } else if (state == kStateCone) {
      const int dim = m.cand_condim[static_cast<int>(d.con_cand[static_cast<int>(d.efc_id[i])])];
      const S* hc = d.sol_quad + 3 * i;
      T jd[3];
      for (int q = 0; q < dim; ++q) {
        jd[q] = tangent_zero<T>();
        for (int k = 0; k < nv; ++k) jd[q] += d.efc_J[nv * (i + q) + k] * t.qacc[k];
      }
      for (int p = 0; p < dim; ++p) {
        for (int q = 0; q < dim; ++q) t.efc_force[i + p] -= hc[dim * p + q] * jd[q];
      }
      i += dim - 1;
    }
  }
  for (int k = 0; k < nv; ++k) {
    T v = tangent_zero<T>();
    for (int i = 0; i < nefc; ++i) {
      v += t.efc_J[nv * i + k] * d.efc_force[i];
      if (d.efc_J[nv * i + k] != S(0)) v += d.efc_J[nv * i + k] * t.efc_force[i];
    }
    t.qfrc_constraint[k] = v;
  }
}

}  // namespace phydream

#include "engine/constraint_unrolled.h"
