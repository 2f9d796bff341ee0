#include "engine/npy.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "engine/errors.h"

namespace fs = std::filesystem;
using phydream::InputError;
namespace npy = phydream::npy;

namespace {

// raw npy bytes: magic, version, little-endian header length, header text, data
std::string make_npy(int major, const std::string& header, const std::string& data = "") {
  std::string out("\x93NUMPY", 6);
  out += static_cast<char>(major);
  out += '\0';
  const std::size_t len_bytes = major == 1 ? 2 : 4;
  for (std::size_t i = 0; i < len_bytes; ++i) {
    out += static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  }
  return out + header + data;
}

// little-endian bytes of float values
std::string le_f4(const std::vector<float>& values) {
  std::string out;
  for (float v : values) {
    std::uint32_t bits;
    std::memcpy(&bits, &v, 4);
    for (int i = 0; i < 4; ++i) out += static_cast<char>((bits >> (8 * i)) & 0xFF);
  }
  return out;
}

std::string le_f8(const std::vector<double>& values) {
  std::string out;
  for (double v : values) {
    std::uint64_t bits;
    std::memcpy(&bits, &v, 8);
    for (int i = 0; i < 8; ++i) out += static_cast<char>((bits >> (8 * i)) & 0xFF);
  }
  return out;
}

// big-endian bytes, built independently of the host byte order
std::string be_f4(const std::vector<float>& values) {
  std::string out;
  for (float v : values) {
    std::uint32_t bits;
    std::memcpy(&bits, &v, 4);
    for (int i = 3; i >= 0; --i) out += static_cast<char>((bits >> (8 * i)) & 0xFF);
  }
  return out;
}

std::string be_f8(const std::vector<double>& values) {
  std::string out;
  for (double v : values) {
    std::uint64_t bits;
    std::memcpy(&bits, &v, 8);
    for (int i = 7; i >= 0; --i) out += static_cast<char>((bits >> (8 * i)) & 0xFF);
  }
  return out;
}

class NpyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    dir_ = fs::temp_directory_path() /
           ("phydream_npy_test_" + std::to_string(rd()) + "_" + std::to_string(rd()));
    fs::create_directories(dir_);
  }

  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  std::string write(const std::string& name, const std::string& bytes) const {
    const std::string p = path(name);
    std::ofstream out(p, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return p;
  }

  static std::string read(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  // names of all entries in the temp directory
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename().string());
    return names;
  }

  // expects fn to throw InputError whose message holds the path and every phrase
  static void expect_input_error(const std::function<void()>& fn, const std::string& p,
                                 const std::vector<std::string>& phrases) {
    try {
      fn();
      ADD_FAILURE() << "expected InputError for " << p;
    } catch (const InputError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(p), std::string::npos) << "path missing from: " << msg;
      for (const auto& phrase : phrases) {
        EXPECT_NE(msg.find(phrase), std::string::npos) << "'" << phrase << "' missing from: " << msg;
      }
    } catch (const std::exception& e) {
      ADD_FAILURE() << "expected InputError, got another exception: " << e.what();
    }
  }

  // checks both read_header and load<double> reject the file
  static void expect_rejected(const std::string& p, const std::vector<std::string>& phrases) {
    expect_input_error([&] { npy::read_header(p); }, p, phrases);
    expect_input_error([&] { npy::load<double>(p); }, p, phrases);
    expect_input_error([&] { npy::load<float>(p); }, p, phrases);
  }

  fs::path dir_;
};

template <class T>
class NpyRoundTrip : public NpyTest {};

using Scalars = ::testing::Types<float, double>;
TYPED_TEST_SUITE(NpyRoundTrip, Scalars);

TEST(NpyStrings, ShapeString) {
  EXPECT_EQ(npy::shape_string({2, 3}), "(2, 3)");
  EXPECT_EQ(npy::shape_string({5}), "(5,)");
  EXPECT_EQ(npy::shape_string({}), "()");
  EXPECT_EQ(npy::shape_string({2, 3, 4}), "(2, 3, 4)");
  EXPECT_EQ(npy::shape_string({0}), "(0,)");
}

TEST(NpyStrings, DtypeName) {
  EXPECT_STREQ(npy::dtype_name(npy::DType::f32), "float32");
  EXPECT_STREQ(npy::dtype_name(npy::DType::f64), "float64");
}

