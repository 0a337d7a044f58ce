#pragma once
// tse-bench harness. benchdnn's rule: nothing is timed before it passes a correctness check.
//
// A case names one piece of work, states the bytes it must move and/or the flops it does, and
// builds its inputs in setup(). setup() returns two callables for the same work:
//   ours(): libtse through its public API only; returns the result;
//   peer(n): the "raw loops" peer, plain loops under `#pragma omp parallel for num_threads(n)`,
//            compiled with the library's ISA flags, writing its result into *expect.
// For each requested thread count the runner (bench_main.cpp) calls tse::set_num_threads(n),
// then:
//   1. gate: runs ours and peer(n) once and compares every element,
//      err = max |ours - peer| / (|peer| + atol); err > rtol (or NaN) prints FAIL with the repro
//      line, the case is not timed and the process exits non-zero;
//   2. times each side: warm-up, then samples until both --repeats samples and --min-time-ms
//      have passed; a sample batches enough calls to last well above the clock's resolution;
//   3. prints the median and min time per call, throughput over the median, the peer's median
//      and throughput, and ratio = peer time / ours time (> 1: libtse is faster).
#include <cstdint>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <tse/tse.hpp>

// glibc declares the libmvec variants of these only under -ffast-math. Declaring them here lets
// the peers' plain loops calling std::exp/std::tanh/std::erfc vectorise exactly as the library's
// kernels do (both call libmvec), without fast-math changing any other arithmetic.
extern "C" {
__attribute__((simd("notinbranch"))) float expf(float);
__attribute__((simd("notinbranch"))) float tanhf(float);
__attribute__((simd("notinbranch"))) float erfcf(float);
}

namespace tse::bench {

inline constexpr int64_t k4M = int64_t{4} << 20;

/// What a case's setup builds: the two sides of the comparison over the same inputs.
struct Bench {
  std::function<Tensor()> ours;
  std::function<void(int threads)> peer;
  std::shared_ptr<const std::vector<float>> expect;  // written by peer
};

struct Case {
  std::string name;                      // unique; --filter NAME selects it alone
  std::string shape;                     // as printed, e.g. "[4096, 1024] -> [4096]"
  std::vector<std::string> tags{"short"};  // "short" / "long"; "ref" rows print first
  double bytes = 0;                      // minimum traffic of the work (GB/s = bytes / median)
  double flops = 0;                      // used when bytes == 0
  double rtol = 1e-6;                    // gate: max |ours - peer| / (|peer| + atol) <= rtol
  double atol = 1e-6;
  bool time_peer = true;                 // false: the peer only checks (dispatch overhead rows)
  bool compare = true;                   // false: the peer does other work (a model vs its GEMMs);
                                         // the gate then only requires a finite result
  bool micros = false;                   // report times per call in microseconds
  std::function<std::string()> note{};   // printed under the row (e.g. peak RSS)
  std::function<Bench()> setup;
};

inline std::vector<Case>& registry() {
  static std::vector<Case> cases;
  return cases;
}

inline void add(Case c) { registry().push_back(std::move(c)); }

/// Deterministic uniform [lo, hi) f32 tensor (splitmix64), so every run times the same data.
inline Tensor uniform(const Shape& sizes, float lo, float hi, uint64_t seed) {
  Tensor t = Tensor::empty(sizes);
  float* p = t.data<float>();
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (int64_t i = 0, n = t.numel(); i < n; ++i) {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    p[i] = lo + (hi - lo) * static_cast<float>(z >> 40) * 0x1p-24f;
  }
  return t;
}

inline std::shared_ptr<std::vector<float>> buffer(int64_t n) {
  return std::make_shared<std::vector<float>>(static_cast<size_t>(n));
}

inline const float* cptr(const Tensor& t) { return t.data<float>(); }

}  // namespace tse::bench
