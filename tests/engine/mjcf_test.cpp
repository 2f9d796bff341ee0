// The MJCF importer without MuJoCo: the project's assets load with the expected structure, each
// feature gives the value computed here independently (solid inertias, frames, defaults,
// addresses), and malformed or unsupported input fails with a message naming the file, line,
// element and attribute. (tests/engine/mjcf_mujoco_test.cpp compares with MuJoCo itself.)
#include "engine/mjcf.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "engine/errors.h"
#include "engine/model.h"
#include "engine/model_compile.h"

namespace {

using phydream::InputError;
using phydream::JointType;
using phydream::load_mjcf;
using phydream::load_mjcf_string;
using phydream::Model;

constexpr double kPi = 3.14159265358979323846;

std::string asset(const std::string& name) {
  return std::string(PHYDREAM_SOURCE_DIR) + "/assets/" + name;
}

Model load(const std::string& body, const std::string& head = "") {
  return load_mjcf_string("<mujoco>" + head + "<worldbody>" + body + "</worldbody></mujoco>",
                          "test.xml");
}

// rotates v by the unit quaternion q (w, x, y, z)
std::vector<double> rotate(const double* q, std::vector<double> v) {
  const double w = q[0], x = q[1], y = q[2], z = q[3];
  const double r[9] = {
      w * w + x * x - y * y - z * z, 2 * (x * y - w * z),           2 * (x * z + w * y),
      2 * (x * y + w * z),           w * w - x * x + y * y - z * z, 2 * (y * z - w * x),
      2 * (x * z - w * y),           2 * (y * z + w * x),           w * w - x * x - y * y + z * z};
  return {r[0] * v[0] + r[1] * v[1] + r[2] * v[2], r[3] * v[0] + r[4] * v[1] + r[5] * v[2],
          r[6] * v[0] + r[7] * v[1] + r[8] * v[2]};
}

// ---------------------------------------------------------------------------------------------
// assets

TEST(MjcfAssets, HalfCheetahHasGymsStructureAndTotalMass) {
  const Model m = load_mjcf(asset("half_cheetah.xml"));
  EXPECT_EQ(m.name, "half_cheetah");
  EXPECT_EQ(m.nq, 9);
  EXPECT_EQ(m.nv, 9);
  EXPECT_EQ(m.nu, 6);
  EXPECT_EQ(m.nbody, 8);
  const std::vector<std::string> joints = {"rootx", "rootz",  "rooty", "bthigh", "bshin",
                                           "bfoot", "fthigh", "fshin", "ffoot"};
  EXPECT_EQ(m.jnt_name, joints);
  EXPECT_EQ(m.jnt_type[0], static_cast<int>(JointType::slide));
  EXPECT_EQ(m.jnt_type[2], static_cast<int>(JointType::hinge));
  // settotalmass="14"
  EXPECT_NEAR(std::accumulate(m.body_mass.begin(), m.body_mass.end(), 0.0), 14.0, 1e-12);
  // the default class's stiffness 8 is overridden by the root joints' 0 and the legs' own values
  EXPECT_EQ(m.jnt_stiffness[0], 0.0);
  EXPECT_EQ(m.jnt_stiffness[3], 240.0);
  EXPECT_EQ(m.dof_armature[3], 0.1);
  EXPECT_EQ(m.dof_damping[8], 1.5);
  EXPECT_EQ(m.jnt_limited[0], 0);
  EXPECT_EQ(m.jnt_limited[3], 1);
  EXPECT_EQ(m.jnt_range[2 * 3], -0.52);  // radians as written (compiler angle="radian")
  const std::vector<double> gear = {120, 90, 60, 120, 60, 30};
  EXPECT_EQ(m.actuator_gear, gear);
  EXPECT_EQ(m.actuator_trnid[0], 3);
  EXPECT_EQ(m.opt_timestep, 0.01);
  EXPECT_EQ(m.opt_disableflags, 0);  // contacts and limits as in gym
}

TEST(MjcfAssets, FingerUsesDegreesChildclassAndDisabledGravity) {
  const Model m = load_mjcf(asset("finger.xml"));
  EXPECT_EQ(m.nq, 3);
  EXPECT_EQ(m.nu, 2);
  EXPECT_EQ(m.nsite, 4);
  EXPECT_EQ(m.opt_cone, 1);
  EXPECT_EQ(m.opt_iterations, 200);
  EXPECT_EQ(m.opt_disableflags, phydream::kDisableGravity);
  // proximal: ref -90 degrees, range +-110 degrees, damping 2.5 from class "finger"
  EXPECT_NEAR(m.qpos0[0], -kPi / 2, 1e-15);
  EXPECT_NEAR(m.jnt_range[1], 110 * kPi / 180, 1e-15);
  EXPECT_EQ(m.dof_damping[0], 2.5);
  EXPECT_EQ(m.jnt_limited[0], 1);
  // the spinner's hinge uses the main class: axis 0 -1 0, no limit
  EXPECT_EQ(m.jnt_axis[3 * 2 + 1], -1.0);
  EXPECT_EQ(m.jnt_limited[2], 0);
  EXPECT_EQ(m.dof_frictionloss[2], 0.1);
  // sites in body order (the world's first): target, touchtop and touchbottom with the finger
  // class's ellipsoid, the spinner's tip a sphere
  const std::vector<std::string> sites = {"target", "touchtop", "touchbottom", "tip"};
  EXPECT_EQ(m.site_name, sites);
  EXPECT_EQ(m.site_bodyid[0], 0);
  EXPECT_EQ(m.site_type[1], static_cast<int>(phydream::GeomType::ellipsoid));
  EXPECT_EQ(m.site_size[3 * 1 + 1], 0.03);
  EXPECT_EQ(m.site_type[3], static_cast<int>(phydream::GeomType::sphere));
  EXPECT_EQ(m.site_size[3 * 3], 0.02);
}

TEST(MjcfAssets, EveryAssetLoadsAndValidates) {
  for (const char* name : {"cartpole.xml", "inverted_double_pendulum.xml", "half_cheetah.xml",
                           "finger.xml", "reacher.xml", "double_pendulum.xml"}) {
    SCOPED_TRACE(name);
    const Model m = load_mjcf(asset(name));
    EXPECT_GT(m.nv, 0);
    EXPECT_GT(m.nu, 0);
    EXPECT_EQ(m.source, asset(name));
    for (int b = 1; b < m.nbody; ++b) EXPECT_GT(m.body_mass[b] + (m.body_jntnum[b] == 0), 0.0);
  }
}

// ---------------------------------------------------------------------------------------------
// known answers

TEST(MjcfCompile, CapsuleIsACylinderPlusTwoHemispheres) {
  const double r = 0.1, half = 0.5, h = 2 * half, rho = 700;
  const Model m =
      load(R"(<body><joint/><geom type="capsule" size="0.1 0.5" density="700"/></body>)");
  const double mc = rho * kPi * r * r * h, ms = rho * 4.0 / 3.0 * kPi * r * r * r;
  EXPECT_NEAR(m.body_mass[1], mc + ms, 1e-12);
  // hemisphere: centre of mass 3r/8 from its face; parallel axis to the capsule's centre
  const double ixx = mc * (3 * r * r + h * h) / 12 + ms * (0.4 * r * r + h * h / 4 + 3 * h * r / 8);
  const double izz = mc * r * r / 2 + ms * 0.4 * r * r;
  EXPECT_NEAR(m.body_inertia[3], ixx, 1e-12);
  EXPECT_NEAR(m.body_inertia[4], ixx, 1e-12);
  EXPECT_NEAR(m.body_inertia[5], izz, 1e-12);
}

TEST(MjcfCompile, SolidsAndMassOverridingDensity) {
  const Model m =
      load(R"(<body><joint/><geom type="box" size="0.1 0.2 0.3" mass="6" density="1"/></body>
    <body><joint/><geom type="sphere" size="0.2"/></body>
    <body><joint/><geom type="cylinder" size="0.1 0.4"/></body>
    <body><joint/><geom type="ellipsoid" size="0.1 0.2 0.3"/></body>)");
  // box: m (b^2 + c^2) / 3 with half-sizes, not sorted for a single geom
  EXPECT_NEAR(m.body_mass[1], 6, 1e-15);
  EXPECT_NEAR(m.body_inertia[3 * 1 + 0], 6 * (0.04 + 0.09) / 3, 1e-14);
  EXPECT_NEAR(m.body_inertia[3 * 1 + 2], 6 * (0.01 + 0.04) / 3, 1e-14);
  const double ms = 1000 * 4.0 / 3.0 * kPi * 0.008;
  EXPECT_NEAR(m.body_mass[2], ms, 1e-12);
  EXPECT_NEAR(m.body_inertia[3 * 2], 0.4 * ms * 0.04, 1e-12);
  const double mcyl = 1000 * kPi * 0.01 * 0.8;
  EXPECT_NEAR(m.body_inertia[3 * 3], mcyl * (3 * 0.01 + 0.64) / 12, 1e-12);
  EXPECT_NEAR(m.body_inertia[3 * 3 + 2], mcyl * 0.01 / 2, 1e-12);
  const double mell = 1000 * 4.0 / 3.0 * kPi * 0.006;
  EXPECT_NEAR(m.body_inertia[3 * 4 + 1], mell * (0.01 + 0.09) / 5, 1e-12);
}

TEST(MjcfCompile, TwoSpheresCombineWithTheParallelAxisTheorem) {
  const Model m = load(
      R"(<body><joint/><geom size="0.1" pos="0 0.5 0"/><geom size="0.1" pos="0 -0.5 0"/></body>)");
  const double ms = 1000 * 4.0 / 3.0 * kPi * 0.001, own = 0.4 * ms * 0.01;
  EXPECT_NEAR(m.body_mass[1], 2 * ms, 1e-12);
  EXPECT_NEAR(m.body_ipos[3 + 1], 0, 1e-15);
  // about x and z: own + m d^2 each; about y: own; sorted decreasing
  EXPECT_NEAR(m.body_inertia[3], 2 * (own + ms * 0.25), 1e-12);
  EXPECT_NEAR(m.body_inertia[4], 2 * (own + ms * 0.25), 1e-12);
  EXPECT_NEAR(m.body_inertia[5], 2 * own, 1e-12);
  // the smallest moment's axis (the inertial frame's z) is the body's y axis
  const std::vector<double> z = rotate(&m.body_iquat[4], {0, 0, 1});
  EXPECT_NEAR(std::fabs(z[1]), 1, 1e-12);
}

TEST(MjcfCompile, FullInertiaIsDiagonalised) {
  const Model m = load(
      R"(<body><joint/><inertial pos="0.1 0.2 0.3" mass="2" fullinertia="0.3 0.25 0.2 0.01 0.02 0.03"/></body>)");
  const double full[9] = {0.3, 0.01, 0.02, 0.01, 0.25, 0.03, 0.02, 0.03, 0.2};
  EXPECT_GE(m.body_inertia[3], m.body_inertia[4]);
  EXPECT_GE(m.body_inertia[4], m.body_inertia[5]);
  // R diag(I) R^T reproduces the written matrix, to the accuracy of the Jacobi iteration, which
  // (as MuJoCo's) stops at rotations whose cosine exceeds 1 - 1e-12, angles below about 1.4e-6
  const double* q = &m.body_iquat[4];
  for (int i = 0; i < 3; ++i) {
    std::vector<double> e(3, 0.0);
    e[i] = 1;
    // column i of R diag(I) R^T = sum_k I_k (r_k . e_i) r_k, r_k the inertial frame's axes
    std::vector<double> col(3, 0.0);
    for (int k = 0; k < 3; ++k) {
      std::vector<double> axis(3, 0.0);
      axis[k] = 1;
      const std::vector<double> rk = rotate(q, axis);
      for (int a = 0; a < 3; ++a) col[a] += m.body_inertia[3 + k] * rk[i] * rk[a];
    }
    for (int a = 0; a < 3; ++a) EXPECT_NEAR(col[a], full[3 * a + i], 1e-9);
  }
  EXPECT_EQ(m.body_ipos[3], 0.1);
  EXPECT_EQ(m.body_mass[1], 2.0);
}

TEST(MjcfCompile, PrincipalAxesOfADiagonalMatrixAreSortedByQuarterTurns) {
  const double mat[9] = {1, 0, 0, 0, 3, 0, 0, 0, 2};
  double moments[3], quat[4];
  phydream::inertia_principal_axes(mat, moments, quat);
  EXPECT_EQ(moments[0], 3);
  EXPECT_EQ(moments[1], 2);
  EXPECT_EQ(moments[2], 1);
  // the frame's x axis is the body's y axis (the moment 3), its z axis the body's x
  EXPECT_NEAR(std::fabs(rotate(quat, {1, 0, 0})[1]), 1, 1e-15);
  EXPECT_NEAR(std::fabs(rotate(quat, {0, 0, 1})[0]), 1, 1e-15);
}

TEST(MjcfCompile, FromtoPlacesTheGeomBetweenThePoints) {
  const Model m = load(
      R"(<body><joint/><geom type="capsule" fromto="0.1 0.2 0.3 0.5 -0.4 0.9" size="0.05"/></body>)");
  EXPECT_NEAR(m.geom_pos[0], 0.3, 1e-15);
  EXPECT_NEAR(m.geom_pos[1], -0.1, 1e-15);
  EXPECT_NEAR(m.geom_pos[2], 0.6, 1e-15);
  const double len = std::sqrt(0.16 + 0.36 + 0.36);
  EXPECT_NEAR(m.geom_size[1], len / 2, 1e-15);
  // z axis along from - to
  const std::vector<double> z = rotate(&m.geom_quat[0], {0, 0, 1});
  EXPECT_NEAR(z[0], -0.4 / len, 1e-15);
  EXPECT_NEAR(z[1], 0.6 / len, 1e-15);
  EXPECT_NEAR(z[2], -0.6 / len, 1e-15);
  // one geom: the body's inertial frame is the geom's
  for (int k = 0; k < 4; ++k) EXPECT_EQ(m.body_iquat[4 + k], m.geom_quat[k]);
}

TEST(MjcfCompile, EulerAnglesInDegreesAndSequences) {
  Model m = load(R"(<body euler="90 0 0"><joint/><geom size="0.1"/></body>)");
  EXPECT_NEAR(m.body_quat[4], std::sqrt(0.5), 1e-15);
  EXPECT_NEAR(m.body_quat[5], std::sqrt(0.5), 1e-15);
  // intrinsic x then rotated z: the z rotation acts about the new z (old -y after 90 about x)
  m = load(R"(<body euler="90 0 90"><joint/><geom size="0.1"/></body>)");
  std::vector<double> x = rotate(&m.body_quat[4], {1, 0, 0});
  EXPECT_NEAR(x[2], 1, 1e-15);  // x -> z
  // extrinsic: both about fixed axes, x first then fixed z
  m = load(R"(<body euler="90 0 90"><joint/><geom size="0.1"/></body>)",
           R"(<compiler eulerseq="XYZ"/>)");
  x = rotate(&m.body_quat[4], {1, 0, 0});
  EXPECT_NEAR(x[1], 1, 1e-15);  // x stays x under the first, then -> y
  m = load(R"(<body axisangle="0 0 2 180"><joint/><geom size="0.1"/></body>)");
  EXPECT_NEAR(std::fabs(m.body_quat[7]), 1, 1e-15);
}

TEST(MjcfCompile, DefaultClassesNestAndMergePartialArrays) {
  const Model m = load_mjcf_string(R"(<mujoco>
    <default>
      <geom type="box" size="0.1 0.2 0.3"/>
      <joint damping="1"/>
      <default class="a">
        <geom size="0.5"/>
        <joint stiffness="2"/>
        <default class="b"><joint damping="3"/></default>
      </default>
    </default>
    <worldbody>
      <body childclass="a"><joint/><geom/>
        <body><joint class="b"/><geom class="main"/></body>
      </body>
    </worldbody></mujoco>)",
                                   "test.xml");
  // class a: size 0.5 0.2 0.3 (first entry replaced); inherited damping 1
  EXPECT_EQ(m.geom_size[0], 0.5);
  EXPECT_EQ(m.geom_size[1], 0.2);
  EXPECT_EQ(m.dof_damping[0], 1.0);
  EXPECT_EQ(m.jnt_stiffness[0], 2.0);
  // class b inherits a's stiffness; the nested body still uses childclass a for unclassed elements
  EXPECT_EQ(m.dof_damping[1], 3.0);
  EXPECT_EQ(m.jnt_stiffness[1], 2.0);
  EXPECT_EQ(m.geom_size[3], 0.1);  // class main
}

