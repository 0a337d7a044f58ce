// CPU kernels of the copying shape ops: the index-map copy behind pad (reflect, replicate,
// circular), roll and flip, its one-dim adjoint for their backward, and tril/triu.
#include "src/cpu/shape.hpp"

#include <algorithm>

#include "src/core/parallel.hpp"
#include "src/cpu/dtype_dispatch.hpp"

namespace tse::cpu {

namespace {

/// A stretch of the innermost dim whose source offsets advance by a constant step.
struct InnerRun {
  int64_t begin;       // first output position
  int64_t length;
  int64_t src_offset;  // source element offset of the first position
  int64_t step;        // source elements between consecutive positions
};

/// Splits the innermost dim's source offsets into runs of constant step: flip is one run of step
/// -1, roll two runs of step 1, reflect pad three, so the row loop is a few plain strided copies.
std::vector<InnerRun> inner_runs(const std::vector<int64_t>& offsets) {
  std::vector<InnerRun> runs;
  const int64_t n = static_cast<int64_t>(offsets.size());
  for (int64_t i = 0; i < n;) {
    const int64_t step = i + 1 < n ? offsets[i + 1] - offsets[i] : 1;
    int64_t end = i + 1;
    while (end < n && offsets[end] - offsets[end - 1] == step) ++end;
    runs.push_back({i, end - i, offsets[i], step});
    i = end;
  }
  return runs;
}

}  // namespace

void index_map_copy(const Tensor& out, const Tensor& src, const DimIndexMaps& src_index) {
  TSE_ASSERT(out.is_contiguous(), "index_map_copy: out must be contiguous");
  const int64_t nd = out.dim();
  if (out.numel() == 0) return;
  const Shape& sizes = out.sizes();
  // Element offsets into src for every position of every dim.
  std::vector<std::vector<int64_t>> offsets(static_cast<size_t>(nd));
  for (int64_t d = 0; d < nd; ++d) {
    const bool mapped = !src_index.empty() && !src_index[d].empty();
    offsets[d].resize(static_cast<size_t>(sizes[d]));
    const int64_t stride = src.stride(d);
    for (int64_t i = 0; i < sizes[d]; ++i) offsets[d][i] = (mapped ? src_index[d][i] : i) * stride;
  }
  dispatch_all(out.dtype(), "index_map_copy", [&]<typename T>() {
    T* o = static_cast<T*>(out.data_ptr());
    const T* s = static_cast<const T*>(src.data_ptr());
    if (nd == 0) {
      o[0] = s[0];
      return;
    }
    const int64_t inner = sizes[nd - 1];
    const int64_t rows = out.numel() / inner;
    const std::vector<InnerRun> runs = inner_runs(offsets[nd - 1]);
    detail::parallel_for(0, rows, std::max<int64_t>(1, detail::kParallelGrain / inner), [&](int64_t begin, int64_t end) {
      std::vector<int64_t> coord(static_cast<size_t>(nd - 1));
      int64_t rem = begin;
      for (int64_t d = nd - 2; d >= 0; --d) {
        coord[d] = rem % sizes[d];
        rem /= sizes[d];
      }
      for (int64_t r = begin; r < end; ++r) {
        int64_t base = 0;
        for (int64_t d = 0; d + 1 < nd; ++d) base += offsets[d][coord[d]];
        T* orow = o + r * inner;
        for (const InnerRun& run : runs) {
          T* to = orow + run.begin;
          const T* from = s + base + run.src_offset;
          if (run.step == 1) {
            std::copy(from, from + run.length, to);
          } else if (run.step == -1) {
            std::reverse_copy(from - run.length + 1, from + 1, to);
          } else {
            for (int64_t k = 0; k < run.length; ++k) to[k] = from[k * run.step];
          }
        }
        for (int64_t d = nd - 2; d >= 0; --d) {
          if (++coord[d] < sizes[d]) break;
          coord[d] = 0;
        }
      }
    });
  });
}

void index_map_accumulate(const Tensor& out, const Tensor& grad, int64_t dim, const std::vector<int64_t>& src_index) {
  TSE_ASSERT(out.is_contiguous() && grad.is_contiguous(), "index_map_accumulate: operands must be contiguous");
  const int64_t n = grad.size(dim), m = out.size(dim);
  TSE_ASSERT(static_cast<int64_t>(src_index.size()) == n, "index_map_accumulate: ", src_index.size(),
             " positions for a dim of size ", n);
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= grad.size(d);
  for (int64_t d = dim + 1; d < grad.dim(); ++d) inner *= grad.size(d);
  if (outer * inner * n == 0) return;
  dispatch_floating(out.dtype(), "index_map_accumulate", [&]<typename T>() {
    T* o = static_cast<T*>(out.data_ptr());
    const T* g = static_cast<const T*>(grad.data_ptr());
    // Work is split over (outer, inner) columns: each thread owns its columns of out, so positions
    // that several grad entries map to are summed by one thread only.
    detail::parallel_for(0, outer * inner, std::max<int64_t>(1, detail::kParallelGrain / n),
                         [&](int64_t begin, int64_t end) {
                           if (inner == 1) {  // the last dim: each column is one row of grad
                             for (int64_t q = begin; q < end; ++q) {
                               T* dst = o + q * m;
                               const T* s = g + q * n;
                               for (int64_t i = 0; i < n; ++i) dst[src_index[i]] += s[i];
                             }
                             return;
                           }
                           for (int64_t q = begin; q < end;) {
                             const int64_t oi = q / inner, k0 = q % inner;
                             const int64_t k1 = std::min(inner, k0 + (end - q));
                             for (int64_t i = 0; i < n; ++i) {
                               T* dst = o + (oi * m + src_index[i]) * inner;
                               const T* s = g + (oi * n + i) * inner;
                               for (int64_t k = k0; k < k1; ++k) dst[k] += s[k];
                             }
                             q += k1 - k0;
                           }
                         });
  });
}

void triangle(const Tensor& out, const Tensor& x, int64_t k, bool lower) {
  TSE_ASSERT(out.is_contiguous() && x.dim() >= 2, "triangle: bad operands");
  const int64_t nd = x.dim();
  const int64_t rows = x.size(nd - 2), cols = x.size(nd - 1);
  if (out.numel() == 0) return;
  const Shape& sizes = x.sizes();
  const Shape& strides = x.strides();
  const int64_t row_stride = strides[nd - 2], col_stride = strides[nd - 1];
  dispatch_all(out.dtype(), lower ? "tril" : "triu", [&]<typename T>() {
    T* o = static_cast<T*>(out.data_ptr());
    const T* s = static_cast<const T*>(x.data_ptr());
    const int64_t total_rows = out.numel() / cols;
    detail::parallel_for(0, total_rows, std::max<int64_t>(1, detail::kParallelGrain / cols),
                         [&](int64_t begin, int64_t end) {
                           for (int64_t r = begin; r < end; ++r) {
                             const int64_t i = r % rows;
                             int64_t rem = r / rows, base = i * row_stride;
                             for (int64_t d = nd - 3; d >= 0; --d) {
                               base += (rem % sizes[d]) * strides[d];
                               rem /= sizes[d];
                             }
                             // Columns [keep_begin, keep_end) of row i are kept, the rest zeroed.
                             const int64_t keep_begin = lower ? 0 : std::clamp<int64_t>(i + k, 0, cols);
                             const int64_t keep_end = lower ? std::clamp<int64_t>(i + k + 1, 0, cols) : cols;
                             T* orow = o + r * cols;
                             const T* srow = s + base;
                             for (int64_t j = 0; j < keep_begin; ++j) orow[j] = T{};
                             for (int64_t j = keep_begin; j < keep_end; ++j) orow[j] = srow[j * col_stride];
                             for (int64_t j = keep_end; j < cols; ++j) orow[j] = T{};
                           }
                         });
  });
}

}  // namespace tse::cpu
