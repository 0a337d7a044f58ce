// train::Trainer on a synthetic bank (tones of three pitches and noise): the loss falls, resume
// from a checkpoint equals an uninterrupted run bit for bit, checkpoints are pruned and a
// damaged one is skipped, checkpoints of another model are refused, evaluation statistics,
// config JSON and bad arguments.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "tests/cpp/gradcheck.hpp"
#include "tests/cpp/reference.hpp"
#include "tests/cpp/temp_dir.hpp"
#include "tse/core/threading.hpp"
#include "tse/io/safetensors.hpp"
#include "tse/metrics/metrics.hpp"
#include "tse/models/conformer_tse.hpp"
#include "tse/ops/elementwise.hpp"
#include "tse/ops/factory.hpp"
#include "tse/ops/random.hpp"
#include "tse/train/trainer.hpp"

using namespace tse;
using tse::test::contains;
using tse::test::thrown_message;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kRate = 8000;

// Three tone classes and a noise class, a few clips each, 0.5 s long.
std::shared_ptr<const train::ClipBank> synthetic_bank() {
  static auto bank = [] {
    auto b = std::make_shared<train::ClipBank>(std::vector<std::string>{"low", "mid", "high", "noise"}, kRate);
    manual_seed(11);
    const Tensor t = ops::arange(0, kRate / 2, 1, DType::f32) / static_cast<double>(kRate);
    const double freqs[] = {220.0, 660.0, 1800.0};
    for (int c = 0; c < 3; ++c)
      for (int k = 0; k < 3; ++k)
        b->add(c, ops::sin(t * (2 * M_PI * freqs[c] * (1.0 + 0.03 * k))) * (0.3 + 0.1 * k));
    for (int k = 0; k < 3; ++k) b->add(3, ops::randn({kRate / 2}) * 0.2);
    return std::shared_ptr<const train::ClipBank>(b);
  }();
  return bank;
}

models::ConformerTSEConfig tiny_model() {
  models::ConformerTSEConfig c;
  c.sample_rate = kRate;
  c.n_fft = 128;
  c.hop_length = 64;
  c.d_model = 16;
  c.num_layers = 1;
  c.num_heads = 2;
  c.ffn_dim = 32;
  c.conv_kernel = 5;
  c.conv_norm_groups = 4;
  c.query_dim = 8;
  return c;
}

struct Setup {
  std::shared_ptr<models::ConformerTSE> model;
  std::shared_ptr<models::LabelQueryEncoder> queries;
  std::shared_ptr<train::MixtureSampler> data;
  std::unique_ptr<train::Trainer> trainer;
};

Setup make(train::TrainerConfig cfg, uint64_t init_seed = 1, models::ConformerTSEConfig mc = tiny_model()) {
  Setup s;
  manual_seed(init_seed);
  s.model = std::make_shared<models::ConformerTSE>(mc);
  auto bank = synthetic_bank();
  s.queries = std::make_shared<models::LabelQueryEncoder>(bank->labels(), mc.query_dim, 0);
  train::MixtureOptions mo;
  mo.sample_rate = kRate;
  mo.segment_samples = kRate / 2;
  s.data = std::make_shared<train::MixtureSampler>(bank, mo, 5);
  s.trainer = std::make_unique<train::Trainer>(s.model, s.queries, s.data, cfg);
  return s;
}


bool same_bits(const nn::NamedTensors& a, const nn::NamedTensors& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].first != b[i].first || !tse::test::allclose(a[i].second, b[i].second, 0, 0)) return false;
  return true;
}

}  // namespace

TEST_CASE("Trainer: a tiny label-queried run lowers the loss by at least 3 dB, f32 and bf16 precision") {
  for (const char* precision : {"f32", "bf16"}) {
    CAPTURE(precision);
    train::TrainerConfig cfg;
    cfg.max_steps = 60;
    cfg.batch_size = 8;
    cfg.lr = 3e-3;
    cfg.progress = false;
    cfg.precision = precision;
    auto s = make(cfg);
    double first = 0, last = 0;
    for (int i = 0; i < 60; ++i) {
      const auto st = s.trainer->train_step();
      CHECK(st.step == i + 1);
      CHECK(std::isfinite(st.grad_norm));
      if (i < 10) first += st.loss / 10;
      if (i >= 50) last += st.loss / 10;
    }
    CHECK_FALSE(autocast::is_enabled());  // the step's guard is gone
    MESSAGE(precision << " neg SI-SDR: first 10 steps " << first << " dB, last 10 " << last << " dB");
    CHECK(last < first - 3.0);
  }
}

