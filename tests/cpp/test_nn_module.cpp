// nn::Module (names, state_dict, strict loading, modes, dtype moves) and the basic layers
// (values vs the functional ops or naive formulas, f64 gradchecks, PyTorch's init bounds).
#include <doctest/doctest.h>

#include <cmath>

#include "tests/cpp/gradcheck.hpp"
#include "tests/cpp/reference.hpp"
#include "tse/audio/spectral.hpp"
#include "tse/metrics/metrics.hpp"
#include "tse/nn/audio.hpp"
#include "tse/nn/layers.hpp"
#include "tse/nn/loss.hpp"
#include "tse/nn/module.hpp"

using namespace tse;
using tse::test::contains;
using tse::test::thrown_message;
using tse::ValueError;

namespace {

struct Block : nn::Module {
  std::shared_ptr<nn::Linear> fc = register_module("fc", std::make_shared<nn::Linear>(4, 3));
  std::shared_ptr<nn::ModuleList> layers = register_module("layers", std::make_shared<nn::ModuleList>());
  Tensor scale = ops::ones({3});
  Tensor window = ops::ones({5});
  Block() {
    register_parameter("scale", &scale);
    register_buffer("window", &window, nn::BufferKind::non_persistent);
    layers->push_back(std::make_shared<nn::LayerNorm>(3));
    layers->push_back(std::make_shared<nn::BatchNorm1d>(3));
  }
  std::string type_name() const override { return "Block"; }
};

std::vector<std::string> names_of(const nn::NamedTensors& v) {
  std::vector<std::string> out;
  for (auto& [n, t] : v) out.push_back(n);
  return out;
}

std::vector<Tensor> tensors_of(const nn::NamedTensors& v) {
  std::vector<Tensor> out;
  for (auto& [n, t] : v) out.push_back(t);
  return out;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const auto x = ops::to_vector(a), y = ops::to_vector(b);
  REQUIRE(x.size() == y.size());
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}

}  // namespace

TEST_CASE("Module names parameters and buffers in PyTorch's order") {
  auto b = std::make_shared<Block>();
  // PyTorch: own parameters first, then children in registration order.
  CHECK(names_of(b->named_parameters()) ==
        std::vector<std::string>{"scale", "fc.weight", "fc.bias", "layers.0.weight", "layers.0.bias",
                                 "layers.1.weight", "layers.1.bias"});
  CHECK(names_of(b->state_dict()) ==
        std::vector<std::string>{"scale", "fc.weight", "fc.bias", "layers.0.weight", "layers.0.bias", "layers.1.weight",
                                 "layers.1.bias", "layers.1.running_mean", "layers.1.running_var",
                                 "layers.1.num_batches_tracked"});
  CHECK(names_of(b->named_buffers()) ==
        std::vector<std::string>{"window", "layers.1.running_mean", "layers.1.running_var", "layers.1.num_batches_tracked"});
  CHECK(b->num_parameters() == 3 + 12 + 3 + 3 + 3 + 3 + 3);
  CHECK(b->child("layers.1")->type_name() == "BatchNorm1d");
  CHECK(contains(thrown_message<IndexError>([&] { b->child("layers.7"); }), "no child module"));
  for (auto& p : b->parameters()) CHECK(p.requires_grad());
  CHECK(contains(b->repr(), "(fc): Linear(in_features=4, out_features=3, bias=True)"));
  std::vector<std::string> mods;
  for (auto& [n, m] : b->named_modules()) mods.push_back(n);
  CHECK(mods == std::vector<std::string>{"", "fc", "layers", "layers.0", "layers.1"});
}

TEST_CASE("Module registration rejects duplicate and dotted names") {
  struct Bad : nn::Module {
    Tensor a = ops::zeros({2});
    Tensor b = ops::zeros({2});
    void dup() { register_parameter("a", &a), register_parameter("a", &b); }
    void dotted() { register_parameter("x.y", &a); }
    void integer() {
      b = ops::zeros({2}, DType::i64);
      register_parameter("b", &b);
    }
  };
  CHECK(contains(thrown_message<ValueError>([] { Bad().dup(); }), "already registered"));
  CHECK(contains(thrown_message<ValueError>([] { Bad().dotted(); }), "contain no '.'"));
  CHECK(contains(thrown_message<ValueError>([] { Bad().integer(); }), "floating point"));
}

