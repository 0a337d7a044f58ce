// layer_norm, group_norm, batch_norm: one naive f64 reference (plain loops over an explicit
// element -> group / channel assignment) for all three, f64 gradchecks over the option space
// (trailing dims, groups, training/eval, with and without weight and bias), the f32 kernels
// (oneDNN for layer_norm, plain loops otherwise) checked forward and backward against the f64
// path at model shapes, batch_norm's running statistics, errors, non-contiguous inputs, empty
// batches and the primitive cache.
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "src/cpu/onednn_context.hpp"
#include "tests/cpp/gradcheck.hpp"
#include "tests/cpp/onednn_check.hpp"
#include "tests/cpp/reference.hpp"
#include "tse/ops/normalization.hpp"

using namespace tse;
using tse::test::compare_f32_f64;
using tse::test::contains;
using tse::test::f32_leaf;
using tse::test::leaf;
using tse::test::rel_l2;
using tse::test::thrown_message;
using tse::test::values;

namespace {

// ---- the naive reference -------------------------------------------------------------------------

/// Which group element i (row-major) is normalised with, and which channel's weight and bias it
/// gets.
struct Grouping {
  int64_t groups;
  std::function<int64_t(int64_t)> group_of, channel_of;
};

Grouping layer_norm_grouping(const Shape& sizes, size_t trailing) {
  int64_t D = 1;
  for (size_t d = sizes.size() - trailing; d < sizes.size(); ++d) D *= sizes[d];
  return {shape_numel(sizes) / D, [D](int64_t i) { return i / D; }, [D](int64_t i) { return i % D; }};
}

/// (N, C, S...) with S the product of the trailing sizes.
int64_t spatial_of(const Shape& sizes) {
  int64_t S = 1;
  for (size_t d = 2; d < sizes.size(); ++d) S *= sizes[d];
  return S;
}

Grouping group_norm_grouping(const Shape& sizes, int64_t G) {
  const int64_t C = sizes[1], S = spatial_of(sizes), per_group = C / G;
  return {sizes[0] * G, [=](int64_t i) { return (i / (C * S)) * G + ((i / S) % C) / per_group; },
          [=](int64_t i) { return (i / S) % C; }};
}

Grouping batch_norm_grouping(const Shape& sizes) {
  const int64_t C = sizes[1], S = spatial_of(sizes);
  auto channel = [=](int64_t i) { return (i / S) % C; };
  return {C, channel, channel};
}

struct RefStats {
  std::vector<double> mean, var;  // biased
};

RefStats ref_stats(const std::vector<double>& x, const Grouping& g) {
  std::vector<double> sum(static_cast<size_t>(g.groups), 0.0), dev(sum.size(), 0.0), count(sum.size(), 0.0);
  for (size_t i = 0; i < x.size(); ++i) {
    sum[g.group_of(i)] += x[i];
    count[g.group_of(i)] += 1;
  }
  for (size_t k = 0; k < sum.size(); ++k) sum[k] /= count[k];
  for (size_t i = 0; i < x.size(); ++i) dev[g.group_of(i)] += (x[i] - sum[g.group_of(i)]) * (x[i] - sum[g.group_of(i)]);
  for (size_t k = 0; k < dev.size(); ++k) dev[k] /= count[k];
  return {sum, dev};
}

/// y = (x - mean) / sqrt(var + eps) * w + b per element, with the given statistics.
std::vector<double> ref_apply(const std::vector<double>& x, const Grouping& g, const RefStats& st, const Tensor& weight,
                              const Tensor& bias, double eps) {
  const std::vector<double> w = weight.defined() ? values(weight) : std::vector<double>();
  const std::vector<double> b = bias.defined() ? values(bias) : std::vector<double>();
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const int64_t k = g.group_of(i), c = g.channel_of(i);
    y[i] = (x[i] - st.mean[k]) / std::sqrt(st.var[k] + eps) * (w.empty() ? 1.0 : w[c]) + (b.empty() ? 0.0 : b[c]);
  }
  return y;
}

std::vector<double> ref_normalize(const Tensor& x, const Grouping& g, const Tensor& w, const Tensor& b,
                                  double eps = 1e-5) {
  const std::vector<double> xv = values(x);
  return ref_apply(xv, g, ref_stats(xv, g), w, b, eps);
}

void check_close(const Tensor& got, const std::vector<double>& want, double tol) {
  const auto v = values(got);
  REQUIRE(v.size() == want.size());
  for (size_t i = 0; i < v.size(); ++i) {
    INFO("element ", i, ": got ", v[i], " want ", want[i]);
    CHECK(std::abs(v[i] - want[i]) <= tol * (1 + std::abs(want[i])));
  }
}

