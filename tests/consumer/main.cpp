// Trains one parameter with the tape: checks that headers, the shared library and its RPATH work
// from an installed package.
#include <tse/tse.hpp>

#include <cmath>
#include <cstdio>

int main() {
  using namespace tse;
  Tensor w = ops::zeros({3}).requires_grad_();
  const Tensor target = ops::from_vector(std::vector<float>{1.0f, -2.0f, 0.5f}, {3});
  for (int step = 0; step < 200; ++step) {
    Tensor loss = ops::sum(ops::pow(w - target, 2.0));
    loss.backward();
    NoGradGuard no_grad;
    w.add_(w.grad(), -0.1);
    w.grad().zero_();
  }
  const auto got = ops::to_vector(w);
  const auto want = ops::to_vector(target);
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::abs(got[i] - want[i]) > 1e-5) {
      std::printf("consumer: w[%zu] = %g, expected %g\n", i, got[i], want[i]);
      return 1;
    }
  }
  std::printf("consumer: libtse %s OK\n", TSE_VERSION_STRING);
  return 0;
}
