#include "engine/model_json.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "engine/errors.h"
#include "engine/mjcf.h"

namespace phydream {

namespace {

using nlohmann::json;

// the prototypes of one default class (see engine/mjcf.cpp: the same rule, objects read over them)
struct DefaultClass {
  JointSpec joint;
  GeomSpec geom;
  SiteSpec site;
  ActuatorSpec motor;
};

const std::vector<DisableFlagName>& kDisableFlags = disable_flag_names();

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

class JsonParser {
 public:
  explicit JsonParser(std::string source) : source_(std::move(source)) {}

  ModelSpec parse(const json& root) {
    const std::string at = "$";
    object(root, at);
    keys(root, at,
         {"name", "compiler", "option", "defaults", "worldbody", "actuators", "keyframes"});
    spec_.source = source_;
    if (root.contains("name")) spec_.name = string(root["name"], at + ".name");
    if (root.contains("compiler")) compiler(root["compiler"], at + ".compiler");
    if (root.contains("option")) option(root["option"], at + ".option");
    classes_["main"] = DefaultClass{};
    if (root.contains("defaults")) defaults(root["defaults"], at + ".defaults", "main");
    if (!root.contains("worldbody")) fail(at, "a model needs a \"worldbody\"");
    worldbody(root["worldbody"], at + ".worldbody");
    if (root.contains("actuators")) {
      array(root["actuators"], at + ".actuators");
      for (std::size_t i = 0; i < root["actuators"].size(); ++i) {
        actuator(root["actuators"][i], at + ".actuators[" + std::to_string(i) + "]");
      }
    }
    if (root.contains("keyframes")) {
      array(root["keyframes"], at + ".keyframes");
      for (std::size_t i = 0; i < root["keyframes"].size(); ++i) {
        key(root["keyframes"][i], at + ".keyframes[" + std::to_string(i) + "]");
      }
    }
    return spec_;
  }

 private:
  std::string source_;
  ModelSpec spec_;
  std::map<std::string, DefaultClass> classes_;

  // -------------------------------------------------------------------------------------------
  // messages and value checks

  [[noreturn]] void fail(const std::string& at, const std::string& what) const {
    throw InputError(source_ + ": " + at + ": " + what);
  }

  // where an element is, with its name when it has one
  std::string where(const json& j, const std::string& at, const char* kind) const {
    std::string w = source_ + ": " + at + " (" + kind;
    if (j.contains("name") && j["name"].is_string())
      w += " \"" + j["name"].get<std::string>() + "\"";
    return w + ")";
  }

  void object(const json& j, const std::string& at) const {
    if (!j.is_object()) fail(at, "expected an object");
  }
  void array(const json& j, const std::string& at) const {
    if (!j.is_array()) fail(at, "expected an array");
  }
  // every key must be one of `allowed` (or "comment")
  void keys(const json& j, const std::string& at, const std::vector<std::string>& allowed) const {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "comment") {
        if (!it->is_string()) fail(at + ".comment", "a comment must be a string");
        continue;
      }
      if (std::find(allowed.begin(), allowed.end(), it.key()) == allowed.end()) {
        fail(at, "unknown key '" + it.key() + "' (allowed: " + join(allowed) + ", comment)");
      }
    }
  }

