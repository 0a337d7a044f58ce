#include "tse/core/threading.hpp"

#include <omp.h>

#include <atomic>
#include <cstdlib>
#include <string>

#include "tse/core/error.hpp"

namespace tse {
namespace {

int initial_threads() {
  for (const char* var : {"TSE_NUM_THREADS", "OMP_NUM_THREADS"}) {
    if (const char* v = std::getenv(var)) {
      int n = std::atoi(v);
      if (n > 0) return n;
    }
  }
  return std::max(1, omp_get_num_procs());
}

std::atomic<int>& threads() {
  static std::atomic<int> n{initial_threads()};
  return n;
}

}  // namespace

void set_num_threads(int n) {
  TSE_CHECK(n >= 1, "set_num_threads: n must be >= 1, got ", n);
  threads().store(n);
  omp_set_num_threads(n);  // oneDNN and FFTW read the calling thread's OpenMP setting
}

int get_num_threads() { return threads().load(std::memory_order_relaxed); }

}  // namespace tse
