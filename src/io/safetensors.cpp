// safetensors files: mmap + validate (safetensors_format.cpp) + copy out; atomic writer.
#include "tse/io/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <set>
#include <unordered_map>

#include "src/core/atomic_file.hpp"
#include "src/io/safetensors_format.hpp"
#include "tse/core/error.hpp"

namespace tse::io {

// The format is little-endian and tensors are copied byte for byte.
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

namespace {

using tse::detail::str_cat;

constexpr const char* kSupported = "F32, F64, F16, BF16, I32, I64, BOOL";

std::optional<DType> tse_dtype_of(const std::string& name) {
  if (name == "F32") return DType::f32;
  if (name == "F64") return DType::f64;
  if (name == "F16") return DType::f16;
  if (name == "BF16") return DType::bf16;
  if (name == "I32") return DType::i32;
  if (name == "I64") return DType::i64;
  if (name == "BOOL") return DType::b8;
  return std::nullopt;
}

const char* format_name(DType t) {
  switch (t) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::f16: return "F16";
    case DType::bf16: return "BF16";
    case DType::i32: return "I32";
    case DType::i64: return "I64";
    case DType::b8: return "BOOL";
  }
  return "?";
}

}  // namespace

// Tensors are copied out of the mapping into our own (64-byte aligned, caching) allocations and
// never alias it, although Storage could wrap the mapping with a deleter. Zero copy would cost
// more than the one memcpy it saves (a fraction of the page-in time):
//   * the format aligns nothing: another writer's F32 tensor may start at an odd byte, and our
//     kernels (oneDNN, vector loops) expect element-aligned, ideally 64-byte-aligned data;
//   * a file truncated or rewritten while mapped turns a later read of a weight into SIGBUS, far
//     from the loader and with no way to report it (the library never aborts); with copies that
//     window is only the time the file is open;
//   * weights are updated in place by optimisers, and a model must not pin its checkpoint file.
struct SafetensorsFile::Impl {
  std::string path;
  const uint8_t* map = nullptr;  // the whole file, PROT_READ / MAP_PRIVATE
  size_t size = 0;
  io::detail::Header header;
  std::vector<std::string> names;
  std::unordered_map<std::string, size_t> index;  // name -> header.tensors[i]

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() {
    if (map && size) ::munmap(const_cast<uint8_t*>(map), size);
  }

  const io::detail::TensorEntry& entry(const std::string& name) const {
    const auto it = index.find(name);
    if (it == index.end()) {
      std::string some;
      for (size_t i = 0; i < names.size() && i < 5; ++i) some += (i ? ", '" : "'") + names[i] + "'";
      if (names.size() > 5) some += ", ...";
      throw IndexError(str_cat("safetensors: '", path, "' has no tensor '", name, "' (it holds ", names.size(),
                               " tensors", names.empty() ? "" : ": ", some, ")"));
    }
    return header.tensors[it->second];
  }
};

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  auto impl = std::make_shared<Impl>();
  impl->path = path;
  // O_NONBLOCK: opening a FIFO must not wait for a writer (fstat then rejects it).
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw IOError(str_cat("safetensors: cannot open '", path, "': ", std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    const bool dir = S_ISDIR(st.st_mode);
    ::close(fd);
    throw IOError(str_cat("safetensors: '", path, "' is ", dir ? "a directory" : "not a regular file"));
  }
  impl->size = static_cast<size_t>(st.st_size);
  static const uint8_t kNothing = 0;
  const uint8_t* bytes = &kNothing;  // mmap refuses length 0; the parser rejects < 8 bytes anyway
  if (impl->size > 0) {
    void* m = ::mmap(nullptr, impl->size, PROT_READ, MAP_PRIVATE, fd, 0);
    const int err = errno;
    ::close(fd);  // the mapping keeps the file open
    if (m == MAP_FAILED) throw IOError(str_cat("safetensors: cannot map '", path, "': ", std::strerror(err)));
    impl->map = static_cast<const uint8_t*>(m);
    bytes = impl->map;
  } else {
    ::close(fd);
  }
  impl->header = io::detail::parse_safetensors_header(bytes, impl->size, path);
  impl->names.reserve(impl->header.tensors.size());
  for (size_t i = 0; i < impl->header.tensors.size(); ++i) {
    impl->names.push_back(impl->header.tensors[i].name);
    impl->index.emplace(impl->header.tensors[i].name, i);
  }
  return SafetensorsFile(std::move(impl));
}

