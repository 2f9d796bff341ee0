// phydream: the command-line program. Subcommands are in commands.cpp; this file only declares
// the options (CLI11) and maps failures to exit statuses: 0 success, 1 failure while running
// (backend, I/O, non-finite results, failed self-check), 2 bad usage or input.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "apps/inspect.h"
#include "apps/train_commands.h"
#include "engine/errors.h"

#ifndef PHYDREAM_VERSION
#define PHYDREAM_VERSION "unknown"
#endif

namespace {

using phydream::cli::SimArgs;

// the options shared by step and rollout; --dt is read into `dt_value` and its presence checked
void add_sim_options(CLI::App* cmd, SimArgs& s, double& dt_value, CLI::Option*& dt_option) {
  auto* env = cmd->add_option("--env", s.env, "built-in environment (see `phydream envs`)");
  auto* model = cmd->add_option(
      "--model", s.model,
      "articulated model instead of --env: MJCF (.xml) or JSON (.json); see `phydream inspect`");
  env->excludes(model);
  cmd->add_option("--disable", s.disable,
                  "with --model: disable flags, comma-separated or repeated (contact, limit, "
                  "frictionloss, gravity, passive, actuation, clampctrl, ...), as MJCF's "
                  "<option><flag NAME=\"disable\"/>")
      ->type_name("FLAG[,FLAG...]")
      ->allow_extra_args(false);
  cmd->add_option("--param", s.params, "override a parameter, NAME=VALUE (repeatable)")
      ->type_name("NAME=VALUE")
      ->allow_extra_args(false);
  cmd->add_option("--integrator", s.integrator,
                  "euler | semi_implicit_euler | rk4 (default: the environment's)");
  dt_option = cmd->add_option("--dt", dt_value, "timestep in seconds (default: the environment's)");
  cmd->add_option("--backend", s.backend, "auto | cpu | cuda")->capture_default_str();
  cmd->add_option("--dtype", s.dtype, "f32 | f64: precision of the computation and outputs")
      ->capture_default_str();
  cmd->add_option("--threads", s.threads, "CPU worker threads, 0 = all cores")
      ->capture_default_str();
  cmd->add_option("--grad-mode", s.grad_mode,
                  "with --model: how derivatives treat the constraint solver: ift (implicit "
                  "function theorem at the solution), unrolled (through the solver's iterations, "
                  "as automatic differentiation would), fd (central differences of the step)")
      ->capture_default_str();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"PhyDream: GPU-accelerated differentiable physics with exact batched Jacobians",
               "phydream"};
  app.set_version_flag("--version", std::string("phydream ") + PHYDREAM_VERSION);
  app.require_subcommand(1);

  // envs
  bool envs_json = false;
  auto* envs = app.add_subcommand("envs", "list environments: sizes, timestep, parameters");
  envs->add_flag("--json", envs_json, "print JSON");

  // info
  auto* info = app.add_subcommand("info", "print the build's CUDA support, visible devices and the CPU trainer's instruction set");

  // inspect
  phydream::cli::InspectArgs inspect_args;
  auto* inspect = app.add_subcommand(
      "inspect", "load an articulated model (MJCF .xml or JSON .json) and print its sizes, "
                 "options, bodies, joints, dofs, actuators, geoms, sites and keyframes");
  inspect->add_option("MODEL", inspect_args.model, "model file, .xml or .json")->required();
  inspect->add_flag("--json", inspect_args.json, "print one JSON object");

  // step
  phydream::cli::StepArgs step_args;
  double step_dt = 0;
  CLI::Option* step_dt_opt = nullptr;
  auto* step = app.add_subcommand(
      "step", "one step of a batch: next states, and with --jacobian the full Jacobians");
  add_sim_options(step, step_args.sim, step_dt, step_dt_opt);
  step->add_option("--state", step_args.state, "states, NPY (B, nx)")->required();
  step->add_option("--action", step_args.action, "actions, NPY (B, nu)")->required();
  step->add_option("--out", step_args.out, "output directory")->required();
  step->add_flag("--jacobian", step_args.jacobian,
                 "also write jac_state.npy (B, ndx, ndx) and jac_action.npy (B, ndx, nu); "
                 "ndx = nx except for models with ball or free joints (2 nv)");
  step->add_option("--mode", step_args.mode,
                   "Jacobian by forward sweeps (fwd), reverse sweeps (rev), the fastest "
                   "analytic route (analytic: closed-form inverse-dynamics derivatives for "
                   "--model, with the constraint solve's IFT in closed form under --grad-mode "
                   "ift) or central finite differences (fd)")
      ->capture_default_str();
  step->add_option("--fd-eps", step_args.fd_eps,
                   "relative finite-difference step for --mode fd (0: 1e-6 f64, 1e-3 f32)");
  step->add_flag("--allow-nonfinite", step_args.allow_nonfinite,
                 "write outputs even if the simulation produced NaN/Inf (reported on stderr)");