TYPED_TEST(NpyRoundTrip, AllRanks) {
  using T = TypeParam;
  const npy::DType expected_dtype = sizeof(T) == 4 ? npy::DType::f32 : npy::DType::f64;
  const std::vector<std::vector<std::int64_t>> shapes = {
      {}, {1}, {7}, {2, 3}, {2, 3, 4}, {0}, {3, 0}, {2, 0, 5}, {1, 1, 1, 1}};
  int index = 0;
  for (const auto& shape : shapes) {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    std::vector<T> data(static_cast<std::size_t>(n));
    for (std::size_t i = 0; i < data.size(); ++i) {
      data[i] = static_cast<T>(0.25 * static_cast<double>(i) - 1.5);
    }
    const std::string p = this->path("rt" + std::to_string(index++) + ".npy");
    npy::save<T>(p, data.data(), shape);

    const npy::Header h = npy::read_header(p);
    EXPECT_EQ(h.shape, shape);
    EXPECT_EQ(h.dtype, expected_dtype);
    EXPECT_FALSE(h.big_endian);
    EXPECT_FALSE(h.fortran_order);
    EXPECT_EQ(h.data_offset % 64, 0u);
    EXPECT_EQ(fs::file_size(p), h.data_offset + data.size() * sizeof(T));

    const npy::Array<T> a = npy::load<T>(p);
    EXPECT_EQ(a.shape, shape) << npy::shape_string(shape);
    EXPECT_EQ(a.ndim(), static_cast<int>(shape.size()));
    EXPECT_EQ(a.size(), n);
    EXPECT_EQ(a.file_dtype, expected_dtype);
    EXPECT_EQ(a.data, data) << npy::shape_string(shape);
  }
}

TYPED_TEST(NpyRoundTrip, ExactValuesIncludingSpecials) {
  using T = TypeParam;
  const std::vector<T> data = {T(0), T(-0.0), std::numeric_limits<T>::max(),
                               std::numeric_limits<T>::lowest(), std::numeric_limits<T>::min(),
                               std::numeric_limits<T>::denorm_min(),
                               std::numeric_limits<T>::infinity(), T(1) / T(3)};
  const std::string p = this->path("specials.npy");
  npy::save<T>(p, data.data(), {static_cast<std::int64_t>(data.size())});
  const auto a = npy::load<T>(p);
  ASSERT_EQ(a.data.size(), data.size());
  EXPECT_EQ(std::memcmp(a.data.data(), data.data(), data.size() * sizeof(T)), 0);

  // nan survives as nan
  const T nan = std::numeric_limits<T>::quiet_NaN();
  npy::save<T>(p, &nan, {});
  const auto b = npy::load<T>(p);
  ASSERT_EQ(b.data.size(), 1u);
  EXPECT_TRUE(b.data[0] != b.data[0]);
}

TEST_F(NpyTest, LoadFloat32AsDouble) {
  const std::vector<float> data = {1.5f, -2.25f, 0.1f, 3e30f, -0.0f, 7.0f};
  const std::string p = path("f32.npy");
  npy::save<float>(p, data.data(), {2, 3});
  const auto a = npy::load<double>(p);
  EXPECT_EQ(a.file_dtype, npy::DType::f32);
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{2, 3}));
  ASSERT_EQ(a.data.size(), data.size());
  for (std::size_t i = 0; i < data.size(); ++i) EXPECT_EQ(a.data[i], static_cast<double>(data[i]));
}

TEST_F(NpyTest, LoadFloat64AsFloat) {
  const std::vector<double> data = {1.5, -2.25, 0.1, 1e-3, 123456.789};
  const std::string p = path("f64.npy");
  npy::save<double>(p, data.data(), {5});
  const auto a = npy::load<float>(p);
  EXPECT_EQ(a.file_dtype, npy::DType::f64);
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{5}));
  ASSERT_EQ(a.data.size(), data.size());
  for (std::size_t i = 0; i < data.size(); ++i) EXPECT_EQ(a.data[i], static_cast<float>(data[i]));
}

TEST_F(NpyTest, LargeArrayConvertsAcrossChunks) {
  // more elements than one conversion chunk
  std::vector<float> data(200003);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(i) * 0.5f;
  const std::string p = path("large.npy");
  npy::save<float>(p, data.data(), {static_cast<std::int64_t>(data.size())});
  const auto a = npy::load<double>(p);
  ASSERT_EQ(a.data.size(), data.size());
  for (std::size_t i = 0; i < data.size(); i += 997) {
    EXPECT_EQ(a.data[i], static_cast<double>(data[i]));
  }
  EXPECT_EQ(a.data.back(), static_cast<double>(data.back()));
}

