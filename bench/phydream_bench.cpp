// phydream_bench: throughput of the batched simulator -- steps, analytic and finite-difference
// Jacobians, rollouts and their reverse mode -- per environment, backend, precision, batch size
// and thread count, with MuJoCo's double pendulum as a peer when it is built in.
// stdout: one JSON line per configuration and nothing else; progress and warnings go to stderr.
#include <omp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/buffer.h"
#include "engine/errors.h"
#include "engine/simulator.h"
#include "models/envs.h"
#include "bench/bench_util.h"

#if defined(PHYDREAM_WITH_CUDA)
#include <cuda_runtime.h>
#endif
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

struct Options {
  std::string backend = "auto";
  std::vector<std::string> envs;
  std::vector<std::string> dtypes = {"f32", "f64"};
  std::vector<double> batches;  // doubles so that 1e6 is accepted
  std::vector<int> threads = {0};
  double min_time = 0.3;
  std::int64_t horizon = 100;
  bool mujoco = true;
  std::int64_t mujoco_max_batch = 10000;
  std::string mujoco_model = PHYDREAM_ASSETS_DIR "/double_pendulum.xml";
  double rollout_max_gib = 32;
  std::uint64_t seed = 1;
  int repeats = 1;
};

// everything printed so far, for the summary lines
std::vector<json> g_lines;
bool g_failed = false;

void emit(const json& line) {
  std::cout << line.dump() << std::endl;
  g_lines.push_back(line);
}

void warn(json& line, const std::string& what) {
  std::cerr << "phydream_bench: warning: " << what << "\n";
  line["warnings"].push_back(what);
}

// batch states: positions (angles; the cart position too) in [-pi, pi], rates in [-2, 2]
template <class S>
std::vector<S> random_states(std::int64_t batch, int nq, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> angle(-M_PI, M_PI), rate(-2.0, 2.0);
  std::vector<S> x(static_cast<std::size_t>(batch * 2 * nq));
  for (std::int64_t b = 0; b < batch; ++b) {
    for (int i = 0; i < nq; ++i) x[b * 2 * nq + i] = static_cast<S>(angle(rng));
    for (int i = 0; i < nq; ++i) x[b * 2 * nq + nq + i] = static_cast<S>(rate(rng));
  }
  return x;
}

// copies between the host and a buffer's memory on either backend
template <class S>
void copy_in(Backend be, S* dst, const S* src, std::size_t n) {
  if (be == Backend::cuda) {
    phydream::cuda_memcpy_to_device(dst, src, n * sizeof(S), nullptr);
  } else {
    std::memcpy(dst, src, n * sizeof(S));
  }
}

// fills a buffer with copies of `block`: long action sequences repeat one random block, which
// keeps the host side small at a batch of millions
template <class S>
void fill_tiled(Backend be, Buffer<S>& buf, const std::vector<S>& block) {
  for (std::size_t off = 0; off < buf.size(); off += block.size()) {
    copy_in(be, buf.data() + off, block.data(), std::min(block.size(), buf.size() - off));
  }
}

// max |a - b| / max(1, |b|): step Jacobians are the identity plus O(dt) terms
template <class S>
double max_rel_diff(const std::vector<S>& a, const std::vector<S>& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    const double d = std::abs(double(a[i]) - double(b[i])) / std::max(1.0, std::abs(double(b[i])));
    worst = std::isnan(d) ? INFINITY : std::max(worst, d);
  }
  return worst;
}

// ---------------------------------------------------------------------------------------------
// the copy bandwidth that the Jacobian's memory traffic is compared with

#if defined(PHYDREAM_WITH_CUDA)
void check_cuda(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    throw phydream::BackendError(std::string(what) + ": " + cudaGetErrorString(err));
  }
}

