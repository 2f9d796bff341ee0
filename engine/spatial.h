// Fixed-size 3D and spatial algebra for articulated bodies, host and device.
//
// Conventions follow MuJoCo's documentation (Computation chapter, "Notation"):
//   - quaternions are (w, x, y, z), unit, composed by the Hamilton product; q rotates a vector
//     from the child frame to the parent frame
//   - 3x3 matrices are row-major; a body's xmat maps body coordinates to world coordinates
//   - spatial vectors are 6-vectors (angular; linear). A motion vector (w, v) is an angular velocity
//     and the linear velocity of the point at the frame origin; a force vector (t, f) is a torque
//     about the frame origin and a force
//   - a spatial inertia is stored, like mjData.cinert, as 10 numbers: the rotational inertia about
//     the frame origin (xx, yy, zz, xy, xz, yz), mass times the centre of mass offset (3), mass
// Every function here is PHYDREAM_HD and works on values (no pointers kept), so it inlines into
// kernels; load/store helpers move them in and out of flat Scalar arrays.
#pragma once

#include <cmath>

#include "engine/core.h"
#include "engine/small_vec.h"

namespace phydream {

namespace detail {
PHYDREAM_HD float atan2_(float y, float x) { return atan2f(y, x); }
PHYDREAM_HD double atan2_(double y, double x) { return atan2(y, x); }

// below this a vector or quaternion norm is treated as zero (MuJoCo's mjMINVAL): normalising it
// would divide by (nearly) zero, so the callers fall back to a default direction
template <class S>
PHYDREAM_HD constexpr S min_norm() { return S(1e-15); }

template <class S>
PHYDREAM_HD constexpr S pi() { return S(3.14159265358979323846); }
}  // namespace detail

template <class S>
using Vec3 = Vec<S, 3>;

/// Row-major 3x3 matrix.
template <class S>
struct Mat3 {
  S m[9];
};

/// Unit quaternion (w, x, y, z).
template <class S>
struct Quat {
  S w, x, y, z;
};

/// Spatial motion vector: angular velocity, linear velocity of the frame origin.
template <class S>
struct Motion {
  Vec3<S> ang, lin;
};

/// Spatial force vector: torque about the frame origin, force.
template <class S>
struct Force {
  Vec3<S> ang, lin;
};

/// Spatial inertia about a frame origin, MuJoCo's cinert layout: rot = (xx, yy, zz, xy, xz, yz)
/// about the origin, mc = mass * (centre of mass - origin), mass.
template <class S>
struct Inertia {
  S rot[6];
  Vec3<S> mc;
  S mass;
};

// =============================================================================================
// loads and stores from flat arrays

template <class S>
PHYDREAM_HD Vec3<S> load_vec3(const S* p) { return Vec3<S>{{p[0], p[1], p[2]}}; }
template <class S>
PHYDREAM_HD void store(S* p, const Vec3<S>& v) {
  p[0] = v[0];
  p[1] = v[1];
  p[2] = v[2];
}
template <class S>
PHYDREAM_HD Quat<S> load_quat(const S* p) { return Quat<S>{p[0], p[1], p[2], p[3]}; }
template <class S>
PHYDREAM_HD void store(S* p, const Quat<S>& q) {
  p[0] = q.w;
  p[1] = q.x;
  p[2] = q.y;
  p[3] = q.z;
}
template <class S>
PHYDREAM_HD Mat3<S> load_mat3(const S* p) {
  Mat3<S> r;
  for (int i = 0; i < 9; ++i) r.m[i] = p[i];
  return r;
}
template <class S>
PHYDREAM_HD void store(S* p, const Mat3<S>& a) {
  for (int i = 0; i < 9; ++i) p[i] = a.m[i];
}
template <class S>
PHYDREAM_HD Motion<S> load_motion(const S* p) {
  return Motion<S>{load_vec3(p), load_vec3(p + 3)};
}
template <class S>
PHYDREAM_HD void store(S* p, const Motion<S>& v) {
  store(p, v.ang);
  store(p + 3, v.lin);
}
template <class S>
PHYDREAM_HD Force<S> load_force(const S* p) {
  return Force<S>{load_vec3(p), load_vec3(p + 3)};
}
template <class S>
PHYDREAM_HD void store(S* p, const Force<S>& f) {
  store(p, f.ang);
  store(p + 3, f.lin);
}
template <class S>
PHYDREAM_HD Inertia<S> load_inertia(const S* p) {
  Inertia<S> r;
  for (int i = 0; i < 6; ++i) r.rot[i] = p[i];
  r.mc = load_vec3(p + 6);
  r.mass = p[9];
  return r;
}
template <class S>
PHYDREAM_HD void store(S* p, const Inertia<S>& a) {
  for (int i = 0; i < 6; ++i) p[i] = a.rot[i];
  store(p + 6, a.mc);
  p[9] = a.mass;
}

// =============================================================================================
// 3-vectors and 3x3 matrices

template <class S>
PHYDREAM_HD S dot(const Vec3<S>& a, const Vec3<S>& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

template <class S>
PHYDREAM_HD Vec3<S> cross(const Vec3<S>& a, const Vec3<S>& b) {
  return Vec3<S>{{a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]}};
}

template <class S>
PHYDREAM_HD S norm(const Vec3<S>& a) { return sqrt_(dot(a, a)); }

/// R v.
template <class S>
PHYDREAM_HD Vec3<S> mat_vec(const Mat3<S>& r, const Vec3<S>& v) {
  const S* m = r.m;
  return Vec3<S>{{m[0] * v[0] + m[1] * v[1] + m[2] * v[2], m[3] * v[0] + m[4] * v[1] + m[5] * v[2],
                  m[6] * v[0] + m[7] * v[1] + m[8] * v[2]}};
}

/// Column k of R: the k-th axis of the rotated frame.
template <class S>
PHYDREAM_HD Vec3<S> mat_col(const Mat3<S>& r, int k) { return Vec3<S>{{r.m[k], r.m[3 + k], r.m[6 + k]}}; }

// =============================================================================================
// quaternions

/// Hamilton product a b: rotate by b, then by a.
template <class S>
PHYDREAM_HD Quat<S> quat_mul(const Quat<S>& a, const Quat<S>& b) {
  return Quat<S>{a.w * b.w - a.x * b.x - a.y * b.y - a.z * b.z,
                 a.w * b.x + a.x * b.w + a.y * b.z - a.z * b.y,
                 a.w * b.y - a.x * b.z + a.y * b.w + a.z * b.x,
                 a.w * b.z + a.x * b.y - a.y * b.x + a.z * b.w};
}

/// Conjugate: the inverse rotation of a unit quaternion.
template <class S>
PHYDREAM_HD Quat<S> quat_conj(const Quat<S>& q) { return Quat<S>{q.w, -q.x, -q.y, -q.z}; }

/// q v q*: rotate v by the unit quaternion q, as v + 2 u x t with t = w v + u x v, u = (x, y, z).
/// The sums are grouped as in MuJoCo 2.2.2's mju_rotVecQuat (measured bit for bit), so that
/// trajectories can match MuJoCo's to rounding.
template <class S>
PHYDREAM_HD Vec3<S> quat_rotate(const Quat<S>& q, const Vec3<S>& v) {
  const Vec3<S> t{{q.w * v[0] + q.y * v[2] - q.z * v[1], q.w * v[1] + q.z * v[0] - q.x * v[2],
                   q.w * v[2] + q.x * v[1] - q.y * v[0]}};
  return Vec3<S>{{v[0] + S(2) * (q.y * t[2] - q.z * t[1]), v[1] + S(2) * (q.z * t[0] - q.x * t[2]),
                  v[2] + S(2) * (q.x * t[1] - q.y * t[0])}};
}

/// Rotation matrix of a unit quaternion.
template <class S>
PHYDREAM_HD Mat3<S> quat_to_mat(const Quat<S>& q) {
  const S ww = q.w * q.w, xx = q.x * q.x, yy = q.y * q.y, zz = q.z * q.z;
  const S wx = q.w * q.x, wy = q.w * q.y, wz = q.w * q.z;
  const S xy = q.x * q.y, xz = q.x * q.z, yz = q.y * q.z;
  return Mat3<S>{{ww + xx - yy - zz, S(2) * (xy - wz), S(2) * (xz + wy),
                  S(2) * (xy + wz), ww - xx + yy - zz, S(2) * (yz - wx),
                  S(2) * (xz - wy), S(2) * (yz + wx), ww - xx - yy + zz}};
}

/// q / |q|, computed as q * (1 / |q|) and applied even to a quaternion already within rounding of
/// unit length, as MuJoCo 2.2.2's mju_normalize4 does (measured); a (near) zero quaternion
/// becomes the identity, since it has no direction to keep.
template <class S>
PHYDREAM_HD Quat<S> quat_normalize(const Quat<S>& q) {
  const S n = sqrt_(q.w * q.w + q.x * q.x + q.y * q.y + q.z * q.z);
  if (n < detail::min_norm<S>()) return Quat<S>{S(1), S(0), S(0), S(0)};
  const S inv = S(1) / n;
  return Quat<S>{q.w * inv, q.x * inv, q.y * inv, q.z * inv};
}

/// v / |v| as v * (1 / |v|), and |v|; a (near) zero vector becomes (1, 0, 0) (MuJoCo's
/// mju_normalize3: the callers need some unit direction, and the magnitude returned is ~0).
template <class S>
PHYDREAM_HD Vec3<S> normalize3(const Vec3<S>& v, S* length) {
  const S n = sqrt_(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  *length = n;
  if (n < detail::min_norm<S>()) return Vec3<S>{{S(1), S(0), S(0)}};
  const S inv = S(1) / n;
  return Vec3<S>{{v[0] * inv, v[1] * inv, v[2] * inv}};
}

/// Rotation by `angle` about the unit `axis`: (cos(angle/2), sin(angle/2) axis).
template <class S>
PHYDREAM_HD Quat<S> quat_from_axis_angle(const Vec3<S>& axis, S angle) {
  // a zero angle gives the identity exactly, so a joint at its reference adds no rounding
  if (angle == S(0)) return Quat<S>{S(1), S(0), S(0), S(0)};
  S s, c;
  sincos_(S(0.5) * angle, &s, &c);
  return Quat<S>{c, s * axis[0], s * axis[1], s * axis[2]};
}

/// The rotation vector (axis * angle, angle in (-pi, pi]) of a unit quaternion: axis = u / |u|,
/// angle = 2 atan2(|u|, w), wrapped (MuJoCo's mju_quat2Vel with dt = 1).
template <class S>
PHYDREAM_HD Vec3<S> quat_to_rotvec(const Quat<S>& q) {
  S s;
  const Vec3<S> axis = normalize3(Vec3<S>{{q.x, q.y, q.z}}, &s);
  S angle = S(2) * detail::atan2_(s, q.w);
  // q and -q are the same rotation: take the short way round
  if (angle > detail::pi<S>()) angle -= S(2) * detail::pi<S>();
  return angle * axis;
}

/// The rotation vector r with qb exp(r) = qa, in qb's frame (MuJoCo's quaternion difference,
/// used by ball and free joint springs).
template <class S>
PHYDREAM_HD Vec3<S> quat_sub(const Quat<S>& qa, const Quat<S>& qb) {
  return quat_to_rotvec(quat_mul(quat_conj(qb), qa));
}

/// q exp(h w), renormalised: rotate q by the local angular velocity w for time h (MuJoCo's
/// documented quaternion integration of ball and free joints: the velocity is in the child
/// frame). As MuJoCo 2.2.2's mju_quatIntegrate (measured bit for bit): the rotation is built from
/// the normalised axis and the angle h |w|, q is not normalised before the product, the product is.
template <class S>
PHYDREAM_HD Quat<S> quat_integrate(const Quat<S>& q, const Vec3<S>& w, S h) {
  S speed;
  const Vec3<S> axis = normalize3(w, &speed);
  return quat_normalize(quat_mul(q, quat_from_axis_angle(axis, h * speed)));
}

// =============================================================================================
// spatial vectors

template <class S>
PHYDREAM_HD Motion<S> operator+(const Motion<S>& a, const Motion<S>& b) { return {a.ang + b.ang, a.lin + b.lin}; }
template <class S>
PHYDREAM_HD Motion<S> operator*(S s, const Motion<S>& a) { return {s * a.ang, s * a.lin}; }
template <class S>
PHYDREAM_HD Force<S> operator+(const Force<S>& a, const Force<S>& b) { return {a.ang + b.ang, a.lin + b.lin}; }

template <class S>
PHYDREAM_HD Motion<S> motion_zero() { return {Vec3<S>::zero(), Vec3<S>::zero()}; }
template <class S>
PHYDREAM_HD Force<S> force_zero() { return {Vec3<S>::zero(), Vec3<S>::zero()}; }

/// Power of a force on a motion: m . f.
template <class S>
PHYDREAM_HD S dot(const Motion<S>& m, const Force<S>& f) { return dot(m.ang, f.ang) + dot(m.lin, f.lin); }

/// Motion cross product v x m (Featherstone's crm): the rate of change of m carried by a frame
/// moving with v.
template <class S>
PHYDREAM_HD Motion<S> cross_motion(const Motion<S>& v, const Motion<S>& m) {
  return {cross(v.ang, m.ang), cross(v.ang, m.lin) + cross(v.lin, m.ang)};
}

/// Force cross product v x* f (Featherstone's crf = -crm^T).
template <class S>
PHYDREAM_HD Force<S> cross_force(const Motion<S>& v, const Force<S>& f) {
  return {cross(v.ang, f.ang) + cross(v.lin, f.lin), cross(v.ang, f.lin)};
}

/// Momentum I v of a spatial inertia moving with v: (I_o w + mc x v, m v - mc x w).
template <class S>
PHYDREAM_HD Force<S> inertia_mul(const Inertia<S>& a, const Motion<S>& v) {
  const S* r = a.rot;
  const Vec3<S>& w = v.ang;
  const Vec3<S> iw{{r[0] * w[0] + r[3] * w[1] + r[4] * w[2], r[3] * w[0] + r[1] * w[1] + r[5] * w[2],
                    r[4] * w[0] + r[5] * w[1] + r[2] * w[2]}};
  return {iw + cross(a.mc, v.lin), a.mass * v.lin - cross(a.mc, w)};
}

template <class S>
PHYDREAM_HD Inertia<S> operator+(const Inertia<S>& a, const Inertia<S>& b) {
  Inertia<S> r;
  for (int i = 0; i < 6; ++i) r.rot[i] = a.rot[i] + b.rot[i];
  r.mc = a.mc + b.mc;
  r.mass = a.mass + b.mass;
  return r;
}

/// Spatial inertia of a body about a world-aligned frame at `origin`: mass, principal moments
/// `diag` about its centre of mass along the columns of `frame` (world), centre of mass at
/// origin + offset. Parallel-axis theorem: I_o = R diag R^T + m (|d|^2 1 - d d^T).
template <class S>
PHYDREAM_HD Inertia<S> inertia_from_principal(S mass, const Vec3<S>& diag, const Mat3<S>& frame,
                                              const Vec3<S>& offset) {
  const S* r = frame.m;
  // R diag R^T, entry (i, j) = sum_k R_ik diag_k R_jk
  auto rdr = [&](int i, int j) {
    return r[3 * i] * diag[0] * r[3 * j] + r[3 * i + 1] * diag[1] * r[3 * j + 1] +
           r[3 * i + 2] * diag[2] * r[3 * j + 2];
  };
  const Vec3<S>& d = offset;
  Inertia<S> a;
  a.rot[0] = rdr(0, 0) + mass * (d[1] * d[1] + d[2] * d[2]);
  a.rot[1] = rdr(1, 1) + mass * (d[0] * d[0] + d[2] * d[2]);
  a.rot[2] = rdr(2, 2) + mass * (d[0] * d[0] + d[1] * d[1]);
  a.rot[3] = rdr(0, 1) - mass * d[0] * d[1];
  a.rot[4] = rdr(0, 2) - mass * d[0] * d[2];
  a.rot[5] = rdr(1, 2) - mass * d[1] * d[2];
  a.mc = mass * d;
  a.mass = mass;
  return a;
}

}  // namespace phydream
