// The MJCF importer against MuJoCo 2.2.2 itself: the same file through load_mjcf and mj_loadXML
// must give the same model, every field (sizes, options, bodies, joints, dofs, geoms, sites,
// actuators, keyframes) equal BIT FOR BIT, quaternions with the same sign. PhyDream's compiler
// rounds as MuJoCo's does (engine/model_compile.cpp), and it must: the inverted double pendulum
// is chaotic, and a last-bit difference of a mass or a frame grows to O(1) over a 1000-step
// trajectory (tests/engine/loader_trajectory_test.cpp). Covers the project's assets, small
// models for each feature, and randomly generated models (random trees, frames given in every
// form and angle unit, all geom types, fromto, inertials, ball and free joints, settotalmass);
// and models that MuJoCo refuses must be refused too. Built only when MuJoCo is found.
#include <gtest/gtest.h>
#include <mujoco/mujoco.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "engine/errors.h"
#include "engine/mjcf.h"
#include "engine/model.h"
#include "tests/engine/model_compare.h"

namespace {

namespace fs = std::filesystem;
using phydream::InputError;
using phydream::Model;
using phydream::test::expect_equal;

std::string asset(const std::string& name) {
  return std::string(PHYDREAM_SOURCE_DIR) + "/assets/" + name;
}

// MuJoCo's model of a file; nullptr and `error` filled when it refuses it
struct MjModelPtr {
  mjModel* m = nullptr;
  ~MjModelPtr() {
    if (m) mj_deleteModel(m);
  }
};

void load_mujoco(const std::string& path, MjModelPtr* out, std::string* error) {
  char err[1000] = "";
  out->m = mj_loadXML(path.c_str(), nullptr, err, sizeof err);
  *error = err;
}

// writes `xml` to a fresh file in a temporary directory (removed at exit) and returns its path
std::string temp_xml(const std::string& xml) {
  struct Dir {
    fs::path path = fs::temp_directory_path() / ("phydream_mjcf_" + std::to_string(::getpid()));
    Dir() { fs::create_directories(path); }
    ~Dir() { fs::remove_all(path); }
  };
  static const Dir dir;
  static int counter = 0;
  const fs::path path = dir.path / ("model_" + std::to_string(counter++) + ".xml");
  std::ofstream(path) << xml;
  return path.string();
}

template <class T>
std::vector<double> reals(const T* p, int n) {
  return std::vector<double>(p, p + n);
}
template <class T>
std::vector<int> ints(const T* p, int n) {
  std::vector<int> v(n);
  for (int i = 0; i < n; ++i) v[i] = static_cast<int>(p[i]);
  return v;
}
std::vector<std::string> names(const mjModel* m, mjtObj type, int n) {
  std::vector<std::string> v;
  for (int i = 0; i < n; ++i) {
    const char* s = mj_id2name(m, type, i);
    v.push_back(s ? s : "");
  }
  return v;
}
// every `stride`-th entry starting at `offset`
std::vector<double> strided(const mjtNum* p, int n, int stride, int offset) {
  std::vector<double> v;
  for (int i = 0; i < n; ++i) v.push_back(p[i * stride + offset]);
  return v;
}

// Bit-for-bit equality, each mismatch reported with all 17 digits and in hex. 0 == -0 counts as
// equal (a product or a sum with a nonzero number cannot tell them apart).
void expect_bitwise(const std::string& what, const std::vector<double>& ours,
                    const std::vector<double>& theirs) {
  ASSERT_EQ(ours.size(), theirs.size()) << what << ": sizes differ";
  for (std::size_t i = 0; i < ours.size(); ++i) {
    EXPECT_TRUE(ours[i] == theirs[i])
        << what << "[" << i << "]: " << std::setprecision(17) << ours[i] << " vs MuJoCo's "
        << theirs[i] << " (" << std::hexfloat << ours[i] << " vs " << theirs[i] << ")";
  }
}

/// Every Model field against its mjModel counterpart, bit for bit.
void expect_matches_mujoco(const Model& a, const mjModel* m) {
  ASSERT_EQ(a.nq, m->nq);
  ASSERT_EQ(a.nv, m->nv);
  ASSERT_EQ(a.nu, m->nu);
  ASSERT_EQ(a.nbody, m->nbody);
  ASSERT_EQ(a.njnt, m->njnt);
  ASSERT_EQ(a.ngeom, m->ngeom);
  ASSERT_EQ(a.nsite, m->nsite);
  ASSERT_EQ(a.nkey, m->nkey);

  // options
  expect_bitwise("opt_timestep", {a.opt_timestep}, {m->opt.timestep});
  expect_bitwise("opt_gravity", {a.opt_gravity.begin(), a.opt_gravity.end()},
                 reals(m->opt.gravity, 3));
  EXPECT_EQ(static_cast<int>(a.opt_integrator), m->opt.integrator);
  EXPECT_EQ(a.opt_cone, m->opt.cone);
  EXPECT_EQ(a.opt_iterations, m->opt.iterations);
  EXPECT_EQ(a.opt_tolerance, m->opt.tolerance);
  EXPECT_EQ(a.opt_impratio, m->opt.impratio);
  EXPECT_EQ(a.opt_disableflags, m->opt.disableflags);
  EXPECT_EQ(m->opt.enableflags, 0);

  // bodies
  expect_equal("body_parentid", a.body_parentid, ints(m->body_parentid, m->nbody));
  expect_equal("body_jntnum", a.body_jntnum, ints(m->body_jntnum, m->nbody));
  expect_equal("body_jntadr", a.body_jntadr, ints(m->body_jntadr, m->nbody));
  expect_equal("body_dofnum", a.body_dofnum, ints(m->body_dofnum, m->nbody));
  expect_equal("body_dofadr", a.body_dofadr, ints(m->body_dofadr, m->nbody));
  expect_bitwise("body_pos", a.body_pos, reals(m->body_pos, 3 * m->nbody));
  expect_bitwise("body_quat", a.body_quat, reals(m->body_quat, 4 * m->nbody));
  expect_bitwise("body_ipos", a.body_ipos, reals(m->body_ipos, 3 * m->nbody));
  expect_bitwise("body_iquat", a.body_iquat, reals(m->body_iquat, 4 * m->nbody));
  expect_bitwise("body_mass", a.body_mass, reals(m->body_mass, m->nbody));
  expect_bitwise("body_inertia", a.body_inertia, reals(m->body_inertia, 3 * m->nbody));
  std::vector<std::string> body_names = names(m, mjOBJ_BODY, m->nbody);
  expect_equal("body_name", a.body_name, body_names);

  // joints
  expect_equal("jnt_type", a.jnt_type, ints(m->jnt_type, m->njnt));
  expect_equal("jnt_bodyid", a.jnt_bodyid, ints(m->jnt_bodyid, m->njnt));
  expect_equal("jnt_qposadr", a.jnt_qposadr, ints(m->jnt_qposadr, m->njnt));
  expect_equal("jnt_dofadr", a.jnt_dofadr, ints(m->jnt_dofadr, m->njnt));
  expect_bitwise("jnt_pos", a.jnt_pos, reals(m->jnt_pos, 3 * m->njnt));
  expect_bitwise("jnt_axis", a.jnt_axis, reals(m->jnt_axis, 3 * m->njnt));
  expect_equal("jnt_limited", a.jnt_limited, ints(m->jnt_limited, m->njnt));
  expect_bitwise("jnt_range", a.jnt_range, reals(m->jnt_range, 2 * m->njnt));
  expect_bitwise("jnt_stiffness", a.jnt_stiffness, reals(m->jnt_stiffness, m->njnt));
  expect_bitwise("jnt_margin", a.jnt_margin, reals(m->jnt_margin, m->njnt));
  expect_bitwise("jnt_solref", a.jnt_solref, reals(m->jnt_solref, mjNREF * m->njnt));
  expect_bitwise("jnt_solimp", a.jnt_solimp, reals(m->jnt_solimp, mjNIMP * m->njnt));
  expect_equal("jnt_name", a.jnt_name, names(m, mjOBJ_JOINT, m->njnt));
  expect_bitwise("qpos0", a.qpos0, reals(m->qpos0, m->nq));
  expect_bitwise("qpos_spring", a.qpos_spring, reals(m->qpos_spring, m->nq));

  // dofs
  expect_equal("dof_bodyid", a.dof_bodyid, ints(m->dof_bodyid, m->nv));
  expect_equal("dof_jntid", a.dof_jntid, ints(m->dof_jntid, m->nv));
  expect_equal("dof_parentid", a.dof_parentid, ints(m->dof_parentid, m->nv));
  expect_bitwise("dof_armature", a.dof_armature, reals(m->dof_armature, m->nv));
  expect_bitwise("dof_damping", a.dof_damping, reals(m->dof_damping, m->nv));
  expect_bitwise("dof_frictionloss", a.dof_frictionloss, reals(m->dof_frictionloss, m->nv));

  // geoms
  expect_equal("geom_type", a.geom_type, ints(m->geom_type, m->ngeom));
  expect_equal("geom_bodyid", a.geom_bodyid, ints(m->geom_bodyid, m->ngeom));
  expect_equal("geom_contype", a.geom_contype, ints(m->geom_contype, m->ngeom));
  expect_equal("geom_conaffinity", a.geom_conaffinity, ints(m->geom_conaffinity, m->ngeom));
  expect_equal("geom_condim", a.geom_condim, ints(m->geom_condim, m->ngeom));
  expect_bitwise("geom_pos", a.geom_pos, reals(m->geom_pos, 3 * m->ngeom));
  expect_bitwise("geom_quat", a.geom_quat, reals(m->geom_quat, 4 * m->ngeom));
  expect_bitwise("geom_size", a.geom_size, reals(m->geom_size, 3 * m->ngeom));
  expect_bitwise("geom_friction", a.geom_friction, reals(m->geom_friction, 3 * m->ngeom));
  expect_bitwise("geom_solref", a.geom_solref, reals(m->geom_solref, mjNREF * m->ngeom));
  expect_bitwise("geom_solimp", a.geom_solimp, reals(m->geom_solimp, mjNIMP * m->ngeom));
  expect_bitwise("geom_margin", a.geom_margin, reals(m->geom_margin, m->ngeom));
  expect_equal("geom_name", a.geom_name, names(m, mjOBJ_GEOM, m->ngeom));

  // sites
  expect_equal("site_type", a.site_type, ints(m->site_type, m->nsite));
  expect_equal("site_bodyid", a.site_bodyid, ints(m->site_bodyid, m->nsite));
  expect_bitwise("site_pos", a.site_pos, reals(m->site_pos, 3 * m->nsite));
  expect_bitwise("site_quat", a.site_quat, reals(m->site_quat, 4 * m->nsite));
  expect_bitwise("site_size", a.site_size, reals(m->site_size, 3 * m->nsite));
  expect_equal("site_name", a.site_name, names(m, mjOBJ_SITE, m->nsite));

  // actuators: motors on joints (MuJoCo's general actuator with unit gain, no bias, no dynamics)
  for (int i = 0; i < m->nu; ++i) {
    EXPECT_EQ(m->actuator_trntype[i], mjTRN_JOINT) << "actuator " << i;
    EXPECT_EQ(m->actuator_dyntype[i], mjDYN_NONE) << "actuator " << i;
    EXPECT_EQ(m->actuator_gaintype[i], mjGAIN_FIXED) << "actuator " << i;
    EXPECT_EQ(m->actuator_biastype[i], mjBIAS_NONE) << "actuator " << i;
    EXPECT_EQ(m->actuator_gainprm[mjNGAIN * i], 1.0) << "actuator " << i;
  }
  std::vector<int> trnid;
  for (int i = 0; i < m->nu; ++i) trnid.push_back(m->actuator_trnid[2 * i]);
  expect_equal("actuator_trnid", a.actuator_trnid, trnid);
  expect_bitwise("actuator_gear", a.actuator_gear, strided(m->actuator_gear, m->nu, 6, 0));
  expect_equal("actuator_ctrllimited", a.actuator_ctrllimited,
               ints(m->actuator_ctrllimited, m->nu));
  expect_bitwise("actuator_ctrlrange", a.actuator_ctrlrange,
                 reals(m->actuator_ctrlrange, 2 * m->nu));
  expect_equal("actuator_name", a.actuator_name, names(m, mjOBJ_ACTUATOR, m->nu));

  // keyframes
  expect_bitwise("key_time", a.key_time, reals(m->key_time, m->nkey));
  expect_bitwise("key_qpos", a.key_qpos, reals(m->key_qpos, m->nkey * m->nq));
  expect_bitwise("key_qvel", a.key_qvel, reals(m->key_qvel, m->nkey * m->nv));
  expect_bitwise("key_ctrl", a.key_ctrl, reals(m->key_ctrl, m->nkey * m->nu));
  expect_equal("key_name", a.key_name, names(m, mjOBJ_KEY, m->nkey));
}

// loads `xml` both ways and compares; both must accept it
void expect_same_as_mujoco(const std::string& xml) {
  const std::string path = temp_xml(xml);
  MjModelPtr mj;
  std::string error;
  load_mujoco(path, &mj, &error);
  ASSERT_NE(mj.m, nullptr) << "MuJoCo refuses it: " << error << "\n" << xml;
  Model ours;
  try {
    ours = phydream::load_mjcf(path);
  } catch (const InputError& e) {
    FAIL() << "PhyDream refuses it: " << e.what() << "\n" << xml;
  }
  SCOPED_TRACE(xml);
  expect_matches_mujoco(ours, mj.m);
}

// ---------------------------------------------------------------------------------------------
// the project's assets

class AssetParity : public ::testing::TestWithParam<std::string> {};

TEST_P(AssetParity, EveryFieldMatchesMuJoCo) {
  const std::string path = asset(GetParam());
  MjModelPtr mj;
  std::string error;
  load_mujoco(path, &mj, &error);
  ASSERT_NE(mj.m, nullptr) << error;
  const Model ours = phydream::load_mjcf(path);
  expect_matches_mujoco(ours, mj.m);
}

INSTANTIATE_TEST_SUITE_P(Assets, AssetParity,
                         ::testing::Values("cartpole.xml", "inverted_double_pendulum.xml",
                                           "half_cheetah.xml", "finger.xml", "reacher.xml",
                                           "double_pendulum.xml"),
                         [](const auto& info) {
                           std::string n = info.param;
                           return n.substr(0, n.find('.'));
                         });

// ---------------------------------------------------------------------------------------------
// one small model per feature

TEST(MjcfParity, GeomSolidsAndSingleGeomFrames) {
  // one geom: the body takes the geom's frame and moments unsorted
  expect_same_as_mujoco(R"(<mujoco><compiler angle="radian"/><worldbody>
    <body><joint/><geom type="sphere" size="0.1"/></body>
    <body><joint/><geom type="capsule" size="0.1 0.5"/></body>
    <body><joint/><geom type="cylinder" size="0.1 0.5"/></body>
    <body><joint/><geom type="box" size="0.3 0.2 0.1"/></body>
    <body><joint/><geom type="ellipsoid" size="0.1 0.3 0.2" quat="0.3 0.4 0.5 0.6"/></body>
    <body><joint/><geom type="box" size="0.1 0.2 0.3" mass="3" density="5"/></body>
    <body><joint/><geom type="capsule" size="0.05 0.2" density="300" pos="0.1 0.2 0.3"/></body>
  </worldbody></mujoco>)");
}

TEST(MjcfParity, FromtoForEveryType) {
  expect_same_as_mujoco(R"(<mujoco><compiler angle="radian"/><worldbody>
    <body><joint/><geom type="capsule" fromto="0 0 0 0 0 1" size="0.1"/></body>
    <body><joint/><geom type="capsule" fromto="0 0 0 0 0 -1" size="0.1"/></body>
    <body><joint/><geom type="capsule" fromto="0 0 0 0 1 0" size="0.1"/></body>
    <body><joint/><geom type="capsule" fromto="0.1 0.2 0.3 0.5 -0.4 0.9" size="0.1 7"/></body>
    <body><joint/><geom type="cylinder" fromto="0.1 0.2 0.3 0.5 -0.4 0.9" size="0.1"/></body>
    <body><joint/><geom type="box" fromto="0.1 0.2 0.3 0.5 -0.4 0.9" size="0.1 0.2"/></body>
    <body><joint/><geom type="ellipsoid" fromto="0.1 0.2 0.3 0.5 -0.4 0.9" size="0.1 0.2"/></body>
    <site type="capsule" fromto="0 0 0 0 0 1" size="0.1"/>
    <site type="box" fromto="0 0 0 1 0 0" size="0.02 0.03"/>
  </worldbody></mujoco>)");
}

TEST(MjcfParity, SeveralGeomsCombineAboutTheirCentreOfMass) {
  expect_same_as_mujoco(R"(<mujoco><compiler angle="radian"/><worldbody>
    <body><joint/><geom type="box" size="0.3 0.2 0.1" pos="1 0 0"/><geom size="0.2" pos="0 1 0"/></body>
    <body><joint/><geom type="box" size="0.3 0.2 0.1" quat="0.3 0.4 0.5 0.6"/>
      <geom size="0.1" mass="0" pos="1 0 0"/></body>
    <body><joint/><geom type="capsule" fromto="0 0 0 0.3 0 0" size="0.05"/>
      <geom size="0.1" mass="2" pos="0.3 0 0"/></body>
    <body><joint/><geom type="capsule" fromto="0 0 0 0 0 -0.16" size="0.028"/>
      <geom type="capsule" fromto="0 0 -0.13 0 0 -0.161" size="0.03"/></body>
    <body><joint/><geom type="cylinder" fromto="0 -0.03 0 0 0.03 0" size="0.034"/>
      <geom type="capsule" fromto="0 0 0 0 0 -0.17" size="0.03"/>
      <geom type="ellipsoid" size="0.1 0.05 0.02" euler="0.3 0.2 0.1" pos="0.1 0 0"/></body>
  </worldbody></mujoco>)");
}

TEST(MjcfParity, EulerSequencesAndAngleUnits) {
  for (const char* seq : {"xyz", "XYZ", "zyx", "ZYX", "xYz", "zYx", "yxz", "XzX"}) {
    for (const char* unit : {"radian", "degree"}) {
      std::ostringstream xml;
      xml << "<mujoco><compiler angle=\"" << unit << "\" eulerseq=\"" << seq << "\"/><worldbody>"
          << "<body euler=\"0.1 0.2 0.3\"><joint/><geom type=\"box\" size=\"0.1 0.2 0.3\" "
          << "euler=\"10 -20 30\"/></body>"
          << "<body axisangle=\"1 2 3 40\"><joint type=\"slide\"/><geom size=\"0.1\"/>"
          << "<site euler=\"30 60 90\"/></body></worldbody></mujoco>";
      expect_same_as_mujoco(xml.str());
    }
  }
}

TEST(MjcfParity, FramesInEveryForm) {
  expect_same_as_mujoco(R"(<mujoco><worldbody>
    <body quat="1 0.2 0.3 0.4"><joint/><geom type="box" size="0.1 0.2 0.3"/></body>
    <body xyaxes="1 1 0 0 1 0.5"><joint/><geom type="box" size="0.1 0.2 0.3"/></body>
    <body zaxis="1 1 1"><joint/><geom type="box" size="0.1 0.2 0.3" zaxis="0 0 -1"/></body>
    <body zaxis="0 0 -1" pos="1 2 3"><joint/><geom type="box" size="0.1 0.2 0.3" xyaxes="0 1 0 -1 0 0"/></body>
    <body axisangle="0 1 0 -217"><joint/><geom type="capsule" size="0.1 0.2" axisangle="1 1 0 45"/></body>
  </worldbody></mujoco>)");
}

TEST(MjcfParity, DirectionsWithin1e7OfTheZAxisSnapToIt) {
  // zaxis and fromto closer than 1e-7 rad to +z or -z become the identity or the half turn
  // about x in MuJoCo 2.2.2; just outside, the exact shortest rotation
  expect_same_as_mujoco(R"(<mujoco><worldbody>
    <body zaxis="1e-8 0 1"><joint/><geom size="0.1"/></body>
    <body zaxis="0 1e-8 -1"><joint/><geom size="0.1"/></body>
    <body zaxis="2e-7 0 1"><joint/><geom size="0.1"/></body>
    <body zaxis="0 -2e-7 -1"><joint/><geom size="0.1"/></body>
    <body><joint/><geom type="capsule" size="0.1" fromto="0 0 0 1e-8 0 1"/>
      <geom type="capsule" size="0.1" fromto="0 0 1 1e-8 0 0"/>
      <geom type="cylinder" size="0.1" fromto="0 0 0 3e-7 0 1"/></body>
  </worldbody></mujoco>)");
}

TEST(MjcfParity, SiteFramesInEveryForm) {
  // a site's frame is normalised once more than a body's or a geom's, unless given as a quat
  expect_same_as_mujoco(R"(<mujoco><worldbody>
    <site quat="1 0.2 0.3 0.4"/>
    <site euler="10 20 30"/>
    <site axisangle="1 2 3 40"/>
    <site xyaxes="1 1 0 0 1 0.5"/>
    <site zaxis="1 2 3"/>
    <site type="capsule" size="0.1" fromto="0.1 0.2 0.3 -0.4 0.5 0.6"/>
    <site type="box" size="0.1 0.2" fromto="0.1 0.2 0.3 -0.4 0.5 0.6"/>
  </worldbody></mujoco>)");
}

TEST(MjcfParity, DefaultClassesNestingAndChildclass) {
  expect_same_as_mujoco(R"(<mujoco model="defaults">
    <default>
      <joint damping="1" axis="0 1 0"/>
      <geom type="capsule" size="0.05 0.1" friction="0.5" rgba="1 0 0 1"/>
      <motor ctrllimited="true" ctrlrange="-1 1"/>
      <default class="a">
        <joint stiffness="3" damping="2" range="-30 30" limited="true"/>
        <geom density="500" size="0.02" condim="1" solimp="0.5 0.6"/>
        <site type="box" size="0.1 0.2"/>
        <default class="b">
          <joint armature="0.5" type="slide"/>
          <geom type="box" size="0.1 0.1 0.1" contype="2" conaffinity="3"/>
          <motor gear="5" ctrllimited="false"/>
        </default>
      </default>
    </default>
    <worldbody>
      <body name="p" childclass="a">
        <joint name="j1"/>
        <joint name="j2" class="b" range="-0.5 0.5"/>
        <geom name="g1" fromto="0 0 0 0.3 0 0"/>
        <geom name="g2" class="b" pos="0.3 0 0"/>
        <geom name="g3" class="main" pos="0 0 1"/>
        <site name="s1"/>
        <body name="c" pos="0.3 0 0">
          <joint name="j3"/>
          <geom name="g4" size="0.04 0.2"/>
          <body name="d" childclass="b"><joint name="j4"/><geom name="g5"/></body>
        </body>
      </body>
    </worldbody>
    <actuator><motor joint="j1"/><motor joint="j2" class="b"/><motor joint="j4" class="a" gear="3"/></actuator>
  </mujoco>)");
}

TEST(MjcfParity, InertialsDiagonalAndFull) {
  expect_same_as_mujoco(R"(<mujoco><compiler angle="radian"/><worldbody>
    <body><joint/><inertial pos="0 0 0" mass="1" diaginertia="0.1 0.3 0.2"/></body>
    <body><joint/><inertial pos="0.1 0 0" quat="0 1 0 0" mass="1" diaginertia="0.1 0.3 0.2"/></body>
    <body><joint/><inertial pos="0.1 0.2 0.3" euler="0.1 0.2 0.3" mass="2" diaginertia="0.1 0.3 0.2"/></body>
    <body><joint/><inertial pos="0.1 0.2 0.3" mass="1.5" fullinertia="0.3 0.25 0.2 0.01 0.02 0.03"/></body>
    <body><joint/><inertial pos="0 0 0" mass="1.5" fullinertia="0.3 0.3 0.2 0 0 0"/></body>
    <body><joint/><inertial pos="0 0 0" mass="1" diaginertia="0.1 0.3 0.2"/>
      <geom type="box" size="0.3 0.2 0.1" quat="0.3 0.4 0.5 0.6"/></body>
  </worldbody></mujoco>)");
}

TEST(MjcfParity, InertiafromgeomSettings) {
  for (const char* mode : {"true", "false", "auto"}) {
    std::ostringstream xml;
    xml << "<mujoco><compiler inertiafromgeom=\"" << mode << "\"/><worldbody>"
        << "<body><joint/><inertial pos=\"0 0 0\" mass=\"1\" diaginertia=\"0.1 0.3 0.2\"/>"
        << "<geom type=\"box\" size=\"0.3 0.2 0.1\" euler=\"10 20 30\"/></body>"
        << "<body><geom size=\"0.1\"/></body></worldbody></mujoco>";
    expect_same_as_mujoco(xml.str());
  }
  expect_same_as_mujoco(R"(<mujoco><compiler inertiagrouprange="0 2"/><worldbody>
    <body><joint/><geom size="0.1" group="3"/><geom type="box" size="0.1 0.2 0.3" quat="1 1 0 0"/></body>
    <body><joint/><geom size="0.1" group="2" pos="0.2 0 0"/><geom type="box" size="0.1 0.2 0.3" quat="1 1 0 0" group="1"/></body>
  </worldbody></mujoco>)");
}

TEST(MjcfParity, SettotalmassBoundmassBoundinertia) {
  expect_same_as_mujoco(R"(<mujoco><compiler angle="radian" settotalmass="10"/><worldbody>
    <body><joint/><geom type="capsule" fromto="0 0 0 0.3 0 0" size="0.05"/><geom size="0.1" mass="2" pos="0.3 0 0"/>
      <body pos="0.3 0 0"><joint type="ball"/><inertial pos="0.1 0.2 0.3" mass="1.5" fullinertia="0.3 0.25 0.2 0.01 0.02 0.03"/></body>
    </body>
    <body pos="1 2 3"><freejoint/><geom type="box" size="0.1 0.2 0.3"/></body>
  </worldbody></mujoco>)");
  expect_same_as_mujoco(
      R"(<mujoco><compiler boundmass="2" boundinertia="0.5" settotalmass="10"/><worldbody>
    <body><joint/><geom size="0.1"/></body><body/>
  </worldbody></mujoco>)");
}

TEST(MjcfParity, JointsOfEveryTypeRefSpringrefAndLimits) {
  expect_same_as_mujoco(R"(<mujoco model="joints">
    <compiler angle="degree"/>
    <option timestep="0.005" integrator="RK4" cone="elliptic" iterations="50" tolerance="1e-6" gravity="0 0 -5">
      <flag contact="disable" limit="disable" passive="disable" gravity="enable" energy="disable"/>
    </option>
    <default><joint damping="1"/></default>
    <worldbody>
      <body name="a" pos="0 0 1" euler="10 20 30">
        <joint name="h" type="hinge" axis="1 1 0" ref="30" springref="10" range="-45 45" limited="true"
               stiffness="2" armature="0.1" frictionloss="0.2" margin="0.01" solreflimit="0.05 2" solimplimit="0.8 0.9 0.01"/>
        <joint name="s" type="slide" axis="0 0 2" ref="0.5" springref="0.2" range="-1 2" limited="true"/>
        <geom type="capsule" fromto="0 0 0 0.3 0 0" size="0.05"/>
        <body name="b" pos="0.3 0 0" axisangle="0 0 1 90">
          <joint name="ball" type="ball" range="0 60" limited="true" pos="0.1 0 0"/>
          <joint name="after" type="slide" axis="1 0 0"/>
          <geom size="0.1"/>
        </body>
      </body>
      <body name="free" pos="1 2 3" quat="1 0.2 0 0"><freejoint name="fj"/><geom type="box" size="0.1 0.2 0.3"/></body>
      <body name="free2" pos="-1 0 0" euler="0 0 45"><joint type="free" name="fj2"/><geom size="0.1"/></body>
    </worldbody>
    <actuator>
      <motor name="m1" joint="h" gear="2 0 0 0 0 0" ctrlrange="-1 1" ctrllimited="true"/>
      <motor joint="s" ctrllimited="false"/>
      <motor joint="after" ctrlrange="-3 3" ctrllimited="true" gear="-4"/>
    </actuator>
    <keyframe>
      <key name="k0" time="1.5" qpos="0.1 0.2 1 0 0 0 0.3 1 2 3 1 0 0 0 0 0 0 1 0 0 0" ctrl="0.5 0.25 1"/>
      <key qvel="1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18"/>
    </keyframe>
  </mujoco>)");
}

TEST(MjcfParity, AutolimitsTurnsRangesIntoLimits) {
  expect_same_as_mujoco(R"(<mujoco><compiler autolimits="true"/><worldbody>
    <body><joint name="j" range="-10 10"/><joint name="k" type="slide" range="-1 1" limited="false"/><geom size="0.1"/></body>
  </worldbody><actuator><motor joint="j" ctrlrange="-2 2"/><motor joint="k"/></actuator></mujoco>)");
}

TEST(MjcfParity, StaticBodiesPlanesAndWeldedMass) {
  expect_same_as_mujoco(R"(<mujoco><worldbody>
    <geom type="plane" size="1 1 0.1"/>
    <site name="ws" pos="1 0 0"/>
    <body name="static" pos="0 0 1"><geom type="plane" size="0 0 1"/><geom size="0.1"/></body>
    <body name="mover"><joint/><body name="welded"><geom size="0.1"/></body></body>
  </worldbody></mujoco>)");
}

TEST(MjcfParity, VisualOnlyPartsAreIgnoredAsMuJoCoIgnoresThemForPhysics) {
  expect_same_as_mujoco(R"(<mujoco model="visual">
    <size nstack="3000" nuser_geom="1"/>
    <visual><headlight ambient="0.3 0.3 0.3"/></visual>
    <statistic extent="2"/>
    <asset><texture name="t" builtin="checker" type="2d" width="10" height="10" rgb1="0 0 0" rgb2="1 1 1"/>
      <material name="m" texture="t"/></asset>
    <default><geom rgba="1 0 0 1"/><camera fovy="45"/><light diffuse="1 1 1"/></default>
    <worldbody>
      <light pos="0 0 3" dir="0 0 -1"/>
      <camera name="c" pos="0 -1 1" xyaxes="1 0 0 0 1 1"/>
      <body><joint group="2"/><geom size="0.1" material="m" rgba="0 1 0 1"/><camera pos="0 0 1"/>
        <site rgba="1 1 1 1" group="4"/></body>
    </worldbody>
  </mujoco>)");
}

// ---------------------------------------------------------------------------------------------
// random models: random trees with every frame form, geom type, fromto, inertials and joints

class RandomModel {
 public:
  explicit RandomModel(unsigned seed) : rng_(seed) {}

