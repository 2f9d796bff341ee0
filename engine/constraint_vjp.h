// Reverse mode of the constraint stage (engine/constraint.h) by the implicit function theorem:
// the adjoint of engine/constraint_jvp.h, with the same assumptions (every row's state held fixed
// at the solution; limited ball joints not differentiated).
//
// The stage's output that the step reads is qfrc_constraint = J' f (Euler adds it to the smooth
// force; at the solution M qacc = qfrc_smooth + qfrc_constraint). With the forward-mode relations
//   H dqacc = rhs,   rhs = dqfrc_smooth - dM qacc + P,   P = dJ' f + J' df|qacc,
//   dqfrc_constraint = dM qacc + M dqacc - dqfrc_smooth,
// (H = sol_H, the Newton Hessian at the solution), a cotangent g of qfrc_constraint pulls back as
//   <g, dqfrc_constraint> = <lam_c - g, dqfrc_smooth - dM qacc> + <lam_c, P>,  lam_c = H^-1 M g.
// The first term is the smooth force's own adjoint (step_vjp.h's force_vjp with the acceleration
// held at qacc); constraints_vjp below pulls back the second, <lam_c, P>:
//   y = J lam_c;  g_J += f lam_c' (the dJ' f term);
//   df|qacc = (df/djar)(dJ qacc - daref) + (df/dD) dD gives the cotangents of jar (then J and
//   aref) and D; aref = -B (J qvel) - K (imp (pos - margin)) those of J, qvel, imp and pos;
//   D and R scale with imp; imp(pos) and pos (contact distance, joint limit) close the chain;
//   each contact row's J = frame (jacp(pos, body2) - jacp(pos, body1)) gives the cotangents of
//   the frame, the contact point and the dofs' motion axes cdof; collide_geoms_vjp carries the
//   contact's (dist, pos, frame) to the geom poses.
// Position cotangents are then collected as step_vjp.h's inverse_dynamics_vjp does, with the
// frame origin (each tree's subtree_com) held fixed: a geom moves rigidly with the spatial motion
// xi of its body, so its pose cotangent is a spatial force deposited on the body; a dof's motion
// axis changes as xi x cdof, depositing cdof x* g_cdof; a dof's position cotangent is its cdof
// dotted with the sum of the deposits it moves.
#pragma once

#include "engine/collision.h"
#include "engine/constraint.h"
#include "engine/small_vec.h"
#include "engine/step_vjp.h"

