// The Conformer modules against ESPnet's own golden outputs (../shared/golden/conformer, README
// there: f64 <= 1e-10, f32 <= 3e-6 relative to each tensor's peak, the key-bias gradient against
// the key-weight gradient's peak), and ConformerTSE end to end: parameter count and names, f64
// gradcheck on a tiny config, state_dict round trip through safetensors, bad inputs.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>

#include "tests/cpp/golden_reader.hpp"
#include "tests/cpp/gradcheck.hpp"
#include "tests/cpp/reference.hpp"
#include "tse/io/safetensors.hpp"
#include "tse/models/conformer_tse.hpp"
#include "tse/models/query_encoder.hpp"
#include "tse/nn/conformer.hpp"

using namespace tse;
using tse::test::contains;
using tse::test::thrown_message;

namespace {

std::map<std::string, Tensor> golden(const std::string& name) { return tse::test::golden_tensors("conformer", name); }
nn::NamedTensors params_of(const std::map<std::string, Tensor>& g) { return tse::test::module_tensors(g); }
using tse::test::peak;
double rel_err(const Tensor& got, const Tensor& ref) { return tse::test::rel_to_peak(got, ref); }

// Compares the gradient of every named parameter with grad.<name>, and grad.input.x; the key
// bias (exactly zero in exact arithmetic) against the key weight gradient's peak.
void check_grads(nn::Module& m, const std::map<std::string, Tensor>& g, const std::string& prefix, const Tensor& x,
                 double tol) {
  for (const auto& [name, p] : m.named_parameters()) {
    const std::string key = "grad." + prefix + name;
    REQUIRE_MESSAGE(g.count(key), key);
    REQUIRE_MESSAGE(p.grad().defined(), name);
    if (name.find("linear_k.bias") != std::string::npos) {
      const std::string wkey = "grad." + prefix + name.substr(0, name.size() - 4) + "weight";
      CHECK_MESSAGE(peak(p.grad()) <= tol * peak(g.at(wkey)), name);
    } else {
      const double e = rel_err(p.grad(), g.at(key));
      CHECK_MESSAGE(e <= tol, name, " rel err ", e);
    }
  }
  const double ex = rel_err(x.grad(), g.at("grad.input.x"));
  CHECK_MESSAGE(ex <= tol, "input.x rel err ", ex);
}

void run_layer_case(const std::string& file, nn::ConvNorm norm, DType dtype, double tol) {
  auto g = golden(file);
  nn::ConformerLayerOptions o{.d_model = 64, .n_head = 4, .ffn_dim = 256, .conv_kernel = 33, .conv_norm = norm,
                              .dtype = dtype};
  auto layer = std::make_shared<nn::ConformerLayer>(o);
  layer->load_state_dict(params_of(g));
  layer->eval();  // the BatchNorm case uses running stats
  Tensor x = g.at("input.x").to(dtype).requires_grad_();
  Tensor pos = g.at("input.pos_emb").to(dtype);  // ESPnet's float32 table (README s.3.1)
  Tensor out = layer->forward(x, pos);
  CHECK_MESSAGE(rel_err(out, g.at("output.out")) <= tol, file, " out ", rel_err(out, g.at("output.out")));
  {
    NoGradGuard ng;
    Tensor b1 = layer->feed_forward_macaron->forward(layer->norm_ff_macaron->forward(x));
    CHECK(rel_err(b1, g.at("output.branch.feed_forward_macaron")) <= tol);
    Tensor x1 = ops::add(x, b1, 0.5);
    Tensor h = layer->norm_mha->forward(x1);
    Tensor b2 = layer->self_attn->forward(h, h, h, pos);
    CHECK(rel_err(b2, g.at("output.branch.self_attn")) <= tol);
    Tensor x2 = ops::add(x1, b2);
    Tensor b3 = layer->conv_module->forward(layer->norm_conv->forward(x2));
    CHECK(rel_err(b3, g.at("output.branch.conv_module")) <= tol);
    Tensor b4 = layer->feed_forward->forward(layer->norm_ff->forward(ops::add(x2, b3)));
    CHECK(rel_err(b4, g.at("output.branch.feed_forward")) <= tol);
  }
  ops::sum(ops::mul(out, g.at("input.R").to(dtype))).backward();
  check_grads(*layer, g, "", x, tol);
}

models::ConformerTSEConfig tiny_config() {
  models::ConformerTSEConfig c;
  c.n_fft = 16;
  c.hop_length = 8;
  c.d_model = 8;
  c.num_layers = 2;
  c.num_heads = 2;
  c.ffn_dim = 12;
  c.conv_kernel = 3;
  c.conv_norm_groups = 2;
  c.query_dim = 4;
  return c;
}

}  // namespace

