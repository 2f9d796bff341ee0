// Backend selection for the trainer's engines.
#include "training/engine.h"

#include "engine/errors.h"
#include "training/cpu_engine.h"

namespace phydream::training {

template <class S>
std::unique_ptr<MlpEngine<S>> make_mlp_engine(Backend backend, const MlpSpec& spec,
                                              const LossConfig& loss, void* stream) {
  if (backend == Backend::cuda) {
#if defined(PHYDREAM_WITH_CUDA)
    return make_cuda_mlp_engine<S>(spec, loss, stream);
#else
    (void)stream;
    throw BackendError("backend 'cuda': this build has no CUDA kernels");
#endif
  }
  return std::make_unique<CpuMlpEngine<S>>(spec, loss);
}

template <class S>
std::unique_ptr<TrainOps<S>> make_train_ops(Backend backend, void* stream) {
  if (backend == Backend::cuda) {
#if defined(PHYDREAM_WITH_CUDA)
    return make_cuda_train_ops<S>(stream);
#else
    (void)stream;
    throw BackendError("backend 'cuda': this build has no CUDA kernels");
#endif
  }
  return std::make_unique<CpuTrainOps<S>>();
}

template std::unique_ptr<MlpEngine<float>> make_mlp_engine(Backend, const MlpSpec&,
                                                           const LossConfig&, void*);
template std::unique_ptr<MlpEngine<double>> make_mlp_engine(Backend, const MlpSpec&,
                                                            const LossConfig&, void*);
template std::unique_ptr<TrainOps<float>> make_train_ops(Backend, void*);
template std::unique_ptr<TrainOps<double>> make_train_ops(Backend, void*);

}  // namespace phydream::training
