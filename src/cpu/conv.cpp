// CPU kernels of the convolution family: forward, backward-data and backward-weights of one 2-D
// grouped convolution (see conv.hpp for how 1-D and transposed convs map onto it).
//
// float32 runs on oneDNN convolution primitives, one per problem from the cache in
// onednn_context.hpp, with the bias fused into the forward and the bias gradient computed by the
// backward-weights primitive. Which layouts each primitive gets is decided by layouts_for()
// below, from measurements at the models' shapes.
//
// Depthwise convs (one input channel per group, several groups) run on the direct loops below
// in float32 too. oneDNN 2.6 has AVX2 depthwise kernels only for short filters (forward up to 9
// taps, weight gradient 3) and only on blocked layouts; otherwise it falls back to its GEMM-based
// conv, one tiny GEMM per channel. Depthwise conv1d over 256 channels x 626 frames, 1 thread:
//   taps   these loops   oneDNN with reorders from / to NCW (primitive alone)
//    3       0.11 ms       0.13 ms (0.04 ms, jit_dw)
//    9       0.16 ms       0.16 ms (0.08 ms, jit_dw)
//   33       0.36 ms       6-15 ms (GEMM-based)        <- the Conformer's conv module
// So do the rare geometries oneDNN cannot express (a right padding at or below -stride, from
// the output_padding of a dilated transposed conv).
//
// float64 (absent from this oneDNN) always runs on the direct loops.
#include "src/cpu/conv.hpp"

#include <algorithm>
#include <cstring>
#include <memory>
#include <unordered_map>
#include <vector>

#include "src/core/parallel.hpp"
#include "src/cpu/dtype_dispatch.hpp"
#include "src/cpu/onednn_context.hpp"
#include "tse/core/storage.hpp"

