// Reading and writing NumPy .npy files (format versions 1.0, 2.0 and 3.0).
//
// The reader is strict: it accepts C-ordered float32/float64 arrays only (little or big endian),
// and reports every other case -- not an NPY file, truncated header or data, Fortran order,
// another dtype, a malformed header dictionary -- as an InputError naming the file and what was
// expected. The writer never leaves a partial file: it writes to a temporary name in the same
// directory and renames it into place.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace phydream::npy {

/// Element types PhyDream reads and writes.
enum class DType { f32, f64 };

/// "float32" / "float64".
const char* dtype_name(DType dtype);

/// The parsed header of an .npy file.
struct Header {
  DType dtype = DType::f64;           // element type as stored in the file
  bool big_endian = false;            // '>' byte order in the descr
  bool fortran_order = false;         // always false for a header returned by read_header
  std::vector<std::int64_t> shape;    // () for a 0-d array
  std::uint64_t data_offset = 0;      // byte offset of the first element
};

/// A C-ordered array loaded into memory and converted to Scalar.
template <class Scalar>
struct Array {
  std::vector<std::int64_t> shape;    // as in the file
  std::vector<Scalar> data;           // row-major, product(shape) elements
  DType file_dtype = DType::f64;      // what the file stored, before conversion

  std::int64_t size() const { return static_cast<std::int64_t>(data.size()); }
  int ndim() const { return static_cast<int>(shape.size()); }
};

/// Parses and validates the header of `path`; throws InputError on any malformed input,
/// including Fortran order, an unsupported dtype and a data section shorter than the shape needs.
Header read_header(const std::string& path);

/// Loads `path` and converts its float32 or float64 elements to Scalar (float or double).
/// Throws InputError as read_header does.
template <class Scalar>
Array<Scalar> load(const std::string& path);

/// Writes a C-ordered array of `shape` (product(shape) elements at `data`) to `path` as
/// little-endian float32 (Scalar = float) or float64 (Scalar = double), format version 1.0.
/// Written to a temporary file in the same directory and renamed, so `path` is either the old
/// file or the complete new one. Throws std::runtime_error naming the path on I/O failure.
template <class Scalar>
void save(const std::string& path, const Scalar* data, const std::vector<std::int64_t>& shape);

/// "(2, 3, 4)" -- NumPy's notation, for messages.
std::string shape_string(const std::vector<std::int64_t>& shape);

}  // namespace phydream::npy
