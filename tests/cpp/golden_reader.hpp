#pragma once
// The golden files (../shared/golden, made by the official code) for the C++ tests: where they
// are and a loader over tse::io. They are required: tests fail, never skip, when they are absent.
#include <algorithm>
#include <cmath>
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

/// ../shared/golden/<subdir>/<name> as {name: tensor}; required (fails when absent).
inline std::map<std::string, Tensor> golden_tensors(const std::string& subdir, const std::string& name) {
  const auto path = golden_dir() / subdir / name;
  if (!std::filesystem::exists(path))
    throw IOError("golden file missing: " + path.string() +
                  " (the tests need ../shared/golden next to the repository, or TSE_GOLDEN_DIR)");
  return load_golden(path).tensors;
}

/// The module's own tensors of a golden file: names without an "input." / "output" / "grad" /
/// "const." prefix.
inline nn::NamedTensors module_tensors(const std::map<std::string, Tensor>& g) {
  nn::NamedTensors out;
  for (const auto& [k, t] : g)
    if (k.rfind("input.", 0) && k.rfind("output", 0) && k.rfind("grad", 0) && k.rfind("const.", 0)) out.emplace_back(k, t);
  return out;
}

inline double peak(const Tensor& t) {
  double m = 0;
  for (double v : ops::to_vector(t)) m = std::max(m, std::abs(v));
  return m;
}

/// max |got - ref| / max |ref| (the golden READMEs' measure); throws on a shape mismatch.
inline double rel_to_peak(const Tensor& got, const Tensor& ref) {
  if (got.sizes() != ref.sizes()) throw ValueError("rel_to_peak: shapes " + got.shape_str() + " vs " + ref.shape_str());
  const auto a = ops::to_vector(got), b = ops::to_vector(ref);
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m / peak(ref);
}

}  // namespace tse::test
