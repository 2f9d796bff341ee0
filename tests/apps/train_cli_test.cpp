// The training subcommands of the phydream program end to end (train, eval, mlp-grad,
// experiment): the real binary on tiny configs in a fresh temporary directory per test, its
// outputs read back and checked against the documented layout, against each other (resume,
// eval), and against independent computations (the forward-mode MLP of naive_mlp.h for the
// gradients of mlp-grad, a hand-computed confidence interval for experiment).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "apps/train_cli_fixture.h"
#include "engine/backend.h"
#include "engine/npy.h"
#include "training/checkpoint.h"
#include "training/naive_mlp.h"

namespace {

namespace fs = std::filesystem;
namespace npy = phydream::npy;
namespace naive = phydream::testing::naive;
using nlohmann::json;
using phydream::training::JacScaling;
using phydream::training::LossConfig;
using phydream::training::ModelState;
using Shape = std::vector<std::int64_t>;

// ===========================================================================================
// train

using TrainCli = TrainingCliTest;

TEST_F(TrainCli, WritesMetricsCheckpointSummaryAndEval) {
  const json cfg = with(tiny_config(), {{"model", {{"hidden", {8, 5}}}},
                                        {"loss", {{"lambda_jal", 0.5}}},
                                        {"train", {{"steps", 30}, {"log_every", 8}}}});
  const CliRun r = train(cfg, "out");
  const std::string out = path("out");
  EXPECT_TRUE(contains(r.out, "trained pendulum to step 30")) << r.out;
  EXPECT_TRUE(contains(r.out, "one-step MSE")) << r.out;
  EXPECT_TRUE(contains(r.out, "outputs in " + out)) << r.out;

  // metrics.csv: a row every log_every steps and at the last
  const auto rows = read_csv(out + "/metrics.csv");
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows[0], (std::vector<std::string>{"step", "loss", "mse", "jal", "lr",
                                               "samples_per_s", "elapsed_s"}));
  EXPECT_EQ(csv_steps(out + "/metrics.csv"), (std::vector<long>{8, 16, 24, 30}));
  for (std::size_t k = 1; k < rows.size(); ++k) {
    ASSERT_EQ(rows[k].size(), 7u) << k;
    std::vector<double> v;
    for (const std::string& c : rows[k]) v.push_back(std::stod(c));
    for (double e : v) EXPECT_TRUE(std::isfinite(e)) << k;
    EXPECT_GT(v[2], 0);
    EXPECT_GT(v[3], 0);                                  // the JAL term is trained
    expect_rel(v[1], v[2] + 0.5 * v[3], 1e-5, "loss = mse + 0.5 jal");
    EXPECT_DOUBLE_EQ(v[4], 3e-3);                        // constant learning rate
    EXPECT_GE(v[5], 0);
  }

  // the checkpoint: W_l (out, in), b_l (out,) in the training dtype, Adam moments (P,)
  const std::string ck = out + "/checkpoint";
  const int P = 8 * 3 + 8 + 5 * 8 + 5 + 2 * 5 + 2;
  expect_npy(ck + "/W0.npy", npy::DType::f32, {8, 3});
  expect_npy(ck + "/b0.npy", npy::DType::f32, {8});
  expect_npy(ck + "/W1.npy", npy::DType::f32, {5, 8});
  expect_npy(ck + "/b1.npy", npy::DType::f32, {5});
  expect_npy(ck + "/W2.npy", npy::DType::f32, {2, 5});
  expect_npy(ck + "/b2.npy", npy::DType::f32, {2});
  expect_npy(ck + "/adam_m.npy", npy::DType::f32, {P});
  expect_npy(ck + "/adam_v.npy", npy::DType::f32, {P});
  EXPECT_FALSE(fs::exists(out + "/checkpoints"));  // checkpoint_every 0: only the final one
  const json model = read_json(ck + "/model.json");
  EXPECT_EQ(model["format"], "phydream-mlp");
  EXPECT_EQ(model["env"], "pendulum");
  EXPECT_EQ(model["step"], 30);
  EXPECT_EQ(model["dtype"], "f32");
  EXPECT_EQ(model["architecture"]["hidden"], json({8, 5}));
  EXPECT_EQ(model["architecture"]["nx"], 2);
  EXPECT_EQ(model["architecture"]["nu"], 1);
  EXPECT_EQ(model["architecture"]["num_params"], P);
  EXPECT_EQ(model["optimizer_state"], true);
  EXPECT_EQ(model["tensors"].size(), 8u);
  EXPECT_EQ(model["loss"]["jac_std"].size(), 6u);  // JAL statistics: nx x (nx + nu)
  EXPECT_EQ(model["config"]["train"]["steps"], 30);

  // summary.json and eval.json
  const json s = read_json(out + "/summary.json");
  EXPECT_EQ(s["env"], "pendulum");
  EXPECT_EQ(s["backend"], "cpu");
  EXPECT_EQ(s["dtype"], "f32");
  EXPECT_EQ(s["mlp_kernels"], "eigen");
  EXPECT_EQ(s["steps"], 30);
  EXPECT_EQ(s["steps_this_run"], 30);
  EXPECT_EQ(s["num_params"], P);
  EXPECT_GE(s["train_seconds"].get<double>(), 0);
  EXPECT_GT(s["samples_per_s"].get<double>(), 0);
  EXPECT_EQ(s["config"], model["config"]);
  EXPECT_EQ(s["config"]["loss"]["lambda_jal"], 0.5);
  const json ev = read_json(out + "/eval.json");
  EXPECT_EQ(ev, s["eval"]);
  for (const char* key : {"one_step_mse", "jacobian_mse", "jacobian_rel_err"}) {
    ASSERT_TRUE(ev[key].is_number()) << key;
    EXPECT_GT(ev[key].get<double>(), 0) << key;
  }
  EXPECT_EQ(ev["rollout"]["horizon"], json({1, 2, 3, 4, 5}));
  EXPECT_EQ(ev["rollout"]["mse"].size(), 5u);
  EXPECT_EQ(ev["rollout"]["mse_median"].size(), 5u);
  EXPECT_EQ(ev["rollout"]["envs"].get<int>() + ev["rollout"]["simulator_diverged"].get<int>() +
                ev["rollout"]["model_diverged"].get<int>(),
            16);
  ASSERT_EQ(ev["ood"].size(), 2u);
  EXPECT_EQ(ev["ood"][0]["factor"], 1.0);
  EXPECT_EQ(ev["ood"][1]["factor"], 2.0);
  for (const char* key : {"one_step_mse", "jacobian_mse", "rollout_mse", "rollout_mse_median"}) {
    EXPECT_TRUE(ev["ood"][1].contains(key)) << key;
  }
  ASSERT_FALSE(ev["jacobian_examples"].empty());
  EXPECT_EQ(ev["jacobian_examples"][0]["model"].size(), 6u);
  EXPECT_EQ(ev["jacobian_examples"][0]["truth"].size(), 6u);
}

