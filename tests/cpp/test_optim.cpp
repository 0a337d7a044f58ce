// tse::optim: AdamW (plain, amsgrad, weight decay) and SGD (momentum, dampening, nesterov,
// weight decay) against hand-computed first steps and naive f64 references over several steps,
// f32 vs f64, skipped parameters, parameter groups, the schedules against hand-computed lr
// sequences, gradient clipping, checkpoint round trips that continue bit-identically, thread-count
// invariance, and the errors for bad options and mismatched state.
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "tests/cpp/reference.hpp"
#include "tse/optim/clip.hpp"
#include "tse/optim/optimizer.hpp"
#include "tse/optim/schedule.hpp"

using namespace tse;
using tse::test::check_same_bits_across_threads;
using tse::test::contains;
using tse::test::thrown_message;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

Tensor param(const std::vector<double>& v, const Shape& shape, DType dtype = DType::f64) {
  Tensor p = ops::from_vector(v, shape, dtype);
  p.requires_grad_();
  return p;
}

// Deterministic gradient values for step `step` of a parameter with `n` elements (no zeros).
std::vector<double> grad_values(int64_t n, int step, int salt) {
  std::vector<double> g(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    g[static_cast<size_t>(i)] = std::sin(0.7 * static_cast<double>(i) + 1.3 * step + salt) * (1.0 + 0.1 * i) + 0.05;
  return g;
}

std::vector<double> init_values(int64_t n, int salt) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = std::cos(0.3 * static_cast<double>(i) + salt);
  return v;
}

void set_grad(const Tensor& p, int step, int salt) {
  Tensor g = ops::from_vector(grad_values(p.numel(), step, salt), p.sizes(), p.dtype());
  Tensor(p).set_grad(g);
}

// The naive f64 references, element by element, in PyTorch's formulas.
struct AdamRef {
  double lr, b1, b2, eps, wd;
  bool amsgrad;
  std::vector<double> p, m, v, vmax;
  int64_t t = 0;
  void step(const std::vector<double>& g) {
    ++t;
    const double bc1 = 1.0 - std::pow(b1, static_cast<double>(t)), bc2 = 1.0 - std::pow(b2, static_cast<double>(t));
    for (size_t i = 0; i < p.size(); ++i) {
      p[i] *= 1.0 - lr * wd;
      m[i] = b1 * m[i] + (1.0 - b1) * g[i];
      v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
      vmax[i] = std::max(vmax[i], v[i]);
      const double vh = amsgrad ? vmax[i] : v[i];
      p[i] -= lr / bc1 * m[i] / (std::sqrt(vh) / std::sqrt(bc2) + eps);
    }
  }
};

struct SGDRef {
  double lr, mom, damp, wd;
  bool nesterov;
  std::vector<double> p, buf;
  bool first = true;
  void step(const std::vector<double>& g0) {
    for (size_t i = 0; i < p.size(); ++i) {
      double g = g0[i] + wd * p[i];
      if (mom != 0.0) {
        buf[i] = first ? g : mom * buf[i] + (1.0 - damp) * g;
        g = nesterov ? g + mom * buf[i] : buf[i];
      }
      p[i] -= lr * g;
    }
    first = false;
  }
};

void check_close(const std::vector<double>& got, const std::vector<double>& want, double rtol, double atol,
                 const char* what) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i)
    CHECK_MESSAGE(std::abs(got[i] - want[i]) <= atol + rtol * std::abs(want[i]), what, " element ", i, ": ", got[i],
                  " vs ", want[i]);
}

std::vector<double> bits_of(const Tensor& t) { return ops::to_vector(t); }

}  // namespace

TEST_CASE("AdamW's first step matches the hand-computed update") {
  Tensor p = param({1.0, -2.0}, {2});
  Tensor(p).set_grad(ops::from_vector(std::vector<double>{0.5, -0.25}, {2}, DType::f64));
  optim::AdamW opt({p}, {.lr = 0.1, .weight_decay = 0.01});
  opt.step();
  // t = 1: m_hat = g, v_hat = g^2, so the step is lr * g / (|g| + eps) after the decay.
  const std::vector<double> got = ops::to_vector(p);
  CHECK(got[0] == doctest::Approx(1.0 * (1 - 0.001) - 0.1 * 0.5 / (0.5 + 1e-8)).epsilon(1e-14));
  CHECK(got[1] == doctest::Approx(-2.0 * (1 - 0.001) + 0.1 * 0.25 / (0.25 + 1e-8)).epsilon(1e-14));
  CHECK(opt.state(0, 0).step == 1);
  CHECK(ops::to_vector(opt.state(0, 0).exp_avg) == std::vector<double>{0.5 * (1 - 0.9), -0.25 * (1 - 0.9)});
}

