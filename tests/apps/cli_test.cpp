// The phydream program end to end (the binary built beside this test).
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace {

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

TEST(Cli, EnvsListsTheEnvironments) {
  std::string out;
  ASSERT_EQ(run_cli("envs --json", &out), 0) << out;
  EXPECT_NE(out.find("\"double_pendulum\""), std::string::npos) << out;
}

}  // namespace
