// CUDA backend against the CPU backend, through the public Simulator API: every call, every
// model x integrator x dtype, batch sizes 1, odd, across tile boundaries and above a million, and
// work queued on a user-supplied stream. Skips cleanly without a device. Label: gpu.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <string>
#include <vector>

#include "engine/buffer.h"
#include "engine/simulator.h"
#include "models/envs.h"
#include "test_util.h"

namespace phydream::testing {
namespace {

#define SKIP_WITHOUT_GPU() \
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device visible"

template <class S>
class GpuParity : public ::testing::TestWithParam<std::tuple<std::string, Integrator>> {
 protected:
  Simulator<S> make(Backend backend, void* stream = nullptr) const {
    SimulatorOptions o;
    o.env = std::get<0>(GetParam());
    o.integrator = std::get<1>(GetParam());
    o.backend = backend;
    o.stream = stream;
    return Simulator<S>(o);
  }
  static std::vector<S> random(std::int64_t n, std::uint64_t seed, double scale) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> dist(-scale, scale);
    std::vector<S> v(static_cast<std::size_t>(n));
    for (S& e : v) e = static_cast<S>(dist(rng));
    return v;
  }
  // the device may contract a*b+c into FMAs where the host does not: a few ulps, amplified by
  // the dynamics' condition; double agrees to ~1e-12, float to ~1e-4 relative (floor 1)
  static double tol() { return sizeof(S) == 4 ? 1e-4 : 1e-11; }

  void check_all_calls(std::int64_t batch) {
    auto cpu = make(Backend::cpu);
    auto gpu = make(Backend::cuda);
    const int nx = cpu.nx(), nu = cpu.nu();
    const auto x = random(batch * nx, 1, 2.0), u = random(batch * nu, 2, 1.0);
    const auto v = random(batch * nx, 3, 1.0), vu = random(batch * nu, 4, 1.0);
    const auto w = random(batch * nx, 5, 1.0);
    Buffer<S> dx(Backend::cuda, x.size()), du(Backend::cuda, u.size());
    Buffer<S> dv(Backend::cuda, v.size()), dvu(Backend::cuda, vu.size());
    Buffer<S> dw(Backend::cuda, w.size());
    dx.upload(x.data());
    du.upload(u.data());
    dv.upload(v.data());
    dvu.upload(vu.data());
    dw.upload(w.data());
    auto compare = [&](const char* what, const std::vector<S>& host, const Buffer<S>& dev) {
      EXPECT_LT(rel_err(to_double(dev.to_vector()), to_double(host)), tol())
          << what << ", batch " << batch;
    };

    // step
    std::vector<S> xn(x.size());
    Buffer<S> dxn(Backend::cuda, x.size());
    cpu.step(batch, x.data(), u.data(), xn.data());
    gpu.step(batch, dx.data(), du.data(), dxn.data());
    compare("step", xn, dxn);

    // jvp
    std::vector<S> jxn(x.size()), jdxn(x.size());
    Buffer<S> djxn(Backend::cuda, x.size()), djdxn(Backend::cuda, x.size());
    cpu.step_jvp(batch, x.data(), u.data(), v.data(), vu.data(), jxn.data(), jdxn.data());
    gpu.step_jvp(batch, dx.data(), du.data(), dv.data(), dvu.data(), djxn.data(), djdxn.data());
    compare("step_jvp primal", jxn, djxn);
    compare("step_jvp tangent", jdxn, djdxn);

    // vjp, accumulating onto v and vu
    std::vector<S> gx = v, gu = vu;
    cpu.step_vjp(batch, x.data(), u.data(), gx.data(), gu.data(), w.data());
    gpu.step_vjp(batch, dx.data(), du.data(), dv.data(), dvu.data(), dw.data());
    compare("step_vjp gx", gx, dv);
    compare("step_vjp gu", gu, dvu);

    // Jacobians, both sweeps and finite differences
    const std::size_t njx = static_cast<std::size_t>(batch * nx * nx);
    const std::size_t nju = static_cast<std::size_t>(batch * nx * nu);
    std::vector<S> jx(njx), ju(nju);
    Buffer<S> djx(Backend::cuda, njx), dju(Backend::cuda, nju);
    for (JacobianMode mode : {JacobianMode::forward, JacobianMode::reverse}) {
      cpu.jacobian(batch, x.data(), u.data(), xn.data(), jx.data(), ju.data(), mode);
      gpu.jacobian(batch, dx.data(), du.data(), dxn.data(), djx.data(), dju.data(), mode);
      compare("jacobian x_next", xn, dxn);
      compare("jacobian jac_x", jx, djx);
      compare("jacobian jac_u", ju, dju);
    }
    cpu.jacobian_fd(batch, x.data(), u.data(), jx.data(), ju.data());
    gpu.jacobian_fd(batch, dx.data(), du.data(), djx.data(), dju.data());
    // FD amplifies the ulp differences by 1/eps
    EXPECT_LT(rel_err(to_double(djx.to_vector()), to_double(jx)), sizeof(S) == 4 ? 5e-2 : 1e-7);
    EXPECT_LT(rel_err(to_double(dju.to_vector()), to_double(ju)), sizeof(S) == 4 ? 5e-2 : 1e-7);

    // non-finite flags
    std::vector<std::uint8_t> flags(static_cast<std::size_t>(batch));
    Buffer<std::uint8_t> dflags(Backend::cuda, flags.size());
    std::vector<S> poisoned = x;
    poisoned[static_cast<std::size_t>((batch - 1) * nx)] = S(NAN);
    Buffer<S> dpoisoned(Backend::cuda, poisoned.size());
    dpoisoned.upload(poisoned.data());
    gpu.nonfinite_rows(batch, nx, dpoisoned.data(), dflags.data());
    const auto got_flags = dflags.to_vector();
    for (std::int64_t b = 0; b < batch; ++b) {
      ASSERT_EQ(got_flags[b], b == batch - 1 ? 1 : 0) << b;
    }
  }

