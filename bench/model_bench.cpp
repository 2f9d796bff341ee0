// model_bench: articulated models loaded from MJCF, PhyDream against MuJoCo on the same files in
// the same run. For each model: steps/s and full Jacobians/s (PhyDream's three analytic routes:
// forward sweeps, reverse sweeps and closed-form inverse-dynamics derivatives, the last one
// compared with the peer; MuJoCo's centered mjd_transitionFD), on one thread and on all cores, with
// contacts, joint limits and friction loss disabled in both; with --contact they stay on in both,
// and the random inputs are first stepped --settle times (the bodies fall onto the floor), so that
// the steps and the IFT Jacobians are timed on states in contact. Before timing, PhyDream's
// float64 next states and Jacobians are compared with MuJoCo's on the same inputs, so a fast wrong
// answer cannot pass unnoticed. PhyDream's float64 CPU calls and MuJoCo's are timed in one
// rotation of windows, so that a slow spell of a shared host falls on both engines alike.
// stdout: one JSON line per configuration, then one summary line per model and thread count.
#include <omp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "engine/articulated.h"
#include "engine/backend.h"
#include "engine/buffer.h"
#include "engine/errors.h"
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
using phydream::Buffer;
using phydream::JacobianMode;
using phydream::Simulator;
using nlohmann::json;

const std::vector<std::string> kFlags = {"contact", "limit", "frictionloss"};

struct Options {
  std::string backend = "cpu";
  std::vector<std::string> models;
  std::vector<std::string> dtypes = {"f64", "f32"};
  std::vector<int> threads;
  std::int64_t batch = 0;  // 0: 4096 on the CPU, 1e6 on a GPU
  double min_time = 0.3;
  int repeats = 1;
  std::uint64_t seed = 1;
  bool mujoco = true;
  bool contact = false;  // constraints on, inputs settled
  int settle = 100;      // steps from the random inputs before timing (with contact)
};

bool g_failed = false;

void warn(json& line, const std::string& what) {
  std::cerr << "model_bench: warning: " << what << "\n";
  line["warnings"].push_back(what);
}

// random inputs about the model's reference: hinge and slide coordinates qpos0 + U(-0.3, 0.3),
// quaternions at qpos0, velocities U(-1, 1), controls uniform in ctrlrange (else U(-1, 1))
struct Inputs {
  std::vector<double> x, u;  // (B, nq + nv), (B, nu)
};

Inputs random_inputs(const phydream::Model& m, std::int64_t batch, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> pos(-0.3, 0.3), vel(-1.0, 1.0), unit(0.0, 1.0);
  const int nx = m.nq + m.nv;
  Inputs in;
  in.x.resize(static_cast<std::size_t>(batch * nx));
  in.u.resize(static_cast<std::size_t>(batch * m.nu));
  for (std::int64_t b = 0; b < batch; ++b) {
    double* x = &in.x[b * nx];
    for (int i = 0; i < m.nq; ++i) x[i] = m.qpos0[i];
    for (int j = 0; j < m.njnt; ++j) {
      const int type = m.jnt_type[j];
      if (type == static_cast<int>(phydream::JointType::hinge) ||
          type == static_cast<int>(phydream::JointType::slide)) {
        x[m.jnt_qposadr[j]] += pos(rng);
      }
    }
    for (int i = 0; i < m.nv; ++i) x[m.nq + i] = vel(rng);
    for (int a = 0; a < m.nu; ++a) {
      const bool limited = m.actuator_ctrllimited[a] != 0;
      const double lo = limited ? m.actuator_ctrlrange[2 * a] : -1.0;
      const double hi = limited ? m.actuator_ctrlrange[2 * a + 1] : 1.0;
      in.u[b * m.nu + a] = lo + (hi - lo) * unit(rng);
    }
  }
  return in;
}

template <class S>
std::vector<S> cast(const std::vector<double>& v) {
  return std::vector<S>(v.begin(), v.end());
}

// with --contact: the inputs' states stepped opt.settle times under their controls, on the CPU in
// float64 (the peer's and the cross-check's inputs, equal to MuJoCo's trajectories to rounding);
// returns the fraction of the settled states a step of which the constraints change
double settle_inputs(const Options& opt, const std::string& path, Inputs* in);

