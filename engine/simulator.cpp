// Simulator: argument checks at the API boundary, then the backend engine does the work.
// The constructor, which needs the environment registry, is in models/envs.cpp.
#include "engine/simulator.h"

#include <string>

#include "engine/articulated.h"
#include "engine/errors.h"
#include "engine/rollout.h"

namespace phydream {

namespace {

void check_batch(const char* fn, std::int64_t batch) {
  if (batch < 0) {
    throw InputError(std::string("Simulator::") + fn + ": batch must be >= 0, got " +
                     std::to_string(batch));
  }
}

void check_horizon(const char* fn, std::int64_t horizon) {
  if (horizon < 0) {
    throw InputError(std::string("Simulator::") + fn + ": horizon must be >= 0, got " +
                     std::to_string(horizon));
  }
}

// a required buffer may be null only when there is nothing to read or write
void check_ptr(const char* fn, const char* name, const void* ptr, std::int64_t count) {
  if (ptr == nullptr && count > 0) {
    throw InputError(std::string("Simulator::") + fn + ": " + name + " is null");
  }
}

// entries of an argument per environment that may be empty: those sized by nu (a model without
// actuators has nu = 0, and its action arrays may be null)
std::int64_t per_env(const char* name, std::int64_t nu) {
  const std::string n = name;
  return n == "u" || n == "du" || n == "gu" || n == "jac_u" ? nu : 1;
}

}  // namespace

template <class S>
void Simulator<S>::step(std::int64_t batch, const S* x, const S* u, S* x_next) {
  check_batch("step", batch);
  check_ptr("step", "x", x, batch);
  check_ptr("step", "u", u, batch * nu());
  check_ptr("step", "x_next", x_next, batch);
  last_batch_ = -1;
  if (batch > 0) engine_->step(batch, x, u, x_next);
  last_batch_ = batch;
}

// derivatives an articulated model does not have under the grad mode (engine/articulated.h)
static void check_gradients(const Model* model, bool reverse, GradMode mode) {
  if (model == nullptr) return;
  if (const std::string why = gradient_restriction(*model, reverse, mode); !why.empty()) throw InputError(why);
}

template <class S>
void Simulator<S>::step_jvp(std::int64_t batch, const S* x, const S* u, const S* dx,
                            const S* du, S* x_next, S* dx_next) {
  check_batch("step_jvp", batch);
  for (auto [name, ptr] : {std::pair<const char*, const void*>{"x", x}, {"u", u}, {"dx", dx},
                           {"du", du}, {"x_next", x_next}, {"dx_next", dx_next}}) {
    check_ptr("step_jvp", name, ptr, batch * per_env(name, nu()));
  }
  check_gradients(model(), false, config_.grad_mode);
  last_batch_ = -1;
  if (batch > 0) engine_->step_jvp(batch, x, u, dx, du, x_next, dx_next);
  last_batch_ = batch;
}

template <class S>
void Simulator<S>::step_vjp(std::int64_t batch, const S* x, const S* u, S* gx, S* gu,
                            const S* g_next) {
  check_batch("step_vjp", batch);
  for (auto [name, ptr] : {std::pair<const char*, const void*>{"x", x}, {"u", u}, {"gx", gx},
                           {"gu", gu}, {"g_next", g_next}}) {
    check_ptr("step_vjp", name, ptr, batch * per_env(name, nu()));
  }
  check_gradients(model(), true, config_.grad_mode);
  last_batch_ = -1;
  if (batch > 0) engine_->step_vjp(batch, x, u, gx, gu, g_next);
  last_batch_ = batch;
}

template <class S>
void Simulator<S>::jacobian(std::int64_t batch, const S* x, const S* u, S* x_next, S* jac_x,
                            S* jac_u, JacobianMode mode) {
  check_batch("jacobian", batch);
  for (auto [name, ptr] : {std::pair<const char*, const void*>{"x", x}, {"u", u},
                           {"jac_x", jac_x}, {"jac_u", jac_u}}) {
    check_ptr("jacobian", name, ptr, batch * per_env(name, nu()));
  }
  check_gradients(model(), mode == JacobianMode::reverse, config_.grad_mode);
  last_batch_ = -1;
  if (batch > 0) engine_->jacobian(batch, x, u, x_next, jac_x, jac_u, mode);
  last_batch_ = batch;
}

template <class S>
void Simulator<S>::jacobian_fd(std::int64_t batch, const S* x, const S* u, S* jac_x, S* jac_u,
                               S eps) {
  check_batch("jacobian_fd", batch);
  for (auto [name, ptr] : {std::pair<const char*, const void*>{"x", x}, {"u", u},
                           {"jac_x", jac_x}, {"jac_u", jac_u}}) {
    check_ptr("jacobian_fd", name, ptr, batch * per_env(name, nu()));
  }
  if (!(eps >= 0) || !isfinite_(eps)) {
    throw InputError("Simulator::jacobian_fd: eps must be finite and >= 0, got " +
                     std::to_string(eps));
  }
  // about cbrt(machine epsilon): balances truncation against rounding for central differences
  if (eps == 0) eps = sizeof(S) == sizeof(float) ? S(1e-3) : S(1e-6);
  last_batch_ = -1;
  if (batch > 0) engine_->jacobian_fd(batch, x, u, jac_x, jac_u, eps);
  last_batch_ = batch;
}

template <class S>
void Simulator<S>::rollout(std::int64_t batch, std::int64_t horizon, const S* x0,
                           const S* actions, S* states) {
  check_batch("rollout", batch);
  check_horizon("rollout", horizon);
  check_ptr("rollout", "x0", x0, batch);
  check_ptr("rollout", "actions", actions, batch * horizon * nu());
  check_ptr("rollout", "states", states, batch);
  last_batch_ = -1;
  if (batch > 0) engine_->rollout(batch, horizon, x0, actions, states);
  last_batch_ = batch;
}

template <class S>
void Simulator<S>::rollout_vjp(std::int64_t batch, std::int64_t horizon, const S* x0,
                               const S* actions, const S* states, S* gx0, S* g_actions,
                               const S* g_states, const S* g_final,
                               std::int64_t checkpoint_interval) {
  check_batch("rollout_vjp", batch);
  check_horizon("rollout_vjp", horizon);
  if (states == nullptr) check_ptr("rollout_vjp", "x0 (needed when states is null)", x0, batch);
  check_ptr("rollout_vjp", "actions", actions, batch * horizon * nu());
  check_ptr("rollout_vjp", "gx0", gx0, batch);
  check_ptr("rollout_vjp", "g_actions", g_actions, batch * horizon * nu());
  if (checkpoint_interval < 0) {
    throw InputError("Simulator::rollout_vjp: checkpoint_interval must be >= 0, got " +
                     std::to_string(checkpoint_interval));
  }
  check_gradients(model(), true, config_.grad_mode);
  if (config_.toi_correction && states == nullptr) {
    throw InputError("Simulator::rollout_vjp: the time-of-impact correction (toi_correction) "
                     "needs the stored trajectory: pass the states from rollout(), not null");
  }
  if (checkpoint_interval == 0) checkpoint_interval = default_checkpoint_interval(horizon);
  last_batch_ = -1;
  if (batch > 0) {
    engine_->rollout_vjp(batch, horizon, x0, actions, states, gx0, g_actions, g_states, g_final,
                         checkpoint_interval);
  }
  last_batch_ = batch;
}

template <class S>
void Simulator<S>::nonfinite_rows(std::int64_t batch, std::int64_t row_size, const S* data,
                                  std::uint8_t* flags) {
  check_batch("nonfinite_rows", batch);
  check_ptr("nonfinite_rows", "data", data, batch * row_size);
  check_ptr("nonfinite_rows", "flags", flags, batch);
  if (batch > 0) engine_->nonfinite_rows(batch, row_size, data, flags);
}

template <class S>
void Simulator<S>::solver_status(std::int64_t batch, std::uint8_t* flags) {
  check_batch("solver_status", batch);
  if (last_batch_ < 0) {
    throw InputError("Simulator::solver_status: no call to report on (the solver status is that "
                     "of the last step, step_jvp, step_vjp, jacobian, jacobian_fd, rollout or "
                     "rollout_vjp, and the last one failed or none was made)");
  }
  if (batch != last_batch_) {
    throw InputError("Simulator::solver_status: batch " + std::to_string(batch) +
                     " is not the last call's batch " + std::to_string(last_batch_));
  }
  check_ptr("solver_status", "flags", flags, batch);
  if (batch > 0) engine_->solver_status(batch, flags);
}

template <class S>
void Simulator<S>::synchronize() {
  engine_->synchronize();
}

template class Simulator<float>;
template class Simulator<double>;

}  // namespace phydream
