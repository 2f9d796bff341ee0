// `phydream step|jacobian|rollout --model FILE` end to end: the binary built beside this test on
// the project's MJCF assets and on a model with ball and free joints (nq != nv), outputs compared
// with the library, shapes in tangent coordinates, and every way the options can be wrong: exit
// status 2, a message naming the problem, and no output files.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/npy.h"
#include "engine/simulator.h"

namespace {

namespace fs = std::filesystem;
namespace npy = phydream::npy;
using phydream::Backend;
using phydream::JacobianMode;
using phydream::Simulator;
using phydream::SimulatorOptions;

// a floating box with a hinged arm and a ball-jointed pendulum: nq = 12, nv = 10, nu = 1
const char* kBallFree = R"(<mujoco model="ball_free">
  <option timestep="0.005"/>
  <worldbody>
    <body name="base" pos="0 0 1">
      <freejoint name="root"/>
      <geom type="box" size="0.2 0.1 0.05" mass="2" contype="0" conaffinity="0"/>
      <body name="arm" pos="0.2 0 0">
        <joint name="elbow" axis="0 1 0" damping="0.1"/>
        <geom type="capsule" fromto="0 0 0 0.3 0 0" size="0.03" mass="0.5" contype="0" conaffinity="0"/>
      </body>
    </body>
    <body name="bob" pos="1 0 1">
      <joint name="ball" type="ball" damping="0.05"/>
      <geom type="capsule" fromto="0 0 0 0 0 -0.4" size="0.04" mass="1" contype="0" conaffinity="0"/>
    </body>
  </worldbody>
  <actuator><motor joint="elbow" gear="2" ctrlrange="-1 1" ctrllimited="true"/></actuator>
</mujoco>
)";

std::string asset(const std::string& name) {
  return std::string(PHYDREAM_SOURCE_DIR) + "/assets/" + name + ".xml";
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

struct CliResult {
  int status = -1;
  std::string out, err;
};

class ModelCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("phydream_model_cli_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  CliResult run(const std::string& args) const {
    const fs::path out = dir_ / "stdout.txt", err = dir_ / "stderr.txt";
    const std::string cmd = std::string(PHYDREAM_CLI) + " " + args + " >'" + out.string() +
                            "' 2>'" + err.string() + "'";
    const int status = std::system(cmd.c_str());
    CliResult r;
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = read_text(out);
    r.err = read_text(err);
    return r;
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::string save(const std::string& name, const std::vector<double>& data,
                   const std::vector<std::int64_t>& shape) const {
    npy::save(path(name), data.data(), shape);
    return path(name);
  }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(dir_ / name) << text;
    return path(name);
  }

  // states about the reference (hinges and slides +-0.3, unit quaternions kept), velocities and
  // controls in [-0.5, 0.5]
  static std::vector<double> states(const phydream::Model& m, int batch, unsigned seed) {
    std::vector<double> x;
    unsigned s = seed;
    auto next = [&s] {
      s = s * 1664525u + 1013904223u;
      return static_cast<double>(s >> 8) / static_cast<double>(1u << 24) - 0.5;
    };
    for (int b = 0; b < batch; ++b) {
      std::vector<double> q(m.qpos0.begin(), m.qpos0.end());
      for (int j = 0; j < m.njnt; ++j) {
        if (m.jnt_type[j] == static_cast<int>(phydream::JointType::hinge) ||
            m.jnt_type[j] == static_cast<int>(phydream::JointType::slide)) {
          q[m.jnt_qposadr[j]] += 0.6 * next();
        }
      }
      x.insert(x.end(), q.begin(), q.end());
      for (int i = 0; i < m.nv; ++i) x.push_back(next());
    }
    return x;
  }

  fs::path dir_;
};

SimulatorOptions options(const std::string& file) {
  SimulatorOptions o;
  o.model_file = file;
  o.disable = {"contact", "limit", "frictionloss"};
  o.backend = Backend::cpu;
  return o;
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    const double d = std::abs(a[i] - b[i]);
    worst = std::isnan(d) ? INFINITY : std::max(worst, d);
  }
  return worst;
}

