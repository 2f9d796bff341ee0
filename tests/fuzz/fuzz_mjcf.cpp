// Fuzz target: the MJCF loader (engine/mjcf.h) on arbitrary bytes, and every model it accepts
// stepped and differentiated (fuzz_common.h).
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/mjcf.h"
#include "fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    phydream::fuzz::exercise(phydream::load_mjcf_string(text, "fuzz.xml"));
  } catch (const phydream::InputError&) {
  }
  return 0;
}
