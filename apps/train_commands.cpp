#include "apps/train_commands.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "apps/io.h"
#include "engine/errors.h"
#include "engine/npy.h"
#include "training/checkpoint.h"
#include "training/cpu_gemm.h"
#include "training/eval.h"
#include "training/mlp_cpu.h"
#include "training/trainer.h"

namespace phydream::cli {

namespace fs = std::filesystem;
using nlohmann::json;
using training::ModelState;
using training::TrainConfig;

namespace {

using Clock = std::chrono::steady_clock;

// writes text to path through a temporary file, so readers never see half of it
void write_text(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + path.string());
  }
  fs::rename(tmp, path);
}

// keeps the header of a metrics.csv and its rows up to `step`
void drop_rows_after(const fs::path& csv, std::int64_t step) {
  std::ifstream in(csv);
  std::string line, kept;
  for (bool header = true; std::getline(in, line); header = false) {
    if (header || (!line.empty() && std::atoll(line.c_str()) <= step)) kept += line + "\n";
  }
  in.close();
  write_text(csv, kept);
}

Backend resolve(const std::string& name, std::string* reason) {
  Backend b;
  try {
    b = parse_backend(name);
  } catch (const InputError& e) {
    throw InputError(std::string("--backend: ") + e.what());
  }
  return resolve_backend(b, reason);
}

// the training loop's progress on stderr: a rewritten line on a terminal, else every ~10 %
class Progress {
 public:
  Progress(std::string label, std::int64_t total, bool quiet)
      : label_(std::move(label)), total_(total), quiet_(quiet), tty_(isatty(2) != 0) {}
  void update(const training::StepLog& l) {
    if (quiet_) return;
    const std::int64_t decile = total_ > 0 ? (l.step * 10) / total_ : 10;
    if (!tty_ && decile == last_decile_ && l.step != total_) return;
    last_decile_ = decile;
    std::fprintf(stderr, "%s%s step %lld/%lld  loss %.4e  mse %.4e  jal %.4e  %.3g samples/s%s",
                 tty_ ? "\r" : "", label_.c_str(), static_cast<long long>(l.step),
                 static_cast<long long>(total_), l.terms.total, l.terms.mse, l.terms.jal,
                 l.samples_per_s, tty_ ? "   " : "\n");
    std::fflush(stderr);
  }
  void done() {
    if (!quiet_ && tty_) std::fprintf(stderr, "\n");
  }

