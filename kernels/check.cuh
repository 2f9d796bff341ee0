// Turning CUDA runtime errors into BackendError, naming the call that failed.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "engine/errors.h"

namespace phydream {

inline void check_cuda(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    throw BackendError(std::string(what) + " failed: " + cudaGetErrorName(err) + ": " +
                       cudaGetErrorString(err));
  }
}

/// After a launch: a bad configuration is reported now; faults inside the kernel surface at the
/// next synchronisation.
inline void check_launch(const char* kernel) {
  check_cuda(cudaGetLastError(), kernel);
}

}  // namespace phydream
