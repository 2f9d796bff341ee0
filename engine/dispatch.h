// Turns the run-time integrator into a compile-time one, once per batched call, so every batch
// loop and kernel is specialised for its integrator.
#pragma once

#include <type_traits>

#include "engine/integrator.h"

namespace phydream {

/// Calls f(std::integral_constant<Integrator, I>{}) for the run-time `integrator`.
template <class F>
void dispatch_integrator(Integrator integrator, F&& f) {
  switch (integrator) {
    case Integrator::euler:
      f(std::integral_constant<Integrator, Integrator::euler>{});
      break;
    case Integrator::semi_implicit_euler:
      f(std::integral_constant<Integrator, Integrator::semi_implicit_euler>{});
      break;
    case Integrator::rk4:
      f(std::integral_constant<Integrator, Integrator::rk4>{});
      break;
  }
}

}  // namespace phydream
