// Copying shape ops: pad, roll, flip, repeat, tril/triu. Constant pad and repeat are strided
// views over the elementwise fill/copy kernels; the others use src/cpu/shape.cpp.
#include <algorithm>

#include "src/cpu/elementwise.hpp"
#include "src/cpu/shape.hpp"
#include "src/dispatch.hpp"
#include "src/ops/op_utils.hpp"
#include "tse/autograd/function.hpp"
#include "tse/ops/factory.hpp"
#include "tse/ops/reduction.hpp"
#include "tse/ops/shape.hpp"

namespace tse::ops {

using autograd::Grads;
using autograd::needs_grad;
using autograd::record;
using tse::detail::DimIndexMaps;
using tse::detail::KernelTable;

namespace {

const KernelTable<tse::detail::CopyFn> k_copy{"copy", &cpu::copy, TSE_CUDA_KERNEL(cuda::copy)};
const KernelTable<tse::detail::FillFn> k_fill{"fill", &cpu::fill, TSE_CUDA_KERNEL(cuda::fill)};
const KernelTable<tse::detail::IndexMapCopyFn> k_index_map_copy{"index_map_copy", &cpu::index_map_copy, nullptr};
const KernelTable<tse::detail::IndexMapAccumulateFn> k_index_map_accumulate{
    "index_map_accumulate", &cpu::index_map_accumulate, nullptr};
const KernelTable<tse::detail::TriangleFn> k_triangle{"triangle", &cpu::triangle, nullptr};

/// A view of t's storage outside autograd (the op records its own node).
Tensor raw_view(const Tensor& t, const Shape& sizes, const Shape& strides) {
  return Tensor::from_storage(t.storage(), sizes, strides, t.storage_offset(), t.dtype());
}

Tensor index_map_copy(const Tensor& x, const Shape& out_sizes, const DimIndexMaps& maps, const char* op) {
  Tensor out = Tensor::empty(out_sizes, x.dtype(), x.device());
  k_index_map_copy.get(x.device(), op)(out, x, maps);
  return out;
}

/// The adjoint of index_map_copy: sums grad back onto the source positions, one mapped dim at a
/// time (each pass shrinks one dim to its source size).
Tensor index_map_backward(const Tensor& grad, const Shape& src_sizes, const DimIndexMaps& maps, const char* op) {
  Tensor acc = grad.contiguous();
  for (int64_t d = static_cast<int64_t>(maps.size()) - 1; d >= 0; --d) {
    if (maps[d].empty()) continue;
    Shape sizes = acc.sizes();
    sizes[d] = src_sizes[d];
    Tensor next = zeros(sizes, acc.dtype(), acc.device());
    k_index_map_accumulate.get(acc.device(), op)(next, acc, d, maps[d]);
    acc = next;
  }
  return acc;
}

enum class PadMode { constant, reflect, replicate, circular };

PadMode parse_pad_mode(const std::string& mode) {
  if (mode == "constant") return PadMode::constant;
  if (mode == "reflect") return PadMode::reflect;
  if (mode == "replicate") return PadMode::replicate;
  if (mode == "circular") return PadMode::circular;
  throw ValueError(tse::detail::str_cat("pad: unknown mode '", mode,
                                        "' (expected constant, reflect, replicate or circular)"));
}

/// The source position of output position i of a dim of size n padded by `before` on the left.
int64_t pad_source(PadMode mode, int64_t n, int64_t before, int64_t i) {
  const int64_t p = i - before;
  switch (mode) {
    case PadMode::reflect: return p < 0 ? -p : (p >= n ? 2 * (n - 1) - p : p);
    case PadMode::replicate: return std::clamp<int64_t>(p, 0, n - 1);
    case PadMode::circular: return ((p % n) + n) % n;
    case PadMode::constant: break;
  }
  return p;
}

/// For output positions [start, start + count) of a padded dim, the source positions.
std::vector<int64_t> pad_source_positions(PadMode mode, int64_t n, int64_t before, int64_t start, int64_t count) {
  std::vector<int64_t> src(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) src[static_cast<size_t>(i)] = pad_source(mode, n, before, start + i);
  return src;
}

/// Reflect / replicate / circular padding with non-negative pads. x is copied into the interior
/// of out; then, dim by dim, each border slab is gathered from the part of out already filled
/// (dims before d complete, dims after d interior only), so the index maps are as long as the
/// pads, never as long as the signal. The backward folds the slabs back in reverse order.
Tensor pad_borders(const Tensor& x, PadMode mode, const Shape& out_sizes, const Shape& before, const Shape& after) {
  const int64_t nd = x.dim();
  const Shape x_sizes = x.sizes();
  // The border slabs of dim d: (first output position, length, source positions).
  struct Slab {
    int64_t start, length;
    std::vector<int64_t> src;
  };
  std::vector<std::vector<Slab>> slabs(static_cast<size_t>(nd));
  for (int64_t d = 0; d < nd; ++d) {
    const int64_t n = x_sizes[d];
    if (before[d] > 0) slabs[d].push_back({0, before[d], pad_source_positions(mode, n, before[d], 0, before[d])});
    if (after[d] > 0)
      slabs[d].push_back({before[d] + n, after[d], pad_source_positions(mode, n, before[d], before[d] + n, after[d])});
  }
  // t with dims >= from narrowed to the interior box.
  auto interior = [=](Tensor t, int64_t from) {
    for (int64_t d = from; d < nd; ++d) t = t.narrow(d, before[d], x_sizes[d]);
    return t;
  };
  Tensor out = Tensor::empty(out_sizes, x.dtype(), x.device());
  if (out.numel() > 0) {
    autograd::NoGradGuard ng;
    k_copy.get(x.device(), "pad")(interior(out, 0), x);
    for (int64_t d = 0; d < nd; ++d) {
      const Tensor filled = interior(out, d + 1);
      const Tensor src = filled.narrow(d, before[d], x_sizes[d]);
      for (const Slab& s : slabs[d]) {
        DimIndexMaps maps(static_cast<size_t>(nd));
        maps[d] = s.src;
        Shape sizes = src.sizes();
        sizes[d] = s.length;
        const Tensor gathered = index_map_copy(src, sizes, maps, "pad");
        k_copy.get(x.device(), "pad")(filled.narrow(d, s.start, s.length), gathered);
      }
    }
  }
  if (needs_grad({x})) {
    record("pad", {x}, {out}, [=](const Grads& g) -> Grads {
      Tensor acc = g[0];
      for (int64_t d = nd - 1; d >= 0; --d) {
        if (slabs[d].empty()) continue;
        const Tensor box = acc.narrow(d, before[d], x_sizes[d]);
        const Tensor next = box.is_contiguous() ? box.clone() : box.contiguous();  // never aliases g
        for (const Slab& s : slabs[d])
          k_index_map_accumulate.get(next.device(), "pad")(next, acc.narrow(d, s.start, s.length).contiguous(), d, s.src);
        acc = next;
      }
      return {acc.contiguous()};
    });
  }
  return out;
}

Tensor pad_constant(const Tensor& x, const Shape& out_sizes, const Shape& before, double value) {
  const int64_t nd = x.dim();
  // The box of x that survives cropping by negative pads, and where it lands in out.
  Shape src_start(nd), dst_start(nd), length(nd);
  bool covers_input = true;
  for (int64_t d = 0; d < nd; ++d) {
    const int64_t n = x.sizes()[d];
    const int64_t lo = std::max<int64_t>(0, -before[d]);
    const int64_t hi = std::min<int64_t>(n, out_sizes[d] - before[d]);
    src_start[d] = lo;
    length[d] = std::max<int64_t>(0, hi - lo);
    dst_start[d] = std::clamp<int64_t>(lo + before[d], 0, out_sizes[d]);
    covers_input = covers_input && lo == 0 && length[d] == n;
  }
  Tensor out = Tensor::empty(out_sizes, x.dtype(), x.device());
  if (out.numel() > 0) {
    autograd::NoGradGuard ng;
    // Fill only the border slabs of each dim; the box gets x.
    for (int64_t d = 0; d < nd; ++d) {
      const int64_t tail = out_sizes[d] - dst_start[d] - length[d];
      if (dst_start[d] > 0) k_fill.get(x.device(), "pad")(out.narrow(d, 0, dst_start[d]), value);
      if (tail > 0) k_fill.get(x.device(), "pad")(out.narrow(d, dst_start[d] + length[d], tail), value);
    }
    Tensor dst = out, src = x;
    for (int64_t d = 0; d < nd; ++d) {
      dst = dst.narrow(d, dst_start[d], length[d]);
      src = src.narrow(d, src_start[d], length[d]);
    }
    if (dst.numel() > 0) k_copy.get(x.device(), "pad")(dst, src);
  }
  if (needs_grad({x})) {
    const Shape x_sizes = x.sizes();
    record("pad", {x}, {out}, [=](const Grads& g) -> Grads {
      Tensor box = g[0];
      for (int64_t d = 0; d < nd; ++d) box = box.narrow(d, dst_start[d], length[d]);
      if (covers_input) return {box};
      Tensor gx = zeros(x_sizes, box.dtype(), box.device());
      Tensor region = gx;
      for (int64_t d = 0; d < nd; ++d) region = region.narrow(d, src_start[d], length[d]);
      region.copy_(box);
      return {gx};
    });
  }
  return out;
}

Tensor triangle_op(const Tensor& x, int64_t k, bool lower) {
  const char* op = lower ? "tril" : "triu";
  detail::check_defined(x, op, "input");
  TSE_CHECK(x.dim() >= 2, op, ": input must have at least 2 dims, got shape ", x.shape_str());
  Tensor out = Tensor::empty(x.sizes(), x.dtype(), x.device());
  k_triangle.get(x.device(), op)(out, x, k, lower);
  if (needs_grad({x}))
    record(op, {x}, {out}, [k, lower](const Grads& g) -> Grads { return {lower ? tril(g[0], k) : triu(g[0], k)}; });
  return out;
}

}  // namespace

Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, const std::string& mode, double value) {
  detail::check_defined(x, "pad", "input");
  const PadMode pad_mode = parse_pad_mode(mode);
  TSE_CHECK(pad_mode == PadMode::constant || value == 0.0, "pad: mode '", mode, "' takes no fill value, got ", value);
  const int64_t nd = x.dim();
  TSE_CHECK(pads.size() % 2 == 0, "pad: pads must hold (before, after) pairs, got ", pads.size(), " values");
  const int64_t padded_dims = static_cast<int64_t>(pads.size()) / 2;
  TSE_CHECK(padded_dims <= nd, "pad: ", pads.size(), " pad values pad ", padded_dims,
            " dims, but the input of shape ", x.shape_str(), " has ", nd);
  Shape out_sizes = x.sizes(), before(nd, 0), after(nd, 0);
  for (int64_t p = 0; p < padded_dims; ++p) {
    const int64_t d = nd - 1 - p;  // pads list the last dim first
    const int64_t n = x.sizes()[d];
    before[d] = pads[2 * p];
    after[d] = pads[2 * p + 1];
    out_sizes[d] = n + before[d] + after[d];
    TSE_CHECK(out_sizes[d] >= 0, "pad: pads (", before[d], ", ", after[d], ") of dim ", d,
              " leave a negative size for the input of shape ", x.shape_str());
    if (pad_mode == PadMode::reflect)
      TSE_CHECK(before[d] < std::max<int64_t>(n, 1) && after[d] < std::max<int64_t>(n, 1), "pad: reflect pads (",
                before[d], ", ", after[d], ") of dim ", d, " must be smaller than its size ", n, " (input shape ",
                x.shape_str(), ")");
    if (pad_mode == PadMode::circular)
      TSE_CHECK(before[d] <= n && after[d] <= n, "pad: circular pads (", before[d], ", ", after[d], ") of dim ", d,
                " must not exceed its size ", n, " (input shape ", x.shape_str(), ")");
    if (pad_mode == PadMode::replicate)
      TSE_CHECK(n > 0 || (before[d] <= 0 && after[d] <= 0), "pad: replicate cannot pad the empty dim ", d,
                " of the input of shape ", x.shape_str());
  }
  if (pad_mode == PadMode::constant) return pad_constant(x, out_sizes, before, value);
  const bool crops = std::any_of(before.begin(), before.end(), [](int64_t p) { return p < 0; }) ||
                     std::any_of(after.begin(), after.end(), [](int64_t p) { return p < 0; });
  if (!crops) return pad_borders(x, pad_mode, out_sizes, before, after);

  DimIndexMaps maps(static_cast<size_t>(nd));
  for (int64_t d = 0; d < nd; ++d)
    if (before[d] != 0 || after[d] != 0)
      maps[d] = pad_source_positions(pad_mode, x.sizes()[d], before[d], 0, out_sizes[d]);
  Tensor out = index_map_copy(x, out_sizes, maps, "pad");
  if (needs_grad({x})) {
    record("pad", {x}, {out}, [maps, x_sizes = x.sizes()](const Grads& g) -> Grads {
      return {index_map_backward(g[0], x_sizes, maps, "pad")};
    });
  }
  return out;
}