 private:
  std::string label_;
  std::int64_t total_;
  bool quiet_, tty_;
  std::int64_t last_decile_ = -1;
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

// empty when `checkpoint` and `config` describe the same environment; else what differs. A
// model file is compared by content: the checkpoint holds a copy of the one it was trained on.
std::string environment_difference(const TrainConfig& checkpoint, const TrainConfig& config) {
  auto describe = [](const TrainConfig& c) {
    return c.env_model.empty() ? "environment '" + c.env + "'" : "model file " + c.env_model;
  };
  if (checkpoint.env_model.empty() != config.env_model.empty() ||
      checkpoint.env != config.env) {
    return describe(checkpoint) + " against the config's " + describe(config);
  }
  if (!config.env_model.empty()) {
    if (read_bytes(checkpoint.env_model) != read_bytes(config.env_model)) {
      return "the config's model file " + config.env_model +
             " differs from the checkpoint's copy " + checkpoint.env_model;
    }
    std::vector<std::string> a = checkpoint.disable, b = config.disable;
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    if (a != b) {
      return "the disable flags differ: checkpoint " + json(checkpoint.disable).dump() +
             ", config " + json(config.disable).dump();
    }
  }
  return {};
}

// one training run into `dir`: metrics.csv, checkpoint/, checkpoints/step_*/ and summary.json
// with the evaluation; returns the summary
template <class S>
json train_run(const TrainConfig& cfg, Backend backend, int threads, const fs::path& dir,
               bool resume, const std::string& label, bool quiet) {
  training::Trainer<S> trainer(cfg, backend, threads);
  if (resume) {
    ModelState st = training::load_checkpoint((dir / "checkpoint").string());
    const std::string env_diff = environment_difference(st.config, cfg);
    if (!env_diff.empty()) {
      throw InputError("--resume: the checkpoint in " + (dir / "checkpoint").string() +
                       " was trained on a different environment than the config: " + env_diff);
    }
    if (st.spec.hidden != cfg.model.hidden || st.spec.activation != cfg.model.activation ||
        st.spec.residual != cfg.model.residual) {
      throw InputError("--resume: the checkpoint in " + (dir / "checkpoint").string() +
                       " has a different architecture than the config");
    }
    // the config governs the rest of the run, its loss included; the Jacobian statistics
    // (jac_std) stay the checkpoint's, measured on the data when the run started
    std::vector<double> jac_std = std::move(st.loss.jac_std);
    st.config = cfg;
    st.loss = cfg.loss;
    st.loss.jac_std = std::move(jac_std);
    if (st.loss.scaling == training::JacScaling::std && st.loss.jac_std.empty()) {
      throw InputError("--resume: the config's loss.scaling is \"std\", but the checkpoint in " +
                       (dir / "checkpoint").string() +
                       " has no Jacobian statistics (it was trained without a JAL term)");
    }
    trainer.restore(st);
  } else {
    trainer.initialise();
  }
  fs::create_directories(dir);
  const fs::path csv = dir / "metrics.csv";
  const bool fresh_csv = !resume || !fs::exists(csv);
  if (!fresh_csv) drop_rows_after(csv, trainer.step());  // logged after the checkpoint was saved
  std::ofstream metrics(csv, fresh_csv ? std::ios::trunc : std::ios::app);
  metrics << std::setprecision(10);
  if (fresh_csv) metrics << "step,loss,mse,jal,lr,samples_per_s,elapsed_s\n";

  const std::int64_t total = cfg.train.steps;
  const auto t0 = Clock::now();
  Progress progress(label, total, quiet);
  auto log = [&](const training::StepLog& l) {
    // the trainer also reports the last step of every chunk between checkpoints
    if (l.step % cfg.train.log_every != 0 && l.step != total) return;
    const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    metrics << l.step << ',' << l.terms.total << ',' << l.terms.mse << ',' << l.terms.jal << ','
            << l.lr << ',' << l.samples_per_s << ',' << elapsed << '\n';
    metrics.flush();
    progress.update(l);
  };
  const std::int64_t started_at = trainer.step();
  const std::int64_t every = cfg.train.checkpoint_every > 0 ? cfg.train.checkpoint_every : total;
  while (trainer.step() < total) {
    const std::int64_t chunk = std::min(every - trainer.step() % every, total - trainer.step());
    trainer.run(chunk, log);
    const ModelState st = trainer.state();
    if (cfg.train.checkpoint_every > 0) {
      char name[32];
      std::snprintf(name, sizeof name, "step_%08lld", static_cast<long long>(trainer.step()));
      training::save_checkpoint((dir / "checkpoints" / name).string(), st, cfg.train.dtype);
    }
    training::save_checkpoint((dir / "checkpoint").string(), st, cfg.train.dtype);
  }
  progress.done();
  const double train_secs = std::chrono::duration<double>(Clock::now() - t0).count();
  // samples whose constraint solve stopped at the iteration cap train on an unconverged target:
  // said, not hidden (a non-finite solve has already stopped the run)
  const std::array<std::int64_t, 3> solves = trainer.solver_counts();
  const std::int64_t drawn = solves[0] + solves[1] + solves[2];
  if (solves[1] > 0) {
    std::fprintf(stderr,
                 "%s warning: %lld of %lld samples drawn this run came from a constraint solve "
                 "stopped at the model's iteration cap (raise <option iterations> or lower dt)\n",
                 label.c_str(), static_cast<long long>(solves[1]), static_cast<long long>(drawn));
  }
  if (trainer.step() == started_at) {
    // nothing to train (resumed at the end): still leave a checkpoint and a summary
    training::save_checkpoint((dir / "checkpoint").string(), trainer.state(), cfg.train.dtype);
  }

  const ModelState final_state = trainer.state();
  const training::EvalResult ev = training::evaluate(final_state, threads);
  json summary;
  summary["env"] = cfg.env_label();
  if (!cfg.env_model.empty()) summary["env_model"] = cfg.env_model;
  summary["backend"] = backend_name(backend);
  summary["dtype"] = cfg.train.dtype;
  summary["mlp_kernels"] = trainer.mlp_kernels();
  if (backend == Backend::cpu) summary["cpu_isa"] = training::cpu_isa_name(training::cpu_isa());
  summary["steps"] = trainer.step();
  summary["steps_this_run"] = trainer.step() - started_at;
  summary["train_seconds"] = train_secs;
  summary["samples_per_s"] =
      train_secs > 0 ? double(trainer.step() - started_at) * cfg.train.batch / train_secs : 0.0;
  summary["num_params"] = final_state.spec.num_params();
  summary["samples_drawn"] = drawn;
  summary["solver_capped_samples"] = solves[1];
  summary["config"] = training::to_json(cfg);
  summary["eval"] = training::to_json(ev);
  write_text(dir / "summary.json", summary.dump(2) + "\n");
  write_text(dir / "eval.json", summary["eval"].dump(2) + "\n");
  return summary;
}

json train_any(const TrainConfig& cfg, Backend backend, int threads, const fs::path& dir,
               bool resume, const std::string& label, bool quiet) {
  return cfg.train.dtype == "f64"
             ? train_run<double>(cfg, backend, threads, dir, resume, label, quiet)
             : train_run<float>(cfg, backend, threads, dir, resume, label, quiet);
}

void warn_relu(const TrainConfig& cfg, const std::string& where) {
  if (cfg.model.activation == training::Activation::relu && cfg.loss.uses_jacobian()) {
    std::fprintf(stderr,
                 "phydream: warning: %s: relu has sigma'' = 0, so the JAL gradient has no "
                 "curvature term; consider tanh, silu or softplus\n",
                 where.c_str());
  }
}

// two-sided 95 % Student-t quantiles for 1 .. 30 degrees of freedom
double t95(std::size_t dof) {
  static const double table[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306,
                                 2.262,  2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120,
                                 2.110,  2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
                                 2.060,  2.056, 2.052, 2.048, 2.045, 2.042};
  if (dof == 0) return 0;
  return dof <= 30 ? table[dof - 1] : 1.960;
}

// mean and 95 % confidence half-width of the finite values
json mean_ci(const std::vector<double>& v) {
  std::vector<double> x;
  for (double e : v) {
    if (std::isfinite(e)) x.push_back(e);
  }
  if (x.empty()) return json{{"mean", nullptr}, {"ci95", nullptr}, {"n", 0}};
  double m = 0;
  for (double e : x) m += e;
  m /= double(x.size());
  double var = 0;
  for (double e : x) var += (e - m) * (e - m);
  const double sd = x.size() > 1 ? std::sqrt(var / double(x.size() - 1)) : 0.0;
  return json{{"mean", m},
              {"ci95", t95(x.size() - 1) * sd / std::sqrt(double(x.size()))},
              {"n", x.size()}};
}

double number_or_nan(const json& j) { return j.is_number() ? j.get<double>() : NAN; }

}  // namespace

