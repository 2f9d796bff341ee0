#include "training/checkpoint.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "engine/errors.h"
#include "engine/npy.h"

namespace phydream::training {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kFormat = "phydream-mlp";
constexpr int kVersion = 1;

template <class S>
void save_tensor(const fs::path& path, const std::vector<double>& src, std::size_t offset,
                 std::vector<std::int64_t> shape) {
  std::size_t n = 1;
  for (std::int64_t s : shape) n *= static_cast<std::size_t>(s);
  const std::vector<S> data(src.begin() + offset, src.begin() + offset + n);
  npy::save(path.string(), data.data(), shape);
}

}  // namespace

void save_checkpoint(const std::string& dir, const ModelState& st, const std::string& dtype,
                     bool with_optimizer) {
  if (dtype != "f32" && dtype != "f64") throw InputError("checkpoint dtype must be f32 or f64");
  const MlpSpec& spec = st.spec;
  const fs::path target(dir);
  if (target.has_parent_path()) fs::create_directories(target.parent_path());
  const fs::path tmp = target.string() + ".tmp." + std::to_string(std::random_device{}());
  fs::create_directories(tmp);
  try {
    json tensors = json::array();
    auto save = [&](const std::string& name, const std::vector<double>& src, std::size_t off,
                    std::vector<std::int64_t> shape) {
      if (dtype == "f32") {
        save_tensor<float>(tmp / (name + ".npy"), src, off, shape);
      } else {
        save_tensor<double>(tmp / (name + ".npy"), src, off, shape);
      }
      tensors.push_back({{"name", name}, {"file", name + ".npy"}, {"shape", shape}});
    };
    for (int l = 0; l < spec.num_layers(); ++l) {
      save("W" + std::to_string(l), st.theta, spec.weight_offset(l),
           {spec.layer_out(l), spec.layer_in(l)});
      save("b" + std::to_string(l), st.theta, spec.bias_offset(l), {spec.layer_out(l)});
    }
    const bool optimizer = with_optimizer && !st.adam_m.empty();
    if (optimizer) {
      const auto P = static_cast<std::int64_t>(spec.num_params());
      save("adam_m", st.adam_m, 0, {P});
      save("adam_v", st.adam_v, 0, {P});
    }
    json config = to_json(st.config);
    json model;
    model["format"] = kFormat;
    model["version"] = kVersion;
    model["env"] = st.config.env_label();
    if (!st.config.env_model.empty()) {
      // the model file travels with the checkpoint, so that eval and resume rebuild the same
      // simulator wherever the checkpoint goes and whatever becomes of the original; the
      // config names the copy, relative to the checkpoint directory
      const std::string copy = "env_model" + fs::path(st.config.env_model).extension().string();
      fs::copy_file(st.config.env_model, tmp / copy);
      config["env_model"] = copy;
      model["env_model"] = copy;
      model["env_model_source"] = st.config.env_model;
    }
    model["dtype"] = dtype;
    model["step"] = st.step;
    model["architecture"] = {{"nx", spec.nx},
                             {"nu", spec.nu},
                             {"hidden", spec.hidden},
                             {"activation", activation_name(spec.activation)},
                             {"residual", spec.residual},
                             {"num_params", spec.num_params()}};
    model["normalization"] = {{"in_mean", spec.in_mean},
                              {"in_std", spec.in_std},
                              {"out_mean", spec.out_mean},
                              {"out_std", spec.out_std}};
    model["loss"] = {{"lambda_mse", st.loss.lambda_mse}, {"lambda_jal", st.loss.lambda_jal},
                     {"metric", metric_name(st.loss.metric)},
                     {"huber_delta", st.loss.huber_delta},
                     {"scaling", scaling_name(st.loss.scaling)}, {"jac_std", st.loss.jac_std}};
    model["tensors"] = tensors;
    model["optimizer_state"] = optimizer;
    model["config"] = config;
    std::ofstream(tmp / "model.json") << model.dump(2) << "\n";
    // replace the previous checkpoint only once the new one is complete
    std::error_code ec;
    fs::remove_all(target, ec);
    fs::rename(tmp, target);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
}

ModelState load_checkpoint(const std::string& dir, std::string* dtype_out) {
  const fs::path root(dir);
  const std::string where = (root / "model.json").string();
  std::ifstream in(root / "model.json");
  if (!in) throw InputError(where + ": cannot open (is '" + dir + "' a checkpoint directory?)");
  json m;
  try {
    m = json::parse(in);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number overflow
    throw InputError(where + ": not valid JSON: " + e.what());
  }
  auto field = [&](const json& obj, const std::string& key, const std::string& path) -> const json& {
    if (!obj.is_object() || !obj.contains(key)) {
      throw InputError(where + ": missing field '" + path + "'");
    }
    return obj.at(key);
  };
  auto numbers = [&](const json& obj, const std::string& key, const std::string& path) {
    const json& v = field(obj, key, path);
    if (!v.is_array()) throw InputError(where + ": '" + path + "' must be an array of numbers");
    std::vector<double> out;
    for (const json& e : v) {
      if (!e.is_number()) throw InputError(where + ": '" + path + "' must be an array of numbers");
      out.push_back(e.get<double>());
    }
    return out;
  };
  if (field(m, "format", "format") != kFormat) {
    throw InputError(where + ": 'format' is not \"" + std::string(kFormat) + "\"");
  }
  if (field(m, "version", "version") != kVersion) {
    throw InputError(where + ": unsupported version " + m.at("version").dump() + " (expected " +
                     std::to_string(kVersion) + ")");
  }

  ModelState st;
  try {
    // an env_model in the config is the copy beside model.json
    st.config = parse_train_config(field(m, "config", "config"), where + " (config)", dir);
    const json& a = field(m, "architecture", "architecture");
    st.spec.nx = field(a, "nx", "architecture.nx").get<int>();
    st.spec.nu = field(a, "nu", "architecture.nu").get<int>();
    st.spec.hidden = field(a, "hidden", "architecture.hidden").get<std::vector<int>>();
    st.spec.activation =
        parse_activation(field(a, "activation", "architecture.activation").get<std::string>());
    st.spec.residual = field(a, "residual", "architecture.residual").get<bool>();
    const json& n = field(m, "normalization", "normalization");
    st.spec.in_mean = numbers(n, "in_mean", "normalization.in_mean");
    st.spec.in_std = numbers(n, "in_std", "normalization.in_std");
    st.spec.out_mean = numbers(n, "out_mean", "normalization.out_mean");
    st.spec.out_std = numbers(n, "out_std", "normalization.out_std");
    const json& l = field(m, "loss", "loss");
    st.loss.lambda_mse = field(l, "lambda_mse", "loss.lambda_mse").get<double>();
    st.loss.lambda_jal = field(l, "lambda_jal", "loss.lambda_jal").get<double>();
    st.loss.metric = parse_metric(field(l, "metric", "loss.metric").get<std::string>());
    st.loss.scaling = parse_scaling(field(l, "scaling", "loss.scaling").get<std::string>());
    // (checkpoints written before the huber metric existed have no delta; any value will do)
    if (l.contains("huber_delta")) {
      st.loss.huber_delta = field(l, "huber_delta", "loss.huber_delta").get<double>();
    }
    st.loss.jac_std = numbers(l, "jac_std", "loss.jac_std");
    st.step = field(m, "step", "step").get<std::int64_t>();
    if (dtype_out != nullptr) *dtype_out = field(m, "dtype", "dtype").get<std::string>();
  } catch (const json::exception& e) {
    throw InputError(where + ": a field has the wrong type: " + e.what());
  } catch (const InputError& e) {
    const std::string msg = e.what();
    throw InputError(msg.rfind(where, 0) == 0 ? msg : where + ": " + msg);
  }
  try {
    st.spec.validate();
    st.loss.validate(st.spec.nx, st.spec.nu);
  } catch (const InputError& e) {
    throw InputError(where + ": " + e.what());
  }

  // tensors, each checked against the architecture
  const MlpSpec& spec = st.spec;
  st.theta.assign(spec.num_params(), 0.0);
  auto load = [&](const std::string& name, std::vector<std::int64_t> shape, std::vector<double>& dst,
                  std::size_t offset) {
    const std::string path = (root / (name + ".npy")).string();
    const npy::Array<double> a = npy::load<double>(path);
    if (a.shape != shape) {
      throw InputError(path + ": expected shape " + npy::shape_string(shape) + " for " + name +
                       ", got " + npy::shape_string(a.shape));
    }
    for (double v : a.data) {
      if (!std::isfinite(v)) throw InputError(path + ": contains NaN or Inf");
    }
    std::copy(a.data.begin(), a.data.end(), dst.begin() + offset);
  };
  for (int l = 0; l < spec.num_layers(); ++l) {
    load("W" + std::to_string(l), {spec.layer_out(l), spec.layer_in(l)}, st.theta,
         spec.weight_offset(l));
    load("b" + std::to_string(l), {spec.layer_out(l)}, st.theta, spec.bias_offset(l));
  }
  if (m.value("optimizer_state", false)) {
    const auto P = static_cast<std::int64_t>(spec.num_params());
    st.adam_m.assign(spec.num_params(), 0.0);
    st.adam_v.assign(spec.num_params(), 0.0);
    load("adam_m", {P}, st.adam_m, 0);
    load("adam_v", {P}, st.adam_v, 0);
  }
  return st;
}

}  // namespace phydream::training
