// Narrow-phase collision detection between primitive geoms, as MuJoCo 2.2.2 computes it, with
// forward (JVP) and reverse (VJP) derivatives.
//
// What is reproduced (MuJoCo 2.2.2, engine_collision_primitive.c, engine_collision_box.c,
// engine_collision_driver.c and mju_makeFrame in engine_util_spatial.c), so that contacts equal
// MuJoCo's to rounding:
//   - geoms are ordered so that type1 <= type2 (mj_collideGeoms swaps them); the normal, the
//     first row of the contact frame, points from geom1 to geom2
//   - dist is the signed distance between the surfaces (negative in penetration); a contact is
//     emitted while dist <= margin (tested, as MuJoCo does, on the centre distance against
//     margin + radii before the radii are subtracted)
//   - pos is the midpoint between the two surfaces along the normal
//   - the frame is completed by mju_makeFrame: the normal is normalised again; the second row
//     starts from the capsule axis for plane-capsule contacts and otherwise from (0, 1, 0), or
//     (0, 0, 1) when the normal's y component is at least 0.5 in magnitude; it is made
//     orthogonal to the normal and normalised; the third row is normal x second row
//   - coincident sphere centres (also the nearest segment points of sphere-capsule and
//     capsule-capsule) take the normal normalise(z1 x z2) from the geoms' third axes, or
//     (1, 0, 0) when those are parallel
//   - plane-capsule: the two segment ends as spheres, +axis end first, up to 2 contacts;
//     capsule-capsule: one contact between the nearest segment points, except for parallel axes
//     (|det| < 1e-15): the ends of segment 1, then (while fewer than 2) the ends of segment 2,
//     each against its nearest point on the other segment, up to 2 contacts (which may repeat);
//     plane-box: the corners of the box's lower half within the margin, in corner order
//     i = 0..7 (bit k of i chooses +size[k]), the first 4 kept
//   - sphere-box, capsule-box, box-box: engine/collision_box.h (up to 1, 2 and 8 contacts),
//     after MuJoCo's bounding-sphere test (centre distance against the bounding radii plus the
//     margin); of box-box's contacts, one at the same position as a later one is dropped, as
//     mj_collideGeoms does. MuJoCo keeps every box-box contact (up to 24 in degenerate poses);
//     here the first 8 are kept
// MuJoCo's bounding-sphere prefilters are conservative for the other pairs and not repeated.
// Supported pairs: plane-sphere, plane-capsule, plane-box, sphere-sphere, sphere-capsule,
// sphere-box, capsule-capsule, capsule-box, box-box. Planes are infinite (the plane's size is
// ignored, as in MuJoCo).
//
// Inputs per geom: pos (3) world position, mat (9) row-major orientation whose columns are the
// geom's axes in world coordinates (MuJoCo's geom_xpos, geom_xmat), size (3) as in
// MuJoCo's geom_size (sphere: radius; capsule: radius, half-length; box: half-sizes).
//
// Derivatives are with respect to pos1, mat1, pos2, mat2 (sizes and margin are constants). The
// branch (which contacts exist, which segment points are clamped, which degenerate fallback is
// used) is decided by the primal values and held fixed. A mat tangent is any 9-vector: the code
// differentiates through the matrix entries it reads and does not assume a rotation's tangent.
// At coincident sphere centres the distance is not differentiable; its derivative along the
// chosen normal, n . (dc2 - dc1), is used. The pairs without a box have derivatives written by
// hand below; the box pairs run engine/collision_box.h on dual numbers (engine/dual.h), the JVP
// in one pass with the tangents' lanes, the VJP in passes of kBoxVjpLanes input directions
// contracted with the cotangents: the same numbers a hand-written tangent of that code would
// give, along the primal's branch.
//
// Everything per environment is PHYDREAM_HD, templated on the scalar S and the tangent type T
// (S, or Vec<S, K> for K directions at once; engine/small_vec.h), with fixed-size storage only.
// The host-only part at the end lists a model's candidate geom pairs under MuJoCo's filters.
#pragma once

#include <algorithm>
#include <array>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/collision_box.h"
#include "engine/core.h"
#include "engine/dual.h"
#include "engine/errors.h"
#include "engine/model.h"
#include "engine/small_vec.h"

