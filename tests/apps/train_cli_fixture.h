// Shared by the training CLI tests (train_cli_test.cpp, train_env_model_cli_test.cpp): a
// fixture that runs the real phydream binary in a fresh temporary directory per test, and the
// helpers that read its outputs back (JSON, CSV, NPY headers) and check input errors.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "engine/npy.h"
#include "apps/cli_runner.h"

namespace {

namespace fs = std::filesystem;
namespace npy = phydream::npy;
using nlohmann::json;
using Shape = std::vector<std::int64_t>;

json read_json(const std::string& path) {
  const std::string text = read_text(path);
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    ADD_FAILURE() << path << ": " << e.what() << "\n" << text;
  }
  return j;
}

// a metrics.csv as rows of cells, header first
std::vector<std::vector<std::string>> read_csv(const std::string& path) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(read_text(path));
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::istringstream ls(line);
    std::string cell;
    while (std::getline(ls, cell, ',')) cells.push_back(cell);
    rows.push_back(cells);
  }
  return rows;
}

// the step column of a metrics.csv
std::vector<long> csv_steps(const std::string& path) {
  std::vector<long> steps;
  const auto rows = read_csv(path);
  for (std::size_t r = 1; r < rows.size(); ++r) steps.push_back(std::stol(rows[r].at(0)));
  return steps;
}

// every file under `dir` (relative path -> bytes): a directory "untouched" keeps this equal
std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) files[fs::relative(e.path(), dir).string()] = read_text(e.path());
  }
  return files;
}

// |a - b| <= tol max(|b|, floor)
void expect_rel(double a, double b, double tol, const std::string& what, double floor = 1e-300) {
  EXPECT_LE(std::abs(a - b), tol * std::max(std::abs(b), floor)) << what << ": " << a << " vs " << b;
}

// a config small enough to train in a fraction of a second: the pendulum (nx 2, nu 1)
json tiny_config() {
  return json::parse(R"({
    "env": "pendulum",
    "model": {"hidden": [8], "activation": "tanh", "residual": true},
    "loss": {"lambda_mse": 1, "lambda_jal": 0},
    "optimizer": {"lr": 3e-3},
    "train": {"steps": 20, "batch": 32, "log_every": 10, "stats_samples": 256},
    "eval": {"samples": 64, "rollout_envs": 16, "horizon": 5, "ood_factors": [1, 2],
             "ood_horizon": 3}
  })");
}

json with(json base, const json& patch) {
  base.merge_patch(patch);
  return base;
}

// a fresh temporary directory per test holding the inputs and the outputs
class TrainingCliTest : public CliDirTest {
 protected:
  TrainingCliTest() : CliDirTest("phydream_train_cli") {}

  std::string write_json(const std::string& name, const json& j) const {
    std::ofstream(path(name)) << j.dump(2);
    return path(name);
  }
  std::string write_text(const std::string& name, const std::string& text) const {
    std::ofstream(path(name), std::ios::binary) << text;
    return path(name);
  }
  std::string save(const std::string& name, const std::vector<double>& values,
                   const Shape& shape) const {
    npy::save<double>(path(name), values.data(), shape);
    return path(name);
  }

  // `phydream train` of `cfg` into OUT (relative to the test directory), status 0 expected
  CliRun train(const json& cfg, const std::string& out, const std::string& extra = "") const {
    const std::string config = write_json(out + ".json", cfg);
    const CliRun r = cli("train --config " + quote(config) + " --out " + quote(path(out)) +
                         " --backend cpu --quiet " + extra);
    EXPECT_EQ(r.status, 0) << "train " << out << " " << extra << "\n" << r.err;
    return r;
  }

  // the npy at `file` has this dtype and shape
  static void expect_npy(const std::string& file, npy::DType dtype, const Shape& shape) {
    ASSERT_TRUE(fs::exists(file)) << file;
    const npy::Header h = npy::read_header(file);
    EXPECT_EQ(h.dtype, dtype) << file;
    EXPECT_EQ(h.shape, shape) << file;
  }
};

}  // namespace
