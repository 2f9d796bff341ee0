// The public batched API: a Simulator steps, differentiates and rolls out a batch of environments
// held in caller-owned memory.
//
// Layout: row-major with the environment index first -- states (B, nx), actions (B, nu),
// tangents and cotangents of states (B, ndx), Jacobians (B, ndx, ndx) and (B, ndx, nu),
// trajectories (B, T + 1, nx), action sequences (B, T, nu) -- the layout of NumPy, PyTorch and
// JAX, so an embedding program hands its own buffers in.
//
// Tangents: for the built-in environments ndx = nx and a tangent is an ordinary derivative. An
// articulated model's state is x = [qpos (nq), qvel (nv)] and its tangent is [dqpos (nv), dqvel
// (nv)], ndx = 2 nv (MuJoCo's convention): ball and free joints keep a unit quaternion in qpos
// and are perturbed by a rotation vector in the joint's local frame, so nq > nv. For models with
// only hinge and slide joints nq = nv and the two coincide.
// Pointers live where the backend runs: host memory for the CPU backend, device memory for CUDA
// (work is queued on the simulator's stream; call synchronize() before reading results on the
// host). Outputs never alias inputs.
//
// Derivative conventions (as every derivative routine in the engine):
//   *_jvp overwrite their outputs; *_vjp accumulate (+=) into the input cotangents; Jacobians
//   overwrite. jac_x[b, i, j] = d x'_i / d x_j and jac_u[b, i, j] = d x'_i / d u_j.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/backend.h"
#include "engine/integrator.h"
#include "engine/model.h"