// ---- the option space ------------------------------------------------------------------------------

struct Affine {
  bool weight, bias;
};
const Affine kAffines[] = {{false, false}, {true, false}, {false, true}, {true, true}};

/// The gradcheck inputs: x, then weight and bias where present.
std::vector<Tensor> inputs_of(const Tensor& x, const Tensor& w, const Tensor& b, const Affine& a) {
  std::vector<Tensor> in{x};
  if (a.weight) in.push_back(w);
  if (a.bias) in.push_back(b);
  return in;
}
Tensor weight_in(const std::vector<Tensor>& in, const Affine& a) { return a.weight ? in[1] : Tensor(); }
Tensor bias_in(const std::vector<Tensor>& in, const Affine& a) { return a.bias ? in[a.weight ? 2 : 1] : Tensor(); }

/// t converted to like's dtype, outside autograd (f32 constants are exact in f64).
Tensor same_dtype(const Tensor& t, const Tensor& like) { return t.defined() ? t.detach().to(like.dtype()) : Tensor(); }

/// A positive variance-like vector.
Tensor positive(const Shape& s, uint64_t seed) { return leaf(s, 0.5, 2.0, seed).detach(); }

}  // namespace

// ---- layer_norm ---------------------------------------------------------------------------------

TEST_CASE("layer_norm matches the naive reference over 1, 2 and 3 trailing dims, with and without weight and bias") {
  const Shape xs{2, 3, 4, 5};
  const Tensor x = leaf(xs, -2, 3, 1).detach();
  for (size_t k : {1, 2, 3}) {
    const Shape ns(xs.end() - static_cast<int64_t>(k), xs.end());
    const Tensor w = leaf(ns, 0.5, 1.5, 2).detach(), b = leaf(ns, -1, 1, 3).detach();
    for (const Affine& a : kAffines) {
      INFO("trailing dims ", k, " weight ", a.weight, " bias ", a.bias);
      const Tensor wa = a.weight ? w : Tensor(), ba = a.bias ? b : Tensor();
      const std::vector<double> want = ref_normalize(x, layer_norm_grouping(xs, k), wa, ba);
      const Tensor y = ops::layer_norm(x, ns, wa, ba);
      CHECK(y.sizes() == xs);
      check_close(y, want, 1e-12);
      const Tensor x32 = x.to(DType::f32);
      const Tensor y32 = ops::layer_norm(x32, ns, same_dtype(wa, x32), same_dtype(ba, x32));
      CHECK(y32.dtype() == DType::f32);
      check_close(y32, want, 1e-5);
    }
  }
  // another eps changes the result as the reference says
  const Tensor small = leaf({3, 4}, -0.01, 0.01, 4).detach();
  check_close(ops::layer_norm(small, {4}, Tensor(), Tensor(), 1e-3),
              ref_normalize(small, layer_norm_grouping({3, 4}, 1), Tensor(), Tensor(), 1e-3), 1e-12);
}

TEST_CASE("layer_norm passes the f64 gradcheck in input, weight and bias") {
  const Shape xs{3, 2, 4};
  for (size_t k : {1, 2, 3}) {
    const Shape ns(xs.end() - static_cast<int64_t>(k), xs.end());
    const Tensor x = leaf(xs, -1, 1, 11), w = leaf(ns, 0.5, 1.5, 12), b = leaf(ns, -1, 1, 13);
    for (const Affine& a : kAffines) {
      INFO("trailing dims ", k, " weight ", a.weight, " bias ", a.bias);
      auto f = [&](const std::vector<Tensor>& in) {
        return ops::layer_norm(in[0], ns, weight_in(in, a), bias_in(in, a));
      };
      CHECK_GRADCHECK(f, inputs_of(x, w, b, a));
    }
    // weight and bias alone (x constant), and x alone with a constant affine map
    const Tensor xc = x.detach(), wc = w.detach(), bc = b.detach();
    CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return ops::layer_norm(xc, ns, in[0], in[1]); }, {w, b});
    CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return ops::layer_norm(in[0], ns, wc, bc); }, {x});
  }
}

