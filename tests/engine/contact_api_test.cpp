// The Simulator's contact features.
// - The time-of-impact correction of rollout gradients (engine/toi.h, SimulatorOptions::
//   toi_correction): bounce and two_balls against the elastic impact's gradient at every phase
//   of the impact within a step, a bounce under gravity against the rigid bounce's gradient
//   computed here in closed form, agreement across gradient modes, no change where no impact is
//   isolated, and the refusals.
// - The constraint solver's outcome per environment (Simulator::solver_status).
// - The Jacobian routes through the Simulator on contact states: the closed-form IFT route (the
//   default) equals the forward and reverse sweeps, batched on several threads, in the ift mode;
//   the unrolled mode's default route is its forward sweeps.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "engine/errors.h"
#include "engine/mjcf.h"
#include "engine/model.h"
#include "engine/simulator.h"

namespace phydream {
namespace {

std::string asset(const std::string& name) {
  return std::string(PHYDREAM_SOURCE_DIR) + "/assets/" + name + ".xml";
}

std::shared_ptr<const Model> load(const std::string& name) {
  return std::make_shared<const Model>(load_mjcf(asset(name)));
}

Simulator<double> make_sim(std::shared_ptr<const Model> model, bool toi, GradMode mode = GradMode::ift) {
  SimulatorOptions o;
  o.model = std::move(model);
  o.backend = Backend::cpu;
  o.threads = 1;
  o.toi_correction = toi;
  o.grad_mode = mode;
  return Simulator<double>(o);
}

// the keyframe's state, its first contact moved `phase` of a step later (the keyframes' impacts
// fall exactly on a step boundary)
std::vector<double> start_state(const Model& m, bool bounce, double phase) {
  std::vector<double> x(m.key_qpos.begin(), m.key_qpos.begin() + m.nq);
  x.insert(x.end(), m.key_qvel.begin(), m.key_qvel.begin() + m.nv);
  const double dt = m.opt_timestep;
  if (bounce) {
    x[2] += phase * std::abs(x[m.nq + 2]) * dt;
  } else {
    x[1] += phase * (x[m.nq] - x[m.nq + 1]) * dt;
  }
  return x;
}

// gradients of the final state's tangent entries `rows` with respect to the initial state
// (ndx each, one rollout_vjp per row, the stored trajectory)
std::vector<std::vector<double>> final_gradients(Simulator<double>& sim, const std::vector<double>& x0,
                                                 long long horizon, const std::vector<int>& rows,
                                                 std::vector<double>* final_state = nullptr) {
  const int nx = sim.nx(), ndx = sim.ndx(), nu = sim.nu();
  std::vector<double> U(static_cast<std::size_t>(horizon * nu), 0.0);
  std::vector<double> states(static_cast<std::size_t>((horizon + 1) * nx));
  sim.rollout(1, horizon, x0.data(), U.data(), states.data());
  if (final_state != nullptr) final_state->assign(states.end() - nx, states.end());
  std::vector<std::vector<double>> out;
  for (int r : rows) {
    std::vector<double> gf(ndx, 0.0), gx(ndx, 0.0), gU(U.size(), 0.0);
    gf[r] = 1.0;
    sim.rollout_vjp(1, horizon, x0.data(), U.data(), states.data(), gx.data(), gU.data(), nullptr, gf.data());
    out.push_back(gx);
  }
  return out;
}

double rel_error(const std::vector<double>& got, const std::vector<double>& want) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    num += (got[i] - want[i]) * (got[i] - want[i]);
    den += want[i] * want[i];
  }
  return std::sqrt(num / den);
}