// a 1 GiB device-to-device cudaMemcpy timed with events; bytes read + written per second, GB/s
double measure_copy_bandwidth_gbs() {
  const std::size_t bytes = std::size_t(1) << 30;
  const int reps = 10;
  void* src = nullptr;
  void* dst = nullptr;
  check_cuda(cudaMalloc(&src, bytes), "cudaMalloc");
  check_cuda(cudaMalloc(&dst, bytes), "cudaMalloc");
  check_cuda(cudaMemset(src, 1, bytes), "cudaMemset");
  cudaEvent_t start, stop;
  check_cuda(cudaEventCreate(&start), "cudaEventCreate");
  check_cuda(cudaEventCreate(&stop), "cudaEventCreate");
  check_cuda(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice), "cudaMemcpy");  // warm-up
  check_cuda(cudaEventRecord(start), "cudaEventRecord");
  for (int r = 0; r < reps; ++r) {
    check_cuda(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice), "cudaMemcpy");
  }
  check_cuda(cudaEventRecord(stop), "cudaEventRecord");
  check_cuda(cudaEventSynchronize(stop), "cudaEventSynchronize");
  float ms = 0;
  check_cuda(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaFree(src);
  cudaFree(dst);
  return 2.0 * double(bytes) * reps / (double(ms) * 1e-3) / 1e9;
}
#else
double measure_copy_bandwidth_gbs() {
  throw phydream::BackendError("this build has no CUDA support");
}
#endif

// ---------------------------------------------------------------------------------------------
// PhyDream: one (env, backend, dtype, batch, threads) configuration

