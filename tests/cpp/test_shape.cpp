// Shape ops: the views (storage sharing, values, errors, gradients), cat/stack/split/chunk, and
// the copying ops pad/roll/flip/repeat/tril/triu against naive float64 references.
#include <algorithm>
#include <string>

#include "tests/cpp/gradcheck.hpp"
#include "tests/cpp/reference.hpp"

using namespace tse;
using tse::test::leaf;
using tse::test::values;
using tse::test::unravel;
using tse::test::ravel;
using tse::test::counting;
using tse::test::contains;
using tse::test::thrown_message;

namespace {

bool shares_storage(const Tensor& a, const Tensor& b) { return a.storage() == b.storage(); }

// ---- references for the copying ops ---------------------------------------------------------------

/// Source element of x for one output position of pad, or -1 where constant mode writes value.
int64_t pad_source(const std::vector<int64_t>& out_idx, const Shape& xs, const std::vector<int64_t>& pads,
                   const std::string& mode) {
  const int64_t nd = static_cast<int64_t>(xs.size());
  std::vector<int64_t> src(out_idx);
  for (int64_t k = 0; 2 * k < static_cast<int64_t>(pads.size()); ++k) {
    const int64_t d = nd - 1 - k, n = xs[d];
    int64_t p = out_idx[d] - pads[2 * k];
    if (mode == "constant") {
      if (p < 0 || p >= n) return -1;
    } else if (mode == "reflect") {
      if (p < 0) p = -p;
      if (p > n - 1) p = (n - 1) - (p - (n - 1));
    } else if (mode == "replicate") {
      p = std::min(std::max<int64_t>(p, 0), n - 1);
    } else {
      while (p < 0) p += n;
      while (p >= n) p -= n;
    }
    src[d] = p;
  }
  return ravel(src, xs);
}

Shape padded_sizes(const Shape& xs, const std::vector<int64_t>& pads) {
  Shape out = xs;
  for (size_t k = 0; 2 * k < pads.size(); ++k) out[xs.size() - 1 - k] += pads[2 * k] + pads[2 * k + 1];
  return out;
}

std::vector<double> pad_reference(const Tensor& x, const std::vector<int64_t>& pads, const std::string& mode,
                                  double value) {
  const auto xv = values(x);
  const Shape os = padded_sizes(x.sizes(), pads);
  std::vector<double> out(static_cast<size_t>(shape_numel(os)));
  for (int64_t i = 0; i < static_cast<int64_t>(out.size()); ++i) {
    const int64_t s = pad_source(unravel(i, os), x.sizes(), pads, mode);
    out[i] = s < 0 ? value : xv[s];
  }
  return out;
}

/// d(sum(g * pad(x)))/dx: every output position sends its grad to its source.
std::vector<double> pad_grad_reference(const Shape& xs, const std::vector<double>& g, const std::vector<int64_t>& pads,
                                       const std::string& mode) {
  const Shape os = padded_sizes(xs, pads);
  std::vector<double> gx(static_cast<size_t>(shape_numel(xs)), 0.0);
  for (int64_t i = 0; i < shape_numel(os); ++i) {
    const int64_t s = pad_source(unravel(i, os), xs, pads, mode);
    if (s >= 0) gx[s] += g[i];
  }
  return gx;
}

}  // namespace

// ---- views ----------------------------------------------------------------------------------------

TEST_CASE("shape: view shares storage, infers -1 and refuses incompatible strides") {
  Tensor x = counting({2, 3, 4});
  Tensor v = x.view({4, -1});
  CHECK(v.sizes() == Shape{4, 6});
  CHECK(shares_storage(v, x));
  CHECK(v.data_ptr() == x.data_ptr());
  CHECK(values(v) == values(x));
  CHECK(x.view({-1}).sizes() == Shape{24});
  CHECK(ops::view(x, {2, 12}).sizes() == Shape{2, 12});
  CHECK_THROWS_AS(x.view({5, -1}), ValueError);
  CHECK_THROWS_AS(x.view({-1, -1}), ValueError);
  CHECK_THROWS_AS(x.view({7}), ValueError);
  const std::string msg = thrown_message<ValueError>([&] { x.transpose(0, 2).view({24}); });
  CHECK(contains(msg, "view"));
  CHECK(contains(msg, "reshape"));
  // Splitting one dim of a non-contiguous tensor is still a view.
  Tensor t = x.transpose(0, 2);  // [4, 3, 2]
  Tensor split_view = t.view({2, 2, 3, 2});
  CHECK(shares_storage(split_view, x));
  CHECK(values(split_view) == values(t));
}

