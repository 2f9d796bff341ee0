// A plain-old-data view of an articulated Model for the physics functions: sizes, options and
// raw pointers to flat arrays already converted to Scalar, passed by value into kernels.
//
// ModelArrays<S> (host) validates a Model, converts its arrays to Scalar, adds the derived arrays
// the dynamics needs (body_rootid, body_subtreemass, as in MuJoCo's mjModel) and packs everything
// into two blocks, one of ints and one of Scalars. view() points into the host blocks; view_at()
// points into any copy of them, e.g. the same two blocks uploaded to a device.
#pragma once

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "engine/collision.h"
#include "engine/core.h"
#include "engine/errors.h"
#include "engine/model.h"
#include "engine/model_constants.h"

namespace phydream {

/// The smallest friction coefficient of a contact (MuJoCo's mjMINMU).
constexpr double kMinFriction = 1e-5;

/// Read-only view of a Model in Scalar; shapes as in engine/model.h.
template <class S>
struct ModelView {
  // sizes
  int nq, nv, nu, nbody, njnt, ngeom;
  int ncand;              // collision candidates: geom pairs that may touch (0: contacts off)
  int ncon_max;           // contacts the candidates can make at most
  int nefc_max;           // constraint rows at most (0: the model is constraint-free)

  // options
  S timestep;             // s
  S gravity[3];           // m/s^2
  int integrator;         // ModelIntegrator
  int disableflags;       // DisableBit mask
  int cone;               // 0 pyramidal, 1 elliptic
  int iterations;         // solver iteration cap
  S tolerance;            // solver tolerance (on the scaled improvement and gradient)
  S impratio;             // ratio of frictional to normal impedance
  S meaninertia;          // mean diagonal of M at qpos0: the solver's scale (MuJoCo's stat)
  int grad_mode;          // GradMode of the derivatives (not a model option: set per engine)
  int toi_correction;     // 1: rollout VJPs correct isolated impacts (engine/toi.h); per engine

  // bodies
  const int* body_parentid;    // parent body, parent id < child id (nbody)
  const int* body_rootid;      // top-level ancestor below the world; 0 for the world (nbody)
  const int* body_jntnum;      // (nbody)
  const int* body_jntadr;      // (nbody)
  const int* body_dofnum;      // (nbody)
  const int* body_dofadr;      // (nbody)
  const S* body_pos;           // (nbody x 3)
  const S* body_quat;          // (nbody x 4)
  const S* body_ipos;          // (nbody x 3)
  const S* body_iquat;         // (nbody x 4)
  const S* body_mass;          // (nbody)
  const S* body_subtreemass;   // mass of the body and its descendants (nbody)
  const S* body_inertia;       // (nbody x 3)

  // joints
  const int* jnt_type;         // JointType (njnt)
  const int* jnt_bodyid;       // (njnt)
  const int* jnt_qposadr;      // (njnt)
  const int* jnt_dofadr;       // (njnt)
  const S* jnt_pos;            // (njnt x 3)
  const S* jnt_axis;           // (njnt x 3)
  const S* jnt_stiffness;      // (njnt)
  const S* qpos0;              // (nq)
  const S* qpos_spring;        // (nq)

  // dofs
  const int* dof_bodyid;       // (nv)
  const int* dof_jntid;        // (nv)
  const int* dof_parentid;     // parent dof < dof, -1 at a root (nv)
  const S* dof_armature;       // (nv)
  const S* dof_damping;        // (nv)
  const S* dof_frictionloss;   // (nv)
  const S* dof_solref;         // friction loss solref (nv x 2)
  const S* dof_solimp;         // friction loss solimp (nv x 5)
  const S* dof_invweight0;     // inverse inertia of the dof at qpos0 (nv)
  const S* body_invweight0;    // mean inverse translational, rotational inertia at qpos0 (nbody x 2)

  // joint limits
  const int* jnt_limited;      // (njnt)
  const S* jnt_range;          // (njnt x 2)
  const S* jnt_margin;         // (njnt)
  const S* jnt_solref;         // (njnt x 2)
  const S* jnt_solimp;         // (njnt x 5)

  // geoms
  const int* geom_type;        // GeomType (ngeom)
  const int* geom_bodyid;      // (ngeom)
  const S* geom_pos;           // (ngeom x 3)
  const S* geom_quat;          // (ngeom x 4)
  const S* geom_size;          // (ngeom x 3)

