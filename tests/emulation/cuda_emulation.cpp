// The emulated CUDA runtime and cuBLAS (cuda_runtime.h, cublas_v2.h in this folder): device
// memory from the host heap, synchronous copies, GEMM and GEMV by Eigen.
#include <Eigen/Core>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "cublas_v2.h"
#include "cuda_runtime.h"

namespace {

cudaError_t last_error = cudaSuccess;

cudaError_t fail(cudaError_t e) {
  last_error = e;
  return e;
}

struct StreamObject {
  unsigned flags = 0;
};

}  // namespace

// the fused kernels' barrier (training/mlp_fused.h's Team::sync), declared there without this
// folder's headers
void phydream_emulated_syncthreads() { __syncthreads(); }

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInsufficientDriver: return "insufficient driver";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
  }
  return "unknown error";
}

cudaError_t cudaGetLastError() {
  const cudaError_t e = last_error;
  last_error = cudaSuccess;
  return e;
}

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device != 0) return fail(cudaErrorInvalidValue);
  std::memset(prop, 0, sizeof(*prop));
  std::strncpy(prop->name, "CPU emulation of a CUDA device", sizeof(prop->name) - 1);
  prop->totalGlobalMem = std::size_t(80) << 30;
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = 4;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (device != 0) return fail(cudaErrorInvalidValue);
  switch (attr) {
    case cudaDevAttrMultiProcessorCount: *value = 4; return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = 227 * 1024; return cudaSuccess;
  }
  return fail(cudaErrorInvalidValue);
}

cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags) {
  *stream = reinterpret_cast<cudaStream_t>(new StreamObject{flags});
  return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  delete reinterpret_cast<StreamObject*>(stream);
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }

cudaError_t cudaLaunchHostFunc(cudaStream_t, cudaHostFn_t fn, void* data) {
  fn(data);
  return cudaSuccess;
}

cudaError_t cudaMallocAsync(void** ptr, std::size_t bytes, cudaStream_t) {
  // 256-byte aligned, as cudaMalloc's are
  *ptr = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
  return *ptr != nullptr ? cudaSuccess : fail(cudaErrorMemoryAllocation);
}

cudaError_t cudaFreeAsync(void* ptr, cudaStream_t) {
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind,
                            cudaStream_t) {
  if (bytes != 0) std::memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* ptr, int value, std::size_t bytes, cudaStream_t) {
  if (bytes != 0) std::memset(ptr, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** ptr, std::size_t bytes) { return cudaMallocAsync(ptr, bytes, nullptr); }

cudaError_t cudaFree(void* ptr) { return cudaFreeAsync(ptr, nullptr); }

cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind) {
  return cudaMemcpyAsync(dst, src, bytes, kind, nullptr);
}

cudaError_t cudaMemset(void* ptr, int value, std::size_t bytes) {
  return cudaMemsetAsync(ptr, value, bytes, nullptr);
}

// events: the host's steady clock at the record (every call has completed by then)
struct CUevent_st {
  std::chrono::steady_clock::time_point at{};
};

cudaError_t cudaEventCreate(cudaEvent_t* event) {
  *event = new CUevent_st;
  return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  delete event;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t) {
  event->at = std::chrono::steady_clock::now();
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  *ms = std::chrono::duration<float, std::milli>(end->at - start->at).count();
  return cudaSuccess;
}

// ---------------------------------------------------------------------------------------------
// cuBLAS

struct cublasContext {
  cudaStream_t stream = nullptr;
};

cublasStatus_t cublasCreate(cublasHandle_t* handle) {
  *handle = new cublasContext;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t handle) {
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetPointerMode(cublasHandle_t handle, cublasPointerMode_t mode) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  return mode == CUBLAS_POINTER_MODE_HOST ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t) {
  return handle != nullptr ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}

const char* cublasGetStatusName(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}

const char* cublasGetStatusString(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
  }
  return "unknown status";
}