TEST_CASE("shape: reshape is a view when strides allow and a copy otherwise") {
  Tensor x = counting({2, 3, 4});
  Tensor r = x.reshape({6, 4});
  CHECK(shares_storage(r, x));
  Tensor t = x.transpose(1, 2);  // [2, 4, 3], non-contiguous
  Tensor c = t.reshape({8, 3});
  CHECK_FALSE(shares_storage(c, x));
  // Reference: the transposed tensor read in row-major order.
  const auto xv = values(x);
  std::vector<double> expected;
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t k = 0; k < 4; ++k)
      for (int64_t j = 0; j < 3; ++j) expected.push_back(xv[ravel({i, j, k}, {2, 3, 4})]);
  CHECK(values(c) == expected);
  CHECK(ops::reshape(t, {-1}).sizes() == Shape{24});
  CHECK_THROWS_AS(x.reshape({5, 5}), ValueError);
}

TEST_CASE("shape: permute, transpose and t share storage and move elements as the index reference says") {
  Tensor x = counting({2, 3, 4});
  const auto xv = values(x);
  Tensor p = x.permute({2, 0, 1});
  CHECK(p.sizes() == Shape{4, 2, 3});
  CHECK(shares_storage(p, x));
  const auto pv = values(p);
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 2; ++j)
      for (int64_t k = 0; k < 3; ++k) CHECK(pv[ravel({i, j, k}, {4, 2, 3})] == xv[ravel({j, k, i}, {2, 3, 4})]);
  Tensor tr = ops::transpose(x, 0, -1);
  CHECK(tr.sizes() == Shape{4, 3, 2});
  const auto tv = values(tr);
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t k = 0; k < 2; ++k) CHECK(tv[ravel({i, j, k}, {4, 3, 2})] == xv[ravel({k, j, i}, {2, 3, 4})]);
  Tensor m = counting({2, 3});
  CHECK(values(m.t()) == std::vector<double>{1, 4, 2, 5, 3, 6});
  CHECK_THROWS_AS(x.permute({0, 1}), ValueError);
  CHECK_THROWS_AS(x.permute({0, 1, 1}), ValueError);
  CHECK_THROWS_AS(x.permute({0, 1, 3}), IndexError);
  CHECK_THROWS_AS(x.t(), ValueError);
}

TEST_CASE("shape: narrow, slice with step and select are views at the right offset") {
  Tensor x = counting({3, 4, 5});
  const auto xv = values(x);
  Tensor n = x.narrow(1, 1, 2);
  CHECK(n.sizes() == Shape{3, 2, 5});
  CHECK(shares_storage(n, x));
  CHECK(static_cast<char*>(n.data_ptr()) == static_cast<char*>(x.data_ptr()) + 5 * sizeof(double));
  const auto nv = values(n);
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 2; ++j)
      for (int64_t k = 0; k < 5; ++k) CHECK(nv[ravel({i, j, k}, {3, 2, 5})] == xv[ravel({i, j + 1, k}, {3, 4, 5})]);
  Tensor s = ops::slice(x, 2, 1, 100, 2);  // end clamps to 5: columns 1, 3
  CHECK(s.sizes() == Shape{3, 4, 2});
  CHECK(shares_storage(s, x));
  const auto sv = values(s);
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 4; ++j)
      for (int64_t k = 0; k < 2; ++k) CHECK(sv[ravel({i, j, k}, {3, 4, 2})] == xv[ravel({i, j, 1 + 2 * k}, {3, 4, 5})]);
  CHECK(x.slice(0, -2, 3).sizes() == Shape{2, 4, 5});
  CHECK(x.slice(2, 4, 2).sizes() == Shape{3, 4, 0});
  Tensor sel = ops::select(x, 0, -1);
  CHECK(sel.sizes() == Shape{4, 5});
  CHECK(static_cast<char*>(sel.data_ptr()) == static_cast<char*>(x.data_ptr()) + 40 * sizeof(double));
  CHECK(values(sel)[0] == 41.0);
  CHECK(values(x.select(2, 3))[1] == xv[ravel({0, 1, 3}, {3, 4, 5})]);
  CHECK_THROWS_AS(x.slice(1, 0, 2, 0), ValueError);
  CHECK_THROWS_AS(x.narrow(1, 3, 2), IndexError);
  CHECK_THROWS_AS(x.select(1, 4), IndexError);
  CHECK_THROWS_AS(x.select(3, 0), IndexError);
}