TEST_CASE("load_state_dict copies in place and lists every bad key") {
  manual_seed(1);
  auto a = std::make_shared<Block>();
  manual_seed(2);
  auto b = std::make_shared<Block>();
  Tensor handle = b->fc->weight;  // e.g. held by an optimizer
  b->load_state_dict(a->state_dict());
  CHECK(max_abs_diff(b->fc->weight, a->fc->weight) == 0.0);
  CHECK(handle.is_same(b->fc->weight));  // updated in place
  CHECK(b->fc->weight.requires_grad());

  // Missing, unexpected and mis-shaped keys, all in one message; nothing changes on failure.
  manual_seed(3);
  auto c = std::make_shared<Block>();
  const Tensor before = c->fc->weight.clone();
  nn::NamedTensors bad = a->state_dict();
  bad.erase(bad.begin() + 2);                        // fc.bias missing
  bad.emplace_back("fc.extra", ops::zeros({1}));     // unexpected
  bad[0].second = ops::zeros({4});                   // scale mis-shaped (3 expected)
  const std::string msg = thrown_message<ValueError>([&] { c->load_state_dict(bad); });
  CHECK(contains(msg, "size mismatch for \"scale\": checkpoint [4] vs model [3]"));
  CHECK(contains(msg, "missing keys: \"fc.bias\""));
  CHECK(contains(msg, "unexpected keys: \"fc.extra\""));
  CHECK(max_abs_diff(c->fc->weight, before) == 0.0);

  // Non-strict: missing and unexpected are reported, mis-shaped still throws.
  bad[0].second = ops::ones({3});
  nn::LoadResult r = c->load_state_dict(bad, false);
  CHECK(r.missing_keys == std::vector<std::string>{"fc.bias"});
  CHECK(r.unexpected_keys == std::vector<std::string>{"fc.extra"});
  CHECK(max_abs_diff(c->fc->weight, a->fc->weight) == 0.0);
  bad[0].second = ops::ones({2});
  CHECK(contains(thrown_message<ValueError>([&] { c->load_state_dict(bad, false); }), "size mismatch"));

  // BatchNorm's num_batches_tracked may be absent (eval checkpoints); dtypes are converted.
  nn::NamedTensors no_nbt;
  for (auto& [n, t] : a->state_dict())
    if (n != "layers.1.num_batches_tracked") no_nbt.emplace_back(n, t.to(DType::f64));
  CHECK_NOTHROW(c->load_state_dict(no_nbt));
  CHECK(c->fc->weight.dtype() == DType::f32);
  // Duplicate keys are an error, not "last one wins".
  nn::NamedTensors dup = a->state_dict();
  dup.push_back(dup[1]);
  CHECK(contains(thrown_message<ValueError>([&] { c->load_state_dict(dup); }), "appears twice"));
  // From a map (the safetensors loader's result).
  std::map<std::string, Tensor> as_map;
  for (auto& [n, t] : a->state_dict()) as_map[n] = t;
  CHECK_NOTHROW(c->load_state_dict(as_map));
}

TEST_CASE("train and eval reach every child, to(f64) keeps leaves, zero_grad clears") {
  auto b = std::make_shared<Block>();
  b->eval();
  CHECK(!b->is_training());
  CHECK(!b->layers->child("1")->is_training());
  b->train();
  CHECK(b->child("layers.0")->is_training());

  Tensor loss = ops::sum(b->fc->forward(ops::ones({2, 4})));
  loss.backward();
  CHECK(b->fc->weight.grad().defined());
  b->zero_grad();
  CHECK(!b->fc->weight.grad().defined());

  b->fc->bias.requires_grad_(false);
  b->to(DType::f64);
  CHECK(b->fc->weight.dtype() == DType::f64);
  CHECK(b->fc->weight.requires_grad());
  CHECK(!b->fc->bias.requires_grad());
  CHECK(b->fc->weight.is_leaf());
  CHECK(b->layers->child("1")->named_buffers()[2].second.dtype() == DType::i64);  // num_batches_tracked stays
  CHECK(b->named_buffers()[0].second.dtype() == DType::f64);                     // the window moves
  CHECK(b->num_parameters(true) == b->num_parameters() - 3);
  b->requires_grad_(false);
  CHECK(b->num_parameters(true) == 0);
}