  double number(const json& j, const std::string& at) const {
    if (!j.is_number()) fail(at, "expected a number, got " + std::string(j.type_name()));
    const double x = j.get<double>();
    if (!std::isfinite(x)) fail(at, "expected a finite number");
    return x;
  }
  int integer(const json& j, const std::string& at) const {
    if (!j.is_number_integer()) fail(at, "expected an integer, got " + j.dump());
    const auto v = j.get<long long>();
    if (v < -2147483647LL || v > 2147483647LL) fail(at, "integer out of range");
    return static_cast<int>(v);
  }
  bool boolean(const json& j, const std::string& at) const {
    if (!j.is_boolean()) fail(at, "expected true or false");
    return j.get<bool>();
  }
  std::string string(const json& j, const std::string& at) const {
    if (!j.is_string()) fail(at, "expected a string");
    return j.get<std::string>();
  }
  std::vector<double> numbers(const json& j, const std::string& at, std::size_t min,
                              std::size_t max) const {
    if (!j.is_array()) fail(at, "expected an array of numbers");
    if (j.size() < min || j.size() > max) {
      fail(at, "expected " +
                   (min == max ? std::to_string(min)
                               : std::to_string(min) + " to " + std::to_string(max)) +
                   " numbers, got " + std::to_string(j.size()));
    }
    std::vector<double> v;
    for (std::size_t k = 0; k < j.size(); ++k)
      v.push_back(number(j[k], at + "[" + std::to_string(k) + "]"));
    return v;
  }
  template <std::size_t N>
  void read_array(const json& j, const char* key, const std::string& at, std::array<double, N>* out,
                  std::size_t min = N) const {
    if (!j.contains(key)) return;
    const std::vector<double> v = numbers(j[key], at + "." + key, min, N);
    for (std::size_t k = 0; k < v.size(); ++k) (*out)[k] = v[k];
  }
  void read_number(const json& j, const char* key, const std::string& at, double* out) const {
    if (j.contains(key)) *out = number(j[key], at + "." + key);
  }
  void read_int(const json& j, const char* key, const std::string& at, int* out) const {
    if (j.contains(key)) *out = integer(j[key], at + "." + key);
  }
  int choice(const json& j, const std::string& at, const std::vector<std::string>& choices) const {
    const std::string v = string(j, at);
    for (std::size_t k = 0; k < choices.size(); ++k) {
      if (v == choices[k]) return static_cast<int>(k);
    }
    fail(at, "'" + v + "' is not one of " + join(choices));
  }
  // true, false or "auto"
  Tristate tristate(const json& j, const std::string& at) const {
    if (j.is_boolean()) return j.get<bool>() ? Tristate::yes : Tristate::no;
    if (j.is_string() && j.get<std::string>() == "auto") return Tristate::automatic;
    fail(at, "expected true, false or \"auto\"");
  }

  void read_orientation(const json& j, const std::string& at, OrientationSpec* o) const {
    using K = OrientationSpec::Kind;
    const std::vector<std::tuple<const char*, K, std::size_t>> kinds = {
        {"quat", K::quat, 4},
        {"axisangle", K::axisangle, 4},
        {"euler", K::euler, 3},
        {"xyaxes", K::xyaxes, 6},
        {"zaxis", K::zaxis, 3}};
    const char* found = nullptr;
    for (const auto& [name, kind, n] : kinds) {
      if (!j.contains(name)) continue;
      if (found) {
        fail(at, std::string("more than one orientation: '") + found + "' and '" + name + "'");
      }
      found = name;
      const std::vector<double> v = numbers(j[name], at + "." + name, n, n);
      OrientationSpec out;
      out.kind = kind;
      for (std::size_t k = 0; k < n; ++k) out.v[k] = v[k];
      *o = out;
    }
  }

  GeomType geom_type(const json& j, const std::string& at) const {
    const GeomType types[] = {GeomType::plane,     GeomType::sphere,   GeomType::capsule,
                              GeomType::ellipsoid, GeomType::cylinder, GeomType::box};
    return types[choice(j, at, {"plane", "sphere", "capsule", "ellipsoid", "cylinder", "box"})];
  }

  const DefaultClass& class_of(const json& j, const std::string& at,
                               const std::string& childclass) const {
    std::string name = childclass;
    if (j.contains("class")) name = string(j["class"], at + ".class");
    const auto it = classes_.find(name);
    if (it == classes_.end()) fail(at, "unknown default class '" + name + "'");
    return it->second;
  }

  // -------------------------------------------------------------------------------------------
  // element readers over prototypes (prototype=true: inside "defaults", no name or class)

