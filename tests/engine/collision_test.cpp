// Narrow-phase collision (engine/collision.h).
//
// Always: forward-mode derivatives against central differences for every supported pair and
// branch, reverse mode against forward mode by the adjoint identity, K-direction tangents against
// K one-direction sweeps, known answers, the candidate filters on a hand-checked chain, and the
// errors for unsupported pairs. With MuJoCo 2.2.2 (PHYDREAM_TEST_WITH_MUJOCO): contacts
// (count per geom pair, dist, pos, all 9 frame entries) against mj_collision's, both for geom
// poses written directly into mjData (random placements, and axis-aligned ones on a grid where
// boxes meet face to face and box-box repeats contacts) and for mj_forward on random qpos, and
// collision_candidates against every pair MuJoCo reports.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/collision.h"
#include "engine/mjcf.h"
#include "engine/small_vec.h"

#if defined(PHYDREAM_TEST_WITH_MUJOCO)
#include <mujoco/mujoco.h>

#include "engine/mujoco_model.h"
#endif

namespace phydream {
namespace {

constexpr int kPlane = static_cast<int>(GeomType::plane);
constexpr int kSphere = static_cast<int>(GeomType::sphere);
constexpr int kCapsule = static_cast<int>(GeomType::capsule);
constexpr int kBox = static_cast<int>(GeomType::box);

// =============================================================================================
// small geometry helpers

// rotation matrix (row-major) of a unit quaternion (w, x, y, z)
void quat_to_mat9(const double* q, double* r) {
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

// exp([w]x): rotation by |w| about w (Rodrigues)
void rotation_exp(const double* w, double* r) {
  const double th = std::sqrt(w[0] * w[0] + w[1] * w[1] + w[2] * w[2]);
  const double a = th < 1e-300 ? 1 : std::sin(th) / th;
  const double b = th < 1e-300 ? 0.5 : (1 - std::cos(th)) / (th * th);
  const double K[9] = {0, -w[2], w[1], w[2], 0, -w[0], -w[1], w[0], 0};
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) {
      double kk = 0;
      for (int k = 0; k < 3; ++k) kk += K[3 * i + k] * K[3 * k + j];
      r[3 * i + j] = (i == j ? 1.0 : 0.0) + a * K[3 * i + j] + b * kk;
    }
  }
}

void mat_mul(const double* a, const double* b, double* r) {
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) {
      r[3 * i + j] = a[3 * i] * b[j] + a[3 * i + 1] * b[3 + j] + a[3 * i + 2] * b[6 + j];
    }
  }
}

// rotation about a unit axis by an angle
void axis_angle_mat(double x, double y, double z, double angle, double* r) {
  const double n = std::sqrt(x * x + y * y + z * z);
  const double w[3] = {x / n * angle, y / n * angle, z / n * angle};
  rotation_exp(w, r);
}

void random_rotation(std::mt19937& rng, double* r) {
  std::normal_distribution<double> g(0, 1);
  double q[4];
  double n = 0;
  for (double& v : q) {
    v = g(rng);
    n += v * v;
  }
  for (double& v : q) v /= std::sqrt(n);
  quat_to_mat9(q, r);
}

// one geom's placement
struct Geom {
  int type;
  double pos[3];
  double mat[9];
  double size[3];
};

Geom make_geom(int type, std::array<double, 3> pos, const double* mat, std::array<double, 3> size) {
  Geom g;
  g.type = type;
  for (int k = 0; k < 3; ++k) {
    g.pos[k] = pos[k];
    g.size[k] = size[k];
  }
  for (int k = 0; k < 9; ++k) g.mat[k] = mat[k];
  return g;
}

const double kIdentity[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};

// the contacts as a flat vector: per contact dist, pos (3), frame (9)
std::vector<double> flatten(const Contact<double>* c, int n) {
  std::vector<double> r;
  for (int i = 0; i < n; ++i) {
    r.push_back(c[i].dist);
    for (double p : c[i].pos) r.push_back(p);
    for (double f : c[i].frame) r.push_back(f);
  }
  return r;
}
template <class T>
std::vector<T> flatten(const ContactTangent<T>* c, int n) {
  std::vector<T> r;
  for (int i = 0; i < n; ++i) {
    r.push_back(c[i].dist);
    for (const T& p : c[i].pos) r.push_back(p);
    for (const T& f : c[i].frame) r.push_back(f);
  }
  return r;
}

int collide(const Geom& a, const Geom& b, double margin, Contact<double>* out) {
  return collide_geoms<double>(a.type, b.type, a.pos, a.mat, a.size, b.pos, b.mat, b.size, margin,
                               out);
}

// the branch the primal takes: per contact the segment kinds, clamps, corner and fallback
std::vector<int> branch_of(const Geom& a, const Geom& b, double margin) {
  Contact<double> con[kMaxContactsPerPair];
  collision_detail::ContactAux<double> aux[kMaxContactsPerPair];
  const int n = collision_detail::collide_raw(a.type, b.type, a.pos, a.mat, a.size, b.pos, b.mat,
                                              b.size, margin, con, aux);
  std::vector<int> key = {n};
  for (int i = 0; i < n; ++i) {
    if (b.type == kBox && a.type != kPlane) {
      // collision_box.h's code of its choices, and which emitted contact this is
      key.insert(key.end(), {static_cast<int>(aux[i].branch), aux[i].corner});
      continue;
    }
    const bool caps = a.type != kPlane;
    key.insert(key.end(), {caps ? aux[i].kind1 : 0, caps ? aux[i].kind2 : 0,
                           caps ? int(aux[i].x1) : 0, caps ? int(aux[i].x2) : 0,
                           caps ? aux[i].degenerate : 0, caps ? 0 : aux[i].corner});
  }
  return key;
}

// =============================================================================================
// test cases: every supported pair, every branch

struct PairCase {
  std::string name;
  Geom a, b;
  double margin;
  int expect_contacts;    // -1: not checked
  bool same_rotation;     // finite differences rotate both geoms alike (keeps parallel axes)
  bool differentiable;    // finite differences are meaningful (not a degenerate fallback)
};

