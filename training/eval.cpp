#include "training/eval.h"

#include <algorithm>
#include <cmath>

#include "engine/buffer.h"
#include "training/cpu_engine.h"
#include "training/sampler.h"

namespace phydream::training {

namespace {

// a trajectory value beyond this is the explicit scheme diverging, not dynamics to learn
constexpr double kDivergedMagnitude = 1e6;

struct Evaluator {
  const ModelState& st;
  Simulator<double> sim;
  CpuTrainOps<double> ops;
  CpuMlp<double> net;
  BatchSampler<double> sampler;
  int nx, nu, d;

  Evaluator(const ModelState& state, int threads)
      : st(state),
        sim(state.config.simulator_options(Backend::cpu, threads)),
        ops(threads),
        net(state.spec, state.loss, threads),
        sampler(uniform_sampling(state.config.sampling), Backend::cpu, sim, ops),
        nx(state.spec.nx),
        nu(state.spec.nu),
        d(state.spec.nx + state.spec.nu) {}

  static SamplingConfig uniform_sampling(SamplingConfig s) {
    s.mode = SamplingMode::uniform;
    return s;
  }

  // one-step errors on M fresh samples from the box scaled by `factor`
  void one_step(double factor, std::uint64_t stream, double* mse, double* jac_mse,
                double* jac_rel, std::vector<JacobianExample>* examples) {
    const std::int64_t M = st.config.eval.samples;
    sampler.draw(M, st.config.eval.seed, stream, true, factor);
    std::vector<double> pred(M * nx), jac(M * nx * d);
    net.forward(M, st.theta.data(), sampler.inputs(), pred.data(), jac.data());
    const double* y = sampler.targets();
    const double* J = sampler.target_jac();
    double s_mse = 0, s_jac = 0, s_rel = 0;
    for (std::int64_t b = 0; b < M; ++b) {
      for (int i = 0; i < nx; ++i) s_mse += (pred[b * nx + i] - y[b * nx + i]) * (pred[b * nx + i] - y[b * nx + i]);
      double diff2 = 0, norm2 = 0;
      for (int e = 0; e < nx * d; ++e) {
        const double diff = jac[b * nx * d + e] - J[b * nx * d + e];
        diff2 += diff * diff;
        norm2 += J[b * nx * d + e] * J[b * nx * d + e];
      }
      s_jac += diff2;
      s_rel += std::sqrt(diff2) / std::max(std::sqrt(norm2), 1e-12);
    }
    *mse = s_mse / double(M * nx);
    *jac_mse = s_jac / double(M * nx * d);
    *jac_rel = s_rel / double(M);
    if (examples != nullptr) {
      for (std::int64_t b = 0; b < std::min<std::int64_t>(M, 3); ++b) {
        JacobianExample ex;
        ex.x.assign(sampler.x() + b * nx, sampler.x() + (b + 1) * nx);
        ex.u.assign(sampler.u() + b * nu, sampler.u() + (b + 1) * nu);
        ex.model.assign(jac.begin() + b * nx * d, jac.begin() + (b + 1) * nx * d);
        ex.truth.assign(J + b * nx * d, J + (b + 1) * nx * d);
        examples->push_back(ex);
      }
    }
  }

