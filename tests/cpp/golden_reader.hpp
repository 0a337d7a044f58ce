#pragma once
// A test-only safetensors reader for the golden files (shared/golden), written from the format's
// definition: an 8-byte little-endian header length, a JSON header naming each tensor's dtype,
// shape and byte range (relative to the end of the header), then the raw little-endian data.
// F32 and F64 only, the dtypes of the golden files. It may give way to tse::io later.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tse/tse.hpp"

namespace tse::test {

/// The golden folder: $TSE_GOLDEN_DIR, else ../shared/golden next to the repository.
inline std::filesystem::path golden_dir() {
  if (const char* env = std::getenv("TSE_GOLDEN_DIR"); env && *env) return env;
  return std::filesystem::path(TSE_SOURCE_DIR).parent_path() / "shared" / "golden";
}

struct GoldenFile {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;  // safetensors metadata values are strings

  /// The named tensor; IOError naming the missing key.
  const Tensor& at(const std::string& name) const {
    const auto it = tensors.find(name);
    if (it == tensors.end()) throw IOError("golden file: no tensor named '" + name + "'");
    return it->second;
  }
};

/// Reads a whole safetensors file; IOError for anything malformed.
inline GoldenFile load_golden(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IOError("golden file: cannot open " + path.string());
  std::vector<char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (raw.size() < 8) throw IOError("golden file: " + path.string() + " is shorter than its 8-byte header length");
  uint64_t n = 0;
  for (int b = 7; b >= 0; --b) n = (n << 8) | static_cast<unsigned char>(raw[static_cast<size_t>(b)]);
  if (n > raw.size() - 8) throw IOError("golden file: header length exceeds the file in " + path.string());
  const nlohmann::json header = nlohmann::json::parse(raw.begin() + 8, raw.begin() + 8 + static_cast<int64_t>(n));
  const size_t base = 8 + n;
  GoldenFile out;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      for (const auto& [k, v] : info.items()) out.metadata[k] = v.get<std::string>();
      continue;
    }
    const std::string dt = info.at("dtype").get<std::string>();
    if (dt != "F32" && dt != "F64") throw IOError("golden file: tensor '" + name + "' has unsupported dtype " + dt);
    const DType dtype = dt == "F32" ? DType::f32 : DType::f64;
    Shape sizes;
    for (const auto& d : info.at("shape")) sizes.push_back(d.get<int64_t>());
    const uint64_t begin = info.at("data_offsets")[0].get<uint64_t>(), end = info.at("data_offsets")[1].get<uint64_t>();
    const uint64_t bytes = static_cast<uint64_t>(shape_numel(sizes)) * tse::itemsize(dtype);
    if (end < begin || end - begin != bytes || base + end > raw.size())
      throw IOError("golden file: tensor '" + name + "' has an inconsistent byte range");
    Tensor t = Tensor::empty(sizes, dtype);
    if (bytes > 0) std::memcpy(t.data_ptr(), raw.data() + base + begin, bytes);  // little-endian host
    out.tensors.emplace(name, t);
  }
  return out;
}

}  // namespace tse::test