TEST_F(NpyTest, BigEndianFloat64) {
  const std::vector<double> values = {1.0, -2.5, 3.14159, 1e300, -1e-300, 0.0};
  const std::string p = write(
      "be8.npy", make_npy(1, "{'descr': '>f8', 'fortran_order': False, 'shape': (3, 2), }\n",
                          be_f8(values)));
  const npy::Header h = npy::read_header(p);
  EXPECT_TRUE(h.big_endian);
  EXPECT_EQ(h.dtype, npy::DType::f64);
  const auto a = npy::load<double>(p);
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{3, 2}));
  EXPECT_EQ(a.data, values);
  const auto f = npy::load<float>(p);
  for (std::size_t i = 0; i < values.size(); ++i) EXPECT_EQ(f.data[i], static_cast<float>(values[i]));
}

TEST_F(NpyTest, BigEndianFloat32) {
  const std::vector<float> values = {1.0f, -2.5f, 0.1f, 65504.0f};
  const std::string p = write(
      "be4.npy",
      make_npy(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }\n", be_f4(values)));
  const npy::Header h = npy::read_header(p);
  EXPECT_TRUE(h.big_endian);
  EXPECT_EQ(h.dtype, npy::DType::f32);
  EXPECT_EQ(npy::load<float>(p).data, values);
  const auto d = npy::load<double>(p);
  for (std::size_t i = 0; i < values.size(); ++i) EXPECT_EQ(d.data[i], static_cast<double>(values[i]));
}

TEST_F(NpyTest, NativeByteOrderDescr) {
  const std::vector<double> values = {4.0, 5.0};
  const std::string p = write(
      "native.npy",
      make_npy(1, "{'descr': '=f8', 'fortran_order': False, 'shape': (2,), }\n", le_f8(values)));
  EXPECT_EQ(npy::load<double>(p).data, values);
}

TEST_F(NpyTest, Version2Header) {
  const std::vector<float> values = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f};
  const std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n";
  const std::string p = write("v2.npy", make_npy(2, header, le_f4(values)));
  const npy::Header h = npy::read_header(p);
  EXPECT_EQ(h.data_offset, 12u + header.size());
  EXPECT_EQ(h.shape, (std::vector<std::int64_t>{2, 3}));
  const auto a = npy::load<float>(p);
  EXPECT_EQ(a.data, values);
}

TEST_F(NpyTest, Version3Header) {
  const std::vector<double> values = {9.0, 8.0};
  const std::string header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n";
  const std::string p = write("v3.npy", make_npy(3, header, le_f8(values)));
  EXPECT_EQ(npy::read_header(p).data_offset, 12u + header.size());
  EXPECT_EQ(npy::load<double>(p).data, values);
}

TEST_F(NpyTest, FlexibleHeaderDict) {
  const std::vector<double> six = {1, 2, 3, 4, 5, 6};
  // key order, quote style, spacing and trailing commas vary
  const std::vector<std::string> headers = {
      "{\"shape\": (2, 3), \"fortran_order\": False, \"descr\": \"<f8\"}",
      "{'fortran_order':False,'shape':(2,3),'descr':'<f8'}\n",
      "{ 'descr' : '<f8' , 'shape' : ( 2 , 3 , ) , 'fortran_order' : False , }    \n",
      "{'descr': '<f8', 'fortran_order': False, 'shape': (2L, 3L), }\n",
  };
  for (std::size_t i = 0; i < headers.size(); ++i) {
    const std::string p = write("flex" + std::to_string(i) + ".npy", make_npy(1, headers[i], le_f8(six)));
    const auto a = npy::load<double>(p);
    EXPECT_EQ(a.shape, (std::vector<std::int64_t>{2, 3})) << headers[i];
    EXPECT_EQ(a.data, six) << headers[i];
  }
  // 0-d and 1-d shapes
  const std::string p0 = write(
      "scalar.npy", make_npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': ()}", le_f8({2.5})));
  const auto s = npy::load<double>(p0);
  EXPECT_TRUE(s.shape.empty());
  EXPECT_EQ(s.data, std::vector<double>{2.5});
  const std::string p1 = write(
      "vec.npy", make_npy(1, "{'descr':'<f8','fortran_order':False,'shape':(5,)}", le_f8({1, 2, 3, 4, 5})));
  EXPECT_EQ(npy::load<double>(p1).shape, std::vector<std::int64_t>{5});
}

TEST_F(NpyTest, ErrorBadMagic) {
  const std::string p = write("bad_magic.npy", "PK\x03\x04 this is a zip, not an npy file");
  expect_rejected(p, {"not an NPY file"});
  const std::string e = write("empty.npy", "");
  expect_rejected(e, {"not an NPY file"});
}

TEST_F(NpyTest, ErrorTruncatedHeader) {
  // file ends inside the fixed prefix
  const std::string full = make_npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n",
                                    le_f8({1, 2}));
  const std::string p1 = write("trunc_prefix.npy", full.substr(0, 9));
  expect_rejected(p1, {"truncated NPY header"});
  // file ends inside the header text
  const std::string p2 = write("trunc_header.npy", full.substr(0, 30));
  expect_rejected(p2, {"truncated NPY header"});
}