const std::string& SafetensorsFile::path() const { return impl_->path; }
const std::vector<std::string>& SafetensorsFile::names() const { return impl_->names; }
bool SafetensorsFile::contains(const std::string& name) const { return impl_->index.count(name) != 0; }
const std::map<std::string, std::string>& SafetensorsFile::metadata() const { return impl_->header.metadata; }
uint64_t SafetensorsFile::file_size() const { return impl_->size; }

TensorInfo SafetensorsFile::info(const std::string& name) const {
  const io::detail::TensorEntry& e = impl_->entry(name);
  TensorInfo i;
  i.dtype = e.dtype;
  i.shape = e.shape;
  i.begin = e.begin;
  i.end = e.end;
  i.file_offset = impl_->header.data_start + e.begin;
  i.tse_dtype = tse_dtype_of(e.dtype);
  return i;
}

Tensor SafetensorsFile::tensor(const std::string& name, bool half_to_f32) const {
  const io::detail::TensorEntry& e = impl_->entry(name);
  const std::optional<DType> dt = tse_dtype_of(e.dtype);
  if (!dt)
    throw NotImplementedError(str_cat("safetensors: '", impl_->path, "': tensor '", name, "' has dtype ", e.dtype,
                                      ", which libtse tensors cannot hold (supported: ", kSupported, ")"));
  const uint8_t* src = impl_->map + impl_->header.data_start + e.begin;
  const size_t nbytes = e.end - e.begin;
  if (nbytes > 0) {
    // Start reading the pages in now rather than one fault at a time.
    const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    const uintptr_t lo = reinterpret_cast<uintptr_t>(src) & ~(page - 1);
    ::madvise(reinterpret_cast<void*>(lo), reinterpret_cast<uintptr_t>(src) + nbytes - lo, MADV_WILLNEED);
  }
  const bool widen = half_to_f32 && (*dt == DType::f16 || *dt == DType::bf16);
  Tensor out = Tensor::empty(e.shape, widen ? DType::f32 : *dt);
  const int64_t n = out.numel();
  if (widen) {
    float* o = out.data<float>();
    for (int64_t i = 0; i < n; ++i) {
      uint16_t bits;
      std::memcpy(&bits, src + 2 * i, 2);  // unaligned in general
      if (*dt == DType::f16) {
        Half h;
        h.bits = bits;
        o[i] = static_cast<float>(h);
      } else {
        BFloat16 h;
        h.bits = bits;
        o[i] = static_cast<float>(h);
      }
    }
    return out;
  }
  if (*dt == DType::b8) {
    // A bool byte other than 0/1 is undefined behaviour once read as bool.
    for (size_t i = 0; i < nbytes; ++i)
      if (src[i] > 1)
        throw IOError(str_cat("safetensors: '", impl_->path, "': BOOL tensor '", name, "' holds the byte ",
                              int{src[i]}, " at element ", i, " (only 0 and 1 are booleans)"));
  }
  if (nbytes > 0) std::memcpy(out.data_ptr(), src, nbytes);
  return out;
}

std::map<std::string, Tensor> load_safetensors(const std::string& path, const LoadOptions& options) {
  const SafetensorsFile f = SafetensorsFile::open(path);
  std::map<std::string, Tensor> out;
  for (const std::string& name : f.names()) out.emplace(name, f.tensor(name, options.half_to_f32));
  return out;
}

