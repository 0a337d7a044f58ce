// The safetensors header parser/validator and writer: pure functions over bytes (see the header).
// Depends only on nlohmann-json and tse::Error (both header-only here), so that
// tests/fuzz/fuzz_safetensors.cpp links this file alone.
#include "src/io/safetensors_format.hpp"

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "tse/core/error.hpp"

namespace tse::io::detail {
namespace {

using tse::detail::str_cat;
using json = nlohmann::json;

constexpr FormatDType kDTypes[] = {
    {"BOOL", 8},     {"U8", 8},          {"I8", 8},          {"I16", 16},     {"U16", 16},         {"F16", 16},
    {"BF16", 16},    {"I32", 32},        {"U32", 32},        {"F32", 32},     {"F64", 64},         {"I64", 64},
    {"U64", 64},     {"C64", 64},        {"F8_E5M2", 8},     {"F8_E4M3", 8},  {"F8_E8M0", 8},      {"F8_E4M3FNUZ", 8},
    {"F8_E5M2FNUZ", 8}, {"F4", 4},       {"F6_E2M3", 6},     {"F6_E3M2", 6},
};

/// Throws the one error type of this file: IOError "safetensors: '<source>': <what>".
template <typename... A>
[[noreturn]] void bad(std::string_view source, const A&... what) {
  throw IOError(str_cat("safetensors: '", source, "': ", what...));
}

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

/// JSON text for a name in messages (escapes quotes and control bytes; never throws).
std::string quoted(const std::string& s) {
  std::string o = "'";
  for (unsigned char c : s.substr(0, 200)) {
    if (c < 0x20 || c == 0x7f) {
      o += str_cat("\\x", "0123456789abcdef"[c >> 4], "0123456789abcdef"[c & 15]);
    } else {
      o += static_cast<char>(c);
    }
  }
  return o + (s.size() > 200 ? "...'" : "'");
}

/// A non-negative JSON integer (nlohmann keeps those as number_unsigned; a minus sign, a fraction
/// or an exponent makes it number_integer / number_float).
bool is_count(const json& v) { return v.is_number_unsigned(); }

TensorEntry parse_entry(const std::string& name, const json& v, std::string_view source) {
  const std::string n = quoted(name);
  if (!v.is_object()) bad(source, "the entry of tensor ", n, " is not a JSON object");
  for (const auto& [key, _] : v.items())
    if (key != "dtype" && key != "shape" && key != "data_offsets")
      bad(source, "tensor ", n, " has an unexpected field ", quoted(key),
          " (an entry holds exactly dtype, shape and data_offsets)");
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!v.contains(key)) bad(source, "tensor ", n, " has no '", key, "' field");

  TensorEntry e;
  e.name = name;
  const json& dt = v["dtype"];
  if (!dt.is_string()) bad(source, "tensor ", n, ": dtype must be a string, got ", dt.type_name());
  const FormatDType* fd = find_format_dtype(dt.get_ref<const std::string&>());
  if (!fd) bad(source, "tensor ", n, " has an unknown dtype ", quoted(dt.get_ref<const std::string&>()));
  e.dtype = fd->name;
  e.bits = fd->bits;

