#include "tse/core/device.hpp"

#include <atomic>

#include "src/core/cuda_backend.hpp"
#include "tse/core/error.hpp"

namespace tse {

Device Device::parse(const std::string& s) {
  if (s == "cpu") return cpu();
  if (s == "cuda") return cuda(0);
  if (s.rfind("cuda:", 0) == 0) {
    const std::string idx = s.substr(5);
    TSE_CHECK(!idx.empty() && idx.find_first_not_of("0123456789") == std::string::npos,
              "Device: cannot parse '", s, "' (expected cpu, cuda or cuda:N)");
    return cuda(std::stoi(idx));
  }
  throw ValueError("Device: cannot parse '" + s + "' (expected cpu, cuda or cuda:N)");
}

bool cuda_built() {
#ifdef TSE_WITH_CUDA
  return true;
#else
  return false;
#endif
}

int cuda_device_count() { return cuda::device_count(); }
bool cuda_is_available() { return cuda_device_count() > 0; }

namespace {
std::atomic<bool> g_allow_tf32{false};
}  // namespace

void set_cuda_allow_tf32(bool on) { g_allow_tf32.store(on); }
bool cuda_allow_tf32() { return g_allow_tf32.load(); }

}  // namespace tse
