// The training pipeline on the CPU backend: config validation, sampling, statistics, that
// training lowers the loss, determinism, resume equivalence, checkpoints, evaluation.
#include "training/trainer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "engine/errors.h"
#include "engine/npy.h"
#include "models/envs.h"
#include "training/checkpoint.h"
#include "training/cpu_engine.h"
#include "training/eval.h"

namespace phydream::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using training::ModelState;
using training::TrainConfig;
using training::Trainer;

json small_config(const std::string& env = "pendulum") {
  return json{{"env", env},
              {"model", {{"hidden", {16, 16}}, {"activation", "tanh"}}},
              {"loss", {{"lambda_mse", 1.0}, {"lambda_jal", 0.5}}},
              {"optimizer", {{"lr", 3e-3}}},
              {"train", {{"steps", 100}, {"batch", 64}, {"seed", 7}, {"log_every", 10},
                         {"stats_samples", 2048}}},
              {"eval", {{"samples", 256}, {"rollout_envs", 32}, {"horizon", 10},
                        {"ood_factors", {1.0, 2.0}}, {"ood_horizon", 5}}}};
}

std::string error_of(const json& j) {
  try {
    training::parse_train_config(j, "cfg.json");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(TrainConfig, DefaultsFromTheEnvironment) {
  const TrainConfig c = training::parse_train_config(json{{"env", "double_pendulum"}}, "cfg.json");
  EXPECT_EQ(c.sampling.state_low, find_env("double_pendulum").state_low);
  EXPECT_EQ(c.model.hidden, (std::vector<int>{64, 64}));
  EXPECT_EQ(c.train.dtype, "f32");
  EXPECT_EQ(c.train.kernels, training::MlpKernels::automatic);
  // the JSON form parses back to the same config
  const TrainConfig again = training::parse_train_config(training::to_json(c), "again");
  EXPECT_EQ(training::to_json(again), training::to_json(c));
}

TEST(TrainConfig, BadConfigsNameTheKey) {
  json j = small_config();
  j["model"]["widths"] = {3};
  EXPECT_NE(error_of(j).find("unknown key 'model.widths'"), std::string::npos) << error_of(j);
  j = small_config();
  j["train"]["steps"] = "many";
  EXPECT_NE(error_of(j).find("'train.steps' must be an integer"), std::string::npos) << error_of(j);
  j = small_config();
  j["train"]["batch"] = 0;
  EXPECT_NE(error_of(j).find("train.batch"), std::string::npos);
  j = small_config();
  j["loss"]["scaling"] = "l2";
  EXPECT_NE(error_of(j).find("unknown Jacobian scaling 'l2'"), std::string::npos);
  j = small_config();
  j["sampling"] = {{"state_low", {1.0, 0.0}}, {"state_high", {0.0, 1.0}}};
  EXPECT_NE(error_of(j).find("sampling.state_low"), std::string::npos) << error_of(j);
  j = small_config();
  j["params"] = {{"mass", -1.0}};
  EXPECT_NE(error_of(j).find("parameter 'mass'"), std::string::npos) << error_of(j);
  j = small_config();
  j.erase("env");
  EXPECT_NE(error_of(j).find("missing required key 'env'"), std::string::npos);
  j = small_config();
  j["env"] = "triple_pendulum";
  EXPECT_NE(error_of(j).find("unknown environment"), std::string::npos);
  j = small_config();
  j["train"]["kernels"] = "tensor";
  EXPECT_NE(error_of(j).find("'train.kernels' must be \"auto\", \"fused\" or \"gemm\""),
            std::string::npos)
      << error_of(j);
  j = small_config();
  j["loss"] = {{"lambda_mse", 0.0}, {"lambda_jal", 0.0}};
  EXPECT_NE(error_of(j).find("not both 0"), std::string::npos);
  EXPECT_THROW(training::load_train_config("/nonexistent/cfg.json"), InputError);
}

TEST(TrainConfig, KernelChoiceRoundTrips) {
  for (const char* k : {"auto", "fused", "gemm"}) {
    json j = small_config();
    j["train"]["kernels"] = k;
    const TrainConfig c = training::parse_train_config(j, "cfg.json");
    EXPECT_STREQ(training::mlp_kernels_name(c.train.kernels), k);
    EXPECT_EQ(training::to_json(c)["train"]["kernels"], k);
  }
  EXPECT_THROW(training::parse_mlp_kernels("cublas"), InputError);
}

// every experiment the project ships parses: each variant patched onto its base is a valid
// training config (model files resolved against assets/experiments/)
TEST(TrainConfig, ShippedExperimentsAreValid) {
  const fs::path dir = fs::path(PHYDREAM_SOURCE_DIR) / "assets" / "experiments";
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".json") continue;
    ++files;
    const std::string name = entry.path().filename().string();
    std::ifstream in(entry.path());
    const json e = json::parse(in);
    ASSERT_TRUE(e.contains("base") && e.contains("variants") && e.contains("seeds")) << name;
    EXPECT_EQ(e.value("name", ""), entry.path().stem().string()) << name;
    EXPECT_FALSE(e.value("description", "").empty()) << name;
    EXPECT_FALSE(e["seeds"].empty()) << name;
    for (const auto& [variant, patch] : e["variants"].items()) {
      EXPECT_NO_THROW(training::parse_train_config(training::merge_json(e["base"], patch),
                                                   name + " " + variant, dir.string()))
          << name << " " << variant;
    }
  }
  EXPECT_GE(files, 10);
}