  // collision candidates (engine/collision.h collision_candidates), with the contact parameters
  // mixed from their geoms' as MuJoCo's mj_collideGeoms does (same priority, solmix 1)
  const int* cand_geom1;       // lower geom type first (ncand)
  const int* cand_geom2;       // (ncand)
  const int* cand_condim;      // 1 or 3 (ncand)
  const S* cand_friction;      // sliding, sliding, torsional, rolling, rolling (ncand x 5)
  const S* cand_solref;        // (ncand x 2)
  const S* cand_solimp;        // (ncand x 5)
  const S* cand_margin;        // detection margin (ncand)
  const S* cand_gap;           // inclusion gap: rows only below margin - gap (ncand)

  // actuators: motors on hinge and slide joints
  const int* actuator_trnid;        // joint (nu)
  const int* actuator_ctrllimited;  // (nu)
  const S* actuator_gear;           // (nu)
  const S* actuator_ctrlrange;      // (nu x 2)

  PHYDREAM_HD bool disabled(int bit) const { return (disableflags & bit) != 0; }
};

/// Owns a Model's arrays converted to Scalar, in two blocks, and hands out views of them.
template <class S>
class ModelArrays {
 public:
  /// Validates `m` (throws InputError naming m.source and the field) and converts it. With
  /// `smooth_only`, the constraint part is left empty (nefc_max = 0) and the constants that need
  /// the dynamics (invweight0, meaninertia) are zero: what model_constants() itself runs on.
  /// `grad_mode`: how the derivatives of every view treat the constraint solver.
  /// `toi_correction`: whether rollout VJPs apply the time-of-impact correction (engine/toi.h).
  explicit ModelArrays(const Model& m, bool smooth_only = false, GradMode grad_mode = GradMode::ift,
                       bool toi_correction = false) {
    validate(m);

    // sizes and options, copied into every view
    head_ = ModelView<S>{};
    head_.grad_mode = static_cast<int>(grad_mode);
    head_.toi_correction = toi_correction ? 1 : 0;
    head_.nq = m.nq;
    head_.nv = m.nv;
    head_.nu = m.nu;
    head_.nbody = m.nbody;
    head_.njnt = m.njnt;
    head_.ngeom = m.ngeom;
    head_.timestep = S(m.opt_timestep);
    for (int k = 0; k < 3; ++k) head_.gravity[k] = S(m.opt_gravity[k]);
    head_.integrator = static_cast<int>(m.opt_integrator);
    head_.disableflags = m.opt_disableflags;
    head_.cone = m.opt_cone;
    head_.iterations = m.opt_iterations;
    head_.tolerance = S(m.opt_tolerance);
    head_.impratio = S(m.opt_impratio);

    // constants of the constraint model (MuJoCo's mj_setConst), computed at qpos0 in double
    ModelConstants constants;
    if (!smooth_only) constants = model_constants(m);
    head_.meaninertia = S(constants.meaninertia);
    constants.body_invweight0.resize(2 * m.nbody, 0.0);
    constants.dof_invweight0.resize(m.nv, 0.0);

    // the constraint rows the model can make: friction loss, limits, contacts
    const bool constraints = !smooth_only && !(m.opt_disableflags & kDisableConstraint);
    int nefc = 0;
    if (constraints && !(m.opt_disableflags & kDisableFrictionloss)) {
      for (int i = 0; i < m.nv; ++i) nefc += m.dof_frictionloss[i] > 0;
    }
    if (constraints && !(m.opt_disableflags & kDisableLimit)) {
      for (int j = 0; j < m.njnt; ++j) {
        if (!m.jnt_limited[j]) continue;
        const int type = m.jnt_type[j];
        nefc += type == static_cast<int>(JointType::ball) ? 1 : type == static_cast<int>(JointType::free) ? 0 : 2;
      }
    }
    std::vector<std::array<int, 2>> cand;
    if (constraints && !(m.opt_disableflags & kDisableContact)) cand = collision_candidates(m);
    std::vector<int> cand_geom1, cand_geom2, cand_condim;
    std::vector<double> cand_friction, cand_solref, cand_solimp, cand_margin, cand_gap;
    int ncon = 0;
    for (const auto& pair : cand) {
      const int g1 = pair[0], g2 = pair[1];
      const int condim = std::max(m.geom_condim[g1], m.geom_condim[g2]);
      const int ncontacts = max_contacts(m.geom_type[g1], m.geom_type[g2]);
      cand_geom1.push_back(g1);
      cand_geom2.push_back(g2);
      cand_condim.push_back(condim);
      // friction: the larger of each; solref, solimp: the mean (solmix 1 on both geoms), or the
      // smaller of each when either solref is in the direct (negative) form; margin: the larger
      double fr[3];
      for (int k = 0; k < 3; ++k) fr[k] = std::max(kMinFriction, std::max(m.geom_friction[3 * g1 + k], m.geom_friction[3 * g2 + k]));
      for (double f : {fr[0], fr[0], fr[1], fr[2], fr[2]}) cand_friction.push_back(f);
      const double* r1 = &m.geom_solref[2 * g1];
      const double* r2 = &m.geom_solref[2 * g2];
      for (int k = 0; k < 2; ++k) {
        cand_solref.push_back(r1[0] > 0 && r2[0] > 0 ? 0.5 * r1[k] + 0.5 * r2[k] : std::min(r1[k], r2[k]));
      }
      for (int k = 0; k < 5; ++k) {
        cand_solimp.push_back(0.5 * m.geom_solimp[5 * g1 + k] + 0.5 * m.geom_solimp[5 * g2 + k]);
      }
      cand_margin.push_back(std::max(m.geom_margin[g1], m.geom_margin[g2]));
      cand_gap.push_back(0.0);
      ncon += ncontacts;
      const int rows = condim == 1 ? 1 : (m.opt_cone == 0 ? 2 * (condim - 1) : condim);
      nefc += ncontacts * rows;
    }
    head_.ncand = static_cast<int>(cand.size());
    head_.ncon_max = ncon;
    head_.nefc_max = nefc;

    // friction loss rows take MuJoCo's default solref/solimp (no solreffriction in the loaders)
    std::vector<double> dof_solref, dof_solimp;
    for (int i = 0; i < m.nv; ++i) {
      for (double x : {0.02, 1.0}) dof_solref.push_back(x);
      for (double x : {0.9, 0.95, 0.001, 0.5, 2.0}) dof_solimp.push_back(x);
    }

    // body_rootid and body_subtreemass, derived once like MuJoCo's mjModel fields of those names
    std::vector<int> rootid(m.nbody, 0);
    for (int i = 1; i < m.nbody; ++i) rootid[i] = m.body_parentid[i] == 0 ? i : rootid[m.body_parentid[i]];
    std::vector<double> subtreemass(m.body_mass);
    for (int i = m.nbody - 1; i > 0; --i) subtreemass[m.body_parentid[i]] += subtreemass[i];

    // pack: record each array's offset in its block, then fill the blocks
    add(&off_.body_parentid, m.body_parentid);
    add(&off_.body_rootid, rootid);
    add(&off_.body_jntnum, m.body_jntnum);
    add(&off_.body_jntadr, m.body_jntadr);
    add(&off_.body_dofnum, m.body_dofnum);
    add(&off_.body_dofadr, m.body_dofadr);
    add(&off_.body_pos, m.body_pos);
    add(&off_.body_quat, m.body_quat);
    add(&off_.body_ipos, m.body_ipos);
    add(&off_.body_iquat, m.body_iquat);
    add(&off_.body_mass, m.body_mass);
    add(&off_.body_subtreemass, subtreemass);
    add(&off_.body_inertia, m.body_inertia);
    add(&off_.jnt_type, m.jnt_type);
    add(&off_.jnt_bodyid, m.jnt_bodyid);
    add(&off_.jnt_qposadr, m.jnt_qposadr);
    add(&off_.jnt_dofadr, m.jnt_dofadr);
    add(&off_.jnt_pos, m.jnt_pos);
    add(&off_.jnt_axis, m.jnt_axis);
    add(&off_.jnt_stiffness, m.jnt_stiffness);
    add(&off_.qpos0, m.qpos0);
    add(&off_.qpos_spring, m.qpos_spring);
    add(&off_.dof_bodyid, m.dof_bodyid);
    add(&off_.dof_jntid, m.dof_jntid);
    add(&off_.dof_parentid, m.dof_parentid);
    add(&off_.dof_armature, m.dof_armature);
    add(&off_.dof_damping, m.dof_damping);
    add(&off_.dof_frictionloss, m.dof_frictionloss);
    add(&off_.dof_solref, dof_solref);
    add(&off_.dof_solimp, dof_solimp);
    add(&off_.dof_invweight0, constants.dof_invweight0);
    add(&off_.body_invweight0, constants.body_invweight0);
    add(&off_.jnt_limited, m.jnt_limited);
    add(&off_.jnt_range, m.jnt_range);
    add(&off_.jnt_margin, m.jnt_margin);
    add(&off_.jnt_solref, m.jnt_solref);
    add(&off_.jnt_solimp, m.jnt_solimp);
    add(&off_.geom_type, m.geom_type);
    add(&off_.geom_bodyid, m.geom_bodyid);
    add(&off_.geom_pos, m.geom_pos);
    add(&off_.geom_quat, m.geom_quat);
    add(&off_.geom_size, m.geom_size);
    add(&off_.cand_geom1, cand_geom1);
    add(&off_.cand_geom2, cand_geom2);
    add(&off_.cand_condim, cand_condim);
    add(&off_.cand_friction, cand_friction);
    add(&off_.cand_solref, cand_solref);
    add(&off_.cand_solimp, cand_solimp);
    add(&off_.cand_margin, cand_margin);
    add(&off_.cand_gap, cand_gap);
    add(&off_.actuator_trnid, m.actuator_trnid);
    add(&off_.actuator_ctrllimited, m.actuator_ctrllimited);
    add(&off_.actuator_gear, m.actuator_gear);
    add(&off_.actuator_ctrlrange, m.actuator_ctrlrange);
  }