TEST_F(TrainCli, Float64ConfigWritesAFloat64Checkpoint) {
  train(with(tiny_config(), {{"train", {{"dtype", "f64"}}}}), "out");
  expect_npy(path("out/checkpoint/W0.npy"), npy::DType::f64, {8, 3});
  expect_npy(path("out/checkpoint/adam_v.npy"), npy::DType::f64, {8 * 3 + 8 + 2 * 8 + 2});
  EXPECT_EQ(read_json(path("out/checkpoint/model.json"))["dtype"], "f64");
}

TEST_F(TrainCli, CheckpointEveryKeepsSnapshots) {
  train(with(tiny_config(),
             {{"train", {{"steps", 30}, {"checkpoint_every", 10}, {"log_every", 25}}}}),
        "out");
  for (int step : {10, 20, 30}) {
    char name[32];
    std::snprintf(name, sizeof name, "step_%08d", step);
    const std::string d = path("out/checkpoints/") + name;
    ASSERT_TRUE(fs::exists(d + "/model.json")) << d;
    EXPECT_EQ(read_json(d + "/model.json")["step"], step) << d;
    EXPECT_TRUE(fs::exists(d + "/W1.npy")) << d;
    EXPECT_TRUE(fs::exists(d + "/adam_m.npy")) << d;
  }
  EXPECT_EQ(read_text(path("out/checkpoints/step_00000030/W0.npy")),
            read_text(path("out/checkpoint/W0.npy")));
  // checkpoints do not add rows: every log_every steps and the last only
  EXPECT_EQ(csv_steps(path("out/metrics.csv")), (std::vector<long>{25, 30}));
}

TEST_F(TrainCli, StepsAndSeedOverrideTheConfig) {
  const json cfg = tiny_config();
  train(cfg, "a", "--seed 5 --steps 12");
  train(cfg, "b", "--seed 5 --steps 12");
  train(cfg, "c", "--seed 6 --steps 12");
  const json s = read_json(path("a/summary.json"));
  EXPECT_EQ(s["steps"], 12);
  EXPECT_EQ(s["config"]["train"]["steps"], 12);
  EXPECT_EQ(s["config"]["train"]["seed"], 5);
  EXPECT_EQ(csv_steps(path("a/metrics.csv")), (std::vector<long>{10, 12}));
  EXPECT_EQ(read_json(path("a/checkpoint/model.json"))["step"], 12);
  const std::string w_a = read_text(path("a/checkpoint/W0.npy"));
  EXPECT_FALSE(w_a.empty());
  EXPECT_EQ(w_a, read_text(path("b/checkpoint/W0.npy")));      // same seed, same model
  EXPECT_EQ(read_text(path("a/checkpoint/b1.npy")), read_text(path("b/checkpoint/b1.npy")));
  EXPECT_EQ(read_json(path("a/eval.json")), read_json(path("b/eval.json")));
  EXPECT_NE(w_a, read_text(path("c/checkpoint/W0.npy")));      // another seed, another model
}

TEST_F(TrainCli, ZeroStepsStillWritesACheckpointAndSummary) {
  train(tiny_config(), "out", "--steps 0");
  EXPECT_EQ(read_json(path("out/summary.json"))["steps"], 0);
  EXPECT_TRUE(fs::exists(path("out/checkpoint/W0.npy")));
  EXPECT_TRUE(fs::exists(path("out/eval.json")));
  EXPECT_TRUE(csv_steps(path("out/metrics.csv")).empty());
}

// PHYDREAM_CPU_ISA (training/cpu_gemm.h) for the duration of a test
class ScopedCpuIsa {
 public:
  explicit ScopedCpuIsa(const char* value) { setenv("PHYDREAM_CPU_ISA", value, 1); }
  ~ScopedCpuIsa() { unsetenv("PHYDREAM_CPU_ISA"); }
};

TEST_F(TrainCli, PinnedCpuIsaIsUsedAndReported) {
  {
    ScopedCpuIsa pin("baseline");
    train(with(tiny_config(), {{"loss", {{"lambda_jal", 1}}}}), "base");
  }
  EXPECT_EQ(read_json(path("base/summary.json"))["cpu_isa"], "baseline");
  // the default is the widest set this CPU runs, which `info` names
  train(with(tiny_config(), {{"loss", {{"lambda_jal", 1}}}}), "auto");
  const std::string isa = read_json(path("auto/summary.json"))["cpu_isa"];
  const CliRun info = cli("info");
  ASSERT_EQ(info.status, 0) << info.err;
  EXPECT_TRUE(contains(info.out, "CPU trainer products:  " + isa + " (supported here: baseline"))
      << info.out;
}

TEST_F(TrainCli, UnknownCpuIsaIsRefusedBeforeAnythingIsWritten) {
  ScopedCpuIsa pin("sse9");
  const std::string config = write_json("c.json", tiny_config());
  expect_input_error(cli("train --config " + quote(config) + " --out " + quote(path("out")) +
                         " --backend cpu --quiet"),
                     {"PHYDREAM_CPU_ISA", "sse9", "expected baseline, avx2, avx512 or auto"},
                     path("out"));
}

TEST_F(TrainCli, ReluWithJalWarnsButTrains) {
  const json cfg = with(tiny_config(), {{"model", {{"activation", "relu"}}},
                                        {"loss", {{"lambda_jal", 1}}}});
  const CliRun r = train(cfg, "out");
  EXPECT_TRUE(contains(r.err, "warning")) << r.err;
  EXPECT_TRUE(contains(r.err, "sigma'' = 0")) << r.err;
  EXPECT_TRUE(fs::exists(path("out/checkpoint/model.json")));
  // no warning without the JAL term
  const CliRun quiet = train(with(cfg, {{"loss", {{"lambda_jal", 0}}}}), "out2");
  EXPECT_FALSE(contains(quiet.err, "warning")) << quiet.err;
}

TEST_F(TrainCli, ProgressOnStderrUnlessQuiet) {
  const std::string config = write_json("cfg.json", tiny_config());
  const CliRun r = cli("train --config " + quote(config) + " --out " + quote(path("out")) +
                       " --backend cpu");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "phydream train: pendulum")) << r.err;
  EXPECT_TRUE(contains(r.err, "step 20/20")) << r.err;
  EXPECT_FALSE(contains(r.out, "step 20/20")) << r.out;  // stdout is the summary only
}

TEST_F(TrainCli, CudaBackendWithoutADeviceFails) {
  if (phydream::cuda_device_count() > 0) GTEST_SKIP() << "a CUDA device is visible";
  const std::string config = write_json("cfg.json", tiny_config());
  const CliRun r = cli("train --config " + quote(config) + " --out " + quote(path("out")) +
                       " --backend cuda");
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_TRUE(contains(r.err, "cuda")) << r.err;
  EXPECT_FALSE(fs::exists(path("out")));
}

// -------------------------------------------------------------------------------------------
// train: bad configs are exit status 2, the file and key named, nothing created

