#include "engine/model_compile.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include "engine/errors.h"

namespace phydream {

namespace {

// below this a mass, a moment or a length counts as zero (MuJoCo's mjMINVAL)
constexpr double kMinVal = 1e-15;
constexpr double kPi = 3.14159265358979323846;

using Vec3 = std::array<double, 3>;
using Quat = std::array<double, 4>;

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw InputError(where + ": " + what);
}

std::string num(double x) {
  std::ostringstream os;
  os.precision(10);
  os << x;
  return os.str();
}

// ---------------------------------------------------------------------------------------------
// small 3D algebra in double, host only

double dot3(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
double norm3(const Vec3& a) { return std::sqrt(dot3(a, a)); }
Vec3 cross3(const Vec3& a, const Vec3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}

// Hamilton product a * b
Quat qmul(const Quat& a, const Quat& b) {
  return {a[0] * b[0] - a[1] * b[1] - a[2] * b[2] - a[3] * b[3],
          a[0] * b[1] + a[1] * b[0] + a[2] * b[3] - a[3] * b[2],
          a[0] * b[2] - a[1] * b[3] + a[2] * b[0] + a[3] * b[1],
          a[0] * b[3] + a[1] * b[2] - a[2] * b[1] + a[3] * b[0]};
}

// Two normalisations, because MuJoCo 2.2.2 uses both and they differ in the last bit: its model
// compiler divides by the norm (frames given in the file), its engine multiplies by the reciprocal
// of the norm (the principal-axes iteration). Callers check for a zero norm.
Quat qnormalize_div(const Quat& q) {
  const double n = std::sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
  return {q[0] / n, q[1] / n, q[2] / n, q[3] / n};
}
Quat qnormalize_scaled(const Quat& q) {
  const double n = std::sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
  const double inv = 1.0 / n;
  return {q[0] * inv, q[1] * inv, q[2] * inv, q[3] * inv};
}
Vec3 normalize3(const Vec3& v) {
  const double n = norm3(v);
  return {v[0] / n, v[1] / n, v[2] / n};
}

// rotation matrix (row-major) of a unit quaternion: columns are the rotated frame's axes
void quat_to_mat(const Quat& q, double r[9]) {
  const double w = q[0], x = q[1], y = q[2], z = q[3];
  r[0] = w * w + x * x - y * y - z * z;
  r[1] = 2 * (x * y - w * z);
  r[2] = 2 * (x * z + w * y);
  r[3] = 2 * (x * y + w * z);
  r[4] = w * w - x * x + y * y - z * z;
  r[5] = 2 * (y * z - w * x);
  r[6] = 2 * (x * z - w * y);
  r[7] = 2 * (y * z + w * x);
  r[8] = w * w - x * x - y * y + z * z;
}

// the quaternion of the frame with unit axes x, y, z (the columns of its rotation matrix), not
// normalised: Shepperd's method, dividing by the largest of the four candidate components; the
// sign follows from the branch. Rounds as MuJoCo 2.2.2's compiler (the sums left to right).
Quat frame_to_quat(const Vec3& x, const Vec3& y, const Vec3& z) {
  Quat q;
  if (x[0] + y[1] + z[2] > 0) {
    q[0] = 0.5 * std::sqrt(1 + x[0] + y[1] + z[2]);
    q[1] = 0.25 * (y[2] - z[1]) / q[0];
    q[2] = 0.25 * (z[0] - x[2]) / q[0];
    q[3] = 0.25 * (x[1] - y[0]) / q[0];
  } else if (x[0] > y[1] && x[0] > z[2]) {
    q[1] = 0.5 * std::sqrt(1 + x[0] - y[1] - z[2]);
    q[0] = 0.25 * (y[2] - z[1]) / q[1];
    q[2] = 0.25 * (y[0] + x[1]) / q[1];
    q[3] = 0.25 * (z[0] + x[2]) / q[1];
  } else if (y[1] > z[2]) {
    q[2] = 0.5 * std::sqrt(1 - x[0] + y[1] - z[2]);
    q[0] = 0.25 * (z[0] - x[2]) / q[2];
    q[1] = 0.25 * (y[0] + x[1]) / q[2];
    q[3] = 0.25 * (z[1] + y[2]) / q[2];
  } else {
    q[3] = 0.5 * std::sqrt(1 - x[0] - y[1] + z[2]);
    q[0] = 0.25 * (x[1] - y[0]) / q[3];
    q[1] = 0.25 * (z[0] + x[2]) / q[3];
    q[2] = 0.25 * (z[1] + y[2]) / q[3];
  }
  return q;
}

// the shortest rotation taking +z to the unit vector v, not normalised. Below a sine of 1e-7 (v
// within 1e-7 rad of +z or -z) MuJoCo 2.2.2 snaps to the identity or to the half turn about x
// (measured); so does this.
Quat z_to_quat(const Vec3& v) {
  Vec3 axis = {-v[1], v[0], 0.0};  // z x v
  double s = norm3(axis);
  if (s < 1e-7) {
    axis = {1, 0, 0};
    s = 0;
  } else {
    axis = {axis[0] / s, axis[1] / s, axis[2] / s};
  }
  const double angle = std::atan2(s, v[2]);
  const double sh = std::sin(angle / 2);
  return {std::cos(angle / 2), sh * axis[0], sh * axis[1], sh * axis[2]};
}

int joint_nq(JointType t) { return t == JointType::free ? 7 : t == JointType::ball ? 4 : 1; }
int joint_nv(JointType t) { return t == JointType::free ? 6 : t == JointType::ball ? 3 : 1; }

// pose of a geom or site: pos and quat, and the size completed by `fromto`
struct Placement {
  Vec3 pos;
  Quat quat;
  Vec3 size;
};

Placement place(const std::string& where, GeomType type, const Vec3& size, const Vec3& pos,
                const OrientationSpec& o, bool has_fromto, const std::array<double, 6>& fromto,
                const std::string& eulerseq) {
  Placement p{pos, {1, 0, 0, 0}, size};
  if (!has_fromto) {
    p.quat = orientation_quat(o, eulerseq, where);
    return p;
  }
  if (type != GeomType::capsule && type != GeomType::cylinder && type != GeomType::box &&
      type != GeomType::ellipsoid) {
    fail(where, std::string("fromto needs a capsule, cylinder, box or ellipsoid, not a ") +
                    geom_type_name(type));
  }
  if (o.kind != OrientationSpec::Kind::none) {
    fail(where, "fromto sets the orientation; give either fromto or an orientation");
  }
  const Vec3 from = {fromto[0], fromto[1], fromto[2]};
  const Vec3 to = {fromto[3], fromto[4], fromto[5]};
  Vec3 dir = {from[0] - to[0], from[1] - to[1], from[2] - to[2]};
  const double length = norm3(dir);
  if (length < kMinVal) fail(where, "fromto: the two points coincide");
  dir = {dir[0] / length, dir[1] / length, dir[2] / length};
  p.pos = {(from[0] + to[0]) / 2, (from[1] + to[1]) / 2, (from[2] + to[2]) / 2};
  p.quat = z_to_quat(dir);
  if (type == GeomType::capsule || type == GeomType::cylinder) {
    p.size[1] = length / 2;
  } else {
    p.size[1] = p.size[0];
    p.size[2] = length / 2;
  }
  return p;
}

void check_geom_size(const GeomSpec& g, const Vec3& s) {
  auto positive = [&](int n) {
    for (int k = 0; k < n; ++k) {
      if (!(s[k] > 0)) {
        fail(g.where, std::string("a ") + geom_type_name(g.type) + " needs size[" +
                          std::to_string(k) + "] > 0, got size " + num(s[0]) + " " + num(s[1]) +
                          " " + num(s[2]));
      }
    }
  };
  switch (g.type) {
    case GeomType::plane:
      if (!(s[0] >= 0 && s[1] >= 0 && s[2] > 0)) {
        fail(g.where,
             "a plane needs size[0], size[1] >= 0 (half-extents, 0: infinite) and "
             "size[2] > 0 (grid spacing)");
      }
      break;
    case GeomType::sphere:
      positive(1);
      break;
    case GeomType::capsule:
    case GeomType::cylinder:
      positive(2);
      break;
    case GeomType::box:
    case GeomType::ellipsoid:
      positive(3);
      break;
  }
}

// ---------------------------------------------------------------------------------------------
// the compiler

class Compiler {
 public:
  explicit Compiler(const ModelSpec& spec) : spec_(spec) {}

  Model run() {
    m_.name = spec_.name;
    m_.source = spec_.source;
    options();
    collect(&spec_.world, -1);
    m_.nbody = static_cast<int>(bodies_.size());
    for (int b = 0; b < m_.nbody; ++b) body(b);
    for (int b = 0; b < m_.nbody; ++b) joints(b);
    for (int b = 0; b < m_.nbody; ++b) geoms_and_sites(b);
    m_.body_mass.assign(m_.nbody, 0.0);
    m_.body_ipos.assign(3 * m_.nbody, 0.0);
    m_.body_iquat.assign(4 * m_.nbody, 0.0);
    m_.body_inertia.assign(3 * m_.nbody, 0.0);
    m_.body_iquat[0] = 1;  // the world's: mass 0 at its origin
    for (int b = 1; b < m_.nbody; ++b) inertia(b);
    mass_bounds_and_scaling();
    for (int b = 1; b < m_.nbody; ++b) check_inertia(b);
    actuators();
    keys();
    unique_names();
    return m_;
  }

 private:
  const ModelSpec& spec_;
  Model m_;
  std::vector<const BodySpec*> bodies_;  // pre-order
  std::vector<int> parent_;              // (nbody)
  std::vector<Placement> geom_place_;    // (ngeom)
  std::vector<const GeomSpec*> geom_spec_;

  void options() {
    const OptionSpec& o = spec_.option;
    const std::string where = spec_.source + ": <option>";
    if (!(std::isfinite(o.timestep) && o.timestep > 0)) {
      fail(where, "timestep must be a finite number > 0, got " + num(o.timestep));
    }
    if (o.iterations < 0) fail(where, "iterations must be >= 0");
    if (!(o.tolerance >= 0)) fail(where, "tolerance must be >= 0");
    if (!(o.impratio > 0)) fail(where, "impratio must be > 0");
    m_.opt_timestep = o.timestep;
    m_.opt_gravity = o.gravity;
    m_.opt_integrator = o.integrator;
    m_.opt_cone = o.cone;
    m_.opt_iterations = o.iterations;
    m_.opt_tolerance = o.tolerance;
    m_.opt_impratio = o.impratio;
    m_.opt_disableflags = o.disableflags;
  }

  void collect(const BodySpec* b, int parent) {
    const int id = static_cast<int>(bodies_.size());
    bodies_.push_back(b);
    parent_.push_back(parent < 0 ? 0 : parent);
    for (const BodySpec& c : b->children) collect(&c, id);
  }

  void body(int b) {
    const BodySpec& s = *bodies_[b];
    m_.body_parentid.push_back(parent_[b]);
    m_.body_name.push_back(b == 0 ? std::string("world") : s.name);
    const Quat q = b == 0 ? Quat{1, 0, 0, 0}
                          : orientation_quat(s.orientation, spec_.compiler.eulerseq, s.where);
    for (int k = 0; k < 3; ++k) m_.body_pos.push_back(b == 0 ? 0.0 : s.pos[k]);
    for (int k = 0; k < 4; ++k) m_.body_quat.push_back(q[k]);
  }

  void joints(int b) {
    const BodySpec& s = *bodies_[b];
    const int first_jnt = m_.njnt;
    const int first_dof = m_.nv;
    bool after_ball = false;
    for (const JointSpec& j : s.joints) {
      if (b == 0) fail(j.where, "the world body cannot have joints");
      const int id = m_.njnt++;
      if (j.type == JointType::free) {
        if (parent_[b] != 0) {
          fail(j.where, "a free joint can only be used in a body whose parent is the world");
        }
        if (s.joints.size() != 1) fail(j.where, "a free joint must be the only joint of its body");
      }
      if (after_ball && (j.type == JointType::hinge || j.type == JointType::ball)) {
        fail(j.where,
             "a ball joint cannot be followed by a rotation (hinge or ball) in the same body");
      }
      if (j.type == JointType::ball) after_ball = true;

      // axis: unit, in the body frame; ball and free joints keep MuJoCo's (0 0 1)
      Vec3 axis = {0, 0, 1};
      if (j.type == JointType::hinge || j.type == JointType::slide) {
        const double n = norm3(j.axis);
        if (n < kMinVal) fail(j.where, "the joint axis has zero length");
        axis = {j.axis[0] / n, j.axis[1] / n, j.axis[2] / n};
      }

      // limits: explicit, or "auto" following compiler autolimits
      bool limited = j.limited == Tristate::yes;
      if (j.limited == Tristate::automatic && j.range_given) {
        if (!spec_.compiler.autolimits) {
          fail(j.where,
               "the joint has a range but no `limited`: write limited=\"true\" or "
               "\"false\", set compiler autolimits=\"true\", or remove the range "
               "(MuJoCo 2.2.2 refuses it too)");
        }
        limited = true;
      }
      if (limited && !(j.range[0] < j.range[1])) {
        fail(j.where, "a limited joint needs range[0] < range[1], got " + num(j.range[0]) + " " +
                          num(j.range[1]));
      }
      for (double x : {j.stiffness, j.damping, j.armature, j.frictionloss}) {
        if (!(x >= 0)) fail(j.where, "stiffness, damping, armature and frictionloss must be >= 0");
      }

      m_.jnt_type.push_back(static_cast<int>(j.type));
      m_.jnt_bodyid.push_back(b);
      m_.jnt_qposadr.push_back(m_.nq);
      m_.jnt_dofadr.push_back(m_.nv);
      for (int k = 0; k < 3; ++k) m_.jnt_pos.push_back(j.pos[k]);
      for (int k = 0; k < 3; ++k) m_.jnt_axis.push_back(axis[k]);
      m_.jnt_limited.push_back(limited ? 1 : 0);
      m_.jnt_range.push_back(j.range[0]);
      m_.jnt_range.push_back(j.range[1]);
      m_.jnt_stiffness.push_back(j.stiffness);
      m_.jnt_margin.push_back(j.margin);
      for (double x : j.solref) m_.jnt_solref.push_back(x);
      for (double x : j.solimp) m_.jnt_solimp.push_back(x);
      m_.jnt_name.push_back(j.name);

      // reference and spring configurations
      switch (j.type) {
        case JointType::hinge:
        case JointType::slide:
          m_.qpos0.push_back(j.ref);
          m_.qpos_spring.push_back(j.springref);
          break;
        case JointType::ball:
          for (double x : {1.0, 0.0, 0.0, 0.0}) {
            m_.qpos0.push_back(x);
            m_.qpos_spring.push_back(x);
          }
          break;
        case JointType::free: {
          const Quat q = orientation_quat(s.orientation, spec_.compiler.eulerseq, s.where);
          for (int k = 0; k < 3; ++k) {
            m_.qpos0.push_back(s.pos[k]);
            m_.qpos_spring.push_back(s.pos[k]);
          }
          for (int k = 0; k < 4; ++k) {
            m_.qpos0.push_back(q[k]);
            m_.qpos_spring.push_back(q[k]);
          }
          break;
        }
      }

      // dofs: each follows the previous dof of its body, or the last dof of the nearest ancestor
      for (int k = 0; k < joint_nv(j.type); ++k) {
        int parent = m_.nv > first_dof ? m_.nv - 1 : last_dof_above(b);
        m_.dof_bodyid.push_back(b);
        m_.dof_jntid.push_back(id);
        m_.dof_parentid.push_back(parent);
        m_.dof_armature.push_back(j.armature);
        m_.dof_damping.push_back(j.damping);
        m_.dof_frictionloss.push_back(j.frictionloss);
        ++m_.nv;
      }
      m_.nq += joint_nq(j.type);
      if (m_.nv - first_dof > 6) fail(j.where, "a body cannot have more than 6 degrees of freedom");
    }
    const int njnt = m_.njnt - first_jnt, ndof = m_.nv - first_dof;
    m_.body_jntnum.push_back(njnt);
    m_.body_jntadr.push_back(njnt > 0 ? first_jnt : -1);
    m_.body_dofnum.push_back(ndof);
    m_.body_dofadr.push_back(ndof > 0 ? first_dof : -1);
  }

  // the last dof of the nearest ancestor of b that has dofs, -1 if none
  int last_dof_above(int b) const {
    for (int a = parent_[b]; a > 0; a = parent_[a]) {
      if (m_.body_dofnum[a] > 0) return m_.body_dofadr[a] + m_.body_dofnum[a] - 1;
    }
    return -1;
  }

  // static: neither the body nor an ancestor has joints
  bool is_static(int b) const {
    for (int a = b; a > 0; a = parent_[a]) {
      if (m_.body_jntnum[a] > 0) return false;
    }
    return true;
  }

  void geoms_and_sites(int b) {
    const BodySpec& s = *bodies_[b];
    for (const GeomSpec& g : s.geoms) {
      const Placement p = place(g.where, g.type, g.size, g.pos, g.orientation, g.has_fromto,
                                g.fromto, spec_.compiler.eulerseq);
      check_geom_size(g, p.size);
      if (g.type == GeomType::plane && !is_static(b)) {
        fail(g.where, "a plane is only allowed in the world or a static body (no joints above it)");
      }
      if (g.condim != 1 && g.condim != 3 && g.condim != 4 && g.condim != 6) {
        fail(g.where, "condim must be 1, 3, 4 or 6, got " + std::to_string(g.condim));
      }
      if (g.mass && !(*g.mass >= 0)) fail(g.where, "mass must be >= 0");
      if (!(g.density >= 0)) fail(g.where, "density must be >= 0");
      m_.geom_type.push_back(static_cast<int>(g.type));
      m_.geom_bodyid.push_back(b);
      m_.geom_contype.push_back(g.contype);
      m_.geom_conaffinity.push_back(g.conaffinity);
      m_.geom_condim.push_back(g.condim);
      for (int k = 0; k < 3; ++k) m_.geom_pos.push_back(p.pos[k]);
      for (int k = 0; k < 4; ++k) m_.geom_quat.push_back(p.quat[k]);
      for (int k = 0; k < 3; ++k) m_.geom_size.push_back(p.size[k]);
      for (double x : g.friction) m_.geom_friction.push_back(x);
      for (double x : g.solref) m_.geom_solref.push_back(x);
      for (double x : g.solimp) m_.geom_solimp.push_back(x);
      m_.geom_margin.push_back(g.margin);
      m_.geom_name.push_back(g.name);
      geom_place_.push_back(p);
      geom_spec_.push_back(&g);
      ++m_.ngeom;
    }
    for (const SiteSpec& t : s.sites) {
      Placement p = place(t.where, t.type, t.size, t.pos, t.orientation, t.has_fromto, t.fromto,
                          spec_.compiler.eulerseq);
      // MuJoCo 2.2.2 normalises a site's frame once more than a geom's, unless it was given as
      // a quat (measured)
      if (t.orientation.kind != OrientationSpec::Kind::quat) p.quat = qnormalize_div(p.quat);
      m_.site_type.push_back(static_cast<int>(t.type));
      m_.site_bodyid.push_back(b);
      for (int k = 0; k < 3; ++k) m_.site_pos.push_back(p.pos[k]);
      for (int k = 0; k < 4; ++k) m_.site_quat.push_back(p.quat[k]);
      for (int k = 0; k < 3; ++k) m_.site_size.push_back(p.size[k]);
      m_.site_name.push_back(t.name);
      ++m_.nsite;
    }
  }

  // body mass, centre of mass, principal moments and frame
  void inertia(int b) {
    const BodySpec& s = *bodies_[b];
    const CompilerSpec& c = spec_.compiler;
    const bool from_geoms = c.inertiafromgeom == Tristate::yes ||
                            (c.inertiafromgeom == Tristate::automatic && !s.inertial.present);
    Vec3 ipos = {0, 0, 0}, moments = {0, 0, 0};
    Quat iquat = {1, 0, 0, 0};
    double mass = 0;

    if (from_geoms) {
      // the geoms of this body that count for inertia
      std::vector<int> ids;
      for (int g = 0; g < m_.ngeom; ++g) {
        const int group = geom_spec_[g]->group;
        if (m_.geom_bodyid[g] == b && group >= c.inertiagrouprange[0] &&
            group <= c.inertiagrouprange[1]) {
          ids.push_back(g);
        }
      }
      if (ids.size() == 1) {
        // one geom: its own frame and moments
        const Placement& p = geom_place_[ids[0]];
        geom_mass_properties(*geom_spec_[ids[0]], p.size, &mass, moments.data());
        ipos = p.pos;
        iquat = p.quat;
      } else if (ids.size() > 1) {
        // several: combine about their centre of mass and diagonalise
        std::vector<double> gm(ids.size());
        std::vector<Vec3> gi(ids.size());
        for (std::size_t k = 0; k < ids.size(); ++k) {
          const int g = ids[k];
          geom_mass_properties(*geom_spec_[g], geom_place_[g].size, &gm[k], gi[k].data());
          mass += gm[k];
          for (int a = 0; a < 3; ++a) ipos[a] += gm[k] * geom_place_[g].pos[a];
        }
        if (mass < kMinVal) {
          fail(s.where, "the body's geoms have no mass, so its centre of mass is undefined");
        }
        for (int a = 0; a < 3; ++a) ipos[a] /= mass;
        // the inertia tensor about the centre of mass, as 6 entries xx yy zz xy xz yz: each
        // geom's R diag(I) R^T plus its parallel-axis term m (|d|^2 E - d d^T), summed in
        // MuJoCo 2.2.2's order and grouping (with two equal moments the principal frame hangs
        // on the last bits of this sum)
        double sum[6] = {0, 0, 0, 0, 0, 0};
        for (std::size_t k = 0; k < ids.size(); ++k) {
          const Placement& p = geom_place_[ids[k]];
          double r[9];
          quat_to_mat(p.quat, r);
          const double* I = gi[k].data();
          // entry (i, j) of R diag(I) R^T, summed over the geom's axes as (R_ia I_a) R_ja
          auto rotated = [&](int i, int j) {
            return r[3 * i] * I[0] * r[3 * j] + r[3 * i + 1] * I[1] * r[3 * j + 1] +
                   r[3 * i + 2] * I[2] * r[3 * j + 2];
          };
          const double rot[6] = {rotated(0, 0), rotated(1, 1), rotated(2, 2),
                                 rotated(1, 0), rotated(2, 0), rotated(2, 1)};
          const double m = gm[k];
          const Vec3 d = {p.pos[0] - ipos[0], p.pos[1] - ipos[1], p.pos[2] - ipos[2]};
          const double shift[6] = {m * (d[1] * d[1] + d[2] * d[2]), m * (d[0] * d[0] + d[2] * d[2]),
                                   m * (d[0] * d[0] + d[1] * d[1]), -m * d[0] * d[1],
                                   -m * d[0] * d[2],                -m * d[1] * d[2]};
          for (int e = 0; e < 6; ++e) sum[e] = sum[e] + rot[e] + shift[e];
        }
        const double full[9] = {sum[0], sum[3], sum[4], sum[3], sum[1],
                                sum[5], sum[4], sum[5], sum[2]};
        double q[4];
        inertia_principal_axes(full, moments.data(), q);
        iquat = {q[0], q[1], q[2], q[3]};
      }
    } else if (s.inertial.present) {
      const InertialSpec& in = s.inertial;
      if (!(in.mass >= 0)) fail(in.where, "mass must be >= 0");
      if (in.has_diaginertia == in.has_fullinertia) {
        fail(in.where, "give exactly one of diaginertia and fullinertia");
      }
      mass = in.mass;
      ipos = in.pos;
      if (in.has_diaginertia) {
        moments = in.diaginertia;
        iquat = orientation_quat(in.orientation, c.eulerseq, in.where);
      } else {
        if (in.orientation.kind != OrientationSpec::Kind::none) {
          fail(in.where, "fullinertia is in the body frame; it cannot have an orientation too");
        }
        const auto& f = in.fullinertia;
        const double full[9] = {f[0], f[3], f[4], f[3], f[1], f[5], f[4], f[5], f[2]};
        double q[4];
        inertia_principal_axes(full, moments.data(), q);
        iquat = {q[0], q[1], q[2], q[3]};
      }
      for (double x : moments) {
        if (!(x >= 0)) fail(in.where, "the moments of inertia must be >= 0");
      }
    }
    m_.body_mass[b] = mass;
    for (int k = 0; k < 3; ++k) m_.body_ipos[3 * b + k] = ipos[k];
    for (int k = 0; k < 4; ++k) m_.body_iquat[4 * b + k] = iquat[k];
    for (int k = 0; k < 3; ++k) m_.body_inertia[3 * b + k] = moments[k];
  }

  void mass_bounds_and_scaling() {
    const CompilerSpec& c = spec_.compiler;
    const std::string where = spec_.source + ": <compiler>";
    if (!(c.boundmass >= 0) || !(c.boundinertia >= 0)) {
      fail(where, "boundmass and boundinertia must be >= 0");
    }
    for (int b = 1; b < m_.nbody; ++b) {
      m_.body_mass[b] = std::max(m_.body_mass[b], c.boundmass);
      for (int k = 0; k < 3; ++k) {
        m_.body_inertia[3 * b + k] = std::max(m_.body_inertia[3 * b + k], c.boundinertia);
      }
    }
    if (c.settotalmass > 0) {
      double total = 0;
      for (int b = 1; b < m_.nbody; ++b) total += m_.body_mass[b];
      if (total < kMinVal) fail(where, "settotalmass: the model has no mass to rescale");
      const double scale = c.settotalmass / total;
      for (int b = 1; b < m_.nbody; ++b) {
        m_.body_mass[b] *= scale;
        for (int k = 0; k < 3; ++k) m_.body_inertia[3 * b + k] *= scale;
      }
    }
  }

  void check_inertia(int b) {
    const BodySpec& s = *bodies_[b];
    const double* I = &m_.body_inertia[3 * b];
    if (I[0] + I[1] < I[2] || I[0] + I[2] < I[1] || I[1] + I[2] < I[0]) {
      fail(s.inertial.present ? s.inertial.where : s.where,
           "the principal moments " + num(I[0]) + " " + num(I[1]) + " " + num(I[2]) +
               " violate the triangle inequality A + B >= C (no rigid body has them)");
    }
    // a body that moves needs mass and moments, its own or those of a child welded to it
    if (m_.body_jntnum[b] == 0) return;
    auto solid = [&](int i) {
      const double* J = &m_.body_inertia[3 * i];
      return m_.body_mass[i] >= kMinVal && J[0] >= kMinVal && J[1] >= kMinVal && J[2] >= kMinVal;
    };
    if (solid(b)) return;
    for (int c = b + 1; c < m_.nbody; ++c) {
      if (m_.body_parentid[c] == b && m_.body_jntnum[c] == 0 && solid(c)) return;
    }
    fail(s.where, "a body with joints needs mass and moments of inertia > 1e-15 (got mass " +
                      num(m_.body_mass[b]) + ", moments " + num(I[0]) + " " + num(I[1]) + " " +
                      num(I[2]) + "); add geoms or an <inertial>");
  }

  void actuators() {
    std::map<std::string, int> joint_ids;
    for (int j = 0; j < m_.njnt; ++j) {
      if (!m_.jnt_name[j].empty()) joint_ids.emplace(m_.jnt_name[j], j);
    }
    for (const ActuatorSpec& a : spec_.actuators) {
      if (a.joint.empty()) fail(a.where, "a motor needs a joint");
      const auto it = joint_ids.find(a.joint);
      if (it == joint_ids.end()) fail(a.where, "unknown joint '" + a.joint + "'");
      const int j = it->second;
      const auto type = static_cast<JointType>(m_.jnt_type[j]);
      if (type != JointType::hinge && type != JointType::slide) {
        fail(a.where, "joint '" + a.joint + "' is a " + joint_type_name(type) +
                          " joint; PhyDream's motors drive hinge and slide joints only");
      }
      bool limited = a.ctrllimited == Tristate::yes;
      if (a.ctrllimited == Tristate::automatic && a.ctrlrange_given) {
        if (!spec_.compiler.autolimits) {
          fail(a.where,
               "the motor has a ctrlrange but no `ctrllimited`: write ctrllimited=\"true\" "
               "or \"false\", set compiler autolimits=\"true\", or remove the ctrlrange "
               "(MuJoCo 2.2.2 refuses it too)");
        }
        limited = true;
      }
      if (limited && !(a.ctrlrange[0] < a.ctrlrange[1])) {
        fail(a.where, "a limited motor needs ctrlrange[0] < ctrlrange[1], got " +
                          num(a.ctrlrange[0]) + " " + num(a.ctrlrange[1]));
      }
      m_.actuator_trnid.push_back(j);
      m_.actuator_gear.push_back(a.gear);
      m_.actuator_ctrllimited.push_back(limited ? 1 : 0);
      m_.actuator_ctrlrange.push_back(a.ctrlrange[0]);
      m_.actuator_ctrlrange.push_back(a.ctrlrange[1]);
      m_.actuator_name.push_back(a.name);
      ++m_.nu;
    }
  }

  void keys() {
    for (const KeySpec& k : spec_.keys) {
      auto take = [&](const std::optional<std::vector<double>>& given, int n, const char* what,
                      const std::vector<double>& fallback, std::vector<double>* out) {
        if (given && static_cast<int>(given->size()) != n) {
          fail(k.where, std::string(what) + " has " + std::to_string(given->size()) +
                            " numbers; the model needs " + std::to_string(n));
        }
        const std::vector<double>& v = given ? *given : fallback;
        out->insert(out->end(), v.begin(), v.end());
      };
      m_.key_time.push_back(k.time);
      take(k.qpos, m_.nq, "qpos", m_.qpos0, &m_.key_qpos);
      take(k.qvel, m_.nv, "qvel", std::vector<double>(m_.nv, 0.0), &m_.key_qvel);
      take(k.ctrl, m_.nu, "ctrl", std::vector<double>(m_.nu, 0.0), &m_.key_ctrl);
      m_.key_name.push_back(k.name);
      ++m_.nkey;
    }
  }

  // names are optional, but two objects of one kind cannot share one
  void unique_names() {
    auto check = [&](const char* kind, const std::vector<std::string>& names, auto where_of) {
      std::map<std::string, int> seen;
      for (int i = 0; i < static_cast<int>(names.size()); ++i) {
        if (names[i].empty()) continue;
        const auto [it, fresh] = seen.emplace(names[i], i);
        if (!fresh) fail(where_of(i), std::string("repeated ") + kind + " name '" + names[i] + "'");
      }
    };
    std::vector<const JointSpec*> joints;
    std::vector<const SiteSpec*> sites;
    for (const BodySpec* b : bodies_) {
      for (const JointSpec& j : b->joints) joints.push_back(&j);
      for (const SiteSpec& s : b->sites) sites.push_back(&s);
    }
    check("body", m_.body_name, [&](int i) { return bodies_[i]->where; });
    check("joint", m_.jnt_name, [&](int i) { return joints[i]->where; });
    check("geom", m_.geom_name, [&](int i) { return geom_spec_[i]->where; });
    check("site", m_.site_name, [&](int i) { return sites[i]->where; });
    check("actuator", m_.actuator_name, [&](int i) { return spec_.actuators[i].where; });
    check("key", m_.key_name, [&](int i) { return spec_.keys[i].where; });
  }
};

}  // namespace

// ---------------------------------------------------------------------------------------------

std::array<double, 4> orientation_quat(const OrientationSpec& o, const std::string& eulerseq,
                                       const std::string& where) {
  // Each form rounds as MuJoCo 2.2.2's compiler, measured against mj_loadXML: a quat, euler
  // angles and xyaxes end with one division by the norm; axisangle and zaxis are used as
  // computed (unit up to rounding, never normalised again).
  using K = OrientationSpec::Kind;
  const auto& v = o.v;
  switch (o.kind) {
    case K::none:
      return {1, 0, 0, 0};
    case K::quat: {
      const double n = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2] + v[3] * v[3]);
      if (n < kMinVal) fail(where, "quat has zero length");
      return qnormalize_div({v[0], v[1], v[2], v[3]});
    }
    case K::axisangle: {
      const Vec3 axis = {v[0], v[1], v[2]};
      if (norm3(axis) < kMinVal) fail(where, "axisangle has a zero-length axis");
      const Vec3 u = normalize3(axis);
      const double s = std::sin(v[3] / 2);
      return {std::cos(v[3] / 2), s * u[0], s * u[1], s * u[2]};
    }
    case K::euler: {
      // lowercase: about the moving (rotated) axis, post-multiplied; uppercase: fixed axis;
      // normalised after every rotation and once more at the end
      Quat q = {1, 0, 0, 0};
      for (int k = 0; k < 3; ++k) {
        const char c = eulerseq[k];
        const int axis = (c == 'x' || c == 'X') ? 0 : (c == 'y' || c == 'Y') ? 1 : 2;
        Quat r = {std::cos(v[k] / 2), 0, 0, 0};
        r[axis + 1] = std::sin(v[k] / 2);
        q = qnormalize_div((c >= 'a' && c <= 'z') ? qmul(q, r) : qmul(r, q));
      }
      return qnormalize_div(q);
    }
    case K::xyaxes: {
      // x normalised, y made orthogonal to it and normalised, z = x cross y normalised
      Vec3 x = {v[0], v[1], v[2]}, y = {v[3], v[4], v[5]};
      if (norm3(x) < kMinVal) fail(where, "xyaxes: the x axis has zero length");
      x = normalize3(x);
      const double d = dot3(x, y);
      y = {y[0] - d * x[0], y[1] - d * x[1], y[2] - d * x[2]};
      if (norm3(y) < kMinVal) fail(where, "xyaxes: the y axis is parallel to the x axis");
      y = normalize3(y);
      const Vec3 z = normalize3(cross3(x, y));
      return qnormalize_div(frame_to_quat(x, y, z));
    }
    case K::zaxis: {
      const Vec3 z = {v[0], v[1], v[2]};
      if (norm3(z) < kMinVal) fail(where, "zaxis has zero length");
      return z_to_quat(normalize3(z));
    }
  }
  return {1, 0, 0, 0};
}

