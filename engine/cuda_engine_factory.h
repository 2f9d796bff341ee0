// The hook between the environment registry and the CUDA kernels: kernels/<model>.cu
// instantiates make_cuda_engine for its model (float and double). Only declared in builds with
// CUDA (PHYDREAM_WITH_CUDA).
#pragma once

#include <memory>

#include "engine/simulator.h"

namespace phydream {

/// The CUDA engine for Model on the device current at construction, queuing work on
/// config.stream.
template <class Model>
std::unique_ptr<StepEngine<typename Model::scalar_type>> make_cuda_engine(
    const EngineConfig& config);

}  // namespace phydream
