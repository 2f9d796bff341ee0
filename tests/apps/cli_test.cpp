// The phydream program end to end (the binary built beside this test): every subcommand run as a
// user runs it, inputs written as NPY files into a fresh temporary directory, outputs read back
// and compared with what the library computes directly.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "engine/backend.h"
#include "engine/npy.h"
#include "engine/simulator.h"
#include "models/envs.h"
#include "apps/cli_runner.h"

namespace {

namespace fs = std::filesystem;
namespace npy = phydream::npy;
using phydream::Backend;
using phydream::Integrator;
using phydream::JacobianMode;
using phydream::Simulator;
using phydream::SimulatorOptions;
using Shape = std::vector<std::int64_t>;
using Params = std::vector<std::pair<std::string, double>>;

// runs the CLI with `args`, returns its exit status and fills `out` with stdout + stderr
int run_cli(const std::string& args, std::string* out) {
  const std::string cmd = std::string(PHYDREAM_CLI) + " " + args + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return -1;
  char buf[4096];
  std::string text;
  while (std::fgets(buf, sizeof buf, pipe) != nullptr) text += buf;
  const int status = pclose(pipe);
  if (out != nullptr) *out = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}


// a float64 CPU simulator as the CLI builds it from the same options
SimulatorOptions lib_options(const std::string& env, const Params& params = {},
                             std::optional<Integrator> integrator = std::nullopt,
                             std::optional<double> dt = std::nullopt) {
  SimulatorOptions o;
  o.env = env;
  o.params = params;
  o.integrator = integrator;
  o.dt = dt;
  o.backend = Backend::cpu;
  return o;
}

// max over entries of |got - want| / max(|want|, 1); sizes must agree
void expect_close(const std::vector<double>& got, const std::vector<double>& want, double tol,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double worst = 0;
  std::size_t at = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double d = std::abs(got[i] - want[i]) / std::max(std::abs(want[i]), 1.0);
    if (!(d <= worst)) {  // also catches NaN
      worst = d;
      at = i;
    }
  }
  EXPECT_LE(worst, tol) << what << ": worst entry " << at << " got " << got[at] << " want "
                        << want[at];
}

template <class S>
std::vector<double> to_double(const std::vector<S>& v) {
  return std::vector<double>(v.begin(), v.end());
}

// the bytes of an NPY version 1.0 file with this header dictionary and raw data
std::string npy_bytes(const std::string& dict, const std::string& data, int major = 1) {
  const std::size_t prefix = major == 1 ? 10 : 12;
  std::string header = dict;
  while ((prefix + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out("\x93NUMPY", 6);
  out += static_cast<char>(major);
  out += '\0';
  for (std::size_t i = 0; i < prefix - 8; ++i) {
    out += static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  }
  return out + header + data;
}

std::string npy_dict(const std::string& descr, const std::string& shape, bool fortran = false) {
  return "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") +
         ", 'shape': " + shape + ", }";
}

// little-endian bytes of each value as T (host order is little-endian on every target we test)
template <class T>
std::string raw_data(const std::vector<double>& values) {
  std::string out;
  for (double v : values) {
    const T t = static_cast<T>(v);
    out.append(reinterpret_cast<const char*>(&t), sizeof t);
  }
  return out;
}

std::string cmake_version() {
  const std::string text = read_text(std::string(PHYDREAM_SOURCE_DIR) + "/CMakeLists.txt");
  std::smatch m;
  if (!std::regex_search(text, m, std::regex(R"(project\(PhyDream VERSION ([0-9][0-9.]*))"))) {
    return "";
  }
  return m[1];
}

// a fresh temporary directory per test holding the inputs and the outputs
class CliTest : public CliDirTest {
 protected:
  CliTest() : CliDirTest("phydream_cli_test") {}

  template <class S>
  std::string save(const std::string& name, const std::vector<double>& values,
                   const Shape& shape) const {
    const std::vector<S> data(values.begin(), values.end());
    npy::save<S>(path(name), data.data(), shape);
    return path(name);
  }

  std::string write_raw(const std::string& name, const std::string& bytes) const {
    std::ofstream(path(name), std::ios::binary) << bytes;
    return path(name);
  }

  // reads an output, checking its dtype and shape; empty when either is wrong
  std::vector<double> output(const std::string& file, npy::DType dtype, const Shape& shape) const {
    const std::string p = (fs::path(file).is_absolute() ? file : path(file));
    if (!fs::exists(p)) {
      ADD_FAILURE() << "missing output " << p;
      return {};
    }
    const npy::Header h = npy::read_header(p);
    EXPECT_EQ(h.dtype, dtype) << p;
    EXPECT_EQ(h.shape, shape) << p;
    if (h.dtype != dtype || h.shape != shape) return {};
    return npy::load<double>(p).data;
  }

  // the files directly in `dir`, sorted
  static std::vector<std::string> listing(const std::string& dir) {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }

};

// -------------------------------------------------------------------------------------------
// envs, help, version

using CliBasics = CliTest;

TEST_F(CliBasics, EnvsListsTheEnvironments) {
  std::string out;
  ASSERT_EQ(run_cli("envs --json", &out), 0) << out;
  EXPECT_NE(out.find("\"double_pendulum\""), std::string::npos) << out;
}

TEST_F(CliBasics, EnvsJsonMatchesTheRegistry) {
  const CliRun r = cli("envs --json");
  ASSERT_EQ(r.status, 0) << r.err;
  nlohmann::json j;
  ASSERT_NO_THROW(j = nlohmann::json::parse(r.out)) << r.out;  // stdout is JSON only
  ASSERT_TRUE(j.is_array());
  const auto& envs = phydream::environments();
  ASSERT_EQ(j.size(), envs.size());
  for (std::size_t k = 0; k < envs.size(); ++k) {
    const auto& e = envs[k];
    const auto& o = j[k];
    SCOPED_TRACE(e.name);
    EXPECT_EQ(o.at("name"), e.name);
    EXPECT_EQ(o.at("nx").get<int>(), e.nx);
    EXPECT_EQ(o.at("nu").get<int>(), e.nu);
    EXPECT_EQ(o.at("dt").get<double>(), e.dt);
    EXPECT_EQ(o.at("integrator"), phydream::integrator_name(e.integrator));
    EXPECT_EQ(o.at("state").size(), static_cast<std::size_t>(e.nx));
    EXPECT_EQ(o.at("action").size(), static_cast<std::size_t>(e.nu));
    ASSERT_EQ(o.at("params").size(), e.params.size());
    for (const auto& p : e.params)
      EXPECT_EQ(o.at("params").at(p.name).get<double>(), p.default_value);
  }
  // the seed's double pendulum as the issue describes it
  const auto dp = std::find_if(j.begin(), j.end(),
                               [](const auto& o) { return o.at("name") == "double_pendulum"; });
  ASSERT_NE(dp, j.end());
  EXPECT_EQ((*dp)["nx"], 4);
  EXPECT_EQ((*dp)["nu"], 2);
  EXPECT_EQ((*dp)["dt"], 0.1);
  EXPECT_EQ((*dp)["params"]["m1"], 1.0);
  EXPECT_EQ((*dp)["params"]["g"], 9.81);
}

TEST_F(CliBasics, EnvsTextShowsSizesTimestepAndParameters) {
  const CliRun r = cli("envs");
  ASSERT_EQ(r.status, 0) << r.err;
  for (const auto& e : phydream::environments()) {
    EXPECT_TRUE(contains(r.out, e.name + "\n")) << r.out;
    std::ostringstream sizes;
    sizes << "nx " << e.nx << ", nu " << e.nu << ", dt " << e.dt;
    EXPECT_TRUE(contains(r.out, sizes.str())) << sizes.str() << "\n" << r.out;
    for (const auto& p : e.params) EXPECT_TRUE(contains(r.out, " " + p.name + "=")) << p.name;
  }
  EXPECT_TRUE(contains(r.out, "m1=1 m2=1 l1=1 l2=1 g=9.81")) << r.out;
}

TEST_F(CliBasics, HelpExitsZero) {
  CliRun r = cli("--help");
  EXPECT_EQ(r.status, 0) << r.err;
  for (const char* sub : {"envs", "step", "rollout", "demo"}) {
    EXPECT_TRUE(contains(r.out, sub)) << sub << "\n" << r.out;
  }
  r = cli("step --help");
  EXPECT_EQ(r.status, 0) << r.err;
  for (const char* opt : {"--env", "--state", "--action", "--out", "--jacobian", "--mode",
                          "--dtype", "--backend", "--integrator", "--dt", "--param"}) {
    EXPECT_TRUE(contains(r.out, opt)) << opt << "\n" << r.out;
  }
  r = cli("rollout --help");
  EXPECT_EQ(r.status, 0) << r.err;
  for (const char* opt : {"--actions", "--grad", "--checkpoint"}) {
    EXPECT_TRUE(contains(r.out, opt)) << opt << "\n" << r.out;
  }
  EXPECT_EQ(cli("demo --help").status, 0);
  EXPECT_EQ(cli("envs --help").status, 0);
}

TEST_F(CliBasics, VersionPrintsTheProjectVersion) {
  const std::string version = cmake_version();
  ASSERT_FALSE(version.empty());
  const CliRun r = cli("--version");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "phydream " + version + "\n");
}