Tensor roll(const Tensor& x, const std::vector<int64_t>& shifts, const std::vector<int64_t>& dims) {
  detail::check_defined(x, "roll", "input");
  if (dims.empty()) {
    TSE_CHECK(shifts.size() == 1, "roll: without dims, shifts must hold one value (for the flattened tensor), got ",
              shifts.size());
    return roll(x.reshape({-1}), shifts, {0}).reshape(x.sizes());
  }
  TSE_CHECK(shifts.size() == dims.size(), "roll: shifts and dims must have the same length, got ", shifts.size(),
            " and ", dims.size());
  const int64_t nd = x.dim();
  // Shifts per dim, summed when a dim is listed twice (as torch does), modulo the size.
  std::vector<int64_t> shift(static_cast<size_t>(std::max<int64_t>(nd, 1)), 0);
  for (size_t i = 0; i < dims.size(); ++i) {
    const int64_t d = wrap_dim(dims[i], nd, "roll");
    const int64_t n = nd == 0 ? 1 : std::max<int64_t>(x.sizes()[d], 1);
    shift[d] = (shift[d] + shifts[i] % n + n) % n;
  }
  DimIndexMaps maps(static_cast<size_t>(nd));
  for (int64_t d = 0; d < nd; ++d) {
    const int64_t n = x.sizes()[d];
    if (shift[d] == 0) continue;
    maps[d].resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) maps[d][i] = (i - shift[d] + n) % n;
  }
  Tensor out = index_map_copy(x, x.sizes(), maps, "roll");
  if (needs_grad({x})) {
    std::vector<int64_t> back(shifts.size());
    for (size_t i = 0; i < shifts.size(); ++i) back[i] = -shifts[i];
    record("roll", {x}, {out}, [back, dims](const Grads& g) -> Grads { return {roll(g[0], back, dims)}; });
  }
  return out;
}

