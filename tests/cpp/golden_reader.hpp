#pragma once
// The golden files (../shared/golden, made by the official code) for the C++ tests: where they
// are and a loader over tse::io. They are required: tests fail, never skip, when they are absent.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "tse/io/safetensors.hpp"
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

/// Reads a whole golden file through tse::io (its own tests check it against independently
/// read bytes and the PyPI safetensors package); IOError for anything malformed.
inline GoldenFile load_golden(const std::filesystem::path& path) {
  const io::SafetensorsFile f = io::SafetensorsFile::open(path.string());
  GoldenFile out;
  out.metadata = f.metadata();
  for (const std::string& name : f.names()) out.tensors.emplace(name, f.tensor(name));
  return out;
}

}  // namespace tse::test