  void read_joint(const json& j, const std::string& at, JointSpec* s, bool prototype) const {
    object(j, at);
    std::vector<std::string> allowed = {"type",        "pos",        "axis",         "range",
                                        "limited",     "ref",        "springref",    "stiffness",
                                        "damping",     "armature",   "frictionloss", "margin",
                                        "solreflimit", "solimplimit"};
    if (!prototype) allowed.insert(allowed.end(), {"name", "class"});
    keys(j, at, allowed);
    if (j.contains("name")) s->name = string(j["name"], at + ".name");
    if (j.contains("type")) {
      const JointType types[] = {JointType::hinge, JointType::slide, JointType::ball,
                                 JointType::free};
      s->type = types[choice(j["type"], at + ".type", {"hinge", "slide", "ball", "free"})];
    }
    read_array(j, "pos", at, &s->pos);
    read_array(j, "axis", at, &s->axis);
    if (j.contains("range")) {
      read_array(j, "range", at, &s->range);
      s->range_given = true;
    }
    if (j.contains("limited")) s->limited = tristate(j["limited"], at + ".limited");
    read_number(j, "ref", at, &s->ref);
    read_number(j, "springref", at, &s->springref);
    read_number(j, "stiffness", at, &s->stiffness);
    read_number(j, "damping", at, &s->damping);
    read_number(j, "armature", at, &s->armature);
    read_number(j, "frictionloss", at, &s->frictionloss);
    read_number(j, "margin", at, &s->margin);
    read_array(j, "solreflimit", at, &s->solref, 1);
    read_array(j, "solimplimit", at, &s->solimp, 1);
  }

  void read_geom(const json& j, const std::string& at, GeomSpec* g, bool prototype) const {
    object(j, at);
    std::vector<std::string> allowed = {"type",    "size",     "pos",    "quat",    "axisangle",
                                        "euler",   "xyaxes",   "zaxis",  "fromto",  "mass",
                                        "density", "friction", "condim", "contype", "conaffinity",
                                        "solref",  "solimp",   "margin", "group"};
    if (!prototype) allowed.insert(allowed.end(), {"name", "class"});
    keys(j, at, allowed);
    if (j.contains("name")) g->name = string(j["name"], at + ".name");
    if (j.contains("type")) g->type = geom_type(j["type"], at + ".type");
    read_array(j, "size", at, &g->size, 1);
    read_array(j, "pos", at, &g->pos);
    OrientationSpec o;
    read_orientation(j, at, &o);
    if (o.kind != OrientationSpec::Kind::none) g->orientation = o;
    if (j.contains("fromto")) {
      read_array(j, "fromto", at, &g->fromto);
      g->has_fromto = true;
      if (!prototype && j.contains("pos"))
        fail(at, "fromto sets the position; give either fromto or pos");
    }
    if (j.contains("mass")) g->mass = number(j["mass"], at + ".mass");
    read_number(j, "density", at, &g->density);
    read_array(j, "friction", at, &g->friction, 1);
    read_int(j, "condim", at, &g->condim);
    read_int(j, "contype", at, &g->contype);
    read_int(j, "conaffinity", at, &g->conaffinity);
    read_int(j, "group", at, &g->group);
    read_array(j, "solref", at, &g->solref, 1);
    read_array(j, "solimp", at, &g->solimp, 1);
    read_number(j, "margin", at, &g->margin);
  }

  void read_site(const json& j, const std::string& at, SiteSpec* s, bool prototype) const {
    object(j, at);
    std::vector<std::string> allowed = {"type",  "size",   "pos",   "quat",  "axisangle",
                                        "euler", "xyaxes", "zaxis", "fromto"};
    if (!prototype) allowed.insert(allowed.end(), {"name", "class"});
    keys(j, at, allowed);
    if (j.contains("name")) s->name = string(j["name"], at + ".name");
    if (j.contains("type")) {
      s->type = geom_type(j["type"], at + ".type");
      if (s->type == GeomType::plane) fail(at + ".type", "a site cannot be a plane");
    }
    read_array(j, "size", at, &s->size, 1);
    read_array(j, "pos", at, &s->pos);
    OrientationSpec o;
    read_orientation(j, at, &o);
    if (o.kind != OrientationSpec::Kind::none) s->orientation = o;
    if (j.contains("fromto")) {
      read_array(j, "fromto", at, &s->fromto);
      s->has_fromto = true;
      if (!prototype && j.contains("pos"))
        fail(at, "fromto sets the position; give either fromto or pos");
    }
  }

