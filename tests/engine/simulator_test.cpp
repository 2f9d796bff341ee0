// The public Simulator API on the CPU backend: the registry and option validation, batched calls
// equal to the per-environment functions, thread-count independence, argument checks, and
// non-finite detection.
#include "engine/simulator.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "engine/buffer.h"
#include "engine/errors.h"
#include "engine/rollout.h"
#include "models/envs.h"
#include "test_util.h"

namespace phydream::testing {
namespace {

template <class Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(Registry, ListsTheClosedFormEnvironments) {
  std::vector<std::string> names;
  for (const EnvInfo& e : environments()) {
    names.push_back(e.name);
    EXPECT_EQ(e.nx, 2 * e.nq) << e.name;
    EXPECT_EQ(static_cast<int>(e.state_names.size()), e.nx) << e.name;
    EXPECT_EQ(static_cast<int>(e.action_names.size()), e.nu) << e.name;
    EXPECT_GT(e.dt, 0) << e.name;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"pendulum", "double_pendulum", "cartpole"}));
  EXPECT_EQ(find_env("cartpole").nu, 1);
}

TEST(Registry, UnknownEnvironmentNamesTheKnownOnes) {
  const std::string msg = error_of([] { find_env("tripple_pendulum"); });
  EXPECT_NE(msg.find("unknown environment 'tripple_pendulum'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("double_pendulum"), std::string::npos) << msg;
  EXPECT_THROW(find_env("x"), InputError);
}

TEST(Options, ParametersAreValidated) {
  SimulatorOptions o;
  o.backend = Backend::cpu;
  o.env = "pendulum";
  o.params = {{"lenght", 1.0}};
  std::string msg = error_of([&] { resolve_config(o); });
  EXPECT_NE(msg.find("unknown parameter 'lenght'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("mass, length, gravity, damping"), std::string::npos) << msg;

  o.params = {{"mass", 0.0}};
  msg = error_of([&] { resolve_config(o); });
  EXPECT_NE(msg.find("must be a finite value > 0, got 0"), std::string::npos) << msg;

  o.params = {{"damping", -0.5}};
  msg = error_of([&] { resolve_config(o); });
  EXPECT_NE(msg.find("must be a finite value >= 0"), std::string::npos) << msg;

  o.params = {{"gravity", std::nan("")}};
  EXPECT_THROW(resolve_config(o), InputError);

  o.params = {{"gravity", -3.0}, {"damping", 0.0}};  // any finite gravity is allowed
  const EngineConfig c = resolve_config(o);
  EXPECT_EQ(c.params, (std::vector<double>{1.0, 1.0, -3.0, 0.0}));
}

TEST(Options, TimestepIntegratorAndThreadsAreValidated) {
  SimulatorOptions o;
  o.backend = Backend::cpu;
  for (double dt : {0.0, -0.1, std::nan(""), double(INFINITY)}) {
    o.dt = dt;
    EXPECT_THROW(resolve_config(o), InputError) << dt;
  }
  o.dt = 0.01;
  o.integrator = Integrator::rk4;
  const EngineConfig c = resolve_config(o);
  EXPECT_EQ(c.dt, 0.01);
  EXPECT_EQ(c.integrator, Integrator::rk4);
  o.threads = -1;
  EXPECT_THROW(resolve_config(o), InputError);
  EXPECT_THROW(parse_integrator("leapfrog"), InputError);
  EXPECT_THROW(parse_backend("gpu"), InputError);
  EXPECT_EQ(parse_integrator("semi_implicit_euler"), Integrator::semi_implicit_euler);
}

TEST(Backends, CudaRequestedWithoutDeviceIsAClearError) {
  if (cuda_device_count() > 0) GTEST_SKIP() << "a CUDA device is visible";
  SimulatorOptions o;
  o.backend = Backend::cuda;
  const std::string msg = error_of([&] { Simulator<float> sim(o); });
  EXPECT_NE(msg.find("backend 'cuda' requested"), std::string::npos) << msg;
  EXPECT_THROW(Simulator<float>{o}, BackendError);
  // auto falls back to the CPU and says why
  o.backend = Backend::automatic;
  Simulator<float> sim(o);
  EXPECT_EQ(sim.backend(), Backend::cpu);
  EXPECT_FALSE(sim.backend_reason().empty());
}

// ---------------------------------------------------------------------------------------------
// batched calls against the per-environment functions

template <class C>
class Batched : public ::testing::Test {
 protected:
  using Model = typename C::Model;
  using S = typename C::Scalar;
  static constexpr Integrator I = C::integrator;
  static constexpr int nx = Model::nx, nu = Model::nu;
  static constexpr std::int64_t B = 300;  // several threads' worth, not a multiple of anything

  std::string env_name() const {
    if constexpr (std::is_same_v<Model, models::Pendulum<S>>) return "pendulum";
    if constexpr (std::is_same_v<Model, models::DoublePendulum<S>>) return "double_pendulum";
    return "cartpole";
  }
  Simulator<S> make(int threads = 0) const {
    SimulatorOptions o;
    o.env = env_name();
    o.backend = Backend::cpu;
    o.integrator = I;
    o.threads = threads;
    o.dt = default_dt<Model>();
    const auto values = test_param_values<Model>();
    const EnvInfo& e = find_env(o.env);
    for (std::size_t k = 0; k < values.size(); ++k) o.params.push_back({e.params[k].name, values[k]});
    return Simulator<S>(o);
  }
  typename Model::Params p = default_params<Model>();
  S h = static_cast<S>(default_dt<Model>());
  std::vector<S> x, u;

  void SetUp() override {
    std::mt19937_64 rng(5);
    double xs[nx], us[nu];
    for (std::int64_t b = 0; b < B; ++b) {
      random_input<Model>(rng, xs, us);
      x.insert(x.end(), xs, xs + nx);
      u.insert(u.end(), us, us + nu);
    }
  }
};

TYPED_TEST_SUITE(Batched, AllCases, CaseNames);

TYPED_TEST(Batched, EveryCallEqualsThePerEnvironmentFunctions) {
  using S = typename TestFixture::S;
  using Model = typename TestFixture::Model;
  constexpr int nx = TestFixture::nx, nu = TestFixture::nu;
  constexpr Integrator I = TestFixture::I;
  constexpr std::int64_t B = TestFixture::B;
  auto sim = this->make();
  const S* x = this->x.data();
  const S* u = this->u.data();
  std::vector<S> xn(B * nx), dxn(B * nx), jx(B * nx * nx), ju(B * nx * nu);
  std::vector<S> gx(B * nx, S(1)), gu(B * nu, S(1));  // non-zero: VJP accumulates
  sim.step(B, x, u, xn.data());
  sim.step_vjp(B, x, u, gx.data(), gu.data(), x);  // the state itself as cotangent
  for (std::int64_t b = 0; b < B; ++b) {
    S ref[nx], rgx[nx], rgu[nu];
    step<I, Model>(this->p, this->h, x + b * nx, u + b * nu, ref);
    for (int i = 0; i < nx; ++i) ASSERT_EQ(xn[b * nx + i], ref[i]);
    for (S& e : rgx) e = S(1);
    for (S& e : rgu) e = S(1);
    step_vjp<I, Model>(this->p, this->h, x + b * nx, u + b * nu, rgx, rgu, x + b * nx);
    for (int i = 0; i < nx; ++i) ASSERT_EQ(gx[b * nx + i], rgx[i]);
    for (int i = 0; i < nu; ++i) ASSERT_EQ(gu[b * nu + i], rgu[i]);
  }
  sim.step_jvp(B, x, u, x, u, xn.data(), dxn.data());  // (x, u) as the tangent
  for (std::int64_t b = 0; b < B; ++b) {
    S rxn[nx], rdxn[nx];
    step_jvp<I, Model>(this->p, this->h, x + b * nx, u + b * nu, x + b * nx, u + b * nu, rxn, rdxn);
    for (int i = 0; i < nx; ++i) ASSERT_EQ(dxn[b * nx + i], rdxn[i]);
  }
  for (JacobianMode mode : {JacobianMode::forward, JacobianMode::reverse}) {
    sim.jacobian(B, x, u, xn.data(), jx.data(), ju.data(), mode);
    for (std::int64_t b = 0; b < B; ++b) {
      S rxn[nx], rjx[nx * nx], rju[nx * nu];
      if (mode == JacobianMode::forward) {
        jacobian_fwd<I, Model>(this->p, this->h, x + b * nx, u + b * nu, rxn, rjx, rju);
      } else {
        jacobian_rev<I, Model>(this->p, this->h, x + b * nx, u + b * nu, rxn, rjx, rju);
      }
      for (int i = 0; i < nx; ++i) ASSERT_EQ(xn[b * nx + i], rxn[i]);
      for (int i = 0; i < nx * nx; ++i) ASSERT_EQ(jx[b * nx * nx + i], rjx[i]);
      for (int i = 0; i < nx * nu; ++i) ASSERT_EQ(ju[b * nx * nu + i], rju[i]);
    }
  }
}

TYPED_TEST(Batched, FiniteDifferenceJacobianIsCloseToAnalytic) {
  using S = typename TestFixture::S;
  constexpr int nx = TestFixture::nx, nu = TestFixture::nu;
  constexpr std::int64_t B = TestFixture::B;
  auto sim = this->make();
  std::vector<S> jx(B * nx * nx), ju(B * nx * nu), fx(B * nx * nx), fu(B * nx * nu);
  sim.jacobian(B, this->x.data(), this->u.data(), nullptr, jx.data(), ju.data());
  sim.jacobian_fd(B, this->x.data(), this->u.data(), fx.data(), fu.data());
  // float central differences at eps = 1e-3 carry O(eps^2) truncation and O(1e-4) rounding
  const double tol = sizeof(S) == 4 ? 5e-2 : 1e-7;
  EXPECT_LT(rel_err(to_double(fx), to_double(jx)), tol);
  EXPECT_LT(rel_err(to_double(fu), to_double(ju)), tol);
  EXPECT_NE(fx, jx);
}

TYPED_TEST(Batched, ResultsDoNotDependOnThreadCount) {
  using S = typename TestFixture::S;
  constexpr int nx = TestFixture::nx, nu = TestFixture::nu;
  constexpr std::int64_t B = TestFixture::B;
  auto one = this->make(1), many = this->make(3);
  std::vector<S> j1(B * nx * nx), j3(B * nx * nx), u1(B * nx * nu), u3(B * nx * nu);
  one.jacobian(B, this->x.data(), this->u.data(), nullptr, j1.data(), u1.data());
  many.jacobian(B, this->x.data(), this->u.data(), nullptr, j3.data(), u3.data());
  EXPECT_EQ(j1, j3);
  EXPECT_EQ(u1, u3);
}

TYPED_TEST(Batched, RolloutVjpCheckpointedEqualsStored) {
  using S = typename TestFixture::S;
  constexpr int nx = TestFixture::nx, nu = TestFixture::nu;
  constexpr std::int64_t B = TestFixture::B, T = 23;
  auto sim = this->make(2);
  // gentle initial states: explicit Euler at the seed's dt = 0.1 makes fast double-pendulum
  // states diverge within 20 steps, and NaN would compare unequal to itself
  std::vector<S> x0 = this->x;
  for (S& e : x0) e *= S(0.25);
  std::vector<S> U(B * T * nu);
  for (std::size_t k = 0; k < U.size(); ++k) U[k] = S(0.1) * this->u[k % this->u.size()];
  std::vector<S> states(B * (T + 1) * nx), g_final(B * nx);
  sim.rollout(B, T, x0.data(), U.data(), states.data());
  for (std::int64_t b = 0; b < B; ++b) {
    for (int i = 0; i < nx; ++i) g_final[b * nx + i] = states[(b * (T + 1) + T) * nx + i];
  }
  std::vector<std::uint8_t> flags(B);
  sim.nonfinite_rows(B, (T + 1) * nx, states.data(), flags.data());
  ASSERT_EQ(std::count(flags.begin(), flags.end(), 1), 0);
  std::vector<S> gx_a(B * nx, S(0)), gU_a(B * T * nu, S(0)), gx_b(B * nx, S(0)),
      gU_b(B * T * nu, S(0));
  sim.rollout_vjp(B, T, x0.data(), U.data(), states.data(), gx_a.data(), gU_a.data(), nullptr,
                  g_final.data());
  sim.rollout_vjp(B, T, x0.data(), U.data(), nullptr, gx_b.data(), gU_b.data(), nullptr,
                  g_final.data(), 0);
  EXPECT_EQ(gx_a, gx_b);
  EXPECT_EQ(gU_a, gU_b);
}

// ---------------------------------------------------------------------------------------------
// argument checks and non-finite detection

TEST(Arguments, AreCheckedAtTheBoundary) {
  SimulatorOptions o;
  o.backend = Backend::cpu;
  Simulator<double> sim(o);
  std::vector<double> x(4), u(2), xn(4);
  EXPECT_THROW(sim.step(-1, x.data(), u.data(), xn.data()), InputError);
  const std::string msg = error_of([&] { sim.step(1, nullptr, u.data(), xn.data()); });
  EXPECT_NE(msg.find("Simulator::step: x is null"), std::string::npos) << msg;
  EXPECT_NO_THROW(sim.step(0, nullptr, nullptr, nullptr));  // nothing to do
  EXPECT_THROW(sim.rollout(1, -2, x.data(), u.data(), xn.data()), InputError);
  EXPECT_THROW(sim.jacobian_fd(1, x.data(), u.data(), xn.data(), xn.data(), -1.0), InputError);
  EXPECT_THROW(sim.rollout_vjp(1, 1, x.data(), u.data(), nullptr, xn.data(), u.data(), nullptr,
                               nullptr, -3),
               InputError);
}

TEST(NonFinite, RowsAreFlaggedPerEnvironment) {
  SimulatorOptions o;
  o.backend = Backend::cpu;
  Simulator<float> sim(o);
  const std::int64_t B = 500;
  std::vector<float> data(B * 4, 1.0f);
  data[7 * 4 + 2] = NAN;
  data[300 * 4 + 0] = -INFINITY;
  data[499 * 4 + 3] = INFINITY;
  std::vector<std::uint8_t> flags(B, 9);
  sim.nonfinite_rows(B, 4, data.data(), flags.data());
  for (std::int64_t b = 0; b < B; ++b) {
    EXPECT_EQ(flags[b], (b == 7 || b == 300 || b == 499) ? 1 : 0) << b;
  }
}

// long random rollouts of the stable schemes stay finite, and so do their Jacobians along them
TEST(NonFinite, LongRandomRolloutsStayFinite) {
  const std::int64_t B = 256, T = 2000;
  for (const char* env : {"pendulum", "double_pendulum", "cartpole"}) {
    for (Integrator integ : {Integrator::semi_implicit_euler, Integrator::rk4}) {
      SimulatorOptions o;
      o.env = env;
      o.backend = Backend::cpu;
      o.integrator = integ;
      o.dt = find_env(env).dt / 5;  // well inside the stability region of both schemes
      Simulator<float> sim(o);
      const int nx = sim.nx(), nu = sim.nu();
      std::mt19937_64 rng(11);
      std::uniform_real_distribution<float> dist(-1, 1);
      std::vector<float> x0(B * nx), U(B * T * nu), states(B * (T + 1) * nx);
      for (float& v : x0) v = dist(rng);
      for (float& v : U) v = dist(rng);
      sim.rollout(B, T, x0.data(), U.data(), states.data());
      std::vector<std::uint8_t> flags(B);
      sim.nonfinite_rows(B, (T + 1) * nx, states.data(), flags.data());
      for (std::int64_t b = 0; b < B; ++b) ASSERT_EQ(flags[b], 0) << env << " env " << b;
      // Jacobians at every 100th state of every trajectory
      for (std::int64_t t = 0; t < T; t += 100) {
        std::vector<float> xt(B * nx), ut(B * nu), jx(B * nx * nx), ju(B * nx * nu);
        for (std::int64_t b = 0; b < B; ++b) {
          for (int i = 0; i < nx; ++i) xt[b * nx + i] = states[(b * (T + 1) + t) * nx + i];
          for (int i = 0; i < nu; ++i) ut[b * nu + i] = U[(b * T + t) * nu + i];
        }
        sim.jacobian(B, xt.data(), ut.data(), nullptr, jx.data(), ju.data());
        sim.nonfinite_rows(B, nx * nx, jx.data(), flags.data());
        for (std::int64_t b = 0; b < B; ++b) ASSERT_EQ(flags[b], 0) << env << " t " << t;
      }
    }
  }
}

TEST(Buffers, HostBufferRoundTrip) {
  Buffer<double> b(Backend::cpu, 5);
  EXPECT_EQ(b.to_vector(), std::vector<double>(5, 0.0));
  const std::vector<double> v = {1, 2, 3, 4, 5};
  b.upload(v.data());
  EXPECT_EQ(b.to_vector(), v);
  b.zero();
  EXPECT_EQ(b.to_vector(), std::vector<double>(5, 0.0));
  if (cuda_device_count() == 0) {
    EXPECT_THROW(Buffer<float>(Backend::cuda, 3), BackendError);
  }
}

}  // namespace
}  // namespace phydream::testing
