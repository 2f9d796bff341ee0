// Box collisions as MuJoCo 2.2.2 computes them (engine_collision_box.c: sphere-box, capsule-box,
// box-box), written once for any number type R so that the same code gives the primal contacts
// (R = S) and their derivatives (R = Dual<S, K>, engine/dual.h: every value rounds as in the
// scalar code, and the branch taken is the scalar code's).
//
// Each function emits the pair's raw contacts one at a time, in MuJoCo's order, by
// sink(dist, pos, normal): dist the signed distance (negative in penetration), pos (3) the world
// position, normal (3) the raw first frame row, from geom1 to geom2; the tangent hint is always
// zero (mju_makeFrame's default then applies). engine/collision.h removes box-box's repeated
// contacts, applies MuJoCo's bounding-sphere filter, completes the frames and differentiates
// through these functions.
//
// What MuJoCo 2.2.2 does, and so what is reproduced, quirks included:
//   sphere-box: the sphere centre in the box frame is clamped to the box; outside, the contact
//     lies midway between the clamped point and the sphere's deepest point along the normal;
//     inside, the normal is the nearest face's (the first of -x, +x, -y, +y, -z, +z at the
//     smallest distance), pointing into the box, and the position is the centre moved along it
//     by half of (radius - face distance)
//   capsule-box: the segment point nearest the box (the two ends against the faces, then the
//     segment against each of the 12 edges, an edge taken when closer by more than mjMINVAL in
//     squared distance) and, when the segment runs along a face or an edge, a second point
//     towards its far end clipped to the box; each point then collides as a sphere of the
//     capsule's radius (the second only when it is within the margin too)
//   box-box: the separating-axis test over the 6 face normals and the 9 edge-edge axes (an edge
//     axis wins only when shallower by a relative 1e-12). For a face axis, the incident box's
//     corner nearest the reference face and its edges nearly parallel to the face (|cos| < 0.5)
//     span the contact polygon: its edges' crossings of the face's sides, the face's corners
//     inside it and its own corners inside the face, those within the margin; dist is half the
//     depth below the face (MuJoCo 2.2.2's value). For an edge axis, the incident face's
//     quadrilateral is projected along the axis onto the reference face and clipped likewise,
//     dist the signed distance along the axis; in the face-corner test the determinant is
//     overwritten by each accepted corner's squared distance, as MuJoCo's loop does
// At most 1 contact for sphere-box and 2 for capsule-box; box-box emits at most 24 (16 edge
// crossings, 4 face corners, 4 own corners) before repeated positions are removed.
//
// `sig` accumulates a code of the discrete choices (clamps, nearest feature, axis, which
// candidates were kept): two poses with the same code took the same branch, which the tests use
// to keep finite differences on one branch.
//
// Everything is PHYDREAM_HD with fixed-size storage only; S is the scalar type, R the number
// type (S or Dual<S, K>), sizes and margin are constants of type S.
#pragma once

#include "engine/core.h"
#include "engine/dual.h"

