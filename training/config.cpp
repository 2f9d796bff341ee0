#include "training/config.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "engine/articulated.h"
#include "engine/errors.h"
#include "models/envs.h"

namespace phydream::training {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// reads one JSON object strictly: typed getters, and finish() rejects keys nobody asked for
class Reader {
 public:
  Reader(const json& j, const std::string& source, const std::string& path)
      : j_(j), source_(source), path_(path) {
    if (!j_.is_object()) fail(path_.empty() ? "the config" : "'" + path_ + "'", "must be an object");
  }

  bool has(const std::string& key) {
    known_.insert(key);
    return j_.contains(key);
  }
  const json& at(const std::string& key) {
    known_.insert(key);
    return j_.at(key);
  }

  double number(const std::string& key, double fallback) {
    if (!has(key)) return fallback;
    const json& v = j_.at(key);
    if (!v.is_number() || !std::isfinite(v.get<double>())) fail(key, "must be a finite number", v);
    return v.get<double>();
  }
  std::int64_t integer(const std::string& key, std::int64_t fallback) {
    if (!has(key)) return fallback;
    const json& v = j_.at(key);
    if (!v.is_number_integer()) fail(key, "must be an integer", v);
    return v.get<std::int64_t>();
  }
  bool boolean(const std::string& key, bool fallback) {
    if (!has(key)) return fallback;
    const json& v = j_.at(key);
    if (!v.is_boolean()) fail(key, "must be true or false", v);
    return v.get<bool>();
  }
  std::string string(const std::string& key, const std::string& fallback) {
    if (!has(key)) return fallback;
    const json& v = j_.at(key);
    if (!v.is_string()) fail(key, "must be a string", v);
    return v.get<std::string>();
  }
  std::vector<double> numbers(const std::string& key, const std::vector<double>& fallback) {
    if (!has(key)) return fallback;
    const json& v = j_.at(key);
    if (!v.is_array()) fail(key, "must be an array of numbers", v);
    std::vector<double> out;
    for (const json& e : v) {
      if (!e.is_number() || !std::isfinite(e.get<double>())) {
        fail(key, "must be an array of finite numbers", v);
      }
      out.push_back(e.get<double>());
    }
    return out;
  }
  std::vector<int> integers(const std::string& key, const std::vector<int>& fallback) {
    if (!has(key)) return fallback;
    const json& v = j_.at(key);
    if (!v.is_array()) fail(key, "must be an array of integers", v);
    std::vector<int> out;
    for (const json& e : v) {
      if (!e.is_number_integer()) fail(key, "must be an array of integers", v);
      out.push_back(e.get<int>());
    }
    return out;
  }
  // a nested object's reader (an empty object when the key is absent)
  Reader object(const std::string& key) {
    static const json empty = json::object();
    return Reader(has(key) ? j_.at(key) : empty, source_, qualified(key));
  }

  void finish() const {
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      if (known_.count(it.key()) == 0) {
        std::string expected;
        for (const std::string& k : known_) expected += (expected.empty() ? "" : ", ") + k;
        throw InputError(source_ + ": unknown key '" + qualified(it.key()) + "'; expected one of: " +
                         expected);
      }
    }
  }

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw InputError(source_ + ": " + key + " " + what);
  }
  [[noreturn]] void fail(const std::string& key, const std::string& what, const json& got) const {
    std::string text = got.dump();
    if (text.size() > 60) text = text.substr(0, 57) + "...";
    throw InputError(source_ + ": '" + qualified(key) + "' " + what + ", got " + text);
  }
  std::string qualified(const std::string& key) const {
    return path_.empty() ? key : path_ + "." + key;
  }

 private:
  const json& j_;
  std::string source_, path_;
  std::set<std::string> known_;
};

void require(bool ok, Reader& r, const std::string& key, const std::string& what, const json& got) {
  if (!ok) r.fail(key, what, got);
}

