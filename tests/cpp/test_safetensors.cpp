// tse::io safetensors: round trips of every dtype, the golden files, F16/BF16 widening, the
// atomic writer, and one hand-built malformed file per validation rule of the reader.
#include <doctest/doctest.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <string>

#include "tests/cpp/temp_dir.hpp"
#include "tse/tse.hpp"

namespace {

using namespace tse;
namespace fs = std::filesystem;


std::string le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(v >> (8 * i));
  return s;
}

/// A file: length N = header.size() (unless given), the header text, the data bytes.
std::string file_bytes(const std::string& header, const std::string& data = "", std::optional<uint64_t> n = {}) {
  return le64(n.value_or(header.size())) + header + data;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

/// Loading `bytes` fails with an IOError whose message names the file and contains `rule`.
void expect_rejected(const std::string& bytes, const std::string& rule) {
  tse::test::TempDir dir("tse_safetensors");
  const std::string path = dir.file("bad.safetensors");
  write_bytes(path, bytes);
  std::string msg;
  try {
    io::load_safetensors(path);
  } catch (const IOError& e) {
    msg = e.what();
  }
  INFO("message: ", msg);
  CHECK(msg.find(path) != std::string::npos);
  CHECK(msg.find(rule) != std::string::npos);
}

std::string entry(const std::string& name, const std::string& dtype, const std::string& shape, uint64_t b, uint64_t e) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" +
         std::to_string(b) + "," + std::to_string(e) + "]}";
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.sizes() != b.sizes()) return false;
  const Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.data_ptr(), cb.data_ptr(), static_cast<size_t>(ca.numel()) * ca.itemsize()) == 0;
}

template <typename T, typename F>
Tensor filled(const Shape& shape, F f) {
  Tensor t = Tensor::empty(shape, dtype_of<T>::value);
  T* p = t.data<T>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = f(i);
  return t;
}

fs::path golden_dir() {
  if (const char* env = std::getenv("TSE_GOLDEN_DIR")) return env;
  // shared/ sits next to the repository (as tests/python/golden.py assumes).
  return fs::path(TSE_SOURCE_DIR).parent_path() / "shared" / "golden";
}

}  // namespace

TEST_CASE("safetensors round trip of every dtype incl scalars and empty tensors") {
  tse::test::TempDir dir("tse_safetensors");
  const std::vector<std::pair<std::string, Tensor>> in = {
      {"f32", filled<float>({2, 3}, [](int64_t i) { return 0.25f * i - 1; })},
      {"f64", filled<double>({5}, [](int64_t i) { return std::sqrt(2.0) * i; })},
      {"f16", filled<Half>({3, 1}, [](int64_t i) { return Half(1.5f * i); })},
      {"bf16", filled<BFloat16>({4}, [](int64_t i) { return BFloat16(-3.0f * i); })},
      {"i32", filled<int32_t>({2, 2}, [](int64_t i) { return static_cast<int32_t>(i * 1000003 - 7); })},
      {"i64", filled<int64_t>({3}, [](int64_t i) { return (int64_t{1} << 40) * (i - 1); })},
      {"b8", filled<bool>({5}, [](int64_t i) { return i % 2 == 0; })},
      {"scalar", filled<float>({}, [](int64_t) { return 42.5f; })},
      {"scalar_i64", filled<int64_t>({}, [](int64_t) { return int64_t{-9}; })},
      {"empty", Tensor::empty({0, 4}, DType::f32)},
      {"empty_bool", Tensor::empty({3, 0}, DType::b8)},
  };
  const std::string path = dir.file("all.safetensors");
  io::save_safetensors(path, in);
  const auto out = io::load_safetensors(path);
  REQUIRE(out.size() == in.size());
  for (const auto& [name, t] : in) {
    INFO(name);
    REQUIRE(out.count(name) == 1);
    CHECK(same_bytes(out.at(name), t));
  }
  CHECK(out.at("scalar").dim() == 0);
  CHECK(out.at("scalar").item() == 42.5);
  CHECK(out.at("empty").sizes() == Shape{0, 4});
  // Saving what was loaded gives the same bytes (deterministic writer).
  const std::string again = dir.file("again.safetensors");
  io::save_safetensors(again, in);
  CHECK(read_bytes(again) == read_bytes(path));
}