std::vector<PairCase> pair_cases() {
  std::vector<PairCase> cases;
  std::mt19937 rng(7);
  double tilt[9], r1[9], r2[9], r3[9];
  axis_angle_mat(0.3, -0.8, 0.1, 0.25, tilt);  // a tilted plane

  const Geom plane = make_geom(kPlane, {0.1, -0.2, 0.05}, tilt, {1, 1, 0.1});
  const Geom flat_plane = make_geom(kPlane, {0, 0, 0}, kIdentity, {1, 1, 0.1});
  // a point at height h above the tilted plane (plane origin + lateral + h normal)
  auto above = [&](double h, double lx, double ly) -> std::array<double, 3> {
    std::array<double, 3> p;
    for (int k = 0; k < 3; ++k) {
      p[k] = plane.pos[k] + tilt[3 * k] * lx + tilt[3 * k + 1] * ly + tilt[3 * k + 2] * h;
    }
    return p;
  };

  // plane-sphere: penetrating, and within the margin only
  random_rotation(rng, r1);
  cases.push_back({"plane_sphere_penetrating", plane,
                   make_geom(kSphere, above(0.08, 0.2, -0.1), r1, {0.1, 0, 0}), 0.0, 1, false, true});
  cases.push_back({"plane_sphere_in_margin", plane,
                   make_geom(kSphere, above(0.12, -0.3, 0.4), r1, {0.1, 0, 0}), 0.05, 1, false, true});

  // plane-capsule: both ends, the -axis end only, the +axis end only
  auto capsule_on_plane = [&](double angle, double h) {
    double rel[9], m[9];
    axis_angle_mat(0.2, 1, 0, angle, rel);  // tilt the capsule axis (x after `lay`) out of the plane
    double lay[9];
    axis_angle_mat(0, 1, 0, M_PI / 2, lay);  // axis along the plane
    double tmp[9];
    mat_mul(rel, lay, tmp);
    mat_mul(tilt, tmp, m);
    return make_geom(kCapsule, above(h, 0.1, 0.2), m, {0.05, 0.2, 0});
  };
  cases.push_back({"plane_capsule_both_ends", plane, capsule_on_plane(0.1, 0.06), 0.05, 2, false, true});
  cases.push_back({"plane_capsule_one_end", plane, capsule_on_plane(0.6, 0.1), 0.0, 1, false, true});
  cases.push_back({"plane_capsule_other_end", plane, capsule_on_plane(-0.6, 0.1), 0.0, 1, false, true});

  // plane-box: one corner (generic rotation), an edge (two corners), a face (four corners)
  {
    random_rotation(rng, r1);
    Geom box = make_geom(kBox, {0, 0, 0}, r1, {0.1, 0.15, 0.2});
    // lowest corner depth below the flat plane
    double low = 1e9;
    for (int i = 0; i < 8; ++i) {
      double z = 0;
      for (int j = 0; j < 3; ++j) z += r1[6 + j] * ((i >> j) & 1 ? box.size[j] : -box.size[j]);
      low = std::min(low, z);
    }
    box.pos[0] = 0.3;
    box.pos[1] = -0.1;
    box.pos[2] = -low - 0.01;
    cases.push_back({"plane_box_corner", flat_plane, box, 0.0, 1, false, true});
  }
  {
    axis_angle_mat(1, 0, 0, 0.3, r1);
    // bottom edge at y = -size_y: height -sz cos - sy sin
    const double sy = 0.15, sz = 0.1;
    const double edge = -sz * std::cos(0.3) - sy * std::sin(0.3);
    cases.push_back({"plane_box_edge", flat_plane,
                     make_geom(kBox, {0.2, 0.1, -edge - 0.01}, r1, {0.2, sy, sz}), 0.0, 2, false, true});
  }
  {
    axis_angle_mat(0.4, 1, 0, 0.02, r1);
    mat_mul(tilt, r1, r2);
    cases.push_back({"plane_box_face", plane, make_geom(kBox, above(0.095, 0.1, -0.1), r2, {0.2, 0.1, 0.1}),
                     0.05, 4, false, true});
  }

  // sphere-sphere
  random_rotation(rng, r1);
  random_rotation(rng, r2);
  cases.push_back({"sphere_sphere", make_geom(kSphere, {0.1, 0.2, 0.3}, r1, {0.1, 0, 0}),
                   make_geom(kSphere, {0.25, 0.1, 0.35}, r2, {0.12, 0, 0}), 0.0, 1, false, true});
  cases.push_back({"sphere_sphere_margin", make_geom(kSphere, {0.1, 0.2, 0.3}, r1, {0.1, 0, 0}),
                   make_geom(kSphere, {0.3, 0.1, 0.35}, r2, {0.1, 0, 0}), 0.1, 1, false, true});
  cases.push_back({"sphere_sphere_coincident", make_geom(kSphere, {0.1, 0.2, 0.3}, r1, {0.1, 0, 0}),
                   make_geom(kSphere, {0.1, 0.2, 0.3}, r2, {0.12, 0, 0}), 0.0, 1, false, false});
  cases.push_back({"sphere_sphere_coincident_same_axes",
                   make_geom(kSphere, {0.1, 0.2, 0.3}, r1, {0.1, 0, 0}),
                   make_geom(kSphere, {0.1, 0.2, 0.3}, r1, {0.12, 0, 0}), 0.0, 1, false, false});

  // sphere-capsule: nearest point inside the segment, clamped to either end
  {
    axis_angle_mat(0.2, 1, 0.3, 0.7, r1);
    const double z[3] = {r1[2], r1[5], r1[8]};
    random_rotation(rng, r2);
    const std::array<double, 3> c = {0.1, -0.1, 0.2};
    auto at = [&](double t, double off) {
      // point c + t z + off * (unit vector perpendicular to z)
      double perp[3] = {r1[0], r1[3], r1[6]};
      return std::array<double, 3>{c[0] + t * z[0] + off * perp[0], c[1] + t * z[1] + off * perp[1],
                                   c[2] + t * z[2] + off * perp[2]};
    };
    const Geom cap = make_geom(kCapsule, c, r1, {0.06, 0.25, 0});
    cases.push_back({"sphere_capsule_side", make_geom(kSphere, at(0.1, 0.12), r2, {0.08, 0, 0}), cap, 0.0, 1,
                     false, true});
    cases.push_back({"sphere_capsule_plus_end", make_geom(kSphere, at(0.3, 0.05), r2, {0.08, 0, 0}), cap, 0.0,
                     1, false, true});
    cases.push_back({"sphere_capsule_minus_end", make_geom(kSphere, at(-0.31, -0.04), r2, {0.08, 0, 0}), cap,
                     0.02, 1, false, true});
    cases.push_back({"sphere_capsule_on_axis", make_geom(kSphere, at(0.1, 0.0), r2, {0.08, 0, 0}), cap, 0.0,
                     1, false, false});
  }

  // capsule-capsule, skew axes: one case per clamping pattern, found by sampling
  {
    std::uniform_real_distribution<double> u(-0.25, 0.25);
    std::set<std::pair<int, int>> seen;
    for (int trial = 0; trial < 20000 && seen.size() < 4; ++trial) {
      random_rotation(rng, r1);
      random_rotation(rng, r2);
      Geom a = make_geom(kCapsule, {u(rng), u(rng), u(rng)}, r1, {0.1, 0.2, 0});
      Geom b = make_geom(kCapsule, {u(rng), u(rng), u(rng)}, r2, {0.08, 0.3, 0});
      Contact<double> con[2];
      collision_detail::ContactAux<double> aux[2];
      const int n = collision_detail::collide_raw(a.type, b.type, a.pos, a.mat, a.size, b.pos, b.mat,
                                                  b.size, 0.0, con, aux);
      if (n != 1) continue;
      const std::pair<int, int> kinds = {aux[0].kind1, aux[0].kind2};
      if (seen.count(kinds)) continue;
      // away from every branch switch, so that differences stay on the branch
      bool stable = true;
      for (double s : {-1e-4, 1e-4}) {
        Geom ap = a, bp = b;
        for (int k = 0; k < 3; ++k) ap.pos[k] += s;
        if (branch_of(ap, bp, 0.0) != branch_of(a, b, 0.0)) stable = false;
      }
      if (!stable) continue;
      seen.insert(kinds);
      cases.push_back({"capsule_capsule_kinds_" + std::to_string(kinds.first) + std::to_string(kinds.second), a,
                       b, 0.0, 1, false, true});
    }
    EXPECT_EQ(seen.size(), 4u) << "not every clamping pattern was found";
  }

  // capsule-capsule, parallel axes (MuJoCo's end-point tests): side by side (two contacts),
  // end to end along one line (the same end pair found twice), anti-parallel
  {
    axis_angle_mat(0.5, -0.3, 1, 0.9, r1);
    const double z[3] = {r1[2], r1[5], r1[8]};
    const double x[3] = {r1[0], r1[3], r1[6]};
    auto off = [&](double along, double side) {
      return std::array<double, 3>{0.1 + along * z[0] + side * x[0], -0.05 + along * z[1] + side * x[1],
                                   0.2 + along * z[2] + side * x[2]};
    };
    const Geom a = make_geom(kCapsule, {0.1, -0.05, 0.2}, r1, {0.05, 0.2, 0});
    cases.push_back({"capsule_capsule_parallel_side", a, make_geom(kCapsule, off(0.1, 0.09), r1, {0.05, 0.15, 0}),
                     0.0, 2, true, true});
    cases.push_back({"capsule_capsule_parallel_overhang", a,
                     make_geom(kCapsule, off(0.3, 0.095), r1, {0.05, 0.15, 0}), 0.01, -1, true, true});
    cases.push_back({"capsule_capsule_collinear", a, make_geom(kCapsule, off(0.38, 0.0), r1, {0.05, 0.15, 0}),
                     0.0, 2, true, true});
    // anti-parallel: the same axis negated
    double flip[9], r1f[9];
    axis_angle_mat(1, 0, 0, M_PI, flip);
    for (double& v : flip) v = std::round(v);
    mat_mul(r1, flip, r1f);
    cases.push_back({"capsule_capsule_antiparallel", a, make_geom(kCapsule, off(-0.1, 0.085), r1f, {0.05, 0.15, 0}),
                     0.0, -1, true, true});
    // crossing axes that intersect: coincident nearest points
    axis_angle_mat(0.1, 0.2, 1, 1.1, r2);
    mat_mul(r2, r1, r3);
    cases.push_back({"capsule_capsule_intersecting", a, make_geom(kCapsule, {0.1, -0.05, 0.2}, r3, {0.05, 0.15, 0}),
                     0.0, 1, false, false});
  }

  // box pairs: a box (half-sizes 0.1, 0.15, 0.2) at a generic pose, other geoms placed in its frame
  {
    double rb[9];
    axis_angle_mat(0.3, 0.5, -0.2, 0.8, rb);
    const std::array<double, 3> c = {0.05, -0.1, 0.15};
    const Geom box = make_geom(kBox, c, rb, {0.1, 0.15, 0.2});
    auto at = [&](double x, double y, double z) {
      return std::array<double, 3>{c[0] + rb[0] * x + rb[1] * y + rb[2] * z, c[1] + rb[3] * x + rb[4] * y + rb[5] * z,
                                   c[2] + rb[6] * x + rb[7] * y + rb[8] * z};
    };
    random_rotation(rng, r1);
    // sphere-box: over a face, an edge and a corner (one, two, three coordinates clamped), and
    // the centre inside the box (pushed out through the +x face, the nearest)
    cases.push_back({"sphere_box_face", make_geom(kSphere, at(0.05, -0.03, 0.27), r1, {0.08, 0, 0}), box, 0.0, 1,
                     false, true});
    cases.push_back({"sphere_box_edge", make_geom(kSphere, at(0.14, 0.02, 0.24), r1, {0.08, 0, 0}), box, 0.0, 1,
                     false, true});
    cases.push_back({"sphere_box_corner", make_geom(kSphere, at(0.13, 0.18, 0.23), r1, {0.08, 0, 0}), box, 0.01, 1,
                     false, true});
    cases.push_back({"sphere_box_inside", make_geom(kSphere, at(0.06, 0.1, -0.05), r1, {0.05, 0, 0}), box, 0.0, 1,
                     false, true});
    // capsule-box: lying on the +z face (both ends over it: two contacts), its end against a
    // face, crossing an edge
    double lay[9], cap[9];
    axis_angle_mat(0, 1, 0, M_PI / 2 - 0.05, lay);  // capsule axis nearly along the box's x
    mat_mul(rb, lay, cap);
    cases.push_back({"capsule_box_on_face", make_geom(kCapsule, at(0.01, 0.02, 0.225), cap, {0.03, 0.07, 0}), box,
                     0.0, 2, false, true});
    double up[9], cap_up[9];
    axis_angle_mat(0.2, 0.1, 1, 0.3, up);  // axis nearly along the box's z, from above
    mat_mul(rb, up, cap_up);
    cases.push_back({"capsule_box_end_on_face", make_geom(kCapsule, at(0.02, -0.04, 0.3), cap_up, {0.03, 0.09, 0}),
                     box, 0.0, -1, false, true});
    double cross[9], cap_cross[9];
    axis_angle_mat(1, 0, 0.3, M_PI / 2, cross);  // axis across the +y, +z edge
    mat_mul(rb, cross, cap_cross);
    cases.push_back({"capsule_box_across_edge", make_geom(kCapsule, at(0.02, 0.17, 0.218), cap_cross,
                                                          {0.03, 0.12, 0}),
                     box, 0.0, -1, false, true});
    // box-box: a box on the +z face, turned and slightly tilted (a face of the lower box and the
    // corners of the upper one's face), and one standing on an edge across another edge
    double turn[9], top[9];
    axis_angle_mat(0.05, -0.03, 1, 0.3, turn);
    mat_mul(rb, turn, top);
    cases.push_back({"box_box_face", box, make_geom(kBox, at(0.01, -0.02, 0.2 + 0.05 - 0.004), top, {0.06, 0.07, 0.05}),
                     0.0, -1, false, true});
    // edge on edge: box A turned about x so that an edge is its top, box B about y so that an
    // edge is its bottom, crossing A's like an X, 3 mm deep; the scene then turned by rb
    {
      const double tx = 0.8, ty = 0.75;
      const double sa[3] = {0.1, 0.15, 0.2}, sb[3] = {0.08, 0.09, 0.07};
      double ra[9], rbb[9], twist[9], tmp[9];
      axis_angle_mat(1, 0, 0, tx, ra);
      axis_angle_mat(0, 1, 0, ty, tmp);
      axis_angle_mat(0, 0, 1, 0.1, twist);
      mat_mul(twist, tmp, rbb);
      const double top = sa[1] * std::sin(tx) + sa[2] * std::cos(tx);
      double bottom = 0;  // lowest corner of B below its centre
      for (int i = 0; i < 8; ++i) {
        double z = 0;
        for (int j = 0; j < 3; ++j) z += rbb[6 + j] * ((i >> j) & 1 ? sb[j] : -sb[j]);
        bottom = std::min(bottom, z);
      }
      double ma[9], mb[9];
      mat_mul(rb, ra, ma);
      mat_mul(rb, rbb, mb);
      const Geom a = make_geom(kBox, c, ma, {sa[0], sa[1], sa[2]});
      const Geom b = make_geom(kBox, at(0.01, 0.02, top - bottom - 0.003), mb, {sb[0], sb[1], sb[2]});
      cases.push_back({"box_box_edge", a, b, 0.0, 1, false, true});
    }
  }
  return cases;
}

