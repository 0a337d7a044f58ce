// matmul, bmm, linear: argument checks, the arrangement of operands as (batch..., rows, cols)
// matrices, output allocation, dispatch and the tape nodes. Kernel: src/cpu/matmul.cpp.
//
// Every product here, forward or backward, is one call of the family's kernel on views: a 1-D
// operand becomes a 1-row or 1-column matrix, missing batch dims become size-1 (broadcast) dims,
// and a transposed operand (g @ b^T, a^T @ g, x @ W^T) is a stride swap, never a copy. Only an
// operand whose last two dims are not a plain row- or column-major matrix is made contiguous.
//
// Under autocast (tse/core/autocast.hpp) each product casts its f32 operands to bf16 in their
// memory order (linear's weight through the cache of converted weights) and the kernel returns
// f32. An op recorded under autocast captures the operand dtype, so its backward products are
// bf16 too whatever the mode at backward() time.
#include "tse/ops/matmul.hpp"

#include <algorithm>

#include "src/cpu/matmul.hpp"
#include "src/dispatch.hpp"
#include "src/ops/autocast.hpp"
#include "src/ops/op_utils.hpp"
#include "tse/autograd/function.hpp"
#include "tse/ops/reduction.hpp"

namespace tse::ops {

using autograd::Grads;
using autograd::needs_grad;
using autograd::record;
using autograd::SavedTensor;
using autograd::sum_to;
using tse::detail::KernelTable;

namespace {

const KernelTable<tse::detail::MatmulFn> k_matmul{"matmul", &cpu::matmul, TSE_CUDA_KERNEL(cuda::matmul)};

/// A view of t's storage with the given sizes and strides, outside autograd.
Tensor restride(const Tensor& t, const Shape& sizes, const Shape& strides) {
  return Tensor::from_storage(t.storage(), sizes, strides, t.storage_offset(), t.dtype());
}

/// The last two dims of t swapped (no copy).
Tensor transpose_last(const Tensor& t) {
  Shape sizes = t.sizes(), strides = t.strides();
  const size_t r = sizes.size();
  std::swap(sizes[r - 1], sizes[r - 2]);
  std::swap(strides[r - 1], strides[r - 2]);
  return restride(t, sizes, strides);
}

/// t with size-1 dims prepended up to rank r (no copy).
Tensor lift(const Tensor& t, int64_t r) {
  Shape sizes = t.sizes(), strides = t.strides();
  const int64_t extra = r - t.dim();
  if (extra <= 0) return t;
  const int64_t outer = t.numel() > 0 ? t.size(0) * t.stride(0) : 1;
  sizes.insert(sizes.begin(), static_cast<size_t>(extra), 1);
  strides.insert(strides.begin(), static_cast<size_t>(extra), std::max<int64_t>(outer, 1));
  return restride(t, sizes, strides);
}

/// A matmul operand as a matrix of rank r >= 2: a 1-D a (K) is (1, K), a 1-D b (K) is (K, 1).
Tensor as_matrix(const Tensor& t, bool is_left, int64_t r) {
  Tensor m = t;
  if (t.dim() == 1) {
    const int64_t n = t.size(0), s = t.stride(0);
    m = is_left ? restride(t, {1, n}, {n * s, s}) : restride(t, {n, 1}, {s, 1});
  }
  return lift(m, r);
}

/// t's batch dims and its row dim merged into one row dim: (B..., M, K) -> (B... * M, K), or an
/// undefined tensor when t's strides do not allow it without a copy.
Tensor fold_rows(const Tensor& t) {
  const int64_t r = t.dim(), cols = t.size(r - 1);
  int64_t rows = 1;
  for (int64_t d = 0; d + 1 < r; ++d) rows *= t.size(d);
  if (t.numel() == 0) return restride(t, {rows, cols}, {std::max<int64_t>(cols, 1), 1});
  if (cols != 1 && t.stride(r - 1) != 1) return Tensor();
  // Inner to outer, each dim of size > 1 must continue the one inside it.
  int64_t row_stride = std::max<int64_t>(cols, 1), next = -1;
  for (int64_t d = r - 2; d >= 0; --d) {
    if (t.size(d) == 1) continue;
    if (next < 0) {
      row_stride = t.stride(d);
    } else if (t.stride(d) != next) {
      return Tensor();
    }
    next = t.stride(d) * t.size(d);
  }
  return restride(t, {rows, cols}, {row_stride, 1});
}

/// t as a (rows, cols) matrix over its leading dims: a view where the strides allow, else a copy.
Tensor rows_of(const Tensor& t) {
  if (t.dim() == 2) return t;
  if (t.dim() == 1) return as_matrix(t, true, 2);
  const Tensor f = fold_rows(t);
  return f.defined() ? f : fold_rows(t.contiguous());
}

bool batch_is_broadcast(const Tensor& t) {
  for (int64_t d = 0; d + 2 < t.dim(); ++d)
    if (t.size(d) != 1) return false;
  return true;
}

/// t in a layout the kernel reads, with elements of dtype `operand` (a copy only where needed).
Tensor prepared_operand(const Tensor& t, DType operand) {
  const Tensor m = tse::detail::matmul_operand_ok(t) ? t : t.contiguous();
  return tse::detail::cast_operand(m, operand);
}

/// a (batch_a..., M, K) @ b (batch_b..., K, N) [+ bias] -> a new (batch..., M, N) tensor of a's
/// dtype, where a and b have one rank and their batch dims broadcast to batch, and the GEMM reads
/// both with elements of dtype `operand` (b may come cast already, as linear's cached weight).
/// When b has no batch of its own and a's batch folds into its rows, this is a single 2-D GEMM.
Tensor gemm(const Tensor& a, const Tensor& b, const Tensor& bias, const Shape& batch, DType operand, const char* op) {
  const int64_t r = a.dim();
  Shape out_sizes = batch;
  out_sizes.push_back(a.size(r - 2));
  out_sizes.push_back(b.size(r - 1));
  Tensor out = Tensor::empty(out_sizes, a.dtype(), a.device());
  const auto kernel = k_matmul.get(a.device(), op);
  const Tensor bc = bias.defined() ? bias.contiguous() : Tensor();
  if (r > 2 && batch_is_broadcast(b)) {
    const Tensor a2 = fold_rows(a);
    if (a2.defined()) {
      const Tensor b2 = restride(b, {b.size(r - 2), b.size(r - 1)}, {b.stride(r - 2), b.stride(r - 1)});
      const Tensor out2 = restride(out, {a2.size(0), b.size(r - 1)}, {std::max<int64_t>(b.size(r - 1), 1), 1});
      kernel(out2, prepared_operand(a2, operand), prepared_operand(b2, operand), bc);
      return out;
    }
  }
  kernel(out, prepared_operand(a, operand), prepared_operand(b, operand), bc);
  return out;
}

void check_operands(const Tensor& a, const Tensor& b, const char* op, const char* an, const char* bn) {
  detail::check_defined(a, op, an);
  detail::check_defined(b, op, bn);
  detail::check_same_device(a, b, op);
  detail::check_floating(a, op, an);
  detail::check_floating(b, op, bn);
  TSE_CHECK(a.dtype() == b.dtype(), op, ": dtype mismatch: '", an, "' is ", a.dtype(), " (shape ", a.shape_str(),
            "), '", bn, "' is ", b.dtype(), " (shape ", b.shape_str(), ")");
}

/// The shared body of matmul and bmm (ranks checked by the caller; K and the batch dims here).
Tensor matmul_impl(const Tensor& a, const Tensor& b, const char* op) {
  const int64_t r = std::max<int64_t>({a.dim(), b.dim(), 2});
  const Tensor a_ = as_matrix(a.detach(), true, r), b_ = as_matrix(b.detach(), false, r);
  TSE_CHECK(a_.size(r - 1) == b_.size(r - 2), op, ": inner dims differ: a ", a.shape_str(), " has K = ", a_.size(r - 1),
            ", b ", b.shape_str(), " has K = ", b_.size(r - 2));
  Shape batch(static_cast<size_t>(r - 2));
  for (int64_t d = 0; d + 2 < r; ++d) {
    const int64_t sa = a_.size(d), sb = b_.size(d);
    TSE_CHECK(sa == sb || sa == 1 || sb == 1, op, ": batch dims of a ", a.shape_str(), " and b ", b.shape_str(),
              " do not broadcast");
    batch[static_cast<size_t>(d)] = sa == 1 ? sb : sa;
  }
  const int64_t M = a_.size(r - 2), N = b_.size(r - 1);
  const DType operand = tse::detail::gemm_operand_dtype(a.dtype());
  const Tensor full = gemm(a_, b_, Tensor(), batch, operand, op);
  // The result drops the dims that 1-D operands added.
  Shape sizes = batch;
  if (a.dim() > 1) sizes.push_back(M);
  if (b.dim() > 1) sizes.push_back(N);
  Tensor out = restride(full, sizes, contiguous_strides(sizes));

  if (needs_grad({a, b})) {
    const bool ra = a.requires_grad(), rb = b.requires_grad();
    SavedTensor sa(rb ? a : Tensor()), sb(ra ? b : Tensor());
    const Shape a_sizes = a.sizes(), b_sizes = b.sizes(), a_full = a_.sizes(), b_full = b_.sizes();
    Shape full_sizes = batch;
    full_sizes.push_back(M);
    full_sizes.push_back(N);
    const bool b_broadcast = batch_is_broadcast(b_);
    record(op, {a, b}, {out}, [=](const Grads& g) -> Grads {
      const Tensor go = g[0].reshape(full_sizes);
      Tensor ga, gb;
      if (ra) {
        // da = g @ b^T, summed over the batch dims a was broadcast along.
        const Tensor bm = as_matrix(sb.unpack(op), false, r);
        ga = sum_to(gemm(go, transpose_last(bm), Tensor(), batch, operand, op), a_full).reshape(a_sizes);
      }
      if (rb) {
        const Tensor am = as_matrix(sa.unpack(op), true, r);
        if (b_broadcast) {
          // db = sum over the batch of a_i^T g_i = (a folded to rows)^T @ (g folded to rows).
          gb = gemm(transpose_last(rows_of(am)), rows_of(go), Tensor(), {}, operand, op).reshape(b_sizes);
        } else {
          gb = sum_to(gemm(transpose_last(am), go, Tensor(), batch, operand, op), b_full).reshape(b_sizes);
        }
      }
      return {ga, gb};
    });
  }
  return out;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_operands(a, b, "matmul", "a", "b");
  TSE_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: both arguments need at least 1 dim, got shapes ", a.shape_str(),
            " and ", b.shape_str());
  return matmul_impl(a, b, "matmul");
}

Tensor bmm(const Tensor& a, const Tensor& b) {
  check_operands(a, b, "bmm", "a", "b");
  TSE_CHECK(a.dim() == 3 && b.dim() == 3, "bmm: expects 3-D a (B, M, K) and b (B, K, N), got shapes ", a.shape_str(),
            " and ", b.shape_str());
  TSE_CHECK(a.size(0) == b.size(0), "bmm: batch sizes differ: a ", a.shape_str(), " has B = ", a.size(0), ", b ",
            b.shape_str(), " has B = ", b.size(0), " (bmm does not broadcast; use matmul)");
  return matmul_impl(a, b, "bmm");
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_operands(x, weight, "linear", "input", "weight");
  TSE_CHECK(weight.dim() == 2, "linear: argument 'weight' must be 2-D (out_features, in_features), got shape ",
            weight.shape_str());
  TSE_CHECK(x.dim() >= 1, "linear: argument 'input' must have at least 1 dim (..., in_features), got shape ",
            x.shape_str());
  const int64_t in = weight.size(1), out_features = weight.size(0);
  TSE_CHECK(x.size(x.dim() - 1) == in, "linear: inner dims differ: input ", x.shape_str(),
            " has in_features = ", x.size(x.dim() - 1), ", weight ", weight.shape_str(), " has in_features = ", in);
  if (bias.defined()) {
    detail::check_same_device(x, bias, "linear");
    TSE_CHECK(bias.dtype() == x.dtype(), "linear: dtype mismatch: 'bias' is ", bias.dtype(), " (shape ",
              bias.shape_str(), "), 'input' is ", x.dtype(), " (shape ", x.shape_str(), ")");
    TSE_CHECK(bias.dim() == 1 && bias.size(0) == out_features, "linear: argument 'bias' must have shape [",
              out_features, "] (out_features of weight ", weight.shape_str(), "), got ", bias.shape_str());
  }
  // out (rows, out) = x (rows, in) @ weight^T (in, out) + bias: one GEMM over the folded leading dims.
  const DType operand = tse::detail::gemm_operand_dtype(x.dtype());
  const Tensor x2 = rows_of(x.detach());
  const Tensor w = tse::detail::cast_weight(weight.detach(), operand);
  const Tensor out2 = gemm(x2, transpose_last(w), bias.defined() ? bias.detach() : Tensor(), {}, operand, "linear");
  Shape sizes = x.sizes();
  sizes.back() = out_features;
  Tensor out = restride(out2, sizes, contiguous_strides(sizes));

  if (needs_grad({x, weight, bias})) {
    const bool rx = x.requires_grad(), rw = weight.requires_grad(), rbias = bias.defined() && bias.requires_grad();
    SavedTensor sx(rw ? x : Tensor()), sw(rx ? weight : Tensor());
    const Shape x_sizes = x.sizes();
    record("linear", {x, weight, bias}, {out}, [=](const Grads& g) -> Grads {
      const Tensor g2 = rows_of(g[0]);  // (rows, out)
      Tensor gx, gw, gb;
      if (rx) {
        const Tensor wg = tse::detail::cast_weight(sw.unpack("linear"), operand);
        gx = gemm(g2, wg, Tensor(), {}, operand, "linear").reshape(x_sizes);
      }
      if (rw) gw = gemm(transpose_last(g2), rows_of(sx.unpack("linear")), Tensor(), {}, operand, "linear");
      if (rbias) gb = sum(g2, {0});
      return {gx, gw, gb};
    });
  }
  return out;
}

}  // namespace tse::ops