namespace phydream {
namespace box_detail {

/// MuJoCo's mjMINVAL.
template <class S>
PHYDREAM_HD constexpr S min_val() {
  return S(1e-15);
}

/// Most raw contacts box_box emits (before repeated positions are removed).
constexpr int kBoxBoxEmitMax = 24;

// folds a choice into the code (an odd multiplier, so no earlier choice is ever shifted out)
PHYDREAM_HD void note(unsigned* sig, unsigned choice) { *sig = *sig * 0x9E3779B1u + choice + 1u; }

// ---------------------------------------------------------------------------------------------
// 3-vector and 3x3 helpers in MuJoCo's operation order (row-major matrices)

template <class R>
PHYDREAM_HD R dot3(const R* a, const R* b) {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

// res = mat v (mju_rotVecMat)
template <class R, class V>
PHYDREAM_HD void mat_vec(R* res, const R* mat, const V* v) {
  for (int i = 0; i < 3; ++i) res[i] = mat[3 * i] * v[0] + mat[3 * i + 1] * v[1] + mat[3 * i + 2] * v[2];
}

// res = mat' v (mju_rotVecMatT)
template <class R, class M, class V>
PHYDREAM_HD void mat_t_vec(R* res, const M* mat, const V* v) {
  for (int i = 0; i < 3; ++i) res[i] = mat[i] * v[0] + mat[3 + i] * v[1] + mat[6 + i] * v[2];
}

// v / |v| in place as v * (1 / |v|); (1, 0, 0) below mjMINVAL (mju_normalize3). Returns |v|.
template <class S, class R>
PHYDREAM_HD R normalize(R* v) {
  const R n = sqrt_(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  if (n < min_val<S>()) {
    v[0] = R(S(1));
    v[1] = R(S(0));
    v[2] = R(S(0));
  } else {
    const R inv = S(1) / n;
    for (int k = 0; k < 3; ++k) v[k] *= inv;
  }
  return n;
}

// the signed axis permutation that MuJoCo's box-box calls rotmore, for a face code f in 0..5:
// (rotmore v)_i = sign_i v[idx_i]; it turns face f's outward normal (or, for q2, inward) into +z
struct Permutation {
  int idx[3];
  int sign[3];
};

PHYDREAM_HD Permutation face_permutation(int f) {
  switch (f) {
    case 0: return {{2, 1, 0}, {-1, 1, 1}};
    case 1: return {{0, 2, 1}, {1, -1, 1}};
    case 3: return {{2, 1, 0}, {1, 1, -1}};
    case 4: return {{0, 2, 1}, {1, 1, -1}};
    case 5: return {{0, 1, 2}, {-1, 1, -1}};
    default: return {{0, 1, 2}, {1, 1, 1}};
  }
}

// res = rotmore v
template <class S, class R, class V>
PHYDREAM_HD void permute(const Permutation& p, const V* v, R* res) {
  for (int i = 0; i < 3; ++i) res[i] = v[p.idx[i]] * S(p.sign[i]);
}

// res = rotmore mat (row i of res is sign_i times row idx_i of mat)
template <class S, class R>
PHYDREAM_HD void permute_rows(const Permutation& p, const R* mat, R* res) {
  for (int i = 0; i < 3; ++i) {
    for (int c = 0; c < 3; ++c) res[3 * i + c] = mat[3 * p.idx[i] + c] * S(p.sign[i]);
  }
}

// res = mat rotmore' (column j of res is sign_j times column idx_j of mat)
template <class S, class R>
PHYDREAM_HD void permute_cols(const Permutation& p, const R* mat, R* res) {
  for (int r = 0; r < 3; ++r) {
    for (int j = 0; j < 3; ++j) res[3 * r + j] = mat[3 * r + p.idx[j]] * S(p.sign[j]);
  }
}

template <class R>
PHYDREAM_HD void transpose3(const R* a, R* t) {
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) t[3 * j + i] = a[3 * i + j];
  }
}

// =============================================================================================
// sphere-box

/// The sphere of centre c (3, world) and radius r against the box (pos2, mat2, half-sizes
/// size2); emits at most one contact. MuJoCo's _SphereBox.
template <class S, class R, class Sink>
PHYDREAM_HD int sphere_box(const R* c, S r, const R* pos2, const R* mat2, const S* size2, S margin, Sink& sink,
                           unsigned* sig) {
  R tmp[3], center[3], clamped[3];
  for (int k = 0; k < 3; ++k) tmp[k] = c[k] - pos2[k];
  mat_t_vec(center, mat2, tmp);
  // the box point nearest the centre (the box frame)
  unsigned clamps = 0;
  for (int k = 0; k < 3; ++k) {
    clamped[k] = center[k];
    if (size2[k] > S(0)) {
      if (clamped[k] < -size2[k]) {
        clamped[k] = R(-size2[k]);
        clamps |= 1u << (2 * k);
      } else if (clamped[k] > size2[k]) {
        clamped[k] = R(size2[k]);
        clamps |= 2u << (2 * k);
      }
    }
  }
  for (int k = 0; k < 3; ++k) tmp[k] = clamped[k] - center[k];
  const R dist = normalize<S>(tmp);
  if (dist - r > margin) return 0;

  R pos[3], normal[3];
  if (dist <= min_val<S>()) {
    // the centre inside the box: push out through the nearest face
    S closest_init = (size2[0] + size2[1] + size2[2]) * S(2);
    R closest = R(closest_init);
    int face = 0;
    for (int i = 0; i < 6; ++i) {
      const R gap = abs_(S(i % 2 ? 1 : -1) * size2[i / 2] - center[i / 2]);
      if (closest > gap) {
        closest = gap;
        face = i;
      }
    }
    S nearest[3] = {S(0), S(0), S(0)};
    nearest[face / 2] = face % 2 ? S(-1) : S(1);
    const R step = (r - closest) / S(2);
    for (int k = 0; k < 3; ++k) pos[k] = center[k] + nearest[k] * step;
    mat_vec(normal, mat2, nearest);
    note(sig, 7);
    note(sig, static_cast<unsigned>(face));
  } else {
    // outside: midway between the clamped point and the sphere's deepest point
    for (int k = 0; k < 3; ++k) {
      const R deepest = center[k] + tmp[k] * r;
      pos[k] = (S(0) + clamped[k] * S(0.5)) + deepest * S(0.5);
    }
    mat_vec(normal, mat2, tmp);
    note(sig, clamps & 7u);
    note(sig, clamps >> 3);
  }
  R world[3];
  mat_vec(world, mat2, pos);
  for (int k = 0; k < 3; ++k) world[k] = world[k] + pos2[k];
  sink(dist - r, world, normal);
  return 1;
}

// =============================================================================================
// capsule-box

// x clamped to [-1, 1]: returns whether it was, *side set to 0 (at -1) or 2 (at +1) if so
template <class S, class R>
PHYDREAM_HD bool clamp_unit(R* x, int* side) {
  if (*x > S(1)) {
    *x = R(S(1));
    *side = 2;
    return true;
  }
  if (*x < S(-1)) {
    *x = R(S(-1));
    *side = 0;
    return true;
  }
  return false;
}

/// The capsule (pos1, mat1, size1 = radius, half-length) against the box (pos2, mat2, size2);
/// emits at most two contacts. MuJoCo's mjc_CapsuleBox.
template <class S, class R, class Sink>
PHYDREAM_HD int capsule_box(const R* pos1, const R* mat1, const S* size1, const R* pos2, const R* mat2,
                            const S* size2, S margin, Sink& sink, unsigned* sig) {
  const S radius = size1[0], half = size1[1];
  R tmp1[3], pos[3], axis[3], halfaxis[3];
  // the capsule's centre and axis in the box frame
  for (int k = 0; k < 3; ++k) tmp1[k] = pos1[k] - pos2[k];
  mat_t_vec(pos, mat2, tmp1);
  const R zaxis[3] = {mat1[2], mat1[5], mat1[8]};
  mat_t_vec(axis, mat2, zaxis);
  for (int k = 0; k < 3; ++k) halfaxis[k] = axis[k] * half;
  // the octant the axis points into
  const int axisdir = (halfaxis[0] > S(0) ? 1 : 0) + (halfaxis[1] > S(0) ? 2 : 0) + (halfaxis[2] > S(0) ? 4 : 0);

  // the nearest feature: (squared) distance, segment parameter in [-1, 1], box-edge parameter
  const S bestdistmax = margin + S(2) * ((((radius + half) + size2[0]) + size2[1]) + size2[2]);
  R bestdist = R(bestdistmax);
  R bestsegmentpos = R(S(0));
  R bestboxpos = R(S(0));
  int cltype = -4;   // -3, -1: the -axis or +axis end against a face; 0..8: an edge (3 s1 + s2)
  int clface = -1;   // the face axis the end was clamped on (-1: inside the box's slab)
  int clcorner = 0;  // the edge's nearest corner (bit k: +size on axis k)
  int cledge = 0;    // the edge's axis

  // the ends against the faces: an end clamped on at most one axis lies over a face
  for (int end = -1; end <= 1; end += 2) {
    R p[3], q[3];
    for (int k = 0; k < 3; ++k) p[k] = pos[k] + halfaxis[k] * S(end);
    int nclamp = 0, axis_clamped = -1;
    for (int k = 0; k < 3; ++k) {
      q[k] = p[k];
      if (q[k] < -size2[k]) {
        ++nclamp;
        axis_clamped = k;
        q[k] = R(-size2[k]);
      } else if (q[k] > size2[k]) {
        ++nclamp;
        axis_clamped = k;
        q[k] = R(size2[k]);
      }
    }
    if (nclamp > 1) continue;
    for (int k = 0; k < 3; ++k) q[k] = q[k] - p[k];
    const R d2 = dot3(q, q);
    if (d2 < bestdist) {
      bestdist = d2;
      bestsegmentpos = R(S(end));
      cltype = -2 + end;
      clface = axis_clamped;
    }
  }

  // the segment against the 12 edges: along axis j from the corner i (bit j of i clear)
  const S mc = half * half;
  for (int j = 0; j < 3; ++j) {
    for (int i = 0; i < 8; ++i) {
      if ((i & (1 << j)) != 0) continue;
      S corner[3] = {((i & 1) ? S(1) : S(-1)) * size2[0], ((i & 2) ? S(1) : S(-1)) * size2[1],
                     ((i & 4) ? S(1) : S(-1)) * size2[2]};
      corner[j] = S(0);
      R dif[3];
      for (int k = 0; k < 3; ++k) dif[k] = corner[k] - pos[k];
      // minimise |corner + e_j size_j x1 - (pos + halfaxis x2)|^2 over x1, x2 in [-1, 1]
      const S ma = size2[j] * size2[j];
      const R mb = -size2[j] * halfaxis[j];
      const R u = -size2[j] * dif[j];
      const R v = dot3(halfaxis, dif);
      const R det = ma * mc - mb * mb;
      if (abs_(det) < min_val<S>()) continue;
      const R idet = S(1) / det;
      R x1 = (mc * u - mb * v) * idet;
      R x2 = (ma * v - mb * u) * idet;
      int s1 = 1, s2 = 1;  // 0, 2: clamped to -1, +1
      // a clamped parameter fixes the other at its minimiser ((v -+ mb) / mc, (u -+ mb) / ma:
      // mb x is exactly +-mb)
      if (clamp_unit<S>(&x1, &s1)) x2 = (v - mb * x1) * (S(1) / mc);
      if (clamp_unit<S>(&x2, &s2)) {
        x1 = (u - mb * x2) * (S(1) / ma);
        clamp_unit<S>(&x1, &s1);
      }
      for (int k = 0; k < 3; ++k) dif[k] = dif[k] + halfaxis[k] * (-x2);
      dif[j] = dif[j] + size2[j] * x1;
      const R d2 = dot3(dif, dif);
      // (the mjMINVAL guards against an axis numerically parallel to the box)
      if (d2 < bestdist - min_val<S>()) {
        bestdist = d2;
        bestsegmentpos = x2;
        bestboxpos = x1;
        const int code = s1 * 3 + s2;
        clcorner = i + (1 << j) * (code / 6);
        cledge = j;
        cltype = code;
      }
    }
  }
  if (cltype == -4) return 0;
  note(sig, static_cast<unsigned>(cltype + 4));
  note(sig, static_cast<unsigned>(clface + 1));
  note(sig, static_cast<unsigned>(clcorner));
  note(sig, static_cast<unsigned>(cledge));

  // a second point along the face or edge the segment lies on (secondpos > -3), as an offset
  // from bestsegmentpos along the segment
  R secondpos = R(S(-4));
  unsigned clip = 0;  // which bound clipped it
  auto clip_to = [&](const R& e, unsigned which) {
    if (e < secondpos) {
      secondpos = e;
      clip = which;
    }
  };
  if (cltype >= 0 && cltype / 3 != 1) {
    // nearest to a corner of the box
    int c1 = axisdir ^ clcorner;
    if (c1 != 0 && c1 != 7) {
      S mul = S(1);
      R de, dp;
      if (c1 == 1 || c1 == 2 || c1 == 4) {
        mul = S(1);
        de = S(1) - bestsegmentpos;
        dp = S(1) + bestsegmentpos;
      } else {
        mul = S(-1);
        c1 = 7 - c1;
        dp = S(1) - bestsegmentpos;
        de = S(1) + bestsegmentpos;
      }
      const int ax = c1 == 1 ? 0 : c1 == 2 ? 1 : 2;
      const int ax1 = (ax + 1) % 3, ax2 = (ax + 2) % 3;
      if (axis[ax] * axis[ax] > S(0.5)) {
        // along the edge
        secondpos = de;
        clip_to(S(2) * size2[ax] / abs_(halfaxis[ax]), 1);
        secondpos = secondpos * mul;
      } else {
        // along a face
        secondpos = dp;
        clip_to(S(2) * size2[ax1] / abs_(halfaxis[ax1]), 2);
        clip_to(S(2) * size2[ax2] / abs_(halfaxis[ax2]), 3);
        secondpos = secondpos * (-mul);
      }
    }
  } else if (cltype >= 0) {
    // nearest to the middle of an edge: crossing it (not a T) gives a second point
    int c1 = axisdir ^ clcorner;
    c1 &= 7 - (1 << cledge);
    if (c1 == 1 || c1 == 2 || c1 == 4) {
      const int ax = cledge;
      int ax1 = (cledge + 1) % 3;
      const int ax2_init = (cledge + 2) % 3;
      // the face the segment is flatter against
      if (abs_(axis[ax1]) > abs_(axis[ax2_init])) ax1 = ax2_init;
      const int ax2 = 3 - ax - ax1;
      S mul;
      if (c1 & (1 << ax2)) {
        mul = S(1);
        secondpos = S(1) - bestsegmentpos;
      } else {
        mul = S(-1);
        secondpos = S(1) + bestsegmentpos;
      }
      clip_to(S(2) * size2[ax2] / abs_(halfaxis[ax2]), 1);
      const R e2 = ((axisdir & (1 << ax)) != 0) == ((c1 & (1 << ax2)) != 0) ? S(1) - bestboxpos
                                                                                 : S(1) + bestboxpos;
      clip_to(size2[ax] * e2 / abs_(halfaxis[ax]), 2);
      secondpos = secondpos * mul;
    }
  } else if (clface != -1) {
    // an end over a face: the other end, clipped where the segment leaves the box's slabs
    const S mul = cltype == -3 ? S(1) : S(-1);
    secondpos = R(S(2));
    R t[3];
    for (int k = 0; k < 3; ++k) t[k] = pos[k] + halfaxis[k] * (-mul);
    for (int k = 0; k < 3; ++k) {
      if (k == clface) continue;
      for (int side = 0; side < 2; ++side) {
        const R e = ((side == 0 ? size2[k] : -size2[k]) - t[k]) / halfaxis[k] * mul;
        if (e > S(0)) clip_to(e, static_cast<unsigned>(2 * k + side + 1));
      }
    }
    secondpos = secondpos * mul;
  }
  note(sig, clip);

  // the points collide as spheres of the capsule's radius
  auto sphere_at = [&](const R& x) {
    R local[3], world[3];
    for (int k = 0; k < 3; ++k) local[k] = pos[k] + halfaxis[k] * x;
    mat_vec(world, mat2, local);
    for (int k = 0; k < 3; ++k) world[k] = world[k] + pos2[k];
    return sphere_box<S>(world, radius, pos2, mat2, size2, margin, sink, sig);
  };
  int n = sphere_at(bestsegmentpos);
  if (secondpos > S(-3)) n += sphere_at(secondpos + bestsegmentpos);
  return n;
}

// =============================================================================================
// box-box

/// Box 1 (pos1, mat1, size1) against box 2 (pos2, mat2, size2); emits at most kBoxBoxEmitMax
/// contacts, possibly repeating positions. MuJoCo's mjc_BoxBox.
template <class S, class R, class Sink>
PHYDREAM_HD int box_box(const R* pos1, const R* mat1, const S* size1, const R* pos2, const R* mat2, const S* size2,
                        S margin, Sink& sink, unsigned* sig) {
  const S margin2 = margin * margin;
  R tmp[3], pos21[3], pos12[3], rot[9], rott[9], rotabs[9], rottabs[9], plen1[3], plen2[3];
  // each box's centre in the other's frame, and rot = mat1' mat2
  for (int k = 0; k < 3; ++k) tmp[k] = pos2[k] - pos1[k];
  mat_t_vec(pos21, mat1, tmp);
  for (int k = 0; k < 3; ++k) tmp[k] = pos1[k] - pos2[k];
  mat_t_vec(pos12, mat2, tmp);
  for (int i = 0; i < 9; ++i) rot[i] = R(S(0));
  for (int k = 0; k < 3; ++k) {
    for (int i = 0; i < 3; ++i) {
      // MuJoCo's mju_mulMatTMat skips zero entries (a dual's only with zero tangents, dual.h)
      if (exact_zero(mat1[3 * k + i])) continue;
      for (int j = 0; j < 3; ++j) rot[3 * i + j] = rot[3 * i + j] + mat2[3 * k + j] * mat1[3 * k + i];
    }
  }
  transpose3(rot, rott);
  for (int i = 0; i < 9; ++i) {
    rotabs[i] = abs_(rot[i]);
    rottabs[i] = abs_(rott[i]);
  }
  // the boxes' extents along each other's axes
  mat_vec(plen2, rotabs, size2);
  mat_t_vec(plen1, rotabs, size1);

  // separating axes: the face normals of either box
  S pen_init = margin;
  for (int i = 0; i < 3; ++i) pen_init += size1[i] * S(3) + size2[i] * S(3);
  R penetration = R(pen_init);
  int code = -1;
  for (int i = 0; i < 3; ++i) {
    const R c1 = (-abs_(pos21[i]) + size1[i]) + plen2[i];
    const R c2 = (-abs_(pos12[i]) + size2[i]) + plen1[i];
    if (c1 < -margin || c2 < -margin) return 0;
    if (c1 < penetration) {
      penetration = c1;
      code = i + 3 * (pos21[i] < S(0) ? 1 : 0);
    }
    if (c2 < penetration) {
      penetration = c2;
      code = i + 3 * (pos12[i] < S(0) ? 1 : 0) + 6;
    }
  }
  // and the cross products of their edges
  int cle1 = 0, cle2 = 0, inward = 0;
  R clnorm[3] = {R(S(0)), R(S(0)), R(S(0))};
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) {
      R ax[3] = {R(S(0)), R(S(0)), R(S(0))};
      // e_i x (column j of rot), in box 1's frame
      if (i == 0) {
        ax[1] = -rott[3 * j + 2];
        ax[2] = rott[3 * j + 1];
      } else if (i == 1) {
        ax[0] = rott[3 * j + 2];
        ax[2] = -rott[3 * j];
      } else {
        ax[0] = -rott[3 * j + 1];
        ax[1] = rott[3 * j];
      }
      const R len = normalize<S>(ax);
      if (len < min_val<S>()) continue;
      const R c2 = dot3(pos21, ax);
      R c3 = R(S(0));
      for (int k = 0; k < 3; ++k) {
        if (k != i) c3 = c3 + size1[k] * abs_(ax[k]);
      }
      for (int k = 0; k < 3; ++k) {
        if (k != j) c3 = c3 + size2[k] * rotabs[3 * i + 3 - k - j] / len;
      }
      c3 = c3 - abs_(c2);
      if (c3 < -margin) return 0;
      if (c3 < penetration * S(1 - 1e-12)) {
        penetration = c3;
        // the nearest edges: bit k of cle1 (cle2) sets the +size side of box 1 (2) on axis k
        cle1 = 0;
        for (int k = 0; k < 3; ++k) {
          if (k != i && ((ax[k] > S(0)) != (c2 < S(0)))) cle1 += 1 << k;
        }
        cle2 = 0;
        for (int k = 0; k < 3; ++k) {
          if (k == j) continue;
          const bool b = ((rot[3 * i + 3 - k - j] > S(0)) != (c2 < S(0))) != ((k - j + 3) % 3 == 1);
          if (b) cle2 += 1 << k;
        }
        code = 12 + i * 3 + j;
        for (int k = 0; k < 3; ++k) clnorm[k] = ax[k];
        inward = c2 < S(0) ? 1 : 0;
      }
    }
  }
  if (code == -1) return 0;
  note(sig, static_cast<unsigned>(code % 16));
  note(sig, static_cast<unsigned>(code / 16));

