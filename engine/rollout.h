// One environment's T-step rollout under an action sequence, and its reverse mode.
//
// The reverse mode back-propagates a trajectory cotangent through the steps' hand-written VJPs.
// Either the stored trajectory is given, or only the initial state: then the trajectory is
// re-simulated from checkpoints kept every `interval` steps, so memory is
// (ceil(T / interval) + interval) states -- about 2 sqrt(T) states for interval = sqrt(T) --
// instead of T + 1 (Griewank's checkpointing with a single level).
#pragma once

#include "engine/step.h"

namespace phydream {

/// states[0] = x0, states[t + 1] = step(states[t], actions[t]).
/// x0: (nx), actions: (T, nu), states: (T + 1, nx) written.
template <Integrator I, class Model, class S = typename Model::scalar_type>
PHYDREAM_HD void rollout(const typename Model::Params& p, S h, const S* x0, const S* actions,
                         long long horizon, S* states) {
  constexpr int nx = Model::nx, nu = Model::nu;
  for (int i = 0; i < nx; ++i) states[i] = x0[i];
  for (long long t = 0; t < horizon; ++t) {
    step<I, Model>(p, h, states + t * nx, actions + t * nu, states + (t + 1) * nx);
  }
}

namespace detail {

// adds the trajectory cotangent of state t (if any) to g
template <int nx, class S>
PHYDREAM_HD void add_state_cotangent(const S* g_states, long long t, S* g) {
  if (g_states != nullptr) {
    for (int i = 0; i < nx; ++i) g[i] += g_states[t * nx + i];
  }
}

// back-propagates g (the cotangent of state t1) through steps t1 - 1 ... t0 of a stored segment
// whose state t is seg[(t - t0) nx]; leaves the cotangent of state t0 in g
template <Integrator I, class Model, class S = typename Model::scalar_type>
PHYDREAM_HD void backprop_segment(const typename Model::Params& p, S h, const S* seg,
                                  const S* actions, const S* g_states, long long t0, long long t1,
                                  S* g, S* g_actions) {
  constexpr int nx = Model::nx, nu = Model::nu;
  for (long long t = t1 - 1; t >= t0; --t) {
    S g_prev[nx];
    for (int i = 0; i < nx; ++i) g_prev[i] = S(0);
    step_vjp<I, Model>(p, h, seg + (t - t0) * nx, actions + t * nu, g_prev, g_actions + t * nu, g);
    add_state_cotangent<nx>(g_states, t, g_prev);
    for (int i = 0; i < nx; ++i) g[i] = g_prev[i];
  }
}

}  // namespace detail

/// Reverse mode of rollout from a stored trajectory.
/// states: (T + 1, nx) from rollout; actions: (T, nu);
/// g_states: (T + 1, nx) cotangent of every state, or null; g_final: (nx) added to the cotangent
/// of states[T], or null. Accumulates gx0 (nx) += dL/dx0 and g_actions (T, nu) += dL/dU.
template <Integrator I, class Model, class S = typename Model::scalar_type>
PHYDREAM_HD void rollout_vjp(const typename Model::Params& p, S h, const S* states,
                             const S* actions, long long horizon, S* gx0, S* g_actions,
                             const S* g_states, const S* g_final) {
  constexpr int nx = Model::nx;
  S g[nx];
  for (int i = 0; i < nx; ++i) g[i] = g_final != nullptr ? g_final[i] : S(0);
  detail::add_state_cotangent<nx>(g_states, horizon, g);
  detail::backprop_segment<I, Model>(p, h, states, actions, g_states, 0, horizon, g, g_actions);
  for (int i = 0; i < nx; ++i) gx0[i] += g[i];
}

/// Scratch states rollout_vjp_checkpointed needs for a horizon and checkpoint interval.
PHYDREAM_HD long long checkpoint_scratch_states(long long horizon, long long interval) {
  const long long segments = (horizon + interval - 1) / interval;
  return segments + interval + 1;
}

/// The checkpoint interval minimising memory, ceil(sqrt(T)), at least 1.
PHYDREAM_HD long long default_checkpoint_interval(long long horizon) {
  long long k = 1;
  while (k * k < horizon) ++k;
  return k;
}

/// Reverse mode of rollout without the stored trajectory: keeps a checkpoint every `interval`
/// steps on the way forward and re-simulates one segment at a time on the way back.
/// scratch: checkpoint_scratch_states(T, interval) * nx scalars. Same outputs as rollout_vjp.
template <Integrator I, class Model, class S = typename Model::scalar_type>
PHYDREAM_HD void rollout_vjp_checkpointed(const typename Model::Params& p, S h, const S* x0,
                                          const S* actions, long long horizon, long long interval,
                                          S* scratch, S* gx0, S* g_actions, const S* g_states,
                                          const S* g_final) {
  constexpr int nx = Model::nx, nu = Model::nu;
  const long long segments = (horizon + interval - 1) / interval;
  S* checkpoints = scratch;              // (segments, nx): state at t = s * interval
  S* seg = scratch + segments * nx;      // (interval + 1, nx): one segment's states

  // forward: keep the first state of every segment
  S x[nx], xn[nx];
  for (int i = 0; i < nx; ++i) x[i] = x0[i];
  for (long long t = 0; t < horizon; ++t) {
    if (t % interval == 0) {
      for (int i = 0; i < nx; ++i) checkpoints[(t / interval) * nx + i] = x[i];
    }
    step<I, Model>(p, h, x, actions + t * nu, xn);
    for (int i = 0; i < nx; ++i) x[i] = xn[i];
  }

  // backward, last segment first: re-simulate it from its checkpoint, then back-propagate
  S g[nx];
  for (int i = 0; i < nx; ++i) g[i] = g_final != nullptr ? g_final[i] : S(0);
  detail::add_state_cotangent<nx>(g_states, horizon, g);
  for (long long s = segments - 1; s >= 0; --s) {
    const long long t0 = s * interval;
    const long long t1 = t0 + interval < horizon ? t0 + interval : horizon;
    for (int i = 0; i < nx; ++i) seg[i] = checkpoints[s * nx + i];
    for (long long t = t0; t < t1 - 1; ++t) {
      step<I, Model>(p, h, seg + (t - t0) * nx, actions + t * nu, seg + (t - t0 + 1) * nx);
    }
    detail::backprop_segment<I, Model>(p, h, seg, actions, g_states, t0, t1, g, g_actions);
  }
  for (int i = 0; i < nx; ++i) gx0[i] += g[i];
}

}  // namespace phydream
