// rel_shift, rel_pos_softmax, rel_position_table, rel_pos_attention: naive f64 references written
// with explicit relative distances r = i - j (never the shift trick), several T including 1 and 2
// and batch dims; f64 gradchecks; f32 against the f64 path at the Conformer paper shape; the
// ESPnet golden files of shared/golden/conformer (attention forward and backward in f64 and f32,
// the positional table); thread-count invariance; errors.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "tests/cpp/golden_reader.hpp"
#include "tests/cpp/gradcheck.hpp"
#include "tests/cpp/onednn_check.hpp"
#include "tests/cpp/reference.hpp"
#include "tse/ops/attention.hpp"

using namespace tse;
using tse::test::compare_f32_f64;
using tse::test::contains;
using tse::test::f32_leaf;
using tse::test::leaf;
using tse::test::rel_l2;
using tse::test::thrown_message;
using tse::test::values;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// Column of a (..., T, 2T-1) position-score row that holds relative distance r (rows of
/// rel_position_table run r = T-1 ... -(T-1)).
int64_t column_of(int64_t r, int64_t T) { return T - 1 - r; }

/// Naive rel_shift: out[.., i, j] = x[.., i, column of r = i - j].
std::vector<double> ref_rel_shift(const Tensor& x) {
  const std::vector<double> xv = values(x);
  const int64_t T = x.size(-2), W = 2 * T - 1, blocks = x.numel() / (T * W);
  std::vector<double> out(static_cast<size_t>(blocks * T * T));
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j < T; ++j)
        out[static_cast<size_t>((b * T + i) * T + j)] = xv[static_cast<size_t>((b * T + i) * W + column_of(i - j, T))];
  return out;
}

/// Naive softmax((ac + bd_{i-j}) * scale) over j, in double.
std::vector<double> ref_rel_pos_softmax(const Tensor& ac, const Tensor& bd, double scale) {
  const std::vector<double> av = values(ac), bv = values(bd);
  const int64_t T = ac.size(-1), W = 2 * T - 1, rows = ac.numel() / T;
  std::vector<double> out(av.size());
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = r % T;
    std::vector<double> s(static_cast<size_t>(T));
    double m = -kInf;
    for (int64_t j = 0; j < T; ++j) {
      s[j] = (av[r * T + j] + bv[r * W + column_of(i - j, T)]) * scale;
      m = std::max(m, s[j]);
    }
    double sum = 0;
    for (int64_t j = 0; j < T; ++j) sum += std::exp(s[j] - m);
    for (int64_t j = 0; j < T; ++j) out[r * T + j] = std::exp(s[j] - m) / sum;
  }
  return out;
}

/// Naive relative-position attention (MODELS.md B s.2.3): score(i, j) = [(q_i + u)·k_j +
/// (q_i + v)·p_{i-j}] / sqrt(d_k) per head of d_k contiguous features, softmax over j, attn·v.
std::vector<double> ref_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& p,
                                  const Tensor& u, const Tensor& vb, int64_t H) {
  const auto qv = values(q), kv = values(k), vv = values(v), pv = values(p), uv = values(u), bv = values(vb);
  const int64_t B = q.size(0), T = q.size(1), D = q.size(2), dk = D / H, P = p.size(0);
  std::vector<double> out(qv.size(), 0.0);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t pb = P == 1 ? 0 : b;
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t i = 0; i < T; ++i) {
        std::vector<double> s(static_cast<size_t>(T));
        double m = -kInf;
        for (int64_t j = 0; j < T; ++j) {
          double ac = 0, bd = 0;
          for (int64_t c = 0; c < dk; ++c) {
            const int64_t f = h * dk + c;
            const double qi = qv[(b * T + i) * D + f];
            ac += (qi + uv[h * dk + c]) * kv[(b * T + j) * D + f];
            bd += (qi + bv[h * dk + c]) * pv[(pb * (2 * T - 1) + column_of(i - j, T)) * D + f];
          }
          s[j] = (ac + bd) / std::sqrt(static_cast<double>(dk));
          m = std::max(m, s[j]);
        }
        double sum = 0;
        for (double& x : s) sum += (x = std::exp(x - m));
        for (int64_t j = 0; j < T; ++j)
          for (int64_t c = 0; c < dk; ++c)
            out[(b * T + i) * D + h * dk + c] += s[j] / sum * vv[(b * T + j) * D + h * dk + c];
      }
    }
  }
  return out;
}

void check_close(const Tensor& got, const std::vector<double>& want, double rtol, double atol) {
  const std::vector<double> g = values(got);
  REQUIRE(g.size() == want.size());
  for (size_t i = 0; i < g.size(); ++i) {
    INFO("element ", i, ": got ", g[i], " want ", want[i]);
    CHECK(std::abs(g[i] - want[i]) <= atol + rtol * std::abs(want[i]));
  }
}

/// max |got - want| / max |want| (the golden README's measure).
double peak_err(const Tensor& got, const Tensor& want) {
  const auto g = values(got), w = values(want);
  REQUIRE(g.size() == w.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    num = std::max(num, std::abs(g[i] - w[i]));
    den = std::max(den, std::abs(w[i]));
  }
  return num / den;
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (double x : values(t)) m = std::max(m, std::abs(x));
  return m;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const auto x = values(a), y = values(b);
  REQUIRE(x.size() == y.size());
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}

