#include "apps/commands.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "apps/io.h"
#include "engine/buffer.h"
#include "engine/errors.h"
#include "engine/simulator.h"
#include "models/envs.h"
#include "training/cpu_gemm.h"

namespace phydream::cli {

namespace {

using Clock = std::chrono::steady_clock;

// parse_backend, with the option named in the message
Backend backend_option(const std::string& name) {
  try {
    return parse_backend(name);
  } catch (const InputError& e) {
    throw InputError(std::string("--backend: ") + e.what());
  }
}

SimulatorOptions simulator_options(const SimArgs& a) {
  SimulatorOptions o;
  if (a.env.empty() == a.model.empty()) {
    throw InputError(a.env.empty() ? "give --env NAME (see `phydream envs`) or --model FILE"
                                   : "give --env or --model, not both");
  }
  if (!a.disable.empty() && a.model.empty()) {
    throw InputError("--disable applies to articulated models; give --model FILE");
  }
  if (!a.model.empty() && !a.params.empty()) {
    throw InputError("--param applies to the built-in environments; edit the model file "
                     "instead");
  }
  o.env = a.env;
  o.model_file = a.model;
  if (a.grad_mode == "ift") {
    o.grad_mode = GradMode::ift;
  } else if (a.grad_mode == "unrolled") {
    o.grad_mode = GradMode::unrolled;
  } else if (a.grad_mode == "fd") {
    o.grad_mode = GradMode::fd;
  } else {
    throw InputError("unknown --grad-mode '" + a.grad_mode + "'; expected ift, unrolled or fd");
  }
  if (o.grad_mode != GradMode::ift && a.model.empty()) {
    throw InputError("--grad-mode " + a.grad_mode + " applies to articulated models, whose "
                     "constraint solver it differentiates; give --model FILE (for central "
                     "differences of a built-in environment: jacobian --mode fd)");
  }
  for (const std::string& flag : a.disable) {
    // "contact,limit" and repeated --disable both work
    std::stringstream list(flag);
    for (std::string one; std::getline(list, one, ',');) {
      if (one.empty()) throw InputError("--disable: empty flag name in '" + flag + "'");
      o.disable.push_back(one);
    }
  }
  for (const std::string& p : a.params) o.params.push_back(parse_param(p));
  try {
    if (!a.integrator.empty()) o.integrator = parse_integrator(a.integrator);
  } catch (const InputError& e) {
    throw InputError(std::string("--integrator: ") + e.what());
  }
  // checked here so the message names the option
  if (a.dt && !(std::isfinite(*a.dt) && *a.dt > 0)) {
    std::ostringstream os;
    os << "--dt " << *a.dt << ": expected a finite timestep > 0 (seconds)";
    throw InputError(os.str());
  }
  o.dt = a.dt;
  o.backend = backend_option(a.backend);
  o.threads = a.threads;
  return o;
}

bool is_f32(const std::string& dtype) {
  if (dtype == "f32") return true;
  if (dtype == "f64") return false;
  throw InputError("unknown --dtype '" + dtype + "'; expected f32 or f64");
}

template <class S>
void announce(const Simulator<S>& sim) {
  std::fprintf(stderr, "phydream: %s, %s, dt %g, %s, backend %s (%s)\n", sim.env().name.c_str(),
               integrator_name(sim.integrator()), sim.dt(),
               sizeof(S) == 4 ? "float32" : "float64", backend_name(sim.backend()),
               sim.backend_reason().c_str());
}

// refuses outputs with NaN/Inf: reports the environments, and nothing is written
template <class S>
void check_outputs_finite(const std::string& name, const std::vector<S>& data, std::int64_t batch,
                          bool allow) {
  if (batch == 0) return;
  const std::int64_t row = static_cast<std::int64_t>(data.size()) / batch;
  std::vector<std::int64_t> bad;
  for (std::int64_t b = 0; b < batch; ++b) {
    for (std::int64_t i = 0; i < row; ++i) {
      if (!std::isfinite(data[static_cast<std::size_t>(b * row + i)])) {
        bad.push_back(b);
        break;
      }
    }
  }
  if (bad.empty()) return;
  std::ostringstream os;
  os << "simulation produced non-finite values in " << bad.size() << " of " << batch
     << " environments in " << name << " (first:";
  for (std::size_t k = 0; k < std::min<std::size_t>(bad.size(), 8); ++k) os << ' ' << bad[k];
  os << ")";
  if (allow) {
    std::fprintf(stderr, "phydream: warning: %s; written anyway (--allow-nonfinite)\n",
                 os.str().c_str());
    return;
  }
  throw std::runtime_error(os.str() +
                           "; nothing written. Use a smaller --dt or check the inputs, or pass "
                           "--allow-nonfinite to write them anyway");
}

// The constraint solver's outcome per environment over a command's calls (Simulator::
// solver_status): the worst flag of each environment so far.
class SolverReport {
 public:
  explicit SolverReport(std::int64_t batch) : worst_(static_cast<std::size_t>(batch), 0) {}