  std::string xml() {
    std::ostringstream os;
    degrees_ = coin();
    const char* seqs[] = {"xyz", "XYZ", "zyx", "xYz", "ZxZ"};
    os << "<mujoco model=\"random\"><compiler angle=\"" << (degrees_ ? "degree" : "radian")
       << "\" eulerseq=\"" << seqs[uniform_int(0, 4)] << "\"";
    if (uniform_int(0, 3) == 0) os << " settotalmass=\"" << uniform(1, 20) << "\"";
    if (uniform_int(0, 5) == 0) os << " inertiafromgeom=\"true\"";
    os << "/><worldbody>";
    const int nroot = uniform_int(1, 3);
    for (int i = 0; i < nroot; ++i) body(os, 0, true);
    os << "</worldbody>";
    if (!hinges_.empty()) {
      os << "<actuator>";
      for (const std::string& j : hinges_) {
        os << "<motor joint=\"" << j << "\" gear=\"" << uniform(-50, 50) << "\"";
        if (coin())
          os << " ctrllimited=\"true\" ctrlrange=\"" << uniform(-2, -0.1) << " " << uniform(0.1, 2)
             << "\"";
        os << "/>";
      }
      os << "</actuator>";
    }
    os << "</mujoco>";
    return os.str();
  }

 private:
  std::mt19937 rng_;
  bool degrees_ = false;
  int names_ = 0;
  std::vector<std::string> hinges_;

