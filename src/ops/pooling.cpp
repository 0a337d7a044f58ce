// avg_pool1d, avg_pool2d: argument checks and output sizes (PyTorch's rules), the (planes, H, W)
// view, dispatch and the tape node. Kernels: src/cpu/pooling.cpp.
#include "tse/ops/pooling.hpp"

#include <string>

#include "src/cpu/pooling.hpp"
#include "src/dispatch.hpp"
#include "src/ops/op_utils.hpp"
#include "tse/autograd/function.hpp"

namespace tse::ops {

using autograd::Grads;
using autograd::needs_grad;
using autograd::record;
using tse::detail::AvgPoolParams;
using tse::detail::KernelTable;
using tse::detail::PoolAxis;

namespace {

const KernelTable<tse::detail::AvgPoolFn> k_avg_pool{"avg_pool", &cpu::avg_pool, nullptr};
const KernelTable<tse::detail::AvgPoolBackwardFn> k_avg_pool_backward{"avg_pool_backward", &cpu::avg_pool_backward,
                                                                      nullptr};

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

/// One or two values (PyTorch's int-or-pair) as {H, W}.
std::vector<int64_t> pair_of(const std::vector<int64_t>& v, const char* op, const char* arg, const Tensor& x) {
  TSE_CHECK(v.size() == 1 || v.size() == 2, op, ": argument '", arg, "' needs 1 or 2 values, got ", shape_to_string(v),
            " (input shape ", x.shape_str(), ")");
  return v.size() == 1 ? std::vector<int64_t>{v[0], v[0]} : v;
}

/// Checks one axis's arguments and fills its output size (PyTorch's pooling_output_shape).
PoolAxis make_axis(int64_t in, int64_t kernel, int64_t stride, int64_t pad, bool ceil_mode, const char* op,
                   const char* axis, const Tensor& x) {
  TSE_CHECK(kernel > 0, op, ": kernel_size must be positive, got ", kernel, " along ", axis, " (input shape ",
            x.shape_str(), ")");
  TSE_CHECK(stride > 0, op, ": stride must be positive, got ", stride, " along ", axis, " (input shape ", x.shape_str(),
            ")");
  TSE_CHECK(pad >= 0, op, ": padding must be non-negative, got ", pad, " along ", axis, " (input shape ", x.shape_str(),
            ")");
  TSE_CHECK(pad <= kernel / 2, op, ": padding ", pad, " along ", axis, " must be at most half of kernel_size ", kernel,
            " (input shape ", x.shape_str(), ")");
  int64_t out = floor_div(in + 2 * pad - kernel + (ceil_mode ? stride - 1 : 0), stride) + 1;
  // PyTorch drops a ceil_mode window that would start in the right padding.
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  TSE_CHECK(out >= 1, op, ": the output along ", axis, " would be empty: input size ", in, ", padding ", pad,
            ", kernel_size ", kernel, ", stride ", stride, " (input shape ", x.shape_str(), ")");
  return {in, out, kernel, stride, pad};
}

/// Checks the input (rank: spatial + 1 unbatched or spatial + 2 batched; non-empty channel and
/// spatial dims; an empty batch is fine).
void check_input(const Tensor& x, int64_t spatial, const char* op) {
  detail::check_defined(x, op, "input");
  detail::check_floating(x, op, "input");
  const char* layouts = spatial == 1 ? "(N, C, L) or (C, L)" : "(N, C, H, W) or (C, H, W)";
  TSE_CHECK(x.dim() == spatial + 1 || x.dim() == spatial + 2, op, ": expects a ", spatial + 2, "-D or ", spatial + 1,
            "-D input ", layouts, ", got shape ", x.shape_str());
  const bool batched = x.dim() == spatial + 2;
  for (int64_t d = batched ? 1 : 0; d < x.dim(); ++d)
    TSE_CHECK(x.size(d) > 0, op, ": expects non-empty channel and spatial dims ", layouts, ", got shape ",
              x.shape_str());
}

/// The pool over the last `spatial` dims of x (a 1-D pool leaves p.h the identity axis).
Tensor avg_pool_impl(const Tensor& x, const AvgPoolParams& p, int64_t spatial, const char* op) {
  Shape out_sizes = x.sizes();
  out_sizes.back() = p.w.out;
  if (spatial == 2) out_sizes[out_sizes.size() - 2] = p.h.out;
  Tensor out = Tensor::empty(out_sizes, x.dtype(), x.device());
  k_avg_pool.get(x.device(), op)(out, x.detach().contiguous(), p);

  if (needs_grad({x})) {
    const Shape in_sizes = x.sizes();
    record(op, {x}, {out}, [p, op, in_sizes](const Grads& g) -> Grads {
      Tensor gx = Tensor::empty(in_sizes, g[0].dtype(), g[0].device());
      k_avg_pool_backward.get(gx.device(), op)(gx, g[0].contiguous(), p);
      return {gx};
    });
  }
  return out;
}

}  // namespace

Tensor avg_pool1d(const Tensor& x, int64_t kernel_size, int64_t stride, int64_t padding, bool ceil_mode,
                  bool count_include_pad) {
  const char* op = "avg_pool1d";
  check_input(x, 1, op);
  AvgPoolParams p;
  p.w = make_axis(x.size(-1), kernel_size, stride == 0 ? kernel_size : stride, padding, ceil_mode, op, "L", x);
  p.count_include_pad = count_include_pad;
  return avg_pool_impl(x, p, 1, op);
}

Tensor avg_pool2d(const Tensor& x, const std::vector<int64_t>& kernel_size, const std::vector<int64_t>& stride,
                  const std::vector<int64_t>& padding, bool ceil_mode, bool count_include_pad,
                  std::optional<int64_t> divisor_override) {
  const char* op = "avg_pool2d";
  check_input(x, 2, op);
  const std::vector<int64_t> k = pair_of(kernel_size, op, "kernel_size", x);
  const std::vector<int64_t> s = stride.empty() ? k : pair_of(stride, op, "stride", x);
  const std::vector<int64_t> pad = pair_of(padding, op, "padding", x);
  TSE_CHECK(!divisor_override || *divisor_override != 0, op, ": divisor_override must be non-zero (input shape ",
            x.shape_str(), ")");
  AvgPoolParams p;
  p.h = make_axis(x.size(-2), k[0], s[0], pad[0], ceil_mode, op, "H", x);
  p.w = make_axis(x.size(-1), k[1], s[1], pad[1], ceil_mode, op, "W", x);
  p.count_include_pad = count_include_pad;
  p.divisor_override = divisor_override.value_or(0);
  return avg_pool_impl(x, p, 2, op);
}

}  // namespace tse::ops
