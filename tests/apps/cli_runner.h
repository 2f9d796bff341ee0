// Shared by the CLI tests (cli_test.cpp and, through train_cli_fixture.h, the training CLI
// tests): running the real phydream binary (PHYDREAM_CLI) with its streams kept apart, in a fresh
// temporary directory per test, and small text and random-input helpers.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

namespace {

// one run of the program with its streams kept apart
struct CliRun {
  int status = -1;
  std::string out, err;
};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

std::string quote(const std::string& s) { return "'" + s + "'"; }

bool contains(const std::string& text, const std::string& phrase) {
  return text.find(phrase) != std::string::npos;
}

// uniform values in [lo, hi], reproducible per seed
std::vector<double> uniform(std::size_t n, double lo, double hi, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(n);
  for (double& e : v) e = dist(rng);
  return v;
}

// a fresh temporary directory per test (named after `prefix`) holding the inputs and outputs,
// and the program run in it
class CliDirTest : public ::testing::Test {
 protected:
  explicit CliDirTest(const char* prefix) : prefix_(prefix) {}
  void SetUp() override {
    std::string templ = (std::filesystem::temp_directory_path() / (prefix_ + "_XXXXXX")).string();
    ASSERT_NE(mkdtemp(templ.data()), nullptr) << std::strerror(errno);
    dir_ = templ;
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  std::string path(const std::string& name) const { return (std::filesystem::path(dir_) / name).string(); }

  // the program with `args`: stdout, stderr (through a file in the directory) and exit status
  CliRun cli(const std::string& args) const {
    const std::string err_path = path("stderr.txt");
    const std::string cmd = std::string(PHYDREAM_CLI) + " " + args + " 2> " + quote(err_path);
    CliRun r;
    FILE* pipe = popen(cmd.c_str(), "r");
    if (pipe == nullptr) return r;
    char buf[4096];
    while (std::fgets(buf, sizeof buf, pipe) != nullptr) r.out += buf;
    const int status = pclose(pipe);
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.err = read_text(err_path);
    std::filesystem::remove(err_path);
    return r;
  }

  // status 2, every phrase on stderr, nothing on stdout and no output directory
  static void expect_input_error(const CliRun& r, const std::vector<std::string>& phrases,
                                 const std::string& out_dir) {
    EXPECT_EQ(r.status, 2) << "stderr:\n" << r.err;
    for (const std::string& p : phrases) {
      EXPECT_TRUE(contains(r.err, p)) << "expected '" << p << "' on stderr:\n" << r.err;
    }
    EXPECT_TRUE(r.out.empty()) << "stdout:\n" << r.out;
    EXPECT_FALSE(std::filesystem::exists(out_dir)) << out_dir << " was created";
  }

  std::string dir_;

 private:
  std::string prefix_;
};

}  // namespace
