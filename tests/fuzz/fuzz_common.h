// Shared by the fuzz targets (tests/fuzz/README.md): what an input may do, and a check that a
// model the loaders accept also simulates and differentiates without a fault.
//
// A loader given any bytes either returns a model or throws phydream::InputError; any other
// exception escapes the target, and libFuzzer (or replay_main.cpp) reports it as a failure, as
// it does a crash or a sanitizer report.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "engine/errors.h"
#include "engine/model.h"
#include "engine/simulator.h"

namespace phydream::fuzz {

// A model small enough to step in a fuzzing iteration (the loaders accept larger ones).
inline bool small_enough(const Model& m) {
  return m.nbody <= 32 && m.ngeom <= 64 && m.nv <= 48 && m.nu <= 32 && m.opt_iterations <= 200;
}

// Steps the model from qpos0 at rest with zero controls, then takes its Jacobian (closed form)
// and a VJP, on the CPU backend, one thread. The results may be anything a valid model gives
// (even non-finite ones, for a model with absurd parameters); only faults count.
inline void exercise(Model model) {
  if (!small_enough(model)) return;
  SimulatorOptions options;
  options.model = std::make_shared<const Model>(std::move(model));
  options.backend = Backend::cpu;
  options.threads = 1;
  Simulator<double> sim(options);
  const Model& m = *sim.model();
  const int nx = sim.nx(), ndx = sim.ndx(), nu = sim.nu();
  std::vector<double> x(nx, 0.0), u(nu, 0.0), next(nx), jx(ndx * ndx), ju(ndx * nu);
  for (int i = 0; i < m.nq; ++i) x[i] = m.qpos0[i];
  for (int t = 0; t < 3; ++t) {
    sim.step(1, x.data(), u.data(), next.data());
    x.swap(next);
  }
  sim.jacobian(1, x.data(), u.data(), next.data(), jx.data(), ju.data());
  std::vector<double> gnext(ndx, 1.0), gx(ndx, 0.0), gu(nu, 0.0);
  sim.step_vjp(1, x.data(), u.data(), gx.data(), gu.data(), gnext.data());
}

}  // namespace phydream::fuzz