TEST_CASE("AdamW matches a naive f64 reference over several steps (plain and amsgrad, with weight decay)") {
  for (bool amsgrad : {false, true}) {
    for (DType dt : {DType::f64, DType::f32}) {
      CAPTURE(amsgrad);
      CAPTURE(dt);
      const Shape shape{3, 5};
      Tensor p = param(init_values(15, 1), shape, dt);
      optim::AdamW opt({p}, {.lr = 0.05, .beta1 = 0.8, .beta2 = 0.95, .eps = 1e-6, .weight_decay = 0.1,
                             .amsgrad = amsgrad});
      AdamRef ref{0.05, 0.8, 0.95, 1e-6, 0.1, amsgrad, init_values(15, 1), std::vector<double>(15),
                  std::vector<double>(15), std::vector<double>(15)};
      for (int s = 0; s < 8; ++s) {
        // amsgrad matters only when v shrinks: small gradients in the later steps.
        std::vector<double> g = grad_values(15, s, 0);
        if (s >= 4)
          for (double& x : g) x *= 0.1;
        Tensor(p).set_grad(ops::from_vector(g, shape, dt));
        opt.step();
        ref.step(g);
      }
      const double rtol = dt == DType::f64 ? 1e-12 : 2e-5;
      check_close(ops::to_vector(p), ref.p, rtol, rtol, "param");
      check_close(ops::to_vector(opt.state(0, 0).exp_avg_sq), ref.v, rtol, 1e-12, "exp_avg_sq");
      if (amsgrad) {
        check_close(ops::to_vector(opt.state(0, 0).max_exp_avg_sq), ref.vmax, rtol, 1e-12, "max_exp_avg_sq");
        CHECK(ref.vmax != ref.v);  // the case exercises the max
      } else {
        CHECK_FALSE(opt.state(0, 0).max_exp_avg_sq.defined());
      }
    }
  }
}

TEST_CASE("SGD's first momentum steps match the hand-computed updates") {
  Tensor p = param({1.0}, {1});
  optim::SGD opt({p}, {.lr = 0.1, .momentum = 0.9, .dampening = 0.1});
  Tensor(p).set_grad(ops::ones({1}, DType::f64));
  opt.step();  // buf = g = 1 (no dampening on the first step), p = 1 - 0.1
  CHECK(ops::to_vector(p)[0] == doctest::Approx(0.9).epsilon(1e-15));
  Tensor(p).set_grad(ops::ones({1}, DType::f64));
  opt.step();  // buf = 0.9 * 1 + 0.9 * 1 = 1.8, p = 0.9 - 0.18
  CHECK(ops::to_vector(p)[0] == doctest::Approx(0.72).epsilon(1e-15));
  CHECK(ops::to_vector(opt.state(0, 0).momentum_buffer)[0] == doctest::Approx(1.8).epsilon(1e-15));
}

TEST_CASE("SGD matches a naive f64 reference (momentum, dampening, nesterov, weight decay)") {
  struct Cfg {
    double mom, damp, wd;
    bool nesterov;
  };
  for (Cfg c : {Cfg{0, 0, 0, false}, Cfg{0, 0, 0.1, false}, Cfg{0.9, 0, 0, false}, Cfg{0.9, 0.3, 0.05, false},
                Cfg{0.8, 0, 0.05, true}}) {
    for (DType dt : {DType::f64, DType::f32}) {
      CAPTURE(c.mom);
      CAPTURE(c.damp);
      CAPTURE(c.wd);
      CAPTURE(c.nesterov);
      CAPTURE(dt);
      Tensor p = param(init_values(11, 2), {11}, dt);
      optim::SGD opt({p}, {.lr = 0.03, .momentum = c.mom, .dampening = c.damp, .weight_decay = c.wd,
                           .nesterov = c.nesterov});
      SGDRef ref{0.03, c.mom, c.damp, c.wd, c.nesterov, init_values(11, 2), std::vector<double>(11)};
      for (int s = 0; s < 6; ++s) {
        set_grad(p, s, 3);
        opt.step();
        ref.step(grad_values(11, s, 3));
      }
      const double rtol = dt == DType::f64 ? 1e-13 : 1e-5;
      check_close(ops::to_vector(p), ref.p, rtol, rtol, "param");
      CHECK(opt.state(0, 0).momentum_buffer.defined() == (c.mom != 0));
    }
  }
}

TEST_CASE("AdamW in f32 agrees with f64 over many steps") {
  Tensor p64 = param(init_values(300, 4), {300}, DType::f64);
  Tensor p32 = param(init_values(300, 4), {300}, DType::f32);
  optim::AdamW a64({p64}, {.lr = 1e-2}), a32({p32}, {.lr = 1e-2});
  for (int s = 0; s < 30; ++s) {
    set_grad(p64, s, 5);
    set_grad(p32, s, 5);
    a64.step();
    a32.step();
  }
  check_close(ops::to_vector(p32), ops::to_vector(p64), 1e-5, 1e-5, "f32 vs f64");
}

