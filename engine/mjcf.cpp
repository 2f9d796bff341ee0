#include "engine/mjcf.h"

#include <tinyxml2.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "engine/errors.h"

namespace phydream {

namespace {

using tinyxml2::XMLAttribute;
using tinyxml2::XMLDocument;
using tinyxml2::XMLElement;

constexpr double kPi = 3.14159265358979323846;
constexpr double kDegree = kPi / 180.0;

// names of the attributes of one element kind: those PhyDream reads, those it ignores as visual
struct AttrRules {
  std::set<std::string> supported;
  std::set<std::string> visual;
};

const AttrRules kJointRules{
    {"name", "class", "type", "pos", "axis", "range", "limited", "ref", "springref", "stiffness",
     "damping", "armature", "frictionloss", "margin", "solreflimit", "solimplimit"},
    {"group"}};
const AttrRules kGeomRules{
    {"name",   "class",   "type",        "size",   "pos",    "quat",    "axisangle",
     "euler",  "xyaxes",  "zaxis",       "fromto", "mass",   "density", "friction",
     "condim", "contype", "conaffinity", "solref", "solimp", "margin",  "group"},
    {"rgba", "material"}};
const AttrRules kSiteRules{{"name", "class", "type", "size", "pos", "quat", "axisangle", "euler",
                            "xyaxes", "zaxis", "fromto"},
                           {"rgba", "material", "group"}};
const AttrRules kMotorRules{{"name", "class", "joint", "gear", "ctrlrange", "ctrllimited"},
                            {"group"}};
const AttrRules kBodyRules{
    {"name", "childclass", "pos", "quat", "axisangle", "euler", "xyaxes", "zaxis"}, {}};
const AttrRules kInertialRules{
    {"pos", "quat", "axisangle", "euler", "xyaxes", "zaxis", "mass", "diaginertia", "fullinertia"},
    {}};
const AttrRules kFreejointRules{{"name"}, {"group"}};
const AttrRules kCompilerRules{
    {"angle", "coordinate", "inertiafromgeom", "settotalmass", "eulerseq", "autolimits",
     "boundmass", "boundinertia", "inertiagrouprange"},
    {}};
const AttrRules kOptionRules{
    {"timestep", "gravity", "integrator", "cone", "iterations", "tolerance", "impratio"}, {}};
// <size> only sizes MuJoCo's memory and user-data arrays
const AttrRules kSizeRules{
    {},
    {"njmax", "nconmax", "nstack", "nuserdata", "nkey", "nuser_body", "nuser_jnt", "nuser_geom",
     "nuser_site", "nuser_cam", "nuser_tendon", "nuser_actuator", "nuser_sensor"}};
const AttrRules kKeyRules{{"name", "time", "qpos", "qvel", "ctrl"}, {}};
const AttrRules kNoAttrs{{}, {}};

const std::vector<DisableFlagName>& kDisableFlags = disable_flag_names();
const std::set<std::string> kEnableFlags = {"override", "energy", "fwdinv", "sensornoise",
                                            "multiccd"};

std::string join(const std::set<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// the prototypes one default class holds, as MuJoCo keeps them: parsed objects, values in the
// file's units; an element copies its class's prototype and reads its own attributes over it
struct DefaultClass {
  JointSpec joint;
  GeomSpec geom;
  SiteSpec site;
  ActuatorSpec motor;
};

class MjcfParser {
 public:
  explicit MjcfParser(std::string source) : source_(std::move(source)) {}

  ModelSpec parse(const XMLDocument& doc) {
    const XMLElement* root = doc.RootElement();
    if (root == nullptr) throw InputError(source_ + ": no XML element found");
    if (std::strcmp(root->Name(), "mujoco") != 0) {
      fail(root, std::string("the root element must be <mujoco>, not <") + root->Name() + ">");
    }
    spec_.source = source_;
    check_attributes(root, AttrRules{{"model"}, {}});
    if (const char* name = root->Attribute("model")) spec_.name = name;

    // sections, in the order MuJoCo reads them: the compiler's settings first
    const std::set<std::string> sections = {"compiler",  "option",  "size",    "visual",
                                            "statistic", "asset",   "default", "worldbody",
                                            "actuator",  "keyframe"};
    for (const XMLElement* e = root->FirstChildElement(); e; e = e->NextSiblingElement()) {
      if (sections.count(e->Name()) == 0) {
        unsupported_element(e, "<mujoco>", sections);
      }
    }
    for_each_child(root, "compiler", [&](const XMLElement* e) { compiler(e); });
    for_each_child(root, "option", [&](const XMLElement* e) { option(e); });
    for_each_child(root, "size", [&](const XMLElement* e) {
      check_attributes(e, kSizeRules);
      no_children(e);
    });
    for_each_child(root, "asset", [&](const XMLElement* e) { asset(e); });
    classes_["main"] = DefaultClass{};
    int ndefault = 0;
    for_each_child(root, "default", [&](const XMLElement* e) {
      if (++ndefault > 1) fail(e, "only one top-level <default> is allowed; nest the others in it");
      default_class(e, nullptr);
    });
    for_each_child(root, "worldbody", [&](const XMLElement* e) { worldbody(e); });
    for_each_child(root, "actuator", [&](const XMLElement* e) { actuator(e); });
    for_each_child(root, "keyframe", [&](const XMLElement* e) { keyframe(e); });
    return spec_;
  }

 private:
  std::string source_;
  ModelSpec spec_;
  bool degrees_ = true;  // compiler angle
  std::map<std::string, DefaultClass> classes_;

  // -------------------------------------------------------------------------------------------
  // messages

  std::string where(const XMLElement* e) const {
    std::string w = source_ + ":" + std::to_string(e->GetLineNum()) + ": <" + e->Name();
    if (const char* name = e->Attribute("name")) w += std::string(" name=\"") + name + "\"";
    if (std::strcmp(e->Name(), "default") == 0) {
      if (const char* cls = e->Attribute("class")) w += std::string(" class=\"") + cls + "\"";
    }
    return w + ">";
  }
  [[noreturn]] void fail(const XMLElement* e, const std::string& what) const {
    throw InputError(where(e) + ": " + what);
  }
  [[noreturn]] void fail_attr(const XMLElement* e, const char* attr,
                              const std::string& what) const {
    const char* value = e->Attribute(attr);
    throw InputError(where(e) + ": attribute " + attr + "=\"" + (value ? value : "") +
                     "\": " + what);
  }
  [[noreturn]] void unsupported_element(const XMLElement* e, const std::string& parent,
                                        const std::set<std::string>& allowed) const {
    fail(e, std::string("element <") + e->Name() + "> in " + parent +
                " is not supported by PhyDream's MJCF subset (allowed here: " + join(allowed) +
                ")");
  }

  void check_attributes(const XMLElement* e, const AttrRules& rules) const {
    for (const XMLAttribute* a = e->FirstAttribute(); a; a = a->Next()) {
      if (rules.supported.count(a->Name()) || rules.visual.count(a->Name())) continue;
      std::set<std::string> all = rules.supported;
      all.insert(rules.visual.begin(), rules.visual.end());
      fail(e, std::string("attribute '") + a->Name() + "' is not supported by PhyDream's MJCF " +
                  "subset" +
                  (all.empty() ? std::string(" (this element takes none)")
                               : " (supported: " + join(all) + ")"));
    }
  }

  void no_children(const XMLElement* e) const {
    if (const XMLElement* c = e->FirstChildElement()) {
      fail(c, std::string("<") + e->Name() + "> takes no child elements");
    }
  }

  template <class F>
  void for_each_child(const XMLElement* e, const char* name, F f) {
    for (const XMLElement* c = e->FirstChildElement(name); c; c = c->NextSiblingElement(name)) f(c);
  }

  // -------------------------------------------------------------------------------------------
  // attribute values

  bool has(const XMLElement* e, const char* attr) const { return e->Attribute(attr) != nullptr; }

  // whitespace-separated finite numbers, between `min` and `max` of them
  std::vector<double> reals(const XMLElement* e, const char* attr, int min, int max) const {
    const char* text = e->Attribute(attr);
    std::vector<double> out;
    std::istringstream in(text ? text : "");
    std::string token;
    while (in >> token) {
      errno = 0;
      char* end = nullptr;
      const double x = std::strtod(token.c_str(), &end);
      if (end == token.c_str() || *end != '\0')
        fail_attr(e, attr, "'" + token + "' is not a number");
      if (!std::isfinite(x) || errno == ERANGE) {
        fail_attr(e, attr, "'" + token + "' is not a finite number");
      }
      out.push_back(x);
    }
    const int n = static_cast<int>(out.size());
    if (n < min || n > max) {
      const std::string expected =
          min == max ? std::to_string(min) + (min == 1 ? " number" : " numbers")
                     : std::to_string(min) + " to " + std::to_string(max) + " numbers";
      fail_attr(e, attr, "expected " + expected + ", got " + std::to_string(n));
    }
    return out;
  }
  double real(const XMLElement* e, const char* attr) const { return reals(e, attr, 1, 1)[0]; }
  template <std::size_t N>
  void read_array(const XMLElement* e, const char* attr, std::array<double, N>* out,
                  int min = N) const {
    if (!has(e, attr)) return;
    const std::vector<double> v = reals(e, attr, min, static_cast<int>(N));
    for (std::size_t k = 0; k < v.size(); ++k) (*out)[k] = v[k];
  }
  void read_real(const XMLElement* e, const char* attr, double* out) const {
    if (has(e, attr)) *out = real(e, attr);
  }
  int integer(const XMLElement* e, const char* attr) const {
    const char* text = e->Attribute(attr);
    std::string s = text ? text : "";
    const std::size_t b = s.find_first_not_of(" \t\n\r");
    const std::size_t t = s.find_last_not_of(" \t\n\r");
    s = b == std::string::npos ? "" : s.substr(b, t - b + 1);
    errno = 0;
    char* end = nullptr;
    const long v = std::strtol(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0' || errno == ERANGE || v < -2147483647L || v > 2147483647L) {
      fail_attr(e, attr, "expected an integer");
    }
    return static_cast<int>(v);
  }
  void read_int(const XMLElement* e, const char* attr, int* out) const {
    if (has(e, attr)) *out = integer(e, attr);
  }
  // one of `choices` (exact, case-sensitive as in MuJoCo); returns its index
  int keyword(const XMLElement* e, const char* attr,
              const std::vector<std::string>& choices) const {
    const std::string v = e->Attribute(attr);
    for (std::size_t k = 0; k < choices.size(); ++k) {
      if (v == choices[k]) return static_cast<int>(k);
    }
    std::string list;
    for (const std::string& c : choices) list += (list.empty() ? "" : ", ") + c;
    fail_attr(e, attr, "expected one of " + list);
  }
  bool boolean(const XMLElement* e, const char* attr) const {
    return keyword(e, attr, {"false", "true"}) == 1;
  }
  Tristate tristate(const XMLElement* e, const char* attr) const {
    switch (keyword(e, attr, {"false", "true", "auto"})) {
      case 0:
        return Tristate::no;
      case 1:
        return Tristate::yes;
      default:
        return Tristate::automatic;
    }
  }
  std::string text(const XMLElement* e, const char* attr) const {
    const char* v = e->Attribute(attr);
    return v ? v : "";
  }

  // the element's orientation, if it writes one (more than one is an error, as in MuJoCo)
  void read_orientation(const XMLElement* e, OrientationSpec* o) const {
    using K = OrientationSpec::Kind;
    const std::vector<std::pair<const char*, K>> kinds = {{"quat", K::quat},
                                                          {"axisangle", K::axisangle},
                                                          {"euler", K::euler},
                                                          {"xyaxes", K::xyaxes},
                                                          {"zaxis", K::zaxis}};
    const char* found = nullptr;
    for (const auto& [name, kind] : kinds) {
      if (!has(e, name)) continue;
      if (found) {
        fail(e, std::string("more than one orientation: '") + found + "' and '" + name +
                    "'; give one of quat, axisangle, euler, xyaxes, zaxis");
      }
      found = name;
      const int n = kind == K::quat || kind == K::axisangle ? 4 : kind == K::xyaxes ? 6 : 3;
      const std::vector<double> v = reals(e, name, n, n);
      OrientationSpec out;
      out.kind = kind;
      for (int k = 0; k < n; ++k) out.v[k] = v[k];
      *o = out;
    }
  }

  // angles in the file's unit -> radians. MuJoCo 2.2.2 converts the two kinds of angle with
  // different roundings: joint angles as x * (pi / 180), frame angles (axisangle, euler) as
  // x / 180 * pi; both are kept so that the compiled numbers match it bit for bit.
  double angle(double x) const { return degrees_ ? x * kDegree : x; }
  double frame_angle(double x) const { return degrees_ ? x / 180 * kPi : x; }
  OrientationSpec to_radians(OrientationSpec o) const {
    if (o.kind == OrientationSpec::Kind::axisangle) o.v[3] = frame_angle(o.v[3]);
    if (o.kind == OrientationSpec::Kind::euler) {
      for (int k = 0; k < 3; ++k) o.v[k] = frame_angle(o.v[k]);
    }
    return o;
  }

  GeomType geom_type(const XMLElement* e) const {
    switch (keyword(e, "type", {"plane", "sphere", "capsule", "ellipsoid", "cylinder", "box"})) {
      case 0:
        return GeomType::plane;
      case 1:
        return GeomType::sphere;
      case 2:
        return GeomType::capsule;
      case 3:
        return GeomType::ellipsoid;
      case 4:
        return GeomType::cylinder;
      default:
        return GeomType::box;
    }
  }

  // -------------------------------------------------------------------------------------------
  // element readers: each reads an element's attributes over a prototype

  void read_joint(const XMLElement* e, JointSpec* j) const {
    check_attributes(e, kJointRules);
    if (has(e, "name")) j->name = text(e, "name");
    if (has(e, "type")) {
      const JointType types[] = {JointType::hinge, JointType::slide, JointType::ball,
                                 JointType::free};
      j->type = types[keyword(e, "type", {"hinge", "slide", "ball", "free"})];
    }
    read_array(e, "pos", &j->pos);
    read_array(e, "axis", &j->axis);
    if (has(e, "range")) {
      read_array(e, "range", &j->range);
      j->range_given = true;
    }
    if (has(e, "limited")) j->limited = tristate(e, "limited");
    read_real(e, "ref", &j->ref);
    read_real(e, "springref", &j->springref);
    read_real(e, "stiffness", &j->stiffness);
    read_real(e, "damping", &j->damping);
    read_real(e, "armature", &j->armature);
    read_real(e, "frictionloss", &j->frictionloss);
    read_real(e, "margin", &j->margin);
    read_array(e, "solreflimit", &j->solref, 1);
    read_array(e, "solimplimit", &j->solimp, 1);
  }

  void read_geom(const XMLElement* e, GeomSpec* g) const {
    check_attributes(e, kGeomRules);
    if (has(e, "name")) g->name = text(e, "name");
    if (has(e, "type")) g->type = geom_type(e);
    read_array(e, "size", &g->size, 1);
    read_array(e, "pos", &g->pos);
    read_orientation(e, &g->orientation);
    if (has(e, "fromto")) {
      read_array(e, "fromto", &g->fromto);
      g->has_fromto = true;
    }
    if (has(e, "mass")) g->mass = real(e, "mass");
    read_real(e, "density", &g->density);
    read_array(e, "friction", &g->friction, 1);
    read_int(e, "condim", &g->condim);
    read_int(e, "contype", &g->contype);
    read_int(e, "conaffinity", &g->conaffinity);
    read_int(e, "group", &g->group);
    read_array(e, "solref", &g->solref, 1);
    read_array(e, "solimp", &g->solimp, 1);
    read_real(e, "margin", &g->margin);
  }

  void read_site(const XMLElement* e, SiteSpec* s) const {
    check_attributes(e, kSiteRules);
    if (has(e, "name")) s->name = text(e, "name");
    if (has(e, "type")) {
      s->type = geom_type(e);
      if (s->type == GeomType::plane) fail_attr(e, "type", "a site cannot be a plane");
    }
    read_array(e, "size", &s->size, 1);
    read_array(e, "pos", &s->pos);
    read_orientation(e, &s->orientation);
    if (has(e, "fromto")) {
      read_array(e, "fromto", &s->fromto);
      s->has_fromto = true;
    }
  }

  void read_motor(const XMLElement* e, ActuatorSpec* a) const {
    check_attributes(e, kMotorRules);
    if (has(e, "name")) a->name = text(e, "name");
    if (has(e, "joint")) a->joint = text(e, "joint");
    if (has(e, "gear")) {
      // MuJoCo's gear has 6 entries; a joint transmission uses the first only
      a->gear = reals(e, "gear", 1, 6)[0];
    }
    if (has(e, "ctrlrange")) {
      read_array(e, "ctrlrange", &a->ctrlrange);
      a->ctrlrange_given = true;
    }
    if (has(e, "ctrllimited")) a->ctrllimited = tristate(e, "ctrllimited");
  }

  // -------------------------------------------------------------------------------------------
  // sections

  void compiler(const XMLElement* e) {
    check_attributes(e, kCompilerRules);
    no_children(e);
    CompilerSpec& c = spec_.compiler;
    if (has(e, "angle")) degrees_ = keyword(e, "angle", {"radian", "degree"}) == 1;
    if (has(e, "coordinate") && keyword(e, "coordinate", {"local", "global"}) == 1) {
      fail_attr(e, "coordinate", "global coordinates are not supported; use local");
    }
    if (has(e, "inertiafromgeom")) c.inertiafromgeom = tristate(e, "inertiafromgeom");
    read_real(e, "settotalmass", &c.settotalmass);
    if (has(e, "eulerseq")) {
      const std::string seq = text(e, "eulerseq");
      if (seq.size() != 3 || seq.find_first_not_of("xyzXYZ") != std::string::npos) {
        fail_attr(e, "eulerseq", "expected 3 letters from x, y, z, X, Y, Z");
      }
      c.eulerseq = seq;
    }
    if (has(e, "autolimits")) c.autolimits = boolean(e, "autolimits");
    read_real(e, "boundmass", &c.boundmass);
    read_real(e, "boundinertia", &c.boundinertia);
    if (has(e, "inertiagrouprange")) {
      const std::vector<double> v = reals(e, "inertiagrouprange", 2, 2);
      for (int k = 0; k < 2; ++k) {
        if (v[k] != std::floor(v[k])) fail_attr(e, "inertiagrouprange", "expected 2 integers");
        c.inertiagrouprange[k] = static_cast<int>(v[k]);
      }
    }
  }

  void option(const XMLElement* e) {
    check_attributes(e, kOptionRules);
    OptionSpec& o = spec_.option;
    read_real(e, "timestep", &o.timestep);
    read_array(e, "gravity", &o.gravity);
    if (has(e, "integrator")) {
      if (text(e, "integrator") == "implicit") {
        fail_attr(e, "integrator", "the implicit integrator is not supported; use Euler or RK4");
      }
      o.integrator = keyword(e, "integrator", {"Euler", "RK4"}) == 0 ? ModelIntegrator::euler
                                                                     : ModelIntegrator::rk4;
    }
    if (has(e, "cone")) o.cone = keyword(e, "cone", {"pyramidal", "elliptic"});
    read_int(e, "iterations", &o.iterations);
    read_real(e, "tolerance", &o.tolerance);
    read_real(e, "impratio", &o.impratio);
    for (const XMLElement* c = e->FirstChildElement(); c; c = c->NextSiblingElement()) {
      if (std::strcmp(c->Name(), "flag") != 0) unsupported_element(c, "<option>", {"flag"});
      no_children(c);
      for (const XMLAttribute* a = c->FirstAttribute(); a; a = a->Next()) {
        const std::string name = a->Name();
        const bool enable = keyword(c, a->Name(), {"disable", "enable"}) == 1;
        bool known = false;
        for (const auto& [flag, bit] : kDisableFlags) {
          if (name == flag) {
            known = true;
            o.disableflags = enable ? (o.disableflags & ~bit) : (o.disableflags | bit);
          }
        }
        if (kEnableFlags.count(name)) {
          known = true;
          if (enable) {
            fail_attr(c, a->Name(), "enabling '" + name + "' is not supported by PhyDream");
          }
        }
        if (!known) {
          std::set<std::string> all = kEnableFlags;
          for (const auto& f : kDisableFlags) all.insert(f.name);
          fail(c, "unknown flag '" + name + "' (flags: " + join(all) + ")");
        }
      }
    }
  }

  void asset(const XMLElement* e) {
    check_attributes(e, kNoAttrs);
    for (const XMLElement* c = e->FirstChildElement(); c; c = c->NextSiblingElement()) {
      const std::string name = c->Name();
      if (name != "texture" && name != "material") {
        fail(c,
             "assets other than <texture> and <material> (meshes, height fields, skins) are "
             "not supported by PhyDream's MJCF subset");
      }
    }
  }

  void default_class(const XMLElement* e, const DefaultClass* parent) {
    check_attributes(e, AttrRules{{"class"}, {}});
    std::string name = "main";
    if (parent != nullptr) {
      if (!has(e, "class")) fail(e, "a nested <default> needs a class name");
    }
    if (has(e, "class")) name = text(e, "class");
    if (parent != nullptr && classes_.count(name)) fail(e, "repeated default class '" + name + "'");
    DefaultClass cls = parent ? *parent : classes_["main"];

    // a default's elements set attributes only: no names, no classes
    auto prototype_only = [&](const XMLElement* c) {
      if (has(c, "name")) fail(c, "an element in a <default> cannot have a name");
      if (has(c, "class")) fail(c, "an element in a <default> cannot have a class");
    };
    const std::set<std::string> allowed = {"joint",   "geom",   "site",  "motor",
                                           "default", "camera", "light", "material"};
    std::vector<const XMLElement*> nested;
    for (const XMLElement* c = e->FirstChildElement(); c; c = c->NextSiblingElement()) {
      const std::string kind = c->Name();
      if (kind == "joint") {
        prototype_only(c);
        read_joint(c, &cls.joint);
      } else if (kind == "geom") {
        prototype_only(c);
        read_geom(c, &cls.geom);
      } else if (kind == "site") {
        prototype_only(c);
        read_site(c, &cls.site);
      } else if (kind == "motor") {
        prototype_only(c);
        read_motor(c, &cls.motor);
      } else if (kind == "default") {
        nested.push_back(c);
      } else if (kind == "camera" || kind == "light" || kind == "material") {
        // visual only
      } else {
        unsupported_element(c, "<default>", allowed);
      }
    }
    classes_[name] = cls;
    for (const XMLElement* c : nested) default_class(c, &classes_[name]);
  }

  // the class an element uses: its own `class`, else the enclosing childclass, else "main"
  const DefaultClass& class_of(const XMLElement* e, const std::string& childclass) const {
    const std::string name = has(e, "class") ? text(e, "class") : childclass;
    const auto it = classes_.find(name);
    if (it == classes_.end()) {
      if (has(e, "class")) fail_attr(e, "class", "unknown default class");
      fail(e, "unknown childclass '" + name + "'");
    }
    return it->second;
  }

  void worldbody(const XMLElement* e) {
    check_attributes(e, kNoAttrs);
    spec_.world.where = where(e);
    body_children(e, &spec_.world, "main", true);
  }

  void body(const XMLElement* e, BodySpec* b, const std::string& parent_childclass) {
    check_attributes(e, kBodyRules);
    b->where = where(e);
    if (has(e, "name")) b->name = text(e, "name");
    read_array(e, "pos", &b->pos);
    OrientationSpec o;
    read_orientation(e, &o);
    b->orientation = to_radians(o);
    std::string childclass = parent_childclass;
    if (has(e, "childclass")) {
      childclass = text(e, "childclass");
      if (!classes_.count(childclass)) fail_attr(e, "childclass", "unknown default class");
    }
    body_children(e, b, childclass, false);
  }

  void body_children(const XMLElement* e, BodySpec* b, const std::string& childclass, bool world) {
    const std::set<std::string> allowed =
        world ? std::set<std::string>{"body", "geom", "site", "light", "camera"}
              : std::set<std::string>{"body", "inertial", "joint", "freejoint",
                                      "geom", "site",     "light", "camera"};
    const std::string parent = world ? "<worldbody>" : "<body>";
    for (const XMLElement* c = e->FirstChildElement(); c; c = c->NextSiblingElement()) {
      const std::string kind = c->Name();
      if (allowed.count(kind) == 0) unsupported_element(c, parent, allowed);
      if (kind == "body") {
        b->children.emplace_back();
        body(c, &b->children.back(), childclass);
      } else if (kind == "inertial") {
        if (b->inertial.present) fail(c, "a body can have only one <inertial>");
        inertial(c, &b->inertial);
      } else if (kind == "joint") {
        JointSpec j = class_of(c, childclass).joint;
        read_joint(c, &j);
        j.where = where(c);
        no_children(c);
        // angles of rotational joints in the compiler's unit
        if (j.type == JointType::hinge || j.type == JointType::ball) {
          j.range = {angle(j.range[0]), angle(j.range[1])};
        }
        if (j.type == JointType::hinge) {
          j.ref = angle(j.ref);
          j.springref = angle(j.springref);
        }
        b->joints.push_back(j);
      } else if (kind == "freejoint") {
        // MuJoCo's freejoint takes no defaults: a free joint with zero damping and armature
        check_attributes(c, kFreejointRules);
        no_children(c);
        JointSpec j;
        j.type = JointType::free;
        j.name = text(c, "name");
        j.where = where(c);
        b->joints.push_back(j);
      } else if (kind == "geom") {
        GeomSpec g = class_of(c, childclass).geom;
        OrientationSpec inherited = g.orientation;
        g.orientation = OrientationSpec{};
        read_geom(c, &g);
        if (g.orientation.kind == OrientationSpec::Kind::none) g.orientation = inherited;
        g.orientation = to_radians(g.orientation);
        if (has(c, "fromto") && has(c, "pos")) {
          fail(c, "fromto sets the position; give either fromto or pos");
        }
        g.where = where(c);
        no_children(c);
        b->geoms.push_back(g);
      } else if (kind == "site") {
        SiteSpec s = class_of(c, childclass).site;
        OrientationSpec inherited = s.orientation;
        s.orientation = OrientationSpec{};
        read_site(c, &s);
        if (s.orientation.kind == OrientationSpec::Kind::none) s.orientation = inherited;
        s.orientation = to_radians(s.orientation);
        if (has(c, "fromto") && has(c, "pos")) {
          fail(c, "fromto sets the position; give either fromto or pos");
        }
        s.where = where(c);
        no_children(c);
        b->sites.push_back(s);
      }
      // light and camera: visual only
    }
  }

  void inertial(const XMLElement* e, InertialSpec* in) {
    check_attributes(e, kInertialRules);
    no_children(e);
    in->present = true;
    in->where = where(e);
    if (!has(e, "pos")) fail(e, "an <inertial> needs pos");
    if (!has(e, "mass")) fail(e, "an <inertial> needs mass");
    read_array(e, "pos", &in->pos);
    in->mass = real(e, "mass");
    OrientationSpec o;
    read_orientation(e, &o);
    in->orientation = to_radians(o);
    if (has(e, "diaginertia")) {
      read_array(e, "diaginertia", &in->diaginertia);
      in->has_diaginertia = true;
    }
    if (has(e, "fullinertia")) {
      read_array(e, "fullinertia", &in->fullinertia);
      in->has_fullinertia = true;
    }
    if (in->has_diaginertia == in->has_fullinertia) {
      fail(e, "an <inertial> needs exactly one of diaginertia and fullinertia");
    }
  }

  void actuator(const XMLElement* e) {
    check_attributes(e, kNoAttrs);
    for (const XMLElement* c = e->FirstChildElement(); c; c = c->NextSiblingElement()) {
      if (std::strcmp(c->Name(), "motor") != 0) unsupported_element(c, "<actuator>", {"motor"});
      ActuatorSpec a = class_of(c, "main").motor;
      read_motor(c, &a);
      no_children(c);
      a.where = where(c);
      if (!has(c, "joint")) fail(c, "a <motor> needs a joint (PhyDream's motors act on joints)");
      spec_.actuators.push_back(a);
    }
  }

  void keyframe(const XMLElement* e) {
    check_attributes(e, kNoAttrs);
    for (const XMLElement* c = e->FirstChildElement(); c; c = c->NextSiblingElement()) {
      if (std::strcmp(c->Name(), "key") != 0) unsupported_element(c, "<keyframe>", {"key"});
      check_attributes(c, kKeyRules);
      no_children(c);
      KeySpec k;
      k.where = where(c);
      k.name = text(c, "name");
      read_real(c, "time", &k.time);
      if (has(c, "qpos")) k.qpos = reals(c, "qpos", 0, 1 << 30);
      if (has(c, "qvel")) k.qvel = reals(c, "qvel", 0, 1 << 30);
      if (has(c, "ctrl")) k.ctrl = reals(c, "ctrl", 0, 1 << 30);
      spec_.keys.push_back(k);
    }
  }
};

ModelSpec parse_document(XMLDocument& doc, tinyxml2::XMLError status, const std::string& source) {
  if (status == tinyxml2::XML_ERROR_FILE_NOT_FOUND ||
      status == tinyxml2::XML_ERROR_FILE_COULD_NOT_BE_OPENED ||
      status == tinyxml2::XML_ERROR_FILE_READ_ERROR) {
    throw InputError(source + ": cannot read the file");
  }
  if (status != tinyxml2::XML_SUCCESS) {
    // ErrorStr() names the error and its line, e.g. "Error=XML_ERROR_MISMATCHED_ELEMENT ... Line
    // number=7"
    throw InputError(source + ":" + std::to_string(doc.ErrorLineNum()) +
                     ": malformed XML: " + doc.ErrorStr());
  }
  return MjcfParser(source).parse(doc);
}

}  // namespace

ModelSpec parse_mjcf_string(const std::string& xml, const std::string& source) {
  XMLDocument doc;
  const tinyxml2::XMLError status = doc.Parse(xml.c_str(), xml.size());
  return parse_document(doc, status, source);
}

Model load_mjcf_string(const std::string& xml, const std::string& source) {
  return compile_model(parse_mjcf_string(xml, source));
}

Model load_mjcf(const std::string& path) {
  XMLDocument doc;
  const tinyxml2::XMLError status = doc.LoadFile(path.c_str());
  return compile_model(parse_document(doc, status, path));
}

}  // namespace phydream
