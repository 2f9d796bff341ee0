// The JSON model format: JSON equivalents of the MJCF assets give the same Model field by field
// (the cart-pole being the example in docs/model_json.md, read from the document itself), bad
// input fails with a message naming the file and JSON path, and load_model() picks the loader by
// extension.
#include "engine/model_json.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/errors.h"
#include "engine/mjcf.h"
#include "engine/model.h"
#include "tests/engine/model_compare.h"

namespace {

namespace fs = std::filesystem;
using phydream::InputError;
using phydream::load_model_json_string;
using phydream::Model;

std::string source_path(const std::string& rel) {
  return std::string(PHYDREAM_SOURCE_DIR) + "/" + rel;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

// the first ```json block of a Markdown file
std::string json_block(const std::string& markdown) {
  const std::string open = "```json\n";
  const std::size_t a = markdown.find(open);
  if (a == std::string::npos) return "";
  const std::size_t b = markdown.find("```", a + open.size());
  return markdown.substr(a + open.size(), b - a - open.size());
}

const char* kHalfCheetah = R"json({
  "name": "half_cheetah",
  "compiler": {"inertiafromgeom": true, "settotalmass": 14},
  "defaults": {
    "joint": {"armature": 0.1, "damping": 0.01, "limited": true, "solimplimit": [0, 0.8, 0.03],
              "solreflimit": [0.02, 1], "stiffness": 8},
    "geom": {"conaffinity": 0, "condim": 3, "contype": 1, "friction": [0.4, 0.1, 0.1],
             "solimp": [0.0, 0.8, 0.01], "solref": [0.02, 1]},
    "motor": {"ctrllimited": true, "ctrlrange": [-1, 1]}
  },
  "option": {"gravity": [0, 0, -9.81], "timestep": 0.01},
  "worldbody": {
    "geoms": [{"name": "floor", "type": "plane", "conaffinity": 1, "condim": 3, "size": [40, 40, 40]}],
    "bodies": [{
      "name": "torso", "pos": [0, 0, 0.7],
      "joints": [
        {"name": "rootx", "type": "slide", "axis": [1, 0, 0], "armature": 0, "damping": 0, "limited": false, "stiffness": 0},
        {"name": "rootz", "type": "slide", "axis": [0, 0, 1], "armature": 0, "damping": 0, "limited": false, "stiffness": 0},
        {"name": "rooty", "type": "hinge", "axis": [0, 1, 0], "armature": 0, "damping": 0, "limited": false, "stiffness": 0}
      ],
      "geoms": [
        {"name": "torso", "type": "capsule", "fromto": [-0.5, 0, 0, 0.5, 0, 0], "size": [0.046]},
        {"name": "head", "type": "capsule", "axisangle": [0, 1, 0, 0.87], "pos": [0.6, 0, 0.1], "size": [0.046, 0.15]}
      ],
      "bodies": [
        {"name": "bthigh", "pos": [-0.5, 0, 0],
         "joints": [{"name": "bthigh", "axis": [0, 1, 0], "damping": 6, "range": [-0.52, 1.05], "stiffness": 240}],
         "geoms": [{"name": "bthigh", "type": "capsule", "axisangle": [0, 1, 0, -3.8], "pos": [0.1, 0, -0.13], "size": [0.046, 0.145]}],
         "bodies": [
           {"name": "bshin", "pos": [0.16, 0, -0.25],
            "joints": [{"name": "bshin", "axis": [0, 1, 0], "damping": 4.5, "range": [-0.785, 0.785], "stiffness": 180}],
            "geoms": [{"name": "bshin", "type": "capsule", "axisangle": [0, 1, 0, -2.03], "pos": [-0.14, 0, -0.07], "size": [0.046, 0.15]}],
            "bodies": [
              {"name": "bfoot", "pos": [-0.28, 0, -0.14],
               "joints": [{"name": "bfoot", "axis": [0, 1, 0], "damping": 3, "range": [-0.4, 0.785], "stiffness": 120}],
               "geoms": [{"name": "bfoot", "type": "capsule", "axisangle": [0, 1, 0, -0.27], "pos": [0.03, 0, -0.097], "size": [0.046, 0.094]}]}
            ]}
         ]},
        {"name": "fthigh", "pos": [0.5, 0, 0],
         "joints": [{"name": "fthigh", "axis": [0, 1, 0], "damping": 4.5, "range": [-1, 0.7], "stiffness": 180}],
         "geoms": [{"name": "fthigh", "type": "capsule", "axisangle": [0, 1, 0, 0.52], "pos": [-0.07, 0, -0.12], "size": [0.046, 0.133]}],
         "bodies": [
           {"name": "fshin", "pos": [-0.14, 0, -0.24],
            "joints": [{"name": "fshin", "axis": [0, 1, 0], "damping": 3, "range": [-1.2, 0.87], "stiffness": 120}],
            "geoms": [{"name": "fshin", "type": "capsule", "axisangle": [0, 1, 0, -0.6], "pos": [0.065, 0, -0.09], "size": [0.046, 0.106]}],
            "bodies": [
              {"name": "ffoot", "pos": [0.13, 0, -0.18],
               "joints": [{"name": "ffoot", "axis": [0, 1, 0], "damping": 1.5, "range": [-0.5, 0.5], "stiffness": 60}],
               "geoms": [{"name": "ffoot", "type": "capsule", "axisangle": [0, 1, 0, -0.6], "pos": [0.045, 0, -0.07], "size": [0.046, 0.07]}]}
            ]}
         ]}
      ]
    }]
  },
  "actuators": [
    {"name": "bthigh", "joint": "bthigh", "gear": 120},
    {"name": "bshin", "joint": "bshin", "gear": 90},
    {"name": "bfoot", "joint": "bfoot", "gear": 60},
    {"name": "fthigh", "joint": "fthigh", "gear": 120},
    {"name": "fshin", "joint": "fshin", "gear": 60},
    {"type": "motor", "name": "ffoot", "joint": "ffoot", "gear": 30}
  ]
})json";

