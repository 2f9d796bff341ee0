// Test-only bridge to MuJoCo 2.2.2 (Debian's libmujoco-dev): load MJCF text or files with
// mj_loadXML, and convert a compiled mjModel into a phydream::Model field by field, so that the
// dynamics can be compared with MuJoCo's on exactly the same numbers (body frames, inertias,
// qpos0, ...) independently of PhyDream's own MJCF loader.
//
// Only what the smooth dynamics models is accepted: joints of any type, motors (joint
// transmission, gain 1, no bias, no dynamics, no force limit), no tendons, equality
// constraints, mocap bodies, actuator activations, fluid forces or gravity compensation.
// Anything else throws std::runtime_error naming the feature.
#pragma once

#include <mujoco/mujoco.h>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/model.h"

namespace phydream::testing {

struct MjModelDeleter {
  void operator()(mjModel* m) const { mj_deleteModel(m); }
};
struct MjDataDeleter {
  void operator()(mjData* d) const { mj_deleteData(d); }
};
using MjModelPtr = std::unique_ptr<mjModel, MjModelDeleter>;
using MjDataPtr = std::unique_ptr<mjData, MjDataDeleter>;

/// Compiles an MJCF file with MuJoCo; throws with MuJoCo's message on failure.
inline MjModelPtr mujoco_load_file(const std::string& path) {
  char error[1024] = {0};
  mjModel* m = mj_loadXML(path.c_str(), nullptr, error, sizeof(error));
  if (m == nullptr) throw std::runtime_error("MuJoCo cannot load " + path + ": " + error);
  return MjModelPtr(m);
}

/// Compiles MJCF text with MuJoCo, through a virtual file (no file on disk).
inline MjModelPtr mujoco_load_string(const std::string& xml) {
  // mjVFS holds thousands of file slots: keep it off the stack
  auto vfs = std::make_unique<mjVFS>();
  mj_defaultVFS(vfs.get());
  const char* name = "phydream_test_model.xml";
  if (mj_makeEmptyFileVFS(vfs.get(), name, static_cast<int>(xml.size())) != 0) {
    throw std::runtime_error("cannot create a MuJoCo virtual file");
  }
  const int index = mj_findFileVFS(vfs.get(), name);
  std::copy(xml.begin(), xml.end(), static_cast<char*>(vfs->filedata[index]));
  char error[1024] = {0};
  mjModel* m = mj_loadXML(name, vfs.get(), error, sizeof(error));
  mj_deleteVFS(vfs.get());
  if (m == nullptr) throw std::runtime_error(std::string("MuJoCo cannot load the test model: ") + error);
  return MjModelPtr(m);
}

namespace mujoco_detail {
inline std::string mj_name(const mjModel* m, int adr) { return std::string(m->names + adr); }
template <class T>
std::vector<double> to_doubles(const T* p, int n) {
  return std::vector<double>(p, p + n);
}
template <class T>
std::vector<int> to_ints(const T* p, int n) {
  return std::vector<int>(p, p + n);
}
inline void require(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error("mujoco_model: unsupported: " + what);
}
}  // namespace mujoco_detail

/// The phydream::Model of a compiled mjModel (same numbers, same order).
inline Model model_from_mujoco(const mjModel* m, const std::string& source = "mujoco") {
  using mujoco_detail::require;
  using mujoco_detail::to_doubles;
  using mujoco_detail::to_ints;
  require(m->ntendon == 0, "tendons");
  require(m->neq == 0, "equality constraints");
  require(m->nmocap == 0, "mocap bodies");
  require(m->na == 0, "actuator activations");
  require(m->opt.density == 0 && m->opt.viscosity == 0, "fluid forces (density, viscosity)");
  require(m->opt.integrator == mjINT_EULER || m->opt.integrator == mjINT_RK4, "the implicit integrator");
  // the constraint model PhyDream follows: Newton solver, dense, geom-mixed contact parameters
  require(m->opt.solver == mjSOL_NEWTON, "solvers other than Newton");
  require(m->opt.noslip_iterations == 0, "the noslip solver");
  require(!(m->opt.enableflags & mjENBL_OVERRIDE), "contact parameter override");
  require(m->npair == 0 && m->nexclude == 0, "explicit contact pairs and excludes");
  for (int g = 0; g < m->ngeom; ++g) {
    require(m->geom_priority[g] == 0 && m->geom_solmix[g] == 1 && m->geom_gap[g] == 0,
            "geom priority, solmix or gap other than the defaults");
  }
  for (int i = 0; i < m->nv; ++i) {
    require(m->dof_solref[2 * i] == 0.02 && m->dof_solref[2 * i + 1] == 1 && m->dof_solimp[5 * i] == 0.9 &&
                m->dof_solimp[5 * i + 1] == 0.95 && m->dof_solimp[5 * i + 2] == 0.001 &&
                m->dof_solimp[5 * i + 3] == 0.5 && m->dof_solimp[5 * i + 4] == 2,
            "friction loss solref/solimp other than the defaults");
  }
  for (int a = 0; a < m->nu; ++a) {
    require(m->actuator_trntype[a] == mjTRN_JOINT, "actuator transmission other than a joint");
    require(m->actuator_dyntype[a] == mjDYN_NONE, "actuator dynamics");
    require(m->actuator_gaintype[a] == mjGAIN_FIXED && m->actuator_gainprm[a * mjNGAIN] == 1,
            "actuator gain other than a motor's");
    require(m->actuator_biastype[a] == mjBIAS_NONE, "actuator bias");
    require(!m->actuator_forcelimited[a], "actuator force limits");
  }

  Model r;
  r.source = source;
  r.nq = m->nq;
  r.nv = m->nv;
  r.nu = m->nu;
  r.nbody = m->nbody;
  r.njnt = m->njnt;
  r.ngeom = m->ngeom;
  r.nsite = m->nsite;
  r.nkey = m->nkey;

  r.opt_timestep = m->opt.timestep;
  for (int k = 0; k < 3; ++k) r.opt_gravity[k] = m->opt.gravity[k];
  r.opt_integrator = m->opt.integrator == mjINT_RK4 ? ModelIntegrator::rk4 : ModelIntegrator::euler;
  r.opt_cone = m->opt.cone;
  r.opt_iterations = m->opt.iterations;
  r.opt_tolerance = m->opt.tolerance;
  r.opt_impratio = m->opt.impratio;
  r.opt_disableflags = m->opt.disableflags;

  const int nb = m->nbody;
  r.body_parentid = to_ints(m->body_parentid, nb);
  r.body_jntnum = to_ints(m->body_jntnum, nb);
  r.body_jntadr = to_ints(m->body_jntadr, nb);
  r.body_dofnum = to_ints(m->body_dofnum, nb);
  r.body_dofadr = to_ints(m->body_dofadr, nb);
  r.body_pos = to_doubles(m->body_pos, 3 * nb);
  r.body_quat = to_doubles(m->body_quat, 4 * nb);
  r.body_ipos = to_doubles(m->body_ipos, 3 * nb);
  r.body_iquat = to_doubles(m->body_iquat, 4 * nb);
  r.body_mass = to_doubles(m->body_mass, nb);
  r.body_inertia = to_doubles(m->body_inertia, 3 * nb);
  for (int i = 0; i < nb; ++i) r.body_name.push_back(mujoco_detail::mj_name(m, m->name_bodyadr[i]));

  const int nj = m->njnt;
  r.jnt_type = to_ints(m->jnt_type, nj);
  r.jnt_bodyid = to_ints(m->jnt_bodyid, nj);
  r.jnt_qposadr = to_ints(m->jnt_qposadr, nj);
  r.jnt_dofadr = to_ints(m->jnt_dofadr, nj);
  r.jnt_pos = to_doubles(m->jnt_pos, 3 * nj);
  r.jnt_axis = to_doubles(m->jnt_axis, 3 * nj);
  r.jnt_limited = to_ints(m->jnt_limited, nj);
  r.jnt_range = to_doubles(m->jnt_range, 2 * nj);
  r.jnt_stiffness = to_doubles(m->jnt_stiffness, nj);
  r.jnt_margin = to_doubles(m->jnt_margin, nj);
  r.jnt_solref = to_doubles(m->jnt_solref, mjNREF * nj);
  r.jnt_solimp = to_doubles(m->jnt_solimp, mjNIMP * nj);
  for (int j = 0; j < nj; ++j) r.jnt_name.push_back(mujoco_detail::mj_name(m, m->name_jntadr[j]));
  r.qpos0 = to_doubles(m->qpos0, m->nq);
  r.qpos_spring = to_doubles(m->qpos_spring, m->nq);

  const int nv = m->nv;
  r.dof_bodyid = to_ints(m->dof_bodyid, nv);
  r.dof_jntid = to_ints(m->dof_jntid, nv);
  r.dof_parentid = to_ints(m->dof_parentid, nv);
  r.dof_armature = to_doubles(m->dof_armature, nv);
  r.dof_damping = to_doubles(m->dof_damping, nv);
  r.dof_frictionloss = to_doubles(m->dof_frictionloss, nv);

  const int ng = m->ngeom;
  r.geom_type = to_ints(m->geom_type, ng);
  r.geom_bodyid = to_ints(m->geom_bodyid, ng);
  r.geom_contype = to_ints(m->geom_contype, ng);
  r.geom_conaffinity = to_ints(m->geom_conaffinity, ng);
  r.geom_condim = to_ints(m->geom_condim, ng);
  r.geom_pos = to_doubles(m->geom_pos, 3 * ng);
  r.geom_quat = to_doubles(m->geom_quat, 4 * ng);
  r.geom_size = to_doubles(m->geom_size, 3 * ng);
  r.geom_friction = to_doubles(m->geom_friction, 3 * ng);
  r.geom_solref = to_doubles(m->geom_solref, mjNREF * ng);
  r.geom_solimp = to_doubles(m->geom_solimp, mjNIMP * ng);
  r.geom_margin = to_doubles(m->geom_margin, ng);
  for (int g = 0; g < ng; ++g) r.geom_name.push_back(mujoco_detail::mj_name(m, m->name_geomadr[g]));

  r.site_bodyid = to_ints(m->site_bodyid, m->nsite);
  r.site_pos = to_doubles(m->site_pos, 3 * m->nsite);
  r.site_quat = to_doubles(m->site_quat, 4 * m->nsite);
  for (int s = 0; s < m->nsite; ++s) r.site_name.push_back(mujoco_detail::mj_name(m, m->name_siteadr[s]));

  for (int a = 0; a < m->nu; ++a) {
    r.actuator_trnid.push_back(m->actuator_trnid[2 * a]);
    r.actuator_gear.push_back(m->actuator_gear[6 * a]);
    r.actuator_ctrllimited.push_back(m->actuator_ctrllimited[a]);
    r.actuator_ctrlrange.push_back(m->actuator_ctrlrange[2 * a]);
    r.actuator_ctrlrange.push_back(m->actuator_ctrlrange[2 * a + 1]);
    r.actuator_name.push_back(mujoco_detail::mj_name(m, m->name_actuatoradr[a]));
  }

  r.key_qpos = to_doubles(m->key_qpos, m->nkey * m->nq);
  r.key_qvel = to_doubles(m->key_qvel, m->nkey * m->nv);
  r.key_ctrl = to_doubles(m->key_ctrl, m->nkey * m->nu);
  for (int k = 0; k < m->nkey; ++k) r.key_name.push_back(mujoco_detail::mj_name(m, m->name_keyadr[k]));
  return r;
}

/// The dense M from MuJoCo's sparse qM (nv x nv, row-major).
inline std::vector<double> mujoco_full_m(const mjModel* m, const mjData* d) {
  std::vector<double> M(static_cast<size_t>(m->nv) * m->nv);
  mj_fullM(m, M.data(), d->qM);
  return M;
}

}  // namespace phydream::testing
