#include "tests/cpp/gradcheck.hpp"

using namespace tse;
using tse::test::leaf;

TEST_CASE("autograd: accumulation into leaves across backward calls") {
  Tensor w = leaf({3});
  Tensor y = ops::sum(ops::mul(w, w));
  y.backward();
  const auto g1 = test::values(w.grad());
  Tensor y2 = ops::sum(ops::mul(w, w));
  y2.backward();
  const auto g2 = test::values(w.grad());
  const auto wv = test::values(w);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(g1[i] == doctest::Approx(2 * wv[i]));
    CHECK(g2[i] == doctest::Approx(4 * wv[i]));
  }
}

TEST_CASE("autograd: a tensor used twice sums its gradients") {
  Tensor x = leaf({4});
  Tensor y = ops::sum(ops::add(ops::mul(x, 3.0), ops::exp(x)));
  y.backward();
  const auto g = test::values(x.grad());
  const auto xv = test::values(x);
  for (size_t i = 0; i < 4; ++i) CHECK(g[i] == doctest::Approx(3 + std::exp(xv[i])));
}

TEST_CASE("autograd: retain_graph allows a second backward, without it the second one throws") {
  Tensor x = leaf({2});
  Tensor y = ops::sum(ops::exp(x));
  y.backward(Tensor(), true);
  y.backward();
  const auto g = test::values(x.grad());
  const auto xv = test::values(x);
  CHECK(g[0] == doctest::Approx(2 * std::exp(xv[0])));
  CHECK_THROWS_AS(y.backward(), AutogradError);
}

TEST_CASE("autograd: no_grad records nothing") {
  Tensor x = leaf({2});
  {
    NoGradGuard ng;
    Tensor y = ops::mul(x, 2.0);
    CHECK_FALSE(y.requires_grad());
    CHECK(autograd::GradMode::is_enabled() == false);
  }
  CHECK(autograd::GradMode::is_enabled());
  CHECK(ops::mul(x, 2.0).requires_grad());
}

TEST_CASE("autograd: version counter rejects a saved tensor modified in place") {
  Tensor x = leaf({3});
  Tensor a = ops::mul(x, 1.0).detach();  // a plain tensor, saved by mul below
  Tensor y = ops::sum(ops::mul(x, a));
  a.add_(ops::ones({3}, DType::f64));
  CHECK_THROWS_AS(y.backward(), AutogradError);
  try {
    Tensor y2 = ops::sum(ops::mul(x, a));
    a.mul_(2.0);
    y2.backward();
    FAIL("expected an error");
  } catch (const AutogradError& e) {
    CHECK(std::string(e.what()).find("mul") != std::string::npos);
    CHECK(std::string(e.what()).find("modified in place") != std::string::npos);
  }
}

TEST_CASE("autograd: in-place ops on tensors that require grad are refused under grad mode") {
  Tensor w = leaf({2});
  CHECK_THROWS_AS(w.add_(ops::ones({2}, DType::f64)), AutogradError);
  NoGradGuard ng;
  w.add_(ops::ones({2}, DType::f64));  // optimizer-style update is fine
}

TEST_CASE("autograd: a missing backward throws NotImplementedError naming the op") {
  Tensor x = leaf({2});
  Tensor y = Tensor::empty({2}, DType::f64);
  autograd::record_node(std::make_shared<autograd::NotImplementedNode>("mystery_op"), {x}, {y});
  try {
    ops::sum(y).backward();
    FAIL("expected NotImplementedError");
  } catch (const NotImplementedError& e) {
    CHECK(std::string(e.what()).find("mystery_op") != std::string::npos);
  }
}

TEST_CASE("autograd: grad() returns gradients without touching .grad, also for non-leaves") {
  Tensor x = leaf({3});
  Tensor h = ops::mul(x, 2.0);
  Tensor y = ops::sum(ops::mul(h, h));
  auto g = autograd::grad({y}, {x, h});
  CHECK_FALSE(x.grad().defined());
  const auto xv = test::values(x);
  const auto gx = test::values(g[0]), gh = test::values(g[1]);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(gh[i] == doctest::Approx(4 * xv[i]));
    CHECK(gx[i] == doctest::Approx(8 * xv[i]));
  }
  Tensor unused = leaf({1});
  Tensor y2 = ops::sum(ops::mul(x, 2.0));
  CHECK_THROWS_AS(autograd::grad({y2}, {unused}), ValueError);
}

TEST_CASE("autograd: backward of a non-scalar needs an explicit gradient") {
  Tensor x = leaf({3});
  Tensor y = ops::mul(x, 2.0);
  CHECK_THROWS_AS(y.backward(), ValueError);
  y.backward(ops::ones({3}, DType::f64));
  CHECK(test::values(x.grad())[1] == doctest::Approx(2.0));
  CHECK_THROWS_AS(ops::mul(x, 2.0).backward(ops::ones({4}, DType::f64)), ValueError);
}

TEST_CASE("autograd: only floating tensors can require grad, integer outputs carry none") {
  Tensor i = ops::zeros({2}, DType::i64);
  CHECK_THROWS_AS(i.requires_grad_(), ValueError);
}

TEST_CASE("autograd: graphs that are never backpropagated are freed with their tensors") {
  Tensor x = leaf({8});
  std::weak_ptr<autograd::Node> node;
  {
    Tensor y = ops::exp(x);
    node = y.grad_fn();
    CHECK_FALSE(node.expired());
  }
  CHECK(node.expired());
}

TEST_CASE("autograd: gradients flow through views") {
  Tensor x = leaf({2, 3});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].t().reshape({3, 2}).slice(0, 1, 3); }, {x});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].unsqueeze(0).expand({4, 2, 3}); }, {x});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].select(1, 2); }, {x});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].permute({1, 0}).contiguous().flatten(); }, {x});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].slice(1, 0, 3, 2); }, {x});
}

TEST_CASE("autograd: dtype conversion passes the gradient back in the source dtype") {
  Tensor x = leaf({3});
  Tensor y = ops::sum(ops::mul(x.to(DType::f32), 3.0));
  y.backward();
  CHECK(x.grad().dtype() == DType::f64);
  for (double g : test::values(x.grad())) CHECK(g == doctest::Approx(3.0));
}