phydream::SimulatorOptions sim_options(const Options& opt, const std::string& path, Backend backend,
                                       int threads) {
  phydream::SimulatorOptions so;
  so.model_file = path;
  if (!opt.contact) so.disable = kFlags;
  so.backend = backend;
  so.threads = threads;
  return so;
}

// ---------------------------------------------------------------------------------------------
// PhyDream

// calls of a peer (MuJoCo) timed in the same rotation as PhyDream's (see bench_phydream)
using Calls = std::vector<std::function<void()>>;

// With `peer` (CPU backend only), PhyDream's four calls and the peer's are timed in one rotation
// of windows (rates_interleaved), so that a slow spell of the host falls on both engines alike;
// the peer's rates go to peer_rates, in its calls' order. Without, each call is timed on its own.
template <class S>
json bench_phydream(const Options& opt, const std::string& path, Backend backend, int threads,
                    std::int64_t batch, const std::string& device, const Calls* peer = nullptr,
                    std::vector<double>* peer_rates = nullptr) {
  Simulator<S> sim(sim_options(opt, path, backend, threads));
  const Backend be = sim.backend();
  const int nx = sim.nx(), ndx = sim.ndx(), nu = sim.nu();
  const double b = static_cast<double>(batch);
  json j;
  j["model"] = sim.env().name;
  j["file"] = path;
  j["backend"] = phydream::backend_name(be);
  j["device"] = device;
  j["dtype"] = sizeof(S) == 4 ? "float32" : "float64";
  j["batch"] = batch;
  j["threads"] = be == Backend::cpu ? json(threads) : json(nullptr);
  j["integrator"] = phydream::integrator_name(sim.integrator());
  j["dt"] = sim.dt();
  j["nq"] = sim.env().nq;
  j["nv"] = ndx / 2;
  j["nu"] = nu;
  j["min_time_s"] = opt.min_time;
  j["repeats"] = opt.repeats;
  j["host_load_1m"] = load_average();

  const Inputs in = random_inputs(*sim.model(), batch, opt.seed);
  const auto xh = cast<S>(in.x), uh = cast<S>(in.u);
  Buffer<S> x(be, xh.size()), u(be, uh.size()), xn(be, xh.size());
  Buffer<S> jx(be, static_cast<std::size_t>(batch * ndx * ndx));
  Buffer<S> ju(be, static_cast<std::size_t>(batch * ndx * nu));
  x.upload(xh.data());
  u.upload(uh.data());
  auto sync = [&] { sim.synchronize(); };
  if (opt.contact) {
    // the same settling as settle_inputs, by the benchmarked simulator itself
    for (int t = 0; t < opt.settle; ++t) {
      sim.step(batch, x.data(), u.data(), xn.data());
      std::swap(x, xn);
    }
    sync();
    j["contact"] = true;
    j["settle_steps"] = opt.settle;
  }
  const char* names[] = {"steps_per_s", "jacobians_per_s_fwd", "jacobians_per_s_rev", "jacobians_per_s_analytic"};
  Calls calls = {[&] { sim.step(batch, x.data(), u.data(), xn.data()); }};
  for (JacobianMode mode : {JacobianMode::forward, JacobianMode::reverse, JacobianMode::analytic}) {
    calls.push_back([&, mode] { sim.jacobian(batch, x.data(), u.data(), xn.data(), jx.data(), ju.data(), mode); });
  }
  if (peer != nullptr && be == Backend::cpu) {
    const std::size_t ours = calls.size();
    calls.insert(calls.end(), peer->begin(), peer->end());
    const std::vector<double> rates = rates_interleaved(opt.min_time, b, calls);
    for (std::size_t i = 0; i < ours; ++i) j[names[i]] = rates[i];
    peer_rates->assign(rates.begin() + static_cast<std::ptrdiff_t>(ours), rates.end());
    j["timed_with_peer"] = true;
  } else {
    for (std::size_t i = 0; i < calls.size(); ++i) j[names[i]] = rate(opt.min_time, b, calls[i], sync);
  }
  const std::size_t rows = static_cast<std::size_t>(std::min<std::int64_t>(batch, 256));
  if (!all_finite(head(be, xn, rows * nx)) || !all_finite(head(be, jx, rows * ndx * ndx))) {
    warn(j, "non-finite PhyDream outputs");
  }
  return j;
}