TEST_CASE("Trainer: resume from a checkpoint equals the uninterrupted run bit for bit") {
  tse::test::TempDir dir("tse_test_trainer_resume");
  const int threads = get_num_threads();
  set_num_threads(1);
  train::TrainerConfig cfg;
  cfg.max_steps = 6;
  cfg.batch_size = 4;
  cfg.schedule = "warmup_hold_decay";
  cfg.warmup_steps = 2;
  cfg.decay_every = 2;
  cfg.grad_clip = 1.0;
  cfg.progress = false;
  auto straight = make(cfg);
  straight.trainer->fit();

  cfg.output_dir = (dir.path / "run").string();
  cfg.checkpoint_every = 3;
  cfg.log_every = 1;
  auto first = make(cfg);
  first.trainer->fit([](const train::StepStats& st) { return st.step < 3; });  // "killed" after step 3
  CHECK(first.trainer->step() == 3);
  const std::string latest = train::Trainer::latest_checkpoint(cfg.output_dir);
  CHECK(fs::path(latest).filename() == "step-00000003.safetensors");
  auto resumed = make(cfg, /*init_seed=*/99);  // another initialisation: the checkpoint must win
  CHECK(resumed.trainer->resume(cfg.output_dir) == latest);
  CHECK(resumed.trainer->step() == 3);
  resumed.trainer->fit();
  CHECK(resumed.trainer->step() == 6);
  CHECK(same_bits(straight.model->state_dict(), resumed.model->state_dict()));
  CHECK(same_bits(straight.trainer->optimizer().state_tensors(), resumed.trainer->optimizer().state_tensors()));
  CHECK(straight.trainer->optimizer().lr(0) == resumed.trainer->optimizer().lr(0));
  // The metrics CSV holds one row per logged step, in order, without the cut-off run's duplicates.
  std::ifstream csv(fs::path(cfg.output_dir) / "metrics.csv");
  std::string line;
  std::getline(csv, line);
  CHECK(line == "step,loss,lr,grad_norm,mixtures_per_s,val_si_sdri");
  int64_t prev = 0, rows = 0;
  while (std::getline(csv, line)) {
    const int64_t step = std::stoll(line.substr(0, line.find(',')));
    CHECK(step > prev);
    prev = step, ++rows;
  }
  CHECK(rows == 6);
  set_num_threads(threads);
}

TEST_CASE("Trainer: checkpoints are pruned, a damaged one is skipped, another model is refused") {
  tse::test::TempDir dir("tse_test_trainer_ckpt");
  train::TrainerConfig cfg;
  cfg.max_steps = 8;
  cfg.batch_size = 2;
  cfg.checkpoint_every = 2;
  cfg.keep_last = 2;
  cfg.progress = false;
  cfg.output_dir = dir.path.string();
  auto s = make(cfg);
  s.trainer->fit();
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir.path / "checkpoints")) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"latest", "step-00000006.safetensors", "step-00000008.safetensors"});

  // Truncate the newest: resume reports it and takes the one before.
  const fs::path newest = dir.path / "checkpoints" / "step-00000008.safetensors";
  fs::resize_file(newest, fs::file_size(newest) / 2);
  auto r = make(cfg, 7);
  CHECK(fs::path(r.trainer->resume(dir.path.string())).filename() == "step-00000006.safetensors");
  CHECK(r.trainer->step() == 6);

  // A checkpoint written for another model config is refused with the difference named.
  auto other = tiny_model();
  other.ffn_dim = 48;
  auto o = make(cfg, 1, other);
  CHECK(contains(thrown_message<ValueError>([&] { o.trainer->resume(dir.path.string()); }), "another model"));
  // Not a checkpoint at all; nothing to resume.
  const std::string plain = (dir.path / "plain.safetensors").string();
  s.model->save(plain);
  CHECK(contains(thrown_message<ValueError>([&] { r.trainer->load_checkpoint(plain); }), "no \"format\" metadata"));
  tse::test::TempDir empty("tse_test_trainer_empty");
  CHECK(contains(thrown_message<IOError>([&] { r.trainer->resume(empty.path.string()); }), "no loadable checkpoint"));
}