  // after a Simulator call on `batch` environments
  template <class S>
  void add(Simulator<S>& sim, std::int64_t batch) {
    if (batch == 0) return;
    Buffer<std::uint8_t> flags(sim.backend(), static_cast<std::size_t>(batch));
    sim.solver_status(batch, flags.data());
    sim.synchronize();
    const std::vector<std::uint8_t> f = flags.to_vector();
    for (std::size_t b = 0; b < f.size(); ++b) worst_[b] = std::max(worst_[b], f[b]);
  }

  // environments whose solve stopped at the iteration cap: a warning on stderr; a non-finite
  // solve: an error unless allowed (nothing is written then)
  void check(bool allow_nonfinite) const {
    const std::string capped = list(SolveFlag::iteration_cap), bad = list(SolveFlag::nonfinite);
    if (!capped.empty()) {
      std::fprintf(stderr, "phydream: warning: the constraint solver stopped at the model's iteration "
                   "cap before converging in %s; raise <option iterations> or the tolerance\n",
                   capped.c_str());
    }
    if (bad.empty()) return;
    const std::string what = "the constraint solver produced non-finite values in " + bad;
    if (allow_nonfinite) {
      std::fprintf(stderr, "phydream: warning: %s; written anyway (--allow-nonfinite)\n", what.c_str());
      return;
    }
    throw std::runtime_error(what + "; nothing written. Check the states, or pass --allow-nonfinite "
                             "to write the outputs anyway");
  }

 private:
  // "N of B environments (first: i j ...)" with flag f, or empty
  std::string list(SolveFlag f) const {
    std::vector<std::size_t> envs;
    for (std::size_t b = 0; b < worst_.size(); ++b) {
      if (worst_[b] == static_cast<std::uint8_t>(f)) envs.push_back(b);
    }
    if (envs.empty()) return {};
    std::ostringstream os;
    os << envs.size() << " of " << worst_.size() << " environments (first:";
    for (std::size_t k = 0; k < std::min<std::size_t>(envs.size(), 8); ++k) os << ' ' << envs[k];
    os << ")";
    return os.str();
  }