[[maybe_unused]] double settle_inputs(const Options& opt, const std::string& path, Inputs* in) {
  Simulator<double> with(sim_options(opt, path, Backend::cpu, 0));
  phydream::SimulatorOptions free_options = sim_options(opt, path, Backend::cpu, 0);
  free_options.disable = kFlags;
  Simulator<double> without(free_options);
  const int nx = with.nx();
  const std::int64_t n = static_cast<std::int64_t>(in->x.size()) / nx;
  std::vector<double> next(in->x.size()), free_next(in->x.size());
  for (int t = 0; t < opt.settle; ++t) {
    with.step(n, in->x.data(), in->u.data(), next.data());
    in->x.swap(next);
  }
  with.step(n, in->x.data(), in->u.data(), next.data());
  without.step(n, in->x.data(), in->u.data(), free_next.data());
  std::int64_t touching = 0;
  for (std::int64_t b = 0; b < n; ++b) {
    for (int i = 0; i < nx; ++i) {
      if (next[b * nx + i] != free_next[b * nx + i]) {
        ++touching;
        break;
      }
    }
  }
  return n > 0 ? static_cast<double>(touching) / static_cast<double>(n) : 0.0;
}

// ---------------------------------------------------------------------------------------------
// MuJoCo, the peer and the oracle

#if defined(PHYDREAM_WITH_MUJOCO)
// MuJoCo on `batch` inputs and `threads` threads: step_all() writes mj_step's next states into
// next, fd_all() the centered mjd_transitionFD Jacobians into a and bm
class MujocoBatch {
 public:
  MujocoBatch(const mjModel* m, const Inputs& in, std::int64_t batch, int threads)
      : m_(m), in_(in), batch_(batch), threads_(threads), data_(threads) {
    const int nx = m->nq + m->nv, ndx = 2 * m->nv;
    next.resize(static_cast<std::size_t>(batch * nx));
    a.resize(static_cast<std::size_t>(batch * ndx * ndx));
    bm.resize(static_cast<std::size_t>(batch * ndx * m->nu));
    for (mjData*& d : data_) d = mj_makeData(m);
  }
  MujocoBatch(const MujocoBatch&) = delete;
  MujocoBatch& operator=(const MujocoBatch&) = delete;
  ~MujocoBatch() {
    for (mjData* d : data_) mj_deleteData(d);
  }

  void step_all() {
    const int nq = m_->nq, nv = m_->nv, nx = nq + nv;
    for_each_env([&](mjData* d, std::int64_t b) {
      load(d, b);
      mj_step(m_, d);
      mju_copy(next.data() + b * nx, d->qpos, nq);
      mju_copy(next.data() + b * nx + nq, d->qvel, nv);
    });
  }
  void fd_all() {
    const int nu = m_->nu, ndx = 2 * m_->nv;
    for_each_env([&](mjData* d, std::int64_t b) {
      load(d, b);
      mjd_transitionFD(m_, d, 1e-6, 1, a.data() + b * ndx * ndx, nu > 0 ? bm.data() + b * ndx * nu : nullptr,
                       nullptr, nullptr);
    });
  }

  std::vector<double> next, a, bm;

 private:
  void load(mjData* d, std::int64_t b) const {
    const int nq = m_->nq, nv = m_->nv, nu = m_->nu, nx = nq + nv;
    mju_copy(d->qpos, in_.x.data() + b * nx, nq);
    mju_copy(d->qvel, in_.x.data() + b * nx + nq, nv);
    if (nu > 0) mju_copy(d->ctrl, in_.u.data() + b * nu, nu);
    d->time = 0;
  }
  template <class F>
  void for_each_env(F&& f) {
#pragma omp parallel num_threads(threads_) if (threads_ > 1)
    {
      mjData* d = data_[omp_get_thread_num()];
#pragma omp for schedule(static)
      for (std::int64_t b = 0; b < batch_; ++b) f(d, b);
    }
  }

  const mjModel* m_;
  const Inputs& in_;
  std::int64_t batch_;
  int threads_;
  std::vector<mjData*> data_;
};

