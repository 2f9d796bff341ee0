// Articulated models on the CUDA backend against the CPU backend, through the public Simulator
// API: every call (step, JVP, VJP, Jacobians by both sweeps and by differences, rollout and its
// reverse mode stored and checkpointed), for the project's MJCF assets and a model with ball and
// free joints, float and double, batch sizes 1, odd, and larger than one grid of workspaces; then
// the contact models with their constraints on, the time-of-impact correction and the solver
// status.
// Skips cleanly without a device. Label: gpu.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/buffer.h"
#include "engine/mjcf.h"
#include "engine/simulator.h"
#include "test_util.h"

namespace phydream::testing {
namespace {

#define SKIP_WITHOUT_GPU() \
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device visible"

// a floating base with a hinge child and a ball-jointed pendulum: nq = 7 + 1 + 4, nv = 6 + 1 + 3
const char* kBallFreeXml = R"(
<mujoco model="ball_free">
  <option timestep="0.005" gravity="0 0 -9.81"/>
  <worldbody>
    <body name="base" pos="0 0 1">
      <freejoint name="root"/>
      <geom type="box" size="0.2 0.1 0.05" mass="2" contype="0" conaffinity="0"/>
      <body name="arm" pos="0.2 0 0">
        <joint name="elbow" type="hinge" axis="0 1 0" damping="0.1"/>
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

std::string model_path(const std::string& name) {
  if (name == "ball_free") {
    const std::string path = ::testing::TempDir() + "/phydream_ball_free.xml";
    FILE* f = std::fopen(path.c_str(), "w");
    std::fputs(kBallFreeXml, f);
    std::fclose(f);
    return path;
  }
  return std::string(PHYDREAM_SOURCE_DIR) + "/assets/" + name + ".xml";
}

template <class S>
class ArticulatedGpu : public ::testing::TestWithParam<std::string> {
 protected:
  Simulator<S> make(Backend backend) const {
    SimulatorOptions o;
    o.model_file = model_path(GetParam());
    o.disable = disable_;
    o.backend = backend;
    o.toi_correction = toi_;
    return Simulator<S>(o);
  }
  // the smooth dynamics by default; the contact suites below keep every constraint
  std::vector<std::string> disable_ = {"contact", "limit", "frictionloss"};
  bool toi_ = false;
  double tol_ = 0;  // 0: tol()'s default
  static std::vector<S> random(std::int64_t n, std::uint64_t seed, double scale) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> dist(-scale, scale);
    std::vector<S> v(static_cast<std::size_t>(n));
    for (S& e : v) e = static_cast<S>(dist(rng));
    return v;
  }
  // states about the reference: coordinates perturbed, quaternions kept unit
  static std::vector<S> states(const Simulator<S>& sim, std::int64_t batch, std::uint64_t seed) {
    const Model& m = *sim.model();
    const int nx = sim.nx();
    auto x = random(batch * nx, seed, 0.3);
    for (std::int64_t b = 0; b < batch; ++b) {
      for (int j = 0; j < m.njnt; ++j) {
        const int type = m.jnt_type[j];
        if (type != static_cast<int>(JointType::ball) && type != static_cast<int>(JointType::free)) {
          x[b * nx + m.jnt_qposadr[j]] += static_cast<S>(m.qpos0[m.jnt_qposadr[j]]);
          continue;
        }
        const int q = m.jnt_qposadr[j] + (type == static_cast<int>(JointType::free) ? 3 : 0);
        double n = 0;
        for (int k = 0; k < 4; ++k) {
          const double c = (k == 0 ? 1.0 : 0.0) + double(x[b * nx + q + k]);
          x[b * nx + q + k] = static_cast<S>(c);
          n += c * c;
        }
        for (int k = 0; k < 4; ++k) x[b * nx + q + k] = static_cast<S>(double(x[b * nx + q + k]) / std::sqrt(n));
      }
    }
    return x;
  }
  // FMA contraction on the device: double agrees to ~1e-10, float to ~1e-3 (floor 1)
  double tol() const { return tol_ > 0 ? tol_ : (sizeof(S) == 4 ? 2e-3 : 1e-9); }

