// Random tensors and dropout: argument checks, the default generator, kernel dispatch, and the
// dropout tape node. Kernels and the counter layout: src/cpu/random.{hpp,cpp}.
#include "tse/ops/random.hpp"

#include <limits>
#include <mutex>

#include "src/cpu/random.hpp"
#include "src/dispatch.hpp"
#include "src/ops/op_utils.hpp"
#include "tse/autograd/function.hpp"
#include "tse/ops/elementwise.hpp"
#include "tse/ops/factory.hpp"

namespace tse {
namespace {

// PyTorch's default seed, so an unseeded program is as reproducible as there.
constexpr uint64_t kDefaultSeed = 67280421310721ULL;

struct DefaultGenerator {
  std::mutex mutex;
  GeneratorState state{kDefaultSeed, 0};
};

DefaultGenerator& default_generator() {
  static DefaultGenerator g;
  return g;
}

/// The state a draw of `blocks` counters runs at; advances the default generator past them, so
/// concurrent draws never share counters.
GeneratorState reserve_blocks(uint64_t blocks) {
  DefaultGenerator& g = default_generator();
  std::lock_guard<std::mutex> lock(g.mutex);
  const GeneratorState at = g.state;
  g.state.offset += blocks;
  return at;
}

const detail::KernelTable<detail::UniformFn> k_uniform{"rand", &cpu::uniform, nullptr};
const detail::KernelTable<detail::NormalFn> k_normal{"randn", &cpu::normal, nullptr};
const detail::KernelTable<detail::RandintFn> k_randint{"randint", &cpu::randint, nullptr};
const detail::KernelTable<detail::DropoutMaskFn> k_dropout_mask{"dropout", &cpu::dropout_mask, nullptr};

void check_sizes(const Shape& sizes, const char* op) {
  for (int64_t s : sizes) TSE_CHECK(s >= 0, op, ": sizes must be non-negative, got ", shape_to_string(sizes));
}

void check_float_dtype(DType dtype, const char* op) {
  TSE_CHECK(dtype == DType::f32 || dtype == DType::f64, op, ": dtype must be float32 or float64, got ", dtype);
}

/// The integers a dtype holds exactly (inclusive).
struct IntegerSpan {
  int64_t min, max;
};

IntegerSpan exact_integers(DType dtype) {
  switch (dtype) {
    case DType::i32:
      return {std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()};
    case DType::f32:
      return {-(int64_t(1) << 24), int64_t(1) << 24};
    case DType::f64:
      return {-(int64_t(1) << 53), int64_t(1) << 53};
    default:
      return {std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()};
  }
}

}  // namespace

void manual_seed(uint64_t seed) { set_rng_state({seed, 0}); }

GeneratorState get_rng_state() {
  DefaultGenerator& g = default_generator();
  std::lock_guard<std::mutex> lock(g.mutex);
  return g.state;
}

void set_rng_state(const GeneratorState& state) {
  DefaultGenerator& g = default_generator();
  std::lock_guard<std::mutex> lock(g.mutex);
  g.state = state;
}

namespace ops {

Tensor rand(const Shape& sizes, DType dtype, Device device) {
  check_sizes(sizes, "rand");
  check_float_dtype(dtype, "rand");
  auto* kernel = k_uniform.get(device, "rand");  // before reserving: a refused draw leaves the state alone
  Tensor out = Tensor::empty(sizes, dtype, device);
  const GeneratorState at = reserve_blocks(cpu::philox_blocks(out.numel(), cpu::uniform_per_block(dtype)));
  kernel(out, at.seed, at.offset);
  return out;
}

Tensor randn(const Shape& sizes, DType dtype, Device device) {
  check_sizes(sizes, "randn");
  check_float_dtype(dtype, "randn");
  auto* kernel = k_normal.get(device, "randn");
  Tensor out = Tensor::empty(sizes, dtype, device);
  const GeneratorState at = reserve_blocks(cpu::philox_blocks(out.numel(), cpu::normal_per_block(dtype)));
  kernel(out, at.seed, at.offset);
  return out;
}

Tensor randint(int64_t low, int64_t high, const Shape& sizes, DType dtype, Device device) {
  check_sizes(sizes, "randint");
  TSE_CHECK(low < high, "randint: low must be < high, got low ", low, ", high ", high);
  TSE_CHECK(dtype == DType::i64 || dtype == DType::i32 || dtype == DType::f32 || dtype == DType::f64,
            "randint: dtype must be int64, int32, float32 or float64, got ", dtype);
  const IntegerSpan span = exact_integers(dtype);
  TSE_CHECK(low >= span.min && high - 1 <= span.max, "randint: [", low, ", ", high, ") does not fit ", dtype,
            " (every value must lie in [", span.min, ", ", span.max, "])");
  auto* kernel = k_randint.get(device, "randint");
  Tensor out = Tensor::empty(sizes, dtype, device);
  const uint64_t range = static_cast<uint64_t>(high) - static_cast<uint64_t>(low);  // exact even for the full i64 span
  const GeneratorState at = reserve_blocks(cpu::philox_blocks(out.numel(), cpu::kRandintPerBlock));
  kernel(out, low, range, at.seed, at.offset);
  return out;
}

Tensor dropout(const Tensor& x, double p, bool training) {
  detail::check_defined(x, "dropout", "input");
  detail::check_floating(x, "dropout", "input");
  TSE_CHECK(p >= 0.0 && p <= 1.0, "dropout: p must be in [0, 1], got ", p, " (input shape ", x.shape_str(), ")");
  if (p == 0.0 || !training) return x;
  if (p == 1.0) {
    // Every element dropped: the output is constant, so the true gradient is zero.
    Tensor out = zeros(x.sizes(), x.dtype(), x.device());
    if (autograd::needs_grad({x}))
      autograd::record("dropout", {x}, {out},
                       [](const autograd::Grads& g) -> autograd::Grads { return {zeros_like(g[0])}; });
    return out;
  }
  auto* kernel = k_dropout_mask.get(x.device(), "dropout");
  Tensor mask = Tensor::empty(x.sizes(), x.dtype(), x.device());
  const GeneratorState at = reserve_blocks(cpu::philox_blocks(mask.numel(), cpu::kDropoutPerBlock));
  kernel(mask, p, at.seed, at.offset);
  Tensor out;
  {
    autograd::NoGradGuard ng;  // recorded below as one dropout node that keeps only the mask
    out = mul(x, mask);
  }
  if (autograd::needs_grad({x})) {
    autograd::record("dropout", {x}, {out},
                     [sm = autograd::SavedTensor(mask)](const autograd::Grads& g) -> autograd::Grads {
                       return {mul(g[0], sm.unpack("dropout"))};
                     });
  }
  return out;
}

}  // namespace ops
}  // namespace tse