TEST_CASE("shape: expand, squeeze, unsqueeze and flatten") {
  Tensor x = counting({3, 1});
  Tensor e = ops::expand(x, {2, 3, 4});
  CHECK(e.sizes() == Shape{2, 3, 4});
  CHECK(e.strides()[0] == 0);
  CHECK(e.strides()[2] == 0);
  CHECK(shares_storage(e, x));
  const auto ev = values(e);
  for (int64_t i = 0; i < 24; ++i) CHECK(ev[i] == static_cast<double>(unravel(i, {2, 3, 4})[1] + 1));
  CHECK(x.expand({-1, 5}).sizes() == Shape{3, 5});
  CHECK_THROWS_AS(x.expand({4, 2}), ValueError);
  CHECK_THROWS_AS(x.expand({3}), ValueError);

  Tensor y = counting({1, 3, 1, 2});
  CHECK(ops::squeeze(y).sizes() == Shape{3, 2});
  CHECK(ops::squeeze(y, 2).sizes() == Shape{1, 3, 2});
  CHECK(y.squeeze(1).sizes() == Shape{1, 3, 1, 2});  // size 3: unchanged
  CHECK(shares_storage(y.squeeze(), y));
  CHECK(ops::unsqueeze(y, -1).sizes() == Shape{1, 3, 1, 2, 1});
  CHECK(y.unsqueeze(0).sizes() == Shape{1, 1, 3, 1, 2});
  CHECK(shares_storage(y.unsqueeze(2), y));
  CHECK(values(y.unsqueeze(3)) == values(y));
  CHECK_THROWS_AS(y.unsqueeze(6), IndexError);

  Tensor z = counting({2, 3, 4});
  CHECK(ops::flatten(z, 1).sizes() == Shape{2, 12});
  CHECK(z.flatten(0, 1).sizes() == Shape{6, 4});
  CHECK(shares_storage(z.flatten(), z));
  Tensor zt = z.transpose(0, 1);
  Tensor zf = zt.flatten();
  CHECK_FALSE(shares_storage(zf, z));
  CHECK(values(zf) == values(zt));
  CHECK_THROWS_AS(z.flatten(2, 1), ValueError);
}

TEST_CASE("shape: gradcheck through every view") {
  Tensor x = leaf({2, 3, 4});
  using V = std::vector<Tensor>;
  CHECK_GRADCHECK([](const V& in) { return in[0].view({4, 6}); }, {x});
  CHECK_GRADCHECK([](const V& in) { return in[0].transpose(0, 2).reshape({6, 4}); }, {x});
  CHECK_GRADCHECK([](const V& in) { return in[0].permute({1, 2, 0}); }, {x});
  CHECK_GRADCHECK([](const V& in) { return ops::transpose(in[0], 1, 2); }, {x});
  CHECK_GRADCHECK([](const V& in) { return in[0].narrow(2, 1, 2); }, {x});
  CHECK_GRADCHECK([](const V& in) { return in[0].slice(2, 0, 4, 3); }, {x});
  CHECK_GRADCHECK([](const V& in) { return in[0].select(1, -1); }, {x});
  CHECK_GRADCHECK([](const V& in) { return in[0].flatten(0, 1); }, {x});
  CHECK_GRADCHECK([](const V& in) { return in[0].transpose(0, 1).flatten(); }, {x});
  Tensor y = leaf({3, 1, 2});
  CHECK_GRADCHECK([](const V& in) { return in[0].expand({2, 3, 4, 2}); }, {y});
  CHECK_GRADCHECK([](const V& in) { return in[0].squeeze(); }, {y});
  CHECK_GRADCHECK([](const V& in) { return in[0].unsqueeze(1); }, {y});
}

// ---- cat / stack / split / chunk -------------------------------------------------------------------

TEST_CASE("shape: cat matches the reference for non-contiguous inputs, any dim, and promotes dtypes") {
  Tensor a = counting({3, 2}).t();            // [2, 3], non-contiguous
  Tensor b = ops::mul(counting({2, 1}), 10.0);  // [2, 1]
  Tensor c = ops::cat({a, b}, 1);
  CHECK(c.sizes() == Shape{2, 4});
  const auto av = values(a), bv = values(b);
  std::vector<double> expected;
  for (int64_t i = 0; i < 2; ++i) {
    for (int64_t j = 0; j < 3; ++j) expected.push_back(av[i * 3 + j]);
    expected.push_back(bv[i]);
  }
  CHECK(values(c) == expected);
  Tensor r = ops::cat({a, a}, -2);
  CHECK(r.sizes() == Shape{4, 3});
  std::vector<double> rows = av;
  rows.insert(rows.end(), av.begin(), av.end());
  CHECK(values(r) == rows);
  Tensor mixed = ops::cat({counting({2}, DType::i64), counting({1}, DType::f32)});
  CHECK(mixed.dtype() == DType::f32);
  CHECK(values(mixed) == std::vector<double>{1, 2, 1});
  CHECK_THROWS_AS(ops::cat({}), ValueError);
  CHECK_THROWS_AS(ops::cat({a, counting({3, 3})}, 1), ValueError);
  CHECK_THROWS_AS(ops::cat({a, counting({2})}, 0), ValueError);
  CHECK_THROWS_AS(ops::cat({ops::scalar_tensor(1.0)}), ValueError);
  CHECK_THROWS_AS(ops::cat({a}, 2), IndexError);
}

