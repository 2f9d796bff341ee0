// Tasks and open-loop trajectory optimisation (engine/tasks.h).
#include "engine/tasks.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include "engine/errors.h"

namespace phydream {

namespace {

constexpr double kSpinVelocity = 15;  // dm_control's _SPIN_VELOCITY, rad/s

int find_name(const std::vector<std::string>& names, const std::string& name) {
  const auto it = std::find(names.begin(), names.end(), name);
  return it == names.end() ? -1 : static_cast<int>(it - names.begin());
}

std::string label(const Model& m) { return m.source.empty() ? std::string("model") : m.source; }

// v rotated by angle about the unit axis a (Rodrigues)
void rotate(const double* a, double angle, const double* v, double* out) {
  const double c = std::cos(angle), s = std::sin(angle);
  const double dot = a[0] * v[0] + a[1] * v[1] + a[2] * v[2];
  const double cross[3] = {a[1] * v[2] - a[2] * v[1], a[2] * v[0] - a[0] * v[2], a[0] * v[1] - a[1] * v[0]};
  for (int k = 0; k < 3; ++k) out[k] = v[k] * c + cross[k] * s + a[k] * dot * (1 - c);
}

// The Finger's spinner: a hinge on a body hung from the world with the identity orientation,
// and the tip site on that body; the tip's world position as a function of the hinge angle.
class FingerTask : public Task {
 public:
  FingerTask(const Model& m, std::string name) : name_(std::move(name)), nq_(m.nq), nv_(m.nv) {
    const int j = find_name(m.jnt_name, "hinge");
    if (j < 0 || m.jnt_type[j] != static_cast<int>(JointType::hinge)) {
      throw InputError("task " + name_ + ": " + label(m) + " has no hinge joint named 'hinge' (the "
                       "Finger's spinner, assets/finger.xml)");
    }
    const int body = m.jnt_bodyid[j];
    const int site = find_name(m.site_name, "tip");
    const double* q = &m.body_quat[4 * body];
    if (m.body_parentid[body] != 0 || m.body_jntnum[body] != 1 || q[0] != 1 || q[1] != 0 ||
        q[2] != 0 || q[3] != 0) {
      throw InputError("task " + name_ + ": in " + label(m) + " the body of joint 'hinge' must hang "
                       "from the world, unrotated, with that joint alone (as the Finger's spinner)");
    }
    if (site < 0 || m.site_bodyid[site] != body) {
      throw InputError("task " + name_ + ": " + label(m) + " has no site 'tip' on the body of joint "
                       "'hinge' (the Finger's spinner tip)");
    }
    qadr_ = m.jnt_qposadr[j];
    dadr_ = m.jnt_dofadr[j];
    ref_ = m.qpos0[qadr_];
    for (int k = 0; k < 3; ++k) {
      axis_[k] = m.jnt_axis[3 * j + k];
      anchor_[k] = m.body_pos[3 * body + k] + m.jnt_pos[3 * j + k];
      arm_[k] = m.site_pos[3 * site + k] - m.jnt_pos[3 * j + k];
    }
  }
  const std::string& name() const override { return name_; }

 protected:
  // the tip's world position, and its derivative with respect to the hinge angle (may be null)
  void tip(const double* x, double* pos, double* dpos) const {
    double r[3];
    rotate(axis_, x[qadr_] - ref_, arm_, r);
    for (int k = 0; k < 3; ++k) pos[k] = anchor_[k] + r[k];
    if (dpos != nullptr) {
      dpos[0] = axis_[1] * r[2] - axis_[2] * r[1];
      dpos[1] = axis_[2] * r[0] - axis_[0] * r[2];
      dpos[2] = axis_[0] * r[1] - axis_[1] * r[0];
    }
  }
  double hinge_velocity(const double* x) const { return x[nq_ + dadr_]; }
  void zero(double* grad) const {
    if (grad != nullptr) std::fill(grad, grad + 2 * nv_, 0.0);
  }

