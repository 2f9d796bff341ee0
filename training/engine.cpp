// Backend selection for the trainer's engines.
#include "training/engine.h"

#include "engine/errors.h"
#include "training/cpu_engine.h"

namespace phydream::training {

const char* mlp_kernels_name(MlpKernels k) {
  switch (k) {
    case MlpKernels::automatic: return "auto";
    case MlpKernels::fused: return "fused";
    case MlpKernels::gemm: return "gemm";
  }
  return "?";
}

MlpKernels parse_mlp_kernels(const std::string& name) {
  if (name == "auto") return MlpKernels::automatic;
  if (name == "fused") return MlpKernels::fused;
  if (name == "gemm") return MlpKernels::gemm;
  throw InputError("unknown MLP kernels '" + name + "'; expected one of: auto, fused, gemm");
}

template <class S>
std::unique_ptr<MlpEngine<S>> make_mlp_engine(Backend backend, const MlpSpec& spec,
                                              const LossConfig& loss, void* stream,
                                              MlpKernels kernels, int threads) {
  if (backend == Backend::cuda) {
#if defined(PHYDREAM_WITH_CUDA)
    return make_cuda_mlp_engine<S>(spec, loss, stream, kernels);
#else
    (void)stream;
    (void)kernels;
    throw BackendError("backend 'cuda': this build has no CUDA kernels");
#endif
  }
  return std::make_unique<CpuMlpEngine<S>>(spec, loss, threads);
}

template <class S>
std::unique_ptr<TrainOps<S>> make_train_ops(Backend backend, void* stream, int threads) {
  if (backend == Backend::cuda) {
#if defined(PHYDREAM_WITH_CUDA)
    return make_cuda_train_ops<S>(stream);
#else
    (void)stream;
    throw BackendError("backend 'cuda': this build has no CUDA kernels");
#endif
  }
  return std::make_unique<CpuTrainOps<S>>(threads);
}

template std::unique_ptr<MlpEngine<float>> make_mlp_engine(Backend, const MlpSpec&,
                                                           const LossConfig&, void*, MlpKernels, int);
template std::unique_ptr<MlpEngine<double>> make_mlp_engine(Backend, const MlpSpec&,
                                                            const LossConfig&, void*,
                                                            MlpKernels, int);
template std::unique_ptr<TrainOps<float>> make_train_ops(Backend, void*, int);
template std::unique_ptr<TrainOps<double>> make_train_ops(Backend, void*, int);

}  // namespace phydream::training