TEST(TrainConfig, MergeAppliesVariantsOnTheBase) {
  const json base = small_config();
  const json merged = training::merge_json(base, json{{"loss", {{"lambda_jal", 0.0}}}});
  EXPECT_EQ(merged["loss"]["lambda_mse"], 1.0);
  EXPECT_EQ(merged["loss"]["lambda_jal"], 0.0);
  EXPECT_EQ(merged["model"], base["model"]);
}

TEST(LearningRate, CosineGoesFromLrToLrMin) {
  training::OptimizerConfig o;
  o.adam.lr = 1e-2;
  o.schedule = "cosine";
  o.lr_min = 1e-4;
  EXPECT_DOUBLE_EQ(training::learning_rate(o, 0, 100), 1e-2);
  EXPECT_NEAR(training::learning_rate(o, 50, 100), 0.5 * (1e-2 + 1e-4), 1e-15);
  EXPECT_DOUBLE_EQ(training::learning_rate(o, 100, 100), 1e-4);
  o.schedule = "constant";
  EXPECT_DOUBLE_EQ(training::learning_rate(o, 73, 100), 1e-2);
}

TEST(Sampling, UniformDrawsAreInTheBoxAndReproducible) {
  training::CpuTrainOps<double> ops;
  const double lo[] = {-1.0, 2.0}, hi[] = {1.0, 5.0};
  const training::SampleBox<double> box{lo, hi, 2};
  std::vector<double> a(2000), b(2000), c(2000);
  ops.sample_uniform(1000, 3, 17, box, a.data());
  ops.sample_uniform(1000, 3, 17, box, b.data());
  ops.sample_uniform(1000, 3, 18, box, c.data());
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  double mean1 = 0;
  for (int i = 0; i < 1000; ++i) {
    EXPECT_GE(a[2 * i], -1.0);
    EXPECT_LT(a[2 * i], 1.0);
    EXPECT_GE(a[2 * i + 1], 2.0);
    EXPECT_LT(a[2 * i + 1], 5.0);
    mean1 += a[2 * i + 1] / 1000;
  }
  EXPECT_NEAR(mean1, 3.5, 0.1);
}

TEST(Sampling, RolloutModePicksStatesAlongTrajectories) {
  json j = small_config("double_pendulum");
  j["sampling"] = {{"mode", "rollout"}, {"horizon", 15}};
  const TrainConfig c = training::parse_train_config(j, "cfg");
  Simulator<double> sim(c.simulator_options(Backend::cpu, 0));
  training::CpuTrainOps<double> ops;
  training::BatchSampler<double> sampler(c.sampling, Backend::cpu, sim, ops);
  sampler.draw(500, 1, 0, true);
  int outside = 0;
  for (int b = 0; b < 500; ++b) {
    for (int i = 0; i < 4; ++i) {
      const double v = sampler.x()[b * 4 + i];
      EXPECT_TRUE(std::isfinite(v));
      outside += v < c.sampling.state_low[i] || v > c.sampling.state_high[i];
    }
  }
  // states along rollouts leave the initial box (velocities grow), within the allowed margin
  EXPECT_GT(outside, 0);
  // the targets are the simulator's next states of the picked states
  std::vector<double> xn(500 * 4);
  sim.step(500, sampler.x(), sampler.u(), xn.data());
  for (int e = 0; e < 2000; ++e) EXPECT_EQ(sampler.targets()[e], xn[e]);
}