void inertia_principal_axes(const double mat[9], double moments[3], double quat[4]) {
  // below this an off-diagonal entry counts as zero, or a rotation as the identity
  constexpr double eps = 1e-12;
  Quat q = {1, 0, 0, 0};
  double d[9];
  for (int iter = 0; iter < 500; ++iter) {
    // d = R^T mat R in the current frame
    double r[9], t[9];
    quat_to_mat(q, r);
    for (int i = 0; i < 3; ++i) {
      for (int j = 0; j < 3; ++j) {
        double s = 0;
        for (int a = 0; a < 3; ++a) s += r[3 * a + i] * mat[3 * a + j];
        t[3 * i + j] = s;
      }
    }
    for (int i = 0; i < 3; ++i) {
      for (int j = 0; j < 3; ++j) {
        double s = 0;
        for (int a = 0; a < 3; ++a) s += t[3 * i + a] * r[3 * a + j];
        d[3 * i + j] = s;
      }
    }
    moments[0] = d[0];
    moments[1] = d[4];
    moments[2] = d[8];

    // the largest off-diagonal entry (row, col) and the axis the rotation turns about
    int row, col, axis;
    if (std::fabs(d[1]) > std::fabs(d[2]) && std::fabs(d[1]) > std::fabs(d[5])) {
      row = 0, col = 1, axis = 2;
    } else if (std::fabs(d[2]) > std::fabs(d[5])) {
      row = 0, col = 2, axis = 1;
    } else {
      row = 1, col = 2, axis = 0;
    }
    const double off = d[3 * row + col];
    if (std::fabs(off) < eps) break;

    // Jacobi rotation zeroing it (Golub & Van Loan, symmetric Schur 2x2): tangent t, cosine c
    const double tau = (d[4 * col] - d[4 * row]) / (2 * off);
    const double tan =
        tau >= 0 ? 1 / (tau + std::sqrt(1 + tau * tau)) : -1 / (-tau + std::sqrt(1 + tau * tau));
    const double c = 1 / std::sqrt(1 + tan * tan);
    if (c > 1 - eps) break;

    // the same rotation as a quaternion about `axis`; its angle's sign depends on the axis
    // because the (row, col) plane of the y axis is (z, x), not (x, z)
    const double half_sin = std::sqrt(0.5 - 0.5 * c);
    const double sign = (axis == 1) == (tan >= 0) ? 1.0 : -1.0;
    Quat dq = {0, 0, 0, 0};
    dq[axis + 1] = sign * half_sin;
    dq[0] = std::sqrt(1 - half_sin * half_sin);
    q = qnormalize_scaled(qmul(q, qnormalize_scaled(dq)));
  }

  // sort decreasing (bubble passes 0, 1, 0); a swap of axes j, j+1 is a quarter turn about the
  // third axis. Its cos(pi/4) is MuJoCo 2.2.2's 15-digit literal, 4 ulp off the double nearest
  // to sqrt(0.5): with it the frames match mj_loadXML's bit for bit.
  for (int pass = 0; pass < 3; ++pass) {
    const int j = pass % 2;
    if (moments[j] < moments[j + 1]) {
      std::swap(moments[j], moments[j + 1]);
      const double h = 0.707106781186548;
      Quat dq = {h, 0, 0, 0};
      dq[(j + 2) % 3 + 1] = h;
      q = qnormalize_scaled(qmul(q, dq));
    }
  }
  for (int k = 0; k < 4; ++k) quat[k] = q[k];
}

