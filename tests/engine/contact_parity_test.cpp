// Soft contact, joint limits and friction loss against MuJoCo 2.2.2: the same MJCF file loaded by
// PhyDream's loader and stepped by step() (engine/forward.h, engine/constraint.h), and loaded by
// mj_loadXML and stepped by mj_step, with every constraint enabled.
//
//   - Intermediates at a state in contact: the constants (body_invweight0, dof_invweight0,
//     meaninertia), the contacts (count, dist, pos, frame), the constraint rows (type, Jacobian,
//     pos, margin, diagApprox, R, D, aref) and the solution (qacc, efc_force, qfrc_constraint)
//     match MuJoCo's to rounding, the solution to the solver's tolerance.
//   - Trajectories: 200 steps (float64, the files' own solver settings) under random controls
//     stay within 1e-5 of mj_step's (max abs over qpos, qvel) for bounce, the wall bounce, two
//     balls, Finger (elliptic cones, limits, friction loss), half-cheetah with ground contact
//     (pyramidal cones, limits), and a test model with boxes, spheres and capsules on a plane
//     under both cone types.
//
// PhyDream's Newton iterations differ from MuJoCo's in details that do not change the minimiser
// (the Hessian is refactored every iteration instead of updated by rank-one steps), so the two
// agree to the solver's tolerance per step, not bit for bit; the measured errors are printed.
#include <gtest/gtest.h>
#include <mujoco/mujoco.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/constraint.h"
#include "engine/data.h"
#include "engine/forward.h"
#include "engine/model_constants.h"
#include "engine/model_json.h"
#include "engine/model_view.h"
#include "tests/engine/mujoco_model.h"

namespace phydream::testing {
namespace {

constexpr double kTrajectoryTol = 1e-5;

std::string asset_path(const std::string& name) {
  return std::string(PHYDREAM_SOURCE_DIR) + "/assets/" + name + ".xml";
}

// a box, a sphere and a capsule dropped on a plane, a hinge arm with limits and friction loss
// swinging above it; the dropped bodies and the arm touch the floor only (contype 2,
// conaffinity 1 against the floor's 1, 2); box_stack.xml has the pairs among boxes
const char* kPileXml = R"(
<mujoco model="pile">
  <option timestep="0.002" cone="%s"/>
  <default>
    <geom contype="2" conaffinity="1"/>
  </default>
  <worldbody>
    <geom name="floor" type="plane" size="5 5 0.1" friction="0.8 0.01 0.001" contype="1" conaffinity="2"/>
    <body name="box" pos="0 0 0.12" euler="10 20 30">
      <freejoint/>
      <geom type="box" size="0.1 0.08 0.05" density="500"/>
    </body>
    <body name="ball" pos="0.3 0.1 0.09">
      <freejoint/>
      <geom type="sphere" size="0.1" density="800" solref="0.01 0.8"/>
    </body>
    <body name="capsule" pos="-0.3 0 0.07" euler="0 80 0">
      <freejoint/>
      <geom type="capsule" size="0.05 0.15" density="700" solimp="0.8 0.95 0.002 0.4 3"/>
    </body>
    <body name="arm" pos="0 -0.4 0.3">
      <joint name="shoulder" type="hinge" axis="0 1 0" limited="true" range="-30 45"
             frictionloss="0.05" damping="0.1"/>
      <geom type="capsule" fromto="0 0 0 0.3 0 0" size="0.04"/>
      <body pos="0.3 0 0">
        <joint name="elbow" type="hinge" axis="0 1 0" limited="true" range="-60 60" margin="0.01"/>
        <geom type="sphere" size="0.06" pos="0.1 0 0"/>
      </body>
    </body>
  </worldbody>
  <actuator>
    <motor joint="shoulder" gear="2" ctrllimited="true" ctrlrange="-1 1"/>
    <motor joint="elbow" gear="1" ctrllimited="true" ctrlrange="-1 1"/>
  </actuator>
</mujoco>)";

std::string pile_xml(const char* cone) {
  char buf[4096];
  std::snprintf(buf, sizeof(buf), kPileXml, cone);
  return buf;
}

std::string write_temp(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + name;
  FILE* f = std::fopen(path.c_str(), "w");
  std::fputs(text.c_str(), f);
  std::fclose(f);
  return path;
}

// MuJoCo's and PhyDream's simulation of one file, each from its own loader
struct Simulations {
  MjModelPtr mj;
  MjDataPtr mjd;
  Model model;
  std::unique_ptr<ModelArrays<double>> arrays;
  ModelView<double> view{};
  std::unique_ptr<DataStore<double>> store;
  Data<double> d{};

