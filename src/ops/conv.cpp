// conv1d, conv2d, conv_transpose1d, conv_transpose2d: argument checks (PyTorch's rules), the
// output size, the mapping of every call onto one 2-D conv in conv terms, dispatch and the tape
// nodes. Kernels: src/cpu/conv.cpp.
//
// Every call becomes contiguous 4-D operands (a missing batch dim is N = 1, a 1-D conv has height
// 1), views outside autograd over the user's data or over one copy of it. A conv's backward is
// the kernels' backward-data and backward-weights passes. A transposed conv is the conv it
// transposes run backwards: its torch weight (Cin, Cout / groups, k...) is that conv's weight
// (out_channels = Cin), its forward is the conv's backward-data pass (its output_padding a
// smaller right padding of the conv), its input gradient the conv's forward, its weight gradient
// the conv's backward-weights pass with x and dy swapped.
#include "tse/ops/conv.hpp"

#include <array>
#include <string>

#include "src/cpu/conv.hpp"
#include "src/dispatch.hpp"
#include "src/ops/op_utils.hpp"
#include "tse/autograd/function.hpp"
#include "tse/ops/reduction.hpp"

namespace tse::ops {

using autograd::Grads;
using autograd::needs_grad;
using autograd::record;
using autograd::SavedTensor;
using tse::detail::ConvGeometry;
using tse::detail::KernelTable;

namespace {

const KernelTable<tse::detail::ConvForwardFn> k_conv_forward{"conv", &cpu::conv_forward, nullptr};
const KernelTable<tse::detail::ConvBackwardDataFn> k_conv_backward_data{"conv", &cpu::conv_backward_data, nullptr};
const KernelTable<tse::detail::ConvBackwardWeightsFn> k_conv_backward_weights{"conv", &cpu::conv_backward_weights,
                                                                              nullptr};

using Dims2 = std::array<int64_t, 2>;

/// One call's options in canonical 2-D form: a 1-D op's values sit in the w slot (index 1), its h
/// slot is neutral (stride 1, padding 0, dilation 1), matching the height-1 operands.
struct ConvCall {
  const char* op;
  int64_t spatial;  // 1 or 2
  bool transposed;
  Dims2 stride{1, 1};
  Dims2 padding{0, 0};
  Dims2 dilation{1, 1};
  Dims2 output_padding{0, 0};
  int64_t groups = 1;
  const PaddingMode* mode = nullptr;  // conv1d / conv2d with string padding

