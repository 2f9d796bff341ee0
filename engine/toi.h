// The time-of-impact (TOI) correction of rollout gradients through impacts (after Zhong et al.
// 2023, "Improving gradient computation for differentiable physics simulation with contacts").
//
// Why. A soft contact stepped at a fixed dt turns the impact into n steps of a stiff spring, and
// n jumps as the impact moves within a step: the exact derivative of the stepped model is then a
// piecewise-constant function of the state, off from the impact's physical gradient by up to about
// k dt T_after (docs/contact_gradients.md, section 1). The correction replaces, in the reverse
// sweep of a rollout, the derivative of every isolated impact by that of an instantaneous impact
// at the time the pre-impact motion reaches the surface, with the restitution the soft contact
// showed. The forward trajectory is untouched: only rollout_vjp changes, and only there.
//
// Which impacts. An episode is a maximal run of steps a..b whose start states have constraint
// rows. It is corrected when every one of them has exactly one row, a frictionless (condim 1)
// contact of the same geom pair, the state before it (a - 1 >= 0) and the state after it
// (b + 1 <= T) have none, the contact approaches at step a (J v_a < 0) and separates after
// (J v_(b+1) > 0). Every other step keeps the gradient mode's own step VJP, so a rollout without
// such episodes gets exactly the uncorrected gradient.
//
// The corrected derivative of an episode, from state a - 1 to state b + 1 (tangent coordinates
// [dq, dv], nv each):
//   E = A_b ... A_a  [I + (1 - phi)(A_(a-1) - I)]  Xi  [I + phi (A_(a-1) - I)]
// with A_t the step Jacobian without contact at state t (the flight before and after the impact)
// and phi in [0, 1] the fraction of step a - 1 before the impact, from the contact's gap at
// state a: phi = 1 - gap_a / (dt J v_a). Xi is the saltation matrix of an impact with
// restitution e = -J v_(b+1) / J v_a along the contact normal row J (1 x nv):
//   P  = I - (1 + e) y J / (J y),  y = M^-1 J^T     (the impulse's velocity map)
//   Xi = [[P, 0], [c y J / (J y), P]],  c = (1 + e) (J a) / (J v_a)
// where a is the smooth acceleration at state a (the velocity row moves the impact's change of
// acceleration by the change of impact time). J, M, a and v are taken at state a; Xi neglects the
// change of J and M with position over the impact, exact for a sphere on a plane or two spheres
// head on. For a ballistic flight and e = 1, E is exactly the elastic impact's derivative.
//
// Cost: one extra forward() per step (to find the episodes) and one extra step VJP per corrected
// episode.
#pragma once

#include "engine/articulated_jacobian.h"
#include "engine/constraint.h"
#include "engine/core.h"
#include "engine/data.h"
#include "engine/forward.h"
#include "engine/model_view.h"
#include "engine/small_vec.h"
#include "engine/smooth.h"