  explicit Simulations(const std::string& path) : mj(mujoco_load_file(path)), model(load_model(path)) {
    mjd.reset(mj_makeData(mj.get()));
    arrays = std::make_unique<ModelArrays<double>>(model);
    view = arrays->view();
    store = std::make_unique<DataStore<double>>(view);
    d = store->view();
  }

  void set_state(const double* qpos, const double* qvel) {
    std::copy(qpos, qpos + mj->nq, mjd->qpos);
    std::copy(qvel, qvel + mj->nv, mjd->qvel);
    std::copy(qpos, qpos + mj->nq, d.qpos);
    std::copy(qvel, qvel + mj->nv, d.qvel);
  }
  void set_ctrl(const std::vector<double>& ctrl) {
    std::copy(ctrl.begin(), ctrl.end(), mjd->ctrl);
    std::copy(ctrl.begin(), ctrl.end(), d.ctrl);
  }
  double state_error() const {
    double e = 0;
    for (int i = 0; i < mj->nq; ++i) e = std::max(e, std::abs(d.qpos[i] - mjd->qpos[i]));
    for (int i = 0; i < mj->nv; ++i) e = std::max(e, std::abs(d.qvel[i] - mjd->qvel[i]));
    return std::isnan(e) ? INFINITY : e;
  }
};

double max_abs_diff(const double* a, const double* b, int n) {
  double e = 0;
  for (int i = 0; i < n; ++i) e = std::max(e, std::abs(a[i] - b[i]));
  return e;
}

TEST(ModelConstants, EqualMuJoCos) {
  for (const char* name : {"bounce", "two_balls", "finger", "half_cheetah", "cartpole", "inverted_double_pendulum"}) {
    SCOPED_TRACE(name);
    const std::string path = asset_path(name);
    MjModelPtr mj = mujoco_load_file(path);
    const ModelConstants c = model_constants(load_model(path));
    EXPECT_LE(max_abs_diff(c.body_invweight0.data(), mj->body_invweight0, 2 * mj->nbody), 1e-12);
    EXPECT_LE(max_abs_diff(c.dof_invweight0.data(), mj->dof_invweight0, mj->nv), 1e-12);
    EXPECT_NEAR(c.meaninertia, mj->stat.meaninertia, 1e-12 * mj->stat.meaninertia);
  }
}

// one forward pass at a state in contact: every constraint intermediate against MuJoCo's
void expect_same_constraints(Simulations& s) {
  mj_forward(s.mj.get(), s.mjd.get());
  forward(s.view, s.d);
  const mjData* md = s.mjd.get();
  const int nv = s.mj->nv;
  ASSERT_EQ(static_cast<int>(s.d.ncon[0]), md->ncon);
  for (int c = 0; c < md->ncon; ++c) {
    SCOPED_TRACE("contact " + std::to_string(c));
    const int cand = static_cast<int>(s.d.con_cand[c]);
    // MuJoCo's contact order can differ: find ours by geoms and position
    int match = -1;
    for (int k = 0; k < md->ncon; ++k) {
      const mjContact& con = md->contact[k];
      if (con.geom1 == s.view.cand_geom1[cand] && con.geom2 == s.view.cand_geom2[cand] &&
          max_abs_diff(con.pos, s.d.con_pos + 3 * c, 3) < 1e-9) {
        match = k;
      }
    }
    ASSERT_GE(match, 0);
    const mjContact& con = md->contact[match];
    EXPECT_NEAR(s.d.con_dist[c], con.dist, 1e-12);
    EXPECT_LE(max_abs_diff(s.d.con_frame + 9 * c, con.frame, 9), 1e-12);
    if (con.efc_address >= 0) {
      const int r = static_cast<int>(s.d.con_efc_adr[c]);
      ASSERT_GE(r, 0);
      const int rows = con.dim == 1 ? 1 : (s.mj->opt.cone == mjCONE_PYRAMIDAL ? 2 * (con.dim - 1) : con.dim);
      for (int i = 0; i < rows; ++i) {
        const int a = r + i, b = con.efc_address + i;
        EXPECT_EQ(static_cast<int>(s.d.efc_type[a]), md->efc_type[b]);
        EXPECT_LE(max_abs_diff(s.d.efc_J + nv * a, md->efc_J + nv * b, nv), 1e-12);
        EXPECT_NEAR(s.d.efc_pos[a], md->efc_pos[b], 1e-12);
        EXPECT_NEAR(s.d.efc_margin[a], md->efc_margin[b], 1e-12);
        EXPECT_NEAR(s.d.efc_R[a], md->efc_R[b], 1e-10 * std::abs(md->efc_R[b]));
        EXPECT_NEAR(s.d.efc_aref[a], md->efc_aref[b], 1e-9 * (1 + std::abs(md->efc_aref[b])));
        EXPECT_NEAR(s.d.efc_force[a], md->efc_force[b], 1e-6 * (1 + std::abs(md->efc_force[b])));
      }
    }
  }
  // rows other than contacts come first in the same order on both sides
  const int nefc = static_cast<int>(s.d.nefc[0]);
  ASSERT_EQ(nefc, md->nefc);
  for (int i = 0; i < nefc; ++i) {
    if (md->efc_type[i] >= mjCNSTR_CONTACT_FRICTIONLESS) continue;
    SCOPED_TRACE("row " + std::to_string(i));
    EXPECT_EQ(static_cast<int>(s.d.efc_type[i]), md->efc_type[i]);
    EXPECT_EQ(static_cast<int>(s.d.efc_id[i]), md->efc_id[i]);
    EXPECT_LE(max_abs_diff(s.d.efc_J + nv * i, md->efc_J + nv * i, nv), 1e-12);
    EXPECT_NEAR(s.d.efc_pos[i], md->efc_pos[i], 1e-12);
    EXPECT_NEAR(s.d.efc_R[i], md->efc_R[i], 1e-10 * std::abs(md->efc_R[i]));
    EXPECT_NEAR(s.d.efc_aref[i], md->efc_aref[i], 1e-9 * (1 + std::abs(md->efc_aref[i])));
    EXPECT_NEAR(s.d.efc_force[i], md->efc_force[i], 1e-6 * (1 + std::abs(md->efc_force[i])));
  }
  EXPECT_LE(max_abs_diff(s.d.qacc, md->qacc, nv), 1e-6);
  EXPECT_LE(max_abs_diff(s.d.qfrc_constraint, md->qfrc_constraint, nv), 1e-6);
  EXPECT_FALSE(solver_failed(static_cast<int>(s.d.solver_status[0])));
}

// runs `steps` steps from (qpos, qvel) under seeded random controls; returns the max state error
double trajectory_error(Simulations& s, int steps, unsigned seed, int* max_ncon) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> unit(-1, 1);
  std::vector<double> ctrl(s.mj->nu);
  double err = 0;
  *max_ncon = 0;
  for (int t = 0; t < steps; ++t) {
    for (int a = 0; a < s.mj->nu; ++a) {
      const double lo = s.mj->actuator_ctrlrange[2 * a], hi = s.mj->actuator_ctrlrange[2 * a + 1];
      ctrl[a] = s.mj->actuator_ctrllimited[a] ? 0.5 * (lo + hi) + 0.5 * (hi - lo) * unit(rng) : unit(rng);
    }
    s.set_ctrl(ctrl);
    mj_step(s.mj.get(), s.mjd.get());
    step(s.view, s.d);
    EXPECT_FALSE(solver_failed(static_cast<int>(s.d.solver_status[0]))) << "step " << t;
    *max_ncon = std::max(*max_ncon, s.mjd->ncon);
    err = std::max(err, s.state_error());
  }
  return err;
}