// The target: the bounce gradient within 1 % of the elastic answer, at every phase. The
// uncorrected gradient (the exact derivative of the stepped soft model) is far off mid-step.
TEST(ToiCorrection, BounceMatchesTheElasticImpactAtEveryPhase) {
  const auto model = load("bounce");
  Simulator<double> toi = make_sim(model, true), plain = make_sim(model, false);
  const double T = 0.3;
  const long long horizon = std::llround(T / model->opt_timestep);
  const int ndx = toi.ndx();  // 12: [dpos (3), drot (3), dvel (3), dangvel (3)]
  double worst = 0, worst_plain = 0;
  for (double phase : {0.0, 0.1, 0.25, 0.5, 0.75, 0.9}) {
    const std::vector<double> x0 = start_state(*model, true, phase);
    const auto g = final_gradients(toi, x0, horizon, {2, 0});
    const auto gp = final_gradients(plain, x0, horizon, {2, 0});
    // (dz_T/dz0, dz_T/dvz0, dx_T/dx0, dx_T/dvx0) and the elastic (-1, -T, 1, T)
    const std::vector<double> want = {-1.0, -T, 1.0, T};
    const std::vector<double> got = {g[0][2], g[0][6 + 2], g[1][0], g[1][6]};
    const std::vector<double> got_plain = {gp[0][2], gp[0][6 + 2], gp[1][0], gp[1][6]};
    const double err = rel_error(got, want), err_plain = rel_error(got_plain, want);
    std::printf("bounce phase %.2f: corrected (%.5f, %.5f, %.5f, %.5f) error %.2e; uncorrected error %.2e\n",
                phase, got[0], got[1], got[2], got[3], err, err_plain);
    EXPECT_LT(err, 0.01) << "phase " << phase;
    worst = std::max(worst, err);
    worst_plain = std::max(worst_plain, err_plain);
    // the impact changes nothing else: no coupling into y or the rotation
    for (int i = 0; i < ndx; ++i) {
      if (i != 2 && i != 8) EXPECT_NEAR(g[0][i], 0.0, 1e-9) << "entry " << i;
    }
  }
  EXPECT_GT(worst_plain, 0.3) << "the uncorrected gradient should be far off mid-step";
  std::printf("bounce: worst corrected error %.2e, worst uncorrected %.2e\n", worst, worst_plain);
}

TEST(ToiCorrection, TwoBallsMatchTheElasticCollisionAtEveryPhase) {
  const auto model = load("two_balls");
  Simulator<double> toi = make_sim(model, true), plain = make_sim(model, false);
  const double T = 1.0;
  const long long horizon = std::llround(T / model->opt_timestep);
  double worst_plain = 0;
  for (double phase : {0.0, 0.1, 0.25, 0.5, 0.75, 0.9}) {
    const std::vector<double> x0 = start_state(*model, false, phase);
    // tangent [dx1, dx2, dv, du]; the gradient of x2_T is (1, 0, T, 0)
    const auto g = final_gradients(toi, x0, horizon, {1});
    const auto gp = final_gradients(plain, x0, horizon, {1});
    const std::vector<double> want = {1.0, 0.0, T, 0.0};
    const double err = rel_error(g[0], want), err_plain = rel_error(gp[0], want);
    std::printf("two_balls phase %.2f: corrected (%.5f, %.5f, %.5f, %.5f) error %.2e; uncorrected %.2e\n",
                phase, g[0][0], g[0][1], g[0][2], g[0][3], err, err_plain);
    EXPECT_LT(err, 0.01) << "phase " << phase;
    worst_plain = std::max(worst_plain, err_plain);
  }
  EXPECT_GT(worst_plain, 0.3);
}

// ball 1 moves at (v0, u0) along x and z; the impact's normal is along x: independent of the
// other ball's tangential motion
TEST(ToiCorrection, BounceOffTheWallIsCorrectedToo) {
  const auto model = load("bounce_wall");
  Simulator<double> toi = make_sim(model, true);
  const std::vector<double> x0(model->key_qpos.begin(), model->key_qpos.begin() + model->nq);
  std::vector<double> x = x0;
  x.insert(x.end(), model->key_qvel.begin(), model->key_qvel.begin() + model->nv);
  const long long horizon = 300;
  const auto g = final_gradients(toi, x, horizon, {0, 1, 2});
  // every impact reflects one coordinate: the gradient of each final coordinate with respect
  // to its own initial one is +-1, and to the others' 0
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) {
      if (r == c) {
        EXPECT_NEAR(std::abs(g[r][c]), 1.0, 0.01) << r << "," << c;
      } else {
        EXPECT_NEAR(g[r][c], 0.0, 0.01) << r << "," << c;
      }
    }
  }
}

