// CPU kernels of the matmul family: one batched, broadcasting GEMM with an optional fused bias.
//
// float32 runs on oneDNN matmul primitives. The operands' own strides go into the memory
// descriptors (a transposed view is a column-major matrix, not a copy); oneDNN's matmul reads
// such plain strided layouts directly, so the descriptors are fully specified instead of
// format_tag::any and no reorder is ever needed. Broadcast batch dims are size 1 in the
// descriptors, which is oneDNN's broadcast rule. Each problem (all dims, strides, dtypes, the
// bias, the thread count) gets its primitive once, from the cache in onednn_context.hpp.
//
// bfloat16 operands (autocast) with an f32 out run on oneDNN's bf16 matmul where the CPU has bf16
// dot products; elsewhere they are widened to f32 (exact) in the same memory order and run as an
// f32 GEMM: the same products, summed in f32, just without the speed-up.
//
// float64 (absent from this oneDNN) runs on the blocked reference loops below, over the same
// operand layouts, so the f64 gradchecks and the f32-vs-f64 tests see the same arrangement of
// views as the production path.
#include "src/cpu/matmul.hpp"

#include <algorithm>
#include <atomic>
#include <vector>

#include "src/core/layout.hpp"
#include "src/core/parallel.hpp"
#include "src/cpu/dtype_dispatch.hpp"
#include "src/cpu/elementwise.hpp"
#include "src/cpu/onednn_context.hpp"