TEST_CASE("safetensors saves views contiguous") {
  tse::test::TempDir dir("tse_safetensors");
  const Tensor base = filled<float>({3, 4}, [](int64_t i) { return static_cast<float>(i); });
  const Tensor tr = base.t();                 // [4, 3], strides (1, 4)
  const Tensor sl = base.slice(1, 1, 4, 2);   // [3, 2], columns 1 and 3
  REQUIRE(!tr.is_contiguous());
  REQUIRE(!sl.is_contiguous());
  const std::string path = dir.file("views.safetensors");
  io::save_safetensors(path, {{"t", tr}, {"s", sl}});
  const auto out = io::load_safetensors(path);
  const float* t = out.at("t").data<float>();
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 3; ++j) CHECK(t[i * 3 + j] == static_cast<float>(j * 4 + i));
  CHECK(out.at("s").sizes() == Shape{3, 2});
  const float* s = out.at("s").data<float>();
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 2; ++j) CHECK(s[i * 2 + j] == static_cast<float>(i * 4 + 1 + 2 * j));
}

TEST_CASE("safetensors metadata round trip and the written layout") {
  tse::test::TempDir dir("tse_safetensors");
  const std::map<std::string, std::string> meta = {
      {"format", "libtse-v1"}, {"config", "{\"sr\": 32000, \"n_fft\": 1024}"}, {"unicode", "\xc3\xa9t\xc3\xa9"}, {"", ""}};
  const std::string path = dir.file("meta.safetensors");
  io::save_safetensors(path,
                       {{"b8", Tensor::empty({3}, DType::b8).fill_(1)},
                        {"f32", Tensor::empty({3}, DType::f32).fill_(2)},
                        {"f64", Tensor::empty({1}, DType::f64).fill_(3)},
                        {"f16", Tensor::empty({1}, DType::f16).fill_(4)}},
                       meta);
  CHECK(io::load_safetensors_metadata(path) == meta);
  const io::SafetensorsFile f = io::SafetensorsFile::open(path);
  CHECK(f.metadata() == meta);
  // Largest elements first so every tensor is aligned to its element size; ties keep input order.
  CHECK(f.names() == std::vector<std::string>{"f64", "f32", "f16", "b8"});
  for (const std::string& n : f.names()) {
    const io::TensorInfo i = f.info(n);
    CHECK(i.file_offset % itemsize(*i.tse_dtype) == 0);
  }
  const std::string raw = read_bytes(path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(raw[i]);
  CHECK(n % 8 == 0);
  CHECK(raw.size() == 8 + n + 8 + 12 + 2 + 3);
  const std::string header = raw.substr(8, n);
  CHECK(header.rfind("{\"__metadata__\":", 0) == 0);
  CHECK(header.find_last_not_of(' ') == header.find_last_of('}'));  // padded with spaces only
}

TEST_CASE("safetensors reads the golden rel_pos_mhsa file") {
  const fs::path path = golden_dir() / "conformer" / "rel_pos_mhsa.safetensors";
  if (!fs::exists(path)) {
    MESSAGE("TSE_SKIP: golden file ", path.string(), " is missing (set TSE_GOLDEN_DIR)");
    return;
  }
  const io::SafetensorsFile f = io::SafetensorsFile::open(path.string());
  CHECK(f.metadata().at("format") == "libtse-golden-conformer-v1");
  CHECK(f.names().front() == "pos_bias_u");
  CHECK(f.info("linear_q.weight").shape == Shape{64, 64});
  CHECK(f.info("input.x").shape == Shape{2, 37, 64});
  CHECK(f.info("output.attn").dtype == "F64");
  CHECK(f.info("output.attn").shape == Shape{2, 4, 37, 37});
  CHECK(f.info("output.matrix_bd_raw").shape == Shape{2, 4, 37, 73});
  const auto all = io::load_safetensors(path.string());
  CHECK(all.size() == f.names().size());
  CHECK(all.at("output.pos_emb").dtype() == DType::f64);
  CHECK(all.at("output.pos_emb").sizes() == Shape{1, 73, 64});
  // Bytes independent of our parser: linear_q.bias is data bytes [16896, 17152) after the
  // 8 + 9336-byte header (read off the file with Python's json + struct).
  const std::string raw = read_bytes(path.string());
  REQUIRE(raw.size() == 1073056);
  CHECK(std::memcmp(all.at("linear_q.bias").data_ptr(), raw.data() + 8 + 9336 + 16896, 256) == 0);
}

TEST_CASE("safetensors F16 and BF16 widen to f32 exactly on request") {
  tse::test::TempDir dir("tse_safetensors");
  const uint16_t h[] = {0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x7c00, 0x8000, 0x3555};
  const float hf[] = {1.0f, -2.0f, 65504.0f, 0x1p-24f, 1023 * 0x1p-24f, INFINITY, -0.0f, 0x1.554p-2f};
  const uint16_t b[] = {0x3f80, 0x4049, 0xff80, 0x0001, 0xc2f7};
  const float bf[] = {1.0f, 3.140625f, -INFINITY, 0x1p-133f, -123.5f};
  const std::string data(reinterpret_cast<const char*>(h), sizeof h);
  const std::string bdata(reinterpret_cast<const char*>(b), sizeof b);
  const std::string path = dir.file("half.safetensors");
  write_bytes(path, file_bytes("{" + entry("h", "F16", "[8]", 0, 16) + "," + entry("b", "BF16", "[5]", 16, 26) + "}",
                               data + bdata));
  io::LoadOptions widen;
  widen.half_to_f32 = true;
  const auto w = io::load_safetensors(path, widen);
  REQUIRE(w.at("h").dtype() == DType::f32);
  REQUIRE(w.at("b").dtype() == DType::f32);
  for (int i = 0; i < 8; ++i) {
    CHECK(w.at("h").data<float>()[i] == hf[i]);
    CHECK(std::signbit(w.at("h").data<float>()[i]) == std::signbit(hf[i]));
  }
  for (int i = 0; i < 5; ++i) CHECK(w.at("b").data<float>()[i] == bf[i]);
  // Without the option they stay 16-bit storage tensors holding the file's bits.
  const auto s = io::load_safetensors(path);
  CHECK(s.at("h").dtype() == DType::f16);
  CHECK(s.at("b").dtype() == DType::bf16);
  CHECK(std::memcmp(s.at("h").data_ptr(), h, sizeof h) == 0);
  CHECK(std::memcmp(s.at("b").data_ptr(), b, sizeof b) == 0);
}

TEST_CASE("safetensors lazy file gives names info and single tensors") {
  tse::test::TempDir dir("tse_safetensors");
  const std::string path = dir.file("lazy.safetensors");
  io::save_safetensors(path, {{"a", Tensor::empty({2, 3}).fill_(1)}, {"b", Tensor::empty({4}, DType::i64).fill_(7)}});
  const io::SafetensorsFile f = io::SafetensorsFile::open(path);
  CHECK(f.names() == std::vector<std::string>{"b", "a"});
  CHECK(f.contains("a"));
  CHECK(!f.contains("c"));
  const io::TensorInfo ia = f.info("a");
  CHECK(ia.dtype == "F32");
  CHECK(ia.shape == Shape{2, 3});
  CHECK(ia.begin == 32);
  CHECK(ia.end == 56);
  CHECK(f.file_size() == ia.file_offset + 24);
  CHECK(f.tensor("b").data<int64_t>()[3] == 7);
  CHECK_THROWS_AS(f.tensor("c"), IndexError);
  CHECK_THROWS_AS(f.info("c"), IndexError);
}

TEST_CASE("safetensors dtypes a tensor cannot hold parse but tensor() names them") {
  tse::test::TempDir dir("tse_safetensors");
  const std::string path = dir.file("u8.safetensors");
  write_bytes(path, file_bytes("{" + entry("q", "F8_E4M3", "[2]", 0, 2) + "," + entry("x", "U8", "[3]", 2, 5) + "," +
                                   entry("n", "F4", "[4]", 5, 7) + "," + entry("ok", "I32", "[1]", 7, 11) + "}",
                               std::string(11, '\x01')));
  const io::SafetensorsFile f = io::SafetensorsFile::open(path);
  CHECK(f.info("x").dtype == "U8");
  CHECK(!f.info("x").tse_dtype.has_value());
  CHECK(f.tensor("ok").data<int32_t>()[0] == 0x01010101);
  for (const char* name : {"q", "x", "n"}) {
    std::string msg;
    try {
      f.tensor(name);
    } catch (const NotImplementedError& e) {
      msg = e.what();
    }
    INFO(msg);
    CHECK(msg.find(std::string("tensor '") + name + "'") != std::string::npos);
    CHECK(msg.find(f.info(name).dtype) != std::string::npos);
  }
  CHECK_THROWS_AS(io::load_safetensors(path), NotImplementedError);
}

TEST_CASE("safetensors rejects BOOL bytes other than 0 and 1") {
  expect_rejected(file_bytes("{" + entry("m", "BOOL", "[3]", 0, 3) + "}", std::string("\x01\x00\x02", 3)),
                  "BOOL tensor 'm' holds the byte 2");
}

TEST_CASE("safetensors save is atomic and leaves no temp file") {
  tse::test::TempDir dir("tse_safetensors");
  const std::string path = dir.file("w.safetensors");
  io::save_safetensors(path, {{"w", Tensor::empty({2}).fill_(1)}});
  const std::string before = read_bytes(path);
  // A failure while checking the inputs: nothing is written.
  CHECK_THROWS_AS(io::save_safetensors(path, {{"w", Tensor::empty({3}).fill_(2)}, {"bad", Tensor()}}), ValueError);
  CHECK(read_bytes(path) == before);
  CHECK(dir.listing() == std::vector<std::string>{"w.safetensors"});
  // A failure after the data was written (the rename onto a non-empty folder fails): the temp
  // file goes, the folder stays.
  fs::create_directories(dir.path / "sub" / "x");
  std::string msg;
  try {
    io::save_safetensors(dir.file("sub"), {{"w", Tensor::empty({3}).fill_(2)}});
  } catch (const IOError& e) {
    msg = e.what();
  }
  CHECK(msg.find("rename") != std::string::npos);
  CHECK(dir.listing() == std::vector<std::string>{"sub", "w.safetensors"});
  // A folder that does not exist.
  CHECK_THROWS_AS(io::save_safetensors(dir.file("none/w.safetensors"), {{"w", Tensor::empty({1})}}), IOError);
  // Success replaces the old file whole.
  io::save_safetensors(path, {{"v", Tensor::empty({3}).fill_(5)}});
  CHECK(io::load_safetensors(path).count("v") == 1);
  CHECK(dir.listing() == std::vector<std::string>{"sub", "w.safetensors"});
}

TEST_CASE("safetensors save rejects bad names and tensors naming them") {
  tse::test::TempDir dir("tse_safetensors");
  const std::string path = dir.file("x.safetensors");
  const Tensor t = Tensor::empty({1}).fill_(0);
  auto fails = [&](const std::vector<std::pair<std::string, Tensor>>& in, const std::string& fragment) {
    std::string msg;
    try {
      io::save_safetensors(path, in);
    } catch (const ValueError& e) {
      msg = e.what();
    }
    INFO(msg);
    CHECK(msg.find(fragment) != std::string::npos);
  };
  fails({{"a", t}, {"a", t}}, "'a' appears twice");
  fails({{"", t}}, "name is empty");
  fails({{"__metadata__", t}}, "'__metadata__' is reserved");
  fails({{"u", Tensor()}}, "tensor 'u' is undefined");
  fails({{std::string(4097, 'n'), t}}, "4097 bytes long");
  fails({{"bad\xff", t}}, "not valid UTF-8");
  CHECK_THROWS_AS(io::save_safetensors(path, {{"a", t}}, {{"k", "\xc0\xaf"}}), ValueError);
  CHECK(!fs::exists(path));
  // The std::map overload writes the same file as the pair list in name order.
  io::save_safetensors(path, std::map<std::string, Tensor>{{"b", t}, {"a", t}});
  CHECK(io::SafetensorsFile::open(path).names() == std::vector<std::string>{"a", "b"});
}

// ---- one malformed file per validation rule -------------------------------------------------

TEST_CASE("safetensors rule file shorter than the header length") {
  expect_rejected(std::string("\x08\x00\x00", 3), "less than the 8-byte header length");
  expect_rejected("", "holds 0 bytes");
}

TEST_CASE("safetensors rule header length over 100 MB") {
  expect_rejected(file_bytes("{}", "", 100'000'001), "exceeds the limit of 100000000 bytes");
  expect_rejected(file_bytes("{}", "", ~uint64_t{1}), "exceeds the limit");  // 2^64 - 2: no wrap-around
}

TEST_CASE("safetensors rule header length past the end of the file") {
  expect_rejected(file_bytes("{}", "", 3), "runs past the end of the file");
}

TEST_CASE("safetensors rule header is not JSON") {
  expect_rejected(file_bytes("{\"a\":{\"dtype\":\"F32\",}"), "not valid JSON");
}

TEST_CASE("safetensors rule header must start with a brace") {
  expect_rejected(file_bytes(" {}"), "starting with '{'");
  expect_rejected(file_bytes(""), "starting with '{'");
}

TEST_CASE("safetensors rule array at the top level") {
  expect_rejected(file_bytes("[{}]"), "starting with '{'");
}

TEST_CASE("safetensors rule entry without dtype") {
  expect_rejected(file_bytes("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", "abcd"), "tensor 'a' has no 'dtype'");
}

TEST_CASE("safetensors rule entry without shape") {
  expect_rejected(file_bytes("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", "abcd"), "tensor 'a' has no 'shape'");
}

TEST_CASE("safetensors rule entry without data_offsets") {
  expect_rejected(file_bytes("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", "abcd"), "tensor 'a' has no 'data_offsets'");
}

TEST_CASE("safetensors rule entry with an extra field or not an object") {
  expect_rejected(file_bytes("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", "abcd"),
                  "unexpected field 'x'");
  expect_rejected(file_bytes("{\"a\":[1]}"), "is not a JSON object");
}

TEST_CASE("safetensors rule unknown dtype") {
  expect_rejected(file_bytes("{" + entry("a", "F128", "[1]", 0, 16) + "}", std::string(16, '\0')), "unknown dtype 'F128'");
  expect_rejected(file_bytes("{" + entry("a", "f32", "[1]", 0, 4) + "}", "abcd"), "unknown dtype 'f32'");
}

TEST_CASE("safetensors rule negative shape") {
  expect_rejected(file_bytes("{" + entry("a", "F32", "[-1]", 0, 0) + "}"), "non-negative integers, got -1");
}

TEST_CASE("safetensors rule non-integer shape") {
  expect_rejected(file_bytes("{" + entry("a", "F32", "[1.0]", 0, 4) + "}", "abcd"), "non-negative integers, got 1.0");
  expect_rejected(file_bytes("{" + entry("a", "F32", "[\"1\"]", 0, 4) + "}", "abcd"), "non-negative integers");
  expect_rejected(file_bytes("{" + entry("a", "F32", "1", 0, 4) + "}", "abcd"), "shape must be an array");
}

TEST_CASE("safetensors rule overflowing shape product") {
  // 2^32 * 2^32 = 2^64 wraps to 0, which would match [0, 0] without the checked multiply.
  expect_rejected(file_bytes("{" + entry("a", "F32", "[4294967296,4294967296]", 0, 0) + "}"), "overflows 64 bits");
  // 2^62 elements fit, 2^62 * 32 bits do not.
  expect_rejected(file_bytes("{" + entry("a", "F32", "[4611686018427387904]", 0, 0) + "}"), "overflows 64 bits");
}

TEST_CASE("safetensors rule size mismatch") {
  expect_rejected(file_bytes("{" + entry("a", "F32", "[2,2]", 0, 12) + "}", std::string(12, '\0')),
                  "needs 16 bytes, but data_offsets [0, 12] hold 12");
  expect_rejected(file_bytes("{" + entry("a", "F4", "[3]", 0, 2) + "}", "ab"), "do not fill whole bytes");
}

TEST_CASE("safetensors rule end before begin") {
  expect_rejected(file_bytes("{" + entry("a", "U8", "[0]", 4, 0) + "}", "abcd"), "end before they begin");
}

TEST_CASE("safetensors rule overlapping offsets") {
  expect_rejected(file_bytes("{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("b", "F32", "[1]", 4, 8) + "}",
                             std::string(8, '\0')),
                  "overlaps tensor 'a'");
  // The same range twice: the small-file memory DoS of the attacks README.
  expect_rejected(file_bytes("{" + entry("a", "F32", "[1]", 0, 4) + "," + entry("b", "F32", "[1]", 0, 4) + "}", "abcd"),
                  "overlaps");
}