template <class S>
json bench_phydream(const Options& opt, const std::string& env, Backend backend, int threads,
                    std::int64_t batch, const std::string& device, double copy_gbs) {
  phydream::SimulatorOptions so;
  so.env = env;
  so.backend = backend;
  so.threads = threads;
  Simulator<S> sim(so);
  const Backend be = sim.backend();
  const int nx = sim.nx(), nu = sim.nu(), nq = sim.env().nq;
  const std::int64_t T = opt.horizon;
  const double b = static_cast<double>(batch);
  const bool f32 = sizeof(S) == 4;

  json j;
  j["env"] = env;
  j["backend"] = phydream::backend_name(be);
  j["device"] = device;
  j["dtype"] = f32 ? "float32" : "float64";
  j["batch"] = batch;
  j["threads"] = be == Backend::cpu ? json(threads) : json(nullptr);
  j["integrator"] = phydream::integrator_name(sim.integrator());
  j["dt"] = sim.dt();
  j["min_time_s"] = opt.min_time;
  j["repeats"] = opt.repeats;
  j["host_load_1m"] = load_average();

  // inputs and outputs on the backend
  std::mt19937_64 rng(opt.seed);
  const auto x_host = random_states<S>(batch, nq, rng);
  const auto u_host = uniform<S>(static_cast<std::size_t>(batch * nu), -1, 1, rng);
  Buffer<S> x(be, x_host.size()), u(be, u_host.size()), xn(be, x_host.size());
  Buffer<S> jx(be, static_cast<std::size_t>(batch * nx * nx));
  Buffer<S> ju(be, static_cast<std::size_t>(batch * nx * nu));
  x.upload(x_host.data());
  u.upload(u_host.data());
  auto sync = [&] { sim.synchronize(); };

  // step and the three Jacobians; the same inputs every call, so no trajectory can blow up
  const double steps = rate(opt.min_time, b, [&] {
    sim.step(batch, x.data(), u.data(), xn.data());
  }, sync);
  const std::size_t rows = static_cast<std::size_t>(std::min<std::int64_t>(batch, 1024));
  const double fwd = rate(opt.min_time, b, [&] {
    sim.jacobian(batch, x.data(), u.data(), xn.data(), jx.data(), ju.data(), JacobianMode::forward);
  }, sync);
  auto jf = head(be, jx, rows * nx * nx), jfu = head(be, ju, rows * nx * nu);
  const auto xn_head = head(be, xn, rows * nx);
  const double rev = rate(opt.min_time, b, [&] {
    sim.jacobian(batch, x.data(), u.data(), xn.data(), jx.data(), ju.data(), JacobianMode::reverse);
  }, sync);
  auto jr = head(be, jx, rows * nx * nx), jru = head(be, ju, rows * nx * nu);
  const double fd = rate(opt.min_time, b, [&] {
    sim.jacobian_fd(batch, x.data(), u.data(), jx.data(), ju.data());
  }, sync);
  auto jd = head(be, jx, rows * nx * nx), jdu = head(be, ju, rows * nx * nu);
  j["steps_per_s"] = steps;
  j["jacobians_per_s_fwd"] = fwd;
  j["jacobians_per_s_rev"] = rev;
  j["jacobians_per_s_fd"] = fd;

  // rollout of `horizon` steps and its reverse mode from the stored trajectory, for a terminal
  // cotangent; both counted in environment steps per second
  j["horizon"] = T;
  const double rollout_bytes = double(sizeof(S)) * b *
                               double((T + 1) * nx + 2 * T * nu + 2 * nx);
  if (rollout_bytes > opt.rollout_max_gib * double(std::size_t(1) << 30)) {
    j["rollout_steps_per_s"] = nullptr;
    j["rollout_vjp_steps_per_s"] = nullptr;
    warn(j, "rollout skipped: its buffers need " + std::to_string(rollout_bytes / (1 << 30)) +
                " GiB, over --rollout-max-gib");
  } else {
    Buffer<S> actions(be, static_cast<std::size_t>(batch * T * nu));
    Buffer<S> states(be, static_cast<std::size_t>(batch * (T + 1) * nx));
    Buffer<S> gx0(be, static_cast<std::size_t>(batch * nx));
    Buffer<S> g_actions(be, static_cast<std::size_t>(batch * T * nu));
    Buffer<S> g_final(be, static_cast<std::size_t>(batch * nx));
    const std::size_t block = std::min<std::size_t>(actions.size(), std::size_t(1) << 20);
    fill_tiled(be, actions, uniform<S>(block, -1, 1, rng));
    fill_tiled(be, g_final, std::vector<S>(std::min<std::size_t>(g_final.size(), 1 << 20), S(1)));
    const double work = b * double(T);
    j["rollout_steps_per_s"] = rate(opt.min_time, work, [&] {
      sim.rollout(batch, T, x.data(), actions.data(), states.data());
    }, sync);
    j["rollout_vjp_steps_per_s"] = rate(opt.min_time, work, [&] {
      sim.rollout_vjp(batch, T, x.data(), actions.data(), states.data(), gx0.data(),
                      g_actions.data(), nullptr, g_final.data());
    }, sync);
    // the share of sampled environments whose trajectory left the floating-point range
    const auto traj = head(be, states, rows * (T + 1) * nx);
    std::int64_t diverged = 0;
    for (std::size_t r = 0; r < rows; ++r) {
      const auto first = traj.begin() + r * (T + 1) * nx;
      diverged += !std::all_of(first, first + (T + 1) * nx, [](S e) { return std::isfinite(e); });
    }
    j["rollout_nonfinite_fraction"] = double(diverged) / double(rows);
    if (diverged > 0) {
      warn(j, std::to_string(diverged) + " of " + std::to_string(rows) +
                  " sampled rollouts reach non-finite states");
    }
  }

  // memory traffic of step + Jacobian: x, u in; x', d x'/dx, d x'/du out
  const int bytes_per_env_step = (nx + nu + nx + nx * (nx + nu)) * int(sizeof(S));
  j["bytes_per_env_step"] = bytes_per_env_step;
  if (be == Backend::cuda) {
    j["measured_copy_bandwidth_gbs"] = copy_gbs;
    j["jacobian_bandwidth_fraction"] = fwd * bytes_per_env_step / (copy_gbs * 1e9);
  }

  // sanity: finite outputs, forward = reverse to rounding, central differences close to both
  const double fwd_rev = std::max(max_rel_diff(jf, jr), max_rel_diff(jfu, jru));
  const double fd_err = std::max(max_rel_diff(jd, jf), max_rel_diff(jdu, jfu));
  j["check_fwd_rev_max_rel_diff"] = fwd_rev;
  j["check_fd_max_rel_err"] = fd_err;
  if (!all_finite(xn_head) || !all_finite(jf) || !all_finite(jfu)) {
    warn(j, "non-finite step or Jacobian outputs");
  }
  if (!(fwd_rev <= (f32 ? 1e-4 : 1e-10))) warn(j, "forward and reverse Jacobians differ");
  if (!(fd_err <= (f32 ? 5e-2 : 1e-5))) warn(j, "finite-difference Jacobian far from analytic");
  // rates: at small batches fixed costs dominate and any ratio is possible
  if (batch >= 1000) {
    if (fwd > 1.5 * steps || fwd < steps / 20) {
      warn(j, "forward Jacobian rate not within [1/20, 1.5] x the step rate");
    }
    if (rev > 1.5 * steps || rev < steps / 20) {
      warn(j, "reverse Jacobian rate not within [1/20, 1.5] x the step rate");
    }
    // central differences take 2 (nx + nu) steps per environment
    const double fd_expected = steps / (2.0 * (nx + nu));
    if (fd > 4 * fd_expected || fd < fd_expected / 8) {
      warn(j, "finite-difference rate not within [1/8, 4] x step rate / (2 (nx + nu))");
    }
  }
  return j;
}

