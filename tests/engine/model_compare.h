// Test helper: field-by-field comparison of two Models (e.g. the same model loaded from MJCF and
// from JSON), each mismatch reported with the field name and index.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine/model.h"

namespace phydream::test {

// |a - b| <= tol * max(1, |a|, |b|)
inline bool close_rel(double a, double b, double tol) {
  return std::fabs(a - b) <= tol * std::max({1.0, std::fabs(a), std::fabs(b)});
}

inline void expect_close(const std::string& what, const std::vector<double>& a,
                         const std::vector<double>& b, double tol) {
  ASSERT_EQ(a.size(), b.size()) << what << ": sizes differ";
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(close_rel(a[i], b[i], tol)) << what << "[" << i << "]: " << a[i] << " vs " << b[i];
  }
}

template <class T>
void expect_equal(const std::string& what, const std::vector<T>& a, const std::vector<T>& b) {
  ASSERT_EQ(a.size(), b.size()) << what << ": sizes differ";
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], b[i]) << what << "[" << i << "]";
}

// quaternions (n x 4) equal up to sign
inline void expect_quats(const std::string& what, const std::vector<double>& a,
                         const std::vector<double>& b, double tol) {
  ASSERT_EQ(a.size(), b.size()) << what << ": sizes differ";
  for (std::size_t i = 0; i + 3 < a.size(); i += 4) {
    bool same = true, opposite = true;
    for (int k = 0; k < 4; ++k) {
      same = same && close_rel(a[i + k], b[i + k], tol);
      opposite = opposite && close_rel(a[i + k], -b[i + k], tol);
    }
    EXPECT_TRUE(same || opposite) << what << "[" << i / 4 << "]: (" << a[i] << " " << a[i + 1]
                                  << " " << a[i + 2] << " " << a[i + 3] << ") vs (" << b[i] << " "
                                  << b[i + 1] << " " << b[i + 2] << " " << b[i + 3] << ")";
  }
}