TEST(MjcfCompile, BallAndFreeJointsAddressesAndParents) {
  const Model m = load(R"(<body><joint type="slide"/><geom size="0.1"/>
      <body><joint type="ball"/><joint type="slide"/><geom size="0.1"/></body>
      <body><geom size="0.1"/><body><joint/><geom size="0.1"/></body></body>
    </body>
    <body pos="1 2 3" euler="0 0 90"><freejoint name="f"/><geom size="0.1"/></body>)");
  EXPECT_EQ(m.nq, 1 + 4 + 1 + 1 + 7);
  EXPECT_EQ(m.nv, 1 + 3 + 1 + 1 + 6);
  const std::vector<int> qposadr = {0, 1, 5, 6, 7}, dofadr = {0, 1, 4, 5, 6};
  EXPECT_EQ(m.jnt_qposadr, qposadr);
  EXPECT_EQ(m.jnt_dofadr, dofadr);
  // dof tree: the ball's three dofs chain, the welded grandchild's hinge hangs off dof 0
  const std::vector<int> parents = {-1, 0, 1, 2, 3, 0, -1, 6, 7, 8, 9, 10};
  EXPECT_EQ(m.dof_parentid, parents);
  const std::vector<int> jntadr = {-1, 0, 1, -1, 3, 4}, dofnum = {0, 1, 4, 0, 1, 6};
  EXPECT_EQ(m.body_jntadr, jntadr);
  EXPECT_EQ(m.body_dofnum, dofnum);
  // ball qpos0 = identity quaternion; free qpos0 = the body's pose
  EXPECT_EQ(m.qpos0[1], 1.0);
  EXPECT_EQ(m.qpos0[7], 1.0);
  EXPECT_EQ(m.qpos0[9], 3.0);
  EXPECT_NEAR(m.qpos0[10], std::sqrt(0.5), 1e-15);
  EXPECT_NEAR(m.qpos0[13], std::sqrt(0.5), 1e-15);
  EXPECT_EQ(m.qpos_spring, m.qpos0);
}