// dm_control's Finger with its default class and childclass; angles in radians (-110 and -90 deg)
const char* kFinger = R"json({
  "name": "finger",
  "option": {"timestep": 0.01, "cone": "elliptic", "iterations": 200, "flags": {"gravity": "disable"}},
  "defaults": {
    "geom": {"solimp": [0, 0.9, 0.01], "solref": [0.02, 1]},
    "joint": {"type": "hinge", "axis": [0, -1, 0]},
    "motor": {"ctrllimited": true, "ctrlrange": [-1, 1]},
    "classes": {
      "finger": {"joint": {"damping": 2.5, "limited": true},
                 "site": {"type": "ellipsoid", "size": [0.025, 0.03, 0.025]}}
    }
  },
  "worldbody": {
    "geoms": [{"name": "ground", "type": "plane", "size": [0.6, 0.2, 10]}],
    "sites": [{"name": "target", "type": "sphere", "size": [0.03], "pos": [0, 0, 0.4]}],
    "bodies": [
      {"name": "proximal", "pos": [-0.2, 0, 0.4], "childclass": "finger",
       "joints": [{"name": "proximal", "range": [-1.9198621771937625, 1.9198621771937625], "ref": -1.5707963267948966}],
       "geoms": [
         {"name": "proximal_decoration", "type": "cylinder", "fromto": [0, -0.033, 0, 0, 0.033, 0], "size": [0.034],
          "contype": 0, "conaffinity": 0},
         {"name": "proximal", "type": "capsule", "size": [0.03], "fromto": [0, 0, 0, 0, 0, -0.17]}
       ],
       "bodies": [
         {"name": "distal", "pos": [0, 0, -0.18], "childclass": "finger",
          "joints": [{"name": "distal", "range": [-1.9198621771937625, 1.9198621771937625]}],
          "geoms": [
            {"name": "distal", "type": "capsule", "size": [0.028], "fromto": [0, 0, 0, 0, 0, -0.16], "contype": 0, "conaffinity": 0},
            {"name": "fingertip", "type": "capsule", "size": [0.03], "fromto": [0, 0, -0.13, 0, 0, -0.161]}
          ],
          "sites": [{"name": "touchtop", "pos": [0.01, 0, -0.17]}, {"name": "touchbottom", "pos": [-0.01, 0, -0.17]}]}
       ]},
      {"name": "spinner", "pos": [0.2, 0, 0.4],
       "joints": [{"name": "hinge", "frictionloss": 0.1, "damping": 0.5}],
       "geoms": [
         {"name": "cap1", "type": "capsule", "size": [0.04, 0.09], "pos": [0.02, 0, 0]},
         {"name": "cap2", "type": "capsule", "size": [0.04, 0.09], "pos": [-0.02, 0, 0]},
         {"name": "spinner_decoration", "type": "cylinder", "fromto": [0, -0.045, 0, 0, 0.045, 0], "size": [0.02],
          "contype": 0, "conaffinity": 0}
       ],
       "sites": [{"name": "tip", "type": "sphere", "size": [0.02], "pos": [0, 0, 0.13]}]}
    ]
  },
  "actuators": [{"name": "proximal", "joint": "proximal", "gear": 30},
                {"name": "distal", "joint": "distal", "gear": 15}]
})json";