  // jacobian: step --jacobian as a command of its own
  phydream::cli::StepArgs jac_args;
  double jac_dt = 0;
  CLI::Option* jac_dt_opt = nullptr;
  auto* jacobian = app.add_subcommand(
      "jacobian", "the full Jacobians of one step of a batch: jac_state.npy (B, ndx, ndx), "
                  "jac_action.npy (B, ndx, nu) and next_state.npy (B, nx)");
  add_sim_options(jacobian, jac_args.sim, jac_dt, jac_dt_opt);
  jacobian->add_option("--state", jac_args.state, "states, NPY (B, nx)")->required();
  jacobian->add_option("--action", jac_args.action, "actions, NPY (B, nu)")->required();
  jacobian->add_option("--out", jac_args.out, "output directory")->required();
  jacobian->add_option("--mode", jac_args.mode,
                       "forward sweeps (fwd), reverse sweeps (rev), the fastest analytic route "
                       "(analytic: closed-form inverse-dynamics derivatives for --model, with the "
                       "constraint solve's IFT in closed form under --grad-mode ift) or central "
                       "finite differences (fd)")
      ->capture_default_str();
  jacobian->add_option("--fd-eps", jac_args.fd_eps,
                       "relative finite-difference step for --mode fd (0: 1e-6 f64, 1e-3 f32)");
  jacobian->add_flag("--allow-nonfinite", jac_args.allow_nonfinite,
                     "write outputs even if the simulation produced NaN/Inf");

  // rollout
  phydream::cli::RolloutArgs roll_args;
  double roll_dt = 0;
  CLI::Option* roll_dt_opt = nullptr;
  auto* rollout = app.add_subcommand(
      "rollout", "a T-step rollout of a batch, and with --grad the gradient of 1/2 |x_T|^2");
  add_sim_options(rollout, roll_args.sim, roll_dt, roll_dt_opt);
  rollout->add_option("--state", roll_args.state, "initial states, NPY (B, nx)")->required();
  rollout->add_option("--actions", roll_args.actions, "action sequences, NPY (B, T, nu)")
      ->required();
  rollout->add_option("--out", roll_args.out, "output directory")->required();
  rollout->add_flag("--grad", roll_args.grad,
                    "also write grad_state.npy (B, ndx) and grad_actions.npy (B, T, nu), the "
                    "gradients of 1/2 sum_b |x_T|^2");
  rollout->add_option("--checkpoint", roll_args.checkpoint,
                      "reverse mode from the stored trajectory (-1), or re-simulated from "
                      "checkpoints every K steps (K > 0; 0 = sqrt(T))")
      ->capture_default_str();
  rollout->add_flag("--toi", roll_args.toi,
                    "with --grad and --model: the time-of-impact correction, the gradient of "
                    "every isolated frictionless impact taken as that of an instantaneous impact "
                    "(docs/contact_gradients.md)");
  rollout->add_flag("--allow-nonfinite", roll_args.allow_nonfinite,
                    "write outputs even if the simulation produced NaN/Inf");