TEST_CASE("optimizers skip parameters without a gradient, and zero_grad clears or zeroes") {
  Tensor a = param({1, 2, 3}, {3}), b = param({4, 5}, {2});
  optim::AdamW opt({a, b});
  set_grad(a, 0, 0);
  opt.step();
  CHECK(ops::to_vector(b) == std::vector<double>{4, 5});
  CHECK(ops::to_vector(a) != std::vector<double>{1, 2, 3});
  CHECK(opt.state(0, 0).step == 1);
  CHECK(opt.state(0, 1).step == 0);
  CHECK_FALSE(opt.state(0, 1).exp_avg.defined());
  const auto named = opt.state_tensors();
  REQUIRE(named.size() == 2);
  CHECK(named[0].first == "state.0.exp_avg");
  CHECK(named[1].first == "state.0.exp_avg_sq");

  opt.zero_grad(false);
  REQUIRE(a.grad().defined());
  CHECK(ops::to_vector(a.grad()) == std::vector<double>{0, 0, 0});
  opt.zero_grad();
  CHECK_FALSE(a.grad().defined());
}

TEST_CASE("parameter groups keep their own lr and options") {
  Tensor a = param({1.0}, {1}), b = param({1.0}, {1}), c = param({1.0}, {1});
  optim::ParamGroup g0 = optim::SGD::make_group({a}, {.lr = 0.1});
  optim::ParamGroup g1 = optim::SGD::make_group({b}, {.lr = 0.5, .momentum = 0.9});
  optim::SGD opt({g0, g1}, {.lr = 0.01});
  opt.add_param_group(std::vector<Tensor>{c});  // the defaults
  REQUIRE(opt.num_groups() == 3);
  CHECK(opt.lr(0) == 0.1);
  CHECK(opt.lr(1) == 0.5);
  CHECK(opt.lr(2) == 0.01);
  CHECK(opt.param_groups()[1].initial_lr == 0.5);
  for (const Tensor& p : {a, b, c}) Tensor(p).set_grad(ops::ones({1}, DType::f64));
  opt.step();
  CHECK(ops::to_vector(a)[0] == doctest::Approx(0.9));
  CHECK(ops::to_vector(b)[0] == doctest::Approx(0.5));
  CHECK(ops::to_vector(c)[0] == doctest::Approx(0.99));
  CHECK(opt.state(1, 0).momentum_buffer.defined());
  CHECK_FALSE(opt.state(0, 0).momentum_buffer.defined());
  opt.set_lr(1, 0.25);
  CHECK(opt.lr(1) == 0.25);
  CHECK(opt.lr(0) == 0.1);
  opt.set_lr(0.2);
  CHECK((opt.lr(0) == 0.2 && opt.lr(1) == 0.2 && opt.lr(2) == 0.2));
  CHECK(opt.param_groups()[1].initial_lr == 0.5);  // schedules scale the initial lr, not the current
  CHECK(contains(thrown_message<ValueError>([&] { opt.add_param_group(std::vector<Tensor>{a}); }),
                 "more than one place"));
}

TEST_CASE("WarmupHoldDecay follows its definition") {
  Tensor p = param({1.0}, {1});
  optim::SGD opt({p}, {.lr = 1.0});
  optim::WarmupHoldDecay s(opt, 4, 2, 0.5, 3);
  // Updates 1-4 ramp, 5-9 (hold 2, then decay_every 3) at the peak, 10-12 halved, 13 quartered.
  const std::vector<double> want = {0.25, 0.5, 0.75, 1, 1, 1, 1, 1, 1, 0.5, 0.5, 0.5, 0.25};
  std::vector<double> got = {opt.lr(0)};
  for (size_t k = 1; k < want.size(); ++k) {
    s.step();
    got.push_back(opt.lr(0));
  }
  CHECK(got == want);
  CHECK(s.last_lr() == std::vector<double>{0.25});
  CHECK(s.steps() == 12);
  // The paper's setting: 4000 warm-up steps, then x0.9 every 10000.
  optim::WarmupHoldDecay paper(opt, 4000, 0, 0.9, 10000);
  CHECK(paper.lr_at(1e-3, 0) == doctest::Approx(1e-3 / 4000));
  CHECK(paper.lr_at(1e-3, 3999) == doctest::Approx(1e-3));
  CHECK(paper.lr_at(1e-3, 13999) == doctest::Approx(1e-3));
  CHECK(paper.lr_at(1e-3, 14000) == doctest::Approx(0.9e-3));
  CHECK(paper.lr_at(1e-3, 34000) == doctest::Approx(0.729e-3));
}