  // the segment (a + b t, c + d t) of a line, t in [0, 1], crossing the side q (x: 0, y: 1) at
  // l = +-ext[q] within +-ext[1 - q]: calls hit(q, side, l, t, other) for each crossing
  auto crossings = [&](const R* line, const R* ext, auto&& hit) {
    for (int q = 0; q < 2; ++q) {
      const R a = line[q], b = line[3 + q], c = line[1 - q], d = line[4 - q];
      if (!(abs_(b) > min_val<S>())) continue;
      for (int side = -1; side <= 1; side += 2) {
        const R l = ext[q] * S(side);
        const R t = (l - a) * (S(1) / b);
        if (t < S(0) || t > S(1)) continue;
        const R other = c + d * t;
        if (abs_(other) > ext[1 - q]) continue;
        hit(q, side > 0 ? 1 : 0, l, t, other);
      }
    }
  };

  int n = 0;
  if (code < 12) {
    // ------------------------------------------------------------------ a face of either box
    const int q1 = code % 6, q2 = code / 6;
    const Permutation pm = face_permutation(q1);
    R r[9], rt[9], p[3], ext_in[3];
    S s[3];
    if (q2) {
      // r = rotmore rot', the reference box is box 2
      for (int a = 0; a < 3; ++a) {
        for (int b = 0; b < 3; ++b) r[3 * a + b] = rot[3 * b + pm.idx[a]] * S(pm.sign[a]);
      }
      permute<S>(pm, pos12, p);
      permute<S>(pm, size2, ext_in);
      for (int k = 0; k < 3; ++k) s[k] = size1[k];
    } else {
      permute_rows<S>(pm, rot, r);
      permute<S>(pm, pos21, p);
      permute<S>(pm, size1, ext_in);
      for (int k = 0; k < 3; ++k) s[k] = size2[k];
    }
    transpose3(r, rt);
    // the reference face: z = 0, |x| <= lx, |y| <= ly
    R ss[3];
    for (int k = 0; k < 3; ++k) ss[k] = abs_(ext_in[k]);
    const R lx = ss[0], ly = ss[1], hz = ss[2];
    p[2] = p[2] - hz;
    // the incident box's corner nearest the face, and its edges nearly parallel to it
    int clcorner = 0;
    for (int i = 0; i < 3; ++i) {
      if (r[6 + i] < S(0)) clcorner += 1 << i;
    }
    R pts[6][3];
    for (auto& pt : pts) {
      for (R& v : pt) v = R(S(0));
    }
    for (int k = 0; k < 3; ++k) {
      R v = p[k];
      for (int i = 0; i < 3; ++i) v = v + rt[3 * i + k] * (s[i] * ((clcorner & (1 << i)) ? S(1) : S(-1)));
      pts[0][k] = v;
    }
    int m = 1;
    for (int i = 0; i < 3; ++i) {
      if (abs_(r[6 + i]) < S(0.5)) {
        for (int k = 0; k < 3; ++k) pts[m][k] = rt[3 * i + k] * (s[i] * ((clcorner & (1 << i)) ? S(-2) : S(2)));
        ++m;
      }
    }
    for (int k = 0; k < 3; ++k) {
      pts[3][k] = pts[0][k] + pts[1][k];
      pts[4][k] = pts[0][k] + pts[2][k];
      pts[5][k] = pts[3][k] + pts[2][k];
    }
    note(sig, static_cast<unsigned>(m));
    note(sig, static_cast<unsigned>(clcorner));

    // contacts (x, y, z) in the face frame within the margin: dist z / 2 at (x, y, z / 2 + hz)
    // in the reference box's frame
    R wr[9];
    permute_cols<S>(pm, q2 ? mat2 : mat1, wr);
    const R* wp = q2 ? pos2 : pos1;
    const S nsign = q2 ? S(-1) : S(1);
    const R normal[3] = {wr[2] * nsign, wr[5] * nsign, wr[8] * nsign};
    // source: 1 an edge crossing, 2 a face corner, 3 an own corner; which: the crossing's
    // (line, side q, end) or the corner's index
    auto emit = [&](const R* pt, unsigned source, unsigned which) {
      if (pt[2] > margin) return;
      const R half = pt[2] * S(0.5);
      const R local[3] = {pt[0], pt[1], half + hz};
      R world[3];
      mat_vec(world, wr, local);
      for (int k = 0; k < 3; ++k) world[k] = world[k] + wp[k];
      sink(half, world, normal);
      note(sig, source);
      note(sig, which);
      ++n;
    };

    // the incident face's edges crossing the reference face's sides
    R lines[4][6];
    int nline = 0;
    auto set_line = [&](const R* a, const R* b) {
      for (int k = 0; k < 3; ++k) {
        lines[nline][k] = a[k];
        lines[nline][3 + k] = b[k];
      }
      ++nline;
    };
    if (m > 1) set_line(pts[0], pts[1]);
    if (m > 2) {
      set_line(pts[0], pts[2]);
      set_line(pts[3], pts[2]);
      set_line(pts[4], pts[1]);
    }
    for (int i = 0; i < nline; ++i) {
      crossings(lines[i], ss, [&](int q, int side, const R&, const R& t, const R&) {
        R pt[3];
        for (int k = 0; k < 3; ++k) pt[k] = lines[i][k] + lines[i][3 + k] * t;
        emit(pt, 1, static_cast<unsigned>(4 * i + 2 * q + side));
      });
    }
    // the reference face's corners inside the incident face
    if (m > 2) {
      const R a = pts[1][0], b = pts[2][0], c = pts[1][1], d = pts[2][1];
      const R det = a * d - b * c;
      for (int i = 0; i < 4; ++i) {
        const R llx = i / 2 ? lx : -lx;
        const R lly = i % 2 ? ly : -ly;
        const R x = llx - pts[0][0];
        const R y = lly - pts[0][1];
        const R u = (x * d - y * b) * (S(1) / det);
        const R v = (y * a - x * c) * (S(1) / det);
        if (u <= S(0) || v <= S(0) || u >= S(1) || v >= S(1)) continue;
        const R pt[3] = {llx, lly, (pts[0][2] + u * pts[1][2]) + v * pts[2][2]};
        emit(pt, 2, static_cast<unsigned>(i));
      }
    }
    // the incident face's corners inside the reference face
    for (int i = 0; i < (1 << (m - 1)); ++i) {
      const R* pt = pts[i == 0 ? 0 : i + 2];
      if (i && (pt[0] <= -lx || pt[0] >= lx)) continue;
      if (i && (pt[1] <= -ly || pt[1] >= ly)) continue;
      emit(pt, 3, static_cast<unsigned>(i));
    }
    return n;
  }

