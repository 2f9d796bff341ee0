#include "training/sampler.h"

#include <vector>

namespace phydream::training {

template <class S>
BatchSampler<S>::BatchSampler(const SamplingConfig& sampling, Backend backend, Simulator<S>& sim,
                              TrainOps<S>& ops, void* stream)
    : sampling_(sampling),
      backend_(backend),
      stream_(stream),
      sim_(sim),
      ops_(ops),
      nx_(sim.nx()),
      nu_(sim.nu()),
      state_lo_(backend, nx_, stream),
      state_hi_(backend, nx_, stream),
      action_lo_(backend, nu_, stream),
      action_hi_(backend, nu_, stream),
      x_(backend, 0, stream),
      u_(backend, 0, stream),
      x_next_(backend, 0, stream),
      jac_x_(backend, 0, stream),
      jac_u_(backend, 0, stream),
      inputs_(backend, 0, stream),
      target_jac_(backend, 0, stream),
      roll_x0_(backend, 0, stream),
      roll_actions_(backend, 0, stream),
      roll_states_(backend, 0, stream),
      solver_flags_(backend, 0, stream),
      solver_counts_(backend, 3, stream) {
  const unsigned long long zero[3] = {0, 0, 0};
  solver_counts_.upload(zero);
  const std::vector<S> alo(sampling.action_low.begin(), sampling.action_low.end());
  const std::vector<S> ahi(sampling.action_high.begin(), sampling.action_high.end());
  action_lo_.upload(alo.data());
  action_hi_.upload(ahi.data());
  set_box(1.0);
}

template <class S>
void BatchSampler<S>::set_box(double box_scale) {
  if (box_scale == box_scale_) return;
  std::vector<S> lo(nx_), hi(nx_);
  for (int i = 0; i < nx_; ++i) {
    const double c = 0.5 * (sampling_.state_low[i] + sampling_.state_high[i]);
    const double h = 0.5 * (sampling_.state_high[i] - sampling_.state_low[i]) * box_scale;
    lo[i] = static_cast<S>(c - h);
    hi[i] = static_cast<S>(c + h);
  }
  state_lo_.upload(lo.data());
  state_hi_.upload(hi.data());
  box_scale_ = box_scale;
}

template <class S>
void BatchSampler<S>::reserve(std::int64_t N, bool with_jacobian) {
  if (N > capacity_) {
    const auto n = static_cast<std::size_t>(N);
    x_ = Buffer<S>(backend_, n * nx_, stream_);
    u_ = Buffer<S>(backend_, n * nu_, stream_);
    x_next_ = Buffer<S>(backend_, n * nx_, stream_);
    solver_flags_ = Buffer<std::uint8_t>(backend_, n, stream_);
    inputs_ = Buffer<S>(backend_, n * (nx_ + nu_), stream_);
    if (sampling_.mode == SamplingMode::rollout) {
      const auto T = static_cast<std::size_t>(sampling_.horizon);
      roll_x0_ = Buffer<S>(backend_, n * nx_, stream_);
      roll_actions_ = Buffer<S>(backend_, n * T * nu_, stream_);
      roll_states_ = Buffer<S>(backend_, n * (T + 1) * nx_, stream_);
    }
    capacity_ = N;
    jac_capacity_ = false;
  }
  if (with_jacobian && !jac_capacity_) {
    const auto n = static_cast<std::size_t>(capacity_);
    jac_x_ = Buffer<S>(backend_, n * nx_ * nx_, stream_);
    jac_u_ = Buffer<S>(backend_, n * nx_ * nu_, stream_);
    target_jac_ = Buffer<S>(backend_, n * nx_ * (nx_ + nu_), stream_);
    jac_capacity_ = true;
  }
}

template <class S>
void BatchSampler<S>::draw(std::int64_t N, std::uint64_t seed, std::uint64_t stream,
                           bool with_jacobian, double box_scale) {
  reserve(N, with_jacobian);
  set_box(box_scale);
  const SampleBox<S> states{state_lo_.data(), state_hi_.data(), nx_};
  const SampleBox<S> actions{action_lo_.data(), action_hi_.data(), nu_};
  // streams: k = 0 states, 1 actions, 2 rollout actions, 3 rollout steps
  if (sampling_.mode == SamplingMode::uniform) {
    ops_.sample_uniform(N, seed, stream + 0, states, x_.data());
  } else {
    const std::int64_t T = sampling_.horizon;
    ops_.sample_uniform(N, seed, stream + 0, states, roll_x0_.data());
    ops_.sample_uniform(N * T, seed, stream + 2, actions, roll_actions_.data());
    sim_.rollout(N, T, roll_x0_.data(), roll_actions_.data(), roll_states_.data());
    ops_.pick_states(N, T, seed, stream + 3, states, roll_states_.data(), x_.data());
  }
  ops_.sample_uniform(N, seed, stream + 1, actions, u_.data());
  if (with_jacobian) {
    sim_.jacobian(N, x_.data(), u_.data(), x_next_.data(), jac_x_.data(), jac_u_.data());
  } else {
    sim_.step(N, x_.data(), u_.data(), x_next_.data());
  }
  if (sim_.model() != nullptr) {
    sim_.solver_status(N, solver_flags_.data());
    ops_.count_flags(N, solver_flags_.data(), solver_counts_.data());
  } else {
    solverless_ += N;  // a built-in environment has no constraint solver: every sample is ok
  }
  ops_.assemble(N, nx_, nu_, x_.data(), u_.data(), jac_x_.data(), jac_u_.data(), inputs_.data(),
                with_jacobian ? target_jac_.data() : nullptr);
}

template <class S>
std::array<std::int64_t, 3> BatchSampler<S>::solver_counts() {
  unsigned long long c[3];
  solver_counts_.download(c);
  return {static_cast<std::int64_t>(c[0]) + solverless_, static_cast<std::int64_t>(c[1]),
          static_cast<std::int64_t>(c[2])};
}

template <class S>
void BatchSampler<S>::draw_rollout_inputs(std::int64_t N, std::int64_t T, std::uint64_t seed,
                                          std::uint64_t stream, double box_scale, Buffer<S>& x0,
                                          Buffer<S>& actions) {
  set_box(box_scale);
  const SampleBox<S> states{state_lo_.data(), state_hi_.data(), nx_};
  const SampleBox<S> act{action_lo_.data(), action_hi_.data(), nu_};
  ops_.sample_uniform(N, seed, stream + 0, states, x0.data());
  ops_.sample_uniform(N * T, seed, stream + 1, act, actions.data());
}

template class BatchSampler<float>;
template class BatchSampler<double>;

}  // namespace phydream::training