TEST_CASE("safetensors rule gap between tensors") {
  expect_rejected(file_bytes("{" + entry("a", "F32", "[1]", 0, 4) + "," + entry("b", "F32", "[1]", 8, 12) + "}",
                             std::string(12, '\0')),
                  "bytes [4, 8) of the data section before tensor 'b' belong to no tensor");
  expect_rejected(file_bytes("{" + entry("a", "F32", "[1]", 4, 8) + "}", std::string(8, '\0')), "belong to no tensor");
}

TEST_CASE("safetensors rule trailing bytes") {
  expect_rejected(file_bytes("{" + entry("a", "F32", "[1]", 0, 4) + "}", "abcdXYZ"), "3 trailing bytes");
  expect_rejected(file_bytes("{}", "x"), "1 trailing bytes");
}

TEST_CASE("safetensors rule offsets past the end of the file") {
  expect_rejected(file_bytes("{" + entry("a", "F32", "[4]", 0, 16) + "}", "abcd"), "past the end of the file");
}

TEST_CASE("safetensors rule duplicate keys") {
  expect_rejected(file_bytes("{" + entry("a", "F32", "[1]", 0, 4) + "," + entry("a", "F32", "[1]", 0, 4) + "}", "abcd"),
                  "holds the key 'a' twice");
  expect_rejected(file_bytes("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", "abcd"),
                  "holds the key 'dtype' twice");
  expect_rejected(file_bytes("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}"), "holds the key 'k' twice");
}

