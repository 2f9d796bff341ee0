// The training pipeline on an articulated model file (the config's env_model), CPU backend: the
// config takes the model's sizes and boxes (or overrides), resolves the path against the
// config's directory and refuses what the trainer cannot learn (nq != nv); training on the
// inverted double pendulum lowers both loss terms; a checkpoint round trip keeps the model file
// and evaluates to the same numbers; on the half-cheetah with contact, samples whose constraint
// solve stopped at the iteration cap are counted and a non-finite solve stops the run.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "engine/articulated.h"
#include "engine/errors.h"
#include "engine/model_json.h"
#include "training/checkpoint.h"
#include "training/cpu_engine.h"
#include "training/eval.h"
#include "training/trainer.h"

namespace phydream::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using training::ModelState;
using training::TrainConfig;
using training::Trainer;

const std::string kAssets = std::string(PHYDREAM_SOURCE_DIR) + "/assets";
const std::string kIdp = kAssets + "/inverted_double_pendulum.xml";

json idp_config(const std::string& model = kIdp) {
  return json{{"env_model", model},
              {"model", {{"hidden", {32, 32}}, {"activation", "tanh"}}},
              {"loss", {{"lambda_mse", 1.0}, {"lambda_jal", 1.0}}},
              {"optimizer", {{"lr", 3e-3}}},
              {"train", {{"steps", 200}, {"batch", 128}, {"seed", 3}, {"log_every", 10},
                         {"stats_samples", 2048}}},
              {"eval", {{"samples", 256}, {"rollout_envs", 32}, {"horizon", 10},
                        {"ood_factors", {1.0, 2.0}}, {"ood_horizon", 5}}}};
}