/// The unfused composite rel_pos_softmax replaces.
Tensor composite_softmax(const Tensor& ac, const Tensor& bd, double scale) {
  return ops::softmax(ops::mul(ops::add(ac, ops::rel_shift(bd)), scale), -1);
}

/// Leading dims used with each T.
const std::vector<Shape> kLeads = {{}, {3}, {2, 3}};

Shape concat(Shape a, std::initializer_list<int64_t> b) {
  a.insert(a.end(), b);
  return a;
}

/// The golden files are required: a missing one fails the test (never a skip).
bool golden_present(const std::string& name) { return std::filesystem::exists(test::golden_dir() / "conformer" / name); }

#define REQUIRE_GOLDEN(name)                                                                      \
  REQUIRE_MESSAGE(golden_present(name), "golden file conformer/" name " not found under ",             \
                  test::golden_dir().string(), " (set TSE_GOLDEN_DIR or put ../shared next to the repository)")

}  // namespace

TEST_CASE("rel_shift matches a naive reference with explicit relative distances") {
  for (int64_t T : {1, 2, 3, 7, 37}) {
    for (const Shape& lead : kLeads) {
      for (DType dt : {DType::f64, DType::f32}) {
        const Shape s = concat(lead, {T, 2 * T - 1});
        INFO("T ", T, " shape ", shape_to_string(s), " ", std::string(dtype_name(dt)));
        const Tensor x = test::counting(s, dt);
        const Tensor y = ops::rel_shift(x);
        CHECK(y.sizes() == concat(lead, {T, T}));
        CHECK(y.dtype() == dt);
        CHECK(values(y) == ref_rel_shift(x));
      }
    }
  }
  // A non-contiguous input (batch dims swapped) reads like its contiguous copy.
  const Tensor base = test::counting({3, 2, 5, 9}).transpose(0, 1);
  REQUIRE(!base.is_contiguous());
  CHECK(values(ops::rel_shift(base)) == ref_rel_shift(base.contiguous()));
}

TEST_CASE("rel_shift backward scatters into zeros and passes the f64 gradcheck") {
  const int64_t T = 4;
  const Tensor x = leaf({2, T, 2 * T - 1}, -1, 1, 3);
  const Tensor g = test::counting({2, T, T});
  const std::vector<double> gx = values(autograd::grad({ops::rel_shift(x)}, {x}, {g})[0]);
  const std::vector<double> gv = values(g);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t i = 0; i < T; ++i)
      for (int64_t c = 0; c < 2 * T - 1; ++c) {
        const int64_t j = c - (T - 1 - i);  // the output column that read column c, if any
        const double want = j >= 0 && j < T ? gv[(b * T + i) * T + j] : 0.0;
        CHECK(gx[(b * T + i) * (2 * T - 1) + c] == want);
      }
  for (int64_t t : {1, 2, 5}) {
    INFO("T ", t);
    CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return ops::rel_shift(in[0]); },
                    {leaf({2, t, 2 * t - 1}, -1, 1, 4)});
  }
}

TEST_CASE("rel_pos_softmax matches a naive reference and the unfused composite") {
  for (int64_t T : {1, 2, 5, 37, 70}) {
    for (const Shape& lead : kLeads) {
      for (double scale : {0.125, 0.3}) {
        INFO("T ", T, " lead ", shape_to_string(lead), " scale ", scale);
        const Tensor ac = leaf(concat(lead, {T, T}), -6, 6, 5).detach();
        const Tensor bd = leaf(concat(lead, {T, 2 * T - 1}), -6, 6, 6).detach();
        const Tensor y = ops::rel_pos_softmax(ac, bd, scale);
        CHECK(y.sizes() == ac.sizes());
        check_close(y, ref_rel_pos_softmax(ac, bd, scale), 1e-12, 1e-15);
        check_close(y, values(composite_softmax(ac, bd, scale)), 1e-13, 1e-16);
        const Tensor y32 = ops::rel_pos_softmax(ac.to(DType::f32), bd.to(DType::f32), scale);
        CHECK(y32.dtype() == DType::f32);
        check_close(y32, ref_rel_pos_softmax(ac.to(DType::f32), bd.to(DType::f32), scale), 2e-6, 1e-8);
      }
    }
  }
}

