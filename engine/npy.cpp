#include "engine/npy.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <stdexcept>
#include <type_traits>

#include "engine/errors.h"

namespace phydream::npy {

namespace {

// magic string and fixed prefix sizes of the npy format
constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicLen = 6;
constexpr std::size_t kAlign = 64;
constexpr std::size_t kMaxHeaderLen = 1u << 20;

// true when the host stores integers big-endian
bool host_is_big_endian() {
  const std::uint16_t probe = 1;
  unsigned char first = 0;
  std::memcpy(&first, &probe, 1);
  return first == 0;
}

std::size_t itemsize(DType dtype) { return dtype == DType::f32 ? 4 : 8; }

// reverses the bytes of each item in place
void swap_items(unsigned char* bytes, std::size_t count, std::size_t size) {
  for (std::size_t i = 0; i < count; ++i) std::reverse(bytes + i * size, bytes + (i + 1) * size);
}

// "'path': " prefix shared by every reader message
std::string where(const std::string& path) { return "'" + path + "': "; }

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw InputError(where(path) + what);
}

// clips long header text for inclusion in messages
std::string excerpt(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (out.size() >= 200) {
      out += "...";
      break;
    }
    out += (c == '\n') ? ' ' : c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// recursive-descent parser for the python dict literal in an npy header
class HeaderParser {
 public:
  HeaderParser(const std::string& text, const std::string& path) : s_(text), path_(path) {}

  Header parse() {
    Header h;
    bool have_descr = false, have_order = false, have_shape = false;
    std::string descr;
    bool descr_is_string = false;

    skip_ws();
    expect('{');
    skip_ws();
    // key: value pairs with an optional trailing comma
    while (!at('}')) {
      const std::string key = parse_string();
      skip_ws();
      expect(':');
      skip_ws();
      if (key == "descr") {
        if (have_descr) malformed("duplicate key 'descr'");
        have_descr = true;
        if (at('\'') || at('"')) {
          descr = parse_string();
          descr_is_string = true;
        } else {
          descr = skip_value();
        }
      } else if (key == "fortran_order") {
        if (have_order) malformed("duplicate key 'fortran_order'");
        have_order = true;
        h.fortran_order = parse_bool();
      } else if (key == "shape") {
        if (have_shape) malformed("duplicate key 'shape'");
        have_shape = true;
        h.shape = parse_shape();
      } else {
        malformed("unexpected key '" + key + "'");
      }
      skip_ws();
      if (at(',')) {
        ++pos_;
        skip_ws();
      } else if (!at('}')) {
        malformed("expected ',' or '}' after the value of '" + key + "'");
      }
    }
    ++pos_;
    // only whitespace may follow the dict
    skip_ws();
    if (pos_ != s_.size()) malformed("unexpected text after the closing '}'");
    if (!have_descr) malformed("missing key 'descr'");
    if (!have_order) malformed("missing key 'fortran_order'");
    if (!have_shape) malformed("missing key 'shape'");

    // descr must name a supported float type
    const bool ok = descr_is_string && descr.size() == 3 &&
                    (descr[0] == '<' || descr[0] == '>' || descr[0] == '=') && descr[1] == 'f' &&
                    (descr[2] == '4' || descr[2] == '8');
    if (!ok) {
      const std::string shown = descr_is_string ? "'" + descr + "'" : descr;
      fail(path_, "unsupported dtype " + shown +
                      "; expected float32 or float64 ('<f4', '<f8', '>f4' or '>f8')");
    }
    h.dtype = descr[2] == '4' ? DType::f32 : DType::f64;
    h.big_endian = descr[0] == '>' || (descr[0] == '=' && host_is_big_endian());
    return h;
  }

 private:
  [[noreturn]] void malformed(const std::string& what) const {
    fail(path_, "malformed NPY header (" + what + "): " + excerpt(s_));
  }

  bool at(char c) const { return pos_ < s_.size() && s_[pos_] == c; }

  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' ||
                                s_[pos_] == '\r')) {
      ++pos_;
    }
  }

  void expect(char c) {
    if (!at(c)) malformed(std::string("expected '") + c + "'");
    ++pos_;
  }

  // single- or double-quoted string with backslash escapes kept literally
  std::string parse_string() {
    if (!at('\'') && !at('"')) malformed("expected a quoted string");
    const char quote = s_[pos_++];
    std::string out;
    while (pos_ < s_.size() && s_[pos_] != quote) {
      if (s_[pos_] == '\\' && pos_ + 1 < s_.size()) out += s_[pos_++];
      out += s_[pos_++];
    }
    if (pos_ >= s_.size()) malformed("unterminated string");
    ++pos_;
    return out;
  }

  bool parse_bool() {
    if (s_.compare(pos_, 4, "True") == 0) {
      pos_ += 4;
      return true;
    }
    if (s_.compare(pos_, 5, "False") == 0) {
      pos_ += 5;
      return false;
    }
    malformed("'fortran_order' must be True or False");
  }

  // skips any non-string literal (list, tuple, ...) and returns its text
  std::string skip_value() {
    const std::size_t start = pos_;
    int depth = 0;
    while (pos_ < s_.size()) {
      const char c = s_[pos_];
      if (c == '\'' || c == '"') {
        parse_string();
        continue;
      }
      if (c == '(' || c == '[' || c == '{') {
        ++depth;
      } else if (c == ')' || c == ']' || c == '}') {
        if (depth == 0) break;
        --depth;
      } else if (c == ',' && depth == 0) {
        break;
      }
      ++pos_;
    }
    if (depth != 0) malformed("unbalanced brackets");
    std::string text = s_.substr(start, pos_ - start);
    while (!text.empty() && text.back() == ' ') text.pop_back();
    if (text.empty()) malformed("missing value for 'descr'");
    return text;
  }

  // tuple of non-negative integers: (), (5,), (2, 3), (2, 3,)
  std::vector<std::int64_t> parse_shape() {
    std::vector<std::int64_t> shape;
    expect('(');
    skip_ws();
    bool trailing_comma = false;
    while (!at(')')) {
      shape.push_back(parse_dim());
      skip_ws();
      trailing_comma = false;
      if (at(',')) {
        ++pos_;
        trailing_comma = true;
        skip_ws();
      } else if (!at(')')) {
        malformed("expected ',' or ')' in 'shape'");
      }
    }
    ++pos_;
    if (shape.size() == 1 && !trailing_comma) malformed("'shape' must be a tuple, e.g. (5,)");
    return shape;
  }

  std::int64_t parse_dim() {
    if (at('-')) fail(path_, "negative dimension in shape: " + excerpt(s_));
    if (pos_ >= s_.size() || s_[pos_] < '0' || s_[pos_] > '9') {
      malformed("expected an integer in 'shape'");
    }
    std::int64_t value = 0;
    const std::int64_t max = std::numeric_limits<std::int64_t>::max();
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
      const int digit = s_[pos_++] - '0';
      if (value > (max - digit) / 10) fail(path_, "dimension in shape overflows int64: " + excerpt(s_));
      value = value * 10 + digit;
    }
    // python 2 long suffix written by old numpy versions
    if (at('L')) ++pos_;
    return value;
  }

  const std::string& s_;
  const std::string& path_;
  std::size_t pos_ = 0;
};

