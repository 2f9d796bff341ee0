// Fuzz target: the JSON model loader (engine/model_json.h) on arbitrary bytes, and every model
// it accepts stepped and differentiated (fuzz_common.h).
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/model_json.h"
#include "fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    phydream::fuzz::exercise(phydream::load_model_json_string(text, "fuzz.json"));
  } catch (const phydream::InputError&) {
  }
  return 0;
}
