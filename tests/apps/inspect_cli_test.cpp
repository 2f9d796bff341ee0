// `phydream inspect` end to end: the binary built beside this test prints a loaded model as text
// and as JSON (checked against the library's own load), and a model that does not load gives
// exit status 2, the error on stderr and nothing on stdout.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "engine/model.h"
#include "engine/model_json.h"
#include "apps/cli_runner.h"

namespace {

namespace fs = std::filesystem;

class InspectCli : public CliDirTest {
 protected:
  InspectCli() : CliDirTest("phydream_inspect") {}

  // runs `phydream ARGS` with stdout and stderr kept apart
  CliRun run(const std::string& args) const { return cli(args); }

  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path(name)) << text;
    return path(name);
  }

  static std::string asset(const std::string& name) {
    return std::string(PHYDREAM_SOURCE_DIR) + "/assets/" + name;
  }
};

TEST_F(InspectCli, PrintsTheHalfCheetah) {
  const CliRun r = run("inspect " + asset("half_cheetah.xml"));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;
  EXPECT_TRUE(contains(r.out, "model \"half_cheetah\"")) << r.out;
  EXPECT_TRUE(contains(r.out, "nq 9, nv 9, nu 6, nbody 8")) << r.out;
  EXPECT_TRUE(contains(r.out, "timestep 0.01")) << r.out;
  EXPECT_TRUE(contains(r.out, "bodies (8)")) << r.out;
  EXPECT_TRUE(contains(r.out, "joints (9)")) << r.out;
  EXPECT_TRUE(contains(r.out, "dofs (9)")) << r.out;
  EXPECT_TRUE(contains(r.out, "actuators (6)")) << r.out;
  EXPECT_TRUE(contains(r.out, "geoms (9)")) << r.out;
  for (const char* name : {"torso", "bthigh", "ffoot", "rootx", "rooty"}) {
    EXPECT_TRUE(contains(r.out, name)) << name << "\n" << r.out;
  }
  EXPECT_TRUE(contains(r.out, "motor on joint bthigh, gear 120, ctrl in -1 1")) << r.out;
}

TEST_F(InspectCli, JsonOutputIsTheLoadedModel) {
  const std::string path = asset("finger.xml");
  const CliRun r = run("inspect --json " + path);
  ASSERT_EQ(r.status, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  const phydream::Model m = phydream::load_model(path);
  EXPECT_EQ(j["name"], "finger");
  EXPECT_EQ(j["sizes"]["nq"], m.nq);
  EXPECT_EQ(j["sizes"]["nsite"], m.nsite);
  EXPECT_EQ(j["options"]["cone"], "elliptic");
  EXPECT_EQ(j["options"]["disabled"], nlohmann::json::array({"gravity"}));
  ASSERT_EQ(j["bodies"].size(), static_cast<std::size_t>(m.nbody));
  for (int b = 0; b < m.nbody; ++b) {
    EXPECT_EQ(j["bodies"][b]["name"], m.body_name[b]);
    EXPECT_EQ(j["bodies"][b]["parent"], m.body_parentid[b]);
    EXPECT_EQ(j["bodies"][b]["mass"].get<double>(), m.body_mass[b]);  // JSON keeps 17 digits
  }
  ASSERT_EQ(j["joints"].size(), static_cast<std::size_t>(m.njnt));
  EXPECT_EQ(j["joints"][0]["type"], "hinge");
  EXPECT_EQ(j["joints"][0]["range"][1].get<double>(), m.jnt_range[1]);
  EXPECT_EQ(j["qpos0"][0].get<double>(), m.qpos0[0]);
  EXPECT_EQ(j["dofs"][2]["frictionloss"].get<double>(), 0.1);
  EXPECT_EQ(j["actuators"][1]["gear"].get<double>(), 15.0);
  EXPECT_EQ(j["sites"][0]["name"], "target");
  EXPECT_EQ(j["geoms"][0]["type"], "plane");
}

TEST_F(InspectCli, JsonModelsToo) {
  const std::string path = write("pendulum.json", R"({
    "name": "pendulum",
    "worldbody": {"bodies": [{"name": "rod", "joints": [{"name": "pivot", "axis": [0, 1, 0]}],
      "geoms": [{"type": "capsule", "fromto": [0, 0, 0, 0, 0, -1], "size": [0.05]}]}]},
    "actuators": [{"joint": "pivot", "gear": 2}],
    "keyframes": [{"name": "up", "qpos": [3.14159]}]
  })");
  const CliRun r = run("inspect " + path);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "model \"pendulum\"")) << r.out;
  EXPECT_TRUE(contains(r.out, "pivot")) << r.out;
  EXPECT_TRUE(contains(r.out, "keys (1)")) << r.out;
  EXPECT_TRUE(contains(r.out, "up")) << r.out;
}

TEST_F(InspectCli, ErrorsExitTwoWithTheMessageOnly) {
  const std::string bad =
      write("bad.xml",
            "<mujoco>\n<worldbody>\n<body>\n<joint range=\"0 1\"/>\n"
            "<geom size=\"0.1\" gap=\"1\"/>\n</body>\n</worldbody>\n</mujoco>\n");
  for (const std::string& flags : {"", "--json "}) {
    const CliRun r = run("inspect " + flags + bad);
    EXPECT_EQ(r.status, 2);
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_TRUE(contains(r.err, "phydream: error: " + bad + ":5: <geom>: attribute 'gap'"))
        << r.err;
  }
  const std::string json =
      write("bad.json", R"({"worldbody": {"bodies": [{"joints": [{"rnage": 1}]}]}})");
  CliRun r = run("inspect " + json);
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_TRUE(contains(r.err, "$.worldbody.bodies[0].joints[0]: unknown key 'rnage'")) << r.err;

  r = run("inspect " + write("model.txt", "x"));
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(r.out.empty());
  EXPECT_TRUE(contains(r.err, "unknown model format")) << r.err;

  r = run("inspect " + path("missing.xml"));
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(r.out.empty());
  EXPECT_TRUE(contains(r.err, "cannot read")) << r.err;

  r = run("inspect");
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(r.out.empty());
  EXPECT_TRUE(contains(r.err, "MODEL")) << r.err;
}

}  // namespace
