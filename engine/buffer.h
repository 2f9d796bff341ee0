// An owning array on a backend: host memory for the CPU backend, device memory for CUDA.
// For programs that hold their data on the host and want to run on either backend (the CLI,
// benchmarks, tests); an embedding program can pass its own pointers to Simulator instead.
#pragma once

#include <cstddef>
#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "engine/backend.h"

namespace phydream {

template <class Scalar>
class Buffer {
 public:
  /// `count` elements on `backend` (cpu or cuda), zero-initialised. `stream` orders the CUDA
  /// allocation, copies and release.
  Buffer(Backend backend, std::size_t count, void* stream = nullptr)
      : backend_(backend), count_(count), stream_(stream) {
    if (backend_ == Backend::cuda) {
      if (count_ > 0) {
        device_ = static_cast<Scalar*>(cuda_malloc(bytes(), stream_));
        cuda_memset_zero(device_, bytes(), stream_);
      }
    } else {
      host_.assign(count_, Scalar(0));
    }
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept { swap(o); }
  Buffer& operator=(Buffer&& o) noexcept {
    swap(o);
    return *this;
  }
  ~Buffer() {
    if (device_ != nullptr) {
      try {
        cuda_free(device_, stream_);
      } catch (...) {  // a destructor must not throw; the runtime reports the error again later
      }
    }
  }

  Scalar* data() { return backend_ == Backend::cuda ? device_ : host_.data(); }
  const Scalar* data() const { return backend_ == Backend::cuda ? device_ : host_.data(); }
  std::size_t size() const { return count_; }
  std::size_t bytes() const { return count_ * sizeof(Scalar); }

  /// Copies size() elements from host memory in.
  void upload(const Scalar* host) {
    if (count_ == 0) return;
    if (backend_ == Backend::cuda) {
      cuda_memcpy_to_device(device_, host, bytes(), stream_);
    } else {
      std::memcpy(host_.data(), host, bytes());
    }
  }
  /// Copies size() elements out to host memory (waits for the stream on CUDA).
  void download(Scalar* host) const {
    if (count_ == 0) return;
    if (backend_ == Backend::cuda) {
      cuda_memcpy_to_host(host, device_, bytes(), stream_);
    } else {
      std::memcpy(host, host_.data(), bytes());
    }
  }
  std::vector<Scalar> to_vector() const {
    std::vector<Scalar> v(count_);
    download(v.data());
    return v;
  }
  void zero() {
    if (backend_ == Backend::cuda) {
      if (count_ > 0) cuda_memset_zero(device_, bytes(), stream_);
    } else {
      std::fill(host_.begin(), host_.end(), Scalar(0));
    }
  }

 private:
  void swap(Buffer& o) noexcept {
    std::swap(backend_, o.backend_);
    std::swap(count_, o.count_);
    std::swap(stream_, o.stream_);
    std::swap(device_, o.device_);
    std::swap(host_, o.host_);
  }

  Backend backend_ = Backend::cpu;
  std::size_t count_ = 0;
  void* stream_ = nullptr;
  Scalar* device_ = nullptr;
  std::vector<Scalar> host_;
};

/// Copies n elements at `src` (memory of `backend`) to a host vector; waits for the stream.
template <class Scalar>
std::vector<Scalar> copy_to_host(Backend backend, const Scalar* src, std::size_t n,
                                 void* stream = nullptr) {
  std::vector<Scalar> v(n);
  if (n == 0) return v;
  if (backend == Backend::cuda) {
    cuda_memcpy_to_host(v.data(), src, n * sizeof(Scalar), stream);
  } else {
    std::memcpy(v.data(), src, n * sizeof(Scalar));
  }
  return v;
}

}  // namespace phydream