// a random tangent direction: dpos, and dmat either a rotation's ([w]x mat) or any 9-vector
struct Direction {
  double dpos1[3], dmat1[9], dpos2[3], dmat2[9];
  double w1[3], w2[3];
};

Direction random_direction(std::mt19937& rng, const Geom& a, const Geom& b, bool rotation, bool same_rotation) {
  std::normal_distribution<double> g(0, 1);
  Direction d;
  for (int k = 0; k < 3; ++k) {
    d.dpos1[k] = g(rng);
    d.dpos2[k] = g(rng);
    d.w1[k] = g(rng);
    d.w2[k] = same_rotation ? d.w1[k] : g(rng);
  }
  if (rotation) {
    auto tangent = [](const double* w, const double* m, double* dm) {
      const double K[9] = {0, -w[2], w[1], w[2], 0, -w[0], -w[1], w[0], 0};
      mat_mul(K, m, dm);
    };
    tangent(d.w1, a.mat, d.dmat1);
    tangent(d.w2, b.mat, d.dmat2);
  } else {
    for (int k = 0; k < 9; ++k) {
      d.dmat1[k] = g(rng);
      d.dmat2[k] = g(rng);
    }
  }
  return d;
}

// the geoms moved by eps along a rotation direction: pos + eps dpos, exp(eps [w]x) mat
void perturb(const Geom& a, const Geom& b, const Direction& d, double eps, Geom& ap, Geom& bp) {
  ap = a;
  bp = b;
  double w1[3], w2[3], r1[9], r2[9];
  for (int k = 0; k < 3; ++k) {
    ap.pos[k] += eps * d.dpos1[k];
    bp.pos[k] += eps * d.dpos2[k];
    w1[k] = eps * d.w1[k];
    w2[k] = eps * d.w2[k];
  }
  rotation_exp(w1, r1);
  rotation_exp(w2, r2);
  mat_mul(r1, a.mat, ap.mat);
  mat_mul(r2, b.mat, bp.mat);
}

// =============================================================================================
// primal