TEST_CASE("CosineSchedule follows its definition, per group") {
  Tensor a = param({1.0}, {1}), b = param({1.0}, {1});
  optim::SGD opt({optim::SGD::make_group({a}, {.lr = 1.0}), optim::SGD::make_group({b}, {.lr = 2.0})}, {.lr = 1.0});
  optim::CosineSchedule s(opt, 10, 2, 0.1);
  std::vector<double> got0 = {opt.lr(0)}, got1 = {opt.lr(1)};
  for (int k = 1; k <= 12; ++k) {
    s.step();
    got0.push_back(opt.lr(0));
    got1.push_back(opt.lr(1));
  }
  const double pi = std::acos(-1.0);
  for (int k = 0; k <= 12; ++k) {
    CAPTURE(k);
    const double t = k < 2 ? 0.0 : std::min(1.0, (k - 2) / 8.0);
    const double want0 = k < 2 ? (k + 1) / 2.0 : 0.1 + 0.9 * 0.5 * (1 + std::cos(pi * t));
    const double want1 = k < 2 ? 2.0 * (k + 1) / 2.0 : 0.1 + 1.9 * 0.5 * (1 + std::cos(pi * t));
    CHECK(got0[static_cast<size_t>(k)] == doctest::Approx(want0).epsilon(1e-14));
    CHECK(got1[static_cast<size_t>(k)] == doctest::Approx(want1).epsilon(1e-14));
  }
  CHECK(got0[6] == doctest::Approx(0.55));
  CHECK(got0[10] == doctest::Approx(0.1));
  CHECK(got0[12] == doctest::Approx(0.1));
}

TEST_CASE("ReduceLROnPlateau: patience, cooldown, min_lr and the eps rule") {
  Tensor p = param({1.0}, {1});
  optim::SGD opt({p}, {.lr = 1.0});
  optim::ReduceLROnPlateau s(opt, {.mode = "min", .factor = 0.5, .patience = 2, .threshold = 0.1, .cooldown = 1,
                                   .min_lr = 0.1});
  std::vector<double> got;
  for (int k = 0; k < 20; ++k) {
    s.step(k == 0 ? 10.0 : 9.5);  // 9.5 is not below 10 * (1 - 0.1): never an improvement
    got.push_back(opt.lr(0));
  }
  const std::vector<double> want = {1,     1,     1,     0.5,   0.5,   0.5, 0.5, 0.25, 0.25, 0.25,
                                    0.25,  0.125, 0.125, 0.125, 0.125, 0.1, 0.1, 0.1,  0.1,  0.1};
  CHECK(got == want);
  CHECK(s.best() == 10.0);
  CHECK(s.last_lr() == std::vector<double>{0.1});
  CHECK(contains(thrown_message<ValueError>([&] { s.step(); }), "step(metric)"));
}

TEST_CASE("ReduceLROnPlateau: improvements reset the count, max mode, abs threshold, NaN is never better") {
  Tensor p = param({1.0}, {1});
  optim::SGD opt({p}, {.lr = 1.0});
  {
    optim::ReduceLROnPlateau s(opt, {.mode = "min", .factor = 0.3, .patience = 1, .min_lr = 0.0});
    for (double m : {5.0, 5.0, 4.0, 4.0, 3.0}) s.step(m);  // bad, better, bad, better: never 2 bad in a row
    CHECK(opt.lr(0) == 1.0);
    s.step(3.0);
    s.step(kNaN);  // two bad steps > patience 1
    CHECK(opt.lr(0) == doctest::Approx(0.3));
    CHECK(s.best() == 3.0);
  }
  opt.set_lr(1.0);
  {
    optim::ReduceLROnPlateau s(opt, {.mode = "max", .factor = 0.3, .patience = 0, .min_lr = 0.0});
    s.step(1.0);
    s.step(2.0);
    CHECK(opt.lr(0) == 1.0);
    s.step(2.0 * (1 + 0.5e-4));  // within the relative threshold 1e-4: not better
    CHECK(opt.lr(0) == doctest::Approx(0.3));
  }
  opt.set_lr(1.0);
  {
    optim::ReduceLROnPlateau s(opt, {.mode = "min", .factor = 0.5, .patience = 0, .threshold = 0.5,
                                     .threshold_mode = "abs", .min_lr = 0.0});
    s.step(10.0);
    s.step(9.6);  // not below 10 - 0.5
    CHECK(opt.lr(0) == 0.5);
    s.step(9.0);  // below 10 - 0.5
    CHECK(opt.lr(0) == 0.5);
  }
}