TEST_F(TrainCli, BadConfigsNameTheFileAndKey) {
  struct Case {
    std::string label;
    std::string text;                  // the config file's content
    std::vector<std::string> phrases;  // besides the file name
  };
  auto cfg = [](const json& patch) { return with(tiny_config(), patch).dump(); };
  json no_env = tiny_config();
  no_env.erase("env");
  const std::vector<Case> cases = {
      {"invalid JSON", R"({"env": "pendulum",)", {"not valid JSON"}},
      {"number overflow", R"({"env": "pendulum", "steps": 1e999})", {"not valid JSON", "number overflow"}},
      {"not an object", "[1, 2]", {"must be an object"}},
      {"missing env", no_env.dump(), {"'env'"}},
      {"unknown top-level key", cfg({{"foo", 1}}), {"unknown key 'foo'"}},
      {"unknown nested key", cfg({{"model", {{"widths", {8}}}}}), {"model.widths"}},
      {"wrong type", cfg({{"train", {{"steps", "10"}}}}), {"train.steps", "integer"}},
      {"batch 0", cfg({{"train", {{"batch", 0}}}}), {"train.batch"}},
      {"negative lr", cfg({{"optimizer", {{"lr", -1}}}}), {"optimizer.lr"}},
      {"both lambdas 0", cfg({{"loss", {{"lambda_mse", 0}, {"lambda_jal", 0}}}}),
       {"lambda_mse", "lambda_jal"}},
      {"negative lambda", cfg({{"loss", {{"lambda_jal", -1}}}}), {"lambda_jal"}},
      {"unknown env", cfg({{"env", "pendulumx"}}), {"pendulumx"}},
      {"unknown param", cfg({{"params", {{"masss", 2}}}}), {"masss"}},
      {"bad param value", cfg({{"params", {{"mass", -1}}}}), {"mass"}},
      {"bad activation", cfg({{"model", {{"activation", "sigmoid"}}}}),
       {"activation", "sigmoid"}},
      {"bad metric", cfg({{"loss", {{"metric", "l2"}}}}), {"metric", "l2"}},
      {"bad scaling", cfg({{"loss", {{"scaling", "max"}}}}), {"scaling", "max"}},
      {"huber delta 0", cfg({{"loss", {{"metric", "huber"}, {"huber_delta", 0}}}}),
       {"loss.huber_delta", "> 0"}},
      {"huber delta without huber", cfg({{"loss", {{"metric", "l1"}, {"huber_delta", 0.5}}}}),
       {"loss.huber_delta", "only to metric \"huber\"", "\"l1\""}},
      {"bad schedule", cfg({{"optimizer", {{"schedule", "linear"}}}}), {"optimizer.schedule"}},
      {"bad dtype", cfg({{"train", {{"dtype", "f16"}}}}), {"train.dtype"}},
      {"box of the wrong size",
       cfg({{"sampling", {{"state_low", {0, 0, 0}}, {"state_high", {1, 1, 1}}}}}),
       {"sampling.state_low", "2 entries"}},
      {"low >= high", cfg({{"sampling", {{"state_low", {0, 1}}, {"state_high", {1, 1}}}}}),
       {"sampling.state_low", "entry 1"}},
      {"action low > high", cfg({{"sampling", {{"action_low", {1}}, {"action_high", {-1}}}}}),
       {"sampling.action_low"}},
      {"ood horizon beyond the horizon", cfg({{"eval", {{"ood_horizon", 6}}}}),
       {"eval.ood_horizon"}},
      {"hidden width 0", cfg({{"model", {{"hidden", {8, 0}}}}}), {"model.hidden"}},
  };
  for (std::size_t k = 0; k < cases.size(); ++k) {
    const Case& c = cases[k];
    SCOPED_TRACE(c.label);
    const std::string config = write_text("bad" + std::to_string(k) + ".json", c.text);
    const std::string out = path("out" + std::to_string(k));
    const CliRun r = cli("train --config " + quote(config) + " --out " + quote(out) +
                         " --backend cpu");
    std::vector<std::string> phrases = c.phrases;
    phrases.push_back(config);
    expect_input_error(r, phrases, out);
  }

  // a missing file, and bad overrides of a good one
  const std::string good = write_json("good.json", tiny_config());
  CliRun r = cli("train --config " + quote(path("nothing.json")) + " --out " +
                 quote(path("o1")));
  expect_input_error(r, {path("nothing.json"), "cannot open"}, path("o1"));
  r = cli("train --config " + quote(good) + " --out " + quote(path("o2")) + " --steps -1");
  expect_input_error(r, {"--steps"}, path("o2"));
  r = cli("train --config " + quote(good) + " --out " + quote(path("o3")) + " --seed -1");
  expect_input_error(r, {"--seed"}, path("o3"));
  r = cli("train --config " + quote(good) + " --out " + quote(path("o4")) + " --backend tpu");
  expect_input_error(r, {"--backend"}, path("o4"));
  r = cli("train --out " + quote(path("o5")));
  expect_input_error(r, {"--config"}, path("o5"));
  // an --out that is a file
  const std::string file = write_text("a_file", "x");
  r = cli("train --config " + quote(good) + " --out " + quote(file));
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_TRUE(contains(r.err, "not a directory")) << r.err;
  EXPECT_EQ(read_text(file), "x");
}

// -------------------------------------------------------------------------------------------
// train --resume

TEST_F(TrainCli, ResumeEqualsOneRun) {
  for (const char* dtype : {"f64", "f32"}) {
    SCOPED_TRACE(dtype);
    const std::string a = std::string("a_") + dtype, b = std::string("b_") + dtype;
    // JAL with its statistics, weight decay and the Adam moments carried over
    const json cfg = with(tiny_config(),
                          {{"loss", {{"lambda_jal", 1}, {"scaling", "std"}}},
                           {"optimizer", {{"weight_decay", 1e-3}}},
                           {"train", {{"steps", 40}, {"dtype", dtype}}}});
    train(cfg, a, "--steps 20");
    EXPECT_EQ(csv_steps(path(a + "/metrics.csv")), (std::vector<long>{10, 20}));
    const CliRun r = train(cfg, a, "--resume --steps 40");
    EXPECT_TRUE(contains(r.out, "to step 40")) << r.out;
    train(cfg, b, "--steps 40");

    for (const char* f : {"W0.npy", "b0.npy", "W1.npy", "b1.npy", "adam_m.npy", "adam_v.npy"}) {
      const std::string got = read_text(path(a + "/checkpoint/") + f);
      EXPECT_FALSE(got.empty()) << f;
      EXPECT_EQ(got, read_text(path(b + "/checkpoint/") + f)) << f << " differs";
    }
    EXPECT_EQ(read_json(path(a + "/eval.json")), read_json(path(b + "/eval.json")));
    const json s = read_json(path(a + "/summary.json"));
    EXPECT_EQ(s["steps"], 40);
    EXPECT_EQ(s["steps_this_run"], 20);
    EXPECT_EQ(read_json(path(a + "/checkpoint/model.json"))["step"], 40);

    // metrics.csv appended: one header, rows up to 40, the same losses as one run
    const auto ra = read_csv(path(a + "/metrics.csv")), rb = read_csv(path(b + "/metrics.csv"));
    EXPECT_EQ(csv_steps(path(a + "/metrics.csv")), (std::vector<long>{10, 20, 30, 40}));
    ASSERT_EQ(ra.size(), rb.size());
    for (std::size_t k = 0; k < ra.size(); ++k) {
      for (std::size_t c = 0; c < 5; ++c) EXPECT_EQ(ra[k].at(c), rb[k].at(c)) << k << "," << c;
    }
  }
}