TEST_CASE("rel_pos_softmax follows the softmax rules for -inf, +inf and NaN scores") {
  const int64_t T = 9;
  for (DType dt : {DType::f32, DType::f64}) {
    INFO(std::string(dtype_name(dt)));
    std::vector<double> a(static_cast<size_t>(4 * T), 0.5), b(static_cast<size_t>(4 * (2 * T - 1)), 0.25);
    a[0 * T + 3] = -kInf;             // row 0: one masked entry
    for (int64_t j = 0; j < T; ++j) a[1 * T + j] = -kInf;  // row 1: all masked
    a[2 * T + 5] = kInf;              // row 2: +inf
    b[3 * (2 * T - 1) + (T - 1 - 3) + 4] = kNaN;  // row 3 (query 3): NaN at j = 4
    const Tensor ac = ops::from_vector(a, {4, T}, dt), bd = ops::from_vector(b, {4, 2 * T - 1}, dt);
    // The 4 rows are queries 0..3 of one (T, T) block; queries 4.. are all-zero scores.
    const Tensor acp = ops::cat({ac, ops::zeros({T - 4, T}, dt)}, 0);
    const Tensor bdp = ops::cat({bd, ops::zeros({T - 4, 2 * T - 1}, dt)}, 0);
    const std::vector<double> y = values(ops::rel_pos_softmax(acp, bdp, 0.5));
    CHECK(y[3] == 0.0);
    for (int64_t j = 0; j < T; ++j) {
      if (j != 3) CHECK(std::abs(y[j] - 1.0 / (T - 1)) <= 1e-6);
      CHECK(std::isnan(y[1 * T + j]));
      CHECK(std::isnan(y[2 * T + j]));
      CHECK(std::isnan(y[3 * T + j]));
      CHECK(std::abs(y[4 * T + j] - 1.0 / T) <= 1e-6);
    }
  }
}

TEST_CASE("rel_pos_softmax passes the f64 gradcheck in each input and both") {
  for (int64_t T : {1, 2, 4}) {
    INFO("T ", T);
    const Tensor ac = leaf({2, T, T}, -2, 2, 7), bd = leaf({2, T, 2 * T - 1}, -2, 2, 8);
    auto f = [](const std::vector<Tensor>& in) { return ops::rel_pos_softmax(in[0], in[1], 0.7); };
    CHECK_GRADCHECK(f, {ac, bd});
    CHECK_GRADCHECK(f, {ac.detach(), bd});
    CHECK_GRADCHECK(f, {ac, bd.detach()});
  }
  // The backward equals the composite's (the unread bd_raw positions get exactly 0).
  const Tensor ac = leaf({3, 6, 6}, -3, 3, 9), bd = leaf({3, 6, 11}, -3, 3, 10), g = leaf({3, 6, 6}, -1, 1, 11);
  const auto fused = autograd::grad({ops::rel_pos_softmax(ac, bd, 0.25)}, {ac, bd}, {g.detach()});
  const auto unfused = autograd::grad({composite_softmax(ac, bd, 0.25)}, {ac, bd}, {g.detach()});
  check_close(fused[0], values(unfused[0]), 1e-12, 1e-15);
  check_close(fused[1], values(unfused[1]), 1e-12, 1e-15);
}

TEST_CASE("rel_pos_softmax gives the same bits whatever the thread count splits") {
  const Tensor ac = leaf({3, 101, 101}, -4, 4, 12).detach().to(DType::f32).requires_grad_();
  const Tensor bd = leaf({3, 101, 201}, -4, 4, 13).detach().to(DType::f32).requires_grad_();
  const Tensor g = leaf({3, 101, 101}, -1, 1, 14).detach().to(DType::f32);
  tse::test::check_same_bits_across_threads([&] {
    const Tensor y = ops::rel_pos_softmax(ac, bd, 0.125);
    const auto gr = autograd::grad({y}, {ac, bd}, {g});
    return std::vector<Tensor>{y, gr[0], gr[1]};
  });
}

TEST_CASE("rel_pos_attention matches a naive reference with p at distance i-j and contiguous heads") {
  struct Case {
    int64_t B, T, D, H, P;
  };
  for (const Case& c : {Case{1, 1, 4, 2, 1}, Case{2, 2, 6, 3, 1}, Case{2, 5, 8, 2, 2}, Case{3, 17, 32, 4, 1}}) {
    INFO("B ", c.B, " T ", c.T, " D ", c.D, " H ", c.H, " P ", c.P);
    const Tensor q = leaf({c.B, c.T, c.D}, -1, 1, 21).detach(), k = leaf({c.B, c.T, c.D}, -1, 1, 22).detach();
    const Tensor v = leaf({c.B, c.T, c.D}, -1, 1, 23).detach(), p = leaf({c.P, 2 * c.T - 1, c.D}, -1, 1, 24).detach();
    const Tensor u = leaf({c.H, c.D / c.H}, -1, 1, 25).detach(), vb = leaf({c.H, c.D / c.H}, -1, 1, 26).detach();
    Tensor attn;
    const Tensor out = ops::rel_pos_attention(q, k, v, p, u, vb, c.H, &attn);
    CHECK(out.sizes() == q.sizes());
    CHECK(attn.sizes() == Shape{c.B, c.H, c.T, c.T});
    check_close(out, ref_attention(q, k, v, p, u, vb, c.H), 1e-12, 1e-14);
    for (double s : values(ops::sum(attn, {-1}))) CHECK(std::abs(s - 1.0) <= 1e-13);
    const Tensor out32 = ops::rel_pos_attention(q.to(DType::f32), k.to(DType::f32), v.to(DType::f32),
                                                p.to(DType::f32), u.to(DType::f32), vb.to(DType::f32), c.H);
    CHECK(out32.dtype() == DType::f32);
    check_close(out32, ref_attention(q, k, v, p, u, vb, c.H), 1e-5, 1e-6);
  }
}

