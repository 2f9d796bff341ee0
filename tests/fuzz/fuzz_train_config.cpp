// Fuzz target: the training config parser (training/config.h) on arbitrary JSON text. A config
// it accepts must survive a round trip through to_json (the form checkpoints and summaries store)
// unchanged, and its simulator options must build a simulator or throw InputError. Relative
// env_model paths resolve against assets/experiments/, as the seeds' do.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/errors.h"
#include "engine/simulator.h"
#include "training/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using nlohmann::json;
  using phydream::training::parse_train_config;
  using phydream::training::to_json;
  json j;
  try {
    j = json::parse(reinterpret_cast<const char*>(data), reinterpret_cast<const char*>(data) + size);
  } catch (const json::exception&) {
    return 0;  // not JSON: load_train_config's InputError (tests/apps/train_cli_test.cpp)
  }
  const std::string dir = std::string(PHYDREAM_SOURCE_DIR) + "/assets/experiments";
  try {
    const phydream::training::TrainConfig c = parse_train_config(j, "fuzz.json", dir);
    const json stored = to_json(c);
    if (to_json(parse_train_config(stored, "stored.json", dir)) != stored) std::abort();
    phydream::Simulator<double> sim(c.simulator_options(phydream::Backend::cpu, 1));
  } catch (const phydream::InputError&) {
  }
  return 0;
}