TEST_CASE("golden ESPnet rel-pos attention module f64 and f32") {
  auto g = golden("rel_pos_mhsa.safetensors");
  for (DType dt : {DType::f64, DType::f32}) {
    const double tol = dt == DType::f64 ? 1e-10 : 3e-6;
    nn::RelPositionMultiHeadedAttention att(4, 64, 0.0, dt);
    att.load_state_dict(params_of(g));
    nn::RelPositionalEncoding pe(64);
    Tensor x = g.at("input.x").to(dt).requires_grad_();
    auto [xs, table] = pe.forward(x);
    Tensor pos = g.at("output.pos_emb").to(dt);  // the stored float32 table (README s.3.1)
    CHECK(peak(ops::sub(table.to(DType::f64), g.at("output.pos_emb"))) <= 1.2e-7 * 37 + 1e-7);
    Tensor attn;
    Tensor out = att.forward(xs, xs, xs, pos, &attn);
    CHECK(rel_err(out, g.at("output.out")) <= tol);
    CHECK(rel_err(attn, g.at("output.attn")) <= tol);
    ops::sum(ops::mul(out, g.at("input.R").to(dt))).backward();
    check_grads(att, g, "", x, tol);
  }
}

TEST_CASE("golden ESPnet conformer layer with BatchNorm f64") {
  run_layer_case("conformer_layer.safetensors", nn::ConvNorm::batch_norm, DType::f64, 1e-10);
}
TEST_CASE("golden ESPnet conformer layer with BatchNorm f32") {
  run_layer_case("conformer_layer.safetensors", nn::ConvNorm::batch_norm, DType::f32, 3e-6);
}
TEST_CASE("golden conformer layer with GroupNorm f64") {
  run_layer_case("conformer_layer_gn.safetensors", nn::ConvNorm::group_norm, DType::f64, 1e-10);
}
TEST_CASE("golden conformer layer with GroupNorm f32") {
  run_layer_case("conformer_layer_gn.safetensors", nn::ConvNorm::group_norm, DType::f32, 3e-6);
}

TEST_CASE("golden conformer layer at paper width f32 forward") {
  auto g = golden("conformer_layer_paper.safetensors");
  auto layer = std::make_shared<nn::ConformerLayer>(nn::ConformerLayerOptions{.conv_norm = nn::ConvNorm::batch_norm});
  CHECK(layer->num_parameters() == 1589504);  // MODELS.md B s.2.5
  layer->load_state_dict(params_of(g));
  layer->eval();
  NoGradGuard ng;
  Tensor out = layer->forward(g.at("input.x"), g.at("input.pos_emb"));
  const double e = rel_err(out, g.at("output_f32.out"));
  CHECK_MESSAGE(e <= 3e-6, "rel err ", e);
  // Our own table at T = 626 (correctly rounded frequencies): within the README's bound.
  nn::RelPositionalEncoding pe(256);
  CHECK(peak(ops::sub(pe.table(626, DType::f64), g.at("input.pos_emb").to(DType::f64))) <= 1.2e-7 * 626 + 1e-7);
}

TEST_CASE("ConformerTSE paper size has 32004353 parameters under ESPnet names") {
  models::ConformerTSE model;
  CHECK(model.num_parameters() == 32004353);
  std::set<std::string> names;
  for (auto& [n, t] : model.named_parameters()) names.insert(n);
  for (const char* n : {"embed.0.weight", "embed.1.bias", "encoders.0.self_attn.linear_q.weight",
                        "encoders.15.self_attn.linear_pos.weight", "encoders.3.self_attn.pos_bias_u",
                        "encoders.7.feed_forward_macaron.w_2.bias", "encoders.2.conv_module.depthwise_conv.weight",
                        "encoders.2.conv_module.norm.weight", "encoders.9.norm_final.bias", "after_norm.weight",
                        "cond_blocks.0.linear1.weight", "cond_blocks.15.film.gamma.weight", "cond_blocks.4.film.beta.bias",
                        "cond_blocks.8.linear2.bias", "mask_head.weight"})
    CHECK_MESSAGE(names.count(n), n);
  CHECK(names.count("encoders.0.self_attn.linear_pos.bias") == 0);
  CHECK(model.named_parameters().size() == names.size());
  // The BatchNorm variant adds running stats (buffers), not parameters.
  models::ConformerTSEConfig bn;
  bn.conv_norm = nn::ConvNorm::batch_norm;
  bn.num_layers = 1;
  models::ConformerTSE small(bn);
  bool has_rm = false;
  for (auto& [n, t] : small.state_dict()) has_rm |= n == "encoders.0.conv_module.norm.running_mean";
  CHECK(has_rm);
}

