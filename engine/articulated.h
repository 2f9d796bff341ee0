// Articulated models behind the Simulator: what a loaded Model looks like as an environment, the
// options a Simulator applies to it, and the constraints PhyDream does not simulate yet.
//
// A Simulator built with SimulatorOptions::model_file or ::model simulates the model with
// MuJoCo's semantics: the smooth dynamics (engine/forward.h), then contacts, joint limits and dry
// friction by the soft-constraint solver (engine/constraint.h). Derivatives the engine does not
// provide for a model are refused with a message saying what to use instead
// (gradient_restriction).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/model.h"
#include "engine/model_view.h"
#include "engine/simulator.h"

namespace phydream {

/// The bit of a disable-flag name ("contact", "limit", ...); throws InputError listing the names.
int parse_disable_flag(const std::string& name);

/// The environment description of a model: nq, nx = nq + nv, ndx = 2 nv, nu, timestep and
/// integrator, state and action names, and default sampling boxes (joint ranges where limited;
/// hinges +-pi and slides +-1 about qpos0 otherwise; quaternions fixed at qpos0; velocities +-1;
/// actions within ctrlrange where limited, else +-1).
EnvInfo model_env_info(const Model& model);

/// Empty when the model has no enabled constraint; otherwise which (contacts, limits, friction
/// loss), e.g. "contacts (geoms 'a' and 'b' can collide), joint limits (joint 'j' is limited)".
std::string constraint_features(const Model& model);

/// Empty when the derivatives asked for are available for the model under `mode`; otherwise
/// why not, with what to use instead. Both directions (`reverse`: VJP, rollout VJP, Jacobians
/// by reverse sweeps) differentiate the constraint solver under either integrator
/// (engine/constraint_jvp.h, constraint_vjp.h, constraint_unrolled.h), except through a limited
/// ball joint's row (ift and unrolled). The fd mode has no restriction.
std::string gradient_restriction(const Model& model, bool reverse, GradMode mode);

/// Resolves SimulatorOptions that name a model (model_file or model): loads it, applies dt,
/// integrator and disable flags, and fills the EngineConfig.
EngineConfig resolve_model_config(const SimulatorOptions& options, std::string* reason);

/// Whether PHYDREAM_POISON_WORKSPACES=1 is set (read once): the articulated engines then fill
/// their workspaces with NaN before each environment (CPU) or call (CUDA), so that a read of a
/// slot nothing wrote turns into a NaN in the results instead of a stale or arbitrary value. A
/// debugging aid the tests run with; it changes no result of a correct engine.
bool poison_workspaces();

/// The engine for an articulated model on the resolved backend.
template <class S>
std::unique_ptr<StepEngine<S>> make_articulated_engine(const EngineConfig& config);

namespace kernels {
/// The CUDA engine for an articulated model (kernels/articulated.cu; CUDA builds only).
template <class S>
std::unique_ptr<StepEngine<S>> make_articulated_cuda_engine(const EngineConfig& config);
}  // namespace kernels

}  // namespace phydream