TEST_CASE("rel_pos_attention passes the f64 gradcheck in all six inputs") {
  for (int64_t P : {1, 2}) {
    INFO("p batch ", P);
    const int64_t B = 2, T = 3, D = 4, H = 2;
    const std::vector<Tensor> in = {leaf({B, T, D}, -1, 1, 31),         leaf({B, T, D}, -1, 1, 32),
                                    leaf({B, T, D}, -1, 1, 33),         leaf({P, 2 * T - 1, D}, -1, 1, 34),
                                    leaf({H, D / H}, -1, 1, 35),        leaf({H, D / H}, -1, 1, 36)};
    CHECK_GRADCHECK(
        [&](const std::vector<Tensor>& x) { return ops::rel_pos_attention(x[0], x[1], x[2], x[3], x[4], x[5], H); },
        in);
  }
}

TEST_CASE("rel_pos_softmax and rel_pos_attention f32 match the f64 path at the Conformer paper shape") {
  // Paper width: H 4, d_k 64, T 626 (10 s at 32 kHz, hop 512). rel_pos_softmax forward and
  // backward at full size; each output and gradient is a sum over one row of T.
  const int64_t T = 626;
  compare_f32_f64([](const std::vector<Tensor>& in) { return ops::rel_pos_softmax(in[0], in[1], 0.125); },
                  {f32_leaf({1, 4, T, T}, 41), f32_leaf({1, 4, T, 2 * T - 1}, 42)}, {T, T, T},
                  "rel_pos_softmax 1x4x626");
  // Attention forward at full size (scores of unit scale: inputs in [-1, 1) times 2).
  const int64_t D = 256, H = 4;
  std::vector<Tensor> in32 = {f32_leaf({1, T, D}, 43), f32_leaf({1, T, D}, 44), f32_leaf({1, T, D}, 45),
                              f32_leaf({1, 2 * T - 1, D}, 46), f32_leaf({H, D / H}, 47), f32_leaf({H, D / H}, 48)};
  {
    NoGradGuard ng;
    std::vector<Tensor> in64;
    for (const Tensor& t : in32) in64.push_back(t.detach().to(DType::f64));
    const Tensor y32 = ops::rel_pos_attention(in32[0], in32[1], in32[2], in32[3], in32[4], in32[5], H);
    const Tensor y64 = ops::rel_pos_attention(in64[0], in64[1], in64[2], in64[3], in64[4], in64[5], H);
    const double e = rel_l2(y32, y64);
    INFO("attention forward 1x626x256 rel L2 ", e);
    CHECK(e <= test::onednn_tol(T + D / H));
  }
  // Forward and backward of the attention at a smaller T (the f64 GEMMs are reference loops).
  const int64_t t = 96;
  compare_f32_f64(
      [](const std::vector<Tensor>& x) { return ops::rel_pos_attention(x[0], x[1], x[2], x[3], x[4], x[5], 4); },
      {f32_leaf({2, t, D}, 51), f32_leaf({2, t, D}, 52), f32_leaf({2, t, D}, 53), f32_leaf({1, 2 * t - 1, D}, 54),
       f32_leaf({H, D / H}, 55), f32_leaf({H, D / H}, 56)},
      {t + 64, 2 * t, 2 * t, 2 * t, 4 * t, 4 * t, 4 * t}, "rel_pos_attention 2x96x256");
}