namespace {

template <class S>
using Mat = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>;  // column-major, as cuBLAS
template <class S>
using ConstView = Eigen::Map<const Mat<S>, 0, Eigen::OuterStride<>>;
template <class S>
using View = Eigen::Map<Mat<S>, 0, Eigen::OuterStride<>>;

// C (m x n) = alpha op(A) op(B) + beta C, with op(A) (m x k) and op(B) (k x n)
template <class S>
cublasStatus_t gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                    int k, const S* alpha, const S* A, int lda, const S* B, int ldb, const S* beta,
                    S* C, int ldc) {
  if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  const int a_rows = ta == CUBLAS_OP_N ? m : k, b_rows = tb == CUBLAS_OP_N ? k : n;
  if (m < 0 || n < 0 || k < 0 || lda < std::max(1, a_rows) || ldb < std::max(1, b_rows) ||
      ldc < std::max(1, m)) {
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  View<S> c(C, m, n, Eigen::OuterStride<>(ldc));
  Mat<S> product = Mat<S>::Zero(m, n);
  if (k > 0) {
    const ConstView<S> a(A, a_rows, ta == CUBLAS_OP_N ? k : m, Eigen::OuterStride<>(lda));
    const ConstView<S> b(B, b_rows, tb == CUBLAS_OP_N ? n : k, Eigen::OuterStride<>(ldb));
    if (ta == CUBLAS_OP_N && tb == CUBLAS_OP_N) product.noalias() = a * b;
    if (ta == CUBLAS_OP_N && tb == CUBLAS_OP_T) product.noalias() = a * b.transpose();
    if (ta == CUBLAS_OP_T && tb == CUBLAS_OP_N) product.noalias() = a.transpose() * b;
    if (ta == CUBLAS_OP_T && tb == CUBLAS_OP_T) product.noalias() = a.transpose() * b.transpose();
  }
  if (*beta == S(0)) {
    c = *alpha * product;
  } else {
    c = *alpha * product + *beta * c;
  }
  return CUBLAS_STATUS_SUCCESS;
}

// y = alpha op(A) x + beta y, A (m x n)
template <class S>
cublasStatus_t gemv(cublasHandle_t h, cublasOperation_t trans, int m, int n, const S* alpha,
                    const S* A, int lda, const S* x, int incx, const S* beta, S* y, int incy) {
  if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (m < 0 || n < 0 || lda < std::max(1, m) || incx == 0 || incy == 0) {
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  const int nx = trans == CUBLAS_OP_N ? n : m, ny = trans == CUBLAS_OP_N ? m : n;
  if (ny == 0) return CUBLAS_STATUS_SUCCESS;
  using Vector = Eigen::Matrix<S, Eigen::Dynamic, 1>;
  Vector xv(nx), product = Vector::Zero(ny);
  for (int i = 0; i < nx; ++i) xv[i] = x[std::int64_t(i) * (incx > 0 ? incx : -incx)];
  if (nx > 0) {
    const ConstView<S> a(A, m, n, Eigen::OuterStride<>(lda));
    if (trans == CUBLAS_OP_N) {
      product.noalias() = a * xv;
    } else {
      product.noalias() = a.transpose() * xv;
    }
  }
  for (int i = 0; i < ny; ++i) {
    S& yi = y[std::int64_t(i) * (incy > 0 ? incy : -incy)];
    yi = *beta == S(0) ? *alpha * product[i] : *alpha * product[i] + *beta * yi;
  }
  return CUBLAS_STATUS_SUCCESS;
}

}  // namespace

cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                           int n, int k, const float* alpha, const float* A, int lda,
                           const float* B, int ldb, const float* beta, float* C, int ldc) {
  return gemm(h, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

cublasStatus_t cublasDgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                           int n, int k, const double* alpha, const double* A, int lda,
                           const double* B, int ldb, const double* beta, double* C, int ldc) {
  return gemm(h, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

cublasStatus_t cublasSgemv(cublasHandle_t h, cublasOperation_t trans, int m, int n,
                           const float* alpha, const float* A, int lda, const float* x, int incx,
                           const float* beta, float* y, int incy) {
  return gemv(h, trans, m, n, alpha, A, lda, x, incx, beta, y, incy);
}

cublasStatus_t cublasDgemv(cublasHandle_t h, cublasOperation_t trans, int m, int n,
                           const double* alpha, const double* A, int lda, const double* x, int incx,
                           const double* beta, double* y, int incy) {
  return gemv(h, trans, m, n, alpha, A, lda, x, incx, beta, y, incy);
}
