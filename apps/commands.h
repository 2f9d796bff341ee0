// The subcommands of the `phydream` program. Each returns the process exit status; bad input
// is thrown as InputError (exit 2), backend and I/O failures as other exceptions (exit 1).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace phydream::cli {

/// Options every simulating subcommand shares.
struct SimArgs {
  std::string env;                   // a built-in environment, or
  std::string model;                 // an articulated model file (.xml MJCF, .json)
  std::vector<std::string> disable;  // model disable flags ("contact", "limit", ...)
  std::vector<std::string> params;  // "name=value"
  std::string integrator;           // empty: the environment's default
  std::optional<double> dt;         // unset: the environment's default
  std::string backend = "auto";
  std::string dtype = "f64";
  int threads = 0;
  std::string grad_mode = "ift";  // ift | unrolled | fd (articulated models)
};

struct StepArgs {
  SimArgs sim;
  std::string state, action, out;
  bool jacobian = false;
  std::string mode = "analytic";  // fwd | rev | analytic | fd
  double fd_eps = 0;         // 0: the default for the dtype
  bool allow_nonfinite = false;
};

struct RolloutArgs {
  SimArgs sim;
  std::string state, actions, out;
  bool grad = false;
  std::int64_t checkpoint = -1;  // -1: use the stored trajectory; 0: sqrt(T); k: every k steps
  bool toi = false;              // --grad: the time-of-impact correction (articulated models)
  bool allow_nonfinite = false;
};

struct GradcheckArgs {
  SimArgs sim;
  std::string states, actions;
  double fd_eps = 0;  // 0: the default for the dtype
  bool json = false;
};

struct DemoArgs {
  std::int64_t batch = 0;  // 0: 1e5 on the CPU, 4e6 on a GPU
  std::int64_t steps = 100;
  std::string backend = "auto";
  std::string dtype = "f32";
  int threads = 0;
  std::uint64_t seed = 0;
  bool json = false;
};

int run_envs(bool json);
int run_info();
int run_step(const StepArgs& args);
int run_rollout(const RolloutArgs& args);
int run_demo(const DemoArgs& args);
int run_gradcheck(const GradcheckArgs& args);

}  // namespace phydream::cli