TEST_F(NpyTest, ErrorTruncatedData) {
  const std::string p = write(
      "trunc_data.npy",
      make_npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }\n", le_f8({1, 2, 3, 4, 5})));
  expect_rejected(p, {"truncated data", "(2, 3)", "48", "40"});
}

TEST_F(NpyTest, ErrorTrailingBytes) {
  const std::string p = write(
      "trailing.npy",
      make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", le_f4({1, 2, 3})));
  expect_rejected(p, {"trailing", "8", "12"});
}

TEST_F(NpyTest, ErrorFortranOrder) {
  const std::string p = write(
      "fortran.npy",
      make_npy(1, "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2), }\n", le_f8({1, 2, 3, 4})));
  expect_rejected(p, {"Fortran", "not supported", "np.ascontiguousarray"});
}

TEST_F(NpyTest, ErrorUnsupportedDtypes) {
  const std::vector<std::string> descrs = {"'<i8'", "'<f2'", "'|b1'", "'<c16'", "'<i4'", "'|u1'",
                                           "'f8'", "[('x', '<f4'), ('y', '<f4')]"};
  int i = 0;
  for (const auto& descr : descrs) {
    const std::string p = write(
        "dtype" + std::to_string(i++) + ".npy",
        make_npy(1, "{'descr': " + descr + ", 'fortran_order': False, 'shape': (2,), }\n",
                 std::string(16, '\0')));
    expect_rejected(p, {descr, "expected float32 or float64"});
  }
}

TEST_F(NpyTest, ErrorInt64Dtype) {
  const std::string p = write(
      "int64.npy",
      make_npy(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }\n", std::string(24, '\0')));
  expect_rejected(p, {"<i8", "expected float32 or float64"});
}

TEST_F(NpyTest, ErrorMissingFile) {
  const std::string p = path("does_not_exist.npy");
  expect_rejected(p, {"cannot open"});
  expect_rejected(dir_.string(), {"cannot open"});
}

TEST_F(NpyTest, ErrorNegativeAndOverflowingShape) {
  const std::string neg = write(
      "neg.npy", make_npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }\n"));
  expect_rejected(neg, {"negative dimension"});
  const std::string big = write(
      "big.npy",
      make_npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,), }\n"));
  expect_rejected(big, {"overflow"});
  const std::string prod = write(
      "prod.npy",
      make_npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }\n"));
  expect_rejected(prod, {"too large"});
}

TEST_F(NpyTest, ErrorMalformedDict) {
  const std::vector<std::string> headers = {
      "{'descr': '<f8', 'shape': (2,), }\n",                                  // missing key
      "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), 'x': 1}\n",   // unknown key
      "{'descr': '<f8', 'fortran_order': False, 'shape': (2), }\n",          // not a tuple
      "{'descr': '<f8', 'fortran_order': Maybe, 'shape': (2,), }\n",         // bad bool
      "{'descr': '<f8', 'fortran_order': False, 'shape': (2,) \n",           // unclosed dict
      "{'descr': '<f8', 'fortran_order': False, 'shape': (2,)} junk\n",      // trailing text
      "{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (2,)}\n",  // duplicate
      "['descr', '<f8']\n",                                                  // not a dict
  };
  int i = 0;
  for (const auto& header : headers) {
    const std::string p = write("malformed" + std::to_string(i++) + ".npy", make_npy(1, header, le_f8({1, 2})));
    expect_rejected(p, {"malformed NPY header"});
  }
}

TEST_F(NpyTest, ErrorUnsupportedVersion) {
  std::string bytes = make_npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }\n", le_f8({1}));
  bytes[6] = 4;
  const std::string p = write("v4.npy", bytes);
  expect_rejected(p, {"version 4.0"});
}