TEST_F(TrainCli, ResumeFromAnEarlierSnapshotDropsLaterRows) {
  // a run stopped after step 35 leaves its step-20 checkpoint and rows up to 30; the cosine
  // schedule runs over the config's 40 steps either way
  const json cfg = with(tiny_config(),
                        {{"optimizer", {{"schedule", "cosine"}, {"lr_min", 1e-4}}},
                         {"train", {{"steps", 40}, {"checkpoint_every", 20}}}});
  train(cfg, "one");
  train(cfg, "run");
  fs::remove_all(path("run/checkpoint"));
  fs::copy(path("run/checkpoints/step_00000020"), path("run/checkpoint"));
  fs::remove_all(path("run/checkpoints/step_00000040"));
  train(cfg, "run", "--resume");
  EXPECT_EQ(csv_steps(path("run/metrics.csv")), (std::vector<long>{10, 20, 30, 40}));
  EXPECT_EQ(read_text(path("run/checkpoint/W0.npy")), read_text(path("one/checkpoint/W0.npy")));
  EXPECT_EQ(read_text(path("run/checkpoints/step_00000040/W0.npy")),
            read_text(path("one/checkpoint/W0.npy")));
}

TEST_F(TrainCli, ResumeTrainsWithTheConfigsLoss) {
  // pre-trained on MSE, continued with MSE + JAL
  train(tiny_config(), "out", "--steps 20");
  const json jal = with(tiny_config(), {{"loss", {{"lambda_jal", 2}}}});
  train(jal, "out", "--resume --steps 40");
  const auto rows = read_csv(path("out/metrics.csv"));
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_EQ(std::stod(rows[2].at(3)), 0.0);  // step 20: no JAL term
  EXPECT_GT(std::stod(rows[4].at(3)), 0.0);  // step 40: trained with it
  const json model = read_json(path("out/checkpoint/model.json"));
  EXPECT_EQ(model["loss"]["lambda_jal"], 2.0);
  EXPECT_EQ(model["config"]["loss"]["lambda_jal"], 2.0);
}

TEST_F(TrainCli, ResumeErrorsLeaveTheCheckpointUntouched) {
  const json cfg = tiny_config();
  // --resume without a checkpoint
  const std::string config = write_json("cfg.json", cfg);
  CliRun r = cli("train --config " + quote(config) + " --out " + quote(path("none")) +
                 " --backend cpu --resume");
  expect_input_error(r, {"--resume", "no checkpoint", path("none")}, path("none"));

  train(cfg, "out");
  const auto before = snapshot(path("out"));
  ASSERT_TRUE(before.count("checkpoint/W0.npy"));
  struct Case {
    std::string label;
    json cfg;
    std::string flags;
    std::vector<std::string> phrases;
  };
  const std::vector<Case> cases = {
      {"existing checkpoint without --resume", cfg, "", {"already holds a checkpoint", "--resume"}},
      {"other widths", with(cfg, {{"model", {{"hidden", {4}}}}}), "--resume",
       {"--resume", "architecture"}},
      {"another layer", with(cfg, {{"model", {{"hidden", {8, 8}}}}}), "--resume",
       {"--resume", "architecture"}},
      {"other activation", with(cfg, {{"model", {{"activation", "silu"}}}}), "--resume",
       {"--resume", "architecture"}},
      {"no residual", with(cfg, {{"model", {{"residual", false}}}}), "--resume",
       {"--resume", "architecture"}},
      {"other environment", with(cfg, {{"env", "cartpole"}}), "--resume",
       {"--resume", "environment"}},
      {"std scaling without Jacobian statistics",
       with(cfg, {{"loss", {{"lambda_jal", 1}, {"scaling", "std"}}}}), "--resume --steps 30",
       {"--resume", "std", "Jacobian statistics"}},
  };
  for (std::size_t k = 0; k < cases.size(); ++k) {
    const Case& c = cases[k];
    SCOPED_TRACE(c.label);
    const std::string file = write_json("case" + std::to_string(k) + ".json", c.cfg);
    r = cli("train --config " + quote(file) + " --out " + quote(path("out")) +
            " --backend cpu --quiet " + c.flags);
    EXPECT_EQ(r.status, 2) << r.err;
    for (const std::string& p : c.phrases) EXPECT_TRUE(contains(r.err, p)) << p << "\n" << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_TRUE(snapshot(path("out")) == before) << "the run directory changed";
  }
}

// ===========================================================================================
// eval

using EvalCli = TrainingCliTest;

TEST_F(EvalCli, ReproducesTheTrainingRunsEvaluation) {
  train(with(tiny_config(), {{"loss", {{"lambda_jal", 1}}}}), "run");
  const json want = read_json(path("run/eval.json"));
  for (const char* threads : {"", " --threads 1"}) {
    SCOPED_TRACE(threads);
    const std::string out = path(std::string("e") + (threads[0] ? "1" : "0"));
    const CliRun r = cli("eval --checkpoint " + quote(path("run/checkpoint")) + " --out " +
                         quote(out) + threads);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "one-step MSE")) << r.out;
    EXPECT_EQ(read_json(out + "/eval.json"), want);

    const auto roll = read_csv(out + "/rollout.csv");
    ASSERT_EQ(roll.size(), 6u);
    EXPECT_EQ(roll[0], (std::vector<std::string>{"horizon", "mse", "mse_median"}));
    for (std::size_t h = 1; h <= 5; ++h) {
      EXPECT_EQ(std::stol(roll[h].at(0)), long(h));
      expect_rel(std::stod(roll[h].at(1)), want["rollout"]["mse"][h - 1].get<double>(), 1e-5,
                 "rollout mse");
      expect_rel(std::stod(roll[h].at(2)), want["rollout"]["mse_median"][h - 1].get<double>(),
                 1e-5, "rollout mse_median");
    }
    const auto ood = read_csv(out + "/ood.csv");
    ASSERT_EQ(ood.size(), 3u);
    EXPECT_EQ(ood[0], (std::vector<std::string>{"factor", "one_step_mse", "jacobian_mse",
                                                "rollout_mse", "rollout_mse_median"}));
    for (std::size_t f = 0; f < 2; ++f) {
      const json& row = want["ood"][f];
      EXPECT_EQ(std::stod(ood[f + 1].at(0)), row["factor"].get<double>());
      int c = 1;
      for (const char* key : {"one_step_mse", "jacobian_mse", "rollout_mse",
                              "rollout_mse_median"}) {
        expect_rel(std::stod(ood[f + 1].at(c++)), row[key].get<double>(), 1e-5, key);
      }
    }
  }
}