TEST(MjcfCompile, RefAndSpringrefOfHingesAreAnglesSlidesAreLengths) {
  const Model m = load(
      R"(<body><joint ref="30" springref="-45"/><joint type="slide" ref="0.5" springref="0.25"/><geom size="0.1"/></body>)");
  EXPECT_NEAR(m.qpos0[0], kPi / 6, 1e-15);
  EXPECT_NEAR(m.qpos_spring[0], -kPi / 4, 1e-15);
  EXPECT_EQ(m.qpos0[1], 0.5);
  EXPECT_EQ(m.qpos_spring[1], 0.25);
}

TEST(MjcfCompile, OptionsFlagsAndKeyframes) {
  const Model m = load_mjcf_string(R"(<mujoco>
    <option timestep="0.004" integrator="RK4" cone="elliptic" iterations="7" tolerance="1e-5" gravity="1 2 3">
      <flag contact="disable" frictionloss="disable" actuation="disable" gravity="enable"/>
    </option>
    <worldbody><body><joint name="j"/><geom size="0.1"/></body></worldbody>
    <actuator><motor joint="j"/></actuator>
    <keyframe><key name="home" time="2" qpos="0.5"/><key qvel="3" ctrl="-1"/></keyframe>
  </mujoco>)",
                                   "test.xml");
  EXPECT_EQ(m.opt_timestep, 0.004);
  EXPECT_EQ(m.opt_integrator, phydream::ModelIntegrator::rk4);
  EXPECT_EQ(m.opt_cone, 1);
  EXPECT_EQ(m.opt_iterations, 7);
  EXPECT_EQ(m.opt_tolerance, 1e-5);
  EXPECT_EQ(m.opt_gravity[2], 3.0);
  EXPECT_EQ(m.opt_disableflags, phydream::kDisableContact | phydream::kDisableFrictionloss |
                                    phydream::kDisableActuation);
  EXPECT_EQ(m.nkey, 2);
  const std::vector<double> qpos = {0.5, 0.0}, qvel = {0.0, 3.0}, ctrl = {0.0, -1.0}, time = {2, 0};
  EXPECT_EQ(m.key_qpos, qpos);
  EXPECT_EQ(m.key_qvel, qvel);
  EXPECT_EQ(m.key_ctrl, ctrl);
  EXPECT_EQ(m.key_time, time);
  EXPECT_EQ(m.key_name[0], "home");
}