  /// The derivatives' treatment of the solver in every later view (GradMode; ift by default).
  void set_grad_mode(GradMode mode) { head_.grad_mode = static_cast<int>(mode); }

  /// A view of the host blocks; valid while this object lives.
  ModelView<S> view() const { return view_at(ints_.data(), reals_.data()); }

  /// A view of copies of int_block() and real_block() at `ints` and `reals` (e.g. on a device).
  ModelView<S> view_at(const int* ints, const S* reals) const {
    ModelView<S> v = head_;
    v.body_parentid = ints + off_.body_parentid;
    v.body_rootid = ints + off_.body_rootid;
    v.body_jntnum = ints + off_.body_jntnum;
    v.body_jntadr = ints + off_.body_jntadr;
    v.body_dofnum = ints + off_.body_dofnum;
    v.body_dofadr = ints + off_.body_dofadr;
    v.body_pos = reals + off_.body_pos;
    v.body_quat = reals + off_.body_quat;
    v.body_ipos = reals + off_.body_ipos;
    v.body_iquat = reals + off_.body_iquat;
    v.body_mass = reals + off_.body_mass;
    v.body_subtreemass = reals + off_.body_subtreemass;
    v.body_inertia = reals + off_.body_inertia;
    v.jnt_type = ints + off_.jnt_type;
    v.jnt_bodyid = ints + off_.jnt_bodyid;
    v.jnt_qposadr = ints + off_.jnt_qposadr;
    v.jnt_dofadr = ints + off_.jnt_dofadr;
    v.jnt_pos = reals + off_.jnt_pos;
    v.jnt_axis = reals + off_.jnt_axis;
    v.jnt_stiffness = reals + off_.jnt_stiffness;
    v.qpos0 = reals + off_.qpos0;
    v.qpos_spring = reals + off_.qpos_spring;
    v.dof_bodyid = ints + off_.dof_bodyid;
    v.dof_jntid = ints + off_.dof_jntid;
    v.dof_parentid = ints + off_.dof_parentid;
    v.dof_armature = reals + off_.dof_armature;
    v.dof_damping = reals + off_.dof_damping;
    v.dof_frictionloss = reals + off_.dof_frictionloss;
    v.dof_solref = reals + off_.dof_solref;
    v.dof_solimp = reals + off_.dof_solimp;
    v.dof_invweight0 = reals + off_.dof_invweight0;
    v.body_invweight0 = reals + off_.body_invweight0;
    v.jnt_limited = ints + off_.jnt_limited;
    v.jnt_range = reals + off_.jnt_range;
    v.jnt_margin = reals + off_.jnt_margin;
    v.jnt_solref = reals + off_.jnt_solref;
    v.jnt_solimp = reals + off_.jnt_solimp;
    v.geom_type = ints + off_.geom_type;
    v.geom_bodyid = ints + off_.geom_bodyid;
    v.geom_pos = reals + off_.geom_pos;
    v.geom_quat = reals + off_.geom_quat;
    v.geom_size = reals + off_.geom_size;
    v.cand_geom1 = ints + off_.cand_geom1;
    v.cand_geom2 = ints + off_.cand_geom2;
    v.cand_condim = ints + off_.cand_condim;
    v.cand_friction = reals + off_.cand_friction;
    v.cand_solref = reals + off_.cand_solref;
    v.cand_solimp = reals + off_.cand_solimp;
    v.cand_margin = reals + off_.cand_margin;
    v.cand_gap = reals + off_.cand_gap;
    v.actuator_trnid = ints + off_.actuator_trnid;
    v.actuator_ctrllimited = ints + off_.actuator_ctrllimited;
    v.actuator_gear = reals + off_.actuator_gear;
    v.actuator_ctrlrange = reals + off_.actuator_ctrlrange;
    return v;
  }