  // -------------------------------------------------------------------- an edge of each box
  code -= 12;
  const int q1 = code / 3, q2 = code % 3;
  int ax1 = q2 == 1 ? 0 : 1, ax2 = q2 == 2 ? 0 : 2;
  int pax1 = q1 == 1 ? 0 : 1, pax2 = q1 == 2 ? 0 : 2;
  if (rotabs[3 * q1 + ax1] < rotabs[3 * q1 + ax2]) {
    ax1 = ax2;
    ax2 = 3 - q2 - ax1;
  }
  if (rottabs[3 * q2 + pax1] < rottabs[3 * q2 + pax2]) {
    pax1 = pax2;
    pax2 = 3 - q1 - pax1;
  }
  // the face of box 1 next to its edge, turned to +z
  const int clface = (cle1 & (1 << pax2)) ? pax2 : pax2 + 3;
  const Permutation pm = face_permutation(clface);
  note(sig, static_cast<unsigned>(clface));
  note(sig, static_cast<unsigned>(cle2));
  R p[3], rnorm[3], r[9], rt[9];
  permute<S>(pm, pos21, p);
  permute<S>(pm, clnorm, rnorm);
  permute_rows<S>(pm, rot, r);
  S s[3];
  {
    S t[3] = {S(0), S(0), S(0)};
    for (int j = 0; j < 3; ++j) t[pm.idx[j]] = size1[j] * S(pm.sign[j]);
    for (int k = 0; k < 3; ++k) s[k] = abs_(t[k]);
  }
  transpose3(r, rt);
  const S lx = s[0], ly = s[1], hz = s[2];
  p[2] = p[2] - hz;

