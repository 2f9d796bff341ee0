// Turning CUDA runtime errors into BackendError, naming the call that failed.
#pragma once

#include <cuda_runtime.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "engine/errors.h"

// A kernel launch: PHYDREAM_LAUNCH(grid, block, shared bytes, stream, kernel)(arguments...).
// Under nvcc, the triple-chevron launch; in the emulated CUDA build (PHYDREAM_CUDA=EMULATE, which
// compiles these sources as C++ against tests/emulation/), a call that runs the kernel's blocks
// on the host. (The kernel comes last: its template arguments may hold commas.)
#if defined(PHYDREAM_CUDA_EMULATION)
#define PHYDREAM_LAUNCH(grid, block, shared, stream, ...) \
  ::phydream::emulation::launch_of((grid), (block), (shared), __VA_ARGS__)
#else
#define PHYDREAM_LAUNCH(grid, block, shared, stream, ...) \
  __VA_ARGS__<<<(grid), (block), (shared), (stream)>>>
#endif

namespace phydream {

inline void check_cuda(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    throw BackendError(std::string(what) + " failed: " + cudaGetErrorName(err) + ": " +
                       cudaGetErrorString(err));
  }
}

/// Whether PHYDREAM_CUDA_SYNC=1 is set (read once).
inline bool cuda_sync_launches() {
  static const bool on = [] {
    const char* v = std::getenv("PHYDREAM_CUDA_SYNC");
    return v != nullptr && std::strcmp(v, "1") == 0;
  }();
  return on;
}

/// After a launch: a bad configuration is reported now; faults inside the kernel surface at the
/// next synchronisation, named after whatever call that is, unless PHYDREAM_CUDA_SYNC=1 (for
/// bringing up or debugging kernels: every launch then waits for the device and a fault is
/// reported under the kernel's own name).
inline void check_launch(const char* kernel) {
  check_cuda(cudaGetLastError(), kernel);
  if (cuda_sync_launches()) check_cuda(cudaDeviceSynchronize(), kernel);
}

}  // namespace phydream