  // the solver's outcome of the last calls agrees per environment
  void compare_status(const char* what, Simulator<S>& cpu, Simulator<S>& gpu, std::int64_t batch) {
    std::vector<std::uint8_t> h(static_cast<std::size_t>(batch));
    Buffer<std::uint8_t> d(Backend::cuda, h.size());
    cpu.solver_status(batch, h.data());
    gpu.solver_status(batch, d.data());
    EXPECT_EQ(d.to_vector(), h) << what << ", batch " << batch;
  }

  void compare(const char* what, const std::vector<S>& host, const Buffer<S>& dev, std::int64_t batch) {
    EXPECT_LT(rel_err(to_double(dev.to_vector()), to_double(host)), tol()) << what << ", batch " << batch;
  }

  void check_all_calls(std::int64_t batch) {
    auto cpu = make(Backend::cpu);
    auto gpu = make(Backend::cuda);
    const int nx = cpu.nx(), ndx = cpu.ndx(), nu = cpu.nu();
    const auto x = states(cpu, batch, 1), u = random(batch * nu, 2, 1.0);
    const auto v = random(batch * ndx, 3, 1.0), vu = random(batch * nu, 4, 1.0);
    const auto w = random(batch * ndx, 5, 1.0);
    auto up = [](const std::vector<S>& h) {
      Buffer<S> d(Backend::cuda, h.size());
      d.upload(h.data());
      return d;
    };
    Buffer<S> dx = up(x), du = up(u), dv = up(v), dvu = up(vu), dw = up(w);

    std::vector<S> xn(x.size());
    Buffer<S> dxn(Backend::cuda, x.size());
    cpu.step(batch, x.data(), u.data(), xn.data());
    gpu.step(batch, dx.data(), du.data(), dxn.data());
    compare("step", xn, dxn, batch);
    compare_status("step", cpu, gpu, batch);

    std::vector<S> jxn(x.size()), jdxn(v.size());
    Buffer<S> djxn(Backend::cuda, x.size()), djdxn(Backend::cuda, v.size());
    cpu.step_jvp(batch, x.data(), u.data(), v.data(), vu.data(), jxn.data(), jdxn.data());
    gpu.step_jvp(batch, dx.data(), du.data(), dv.data(), dvu.data(), djxn.data(), djdxn.data());
    compare("step_jvp primal", jxn, djxn, batch);
    compare("step_jvp tangent", jdxn, djdxn, batch);

    std::vector<S> gx(v.size(), S(0.5)), gu(u.size(), S(-0.25));
    Buffer<S> dgx = up(gx), dgu = up(gu);
    cpu.step_vjp(batch, x.data(), u.data(), gx.data(), gu.data(), w.data());
    gpu.step_vjp(batch, dx.data(), du.data(), dgx.data(), dgu.data(), dw.data());
    compare("step_vjp gx (accumulated)", gx, dgx, batch);
    compare("step_vjp gu (accumulated)", gu, dgu, batch);

    for (JacobianMode mode : {JacobianMode::forward, JacobianMode::reverse}) {
      std::vector<S> jx(batch * ndx * ndx), ju(batch * ndx * nu), xn2(x.size());
      Buffer<S> djx(Backend::cuda, jx.size()), dju(Backend::cuda, ju.size()), dxn2(Backend::cuda, x.size());
      cpu.jacobian(batch, x.data(), u.data(), xn2.data(), jx.data(), ju.data(), mode);
      gpu.jacobian(batch, dx.data(), du.data(), dxn2.data(), djx.data(), dju.data(), mode);
      const char* name = mode == JacobianMode::forward ? "jacobian fwd" : "jacobian rev";
      compare(name, jx, djx, batch);
      compare(name, ju, dju, batch);
      compare(name, xn2, dxn2, batch);
    }
    // central differences of a constraint solve amplify its stopping tolerance by 1 / eps: they
    // are compared for the smooth dynamics only
    if (sizeof(S) == 8 && !disable_.empty()) {
      std::vector<S> jx(batch * ndx * ndx), ju(batch * ndx * nu);
      Buffer<S> djx(Backend::cuda, jx.size()), dju(Backend::cuda, ju.size());
      cpu.jacobian_fd(batch, x.data(), u.data(), jx.data(), ju.data());
      gpu.jacobian_fd(batch, dx.data(), du.data(), djx.data(), dju.data());
      EXPECT_LT(rel_err(to_double(djx.to_vector()), to_double(jx)), 1e-6) << "jacobian_fd";
      EXPECT_LT(rel_err(to_double(dju.to_vector()), to_double(ju)), 1e-6) << "jacobian_fd";
    }
    cudaDeviceSynchronize();
    EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  }

