// contact_grad_bench: how good are gradients through contact (issue 4)? Three measurements, float64,
// CPU, every PhyDream gradient mode (GradMode: ift, unrolled, fd) beside MuJoCo 2.2.2's centered
// mjd_transitionFD as a peer (what a MuJoCo user would get):
//
//   1. events: bounce.xml and two_balls.xml, whose perfectly elastic answers are known. The
//      gradient of the final position (after a horizon containing the whole contact) with respect
//      to the initial position and velocity, by rollout_vjp in each mode, by central differences
//      of the whole rollout, and by MuJoCo's step Jacobians chained along its own trajectory,
//      against the analytic gradient and against the soft model's own closed-form prediction
//      (a linear spring in constraint space: contact lasts tau = pi / sqrt(k_eff)). Swept over
//      timestep and contact stiffness (solref in its direct form, -k), and over the phase of the
//      first contacting step within a timestep.
//   2. states: >= 1000 random states in contact per model (Finger, half-cheetah), sampled from
//      rollouts under random controls; one-step Jacobians [A | B] per mode and MuJoCo's, against
//      a reference (central differences with the solver run to machine precision): relative
//      error distribution, NaN/Inf counts, largest norms; and time per Jacobian on one thread as
//      a ratio to MuJoCo's mjd_transitionFD timed in the same run.
//   3. solver: the same states under looser tolerances and fewer iterations: how far each mode's
//      Jacobian moves from the reference, and whether the unrolled Jacobian is the derivative of
//      the truncated solver (against central differences at the same settings).
//
// stdout: one JSON line per measurement; --out DIR also writes DIR/contact_gradients.json (every
// line, plus the per-state errors behind the distributions), which scripts/plot_contact_grads.py
// turns into plots and tables (docs/contact_gradients.md).
#include <omp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "engine/backend.h"
#include "engine/errors.h"
#include "engine/model.h"
#include "engine/model_json.h"
#include "engine/simulator.h"

#if defined(PHYDREAM_WITH_MUJOCO)
#include "bench/mujoco_util.h"
#endif

#ifndef PHYDREAM_ASSETS_DIR
#define PHYDREAM_ASSETS_DIR "assets"
#endif

namespace {

using namespace phydream::bench;
using phydream::Backend;
using phydream::GradMode;
using phydream::JacobianMode;
using phydream::Model;
using phydream::Simulator;
using nlohmann::json;

constexpr double kPi = 3.14159265358979323846;

struct Options {
  std::vector<std::string> parts = {"events", "states", "solver", "timing"};
  std::vector<std::string> modes = {"ift", "unrolled", "fd"};
  std::vector<double> dts = {1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2};
  std::vector<double> stiffnesses = {2e3, 2e4, 2e5, 2e6};
  int phase_sweep = 40;         // phases of the phase sweep: 0 and (j + 0.5) / n, j < n
  double phase = 0.5;           // where in a timestep the first contact falls (grid sweeps)
  int grid_phases = 16;         // grid: the IFT gradient also averaged over this many phases
  double dt0 = 1e-3;            // the fixed dt of the stiffness sweep and the phase sweep
  double k0 = 2e4;              // the fixed stiffness of the dt sweep and the phase sweep
  std::vector<std::string> models = {"finger", "half_cheetah"};
  int states = 1000;            // contact states per model
  int sweep_states = 200;       // of those, used by the solver-settings sweep
  int timing_states = 200;      // of those, used for timing
  double fd_eps = 1e-6;         // PhyDream's relative central-difference step (fd mode's own)
  double mj_eps = 1e-6;         // mjd_transitionFD's step
  double min_time = 0.3;
  int repeats = 3;
  std::int64_t robust_envs = 1000;   // robustness: environments per model
  std::int64_t robust_steps = 1000;  // robustness: steps per environment
  std::uint64_t seed = 1;
  bool mujoco = true;
  std::string out;
};

std::vector<json> g_lines;  // every line printed, for --out

void emit(const json& j) {
  std::cout << j.dump() << std::endl;
  g_lines.push_back(j);
}

void note(const std::string& what) { std::cerr << "contact_grad_bench: " << what << std::endl; }

bool has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

GradMode parse_mode(const std::string& s) {
  if (s == "ift") return GradMode::ift;
  if (s == "unrolled") return GradMode::unrolled;
  if (s == "fd") return GradMode::fd;
  throw phydream::InputError("--modes: unknown mode '" + s + "' (ift, unrolled, fd)");
}

std::string asset(const std::string& name) {
  return name.find('/') != std::string::npos || name.find(".xml") != std::string::npos
             ? name
             : std::string(PHYDREAM_ASSETS_DIR) + "/" + name + ".xml";
}

std::unique_ptr<Simulator<double>> make_sim(const Model& model, GradMode mode, int threads,
                                            const std::vector<std::string>& disable = {},
                                            bool toi = false) {
  phydream::SimulatorOptions so;
  so.model = std::make_shared<const Model>(model);
  so.backend = Backend::cpu;
  so.threads = threads;
  so.grad_mode = mode;
  so.disable = disable;
  so.toi_correction = toi;
  return std::make_unique<Simulator<double>>(so);
}

// a finite number, or null in JSON (nlohmann writes NaN and Inf as null anyway; say it plainly)
json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

// ---------------------------------------------------------------------------------------------
// errors and their distributions

// max |a - r| / max |r| over n entries; +Inf when a has a non-finite entry
double rel_error(const double* a, const double* r, std::size_t n) {
  double num_ = 0, den = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    num_ = std::max(num_, std::abs(a[i] - r[i]));
    den = std::max(den, std::abs(r[i]));
  }
  return num_ / std::max(den, 1e-300);
}

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const std::size_t lo = static_cast<std::size_t>(pos);
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