TEST_CASE("shape: stack adds a dim at any position") {
  Tensor a = counting({2, 3}), b = ops::mul(counting({2, 3}), -1.0);
  const auto av = values(a), bv = values(b);
  for (int64_t dim : {0, 1, 2, -1}) {
    Tensor s = ops::stack({a, b}, dim);
    const int64_t d = dim < 0 ? dim + 3 : dim;
    Shape expected_sizes{2, 3};
    expected_sizes.insert(expected_sizes.begin() + d, 2);
    REQUIRE(s.sizes() == expected_sizes);
    const auto sv = values(s);
    for (int64_t i = 0; i < 12; ++i) {
      std::vector<int64_t> idx = unravel(i, expected_sizes);
      const int64_t which = idx[d];
      idx.erase(idx.begin() + d);
      CHECK(sv[i] == (which == 0 ? av : bv)[ravel(idx, {2, 3})]);
    }
  }
  CHECK_THROWS_AS(ops::stack({a, counting({3, 2})}), ValueError);
  CHECK_THROWS_AS(ops::stack({}), ValueError);
}

TEST_CASE("shape: split and chunk return views of the right sizes") {
  Tensor x = counting({5, 2});
  auto parts = ops::split(x, 2);
  REQUIRE(parts.size() == 3);
  CHECK(parts[0].sizes() == Shape{2, 2});
  CHECK(parts[2].sizes() == Shape{1, 2});
  CHECK(shares_storage(parts[1], x));
  CHECK(values(parts[1]) == std::vector<double>{5, 6, 7, 8});
  auto uneven = ops::split(x, std::vector<int64_t>{1, 4});
  REQUIRE(uneven.size() == 2);
  CHECK(values(uneven[0]) == std::vector<double>{1, 2});
  auto cols = ops::split(x, 1, -1);
  REQUIRE(cols.size() == 2);
  CHECK(values(cols[1]) == std::vector<double>{2, 4, 6, 8, 10});
  auto chunks = ops::chunk(x, 3);
  REQUIRE(chunks.size() == 3);
  CHECK(chunks[0].sizes()[0] == 2);
  CHECK(chunks[2].sizes()[0] == 1);
  auto four = ops::chunk(x, 4);  // ceil(5 / 4) = 2 per chunk: torch gives 3 chunks
  CHECK(four.size() == 3);
  CHECK_THROWS_AS(ops::split(x, std::vector<int64_t>{2, 2}), ValueError);
  CHECK_THROWS_AS(ops::split(x, 0), ValueError);
  CHECK_THROWS_AS(ops::chunk(x, 0), ValueError);
}

TEST_CASE("shape: gradcheck of cat, stack, split and chunk") {
  Tensor a = leaf({2, 3}, -1, 1, 1), b = leaf({2, 2}, -1, 1, 2);
  using V = std::vector<Tensor>;
  CHECK_GRADCHECK([](const V& in) { return ops::cat({in[0], in[1]}, 1); }, {a, b});
  CHECK_GRADCHECK([](const V& in) { return ops::cat({in[0].t(), in[1].t()}, 0); }, {a, b});
  CHECK_GRADCHECK([](const V& in) { return ops::stack({in[0], ops::mul(in[0], in[0])}, 1); }, {a});
  // Pieces recombined with different weights: each piece's gradient must land in its own slot.
  CHECK_GRADCHECK(
      [](const V& in) {
        auto p = ops::split(in[0], std::vector<int64_t>{1, 2}, 1);
        return ops::add(ops::mul(p[0], 3.0), ops::sum(ops::mul(p[1], p[1]), {1}, true));
      },
      {a});
  CHECK_GRADCHECK(
      [](const V& in) {
        auto p = ops::chunk(in[0], 2, 0);
        return ops::mul(p[0], ops::exp(p[1]));
      },
      {a});
}

// ---- pad --------------------------------------------------------------------------------------------