namespace tse::cpu {
namespace {

using dnnl::memory;

/// The sizes and strides an operand shows a GEMM: size-1 matrix dims get the strides
/// matmul_operand_ok assumes, batch dims that broadcast against out (size 1, or stride 0)
/// become size 1 with a harmless stride.
struct Layout {
  memory::dims sizes;
  memory::dims strides;
};

Layout operand_layout(const Tensor& t) {
  const int64_t r = t.dim();
  Layout l;
  l.sizes.assign(t.sizes().begin(), t.sizes().end());
  l.strides.assign(t.strides().begin(), t.strides().end());
  const int64_t rows = t.size(r - 2), cols = t.size(r - 1);
  if (rows == 1) l.strides[r - 2] = cols;
  if (cols == 1) l.strides[r - 1] = 1;
  int64_t extent = std::max(rows * l.strides[r - 2], cols * l.strides[r - 1]);
  for (int64_t d = r - 3; d >= 0; --d) {
    if (l.sizes[d] == 1 || l.strides[d] == 0) {
      l.sizes[d] = 1;
      l.strides[d] = extent;
    }
    extent = std::max(extent, l.sizes[d] * l.strides[d]);
  }
  return l;
}

std::atomic<bool> g_force_bf16_emulation{false};

// ---- float32 and bf16 operands: oneDNN --------------------------------------------------------------

void matmul_onednn(const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& bias) {
  using onednn::context;
  const int64_t r = out.dim();
  const Layout la = operand_layout(a), lb = operand_layout(b);
  const memory::dims out_sizes(out.sizes().begin(), out.sizes().end());
  const memory::dims out_strides(out.strides().begin(), out.strides().end());
  const memory::data_type operand_type = a.dtype() == DType::bf16 ? memory::data_type::bf16 : memory::data_type::f32;
  const memory::desc a_md(la.sizes, operand_type, la.strides);
  const memory::desc b_md(lb.sizes, operand_type, lb.strides);
  const memory::desc c_md(out_sizes, memory::data_type::f32, out_strides);
  memory::desc bias_md;
  if (bias.defined()) {
    memory::dims bs(static_cast<size_t>(r), 1), bst(static_cast<size_t>(r), out.size(r - 1));
    bs.back() = out.size(r - 1);
    bst.back() = 1;
    bias_md = memory::desc(bs, memory::data_type::f32, bst);
  }

  onednn::PrimitiveKey key(onednn::PrimitiveKind::matmul);
  key.add(a_md).add(b_md).add(c_md).add(bias.defined() ? 1 : 0);
  if (bias.defined()) key.add(bias_md);

  onednn::Context& ctx = context();
  const onednn::CachedPrimitive p = ctx.cache().get_or_create(
      key,
      [&]() -> dnnl::primitive_desc {
        const dnnl::matmul::desc d =
            bias.defined() ? dnnl::matmul::desc(a_md, b_md, bias_md, c_md) : dnnl::matmul::desc(a_md, b_md, c_md);
        return dnnl::matmul::primitive_desc(d, onednn::default_attr(), ctx.engine());
      },
      "matmul");

  std::unordered_map<int, memory> args;
  try {
    args.emplace(DNNL_ARG_SRC, memory(a_md, ctx.engine(), a.data_ptr()));
    args.emplace(DNNL_ARG_WEIGHTS, memory(b_md, ctx.engine(), b.data_ptr()));
    args.emplace(DNNL_ARG_DST, memory(c_md, ctx.engine(), out.data_ptr()));
    if (bias.defined()) args.emplace(DNNL_ARG_BIAS, memory(bias_md, ctx.engine(), bias.data_ptr()));
  } catch (const dnnl::error& e) {
    throw BackendError(tse::detail::str_cat("matmul: oneDNN failed to wrap an operand: ", e.what()));
  }
  ctx.execute(p, std::move(args), "matmul");
}

// ---- float64 (and the reference for every dtype): blocked loops -------------------------------------

/// Element offsets of operand t's matrix for every batch index of out (broadcast dims repeat).
std::vector<int64_t> batch_offsets(const Layout& l, const Tensor& out) {
  const int64_t nb = out.dim() - 2;
  int64_t count = 1;
  for (int64_t d = 0; d < nb; ++d) count *= out.size(d);
  std::vector<int64_t> offs(static_cast<size_t>(count), 0);
  for (int64_t i = 0; i < count; ++i) {
    int64_t rem = i, off = 0;
    for (int64_t d = nb - 1; d >= 0; --d) {
      const int64_t idx = rem % out.size(d);
      rem /= out.size(d);
      if (l.sizes[static_cast<size_t>(d)] != 1) off += idx * l.strides[static_cast<size_t>(d)];
    }
    offs[static_cast<size_t>(i)] = off;
  }
  return offs;
}

template <typename T>
void matmul_reference(const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& bias) {
  const int64_t r = out.dim();
  const int64_t M = out.size(r - 2), N = out.size(r - 1), K = a.size(r - 1);
  if (out.numel() == 0) return;
  const Layout la = operand_layout(a), lb = operand_layout(b);
  const std::vector<int64_t> a_off = batch_offsets(la, out), b_off = batch_offsets(lb, out);
  const int64_t ars = la.strides[static_cast<size_t>(r - 2)], acs = la.strides[static_cast<size_t>(r - 1)];
  const int64_t brs = lb.strides[static_cast<size_t>(r - 2)], bcs = lb.strides[static_cast<size_t>(r - 1)];
  const T* ap = static_cast<const T*>(a.data_ptr());
  const T* bp = static_cast<const T*>(b.data_ptr());
  T* op = static_cast<T*>(out.data_ptr());
  const T* biasp = bias.defined() ? static_cast<const T*>(bias.data_ptr()) : nullptr;

  // B rows must be unit-stride for the inner loop to vectorise: pack each distinct B matrix once.
  std::vector<T> packed;
  std::vector<int64_t> b_row_base(b_off.size());
  int64_t b_row_stride = brs;
  if (bcs != 1) {
    std::vector<int64_t> distinct(b_off);
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    packed.resize(distinct.size() * static_cast<size_t>(K * N));
    for (size_t m = 0; m < distinct.size(); ++m) {
      T* dst = packed.data() + static_cast<int64_t>(m) * K * N;
      for (int64_t k = 0; k < K; ++k)
        for (int64_t n = 0; n < N; ++n) dst[k * N + n] = bp[distinct[m] + k * brs + n * bcs];
    }
    for (size_t i = 0; i < b_off.size(); ++i) {
      const size_t m =
          static_cast<size_t>(std::lower_bound(distinct.begin(), distinct.end(), b_off[i]) - distinct.begin());
      b_row_base[i] = static_cast<int64_t>(m) * K * N;
    }
    bp = packed.data();
    b_row_stride = N;
  } else {
    b_row_base = b_off;
  }

  // K blocks keep a panel of B rows in cache while it is applied to consecutive output rows.
  constexpr int64_t kBlockK = 128;
  const int64_t rows = static_cast<int64_t>(a_off.size()) * M;
  const int64_t grain = std::max<int64_t>(1, tse::detail::kParallelGrain / std::max<int64_t>(1, K * N));
  tse::detail::parallel_for(0, rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; ++row) {
      T* o = op + row * N;
      if (biasp) {
        std::copy(biasp, biasp + N, o);
      } else {
        std::fill(o, o + N, T(0));
      }
    }
    for (int64_t k0 = 0; k0 < K; k0 += kBlockK) {
      const int64_t k1 = std::min(K, k0 + kBlockK);
      for (int64_t row = r0; row < r1; ++row) {
        const int64_t bt = row / M, i = row % M;
        const T* arow = ap + a_off[static_cast<size_t>(bt)] + i * ars;
        const T* bmat = bp + b_row_base[static_cast<size_t>(bt)];
        T* __restrict o = op + row * N;
        for (int64_t k = k0; k < k1; ++k) {
          const T av = arow[k * acs];
          const T* __restrict brow = bmat + k * b_row_stride;
          for (int64_t n = 0; n < N; ++n) o[n] += av * brow[n];
        }
      }
    }
  });
}

}  // namespace

bool bf16_gemm_native() {
  static const bool native = [] {
    const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
    const auto bf16 = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_bf16);
    return (isa & bf16) == bf16;  // oneDNN's ISA values are feature masks; AMX includes this one
  }();
  return native && !g_force_bf16_emulation.load(std::memory_order_relaxed);
}

void force_bf16_gemm_emulation(bool on) { g_force_bf16_emulation.store(on, std::memory_order_relaxed); }

void matmul(const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& bias) {
  if (out.numel() == 0) return;
  if (a.dtype() == DType::bf16) {
    if (bf16_gemm_native() && a.size(a.dim() - 1) > 0) {
      matmul_onednn(out, a, b, bias);
      return;
    }
    const auto widened = [](const Tensor& t) {
      Tensor w = tse::detail::empty_in_memory_order(t, DType::f32);
      if (w.numel() > 0) copy(w, t);
      return w;
    };
    matmul(out, widened(a), widened(b), bias);
    return;
  }
  if (out.dtype() == DType::f32 && a.size(a.dim() - 1) > 0) {
    matmul_onednn(out, a, b, bias);
    return;
  }
  dispatch_floating(out.dtype(), "matmul", [&]<typename T>() { matmul_reference<T>(out, a, b, bias); });
}

}  // namespace tse::cpu
