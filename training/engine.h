// The trainer's batched computations, on one backend: the MLP (MlpEngine) and the pipeline's
// small kernels (TrainOps: sampling, assembling the engine's outputs, Adam). The CPU versions are
// in training/cpu_engine.h, the CUDA versions in kernels/mlp_kernels.cu. Pointers live where the
// backend runs; nothing here waits for the device except synchronize().
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "engine/backend.h"
#include "training/adam.h"
#include "training/mlp.h"

namespace phydream::training {

/// Which kernels run the MLP on the CUDA backend:
///   automatic  fused when every layer is at most kFusedAutoMaxWidth wide, the network at most
///              kFusedMaxLayers deep and its tiles fit a block's shared memory; else gemm
///   fused      one thread block per tile of samples through the whole network, forward and
///              backward (training/mlp_fused.h); an InputError when the network does not fit
///   gemm       cuBLAS GEMMs over the batch's primal and tangent rows, elementwise kernels
///              between them
/// The CPU backend runs Eigen's GEMMs whatever is asked (its engine reports "eigen").
enum class MlpKernels : int { automatic = 0, fused = 1, gemm = 2 };
constexpr int kFusedAutoMaxWidth = 64;

/// auto | fused | gemm
const char* mlp_kernels_name(MlpKernels k);
/// Parses auto | fused | gemm; InputError naming the accepted values.
MlpKernels parse_mlp_kernels(const std::string& name);

template <class S>
class MlpEngine {
 public:
  virtual ~MlpEngine() = default;
  /// pred (N, nx) and, when jac is not null, the input Jacobian (N, nx, nx + nu).
  virtual void forward(std::int64_t N, const S* theta, const S* inputs, S* pred, S* jac) = 0;
  /// grad (num_params) overwritten with dL/dtheta; terms[0..2] = total, mse, jal (double,
  /// backend memory) overwritten. target_jac may be null when the loss has no JAL term.
  virtual void loss_and_grad(std::int64_t N, const S* theta, const S* inputs, const S* targets,
                             const S* target_jac, S* grad, double* terms) = 0;
  virtual void synchronize() = 0;
  /// The kernels that run: "eigen" (CPU), "fused" or "gemm" (CUDA).
  virtual const char* kernels() const = 0;
};

/// Where sampled values come from: uniform in [lo, hi] per column.
template <class S>
struct SampleBox {
  const S* lo = nullptr;  // (width), backend memory
  const S* hi = nullptr;
  int width = 0;
};

template <class S>
class TrainOps {
 public:
  virtual ~TrainOps() = default;
  /// out (N, box.width): uniform draws, out[b, c] from uniform01(seed, stream, b * width + c).
  virtual void sample_uniform(std::int64_t N, std::uint64_t seed, std::uint64_t stream,
                              SampleBox<S> box, S* out) = 0;
  /// For each b a step t in [0, T] drawn from (seed, stream, b); x[b] = states[b, t] when that
  /// state is finite and inside [lo - span, hi + span] (span = hi - lo per column), else
  /// states[b, 0]. states: (N, T + 1, nx), x: (N, nx).
  virtual void pick_states(std::int64_t N, std::int64_t T, std::uint64_t seed,
                           std::uint64_t stream, SampleBox<S> box, const S* states, S* x) = 0;
  /// inputs (N, nx + nu) = [x, u]; target_jac (N, nx, nx + nu) = [jac_x | jac_u] row by row
  /// (skipped when target_jac is null).
  virtual void assemble(std::int64_t N, int nx, int nu, const S* x, const S* u, const S* jac_x,
                        const S* jac_u, S* inputs, S* target_jac) = 0;
  /// One Adam step over P parameters.
  virtual void adam(std::int64_t P, const AdamStep& step, S* theta, S* m, S* v,
                    const S* grad) = 0;
  /// counts[f] += the number of flags[b] == f for f = 0, 1, 2 (a SolveFlag per environment;
  /// larger values count as 2). flags: (N), counts: (3), backend memory.
  virtual void count_flags(std::int64_t N, const std::uint8_t* flags, unsigned long long* counts) = 0;
  virtual void synchronize() = 0;
};

/// The engines for a backend (cpu or cuda, resolved); `stream` is a cudaStream_t for CUDA;
/// `threads`: the CPU backend's OpenMP threads, 0 = all cores (the CUDA engines ignore it).
template <class S>
std::unique_ptr<MlpEngine<S>> make_mlp_engine(Backend backend, const MlpSpec& spec,
                                              const LossConfig& loss, void* stream = nullptr,
                                              MlpKernels kernels = MlpKernels::automatic,
                                              int threads = 0);
template <class S>
std::unique_ptr<TrainOps<S>> make_train_ops(Backend backend, void* stream = nullptr, int threads = 0);

#if defined(PHYDREAM_WITH_CUDA)
// defined in kernels/mlp_kernels.cu
template <class S>
std::unique_ptr<MlpEngine<S>> make_cuda_mlp_engine(const MlpSpec& spec, const LossConfig& loss,
                                                   void* stream, MlpKernels kernels);
template <class S>
std::unique_ptr<TrainOps<S>> make_cuda_train_ops(void* stream);
#endif

}  // namespace phydream::training
