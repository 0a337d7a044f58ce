#pragma once
// The CPU elementwise engine: N operands (operand 0 is the output) broadcast to the output's
// shape, any strides. Dims are coalesced first, so contiguous tensors of any rank become one
// flat loop the compiler vectorises; the innermost loop has fast paths for contiguous and
// scalar-broadcast operands. Work is split over the thread pool by linear index.
#include <array>
#include <cstdint>
#include <tuple>
#include <utility>

#include "src/core/parallel.hpp"
#include "tse/core/tensor.hpp"

namespace tse::cpu {

inline constexpr int kMaxDims = 16;

template <int N>
struct StridedPlan {
  int ndim = 0;                         // after coalescing; dim 0 is innermost
  int64_t sizes[kMaxDims] = {};
  int64_t strides[kMaxDims][N] = {};    // bytes
  std::array<char*, N> base{};
  int64_t numel = 0;
};

/// ops[0] is the output; the others must broadcast to its shape.
template <int N>
StridedPlan<N> make_plan(const std::array<const Tensor*, N>& ops) {
  StridedPlan<N> p;
  const Tensor& out = *ops[0];
  const int64_t nd = out.dim();
  TSE_CHECK(nd <= kMaxDims, "elementwise: tensors with more than ", kMaxDims, " dims are not supported (shape ",
            out.shape_str(), ")");
  p.numel = out.numel();
  for (int k = 0; k < N; ++k) p.base[k] = static_cast<char*>(ops[k]->data_ptr());
  // Gather dims innermost-first, skipping size-1 output dims.
  int m = 0;
  for (int64_t d = nd - 1; d >= 0; --d) {
    const int64_t sz = out.sizes()[d];
    if (sz == 1) continue;
    p.sizes[m] = sz;
    for (int k = 0; k < N; ++k) {
      const Tensor& t = *ops[k];
      const int64_t td = d - (nd - t.dim());
      const bool broadcast = td < 0 || t.sizes()[td] == 1;
      p.strides[m][k] = broadcast ? 0 : t.strides()[td] * static_cast<int64_t>(t.itemsize());
    }
    ++m;
  }
  // Coalesce dim i into the run ending at dim r when every operand steps contiguously across.
  int r = 0;
  for (int i = 1; i < m; ++i) {
    bool mergeable = true;
    for (int k = 0; k < N; ++k)
      if (p.strides[i][k] != p.strides[r][k] * p.sizes[r]) mergeable = false;
    if (mergeable) {
      p.sizes[r] *= p.sizes[i];
    } else {
      ++r;
      p.sizes[r] = p.sizes[i];
      for (int k = 0; k < N; ++k) p.strides[r][k] = p.strides[i][k];
    }
  }
  p.ndim = m == 0 ? 0 : r + 1;
  return p;
}

/// Calls inner(ptrs, strides_of_dim0, n) over runs of the innermost dim, in parallel chunks.
template <int N, typename Inner>
void for_each_run(const StridedPlan<N>& p, int64_t grain, const Inner& inner) {
  if (p.numel == 0) return;
  if (p.ndim == 0) {  // a single element
    std::array<char*, N> ptrs = p.base;
    int64_t s[N] = {};
    inner(ptrs, s, int64_t(1));
    return;
  }
  detail::parallel_for(0, p.numel, grain, [&](int64_t begin, int64_t end) {
    int64_t idx[kMaxDims] = {};
    int64_t rem = begin;
    for (int d = 0; d < p.ndim; ++d) {
      idx[d] = rem % p.sizes[d];
      rem /= p.sizes[d];
    }
    std::array<char*, N> ptrs;
    for (int k = 0; k < N; ++k) {
      int64_t off = 0;
      for (int d = 0; d < p.ndim; ++d) off += idx[d] * p.strides[d][k];
      ptrs[k] = p.base[k] + off;
    }
    int64_t pos = begin;
    while (pos < end) {
      const int64_t n = std::min(p.sizes[0] - idx[0], end - pos);
      inner(ptrs, p.strides[0], n);
      pos += n;
      for (int k = 0; k < N; ++k) ptrs[k] += n * p.strides[0][k];
      idx[0] += n;
      // Carry into the outer dims.
      for (int d = 0; d + 1 < p.ndim && idx[d] == p.sizes[d]; ++d) {
        idx[d] = 0;
        ++idx[d + 1];
        for (int k = 0; k < N; ++k) ptrs[k] += p.strides[d + 1][k] - p.sizes[d] * p.strides[d][k];
      }
    }
  });
}

namespace detail_loops {
template <typename Out, typename... In, typename F, size_t... I>
inline void run_inner(const std::array<char*, sizeof...(In) + 1>& ptrs, const int64_t* s, int64_t n, const F& f,
                      std::index_sequence<I...>) {
  Out* o = reinterpret_cast<Out*>(ptrs[0]);
  const auto in = std::make_tuple(reinterpret_cast<const In*>(ptrs[I + 1])...);
  const bool contiguous = s[0] == sizeof(Out) && ((s[I + 1] == static_cast<int64_t>(sizeof(In))) && ...);
  if (contiguous) {
    for (int64_t i = 0; i < n; ++i) o[i] = f(std::get<I>(in)[i]...);
    return;
  }
  if constexpr (sizeof...(In) == 2) {
    using A = std::tuple_element_t<0, std::tuple<In...>>;
    using B = std::tuple_element_t<1, std::tuple<In...>>;
    const A* a = std::get<0>(in);
    const B* b = std::get<1>(in);
    if (s[0] == sizeof(Out) && s[1] == sizeof(A) && s[2] == 0) {
      const B bv = *b;
      for (int64_t i = 0; i < n; ++i) o[i] = f(a[i], bv);
      return;
    }
    if (s[0] == sizeof(Out) && s[1] == 0 && s[2] == sizeof(B)) {
      const A av = *a;
      for (int64_t i = 0; i < n; ++i) o[i] = f(av, b[i]);
      return;
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    *reinterpret_cast<Out*>(ptrs[0] + i * s[0]) =
        f(*reinterpret_cast<const In*>(ptrs[I + 1] + i * s[I + 1])...);
  }
}
}  // namespace detail_loops

/// out[...] = f(in[...]...), broadcasting the inputs to out's shape. Types must match dtypes.
template <typename Out, typename... In, typename F>
void elementwise(const Tensor& out, const F& f, const std::array<const Tensor*, sizeof...(In)>& inputs,
                 int64_t grain = detail::kParallelGrain) {
  constexpr int N = sizeof...(In) + 1;
  std::array<const Tensor*, N> ops;
  ops[0] = &out;
  for (size_t k = 0; k < sizeof...(In); ++k) ops[k + 1] = inputs[k];
  const StridedPlan<N> plan = make_plan<N>(ops);
  for_each_run<N>(plan, grain, [&](const std::array<char*, N>& ptrs, const int64_t* s, int64_t n) {
    detail_loops::run_inner<Out, In...>(ptrs, s, n, f, std::index_sequence_for<In...>{});
  });
}

}  // namespace tse::cpu