  // gradcheck
  phydream::cli::GradcheckArgs gc_args;
  double gc_dt = 0;
  CLI::Option* gc_dt_opt = nullptr;
  auto* gradcheck = app.add_subcommand(
      "gradcheck", "the step Jacobians of a model at given states in every gradient mode (ift by "
                   "forward and reverse sweeps, unrolled) against central differences");
  add_sim_options(gradcheck, gc_args.sim, gc_dt, gc_dt_opt);
  gradcheck->add_option("--states", gc_args.states, "states, NPY (B, nx)")->required();
  gradcheck->add_option("--actions", gc_args.actions, "actions, NPY (B, nu)")->required();
  gradcheck->add_option("--fd-eps", gc_args.fd_eps,
                        "relative step of the central differences (0: 1e-6 f64, 1e-3 f32)");
  gradcheck->add_flag("--json", gc_args.json, "print one JSON object");

  // demo
  phydream::cli::DemoArgs demo_args;
  auto* demo = app.add_subcommand(
      "demo", "simulate a large batch of the seed's double pendulum: throughput of steps and "
              "Jacobians, and a derivative self-check");
  demo->add_option("--batch", demo_args.batch, "environments (0: 1e5 on the CPU, 4e6 on a GPU)");
  demo->add_option("--steps", demo_args.steps, "timed calls per measurement")
      ->capture_default_str();
  demo->add_option("--backend", demo_args.backend, "auto | cpu | cuda")->capture_default_str();
  demo->add_option("--dtype", demo_args.dtype, "f32 | f64")->capture_default_str();
  demo->add_option("--threads", demo_args.threads, "CPU worker threads, 0 = all cores")
      ->capture_default_str();
  demo->add_option("--seed", demo_args.seed, "random seed")->capture_default_str();
  demo->add_flag("--json", demo_args.json, "print one JSON object");

  // train
  phydream::cli::TrainArgs train_args;
  std::int64_t train_steps = 0, train_seed = 0;
  auto* train = app.add_subcommand(
      "train", "train an MLP dynamics model with MSE and/or the Jacobian alignment loss");
  train->add_option("--config", train_args.config, "training config (JSON; see README)")
      ->required();
  train->add_option("--out", train_args.out, "output directory")->capture_default_str();
  auto* train_steps_opt =
      train->add_option("--steps", train_steps, "total optimizer steps (overrides train.steps)");
  auto* train_seed_opt = train->add_option("--seed", train_seed, "seed (overrides train.seed)");
  train->add_flag("--resume", train_args.resume, "continue from OUT/checkpoint");
  train->add_option("--backend", train_args.backend, "auto | cpu | cuda")->capture_default_str();
  train->add_option("--threads", train_args.threads, "CPU worker threads, 0 = all cores");
  train->add_flag("--quiet", train_args.quiet, "no progress on stderr");

  // eval
  phydream::cli::EvalArgs eval_args;
  auto* eval = app.add_subcommand(
      "eval", "evaluate a checkpoint against the simulator: one-step, Jacobian, rollout and "
              "out-of-distribution errors");
  eval->add_option("--checkpoint", eval_args.checkpoint, "checkpoint directory")->required();
  eval->add_option("--out", eval_args.out, "output directory")->required();
  eval->add_option("--threads", eval_args.threads, "CPU worker threads, 0 = all cores");

  // mlp-grad
  phydream::cli::MlpGradArgs grad_args;
  double lambda_mse = 0, lambda_jal = 0, huber_delta = 0;
  auto* mlp_grad = app.add_subcommand(
      "mlp-grad", "the training loss of a checkpoint on given arrays, and its gradient for every "
                  "tensor (float64)");
  mlp_grad->add_option("--checkpoint", grad_args.checkpoint, "checkpoint directory")->required();
  mlp_grad->add_option("--inputs", grad_args.inputs, "inputs [x, u], NPY (B, nx + nu)")
      ->required();
  mlp_grad->add_option("--targets", grad_args.targets, "next states, NPY (B, nx)")->required();
  mlp_grad->add_option("--target-jacobians", grad_args.target_jacobians,
                       "true Jacobians [dx'/dx | dx'/du], NPY (B, nx, nx + nu)");
  mlp_grad->add_option("--loss", grad_args.loss, "mse | jal | both (weights 1,0 | 0,1 | 1,1)")
      ->capture_default_str();
  mlp_grad->add_option("--scaling", grad_args.scaling,
                       "none | minmax | zscore | std (default: the checkpoint's)");
  mlp_grad->add_option("--metric", grad_args.metric,
                       "mse | frobenius | l1 | huber (default: the checkpoint's)");
  auto* huber_opt = mlp_grad->add_option(
      "--huber-delta", huber_delta,
      "metric huber: where its quadratic turns linear (default: the checkpoint's)");
  auto* lmse_opt = mlp_grad->add_option("--lambda-mse", lambda_mse, "weight of the MSE term");
  auto* ljal_opt = mlp_grad->add_option("--lambda-jal", lambda_jal, "weight of the JAL term");
  mlp_grad->add_option("--out", grad_args.out, "output directory")->required();