namespace tse::cpu {
namespace {

// ---- the problem's sizes ----------------------------------------------------------------------

struct ConvDims {
  int64_t N, C, H, W;  // x
  int64_t O, KH, KW;   // w (O, Cg, KH, KW)
  int64_t OH, OW;      // y
  int64_t Cg, Og;      // input and output channels per group
};

ConvDims dims_of(const Tensor& x, const Tensor& w, const Tensor& y, const ConvGeometry& g) {
  ConvDims d{};
  d.N = x.size(0), d.C = x.size(1), d.H = x.size(2), d.W = x.size(3);
  d.O = w.size(0), d.KH = w.size(2), d.KW = w.size(3);
  d.OH = y.size(2), d.OW = y.size(3);
  d.Cg = w.size(1), d.Og = d.O / g.groups;
  return d;
}

/// One input channel per group, several groups (a dense conv of one input channel is not).
bool is_depthwise(const Tensor& w, const ConvGeometry& g) { return w.size(1) == 1 && g.groups > 1; }

// ---- direct loops (float64, depthwise float32, and what oneDNN cannot express) ------------------
//
// Each pass works on whole rows: it copies the input rows it reads into a zero-padded buffer
// (so that no tap needs a bounds check) and runs one of two row kernels over them, which keep
// their partial sums in vector registers across all taps of a filter row.

int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

/// One AVX2 register of T (GCC / Clang vector extension; lowered to SSE pairs without AVX).
template <typename T>
struct Vec {
  typedef T type __attribute__((vector_size(32)));  // (a using-alias would drop the attribute)
  static constexpr int64_t lanes = 32 / sizeof(T);
  static type load(const T* p) {
    type v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static void store(T* p, type v) { std::memcpy(p, &v, sizeof v); }
};

/// y[o .. o + kVecs * lanes) += sum over t of w[t] * x[o + t * dilation ...], in registers.
template <int64_t kVecs, typename T>
inline void correlate_tile(T* y, const T* x, const T* w, int64_t taps, int64_t dilation) {
  using V = Vec<T>;
  typename V::type acc[kVecs];
  for (int64_t v = 0; v < kVecs; ++v) acc[v] = V::load(y + v * V::lanes);
  for (int64_t t = 0; t < taps; ++t) {
    const T* xt = x + t * dilation;
    const T a = w[t];
    for (int64_t v = 0; v < kVecs; ++v) acc[v] += a * V::load(xt + v * V::lanes);
  }
  for (int64_t v = 0; v < kVecs; ++v) V::store(y + v * V::lanes, acc[v]);
}

/// y[o] += sum over t < taps of w[t] * x[o * stride + t * dilation], for o < n.
template <typename T>
void correlate_row(T* y, const T* x, const T* w, int64_t taps, int64_t dilation, int64_t stride, int64_t n) {
  constexpr int64_t lanes = Vec<T>::lanes, kVecs = 8;  // 8 accumulators cover the FMA latency
  int64_t o = 0;
  if (stride == 1) {
    for (; o + kVecs * lanes <= n; o += kVecs * lanes) correlate_tile<kVecs>(y + o, x + o, w, taps, dilation);
    for (; o + lanes <= n; o += lanes) correlate_tile<1>(y + o, x + o, w, taps, dilation);
  }
  for (; o < n; ++o) {
    T acc = y[o];
    for (int64_t t = 0; t < taps; ++t) acc += w[t] * x[o * stride + t * dilation];
    y[o] = acc;
  }
}

/// dw[t] += sum over o < n of dy[o] * x[o + t * dilation] for t < kTaps, in registers.
template <int64_t kTaps, typename T>
inline void tap_dots_block(T* dw, const T* dy, const T* x, int64_t dilation, int64_t n) {
  using V = Vec<T>;
  typename V::type acc[kTaps] = {};
  int64_t o = 0;
  for (; o + V::lanes <= n; o += V::lanes) {
    const typename V::type g = V::load(dy + o);
    for (int64_t t = 0; t < kTaps; ++t) acc[t] += g * V::load(x + o + t * dilation);
  }
  for (int64_t t = 0; t < kTaps; ++t) {
    T sum = 0;
    for (int64_t l = 0; l < V::lanes; ++l) sum += acc[t][l];
    for (int64_t r = o; r < n; ++r) sum += dy[r] * x[r + t * dilation];
    dw[t] += sum;
  }
}

/// dw[t] += sum over o < n of dy[o] * x[o * stride + t * dilation], for t < taps.
template <typename T>
void tap_dots_row(T* dw, const T* dy, const T* x, int64_t taps, int64_t dilation, int64_t stride, int64_t n) {
  if (stride != 1) {
    for (int64_t t = 0; t < taps; ++t) {
      T acc = 0;
      for (int64_t o = 0; o < n; ++o) acc += dy[o] * x[o * stride + t * dilation];
      dw[t] += acc;
    }
    return;
  }
  constexpr int64_t kBlock = 8;
  int64_t t = 0;
  for (; t + kBlock <= taps; t += kBlock) tap_dots_block<kBlock>(dw + t, dy, x + t * dilation, dilation, n);
  for (; t < taps; ++t) tap_dots_block<1>(dw + t, dy, x + t * dilation, dilation, n);
}

/// A plane of rows with zeros around them: row r, element j is src[r][q] when
/// j + offset == q * spread for a q in [0, src_cols), else 0. spread > 1 interleaves zeros (the
/// stride of a conv, seen from its backward-data pass).
template <typename T>
struct PaddedPlane {
  std::vector<T> data;
  int64_t cols = 0;
  const T* row(int64_t r) const { return data.data() + r * cols; }