// shared/golden/conformer/rel_pos_mhsa.safetensors: ESPnet's RelPositionMultiHeadedAttention(4,
// 64) with q = k = v = input.x * 8, fed the stored table (README s.3.1, s.3.2, s.4).
TEST_CASE("rel_pos_attention reproduces ESPnet's RelPositionMultiHeadedAttention golden file") {
  REQUIRE_GOLDEN("rel_pos_mhsa.safetensors");
  const test::GoldenFile g = test::load_golden(test::golden_dir() / "conformer" / "rel_pos_mhsa.safetensors");
  const std::vector<std::string> params = {"linear_q.weight",   "linear_q.bias",   "linear_k.weight", "linear_k.bias",
                                           "linear_v.weight",   "linear_v.bias",   "linear_out.weight",
                                           "linear_out.bias",   "linear_pos.weight", "pos_bias_u",    "pos_bias_v"};
  for (DType dt : {DType::f64, DType::f32}) {
    const double tol = dt == DType::f64 ? 1e-10 : 3e-6;
    INFO(std::string(dtype_name(dt)), " run, tolerance ", tol);
    std::vector<Tensor> leaves;  // input.x, then the 11 params
    leaves.push_back(g.at("input.x").to(dt).requires_grad_());
    for (const std::string& n : params) leaves.push_back(g.at(n).to(dt).requires_grad_());
    auto P = [&](const std::string& n) {
      return leaves[1 + static_cast<size_t>(std::find(params.begin(), params.end(), n) - params.begin())];
    };
    const Tensor x = ops::mul(leaves[0], 8.0);  // RelPositionalEncoding's x * sqrt(D)
    const Tensor table = g.at("output.pos_emb").to(dt);
    const Tensor q = ops::linear(x, P("linear_q.weight"), P("linear_q.bias"));
    const Tensor k = ops::linear(x, P("linear_k.weight"), P("linear_k.bias"));
    const Tensor v = ops::linear(x, P("linear_v.weight"), P("linear_v.bias"));
    const Tensor p = ops::linear(table, P("linear_pos.weight"));
    Tensor attn;
    const Tensor heads = ops::rel_pos_attention(q, k, v, p, P("pos_bias_u"), P("pos_bias_v"), 4, &attn);
    const Tensor out = ops::linear(heads, P("linear_out.weight"), P("linear_out.bias"));
    CHECK(out.dtype() == dt);
    {
      INFO("out");
      CHECK(peak_err(out, g.at("output.out")) <= tol);
    }
    {
      INFO("attn");
      CHECK(peak_err(attn, g.at("output.attn")) <= tol);
    }
    {
      // The position scores before and after rel_shift, from the same projections and head layout.
      NoGradGuard ng;
      const Tensor qv = ops::add(q.reshape({2, 37, 4, 16}), P("pos_bias_v")).permute({0, 2, 1, 3});
      const Tensor bd_raw = ops::matmul(qv, p.reshape({1, 73, 4, 16}).permute({0, 2, 3, 1}));
      INFO("matrix_bd_raw and matrix_bd");
      CHECK(peak_err(bd_raw, g.at("output.matrix_bd_raw")) <= tol);
      CHECK(peak_err(ops::rel_shift(bd_raw), g.at("output.matrix_bd")) <= tol);
      CHECK(peak_err(ops::rel_shift(g.at("output.matrix_bd_raw")), g.at("output.matrix_bd")) == 0.0);
    }
    // L = sum(out * R): the gradients are those of out against the cotangent R.
    const auto grads = autograd::grad({out}, leaves, {g.at("input.R").to(dt)});
    {
      INFO("grad input.x");
      CHECK(peak_err(grads[0], g.at("grad.input.x")) <= tol);
    }
    const double kw_peak = max_abs(g.at("grad.linear_k.weight"));
    for (size_t i = 0; i < params.size(); ++i) {
      INFO("grad ", params[i]);
      const Tensor& want = g.at("grad." + params[i]);
      if (params[i] == "linear_k.bias") {
        // Exactly 0 in exact arithmetic (the softmax removes a per-row constant): both sides are
        // rounding noise, measured against the key weight's gradient (README s.4).
        CHECK(max_abs_diff(grads[1 + i], want) <= tol * kw_peak);
        CHECK(max_abs(grads[1 + i]) <= tol * kw_peak);
      } else {
        CHECK(peak_err(grads[1 + i], want) <= tol);
      }
    }
  }
}

TEST_CASE("rel_position_table reproduces ESPnet's stored tables") {
  struct Stored {
    const char* file;
    const char* key;
    int64_t T, D;
  };
  for (const Stored& s : {Stored{"rel_pos_mhsa.safetensors", "output.pos_emb", 37, 64},
                          Stored{"conformer_layer.safetensors", "input.pos_emb", 50, 64},
                          Stored{"conformer_layer_paper.safetensors", "input.pos_emb", 626, 256}}) {
    INFO(std::string(s.file), " ", std::string(s.key), " T ", s.T, " D ", s.D);
    REQUIRE_MESSAGE(golden_present(s.file), "golden file conformer/", std::string(s.file), " not found under ",
                    test::golden_dir().string());
    const test::GoldenFile g = test::load_golden(test::golden_dir() / "conformer" / s.file);
    const Tensor want = g.at(s.key);
    REQUIRE(want.sizes() == Shape{1, 2 * s.T - 1, s.D});
    // With ESPnet's own float32 frequencies (PyTorch's exp), the float32 steps land within an ulp.
    const Tensor with_freq = ops::rel_position_table(s.T, s.D, DType::f32, ops::RelPosTable::espnet_f32,
                                                     g.at("const.div_term"));
    CHECK(max_abs_diff(with_freq, want) <= 6e-8);
    // Our own (correctly rounded) frequencies: within the README's bound for the exact formula.
    const Tensor espnet = ops::rel_position_table(s.T, s.D);
    CHECK(espnet.dtype() == DType::f32);
    CHECK(espnet.sizes() == want.sizes());
    const double e_espnet = max_abs_diff(espnet, want);
    const double e_exact = max_abs_diff(ops::rel_position_table(s.T, s.D, DType::f64, ops::RelPosTable::exact), want);
    INFO("espnet_f32 off by ", e_espnet, ", exact off by ", e_exact);
    CHECK(e_espnet <= 1.2e-7 * static_cast<double>(s.T) + 1e-7);
    CHECK(e_exact <= 1.2e-7 * static_cast<double>(s.T) + 1e-7);
    // The f64 espnet table is the f32 one upcast, as in ESPnet's float64 run.
    CHECK(values(ops::rel_position_table(s.T, s.D, DType::f64)) == values(espnet));
  }
}

