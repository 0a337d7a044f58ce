// CPU kernels of the normalization family.
//
// float32 layer_norm runs on oneDNN's layer_normalization primitive over the row-major (R, D)
// view (it normalises the last dim). A missing weight or bias is a missing use_scale / use_shift
// flag. The backward primitive gets its forward primitive descriptor as hint, rebuilt in the
// cache's make function (it only runs on a miss).
//
// Everything else runs on the plain loops below, for both dtypes: float64 layer_norm (this
// oneDNN has no f64), group_norm (oneDNN 2.6 has no group normalization) and batch_norm. oneDNN
// 2.6 does have batch normalization, but for plain nchw data it selects its ncsp kernel, which
// measured 2.5-3.5x slower than these loops at 1 thread on (4, 64, 256, 64) and (16, 256, 626) and
// no faster on (N, C) inputs (see bench_normalization.cpp, whose peer is that primitive).
//
// A group of values is a set of equally strided contiguous runs (one run for a layer-norm row or
// a group-norm block, N runs for a batch-norm channel). Statistics take two passes (mean, then
// squared deviations) summed in vector lanes folded into double (lane_sums); the elementwise
// passes are vectorisable loops over a run. Parallel over groups (layer/group norm) or channels
// (batch norm).
#include "src/cpu/normalization.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <unordered_map>
#include <vector>

#include "src/core/parallel.hpp"
#include "src/cpu/dtype_dispatch.hpp"
#include "src/cpu/onednn_context.hpp"