TEST_CASE("pad: small cases written out by hand") {
  Tensor x = counting({3});  // [1, 2, 3]
  CHECK(values(ops::pad(x, {2, 2}, "reflect")) == std::vector<double>{3, 2, 1, 2, 3, 2, 1});
  CHECK(values(ops::pad(x, {2, 1}, "replicate")) == std::vector<double>{1, 1, 1, 2, 3, 3});
  CHECK(values(ops::pad(x, {2, 1}, "circular")) == std::vector<double>{2, 3, 1, 2, 3, 1});
  CHECK(values(ops::pad(x, {3, 3}, "circular")) == std::vector<double>{1, 2, 3, 1, 2, 3, 1, 2, 3});
  CHECK(values(ops::pad(x, {1, 2}, "constant", -4.0)) == std::vector<double>{-4, 1, 2, 3, -4, -4});
  CHECK(values(ops::pad(counting({4}), {-1, 2}, "constant", 9.0)) == std::vector<double>{2, 3, 4, 9, 9});
  CHECK(values(ops::pad(x, {-3, 1})) == std::vector<double>{0});
  CHECK(values(ops::pad(x, {-1, 2}, "replicate")) == std::vector<double>{2, 3, 3, 3});
  CHECK(values(ops::pad(x, {-1, 1}, "circular")) == std::vector<double>{2, 3, 1});
  Tensor m = counting({2, 2});  // [[1, 2], [3, 4]]
  CHECK(values(ops::pad(m, {1, 0, 0, 1})) == std::vector<double>{0, 1, 2, 0, 3, 4, 0, 0, 0});
  CHECK(values(ops::pad(m, {1, 1, 1, 1}, "reflect")) ==
        std::vector<double>{4, 3, 4, 3, 2, 1, 2, 1, 4, 3, 4, 3, 2, 1, 2, 1});
}

TEST_CASE("pad: every mode matches the reference on non-contiguous inputs") {
  // [2, 5, 3] as a transposed view of [2, 3, 5], and [2, 3, 5] as a strided slice of [2, 3, 10].
  Tensor transposed = counting({2, 3, 5}).transpose(1, 2);
  Tensor strided = counting({2, 3, 10}).slice(2, 1, 10, 2);
  for (const Tensor& x : {transposed, strided}) {
    REQUIRE_FALSE(x.is_contiguous());
    for (const std::string mode : {"constant", "reflect", "replicate", "circular"}) {
      for (const std::vector<int64_t>& pads : {std::vector<int64_t>{2, 1}, std::vector<int64_t>{2, 1, 1, 2},
                                               std::vector<int64_t>{0, 2, 2, 0, 1, 1}}) {
        CAPTURE(mode);
        CAPTURE(pads.size());
        const double value = mode == "constant" ? 0.5 : 0.0;
        Tensor out = ops::pad(x, pads, mode, value);
        CHECK(out.sizes() == padded_sizes(x.sizes(), pads));
        CHECK(values(out) == pad_reference(x, pads, mode, value));
      }
    }
    Tensor cropped = ops::pad(x, {1, -2, -1, 1}, "constant", 7.5);
    CHECK(values(cropped) == pad_reference(x, {1, -2, -1, 1}, "constant", 7.5));
    CHECK(values(ops::pad(x, {-1, 2, 1, -1}, "circular")) == pad_reference(x, {-1, 2, 1, -1}, "circular", 0));
  }
}

TEST_CASE("pad: moves every dtype, f16 and bf16 storage included") {
  for (DType dt : {DType::f32, DType::i64, DType::i32, DType::b8, DType::f16, DType::bf16}) {
    CAPTURE(dt);
    Tensor x = ops::from_vector({1, 0, 2, 3, 0, 5}, {2, 3}, dt).t();
    Tensor c = ops::pad(x, {1, 1, 0, 1}, "constant", 1.0);
    CHECK(c.dtype() == dt);
    CHECK(values(c) == pad_reference(x, {1, 1, 0, 1}, "constant", 1.0));
    Tensor r = ops::pad(x, {1, 1}, "reflect");
    CHECK(r.dtype() == dt);
    CHECK(values(r) == pad_reference(x, {1, 1}, "reflect", 0));
  }
}

