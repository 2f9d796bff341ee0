// Activations of the MLP with their first and second derivatives, for host and device.
//
// JAL's gradient runs reverse mode over the network's input Jacobian, which is built from
// sigma'(z); differentiating that needs sigma''(z). ReLU is allowed but its sigma'' is zero
// almost everywhere, so JAL cannot shape it through the curvature term (the CLI warns).
#pragma once

#include "engine/core.h"

namespace phydream::training {

enum class Activation : int { tanh = 0, silu = 1, softplus = 2, relu = 3 };

namespace detail {
PHYDREAM_HD float exp_(float x) { return expf(x); }
PHYDREAM_HD double exp_(double x) { return exp(x); }
PHYDREAM_HD float log1p_(float x) { return log1pf(x); }
PHYDREAM_HD double log1p_(double x) { return log1p(x); }
PHYDREAM_HD float tanh_(float x) { return tanhf(x); }
PHYDREAM_HD double tanh_(double x) { return tanh(x); }

// the logistic function, evaluated without overflow for either sign
template <class S>
PHYDREAM_HD S sigmoid(S z) {
  if (z >= S(0)) return S(1) / (S(1) + exp_(-z));
  const S e = exp_(z);
  return e / (S(1) + e);
}
}  // namespace detail

/// tanh's sigma'(z) and sigma''(z) from t = tanh(z).
template <class S>
PHYDREAM_HD void tanh_derivatives(S t, S* d1, S* d2) {
  *d1 = S(1) - t * t;
  *d2 = S(-2) * t * (S(1) - t * t);
}

/// sigma(z), sigma'(z) and sigma''(z) in one evaluation.
template <class S>
PHYDREAM_HD void activate(Activation a, S z, S* f, S* d1, S* d2) {
  switch (a) {
    case Activation::tanh: {
      const S t = detail::tanh_(z);
      *f = t;
      tanh_derivatives(t, d1, d2);
      return;
    }
    case Activation::silu: {
      // z s(z); (z s)' = s + z s (1 - s); (z s)'' = s (1 - s) (2 + z (1 - 2 s))
      const S s = detail::sigmoid(z);
      *f = z * s;
      *d1 = s + z * s * (S(1) - s);
      *d2 = s * (S(1) - s) * (S(2) + z * (S(1) - S(2) * s));
      return;
    }
    case Activation::softplus: {
      // log(1 + e^z) = max(z, 0) + log1p(e^-|z|), stable for large |z|
      const S s = detail::sigmoid(z);
      *f = (z > S(0) ? z : S(0)) + detail::log1p_(detail::exp_(-abs_(z)));
      *d1 = s;
      *d2 = s * (S(1) - s);
      return;
    }
    case Activation::relu:
    default:
      *f = z > S(0) ? z : S(0);
      *d1 = z > S(0) ? S(1) : S(0);
      *d2 = S(0);
      return;
  }
}

}  // namespace phydream::training