namespace tse::cpu {
namespace {

// ---- plain loops --------------------------------------------------------------------------------

/// count runs of length contiguous values, stride elements apart.
struct Runs {
  int64_t count, length, stride;
  int64_t numel() const { return count * length; }
};

struct Moments {
  double mean, var;  // var biased
};

/// Partial sums per result in lane_sums: four AVX registers' worth.
template <typename T>
constexpr int64_t kLanes = 4 * 32 / static_cast<int64_t>(sizeof(T));

/// The K (1 or 2) sums of term(i), a std::array<T, K>, over [0, n). kLanes independent partial
/// sums per result keep the adds pipelined, where one accumulator would wait on each add's
/// latency (7x slower for a float group norm); they are folded into double every kChunk values,
/// so long float groups keep their precision. (Named lane arrays: GCC does not vectorise a 2-D
/// one.)
template <typename T, size_t K, typename Term>
std::array<double, K> lane_sums(int64_t n, const Term& term) {
  static_assert(K == 1 || K == 2);
  constexpr int64_t kChunk = 64 * kLanes<T>;
  std::array<double, K> total{};
  auto add = [&](T* a0, T* a1, int64_t i, int64_t j) {
    const std::array<T, K> v = term(i + j);
    a0[j] += v[0];
    if constexpr (K == 2) a1[j] += v[1];
  };
  for (int64_t i = 0; i < n;) {
    T a0[kLanes<T>] = {}, a1[kLanes<T>] = {};
    const int64_t end = std::min(n, i + kChunk);
    for (; i + kLanes<T> <= end; i += kLanes<T>) {
#pragma omp simd
      for (int64_t j = 0; j < kLanes<T>; ++j) add(a0, a1, i, j);
    }
    for (int64_t j = 0; j < end - i; ++j) add(a0, a1, i, j);  // fewer than kLanes left
    i = end;
    // Pairwise over the lanes (vector adds; a serial fold would cost as much as a short row).
    for (int64_t h = kLanes<T> / 2; h >= 1; h /= 2) {
#pragma omp simd
      for (int64_t j = 0; j < h; ++j) {
        a0[j] += a0[j + h];
        if constexpr (K == 2) a1[j] += a1[j + h];
      }
    }
    total[0] += a0[0];
    if constexpr (K == 2) total[1] += a1[0];
  }
  return total;
}

/// lane_sums over the runs' values: term(at, i) for value i of the run starting at offset at.
template <typename T, size_t K, typename Term>
std::array<double, K> runs_sums(const Runs& r, const Term& term) {
  std::array<double, K> total{};
  if (r.length < kLanes<T>) {
    // Short runs (batch norm of (N, C) inputs: one value each): lanes would cost more than they
    // save, sum in double directly.
    for (int64_t k = 0; k < r.count; ++k)
      for (int64_t i = 0; i < r.length; ++i) {
        const std::array<T, K> v = term(k * r.stride, i);
        for (size_t j = 0; j < K; ++j) total[j] += v[j];
      }
    return total;
  }
  for (int64_t k = 0; k < r.count; ++k) {
    const int64_t at = k * r.stride;
    const std::array<double, K> part = lane_sums<T, K>(r.length, [&](int64_t i) { return term(at, i); });
    for (size_t j = 0; j < K; ++j) total[j] += part[j];
  }
  return total;
}

/// Two passes: the mean, then the squared deviations from it.
template <typename T>
Moments moments(const T* x, const Runs& r) {
  const double n = static_cast<double>(r.numel());
  const double mean = runs_sums<T, 1>(r, [x](int64_t at, int64_t i) { return std::array<T, 1>{x[at + i]}; })[0] / n;
  const T m = static_cast<T>(mean);
  const double dev = runs_sums<T, 1>(r, [x, m](int64_t at, int64_t i) {
    const T d = x[at + i] - m;
    return std::array<T, 1>{d * d};
  })[0];
  return {mean, dev / n};
}

double inverse_std(double var, double eps) { return 1.0 / std::sqrt(var + eps); }

/// The (C) weight or bias values, or C copies of fill (1 or 0) when it is undefined: the loops
/// then read plain arrays, which vectorise where a per-element "defined?" test does not.
template <typename T>
std::vector<T> param_or(const Tensor& p, int64_t C, T fill) {
  if (!p.defined()) return std::vector<T>(static_cast<size_t>(C), fill);
  const T* v = static_cast<const T*>(p.data_ptr());
  return std::vector<T>(v, v + C);
}

/// y = (x - mean) * scale + shift over runs (x - mean first: no cancellation when |mean| >> std).
template <typename T>
void affine(T* y, const T* x, const Runs& r, T mean, T scale, T shift) {
  for (int64_t k = 0; k < r.count; ++k) {
    const T* __restrict xr = x + k * r.stride;
    T* __restrict yr = y + k * r.stride;
#pragma omp simd
    for (int64_t i = 0; i < r.length; ++i) yr[i] = (xr[i] - mean) * scale + shift;
  }
}

/// Sums of dy * (x - mean) and of dy over runs: the two reductions every backward needs.
struct GradSums {
  double dev, sum;
};

template <typename T>
GradSums grad_sums(const T* dy, const T* x, const Runs& r, double mean) {
  const T m = static_cast<T>(mean);
  const std::array<double, 2> s = runs_sums<T, 2>(r, [dy, x, m](int64_t at, int64_t i) {
    return std::array<T, 2>{dy[at + i] * (x[at + i] - m), dy[at + i]};
  });
  return {s[0], s[1]};
}

/// The input gradient of one group as dx = c1 * dy + c2 * (x - mean) + c3: c1 = rstd * w is the
/// affine map's (per channel); c2 and c3 carry the group's statistics, zero in batch_norm's eval.
struct InputGrad {
  double c2 = 0, c3 = 0;
};

/// For a group of m values normalised by its own statistics, with dev = sum of w dy (x - mean)
/// and sum = sum of w dy over the group: dx = rstd (w dy - sum / m - xhat dev rstd / m).
InputGrad batch_stat_input_grad(double rstd, double dev, double sum, int64_t m) {
  const double inv_m = 1.0 / static_cast<double>(m);
  return {-rstd * rstd * rstd * dev * inv_m, -rstd * sum * inv_m};
}

template <typename T>
void input_grad(T* dx, const T* dy, const T* x, const Runs& r, T mean, T c1, const InputGrad& g) {
  const T c2 = static_cast<T>(g.c2), c3 = static_cast<T>(g.c3);
  for (int64_t k = 0; k < r.count; ++k) {
    const T* __restrict dyr = dy + k * r.stride;
    const T* __restrict xr = x + k * r.stride;
    T* __restrict dxr = dx + k * r.stride;
#pragma omp simd
    for (int64_t i = 0; i < r.length; ++i) dxr[i] = c1 * dyr[i] + c2 * (xr[i] - mean) + c3;
  }
}

int64_t grain_for(int64_t work_per_item) {
  return std::max<int64_t>(1, tse::detail::kParallelGrain / std::max<int64_t>(1, work_per_item));
}

template <typename T>
T* ptr_or_null(const Tensor& t) {
  return t.defined() ? static_cast<T*>(t.data_ptr()) : nullptr;
}

/// The shape of a layer_norm or group_norm problem: x is `blocks` contiguous blocks, each one
/// group of `channels` channels times `spatial` values; block i uses the affine parameters of
/// channels [(i % groups) * channels, + channels). layer_norm is groups = spatial = 1.
struct Blocks {
  int64_t blocks, groups, channels, spatial;
  int64_t size() const { return channels * spatial; }
};

template <typename T>
void blocks_forward(const NormForward& a, const Blocks& bk) {
  const T* x = static_cast<const T*>(a.x.data_ptr());
  T* y = static_cast<T*>(a.y.data_ptr());
  T* mean_out = ptr_or_null<T>(a.mean);
  T* var_out = ptr_or_null<T>(a.var);
  const int64_t m = bk.size(), S = bk.spatial, C = bk.groups * bk.channels;
  const std::vector<T> wv = param_or(a.weight, C, T(1)), bv = param_or(a.bias, C, T(0));
  tse::detail::parallel_for(0, bk.blocks, grain_for(m), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const T* xb = x + i * m;
      T* yb = y + i * m;
      const Moments mo = moments(xb, Runs{1, m, m});
      const double rstd = inverse_std(mo.var, a.eps);
      const T* __restrict w = wv.data() + (i % bk.groups) * bk.channels;
      const T* __restrict b = bv.data() + (i % bk.groups) * bk.channels;
      const T mean = static_cast<T>(mo.mean), r = static_cast<T>(rstd);
      if (S == 1) {
        // One value per channel (layer norm): vectorise across channels instead.
#pragma omp simd
        for (int64_t c = 0; c < bk.channels; ++c) yb[c] = (xb[c] - mean) * (r * w[c]) + b[c];
      } else {
        for (int64_t c = 0; c < bk.channels; ++c) affine(yb + c * S, xb + c * S, Runs{1, S, S}, mean, r * w[c], b[c]);
      }
      if (mean_out) {
        mean_out[i] = mean;
        var_out[i] = static_cast<T>(mo.var);
      }
    }
  });
}