TEST_CASE("pad: gradcheck in every mode, cropping and non-contiguous input included") {
  Tensor x = leaf({2, 3, 4});
  using V = std::vector<Tensor>;
  CHECK_GRADCHECK([](const V& in) { return ops::pad(in[0], {2, 1, 1, 2}, "constant", 3.0); }, {x});
  CHECK_GRADCHECK([](const V& in) { return ops::pad(in[0], {1, -1, -1, 2}); }, {x});
  CHECK_GRADCHECK([](const V& in) { return ops::pad(in[0], {2, 1}, "constant"); }, {x});
  for (const std::string mode : {"reflect", "replicate", "circular"}) {
    CAPTURE(mode);
    CHECK_GRADCHECK([&](const V& in) { return ops::pad(in[0], {2, 1, 1, 2}, mode); }, {x});
    CHECK_GRADCHECK([&](const V& in) { return ops::pad(in[0].transpose(1, 2), {1, 2, 2, 0}, mode); }, {x});
    CHECK_GRADCHECK([&](const V& in) { return ops::pad(in[0], {0, 0, 1, 1, 1, 1}, mode); }, {x});
  }
}

TEST_CASE("pad: backward of large inputs accumulates every source position (parallel path)") {
  const Shape xs{4, 96, 100};
  std::vector<int64_t> pads{3, 3, 2, 3};
  const Shape os = padded_sizes(xs, pads);
  std::vector<double> gv(static_cast<size_t>(shape_numel(os)));
  for (size_t i = 0; i < gv.size(); ++i) gv[i] = static_cast<double>(i % 97) - 48.0;
  for (const std::string mode : {"constant", "reflect", "replicate", "circular"}) {
    for (DType dt : {DType::f64, DType::f32}) {
      CAPTURE(mode);
      CAPTURE(dt);
      Tensor x = ops::zeros(xs, dt);
      x.requires_grad_(true);
      Tensor out = ops::pad(x, pads, mode);
      const auto g = autograd::grad({out}, {x}, {ops::from_vector(gv, os, dt)});
      CHECK(values(g[0]) == pad_grad_reference(xs, gv, pads, mode));
    }
  }
}

TEST_CASE("pad: bad arguments throw ValueError naming pad and the shape") {
  Tensor x = counting({2, 3, 4});
  const std::string odd = thrown_message<ValueError>([&] { ops::pad(x, {1, 2, 3}); });
  CHECK(contains(odd, "pad"));
  const std::string too_many = thrown_message<ValueError>([&] { ops::pad(x, {1, 1, 1, 1, 1, 1, 1, 1}); });
  CHECK(contains(too_many, "[2, 3, 4]"));
  const std::string reflect = thrown_message<ValueError>([&] { ops::pad(x, {4, 0}, "reflect"); });
  CHECK(contains(reflect, "reflect"));
  CHECK(contains(reflect, "[2, 3, 4]"));
  CHECK_NOTHROW(ops::pad(x, {3, 3}, "reflect"));
  CHECK_THROWS_AS(ops::pad(x, {0, 0, 0, 3}, "reflect"), ValueError);
  CHECK_THROWS_AS(ops::pad(x, {5, 0}, "circular"), ValueError);
  CHECK_NOTHROW(ops::pad(x, {4, 4}, "circular"));
  CHECK_THROWS_AS(ops::pad(x, {-3, -2}), ValueError);
  CHECK_THROWS_AS(ops::pad(x, {1, 1}, "wrap"), ValueError);
  CHECK_THROWS_AS(ops::pad(x, {1, 1}, "reflect", 2.0), ValueError);
  CHECK_THROWS_AS(ops::pad(ops::zeros({2, 0}), {1, 0}, "replicate"), ValueError);
  CHECK_THROWS_AS(ops::pad(Tensor(), {1, 1}), ValueError);
}

// ---- roll / flip ------------------------------------------------------------------------------------

TEST_CASE("roll: shifts of any sign and size, flattened when dims is empty") {
  Tensor x = counting({5});
  CHECK(values(ops::roll(x, {2})) == std::vector<double>{4, 5, 1, 2, 3});
  CHECK(values(ops::roll(x, {-1}, {0})) == std::vector<double>{2, 3, 4, 5, 1});
  CHECK(values(ops::roll(x, {7}, {0})) == std::vector<double>{4, 5, 1, 2, 3});
  CHECK(values(ops::roll(x, {-8}, {-1})) == std::vector<double>{4, 5, 1, 2, 3});
  CHECK(values(ops::roll(x, {5})) == values(x));
  Tensor m = counting({2, 3});
  Tensor flat = ops::roll(m, {1});
  CHECK(flat.sizes() == Shape{2, 3});
  CHECK(values(flat) == std::vector<double>{6, 1, 2, 3, 4, 5});
  CHECK(values(ops::roll(m.t(), {1})) == std::vector<double>{6, 1, 4, 2, 5, 3});
}

