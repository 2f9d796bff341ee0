// Fuzz target: the NPY reader (engine/npy.h) on arbitrary bytes, as float64 and as float32. The
// reader takes a path, so each input is written to a file of this process's own in TMPDIR,
// removed at exit.
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "engine/errors.h"
#include "engine/npy.h"

namespace {

// the file, removed when the process ends
struct Scratch {
  std::string path;
  Scratch() {
    const char* dir = std::getenv("TMPDIR");
    path = std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/phydream_fuzz_npy_" +
           std::to_string(static_cast<long>(getpid())) + ".npy";
  }
  ~Scratch() { std::remove(path.c_str()); }
};

const std::string& scratch_path() {
  static const Scratch scratch;
  return scratch.path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& path = scratch_path();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) throw std::runtime_error("fuzz_npy: cannot write " + path);
  const bool written = std::fwrite(data, 1, size, f) == size;
  std::fclose(f);
  if (!written) throw std::runtime_error("fuzz_npy: cannot write " + path);
  try {
    // an accepted array holds exactly the elements its shape names
    const phydream::npy::Array<double> a = phydream::npy::load<double>(path);
    // (a zero extent empties it whatever the others; otherwise the product must not overflow)
    std::int64_t count = 1;
    bool overflow = false;
    for (std::int64_t d : a.shape) overflow = __builtin_mul_overflow(count, d, &count) || overflow;
    const bool empty = std::find(a.shape.begin(), a.shape.end(), 0) != a.shape.end();
    if (empty ? a.size() != 0 : (overflow || a.size() != count)) std::abort();
  } catch (const phydream::InputError&) {
  }
  try {
    (void)phydream::npy::load<float>(path);
  } catch (const phydream::InputError&) {
  }
  return 0;
}