/// out[c] = sum over rows of buf[r * cols + c], parallel over column ranges.
template <typename T>
void column_sums(const double* buf, int64_t rows, int64_t cols, T* out) {
  tse::detail::parallel_for(0, cols, grain_for(rows), [&](int64_t c0, int64_t c1) {
    std::vector<double> acc(static_cast<size_t>(c1 - c0), 0.0);
    for (int64_t r = 0; r < rows; ++r) {
      const double* row = buf + r * cols + c0;
#pragma omp simd
      for (int64_t c = 0; c < c1 - c0; ++c) acc[static_cast<size_t>(c)] += row[c];
    }
    for (int64_t c = c0; c < c1; ++c) out[c] = static_cast<T>(acc[static_cast<size_t>(c - c0)]);
  });
}

/// dweight and dbias when every channel holds one value per block (layer norm): x is an
/// (N, C) matrix, and the gradients are its column sums of dy * xhat and dy, vectorised across
/// channels (a run of channels in one group shares mean and rstd), parallel over channel ranges.
template <typename T>
void per_value_weight_grads(const NormBackward& a, const Blocks& bk) {
  const T* x = static_cast<const T*>(a.x.data_ptr());
  const T* dy = static_cast<const T*>(a.dy.data_ptr());
  const T* mean = static_cast<const T*>(a.mean.data_ptr());
  const T* var = static_cast<const T*>(a.var.data_ptr());
  T* dw = ptr_or_null<T>(a.dweight);
  T* db = ptr_or_null<T>(a.dbias);
  const int64_t C = bk.groups * bk.channels, samples = bk.blocks / bk.groups;
  std::vector<T> rstd(static_cast<size_t>(bk.blocks));
  for (int64_t i = 0; i < bk.blocks; ++i) rstd[static_cast<size_t>(i)] = static_cast<T>(inverse_std(var[i], a.eps));
  tse::detail::parallel_for(0, C, grain_for(samples), [&](int64_t c0, int64_t c1) {
    std::vector<double> acc_w(static_cast<size_t>(c1 - c0), 0.0), acc_b(acc_w.size(), 0.0);
    for (int64_t n = 0; n < samples; ++n) {
      const T* __restrict xr = x + n * C;
      const T* __restrict dyr = dy + n * C;
      for (int64_t c = c0; c < c1;) {
        const int64_t g = c / bk.channels, end = std::min(c1, (g + 1) * bk.channels);
        const T m = mean[n * bk.groups + g], r = rstd[static_cast<size_t>(n * bk.groups + g)];
        double* __restrict aw = acc_w.data() - c0;
        double* __restrict ab = acc_b.data() - c0;
#pragma omp simd
        for (int64_t j = c; j < end; ++j) {
          aw[j] += dyr[j] * ((xr[j] - m) * r);
          ab[j] += dyr[j];
        }
        c = end;
      }
    }
    for (int64_t c = c0; c < c1; ++c) {
      if (dw) dw[c] = static_cast<T>(acc_w[static_cast<size_t>(c - c0)]);
      if (db) db[c] = static_cast<T>(acc_b[static_cast<size_t>(c - c0)]);
    }
  });
}

