// The CPU implementations of the trainer's engines (training/engine.h).
#pragma once

#include <omp.h>

#include "training/adam.h"
#include "training/engine.h"
#include "training/mlp_cpu.h"
#include "training/pipeline.h"

namespace phydream::training {

template <class S>
class CpuMlpEngine final : public MlpEngine<S> {
 public:
  CpuMlpEngine(const MlpSpec& spec, const LossConfig& loss, int threads = 0)
      : net_(spec, loss, threads) {}
  void forward(std::int64_t N, const S* theta, const S* inputs, S* pred, S* jac) override {
    net_.forward(N, theta, inputs, pred, jac);
  }
  void loss_and_grad(std::int64_t N, const S* theta, const S* inputs, const S* targets,
                     const S* target_jac, S* grad, double* terms) override {
    const LossTerms t = net_.loss_and_grad(N, theta, inputs, targets, target_jac, grad);
    terms[0] = t.total;
    terms[1] = t.mse;
    terms[2] = t.jal;
  }
  void synchronize() override {}
  const char* kernels() const override { return "eigen"; }

 private:
  CpuMlp<S> net_;
};

template <class S>
class CpuTrainOps final : public TrainOps<S> {
 public:
  /// threads: OpenMP threads of the parallel loops, 0 = all cores
  explicit CpuTrainOps(int threads = 0) : threads_(threads) {}
  void sample_uniform(std::int64_t N, std::uint64_t seed, std::uint64_t stream, SampleBox<S> box,
                      S* out) override {
    const OmpThreadLimit limit(threads_);
#pragma omp parallel for schedule(static) if (N >= 4096)
    for (std::int64_t b = 0; b < N; ++b) {
      for (int c = 0; c < box.width; ++c) {
        out[b * box.width + c] =
            sample_entry<S>(seed, stream, b, c, box.width, box.lo[c], box.hi[c]);
      }
    }
  }
  void pick_states(std::int64_t N, std::int64_t T, std::uint64_t seed, std::uint64_t stream,
                   SampleBox<S> box, const S* states, S* x) override {
    for (std::int64_t b = 0; b < N; ++b) {
      pick_state<S>(b, T, box.width, seed, stream, box.lo, box.hi, states, x);
    }
  }
  void assemble(std::int64_t N, int nx, int nu, const S* x, const S* u, const S* jac_x,
                const S* jac_u, S* inputs, S* target_jac) override {
    for (std::int64_t b = 0; b < N; ++b) {
      assemble_row<S>(b, nx, nu, x, u, jac_x, jac_u, inputs, target_jac);
    }
  }
  void adam(std::int64_t P, const AdamStep& step, S* theta, S* m, S* v, const S* grad) override {
    for (std::int64_t p = 0; p < P; ++p) adam_update(step, theta + p, m + p, v + p, grad[p]);
  }
  void count_flags(std::int64_t N, const std::uint8_t* flags, unsigned long long* counts) override {
    for (std::int64_t b = 0; b < N; ++b) ++counts[flags[b] < 2 ? flags[b] : 2];
  }
  void synchronize() override {}

 private:
  int threads_;
};

}  // namespace phydream::training