  // box 2's face along the edge: corners 0, 1 on one side of the edge's line, 2, 3 opposite
  R points[4][3];
  for (int side = 0; side < 2; ++side) {
    const S f1 = ((cle2 & (1 << ax1)) ? S(1) : S(-1)) * (side == 0 ? S(1) : S(-1));
    const S f2 = (cle2 & (1 << ax2)) ? S(1) : S(-1);
    R base[3];
    for (int k = 0; k < 3; ++k) {
      base[k] = (p[k] + rt[3 * ax1 + k] * (size2[ax1] * f1)) + rt[3 * ax2 + k] * (size2[ax2] * f2);
    }
    for (int k = 0; k < 3; ++k) {
      points[2 * side][k] = base[k] + rt[3 * q2 + k] * size2[q2];
      points[2 * side + 1][k] = base[k] + rt[3 * q2 + k] * (-size2[q2]);
    }
  }
  R axi[3][3];
  for (int k = 0; k < 3; ++k) {
    axi[0][k] = points[0][k];
    axi[1][k] = points[1][k] - points[0][k];
    axi[2][k] = points[2][k] - points[0][k];
  }
  if (abs_(rnorm[2]) < min_val<S>()) return 0;
  const R innorm = (S(1) / rnorm[2]) * (inward ? S(-1) : S(1));
  // the corners projected along the axis onto the face (ppts), and as they are (pu)
  R pu[4][3], ppts[4][2];
  for (int i = 0; i < 4; ++i) {
    const R t = -points[i][2] * (S(1) / rnorm[2]);
    for (int k = 0; k < 3; ++k) pu[i][k] = points[i][k];
    for (int k = 0; k < 3; ++k) points[i][k] = points[i][k] + rnorm[k] * t;
    ppts[i][0] = points[i][0];
    ppts[i][1] = points[i][1];
  }
  R pts[3][3];
  for (int k = 0; k < 3; ++k) {
    pts[0][k] = points[0][k];
    pts[1][k] = points[1][k] - points[0][k];
    pts[2][k] = points[2][k] - points[0][k];
  }