bool has(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

TEST(Collision, CasesMakeTheirContacts) {
  for (const PairCase& c : pair_cases()) {
    Contact<double> con[kMaxContactsPerPair];
    const int n = collide(c.a, c.b, c.margin, con);
    // the special cases take MuJoCo's special branches: parallel axes (|det| below mjMINVAL),
    // coincident sphere centres (normal from the axes' cross product, or (1, 0, 0))
    if (c.a.type == kCapsule && c.b.type == kCapsule) {
      double a1[3], a2[3], dif[3];
      for (int k = 0; k < 3; ++k) {
        a1[k] = c.a.mat[3 * k + 2] * c.a.size[1];
        a2[k] = c.b.mat[3 * k + 2] * c.b.size[1];
        dif[k] = c.a.pos[k] - c.b.pos[k];
      }
      const double det = collision_detail::segment_coef(a1, a2, dif).det;
      const bool parallel = has(c.name, "parallel") || has(c.name, "collinear");
      EXPECT_EQ(std::abs(det) < 1e-15, parallel) << c.name << ": det " << det;
    }
    if (c.a.type != kPlane) {
      Contact<double> raw[kMaxContactsPerPair];
      collision_detail::ContactAux<double> aux[kMaxContactsPerPair];
      collision_detail::collide_raw(c.a.type, c.b.type, c.a.pos, c.a.mat, c.a.size, c.b.pos, c.b.mat, c.b.size,
                                    c.margin, raw, aux);
      const int degenerate = has(c.name, "same_axes") ? 2
                             : has(c.name, "coincident") || has(c.name, "intersecting") || has(c.name, "on_axis")
                                 ? 1
                                 : 0;
      EXPECT_EQ(aux[0].degenerate, degenerate) << c.name;
      EXPECT_EQ(degenerate == 0, c.differentiable) << c.name;
    }
    EXPECT_GT(n, 0) << c.name;
    if (c.expect_contacts >= 0) {
      EXPECT_EQ(n, c.expect_contacts) << c.name;
    }
    EXPECT_LE(n, max_contacts(c.a.type, c.b.type)) << c.name;
    for (int i = 0; i < n; ++i) {
      EXPECT_LE(con[i].dist, c.margin) << c.name;
      // the frame is orthonormal and right-handed
      const double* f = con[i].frame;
      for (int r = 0; r < 3; ++r) {
        for (int q = 0; q < 3; ++q) {
          const double d = f[3 * r] * f[3 * q] + f[3 * r + 1] * f[3 * q + 1] + f[3 * r + 2] * f[3 * q + 2];
          EXPECT_NEAR(d, r == q ? 1.0 : 0.0, 1e-12) << c.name;
        }
      }
      const double det = f[0] * (f[4] * f[8] - f[5] * f[7]) - f[1] * (f[3] * f[8] - f[5] * f[6]) +
                         f[2] * (f[3] * f[7] - f[4] * f[6]);
      EXPECT_NEAR(det, 1.0, 1e-12) << c.name;
      if (c.a.type == kBox) {
        // a face contact's normal is a face normal of one box, an edge contact's of neither
        double along = 0;
        for (const Geom* g : {&c.a, &c.b}) {
          for (int k = 0; k < 3; ++k) {
            along = std::max(along, std::abs(f[0] * g->mat[k] + f[1] * g->mat[3 + k] + f[2] * g->mat[6 + k]));
          }
        }
        if (has(c.name, "edge")) EXPECT_LT(along, 0.99) << c.name;
        if (has(c.name, "face")) EXPECT_NEAR(along, 1.0, 1e-12) << c.name;
      }
    }
  }
}

TEST(Collision, SphereRestingOnPlaneKnownAnswer) {
  // sphere of radius 0.1 with its centre at height h over the plane z = 0
  const double h = 0.07, r = 0.1;
  const Geom plane = make_geom(kPlane, {0, 0, 0}, kIdentity, {1, 1, 0.1});
  const Geom sphere = make_geom(kSphere, {0.3, -0.2, h}, kIdentity, {r, 0, 0});
  Contact<double> con[1];
  ContactTangent<double> dcon[1];
  const double dpos1[3] = {0, 0, 0}, dmat[9] = {0}, dpos2[3] = {0, 0, 1};
  const int n = collide_geoms_jvp<double, double>(plane.type, sphere.type, plane.pos, plane.mat, plane.size,
                                                  sphere.pos, sphere.mat, sphere.size, 0.0, dpos1, dmat,
                                                  dpos2, dmat, con, dcon, 0, 1);
  ASSERT_EQ(n, 1);
  EXPECT_EQ(con[0].geom1, 0);
  EXPECT_EQ(con[0].geom2, 1);
  EXPECT_DOUBLE_EQ(con[0].dist, h - r);
  EXPECT_DOUBLE_EQ(con[0].pos[0], 0.3);
  EXPECT_DOUBLE_EQ(con[0].pos[1], -0.2);
  EXPECT_DOUBLE_EQ(con[0].pos[2], (h - r) / 2);
  // normal +z; first tangent (0, 1, 0) since the normal's y is small; second = z cross y
  const double frame[9] = {0, 0, 1, 0, 1, 0, -1, 0, 0};
  for (int k = 0; k < 9; ++k) EXPECT_EQ(con[0].frame[k], frame[k]) << k;
  // d dist / d h = 1, d pos_z / d h = 1/2, nothing else moves
  EXPECT_EQ(dcon[0].dist, 1.0);
  EXPECT_EQ(dcon[0].pos[0], 0.0);
  EXPECT_EQ(dcon[0].pos[1], 0.0);
  EXPECT_EQ(dcon[0].pos[2], 0.5);
  for (int k = 0; k < 9; ++k) EXPECT_EQ(dcon[0].frame[k], 0.0);
  // above the margin: nothing; within it: a contact with positive distance
  Geom high = sphere;
  high.pos[2] = 0.2;
  EXPECT_EQ(collide(plane, high, 0.05, con), 0);
  EXPECT_EQ(collide(plane, high, 0.1, con), 1);
  EXPECT_DOUBLE_EQ(con[0].dist, 0.1);
}

TEST(Collision, UnsupportedOrMisorderedPairsMakeNoContacts) {
  const Geom a = make_geom(kSphere, {0, 0, 0}, kIdentity, {0.1, 0, 0});
  const Geom b = make_geom(kCapsule, {0.05, 0, 0}, kIdentity, {0.1, 0.2, 0});
  Contact<double> con[kMaxContactsPerPair];
  EXPECT_EQ(collide(a, b, 0.0, con), 1);
  EXPECT_EQ(collide(b, a, 0.0, con), 0);  // type1 > type2
  const Geom box = make_geom(kBox, {0, 0, 0}, kIdentity, {0.1, 0.1, 0.1});
  EXPECT_EQ(collide(a, box, 0.0, con), 1);
  EXPECT_EQ(collide(box, a, 0.0, con), 0);  // type1 > type2
  constexpr int kCylinder = static_cast<int>(GeomType::cylinder);
  constexpr int kEllipsoid = static_cast<int>(GeomType::ellipsoid);
  const Geom cyl = make_geom(kCylinder, {0, 0, 0}, kIdentity, {0.1, 0.1, 0});
  EXPECT_EQ(collide(a, cyl, 0.0, con), 0);
  EXPECT_FALSE(collision_supported(kPlane, kCylinder));
  EXPECT_FALSE(collision_supported(kSphere, kEllipsoid));
  EXPECT_FALSE(collision_supported(kCylinder, kBox));
  EXPECT_FALSE(collision_supported(kPlane, kPlane));
  EXPECT_FALSE(collision_supported(kBox, kSphere));
  EXPECT_TRUE(collision_supported(kSphere, kBox));
  EXPECT_TRUE(collision_supported(kCapsule, kBox));
  EXPECT_TRUE(collision_supported(kBox, kBox));
  EXPECT_EQ(max_contacts(kPlane, kBox), 4);
  EXPECT_EQ(max_contacts(kPlane, kCapsule), 2);
  EXPECT_EQ(max_contacts(kCapsule, kCapsule), 2);
  EXPECT_EQ(max_contacts(kPlane, kSphere), 1);
  EXPECT_EQ(max_contacts(kSphere, kSphere), 1);
  EXPECT_EQ(max_contacts(kSphere, kCapsule), 1);
  EXPECT_EQ(max_contacts(kSphere, kBox), 1);
  EXPECT_EQ(max_contacts(kCapsule, kBox), 2);
  EXPECT_EQ(max_contacts(kBox, kBox), 8);
  EXPECT_EQ(max_contacts(kCylinder, kBox), 0);
  static_assert(max_contacts(kBox, kBox) == kMaxContactsPerPair, "constexpr");
}

TEST(Collision, BoxPairsKnownAnswers) {
  Contact<double> con[kMaxContactsPerPair];
  // a sphere of radius 0.1 over the +z face of an axis-aligned unit cube at height 0.55: one
  // contact, dist 0.05 - 0.1, normal from the sphere into the box (-z), midway between the
  // face (z = 0.5) and the sphere's lowest point (z = 0.45)
  const Geom cube = make_geom(kBox, {0, 0, 0}, kIdentity, {0.5, 0.5, 0.5});
  const Geom ball = make_geom(kSphere, {0.2, -0.1, 0.55}, kIdentity, {0.1, 0, 0});
  ASSERT_EQ(collide(ball, cube, 0.0, con), 1);
  EXPECT_NEAR(con[0].dist, -0.05, 1e-15);
  EXPECT_NEAR(con[0].pos[0], 0.2, 1e-15);
  EXPECT_NEAR(con[0].pos[1], -0.1, 1e-15);
  EXPECT_NEAR(con[0].pos[2], 0.475, 1e-15);
  EXPECT_NEAR(con[0].frame[0], 0.0, 1e-15);
  EXPECT_NEAR(con[0].frame[1], 0.0, 1e-15);
  EXPECT_NEAR(con[0].frame[2], -1.0, 1e-15);
  // beyond the margin, none; the bounding spheres' test decides when they are apart
  Geom far = ball;
  far.pos[2] = 0.65;
  EXPECT_EQ(collide(far, cube, 0.04, con), 0);
  EXPECT_EQ(collide(far, cube, 0.06, con), 1);

  // a capsule of radius 0.1 lying flat on the cube's top, half-length 0.2 along x: both segment
  // ends touch, 0.02 deep
  const double along_x[9] = {0, 0, 1, 0, 1, 0, -1, 0, 0};  // the capsule's axis along x
  const Geom rod = make_geom(kCapsule, {0.1, 0.0, 0.58}, along_x, {0.1, 0.2, 0});
  ASSERT_EQ(collide(rod, cube, 0.0, con), 2);
  for (int i = 0; i < 2; ++i) {
    EXPECT_NEAR(con[i].dist, -0.02, 1e-15);
    EXPECT_NEAR(con[i].pos[2], 0.49, 1e-15);
    EXPECT_NEAR(std::abs(con[i].pos[0] - 0.1), 0.2, 1e-15);
  }

  // two equal cubes, one on the other 0.01 deep, faces aligned: every corner of the shared face
  // is found twice (as an end of two of the incident face's edges); the repeats are dropped, as
  // MuJoCo does, leaving the four corners, at half the depth (MuJoCo 2.2.2's box-box value)
  const Geom upper = make_geom(kBox, {0, 0, 0.99}, kIdentity, {0.5, 0.5, 0.5});
  ASSERT_EQ(collide(cube, upper, 0.0, con), 4);
  std::set<std::pair<double, double>> corners;
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(con[i].dist, -0.005, 1e-15);
    EXPECT_NEAR(con[i].pos[2], 0.495, 1e-15);  // midway between the faces at 0.49 and 0.5
    EXPECT_EQ(con[i].frame[2], 1.0);            // from the lower box to the upper one
    corners.insert({con[i].pos[0], con[i].pos[1]});
  }
  EXPECT_EQ(corners, (std::set<std::pair<double, double>>{{-0.5, -0.5}, {-0.5, 0.5}, {0.5, -0.5}, {0.5, 0.5}}));
}

TEST(Collision, FloatAgreesWithDouble) {
  double worst = 0;
  for (const PairCase& c : pair_cases()) {
    if (!c.differentiable) continue;
    Contact<double> cd[kMaxContactsPerPair];
    Contact<float> cf[kMaxContactsPerPair];
    float pa[3], ma[9], sa[3], pb[3], mb[9], sb[3];
    for (int k = 0; k < 3; ++k) {
      pa[k] = float(c.a.pos[k]);
      sa[k] = float(c.a.size[k]);
      pb[k] = float(c.b.pos[k]);
      sb[k] = float(c.b.size[k]);
    }
    for (int k = 0; k < 9; ++k) {
      ma[k] = float(c.a.mat[k]);
      mb[k] = float(c.b.mat[k]);
    }
    const int nd = collide(c.a, c.b, c.margin, cd);
    const int nf = collide_geoms<float>(c.a.type, c.b.type, pa, ma, sa, pb, mb, sb, float(c.margin), cf);
    // float rounding can break exact parallelism; compare where the branch agrees
    if (nf != nd) continue;
    for (int i = 0; i < nd; ++i) {
      worst = std::max(worst, std::abs(double(cf[i].dist) - cd[i].dist));
      for (int k = 0; k < 3; ++k) worst = std::max(worst, std::abs(double(cf[i].pos[k]) - cd[i].pos[k]));
      for (int k = 0; k < 9; ++k) worst = std::max(worst, std::abs(double(cf[i].frame[k]) - cd[i].frame[k]));
    }
    // the derivative routines compile for float and for K-direction float tangents
    Vec<float, 2> dp[3], dm[9], g3[3], g9[9];
    for (auto& v : dp) v = Vec<float, 2>::unit(0);
    for (auto& v : dm) v = Vec<float, 2>::unit(1);
    for (auto& v : g3) v = Vec<float, 2>::zero();
    for (auto& v : g9) v = Vec<float, 2>::zero();
    ContactTangent<Vec<float, 2>> dcon[kMaxContactsPerPair];
    collide_geoms_jvp<float, Vec<float, 2>>(c.a.type, c.b.type, pa, ma, sa, pb, mb, sb, float(c.margin), dp,
                                            dm, dp, dm, cf, dcon);
    collide_geoms_vjp<float, Vec<float, 2>>(c.a.type, c.b.type, pa, ma, sa, pb, mb, sb, float(c.margin), dcon,
                                            g3, g9, g3, g9);
  }
  std::printf("[ worst ] float vs double contact entries: %.3g\n", worst);
  EXPECT_LT(worst, 1e-5);
}

// =============================================================================================
// derivatives