  std::vector<std::uint8_t> worst_;
};

// The cotangent of 1/2 |x|^2 in an articulated model's tangent coordinates [dqpos (nv), dqvel
// (nv)]: hinge and slide coordinates and free-joint positions give themselves; a unit
// quaternion's norm does not change under a rotation, so its rotation-vector part is 0.
template <class S>
void state_norm_cotangent(const Model& m, const S* x, S* g) {
  for (int j = 0; j < m.njnt; ++j) {
    const S* q = x + m.jnt_qposadr[j];
    S* gq = g + m.jnt_dofadr[j];
    switch (static_cast<JointType>(m.jnt_type[j])) {
      case JointType::hinge:
      case JointType::slide: gq[0] = q[0]; break;
      case JointType::ball: gq[0] = gq[1] = gq[2] = S(0); break;
      case JointType::free:
        for (int k = 0; k < 3; ++k) gq[k] = q[k];
        gq[3] = gq[4] = gq[5] = S(0);
        break;
    }
  }
  for (int k = 0; k < m.nv; ++k) g[m.nv + k] = x[m.nq + k];
}

// -------------------------------------------------------------------------------------------
// step

template <class S>
int step_typed(const StepArgs& a) {
  if (a.mode != "fwd" && a.mode != "rev" && a.mode != "analytic" && a.mode != "fd") {
    throw InputError("unknown --mode '" + a.mode + "'; expected fwd, rev, analytic or fd");
  }
  if (!a.jacobian && a.mode != "analytic") {
    throw InputError("--mode " + a.mode + " selects how Jacobians are computed; add --jacobian");
  }
  if (!(std::isfinite(a.fd_eps) && a.fd_eps >= 0)) {
    std::ostringstream os;
    os << "--fd-eps " << a.fd_eps << ": expected a finite relative step >= 0 (0: the default)";
    throw InputError(os.str());
  }
  Simulator<S> sim(simulator_options(a.sim));
  const int nx = sim.nx(), ndx = sim.ndx(), nu = sim.nu();
  const auto x = load_checked<S>("--state", a.state, {Dim::any("B"), Dim::fixed(nx, "nx")});
  const auto u = load_checked<S>("--action", a.action, {Dim::any("B"), Dim::fixed(nu, "nu")});
  check_same_dim("--action", a.action, u, 0, "--state", a.state, x, 0, "batch B");
  const std::int64_t batch = x.shape[0];
  announce(sim);

  const Backend be = sim.backend();
  Buffer<S> bx(be, x.data.size()), bu(be, u.data.size()), bxn(be, x.data.size());
  bx.upload(x.data.data());
  bu.upload(u.data.data());
  OutputDir out(a.out);
  SolverReport solver(batch);
  if (!a.jacobian) {
    sim.step(batch, bx.data(), bu.data(), bxn.data());
    solver.add(sim, batch);
  } else {
    Buffer<S> jx(be, static_cast<std::size_t>(batch * ndx * ndx));
    Buffer<S> ju(be, static_cast<std::size_t>(batch * ndx * nu));
    if (a.mode == "fd") {
      sim.step(batch, bx.data(), bu.data(), bxn.data());
      solver.add(sim, batch);
      sim.jacobian_fd(batch, bx.data(), bu.data(), jx.data(), ju.data(), static_cast<S>(a.fd_eps));
    } else {
      sim.jacobian(batch, bx.data(), bu.data(), bxn.data(), jx.data(), ju.data(),
                   a.mode == "fwd"   ? JacobianMode::forward
                   : a.mode == "rev" ? JacobianMode::reverse
                                     : JacobianMode::analytic);
    }
    solver.add(sim, batch);
    solver.check(a.allow_nonfinite);
    const auto jx_host = jx.to_vector(), ju_host = ju.to_vector();
    check_outputs_finite("jac_state.npy", jx_host, batch, a.allow_nonfinite);
    check_outputs_finite("jac_action.npy", ju_host, batch, a.allow_nonfinite);
    out.add("jac_state.npy", jx_host, {batch, ndx, ndx});
    out.add("jac_action.npy", ju_host, {batch, ndx, nu});
  }
  if (!a.jacobian) solver.check(a.allow_nonfinite);
  const auto xn_host = bxn.to_vector();
  check_outputs_finite("next_state.npy", xn_host, batch, a.allow_nonfinite);
  out.add("next_state.npy", xn_host, {batch, nx});
  out.write();
  return 0;
}

// -------------------------------------------------------------------------------------------
// rollout

template <class S>
int rollout_typed(const RolloutArgs& a) {
  if (a.checkpoint < -1) {
    throw InputError("--checkpoint must be -1 (stored trajectory), 0 (sqrt(T)) or a positive "
                     "interval, got " + std::to_string(a.checkpoint));
  }
  if (a.toi && !a.grad) {
    throw InputError("--toi corrects the gradient of impacts; add --grad");
  }
  if (a.toi && a.checkpoint != -1) {
    throw InputError("--toi needs the stored trajectory (--checkpoint -1, the default), not "
                     "re-simulation from checkpoints");
  }
  if (a.toi && a.sim.model.empty()) {
    throw InputError("--toi applies to articulated models with contact; give --model FILE");
  }
  SimulatorOptions options = simulator_options(a.sim);
  options.toi_correction = a.toi;
  Simulator<S> sim(options);
  const int nx = sim.nx(), nu = sim.nu();
  const auto x0 = load_checked<S>("--state", a.state, {Dim::any("B"), Dim::fixed(nx, "nx")});
  const auto U = load_checked<S>("--actions", a.actions,
                                 {Dim::any("B"), Dim::any("T"), Dim::fixed(nu, "nu")});
  check_same_dim("--actions", a.actions, U, 0, "--state", a.state, x0, 0, "batch B");
  const std::int64_t batch = x0.shape[0], horizon = U.shape[1];
  announce(sim);

  OutputDir out(a.out);
  const Backend be = sim.backend();
  Buffer<S> bx0(be, x0.data.size()), bU(be, U.data.size());
  Buffer<S> states(be, static_cast<std::size_t>(batch * (horizon + 1) * nx));
  bx0.upload(x0.data.data());
  bU.upload(U.data.data());
  sim.rollout(batch, horizon, bx0.data(), bU.data(), states.data());
  SolverReport solver(batch);
  solver.add(sim, batch);
  solver.check(a.allow_nonfinite);
  const auto states_host = states.to_vector();
  check_outputs_finite("states.npy", states_host, batch, a.allow_nonfinite);
  out.add("states.npy", states_host, {batch, horizon + 1, nx});
  if (a.grad) {
    // L = 1/2 sum_b |x_T|^2, so dL/dx_T = x_T, in tangent coordinates
    const int ndx = sim.ndx();
    std::vector<S> g_final(static_cast<std::size_t>(batch * ndx));
    for (std::int64_t b = 0; b < batch; ++b) {
      const S* xT = &states_host[(b * (horizon + 1) + horizon) * nx];
      S* g = &g_final[b * ndx];
      if (sim.model() == nullptr) {
        for (int i = 0; i < nx; ++i) g[i] = xT[i];
      } else {
        state_norm_cotangent(*sim.model(), xT, g);
      }
    }
    Buffer<S> bg(be, g_final.size()), gx0(be, static_cast<std::size_t>(batch * ndx));
    Buffer<S> gU(be, U.data.size());
    bg.upload(g_final.data());
    sim.rollout_vjp(batch, horizon, bx0.data(), bU.data(),
                    a.checkpoint == -1 ? states.data() : nullptr, gx0.data(), gU.data(), nullptr,
                    bg.data(), std::max<std::int64_t>(a.checkpoint, 0));
    const auto gx0_host = gx0.to_vector(), gU_host = gU.to_vector();
    check_outputs_finite("grad_state.npy", gx0_host, batch, a.allow_nonfinite);
    check_outputs_finite("grad_actions.npy", gU_host, batch, a.allow_nonfinite);
    out.add("grad_state.npy", gx0_host, {batch, ndx});
    out.add("grad_actions.npy", gU_host, {batch, horizon, nu});
  }
  out.write();
  return 0;
}

// -------------------------------------------------------------------------------------------
// demo: the README's main job

struct Rate {
  std::string what;
  double per_second = 0;
  double seconds = 0;
  std::int64_t count = 0;
};

template <class S>
std::vector<S> uniform(std::int64_t n, double lo, double hi, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<S> v(static_cast<std::size_t>(n));
  for (S& e : v) e = static_cast<S>(dist(rng));
  return v;
}

// random double-pendulum states: angles in [-pi, pi], angular velocities in [-2, 2] rad/s
template <class S>
std::vector<S> random_states(std::int64_t batch, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> angle(-M_PI, M_PI), rate(-2.0, 2.0);
  std::vector<S> x(static_cast<std::size_t>(batch * 4));
  for (std::int64_t b = 0; b < batch; ++b) {
    x[b * 4 + 0] = static_cast<S>(angle(rng));
    x[b * 4 + 1] = static_cast<S>(angle(rng));
    x[b * 4 + 2] = static_cast<S>(rate(rng));
    x[b * 4 + 3] = static_cast<S>(rate(rng));
  }
  return x;
}

struct Check {
  std::string what;
  double value = 0;
  double tolerance = 0;
  bool ok() const { return value <= tolerance; }
};

// max |a - b| / max(|b|, floor) over all entries
double max_rel_err(const std::vector<double>& a, const std::vector<double>& b, double floor) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, std::abs(a[i] - b[i]) / std::max(std::abs(b[i]), floor));
  }
  return worst;
}

