// finger_task_bench: the Finger's spin and turn tasks (engine/tasks.h) solved by open-loop
// trajectory optimisation, with the gradient of each PhyDream gradient mode (analytic policy
// gradients through contact: ift, unrolled, fd) beside a zeroth-order peer, antithetic evolution
// strategies (ES, the gradient-free estimate REINFORCE-style methods rest on) on the same
// parameters with the same optimiser. float64, CPU, one thread.
//
// Starts: dm_control's Finger draws the finger's two angles uniformly in their ranges and the
// spinner's in [-pi, pi], at rest. Open-loop gradient descent needs the fingertip on the spinner
// (without contact the spinner's motion has no gradient with respect to the controls), so the
// starts kept are the draws whose first step already feels the contact (it differs with contact
// disabled). Turn targets: uniform in [-pi, pi), as dm_control's.
//
// Per task, start and method: the mean task reward over the horizon (dm_control's), the summed
// running cost, before and after, and the time. stdout: one JSON line per run and a summary line
// per task and method.
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "engine/errors.h"
#include "engine/model_json.h"
#include "engine/simulator.h"
#include "engine/tasks.h"

#ifndef PHYDREAM_ASSETS_DIR
#define PHYDREAM_ASSETS_DIR "assets"
#endif

namespace {

using namespace phydream;
using namespace phydream::bench;
using json = nlohmann::json;

const double kPi = std::acos(-1.0);

struct Options {
  int starts = 8;
  std::int64_t horizon = 100;  // steps of 0.01 s
  int iterations = 100;
  double lr = 0.1;
  double target_radius = 0.07;  // dm_control's turn_easy
  std::vector<std::string> tasks = {"finger_spin", "finger_turn"};
  std::vector<std::string> methods = {"ift", "unrolled", "fd", "es"};
  int es_pairs = 8;       // antithetic pairs per ES iteration
  double es_sigma = 0.1;  // on the unconstrained parameters w (u = tanh w)
  std::uint64_t seed = 0;
};

std::unique_ptr<Simulator<double>> make_sim(const std::shared_ptr<const Model>& model, GradMode mode,
                                            const std::vector<std::string>& disable = {}) {
  SimulatorOptions o;
  o.model = model;
  o.backend = Backend::cpu;
  o.threads = 1;
  o.grad_mode = mode;
  o.disable = disable;
  return std::make_unique<Simulator<double>>(o);
}

// dm_control's start states whose first step feels the contact
std::vector<std::vector<double>> contact_starts(const std::shared_ptr<const Model>& model, int n,
                                                std::mt19937_64& rng) {
  auto with = make_sim(model, GradMode::ift), without = make_sim(model, GradMode::ift, {"contact"});
  const Model& m = *model;
  std::uniform_real_distribution<double> unit(0, 1);
  std::vector<std::vector<double>> out;
  std::vector<double> u(m.nu, 0.0), y(m.nq + m.nv), y0(m.nq + m.nv);
  for (int tries = 0; static_cast<int>(out.size()) < n; ++tries) {
    if (tries > 100000) throw std::runtime_error("no contact start in 100000 draws");
    std::vector<double> x(m.nq + m.nv, 0.0);
    for (int j = 0; j < m.njnt; ++j) {
      const double lo = m.jnt_limited[j] ? m.jnt_range[2 * j] : -kPi;
      const double hi = m.jnt_limited[j] ? m.jnt_range[2 * j + 1] : kPi;
      x[m.jnt_qposadr[j]] = lo + (hi - lo) * unit(rng);
    }
    with->step(1, x.data(), u.data(), y.data());
    without->step(1, x.data(), u.data(), y0.data());
    double diff = 0;
    for (std::size_t i = 0; i < y.size(); ++i) diff = std::max(diff, std::abs(y[i] - y0[i]));
    if (diff > 1e-9) out.push_back(x);
  }
  return out;
}

// ES on w (u = tanh w, the ranges of Finger's actuators are [-1, 1]): the gradient of the summed
// cost estimated from antithetic pairs, then Adam as optimize_open_loop's
void optimize_es(Simulator<double>& sim, const Task& task, std::int64_t horizon, const double* x0,
                 double* actions, const Options& opt, std::mt19937_64& rng) {
  const int nu = sim.nu();
  const std::size_t n = static_cast<std::size_t>(horizon * nu);
  std::vector<double> w(n), mom(n, 0.0), var(n, 0.0), grad(n), eps(n), up(n), um(n);
  for (std::size_t i = 0; i < n; ++i) w[i] = std::atanh(std::clamp(actions[i], -1 + 1e-9, 1 - 1e-9));
  std::normal_distribution<double> normal(0, 1);
  double b1 = 1, b2 = 1;
  for (int it = 0; it < opt.iterations; ++it) {
    std::fill(grad.begin(), grad.end(), 0.0);
    for (int p = 0; p < opt.es_pairs; ++p) {
      for (std::size_t i = 0; i < n; ++i) {
        eps[i] = normal(rng);
        up[i] = std::tanh(w[i] + opt.es_sigma * eps[i]);
        um[i] = std::tanh(w[i] - opt.es_sigma * eps[i]);
      }
      const double cp = evaluate_open_loop(sim, task, 1, horizon, x0, up.data()).cost;
      const double cm = evaluate_open_loop(sim, task, 1, horizon, x0, um.data()).cost;
      for (std::size_t i = 0; i < n; ++i) grad[i] += (cp - cm) * eps[i] / (2 * opt.es_sigma * opt.es_pairs);
    }
    b1 *= 0.9;
    b2 *= 0.999;
    for (std::size_t i = 0; i < n; ++i) {
      mom[i] = 0.9 * mom[i] + 0.1 * grad[i];
      var[i] = 0.999 * var[i] + 0.001 * grad[i] * grad[i];
      w[i] -= opt.lr * (mom[i] / (1 - b1)) / (std::sqrt(var[i] / (1 - b2)) + 1e-8);
    }
  }
  for (std::size_t i = 0; i < n; ++i) actions[i] = std::tanh(w[i]);
}

GradMode mode_of(const std::string& method) {
  if (method == "unrolled") return GradMode::unrolled;
  if (method == "fd") return GradMode::fd;
  return GradMode::ift;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"finger_task_bench: Finger spin and turn by open-loop optimisation with each gradient "
               "mode and a zeroth-order peer (ES); JSON lines on stdout"};
  Options opt;
  std::string tasks = "finger_spin,finger_turn", methods = "ift,unrolled,fd,es";
  app.add_option("--starts", opt.starts, "start states per task (dm_control's draws in contact)")->capture_default_str();
  app.add_option("--horizon", opt.horizon, "steps per trajectory (dt 0.01 s)")->capture_default_str();
  app.add_option("--iterations", opt.iterations, "optimiser iterations per start and method")->capture_default_str();
  app.add_option("--lr", opt.lr, "Adam's learning rate on w (u = tanh w)")->capture_default_str();
  app.add_option("--target-radius", opt.target_radius, "turn: target radius, m (dm_control: 0.07 easy, 0.03 hard)")
      ->capture_default_str();
  app.add_option("--tasks", tasks, "comma-separated: finger_spin, finger_turn")->capture_default_str();
  app.add_option("--methods", methods, "comma-separated: ift, unrolled, fd (gradient modes), es")->capture_default_str();
  app.add_option("--es-pairs", opt.es_pairs, "ES: antithetic pairs per iteration")->capture_default_str();
  app.add_option("--es-sigma", opt.es_sigma, "ES: perturbation scale on w")->capture_default_str();
  app.add_option("--seed", opt.seed, "random seed of the starts, targets and ES")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  auto split = [](const std::string& s) {
    std::vector<std::string> out;
    std::stringstream in(s);
    for (std::string item; std::getline(in, item, ',');) {
      if (!item.empty()) out.push_back(item);
    }
    return out;
  };
  try {
    opt.tasks = split(tasks);
    opt.methods = split(methods);
    for (const std::string& m : opt.methods) {
      if (m != "ift" && m != "unrolled" && m != "fd" && m != "es") throw InputError("unknown method '" + m + "'");
    }
    if (opt.starts < 1 || opt.horizon < 1 || opt.iterations < 0 || !(opt.lr > 0) || opt.es_pairs < 1 ||
        !(opt.es_sigma > 0)) {
      throw InputError("--starts, --horizon, --es-pairs >= 1, --iterations >= 0, --lr and --es-sigma > 0");
    }
    auto model = std::make_shared<const Model>(load_model(std::string(PHYDREAM_ASSETS_DIR) + "/finger.xml"));
    std::mt19937_64 rng(opt.seed);
    const auto starts = contact_starts(model, opt.starts, rng);
    json meta;
    meta["kind"] = "meta";
    meta["cpu"] = cpu_model();
    meta["date"] = std::time(nullptr);
    meta["starts"] = opt.starts;
    meta["horizon"] = opt.horizon;
    meta["iterations"] = opt.iterations;
    meta["lr"] = opt.lr;
    meta["es_pairs"] = opt.es_pairs;
    meta["es_sigma"] = opt.es_sigma;
    meta["target_radius"] = opt.target_radius;
    std::cout << meta.dump() << std::endl;
    std::uniform_real_distribution<double> angle(-kPi, kPi);
    for (const std::string& task_name : opt.tasks) {
      std::map<std::string, std::vector<double>> reward, seconds;
      std::vector<double> reward_before;
      for (int s = 0; s < opt.starts; ++s) {
        const double target = angle(rng);
        const auto task = make_task(*model, task_name, target, opt.target_radius);
        for (const std::string& method : opt.methods) {
          auto sim = make_sim(model, mode_of(method));
          std::vector<double> actions(opt.horizon * sim->nu(), 0.0);
          const OpenLoopProgress before =
              evaluate_open_loop(*sim, *task, 1, opt.horizon, starts[s].data(), actions.data());
          std::mt19937_64 es_rng(opt.seed * 7919 + s);
          const auto t0 = Clock::now();
          if (method == "es") {
            optimize_es(*sim, *task, opt.horizon, starts[s].data(), actions.data(), opt, es_rng);
          } else {
            OpenLoopOptions o;
            o.iterations = opt.iterations;
            o.learning_rate = opt.lr;
            optimize_open_loop(*sim, *task, 1, opt.horizon, starts[s].data(), actions.data(), o);
          }
          const double secs = seconds_since(t0);
          const OpenLoopProgress after =
              evaluate_open_loop(*sim, *task, 1, opt.horizon, starts[s].data(), actions.data());
          json j;
          j["kind"] = "run";
          j["task"] = task_name;
          j["start"] = s;
          j["x0"] = starts[s];
          j["target_angle"] = target;
          j["method"] = method;
          j["cost_before"] = before.cost;
          j["cost_after"] = after.cost;
          j["reward_before"] = before.reward;
          j["reward_after"] = after.reward;
          j["seconds"] = secs;
          std::cout << j.dump() << std::endl;
          reward[method].push_back(after.reward);
          seconds[method].push_back(secs);
          if (method == opt.methods.front()) reward_before.push_back(before.reward);
        }
      }
      for (const std::string& method : opt.methods) {
        json j;
        j["kind"] = "summary";
        j["task"] = task_name;
        j["method"] = method;
        double r = 0, t = 0, solved = 0, r0 = 0;
        for (std::size_t k = 0; k < reward[method].size(); ++k) {
          r += reward[method][k];
          t += seconds[method][k];
          solved += reward[method][k] > 0.5;
          r0 += reward_before[k];
        }
        const double n = static_cast<double>(reward[method].size());
        j["mean_reward_before"] = r0 / n;
        j["mean_reward_after"] = r / n;
        j["starts_with_reward_above_half"] = solved;
        j["mean_seconds"] = t / n;
        std::cout << j.dump() << std::endl;
      }
    }
  } catch (const InputError& e) {
    std::cerr << "finger_task_bench: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "finger_task_bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
