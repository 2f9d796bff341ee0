// Backend names, parsing and run-time selection.
#include "engine/backend.h"

#include "engine/errors.h"

namespace phydream {

const char* backend_name(Backend backend) {
  switch (backend) {
    case Backend::automatic: return "auto";
    case Backend::cpu: return "cpu";
    case Backend::cuda: return "cuda";
  }
  return "?";
}

Backend parse_backend(const std::string& name) {
  if (name == "auto") return Backend::automatic;
  if (name == "cpu") return Backend::cpu;
  if (name == "cuda") return Backend::cuda;
  throw InputError("unknown backend '" + name + "'; expected one of: auto, cpu, cuda");
}

const char* integrator_name(Integrator integrator) {
  switch (integrator) {
    case Integrator::euler: return "euler";
    case Integrator::semi_implicit_euler: return "semi_implicit_euler";
    case Integrator::rk4: return "rk4";
  }
  return "?";
}

Integrator parse_integrator(const std::string& name) {
  if (name == "euler") return Integrator::euler;
  if (name == "semi_implicit_euler") return Integrator::semi_implicit_euler;
  if (name == "rk4") return Integrator::rk4;
  throw InputError("unknown integrator '" + name +
                   "'; expected one of: euler, semi_implicit_euler, rk4");
}

Backend resolve_backend(Backend requested, std::string* reason) {
  auto say = [&](const std::string& why) {
    if (reason != nullptr) *reason = why;
  };
  if (requested == Backend::cpu) {
    say("CPU backend requested");
    return Backend::cpu;
  }
  if (!cuda_compiled()) {
    if (requested == Backend::cuda) {
      throw BackendError(
          "backend 'cuda' requested but this build has no CUDA kernels "
          "(configure with -DPHYDREAM_CUDA=ON where nvcc is available), or use --backend cpu");
    }
    say("this build has no CUDA kernels; running on the CPU");
    return Backend::cpu;
  }
  if (cuda_device_count() == 0) {
    if (requested == Backend::cuda) {
      throw BackendError("backend 'cuda' requested but no CUDA device is visible (" +
                         cuda_device_description() + "); use --backend cpu or auto");
    }
    say("no CUDA device visible (" + cuda_device_description() + "); running on the CPU");
    return Backend::cpu;
  }
  say("CUDA device visible: " + cuda_device_description());
  return Backend::cuda;
}

}  // namespace phydream
