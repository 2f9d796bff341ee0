// Command-line input and output: NPY inputs checked against the shapes a command expects, and
// an output directory written only once everything has been computed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/npy.h"

namespace phydream::cli {

/// One expected dimension: a fixed size, or a named size taken from the data ("B", "T").
struct Dim {
  std::int64_t size = -1;  // -1: any, read from the file
  std::string name;        // "B", "T", or the size as text
  static Dim any(const std::string& name) { return Dim{-1, name}; }
  static Dim fixed(std::int64_t n, const std::string& name) { return Dim{n, name}; }
};

/// Loads the NPY file given to `option` and checks its rank, fixed dimensions and that every
/// element is finite; throws InputError naming the option, the file and what was expected,
/// e.g. "--state 'x.npy': expected shape (B, nx=4), got (3, 5)".
template <class S>
npy::Array<S> load_checked(const std::string& option, const std::string& path,
                           const std::vector<Dim>& expected);

/// Throws InputError unless dimension `dim` of `a` equals dimension `dim_ref` of `ref`.
template <class S, class R>
void check_same_dim(const std::string& option, const std::string& path, const npy::Array<S>& a,
                    int dim, const std::string& ref_option, const std::string& ref_path,
                    const npy::Array<R>& ref, int dim_ref, const std::string& dim_name);

/// Files to write into one output directory, all at the end.
class OutputDir {
 public:
  /// Throws InputError if `dir` exists and is not a directory: refused before any work is done.
  explicit OutputDir(std::string dir);
  /// Queues `name` with its data (copied) and shape.
  template <class S>
  void add(const std::string& name, const std::vector<S>& data,
           const std::vector<std::int64_t>& shape);
  /// Creates the directory and writes every queued file (each atomically). Nothing is created
  /// before this call.
  void write() const;

 private:
  struct Entry {
    std::string name;
    std::vector<std::int64_t> shape;
    std::vector<float> f32;
    std::vector<double> f64;
    bool is_f32 = false;
  };
  std::string dir_;
  std::vector<Entry> entries_;
};

/// Parses "k=v" with a finite number v; throws InputError naming the argument.
std::pair<std::string, double> parse_param(const std::string& arg);

}  // namespace phydream::cli