// a rollout state is kept however far its velocities took it from the box, unless it diverged
// (non-finite, or beyond kRolloutDivergedWidths box widths): then the rollout's start is taken
TEST(Sampling, RolloutStatesAreKeptUnlessTheyDiverged) {
  const int nx = 2;
  const std::int64_t T = 9, per = 200;
  const std::vector<double> lo = {-1.0, 0.0}, hi = {1.0, 0.5};
  const double far = training::kRolloutDivergedWidths;
  // groups of `per` environments: every state after the start the same, 5 widths out, just
  // inside the bound, just beyond it, NaN, -inf
  // (dimension 0: box [-1, 1], 2 wide)
  const std::vector<double> after = {1 + 5 * 2.0, 1 + (far - 0.5) * 2.0, 1 + (far + 0.5) * 2.0, NAN, -INFINITY};
  const std::int64_t N = per * static_cast<std::int64_t>(after.size());
  std::vector<double> states(N * (T + 1) * nx), x(N * nx);
  for (std::int64_t b = 0; b < N; ++b) {
    for (std::int64_t t = 0; t <= T; ++t) {
      double* row = &states[(b * (T + 1) + t) * nx];
      row[0] = t == 0 ? 0.25 : after[b / per];
      row[1] = t == 0 ? 0.1 : 0.2;
    }
  }
  training::CpuTrainOps<double> ops;
  ops.pick_states(N, T, 5, 3, training::SampleBox<double>{lo.data(), hi.data(), nx}, states.data(), x.data());
  for (std::size_t g = 0; g < after.size(); ++g) {
    int kept = 0, start = 0;
    for (std::int64_t b = g * per; b < static_cast<std::int64_t>(g + 1) * per; ++b) {
      kept += x[b * nx + 1] == 0.2 && (x[b * nx] == after[g] || std::isnan(after[g]));
      start += x[b * nx] == 0.25 && x[b * nx + 1] == 0.1;
    }
    SCOPED_TRACE("group " + std::to_string(g));
    EXPECT_EQ(kept + start, per);
    if (g < 2) {
      // t = 0 (the start itself) is picked one time in T + 1
      EXPECT_GT(kept, per * 8 / 10);
    } else {
      EXPECT_EQ(kept, 0);
    }
  }
}

// ---------------------------------------------------------------------------------------------

template <class S>
std::vector<training::StepLog> train(Trainer<S>& t, std::int64_t steps) {
  std::vector<training::StepLog> logs;
  t.run(steps, [&](const training::StepLog& l) { logs.push_back(l); });
  return logs;
}

TEST(Trainer, StatisticsDescribeTheData) {
  const TrainConfig c = training::parse_train_config(small_config(), "cfg");
  Trainer<double> t(c, Backend::cpu);
  t.initialise();
  const auto& s = t.spec();
  // uniform inputs: mean at the box centre, std = width / sqrt(12)
  EXPECT_NEAR(s.in_mean[0], 0.0, 0.1);
  EXPECT_NEAR(s.in_std[0], 2 * M_PI / std::sqrt(12.0), 0.05);
  EXPECT_NEAR(s.in_std[1], 8 / std::sqrt(12.0), 0.1);
  EXPECT_GT(s.out_std[1], 0);
  EXPECT_EQ(t.loss().jac_std.size(), 2u * 3u);
}

TEST(Trainer, TrainingLowersTheLoss) {
  for (double ljal : {0.0, 1.0}) {
    json j = small_config();
    j["loss"]["lambda_jal"] = ljal;
    j["train"]["steps"] = 300;
    const TrainConfig c = training::parse_train_config(j, "cfg");
    Trainer<float> t(c, Backend::cpu);
    EXPECT_STREQ(t.mlp_kernels(), "none");
    t.initialise();
    EXPECT_STREQ(t.mlp_kernels(), "eigen");  // the CPU backend's whatever train.kernels says
    const auto logs = train(t, 300);
    ASSERT_EQ(logs.size(), 30u);
    EXPECT_EQ(logs.back().step, 300);
    EXPECT_LT(logs.back().terms.total, 0.2 * logs.front().terms.total) << "lambda_jal " << ljal;
    EXPECT_GT(logs.back().samples_per_s, 0);
    if (ljal > 0) EXPECT_LT(logs.back().terms.jal, 0.5 * logs.front().terms.jal);
    // a built-in environment has no constraint solver: every sample counts as converged
    EXPECT_EQ(logs.back().samples_drawn, 2048 + 300 * 64);
    EXPECT_EQ(logs.back().capped_solves, 0);
  }
}

TEST(Trainer, SameSeedSameModel) {
  const TrainConfig c = training::parse_train_config(small_config(), "cfg");
  Trainer<float> a(c, Backend::cpu), b(c, Backend::cpu);
  a.initialise();
  b.initialise();
  train(a, 25);
  train(b, 25);
  EXPECT_EQ(a.state().theta, b.state().theta);
}