  const std::vector<int>& int_block() const { return ints_; }
  const std::vector<S>& real_block() const { return reals_; }

 private:
  struct Offsets {
    int body_parentid, body_rootid, body_jntnum, body_jntadr, body_dofnum, body_dofadr;
    int body_pos, body_quat, body_ipos, body_iquat, body_mass, body_subtreemass, body_inertia;
    int jnt_type, jnt_bodyid, jnt_qposadr, jnt_dofadr, jnt_pos, jnt_axis, jnt_stiffness;
    int qpos0, qpos_spring;
    int dof_bodyid, dof_jntid, dof_parentid, dof_armature, dof_damping;
    int dof_frictionloss, dof_solref, dof_solimp, dof_invweight0, body_invweight0;
    int jnt_limited, jnt_range, jnt_margin, jnt_solref, jnt_solimp;
    int geom_type, geom_bodyid, geom_pos, geom_quat, geom_size;
    int cand_geom1, cand_geom2, cand_condim, cand_friction, cand_solref, cand_solimp, cand_margin, cand_gap;
    int actuator_trnid, actuator_ctrllimited, actuator_gear, actuator_ctrlrange;
  };

  void add(int* offset, const std::vector<int>& a) {
    *offset = static_cast<int>(ints_.size());
    ints_.insert(ints_.end(), a.begin(), a.end());
  }
  void add(int* offset, const std::vector<double>& a) {
    *offset = static_cast<int>(reals_.size());
    for (double x : a) reals_.push_back(static_cast<S>(x));
  }