TEST_CASE("ConformerTSE forward shapes, batch consistency, determinism") {
  manual_seed(3);
  models::ConformerTSE model(tiny_config());
  model.eval();
  Tensor mix = ops::randn({3, 100});
  Tensor q = ops::randn({3, 4});
  Tensor y = model.forward(mix, q);
  CHECK(y.sizes() == Shape{3, 100});
  // Each item alone gives the same result as in the batch.
  for (int64_t b = 0; b < 3; ++b) {
    Tensor one = model.separate(mix.select(0, b), q.select(0, b));
    CHECK(one.sizes() == Shape{100});
    CHECK(tse::test::allclose(one, y.select(0, b), 1e-5, 1e-6));
  }
  CHECK(tse::test::allclose(model.forward(mix, q), y, 0, 0));
  // A (1, D) query is shared by the batch.
  Tensor shared = model.forward(mix, q.narrow(0, 0, 1));
  CHECK(tse::test::allclose(shared.select(0, 0), y.select(0, 0), 1e-5, 1e-6));
  // The mask is in [0, 1] (sigmoid), so the estimate's STFT never exceeds the mixture's.
  Tensor mag = audio::magnitude(audio::stft(mix, {.n_fft = 16, .hop_length = 8})).transpose(1, 2);
  Tensor m = model.estimate_mask(mag, q);
  for (double v : ops::to_vector(m)) CHECK((v >= 0.0 && v <= 1.0));
}

TEST_CASE("ConformerTSE end to end gradcheck in float64 on a tiny config") {
  manual_seed(4);
  models::ConformerTSE model(tiny_config(), DType::f64);
  Tensor mix = tse::test::leaf({1, 40}, -1, 1, 5);
  Tensor q = tse::test::leaf({1, 4}, -0.5, 0.5, 6);
  std::vector<Tensor> params;
  for (auto& [n, p] : model.named_parameters()) params.push_back(p);
  CHECK_GRADCHECK_MODULE(params, [&](const std::vector<Tensor>& in) { return model.forward(in[0], in[1]); },
                         {mix, q}, {.atol = 1e-6, .rtol = 1e-4});
}