  // open-loop rollouts from the box scaled by `factor`: MSE at h = 1 .. H over the kept envs
  // per horizon, the mean and the median over kept environments of their MSE over state entries
  void rollouts(double factor, std::uint64_t stream, std::int64_t H, std::vector<double>* mean,
                std::vector<double>* median, std::int64_t* kept, std::int64_t* sim_div,
                std::int64_t* model_div) {
    const std::int64_t R = st.config.eval.rollout_envs;
    Buffer<double> x0(Backend::cpu, R * nx), U(Backend::cpu, R * H * nu);
    Buffer<double> states(Backend::cpu, R * (H + 1) * nx);
    sampler.draw_rollout_inputs(R, H, st.config.eval.seed, stream, factor, x0, U);
    sim.rollout(R, H, x0.data(), U.data(), states.data());
    // the model's rollout, all environments at once
    std::vector<double> model((H + 1) * R * nx), inputs(R * d), pred(R * nx);
    std::copy(x0.data(), x0.data() + R * nx, model.begin());
    for (std::int64_t h = 0; h < H; ++h) {
      for (std::int64_t b = 0; b < R; ++b) {
        for (int i = 0; i < nx; ++i) inputs[b * d + i] = model[(h * R + b) * nx + i];
        for (int j = 0; j < nu; ++j) inputs[b * d + nx + j] = U.data()[(b * H + h) * nu + j];
      }
      net.forward(R, st.theta.data(), inputs.data(), pred.data(), nullptr);
      std::copy(pred.begin(), pred.end(), model.begin() + (h + 1) * R * nx);
    }
    std::vector<std::vector<double>> per_env(H);  // [h][kept env]
    *kept = *sim_div = *model_div = 0;
    for (std::int64_t b = 0; b < R; ++b) {
      bool sim_ok = true, model_ok = true;
      for (std::int64_t h = 0; h <= H; ++h) {
        for (int i = 0; i < nx; ++i) {
          const double s = states.data()[(b * (H + 1) + h) * nx + i];
          sim_ok = sim_ok && std::isfinite(s) && std::abs(s) < kDivergedMagnitude;
          model_ok = model_ok && std::isfinite(model[(h * R + b) * nx + i]);
        }
      }
      if (!sim_ok) {
        ++*sim_div;
        continue;
      }
      if (!model_ok) {
        ++*model_div;
        continue;
      }
      ++*kept;
      for (std::int64_t h = 1; h <= H; ++h) {
        double e2 = 0;
        for (int i = 0; i < nx; ++i) {
          const double e = model[(h * R + b) * nx + i] - states.data()[(b * (H + 1) + h) * nx + i];
          e2 += e * e;
        }
        per_env[h - 1].push_back(e2 / nx);
      }
    }
    mean->assign(H, NAN);
    median->assign(H, NAN);
    for (std::int64_t h = 0; h < H && *kept > 0; ++h) {
      std::vector<double>& v = per_env[h];
      double sum = 0;
      for (double e : v) sum += e;
      (*mean)[h] = sum / double(v.size());
      std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
      double med = v[v.size() / 2];
      if (v.size() % 2 == 0) med = 0.5 * (med + *std::max_element(v.begin(), v.begin() + v.size() / 2));
      (*median)[h] = med;
    }
  }
};

}  // namespace

EvalResult evaluate(const ModelState& state, int threads) {
  Evaluator ev(state, threads);
  EvalResult r;
  const EvalConfig& cfg = state.config.eval;
  ev.one_step(1.0, kEvalStream, &r.one_step_mse, &r.jacobian_mse, &r.jacobian_rel_err,
              &r.examples);
  ev.rollouts(1.0, kEvalStream + 16, cfg.horizon, &r.rollout_mse, &r.rollout_mse_median,
              &r.rollout_envs, &r.simulator_diverged, &r.model_diverged);
  for (std::size_t k = 0; k < cfg.ood_factors.size(); ++k) {
    OodRow row;
    row.factor = cfg.ood_factors[k];
    double rel = 0;
    const std::uint64_t stream = kEvalStream + 32 + 16 * k;
    ev.one_step(row.factor, stream, &row.one_step_mse, &row.jacobian_mse, &rel, nullptr);
    std::int64_t kept, sd, md;
    std::vector<double> mean, median;
    ev.rollouts(row.factor, stream + 8, cfg.ood_horizon, &mean, &median, &kept, &sd, &md);
    row.rollout_mse = mean.back();
    row.rollout_mse_median = median.back();
    r.ood.push_back(row);
  }
  return r;
}

nlohmann::json to_json(const EvalResult& r) {
  nlohmann::json j;
  j["one_step_mse"] = r.one_step_mse;
  j["jacobian_mse"] = r.jacobian_mse;
  j["jacobian_rel_err"] = r.jacobian_rel_err;
  std::vector<int> horizon;
  for (std::size_t h = 1; h <= r.rollout_mse.size(); ++h) horizon.push_back(static_cast<int>(h));
  // NaN is not JSON: a horizon without data is null
  auto finite_or_null = [](const std::vector<double>& v) {
    nlohmann::json a = nlohmann::json::array();
    for (double m : v) a.push_back(std::isfinite(m) ? nlohmann::json(m) : nlohmann::json());
    return a;
  };
  j["rollout"] = {{"horizon", horizon},
                  {"mse", finite_or_null(r.rollout_mse)},
                  {"mse_median", finite_or_null(r.rollout_mse_median)},
                  {"envs", r.rollout_envs},
                  {"simulator_diverged", r.simulator_diverged},
                  {"model_diverged", r.model_diverged}};
  j["ood"] = nlohmann::json::array();
  for (const OodRow& o : r.ood) {
    j["ood"].push_back({{"factor", o.factor},
                        {"one_step_mse", o.one_step_mse},
                        {"jacobian_mse", o.jacobian_mse},
                        {"rollout_mse", finite_or_null({o.rollout_mse})[0]},
                        {"rollout_mse_median", finite_or_null({o.rollout_mse_median})[0]}});
  }
  j["jacobian_examples"] = nlohmann::json::array();
  for (const JacobianExample& e : r.examples) {
    j["jacobian_examples"].push_back(
        {{"x", e.x}, {"u", e.u}, {"model", e.model}, {"truth", e.truth}});
  }
  return j;
}

}  // namespace phydream::training
