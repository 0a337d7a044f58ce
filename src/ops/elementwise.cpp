// Elementwise ops: argument checks, dtype promotion, output allocation, kernel dispatch and
// the tape nodes. Kernels: src/cpu/elementwise.cpp, src/cuda/elementwise.cu.
#include "tse/ops/elementwise.hpp"

#include <cmath>
#include <limits>

#include "src/cpu/elementwise.hpp"
#include "src/dispatch.hpp"
#include "src/ops/op_utils.hpp"
#include "tse/autograd/function.hpp"
#include "tse/ops/activation.hpp"
#include "tse/ops/factory.hpp"
#include "tse/ops/shape.hpp"

namespace tse::ops {

using autograd::Grads;
using autograd::needs_grad;
using autograd::record;
using autograd::SavedTensor;
using autograd::sum_to;
using tse::detail::Binary;
using tse::detail::KernelTable;
using tse::detail::Unary;
using tse::detail::UnaryParams;

namespace {

const KernelTable<tse::detail::UnaryFn> k_unary{"unary", &cpu::unary, TSE_CUDA_KERNEL(cuda::unary)};
const KernelTable<tse::detail::UnaryBackwardFn> k_unary_backward{"unary_backward", &cpu::unary_backward,
                                                                  TSE_CUDA_KERNEL(cuda::unary_backward)};
const KernelTable<tse::detail::BinaryFn> k_binary{"binary", &cpu::binary, TSE_CUDA_KERNEL(cuda::binary)};
const KernelTable<tse::detail::WhereFn> k_where{"where", &cpu::where, TSE_CUDA_KERNEL(cuda::where)};
const KernelTable<tse::detail::CopyFn> k_copy{"copy", &cpu::copy, TSE_CUDA_KERNEL(cuda::copy)};
const KernelTable<tse::detail::FillFn> k_fill{"fill", &cpu::fill, TSE_CUDA_KERNEL(cuda::fill)};

Tensor convert_if_needed(const Tensor& t, DType dtype) { return t.dtype() == dtype ? t : to_dtype(t, dtype); }

/// Gradient g of a broadcast output, reduced and converted back to input x's shape and dtype.
Tensor grad_for_sizes(const Tensor& g, const Shape& sizes, DType dtype, bool wanted) {
  if (!wanted) return Tensor();
  return convert_if_needed(sum_to(g, sizes), dtype);
}

Tensor scalar_like(const Tensor& t, double v) {
  const DType dt = (!is_floating(t.dtype()) && v != std::floor(v)) ? DType::f32 : t.dtype();
  return scalar_tensor(v, dt, t.device());
}

// ---- unary ---------------------------------------------------------------------------------------

Tensor unary_op(Unary op, const char* name, const Tensor& x, UnaryParams p = {}, bool save_output = false) {
  detail::check_defined(x, name, "input");
  Tensor out = Tensor::empty(x.sizes(), x.dtype(), x.device());
  k_unary.get(x.device(), name)(op, out, x, p);
  if (needs_grad({x})) {
    SavedTensor saved(save_output ? out : x);
    record(name, {x}, {out}, [op, name, p, saved](const Grads& g) -> Grads {
      const Tensor s = saved.unpack(name);
      Tensor gi = Tensor::empty(g[0].sizes(), g[0].dtype(), g[0].device());
      k_unary_backward.get(g[0].device(), name)(op, gi, g[0], s, p);
      return {gi};
    });
  }
  return out;
}

// ---- binary --------------------------------------------------------------------------------------

struct Prepared {
  Tensor a, b;  // converted to the compute dtype
  Shape out_sizes;
  DType dtype;
};

Prepared prepare_binary(const Tensor& a, const Tensor& b, const char* op) {
  detail::check_defined(a, op, "input");
  detail::check_defined(b, op, "other");
  detail::check_same_device(a, b, op);
  Prepared p;
  p.out_sizes = broadcast_shapes(a.sizes(), b.sizes(), op);
  p.dtype = promote_types(a.dtype(), b.dtype());
  if (p.dtype == DType::f16 || p.dtype == DType::bf16) {
    TSE_CHECK(!a.device().is_cpu(), op, ": ", p.dtype, " is a storage type on cpu; convert to float32 first");
  }
  {
    autograd::NoGradGuard ng;  // conversion is differentiated by grad_for instead
    p.a = convert_if_needed(a, p.dtype);
    p.b = convert_if_needed(b, p.dtype);
  }
  return p;
}

Tensor binary_raw(Binary op, const Prepared& p, double alpha, const char* name, DType out_dtype) {
  Tensor out = Tensor::empty(p.out_sizes, out_dtype, p.a.device());
  k_binary.get(p.a.device(), name)(op, out, p.a, p.b, alpha);
  return out;
}

Tensor compare(Binary op, const Tensor& a, const Tensor& b, const char* name) {
  Prepared p = prepare_binary(a, b, name);
  return binary_raw(op, p, 1.0, name, DType::b8);
}

}  // namespace

namespace detail {
void check_inplace(const Tensor& self, const char* op) {
  check_defined(self, op, "self");
  if (autograd::GradMode::is_enabled() && self.requires_grad()) {
    throw AutogradError(tse::detail::str_cat(
        op, ": in-place operation on a tensor that requires grad; use the out-of-place op, or run it under no_grad"));
  }
}
}  // namespace detail

Tensor add(const Tensor& a, const Tensor& b, double alpha) {
  Prepared p = prepare_binary(a, b, "add");
  Tensor out = binary_raw(Binary::add, p, alpha, "add", p.dtype);
  if (needs_grad({a, b})) {
    const Shape as = a.sizes(), bs = b.sizes();
    const DType at = a.dtype(), bt = b.dtype();
    const bool ra = a.requires_grad(), rb = b.requires_grad();
    record("add", {a, b}, {out}, [=](const Grads& g) -> Grads {
      return {grad_for_sizes(g[0], as, at, ra), grad_for_sizes(alpha == 1.0 ? g[0] : mul(g[0], alpha), bs, bt, rb)};
    });
  }
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b, double alpha) {
  Prepared p = prepare_binary(a, b, "sub");
  Tensor out = binary_raw(Binary::sub, p, alpha, "sub", p.dtype);
  if (needs_grad({a, b})) {
    const Shape as = a.sizes(), bs = b.sizes();
    const DType at = a.dtype(), bt = b.dtype();
    const bool ra = a.requires_grad(), rb = b.requires_grad();
    record("sub", {a, b}, {out}, [=](const Grads& g) -> Grads {
      return {grad_for_sizes(g[0], as, at, ra), grad_for_sizes(mul(g[0], -alpha), bs, bt, rb)};
    });
  }
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Prepared p = prepare_binary(a, b, "mul");
  Tensor out = binary_raw(Binary::mul, p, 1.0, "mul", p.dtype);
  if (needs_grad({a, b})) {
    SavedTensor sa(b.requires_grad() ? p.a : Tensor()), sb(a.requires_grad() ? p.b : Tensor());
    const bool ra = a.requires_grad(), rb = b.requires_grad();
    const Shape as = a.sizes(), bs = b.sizes();
    const DType at = a.dtype(), bt = b.dtype();
    record("mul", {a, b}, {out}, [=](const Grads& g) -> Grads {
      Tensor ga, gb;
      if (ra) ga = grad_for_sizes(mul(g[0], sb.unpack("mul")), as, at, true);
      if (rb) gb = grad_for_sizes(mul(g[0], sa.unpack("mul")), bs, bt, true);
      return {ga, gb};
    });
  }
  return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Prepared p = prepare_binary(a, b, "div");
  TSE_CHECK(is_floating(p.dtype), "div: integer division is not supported (inputs ", a.dtype(), ", ", b.dtype(),
            "); convert to a floating dtype first");
  Tensor out = binary_raw(Binary::div, p, 1.0, "div", p.dtype);
  if (needs_grad({a, b})) {
    SavedTensor sb(p.b), so(b.requires_grad() ? out : Tensor());
    const bool ra = a.requires_grad(), rb = b.requires_grad();
    const Shape as = a.sizes(), bs = b.sizes();
    const DType at = a.dtype(), bt = b.dtype();
    record("div", {a, b}, {out}, [=](const Grads& g) -> Grads {
      const Tensor bv = sb.unpack("div");
      Tensor ga, gb;
      if (ra) ga = grad_for_sizes(div(g[0], bv), as, at, true);
      if (rb) gb = grad_for_sizes(neg(div(mul(g[0], so.unpack("div")), bv)), bs, bt, true);
      return {ga, gb};
    });
  }
  return out;
}

Tensor add(const Tensor& a, double b) { return add(a, scalar_like(a, b)); }
Tensor sub(const Tensor& a, double b) { return sub(a, scalar_like(a, b)); }
Tensor rsub(const Tensor& a, double b) { return sub(scalar_like(a, b), a); }
Tensor mul(const Tensor& a, double b) { return mul(a, scalar_like(a, b)); }
Tensor div(const Tensor& a, double b) {
  const DType dt = is_floating(a.dtype()) ? a.dtype() : DType::f32;
  return div(a, scalar_tensor(b, dt, a.device()));
}
Tensor rdiv(const Tensor& a, double b) {
  const DType dt = is_floating(a.dtype()) ? a.dtype() : DType::f32;
  return div(scalar_tensor(b, dt, a.device()), a);
}

Tensor pow(const Tensor& a, double exponent) {
  detail::check_floating(a, "pow", "input");
  return unary_op(Unary::pow_scalar, "pow", a, {exponent, 0.0});
}

Tensor pow(const Tensor& a, const Tensor& e) {
  Prepared p = prepare_binary(a, e, "pow");
  TSE_CHECK(is_floating(p.dtype), "pow: tensor exponents need floating dtypes, got ", a.dtype(), " and ", e.dtype());
  Tensor out = binary_raw(Binary::pow, p, 1.0, "pow", p.dtype);
  if (needs_grad({a, e})) {
    SavedTensor sa(p.a), se(p.b), so(out);
    const bool ra = a.requires_grad(), re = e.requires_grad();
    const Shape as = a.sizes(), es = e.sizes();
    const DType at = a.dtype(), et = e.dtype();
    record("pow", {a, e}, {out}, [=](const Grads& g) -> Grads {
      const Tensor av = sa.unpack("pow"), ev = se.unpack("pow");
      Tensor ga, gexp;
      if (ra) ga = grad_for_sizes(mul(g[0], mul(ev, pow(av, sub(ev, 1.0)))), as, at, true);
      if (re) {
        // d/de a^e = a^e log a; defined as 0 where a == 0 (and e >= 0), as PyTorch does.
        Tensor lg = mul(so.unpack("pow"), log(av));
        lg = masked_fill(lg, logical_and(eq(av, 0.0), ge(ev, 0.0)), 0.0);
        gexp = grad_for_sizes(mul(g[0], lg), es, et, true);
      }
      return {ga, gexp};
    });
  }
  return out;
}

Tensor atan2(const Tensor& y, const Tensor& x) {
  Prepared p = prepare_binary(y, x, "atan2");
  TSE_CHECK(is_floating(p.dtype), "atan2: needs floating dtypes, got ", y.dtype(), " and ", x.dtype());
  Tensor out = binary_raw(Binary::atan2, p, 1.0, "atan2", p.dtype);
  if (needs_grad({y, x})) {
    SavedTensor sy(p.a), sx(p.b);
    const bool ry = y.requires_grad(), rx = x.requires_grad();
    const Shape ys = y.sizes(), xs = x.sizes();
    const DType yt = y.dtype(), xt = x.dtype();
    record("atan2", {y, x}, {out}, [=](const Grads& g) -> Grads {
      const Tensor yv = sy.unpack("atan2"), xv = sx.unpack("atan2");
      const Tensor r2 = add(mul(xv, xv), mul(yv, yv));
      Tensor gy, gx;
      if (ry) gy = grad_for_sizes(div(mul(g[0], xv), r2), ys, yt, true);
      if (rx) gx = grad_for_sizes(neg(div(mul(g[0], yv), r2)), xs, xt, true);
      return {gy, gx};
    });
  }
  return out;
}

namespace {
Tensor max_min(const Tensor& a, const Tensor& b, bool is_max) {
  const char* name = is_max ? "maximum" : "minimum";
  Prepared p = prepare_binary(a, b, name);
  Tensor out = binary_raw(is_max ? Binary::maximum : Binary::minimum, p, 1.0, name, p.dtype);
  if (needs_grad({a, b})) {
    SavedTensor sa(p.a), sb(p.b);
    const bool ra = a.requires_grad(), rb = b.requires_grad();
    const Shape as = a.sizes(), bs = b.sizes();
    const DType at = a.dtype(), bt = b.dtype();
    record(name, {a, b}, {out}, [=](const Grads& g) -> Grads {
      const Tensor av = sa.unpack(name), bv = sb.unpack(name);
      // The winner gets the gradient; ties split it half/half (PyTorch).
      const Tensor wa = is_max ? gt(av, bv) : lt(av, bv);
      const Tensor tie = eq(av, bv);
      const Tensor half = mul(g[0], 0.5);
      const Tensor zero = zeros({}, g[0].dtype(), g[0].device());
      Tensor ga, gb;
      if (ra) ga = grad_for_sizes(where(wa, g[0], where(tie, half, zero)), as, at, true);
      if (rb) gb = grad_for_sizes(where(logical_or(wa, tie), where(tie, half, zero), g[0]), bs, bt, true);
      return {ga, gb};
    });
  }
  return out;
}
}  // namespace

Tensor maximum(const Tensor& a, const Tensor& b) { return max_min(a, b, true); }
Tensor minimum(const Tensor& a, const Tensor& b) { return max_min(a, b, false); }

// ---- unary math ------------------------------------------------------------------------------------

Tensor neg(const Tensor& x) {
  if (is_integral(x.dtype())) return unary_op(Unary::neg, "neg", x);
  detail::check_floating(x, "neg", "input");
  return unary_op(Unary::neg, "neg", x);
}
Tensor exp(const Tensor& x) { detail::check_floating(x, "exp", "input"); return unary_op(Unary::exp, "exp", x, {}, true); }
Tensor log(const Tensor& x) { detail::check_floating(x, "log", "input"); return unary_op(Unary::log, "log", x); }
Tensor log10(const Tensor& x) { detail::check_floating(x, "log10", "input"); return unary_op(Unary::log10, "log10", x); }
Tensor sqrt(const Tensor& x) { detail::check_floating(x, "sqrt", "input"); return unary_op(Unary::sqrt, "sqrt", x); }
Tensor rsqrt(const Tensor& x) { detail::check_floating(x, "rsqrt", "input"); return unary_op(Unary::rsqrt, "rsqrt", x); }
Tensor abs(const Tensor& x) {
  if (is_integral(x.dtype())) return unary_op(Unary::abs, "abs", x);
  detail::check_floating(x, "abs", "input");
  return unary_op(Unary::abs, "abs", x);
}
Tensor sin(const Tensor& x) { detail::check_floating(x, "sin", "input"); return unary_op(Unary::sin, "sin", x); }
Tensor cos(const Tensor& x) { detail::check_floating(x, "cos", "input"); return unary_op(Unary::cos, "cos", x); }

Tensor clamp(const Tensor& x, double min, double max) {
  detail::check_floating(x, "clamp", "input");
  TSE_CHECK(!std::isnan(min) && !std::isnan(max), "clamp: bounds must not be NaN (min ", min, ", max ", max, ")");
  TSE_CHECK(min <= max, "clamp: min ", min, " > max ", max);
  return unary_op(Unary::clamp, "clamp", x, {min, max});
}
Tensor clamp_min(const Tensor& x, double min) { return clamp(x, min, std::numeric_limits<double>::infinity()); }
Tensor clamp_max(const Tensor& x, double max) { return clamp(x, -std::numeric_limits<double>::infinity(), max); }

// ---- activations -----------------------------------------------------------------------------------

Tensor relu(const Tensor& x) { detail::check_floating(x, "relu", "input"); return unary_op(Unary::relu, "relu", x); }
Tensor leaky_relu(const Tensor& x, double slope) {
  detail::check_floating(x, "leaky_relu", "input");
  return unary_op(Unary::leaky_relu, "leaky_relu", x, {slope, 0.0});
}
Tensor gelu(const Tensor& x, const std::string& approximate) {
  detail::check_floating(x, "gelu", "input");
  TSE_CHECK(approximate == "none" || approximate == "tanh", "gelu: approximate must be 'none' or 'tanh', got '",
            approximate, "'");
  return unary_op(approximate == "none" ? Unary::gelu : Unary::gelu_tanh, "gelu", x);
}
Tensor silu(const Tensor& x) { detail::check_floating(x, "silu", "input"); return unary_op(Unary::silu, "silu", x); }
Tensor sigmoid(const Tensor& x) {
  detail::check_floating(x, "sigmoid", "input");
  return unary_op(Unary::sigmoid, "sigmoid", x, {}, true);
}
Tensor tanh(const Tensor& x) { detail::check_floating(x, "tanh", "input"); return unary_op(Unary::tanh, "tanh", x, {}, true); }
Tensor softplus(const Tensor& x, double beta, double threshold) {
  detail::check_floating(x, "softplus", "input");
  TSE_CHECK(beta > 0, "softplus: beta must be > 0, got ", beta);
  return unary_op(Unary::softplus, "softplus", x, {beta, threshold});
}
Tensor glu(const Tensor& x, int64_t dim) {
  detail::check_floating(x, "glu", "input");
  TSE_CHECK(x.dim() > 0, "glu: input must have at least one dim");
  dim = wrap_dim(dim, x.dim(), "glu");
  TSE_CHECK(x.size(dim) % 2 == 0, "glu: size ", x.size(dim), " of dim ", dim, " must be even (shape ", x.shape_str(),
            ")");
  const auto halves = chunk(x, 2, dim);
  return mul(halves[0], sigmoid(halves[1]));
}

// ---- selection -------------------------------------------------------------------------------------

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  detail::check_defined(cond, "where", "condition");
  TSE_CHECK(cond.dtype() == DType::b8, "where: condition must be bool, got ", cond.dtype());
  detail::check_same_device(cond, a, "where");
  Prepared p = prepare_binary(a, b, "where");
  const Shape out_sizes = broadcast_shapes(cond.sizes(), p.out_sizes, "where");
  Tensor out = Tensor::empty(out_sizes, p.dtype, a.device());
  k_where.get(a.device(), "where")(out, cond, p.a, p.b);
  if (needs_grad({a, b})) {
    Tensor c = cond.detach();
    const bool ra = a.requires_grad(), rb = b.requires_grad();
    const Shape as = a.sizes(), bs = b.sizes();
    const DType at = a.dtype(), bt = b.dtype();
    record("where", {a, b}, {out}, [=](const Grads& g) -> Grads {
      const Tensor zero = zeros({}, g[0].dtype(), g[0].device());
      Tensor ga, gb;
      if (ra) ga = grad_for_sizes(where(c, g[0], zero), as, at, true);
      if (rb) gb = grad_for_sizes(where(c, zero, g[0]), bs, bt, true);
      return {ga, gb};
    });
  }
  return out;
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  detail::check_defined(x, "masked_fill", "input");
  detail::check_defined(mask, "masked_fill", "mask");
  TSE_CHECK(mask.dtype() == DType::b8, "masked_fill: mask must be bool, got ", mask.dtype());
  const Shape bs = broadcast_shapes(x.sizes(), mask.sizes(), "masked_fill");
  TSE_CHECK(bs == x.sizes(), "masked_fill: mask of shape ", mask.shape_str(), " does not broadcast to the input ",
            x.shape_str());
  return where(mask, scalar_tensor(value, x.dtype(), x.device()), x);
}

