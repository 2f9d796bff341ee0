// Backends (CPU threads or CUDA), their run-time selection, and the few CUDA runtime services the
// host side needs (device memory and copies), available whether or not CUDA was compiled in:
// without it they throw BackendError.
#pragma once

#include <cstddef>
#include <string>

#include "engine/integrator.h"

namespace phydream {

/// Where a simulator runs. `automatic` resolves to cuda when a device is visible, else cpu.
enum class Backend { automatic, cpu, cuda };

/// "auto", "cpu", "cuda".
const char* backend_name(Backend backend);
/// Parses "auto" | "cpu" | "cuda"; throws InputError naming the accepted values.
Backend parse_backend(const std::string& name);

/// "euler", "semi_implicit_euler", "rk4".
const char* integrator_name(Integrator integrator);
/// Parses an integrator name; throws InputError naming the accepted values.
Integrator parse_integrator(const std::string& name);

/// Whether this build contains the CUDA kernels.
bool cuda_compiled();
/// Number of CUDA devices visible now (0 without CUDA support, driver or device).
int cuda_device_count();
/// "NVIDIA H100 80GB HBM3 (sm_90, 79 GiB)" for the current device, or why there is none.
std::string cuda_device_description();

/// Resolves `automatic` and checks availability: returns cpu or cuda, and in `reason` (when not
/// null) a sentence saying why that backend was chosen. Throws BackendError when cuda is
/// requested but not compiled in or no device is visible.
Backend resolve_backend(Backend requested, std::string* reason = nullptr);

// ---------------------------------------------------------------------------------------------
// CUDA runtime services for host code; `stream` is a cudaStream_t (null: the default stream).
// All throw BackendError naming the failing call.

void* cuda_malloc(std::size_t bytes, void* stream);
void cuda_free(void* ptr, void* stream);
void cuda_memcpy_to_device(void* dst, const void* src, std::size_t bytes, void* stream);
void cuda_memcpy_to_host(void* dst, const void* src, std::size_t bytes, void* stream);
void cuda_memset_zero(void* ptr, std::size_t bytes, void* stream);
void cuda_stream_synchronize(void* stream);

}  // namespace phydream