TEST_CASE("safetensors rule metadata must map strings to strings") {
  expect_rejected(file_bytes("{\"__metadata__\":{\"sr\":32000}}"), "__metadata__ value of 'sr' must be a string");
  expect_rejected(file_bytes("{\"__metadata__\":[\"a\"]}"), "__metadata__ must be an object");
}

TEST_CASE("safetensors rule too long name") {
  const std::string name(4097, 'n');
  expect_rejected(file_bytes("{" + entry(name, "F32", "[1]", 0, 4) + "}", "abcd"), "is 4097 bytes long (limit 4096)");
  // 4096 bytes is still fine.
  tse::test::TempDir dir("tse_safetensors");
  write_bytes(dir.file("ok"), file_bytes("{" + entry(std::string(4096, 'n'), "F32", "[1]", 0, 4) + "}", "abcd"));
  CHECK(io::load_safetensors(dir.file("ok")).size() == 1);
}

TEST_CASE("safetensors rule invalid UTF-8") {
  expect_rejected(file_bytes("{" + entry("a\xc0\xaf", "F32", "[1]", 0, 4) + "}", "abcd"), "not valid UTF-8");  // overlong
  expect_rejected(file_bytes("{" + entry("a\xed\xa0\x80", "F32", "[1]", 0, 4) + "}", "abcd"), "not valid UTF-8");  // surrogate
  expect_rejected(file_bytes("{\"__metadata__\":{\"k\":\"\xff\"}}"), "not valid UTF-8");
}

