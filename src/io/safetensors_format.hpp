#pragma once
// The safetensors container format, as pure functions over bytes: no files, no tensors, no libtse
// beyond tse::Error, so the fuzz target (tests/fuzz) compiles this translation unit alone.
//
// Layout: an 8-byte little-endian u64 N, N bytes of UTF-8 JSON (starting with '{', possibly
// padded with spaces), then the data section. The JSON maps each tensor name to
// {"dtype", "shape", "data_offsets": [BEGIN, END]} (offsets relative to the data section) and may
// hold "__metadata__", a string -> string map. parse_safetensors_header implements every check of
// the reference reader (huggingface/safetensors, src/tensor.rs; see USERS.md s.3.2) plus caps on
// the tensor count and name length; each failure is an IOError naming the source and the rule.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace tse::io::detail {

inline constexpr uint64_t kMaxHeaderSize = 100'000'000;  // the reference's MAX_HEADER_SIZE
inline constexpr size_t kMaxTensors = 1'000'000;
inline constexpr size_t kMaxNameBytes = 4096;
inline constexpr int kMaxJsonDepth = 64;  // a valid header nests 3 deep (root, entry, shape)

/// A dtype name of the format and its width in bits (F4 is 4, F6_* are 6).
struct FormatDType {
  const char* name;
  uint32_t bits;
};
/// Every dtype the format defines; nullptr for an unknown name.
const FormatDType* find_format_dtype(std::string_view name);

/// One header entry. shape[i] <= INT64_MAX and the element count fits int64; begin/end are
/// relative to the data section.
struct TensorEntry {
  std::string name;
  std::string dtype;  // the format's name: "F32", "BF16", "F8_E4M3", ...
  uint32_t bits = 0;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
};

struct Header {
  uint64_t header_size = 0;  // N
  uint64_t data_start = 0;   // 8 + N: where the data section starts in the file
  uint64_t data_size = 0;    // bytes in the data section (= the last END)
  std::vector<TensorEntry> tensors;  // in data order: sorted by (begin, end), then header order
  std::map<std::string, std::string> metadata;
};

/// Parses and validates the header of a whole safetensors file held in data[0, size). Reads only
/// the first 8 + N bytes, but size must be the full file size (the data section must be covered
/// exactly). `source` names the file in error messages. Throws tse::IOError.
Header parse_safetensors_header(const uint8_t* data, size_t size, std::string_view source = "<buffer>");

/// True when s is well-formed UTF-8 (no overlong forms, surrogates or code points > U+10FFFF).
bool is_valid_utf8(std::string_view s);

/// The header bytes (N of them, N a multiple of 8, space-padded) for tensors already placed in
/// data order with contiguous offsets from 0. The caller checked names and metadata.
std::string serialize_safetensors_header(const std::vector<TensorEntry>& tensors,
                                         const std::map<std::string, std::string>& metadata);

}  // namespace tse::io::detail