// ---------------------------------------------------------------------------------------------
// MuJoCo peer: the double pendulum of assets/double_pendulum.xml, one mjData per thread

#if defined(PHYDREAM_WITH_MUJOCO)
// MuJoCo prints its warnings and errors on stdout by default; stdout is for JSON only
void mujoco_warning(const char* msg) {
  std::cerr << "phydream_bench: MuJoCo warning: " << msg << "\n";
}
void mujoco_error(const char* msg) {
  std::cerr << "phydream_bench: MuJoCo error: " << msg << "\n";
  std::exit(1);
}

json bench_mujoco(const Options& opt, const mjModel* m, int threads, std::int64_t batch,
                  const std::string& device) {
  const int nv = m->nv, nu = m->nu, nx = 2 * m->nv;
  const double eps = 1e-6;
  json j;
  j["env"] = "double_pendulum";
  j["backend"] = "mujoco";
  j["peer"] = true;
  j["device"] = device;
  j["dtype"] = "float64";
  j["batch"] = batch;
  j["threads"] = threads;
  j["integrator"] = "mujoco_euler";
  j["dt"] = m->opt.timestep;
  j["min_time_s"] = opt.min_time;
  j["repeats"] = opt.repeats;
  j["host_load_1m"] = load_average();
  j["mujoco_version"] = mj_version();
  j["fd_eps"] = eps;
  j["fd_centered"] = true;

  // the same states and actions as PhyDream's float64 double pendulum; MuJoCo's second hinge
  // measures the angle relative to the first rod
  std::mt19937_64 rng(opt.seed);
  const auto x = random_states<double>(batch, nv, rng);
  const auto ctrl = uniform<double>(static_cast<std::size_t>(batch * nu), -1, 1, rng);
  std::vector<double> qpos(batch * nv), qvel(batch * nv);
  for (std::int64_t b = 0; b < batch; ++b) {
    for (int i = 0; i < nv; ++i) {
      const double prev_q = i > 0 ? x[b * nx + i - 1] : 0.0;
      const double prev_w = i > 0 ? x[b * nx + nv + i - 1] : 0.0;
      qpos[b * nv + i] = x[b * nx + i] - prev_q;
      qvel[b * nv + i] = x[b * nx + nv + i] - prev_w;
    }
  }
  std::vector<double> next(batch * nx), a(batch * nx * nx), bm(batch * nx * nu);

  std::vector<mjData*> data(threads);
  for (mjData*& d : data) d = mj_makeData(m);
  auto load = [&](mjData* d, std::int64_t b) {
    mju_copy(d->qpos, qpos.data() + b * nv, nv);
    mju_copy(d->qvel, qvel.data() + b * nv, nv);
    mju_copy(d->ctrl, ctrl.data() + b * nu, nu);
    d->time = 0;
  };
  // every environment of the batch through `f`, static split over the threads
  auto for_each_env = [&](auto&& f) {
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
      mjData* d = data[omp_get_thread_num()];
#pragma omp for schedule(static)
      for (std::int64_t b = 0; b < batch; ++b) f(d, b);
    }
  };
  auto sync = [] {};
  const double bd = static_cast<double>(batch);
  const double steps = rate(opt.min_time, bd, [&] {
    for_each_env([&](mjData* d, std::int64_t b) {
      load(d, b);
      mj_step(m, d);
      mju_copy(next.data() + b * nx, d->qpos, nv);
      mju_copy(next.data() + b * nx + nv, d->qvel, nv);
    });
  }, sync);
  const double fd = rate(opt.min_time, bd, [&] {
    for_each_env([&](mjData* d, std::int64_t b) {
      load(d, b);
      mjd_transitionFD(m, d, eps, 1, a.data() + b * nx * nx, bm.data() + b * nx * nu, nullptr,
                       nullptr);
    });
  }, sync);
  for (mjData* d : data) mj_deleteData(d);
  j["steps_per_s"] = steps;
  j["jacobians_per_s_fd"] = fd;

  // sanity: finite outputs; centered differences take 2 (2 nv + nu) steps per environment
  if (!all_finite(next) || !all_finite(a) || !all_finite(bm)) warn(j, "non-finite MuJoCo outputs");
  const double fd_expected = steps / (2.0 * (nx + nu));
  if (batch >= 1000 && (fd > 4 * fd_expected || fd < fd_expected / 8)) {
    warn(j, "MuJoCo finite-difference rate not within [1/8, 4] x step rate / (2 (nx + nu))");
  }
  return j;
}