TEST_CASE("safetensors rule nesting depth") {
  expect_rejected(file_bytes("{\"__metadata__\":" + std::string(100, '[') + std::string(100, ']') + "}"),
                  "nests deeper than 64");
}

TEST_CASE("safetensors accepts padded headers zero-size tensors and files without tensors") {
  tse::test::TempDir dir("tse_safetensors");
  const std::string path = dir.file("ok.safetensors");
  write_bytes(path, file_bytes("{" + entry("z", "F32", "[0]", 0, 0) + "," + entry("a", "F32", "[1]", 0, 4) + "," +
                                   entry("y", "I64", "[2,0]", 4, 4) + "}      ",
                               "abcd"));
  const io::SafetensorsFile f = io::SafetensorsFile::open(path);
  CHECK(f.names() == std::vector<std::string>{"z", "a", "y"});
  write_bytes(path, file_bytes("{}"));
  CHECK(io::load_safetensors(path).empty());
  CHECK_THROWS_AS(io::load_safetensors(dir.file("missing.safetensors")), IOError);
  CHECK_THROWS_AS(io::load_safetensors(dir.path.string()), IOError);
}

TEST_CASE("safetensors save rejects a CUDA tensor naming it") {
  if (!cuda_is_available()) {
    MESSAGE("TSE_SKIP: no CUDA GPU visible");
    return;
  }
  tse::test::TempDir dir("tse_safetensors");
  std::string msg;
  try {
    io::save_safetensors(dir.file("g.safetensors"), {{"gpu.w", ops::ones({2}).to(Device::cuda(0))}});
  } catch (const ValueError& e) {
    msg = e.what();
  }
  CHECK(msg.find("tensor 'gpu.w' is on cuda:0") != std::string::npos);
  CHECK(dir.listing().empty());
}
