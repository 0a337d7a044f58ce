// CPU kernels of gather and scatter_add (index_select is a gather with a broadcast index).
#include "src/cpu/indexing.hpp"

#include <algorithm>

#include "src/cpu/dtype_dispatch.hpp"
#include "src/cpu/loops.hpp"

namespace tse::cpu {
namespace {

template <typename F>
void dispatch_index(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::i64: f.template operator()<int64_t>(); return;
    case DType::i32: f.template operator()<int32_t>(); return;
    default: throw ValueError(detail::str_cat(op, ": index must be int64 or int32, got ", t));
  }
}

Tensor with_sizes(const Tensor& t, const Shape& sizes) {
  return Tensor::from_storage(t.storage(), sizes, t.strides(), t.storage_offset(), t.dtype());
}

/// Walks every line of index along dim. For position j of a line holding value v, calls
/// apply(&indexed[..., v, ...], &follower[..., j, ...]); follower is laid out like index.
/// The positions off dim are split over threads and each thread walks whole lines, so two
/// threads never reach the same element of indexed (scatter_add accumulates into it).
template <typename T, typename Idx, typename Apply>
void for_each_index_line(const Tensor& indexed, const Tensor& index, const Tensor& follower, int64_t dim,
                         const char* op, const Apply& apply) {
  if (index.dim() == 0) {
    auto as_1d = [](const Tensor& t) {
      return Tensor::from_storage(t.storage(), {1}, {1}, t.storage_offset(), t.dtype());
    };
    for_each_index_line<T, Idx>(as_1d(indexed), as_1d(index), as_1d(follower), 0, op, apply);
    return;
  }
  Shape line_starts = index.sizes();
  const int64_t line_length = line_starts[dim];
  line_starts[dim] = 1;
  if (line_length == 0 || shape_numel(line_starts) == 0) return;
  const Tensor indexed_starts = with_sizes(indexed, line_starts);
  const Tensor index_starts = with_sizes(index, line_starts);
  const Tensor follower_starts = with_sizes(follower, line_starts);
  const int64_t limit = indexed.size(dim);
  const int64_t indexed_step = indexed.stride(dim) * static_cast<int64_t>(sizeof(T));
  const int64_t index_step = index.stride(dim) * static_cast<int64_t>(sizeof(Idx));
  const int64_t follower_step = follower.stride(dim) * static_cast<int64_t>(sizeof(T));
  const StridedPlan<3> plan = make_plan<3>({&indexed_starts, &index_starts, &follower_starts});
  const int64_t grain = std::max<int64_t>(1, detail::kParallelGrain / line_length);
  for_each_run<3>(plan, grain, [&](const std::array<char*, 3>& p, const int64_t* s, int64_t n) {
    auto checked = [&](Idx v) {
      TSE_CHECK_INDEX(v >= 0 && v < limit, op, ": index ", v, " is out of bounds for dim ", dim, " with size ",
                      limit);
      return static_cast<int64_t>(v);
    };
    const bool contiguous_run = s[0] == sizeof(T) && s[2] == sizeof(T);
    // j outside, i inside: the inner loop walks the (usually contiguous) innermost dim.
    for (int64_t j = 0; j < line_length; ++j) {
      char* follower_at = p[2] + j * follower_step;
      const char* index_at = p[1] + j * index_step;
      if (s[1] == 0) {  // one index for the whole run (index_select): a row copy
        char* indexed_at = p[0] + checked(*reinterpret_cast<const Idx*>(index_at)) * indexed_step;
        if (contiguous_run) {
          T* a = reinterpret_cast<T*>(indexed_at);
          T* b = reinterpret_cast<T*>(follower_at);
          for (int64_t i = 0; i < n; ++i) apply(a + i, b + i);
        } else {
          for (int64_t i = 0; i < n; ++i)
            apply(reinterpret_cast<T*>(indexed_at + i * s[0]), reinterpret_cast<T*>(follower_at + i * s[2]));
        }
        continue;
      }
      for (int64_t i = 0; i < n; ++i) {
        const int64_t v = checked(*reinterpret_cast<const Idx*>(index_at + i * s[1]));
        apply(reinterpret_cast<T*>(p[0] + i * s[0] + v * indexed_step), reinterpret_cast<T*>(follower_at + i * s[2]));
      }
    }
  });
}

}  // namespace

void gather(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& index, const char* op) {
  dispatch_all(x.dtype(), op, [&]<typename T>() {
    dispatch_index(index.dtype(), op, [&]<typename Idx>() {
      for_each_index_line<T, Idx>(x, index, out, dim, op, [](const T* from, T* to) { *to = *from; });
    });
  });
}

void scatter_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src, const char* op) {
  dispatch_numeric(out.dtype(), op, [&]<typename T>() {
    dispatch_index(index.dtype(), op, [&]<typename Idx>() {
      for_each_index_line<T, Idx>(out, index, src, dim, op, [](T* to, const T* from) { *to += *from; });
    });
  });
}

}  // namespace tse::cpu
