// Shared helpers for the test suites: random inputs per model, error metrics, and the list of
// model x integrator x dtype cases every derivative test runs over.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "engine/integrator.h"
#include "models/cartpole.h"
#include "models/double_pendulum.h"
#include "models/pendulum.h"

namespace phydream::testing {

/// One test case: a model template, a scalar type and an integrator.
template <template <class> class ModelT, class S, Integrator I>
struct Case {
  using Model = ModelT<S>;
  using ModelD = ModelT<double>;  // the same model in double, for references
  using Scalar = S;
  static constexpr Integrator integrator = I;
};

#define PHYDREAM_CASES_FOR(ModelT)                                                       \
  Case<ModelT, double, Integrator::euler>, Case<ModelT, double, Integrator::semi_implicit_euler>, \
      Case<ModelT, double, Integrator::rk4>, Case<ModelT, float, Integrator::euler>,     \
      Case<ModelT, float, Integrator::semi_implicit_euler>, Case<ModelT, float, Integrator::rk4>

using AllCases = ::testing::Types<PHYDREAM_CASES_FOR(models::Pendulum),
                                  PHYDREAM_CASES_FOR(models::DoublePendulum),
                                  PHYDREAM_CASES_FOR(models::Cartpole)>;

/// Readable names for typed tests: "DoublePendulum_rk4_f32".
struct CaseNames {
  template <class C>
  static std::string GetName(int) {
    std::string model;
    if constexpr (std::is_same_v<typename C::ModelD, models::Pendulum<double>>) model = "Pendulum";
    if constexpr (std::is_same_v<typename C::ModelD, models::DoublePendulum<double>>) {
      model = "DoublePendulum";
    }
    if constexpr (std::is_same_v<typename C::ModelD, models::Cartpole<double>>) model = "Cartpole";
    const char* integ = C::integrator == Integrator::euler                 ? "euler"
                        : C::integrator == Integrator::semi_implicit_euler ? "semi_implicit"
                                                                           : "rk4";
    return model + "_" + integ + (sizeof(typename C::Scalar) == 4 ? "_f32" : "_f64");
  }
};

/// Parameter values each model is tested with, in the registry's order (deliberately not all the
/// defaults: unequal masses and lengths catch swapped indices, damping tests its derivative).
template <class Model>
std::vector<double> test_param_values() {
  using S = typename Model::scalar_type;
  if constexpr (std::is_same_v<Model, models::Pendulum<S>>) {
    return {1.0, 1.0, 9.81, 0.1};  // mass, length, gravity, damping
  } else if constexpr (std::is_same_v<Model, models::DoublePendulum<S>>) {
    return {1.0, 1.3, 0.9, 1.1, 9.81};  // m1, m2, l1, l2, g
  } else {
    return {1.0, 0.1, 0.5, 9.8};  // mass_cart, mass_pole, length, gravity
  }
}

template <class Model>
typename Model::Params default_params() {
  const std::vector<double> v = test_param_values<Model>();
  return Model::params_from(v.data());
}

/// A typical timestep per model.
template <class Model>
double default_dt() {
  if constexpr (std::is_same_v<Model, models::DoublePendulum<typename Model::scalar_type>>) {
    return 0.1;  // the seed's
  } else if constexpr (std::is_same_v<Model, models::Cartpole<typename Model::scalar_type>>) {
    return 0.02;
  } else {
    return 0.05;
  }
}

/// A random state and action in a model's typical range (doubles).
template <class Model>
void random_input(std::mt19937_64& rng, double* x, double* u) {
  std::uniform_real_distribution<double> angle(-M_PI, M_PI), rate(-2.0, 2.0), unit(-1.0, 1.0);
  constexpr int nq = Model::nq;
  if constexpr (std::is_same_v<Model, models::Cartpole<typename Model::scalar_type>>) {
    x[0] = unit(rng);
    x[1] = 0.5 * angle(rng);
    x[2] = unit(rng);
    x[3] = rate(rng);
    u[0] = 10.0 * unit(rng);
  } else {
    for (int i = 0; i < nq; ++i) x[i] = angle(rng);
    for (int i = 0; i < nq; ++i) x[nq + i] = rate(rng);
    for (int i = 0; i < Model::nu; ++i) u[i] = unit(rng);
  }
}

/// max_i |a_i - b_i| / max(|b_i|, floor): relative error with an absolute floor.
/// A NaN on one side only is an infinite error; NaN on both sides counts as agreement.
inline double rel_err(const double* a, const double* b, int n, double floor = 1.0) {
  double worst = 0;
  for (int i = 0; i < n; ++i) {
    if (std::isnan(a[i]) || std::isnan(b[i])) {
      if (std::isnan(a[i]) != std::isnan(b[i])) return INFINITY;
      continue;
    }
    if (a[i] == b[i]) continue;  // equal infinities
    worst = std::max(worst, std::abs(a[i] - b[i]) / std::max(std::abs(b[i]), floor));
  }
  return worst;
}
inline double rel_err(const std::vector<double>& a, const std::vector<double>& b,
                      double floor = 1.0) {
  EXPECT_EQ(a.size(), b.size());
  return rel_err(a.data(), b.data(), static_cast<int>(std::min(a.size(), b.size())), floor);
}

template <class S>
std::vector<double> to_double(const std::vector<S>& v) {
  return std::vector<double>(v.begin(), v.end());
}

/// Tolerances for comparing a computation in S against an exact (float64) reference.
template <class S>
constexpr double rounding_tol() {
  return sizeof(S) == 4 ? 2e-5 : 1e-12;
}

}  // namespace phydream::testing
