#include "training/trainer.h"

#include <chrono>
#include <cmath>
#include <stdexcept>

#include "engine/errors.h"

namespace phydream::training {

double learning_rate(const OptimizerConfig& o, std::int64_t t, std::int64_t total) {
  if (o.schedule != "cosine" || total <= 0) return o.adam.lr;
  const double progress = std::min<double>(double(t) / double(total), 1.0);
  return o.lr_min + 0.5 * (o.adam.lr - o.lr_min) * (1.0 + std::cos(M_PI * progress));
}

MlpSpec make_spec(const TrainConfig& config, const EnvInfo& env) {
  MlpSpec spec;
  spec.nx = env.nx;
  spec.nu = env.nu;
  spec.hidden = config.model.hidden;
  spec.activation = config.model.activation;
  spec.residual = config.model.residual;
  spec.set_identity_normalisation();
  return spec;
}

namespace {

// the simulator's environment, checked for what the trainer assumes: the MLP maps x (nx) to x'
// and JAL compares dx'/dx (ndx x ndx), so the state must be its own tangent
const EnvInfo& checked_env(const EnvInfo& env) {
  if (env.nx != env.ndx) {
    throw InputError("environment '" + env.name + "': the trainer needs the state to be its own "
                     "tangent (nx = ndx), got nx = " + std::to_string(env.nx) + ", ndx = " +
                     std::to_string(env.ndx) + " (ball or free joints); use hinge and slide "
                     "joints only");
  }
  return env;
}

// mean and standard deviation of each column of a (rows, cols) array; a column without spread
// gets std 1, so normalising by it is the identity rather than a division by ~0
template <class S>
void column_stats(const std::vector<S>& a, std::int64_t rows, int cols, std::vector<double>& mean,
                  std::vector<double>& stddev, bool floor_to_one) {
  mean.assign(cols, 0.0);
  stddev.assign(cols, 0.0);
  for (std::int64_t r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) mean[c] += a[r * cols + c];
  for (double& m : mean) m /= double(rows);
  for (std::int64_t r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) {
      const double d = a[r * cols + c] - mean[c];
      stddev[c] += d * d;
    }
  for (int c = 0; c < cols; ++c) {
    stddev[c] = std::sqrt(stddev[c] / double(rows - 1));
    // spread below 1e-9 of the magnitude is rounding, not signal
    if (floor_to_one && stddev[c] <= 1e-9 * std::max(1.0, std::abs(mean[c]))) stddev[c] = 1.0;
  }
}

}  // namespace

template <class S>
Trainer<S>::Trainer(const TrainConfig& config, Backend backend, int threads, void* stream)
    : config_(config),
      backend_(backend),
      stream_(stream),
      threads_(threads),
      sim_(config.simulator_options(backend, threads, stream)),
      ops_(make_train_ops<S>(backend, stream, threads)),
      sampler_(config.sampling, backend, sim_, *ops_, stream),
      spec_(make_spec(config, checked_env(sim_.env()))),
      loss_(config.loss),
      theta_(backend, 0, stream),
      grad_(backend, 0, stream),
      adam_m_(backend, 0, stream),
      adam_v_(backend, 0, stream),
      terms_(backend, 3, stream) {}

template <class S>
void Trainer<S>::initialise() {
  // statistics of the data the model will see: inputs, targets and the true Jacobians
  const std::int64_t K = config_.train.stats_samples;
  const int k = spec_.n_out(), d = spec_.n_in();
  const bool need_jac = loss_.uses_jacobian();
  sampler_.draw(K, config_.train.seed, kStatsStream, need_jac);
  const auto inputs = copy_to_host(backend_, sampler_.inputs(), std::size_t(K) * d, stream_);
  auto targets = copy_to_host(backend_, sampler_.targets(), std::size_t(K) * k, stream_);
  if (spec_.residual) {
    for (std::int64_t b = 0; b < K; ++b)
      for (int i = 0; i < k; ++i) targets[b * k + i] -= inputs[b * d + i];
  }
  column_stats(inputs, K, d, spec_.in_mean, spec_.in_std, true);
  column_stats(targets, K, k, spec_.out_mean, spec_.out_std, true);
  if (need_jac) {
    const auto jac = copy_to_host(backend_, sampler_.target_jac(), std::size_t(K) * k * d, stream_);
    std::vector<double> jac_mean;
    column_stats(jac, K, k * d, jac_mean, loss_.jac_std, false);
  }
  spec_.validate();
  for (double v : spec_.out_std) {
    if (!std::isfinite(v)) {
      throw std::runtime_error("the simulator produced non-finite next states in the statistics "
                               "sample; narrow the sampling box or lower dt");
    }
  }

  ModelState fresh;
  fresh.config = config_;
  fresh.spec = spec_;
  fresh.loss = loss_;
  const auto theta = init_params<double>(spec_, config_.train.seed);
  fresh.theta = theta;
  restore(fresh);
}

template <class S>
void Trainer<S>::restore(const ModelState& state) {
  spec_ = state.spec;
  loss_ = state.loss;
  spec_.validate();
  loss_.validate(spec_.nx, spec_.nu);
  const std::size_t P = spec_.num_params();
  if (state.theta.size() != P) {
    throw InputError("model state has " + std::to_string(state.theta.size()) +
                     " parameters, the architecture needs " + std::to_string(P));
  }
  mlp_ = make_mlp_engine<S>(backend_, spec_, loss_, stream_, config_.train.kernels, threads_);
  theta_ = Buffer<S>(backend_, P, stream_);
  grad_ = Buffer<S>(backend_, P, stream_);
  adam_m_ = Buffer<S>(backend_, P, stream_);
  adam_v_ = Buffer<S>(backend_, P, stream_);
  const std::vector<S> theta(state.theta.begin(), state.theta.end());
  theta_.upload(theta.data());
  if (!state.adam_m.empty()) {
    if (state.adam_m.size() != P || state.adam_v.size() != P) {
      throw InputError("model state: optimizer moments have the wrong size");
    }
    const std::vector<S> m(state.adam_m.begin(), state.adam_m.end());
    const std::vector<S> v(state.adam_v.begin(), state.adam_v.end());
    adam_m_.upload(m.data());
    adam_v_.upload(v.data());
  }
  step_ = state.step;
  ready_ = true;
}

template <class S>
void Trainer<S>::run(std::int64_t steps, const std::function<void(const StepLog&)>& log) {
  if (!ready_) throw std::logic_error("Trainer::run before initialise() or restore()");
  const std::int64_t N = config_.train.batch;
  const std::int64_t P = static_cast<std::int64_t>(spec_.num_params());
  const bool jal = loss_.uses_jacobian();
  const AdamConfig& adam = config_.optimizer.adam;
  auto since = std::chrono::steady_clock::now();
  std::int64_t samples = 0;
  for (std::int64_t i = 0; i < steps; ++i) {
    // each step's batch comes from its own random streams: resuming redraws the same data
    sampler_.draw(N, config_.train.seed, static_cast<std::uint64_t>(step_) << 4, jal);
    mlp_->loss_and_grad(N, theta_.data(), sampler_.inputs(), sampler_.targets(),
                        jal ? sampler_.target_jac() : nullptr, grad_.data(), terms_.data());
    AdamStep a;
    a.lr = learning_rate(config_.optimizer, step_, config_.train.steps);
    a.beta1 = adam.beta1;
    a.beta2 = adam.beta2;
    a.eps = adam.eps;
    a.weight_decay = adam.weight_decay;
    a.bias1 = 1.0 - std::pow(adam.beta1, double(step_ + 1));
    a.bias2 = 1.0 - std::pow(adam.beta2, double(step_ + 1));
    ops_->adam(P, a, theta_.data(), adam_m_.data(), adam_v_.data(), grad_.data());
    ++step_;
    samples += N;
    if (step_ % config_.train.log_every == 0 || i == steps - 1) {
      double t[3];
      terms_.download(t);  // the only host read, and so the only wait, of a log interval
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
      const std::array<std::int64_t, 3> solves = sampler_.solver_counts();
      const std::int64_t drawn = solves[0] + solves[1] + solves[2];
      if (solves[2] > 0) {
        throw std::runtime_error(
            "the simulator's constraint solver produced non-finite accelerations for " +
            std::to_string(solves[2]) + " of " + std::to_string(drawn) +
            " samples drawn by step " + std::to_string(step_) +
            "; narrow the sampling box, lower dt or raise the model's solver iterations");
      }
      if (!std::isfinite(t[0])) {
        throw std::runtime_error("training diverged at step " + std::to_string(step_) +
                                 ": the loss is not finite; lower optimizer.lr");
      }
      StepLog entry;
      entry.step = step_;
      entry.terms = LossTerms{t[0], t[1], t[2]};
      entry.lr = a.lr;
      entry.samples_per_s = secs > 0 ? double(samples) / secs : 0.0;
      entry.samples_drawn = drawn;
      entry.capped_solves = solves[1];
      log(entry);
      since = std::chrono::steady_clock::now();
      samples = 0;
    }
  }
}

template <class S>
ModelState Trainer<S>::state() const {
  ModelState s;
  s.config = config_;
  s.spec = spec_;
  s.loss = loss_;
  s.step = step_;
  const std::size_t P = spec_.num_params();
  auto to_double = [](const std::vector<S>& v) { return std::vector<double>(v.begin(), v.end()); };
  s.theta = to_double(copy_to_host(backend_, theta_.data(), P, stream_));
  s.adam_m = to_double(copy_to_host(backend_, adam_m_.data(), P, stream_));
  s.adam_v = to_double(copy_to_host(backend_, adam_v_.data(), P, stream_));
  return s;
}

template class Trainer<float>;
template class Trainer<double>;

}  // namespace phydream::training