// summary of per-state errors: non-finite ones counted apart, quantiles of the finite ones
json summarize(const std::vector<double>& errors) {
  std::vector<double> finite;
  int nonfinite = 0;
  for (double e : errors) {
    if (std::isfinite(e)) {
      finite.push_back(e);
    } else {
      ++nonfinite;
    }
  }
  json s;
  s["n"] = errors.size();
  s["nonfinite"] = nonfinite;
  s["median"] = num(quantile(finite, 0.5));
  s["p90"] = num(quantile(finite, 0.9));
  s["p99"] = num(quantile(finite, 0.99));
  s["max"] = finite.empty() ? json(nullptr) : num(*std::max_element(finite.begin(), finite.end()));
  for (double t : {1e-6, 1e-3, 1e-1}) {
    const auto above = std::count_if(errors.begin(), errors.end(), [t](double e) { return !(e <= t); });
    std::ostringstream key;
    key << "frac_above_" << t;
    s[key.str()] = errors.empty() ? 0.0 : static_cast<double>(above) / static_cast<double>(errors.size());
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// MuJoCo, the peer

#if defined(PHYDREAM_WITH_MUJOCO)
// d <- (x, u) with time 0 and the solver's warm start 0, as PhyDream starts every step (d was
// reset once when made; mj_resetData per state would clear MuJoCo's whole arena every time)
void mj_load(const mjModel* m, mjData* d, const double* x, const double* u) {
  d->time = 0;
  mju_copy(d->qpos, x, m->nq);
  mju_copy(d->qvel, x + m->nq, m->nv);
  if (m->nu > 0 && u != nullptr) mju_copy(d->ctrl, u, m->nu);
  mju_zero(d->qacc_warmstart, m->nv);
}
#endif

// ---------------------------------------------------------------------------------------------
// 1. events with an analytic answer

// One gradient entry d x_T[row] / d x0[col] (tangent indices), the state entry that col
// perturbs (for differences of the whole rollout), its name and its elastic value for horizon T.
struct Entry {
  int row, col, xidx;
  std::string name;
  double (*elastic)(double T);
};

struct EventCase {
  std::string name;
  double horizon;  // T, s
  std::vector<Entry> entries;
  // the contact row's A = J M^-1 J^T and MuJoCo's diagApprox of it (body_invweight0 sums): the
  // regulariser R = (1 - imp) / imp diagApprox makes the row's effective impedance
  // A / (A + R), so its constraint-space stiffness is k_eff = k (A / (A + R)) / imp
  double row_a, row_diag;
  // the soft model's gradient if the contact were a linear spring of duration tau
  std::vector<double> (*soft)(double T, double tau);
};

// bounce: ball of radius 0.1 from z0 with velocity vz0 < 0 hits the floor at t_hit =
// (z0 - 0.1) / -vz0; mirrored, z_T = 0.1 - vz0 (T - t_hit) = 0.2 - z0 - vz0 T. A spring contact
// of duration tau delays the exit by tau: z_T = 0.2 - z0 - vz0 (T - tau)
const EventCase kBounce = {
    "bounce",
    0.3,
    {{2, 2, 2, "dz_T/dz0", [](double) { return -1.0; }},
     {2, 8, 7 + 2, "dz_T/dvz0", [](double T) { return -T; }},
     {0, 0, 0, "dx_T/dx0", [](double) { return 1.0; }},
     {0, 6, 7 + 0, "dx_T/dvx0", [](double T) { return T; }}},
    1.0,  // sphere on a plane, normal through the centre: A = 1 / m = 1
    1.0,  // body_invweight0 (translation) of a free body of mass 1
    [](double T, double tau) { return std::vector<double>{-1.0, -(T - tau), 1.0, T}; }};

// two balls: equal masses swap velocities; x2_T = x2_0 + u0 t_c + v0 (T - t_c), t_c = gap /
// (v0 - u0). A spring contact of duration tau moves the centre of mass at (v0 + u0) / 2 while it
// lasts: x2_T = ... + (v0 + u0) tau / 2 - v0 tau, whose gradient is (1, 0, T - tau/2, tau/2)
const EventCase kTwoBalls = {
    "two_balls",
    1.0,
    {{1, 0, 0, "dx2_T/dx1", [](double) { return 1.0; }},
     {1, 1, 1, "dx2_T/dx2", [](double) { return 0.0; }},
     {1, 2, 2, "dx2_T/dv0", [](double T) { return T; }},
     {1, 3, 3, "dx2_T/du0", [](double) { return 0.0; }}},
    2.0,        // two unit masses along the normal
    2.0 / 3.0,  // MuJoCo's body_invweight0 of a body sliding along x: trace(J M^-1 J') / 3 = 1/3
    [](double T, double tau) { return std::vector<double>{1.0, 0.0, T - tau / 2, tau / 2}; }};

// the initial state: the keyframe, moved so that the first contact falls `phase` of a timestep
// later than the keyframe's (which lands exactly on a step boundary: t = 0.1 s and 0.3 s)
std::vector<double> event_x0(const EventCase& c, const Model& m, double dt, double phase) {
  std::vector<double> x(m.key_qpos.begin(), m.key_qpos.begin() + m.nq);
  x.insert(x.end(), m.key_qvel.begin(), m.key_qvel.begin() + m.nv);
  if (c.name == "bounce") {
    x[2] += phase * std::abs(x[m.nq + 2]) * dt;  // higher: the ball needs phase dt longer
  } else {
    x[1] += phase * (x[m.nq] - x[m.nq + 1]) * dt;  // ball 2 further away
  }
  return x;
}

// the elastic final position and the elastic speed ratio's counterpart from the trajectory
struct EventPrimal {
  double pos_exact = 0, pos = 0;  // the first entry's row at T: elastic and simulated
  double restitution = 0;         // separating / approaching normal speed after the horizon
  int contact_steps = 0;          // steps that start in penetration
  double t_hit = 0;               // when the elastic contact happens, s
};

EventPrimal event_primal(const EventCase& c, const Model& m, const std::vector<double>& x0,
                         const std::vector<double>& traj, int steps) {
  const int nq = m.nq, nx = m.nq + m.nv;
  const double* xT = traj.data() + static_cast<std::size_t>(steps) * nx;
  EventPrimal p;
  const double T = steps * m.opt_timestep;
  if (c.name == "bounce") {
    p.t_hit = (x0[2] - 0.1) / -x0[nq + 2];
    p.pos_exact = 0.2 - x0[2] - x0[nq + 2] * T;
    p.pos = xT[2];
    p.restitution = xT[nq + 2] / -x0[nq + 2];
    for (int t = 0; t <= steps; ++t) p.contact_steps += traj[static_cast<std::size_t>(t) * nx + 2] < 0.1;
  } else {
    const double v0 = x0[nq], u0 = x0[nq + 1];
    const double tc = (0.3 + x0[1] - x0[0]) / (v0 - u0);
    p.t_hit = tc;
    p.pos_exact = x0[1] + u0 * tc + v0 * (T - tc);
    p.pos = xT[1];
    p.restitution = (xT[nq + 1] - xT[nq]) / (v0 - u0);
    for (int t = 0; t <= steps; ++t) {
      const double* x = traj.data() + static_cast<std::size_t>(t) * nx;
      p.contact_steps += (0.5 + x[1] - x[0]) < 0.2;
    }
  }
  return p;
}

// the gradient entries of x_T by rollout_vjp: one batch row per distinct output row, each with a
// one-hot cotangent of the final state
std::vector<double> grad_by_rollout_vjp(Simulator<double>& sim, const EventCase& c,
                                        const std::vector<double>& x0, int steps) {
  std::vector<int> rows;
  for (const Entry& e : c.entries) {
    if (std::find(rows.begin(), rows.end(), e.row) == rows.end()) rows.push_back(e.row);
  }
  const int nx = sim.nx(), ndx = sim.ndx(), nu = sim.nu(), b = static_cast<int>(rows.size());
  std::vector<double> xs, states(static_cast<std::size_t>(b) * (steps + 1) * nx);
  for (int i = 0; i < b; ++i) xs.insert(xs.end(), x0.begin(), x0.end());
  // the models have no actuators: the action arrays are empty but must not be null
  std::vector<double> actions(std::max<std::size_t>(1, static_cast<std::size_t>(b) * steps * nu), 0.0);
  std::vector<double> g_actions(actions.size(), 0.0);
  std::vector<double> g_final(static_cast<std::size_t>(b) * ndx, 0.0), gx0(g_final.size(), 0.0);
  for (int i = 0; i < b; ++i) g_final[static_cast<std::size_t>(i) * ndx + rows[i]] = 1.0;
  sim.rollout(b, steps, xs.data(), actions.data(), states.data());
  sim.rollout_vjp(b, steps, xs.data(), actions.data(), states.data(), gx0.data(), g_actions.data(),
                  nullptr, g_final.data(), 0);
  std::vector<double> g;
  for (const Entry& e : c.entries) {
    const int i = static_cast<int>(std::find(rows.begin(), rows.end(), e.row) - rows.begin());
    g.push_back(gx0[static_cast<std::size_t>(i) * ndx + e.col]);
  }
  return g;
}

// central differences of the whole rollout's final state (the entries perturb position and
// velocity coordinates that are plain numbers, so tangent and state coincide)
std::vector<double> grad_by_rollout_fd(Simulator<double>& sim, const EventCase& c,
                                       const std::vector<double>& x0, int steps, double eps) {
  const int nx = sim.nx(), nu = sim.nu();
  const int b = 2 * static_cast<int>(c.entries.size());
  double size = 1;
  for (double v : x0) size = std::max(size, std::abs(v));
  const double h = eps * size;
  std::vector<double> xs;
  for (const Entry& e : c.entries) {
    for (double s : {h, -h}) {
      std::vector<double> x = x0;
      x[e.xidx] += s;
      xs.insert(xs.end(), x.begin(), x.end());
    }
  }
  std::vector<double> actions(std::max<std::size_t>(1, static_cast<std::size_t>(b) * steps * nu), 0.0);
  std::vector<double> states(static_cast<std::size_t>(b) * (steps + 1) * nx);
  sim.rollout(b, steps, xs.data(), actions.data(), states.data());
  std::vector<double> g;
  const std::size_t stride = static_cast<std::size_t>(steps + 1) * nx, last = static_cast<std::size_t>(steps) * nx;
  for (std::size_t k = 0; k < c.entries.size(); ++k) {
    const int row = c.entries[k].row;  // position rows of these models are plain coordinates
    const double plus = states[2 * k * stride + last + row], minus = states[(2 * k + 1) * stride + last + row];
    g.push_back((plus - minus) / (2 * h));
  }
  return g;
}

#if defined(PHYDREAM_WITH_MUJOCO)
// MuJoCo's centered mjd_transitionFD along its own trajectory (its own warm starts), chained:
// P = A_{T-1} ... A_0
std::vector<double> grad_by_mujoco(const EventCase& c, const std::string& path, double dt, double k,
                                   const std::vector<double>& x0, int steps, double eps, double* pos_T) {
  MjModel mm(path);
  mjModel* m = mm.m;
  m->opt.timestep = dt;
  for (int g = 0; g < m->ngeom; ++g) m->geom_solref[2 * g] = -k;
  MjData md(m);
  mjData* d = md.d;
  const int nv = m->nv, ndx = 2 * nv;
  mju_copy(d->qpos, x0.data(), m->nq);
  mju_copy(d->qvel, x0.data() + m->nq, nv);
  mj_forward(m, d);
  std::vector<double> P(static_cast<std::size_t>(ndx) * ndx, 0.0), A(P.size()), AP(P.size());
  for (int i = 0; i < ndx; ++i) P[static_cast<std::size_t>(i) * ndx + i] = 1;
  std::vector<double> qpos(m->nq), qvel(nv), warm(nv);
  for (int t = 0; t < steps; ++t) {
    mju_copy(qpos.data(), d->qpos, m->nq);
    mju_copy(qvel.data(), d->qvel, nv);
    mju_copy(warm.data(), d->qacc_warmstart, nv);
    mjd_transitionFD(m, d, eps, 1, A.data(), nullptr, nullptr, nullptr);
    mju_copy(d->qpos, qpos.data(), m->nq);  // the nominal step from the same state and warm start
    mju_copy(d->qvel, qvel.data(), nv);
    mju_copy(d->qacc_warmstart, warm.data(), nv);
    mju_mulMatMat(AP.data(), A.data(), P.data(), ndx, ndx, ndx);
    P.swap(AP);
    mj_step(m, d);
  }
  *pos_T = d->qpos[c.entries[0].row];  // position rows of these models are plain coordinates
  std::vector<double> g;
  for (const Entry& e : c.entries) g.push_back(P[static_cast<std::size_t>(e.row) * ndx + e.col]);
  return g;
}
#endif

double vec_rel_error(const std::vector<double>& g, const std::vector<double>& ref) {
  double num_ = 0, den = 0;
  for (std::size_t i = 0; i < g.size(); ++i) {
    if (!std::isfinite(g[i])) return INFINITY;
    num_ += (g[i] - ref[i]) * (g[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return std::sqrt(num_ / den);
}

// which modes work on this build; "unrolled" is being finished in parallel, and a mode that
// throws is reported as unavailable rather than failing the run
std::map<std::string, std::string> g_unavailable;

void run_event(const Options& opt, const EventCase& c, const std::string& sweep, double dt, double k,
               double phase, int mean_phases) {
  const std::string path = asset(c.name);
  Model model = phydream::load_model(path);
  model.opt_timestep = dt;
  for (int g = 0; g < model.ngeom; ++g) model.geom_solref[2 * g] = -k;
  const int steps = static_cast<int>(std::lround(c.horizon / dt));
  const double T = steps * dt;
  const std::vector<double> x0 = event_x0(c, model, dt, phase);

  // the soft model's closed form: a linear spring of constraint-space stiffness k_eff
  const double imp = model.geom_solimp[0];
  const double r = (1 - imp) / imp * c.row_diag;
  const double k_eff = k * (c.row_a / (c.row_a + r)) / imp;
  const double tau = kPi / std::sqrt(k_eff);

  json j;
  j["kind"] = "event";
  j["model"] = c.name;
  j["sweep"] = sweep;
  j["dt"] = dt;
  j["stiffness"] = k;
  j["phase"] = phase;
  j["horizon_s"] = T;
  j["steps"] = steps;
  j["k_eff"] = k_eff;
  j["tau_s"] = tau;
  j["omega_dt"] = std::sqrt(k_eff) * dt;
  std::vector<double> analytic, soft = c.soft(T, tau);
  std::vector<std::string> names;
  for (const Entry& e : c.entries) {
    analytic.push_back(e.elastic(T));
    names.push_back(e.name);
  }
  j["entries"] = names;
  j["analytic"] = analytic;
  j["soft_prediction"] = soft;
  j["soft_prediction_rel_error"] = vec_rel_error(soft, analytic);

  auto record = [&](const std::string& mode, const std::vector<double>& g, double seconds) {
    json m;
    m["grad"] = json::array();
    for (double v : g) m["grad"].push_back(num(v));
    m["rel_error_analytic"] = num(vec_rel_error(g, analytic));
    m["rel_error_soft"] = num(vec_rel_error(g, soft));
    m["seconds"] = seconds;
    j["modes"][mode] = m;
  };

  // the primal, once (every mode steps the same way)
  auto base = make_sim(model, GradMode::ift, 1);
  {
    const int nx = base->nx();
    std::vector<double> traj(static_cast<std::size_t>(steps + 1) * nx);
    std::vector<double> actions(1, 0.0);
    base->rollout(1, steps, x0.data(), actions.data(), traj.data());
    const EventPrimal p = event_primal(c, model, x0, traj, steps);
    j["final_pos_elastic"] = p.pos_exact;
    j["final_pos"] = num(p.pos);
    j["final_pos_error"] = num(p.pos - p.pos_exact);
    j["restitution"] = num(p.restitution);
    j["contact_steps"] = p.contact_steps;
    // free flight after the soft contact: the lever of a wrong exit velocity on the final position
    j["t_after_s"] = T - p.t_hit - tau;
  }
  for (const std::string& mode : opt.modes) {
    if (g_unavailable.count(mode) > 0) continue;
    try {
      auto sim = make_sim(model, parse_mode(mode), 1);
      const auto t0 = Clock::now();
      const std::vector<double> g = grad_by_rollout_vjp(*sim, c, x0, steps);
      record(mode, g, seconds_since(t0));
    } catch (const std::exception& e) {
      g_unavailable[mode] = e.what();
      note("mode " + mode + " unavailable: " + e.what());
    }
  }
  // IFT with the time-of-impact correction (engine/toi.h): the impact's gradient taken as an
  // instantaneous one's
  {
    auto toi = make_sim(model, GradMode::ift, 1, {}, true);
    const auto t0 = Clock::now();
    const std::vector<double> g = grad_by_rollout_vjp(*toi, c, x0, steps);
    record("ift_toi", g, seconds_since(t0));
  }
  {
    const auto t0 = Clock::now();
    const std::vector<double> g = grad_by_rollout_fd(*base, c, x0, steps, opt.fd_eps);
    record("fd_rollout", g, seconds_since(t0));
  }
  // the IFT gradient averaged over where in a step the contact begins, (j + 0.5) / n for j < n:
  // the exact gradient of the time-stepped model wiggles with that phase (docs/contact_gradients.md)
  if (mean_phases > 0) {
    const auto t0 = Clock::now();
    std::vector<double> mean(c.entries.size(), 0.0);
    for (int p = 0; p < mean_phases; ++p) {
      const std::vector<double> xp = event_x0(c, model, dt, (p + 0.5) / mean_phases);
      const std::vector<double> g = grad_by_rollout_vjp(*base, c, xp, steps);
      for (std::size_t i = 0; i < g.size(); ++i) mean[i] += g[i] / mean_phases;
    }
    record("ift_phase_mean", mean, seconds_since(t0));
    j["mean_phases"] = mean_phases;
  }
#if defined(PHYDREAM_WITH_MUJOCO)
  if (opt.mujoco) {
    const auto t0 = Clock::now();
    double pos_T = 0;
    const std::vector<double> g = grad_by_mujoco(c, path, dt, k, x0, steps, opt.mj_eps, &pos_T);
    record("mujoco", g, seconds_since(t0));
    j["mujoco_final_pos"] = num(pos_T);
  }
#endif
  emit(j);
}

void run_events(const Options& opt) {
  for (const EventCase* c : {&kBounce, &kTwoBalls}) {
    for (double k : opt.stiffnesses) {
      for (double dt : opt.dts) run_event(opt, *c, "grid", dt, k, opt.phase, opt.grid_phases);
    }
    // 0: the keyframe itself, whose first contact starts exactly on a step boundary
    run_event(opt, *c, "phase", opt.dt0, opt.k0, 0.0, 0);
    for (int p = 0; p < opt.phase_sweep; ++p) {
      run_event(opt, *c, "phase", opt.dt0, opt.k0, (p + 0.5) / opt.phase_sweep, 0);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// 2. random states in contact

struct StateSet {
  std::string name, path;
  Model model;
  int nq = 0, nv = 0, nu = 0, nx = 0, ndx = 0, ncols = 0;
  std::vector<double> x, u;  // (N, nx), (N, nu)
  int n = 0;
};

// the Jacobians [A | B] of n states, (n, ndx, ndx + nu), from A (n, ndx, ndx) and B (n, ndx, nu)
std::vector<double> join(int n, int ndx, int nu, const std::vector<double>& A, const std::vector<double>& B) {
  const int ncols = ndx + nu;
  std::vector<double> J(static_cast<std::size_t>(n) * ndx * ncols);
  for (std::size_t r = 0; r < static_cast<std::size_t>(n) * ndx; ++r) {
    std::copy_n(&A[r * ndx], ndx, &J[r * ncols]);
    std::copy_n(&B[r * nu], nu, &J[r * ncols + ndx]);
  }
  return J;
}

// per state: rel_error of J's [A | B] against R's
std::vector<double> per_state_error(const StateSet& s, const std::vector<double>& J,
                                    const std::vector<double>& R) {
  const std::size_t size = static_cast<std::size_t>(s.ndx) * s.ncols;
  std::vector<double> e(s.n);
  for (int b = 0; b < s.n; ++b) e[b] = rel_error(&J[b * size], &R[b * size], size);
  return e;
}

// [A | B] of every state by a simulator's jacobian() (its grad mode), and the next states
std::vector<double> jacobians(const StateSet& s, Simulator<double>& sim, std::vector<double>* x_next = nullptr,
                              JacobianMode jm = JacobianMode::forward) {
  std::vector<double> A(static_cast<std::size_t>(s.n) * s.ndx * s.ndx);
  std::vector<double> B(std::max<std::size_t>(1, static_cast<std::size_t>(s.n) * s.ndx * s.nu));
  std::vector<double> xn(static_cast<std::size_t>(s.n) * s.nx);
  sim.jacobian(s.n, s.x.data(), s.nu > 0 ? s.u.data() : B.data(), xn.data(), A.data(), B.data(), jm);
  if (x_next != nullptr) *x_next = xn;
  return join(s.n, s.ndx, s.nu, A, B);
}

// [A | B] of every state by Simulator::jacobian_fd (central differences, relative step eps)
std::vector<double> jacobians_fd(const StateSet& s, Simulator<double>& sim, double eps) {
  std::vector<double> A(static_cast<std::size_t>(s.n) * s.ndx * s.ndx);
  std::vector<double> B(std::max<std::size_t>(1, static_cast<std::size_t>(s.n) * s.ndx * s.nu));
  sim.jacobian_fd(s.n, s.x.data(), s.nu > 0 ? s.u.data() : B.data(), A.data(), B.data(), eps);
  return join(s.n, s.ndx, s.nu, A, B);
}

// a state set of the named model (an asset name or a path) with its sizes, and no states yet
StateSet empty_state_set(const std::string& name) {
  StateSet s;
  s.name = name;
  s.path = asset(name);
  s.model = phydream::load_model(s.path);
  s.nq = s.model.nq;
  s.nv = s.model.nv;
  s.nu = s.model.nu;
  s.nx = s.nq + s.nv;
  s.ndx = 2 * s.nv;
  s.ncols = s.ndx + s.nu;
  return s;
}

// the starting states of the sampling rollouts: dm_control's Finger draws its two finger angles
// uniformly in their ranges and the spinner's angle in [-pi, pi], at rest; gym's half-cheetah (and
// any other model) adds U(-0.1, 0.1) to qpos0's hinge and slide coordinates (quaternions stay) and
// 0.1 N(0, 1) to the zero velocity
std::vector<double> initial_state(const StateSet& s, std::mt19937_64& rng) {
  const Model& m = s.model;
  std::uniform_real_distribution<double> unit(0, 1);
  std::normal_distribution<double> normal(0, 1);
  std::vector<double> x(s.nx, 0.0);
  for (int i = 0; i < s.nq; ++i) x[i] = m.qpos0[i];
  if (s.name == "finger") {
    for (int jn = 0; jn < m.njnt; ++jn) {
      const double lo = m.jnt_limited[jn] ? m.jnt_range[2 * jn] : -kPi;
      const double hi = m.jnt_limited[jn] ? m.jnt_range[2 * jn + 1] : kPi;
      x[m.jnt_qposadr[jn]] = lo + (hi - lo) * unit(rng);
    }
  } else {
    for (int jn = 0; jn < m.njnt; ++jn) {
      const int type = m.jnt_type[jn];
      if (type == static_cast<int>(phydream::JointType::hinge) ||
          type == static_cast<int>(phydream::JointType::slide)) {
        x[m.jnt_qposadr[jn]] += 0.2 * unit(rng) - 0.1;
      }
    }
    for (int i = 0; i < s.nv; ++i) x[s.nq + i] = 0.1 * normal(rng);
  }
  return x;
}

// Rolls out batches of trajectories under random controls (uniform in ctrlrange, redrawn every
// other step) and keeps states at which contact changes the next state (the step with contacts
// differs from the step with contacts disabled), each with probability `keep`, until N.
StateSet sample_states(const Options& opt, const std::string& name) {
  StateSet s = empty_state_set(name);
  const bool finger = name == "finger";
  const int length = finger ? 150 : 200;       // steps per trajectory
  const double keep = finger ? 0.15 : 0.05;    // spread the kept states over many trajectories
  const int batch = 32;
  auto with = make_sim(s.model, GradMode::ift, 0);
  auto without = make_sim(s.model, GradMode::ift, 0, {"contact"});
  std::mt19937_64 rng(opt.seed + std::hash<std::string>{}(name));
  std::uniform_real_distribution<double> unit(0, 1);
  const int nx = s.nx, nu = s.nu;
  std::vector<double> x(static_cast<std::size_t>(batch) * nx), u(static_cast<std::size_t>(batch) * nu);
  std::vector<double> y(x.size()), y0(x.size());
  int trajectories = 0, steps_total = 0, steps_in_contact = 0, diverged = 0;
  auto contact = [&](int b) {
    double diff = 0, size = 1;
    for (int i = 0; i < nx; ++i) {
      diff = std::max(diff, std::abs(y[b * nx + i] - y0[b * nx + i]));
      size = std::max(size, std::abs(y[b * nx + i]));
    }
    return diff > 1e-9 * size;
  };
  while (s.n < opt.states) {
    if (trajectories >= 1000 * batch) {
      throw phydream::InputError(name + ": only " + std::to_string(s.n) + " contact states in " +
                                 std::to_string(trajectories) + " random trajectories");
    }
    // starting states out of contact
    for (int b = 0; b < batch; ++b) {
      for (int tries = 0;; ++tries) {
        const std::vector<double> x1 = initial_state(s, rng);
        std::copy(x1.begin(), x1.end(), x.begin() + b * nx);
        std::fill_n(u.begin() + b * nu, nu, 0.0);
        with->step(1, &x[b * nx], &u[b * nu], &y[b * nx]);
        without->step(1, &x[b * nx], &u[b * nu], &y0[b * nx]);
        if (!contact(b) || tries > 100) break;
      }
    }
    trajectories += batch;
    for (int t = 0; t < length && s.n < opt.states; ++t) {
      if (t % 2 == 0) {
        for (int b = 0; b < batch; ++b) {
          for (int a = 0; a < nu; ++a) {
            const bool lim = s.model.actuator_ctrllimited[a] != 0;
            const double lo = lim ? s.model.actuator_ctrlrange[2 * a] : -1.0;
            const double hi = lim ? s.model.actuator_ctrlrange[2 * a + 1] : 1.0;
            u[b * nu + a] = lo + (hi - lo) * unit(rng);
          }
        }
      }
      with->step(batch, x.data(), u.data(), y.data());
      without->step(batch, x.data(), u.data(), y0.data());
      for (int b = 0; b < batch; ++b) {
        bool finite = true;
        for (int i = 0; i < nx; ++i) finite = finite && std::isfinite(y[b * nx + i]);
        ++steps_total;
        if (!finite) {  // start this trajectory again from a fresh state
          ++diverged;
          const std::vector<double> x1 = initial_state(s, rng);
          std::copy(x1.begin(), x1.end(), y.begin() + b * nx);
          continue;
        }
        if (contact(b)) {
          ++steps_in_contact;
          if (unit(rng) < keep && s.n < opt.states) {
            s.x.insert(s.x.end(), x.begin() + b * nx, x.begin() + (b + 1) * nx);
            s.u.insert(s.u.end(), u.begin() + b * nu, u.begin() + (b + 1) * nu);
            ++s.n;
          }
        }
      }
      x.swap(y);
    }
  }
  json j;
  j["kind"] = "states_sample";
  j["model"] = name;
  j["states"] = s.n;
  j["trajectories"] = trajectories;
  j["steps"] = steps_total;
  j["contact_step_fraction"] = static_cast<double>(steps_in_contact) / std::max(1, steps_total);
  j["diverged_trajectories"] = diverged;
  j["dt"] = s.model.opt_timestep;
  j["cone"] = s.model.opt_cone == 1 ? "elliptic" : "pyramidal";
  j["iterations"] = s.model.opt_iterations;
  j["tolerance"] = s.model.opt_tolerance;
  j["nv"] = s.nv;
  j["nu"] = s.nu;
  emit(j);
  return s;
}

struct Reference {
  std::vector<double> J;            // extrapolated central differences, solver to machine precision
  std::vector<double> consistency;  // per state: central differences at h and h/2, relative difference
  std::vector<double> x_next;
};

// central differences of the step with the solver run to machine precision (tolerance 0: it
// stops when the line search stalls; 1000 iterations at most)
Model tight_model(const Model& m) {
  Model t = m;
  t.opt_tolerance = 0;
  t.opt_iterations = std::max(1000, m.opt_iterations);
  return t;
}

// The reference: central differences at h and h/2 combined by Richardson extrapolation,
// (4 D(h/2) - D(h)) / 3, which cancels the O(h^2) truncation error that central differences at
// one step (the fd mode's and MuJoCo's) keep; what is left is rounding, about 1e-16 / h. Where the
// two steps disagree by more than 1e-6 a row switches within their reach and no derivative is
// meaningful: those states form the complement of the "smooth" subset.
Reference reference(const Options& opt, const StateSet& s) {
  auto sim = make_sim(tight_model(s.model), GradMode::fd, 0);
  Reference r;
  const std::vector<double> full = jacobians_fd(s, *sim, opt.fd_eps);
  const std::vector<double> half = jacobians_fd(s, *sim, opt.fd_eps / 2);
  r.consistency = per_state_error(s, half, full);
  r.J.resize(full.size());
  for (std::size_t i = 0; i < full.size(); ++i) r.J[i] = (4 * half[i] - full[i]) / 3;
  r.x_next.resize(static_cast<std::size_t>(s.n) * s.nx);
  sim->step(s.n, s.x.data(), s.u.data(), r.x_next.data());
  return r;
}

#if defined(PHYDREAM_WITH_MUJOCO)
// mjd_transitionFD at each state (warm start 0, as PhyDream), and mj_step's next state, and the
// number of contacts MuJoCo finds
struct MujocoStates {
  std::vector<double> J, x_next;
  std::vector<int> ncon;
};

MujocoStates mujoco_states(const Options& opt, const StateSet& s, const mjModel* m) {
  MujocoStates r;
  const int ndx = s.ndx, nu = s.nu;
  r.J.assign(static_cast<std::size_t>(s.n) * ndx * s.ncols, 0.0);
  r.x_next.assign(static_cast<std::size_t>(s.n) * s.nx, 0.0);
  r.ncon.assign(s.n, 0);
  MjData md(m);
  mjData* d = md.d;
  std::vector<double> A(static_cast<std::size_t>(ndx) * ndx), B(std::max(1, ndx * nu));
  for (int b = 0; b < s.n; ++b) {
    const double* x = &s.x[static_cast<std::size_t>(b) * s.nx];
    const double* u = nu > 0 ? &s.u[static_cast<std::size_t>(b) * nu] : nullptr;
    mj_load(m, d, x, u);
    mj_forward(m, d);
    r.ncon[b] = d->ncon;
    mj_load(m, d, x, u);
    mjd_transitionFD(m, d, opt.mj_eps, 1, A.data(), nu > 0 ? B.data() : nullptr, nullptr, nullptr);
    for (int i = 0; i < ndx; ++i) {
      double* row = &r.J[(static_cast<std::size_t>(b) * ndx + i) * s.ncols];
      std::copy_n(&A[static_cast<std::size_t>(i) * ndx], ndx, row);
      std::copy_n(&B[static_cast<std::size_t>(i) * nu], nu, row + ndx);
    }
    mj_load(m, d, x, u);
    mj_step(m, d);
    mju_copy(&r.x_next[static_cast<std::size_t>(b) * s.nx], d->qpos, s.nq);
    mju_copy(&r.x_next[static_cast<std::size_t>(b) * s.nx + s.nq], d->qvel, s.nv);
  }
  return r;
}
#endif

// the largest Frobenius norm and largest entry over the states' Jacobians
json norms(const StateSet& s, const std::vector<double>& J) {
  const std::size_t size = static_cast<std::size_t>(s.ndx) * s.ncols;
  double fro_max = 0, entry_max = 0;
  int nonfinite = 0;
  for (int b = 0; b < s.n; ++b) {
    double fro = 0;
    bool finite = true;
    for (std::size_t i = 0; i < size; ++i) {
      const double v = J[b * size + i];
      finite = finite && std::isfinite(v);
      if (std::isfinite(v)) {
        fro += v * v;
        entry_max = std::max(entry_max, std::abs(v));
      }
    }
    nonfinite += !finite;
    fro_max = std::max(fro_max, std::sqrt(fro));
  }
  return {{"largest_fro_norm", fro_max}, {"largest_entry", entry_max}, {"nonfinite_states", nonfinite}};
}

json g_distributions = json::object();

void run_states(const Options& opt, StateSet& s) {
  note(s.name + ": reference Jacobians (central differences, tight solver)");
  const Reference ref = reference(opt, s);
  std::vector<int> smooth;
  for (int b = 0; b < s.n; ++b) {
    if (ref.consistency[b] <= 1e-6) smooth.push_back(b);
  }
  json& dist = g_distributions[s.name];
  dist["fd_consistency"] = ref.consistency;

  std::map<std::string, std::vector<double>> J;
  std::vector<double> xn_ift;
  for (const std::string& mode : opt.modes) {
    if (g_unavailable.count(mode) > 0) continue;
    note(s.name + ": " + mode + " Jacobians");
    try {
      auto sim = make_sim(s.model, parse_mode(mode), 0);
      std::vector<double> xn;
      J[mode] = jacobians(s, *sim, &xn);
      if (mode == "ift") {
        xn_ift = xn;
        // the reverse sweeps and the closed form give the same matrix: checked here, not
        // reported as modes
        for (const auto& [check, jm] : {std::pair<const char*, JacobianMode>{"ift_reverse_vs_forward_sweeps", JacobianMode::reverse},
                                        std::pair<const char*, JacobianMode>{"ift_analytic_vs_forward_sweeps", JacobianMode::analytic}}) {
          const std::vector<double> other = jacobians(s, *sim, nullptr, jm);
          const std::vector<double> e = per_state_error(s, other, J[mode]);
          json j;
          j["kind"] = "check";
          j["model"] = s.name;
          j["check"] = check;
          j["max_rel_diff"] = num(*std::max_element(e.begin(), e.end()));
          emit(j);
        }
      }
    } catch (const std::exception& e) {
      g_unavailable[mode] = e.what();
      note("mode " + mode + " unavailable: " + e.what());
    }
  }
#if defined(PHYDREAM_WITH_MUJOCO)
  if (opt.mujoco) {
    note(s.name + ": MuJoCo mjd_transitionFD");
    MjModel mm(s.path);
    const MujocoStates mj = mujoco_states(opt, s, mm.m);
    J["mujoco"] = mj.J;
    // the two engines' next states at these states: the physics the Jacobians differentiate
    std::vector<double> diff(s.n, 0.0);
    int mj_contact = 0;
    for (int b = 0; b < s.n; ++b) {
      for (int i = 0; i < s.nx; ++i) {
        diff[b] = std::max(diff[b], std::abs(mj.x_next[b * s.nx + i] - ref.x_next[b * s.nx + i]));
      }
      mj_contact += mj.ncon[b] > 0;
    }
    json j;
    j["kind"] = "check";
    j["model"] = s.name;
    j["check"] = "mujoco_vs_phydream_next_state";
    j["max_abs_diff"] = summarize(diff);
    j["mujoco_contact_fraction"] = static_cast<double>(mj_contact) / s.n;
    j["mujoco_ncon_max"] = *std::max_element(mj.ncon.begin(), mj.ncon.end());
    emit(j);
    dist["mujoco_ncon"] = mj.ncon;
  }
#endif
  // each mode against the reference, over all states and over those where the reference's two
  // step sizes agree (no contact or friction row switches within the differences' reach)
  for (const auto& [mode, jac] : J) {
    const std::vector<double> e = per_state_error(s, jac, ref.J);
    std::vector<double> e_smooth;
    for (int b : smooth) e_smooth.push_back(e[b]);
    dist[mode] = e;
    for (const auto& [subset, errs] : {std::pair<std::string, const std::vector<double>*>{"all", &e},
                                       {"smooth", &e_smooth}}) {
      json j;
      j["kind"] = "state_errors";
      j["model"] = s.name;
      j["mode"] = mode;
      j["reference"] = "fd_tight";
      j["subset"] = subset;
      j["error"] = summarize(*errs);
      if (subset == "all") j["norms"] = norms(s, jac);
      emit(j);
    }
  }
  if (J.count("ift") > 0 && J.count("unrolled") > 0) {
    const std::vector<double> e = per_state_error(s, J["unrolled"], J["ift"]);
    dist["unrolled_vs_ift"] = e;
    json j;
    j["kind"] = "state_errors";
    j["model"] = s.name;
    j["mode"] = "unrolled";
    j["reference"] = "ift";
    j["subset"] = "all";
    j["error"] = summarize(e);
    emit(j);
    if (*std::max_element(e.begin(), e.end()) == 0) {
      note("warning: the unrolled Jacobians equal the IFT ones bit for bit: is unrolled implemented?");
    }
  }
  json j;
  j["kind"] = "states_reference";
  j["model"] = s.name;
  j["fd_step_halving"] = summarize(ref.consistency);
  j["smooth_states"] = smooth.size();
  j["smooth_threshold"] = 1e-6;
  emit(j);
}

// ---------------------------------------------------------------------------------------------
// 3. solver tolerance and iterations

void run_solver(const Options& opt, StateSet& s) {
  const int n = std::min(opt.sweep_states, s.n);
  StateSet sub = s;
  sub.n = n;
  sub.x.resize(static_cast<std::size_t>(n) * s.nx);
  sub.u.resize(static_cast<std::size_t>(n) * s.nu);
  const Reference ref = reference(opt, sub);
  struct Setting {
    double tolerance;
    int iterations;
  };
  std::vector<Setting> settings;
  for (double tol : {1e-2, 1e-4, 1e-6, 1e-8, 1e-10, 0.0}) settings.push_back({tol, s.model.opt_iterations});
  for (int it : {1, 2, 3, 5, 10, 20, 50, 100, 200}) {
    if (it != s.model.opt_iterations) settings.push_back({0.0, it});  // tolerance 0: `it` unless the line search stalls
  }
  for (const Setting& st : settings) {
    Model m = s.model;
    m.opt_tolerance = st.tolerance;
    m.opt_iterations = st.iterations;
    note(s.name + ": solver tolerance " + std::to_string(st.tolerance) + " iterations " +
         std::to_string(st.iterations));
    auto fd_sim = make_sim(m, GradMode::fd, 0);
    const std::vector<double> fd_same = jacobians_fd(sub, *fd_sim, opt.fd_eps);
    for (const std::string& mode : opt.modes) {
      if (g_unavailable.count(mode) > 0) continue;
      try {
        auto sim = make_sim(m, parse_mode(mode), 0);
        std::vector<double> xn;
        const std::vector<double> jac = jacobians(sub, *sim, &xn);
        std::vector<double> primal(n);
        for (int b = 0; b < n; ++b) {
          primal[b] = rel_error(&xn[b * s.nx], &ref.x_next[b * s.nx], s.nx);
        }
        json j;
        j["kind"] = "solver_sweep";
        j["model"] = s.name;
        j["mode"] = mode;
        j["tolerance"] = st.tolerance;
        j["iterations"] = st.iterations;
        j["states"] = n;
        j["error_vs_reference"] = summarize(per_state_error(sub, jac, ref.J));
        j["error_vs_fd_same_settings"] = summarize(per_state_error(sub, jac, fd_same));
        j["next_state_error"] = summarize(primal);
        emit(j);
      } catch (const std::exception& e) {
        g_unavailable[mode] = e.what();
        note("mode " + mode + " unavailable: " + e.what());
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// 4. time per Jacobian on one thread, against MuJoCo's in the same run

void run_timing(const Options& opt, StateSet& s) {
  const int n = std::min(opt.timing_states, s.n);
  std::vector<double> A(static_cast<std::size_t>(n) * s.ndx * s.ndx);
  std::vector<double> B(std::max<std::size_t>(1, static_cast<std::size_t>(n) * s.ndx * s.nu));
  std::vector<double> xn(static_cast<std::size_t>(n) * s.nx);
  const double* u = s.nu > 0 ? s.u.data() : B.data();
  // every timed call, PhyDream's and MuJoCo's, in one rotation of windows (rates_interleaved):
  // the ratios compare windows taken side by side on this noisy host
  std::vector<std::string> names;
  std::vector<std::function<void()>> calls;
  std::vector<std::unique_ptr<Simulator<double>>> sims;
  auto add = [&](const std::string& name, std::function<void()> call) {
    names.push_back(name);
    calls.push_back(std::move(call));
  };
  sims.push_back(make_sim(s.model, GradMode::ift, 1));
  {
    Simulator<double>* sim = sims.back().get();
    add("step", [&, sim] { sim->step(n, s.x.data(), u, xn.data()); });
  }
  for (const std::string& mode : opt.modes) {
    if (g_unavailable.count(mode) > 0) continue;
    sims.push_back(make_sim(s.model, parse_mode(mode), 1));
    Simulator<double>* sim = sims.back().get();
    add(mode, [&, sim] { sim->jacobian(n, s.x.data(), u, xn.data(), A.data(), B.data(), JacobianMode::forward); });
    if (mode == "ift") {
      // the default route (closed form) and the reverse sweeps beside the forward ones
      add("ift_analytic", [&, sim] {
        sim->jacobian(n, s.x.data(), u, xn.data(), A.data(), B.data(), JacobianMode::analytic);
      });
      add("ift_reverse", [&, sim] {
        sim->jacobian(n, s.x.data(), u, xn.data(), A.data(), B.data(), JacobianMode::reverse);
      });
    }
  }
  const std::size_t ours = names.size();
#if defined(PHYDREAM_WITH_MUJOCO)
  std::unique_ptr<MjModel> mm;
  std::unique_ptr<MjData> md;
  std::vector<double> a(static_cast<std::size_t>(s.ndx) * s.ndx), bm(std::max(1, s.ndx * s.nu));
  if (opt.mujoco) {
    mm = std::make_unique<MjModel>(s.path);
    md = std::make_unique<MjData>(mm->m);
    const mjModel* m = mm->m;
    mjData* d = md->d;
    add("mj_step", [&, m, d] {
      for (int b = 0; b < n; ++b) {
        mj_load(m, d, &s.x[static_cast<std::size_t>(b) * s.nx], &s.u[static_cast<std::size_t>(b) * s.nu]);
        mj_step(m, d);
      }
    });
    add("mjd_transitionFD", [&, m, d] {
      for (int b = 0; b < n; ++b) {
        mj_load(m, d, &s.x[static_cast<std::size_t>(b) * s.nx], &s.u[static_cast<std::size_t>(b) * s.nu]);
        mjd_transitionFD(m, d, opt.mj_eps, 1, a.data(), s.nu > 0 ? bm.data() : nullptr, nullptr, nullptr);
      }
    });
  }
#endif
  note(s.name + ": timing " + std::to_string(names.size()) + " calls in rotation");
  const std::vector<double> best = rates_interleaved(opt.min_time, n, calls);
  std::map<std::string, double> rates;
  for (std::size_t i = 0; i < ours; ++i) rates[names[i]] = best[i];
  double mj_fd = 0, mj_step_rate = 0;
  for (std::size_t i = ours; i < names.size(); ++i) {
    (names[i] == "mj_step" ? mj_step_rate : mj_fd) = best[i];
  }
  for (const auto& [mode, r] : rates) {
    json j;
    j["kind"] = "timing";
    j["model"] = s.name;
    j["mode"] = mode;
    j["what"] = mode == "step" ? "step" : "jacobian";
    j["threads"] = 1;
    j["states"] = n;
    j["per_s"] = r;
    j["us_per_call"] = 1e6 / r;
    if (mj_fd > 0) {
      // > 1: faster than MuJoCo on the same states (mj_step for a step, the centered
      // mjd_transitionFD for a Jacobian)
      j["mujoco_what"] = mode == "step" ? "mj_step" : "mjd_transitionFD";
      j["mujoco_per_s"] = mode == "step" ? mj_step_rate : mj_fd;
      j["ratio_vs_mujoco"] = r / j["mujoco_per_s"].get<double>();
    }
    j["host_load_1m"] = load_average();
    emit(j);
  }
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::vector<double> split_numbers(const std::string& s) {
  std::vector<double> out;
  for (const std::string& item : split_list(s)) out.push_back(std::stod(item));
  return out;
}

std::string join_numbers(const std::vector<double>& v) {
  std::ostringstream os;
  for (std::size_t i = 0; i < v.size(); ++i) os << (i ? "," : "") << v[i];
  return os.str();
}

std::string today() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", std::gmtime(&t));
  return buf;
}

// Robustness: random-control rollouts from dm_control's / gym's start distributions (as the
// states part samples), the IFT Jacobian (the default route) of every step, counting
// environments-steps with non-finite states or Jacobians and the solver's flags
// (Simulator::solver_status), and the steps that contact changed (differ with contact disabled).
// A non-finite environment is restarted from a fresh draw. One thread.
void run_robustness(const Options& opt, const std::string& name) {
  const StateSet s = empty_state_set(name);
  auto sim = make_sim(s.model, GradMode::ift, 1);
  auto free = make_sim(s.model, GradMode::ift, 1, {"contact"});
  const std::int64_t B = opt.robust_envs, nx = s.nx, ndx = s.ndx, nu = s.nu;
  std::mt19937_64 rng(opt.seed * 31 + std::hash<std::string>{}(name));
  std::uniform_real_distribution<double> unit(0, 1);
  std::vector<double> x(B * nx), u(B * nu), xn(B * nx), x0n(B * nx), jx(B * ndx * ndx), ju(B * ndx * nu);
  for (std::int64_t b = 0; b < B; ++b) {
    const std::vector<double> xb = initial_state(s, rng);
    std::copy(xb.begin(), xb.end(), x.begin() + b * nx);
  }
  std::vector<std::uint8_t> bad_x(B), bad_jx(B), bad_ju(B), flags(B);
  std::int64_t steps = 0, contact_steps = 0, nonfinite_states = 0, nonfinite_jacobians = 0;
  std::int64_t capped = 0, nonfinite_solves = 0;
  double largest = 0;
  const auto t0 = Clock::now();
  for (std::int64_t t = 0; t < opt.robust_steps; ++t) {
    for (std::int64_t i = 0; i < B * nu; ++i) {
      const int a = static_cast<int>(i % nu);
      const bool lim = s.model.actuator_ctrllimited[a] != 0;
      const double lo = lim ? s.model.actuator_ctrlrange[2 * a] : -1.0;
      const double hi = lim ? s.model.actuator_ctrlrange[2 * a + 1] : 1.0;
      u[i] = lo + (hi - lo) * unit(rng);
    }
    sim->jacobian(B, x.data(), u.data(), xn.data(), jx.data(), ju.data());
    sim->solver_status(B, flags.data());
    free->step(B, x.data(), u.data(), x0n.data());
    sim->nonfinite_rows(B, nx, xn.data(), bad_x.data());
    sim->nonfinite_rows(B, ndx * ndx, jx.data(), bad_jx.data());
    sim->nonfinite_rows(B, ndx * nu, ju.data(), bad_ju.data());
    for (std::int64_t b = 0; b < B; ++b) {
      ++steps;
      capped += flags[b] == static_cast<std::uint8_t>(phydream::SolveFlag::iteration_cap);
      nonfinite_solves += flags[b] == static_cast<std::uint8_t>(phydream::SolveFlag::nonfinite);
      nonfinite_states += bad_x[b];
      nonfinite_jacobians += (bad_jx[b] | bad_ju[b]);
      double diff = 0;
      for (std::int64_t i = 0; i < nx; ++i) diff = std::max(diff, std::abs(xn[b * nx + i] - x0n[b * nx + i]));
      contact_steps += diff > 1e-9;
      for (std::int64_t i = 0; i < ndx * ndx && !bad_jx[b]; ++i) largest = std::max(largest, std::abs(jx[b * ndx * ndx + i]));
      if (bad_x[b] || bad_jx[b] || bad_ju[b]) {
        const std::vector<double> xb = initial_state(s, rng);
        std::copy(xb.begin(), xb.end(), xn.begin() + b * nx);
      }
    }
    x.swap(xn);
  }
  json j;
  j["kind"] = "robustness";
  j["model"] = name;
  j["envs"] = B;
  j["steps_per_env"] = opt.robust_steps;
  j["steps"] = steps;
  j["contact_steps"] = contact_steps;
  j["nonfinite_states"] = nonfinite_states;
  j["nonfinite_jacobians"] = nonfinite_jacobians;
  j["solver_iteration_cap"] = capped;
  j["solver_nonfinite"] = nonfinite_solves;
  j["largest_state_jacobian_entry"] = largest;
  j["seconds"] = seconds_since(t0);
  emit(j);
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  std::string parts = "events,states,solver,timing", modes = "ift,unrolled,fd";
  std::string models = "finger,half_cheetah";
  std::string dts = join_numbers(opt.dts), ks = join_numbers(opt.stiffnesses);
  bool no_mujoco = false;
  CLI::App app{"contact_grad_bench: gradient quality through contact, every PhyDream gradient mode "
               "and MuJoCo's mjd_transitionFD, against analytic answers and a tight reference",
               "contact_grad_bench"};
  app.add_option("--parts", parts, "events,states,solver,timing; also robustness (not run by "
                 "default: --robust-envs x --robust-steps Jacobians per model)")->capture_default_str();
  app.add_option("--robust-envs", opt.robust_envs, "robustness: environments per model")->capture_default_str();
  app.add_option("--robust-steps", opt.robust_steps, "robustness: steps per environment")->capture_default_str();
  app.add_option("--modes", modes, "PhyDream gradient modes: ift,unrolled,fd")->capture_default_str();
  app.add_option("--dts", dts, "events: timesteps (s)")->capture_default_str();
  app.add_option("--stiffness", ks, "events: contact stiffness k (solref -k 0)")->capture_default_str();
  app.add_option("--phase-sweep", opt.phase_sweep,
                 "events: phases of the phase sweep at (dt0, k0): 0 and (j + 0.5) / n")
      ->capture_default_str();
  app.add_option("--grid-phases", opt.grid_phases,
                 "events: phases the grid's IFT gradient is also averaged over (0: none)")
      ->capture_default_str();
  app.add_option("--phase", opt.phase, "events: phase of the dt x stiffness grid")->capture_default_str();
  app.add_option("--dt0", opt.dt0, "events: timestep of the phase sweep")->capture_default_str();
  app.add_option("--k0", opt.k0, "events: stiffness of the phase sweep")->capture_default_str();
  app.add_option("--models", models, "states: asset names or MJCF paths")->capture_default_str();
  app.add_option("--states", opt.states, "states: contact states per model")->capture_default_str();
  app.add_option("--sweep-states", opt.sweep_states, "solver: states per setting")->capture_default_str();
  app.add_option("--timing-states", opt.timing_states, "timing: states per timed call")->capture_default_str();
  app.add_option("--fd-eps", opt.fd_eps, "PhyDream's relative central-difference step")->capture_default_str();
  app.add_option("--mj-eps", opt.mj_eps, "mjd_transitionFD's step")->capture_default_str();
  app.add_option("--min-time", opt.min_time, "timing: seconds per window")->capture_default_str();
  app.add_option("--repeats", opt.repeats, "timing: windows, the best reported")->capture_default_str();
  app.add_option("--seed", opt.seed, "random seed")->capture_default_str();
  app.add_option("--out", opt.out, "also write DIR/contact_gradients.json");
  app.add_flag("--no-mujoco", no_mujoco, "skip the MuJoCo peer");
  CLI11_PARSE(app, argc, argv);

  try {
    opt.parts = split_list(parts);
    opt.modes = split_list(modes);
    for (const std::string& m : opt.modes) parse_mode(m);
    opt.dts = split_numbers(dts);
    opt.stiffnesses = split_numbers(ks);
    opt.models = split_list(models);
    opt.mujoco = !no_mujoco;
    g_repeats = std::max(1, opt.repeats);
#if !defined(PHYDREAM_WITH_MUJOCO)
    if (opt.mujoco) note("built without MuJoCo; no peer measurements");
    opt.mujoco = false;
#endif
    json meta;
    meta["kind"] = "meta";
    meta["date"] = today();
    meta["cpu"] = cpu_model();
    meta["cores"] = omp_get_max_threads();
    meta["host_load_1m"] = load_average();
#if defined(PHYDREAM_WITH_MUJOCO)
    meta["mujoco_version"] = opt.mujoco ? json(mj_version()) : json(nullptr);
#endif
    meta["modes"] = opt.modes;
    meta["fd_eps"] = opt.fd_eps;
    meta["mj_eps"] = opt.mj_eps;
    meta["argv"] = json::array();
    for (int i = 0; i < argc; ++i) meta["argv"].push_back(argv[i]);
    emit(meta);

    if (has(opt.parts, "events")) run_events(opt);
    if (has(opt.parts, "robustness")) {
      if (opt.robust_envs < 1 || opt.robust_steps < 1) {
        throw phydream::InputError("--robust-envs and --robust-steps must be >= 1");
      }
      for (const std::string& name : opt.models) run_robustness(opt, name);
    }
    const bool states = has(opt.parts, "states"), solver = has(opt.parts, "solver"),
               timing = has(opt.parts, "timing");
    if (states || solver || timing) {
      for (const std::string& name : opt.models) {
        note(name + ": sampling " + std::to_string(opt.states) + " contact states");
        StateSet s = sample_states(opt, name);
        if (states) run_states(opt, s);
        if (solver) run_solver(opt, s);
        if (timing) run_timing(opt, s);
      }
    }
    for (const auto& [mode, why] : g_unavailable) {
      emit({{"kind", "unavailable"}, {"mode", mode}, {"reason", why}});
    }
    if (!opt.out.empty()) {
      std::filesystem::create_directories(opt.out);
      const std::string path = opt.out + "/contact_gradients.json";
      std::ofstream f(path);
      json all;
      all["lines"] = g_lines;
      all["distributions"] = g_distributions;
      f << all.dump() << "\n";
      if (!f) throw std::runtime_error("cannot write " + path);
      note("wrote " + path);
    }
  } catch (const phydream::InputError& e) {
    std::cerr << "contact_grad_bench: error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "contact_grad_bench: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