  std::string name_;
  int nq_, nv_, qadr_ = 0, dadr_ = 0;
  double ref_ = 0, axis_[3] = {}, anchor_[3] = {}, arm_[3] = {};
};

class FingerSpin final : public FingerTask {
 public:
  explicit FingerSpin(const Model& m) : FingerTask(m, "finger_spin") {}
  double cost(const double* x, double* grad) const override {
    const double excess = std::max(0.0, hinge_velocity(x) + kSpinVelocity);
    zero(grad);
    if (grad != nullptr) grad[nv_ + dadr_] = excess;
    return 0.5 * excess * excess;
  }
  double reward(const double* x) const override { return hinge_velocity(x) <= -kSpinVelocity ? 1.0 : 0.0; }
};

class FingerTurn final : public FingerTask {
 public:
  FingerTurn(const Model& m, double target_angle, double target_radius)
      : FingerTask(m, "finger_turn"), radius_(target_radius) {
    if (!std::isfinite(target_angle) || !(target_radius > 0) || !std::isfinite(target_radius)) {
      std::ostringstream os;
      os << "task finger_turn: target_angle must be finite and target_radius finite and > 0, got "
         << target_angle << " and " << target_radius;
      throw InputError(os.str());
    }
    // on the tip's circle about the hinge, at target_angle from +z towards +x (dm_control)
    const double r = std::sqrt(arm_[0] * arm_[0] + arm_[2] * arm_[2]);
    target_[0] = anchor_[0] + r * std::sin(target_angle);
    target_[1] = anchor_[1] + arm_[1];
    target_[2] = anchor_[2] + r * std::cos(target_angle);
  }
  double cost(const double* x, double* grad) const override {
    double p[3], dp[3];
    tip(x, p, dp);
    double c = 0, g = 0;
    for (int k = 0; k < 3; ++k) {
      const double e = p[k] - target_[k];
      c += 0.5 * e * e;
      g += e * dp[k];
    }
    zero(grad);
    if (grad != nullptr) grad[dadr_] = g;
    return c;
  }
  double reward(const double* x) const override {
    double p[3];
    tip(x, p, nullptr);
    double d2 = 0;
    for (int k = 0; k < 3; ++k) d2 += (p[k] - target_[k]) * (p[k] - target_[k]);
    return std::sqrt(d2) <= radius_ ? 1.0 : 0.0;
  }

