// Control tasks on articulated models, and open-loop trajectory optimisation of them through the
// simulator's gradients (analytic policy gradients for an open-loop policy).
//
// A Task gives a running cost of a state with its gradient in tangent coordinates (what gradient
// descent through Simulator::rollout_vjp minimises) and the task's own reward (its success
// measure, usually sparse). The Finger's two tasks follow dm_control's suite/finger.py:
//   finger_spin  reward 1 while the spinner's hinge velocity is <= -15 rad/s;
//                cost max(0, v + 15)^2 / 2, v the hinge velocity
//   finger_turn  reward 1 while the spinner's tip site is within target_radius of the target, a
//                point on the tip's circle at target_angle (rad, from +z towards +x, as
//                dm_control draws it); cost |tip - target|^2 / 2
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/model.h"
#include "engine/simulator.h"

namespace phydream {

/// A control task on one model's states x = [qpos (nq), qvel (nv)].
class Task {
 public:
  virtual ~Task() = default;
  virtual const std::string& name() const = 0;
  /// The running cost of state x; its gradient (2 nv, tangent coordinates) into grad unless null.
  virtual double cost(const double* x, double* grad) const = 0;
  /// The task's reward of state x, in [0, 1].
  virtual double reward(const double* x) const = 0;
};

/// The names make_task knows.
std::vector<std::string> task_names();

/// A task by name on model m ("finger_spin", "finger_turn"; see the top of this file).
/// finger_turn: target_angle in rad, target_radius in m (dm_control: 0.07 easy, 0.03 hard).
/// Throws InputError for an unknown name or a model without what the task needs (Finger's
/// "hinge" joint on a "spinner" body hung from the world, and its "tip" site).
std::unique_ptr<Task> make_task(const Model& m, const std::string& name, double target_angle = 0,
                                double target_radius = 0.03);

/// Options of optimize_open_loop.
struct OpenLoopOptions {
  int iterations = 100;
  double learning_rate = 0.05;  // Adam's, on the unconstrained parameters w (u = tanh w)
  double beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8;
};

/// One iteration's measurements (of the actions before that iteration's update).
struct OpenLoopProgress {
  int iteration = 0;
  double cost = 0;    // mean over environments of the summed running cost of states 1..T
  double reward = 0;  // mean over environments and steps of the task reward of states 1..T
};

/// Open-loop trajectory optimisation: for every environment b, actions (B, T, nu) minimising
/// sum_{t=1..T} cost(x_t) from x0 (B, nx), by Adam on w with u = tanh(w) scaled to each
/// actuator's ctrlrange (so the controls stay in range and keep a gradient), the gradient by
/// Simulator::rollout_vjp in the simulator's gradient mode. `actions` holds the initial guess
/// (inside the ranges) and receives the result; `progress` (optional) is called every iteration.
/// The simulator must run on the CPU backend and simulate the task's model.
void optimize_open_loop(Simulator<double>& sim, const Task& task, std::int64_t batch,
                        std::int64_t horizon, const double* x0, double* actions,
                        const OpenLoopOptions& options,
                        const std::function<void(const OpenLoopProgress&)>& progress = {});

/// Mean cost and reward of the rollouts of `actions` from x0 (as OpenLoopProgress reports them);
/// states (B, T + 1, nx) written when not null.
OpenLoopProgress evaluate_open_loop(Simulator<double>& sim, const Task& task, std::int64_t batch,
                                    std::int64_t horizon, const double* x0, const double* actions,
                                    double* states = nullptr);

}  // namespace phydream
