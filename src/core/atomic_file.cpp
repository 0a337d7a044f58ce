#include "src/core/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "tse/core/error.hpp"

namespace tse::detail {

namespace {
std::atomic<unsigned> g_counter{0};
}

AtomicFile::AtomicFile(const std::string& dest, std::string who) : dest_(dest), who_(std::move(who)) {
  const std::filesystem::path d(dest);
  if (d.filename().empty()) throw IOError(str_cat(who_, ": cannot write '", dest, "': not a file name"));
  // A hidden, unique name in the same folder. O_EXCL instead of mkstemp: mode 0666 & ~umask
  // gives the new file the permissions any other file written here would get (mkstemp's 0600
  // would survive the rename).
  for (int attempt = 0; fd_ < 0; ++attempt) {
    // Appended piece by piece: GCC 12 warns falsely (-Wrestrict, its bug 105329) on "." + str.
    std::string name = ".";
    name += d.filename().string();
    name += ".tmp";
    name += std::to_string(::getpid());
    name += '.';
    name += std::to_string(g_counter.fetch_add(1));
    tmp_ = (d.parent_path() / name).string();
    fd_ = ::open(tmp_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd_ < 0 && (errno != EEXIST || attempt > 100))
      throw IOError(str_cat(who_, ": cannot write '", dest, "': creating a temporary file in its folder failed: ",
                            std::strerror(errno)));
  }
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_.c_str());
}

void AtomicFile::fail(const std::string& what, int err) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  ::unlink(tmp_.c_str());
  committed_ = true;  // nothing left for the destructor to clean up
  throw IOError(str_cat(who_, ": writing '", dest_, "' failed: ", what, ": ", std::strerror(err),
                        " (the destination was left unchanged)"));
}

void AtomicFile::write(const void* data, size_t n) {
  TSE_ASSERT(fd_ >= 0 && !committed_, "AtomicFile::write after commit or failure");
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    // Linux transfers at most ~2 GiB per write(2) call.
    const ssize_t w = ::write(fd_, p, n < (size_t{1} << 30) ? n : (size_t{1} << 30));
    if (w < 0) {
      if (errno == EINTR) continue;
      fail("write", errno);
    }
    if (w == 0) fail("write", EIO);
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void AtomicFile::commit() {
  TSE_ASSERT(fd_ >= 0 && !committed_, "AtomicFile::commit twice or after a failure");
  if (::fsync(fd_) != 0) fail("fsync", errno);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail("close", errno);
  if (::rename(tmp_.c_str(), dest_.c_str()) != 0) fail(str_cat("rename to '", dest_, "'"), errno);
  committed_ = true;
  // Durability of the rename itself: fsync the folder. The new file is in place already, so a
  // failure here is reported but there is nothing to undo.
  std::filesystem::path dir = std::filesystem::path(dest_).parent_path();
  if (dir.empty()) dir = ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return;  // a folder we may write into but not open for reading: nothing to sync
  const int rc = ::fsync(dfd);
  const int err = errno;
  ::close(dfd);
  // EINVAL: the file system does not support syncing a folder (some FUSE / network mounts).
  if (rc != 0 && err != EINVAL)
    throw IOError(str_cat(who_, ": '", dest_, "' was written, but syncing its folder failed: ", std::strerror(err)));
}

}  // namespace tse::detail