TEST_F(EvalCli, BadCheckpointsNameTheFile) {
  train(tiny_config(), "run");
  const std::string good = path("run/checkpoint");
  auto broken = [&](const std::string& name) {
    const std::string d = path(name);
    fs::copy(good, d);
    return d;
  };
  struct Case {
    std::string label, dir;
    std::vector<std::string> phrases;
  };
  std::vector<Case> cases;
  {
    const std::string d = broken("no_model");
    fs::remove(d + "/model.json");
    cases.push_back({"missing model.json", d, {d + "/model.json"}});
  }
  {
    const std::string d = broken("bad_json");
    std::ofstream(d + "/model.json") << "{ not json";
    cases.push_back({"invalid model.json", d, {d + "/model.json", "not valid JSON"}});
  }
  {
    const std::string d = broken("number_overflow");
    std::ofstream(d + "/model.json") << "{\"depth\": 1e999}";
    cases.push_back({"number overflow in model.json", d, {d + "/model.json", "number overflow"}});
  }
  {
    const std::string d = broken("wrong_shape");
    const std::vector<double> w(24, 0.1);
    npy::save<double>(d + "/W0.npy", w.data(), {3, 8});  // transposed
    cases.push_back({"W0 of the wrong shape", d, {d + "/W0.npy", "(8, 3)", "(3, 8)"}});
  }
  {
    const std::string d = broken("truncated");
    const std::string bytes = read_text(d + "/W1.npy");
    std::ofstream(d + "/W1.npy", std::ios::binary) << bytes.substr(0, bytes.size() - 7);
    cases.push_back({"truncated W1", d, {d + "/W1.npy"}});
  }
  {
    const std::string d = broken("missing_bias");
    fs::remove(d + "/b0.npy");
    cases.push_back({"missing b0", d, {d + "/b0.npy"}});
  }
  {
    const std::string d = broken("nan");
    const std::vector<double> b(8, NAN);
    npy::save<double>(d + "/b0.npy", b.data(), {8});
    cases.push_back({"NaN bias", d, {d + "/b0.npy"}});
  }
  cases.push_back({"no such directory", path("nothing"), {path("nothing")}});
  for (std::size_t k = 0; k < cases.size(); ++k) {
    SCOPED_TRACE(cases[k].label);
    const std::string out = path("out" + std::to_string(k));
    const CliRun r = cli("eval --checkpoint " + quote(cases[k].dir) + " --out " + quote(out));
    expect_input_error(r, cases[k].phrases, out);
  }
}

// ===========================================================================================
// mlp-grad: the CLI's loss and gradients against the independent forward-mode implementation

class MlpGradCli : public TrainingCliTest {
 protected:
  static constexpr std::int64_t B = 6;
  static constexpr int nx = 2, d = 3;  // the pendulum: nx 2, nu 1

  // a checkpoint with two hidden layers, trained with JAL so it has Jacobian statistics
  void train_checkpoint(const json& loss, const std::string& name = "run") {
    train(with(tiny_config(), {{"model", {{"hidden", {6, 5}}}}, {"loss", loss}}), name);
  }

  void write_arrays() {
    X = uniform(B * d, -2, 2, 501);
    Y = uniform(B * nx, -2, 2, 502);
    J = uniform(B * nx * d, -1.5, 1.5, 503);
    xs = save("X.npy", X, {B, d});
    ys = save("Y.npy", Y, {B, nx});
    js = save("J.npy", J, {B, nx, d});
  }

  // runs mlp-grad into OUT and compares loss.json and every gradient with naive::loss under
  // `loss` (the config the CLI must have used)
  void check(const std::string& args, const ModelState& st, const LossConfig& loss,
             const std::string& out) {
    SCOPED_TRACE(args);
    const CliRun r = cli("mlp-grad --checkpoint " + quote(path("run/checkpoint")) +
                         " --inputs " + quote(xs) + " --targets " + quote(ys) +
                         " --target-jacobians " + quote(js) + " --out " + quote(out) + " " + args);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "gradients in " + out)) << r.out;

    const std::size_t P = st.theta.size();
    std::vector<naive::DualP> theta;
    for (std::size_t p = 0; p < P; ++p) theta.push_back(naive::DualP::variable(st.theta[p], p, P));
    const naive::DualP L =
        naive::loss(st.spec, loss, theta, int(B), X.data(), Y.data(), J.data());

    const json j = read_json(out + "/loss.json");
    ASSERT_TRUE(j["loss"].is_number()) << j.dump();
    expect_rel(j["loss"].get<double>(), L.v, 1e-10, "loss", 1e-3);
    EXPECT_EQ(j["lambda_mse"].get<double>(), loss.lambda_mse);
    EXPECT_EQ(j["lambda_jal"].get<double>(), loss.lambda_jal);
    EXPECT_EQ(j["metric"], phydream::training::metric_name(loss.metric));
    EXPECT_EQ(j["scaling"], phydream::training::scaling_name(loss.scaling));
    EXPECT_EQ(j["batch"], B);
    EXPECT_EQ(j["num_params"], P);
    expect_rel(j["loss"].get<double>(),
               loss.lambda_mse * j["mse"].get<double>() + loss.lambda_jal * j["jal"].get<double>(),
               1e-12, "loss = weighted terms", 1e-3);

    double scale = 1e-6;
    for (std::size_t p = 0; p < P; ++p) scale = std::max(scale, std::abs(L.grad(p)));
    const auto& spec = st.spec;
    std::size_t files = 1;  // loss.json
    for (int l = 0; l < spec.num_layers(); ++l) {
      const std::string w = out + "/grad_W" + std::to_string(l) + ".npy";
      const std::string b = out + "/grad_b" + std::to_string(l) + ".npy";
      expect_npy(w, npy::DType::f64, {spec.layer_out(l), spec.layer_in(l)});
      expect_npy(b, npy::DType::f64, {spec.layer_out(l)});
      const auto gw = npy::load<double>(w).data, gb = npy::load<double>(b).data;
      ASSERT_EQ(gw.size(), spec.bias_offset(l) - spec.weight_offset(l));
      ASSERT_EQ(gb.size(), std::size_t(spec.layer_out(l)));
      for (std::size_t e = 0; e < gw.size(); ++e) {
        EXPECT_NEAR(gw[e], L.grad(spec.weight_offset(l) + e), 1e-10 * scale) << w << " " << e;
      }
      for (std::size_t e = 0; e < gb.size(); ++e) {
        EXPECT_NEAR(gb[e], L.grad(spec.bias_offset(l) + e), 1e-10 * scale) << b << " " << e;
      }
      files += 2;
    }
    std::size_t n = 0;
    for (const auto& e : fs::directory_iterator(out)) n += e.is_regular_file() ? 1 : 0;
    EXPECT_EQ(n, files) << "files in " << out;
  }

  std::vector<double> X, Y, J;
  std::string xs, ys, js;
};