// The f64 gradchecks never run the oneDNN kernels; these run them forward and backward on the
// same (f32-exact) inputs. K per output: the forward and dx sum over a row (D), dweight and
// dbias over the rows (R).
TEST_CASE("layer_norm f32 (oneDNN) matches the f64 path forward and backward at model shapes") {
  auto ln = [](const Shape& ns) {
    return [ns](const std::vector<Tensor>& in) { return ops::layer_norm(in[0], ns, in[1], in[2]); };
  };
  // Swin stage-1 tokens (4096, 128): K = 128 for y and dx, 4096 for dweight and dbias.
  compare_f32_f64(ln({128}), {f32_leaf({4096, 128}, 1), f32_leaf({128}, 2), f32_leaf({128}, 3)}, {128, 128, 4096, 4096},
                  "swin 4096x128");
  // Conformer (2, 313, 256) over the last dim: K = 256 for y and dx, 626 rows for dweight/dbias.
  compare_f32_f64(ln({256}), {f32_leaf({2, 313, 256}, 4), f32_leaf({256}, 5), f32_leaf({256}, 6)}, {256, 256, 626, 626},
                  "conformer 2x313x256");
  // Two trailing dims (8, 16, 32) -> rows of 512: K = 512 for y and dx, 8 rows for dweight/dbias.
  compare_f32_f64(ln({16, 32}), {f32_leaf({8, 16, 32}, 7), f32_leaf({16, 32}, 8), f32_leaf({16, 32}, 9)},
                  {512, 512, 8, 8}, "8x16x32 over 2 dims");
  // Every flag combination of the primitives: no affine (backward_data), weight only, bias only,
  // and a frozen (constant) weight and bias whose gradients go to scratch. K = 256 throughout.
  const Tensor w32 = f32_leaf({256}, 10).detach(), b32 = f32_leaf({256}, 11).detach();
  for (const Affine& a : kAffines) {
    INFO("constant weight ", a.weight, " constant bias ", a.bias);
    auto f = [&](const std::vector<Tensor>& in) {
      return ops::layer_norm(in[0], {256}, a.weight ? same_dtype(w32, in[0]) : Tensor(),
                             a.bias ? same_dtype(b32, in[0]) : Tensor());
    };
    compare_f32_f64(f, {f32_leaf({626, 256}, 12)}, {256, 256}, "626x256, constant affine");
  }
  auto weight_only = [](const std::vector<Tensor>& in) { return ops::layer_norm(in[0], {256}, in[1]); };
  compare_f32_f64(weight_only, {f32_leaf({626, 256}, 13), f32_leaf({256}, 14)}, {256, 256, 626}, "weight only");
  auto bias_only = [](const std::vector<Tensor>& in) { return ops::layer_norm(in[0], {256}, Tensor(), in[1]); };
  compare_f32_f64(bias_only, {f32_leaf({626, 256}, 15), f32_leaf({256}, 16)}, {256, 256, 626}, "bias only");
}

// ---- group_norm ---------------------------------------------------------------------------------

TEST_CASE("group_norm matches the naive reference for 1, C and in-between groups, with and without weight and bias") {
  for (const Shape& xs : {Shape{2, 6}, Shape{2, 6, 5}, Shape{2, 6, 2, 3}}) {
    const Tensor x = leaf(xs, -2, 3, 21).detach();
    const Tensor w = leaf({6}, 0.5, 1.5, 22).detach(), b = leaf({6}, -1, 1, 23).detach();
    for (int64_t G : {1, 2, 3, 6}) {
      for (const Affine& a : kAffines) {
        INFO("x ", shape_to_string(xs), " groups ", G, " weight ", a.weight, " bias ", a.bias);
        const Tensor wa = a.weight ? w : Tensor(), ba = a.bias ? b : Tensor();
        const std::vector<double> want = ref_normalize(x, group_norm_grouping(xs, G), wa, ba);
        const Tensor y = ops::group_norm(x, G, wa, ba);
        CHECK(y.sizes() == xs);
        check_close(y, want, 1e-12);
        const Tensor x32 = x.to(DType::f32);
        check_close(ops::group_norm(x32, G, same_dtype(wa, x32), same_dtype(ba, x32)), want, 1e-5);
      }
    }
  }
}

TEST_CASE("group_norm passes the f64 gradcheck for 1, C and in-between groups") {
  for (const Shape& xs : {Shape{2, 6}, Shape{2, 6, 4}, Shape{1, 6, 2, 3}}) {
    const Tensor x = leaf(xs, -1, 1, 31), w = leaf({6}, 0.5, 1.5, 32), b = leaf({6}, -1, 1, 33);
    for (int64_t G : {1, 3, 6}) {
      for (const Affine& a : kAffines) {
        INFO("x ", shape_to_string(xs), " groups ", G, " weight ", a.weight, " bias ", a.bias);
        auto f = [&](const std::vector<Tensor>& in) {
          return ops::group_norm(in[0], G, weight_in(in, a), bias_in(in, a));
        };
        CHECK_GRADCHECK(f, inputs_of(x, w, b, a));
      }
    }
    const Tensor xc = x.detach();
    CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return ops::group_norm(xc, 2, in[0], in[1]); }, {w, b});
  }
}

