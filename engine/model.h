// An articulated rigid-body model: immutable sizes and flat arrays, named object_attribute after
// MuJoCo's mjModel so that a loaded model can be compared with MuJoCo's field by field.
//
// Built by the loaders (engine/mjcf.h, MJCF; engine/model_json.h, JSON) on the host. Arrays are
// row-major; the shape of each is in its comment. Body 0 is the world. Orientations are unit
// quaternions (w, x, y, z); positions in metres; angles in radians after loading.
//
// Conventions follow MuJoCo's documentation (the Computation and XML Reference chapters), so
// that trajectories and Jacobians can be compared with MuJoCo itself:
//   - a hinge or slide joint moves its body by (qpos - qpos0) about / along jnt_axis through
//     jnt_pos, both in the body frame; qpos0 holds the joint's `ref`
//   - ball joints use qpos = quaternion (4) and qvel = angular velocity (3); free joints
//     qpos = (position 3, quaternion 4) and qvel = (linear 3, angular 3), so nq != nv
//   - body_inertia is diagonal in the inertial frame (body_ipos, body_iquat)
#pragma once

#include <array>
#include <string>
#include <vector>

namespace phydream {

/// How derivatives of a step treat the constraint solver (a model without constraint rows has
/// one derivative, whatever the mode):
///   ift       the implicit function theorem at the solution, active set fixed (forward:
///             engine/constraint_jvp.h; reverse: engine/constraint_vjp.h)
///   unrolled  the derivative of the solver's iterations as computed (every Newton step and
///             line-search evaluation; engine/constraint_unrolled.h), what automatic
///             differentiation through an iterative solver gives
///   fd        central differences of the whole step
enum class GradMode : int { ift = 0, unrolled = 1, fd = 2 };

/// Joint types, with MuJoCo's numbering (mjtJoint).
enum class JointType : int { free = 0, ball = 1, slide = 2, hinge = 3 };

/// Geometry types, with MuJoCo's numbering (mjtGeom) for those PhyDream knows.
enum class GeomType : int { plane = 0, sphere = 2, capsule = 3, ellipsoid = 4, cylinder = 5, box = 6 };

/// Integrators of articulated models (mjtIntegrator's numbering).
enum class ModelIntegrator : int { euler = 0, rk4 = 1 };

/// Disable flags (mjtDisableBit's bit values for those PhyDream models).
enum DisableBit : int {
  kDisableConstraint = 1 << 0,
  kDisableEquality = 1 << 1,
  kDisableFrictionloss = 1 << 2,
  kDisableLimit = 1 << 3,
  kDisableContact = 1 << 4,
  kDisablePassive = 1 << 5,
  kDisableGravity = 1 << 6,
  kDisableClampctrl = 1 << 7,
  kDisableWarmstart = 1 << 8,
  kDisableFilterparent = 1 << 9,
  kDisableActuation = 1 << 10,
  kDisableRefsafe = 1 << 11,
  kDisableSensor = 1 << 12,
};

/// A disable flag's MJCF name (<option><flag NAME="disable"/>) and its DisableBit.
struct DisableFlagName {
  const char* name;
  int bit;
};

/// Every disable flag, in MuJoCo's bit order.
inline const std::vector<DisableFlagName>& disable_flag_names() {
  static const std::vector<DisableFlagName> names = {
      {"constraint", kDisableConstraint}, {"equality", kDisableEquality},
      {"frictionloss", kDisableFrictionloss}, {"limit", kDisableLimit},
      {"contact", kDisableContact},         {"passive", kDisablePassive},
      {"gravity", kDisableGravity},         {"clampctrl", kDisableClampctrl},
      {"warmstart", kDisableWarmstart},     {"filterparent", kDisableFilterparent},
      {"actuation", kDisableActuation},     {"refsafe", kDisableRefsafe},
      {"sensor", kDisableSensor}};
  return names;
}

struct Model {
  // sizes
  int nq = 0;      // generalized coordinates
  int nv = 0;      // degrees of freedom
  int nu = 0;      // actuators
  int nbody = 0;   // bodies, the world included
  int njnt = 0;    // joints
  int ngeom = 0;   // geoms
  int nsite = 0;   // sites
  int nkey = 0;    // keyframes

  // options
  double opt_timestep = 0.002;                        // s
  std::array<double, 3> opt_gravity = {0, 0, -9.81};  // m/s^2
  ModelIntegrator opt_integrator = ModelIntegrator::euler;
  int opt_cone = 0;                                   // 0 pyramidal, 1 elliptic
  int opt_iterations = 100;                           // solver iterations
  double opt_tolerance = 1e-8;                        // solver tolerance
  double opt_impratio = 1;                            // frictional-to-normal impedance ratio
  int opt_disableflags = 0;                           // DisableBit mask

