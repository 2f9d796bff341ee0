// An independent implementation of the MLP, its input Jacobian and the training loss, written
// per sample with plain loops over a generic number type. With T = DualP (forward-mode dual
// numbers over all parameters) it yields the exact loss gradient by a different algorithm
// (forward mode over theta, no GEMMs, no double backward) than training/mlp_cpu.cpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "training/mlp.h"

namespace phydream::testing::naive {

/// A dual number with a run-time number of derivative components.
struct DualP {
  double v = 0;
  std::vector<double> d;  // empty: a constant

  DualP() = default;
  DualP(double value) : v(value) {}  // NOLINT: constants promote implicitly
  static DualP variable(double value, std::size_t k, std::size_t n) {
    DualP r(value);
    r.d.assign(n, 0.0);
    r.d[k] = 1.0;
    return r;
  }
  double grad(std::size_t k) const { return k < d.size() ? d[k] : 0.0; }
};

// r.d = a * x.d + b * y.d, with empty meaning zero
inline std::vector<double> combine(double a, const std::vector<double>& x, double b,
                                   const std::vector<double>& y) {
  std::vector<double> r(std::max(x.size(), y.size()), 0.0);
  for (std::size_t k = 0; k < x.size(); ++k) r[k] += a * x[k];
  for (std::size_t k = 0; k < y.size(); ++k) r[k] += b * y[k];
  return r;
}
inline DualP apply(double value, double slope, const DualP& x) {
  DualP r(value);
  r.d = combine(slope, x.d, 0.0, {});
  return r;
}
inline DualP operator+(const DualP& a, const DualP& b) {
  DualP r(a.v + b.v);
  r.d = combine(1, a.d, 1, b.d);
  return r;
}
inline DualP operator-(const DualP& a, const DualP& b) {
  DualP r(a.v - b.v);
  r.d = combine(1, a.d, -1, b.d);
  return r;
}
inline DualP operator-(const DualP& a) { return apply(-a.v, -1, a); }
inline DualP operator*(const DualP& a, const DualP& b) {
  DualP r(a.v * b.v);
  r.d = combine(b.v, a.d, a.v, b.d);
  return r;
}
inline DualP operator/(const DualP& a, const DualP& b) {
  DualP r(a.v / b.v);
  r.d = combine(1 / b.v, a.d, -a.v / (b.v * b.v), b.d);
  return r;
}
inline DualP exp(const DualP& a) { return apply(std::exp(a.v), std::exp(a.v), a); }
inline DualP log(const DualP& a) { return apply(std::log(a.v), 1 / a.v, a); }
inline DualP sqrt(const DualP& a) { return apply(std::sqrt(a.v), 0.5 / std::sqrt(a.v), a); }
inline DualP abs(const DualP& a) { return apply(std::abs(a.v), a.v > 0 ? 1 : a.v < 0 ? -1 : 0, a); }
inline DualP tanh(const DualP& a) {
  const double t = std::tanh(a.v);
  return apply(t, 1 - t * t, a);
}
inline double value(const DualP& a) { return a.v; }
inline double value(double a) { return a; }
using std::abs;
using std::exp;
using std::log;
using std::sqrt;
using std::tanh;

// sigma and sigma' from the textbook definitions
template <class T>
T sigma(training::Activation a, const T& z) {
  switch (a) {
    case training::Activation::tanh: return tanh(z);
    case training::Activation::silu: return z / (T(1.0) + exp(-z));
    case training::Activation::softplus: return log(T(1.0) + exp(z));
    case training::Activation::relu: return value(z) > 0 ? z : T(0.0);
  }
  return z;
}
template <class T>
T sigma_prime(training::Activation a, const T& z) {
  switch (a) {
    case training::Activation::tanh: {
      const T t = tanh(z);
      return T(1.0) - t * t;
    }
    case training::Activation::silu: {
      const T s = T(1.0) / (T(1.0) + exp(-z));
      return s + z * s * (T(1.0) - s);
    }
    case training::Activation::softplus: return T(1.0) / (T(1.0) + exp(-z));
    case training::Activation::relu: return T(value(z) > 0 ? 1.0 : 0.0);
  }
  return T(1.0);
}

/// One sample: the prediction (k) and the input Jacobian (k x d) of the full map.
template <class T>
void forward(const training::MlpSpec& spec, const std::vector<T>& theta, const double* in,
             std::vector<T>& pred, std::vector<T>& jac) {
  const int d = spec.n_in(), k = spec.n_out(), L = spec.num_layers();
  std::vector<T> h(d);
  std::vector<std::vector<T>> tan(d, std::vector<T>(d, T(0.0)));  // tan[unit][input]
  for (int j = 0; j < d; ++j) {
    h[j] = T((in[j] - spec.in_mean[j]) / spec.in_std[j]);
    tan[j][j] = T(1.0 / spec.in_std[j]);
  }
  for (int l = 0; l < L; ++l) {
    const int out = spec.layer_out(l), nin = spec.layer_in(l);
    const std::size_t w = spec.weight_offset(l), bo = spec.bias_offset(l);
    std::vector<T> z(out);
    std::vector<std::vector<T>> zt(out, std::vector<T>(d, T(0.0)));
    for (int c = 0; c < out; ++c) {
      z[c] = theta[bo + c];
      for (int i = 0; i < nin; ++i) {
        z[c] = z[c] + theta[w + c * nin + i] * h[i];
        for (int j = 0; j < d; ++j) zt[c][j] = zt[c][j] + theta[w + c * nin + i] * tan[i][j];
      }
    }
    if (l < L - 1) {
      h.assign(out, T(0.0));
      tan.assign(out, std::vector<T>(d, T(0.0)));
      for (int c = 0; c < out; ++c) {
        h[c] = sigma(spec.activation, z[c]);
        const T slope = sigma_prime(spec.activation, z[c]);
        for (int j = 0; j < d; ++j) tan[c][j] = slope * zt[c][j];
      }
    } else {
      pred.assign(k, T(0.0));
      jac.assign(k * d, T(0.0));
      for (int i = 0; i < k; ++i) {
        pred[i] = T((spec.residual ? in[i] : 0.0) + spec.out_mean[i]) + T(spec.out_std[i]) * z[i];
        for (int j = 0; j < d; ++j) {
          jac[i * d + j] = T(spec.out_std[i]) * zt[i][j] + T(spec.residual && i == j ? 1.0 : 0.0);
        }
      }
    }
  }
}

// a batch Jacobian tensor scaled as the config says (min/max pick an element, like autodiff)
template <class T>
std::vector<T> scale(const training::LossConfig& cfg, const std::vector<T>& J, int kd) {
  std::vector<T> s(J.size());
  const double n = double(J.size());
  switch (cfg.scaling) {
    case training::JacScaling::none: return J;
    case training::JacScaling::minmax: {
      std::size_t lo = 0, hi = 0;
      for (std::size_t e = 0; e < J.size(); ++e) {
        if (value(J[e]) < value(J[lo])) lo = e;
        if (value(J[e]) > value(J[hi])) hi = e;
      }
      for (std::size_t e = 0; e < J.size(); ++e) s[e] = (J[e] - J[lo]) / (J[hi] - J[lo]);
      return s;
    }
    case training::JacScaling::zscore: {
      T mean(0.0), var(0.0);
      for (const T& e : J) mean = mean + e;
      mean = mean / T(n);
      for (const T& e : J) var = var + (e - mean) * (e - mean);
      const T sd = sqrt(var / T(n) + T(training::kZscoreEps));
      for (std::size_t e = 0; e < J.size(); ++e) s[e] = (J[e] - mean) / sd;
      return s;
    }
    case training::JacScaling::std:
      for (std::size_t e = 0; e < J.size(); ++e) {
        const double sd = cfg.jac_std[e % kd];
        s[e] = J[e] / T(sd > training::kScaleRangeFloor ? sd : 1.0);
      }
      return s;
  }
  return J;
}

/// The training loss of a batch, from the definitions in training/mlp.h.
template <class T>
T loss(const training::MlpSpec& spec, const training::LossConfig& cfg,
       const std::vector<T>& theta, int N, const double* inputs, const double* targets,
       const double* target_jac) {
  const int k = spec.n_out(), d = spec.n_in();
  T mse(0.0);
  std::vector<T> jac_all, true_all;
  for (int b = 0; b < N; ++b) {
    std::vector<T> pred, jac;
    forward(spec, theta, inputs + b * d, pred, jac);
    for (int i = 0; i < k; ++i) mse = mse + (pred[i] - T(targets[b * k + i])) * (pred[i] - T(targets[b * k + i]));
    jac_all.insert(jac_all.end(), jac.begin(), jac.end());
    for (int e = 0; e < k * d; ++e) true_all.push_back(T(target_jac[b * k * d + e]));
  }
  T total = T(cfg.lambda_mse) * mse / T(double(N) * k);
  if (cfg.lambda_jal == 0) return total;
  const std::vector<T> a = scale(cfg, jac_all, k * d), t = scale(cfg, true_all, k * d);
  T jal(0.0);
  const double n = double(a.size());
  for (int b = 0; b < N; ++b) {
    T sq(0.0);
    for (int e = b * k * d; e < (b + 1) * k * d; ++e) {
      const T diff = a[e] - t[e];
      if (cfg.metric == training::JalMetric::mse) jal = jal + diff * diff / T(n);
      if (cfg.metric == training::JalMetric::l1) jal = jal + abs(diff) / T(n);
      if (cfg.metric == training::JalMetric::huber) {
        const double delta = cfg.huber_delta;
        const T h = std::abs(value(diff)) <= delta ? diff * diff
                                                   : T(delta) * (T(2.0) * abs(diff) - T(delta));
        jal = jal + h / T(n);
      }
      sq = sq + diff * diff;
    }
    if (cfg.metric == training::JalMetric::frobenius) jal = jal + sqrt(sq) / T(double(N));
  }
  return total + T(cfg.lambda_jal) * jal;
}

}  // namespace phydream::testing::naive
