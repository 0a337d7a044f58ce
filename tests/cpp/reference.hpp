#pragma once
// Index helpers for the naive float64 references the tests are written against, and the
// thread-count invariance check of the parallel kernels.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "tse/tse.hpp"

namespace tse::test {

/// Row-major multi-index of linear index flat in sizes.
inline std::vector<int64_t> unravel(int64_t flat, const Shape& sizes) {
  std::vector<int64_t> idx(sizes.size());
  for (int64_t d = static_cast<int64_t>(sizes.size()) - 1; d >= 0; --d) {
    idx[d] = flat % sizes[d];
    flat /= sizes[d];
  }
  return idx;
}

/// Row-major linear index of a multi-index.
inline int64_t ravel(const std::vector<int64_t>& idx, const Shape& sizes) {
  int64_t flat = 0;
  for (size_t d = 0; d < sizes.size(); ++d) flat = flat * sizes[d] + idx[d];
  return flat;
}

/// 1, 2, ..., n in row-major order: distinct, nonzero values that expose misplaced elements.
inline Tensor counting(const Shape& sizes, DType dtype = DType::f64) {
  std::vector<double> v(static_cast<size_t>(shape_numel(sizes)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(i + 1);
  return ops::from_vector(v, sizes, dtype);
}

/// The what() of the E that f throws, or "<nothing thrown>".
template <typename E, typename F>
std::string thrown_message(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "<nothing thrown>";
}

inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

/// Runs f (returning the tensors to compare) at 1, 2 and 3 threads and checks that every tensor
/// has the same bits as at 1 thread: 2 and 3 threads split the work unevenly, where a kernel that
/// reduces across its chunks would round differently. Restores the thread count.
template <typename F>
void check_same_bits_across_threads(F&& f) {
  struct Restore {
    int threads = get_num_threads();
    ~Restore() { set_num_threads(threads); }
  } restore;
  std::vector<std::vector<std::vector<double>>> runs;
  for (int n : {1, 2, 3}) {
    set_num_threads(n);
    std::vector<std::vector<double>> outs;
    for (const Tensor& t : f()) outs.push_back(ops::to_vector(t));
    runs.push_back(std::move(outs));
  }
  for (size_t n = 1; n < runs.size(); ++n) {
    REQUIRE(runs[n].size() == runs[0].size());
    for (size_t i = 0; i < runs[0].size(); ++i) CHECK_MESSAGE(runs[n][i] == runs[0][i], "output ", i, " at ", n + 1, " threads");
  }
}

}  // namespace tse::test