// A bounce under gravity: the rigid bounce's final height in closed form (first contact when
// z0 + vz0 t - g t^2 / 2 = r, velocity reversed there), differentiated by central differences.
// Exercises the saltation matrix's acceleration term and the impact's phase within the step.
double rigid_bounce_height(double z0, double vz0, double g, double r, double T) {
  const double h = z0 - r;
  const double tc = (vz0 + std::sqrt(vz0 * vz0 + 2 * g * h)) / g;
  const double vc = vz0 - g * tc;
  const double tau = T - tc;
  return r - vc * tau - 0.5 * g * tau * tau;
}

TEST(ToiCorrection, BounceUnderGravityMatchesTheRigidBounce) {
  Model m = load_mjcf(asset("bounce"));
  m.opt_gravity[2] = -9.81;
  const auto model = std::make_shared<const Model>(m);
  Simulator<double> toi = make_sim(model, true), plain = make_sim(model, false);
  const double T = 0.3, g = 9.81, r = 0.1;
  const long long horizon = std::llround(T / m.opt_timestep);
  for (double phase : {0.0, 0.3, 0.7}) {
    const std::vector<double> x0 = start_state(m, true, phase);
    const double z0 = x0[2], vz0 = x0[m.nq + 2], e = 1e-6;
    const double dz = (rigid_bounce_height(z0 + e, vz0, g, r, T) - rigid_bounce_height(z0 - e, vz0, g, r, T)) / (2 * e);
    const double dv = (rigid_bounce_height(z0, vz0 + e, g, r, T) - rigid_bounce_height(z0, vz0 - e, g, r, T)) / (2 * e);
    std::vector<double> xT;
    const auto gt = final_gradients(toi, x0, horizon, {2}, &xT);
    const auto gp = final_gradients(plain, x0, horizon, {2});
    const double err = rel_error({gt[0][2], gt[0][8]}, {dz, dv});
    std::printf("gravity phase %.1f: rigid (%.5f, %.5f), corrected (%.5f, %.5f) error %.2e, "
                "uncorrected (%.5f, %.5f) error %.2e\n",
                phase, dz, dv, gt[0][2], gt[0][8], err, gp[0][2], gp[0][8], rel_error({gp[0][2], gp[0][8]}, {dz, dv}));
    EXPECT_LT(err, 0.01) << "phase " << phase;
  }
}

// the unrolled and fd modes run the same correction on their own step VJPs
TEST(ToiCorrection, EveryGradientModeGivesTheSameCorrectedGradient) {
  const auto model = load("bounce");
  Simulator<double> ift = make_sim(model, true, GradMode::ift);
  Simulator<double> unrolled = make_sim(model, true, GradMode::unrolled);
  Simulator<double> fd = make_sim(model, true, GradMode::fd);
  const std::vector<double> x0 = start_state(*model, true, 0.37);
  const auto a = final_gradients(ift, x0, 300, {2, 0});
  const auto b = final_gradients(unrolled, x0, 300, {2, 0});
  const auto c = final_gradients(fd, x0, 300, {2, 0});
  for (int r = 0; r < 2; ++r) {
    EXPECT_LT(rel_error(b[r], a[r]), 1e-9) << "unrolled, row " << r;
    EXPECT_LT(rel_error(c[r], a[r]), 1e-5) << "fd, row " << r;
  }
}