  void check_rollouts(std::int64_t batch, std::int64_t horizon) {
    auto cpu = make(Backend::cpu);
    auto gpu = make(Backend::cuda);
    const int nx = cpu.nx(), nu = cpu.nu();
    // moderate states: the double pendulum is chaotic, and host/device ulp differences grow
    // along a trajectory; from gentle states over 30 steps they stay far below the tolerance
    const auto x0 = random(batch * nx, 6, 0.3), U = random(batch * horizon * nu, 7, 0.3);
    const auto g_final = random(batch * nx, 8, 1.0);
    Buffer<S> dx0(Backend::cuda, x0.size()), dU(Backend::cuda, U.size());
    Buffer<S> dg(Backend::cuda, g_final.size());
    dx0.upload(x0.data());
    dU.upload(U.data());
    dg.upload(g_final.data());
    const std::size_t ns = static_cast<std::size_t>(batch * (horizon + 1) * nx);
    std::vector<S> states(ns);
    Buffer<S> dstates(Backend::cuda, ns);
    cpu.rollout(batch, horizon, x0.data(), U.data(), states.data());
    gpu.rollout(batch, horizon, dx0.data(), dU.data(), dstates.data());
    // trajectories diverge slowly from ulp differences: compare with a looser bound
    EXPECT_LT(rel_err(to_double(dstates.to_vector()), to_double(states)), 1e3 * tol());

    std::vector<S> gx0(x0.size(), S(0)), gU(U.size(), S(0));
    cpu.rollout_vjp(batch, horizon, x0.data(), U.data(), states.data(), gx0.data(), gU.data(),
                    nullptr, g_final.data());
    for (bool checkpointed : {false, true}) {
      Buffer<S> dgx0(Backend::cuda, gx0.size()), dgU(Backend::cuda, gU.size());
      gpu.rollout_vjp(batch, horizon, dx0.data(), dU.data(),
                      checkpointed ? nullptr : dstates.data(), dgx0.data(), dgU.data(), nullptr,
                      dg.data(), checkpointed ? 4 : 0);
      const double scale = 1e3 * tol();
      EXPECT_LT(rel_err(to_double(dgx0.to_vector()), to_double(gx0)), scale)
          << (checkpointed ? "checkpointed" : "stored");
      EXPECT_LT(rel_err(to_double(dgU.to_vector()), to_double(gU)), scale)
          << (checkpointed ? "checkpointed" : "stored");
    }
  }
};

using GpuParityF32 = GpuParity<float>;
using GpuParityF64 = GpuParity<double>;

TEST_P(GpuParityF32, AllCallsAcrossBatchSizes) {
  SKIP_WITHOUT_GPU();
  for (std::int64_t batch : {1, 7, 128, 129, 1000}) check_all_calls(batch);
}
TEST_P(GpuParityF64, AllCallsAcrossBatchSizes) {
  SKIP_WITHOUT_GPU();
  for (std::int64_t batch : {1, 7, 128, 129, 1000}) check_all_calls(batch);
}
TEST_P(GpuParityF32, MillionPlusBatch) {
  SKIP_WITHOUT_GPU();
  check_all_calls(1000003);
}
TEST_P(GpuParityF32, Rollouts) {
  SKIP_WITHOUT_GPU();
  for (std::int64_t batch : {1, 33, 1000}) check_rollouts(batch, 30);
}
TEST_P(GpuParityF64, Rollouts) {
  SKIP_WITHOUT_GPU();
  for (std::int64_t batch : {1, 33, 1000}) check_rollouts(batch, 30);
}

const auto kCases = ::testing::Combine(
    ::testing::Values("pendulum", "double_pendulum", "cartpole"),
    ::testing::Values(Integrator::euler, Integrator::semi_implicit_euler, Integrator::rk4));

std::string case_name(const ::testing::TestParamInfo<std::tuple<std::string, Integrator>>& info) {
  return std::get<0>(info.param) + "_" + integrator_name(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(Envs, GpuParityF32, kCases, case_name);
INSTANTIATE_TEST_SUITE_P(Envs, GpuParityF64, kCases, case_name);

// work goes on the stream the caller gives: with that stream held shut by a host callback the
// output stays untouched, and appears once the stream is released
TEST(GpuStream, UserStreamIsHonoured) {
  SKIP_WITHOUT_GPU();
#if defined(PHYDREAM_CUDA_EMULATION)
  GTEST_SKIP() << "the CPU emulation (tests/emulation/) runs every call at once: no streams";
#endif
  cudaStream_t stream = nullptr, observer = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaStreamCreateWithFlags(&observer, cudaStreamNonBlocking), cudaSuccess);
  SimulatorOptions o;
  o.backend = Backend::cuda;
  o.stream = stream;
  Simulator<float> sim(o);
  const std::int64_t B = 100000;
  std::vector<float> x(B * 4, 0.5f), u(B * 2, 0.1f);
  Buffer<float> dx(Backend::cuda, x.size(), stream), du(Backend::cuda, u.size(), stream);
  Buffer<float> out(Backend::cuda, x.size(), stream);
  dx.upload(x.data());
  du.upload(u.data());
  sim.synchronize();

  static std::atomic<bool> open{false};
  open = false;
  ASSERT_EQ(cudaLaunchHostFunc(
                stream, [](void*) { while (!open.load()) std::this_thread::yield(); }, nullptr),
            cudaSuccess);
  sim.step(B, dx.data(), du.data(), out.data());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::vector<float> seen(x.size(), -1.0f);
  ASSERT_EQ(cudaMemcpyAsync(seen.data(), out.data(), out.bytes(), cudaMemcpyDeviceToHost,
                            observer),
            cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(observer), cudaSuccess);
  EXPECT_EQ(seen, std::vector<float>(x.size(), 0.0f)) << "the step ran before its stream opened";
  open = true;
  sim.synchronize();
  std::vector<float> expected(x.size());
  SimulatorOptions c;
  c.backend = Backend::cpu;
  Simulator<float> cpu(c);
  cpu.step(B, x.data(), u.data(), expected.data());
  EXPECT_LT(rel_err(to_double(out.to_vector()), to_double(expected)), 1e-5);
  cudaStreamDestroy(observer);
  cudaStreamDestroy(stream);
}

TEST(GpuBuffers, DeviceBufferRoundTrip) {
  SKIP_WITHOUT_GPU();
  Buffer<double> b(Backend::cuda, 1000);
  EXPECT_EQ(b.to_vector(), std::vector<double>(1000, 0.0));
  std::vector<double> v(1000);
  for (int i = 0; i < 1000; ++i) v[i] = i * 0.5;
  b.upload(v.data());
  EXPECT_EQ(b.to_vector(), v);
}

}  // namespace
}  // namespace phydream::testing