// group_norm's f32 path is the plain loops (oneDNN 2.6 has no group normalization) with f64
// statistics. K: y and dx sum over a group (C / G * S), dweight and dbias over N * S.
TEST_CASE("group_norm f32 matches the f64 path forward and backward at model shapes") {
  auto gn = [](int64_t G) {
    return [G](const std::vector<Tensor>& in) { return ops::group_norm(in[0], G, in[1], in[2]); };
  };
  // The Conformer conv module's GroupNorm(8) over (1, 256, 626): K = 32 * 626 = 20032; 626.
  compare_f32_f64(gn(8), {f32_leaf({1, 256, 626}, 41), f32_leaf({256}, 42), f32_leaf({256}, 43)},
                  {20032, 20032, 626, 626}, "conformer 1x256x626 G=8");
  // (4, 64, 100) with 32 groups: K = 2 * 100 = 200 for y and dx, 400 for dweight and dbias.
  compare_f32_f64(gn(32), {f32_leaf({4, 64, 100}, 44), f32_leaf({64}, 45), f32_leaf({64}, 46)}, {200, 200, 400, 400},
                  "4x64x100 G=32");
  // (64, 128) with no spatial dims, 4 groups: K = 32; dweight and dbias sum 64 rows.
  compare_f32_f64(gn(4), {f32_leaf({64, 128}, 47), f32_leaf({128}, 48), f32_leaf({128}, 49)}, {32, 32, 64, 64},
                  "64x128 G=4");
}

// ---- batch_norm ---------------------------------------------------------------------------------

TEST_CASE("batch_norm matches the naive reference in training (batch statistics) and eval (running statistics)") {
  for (const Shape& xs : {Shape{4, 3}, Shape{2, 3, 5}, Shape{2, 3, 2, 3}}) {
    const Tensor x = leaf(xs, -2, 3, 51).detach();
    const Tensor w = leaf({3}, 0.5, 1.5, 52).detach(), b = leaf({3}, -1, 1, 53).detach();
    const Tensor rm = leaf({3}, -1, 1, 54).detach(), rv = positive({3}, 55);
    const Grouping g = batch_norm_grouping(xs);
    for (const Affine& a : kAffines) {
      INFO("x ", shape_to_string(xs), " weight ", a.weight, " bias ", a.bias);
      const Tensor wa = a.weight ? w : Tensor(), ba = a.bias ? b : Tensor();
      const std::vector<double> train = ref_normalize(x, g, wa, ba);
      const std::vector<double> eval = ref_apply(values(x), g, {values(rm), values(rv)}, wa, ba, 1e-5);
      for (DType dt : {DType::f64, DType::f32}) {
        INFO("dtype ", dt);
        const double tol = dt == DType::f64 ? 1e-12 : 1e-5;
        const Tensor xd = x.to(dt), wd = same_dtype(wa, xd), bd = same_dtype(ba, xd);
        check_close(ops::batch_norm(xd, Tensor(), Tensor(), wd, bd, true), train, tol);
        check_close(ops::batch_norm(xd, rm.to(dt).clone(), rv.to(dt).clone(), wd, bd, true), train, tol);
        check_close(ops::batch_norm(xd, rm.to(dt), rv.to(dt), wd, bd, false), eval, tol);
      }
    }
  }
}