namespace phydream {

/// A physical parameter of an environment, with its default and admissible range.
struct ParamInfo {
  std::string name;
  double default_value = 0;
  double lower = 0;              // admissible values are > lower (or >= lower, see below)
  bool lower_inclusive = false;  // true: value >= lower is allowed
  bool bounded_below = true;     // false: any finite value
  std::string description;       // with its unit
};

/// What an environment is: sizes, defaults, names, parameters.
struct EnvInfo {
  std::string name;
  std::string description;
  int nq = 0, nx = 0, nu = 0;
  int ndx = 0;                           // tangent size: nx, or 2 nv for articulated models
  double dt = 0;                         // default timestep, s
  Integrator integrator = Integrator::euler;  // default integrator
  std::vector<std::string> state_names;   // (nx)
  std::vector<std::string> action_names;  // (nu)
  std::vector<ParamInfo> params;
  // the box training and evaluation sample from by default
  std::vector<double> state_low, state_high;    // (nx)
  std::vector<double> action_low, action_high;  // (nu)
};

/// Everything a backend engine needs, resolved and validated.
struct EngineConfig {
  EnvInfo env;
  std::shared_ptr<const Model> model;  // articulated models only, with dt and flags applied
  std::vector<double> params;  // in the order of env.params
  Integrator integrator = Integrator::euler;
  double dt = 0;
  Backend backend = Backend::cpu;  // cpu or cuda, never automatic
  int threads = 0;                 // CPU: worker threads, 0 = all cores
  void* stream = nullptr;          // CUDA: cudaStream_t, null = default stream
  GradMode grad_mode = GradMode::ift;  // articulated models: derivatives through the solver
  bool toi_correction = false;  // articulated models: rollout_vjp's time-of-impact correction
};

/// The outcome of the constraint solver for one environment in one call (Simulator::
/// solver_status): the worst over every solve the call made for it.
enum class SolveFlag : std::uint8_t {
  ok = 0,             // every solve converged (or stopped at the solution to rounding)
  iteration_cap = 1,  // a solve stopped at the model's iteration cap before its tolerance
  nonfinite = 2,      // a solve produced a NaN or infinite acceleration
};

/// How the full Jacobian is built. All give the same matrix to rounding.
enum class JacobianMode {
  forward,   // forward sweeps carrying the ndx + nu tangent directions
  reverse,   // reverse sweeps carrying the ndx cotangents
  analytic,  // the fastest analytic route: for articulated models, closed-form derivatives of
             // the recursive Newton-Euler forces (and, in the ift gradient mode, of the
             // constraint solve) assembled through the solve and the integrator; for the
             // built-in environments and the unrolled mode on contact models, the forward sweep
};

/// One environment type on one backend, batched over caller memory. Implemented by the CPU
/// engine (engine/cpu_engine.h) and the CUDA engine (kernels/). Arguments as in Simulator.
template <class Scalar>
class StepEngine {
 public:
  virtual ~StepEngine() = default;
  virtual void step(std::int64_t batch, const Scalar* x, const Scalar* u, Scalar* x_next) = 0;
  virtual void step_jvp(std::int64_t batch, const Scalar* x, const Scalar* u, const Scalar* dx,
                        const Scalar* du, Scalar* x_next, Scalar* dx_next) = 0;
  virtual void step_vjp(std::int64_t batch, const Scalar* x, const Scalar* u, Scalar* gx,
                        Scalar* gu, const Scalar* g_next) = 0;
  virtual void jacobian(std::int64_t batch, const Scalar* x, const Scalar* u, Scalar* x_next,
                        Scalar* jac_x, Scalar* jac_u, JacobianMode mode) = 0;
  virtual void jacobian_fd(std::int64_t batch, const Scalar* x, const Scalar* u, Scalar* jac_x,
                           Scalar* jac_u, Scalar eps) = 0;
  virtual void rollout(std::int64_t batch, std::int64_t horizon, const Scalar* x0,
                       const Scalar* actions, Scalar* states) = 0;
  virtual void rollout_vjp(std::int64_t batch, std::int64_t horizon, const Scalar* x0,
                           const Scalar* actions, const Scalar* states, Scalar* gx0,
                           Scalar* g_actions, const Scalar* g_states, const Scalar* g_final,
                           std::int64_t checkpoint_interval) = 0;
  virtual void nonfinite_rows(std::int64_t batch, std::int64_t row_size, const Scalar* data,
                              std::uint8_t* flags) = 0;
  // flags[b] = the SolveFlag of environment b in the last call above (batch: that call's)
  virtual void solver_status(std::int64_t batch, std::uint8_t* flags) = 0;
  virtual void synchronize() = 0;
};

/// Options to build a Simulator. Unset fields take the environment's defaults.
struct SimulatorOptions {
  std::string env = "double_pendulum";
  // an articulated model instead of a built-in environment: a file (MJCF .xml or JSON .json),
  // or a Model built in code; env and params are then ignored
  std::string model_file;
  std::shared_ptr<const Model> model;
  // disable flags to set on the model: "contact", "limit", "frictionloss", "gravity", "passive",
  // "actuation", "clampctrl" (as MJCF's <option><flag NAME="disable"/>)
  std::vector<std::string> disable;
  std::vector<std::pair<std::string, double>> params;  // overrides, by parameter name
  std::optional<Integrator> integrator;
  std::optional<double> dt;
  Backend backend = Backend::automatic;
  int threads = 0;          // CPU backend: worker threads, 0 = all cores
  void* stream = nullptr;   // CUDA backend: a cudaStream_t to queue work on, null = default
  // articulated models: how every derivative (JVP, VJP, Jacobian, rollout VJP) treats the
  // constraint solver (engine/model.h): ift (default), unrolled, or fd (central differences of
  // the whole step)
  GradMode grad_mode = GradMode::ift;
  // articulated models: rollout_vjp replaces the gradient of every isolated frictionless impact
  // (one condim-1 contact, entered and left within the horizon) by that of an instantaneous
  // impact at the time of impact, with the restitution the soft contact showed (Zhong et al.
  // 2023); needs the stored trajectory. See docs/contact_gradients.md.
  bool toi_correction = false;
};

/// A batched, differentiable simulator of one environment (float or double).
template <class Scalar>
class Simulator {
 public:
  /// Builds the environment named in `options` (see environments() in models/envs.h) on the
  /// requested backend. Throws InputError for an unknown environment, parameter or a value out
  /// of range, BackendError when the backend is unavailable.
  explicit Simulator(const SimulatorOptions& options);

  const EnvInfo& env() const { return config_.env; }
  const EngineConfig& config() const { return config_; }
  int nx() const { return config_.env.nx; }
  int ndx() const { return config_.env.ndx; }
  int nu() const { return config_.env.nu; }
  /// The articulated model simulated, with options applied; null for built-in environments.
  const Model* model() const { return config_.model.get(); }
  double dt() const { return config_.dt; }
  Integrator integrator() const { return config_.integrator; }
  Backend backend() const { return config_.backend; }
  /// Why this backend was chosen ("CUDA device visible: ...", "no CUDA device visible", ...).
  const std::string& backend_reason() const { return backend_reason_; }