TEST(MjcfCompile, SettotalmassScalesMassesAndInertias) {
  const Model a = load(
      R"(<body><joint/><geom size="0.1"/><body><joint/><geom type="box" size="0.1 0.2 0.3"/></body></body>)");
  const Model b = load(
      R"(<body><joint/><geom size="0.1"/><body><joint/><geom type="box" size="0.1 0.2 0.3"/></body></body>)",
      R"(<compiler settotalmass="3"/>)");
  const double scale = 3 / (a.body_mass[1] + a.body_mass[2]);
  for (int i = 1; i < 3; ++i) {
    EXPECT_NEAR(b.body_mass[i], scale * a.body_mass[i], 1e-14);
    for (int k = 0; k < 3; ++k)
      EXPECT_NEAR(b.body_inertia[3 * i + k], scale * a.body_inertia[3 * i + k], 1e-14);
  }
}

// ---------------------------------------------------------------------------------------------
// errors: each names the place

void expect_error(const std::string& xml, const std::vector<std::string>& phrases) {
  try {
    load_mjcf_string(xml, "bad.xml");
    ADD_FAILURE() << "accepted:\n" << xml;
  } catch (const InputError& e) {
    const std::string msg = e.what();
    for (const std::string& p : phrases) {
      EXPECT_NE(msg.find(p), std::string::npos) << "message lacks '" << p << "': " << msg;
    }
  }
}

