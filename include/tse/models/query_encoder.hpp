#pragma once
/// \file query_encoder.hpp
/// Queries -> condition embeddings. A QueryEncoder turns a text and/or an audio query into a
/// unit-norm embedding of size embedding_dim() that the extractors take as their `query`. The
/// CLAP text and audio encoders implement it later; until then LabelQueryEncoder gives
/// label-queried TSE: each class label maps to a fixed, seeded unit vector.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tse/core/tensor.hpp"

namespace tse::models {

class TSE_API QueryEncoder {
 public:
  virtual ~QueryEncoder() = default;
  virtual std::string name() const = 0;
  virtual int64_t embedding_dim() const = 0;
  /// One unit embedding per text: (len(texts), embedding_dim()). NotImplementedError by default.
  virtual Tensor encode_text(const std::vector<std::string>& texts) const;
  /// One unit embedding per clip of audio (B, L) at sample_rate: (B, embedding_dim()).
  /// NotImplementedError by default.
  virtual Tensor encode_audio(const Tensor& audio, int64_t sample_rate) const;
  /// JSON that rebuilds this encoder (from_json), stored in a checkpoint's "query_encoder"
  /// metadata so that a saved model carries its queries. NotImplementedError by default.
  virtual std::string to_json() const;
  /// The encoder a to_json() text describes; ValueError for malformed JSON or an unknown type.
  static std::shared_ptr<QueryEncoder> from_json(const std::string& json);
};

/// Label-queried TSE: label -> a unit vector drawn from N(0, I) with a generator seeded by
/// (seed, label), normalised. A label's vector depends only on the label text, dim and seed, not
/// on the vocabulary's order, so vocabularies can grow. Texts must be labels of the vocabulary.
class TSE_API LabelQueryEncoder : public QueryEncoder {
 public:
  LabelQueryEncoder(std::vector<std::string> vocabulary, int64_t dim = 512, uint64_t seed = 0);
  std::string name() const override { return "LabelQueryEncoder"; }
  int64_t embedding_dim() const override { return dim_; }
  Tensor encode_text(const std::vector<std::string>& labels) const override;
  /// {"type": "LabelQueryEncoder", "vocabulary": [...], "dim": D, "seed": S}
  std::string to_json() const override;
  uint64_t seed() const { return seed_; }
  /// The embedding of vocabulary()[i] for every i: (V, dim).
  Tensor table() const;
  const std::vector<std::string>& vocabulary() const { return vocabulary_; }
  /// Index of a label in the vocabulary; ValueError listing the vocabulary when absent.
  int64_t index_of(const std::string& label) const;

 private:
  std::vector<std::string> vocabulary_;
  int64_t dim_;
  uint64_t seed_;
  std::vector<float> table_;  // V x dim
};

}  // namespace tse::models