TEST_CASE("Trainer: evaluate gives SI-SDRi per mixture and per class") {
  train::TrainerConfig cfg;
  cfg.progress = false;
  cfg.eval_batch_size = 3;
  auto s = make(cfg);
  const auto test = train::make_test_mixtures(*synthetic_bank(), 8, 0.0, kRate / 2);
  const auto r = s.trainer->evaluate(test);
  REQUIRE(r.si_sdri.size() == 8);
  CHECK(r.class_count == std::vector<int64_t>{2, 2, 2, 2});
  // Against the metrics computed directly, item by item.
  const Tensor est = s.model->separate(test.mixture, s.trainer->queries_for(test.target_label));
  const auto direct = ops::to_vector(metrics::si_sdri(est, test.target, test.mixture));
  double mean = 0;
  for (size_t i = 0; i < 8; ++i) {
    CHECK(r.si_sdri[i] == doctest::Approx(direct[i]).epsilon(1e-5));
    mean += direct[i] / 8;
  }
  CHECK(r.mean == doctest::Approx(mean).epsilon(1e-5));
  for (size_t c = 0; c < 4; ++c) {
    std::vector<double> v;
    for (size_t i = 0; i < 8; ++i)
      if (test.target_label[i] == static_cast<int64_t>(c)) v.push_back(direct[i]);
    CHECK(r.class_mean[c] == doctest::Approx((v[0] + v[1]) / 2).epsilon(1e-5));
    CHECK(r.class_median[c] == doctest::Approx((v[0] + v[1]) / 2).epsilon(1e-5));
  }
  // The model was put back in training mode.
  CHECK(s.model->is_training());
}

TEST_CASE("Trainer: export_model round trip through load_separator") {
  tse::test::TempDir dir("tse_test_trainer_export");
  train::TrainerConfig cfg;
  cfg.progress = false;
  auto s = make(cfg);
  const std::string path = (dir.path / "model.safetensors").string();
  s.trainer->export_model(path);
  auto loaded = models::load_separator(path);
  REQUIRE(loaded.queries);
  const Tensor mix = ops::randn({1, 2000}) * 0.1;
  CHECK(tse::test::allclose(loaded.model->separate(mix, loaded.queries->encode_text({"mid"})),
                            s.model->separate(mix, s.queries->encode_text({"mid"})), 0, 0));
}

TEST_CASE("TrainerConfig JSON and bad arguments") {
  train::TrainerConfig c;
  c.max_steps = 7;
  c.schedule = "cosine";
  c.output_dir = "x";
  const auto back = train::TrainerConfig::from_json(c.to_json());
  CHECK(back.to_json() == c.to_json());
  auto err = [](const std::string& j) { return thrown_message<ValueError>([&] { train::TrainerConfig::from_json(j); }); };
  CHECK(contains(err("{\"max_step\": 3}"), "unknown key \"max_step\""));
  CHECK(contains(err("{\"lr\": \"big\"}"), "\"lr\" must be a number"));
  CHECK(contains(err("{\"batch_size\": 0}"), "batch_size must be positive"));
  CHECK(contains(err("{\"schedule\": \"linear\"}"), "schedule must be"));
  CHECK(contains(err("{\"loss\": \"l1\"}"), "loss must be"));
  CHECK(contains(err("{\"precision\": \"fp16\"}"), "precision must be \"f32\" or \"bf16\""));
  CHECK(contains(err("{\"lr\": -1}"), "lr must be positive"));
  // The data must be at the model's rate.
  auto mc = tiny_model();
  mc.sample_rate = 16000;
  CHECK(contains(thrown_message<ValueError>([&] { make(train::TrainerConfig{}, 1, mc); }), "8000 Hz but the model at 16000"));
  // A non-finite loss stops with the step named, before the update.
  train::TrainerConfig cfg;
  cfg.lr = 1e300;  // the first update overflows the weights; the next loss is NaN
  cfg.progress = false;
  auto s = make(cfg);
  s.trainer->train_step();
  CHECK(contains(thrown_message<Error>([&] {
                   for (int i = 0; i < 3; ++i) s.trainer->train_step();
                 }),
                 "the update was not applied"));
}