TEST_CASE("batch_norm updates the running statistics with the momentum rule and the unbiased variance") {
  for (DType dt : {DType::f64, DType::f32}) {
    INFO("dtype ", dt);
    Tensor rm = ops::zeros({2}, dt), rv = ops::ones({2}, dt);
    const uint64_t v_mean = rm.version(), v_var = rv.version();
    // step 1: channel 0 = {1, 3} (mean 2, unbiased var 2), channel 1 = {2, 6} (mean 4, var 8)
    ops::batch_norm(ops::from_vector(std::vector<double>{1, 2, 3, 6}, {2, 2}, dt), rm, rv, Tensor(), Tensor(), true);
    check_close(rm, {0.9 * 0 + 0.1 * 2, 0.9 * 0 + 0.1 * 4}, 1e-6);
    check_close(rv, {0.9 * 1 + 0.1 * 2, 0.9 * 1 + 0.1 * 8}, 1e-6);
    CHECK(rm.version() > v_mean);
    CHECK(rv.version() > v_var);
    // step 2, momentum 0.5, (1, 2, 2) input: channel 0 = {0, 4} (mean 2, var 8), channel 1 = {1, 1}
    ops::batch_norm(ops::from_vector(std::vector<double>{0, 4, 1, 1}, {1, 2, 2}, dt), rm, rv, Tensor(), Tensor(), true,
                    0.5);
    check_close(rm, {0.5 * 0.2 + 0.5 * 2, 0.5 * 0.4 + 0.5 * 1}, 1e-6);
    check_close(rv, {0.5 * 1.1 + 0.5 * 8, 0.5 * 1.7 + 0.5 * 0}, 1e-6);
    // eval reads them and leaves them alone
    const uint64_t v_eval = rm.version();
    const Tensor y =
        ops::batch_norm(ops::from_vector(std::vector<double>{1, 1}, {1, 2}, dt), rm, rv, Tensor(), Tensor(), false);
    check_close(y, {(1 - 1.1) / std::sqrt(4.55 + 1e-5), (1 - 0.7) / std::sqrt(0.85 + 1e-5)}, 1e-6);
    CHECK(rm.version() == v_eval);
  }
}

TEST_CASE("batch_norm passes the f64 gradcheck in training and eval mode") {
  for (const Shape& xs : {Shape{4, 3}, Shape{2, 3, 4}, Shape{2, 3, 2, 2}}) {
    const Tensor x = leaf(xs, -1, 1, 61), w = leaf({3}, 0.5, 1.5, 62), b = leaf({3}, -1, 1, 63);
    Tensor rm = leaf({3}, -1, 1, 64).detach(), rv = positive({3}, 65);
    for (bool training : {true, false}) {
      for (const Affine& a : kAffines) {
        INFO("x ", shape_to_string(xs), " training ", training, " weight ", a.weight, " bias ", a.bias);
        auto f = [&](const std::vector<Tensor>& in) {
          return ops::batch_norm(in[0], rm, rv, weight_in(in, a), bias_in(in, a), training);
        };
        CHECK_GRADCHECK(f, inputs_of(x, w, b, a));
      }
    }
    // training without running statistics
    CHECK_GRADCHECK(
        [](const std::vector<Tensor>& in) { return ops::batch_norm(in[0], Tensor(), Tensor(), in[1], in[2], true); },
        {x, w, b});
  }
}

// batch_norm's f32 path is the plain loops (faster than oneDNN 2.6's nchw batch normalization).
// K: every output and gradient sums over a channel's N * S values.
TEST_CASE("batch_norm f32 matches the f64 path forward and backward in training and eval") {
  struct Case {
    Shape x;
    const char* what;
  };
  for (const Case& c :
       {Case{{4, 64, 64, 64}, "4x64x64x64"}, Case{{8, 64, 100}, "8x64x100"}, Case{{64, 256}, "64x256"}}) {
    const int64_t C = c.x[1], K = c.x[0] * spatial_of(c.x);
    const Tensor rm32 = f32_leaf({C}, 71).detach(), rv32 = positive({C}, 72).to(DType::f32);
    for (bool training : {true, false}) {
      INFO(c.what, " training ", training);
      // Each dtype updates its own copy of the running statistics.
      Tensor rm[2] = {rm32.clone(), rm32.to(DType::f64)}, rv[2] = {rv32.clone(), rv32.to(DType::f64)};
      auto f = [&](const std::vector<Tensor>& in) {
        const int k = in[0].dtype() == DType::f64;
        return ops::batch_norm(in[0], rm[k], rv[k], in[1], in[2], training);
      };
      compare_f32_f64(f, {f32_leaf(c.x, 73), f32_leaf({C}, 74), f32_leaf({C}, 75)}, {K, K, K, K}, c.what);
      CHECK(rel_l2(rm[0], rm[1]) <= tse::test::onednn_tol(K));
      CHECK(rel_l2(rv[0], rv[1]) <= tse::test::onednn_tol(K));
      // no weight and bias
      auto plain = [&](const std::vector<Tensor>& in) {
        const int k = in[0].dtype() == DType::f64;
        return ops::batch_norm(in[0], rm[k], rv[k], Tensor(), Tensor(), training);
      };
      compare_f32_f64(plain, {f32_leaf(c.x, 76)}, {K, K}, c.what);
    }
  }
}