std::string error_of(const json& j, const std::string& base_dir = "") {
  try {
    training::parse_train_config(j, "cfg.json", base_dir);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

TEST(EnvModelConfig, TakesTheModelsSizesAndBoxes) {
  const TrainConfig c = training::parse_train_config(idp_config(), "cfg.json");
  EXPECT_EQ(c.env, "");
  EXPECT_EQ(c.env_model, fs::path(kIdp).lexically_normal().string());
  EXPECT_EQ(c.env_model_name, "inverted_double_pendulum");
  EXPECT_EQ(c.env_label(), "inverted_double_pendulum");
  const EnvInfo env = model_env_info(load_model(kIdp));
  EXPECT_EQ(c.sampling.state_low, env.state_low);
  EXPECT_EQ(c.sampling.state_high, env.state_high);
  EXPECT_EQ(c.sampling.action_low, env.action_low);
  EXPECT_EQ(c.sampling.action_high, env.action_high);
  EXPECT_EQ(c.sampling.state_low.size(), 6u);
  EXPECT_EQ(c.sampling.state_low[0], -1.0);  // the slider's joint range

  // the simulator options carry the file and the flags
  const SimulatorOptions o = c.simulator_options(Backend::cpu, 1);
  EXPECT_EQ(o.model_file, c.env_model);
  EXPECT_TRUE(o.disable.empty());

  // the JSON form parses back to the same config, from any directory
  const TrainConfig again = training::parse_train_config(training::to_json(c), "again", "/");
  EXPECT_EQ(training::to_json(again), training::to_json(c));
  EXPECT_FALSE(training::to_json(c).contains("env"));
  EXPECT_FALSE(training::to_json(c).contains("params"));
}

TEST(EnvModelConfig, RelativePathsAreTakenFromTheConfigsDirectory) {
  const TrainConfig c =
      training::parse_train_config(idp_config("inverted_double_pendulum.xml"), "cfg", kAssets);
  EXPECT_EQ(c.env_model, fs::path(kIdp).lexically_normal().string());
  const TrainConfig up = training::parse_train_config(
      idp_config("../inverted_double_pendulum.xml"), "cfg", kAssets + "/experiments");
  EXPECT_EQ(up.env_model, c.env_model);
  // the same name without the directory is looked for where the config is, not found
  const std::string e = error_of(idp_config("inverted_double_pendulum.xml"), "/nonexistent");
  EXPECT_NE(e.find("env_model 'inverted_double_pendulum.xml': no such file"), std::string::npos)
      << e;
  EXPECT_NE(e.find("/nonexistent/inverted_double_pendulum.xml"), std::string::npos) << e;
}

TEST(EnvModelConfig, BoundsAndDisableFlagsOverride) {
  json j = idp_config();
  j["disable"] = {"limit"};
  j["sampling"] = {{"state_low", {-0.5, -0.2, -0.2, -2, -2, -2}},
                   {"state_high", {0.5, 0.2, 0.2, 2, 2, 2}},
                   {"action_low", {-0.5}},
                   {"action_high", {0.25}}};
  const TrainConfig c = training::parse_train_config(j, "cfg.json");
  EXPECT_EQ(c.disable, (std::vector<std::string>{"limit"}));
  EXPECT_EQ(c.sampling.state_high, (std::vector<double>{0.5, 0.2, 0.2, 2, 2, 2}));
  EXPECT_EQ(c.sampling.action_low, (std::vector<double>{-0.5}));
  // the flag reaches the simulator's model
  Simulator<double> sim(c.simulator_options(Backend::cpu, 1));
  ASSERT_NE(sim.model(), nullptr);
  EXPECT_NE(sim.model()->opt_disableflags & parse_disable_flag("limit"), 0);
  const TrainConfig again = training::parse_train_config(training::to_json(c), "again");
  EXPECT_EQ(again.disable, c.disable);
  EXPECT_EQ(again.sampling.action_high, c.sampling.action_high);
}

TEST(EnvModelConfig, BadModelConfigsNameTheKey) {
  json j = idp_config();
  j["sampling"] = {{"state_low", {-1, -1}}, {"state_high", {1, 1}}};
  std::string e = error_of(j);
  EXPECT_NE(e.find("'sampling.state_low' and its high bound must have 6 entries each (slider, "
                   "hinge, hinge2, slider.vel, hinge.vel, hinge2.vel)"),
            std::string::npos)
      << e;
  j = idp_config();
  j["sampling"] = {{"action_low", {-1, -1}}};
  e = error_of(j);
  EXPECT_NE(e.find("'sampling.action_low' and its high bound must have 1 entries each (slide)"),
            std::string::npos)
      << e;
  j = idp_config();
  j["sampling"] = {{"action_low", {1.0}}, {"action_high", {-1.0}}};
  EXPECT_NE(error_of(j).find("must be below its high bound"), std::string::npos) << error_of(j);

  // a free joint: nq = 7 > nv = 6
  e = error_of(idp_config(kAssets + "/bounce.xml"));
  for (const char* phrase : {"cfg.json: env_model", "model 'bounce'", "nq = 7", "nv = 6",
                             "joint 'ball' is a free joint", "hinge and slide joints only"}) {
    EXPECT_NE(e.find(phrase), std::string::npos) << phrase << " in: " << e;
  }

  EXPECT_NE(error_of(idp_config(kAssets + "/nope.xml")).find("no such file"), std::string::npos);
  j = idp_config();
  j["env"] = "pendulum";
  EXPECT_NE(error_of(j).find("not both"), std::string::npos);
  j = idp_config();
  j.erase("env_model");
  EXPECT_NE(error_of(j).find("missing required key 'env'"), std::string::npos) << error_of(j);
  j = idp_config();
  j["disable"] = {"contact", "gravitty"};
  EXPECT_NE(error_of(j).find("disable: unknown disable flag 'gravitty'"), std::string::npos)
      << error_of(j);
  j = idp_config();
  j["disable"] = {"contact", 3};
  EXPECT_NE(error_of(j).find("'disable' must be an array of flag names"), std::string::npos);
  j = idp_config();
  j["params"] = {{"m1", 2.0}};
  EXPECT_NE(error_of(j).find("'params' applies to the built-in environments"), std::string::npos);
  j = json{{"env", "pendulum"}, {"disable", {"contact"}}};
  EXPECT_NE(error_of(j).find("'disable' applies to articulated models"), std::string::npos);
  j = idp_config();
  j["dt"] = -0.01;
  EXPECT_NE(error_of(j).find("dt must be a finite value > 0"), std::string::npos) << error_of(j);
}

TEST(EnvModelTrainer, TrainingOnTheInvertedDoublePendulumLowersBothTerms) {
  // the slider kept 0.1 m inside its limit: a batch that reaches the stiff limit constraint has
  // Jacobian entries 100x the others, and a JAL that jumps from batch to batch (docs/results.md)
  json j = idp_config();
  j["sampling"] = {{"state_low", {-0.9, -M_PI, -M_PI, -1, -1, -1}},
                   {"state_high", {0.9, M_PI, M_PI, 1, 1, 1}}};
  const TrainConfig c = training::parse_train_config(j, "cfg");
  Trainer<float> t(c, Backend::cpu, 1);
  t.initialise();
  EXPECT_EQ(t.spec().nx, 6);
  EXPECT_EQ(t.spec().nu, 1);
  EXPECT_EQ(t.loss().jac_std.size(), 6u * 7u);
  std::vector<training::StepLog> logs;
  t.run(200, [&](const training::StepLog& l) { logs.push_back(l); });
  ASSERT_EQ(logs.size(), 20u);
  // the means of the first and last three log steps, robust to one noisy batch
  auto mean = [&](std::size_t from, double training::LossTerms::*term) {
    return (logs[from].terms.*term + logs[from + 1].terms.*term + logs[from + 2].terms.*term) / 3;
  };
  for (double training::LossTerms::*term : {&training::LossTerms::mse, &training::LossTerms::jal}) {
    EXPECT_LT(mean(17, term), 0.5 * mean(0, term));
    EXPECT_TRUE(std::isfinite(logs.back().terms.*term));
  }
}

TEST(EnvModelTrainer, RefusesAStateThatIsNotItsOwnTangent) {
  // a config built in code, past the parser's check: the trainer checks again
  TrainConfig c = training::parse_train_config(idp_config(), "cfg");
  c.env_model = kAssets + "/bounce.xml";
  c.sampling.state_low.assign(13, -1.0);
  c.sampling.state_high.assign(13, 1.0);
  c.sampling.action_low.clear();
  c.sampling.action_high.clear();
  try {
    Trainer<double> t(c, Backend::cpu, 1);
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("nx = 13, ndx = 12"), std::string::npos) << e.what();
  }
}

class EnvModelCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("phydream_env_model_ckpt_" + std::to_string(std::random_device{}()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(EnvModelCheckpoint, RoundTripKeepsTheModelAndEvaluatesTheSame) {
  // a private copy of the model that the test then deletes
  fs::copy_file(kIdp, dir_ / "idp.xml");
  json j = idp_config("idp.xml");
  j["disable"] = {"limit"};
  const TrainConfig c = training::parse_train_config(j, "cfg", dir_.string());
  Trainer<double> t(c, Backend::cpu, 1);
  t.initialise();
  t.run(20, [](const training::StepLog&) {});
  const ModelState st = t.state();
  const training::EvalResult want = training::evaluate(st, 1);

  Trainer<double> straight(c, Backend::cpu, 1);  // built while the original exists
  straight.restore(st);

  const std::string ck = (dir_ / "ck").string();
  training::save_checkpoint(ck, st, "f64");
  EXPECT_EQ(read_text(ck + "/env_model.xml"), read_text(kIdp));
  fs::remove(dir_ / "idp.xml");

  const ModelState back = training::load_checkpoint(ck);
  EXPECT_EQ(back.config.env_model, (fs::path(ck) / "env_model.xml").lexically_normal().string());
  EXPECT_EQ(back.config.env_model_name, "inverted_double_pendulum");
  EXPECT_EQ(back.config.disable, (std::vector<std::string>{"limit"}));
  EXPECT_EQ(back.config.sampling.state_low, st.config.sampling.state_low);
  EXPECT_EQ(back.theta, st.theta);
  EXPECT_EQ(back.step, 20);
  EXPECT_EQ(training::to_json(training::evaluate(back, 1)), training::to_json(want));

  // resuming from the loaded state continues the same run
  Trainer<double> resumed(back.config, Backend::cpu, 1);
  resumed.restore(back);
  straight.run(5, [](const training::StepLog&) {});
  resumed.run(5, [](const training::StepLog&) {});
  EXPECT_EQ(resumed.state().theta, straight.state().theta);
}

}  // namespace
}  // namespace phydream::testing

namespace phydream::testing {
namespace {

// the half-cheetah (contact) written to dir with `option` attributes added
std::string cheetah_copy(const fs::path& dir, const std::string& name, const std::string& extra) {
  std::string xml = read_text(kAssets + "/half_cheetah.xml");
  const std::string tag = "<option ";
  const auto at = xml.find(tag);
  if (at == std::string::npos) throw std::runtime_error("half_cheetah.xml has no <option>");
  xml.insert(at + tag.size(), extra + " ");
  const fs::path path = dir / name;
  std::ofstream(path) << xml;
  return path.string();
}

json cheetah_config(const std::string& model) {
  return json{{"env_model", model},
              {"model", {{"hidden", {16}}, {"activation", "tanh"}}},
              {"loss", {{"lambda_mse", 1.0}, {"lambda_jal", 1.0}}},
              {"train", {{"steps", 4}, {"batch", 64}, {"seed", 5}, {"log_every", 2},
                         {"stats_samples", 256}}}};
}

class EnvModelSolver : public EnvModelCheckpoint {};

TEST_F(EnvModelSolver, CountsSamplesWhoseSolveStoppedAtTheIterationCap) {
  auto capped_after_training = [&](const std::string& model) {
    Trainer<double> t(training::parse_train_config(cheetah_config(model), "cfg"), Backend::cpu, 1);
    t.initialise();
    std::vector<training::StepLog> logs;
    t.run(4, [&](const training::StepLog& l) { logs.push_back(l); });
    EXPECT_EQ(logs.size(), 2u);
    EXPECT_EQ(logs.back().samples_drawn, 256 + 4 * 64);  // the statistics sample and 4 batches
    const std::array<std::int64_t, 3> c = t.solver_counts();
    EXPECT_EQ(c[0] + c[1] + c[2], logs.back().samples_drawn);
    EXPECT_EQ(c[1], logs.back().capped_solves);
    EXPECT_EQ(c[2], 0);
    return logs.back().capped_solves;
  };
  const std::int64_t one = capped_after_training(cheetah_copy(dir_, "one.xml", "iterations=\"1\""));
  const std::int64_t usual = capped_after_training(kAssets + "/half_cheetah.xml");
  std::printf("capped solves: %lld with 1 iteration, %lld with the model's 100\n",
              static_cast<long long>(one), static_cast<long long>(usual));
  EXPECT_GT(one, 0);  // contact states are sampled, and one Newton iteration rarely converges
  EXPECT_LT(usual, one);
}

// the half-cheetah's random-action rollouts leave its sampling box at once (joint velocities
// sampled in +-1 reach +-15): the states picked along them must be those states, not the
// rollouts' starts (a divergence bound of one box width once replaced 95 % of them)
TEST_F(EnvModelSolver, RolloutSamplingKeepsTheCheetahsTrajectoryStates) {
  json j = cheetah_config(kAssets + "/half_cheetah.xml");
  j["sampling"] = {{"mode", "rollout"}, {"horizon", 20}};
  const TrainConfig c = training::parse_train_config(j, "cfg");
  Simulator<double> sim(c.simulator_options(Backend::cpu, 0));
  training::CpuTrainOps<double> ops;
  training::BatchSampler<double> sampler(c.sampling, Backend::cpu, sim, ops);
  const int n = 512, nx = static_cast<int>(c.sampling.state_low.size());
  sampler.draw(n, 1, 0, false);
  int beyond = 0;  // states more than one box width outside the box
  for (int b = 0; b < n; ++b) {
    bool out = false;
    for (int i = 0; i < nx; ++i) {
      const double v = sampler.x()[b * nx + i], lo = c.sampling.state_low[i], hi = c.sampling.state_high[i];
      ASSERT_TRUE(std::isfinite(v));
      out = out || v < lo - (hi - lo) || v > hi + (hi - lo);
    }
    beyond += out;
  }
  std::printf("rollout sampling: %d of %d states more than one box width outside the box\n", beyond, n);
  EXPECT_GT(beyond, n / 2);
}

TEST_F(EnvModelSolver, ANonFiniteSolveStopsTheRunAndSaysWhy) {
  const std::string model = kAssets + "/half_cheetah.xml";
  Trainer<double> sane(training::parse_train_config(cheetah_config(model), "cfg"), Backend::cpu, 1);
  sane.initialise();
  // the same model restored, then fed velocities whose bias forces overflow: in contact, the
  // solve's acceleration is not finite
  json j = cheetah_config(model);
  const TrainConfig base = training::parse_train_config(j, "cfg");
  std::vector<double> lo = base.sampling.state_low, hi = base.sampling.state_high;
  for (std::size_t i = lo.size() / 2; i < lo.size(); ++i) {
    lo[i] = -1e200;
    hi[i] = 1e200;
  }
  j["sampling"] = {{"state_low", lo}, {"state_high", hi}};
  Trainer<double> t(training::parse_train_config(j, "cfg"), Backend::cpu, 1);
  t.restore(sane.state());
  try {
    t.run(2, [](const training::StepLog&) {});
    ADD_FAILURE() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("constraint solver produced non-finite accelerations"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace phydream::testing
