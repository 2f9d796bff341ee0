// `phydream train`, `eval` and `experiment` on an articulated model file (the config's
// env_model): the real binary on the inverted double pendulum of assets/ copied into a fresh
// temporary directory, with the path resolved against the config's directory (the binary runs
// elsewhere); the checkpoint carries a copy of the model, so eval and resume rebuild the same
// simulator after the original is gone; bad model configs fail with status 2 and create nothing.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "apps/train_cli_fixture.h"

namespace {

const std::string kIdp = std::string(PHYDREAM_SOURCE_DIR) + "/assets/inverted_double_pendulum.xml";

// the inverted double pendulum (nx 6, nu 1) at a size that trains in a fraction of a second
json idp_config(const std::string& model = "models/idp.xml") {
  return json{{"env_model", model},
              {"model", {{"hidden", {16}}, {"activation", "tanh"}, {"residual", true}}},
              {"loss", {{"lambda_mse", 1}, {"lambda_jal", 0.5}}},
              {"optimizer", {{"lr", 3e-3}}},
              {"train", {{"steps", 30}, {"batch", 32}, {"log_every", 10}, {"stats_samples", 256}}},
              {"eval", {{"samples", 64}, {"rollout_envs", 16}, {"horizon", 5},
                        {"ood_factors", {1, 2}}, {"ood_horizon", 3}}}};
}

class EnvModelCli : public TrainingCliTest {
 protected:
  void SetUp() override {
    TrainingCliTest::SetUp();
    fs::create_directories(path("models"));
    fs::copy_file(kIdp, path("models/idp.xml"));
  }
};

TEST_F(EnvModelCli, TrainsOnTheModelAndTheCheckpointCarriesIt) {
  const CliRun r = train(idp_config(), "out");
  EXPECT_TRUE(contains(r.out, "trained inverted_double_pendulum to step 30")) << r.out;

  // the checkpoint: the model's sizes, a copy of the model file that the config names
  const std::string ck = path("out/checkpoint");
  const json model = read_json(ck + "/model.json");
  EXPECT_EQ(model["env"], "inverted_double_pendulum");
  EXPECT_EQ(model["env_model"], "env_model.xml");
  EXPECT_EQ(model["env_model_source"], path("models/idp.xml"));
  EXPECT_EQ(model["config"]["env_model"], "env_model.xml");
  EXPECT_FALSE(model["config"].contains("env"));
  EXPECT_EQ(model["config"]["disable"], json::array());
  EXPECT_EQ(model["architecture"]["nx"], 6);  // slider, hinge, hinge2 and their velocities
  EXPECT_EQ(model["architecture"]["nu"], 1);
  EXPECT_EQ(model["loss"]["jac_std"].size(), 6u * 7u);
  EXPECT_EQ(read_text(ck + "/env_model.xml"), read_text(kIdp));
  // the default box is the model's: the slider's joint range, hinges +-pi, velocities +-1
  EXPECT_EQ(model["config"]["sampling"]["state_low"],
            json({-1.0, -M_PI, -M_PI, -1.0, -1.0, -1.0}));
  EXPECT_EQ(model["config"]["sampling"]["action_high"], json({1.0}));

  EXPECT_EQ(csv_steps(path("out/metrics.csv")), (std::vector<long>{10, 20, 30}));

  const json s = read_json(path("out/summary.json"));
  EXPECT_EQ(s["env"], "inverted_double_pendulum");
  EXPECT_EQ(s["env_model"], path("models/idp.xml"));
  // the slider's limit rows converge: no sample from a capped solve, and no warning
  EXPECT_GT(s["samples_drawn"].get<long>(), 0);
  EXPECT_EQ(s["solver_capped_samples"], 0);
  EXPECT_FALSE(contains(r.err, "iteration cap")) << r.err;

  // eval rebuilds the simulator from the copy: the same numbers with the original gone
  fs::remove(path("models/idp.xml"));
  const CliRun e = cli("eval --checkpoint " + quote(ck) + " --out " + quote(path("ev")));
  ASSERT_EQ(e.status, 0) << e.err;
  EXPECT_EQ(read_json(path("ev/eval.json")), read_json(path("out/eval.json")));
  // and so does a checkpoint moved elsewhere
  fs::rename(ck, path("moved"));
  const CliRun m =
      cli("eval --checkpoint " + quote(path("moved")) + " --out " + quote(path("ev2")));
  ASSERT_EQ(m.status, 0) << m.err;
  EXPECT_EQ(read_json(path("ev2/eval.json")), read_json(path("out/eval.json")));
}

TEST_F(EnvModelCli, SamplesFromCappedSolvesAreCountedAndWarnedAbout) {
  // the half-cheetah (contact) with one solver iteration: most contact samples stop at the cap
  std::string xml = read_text(std::string(PHYDREAM_SOURCE_DIR) + "/assets/half_cheetah.xml");
  const auto at = xml.find("<option ");
  ASSERT_NE(at, std::string::npos);
  xml.insert(at + 8, "iterations=\"1\" ");
  const std::string model = write_text("cheetah1.xml", xml);
  const json cfg = {{"env_model", model},
                    {"model", {{"hidden", {8}}, {"activation", "tanh"}}},
                    {"loss", {{"lambda_mse", 1.0}, {"lambda_jal", 1.0}}},
                    {"train", {{"steps", 4}, {"batch", 32}, {"log_every", 2}, {"stats_samples", 128}}},
                    {"eval", {{"samples", 32}, {"rollout_envs", 4}, {"horizon", 3},
                              {"ood_factors", {1.0}}, {"ood_horizon", 2}}}};
  const CliRun r = train(cfg, "out");
  const json s = read_json(path("out/summary.json"));
  EXPECT_EQ(s["samples_drawn"], 128 + 4 * 32);
  const long capped = s["solver_capped_samples"].get<long>();
  EXPECT_GT(capped, 0);
  // said on stderr even under --quiet, which silences only the progress
  EXPECT_TRUE(contains(r.err, std::to_string(capped) + " of 256 samples")) << r.err;
  EXPECT_TRUE(contains(r.err, "iteration cap")) << r.err;
}

TEST_F(EnvModelCli, ResumeEqualsOneRun) {
  const json cfg = with(idp_config(), {{"loss", {{"lambda_jal", 1}, {"scaling", "std"}}},
                                       {"train", {{"steps", 40}, {"dtype", "f64"}}}});
  train(cfg, "a", "--steps 20");
  const CliRun r = train(cfg, "a", "--resume --steps 40");
  EXPECT_TRUE(contains(r.out, "to step 40")) << r.out;
  train(cfg, "b", "--steps 40");
  for (const char* f : {"W0.npy", "b0.npy", "W1.npy", "b1.npy", "adam_m.npy", "adam_v.npy"}) {
    const std::string got = read_text(path("a/checkpoint/") + f);
    EXPECT_FALSE(got.empty()) << f;
    EXPECT_EQ(got, read_text(path("b/checkpoint/") + f)) << f << " differs";
  }
  EXPECT_EQ(read_json(path("a/eval.json")), read_json(path("b/eval.json")));
  EXPECT_EQ(read_json(path("a/summary.json"))["steps_this_run"], 20);
}

TEST_F(EnvModelCli, ResumeRefusesADifferentModelOrFlags) {
  train(idp_config(), "run", "--steps 10");
  const auto before = snapshot(path("run"));
  auto refused = [&](const json& cfg, const std::string& phrase) {
    const std::string config = write_json("resume.json", cfg);
    const CliRun r = cli("train --config " + quote(config) + " --out " + quote(path("run")) +
                         " --backend cpu --quiet --resume");
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_TRUE(contains(r.err, phrase)) << "expected '" << phrase << "':\n" << r.err;
    EXPECT_EQ(snapshot(path("run")), before) << "the run directory changed";
  };
  // the same file with another damping
  std::string text = read_text(path("models/idp.xml"));
  const std::string from = "damping=\"0.05\"";
  ASSERT_NE(text.find(from), std::string::npos);
  text.replace(text.find(from), from.size(), "damping=\"0.1\"");
  write_text("models/idp_damped.xml", text);
  refused(idp_config("models/idp_damped.xml"), "differs from the checkpoint's copy");
  refused(with(idp_config(), {{"disable", {"limit"}}}), "disable flags differ");
  refused(with(idp_config(), {{"env", "double_pendulum"}}), "not both");
  json builtin = idp_config();
  builtin.erase("env_model");
  builtin["env"] = "cartpole";
  refused(builtin, "different environment");
}

TEST_F(EnvModelCli, BadModelConfigsExitTwoAndCreateNothing) {
  write_text("models/broken.xml", "<mujoco><worldbody><body></mujoco>");
  write_text("models/model.txt", "not a model");
  const std::string bounce = std::string(PHYDREAM_SOURCE_DIR) + "/assets/bounce.xml";
  struct Case {
    std::string name;
    json cfg;
    std::vector<std::string> phrases;
  };
  const std::vector<Case> cases = {
      {"missing file", idp_config("models/nope.xml"),
       {"bad.json", "env_model 'models/nope.xml': no such file", path("models/nope.xml"),
        "config file's directory"}},
      {"broken XML", idp_config("models/broken.xml"), {"bad.json", "broken.xml"}},
      {"unknown format", idp_config("models/model.txt"), {"model.txt", "unknown model format"}},
      {"empty name", idp_config(""), {"'env_model' must name a model file"}},
      {"not a string", with(idp_config(), {{"env_model", 3}}), {"'env_model' must be a string"}},
      {"free joint (nq != nv)", idp_config(bounce),
       {"bad.json", "env_model '" + bounce + "'", "model 'bounce'", "nq = 7", "nv = 6",
        "joint 'ball' is a free joint", "hinge and slide joints only"}},
      {"env and env_model", with(idp_config(), {{"env", "pendulum"}}),
       {"give 'env' or 'env_model', not both"}},
      {"state box too short",
       with(idp_config(), {{"sampling", {{"state_low", {-1, -1, -1}}, {"state_high", {1, 1, 1}}}}}),
       {"'sampling.state_low' and its high bound must have 6 entries each",
        "slider, hinge, hinge2, slider.vel, hinge.vel, hinge2.vel"}},
      {"action box too long",
       with(idp_config(), {{"sampling", {{"action_low", {-1, -1}}, {"action_high", {1, 1}}}}}),
       {"'sampling.action_low' and its high bound must have 1 entries each (slide)"}},
      {"unknown disable flag", with(idp_config(), {{"disable", {"contacts"}}}),
       {"disable: unknown disable flag 'contacts'", "contact"}},
      {"disable not an array", with(idp_config(), {{"disable", "contact"}}),
       {"'disable' must be an array of flag names"}},
      {"params on a model", with(idp_config(), {{"params", {{"m1", 2.0}}}}),
       {"'params' applies to the built-in environments"}},
      {"explicit Euler on a model", with(idp_config(), {{"integrator", "euler"}}),
       {"integrator 'euler' (explicit) is not available for articulated models"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string config = write_json("bad.json", c.cfg);
    const CliRun r = cli("train --config " + quote(config) + " --out " + quote(path("bad_out")) +
                         " --backend cpu --quiet");
    expect_input_error(r, c.phrases, path("bad_out"));
  }
  // disable applies to models only
  json builtin = tiny_config();
  builtin["disable"] = {"contact"};
  const CliRun r = cli("train --config " + quote(write_json("bad.json", builtin)) + " --out " +
                       quote(path("bad_out")) + " --backend cpu --quiet");
  expect_input_error(r, {"'disable' applies to articulated models (env_model)"}, path("bad_out"));
}

TEST_F(EnvModelCli, ExperimentResolvesTheModelAgainstItsFile) {
  // an experiment file one directory below the model, run from elsewhere
  fs::create_directories(path("experiments"));
  json base = idp_config("../models/idp.xml");
  base["train"]["steps"] = 10;
  const json e = {{"name", "idp_test"},
                  {"base", base},
                  {"variants", {{"mse", {{"loss", {{"lambda_jal", 0}}}}},
                                {"mse+jal", {{"loss", {{"lambda_jal", 1}}}}}}},
                  {"seeds", {0}}};
  const std::string file = write_json("experiments/idp.json", e);
  const CliRun r =
      cli("experiment --config " + quote(file) + " --out " + quote(path("exp")) +
          " --backend cpu --quiet");
  ASSERT_EQ(r.status, 0) << r.err;
  const json results = read_json(path("exp/results.json"));
  EXPECT_EQ(results["variants"].size(), 2u);
  EXPECT_EQ(read_json(path("exp/runs/mse+jal/seed_0/checkpoint/model.json"))["env"],
            "inverted_double_pendulum");

  // a missing model is reported before anything runs
  json bad = e;
  bad["base"]["env_model"] = "idp.xml";  // relative to experiments/, where it is not
  const CliRun b = cli("experiment --config " + quote(write_json("experiments/bad.json", bad)) +
                       " --out " + quote(path("exp_bad")) + " --backend cpu --quiet");
  expect_input_error(b, {"env_model 'idp.xml': no such file", path("experiments/idp.xml")},
                     path("exp_bad"));
}

}  // namespace
