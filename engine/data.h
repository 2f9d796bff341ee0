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

// every field: X(name, size) with the sizes in nq, nv, nu, nbody, njnt; grouped by stage
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
  X(rk_dqvel, nv)          /* RK4: weighted sum of the stage accelerations */

/// Offsets (in Scalars) of every Data field in a workspace of `size` Scalars.
struct DataLayout {
#define PHYDREAM_DATA_OFFSET(name, n) int name;
  PHYDREAM_DATA_FIELDS(PHYDREAM_DATA_OFFSET)
#undef PHYDREAM_DATA_OFFSET
  int size;

  /// The layout for a model of these sizes: fields back to back, in the order listed above.
  PHYDREAM_HD static DataLayout make(int nq, int nv, int nu, int nbody, int njnt) {
    DataLayout l{};
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
  return DataLayout::make(m.nq, m.nv, m.nu, m.nbody, m.njnt);
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

/// Reset to the model's reference: qpos = qpos0, qvel = 0, ctrl = 0, time = 0. The intermediates
/// are left as they are; forward() overwrites them all.
template <class S>
PHYDREAM_HD void reset_data(const ModelView<S>& m, const Data<S>& d) {
  d.time[0] = S(0);
  for (int i = 0; i < m.nq; ++i) d.qpos[i] = m.qpos0[i];
  for (int i = 0; i < m.nv; ++i) d.qvel[i] = S(0);
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