  // contacts at (x, y, z) in the face frame, dist the signed distance along the axis
  R wr[9];
  permute_cols<S>(pm, mat1, wr);
  R normal[3];
  mat_vec(normal, wr, rnorm);
  for (int k = 0; k < 3; ++k) normal[k] = normal[k] * (inward ? S(-1) : S(1));
  // source and which as in the face case, which also holding the corners' clamps
  auto emit = [&](const R* pt, const R& depth, unsigned source, unsigned which) {
    const R local[3] = {pt[0], pt[1], pt[2] + hz};
    R world[3];
    mat_vec(world, wr, local);
    for (int k = 0; k < 3; ++k) world[k] = world[k] + pos1[k];
    sink(depth, world, normal);
    note(sig, source);
    note(sig, which);
    ++n;
  };

  // the projected quadrilateral's edges crossing the face's sides (with the unprojected
  // lines alongside for the depth)
  R lines[4][6], linesu[4][6];
  int nline = 0;
  auto set_line = [&](const R* a, const R* b, const R* au, const R* bu, const R* a2, const R* au2) {
    for (int k = 0; k < 3; ++k) {
      lines[nline][k] = a2 != nullptr ? a[k] + a2[k] : a[k];
      lines[nline][3 + k] = b[k];
      linesu[nline][k] = au2 != nullptr ? au[k] + au2[k] : au[k];
      linesu[nline][3 + k] = bu[k];
    }
    ++nline;
  };
  set_line(pts[0], pts[1], axi[0], axi[1], nullptr, nullptr);
  set_line(pts[0], pts[2], axi[0], axi[2], nullptr, nullptr);
  set_line(pts[0], pts[2], axi[0], axi[2], pts[1], axi[1]);
  set_line(pts[0], pts[1], axi[0], axi[1], pts[2], axi[2]);
  const R ext[3] = {R(s[0]), R(s[1]), R(s[2])};
  for (int i = 0; i < nline; ++i) {
    crossings(lines[i], ext, [&](int q, int side, const R& l, const R& t, const R& other) {
      if ((linesu[i][2] + linesu[i][5] * t) * innorm > margin) return;
      R pt[3];
      for (int k = 0; k < 3; ++k) pt[k] = linesu[i][k] * S(0.5) + linesu[i][3 + k] * (S(0.5) * t);
      pt[q] = pt[q] + S(0.5) * l;
      pt[1 - q] = pt[1 - q] + S(0.5) * other;
      emit(pt, (pt[2] * innorm) * S(2), 1, static_cast<unsigned>(4 * i + 2 * q + side));
    });
  }
  const int nl = n;