TEST_F(ModelCli, StepAndJacobianMatchTheLibraryOnEveryAsset) {
  for (const char* name : {"cartpole", "inverted_double_pendulum", "half_cheetah", "finger", "reacher"}) {
    SCOPED_TRACE(name);
    Simulator<double> sim(options(asset(name)));
    const int nx = sim.nx(), ndx = sim.ndx(), nu = sim.nu(), batch = 3;
    const auto x = states(*sim.model(), batch, 7);
    std::vector<double> u(batch * nu, 0.25);
    const std::string xs = save("x.npy", x, {batch, nx}), us = save("u.npy", u, {batch, nu});
    const std::string common = " --model '" + asset(name) + "' --disable contact,limit,frictionloss"
                               " --backend cpu --state '" + xs + "' --action '" + us + "'";
    CliResult r = run("step" + common + " --out '" + path("step") + "'");
    ASSERT_EQ(r.status, 0) << r.err;
    std::vector<double> xn(batch * nx), jx(batch * ndx * ndx), ju(batch * ndx * nu);
    sim.step(batch, x.data(), u.data(), xn.data());
    EXPECT_EQ(max_abs_diff(npy::load<double>(path("step/next_state.npy")).data, xn), 0.0);

    for (const char* mode : {"fwd", "rev", "analytic"}) {
      r = run(std::string("jacobian") + common + " --mode " + mode + " --out '" + path(mode) + "'");
      ASSERT_EQ(r.status, 0) << r.err;
      sim.jacobian(batch, x.data(), u.data(), xn.data(), jx.data(), ju.data(),
                   mode[0] == 'f'   ? JacobianMode::forward
                   : mode[0] == 'r' ? JacobianMode::reverse
                                    : JacobianMode::analytic);
      const auto js = npy::load<double>(path(std::string(mode) + "/jac_state.npy"));
      const auto ja = npy::load<double>(path(std::string(mode) + "/jac_action.npy"));
      EXPECT_EQ(js.shape, (std::vector<std::int64_t>{batch, ndx, ndx}));
      EXPECT_EQ(ja.shape, (std::vector<std::int64_t>{batch, ndx, nu}));
      EXPECT_EQ(max_abs_diff(js.data, jx), 0.0) << mode;
      EXPECT_EQ(max_abs_diff(ja.data, ju), 0.0) << mode;
    }
    // the finite-difference mode agrees with the analytic Jacobian to its accuracy
    r = run("jacobian" + common + " --mode fd --out '" + path("fd") + "'");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_LT(max_abs_diff(npy::load<double>(path("fd/jac_state.npy")).data, jx), 1e-5);
    EXPECT_LT(max_abs_diff(npy::load<double>(path("fd/jac_action.npy")).data, ju), 1e-5);
  }
}

