// Fuzz target: the engine on arbitrary states and controls, as an embedding program may pass
// them (the command-line program refuses non-finite inputs; the library does not). The first
// byte picks an asset model (assets/*.xml, contacts and limits on), the gradient mode (ift,
// unrolled, fd) and the Jacobian route (forward, reverse, analytic); the rest is read as float64
// values for the state and the controls (zero where it runs out). The solver is capped at 8
// iterations, which absurd inputs use up. One step, one Jacobian, one VJP and the solver status
// on the CPU backend: any values may come out (non-finite ones for non-finite or huge inputs,
// flagged by solver_status), but no fault, no sanitizer report and no exception.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/model_json.h"
#include "engine/simulator.h"

namespace {

constexpr std::array<const char*, 10> kModels = {
    "bounce", "bounce_wall", "box_stack", "cartpole", "double_pendulum",
    "finger", "half_cheetah", "inverted_double_pendulum", "reacher", "two_balls"};
constexpr std::array<phydream::GradMode, 3> kGradModes = {
    phydream::GradMode::ift, phydream::GradMode::unrolled, phydream::GradMode::fd};
constexpr std::array<phydream::JacobianMode, 3> kRoutes = {
    phydream::JacobianMode::forward, phydream::JacobianMode::reverse, phydream::JacobianMode::analytic};

phydream::Simulator<double>& simulator(int model, int grad_mode) {
  static std::map<int, std::unique_ptr<phydream::Simulator<double>>> cache;
  std::unique_ptr<phydream::Simulator<double>>& sim = cache[model * 3 + grad_mode];
  if (!sim) {
    phydream::Model m = phydream::load_model(std::string(PHYDREAM_SOURCE_DIR) + "/assets/" + kModels[model] + ".xml");
    // absurd inputs often keep the solver from converging: a few iterations reach every path
    // at a fraction of the cost of the assets' 100 to 200
    if (m.opt_iterations > 8) m.opt_iterations = 8;
    phydream::SimulatorOptions o;
    o.model = std::make_shared<const phydream::Model>(std::move(m));
    o.backend = phydream::Backend::cpu;
    o.threads = 1;
    o.grad_mode = kGradModes[grad_mode];
    sim = std::make_unique<phydream::Simulator<double>>(o);
  }
  return *sim;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const int pick = data[0];
  const int model = pick % static_cast<int>(kModels.size());
  int grad_mode = (pick / static_cast<int>(kModels.size())) % 3;
  // the box stack (nv 30, up to 80 rows) through the unrolled solver or 60 differenced steps
  // costs a fuzzing iteration a second under the sanitizers: ift only
  if (std::string(kModels[model]) == "box_stack") grad_mode = 0;
  const int route = (pick / (3 * static_cast<int>(kModels.size()))) % 3;
  phydream::Simulator<double>& sim = simulator(model, grad_mode);
  const int nx = sim.nx(), ndx = sim.ndx(), nu = sim.nu();
  std::vector<double> values(nx + nu, 0.0);
  const std::size_t n = (size - 1) / sizeof(double);
  for (std::size_t i = 0; i < n && i < values.size(); ++i) {
    std::memcpy(&values[i], data + 1 + i * sizeof(double), sizeof(double));
  }
  const double* x = values.data();
  const double* u = values.data() + nx;
  std::vector<double> next(nx), jx(ndx * ndx), ju(ndx * nu), gx(ndx, 0.0), gu(nu, 0.0), g(ndx, 1.0);
  std::uint8_t status = 0;
  sim.step(1, x, u, next.data());
  sim.solver_status(1, &status);
  sim.jacobian(1, x, u, next.data(), jx.data(), ju.data(), kRoutes[route]);
  sim.step_vjp(1, x, u, gx.data(), gu.data(), g.data());
  return 0;
}