TEST_F(MlpGradCli, EveryLossScalingAndMetricMatchesForwardMode) {
  train_checkpoint({{"lambda_jal", 1}, {"scaling", "std"}, {"metric", "frobenius"}});
  write_arrays();
  const ModelState st = phydream::training::load_checkpoint(path("run/checkpoint"));
  ASSERT_EQ(st.loss.jac_std.size(), std::size_t(nx * d));
  ASSERT_EQ(st.spec.num_layers(), 3);
  int k = 0;
  for (const char* loss : {"mse", "jal", "both"}) {
    for (const char* scaling : {"none", "minmax", "zscore", "std"}) {
      for (const char* metric : {"mse", "frobenius", "l1", "huber"}) {
        LossConfig c = st.loss;
        c.lambda_mse = std::string(loss) == "jal" ? 0 : 1;
        c.lambda_jal = std::string(loss) == "mse" ? 0 : 1;
        c.scaling = phydream::training::parse_scaling(scaling);
        c.metric = phydream::training::parse_metric(metric);
        const bool huber = c.metric == phydream::training::JalMetric::huber;
        if (huber) c.huber_delta = 0.2;  // the errors of these arrays lie on both sides of it
        check(std::string("--loss ") + loss + " --scaling " + scaling + " --metric " + metric +
                  (huber ? " --huber-delta 0.2" : ""),
              st, c, path("g" + std::to_string(k++)));
      }
    }
  }
}

TEST_F(MlpGradCli, DefaultsAndLambdaOverrides) {
  train_checkpoint({{"lambda_jal", 1}, {"scaling", "std"}, {"metric", "l1"}});
  write_arrays();
  const ModelState st = phydream::training::load_checkpoint(path("run/checkpoint"));
  // without --loss, --scaling, --metric: both terms, the checkpoint's scaling and metric
  LossConfig c = st.loss;
  c.lambda_mse = 1;
  c.lambda_jal = 1;
  check("", st, c, path("default"));
  c.lambda_mse = 0.25;
  c.lambda_jal = 3;
  check("--lambda-mse 0.25 --lambda-jal 3", st, c, path("weights"));
  c.lambda_mse = 1;
  c.lambda_jal = 0.5;
  check("--loss mse --lambda-jal 0.5", st, c, path("mse_plus"));
  c.lambda_mse = 2;
  c.lambda_jal = 1;
  check("--loss jal --lambda-mse 2 --scaling std", st, c, path("jal_plus"));

  c.lambda_mse = 1;
  c.lambda_jal = 0;
  check("--loss mse", st, c, path("mse"));

  // --loss mse needs no Jacobians, and gives the same gradients without them
  const std::string out = path("no_jac");
  const CliRun r = cli("mlp-grad --checkpoint " + quote(path("run/checkpoint")) + " --inputs " +
                       quote(xs) + " --targets " + quote(ys) + " --loss mse --out " + quote(out));
  ASSERT_EQ(r.status, 0) << r.err;
  for (const char* f : {"grad_W0.npy", "grad_b0.npy", "grad_W1.npy", "grad_b1.npy",
                        "grad_W2.npy", "grad_b2.npy", "loss.json"}) {
    EXPECT_EQ(read_text(out + "/" + f), read_text(path("mse/") + f)) << f;
  }
}

// a checkpoint trained with the huber metric keeps its delta, and mlp-grad uses it by default
TEST_F(MlpGradCli, HuberDeltaComesFromTheCheckpoint) {
  train_checkpoint({{"lambda_jal", 1}, {"metric", "huber"}, {"huber_delta", 0.35}});
  write_arrays();
  const ModelState st = phydream::training::load_checkpoint(path("run/checkpoint"));
  EXPECT_EQ(st.loss.metric, phydream::training::JalMetric::huber);
  EXPECT_EQ(st.loss.huber_delta, 0.35);
  LossConfig c = st.loss;
  c.lambda_mse = 1;
  c.lambda_jal = 1;
  check("", st, c, path("default"));
  EXPECT_EQ(read_json(path("default/loss.json"))["huber_delta"].get<double>(), 0.35);
  c.huber_delta = 2.5;
  check("--huber-delta 2.5", st, c, path("delta"));
}

TEST_F(MlpGradCli, StdScalingWithoutCheckpointStatisticsUsesTheGivenJacobians) {
  train_checkpoint({{"lambda_jal", 0}});  // no JAL: the checkpoint has no jac_std
  write_arrays();
  const ModelState st = phydream::training::load_checkpoint(path("run/checkpoint"));
  ASSERT_TRUE(st.loss.jac_std.empty());
  LossConfig c = st.loss;
  c.lambda_mse = 0;
  c.lambda_jal = 1;
  c.scaling = JacScaling::std;
  // the sample standard deviation over the batch of each Jacobian entry
  for (int e = 0; e < nx * d; ++e) {
    double m = 0, v = 0;
    for (std::int64_t b = 0; b < B; ++b) m += J[b * nx * d + e] / double(B);
    for (std::int64_t b = 0; b < B; ++b) v += (J[b * nx * d + e] - m) * (J[b * nx * d + e] - m);
    c.jac_std.push_back(std::sqrt(v / double(B - 1)));
  }
  check("--loss jal --scaling std", st, c, path("g"));
}

TEST_F(MlpGradCli, BadArraysNameTheOptionAndFile) {
  train_checkpoint({{"lambda_jal", 1}});
  write_arrays();
  const std::string ck = quote(path("run/checkpoint"));
  const std::string x5 = save("X5.npy", uniform(5 * d, -1, 1, 601), {5, d});
  const std::string x4 = save("X4.npy", uniform(B * 4, -1, 1, 602), {B, 4});
  const std::string y3 = save("Y3.npy", uniform(B * 3, -1, 1, 603), {B, 3});
  const std::string j5 = save("J5.npy", uniform(5 * nx * d, -1, 1, 604), {5, nx, d});
  const std::string j33 = save("J33.npy", uniform(B * 3 * 3, -1, 1, 605), {B, 3, 3});
  const std::string jflat = save("Jflat.npy", uniform(B * nx * d, -1, 1, 606), {B, nx * d});
  std::vector<double> xnan = X;
  xnan[4] = NAN;
  const std::string xn = save("Xnan.npy", xnan, {B, d});
  std::vector<double> jinf = J;
  jinf[7] = INFINITY;
  const std::string ji = save("Jinf.npy", jinf, {B, nx, d});
  // int64 data, a valid NPY header otherwise
  std::string header = "{'descr': '<i8', 'fortran_order': False, 'shape': (6, 3), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string bytes("\x93NUMPY\x01\x00", 8);
  bytes += static_cast<char>(header.size() & 0xFF);
  bytes += static_cast<char>(header.size() >> 8);
  bytes += header + std::string(B * d * 8, '\0');
  const std::string xint = write_text("Xint.npy", bytes);

  struct Case {
    std::string label, args;
    std::vector<std::string> phrases;
  };
  auto args = [&](const std::string& x, const std::string& y, const std::string& j) {
    return "--checkpoint " + ck + " --inputs " + quote(x) + " --targets " + quote(y) +
           (j.empty() ? "" : " --target-jacobians " + quote(j));
  };
  const std::vector<Case> cases = {
      {"batch mismatch X/Y", args(x5, ys, js), {"--targets", ys, "--inputs", x5, "batch B"}},
      {"batch mismatch J", args(xs, ys, j5), {"--target-jacobians", j5, "batch B"}},
      {"wrong input width", args(x4, ys, js), {"--inputs", x4, "nx+nu=3", "(6, 4)"}},
      {"wrong nx", args(xs, y3, js), {"--targets", y3, "nx=2"}},
      {"wrong Jacobian shape", args(xs, ys, j33), {"--target-jacobians", j33}},
      {"flat Jacobians", args(xs, ys, jflat), {"--target-jacobians", jflat}},
      {"missing Jacobians for jal", args(xs, ys, "") + " --loss jal", {"--target-jacobians"}},
      {"missing Jacobians for both", args(xs, ys, "") + " --loss both", {"--target-jacobians"}},
      {"missing Jacobians for mse + lambda", args(xs, ys, "") + " --loss mse --lambda-jal 1",
       {"--target-jacobians"}},
      {"NaN input", args(xn, ys, js), {"--inputs", xn, "NaN"}},
      {"infinite Jacobian", args(xs, ys, ji), {"--target-jacobians", ji, "infinite"}},
      {"int dtype", args(xint, ys, js), {"--inputs", xint}},
      {"missing file", args(path("nothing.npy"), ys, js), {"--inputs", path("nothing.npy")}},
      {"bad --loss", args(xs, ys, js) + " --loss all", {"--loss", "all"}},
      {"bad --scaling", args(xs, ys, js) + " --scaling max", {"--scaling", "max"}},
      {"bad --metric", args(xs, ys, js) + " --metric l2", {"--metric", "l2"}},
      {"--huber-delta without huber", args(xs, ys, js) + " --metric l1 --huber-delta 0.5",
       {"--huber-delta", "huber", "l1"}},
      {"--huber-delta 0", args(xs, ys, js) + " --metric huber --huber-delta 0",
       {"--huber-delta", "huber_delta", "> 0"}},
      {"negative lambda", args(xs, ys, js) + " --lambda-mse -1", {"lambda"}},
      {"both lambdas 0", args(xs, ys, js) + " --lambda-mse 0 --lambda-jal 0", {"lambda"}},
      {"bad checkpoint",
       "--checkpoint " + quote(path("nothing")) + " --inputs " + quote(xs) + " --targets " +
           quote(ys) + " --target-jacobians " + quote(js),
       {path("nothing") + "/model.json"}},
  };
  for (std::size_t k = 0; k < cases.size(); ++k) {
    SCOPED_TRACE(cases[k].label);
    const std::string out = path("out" + std::to_string(k));
    const CliRun r = cli("mlp-grad " + cases[k].args + " --out " + quote(out));
    expect_input_error(r, cases[k].phrases, out);
  }
}