TEST_F(NpyTest, SaveHeaderMatchesNumpyLayout) {
  const std::vector<double> data = {1, 2, 3, 4, 5, 6};
  const std::string p = path("layout.npy");
  npy::save<double>(p, data.data(), {2, 3});
  const std::string bytes = read(p);
  ASSERT_GE(bytes.size(), 10u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const std::size_t header_len = static_cast<unsigned char>(bytes[8]) |
                                 (static_cast<std::size_t>(static_cast<unsigned char>(bytes[9])) << 8);
  EXPECT_EQ((10 + header_len) % 64, 0u);
  const std::string header = bytes.substr(10, header_len);
  EXPECT_EQ(header.back(), '\n');
  const std::string dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }";
  EXPECT_EQ(header.substr(0, dict.size()), dict);
  EXPECT_EQ(header.find_first_not_of(' ', dict.size()), header.size() - 1);
  EXPECT_EQ(bytes.substr(10 + header_len), le_f8(data));
}

TEST_F(NpyTest, SaveHeaderAlignmentAndDescr) {
  // many shapes, so the padding length varies
  const std::vector<std::vector<std::int64_t>> shapes = {
      {}, {1}, {10}, {3, 4}, {0, 123456789}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 0}, {0, 0}};
  for (const auto& shape : shapes) {
    const std::string p = path("align.npy");
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    const std::vector<float> data(static_cast<std::size_t>(n), 1.0f);
    npy::save<float>(p, data.data(), shape);
    const std::string bytes = read(p);
    const std::size_t header_len = static_cast<unsigned char>(bytes[8]) |
                                   (static_cast<std::size_t>(static_cast<unsigned char>(bytes[9])) << 8);
    EXPECT_EQ((10 + header_len) % 64, 0u) << npy::shape_string(shape);
    const std::string header = bytes.substr(10, header_len);
    EXPECT_NE(header.find("'descr': '<f4'"), std::string::npos) << header;
    EXPECT_NE(header.find("'shape': " + npy::shape_string(shape)), std::string::npos) << header;
    EXPECT_EQ(header.back(), '\n');
  }
}

TEST_F(NpyTest, SaveLeavesNoTempFileAndReplacesExisting) {
  const std::string p = path("replace.npy");
  write("replace.npy", "old contents that are not an npy file");
  const std::vector<float> data = {1.0f, 2.0f, 3.0f};
  npy::save<float>(p, data.data(), {3});
  EXPECT_EQ(entries(), std::vector<std::string>{"replace.npy"});
  EXPECT_EQ(npy::load<float>(p).data, data);

  // a second save with a different shape and dtype replaces the first
  const std::vector<double> more = {1, 2, 3, 4};
  npy::save<double>(p, more.data(), {2, 2});
  EXPECT_EQ(entries(), std::vector<std::string>{"replace.npy"});
  const auto a = npy::load<double>(p);
  EXPECT_EQ(a.file_dtype, npy::DType::f64);
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{2, 2}));
  EXPECT_EQ(a.data, more);
}

TEST_F(NpyTest, SaveFailureNamesPathAndLeavesNothing) {
  const std::string p = path("missing_dir/out.npy");
  const double v = 1.0;
  try {
    npy::save<double>(p, &v, {});
    ADD_FAILURE() << "expected std::runtime_error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
  EXPECT_TRUE(entries().empty());

  // target is an existing directory: rename fails, the temp file is removed
  fs::create_directories(path("a_dir.npy/inner"));
  const std::string d = path("a_dir.npy");
  try {
    npy::save<double>(d, &v, {});
    ADD_FAILURE() << "expected std::runtime_error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(d), std::string::npos) << e.what();
  }
  EXPECT_EQ(entries(), std::vector<std::string>{"a_dir.npy"});
}

TEST_F(NpyTest, SaveRejectsNegativeDimension) {
  const std::string p = path("neg_save.npy");
  const double v = 1.0;
  EXPECT_THROW(npy::save<double>(p, &v, {2, -1}), std::runtime_error);
  EXPECT_TRUE(entries().empty());
}

}  // namespace