TEST(MjcfErrors, UnsupportedElementsNameTheElementAndLine) {
  expect_error("<mujoco>\n<worldbody/>\n<tendon/>\n</mujoco>",
               {"bad.xml:3:", "<tendon>", "not supported"});
  expect_error("<mujoco>\n<sensor/>\n</mujoco>", {"bad.xml:2:", "<sensor>"});
  expect_error("<mujoco><include file=\"x.xml\"/></mujoco>", {"bad.xml:1:", "<include"});
  expect_error(
      "<mujoco><worldbody>\n<body>\n<joint/><geom "
      "size=\"1\"/>\n<composite/></body></worldbody></mujoco>",
      {"bad.xml:4:", "<composite>", "in <body>"});
  expect_error("<mujoco><actuator>\n<position joint=\"j\"/></actuator></mujoco>",
               {"bad.xml:2:", "<position"});
  expect_error("<mujoco><asset><mesh file=\"a.stl\"/></asset></mujoco>",
               {"<mesh", "not supported"});
  expect_error("<mujoco><worldbody><joint/></worldbody></mujoco>", {"<joint>", "<worldbody>"});
}

TEST(MjcfErrors, UnsupportedAttributesNameTheAttribute) {
  expect_error(
      "<mujoco><worldbody>\n\n<geom name=\"g\" size=\"1\" gap=\"0.1\"/></worldbody></mujoco>",
      {"bad.xml:3:", "<geom name=\"g\">", "'gap'", "not supported"});
  expect_error(
      "<mujoco><worldbody><body><joint springdamper=\"1 1\"/><geom "
      "size=\"1\"/></body></worldbody></mujoco>",
      {"<joint>", "'springdamper'"});
  expect_error("<mujoco><compiler coordinate=\"global\"/></mujoco>",
               {"<compiler>", "coordinate", "global"});
  expect_error("<mujoco><option integrator=\"implicit\"/></mujoco>",
               {"<option>", "integrator", "implicit"});
  expect_error("<mujoco><option density=\"1.2\"/></mujoco>", {"<option>", "'density'"});
  expect_error("<mujoco><option><flag energy=\"enable\"/></option></mujoco>", {"<flag>", "energy"});
  expect_error("<mujoco><option><flag bogus=\"disable\"/></option></mujoco>",
               {"<flag>", "unknown flag 'bogus'"});
  expect_error("<mujoco><worldbody><body mocap=\"true\"/></worldbody></mujoco>",
               {"<body>", "'mocap'"});
  expect_error("<mujoco><keyframe><key act=\"1\"/></keyframe></mujoco>", {"<key>", "'act'"});
}

