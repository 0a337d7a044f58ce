#pragma once
/// \file separator.hpp
/// What every query-conditioned extractor offers the Trainer, the evaluation tools and the
/// high-level separation helpers: a differentiable forward on batched waveforms at the model's
/// sample rate, an inference call, and self-describing checkpoints.
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "tse/nn/module.hpp"

namespace tse::models {

class TSE_API Separator : public nn::Module {
 public:
  /// mixture (B, L) at sample_rate(), query (B, query_dim()) or (1, query_dim()) -> estimate
  /// (B, L). Differentiable in the parameters.
  virtual Tensor forward(const Tensor& mixture, const Tensor& query) = 0;
  /// Eval mode, no gradients; mixture (L) or (B, L), query (D) or (B, D); restores the mode.
  virtual Tensor separate(const Tensor& mixture, const Tensor& query) = 0;
  virtual int64_t sample_rate() const = 0;
  virtual int64_t query_dim() const = 0;
  /// Whether the query can name what to remove (CLAPSep's negative queries).
  virtual bool supports_negative_queries() const { return false; }
  /// safetensors metadata that rebuilds this model (model type, config, format version, ...).
  virtual std::map<std::string, std::string> metadata() const = 0;
  /// Writes state_dict() and metadata() plus `extra_metadata` (e.g. "query_encoder", which
  /// must not override metadata() keys) to a safetensors file, atomically.
  virtual void save(const std::string& path, const std::map<std::string, std::string>& extra_metadata = {}) const;

 protected:
  /// separate()'s common part: forward() in eval mode without gradients on (L) / (B, L) audio and
  /// a (D) / (B, D) query, the result with the mixture's leading shape; the mode is restored.
  Tensor forward_in_eval(const Tensor& mixture, const Tensor& query);
};

/// How separate_chunked cuts long audio.
struct TSE_API ChunkOptions {
  double window_seconds = 10.0;  // CLAPSep's training clips; at most 10.24 s for CLAPSep
  double overlap_seconds = 1.0;  // consecutive windows share this much; 0 = butt-joined
  std::string crossfade = "hann";  // "hann" (sin^2 ramps) or "triangular" (linear ramps)
};
/// Called after each window with (windows done, windows in all).
using ProgressCallback = std::function<void(int64_t, int64_t)>;

/// Separates audio of any length with a bounded memory footprint: windows of window_seconds
/// (the last one aligned to the end), each run through model.separate() on its own, weighted
/// by a crossfade that ramps over the overlap (strictly positive, so every sample has weight)
/// and overlap-added with the summed weights divided out. An identity model gives the input
/// back to rounding. mixture (L) or (B, L) at the model's rate, query as for separate(); audio
/// no longer than one window is separated in one piece. ValueError for bad options or input.
TSE_API Tensor separate_chunked(Separator& model, const Tensor& mixture, const Tensor& query,
                                const ChunkOptions& options = {}, const ProgressCallback& progress = nullptr);

/// A file written by Separator::save, checked to hold `model_type` at `format_version`.
struct ModelFile {
  std::string config;  // the "config" metadata (JSON)
  nn::NamedTensors state;
  std::map<std::string, std::string> metadata;
};
/// ValueError when the file holds another model type or format version or lacks the metadata;
/// IOError / RuntimeError from the reader for missing or corrupt files.
TSE_API ModelFile read_model_file(const std::string& path, const std::string& model_type,
                                  const std::string& format_version);

class QueryEncoder;

/// A model and its query encoder, rebuilt from a file written by Separator::save.
struct LoadedSeparator {
  std::shared_ptr<Separator> model;
  std::shared_ptr<QueryEncoder> queries;  // null when the file names none
  std::map<std::string, std::string> metadata;
};
/// Reads the model type from the file's metadata ("model_type") and loads it strictly.
/// IOError for a missing or unreadable file, RuntimeError for a corrupt one, ValueError for an
/// unknown model type or tensors that do not fit.
TSE_API LoadedSeparator load_separator(const std::string& path, DType dtype = DType::f32);

/// Separates user audio at any rate and channel count: audio (L) or (C, L) at sample_rate is
/// resampled to the model's rate (libsoxr high quality) when the rates differ, each channel is
/// separated with the same query (D) or (1, D), and the estimate is resampled back and trimmed
/// to the input length: the result has the input's shape and rate. ValueError for empty audio,
/// NaN/Inf samples, a non-positive rate or a query of the wrong size.
TSE_API Tensor separate_waveform(Separator& model, const Tensor& audio, int64_t sample_rate, const Tensor& query);

}  // namespace tse::models
