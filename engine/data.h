// The per-environment state and every intermediate of the smooth dynamics, in ONE workspace.
//
// A DataLayout, computed from the model's sizes, gives each field's offset (in Scalars) in a
// contiguous workspace of layout.size Scalars; data_at() turns a workspace pointer into a Data of
// raw pointers. So a step never allocates, a batch is one (B x size) array, and a kernel hands
// each thread its own slice. Field names and shapes follow MuJoCo's mjData, so intermediates can
// be compared with MuJoCo field by field; spatial quantities (c*) use MuJoCo's com-based frames:
// world-aligned, with origin at the centre of mass of the body's kinematic tree (subtree_com of
// body_rootid).
#pragma once

#include <vector>

#include "engine/core.h"
#include "engine/model_view.h"

namespace phydream {

// every field: X(name, size) with the sizes in nq, nv, nu, nbody, njnt, ngeom and the model's
// constraint capacities ncon (contacts) and nefc (constraint rows), both 0 for a model whose
// constraints are all disabled (nsol = 1 if nefc > 0, else 0, sizes the solver's scratch;
// ndual is 0 unless the derivatives unroll the solver, GradMode::unrolled);
// grouped by stage. Integer-valued fields of the constraint stage
// (counts, types, ids, states) are stored as Scalars holding small exact integers.
#define PHYDREAM_DATA_FIELDS(X)                                                          \
  /* state */                                                                            \
  X(time, 1)               /* simulation time */                                         \
  X(qpos, nq)              /* position */                                                \
  X(qvel, nv)              /* velocity */                                                \
  X(ctrl, nu)              /* control */                                                 \
  /* kinematics (world frame) */                                                         \
  X(xpos, nbody * 3)       /* body frame position */                                     \
  X(xquat, nbody * 4)      /* body frame orientation */                                  \
  X(xmat, nbody * 9)       /* body frame orientation, row-major */                       \
  X(xipos, nbody * 3)      /* centre of mass */                                          \
  X(ximat, nbody * 9)      /* inertial frame orientation */                              \
  X(xanchor, njnt * 3)     /* joint anchor */                                            \
  X(xaxis, njnt * 3)       /* joint axis */                                              \
  /* com-based quantities */                                                             \
  X(subtree_com, nbody * 3) /* centre of mass of each subtree */                         \
  X(cinert, nbody * 10)    /* body inertia, MuJoCo's 10-number layout */                 \
  X(cdof, nv * 6)          /* dof motion axis (angular; linear) */                       \
  /* mass matrix */                                                                      \
  X(crb, nbody * 10)       /* composite rigid body inertia */                            \
  X(qM, nv * nv)           /* joint-space inertia, dense, armature included */           \
  X(qLD, nv * nv)          /* M = L^T D L: unit lower L below, D on the diagonal */      \
  X(qLDiagInv, nv)         /* 1 / D */                                                   \
  /* velocity-dependent */                                                               \
  X(cvel, nbody * 6)       /* body velocity */                                           \
  X(cdof_dot, nv * 6)      /* time derivative of cdof */                                 \
  X(cacc, nbody * 6)       /* body acceleration of the bias (gravity as a base accel) */ \
  X(cfrc_body, nbody * 6)  /* force on each subtree for the bias, then accumulated */    \
  /* generalized forces and acceleration */                                              \
  X(qfrc_bias, nv)         /* Coriolis, centrifugal and gravity: C(q, v) */              \
  X(qfrc_passive, nv)      /* joint springs and dampers */                               \
  X(actuator_force, nu)    /* scalar actuator force */                                   \
  X(qfrc_actuator, nv)     /* actuator force in joint space */                           \
  X(qfrc_smooth, nv)       /* passive - bias + actuator */                               \
  X(qacc, nv)              /* M^-1 qfrc_smooth */                                        \
  /* integrator scratch */                                                               \
  X(qH, nv * nv)           /* Euler: L^T D L factor of M + h diag(damping) */            \
  X(qHDiagInv, nv)         /* Euler: 1 / D of that factor */                             \
  X(qacc_euler, nv)        /* Euler: acceleration with damping implicit */               \
  X(rk_qpos, nq)           /* RK4: position at the step start */                         \
  X(rk_qvel, nv)           /* RK4: velocity at the step start */                         \
  X(rk_dqpos, nv)          /* RK4: weighted sum of the stage velocities */               \
  X(rk_dqvel, nv)          /* RK4: weighted sum of the stage accelerations */        \
  /* constraints (engine/constraint.h): geoms, contacts, constraint rows, solver */      \
  X(geom_xpos, ngeom * 3)  /* geom frame position */                                     \
  X(geom_xmat, ngeom * 9)  /* geom frame orientation, row-major */                       \
  X(qacc_smooth, nv)       /* M^-1 qfrc_smooth: the acceleration without constraints */  \
  X(qfrc_constraint, nv)   /* J^T efc_force */                                           \
  X(qacc_warmstart, nv)    /* the solver's start: last solution, kept between steps */   \
  X(ncon, 1)               /* contacts found */                                          \
  X(con_cand, ncon)        /* collision candidate (ModelView::cand_*) of each contact */ \
  X(con_dist, ncon)        /* signed distance, negative in penetration */                \
  X(con_pos, ncon * 3)     /* contact point, midway between the surfaces */              \
  X(con_frame, ncon * 9)   /* rows: normal (geom1 to geom2), two tangents */             \
  X(con_mu, ncon)          /* friction of the regularised cone */                        \
  X(con_efc_adr, ncon)     /* first constraint row, -1 if excluded (not within margin) */ \
  X(nefc, 1)               /* constraint rows */                                         \
  X(nf, 1)                 /* of which dof friction loss (the first nf rows) */          \
  X(efc_type, nefc)        /* ConstraintType */                                          \
  X(efc_id, nefc)          /* dof, joint or contact of the row */                        \
  X(efc_J, nefc * nv)      /* constraint Jacobian */                                     \
  X(efc_pos, nefc)         /* constraint violation (distance) */                         \
  X(efc_margin, nefc)      /* inclusion margin */                                        \
  X(efc_frictionloss, nefc) /* friction loss of the row, 0 for others */                \
  X(efc_diagApprox, nefc)  /* approximation of the diagonal of A = J M^-1 J^T */         \
  X(efc_R, nefc)           /* regulariser */                                             \
  X(efc_D, nefc)           /* 1 / R */                                                   \
  X(efc_KBIP, nefc * 4)    /* stiffness, damping, impedance, d impedance / d pos */      \
  X(efc_vel, nefc)         /* J qvel */                                                  \
  X(efc_aref, nefc)        /* reference acceleration */                                  \
  X(efc_jar, nefc)         /* J qacc - aref at the solution */                           \
  X(efc_force, nefc)       /* constraint force */                                        \
  X(efc_state, nefc)       /* ConstraintState at the solution */                         \
  X(solver_iter, 1)        /* Newton iterations of the last solve */                     \
  X(solver_status, 1)      /* SolverStatus of the last solve */                          \
  X(solver_worst, 1)       /* worst SolverStatus since the engine last reset it to 0 */  \
  X(sol_Ma, nsol * nv)     /* solver: M qacc */                                          \
  X(sol_grad, nsol * nv)   /* solver: cost gradient */                                   \
  X(sol_Mgrad, nsol * nv)  /* solver: H^-1 grad */                                       \
  X(sol_search, nsol * nv) /* solver: search direction */                                \
  X(sol_Mv, nsol * nv)     /* solver: M search */                                        \
  X(sol_Jv, nefc)          /* solver: J search */                                        \
  X(sol_quad, nefc * 3)    /* solver: per-row quadratic of the line search */            \
  X(sol_H, nsol * nv * nv) /* solver: Hessian, then its Cholesky factor (lower) */       \
  X(efc_jac_scratch, nsol * nv * 6) /* contact point Jacobians while rows are made */  \
  X(sol_dual, ndual)       /* unrolled derivatives only: the solver in dual numbers */

/// Entries of Data::sol_dual for the unrolled derivatives of the solver
/// (engine/constraint_unrolled.h, unrolled_dual_view): a dual number (a value and K tangents,
/// K + 1 Scalars: at most two entries of a tangent Data<Vec<S, K>>) for every entry of the
/// solver's fields and the next solve's start.
PHYDREAM_HD int unrolled_dual_entries(int nv, int ncon, int nefc) {
  const int duals = 2 * nv * nv + 11 * nv + 4 + 2 * ncon + nefc * (nv + 13);
  return 2 * duals;
}

/// Offsets (in Scalars) of every Data field in a workspace of `size` Scalars.
struct DataLayout {
#define PHYDREAM_DATA_OFFSET(name, n) int name;
  PHYDREAM_DATA_FIELDS(PHYDREAM_DATA_OFFSET)
#undef PHYDREAM_DATA_OFFSET
  int size;

