// train_bench: training throughput of the JAL trainer, one JSON line per configuration.
//
// For each backend x width x loss (MSE only, MSE + JAL) it reports
//   mlp_samples_per_s       one optimizer step on a fixed batch: forward with the input
//                           Jacobian, loss, double backward, Adam (what bench/torch_jal.py
//                           measures for PyTorch)
//   pipeline_samples_per_s  a full training step: sampling, the simulator's next states and
//                           Jacobians, then the above
// and, per width, jal_over_mse = the JAL step's time over the MSE step's. On the CUDA backend
// each of --kernels (auto, fused, gemm: MlpKernels in training/engine.h) is measured in turn;
// a network the fused kernels cannot run gets a line saying why.
#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/buffer.h"
#include "engine/errors.h"
#include "training/config.h"
#include "training/cpu_gemm.h"
#include "training/engine.h"
#include "training/sampler.h"
#include "training/trainer.h"

namespace {

using namespace phydream;
using namespace phydream::training;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

struct Options {
  std::string backend = "auto";
  std::string env = "double_pendulum";
  std::vector<int> widths = {64, 256};
  int depth = 3;
  std::int64_t batch = 4096;
  std::string dtype = "f32";
  double min_time = 1.0;
  int threads = 0;
  std::vector<std::string> kernels = {"auto"};
};

// calls f until min_time has passed (after one warm-up call); returns calls per second
template <class F>
double rate(double min_time, F&& f, const std::function<void()>& sync) {
  f();
  sync();
  std::int64_t calls = 0;
  const auto t0 = Clock::now();
  double secs = 0;
  while (secs < min_time) {
    f();
    ++calls;
    sync();
    secs = std::chrono::duration<double>(Clock::now() - t0).count();
  }
  return double(calls) / secs;
}

TrainConfig make_config(const Options& o, int width, bool jal, const std::string& kernels) {
  const json j = {{"env", o.env},
                  {"model", {{"hidden", std::vector<int>(o.depth, width)}, {"activation", "tanh"}}},
                  {"loss", {{"lambda_mse", 1.0}, {"lambda_jal", jal ? 1.0 : 0.0}}},
                  {"train", {{"batch", o.batch}, {"steps", 1000000}, {"log_every", 1000000},
                             {"stats_samples", 4096}, {"dtype", o.dtype},
                             {"kernels", kernels}}}};
  return parse_train_config(j, "train_bench");
}

template <class S>
json measure(const Options& o, Backend backend, int width, bool jal, const std::string& kernels) {
  const TrainConfig cfg = make_config(o, width, jal, kernels);
  Trainer<S> trainer(cfg, backend, o.threads);
  trainer.initialise();
  auto sync = [&] { trainer.simulator().synchronize(); };
  auto no_log = [](const StepLog&) {};

  // the whole pipeline: sampling, simulator Jacobians, loss, double backward, Adam
  const double pipeline = rate(o.min_time, [&] { trainer.run(1, no_log); }, sync);

  // the network step alone, on one fixed batch
  const ModelState st = trainer.state();
  auto mlp = make_mlp_engine<S>(backend, st.spec, st.loss, nullptr, cfg.train.kernels);
  auto ops = make_train_ops<S>(backend);
  BatchSampler<S> sampler(cfg.sampling, backend, trainer.simulator(), *ops);
  sampler.draw(o.batch, 1, 0, jal);
  const std::size_t P = st.spec.num_params();
  Buffer<S> theta(backend, P), grad(backend, P), m(backend, P), v(backend, P);
  Buffer<double> terms(backend, 3);
  const std::vector<S> th(st.theta.begin(), st.theta.end());
  theta.upload(th.data());
  AdamStep step;
  step.lr = 1e-4;
  step.beta1 = 0.9;
  step.beta2 = 0.999;
  step.eps = 1e-8;
  step.bias1 = step.bias2 = 0.5;
  const double mlp_rate = rate(
      o.min_time,
      [&] {
        mlp->loss_and_grad(o.batch, theta.data(), sampler.inputs(), sampler.targets(),
                           jal ? sampler.target_jac() : nullptr, grad.data(), terms.data());
        ops->adam(static_cast<std::int64_t>(P), step, theta.data(), m.data(), v.data(),
                  grad.data());
      },
      [&] { mlp->synchronize(); });

  return json{{"bench", "train"},
              {"backend", backend_name(backend)},
              {"device", backend == Backend::cuda ? cuda_device_description() : "cpu"},
              {"env", o.env},
              {"dtype", o.dtype == "f32" ? "float32" : "float64"},
              {"width", width},
              {"depth", o.depth},
              {"batch", o.batch},
              {"loss", jal ? "mse+jal" : "mse"},
              {"kernels", mlp->kernels()},
              {"cpu_isa", backend == Backend::cpu ? training::cpu_isa_name(training::cpu_isa()) : "none"},
              {"num_params", P},
              {"threads", o.threads},
              {"mlp_samples_per_s", mlp_rate * double(o.batch)},
              {"pipeline_samples_per_s", pipeline * double(o.batch)}};
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"train_bench: samples/s of the JAL trainer (JSON lines on stdout)"};
  app.add_option("--backend", o.backend, "auto | cpu | cuda")->capture_default_str();
  app.add_option("--env", o.env, "environment")->capture_default_str();
  app.add_option("--widths", o.widths, "hidden widths")->delimiter(',')->capture_default_str();
  app.add_option("--depth", o.depth, "hidden layers")->capture_default_str();
  app.add_option("--batch", o.batch, "batch size")->capture_default_str();
  app.add_option("--dtype", o.dtype, "f32 | f64")->capture_default_str();
  app.add_option("--min-time", o.min_time, "seconds per measurement")->capture_default_str();
  app.add_option("--threads", o.threads, "CPU threads, 0 = all cores")->capture_default_str();
  app.add_option("--kernels", o.kernels, "CUDA: MLP kernels to measure, of auto, fused, gemm")
      ->delimiter(',')
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    const Backend backend = resolve_backend(parse_backend(o.backend));
    // bad options fail here, before any measurement
    for (const std::string& k : o.kernels) parse_mlp_kernels(k);
    for (int width : o.widths) make_config(o, width, true, "auto");
    // the CPU backend has one kind of kernels (Eigen's)
    const std::vector<std::string> kernel_sets =
        backend == Backend::cuda ? o.kernels : std::vector<std::string>{"auto"};
    for (int width : o.widths) {
      for (const std::string& kernels : kernel_sets) {
        json mse, jal;
        try {
          mse = o.dtype == "f64" ? measure<double>(o, backend, width, false, kernels)
                                 : measure<float>(o, backend, width, false, kernels);
          jal = o.dtype == "f64" ? measure<double>(o, backend, width, true, kernels)
                                 : measure<float>(o, backend, width, true, kernels);
        } catch (const InputError& e) {
          if (kernels != "fused") throw;
          // the fused kernels cannot run this network (too wide for shared memory): say so
          std::cout << json{{"bench", "train"}, {"width", width}, {"depth", o.depth},
                            {"kernels", kernels}, {"skipped", e.what()}}
                           .dump()
                    << std::endl;
          continue;
        }
        std::cout << mse.dump() << "\n" << jal.dump() << std::endl;
        std::cout << json{{"summary", "jal_over_mse"},
                          {"backend", backend_name(backend)},
                          {"kernels", mse["kernels"]},
                          {"width", width},
                          {"depth", o.depth},
                          {"batch", o.batch},
                          {"mlp_step_time_ratio", mse["mlp_samples_per_s"].get<double>() /
                                                      jal["mlp_samples_per_s"].get<double>()},
                          {"pipeline_step_time_ratio",
                           mse["pipeline_samples_per_s"].get<double>() /
                               jal["pipeline_samples_per_s"].get<double>()}}
                         .dump()
                  << std::endl;
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "train_bench: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
