// Adam with bias correction (Kingma & Ba 2015, Algorithm 1) and optional decoupled weight decay
// (Loshchilov & Hutter 2019), one parameter at a time for host loops and kernels.
#pragma once

#include "engine/core.h"

namespace phydream::training {

struct AdamConfig {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;  // decoupled: theta -= lr * wd * theta
};

/// The per-step constants of an update at step t (1-based) with learning rate lr.
struct AdamStep {
  double lr = 0, beta1 = 0, beta2 = 0, eps = 0, weight_decay = 0;
  double bias1 = 1, bias2 = 1;  // 1 - beta1^t, 1 - beta2^t
};

/// One parameter: m, v are its moment estimates, g its gradient.
template <class S>
PHYDREAM_HD void adam_update(const AdamStep& a, S* theta, S* m, S* v, S g) {
  *m = S(a.beta1) * *m + S(1 - a.beta1) * g;
  *v = S(a.beta2) * *v + S(1 - a.beta2) * g * g;
  const S m_hat = *m / S(a.bias1), v_hat = *v / S(a.bias2);
  *theta -= S(a.lr) * (m_hat / (sqrt_(v_hat) + S(a.eps)) + S(a.weight_decay) * *theta);
}

}  // namespace phydream::training
