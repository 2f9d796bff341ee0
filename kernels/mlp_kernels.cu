// The CUDA engines of the trainer (training/engine.h), float and double: the MLP (forward pass
// with the input Jacobian, loss head, hand-written backward with the double-backward curvature
// term) and the training pipeline's small kernels (sampling, picking states, assembling, Adam).
//
// CudaMlpEngine runs one of two kernel sets (MlpKernels in training/engine.h). The fused set,
// for small networks, is two kernels over tiles of samples whose per-tile work is
// training/mlp_fused.h (the CPU tests run the same functions): fused_forward_kernel (pred and
// jac), then the loss head below, then fused_backward_kernel, which recomputes the tile's
// forward pass in shared memory, runs the backward and double backward and leaves one partial
// gradient per block, summed in a fixed order by reduce_partials_kernel (deterministic).
//
// The GEMM set mirrors CpuMlp (training/mlp_cpu.cpp) step by step, on the same "augmented"
// batch: per sample one primal row followed by d = nx + nu tangent rows (r = 1 + d rows per
// sample; r = 1 without tangents), row-major, sample-major, R = N r rows in all. The GEMMs, and
// the bias gradients' sums as matrix-vector products with ones, go to cuBLAS; every other step
// is a small grid-stride kernel with one thread per (sample, column). The loss head, for both
// kernel sets, is kernels/loss_head.cuh: grid-wide reductions in double, each pass a partial
// kernel and a single-block finishing kernel (deterministic: the grid depends on the batch's
// size only), then an elementwise gradient kernel. Everything is queued on the engine's stream
// (cuBLAS is bound to it); nothing waits for the device except synchronize(), and loss terms
// stay on the device.
//
// cuBLAS is column-major. A row-major (rows, cols) matrix M with leading dimension cols is, read
// column-major with the same leading dimension, the matrix M^T (cols, rows). Every product below
// is therefore computed transposed, with C = op(A) op(B) in cuBLAS's terms:
//   forward   Z (R, out) = A_prev (R, in) W^T      <=>  Z^T = W A_prev^T
//             gemm(T, N, m = out, n = R, k = in, A = W, lda = in, B = A_prev, ldb = in,
//                  C = Z, ldc = out)       [W's memory read column-major is W^T (in, out)]
//   backward  dW (out, in) = G^T (out, R) A_prev  <=>  dW^T = A_prev^T G
//             gemm(N, T, m = in, n = out, k = R, A = A_prev, lda = in, B = G, ldb = out,
//                  C = dW, ldc = in)       [G's memory read column-major is G^T (out, R)]
//             G_A (R, in) = G (R, out) W (out, in)  <=>  G_A^T = W^T G^T
//             gemm(N, N, m = in, n = R, k = out, A = W, lda = in, B = G, ldb = out,
//                  C = G_A, ldc = in)
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/errors.h"
#include "kernels/check.cuh"
#include "kernels/loss_head.cuh"
#include "training/activation.h"
#include "training/adam.h"
#include "training/engine.h"
#include "training/mlp.h"
#include "training/mlp_fused.h"
#include "training/pipeline.h"

namespace phydream::training {
namespace {

// (kThreads, kReduceThreads, grid_for and the loss head: kernels/loss_head.cuh)

void check_cublas(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw BackendError(std::string(what) + " failed: " + cublasGetStatusName(status) + ": " +
                       cublasGetStatusString(status));
  }
}

// C = op(A) op(B), column-major, alpha = 1, beta = 0 (C is overwritten, never read)
void gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
          const float* A, int lda, const float* B, int ldb, float* C, int ldc) {
  const float one = 1.0f, zero = 0.0f;
  check_cublas(cublasSgemm(h, ta, tb, m, n, k, &one, A, lda, B, ldb, &zero, C, ldc),
               "cublasSgemm");
}
void gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
          const double* A, int lda, const double* B, int ldb, double* C, int ldc) {
  const double one = 1.0, zero = 0.0;
  check_cublas(cublasDgemm(h, ta, tb, m, n, k, &one, A, lda, B, ldb, &zero, C, ldc),
               "cublasDgemm");
}

// y = op(A) x, column-major, alpha = 1, beta = 0
void gemv(cublasHandle_t h, int m, int n, const float* A, int lda, const float* x, float* y) {
  const float one = 1.0f, zero = 0.0f;
  check_cublas(cublasSgemv(h, CUBLAS_OP_N, m, n, &one, A, lda, x, 1, &zero, y, 1), "cublasSgemv");
}
void gemv(cublasHandle_t h, int m, int n, const double* A, int lda, const double* x, double* y) {
  const double one = 1.0, zero = 0.0;
  check_cublas(cublasDgemv(h, CUBLAS_OP_N, m, n, &one, A, lda, x, 1, &zero, y, 1), "cublasDgemv");
}

// =============================================================================================
// the network's elementwise steps; A, Z, G are (R, width) row-major, row b r + j of sample b