// an opened npy file positioned just after its header
struct OpenFile {
  std::ifstream in;
  Header header;
  std::uint64_t count = 0;
};

// reads exactly n bytes or reports how many arrived
std::size_t read_some(std::ifstream& in, char* dst, std::size_t n) {
  in.read(dst, static_cast<std::streamsize>(n));
  return static_cast<std::size_t>(in.gcount());
}

void open_and_parse(const std::string& path, OpenFile& f) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail(path, "cannot open: is a directory");
  errno = 0;
  f.in.open(path, std::ios::binary);
  if (!f.in) {
    const int err = errno;
    std::string msg = "cannot open for reading";
    if (err != 0) msg += std::string(": ") + std::strerror(err);
    fail(path, msg);
  }

  // total size, to check the header and data lengths against
  f.in.seekg(0, std::ios::end);
  const std::streamoff end = f.in.tellg();
  f.in.seekg(0, std::ios::beg);
  if (end < 0 || !f.in) fail(path, "cannot determine the file size");
  const auto file_size = static_cast<std::uint64_t>(end);

  // magic string and version
  char prefix[12] = {};
  std::size_t got = read_some(f.in, prefix, 8);
  if (file_size == 0) fail(path, "not an NPY file (the file is empty)");
  if (std::memcmp(prefix, kMagic, std::min(got, kMagicLen)) != 0) {
    fail(path, "not an NPY file (missing the \\x93NUMPY magic string)");
  }
  if (got < 8) fail(path, "truncated NPY header (file is " + std::to_string(file_size) + " bytes)");
  const int major = static_cast<unsigned char>(prefix[6]);
  const int minor = static_cast<unsigned char>(prefix[7]);
  if (!((major == 1 || major == 2 || major == 3) && minor == 0)) {
    fail(path, "unsupported NPY format version " + std::to_string(major) + "." +
                   std::to_string(minor) + " (expected 1.0, 2.0 or 3.0)");
  }

  // header length: 2 bytes for 1.0, 4 bytes for 2.0 and 3.0, little-endian
  const std::size_t len_bytes = major == 1 ? 2 : 4;
  got = read_some(f.in, prefix + 8, len_bytes);
  if (got < len_bytes) {
    fail(path, "truncated NPY header (file is " + std::to_string(file_size) + " bytes)");
  }
  std::uint64_t header_len = 0;
  for (std::size_t i = 0; i < len_bytes; ++i) {
    header_len |= static_cast<std::uint64_t>(static_cast<unsigned char>(prefix[8 + i])) << (8 * i);
  }
  const std::uint64_t prefix_len = 8 + len_bytes;
  if (header_len > file_size - prefix_len) {
    fail(path, "truncated NPY header (header needs " + std::to_string(prefix_len + header_len) +
                   " bytes, file is " + std::to_string(file_size) + ")");
  }
  if (header_len > kMaxHeaderLen) {
    fail(path, "NPY header of " + std::to_string(header_len) + " bytes is implausibly large");
  }

  // header text, then the dict inside it
  std::string text(static_cast<std::size_t>(header_len), '\0');
  if (read_some(f.in, text.data(), text.size()) != text.size()) {
    fail(path, "truncated NPY header (read error)");
  }
  f.header = HeaderParser(text, path).parse();
  f.header.data_offset = prefix_len + header_len;
  if (f.header.fortran_order) {
    fail(path, "Fortran-ordered arrays are not supported; save a C-ordered copy, e.g. "
               "np.save(path, np.ascontiguousarray(a))");
  }

  // element count and data size, guarding against overflow
  const std::uint64_t isz = itemsize(f.header.dtype);
  const std::uint64_t limit = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) / isz;
  std::uint64_t count = 1;
  for (std::int64_t d : f.header.shape) {
    const auto ud = static_cast<std::uint64_t>(d);
    if (ud != 0 && count > limit / ud) {
      fail(path, "shape " + shape_string(f.header.shape) + " is too large (size overflows)");
    }
    count *= ud;
  }
  f.count = count;

  // data section must be exactly product(shape) * itemsize bytes
  const std::uint64_t expected = count * isz;
  const std::uint64_t actual = file_size - f.header.data_offset;
  if (actual != expected) {
    const std::string what = actual < expected ? "truncated data" : "unexpected trailing bytes";
    fail(path, what + ": shape " + shape_string(f.header.shape) + " of " +
                   dtype_name(f.header.dtype) + " needs " + std::to_string(expected) +
                   " data bytes, file has " + std::to_string(actual));
  }
}