TEST_CASE("clip_grad_norm_: 2-norm, other orders, inf-norm, no-op below the max, non-finite norms") {
  Tensor a = param({0, 0}, {2}), b = param({0}, {1}), c = param({0}, {1});  // c has no grad
  auto reset = [&] {
    Tensor(a).set_grad(ops::from_vector(std::vector<double>{3, -4}, {2}, DType::f64));
    Tensor(b).set_grad(ops::from_vector(std::vector<double>{12}, {1}, DType::f64));
  };
  reset();
  CHECK(optim::clip_grad_norm_({a, b, c}, 6.5) == doctest::Approx(13.0).epsilon(1e-15));
  const double coef = 6.5 / (13.0 + 1e-6);
  CHECK(ops::to_vector(a.grad()) == std::vector<double>{3 * coef, -4 * coef});
  CHECK(ops::to_vector(b.grad()) == std::vector<double>{12 * coef});

  reset();
  CHECK(optim::clip_grad_norm_({a, b}, 100.0) == doctest::Approx(13.0));
  CHECK(ops::to_vector(a.grad()) == std::vector<double>{3, -4});  // untouched bits

  reset();
  CHECK(optim::clip_grad_norm_({a, b}, 6.0, kInf) == 12.0);
  CHECK(ops::to_vector(b.grad())[0] == doctest::Approx(12 * 6.0 / (12.0 + 1e-6)).epsilon(1e-15));

  reset();
  CHECK(optim::clip_grad_norm_({a, b}, 100.0, 1.0) == 19.0);
  reset();
  CHECK(optim::clip_grad_norm_({a, b}, 100.0, 3.0) == doctest::Approx(std::cbrt(27.0 + 64 + 1728)).epsilon(1e-14));

  CHECK(optim::clip_grad_norm_({c}, 1.0) == 0.0);

  reset();
  Tensor(b).set_grad(ops::from_vector(std::vector<double>{kNaN}, {1}, DType::f64));
  const std::string msg = thrown_message<ValueError>([&] { optim::clip_grad_norm_({a, b}, 1.0, 2.0, true); });
  CHECK(contains(msg, "clip_grad_norm_"));
  CHECK(contains(msg, "nan"));
  CHECK(ops::to_vector(a.grad()) == std::vector<double>{3, -4});  // untouched on error
  CHECK(std::isnan(optim::clip_grad_norm_({a, b}, 1.0)));       // without the flag: scaled by NaN, as PyTorch
  CHECK(std::isnan(ops::to_vector(a.grad())[0]));
  Tensor(b).set_grad(ops::from_vector(std::vector<double>{kInf}, {1}, DType::f64));
  CHECK(contains(thrown_message<ValueError>([&] { optim::clip_grad_norm_({b}, 1.0, kInf, true); }), "inf"));

  CHECK(contains(thrown_message<ValueError>([&] { optim::clip_grad_norm_({a}, -1.0); }), "'max_norm'"));
  CHECK(contains(thrown_message<ValueError>([&] { optim::clip_grad_norm_({a}, 1.0, 0.0); }), "'norm_type'"));
}

TEST_CASE("clip_grad_norm_ of a large f32 gradient matches an f64 sum") {
  const int64_t n = 100003;
  Tensor p = param(std::vector<double>(n), {n}, DType::f32);
  set_grad(p, 0, 7);
  const std::vector<double> g = ops::to_vector(p.grad());  // the f32 values, exactly
  double sq = 0;
  for (double x : g) sq += x * x;
  CHECK(optim::clip_grad_norm_({p}, 1e9) == doctest::Approx(std::sqrt(sq)).epsilon(1e-13));
}

TEST_CASE("clip_grad_value_ clamps in place") {
  Tensor a = param({0, 0, 0, 0}, {4});
  Tensor(a).set_grad(ops::from_vector(std::vector<double>{-3, 0.5, 2, kNaN}, {4}, DType::f64));
  optim::clip_grad_value_({a}, 1.0);
  const auto g = ops::to_vector(a.grad());
  CHECK(g[0] == -1.0);
  CHECK(g[1] == 0.5);
  CHECK(g[2] == 1.0);
  CHECK(std::isnan(g[3]));
  CHECK(contains(thrown_message<ValueError>([&] { optim::clip_grad_value_({a}, -1.0); }), "'clip_value'"));
}

namespace {

// Runs `steps` steps of an optimiser + schedule over two params (two groups), with gradients keyed by
// the global step index, starting at step `from`.
template <class Opt>
void run(Opt& opt, optim::LRScheduler& sched, const std::vector<Tensor>& ps, int from, int steps) {
  for (int s = from; s < from + steps; ++s) {
    for (size_t i = 0; i < ps.size(); ++i)
      if (!(i == 1 && s % 3 == 0)) set_grad(ps[i], s, static_cast<int>(i));  // param 1 skips some steps
      else Tensor(ps[i]).set_grad(Tensor());
    opt.step();
    sched.step();
  }
}

std::vector<Tensor> fresh_params(DType dt) {
  return {param(init_values(12, 0), {3, 4}, dt), param(init_values(5, 1), {5}, dt)};
}

std::vector<Tensor> copies(const std::vector<Tensor>& ps) {
  std::vector<Tensor> out;
  for (const Tensor& p : ps) {
    Tensor c = p.detach().clone();
    c.requires_grad_();
    out.push_back(c);
  }
  return out;
}

nn::NamedTensors snapshot(const nn::NamedTensors& live) {
  nn::NamedTensors out;
  for (const auto& [k, t] : live) out.emplace_back(k, t.clone());
  return out;
}

}  // namespace