// ---------------------------------------------------------------------------------------------
// the double pendulum's analytic float64 Jacobians against MuJoCo's centered differences

const json* find_line(const std::string& backend, const std::string& dtype, int threads,
                      std::int64_t batch) {
  for (const json& l : g_lines) {
    if (l.value("env", "") != "double_pendulum" || l.value("backend", "") != backend ||
        l.value("dtype", "") != dtype || l.contains("error") || l["batch"] != batch) {
      continue;
    }
    if (backend != "cuda" && l["threads"] != threads) continue;
    return &l;
  }
  return nullptr;
}

void emit_summaries(const std::vector<int>& threads, const std::vector<std::int64_t>& batches,
                    const std::vector<std::int64_t>& mujoco_batches, Backend backend) {
  const std::string be = phydream::backend_name(backend);
  // PhyDream at batch 1e5 or, without it, the largest batch run; MuJoCo at its largest batch
  std::int64_t pd_batch = *std::max_element(batches.begin(), batches.end());
  if (std::count(batches.begin(), batches.end(), 100000) > 0) pd_batch = 100000;
  const std::int64_t mj_batch = *std::max_element(mujoco_batches.begin(), mujoco_batches.end());
  for (int n : threads) {
    const json* pd = find_line(be, "float64", n, pd_batch);
    const json* mj = find_line("mujoco", "float64", n, mj_batch);
    if (pd == nullptr || mj == nullptr) {
      std::cerr << "phydream_bench: no summary for " << n << " threads: a measurement is missing\n";
      continue;
    }
    const double pd_rate = (*pd)["jacobians_per_s_fwd"], mj_rate = (*mj)["jacobians_per_s_fd"];
    json s;
    s["summary"] = "double_pendulum_jacobian_ratio";
    s["threads"] = n;
    s["phydream_backend"] = be;
    s["phydream_batch"] = pd_batch;
    s["mujoco_batch"] = mj_batch;
    s["phydream_f64_jacobians_per_s"] = pd_rate;
    s["mujoco_fd_jacobians_per_s"] = mj_rate;
    s["ratio"] = pd_rate / mj_rate;
    emit(s);
  }
}
#endif