  // the face's corners over the incident face
  {
    const R a = pts[1][0], b = pts[2][0], c = pts[1][1], d = pts[2][1];
    R det = a * d - b * c;  // overwritten below by each accepted corner's squared distance
    for (int i = 0; i < 4; ++i) {
      const S llx = i / 2 ? lx : -lx;
      const S lly = i % 2 ? ly : -ly;
      const R x = llx - pts[0][0];
      const R y = lly - pts[0][1];
      R u = (x * d - y * b) * (S(1) / det);
      R v = (y * a - x * c) * (S(1) / det);
      const bool u_out = u < S(0) || u > S(1), v_out = v < S(0) || v > S(1);
      if (nl == 0 ? (u_out && v_out) : (u_out || v_out)) continue;
      // clamped onto the incident face
      unsigned clamps = 0;
      if (u < S(0)) {
        u = R(S(0));
        clamps |= 1;
      }
      if (u > S(1)) {
        u = R(S(1));
        clamps |= 2;
      }
      if (v < S(0)) {
        v = R(S(0));
        clamps |= 4;
      }
      if (v > S(1)) {
        v = R(S(1));
        clamps |= 8;
      }
      R on[3], dif[3];
      for (int k = 0; k < 3; ++k) on[k] = (pu[0][k] * ((S(1) - u) - v) + pu[1][k] * u) + pu[2][k] * v;
      const R corner[3] = {R(llx), R(lly), R(S(0))};
      for (int k = 0; k < 3; ++k) dif[k] = corner[k] - on[k];
      det = dot3(dif, dif);
      if (on[2] > S(0) && det > margin2) continue;
      R pt[3];
      for (int k = 0; k < 3; ++k) pt[k] = (corner[k] + on[k]) * S(0.5);
      note(sig, clamps);
      emit(pt, sqrt_(det) * (on[2] < S(0) ? S(-1) : S(1)), 2, static_cast<unsigned>(i));
    }
  }
  const int nf = n;

