#include "apps/io.h"

#include <cmath>
#include <filesystem>
#include <system_error>

#include "engine/errors.h"

namespace phydream::cli {

namespace {

std::string expected_string(const std::vector<Dim>& expected) {
  std::string s = "(";
  for (std::size_t i = 0; i < expected.size(); ++i) {
    if (i) s += ", ";
    s += expected[i].size < 0 ? expected[i].name
                              : expected[i].name + "=" + std::to_string(expected[i].size);
  }
  return s + (expected.size() == 1 ? ",)" : ")");
}

// "[2, 1]" for flat index 5 of shape (3, 2)
std::string index_string(std::int64_t flat, const std::vector<std::int64_t>& shape) {
  std::vector<std::int64_t> idx(shape.size());
  for (std::size_t k = shape.size(); k-- > 0;) {
    idx[k] = flat % shape[k];
    flat /= shape[k];
  }
  std::string s = "[";
  for (std::size_t k = 0; k < idx.size(); ++k) s += (k ? ", " : "") + std::to_string(idx[k]);
  return s + "]";
}

}  // namespace

template <class S>
npy::Array<S> load_checked(const std::string& option, const std::string& path,
                           const std::vector<Dim>& expected) {
  npy::Array<S> a;
  try {
    a = npy::load<S>(path);
  } catch (const InputError& e) {
    throw InputError(option + " " + e.what());
  }
  const std::string where = option + " '" + path + "'";
  bool ok = a.ndim() == static_cast<int>(expected.size());
  for (std::size_t k = 0; ok && k < expected.size(); ++k) {
    ok = expected[k].size < 0 || expected[k].size == a.shape[k];
  }
  if (!ok) {
    throw InputError(where + ": expected shape " + expected_string(expected) + ", got " +
                     npy::shape_string(a.shape));
  }
  for (std::int64_t i = 0; i < a.size(); ++i) {
    const S v = a.data[static_cast<std::size_t>(i)];
    if (!std::isfinite(v)) {
      // a finite float64 beyond the float32 range becomes infinite when read for --dtype f32
      const bool narrowed = sizeof(S) == sizeof(float) && a.file_dtype == npy::DType::f64;
      throw InputError(where + ": element " + index_string(i, a.shape) + " is " +
                       (std::isnan(v) ? "NaN" : narrowed ? "infinite or beyond the float32 range"
                                                         : "infinite") +
                       "; inputs must be finite" +
                       (narrowed && !std::isnan(v) ? " (use --dtype f64 for large values)" : ""));
    }
  }
  return a;
}

template <class S, class R>
void check_same_dim(const std::string& option, const std::string& path, const npy::Array<S>& a,
                    int dim, const std::string& ref_option, const std::string& ref_path,
                    const npy::Array<R>& ref, int dim_ref, const std::string& dim_name) {
  if (a.shape[dim] != ref.shape[dim_ref]) {
    throw InputError(option + " '" + path + "' has " + dim_name + " = " +
                     std::to_string(a.shape[dim]) + " but " + ref_option + " '" + ref_path +
                     "' has " + dim_name + " = " + std::to_string(ref.shape[dim_ref]) +
                     "; they must agree");
  }
}

OutputDir::OutputDir(std::string dir) : dir_(std::move(dir)) {
  std::error_code ec;
  if (std::filesystem::exists(dir_, ec) && !std::filesystem::is_directory(dir_, ec)) {
    throw InputError("--out '" + dir_ + "': exists and is not a directory");
  }
}

template <class S>
void OutputDir::add(const std::string& name, const std::vector<S>& data,
                    const std::vector<std::int64_t>& shape) {
  Entry e;
  e.name = name;
  e.shape = shape;
  if constexpr (sizeof(S) == sizeof(float)) {
    e.f32 = data;
    e.is_f32 = true;
  } else {
    e.f64 = data;
  }
  entries_.push_back(std::move(e));
}

void OutputDir::write() const {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec || !std::filesystem::is_directory(dir_)) {
    throw std::runtime_error("--out '" + dir_ + "': cannot create directory" +
                             (ec ? ": " + ec.message() : std::string()));
  }
  for (const Entry& e : entries_) {
    const std::string path = (std::filesystem::path(dir_) / e.name).string();
    if (e.is_f32) {
      npy::save(path, e.f32.data(), e.shape);
    } else {
      npy::save(path, e.f64.data(), e.shape);
    }
  }
}

std::pair<std::string, double> parse_param(const std::string& arg) {
  const auto eq = arg.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw InputError("--param '" + arg + "': expected NAME=VALUE, e.g. --param m1=2.0");
  }
  const std::string name = arg.substr(0, eq), text = arg.substr(eq + 1);
  double value = 0;
  std::size_t used = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (text.empty() || used != text.size() || !std::isfinite(value)) {
    throw InputError("--param '" + arg + "': value '" + text + "' is not a finite number");
  }
  return {name, value};
}

template npy::Array<float> load_checked(const std::string&, const std::string&,
                                        const std::vector<Dim>&);
template npy::Array<double> load_checked(const std::string&, const std::string&,
                                         const std::vector<Dim>&);
template void check_same_dim(const std::string&, const std::string&, const npy::Array<float>&,
                             int, const std::string&, const std::string&,
                             const npy::Array<float>&, int, const std::string&);
template void check_same_dim(const std::string&, const std::string&, const npy::Array<double>&,
                             int, const std::string&, const std::string&,
                             const npy::Array<double>&, int, const std::string&);
template void OutputDir::add(const std::string&, const std::vector<float>&,
                             const std::vector<std::int64_t>&);
template void OutputDir::add(const std::string&, const std::vector<double>&,
                             const std::vector<std::int64_t>&);

}  // namespace phydream::cli