TEST_CASE("roll: several dims on a non-contiguous input match the reference") {
  Tensor x = counting({4, 5, 3}).permute({2, 0, 1});  // [3, 4, 5]
  const Shape xs = x.sizes();
  const auto xv = values(x);
  // Shifts per dim: (1, 0, -2 mod 5 = 3); dim 2 listed twice in the second call sums to 3 too.
  for (const auto& [shifts, dims] : {std::pair{std::vector<int64_t>{1, -2}, std::vector<int64_t>{0, 2}},
                                     std::pair{std::vector<int64_t>{4, 1, 2}, std::vector<int64_t>{0, -1, 2}}}) {
    const auto out = values(ops::roll(x, shifts, dims));
    const std::vector<int64_t> shift{1, 0, 3};
    for (int64_t i = 0; i < x.numel(); ++i) {
      std::vector<int64_t> idx = unravel(i, xs);
      for (int64_t d = 0; d < 3; ++d) idx[d] = (idx[d] - shift[d] + xs[d]) % xs[d];
      CHECK(out[i] == xv[ravel(idx, xs)]);
    }
  }
}

TEST_CASE("roll: gradcheck, dtypes and errors") {
  Tensor x = leaf({3, 4});
  using V = std::vector<Tensor>;
  CHECK_GRADCHECK([](const V& in) { return ops::roll(in[0], {1, -5}, {0, 1}); }, {x});
  CHECK_GRADCHECK([](const V& in) { return ops::roll(in[0].t(), {5}); }, {x});
  Tensor b = ops::from_vector({1, 0, 0, 1}, {4}, DType::b8);
  CHECK(values(ops::roll(b, {1})) == std::vector<double>{1, 1, 0, 0});
  CHECK(ops::roll(counting({4}, DType::i64), {1}).dtype() == DType::i64);
  CHECK_THROWS_AS(ops::roll(x, {1, 2}), ValueError);
  CHECK_THROWS_AS(ops::roll(x, {1}, {0, 1}), ValueError);
  CHECK(contains(thrown_message<IndexError>([&] { ops::roll(x, {1}, {2}); }), "roll"));
}

TEST_CASE("flip: reverses the listed dims") {
  Tensor m = counting({2, 3});
  CHECK(values(ops::flip(counting({3}), {0})) == std::vector<double>{3, 2, 1});
  CHECK(values(ops::flip(m, {0})) == std::vector<double>{4, 5, 6, 1, 2, 3});
  CHECK(values(ops::flip(m, {-1})) == std::vector<double>{3, 2, 1, 6, 5, 4});
  CHECK(values(ops::flip(m, {0, 1})) == std::vector<double>{6, 5, 4, 3, 2, 1});
  Tensor same = ops::flip(m, {});
  CHECK(values(same) == values(m));
  CHECK_FALSE(shares_storage(same, m));
  Tensor x = counting({3, 4, 5}).slice(2, 0, 5, 2).transpose(0, 1);  // [4, 3, 3]
  const Shape xs = x.sizes();
  const auto xv = values(x);
  const auto out = values(ops::flip(x, {0, 2}));
  for (int64_t i = 0; i < x.numel(); ++i) {
    std::vector<int64_t> idx = unravel(i, xs);
    idx[0] = xs[0] - 1 - idx[0];
    idx[2] = xs[2] - 1 - idx[2];
    CHECK(out[i] == xv[ravel(idx, xs)]);
  }
  CHECK(values(ops::flip(ops::from_vector({1, 2, 3}, {3}, DType::f16), {0})) == std::vector<double>{3, 2, 1});
}

TEST_CASE("flip: gradcheck and errors") {
  Tensor x = leaf({2, 3, 4});
  using V = std::vector<Tensor>;
  CHECK_GRADCHECK([](const V& in) { return ops::flip(in[0], {0, 2}); }, {x});
  CHECK_GRADCHECK([](const V& in) { return ops::flip(in[0].transpose(0, 2), {1}); }, {x});
  CHECK(contains(thrown_message<ValueError>([&] { ops::flip(x, {2, -1}); }), "flip"));
  CHECK_THROWS_AS(ops::flip(x, {3}), IndexError);
}

// ---- repeat -----------------------------------------------------------------------------------------

