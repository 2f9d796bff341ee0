// The loaders' shared back end: a parsed model tree (ModelSpec) and its compilation into a Model.
//
// Both loaders (engine/mjcf.h for the MJCF subset, engine/model_json.h for the JSON format) read
// their file into the same ModelSpec: a tree of bodies holding joints, geoms, sites and an optional
// inertial, plus actuators, keyframes, options and compiler settings. Values are in SI units with
// angles already in radians; defaults (default classes, MuJoCo's built-in values) are already
// applied, so every field below starts at MuJoCo's documented default. Each element carries a
// `where` string ("assets/x.xml:12: <joint name=\"hip\">") that every error about it starts with.
//
// compile_model() does what MuJoCo 2.2.2's model compiler does for this subset, checked field by
// field against mj_loadXML in tests/engine/mjcf_mujoco_test.cpp:
//   - bodies are numbered in depth-first pre-order (the world is body 0), joints, dofs, geoms and
//     sites in body order and, within a body, in the order written
//   - frames: quat, axisangle, euler (compiler eulerseq: a lowercase letter rotates about the
//     moving axis, an uppercase one about the fixed axis), xyaxes and zaxis become unit
//     quaternions; `fromto` places a capsule, cylinder, box or ellipsoid at the midpoint with its
//     z axis along from - to and its half-length from the distance (box and ellipsoid: size[1] =
//     size[0])
//   - geom mass properties are those of the solid (sphere, capsule = cylinder + two hemispheres,
//     cylinder, box, ellipsoid) with `mass` overriding `density`; planes have none and are allowed
//     only in static bodies
//   - a body's inertia comes from its geoms when inertiafromgeom is true, or auto without an
//     <inertial>: one geom gives its own frame and moments; several are combined about their
//     centre of mass and diagonalised (principal moments in decreasing order, frame from the
//     Jacobi iteration of inertia_principal_axes()); an inertial's fullinertia is diagonalised
//     the same way, its diaginertia kept as written
//   - then compiler boundmass / boundinertia lower-bound every body, settotalmass rescales all
//     masses and inertias, and each body must satisfy the triangle inequality of its moments;
//     a body with joints needs mass and moments above 1e-15 (its own or a jointless child's)
//   - limited / ctrllimited "auto" follow compiler autolimits (false in 2.2.2): with autolimits a
//     range turns limits on; without, a range and no explicit `limited` is an error
//   - qpos0 holds hinge/slide `ref`, (1 0 0 0) for ball joints, the body's pose for free joints;
//     qpos_spring the same with `springref`; keyframes default to qpos0, zero qvel and ctrl
//
// Rounding. Every computed number (frames, geom masses and moments, the combined inertia and its
// principal axes, settotalmass scaling; the MJCF parser's degree conversions) rounds as MuJoCo
// 2.2.2's compiler does: the same operations in the same order and grouping, found by measuring
// candidate formulas against mj_loadXML until bitwise equal. The compiled Model is therefore
// equal to mjModel bit for bit (tested on the assets, per-feature and random models), which a
// chaotic model needs: a one-ulp difference of a mass makes the inverted double pendulum's
// 1000-step trajectory leave MuJoCo's by up to 3e-3 (tests/engine/loader_trajectory_test.cpp).
// Code whose order of operations matters says so ("rounds as MuJoCo 2.2.2's compiler").
#pragma once

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "engine/model.h"