  // experiment
  phydream::cli::ExperimentArgs exp_args;
  std::int64_t exp_steps = 0;
  int exp_seeds = 0;
  auto* experiment = app.add_subcommand(
      "experiment", "train and evaluate variants x seeds of a config and print the comparison");
  experiment->add_option("--config", exp_args.config, "experiment file (JSON; see README)")
      ->required();
  experiment->add_option("--out", exp_args.out, "output directory")->required();
  experiment->add_option("--backend", exp_args.backend, "auto | cpu | cuda")
      ->capture_default_str();
  experiment->add_option("--threads", exp_args.threads, "CPU worker threads, 0 = all cores");
  auto* exp_steps_opt =
      experiment->add_option("--steps", exp_steps, "optimizer steps of every run (override)");
  auto* exp_seeds_opt =
      experiment->add_option("--seeds", exp_seeds, "use only the first N seeds (override)");
  experiment->add_flag("--quiet", exp_args.quiet, "no progress on stderr");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // without a subcommand CLI11 only says one is required; name what was given instead
    const std::vector<std::string> left = app.remaining();
    if (app.get_subcommands().empty() && !left.empty()) {
      std::fprintf(stderr,
                   "phydream: error: unknown %s '%s'; expected a subcommand: envs, info, "
                   "inspect, step, jacobian, rollout, demo, train, eval, mlp-grad or experiment\n"
                   "Run with --help for more information.\n",
                   left.front().rfind('-', 0) == 0 ? "option" : "subcommand",
                   left.front().c_str());
      return 2;
    }
    app.exit(e);  // prints the message and usage
    return 2;
  }
  if (step_dt_opt->count() > 0) step_args.sim.dt = step_dt;
  if (jac_dt_opt->count() > 0) jac_args.sim.dt = jac_dt;
  jac_args.jacobian = true;
  if (train_steps_opt->count() > 0) train_args.steps = train_steps;
  if (train_seed_opt->count() > 0) train_args.seed = train_seed;
  if (lmse_opt->count() > 0) grad_args.lambda_mse = lambda_mse;
  if (ljal_opt->count() > 0) grad_args.lambda_jal = lambda_jal;
  if (huber_opt->count() > 0) grad_args.huber_delta = huber_delta;
  if (exp_steps_opt->count() > 0) exp_args.steps = exp_steps;
  if (exp_seeds_opt->count() > 0) exp_args.seeds = exp_seeds;
  if (roll_dt_opt->count() > 0) roll_args.sim.dt = roll_dt;
  if (gc_dt_opt->count() > 0) gc_args.sim.dt = gc_dt;

  try {
    if (envs->parsed()) return phydream::cli::run_envs(envs_json);
    if (info->parsed()) return phydream::cli::run_info();
    if (inspect->parsed()) return phydream::cli::run_inspect(inspect_args);
    if (step->parsed()) return phydream::cli::run_step(step_args);
    if (jacobian->parsed()) return phydream::cli::run_step(jac_args);
    if (rollout->parsed()) return phydream::cli::run_rollout(roll_args);
    if (demo->parsed()) return phydream::cli::run_demo(demo_args);
    if (gradcheck->parsed()) return phydream::cli::run_gradcheck(gc_args);
    if (train->parsed()) return phydream::cli::run_train(train_args);
    if (eval->parsed()) return phydream::cli::run_eval(eval_args);
    if (mlp_grad->parsed()) return phydream::cli::run_mlp_grad(grad_args);
    if (experiment->parsed()) return phydream::cli::run_experiment(exp_args);
  } catch (const phydream::InputError& e) {
    std::fprintf(stderr, "phydream: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "phydream: error: %s\n", e.what());
    return 1;
  }
  return 2;
}