TEST_F(CliBasics, UsageErrorsExitTwo) {
  CliRun r = cli("");
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(contains(r.err, "subcommand")) << r.err;
  r = cli("frobnicate");
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(contains(r.err, "frobnicate")) << r.err;
  r = cli("--bogus");
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(contains(r.err, "--bogus")) << r.err;
  r = cli("envs --bogus");
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(contains(r.err, "--bogus")) << r.err;
}

// -------------------------------------------------------------------------------------------
// step: values against the library

using CliStep = CliTest;

TEST_F(CliStep, NextStateMatchesTheLibraryForEveryEnvironment) {
  constexpr std::int64_t B = 5;
  unsigned seed = 1;
  for (const auto& e : phydream::environments()) {
    SCOPED_TRACE(e.name);
    const auto x = uniform(B * e.nx, -1, 1, seed++), u = uniform(B * e.nu, -1, 1, seed++);
    const std::string xs = save<double>(e.name + "_x.npy", x, {B, e.nx});
    const std::string us = save<double>(e.name + "_u.npy", u, {B, e.nu});
    const std::string out = path(e.name + "_out");
    const CliRun r = cli("step --env " + e.name + " --backend cpu --state " + quote(xs) +
                         " --action " + quote(us) + " --out " + quote(out));
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(listing(out), std::vector<std::string>{"next_state.npy"});

    Simulator<double> sim(lib_options(e.name));
    std::vector<double> want(x.size());
    sim.step(B, x.data(), u.data(), want.data());
    expect_close(output(out + "/next_state.npy", npy::DType::f64, {B, e.nx}), want, 1e-12,
                 "next_state");
  }
}

TEST_F(CliStep, JacobiansMatchTheLibraryForEveryEnvironment) {
  constexpr std::int64_t B = 4;
  unsigned seed = 10;
  for (const auto& e : phydream::environments()) {
    SCOPED_TRACE(e.name);
    const int nx = e.nx, nu = e.nu;
    const auto x = uniform(B * nx, -1, 1, seed++), u = uniform(B * nu, -1, 1, seed++);
    const std::string xs = save<double>(e.name + "_x.npy", x, {B, nx});
    const std::string us = save<double>(e.name + "_u.npy", u, {B, nu});
    const std::string out = path(e.name + "_out");
    const CliRun r = cli("step --env " + e.name + " --backend cpu --state " + quote(xs) +
                         " --action " + quote(us) + " --out " + quote(out) + " --jacobian");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(listing(out),
              (std::vector<std::string>{"jac_action.npy", "jac_state.npy", "next_state.npy"}));

    Simulator<double> sim(lib_options(e.name));
    std::vector<double> xn(B * nx), jx(B * nx * nx), ju(B * nx * nu);
    sim.jacobian(B, x.data(), u.data(), xn.data(), jx.data(), ju.data(), JacobianMode::forward);
    expect_close(output(out + "/next_state.npy", npy::DType::f64, {B, nx}), xn, 1e-12,
                 "next_state");
    expect_close(output(out + "/jac_state.npy", npy::DType::f64, {B, nx, nx}), jx, 1e-12,
                 "jac_state");
    expect_close(output(out + "/jac_action.npy", npy::DType::f64, {B, nx, nu}), ju, 1e-12,
                 "jac_action");
  }
}

// jac_state[b, i, j] = d x'_i / d x_j, checked against central differences of the library's
// step (independent of the library's own Jacobian code) and the structure of explicit Euler
TEST_F(CliStep, JacobianLayoutIsRowOutputColumnInput) {
  constexpr std::int64_t B = 2;
  constexpr int nx = 4, nu = 2;
  const double dt = 0.1;
  const auto x = uniform(B * nx, -1, 1, 21), u = uniform(B * nu, -1, 1, 22);
  const std::string xs = save<double>("x.npy", x, {B, nx});
  const std::string us = save<double>("u.npy", u, {B, nu});
  const std::string out = path("out");
  const CliRun r = cli("step --env double_pendulum --backend cpu --state " + quote(xs) +
                       " --action " + quote(us) + " --out " + quote(out) + " --jacobian");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto jx = output(out + "/jac_state.npy", npy::DType::f64, {B, nx, nx});
  const auto ju = output(out + "/jac_action.npy", npy::DType::f64, {B, nx, nu});
  ASSERT_FALSE(jx.empty());
  ASSERT_FALSE(ju.empty());

  Simulator<double> sim(lib_options("double_pendulum"));
  auto step1 = [&](const std::vector<double>& xb, const std::vector<double>& ub) {
    std::vector<double> xn(nx);
    sim.step(1, xb.data(), ub.data(), xn.data());
    return xn;
  };
  const double h = 1e-6;
  for (std::int64_t b = 0; b < B; ++b) {
    const std::vector<double> xb(x.begin() + b * nx, x.begin() + (b + 1) * nx);
    const std::vector<double> ub(u.begin() + b * nu, u.begin() + (b + 1) * nu);
    for (int j = 0; j < nx; ++j) {
      auto xp = xb, xm = xb;
      xp[j] += h;
      xm[j] -= h;
      const auto fp = step1(xp, ub), fm = step1(xm, ub);
      for (int i = 0; i < nx; ++i) {
        EXPECT_NEAR(jx[(b * nx + i) * nx + j], (fp[i] - fm[i]) / (2 * h), 1e-7)
            << "b " << b << " i " << i << " j " << j;
      }
    }
    for (int j = 0; j < nu; ++j) {
      auto up = ub, um = ub;
      up[j] += h;
      um[j] -= h;
      const auto fp = step1(xb, up), fm = step1(xb, um);
      for (int i = 0; i < nx; ++i) {
        EXPECT_NEAR(ju[(b * nx + i) * nu + j], (fp[i] - fm[i]) / (2 * h), 1e-7)
            << "b " << b << " i " << i << " j " << j;
      }
    }
    // explicit Euler: theta1' = theta1 + dt omega1, so row 0 is e_0 + dt e_2 and ignores u
    const double* row0 = &jx[(b * nx + 0) * nx];
    EXPECT_DOUBLE_EQ(row0[0], 1.0);
    EXPECT_DOUBLE_EQ(row0[1], 0.0);
    EXPECT_DOUBLE_EQ(row0[2], dt);
    EXPECT_DOUBLE_EQ(row0[3], 0.0);
    EXPECT_EQ(ju[(b * nx + 0) * nu + 0], 0.0);
    // the actions are added to the angular accelerations: d omega1' / d a1 = dt
    EXPECT_NEAR(ju[(b * nx + 2) * nu + 0], dt, 1e-15);
  }
}