  double uniform(double lo, double hi) {
    return std::uniform_real_distribution<double>(lo, hi)(rng_);
  }
  int uniform_int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool coin() { return uniform_int(0, 1) == 1; }
  std::string vec(int n, double lo, double hi) {
    std::ostringstream os;
    os.precision(17);
    for (int k = 0; k < n; ++k) os << (k ? " " : "") << uniform(lo, hi);
    return os.str();
  }
  std::string angle_value() {
    std::ostringstream os;
    os.precision(17);
    os << (degrees_ ? uniform(-180, 180) : uniform(-3.1, 3.1));
    return os.str();
  }
  // a random orientation attribute, or none
  std::string frame() {
    switch (uniform_int(0, 5)) {
      case 0:
        return " quat=\"" + vec(4, -1, 1) + "\"";
      case 1:
        return " axisangle=\"" + vec(3, -1, 1) + " " + angle_value() + "\"";
      case 2:
        return " euler=\"" + angle_value() + " " + angle_value() + " " + angle_value() + "\"";
      case 3:
        return " xyaxes=\"" + vec(6, -1, 1) + "\"";
      case 4:
        return " zaxis=\"" + vec(3, -1, 1) + "\"";
      default:
        return "";
    }
  }
  void geom(std::ostringstream& os) {
    const char* types[] = {"sphere", "capsule", "cylinder", "box", "ellipsoid"};
    const int t = uniform_int(0, 4);
    os << "<geom type=\"" << types[t] << "\"";
    if (t > 0 && coin()) {
      os << " fromto=\"" << vec(6, -0.5, 0.5) << "\" size=\"" << vec(2, 0.02, 0.2) << "\"";
    } else {
      os << " pos=\"" << vec(3, -0.5, 0.5) << "\"" << frame() << " size=\"" << vec(3, 0.02, 0.3)
         << "\"";
    }
    if (uniform_int(0, 3) == 0) os << " mass=\"" << uniform(0.1, 5) << "\"";
    if (uniform_int(0, 3) == 0) os << " density=\"" << uniform(100, 2000) << "\"";
    os << "/>";
  }
  void body(std::ostringstream& os, int depth, bool root) {
    os << "<body name=\"b" << names_++ << "\" pos=\"" << vec(3, -1, 1) << "\"" << frame() << ">";
    if (root && uniform_int(0, 4) == 0) {
      os << "<freejoint/>";
    } else {
      const int nj = uniform_int(0, 2);
      for (int j = 0; j < nj; ++j) {
        const std::string name = "j" + std::to_string(names_++);
        if (j == 0 && uniform_int(0, 4) == 0) {
          os << "<joint name=\"" << name << "\" type=\"ball\" damping=\"" << uniform(0, 2)
             << "\"/>";
          break;
        }
        const bool hinge = coin();
        os << "<joint name=\"" << name << "\" type=\"" << (hinge ? "hinge" : "slide")
           << "\" axis=\"" << vec(3, -1, 1) << "\" pos=\"" << vec(3, -0.2, 0.2) << "\" ref=\""
           << uniform(-1, 1) << "\" springref=\"" << uniform(-1, 1) << "\" stiffness=\""
           << uniform(0, 5) << "\" damping=\"" << uniform(0, 2) << "\" armature=\""
           << uniform(0, 0.5) << "\"";
        if (coin())
          os << " limited=\"true\" range=\"" << uniform(-2, -0.1) << " " << uniform(0.1, 2) << "\"";
        os << "/>";
        hinges_.push_back(name);
      }
    }
    if (uniform_int(0, 4) == 0) {
      // a valid full inertia: random moments obeying the triangle inequality, rotated
      const double a = uniform(0.1, 1), b = uniform(0.1, 1),
                   c = uniform(std::fabs(a - b) + 0.01, a + b - 0.01);
      os << "<inertial pos=\"" << vec(3, -0.3, 0.3) << "\" mass=\"" << uniform(0.5, 3) << "\" ";
      if (coin()) {
        os << "diaginertia=\"" << a << " " << b << " " << c << "\"" << frame() << "/>";
      } else {
        // R diag(a, b, c) R^T for a rotation about a random axis
        const double th = uniform(-3, 3), s = std::sin(th), co = std::cos(th);
        os << "fullinertia=\"" << a << " " << (b * co * co + c * s * s) << " "
           << (b * s * s + c * co * co) << " 0 0 " << ((b - c) * s * co) << "\"/>";
      }
    }
    const int ng = uniform_int(1, 3);
    for (int g = 0; g < ng; ++g) geom(os);
    if (coin()) {
      if (coin()) {
        os << "<site pos=\"" << vec(3, -0.5, 0.5) << "\"" << frame() << "/>";
      } else {
        os << "<site type=\"capsule\" size=\"0.02\" fromto=\"" << vec(6, -0.5, 0.5) << "\"/>";
      }
    }
    if (depth < 3) {
      const int nc = uniform_int(0, 2);
      for (int c = 0; c < nc; ++c) body(os, depth + 1, false);
    }
    os << "</body>";
  }
};

TEST(MjcfParity, RandomModelsMatchMuJoCoOrAreRefusedByBoth) {
  int compared = 0;
  for (unsigned seed = 1; seed <= 300; ++seed) {
    const std::string xml = RandomModel(seed).xml();
    const std::string path = temp_xml(xml);
    MjModelPtr mj;
    std::string error;
    load_mujoco(path, &mj, &error);
    if (mj.m == nullptr) {
      // e.g. a massless moving body: PhyDream must refuse it too
      EXPECT_THROW(phydream::load_mjcf(path), InputError) << "MuJoCo: " << error << "\n" << xml;
      continue;
    }
    Model ours;
    try {
      ours = phydream::load_mjcf(path);
    } catch (const InputError& e) {
      ADD_FAILURE() << "seed " << seed << ": PhyDream refuses what MuJoCo accepts: " << e.what()
                    << "\n"
                    << xml;
      continue;
    }
    SCOPED_TRACE("seed " + std::to_string(seed) + "\n" + xml);
    expect_matches_mujoco(ours, mj.m);
    ++compared;
  }
  // most random models are valid; the comparison must not be vacuous
  EXPECT_GE(compared, 200);
}

// ---------------------------------------------------------------------------------------------
// models MuJoCo refuses are refused by PhyDream as well

TEST(MjcfParity, ModelsMuJoCoRefusesAreRefused) {
  const std::vector<std::string> bad = {
      // a range without `limited` (autolimits is off in 2.2.2), also from a default class
      R"(<mujoco><worldbody><body><joint range="-1 1"/><geom size="0.1"/></body></worldbody></mujoco>)",
      R"(<mujoco><default><joint range="-1 1"/></default><worldbody><body><joint/><geom size="0.1"/></body></worldbody></mujoco>)",
      R"(<mujoco><worldbody><body><joint name="j"/><geom size="0.1"/></body></worldbody><actuator><motor joint="j" ctrlrange="-1 1"/></actuator></mujoco>)",
      // limits that are no interval
      R"(<mujoco><worldbody><body><joint limited="true"/><geom size="0.1"/></body></worldbody></mujoco>)",
      R"(<mujoco><worldbody><body><joint name="j"/><geom size="0.1"/></body></worldbody><actuator><motor joint="j" ctrllimited="true"/></actuator></mujoco>)",
      // planes in moving bodies, geoms without size
      R"(<mujoco><worldbody><body><joint/><geom type="plane" size="1 1 1"/></body></worldbody></mujoco>)",
      R"(<mujoco><worldbody><geom type="plane" size="1 1 0"/></worldbody></mujoco>)",
      R"(<mujoco><worldbody><body><joint/><geom type="box" size="0.1"/></body></worldbody></mujoco>)",
      R"(<mujoco><worldbody><body><joint/><geom type="sphere" size="0.1" fromto="0 0 0 1 0 0"/></body></worldbody></mujoco>)",
      // massless moving bodies
      R"(<mujoco><compiler inertiafromgeom="false"/><worldbody><body><joint/><geom size="0.1"/></body></worldbody></mujoco>)",
      R"(<mujoco><worldbody><body><joint/><body><joint/><geom size="0.1"/></body></body></worldbody></mujoco>)",
      R"(<mujoco><worldbody><body><joint type="slide"/><inertial pos="0 0 0" mass="1" diaginertia="0 0 0"/></body></worldbody></mujoco>)",
      R"(<mujoco><worldbody><body><geom size="0.1" mass="0" pos="1 0 0"/><geom size="0.1" mass="0"/></body></worldbody></mujoco>)",
      // moments no rigid body has
      R"(<mujoco><worldbody><body><joint/><inertial pos="0 0 0" mass="1" diaginertia="0.1 0.2 0.3000000001"/></body></worldbody></mujoco>)",
      // free joints below the top level or with company; a ball followed by a hinge
      R"(<mujoco><worldbody><body><joint/><geom size="0.1"/><body><freejoint/><geom size="0.1"/></body></body></worldbody></mujoco>)",
      R"(<mujoco><worldbody><body><freejoint/><joint/><geom size="0.1"/></body></worldbody></mujoco>)",
      R"(<mujoco><worldbody><body><joint type="ball"/><joint/><geom size="0.1"/></body></worldbody></mujoco>)",
      // keyframes of the wrong size, unknown joints, two orientations, unknown classes
      R"(<mujoco><worldbody><body><joint/><geom size="0.1"/></body></worldbody><keyframe><key qpos="1 2"/></keyframe></mujoco>)",
      R"(<mujoco><worldbody><body><joint name="j"/><geom size="0.1"/></body></worldbody><actuator><motor joint="k"/></actuator></mujoco>)",
      R"(<mujoco><worldbody><body euler="0 0 1" quat="1 0 0 0"><joint/><geom size="0.1"/></body></worldbody></mujoco>)",
      R"(<mujoco><worldbody><body><joint class="nope"/><geom size="0.1"/></body></worldbody></mujoco>)",
      R"(<mujoco><default><default class="a"/><default class="a"/></default><worldbody/></mujoco>)",
      // malformed numbers
      R"(<mujoco><worldbody><geom size="0.1x"/></worldbody></mujoco>)",
      R"(<mujoco><worldbody><geom size="0.1" pos="1 2"/></worldbody></mujoco>)",
      R"(<mujoco><worldbody><body><joint foo="1"/><geom size="0.1"/></body></worldbody></mujoco>)",
  };
  for (const std::string& xml : bad) {
    const std::string path = temp_xml(xml);
    MjModelPtr mj;
    std::string error;
    load_mujoco(path, &mj, &error);
    EXPECT_EQ(mj.m, nullptr) << "MuJoCo accepts it (the test's premise is wrong):\n" << xml;
    EXPECT_THROW(phydream::load_mjcf(path), InputError) << xml;
  }
}

}  // namespace
