// Articulated models behind the Simulator: what a loaded Model looks like as an environment, the
// options a Simulator applies to it, and the constraints PhyDream does not simulate yet.
//
// A Simulator built with SimulatorOptions::model_file or ::model simulates the model's smooth
// dynamics (engine/forward.h) with MuJoCo's semantics. Contacts, joint limits and dry friction
// need the constraint solver of the soft-contact issue; a model that enables any of them is
// refused, with a message naming what is enabled and how to disable it, rather than simulated
// without it.
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

/// Empty when the derivatives asked for are available for the model; otherwise why not, with
/// what to use instead. Forward mode (JVP, Jacobians by forward sweeps) differentiates the
/// constraint solver by the implicit function theorem; reverse mode (`reverse`: VJP, rollout
/// VJP, Jacobians by reverse sweeps) does not yet, nor does either mode a limited ball joint.
std::string gradient_restriction(const Model& model, bool reverse);

/// Resolves SimulatorOptions that name a model (model_file or model): loads it, applies dt,
/// integrator and disable flags, and fills the EngineConfig.
EngineConfig resolve_model_config(const SimulatorOptions& options, std::string* reason);

/// The route a Jacobian request takes on either engine: the closed-form derivatives (analytic)
/// know nothing of constraints, so a model that can make constraint rows (nefc_max > 0) takes
/// the forward sweeps, which differentiate the solver by the implicit function theorem
/// (engine/constraint_jvp.h).
template <class S>
JacobianMode articulated_jacobian_route(const ModelView<S>& m, JacobianMode mode) {
  return mode == JacobianMode::analytic && m.nefc_max > 0 ? JacobianMode::forward : mode;
}

/// The engine for an articulated model on the resolved backend.
template <class S>
std::unique_ptr<StepEngine<S>> make_articulated_engine(const EngineConfig& config);

namespace kernels {
/// The CUDA engine for an articulated model (kernels/articulated.cu; CUDA builds only).
template <class S>
std::unique_ptr<StepEngine<S>> make_articulated_cuda_engine(const EngineConfig& config);
}  // namespace kernels

}  // namespace phydream
