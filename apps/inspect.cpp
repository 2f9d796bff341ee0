#include "apps/inspect.h"

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "engine/model.h"
#include "engine/model_compile.h"
#include "engine/model_json.h"

namespace phydream::cli {

namespace {

using nlohmann::json;

const char* integrator_label(ModelIntegrator i) {
  return i == ModelIntegrator::rk4 ? "RK4" : "Euler";
}

// the MJCF flag names of the set disable bits
std::vector<std::string> disabled_flags(int mask) {
  const std::vector<DisableFlagName>& flags = disable_flag_names();
  std::vector<std::string> out;
  for (const auto& [name, bit] : flags) {
    if (mask & bit) out.push_back(name);
  }
  return out;
}

template <class T>
std::vector<T> slice(const std::vector<T>& a, int i, int n) {
  return std::vector<T>(a.begin() + static_cast<long>(i) * n,
                        a.begin() + static_cast<long>(i + 1) * n);
}

// numbers as %g, space-separated
std::string g(const std::vector<double>& v) {
  std::ostringstream os;
  for (std::size_t k = 0; k < v.size(); ++k) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", v[k]);
    os << (k ? " " : "") << buf;
  }
  return os.str();
}
std::string g(double x) { return g(std::vector<double>{x}); }

std::string label(const std::string& name, int id) {
  return name.empty() ? "#" + std::to_string(id) : name;
}

json to_json(const Model& m) {
  json j;
  j["name"] = m.name;
  j["source"] = m.source;
  j["sizes"] = {{"nq", m.nq},     {"nv", m.nv},       {"nu", m.nu},       {"nbody", m.nbody},
                {"njnt", m.njnt}, {"ngeom", m.ngeom}, {"nsite", m.nsite}, {"nkey", m.nkey}};
  j["options"] = {{"timestep", m.opt_timestep},
                  {"gravity", m.opt_gravity},
                  {"integrator", integrator_label(m.opt_integrator)},
                  {"cone", m.opt_cone == 1 ? "elliptic" : "pyramidal"},
                  {"iterations", m.opt_iterations},
                  {"tolerance", m.opt_tolerance},
                  {"impratio", m.opt_impratio},
                  {"disableflags", m.opt_disableflags},
                  {"disabled", disabled_flags(m.opt_disableflags)}};
  j["bodies"] = json::array();
  for (int b = 0; b < m.nbody; ++b) {
    j["bodies"].push_back({{"id", b},
                           {"name", m.body_name[b]},
                           {"parent", m.body_parentid[b]},
                           {"jntnum", m.body_jntnum[b]},
                           {"jntadr", m.body_jntadr[b]},
                           {"dofnum", m.body_dofnum[b]},
                           {"dofadr", m.body_dofadr[b]},
                           {"pos", slice(m.body_pos, b, 3)},
                           {"quat", slice(m.body_quat, b, 4)},
                           {"mass", m.body_mass[b]},
                           {"ipos", slice(m.body_ipos, b, 3)},
                           {"iquat", slice(m.body_iquat, b, 4)},
                           {"inertia", slice(m.body_inertia, b, 3)}});
  }
  j["joints"] = json::array();
  for (int i = 0; i < m.njnt; ++i) {
    j["joints"].push_back({{"id", i},
                           {"name", m.jnt_name[i]},
                           {"type", joint_type_name(static_cast<JointType>(m.jnt_type[i]))},
                           {"body", m.jnt_bodyid[i]},
                           {"qposadr", m.jnt_qposadr[i]},
                           {"dofadr", m.jnt_dofadr[i]},
                           {"pos", slice(m.jnt_pos, i, 3)},
                           {"axis", slice(m.jnt_axis, i, 3)},
                           {"limited", m.jnt_limited[i] != 0},
                           {"range", slice(m.jnt_range, i, 2)},
                           {"stiffness", m.jnt_stiffness[i]},
                           {"margin", m.jnt_margin[i]},
                           {"solreflimit", slice(m.jnt_solref, i, 2)},
                           {"solimplimit", slice(m.jnt_solimp, i, 5)}});
  }
  j["qpos0"] = m.qpos0;
  j["qpos_spring"] = m.qpos_spring;
  j["dofs"] = json::array();
  for (int i = 0; i < m.nv; ++i) {
    j["dofs"].push_back({{"id", i},
                         {"body", m.dof_bodyid[i]},
                         {"joint", m.dof_jntid[i]},
                         {"parent", m.dof_parentid[i]},
                         {"armature", m.dof_armature[i]},
                         {"damping", m.dof_damping[i]},
                         {"frictionloss", m.dof_frictionloss[i]}});
  }
  j["actuators"] = json::array();
  for (int i = 0; i < m.nu; ++i) {
    j["actuators"].push_back({{"id", i},
                              {"name", m.actuator_name[i]},
                              {"type", "motor"},
                              {"joint", m.actuator_trnid[i]},
                              {"gear", m.actuator_gear[i]},
                              {"ctrllimited", m.actuator_ctrllimited[i] != 0},
                              {"ctrlrange", slice(m.actuator_ctrlrange, i, 2)}});
  }
  j["geoms"] = json::array();
  for (int i = 0; i < m.ngeom; ++i) {
    j["geoms"].push_back({{"id", i},
                          {"name", m.geom_name[i]},
                          {"type", geom_type_name(static_cast<GeomType>(m.geom_type[i]))},
                          {"body", m.geom_bodyid[i]},
                          {"size", slice(m.geom_size, i, 3)},
                          {"pos", slice(m.geom_pos, i, 3)},
                          {"quat", slice(m.geom_quat, i, 4)},
                          {"contype", m.geom_contype[i]},
                          {"conaffinity", m.geom_conaffinity[i]},
                          {"condim", m.geom_condim[i]},
                          {"friction", slice(m.geom_friction, i, 3)},
                          {"solref", slice(m.geom_solref, i, 2)},
                          {"solimp", slice(m.geom_solimp, i, 5)},
                          {"margin", m.geom_margin[i]}});
  }
  j["sites"] = json::array();
  for (int i = 0; i < m.nsite; ++i) {
    j["sites"].push_back({{"id", i},
                          {"name", m.site_name[i]},
                          {"type", geom_type_name(static_cast<GeomType>(m.site_type[i]))},
                          {"body", m.site_bodyid[i]},
                          {"size", slice(m.site_size, i, 3)},
                          {"pos", slice(m.site_pos, i, 3)},
                          {"quat", slice(m.site_quat, i, 4)}});
  }
  j["keys"] = json::array();
  for (int i = 0; i < m.nkey; ++i) {
    j["keys"].push_back({{"id", i},
                         {"name", m.key_name[i]},
                         {"time", m.key_time[i]},
                         {"qpos", slice(m.key_qpos, i, m.nq)},
                         {"qvel", slice(m.key_qvel, i, m.nv)},
                         {"ctrl", slice(m.key_ctrl, i, m.nu)}});
  }
  return j;
}

void print_text(const Model& m) {
  std::printf("model \"%s\" (%s)\n", m.name.c_str(), m.source.c_str());
  std::printf("sizes: nq %d, nv %d, nu %d, nbody %d, njnt %d, ngeom %d, nsite %d, nkey %d\n", m.nq,
              m.nv, m.nu, m.nbody, m.njnt, m.ngeom, m.nsite, m.nkey);
  std::string disabled;
  for (const std::string& f : disabled_flags(m.opt_disableflags)) disabled += " " + f;
  std::printf(
      "options: timestep %g, gravity %s, integrator %s, cone %s, iterations %d, "
      "tolerance %g, disabled:%s\n",
      m.opt_timestep, g({m.opt_gravity[0], m.opt_gravity[1], m.opt_gravity[2]}).c_str(),
      integrator_label(m.opt_integrator), m.opt_cone == 1 ? "elliptic" : "pyramidal",
      m.opt_iterations, m.opt_tolerance, disabled.empty() ? " none" : disabled.c_str());

  std::printf("\nbodies (%d)\n", m.nbody);
  std::printf("  %3s %-14s %-14s %10s  %-24s %s\n", "id", "name", "parent", "mass", "com (ipos)",
              "principal inertia");
  for (int b = 0; b < m.nbody; ++b) {
    std::printf("  %3d %-14s %-14s %10.6g  %-24s %s\n", b, label(m.body_name[b], b).c_str(),
                b == 0 ? "-" : label(m.body_name[m.body_parentid[b]], m.body_parentid[b]).c_str(),
                m.body_mass[b], g(slice(m.body_ipos, b, 3)).c_str(),
                g(slice(m.body_inertia, b, 3)).c_str());
  }

  std::printf("\njoints (%d)\n", m.njnt);
  std::printf("  %3s %-12s %-6s %-12s %4s %4s  %-18s %-22s %9s %9s\n", "id", "name", "type", "body",
              "qpos", "dof", "axis", "range", "stiffness", "ref");
  for (int i = 0; i < m.njnt; ++i) {
    const auto type = static_cast<JointType>(m.jnt_type[i]);
    const bool scalar = type == JointType::hinge || type == JointType::slide;
    std::printf("  %3d %-12s %-6s %-12s %4d %4d  %-18s %-22s %9.4g %9s\n", i,
                label(m.jnt_name[i], i).c_str(), joint_type_name(type),
                label(m.body_name[m.jnt_bodyid[i]], m.jnt_bodyid[i]).c_str(), m.jnt_qposadr[i],
                m.jnt_dofadr[i], scalar ? g(slice(m.jnt_axis, i, 3)).c_str() : "-",
                m.jnt_limited[i] ? g(slice(m.jnt_range, i, 2)).c_str() : "unlimited",
                m.jnt_stiffness[i], scalar ? g(m.qpos0[m.jnt_qposadr[i]]).c_str() : "-");
  }

  std::printf("\ndofs (%d)\n", m.nv);
  std::printf("  %3s %-12s %-12s %6s %9s %9s %12s\n", "id", "joint", "body", "parent", "armature",
              "damping", "frictionloss");
  for (int i = 0; i < m.nv; ++i) {
    std::printf("  %3d %-12s %-12s %6d %9.4g %9.4g %12.4g\n", i,
                label(m.jnt_name[m.dof_jntid[i]], m.dof_jntid[i]).c_str(),
                label(m.body_name[m.dof_bodyid[i]], m.dof_bodyid[i]).c_str(), m.dof_parentid[i],
                m.dof_armature[i], m.dof_damping[i], m.dof_frictionloss[i]);
  }

  std::printf("\nactuators (%d)\n", m.nu);
  for (int i = 0; i < m.nu; ++i) {
    std::printf("  %3d %-12s motor on joint %s, gear %g, ctrl %s\n", i,
                label(m.actuator_name[i], i).c_str(),
                label(m.jnt_name[m.actuator_trnid[i]], m.actuator_trnid[i]).c_str(),
                m.actuator_gear[i],
                m.actuator_ctrllimited[i] ? ("in " + g(slice(m.actuator_ctrlrange, i, 2))).c_str()
                                          : "unlimited");
  }

  std::printf("\ngeoms (%d)\n", m.ngeom);
  std::printf("  %3s %-12s %-9s %-12s %-22s %-22s %s\n", "id", "name", "type", "body", "size",
              "pos", "contype/conaffinity/condim");
  for (int i = 0; i < m.ngeom; ++i) {
    std::printf("  %3d %-12s %-9s %-12s %-22s %-22s %d/%d/%d\n", i,
                label(m.geom_name[i], i).c_str(),
                geom_type_name(static_cast<GeomType>(m.geom_type[i])),
                label(m.body_name[m.geom_bodyid[i]], m.geom_bodyid[i]).c_str(),
                g(slice(m.geom_size, i, 3)).c_str(), g(slice(m.geom_pos, i, 3)).c_str(),
                m.geom_contype[i], m.geom_conaffinity[i], m.geom_condim[i]);
  }

  std::printf("\nsites (%d)\n", m.nsite);
  for (int i = 0; i < m.nsite; ++i) {
    std::printf("  %3d %-12s on %-12s pos %s\n", i, label(m.site_name[i], i).c_str(),
                label(m.body_name[m.site_bodyid[i]], m.site_bodyid[i]).c_str(),
                g(slice(m.site_pos, i, 3)).c_str());
  }

  std::printf("\nkeys (%d)\n", m.nkey);
  for (int i = 0; i < m.nkey; ++i) {
    std::printf("  %3d %-12s time %g, qpos [%s], qvel [%s], ctrl [%s]\n", i,
                label(m.key_name[i], i).c_str(), m.key_time[i],
                g(slice(m.key_qpos, i, m.nq)).c_str(), g(slice(m.key_qvel, i, m.nv)).c_str(),
                g(slice(m.key_ctrl, i, m.nu)).c_str());
  }
}

}  // namespace

int run_inspect(const InspectArgs& a) {
  // load first: an error leaves stdout empty
  const Model m = load_model(a.model);
  if (a.json) {
    std::cout << to_json(m).dump(2) << std::endl;
  } else {
    print_text(m);
  }
  return 0;
}

}  // namespace phydream::cli