  // bodies
  std::vector<int> body_parentid;     // parent body (nbody); the world's is 0
  std::vector<int> body_jntnum;       // number of joints (nbody)
  std::vector<int> body_jntadr;       // first joint, -1 if none (nbody)
  std::vector<int> body_dofnum;       // number of dofs (nbody)
  std::vector<int> body_dofadr;       // first dof, -1 if none (nbody)
  std::vector<double> body_pos;       // position in the parent frame (nbody x 3)
  std::vector<double> body_quat;      // orientation in the parent frame (nbody x 4)
  std::vector<double> body_ipos;      // centre of mass in the body frame (nbody x 3)
  std::vector<double> body_iquat;     // inertial frame in the body frame (nbody x 4)
  std::vector<double> body_mass;      // mass (nbody)
  std::vector<double> body_inertia;   // principal inertia about the com (nbody x 3)
  std::vector<std::string> body_name; // (nbody)

  // joints
  std::vector<int> jnt_type;          // JointType (njnt)
  std::vector<int> jnt_bodyid;        // body the joint moves (njnt)
  std::vector<int> jnt_qposadr;       // first qpos entry (njnt)
  std::vector<int> jnt_dofadr;        // first dof (njnt)
  std::vector<double> jnt_pos;        // anchor in the body frame (njnt x 3)
  std::vector<double> jnt_axis;       // unit axis in the body frame (njnt x 3)
  std::vector<int> jnt_limited;       // range enforced (njnt)
  std::vector<double> jnt_range;      // [lo, hi] (njnt x 2)
  std::vector<double> jnt_stiffness;  // spring stiffness about qpos_spring (njnt)
  std::vector<double> jnt_margin;     // limit detection margin (njnt)
  std::vector<double> jnt_solref;     // limit constraint solref (njnt x 2)
  std::vector<double> jnt_solimp;     // limit constraint solimp (njnt x 5)
  std::vector<std::string> jnt_name;  // (njnt)
  std::vector<double> qpos0;          // reference configuration (nq)
  std::vector<double> qpos_spring;    // spring rest configuration (nq)

  // dofs
  std::vector<int> dof_bodyid;          // (nv)
  std::vector<int> dof_jntid;           // (nv)
  std::vector<int> dof_parentid;        // previous dof in the tree, -1 at a root (nv)
  std::vector<double> dof_armature;     // added to the mass matrix diagonal (nv)
  std::vector<double> dof_damping;      // viscous damping (nv)
  std::vector<double> dof_frictionloss; // dry friction (nv)

  // geoms
  std::vector<int> geom_type;         // GeomType (ngeom)
  std::vector<int> geom_bodyid;       // (ngeom)
  std::vector<int> geom_contype;      // (ngeom)
  std::vector<int> geom_conaffinity;  // (ngeom)
  std::vector<int> geom_condim;       // (ngeom)
  std::vector<double> geom_pos;       // in the body frame (ngeom x 3)
  std::vector<double> geom_quat;      // in the body frame (ngeom x 4)
  std::vector<double> geom_size;      // type-dependent (ngeom x 3)
  std::vector<double> geom_friction;  // sliding, torsional, rolling (ngeom x 3)
  std::vector<double> geom_solref;    // (ngeom x 2)
  std::vector<double> geom_solimp;    // (ngeom x 5)
  std::vector<double> geom_margin;    // (ngeom)
  std::vector<std::string> geom_name; // (ngeom)

  // sites
  std::vector<int> site_type;         // GeomType, for display (nsite)
  std::vector<int> site_bodyid;       // (nsite)
  std::vector<double> site_size;      // type-dependent, for display (nsite x 3)
  std::vector<double> site_pos;       // (nsite x 3)
  std::vector<double> site_quat;      // (nsite x 4)
  std::vector<std::string> site_name; // (nsite)

  // actuators: motors on joints
  std::vector<int> actuator_trnid;         // joint (nu)
  std::vector<double> actuator_gear;       // (nu)
  std::vector<int> actuator_ctrllimited;   // (nu)
  std::vector<double> actuator_ctrlrange;  // (nu x 2)
  std::vector<std::string> actuator_name;  // (nu)

  // keyframes
  std::vector<double> key_time;       // (nkey)
  std::vector<double> key_qpos;       // (nkey x nq)
  std::vector<double> key_qvel;       // (nkey x nv)
  std::vector<double> key_ctrl;       // (nkey x nu)
  std::vector<std::string> key_name;  // (nkey)

  /// The model's name (<mujoco model="...">) and where it came from ("assets/half_cheetah.xml"),
  /// for messages.
  std::string name;
  std::string source;
};

}  // namespace phydream