// <dot> of two flattened tangent lists
double inner(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

TEST(CollisionDerivatives, JvpPrimalIsThePrimal) {
  std::mt19937 rng(11);
  for (const PairCase& c : pair_cases()) {
    const Direction d = random_direction(rng, c.a, c.b, false, false);
    Contact<double> con[kMaxContactsPerPair], con_jvp[kMaxContactsPerPair];
    ContactTangent<double> dcon[kMaxContactsPerPair];
    const int n = collide_geoms<double>(c.a.type, c.b.type, c.a.pos, c.a.mat, c.a.size, c.b.pos, c.b.mat,
                                        c.b.size, c.margin, con, 3, 5);
    const int nj = collide_geoms_jvp<double, double>(c.a.type, c.b.type, c.a.pos, c.a.mat, c.a.size, c.b.pos,
                                                     c.b.mat, c.b.size, c.margin, d.dpos1, d.dmat1, d.dpos2,
                                                     d.dmat2, con_jvp, dcon, 3, 5);
    ASSERT_EQ(n, nj) << c.name;
    EXPECT_EQ(flatten(con, n), flatten(con_jvp, n)) << c.name;
    for (int i = 0; i < n; ++i) EXPECT_TRUE(con_jvp[i].geom1 == 3 && con_jvp[i].geom2 == 5);
  }
}

// central differences with one Richardson step: (4 D(h/2) - D(h)) / 3, D(h) = (f(h) - f(-h)) / 2h;
// every evaluation must stay on the primal's branch
std::vector<double> richardson_difference(const PairCase& c, const Direction& d, double h, int n) {
  std::vector<double> r;
  const std::vector<int> branch = branch_of(c.a, c.b, c.margin);
  std::vector<double> dh[2];
  for (int level = 0; level < 2; ++level) {
    const double eps = level == 0 ? h : h / 2;
    Geom ap, bp, am, bm;
    perturb(c.a, c.b, d, eps, ap, bp);
    perturb(c.a, c.b, d, -eps, am, bm);
    EXPECT_EQ(branch_of(ap, bp, c.margin), branch) << c.name;
    EXPECT_EQ(branch_of(am, bm, c.margin), branch) << c.name;
    Contact<double> cp[kMaxContactsPerPair], cm[kMaxContactsPerPair];
    if (collide(ap, bp, c.margin, cp) != n || collide(am, bm, c.margin, cm) != n) return r;
    const std::vector<double> fp = flatten(cp, n), fm = flatten(cm, n);
    for (size_t i = 0; i < fp.size(); ++i) dh[level].push_back((fp[i] - fm[i]) / (2 * eps));
  }
  for (size_t i = 0; i < dh[0].size(); ++i) r.push_back((4 * dh[1][i] - dh[0][i]) / 3);
  return r;
}

TEST(CollisionDerivatives, JvpMatchesCentralDifferences) {
  std::mt19937 rng(3);
  const double h = 1e-5;
  double worst = 0;
  std::string worst_case;
  int checked = 0;
  for (const PairCase& c : pair_cases()) {
    if (!c.differentiable) continue;
    for (int rep = 0; rep < 4; ++rep) {
      // rotation tangents dmat = [w]x mat, matched by exp(eps [w]x) mat
      const Direction d = random_direction(rng, c.a, c.b, true, c.same_rotation);
      Contact<double> con[kMaxContactsPerPair];
      ContactTangent<double> dcon[kMaxContactsPerPair];
      const int n = collide_geoms_jvp<double, double>(c.a.type, c.b.type, c.a.pos, c.a.mat, c.a.size, c.b.pos,
                                                      c.b.mat, c.b.size, c.margin, d.dpos1, d.dmat1, d.dpos2,
                                                      d.dmat2, con, dcon);
      const std::vector<double> fd = richardson_difference(c, d, h, n), jv = flatten(dcon, n);
      ASSERT_EQ(fd.size(), jv.size()) << c.name << ": the contact count changed";
      for (size_t i = 0; i < jv.size(); ++i) {
        const double err = std::abs(fd[i] - jv[i]) / std::max(1.0, std::abs(jv[i]));
        EXPECT_LT(err, 1e-8) << c.name << " entry " << i << ": fd " << fd[i] << " jvp " << jv[i];
        if (err > worst) {
          worst = err;
          worst_case = c.name;
        }
      }
      ++checked;
    }
  }
  std::printf("[ worst ] JVP vs central differences (h %.0e, Richardson), %d directions: %.3g (%s)\n", h,
              checked, worst, worst_case.c_str());
}

TEST(CollisionDerivatives, JvpMatchesDifferencesOnRandomPoses) {
  // every supported pair at random poses in a small region; poses within 1e-5 of a branch switch
  // are skipped
  const int pairs[9][2] = {{kPlane, kSphere},   {kPlane, kCapsule},  {kPlane, kBox},
                           {kSphere, kSphere}, {kSphere, kCapsule}, {kCapsule, kCapsule},
                           {kSphere, kBox},    {kCapsule, kBox},    {kBox, kBox}};
  auto size_of = [](int type) -> std::array<double, 3> {
    return type == kSphere ? std::array<double, 3>{0.12, 0, 0}
           : type == kCapsule ? std::array<double, 3>{0.07, 0.2, 0}
           : type == kBox ? std::array<double, 3>{0.1, 0.15, 0.2}
                          : std::array<double, 3>{1, 1, 0.1};
  };
  std::mt19937 rng(31);
  std::uniform_real_distribution<double> u(-0.2, 0.2);
  double worst = 0;
  int checked = 0;
  for (const auto& p : pairs) {
    int found = 0;
    for (int trial = 0; trial < 2000 && found < 40; ++trial) {
      double r1[9], r2[9];
      random_rotation(rng, r1);
      random_rotation(rng, r2);
      PairCase c{"random", make_geom(p[0], {u(rng), u(rng), u(rng)}, r1, size_of(p[0])),
                 make_geom(p[1], {u(rng), u(rng), u(rng)}, r2, size_of(p[1])), 0.02, -1, false, true};
      Contact<double> con[kMaxContactsPerPair];
      if (collide(c.a, c.b, c.margin, con) == 0) continue;
      const Direction d = random_direction(rng, c.a, c.b, true, false);
      const std::vector<int> branch = branch_of(c.a, c.b, c.margin);
      bool stable = true;
      for (double eps : {1e-5, -1e-5, 5e-6, -5e-6}) {
        Geom ap, bp;
        perturb(c.a, c.b, d, eps, ap, bp);
        stable = stable && branch_of(ap, bp, c.margin) == branch;
      }
      if (!stable) continue;
      ++found;
      ContactTangent<double> dcon[kMaxContactsPerPair];
      const int n = collide_geoms_jvp<double, double>(c.a.type, c.b.type, c.a.pos, c.a.mat, c.a.size, c.b.pos,
                                                      c.b.mat, c.b.size, c.margin, d.dpos1, d.dmat1, d.dpos2,
                                                      d.dmat2, con, dcon);
      const std::vector<double> fd = richardson_difference(c, d, 1e-5, n), jv = flatten(dcon, n);
      ASSERT_EQ(fd.size(), jv.size());
      for (size_t i = 0; i < jv.size(); ++i) {
        const double err = std::abs(fd[i] - jv[i]) / std::max(1.0, std::abs(jv[i]));
        EXPECT_LT(err, 1e-7) << p[0] << "-" << p[1] << " entry " << i << ": fd " << fd[i] << " jvp " << jv[i];
        worst = std::max(worst, err);
      }
      ++checked;
    }
    EXPECT_GE(found, 20) << p[0] << "-" << p[1];
  }
  std::printf("[ worst ] JVP vs central differences at %d random poses: %.3g\n", checked, worst);
}

TEST(CollisionDerivatives, VjpSatisfiesTheAdjointIdentity) {
  std::mt19937 rng(5);
  std::normal_distribution<double> g(0, 1);
  double worst = 0;
  std::string worst_case;
  for (const PairCase& c : pair_cases()) {
    for (int rep = 0; rep < 4; ++rep) {
      // any 9-vector as the matrix direction, not only rotation tangents
      const Direction d = random_direction(rng, c.a, c.b, rep % 2 == 0, false);
      Contact<double> con[kMaxContactsPerPair];
      ContactTangent<double> dcon[kMaxContactsPerPair], adj[kMaxContactsPerPair];
      const int n = collide_geoms_jvp<double, double>(c.a.type, c.b.type, c.a.pos, c.a.mat, c.a.size, c.b.pos,
                                                      c.b.mat, c.b.size, c.margin, d.dpos1, d.dmat1, d.dpos2,
                                                      d.dmat2, con, dcon);
      for (int i = 0; i < n; ++i) {
        adj[i].dist = g(rng);
        for (double& v : adj[i].pos) v = g(rng);
        for (double& v : adj[i].frame) v = g(rng);
      }
      // accumulation: start from nonzero values and subtract them afterwards
      double gpos1[3], gmat1[9], gpos2[3], gmat2[9], start[24];
      for (int k = 0; k < 24; ++k) start[k] = g(rng);
      for (int k = 0; k < 3; ++k) {
        gpos1[k] = start[k];
        gpos2[k] = start[3 + k];
      }
      for (int k = 0; k < 9; ++k) {
        gmat1[k] = start[6 + k];
        gmat2[k] = start[15 + k];
      }
      const int nv = collide_geoms_vjp<double, double>(c.a.type, c.b.type, c.a.pos, c.a.mat, c.a.size, c.b.pos,
                                                       c.b.mat, c.b.size, c.margin, adj, gpos1, gmat1, gpos2,
                                                       gmat2);
      ASSERT_EQ(nv, n) << c.name;
      const std::vector<double> a = flatten(adj, n), j = flatten(dcon, n);
      const double lhs = inner(a, j);
      double rhs = 0, scale = 0;
      for (int k = 0; k < 3; ++k) {
        rhs += (gpos1[k] - start[k]) * d.dpos1[k] + (gpos2[k] - start[3 + k]) * d.dpos2[k];
        scale += std::abs((gpos1[k] - start[k]) * d.dpos1[k]) + std::abs((gpos2[k] - start[3 + k]) * d.dpos2[k]);
      }
      for (int k = 0; k < 9; ++k) {
        rhs += (gmat1[k] - start[6 + k]) * d.dmat1[k] + (gmat2[k] - start[15 + k]) * d.dmat2[k];
        scale += std::abs((gmat1[k] - start[6 + k]) * d.dmat1[k]) +
                 std::abs((gmat2[k] - start[15 + k]) * d.dmat2[k]);
      }
      for (size_t i = 0; i < a.size(); ++i) scale += std::abs(a[i] * j[i]);
      const double rel = std::abs(lhs - rhs) / std::max(std::max(std::abs(lhs), std::abs(rhs)), 1e-300);
      const double rel_scale = std::abs(lhs - rhs) / std::max(scale, 1e-300);
      EXPECT_LT(rel_scale, 1e-12) << c.name << ": <adj, jvp> " << lhs << " <vjp, dir> " << rhs;
      EXPECT_LT(rel, 1e-10) << c.name << ": <adj, jvp> " << lhs << " <vjp, dir> " << rhs;
      if (rel > worst) {
        worst = rel;
        worst_case = c.name;
      }
    }
  }
  std::printf("[ worst ] adjoint identity, relative: %.3g (%s)\n", worst, worst_case.c_str());
}

TEST(CollisionDerivatives, VecTangentsEqualScalarSweeps) {
  constexpr int K = 3;
  using V = Vec<double, K>;
  std::mt19937 rng(9);
  std::normal_distribution<double> g(0, 1);
  for (const PairCase& c : pair_cases()) {
    Direction d[K];
    V dp1[3], dm1[9], dp2[3], dm2[9];
    for (int q = 0; q < K; ++q) {
      d[q] = random_direction(rng, c.a, c.b, false, false);
      for (int k = 0; k < 3; ++k) {
        dp1[k][q] = d[q].dpos1[k];
        dp2[k][q] = d[q].dpos2[k];
      }
      for (int k = 0; k < 9; ++k) {
        dm1[k][q] = d[q].dmat1[k];
        dm2[k][q] = d[q].dmat2[k];
      }
    }
    Contact<double> con[kMaxContactsPerPair];
    ContactTangent<V> dv[kMaxContactsPerPair], adjv[kMaxContactsPerPair];
    const int n = collide_geoms_jvp<double, V>(c.a.type, c.b.type, c.a.pos, c.a.mat, c.a.size, c.b.pos,
                                               c.b.mat, c.b.size, c.margin, dp1, dm1, dp2, dm2, con, dv);
    ContactTangent<double> adj[K][kMaxContactsPerPair];
    for (int q = 0; q < K; ++q) {
      ContactTangent<double> ds[kMaxContactsPerPair];
      collide_geoms_jvp<double, double>(c.a.type, c.b.type, c.a.pos, c.a.mat, c.a.size, c.b.pos, c.b.mat,
                                        c.b.size, c.margin, d[q].dpos1, d[q].dmat1, d[q].dpos2, d[q].dmat2, con,
                                        ds);
      const std::vector<double> s = flatten(ds, n);
      const std::vector<V> v = flatten(dv, n);
      for (size_t i = 0; i < s.size(); ++i) EXPECT_EQ(v[i][q], s[i]) << c.name;
      for (int i = 0; i < n; ++i) {
        adj[q][i].dist = adjv[i].dist[q] = g(rng);
        for (int k = 0; k < 3; ++k) adj[q][i].pos[k] = adjv[i].pos[k][q] = g(rng);
        for (int k = 0; k < 9; ++k) adj[q][i].frame[k] = adjv[i].frame[k][q] = g(rng);
      }
    }
    V gp1[3], gm1[9], gp2[3], gm2[9];
    for (auto* arr : {gp1, gp2}) {
      for (int k = 0; k < 3; ++k) arr[k] = V::zero();
    }
    for (auto* arr : {gm1, gm2}) {
      for (int k = 0; k < 9; ++k) arr[k] = V::zero();
    }
    collide_geoms_vjp<double, V>(c.a.type, c.b.type, c.a.pos, c.a.mat, c.a.size, c.b.pos, c.b.mat, c.b.size,
                                 c.margin, adjv, gp1, gm1, gp2, gm2);
    for (int q = 0; q < K; ++q) {
      double sp1[3] = {0}, sm1[9] = {0}, sp2[3] = {0}, sm2[9] = {0};
      collide_geoms_vjp<double, double>(c.a.type, c.b.type, c.a.pos, c.a.mat, c.a.size, c.b.pos, c.b.mat,
                                        c.b.size, c.margin, adj[q], sp1, sm1, sp2, sm2);
      for (int k = 0; k < 3; ++k) {
        EXPECT_EQ(gp1[k][q], sp1[k]) << c.name;
        EXPECT_EQ(gp2[k][q], sp2[k]) << c.name;
      }
      for (int k = 0; k < 9; ++k) {
        EXPECT_EQ(gm1[k][q], sm1[k]) << c.name;
        EXPECT_EQ(gm2[k][q], sm2[k]) << c.name;
      }
    }
  }
}

// =============================================================================================
// candidate pairs

// a plane, a hinge chain a-b-(c welded to b)-d-e and a static body: weld bodies, the parent
// filter, contype/conaffinity (ge only meets geoms with bit 2, the ghost nothing)
const char* kChainXml = R"(
<mujoco model="collision_chain">
  <size nconmax="500" njmax="2000"/>
  <option>FLAGS</option>
  <worldbody>
    <geom name="floor" type="plane" size="5 5 0.1"/>
    <body name="a" pos="0 0 0.3">
      <joint name="ja" type="hinge" axis="0 1 0"/>
      <geom name="ga" type="capsule" fromto="0 0 0 0.3 0 0" size="0.05"/>
      <body name="b" pos="0.3 0 0">
        <joint name="jb" type="hinge" axis="0 1 0"/>
        <geom name="gb" type="capsule" fromto="0 0 0 0.3 0 0" size="0.05"/>
        <body name="c" pos="0.3 0 0">
          <geom name="gc" type="sphere" size="0.06"/>
          <body name="d" pos="0 0 0">
            <joint name="jd" type="hinge" axis="0 0 1"/>
            <geom name="gd" type="capsule" fromto="0 0 0 0.25 0 0" size="0.04"/>
            <geom name="ghost" type="sphere" pos="0.25 0 0" size="0.05" contype="0" conaffinity="0"/>
            <body name="e" pos="0.25 0 0">
              <joint name="je" type="hinge" axis="0 1 0"/>
              <geom name="ge" type="capsule" fromto="0 0 0 0.25 0 0" size="0.04" contype="2" conaffinity="2"/>
            </body>
          </body>
        </body>
      </body>
    </body>
    <body name="static" pos="0.2 0.12 0.2">
      <geom name="gs" type="sphere" size="0.1" contype="3" conaffinity="3"/>
    </body>
  </worldbody>
</mujoco>)";