TEST_CASE("ConformerTSE state_dict round trip through safetensors with metadata") {
  const auto dir = std::filesystem::temp_directory_path() / "tse_test_conformer_roundtrip";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "model.safetensors").string();
  manual_seed(7);
  models::ConformerTSE a(tiny_config());
  io::save_safetensors(path, a.state_dict(), a.metadata());
  auto loaded = io::load_safetensors(path);
  auto meta = io::SafetensorsFile::open(path).metadata();
  CHECK(meta.at("model_type") == "ConformerTSE");
  CHECK(meta.at("sample_rate") == "32000");
  auto cfg = models::ConformerTSEConfig::from_json(meta.at("config"));
  CHECK(cfg.d_model == 8);
  CHECK(cfg.to_json() == tiny_config().to_json());
  manual_seed(8);
  models::ConformerTSE b(cfg);
  b.load_state_dict(loaded);
  a.eval(), b.eval();
  Tensor mix = ops::randn({2, 64}), q = ops::randn({2, 4});
  CHECK(tse::test::allclose(a.forward(mix, q), b.forward(mix, q), 0, 0));
  // save() / load(): the config travels in the metadata.
  const std::string path2 = (dir / "model2.safetensors").string();
  a.save(path2);
  auto reloaded = models::ConformerTSE::load(path2);
  CHECK(reloaded->config().to_json() == a.config().to_json());
  reloaded->eval();
  CHECK(tse::test::allclose(reloaded->forward(mix, q), a.forward(mix, q), 0, 0));
  io::save_safetensors(path2, a.state_dict(), {{"model_type", "CLAPSep"}, {"format_version", "1"}});
  CHECK(contains(thrown_message<ValueError>([&] { models::ConformerTSE::load(path2); }), "holds a CLAPSep"));
  io::save_safetensors(path2, a.state_dict());
  CHECK(contains(thrown_message<ValueError>([&] { models::ConformerTSE::load(path2); }), "no \"model_type\" metadata"));
  // A checkpoint of another config fails with the mismatching names.
  auto other_cfg = tiny_config();
  other_cfg.d_model = 12;
  other_cfg.num_heads = 3;
  other_cfg.conv_norm_groups = 3;
  models::ConformerTSE c(other_cfg);
  CHECK(contains(thrown_message<ValueError>([&] { c.load_state_dict(loaded); }), "size mismatch for \"embed.0.weight\": checkpoint [8, 9] vs model [12, 9]"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("ConformerTSE bad inputs give clear errors") {
  models::ConformerTSE model(tiny_config());
  Tensor q = ops::randn({1, 4});
  auto err = [&](const Tensor& mix, const Tensor& query) {
    return thrown_message<ValueError>([&] { model.forward(mix, query); });
  };
  CHECK(contains(err(ops::zeros({1, 0}), q), "empty audio"));
  CHECK(contains(err(ops::zeros({1, 8}), q), "more than n_fft / 2"));
  CHECK(contains(err(ops::zeros({40}), q), "(B, L)"));
  Tensor nan_mix = ops::zeros({1, 40});
  nan_mix.fill_(std::nan(""));
  CHECK(contains(err(nan_mix, q), "NaN or Inf"));
  Tensor inf_q = ops::full({1, 4}, INFINITY);
  CHECK(contains(err(ops::zeros({1, 40}), inf_q), "query contains NaN or Inf"));
  CHECK(contains(err(ops::zeros({1, 40}), ops::randn({1, 5})), "query must be (B, 4)"));
  CHECK(contains(err(ops::zeros({2, 40}), ops::randn({3, 4})), "query must be (B, 4)"));
  CHECK(contains(err(ops::zeros({1, 40}, DType::f64), q), "mixture must be float32"));
  CHECK(contains(err(ops::zeros({1, 40}), q.to(DType::f64)), "query must be float32"));
  auto bad = tiny_config();
  bad.conv_kernel = 4;
  CHECK(contains(thrown_message<ValueError>([&] { models::ConformerTSE m(bad); }), "conv_kernel must be odd"));
  CHECK(contains(thrown_message<ValueError>([] { models::ConformerTSEConfig::from_json("{\"d_model\": \"x\"}"); }),
                 "\"d_model\" must be an integer"));
  CHECK(contains(thrown_message<ValueError>([] { models::ConformerTSEConfig::from_json("{\"layers\": 3}"); }),
                 "unknown key \"layers\""));
}

TEST_CASE("LabelQueryEncoder gives fixed seeded unit vectors") {
  models::LabelQueryEncoder enc({"cat", "piano", "speech"}, 16, 1);
  Tensor e = enc.encode_text({"piano", "cat", "piano"});
  CHECK(e.sizes() == Shape{3, 16});
  const auto v = ops::to_vector(e);
  for (int r = 0; r < 3; ++r) {
    double n2 = 0;
    for (int i = 0; i < 16; ++i) n2 += v[r * 16 + i] * v[r * 16 + i];
    CHECK(n2 == doctest::Approx(1.0).epsilon(1e-6));
  }
  for (int i = 0; i < 16; ++i) CHECK(v[i] == v[32 + i]);
  // The vector of a label does not depend on the vocabulary order; the seed changes it.
  models::LabelQueryEncoder reordered({"speech", "piano"}, 16, 1);
  CHECK(tse::test::allclose(reordered.encode_text({"piano"}), enc.encode_text({"piano"}), 0, 0));
  models::LabelQueryEncoder reseeded({"piano"}, 16, 2);
  CHECK(!tse::test::allclose(reseeded.encode_text({"piano"}), enc.encode_text({"piano"}), 0, 1e-3));
  CHECK(contains(thrown_message<ValueError>([&] { enc.encode_text({"dog"}); }), "unknown label \"dog\""));
  CHECK(contains(thrown_message<NotImplementedError>([&] { enc.encode_audio(ops::zeros({1, 10}), 32000); }),
                 "audio queries"));
  CHECK(contains(thrown_message<ValueError>([] { models::LabelQueryEncoder({"a", "a"}); }), "appears twice"));
}