template <typename T>
void blocks_backward(const NormBackward& a, const Blocks& bk) {
  const T* x = static_cast<const T*>(a.x.data_ptr());
  const T* dy = static_cast<const T*>(a.dy.data_ptr());
  const T* mean_in = static_cast<const T*>(a.mean.data_ptr());
  const T* var_in = static_cast<const T*>(a.var.data_ptr());
  T* dx = static_cast<T*>(a.dx.data_ptr());
  const int64_t m = bk.size(), S = bk.spatial, Cg = bk.channels;
  const std::vector<T> wv = param_or(a.weight, bk.groups * Cg, T(1));
  const bool weight_grads = a.dweight.defined() || a.dbias.defined();
  // With spatial values, the per (block, channel) sums of dy * xhat and dy that dx needs also
  // give the weight gradients as column sums: kept as (N, C) rows when wanted. (With one value
  // per channel they would be as large as x: per_value_weight_grads reads x again instead.)
  const bool keep_rows = weight_grads && S > 1;
  std::vector<double> dev_rows(keep_rows ? static_cast<size_t>(bk.blocks * Cg) : 0), sum_rows(dev_rows.size());
  tse::detail::parallel_for(0, bk.blocks, grain_for(m), [&](int64_t i0, int64_t i1) {
    std::vector<double> dev_scratch(keep_rows ? 0 : static_cast<size_t>(Cg)), sum_scratch(dev_scratch.size());
    for (int64_t i = i0; i < i1; ++i) {
      const T* xb = x + i * m;
      const T* dyb = dy + i * m;
      T* dxb = dx + i * m;
      const T mean = mean_in[i];
      const double rstd = inverse_std(static_cast<double>(var_in[i]), a.eps);
      const T* __restrict w = wv.data() + (i % bk.groups) * Cg;
      // wdev = sum of w dy (x - mean), wsum = sum of w dy over the block
      double wdev = 0, wsum = 0;
      if (S == 1) {
        const std::array<double, 2> ws = lane_sums<T, 2>(Cg, [&](int64_t c) {
          const T wdy = w[c] * dyb[c];
          return std::array<T, 2>{wdy * (xb[c] - mean), wdy};
        });
        wdev = ws[0];
        wsum = ws[1];
      } else {
        double* dev = keep_rows ? dev_rows.data() + i * Cg : dev_scratch.data();
        double* sum = keep_rows ? sum_rows.data() + i * Cg : sum_scratch.data();
        for (int64_t c = 0; c < Cg; ++c) {
          const GradSums gs = grad_sums(dyb + c * S, xb + c * S, Runs{1, S, S}, mean);
          dev[c] = gs.dev * rstd;  // sum of dy * xhat
          sum[c] = gs.sum;
          wdev += w[c] * gs.dev;
          wsum += w[c] * gs.sum;
        }
      }
      const InputGrad g = batch_stat_input_grad(rstd, wdev, wsum, m);
      if (S == 1) {
        const T r = static_cast<T>(rstd), c2 = static_cast<T>(g.c2), c3 = static_cast<T>(g.c3);
#pragma omp simd
        for (int64_t c = 0; c < Cg; ++c) dxb[c] = r * w[c] * dyb[c] + c2 * (xb[c] - mean) + c3;
      } else {
        for (int64_t c = 0; c < Cg; ++c)
          input_grad(dxb + c * S, dyb + c * S, xb + c * S, Runs{1, S, S}, mean, static_cast<T>(rstd * w[c]), g);
      }
    }
  });
  if (!weight_grads) return;
  if (S == 1) {
    per_value_weight_grads<T>(a, bk);
    return;
  }
  // Rows of (N, C): block i = n * groups + g holds channels g * Cg.. of sample n.
  const int64_t samples = bk.blocks / bk.groups, C = bk.groups * Cg;
  if (a.dweight.defined()) column_sums(dev_rows.data(), samples, C, static_cast<T*>(a.dweight.data_ptr()));
  if (a.dbias.defined()) column_sums(sum_rows.data(), samples, C, static_cast<T*>(a.dbias.data_ptr()));
}