Tensor eq(const Tensor& a, const Tensor& b) { return compare(Binary::eq, a, b, "eq"); }
Tensor ne(const Tensor& a, const Tensor& b) { return compare(Binary::ne, a, b, "ne"); }
Tensor lt(const Tensor& a, const Tensor& b) { return compare(Binary::lt, a, b, "lt"); }
Tensor le(const Tensor& a, const Tensor& b) { return compare(Binary::le, a, b, "le"); }
Tensor gt(const Tensor& a, const Tensor& b) { return compare(Binary::gt, a, b, "gt"); }
Tensor ge(const Tensor& a, const Tensor& b) { return compare(Binary::ge, a, b, "ge"); }
Tensor eq(const Tensor& a, double b) { return eq(a, scalar_like(a, b)); }
Tensor ne(const Tensor& a, double b) { return ne(a, scalar_like(a, b)); }
Tensor lt(const Tensor& a, double b) { return lt(a, scalar_like(a, b)); }
Tensor le(const Tensor& a, double b) { return le(a, scalar_like(a, b)); }
Tensor gt(const Tensor& a, double b) { return gt(a, scalar_like(a, b)); }
Tensor ge(const Tensor& a, double b) { return ge(a, scalar_like(a, b)); }
Tensor logical_and(const Tensor& a, const Tensor& b) { return compare(Binary::logical_and, a, b, "logical_and"); }
Tensor logical_or(const Tensor& a, const Tensor& b) { return compare(Binary::logical_or, a, b, "logical_or"); }

