#include "training/mlp.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

#include "engine/errors.h"

namespace phydream::training {

const char* activation_name(Activation a) {
  switch (a) {
    case Activation::tanh: return "tanh";
    case Activation::silu: return "silu";
    case Activation::softplus: return "softplus";
    case Activation::relu: return "relu";
  }
  return "?";
}

Activation parse_activation(const std::string& name) {
  if (name == "tanh") return Activation::tanh;
  if (name == "silu") return Activation::silu;
  if (name == "softplus") return Activation::softplus;
  if (name == "relu") return Activation::relu;
  throw InputError("unknown activation '" + name + "'; expected one of: tanh, silu, softplus, relu");
}

const char* metric_name(JalMetric m) {
  switch (m) {
    case JalMetric::mse: return "mse";
    case JalMetric::frobenius: return "frobenius";
    case JalMetric::l1: return "l1";
    case JalMetric::huber: return "huber";
  }
  return "?";
}

JalMetric parse_metric(const std::string& name) {
  if (name == "mse") return JalMetric::mse;
  if (name == "frobenius") return JalMetric::frobenius;
  if (name == "l1") return JalMetric::l1;
  if (name == "huber") return JalMetric::huber;
  throw InputError("unknown JAL metric '" + name + "'; expected one of: mse, frobenius, l1, huber");
}

const char* scaling_name(JacScaling s) {
  switch (s) {
    case JacScaling::none: return "none";
    case JacScaling::minmax: return "minmax";
    case JacScaling::zscore: return "zscore";
    case JacScaling::std: return "std";
  }
  return "?";
}

JacScaling parse_scaling(const std::string& name) {
  if (name == "none") return JacScaling::none;
  if (name == "minmax") return JacScaling::minmax;
  if (name == "zscore") return JacScaling::zscore;
  if (name == "std") return JacScaling::std;
  throw InputError("unknown Jacobian scaling '" + name +
                   "'; expected one of: none, minmax, zscore, std");
}

std::size_t MlpSpec::weight_offset(int l) const {
  std::size_t off = 0;
  for (int k = 0; k < l; ++k) off += std::size_t(layer_out(k)) * (layer_in(k) + 1);
  return off;
}

std::size_t MlpSpec::num_params() const { return weight_offset(num_layers()); }

int MlpSpec::max_width() const {
  int w = std::max(n_in(), n_out());
  for (int h : hidden) w = std::max(w, h);
  return w;
}

void MlpSpec::validate() const {
  if (nx <= 0 || nu < 0) {
    throw InputError("MLP: nx must be > 0 and nu >= 0, got nx = " + std::to_string(nx) +
                     ", nu = " + std::to_string(nu));
  }
  for (std::size_t l = 0; l < hidden.size(); ++l) {
    if (hidden[l] <= 0) {
      throw InputError("MLP: hidden layer " + std::to_string(l) + " has width " +
                       std::to_string(hidden[l]) + "; widths must be > 0");
    }
  }
  auto check_stats = [](const char* name, const std::vector<double>& v, int n, bool positive) {
    if (static_cast<int>(v.size()) != n) {
      throw InputError(std::string("MLP: ") + name + " has " + std::to_string(v.size()) +
                       " entries, expected " + std::to_string(n));
    }
    for (double e : v) {
      if (!std::isfinite(e) || (positive && !(e > 0))) {
        throw InputError(std::string("MLP: ") + name + " must be finite" +
                         (positive ? " and > 0" : ""));
      }
    }
  };
  check_stats("in_mean", in_mean, n_in(), false);
  check_stats("in_std", in_std, n_in(), true);
  check_stats("out_mean", out_mean, n_out(), false);
  check_stats("out_std", out_std, n_out(), true);
}

void MlpSpec::set_identity_normalisation() {
  in_mean.assign(n_in(), 0.0);
  in_std.assign(n_in(), 1.0);
  out_mean.assign(n_out(), 0.0);
  out_std.assign(n_out(), 1.0);
}

template <class S>
std::vector<S> init_params(const MlpSpec& spec, std::uint64_t seed) {
  std::vector<S> theta(spec.num_params(), S(0));
  std::mt19937_64 rng(seed);
  for (int l = 0; l < spec.num_layers(); ++l) {
    const int out = spec.layer_out(l), in = spec.layer_in(l);
    // Glorot uniform; ReLU-like activations get the He factor sqrt(2) on the bound
    const bool relu_like = spec.activation == Activation::relu ||
                           spec.activation == Activation::silu ||
                           spec.activation == Activation::softplus;
    const double gain = (relu_like && l < spec.num_layers() - 1) ? std::sqrt(2.0) : 1.0;
    const double bound = gain * std::sqrt(6.0 / (in + out));
    std::uniform_real_distribution<double> dist(-bound, bound);
    S* w = theta.data() + spec.weight_offset(l);
    for (std::size_t i = 0; i < std::size_t(out) * in; ++i) w[i] = static_cast<S>(dist(rng));
  }
  return theta;
}

void LossConfig::validate(int nx, int nu) const {
  if (!std::isfinite(lambda_mse) || !std::isfinite(lambda_jal) || lambda_mse < 0 ||
      lambda_jal < 0) {
    throw InputError("loss: lambda_mse and lambda_jal must be finite and >= 0");
  }
  if (lambda_mse == 0 && lambda_jal == 0) {
    throw InputError("loss: lambda_mse and lambda_jal are both 0; nothing to train");
  }
  if (!std::isfinite(huber_delta) || huber_delta <= 0) {
    char got[32];
    std::snprintf(got, sizeof got, "%g", huber_delta);
    throw InputError(std::string("loss: huber_delta must be finite and > 0, got ") + got);
  }
  // the per-entry statistics matter only when there is a JAL term to scale
  if (scaling == JacScaling::std && uses_jacobian()) {
    const std::size_t n = std::size_t(nx) * (nx + nu);
    if (jac_std.size() != n) {
      throw InputError("loss: scaling 'std' needs jac_std with " + std::to_string(n) +
                       " entries (nx x (nx + nu)), got " + std::to_string(jac_std.size()));
    }
    for (double s : jac_std) {
      if (!std::isfinite(s) || s < 0) throw InputError("loss: jac_std entries must be finite, >= 0");
    }
  }
}

template std::vector<float> init_params(const MlpSpec&, std::uint64_t);
template std::vector<double> init_params(const MlpSpec&, std::uint64_t);

}  // namespace phydream::training