TEST_F(CliStep, ModesFwdRevAndFdAgree) {
  constexpr std::int64_t B = 6;
  for (const std::string env : {"double_pendulum", "cartpole"}) {
    SCOPED_TRACE(env);
    const auto& e = phydream::find_env(env);
    const int nx = e.nx, nu = e.nu;
    const auto x = uniform(B * nx, -1, 1, 31), u = uniform(B * nu, -1, 1, 32);
    const std::string xs = save<double>(env + "_x.npy", x, {B, nx});
    const std::string us = save<double>(env + "_u.npy", u, {B, nu});
    std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> jac;
    for (const std::string mode : {"fwd", "rev", "fd"}) {
      const std::string out = path(env + "_" + mode);
      const CliRun r =
          cli("step --env " + env + " --backend cpu --state " + quote(xs) + " --action " +
              quote(us) + " --out " + quote(out) + " --jacobian --mode " + mode);
      ASSERT_EQ(r.status, 0) << mode << ": " << r.err;
      jac[mode] = {output(out + "/jac_state.npy", npy::DType::f64, {B, nx, nx}),
                   output(out + "/jac_action.npy", npy::DType::f64, {B, nx, nu})};
      // every mode writes the same next state
      Simulator<double> sim(lib_options(env));
      std::vector<double> xn(B * nx);
      sim.step(B, x.data(), u.data(), xn.data());
      expect_close(output(out + "/next_state.npy", npy::DType::f64, {B, nx}), xn, 1e-12,
                   mode + " next_state");
    }
    expect_close(jac["rev"].first, jac["fwd"].first, 1e-12, "rev vs fwd jac_state");
    expect_close(jac["rev"].second, jac["fwd"].second, 1e-12, "rev vs fwd jac_action");
    expect_close(jac["fd"].first, jac["fwd"].first, 1e-6, "fd vs fwd jac_state");
    expect_close(jac["fd"].second, jac["fwd"].second, 1e-6, "fd vs fwd jac_action");

    // and each equals the library's own routine for that mode
    Simulator<double> sim(lib_options(env));
    std::vector<double> jx(B * nx * nx), ju(B * nx * nu);
    sim.jacobian(B, x.data(), u.data(), nullptr, jx.data(), ju.data(), JacobianMode::reverse);
    expect_close(jac["rev"].first, jx, 1e-12, "rev vs library");
    sim.jacobian_fd(B, x.data(), u.data(), jx.data(), ju.data());
    expect_close(jac["fd"].first, jx, 1e-12, "fd vs library");
    expect_close(jac["fd"].second, ju, 1e-12, "fd vs library");
  }
}

TEST_F(CliStep, FdEpsIsPassedThrough) {
  constexpr std::int64_t B = 3;
  const auto x = uniform(B * 4, -1, 1, 35), u = uniform(B * 2, -1, 1, 36);
  const std::string xs = save<double>("x.npy", x, {B, 4});
  const std::string us = save<double>("u.npy", u, {B, 2});
  const std::string out = path("out");
  const CliRun r =
      cli("step --env double_pendulum --backend cpu --state " + quote(xs) + " --action " +
          quote(us) + " --out " + quote(out) + " --jacobian --mode fd --fd-eps 1e-4");
  ASSERT_EQ(r.status, 0) << r.err;
  Simulator<double> sim(lib_options("double_pendulum"));
  std::vector<double> jx(B * 16), ju(B * 8);
  sim.jacobian_fd(B, x.data(), u.data(), jx.data(), ju.data(), 1e-4);
  expect_close(output(out + "/jac_state.npy", npy::DType::f64, {B, 4, 4}), jx, 1e-12, "jac");
}

TEST_F(CliStep, Float32InputsWithDtypeF64) {
  constexpr std::int64_t B = 4;
  const auto x = uniform(B * 4, -1, 1, 41), u = uniform(B * 2, -1, 1, 42);
  // what the file really holds: the values rounded to float32
  std::vector<double> x32(x.size()), u32(u.size());
  for (std::size_t i = 0; i < x.size(); ++i) x32[i] = static_cast<float>(x[i]);
  for (std::size_t i = 0; i < u.size(); ++i) u32[i] = static_cast<float>(u[i]);
  const std::string xs = save<float>("x32.npy", x, {B, 4});
  const std::string us = save<float>("u32.npy", u, {B, 2});
  const std::string us64 = save<double>("u64.npy", u32, {B, 2});
  Simulator<double> sim(lib_options("double_pendulum"));
  std::vector<double> xn(B * 4), jx(B * 16), ju(B * 8);
  sim.jacobian(B, x32.data(), u32.data(), xn.data(), jx.data(), ju.data());

  // both float32, and a float32 state with a float64 action
  for (const std::string& action : {us, us64}) {
    const std::string out = path(action == us ? "out_both" : "out_mixed");
    const CliRun r =
        cli("step --env double_pendulum --backend cpu --dtype f64 --state " + quote(xs) +
            " --action " + quote(action) + " --out " + quote(out) + " --jacobian");
    ASSERT_EQ(r.status, 0) << r.err;
    expect_close(output(out + "/next_state.npy", npy::DType::f64, {B, 4}), xn, 1e-12, "xn");
    expect_close(output(out + "/jac_state.npy", npy::DType::f64, {B, 4, 4}), jx, 1e-12, "jx");
    expect_close(output(out + "/jac_action.npy", npy::DType::f64, {B, 4, 2}), ju, 1e-12, "ju");
  }
}

TEST_F(CliStep, DtypeF32WritesFloat32) {
  constexpr std::int64_t B = 4;
  const auto x = uniform(B * 4, -1, 1, 51), u = uniform(B * 2, -1, 1, 52);
  const std::string xs = save<double>("x.npy", x, {B, 4});  // float64 inputs, f32 computation
  const std::string us = save<double>("u.npy", u, {B, 2});
  const std::string out = path("out");
  const CliRun r = cli("step --env double_pendulum --backend cpu --dtype f32 --state " + quote(xs) +
                       " --action " + quote(us) + " --out " + quote(out) + " --jacobian");
  ASSERT_EQ(r.status, 0) << r.err;

  SimulatorOptions o = lib_options("double_pendulum");
  Simulator<float> simf(o);
  std::vector<float> xf(x.begin(), x.end()), uf(u.begin(), u.end());
  std::vector<float> xn(B * 4), jx(B * 16), ju(B * 8);
  simf.jacobian(B, xf.data(), uf.data(), xn.data(), jx.data(), ju.data());
  const auto got_xn = output(out + "/next_state.npy", npy::DType::f32, {B, 4});
  const auto got_jx = output(out + "/jac_state.npy", npy::DType::f32, {B, 4, 4});
  const auto got_ju = output(out + "/jac_action.npy", npy::DType::f32, {B, 4, 2});
  expect_close(got_xn, to_double(xn), 1e-6, "next_state vs float library");
  expect_close(got_jx, to_double(jx), 1e-6, "jac_state vs float library");
  expect_close(got_ju, to_double(ju), 1e-6, "jac_action vs float library");

  // and near the float64 answer
  Simulator<double> sim(o);
  std::vector<double> xn64(B * 4), jx64(B * 16), ju64(B * 8);
  sim.jacobian(B, x.data(), u.data(), xn64.data(), jx64.data(), ju64.data());
  expect_close(got_xn, xn64, 1e-5, "next_state vs double");
  expect_close(got_jx, jx64, 1e-4, "jac_state vs double");
}

TEST_F(CliStep, BigEndianAndVersion2FilesAreRead) {
  constexpr std::int64_t B = 2;
  const auto x = uniform(B * 4, -1, 1, 61), u = uniform(B * 2, -1, 1, 62);
  std::string be = raw_data<double>(x);
  for (std::size_t i = 0; i < be.size(); i += 8) std::reverse(be.begin() + i, be.begin() + i + 8);
  const std::string xs = write_raw("x_be.npy", npy_bytes(npy_dict(">f8", "(2, 4)"), be));
  const std::string us =
      write_raw("u_v2.npy", npy_bytes(npy_dict("<f4", "(2, 2)"), raw_data<float>(u), 2));
  const std::string out = path("out");
  const CliRun r = cli("step --env double_pendulum --backend cpu --state " + quote(xs) +
                       " --action " + quote(us) + " --out " + quote(out));
  ASSERT_EQ(r.status, 0) << r.err;
  std::vector<double> u32(u.begin(), u.end());
  for (double& v : u32) v = static_cast<float>(v);
  Simulator<double> sim(lib_options("double_pendulum"));
  std::vector<double> xn(B * 4);
  sim.step(B, x.data(), u32.data(), xn.data());
  expect_close(output(out + "/next_state.npy", npy::DType::f64, {B, 4}), xn, 1e-12, "xn");
}

