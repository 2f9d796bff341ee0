// End to end against MuJoCo 2.2.2: each project asset loaded by PhyDream's own loader
// (phydream::load_model -> engine/mjcf.h), stepped by PhyDream's step() (engine/forward.h), must
// follow mj_step on the same file loaded by mj_loadXML, for 1000 steps under random controls,
// with contacts, limits and friction loss disabled on both sides (option disable flags): max abs
// state error (qpos, qvel) <= 1e-8, in double.
//
// Unlike tests/engine/mujoco_parity_test.cpp, which feeds the dynamics MuJoCo's own compiled
// numbers (tests/engine/mujoco_model.h), nothing of mjModel reaches PhyDream here: masses,
// inertias, frames and the rest come from PhyDream's compiler. The inverted double pendulum is
// chaotic, so this only holds because the compiler rounds as MuJoCo's does and the model is
// equal bit for bit (tests/engine/mjcf_mujoco_test.cpp); InvertedDoublePendulumAmplifiesOneUlp
// shows that a single last-bit difference of one mass already breaks the 1e-8 bound on these
// runs. (Measured: every trajectory here equals MuJoCo's exactly, max error 0.)
//
// Control sequences (seeded, the same for both simulators): a fresh uniform draw inside the
// control range every step; controls held for 20 steps; and draws from 1.5 x the range, so that
// MuJoCo's control clamping is exercised. Each run starts at qpos0 + U(-0.1, 0.1), qvel
// U(-0.1, 0.1) (gym's reset noise). The measured errors are printed and recorded as test
// properties.
//
// Seeds. Without its rail limit and under 10 s of sustained random forcing, the inverted double
// pendulum spins up until semi-implicit Euler at its 10 ms step diverges, and MuJoCo itself
// then reports an unstable simulation and resets the state (measured with MuJoCo alone over
// seeds 1..30: 5 of 30 runs with fresh draws, 18 of 30 with held controls, 9 of 30 beyond the
// range; never for the other assets). Such a run compares nothing (both simulators agree bit for bit up to the
// blow-up), so the seeds used are the first two with which MuJoCo's own simulation of every
// asset stays finite for all three sequences, 3 and 4; each run checks that MuJoCo raised no
// instability warning, so a seed that stops qualifying fails loudly instead of passing.
#include <gtest/gtest.h>
#include <mujoco/mujoco.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/data.h"
#include "engine/forward.h"
#include "engine/model.h"
#include "engine/model_json.h"
#include "engine/model_view.h"
#include "tests/engine/mujoco_model.h"

