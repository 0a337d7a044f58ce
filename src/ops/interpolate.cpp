// interpolate: argument checks (PyTorch's rules), output size, dispatch and the tape node.
// Kernels: src/cpu/interpolate.cpp.
#include "tse/ops/interpolate.hpp"

#include <cmath>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "src/cpu/interpolate.hpp"
#include "src/dispatch.hpp"
#include "src/ops/op_utils.hpp"
#include "tse/autograd/function.hpp"

namespace tse::ops {

using autograd::Grads;
using autograd::needs_grad;
using autograd::record;
using tse::detail::InterpMode;
using tse::detail::InterpParams;
using tse::detail::KernelTable;

namespace {

const KernelTable<tse::detail::InterpolateFn> k_interpolate{"interpolate", &cpu::interpolate, nullptr};
const KernelTable<tse::detail::InterpolateBackwardFn> k_interpolate_backward{"interpolate_backward",
                                                                             &cpu::interpolate_backward, nullptr};

std::string doubles_to_string(const std::vector<double>& v) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
  os << ']';
  return os.str();
}

/// The kernel mode of a mode name and the input rank it needs (0: 3 or 4).
std::pair<InterpMode, int64_t> parse_mode(const std::string& mode) {
  if (mode == "nearest") return {InterpMode::nearest, 0};
  if (mode == "linear") return {InterpMode::linear, 3};
  if (mode == "bilinear") return {InterpMode::linear, 4};
  if (mode == "bicubic") return {InterpMode::cubic, 4};
  throw ValueError(tse::detail::str_cat("interpolate: unknown mode '", mode,
                                        "' (expected 'nearest', 'linear', 'bilinear' or 'bicubic')"));
}

}  // namespace

Tensor interpolate(const Tensor& x, const std::vector<int64_t>& size, const std::vector<double>& scale_factor,
                   const std::string& mode, bool align_corners) {
  detail::check_defined(x, "interpolate", "input");
  const auto [kind, rank] = parse_mode(mode);
  detail::check_floating(x, "interpolate", "input");
  if (rank == 0) {
    TSE_CHECK(x.dim() == 3 || x.dim() == 4, "interpolate: mode '", mode,
              "' expects a 3-D (N, C, L) or 4-D (N, C, H, W) input, got shape ", x.shape_str());
  } else {
    TSE_CHECK(x.dim() == rank, "interpolate: mode '", mode, "' expects a ",
              rank == 3 ? "3-D (N, C, L)" : "4-D (N, C, H, W)", " input, got shape ", x.shape_str());
  }
  TSE_CHECK(!(align_corners && kind == InterpMode::nearest),
            "interpolate: align_corners applies to 'linear', 'bilinear' and 'bicubic' only, not to mode '", mode,
            "' (input shape ", x.shape_str(), ")");
  TSE_CHECK(size.empty() != scale_factor.empty(), "interpolate: give exactly one of 'size' and 'scale_factor' (got ",
            size.empty() ? "neither" : "both", ", size ", shape_to_string(size), ", scale_factor ",
            doubles_to_string(scale_factor), ", input shape ", x.shape_str(), ")");
  const int64_t nsp = x.dim() - 2;
  for (int64_t d = 0; d < nsp; ++d) {
    TSE_CHECK(x.size(2 + d) > 0, "interpolate: argument 'input' needs non-empty spatial dims, got shape ",
              x.shape_str());
  }

  Shape out_sizes = {x.size(0), x.size(1)};
  std::vector<double> scales(static_cast<size_t>(nsp), 0.0);  // 0: the size was given
  if (!size.empty()) {
    TSE_CHECK(static_cast<int64_t>(size.size()) == nsp, "interpolate: argument 'size' needs ", nsp,
              " value(s), one per spatial dim of the input ", x.shape_str(), ", got ", shape_to_string(size));
    for (int64_t s : size) {
      TSE_CHECK(s > 0, "interpolate: argument 'size' must be positive, got ", shape_to_string(size), " (input shape ",
                x.shape_str(), ")");
      out_sizes.push_back(s);
    }
  } else {
    TSE_CHECK(static_cast<int64_t>(scale_factor.size()) == nsp || scale_factor.size() == 1,
              "interpolate: argument 'scale_factor' needs 1 or ", nsp, " value(s) for the input ", x.shape_str(),
              ", got ", doubles_to_string(scale_factor));
    for (int64_t d = 0; d < nsp; ++d) {
      const double sf = scale_factor.size() == 1 ? scale_factor[0] : scale_factor[static_cast<size_t>(d)];
      TSE_CHECK(std::isfinite(sf) && sf > 0, "interpolate: argument 'scale_factor' must be positive and finite, got ",
                doubles_to_string(scale_factor), " (input shape ", x.shape_str(), ")");
      // PyTorch: out = floor(in * scale_factor).
      const double o = std::floor(static_cast<double>(x.size(2 + d)) * sf);
      TSE_CHECK(o >= 1 && o < 0x1p62, "interpolate: scale_factor ", doubles_to_string(scale_factor),
                " gives an output size of ", o, " for the input ", x.shape_str(), "; sizes must be positive");
      out_sizes.push_back(static_cast<int64_t>(o));
      scales[static_cast<size_t>(d)] = sf;
    }
  }

  InterpParams p;
  p.mode = kind;
  p.align_corners = align_corners;
  p.scale_w = scales.back();
  p.scale_h = nsp == 2 ? scales[0] : 0.0;

  const Tensor xc = x.contiguous();
  Tensor out = Tensor::empty(out_sizes, xc.dtype(), xc.device());
  k_interpolate.get(xc.device(), "interpolate")(out, xc, p);
  if (needs_grad({xc})) {
    const Shape in_sizes = xc.sizes();
    record("interpolate", {xc}, {out}, [p, in_sizes](const Grads& g) -> Grads {
      const Tensor go = g[0].contiguous();
      Tensor gx = Tensor::empty(in_sizes, go.dtype(), go.device());
      k_interpolate_backward.get(go.device(), "interpolate")(gx, go, p);
      return {gx};
    });
  }
  return out;
}

}  // namespace tse::ops