// ---------------------------------------------------------------------------------------------

int run(Options opt) {
  // what to run, validated before anything is measured
  const Backend backend = phydream::resolve_backend(phydream::parse_backend(opt.backend));
  const bool cuda = backend == Backend::cuda;
  if (opt.envs.empty()) {
    for (const auto& e : phydream::environments()) opt.envs.push_back(e.name);
  }
  for (const auto& e : opt.envs) phydream::find_env(e);
  for (const auto& d : opt.dtypes) {
    if (d != "f32" && d != "f64") {
      throw phydream::InputError("unknown dtype '" + d + "'; expected f32 or f64");
    }
  }
  if (opt.batches.empty()) {
    opt.batches = cuda ? std::vector<double>{1, 1e3, 1e4, 1e5, 1e6, 4e6}
                       : std::vector<double>{100, 1000, 10000, 100000};
  }
  std::vector<std::int64_t> batches;
  for (double b : opt.batches) {
    if (!(b >= 1) || b != std::floor(b) || b > 1e12) {
      throw phydream::InputError("--batches: each batch must be a positive integer");
    }
    batches.push_back(static_cast<std::int64_t>(b));
  }
  if (!(opt.min_time > 0)) throw phydream::InputError("--min-time must be > 0");
  if (opt.horizon < 1) throw phydream::InputError("--horizon must be >= 1");
  if (opt.repeats < 1) throw phydream::InputError("--repeats must be >= 1");
  g_repeats = opt.repeats;
  // thread counts: 0 means all cores; duplicates dropped
  std::vector<int> threads;
  for (int t : opt.threads) {
    if (t < 0) throw phydream::InputError("--threads must be >= 0");
    const int n = t == 0 ? omp_get_num_procs() : t;
    if (std::find(threads.begin(), threads.end(), n) == threads.end()) threads.push_back(n);
  }
#if !defined(PHYDREAM_WITH_MUJOCO)
  if (opt.mujoco) {
    std::cerr << "phydream_bench: built without MuJoCo; no peer measurements\n";
    opt.mujoco = false;
  }
#endif
  const bool with_dp = std::count(opt.envs.begin(), opt.envs.end(), "double_pendulum") > 0;
#if defined(PHYDREAM_WITH_MUJOCO)
  // the peer's model, loaded before anything is measured so that a bad path fails early
  std::unique_ptr<MjModel> model;
  if (opt.mujoco && with_dp) {
    mju_user_warning = mujoco_warning;
    mju_user_error = mujoco_error;
    model = std::make_unique<MjModel>(opt.mujoco_model);
  }
#endif

  const std::string host = cpu_model();
  const std::string device = cuda ? phydream::cuda_device_description() : host;
  double copy_gbs = 0;
  if (cuda) {
    std::cerr << "phydream_bench: measuring device-to-device copy bandwidth\n";
    copy_gbs = measure_copy_bandwidth_gbs();
  }
  std::cerr << "phydream_bench: backend " << phydream::backend_name(backend) << " on " << device
            << "\n";

  // PhyDream: env x dtype x threads x batch; the CUDA backend has no thread count
  const std::vector<int> pd_threads = cuda ? std::vector<int>{0} : threads;
  for (const auto& env : opt.envs) {
    for (const auto& dtype : opt.dtypes) {
      for (int n : pd_threads) {
        for (std::int64_t batch : batches) {
          std::cerr << "phydream_bench: " << env << " " << dtype << " batch " << batch;
          if (!cuda) std::cerr << " threads " << n;
          std::cerr << std::endl;
          try {
            emit(dtype == "f32"
                     ? bench_phydream<float>(opt, env, backend, n, batch, device, copy_gbs)
                     : bench_phydream<double>(opt, env, backend, n, batch, device, copy_gbs));
          } catch (const phydream::InputError&) {
            throw;
          } catch (const std::exception& e) {
            // out of memory or a runtime failure: record it, go on with the next one
            std::cerr << "phydream_bench: error: " << e.what() << "\n";
            g_failed = true;
            emit({{"env", env}, {"backend", phydream::backend_name(backend)},
                  {"dtype", dtype == "f32" ? "float32" : "float64"}, {"batch", batch},
                  {"threads", cuda ? json(nullptr) : json(n)}, {"error", e.what()}});
          }
        }
      }
    }
  }

#if defined(PHYDREAM_WITH_MUJOCO)
  if (model) {
    // the peer on the host's threads: one thread, and each --threads setting
    std::vector<std::int64_t> mj_batches;
    for (std::int64_t b : batches) {
      if (b <= opt.mujoco_max_batch) mj_batches.push_back(b);
    }
    if (mj_batches.empty()) mj_batches.push_back(opt.mujoco_max_batch);
    std::vector<int> mj_threads = {1};
    for (int n : threads) {
      if (n != 1) mj_threads.push_back(n);
    }
    for (int n : mj_threads) {
      for (std::int64_t batch : mj_batches) {
        std::cerr << "phydream_bench: mujoco double_pendulum batch " << batch << " threads " << n
                  << std::endl;
        emit(bench_mujoco(opt, model->m, n, batch, host));
      }
    }
    emit_summaries(cuda ? mj_threads : threads, batches, mj_batches, backend);
  }
#endif
  (void)with_dp;
  return g_failed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{"PhyDream throughput benchmark: one JSON line per configuration on stdout",
               "phydream_bench"};
  app.add_option("--backend", opt.backend, "cpu | cuda | auto")->capture_default_str();
  app.add_option("--envs", opt.envs, "environments, comma-separated (default: all)")
      ->delimiter(',');
  app.add_option("--dtypes", opt.dtypes, "f32,f64")->delimiter(',')->capture_default_str();
  app.add_option("--batches", opt.batches,
                 "batch sizes, comma-separated (default: cpu 100,1000,10000,100000; "
                 "cuda 1,1e3,1e4,1e5,1e6,4e6)")
      ->delimiter(',');
  app.add_option("--threads", opt.threads,
                 "CPU threads, comma-separated for several settings; 0 = all cores")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--min-time", opt.min_time, "seconds each measurement runs at least")
      ->capture_default_str();
  app.add_option("--repeats", opt.repeats,
                 "timed windows per measurement after the warm-up; the best is reported")
      ->capture_default_str();
  app.add_option("--horizon", opt.horizon, "rollout length in steps")->capture_default_str();
  app.add_option("--seed", opt.seed, "seed of the random states and actions")
      ->capture_default_str();
  app.add_flag("--mujoco,!--no-mujoco", opt.mujoco,
               "measure MuJoCo's double pendulum as a peer (default: on when built in)");
  app.add_option("--mujoco-model", opt.mujoco_model, "MJCF of the peer double pendulum")
      ->capture_default_str();
  app.add_option("--mujoco-max-batch", opt.mujoco_max_batch,
                 "largest batch the MuJoCo peer runs")
      ->capture_default_str();
  app.add_option("--rollout-max-gib", opt.rollout_max_gib,
                 "skip rollouts whose buffers would need more memory")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    return run(opt);
  } catch (const phydream::InputError& e) {
    std::cerr << "phydream_bench: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "phydream_bench: " << e.what() << "\n";
    return 1;
  }
}
