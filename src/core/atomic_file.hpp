#pragma once
// AtomicFile: writes a file so that readers see the old contents or the new, never a mix.
// The bytes go to a temp file in the destination's folder (rename is atomic only within one file
// system), which commit() fsyncs, renames over the destination and follows with an fsync of the
// folder: rename alone is atomic but not durable, and a power loss can leave a correctly named,
// zero-filled file. Until commit() succeeds the destination is untouched, and the destructor
// removes the temp file of a write that failed or was abandoned. Used by audio::save and
// io::save_safetensors. Private to libtse (not installed).
#include <cstddef>
#include <string>

namespace tse::detail {

class AtomicFile {
 public:
  /// Creates the temp file next to dest; `who` prefixes error messages ("audio.save").
  AtomicFile(const std::string& dest, std::string who);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  /// The temp file's descriptor, open read-write (libsndfile seeks back and may read what it
  /// wrote: sf_open_fd).
  int fd() const { return fd_; }
  const std::string& temp_path() const { return tmp_; }
  /// Writes all n bytes (retrying short writes and EINTR); IOError naming the destination.
  void write(const void* data, size_t n);
  /// fsync, close, rename over the destination, fsync the folder. IOError on failure (the temp
  /// file is removed, the destination keeps its old contents).
  void commit();

 private:
  [[noreturn]] void fail(const std::string& what, int err);
  std::string dest_, tmp_, who_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace tse::detail