TEST_CASE("batch_norm: the in-place running-statistics update does not break autograd") {
  Tensor rm = ops::zeros({3}, DType::f64), rv = ops::ones({3}, DType::f64);
  const Tensor x = leaf({4, 3, 2}, -1, 1, 81), w = leaf({3}, 0.5, 1.5, 82), b = leaf({3}, -1, 1, 83);
  // Two training steps on one graph, each updating the running statistics the other saw: the
  // nodes keep the batch statistics, so backward works and matches the gradcheck.
  auto two_steps = [&](const std::vector<Tensor>& in) {
    const Tensor h = ops::batch_norm(in[0], rm, rv, in[1], in[2], true);
    return ops::batch_norm(ops::tanh(h), rm, rv, in[1], in[2], true);
  };
  CHECK_GRADCHECK(two_steps, {x, w, b});
  const Tensor y = two_steps({x, w, b});
  const auto g = autograd::grad({y}, {x, w, b}, {ops::ones_like(y)});
  CHECK(g[0].sizes() == x.sizes());
  // A training step after an eval forward modifies the statistics that eval node saved: as for
  // any saved tensor modified in place, its backward refuses.
  const Tensor y_eval = ops::batch_norm(x, rm, rv, w, b, false);
  ops::batch_norm(x.detach(), rm, rv, Tensor(), Tensor(), true);
  const std::string msg =
      thrown_message<AutogradError>([&] { autograd::grad({y_eval}, {x}, {ops::ones_like(y_eval)}); });
  CHECK(contains(msg, "batch_norm"));
  CHECK(contains(msg, "modified in place"));
  // Another op that saved a running statistic sees the version bump too.
  const Tensor s = leaf({3}, -1, 1, 84);
  const Tensor prod = ops::mul(s, rm);
  ops::batch_norm(x.detach(), rm, rv, Tensor(), Tensor(), true);
  CHECK_THROWS_AS(autograd::grad({prod}, {s}, {ops::ones_like(prod)}), AutogradError);
}

// ---- shared behaviour ---------------------------------------------------------------------------

TEST_CASE("normalization ops reject bad arguments with messages naming the op, argument and shapes") {
  const Tensor x = ops::zeros({2, 6, 5});
  std::string msg = thrown_message<ValueError>([&] { ops::layer_norm(x, {6}); });
  CHECK(contains(msg, "layer_norm"));
  CHECK(contains(msg, "normalized_shape [6]"));
  CHECK(contains(msg, "[2, 6, 5]"));
  CHECK(contains(thrown_message<ValueError>([&] { ops::layer_norm(x, {}); }), "normalized_shape []"));
  CHECK(contains(thrown_message<ValueError>([&] { ops::layer_norm(x, {1, 2, 6, 5}); }), "[2, 6, 5]"));
  msg = thrown_message<ValueError>([&] { ops::layer_norm(x, {6, 5}, ops::zeros({5})); });
  CHECK(contains(msg, "'weight'"));
  CHECK(contains(msg, "[6, 5]"));
  CHECK(contains(msg, "[5]"));
  CHECK(contains(thrown_message<ValueError>([&] { ops::layer_norm(x, {5}, Tensor(), ops::zeros({6})); }), "'bias'"));
  msg = thrown_message<ValueError>([&] { ops::layer_norm(x, {5}, ops::zeros({5}, DType::f64)); });
  CHECK(contains(msg, "dtype"));
  CHECK(contains(msg, "float64"));
  CHECK(contains(thrown_message<ValueError>([&] { ops::layer_norm(ops::zeros({2, 5}, DType::i64), {5}); }), "int64"));
  CHECK(contains(thrown_message<ValueError>([&] { ops::layer_norm(Tensor(), {5}); }), "undefined"));
  CHECK(contains(thrown_message<ValueError>([&] { ops::layer_norm(x, {5}, Tensor(), Tensor(), -1.0); }), "eps"));

  msg = thrown_message<ValueError>([&] { ops::group_norm(x, 4); });
  CHECK(contains(msg, "group_norm"));
  CHECK(contains(msg, "C = 6"));
  CHECK(contains(msg, "num_groups = 4"));
  CHECK(contains(msg, "[2, 6, 5]"));
  CHECK(contains(thrown_message<ValueError>([&] { ops::group_norm(x, 0); }), "num_groups"));
  CHECK(contains(thrown_message<ValueError>([&] { ops::group_norm(ops::zeros({6}), 2); }), "[6]"));
  msg = thrown_message<ValueError>([&] { ops::group_norm(x, 2, ops::zeros({5})); });
  CHECK(contains(msg, "'weight'"));
  CHECK(contains(msg, "[6]"));
  CHECK(contains(msg, "[5]"));
  CHECK_THROWS_AS(ops::group_norm(x, 2, Tensor(), ops::zeros({6}, DType::f64)), ValueError);

  const Tensor rm = ops::zeros({6}), rv = ops::ones({6});
  msg = thrown_message<ValueError>([&] { ops::batch_norm(x, Tensor(), Tensor()); });
  CHECK(contains(msg, "batch_norm"));
  CHECK(contains(msg, "eval"));
  CHECK(contains(msg, "running_mean"));
  msg = thrown_message<ValueError>([&] { ops::batch_norm(ops::zeros({1, 6}), rm, rv, Tensor(), Tensor(), true); });
  CHECK(contains(msg, "Expected more than 1 value per channel when training"));
  CHECK(contains(msg, "[1, 6]"));
  CHECK(contains(thrown_message<ValueError>([&] {
                   ops::batch_norm(ops::zeros({1, 6, 1, 1}), Tensor(), Tensor(), Tensor(), Tensor(), true);
                 }),
                 "more than 1 value per channel"));
  CHECK_NOTHROW(ops::batch_norm(ops::zeros({1, 6}), rm, rv));  // eval with one value is fine
  CHECK(contains(thrown_message<ValueError>([&] { ops::batch_norm(x, rm, Tensor(), Tensor(), Tensor(), true); }),
                 "both"));
  msg = thrown_message<ValueError>([&] { ops::batch_norm(x, ops::zeros({5}), rv); });
  CHECK(contains(msg, "'running_mean'"));
  CHECK(contains(msg, "[5]"));
  msg = thrown_message<ValueError>([&] { ops::batch_norm(x, rm, ops::ones({6}, DType::f64)); });
  CHECK(contains(msg, "'running_var'"));
  CHECK(contains(msg, "dtype"));
  CHECK(contains(thrown_message<ValueError>([&] { ops::batch_norm(x, rm, rv, Tensor(), ops::zeros({2})); }), "'bias'"));
  CHECK(contains(thrown_message<ValueError>([&] { ops::batch_norm(ops::zeros({6}), rm, rv); }), "(N, C, *)"));
}

