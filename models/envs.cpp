// The built-in closed-form environments and the Simulator constructor.
#include "models/envs.h"

#include <cmath>
#include <memory>
#include <sstream>

#include "engine/articulated.h"
#include "engine/cpu_engine.h"
#include "engine/errors.h"
#include "models/cartpole.h"
#include "models/double_pendulum.h"
#include "models/pendulum.h"

#if defined(PHYDREAM_WITH_CUDA)
#include "engine/cuda_engine_factory.h"
#endif

namespace phydream {

namespace {

ParamInfo positive(const char* name, double value, const char* description) {
  return ParamInfo{name, value, 0.0, false, true, description};
}
ParamInfo nonnegative(const char* name, double value, const char* description) {
  return ParamInfo{name, value, 0.0, true, true, description};
}
ParamInfo any_finite(const char* name, double value, const char* description) {
  return ParamInfo{name, value, 0.0, false, false, description};
}

std::vector<EnvInfo> make_environments() {
  std::vector<EnvInfo> envs;

  EnvInfo pendulum;
  pendulum.name = "pendulum";
  pendulum.description = "damped pendulum, point mass on a massless rod, torque at the pivot";
  pendulum.nq = 1;
  pendulum.nu = 1;
  pendulum.dt = 0.05;
  pendulum.integrator = Integrator::semi_implicit_euler;
  pendulum.state_names = {"theta", "omega"};
  pendulum.action_names = {"torque"};
  pendulum.params = {positive("mass", 1.0, "bob mass, kg"),
                     positive("length", 1.0, "rod length, m"),
                     any_finite("gravity", 9.81, "gravitational acceleration, m/s^2"),
                     nonnegative("damping", 0.0, "viscous damping at the pivot, N m s/rad")};
  pendulum.state_low = {-M_PI, -4.0};
  pendulum.state_high = {M_PI, 4.0};
  pendulum.action_low = {-2.0};
  pendulum.action_high = {2.0};
  envs.push_back(pendulum);

  EnvInfo dp;
  dp.name = "double_pendulum";
  dp.description =
      "the PhyDream seed's double pendulum (section 3.1): actions added to the angular "
      "accelerations, explicit Euler, dt = 0.1";
  dp.nq = 2;
  dp.nu = 2;
  dp.dt = 0.1;
  dp.integrator = Integrator::euler;
  dp.state_names = {"theta1", "theta2", "omega1", "omega2"};
  dp.action_names = {"a1", "a2"};
  dp.params = {positive("m1", 1.0, "first mass, kg"), positive("m2", 1.0, "second mass, kg"),
               positive("l1", 1.0, "first rod length, m"),
               positive("l2", 1.0, "second rod length, m"),
               any_finite("g", 9.81, "gravitational acceleration, m/s^2")};
  dp.state_low = {-M_PI, -M_PI, -2.0, -2.0};
  dp.state_high = {M_PI, M_PI, 2.0, 2.0};
  dp.action_low = {-1.0, -1.0};
  dp.action_high = {1.0, 1.0};
  envs.push_back(dp);

  EnvInfo cp;
  cp.name = "cartpole";
  cp.description = "classic cart-pole (Barto et al. 1983, frictionless as in gym), force on the cart";
  cp.nq = 2;
  cp.nu = 1;
  cp.dt = 0.02;
  cp.integrator = Integrator::euler;
  cp.state_names = {"x", "theta", "xdot", "thetadot"};
  cp.action_names = {"force"};
  cp.params = {positive("mass_cart", 1.0, "cart mass, kg"),
               positive("mass_pole", 0.1, "pole mass, kg"),
               positive("length", 0.5, "pole half-length, m"),
               any_finite("gravity", 9.8, "gravitational acceleration, m/s^2")};
  cp.state_low = {-2.4, -M_PI / 4, -2.0, -2.0};
  cp.state_high = {2.4, M_PI / 4, 2.0, 2.0};
  cp.action_low = {-10.0};
  cp.action_high = {10.0};
  envs.push_back(cp);

  for (EnvInfo& e : envs) e.ndx = e.nx = 2 * e.nq;
  return envs;
}

// the engine for one model type on the resolved backend
template <template <class> class ModelT, class S>
std::unique_ptr<StepEngine<S>> make_engine(const EngineConfig& config) {
  using Model = ModelT<S>;
  static_assert(Model::nparams > 0);
  if (config.backend == Backend::cuda) {
#if defined(PHYDREAM_WITH_CUDA)
    return make_cuda_engine<Model>(config);
#else
    throw BackendError("backend 'cuda': this build has no CUDA kernels");
#endif
  }
  return std::make_unique<CpuEngine<Model>>(config);
}

template <class S>
std::unique_ptr<StepEngine<S>> make_engine_for(const EngineConfig& config) {
  if (config.model != nullptr) return make_articulated_engine<S>(config);
  const std::string& name = config.env.name;
  if (name == "pendulum") return make_engine<models::Pendulum, S>(config);
  if (name == "double_pendulum") return make_engine<models::DoublePendulum, S>(config);
  if (name == "cartpole") return make_engine<models::Cartpole, S>(config);
  throw InputError("no engine for environment '" + name + "'");
}

std::string format_value(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

}  // namespace

const std::vector<EnvInfo>& environments() {
  static const std::vector<EnvInfo> envs = make_environments();
  return envs;
}

const EnvInfo& find_env(const std::string& name) {
  std::string known;
  for (const EnvInfo& e : environments()) {
    if (e.name == name) return e;
    known += (known.empty() ? "" : ", ") + e.name;
  }
  throw InputError("unknown environment '" + name + "'; expected one of: " + known);
}

EngineConfig resolve_config(const SimulatorOptions& options, std::string* reason) {
  if (!options.model_file.empty() || options.model != nullptr) {
    return resolve_model_config(options, reason);
  }
  if (!options.disable.empty()) {
    throw InputError("disable flags apply to articulated models (a model file), not to the "
                     "built-in environment '" + options.env + "'");
  }
  if (options.grad_mode != GradMode::ift) {
    throw InputError("gradient modes other than ift apply to articulated models (a model file), "
                     "whose constraint solver they differentiate; the built-in environment '" +
                     options.env + "' has analytic derivatives and central differences "
                     "(jacobian --mode fd, Simulator::jacobian_fd)");
  }
  if (options.toi_correction) {
    throw InputError("the time-of-impact correction (toi_correction) applies to articulated "
                     "models with contact (a model file); the built-in environment '" +
                     options.env + "' has no contact");
  }
  EngineConfig config;
  config.env = find_env(options.env);
  const EnvInfo& env = config.env;

  // parameters: defaults, then overrides by name, each checked against its range
  for (const ParamInfo& p : env.params) config.params.push_back(p.default_value);
  for (const auto& [name, value] : options.params) {
    std::size_t index = env.params.size();
    std::string known;
    for (std::size_t i = 0; i < env.params.size(); ++i) {
      if (env.params[i].name == name) index = i;
      known += (i ? ", " : "") + env.params[i].name;
    }
    if (index == env.params.size()) {
      throw InputError("unknown parameter '" + name + "' for environment '" + env.name +
                       "'; expected one of: " + known);
    }
    const ParamInfo& p = env.params[index];
    const bool in_range = !p.bounded_below ||
                          (p.lower_inclusive ? value >= p.lower : value > p.lower);
    if (!std::isfinite(value) || !in_range) {
      const std::string bound = !p.bounded_below ? "a finite value"
                                : p.lower_inclusive ? "a finite value >= " + format_value(p.lower)
                                                    : "a finite value > " + format_value(p.lower);
      throw InputError("parameter '" + name + "' of environment '" + env.name + "' must be " +
                       bound + ", got " + format_value(value));
    }
    config.params[index] = value;
  }

  config.integrator = options.integrator.value_or(env.integrator);
  config.dt = options.dt.value_or(env.dt);
  if (!std::isfinite(config.dt) || config.dt <= 0) {
    throw InputError("dt must be a finite value > 0, got " + format_value(config.dt));
  }
  if (options.threads < 0) {
    throw InputError("threads must be >= 0 (0 = all cores), got " +
                     std::to_string(options.threads));
  }
  config.threads = options.threads;
  config.stream = options.stream;
  config.backend = resolve_backend(options.backend, reason);
  return config;
}

template <class S>
Simulator<S>::Simulator(const SimulatorOptions& options)
    : config_(resolve_config(options, &backend_reason_)),
      engine_(make_engine_for<S>(config_)) {}

template Simulator<float>::Simulator(const SimulatorOptions&);
template Simulator<double>::Simulator(const SimulatorOptions&);

}  // namespace phydream