TEST_CASE("rel_position_table rows run r = T-1 down to -(T-1) with sin and cos pairs") {
  const int64_t T = 4, D = 6;
  for (auto recipe : {ops::RelPosTable::exact, ops::RelPosTable::espnet_f32}) {
    const std::vector<double> t = values(ops::rel_position_table(T, D, DType::f64, recipe));
    const double tol = recipe == ops::RelPosTable::exact ? 1e-15 : 1e-6;
    for (int64_t k = 0; k < 2 * T - 1; ++k) {
      const double r = static_cast<double>(T - 1 - k);
      for (int64_t m = 0; m < D / 2; ++m) {
        const double w = std::pow(10000.0, -2.0 * static_cast<double>(m) / D);
        INFO("row ", k, " pair ", m);
        CHECK(std::abs(t[k * D + 2 * m] - std::sin(r * w)) <= tol);
        CHECK(std::abs(t[k * D + 2 * m + 1] - std::cos(r * w)) <= tol);
      }
    }
  }
  const Tensor one = ops::rel_position_table(1, 2);  // T 1: the r = 0 row only
  CHECK(one.sizes() == Shape{1, 1, 2});
  CHECK(values(one) == std::vector<double>{0.0, 1.0});
  CHECK(!ops::rel_position_table(3, 4).requires_grad());
}

TEST_CASE("attention ops reject bad arguments with messages naming the op and argument") {
  auto value_msg = [](auto&& f) { return thrown_message<ValueError>(f); };
  // rel_shift
  std::string m = value_msg([] { ops::rel_shift(ops::zeros({5})); });
  CHECK(contains(m, "rel_shift"));
  CHECK(contains(m, "at least 2 dims"));
  m = value_msg([] { ops::rel_shift(ops::zeros({2, 3, 4})); });
  CHECK(contains(m, "2T-1 = 5"));
  CHECK(contains(m, "[2, 3, 4]"));
  m = value_msg([] { ops::rel_shift(ops::zeros({3, 5}, DType::i64)); });
  CHECK(contains(m, "int64"));
  CHECK(contains(value_msg([] { ops::rel_shift(Tensor()); }), "'input'"));
  // rel_pos_softmax
  m = value_msg([] { ops::rel_pos_softmax(ops::zeros({2, 3, 4}), ops::zeros({2, 3, 5}), 1.0); });
  CHECK(contains(m, "'ac'"));
  CHECK(contains(m, "[2, 3, 3]"));
  m = value_msg([] { ops::rel_pos_softmax(ops::zeros({3, 3}), ops::zeros({3, 6}), 1.0); });
  CHECK(contains(m, "'bd_raw'"));
  m = value_msg([] { ops::rel_pos_softmax(ops::zeros({3, 3}, DType::f64), ops::zeros({3, 5}), 1.0); });
  CHECK(contains(m, "dtype mismatch"));
  m = value_msg([] { ops::rel_pos_softmax(ops::zeros({3, 3}, DType::i32), ops::zeros({3, 5}, DType::i32), 1.0); });
  CHECK(contains(m, "int32"));
  // rel_position_table
  CHECK(contains(value_msg([] { ops::rel_position_table(5, 7); }), "even"));
  CHECK(contains(value_msg([] { ops::rel_position_table(0, 8); }), "T must be >= 1"));
  CHECK(contains(value_msg([] { ops::rel_position_table(5, 8, DType::i64); }), "int64"));
  CHECK(contains(value_msg([] { ops::rel_position_table(5, 8, DType::f32, ops::RelPosTable::espnet_f32, ops::ones({3})); }),
                 "frequencies must be (4)"));
  // rel_pos_attention: B 2, T 3, D 8, H 2
  const Tensor x = ops::zeros({2, 3, 8}), p = ops::zeros({1, 5, 8}), u = ops::zeros({2, 4});
  CHECK(contains(value_msg([&] { ops::rel_pos_attention(ops::zeros({3, 8}), x, x, p, u, u, 2); }), "'q'"));
  CHECK(contains(value_msg([&] { ops::rel_pos_attention(x, ops::zeros({2, 4, 8}), x, p, u, u, 2); }), "'k'"));
  CHECK(contains(value_msg([&] { ops::rel_pos_attention(x, x, ops::zeros({2, 3, 6}), p, u, u, 2); }), "'v'"));
  m = value_msg([&] { ops::rel_pos_attention(x, x, x, p, u, u, 3); });
  CHECK(contains(m, "num_heads 3"));
  CHECK(contains(m, "D = 8"));
  CHECK(contains(value_msg([&] { ops::rel_pos_attention(x, x, x, p, u, u, 0); }), "num_heads 0"));
  m = value_msg([&] { ops::rel_pos_attention(x, x, x, ops::zeros({1, 6, 8}), u, u, 2); });
  CHECK(contains(m, "'p'"));
  CHECK(contains(m, "[1, 6, 8]"));
  CHECK(contains(value_msg([&] { ops::rel_pos_attention(x, x, x, ops::zeros({3, 5, 8}), u, u, 2); }), "'p'"));
  // Biases for 4 heads with a 2-head call.
  m = value_msg([&] { ops::rel_pos_attention(x, x, x, p, ops::zeros({4, 2}), u, 2); });
  CHECK(contains(m, "'pos_bias_u'"));
  CHECK(contains(m, "[2, 4]"));
  CHECK(contains(value_msg([&] { ops::rel_pos_attention(x, x, x, p, u, ops::zeros({8}), 2); }), "'pos_bias_v'"));
  m = value_msg([&] { ops::rel_pos_attention(x, x, x, p.to(DType::f64), u, u, 2); });
  CHECK(contains(m, "'p'"));
  CHECK(contains(m, "dtype mismatch"));
  const Tensor xi = ops::zeros({2, 3, 8}, DType::i64);
  CHECK(contains(value_msg([&] { ops::rel_pos_attention(xi, xi, xi, p, u, u, 2); }), "int64"));
  CHECK(contains(value_msg([&] { ops::rel_pos_attention(x, x, x, p, Tensor(), u, 2); }), "'pos_bias_u'"));
}