// A0 (R, d): normalised inputs on primal rows; tangent row 1 + i of a sample is e_i / in_std_i
template <class S>
__global__ void input_rows_kernel(std::int64_t N, int r, int d, const double* __restrict__ in_mean,
                                  const double* __restrict__ in_std, const S* __restrict__ inputs,
                                  S* __restrict__ A0) {
  for (std::int64_t idx = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < N * r * d;
       idx += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t row = idx / d, b = row / r;
    const int j = static_cast<int>(idx % d), t = static_cast<int>(row % r);
    if (t == 0) {
      A0[idx] = static_cast<S>((inputs[b * d + j] - in_mean[j]) / in_std[j]);
    } else {
      A0[idx] = t - 1 == j ? static_cast<S>(1.0 / in_std[j]) : S(0);
    }
  }
}

// z += bias on the primal rows of Z (R, w)
template <class S>
__global__ void add_bias_kernel(std::int64_t N, int r, int w, const S* __restrict__ bias,
                                S* __restrict__ Z) {
  for (std::int64_t idx = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < N * w;
       idx += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t b = idx / w;
    const int c = static_cast<int>(idx % w);
    Z[b * r * w + c] += bias[c];
  }
}

// A (R, w) from Z: h = sigma(z) on primal rows, T = sigma'(z) Z' on tangent rows
template <class S>
__global__ void activation_kernel(Activation act, std::int64_t N, int r, int w,
                                  const S* __restrict__ Z, S* __restrict__ A) {
  for (std::int64_t idx = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < N * w;
       idx += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t b = idx / w;
    const int c = static_cast<int>(idx % w);
    const std::int64_t base = b * r * w + c;  // (row b r, column c)
    S f, d1, d2;
    activate(act, Z[base], &f, &d1, &d2);
    A[base] = f;
    for (int j = 1; j < r; ++j) A[base + j * w] = d1 * Z[base + j * w];
  }
}

// the output rows Y (R, k) -> pred (N, k) and, when jac is not null (then r = 1 + d), the
// Jacobian (N, k, d) (read_outputs in mlp_cpu.cpp)
template <class S>
__global__ void output_kernel(std::int64_t N, int r, int k, int d, bool residual,
                              const double* __restrict__ out_mean,
                              const double* __restrict__ out_std, const S* __restrict__ inputs,
                              const S* __restrict__ Y, S* __restrict__ pred, S* __restrict__ jac) {
  for (std::int64_t idx = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < N * k;
       idx += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t b = idx / k;
    const int i = static_cast<int>(idx % k);
    const double base = residual ? double(inputs[b * d + i]) : 0.0;
    pred[idx] = static_cast<S>(base + out_mean[i] + out_std[i] * double(Y[b * r * k + i]));
    if (jac == nullptr) continue;
    for (int j = 0; j < d; ++j) {
      const double identity = (residual && i == j) ? 1.0 : 0.0;
      jac[idx * d + j] =
          static_cast<S>(out_std[i] * double(Y[(b * r + 1 + j) * k + i]) + identity);
    }
  }
}

// G (R, k), the gradient w.r.t. the output rows: out_std g_pred on primal rows, out_std g_jac on
// tangent rows (g_jac is read only when r > 1)
template <class S>
__global__ void output_grad_kernel(std::int64_t N, int r, int k, int d,
                                   const double* __restrict__ out_std,
                                   const S* __restrict__ g_pred, const S* __restrict__ g_jac,
                                   S* __restrict__ G) {
  for (std::int64_t idx = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < N * k;
       idx += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t b = idx / k;
    const int i = static_cast<int>(idx % k);
    G[b * r * k + i] = static_cast<S>(out_std[i] * g_pred[idx]);
    for (int j = 0; j < r - 1; ++j) {
      G[(b * r + 1 + j) * k + i] = static_cast<S>(out_std[i] * g_jac[idx * d + j]);
    }
  }
}

// v (n) = 1, the vector the bias gradients' products sum with
template <class S>
__global__ void ones_kernel(std::int64_t n, S* __restrict__ v) {
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    v[i] = S(1);
  }
}

// G (R, w) for the output of a hidden layer, from G_A (R, w) and that layer's Z (R, w):
//   primal row:   G_z  = sigma'(z) G_h + sigma''(z) sum_j (G_T_j * Z'_j)
//   tangent row:  G_Z'_j = sigma'(z) G_T_j
template <class S>
__global__ void activation_grad_kernel(Activation act, std::int64_t N, int r, int w,
                                       const S* __restrict__ Z, const S* __restrict__ GA,
                                       S* __restrict__ G) {
  for (std::int64_t idx = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < N * w;
       idx += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t b = idx / w;
    const int c = static_cast<int>(idx % w);
    const std::int64_t base = b * r * w + c;  // (row b r, column c)
    S f, d1, d2;
    activate(act, Z[base], &f, &d1, &d2);
    S curvature = S(0);  // sum_j G_T_j Z'_j: how J moves with z through sigma'
    for (int j = 1; j < r; ++j) {
      curvature += GA[base + j * w] * Z[base + j * w];
      G[base + j * w] = d1 * GA[base + j * w];
    }
    G[base] = d1 * GA[base] + d2 * curvature;
  }
}