// central differences of mj_step itself, in the same tangent coordinates: MuJoCo 2.2.2's
// mjd_transitionFD gets the velocity and control columns of RK4 models wrong (its skipped stages
// reuse intermediates of the previous RK4 stage), so RK4 models are checked against this
void mj_step_differences(const mjModel* m, const Inputs& in, std::int64_t batch, MujocoBatch* r) {
  const int nq = m->nq, nv = m->nv, nu = m->nu, nx = nq + nv, ndx = 2 * nv;
  const double eps = 1e-6;
  mjData* d = mj_makeData(m);
  std::vector<double> qp(nq), qm(nq), dq(nv), dv(nv);
  for (std::int64_t b = 0; b < batch; ++b) {
    const double* x = in.x.data() + b * nx;
    const double* u = in.u.data() + b * nu;
    for (int c = 0; c < ndx + nu; ++c) {
      for (int sign : {1, -1}) {
        mju_copy(d->qpos, x, nq);
        mju_copy(d->qvel, x + nq, nv);
        if (nu > 0) mju_copy(d->ctrl, u, nu);
        d->time = 0;
        if (c < nv) {
          mju_zero(dq.data(), nv);
          dq[c] = 1;
          mj_integratePos(m, d->qpos, dq.data(), sign * eps);
        } else if (c < ndx) {
          d->qvel[c - nv] += sign * eps;
        } else {
          d->ctrl[c - ndx] += sign * eps;
        }
        mj_step(m, d);
        mju_copy(sign > 0 ? qp.data() : qm.data(), d->qpos, nq);
        mju_copy(sign > 0 ? dv.data() : dq.data(), d->qvel, nv);
      }
      std::vector<double> dpos(nv);
      mj_differentiatePos(m, dpos.data(), 2 * eps, qm.data(), qp.data());
      for (int i = 0; i < ndx; ++i) {
        const double v = i < nv ? dpos[i] : (dv[i - nv] - dq[i - nv]) / (2 * eps);
        if (c < ndx) {
          r->a[b * ndx * ndx + i * ndx + c] = v;
        } else {
          r->bm[b * ndx * nu + i * nu + (c - ndx)] = v;
        }
      }
    }
  }
  mj_deleteData(d);
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = std::abs(a[i] - b[i]);
    worst = std::isnan(d) ? INFINITY : std::max(worst, d);
  }
  return worst;
}