TEST_CASE("attention ops on 0-size batches give 0-size results and gradients") {
  for (DType dt : {DType::f32, DType::f64}) {
    INFO(std::string(dtype_name(dt)));
    const Tensor bd = ops::zeros({0, 4, 7}, dt).requires_grad_(), ac = ops::zeros({0, 4, 4}, dt).requires_grad_();
    const Tensor y = ops::rel_pos_softmax(ac, bd, 0.5);
    CHECK(y.sizes() == Shape{0, 4, 4});
    const auto g = autograd::grad({y}, {ac, bd}, {ops::zeros({0, 4, 4}, dt)});
    CHECK(g[1].sizes() == Shape{0, 4, 7});
    CHECK(ops::rel_shift(bd).sizes() == Shape{0, 4, 4});
  }
}

// ---- scaled_dot_product_attention (fused on CPU) ---------------------------------------------------

namespace {

/// The composite the fused op replaces: softmax(q k^T * scale) v.
Tensor composite_sdpa(const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
  return ops::matmul(ops::softmax(ops::mul(ops::matmul(q, ops::transpose(k, -2, -1)), scale), -1), v);
}

}  // namespace

TEST_CASE("scaled_dot_product_attention equals the composite in f64 for blocks, views, ranks and the default scale") {
  struct Case {
    Shape q, k, v;
  };
  // Tk = 1001 in f64 makes query blocks of 65 rows: several blocks and a partial last one.
  for (const Case& c : std::vector<Case>{{{2, 3, 5, 4}, {2, 3, 7, 4}, {2, 3, 7, 6}},
                                         {{1, 300, 8}, {1, 1001, 8}, {1, 1001, 3}},
                                         {{9, 4}, {1, 4}, {1, 2}},
                                         {{2, 130, 16}, {2, 130, 16}, {2, 130, 16}}}) {
    INFO("q ", shape_to_string(c.q), " k ", shape_to_string(c.k));
    const Tensor q = leaf(c.q, -2, 2, 1), k = leaf(c.k, -2, 2, 2), v = leaf(c.v, -1, 1, 3);
    const double scale = 1.0 / std::sqrt(static_cast<double>(c.q.back()));
    CHECK(rel_l2(ops::scaled_dot_product_attention(q, k, v), composite_sdpa(q, k, v, scale)) <= 1e-13);
    CHECK(rel_l2(ops::scaled_dot_product_attention(q, k, v, 0.3), composite_sdpa(q, k, v, 0.3)) <= 1e-13);
  }
  // q, k and v as strided views of one (B, T, 3, H, hd) projection, as MultiheadAttention has them.
  const Tensor qkv = ops::permute(leaf({2, 33, 3, 4, 8}, -1, 1, 4), {2, 0, 3, 1, 4});
  const Tensor q = ops::select(qkv, 0, 0), k = ops::select(qkv, 0, 1), v = ops::select(qkv, 0, 2);
  CHECK(rel_l2(ops::scaled_dot_product_attention(q, k, v, 0.5), composite_sdpa(q, k, v, 0.5)) <= 1e-13);
}

TEST_CASE("scaled_dot_product_attention passes the f64 gradcheck and its f32 path matches f64 forward and backward") {
  const std::vector<Tensor> in = {leaf({2, 5, 3}, -1, 1, 11), leaf({2, 6, 3}, -1, 1, 12), leaf({2, 6, 4}, -1, 1, 13)};
  CHECK_GRADCHECK([](const std::vector<Tensor>& x) { return ops::scaled_dot_product_attention(x[0], x[1], x[2]); }, in);
  CHECK_GRADCHECK([](const std::vector<Tensor>& x) { return ops::scaled_dot_product_attention(x[0], x[1], x[2], 0.7); },
                  {in[0], in[1], leaf({2, 6, 4}, -1, 1, 17)});
  // MaskNet's shape (8 heads of 80 over 1001 frames, a few query blocks).
  compare_f32_f64([](const std::vector<Tensor>& x) { return ops::scaled_dot_product_attention(x[0], x[1], x[2]); },
                  {f32_leaf({2, 301, 80}, 14), f32_leaf({2, 1001, 80}, 15), f32_leaf({2, 1001, 80}, 16)},
                  {1001, 1001, 1001, 1001},  // the softmax's sums over Tk = 1001 lie behind every output
                  "sdpa 301 x 1001 x 80");
}