  void read_motor(const json& j, const std::string& at, ActuatorSpec* a, bool prototype) const {
    object(j, at);
    std::vector<std::string> allowed = {"gear", "ctrlrange", "ctrllimited"};
    if (!prototype) allowed.insert(allowed.end(), {"type", "name", "class", "joint"});
    keys(j, at, allowed);
    if (j.contains("type")) choice(j["type"], at + ".type", {"motor"});
    if (j.contains("name")) a->name = string(j["name"], at + ".name");
    if (j.contains("joint")) a->joint = string(j["joint"], at + ".joint");
    read_number(j, "gear", at, &a->gear);
    if (j.contains("ctrlrange")) {
      read_array(j, "ctrlrange", at, &a->ctrlrange);
      a->ctrlrange_given = true;
    }
    if (j.contains("ctrllimited")) a->ctrllimited = tristate(j["ctrllimited"], at + ".ctrllimited");
  }

  // -------------------------------------------------------------------------------------------
  // sections

  void compiler(const json& j, const std::string& at) {
    object(j, at);
    keys(j, at,
         {"inertiafromgeom", "settotalmass", "autolimits", "boundmass", "boundinertia", "eulerseq",
          "inertiagrouprange"});
    CompilerSpec& c = spec_.compiler;
    if (j.contains("inertiafromgeom"))
      c.inertiafromgeom = tristate(j["inertiafromgeom"], at + ".inertiafromgeom");
    read_number(j, "settotalmass", at, &c.settotalmass);
    if (j.contains("autolimits")) c.autolimits = boolean(j["autolimits"], at + ".autolimits");
    read_number(j, "boundmass", at, &c.boundmass);
    read_number(j, "boundinertia", at, &c.boundinertia);
    if (j.contains("eulerseq")) {
      const std::string seq = string(j["eulerseq"], at + ".eulerseq");
      if (seq.size() != 3 || seq.find_first_not_of("xyzXYZ") != std::string::npos) {
        fail(at + ".eulerseq", "expected 3 letters from x, y, z, X, Y, Z");
      }
      c.eulerseq = seq;
    }
    if (j.contains("inertiagrouprange")) {
      const json& r = j["inertiagrouprange"];
      if (!r.is_array() || r.size() != 2) fail(at + ".inertiagrouprange", "expected 2 integers");
      for (int k = 0; k < 2; ++k) {
        c.inertiagrouprange[k] =
            integer(r[k], at + ".inertiagrouprange[" + std::to_string(k) + "]");
      }
    }
  }

  void option(const json& j, const std::string& at) {
    object(j, at);
    keys(j, at, {"timestep", "gravity", "integrator", "cone", "iterations", "tolerance", "impratio", "flags"});
    OptionSpec& o = spec_.option;
    read_number(j, "timestep", at, &o.timestep);
    read_array(j, "gravity", at, &o.gravity);
    if (j.contains("integrator")) {
      o.integrator = choice(j["integrator"], at + ".integrator", {"Euler", "RK4"}) == 0
                         ? ModelIntegrator::euler
                         : ModelIntegrator::rk4;
    }
    if (j.contains("cone")) o.cone = choice(j["cone"], at + ".cone", {"pyramidal", "elliptic"});
    read_int(j, "iterations", at, &o.iterations);
    read_number(j, "tolerance", at, &o.tolerance);
    read_number(j, "impratio", at, &o.impratio);
    if (j.contains("flags")) {
      const json& f = j["flags"];
      const std::string fat = at + ".flags";
      object(f, fat);
      std::vector<std::string> names;
      for (const auto& [name, bit] : kDisableFlags) names.push_back(name);
      keys(f, fat, names);
      for (const auto& [name, bit] : kDisableFlags) {
        if (!f.contains(name)) continue;
        const bool enable = choice(f[name], fat + "." + name, {"disable", "enable"}) == 1;
        o.disableflags = enable ? (o.disableflags & ~bit) : (o.disableflags | bit);
      }
    }
  }