TEST_CASE("normalization ops give the same results and gradients for transposed and sliced inputs") {
  using Op = std::function<Tensor(const Tensor& x, const Tensor& w, const Tensor& b)>;
  struct Case {
    const char* name;
    Op op;
    int64_t params;
  };
  const std::vector<Case> cases = {
      {"layer_norm", [](const Tensor& x, const Tensor& w, const Tensor& b) { return ops::layer_norm(x, {4}, w, b); },
       4},
      {"group_norm", [](const Tensor& x, const Tensor& w, const Tensor& b) { return ops::group_norm(x, 2, w, b); }, 4},
      {"batch_norm train",
       [](const Tensor& x, const Tensor& w, const Tensor& b) {
         return ops::batch_norm(x, Tensor(), Tensor(), w, b, true);
       },
       4},
      {"batch_norm eval",
       [](const Tensor& x, const Tensor& w, const Tensor& b) {
         return ops::batch_norm(x, ops::full({4}, 0.25, x.dtype()), ops::full({4}, 2.0, x.dtype()), w, b, false);
       },
       4},
  };
  for (const Case& c : cases) {
    for (DType dt : {DType::f64, DType::f32}) {
      INFO(c.name, " dtype ", dt);
      // x (3, 4, 4) viewed from a (4, 3, 4) base; weight and bias as step-2 slices.
      const Tensor base = leaf({4, 3, 4}, -1, 1, 91).detach().to(dt).requires_grad_();
      const Tensor wbase = leaf({8}, 0.5, 1.5, 92).detach().to(dt).requires_grad_();
      const Tensor bbase = leaf({8}, -1, 1, 93).detach().to(dt).requires_grad_();
      const Tensor xv = base.transpose(0, 1), wv = wbase.slice(0, 0, 8, 2), bv = bbase.slice(0, 1, 8, 2);
      const Tensor xc = xv.detach().contiguous().requires_grad_(), wc = wv.detach().contiguous().requires_grad_();
      const Tensor bc = bv.detach().contiguous().requires_grad_();
      const Tensor yv = c.op(xv, wv, bv), yc = c.op(xc, wc, bc);
      CHECK(values(yv) == values(yc));
      // a transposed upstream gradient reaches the node through the transposed output
      const Tensor g = leaf({4, 3, 4}, -1, 1, 94).detach().to(dt);
      const auto gv = autograd::grad({yv.transpose(0, 1)}, {base, wbase, bbase}, {g});
      const auto gc = autograd::grad({yc}, {xc, wc, bc}, {g.transpose(0, 1).contiguous()});
      CHECK(values(gv[0].transpose(0, 1)) == values(gc[0]));
      CHECK(values(gv[1].slice(0, 0, 8, 2)) == values(gc[1]));
      CHECK(values(gv[2].slice(0, 1, 8, 2)) == values(gc[2]));
    }
  }
}