// Finger's contacts have friction (condim 3): no episode is an isolated frictionless impact, so
// the corrected gradient is the uncorrected one, bit for bit; and so is any rollout without
// contact
TEST(ToiCorrection, LeavesEverythingElseUnchanged) {
  for (const std::string name : {"finger", "half_cheetah", "bounce"}) {
    const auto model = load(name);
    Simulator<double> toi = make_sim(model, true), plain = make_sim(model, false);
    const int nx = toi.nx(), ndx = toi.ndx(), nu = toi.nu();
    const long long horizon = 60;
    // at rest at qpos0: Finger's and the cheetah's contacts have friction; the ball is far
    // above the floor, out of contact for the whole horizon
    std::vector<double> x0 = model->qpos0;
    if (name == "bounce") x0[2] = 1.0;
    x0.resize(nx, 0.0);
    std::vector<double> U(horizon * nu);
    for (std::size_t i = 0; i < U.size(); ++i) U[i] = 0.5 * std::sin(0.37 * i);
    std::vector<double> states((horizon + 1) * nx);
    toi.rollout(1, horizon, x0.data(), U.data(), states.data());
    std::vector<double> gf(ndx);
    for (int i = 0; i < ndx; ++i) gf[i] = std::cos(1.3 * i);
    std::vector<double> g1(ndx, 0.0), g2(ndx, 0.0), u1(U.size(), 0.0), u2(U.size(), 0.0);
    toi.rollout_vjp(1, horizon, x0.data(), U.data(), states.data(), g1.data(), u1.data(), nullptr, gf.data());
    plain.rollout_vjp(1, horizon, x0.data(), U.data(), states.data(), g2.data(), u2.data(), nullptr, gf.data());
    EXPECT_EQ(g1, g2) << name;
    EXPECT_EQ(u1, u2) << name;
    if (name != "bounce") {
      // the rollout did have constraint rows (Finger's spinner has friction loss, the cheetah
      // lands): without constraints the gradient differs
      Model free = *model;
      free.opt_disableflags |= kDisableConstraint;
      Simulator<double> nocontact = make_sim(std::make_shared<const Model>(free), false);
      std::vector<double> s3((horizon + 1) * nx), g3(ndx, 0.0), u3(U.size(), 0.0);
      nocontact.rollout(1, horizon, x0.data(), U.data(), s3.data());
      nocontact.rollout_vjp(1, horizon, x0.data(), U.data(), s3.data(), g3.data(), u3.data(), nullptr, gf.data());
      EXPECT_GT(rel_error(g3, g2), 1e-3) << name << ": no constraint row within the horizon";
    }
  }
}

TEST(ToiCorrection, IsRefusedWhereItCannotApply) {
  const auto model = load("bounce");
  Simulator<double> toi = make_sim(model, true);
  const std::vector<double> x0 = start_state(*model, true, 0.5);
  std::vector<double> gx(toi.ndx(), 0.0), gf(toi.ndx(), 1.0);
  // the correction reads the stored trajectory: re-simulation from checkpoints is refused
  EXPECT_THROW(toi.rollout_vjp(1, 10, x0.data(), nullptr, nullptr, gx.data(), nullptr, nullptr, gf.data()),
               InputError);
  SimulatorOptions o;
  o.env = "double_pendulum";
  o.toi_correction = true;
  EXPECT_THROW(Simulator<double>{o}, InputError);
}

}  // namespace
}  // namespace phydream

