// Weights I/O: load and save of a 128 MiB safetensors file (16 f32 tensors of [2048, 1024]),
// the size class of a CLAPSep checkpoint. The file sits in the page cache after the first run,
// so this times our path (mmap + header validation + copy into aligned tensors; temp file +
// write + fsync + rename) against the raw syscalls doing the same bytes:
//   load peer: one read(2) of the whole file into a reused buffer;
//   save peer: open, write(2) of the same header and data, fsync, close, rename.
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "bench.hpp"

namespace {

using namespace tse;
using bench::Bench;

constexpr int64_t kTensors = 16, kRows = 2048, kCols = 1024;
constexpr double kBytes = double(kTensors) * kRows * kCols * 4;

/// A folder for the bench files, removed when the process exits.
const std::filesystem::path& bench_dir() {
  struct Dir {
    std::filesystem::path path = std::filesystem::temp_directory_path() /
                                 ("tse-bench-io-" + std::to_string(::getpid()));
    Dir() { std::filesystem::create_directories(path); }
    ~Dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static const Dir dir;
  return dir.path;
}

std::vector<std::pair<std::string, Tensor>> weights() {
  std::vector<std::pair<std::string, Tensor>> w;
  for (int64_t i = 0; i < kTensors; ++i)
    w.emplace_back("layers." + std::to_string(i) + ".weight",
                   bench::uniform({kRows, kCols}, -1.f, 1.f, static_cast<uint64_t>(100 + i)));
  return w;
}

std::string read_all(const std::string& path) {
  std::string s(std::filesystem::file_size(path), '\0');
  const int fd = ::open(path.c_str(), O_RDONLY);
  size_t got = 0;
  while (got < s.size()) {
    const ssize_t r = ::read(fd, s.data() + got, s.size() - got);
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  ::close(fd);
  TSE_CHECK(got == s.size(), "bench io: short read of ", path);
  return s;
}

Bench load_case() {
  const std::string path = (bench_dir() / "load.safetensors").string();
  io::save_safetensors(path, weights());
  const std::string last = "layers." + std::to_string(kTensors - 1) + ".weight";
  const io::TensorInfo info = io::SafetensorsFile::open(path).info(last);
  auto buf = std::make_shared<std::string>(read_all(path));
  auto out = bench::buffer(kRows * kCols);
  return {[=] { return io::load_safetensors(path).at(last); },
          [=](int) {
            const int fd = ::open(path.c_str(), O_RDONLY);
            size_t got = 0;
            while (got < buf->size()) {
              const ssize_t r = ::read(fd, buf->data() + got, buf->size() - got);
              if (r <= 0) break;
              got += static_cast<size_t>(r);
            }
            ::close(fd);
            std::memcpy(out->data(), buf->data() + info.file_offset, info.end - info.begin);
          },
          out};
}

// ours and the peer both return the size of the file they wrote minus the data (8 + N, exact in
// f32): equal values mean our file is the header plus the data and nothing else (its bytes are
// checked by the tests).
Bench save_case() {
  const std::string ours_path = (bench_dir() / "save.safetensors").string();
  const std::string peer_path = (bench_dir() / "peer.safetensors").string();
  const auto w = std::make_shared<std::vector<std::pair<std::string, Tensor>>>(weights());
  io::save_safetensors(ours_path, *w);
  const std::string file = read_all(ours_path);
  const size_t prefix = file.size() - static_cast<size_t>(kBytes);  // 8 + N
  auto head = std::make_shared<std::string>(file.substr(0, prefix));
  auto out = bench::buffer(1);
  return {[=] {
            io::save_safetensors(ours_path, *w);
            return ops::full({1}, static_cast<double>(std::filesystem::file_size(ours_path)) - kBytes);
          },
          [=](int) {
            const std::string tmp = peer_path + ".tmp";
            const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            auto put = [fd](const char* p, size_t n) {
              while (n > 0) {
                const ssize_t r = ::write(fd, p, n);
                if (r <= 0) return;
                p += r;
                n -= static_cast<size_t>(r);
              }
            };
            put(head->data(), head->size());
            for (const auto& [name, t] : *w) put(static_cast<const char*>(t.data_ptr()), t.numel() * 4);
            ::fsync(fd);
            ::close(fd);
            std::rename(tmp.c_str(), peer_path.c_str());
            (*out)[0] = static_cast<float>(static_cast<double>(std::filesystem::file_size(peer_path)) - kBytes);
          },
          out};
}

const bool registered = [] {
  const std::string shape = "16 x [2048, 1024] f32, 128 MiB";
  bench::add({.name = "io.load_safetensors", .shape = shape, .tags = {"long"}, .bytes = kBytes, .rtol = 0,
              .atol = 1e-6, .setup = load_case});
  bench::add({.name = "io.save_safetensors", .shape = shape, .tags = {"long"}, .bytes = kBytes, .rtol = 0,
              .atol = 1.0, .setup = save_case});
  return true;
}();

}  // namespace