// =============================================================================================

int run_train(const TrainArgs& a) {
  training::cpu_isa();  // a bad PHYDREAM_CPU_ISA is refused here, before anything is written
  TrainConfig cfg = training::load_train_config(a.config);
  if (a.steps) {
    if (*a.steps < 0) throw InputError("--steps must be >= 0");
    cfg.train.steps = *a.steps;
  }
  if (a.seed) {
    if (*a.seed < 0) throw InputError("--seed must be >= 0");
    cfg.train.seed = static_cast<std::uint64_t>(*a.seed);
  }
  const fs::path dir(a.out);
  if (fs::exists(dir) && !fs::is_directory(dir)) {
    throw InputError("--out '" + a.out + "': exists and is not a directory");
  }
  if (a.resume && !fs::exists(dir / "checkpoint" / "model.json")) {
    throw InputError("--resume: no checkpoint in '" + a.out + "' (expected " +
                     (dir / "checkpoint").string() + ")");
  }
  if (!a.resume && fs::exists(dir / "checkpoint")) {
    throw InputError("--out '" + a.out +
                     "' already holds a checkpoint; pass --resume to continue it, or choose "
                     "another --out");
  }
  std::string reason;
  const Backend backend = resolve(a.backend, &reason);
  warn_relu(cfg, a.config);
  if (!a.quiet) {
    std::fprintf(stderr, "phydream train: %s, %s, %lld steps of %lld, backend %s (%s)\n",
                 cfg.env_label().c_str(), cfg.train.dtype.c_str(),
                 static_cast<long long>(cfg.train.steps), static_cast<long long>(cfg.train.batch),
                 backend_name(backend), reason.c_str());
  }
  const json summary = train_any(cfg, backend, a.threads, dir, a.resume, "train", a.quiet);
  const json& ev = summary["eval"];
  std::printf("trained %s to step %lld in %.1f s (%.3g samples/s)\n", cfg.env_label().c_str(),
              static_cast<long long>(summary["steps"].get<std::int64_t>()),
              summary["train_seconds"].get<double>(), summary["samples_per_s"].get<double>());
  std::printf("one-step MSE %.4e, Jacobian MSE %.4e, rollout MSE at h=%zu %.4e\n",
              ev["one_step_mse"].get<double>(), ev["jacobian_mse"].get<double>(),
              ev["rollout"]["mse"].size(), number_or_nan(ev["rollout"]["mse"].back()));
  std::printf("outputs in %s (metrics.csv, checkpoint/, summary.json, eval.json)\n",
              a.out.c_str());
  return 0;
}

