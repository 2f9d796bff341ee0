// The Finger's spin and turn tasks (engine/tasks.h): the tip against the engine's kinematics, the
// costs' gradients against central differences, the refusals, and open-loop optimisation through
// contact lowering the cost with the simulator's gradients.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/data.h"
#include "engine/errors.h"
#include "engine/mjcf.h"
#include "engine/model_view.h"
#include "engine/simulator.h"
#include "engine/smooth.h"
#include "engine/tasks.h"

namespace phydream {
namespace {

const double kPi = std::acos(-1.0);

Model finger() { return load_mjcf(std::string(PHYDREAM_SOURCE_DIR) + "/assets/finger.xml"); }

// random Finger states: joint angles in their ranges, the spinner anywhere, velocities in [-5, 5]
std::vector<double> random_state(const Model& m, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> unit(0, 1);
  std::vector<double> x(m.nq + m.nv);
  for (int j = 0; j < m.njnt; ++j) {
    const double lo = m.jnt_limited[j] ? m.jnt_range[2 * j] : -kPi;
    const double hi = m.jnt_limited[j] ? m.jnt_range[2 * j + 1] : kPi;
    x[m.jnt_qposadr[j]] = lo + (hi - lo) * unit(rng);
  }
  for (int i = 0; i < m.nv; ++i) x[m.nq + i] = 10 * unit(rng) - 5;
  return x;
}

// the turn task's cost is zero exactly when the tip (by the engine's kinematics: the spinner
// body's frame and the site's offset) is at the target
TEST(FingerTasks, TipFollowsTheEngineKinematics) {
  const Model model = finger();
  ModelArrays<double> arrays(model, true);
  const ModelView<double> m = arrays.view();
  const DataLayout layout = data_layout(m);
  std::vector<double> ws(layout.size, 0.0);
  const Data<double> d = data_at(layout, ws.data());
  int spinner = -1, site = -1;
  for (int b = 0; b < model.nbody; ++b) spinner = model.body_name[b] == "spinner" ? b : spinner;
  for (int s = 0; s < model.nsite; ++s) site = model.site_name[s] == "tip" ? s : site;
  ASSERT_GE(spinner, 0);
  ASSERT_GE(site, 0);
  std::mt19937_64 rng(3);
  for (int k = 0; k < 20; ++k) {
    const std::vector<double> x = random_state(model, rng);
    for (int i = 0; i < model.nq; ++i) d.qpos[i] = x[i];
    kinematics(m, d);
    double tip[3];
    for (int r = 0; r < 3; ++r) {
      tip[r] = d.xpos[3 * spinner + r];
      for (int c = 0; c < 3; ++c) tip[r] += d.xmat[9 * spinner + 3 * r + c] * model.site_pos[3 * site + c];
    }
    // the target angle of this tip: measured from +z towards +x about the hinge at (0.2, 0.4)
    const double angle = std::atan2(tip[0] - 0.2, tip[2] - 0.4);
    const auto turn = make_task(model, "finger_turn", angle, 0.01);
    EXPECT_NEAR(turn->cost(x.data(), nullptr), 0.0, 1e-24) << "state " << k;
    EXPECT_EQ(turn->reward(x.data()), 1.0);
    const auto away = make_task(model, "finger_turn", angle + 0.5, 0.03);
    EXPECT_EQ(away->reward(x.data()), 0.0);  // 0.13 * 0.5 = 0.065 m off
  }
}

TEST(FingerTasks, CostGradientsMatchCentralDifferences) {
  const Model model = finger();
  std::mt19937_64 rng(5);
  for (const std::string name : {"finger_spin", "finger_turn"}) {
    const auto task = make_task(model, name, 0.7, 0.03);
    for (int k = 0; k < 20; ++k) {
      std::vector<double> x = random_state(model, rng);
      if (name == "finger_spin") x[model.nq + 2] = -30 + 40 * (k / 20.0);  // both sides of -15
      std::vector<double> g(2 * model.nv);
      task->cost(x.data(), g.data());
      for (int i = 0; i < 2 * model.nv; ++i) {  // nq = nv: the tangent is the state
        std::vector<double> xp = x, xm = x;
        const double h = 1e-6;
        xp[i] += h;
        xm[i] -= h;
        const double fd = (task->cost(xp.data(), nullptr) - task->cost(xm.data(), nullptr)) / (2 * h);
        EXPECT_NEAR(g[i], fd, 1e-7 * std::max(1.0, std::abs(fd))) << name << " state " << k << " entry " << i;
      }
    }
  }
  // spin's reward: dm_control's threshold
  const auto spin = make_task(model, "finger_spin");
  std::vector<double> x(6, 0.0);
  x[5] = -15.5;
  EXPECT_EQ(spin->reward(x.data()), 1.0);
  x[5] = -14.5;
  EXPECT_EQ(spin->reward(x.data()), 0.0);
}

TEST(FingerTasks, RefuseWhatTheyCannotDo) {
  EXPECT_THROW(make_task(finger(), "finger_flip"), InputError);
  EXPECT_THROW(make_task(finger(), "finger_turn", 0.0, -1.0), InputError);
  const Model bounce = load_mjcf(std::string(PHYDREAM_SOURCE_DIR) + "/assets/bounce.xml");
  EXPECT_THROW(make_task(bounce, "finger_spin"), InputError);
}

// From a state where the fingertip touches the spinner, gradient descent through the contact
// (IFT, the default) turns the spinner's tip onto a target 0.6 rad away (the way the finger pushes it): the cost falls and the
// reward appears. Spinning it past 15 rad/s open loop is harder (bench/finger_task_bench): here
// the spin cost only has to fall.
TEST(FingerTasks, OpenLoopOptimisationThroughContactTurnsTheSpinner) {
  auto model = std::make_shared<const Model>(finger());
  SimulatorOptions o;
  o.model = model;
  o.backend = Backend::cpu;
  o.threads = 1;
  Simulator<double> sim(o);
  // the fingertip lightly touching the spinner (a step differs with contact disabled); the tip
  // points up (angle 0)
  const std::vector<double> x0 = {-0.4, 0.1, 0.0, 0, 0, 0};
  const std::int64_t horizon = 60;
  for (const std::string name : {"finger_turn", "finger_spin"}) {
    std::vector<double> actions(horizon * sim.nu(), 0.0);
    const auto task = make_task(*model, name, -0.6, 0.07);
    const OpenLoopProgress before = evaluate_open_loop(sim, *task, 1, horizon, x0.data(), actions.data());
    OpenLoopOptions opt;
    opt.iterations = 60;
    opt.learning_rate = 0.1;
    int calls = 0;
    optimize_open_loop(sim, *task, 1, horizon, x0.data(), actions.data(), opt,
                       [&](const OpenLoopProgress& p) { EXPECT_EQ(p.iteration, calls++); });
    EXPECT_EQ(calls, 60);
    const OpenLoopProgress after = evaluate_open_loop(sim, *task, 1, horizon, x0.data(), actions.data());
    std::printf("%s: cost %.4g -> %.4g, reward %.3f -> %.3f\n", name.c_str(), before.cost, after.cost,
                before.reward, after.reward);
    if (name == "finger_turn") {
      EXPECT_EQ(before.reward, 0.0);
      EXPECT_LT(after.cost, 0.5 * before.cost);
      EXPECT_GT(after.reward, 0.5);
    } else {
      EXPECT_LT(after.cost, before.cost);
    }
    for (double u : actions) EXPECT_LE(std::abs(u), 1.0);
  }
  // the optimiser refuses what it cannot do
  std::vector<double> bad(horizon * sim.nu(), 2.0);
  const auto turn = make_task(*model, "finger_turn", 0.6, 0.07);
  EXPECT_THROW(optimize_open_loop(sim, *turn, 1, horizon, x0.data(), bad.data(), OpenLoopOptions{}), InputError);
}

}  // namespace
}  // namespace phydream