  /// A parameter as the user gave it: "3" for a 1-D op, "[3, 1]" for a 2-D one.
  std::string str(const Dims2& v) const {
    return spatial == 1 ? std::to_string(v[1]) : tse::detail::str_cat("[", v[0], ", ", v[1], "]");
  }
};

ConvCall call_1d(const char* op, bool transposed, int64_t stride, int64_t padding, int64_t dilation,
                 int64_t output_padding, int64_t groups) {
  return {op, 1, transposed, {1, stride}, {0, padding}, {1, dilation}, {0, output_padding}, groups};
}

ConvCall call_2d(const char* op, bool transposed, Size2 stride, Size2 padding, Size2 dilation, Size2 output_padding,
                 int64_t groups) {
  return {op,
          2,
          transposed,
          {stride.h, stride.w},
          {padding.h, padding.w},
          {dilation.h, dilation.w},
          {output_padding.h, output_padding.w},
          groups};
}

Tensor restride(const Tensor& t, const Shape& sizes) {
  return Tensor::from_storage(t.storage(), sizes, contiguous_strides(sizes), t.storage_offset(), t.dtype());
}

/// t as a contiguous (N, C, H, W) tensor outside autograd: N = 1 for an unbatched t, H = 1 for
/// one spatial dim. A view when t is contiguous, else one copy.
Tensor to_4d(const Tensor& t, int64_t spatial, bool batched) {
  const Tensor c = t.detach().contiguous();
  Shape s = c.sizes();
  if (!batched) s.insert(s.begin(), 1);
  if (spatial == 1) s.insert(s.end() - 1, 1);
  return restride(c, s);
}

void check_tensors(const ConvCall& c, const Tensor& x, const Tensor& weight, const Tensor& bias) {
  detail::check_defined(x, c.op, "input");
  detail::check_defined(weight, c.op, "weight");
  detail::check_same_device(x, weight, c.op);
  detail::check_floating(x, c.op, "input");
  TSE_CHECK(weight.dtype() == x.dtype(), c.op, ": dtype mismatch: 'weight' is ", weight.dtype(), " (shape ",
            weight.shape_str(), "), 'input' is ", x.dtype(), " (shape ", x.shape_str(), ")");
  if (bias.defined()) {
    detail::check_same_device(x, bias, c.op);
    TSE_CHECK(bias.dtype() == x.dtype(), c.op, ": dtype mismatch: 'bias' is ", bias.dtype(), " (shape ",
              bias.shape_str(), "), 'input' is ", x.dtype(), " (shape ", x.shape_str(), ")");
  }
  const char* in_dims = c.spatial == 1 ? "(C, L) or 3-D (N, C, L)" : "(C, H, W) or 4-D (N, C, H, W)";
  TSE_CHECK(x.dim() == c.spatial + 1 || x.dim() == c.spatial + 2, c.op, ": argument 'input' must be ", c.spatial + 1,
            "-D ", in_dims, ", got shape ", x.shape_str());
  const char* w_dims = c.transposed ? (c.spatial == 1 ? "(in_channels, out_channels / groups, k)"
                                                      : "(in_channels, out_channels / groups, kH, kW)")
                                    : (c.spatial == 1 ? "(out_channels, in_channels / groups, k)"
                                                      : "(out_channels, in_channels / groups, kH, kW)");
  TSE_CHECK(weight.dim() == c.spatial + 2, c.op, ": argument 'weight' must be ", c.spatial + 2, "-D ", w_dims,
            ", got shape ", weight.shape_str());
  TSE_CHECK(weight.numel() > 0, c.op, ": argument 'weight' must have no zero-size dims, got shape ",
            weight.shape_str());
}

void check_options(const ConvCall& c) {
  for (int i = 0; i < 2; ++i) {
    TSE_CHECK(c.stride[i] >= 1, c.op, ": argument 'stride' must be positive, got ", c.str(c.stride));
    TSE_CHECK(c.dilation[i] >= 1, c.op, ": argument 'dilation' must be positive, got ", c.str(c.dilation));
    TSE_CHECK(c.padding[i] >= 0, c.op, ": argument 'padding' must be non-negative, got ", c.str(c.padding));
    TSE_CHECK(c.output_padding[i] >= 0, c.op, ": argument 'output_padding' must be non-negative, got ",
              c.str(c.output_padding));
    TSE_CHECK(c.output_padding[i] < c.stride[i] || c.output_padding[i] < c.dilation[i], c.op, ": output_padding ",
              c.str(c.output_padding), " must be smaller than stride ", c.str(c.stride), " or dilation ",
              c.str(c.dilation), " in every dim");
  }
  TSE_CHECK(c.groups >= 1, c.op, ": argument 'groups' must be positive, got ", c.groups);
  if (c.mode) {
    const std::string& m = c.mode->str();
    TSE_CHECK(m == "same" || m == "valid", c.op, ": unknown padding mode '", m, "' (expected 'same' or 'valid')");
    TSE_CHECK(m == "valid" || (c.stride[0] == 1 && c.stride[1] == 1), c.op,
              ": padding='same' is not supported for strided convolutions, got stride ", c.str(c.stride));
  }
}

/// The channel counts of a call, checked against the weight and the groups.
struct Channels {
  int64_t in, out;
};

Channels check_channels(const ConvCall& c, const Tensor& x, const Tensor& weight, const Tensor& bias, bool batched) {
  const int64_t cin = x.size(batched ? 1 : 0);
  Channels ch{cin, 0};
  if (c.transposed) {
    TSE_CHECK(weight.size(0) == cin, c.op, ": input ", x.shape_str(), " has ", cin, " channels but weight ",
              weight.shape_str(), " expects in_channels = ", weight.size(0));
    TSE_CHECK(cin % c.groups == 0, c.op, ": in_channels = ", cin, " of input ", x.shape_str(),
              " is not divisible by groups = ", c.groups);
    ch.out = weight.size(1) * c.groups;
  } else {
    TSE_CHECK(weight.size(1) * c.groups == cin, c.op, ": input ", x.shape_str(), " has ", cin, " channels but weight ",
              weight.shape_str(), " with groups = ", c.groups, " expects ", weight.size(1), " * ", c.groups, " = ",
              weight.size(1) * c.groups);
    TSE_CHECK(weight.size(0) % c.groups == 0, c.op, ": out_channels = ", weight.size(0), " of weight ",
              weight.shape_str(), " is not divisible by groups = ", c.groups);
    ch.out = weight.size(0);
  }
  if (bias.defined()) {
    TSE_CHECK(bias.dim() == 1 && bias.size(0) == ch.out, c.op, ": argument 'bias' must have shape [", ch.out,
              "] (out_channels of weight ", weight.shape_str(), "), got ", bias.shape_str());
  }
  return ch;
}

/// The geometry of the conv in conv terms and the spatial size of the call's result.
struct Plan {
  ConvGeometry geom;
  Dims2 out;
};

Plan plan(const ConvCall& c, const Tensor& x, const Tensor& x4, const Tensor& w4) {
  Plan p;
  p.geom.groups = c.groups;
  Dims2 in{}, kernel{}, extent{};
  for (int i = 0; i < 2; ++i) {
    in[i] = x4.size(2 + i);
    kernel[i] = w4.size(2 + i);
    extent[i] = c.dilation[i] * (kernel[i] - 1) + 1;
    p.geom.stride[i] = c.stride[i];
    p.geom.dilation[i] = c.dilation[i];
  }
  TSE_CHECK(in[0] > 0 && in[1] > 0, c.op, ": input ", x.shape_str(), " has a zero-size spatial dim");
  if (c.transposed) {
    for (int i = 0; i < 2; ++i) {
      p.out[i] = (in[i] - 1) * c.stride[i] - 2 * c.padding[i] + extent[i] + c.output_padding[i];
      // The conv it transposes maps the result back to x: its right padding absorbs output_padding.
      p.geom.pad_l[i] = c.padding[i];
      p.geom.pad_r[i] = c.padding[i] - c.output_padding[i];
    }
    TSE_CHECK(p.out[0] > 0 && p.out[1] > 0, c.op, ": the output size ", c.str(p.out), " is not positive (input ",
              x.shape_str(), ", kernel ", c.str(kernel), ", stride ", c.str(c.stride), ", padding ", c.str(c.padding),
              ", dilation ", c.str(c.dilation), ", output_padding ", c.str(c.output_padding), ")");
    return p;
  }
  Dims2 padded{};
  for (int i = 0; i < 2; ++i) {
    if (c.mode && c.mode->str() == "same") {
      // torch: total padding dilation * (k - 1), the odd element on the right.
      const int64_t total = extent[i] - 1;
      p.geom.pad_l[i] = total / 2;
      p.geom.pad_r[i] = total - total / 2;
    } else if (!c.mode) {
      p.geom.pad_l[i] = p.geom.pad_r[i] = c.padding[i];
    }
    padded[i] = in[i] + p.geom.pad_l[i] + p.geom.pad_r[i];
  }
  TSE_CHECK(padded[0] >= extent[0] && padded[1] >= extent[1], c.op, ": the padded input size ", c.str(padded),
            " (input ", x.shape_str(), ") is smaller than the dilated kernel size ", c.str(extent), " (kernel ",
            c.str(kernel), ", dilation ", c.str(c.dilation), ")");
  for (int i = 0; i < 2; ++i) p.out[i] = (padded[i] - extent[i]) / c.stride[i] + 1;
  return p;
}

/// The result shape as the user sees it: (N, C, L...) or (C, L...) for an unbatched input.
Shape user_shape(const Shape& s4, int64_t spatial, bool batched) {
  Shape s = s4;
  if (spatial == 1) s.erase(s.begin() + 2);
  if (!batched) s.erase(s.begin());
  return s;
}

// The three kernels on fresh outputs.

Tensor forward(const char* op, const Tensor& x4, const Tensor& w4, const Tensor& bias, const Shape& y4_sizes,
               const ConvGeometry& g, bool training) {
  Tensor y4 = Tensor::empty(y4_sizes, x4.dtype(), x4.device());
  k_conv_forward.get(x4.device(), op)(y4, x4, w4, bias, g, training);
  return y4;
}

Tensor backward_data(const char* op, const Tensor& dy4, const Tensor& w4, const Shape& x4_sizes,
                     const ConvGeometry& g) {
  Tensor dx4 = Tensor::empty(x4_sizes, dy4.dtype(), dy4.device());
  k_conv_backward_data.get(dy4.device(), op)(dx4, dy4, w4, g);
  return dx4;
}

/// The weight gradient, and the bias gradient into *dbias when dbias is not null.
Tensor backward_weights(const char* op, const Tensor& x4, const Tensor& dy4, const Shape& w4_sizes,
                        const ConvGeometry& g, Tensor* dbias) {
  Tensor dw4 = Tensor::empty(w4_sizes, x4.dtype(), x4.device());
  if (dbias) *dbias = Tensor::empty({w4_sizes[0]}, x4.dtype(), x4.device());
  k_conv_backward_weights.get(x4.device(), op)(dw4, dbias ? *dbias : Tensor(), x4, dy4, g);
  return dw4;
}

/// Everything a call's node needs to map gradients between user and 4-D shapes.
struct Shapes {
  int64_t spatial;
  bool batched;
  Shape x, weight, x4, w4, y4;
};

Tensor conv_node(const ConvCall& c, const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& x4,
                 const Tensor& w4, const Shapes& s, const ConvGeometry& g) {
  const bool grad = needs_grad({x, weight, bias});
  const Tensor b = bias.defined() ? bias.detach().contiguous() : Tensor();
  Tensor y = restride(forward(c.op, x4, w4, b, s.y4, g, grad), user_shape(s.y4, s.spatial, s.batched));
  if (grad) {
    const bool rx = x.requires_grad(), rw = weight.requires_grad(), rb = bias.defined() && bias.requires_grad();
    SavedTensor sx(rw ? x4 : Tensor()), sw(rx ? w4 : Tensor());
    const char* op = c.op;
    record(op, {x, weight, bias}, {y}, [=](const Grads& gr) -> Grads {
      const Tensor dy4 = to_4d(gr[0], s.spatial, s.batched);
      Tensor gx, gw, gb;
      if (rx) gx = restride(backward_data(op, dy4, sw.unpack(op), s.x4, g), s.x);
      if (rw) {
        gw = restride(backward_weights(op, sx.unpack(op), dy4, s.w4, g, rb ? &gb : nullptr), s.weight);
      } else if (rb) {
        gb = sum(dy4, {0, 2, 3});
      }
      return {gx, gw, gb};
    });
  }
  return y;
}

Tensor conv_transpose_node(const ConvCall& c, const Tensor& x, const Tensor& weight, const Tensor& bias,
                           const Tensor& x4, const Tensor& w4, const Shapes& s, const ConvGeometry& g) {
  // In conv terms x4 is the output gradient and the result the input gradient of the transposed conv.
  Tensor y4 = backward_data(c.op, x4, w4, s.y4, g);
  // oneDNN's backward-data pass takes no bias; one broadcast add over the fresh result.
  if (bias.defined()) y4.add_(bias.detach().reshape({1, bias.size(0), 1, 1}));
  Tensor y = restride(y4, user_shape(s.y4, s.spatial, s.batched));
  if (needs_grad({x, weight, bias})) {
    const bool rx = x.requires_grad(), rw = weight.requires_grad(), rb = bias.defined() && bias.requires_grad();
    SavedTensor sx(rw ? x4 : Tensor()), sw(rx ? w4 : Tensor());
    const char* op = c.op;
    record(op, {x, weight, bias}, {y}, [=](const Grads& gr) -> Grads {
      const Tensor dy4 = to_4d(gr[0], s.spatial, s.batched);
      Tensor gx, gw, gb;
      if (rx) gx = restride(forward(op, dy4, sw.unpack(op), Tensor(), s.x4, g, false), s.x);
      if (rw) gw = restride(backward_weights(op, dy4, sx.unpack(op), s.w4, g, nullptr), s.weight);
      if (rb) gb = sum(dy4, {0, 2, 3});
      return {gx, gw, gb};
    });
  }
  return y;
}

Tensor convolution(const ConvCall& c, const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_tensors(c, x, weight, bias);
  check_options(c);
  const bool batched = x.dim() == c.spatial + 2;
  const Channels ch = check_channels(c, x, weight, bias, batched);
  const Tensor x4 = to_4d(x, c.spatial, batched), w4 = to_4d(weight, c.spatial, true);
  const Plan p = plan(c, x, x4, w4);
  const Shapes s{
      c.spatial, batched, x.sizes(), weight.sizes(), x4.sizes(), w4.sizes(), {x4.size(0), ch.out, p.out[0], p.out[1]}};
  return c.transposed ? conv_transpose_node(c, x, weight, bias, x4, w4, s, p.geom)
                      : conv_node(c, x, weight, bias, x4, w4, s, p.geom);
}

}  // namespace

Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding,
              int64_t dilation, int64_t groups) {
  return convolution(call_1d("conv1d", false, stride, padding, dilation, 0, groups), x, weight, bias);
}

Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, const PaddingMode& padding,
              int64_t dilation, int64_t groups) {
  ConvCall c = call_1d("conv1d", false, stride, 0, dilation, 0, groups);
  c.mode = &padding;
  return convolution(c, x, weight, bias);
}

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Size2 stride, Size2 padding, Size2 dilation,
              int64_t groups) {
  return convolution(call_2d("conv2d", false, stride, padding, dilation, 0, groups), x, weight, bias);
}

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Size2 stride, const PaddingMode& padding,
              Size2 dilation, int64_t groups) {
  ConvCall c = call_2d("conv2d", false, stride, 0, dilation, 0, groups);
  c.mode = &padding;
  return convolution(c, x, weight, bias);
}

Tensor conv_transpose1d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding,
                        int64_t output_padding, int64_t groups, int64_t dilation) {
  return convolution(call_1d("conv_transpose1d", true, stride, padding, dilation, output_padding, groups), x, weight,
                     bias);
}

Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Size2 stride, Size2 padding,
                        Size2 output_padding, int64_t groups, Size2 dilation) {
  return convolution(call_2d("conv_transpose2d", true, stride, padding, dilation, output_padding, groups), x, weight,
                     bias);
}

}  // namespace tse::ops