TEST(MjcfErrors, MalformedValuesNameTheAttribute) {
  expect_error("<mujoco><worldbody>\n<geom size=\"0.1x\"/></worldbody></mujoco>",
               {"bad.xml:2:", "<geom>", "size=\"0.1x\"", "not a number"});
  expect_error("<mujoco><worldbody><geom size=\"0.1\" pos=\"1 2\"/></worldbody></mujoco>",
               {"pos=\"1 2\"", "expected 3 numbers, got 2"});
  expect_error("<mujoco><worldbody><geom size=\"0.1 0.2 0.3 0.4\"/></worldbody></mujoco>",
               {"size=", "expected 1 to 3 numbers, got 4"});
  expect_error("<mujoco><worldbody><geom size=\"nan\"/></worldbody></mujoco>",
               {"size=\"nan\"", "finite"});
  expect_error("<mujoco><worldbody><geom size=\"1\" condim=\"2.5\"/></worldbody></mujoco>",
               {"condim", "integer"});
  expect_error("<mujoco><worldbody><body><joint type=\"universal\"/></body></worldbody></mujoco>",
               {"type=\"universal\"", "hinge, slide, ball, free"});
  expect_error("<mujoco><worldbody><geom type=\"mesh\" size=\"1\"/></worldbody></mujoco>",
               {"type=\"mesh\"", "plane"});
  expect_error("<mujoco><worldbody><body><joint limited=\"yes\"/></body></worldbody></mujoco>",
               {"limited=\"yes\"", "false, true, auto"});
  expect_error("<mujoco><compiler eulerseq=\"xyw\"/></mujoco>", {"eulerseq"});
  expect_error("<mujoco><worldbody><geom size=\"1\" condim=\"2\"/></worldbody></mujoco>",
               {"<geom>", "condim must be 1, 3, 4 or 6"});
}