// derivative self-check in float64 on the CPU, and device parity when running on CUDA
template <class S>
std::vector<Check> self_check(const DemoArgs& a, Simulator<S>& sim, std::mt19937_64& rng) {
  constexpr std::int64_t n = 4096;
  constexpr int nx = 4, nu = 2;
  SimulatorOptions o;
  o.env = "double_pendulum";
  o.backend = Backend::cpu;
  o.threads = a.threads;
  Simulator<double> ref(o);
  const auto x = random_states<double>(n, rng);
  const auto u = uniform<double>(n * nu, -1, 1, rng);
  std::vector<double> xn(n * nx), jf(n * nx * nx), jfu(n * nx * nu), jr(n * nx * nx),
      jru(n * nx * nu), jd(n * nx * nx), jdu(n * nx * nu);
  ref.jacobian(n, x.data(), u.data(), xn.data(), jf.data(), jfu.data(), JacobianMode::forward);
  ref.jacobian(n, x.data(), u.data(), nullptr, jr.data(), jru.data(), JacobianMode::reverse);
  ref.jacobian_fd(n, x.data(), u.data(), jd.data(), jdu.data());
  std::vector<Check> checks;
  auto both = [](std::vector<double> a1, const std::vector<double>& a2) {
    a1.insert(a1.end(), a2.begin(), a2.end());
    return a1;
  };
  // relative errors with a floor of 1: step Jacobians are the identity plus O(dt) terms
  checks.push_back({"forward vs reverse Jacobian (max rel diff)",
                    max_rel_err(both(jf, jfu), both(jr, jru), 1.0), 1e-12});
  checks.push_back({"analytic vs central FD Jacobian (max rel err)",
                    max_rel_err(both(jf, jfu), both(jd, jdu), 1.0), 1e-6});

  // adjoint identity <w, J v> = <J^T w, v> through step_jvp and step_vjp
  const auto v = uniform<double>(n * nx, -1, 1, rng), vu = uniform<double>(n * nu, -1, 1, rng);
  const auto w = uniform<double>(n * nx, -1, 1, rng);
  std::vector<double> jv(n * nx), xn2(n * nx), gx(n * nx, 0.0), gu(n * nu, 0.0);
  ref.step_jvp(n, x.data(), u.data(), v.data(), vu.data(), xn2.data(), jv.data());
  ref.step_vjp(n, x.data(), u.data(), gx.data(), gu.data(), w.data());
  double worst = 0;
  for (std::int64_t b = 0; b < n; ++b) {
    double lhs = 0, rhs = 0, scale = 0;
    for (int i = 0; i < nx; ++i) lhs += w[b * nx + i] * jv[b * nx + i];
    for (int i = 0; i < nx; ++i) rhs += gx[b * nx + i] * v[b * nx + i];
    for (int i = 0; i < nu; ++i) rhs += gu[b * nu + i] * vu[b * nu + i];
    for (int i = 0; i < nx; ++i) scale += std::abs(w[b * nx + i] * jv[b * nx + i]);
    worst = std::max(worst, std::abs(lhs - rhs) / std::max(scale, 1e-12));
  }
  checks.push_back({"adjoint identity <w, J v> = <J^T w, v> (max rel err)", worst, 1e-12});

  // the demo's own backend and dtype against the float64 CPU reference
  {
    std::vector<S> xs(x.begin(), x.end()), us(u.begin(), u.end());
    Buffer<S> bx(sim.backend(), xs.size()), bu(sim.backend(), us.size());
    Buffer<S> bjx(sim.backend(), jf.size()), bju(sim.backend(), jfu.size());
    bx.upload(xs.data());
    bu.upload(us.data());
    sim.jacobian(n, bx.data(), bu.data(), nullptr, bjx.data(), bju.data());
    const auto hx = bjx.to_vector(), hu = bju.to_vector();
    std::vector<double> got(hx.begin(), hx.end());
    got.insert(got.end(), hu.begin(), hu.end());
    const double tol = sizeof(S) == 4 ? 1e-3 : 1e-12;
    checks.push_back({std::string(backend_name(sim.backend())) + " " +
                          (sizeof(S) == 4 ? "float32" : "float64") +
                          " Jacobian vs float64 CPU (max rel diff)",
                      max_rel_err(got, both(jf, jfu), 1.0), tol});
  }
  return checks;
}

