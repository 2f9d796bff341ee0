// The environment registry: every built-in environment, its defaults, and how a Simulator is
// built for it.
#pragma once

#include <string>
#include <vector>

#include "engine/simulator.h"

namespace phydream {

/// The built-in environments, in a stable order.
const std::vector<EnvInfo>& environments();

/// The environment called `name`; throws InputError listing the known names.
const EnvInfo& find_env(const std::string& name);

/// Validates `options` against the environment and resolves defaults and the backend:
/// unknown parameters, non-finite or out-of-range values and a non-positive dt are InputErrors;
/// an unavailable backend is a BackendError. `reason` receives why the backend was chosen.
EngineConfig resolve_config(const SimulatorOptions& options, std::string* reason = nullptr);

}  // namespace phydream