TEST_CASE("AdamW + WarmupHoldDecay state round trip continues bit-identically") {
  for (bool amsgrad : {false, true}) {
    CAPTURE(amsgrad);
    const optim::AdamWOptions o{.lr = 0.01, .weight_decay = 0.05, .amsgrad = amsgrad};
    std::vector<Tensor> ps = fresh_params(DType::f32);
    optim::AdamW opt({optim::AdamW::make_group({ps[0]}, o), optim::AdamW::make_group({ps[1]}, {.lr = 0.003})}, o);
    optim::WarmupHoldDecay sched(opt, 3, 1, 0.7, 2);
    run(opt, sched, ps, 0, 5);
    const nn::NamedTensors saved = snapshot(opt.state_tensors());
    const std::string json = opt.state_json(), sjson = sched.state_json();
    const std::vector<Tensor> saved_ps = copies(ps);
    run(opt, sched, ps, 5, 6);

    std::vector<Tensor> ps2 = copies(saved_ps);
    optim::AdamW opt2({optim::AdamW::make_group({ps2[0]}, {}), optim::AdamW::make_group({ps2[1]}, {})});
    optim::WarmupHoldDecay sched2(opt2, 3, 1, 0.7, 2);
    std::map<std::string, Tensor> as_map(saved.begin(), saved.end());
    opt2.load_state(as_map, json);
    sched2.load_state_json(sjson);
    CHECK(opt2.lr(0) == doctest::Approx(opt.param_groups()[0].initial_lr * sched.lr_at(1.0, 5)));
    CHECK(opt2.param_groups()[0].amsgrad == amsgrad);
    CHECK(opt2.state_json() == json);
    run(opt2, sched2, ps2, 5, 6);
    for (size_t i = 0; i < ps.size(); ++i) CHECK(bits_of(ps2[i]) == bits_of(ps[i]));
    const auto s1 = opt.state_tensors(), s2 = opt2.state_tensors();
    REQUIRE(s1.size() == s2.size());
    for (size_t i = 0; i < s1.size(); ++i) {
      CHECK(s1[i].first == s2[i].first);
      CHECK(bits_of(s1[i].second) == bits_of(s2[i].second));
    }
    CHECK(opt2.state_json() == opt.state_json());
    CHECK(sched2.state_json() == sched.state_json());
  }
}

TEST_CASE("SGD + CosineSchedule and ReduceLROnPlateau state round trips continue bit-identically") {
  const optim::SGDOptions o{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true};
  std::vector<Tensor> ps = fresh_params(DType::f64);
  optim::SGD opt(ps, o);
  optim::CosineSchedule sched(opt, 20, 2, 0.001);
  run(opt, sched, ps, 0, 4);
  const nn::NamedTensors saved = snapshot(opt.state_tensors());
  const std::string json = opt.state_json(), sjson = sched.state_json();
  const std::vector<Tensor> saved_ps = copies(ps);
  run(opt, sched, ps, 4, 7);

  std::vector<Tensor> ps2 = copies(saved_ps);
  optim::SGD opt2(ps2, {.lr = 123.0});  // every option comes back from the JSON
  optim::CosineSchedule sched2(opt2, 20, 2, 0.001);
  opt2.load_state(saved, json);
  sched2.load_state_json(sjson);
  CHECK(opt2.param_groups()[0].nesterov);
  run(opt2, sched2, ps2, 4, 7);
  for (size_t i = 0; i < ps.size(); ++i) CHECK(bits_of(ps2[i]) == bits_of(ps[i]));

  // The plateau schedule's counters.
  optim::ReduceLROnPlateau pl(opt, {.factor = 0.5, .patience = 1, .cooldown = 2});
  const std::vector<double> metrics = {3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1};
  for (size_t k = 0; k < 5; ++k) pl.step(metrics[k]);
  const std::string pjson = pl.state_json();
  const double lr_at_save = opt.lr(0);
  for (size_t k = 5; k < metrics.size(); ++k) pl.step(metrics[k]);
  const double lr_end = opt.lr(0);
  opt.set_lr(lr_at_save);
  optim::ReduceLROnPlateau pl2(opt, {.factor = 0.5, .patience = 1, .cooldown = 2});
  pl2.load_state_json(pjson);
  for (size_t k = 5; k < metrics.size(); ++k) pl2.step(metrics[k]);
  CHECK(opt.lr(0) == lr_end);
  CHECK(pl2.state_json() == pl.state_json());
  // A fresh plateau's best is +inf, which JSON carries as a string.
  optim::ReduceLROnPlateau pl3(opt);
  optim::ReduceLROnPlateau pl4(opt);
  pl4.load_state_json(pl3.state_json());
  CHECK(pl4.best() == kInf);
}