namespace phydream {

/// One contact between geom1 and geom2 (MuJoCo's mjContact, the geometric part).
template <class S>
struct Contact {
  S dist;      // signed surface distance, negative in penetration
  S pos[3];    // world position, midway between the surfaces
  S frame[9];  // rows: normal (from geom1 to geom2), first tangent, second tangent
  int geom1, geom2;
};

/// Tangent (JVP output) or cotangent (VJP input) of one contact's dist, pos and frame.
template <class T>
struct ContactTangent {
  T dist;
  T pos[3];
  T frame[9];
};

/// Tangents (or cotangents) of contacts in the caller's storage: an array of ContactTangent, or
/// the structure-of-arrays con_dist (n), con_pos (n x 3), con_frame (n x 9) of a Data.
template <class T>
struct ContactTangentRef {
  ContactTangent<T>* aos;  // the array form, or null
  T* dist;                 // the arrays' form
  T* pos;
  T* frame;
  PHYDREAM_HD static ContactTangentRef of(ContactTangent<T>* a) { return {a, nullptr, nullptr, nullptr}; }
  PHYDREAM_HD static ContactTangentRef arrays(T* d, T* p, T* f) { return {nullptr, d, p, f}; }
  PHYDREAM_HD T& dist_of(int i) const { return aos != nullptr ? aos[i].dist : dist[i]; }
  PHYDREAM_HD T* pos_of(int i) const { return aos != nullptr ? aos[i].pos : pos + 3 * i; }      // (3)
  PHYDREAM_HD T* frame_of(int i) const { return aos != nullptr ? aos[i].frame : frame + 9 * i; }  // (9)
};

/// Most contacts any supported pair produces (box-box).
constexpr int kMaxContactsPerPair = 8;

/// Whether collide_geoms handles the pair (types ordered type1 <= type2, GeomType values).
PHYDREAM_HD constexpr bool collision_supported(int type1, int type2) {
  constexpr int plane = static_cast<int>(GeomType::plane);
  constexpr int sphere = static_cast<int>(GeomType::sphere);
  constexpr int capsule = static_cast<int>(GeomType::capsule);
  constexpr int box = static_cast<int>(GeomType::box);
  return (type1 == plane && (type2 == sphere || type2 == capsule || type2 == box)) ||
         (type1 == sphere && (type2 == sphere || type2 == capsule || type2 == box)) ||
         (type1 == capsule && (type2 == capsule || type2 == box)) || (type1 == box && type2 == box);
}

/// Most contacts collide_geoms emits for the pair (types ordered type1 <= type2); 0 if the pair
/// is not supported.
PHYDREAM_HD constexpr int max_contacts(int type1, int type2) {
  constexpr int plane = static_cast<int>(GeomType::plane);
  constexpr int capsule = static_cast<int>(GeomType::capsule);
  constexpr int box = static_cast<int>(GeomType::box);
  if (!collision_supported(type1, type2)) return 0;
  if (type1 == box && type2 == box) return kMaxContactsPerPair;
  if (type1 == plane && type2 == box) return 4;
  if (type1 == plane && type2 == capsule) return 2;
  if (type1 == capsule && (type2 == capsule || type2 == box)) return 2;
  return 1;
}

namespace collision_detail {

constexpr int kPlane = static_cast<int>(GeomType::plane);
constexpr int kSphere = static_cast<int>(GeomType::sphere);
constexpr int kCapsule = static_cast<int>(GeomType::capsule);
constexpr int kBox = static_cast<int>(GeomType::box);

// MuJoCo's mjMINVAL: below it a norm or determinant counts as zero and a fallback is taken
template <class S>
PHYDREAM_HD constexpr S min_val() { return S(1e-15); }

// =============================================================================================
// primal helpers, with MuJoCo's operation order so that results round identically

template <class S>
PHYDREAM_HD S dot3(const S* a, const S* b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

template <class S>
PHYDREAM_HD void cross3(S* r, const S* a, const S* b) {
  r[0] = a[1] * b[2] - a[2] * b[1];
  r[1] = a[2] * b[0] - a[0] * b[2];
  r[2] = a[0] * b[1] - a[1] * b[0];
}

// the z column of a row-major 3x3 matrix: a geom's third axis (plane normal, capsule axis)
template <class S>
PHYDREAM_HD void zaxis(S* z, const S* mat) {
  z[0] = mat[2];
  z[1] = mat[5];
  z[2] = mat[8];
}

// v / |v| in place, as v * (1 / |v|); a norm below min_val gives (1, 0, 0). Returns |v|.
template <class S>
PHYDREAM_HD S normalize3(S* v) {
  const S n = sqrt_(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  if (n < min_val<S>()) {
    v[0] = S(1);
    v[1] = S(0);
    v[2] = S(0);
  } else {
    const S inv = S(1) / n;
    v[0] *= inv;
    v[1] *= inv;
    v[2] *= inv;
  }
  return n;
}

/// mju_makeFrame: complete frame (9) whose row 0 holds the (unnormalised) normal and row 1 a
/// hint for the first tangent (ignored when shorter than 0.5). MuJoCo aborts when the normal is
/// shorter than 0.5, which the collision functions never produce; here it is only normalised.
template <class S>
PHYDREAM_HD void make_frame(S* f) {
  normalize3(f);
  S* y = f + 3;
  if (sqrt_(y[0] * y[0] + y[1] * y[1] + y[2] * y[2]) < S(0.5)) {
    y[0] = y[1] = y[2] = S(0);
    // a default tangent not (nearly) parallel to the normal
    if (f[1] < S(0.5) && f[1] > S(-0.5)) {
      y[1] = S(1);
    } else {
      y[2] = S(1);
    }
  }
  const S d = dot3(f, y);
  for (int k = 0; k < 3; ++k) y[k] -= f[k] * d;
  normalize3(y);
  cross3(f + 6, f, y);
}

// =============================================================================================
// tangent helpers: S-valued primal vectors combined with T-valued tangents

template <class S, class T>
PHYDREAM_HD T tdot(const S* a, const T* b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

// a x b with a primal and b a tangent, and the reverse
template <class S, class T>
PHYDREAM_HD void cross_st(T* r, const S* a, const T* b) {
  r[0] = a[1] * b[2] - a[2] * b[1];
  r[1] = a[2] * b[0] - a[0] * b[2];
  r[2] = a[0] * b[1] - a[1] * b[0];
}
template <class S, class T>
PHYDREAM_HD void cross_ts(T* r, const T* a, const S* b) {
  r[0] = a[1] * b[2] - a[2] * b[1];
  r[1] = a[2] * b[0] - a[0] * b[2];
  r[2] = a[0] * b[1] - a[1] * b[0];
}

template <class T>
PHYDREAM_HD void zero3(T* r) {
  for (int k = 0; k < 3; ++k) r[k] = tangent_zero<T>();
}

// tangent of u = v / |v| given the normalised u, the norm n = |v| and dv:
//   du = (dv - u (u . dv)) / n; zero where normalize3 took its fallback
template <class S, class T>
PHYDREAM_HD void normalize3_jvp(const S* u, S n, const T* dv, T* du) {
  if (n < min_val<S>()) {
    zero3(du);
    return;
  }
  const T p = tdot(u, dv);
  for (int k = 0; k < 3; ++k) du[k] = (dv[k] - u[k] * p) / n;
}

// its transpose: gv += (gu - u (u . gu)) / n
template <class S, class T>
PHYDREAM_HD void normalize3_vjp(const S* u, S n, const T* gu, T* gv) {
  if (n < min_val<S>()) return;
  const T p = tdot(u, gu);
  for (int k = 0; k < 3; ++k) gv[k] += (gu[k] - u[k] * p) / n;
}

// =============================================================================================
// derivative of mju_makeFrame

// the primal intermediates of make_frame, recomputed from the raw rows 0 and 1
template <class S>
struct FrameTape {
  S x[3], xnorm;   // normalised normal, norm of the raw normal
  S y[3];          // tangent hint after the default substitution
  bool y_default;  // the hint was replaced by a constant
  S d;             // x . y
  S y1[3], y1norm; // y - x d before normalising, its norm
  S y2[3];         // first tangent
};

template <class S>
PHYDREAM_HD void make_frame_tape(const S* raw, FrameTape<S>& t) {
  for (int k = 0; k < 3; ++k) {
    t.x[k] = raw[k];
    t.y[k] = raw[3 + k];
  }
  t.xnorm = normalize3(t.x);
  t.y_default = sqrt_(t.y[0] * t.y[0] + t.y[1] * t.y[1] + t.y[2] * t.y[2]) < S(0.5);
  if (t.y_default) {
    t.y[0] = t.y[1] = t.y[2] = S(0);
    if (t.x[1] < S(0.5) && t.x[1] > S(-0.5)) {
      t.y[1] = S(1);
    } else {
      t.y[2] = S(1);
    }
  }
  t.d = dot3(t.x, t.y);
  for (int k = 0; k < 3; ++k) t.y1[k] = t.y[k] - t.x[k] * t.d;
  for (int k = 0; k < 3; ++k) t.y2[k] = t.y1[k];
  t.y1norm = normalize3(t.y2);
}

// frame tangent (9) from the tangents of the raw normal dn (3) and tangent hint dy (3)
template <class S, class T>
PHYDREAM_HD void make_frame_jvp(const FrameTape<S>& t, const T* dn, const T* dy, T* dframe) {
  T* dx = dframe;
  T* dy2 = dframe + 3;
  T* dz = dframe + 6;
  normalize3_jvp(t.x, t.xnorm, dn, dx);
  T dyh[3];
  if (t.y_default) {
    zero3(dyh);
  } else {
    for (int k = 0; k < 3; ++k) dyh[k] = dy[k];
  }
  // y1 = y - x (x . y)
  const T dd = tdot(t.y, dx) + tdot(t.x, dyh);
  T dy1[3];
  for (int k = 0; k < 3; ++k) dy1[k] = dyh[k] - dx[k] * t.d - t.x[k] * dd;
  normalize3_jvp(t.y2, t.y1norm, dy1, dy2);
  // z = x cross y2
  T a[3], b[3];
  cross_ts(a, dx, t.y2);
  cross_st(b, t.x, dy2);
  for (int k = 0; k < 3; ++k) dz[k] = a[k] + b[k];
}

// transpose: accumulate into gn (3) and gy (3) from the frame cotangent gframe (9)
template <class S, class T>
PHYDREAM_HD void make_frame_vjp(const FrameTape<S>& t, const T* gframe, T* gn, T* gy) {
  T gx[3], gy2[3];
  for (int k = 0; k < 3; ++k) {
    gx[k] = gframe[k];
    gy2[k] = gframe[3 + k];
  }
  const T* gz = gframe + 6;
  // z = x cross y2: (dx cross y2) . gz = dx . (y2 cross gz); (x cross dy2) . gz = dy2 . (gz cross x)
  T a[3], b[3];
  cross_st(a, t.y2, gz);
  cross_ts(b, gz, t.x);
  for (int k = 0; k < 3; ++k) {
    gx[k] += a[k];
    gy2[k] += b[k];
  }
  // y2 = normalize(y1)
  T gy1[3];
  zero3(gy1);
  normalize3_vjp(t.y2, t.y1norm, gy2, gy1);
  // y1 = y - x d, d = x . y
  const T gd = -tdot(t.x, gy1);
  T gyh[3];
  for (int k = 0; k < 3; ++k) {
    gyh[k] = gy1[k] + t.x[k] * gd;
    gx[k] += t.y[k] * gd - gy1[k] * t.d;
  }
  if (!t.y_default) {
    for (int k = 0; k < 3; ++k) gy[k] += gyh[k];
  }
  normalize3_vjp(t.x, t.xnorm, gx, gn);
}

// =============================================================================================
// narrow phase, primal: contacts with the raw frame rows 0 (normal) and 1 (tangent hint), as
// MuJoCo's collision functions leave them before mj_collideGeoms calls mju_makeFrame

// how a segment parameter x in [-1, 1] was obtained (capsule centre + x * half-length axis)
enum SegmentKind : int {
  kSegFixed = 0,  // a constant: a clamped value, a segment end, or a sphere's 0
  kSegJoint = 1,  // the unclamped joint minimiser of the segment-segment distance
  kSegOther = 2,  // minimiser given the other segment's parameter s: (own_u - s mb) / own_m
};

// what the derivative passes need from the primal, per contact
template <class S>
struct ContactAux {
  S c1[3], c2[3];  // the sphere centres the contact was computed between
  S x1, x2;        // segment parameters of geom1 and geom2 (0 for a sphere)
  S s1, s2;        // the "other" parameter s of a kSegOther parameter
  int kind1, kind2;
  int degenerate;  // sphere-sphere normal: 0 centre difference, 1 axes cross product, 2 (1,0,0)
  int corner;      // plane-box: corner index; plane-capsule: +1 or -1, the segment end; box
                   // pairs: the contact's index among those collision_box.h emitted
  unsigned branch; // box pairs: collision_box.h's code of the discrete choices (0 otherwise)
};

// aux of a plane contact: no segment parameters; corner (plane-box) or end (plane-capsule)
template <class S>
PHYDREAM_HD void aux_plane(ContactAux<S>* aux, int corner) {
  aux->x1 = aux->x2 = aux->s1 = aux->s2 = S(0);
  aux->kind1 = aux->kind2 = kSegFixed;
  aux->degenerate = 0;
  aux->corner = corner;
  aux->branch = 0;
}

// the sphere-sphere test between centres c1, c2 (radii r1, r2); z1, z2 are the geoms' third
// axes, whose cross product is the normal when the centres coincide
template <class S>
PHYDREAM_HD int sphere_sphere_raw(const S* c1, const S* z1, S r1, const S* c2, const S* z2, S r2,
                                  S margin, Contact<S>* con, ContactAux<S>* aux) {
  const S dif[3] = {c1[0] - c2[0], c1[1] - c2[1], c1[2] - c2[2]};
  const S cdist = sqrt_(dif[0] * dif[0] + dif[1] * dif[1] + dif[2] * dif[2]);
  if (cdist > margin + r1 + r2) return 0;
  con->dist = cdist - r1 - r2;
  S* n = con->frame;
  for (int k = 0; k < 3; ++k) n[k] = c2[k] - c1[k];
  aux->degenerate = 0;
  aux->corner = 0;
  aux->branch = 0;
  if (normalize3(n) < min_val<S>()) {
    // coincident centres: the normal is perpendicular to both axes
    cross3(n, z1, z2);
    aux->degenerate = normalize3(n) < min_val<S>() ? 2 : 1;
  }
  const S scl = r1 + con->dist / S(2);
  for (int k = 0; k < 3; ++k) {
    con->pos[k] = n[k] * scl + c1[k];
    con->frame[3 + k] = S(0);
    aux->c1[k] = c1[k];
    aux->c2[k] = c2[k];
  }
  return 1;
}

// the plane-sphere test: plane (pos1, mat1), sphere centre c, radius r
template <class S>
PHYDREAM_HD int plane_sphere_raw(const S* pos1, const S* mat1, const S* c, S r, S margin,
                                 Contact<S>* con, ContactAux<S>* aux) {
  S* n = con->frame;
  zaxis(n, mat1);
  const S tmp[3] = {c[0] - pos1[0], c[1] - pos1[1], c[2] - pos1[2]};
  const S cdist = dot3(tmp, n);
  if (cdist > margin + r) return 0;
  con->dist = cdist - r;
  aux_plane(aux, 0);
  const S scl = -con->dist / S(2) - r;
  for (int k = 0; k < 3; ++k) {
    con->pos[k] = c[k] + n[k] * scl;
    con->frame[3 + k] = S(0);
    aux->c2[k] = c[k];
  }
  return 1;
}

template <class S>
PHYDREAM_HD int plane_box_raw(const S* pos1, const S* mat1, const S* pos2, const S* mat2,
                              const S* size2, S margin, Contact<S>* con, ContactAux<S>* aux) {
  S n[3];
  zaxis(n, mat1);
  const S dif[3] = {pos2[0] - pos1[0], pos2[1] - pos1[1], pos2[2] - pos1[2]};
  const S dist = dot3(dif, n);
  int cnt = 0;
  for (int i = 0; i < 8; ++i) {
    const S v[3] = {(i & 1) ? size2[0] : -size2[0], (i & 2) ? size2[1] : -size2[1],
                    (i & 4) ? size2[2] : -size2[2]};
    S corner[3] = {mat2[0] * v[0] + mat2[1] * v[1] + mat2[2] * v[2],
                   mat2[3] * v[0] + mat2[4] * v[1] + mat2[5] * v[2],
                   mat2[6] * v[0] + mat2[7] * v[1] + mat2[8] * v[2]};
    // corners above the margin, and the upper half of the box, make no contact
    const S ldist = dot3(n, corner);
    if (dist + ldist > margin || ldist > S(0)) continue;
    Contact<S>& c = con[cnt];
    c.dist = dist + ldist;
    const S scl = -c.dist / S(2);
    for (int k = 0; k < 3; ++k) {
      c.frame[k] = n[k];
      c.frame[3 + k] = S(0);
      corner[k] += pos2[k];
      c.pos[k] = corner[k] + n[k] * scl;
    }
    aux_plane(aux + cnt, i);
    // MuJoCo keeps the first 4 corners found
    if (++cnt >= 4) return 4;
  }
  return cnt;
}

// the coefficients of the segment-segment distance, for axes a1, a2 (half-length scaled) and
// centre difference dif = pos1 - pos2: minimise |dif + a1 x1 - a2 x2|^2 over x1, x2
template <class S>
struct SegmentCoef {
  S ma, mb, mc, u, v, det;
};

template <class S>
PHYDREAM_HD SegmentCoef<S> segment_coef(const S* a1, const S* a2, const S* dif) {
  SegmentCoef<S> c;
  c.ma = dot3(a1, a1);
  c.mb = -dot3(a1, a2);
  c.mc = dot3(a2, a2);
  c.u = -dot3(a1, dif);
  c.v = dot3(a2, dif);
  c.det = c.ma * c.mc - c.mb * c.mb;
  return c;
}

template <class S>
PHYDREAM_HD S clamp1(S x, int* kind) {
  if (x > S(1)) {
    *kind = kSegFixed;
    return S(1);
  }
  if (x < S(-1)) {
    *kind = kSegFixed;
    return S(-1);
  }
  return x;
}

template <class S>
PHYDREAM_HD void segment_point(S* c, const S* pos, const S* a, S x) {
  for (int k = 0; k < 3; ++k) c[k] = a[k] * x + pos[k];
}

template <class S>
PHYDREAM_HD int sphere_capsule_raw(const S* pos1, const S* mat1, const S* size1, const S* pos2,
                                   const S* mat2, const S* size2, S margin, Contact<S>* con,
                                   ContactAux<S>* aux) {
  S a[3], z1[3], z2[3];
  zaxis(z1, mat1);
  zaxis(z2, mat2);
  for (int k = 0; k < 3; ++k) a[k] = z2[k] * size2[1];
  // nearest point of the capsule's segment to the sphere centre
  const S vec[3] = {pos1[0] - pos2[0], pos1[1] - pos2[1], pos1[2] - pos2[2]};
  int kind = kSegOther;
  const S x = clamp1(dot3(a, vec) / dot3(a, a), &kind);
  S c2[3];
  segment_point(c2, pos2, a, x);
  const int n = sphere_sphere_raw(pos1, z1, size1[0], c2, z2, size2[0], margin, con, aux);
  aux->x1 = S(0);
  aux->kind1 = kSegFixed;
  aux->s1 = S(0);
  aux->x2 = x;
  aux->kind2 = kind;
  aux->s2 = S(0);
  return n;
}

template <class S>
PHYDREAM_HD int capsule_capsule_raw(const S* pos1, const S* mat1, const S* size1, const S* pos2,
                                    const S* mat2, const S* size2, S margin, Contact<S>* con,
                                    ContactAux<S>* aux) {
  S z1[3], z2[3], a1[3], a2[3];
  zaxis(z1, mat1);
  zaxis(z2, mat2);
  for (int k = 0; k < 3; ++k) {
    a1[k] = z1[k] * size1[1];
    a2[k] = z2[k] * size2[1];
  }
  const S dif[3] = {pos1[0] - pos2[0], pos1[1] - pos2[1], pos1[2] - pos2[2]};
  const SegmentCoef<S> m = segment_coef(a1, a2, dif);
  const S r1 = size1[0], r2 = size2[0];
  S c1[3], c2[3];

  if (abs_(m.det) >= min_val<S>()) {
    // skew axes: the joint minimiser, clamped one parameter at a time as MuJoCo does
    S x1 = (m.mc * m.u - m.mb * m.v) / m.det;
    S x2 = (m.ma * m.v - m.mb * m.u) / m.det;
    int k1 = kSegJoint, k2 = kSegJoint;
    S s1 = S(0), s2 = S(0);
    if (x1 > S(1)) {
      x1 = S(1);
      k1 = kSegFixed;
      x2 = (m.v - m.mb) / m.mc;
      k2 = kSegOther;
      s2 = S(1);
    } else if (x1 < S(-1)) {
      x1 = S(-1);
      k1 = kSegFixed;
      x2 = (m.v + m.mb) / m.mc;
      k2 = kSegOther;
      s2 = S(-1);
    }
    if (x2 > S(1)) {
      x2 = S(1);
      k2 = kSegFixed;
      k1 = kSegOther;
      s1 = S(1);
      x1 = clamp1((m.u - m.mb) / m.ma, &k1);
    } else if (x2 < S(-1)) {
      x2 = S(-1);
      k2 = kSegFixed;
      k1 = kSegOther;
      s1 = S(-1);
      x1 = clamp1((m.u + m.mb) / m.ma, &k1);
    }
    segment_point(c1, pos1, a1, x1);
    segment_point(c2, pos2, a2, x2);
    const int n = sphere_sphere_raw(c1, z1, r1, c2, z2, r2, margin, con, aux);
    aux->x1 = x1;
    aux->x2 = x2;
    aux->kind1 = k1;
    aux->kind2 = k2;
    aux->s1 = s1;
    aux->s2 = s2;
    return n;
  }

  // parallel axes: test both ends of segment 1, then (while fewer than 2 contacts) both ends of
  // segment 2, each against the nearest point of the other segment
  int cnt = 0;
  for (int end = 0; end < 4; ++end) {
    if (end == 2 && cnt >= 2) break;
    if (end == 3 && cnt >= 2) break;
    const S s = (end % 2 == 0) ? S(1) : S(-1);
    S x1, x2, s1 = S(0), s2 = S(0);
    int k1, k2;
    if (end < 2) {
      x1 = s;
      k1 = kSegFixed;
      k2 = kSegOther;
      s2 = s;
      x2 = clamp1(end == 0 ? (m.v - m.mb) / m.mc : (m.v + m.mb) / m.mc, &k2);
    } else {
      x2 = s;
      k2 = kSegFixed;
      k1 = kSegOther;
      s1 = s;
      x1 = clamp1(end == 2 ? (m.u - m.mb) / m.ma : (m.u + m.mb) / m.ma, &k1);
    }
    segment_point(c1, pos1, a1, x1);
    segment_point(c2, pos2, a2, x2);
    if (sphere_sphere_raw(c1, z1, r1, c2, z2, r2, margin, con + cnt, aux + cnt)) {
      aux[cnt].x1 = x1;
      aux[cnt].x2 = x2;
      aux[cnt].kind1 = k1;
      aux[cnt].kind2 = k2;
      aux[cnt].s1 = s1;
      aux[cnt].s2 = s2;
      ++cnt;
    }
  }
  return cnt;
}

// =============================================================================================
// box pairs (engine/collision_box.h): sphere-box, capsule-box, box-box

PHYDREAM_HD constexpr bool box_pair(int type1, int type2) {
  return type2 == kBox && (type1 == kSphere || type1 == kCapsule || type1 == kBox);
}

// MuJoCo's geom_rbound (mjCGeom::GetRBound) of a sphere, capsule or box
template <class S>
PHYDREAM_HD S bounding_radius(int type, const S* size) {
  if (type == kSphere) return size[0];
  if (type == kCapsule) return size[0] + size[1];
  return sqrt_(size[0] * size[0] + size[1] * size[1] + size[2] * size[2]);
}

// the pair's emitter of engine/collision_box.h on the number type R
template <class S, class R, class Sink>
PHYDREAM_HD int box_pair_emit(int type1, const R* pos1, const R* mat1, const S* size1, const R* pos2,
                              const R* mat2, const S* size2, S margin, Sink& sink, unsigned* branch) {
  if (type1 == kSphere) return box_detail::sphere_box<S>(pos1, size1[0], pos2, mat2, size2, margin, sink, branch);
  if (type1 == kCapsule) return box_detail::capsule_box<S>(pos1, mat1, size1, pos2, mat2, size2, margin, sink, branch);
  return box_detail::box_box<S>(pos1, mat1, size1, pos2, mat2, size2, margin, sink, branch);
}

// the positions of the emitted contacts (box-box's repeats are found from them)
template <class S>
struct EmittedPositions {
  S pos[box_detail::kBoxBoxEmitMax][3];
  int n;
  PHYDREAM_HD void operator()(const S& /*dist*/, const S* p, const S* /*normal*/) {
    if (n < box_detail::kBoxBoxEmitMax) {
      for (int k = 0; k < 3; ++k) pos[n][k] = p[k];
    }
    ++n;
  }
};

// the raw contacts (dist, pos, normal, a zero tangent hint) into the slots of the emitted ones
template <class S>
struct StoreContacts {
  Contact<S>* con;
  ContactAux<S>* aux;
  const int* slot;  // emitted contact e goes to con[slot[e]] (dropped when < 0); null: con[e]
  int ne;           // emitted so far
  PHYDREAM_HD void operator()(const S& dist, const S* p, const S* normal) {
    const int e = ne++;
    const int i = slot == nullptr ? e : e < box_detail::kBoxBoxEmitMax ? slot[e] : -1;
    if (i < 0) return;
    con[i].dist = dist;
    for (int k = 0; k < 3; ++k) {
      con[i].pos[k] = p[k];
      con[i].frame[k] = normal[k];
      con[i].frame[3 + k] = S(0);
    }
    aux_plane(aux + i, e);
  }
};

// the contacts of a box pair, as collide_raw's: aux.corner the emitted index, aux.branch the code
template <class S>
PHYDREAM_HD int box_pair_raw(int type1, const S* pos1, const S* mat1, const S* size1, const S* pos2,
                             const S* mat2, const S* size2, S margin, Contact<S>* con, ContactAux<S>* aux) {
  // mj_collideGeoms' bounding-sphere test (it can decide for box-box with a margin)
  const S dif[3] = {pos1[0] - pos2[0], pos1[1] - pos2[1], pos1[2] - pos2[2]};
  const S cdist = sqrt_(dif[0] * dif[0] + dif[1] * dif[1] + dif[2] * dif[2]);
  if (cdist > (bounding_radius(type1, size1) + bounding_radius(kBox, size2)) + margin) return 0;
  unsigned branch = 0;
  int n = 0;
  if (type1 == kBox) {
    // of contacts at the same position only the last stays (mj_collideGeoms); the first
    // kMaxContactsPerPair of those are kept
    EmittedPositions<S> emitted;
    emitted.n = 0;
    box_detail::box_box<S>(pos1, mat1, size1, pos2, mat2, size2, margin, emitted, &branch);
    int slot[box_detail::kBoxBoxEmitMax];
    const int ne = emitted.n < box_detail::kBoxBoxEmitMax ? emitted.n : box_detail::kBoxBoxEmitMax;
    for (int e = 0; e < ne; ++e) {
      bool repeated = false;
      for (int f = e + 1; f < ne && !repeated; ++f) {
        repeated = emitted.pos[e][0] == emitted.pos[f][0] && emitted.pos[e][1] == emitted.pos[f][1] &&
                   emitted.pos[e][2] == emitted.pos[f][2];
      }
      slot[e] = !repeated && n < kMaxContactsPerPair ? n++ : -1;
    }
    StoreContacts<S> store{con, aux, slot, 0};
    branch = 0;
    box_detail::box_box<S>(pos1, mat1, size1, pos2, mat2, size2, margin, store, &branch);
  } else {
    StoreContacts<S> store{con, aux, nullptr, 0};
    n = box_pair_emit<S>(type1, pos1, mat1, size1, pos2, mat2, size2, margin, store, &branch);
  }
  for (int i = 0; i < n; ++i) aux[i].branch = branch;
  return n;
}

// every supported pair: raw contacts (frame rows 0 and 1 set) and their aux; 0 if unsupported
template <class S>
PHYDREAM_HD int collide_raw(int type1, int type2, const S* pos1, const S* mat1, const S* size1,
                            const S* pos2, const S* mat2, const S* size2, S margin,
                            Contact<S>* con, ContactAux<S>* aux) {
  if (type1 == kPlane && type2 == kSphere) {
    return plane_sphere_raw(pos1, mat1, pos2, size2[0], margin, con, aux);
  }
  if (type1 == kPlane && type2 == kCapsule) {
    // the two segment ends as spheres, +axis end first; the axis is the tangent hint
    S z2[3], seg[3], c[3];
    zaxis(z2, mat2);
    for (int k = 0; k < 3; ++k) seg[k] = z2[k] * size2[1];
    int cnt = 0;
    for (int end = 0; end < 2; ++end) {
      for (int k = 0; k < 3; ++k) c[k] = end == 0 ? pos2[k] + seg[k] : pos2[k] - seg[k];
      if (plane_sphere_raw(pos1, mat1, c, size2[0], margin, con + cnt, aux + cnt)) {
        for (int k = 0; k < 3; ++k) con[cnt].frame[3 + k] = z2[k];
        aux[cnt].corner = end == 0 ? 1 : -1;
        ++cnt;
      }
    }
    return cnt;
  }
  if (type1 == kPlane && type2 == kBox) {
    return plane_box_raw(pos1, mat1, pos2, mat2, size2, margin, con, aux);
  }
  if (type1 == kSphere && type2 == kSphere) {
    S z1[3], z2[3];
    zaxis(z1, mat1);
    zaxis(z2, mat2);
    const int n = sphere_sphere_raw(pos1, z1, size1[0], pos2, z2, size2[0], margin, con, aux);
    aux->x1 = aux->x2 = aux->s1 = aux->s2 = S(0);
    aux->kind1 = aux->kind2 = kSegFixed;
    return n;
  }
  if (type1 == kSphere && type2 == kCapsule) {
    return sphere_capsule_raw(pos1, mat1, size1, pos2, mat2, size2, margin, con, aux);
  }
  if (type1 == kCapsule && type2 == kCapsule) {
    return capsule_capsule_raw(pos1, mat1, size1, pos2, mat2, size2, margin, con, aux);
  }
  if (box_pair(type1, type2)) {
    return box_pair_raw(type1, pos1, mat1, size1, pos2, mat2, size2, margin, con, aux);
  }
  return 0;
}

// =============================================================================================
// narrow phase, derivatives of the raw contacts (dist, pos, frame rows 0 and 1)

template <class T>
struct RawTangent {
  T dist;
  T pos[3];
  T n[3];  // raw normal (frame row 0 before make_frame)
  T y[3];  // raw tangent hint (frame row 1 before make_frame)
};

template <class T>
PHYDREAM_HD void raw_tangent_zero(RawTangent<T>& r) {
  r.dist = tangent_zero<T>();
  zero3(r.pos);
  zero3(r.n);
  zero3(r.y);
}

// tangents of the segment-segment coefficients
template <class T>
struct SegmentCoefTangent {
  T ma, mb, mc, u, v;
};

// tangent of a segment parameter, written for geom 1 (own = ma, u; other = mc, v); geom 2 swaps
// the roles (x2 = (ma v - mb u) / det, (v - s mb) / mc)
template <class S, class T>
PHYDREAM_HD T segment_param_jvp(int kind, S x, S s, const SegmentCoef<S>& m, S own_m, S other_m,
                                S own_u, S other_u, const SegmentCoefTangent<T>& dm, T d_own_m,
                                T d_other_m, T d_own_u, T d_other_u) {
  if (kind == kSegJoint) {
    // x = (other_m own_u - mb other_u) / det, det = ma mc - mb^2
    const T dnum = d_other_m * own_u + other_m * d_own_u - dm.mb * other_u - m.mb * d_other_u;
    const T ddet = dm.ma * m.mc + m.ma * dm.mc - S(2) * m.mb * dm.mb;
    return (dnum - x * ddet) / m.det;
  }
  if (kind == kSegOther) {
    // x = (own_u - s mb) / own_m
    return (d_own_u - s * dm.mb - x * d_own_m) / own_m;
  }
  return tangent_zero<T>();
}

// its transpose: accumulate g (the cotangent of x) into the coefficient cotangents
template <class S, class T>
PHYDREAM_HD void segment_param_vjp(int kind, S x, S s, const SegmentCoef<S>& m, S own_m,
                                   S other_m, S own_u, S other_u, const T& g,
                                   SegmentCoefTangent<T>& gm, T& g_own_m, T& g_other_m,
                                   T& g_own_u, T& g_other_u) {
  if (kind == kSegJoint) {
    const T q = g / m.det;
    g_other_m += q * own_u;
    g_own_u += q * other_m;
    gm.mb += q * (S(2) * x * m.mb - other_u);
    g_other_u += q * (-m.mb);
    gm.ma += q * (-x * m.mc);
    gm.mc += q * (-x * m.ma);
  } else if (kind == kSegOther) {
    const T q = g / own_m;
    g_own_u += q;
    gm.mb += q * (-s);
    g_own_m += q * (-x);
  }
}

// sphere-sphere-family contacts (sphere-sphere, sphere-capsule, capsule-capsule): geom i is the
// segment pos_i + x_i a_i with a_i = h_i z_i (h_i = 0 for a sphere); the contact is the
// sphere-sphere test between the two segment points c_i
template <class S, class T>
PHYDREAM_HD void segments_raw_jvp(const S* pos1, const S* mat1, S h1, S r1, const S* pos2,
                                  const S* mat2, S h2, const Contact<S>& con,
                                  const ContactAux<S>& aux, const T* dpos1, const T* dmat1,
                                  const T* dpos2, const T* dmat2, RawTangent<T>& out) {
  S z1[3], z2[3], a1[3], a2[3];
  zaxis(z1, mat1);
  zaxis(z2, mat2);
  T dz1[3], dz2[3], da1[3], da2[3];
  zaxis(dz1, dmat1);
  zaxis(dz2, dmat2);
  for (int k = 0; k < 3; ++k) {
    a1[k] = z1[k] * h1;
    a2[k] = z2[k] * h2;
    da1[k] = dz1[k] * h1;
    da2[k] = dz2[k] * h2;
  }
  T dx1 = tangent_zero<T>(), dx2 = tangent_zero<T>();
  if (aux.kind1 != kSegFixed || aux.kind2 != kSegFixed) {
    const S dif[3] = {pos1[0] - pos2[0], pos1[1] - pos2[1], pos1[2] - pos2[2]};
    T ddif[3];
    for (int k = 0; k < 3; ++k) ddif[k] = dpos1[k] - dpos2[k];
    const SegmentCoef<S> m = segment_coef(a1, a2, dif);
    SegmentCoefTangent<T> dm;
    dm.ma = S(2) * tdot(a1, da1);
    dm.mb = -(tdot(a2, da1) + tdot(a1, da2));
    dm.mc = S(2) * tdot(a2, da2);
    dm.u = -(tdot(dif, da1) + tdot(a1, ddif));
    dm.v = tdot(dif, da2) + tdot(a2, ddif);
    dx1 = segment_param_jvp(aux.kind1, aux.x1, aux.s1, m, m.ma, m.mc, m.u, m.v, dm, dm.ma, dm.mc,
                            dm.u, dm.v);
    dx2 = segment_param_jvp(aux.kind2, aux.x2, aux.s2, m, m.mc, m.ma, m.v, m.u, dm, dm.mc, dm.ma,
                            dm.v, dm.u);
  }
  // segment points c_i = a_i x_i + pos_i
  T dc1[3], dc2[3];
  for (int k = 0; k < 3; ++k) {
    dc1[k] = dpos1[k] + da1[k] * aux.x1 + a1[k] * dx1;
    dc2[k] = dpos2[k] + da2[k] * aux.x2 + a2[k] * dx2;
  }
  // sphere-sphere: dist = |c2 - c1| - r1 - r2, n = (c2 - c1) / |c2 - c1|,
  // pos = n (r1 + dist / 2) + c1. With coincident centres the distance is not differentiable;
  // its derivative along the chosen normal, n . (dc2 - dc1), is used.
  const S* n = con.frame;
  T de[3];
  for (int k = 0; k < 3; ++k) de[k] = dc2[k] - dc1[k];
  out.dist = tdot(n, de);
  if (aux.degenerate == 0) {
    S e[3];
    for (int k = 0; k < 3; ++k) e[k] = aux.c2[k] - aux.c1[k];
    const S len = sqrt_(e[0] * e[0] + e[1] * e[1] + e[2] * e[2]);
    normalize3_jvp(n, len, de, out.n);
  } else if (aux.degenerate == 1) {
    S w[3];
    cross3(w, z1, z2);
    const S wn = sqrt_(w[0] * w[0] + w[1] * w[1] + w[2] * w[2]);
    T dw[3], t1[3], t2[3];
    cross_ts(t1, dz1, z2);
    cross_st(t2, z1, dz2);
    for (int k = 0; k < 3; ++k) dw[k] = t1[k] + t2[k];
    normalize3_jvp(n, wn, dw, out.n);
  } else {
    zero3(out.n);
  }
  const S scl = r1 + con.dist / S(2);
  const T dscl = out.dist / S(2);
  for (int k = 0; k < 3; ++k) out.pos[k] = out.n[k] * scl + n[k] * dscl + dc1[k];
  zero3(out.y);
}

template <class S, class T>
PHYDREAM_HD void segments_raw_vjp(const S* pos1, const S* mat1, S h1, S r1, const S* pos2,
                                  const S* mat2, S h2, const Contact<S>& con,
                                  const ContactAux<S>& aux, const RawTangent<T>& g, T* gpos1,
                                  T* gmat1, T* gpos2, T* gmat2) {
  S z1[3], z2[3], a1[3], a2[3];
  zaxis(z1, mat1);
  zaxis(z2, mat2);
  for (int k = 0; k < 3; ++k) {
    a1[k] = z1[k] * h1;
    a2[k] = z2[k] * h2;
  }
  const S* n = con.frame;
  // pos = n scl + c1, scl = r1 + dist / 2
  const S scl = r1 + con.dist / S(2);
  T gn[3], gc1[3], gc2[3], gz1[3], gz2[3];
  for (int k = 0; k < 3; ++k) {
    gn[k] = g.n[k] + g.pos[k] * scl;
    gc1[k] = g.pos[k];
    gc2[k] = tangent_zero<T>();
    gz1[k] = tangent_zero<T>();
    gz2[k] = tangent_zero<T>();
  }
  const T gdist = g.dist + tdot(n, g.pos) / S(2);
  // dist along n
  for (int k = 0; k < 3; ++k) {
    gc2[k] += n[k] * gdist;
    gc1[k] -= n[k] * gdist;
  }
  // the normal
  if (aux.degenerate == 0) {
    S e[3];
    for (int k = 0; k < 3; ++k) e[k] = aux.c2[k] - aux.c1[k];
    const S len = sqrt_(e[0] * e[0] + e[1] * e[1] + e[2] * e[2]);
    T ge[3];
    zero3(ge);
    normalize3_vjp(n, len, gn, ge);
    for (int k = 0; k < 3; ++k) {
      gc2[k] += ge[k];
      gc1[k] -= ge[k];
    }
  } else if (aux.degenerate == 1) {
    S w[3];
    cross3(w, z1, z2);
    const S wn = sqrt_(w[0] * w[0] + w[1] * w[1] + w[2] * w[2]);
    T gw[3], t1[3], t2[3];
    zero3(gw);
    normalize3_vjp(n, wn, gn, gw);
    // w = z1 x z2: dz1 . (z2 x gw) + dz2 . (gw x z1)
    cross_st(t1, z2, gw);
    cross_ts(t2, gw, z1);
    for (int k = 0; k < 3; ++k) {
      gz1[k] += t1[k];
      gz2[k] += t2[k];
    }
  }
  // c_i = a_i x_i + pos_i
  T ga1[3], ga2[3];
  for (int k = 0; k < 3; ++k) {
    gpos1[k] += gc1[k];
    gpos2[k] += gc2[k];
    ga1[k] = gc1[k] * aux.x1;
    ga2[k] = gc2[k] * aux.x2;
  }
  if (aux.kind1 != kSegFixed || aux.kind2 != kSegFixed) {
    const S dif[3] = {pos1[0] - pos2[0], pos1[1] - pos2[1], pos1[2] - pos2[2]};
    const SegmentCoef<S> m = segment_coef(a1, a2, dif);
    const T gx1 = tdot(a1, gc1);
    const T gx2 = tdot(a2, gc2);
    SegmentCoefTangent<T> gm;
    gm.ma = gm.mb = gm.mc = gm.u = gm.v = tangent_zero<T>();
    segment_param_vjp(aux.kind1, aux.x1, aux.s1, m, m.ma, m.mc, m.u, m.v, gx1, gm, gm.ma, gm.mc,
                      gm.u, gm.v);
    segment_param_vjp(aux.kind2, aux.x2, aux.s2, m, m.mc, m.ma, m.v, m.u, gx2, gm, gm.mc, gm.ma,
                      gm.v, gm.u);
    // ma = a1.a1, mb = -a1.a2, mc = a2.a2, u = -a1.dif, v = a2.dif, dif = pos1 - pos2
    for (int k = 0; k < 3; ++k) {
      ga1[k] += a1[k] * (S(2) * gm.ma) - a2[k] * gm.mb - dif[k] * gm.u;
      ga2[k] += a2[k] * (S(2) * gm.mc) - a1[k] * gm.mb + dif[k] * gm.v;
      const T gdif = a2[k] * gm.v - a1[k] * gm.u;
      gpos1[k] += gdif;
      gpos2[k] -= gdif;
    }
  }
  // a_i = h_i z_i, z_i = column 2 of mat_i
  for (int k = 0; k < 3; ++k) {
    gmat1[3 * k + 2] += gz1[k] + ga1[k] * h1;
    gmat2[3 * k + 2] += gz2[k] + ga2[k] * h2;
  }
}

// plane-sphere-family contacts (plane-sphere, plane-capsule): the sphere centre is
// c = pos2 + e h z2 (e = 0 for a sphere, the end +-1 for a capsule);
// dist = (c - pos1) . n - r, pos = c + n (-dist / 2 - r), n = column 2 of mat1
template <class S, class T>
PHYDREAM_HD void plane_sphere_raw_jvp(const S* pos1, const S* mat1, S e, S h, S r,
                                      const Contact<S>& con, const ContactAux<S>& aux,
                                      const T* dpos1, const T* dmat1, const T* dpos2,
                                      const T* dmat2, RawTangent<T>& out) {
  S n[3];
  zaxis(n, mat1);
  T dn[3], dz2[3], dc[3];
  zaxis(dn, dmat1);
  zaxis(dz2, dmat2);
  for (int k = 0; k < 3; ++k) dc[k] = e == S(0) ? dpos2[k] : dpos2[k] + dz2[k] * (e * h);
  const S cp[3] = {aux.c2[0] - pos1[0], aux.c2[1] - pos1[1], aux.c2[2] - pos1[2]};
  T dcp[3];
  for (int k = 0; k < 3; ++k) dcp[k] = dc[k] - dpos1[k];
  out.dist = tdot(n, dcp) + tdot(cp, dn);
  const S scl = -con.dist / S(2) - r;
  const T dscl = -out.dist / S(2);
  for (int k = 0; k < 3; ++k) {
    out.pos[k] = dc[k] + dn[k] * scl + n[k] * dscl;
    out.n[k] = dn[k];
    out.y[k] = e == S(0) ? tangent_zero<T>() : dz2[k];
  }
}

template <class S, class T>
PHYDREAM_HD void plane_sphere_raw_vjp(const S* pos1, const S* mat1, S e, S h, S r,
                                      const Contact<S>& con, const ContactAux<S>& aux,
                                      const RawTangent<T>& g, T* gpos1, T* gmat1, T* gpos2,
                                      T* gmat2) {
  S n[3];
  zaxis(n, mat1);
  const S cp[3] = {aux.c2[0] - pos1[0], aux.c2[1] - pos1[1], aux.c2[2] - pos1[2]};
  const S scl = -con.dist / S(2) - r;
  const T gdist = g.dist - tdot(n, g.pos) / S(2);
  for (int k = 0; k < 3; ++k) {
    const T gc = g.pos[k] + n[k] * gdist;
    gpos2[k] += gc;
    gpos1[k] -= n[k] * gdist;
    gmat1[3 * k + 2] += g.n[k] + g.pos[k] * scl + cp[k] * gdist;
    if (e != S(0)) gmat2[3 * k + 2] += g.y[k] + gc * (e * h);
  }
}

// plane-box: corner = mat2 v (v = +-size2 by the corner index), dist = (pos2 - pos1) . n +
// n . corner, pos = corner + pos2 + n (-dist / 2)
template <class S>
PHYDREAM_HD void box_corner_local(const S* size2, int i, S* v) {
  v[0] = (i & 1) ? size2[0] : -size2[0];
  v[1] = (i & 2) ? size2[1] : -size2[1];
  v[2] = (i & 4) ? size2[2] : -size2[2];
}

template <class S, class T>
PHYDREAM_HD void plane_box_raw_jvp(const S* pos1, const S* mat1, const S* pos2, const S* mat2,
                                   const S* size2, const Contact<S>& con,
                                   const ContactAux<S>& aux, const T* dpos1, const T* dmat1,
                                   const T* dpos2, const T* dmat2, RawTangent<T>& out) {
  S n[3], v[3];
  zaxis(n, mat1);
  box_corner_local(size2, aux.corner, v);
  T dn[3], dcorner[3], dq[3];
  zaxis(dn, dmat1);
  // q = corner + pos2 - pos1: the corner relative to the plane's origin
  S q[3];
  for (int k = 0; k < 3; ++k) {
    const S corner = mat2[3 * k] * v[0] + mat2[3 * k + 1] * v[1] + mat2[3 * k + 2] * v[2];
    q[k] = corner + pos2[k] - pos1[k];
    dcorner[k] = dmat2[3 * k] * v[0] + dmat2[3 * k + 1] * v[1] + dmat2[3 * k + 2] * v[2];
    dq[k] = dcorner[k] + dpos2[k] - dpos1[k];
  }
  out.dist = tdot(n, dq) + tdot(q, dn);
  const S scl = -con.dist / S(2);
  const T dscl = -out.dist / S(2);
  for (int k = 0; k < 3; ++k) {
    out.pos[k] = dcorner[k] + dpos2[k] + dn[k] * scl + n[k] * dscl;
    out.n[k] = dn[k];
    out.y[k] = tangent_zero<T>();
  }
}

template <class S, class T>
PHYDREAM_HD void plane_box_raw_vjp(const S* pos1, const S* mat1, const S* pos2, const S* mat2,
                                   const S* size2, const Contact<S>& con,
                                   const ContactAux<S>& aux, const RawTangent<T>& g, T* gpos1,
                                   T* gmat1, T* gpos2, T* gmat2) {
  S n[3], v[3], q[3];
  zaxis(n, mat1);
  box_corner_local(size2, aux.corner, v);
  for (int k = 0; k < 3; ++k) {
    const S corner = mat2[3 * k] * v[0] + mat2[3 * k + 1] * v[1] + mat2[3 * k + 2] * v[2];
    q[k] = corner + pos2[k] - pos1[k];
  }
  const S scl = -con.dist / S(2);
  const T gdist = g.dist - tdot(n, g.pos) / S(2);
  for (int k = 0; k < 3; ++k) {
    // gq: cotangent of q (corner + pos2 - pos1) through dist; the corner also moves pos
    const T gq = n[k] * gdist;
    const T gcorner = gq + g.pos[k];
    gpos2[k] += gcorner;
    gpos1[k] -= gq;
    for (int j = 0; j < 3; ++j) gmat2[3 * k + j] += gcorner * v[j];
    gmat1[3 * k + 2] += g.n[k] + g.pos[k] * scl + q[k] * gdist;
  }
}

template <class S, class T>
PHYDREAM_HD void raw_jvp(int type1, int type2, const S* pos1, const S* mat1, const S* size1,
                         const S* pos2, const S* mat2, const S* size2, const Contact<S>& con,
                         const ContactAux<S>& aux, const T* dpos1, const T* dmat1,
                         const T* dpos2, const T* dmat2, RawTangent<T>& out) {
  if (type1 == kPlane && type2 == kSphere) {
    plane_sphere_raw_jvp(pos1, mat1, S(0), size2[1], size2[0], con, aux, dpos1, dmat1, dpos2,
                         dmat2, out);
  } else if (type1 == kPlane && type2 == kCapsule) {
    plane_sphere_raw_jvp(pos1, mat1, S(aux.corner), size2[1], size2[0], con, aux, dpos1, dmat1,
                         dpos2, dmat2, out);
  } else if (type1 == kPlane && type2 == kBox) {
    plane_box_raw_jvp(pos1, mat1, pos2, mat2, size2, con, aux, dpos1, dmat1, dpos2, dmat2, out);
  } else {
    const S h1 = type1 == kCapsule ? size1[1] : S(0);
    const S h2 = type2 == kCapsule ? size2[1] : S(0);
    segments_raw_jvp(pos1, mat1, h1, size1[0], pos2, mat2, h2, con, aux, dpos1, dmat1, dpos2,
                     dmat2, out);
  }
}

template <class S, class T>
PHYDREAM_HD void raw_vjp(int type1, int type2, const S* pos1, const S* mat1, const S* size1,
                         const S* pos2, const S* mat2, const S* size2, const Contact<S>& con,
                         const ContactAux<S>& aux, const RawTangent<T>& g, T* gpos1, T* gmat1,
                         T* gpos2, T* gmat2) {
  if (type1 == kPlane && type2 == kSphere) {
    plane_sphere_raw_vjp(pos1, mat1, S(0), size2[1], size2[0], con, aux, g, gpos1, gmat1, gpos2,
                         gmat2);
  } else if (type1 == kPlane && type2 == kCapsule) {
    plane_sphere_raw_vjp(pos1, mat1, S(aux.corner), size2[1], size2[0], con, aux, g, gpos1,
                         gmat1, gpos2, gmat2);
  } else if (type1 == kPlane && type2 == kBox) {
    plane_box_raw_vjp(pos1, mat1, pos2, mat2, size2, con, aux, g, gpos1, gmat1, gpos2, gmat2);
  } else {
    const S h1 = type1 == kCapsule ? size1[1] : S(0);
    const S h2 = type2 == kCapsule ? size2[1] : S(0);
    segments_raw_vjp(pos1, mat1, h1, size1[0], pos2, mat2, h2, con, aux, g, gpos1, gmat1, gpos2,
                     gmat2);
  }
}


// box pairs: engine/collision_box.h on dual numbers, along the primal's branch; contact i of
// collide_raw is the one emitted as aux[i].corner

/// Input directions per reverse-mode pass of a box pair (24 inputs: pos1, mat1, pos2, mat2).
constexpr int kBoxVjpLanes = 6;

// the final slot of emitted contact e, or -1
template <class S>
PHYDREAM_HD int box_slot(const ContactAux<S>* aux, int n, int e) {
  for (int i = 0; i < n; ++i) {
    if (aux[i].corner == e) return i;
  }
  return -1;
}

// dual inputs: value and the tangent's lanes, or the unit seeds of inputs [j0, j0 + K) of the 24
template <class S, int K, class T>
PHYDREAM_HD void dual_inputs(const S* x, const T* dx, int nx, Dual<S, K>* out) {
  for (int k = 0; k < nx; ++k) out[k] = Dual<S, K>(x[k], as_lanes(dx[k]));
}
template <class S, int K>
PHYDREAM_HD void seeded_inputs(const S* x, int nx, int first, int j0, Dual<S, K>* out) {
  for (int k = 0; k < nx; ++k) {
    out[k] = Dual<S, K>(x[k]);
    const int lane = first + k - j0;
    if (lane >= 0 && lane < K) out[k].d[lane] = S(1);
  }
}

template <class S, class T>
struct BoxJvpSink {
  static constexpr int L = TangentTraits<T>::lanes;
  using R = Dual<S, L>;
  const Contact<S>* con;  // the raw contacts (frames before make_frame)
  const ContactAux<S>* aux;
  int n;
  ContactTangentRef<T> dout;
  int ne;
  PHYDREAM_HD void operator()(const R& dist, const R* p, const R* normal) {
    const int i = box_slot(aux, n, ne++);
    if (i < 0) return;
    T dn[3], dy[3];
    for (int k = 0; k < 3; ++k) {
      from_lanes(normal[k].d, dn[k]);
      from_lanes(p[k].d, dout.pos_of(i)[k]);
      dy[k] = tangent_zero<T>();
    }
    from_lanes(dist.d, dout.dist_of(i));
    FrameTape<S> tape;
    make_frame_tape(con[i].frame, tape);
    make_frame_jvp(tape, dn, dy, dout.frame_of(i));
  }
};

template <class S, class T>
PHYDREAM_HD void box_pair_jvp(int type1, const S* pos1, const S* mat1, const S* size1, const S* pos2,
                              const S* mat2, const S* size2, S margin, const Contact<S>* con,
                              const ContactAux<S>* aux, int n, const T* dpos1, const T* dmat1, const T* dpos2,
                              const T* dmat2, ContactTangentRef<T> dout) {
  using R = typename BoxJvpSink<S, T>::R;
  // a contact the dual pass does not reach (a device's contracted arithmetic deciding a near
  // tie otherwise) keeps zero tangents
  for (int i = 0; i < n; ++i) {
    dout.dist_of(i) = tangent_zero<T>();
    for (int k = 0; k < 3; ++k) dout.pos_of(i)[k] = tangent_zero<T>();
    for (int k = 0; k < 9; ++k) dout.frame_of(i)[k] = tangent_zero<T>();
  }
  R p1[3], m1[9], p2[3], m2[9];
  dual_inputs(pos1, dpos1, 3, p1);
  dual_inputs(mat1, dmat1, 9, m1);
  dual_inputs(pos2, dpos2, 3, p2);
  dual_inputs(mat2, dmat2, 9, m2);
  BoxJvpSink<S, T> sink{con, aux, n, dout, 0};
  unsigned branch = 0;
  box_pair_emit<S>(type1, p1, m1, size1, p2, m2, size2, margin, sink, &branch);
}

template <class S, class T>
struct BoxVjpSink {
  using R = Dual<S, kBoxVjpLanes>;
  const Contact<S>* con;
  const ContactAux<S>* aux;
  int n;
  ContactTangentRef<T> adj;
  int j0;   // the pass's first input
  T* grad;  // (24) cotangents of pos1, mat1, pos2, mat2, accumulated
  int ne;
  PHYDREAM_HD void operator()(const R& dist, const R* p, const R* normal) {
    const int i = box_slot(aux, n, ne++);
    if (i < 0) return;
    // the raw contact's cotangent: the frame's through make_frame (the hint is a constant)
    FrameTape<S> tape;
    make_frame_tape(con[i].frame, tape);
    T gn[3], gy[3];
    zero3(gn);
    zero3(gy);
    make_frame_vjp(tape, adj.frame_of(i), gn, gy);
    const T gd = adj.dist_of(i);
    const T* gp = adj.pos_of(i);
    for (int l = 0; l < kBoxVjpLanes && j0 + l < 24; ++l) {
      T g = gd * dist.d[l];
      for (int k = 0; k < 3; ++k) g += gp[k] * p[k].d[l] + gn[k] * normal[k].d[l];
      grad[j0 + l] += g;
    }
  }
};

template <class S, class T>
PHYDREAM_HD void box_pair_vjp(int type1, const S* pos1, const S* mat1, const S* size1, const S* pos2,
                              const S* mat2, const S* size2, S margin, const Contact<S>* con,
                              const ContactAux<S>* aux, int n, ContactTangentRef<T> adj, T* gpos1, T* gmat1,
                              T* gpos2, T* gmat2) {
  using R = Dual<S, kBoxVjpLanes>;
  T grad[24];
  for (T& g : grad) g = tangent_zero<T>();
  for (int j0 = 0; j0 < 24; j0 += kBoxVjpLanes) {
    R p1[3], m1[9], p2[3], m2[9];
    seeded_inputs(pos1, 3, 0, j0, p1);
    seeded_inputs(mat1, 9, 3, j0, m1);
    seeded_inputs(pos2, 3, 12, j0, p2);
    seeded_inputs(mat2, 9, 15, j0, m2);
    BoxVjpSink<S, T> sink{con, aux, n, adj, j0, grad, 0};
    unsigned branch = 0;
    box_pair_emit<S>(type1, p1, m1, size1, p2, m2, size2, margin, sink, &branch);
  }
  for (int k = 0; k < 3; ++k) {
    gpos1[k] += grad[k];
    gpos2[k] += grad[12 + k];
  }
  for (int k = 0; k < 9; ++k) {
    gmat1[k] += grad[3 + k];
    gmat2[k] += grad[15 + k];
  }
}
}  // namespace collision_detail

// =============================================================================================
// public narrow phase

/// Contacts between geom1 (type1, pos1 (3), mat1 (9, row-major), size1 (3)) and geom2 (type2,
/// pos2, mat2, size2), emitted while their distance is at most margin, written to
/// out[0, n) (room for max_contacts(type1, type2)); returns n. Types are GeomType values with
/// type1 <= type2 (callers order the geoms so, as MuJoCo does); an unsupported or misordered
/// pair returns 0. geom1 and geom2 are copied into the contacts.
template <class S>
PHYDREAM_HD int collide_geoms(int type1, int type2, const S* pos1, const S* mat1, const S* size1,
                              const S* pos2, const S* mat2, const S* size2, S margin,
                              Contact<S>* out, int geom1 = -1, int geom2 = -1) {
  collision_detail::ContactAux<S> aux[kMaxContactsPerPair];
  const int n = collision_detail::collide_raw(type1, type2, pos1, mat1, size1, pos2, mat2, size2,
                                              margin, out, aux);
  for (int i = 0; i < n; ++i) {
    collision_detail::make_frame(out[i].frame);
    out[i].geom1 = geom1;
    out[i].geom2 = geom2;
  }
  return n;
}

/// Forward mode: the contacts of collide_geoms (out, n of them, returned) and their tangents
/// dout[0, n) along the input tangents dpos1 (3), dmat1 (9), dpos2 (3), dmat2 (9) (overwrites).
/// The branch is the primal's. T is S or Vec<S, K>.
template <class S, class T>
PHYDREAM_HD int collide_geoms_jvp(int type1, int type2, const S* pos1, const S* mat1,
                                  const S* size1, const S* pos2, const S* mat2, const S* size2,
                                  S margin, const T* dpos1, const T* dmat1, const T* dpos2,
                                  const T* dmat2, Contact<S>* out, ContactTangentRef<T> dout,
                                  int geom1 = -1, int geom2 = -1) {
  using namespace collision_detail;
  ContactAux<S> aux[kMaxContactsPerPair];
  const int n = collide_raw(type1, type2, pos1, mat1, size1, pos2, mat2, size2, margin, out, aux);
  if (box_pair(type1, type2)) {
    box_pair_jvp(type1, pos1, mat1, size1, pos2, mat2, size2, margin, out, aux, n, dpos1, dmat1, dpos2, dmat2,
                 dout);
  } else {
    for (int i = 0; i < n; ++i) {
      RawTangent<T> raw;
      raw_jvp(type1, type2, pos1, mat1, size1, pos2, mat2, size2, out[i], aux[i], dpos1, dmat1, dpos2, dmat2,
              raw);
      FrameTape<S> tape;
      make_frame_tape(out[i].frame, tape);
      make_frame_jvp(tape, raw.n, raw.y, dout.frame_of(i));
      dout.dist_of(i) = raw.dist;
      for (int k = 0; k < 3; ++k) dout.pos_of(i)[k] = raw.pos[k];
    }
  }
  for (int i = 0; i < n; ++i) {
    make_frame(out[i].frame);
    out[i].geom1 = geom1;
    out[i].geom2 = geom2;
  }
  return n;
}
template <class S, class T>
PHYDREAM_HD int collide_geoms_jvp(int type1, int type2, const S* pos1, const S* mat1,
                                  const S* size1, const S* pos2, const S* mat2, const S* size2,
                                  S margin, const T* dpos1, const T* dmat1, const T* dpos2,
                                  const T* dmat2, Contact<S>* out, ContactTangent<T>* dout,
                                  int geom1 = -1, int geom2 = -1) {
  return collide_geoms_jvp<S, T>(type1, type2, pos1, mat1, size1, pos2, mat2, size2, margin, dpos1, dmat1,
                                 dpos2, dmat2, out, ContactTangentRef<T>::of(dout), geom1, geom2);
}

/// Reverse mode: given the cotangents adj_contact[0, n) of the n contacts collide_geoms emits
/// for these inputs (dist, pos, frame; read only), accumulates (+=) their pull-back into
/// adj_pos1 (3), adj_mat1 (9), adj_pos2 (3), adj_mat2 (9). Returns n. T is S or Vec<S, K>.
template <class S, class T>
PHYDREAM_HD int collide_geoms_vjp(int type1, int type2, const S* pos1, const S* mat1,
                                  const S* size1, const S* pos2, const S* mat2, const S* size2,
                                  S margin, ContactTangentRef<T> adj_contact, T* adj_pos1,
                                  T* adj_mat1, T* adj_pos2, T* adj_mat2) {
  using namespace collision_detail;
  Contact<S> con[kMaxContactsPerPair];
  ContactAux<S> aux[kMaxContactsPerPair];
  const int n = collide_raw(type1, type2, pos1, mat1, size1, pos2, mat2, size2, margin, con, aux);
  if (box_pair(type1, type2)) {
    box_pair_vjp(type1, pos1, mat1, size1, pos2, mat2, size2, margin, con, aux, n, adj_contact, adj_pos1,
                 adj_mat1, adj_pos2, adj_mat2);
    return n;
  }
  for (int i = 0; i < n; ++i) {
    FrameTape<S> tape;
    make_frame_tape(con[i].frame, tape);
    RawTangent<T> g;
    raw_tangent_zero(g);
    make_frame_vjp(tape, adj_contact.frame_of(i), g.n, g.y);
    g.dist = adj_contact.dist_of(i);
    for (int k = 0; k < 3; ++k) g.pos[k] = adj_contact.pos_of(i)[k];
    raw_vjp(type1, type2, pos1, mat1, size1, pos2, mat2, size2, con[i], aux[i], g, adj_pos1,
            adj_mat1, adj_pos2, adj_mat2);
  }
  return n;
}
template <class S, class T>
PHYDREAM_HD int collide_geoms_vjp(int type1, int type2, const S* pos1, const S* mat1,
                                  const S* size1, const S* pos2, const S* mat2, const S* size2,
                                  S margin, const ContactTangent<T>* adj_contact, T* adj_pos1,
                                  T* adj_mat1, T* adj_pos2, T* adj_mat2) {
  // read only: the reference's mutable pointer is never written through
  return collide_geoms_vjp<S, T>(type1, type2, pos1, mat1, size1, pos2, mat2, size2, margin,
                                 ContactTangentRef<T>::of(const_cast<ContactTangent<T>*>(adj_contact)),
                                 adj_pos1, adj_mat1, adj_pos2, adj_mat2);
}

// =============================================================================================
// host: the geom pairs MuJoCo 2.2.2's mj_collision can make contacts for

/// Each body's weld body (nbody): the nearest ancestor-or-self with joints, 0 (the world) when
/// none; MuJoCo's body_weldid.
inline std::vector<int> body_weldid(const Model& m) {
  std::vector<int> weld(m.nbody, 0);
  for (int b = 1; b < m.nbody; ++b) {
    // parents precede children in the body order
    weld[b] = m.body_jntnum[b] > 0 ? b : weld[m.body_parentid[b]];
  }
  return weld;
}

namespace collision_detail {
inline std::string geom_type_name(int type) {
  switch (type) {
    case static_cast<int>(GeomType::plane): return "plane";
    case 1: return "hfield";
    case static_cast<int>(GeomType::sphere): return "sphere";
    case static_cast<int>(GeomType::capsule): return "capsule";
    case static_cast<int>(GeomType::ellipsoid): return "ellipsoid";
    case static_cast<int>(GeomType::cylinder): return "cylinder";
    case static_cast<int>(GeomType::box): return "box";
    case 7: return "mesh";
    default: return "type " + std::to_string(type);
  }
}

inline std::string geom_label(const Model& m, int g) {
  const bool named = g < static_cast<int>(m.geom_name.size()) && !m.geom_name[g].empty();
  return named ? "geom '" + m.geom_name[g] + "'" : "geom " + std::to_string(g);
}

// whether MuJoCo 2.2.2 has a collision function for the pair ordered type1 <= type2: none
// between planes and height fields (types 0 and 1)
inline bool mujoco_has_collision(int type1, int type2) { return !(type1 <= 1 && type2 <= 1); }
}  // namespace collision_detail

/// Every geom pair (geom1, geom2) that MuJoCo 2.2.2's mj_collision can ever make contacts for,
/// in its order (body pairs b1 < b2, then geoms in order), each ordered so that
/// type(geom1) <= type(geom2). The filters are MuJoCo's mj_contactFilter: contype/conaffinity
/// compatibility, different weld bodies (which excludes geoms of one body and of bodies welded
/// together or to the world), and, unless opt_disableflags has kDisableFilterparent, no pair of
/// a weld body and its parent's weld body when neither is the world. Plane-plane pairs, for
/// which MuJoCo has no collision function, are left out. Empty when contacts or constraints are
/// disabled. Throws std::invalid_argument naming both geoms for a pair collide_geoms does not
/// support.
inline std::vector<std::array<int, 2>> collision_candidates(const Model& m) {
  std::vector<std::array<int, 2>> pairs;
  if ((m.opt_disableflags & (kDisableConstraint | kDisableContact)) != 0 || m.nbody < 2) {
    return pairs;
  }
  const std::vector<int> weld = body_weldid(m);
  const bool filterparent = (m.opt_disableflags & kDisableFilterparent) == 0;

  // geom pairs on different bodies, lower body first, in MuJoCo's loop order
  struct Entry {
    int b1, b2, g1, g2;
  };
  std::vector<Entry> entries;
  for (int g1 = 0; g1 < m.ngeom; ++g1) {
    for (int g2 = 0; g2 < m.ngeom; ++g2) {
      const int b1 = m.geom_bodyid[g1], b2 = m.geom_bodyid[g2];
      if (b1 < b2) entries.push_back({b1, b2, g1, g2});
    }
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    if (a.b1 != b.b1) return a.b1 < b.b1;
    if (a.b2 != b.b2) return a.b2 < b.b2;
    if (a.g1 != b.g1) return a.g1 < b.g1;
    return a.g2 < b.g2;
  });

  for (const Entry& e : entries) {
    int g1 = e.g1, g2 = e.g2;
    // MuJoCo swaps the geoms so that geom1's type is the smaller
    if (m.geom_type[g1] > m.geom_type[g2]) std::swap(g1, g2);
    const int t1 = m.geom_type[g1], t2 = m.geom_type[g2];
    if (!collision_detail::mujoco_has_collision(t1, t2)) continue;
    // contype / conaffinity compatibility
    if (!(m.geom_contype[g1] & m.geom_conaffinity[g2]) &&
        !(m.geom_contype[g2] & m.geom_conaffinity[g1])) {
      continue;
    }
    // same weld body (same body, welded together, or both welded to the world)
    const int w1 = weld[m.geom_bodyid[g1]], w2 = weld[m.geom_bodyid[g2]];
    if (w1 == w2) continue;
    // a weld body and its parent's weld body, neither the world
    if (filterparent && w1 != 0 && w2 != 0 &&
        (w1 == weld[m.body_parentid[w2]] || w2 == weld[m.body_parentid[w1]])) {
      continue;
    }
    if (!collision_supported(t1, t2)) {
      using collision_detail::geom_label;
      using collision_detail::geom_type_name;
      throw InputError(
          "collision between " + geom_label(m, g1) + " (" + geom_type_name(t1) + ") and " +
          geom_label(m, g2) + " (" + geom_type_name(t2) +
          ") is not supported; supported pairs: plane-sphere, plane-capsule, plane-box, "
          "sphere-sphere, sphere-capsule, sphere-box, capsule-capsule, capsule-box, box-box "
          "(exclude the pair with contype/conaffinity)");
    }
    pairs.push_back({g1, g2});
  }
  return pairs;
}

/// Sum of max_contacts over the candidate pairs: room for every contact of one configuration.
inline int max_contacts(const Model& m, const std::vector<std::array<int, 2>>& candidates) {
  int total = 0;
  for (const auto& p : candidates) total += max_contacts(m.geom_type[p[0]], m.geom_type[p[1]]);
  return total;
}

}  // namespace phydream
