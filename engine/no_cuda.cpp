// The CUDA services of engine/backend.h in a build without CUDA: no devices, and every request
// for device memory is refused with a clear error.
#include <string>

#include "engine/backend.h"
#include "engine/errors.h"

namespace phydream {

namespace {
[[noreturn]] void no_cuda(const char* what) {
  throw BackendError(std::string(what) + ": this build of PhyDream has no CUDA support");
}
}  // namespace

bool cuda_compiled() { return false; }
int cuda_device_count() { return 0; }
std::string cuda_device_description() { return "built without CUDA"; }

void* cuda_malloc(std::size_t, void*) { no_cuda("cuda_malloc"); }
void cuda_free(void*, void*) { no_cuda("cuda_free"); }
void cuda_memcpy_to_device(void*, const void*, std::size_t, void*) {
  no_cuda("cuda_memcpy_to_device");
}
void cuda_memcpy_to_host(void*, const void*, std::size_t, void*) {
  no_cuda("cuda_memcpy_to_host");
}
void cuda_memset_zero(void*, std::size_t, void*) { no_cuda("cuda_memset_zero"); }
void cuda_stream_synchronize(void*) { no_cuda("cuda_stream_synchronize"); }

}  // namespace phydream