struct Case {
  std::string name;
  std::string path;
  int key;                    // keyframe to start from, -1: qpos0 with a seeded perturbation
  std::vector<double> qpos{};  // if given (and no key), replaces qpos0 before the perturbation
};

std::vector<Case> cases() {
  return {{"bounce", asset_path("bounce"), 0},
          {"bounce_wall", asset_path("bounce_wall"), 0},
          {"two_balls", asset_path("two_balls"), 0},
          // the finger stretched out towards the spinner, the fingertip just touching it
          {"finger", asset_path("finger"), -1, {-0.12, 0.0, 0.0}},
          {"half_cheetah", asset_path("half_cheetah"), -1},
          {"box_stack", asset_path("box_stack"), 0},
          {"pile_pyramidal", write_temp("pile_pyramidal.xml", pile_xml("pyramidal")), -1},
          {"pile_elliptic", write_temp("pile_elliptic.xml", pile_xml("elliptic")), -1}};
}

void start(Simulations& s, const Case& c, unsigned seed) {
  std::vector<double> qpos(s.mj->qpos0, s.mj->qpos0 + s.mj->nq), qvel(s.mj->nv, 0.0);
  if (!c.qpos.empty()) qpos = c.qpos;
  if (c.key >= 0) {
    std::copy(s.mj->key_qpos + c.key * s.mj->nq, s.mj->key_qpos + (c.key + 1) * s.mj->nq, qpos.begin());
    std::copy(s.mj->key_qvel + c.key * s.mj->nv, s.mj->key_qvel + (c.key + 1) * s.mj->nv, qvel.begin());
  } else {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> noise(-0.1, 0.1);
    for (int j = 0; j < s.mj->njnt; ++j) {
      if (s.mj->jnt_type[j] == mjJNT_HINGE || s.mj->jnt_type[j] == mjJNT_SLIDE) qpos[s.mj->jnt_qposadr[j]] += noise(rng);
    }
    for (double& v : qvel) v = noise(rng);
  }
  s.set_state(qpos.data(), qvel.data());
}