std::string chain_xml(const std::string& flags) {
  std::string xml = kChainXml;
  xml.replace(xml.find("FLAGS"), 5, flags);
  return xml;
}

std::vector<std::string> named_pairs(const Model& m, const std::vector<std::array<int, 2>>& pairs) {
  std::vector<std::string> r;
  for (const auto& p : pairs) r.push_back(m.geom_name[p[0]] + "-" + m.geom_name[p[1]]);
  return r;
}

TEST(CollisionCandidates, HingeChainFilters) {
  const Model m = load_mjcf_string(chain_xml(""), "chain");
  const auto cand = collision_candidates(m);
  // geom1 is the geom of smaller type (sphere before capsule); equal types: lower body first
  const std::vector<std::string> expected = {"floor-ga", "floor-gb", "floor-gc", "floor-gd", "ga-gd",
                                             "gs-ga",    "gs-gb",    "gc-gs",    "gs-gd",    "gs-ge"};
  EXPECT_EQ(named_pairs(m, cand), expected);
  EXPECT_EQ(max_contacts(m, cand), 2 + 2 + 1 + 2 + 2 + 1 + 1 + 1 + 1 + 1);

  const Model mf = load_mjcf_string(chain_xml(R"(<flag filterparent="disable"/>)"), "chain_nofilter");
  ASSERT_TRUE(mf.opt_disableflags & kDisableFilterparent);
  const std::vector<std::string> expected_nofilter = {
      "floor-ga", "floor-gb", "floor-gc", "floor-gd", "ga-gb", "gc-ga", "ga-gd", "gs-ga",
      "gb-gd",    "gs-gb",    "gc-gd",    "gc-gs",    "gs-gd", "gs-ge"};
  EXPECT_EQ(named_pairs(mf, collision_candidates(mf)), expected_nofilter);

  const Model mc = load_mjcf_string(chain_xml(R"(<flag contact="disable"/>)"), "chain_nocontact");
  EXPECT_TRUE(collision_candidates(mc).empty());
  const Model mk = load_mjcf_string(chain_xml(R"(<flag constraint="disable"/>)"), "chain_noconstraint");
  EXPECT_TRUE(collision_candidates(mk).empty());
}

TEST(CollisionCandidates, WeldIds) {
  const Model m = load_mjcf_string(chain_xml(""), "chain");
  // world, a, b, c (welded to b), d, e, static (welded to the world)
  EXPECT_EQ(body_weldid(m), (std::vector<int>{0, 1, 2, 2, 4, 5, 0}));
}

