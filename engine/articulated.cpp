// Articulated models as Simulator environments: configuration and the constraint check.
#include "engine/articulated.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "engine/articulated_engine.h"
#include "engine/backend.h"
#include "engine/errors.h"
#include "engine/model_json.h"

namespace phydream {

bool poison_workspaces() {
  static const bool on = [] {
    const char* v = std::getenv("PHYDREAM_POISON_WORKSPACES");
    return v != nullptr && std::strcmp(v, "1") == 0;
  }();
  return on;
}

namespace {

constexpr double kPi = 3.14159265358979323846;

std::string model_label(const Model& m) {
  return m.source.empty() ? std::string("model") : "model " + m.source;
}

std::string name_or(const std::vector<std::string>& names, int i, const char* kind) {
  if (i < static_cast<int>(names.size()) && !names[i].empty()) return names[i];
  return std::string(kind) + std::to_string(i);
}

}  // namespace

int parse_disable_flag(const std::string& name) {
  std::string known;
  for (const DisableFlagName& f : disable_flag_names()) {
    if (name == f.name) return f.bit;
    known += (known.empty() ? "" : ", ") + std::string(f.name);
  }
  throw InputError("unknown disable flag '" + name + "'; expected one of: " + known);
}

EnvInfo model_env_info(const Model& m) {
  EnvInfo e;
  std::string stem = m.source;
  if (const auto slash = stem.find_last_of('/'); slash != std::string::npos) stem = stem.substr(slash + 1);
  if (const auto dot = stem.find_last_of('.'); dot != std::string::npos && dot > 0) stem = stem.substr(0, dot);
  // the model's own name (MJCF <mujoco model=...>), else the file's
  e.name = !m.name.empty() ? m.name : stem.empty() ? "model" : stem;
  e.description = "articulated model" + (m.source.empty() ? std::string() : " from " + m.source) +
                  ": " + std::to_string(m.nbody - 1) + " bodies, " + std::to_string(m.njnt) +
                  " joints, nq " + std::to_string(m.nq) + ", nv " + std::to_string(m.nv) +
                  ", nu " + std::to_string(m.nu);
  e.nq = m.nq;
  e.nx = m.nq + m.nv;
  e.ndx = 2 * m.nv;
  e.nu = m.nu;
  e.dt = m.opt_timestep;
  e.integrator = m.opt_integrator == ModelIntegrator::rk4 ? Integrator::rk4 : Integrator::semi_implicit_euler;

  std::vector<std::string> vel_names;
  for (int j = 0; j < m.njnt; ++j) {
    const std::string n = name_or(m.jnt_name, j, "joint");
    const int type = m.jnt_type[j];
    const int adr = m.jnt_qposadr[j];
    auto add_pos = [&](const std::string& name, double lo, double hi) {
      e.state_names.push_back(name);
      e.state_low.push_back(lo);
      e.state_high.push_back(hi);
    };
    if (type == static_cast<int>(JointType::hinge) || type == static_cast<int>(JointType::slide)) {
      const double half = type == static_cast<int>(JointType::hinge) ? kPi : 1.0;
      if (m.jnt_limited[j]) {
        add_pos(n, m.jnt_range[2 * j], m.jnt_range[2 * j + 1]);
      } else {
        add_pos(n, m.qpos0[adr] - half, m.qpos0[adr] + half);
      }
      vel_names.push_back(n + ".vel");
    } else {
      int k = adr;
      if (type == static_cast<int>(JointType::free)) {
        for (const char* c : {".x", ".y", ".z"}) {
          add_pos(n + c, m.qpos0[k] - 1.0, m.qpos0[k] + 1.0);
          ++k;
        }
        for (const char* c : {".vx", ".vy", ".vz"}) vel_names.push_back(n + c);
      }
      for (const char* c : {".qw", ".qx", ".qy", ".qz"}) {
        add_pos(n + c, m.qpos0[k], m.qpos0[k]);
        ++k;
      }
      for (const char* c : {".wx", ".wy", ".wz"}) vel_names.push_back(n + c);
    }
  }
  for (const std::string& v : vel_names) {
    e.state_names.push_back(v);
    e.state_low.push_back(-1.0);
    e.state_high.push_back(1.0);
  }
  for (int a = 0; a < m.nu; ++a) {
    e.action_names.push_back(name_or(m.actuator_name, a, "actuator"));
    const bool limited = m.actuator_ctrllimited[a] != 0;
    e.action_low.push_back(limited ? m.actuator_ctrlrange[2 * a] : -1.0);
    e.action_high.push_back(limited ? m.actuator_ctrlrange[2 * a + 1] : 1.0);
  }
  return e;
}

std::string constraint_features(const Model& m) {
  const int flags = m.opt_disableflags;
  if ((flags & kDisableConstraint) != 0) return {};
  std::vector<std::string> what;
  if ((flags & kDisableContact) == 0) {
    // the engine's own candidate list (engine/collision.h), so that this agrees with what it
    // simulates
    const std::vector<std::array<int, 2>> pairs = collision_candidates(m);
    if (!pairs.empty()) {
      what.push_back("contacts (geoms '" + name_or(m.geom_name, pairs[0][0], "geom") + "' and '" +
                     name_or(m.geom_name, pairs[0][1], "geom") + "' can collide)");
    }
  }
  if ((flags & kDisableLimit) == 0) {
    for (int j = 0; j < m.njnt; ++j) {
      if (m.jnt_limited[j]) {
        what.push_back("joint limits (joint '" + name_or(m.jnt_name, j, "joint") + "' is limited)");
        break;
      }
    }
  }
  if ((flags & kDisableFrictionloss) == 0) {
    for (int k = 0; k < m.nv; ++k) {
      if (m.dof_frictionloss[k] > 0) {
        what.push_back("friction loss (joint '" + name_or(m.jnt_name, m.dof_jntid[k], "joint") +
                       "' has frictionloss > 0)");
        break;
      }
    }
  }
  std::string out;
  for (std::size_t i = 0; i < what.size(); ++i) out += (i ? ", " : "") + what[i];
  return out;
}

std::string gradient_restriction(const Model& m, bool /*reverse*/, GradMode mode) {
  if (mode == GradMode::fd) return {};
  const std::string features = constraint_features(m);
  if (features.empty()) return {};
  if ((m.opt_disableflags & kDisableLimit) == 0) {
    for (int j = 0; j < m.njnt; ++j) {
      if (m.jnt_limited[j] && m.jnt_type[j] == static_cast<int>(JointType::ball)) {
        return model_label(m) + ": derivatives through the limit of ball joint '" +
               name_or(m.jnt_name, j, "joint") + "' are not implemented yet; use central "
               "differences (--grad-mode fd, Simulator::jacobian_fd) or disable limits "
               "(--disable limit)";
      }
    }
  }
  return {};
}

EngineConfig resolve_model_config(const SimulatorOptions& options, std::string* reason) {
  if (!options.model_file.empty() && options.model != nullptr) {
    throw InputError("SimulatorOptions: give model_file or model, not both");
  }
  if (!options.params.empty()) {
    throw InputError("parameters (--param) apply to the built-in environments; edit the model "
                     "file to change " + options.params.front().first);
  }
  auto model = std::make_shared<Model>(options.model != nullptr ? *options.model
                                                                : load_model(options.model_file));
  for (const std::string& flag : options.disable) model->opt_disableflags |= parse_disable_flag(flag);
  if (options.dt) {
    if (!std::isfinite(*options.dt) || *options.dt <= 0) {
      std::ostringstream os;
      os << "dt must be a finite value > 0, got " << *options.dt;
      throw InputError(os.str());
    }
    model->opt_timestep = *options.dt;
  }
  if (options.integrator) {
    switch (*options.integrator) {
      case Integrator::semi_implicit_euler: model->opt_integrator = ModelIntegrator::euler; break;
      case Integrator::rk4: model->opt_integrator = ModelIntegrator::rk4; break;
      case Integrator::euler:
        throw InputError("integrator 'euler' (explicit) is not available for articulated models; "
                         "use semi_implicit_euler (MuJoCo's Euler, damping implicit) or rk4");
    }
  }
  // the derivatives take a ball joint's rotation axes as the body's axes, which a later rotation
  // of the same body would turn (MuJoCo's cdof makes the same assumption)
  for (int b = 1; b < model->nbody; ++b) {
    bool ball_seen = false;
    for (int j = model->body_jntadr[b]; j < model->body_jntadr[b] + model->body_jntnum[b]; ++j) {
      const int type = model->jnt_type[j];
      if (ball_seen && (type == static_cast<int>(JointType::hinge) ||
                        type == static_cast<int>(JointType::ball))) {
        throw InputError(model_label(*model) + ": body '" + name_or(model->body_name, b, "body") +
                         "' has a rotating joint ('" + name_or(model->jnt_name, j, "joint") +
                         "') after a ball joint; PhyDream's derivatives do not support that "
                         "yet: put the ball joint last, or the other joint on a child body");
      }
      ball_seen = ball_seen || type == static_cast<int>(JointType::ball);
    }
  }
  if (options.threads < 0) {
    throw InputError("threads must be >= 0 (0 = all cores), got " + std::to_string(options.threads));
  }

  EngineConfig config;
  config.env = model_env_info(*model);
  config.model = model;
  config.integrator = config.env.integrator;
  config.dt = model->opt_timestep;
  config.threads = options.threads;
  config.stream = options.stream;
  config.backend = resolve_backend(options.backend, reason);
  config.grad_mode = options.grad_mode;
  config.toi_correction = options.toi_correction;
  return config;
}

template <class S>
std::unique_ptr<StepEngine<S>> make_articulated_engine(const EngineConfig& config) {
  if (config.backend == Backend::cuda) {
#if defined(PHYDREAM_WITH_CUDA)
    return kernels::make_articulated_cuda_engine<S>(config);
#else
    throw BackendError("backend 'cuda': this build has no CUDA kernels");
#endif
  }
  return std::make_unique<ArticulatedCpuEngine<S>>(config);
}

template std::unique_ptr<StepEngine<float>> make_articulated_engine<float>(const EngineConfig&);
template std::unique_ptr<StepEngine<double>> make_articulated_engine<double>(const EngineConfig&);

}  // namespace phydream