TEST_CASE("normalization ops handle an empty batch: empty output, zero weight and bias gradients") {
  for (DType dt : {DType::f64, DType::f32}) {
    INFO("dtype ", dt);
    const Tensor x = ops::zeros({0, 4, 3}, dt).requires_grad_();
    const Tensor w = ops::ones({4}, dt).requires_grad_(), b = ops::zeros({4}, dt).requires_grad_();
    Tensor rm = ops::full({4}, 0.5, dt), rv = ops::full({4}, 2.0, dt);
    const std::vector<Tensor> ys = {ops::layer_norm(x, {4, 3}, ops::ones({4, 3}, dt), ops::zeros({4, 3}, dt)),
                                    ops::group_norm(x, 2, w, b), ops::batch_norm(x, rm, rv, w, b, true),
                                    ops::batch_norm(x, rm, rv, w, b, false)};
    for (const Tensor& y : ys) CHECK(y.sizes() == Shape{0, 4, 3});
    check_close(rm, {0.5, 0.5, 0.5, 0.5}, 0);  // no batch, no update
    check_close(rv, {2, 2, 2, 2}, 0);
    for (size_t k = 1; k < ys.size(); ++k) {
      const auto g = autograd::grad({ys[k]}, {x, w, b}, {ops::zeros({0, 4, 3}, dt)});
      CHECK(g[0].sizes() == Shape{0, 4, 3});
      check_close(g[1], {0, 0, 0, 0}, 0);
      check_close(g[2], {0, 0, 0, 0}, 0);
    }
    // layer_norm over a (0, 5) batch of rows
    const Tensor lx = ops::zeros({0, 5}, dt).requires_grad_(), lw = ops::ones({5}, dt).requires_grad_();
    const Tensor ly = ops::layer_norm(lx, {5}, lw);
    const auto lg = autograd::grad({ly}, {lx, lw}, {ops::zeros({0, 5}, dt)});
    CHECK(lg[0].sizes() == Shape{0, 5});
    check_close(lg[1], {0, 0, 0, 0, 0}, 0);
  }
}

TEST_CASE("layer_norm: a second identical f32 call is a primitive cache hit, group_norm and batch_norm need none") {
  using cpu::onednn::primitive_cache_stats;
  // A shape no other test uses, so the first call is a miss.
  const Tensor x = f32_leaf({37, 23}, 101).detach();
  const auto s0 = primitive_cache_stats();
  const Tensor y1 = ops::layer_norm(x, {23});
  const auto s1 = primitive_cache_stats();
  CHECK(s1.misses == s0.misses + 1);
  const Tensor y2 = ops::layer_norm(x, {23});
  const auto s2 = primitive_cache_stats();
  CHECK(s2.hits == s1.hits + 1);
  CHECK(s2.misses == s1.misses);
  CHECK(values(y1) == values(y2));
  // Backward primitives are cached too: the second backward of a fresh graph is a hit.
  auto ln_backward = [] {
    const Tensor xg = f32_leaf({37, 29}, 103), w = f32_leaf({29}, 104);
    const Tensor y = ops::layer_norm(xg, {29}, w);
    return autograd::grad({y}, {xg, w}, {ops::ones_like(y)});
  };
  const auto g1 = ln_backward();
  const auto s3 = primitive_cache_stats();
  const auto g2 = ln_backward();
  const auto s4 = primitive_cache_stats();
  CHECK(s4.misses == s3.misses);
  CHECK(s4.hits == s3.hits + 2);  // forward and backward
  CHECK(values(g1[0]) == values(g2[0]));
  // The plain-loop ops create no primitive.
  const Tensor z = f32_leaf({2, 8, 9}, 105).detach();
  ops::group_norm(z, 4);
  ops::batch_norm(z, Tensor(), Tensor(), Tensor(), Tensor(), true);
  ops::batch_norm(z, ops::zeros({8}), ops::ones({8}));
  CHECK(primitive_cache_stats().misses == s4.misses);
  CHECK(primitive_cache_stats().hits == s4.hits);
}
