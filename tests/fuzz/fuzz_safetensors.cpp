// libFuzzer target: any byte string given to the safetensors header parser either parses or
// throws tse::IOError. Anything else (a crash, a sanitizer report, another exception type,
// which libFuzzer reports as a deadly signal) is a bug. A header that parses must also satisfy
// the format's invariants and survive a write/parse round trip.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "src/io/safetensors_format.hpp"
#include "tse/core/error.hpp"

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_safetensors: invariant broken: %s\n", what);
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tse::io::detail;
  Header h;
  try {
    h = parse_safetensors_header(data, size, "fuzz");
  } catch (const tse::IOError&) {
    return 0;
  }
  check(h.data_start == 8 + h.header_size && h.data_start + h.data_size == size, "sizes add up to the file");
  uint64_t at = 0;
  for (const TensorEntry& e : h.tensors) {
    check(e.begin == at && e.end >= e.begin, "tensors are contiguous from 0");
    uint64_t n = 1;
    for (int64_t s : e.shape) check(s >= 0 && !__builtin_mul_overflow(n, uint64_t(s), &n), "shape is valid");
    check(n * e.bits / 8 == e.end - e.begin, "size matches the shape");
    at = e.end;
  }
  check(at == h.data_size, "the data section is covered");

  // Round trip: our writer's header over the same data section parses to the same entries.
  const std::string header = serialize_safetensors_header(h.tensors, h.metadata);
  check(header.size() % 8 == 0, "the written header is padded to 8 bytes");
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i) file[i] = static_cast<char>(uint64_t(header.size()) >> (8 * i));
  file += header;
  file.append(reinterpret_cast<const char*>(data + h.data_start), h.data_size);
  const Header again = parse_safetensors_header(reinterpret_cast<const uint8_t*>(file.data()), file.size(), "rt");
  check(again.metadata == h.metadata && again.tensors.size() == h.tensors.size(), "round trip keeps the entries");
  for (size_t i = 0; i < h.tensors.size(); ++i) {
    const TensorEntry &a = h.tensors[i], &b = again.tensors[i];
    check(a.name == b.name && a.dtype == b.dtype && a.shape == b.shape && a.begin == b.begin && a.end == b.end,
          "round trip keeps each entry");
  }
  return 0;
}
