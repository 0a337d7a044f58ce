#pragma once
// The CPU reduction engine. The input is viewed as [kept dims..., reduced dims...] (a stride
// permutation, no copy); each group is coalesced. Output element k (row-major over the kept dims)
// is a fold over the reduced index space. Three loop shapes cover the cases that matter:
//   inner  - one contiguous reduced dim: a vectorisable fold per output (softmax-like rows);
//   column - one contiguous kept dim, reduced dims outside it (bias gradients, sum over batch):
//            a block of outputs accumulated row by row, vectorised across outputs;
//   generic- anything else, a strided fold per output.
// Whole-tensor folds (one output) split the reduced range across threads and combine partials.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "src/core/parallel.hpp"
#include "tse/core/tensor.hpp"

namespace tse::cpu {

struct ReducePlan {
  int nk = 0, nr = 0;
  int64_t ksizes[16] = {}, kstrides[16] = {};  // outermost first
  int64_t rsizes[16] = {}, rstrides[16] = {};
  int64_t K = 1, R = 1;
};

/// dims: sorted, unique, wrapped dims of x to reduce.
inline ReducePlan make_reduce_plan(const Tensor& x, const std::vector<bool>& reduce) {
  ReducePlan p;
  TSE_CHECK(x.dim() <= 16, "reduce: tensors with more than 16 dims are not supported");
  auto push = [](int& n, int64_t* sizes, int64_t* strides, int64_t sz, int64_t st) {
    if (sz == 1) return;
    if (n > 0 && strides[n - 1] == st * sz) {  // merge into the previous (outer) dim
      sizes[n - 1] *= sz;
      strides[n - 1] = st;
      return;
    }
    sizes[n] = sz;
    strides[n] = st;
    ++n;
  };
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (reduce[d]) {
      push(p.nr, p.rsizes, p.rstrides, x.sizes()[d], x.strides()[d]);
      p.R *= x.sizes()[d];
    } else {
      push(p.nk, p.ksizes, p.kstrides, x.sizes()[d], x.strides()[d]);
      p.K *= x.sizes()[d];
    }
  }
  return p;
}

/// Offset (elements) of linear index i in a coalesced group.
inline int64_t group_offset(int64_t i, int n, const int64_t* sizes, const int64_t* strides) {
  int64_t off = 0;
  for (int d = n - 1; d >= 0; --d) {
    off += (i % sizes[d]) * strides[d];
    i /= sizes[d];
  }
  return off;
}

/// Visits the reduced elements for output base offset `base` in order: f(ptr_offset).
template <typename F>
inline void for_each_reduced(const ReducePlan& p, int64_t base, int64_t r_begin, int64_t r_end, const F& f) {
  if (r_begin >= r_end) return;  // also keeps an empty reduced dim out of the index arithmetic
  if (p.nr <= 1) {
    const int64_t st = p.nr == 1 ? p.rstrides[0] : 0;
    for (int64_t r = r_begin; r < r_end; ++r) f(base + r * st);
    return;
  }
  int64_t idx[16];
  int64_t rem = r_begin;
  for (int d = p.nr - 1; d >= 0; --d) {
    idx[d] = rem % p.rsizes[d];
    rem /= p.rsizes[d];
  }
  int64_t off = base + group_offset(r_begin, p.nr, p.rsizes, p.rstrides);
  const int last = p.nr - 1;
  for (int64_t r = r_begin; r < r_end; ++r) {
    f(off);
    ++idx[last];
    off += p.rstrides[last];
    for (int d = last; d > 0 && idx[d] == p.rsizes[d]; --d) {
      off -= idx[d] * p.rstrides[d];
      idx[d] = 0;
      ++idx[d - 1];
      off += p.rstrides[d - 1];
    }
  }
}

/// Generic fold: for each output k, store(k, fold over r of step(acc, x, r)), r the linear reduced
/// index. Whole-tensor folds are split across threads and merged with merge(earlier, later), so a
/// merge that prefers its first argument on ties keeps the first occurrence.
template <typename T, typename Acc, typename Step, typename Merge, typename Store>
void reduce_fold_to(const ReducePlan& p, const T* x, Acc init, const Step& step, const Merge& merge,
                    const Store& store) {
  if (p.K == 1 && p.R >= 2 * detail::kParallelGrain && get_num_threads() > 1) {
    const int nt = get_num_threads();
    std::vector<Acc> partial(nt, init);
    const int64_t per = (p.R + nt - 1) / nt;
    detail::parallel_for(0, nt, 1, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        Acc acc = init;
        const int64_t r0 = t * per, r1 = std::min(p.R, r0 + per);
        int64_t r = r0;
        if (r0 < r1) for_each_reduced(p, 0, r0, r1, [&](int64_t off) { acc = step(acc, x[off], r++); });
        partial[t] = acc;
      }
    });
    Acc acc = init;
    for (const Acc& a : partial) acc = merge(acc, a);
    store(int64_t(0), acc);
    return;
  }
  const int64_t grain = std::max<int64_t>(1, detail::kParallelGrain / std::max<int64_t>(p.R, 1));
  detail::parallel_for(0, p.K, grain, [&](int64_t kb, int64_t ke) {
    for (int64_t k = kb; k < ke; ++k) {
      const int64_t base = group_offset(k, p.nk, p.ksizes, p.kstrides);
      Acc acc = init;
      int64_t r = 0;
      for_each_reduced(p, base, 0, p.R, [&](int64_t off) { acc = step(acc, x[off], r++); });
      store(k, acc);
    }
  });
}

/// reduce_fold_to writing out[k] = finish(acc).
template <typename T, typename Acc, typename OutT, typename Step, typename Merge, typename Finish>
void reduce_fold(const ReducePlan& p, const T* x, OutT* out, Acc init, const Step& step, const Merge& merge,
                 const Finish& finish) {
  reduce_fold_to(p, x, init, step, merge, [&](int64_t k, const Acc& acc) { out[k] = finish(acc); });
}

}  // namespace tse::cpu