TEST(ContactParity, TrajectoriesFollowMjStep) {
  for (const Case& c : cases()) {
    for (unsigned seed : {1u, 2u}) {
      SCOPED_TRACE(c.name + " seed " + std::to_string(seed));
      Simulations s(c.path);
      start(s, c, seed);
      int max_ncon = 0;
      const int steps = c.key >= 0 ? 1000 : 200;
      const double err = trajectory_error(s, steps, seed, &max_ncon);
      std::printf("%-16s seed %u: %d steps, up to %d contacts, max state error %.3g\n", c.name.c_str(), seed, steps,
                  max_ncon, err);
      EXPECT_GT(max_ncon, 0) << "the run never touched anything";
      EXPECT_LE(err, kTrajectoryTol);
    }
  }
}

TEST(ContactParity, IntermediatesInContact) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    Simulations s(c.path);
    start(s, c, 1);
    // step MuJoCo alone until it has contacts, then compare one forward pass from its state
    for (int t = 0; t < 1000 && s.mjd->ncon == 0; ++t) mj_step(s.mj.get(), s.mjd.get());
    for (int t = 0; t < 5; ++t) mj_step(s.mj.get(), s.mjd.get());
    ASSERT_GT(s.mjd->ncon, 0);
    s.set_state(s.mjd->qpos, s.mjd->qvel);
    std::copy(s.mjd->qacc_warmstart, s.mjd->qacc_warmstart + s.mj->nv, s.d.qacc_warmstart);
    expect_same_constraints(s);
  }
}

}  // namespace
}  // namespace phydream::testing