TEST_CASE("optimizer steps and clipping give the same bits at 1, 2 and 3 threads") {
  const int64_t n = 200003;  // several chunks of the kernels' grain, uneven splits
  check_same_bits_across_threads([&] {
    Tensor a = param(init_values(n, 0), {n}, DType::f32), b = param(init_values(n, 1), {n}, DType::f64);
    Tensor c = param(init_values(n, 2), {n}, DType::f32);
    optim::AdamW adam({a, b}, {.amsgrad = true});
    optim::SGD sgd({c}, {.lr = 0.1, .momentum = 0.9, .nesterov = true});
    double norm = 0;
    for (int s = 0; s < 3; ++s) {
      set_grad(a, s, 0);
      set_grad(b, s, 1);
      set_grad(c, s, 2);
      norm += optim::clip_grad_norm_({a, b, c}, 10.0);
      adam.step();
      sgd.step();
    }
    std::vector<Tensor> out = {a, b, c, ops::from_vector(std::vector<double>{norm}, {1}, DType::f64)};
    for (const auto& [k, t] : adam.state_tensors()) out.push_back(t);
    for (const auto& [k, t] : sgd.state_tensors()) out.push_back(t);
    return out;
  });
}

TEST_CASE("bad options give ValueErrors naming the option") {
  Tensor p = param({1.0}, {1});
  auto msg = [](auto&& f) { return thrown_message<ValueError>(f); };
  CHECK(contains(msg([&] { optim::AdamW({p}, {.lr = -1e-3}); }), "'lr'"));
  CHECK(contains(msg([&] { optim::AdamW({p}, {.lr = kNaN}); }), "'lr'"));
  CHECK(contains(msg([&] { optim::AdamW({p}, {.beta1 = 1.0}); }), "'beta1' must be in [0, 1)"));
  CHECK(contains(msg([&] { optim::AdamW({p}, {.beta2 = -0.1}); }), "'beta2'"));
  CHECK(contains(msg([&] { optim::AdamW({p}, {.eps = -1}); }), "'eps'"));
  CHECK(contains(msg([&] { optim::AdamW({p}, {.weight_decay = -1}); }), "'weight_decay'"));
  CHECK(contains(msg([&] { optim::SGD({p}, {.lr = 0.1, .momentum = -0.5}); }), "'momentum'"));
  CHECK(contains(msg([&] { optim::SGD({p}, {.lr = 0.1, .nesterov = true}); }), "'nesterov'"));
  CHECK(contains(msg([&] { optim::SGD({p}, {.lr = 0.1, .momentum = 0.9, .dampening = 0.1, .nesterov = true}); }),
                 "dampening == 0"));
  optim::AdamW opt({p});
  CHECK(contains(msg([&] { opt.set_lr(-1.0); }), "'lr'"));
  CHECK(contains(thrown_message<IndexError>([&] { opt.set_lr(3, 0.1); }), "group 3"));
  CHECK(contains(msg([&] { optim::AdamW({ops::zeros({2}, DType::i64)}); }), "float32 or float64"));

  CHECK(contains(msg([&] { optim::WarmupHoldDecay(opt, -1, 0, 0.9, 10); }), "'warmup_steps'"));
  CHECK(contains(msg([&] { optim::WarmupHoldDecay(opt, 1, -1, 0.9, 10); }), "'hold_steps'"));
  CHECK(contains(msg([&] { optim::WarmupHoldDecay(opt, 1, 0, 1.5, 10); }), "'decay_factor'"));
  CHECK(contains(msg([&] { optim::WarmupHoldDecay(opt, 1, 0, 0.9, 0); }), "'decay_every'"));
  CHECK(contains(msg([&] { optim::CosineSchedule(opt, 0); }), "'total_steps'"));
  CHECK(contains(msg([&] { optim::CosineSchedule(opt, 10, 10); }), "'warmup_steps'"));
  CHECK(contains(msg([&] { optim::CosineSchedule(opt, 10, 0, -1); }), "'min_lr'"));
  CHECK(contains(msg([&] { optim::ReduceLROnPlateau(opt, {.mode = "lowest"}); }), "'mode'"));
  CHECK(contains(msg([&] { optim::ReduceLROnPlateau(opt, {.factor = 1.0}); }), "'factor'"));
  CHECK(contains(msg([&] { optim::ReduceLROnPlateau(opt, {.patience = -1}); }), "'patience'"));
  CHECK(contains(msg([&] { optim::ReduceLROnPlateau(opt, {.threshold_mode = "x"}); }), "'threshold_mode'"));
  CHECK(contains(msg([&] { optim::ReduceLROnPlateau(opt, {.cooldown = -2}); }), "'cooldown'"));
  CHECK(contains(msg([&] { optim::ReduceLROnPlateau(opt, {.min_lr = -1}); }), "'min_lr'"));
}