void geom_mass_properties(const GeomSpec& g, const std::array<double, 3>& s, double* mass,
                          double inertia[3]) {
  // The solids' volumes and moments, each expression grouped as MuJoCo 2.2.2's compiler groups it
  // (measured bit for bit against mj_loadXML): mass = density * volume.
  double volume = 0;
  switch (g.type) {
    case GeomType::plane:
      break;
    case GeomType::sphere:
      volume = 4 * kPi * s[0] * s[0] * s[0] / 3;
      break;
    case GeomType::capsule: {
      const double h = 2 * s[1];
      volume = kPi * (s[0] * s[0] * h + 4 * s[0] * s[0] * s[0] / 3);
      break;
    }
    case GeomType::cylinder: {
      const double h = 2 * s[1];
      volume = kPi * s[0] * s[0] * h;
      break;
    }
    case GeomType::box:
      volume = s[0] * s[1] * s[2] * 8;
      break;
    case GeomType::ellipsoid:
      volume = 4 * kPi * s[0] * s[1] * s[2] / 3;
      break;
  }
  const double m = g.type == GeomType::plane ? 0.0 : g.mass ? *g.mass : g.density * volume;
  *mass = m;
  inertia[0] = inertia[1] = inertia[2] = 0;
  switch (g.type) {
    case GeomType::plane:
      break;
    case GeomType::sphere:
      inertia[0] = inertia[1] = inertia[2] = 2 * m * s[0] * s[0] / 5;
      break;
    case GeomType::capsule: {
      // a cylinder of height h plus two hemispheres (together a sphere of mass ms, the volume
      // fraction 4r / (4r + 3h)); each hemisphere's centre of mass lies 3r/8 from its flat face,
      // which gives the parallel-axis term ms (h^2/4 + 3hr/8) = ms h (3r + 2h) / 8
      const double r = s[0], h = 2 * s[1];
      const double ms = m * 4 * r / (4 * r + 3 * h);
      const double mc = m - ms;
      const double sphere = 2 * ms * r * r / 5;
      inertia[0] = mc * (3 * r * r + h * h) / 12 + (sphere + ms * h * (3 * r + 2 * h) / 8);
      inertia[1] = inertia[0];
      inertia[2] = mc * r * r / 2 + sphere;
      break;
    }
    case GeomType::cylinder: {
      const double h = 2 * s[1];
      inertia[0] = inertia[1] = m * (3 * s[0] * s[0] + h * h) / 12;
      inertia[2] = m * s[0] * s[0] / 2;
      break;
    }
    case GeomType::box:
      inertia[0] = m * (s[1] * s[1] + s[2] * s[2]) / 3;
      inertia[1] = m * (s[0] * s[0] + s[2] * s[2]) / 3;
      inertia[2] = m * (s[0] * s[0] + s[1] * s[1]) / 3;
      break;
    case GeomType::ellipsoid:
      inertia[0] = m * (s[1] * s[1] + s[2] * s[2]) / 5;
      inertia[1] = m * (s[0] * s[0] + s[2] * s[2]) / 5;
      inertia[2] = m * (s[0] * s[0] + s[1] * s[1]) / 5;
      break;
  }
}

const char* joint_type_name(JointType t) {
  switch (t) {
    case JointType::free:
      return "free";
    case JointType::ball:
      return "ball";
    case JointType::slide:
      return "slide";
    case JointType::hinge:
      return "hinge";
  }
  return "?";
}

const char* geom_type_name(GeomType t) {
  switch (t) {
    case GeomType::plane:
      return "plane";
    case GeomType::sphere:
      return "sphere";
    case GeomType::capsule:
      return "capsule";
    case GeomType::ellipsoid:
      return "ellipsoid";
    case GeomType::cylinder:
      return "cylinder";
    case GeomType::box:
      return "box";
  }
  return "?";
}

Model compile_model(const ModelSpec& spec) { return Compiler(spec).run(); }

}  // namespace phydream