// =============================================================================================
// the fused kernels (training/mlp_fused.h): one block per tile of samples at a time, grid-stride
// over the tiles; the weights are loaded into shared memory once per block

constexpr int kFusedThreads = 256;     // threads per block
constexpr int kFusedTargetRows = 128;  // rows (samples x (1 + d)) per tile, when they fit

template <class S>
__device__ S* fused_shared() {
#if defined(PHYDREAM_CUDA_EMULATION)
  return static_cast<S*>(::phydream::emulation::dynamic_shared());
#else
  extern __shared__ __align__(16) unsigned char fused_smem[];
  return reinterpret_cast<S*>(fused_smem);
#endif
}

// pred (N, k) and, when jac is not null (lay.r = 1 + d), jac (N, k, d)
template <class S>
__global__ void __launch_bounds__(kFusedThreads)
    fused_forward_kernel(FusedNet net, FusedLayout lay, std::int64_t N, const S* __restrict__ theta,
                         const S* __restrict__ inputs, S* __restrict__ pred, S* __restrict__ jac) {
  S* sh = fused_shared<S>();
  const Team team{static_cast<int>(threadIdx.x), static_cast<int>(blockDim.x)};
  fused_load(net, lay, theta, false, sh, team);
  const int d = net.d(), k = net.k();
  const std::int64_t tiles = (N + lay.ts - 1) / lay.ts;
  for (std::int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {  // uniform per block
    const std::int64_t s0 = tile * lay.ts;
    const int ns = static_cast<int>(N - s0 < lay.ts ? N - s0 : lay.ts);
    fused_tile_forward(net, lay, ns, inputs + s0 * d, true, sh, team);
    fused_tile_outputs(net, lay, ns, inputs + s0 * d, pred + s0 * k,
                       jac != nullptr ? jac + s0 * k * d : nullptr, sh, team);
  }
}

// partials (gridDim.x, P): each block's gradient over its tiles, from the loss gradient w.r.t.
// the predictions g_pred (N, k) and, with tangents, the Jacobians g_jac (N, k, d)
template <class S>
__global__ void __launch_bounds__(kFusedThreads)
    fused_backward_kernel(FusedNet net, FusedLayout lay, std::int64_t N,
                          const S* __restrict__ theta, const S* __restrict__ inputs,
                          const S* __restrict__ g_pred, const S* __restrict__ g_jac,
                          S* __restrict__ partials) {
  S* sh = fused_shared<S>();
  const Team team{static_cast<int>(threadIdx.x), static_cast<int>(blockDim.x)};
  fused_load(net, lay, theta, true, sh, team);
  const int d = net.d(), k = net.k();
  const std::int64_t tiles = (N + lay.ts - 1) / lay.ts;
  for (std::int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const std::int64_t s0 = tile * lay.ts;
    const int ns = static_cast<int>(N - s0 < lay.ts ? N - s0 : lay.ts);
    fused_tile_forward(net, lay, ns, inputs + s0 * d, false, sh, team);
    fused_tile_backward(net, lay, ns, g_pred + s0 * k,
                        lay.r > 1 ? g_jac + s0 * k * d : nullptr, sh, team);
  }
  S* out = partials + std::int64_t(blockIdx.x) * net.P;
  for (std::int64_t p = threadIdx.x; p < net.P; p += blockDim.x) out[p] = sh[lay.grad + p];
}

// grad (P) = the sum over blocks of partials (blocks, P), in block order, in double
template <class S>
__global__ void reduce_partials_kernel(std::int64_t P, int blocks, const S* __restrict__ partials,
                                       S* __restrict__ grad) {
  for (std::int64_t p = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; p < P;
       p += std::int64_t(gridDim.x) * blockDim.x) {
    double acc = 0;
    for (int b = 0; b < blocks; ++b) acc += double(partials[std::int64_t(b) * P + p]);
    grad[p] = static_cast<S>(acc);
  }
}

// =============================================================================================
// the MLP engine

// bump allocation with 256-byte alignment over `base` (nullptr: only measure the bytes)
struct Carver {
  char* base = nullptr;
  std::size_t used = 0;
  template <class T>
  T* take(std::int64_t count) {
    used = (used + 255) / 256 * 256;
    T* p = base != nullptr ? reinterpret_cast<T*>(base + used) : nullptr;
    used += sizeof(T) * static_cast<std::size_t>(count);
    return p;
  }
};

template <class S>
class CudaMlpEngine final : public MlpEngine<S> {
 public:
  CudaMlpEngine(const MlpSpec& spec, const LossConfig& loss, void* stream, MlpKernels kernels)
      : spec_(spec), loss_(loss), stream_(static_cast<cudaStream_t>(stream)) {
    spec_.validate();
    loss_.validate(spec_.nx, spec_.nu);
    try {
      check_cublas(cublasCreate(&blas_), "cublasCreate");
      check_cublas(cublasSetStream(blas_, stream_), "cublasSetStream");
      check_cublas(cublasSetPointerMode(blas_, CUBLAS_POINTER_MODE_HOST), "cublasSetPointerMode");
      // products at S's full precision (the default, stated): no TF32 for float
      check_cublas(cublasSetMathMode(blas_, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
      upload_constants();
      plan_fused(kernels);
    } catch (...) {
      release();
      throw;
    }
  }
  CudaMlpEngine(const CudaMlpEngine&) = delete;
  CudaMlpEngine& operator=(const CudaMlpEngine&) = delete;
  ~CudaMlpEngine() override { release(); }

  void forward(std::int64_t N, const S* theta, const S* inputs, S* pred, S* jac) override {
    if (N < 0) throw InputError("CudaMlpEngine::forward: N must be >= 0");
    if (N == 0) return;
    if (fused_) {
      fused_forward(N, theta, inputs, pred, jac);
      return;
    }
    const int r = jac != nullptr ? 1 + spec_.n_in() : 1;
    const Work w = reserve(N, r, false);
    run_forward(N, r, theta, inputs, w);
    read_outputs(N, r, inputs, w.A[spec_.num_layers()], pred, jac);
  }

  void loss_and_grad(std::int64_t N, const S* theta, const S* inputs, const S* targets,
                     const S* target_jac, S* grad, double* terms) override {
    if (N < 0) throw InputError("CudaMlpEngine::loss_and_grad: N must be >= 0");
    const bool tangents = loss_.uses_jacobian();
    if (tangents && target_jac == nullptr && N > 0) {
      throw InputError(
          "CudaMlpEngine::loss_and_grad: the loss has a JAL term but target_jac is null");
    }
    if (N == 0) {
      cuda_memset_zero(grad, sizeof(S) * spec_.num_params(), stream_);
      cuda_memset_zero(terms, 3 * sizeof(double), stream_);
      return;
    }
    const int k = spec_.n_out(), d = spec_.n_in(), L = spec_.num_layers();
    const int r = tangents ? 1 + d : 1;
    const Work w = reserve(N, r, true);
    if (fused_) {
      fused_forward(N, theta, inputs, w.pred, tangents ? w.jac : nullptr);
    } else {
      run_forward(N, r, theta, inputs, w);
      read_outputs(N, r, inputs, w.A[L], w.pred, tangents ? w.jac : nullptr);
    }

    // the loss head: batch statistics (a few passes over the grid), then the elementwise gradient
    const LossParams p = loss_params(loss_, N, k, d, jac_std());
    const S* jac = tangents ? w.jac : nullptr;
    const auto launch = [this](const char* what, unsigned grid, int block, auto kernel,
                               auto... args) {
      PHYDREAM_LAUNCH(grid, block, 0, stream_, kernel)(args...);
      check_launch(what);
    };
    run_loss_head<S>(p, w.pred, targets, jac, target_jac, w.norms, w.stats, w.loss_partials, terms,
                     w.g_pred, w.g_jac, launch);

    if (fused_) {
      const std::int64_t tiles = (N + bwd_.lay.ts - 1) / bwd_.lay.ts;
      const int grid = static_cast<int>(std::min<std::int64_t>(tiles, bwd_.blocks));
      PHYDREAM_LAUNCH(grid, kFusedThreads, bwd_.bytes, stream_, fused_backward_kernel<S>)
      (net_, bwd_.lay, N, theta, inputs, w.g_pred, w.g_jac, w.partials);
      check_launch("fused_backward_kernel");
      const std::int64_t P = static_cast<std::int64_t>(spec_.num_params());
      PHYDREAM_LAUNCH(grid_for(P, kThreads), kThreads, 0, stream_, reduce_partials_kernel<S>)
      (P, grid, w.partials, grad);
      check_launch("reduce_partials_kernel");
      return;
    }

    const S* ones = ones_for(N);
    // the gradient w.r.t. the output rows: y enters pred and the tangent rows enter J
    PHYDREAM_LAUNCH(grid_for(N * k, kThreads), kThreads, 0, stream_, output_grad_kernel<S>)
    (N, r, k, d, out_std(), w.g_pred, w.g_jac, w.G);
    check_launch("output_grad_kernel");

    // backward through the layers; G holds the gradient w.r.t. layer l's output rows
    const int R = static_cast<int>(N * r);  // reserve() checked that it fits an int
    for (int l = L - 1; l >= 0; --l) {
      const int out = spec_.layer_out(l), in = spec_.layer_in(l);
      const S* W = theta + spec_.weight_offset(l);
      // dW (out, in) = G^T A_l  (see the GEMM note at the top)
      gemm(blas_, CUBLAS_OP_N, CUBLAS_OP_T, in, out, R, w.A[l], in, w.G, out,
           grad + spec_.weight_offset(l), in);
      // db (out) = the sum of G's primal rows: read column-major with leading dimension r out,
      // they are the columns of an (out, N) matrix, times ones (N)
      gemv(blas_, out, static_cast<int>(N), w.G, r * out, ones, grad + spec_.bias_offset(l));
      if (l == 0) break;
      // G_A (R, in) = G W, then through the activation of layer l - 1 into G (R, in)
      gemm(blas_, CUBLAS_OP_N, CUBLAS_OP_N, in, R, out, W, in, w.G, out, w.GA, in);
      PHYDREAM_LAUNCH(grid_for(N * in, kThreads), kThreads, 0, stream_, activation_grad_kernel<S>)
      (spec_.activation, N, r, in, w.Z[l - 1], w.GA, w.G);
      check_launch("activation_grad_kernel");
    }
  }

  void synchronize() override {
    check_cuda(cudaStreamSynchronize(stream_), "CudaMlpEngine::synchronize");
  }

  const char* kernels() const override { return fused_ ? "fused" : "gemm"; }

 private:
  // one launch shape of a fused kernel
  struct FusedPlan {
    FusedLayout lay;
    std::size_t bytes = 0;  // dynamic shared memory per block
    int blocks = 1;         // blocks resident on the whole device at once: the grid's cap
  };

  // the layout of the largest tile (up to kFusedTargetRows rows) that leaves room for two
  // blocks per multiprocessor (limit / 2 bytes each), else of one sample if that fits `limit`;
  // false when not even one sample does
  bool fit_tile(bool tangents, bool backward, std::size_t limit, FusedPlan* plan) const {
    const int r = tangents ? 1 + spec_.n_in() : 1;
    for (int ts = std::max(1, kFusedTargetRows / r);; ts = ts / 2) {
      plan->lay = fused_layout(net_, ts, tangents, backward);
      plan->bytes = sizeof(S) * static_cast<std::size_t>(plan->lay.total);
      if (plan->bytes <= limit / 2) return true;
      if (ts == 1) return plan->bytes <= limit;
    }
  }

  // decides between the fused and the GEMM kernels (see MlpKernels) and sizes the fused ones
  void plan_fused(MlpKernels kernels) {
    if (kernels == MlpKernels::gemm) return;
    std::string why;  // why the fused kernels cannot run this network
    int dev = 0, limit = 0, sms = 1;
    check_cuda(cudaGetDevice(&dev), "cudaGetDevice");
    check_cuda(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev),
               "cudaDeviceGetAttribute");
    check_cuda(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev),
               "cudaDeviceGetAttribute");
    if (!fused_depth_ok(spec_)) {
      why = "the network has " + std::to_string(spec_.num_layers()) + " layers, more than " +
            std::to_string(kFusedMaxLayers);
    } else {
      net_ = fused_net(spec_, consts_);
      const bool jal = loss_.uses_jacobian();
      const std::size_t lim = static_cast<std::size_t>(limit);
      if (!fit_tile(false, false, lim, &fwd_[0]) || !fit_tile(true, false, lim, &fwd_[1]) ||
          !fit_tile(jal, true, lim, &bwd_)) {
        why = "one sample's tile needs more shared memory than the device's " +
              std::to_string(limit) + " bytes per block";
      }
    }
    if (!why.empty()) {
      if (kernels == MlpKernels::fused) {
        throw InputError("MLP kernels 'fused': " + why + "; use 'gemm' or 'auto'");
      }
      return;
    }
    if (kernels == MlpKernels::automatic && spec_.max_width() > kFusedAutoMaxWidth) return;
    // the kernels may use up to the device's opt-in limit (set once to the limit, so engines
    // of different sizes never lower it under each other)
    check_cuda(cudaFuncSetAttribute(fused_forward_kernel<S>,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize, limit),
               "cudaFuncSetAttribute");
    check_cuda(cudaFuncSetAttribute(fused_backward_kernel<S>,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize, limit),
               "cudaFuncSetAttribute");
    auto resident = [&](auto kernel, FusedPlan* plan) {
      int per_sm = 0;
      check_cuda(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kFusedThreads,
                                                               plan->bytes),
                 "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
      plan->blocks = std::max(1, per_sm) * sms;
    };
    resident(fused_forward_kernel<S>, &fwd_[0]);
    resident(fused_forward_kernel<S>, &fwd_[1]);
    resident(fused_backward_kernel<S>, &bwd_);
    fused_ = true;
  }

  void fused_forward(std::int64_t N, const S* theta, const S* inputs, S* pred, S* jac) {
    const FusedPlan& p = fwd_[jac != nullptr ? 1 : 0];
    const std::int64_t tiles = (N + p.lay.ts - 1) / p.lay.ts;
    const int grid = static_cast<int>(std::min<std::int64_t>(tiles, p.blocks));
    PHYDREAM_LAUNCH(grid, kFusedThreads, p.bytes, stream_, fused_forward_kernel<S>)
    (net_, p.lay, N, theta, inputs, pred, jac);
    check_launch("fused_forward_kernel");
  }

  // the per-batch device buffers, carved from one allocation that grows on demand
  struct Work {
    std::vector<S*> A;  // A[0] (R, d); A[l + 1] (R, layer_out(l)), l = 0 .. L - 1 (A[L]: output)
    std::vector<S*> Z;  // Z[l] (R, layer_out(l)): pre-activations of hidden layer l
    // loss_and_grad only:
    S* pred = nullptr;    // (N, k)
    S* jac = nullptr;     // (N, k, d) with tangents
    S* g_pred = nullptr;  // (N, k)
    S* g_jac = nullptr;   // (N, k, d) with tangents
    S* G = nullptr;       // (R, max_width)
    S* GA = nullptr;      // (R, max_width)
    double* norms = nullptr;     // (N)
    LossStats* stats = nullptr;  // (1)
    LossPartial<S>* loss_partials = nullptr;  // (kLossBlocks)
    S* partials = nullptr;       // fused: (bwd_.blocks, P)
  };

  Work layout(char* base, std::int64_t N, int r, bool loss, std::size_t* bytes) const {
    const int L = spec_.num_layers(), k = spec_.n_out(), d = spec_.n_in();
    const std::int64_t R = N * r;
    Carver c{base, 0};
    Work w;
    if (!fused_) {  // the fused kernels keep the layers' rows in shared memory
      w.A.push_back(c.take<S>(R * d));
      for (int l = 0; l < L; ++l) {
        if (l < L - 1) w.Z.push_back(c.take<S>(R * spec_.layer_out(l)));
        w.A.push_back(c.take<S>(R * spec_.layer_out(l)));
      }
    }
    if (loss) {
      const std::int64_t jac_size = r > 1 ? N * k * d : 0;
      w.pred = c.take<S>(N * k);
      w.jac = c.take<S>(jac_size);
      w.g_pred = c.take<S>(N * k);
      w.g_jac = c.take<S>(jac_size);
      if (!fused_) {
        w.G = c.take<S>(R * spec_.max_width());
        w.GA = c.take<S>(R * spec_.max_width());
      }
      w.norms = c.take<double>(N);
      w.stats = c.take<LossStats>(1);
      w.loss_partials = c.take<LossPartial<S>>(kLossBlocks);
      if (fused_) {
        w.partials = c.take<S>(std::int64_t(bwd_.blocks) * std::int64_t(spec_.num_params()));
      }
    }
    *bytes = c.used;
    return w;
  }

  // a vector of at least N ones (the bias gradients' gemv), kept between calls and refilled only
  // when it grows
  const S* ones_for(std::int64_t N) {
    if (N > ones_capacity_) {
      cuda_free(ones_, stream_);
      ones_ = nullptr;
      ones_capacity_ = 0;
      ones_ = static_cast<S*>(cuda_malloc(sizeof(S) * N, stream_));
      ones_capacity_ = N;
      PHYDREAM_LAUNCH(grid_for(N, kThreads), kThreads, 0, stream_, ones_kernel<S>)(N, ones_);
      check_launch("ones_kernel");
    }
    return ones_;
  }

  // the buffers for N samples of r rows, growing the allocation when needed (stream-ordered:
  // the old allocation is released after the work already queued on the stream)
  Work reserve(std::int64_t N, int r, bool loss) {
    if (!fused_ && N * r > std::numeric_limits<int>::max()) {
      throw InputError("CUDA MLP: N (1 + nx + nu) = " + std::to_string(N * r) +
                       " rows exceed cuBLAS's int range; split the batch");
    }
    std::size_t bytes = 0;
    layout(nullptr, N, r, loss, &bytes);
    if (bytes > work_bytes_) {
      cuda_free(work_, stream_);
      work_ = nullptr;
      work_bytes_ = 0;
      try {
        work_ = static_cast<char*>(cuda_malloc(bytes, stream_));
      } catch (const BackendError& e) {
        throw BackendError("CUDA MLP: the " + std::string(fused_ ? "fused" : "GEMM") +
                           " kernels' buffers for a batch of " + std::to_string(N) + " samples need " +
                           std::to_string(bytes >> 20) + " MiB (" + e.what() +
                           "); use a smaller train.batch" +
                           (fused_ ? std::string() : std::string(" or narrower layers")));
      }
      work_bytes_ = bytes;
    }
    return layout(work_, N, r, loss, &bytes);
  }

  // A[0 .. L] and Z for the batch, with tangent rows when r > 1 (run_forward in mlp_cpu.cpp)
  void run_forward(std::int64_t N, int r, const S* theta, const S* inputs, const Work& w) {
    const int d = spec_.n_in(), L = spec_.num_layers();
    const int R = static_cast<int>(N * r);  // reserve() checked that it fits an int
    PHYDREAM_LAUNCH(grid_for(std::int64_t(R) * d, kThreads), kThreads, 0, stream_,
                    input_rows_kernel<S>)
    (N, r, d, in_mean(), in_std(), inputs, w.A[0]);
    check_launch("input_rows_kernel");
    for (int l = 0; l < L; ++l) {
      const int out = spec_.layer_out(l), in = spec_.layer_in(l);
      const S* W = theta + spec_.weight_offset(l);
      S* z = l < L - 1 ? w.Z[l] : w.A[L];
      // Z (R, out) = A_l W^T for primal and tangent rows at once (see the GEMM note at the top)
      gemm(blas_, CUBLAS_OP_T, CUBLAS_OP_N, out, R, in, W, in, w.A[l], in, z, out);
      PHYDREAM_LAUNCH(grid_for(N * out, kThreads), kThreads, 0, stream_, add_bias_kernel<S>)
      (N, r, out, theta + spec_.bias_offset(l), z);
      check_launch("add_bias_kernel");
      if (l == L - 1) break;
      PHYDREAM_LAUNCH(grid_for(N * out, kThreads), kThreads, 0, stream_, activation_kernel<S>)
      (spec_.activation, N, r, out, z, w.A[l + 1]);
      check_launch("activation_kernel");
    }
  }

  void read_outputs(std::int64_t N, int r, const S* inputs, const S* Y, S* pred, S* jac) {
    const int k = spec_.n_out(), d = spec_.n_in();
    PHYDREAM_LAUNCH(grid_for(N * k, kThreads), kThreads, 0, stream_, output_kernel<S>)
    (N, r, k, d, spec_.residual, out_mean(), out_std(), inputs, Y, pred, jac);
    check_launch("output_kernel");
  }

  // the fixed statistics, one device array: in_mean (d), in_std (d), out_mean (k), out_std (k),
  // jac_std (k d, scaling std only)
  void upload_constants() {
    std::vector<double> host;
    host.insert(host.end(), spec_.in_mean.begin(), spec_.in_mean.end());
    host.insert(host.end(), spec_.in_std.begin(), spec_.in_std.end());
    host.insert(host.end(), spec_.out_mean.begin(), spec_.out_mean.end());
    host.insert(host.end(), spec_.out_std.begin(), spec_.out_std.end());
    if (loss_.scaling == JacScaling::std) {
      host.insert(host.end(), loss_.jac_std.begin(), loss_.jac_std.end());
    }
    consts_ = static_cast<double*>(cuda_malloc(sizeof(double) * host.size(), stream_));
    cuda_memcpy_to_device(consts_, host.data(), sizeof(double) * host.size(), stream_);
  }
  const double* in_mean() const { return consts_; }
  const double* in_std() const { return consts_ + spec_.n_in(); }
  const double* out_mean() const { return consts_ + 2 * spec_.n_in(); }
  const double* out_std() const { return consts_ + 2 * spec_.n_in() + spec_.n_out(); }
  const double* jac_std() const {
    return loss_.scaling == JacScaling::std ? consts_ + 2 * (spec_.n_in() + spec_.n_out())
                                            : nullptr;
  }

  // frees everything (stream-ordered), never throws
  void release() noexcept {
    try {
      cuda_free(work_, stream_);
    } catch (...) {  // a destructor must not throw; the runtime reports the error again later
    }
    try {
      cuda_free(consts_, stream_);
    } catch (...) {
    }
    try {
      cuda_free(ones_, stream_);
    } catch (...) {
    }
    work_ = nullptr;
    consts_ = nullptr;
    ones_ = nullptr;
    ones_capacity_ = 0;
    work_bytes_ = 0;
    if (blas_ != nullptr) cublasDestroy(blas_);
    blas_ = nullptr;
  }

  MlpSpec spec_;
  LossConfig loss_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  double* consts_ = nullptr;
  char* work_ = nullptr;
  std::size_t work_bytes_ = 0;
  S* ones_ = nullptr;  // (ones_capacity_) ones, ones_for()
  std::int64_t ones_capacity_ = 0;
  bool fused_ = false;  // the fused kernels run (plan_fused)
  FusedNet net_;
  FusedPlan fwd_[2];    // fused_forward_kernel without, with tangents
  FusedPlan bwd_;       // fused_backward_kernel, tangents when the loss has a JAL term
};

// =============================================================================================
// the pipeline's kernels: one thread per element (or sample), calling the functions the CPU
// loops of CpuTrainOps call, so both backends compute the same values

template <class S>
__global__ void sample_uniform_kernel(std::int64_t N, std::uint64_t seed, std::uint64_t rng_stream,
                                      const S* __restrict__ lo, const S* __restrict__ hi,
                                      int width, S* __restrict__ out) {
  for (std::int64_t idx = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < N * width;
       idx += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t b = idx / width;
    const int c = static_cast<int>(idx % width);
    out[idx] = sample_entry<S>(seed, rng_stream, b, c, width, lo[c], hi[c]);
  }
}

template <class S>
__global__ void pick_states_kernel(std::int64_t N, std::int64_t T, int nx, std::uint64_t seed,
                                   std::uint64_t rng_stream, const S* __restrict__ lo,
                                   const S* __restrict__ hi, const S* __restrict__ states,
                                   S* __restrict__ x) {
  for (std::int64_t b = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; b < N;
       b += std::int64_t(gridDim.x) * blockDim.x) {
    pick_state<S>(b, T, nx, seed, rng_stream, lo, hi, states, x);
  }
}

template <class S>
__global__ void assemble_kernel(std::int64_t N, int nx, int nu, const S* __restrict__ x,
                                const S* __restrict__ u, const S* __restrict__ jac_x,
                                const S* __restrict__ jac_u, S* __restrict__ inputs,
                                S* __restrict__ target_jac) {
  for (std::int64_t b = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; b < N;
       b += std::int64_t(gridDim.x) * blockDim.x) {
    assemble_row<S>(b, nx, nu, x, u, jac_x, jac_u, inputs, target_jac);
  }
}

template <class S>
__global__ void adam_kernel(std::int64_t P, AdamStep step, S* __restrict__ theta,
                            S* __restrict__ m, S* __restrict__ v, const S* __restrict__ grad) {
  for (std::int64_t p = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; p < P;
       p += std::int64_t(gridDim.x) * blockDim.x) {
    adam_update(step, theta + p, m + p, v + p, grad[p]);
  }
}

// counts[f] += #(flags == f), f = 0, 1, 2: per block in shared memory, then 3 global atomics
__global__ void count_flags_kernel(std::int64_t N, const std::uint8_t* __restrict__ flags,
                                   unsigned long long* __restrict__ counts) {
  __shared__ unsigned long long local[3];
  if (threadIdx.x < 3) local[threadIdx.x] = 0;
  __syncthreads();
  for (std::int64_t b = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; b < N;
       b += std::int64_t(gridDim.x) * blockDim.x) {
    atomicAdd(&local[flags[b] < 2 ? flags[b] : 2], 1ULL);
  }
  __syncthreads();
  if (threadIdx.x < 3 && local[threadIdx.x] != 0) atomicAdd(&counts[threadIdx.x], local[threadIdx.x]);
}

template <class S>
class CudaTrainOps final : public TrainOps<S> {
 public:
  explicit CudaTrainOps(void* stream) : stream_(static_cast<cudaStream_t>(stream)) {}

  void sample_uniform(std::int64_t N, std::uint64_t seed, std::uint64_t stream, SampleBox<S> box,
                      S* out) override {
    if (N <= 0 || box.width <= 0) return;
    PHYDREAM_LAUNCH(grid_for(N * box.width, kThreads), kThreads, 0, stream_,
                    sample_uniform_kernel<S>)
    (N, seed, stream, box.lo, box.hi, box.width, out);
    check_launch("sample_uniform_kernel");
  }
  void pick_states(std::int64_t N, std::int64_t T, std::uint64_t seed, std::uint64_t stream,
                   SampleBox<S> box, const S* states, S* x) override {
    if (N <= 0) return;
    PHYDREAM_LAUNCH(grid_for(N, kThreads), kThreads, 0, stream_, pick_states_kernel<S>)
    (N, T, box.width, seed, stream, box.lo, box.hi, states, x);
    check_launch("pick_states_kernel");
  }
  void assemble(std::int64_t N, int nx, int nu, const S* x, const S* u, const S* jac_x,
                const S* jac_u, S* inputs, S* target_jac) override {
    if (N <= 0) return;
    PHYDREAM_LAUNCH(grid_for(N, kThreads), kThreads, 0, stream_, assemble_kernel<S>)
    (N, nx, nu, x, u, jac_x, jac_u, inputs, target_jac);
    check_launch("assemble_kernel");
  }
  void adam(std::int64_t P, const AdamStep& step, S* theta, S* m, S* v, const S* grad) override {
    if (P <= 0) return;
    PHYDREAM_LAUNCH(grid_for(P, kThreads), kThreads, 0, stream_, adam_kernel<S>)
    (P, step, theta, m, v, grad);
    check_launch("adam_kernel");
  }
  void count_flags(std::int64_t N, const std::uint8_t* flags, unsigned long long* counts) override {
    if (N <= 0) return;
    PHYDREAM_LAUNCH(grid_for(N, kThreads), kThreads, 0, stream_, count_flags_kernel)
    (N, flags, counts);
    check_launch("count_flags_kernel");
  }
  void synchronize() override {
    check_cuda(cudaStreamSynchronize(stream_), "CudaTrainOps::synchronize");
  }

 private:
  cudaStream_t stream_ = nullptr;
};

}  // namespace

template <class S>
std::unique_ptr<MlpEngine<S>> make_cuda_mlp_engine(const MlpSpec& spec, const LossConfig& loss,
                                                   void* stream, MlpKernels kernels) {
  return std::make_unique<CudaMlpEngine<S>>(spec, loss, stream, kernels);
}

template <class S>
std::unique_ptr<TrainOps<S>> make_cuda_train_ops(void* stream) {
  return std::make_unique<CudaTrainOps<S>>(stream);
}

template std::unique_ptr<MlpEngine<float>> make_cuda_mlp_engine<float>(const MlpSpec&,
                                                                       const LossConfig&, void*,
                                                                       MlpKernels);
template std::unique_ptr<MlpEngine<double>> make_cuda_mlp_engine<double>(const MlpSpec&,
                                                                         const LossConfig&, void*,
                                                                         MlpKernels);
template std::unique_ptr<TrainOps<float>> make_cuda_train_ops<float>(void*);
template std::unique_ptr<TrainOps<double>> make_cuda_train_ops<double>(void*);

}  // namespace phydream::training