 private:
  double radius_;
  double target_[3] = {};
};

// the affine map of tanh(w) onto an actuator's range (identity for an unlimited actuator)
struct ControlMap {
  std::vector<double> mid, half;
  std::vector<bool> limited;
  explicit ControlMap(const Model& m) {
    for (int a = 0; a < m.nu; ++a) {
      const bool lim = m.actuator_ctrllimited[a] != 0;
      const double lo = m.actuator_ctrlrange[2 * a], hi = m.actuator_ctrlrange[2 * a + 1];
      limited.push_back(lim);
      mid.push_back(lim ? 0.5 * (lo + hi) : 0.0);
      half.push_back(lim ? 0.5 * (hi - lo) : 1.0);
    }
  }
};

void check_problem(const Simulator<double>& sim, std::int64_t batch, std::int64_t horizon,
                   const double* x0, const double* actions) {
  if (sim.model() == nullptr) {
    throw InputError("optimize_open_loop: the simulator runs a built-in environment; tasks apply to "
                     "articulated models");
  }
  if (sim.backend() != Backend::cpu) {
    throw InputError("optimize_open_loop: the simulator must run on the CPU backend (host arrays)");
  }
  if (batch < 0 || horizon < 1) {
    throw InputError("optimize_open_loop: batch must be >= 0 and horizon >= 1, got " +
                     std::to_string(batch) + " and " + std::to_string(horizon));
  }
  if (batch > 0 && (x0 == nullptr || (actions == nullptr && sim.nu() > 0))) {
    throw InputError("optimize_open_loop: x0 and actions must not be null");
  }
}

}  // namespace

std::vector<std::string> task_names() { return {"finger_spin", "finger_turn"}; }

std::unique_ptr<Task> make_task(const Model& m, const std::string& name, double target_angle,
                                double target_radius) {
  if (name == "finger_spin") return std::make_unique<FingerSpin>(m);
  if (name == "finger_turn") return std::make_unique<FingerTurn>(m, target_angle, target_radius);
  std::string known;
  for (const std::string& n : task_names()) known += (known.empty() ? "" : ", ") + n;
  throw InputError("unknown task '" + name + "'; known tasks: " + known);
}

OpenLoopProgress evaluate_open_loop(Simulator<double>& sim, const Task& task, std::int64_t batch,
                                    std::int64_t horizon, const double* x0, const double* actions,
                                    double* states) {
  check_problem(sim, batch, horizon, x0, actions);
  const int nx = sim.nx();
  std::vector<double> own;
  if (states == nullptr) {
    own.resize(static_cast<std::size_t>(batch * (horizon + 1) * nx));
    states = own.data();
  }
  sim.rollout(batch, horizon, x0, actions, states);
  OpenLoopProgress p;
  for (std::int64_t b = 0; b < batch; ++b) {
    for (std::int64_t t = 1; t <= horizon; ++t) {
      const double* x = states + (b * (horizon + 1) + t) * nx;
      p.cost += task.cost(x, nullptr);
      p.reward += task.reward(x);
    }
  }
  if (batch > 0) {
    p.cost /= static_cast<double>(batch);
    p.reward /= static_cast<double>(batch * horizon);
  }
  return p;
}

void optimize_open_loop(Simulator<double>& sim, const Task& task, std::int64_t batch,
                        std::int64_t horizon, const double* x0, double* actions,
                        const OpenLoopOptions& o,
                        const std::function<void(const OpenLoopProgress&)>& progress) {
  check_problem(sim, batch, horizon, x0, actions);
  if (o.iterations < 0 || !(o.learning_rate > 0) || !(o.beta1 >= 0 && o.beta1 < 1) ||
      !(o.beta2 >= 0 && o.beta2 < 1) || !(o.epsilon > 0)) {
    throw InputError("optimize_open_loop: iterations must be >= 0, learning_rate and epsilon > 0, "
                     "beta1 and beta2 in [0, 1)");
  }
  const Model& m = *sim.model();
  const int nx = sim.nx(), ndx = sim.ndx(), nu = sim.nu();
  const ControlMap map(m);
  const std::size_t nU = static_cast<std::size_t>(batch * horizon * nu);
  // the unconstrained parameters of the initial guess
  std::vector<double> w(nU), mom(nU, 0.0), var(nU, 0.0), u(nU), g_u(nU);
  for (std::size_t i = 0; i < nU; ++i) {
    const int a = static_cast<int>(i % nu);
    if (!map.limited[a]) {
      w[i] = actions[i];
      continue;
    }
    const double s = (actions[i] - map.mid[a]) / map.half[a];
    if (!(std::abs(s) <= 1)) {
      throw InputError("optimize_open_loop: the initial actions must lie in the actuators' "
                       "ctrlrange; entry " + std::to_string(i) + " does not");
    }
    w[i] = std::atanh(std::clamp(s, -1 + 1e-9, 1 - 1e-9));
  }
  auto controls = [&] {
    for (std::size_t i = 0; i < nU; ++i) {
      const int a = static_cast<int>(i % nu);
      u[i] = map.limited[a] ? map.mid[a] + map.half[a] * std::tanh(w[i]) : w[i];
    }
  };
  std::vector<double> states(static_cast<std::size_t>(batch * (horizon + 1) * nx));
  std::vector<double> g_states(static_cast<std::size_t>(batch * (horizon + 1) * ndx));
  std::vector<double> gx0(static_cast<std::size_t>(batch * ndx));
  double b1 = 1, b2 = 1;  // beta powers
  for (int it = 0; it < o.iterations; ++it) {
    controls();
    OpenLoopProgress p = evaluate_open_loop(sim, task, batch, horizon, x0, u.data(), states.data());
    p.iteration = it;
    if (progress) progress(p);
    // the cost's gradient at every state after the first, then back through the rollout
    std::fill(g_states.begin(), g_states.end(), 0.0);
    for (std::int64_t b = 0; b < batch; ++b) {
      for (std::int64_t t = 1; t <= horizon; ++t) {
        const std::size_t row = static_cast<std::size_t>(b * (horizon + 1) + t);
        task.cost(&states[row * nx], &g_states[row * ndx]);
      }
    }
    std::fill(g_u.begin(), g_u.end(), 0.0);
    std::fill(gx0.begin(), gx0.end(), 0.0);
    sim.rollout_vjp(batch, horizon, x0, u.data(), states.data(), gx0.data(), g_u.data(),
                    g_states.data(), nullptr);
    b1 *= o.beta1;
    b2 *= o.beta2;
    for (std::size_t i = 0; i < nU; ++i) {
      const int a = static_cast<int>(i % nu);
      const double th = std::tanh(w[i]);
      const double g = map.limited[a] ? g_u[i] * map.half[a] * (1 - th * th) : g_u[i];
      if (!std::isfinite(g)) {
        throw std::runtime_error("optimize_open_loop: non-finite gradient at iteration " +
                                 std::to_string(it) + ", environment " +
                                 std::to_string(static_cast<std::int64_t>(i) / (horizon * nu)));
      }
      mom[i] = o.beta1 * mom[i] + (1 - o.beta1) * g;
      var[i] = o.beta2 * var[i] + (1 - o.beta2) * g * g;
      w[i] -= o.learning_rate * (mom[i] / (1 - b1)) / (std::sqrt(var[i] / (1 - b2)) + o.epsilon);
    }
  }
  controls();
  std::copy(u.begin(), u.end(), actions);
}

}  // namespace phydream