std::string unsupported_message(const std::string& xml) {
  try {
    const Model m = load_mjcf_string(xml, "unsupported");
    collision_candidates(m);
  } catch (const InputError& e) {  // the user's model: exit status 2 in the CLI
    return e.what();
  }
  return "";
}

TEST(CollisionCandidates, UnsupportedPairThrowsNamingBothGeoms) {
  const std::string cyl = unsupported_message(R"(
<mujoco>
  <worldbody>
    <geom name="ground" type="plane" size="1 1 0.1"/>
    <body name="can" pos="0 0 1"><freejoint/><geom name="can" type="cylinder" size="0.1 0.2"/></body>
  </worldbody>
</mujoco>)");
  EXPECT_NE(cyl.find("geom 'ground' (plane)"), std::string::npos) << cyl;
  EXPECT_NE(cyl.find("geom 'can' (cylinder)"), std::string::npos) << cyl;
  EXPECT_NE(cyl.find("supported pairs: plane-sphere"), std::string::npos) << cyl;

  // unnamed geoms are named by index; the sphere comes first (smaller type)
  const std::string ell = unsupported_message(R"(
<mujoco>
  <worldbody>
    <body pos="0 0 1"><freejoint/><geom type="ellipsoid" size="0.1 0.2 0.3"/></body>
    <body pos="0 0 2"><freejoint/><geom type="sphere" size="0.1"/></body>
  </worldbody>
</mujoco>)");
  EXPECT_NE(ell.find("geom 1 (sphere) and geom 0 (ellipsoid)"), std::string::npos) << ell;

  const std::string box = unsupported_message(R"(
<mujoco>
  <worldbody>
    <body pos="0 0 1"><freejoint/><geom name="crate" type="box" size="0.1 0.2 0.3"/></body>
    <body pos="0 0 2"><freejoint/><geom name="can" type="cylinder" size="0.1 0.2"/></body>
  </worldbody>
</mujoco>)");
  EXPECT_NE(box.find("geom 'can' (cylinder) and geom 'crate' (box)"), std::string::npos) << box;

  // every pair with a box that MuJoCo 2.2.2 has a primitive function for is a candidate
  const Model boxes = load_mjcf_string(R"(
<mujoco>
  <worldbody>
    <geom name="floor" type="plane" size="1 1 0.1"/>
    <body pos="0 0 1"><freejoint/><geom name="crate" type="box" size="0.1 0.2 0.3"/></body>
    <body pos="0 0 2"><freejoint/><geom name="ball" type="sphere" size="0.1"/></body>
    <body pos="0 0 3"><freejoint/><geom name="rod" type="capsule" size="0.1 0.2"/></body>
    <body pos="0 0 4"><freejoint/><geom name="brick" type="box" size="0.1 0.2 0.1"/></body>
  </worldbody>
</mujoco>)",
                                       "boxes");
  EXPECT_EQ(named_pairs(boxes, collision_candidates(boxes)),
            (std::vector<std::string>{"floor-crate", "floor-ball", "floor-rod", "floor-brick", "ball-crate",
                                      "rod-crate", "crate-brick", "ball-rod", "ball-brick", "rod-brick"}));

  // excluded by contype/conaffinity, or both welded to the world: no error, no candidate
  const Model ok = load_mjcf_string(R"(
<mujoco>
  <worldbody>
    <geom type="plane" size="1 1 0.1"/>
    <geom type="cylinder" pos="0 0 0.2" size="0.1 0.2" contype="4" conaffinity="4"/>
    <body pos="0 0 1"><freejoint/><geom type="cylinder" size="0.1 0.2" contype="2" conaffinity="2"/></body>
    <body pos="0 0 2"><freejoint/><geom type="sphere" size="0.1"/></body>
  </worldbody>
</mujoco>)",
                                    "ok");
  const auto cand = collision_candidates(ok);
  ASSERT_EQ(cand.size(), 1u);
  EXPECT_EQ(cand[0], (std::array<int, 2>{0, 3}));
}

// =============================================================================================
// against MuJoCo 2.2.2

#if defined(PHYDREAM_TEST_WITH_MUJOCO)

// free bodies over a tilted plane: spheres, capsules, boxes, a body with two geoms, margins on
// some geoms
const char* kFreeXml = R"(
<mujoco model="collision_free">
  <size nconmax="1000" njmax="4000"/>
  <worldbody>
    <geom name="floor" type="plane" size="5 5 0.1" euler="5 -3 0" conaffinity="3" margin="0.01"/>
    <body name="s1" pos="0 0 1"><freejoint/><geom name="s1" type="sphere" size="0.1"/></body>
    <body name="s2" pos="0 0 1"><freejoint/><geom name="s2" type="sphere" size="0.15" margin="0.03"/></body>
    <body name="c1" pos="0 0 1"><freejoint/><geom name="c1" type="capsule" size="0.05 0.2"/></body>
    <body name="c2" pos="0 0 1"><freejoint/><geom name="c2" type="capsule" size="0.08 0.15" margin="0.02"/></body>
    <body name="b1" pos="0 0 1"><freejoint/><geom name="b1" type="box" size="0.1 0.15 0.2"/></body>
    <body name="b2" pos="0 0 1"><freejoint/><geom name="b2" type="box" size="0.2 0.1 0.05" margin="0.04"/></body>
    <body name="combo" pos="0 0 1"><freejoint/>
      <geom name="combo_c" type="capsule" fromto="0 0 0 0.2 0 0" size="0.05"/>
      <geom name="combo_s" type="sphere" pos="0 0.1 0" size="0.07" margin="0.01"/>
    </body>
  </worldbody>
</mujoco>)";

using testing::MjDataPtr;
using testing::MjModelPtr;

struct Worst {
  double dist = 0, pos = 0, frame = 0;
  long contacts = 0;
  void print(const char* what) const {
    std::printf("[ worst ] %s, %ld contacts: dist %.3g, pos %.3g, frame %.3g\n", what, contacts, dist, pos, frame);
  }
};

// our contacts for every candidate pair against MuJoCo's d->contact; records the pairs MuJoCo
// reports
void compare_with_mujoco(const mjModel* m, const mjData* d, const std::vector<std::array<int, 2>>& cand,
                         Worst& worst, std::set<std::array<int, 2>>* reported, const std::string& what) {
  std::map<std::array<int, 2>, std::vector<const mjContact*>> theirs;
  for (int i = 0; i < d->ncon; ++i) {
    const std::array<int, 2> key = {d->contact[i].geom1, d->contact[i].geom2};
    theirs[key].push_back(&d->contact[i]);
    if (reported) reported->insert(key);
  }
  const std::set<std::array<int, 2>> cand_set(cand.begin(), cand.end());
  for (const auto& kv : theirs) {
    EXPECT_TRUE(cand_set.count(kv.first)) << what << ": MuJoCo pair " << kv.first[0] << "-" << kv.first[1]
                                          << " is not a candidate";
  }
  for (const auto& p : cand) {
    const int g1 = p[0], g2 = p[1];
    Contact<double> ours[kMaxContactsPerPair];
    const int n = collide_geoms<double>(m->geom_type[g1], m->geom_type[g2], d->geom_xpos + 3 * g1,
                                        d->geom_xmat + 9 * g1, m->geom_size + 3 * g1, d->geom_xpos + 3 * g2,
                                        d->geom_xmat + 9 * g2, m->geom_size + 3 * g2,
                                        std::max(m->geom_margin[g1], m->geom_margin[g2]), ours, g1, g2);
    const auto it = theirs.find(p);
    const size_t nt = it == theirs.end() ? 0 : it->second.size();
    ASSERT_EQ(size_t(n), nt) << what << ": pair " << g1 << "-" << g2;
    std::vector<bool> used(n, false);
    for (size_t i = 0; i < nt; ++i) {
      const mjContact* c = it->second[i];
      // match by position (MuJoCo may report one contact twice: match duplicates in turn)
      int best = -1;
      double best_d = 1e300;
      for (int j = 0; j < n; ++j) {
        if (used[j]) continue;
        double dd = 0;
        for (int k = 0; k < 3; ++k) dd += (ours[j].pos[k] - c->pos[k]) * (ours[j].pos[k] - c->pos[k]);
        if (dd < best_d) {
          best_d = dd;
          best = j;
        }
      }
      used[best] = true;
      const Contact<double>& o = ours[best];
      EXPECT_EQ(o.geom1, c->geom1);
      EXPECT_EQ(o.geom2, c->geom2);
      const double ed = std::abs(o.dist - c->dist);
      double ep = 0, ef = 0;
      for (int k = 0; k < 3; ++k) ep = std::max(ep, std::abs(o.pos[k] - c->pos[k]));
      for (int k = 0; k < 9; ++k) ef = std::max(ef, std::abs(o.frame[k] - c->frame[k]));
      EXPECT_LE(ed, 1e-12) << what << ": pair " << g1 << "-" << g2;
      EXPECT_LE(ep, 1e-12) << what << ": pair " << g1 << "-" << g2;
      EXPECT_LE(ef, 1e-12) << what << ": pair " << g1 << "-" << g2;
      worst.dist = std::max(worst.dist, ed);
      worst.pos = std::max(worst.pos, ep);
      worst.frame = std::max(worst.frame, ef);
      ++worst.contacts;
    }
  }
}

// the phydream model of the same MJCF, checked to number geoms and bodies as MuJoCo does
Model phydream_model(const std::string& xml, const mjModel* m) {
  Model pm = load_mjcf_string(xml, "test");
  EXPECT_EQ(pm.ngeom, m->ngeom);
  EXPECT_EQ(pm.nbody, m->nbody);
  for (int g = 0; g < std::min(pm.ngeom, m->ngeom); ++g) {
    EXPECT_EQ(pm.geom_type[g], m->geom_type[g]);
    EXPECT_EQ(pm.geom_bodyid[g], m->geom_bodyid[g]);
  }
  std::vector<int> weld(m->body_weldid, m->body_weldid + m->nbody);
  EXPECT_EQ(body_weldid(pm), weld);
  return pm;
}