template <class S>
int demo_typed(const DemoArgs& a) {
  SimulatorOptions o;
  o.env = "double_pendulum";
  o.backend = backend_option(a.backend);
  o.threads = a.threads;
  Simulator<S> sim(o);
  const bool gpu = sim.backend() == Backend::cuda;
  const std::int64_t batch = a.batch > 0 ? a.batch : (gpu ? 4000000 : 100000);
  if (a.steps <= 0) throw InputError("--steps must be > 0, got " + std::to_string(a.steps));
  const int nx = sim.nx(), nu = sim.nu();
  std::mt19937_64 rng(a.seed);

  const auto x_host = random_states<S>(batch, rng);
  const auto u_host = uniform<S>(batch * nu, -1, 1, rng);
  const Backend be = sim.backend();
  Buffer<S> x(be, x_host.size()), u(be, u_host.size()), xn(be, x_host.size());
  Buffer<S> jx(be, static_cast<std::size_t>(batch * nx * nx));
  Buffer<S> ju(be, static_cast<std::size_t>(batch * nx * nu));
  x.upload(x_host.data());
  u.upload(u_host.data());

  // each measurement: one warm-up call, then `steps` timed calls
  auto measure = [&](const std::string& what, auto&& call) {
    call();
    sim.synchronize();
    const auto t0 = Clock::now();
    for (std::int64_t s = 0; s < a.steps; ++s) call();
    sim.synchronize();
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    const std::int64_t count = batch * a.steps;
    return Rate{what, static_cast<double>(count) / secs, secs, count};
  };
  std::vector<Rate> rates;
  // ping-pong the state so the step measured is a real trajectory, not the same inputs
  Buffer<S> xa(be, x_host.size()), xb(be, x_host.size());
  xa.upload(x_host.data());
  bool flip = false;
  rates.push_back(measure("step", [&] {
    sim.step(batch, (flip ? xb : xa).data(), u.data(), (flip ? xa : xb).data());
    flip = !flip;
  }));
  rates.push_back(measure("step + Jacobian (forward)", [&] {
    sim.jacobian(batch, x.data(), u.data(), xn.data(), jx.data(), ju.data(),
                 JacobianMode::forward);
  }));
  rates.push_back(measure("step + Jacobian (reverse)", [&] {
    sim.jacobian(batch, x.data(), u.data(), xn.data(), jx.data(), ju.data(),
                 JacobianMode::reverse);
  }));

  const auto checks = self_check<S>(a, sim, rng);
  bool all_ok = true;
  for (const Check& c : checks) all_ok = all_ok && c.ok();

  if (a.json) {
    nlohmann::json j;
    j["env"] = "double_pendulum";
    j["backend"] = backend_name(sim.backend());
    j["backend_reason"] = sim.backend_reason();
    j["dtype"] = sizeof(S) == 4 ? "float32" : "float64";
    j["batch"] = batch;
    j["steps"] = a.steps;
    for (const Rate& r : rates) {
      j["rates"].push_back({{"what", r.what}, {"per_second", r.per_second},
                            {"seconds", r.seconds}, {"count", r.count}});
    }
    for (const Check& c : checks) {
      j["checks"].push_back(
          {{"what", c.what}, {"value", c.value}, {"tolerance", c.tolerance}, {"ok", c.ok()}});
    }
    j["ok"] = all_ok;
    std::cout << j.dump() << std::endl;
  } else {
    std::printf("PhyDream demo: the seed's double pendulum (section 3.1), explicit Euler, dt %g\n",
                sim.dt());
    std::printf("  backend %s (%s), %s, batch %lld, %lld calls each\n",
                backend_name(sim.backend()), sim.backend_reason().c_str(),
                sizeof(S) == 4 ? "float32" : "float64", static_cast<long long>(batch),
                static_cast<long long>(a.steps));
    std::printf("\nthroughput\n");
    for (const Rate& r : rates) {
      std::printf("  %-28s %12.4g env-steps/s   (%.3f s)\n", r.what.c_str(), r.per_second,
                  r.seconds);
    }
    std::printf("\nderivative self-check (4096 random states)\n");
    for (const Check& c : checks) {
      std::printf("  %-62s %9.2e  (tol %.0e)  %s\n", c.what.c_str(), c.value, c.tolerance,
                  c.ok() ? "ok" : "FAIL");
    }
    std::printf("\n%s\n", all_ok ? "all checks passed" : "SELF-CHECK FAILED");
  }
  return all_ok ? 0 : 1;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

// -------------------------------------------------------------------------------------------
// gradcheck

// one gradient mode's Jacobians against the central-difference reference
struct GradcheckRow {
  std::string mode;
  std::string refused;        // why the mode is unavailable for the model, or empty
  std::vector<double> error;  // per environment: max |J - J_fd| / max(max |J_fd|, 1e-12)
  std::int64_t nonfinite = 0;
  double seconds = 0;
};

template <class S>
std::vector<double> host_jacobians(Simulator<S>& sim, std::int64_t batch, const Buffer<S>& x,
                                   const Buffer<S>& u, JacobianMode mode, bool fd, double eps,
                                   double* seconds) {
  const int ndx = sim.ndx(), nu = sim.nu();
  Buffer<S> jx(sim.backend(), static_cast<std::size_t>(batch * ndx * ndx));
  Buffer<S> ju(sim.backend(), static_cast<std::size_t>(batch * ndx * nu));
  const auto t0 = Clock::now();
  if (fd) {
    sim.jacobian_fd(batch, x.data(), u.data(), jx.data(), ju.data(), static_cast<S>(eps));
  } else {
    sim.jacobian(batch, x.data(), u.data(), nullptr, jx.data(), ju.data(), mode);
  }
  sim.synchronize();
  *seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  // [A | B] per environment, in double
  const auto a = jx.to_vector(), b = ju.to_vector();
  std::vector<double> out(static_cast<std::size_t>(batch * ndx * (ndx + nu)));
  for (std::int64_t e = 0; e < batch; ++e) {
    double* row = out.data() + e * ndx * (ndx + nu);
    for (int i = 0; i < ndx; ++i) {
      for (int j = 0; j < ndx; ++j) row[i * (ndx + nu) + j] = a[(e * ndx + i) * ndx + j];
      for (int j = 0; j < nu; ++j) row[i * (ndx + nu) + ndx + j] = b[(e * ndx + i) * nu + j];
    }
  }
  return out;
}

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5)];
}