TEST_F(ModelCli, BallAndFreeJointsUseTangentShapes) {
  const std::string model = write("ball_free.xml", kBallFree);
  Simulator<double> sim(options(model));
  ASSERT_EQ(sim.nx(), 22);
  ASSERT_EQ(sim.ndx(), 20);
  const int batch = 2, nx = 22, ndx = 20, nu = 1, T = 5;
  const auto x = states(*sim.model(), batch, 3);
  const std::string xs = save("x.npy", x, {batch, nx});
  const std::string us = save("u.npy", {0.3, -0.2}, {batch, nu});
  const std::string Us = save("U.npy", std::vector<double>(batch * T * nu, 0.1), {batch, T, nu});
  CliResult r = run("jacobian --model '" + model + "' --state '" + xs + "' --action '" + us +
              "' --out '" + path("jac") + "'");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(npy::load<double>(path("jac/jac_state.npy")).shape, (std::vector<std::int64_t>{batch, ndx, ndx}));
  EXPECT_EQ(npy::load<double>(path("jac/next_state.npy")).shape, (std::vector<std::int64_t>{batch, nx}));

  // the Simulator's central differences (tangent coordinates: rotation vectors for the ball and
  // the free joint's orientation) agree with the analytic Jacobian, every route
  {
    const std::vector<double> u = {0.3, -0.2};
    std::vector<double> fx(batch * ndx * ndx), fu(batch * ndx * nu), ax(fx.size()), au(fu.size());
    sim.jacobian_fd(batch, x.data(), u.data(), fx.data(), fu.data());
    for (JacobianMode mode : {JacobianMode::analytic, JacobianMode::forward, JacobianMode::reverse}) {
      sim.jacobian(batch, x.data(), u.data(), nullptr, ax.data(), au.data(), mode);
      EXPECT_LT(max_abs_diff(fx, ax), 1e-6) << static_cast<int>(mode);
      EXPECT_LT(max_abs_diff(fu, au), 1e-6) << static_cast<int>(mode);
    }
  }

  // rollout --grad: the gradient of 1/2 |x_T|^2 in tangent coordinates, against the library
  r = run("rollout --model '" + model + "' --state '" + xs + "' --actions '" + Us +
          "' --grad --out '" + path("roll") + "'");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto gx = npy::load<double>(path("roll/grad_state.npy"));
  EXPECT_EQ(gx.shape, (std::vector<std::int64_t>{batch, ndx}));
  std::vector<double> states_h(batch * (T + 1) * nx), U(batch * T * nu, 0.1);
  sim.rollout(batch, T, x.data(), U.data(), states_h.data());
  EXPECT_EQ(max_abs_diff(npy::load<double>(path("roll/states.npy")).data, states_h), 0.0);
  // the cotangent of 1/2 |x_T|^2: free position and hinge coordinates themselves, 0 for the
  // rotation vectors (a unit quaternion's norm does not change), the velocities
  std::vector<double> g_final(batch * ndx, 0.0);
  const phydream::Model& m = *sim.model();
  for (int b = 0; b < batch; ++b) {
    const double* xT = &states_h[(b * (T + 1) + T) * nx];
    for (int k = 0; k < 3; ++k) g_final[b * ndx + k] = xT[k];  // free joint position
    g_final[b * ndx + 6] = xT[m.jnt_qposadr[1]];                // the elbow hinge
    for (int k = 0; k < m.nv; ++k) g_final[b * ndx + m.nv + k] = xT[m.nq + k];
  }
  std::vector<double> gx0(batch * ndx, 0.0), gU(batch * T * nu, 0.0);
  sim.rollout_vjp(batch, T, x.data(), U.data(), states_h.data(), gx0.data(), gU.data(), nullptr,
                  g_final.data());
  EXPECT_LT(max_abs_diff(gx.data, gx0), 1e-12);
  EXPECT_LT(max_abs_diff(npy::load<double>(path("roll/grad_actions.npy")).data, gU), 1e-12);
}