// kFreeXml in MuJoCo (after mj_forward) and in PhyDream, with PhyDream's candidate pairs
struct FreeScene {
  MjModelPtr mp = testing::mujoco_load_string(kFreeXml);
  mjModel* m = mp.get();
  MjDataPtr dp{mj_makeData(m)};
  mjData* d = dp.get();
  Model pm;
  std::vector<std::array<int, 2>> cand;
  FreeScene() {
    mj_forward(m, d);
    pm = phydream_model(kFreeXml, m);
    cand = collision_candidates(pm);
  }
};

TEST(CollisionMujoco, DirectPosesOfEveryCase) {
  // each test case's geoms placed into a MuJoCo model (sizes, margins and rbound overwritten),
  // every other geom parked far above the plane, then mj_collision
  FreeScene scene;
  mjModel* m = scene.m;
  mjData* d = scene.d;
  const Model& pm = scene.pm;
  const auto& cand = scene.cand;
  // geoms by type, in index order: 0 floor, 1-2 spheres, 3-4 capsules, 5-6 boxes
  std::map<int, std::vector<int>> by_type;
  for (int g = 0; g < m->ngeom; ++g) {
    if (m->geom_bodyid[g] != 7) by_type[m->geom_type[g]].push_back(g);
  }
  Worst worst;
  for (const PairCase& c : pair_cases()) {
    const int ga = by_type[c.a.type][0];
    const int gb = by_type[c.b.type][c.a.type == c.b.type ? 1 : 0];
    const double normal[3] = {c.a.type == kPlane ? c.a.mat[2] : 0, c.a.type == kPlane ? c.a.mat[5] : 0,
                              c.a.type == kPlane ? c.a.mat[8] : 1};
    for (int g = 0; g < m->ngeom; ++g) {
      for (int k = 0; k < 3; ++k) d->geom_xpos[3 * g + k] = 50 * normal[k] + (k == 0 ? 10.0 * g : 0.0);
      for (int k = 0; k < 9; ++k) d->geom_xmat[9 * g + k] = kIdentity[k];
    }
    if (c.a.type != kPlane) {
      // the floor far below
      d->geom_xpos[2] = -100;
    }
    for (const auto& [g, geom] : {std::pair<int, const Geom*>{ga, &c.a}, {gb, &c.b}}) {
      for (int k = 0; k < 3; ++k) d->geom_xpos[3 * g + k] = geom->pos[k];
      for (int k = 0; k < 9; ++k) d->geom_xmat[9 * g + k] = geom->mat[k];
      for (int k = 0; k < 3; ++k) m->geom_size[3 * g + k] = geom->size[k];
      m->geom_margin[g] = c.margin;
      const double* s = geom->size;
      m->geom_rbound[g] = geom->type == kSphere ? s[0]
                          : geom->type == kCapsule ? s[0] + s[1]
                          : geom->type == kBox ? std::sqrt(s[0] * s[0] + s[1] * s[1] + s[2] * s[2])
                                               : 0;
    }
    mj_collision(m, d);
    EXPECT_GT(d->ncon, 0) << c.name;
    for (int i = 0; i < d->ncon; ++i) {
      EXPECT_EQ(d->contact[i].geom1, ga) << c.name;
      EXPECT_EQ(d->contact[i].geom2, gb) << c.name;
    }
    compare_with_mujoco(m, d, cand, worst, nullptr, c.name);
  }
  worst.print("MuJoCo mj_collision, every test case");
}

TEST(CollisionMujoco, DirectRandomPoses) {
  // every geom at a random pose in a small region (rotations, and margins from the model)
  FreeScene scene;
  mjModel* m = scene.m;
  mjData* d = scene.d;
  const Model& pm = scene.pm;
  const auto& cand = scene.cand;
  std::mt19937 rng(17);
  std::uniform_real_distribution<double> u(-0.3, 0.3);
  Worst worst;
  std::set<std::array<int, 2>> reported;
  for (int sample = 0; sample < 400; ++sample) {
    for (int g = 0; g < m->ngeom; ++g) {
      double r[9];
      random_rotation(rng, r);
      // the floor stays near the origin, tilted
      if (g == 0) axis_angle_mat(u(rng), u(rng), 1, u(rng), r);
      for (int k = 0; k < 3; ++k) d->geom_xpos[3 * g + k] = g == 0 ? 0.1 * u(rng) : u(rng);
      for (int k = 0; k < 9; ++k) d->geom_xmat[9 * g + k] = r[k];
    }
    mj_collision(m, d);
    compare_with_mujoco(m, d, cand, worst, &reported, "random pose " + std::to_string(sample));
  }
  worst.print("MuJoCo mj_collision, random poses");
  for (const auto& p : cand) {
    EXPECT_TRUE(reported.count(p)) << "MuJoCo never reported candidate " << pm.geom_name[p[0]] << "-"
                                   << pm.geom_name[p[1]];
  }
}

TEST(CollisionMujoco, DirectAlignedPoses) {
  // rotations by multiples of 90 degrees about z, positions on a grid: boxes meet face to face
  // and edge to edge exactly, where box-box finds corners twice and MuJoCo drops the repeats
  FreeScene scene;
  mjModel* m = scene.m;
  mjData* d = scene.d;
  const Model& pm = scene.pm;
  const auto& cand = scene.cand;
  std::mt19937 rng(29);
  std::uniform_int_distribution<int> grid(-6, 6), quarter(0, 3);
  Worst worst;
  std::set<std::array<int, 2>> reported;
  for (int sample = 0; sample < 2000; ++sample) {
    for (int g = 0; g < m->ngeom; ++g) {
      const int q = quarter(rng);
      const double c = q == 0 ? 1 : q == 2 ? -1 : 0, sn = q == 1 ? 1 : q == 3 ? -1 : 0;
      const double r[9] = {c, -sn, 0, sn, c, 0, 0, 0, 1};
      for (int k = 0; k < 3; ++k) d->geom_xpos[3 * g + k] = g == 0 ? 0.0 : 0.025 * grid(rng);
      for (int k = 0; k < 9; ++k) d->geom_xmat[9 * g + k] = g == 0 ? kIdentity[k] : r[k];
    }
    mj_collision(m, d);
    compare_with_mujoco(m, d, cand, worst, &reported, "aligned pose " + std::to_string(sample));
  }
  worst.print("MuJoCo mj_collision, aligned poses");
  const int b1 = m->ngeom - 4, b2 = m->ngeom - 3;  // the two boxes
  EXPECT_EQ(m->geom_type[b1], mjGEOM_BOX);
  EXPECT_EQ(m->geom_type[b2], mjGEOM_BOX);
  EXPECT_TRUE(reported.count({b1, b2})) << "the boxes never met";
}

// mj_forward on random configurations, contacts from MuJoCo's own geom poses
void forward_random_qpos(const std::string& xml, const char* what, int samples, double spread) {
  MjModelPtr mp = testing::mujoco_load_string(xml);
  mjModel* m = mp.get();
  MjDataPtr dp(mj_makeData(m));
  mjData* d = dp.get();
  const Model pm = phydream_model(xml, m);
  const auto cand = collision_candidates(pm);
  std::mt19937 rng(23);
  std::uniform_real_distribution<double> u(-1, 1);
  std::normal_distribution<double> g(0, 1);
  Worst worst;
  std::set<std::array<int, 2>> reported;
  int max_ncon = 0;
  for (int sample = 0; sample < samples; ++sample) {
    for (int j = 0; j < m->njnt; ++j) {
      double* q = d->qpos + m->jnt_qposadr[j];
      if (m->jnt_type[j] == mjJNT_FREE) {
        q[0] = spread * u(rng);
        q[1] = spread * u(rng);
        q[2] = 0.1 + 0.5 * spread * u(rng);
        double n = 0;
        for (int k = 3; k < 7; ++k) {
          q[k] = g(rng);
          n += q[k] * q[k];
        }
        for (int k = 3; k < 7; ++k) q[k] /= std::sqrt(n);
      } else {
        q[0] = M_PI * u(rng);
      }
    }
    mj_forward(m, d);
    max_ncon = std::max(max_ncon, d->ncon);
    compare_with_mujoco(m, d, cand, worst, &reported, std::string(what) + " sample " + std::to_string(sample));
  }
  worst.print(what);
  std::printf("[ info  ] %s: %zu of %zu candidate pairs reported, up to %d contacts (bound %d)\n", what,
              reported.size(), cand.size(), max_ncon, max_contacts(pm, cand));
  for (const auto& p : cand) {
    EXPECT_TRUE(reported.count(p)) << what << ": MuJoCo never reported candidate " << pm.geom_name[p[0]] << "-"
                                   << pm.geom_name[p[1]];
  }
  EXPECT_LE(max_ncon, max_contacts(pm, cand));
}

TEST(CollisionMujoco, ForwardFreeBodies) { forward_random_qpos(kFreeXml, "mj_forward, free bodies", 600, 0.35); }

TEST(CollisionMujoco, ForwardHingeChain) {
  forward_random_qpos(chain_xml(""), "mj_forward, hinge chain", 3000, 0);
}

TEST(CollisionMujoco, ForwardHingeChainNoParentFilter) {
  forward_random_qpos(chain_xml(R"(<flag filterparent="disable"/>)"), "mj_forward, hinge chain, filterparent off",
                      3000, 0);
}

#endif  // PHYDREAM_TEST_WITH_MUJOCO

}  // namespace
}  // namespace phydream