template <class S>
int gradcheck_typed(const GradcheckArgs& a) {
  if (a.sim.model.empty()) throw InputError("gradcheck needs --model FILE");
  if (a.sim.grad_mode != "ift") {
    throw InputError("gradcheck compares every gradient mode; --grad-mode does not apply");
  }
  if (!(std::isfinite(a.fd_eps) && a.fd_eps >= 0)) {
    std::ostringstream os;
    os << "--fd-eps " << a.fd_eps << ": expected a finite relative step >= 0 (0: the default)";
    throw InputError(os.str());
  }
  SimulatorOptions base = simulator_options(a.sim);
  Simulator<S> ref(base);
  const int nx = ref.nx(), ndx = ref.ndx(), nu = ref.nu();
  const auto x = load_checked<S>("--states", a.states, {Dim::any("B"), Dim::fixed(nx, "nx")});
  const auto u = load_checked<S>("--actions", a.actions, {Dim::any("B"), Dim::fixed(nu, "nu")});
  check_same_dim("--actions", a.actions, u, 0, "--states", a.states, x, 0, "batch B");
  const std::int64_t batch = x.shape[0];
  if (batch == 0) throw InputError("--states: no states (B = 0)");
  announce(ref);
  const Backend be = ref.backend();
  Buffer<S> bx(be, x.data.size()), bu(be, u.data.size());
  bx.upload(x.data.data());
  bu.upload(u.data.data());

  double fd_seconds = 0;
  const std::vector<double> jfd = host_jacobians(ref, batch, bx, bu, JacobianMode::forward, true, a.fd_eps, &fd_seconds);
  const std::size_t per = static_cast<std::size_t>(ndx * (ndx + nu));

  struct Spec {
    const char* name;
    GradMode grad;
    JacobianMode mode;
  };
  const Spec specs[] = {{"ift (forward sweeps)", GradMode::ift, JacobianMode::forward},
                        {"ift (reverse sweeps)", GradMode::ift, JacobianMode::reverse},
                        {"unrolled", GradMode::unrolled, JacobianMode::forward}};
  std::vector<GradcheckRow> rows;
  for (const Spec& sp : specs) {
    GradcheckRow r;
    r.mode = sp.name;
    SimulatorOptions o = base;
    o.grad_mode = sp.grad;
    try {
      Simulator<S> sim(o);
      const std::vector<double> j = host_jacobians(sim, batch, bx, bu, sp.mode, false, 0, &r.seconds);
      for (std::int64_t e = 0; e < batch; ++e) {
        double err = 0, scale = 0;
        bool finite = true;
        for (std::size_t k = 0; k < per; ++k) {
          const double v = j[e * per + k], w = jfd[e * per + k];
          finite = finite && std::isfinite(v);
          err = std::max(err, std::abs(v - w));
          scale = std::max(scale, std::abs(w));
        }
        if (!finite) {
          ++r.nonfinite;
          continue;
        }
        r.error.push_back(err / std::max(scale, 1e-12));
      }
    } catch (const InputError& e) {
      r.refused = e.what();
    }
    rows.push_back(r);
  }

  if (a.json) {
    nlohmann::json out;
    out["model"] = a.sim.model;
    out["batch"] = batch;
    out["dtype"] = sizeof(S) == 4 ? "f32" : "f64";
    out["reference"] = "central differences (Simulator::jacobian_fd)";
    out["reference_seconds"] = fd_seconds;
    for (const GradcheckRow& r : rows) {
      nlohmann::json m;
      m["mode"] = r.mode;
      if (!r.refused.empty()) {
        m["refused"] = r.refused;
      } else {
        m["median_rel_error"] = quantile(r.error, 0.5);
        m["p90_rel_error"] = quantile(r.error, 0.9);
        m["max_rel_error"] = r.error.empty() ? 0.0 : *std::max_element(r.error.begin(), r.error.end());
        m["nonfinite_envs"] = r.nonfinite;
        m["seconds"] = r.seconds;
      }
      out["modes"].push_back(m);
    }
    std::cout << out.dump() << "\n";
    return 0;
  }
  std::printf("Jacobians [A | B] of %lld states against central differences (%.3g s), per "
              "environment max |J - J_fd| / max |J_fd|:\n",
              static_cast<long long>(batch), fd_seconds);
  std::printf("  %-22s %11s %11s %11s %9s %10s\n", "mode", "median", "p90", "max", "nonfinite", "seconds");
  for (const GradcheckRow& r : rows) {
    if (!r.refused.empty()) {
      std::printf("  %-22s refused: %s\n", r.mode.c_str(), r.refused.c_str());
      continue;
    }
    std::printf("  %-22s %11.3e %11.3e %11.3e %9lld %10.3g\n", r.mode.c_str(), quantile(r.error, 0.5),
                quantile(r.error, 0.9),
                r.error.empty() ? 0.0 : *std::max_element(r.error.begin(), r.error.end()),
                static_cast<long long>(r.nonfinite), r.seconds);
  }
  std::printf("(central differences carry their own error, about sqrt(machine epsilon) relative, and "
              "are wrong where a contact row switches state within the step)\n");
  return 0;
}