TEST(ModelJson, HalfCheetahEqualsTheMjcfAsset) {
  const Model json = load_model_json_string(kHalfCheetah, "half_cheetah.json");
  const Model xml = phydream::load_mjcf(source_path("assets/half_cheetah.xml"));
  EXPECT_EQ(json.source, "half_cheetah.json");
  phydream::test::expect_same_model(json, xml);
}

TEST(ModelJson, FingerWithClassesEqualsTheMjcfAsset) {
  const Model json = load_model_json_string(kFinger, "finger.json");
  const Model xml = phydream::load_mjcf(source_path("assets/finger.xml"));
  phydream::test::expect_same_model(json, xml);
}

TEST(ModelJson, TheDocumentedExampleEqualsTheCartpoleAsset) {
  const std::string block = json_block(read_text(source_path("docs/model_json.md")));
  ASSERT_FALSE(block.empty()) << "docs/model_json.md has no ```json block";
  const Model json = load_model_json_string(block, "docs/model_json.md");
  const Model xml = phydream::load_mjcf(source_path("assets/cartpole.xml"));
  phydream::test::expect_same_model(json, xml);
}

TEST(ModelJson, JointsOfEveryTypeKeyframesAndOptions) {
  const Model m = load_model_json_string(R"({
    "compiler": {"eulerseq": "XYZ", "autolimits": true},
    "option": {"integrator": "RK4", "flags": {"contact": "disable", "limit": "disable"}},
    "worldbody": {"bodies": [
      {"name": "a", "euler": [0, 0, 1.5707963267948966],
       "joints": [{"name": "s", "type": "slide", "range": [-1, 1]}, {"name": "b", "type": "ball"}],
       "geoms": [{"type": "box", "size": [0.1, 0.2, 0.3]}]},
      {"name": "f", "pos": [1, 2, 3], "joints": [{"type": "free"}],
       "inertial": {"pos": [0, 0, 0], "mass": 2, "diaginertia": [0.1, 0.1, 0.1]}}
    ]},
    "actuators": [{"joint": "s", "ctrlrange": [-2, 2]}],
    "keyframes": [{"name": "k", "qvel": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], "time": 3}]
  })");
  EXPECT_EQ(m.nq, 1 + 4 + 7);
  EXPECT_EQ(m.nv, 1 + 3 + 6);
  EXPECT_EQ(m.jnt_limited[0], 1);  // autolimits with a range
  EXPECT_EQ(m.actuator_ctrllimited[0], 1);
  EXPECT_EQ(m.opt_disableflags, phydream::kDisableContact | phydream::kDisableLimit);
  EXPECT_EQ(m.qpos0[5 + 2], 3.0);
  EXPECT_EQ(m.key_qpos, m.qpos0);
  EXPECT_EQ(m.key_qvel[9], 10.0);
  EXPECT_NEAR(m.body_quat[4 + 3], std::sqrt(0.5), 1e-15);
}

