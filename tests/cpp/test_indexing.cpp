// gather, index_select and scatter_add against naive float64 references: every dim, i64 and i32
// indices, non-contiguous operands, gradients, index-value and shape errors, the parallel path.
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

/// An index tensor of the given sizes with values in [0, bound), repeats included.
Tensor make_index(const Shape& sizes, int64_t bound, DType dtype, int64_t salt = 3) {
  std::vector<double> v(static_cast<size_t>(shape_numel(sizes)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>((static_cast<int64_t>(i) * 7 + salt) % bound);
  return ops::from_vector(v, sizes, dtype);
}

std::vector<double> gather_reference(const Tensor& x, int64_t dim, const Tensor& index) {
  const auto xv = values(x), iv = values(index);
  std::vector<double> out(iv.size());
  for (int64_t i = 0; i < static_cast<int64_t>(iv.size()); ++i) {
    std::vector<int64_t> src = unravel(i, index.sizes());
    src[dim] = static_cast<int64_t>(iv[i]);
    out[i] = xv[ravel(src, x.sizes())];
  }
  return out;
}

std::vector<double> index_select_reference(const Tensor& x, int64_t dim, const Tensor& index) {
  const auto xv = values(x), iv = values(index);
  Shape os = x.sizes();
  os[dim] = static_cast<int64_t>(iv.size());
  std::vector<double> out(static_cast<size_t>(shape_numel(os)));
  for (int64_t i = 0; i < static_cast<int64_t>(out.size()); ++i) {
    std::vector<int64_t> src = unravel(i, os);
    src[dim] = static_cast<int64_t>(iv[src[dim]]);
    out[i] = xv[ravel(src, x.sizes())];
  }
  return out;
}

std::vector<double> scatter_add_reference(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  std::vector<double> out = values(x);
  const auto iv = values(index), sv = values(src);
  for (int64_t i = 0; i < static_cast<int64_t>(iv.size()); ++i) {
    const std::vector<int64_t> pos = unravel(i, index.sizes());
    std::vector<int64_t> dst = pos;
    dst[dim] = static_cast<int64_t>(iv[i]);
    out[ravel(dst, x.sizes())] += sv[ravel(pos, src.sizes())];
  }
  return out;
}

/// Runs the scope with n kernel threads, restoring the previous count.
struct ThreadCount {
  explicit ThreadCount(int n) : saved(get_num_threads()) { set_num_threads(n); }
  ~ThreadCount() { set_num_threads(saved); }
  int saved;
};

}  // namespace

// ---- gather ---------------------------------------------------------------------------------------

TEST_CASE("gather: torch's documented example") {
  Tensor t = counting({2, 2});  // [[1, 2], [3, 4]]
  Tensor index = ops::from_vector(std::vector<int64_t>{0, 0, 1, 0}, {2, 2});
  CHECK(values(ops::gather(t, 1, index)) == std::vector<double>{1, 1, 4, 3});
  CHECK(values(ops::gather(t, 0, index)) == std::vector<double>{1, 2, 3, 2});
}

TEST_CASE("gather: every dim, i64 and i32 indices, non-contiguous input and index") {
  Tensor contiguous = counting({3, 4, 5});
  Tensor permuted = counting({4, 5, 3}).permute({2, 0, 1});  // [3, 4, 5], non-contiguous
  for (const Tensor& x : {contiguous, permuted}) {
    for (int64_t dim = 0; dim < 3; ++dim) {
      for (DType idt : {DType::i64, DType::i32}) {
        CAPTURE(dim);
        CAPTURE(idt);
        // Smaller than x off dim, longer than x along dim.
        Shape is = x.sizes();
        for (int64_t d = 0; d < 3; ++d) is[d] = d == dim ? is[d] + 2 : is[d] - 1;
        Tensor index = make_index(is, x.sizes()[dim], idt);
        Tensor out = ops::gather(x, dim, index);
        CHECK(out.sizes() == is);
        CHECK(out.dtype() == DType::f64);
        CHECK(values(out) == gather_reference(x, dim, index));
        // The same index through a transposed view of a transposed copy.
        Shape ts = is;
        std::swap(ts[0], ts[2]);
        Tensor strided_index = ops::permute(make_index(is, x.sizes()[dim], idt), {2, 1, 0}).contiguous().permute({2, 1, 0});
        REQUIRE_FALSE(strided_index.is_contiguous());
        CHECK(values(ops::gather(x, dim - 3, strided_index)) == values(out));
      }
    }
  }
}

TEST_CASE("gather: moves every dtype and 0-d tensors") {
  Tensor index = ops::from_vector(std::vector<int64_t>{2, 0, 2}, {3});
  for (DType dt : {DType::f32, DType::i64, DType::i32, DType::b8, DType::f16, DType::bf16}) {
    CAPTURE(dt);
    Tensor x = ops::from_vector({1, 0, 3}, {3}, dt);
    Tensor out = ops::gather(x, 0, index);
    CHECK(out.dtype() == dt);
    const double last = dt == DType::b8 ? 1 : 3;  // bool stores 3 as true
    CHECK(values(out) == std::vector<double>{last, 1, last});
  }
  Tensor scalar = ops::scalar_tensor(4.5, DType::f64);
  CHECK(ops::gather(scalar, 0, ops::scalar_tensor(0, DType::i64)).item() == 4.5);
}

TEST_CASE("gather: gradcheck accumulates repeated indices") {
  Tensor x = leaf({3, 4});
  Tensor rows = ops::from_vector(std::vector<int64_t>{0, 2, 2, 1, 2, 2, 0, 0}, {2, 4});
  Tensor cols = ops::from_vector(std::vector<double>{3, 3, 0, 1, 1, 1}, {3, 2}, DType::i32);
  using V = std::vector<Tensor>;
  CHECK_GRADCHECK([&](const V& in) { return ops::gather(in[0], 0, rows); }, {x});
  CHECK_GRADCHECK([&](const V& in) { return ops::gather(in[0], 1, cols); }, {x});
  CHECK_GRADCHECK([&](const V& in) { return ops::gather(in[0].t(), 0, cols.t().contiguous()); }, {x});
  // Exact accumulated gradient: row 2 of column 1 is picked twice, row 0 of column 2 twice.
  const auto g = autograd::grad({ops::sum(ops::gather(x, 0, rows))}, {x});
  CHECK(values(g[0]) == std::vector<double>{1, 0, 1, 1, 0, 0, 0, 1, 1, 2, 1, 0});
}

TEST_CASE("gather: errors name the op, the argument and the offending value") {
  Tensor x = counting({3, 4});
  const std::string too_big = thrown_message<IndexError>(
      [&] { ops::gather(x, 0, ops::from_vector(std::vector<int64_t>{0, 3}, {1, 2})); });
  CHECK(contains(too_big, "gather"));
  CHECK(contains(too_big, "index 3"));
  const std::string negative = thrown_message<IndexError>(
      [&] { ops::gather(x, 1, ops::from_vector(std::vector<double>{-1}, {1, 1}, DType::i32)); });
  CHECK(contains(negative, "index -1"));
  CHECK_THROWS_AS(ops::gather(x, 0, ops::zeros({2}, DType::i64)), ValueError);
  const std::string shape = thrown_message<ValueError>([&] { ops::gather(x, 0, ops::zeros({2, 5}, DType::i64)); });
  CHECK(contains(shape, "[2, 5]"));
  CHECK(contains(shape, "[3, 4]"));
  CHECK(contains(thrown_message<ValueError>([&] { ops::gather(x, 0, ops::zeros({1, 1})); }), "index"));
  CHECK_THROWS_AS(ops::gather(x, 2, ops::zeros({1, 1}, DType::i64)), IndexError);
  CHECK_THROWS_AS(ops::gather(x, 0, Tensor()), ValueError);
}

// ---- index_select ---------------------------------------------------------------------------------

TEST_CASE("index_select: small cases written out by hand") {
  Tensor m = counting({2, 3});  // [[1, 2, 3], [4, 5, 6]]
  Tensor cols = ops::from_vector(std::vector<int64_t>{2, 0, 2}, {3});
  CHECK(values(ops::index_select(m, 1, cols)) == std::vector<double>{3, 1, 3, 6, 4, 6});
  Tensor row = ops::index_select(m, 0, ops::from_vector(std::vector<int64_t>{1}, {1}));
  CHECK(row.sizes() == Shape{1, 3});
  CHECK(values(row) == std::vector<double>{4, 5, 6});
  Tensor scalar_index = ops::index_select(m, -1, ops::scalar_tensor(1, DType::i32));
  CHECK(scalar_index.sizes() == Shape{2, 1});
  CHECK(values(scalar_index) == std::vector<double>{2, 5});
  CHECK(ops::index_select(m, 0, ops::zeros({0}, DType::i64)).sizes() == Shape{0, 3});
  Tensor scalar = ops::index_select(ops::scalar_tensor(2.5, DType::f64), 0, ops::zeros({1}, DType::i64));
  CHECK(scalar.dim() == 0);
  CHECK(scalar.item() == 2.5);
}

TEST_CASE("index_select: every dim on non-contiguous inputs with strided i32/i64 indices") {
  Tensor x = counting({5, 4, 6}).transpose(0, 2);  // [6, 4, 5]
  for (int64_t dim = 0; dim < 3; ++dim) {
    for (DType idt : {DType::i64, DType::i32}) {
      CAPTURE(dim);
      CAPTURE(idt);
      Tensor index = make_index({14}, x.sizes()[dim], idt).slice(0, 1, 14, 2);  // 7 entries, stride 2
      Tensor out = ops::index_select(x, dim, index);
      Shape os = x.sizes();
      os[dim] = 7;
      CHECK(out.sizes() == os);
      CHECK(values(out) == index_select_reference(x, dim, index));
    }
  }
  Tensor h = ops::from_vector({1, 2, 3, 4}, {2, 2}, DType::f16);
  CHECK(values(ops::index_select(h, 1, ops::from_vector(std::vector<int64_t>{1, 1}, {2}))) ==
        std::vector<double>{2, 2, 4, 4});
}

TEST_CASE("index_select: gradcheck with repeated indices, and errors") {
  Tensor x = leaf({4, 3});
  Tensor index = ops::from_vector(std::vector<int64_t>{3, 0, 3, 1, 3}, {5});
  using V = std::vector<Tensor>;
  CHECK_GRADCHECK([&](const V& in) { return ops::index_select(in[0], 0, index); }, {x});
  CHECK_GRADCHECK([&](const V& in) { return ops::index_select(in[0].t(), 1, index); }, {x});
  const auto g = autograd::grad({ops::sum(ops::index_select(x, 0, index))}, {x});
  CHECK(values(g[0]) == std::vector<double>{1, 1, 1, 1, 1, 1, 0, 0, 0, 3, 3, 3});

  const std::string range = thrown_message<IndexError>(
      [&] { ops::index_select(x, 1, ops::from_vector(std::vector<int64_t>{0, 7}, {2})); });
  CHECK(contains(range, "index_select"));
  CHECK(contains(range, "index 7"));
  CHECK_THROWS_AS(ops::index_select(x, 0, ops::from_vector(std::vector<int64_t>{-1}, {1})), IndexError);
  CHECK_THROWS_AS(ops::index_select(x, 0, ops::zeros({2, 2}, DType::i64)), ValueError);
  CHECK_THROWS_AS(ops::index_select(x, 0, ops::zeros({2}, DType::b8)), ValueError);
  CHECK_THROWS_AS(ops::index_select(x, 2, ops::zeros({2}, DType::i64)), IndexError);
}

// ---- scatter_add ------------------------------------------------------------------------------------

TEST_CASE("scatter_add: torch's documented example (src larger than index)") {
  Tensor src = ops::ones({2, 5}, DType::f64);
  Tensor index = ops::from_vector(std::vector<int64_t>{0, 1, 2, 0, 0}, {1, 5});
  Tensor out = ops::scatter_add(ops::zeros({3, 5}, DType::f64), 0, index, src);
  CHECK(values(out) == std::vector<double>{1, 0, 0, 1, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0});
  Tensor twice = ops::from_vector(std::vector<int64_t>{0, 1, 2, 0, 0, 0, 1, 2, 0, 0}, {2, 5});
  CHECK(values(ops::scatter_add(ops::zeros({3, 5}, DType::f64), 0, twice, src)) ==
        std::vector<double>{2, 0, 0, 2, 2, 0, 2, 0, 0, 0, 0, 0, 2, 0, 0});
}

TEST_CASE("scatter_add: every dim, non-contiguous operands, integer data, input left untouched") {
  Tensor x = counting({4, 3, 5}).permute({1, 2, 0});  // [3, 5, 4]
  const auto x_before = values(x);
  for (int64_t dim = 0; dim < 3; ++dim) {
    for (DType idt : {DType::i64, DType::i32}) {
      CAPTURE(dim);
      CAPTURE(idt);
      Shape is = x.sizes();
      for (int64_t d = 0; d < 3; ++d) is[d] = d == dim ? is[d] + 3 : is[d] - 1;
      Shape ss = is;
      ss[2] += 1;  // src may be larger than index in any dim
      Tensor index = make_index(is, x.sizes()[dim], idt);
      Tensor src = ops::mul(counting({ss[2], ss[1], ss[0]}).permute({2, 1, 0}), 0.5);
      Tensor out = ops::scatter_add(x, dim, index, src);
      CHECK(out.sizes() == x.sizes());
      CHECK(values(out) == scatter_add_reference(x, dim, index, src));
    }
  }
  CHECK(values(x) == x_before);
  Tensor xi = counting({3, 2}, DType::i64);
  Tensor si = counting({2, 2}, DType::i64);
  Tensor index = ops::from_vector(std::vector<int64_t>{2, 2, 2, 0}, {2, 2});
  Tensor out = ops::scatter_add(xi, 0, index, si);
  CHECK(out.dtype() == DType::i64);
  CHECK(values(out) == scatter_add_reference(xi, 0, index, si));
}

TEST_CASE("scatter_add: gradcheck with respect to the input and src") {
  Tensor x = leaf({3, 4}, -1, 1, 11);
  Tensor src = leaf({3, 3}, -1, 1, 12);
  Tensor index = ops::from_vector(std::vector<int64_t>{0, 2, 0, 2, 2, 1}, {2, 3});
  using V = std::vector<Tensor>;
  CHECK_GRADCHECK([&](const V& in) { return ops::scatter_add(in[0], 0, index, in[1]); }, {x, src});
  CHECK_GRADCHECK([&](const V& in) { return ops::scatter_add(in[0].t(), 1, index.t().contiguous(), in[1]); },
                  {x, src});
  Tensor plain_x = counting({3, 4});
  CHECK_GRADCHECK([&](const V& in) { return ops::scatter_add(in[0], 1, index, in[1]); }, {plain_x, src});
  // Row 2 of src is outside index's extent: it is never added, its gradient is zero.
  const auto g = autograd::grad({ops::sum(ops::mul(ops::scatter_add(x, 0, index, src), counting({3, 4})))}, {src});
  // d/dsrc[i][j] = weight at (index[i][j], j) with weights 1..12 in row-major order.
  CHECK(values(g[0]) == std::vector<double>{1, 10, 3, 9, 10, 7, 0, 0, 0});
}

TEST_CASE("scatter_add: errors name the op, the argument and the offending value") {
  Tensor x = counting({3, 4});
  Tensor src = counting({2, 4});
  const std::string range = thrown_message<IndexError>(
      [&] { ops::scatter_add(x, 0, ops::from_vector(std::vector<int64_t>{0, 5}, {1, 2}), src); });
  CHECK(contains(range, "scatter_add"));
  CHECK(contains(range, "index 5"));
  CHECK_THROWS_AS(ops::scatter_add(x, 0, ops::from_vector(std::vector<int64_t>{-2}, {1, 1}), src), IndexError);
  const std::string larger_than_src =
      thrown_message<ValueError>([&] { ops::scatter_add(x, 0, ops::zeros({3, 4}, DType::i64), src); });
  CHECK(contains(larger_than_src, "src"));
  CHECK(contains(larger_than_src, "[2, 4]"));
  CHECK_THROWS_AS(ops::scatter_add(x, 0, ops::zeros({2, 5}, DType::i64), counting({2, 5})), ValueError);
  CHECK_THROWS_AS(ops::scatter_add(x, 0, ops::zeros({2}, DType::i64), src), ValueError);
  CHECK_THROWS_AS(ops::scatter_add(x, 0, ops::zeros({1, 1}, DType::i64), counting({2, 4}, DType::f32)), ValueError);
  CHECK_THROWS_AS(ops::scatter_add(x, 0, ops::zeros({1, 1}), src), ValueError);
  CHECK_THROWS_AS(ops::scatter_add(ops::zeros({2, 2}, DType::b8), 0, ops::zeros({1, 1}, DType::i64),
                                   ops::zeros({1, 1}, DType::b8)),
                  ValueError);
  CHECK_THROWS_AS(ops::scatter_add(x, -3, ops::zeros({1, 1}, DType::i64), src), IndexError);
}

// ---- parallel path ----------------------------------------------------------------------------------

TEST_CASE("indexing: large gather and scatter_add on several threads match the reference") {
  ThreadCount threads(4);
  // Along dim 0 the lines are columns; along dim 1 each line is a whole row of 20000 colliding
  // indices, so a thread race in scatter_add would lose additions.
  for (int64_t dim : {0, 1}) {
    CAPTURE(dim);
    const Shape xs = dim == 0 ? Shape{6, 2000} : Shape{8, 50};
    const Shape is = dim == 0 ? Shape{50, 2000} : Shape{8, 20000};
    Tensor x = ops::from_vector(std::vector<double>(static_cast<size_t>(shape_numel(xs)), 1.0), xs, DType::f32);
    Tensor index = make_index(is, xs[dim], DType::i64, 5);
    std::vector<double> sv(static_cast<size_t>(shape_numel(is)));
    for (size_t i = 0; i < sv.size(); ++i) sv[i] = static_cast<double>(i % 5);
    Tensor src = ops::from_vector(sv, is, DType::f32);
    CHECK(values(ops::scatter_add(x, dim, index, src)) == scatter_add_reference(x, dim, index, src));
    Tensor big = counting(dim == 0 ? Shape{6, 2000} : Shape{8, 20000}, DType::f32);
    Tensor picked = ops::gather(big, dim, make_index(is, big.sizes()[dim], DType::i32, 1));
    CHECK(values(picked) == gather_reference(big, dim, make_index(is, big.sizes()[dim], DType::i32, 1)));
  }
}