int run_gradcheck(const GradcheckArgs& a) {
  return is_f32(a.sim.dtype) ? gradcheck_typed<float>(a) : gradcheck_typed<double>(a);
}

int run_envs(bool json) {
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const EnvInfo& e : environments()) {
      nlohmann::json params = nlohmann::json::object();
      for (const ParamInfo& p : e.params) params[p.name] = p.default_value;
      out.push_back({{"name", e.name}, {"description", e.description}, {"nq", e.nq},
                     {"nx", e.nx}, {"nu", e.nu}, {"dt", e.dt},
                     {"integrator", integrator_name(e.integrator)}, {"state", e.state_names},
                     {"action", e.action_names}, {"params", params},
                     {"state_low", e.state_low}, {"state_high", e.state_high},
                     {"action_low", e.action_low}, {"action_high", e.action_high}});
    }
    std::cout << out.dump(2) << std::endl;
    return 0;
  }
  for (const EnvInfo& e : environments()) {
    std::printf("%s\n  %s\n  nx %d, nu %d, dt %g, integrator %s\n", e.name.c_str(),
                e.description.c_str(), e.nx, e.nu, e.dt, integrator_name(e.integrator));
    std::string state, action;
    for (const auto& s : e.state_names) state += (state.empty() ? "" : ", ") + s;
    for (const auto& s : e.action_names) action += (action.empty() ? "" : ", ") + s;
    std::printf("  state [%s], action [%s]\n  params:", state.c_str(), action.c_str());
    for (const ParamInfo& p : e.params) std::printf(" %s=%g", p.name.c_str(), p.default_value);
    std::printf("\n\n");
  }
  return 0;
}