namespace {
Tensor predicate(Unary op, const Tensor& x, const char* name) {
  detail::check_defined(x, name, "input");
  Tensor out = Tensor::empty(x.sizes(), DType::b8, x.device());
  k_unary.get(x.device(), name)(op, out, x, {});
  return out;
}
}  // namespace
Tensor logical_not(const Tensor& x) { return predicate(Unary::logical_not, x, "logical_not"); }
Tensor isnan(const Tensor& x) { return predicate(Unary::isnan, x, "isnan"); }
Tensor isfinite(const Tensor& x) { return predicate(Unary::isfinite, x, "isfinite"); }

// ---- copies ----------------------------------------------------------------------------------------

Tensor to_dtype(const Tensor& x, DType dtype) {
  detail::check_defined(x, "to", "input");
  Tensor out = Tensor::empty(x.sizes(), dtype, x.device());
  k_copy.get(x.device(), "to")(out, x);
  if (is_floating(dtype) && needs_grad({x})) {
    const DType from = x.dtype();
    record("to_dtype", {x}, {out}, [from](const Grads& g) -> Grads { return {to_dtype(g[0], from)}; });
  }
  return out;
}

Tensor copy(const Tensor& x) {
  detail::check_defined(x, "clone", "input");
  Tensor out = Tensor::empty(x.sizes(), x.dtype(), x.device());
  k_copy.get(x.device(), "clone")(out, x);
  if (needs_grad({x})) record("clone", {x}, {out}, [](const Grads& g) -> Grads { return {g[0]}; });
  return out;
}

}  // namespace tse::ops