std::map<std::string, std::string> load_safetensors_metadata(const std::string& path) {
  return SafetensorsFile::open(path).metadata();
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  const char* fn = "save_safetensors";
  TSE_CHECK(tensors.size() <= io::detail::kMaxTensors, fn, ": ", tensors.size(), " tensors exceed the limit of ",
            io::detail::kMaxTensors, " a file may hold");
  std::set<std::string> seen;
  struct Item {
    const std::string* name;
    Tensor t;  // contiguous, detached
  };
  std::vector<Item> items;
  items.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    TSE_CHECK(!name.empty(), fn, ": a tensor name is empty");
    TSE_CHECK(name != "__metadata__", fn, ": '__metadata__' is reserved for the metadata map and cannot name a tensor");
    TSE_CHECK(name.size() <= io::detail::kMaxNameBytes, fn, ": tensor name '", name.substr(0, 64), "...' is ",
              name.size(), " bytes long (limit ", io::detail::kMaxNameBytes, ")");
    TSE_CHECK(io::detail::is_valid_utf8(name), fn, ": tensor name '", name, "' is not valid UTF-8");
    TSE_CHECK(seen.insert(name).second, fn, ": tensor name '", name, "' appears twice");
    TSE_CHECK(t.defined(), fn, ": tensor '", name, "' is undefined");
    TSE_CHECK(t.device().is_cpu(), fn, ": tensor '", name, "' is on ", t.device().str(),
              "; move it to the CPU first (.to(Device::cpu()))");
    items.push_back({&name, t.detach().contiguous()});
  }
  for (const auto& [k, v] : metadata) {
    TSE_CHECK(io::detail::is_valid_utf8(k), fn, ": metadata key '", k, "' is not valid UTF-8");
    TSE_CHECK(io::detail::is_valid_utf8(v), fn, ": the metadata value of '", k, "' is not valid UTF-8");
  }
  // The reference layout: largest elements first, so that every tensor starts at a multiple of
  // its element size (the data section starts at a multiple of 8); input order within a size.
  std::stable_sort(items.begin(), items.end(),
                   [](const Item& a, const Item& b) { return a.t.itemsize() > b.t.itemsize(); });
  std::vector<io::detail::TensorEntry> entries(items.size());
  uint64_t offset = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    io::detail::TensorEntry& e = entries[i];
    e.name = *items[i].name;
    e.dtype = format_name(items[i].t.dtype());
    e.shape = items[i].t.sizes();
    e.begin = offset;
    offset += static_cast<uint64_t>(items[i].t.numel()) * items[i].t.itemsize();
    e.end = offset;
  }
  const std::string header = io::detail::serialize_safetensors_header(entries, metadata);
  TSE_CHECK(header.size() <= io::detail::kMaxHeaderSize, fn, ": the header would be ", header.size(),
            " bytes, over the ", io::detail::kMaxHeaderSize, "-byte limit readers enforce");

  tse::detail::AtomicFile out(path, fn);
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(header.size()) >> (8 * i));
  // Small tensors are gathered into one buffer: one write(2) per bias vector would dominate.
  std::string buf(reinterpret_cast<const char*>(len), 8);
  buf += header;
  constexpr size_t kDirect = size_t{1} << 20;
  for (const Item& it : items) {
    const size_t nbytes = static_cast<size_t>(it.t.numel()) * it.t.itemsize();
    if (nbytes == 0) continue;
    const char* p = static_cast<const char*>(it.t.data_ptr());
    if (nbytes >= kDirect) {
      out.write(buf.data(), buf.size());
      buf.clear();
      out.write(p, nbytes);
    } else {
      buf.append(p, nbytes);
      if (buf.size() >= kDirect) {
        out.write(buf.data(), buf.size());
        buf.clear();
      }
    }
  }
  out.write(buf.data(), buf.size());
  out.commit();
}

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  save_safetensors(path, std::vector<std::pair<std::string, Tensor>>(tensors.begin(), tensors.end()), metadata);
}

}  // namespace tse::io