/// Batch norm's channel c: N runs of S values, C * S apart, from offset c * S.
Runs channel_runs(const Tensor& x) { return Runs{x.size(0), x.size(2), x.size(1) * x.size(2)}; }

template <typename T>
void batch_norm_forward_loops(const NormForward& a, bool training) {
  const T* x = static_cast<const T*>(a.x.data_ptr());
  T* y = static_cast<T*>(a.y.data_ptr());
  T* mean = static_cast<T*>(a.mean.data_ptr());
  T* var = static_cast<T*>(a.var.data_ptr());
  const Runs r = channel_runs(a.x);
  const int64_t S = a.x.size(2), C = a.x.size(1);
  const std::vector<T> w = param_or(a.weight, C, T(1)), b = param_or(a.bias, C, T(0));
  tse::detail::parallel_for(0, C, grain_for(r.numel()), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      if (training) {
        const Moments mo = moments(x + c * S, r);
        mean[c] = static_cast<T>(mo.mean);
        var[c] = static_cast<T>(mo.var);
      }
      const double rstd = inverse_std(static_cast<double>(var[c]), a.eps);
      affine(y + c * S, x + c * S, r, mean[c], static_cast<T>(rstd * w[c]), b[c]);
    }
  });
}

template <typename T>
void batch_norm_backward_loops(const NormBackward& a, bool training) {
  const T* x = static_cast<const T*>(a.x.data_ptr());
  const T* dy = static_cast<const T*>(a.dy.data_ptr());
  const T* mean = static_cast<const T*>(a.mean.data_ptr());
  const T* var = static_cast<const T*>(a.var.data_ptr());
  const std::vector<T> w = param_or(a.weight, a.x.size(1), T(1));
  T* dx = static_cast<T*>(a.dx.data_ptr());
  T* dw = ptr_or_null<T>(a.dweight);
  T* db = ptr_or_null<T>(a.dbias);
  const Runs r = channel_runs(a.x);
  const int64_t S = a.x.size(2);
  tse::detail::parallel_for(0, a.x.size(1), grain_for(r.numel()), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const double rstd = inverse_std(static_cast<double>(var[c]), a.eps), wc = w[c];
      const GradSums gs = grad_sums(dy + c * S, x + c * S, r, static_cast<double>(mean[c]));
      const InputGrad g = training ? batch_stat_input_grad(rstd, wc * gs.dev, wc * gs.sum, r.numel()) : InputGrad{};
      input_grad(dx + c * S, dy + c * S, x + c * S, r, mean[c], static_cast<T>(rstd * wc), g);
      if (dw) dw[c] = static_cast<T>(rstd * gs.dev);
      if (db) db[c] = static_cast<T>(gs.sum);
    }
  });
}