TEST_F(CliStep, ParamDtAndIntegratorMatchTheLibrary) {
  constexpr std::int64_t B = 3;
  const auto x = uniform(B * 4, -1, 1, 71), u = uniform(B * 2, -1, 1, 72);
  const std::string xs = save<double>("x.npy", x, {B, 4});
  const std::string us = save<double>("u.npy", u, {B, 2});
  struct Case {
    std::string args;
    Params params;
    std::optional<Integrator> integrator;
    std::optional<double> dt;
  };
  const std::vector<Case> cases = {
      {"", {}, std::nullopt, std::nullopt},
      {"--param m1=2.5", {{"m1", 2.5}}, std::nullopt, std::nullopt},
      {"--param m1=2.5 --param l2=0.7 --param g=-3",
       {{"m1", 2.5}, {"l2", 0.7}, {"g", -3}},
       std::nullopt,
       std::nullopt},
      {"--dt 0.05", {}, std::nullopt, 0.05},
      {"--integrator rk4", {}, Integrator::rk4, std::nullopt},
      {"--integrator semi_implicit_euler --dt 0.02 --param m2=0.5",
       {{"m2", 0.5}},
       Integrator::semi_implicit_euler,
       0.02},
      {"--integrator euler --threads 1", {}, Integrator::euler, std::nullopt},
  };
  std::vector<double> default_xn;
  for (std::size_t k = 0; k < cases.size(); ++k) {
    const Case& c = cases[k];
    SCOPED_TRACE(c.args);
    const std::string out = path("out" + std::to_string(k));
    const CliRun r =
        cli("step --env double_pendulum --backend cpu --state " + quote(xs) + " --action " +
            quote(us) + " --out " + quote(out) + " --jacobian " + c.args);
    ASSERT_EQ(r.status, 0) << r.err;
    Simulator<double> sim(lib_options("double_pendulum", c.params, c.integrator, c.dt));
    std::vector<double> xn(B * 4), jx(B * 16), ju(B * 8);
    sim.jacobian(B, x.data(), u.data(), xn.data(), jx.data(), ju.data());
    const auto got = output(out + "/next_state.npy", npy::DType::f64, {B, 4});
    expect_close(got, xn, 1e-12, "next_state");
    expect_close(output(out + "/jac_state.npy", npy::DType::f64, {B, 4, 4}), jx, 1e-12, "jx");
    expect_close(output(out + "/jac_action.npy", npy::DType::f64, {B, 4, 2}), ju, 1e-12, "ju");
    if (k == 0) {
      default_xn = got;
    } else if (c.args.find("euler --threads") == std::string::npos) {
      // the option really changed the result
      EXPECT_NE(got, default_xn);
    } else {
      EXPECT_EQ(got, default_xn);
    }
  }
}

TEST_F(CliStep, OtherEnvironmentsTakeTheirOwnParameters) {
  constexpr std::int64_t B = 2;
  const auto x = uniform(B * 2, -1, 1, 81), u = uniform(B * 1, -1, 1, 82);
  const std::string xs = save<double>("x.npy", x, {B, 2});
  const std::string us = save<double>("u.npy", u, {B, 1});
  const std::string out = path("out");
  const CliRun r = cli("step --env pendulum --backend cpu --state " + quote(xs) + " --action " +
                       quote(us) + " --out " + quote(out) +
                       " --param damping=0.3 --param length=2 --integrator rk4 --jacobian");
  ASSERT_EQ(r.status, 0) << r.err;
  Simulator<double> sim(
      lib_options("pendulum", {{"damping", 0.3}, {"length", 2}}, Integrator::rk4));
  std::vector<double> xn(B * 2), jx(B * 4), ju(B * 2);
  sim.jacobian(B, x.data(), u.data(), xn.data(), jx.data(), ju.data());
  expect_close(output(out + "/next_state.npy", npy::DType::f64, {B, 2}), xn, 1e-12, "xn");
  expect_close(output(out + "/jac_state.npy", npy::DType::f64, {B, 2, 2}), jx, 1e-12, "jx");
  expect_close(output(out + "/jac_action.npy", npy::DType::f64, {B, 2, 1}), ju, 1e-12, "ju");
}

TEST_F(CliStep, DefaultBackendAndEmptyBatch) {
  constexpr std::int64_t B = 3;
  const auto x = uniform(B * 4, -1, 1, 91), u = uniform(B * 2, -1, 1, 92);
  const std::string xs = save<double>("x.npy", x, {B, 4});
  const std::string us = save<double>("u.npy", u, {B, 2});
  // no --backend: auto (the CPU here, a GPU where one is visible)
  CliRun r = cli("step --env double_pendulum --state " + quote(xs) + " --action " + quote(us) +
                 " --out " + quote(path("auto")));
  ASSERT_EQ(r.status, 0) << r.err;
  Simulator<double> sim(lib_options("double_pendulum"));
  std::vector<double> xn(B * 4);
  sim.step(B, x.data(), u.data(), xn.data());
  expect_close(output(path("auto/next_state.npy"), npy::DType::f64, {B, 4}), xn, 1e-12, "auto");

  // a batch of zero environments gives empty outputs of the right shape
  const std::string x0 = save<double>("x0.npy", {}, {0, 4});
  const std::string u0 = save<double>("u0.npy", {}, {0, 2});
  r = cli("step --env double_pendulum --backend cpu --state " + quote(x0) + " --action " +
          quote(u0) + " --out " + quote(path("empty")) + " --jacobian");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(output(path("empty/next_state.npy"), npy::DType::f64, {0, 4}).empty());
  EXPECT_TRUE(output(path("empty/jac_state.npy"), npy::DType::f64, {0, 4, 4}).empty());
  EXPECT_TRUE(output(path("empty/jac_action.npy"), npy::DType::f64, {0, 4, 2}).empty());
}

// -------------------------------------------------------------------------------------------
// step: the output directory

TEST_F(CliStep, ExistingDirectoryKeepsItsOtherFiles) {
  constexpr std::int64_t B = 2;
  const auto x = uniform(B * 4, -1, 1, 101), u = uniform(B * 2, -1, 1, 102);
  const std::string xs = save<double>("x.npy", x, {B, 4});
  const std::string us = save<double>("u.npy", u, {B, 2});
  const std::string out = path("out");
  fs::create_directories(out + "/sub");
  std::ofstream(out + "/notes.txt") << "keep me\n";
  std::ofstream(out + "/sub/data.bin") << "nested";
  const std::vector<double> other = {1, 2, 3};
  npy::save<double>(out + "/other.npy", other.data(), {3});

  // a failing command leaves the directory exactly as it was
  CliRun r = cli("step --env double_pendulum --backend cpu --state " + quote(xs) + " --action " +
                 quote(us) + " --out " + quote(out) + " --param m1=0");
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_EQ(listing(out), (std::vector<std::string>{"notes.txt", "other.npy", "sub"}));

  r = cli("step --env double_pendulum --backend cpu --state " + quote(xs) + " --action " +
          quote(us) + " --out " + quote(out) + " --jacobian");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(listing(out),
            (std::vector<std::string>{"jac_action.npy", "jac_state.npy", "next_state.npy",
                                      "notes.txt", "other.npy", "sub"}));
  EXPECT_EQ(read_text(out + "/notes.txt"), "keep me\n");
  EXPECT_EQ(read_text(out + "/sub/data.bin"), "nested");
  EXPECT_EQ(npy::load<double>(out + "/other.npy").data, other);

  // running again replaces the outputs in place, no temporary files left behind
  const auto first = output(out + "/next_state.npy", npy::DType::f64, {B, 4});
  r = cli("step --env double_pendulum --backend cpu --state " + quote(xs) + " --action " +
          quote(us) + " --out " + quote(out) + " --dt 0.01");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(listing(out).size(), 6u);
  EXPECT_NE(output(out + "/next_state.npy", npy::DType::f64, {B, 4}), first);
}

TEST_F(CliStep, CreatesNestedOutputDirectories) {
  const std::string xs = save<double>("x.npy", uniform(4, -1, 1, 111), {1, 4});
  const std::string us = save<double>("u.npy", uniform(2, -1, 1, 112), {1, 2});
  const std::string out = path("a/b/c");
  const CliRun r = cli("step --env double_pendulum --backend cpu --state " + quote(xs) +
                       " --action " + quote(us) + " --out " + quote(out));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(output(out + "/next_state.npy", npy::DType::f64, {1, 4}).size(), 4u);
}