  /// x_next = step(x, u). x: (B, nx), u: (B, nu), x_next: (B, nx) written.
  void step(std::int64_t batch, const Scalar* x, const Scalar* u, Scalar* x_next);

  /// Forward mode: dx_next = (dx'/dx) dx + (dx'/du) du, and x_next. dx: (B, ndx), du: (B, nu),
  /// x_next: (B, nx) and dx_next: (B, ndx) written.
  void step_jvp(std::int64_t batch, const Scalar* x, const Scalar* u, const Scalar* dx,
                const Scalar* du, Scalar* x_next, Scalar* dx_next);

  /// Reverse mode: gx += (dx'/dx)^T g_next, gu += (dx'/du)^T g_next. gx: (B, ndx) and
  /// gu: (B, nu) accumulated, g_next: (B, ndx).
  void step_vjp(std::int64_t batch, const Scalar* x, const Scalar* u, Scalar* gx, Scalar* gu,
                const Scalar* g_next);

  /// Full Jacobians, analytic. jac_x: (B, ndx, ndx), jac_u: (B, ndx, nu) written; x_next
  /// (B, nx) written too unless null.
  void jacobian(std::int64_t batch, const Scalar* x, const Scalar* u, Scalar* x_next,
                Scalar* jac_x, Scalar* jac_u, JacobianMode mode = JacobianMode::analytic);

  /// Full Jacobians by batched central differences, 2 (ndx + nu) perturbed steps per
  /// environment. eps: relative step (0: 1e-6 for double, 1e-3 for float).
  void jacobian_fd(std::int64_t batch, const Scalar* x, const Scalar* u, Scalar* jac_x,
                   Scalar* jac_u, Scalar eps = 0);

  /// T-step rollout. x0: (B, nx), actions: (B, T, nu), states: (B, T + 1, nx) written with
  /// states[:, 0] = x0.
  void rollout(std::int64_t batch, std::int64_t horizon, const Scalar* x0, const Scalar* actions,
               Scalar* states);

  /// Reverse mode of a rollout for the trajectory cotangent g_states (B, T + 1, ndx) and/or
  /// g_final (B, ndx) (added to the cotangent of the last state); either may be null.
  /// Accumulates gx0 (B, ndx) and g_actions (B, T, nu). With `states` (B, T + 1, nx) from
  /// rollout() the stored trajectory is used; with states = null it is re-simulated from
  /// checkpoints every `checkpoint_interval` steps (0: ceil(sqrt(T))), using O(sqrt(T)) memory.
  void rollout_vjp(std::int64_t batch, std::int64_t horizon, const Scalar* x0,
                   const Scalar* actions, const Scalar* states, Scalar* gx0, Scalar* g_actions,
                   const Scalar* g_states, const Scalar* g_final,
                   std::int64_t checkpoint_interval = 0);

  /// flags[b] = 1 if any of data[b, 0:row_size] is NaN or infinite, else 0. flags: (B) bytes.
  void nonfinite_rows(std::int64_t batch, std::int64_t row_size, const Scalar* data,
                      std::uint8_t* flags);

  /// The constraint solver's outcome per environment in the last call of step, step_jvp,
  /// step_vjp, jacobian, jacobian_fd, rollout or rollout_vjp: flags[b] = SolveFlag, the worst
  /// over every solve that call made for environment b (every RK4 stage, rollout step and
  /// finite-difference step). A flagged environment's results are those of the unconverged or
  /// non-finite solve: nothing is retried or hidden. Environments without a solver (built-in
  /// environments, models without constraints) are always ok. flags: (B) bytes where the
  /// backend runs; B must be the last call's batch.
  void solver_status(std::int64_t batch, std::uint8_t* flags);

  /// Waits until queued work is done (a no-op on the CPU backend).
  void synchronize();

 private:
  std::string backend_reason_;  // before config_: the constructor fills both in one call
  EngineConfig config_;
  std::unique_ptr<StepEngine<Scalar>> engine_;
  std::int64_t last_batch_ = -1;  // the batch of the last call solver_status reports on
};

extern template class Simulator<float>;
extern template class Simulator<double>;

}  // namespace phydream