int run_eval(const EvalArgs& a) {
  training::cpu_isa();  // a bad PHYDREAM_CPU_ISA is refused here, before anything is written
  const ModelState st = training::load_checkpoint(a.checkpoint);
  OutputDir check(a.out);  // refuses an --out that is a file, before the work
  (void)check;
  const training::EvalResult r = training::evaluate(st, a.threads);
  const json j = training::to_json(r);
  fs::create_directories(a.out);
  write_text(fs::path(a.out) / "eval.json", j.dump(2) + "\n");
  std::ostringstream roll, ood;
  roll << std::setprecision(10);
  ood << std::setprecision(10);
  roll << "horizon,mse,mse_median\n";
  for (std::size_t h = 0; h < r.rollout_mse.size(); ++h) {
    roll << h + 1 << ',' << r.rollout_mse[h] << ',' << r.rollout_mse_median[h] << '\n';
  }
  ood << "factor,one_step_mse,jacobian_mse,rollout_mse,rollout_mse_median\n";
  for (const training::OodRow& o : r.ood) {
    ood << o.factor << ',' << o.one_step_mse << ',' << o.jacobian_mse << ',' << o.rollout_mse
        << ',' << o.rollout_mse_median << '\n';
  }
  write_text(fs::path(a.out) / "rollout.csv", roll.str());
  write_text(fs::path(a.out) / "ood.csv", ood.str());
  std::printf("one-step MSE %.4e, Jacobian MSE %.4e (relative %.3f), rollout MSE at h=%zu %.4e\n",
              r.one_step_mse, r.jacobian_mse, r.jacobian_rel_err, r.rollout_mse.size(),
              r.rollout_mse.back());
  std::printf("wrote %s/eval.json, rollout.csv, ood.csv\n", a.out.c_str());
  return 0;
}