TEST_F(CliStep, NonFiniteResultsAreNotWritten) {
  // huge angular velocities overflow in the omega^2 terms of the accelerations
  const std::string xs =
      save<double>("x.npy", {0.1, 0.2, 1e200, 1e200, 0.1, 0.2, 0.3, 0.4}, {2, 4});
  const std::string us = save<double>("u.npy", {0, 0, 0, 0}, {2, 2});
  const std::string out = path("out");
  CliRun r = cli("step --env double_pendulum --backend cpu --state " + quote(xs) + " --action " +
                 quote(us) + " --out " + quote(out) + " --jacobian");
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_TRUE(contains(r.err, "non-finite")) << r.err;
  EXPECT_TRUE(contains(r.err, "1 of 2")) << r.err;
  EXPECT_FALSE(fs::exists(out));

  r = cli("step --env double_pendulum --backend cpu --state " + quote(xs) + " --action " +
          quote(us) + " --out " + quote(out) + " --allow-nonfinite");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "warning")) << r.err;
  const auto xn = output(out + "/next_state.npy", npy::DType::f64, {2, 4});
  ASSERT_EQ(xn.size(), 8u);
  EXPECT_FALSE(std::isfinite(xn[3]));
  EXPECT_TRUE(std::isfinite(xn[4]));
}

TEST_F(CliStep, CudaBackendWithoutADeviceFails) {
  if (phydream::cuda_device_count() > 0) GTEST_SKIP() << "a CUDA device is visible";
  const std::string xs = save<double>("x.npy", uniform(8, -1, 1, 121), {2, 4});
  const std::string us = save<double>("u.npy", uniform(4, -1, 1, 122), {2, 2});
  const std::string U = save<double>("U.npy", uniform(12, -1, 1, 123), {2, 3, 2});
  const std::string out = path("out");
  CliRun r = cli("step --env double_pendulum --backend cuda --state " + quote(xs) + " --action " +
                 quote(us) + " --out " + quote(out) + " --jacobian");
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_TRUE(contains(r.err, "cuda")) << r.err;
  EXPECT_TRUE(contains(r.err, "--backend cpu")) << r.err;  // says what to do instead
  EXPECT_FALSE(fs::exists(out));

  r = cli("rollout --env double_pendulum --backend cuda --state " + quote(xs) + " --actions " +
          quote(U) + " --out " + quote(out) + " --grad");
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_TRUE(contains(r.err, "cuda")) << r.err;
  EXPECT_FALSE(fs::exists(out));

  r = cli("demo --backend cuda --batch 100 --steps 1");
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_TRUE(contains(r.err, "cuda")) << r.err;
}