// ---- in-place Tensor methods -------------------------------------------------------------------------

namespace tse {

Tensor& Tensor::zero_() { return fill_(0.0); }

Tensor& Tensor::fill_(double value) {
  ops::detail::check_inplace(*this, "fill_");
  ops::k_fill.get(device(), "fill_")(*this, value);
  storage()->bump_version();
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  ops::detail::check_inplace(*this, "copy_");
  ops::detail::check_defined(src, "copy_", "src");
  ops::detail::check_same_device(*this, src, "copy_");
  TSE_CHECK(ops::broadcast_shapes(sizes(), src.sizes(), "copy_") == sizes(), "copy_: src of shape ", src.shape_str(),
            " does not broadcast to ", shape_str());
  ops::k_copy.get(device(), "copy_")(*this, src);
  storage()->bump_version();
  return *this;
}

Tensor& Tensor::add_(const Tensor& other, double alpha) {
  ops::detail::check_inplace(*this, "add_");
  ops::detail::check_defined(other, "add_", "other");
  ops::detail::check_same_device(*this, other, "add_");
  TSE_CHECK(ops::broadcast_shapes(sizes(), other.sizes(), "add_") == sizes(), "add_: other of shape ",
            other.shape_str(), " does not broadcast to ", shape_str());
  const Tensor o = other.dtype() == dtype() ? other : other.detach().to(dtype());
  ops::k_binary.get(device(), "add_")(tse::detail::Binary::add, *this, *this, o, alpha);
  storage()->bump_version();
  return *this;
}

Tensor& Tensor::mul_(double value) {
  ops::detail::check_inplace(*this, "mul_");
  const Tensor s = ops::scalar_tensor(value, dtype(), device());
  ops::k_binary.get(device(), "mul_")(tse::detail::Binary::mul, *this, *this, s, 1.0);
  storage()->bump_version();
  return *this;
}

}  // namespace tse