// converts raw file items of type From to Scalar
template <class From, class Scalar>
void convert(const unsigned char* bytes, std::size_t n, Scalar* out) {
  for (std::size_t i = 0; i < n; ++i) {
    From v;
    std::memcpy(&v, bytes + i * sizeof(From), sizeof(From));
    out[i] = static_cast<Scalar>(v);
  }
}

// random suffix for temporary file names
std::string temp_suffix() {
  static std::atomic<unsigned> counter{0};
  std::random_device rd;
  std::ostringstream os;
  os << std::hex << rd() << '.' << counter.fetch_add(1);
  return os.str();
}

[[noreturn]] void write_fail(const std::string& path, const std::string& what) {
  throw std::runtime_error("cannot write '" + path + "': " + what);
}

// builds the version 1.0 (or 2.0 if too long) prefix and padded header
std::string build_header(const char* descr, const std::vector<std::int64_t>& shape) {
  std::string dict = std::string("{'descr': '") + descr +
                     "', 'fortran_order': False, 'shape': " + shape_string(shape) + ", }";
  for (int major : {1, 2}) {
    const std::size_t prefix_len = major == 1 ? 10 : 12;
    // pad with spaces so that prefix + header + '\n' is a multiple of 64
    const std::size_t unpadded = prefix_len + dict.size() + 1;
    const std::size_t pad = (kAlign - unpadded % kAlign) % kAlign;
    const std::size_t header_len = dict.size() + pad + 1;
    if (major == 1 && header_len > 0xFFFF) continue;
    std::string out(kMagic, kMagicLen);
    out += static_cast<char>(major);
    out += '\0';
    for (std::size_t i = 0; i < prefix_len - 8; ++i) {
      out += static_cast<char>((header_len >> (8 * i)) & 0xFF);
    }
    out += dict;
    out.append(pad, ' ');
    out += '\n';
    return out;
  }
  throw std::runtime_error("npy header too long");
}

}  // namespace

const char* dtype_name(DType dtype) { return dtype == DType::f32 ? "float32" : "float64"; }

std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string out = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(shape[i]);
  }
  if (shape.size() == 1) out += ',';
  out += ')';
  return out;
}

Header read_header(const std::string& path) {
  OpenFile f;
  open_and_parse(path, f);
  return f.header;
}