TEST(MjcfErrors, StructuralProblemsNameTheElement) {
  // a range without `limited`, as MuJoCo 2.2.2 refuses it
  expect_error(
      "<mujoco><worldbody><body>\n<joint name=\"j\" range=\"-1 1\"/><geom "
      "size=\"1\"/></body></worldbody></mujoco>",
      {"bad.xml:2:", "<joint name=\"j\">", "range", "limited"});
  expect_error(
      "<mujoco><worldbody><body><joint name=\"j\" type=\"ball\"/><geom "
      "size=\"1\"/></body></worldbody>"
      "<actuator>\n<motor joint=\"j\"/></actuator></mujoco>",
      {"bad.xml:2:", "<motor>", "ball", "hinge and slide"});
  expect_error(
      "<mujoco><worldbody><body><joint name=\"j\"/><geom size=\"1\"/></body></worldbody>"
      "<actuator><motor joint=\"k\"/></actuator></mujoco>",
      {"<motor>", "unknown joint 'k'"});
  expect_error(
      "<mujoco><worldbody><body><joint/><geom size=\"1\"/></body></worldbody>"
      "<keyframe>\n<key qpos=\"1 2\"/></keyframe></mujoco>",
      {"bad.xml:2:", "<key>", "qpos has 2 numbers; the model needs 1"});
  expect_error(
      "<mujoco><worldbody><body euler=\"0 0 1\" quat=\"1 0 0 0\"><joint/><geom "
      "size=\"1\"/></body></worldbody></mujoco>",
      {"<body>", "more than one orientation"});
  expect_error(
      "<mujoco><worldbody><body><joint class=\"nope\"/><geom "
      "size=\"1\"/></body></worldbody></mujoco>",
      {"<joint>", "class=\"nope\"", "unknown default class"});
  expect_error("<mujoco><worldbody><body childclass=\"nope\"/></worldbody></mujoco>",
               {"childclass"});
  expect_error("<mujoco><worldbody><body name=\"a\"/><body name=\"a\"/></worldbody></mujoco>",
               {"repeated body name 'a'"});
  expect_error(
      "<mujoco><worldbody><body><joint/><geom type=\"sphere\" size=\"1\" fromto=\"0 0 0 1 0 "
      "0\"/></body></worldbody></mujoco>",
      {"<geom>", "fromto needs a capsule, cylinder, box or ellipsoid"});
  expect_error(
      "<mujoco><worldbody><body><joint/><geom type=\"capsule\" size=\"1\" fromto=\"0 0 0 1 0 0\" "
      "pos=\"1 0 0\"/></body></worldbody></mujoco>",
      {"<geom>", "fromto", "pos"});
  expect_error(
      "<mujoco><worldbody><body><joint/><geom type=\"plane\" size=\"1 1 "
      "1\"/></body></worldbody></mujoco>",
      {"<geom>", "plane", "static"});
  expect_error("<mujoco><worldbody><body name=\"m\"><joint/></body></worldbody></mujoco>",
               {"<body name=\"m\">", "mass"});
  expect_error(
      "<mujoco><worldbody><body><joint/><inertial pos=\"0 0 0\" diaginertia=\"1 1 "
      "1\"/></body></worldbody></mujoco>",
      {"<inertial>", "mass"});
  expect_error(
      "<mujoco><worldbody><body><joint/><inertial pos=\"0 0 0\" mass=\"1\" diaginertia=\"0.1 0.2 "
      "0.4\"/></body></worldbody></mujoco>",
      {"<inertial>", "triangle inequality"});
  expect_error(
      "<mujoco><worldbody><body><joint/><geom size=\"1\"/><body><freejoint/><geom "
      "size=\"1\"/></body></body></worldbody></mujoco>",
      {"<freejoint>", "free joint"});
  expect_error(
      "<mujoco><worldbody><body><joint type=\"ball\"/><joint/><geom "
      "size=\"1\"/></body></worldbody></mujoco>",
      {"<joint>", "ball joint cannot be followed"});
  expect_error("<mujoco><worldbody><geom type=\"box\" size=\"1 1\"/></worldbody></mujoco>",
               {"<geom>", "size[2] > 0"});
  expect_error("<mujoco><default><default/></default></mujoco>", {"<default>", "class name"});
  expect_error("<mujoco><default><joint name=\"x\"/></default></mujoco>",
               {"<joint name=\"x\">", "default"});
  expect_error("<mujoco><default/><default/></mujoco>", {"only one top-level <default>"});
  expect_error("<mujoco><option timestep=\"0\"/></mujoco>", {"<option>", "timestep"});
}

TEST(MjcfErrors, FilesAndXmlItself) {
  // tinyxml2 names the element left open and its line
  expect_error("<mujoco><worldbody>\n<body>\n</worldbody></mujoco>",
               {"bad.xml:2:", "malformed XML", "body"});
  expect_error("<robot/>", {"bad.xml:1:", "root element must be <mujoco>"});
  expect_error("", {"bad.xml"});
  try {
    load_mjcf("/nonexistent/model.xml");
    ADD_FAILURE() << "accepted a missing file";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model.xml: cannot read"), std::string::npos)
        << e.what();
  }
}

}  // namespace