namespace phydream {

/// Scalars of the correction's scratch: the impact's J and y (nv each), a cotangent (2nv), an
/// action cotangent (nu) and the impact's scalars.
template <class S>
PHYDREAM_HD long long toi_scratch_size(const ModelView<S>& m) {
  return 4LL * m.nv + m.nu + 8;
}

namespace toi_detail {

// what the step from a state does with constraints
enum StepContact : int {
  kFree = 0,    // no constraint row
  kImpact = 1,  // one row: a frictionless contact
  kOther = 2,   // anything else (friction, several contacts, limits, friction loss)
};

// the dynamics at state x (forward(), solver cold) into d, and what its step does; *cand is the
// contact's collision candidate for kImpact
template <class S>
PHYDREAM_HD_STAGE int classify(const ModelView<S>& m, const Data<S>& d, const S* x, const S* u, int* cand) {
  articulated_detail::load_state(m, d, x, u);
  forward(m, d);
  const int nefc = static_cast<int>(d.nefc[0]);
  if (nefc == 0) return kFree;
  if (nefc == 1 && static_cast<int>(d.efc_type[0]) == kConstraintContactFrictionless) {
    *cand = static_cast<int>(d.con_cand[static_cast<int>(d.efc_id[0])]);
    return kImpact;
  }
  return kOther;
}

// the scratch's fields
template <class S>
struct Impact {
  S* J;    // (nv) the contact's normal row at state a
  S* y;    // (nv) M^-1 J^T
  S* g;    // (2nv) a cotangent
  S* gu;   // (nu) an action cotangent
  S* sc;   // JMJ, e, c, phi
  PHYDREAM_HD static Impact at(const ModelView<S>& m, S* scratch) {
    Impact p;
    p.J = scratch;
    p.y = p.J + m.nv;
    p.g = p.y + m.nv;
    p.gu = p.g + 2 * m.nv;
    p.sc = p.gu + m.nu;
    return p;
  }
};

// the impact of an episode whose first step is a, from state a (in d after classify) and the
// velocity after the episode (v_out, nv); false if it does not approach and then separate
template <class S>
PHYDREAM_HD_STAGE bool measure_impact(const ModelView<S>& m, const Data<S>& d, const S* v_out,
                                      const Impact<S>& p) {
  const int nv = m.nv;
  S Jv = S(0), Ja = S(0), Jvout = S(0), JMJ = S(0);
  for (int k = 0; k < nv; ++k) {
    p.J[k] = d.efc_J[k];
    p.y[k] = d.efc_J[k];
  }
  solve_m(m, d, p.y);
  for (int k = 0; k < nv; ++k) {
    Jv += p.J[k] * d.qvel[k];
    Ja += p.J[k] * d.qacc_smooth[k];
    Jvout += p.J[k] * v_out[k];
    JMJ += p.J[k] * p.y[k];
  }
  if (!(Jv < S(0)) || !(Jvout > S(0)) || !(JMJ > S(0))) return false;
  const S e = -Jvout / Jv;
  const S gap = d.efc_pos[0] - d.efc_margin[0];
  S phi = S(1) - gap / (m.timestep * Jv);
  phi = phi < S(0) ? S(0) : (phi > S(1) ? S(1) : phi);
  p.sc[0] = JMJ;
  p.sc[1] = e;
  p.sc[2] = (S(1) + e) * Ja / Jv;
  p.sc[3] = phi;
  return isfinite_(e) && isfinite_(p.sc[2]);
}

// g <- Xi^T g (2nv, tangent), Xi the impact's saltation matrix
template <class S>
PHYDREAM_HD void saltation_transpose(int nv, const Impact<S>& p, S* g) {
  const S JMJ = p.sc[0], e = p.sc[1], c = p.sc[2];
  S yq = S(0), yv = S(0);
  for (int k = 0; k < nv; ++k) {
    yq += p.y[k] * g[k];
    yv += p.y[k] * g[nv + k];
  }
  const S fq = ((S(1) + e) * yq - c * yv) / JMJ;
  const S fv = (S(1) + e) * yv / JMJ;
  for (int k = 0; k < nv; ++k) {
    g[k] -= p.J[k] * fq;
    g[nv + k] -= p.J[k] * fv;
  }
}

// the step VJP `fn` at the stored state (x, u) of the cotangent g (2nv): A^T g and B^T g are left
// in the rollout's cotangent slots g_x (2nv) and g_u (nu) after the running one
template <class S, class StepVjp>
PHYDREAM_HD void step_vjp_of(const ModelView<S>& m, Vec<S, 1>* tws, const StepVjp& fn, const S* x,
                             const S* u, const S* g) {
  using T = Vec<S, 1>;
  const int ndx = 2 * m.nv, nu = m.nu;
  T* g_next = articulated_detail::rollout_cotangent(m, tws);
  T* g_x = g_next + ndx;
  T* g_u = g_x + ndx;
  for (int i = 0; i < ndx; ++i) {
    g_next[i][0] = g[i];
    g_x[i] = T::zero();
  }
  for (int i = 0; i < nu; ++i) g_u[i] = T::zero();
  fn(x, u, g_next, g_x, g_u);
}

}  // namespace toi_detail

/// model_rollout_vjp (engine/articulated_jacobian.h) with the time-of-impact correction above:
/// `full` is the per-step VJP of the gradient mode, `flight` the same VJP on a view of the model
/// with contact disabled; scratch: toi_scratch_size(m) Scalars apart from ws. Arguments and
/// outputs otherwise as model_rollout_vjp (the stored trajectory).
template <class S, class FullVjp, class FlightVjp>
PHYDREAM_HD_STAGE void model_rollout_vjp_toi(const ModelView<S>& m, S* ws, Vec<S, 1>* tws, const S* states,
                                       const S* actions, long long horizon, S* gx0, S* g_actions,
                                       const S* g_states, const S* g_final, const FullVjp& full,
                                       const FlightVjp& flight, S* scratch) {
  using namespace toi_detail;
  const int nq = m.nq, nv = m.nv, nx = nq + nv, ndx = 2 * nv, nu = m.nu;
  const Data<S> d = data_at(data_layout(m), ws);
  const Impact<S> p = Impact<S>::at(m, scratch);
  Vec<S, 1>* g_run = articulated_detail::rollout_cotangent(m, tws);
  auto x_at = [&](long long t) { return states + t * nx; };
  auto u_at = [&](long long t) { return actions + (t < horizon ? t : horizon - 1) * nu; };

  articulated_detail::start_rollout_cotangent(m, tws, horizon, g_states, g_final);
  long long t = horizon - 1;
  long long known_free = -1;  // a step already found free
  while (t >= 0) {
    int cand = -1;
    const int kind = t == known_free ? kFree : classify(m, d, x_at(t), u_at(t), &cand);
    if (kind == kFree) {
      articulated_detail::backprop_model_segment(m, tws, x_at(t), actions, g_states, t, t + 1, g_actions, full);
      --t;
      continue;
    }
    // the episode a..b = t: its first step, and whether it is one isolated impact
    const long long b = t;
    bool isolated = kind == kImpact;
    long long a = b;
    while (a > 0) {
      int c = -1;
      const int k = classify(m, d, x_at(a - 1), u_at(a - 1), &c);
      if (k == kFree) break;
      isolated = isolated && k == kImpact && c == cand;
      --a;
    }
    if (a > 0) known_free = a - 1;
    int c = -1;
    isolated = isolated && a > 0 && (b + 1 < horizon || classify(m, d, x_at(b + 1), u_at(b + 1), &c) == kFree);
    if (isolated) {
      classify(m, d, x_at(a), u_at(a), &c);
      isolated = measure_impact(m, d, x_at(b + 1) + nq, p);
    }
    if (!isolated) {
      articulated_detail::backprop_model_segment(m, tws, x_at(a), actions, g_states, a, b + 1, g_actions, full);
      t = a - 1;
      continue;
    }
    // the flight through the episode's steps, then the impact inside step a - 1:
    // g <- [I + phi (A - I)]^T Xi^T [I + (1 - phi)(A - I)]^T g, A the step's Jacobian
    articulated_detail::backprop_model_segment(m, tws, x_at(a), actions, g_states, a, b + 1, g_actions, flight);
    const S phi = p.sc[3];
    const Vec<S, 1>* g_x = g_run + ndx;
    const Vec<S, 1>* g_u = g_x + ndx;
    S* g = p.g;
    for (int i = 0; i < ndx; ++i) g[i] = g_run[i][0];
    step_vjp_of(m, tws, flight, x_at(a - 1), u_at(a - 1), g);
    for (int i = 0; i < ndx; ++i) g[i] += (S(1) - phi) * (g_x[i][0] - g[i]);
    for (int i = 0; i < nu; ++i) p.gu[i] = (S(1) - phi) * g_u[i][0];
    saltation_transpose(nv, p, g);
    step_vjp_of(m, tws, flight, x_at(a - 1), u_at(a - 1), g);
    for (int i = 0; i < ndx; ++i) g_run[i][0] = g[i] + phi * (g_x[i][0] - g[i]);
    for (int i = 0; i < nu; ++i) g_actions[(a - 1) * nu + i] += p.gu[i] + phi * g_u[i][0];
    articulated_detail::add_state_cotangent(ndx, g_states, a - 1, g_run);
    t = a - 2;
  }
  articulated_detail::finish_rollout_cotangent(m, tws, gx0);
}

}  // namespace phydream