// the largest entry-wise difference between two NPY arrays, relative to the largest of b
static double npy_rel_diff(const std::string& a_path, const std::string& b_path) {
  const auto a = npy::load<double>(a_path).data;
  const auto b = npy::load<double>(b_path).data;
  EXPECT_EQ(a.size(), b.size());
  double err = 0, scale = 0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    err = std::max(err, std::abs(a[i] - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  return err / std::max(scale, 1e-300);
}

TEST_F(ModelCli, ContactModelsStepAndDifferentiateInEveryMode) {
  // half-cheetah with its ground contact and joint limits enabled, the torso low enough that the
  // feet press into the floor
  std::vector<double> x0(18, 0.0);
  x0[1] = -0.1;
  const std::string xs = save("x.npy", x0, {1, 18});
  const std::string us = save("u.npy", std::vector<double>(6, 0.1), {1, 6});
  const std::string io = " --model '" + asset("half_cheetah") + "' --backend cpu --state '" + xs + "' --action '" + us + "'";
  const CliResult step = run("step" + io + " --out '" + path("step") + "'");
  ASSERT_EQ(step.status, 0) << step.err;
  for (const char* mode : {"analytic", "rev"}) {
    const CliResult r = run(std::string("jacobian") + io + " --mode " + mode + " --out '" + path(mode) + "'");
    ASSERT_EQ(r.status, 0) << r.err;
  }
  const CliResult fd = run("jacobian" + io + " --mode fd --out '" + path("fd") + "'");
  ASSERT_EQ(fd.status, 0) << fd.err;
  const CliResult gfd = run("jacobian" + io + " --grad-mode fd --out '" + path("gfd") + "'");
  ASSERT_EQ(gfd.status, 0) << gfd.err;
  // IFT by forward and reverse sweeps agree to rounding, and with central differences
  EXPECT_LT(npy_rel_diff(path("rev/jac_state.npy"), path("analytic/jac_state.npy")), 1e-10);
  EXPECT_LT(npy_rel_diff(path("rev/jac_action.npy"), path("analytic/jac_action.npy")), 1e-10);
  EXPECT_LT(npy_rel_diff(path("analytic/jac_state.npy"), path("fd/jac_state.npy")), 1e-4);
  // --grad-mode fd is the same central difference as --mode fd
  EXPECT_EQ(npy::load<double>(path("gfd/jac_state.npy")).data, npy::load<double>(path("fd/jac_state.npy")).data);
  // rollout gradients through contact, in both gradient modes that have them natively
  const std::string acts = save("acts.npy", std::vector<double>(5 * 6, 0.1), {1, 5, 6});
  const std::string rio = " --model '" + asset("half_cheetah") + "' --backend cpu --state '" + xs + "' --actions '" + acts + "' --grad";
  const CliResult r1 = run("rollout" + rio + " --out '" + path("roll_ift") + "'");
  ASSERT_EQ(r1.status, 0) << r1.err;
  const CliResult r2 = run("rollout" + rio + " --grad-mode fd --out '" + path("roll_fd") + "'");
  ASSERT_EQ(r2.status, 0) << r2.err;
  EXPECT_LT(npy_rel_diff(path("roll_ift/grad_actions.npy"), path("roll_fd/grad_actions.npy")), 1e-4);
  // under RK4 too, reverse sweeps (each stage's solve re-run) equal forward sweeps
  const CliResult rk = run("jacobian" + io + " --integrator rk4 --mode rev --out '" + path("rk") + "'");
  ASSERT_EQ(rk.status, 0) << rk.err;
  const CliResult rkf = run("jacobian" + io + " --integrator rk4 --mode fwd --out '" + path("rkf") + "'");
  ASSERT_EQ(rkf.status, 0) << rkf.err;
  EXPECT_LT(npy_rel_diff(path("rk/jac_state.npy"), path("rkf/jac_state.npy")), 1e-10);
  EXPECT_LT(npy_rel_diff(path("rk/jac_action.npy"), path("rkf/jac_action.npy")), 1e-10);
  // an unknown gradient mode, or one for a built-in environment, exits 2
  const CliResult bad = run("jacobian" + io + " --grad-mode autodiff --out '" + path("bad") + "'");
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("--grad-mode"), std::string::npos) << bad.err;
  EXPECT_FALSE(fs::exists(path("bad")));
}

TEST_F(ModelCli, ToiCorrectsTheBounceGradient) {
  // the bounce's throw, its impact half a step after a step boundary; T = 0.3 s
  const std::string xs = save("x.npy", {0, 0, 0.301, 1, 0, 0, 0, 2, 0, -2, 0, 0, 0}, {1, 13});
  const std::string us = save("u.npy", {}, {1, 300, 0});
  const std::string io = " --model '" + asset("bounce") + "' --backend cpu --state '" + xs + "' --actions '" + us + "' --grad";
  const CliResult toi = run("rollout" + io + " --toi --out '" + path("toi") + "'");
  ASSERT_EQ(toi.status, 0) << toi.err;
  const CliResult plain = run("rollout" + io + " --out '" + path("plain") + "'");
  ASSERT_EQ(plain.status, 0) << plain.err;
  // the gradient of 1/2 |x_T|^2 under the elastic impact: x_T = x0 + vx0 T, z_T = 0.2 - z0 - vz0 T,
  // vz_T = -vz0 (the quaternion's cotangent is 0)
  const auto states = npy::load<double>(path("toi/states.npy")).data;
  const double T = 0.3, xT = states[300 * 13 + 0], zT = states[300 * 13 + 2];
  const double vxT = states[300 * 13 + 7], vzT = states[300 * 13 + 9];
  const std::vector<double> want = {xT, zT * -1.0, T * xT + vxT, -T * zT - vzT};
  for (const char* run_name : {"toi", "plain"}) {
    const auto g = npy::load<double>(path(std::string(run_name) + "/grad_state.npy")).data;
    const std::vector<double> got = {g[0], g[2], g[6], g[8]};
    double err = 0, norm = 0;
    for (int i = 0; i < 4; ++i) {
      err += (got[i] - want[i]) * (got[i] - want[i]);
      norm += want[i] * want[i];
    }
    err = std::sqrt(err / norm);
    if (std::string(run_name) == "toi") {
      EXPECT_LT(err, 0.01) << "corrected";
    } else {
      EXPECT_GT(err, 0.1) << "uncorrected: the stepped soft model's own gradient";
    }
  }
  // --toi needs --grad, the stored trajectory and a model
  const std::string nog = " --model '" + asset("bounce") + "' --backend cpu --state '" + xs + "' --actions '" + us + "'";
  for (const std::string& bad : {"rollout" + nog + " --toi --out '" + path("b1") + "'",
                                 "rollout" + io + " --toi --checkpoint 0 --out '" + path("b2") + "'"}) {
    const CliResult r = run(bad);
    EXPECT_EQ(r.status, 2) << bad;
    EXPECT_NE(r.err.find("--toi"), std::string::npos) << r.err;
  }
  EXPECT_FALSE(fs::exists(path("b1")));
  EXPECT_FALSE(fs::exists(path("b2")));
}

// a pair of geoms that can collide but whose collision PhyDream lacks (plane-cylinder) is the
// model's problem: exit 2 naming both geoms and the way out, no output; with contacts disabled
// the same file simulates (found by fuzzing, tests/fuzz/)
TEST_F(ModelCli, UnsupportedCollisionPairIsAnInputError) {
  const std::string xml = write("can.xml", R"(<mujoco>
  <worldbody>
    <geom name="ground" type="plane" size="1 1 0.1"/>
    <body name="can" pos="0 0 1"><freejoint/><geom name="can" type="cylinder" size="0.1 0.2"/></body>
  </worldbody>
</mujoco>
)");
  const std::string x = save("x.npy", {0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {1, 13});
  const std::string io = " --backend cpu --state '" + x + "' --action '" + save("u.npy", {}, {1, 0}) + "'";
  const CliResult r = run("step --model '" + xml + "'" + io + " --out '" + path("out") + "'");
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("geom 'ground' (plane) and geom 'can' (cylinder) is not supported"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("contype/conaffinity"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(path("out")));
  const CliResult ok = run("step --model '" + xml + "' --disable contact" + io + " --out '" + path("ok") + "'");
  EXPECT_EQ(ok.status, 0) << ok.err;
}

TEST_F(ModelCli, SolverFailuresAreReportedPerEnvironment) {
  // bounce with a one-iteration cap and no tolerance: a solve with contact stops at the cap
  const std::string model = write("capped.xml", R"(<mujoco>
  <option timestep="0.001" gravity="0 0 0" iterations="1" tolerance="0"/>
  <worldbody>
    <geom name="floor" type="plane" size="5 5 0.1" condim="1"/>
    <body name="ball" pos="0 0 0.3"><freejoint/><geom type="sphere" size="0.1" mass="1" condim="1"/></body>
  </worldbody>
</mujoco>)");
  // env 0 above the floor, 1 and 2 in it
  const std::string xs = save("x.npy", {0, 0, 1.0, 1, 0, 0, 0, 0, 0, -1, 0, 0, 0,  //
                                        0, 0, 0.095, 1, 0, 0, 0, 0, 0, -1, 0, 0, 0,  //
                                        0, 0, 0.095, 1, 0, 0, 0, 0, 0, -1, 0, 0, 0},
                              {3, 13});
  const std::string us = save("u.npy", {}, {3, 0});
  const std::string io = " --model '" + model + "' --backend cpu --state '" + xs + "' --action '" + us + "'";
  const CliResult r = run("step" + io + " --out '" + path("capped") + "'");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("iteration cap"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("2 of 3 environments (first: 1 2)"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(path("capped/next_state.npy")));
  // (a non-finite solve, which needs a non-finite state the CLI refuses as input, is flagged
  // per environment by Simulator::solver_status: contact_api_tests SolverStatus.*)
}

TEST_F(ModelCli, GradcheckComparesEveryModeWithCentralDifferences) {
  // three half-cheetah states with the feet pressed into the floor
  std::vector<double> xs(3 * 18, 0.0);
  for (int b = 0; b < 3; ++b) {
    xs[b * 18 + 1] = -0.1 + 0.01 * b;
    xs[b * 18 + 9] = 0.2 * b;  // forward velocity
  }
  const std::string states = save("xs.npy", xs, {3, 18});
  const std::string actions = save("us.npy", std::vector<double>(3 * 6, 0.1), {3, 6});
  const std::string io = " --model '" + asset("half_cheetah") + "' --backend cpu --states '" + states +
                         "' --actions '" + actions + "'";
  const CliResult r = run("gradcheck" + io);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("ift (forward sweeps)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ift (reverse sweeps)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("unrolled"), std::string::npos) << r.out;
  const CliResult j = run("gradcheck" + io + " --json");
  ASSERT_EQ(j.status, 0) << j.err;
  const auto doc = nlohmann::json::parse(j.out);
  ASSERT_EQ(doc["modes"].size(), 3u);
  for (const auto& m : doc["modes"]) {
    SCOPED_TRACE(m["mode"].get<std::string>());
    ASSERT_FALSE(m.contains("refused")) << m.dump();
    EXPECT_LT(m["max_rel_error"].get<double>(), 1e-4);
    EXPECT_EQ(m["nonfinite_envs"].get<int>(), 0);
  }
  // states of the wrong width exit 2 naming the option
  const std::string bad = save("bad.npy", std::vector<double>(3 * 5, 0.0), {3, 5});
  const CliResult b = run("gradcheck --model '" + asset("half_cheetah") + "' --states '" + bad + "' --actions '" +
                          actions + "'");
  EXPECT_EQ(b.status, 2);
  EXPECT_NE(b.err.find("--states"), std::string::npos) << b.err;
}

TEST_F(ModelCli, BadOptionsExitTwoAndWriteNothing) {
  const std::string cp = asset("cartpole");
  const std::string xs = save("x.npy", std::vector<double>(4, 0.0), {1, 4});
  const std::string us = save("u.npy", std::vector<double>(1, 0.0), {1, 1});
  const std::string io = " --state '" + xs + "' --action '" + us + "' --out '" + path("out") + "'";
  const std::string off = " --disable contact,limit";
  struct Case {
    std::string args, expect;
  };
  const std::string ball_hinge = write("ball_hinge.xml", R"(<mujoco>
  <worldbody><body name="b"><joint name="ball" type="ball"/><joint name="h" axis="0 1 0"/>
    <geom type="sphere" size="0.1" mass="1" contype="0" conaffinity="0"/></body></worldbody>
</mujoco>)");
  const std::vector<Case> cases = {
      {"step --model '" + ball_hinge + "'" + io, "cannot be followed by a rotation"},
      {"step --env cartpole --model '" + cp + "'" + io, "--model"},
      {"step" + io, "--env"},
      {"step --env cartpole --disable contact" + io, "--disable"},
      {"step --model '" + cp + "'" + off + " --param mass=2" + io, "--param"},
      {"step --model '" + cp + "' --disable contact,bogus" + io, "bogus"},
      {"step --model '" + cp + "' --disable contact,,limit" + io, "empty flag"},
      {"step --model '" + path("missing.xml") + "'" + off + io, "missing.xml"},
      {"step --model '" + write("m.txt", "<mujoco/>") + "'" + off + io, "m.txt"},
      {"step --model '" + cp + "'" + off + " --integrator euler" + io, "semi_implicit_euler"},
      {"step --model '" + cp + "'" + off + " --dt -1" + io, "--dt"},
      {"jacobian --model '" + cp + "'" + off + " --state '" + save("x5.npy", std::vector<double>(5, 0.0), {1, 5}) +
           "' --action '" + us + "' --out '" + path("out") + "'", "nx"},
  };
  for (const Case& c : cases) {
    const CliResult r = run(c.args);
    EXPECT_EQ(r.status, 2) << c.args << "\n" << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << c.args << "\n" << r.err;
    EXPECT_FALSE(fs::exists(path("out"))) << c.args;
  }
}

TEST_F(ModelCli, DtAndIntegratorOverridesReachTheModel) {
  const std::string cp = asset("cartpole");
  SimulatorOptions o = options(cp);
  o.dt = 0.005;
  o.integrator = phydream::Integrator::semi_implicit_euler;
  Simulator<double> sim(o);
  EXPECT_EQ(sim.model()->opt_timestep, 0.005);
  EXPECT_EQ(sim.model()->opt_integrator, phydream::ModelIntegrator::euler);
  const std::vector<double> x = {0.1, 0.2, 0.3, -0.1}, u = {0.5};
  std::vector<double> xn(4);
  sim.step(1, x.data(), u.data(), xn.data());
  const std::string xs = save("x.npy", x, {1, 4}), us = save("u.npy", u, {1, 1});
  const CliResult r = run("step --model '" + cp + "' --disable contact,limit,frictionloss --dt 0.005 "
                    "--integrator semi_implicit_euler --state '" + xs + "' --action '" + us +
                    "' --out '" + path("out") + "'");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(max_abs_diff(npy::load<double>(path("out/next_state.npy")).data, xn), 0.0);
}

}  // namespace