TEST_CASE("step rejects non-contiguous parameters and counts nothing") {
  // (Gradients of another shape or dtype cannot be attached: Tensor::set_grad refuses them.)
  Tensor p = ops::zeros({3, 4}, DType::f64).t().detach();
  p.requires_grad_();
  p.set_grad(ops::zeros({4, 3}, DType::f64));
  optim::SGD opt({p}, {.lr = 0.1});
  CHECK(contains(thrown_message<ValueError>([&] { opt.step(); }), "parameter 0 of group 0 (shape [4, 3]) is not contiguous"));
  CHECK(opt.state(0, 0).step == 0);
}

TEST_CASE("load_state validates everything first and names what differs") {
  std::vector<Tensor> ps = fresh_params(DType::f32);
  optim::AdamW opt(ps);
  for (const Tensor& p : ps) set_grad(p, 0, 0);
  opt.step();
  const nn::NamedTensors st = opt.state_tensors();
  const std::string json = opt.state_json();
  auto msg = [](auto&& f) { return thrown_message<ValueError>(f); };

  {  // another optimiser type
    optim::SGD sgd(copies(ps), {.lr = 0.1});
    const std::string m = msg([&] { sgd.load_state(st, json); });
    CHECK(contains(m, "\"AdamW\""));
    CHECK(contains(m, "SGD"));
  }
  {  // group count
    std::vector<Tensor> c = copies(ps);
    optim::AdamW two({optim::AdamW::make_group({c[0]}), optim::AdamW::make_group({c[1]})});
    CHECK(contains(msg([&] { two.load_state(st, json); }), "1 parameter groups, this optimiser has 2"));
  }
  {  // param count
    optim::AdamW one({copies(ps)[0]});
    CHECK(contains(msg([&] { one.load_state(st, json); }), "2 parameters, this optimiser's has 1"));
  }
  {  // shapes
    optim::AdamW other({param(init_values(12, 0), {4, 3}, DType::f32), copies(ps)[1]});
    const std::string m = msg([&] { other.load_state(st, json); });
    CHECK(contains(m, "wrong shape or dtype: state.0.exp_avg"));
    CHECK(contains(m, "[4, 3]"));
  }
  {  // dtypes
    optim::AdamW other(fresh_params(DType::f64));
    CHECK(contains(msg([&] { other.load_state(st, json); }), "wrong shape or dtype"));
  }
  {  // missing and unexpected tensors; nothing changes on error
    std::vector<Tensor> c = copies(ps);
    optim::AdamW other(c);
    nn::NamedTensors bad(st.begin() + 1, st.end());
    bad.emplace_back("state.7.exp_avg", st[0].second);
    const std::string m = msg([&] { other.load_state(bad, json); });
    CHECK(contains(m, "missing: state.0.exp_avg"));
    CHECK(contains(m, "unexpected: state.7.exp_avg"));
    CHECK(other.state(0, 0).step == 0);
    CHECK(other.state_tensors().empty());
  }
  {  // amsgrad in the JSON needs its buffer
    optim::AdamW other(copies(ps));
    std::string j2 = json;
    j2.replace(j2.find("\"amsgrad\":false"), 15, "\"amsgrad\":true");
    CHECK(contains(msg([&] { other.load_state(st, j2); }), "missing: state.0.max_exp_avg_sq"));
  }
  {  // bad JSON and bad values
    optim::AdamW other(copies(ps));
    CHECK(contains(msg([&] { other.load_state(st, "{nope"); }), "does not parse"));
    std::string j2 = json;
    j2.replace(j2.find("\"beta1\":0.9"), 11, "\"beta1\":1.5");
    CHECK(contains(msg([&] { other.load_state(st, j2); }), "'beta1'"));
    std::string j3 = json;
    j3.replace(j3.find("\"steps\":[1,1]"), 13, "\"steps\":[1]");
    CHECK(contains(msg([&] { other.load_state(st, j3); }), "1 step counts, this optimiser has 2"));
  }
  {  // scheduler state of another type or other settings
    optim::AdamW other(copies(ps));
    optim::WarmupHoldDecay w(other, 10, 0, 0.9, 100);
    optim::CosineSchedule c(other, 100);
    CHECK(contains(msg([&] { c.load_state_json(w.state_json()); }), "\"WarmupHoldDecay\""));
    optim::WarmupHoldDecay w2(other, 20, 0, 0.9, 100);
    CHECK(contains(msg([&] { w2.load_state_json(w.state_json()); }), "warmup_steps = 10"));
  }
}