// PhyDream float64 against MuJoCo on 64 inputs: next state (rounding level) and Jacobians
// (finite-difference accuracy)
json cross_check(const Options& opt, const std::string& path, const mjModel* m) {
  const std::int64_t n = 64;
  Simulator<double> sim(sim_options(opt, path, Backend::cpu, 1));
  Inputs in = random_inputs(*sim.model(), n, opt.seed + 7);
  if (opt.contact) settle_inputs(opt, path, &in);
  const int nx = sim.nx(), ndx = sim.ndx(), nu = sim.nu();
  std::vector<double> xn(n * nx), jx(n * ndx * ndx), ju(n * ndx * nu);
  sim.jacobian(n, in.x.data(), in.u.data(), xn.data(), jx.data(), ju.data(), JacobianMode::analytic);
  MujocoBatch ref(m, in, n, 1);
  ref.step_all();
  ref.fd_all();
  const bool rk4 = m->opt.integrator == mjINT_RK4;
  if (rk4) mj_step_differences(m, in, n, &ref);
  json j;
  j["model"] = sim.env().name;
  j["check"] = "phydream_f64_vs_mujoco";
  j["jacobian_reference"] = rk4 ? "central differences of mj_step (mjd_transitionFD is wrong for "
                                  "RK4 in MuJoCo 2.2.2)"
                                : "mjd_transitionFD, centered";
  j["envs"] = n;
  j["next_state_max_abs_diff"] = max_abs_diff(xn, ref.next);
  j["jac_state_max_abs_diff"] = max_abs_diff(jx, ref.a);
  j["jac_action_max_abs_diff"] = max_abs_diff(ju, ref.bm);
  if (j["next_state_max_abs_diff"].get<double>() > 1e-9) warn(j, "next states differ from MuJoCo's");
  if (opt.contact) {
    // a difference that straddles a contact's switch (touching, sliding) is not a derivative:
    // count the states whose Jacobians agree to the differences' accuracy instead of warning
    int agree = 0;
    for (std::int64_t b = 0; b < n; ++b) {
      const std::vector<double> a(jx.begin() + b * ndx * ndx, jx.begin() + (b + 1) * ndx * ndx);
      const std::vector<double> r(ref.a.begin() + b * ndx * ndx, ref.a.begin() + (b + 1) * ndx * ndx);
      agree += max_abs_diff(a, r) <= 1e-4 ? 1 : 0;
    }
    j["jac_state_envs_within_1e-4"] = agree;
    j["jacobian_note"] = "with contact, MuJoCo's differences straddle active-set switches at some "
                         "states (docs/contact_gradients.md)";
  } else if (j["jac_state_max_abs_diff"].get<double>() > 1e-4 ||
             j["jac_action_max_abs_diff"].get<double>() > 1e-4) {
    warn(j, "Jacobians differ from MuJoCo's finite differences beyond their accuracy");
  }
  return j;
}
#endif

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  std::string models = "cartpole,inverted_double_pendulum,half_cheetah,finger";
  std::string dtypes = "f64,f32", threads;
  double batch = 0;
  bool no_mujoco = false;
  CLI::App app{"model_bench: PhyDream and MuJoCo on the same MJCF models, contacts disabled "
               "(--contact: enabled, on settled states)",
               "model_bench"};
  app.add_option("--models", models,
                 "comma-separated asset names (assets/NAME.xml) or paths to MJCF files")
      ->capture_default_str();
  app.add_option("--backend", opt.backend, "PhyDream backend: cpu | cuda | auto")->capture_default_str();
  app.add_option("--dtypes", dtypes, "f64,f32")->capture_default_str();
  app.add_option("--threads", threads, "CPU thread counts, comma-separated (default: 1,all)");
  app.add_option("--batch", batch, "environments per call (0: 4096 CPU, 1e6 GPU)");
  app.add_option("--min-time", opt.min_time, "seconds per timed window")->capture_default_str();
  app.add_option("--repeats", opt.repeats, "timed windows, the best reported")->capture_default_str();
  app.add_option("--seed", opt.seed, "random seed")->capture_default_str();
  app.add_flag("--no-mujoco", no_mujoco, "skip the MuJoCo peer");
  app.add_flag("--contact", opt.contact,
               "keep contacts, joint limits and friction loss on (PhyDream and MuJoCo) and time "
               "states settled onto the floor");
  app.add_option("--settle", opt.settle, "with --contact: steps from the random inputs before timing")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  CLI11_PARSE(app, argc, argv);

  try {
    opt.mujoco = !no_mujoco;
    g_repeats = std::max(1, opt.repeats);
    for (const std::string& name : split_list(models)) {
      opt.models.push_back(name.find('/') != std::string::npos || name.find(".xml") != std::string::npos
                               ? name
                               : std::string(PHYDREAM_ASSETS_DIR) + "/" + name + ".xml");
    }
    opt.dtypes = split_list(dtypes);
    for (const std::string& d : opt.dtypes) {
      if (d != "f32" && d != "f64") throw phydream::InputError("--dtypes: unknown '" + d + "'");
    }
    const int cores = omp_get_max_threads();
    if (threads.empty()) {
      opt.threads = {1};
      if (cores > 1) opt.threads.push_back(cores);
    } else {
      for (const std::string& t : split_list(threads)) opt.threads.push_back(std::stoi(t));
    }
    const Backend backend = phydream::resolve_backend(phydream::parse_backend(opt.backend));
    const bool cuda = backend == Backend::cuda;
    opt.batch = batch > 0 ? static_cast<std::int64_t>(batch) : (cuda ? 1000000 : 4096);
#if !defined(PHYDREAM_WITH_MUJOCO)
    if (opt.mujoco) std::cerr << "model_bench: built without MuJoCo; no peer measurements\n";
    opt.mujoco = false;
#endif
    const std::string host = cpu_model();
    const std::string device = cuda ? phydream::cuda_device_description() : host;
    const std::vector<int> pd_threads = cuda ? std::vector<int>{0} : opt.threads;

    for (const std::string& path : opt.models) {
      std::map<int, double> pd_jac, pd_step;  // float64 CPU rates by threads
#if defined(PHYDREAM_WITH_MUJOCO)
      std::map<int, bool> peer_timed;         // thread counts whose MuJoCo rates are emitted
      // the peer's line and the summary for thread count n (t threads)
      auto emit_peer = [&](int n, int t, std::int64_t mb, double contact_fraction, double steps, double fd) {
        json j;
        j["model"] = path;
        j["backend"] = "mujoco";
        j["peer"] = true;
        j["mujoco_version"] = mj_version();
        j["device"] = host;
        j["dtype"] = "float64";
        j["batch"] = mb;
        j["threads"] = t;
        j["steps_per_s"] = steps;
        j["jacobians_per_s_fd_centered"] = fd;
        j["timed_with_phydream"] = pd_jac.count(n) > 0 && peer_timed.count(n) > 0;
        if (opt.contact) {
          j["contact"] = true;
          j["settle_steps"] = opt.settle;
          j["contact_fraction"] = contact_fraction;
        }
        j["host_load_1m"] = load_average();
        std::cout << j.dump() << std::endl;
        if (pd_jac.count(n) > 0) {
          json sum;
          sum["summary"] = "phydream_f64_cpu_vs_mujoco";
          sum["model"] = path;
          sum["threads"] = t;
          sum["same_windows"] = j["timed_with_phydream"];
          sum["jacobian_ratio"] = pd_jac[n] / fd;
          sum["step_ratio"] = pd_step[n] / steps;
          std::cout << sum.dump() << std::endl;
        }
      };
      std::unique_ptr<MjModel> mj;
      Inputs mj_in;
      std::int64_t mb = 0;
      double contact_fraction = 0;
      if (opt.mujoco) {
        mj = std::make_unique<MjModel>(path);
        // the peer runs the same dynamics PhyDream's model_bench measures
        if (!opt.contact) mj->m->opt.disableflags |= mjDSBL_CONTACT | mjDSBL_LIMIT | mjDSBL_FRICTIONLOSS;
        std::cout << cross_check(opt, path, mj->m).dump() << std::endl;
        mb = std::min<std::int64_t>(opt.batch, 4096);
        mj_in = random_inputs(*Simulator<double>(sim_options(opt, path, Backend::cpu, 1)).model(), mb, opt.seed);
        contact_fraction = opt.contact ? settle_inputs(opt, path, &mj_in) : 0.0;
      }
#endif
      for (const std::string& dtype : opt.dtypes) {
        for (int n : pd_threads) {
          std::cerr << "model_bench: " << path << " " << dtype << " threads " << n << std::endl;
          json j;
#if defined(PHYDREAM_WITH_MUJOCO)
          if (mj && dtype == "f64" && !cuda && mb == opt.batch) {
            // float64 on the CPU: MuJoCo's step and mjd_transitionFD in the same rotation of windows
            const int t = n > 0 ? n : cores;
            MujocoBatch peer(mj->m, mj_in, mb, t);
            const Calls calls = {[&] { peer.step_all(); }, [&] { peer.fd_all(); }};
            std::vector<double> peer_rates;
            j = bench_phydream<double>(opt, path, backend, n, opt.batch, device, &calls, &peer_rates);
            std::cout << j.dump() << std::endl;
            pd_jac[n] = j["jacobians_per_s_analytic"].get<double>();
            pd_step[n] = j["steps_per_s"];
            peer_timed[n] = true;
            emit_peer(n, t, mb, contact_fraction, peer_rates[0], peer_rates[1]);
            continue;
          }
#endif
          j = dtype == "f32" ? bench_phydream<float>(opt, path, backend, n, opt.batch, device)
                             : bench_phydream<double>(opt, path, backend, n, opt.batch, device);
          std::cout << j.dump() << std::endl;
          if (dtype == "f64" && !cuda) {
            pd_jac[n] = j["jacobians_per_s_analytic"].get<double>();
            pd_step[n] = j["steps_per_s"];
          }
        }
      }
#if defined(PHYDREAM_WITH_MUJOCO)
      // MuJoCo alone for the thread counts not timed beside PhyDream's float64 CPU run
      if (mj) {
        for (int n : opt.threads) {
          if (peer_timed.count(n) > 0) continue;
          const int t = n > 0 ? n : cores;
          std::cerr << "model_bench: MuJoCo " << path << " threads " << t << std::endl;
          MujocoBatch peer(mj->m, mj_in, mb, t);
          const double bd = static_cast<double>(mb);
          const double steps = rate(opt.min_time, bd, [&] { peer.step_all(); }, [] {});
          const double fd = rate(opt.min_time, bd, [&] { peer.fd_all(); }, [] {});
          emit_peer(n, t, mb, contact_fraction, steps, fd);
        }
      }
#endif
    }
  } catch (const phydream::InputError& e) {
    std::cerr << "model_bench: error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "model_bench: error: " << e.what() << "\n";
    return 1;
  }
  return g_failed ? 1 : 0;
}
