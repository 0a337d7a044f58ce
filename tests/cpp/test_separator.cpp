// models::Separator helpers: a saved model with its query encoder comes back through
// load_separator, and separate_waveform runs a model on audio at any rate and channel count.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>

#include "tests/cpp/gradcheck.hpp"
#include "tests/cpp/reference.hpp"
#include "tests/cpp/temp_dir.hpp"
#include "tse/audio/resample.hpp"
#include "tse/io/safetensors.hpp"
#include "tse/models/conformer_tse.hpp"
#include "tse/models/query_encoder.hpp"
#include "tse/models/separator.hpp"
#include "tse/ops/factory.hpp"
#include "tse/ops/random.hpp"
#include "tse/ops/shape.hpp"

using namespace tse;
using tse::test::contains;
using tse::test::thrown_message;

namespace {

models::ConformerTSEConfig small_config() {
  models::ConformerTSEConfig c;
  c.sample_rate = 16000;
  c.n_fft = 64;
  c.hop_length = 32;
  c.d_model = 8;
  c.num_layers = 1;
  c.num_heads = 2;
  c.ffn_dim = 12;
  c.conv_kernel = 3;
  c.conv_norm_groups = 2;
  c.query_dim = 6;
  return c;
}


}  // namespace

TEST_CASE("QueryEncoder JSON round trip and errors") {
  models::LabelQueryEncoder enc({"cat", "piano"}, 6, 9);
  auto back = models::QueryEncoder::from_json(enc.to_json());
  REQUIRE(back);
  CHECK(back->name() == "LabelQueryEncoder");
  CHECK(tse::test::allclose(back->encode_text({"piano", "cat"}), enc.encode_text({"piano", "cat"}), 0, 0));
  CHECK(contains(thrown_message<ValueError>([] { models::QueryEncoder::from_json("{"); }), "not valid JSON"));
  CHECK(contains(thrown_message<ValueError>([] { models::QueryEncoder::from_json("{\"type\": \"CLAPText\"}"); }),
                 "unknown encoder type \"CLAPText\""));
  CHECK(contains(thrown_message<ValueError>([] { models::QueryEncoder::from_json("{\"type\": \"LabelQueryEncoder\"}"); }),
                 "needs \"vocabulary\""));
}

TEST_CASE("load_separator rebuilds a saved model with its query encoder") {
  tse::test::TempDir dir("tse_test_load_separator");
  manual_seed(3);
  models::ConformerTSE model(small_config());
  models::LabelQueryEncoder queries({"speech", "trumpet"}, 6, 1);
  const std::string path = dir.file("m.safetensors");
  model.save(path, {{"query_encoder", queries.to_json()}});
  auto loaded = models::load_separator(path);
  REQUIRE(loaded.model);
  REQUIRE(loaded.queries);
  CHECK(loaded.model->sample_rate() == 16000);
  CHECK(loaded.model->query_dim() == 6);
  CHECK(!loaded.model->supports_negative_queries());
  CHECK(loaded.metadata.at("model_type") == "ConformerTSE");
  const Tensor mix = ops::randn({2, 800}) * 0.1;
  const Tensor q = queries.encode_text({"trumpet", "speech"});
  CHECK(tse::test::allclose(loaded.model->separate(mix, loaded.queries->encode_text({"trumpet", "speech"})),
                            model.separate(mix, q), 0, 0));
  CHECK(contains(thrown_message<ValueError>([&] { model.save(path, {{"model_type", "x"}}); }),
                 "must not override \"model_type\""));
  // Files of unknown models, foreign files, missing files.
  io::save_safetensors(dir.file("other.safetensors"), model.state_dict(), {{"model_type", "ResUNet"}});
  CHECK(contains(thrown_message<ValueError>([&] { models::load_separator(dir.file("other.safetensors")); }),
                 "holds a \"ResUNet\" model"));
  io::save_safetensors(dir.file("plain.safetensors"), model.state_dict());
  CHECK(contains(thrown_message<ValueError>([&] { models::load_separator(dir.file("plain.safetensors")); }),
                 "no \"model_type\""));
  CHECK(contains(thrown_message<IOError>([&] { models::load_separator(dir.file("missing.safetensors")); }),
                 "missing.safetensors"));
}

TEST_CASE("separate_waveform keeps the input's shape and rate") {
  manual_seed(4);
  models::ConformerTSE model(small_config());
  const Tensor q = ops::randn({6});
  // At the model's rate, mono: exactly model.separate.
  const Tensor mono = ops::randn({1000}) * 0.1;
  CHECK(tse::test::allclose(models::separate_waveform(model, mono, 16000, q), model.separate(mono, q), 0, 0));
  // Stereo at 22.05 kHz: each channel separately, through the model's rate and back.
  const Tensor stereo = ops::randn({2, 1500}) * 0.1;
  const Tensor y = models::separate_waveform(model, stereo, 22050, q.unsqueeze(0));
  CHECK(y.sizes() == Shape{2, 1500});
  const Tensor ch1 = models::separate_waveform(model, stereo.select(0, 1).contiguous(), 22050, q);
  CHECK(tse::test::allclose(y.select(0, 1), ch1, 1e-6, 1e-6));
  // The model sees the signal at its own rate.
  const Tensor at_model = audio::resample(stereo.select(0, 0).contiguous().unsqueeze(0), 22050, 16000, "soxr_hq");
  const Tensor direct = audio::resample(model.separate(at_model, q), 16000, 22050, "soxr_hq");
  const int64_t n = std::min<int64_t>(1500, direct.size(-1));
  CHECK(tse::test::allclose(y.select(0, 0).narrow(0, 0, n), direct.squeeze(0).narrow(0, 0, n), 1e-6, 1e-6));
  // Bad input.
  auto err = [&](const Tensor& a, int64_t sr, const Tensor& query) {
    return thrown_message<ValueError>([&] { models::separate_waveform(model, a, sr, query); });
  };
  CHECK(contains(err(ops::zeros({0}), 16000, q), "audio is empty"));
  Tensor nan = ops::zeros({100});
  nan.fill_(std::nan(""));
  CHECK(contains(err(nan, 16000, q), "NaN or Inf"));
  CHECK(contains(err(mono, 0, q), "sample_rate must be positive"));
  CHECK(contains(err(mono, 16000, ops::randn({5})), "queries of size 6"));
  CHECK(contains(err(ops::zeros({1, 2, 3}), 16000, q), "(L) or (C, L)"));
}