TEST_F(CliStep, CudaBackendMatchesTheCpuWhereADeviceIsVisible) {
  if (phydream::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device visible";
  constexpr std::int64_t B = 64;
  const auto x = uniform(B * 4, -1, 1, 131), u = uniform(B * 2, -1, 1, 132);
  const std::string xs = save<double>("x.npy", x, {B, 4});
  const std::string us = save<double>("u.npy", u, {B, 2});
  const std::string out = path("out");
  const CliRun r = cli("step --env double_pendulum --backend cuda --state " + quote(xs) +
                       " --action " + quote(us) + " --out " + quote(out) + " --jacobian");
  ASSERT_EQ(r.status, 0) << r.err;
  Simulator<double> sim(lib_options("double_pendulum"));
  std::vector<double> xn(B * 4), jx(B * 16), ju(B * 8);
  sim.jacobian(B, x.data(), u.data(), xn.data(), jx.data(), ju.data());
  expect_close(output(out + "/next_state.npy", npy::DType::f64, {B, 4}), xn, 1e-12, "xn");
  expect_close(output(out + "/jac_state.npy", npy::DType::f64, {B, 4, 4}), jx, 1e-12, "jx");
  expect_close(output(out + "/jac_action.npy", npy::DType::f64, {B, 4, 2}), ju, 1e-12, "ju");
}

// -------------------------------------------------------------------------------------------
// step: bad input is exit status 2, a message naming the file or option, nothing written

struct ErrorCase {
  std::string label;
  std::string args;                  // after the subcommand
  std::vector<std::string> phrases;  // each must appear on stderr
};

class CliInputErrors : public CliTest {
 protected:
  // runs every case into its own output directory, none of which may be created
  void check_all(const std::string& subcommand, const std::vector<ErrorCase>& cases) {
    for (std::size_t k = 0; k < cases.size(); ++k) {
      const ErrorCase& c = cases[k];
      SCOPED_TRACE(c.label + ": " + c.args);
      const std::string out = path("out" + std::to_string(k));
      const CliRun r = cli(subcommand + " " + c.args + " --out " + quote(out));
      expect_input_error(r, c.phrases, out);
    }
  }
};

TEST_F(CliInputErrors, StepBadFiles) {
  const std::string x = save<double>("x.npy", uniform(12, -1, 1, 141), {3, 4});
  const std::string u = save<double>("u.npy", uniform(6, -1, 1, 142), {3, 2});
  const std::string x_rank1 = save<double>("x_rank1.npy", uniform(12, -1, 1, 143), {12});
  const std::string x_rank3 = save<double>("x_rank3.npy", uniform(12, -1, 1, 144), {3, 4, 1});
  const std::string x_nx5 = save<double>("x_nx5.npy", uniform(15, -1, 1, 145), {3, 5});
  const std::string x_0d = save<double>("x_0d.npy", {1.0}, {});
  const std::string u_nu3 = save<double>("u_nu3.npy", uniform(9, -1, 1, 146), {3, 3});
  const std::string u_b2 = save<float>("u_b2.npy", uniform(4, -1, 1, 147), {2, 2});
  auto xnan = uniform(12, -1, 1, 148);
  xnan[1 * 4 + 2] = std::nan("");
  const std::string x_nan = save<double>("x_nan.npy", xnan, {3, 4});
  auto uinf = uniform(6, -1, 1, 149);
  uinf[2 * 2 + 1] = -INFINITY;
  const std::string u_inf = save<float>("u_inf.npy", uinf, {3, 2});
  const std::string x_big = save<double>("x_big.npy", {0, 0, 1e300, 0}, {1, 4});
  const std::string u_1 = save<double>("u_1.npy", {0, 0}, {1, 2});
  const auto vals = uniform(12, -1, 1, 150);
  const std::string x_i8 =
      write_raw("x_i8.npy", npy_bytes(npy_dict("<i8", "(3, 4)"), raw_data<std::int64_t>(vals)));
  const std::string u_i4 =
      write_raw("u_i4.npy", npy_bytes(npy_dict("<i4", "(3, 2)"), raw_data<std::int32_t>(vals)));
  const std::string x_f2 =
      write_raw("x_f2.npy", npy_bytes(npy_dict("<f2", "(3, 4)"), std::string(24, '\0')));
  const std::string x_c16 =
      write_raw("x_c16.npy", npy_bytes(npy_dict("<c16", "(3, 4)"), std::string(192, '\0')));
  const std::string x_fortran = write_raw(
      "x_fortran.npy", npy_bytes(npy_dict("<f8", "(3, 4)", true), raw_data<double>(vals)));
  const std::string good = npy_bytes(npy_dict("<f8", "(3, 4)"), raw_data<double>(vals));
  const std::string x_trunc = write_raw("x_trunc.npy", good.substr(0, good.size() - 5));
  const std::string x_trunc_header = write_raw("x_trunc_header.npy", good.substr(0, 30));
  const std::string x_trailing = write_raw("x_trailing.npy", good + "extra");
  const std::string x_text = write_raw("x_text.npy", "theta1,theta2\n0.1,0.2\n");
  const std::string x_empty = write_raw("x_empty.npy", "");
  const std::string x_nodict = write_raw(
      "x_nodict.npy", npy_bytes("{'descr': '<f8', 'shape': (3, 4), }", raw_data<double>(vals)));
  std::string v9 = good;
  v9[6] = 9;
  const std::string x_v9 = write_raw("x_v9.npy", v9);
  const std::string missing = path("no_such_file.npy");
  fs::create_directories(path("a_directory.npy"));
  const std::string a_dir = path("a_directory.npy");

  const std::string dp = "--env double_pendulum --backend cpu ";
  auto args = [&](const std::string& xs, const std::string& us) {
    return dp + "--state " + quote(xs) + " --action " + quote(us);
  };
  check_all(
      "step",
      {
          {"rank 1 state",
           args(x_rank1, u),
           {"--state", x_rank1, "expected shape (B, nx=4)", "got (12,)"}},
          {"rank 3 state", args(x_rank3, u), {"--state", x_rank3, "(B, nx=4)", "got (3, 4, 1)"}},
          {"0-d state", args(x_0d, u), {"--state", x_0d, "(B, nx=4)", "got ()"}},
          {"wrong nx",
           args(x_nx5, u),
           {"--state", x_nx5, "expected shape (B, nx=4)", "got (3, 5)"}},
          {"wrong nu",
           args(x, u_nu3),
           {"--action", u_nu3, "expected shape (B, nu=2)", "got (3, 3)"}},
          {"batch mismatch",
           args(x, u_b2),
           {"--action", u_b2, "--state", x, "batch B = 2", "batch B = 3"}},
          {"int64 state", args(x_i8, u), {"--state", x_i8, "'<i8'", "float32 or float64"}},
          {"int32 action", args(x, u_i4), {"--action", u_i4, "'<i4'", "float32 or float64"}},
          {"float16 state", args(x_f2, u), {"--state", x_f2, "'<f2'", "float32 or float64"}},
          {"complex state", args(x_c16, u), {"--state", x_c16, "unsupported dtype"}},
          {"NaN state", args(x_nan, u), {"--state", x_nan, "[1, 2]", "NaN", "finite"}},
          {"Inf action", args(x, u_inf), {"--action", u_inf, "[2, 1]", "infinite", "finite"}},
          {"f64 beyond float32",
           "--dtype f32 " + args(x_big, u_1),
           {"--state", x_big, "[0, 2]", "float32"}},
          {"Fortran order", args(x_fortran, u), {"--state", x_fortran, "Fortran"}},
          {"truncated data", args(x_trunc, u), {"--state", x_trunc, "truncated", "(3, 4)"}},
          {"truncated header", args(x_trunc_header, u), {"--state", x_trunc_header, "truncated"}},
          {"trailing bytes", args(x_trailing, u), {"--state", x_trailing, "trailing"}},
          {"text file", args(x_text, u), {"--state", x_text, "not an NPY file"}},
          {"empty file", args(x_empty, u), {"--state", x_empty, "not an NPY file", "empty"}},
          {"no fortran_order",
           args(x_nodict, u),
           {"--state", x_nodict, "malformed NPY header", "fortran_order"}},
          {"version 9", args(x_v9, u), {"--state", x_v9, "version 9.0"}},
          {"missing file", args(missing, u), {"--state", missing, "cannot open"}},
          {"missing action", args(x, missing), {"--action", missing, "cannot open"}},
          {"directory", args(a_dir, u), {"--state", a_dir, "is a directory"}},
          {"cartpole nu",
           "--env cartpole --backend cpu --state " + quote(x) + " --action " + quote(u),
           {"--action", u, "expected shape (B, nu=1)", "got (3, 2)"}},
          {"pendulum nx",
           "--env pendulum --backend cpu --state " + quote(x) + " --action " + quote(u),
           {"--state", x, "expected shape (B, nx=2)", "got (3, 4)"}},
      });
}

TEST_F(CliInputErrors, StepBadOptions) {
  const std::string x = save<double>("x.npy", uniform(12, -1, 1, 151), {3, 4});
  const std::string u = save<double>("u.npy", uniform(6, -1, 1, 152), {3, 2});
  const std::string files = " --state " + quote(x) + " --action " + quote(u) + " ";
  const std::string dp = "--env double_pendulum --backend cpu" + files;
  check_all(
      "step",
      {
          {"unknown env",
           "--env nope" + files,
           {"unknown environment 'nope'", "double_pendulum", "cartpole"}},
          {"unknown option", dp + "--bogus", {"--bogus"}},
          {"unknown parameter",
           dp + "--param zz=1",
           {"unknown parameter 'zz'", "m1, m2, l1, l2, g"}},
          {"other env's parameter", dp + "--param damping=1", {"unknown parameter 'damping'"}},
          {"param without value", dp + "--param m1", {"--param 'm1'", "NAME=VALUE"}},
          {"param without name", dp + "--param =2", {"--param '=2'", "NAME=VALUE"}},
          {"param not a number",
           dp + "--param m1=abc",
           {"--param 'm1=abc'", "not a finite number"}},
          {"param trailing text",
           dp + "--param m1=2kg",
           {"--param 'm1=2kg'", "not a finite number"}},
          {"param empty value", dp + "--param m1=", {"--param 'm1='", "not a finite number"}},
          {"param NaN", dp + "--param m1=nan", {"'m1=nan'", "not a finite number"}},
          {"param overflow", dp + "--param l1=1e400", {"'l1=1e400'", "not a finite number"}},
          {"param zero mass", dp + "--param m1=0", {"'m1'", "> 0", "got 0"}},
          {"param negative length", dp + "--param m2=1 --param l2=-1", {"'l2'", "> 0"}},
          {"pendulum negative damping",
           "--env pendulum --backend cpu --state " + quote(x) + " --action " + quote(u) +
               " --param damping=-0.5",
           {"'damping'", ">= 0"}},
          {"dt zero", dp + "--dt 0", {"--dt", "> 0"}},
          {"dt negative", dp + "--dt -0.1", {"--dt", "> 0"}},
          {"dt NaN", dp + "--dt nan", {"--dt"}},
          {"dt infinite", dp + "--dt inf", {"--dt"}},
          {"dt not a number", dp + "--dt fast", {"--dt", "fast"}},
          {"unknown integrator",
           dp + "--integrator rk5",
           {"--integrator", "'rk5'", "euler", "rk4"}},
          {"unknown mode", dp + "--jacobian --mode bwd", {"--mode", "'bwd'", "fwd, rev, analytic or fd"}},
          {"mode without jacobian", dp + "--mode rev", {"--mode rev", "--jacobian"}},
          {"unknown dtype", dp + "--dtype f16", {"--dtype", "'f16'", "f32 or f64"}},
          {"unknown backend",
           "--env double_pendulum --backend gpu" + files,
           {"--backend", "'gpu'", "cuda"}},
          {"negative fd eps", dp + "--jacobian --mode fd --fd-eps -1e-3", {"--fd-eps"}},
          {"negative threads", dp + "--threads -2", {"threads", "-2"}},
          {"missing env", "--backend cpu" + files, {"--env"}},
          {"missing state", "--env double_pendulum --action " + quote(u), {"--state"}},
          {"extra positional", dp + "extra", {"extra"}},
      });
  // a missing --out is reported too
  const CliRun r = cli("step " + dp);
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(contains(r.err, "--out")) << r.err;
  // so is an --out that is a regular file, before any work and leaving the file alone
  const std::string file = save<double>("not_a_dir.npy", uniform(4, -1, 1, 153), {4});
  const CliRun f = cli("step " + dp + "--out " + quote(file));
  EXPECT_EQ(f.status, 2);
  EXPECT_TRUE(contains(f.err, "exists and is not a directory")) << f.err;
  EXPECT_EQ(npy::load<double>(file).size(), 4);
}

// -------------------------------------------------------------------------------------------
// rollout

using CliRollout = CliTest;

// 1/2 sum_b |x_T|^2 from a (B, T + 1, nx) trajectory
double final_loss(const std::vector<double>& states, std::int64_t B, std::int64_t T, int nx) {
  double L = 0;
  for (std::int64_t b = 0; b < B; ++b) {
    for (int i = 0; i < nx; ++i) {
      const double v = states[(b * (T + 1) + T) * nx + i];
      L += 0.5 * v * v;
    }
  }
  return L;
}

// the library's gradients of 1/2 sum_b |x_T|^2 with respect to x0 and the actions
void library_grads(Simulator<double>& sim, std::int64_t B, std::int64_t T,
                   const std::vector<double>& x0, const std::vector<double>& U,
                   std::vector<double>* states, std::vector<double>* gx0, std::vector<double>* gU) {
  const int nx = sim.nx();
  states->assign(B * (T + 1) * nx, 0.0);
  sim.rollout(B, T, x0.data(), U.data(), states->data());
  std::vector<double> g_final(B * nx);
  for (std::int64_t b = 0; b < B; ++b) {
    for (int i = 0; i < nx; ++i) g_final[b * nx + i] = (*states)[(b * (T + 1) + T) * nx + i];
  }
  gx0->assign(x0.size(), 0.0);
  gU->assign(U.size(), 0.0);
  sim.rollout_vjp(B, T, x0.data(), U.data(), states->data(), gx0->data(), gU->data(), nullptr,
                  g_final.data());
}

TEST_F(CliRollout, StatesAndGradsMatchTheLibraryForEveryEnvironment) {
  constexpr std::int64_t B = 3, T = 7;
  unsigned seed = 200;
  for (const auto& e : phydream::environments()) {
    SCOPED_TRACE(e.name);
    const int nx = e.nx, nu = e.nu;
    const auto x0 = uniform(B * nx, -0.5, 0.5, seed++), U = uniform(B * T * nu, -1, 1, seed++);
    const std::string xs = save<double>(e.name + "_x0.npy", x0, {B, nx});
    const std::string Us = save<double>(e.name + "_U.npy", U, {B, T, nu});

    // states only
    const std::string out1 = path(e.name + "_states");
    CliRun r = cli("rollout --env " + e.name + " --backend cpu --state " + quote(xs) +
                   " --actions " + quote(Us) + " --out " + quote(out1));
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(listing(out1), std::vector<std::string>{"states.npy"});

    Simulator<double> sim(lib_options(e.name));
    std::vector<double> states, gx0, gU;
    library_grads(sim, B, T, x0, U, &states, &gx0, &gU);
    expect_close(output(out1 + "/states.npy", npy::DType::f64, {B, T + 1, nx}), states, 1e-12,
                 "states");

    // with gradients
    const std::string out2 = path(e.name + "_grad");
    r = cli("rollout --env " + e.name + " --backend cpu --state " + quote(xs) + " --actions " +
            quote(Us) + " --out " + quote(out2) + " --grad");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(listing(out2),
              (std::vector<std::string>{"grad_actions.npy", "grad_state.npy", "states.npy"}));
    const auto got_states = output(out2 + "/states.npy", npy::DType::f64, {B, T + 1, nx});
    expect_close(got_states, states, 1e-12, "states");
    expect_close(output(out2 + "/grad_state.npy", npy::DType::f64, {B, nx}), gx0, 1e-12,
                 "grad_state");
    expect_close(output(out2 + "/grad_actions.npy", npy::DType::f64, {B, T, nu}), gU, 1e-12,
                 "grad_actions");
    // states[:, 0] is x0 exactly
    for (std::int64_t b = 0; b < B && !got_states.empty(); ++b) {
      for (int i = 0; i < nx; ++i) {
        EXPECT_EQ(got_states[(b * (T + 1)) * nx + i], x0[b * nx + i]);
      }
    }
  }
}

TEST_F(CliRollout, CheckpointingGivesTheStoredPathGradients) {
  constexpr std::int64_t B = 4, T = 10;
  const auto x0 = uniform(B * 4, -0.5, 0.5, 211), U = uniform(B * T * 2, -1, 1, 212);
  const std::string xs = save<double>("x0.npy", x0, {B, 4});
  const std::string Us = save<double>("U.npy", U, {B, T, 2});
  std::map<std::string, std::vector<double>> gx, gu, st;
  for (const std::string k : {"-1", "0", "1", "3", "10", "25"}) {
    const std::string out = path("ck" + k);
    const CliRun r =
        cli("rollout --env double_pendulum --backend cpu --state " + quote(xs) + " --actions " +
            quote(Us) + " --out " + quote(out) + " --grad --checkpoint " + k);
    ASSERT_EQ(r.status, 0) << k << ": " << r.err;
    st[k] = output(out + "/states.npy", npy::DType::f64, {B, T + 1, 4});
    gx[k] = output(out + "/grad_state.npy", npy::DType::f64, {B, 4});
    gu[k] = output(out + "/grad_actions.npy", npy::DType::f64, {B, T, 2});
  }
  Simulator<double> sim(lib_options("double_pendulum"));
  std::vector<double> states, gx0, gU;
  library_grads(sim, B, T, x0, U, &states, &gx0, &gU);
  for (const auto& [k, g] : gx) {
    SCOPED_TRACE("--checkpoint " + k);
    expect_close(st[k], states, 1e-12, "states");
    expect_close(g, gx0, 1e-12, "grad_state");
    expect_close(gu[k], gU, 1e-12, "grad_actions");
  }
}

// central differences of 1/2 sum_b |x_T|^2 through the library's rollout, entry by entry, and
// one directional derivative through the program itself
TEST_F(CliRollout, DoublePendulumGradMatchesFiniteDifferences) {
  constexpr std::int64_t B = 2, T = 4;
  constexpr int nx = 4, nu = 2;
  const auto x0 = uniform(B * nx, -0.8, 0.8, 221), U = uniform(B * T * nu, -1, 1, 222);
  const std::string xs = save<double>("x0.npy", x0, {B, nx});
  const std::string Us = save<double>("U.npy", U, {B, T, nu});
  const std::string out = path("out");
  const CliRun r = cli("rollout --env double_pendulum --backend cpu --state " + quote(xs) +
                       " --actions " + quote(Us) + " --out " + quote(out) + " --grad");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto gx0 = output(out + "/grad_state.npy", npy::DType::f64, {B, nx});
  const auto gU = output(out + "/grad_actions.npy", npy::DType::f64, {B, T, nu});
  ASSERT_EQ(gx0.size(), x0.size());
  ASSERT_EQ(gU.size(), U.size());

  Simulator<double> sim(lib_options("double_pendulum"));
  auto loss = [&](const std::vector<double>& x, const std::vector<double>& u) {
    std::vector<double> states(B * (T + 1) * nx);
    sim.rollout(B, T, x.data(), u.data(), states.data());
    return final_loss(states, B, T, nx);
  };
  const double h = 1e-6;
  for (std::size_t i = 0; i < x0.size(); ++i) {
    auto xp = x0, xm = x0;
    xp[i] += h;
    xm[i] -= h;
    const double fd = (loss(xp, U) - loss(xm, U)) / (2 * h);
    EXPECT_NEAR(gx0[i], fd, 1e-6 * std::max(1.0, std::abs(fd))) << "x0 entry " << i;
  }
  for (std::size_t i = 0; i < U.size(); ++i) {
    auto up = U, um = U;
    up[i] += h;
    um[i] -= h;
    const double fd = (loss(x0, up) - loss(x0, um)) / (2 * h);
    EXPECT_NEAR(gU[i], fd, 1e-6 * std::max(1.0, std::abs(fd))) << "U entry " << i;
  }

  // <grad, v> against (L(p + h v) - L(p - h v)) / 2h with L from the program's states.npy
  const auto vx = uniform(x0.size(), -1, 1, 223), vu = uniform(U.size(), -1, 1, 224);
  double directional = 0;
  for (std::size_t i = 0; i < x0.size(); ++i) directional += gx0[i] * vx[i];
  for (std::size_t i = 0; i < U.size(); ++i) directional += gU[i] * vu[i];
  double L[2];
  for (int s = 0; s < 2; ++s) {
    const double sign = s == 0 ? 1 : -1;
    auto xp = x0, up = U;
    for (std::size_t i = 0; i < xp.size(); ++i) xp[i] += sign * h * vx[i];
    for (std::size_t i = 0; i < up.size(); ++i) up[i] += sign * h * vu[i];
    const std::string xps = save<double>("xp" + std::to_string(s) + ".npy", xp, {B, nx});
    const std::string ups = save<double>("up" + std::to_string(s) + ".npy", up, {B, T, nu});
    const std::string outp = path("outp" + std::to_string(s));
    const CliRun rp = cli("rollout --env double_pendulum --backend cpu --state " + quote(xps) +
                          " --actions " + quote(ups) + " --out " + quote(outp));
    ASSERT_EQ(rp.status, 0) << rp.err;
    L[s] = final_loss(output(outp + "/states.npy", npy::DType::f64, {B, T + 1, nx}), B, T, nx);
  }
  const double fd = (L[0] - L[1]) / (2 * h);
  EXPECT_NEAR(directional, fd, 1e-6 * std::max(1.0, std::abs(fd)));
}

TEST_F(CliRollout, OptionsAndDtypesMatchTheLibrary) {
  constexpr std::int64_t B = 2, T = 5;
  const auto x0 = uniform(B * 4, -0.5, 0.5, 231), U = uniform(B * T * 2, -1, 1, 232);
  const std::string xs = save<float>("x0_f32.npy", x0, {B, 4});  // float32 files
  const std::string Us = save<float>("U_f32.npy", U, {B, T, 2});
  std::vector<double> x32(x0.begin(), x0.end()), U32(U.begin(), U.end());
  for (double& v : x32) v = static_cast<float>(v);
  for (double& v : U32) v = static_cast<float>(v);

  // float64 computation from float32 files, with options
  const std::string out = path("out");
  CliRun r = cli("rollout --env double_pendulum --backend cpu --state " + quote(xs) +
                 " --actions " + quote(Us) + " --out " + quote(out) +
                 " --grad --dt 0.05 --integrator rk4 --param m2=2 --param g=3.7 --checkpoint 2");
  ASSERT_EQ(r.status, 0) << r.err;
  Simulator<double> sim(
      lib_options("double_pendulum", {{"m2", 2}, {"g", 3.7}}, Integrator::rk4, 0.05));
  std::vector<double> states, gx0, gU;
  library_grads(sim, B, T, x32, U32, &states, &gx0, &gU);
  expect_close(output(out + "/states.npy", npy::DType::f64, {B, T + 1, 4}), states, 1e-12,
               "states");
  expect_close(output(out + "/grad_state.npy", npy::DType::f64, {B, 4}), gx0, 1e-12, "gx0");
  expect_close(output(out + "/grad_actions.npy", npy::DType::f64, {B, T, 2}), gU, 1e-12, "gU");

  // float32 computation writes float32 files
  const std::string out32 = path("out32");
  r = cli("rollout --env double_pendulum --backend cpu --dtype f32 --state " + quote(xs) +
          " --actions " + quote(Us) + " --out " + quote(out32) + " --grad");
  ASSERT_EQ(r.status, 0) << r.err;
  Simulator<double> sim_default(lib_options("double_pendulum"));
  library_grads(sim_default, B, T, x32, U32, &states, &gx0, &gU);
  expect_close(output(out32 + "/states.npy", npy::DType::f32, {B, T + 1, 4}), states, 1e-5,
               "states f32");
  expect_close(output(out32 + "/grad_state.npy", npy::DType::f32, {B, 4}), gx0, 1e-4, "gx0 f32");
  expect_close(output(out32 + "/grad_actions.npy", npy::DType::f32, {B, T, 2}), gU, 1e-4, "gU f32");
}

TEST_F(CliRollout, ZeroStepsReturnsTheInitialState) {
  constexpr std::int64_t B = 2;
  const auto x0 = uniform(B * 4, -1, 1, 241);
  const std::string xs = save<double>("x0.npy", x0, {B, 4});
  const std::string Us = save<double>("U.npy", {}, {B, 0, 2});
  for (const std::string k : {"-1", "0"}) {
    const std::string out = path("out" + k);
    const CliRun r =
        cli("rollout --env double_pendulum --backend cpu --state " + quote(xs) + " --actions " +
            quote(Us) + " --out " + quote(out) + " --grad --checkpoint " + k);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(output(out + "/states.npy", npy::DType::f64, {B, 1, 4}), x0);
    EXPECT_EQ(output(out + "/grad_state.npy", npy::DType::f64, {B, 4}), x0);  // d/dx0 1/2|x0|^2
    EXPECT_TRUE(output(out + "/grad_actions.npy", npy::DType::f64, {B, 0, 2}).empty());
  }
}

TEST_F(CliInputErrors, RolloutBadInput) {
  const std::string x = save<double>("x.npy", uniform(12, -1, 1, 251), {3, 4});
  const std::string U = save<double>("U.npy", uniform(30, -1, 1, 252), {3, 5, 2});
  const std::string U_rank2 = save<double>("U_rank2.npy", uniform(6, -1, 1, 253), {3, 2});
  const std::string U_nu1 = save<double>("U_nu1.npy", uniform(15, -1, 1, 254), {3, 5, 1});
  const std::string U_b2 = save<double>("U_b2.npy", uniform(20, -1, 1, 255), {2, 5, 2});
  auto Unan = uniform(30, -1, 1, 256);
  Unan[(1 * 5 + 4) * 2 + 0] = std::nan("");
  const std::string U_nan = save<double>("U_nan.npy", Unan, {3, 5, 2});
  const std::string U_i8 =
      write_raw("U_i8.npy", npy_bytes(npy_dict("<i8", "(3, 5, 2)"), std::string(240, '\0')));
  const std::string x_fortran = write_raw(
      "x_fortran.npy",
      npy_bytes(npy_dict("<f8", "(3, 4)", true), raw_data<double>(uniform(12, -1, 1, 257))));
  const std::string missing = path("missing.npy");

  auto args = [&](const std::string& xs, const std::string& Us) {
    return "--env double_pendulum --backend cpu --state " + quote(xs) + " --actions " + quote(Us) +
           " --grad";
  };
  const std::string ok = args(x, U) + " ";
  check_all(
      "rollout",
      {
          {"rank 2 actions",
           args(x, U_rank2),
           {"--actions", U_rank2, "expected shape (B, T, nu=2)", "got (3, 2)"}},
          {"wrong nu", args(x, U_nu1), {"--actions", U_nu1, "(B, T, nu=2)", "got (3, 5, 1)"}},
          {"batch mismatch",
           args(x, U_b2),
           {"--actions", U_b2, "--state", x, "batch B = 2", "batch B = 3"}},
          {"NaN action", args(x, U_nan), {"--actions", U_nan, "[1, 4, 0]", "NaN"}},
          {"int64 actions", args(x, U_i8), {"--actions", U_i8, "'<i8'", "float32 or float64"}},
          {"Fortran state", args(x_fortran, U), {"--state", x_fortran, "Fortran"}},
          {"missing state", args(missing, U), {"--state", missing, "cannot open"}},
          {"state as actions", args(x, x), {"--actions", x, "(B, T, nu=2)", "got (3, 4)"}},
          {"negative checkpoint", ok + "--checkpoint -2", {"--checkpoint", "-2"}},
          {"checkpoint not a number", ok + "--checkpoint some", {"--checkpoint"}},
          {"unknown env",
           "--env acrobot --state " + quote(x) + " --actions " + quote(U),
           {"unknown environment 'acrobot'"}},
          {"zero mass", ok + "--param m1=0", {"'m1'", "> 0"}},
          {"malformed param", ok + "--param m1:2", {"--param 'm1:2'", "NAME=VALUE"}},
          {"dt zero", ok + "--dt 0", {"--dt"}},
          {"dt negative", ok + "--dt=-1", {"--dt"}},
          {"unknown integrator", ok + "--integrator leapfrog", {"--integrator", "'leapfrog'"}},
          {"unknown dtype", ok + "--dtype double", {"--dtype", "'double'"}},
          {"unknown backend",
           "--env double_pendulum --backend tpu --state " + quote(x) + " --actions " + quote(U),
           {"--backend", "'tpu'"}},
          {"backend given twice", ok + "--backend cuda", {"--backend"}},
          {"unknown option", ok + "--jacobian", {"--jacobian"}},
      });
}

// -------------------------------------------------------------------------------------------
// demo

using CliDemo = CliTest;

TEST_F(CliDemo, PrintsThroughputAndPassesItsChecks) {
  const CliRun r = cli("demo --batch 2000 --steps 2");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "throughput")) << r.out;
  EXPECT_TRUE(contains(r.out, "env-steps/s")) << r.out;
  EXPECT_TRUE(contains(r.out, "batch 2000")) << r.out;
  EXPECT_TRUE(contains(r.out, "all checks passed")) << r.out;
  EXPECT_FALSE(contains(r.out, "FAIL")) << r.out;
}