template <class Scalar>
Array<Scalar> load(const std::string& path) {
  static_assert(std::is_same_v<Scalar, float> || std::is_same_v<Scalar, double>,
                "npy::load supports float and double");
  OpenFile f;
  open_and_parse(path, f);
  Array<Scalar> arr;
  arr.shape = f.header.shape;
  arr.file_dtype = f.header.dtype;
  const auto n = static_cast<std::size_t>(f.count);
  arr.data.resize(n);
  const std::size_t isz = itemsize(f.header.dtype);
  const bool swap = f.header.big_endian != host_is_big_endian();
  const bool same_type = isz == sizeof(Scalar);

  auto read_exact = [&](char* dst, std::size_t bytes) {
    if (read_some(f.in, dst, bytes) != bytes) fail(path, "read error in the data section");
  };

  // matching native layout: read straight into the result
  if (same_type && !swap) {
    read_exact(reinterpret_cast<char*>(arr.data.data()), n * isz);
    return arr;
  }

  // otherwise convert chunk by chunk
  constexpr std::size_t kChunk = 1 << 16;
  std::vector<unsigned char> buf(std::min(n, kChunk) * isz);
  for (std::size_t done = 0; done < n;) {
    const std::size_t m = std::min(kChunk, n - done);
    read_exact(reinterpret_cast<char*>(buf.data()), m * isz);
    if (swap) swap_items(buf.data(), m, isz);
    if (f.header.dtype == DType::f32) {
      convert<float>(buf.data(), m, arr.data.data() + done);
    } else {
      convert<double>(buf.data(), m, arr.data.data() + done);
    }
    done += m;
  }
  return arr;
}

template <class Scalar>
void save(const std::string& path, const Scalar* data, const std::vector<std::int64_t>& shape) {
  static_assert(std::is_same_v<Scalar, float> || std::is_same_v<Scalar, double>,
                "npy::save supports float and double");
  // validate the shape before touching the file system
  std::uint64_t count = 1;
  const std::uint64_t limit =
      static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) / sizeof(Scalar);
  for (std::int64_t d : shape) {
    if (d < 0) {
      throw InputError("cannot write '" + path + "': negative dimension in shape " +
                       shape_string(shape));
    }
    const auto ud = static_cast<std::uint64_t>(d);
    if (ud != 0 && count > limit / ud) {
      throw InputError("cannot write '" + path + "': shape " + shape_string(shape) + " is too large");
    }
    count *= ud;
  }
  if (count > 0 && data == nullptr) {
    throw InputError("cannot write '" + path + "': null data for shape " + shape_string(shape));
  }

  const std::string header = build_header(std::is_same_v<Scalar, float> ? "<f4" : "<f8", shape);

  // exclusive create of a fresh temporary name next to the target
  std::string tmp;
  std::FILE* fp = nullptr;
  int err = 0;
  for (int attempt = 0; attempt < 16 && fp == nullptr; ++attempt) {
    tmp = path + ".tmp." + temp_suffix();
    errno = 0;
    fp = std::fopen(tmp.c_str(), "wbx");
    err = errno;
    if (fp == nullptr && err != EEXIST) break;
  }
  if (fp == nullptr) {
    write_fail(path, std::string("cannot create temporary file '") + tmp + "'" +
                         (err != 0 ? std::string(": ") + std::strerror(err) : std::string()));
  }

  // write header and little-endian data, then close and rename
  bool ok = std::fwrite(header.data(), 1, header.size(), fp) == header.size();
  const auto n = static_cast<std::size_t>(count);
  if (ok && n > 0) {
    if (!host_is_big_endian()) {
      ok = std::fwrite(data, sizeof(Scalar), n, fp) == n;
    } else {
      constexpr std::size_t kChunk = 1 << 16;
      std::vector<unsigned char> buf(std::min(n, kChunk) * sizeof(Scalar));
      for (std::size_t done = 0; ok && done < n;) {
        const std::size_t m = std::min(kChunk, n - done);
        std::memcpy(buf.data(), data + done, m * sizeof(Scalar));
        swap_items(buf.data(), m, sizeof(Scalar));
        ok = std::fwrite(buf.data(), sizeof(Scalar), m, fp) == m;
        done += m;
      }
    }
  }
  if (!ok) err = errno;
  if (std::fclose(fp) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (ok && std::rename(tmp.c_str(), path.c_str()) != 0) {
    ok = false;
    err = errno;
  }
  if (!ok) {
    std::remove(tmp.c_str());
    write_fail(path, err != 0 ? std::strerror(err) : "I/O error");
  }
}

template Array<float> load<float>(const std::string& path);
template Array<double> load<double>(const std::string& path);
template void save<float>(const std::string& path, const float* data,
                          const std::vector<std::int64_t>& shape);
template void save<double>(const std::string& path, const double* data,
                           const std::vector<std::int64_t>& shape);

}  // namespace phydream::npy
