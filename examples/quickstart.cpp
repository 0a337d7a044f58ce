// The README's C++ quickstart: fit y = 3x - 1 with the tape and a hand-written SGD step.
#include <tse/tse.hpp>

#include <cstdio>

int main() {
  using namespace tse;
  manual_seed(0);
  Tensor x = ops::randn({256, 1});
  Tensor y = 3.0 * x - 1.0;
  Tensor w = ops::zeros({1}).requires_grad_();
  Tensor b = ops::zeros({1}).requires_grad_();
  for (int step = 0; step < 100; ++step) {
    Tensor loss = ops::mean(ops::pow(x * w + b - y, 2.0));
    loss.backward();
    NoGradGuard no_grad;
    w.add_(w.grad(), -0.1);
    b.add_(b.grad(), -0.1);
    w.grad().zero_();
    b.grad().zero_();
  }
  std::printf("w = %.4f, b = %.4f (expected 3, -1)\n", w.item(), b.item());
  return (std::abs(w.item() - 3.0) < 1e-3 && std::abs(b.item() + 1.0) < 1e-3) ? 0 : 1;
}
