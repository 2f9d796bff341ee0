// Constants of a model that the constraint model needs and that depend on its dynamics at the
// reference configuration, as MuJoCo's mj_setConst computes them when it compiles a model:
//   body_invweight0  (nbody x 2)  mean diagonal of the translational and rotational parts of
//                    J M^-1 J^T for the body's Jacobian at its centre of mass
//   dof_invweight0   (nv)         mean diagonal of the joint's block of M^-1 (a free joint: one
//                                 value for its translation dofs, one for its rotation dofs)
//   meaninertia                   mean diagonal of M (armature included)
// all at qpos0. They scale the constraint regulariser (efc_diagApprox) and the solver's
// tolerance, so they must equal MuJoCo's for trajectories to agree.
#pragma once

#include <vector>

#include "engine/model.h"

namespace phydream {

struct ModelConstants {
  std::vector<double> body_invweight0;  // (nbody x 2)
  std::vector<double> dof_invweight0;   // (nv)
  double meaninertia = 1;
};

/// The constants of `m`, computed in double with the engine's own dynamics at qpos0.
ModelConstants model_constants(const Model& m);

}  // namespace phydream