  void check_rollouts(std::int64_t batch, std::int64_t horizon) {
    auto cpu = make(Backend::cpu);
    auto gpu = make(Backend::cuda);
    const int nx = cpu.nx(), ndx = cpu.ndx(), nu = cpu.nu();
    const auto x0 = states(cpu, batch, 11), U = random(batch * horizon * nu, 12, 1.0);
    const auto gs = random(batch * (horizon + 1) * ndx, 13, 1.0), gf = random(batch * ndx, 14, 1.0);
    auto up = [](const std::vector<S>& h) {
      Buffer<S> d(Backend::cuda, h.size());
      d.upload(h.data());
      return d;
    };
    Buffer<S> dx0 = up(x0), dU = up(U), dgs = up(gs), dgf = up(gf);
    std::vector<S> states_h(batch * (horizon + 1) * nx);
    Buffer<S> dstates(Backend::cuda, states_h.size());
    cpu.rollout(batch, horizon, x0.data(), U.data(), states_h.data());
    gpu.rollout(batch, horizon, dx0.data(), dU.data(), dstates.data());
    compare("rollout", states_h, dstates, batch);
    compare_status("rollout", cpu, gpu, batch);
    for (bool stored : {true, false}) {
      if (!stored && toi_) continue;  // the correction reads the stored trajectory
      std::vector<S> gx0(batch * ndx), gU(U.size());
      Buffer<S> dgx0(Backend::cuda, gx0.size()), dgU(Backend::cuda, gU.size());
      cpu.rollout_vjp(batch, horizon, x0.data(), U.data(), stored ? states_h.data() : nullptr,
                      gx0.data(), gU.data(), gs.data(), gf.data(), 0);
      gpu.rollout_vjp(batch, horizon, dx0.data(), dU.data(), stored ? dstates.data() : nullptr,
                      dgx0.data(), dgU.data(), dgs.data(), dgf.data(), 0);
      compare(stored ? "rollout_vjp gx0 (stored)" : "rollout_vjp gx0 (checkpointed)", gx0, dgx0, batch);
      compare(stored ? "rollout_vjp gU (stored)" : "rollout_vjp gU (checkpointed)", gU, dgU, batch);
    }
  }
};

using ArticulatedGpuF32 = ArticulatedGpu<float>;
using ArticulatedGpuF64 = ArticulatedGpu<double>;

TEST_P(ArticulatedGpuF64, AllCallsMatchTheCpu) {
  SKIP_WITHOUT_GPU();
  for (std::int64_t batch : {1, 37, 1000}) check_all_calls(batch);
}
TEST_P(ArticulatedGpuF32, AllCallsMatchTheCpu) {
  SKIP_WITHOUT_GPU();
  for (std::int64_t batch : {1, 37, 1000}) check_all_calls(batch);
}
TEST_P(ArticulatedGpuF64, RolloutsMatchTheCpu) {
  SKIP_WITHOUT_GPU();
  check_rollouts(33, 40);
}
TEST_P(ArticulatedGpuF32, LargeBatchStepMatchesTheCpu) {
  SKIP_WITHOUT_GPU();
  // more environments than one grid of workspaces: the grid-stride loop covers the rest
  auto cpu = make(Backend::cpu);
  auto gpu = make(Backend::cuda);
  const std::int64_t batch = 300000;
  const auto x = states(cpu, batch, 21), u = random(batch * cpu.nu(), 22, 1.0);
  std::vector<float> xn(x.size());
  Buffer<float> dx(Backend::cuda, x.size()), du(Backend::cuda, u.size()), dxn(Backend::cuda, x.size());
  dx.upload(x.data());
  du.upload(u.data());
  cpu.step(batch, x.data(), u.data(), xn.data());
  gpu.step(batch, dx.data(), du.data(), dxn.data());
  compare("step", xn, dxn, batch);
}

const auto kModels = ::testing::Values("cartpole", "inverted_double_pendulum", "half_cheetah",
                                       "finger", "reacher", "ball_free");
INSTANTIATE_TEST_SUITE_P(Models, ArticulatedGpuF32, kModels);
INSTANTIATE_TEST_SUITE_P(Models, ArticulatedGpuF64, kModels);

// The contact models with every constraint on (collision, the Newton solve, the IFT derivatives
// in both directions, the solver status), double: the solver stops on a tolerance, so where the
// device's rounding moves it across the stopping test the two differ by up to that tolerance.
class ContactGpuF64 : public ArticulatedGpu<double> {
 protected:
  ContactGpuF64() {
    disable_ = {};
    tol_ = 1e-6;
  }
};
// with the time-of-impact correction of rollout gradients
class ToiGpuF64 : public ArticulatedGpu<double> {
 protected:
  ToiGpuF64() {
    disable_ = {};
    toi_ = true;
    tol_ = 1e-6;
  }
};

TEST_P(ContactGpuF64, AllCallsMatchTheCpu) {
  SKIP_WITHOUT_GPU();
  for (std::int64_t batch : {1, 37, 500}) check_all_calls(batch);
}
TEST_P(ContactGpuF64, RolloutsMatchTheCpu) {
  SKIP_WITHOUT_GPU();
  check_rollouts(33, 60);
}
TEST_P(ToiGpuF64, CorrectedRolloutGradientsMatchTheCpu) {
  SKIP_WITHOUT_GPU();
  check_rollouts(33, 200);
}
INSTANTIATE_TEST_SUITE_P(Models, ContactGpuF64,
                         ::testing::Values("bounce", "bounce_wall", "two_balls", "finger", "half_cheetah",
                                           "box_stack"));
INSTANTIATE_TEST_SUITE_P(Models, ToiGpuF64, ::testing::Values("bounce", "bounce_wall", "two_balls"));

// a solve capped at one iteration is flagged on the device as on the host
TEST(ContactGpu, SolverStatusMatchesTheCpu) {
  SKIP_WITHOUT_GPU();
  Model m = load_mjcf(model_path("bounce"));
  m.opt_iterations = 1;
  m.opt_tolerance = 0;
  auto model = std::make_shared<const Model>(m);
  auto make = [&](Backend be) {
    SimulatorOptions o;
    o.model = model;
    o.backend = be;
    return Simulator<double>(o);
  };
  auto cpu = make(Backend::cpu), gpu = make(Backend::cuda);
  // heights 0.05 ... 0.25: the lower ones in the floor
  const std::int64_t batch = 41;
  std::vector<double> x(batch * 13, 0.0);
  for (std::int64_t b = 0; b < batch; ++b) {
    x[b * 13 + 2] = 0.05 + 0.005 * b;
    x[b * 13 + 3] = 1;
    x[b * 13 + 9] = -1;
  }
  std::vector<double> xn(x.size());
  Buffer<double> dx(Backend::cuda, x.size()), dxn(Backend::cuda, x.size());
  dx.upload(x.data());
  cpu.step(batch, x.data(), nullptr, xn.data());
  gpu.step(batch, dx.data(), nullptr, dxn.data());
  std::vector<std::uint8_t> h(batch);
  Buffer<std::uint8_t> d(Backend::cuda, batch);
  cpu.solver_status(batch, h.data());
  gpu.solver_status(batch, d.data());
  EXPECT_EQ(d.to_vector(), h);
  int capped = 0;
  for (std::uint8_t f : h) capped += f == static_cast<std::uint8_t>(SolveFlag::iteration_cap);
  EXPECT_GT(capped, 0);
  EXPECT_LT(capped, batch);
}

}  // namespace
}  // namespace phydream::testing
