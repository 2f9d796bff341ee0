#include "training/mlp_cpu.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "engine/errors.h"
#include "training/cpu_gemm.h"

namespace phydream::training {

// =============================================================================================
// loss head

namespace {

// one Jacobian batch scaled as the loss config says, with what its backward needs
struct Scaled {
  std::vector<double> s;
  double lo = 0, range = 1;         // minmax
  bool range_active = false;        // max - min above the floor: it depends on J
  std::int64_t arg_lo = 0, arg_hi = 0;
  double sigma = 1;                 // zscore
};

// the divisor of entry e under scaling std: the dataset spread, or 1 where it has none
inline double std_divisor(const LossConfig& cfg, std::int64_t e, int kd) {
  const double s = cfg.jac_std[static_cast<std::size_t>(e % kd)];
  return s > kScaleRangeFloor ? s : 1.0;
}

template <class S>
Scaled scale_jacobian(const LossConfig& cfg, std::int64_t n, int kd, const S* J) {
  Scaled r;
  r.s.resize(static_cast<std::size_t>(n));
  switch (cfg.scaling) {
    case JacScaling::none:
      for (std::int64_t e = 0; e < n; ++e) r.s[e] = J[e];
      break;
    case JacScaling::minmax: {
      for (std::int64_t e = 1; e < n; ++e) {
        if (J[e] < J[r.arg_lo]) r.arg_lo = e;
        if (J[e] > J[r.arg_hi]) r.arg_hi = e;
      }
      r.lo = J[r.arg_lo];
      const double width = double(J[r.arg_hi]) - r.lo;
      r.range_active = width > kScaleRangeFloor;
      r.range = r.range_active ? width : kScaleRangeFloor;
      for (std::int64_t e = 0; e < n; ++e) r.s[e] = (J[e] - r.lo) / r.range;
      break;
    }
    case JacScaling::zscore: {
      double mean = 0, var = 0;
      for (std::int64_t e = 0; e < n; ++e) mean += J[e];
      mean /= double(n);
      for (std::int64_t e = 0; e < n; ++e) var += (J[e] - mean) * (J[e] - mean);
      var /= double(n);
      r.sigma = std::sqrt(var + kZscoreEps);
      for (std::int64_t e = 0; e < n; ++e) r.s[e] = (J[e] - mean) / r.sigma;
      break;
    }
    case JacScaling::std:
      for (std::int64_t e = 0; e < n; ++e) r.s[e] = J[e] / std_divisor(cfg, e, kd);
      break;
  }
  return r;
}

// G_J from G_s through the scaling of the network's Jacobian (its batch statistics included)
template <class S>
void scale_jacobian_vjp(const LossConfig& cfg, std::int64_t n, int kd, const S* J,
                        const Scaled& sc, const std::vector<double>& gs, std::vector<double>& gj) {
  gj.assign(static_cast<std::size_t>(n), 0.0);
  switch (cfg.scaling) {
    case JacScaling::none:
      gj = gs;
      break;
    case JacScaling::minmax: {
      // s_e = (J_e - lo) / (hi - lo): ds/dlo = (J_e - hi) / r^2, ds/dhi = -(J_e - lo) / r^2
      double g_lo = 0, g_hi = 0;
      const double hi = sc.lo + sc.range;
      for (std::int64_t e = 0; e < n; ++e) {
        gj[e] = gs[e] / sc.range;
        if (sc.range_active) {
          g_lo += gs[e] * (J[e] - hi) / (sc.range * sc.range);
          g_hi -= gs[e] * (J[e] - sc.lo) / (sc.range * sc.range);
        } else {
          g_lo -= gs[e] / sc.range;  // the range is the constant floor: only lo moves s
        }
      }
      gj[sc.arg_lo] += g_lo;
      gj[sc.arg_hi] += g_hi;
      break;
    }
    case JacScaling::zscore: {
      // dL/dJ_e = (G_e - mean(G) - s_e mean(G s)) / sigma
      double mean_g = 0, mean_gs = 0;
      for (std::int64_t e = 0; e < n; ++e) {
        mean_g += gs[e];
        mean_gs += gs[e] * sc.s[e];
      }
      mean_g /= double(n);
      mean_gs /= double(n);
      for (std::int64_t e = 0; e < n; ++e) gj[e] = (gs[e] - mean_g - sc.s[e] * mean_gs) / sc.sigma;
      break;
    }
    case JacScaling::std:
      for (std::int64_t e = 0; e < n; ++e) gj[e] = gs[e] / std_divisor(cfg, e, kd);
      break;
  }
}

}  // namespace

template <class S>
LossTerms loss_head(const LossConfig& cfg, std::int64_t N, int k, int d, const S* pred,
                    const S* targets, const S* jac, const S* target_jac, S* g_pred, S* g_jac) {
  LossTerms t;
  if (N == 0) return t;
  // MSE over N k entries
  const double nk = double(N) * k;
  for (std::int64_t e = 0; e < N * k; ++e) {
    const double diff = double(pred[e]) - double(targets[e]);
    t.mse += diff * diff;
    g_pred[e] = static_cast<S>(cfg.lambda_mse * 2.0 * diff / nk);
  }
  t.mse /= nk;
  t.total = cfg.lambda_mse * t.mse;
  if (!cfg.uses_jacobian()) {
    if (g_jac != nullptr) std::fill(g_jac, g_jac + N * k * d, S(0));
    return t;
  }

  // JAL on the scaled Jacobians, D = s(J) - s(J*)
  const std::int64_t n = N * k * d;
  const int kd = k * d;
  const Scaled sj = scale_jacobian(cfg, n, kd, jac);
  const Scaled st = scale_jacobian(cfg, n, kd, target_jac);
  std::vector<double> gs(static_cast<std::size_t>(n));
  switch (cfg.metric) {
    case JalMetric::mse:
      for (std::int64_t e = 0; e < n; ++e) {
        const double diff = sj.s[e] - st.s[e];
        t.jal += diff * diff;
        gs[e] = 2.0 * diff / double(n);
      }
      t.jal /= double(n);
      break;
    case JalMetric::l1:
      for (std::int64_t e = 0; e < n; ++e) {
        const double diff = sj.s[e] - st.s[e];
        t.jal += std::abs(diff);
        gs[e] = (diff > 0 ? 1.0 : diff < 0 ? -1.0 : 0.0) / double(n);
      }
      t.jal /= double(n);
      break;
    case JalMetric::huber:
      for (std::int64_t e = 0; e < n; ++e) {
        const double diff = sj.s[e] - st.s[e];
        t.jal += huber_value(diff, cfg.huber_delta);
        gs[e] = huber_grad(diff, cfg.huber_delta) / double(n);
      }
      t.jal /= double(n);
      break;
    case JalMetric::frobenius:
      for (std::int64_t b = 0; b < N; ++b) {
        double sq = 0;
        for (std::int64_t e = b * kd; e < (b + 1) * kd; ++e) {
          sq += (sj.s[e] - st.s[e]) * (sj.s[e] - st.s[e]);
        }
        const double norm = std::sqrt(sq);
        t.jal += norm;
        for (std::int64_t e = b * kd; e < (b + 1) * kd; ++e) {
          gs[e] = norm > kFrobeniusFloor ? (sj.s[e] - st.s[e]) / (norm * double(N)) : 0.0;
        }
      }
      t.jal /= double(N);
      break;
  }
  t.total += cfg.lambda_jal * t.jal;
  std::vector<double> gj;
  scale_jacobian_vjp(cfg, n, kd, jac, sj, gs, gj);
  for (std::int64_t e = 0; e < n; ++e) g_jac[e] = static_cast<S>(cfg.lambda_jal * gj[e]);
  return t;
}

// =============================================================================================
// the network

OmpThreadLimit::OmpThreadLimit(int threads) {
  if (threads > 0) {
    saved_ = omp_get_max_threads();
    omp_set_num_threads(threads);
  }
}

OmpThreadLimit::~OmpThreadLimit() {
  if (saved_ > 0) omp_set_num_threads(saved_);
}

template <class S>
CpuMlp<S>::CpuMlp(const MlpSpec& spec, const LossConfig& loss, int threads)
    : spec_(spec), loss_(loss), threads_(threads) {
  if (threads < 0) throw InputError("CpuMlp: threads must be >= 0 (0: all cores)");
  spec_.validate();
  loss_.validate(spec_.nx, spec_.nu);
  A_.resize(spec_.num_layers() + 1);
  Z_.resize(spec_.num_layers() - 1);
  D1_.resize(spec_.num_layers() - 1);
  D2_.resize(spec_.num_layers() - 1);
}

template <class S>
void CpuMlp<S>::run_forward(std::int64_t N, const S* theta, const S* inputs, bool tangents) {
  const int d = spec_.n_in(), L = spec_.num_layers();
  const int r = tangents ? 1 + d : 1;
  rows_per_sample_ = r;
  const Eigen::Index R = static_cast<Eigen::Index>(N * r);

  // normalised inputs; tangent row j of a sample is e_j / in_std_j (T_0 = diag(1 / in_std))
  Matrix& a0 = A_[0];
  a0.setZero(R, d);
  for (std::int64_t b = 0; b < N; ++b) {
    for (int j = 0; j < d; ++j) {
      a0(b * r, j) = static_cast<S>((inputs[b * d + j] - spec_.in_mean[j]) / spec_.in_std[j]);
      if (tangents) a0(b * r + 1 + j, j) = static_cast<S>(1.0 / spec_.in_std[j]);
    }
  }

  for (int l = 0; l < L; ++l) {
    const int out = spec_.layer_out(l), in = spec_.layer_in(l);
    const Eigen::Map<const Matrix> W(theta + spec_.weight_offset(l), out, in);
    const Eigen::Map<const Eigen::Matrix<S, 1, Eigen::Dynamic>> bias(theta + spec_.bias_offset(l),
                                                                     out);
    // one GEMM for the primal and tangent rows; the bias only shifts primal rows
    Matrix& z = l < L - 1 ? Z_[l] : A_[L];
    z.resize(R, out);
    gemm_abt<S>(R, out, in, A_[l].data(), W.data(), z.data());
    for (std::int64_t b = 0; b < N; ++b) z.row(b * r) += bias;
    if (l == L - 1) break;

    // h = sigma(z) on primal rows, T = sigma'(z) Z' on tangent rows; sigma' and sigma'' kept for
    // the backward pass (one evaluation of the activation per entry and step)
    Matrix& a = A_[l + 1];
    a.resize(R, out);
    Matrix& d1s = D1_[l];
    Matrix& d2s = D2_[l];
    d1s.resize(N, out);
    d2s.resize(N, out);
    const Activation act = spec_.activation;
    // float tanh: a whole primal row at once, vectorised (training/cpu_gemm.h), then its
    // derivatives from it as activate() forms them
    const bool vector_tanh = std::is_same_v<S, float> && act == Activation::tanh;
#pragma omp parallel for schedule(static) if (N >= 256)
    for (std::int64_t b = 0; b < N; ++b) {
      if constexpr (std::is_same_v<S, float>) {
        if (vector_tanh) tanh_f32(out, &z(b * r, 0), &a(b * r, 0));
      }
      for (int c = 0; c < out; ++c) {
        S f, d1, d2;
        if (vector_tanh) {
          f = a(b * r, c);
          tanh_derivatives(f, &d1, &d2);
        } else {
          activate(act, z(b * r, c), &f, &d1, &d2);
        }
        a(b * r, c) = f;
        d1s(b, c) = d1;
        d2s(b, c) = d2;
        for (int j = 1; j < r; ++j) a(b * r + j, c) = d1 * z(b * r + j, c);
      }
    }
  }
}

template <class S>
void CpuMlp<S>::read_outputs(std::int64_t N, const S* inputs, S* pred, S* jac) const {
  const int k = spec_.n_out(), d = spec_.n_in(), r = rows_per_sample_;
  const Matrix& y = A_[spec_.num_layers()];
  for (std::int64_t b = 0; b < N; ++b) {
    for (int i = 0; i < k; ++i) {
      const double base = spec_.residual ? double(inputs[b * d + i]) : 0.0;
      pred[b * k + i] =
          static_cast<S>(base + spec_.out_mean[i] + spec_.out_std[i] * double(y(b * r, i)));
      if (jac == nullptr) continue;
      for (int j = 0; j < d; ++j) {
        const double identity = (spec_.residual && i == j) ? 1.0 : 0.0;
        jac[(b * k + i) * d + j] =
            static_cast<S>(spec_.out_std[i] * double(y(b * r + 1 + j, i)) + identity);
      }
    }
  }
}

template <class S>
void CpuMlp<S>::forward(std::int64_t N, const S* theta, const S* inputs, S* pred, S* jac) {
  if (N < 0) throw InputError("CpuMlp::forward: N must be >= 0");
  if (N == 0) return;
  const OmpThreadLimit limit(threads_);
  run_forward(N, theta, inputs, jac != nullptr);
  read_outputs(N, inputs, pred, jac);
}

template <class S>
LossTerms CpuMlp<S>::loss_and_grad(std::int64_t N, const S* theta, const S* inputs,
                                   const S* targets, const S* target_jac, S* grad) {
  const std::size_t P = spec_.num_params();
  std::fill(grad, grad + P, S(0));
  if (N <= 0) return LossTerms{};
  const bool tangents = loss_.uses_jacobian();
  if (tangents && target_jac == nullptr) {
    throw InputError("CpuMlp::loss_and_grad: the loss has a JAL term but target_jac is null");
  }
  const int k = spec_.n_out(), d = spec_.n_in(), L = spec_.num_layers();
  const OmpThreadLimit limit(threads_);
  run_forward(N, theta, inputs, tangents);
  pred_.resize(static_cast<std::size_t>(N * k));
  g_pred_.resize(pred_.size());
  if (tangents) {
    jac_.resize(static_cast<std::size_t>(N * k * d));
    g_jac_.resize(jac_.size());
  }
  read_outputs(N, inputs, pred_.data(), tangents ? jac_.data() : nullptr);
  const LossTerms terms = loss_head(loss_, N, k, d, pred_.data(), targets,
                                    tangents ? jac_.data() : nullptr, target_jac, g_pred_.data(),
                                    tangents ? g_jac_.data() : nullptr);

  // gradient w.r.t. the output rows: y enters pred and the tangent rows enter J, both scaled
  const int r = rows_per_sample_;
  const Eigen::Index R = static_cast<Eigen::Index>(N * r);
  Matrix G(R, k);
  for (std::int64_t b = 0; b < N; ++b) {
    for (int i = 0; i < k; ++i) {
      G(b * r, i) = static_cast<S>(spec_.out_std[i] * g_pred_[b * k + i]);
      for (int j = 0; j < r - 1; ++j) {
        G(b * r + 1 + j, i) = static_cast<S>(spec_.out_std[i] * g_jac_[(b * k + i) * d + j]);
      }
    }
  }

  Matrix GA;
  for (int l = L - 1; l >= 0; --l) {
    const int out = spec_.layer_out(l), in = spec_.layer_in(l);
    const Eigen::Map<const Matrix> W(theta + spec_.weight_offset(l), out, in);
    Eigen::Map<Matrix> gW(grad + spec_.weight_offset(l), out, in);
    Eigen::Map<Eigen::Matrix<S, 1, Eigen::Dynamic>> gb(grad + spec_.bias_offset(l), out);
    gemm_atb<S>(R, in, out, G.data(), A_[l].data(), gW.data());
    for (std::int64_t b = 0; b < N; ++b) gb += G.row(b * r);
    if (l == 0) break;

    // through the activation of layer l - 1 (primal and tangent rows)
    GA.resize(R, in);
    gemm_ab<S>(R, in, out, G.data(), W.data(), GA.data());
    const Matrix& z = Z_[l - 1];
    const Matrix& d1s = D1_[l - 1];
    const Matrix& d2s = D2_[l - 1];
    G.resize(R, in);
#pragma omp parallel for schedule(static) if (N >= 256)
    for (std::int64_t b = 0; b < N; ++b) {
      for (int c = 0; c < in; ++c) {
        const S d1 = d1s(b, c), d2 = d2s(b, c);
        S curvature = S(0);  // sum_j G_T_j Z'_j: how J moves with z through sigma'
        for (int j = 1; j < r; ++j) {
          curvature += GA(b * r + j, c) * z(b * r + j, c);
          G(b * r + j, c) = d1 * GA(b * r + j, c);
        }
        G(b * r, c) = d1 * GA(b * r, c) + d2 * curvature;
      }
    }
  }
  return terms;
}

template LossTerms loss_head(const LossConfig&, std::int64_t, int, int, const float*,
                             const float*, const float*, const float*, float*, float*);
template LossTerms loss_head(const LossConfig&, std::int64_t, int, int, const double*,
                             const double*, const double*, const double*, double*, double*);
template class CpuMlp<float>;
template class CpuMlp<double>;

}  // namespace phydream::training