/// Every field of two models, reals to `tol` (relative, floor 1), quaternions up to sign.
inline void expect_same_model(const Model& a, const Model& b, double tol = 1e-12) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.nq, b.nq);
  EXPECT_EQ(a.nv, b.nv);
  EXPECT_EQ(a.nu, b.nu);
  EXPECT_EQ(a.nbody, b.nbody);
  EXPECT_EQ(a.njnt, b.njnt);
  EXPECT_EQ(a.ngeom, b.ngeom);
  EXPECT_EQ(a.nsite, b.nsite);
  EXPECT_EQ(a.nkey, b.nkey);
  EXPECT_EQ(a.opt_timestep, b.opt_timestep);
  expect_close("opt_gravity", {a.opt_gravity.begin(), a.opt_gravity.end()},
               {b.opt_gravity.begin(), b.opt_gravity.end()}, 0);
  EXPECT_EQ(a.opt_integrator, b.opt_integrator);
  EXPECT_EQ(a.opt_cone, b.opt_cone);
  EXPECT_EQ(a.opt_iterations, b.opt_iterations);
  EXPECT_EQ(a.opt_tolerance, b.opt_tolerance);
  EXPECT_EQ(a.opt_impratio, b.opt_impratio);
  EXPECT_EQ(a.opt_disableflags, b.opt_disableflags);

  expect_equal("body_parentid", a.body_parentid, b.body_parentid);
  expect_equal("body_jntnum", a.body_jntnum, b.body_jntnum);
  expect_equal("body_jntadr", a.body_jntadr, b.body_jntadr);
  expect_equal("body_dofnum", a.body_dofnum, b.body_dofnum);
  expect_equal("body_dofadr", a.body_dofadr, b.body_dofadr);
  expect_close("body_pos", a.body_pos, b.body_pos, tol);
  expect_quats("body_quat", a.body_quat, b.body_quat, tol);
  expect_close("body_ipos", a.body_ipos, b.body_ipos, tol);
  expect_quats("body_iquat", a.body_iquat, b.body_iquat, tol);
  expect_close("body_mass", a.body_mass, b.body_mass, tol);
  expect_close("body_inertia", a.body_inertia, b.body_inertia, tol);
  expect_equal("body_name", a.body_name, b.body_name);

  expect_equal("jnt_type", a.jnt_type, b.jnt_type);
  expect_equal("jnt_bodyid", a.jnt_bodyid, b.jnt_bodyid);
  expect_equal("jnt_qposadr", a.jnt_qposadr, b.jnt_qposadr);
  expect_equal("jnt_dofadr", a.jnt_dofadr, b.jnt_dofadr);
  expect_close("jnt_pos", a.jnt_pos, b.jnt_pos, tol);
  expect_close("jnt_axis", a.jnt_axis, b.jnt_axis, tol);
  expect_equal("jnt_limited", a.jnt_limited, b.jnt_limited);
  expect_close("jnt_range", a.jnt_range, b.jnt_range, tol);
  expect_close("jnt_stiffness", a.jnt_stiffness, b.jnt_stiffness, tol);
  expect_close("jnt_margin", a.jnt_margin, b.jnt_margin, tol);
  expect_close("jnt_solref", a.jnt_solref, b.jnt_solref, tol);
  expect_close("jnt_solimp", a.jnt_solimp, b.jnt_solimp, tol);
  expect_equal("jnt_name", a.jnt_name, b.jnt_name);
  expect_close("qpos0", a.qpos0, b.qpos0, tol);
  expect_close("qpos_spring", a.qpos_spring, b.qpos_spring, tol);

  expect_equal("dof_bodyid", a.dof_bodyid, b.dof_bodyid);
  expect_equal("dof_jntid", a.dof_jntid, b.dof_jntid);
  expect_equal("dof_parentid", a.dof_parentid, b.dof_parentid);
  expect_close("dof_armature", a.dof_armature, b.dof_armature, tol);
  expect_close("dof_damping", a.dof_damping, b.dof_damping, tol);
  expect_close("dof_frictionloss", a.dof_frictionloss, b.dof_frictionloss, tol);

  expect_equal("geom_type", a.geom_type, b.geom_type);
  expect_equal("geom_bodyid", a.geom_bodyid, b.geom_bodyid);
  expect_equal("geom_contype", a.geom_contype, b.geom_contype);
  expect_equal("geom_conaffinity", a.geom_conaffinity, b.geom_conaffinity);
  expect_equal("geom_condim", a.geom_condim, b.geom_condim);
  expect_close("geom_pos", a.geom_pos, b.geom_pos, tol);
  expect_quats("geom_quat", a.geom_quat, b.geom_quat, tol);
  expect_close("geom_size", a.geom_size, b.geom_size, tol);
  expect_close("geom_friction", a.geom_friction, b.geom_friction, tol);
  expect_close("geom_solref", a.geom_solref, b.geom_solref, tol);
  expect_close("geom_solimp", a.geom_solimp, b.geom_solimp, tol);
  expect_close("geom_margin", a.geom_margin, b.geom_margin, tol);
  expect_equal("geom_name", a.geom_name, b.geom_name);

  expect_equal("site_type", a.site_type, b.site_type);
  expect_equal("site_bodyid", a.site_bodyid, b.site_bodyid);
  expect_close("site_pos", a.site_pos, b.site_pos, tol);
  expect_quats("site_quat", a.site_quat, b.site_quat, tol);
  expect_close("site_size", a.site_size, b.site_size, tol);
  expect_equal("site_name", a.site_name, b.site_name);

  expect_equal("actuator_trnid", a.actuator_trnid, b.actuator_trnid);
  expect_close("actuator_gear", a.actuator_gear, b.actuator_gear, tol);
  expect_equal("actuator_ctrllimited", a.actuator_ctrllimited, b.actuator_ctrllimited);
  expect_close("actuator_ctrlrange", a.actuator_ctrlrange, b.actuator_ctrlrange, tol);
  expect_equal("actuator_name", a.actuator_name, b.actuator_name);

  expect_close("key_time", a.key_time, b.key_time, tol);
  expect_close("key_qpos", a.key_qpos, b.key_qpos, tol);
  expect_close("key_qvel", a.key_qvel, b.key_qvel, tol);
  expect_close("key_ctrl", a.key_ctrl, b.key_ctrl, tol);
  expect_equal("key_name", a.key_name, b.key_name);
}

}  // namespace phydream::test