namespace phydream {
namespace {

// bounce with a one-iteration cap and no tolerance: a solve with a contact row stops at the cap
std::shared_ptr<const Model> capped_bounce() {
  Model m = load_mjcf(asset("bounce"));
  m.opt_iterations = 1;
  m.opt_tolerance = 0;
  return std::make_shared<const Model>(m);
}

TEST(SolverStatus, FlagsEachEnvironmentWhoseSolveFailed) {
  Simulator<double> sim = make_sim(capped_bounce(), false);
  const int nx = sim.nx(), ndx = sim.ndx();
  const double nan = std::nan("");
  // 0: in the floor (a contact row, the cap hit); 1: far above (no row); 2: in the floor with a
  // NaN velocity (a non-finite solve); 3: like 0
  std::vector<double> x = {0, 0, 0.095, 1, 0, 0, 0, 0, 0, -1, 0, 0, 0,  //
                           0, 0, 1.0, 1, 0, 0, 0, 0, 0, -1, 0, 0, 0,    //
                           0, 0, 0.095, 1, 0, 0, 0, 0, 0, nan, 0, 0, 0,  //
                           0, 0, 0.095, 1, 0, 0, 0, 0, 0, -1, 0, 0, 0};
  ASSERT_EQ(static_cast<int>(x.size()), 4 * nx);
  std::vector<double> xn(x.size()), flags_d(4);
  std::vector<std::uint8_t> flags(4, 99);
  const std::vector<std::uint8_t> want = {static_cast<std::uint8_t>(SolveFlag::iteration_cap),
                                          static_cast<std::uint8_t>(SolveFlag::ok),
                                          static_cast<std::uint8_t>(SolveFlag::nonfinite),
                                          static_cast<std::uint8_t>(SolveFlag::iteration_cap)};
  sim.step(4, x.data(), nullptr, xn.data());
  sim.solver_status(4, flags.data());
  EXPECT_EQ(flags, want) << "step";

  // every call reports its own solves: the Jacobians' (by forward sweeps, and by differences)
  std::vector<double> jx(4 * ndx * ndx), ju(0);
  sim.jacobian(4, x.data(), nullptr, nullptr, jx.data(), ju.data());
  flags.assign(4, 99);
  sim.solver_status(4, flags.data());
  EXPECT_EQ(flags, want) << "jacobian";
  sim.jacobian_fd(4, x.data(), nullptr, jx.data(), ju.data());
  flags.assign(4, 99);
  sim.solver_status(4, flags.data());
  EXPECT_EQ(flags, want) << "jacobian_fd";

  // a call without failures clears them
  std::vector<double> above = {0, 0, 1.0, 1, 0, 0, 0, 0, 0, -1, 0, 0, 0};
  sim.step(1, above.data(), nullptr, xn.data());
  flags.assign(1, 99);
  sim.solver_status(1, flags.data());
  EXPECT_EQ(flags[0], static_cast<std::uint8_t>(SolveFlag::ok));
  // the batch must be the last call's
  EXPECT_THROW(sim.solver_status(4, flags.data()), InputError);
}

TEST(SolverStatus, RolloutsReportTheWorstStep) {
  Simulator<double> sim = make_sim(capped_bounce(), false);
  const int nx = sim.nx();
  // both start out of contact; only the first reaches the floor within 100 steps
  std::vector<double> x0 = {0, 0, 0.15, 1, 0, 0, 0, 0, 0, -2, 0, 0, 0,  //
                            0, 0, 2.0, 1, 0, 0, 0, 0, 0, -2, 0, 0, 0};
  std::vector<double> states(2 * 101 * nx);
  sim.rollout(2, 100, x0.data(), nullptr, states.data());
  std::vector<std::uint8_t> flags(2, 99);
  sim.solver_status(2, flags.data());
  EXPECT_EQ(flags[0], static_cast<std::uint8_t>(SolveFlag::iteration_cap));
  EXPECT_EQ(flags[1], static_cast<std::uint8_t>(SolveFlag::ok));
  std::vector<double> gx(2 * sim.ndx(), 0.0), gf(2 * sim.ndx(), 1.0);
  sim.rollout_vjp(2, 100, x0.data(), nullptr, nullptr, gx.data(), nullptr, nullptr, gf.data());
  flags.assign(2, 99);
  sim.solver_status(2, flags.data());
  EXPECT_EQ(flags[0], static_cast<std::uint8_t>(SolveFlag::iteration_cap));
  EXPECT_EQ(flags[1], static_cast<std::uint8_t>(SolveFlag::ok));
}

TEST(SolverStatus, ConvergedSolvesAndEnvironmentsWithoutSolverAreOk) {
  Simulator<double> sim = make_sim(load("bounce"), false);
  std::vector<double> x = {0, 0, 0.095, 1, 0, 0, 0, 0, 0, -1, 0, 0, 0}, xn(13);
  sim.step(1, x.data(), nullptr, xn.data());
  std::uint8_t flag = 99;
  sim.solver_status(1, &flag);
  EXPECT_EQ(flag, static_cast<std::uint8_t>(SolveFlag::ok));

  SimulatorOptions o;
  o.env = "double_pendulum";
  o.backend = Backend::cpu;
  Simulator<double> builtin(o);
  EXPECT_THROW(builtin.solver_status(0, &flag), InputError);  // no call yet
  std::vector<double> s(builtin.nx(), 0.1), u(builtin.nu(), 0.0), sn(builtin.nx());
  builtin.step(1, s.data(), u.data(), sn.data());
  flag = 99;
  builtin.solver_status(1, &flag);
  EXPECT_EQ(flag, static_cast<std::uint8_t>(SolveFlag::ok));
}

TEST(ContactJacobianRoutes, TheClosedFormEqualsTheSweepsThroughTheSimulator) {
  for (const char* name : {"half_cheetah", "finger"}) {
    SCOPED_TRACE(name);
    const std::shared_ptr<const Model> model = load(name);
    SimulatorOptions o;
    o.model = model;
    o.backend = Backend::cpu;
    o.threads = 2;
    Simulator<double> sim(o);
    o.disable = {"contact"};
    Simulator<double> free_sim(o);
    const int nx = sim.nx(), ndx = sim.ndx(), nu = sim.nu(), B = 12;
    // one random-control trajectory and B of its states in contact: the half-cheetah from its
    // reference pose, fallen onto the floor; the Finger from a pose that pushes the spinner (the
    // contact derivative tests' state), under small controls
    const bool finger = std::string(name) == "finger";
    const int T = finger ? 300 : 120;
    std::vector<double> x0(model->qpos0.begin(), model->qpos0.end());
    x0.resize(nx, 0.0);
    if (finger) x0 = {-0.12, 0.0, 0.0, 0.5, 0.0, 0.0};
    std::mt19937 rng(3);
    std::uniform_real_distribution<double> unit(finger ? -0.1 : -1.0, finger ? 0.1 : 1.0);
    std::vector<double> acts(static_cast<std::size_t>(T) * nu), traj(static_cast<std::size_t>(T + 1) * nx);
    for (double& a : acts) a = unit(rng);
    sim.rollout(1, T, x0.data(), acts.data(), traj.data());
    // the states of the trajectory in contact (a step differs from the contact-free one's), up
    // to B of them
    std::vector<double> with(static_cast<std::size_t>(T) * nx), without(with.size());
    sim.step(T, traj.data(), acts.data(), with.data());
    free_sim.step(T, traj.data(), acts.data(), without.data());
    std::vector<double> x, u;
    for (int t = 0; t < T && static_cast<int>(x.size()) < B * nx; ++t) {
      if (std::equal(with.begin() + t * nx, with.begin() + (t + 1) * nx, without.begin() + t * nx)) continue;
      x.insert(x.end(), traj.begin() + t * nx, traj.begin() + (t + 1) * nx);
      u.insert(u.end(), acts.begin() + t * nu, acts.begin() + (t + 1) * nu);
    }
    ASSERT_EQ(static_cast<int>(x.size()), B * nx) << "fewer than " << B << " contact states";
    std::vector<double> y(x.size());
    sim.step(B, x.data(), u.data(), y.data());

    auto jac = [&](Simulator<double>& s, JacobianMode mode, std::vector<double>* next) {
      std::vector<double> A(static_cast<std::size_t>(B) * ndx * ndx), Bm(static_cast<std::size_t>(B) * ndx * nu);
      next->assign(x.size(), 0.0);
      s.jacobian(B, x.data(), u.data(), next->data(), A.data(), Bm.data(), mode);
      A.insert(A.end(), Bm.begin(), Bm.end());
      return A;
    };
    std::vector<double> ya, yf, yr;
    const std::vector<double> closed = jac(sim, JacobianMode::analytic, &ya);
    const std::vector<double> fwd = jac(sim, JacobianMode::forward, &yf);
    const std::vector<double> rev = jac(sim, JacobianMode::reverse, &yr);
    EXPECT_LE(rel_error(closed, fwd), 1e-12);
    EXPECT_LE(rel_error(rev, fwd), 1e-12);
    EXPECT_EQ(ya, y);
    EXPECT_EQ(yf, y);

    // the unrolled mode's analytic request takes its forward sweeps: the same matrix bit for bit
    o.disable.clear();
    o.grad_mode = GradMode::unrolled;
    Simulator<double> unrolled(o);
    std::vector<double> yu, yu2;
    EXPECT_EQ(jac(unrolled, JacobianMode::analytic, &yu), jac(unrolled, JacobianMode::forward, &yu2));
  }
}

}  // namespace
}  // namespace phydream