TEST_CASE("Linear, Conv1d, Conv2d, ConvTranspose2d match the functional ops and init bounds") {
  manual_seed(11);
  nn::Linear lin(256, 513);
  const double bound = 1.0 / std::sqrt(256.0);
  for (double v : ops::to_vector(lin.weight)) CHECK(std::abs(v) <= bound);
  // Draws are spread over the bound, not collapsed (catches a forgotten scale).
  CHECK(ops::to_vector(ops::amax(lin.weight))[0] > 0.9 * bound);
  Tensor x = ops::randn({2, 7, 256});
  CHECK(max_abs_diff(lin(x), ops::linear(x, lin.weight, lin.bias)) == 0.0);
  CHECK(contains(thrown_message<ValueError>([&] { lin(ops::ones({3, 255})); }), "in_features"));
  nn::Linear nobias(3, 2, false);
  CHECK(nobias.named_parameters().size() == 1);

  manual_seed(12);
  nn::Conv1d dw(16, 16, 33, {.same = true, .groups = 16});
  CHECK(dw.weight.sizes() == Shape{16, 1, 33});
  Tensor s = ops::randn({2, 16, 50});
  CHECK(dw(s).sizes() == Shape{2, 16, 50});
  CHECK(max_abs_diff(dw(s), ops::conv1d(s, dw.weight, dw.bias, 1, 16, 1, 16)) < 1e-6);
  for (double v : ops::to_vector(dw.weight)) CHECK(std::abs(v) <= 1.0 / std::sqrt(33.0));

  nn::Conv2d patch(1, 8, 4, {.stride = 4});
  CHECK(patch(ops::randn({1, 1, 16, 12})).sizes() == Shape{1, 8, 4, 3});
  nn::ConvTranspose2d up(8, 1, 4, {.stride = 4});
  CHECK(up.weight.sizes() == Shape{8, 1, 4, 4});
  CHECK(up(ops::randn({1, 8, 4, 3})).sizes() == Shape{1, 1, 16, 12});
  CHECK(contains(thrown_message<ValueError>([] { nn::Conv1d(6, 4, 3, {.groups = 4}); }), "divisible by groups"));
}

TEST_CASE("Normalisation layers: GroupNorm, LayerNorm, BatchNorm running stats") {
  nn::GroupNorm gn(8, 64);
  Tensor x = ops::randn({2, 64, 30});
  CHECK(max_abs_diff(gn(x), ops::group_norm(x, 8, gn.weight, gn.bias)) == 0.0);
  CHECK(contains(thrown_message<ValueError>([] { nn::GroupNorm(8, 60); }), "divisible"));
  CHECK(contains(thrown_message<ValueError>([&] { gn(ops::randn({2, 32, 5})); }), "(N, 64, *)"));

  nn::LayerNorm ln(64, 1e-12);
  CHECK(ln.eps == 1e-12);
  Tensor y = ops::randn({3, 64});
  CHECK(max_abs_diff(ln(y), ops::layer_norm(y, {64}, ln.weight, ln.bias, 1e-12)) == 0.0);

  nn::BatchNorm1d bn(4);
  Tensor z = ops::add(ops::mul(ops::randn({8, 4, 10}), 3.0), 2.0);
  Tensor out = bn(z);  // training: batch statistics
  const auto mean = ops::to_vector(ops::mean(out, {0, 2}));
  for (double m : mean) CHECK(std::abs(m) < 1e-5);
  CHECK(ops::to_vector(bn.num_batches_tracked)[0] == 1.0);
  const auto rm = ops::to_vector(bn.running_mean);
  const auto bm = ops::to_vector(ops::mean(z, {0, 2}));
  for (size_t c = 0; c < 4; ++c) CHECK(rm[c] == doctest::Approx(0.1 * bm[c]).epsilon(1e-5));
  bn.eval();
  Tensor e = bn(z);  // eval: running stats
  Tensor ref = ops::batch_norm(z, bn.running_mean, bn.running_var, bn.weight, bn.bias, false);
  CHECK(max_abs_diff(e, ref) == 0.0);
  CHECK(ops::to_vector(bn.num_batches_tracked)[0] == 1.0);
  CHECK(contains(thrown_message<ValueError>([&] { bn(ops::randn({2, 4, 3, 3})); }), "BatchNorm1d"));
  nn::BatchNorm2d bn2(3);
  CHECK(bn2(ops::randn({2, 3, 4, 4})).sizes() == Shape{2, 3, 4, 4});
  // Cumulative average (momentum None in torch): after two batches, the plain mean of both.
  nn::BatchNorm1d cum(2, 1e-5, -1.0);
  Tensor b1 = ops::randn({4, 2}), b2 = ops::randn({4, 2});
  cum(b1), cum(b2);
  const auto m1 = ops::to_vector(ops::mean(b1, {0})), m2 = ops::to_vector(ops::mean(b2, {0}));
  const auto rmc = ops::to_vector(cum.running_mean);
  for (size_t c = 0; c < 2; ++c) CHECK(rmc[c] == doctest::Approx(0.5 * (m1[c] + m2[c])).epsilon(1e-5));
}

