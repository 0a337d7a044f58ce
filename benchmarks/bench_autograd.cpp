// The cost of the machinery around kernels: dispatch overhead of tiny ops, with and without
// recording a tape node, and a whole training step loss = sum(op(x)), backward, at 4M floats.
#include "bench.hpp"

namespace {

using namespace tse;
using bench::Bench;
using bench::k4M;

// A tiny op on n-element inputs; the peer only checks the value (a loop over a few floats takes
// nanoseconds, so its time says nothing). with_grad makes the first input a leaf that requires
// grad, so every call also records (and frees) a tape node.
template <typename Ours, typename Ref>
Bench tiny(int64_t n, bool with_grad, Ours ours, Ref ref) {
  Tensor a = bench::uniform({n}, -1.f, 1.f, 31), b = bench::uniform({n}, -1.f, 1.f, 32);
  if (with_grad) a.requires_grad_();
  auto out = bench::buffer(n);
  return {[=] { return ours(a, b); },
          [=](int) {
            for (int64_t i = 0; i < n; ++i) (*out)[i] = ref(bench::cptr(a)[i], bench::cptr(b)[i]);
          },
          out};
}

void register_tiny(const std::string& name, int64_t n, const std::string& shape, auto ours, auto ref) {
  for (bool grad : {false, true}) {
    bench::add({.name = grad ? name + "_grad" : name,
                .shape = grad ? shape + " leaf requires grad" : shape,
                .rtol = 0,
                .time_peer = false,
                .micros = true,
                .setup = [=] { return tiny(n, grad, ours, ref); }});
  }
}

// loss = sum(op(x, b)) and dx = d loss / dx, x a leaf and b a constant, at 4M floats. The peer
// does the same three passes as plain loops: y = op(x, b), s = sum(y), dx = op'(x, b).
template <typename Fwd, typename Bwd>
Bench step(Tensor (*ours)(const Tensor&, const Tensor&), Fwd fwd, Bwd dfdx, float lo, float hi) {
  Tensor x = bench::uniform({k4M}, lo, hi, 41).requires_grad_();
  Tensor b = bench::uniform({k4M}, lo, hi, 42);
  auto y = bench::buffer(k4M), dx = bench::buffer(k4M), loss = bench::buffer(1);
  return {[=] { return autograd::grad({ops::sum(ours(x, b))}, {x})[0]; },
          [=](int nt) {
            const float *px = bench::cptr(x), *pb = bench::cptr(b);
            float *py = y->data(), *pd = dx->data();
#pragma omp parallel for simd num_threads(nt) schedule(static)
            for (int64_t i = 0; i < k4M; ++i) py[i] = fwd(px[i], pb[i]);
            float s = 0;
#pragma omp parallel for simd num_threads(nt) schedule(static) reduction(+ : s)
            for (int64_t i = 0; i < k4M; ++i) s += py[i];
            (*loss)[0] = s;
#pragma omp parallel for simd num_threads(nt) schedule(static)
            for (int64_t i = 0; i < k4M; ++i) pd[i] = dfdx(px[i], pb[i]);
          },
          dx};
}

Tensor add2(const Tensor& a, const Tensor& b) { return ops::add(a, b); }
Tensor gelu_of_x(const Tensor& x, const Tensor&) { return ops::gelu(x); }

const bool registered = [] {
  constexpr double f = sizeof(float);
  register_tiny(
      "dispatch.add", 1, "[1]", [](const Tensor& a, const Tensor& b) { return ops::add(a, b); },
      [](float a, float b) { return a + b; });
  register_tiny(
      "dispatch.relu", 8, "[8]", [](const Tensor& a, const Tensor&) { return ops::relu(a); },
      [](float a, float) { return a > 0 ? a : 0.f; });

  // Bytes of the peer's three passes: forward (inputs + y), sum (y), backward (what dx reads + dx).
  bench::add({.name = "tape.add",
              .shape = "[4194304] sum(x + b) fwd+bwd",
              .bytes = (3 + 1 + 1) * k4M * f,
              .rtol = 0,
              .setup = [] {
                return step(add2, [](float x, float b) { return x + b; }, [](float, float) { return 1.f; }, -1.f, 1.f);
              }});
  bench::add({.name = "tape.mul",
              .shape = "[4194304] sum(x * b) fwd+bwd",
              .bytes = (3 + 1 + 2) * k4M * f,
              .rtol = 0,
              .setup = [] {
                return step(ops::mul, [](float x, float b) { return x * b; }, [](float, float b) { return b; }, -1.f,
                            1.f);
              }});
  bench::add({.name = "tape.gelu",
              .shape = "[4194304] sum(gelu(x)) fwd+bwd",
              .bytes = (2 + 1 + 2) * k4M * f,
              .rtol = 1e-5,
              .atol = 1e-2,
              .setup = [] {
                return step(
                    gelu_of_x, [](float x, float) { return 0.5f * x * std::erfc(-x * 0.70710678f); },
                    [](float x, float) {
                      return 0.5f * std::erfc(-x * 0.70710678f) + x * 0.39894228f * std::exp(-0.5f * x * x);
                    },
                    -6.f, 6.f);
              }});
  return true;
}();

}  // namespace