namespace phydream {

namespace detail {

/// One past the last dof that moves `body` (0 for a body welded to the world): every dof moving
/// it is below, since a dof's parent always precedes it.
template <class S>
PHYDREAM_HD int dof_end(const ModelView<S>& m, int body) {
  while (body > 0 && m.body_dofnum[body] == 0) body = m.body_parentid[body];
  return body > 0 ? m.body_dofadr[body] + m.body_dofnum[body] : 0;
}

/// Reverse of point_jacobian's jacp for `point` on `body`, the frame origin held fixed, for the
/// cotangent of jacp (3 x nv) sign (A lam' + B qacc' + C qvel') (constraints_vjp's contacts):
/// accumulates g_cdof (nv x 6, the cotangent of each dof's motion axis) and g_point (3).
template <class S, class T>
PHYDREAM_HD void point_jacobian_vjp(const ModelView<S>& m, const Data<S>& d, const S* cdof, const S* point, int body,
                                    S sign, const S* A, const T* B, const T* C, const T* lam, const S* qvel,
                                    T* g_cdof, T* g_point) {
  const S* com = d.subtree_com + 3 * m.body_rootid[body];
  const S off[3] = {point[0] - com[0], point[1] - com[1], point[2] - com[2]};
  while (body > 0 && m.body_dofnum[body] == 0) body = m.body_parentid[body];
  if (body == 0) return;
  for (int da = m.body_dofadr[body] + m.body_dofnum[body] - 1; da >= 0; da = m.dof_parentid[da]) {
    const S* c = cdof + 6 * da;
    const S qa = sign * d.qacc[da], qv = sign * qvel[da];
    const T l = sign * lam[da];
    T g[3];
    for (int k = 0; k < 3; ++k) g[k] = (A[k] * l + B[k] * qa) + C[k] * qv;
    T* gc = g_cdof + 6 * da;
    // jacp[:, da] = c_lin + c_ang x off: (dc_ang x off) . g = dc_ang . (off x g),
    // (c_ang x dpoint) . g = dpoint . (g x c_ang)
    gc[0] += off[1] * g[2] - off[2] * g[1];
    gc[1] += off[2] * g[0] - off[0] * g[2];
    gc[2] += off[0] * g[1] - off[1] * g[0];
    for (int k = 0; k < 3; ++k) gc[3 + k] += g[k];
    g_point[0] += g[1] * c[2] - g[2] * c[1];
    g_point[1] += g[2] * c[0] - g[0] * c[2];
    g_point[2] += g[0] * c[1] - g[1] * c[0];
  }
}

}  // namespace detail

/// <lam_c, P> pulled back (see the top of this file): accumulates g_qpos (nv, tangent) and g_qvel
/// (nv) from lam_c (nv). d: the primal Data after forward() at the stage (rows, states, forces,
/// contacts, geom poses, subtree_com, qacc); qvel, cdof: the stage's velocity and motion axes
/// (d.qvel may already hold the next state). Adjoint scratch in a: efc_force, efc_jar,
/// efc_D, efc_aref, efc_vel, efc_pos, con_dist, con_pos, con_frame, geom_xpos, geom_xmat,
/// cdof, cinert (6 nbody); primal scratch d.efc_jac_scratch.
template <class S, class T>
PHYDREAM_HD_STAGE void constraints_vjp(const ModelView<S>& m, const Data<S>& d, const S* qvel, const S* cdof,
                                       const Data<T>& a, T* g_qpos, T* g_qvel, const T* lam_c) {
  const int nv = m.nv, nb = m.nbody;
  const int nefc = m.nefc_max > 0 ? static_cast<int>(d.nefc[0]) : 0;
  if (nefc == 0) return;
  const T zero = tangent_zero<T>();

  // y = J lam_c
  T* y = a.efc_force;
  for (int i = 0; i < nefc; ++i) {
    T v = zero;
    const S* j = d.efc_J + nv * i;
    for (int k = 0; k < nv; ++k) {
      if (j[k] != S(0)) v += j[k] * lam_c[k];
    }
    y[i] = v;
  }

  // df|qacc = (df/djar) djar + (df/dD) dD: cotangents of jar and D (the D of an element's first row)
  T* gjar = a.efc_jar;
  T* gD = a.efc_D;
  for (int i = 0; i < nefc; ++i) gjar[i] = gD[i] = zero;
  for (int i = 0; i < nefc; ++i) {
    const int state = static_cast<int>(d.efc_state[i]);
    if (state == kStateQuadratic) {
      gjar[i] = -(d.efc_D[i] * y[i]);
      gD[i] = -(d.efc_jar[i] * y[i]);
    } else if (state == kStateCone) {
      const int dim = m.cand_condim[static_cast<int>(d.con_cand[static_cast<int>(d.efc_id[i])])];
      const S* hc = d.sol_quad + 3 * i;
      T rel = zero;
      for (int p = 0; p < dim; ++p) rel += d.efc_force[i + p] * y[i + p];
      gD[i] = rel / d.efc_D[i];
      for (int q = 0; q < dim; ++q) {
        T v = zero;
        for (int p = 0; p < dim; ++p) v -= hc[dim * p + q] * y[i + p];
        gjar[i + q] = v;
      }
      i += dim - 1;
    }
  }
  // djar = dJ qacc - daref
  T* garef = a.efc_aref;
  for (int i = 0; i < nefc; ++i) garef[i] = -gjar[i];

  // impedance, D and aref, element by element: cotangents of vel (then J and qvel) and pos
  T* gvel = a.efc_vel;
  T* gpos = a.efc_pos;
  for (int i = 0; i < nefc; ++i) gpos[i] = zero;
  for (int i = 0; i < nefc;) {
    const int type = static_cast<int>(d.efc_type[i]);
    int dim = 1;
    if (type >= kConstraintContactFrictionless) {
      const int cand = static_cast<int>(d.con_cand[static_cast<int>(d.efc_id[i])]);
      dim = detail::contact_rows(m.cand_condim[cand], m.cone);
    }
    const S imp = d.efc_KBIP[4 * i + 2], imp_pos = d.efc_KBIP[4 * i + 3];
    const S rel = S(1) / (imp * (S(1) - imp));
    T gimp = zero;
    for (int j = 0; j < dim; ++j) {
      const int row = i + j;
      const S* kbip = d.efc_KBIP + 4 * row;
      gimp += (d.efc_D[row] * rel) * gD[row];
      // aref = -B vel - K ((pos - margin) imp + imp pos)
      gvel[row] = -kbip[1] * garef[row];
      gimp -= (kbip[0] * (d.efc_pos[row] - d.efc_margin[row])) * garef[row];
      if (j == 0 || type != kConstraintContactElliptic) gpos[row] -= (kbip[0] * kbip[2]) * garef[row];
      // vel = J qvel
      for (int k = 0; k < nv; ++k) {
        if (d.efc_J[nv * row + k] != S(0)) g_qvel[k] += d.efc_J[nv * row + k] * gvel[row];
      }
    }
    gpos[i] += imp_pos * gimp;
    i += dim;
  }

  // violations: a hinge or slide limit's pos moves with its dof (J = -side there)
  for (int i = 0; i < nefc; ++i) {
    if (static_cast<int>(d.efc_type[i]) != kConstraintLimitJoint) continue;
    for (int k = 0; k < nv; ++k) {
      if (d.efc_J[nv * i + k] != S(0)) g_qpos[k] += d.efc_J[nv * i + k] * gpos[i];
    }
  }

  // contacts: the rows' J and pos to the frame, the point, the dofs' axes and the distance.
  // Row i's J has the cotangent f_i lam_c' + gjar_i qacc' + gvel_i qvel' (the dJ' f term, dJ qacc
  // in jar, dJ qvel in vel): a sum of three outer products. A contact's rows are its frame rows
  // (normal, tangents) of jacdif = jacp(pos, body2) - jacp(pos, body1) combined with weights
  // w(q, row) (1; the pyramid's edges n +- mu_q t_q), so frame row q's cotangent is
  //   al_q lam_c' + be_q qacc' + ga_q qvel',  (al, be, ga)_q = sum over rows of w(q, row) (f, gjar, gvel),
  // and jacdif's (3 x nv) is A lam_c' + B qacc' + C qvel' with A = frame' al (and B, C alike):
  // each contact costs O(nv), not O(rows x nv), in the tangent type
  const int ncon = static_cast<int>(d.ncon[0]);
  T* gcdof = a.cdof;
  for (int k = 0; k < 6 * nv; ++k) gcdof[k] = zero;
  S* jac = d.efc_jac_scratch;  // primal: the point Jacobians of body 1 and body 2 (3 x nv each)
  for (int c = 0; c < ncon; ++c) {
    T* gdist = a.con_dist + c;
    T* gp = a.con_pos + 3 * c;
    T* gframe = a.con_frame + 9 * c;
    *gdist = zero;
    for (int k = 0; k < 3; ++k) gp[k] = zero;
    for (int k = 0; k < 9; ++k) gframe[k] = zero;
    const int r = static_cast<int>(d.con_efc_adr[c]);
    if (r < 0) continue;
    const int cand = static_cast<int>(d.con_cand[c]);
    const int condim = m.cand_condim[cand];
    const int b1 = m.geom_bodyid[m.cand_geom1[cand]];
    const int b2 = m.geom_bodyid[m.cand_geom2[cand]];
    const S* pos = d.con_pos + 3 * c;
    const S* frame = d.con_frame + 9 * c;
    const S* fr = m.cand_friction + 5 * cand;
    const int nframe = condim > 1 ? 3 : 1;
    S al[3] = {S(0), S(0), S(0)};
    T be[3] = {zero, zero, zero}, ga[3] = {zero, zero, zero};
    if (condim == 1) {
      al[0] = d.efc_force[r];
      be[0] = gjar[r];
      ga[0] = gvel[r];
      *gdist += gpos[r];
    } else if (m.cone == 0) {
      int row = r;
      for (int q = 1; q < condim; ++q) {
        for (int sgn = 0; sgn < 2; ++sgn, ++row) {
          const S w = sgn == 0 ? fr[q - 1] : -fr[q - 1];
          al[0] += d.efc_force[row];
          be[0] += gjar[row];
          ga[0] += gvel[row];
          al[q] += w * d.efc_force[row];
          be[q] += w * gjar[row];
          ga[q] += w * gvel[row];
          *gdist += gpos[row];
        }
      }
    } else {
      for (int q = 0; q < condim; ++q) {
        al[q] = d.efc_force[r + q];
        be[q] = gjar[r + q];
        ga[q] = gvel[r + q];
      }
      *gdist += gpos[r];
    }
    // the dofs moving either body are ancestors of its last dof, all below kend (dof_parentid[k]
    // < k): the point Jacobians are 0 beyond it
    const int kend = detail::dof_end(m, b1) > detail::dof_end(m, b2) ? detail::dof_end(m, b1) : detail::dof_end(m, b2);
    point_jacobian(m, d, pos, b1, jac, static_cast<S*>(nullptr));
    point_jacobian(m, d, pos, b2, jac + 3 * nv, static_cast<S*>(nullptr));
    // frame row q's cotangent dotted with jacdif's rows: the frame's cotangent
    for (int s = 0; s < 3; ++s) {
      const S* j1 = jac + s * nv;
      const S* j2 = jac + (3 + s) * nv;
      T pl = zero;
      S pa = S(0), pv = S(0);
      for (int k = 0; k < kend; ++k) {
        const S dj = j2[k] - j1[k];
        pl += dj * lam_c[k];
        pa += dj * d.qacc[k];
        pv += dj * qvel[k];
      }
      for (int q = 0; q < nframe; ++q) gframe[3 * q + s] += (al[q] * pl + be[q] * pa) + ga[q] * pv;
    }
    S A[3];
    T B[3], C[3];
    for (int s = 0; s < 3; ++s) {
      A[s] = S(0);
      B[s] = C[s] = zero;
      for (int q = 0; q < nframe; ++q) {
        A[s] += frame[3 * q + s] * al[q];
        B[s] += frame[3 * q + s] * be[q];
        C[s] += frame[3 * q + s] * ga[q];
      }
    }
    detail::point_jacobian_vjp(m, d, cdof, pos, b2, S(1), A, B, C, lam_c, qvel, gcdof, gp);
    detail::point_jacobian_vjp(m, d, cdof, pos, b1, S(-1), A, B, C, lam_c, qvel, gcdof, gp);
  }

  // deposits: a geom's pose cotangent as a spatial force (torque; force) on its body, about its
  // tree's origin
  T* dep = a.cinert;
  for (int k = 0; k < 6 * nb; ++k) dep[k] = zero;
  auto deposit = [&](int g, const T* gx, const T* gm) {
    const int b = m.geom_bodyid[g];
    if (b == 0) return;
    const S* x = d.geom_xpos + 3 * g;
    const S* rm = d.geom_xmat + 9 * g;
    const S* com = d.subtree_com + 3 * m.body_rootid[b];
    const S r[3] = {x[0] - com[0], x[1] - com[1], x[2] - com[2]};
    // dR = [w]x R: <G, [w]x R> = w . (A21 - A12, A02 - A20, A10 - A01) with A = G R'
    T am[9];
    for (int p = 0; p < 3; ++p) {
      for (int q = 0; q < 3; ++q) am[3 * p + q] = gm[3 * p] * rm[3 * q] + gm[3 * p + 1] * rm[3 * q + 1] + gm[3 * p + 2] * rm[3 * q + 2];
    }
    T* db = dep + 6 * b;
    db[0] += am[7] - am[5] + (r[1] * gx[2] - r[2] * gx[1]);
    db[1] += am[2] - am[6] + (r[2] * gx[0] - r[0] * gx[2]);
    db[2] += am[3] - am[1] + (r[0] * gx[1] - r[1] * gx[0]);
    for (int k = 0; k < 3; ++k) db[3 + k] += gx[k];
  };

  // contact geometry to the geom poses, candidate by candidate as collision() found them, each
  // candidate's pose cotangents deposited at once (the geoms of no contact deposit nothing);
  // scratch: the first two geoms' slots of a.geom_xpos and a.geom_xmat
  {
    int n = 0;
    T* gx1 = a.geom_xpos;
    T* gx2 = gx1 + 3;
    T* gm1 = a.geom_xmat;
    T* gm2 = gm1 + 9;
    for (int c = 0; c < m.ncand && n < ncon; ++c) {
      const int g1 = m.cand_geom1[c], g2 = m.cand_geom2[c];
      int k = 0;
      while (n + k < ncon && static_cast<int>(d.con_cand[n + k]) == c) ++k;
      if (k == 0) continue;
      for (int j = 0; j < 6; ++j) gx1[j] = zero;
      for (int j = 0; j < 18; ++j) gm1[j] = zero;
      collide_geoms_vjp<S, T>(m.geom_type[g1], m.geom_type[g2], d.geom_xpos + 3 * g1, d.geom_xmat + 9 * g1,
                              m.geom_size + 3 * g1, d.geom_xpos + 3 * g2, d.geom_xmat + 9 * g2,
                              m.geom_size + 3 * g2, m.cand_margin[c],
                              ContactTangentRef<T>::arrays(a.con_dist + n, a.con_pos + 3 * n, a.con_frame + 9 * n),
                              gx1, gm1, gx2, gm2);
      deposit(g1, gx1, gm1);
      deposit(g2, gx2, gm2);
      n += k;
    }
  }

  // leaves to roots: each joint's dofs collect the deposits they move (inverse_dynamics_vjp's
  // order: a body's deposits and its subtree's are moved by every dof of the body; a motion axis
  // by the dofs of its own joint group and those before it)
  for (int b = nb - 1; b > 0; --b) {
    adjoint::Six<T> h = adjoint::six_load(dep + 6 * b);
    const int ja = m.body_jntadr[b], jn = m.body_jntnum[b];
    for (int j = ja + jn - 1; j >= ja; --j) {
      const int da = m.jnt_dofadr[j];
      const int nd = adjoint::joint_dofs(m, j);
      const bool is_free = m.jnt_type[j] == static_cast<int>(JointType::free);
      for (int grp = is_free ? 1 : 0; grp >= 0; --grp) {
        const int k0 = is_free ? da + 3 * grp : da;
        const int k1 = is_free ? k0 + 3 : da + nd;
        if (!(is_free && grp == 0)) {  // free translations: constant axes
          for (int k = k0; k < k1; ++k) {
            h += adjoint::crf(adjoint::six_load(cdof + 6 * k), adjoint::six_load(gcdof + 6 * k));
          }
        }
        for (int k = k1 - 1; k >= k0; --k) g_qpos[k] += adjoint::dot6(adjoint::six_load(cdof + 6 * k), h);
      }
    }
    const int par = m.body_parentid[b];
    if (par > 0) adjoint::six_add_to(dep + 6 * par, h);
  }
}

}  // namespace phydream