TEST_CASE("Dropout, activations and FiLM") {
  nn::Dropout drop(0.5);
  Tensor x = ops::ones({1000});
  Tensor d = drop(x);
  const auto dv = ops::to_vector(d);
  int zeros = 0;
  for (double v : dv) {
    zeros += v == 0.0;
    CHECK((v == 0.0 || v == 2.0));
  }
  CHECK(zeros > 400);
  CHECK(zeros < 600);
  drop.eval();
  CHECK(max_abs_diff(drop(x), x) == 0.0);
  CHECK(contains(thrown_message<ValueError>([] { nn::Dropout(1.5); }), "[0, 1]"));

  Tensor a = ops::randn({3, 8});
  CHECK(max_abs_diff(nn::SiLU()(a), ops::mul(a, ops::sigmoid(a))) < 1e-6);
  CHECK(max_abs_diff(nn::GLU(1)(a), ops::mul(ops::narrow(a, 1, 0, 4), ops::sigmoid(ops::narrow(a, 1, 4, 4)))) < 1e-6);
  CHECK(max_abs_diff(nn::GELU()(a), ops::gelu(a)) == 0.0);

  // FiLM: gamma(c) * x + beta(c), the same for every frame; no "+1".
  manual_seed(5);
  nn::FiLM film(6, 4);
  CHECK(names_of(film.named_parameters()) ==
        std::vector<std::string>{"gamma.weight", "gamma.bias", "beta.weight", "beta.bias"});
  Tensor h = ops::randn({2, 5, 4}), c = ops::randn({2, 6});
  Tensor out = film(h, c);
  const Tensor g = ops::linear(c, film.gamma->weight, film.gamma->bias);
  const Tensor b = ops::linear(c, film.beta->weight, film.beta->bias);
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t t = 0; t < 5; ++t) {
      Tensor want = ops::add(ops::mul(g.select(0, i), h.select(0, i).select(0, t)), b.select(0, i));
      CHECK(max_abs_diff(out.select(0, i).select(0, t), want) < 1e-6);
    }
  // Channels first: x (B, C, H, W) modulated along dim 1.
  nn::FiLM film_cf(6, 4, 1);
  Tensor img = ops::randn({2, 4, 3, 3});
  Tensor o2 = film_cf(img, c);
  const Tensor g2 = ops::linear(c, film_cf.gamma->weight, film_cf.gamma->bias);
  const Tensor b2 = ops::linear(c, film_cf.beta->weight, film_cf.beta->bias);
  const double want = ops::to_vector(g2)[1 * 4 + 2] * ops::to_vector(img)[((1 * 4 + 2) * 3 + 1) * 3 + 0] +
                      ops::to_vector(b2)[1 * 4 + 2];
  CHECK(ops::to_vector(o2)[((1 * 4 + 2) * 3 + 1) * 3 + 0] == doctest::Approx(want).epsilon(1e-5));
  CHECK(contains(thrown_message<ValueError>([&] { film(h, ops::randn({2, 5})); }), "cond must be (B, 6)"));
  CHECK(contains(thrown_message<ValueError>([&] { film(ops::randn({2, 5, 3}), c); }), "4 features"));
}