TEST_F(CliDemo, JsonIsOneObject) {
  const CliRun r = cli("demo --batch 2000 --steps 2 --json --dtype f64 --seed 7");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  nlohmann::json j;
  ASSERT_NO_THROW(j = nlohmann::json::parse(r.out)) << r.out;
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j.at("ok"), true);
  EXPECT_EQ(j.at("batch"), 2000);
  EXPECT_EQ(j.at("steps"), 2);
  EXPECT_EQ(j.at("dtype"), "float64");
  EXPECT_EQ(j.at("env"), "double_pendulum");
  ASSERT_EQ(j.at("rates").size(), 3u);
  for (const auto& rate : j["rates"]) {
    EXPECT_GT(rate.at("per_second").get<double>(), 0) << rate.dump();
    EXPECT_EQ(rate.at("count"), 4000);
  }
  ASSERT_FALSE(j.at("checks").empty());
  for (const auto& c : j["checks"]) EXPECT_EQ(c.at("ok"), true) << c.dump();
}

TEST_F(CliDemo, BadOptionsExitTwo) {
  for (const std::string args :
       {"--batch -5", "--steps 0", "--dtype f16", "--backend gpu", "--batch lots"}) {
    SCOPED_TRACE(args);
    const CliRun r = cli("demo " + args);
    EXPECT_EQ(r.status, 2) << r.out << r.err;
    EXPECT_FALSE(r.err.empty());
    EXPECT_FALSE(contains(r.out, "all checks passed"));
  }
}

}  // namespace