namespace phydream::testing {
namespace {

constexpr int kContactFree = kDisableContact | kDisableLimit | kDisableFrictionloss;
constexpr int kSteps = 1000;
constexpr double kTrajectoryTol = 1e-8;
constexpr unsigned kSeeds[] = {3, 4};  // see the header comment

std::string asset_path(const std::string& name) {
  return std::string(PHYDREAM_SOURCE_DIR) + "/assets/" + name + ".xml";
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

  // `edit` may change PhyDream's model before it is packed (the sensitivity test)
  template <class Edit>
  Simulations(const std::string& path, Edit edit) : mj(mujoco_load_file(path)), model(load_model(path)) {
    mj->opt.disableflags |= mjDSBL_CONTACT | mjDSBL_LIMIT | mjDSBL_FRICTIONLOSS;
    model.opt_disableflags |= kContactFree;
    edit(&model);
    mjd.reset(mj_makeData(mj.get()));
    arrays = std::make_unique<ModelArrays<double>>(model);
    view = arrays->view();
    store = std::make_unique<DataStore<double>>(view);
    d = store->view();
  }
  explicit Simulations(const std::string& path) : Simulations(path, [](Model*) {}) {}

  void set_state(const std::vector<double>& qpos, const std::vector<double>& qvel) {
    std::copy(qpos.begin(), qpos.end(), mjd->qpos);
    std::copy(qvel.begin(), qvel.end(), mjd->qvel);
    std::copy(qpos.begin(), qpos.end(), d.qpos);
    std::copy(qvel.begin(), qvel.end(), d.qvel);
  }
  void set_ctrl(const std::vector<double>& ctrl) {
    std::copy(ctrl.begin(), ctrl.end(), mjd->ctrl);
    std::copy(ctrl.begin(), ctrl.end(), d.ctrl);
  }
  // max abs difference of (qpos, qvel)
  double state_error() const {
    double e = 0;
    for (int i = 0; i < mj->nq; ++i) e = std::max(e, std::abs(d.qpos[i] - mjd->qpos[i]));
    for (int i = 0; i < mj->nv; ++i) e = std::max(e, std::abs(d.qvel[i] - mjd->qvel[i]));
    return std::isnan(e) ? INFINITY : e;
  }
};

enum class Controls { fresh_each_step, held_20_steps, beyond_the_range };

const char* controls_name(Controls c) {
  switch (c) {
    case Controls::fresh_each_step:
      return "fresh_each_step";
    case Controls::held_20_steps:
      return "held_20_steps";
    case Controls::beyond_the_range:
      return "beyond_the_range";
  }
  return "?";
}

struct RunResult {
  double max_error = 0;
  int mujoco_warnings = 0;  // MuJoCo's bad-qacc / bad-qpos / bad-qvel warnings: instability resets
};

// one seeded run of kSteps steps from gym's reset noise around qpos0; returns the max state error
RunResult run(Simulations& s, Controls controls, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> noise(-0.1, 0.1), unit(0, 1);
  const mjModel* m = s.mj.get();
  std::vector<double> qpos(m->nq), qvel(m->nv), ctrl(m->nu);
  for (int i = 0; i < m->nq; ++i) qpos[i] = s.model.qpos0[i] + noise(rng);
  for (double& v : qvel) v = noise(rng);
  s.set_state(qpos, qvel);

  const double widen = controls == Controls::beyond_the_range ? 0.5 : 0.0;
  auto draw = [&] {
    for (int a = 0; a < m->nu; ++a) {
      // the model's control range (the same numbers on both sides), [-1, 1] for an unlimited motor
      double lo = -1, hi = 1;
      if (s.model.actuator_ctrllimited[a]) {
        lo = s.model.actuator_ctrlrange[2 * a];
        hi = s.model.actuator_ctrlrange[2 * a + 1];
      }
      const double w = hi - lo;
      ctrl[a] = lo - widen * w / 2 + (1 + widen) * w * unit(rng);
    }
    s.set_ctrl(ctrl);
  };

  RunResult r;
  for (int t = 0; t < kSteps; ++t) {
    if (controls != Controls::held_20_steps || t % 20 == 0) draw();
    mj_step(m, s.mjd.get());
    step(s.view, s.d);
    r.max_error = std::max(r.max_error, s.state_error());
  }
  for (int w : {mjWARN_BADQACC, mjWARN_BADQPOS, mjWARN_BADQVEL}) {
    r.mujoco_warnings += s.mjd->warning[w].number;
  }
  return r;
}

// =============================================================================================

class LoaderTrajectory : public ::testing::TestWithParam<const char*> {};

TEST_P(LoaderTrajectory, FollowsMjStepFor1000Steps) {
  const std::string name = GetParam();
  for (Controls controls :
       {Controls::fresh_each_step, Controls::held_20_steps, Controls::beyond_the_range}) {
    for (unsigned seed : kSeeds) {
      Simulations s(asset_path(name));
      const RunResult r = run(s, controls, seed);
      std::printf("[ loader   ] %s %s seed %u (%s, h = %g): max abs state error over %d steps %.3g\n",
                  name.c_str(), controls_name(controls), seed,
                  s.mj->opt.integrator == mjINT_RK4 ? "RK4" : "Euler", s.mj->opt.timestep, kSteps,
                  r.max_error);
      ::testing::Test::RecordProperty(
          std::string("max_state_error_") + controls_name(controls) + "_seed" + std::to_string(seed),
          std::to_string(r.max_error));
      // a run MuJoCo had to reset compares nothing
      EXPECT_EQ(r.mujoco_warnings, 0) << controls_name(controls) << " seed " << seed;
      EXPECT_LE(r.max_error, kTrajectoryTol) << controls_name(controls) << " seed " << seed;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Assets, LoaderTrajectory,
                         ::testing::Values("cartpole", "inverted_double_pendulum", "half_cheetah",
                                           "finger", "reacher"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           return std::string(info.param);
                         });

// The bound above is not loose: on the chaotic inverted double pendulum, a model that differs from
// MuJoCo's in one last bit of one body's mass (what a compiler rounding differently gives) ends
// far outside the 1e-8 band over the same runs (measured: 9e-11 .. 3e-3 depending on the run).
TEST(LoaderTrajectorySensitivity, InvertedDoublePendulumAmplifiesOneUlp) {
  double worst = 0;
  for (Controls controls :
       {Controls::fresh_each_step, Controls::held_20_steps, Controls::beyond_the_range}) {
    for (unsigned seed : kSeeds) {
      Simulations s(asset_path("inverted_double_pendulum"), [](Model* m) {
        m->body_mass[2] = std::nextafter(m->body_mass[2], INFINITY);
      });
      const RunResult r = run(s, controls, seed);
      EXPECT_EQ(r.mujoco_warnings, 0);  // the divergence is the ulp's, not an instability's
      worst = std::max(worst, r.max_error);
    }
  }
  std::printf("[ loader   ] inverted_double_pendulum, pole mass + 1 ulp: max abs state error %.3g\n",
              worst);
  ::testing::Test::RecordProperty("max_state_error_mass_plus_one_ulp", std::to_string(worst));
  EXPECT_GT(worst, kTrajectoryTol);
}

}  // namespace
}  // namespace phydream::testing