int run_info() {
  std::string reason;
  const Backend auto_backend = resolve_backend(Backend::automatic, &reason);
  std::printf("CUDA kernels compiled: %s\n", cuda_compiled() ? "yes" : "no");
  std::printf("CUDA devices visible:  %d (%s)\n", cuda_device_count(),
              cuda_device_description().c_str());
  std::printf("--backend auto:        %s (%s)\n", backend_name(auto_backend), reason.c_str());
  std::string supported;
  for (training::CpuIsa isa : {training::CpuIsa::baseline, training::CpuIsa::avx2, training::CpuIsa::avx512}) {
    if (!training::cpu_isa_supported(isa)) continue;
    supported += supported.empty() ? "" : ", ";
    supported += training::cpu_isa_name(isa);
  }
  std::printf("CPU trainer products:  %s (supported here: %s; PHYDREAM_CPU_ISA chooses)\n",
              training::cpu_isa_name(training::cpu_isa()), supported.c_str());
  return 0;
}

int run_step(const StepArgs& a) {
  return is_f32(a.sim.dtype) ? step_typed<float>(a) : step_typed<double>(a);
}

int run_rollout(const RolloutArgs& a) {
  return is_f32(a.sim.dtype) ? rollout_typed<float>(a) : rollout_typed<double>(a);
}

int run_demo(const DemoArgs& a) {
  if (a.batch < 0) {
    throw InputError("--batch must be > 0 (or 0 for the default), got " + std::to_string(a.batch));
  }
  return is_f32(a.dtype) ? demo_typed<float>(a) : demo_typed<double>(a);
}

}  // namespace phydream::cli