TEST_CASE("repeat: tiles like torch.Tensor.repeat, leading new dims included") {
  Tensor v = counting({3});
  CHECK(values(ops::repeat(v, {2})) == std::vector<double>{1, 2, 3, 1, 2, 3});
  Tensor two_d = ops::repeat(v, {2, 2});
  CHECK(two_d.sizes() == Shape{2, 6});
  CHECK(values(two_d) == std::vector<double>{1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3});
  Tensor m = counting({2, 2});
  CHECK(values(ops::repeat(m, {2, 1})) == std::vector<double>{1, 2, 3, 4, 1, 2, 3, 4});
  CHECK(values(ops::repeat(m, {1, 2})) == std::vector<double>{1, 2, 1, 2, 3, 4, 3, 4});
  CHECK(ops::repeat(m, {0, 1}).sizes() == Shape{0, 2});
  CHECK(values(ops::repeat(m, {1, 1})) == values(m));

  Tensor x = counting({2, 3}).t();  // [3, 2], non-contiguous
  const auto xv = values(x);
  Tensor r = ops::repeat(x, {2, 1, 3});
  REQUIRE(r.sizes() == Shape{2, 3, 6});
  const auto rv = values(r);
  for (int64_t i = 0; i < r.numel(); ++i) {
    const auto idx = unravel(i, {2, 3, 6});
    CHECK(rv[i] == xv[ravel({idx[1] % 3, idx[2] % 2}, {3, 2})]);
  }
  Tensor h = ops::repeat(ops::from_vector({1.5, -2}, {2}, DType::bf16), {2});
  CHECK(h.dtype() == DType::bf16);
  CHECK(values(h) == std::vector<double>{1.5, -2, 1.5, -2});
}

TEST_CASE("repeat: gradcheck and errors") {
  Tensor x = leaf({3, 2});
  using V = std::vector<Tensor>;
  CHECK_GRADCHECK([](const V& in) { return ops::repeat(in[0], {2, 1, 3}); }, {x});
  CHECK_GRADCHECK([](const V& in) { return ops::repeat(in[0].t(), {2, 2}); }, {x});
  CHECK_GRADCHECK([](const V& in) { return ops::repeat(in[0], {1, 1}); }, {x});
  CHECK(contains(thrown_message<ValueError>([&] { ops::repeat(x, {2}); }), "[3, 2]"));
  CHECK_THROWS_AS(ops::repeat(x, {1, -1}), ValueError);
}

// ---- tril / triu ------------------------------------------------------------------------------------

TEST_CASE("tril/triu: written out for a 3x3 matrix") {
  Tensor m = counting({3, 3});
  CHECK(values(ops::tril(m)) == std::vector<double>{1, 0, 0, 4, 5, 0, 7, 8, 9});
  CHECK(values(ops::triu(m, 1)) == std::vector<double>{0, 2, 3, 0, 0, 6, 0, 0, 0});
  CHECK(values(ops::tril(m, -1)) == std::vector<double>{0, 0, 0, 4, 0, 0, 7, 8, 0});
  CHECK(values(ops::triu(m, -1)) == std::vector<double>{1, 2, 3, 4, 5, 6, 0, 8, 9});
}

TEST_CASE("tril/triu: any batch dims, offsets and strides match the reference") {
  Tensor wide = counting({2, 3, 4});
  Tensor tall = counting({2, 3, 4}).transpose(1, 2);  // [2, 4, 3], non-contiguous
  Tensor batched = counting({2, 2, 3, 3}).permute({1, 0, 3, 2});
  for (const Tensor& x : {wide, tall, batched}) {
    const Shape xs = x.sizes();
    const int64_t nd = x.dim();
    const auto xv = values(x);
    for (int64_t k : {-5, -1, 0, 1, 2, 10}) {
      CAPTURE(k);
      const auto lo = values(ops::tril(x, k)), up = values(ops::triu(x, k));
      for (int64_t i = 0; i < x.numel(); ++i) {
        const auto idx = unravel(i, xs);
        const int64_t row = idx[nd - 2], col = idx[nd - 1];
        CHECK(lo[i] == (col - row <= k ? xv[i] : 0.0));
        CHECK(up[i] == (col - row >= k ? xv[i] : 0.0));
      }
    }
  }
  Tensor b = ops::ones({3, 3}, DType::b8);
  CHECK(values(ops::triu(b)) == std::vector<double>{1, 1, 1, 0, 1, 1, 0, 0, 1});
  CHECK(ops::tril(counting({2, 2}, DType::i32)).dtype() == DType::i32);
}

TEST_CASE("tril/triu: gradcheck and errors") {
  Tensor x = leaf({2, 3, 4});
  using V = std::vector<Tensor>;
  CHECK_GRADCHECK([](const V& in) { return ops::tril(in[0], 1); }, {x});
  CHECK_GRADCHECK([](const V& in) { return ops::triu(in[0].transpose(1, 2), -1); }, {x});
  CHECK(contains(thrown_message<ValueError>([&] { ops::tril(counting({4})); }), "tril"));
  CHECK_THROWS_AS(ops::triu(ops::scalar_tensor(1.0)), ValueError);
}