  /// The layout for a model of these sizes: fields back to back, in the order listed above.
  PHYDREAM_HD static DataLayout make(int nq, int nv, int nu, int nbody, int njnt, int ngeom, int ncon,
                                     int nefc, int ndual = 0) {
    DataLayout l{};
    const int nsol = nefc > 0 ? 1 : 0;
    int at = 0;
#define PHYDREAM_DATA_PLACE(name, n) \
  l.name = at;                       \
  at += (n);
    PHYDREAM_DATA_FIELDS(PHYDREAM_DATA_PLACE)
#undef PHYDREAM_DATA_PLACE
    l.size = at;
    return l;
  }
};

/// The layout for a model view.
template <class S>
PHYDREAM_HD DataLayout data_layout(const ModelView<S>& m) {
  const int ndual = m.grad_mode == static_cast<int>(GradMode::unrolled) && m.nefc_max > 0
                        ? unrolled_dual_entries(m.nv, m.ncon_max, m.nefc_max)
                        : 0;
  return DataLayout::make(m.nq, m.nv, m.nu, m.nbody, m.njnt, m.ngeom, m.ncon_max, m.nefc_max, ndual);
}

/// One environment's data: pointers into its workspace; shapes as listed above.
template <class S>
struct Data {
#define PHYDREAM_DATA_POINTER(name, n) S* name;
  PHYDREAM_DATA_FIELDS(PHYDREAM_DATA_POINTER)
#undef PHYDREAM_DATA_POINTER
};

/// The Data whose workspace starts at `ws` (layout.size Scalars, owned by the caller).
template <class S>
PHYDREAM_HD Data<S> data_at(const DataLayout& layout, S* ws) {
  Data<S> d;
#define PHYDREAM_DATA_BIND(name, n) d.name = ws + layout.name;
  PHYDREAM_DATA_FIELDS(PHYDREAM_DATA_BIND)
#undef PHYDREAM_DATA_BIND
  return d;
}

/// Reset to the model's reference: qpos = qpos0, qvel = 0, ctrl = 0, time = 0, and the
/// solver's warm start qacc_warmstart = 0 (as mj_resetData). The intermediates are left as they
/// are; forward() overwrites them all.
template <class S>
PHYDREAM_HD void reset_data(const ModelView<S>& m, const Data<S>& d) {
  d.time[0] = S(0);
  for (int i = 0; i < m.nq; ++i) d.qpos[i] = m.qpos0[i];
  for (int i = 0; i < m.nv; ++i) d.qvel[i] = d.qacc_warmstart[i] = S(0);
  for (int i = 0; i < m.nu; ++i) d.ctrl[i] = S(0);
}

/// Host-owned workspace of one environment (or `count` back to back), reset to the reference.
template <class S>
class DataStore {
 public:
  explicit DataStore(const ModelView<S>& m, int count = 1)
      : layout_(data_layout(m)), ws_(static_cast<std::size_t>(layout_.size) * count, S(0)) {
    for (int e = 0; e < count; ++e) reset_data(m, view(e));
  }

  const DataLayout& layout() const { return layout_; }
  /// Environment e's data; valid while this object lives.
  Data<S> view(int e = 0) { return data_at(layout_, ws_.data() + static_cast<std::size_t>(layout_.size) * e); }
  S* workspace() { return ws_.data(); }
  std::size_t workspace_size() const { return ws_.size(); }

 private:
  DataLayout layout_;
  std::vector<S> ws_;
};

}  // namespace phydream