int run_mlp_grad(const MlpGradArgs& a) {
  training::cpu_isa();  // a bad PHYDREAM_CPU_ISA is refused here, before anything is written
  ModelState st = training::load_checkpoint(a.checkpoint);
  training::LossConfig loss = st.loss;
  if (a.loss == "mse") {
    loss.lambda_mse = 1;
    loss.lambda_jal = 0;
  } else if (a.loss == "jal") {
    loss.lambda_mse = 0;
    loss.lambda_jal = 1;
  } else if (a.loss == "both") {
    loss.lambda_mse = 1;
    loss.lambda_jal = 1;
  } else {
    throw InputError("--loss '" + a.loss + "': expected mse, jal or both");
  }
  if (a.lambda_mse) loss.lambda_mse = *a.lambda_mse;
  if (a.lambda_jal) loss.lambda_jal = *a.lambda_jal;
  try {
    if (!a.scaling.empty()) loss.scaling = training::parse_scaling(a.scaling);
  } catch (const InputError& e) {
    throw InputError(std::string("--scaling: ") + e.what());
  }
  try {
    if (!a.metric.empty()) loss.metric = training::parse_metric(a.metric);
  } catch (const InputError& e) {
    throw InputError(std::string("--metric: ") + e.what());
  }
  if (a.huber_delta) {
    if (loss.metric != training::JalMetric::huber) {
      throw InputError(std::string("--huber-delta applies only to the huber metric; the metric is ") +
                       training::metric_name(loss.metric) + " (add --metric huber)");
    }
    loss.huber_delta = *a.huber_delta;
  }
  const training::MlpSpec& spec = st.spec;
  const int k = spec.n_out(), d = spec.n_in();
  const auto X = load_checked<double>("--inputs", a.inputs, {Dim::any("B"), Dim::fixed(d, "nx+nu")});
  const auto Y = load_checked<double>("--targets", a.targets, {Dim::any("B"), Dim::fixed(k, "nx")});
  check_same_dim("--targets", a.targets, Y, 0, "--inputs", a.inputs, X, 0, "batch B");
  const std::int64_t B = X.shape[0];
  npy::Array<double> J;
  if (loss.uses_jacobian()) {
    if (a.target_jacobians.empty()) {
      throw InputError("--target-jacobians is required for --loss " + a.loss);
    }
    J = load_checked<double>("--target-jacobians", a.target_jacobians,
                             {Dim::any("B"), Dim::fixed(k, "nx"), Dim::fixed(d, "nx+nu")});
    check_same_dim("--target-jacobians", a.target_jacobians, J, 0, "--inputs", a.inputs, X, 0,
                   "batch B");
    if (loss.scaling == training::JacScaling::std && loss.jac_std.empty()) {
      // the checkpoint was trained without JAL: the spread of the given Jacobians instead
      loss.jac_std.assign(std::size_t(k) * d, 0.0);
      for (std::size_t e = 0; e < loss.jac_std.size(); ++e) {
        double m = 0, v = 0;
        for (std::int64_t b = 0; b < B; ++b) m += J.data[b * k * d + e] / double(B);
        for (std::int64_t b = 0; b < B; ++b) v += std::pow(J.data[b * k * d + e] - m, 2);
        loss.jac_std[e] = B > 1 ? std::sqrt(v / double(B - 1)) : 0.0;
      }
    }
  }
  try {
    loss.validate(spec.nx, spec.nu);
  } catch (const InputError& e) {
    throw InputError(std::string("--loss/--lambda-*/--huber-delta: ") + e.what());
  }
  OutputDir out(a.out);
  training::CpuMlp<double> net(spec, loss);
  std::vector<double> grad(spec.num_params());
  const training::LossTerms t = net.loss_and_grad(B, st.theta.data(), X.data.data(), Y.data.data(),
                                                  loss.uses_jacobian() ? J.data.data() : nullptr,
                                                  grad.data());
  for (int l = 0; l < spec.num_layers(); ++l) {
    const auto w = spec.weight_offset(l), b = spec.bias_offset(l);
    out.add("grad_W" + std::to_string(l) + ".npy",
            std::vector<double>(grad.begin() + w, grad.begin() + b),
            {spec.layer_out(l), spec.layer_in(l)});
    out.add("grad_b" + std::to_string(l) + ".npy",
            std::vector<double>(grad.begin() + b, grad.begin() + b + spec.layer_out(l)),
            {spec.layer_out(l)});
  }
  out.write();
  json j = {{"loss", t.total},
                  {"mse", t.mse},
                  {"jal", t.jal},
                  {"lambda_mse", loss.lambda_mse},
                  {"lambda_jal", loss.lambda_jal},
                  {"metric", training::metric_name(loss.metric)},
                  {"scaling", training::scaling_name(loss.scaling)},
                  {"batch", B},
                  {"num_params", spec.num_params()}};
  if (loss.metric == training::JalMetric::huber) j["huber_delta"] = loss.huber_delta;
  write_text(fs::path(a.out) / "loss.json", j.dump(2) + "\n");
  std::printf("loss %.10e (mse %.6e, jal %.6e) on %lld samples; gradients in %s\n", t.total,
              t.mse, t.jal, static_cast<long long>(B), a.out.c_str());
  return 0;
}