namespace phydream {

/// A frame orientation as written in the file; angles in radians. `none` is the identity.
struct OrientationSpec {
  enum class Kind { none, quat, axisangle, euler, xyaxes, zaxis };
  Kind kind = Kind::none;
  std::array<double, 6>
      v{};  // quat w x y z | axis x y z, angle | 3 angles | x axis, y axis | z axis
};

/// limited / ctrllimited / inertiafromgeom: false, true or MuJoCo's "auto".
enum class Tristate { no, yes, automatic };

struct InertialSpec {
  std::string where;
  bool present = false;
  std::array<double, 3> pos{};
  OrientationSpec orientation;
  double mass = 0;
  bool has_diaginertia = false;
  std::array<double, 3> diaginertia{};
  bool has_fullinertia = false;
  std::array<double, 6> fullinertia{};  // Ixx Iyy Izz Ixy Ixz Iyz
};

struct JointSpec {
  std::string where, name;
  JointType type = JointType::hinge;
  std::array<double, 3> pos{};
  std::array<double, 3> axis{0, 0, 1};
  Tristate limited = Tristate::automatic;
  bool range_given = false;  // a range was written (on the element or in its default class)
  std::array<double, 2> range{};
  double ref = 0, springref = 0;
  double stiffness = 0, damping = 0, armature = 0, frictionloss = 0, margin = 0;
  std::array<double, 2> solref{0.02, 1};                   // solreflimit
  std::array<double, 5> solimp{0.9, 0.95, 0.001, 0.5, 2};  // solimplimit
};

struct GeomSpec {
  std::string where, name;
  GeomType type = GeomType::sphere;
  std::array<double, 3> size{};
  std::array<double, 3> pos{};
  OrientationSpec orientation;
  bool has_fromto = false;
  std::array<double, 6> fromto{};
  std::optional<double> mass;  // overrides density when given
  double density = 1000;
  std::array<double, 3> friction{1, 0.005, 0.0001};
  int condim = 3, contype = 1, conaffinity = 1;
  int group = 0;  // only decides, with compiler inertiagrouprange, whether the geom has mass
  std::array<double, 2> solref{0.02, 1};
  std::array<double, 5> solimp{0.9, 0.95, 0.001, 0.5, 2};
  double margin = 0;
};

struct SiteSpec {
  std::string where, name;
  GeomType type = GeomType::sphere;
  std::array<double, 3> size{0.005, 0.005, 0.005};
  std::array<double, 3> pos{};
  OrientationSpec orientation;
  bool has_fromto = false;
  std::array<double, 6> fromto{};
};

struct BodySpec {
  std::string where, name;
  std::array<double, 3> pos{};
  OrientationSpec orientation;
  InertialSpec inertial;
  std::vector<JointSpec> joints;
  std::vector<GeomSpec> geoms;
  std::vector<SiteSpec> sites;
  std::vector<BodySpec> children;
};

/// A motor on a hinge or slide joint.
struct ActuatorSpec {
  std::string where, name;
  std::string joint;
  double gear = 1;
  Tristate ctrllimited = Tristate::automatic;
  bool ctrlrange_given = false;
  std::array<double, 2> ctrlrange{};
};

struct KeySpec {
  std::string where, name;
  double time = 0;
  std::optional<std::vector<double>> qpos, qvel, ctrl;  // unset: qpos0, zeros
};

struct CompilerSpec {
  Tristate inertiafromgeom = Tristate::automatic;
  double settotalmass = -1;  // <= 0: off
  bool autolimits = false;
  double boundmass = 0, boundinertia = 0;
  std::string eulerseq = "xyz";
  std::array<int, 2> inertiagrouprange{0, 5};
};

struct OptionSpec {
  double timestep = 0.002;
  std::array<double, 3> gravity{0, 0, -9.81};
  ModelIntegrator integrator = ModelIntegrator::euler;
  int cone = 0;  // 0 pyramidal, 1 elliptic
  int iterations = 100;
  double tolerance = 1e-8;
  double impratio = 1;
  int disableflags = 0;
};

struct ModelSpec {
  std::string source;  // file name or a label, for messages and Model::source
  std::string name;    // the model's name
  CompilerSpec compiler;
  OptionSpec option;
  BodySpec world;  // the world body: its geoms, sites and child bodies (no joints, no inertial)
  std::vector<ActuatorSpec> actuators;
  std::vector<KeySpec> keys;
};

/// Compiles a parsed tree into a Model as MuJoCo 2.2.2 would (see the header comment). Throws
/// InputError starting with the offending element's `where`.
Model compile_model(const ModelSpec& spec);

/// The unit quaternion (w, x, y, z) of an orientation; eulerseq as in CompilerSpec; rounds as
/// MuJoCo 2.2.2's compiler. Throws InputError (prefixed with `where`) for a zero-length
/// quaternion or axis. (A site's frame is normalised once more by compile_model, as MuJoCo does.)
std::array<double, 4> orientation_quat(const OrientationSpec& o, const std::string& eulerseq,
                                       const std::string& where);

/// Principal axes of a symmetric 3x3 matrix (row-major): moments in decreasing order and the
/// unit quaternion of the frame whose axes are the eigenvectors. Cyclic Jacobi rotations on the
/// largest off-diagonal entry, accumulated in a quaternion, then sorted by 90-degree turns: this
/// reproduces MuJoCo 2.2.2's choice of frame, also when moments are equal, and its rounding
/// (bit for bit, tested against it).
void inertia_principal_axes(const double mat[9], double moments[3], double quat[4]);

/// Mass and principal moments (about the geom's own axes) of a solid geom; `mass` from the
/// geom's mass or its density times its volume. Planes have none. Rounds as MuJoCo 2.2.2's
/// compiler.
void geom_mass_properties(const GeomSpec& g, const std::array<double, 3>& size, double* mass,
                          double inertia[3]);

/// Names used in messages and by `phydream inspect`.
const char* joint_type_name(JointType t);
const char* geom_type_name(GeomType t);

}  // namespace phydream
