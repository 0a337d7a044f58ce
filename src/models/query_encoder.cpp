#include "tse/models/query_encoder.hpp"

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "tse/core/error.hpp"
#include "tse/ops/factory.hpp"

namespace tse::models {
namespace {

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xCBF29CE484222325ULL;
  for (unsigned char ch : s) h = (h ^ ch) * 0x100000001B3ULL;
  return h;
}

// N(0, I) draws (Box-Muller on splitmix64 uniforms) seeded by (seed, label), normalised to 1.
std::vector<float> label_vector(const std::string& label, int64_t dim, uint64_t seed) {
  uint64_t state = fnv1a(label) ^ (seed * 0xD1B54A32D192ED03ULL);
  std::vector<double> v(static_cast<size_t>(dim));
  double norm2 = 0.0;
  for (size_t i = 0; i < v.size(); i += 2) {
    const double u1 = (static_cast<double>(splitmix64(state) >> 11) + 1.0) / 9007199254740993.0;  // (0, 1]
    const double u2 = static_cast<double>(splitmix64(state) >> 11) / 9007199254740992.0;
    const double r = std::sqrt(-2.0 * std::log(u1));
    v[i] = r * std::cos(2 * M_PI * u2);
    if (i + 1 < v.size()) v[i + 1] = r * std::sin(2 * M_PI * u2);
  }
  for (double x : v) norm2 += x * x;
  const double inv = 1.0 / std::sqrt(norm2);
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = static_cast<float>(v[i] * inv);
  return out;
}

}  // namespace

Tensor QueryEncoder::encode_text(const std::vector<std::string>&) const {
  throw NotImplementedError(name() + ": text queries are not supported by this encoder");
}

Tensor QueryEncoder::encode_audio(const Tensor&, int64_t) const {
  throw NotImplementedError(name() + ": audio queries are not supported by this encoder");
}

std::string QueryEncoder::to_json() const {
  throw NotImplementedError(name() + ": this encoder cannot be described in a checkpoint");
}

std::shared_ptr<QueryEncoder> QueryEncoder::from_json(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw ValueError(std::string("QueryEncoder.from_json: not valid JSON: ") + e.what());
  }
  TSE_CHECK(j.is_object() && j.contains("type") && j["type"].is_string(),
            "QueryEncoder.from_json: expected an object with a \"type\", got ", text);
  const std::string type = j["type"];
  if (type == "LabelQueryEncoder") {
    TSE_CHECK(j.contains("vocabulary") && j["vocabulary"].is_array() && j.contains("dim") &&
                  j["dim"].is_number_integer() && j.contains("seed") && j["seed"].is_number_unsigned(),
              "QueryEncoder.from_json: a LabelQueryEncoder needs \"vocabulary\" (list), \"dim\" and \"seed\", got ", text);
    std::vector<std::string> vocabulary;
    for (const auto& v : j["vocabulary"]) {
      TSE_CHECK(v.is_string(), "QueryEncoder.from_json: vocabulary entries must be strings, got ", v.dump());
      vocabulary.push_back(v.get<std::string>());
    }
    return std::make_shared<LabelQueryEncoder>(std::move(vocabulary), j["dim"].get<int64_t>(), j["seed"].get<uint64_t>());
  }
  throw ValueError("QueryEncoder.from_json: unknown encoder type \"" + type + "\"");
}

std::string LabelQueryEncoder::to_json() const {
  nlohmann::ordered_json j;
  j["type"] = "LabelQueryEncoder";
  j["vocabulary"] = vocabulary_;
  j["dim"] = dim_;
  j["seed"] = seed_;
  return j.dump();
}

LabelQueryEncoder::LabelQueryEncoder(std::vector<std::string> vocabulary, int64_t dim, uint64_t seed)
    : vocabulary_(std::move(vocabulary)), dim_(dim), seed_(seed) {
  TSE_CHECK(!vocabulary_.empty(), "LabelQueryEncoder: the vocabulary is empty");
  TSE_CHECK(dim > 0, "LabelQueryEncoder: dim must be positive, got ", dim);
  std::set<std::string> seen;
  for (const auto& label : vocabulary_) {
    TSE_CHECK(!label.empty(), "LabelQueryEncoder: empty label in the vocabulary");
    TSE_CHECK(seen.insert(label).second, "LabelQueryEncoder: label \"", label, "\" appears twice in the vocabulary");
    const auto v = label_vector(label, dim, seed);
    table_.insert(table_.end(), v.begin(), v.end());
  }
}

int64_t LabelQueryEncoder::index_of(const std::string& label) const {
  for (size_t i = 0; i < vocabulary_.size(); ++i)
    if (vocabulary_[i] == label) return static_cast<int64_t>(i);
  std::ostringstream os;
  for (size_t i = 0; i < vocabulary_.size(); ++i) os << (i ? ", " : "") << '"' << vocabulary_[i] << '"';
  throw ValueError("LabelQueryEncoder: unknown label \"" + label + "\"; the vocabulary is " + os.str());
}

Tensor LabelQueryEncoder::encode_text(const std::vector<std::string>& labels) const {
  TSE_CHECK(!labels.empty(), "LabelQueryEncoder.encode_text: no labels given");
  std::vector<float> rows;
  rows.reserve(labels.size() * static_cast<size_t>(dim_));
  for (const auto& label : labels) {
    const size_t i = static_cast<size_t>(index_of(label));
    rows.insert(rows.end(), table_.begin() + static_cast<std::ptrdiff_t>(i * dim_),
                table_.begin() + static_cast<std::ptrdiff_t>((i + 1) * dim_));
  }
  return ops::from_vector(rows, {static_cast<int64_t>(labels.size()), dim_});
}

Tensor LabelQueryEncoder::table() const {
  return ops::from_vector(table_, {static_cast<int64_t>(vocabulary_.size()), dim_});
}

}  // namespace tse::models