  const json& shape = v["shape"];
  if (!shape.is_array()) bad(source, "tensor ", n, ": shape must be an array, got ", shape.type_name());
  uint64_t numel = 1;
  for (const json& d : shape) {
    if (!is_count(d))
      bad(source, "tensor ", n, ": shape entries must be non-negative integers, got ", d.dump());
    const uint64_t s = d.get<uint64_t>();
    if (s > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      bad(source, "tensor ", n, ": shape entry ", s, " is too large");
    if (__builtin_mul_overflow(numel, s, &numel))
      bad(source, "tensor ", n, ": the element count of shape ", shape.dump(), " overflows 64 bits");
    e.shape.push_back(static_cast<int64_t>(s));
  }
  if (numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    bad(source, "tensor ", n, ": the element count of shape ", shape.dump(), " is too large");

  const json& off = v["data_offsets"];
  if (!off.is_array() || off.size() != 2 || !is_count(off[0]) || !is_count(off[1]))
    bad(source, "tensor ", n, ": data_offsets must be [BEGIN, END] (non-negative integers), got ", off.dump());
  e.begin = off[0].get<uint64_t>();
  e.end = off[1].get<uint64_t>();
  if (e.end < e.begin) bad(source, "tensor ", n, ": data_offsets [", e.begin, ", ", e.end, "] end before they begin");

  uint64_t bits = 0;
  if (__builtin_mul_overflow(numel, uint64_t{fd->bits}, &bits))
    bad(source, "tensor ", n, ": the byte size of ", fd->name, " shape ", shape.dump(), " overflows 64 bits");
  if (bits % 8 != 0)
    bad(source, "tensor ", n, ": ", numel, " elements of ", fd->name, " (", fd->bits, " bits) do not fill whole bytes");
  if (bits / 8 != e.end - e.begin)
    bad(source, "tensor ", n, ": ", fd->name, " shape ", shape.dump(), " needs ", bits / 8,
        " bytes, but data_offsets [", e.begin, ", ", e.end, "] hold ", e.end - e.begin);
  return e;
}

}  // namespace

const FormatDType* find_format_dtype(std::string_view name) {
  for (const FormatDType& d : kDTypes)
    if (name == d.name) return &d;
  return nullptr;
}

bool is_valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp, min;
    if ((c & 0xe0) == 0xc0) {
      len = 2, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return false;  // a continuation byte first, or 0xf8..0xff
    }
    if (n - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

Header parse_safetensors_header(const uint8_t* data, size_t size, std::string_view source) {
  if (size < 8) bad(source, "the file holds ", size, " bytes, less than the 8-byte header length");
  Header h;
  h.header_size = read_u64_le(data);
  if (h.header_size > kMaxHeaderSize)
    bad(source, "the header length ", h.header_size, " exceeds the limit of ", kMaxHeaderSize, " bytes");
  // Checked: header_size <= 1e8, so 8 + header_size cannot wrap.
  if (h.header_size > size - 8)
    bad(source, "the header length ", h.header_size, " runs past the end of the file (", size, " bytes)");
  h.data_start = 8 + h.header_size;
  h.data_size = size - h.data_start;

  const std::string_view text(reinterpret_cast<const char*>(data + 8), h.header_size);
  if (!is_valid_utf8(text)) bad(source, "the header is not valid UTF-8");
  if (text.empty() || text[0] != '{') bad(source, "the header must be a JSON object starting with '{'");

  // nlohmann keeps the last of duplicate keys; the format forbids them (they let two readers see
  // two different files), so one set of keys per open object catches them while parsing.
  std::vector<std::set<std::string>> open_keys;
  const json::parser_callback_t track = [&](int depth, json::parse_event_t ev, json& parsed) {
    switch (ev) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (depth >= kMaxJsonDepth) bad(source, "the header nests deeper than ", kMaxJsonDepth, " levels");
        if (ev == json::parse_event_t::object_start) open_keys.emplace_back();
        break;
      case json::parse_event_t::object_end:
        open_keys.pop_back();
        break;
      case json::parse_event_t::key:
        if (!open_keys.back().insert(parsed.get_ref<const std::string&>()).second)
          bad(source, "the header holds the key ", quoted(parsed.get_ref<const std::string&>()), " twice");
        if (open_keys.size() == 1 && open_keys.back().size() > kMaxTensors + 1)  // the root's keys
          bad(source, "the header holds more than ", kMaxTensors, " tensors");
        break;
      default:
        break;
    }
    return true;
  };
  json root;
  try {
    root = json::parse(text.begin(), text.end(), track);
  } catch (const json::exception& e) {
    bad(source, "the header is not valid JSON: ", e.what());
  }
  if (!root.is_object()) bad(source, "the header must be a JSON object");

  for (const auto& [name, value] : root.items()) {
    if (name == "__metadata__") {
      if (!value.is_object()) bad(source, "__metadata__ must be an object of strings, got ", value.type_name());
      for (const auto& [k, v] : value.items()) {
        if (!v.is_string())
          bad(source, "__metadata__ value of ", quoted(k), " must be a string, got ", v.type_name());
        h.metadata.emplace(k, v.get<std::string>());
      }
      continue;
    }
    if (name.size() > kMaxNameBytes)
      bad(source, "tensor name ", quoted(name), " is ", name.size(), " bytes long (limit ", kMaxNameBytes, ")");
    h.tensors.push_back(parse_entry(name, value, source));
  }
  if (h.tensors.size() > kMaxTensors) bad(source, "the header holds more than ", kMaxTensors, " tensors");

  // Contiguous from 0, no holes, no overlap: each BEGIN is the previous END. Overlapping ranges
  // were once thought harmless and then shown to allow a small-file memory DoS.
  std::sort(h.tensors.begin(), h.tensors.end(), [](const TensorEntry& a, const TensorEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end != b.end ? a.end < b.end : a.name < b.name;
  });
  uint64_t expect = 0;
  const TensorEntry* prev = nullptr;
  for (const TensorEntry& e : h.tensors) {
    if (e.begin < expect)
      bad(source, "tensor ", quoted(e.name), " (bytes [", e.begin, ", ", e.end, ")) overlaps tensor ",
          quoted(prev->name), " (bytes [", prev->begin, ", ", prev->end, "))");
    if (e.begin > expect)
      bad(source, "bytes [", expect, ", ", e.begin, ") of the data section before tensor ", quoted(e.name),
          " belong to no tensor (tensors must be contiguous from 0)");
    expect = e.end;
    prev = &e;
  }
  // The whole file must be covered, so no second file can hide behind the tensors (polyglots).
  if (expect > h.data_size)
    bad(source, "tensor data ends at byte ", expect, " of the data section, past the end of the file (the data "
                "section holds ", h.data_size, " bytes; truncated?)");
  if (expect < h.data_size)
    bad(source, "the file holds ", h.data_size - expect, " trailing bytes after the last tensor");
  return h;
}

std::string serialize_safetensors_header(const std::vector<TensorEntry>& tensors,
                                         const std::map<std::string, std::string>& metadata) {
  // __metadata__ first, then the tensors in data order, as the reference writer emits them. The
  // tensors are appended by hand: the caller guarantees unique names, and an ordered_json object
  // would search its keys linearly on every insertion (quadratic for large state dicts).
  json root = json::object();
  if (!metadata.empty()) root["__metadata__"] = metadata;
  const std::string body = root.dump();  // "{}" or {"__metadata__":{...}}
  std::string out = body.substr(0, body.size() - 1);
  bool first = body.size() == 2;
  for (const TensorEntry& e : tensors) {
    nlohmann::ordered_json v = nlohmann::ordered_json::object();  // dtype, shape, data_offsets
    v["dtype"] = e.dtype;
    auto shape = nlohmann::ordered_json::array();
    for (int64_t s : e.shape) shape.push_back(static_cast<uint64_t>(s));
    v["shape"] = std::move(shape);
    v["data_offsets"] = {e.begin, e.end};
    if (!first) out += ',';
    first = false;
    out += json(e.name).dump();
    out += ':';
    out += v.dump();
  }
  out += '}';
  // Pad with spaces so that 8 + N, the start of the data section, is a multiple of 8.
  out.append((8 - out.size() % 8) % 8, ' ');
  return out;
}

}  // namespace tse::io::detail