// ---------------------------------------------------------------------------------------------
// errors name the file and the JSON path

void expect_error(const std::string& text, const std::vector<std::string>& phrases) {
  try {
    load_model_json_string(text, "bad.json");
    ADD_FAILURE() << "accepted:\n" << text;
  } catch (const InputError& e) {
    const std::string msg = e.what();
    for (const std::string& p : phrases) {
      EXPECT_NE(msg.find(p), std::string::npos) << "message lacks '" << p << "': " << msg;
    }
  }
}

const std::string kBody =
    R"("worldbody": {"bodies": [{"joints": [{"name": "j"}], "geoms": [{"size": [0.1]}]}]})";

TEST(ModelJsonErrors, UnknownKeysNameTheirPath) {
  expect_error(R"({"wrldbody": {}})", {"bad.json: $: unknown key 'wrldbody'"});
  expect_error(R"({"worldbody": {"bodies": [{"joints": [{"rnage": [0, 1]}]}]}})",
               {"$.worldbody.bodies[0].joints[0]", "unknown key 'rnage'", "allowed:"});
  expect_error(R"({"worldbody": {"geoms": [{"size": [1], "rgba": [1, 0, 0, 1]}]}})",
               {"$.worldbody.geoms[0]", "'rgba'"});
  expect_error(R"({"defaults": {"joint": {"name": "x"}}, "worldbody": {}})",
               {"$.defaults.joint", "'name'"});
  expect_error(R"({"option": {"flags": {"warp": "disable"}}, "worldbody": {}})",
               {"$.option.flags", "'warp'"});
  expect_error(R"({"option": {"density": 1.2}, "worldbody": {}})", {"$.option", "'density'"});
  expect_error(R"({"worldbody": {}, "keyframes": [{"act": [1]}]})", {"$.keyframes[0]", "'act'"});
}

TEST(ModelJsonErrors, WrongTypesCountsAndKeywords) {
  expect_error(R"({"worldbody": {"bodies": [{"pos": "0 0 0"}]}})",
               {"$.worldbody.bodies[0].pos", "expected an array of numbers"});
  expect_error(R"({"worldbody": {"bodies": [{"pos": [1, 2]}]}})",
               {"$.worldbody.bodies[0].pos", "expected 3 numbers, got 2"});
  expect_error(R"({"worldbody": {"bodies": [{"pos": [1, "2", 3]}]}})",
               {"$.worldbody.bodies[0].pos[1]", "expected a number"});
  expect_error(R"({"worldbody": {"bodies": [{"joints": [{"type": "universal"}]}]}})",
               {"$.worldbody.bodies[0].joints[0].type", "'universal'", "hinge, slide, ball, free"});
  expect_error(R"({"worldbody": {"bodies": [{"joints": [{"limited": "yes"}]}]}})",
               {".joints[0].limited", "true, false or \"auto\""});
  expect_error(R"({"worldbody": {"geoms": [{"size": [1], "condim": 3.5}]}})",
               {".geoms[0].condim", "integer"});
  expect_error(R"({"option": {"integrator": "implicit"}, "worldbody": {}})",
               {"$.option.integrator", "Euler, RK4"});
  expect_error(R"({"worldbody": {"bodies": {"name": "a"}}})",
               {"$.worldbody.bodies", "expected an array"});
  expect_error(R"([1, 2])", {"$", "expected an object"});
  expect_error(R"({"worldbody": {}, "comment": 3})", {"$.comment", "string"});
}