// a box (low, high) with one entry per name and low < high
void check_box(Reader& r, const std::string& low_key, const std::vector<double>& low,
               const std::vector<double>& high, const std::vector<std::string>& names) {
  const std::size_t n = names.size();
  if (low.size() != n || high.size() != n) {
    std::string list;
    for (const std::string& name : names) list += (list.empty() ? "" : ", ") + name;
    r.fail(low_key, "and its high bound must have " + std::to_string(n) + " entries each (" +
                        list + ")",
           json{{"low", low}, {"high", high}});
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (!(low[i] < high[i])) {
      r.fail(low_key, "must be below its high bound in every entry (entry " + std::to_string(i) +
                          ")",
             json{{"low", low}, {"high", high}});
    }
  }
}

}  // namespace

TrainConfig parse_train_config(const json& j, const std::string& source,
                               const std::string& base_dir) {
  TrainConfig c;
  Reader top(j, source, "");
  const bool builtin = top.has("env"), articulated = top.has("env_model");
  if (builtin == articulated) {
    throw InputError(source + (builtin ? ": give 'env' or 'env_model', not both"
                                       : ": missing required key 'env' (a built-in environment, "
                                         "see `phydream envs`) or 'env_model' (a model file)"));
  }
  if (builtin) {
    c.env = top.string("env", "");
    if (top.has("disable")) {
      throw InputError(source + ": 'disable' applies to articulated models (env_model), not to "
                       "the built-in environment '" + c.env + "'");
    }
  } else {
    const std::string given = top.string("env_model", "");
    if (given.empty()) top.fail("env_model", "must name a model file (.xml or .json)", json(given));
    // relative to the file holding the config, so that a config works from any directory
    fs::path file(given);
    if (file.is_relative() && !base_dir.empty()) file = fs::path(base_dir) / file;
    c.env_model = fs::absolute(file).lexically_normal().string();
    if (!fs::is_regular_file(c.env_model)) {
      throw InputError(source + ": env_model '" + given + "': no such file" +
                       (given == c.env_model ? std::string() : " (looked for " + c.env_model +
                        "; a relative path is taken from the config file's directory)"));
    }
    if (top.has("disable")) {
      const json& d = top.at("disable");
      require(d.is_array(), top, "disable", "must be an array of flag names", d);
      for (const json& flag : d) {
        require(flag.is_string(), top, "disable", "must be an array of flag names", d);
        try {
          parse_disable_flag(flag.get<std::string>());
        } catch (const InputError& e) {
          throw InputError(source + ": disable: " + e.what());
        }
        c.disable.push_back(flag.get<std::string>());
      }
    }
    if (top.has("params")) {
      throw InputError(source + ": 'params' applies to the built-in environments (env); edit the "
                       "model file to change an articulated model");
    }
  }

  if (top.has("params")) {
    const json& p = top.at("params");
    require(p.is_object(), top, "params", "must be an object of NAME: number", p);
    for (auto it = p.begin(); it != p.end(); ++it) {
      require(it->is_number(), top, "params." + it.key(), "must be a number", *it);
      c.params.emplace_back(it.key(), it->get<double>());
    }
  }
  if (top.has("integrator")) c.integrator = top.string("integrator", "");
  if (top.has("dt")) c.dt = top.number("dt", 0);

  // the environment options are checked by the registry (or the model loader) itself, once,
  // here; its sizes and default boxes are what the rest is checked against
  EngineConfig resolved;
  try {
    resolved = resolve_config(c.simulator_options(Backend::cpu, 0));
  } catch (const InputError& e) {
    throw InputError(source + ": " + e.what());
  }
  const EnvInfo& env = resolved.env;
  if (!builtin) {
    c.env_model_name = env.name;
    if (env.nx != env.ndx) {
      // the MLP maps x to x' and JAL compares dx'/dx, which needs the state to be its own
      // tangent: a quaternion in qpos (ball and free joints) makes nq > nv
      std::string joint;
      const Model& m = *resolved.model;
      for (int k = 0; k < m.njnt && joint.empty(); ++k) {
        const auto type = static_cast<JointType>(m.jnt_type[k]);
        if (type == JointType::free || type == JointType::ball) {
          const std::string name = k < static_cast<int>(m.jnt_name.size()) ? m.jnt_name[k] : "";
          joint = " (joint '" + (name.empty() ? "joint" + std::to_string(k) : name) + "' is a " +
                  (type == JointType::free ? "free" : "ball") + " joint)";
        }
      }
      throw InputError(source + ": env_model '" + c.env_model + "': model '" + env.name +
                       "' has nq = " + std::to_string(env.nq) + " position coordinates but nv = " +
                       std::to_string(env.ndx / 2) + " velocities" + joint +
                       "; the trainer needs nq = nv (hinge and slide joints only), since it "
                       "learns x' from x and aligns dx'/dx with the state as its own tangent");
    }
  }

  {
    Reader r = top.object("sampling");
    const std::string mode = r.string("mode", "uniform");
    if (mode == "uniform") {
      c.sampling.mode = SamplingMode::uniform;
    } else if (mode == "rollout") {
      c.sampling.mode = SamplingMode::rollout;
    } else {
      r.fail("mode", "must be \"uniform\" or \"rollout\"", json(mode));
    }
    c.sampling.horizon = r.integer("horizon", 20);
    require(c.sampling.horizon >= 1, r, "horizon", "must be >= 1", json(c.sampling.horizon));
    c.sampling.state_low = r.numbers("state_low", env.state_low);
    c.sampling.state_high = r.numbers("state_high", env.state_high);
    c.sampling.action_low = r.numbers("action_low", env.action_low);
    c.sampling.action_high = r.numbers("action_high", env.action_high);
    check_box(r, "state_low", c.sampling.state_low, c.sampling.state_high, env.state_names);
    check_box(r, "action_low", c.sampling.action_low, c.sampling.action_high, env.action_names);
    r.finish();
  }
  {
    Reader r = top.object("model");
    c.model.hidden = r.integers("hidden", c.model.hidden);
    for (int w : c.model.hidden) {
      require(w > 0 && w <= 4096, r, "hidden", "widths must be in 1 .. 4096", json(c.model.hidden));
    }
    try {
      c.model.activation = parse_activation(r.string("activation", "tanh"));
    } catch (const InputError& e) {
      throw InputError(source + ": model.activation: " + e.what());
    }
    c.model.residual = r.boolean("residual", true);
    r.finish();
  }
  {
    Reader r = top.object("loss");
    c.loss.lambda_mse = r.number("lambda_mse", 1.0);
    c.loss.lambda_jal = r.number("lambda_jal", 0.0);
    try {
      c.loss.metric = parse_metric(r.string("metric", "mse"));
      c.loss.scaling = parse_scaling(r.string("scaling", "none"));
    } catch (const InputError& e) {
      throw InputError(source + ": loss: " + e.what());
    }
    c.loss.huber_delta = r.number("huber_delta", 1.0);
    require(c.loss.huber_delta > 0, r, "huber_delta", "must be > 0", json(c.loss.huber_delta));
    require(!r.has("huber_delta") || c.loss.metric == JalMetric::huber, r, "huber_delta",
            std::string("applies only to metric \"huber\", but metric is \"") +
                metric_name(c.loss.metric) + "\"",
            json(c.loss.huber_delta));
    r.finish();
    if (c.loss.lambda_mse < 0 || c.loss.lambda_jal < 0 ||
        (c.loss.lambda_mse == 0 && c.loss.lambda_jal == 0)) {
      throw InputError(source + ": loss.lambda_mse and loss.lambda_jal must be >= 0 and not both 0");
    }
  }
  {
    Reader r = top.object("optimizer");
    AdamConfig& a = c.optimizer.adam;
    a.lr = r.number("lr", a.lr);
    a.beta1 = r.number("beta1", a.beta1);
    a.beta2 = r.number("beta2", a.beta2);
    a.eps = r.number("eps", a.eps);
    a.weight_decay = r.number("weight_decay", a.weight_decay);
    c.optimizer.schedule = r.string("schedule", "constant");
    c.optimizer.lr_min = r.number("lr_min", 0.0);
    require(a.lr > 0, r, "lr", "must be > 0", json(a.lr));
    require(a.beta1 >= 0 && a.beta1 < 1, r, "beta1", "must be in [0, 1)", json(a.beta1));
    require(a.beta2 >= 0 && a.beta2 < 1, r, "beta2", "must be in [0, 1)", json(a.beta2));
    require(a.eps > 0, r, "eps", "must be > 0", json(a.eps));
    require(a.weight_decay >= 0, r, "weight_decay", "must be >= 0", json(a.weight_decay));
    require(c.optimizer.schedule == "constant" || c.optimizer.schedule == "cosine", r, "schedule",
            "must be \"constant\" or \"cosine\"", json(c.optimizer.schedule));
    require(c.optimizer.lr_min >= 0 && c.optimizer.lr_min <= a.lr, r, "lr_min",
            "must be in [0, lr]", json(c.optimizer.lr_min));
    r.finish();
  }
  {
    Reader r = top.object("train");
    TrainLoopConfig& t = c.train;
    t.steps = r.integer("steps", t.steps);
    t.batch = r.integer("batch", t.batch);
    const std::int64_t seed = r.integer("seed", 0);
    t.dtype = r.string("dtype", t.dtype);
    t.log_every = r.integer("log_every", t.log_every);
    t.checkpoint_every = r.integer("checkpoint_every", t.checkpoint_every);
    t.stats_samples = r.integer("stats_samples", t.stats_samples);
    const std::string kernels = r.string("kernels", mlp_kernels_name(t.kernels));
    require(kernels == "auto" || kernels == "fused" || kernels == "gemm", r, "kernels",
            "must be \"auto\", \"fused\" or \"gemm\"", json(kernels));
    t.kernels = parse_mlp_kernels(kernels);
    require(t.steps >= 0, r, "steps", "must be >= 0", json(t.steps));
    require(t.batch >= 1 && t.batch <= (1 << 24), r, "batch", "must be in 1 .. 16777216",
            json(t.batch));
    require(seed >= 0, r, "seed", "must be >= 0", json(seed));
    t.seed = static_cast<std::uint64_t>(seed);
    require(t.dtype == "f32" || t.dtype == "f64", r, "dtype", "must be \"f32\" or \"f64\"",
            json(t.dtype));
    require(t.log_every >= 1, r, "log_every", "must be >= 1", json(t.log_every));
    require(t.checkpoint_every >= 0, r, "checkpoint_every", "must be >= 0",
            json(t.checkpoint_every));
    require(t.stats_samples >= 2, r, "stats_samples", "must be >= 2", json(t.stats_samples));
    r.finish();
  }
  {
    Reader r = top.object("eval");
    EvalConfig& e = c.eval;
    e.samples = r.integer("samples", e.samples);
    e.rollout_envs = r.integer("rollout_envs", e.rollout_envs);
    e.horizon = r.integer("horizon", e.horizon);
    e.ood_factors = r.numbers("ood_factors", e.ood_factors);
    e.ood_horizon = r.integer("ood_horizon", e.ood_horizon);
    const std::int64_t seed = r.integer("seed", static_cast<std::int64_t>(e.seed));
    require(e.samples >= 1, r, "samples", "must be >= 1", json(e.samples));
    require(e.rollout_envs >= 1, r, "rollout_envs", "must be >= 1", json(e.rollout_envs));
    require(e.horizon >= 1, r, "horizon", "must be >= 1", json(e.horizon));
    require(e.ood_horizon >= 1 && e.ood_horizon <= e.horizon, r, "ood_horizon",
            "must be in 1 .. eval.horizon", json(e.ood_horizon));
    require(!e.ood_factors.empty(), r, "ood_factors", "must not be empty", json(e.ood_factors));
    for (double f : e.ood_factors) {
      require(f > 0, r, "ood_factors", "must be > 0", json(e.ood_factors));
    }
    require(seed >= 0, r, "seed", "must be >= 0", json(seed));
    e.seed = static_cast<std::uint64_t>(seed);
    r.finish();
  }
  top.finish();
  return c;
}