TEST_CASE("Layer gradchecks in float64") {
  using tse::test::gradcheck_module;
  using tse::test::leaf;
  manual_seed(21);
  {
    nn::Linear m(5, 3, true, DType::f64);
    CHECK_GRADCHECK_MODULE(tensors_of(m.named_parameters()), [&](auto& in) { return m(in[0]); },
                                     {leaf({2, 5})});
  }
  {
    nn::LayerNorm m(6, 1e-12, true, DType::f64);
    m.weight.detach().copy_(leaf({6}, 0.5, 1.5, 3));
    CHECK_GRADCHECK_MODULE(tensors_of(m.named_parameters()), [&](auto& in) { return m(in[0]); },
                                     {leaf({3, 6})});
  }
  {
    nn::GroupNorm m(2, 4, 1e-5, true, DType::f64);
    CHECK_GRADCHECK_MODULE(tensors_of(m.named_parameters()), [&](auto& in) { return m(in[0]); },
                                     {leaf({2, 4, 5})});
  }
  {
    nn::BatchNorm1d m(3, 1e-5, 0.1, true, true, DType::f64);
    CHECK_GRADCHECK_MODULE(tensors_of(m.named_parameters()), [&](auto& in) { return m(in[0]); },
                                     {leaf({4, 3, 2})});
  }
  {
    nn::Conv1d m(4, 4, 5, {.same = true, .groups = 4, .dtype = DType::f64});
    CHECK_GRADCHECK_MODULE(tensors_of(m.named_parameters()), [&](auto& in) { return m(in[0]); },
                                     {leaf({2, 4, 9})});
  }
  {
    nn::Conv2d m(2, 3, {2, 3}, {.stride = {2, 1}, .padding = 1, .dtype = DType::f64});
    CHECK_GRADCHECK_MODULE(tensors_of(m.named_parameters()), [&](auto& in) { return m(in[0]); },
                                     {leaf({1, 2, 5, 4})});
  }
  {
    nn::ConvTranspose2d m(3, 2, 2, {.stride = 2, .dtype = DType::f64});
    CHECK_GRADCHECK_MODULE(tensors_of(m.named_parameters()), [&](auto& in) { return m(in[0]); },
                                     {leaf({1, 3, 3, 2})});
  }
  {
    nn::FiLM m(3, 4, -1, DType::f64);
    CHECK_GRADCHECK_MODULE(tensors_of(m.named_parameters()), [&](auto& in) { return m(in[0], in[1]); },
                                     {leaf({2, 3, 4}), leaf({2, 3}, -1, 1, 9)});
  }
}

TEST_CASE("Loss modules equal the metric functions and train the estimate") {
  manual_seed(31);
  Tensor ref = ops::randn({2, 400});
  Tensor est = ops::add(ref, ops::mul(ops::randn({2, 400}), 0.3)).requires_grad_();
  nn::CLAPSepLoss clapsep;
  nn::NegSISDR neg;
  CHECK(max_abs_diff(clapsep(est, ref), metrics::clapsep_loss(est, ref)) == 0.0);
  CHECK(max_abs_diff(neg(est, ref), metrics::neg_si_sdr(est, ref)) == 0.0);
  // -SI-SDR is the negated mean of the per-item SI-SDR.
  CHECK(ops::to_vector(neg(est, ref))[0] == doctest::Approx(-ops::to_vector(ops::mean(metrics::si_sdr(est, ref)))[0]));
  neg(est, ref).backward();
  CHECK(est.grad().defined());
  CHECK(nn::NegSISDR(true).extra_repr() == "zero_mean=True, eps=-1");
}

TEST_CASE("STFT, ISTFT and LogMel modules match the audio functions") {
  manual_seed(41);
  Tensor x = ops::randn({2, 4800});
  const audio::StftOptions so{.n_fft = 512, .hop_length = 128};
  nn::STFT stft(so);
  nn::ISTFT istft(so);
  Tensor spec = stft(x);
  CHECK(max_abs_diff(spec, audio::stft(x, so)) == 0.0);
  CHECK(max_abs_diff(istft(spec, 4800), x) < 1e-5);
  CHECK(stft.named_parameters().empty());
  // The HTSAT front-end configuration reproduces clap_logmel (frames and mels swapped).
  nn::LogMel mel({.sample_rate = 48000, .stft = {.n_fft = 1024, .hop_length = 480}, .n_mels = 64, .fmin = 50, .fmax = 14000});
  Tensor w48 = ops::mul(ops::randn({1, 48000}), 0.1);
  Tensor ours = mel(w48).transpose(-1, -2);
  Tensor ref = audio::clap_logmel(w48);
  CHECK(ours.sizes() == ref.sizes());
  CHECK(max_abs_diff(ours, ref) < 1e-3);  // dB values of order 10-100
  CHECK(mel.state_dict().empty());        // the filterbank is derived, never saved
  CHECK(mel.named_buffers().size() == 1);
  CHECK(contains(thrown_message<ValueError>([] { nn::STFT({.n_fft = 512, .win_length = 600}); }), "win_length"));
  // f64 gradcheck of the whole front-end on a short clip.
  nn::LogMel small({.sample_rate = 8000, .stft = {.n_fft = 32, .hop_length = 16}, .n_mels = 4, .dtype = DType::f64});
  CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return small(in[0]); }, {tse::test::leaf({1, 64}, 0.2, 1.0)});
}