Tensor flip(const Tensor& x, const std::vector<int64_t>& dims) {
  detail::check_defined(x, "flip", "input");
  const int64_t nd = x.dim();
  std::vector<bool> flipped(static_cast<size_t>(std::max<int64_t>(nd, 1)), false);
  for (int64_t dim : dims) {
    const int64_t d = wrap_dim(dim, nd, "flip");
    TSE_CHECK(!flipped[d], "flip: dim ", dim, " appears more than once in dims ", shape_to_string(dims));
    flipped[d] = true;
  }
  DimIndexMaps maps(static_cast<size_t>(nd));
  for (int64_t d = 0; d < nd; ++d) {
    const int64_t n = x.sizes()[d];
    if (!flipped[d] || n <= 1) continue;
    maps[d].resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) maps[d][i] = n - 1 - i;
  }
  Tensor out = index_map_copy(x, x.sizes(), maps, "flip");
  if (needs_grad({x})) record("flip", {x}, {out}, [dims](const Grads& g) -> Grads { return {flip(g[0], dims)}; });
  return out;
}

Tensor repeat(const Tensor& x, const std::vector<int64_t>& repeats) {
  detail::check_defined(x, "repeat", "input");
  const int64_t m = static_cast<int64_t>(repeats.size()), n = x.dim();
  TSE_CHECK(m >= n, "repeat: ", m, " repeats for an input of shape ", x.shape_str(),
            "; repeats must cover every dim of the input");
  // out viewed as (repeat_0, size_0, repeat_1, size_1, ...) is x broadcast along the repeat dims
  // (stride 0), so one strided copy tiles it. Size-1 entries are left out of that view.
  Shape out_sizes(m), tiled_sizes, tiled_strides, repeat_dims;
  for (int64_t j = 0; j < m; ++j) {
    TSE_CHECK(repeats[j] >= 0, "repeat: negative repeat ", repeats[j], " for dim ", j);
    const int64_t xj = j - (m - n);  // leading repeats add new dims of size 1
    const int64_t size = xj >= 0 ? x.sizes()[xj] : 1;
    out_sizes[j] = size * repeats[j];
    if (repeats[j] != 1) {
      repeat_dims.push_back(static_cast<int64_t>(tiled_sizes.size()));
      tiled_sizes.push_back(repeats[j]);
      tiled_strides.push_back(0);
    }
    if (size != 1) {
      tiled_sizes.push_back(size);
      tiled_strides.push_back(x.strides()[xj]);
    }
  }
  Tensor out = Tensor::empty(out_sizes, x.dtype(), x.device());
  if (out.numel() > 0)
    k_copy.get(x.device(), "repeat")(raw_view(out, tiled_sizes, contiguous_strides(tiled_sizes)),
                                     raw_view(x, tiled_sizes, tiled_strides));
  if (needs_grad({x})) {
    record("repeat", {x}, {out}, [tiled_sizes, repeat_dims, x_sizes = x.sizes()](const Grads& g) -> Grads {
      if (repeat_dims.empty()) return {g[0].reshape(x_sizes)};
      return {sum(g[0].reshape(tiled_sizes), repeat_dims).reshape(x_sizes)};
    });
  }
  return out;
}

Tensor tril(const Tensor& x, int64_t k) { return triangle_op(x, k, true); }
Tensor triu(const Tensor& x, int64_t k) { return triangle_op(x, k, false); }

}  // namespace tse::ops