TrainConfig load_train_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(path + ": cannot open the config file");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number overflow
    throw InputError(path + ": not valid JSON: " + e.what());
  }
  return parse_train_config(j, path, fs::path(path).parent_path().string());
}

SimulatorOptions TrainConfig::simulator_options(Backend backend, int threads, void* stream) const {
  SimulatorOptions o;
  o.env = env;
  o.model_file = env_model;
  o.disable = disable;
  o.params = params;
  if (integrator) o.integrator = parse_integrator(*integrator);
  o.dt = dt;
  o.backend = backend;
  o.threads = threads;
  o.stream = stream;
  return o;
}

json to_json(const TrainConfig& c) {
  json j;
  if (c.env_model.empty()) {
    j["env"] = c.env;
    j["params"] = json::object();
    for (const auto& [k, v] : c.params) j["params"][k] = v;
  } else {
    j["env_model"] = c.env_model;
    j["disable"] = c.disable;
  }
  if (c.integrator) j["integrator"] = *c.integrator;
  if (c.dt) j["dt"] = *c.dt;
  j["sampling"] = {{"mode", c.sampling.mode == SamplingMode::uniform ? "uniform" : "rollout"},
                   {"horizon", c.sampling.horizon},
                   {"state_low", c.sampling.state_low},
                   {"state_high", c.sampling.state_high},
                   {"action_low", c.sampling.action_low},
                   {"action_high", c.sampling.action_high}};
  j["model"] = {{"hidden", c.model.hidden},
                {"activation", activation_name(c.model.activation)},
                {"residual", c.model.residual}};
  j["loss"] = {{"lambda_mse", c.loss.lambda_mse},
               {"lambda_jal", c.loss.lambda_jal},
               {"metric", metric_name(c.loss.metric)},
               {"scaling", scaling_name(c.loss.scaling)}};
  if (c.loss.metric == JalMetric::huber) j["loss"]["huber_delta"] = c.loss.huber_delta;
  const AdamConfig& a = c.optimizer.adam;
  j["optimizer"] = {{"lr", a.lr},           {"beta1", a.beta1},
                    {"beta2", a.beta2},     {"eps", a.eps},
                    {"weight_decay", a.weight_decay}, {"schedule", c.optimizer.schedule},
                    {"lr_min", c.optimizer.lr_min}};
  j["train"] = {{"steps", c.train.steps},
                {"batch", c.train.batch},
                {"seed", c.train.seed},
                {"dtype", c.train.dtype},
                {"log_every", c.train.log_every},
                {"checkpoint_every", c.train.checkpoint_every},
                {"stats_samples", c.train.stats_samples},
                {"kernels", mlp_kernels_name(c.train.kernels)}};
  j["eval"] = {{"samples", c.eval.samples},       {"rollout_envs", c.eval.rollout_envs},
               {"horizon", c.eval.horizon},       {"ood_factors", c.eval.ood_factors},
               {"ood_horizon", c.eval.ood_horizon}, {"seed", c.eval.seed}};
  return j;
}

json merge_json(json base, const json& patch) {
  if (!base.is_object() || !patch.is_object()) return patch;
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    base[it.key()] = base.contains(it.key()) ? merge_json(base[it.key()], *it) : *it;
  }
  return base;
}

}  // namespace phydream::training