// ---- float32 layer_norm: oneDNN -------------------------------------------------------------------

using dnnl::memory;
using dnnl::prop_kind;
using Flags = dnnl::normalization_flags;
using LnForward = dnnl::layer_normalization_forward;
using LnBackward = dnnl::layer_normalization_backward;

memory::desc plain_md(const memory::dims& dims) {
  memory::dims strides(dims.size(), 1);
  for (size_t d = dims.size(); d-- > 1;) strides[d - 1] = strides[d] * dims[d];
  return memory::desc(dims, memory::data_type::f32, strides);
}

Flags affine_flags(const Tensor& weight, const Tensor& bias) {
  Flags f = Flags::none;
  if (weight.defined()) f |= Flags::use_scale;
  if (bias.defined()) f |= Flags::use_shift;
  return f;
}

bool has_flag(Flags f, Flags bit) { return (static_cast<unsigned>(f) & static_cast<unsigned>(bit)) != 0; }

/// What shapes one layer-normalization primitive: x (R, D) row-major, its per-row statistics,
/// the (D) parameters, the flags and epsilon.
struct LnProblem {
  LnProblem(const Tensor& x, Flags f, double e)
      : data(plain_md({x.size(0), x.size(1)})),
        stat(plain_md({x.size(0)})),
        param(plain_md({x.size(1)})),
        flags(f),
        eps(static_cast<float>(e)) {}
  memory::desc data, stat, param;
  Flags flags;
  float eps;

  /// The key of this problem's primitive of the given kind (stat and param follow from data).
  onednn::PrimitiveKey key(onednn::PrimitiveKind kind, prop_kind prop) const {
    onednn::PrimitiveKey k(kind);
    k.add(data).add(static_cast<int64_t>(prop)).add(static_cast<int64_t>(flags)).add(std::bit_cast<int32_t>(eps));
    return k;
  }
  LnForward::primitive_desc forward_pd(prop_kind prop) const {
    return {LnForward::desc(prop, data, stat, eps, flags), onednn::default_attr(), onednn::context().engine()};
  }
};

/// The execute() arguments, each a memory over a tensor's buffer.
class ArgMap {
 public:
  explicit ArgMap(const char* op) : op_(op) {}
  ArgMap& bind(int arg, const memory::desc& md, const Tensor& t) {
    try {
      args_.emplace(arg, memory(md, onednn::context().engine(), t.data_ptr()));
    } catch (const dnnl::error& e) {
      throw BackendError(tse::detail::str_cat(op_, ": oneDNN failed to wrap an operand: ", e.what()));
    }
    return *this;
  }
  std::unordered_map<int, memory> take() { return std::move(args_); }

 private:
  const char* op_;
  std::unordered_map<int, memory> args_;
};

constexpr const char* kLayerNorm = "layer_norm";

/// y from x; forward_training also writes the statistics.
void layer_norm_forward_onednn(const NormForward& a) {
  const LnProblem p(a.x, affine_flags(a.weight, a.bias), a.eps);
  const prop_kind prop = a.mean.defined() ? prop_kind::forward_training : prop_kind::forward_inference;
  onednn::Context& ctx = onednn::context();
  const onednn::CachedPrimitive prim = ctx.cache().get_or_create(
      p.key(onednn::PrimitiveKind::layer_norm_fwd, prop), [&]() -> dnnl::primitive_desc { return p.forward_pd(prop); },
      kLayerNorm);
  ArgMap args(kLayerNorm);
  args.bind(DNNL_ARG_SRC, p.data, a.x).bind(DNNL_ARG_DST, p.data, a.y);
  if (a.mean.defined()) args.bind(DNNL_ARG_MEAN, p.stat, a.mean).bind(DNNL_ARG_VARIANCE, p.stat, a.var);
  if (a.weight.defined()) args.bind(DNNL_ARG_SCALE, p.param, a.weight);
  if (a.bias.defined()) args.bind(DNNL_ARG_SHIFT, p.param, a.bias);
  ctx.execute(prim, args.take(), kLayerNorm);
}

