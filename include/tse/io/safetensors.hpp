#pragma once
/// \file safetensors.hpp
/// Weights in the safetensors format (huggingface/safetensors): read through mmap with every
/// check of the reference reader, written atomically (temp file, fsync, rename, fsync folder).
///
/// A file is an 8-byte little-endian header length N, N bytes of JSON naming each tensor's
/// dtype, shape and byte range, then the raw little-endian C-order data. Loading never executes
/// anything, and tensors are allocated only for bytes the file really holds (twice that for F16 /
/// BF16 widened to f32): malformed, truncated, overlapping or padded-with-extra-bytes files are
/// rejected with an IOError naming the file and the rule, before any tensor is allocated.
/// Values are not checked (NaN/Inf load as they are).
///
/// \code
///   io::save_safetensors("w.safetensors", {{"linear.weight", w}, {"linear.bias", b}},
///                        {{"format", "libtse-v1"}});
///   std::map<std::string, Tensor> sd = io::load_safetensors("w.safetensors");
/// \endcode
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tse/core/tensor.hpp"

namespace tse::io {

struct LoadOptions {
  /// F16 and BF16 tensors become f32 (exactly: every half and bfloat16 value is an f32 value).
  /// Off: they load as f16 / bf16 storage tensors.
  bool half_to_f32 = false;
};

/// What the header says about one tensor.
struct TensorInfo {
  std::string dtype;  ///< the format's dtype name: "F32", "BF16", "I64", "BOOL", "F8_E4M3", ...
  Shape shape;        ///< [] for a scalar
  uint64_t begin = 0, end = 0;  ///< byte range [begin, end) relative to the data section
  uint64_t file_offset = 0;     ///< where begin lies in the file (data section start + begin)
  /// The libtse dtype it loads as, or nullopt for dtypes a Tensor cannot hold (U8, I8, I16, U16,
  /// U32, U64, C64, F8_*, F4, F6_*): tensor() on those throws NotImplementedError.
  std::optional<DType> tse_dtype;
};

/// An open, validated safetensors file: the header is parsed once, tensors are copied out of the
/// mapping on request, so a model can load only what it needs. Cheap to copy (shared handle);
/// the file stays mapped until the last copy goes. Safe to read from several threads.
class TSE_API SafetensorsFile {
 public:
  /// Maps and validates path; IOError (naming the file and the rule) when it is not a valid file.
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const;
  /// Tensor names in file (data) order.
  const std::vector<std::string>& names() const;
  bool contains(const std::string& name) const;
  /// The __metadata__ map (empty when absent).
  const std::map<std::string, std::string>& metadata() const;
  /// IndexError listing a few names when the file has no tensor `name`.
  TensorInfo info(const std::string& name) const;
  /// A fresh contiguous CPU tensor holding a copy of the tensor's bytes (see LoadOptions for F16
  /// / BF16). NotImplementedError for dtypes a Tensor cannot hold; IOError for a BOOL byte other
  /// than 0 or 1.
  Tensor tensor(const std::string& name, bool half_to_f32 = false) const;
  /// Bytes in the file.
  uint64_t file_size() const;

 private:
  struct Impl;
  explicit SafetensorsFile(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

/// Every tensor of a file, by name (see SafetensorsFile::tensor).
TSE_API std::map<std::string, Tensor> load_safetensors(const std::string& path, const LoadOptions& options = {});

/// Only the __metadata__ map; the data section is validated but not read.
TSE_API std::map<std::string, std::string> load_safetensors_metadata(const std::string& path);

/// Writes tensors (any shape incl. [] and empty; any libtse dtype; CPU; views are written
/// contiguous) and string metadata atomically: the target keeps its old contents unless the whole
/// write succeeded, and no temp file is left behind. ValueError for empty, duplicate, over-long
/// (> 4096 bytes) or non-UTF-8 names, the reserved name "__metadata__", undefined or non-CPU
/// tensors, each naming the tensor; IOError for file-system failures.
///
/// The data is laid out as the reference writer does it: tensors sorted by element size
/// (largest first, input order kept within a size), so each one starts at a multiple of its
/// element size in the file; header padded with spaces to a multiple of 8 bytes.
TSE_API void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                              const std::map<std::string, std::string>& metadata = {});
TSE_API void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                              const std::map<std::string, std::string>& metadata = {});
/// save_safetensors(path, {{"w", w}, {"b", b}}): a braced list keeps its order (as the vector).
inline void save_safetensors(const std::string& path, std::initializer_list<std::pair<std::string, Tensor>> tensors,
                             const std::map<std::string, std::string>& metadata = {}) {
  save_safetensors(path, std::vector<std::pair<std::string, Tensor>>(tensors), metadata);
}

}  // namespace tse::io
