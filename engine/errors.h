// PhyDream error types, shared by the library, the CLI and the tests.
#pragma once

#include <stdexcept>
#include <string>

namespace phydream {

/// Bad input from the caller: a malformed file, a wrong shape or dtype, an unknown environment,
/// option or parameter, an out-of-range value. The message names the file or option and what was
/// expected. The command-line program maps it to exit status 2.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A backend cannot serve the request: CUDA asked for but not built in or no device visible, or a
/// CUDA runtime call failed. The message says which and why.
class BackendError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace phydream