  // {"joint": {...}, "geom": {...}, "site": {...}, "motor": {...}, "classes": {"name": {...}}}
  void defaults(const json& j, const std::string& at, const std::string& name) {
    object(j, at);
    keys(j, at, {"joint", "geom", "site", "motor", "classes"});
    DefaultClass& cls = classes_[name];
    if (j.contains("joint")) read_joint(j["joint"], at + ".joint", &cls.joint, true);
    if (j.contains("geom")) read_geom(j["geom"], at + ".geom", &cls.geom, true);
    if (j.contains("site")) read_site(j["site"], at + ".site", &cls.site, true);
    if (j.contains("motor")) read_motor(j["motor"], at + ".motor", &cls.motor, true);
    if (j.contains("classes")) {
      const json& c = j["classes"];
      object(c, at + ".classes");
      for (auto it = c.begin(); it != c.end(); ++it) {
        if (classes_.count(it.key()))
          fail(at + ".classes", "repeated default class '" + it.key() + "'");
        classes_[it.key()] = classes_[name];  // a class starts from its parent's prototypes
        defaults(*it, at + ".classes." + it.key(), it.key());
      }
    }
  }

  void worldbody(const json& j, const std::string& at) {
    object(j, at);
    keys(j, at, {"geoms", "sites", "bodies"});
    spec_.world.where = source_ + ": " + at;
    children(j, at, &spec_.world, "main");
  }

  void body(const json& j, const std::string& at, BodySpec* b,
            const std::string& parent_childclass) {
    object(j, at);
    keys(j, at,
         {"name", "childclass", "pos", "quat", "axisangle", "euler", "xyaxes", "zaxis", "inertial",
          "joints", "geoms", "sites", "bodies"});
    b->where = where(j, at, "body");
    if (j.contains("name")) b->name = string(j["name"], at + ".name");
    read_array(j, "pos", at, &b->pos);
    read_orientation(j, at, &b->orientation);
    std::string childclass = parent_childclass;
    if (j.contains("childclass")) {
      childclass = string(j["childclass"], at + ".childclass");
      if (!classes_.count(childclass))
        fail(at + ".childclass", "unknown default class '" + childclass + "'");
    }
    if (j.contains("inertial")) inertial(j["inertial"], at + ".inertial", &b->inertial);
    if (j.contains("joints")) {
      array(j["joints"], at + ".joints");
      for (std::size_t i = 0; i < j["joints"].size(); ++i) {
        const std::string jat = at + ".joints[" + std::to_string(i) + "]";
        const json& e = j["joints"][i];
        object(e, jat);
        JointSpec s = class_of(e, jat, childclass).joint;
        read_joint(e, jat, &s, false);
        s.where = where(e, jat, "joint");
        b->joints.push_back(s);
      }
    }
    children(j, at, b, childclass);
  }

  void children(const json& j, const std::string& at, BodySpec* b, const std::string& childclass) {
    if (j.contains("geoms")) {
      array(j["geoms"], at + ".geoms");
      for (std::size_t i = 0; i < j["geoms"].size(); ++i) {
        const std::string gat = at + ".geoms[" + std::to_string(i) + "]";
        const json& e = j["geoms"][i];
        object(e, gat);
        GeomSpec g = class_of(e, gat, childclass).geom;
        read_geom(e, gat, &g, false);
        g.where = where(e, gat, "geom");
        b->geoms.push_back(g);
      }
    }
    if (j.contains("sites")) {
      array(j["sites"], at + ".sites");
      for (std::size_t i = 0; i < j["sites"].size(); ++i) {
        const std::string sat = at + ".sites[" + std::to_string(i) + "]";
        const json& e = j["sites"][i];
        object(e, sat);
        SiteSpec s = class_of(e, sat, childclass).site;
        read_site(e, sat, &s, false);
        s.where = where(e, sat, "site");
        b->sites.push_back(s);
      }
    }
    if (j.contains("bodies")) {
      array(j["bodies"], at + ".bodies");
      for (std::size_t i = 0; i < j["bodies"].size(); ++i) {
        b->children.emplace_back();
        body(j["bodies"][i], at + ".bodies[" + std::to_string(i) + "]", &b->children.back(),
             childclass);
      }
    }
  }