  // the incident face's corners over the face
  for (int i = 0; i < 4; ++i) {
    const R x = ppts[i][0], y = ppts[i][1];
    const bool x_out = x < -lx || x > lx, y_out = y < -ly || y > ly;
    if (nl == 0) {
      if (nf != 0 && x_out && y_out) continue;
    } else if (x_out || y_out) {
      continue;
    }
    R d2 = R(S(0));
    unsigned clamps = 0;
    for (int j = 0; j < 2; ++j) {
      if (ppts[i][j] < -s[j]) {
        d2 = d2 + (ppts[i][j] + s[j]) * (ppts[i][j] + s[j]);
        clamps |= 1u << (2 * j);
      } else if (ppts[i][j] > s[j]) {
        d2 = d2 + (ppts[i][j] - s[j]) * (ppts[i][j] - s[j]);
        clamps |= 2u << (2 * j);
      }
    }
    d2 = d2 + ((pu[i][2] * innorm) * pu[i][2]) * innorm;
    if (pu[i][2] > S(0) && d2 > margin2) continue;
    R pt[3] = {ppts[i][0] * S(0.5), ppts[i][1] * S(0.5), R(S(0))};
    for (int j = 0; j < 2; ++j) {
      if (ppts[i][j] < -s[j]) {
        pt[j] = R(-s[j] * S(0.5));
      } else if (ppts[i][j] > s[j]) {
        pt[j] = R(s[j] * S(0.5));
      }
    }
    for (int k = 0; k < 3; ++k) pt[k] = pt[k] + pu[i][k] * S(0.5);
    note(sig, clamps);
    emit(pt, sqrt_(d2) * (pu[i][2] < S(0) ? S(-1) : S(1)), 3, static_cast<unsigned>(i));
  }
  return n;
}

}  // namespace box_detail
}  // namespace phydream