/// dx and, with an affine map, dweight and dbias. The backward's use_shift only decides whether
/// dbias is computed (dx does not depend on the shift), so its flags come from the forward's
/// weight and the wanted bias gradient. oneDNN computes dweight whenever it has use_scale
/// (backward_data refuses the flag): an unwanted one goes to a scratch tensor.
void layer_norm_backward_onednn(const NormBackward& a) {
  const LnProblem p(a.x, affine_flags(a.weight, a.dbias), a.eps);
  const prop_kind prop = p.flags == Flags::none ? prop_kind::backward_data : prop_kind::backward;
  onednn::Context& ctx = onednn::context();
  const onednn::CachedPrimitive prim = ctx.cache().get_or_create(
      p.key(onednn::PrimitiveKind::layer_norm_bwd, prop),
      [&]() -> dnnl::primitive_desc {
        return LnBackward::primitive_desc(LnBackward::desc(prop, p.data, p.data, p.stat, p.eps, p.flags),
                                          onednn::default_attr(), ctx.engine(),
                                          p.forward_pd(prop_kind::forward_training));
      },
      kLayerNorm);
  const Tensor dweight = !has_flag(p.flags, Flags::use_scale) ? Tensor()
                         : a.dweight.defined()                ? a.dweight
                                                              : Tensor::empty({a.x.size(1)}, DType::f32);
  ArgMap args(kLayerNorm);
  args.bind(DNNL_ARG_SRC, p.data, a.x).bind(DNNL_ARG_DIFF_DST, p.data, a.dy).bind(DNNL_ARG_DIFF_SRC, p.data, a.dx);
  args.bind(DNNL_ARG_MEAN, p.stat, a.mean).bind(DNNL_ARG_VARIANCE, p.stat, a.var);
  if (dweight.defined()) args.bind(DNNL_ARG_SCALE, p.param, a.weight).bind(DNNL_ARG_DIFF_SCALE, p.param, dweight);
  if (a.dbias.defined()) {
    // oneDNN 2.6 refuses a use_shift backward without a SHIFT argument, although neither dx nor
    // dshift reads it (checked with a NaN shift): the dbias buffer stands in, so the node need
    // not keep the bias (which an optimizer may update in place before backward).
    args.bind(DNNL_ARG_SHIFT, p.param, a.dbias).bind(DNNL_ARG_DIFF_SHIFT, p.param, a.dbias);
  }
  ctx.execute(prim, args.take(), kLayerNorm);
}

}  // namespace

void layer_norm_forward(const NormForward& a) {
  if (a.x.dtype() == DType::f32) {
    layer_norm_forward_onednn(a);
    return;
  }
  const Blocks bk{a.x.size(0), 1, a.x.size(1), 1};
  dispatch_floating(a.x.dtype(), kLayerNorm, [&]<typename T>() { blocks_forward<T>(a, bk); });
}

void layer_norm_backward(const NormBackward& a) {
  if (a.x.dtype() == DType::f32) {
    layer_norm_backward_onednn(a);
    return;
  }
  const Blocks bk{a.x.size(0), 1, a.x.size(1), 1};
  dispatch_floating(a.x.dtype(), kLayerNorm, [&]<typename T>() { blocks_backward<T>(a, bk); });
}

void group_norm_forward(const NormForward& a, int64_t groups) {
  const Blocks bk{a.x.size(0) * groups, groups, a.x.size(1) / groups, a.x.size(2)};
  dispatch_floating(a.x.dtype(), "group_norm", [&]<typename T>() { blocks_forward<T>(a, bk); });
}

void group_norm_backward(const NormBackward& a, int64_t groups) {
  const Blocks bk{a.x.size(0) * groups, groups, a.x.size(1) / groups, a.x.size(2)};
  dispatch_floating(a.x.dtype(), "group_norm", [&]<typename T>() { blocks_backward<T>(a, bk); });
}

void batch_norm_forward(const NormForward& a, bool training) {
  dispatch_floating(a.x.dtype(), "batch_norm", [&]<typename T>() { batch_norm_forward_loops<T>(a, training); });
}

void batch_norm_backward(const NormBackward& a, bool training) {
  dispatch_floating(a.x.dtype(), "batch_norm", [&]<typename T>() { batch_norm_backward_loops<T>(a, training); });
}

}  // namespace tse::cpu