// =============================================================================================
// experiment: variants x seeds, each trained and evaluated, then compared

int run_experiment(const ExperimentArgs& a) {
  training::cpu_isa();  // a bad PHYDREAM_CPU_ISA is refused here, before anything is written
  std::ifstream in(a.config);
  if (!in) throw InputError(a.config + ": cannot open the experiment file");
  json e;
  try {
    e = json::parse(in);
  } catch (const json::exception& err) {  // parse_error, or out_of_range for a number overflow
    throw InputError(a.config + ": not valid JSON: " + err.what());
  }
  for (auto it = e.begin(); it != e.end(); ++it) {
    if (it.key() != "name" && it.key() != "description" && it.key() != "base" &&
        it.key() != "variants" && it.key() != "seeds") {
      throw InputError(a.config + ": unknown key '" + it.key() +
                       "'; expected one of: name, description, base, variants, seeds");
    }
  }
  if (!e.contains("base") || !e["base"].is_object()) {
    throw InputError(a.config + ": 'base' (a training config object) is required");
  }
  if (!e.contains("variants") || !e["variants"].is_object() || e["variants"].empty()) {
    throw InputError(a.config + ": 'variants' must be a non-empty object of name: config patch");
  }
  for (const char* key : {"name", "description"}) {
    if (e.contains(key) && !e[key].is_string()) {
      throw InputError(a.config + ": '" + key + "' must be a string");
    }
  }
  for (auto it = e["variants"].begin(); it != e["variants"].end(); ++it) {
    // each name is a directory under OUT/runs: one plain path component
    const std::string& v = it.key();
    if (v.empty() || v == "." || v == ".." || v.find_first_of("/\\") != std::string::npos) {
      throw InputError(a.config + ": variant name '" + v +
                       "' must be a plain directory name (not empty, '.', '..', no '/' or '\\')");
    }
    if (!it->is_object()) {
      throw InputError(a.config + ": variant '" + v + "' must be an object (a config patch)");
    }
  }
  std::vector<std::uint64_t> seeds = {0};
  if (e.contains("seeds")) {
    if (!e["seeds"].is_array() || e["seeds"].empty()) {
      throw InputError(a.config + ": 'seeds' must be a non-empty array of integers >= 0");
    }
    seeds.clear();
    for (const json& s : e["seeds"]) {
      if (!s.is_number_integer() || s.get<std::int64_t>() < 0) {
        throw InputError(a.config + ": 'seeds' must be a non-empty array of integers >= 0");
      }
      if (std::find(seeds.begin(), seeds.end(), s.get<std::uint64_t>()) != seeds.end()) {
        throw InputError(a.config + ": 'seeds' lists " + s.dump() + " twice");
      }
      seeds.push_back(s.get<std::uint64_t>());
    }
  }
  if (a.seeds) {
    if (*a.seeds < 1 || std::size_t(*a.seeds) > seeds.size()) {
      throw InputError("--seeds must be in 1 .. " + std::to_string(seeds.size()));
    }
    seeds.resize(static_cast<std::size_t>(*a.seeds));
  }
  if (a.steps && *a.steps < 1) throw InputError("--steps must be >= 1");

  // every run's config, validated before anything runs
  struct Run {
    std::string variant;
    std::uint64_t seed;
    TrainConfig cfg;
  };
  std::vector<Run> runs;
  std::vector<std::string> variants;
  for (auto it = e["variants"].begin(); it != e["variants"].end(); ++it) {
    variants.push_back(it.key());
    for (std::uint64_t seed : seeds) {
      json merged = training::merge_json(e["base"], *it);
      json& train = merged["train"];
      if (train.is_null()) train = json::object();
      if (train.is_object()) {  // anything else is reported by parse_train_config
        train["seed"] = seed;
        if (a.steps) train["steps"] = *a.steps;
      }
      // an env_model is relative to the experiment file, as in a training config
      TrainConfig cfg = training::parse_train_config(merged,
                                                     a.config + " (variant " + it.key() + ")",
                                                     fs::path(a.config).parent_path().string());
      runs.push_back({it.key(), seed, cfg});
    }
    warn_relu(runs.back().cfg, a.config + " (variant " + it.key() + ")");
  }
  const fs::path root(a.out);
  if (fs::exists(root) && !fs::is_directory(root)) {
    throw InputError("--out '" + a.out + "': exists and is not a directory");
  }
  if (fs::exists(root / "results.json")) {
    throw InputError("--out '" + a.out + "' already holds an experiment; choose another --out");
  }
  std::string reason;
  const Backend backend = resolve(a.backend, &reason);
  const std::string name = e.value("name", fs::path(a.config).stem().string());
  std::fprintf(stderr, "phydream experiment %s: %zu variants x %zu seeds, backend %s (%s)\n",
               name.c_str(), variants.size(), seeds.size(), backend_name(backend),
               reason.c_str());

  // train and evaluate every run
  std::map<std::string, std::vector<json>> summaries;
  const auto t0 = Clock::now();
  for (std::size_t r = 0; r < runs.size(); ++r) {
    const Run& run = runs[r];
    const fs::path dir = root / "runs" / run.variant / ("seed_" + std::to_string(run.seed));
    fs::remove_all(dir);  // a run interrupted earlier starts over
    char label[160];
    std::snprintf(label, sizeof label, "[%zu/%zu] %s seed %llu", r + 1, runs.size(),
                  run.variant.c_str(), static_cast<unsigned long long>(run.seed));
    summaries[run.variant].push_back(
        train_any(run.cfg, backend, a.threads, dir, false, label, a.quiet));
  }
  const double total_secs = std::chrono::duration<double>(Clock::now() - t0).count();

  // aggregate over seeds: mean and 95 % CI of every metric, per variant
  json results;
  results["name"] = name;
  results["description"] = e.value("description", "");
  results["seeds"] = seeds;
  results["backend"] = backend_name(backend);
  results["total_seconds"] = total_secs;
  results["variants"] = json::object();
  for (const std::string& v : variants) {
    const std::vector<json>& s = summaries[v];
    auto metric = [&](auto get) {
      std::vector<double> xs;
      for (const json& j : s) xs.push_back(get(j));
      return mean_ci(xs);
    };
    json agg;
    agg["loss"] = s.front()["config"]["loss"];
    agg["one_step_mse"] = metric([](const json& j) { return number_or_nan(j["eval"]["one_step_mse"]); });
    agg["jacobian_mse"] = metric([](const json& j) { return number_or_nan(j["eval"]["jacobian_mse"]); });
    agg["jacobian_rel_err"] =
        metric([](const json& j) { return number_or_nan(j["eval"]["jacobian_rel_err"]); });
    agg["train_seconds"] = metric([](const json& j) { return j["train_seconds"].get<double>(); });
    agg["samples_per_s"] = metric([](const json& j) { return j["samples_per_s"].get<double>(); });
    const std::size_t H = s.front()["eval"]["rollout"]["mse"].size();
    for (std::size_t h = 0; h < H; ++h) {
      agg["rollout_mse"].push_back(
          metric([&](const json& j) { return number_or_nan(j["eval"]["rollout"]["mse"][h]); }));
      agg["rollout_mse_median"].push_back(metric(
          [&](const json& j) { return number_or_nan(j["eval"]["rollout"]["mse_median"][h]); }));
    }
    const std::size_t F = s.front()["eval"]["ood"].size();
    for (std::size_t f = 0; f < F; ++f) {
      json row;
      row["factor"] = s.front()["eval"]["ood"][f]["factor"];
      for (const char* key :
           {"one_step_mse", "jacobian_mse", "rollout_mse", "rollout_mse_median"}) {
        row[key] = metric([&](const json& j) { return number_or_nan(j["eval"]["ood"][f][key]); });
      }
      agg["ood"].push_back(row);
    }
    results["variants"][v] = agg;
  }
  fs::create_directories(root);
  write_text(root / "results.json", results.dump(2) + "\n");

  // the comparison, as a table on stdout and in results.md
  auto cell = [](const json& m) {
    if (!m["mean"].is_number()) return std::string("n/a");
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.3e ± %.1e", m["mean"].get<double>(),
                  m["ci95"].get<double>());
    return std::string(buf);
  };
  std::ostringstream md;
  const std::size_t H = results["variants"][variants.front()]["rollout_mse"].size();
  const std::size_t h_mid = std::min<std::size_t>(10, H);
  const double widest = results["variants"][variants.front()]["ood"].back()["factor"].get<double>();
  // the rollout columns: h = 10 and the full horizon (one column when they coincide)
  std::vector<std::size_t> horizons = {h_mid};
  if (H != h_mid) horizons.push_back(H);
  md << "| variant | one-step MSE | Jacobian MSE |";
  for (std::size_t h : horizons) md << " rollout MSE h=" << h << " (median) |";
  md << " one-step MSE, box x" << widest << " |\n|";
  for (std::size_t c = 0; c < 4 + horizons.size(); ++c) md << " --- |";
  md << "\n";
  for (const std::string& v : variants) {
    const json& g = results["variants"][v];
    md << "| " << v << " | " << cell(g["one_step_mse"]) << " | " << cell(g["jacobian_mse"]) << " |";
    for (std::size_t h : horizons) md << " " << cell(g["rollout_mse_median"][h - 1]) << " |";
    md << " " << cell(g["ood"].back()["one_step_mse"]) << " |\n";
  }
  write_text(root / "results.md",
             "# " + name + "\n\nMean ± 95 % confidence half-width over " +
                 std::to_string(seeds.size()) +
                 " seeds. Rollout errors are the median over evaluation environments of each "
                 "environment's MSE (see results.json for the means).\n\n" + md.str());
  std::printf("\n%s: %zu variants x %zu seeds in %.0f s (backend %s)\n", name.c_str(),
              variants.size(), seeds.size(), total_secs, backend_name(backend));
  std::printf("mean ± 95%% CI over seeds; lower is better\n\n%s\n", md.str().c_str());
  std::printf("results in %s (results.json, results.md, runs/<variant>/seed_<n>/)\n",
              a.out.c_str());
  return 0;
}

}  // namespace phydream::cli