TEST_CASE("scaled_dot_product_attention under bf16 autocast: bf16 GEMM operands, an f32 softmax, as the composite") {
  const Tensor q = f32_leaf({3, 200, 32}, 21), k = f32_leaf({3, 700, 32}, 22), v = f32_leaf({3, 700, 48}, 23);
  const Tensor plain = ops::scaled_dot_product_attention(q, k, v);
  Tensor fused, composite;
  {
    AutocastGuard bf16;
    fused = ops::scaled_dot_product_attention(q, k, v);
    composite = composite_sdpa(q, k, v, 1.0 / std::sqrt(32.0));
  }
  CHECK(fused.dtype() == DType::f32);
  // The same roundings (q, k, v and the probabilities to bf16); only f32 summation orders and
  // the odd probability rounded the other way differ.
  CHECK(rel_l2(fused, composite) <= 1e-3);
  const double to_f32 = rel_l2(fused, plain);
  MESSAGE("bf16 autocast vs f32: rel L2 ", to_f32);
  CHECK(to_f32 >= 1e-4);  // it did round
  CHECK(to_f32 <= 1e-2);
  // Gradients recorded under autocast stay close to the f32 ones.
  Tensor y;
  {
    AutocastGuard bf16;
    y = ops::scaled_dot_product_attention(q, k, v);
  }
  const Tensor g = f32_leaf(y.sizes(), 24).detach();
  const auto d16 = autograd::grad({y}, {q, k, v}, {g});
  const auto d32 = autograd::grad({plain}, {q, k, v}, {g});
  for (size_t i = 0; i < 3; ++i) CHECK(rel_l2(d16[i], d32[i]) <= 2e-2);
}

TEST_CASE("scaled_dot_product_attention follows the composite for large, negative-scaled and non-finite scores") {
  for (DType dt : {DType::f64, DType::f32}) {
    CAPTURE(dt);
    const Tensor q = ops::mul(leaf({2, 40, 8}, -1, 1, 31).detach(), 300.0).to(dt);
    const Tensor k = leaf({2, 50, 8}, -1, 1, 32).detach().to(dt), v = leaf({2, 50, 5}, -1, 1, 33).detach().to(dt);
    const double tol = dt == DType::f64 ? 1e-12 : 1e-5;
    for (double scale : {1.0, -0.7, 0.0})  // scores up to ~2400: the max subtraction keeps exp finite
      CHECK(rel_l2(ops::scaled_dot_product_attention(q, k, v, scale), composite_sdpa(q, k, v, scale)) <= tol);
    // A NaN key poisons every row of its matrix; +inf scores make their rows NaN; -inf scores get weight 0.
    Tensor kn = k.clone();
    kn.select(0, 0).select(0, 3).fill_(std::nan(""));
    Tensor qi = q.clone();
    qi.select(0, 1).select(0, 2).fill_(std::numeric_limits<double>::infinity());
    for (const auto& [qq, kk] : std::vector<std::pair<Tensor, Tensor>>{{q, kn}, {qi, k}}) {
      const auto got = values(ops::scaled_dot_product_attention(qq, kk, v, 0.5));
      const auto want = values(composite_sdpa(qq, kk, v, 0.5));
      size_t nan_rows = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        CHECK(std::isnan(got[i]) == std::isnan(want[i]));
        nan_rows += std::isnan(got[i]);
        if (!std::isnan(want[i])) CHECK(std::abs(got[i] - want[i]) <= 1e-4);
      }
      CHECK(nan_rows > 0);
    }
  }
}

TEST_CASE("scaled_dot_product_attention rejects bad arguments naming them") {
  auto msg = [](auto&& f) { return thrown_message<ValueError>(f); };
  const Tensor q = ops::zeros({2, 5, 4}), k = ops::zeros({2, 7, 4}), v = ops::zeros({2, 7, 3});
  CHECK(contains(msg([&] { ops::scaled_dot_product_attention(q, ops::zeros({2, 7, 5}), v); }), "must end in d = 4"));
  CHECK(contains(msg([&] { ops::scaled_dot_product_attention(q, k, ops::zeros({2, 6, 3})); }), "Tk = 7"));
  CHECK(contains(msg([&] { ops::scaled_dot_product_attention(q, ops::zeros({3, 7, 4}), ops::zeros({3, 7, 3})); }),
                 "leading dims differ"));
  CHECK(contains(msg([&] { ops::scaled_dot_product_attention(q, ops::zeros({7, 4}), ops::zeros({7, 3})); }), "one rank"));
  CHECK(contains(msg([&] { ops::scaled_dot_product_attention(q, ops::zeros({2, 0, 4}), ops::zeros({2, 0, 3})); }),
                 "no keys"));
  CHECK(contains(msg([&] { ops::scaled_dot_product_attention(q, k.to(DType::f64), v); }), "dtype mismatch"));
  CHECK(contains(msg([&] { ops::scaled_dot_product_attention(q.to(DType::bf16), k, v); }), "use autocast"));
  CHECK(contains(msg([&] { ops::scaled_dot_product_attention(q, k, v, std::nan("")); }), "scale must be finite"));
  CHECK(contains(msg([&] { ops::scaled_dot_product_attention(Tensor(), k, v); }), "'q'"));
  CHECK(ops::scaled_dot_product_attention(ops::zeros({0, 5, 4}), ops::zeros({0, 7, 4}), ops::zeros({0, 7, 3})).sizes() ==
        Shape({0, 5, 3}));
}