TEST(Trainer, ResumingEqualsTrainingStraightThrough) {
  const TrainConfig c = training::parse_train_config(small_config("cartpole"), "cfg");
  Trainer<double> straight(c, Backend::cpu);
  straight.initialise();
  train(straight, 40);
  Trainer<double> first(c, Backend::cpu);
  first.initialise();
  train(first, 15);
  Trainer<double> second(c, Backend::cpu);
  second.restore(first.state());
  train(second, 25);
  EXPECT_EQ(second.step(), 40);
  EXPECT_EQ(second.state().theta, straight.state().theta);
  EXPECT_EQ(second.state().adam_v, straight.state().adam_v);
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("phydream_ckpt_" + std::to_string(std::random_device{}()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(CheckpointTest, RoundTripIsExact) {
  json j = small_config();
  j["loss"]["scaling"] = "std";
  const TrainConfig c = training::parse_train_config(j, "cfg");
  Trainer<double> t(c, Backend::cpu);
  t.initialise();
  train(t, 5);
  const ModelState st = t.state();
  const std::string path = (dir_ / "ckpt").string();
  training::save_checkpoint(path, st, "f64");
  std::string dtype;
  const ModelState back = training::load_checkpoint(path, &dtype);
  EXPECT_EQ(dtype, "f64");
  EXPECT_EQ(back.theta, st.theta);
  EXPECT_EQ(back.adam_m, st.adam_m);
  EXPECT_EQ(back.step, 5);
  EXPECT_EQ(back.spec.in_std, st.spec.in_std);
  EXPECT_EQ(back.loss.jac_std, st.loss.jac_std);
  EXPECT_EQ(training::to_json(back.config), training::to_json(st.config));
  // W_l is (out, in): readable by any tool
  const auto W0 = npy::load<double>(path + "/W0.npy");
  EXPECT_EQ(W0.shape, (std::vector<std::int64_t>{16, 3}));
  EXPECT_EQ(W0.data[1], st.theta[1]);
  // saving again replaces it, leaving no temporary directory
  training::save_checkpoint(path, st, "f32", false);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator{}), 1);
  const ModelState f32 = training::load_checkpoint(path, &dtype);
  EXPECT_EQ(dtype, "f32");
  EXPECT_TRUE(f32.adam_m.empty());
  EXPECT_EQ(f32.theta[3], double(float(st.theta[3])));
}

TEST_F(CheckpointTest, BrokenCheckpointsAreClearErrors) {
  const TrainConfig c = training::parse_train_config(small_config(), "cfg");
  Trainer<double> t(c, Backend::cpu);
  t.initialise();
  const std::string path = (dir_ / "ckpt").string();
  training::save_checkpoint(path, t.state(), "f64");
  auto message = [&]() -> std::string {
    try {
      training::load_checkpoint(path);
    } catch (const InputError& e) {
      return e.what();
    }
    return "";
  };
  // a tensor of the wrong shape
  const std::vector<double> wrong(5, 0.0);
  npy::save(path + "/b1.npy", wrong.data(), {5});
  EXPECT_NE(message().find("b1.npy: expected shape (16,)"), std::string::npos) << message();
  // a missing tensor
  fs::remove(path + "/b1.npy");
  EXPECT_NE(message().find("b1.npy"), std::string::npos) << message();
  // malformed metadata
  std::ofstream(path + "/model.json") << "{\"format\": \"phydream-mlp\", \"version\": 1}";
  EXPECT_NE(message().find("missing field 'config'"), std::string::npos) << message();
  std::ofstream(path + "/model.json") << "not json";
  EXPECT_NE(message().find("not valid JSON"), std::string::npos) << message();
  EXPECT_THROW(training::load_checkpoint((dir_ / "nothing").string()), InputError);
}

TEST(Evaluation, TrainedModelBeatsUntrainedOne) {
  json j = small_config();
  j["train"]["steps"] = 400;
  const TrainConfig c = training::parse_train_config(j, "cfg");
  Trainer<float> t(c, Backend::cpu);
  t.initialise();
  const auto before = training::evaluate(t.state());
  train(t, 400);
  const auto after = training::evaluate(t.state());
  EXPECT_LT(after.one_step_mse, 0.2 * before.one_step_mse);
  EXPECT_LT(after.jacobian_mse, before.jacobian_mse);
  ASSERT_EQ(after.rollout_mse.size(), 10u);
  ASSERT_EQ(after.rollout_mse_median.size(), 10u);
  // non-negative errors: half are >= the median, so the mean is >= median / 2
  EXPECT_LE(after.rollout_mse_median[9], 2 * after.rollout_mse[9]);
  EXPECT_EQ(after.rollout_envs + after.simulator_diverged + after.model_diverged, 32);
  EXPECT_LT(after.rollout_mse[0], after.rollout_mse[9]);  // errors compound along a rollout
  ASSERT_EQ(after.ood.size(), 2u);
  EXPECT_GT(after.ood[1].one_step_mse, after.ood[0].one_step_mse);  // worse out of the box
  EXPECT_EQ(after.examples.size(), 3u);
  const json js = training::to_json(after);
  EXPECT_EQ(js["rollout"]["mse"].size(), 10u);
}

}  // namespace
}  // namespace phydream::testing