  void inertial(const json& j, const std::string& at, InertialSpec* in) {
    object(j, at);
    keys(j, at,
         {"pos", "quat", "axisangle", "euler", "xyaxes", "zaxis", "mass", "diaginertia",
          "fullinertia"});
    in->present = true;
    in->where = source_ + ": " + at + " (inertial)";
    if (!j.contains("pos")) fail(at, "an inertial needs \"pos\"");
    if (!j.contains("mass")) fail(at, "an inertial needs \"mass\"");
    read_array(j, "pos", at, &in->pos);
    in->mass = number(j["mass"], at + ".mass");
    read_orientation(j, at, &in->orientation);
    if (j.contains("diaginertia")) {
      read_array(j, "diaginertia", at, &in->diaginertia);
      in->has_diaginertia = true;
    }
    if (j.contains("fullinertia")) {
      read_array(j, "fullinertia", at, &in->fullinertia);
      in->has_fullinertia = true;
    }
    if (in->has_diaginertia == in->has_fullinertia) {
      fail(at, "an inertial needs exactly one of \"diaginertia\" and \"fullinertia\"");
    }
  }

  void actuator(const json& j, const std::string& at) {
    object(j, at);
    ActuatorSpec a = class_of(j, at, "main").motor;
    read_motor(j, at, &a, false);
    if (!j.contains("joint")) fail(at, "a motor needs a \"joint\"");
    a.where = where(j, at, "motor");
    spec_.actuators.push_back(a);
  }

  void key(const json& j, const std::string& at) {
    object(j, at);
    keys(j, at, {"name", "time", "qpos", "qvel", "ctrl"});
    KeySpec k;
    k.where = where(j, at, "key");
    if (j.contains("name")) k.name = string(j["name"], at + ".name");
    read_number(j, "time", at, &k.time);
    const std::size_t any = static_cast<std::size_t>(1) << 30;
    if (j.contains("qpos")) k.qpos = numbers(j["qpos"], at + ".qpos", 0, any);
    if (j.contains("qvel")) k.qvel = numbers(j["qvel"], at + ".qvel", 0, any);
    if (j.contains("ctrl")) k.ctrl = numbers(j["ctrl"], at + ".ctrl", 0, any);
    spec_.keys.push_back(k);
  }
};

json parse_text(const std::string& text, const std::string& source) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number overflow
    throw InputError(source + ": malformed JSON: " + e.what());
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot read the file");
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

}  // namespace

ModelSpec parse_model_json_string(const std::string& text, const std::string& source) {
  return JsonParser(source).parse(parse_text(text, source));
}

Model load_model_json_string(const std::string& text, const std::string& source) {
  return compile_model(parse_model_json_string(text, source));
}

Model load_model_json(const std::string& path) {
  return load_model_json_string(read_file(path), path);
}

Model load_model(const std::string& path) {
  auto ends_with = [&](const char* ext) {
    const std::size_t n = std::char_traits<char>::length(ext);
    if (path.size() < n) return false;
    std::string tail = path.substr(path.size() - n);
    std::transform(tail.begin(), tail.end(), tail.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    return tail == ext;
  };
  if (ends_with(".xml")) return load_mjcf(path);
  if (ends_with(".json")) return load_model_json(path);
  throw InputError(path +
                   ": unknown model format; expected an MJCF file (.xml) or a PhyDream "
                   "JSON model (.json)");
}

}  // namespace phydream
