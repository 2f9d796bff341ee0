// The CUDA services of engine/backend.h: device discovery, memory and copies.
#include <cuda_runtime.h>

#include <string>

#include "engine/backend.h"
#include "engine/errors.h"
#include "kernels/check.cuh"

namespace phydream {

bool cuda_compiled() { return true; }

int cuda_device_count() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();  // no driver or no device: not an error worth keeping
    return 0;
  }
  return count;
}

std::string cuda_device_description() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();
    // the runtime reports a missing driver as an insufficient one
    if (err == cudaErrorInsufficientDriver) return "no NVIDIA driver, or one older than CUDA " +
                                                   std::to_string(CUDART_VERSION / 1000);
    if (err == cudaErrorNoDevice) return "no CUDA device";
    return std::string("CUDA runtime: ") + cudaGetErrorString(err);
  }
  if (count == 0) return "no CUDA device";
  int device = 0;
  cudaDeviceProp prop{};
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
    cudaGetLastError();
    return "CUDA device (properties unavailable)";
  }
  return std::string(prop.name) + " (sm_" + std::to_string(prop.major) +
         std::to_string(prop.minor) + ", " +
         std::to_string(prop.totalGlobalMem >> 30) + " GiB)";
}

void* cuda_malloc(std::size_t bytes, void* stream) {
  void* ptr = nullptr;
  if (bytes == 0) return nullptr;
  check_cuda(cudaMallocAsync(&ptr, bytes, static_cast<cudaStream_t>(stream)),
             "cudaMallocAsync");
  return ptr;
}

void cuda_free(void* ptr, void* stream) {
  if (ptr != nullptr) {
    check_cuda(cudaFreeAsync(ptr, static_cast<cudaStream_t>(stream)), "cudaFreeAsync");
  }
}

void cuda_memcpy_to_device(void* dst, const void* src, std::size_t bytes, void* stream) {
  check_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice,
                             static_cast<cudaStream_t>(stream)),
             "cudaMemcpyAsync (host to device)");
  // the source is the caller's pageable memory: make the copy complete before it may change
  check_cuda(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)), "cudaStreamSynchronize");
}

void cuda_memcpy_to_host(void* dst, const void* src, std::size_t bytes, void* stream) {
  check_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost,
                             static_cast<cudaStream_t>(stream)),
             "cudaMemcpyAsync (device to host)");
  check_cuda(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)), "cudaStreamSynchronize");
}

void cuda_memset_zero(void* ptr, std::size_t bytes, void* stream) {
  check_cuda(cudaMemsetAsync(ptr, 0, bytes, static_cast<cudaStream_t>(stream)),
             "cudaMemsetAsync");
}

void cuda_stream_synchronize(void* stream) {
  check_cuda(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)), "cudaStreamSynchronize");
}

}  // namespace phydream