TEST(ModelJsonErrors, StructureAndCompilation) {
  expect_error(R"({"name": "x"})", {"$", "worldbody"});
  expect_error(R"({"worldbody": {"bodies": [{"joints": [{"class": "nope"}]}]}})",
               {".joints[0]", "unknown default class 'nope'"});
  expect_error(
      R"({"defaults": {"classes": {"a": {}, "b": {"classes": {"a": {}}}}}, "worldbody": {}})",
      {"repeated default class 'a'"});
  expect_error("{" + kBody + R"(, "actuators": [{"joint": "k"}]})",
               {"$.actuators[0]", "unknown joint 'k'"});
  expect_error("{" + kBody + R"(, "actuators": [{"gear": 2}]})", {"$.actuators[0]", "joint"});
  expect_error(
      R"({"worldbody": {"bodies": [{"joints": [{"name": "j", "range": [-1, 1]}], "geoms": [{"size": [0.1]}]}]}})",
      {"$.worldbody.bodies[0].joints[0] (joint \"j\")", "range", "limited"});
  expect_error("{" + kBody + R"(, "keyframes": [{"qpos": [1, 2]}]})",
               {"$.keyframes[0]", "qpos has 2 numbers"});
  expect_error(R"({"worldbody": {"bodies": [{"name": "m", "joints": [{}]}]}})",
               {"(body \"m\")", "mass"});
  expect_error(
      R"({"worldbody": {"bodies": [{"joints": [{}], "inertial": {"pos": [0, 0, 0], "mass": 1}}]}})",
      {".inertial", "diaginertia"});
  expect_error(R"({"worldbody": {"bodies": [{"quat": [1, 0, 0, 0], "euler": [0, 0, 0]}]}})",
               {"$.worldbody.bodies[0]", "more than one orientation"});
  expect_error(
      R"({"worldbody": {"geoms": [{"type": "sphere", "size": [1], "fromto": [0, 0, 0, 1, 0, 0]}]}})",
      {"$.worldbody.geoms[0]", "fromto"});
  expect_error("{\"worldbody\": {}\n,}", {"bad.json", "malformed JSON"});
  // a number beyond double's range (nlohmann-json's out_of_range, not a parse_error; fuzzing)
  expect_error(R"({"option": {"timestep": 9999E94595000049}, "worldbody": {}})",
               {"bad.json", "malformed JSON", "number overflow"});
}

// ---------------------------------------------------------------------------------------------
// load_model: by extension

class TempDir {
 public:
  TempDir() : path_(fs::temp_directory_path() / ("phydream_load_" + std::to_string(::getpid()))) {
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string write(const std::string& name, const std::string& text) const {
    const fs::path p = path_ / name;
    std::ofstream(p) << text;
    return p.string();
  }

 private:
  fs::path path_;
};

TEST(LoadModel, PicksTheLoaderByExtension) {
  const TempDir dir;
  const std::string xml = read_text(source_path("assets/finger.xml"));
  const Model a = phydream::load_model(dir.write("finger.xml", xml));
  const Model b = phydream::load_model(dir.write("finger.JSON", kFinger));
  const Model c = phydream::load_model(dir.write("FINGER.XML", xml));
  phydream::test::expect_same_model(a, b);
  phydream::test::expect_same_model(a, c);
  EXPECT_EQ(b.source, dir.write("finger.JSON", kFinger));
  try {
    phydream::load_model(dir.write("finger.urdf", xml));
    ADD_FAILURE() << "accepted a .urdf file";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("finger.urdf: unknown model format"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find(".xml"), std::string::npos) << e.what();
  }
  try {
    phydream::load_model("/nonexistent/model.json");
    ADD_FAILURE() << "accepted a missing file";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model.json: cannot read"), std::string::npos)
        << e.what();
  }
}

}  // namespace