  // ------------------------------------------------------------------------------------------
  // validation at the boundary: every index the dynamics follows is in range and ordered

  static void check(bool ok, const Model& m, const std::string& what) {
    if (!ok) {
      throw InputError((m.source.empty() ? std::string("model") : m.source) + ": " + what);
    }
  }
  template <class T>
  static void check_size(const std::vector<T>& a, int n, const Model& m, const char* name) {
    check(static_cast<long long>(a.size()) == static_cast<long long>(n), m,
          std::string(name) + " has " + std::to_string(a.size()) + " entries, expected " +
              std::to_string(n));
  }

  static void validate(const Model& m) {
    check(m.nbody >= 1 && m.nq >= 0 && m.nv >= 0 && m.nu >= 0 && m.njnt >= 0, m,
          "sizes must be non-negative and include the world body");
    check_size(m.body_parentid, m.nbody, m, "body_parentid");
    check_size(m.body_jntnum, m.nbody, m, "body_jntnum");
    check_size(m.body_jntadr, m.nbody, m, "body_jntadr");
    check_size(m.body_dofnum, m.nbody, m, "body_dofnum");
    check_size(m.body_dofadr, m.nbody, m, "body_dofadr");
    check_size(m.body_pos, 3 * m.nbody, m, "body_pos");
    check_size(m.body_quat, 4 * m.nbody, m, "body_quat");
    check_size(m.body_ipos, 3 * m.nbody, m, "body_ipos");
    check_size(m.body_iquat, 4 * m.nbody, m, "body_iquat");
    check_size(m.body_mass, m.nbody, m, "body_mass");
    check_size(m.body_inertia, 3 * m.nbody, m, "body_inertia");
    check_size(m.jnt_type, m.njnt, m, "jnt_type");
    check_size(m.jnt_bodyid, m.njnt, m, "jnt_bodyid");
    check_size(m.jnt_qposadr, m.njnt, m, "jnt_qposadr");
    check_size(m.jnt_dofadr, m.njnt, m, "jnt_dofadr");
    check_size(m.jnt_pos, 3 * m.njnt, m, "jnt_pos");
    check_size(m.jnt_axis, 3 * m.njnt, m, "jnt_axis");
    check_size(m.jnt_stiffness, m.njnt, m, "jnt_stiffness");
    check_size(m.qpos0, m.nq, m, "qpos0");
    check_size(m.qpos_spring, m.nq, m, "qpos_spring");
    check_size(m.dof_bodyid, m.nv, m, "dof_bodyid");
    check_size(m.dof_jntid, m.nv, m, "dof_jntid");
    check_size(m.dof_parentid, m.nv, m, "dof_parentid");
    check_size(m.dof_armature, m.nv, m, "dof_armature");
    check_size(m.dof_damping, m.nv, m, "dof_damping");
    check_size(m.dof_frictionloss, m.nv, m, "dof_frictionloss");
    check_size(m.jnt_limited, m.njnt, m, "jnt_limited");
    check_size(m.jnt_range, 2 * m.njnt, m, "jnt_range");
    check_size(m.jnt_margin, m.njnt, m, "jnt_margin");
    check_size(m.jnt_solref, 2 * m.njnt, m, "jnt_solref");
    check_size(m.jnt_solimp, 5 * m.njnt, m, "jnt_solimp");
    check(m.ngeom >= 0, m, "ngeom must be non-negative");
    check_size(m.geom_type, m.ngeom, m, "geom_type");
    check_size(m.geom_bodyid, m.ngeom, m, "geom_bodyid");
    check_size(m.geom_contype, m.ngeom, m, "geom_contype");
    check_size(m.geom_conaffinity, m.ngeom, m, "geom_conaffinity");
    check_size(m.geom_condim, m.ngeom, m, "geom_condim");
    check_size(m.geom_pos, 3 * m.ngeom, m, "geom_pos");
    check_size(m.geom_quat, 4 * m.ngeom, m, "geom_quat");
    check_size(m.geom_size, 3 * m.ngeom, m, "geom_size");
    check_size(m.geom_friction, 3 * m.ngeom, m, "geom_friction");
    check_size(m.geom_solref, 2 * m.ngeom, m, "geom_solref");
    check_size(m.geom_solimp, 5 * m.ngeom, m, "geom_solimp");
    check_size(m.geom_margin, m.ngeom, m, "geom_margin");
    for (int g = 0; g < m.ngeom; ++g) {
      check(m.geom_bodyid[g] >= 0 && m.geom_bodyid[g] < m.nbody, m,
            "geom_bodyid[" + std::to_string(g) + "] out of range");
      check(m.geom_condim[g] == 1 || m.geom_condim[g] == 3, m,
            "geom " + std::to_string(g) + ": condim must be 1 (frictionless) or 3 (sliding friction); " +
                std::to_string(m.geom_condim[g]) + " is not supported");
    }
    check(m.opt_cone == 0 || m.opt_cone == 1, m, "opt_cone must be pyramidal (0) or elliptic (1)");
    check(m.opt_iterations >= 0, m, "opt_iterations must be non-negative");
    check(m.opt_tolerance >= 0, m, "opt_tolerance must be non-negative");
    check(m.opt_impratio > 0, m, "opt_impratio must be positive");
    check_size(m.actuator_trnid, m.nu, m, "actuator_trnid");
    check_size(m.actuator_gear, m.nu, m, "actuator_gear");
    check_size(m.actuator_ctrllimited, m.nu, m, "actuator_ctrllimited");
    check_size(m.actuator_ctrlrange, 2 * m.nu, m, "actuator_ctrlrange");
    check(m.opt_integrator == ModelIntegrator::euler || m.opt_integrator == ModelIntegrator::rk4, m,
          "opt_integrator must be euler (0) or rk4 (1)");

    // the tree: parents before children, so one forward and one backward sweep visit it all
    check(m.body_parentid[0] == 0, m, "body 0 (the world) must be its own parent");
    for (int i = 1; i < m.nbody; ++i) {
      check(m.body_parentid[i] >= 0 && m.body_parentid[i] < i, m,
            "body_parentid[" + std::to_string(i) + "] must be a body before it");
    }
    check(m.body_jntnum[0] == 0 && m.body_dofnum[0] == 0, m, "the world body cannot have joints");

    // joints: contiguous per body, coordinates and dofs in joint order
    int qposadr = 0, dofadr = 0;
    for (int j = 0; j < m.njnt; ++j) {
      const std::string at = "joint " + std::to_string(j) + ": ";
      const int type = m.jnt_type[j];
      check(type >= 0 && type <= 3, m, at + "jnt_type must be free, ball, slide or hinge");
      const int nq_j = type == 0 ? 7 : type == 1 ? 4 : 1;
      const int nv_j = type == 0 ? 6 : type == 1 ? 3 : 1;
      const int b = m.jnt_bodyid[j];
      check(b > 0 && b < m.nbody, m, at + "jnt_bodyid out of range");
      check(j >= m.body_jntadr[b] && j < m.body_jntadr[b] + m.body_jntnum[b], m,
            at + "not within its body's body_jntadr/body_jntnum");
      check(m.jnt_qposadr[j] == qposadr && m.jnt_dofadr[j] == dofadr, m,
            at + "jnt_qposadr/jnt_dofadr must follow the joints in order");
      check(qposadr + nq_j <= m.nq && dofadr + nv_j <= m.nv, m, at + "beyond nq or nv");
      // MuJoCo's documentation: a free joint makes a top-level body floating, as its only joint
      check(type != 0 || (m.body_parentid[b] == 0 && m.body_jntnum[b] == 1), m,
            at + "a free joint must be the only joint of a child of the world");
      for (int k = 0; k < nv_j; ++k) {
        check(m.dof_jntid[dofadr + k] == j && m.dof_bodyid[dofadr + k] == b, m,
              at + "dof_jntid/dof_bodyid disagree with the joint");
      }
      qposadr += nq_j;
      dofadr += nv_j;
    }
    check(qposadr == m.nq && dofadr == m.nv, m, "joints do not add up to nq and nv");
    for (int i = 0; i < m.nbody; ++i) {
      if (m.body_jntnum[i] > 0) {
        check(m.body_jntadr[i] >= 0 && m.body_jntadr[i] + m.body_jntnum[i] <= m.njnt, m,
              "body_jntadr/body_jntnum of body " + std::to_string(i) + " out of range");
      }
      int dofnum = 0;
      for (int j = m.body_jntadr[i]; j < m.body_jntadr[i] + m.body_jntnum[i]; ++j) {
        dofnum += m.jnt_type[j] == 0 ? 6 : m.jnt_type[j] == 1 ? 3 : 1;
      }
      check(m.body_dofnum[i] == dofnum, m,
            "body_dofnum of body " + std::to_string(i) + " is not its joints' dofs");
      if (dofnum > 0) {
        check(m.body_dofadr[i] == m.jnt_dofadr[m.body_jntadr[i]], m,
              "body_dofadr of body " + std::to_string(i) + " is not its first joint's dof");
      }
    }
    for (int k = 0; k < m.nv; ++k) {
      check(m.dof_parentid[k] >= -1 && m.dof_parentid[k] < k, m,
            "dof_parentid[" + std::to_string(k) + "] must be -1 or a dof before it");
    }

    // actuators: motors whose transmission is a hinge or slide joint (scalar gear)
    for (int a = 0; a < m.nu; ++a) {
      const std::string at = "actuator " + std::to_string(a) + ": ";
      const int j = m.actuator_trnid[a];
      check(j >= 0 && j < m.njnt, m, at + "actuator_trnid out of range");
      check(m.jnt_type[j] == static_cast<int>(JointType::hinge) ||
                m.jnt_type[j] == static_cast<int>(JointType::slide),
            m, at + "only hinge and slide joints can be actuated");
      check(!m.actuator_ctrllimited[a] || m.actuator_ctrlrange[2 * a] <= m.actuator_ctrlrange[2 * a + 1], m,
            at + "ctrlrange must have lo <= hi");
    }
  }

  ModelView<S> head_;
  Offsets off_{};
  std::vector<int> ints_;
  std::vector<S> reals_;
};

}  // namespace phydream