  void fill(const T* src, int64_t rows, int64_t src_cols, int64_t spread, int64_t offset, int64_t padded_cols) {
    cols = padded_cols;
    data.assign(static_cast<size_t>(rows * cols), T(0));
    // The q whose j = q * spread - offset lies in [0, cols).
    const int64_t q0 = std::max<int64_t>(0, ceil_div(offset, spread));
    const int64_t q1 = std::min(src_cols, ceil_div(cols + offset, spread));
    for (int64_t r = 0; r < rows; ++r) {
      T* row = data.data() + r * cols;
      const T* s = src + r * src_cols;
      if (spread == 1) {
        if (q0 < q1) std::copy(s + q0, s + q1, row + (q0 - offset));
      } else {
        for (int64_t q = q0; q < q1; ++q) row[q * spread - offset] = s[q];
      }
    }
  }
};

/// The grain of a parallel loop whose iterations each do `work` multiply-adds.
int64_t grain_for(int64_t work) {
  return std::max<int64_t>(1, tse::detail::kParallelGrain / std::max<int64_t>(1, work));
}

/// The input row a filter row kh reads for output row oh, or -1 when it is padding.
int64_t input_row(const ConvDims& d, const ConvGeometry& g, int64_t oh, int64_t kh) {
  const int64_t ih = oh * g.stride[0] - g.pad_l[0] + kh * g.dilation[0];
  return ih >= 0 && ih < d.H ? ih : -1;
}

/// x's channel plane (n, c) padded for the forward and weight passes: row ih, element
/// ow * stride + kw * dilation is x[ih][ow * stride - pad_l + kw * dilation].
template <typename T>
void pad_input(PaddedPlane<T>& p, const T* x, const ConvDims& d, const ConvGeometry& g) {
  p.fill(x, d.H, d.W, 1, -g.pad_l[1], (d.OW - 1) * g.stride[1] + (d.KW - 1) * g.dilation[1] + 1);
}

template <typename T>
void forward_loops(const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias, const ConvGeometry& g) {
  const ConvDims d = dims_of(x, w, y, g);
  const T* xp = static_cast<const T*>(x.data_ptr());
  const T* wp = static_cast<const T*>(w.data_ptr());
  const T* bp = bias.defined() ? static_cast<const T*>(bias.data_ptr()) : nullptr;
  T* yp = static_cast<T*>(y.data_ptr());
  const int64_t plane = d.OH * d.OW;
  // One output plane (n, o) per iteration: planes are disjoint, so no two threads write one element.
  tse::detail::parallel_for(0, d.N * d.O, grain_for(d.Cg * d.KH * d.KW * plane), [&](int64_t b, int64_t e) {
    PaddedPlane<T> xpad;
    for (int64_t no = b; no < e; ++no) {
      const int64_t n = no / d.O, o = no % d.O, c0 = (o / d.Og) * d.Cg;
      T* yo = yp + no * plane;
      std::fill(yo, yo + plane, bp ? bp[o] : T(0));
      for (int64_t cl = 0; cl < d.Cg; ++cl) {
        pad_input(xpad, xp + (n * d.C + c0 + cl) * d.H * d.W, d, g);
        const T* wc = wp + (o * d.Cg + cl) * d.KH * d.KW;
        for (int64_t oh = 0; oh < d.OH; ++oh)
          for (int64_t kh = 0; kh < d.KH; ++kh) {
            const int64_t ih = input_row(d, g, oh, kh);
            if (ih >= 0)
              correlate_row(yo + oh * d.OW, xpad.row(ih), wc + kh * d.KW, d.KW, g.dilation[1], g.stride[1], d.OW);
          }
      }
    }
  });
}

// dx[ih][iw] sums w[kh][kw] * dy[oh][ow] over ih = oh * sh - ph + kh * dh, iw = ow * sw - pw +
// kw * dw: with dy's rows spread by the stride and padded, each dx row is a unit-stride
// correlation with the filter row reversed.
template <typename T>
void backward_data_loops(const Tensor& dx, const Tensor& dy, const Tensor& w, const ConvGeometry& g) {
  const ConvDims d = dims_of(dx, w, dy, g);
  const T* dyp = static_cast<const T*>(dy.data_ptr());
  const T* wp = static_cast<const T*>(w.data_ptr());
  T* dxp = static_cast<T*>(dx.data_ptr());
  const int64_t span = (d.KW - 1) * g.dilation[1], sh = g.stride[0];
  // One input plane (n, c) per iteration, gathering from the Og output planes of its group.
  tse::detail::parallel_for(0, d.N * d.C, grain_for(d.Og * d.KH * d.KW * d.H * d.W), [&](int64_t b, int64_t e) {
    PaddedPlane<T> dypad;
    std::vector<T> flipped(static_cast<size_t>(d.KH * d.KW));
    for (int64_t nc = b; nc < e; ++nc) {
      const int64_t n = nc / d.C, c = nc % d.C, o0 = (c / d.Cg) * d.Og, cl = c % d.Cg;
      T* dxc = dxp + nc * d.H * d.W;
      std::fill(dxc, dxc + d.H * d.W, T(0));
      for (int64_t o = o0; o < o0 + d.Og; ++o) {
        // element iw + t * dw of a padded row is dy[iw + pw - (KW - 1 - t) * dw] (spread by sw)
        dypad.fill(dyp + (n * d.O + o) * d.OH * d.OW, d.OH, d.OW, g.stride[1], g.pad_l[1] - span, d.W + span);
        const T* wc = wp + (o * d.Cg + cl) * d.KH * d.KW;
        for (int64_t i = 0; i < d.KH * d.KW; ++i) flipped[i] = wc[(i / d.KW) * d.KW + d.KW - 1 - i % d.KW];
        for (int64_t ih = 0; ih < d.H; ++ih)
          for (int64_t kh = 0; kh < d.KH; ++kh) {
            const int64_t num = ih + g.pad_l[0] - kh * g.dilation[0];  // oh * sh
            if (num < 0 || num % sh != 0 || num / sh >= d.OH) continue;
            correlate_row(dxc + ih * d.W, dypad.row(num / sh), flipped.data() + kh * d.KW, d.KW, g.dilation[1], 1, d.W);
          }
      }
    }
  });
}

template <typename T>
void backward_weights_loops(const Tensor& dw, const Tensor& dbias, const Tensor& x, const Tensor& dy,
                            const ConvGeometry& g) {
  const ConvDims d = dims_of(x, dw, dy, g);
  const T* xp = static_cast<const T*>(x.data_ptr());
  const T* dyp = static_cast<const T*>(dy.data_ptr());
  T* dwp = static_cast<T*>(dw.data_ptr());
  const int64_t plane = d.OH * d.OW, taps = d.KH * d.KW;
  // One filter (o, cl) per iteration: it sums its taps' products over the whole batch.
  tse::detail::parallel_for(0, d.O * d.Cg, grain_for(d.N * taps * plane), [&](int64_t b, int64_t e) {
    PaddedPlane<T> xpad;
    for (int64_t oc = b; oc < e; ++oc) {
      const int64_t o = oc / d.Cg, c = (o / d.Og) * d.Cg + oc % d.Cg;
      T* dwc = dwp + oc * taps;
      std::fill(dwc, dwc + taps, T(0));
      for (int64_t n = 0; n < d.N; ++n) {
        pad_input(xpad, xp + (n * d.C + c) * d.H * d.W, d, g);
        const T* dyo = dyp + (n * d.O + o) * plane;
        for (int64_t oh = 0; oh < d.OH; ++oh)
          for (int64_t kh = 0; kh < d.KH; ++kh) {
            const int64_t ih = input_row(d, g, oh, kh);
            if (ih >= 0)
              tap_dots_row(dwc + kh * d.KW, dyo + oh * d.OW, xpad.row(ih), d.KW, g.dilation[1], g.stride[1], d.OW);
          }
      }
    }
  });
  if (!dbias.defined()) return;
  T* dbp = static_cast<T*>(dbias.data_ptr());
  tse::detail::parallel_for(0, d.O, grain_for(d.N * plane), [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; ++o) {
      T acc = 0;
      for (int64_t n = 0; n < d.N; ++n) {
        const T* dyo = dyp + (n * d.O + o) * plane;
#pragma omp simd reduction(+ : acc)
        for (int64_t i = 0; i < plane; ++i) acc += dyo[i];
      }
      dbp[o] = acc;
    }
  });
}

// ---- float32: oneDNN ----------------------------------------------------------------------------

using dnnl::memory;
using onednn::context;
using onednn::PrimitiveKind;

/// oneDNN requires pad_r > -stride (its output-size check divides with truncation).
bool onednn_can_express(const ConvGeometry& g) { return g.pad_r[0] > -g.stride[0] && g.pad_r[1] > -g.stride[1]; }

bool use_onednn(DType dtype, const Tensor& w, const ConvGeometry& g) {
  return dtype == DType::f32 && !is_depthwise(w, g) && onednn_can_express(g);
}

memory::dims dims(const Tensor& t) { return memory::dims(t.sizes().begin(), t.sizes().end()); }

/// The plain descriptors of the user's tensors and the geometry, as oneDNN takes them.
struct Problem {
  memory::desc src, weights, dst, bias;  // bias: a zero desc when absent
  memory::dims strides, dilates, pad_l, pad_r;
};

Problem problem_of(const Tensor& x, const Tensor& w, const Tensor& y, bool with_bias, const ConvGeometry& g) {
  using tag = memory::format_tag;
  constexpr auto f32 = memory::data_type::f32;
  Problem p;
  p.src = memory::desc(dims(x), f32, tag::nchw);
  p.dst = memory::desc(dims(y), f32, tag::nchw);
  // Grouped weights get oneDNN's leading groups dim: (O, Cg, KH, KW) is (G, O / G, Cg, KH, KW).
  p.weights = g.groups == 1
                  ? memory::desc(dims(w), f32, tag::oihw)
                  : memory::desc({g.groups, w.size(0) / g.groups, w.size(1), w.size(2), w.size(3)}, f32, tag::goihw);
  if (with_bias) p.bias = memory::desc({w.size(0)}, f32, tag::x);
  for (int i = 0; i < 2; ++i) {
    p.strides.push_back(g.stride[i]);
    p.dilates.push_back(g.dilation[i] - 1);
    p.pad_l.push_back(g.pad_l[i]);
    p.pad_r.push_back(g.pad_r[i]);
  }
  return p;
}

/// Which arguments a primitive lets oneDNN lay out (format_tag::any, then reorders from and to
/// the user's plain tensors) instead of reading and writing the user's plain layout in place.
struct Layouts {
  bool activations = false;  // src and dst (diff_src, diff_dst)
  bool weights = false;
};

/// The layouts of each primitive, chosen with tse-bench at the models' shapes (1 thread, ranges
/// over repeated runs on a shared machine):
///  - forward: oneDNN's own (format_tag::any, reorders in and out): its blocked JIT kernel beats
///    the im2col + GEMM kernel it runs on plain layouts (HTSAT patch embedding 4x4 / 4: 0.37-0.43
///    ms including the reorders vs 0.43-0.60 ms), except for 1x1 convs, which on plain layouts are
///    one GEMM and need no reorder (Conformer pointwise 256 -> 512 x 626: 2.05-2.36 ms plain vs
///    2.25-2.51 ms blocked with reorders);
///  - backward data and weights: plain. The blocked weight-gradient kernel is slower for the
///    one-channel patch embedding (backward 1.35-1.8 ms plain vs 5-10 ms), and no faster for the
///    pointwise conv.
Layouts layouts_for(PrimitiveKind kind, const Tensor& w, const ConvGeometry& g) {
  if (kind != PrimitiveKind::conv_fwd) return {};
  const bool pointwise = w.size(2) == 1 && w.size(3) == 1 && g.stride == std::array<int64_t, 2>{1, 1} &&
                         g.pad_l == std::array<int64_t, 2>{0, 0} && g.pad_r == std::array<int64_t, 2>{0, 0};
  return pointwise ? Layouts{} : Layouts{true, true};
}

memory::desc requested(const memory::desc& user, bool preferred) {
  return preferred ? memory::desc(user.dims(), user.data_type(), memory::format_tag::any) : user;
}

onednn::PrimitiveKey key_of(PrimitiveKind kind, const Problem& p, const Layouts& l) {
  onednn::PrimitiveKey key(kind);
  key.add(p.src).add(p.weights).add(p.dst).add(p.bias);
  for (const memory::dims* v : {&p.strides, &p.dilates, &p.pad_l, &p.pad_r})
    for (int64_t e : *v) key.add(e);
  key.add(l.activations ? 1 : 0).add(l.weights ? 1 : 0);
  return key;
}

dnnl::convolution_forward::primitive_desc forward_pd(const Problem& p, const Layouts& l, dnnl::prop_kind prop) {
  const memory::desc src = requested(p.src, l.activations), dst = requested(p.dst, l.activations);
  const memory::desc wei = requested(p.weights, l.weights);
  constexpr auto algo = dnnl::algorithm::convolution_direct;
  const dnnl::convolution_forward::desc d =
      p.bias.is_zero()
          ? dnnl::convolution_forward::desc(prop, algo, src, wei, dst, p.strides, p.dilates, p.pad_l, p.pad_r)
          : dnnl::convolution_forward::desc(prop, algo, src, wei, p.bias, dst, p.strides, p.dilates, p.pad_l, p.pad_r);
  return {d, onednn::default_attr(), context().engine()};
}

memory wrap(const memory::desc& md, void* data, const char* op) {
  try {
    return memory(md, context().engine(), data);
  } catch (const dnnl::error& e) {
    throw BackendError(tse::detail::str_cat(op, ": oneDNN failed to wrap an operand: ", e.what()));
  }
}

/// Copies `from` (layout from_md) into `to` (layout to_md) with a cached reorder primitive.
void reorder(const memory::desc& from_md, void* from, const memory::desc& to_md, void* to, const char* op) {
  onednn::PrimitiveKey key(PrimitiveKind::reorder);
  key.add(from_md).add(to_md);
  onednn::Context& ctx = context();
  const onednn::CachedPrimitive p = ctx.cache().get_or_create(
      key,
      [&]() -> dnnl::primitive_desc {
        const dnnl::reorder::primitive_desc rpd(ctx.engine(), from_md, ctx.engine(), to_md, onednn::default_attr());
        // The C++ API keeps reorder descriptors apart from the op ones the cache stores; a clone of
        // the C handle is the same descriptor under the cache's type.
        dnnl_primitive_desc_t clone = nullptr;
        dnnl::error::wrap_c_api(dnnl_primitive_desc_clone(&clone, rpd.get()), "could not clone a reorder descriptor");
        dnnl::primitive_desc pd;
        pd.reset(clone);
        return pd;
      },
      op);
  ctx.execute(p, {{DNNL_ARG_FROM, wrap(from_md, from, op)}, {DNNL_ARG_TO, wrap(to_md, to, op)}}, op);
}

/// One tensor argument of a primitive, in the user's plain layout.
struct UserArg {
  int id;  // DNNL_ARG_*
  memory::desc md;
  void* data;
  bool written;
};

/// Runs p on args: an argument whose layout the primitive wants differently goes through a
/// temporary buffer, reordered in before the primitive (inputs) or out after it (outputs).
void execute_with_reorders(const onednn::CachedPrimitive& p, const std::vector<UserArg>& args, const char* op) {
  struct Pending {
    memory::desc md;
    void* data;
    const UserArg* user;
  };
  std::unordered_map<int, memory> bound;
  std::vector<std::shared_ptr<Storage>> buffers;
  std::vector<Pending> write_back;
  for (const UserArg& a : args) {
    const memory::desc want = p.pd.query_md(dnnl::query::exec_arg_md, a.id);
    if (want == a.md) {
      bound.emplace(a.id, wrap(a.md, a.data, op));
      continue;
    }
    buffers.push_back(std::make_shared<Storage>(want.get_size(), Device::cpu()));
    void* buf = buffers.back()->data();
    if (a.written) {
      write_back.push_back({want, buf, &a});
    } else {
      reorder(a.md, a.data, want, buf, op);
    }
    bound.emplace(a.id, wrap(want, buf, op));
  }
  context().execute(p, std::move(bound), op);
  for (const Pending& w : write_back) reorder(w.md, w.data, w.user->md, w.user->data, op);
}

void forward_onednn(const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias, const ConvGeometry& g,
                    bool training) {
  constexpr const char* op = "conv forward";
  const Problem p = problem_of(x, w, y, bias.defined(), g);
  const Layouts l = layouts_for(PrimitiveKind::conv_fwd, w, g);
  const dnnl::prop_kind prop = training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
  onednn::PrimitiveKey key = key_of(PrimitiveKind::conv_fwd, p, l);
  key.add(static_cast<int64_t>(prop));
  const onednn::CachedPrimitive prim = context().cache().get_or_create(
      key, [&]() -> dnnl::primitive_desc { return forward_pd(p, l, prop); }, op);
  std::vector<UserArg> args = {{DNNL_ARG_SRC, p.src, x.data_ptr(), false},
                               {DNNL_ARG_WEIGHTS, p.weights, w.data_ptr(), false},
                               {DNNL_ARG_DST, p.dst, y.data_ptr(), true}};
  if (bias.defined()) args.push_back({DNNL_ARG_BIAS, p.bias, bias.data_ptr(), false});
  execute_with_reorders(prim, args, op);
}

void backward_data_onednn(const Tensor& dx, const Tensor& dy, const Tensor& w, const ConvGeometry& g) {
  constexpr const char* op = "conv backward-data";
  const Problem p = problem_of(dx, w, dy, false, g);
  const Layouts l = layouts_for(PrimitiveKind::conv_bwd_data, w, g);
  const onednn::CachedPrimitive prim = context().cache().get_or_create(
      key_of(PrimitiveKind::conv_bwd_data, p, l),
      [&]() -> dnnl::primitive_desc {
        const auto hint = forward_pd(p, l, dnnl::prop_kind::forward_training);
        const dnnl::convolution_backward_data::desc d(
            dnnl::algorithm::convolution_direct, requested(p.src, l.activations), requested(p.weights, l.weights),
            requested(p.dst, l.activations), p.strides, p.dilates, p.pad_l, p.pad_r);
        return dnnl::convolution_backward_data::primitive_desc(d, onednn::default_attr(), context().engine(), hint);
      },
      op);
  execute_with_reorders(prim,
                        {{DNNL_ARG_DIFF_SRC, p.src, dx.data_ptr(), true},
                         {DNNL_ARG_WEIGHTS, p.weights, w.data_ptr(), false},
                         {DNNL_ARG_DIFF_DST, p.dst, dy.data_ptr(), false}},
                        op);
}

void backward_weights_onednn(const Tensor& dw, const Tensor& dbias, const Tensor& x, const Tensor& dy,
                             const ConvGeometry& g) {
  constexpr const char* op = "conv backward-weights";
  const Problem p = problem_of(x, dw, dy, dbias.defined(), g);
  const Layouts l = layouts_for(PrimitiveKind::conv_bwd_weights, dw, g);
  const onednn::CachedPrimitive prim = context().cache().get_or_create(
      key_of(PrimitiveKind::conv_bwd_weights, p, l),
      [&]() -> dnnl::primitive_desc {
        const auto hint = forward_pd(p, l, dnnl::prop_kind::forward_training);
        const memory::desc src = requested(p.src, l.activations), dst = requested(p.dst, l.activations);
        const memory::desc wei = requested(p.weights, l.weights);
        constexpr auto algo = dnnl::algorithm::convolution_direct;
        using Desc = dnnl::convolution_backward_weights::desc;
        const Desc d = p.bias.is_zero() ? Desc(algo, src, wei, dst, p.strides, p.dilates, p.pad_l, p.pad_r)
                                        : Desc(algo, src, wei, p.bias, dst, p.strides, p.dilates, p.pad_l, p.pad_r);
        return dnnl::convolution_backward_weights::primitive_desc(d, onednn::default_attr(), context().engine(), hint);
      },
      op);
  std::vector<UserArg> args = {{DNNL_ARG_SRC, p.src, x.data_ptr(), false},
                               {DNNL_ARG_DIFF_DST, p.dst, dy.data_ptr(), false},
                               {DNNL_ARG_DIFF_WEIGHTS, p.weights, dw.data_ptr(), true}};
  if (dbias.defined()) args.push_back({DNNL_ARG_DIFF_BIAS, p.bias, dbias.data_ptr(), true});
  execute_with_reorders(prim, args, op);
}

}  // namespace

void conv_forward(const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias, const ConvGeometry& g,
                  bool training) {
  if (y.numel() == 0) return;
  if (use_onednn(y.dtype(), w, g)) {
    forward_onednn(y, x, w, bias, g, training);
    return;
  }
  dispatch_floating(y.dtype(), "conv", [&]<typename T>() { forward_loops<T>(y, x, w, bias, g); });
}

void conv_backward_data(const Tensor& dx, const Tensor& dy, const Tensor& w, const ConvGeometry& g) {
  if (dx.numel() == 0) return;
  if (use_onednn(dx.dtype(), w, g)) {
    backward_data_onednn(dx, dy, w, g);
    return;
  }
  dispatch_floating(dx.dtype(), "conv", [&]<typename T>() { backward_data_loops<T>(dx, dy, w, g); });
}

void conv_backward_weights(const Tensor& dw, const Tensor& dbias, const Tensor& x, const Tensor& dy,
                           const ConvGeometry& g) {
  if (dy.numel() == 0) {  // an empty batch: the sums over it are zero
    Tensor(dw).zero_();
    if (dbias.defined()) Tensor(dbias).zero_();
    return;
  }
  if (use_onednn(dw.dtype(), dw, g)) {
    backward_weights_onednn(dw, dbias, x, dy, g);
    return;
  }
  dispatch_floating(dw.dtype(), "conv", [&]<typename T>() { backward_weights_loops<T>(dw, dbias, x, dy, g); });
}

}  // namespace tse::cpu