// ===========================================================================================
// experiment

class ExperimentCli : public TrainingCliTest {
 protected:
  static json experiment() {
    json base = tiny_config();
    base["train"]["steps"] = 20;
    return {{"name", "tiny"},
            {"description", "two variants of a tiny pendulum model"},
            {"base", base},
            {"variants",
             {{"mse", {{"loss", {{"lambda_mse", 1}, {"lambda_jal", 0}}}}},
              {"mse+jal", {{"loss", {{"lambda_mse", 1}, {"lambda_jal", 1}}}}}}},
            {"seeds", {3, 7}}};
  }
  CliRun run(const json& e, const std::string& out, const std::string& extra = "") const {
    const std::string file = write_json(out + ".json", e);
    return cli("experiment --config " + quote(file) + " --out " + quote(path(out)) +
               " --backend cpu --quiet " + extra);
  }
};

TEST_F(ExperimentCli, RunsEveryVariantAndSeedAndAggregates) {
  const CliRun r = run(experiment(), "x");
  ASSERT_EQ(r.status, 0) << r.err;
  const std::string out = path("x");
  EXPECT_TRUE(contains(r.out, "| mse |")) << r.out;
  EXPECT_TRUE(contains(r.out, "| mse+jal |")) << r.out;
  EXPECT_TRUE(contains(r.out, "results in " + out)) << r.out;

  std::map<std::string, std::vector<json>> evals;
  for (const char* v : {"mse", "mse+jal"}) {
    for (int seed : {3, 7}) {
      const std::string d = out + "/runs/" + v + "/seed_" + std::to_string(seed);
      SCOPED_TRACE(d);
      ASSERT_TRUE(fs::exists(d + "/checkpoint/model.json"));
      EXPECT_TRUE(fs::exists(d + "/metrics.csv"));
      const json s = read_json(d + "/summary.json");
      EXPECT_EQ(s["config"]["train"]["seed"], seed);
      EXPECT_EQ(s["config"]["loss"]["lambda_jal"], std::string(v) == "mse" ? 0.0 : 1.0);
      EXPECT_EQ(s["steps"], 20);
      evals[v].push_back(read_json(d + "/eval.json"));
    }
  }
  EXPECT_NE(evals["mse"][0], evals["mse"][1]);  // the seeds differ

  const json res = read_json(out + "/results.json");
  EXPECT_EQ(res["name"], "tiny");
  EXPECT_EQ(res["seeds"], json({3, 7}));
  ASSERT_EQ(res["variants"].size(), 2u);
  for (const char* v : {"mse", "mse+jal"}) {
    SCOPED_TRACE(v);
    const json& g = res["variants"][v];
    for (const char* key : {"one_step_mse", "jacobian_mse", "jacobian_rel_err"}) {
      EXPECT_TRUE(g[key]["mean"].is_number()) << key;
      EXPECT_TRUE(g[key]["ci95"].is_number()) << key;
      EXPECT_EQ(g[key]["n"], 2) << key;
    }
    ASSERT_EQ(g["rollout_mse"].size(), 5u);
    ASSERT_EQ(g["rollout_mse_median"].size(), 5u);
    for (const json& m : g["rollout_mse"]) EXPECT_TRUE(m["ci95"].is_number());
    ASSERT_EQ(g["ood"].size(), 2u);
    EXPECT_EQ(g["ood"][1]["factor"], 2.0);
    EXPECT_TRUE(g["ood"][1]["one_step_mse"]["mean"].is_number());

    // mean and ci95 = t(0.975, n - 1) s / sqrt(n) from the runs' eval.json, by hand
    auto check = [&](const json& agg, double a, double b, const std::string& what) {
      const double mean = (a + b) / 2;
      const double sd = std::sqrt(((a - mean) * (a - mean) + (b - mean) * (b - mean)) / 1.0);
      expect_rel(agg["mean"].get<double>(), mean, 1e-12, what + " mean");
      expect_rel(agg["ci95"].get<double>(), 12.706 * sd / std::sqrt(2.0), 1e-12, what + " ci95");
    };
    const auto& e = evals[v];
    check(g["one_step_mse"], e[0]["one_step_mse"].get<double>(),
          e[1]["one_step_mse"].get<double>(), "one_step_mse");
    check(g["rollout_mse"][4], e[0]["rollout"]["mse"][4].get<double>(),
          e[1]["rollout"]["mse"][4].get<double>(), "rollout_mse h=5");
    check(g["ood"][1]["jacobian_mse"], e[0]["ood"][1]["jacobian_mse"].get<double>(),
          e[1]["ood"][1]["jacobian_mse"].get<double>(), "ood x2 jacobian_mse");
  }

  const std::string md = read_text(out + "/results.md");
  EXPECT_TRUE(contains(md, "# tiny")) << md;
  EXPECT_TRUE(contains(md, "| variant | one-step MSE | Jacobian MSE |")) << md;
  EXPECT_TRUE(contains(md, "| mse | ")) << md;
  EXPECT_TRUE(contains(md, "| mse+jal | ")) << md;
  EXPECT_TRUE(contains(md, "over 2 seeds")) << md;

  // a second run into the same OUT is refused, and the results stay
  const std::string results = read_text(out + "/results.json");
  const CliRun again = run(experiment(), "x");
  EXPECT_EQ(again.status, 2) << again.err;
  EXPECT_TRUE(contains(again.err, "already holds an experiment")) << again.err;
  EXPECT_EQ(read_text(out + "/results.json"), results);
}

TEST_F(ExperimentCli, SeedsAndStepsOverrides) {
  const CliRun r = run(experiment(), "x", "--seeds 1 --steps 7");
  ASSERT_EQ(r.status, 0) << r.err;
  const std::string out = path("x");
  for (const char* v : {"mse", "mse+jal"}) {
    const std::string d = out + "/runs/" + v;
    EXPECT_TRUE(fs::exists(d + "/seed_3/eval.json")) << d;
    EXPECT_FALSE(fs::exists(d + "/seed_7")) << d;
    EXPECT_EQ(read_json(d + "/seed_3/summary.json")["steps"], 7);
    EXPECT_EQ(csv_steps(d + "/seed_3/metrics.csv"), (std::vector<long>{7}));
  }
  const json res = read_json(out + "/results.json");
  EXPECT_EQ(res["seeds"], json({3}));
  EXPECT_EQ(res["variants"]["mse"]["one_step_mse"]["n"], 1);
  EXPECT_EQ(res["variants"]["mse"]["one_step_mse"]["ci95"], 0.0);
}

TEST_F(ExperimentCli, BadExperimentFilesCreateNothing) {
  struct Case {
    std::string label;
    std::string text;
    std::vector<std::string> phrases;
    std::string flags;
  };
  const json good = experiment();
  auto edit = [&](const std::function<void(json&)>& f) {
    json e = good;
    f(e);
    return e.dump();
  };
  const std::vector<Case> cases = {
      {"invalid JSON", "{\"base\": ", {"not valid JSON"}, ""},
      {"number overflow", "{\"seeds\": [1e999]}", {"not valid JSON", "number overflow"}, ""},
      {"no base", edit([](json& e) { e.erase("base"); }), {"'base'"}, ""},
      {"no variants", edit([](json& e) { e.erase("variants"); }), {"'variants'"}, ""},
      {"empty variants", edit([](json& e) { e["variants"] = json::object(); }), {"'variants'"}, ""},
      {"variants an array", edit([](json& e) { e["variants"] = json::array({1}); }),
       {"'variants'"}, ""},
      {"unknown key", edit([](json& e) { e["repeats"] = 3; }), {"unknown key 'repeats'"}, ""},
      {"invalid variant config",
       edit([](json& e) { e["variants"]["bad"] = {{"loss", {{"lambda_mse", 0}}}}; }),
       {"variant bad", "lambda_mse"}, ""},
      {"unknown key in a variant",
       edit([](json& e) { e["variants"]["bad"] = {{"model", {{"width", 3}}}}; }),
       {"variant bad", "model.width"}, ""},
      {"variant not an object", edit([](json& e) { e["variants"]["bad"] = 5; }),
       {"variant 'bad'", "object"}, ""},
      {"variant train not an object", edit([](json& e) { e["variants"]["bad"] = {{"train", 5}}; }),
       {"variant bad", "'train'"}, ""},
      {"base not an object", edit([](json& e) { e["base"] = "cfg.json"; }), {"'base'"}, ""},
      {"escaping variant name", edit([](json& e) { e["variants"]["../up"] = json::object(); }),
       {"variant name '../up'"}, ""},
      {"empty variant name", edit([](json& e) { e["variants"][""] = json::object(); }),
       {"variant name ''"}, ""},
      {"seeds not integers", edit([](json& e) { e["seeds"] = {0, 1.5}; }), {"'seeds'"}, ""},
      {"seeds strings", edit([](json& e) { e["seeds"] = {"0"}; }), {"'seeds'"}, ""},
      {"negative seed", edit([](json& e) { e["seeds"] = {-1}; }), {"'seeds'"}, ""},
      {"empty seeds", edit([](json& e) { e["seeds"] = json::array(); }), {"'seeds'"}, ""},
      {"repeated seed", edit([](json& e) { e["seeds"] = {3, 3}; }), {"'seeds'", "twice"}, ""},
      {"name not a string", edit([](json& e) { e["name"] = 5; }), {"'name'"}, ""},
      {"--seeds too many", good.dump(), {"--seeds"}, "--seeds 3"},
      {"--seeds 0", good.dump(), {"--seeds"}, "--seeds 0"},
      {"--steps 0", good.dump(), {"--steps"}, "--steps 0"},
  };
  for (std::size_t k = 0; k < cases.size(); ++k) {
    const Case& c = cases[k];
    SCOPED_TRACE(c.label);
    const std::string file = write_text("exp" + std::to_string(k) + ".json", c.text);
    const std::string out = path("out" + std::to_string(k));
    const CliRun r = cli("experiment --config " + quote(file) + " --out " + quote(out) +
                         " --backend cpu --quiet " + c.flags);
    std::vector<std::string> phrases = c.phrases;
    if (c.flags.empty()) phrases.push_back(file);
    expect_input_error(r, phrases, out);
  }
  EXPECT_FALSE(fs::exists(path("up")));
  const CliRun r = cli("experiment --config " + quote(path("nothing.json")) + " --out " +
                       quote(path("o")));
  expect_input_error(r, {path("nothing.json")}, path("o"));
}

TEST_F(ExperimentCli, CudaBackendWithoutADeviceFails) {
  if (phydream::cuda_device_count() > 0) GTEST_SKIP() << "a CUDA device is visible";
  const std::string file = write_json("exp.json", experiment());
  const CliRun r = cli("experiment --config " + quote(file) + " --out " + quote(path("x")) +
                       " --backend cuda");
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_TRUE(contains(r.err, "cuda")) << r.err;
  EXPECT_FALSE(fs::exists(path("x")));
}

TEST_F(ExperimentCli, PlotScriptWritesTheFigures) {
  if (std::system("/usr/bin/python3 -c 'import matplotlib, numpy' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "/usr/bin/python3 cannot import matplotlib and numpy";
  }
  ASSERT_EQ(run(experiment(), "x").status, 0);
  const std::string script = std::string(PHYDREAM_SOURCE_DIR) + "/scripts/plot_results.py";
  const std::string cmd = "MPLCONFIGDIR=" + quote(path("mpl")) + " /usr/bin/python3 " +
                          quote(script) + " " + quote(path("x")) + " > " +
                          quote(path("plot.txt")) + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << read_text(path("plot.txt"));
  for (const char* png : {"training_curves.png", "rollout_error.png", "ood.png",
                          "jacobians.png"}) {
    const std::string p = path("x/plots/") + png;
    ASSERT_TRUE(fs::exists(p)) << p;
    EXPECT_EQ(read_text(p).substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8)) << p;
  }
}

}  // namespace
