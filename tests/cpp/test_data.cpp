// tse::train data pipeline: the built-in label table (on a synthetic copy of the installed file
// names and on the installed Debian sounds), CSV catalogs, trimming, the held-out split, and the
// mixture sampler's determinism, SNR, peak, silence and argument checks.
#include <doctest/doctest.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <numbers>
#include <set>
#include <string>

#include "tests/cpp/temp_dir.hpp"
#include "tse/tse.hpp"

namespace {

using namespace tse;
using namespace tse::train;
namespace fs = std::filesystem;

const char* const kRoot = "/usr/share/sounds";


struct ThreadCount {
  int saved;
  explicit ThreadCount(int n) : saved(get_num_threads()) { set_num_threads(n); }
  ~ThreadCount() { set_num_threads(saved); }
};

/// A tone burst of `seconds` at f Hz between 0.05 s of digital silence on each side.
Tensor burst(double f, double seconds, int64_t sr, float amp = 0.5f) {
  const int64_t pad = sr / 20, n = static_cast<int64_t>(seconds * double(sr));
  Tensor t = Tensor::empty({n + 2 * pad});
  float* p = t.data<float>();
  for (int64_t i = 0; i < n + 2 * pad; ++i)
    p[i] = i < pad || i >= pad + n ? 0.f : amp * static_cast<float>(std::sin(2 * std::numbers::pi * f * double(i - pad) / double(sr)));
  return t;
}

// The installed file names (regular files), as sound-icons, alsa-utils, sound-theme-freedesktop
// and oxygen-sounds lay them out, with their labels in the built-in table ("" = left out).
const std::vector<std::pair<std::string, std::string>>& installed_names() {
  static const std::vector<std::pair<std::string, std::string>> names = {
      {"alsa/Front_Center.wav", "speech"}, {"alsa/Front_Left.wav", "speech"}, {"alsa/Front_Right.wav", "speech"},
      {"alsa/Rear_Center.wav", "speech"}, {"alsa/Rear_Left.wav", "speech"}, {"alsa/Rear_Right.wav", "speech"},
      {"alsa/Side_Left.wav", "speech"}, {"alsa/Side_Right.wav", "speech"}, {"alsa/Noise.wav", "noise"},
      {"sound-icons/cembalo-1.wav", "harpsichord"}, {"sound-icons/cembalo-2.wav", "harpsichord"},
      {"sound-icons/cembalo-3.wav", "harpsichord"}, {"sound-icons/cembalo-6.wav", "harpsichord"},
      {"sound-icons/cembalo-10.wav", "harpsichord"}, {"sound-icons/cembalo-11.wav", "harpsichord"},
      {"sound-icons/cembalo-12.wav", "harpsichord"}, {"sound-icons/piano-3.wav", "piano"},
      {"sound-icons/electric-piano-3.wav", "piano"}, {"sound-icons/klavichord-4.wav", "piano"},
      {"sound-icons/guitar-12.wav", "guitar"}, {"sound-icons/guitar-13.wav", "guitar"},
      {"sound-icons/trumpet-1.wav", "trumpet"}, {"sound-icons/trumpet-12.wav", "trumpet"},
      {"sound-icons/violoncello-7.wav", "cello"}, {"sound-icons/xylofon.wav", "xylophone"},
      {"sound-icons/percussion-10.wav", "percussion"}, {"sound-icons/percussion-12.wav", "percussion"},
      {"sound-icons/percussion-28.wav", "percussion"}, {"sound-icons/percussion-50.wav", "percussion"},
      {"sound-icons/cymbaly-1.wav", "cymbals"}, {"sound-icons/canary-long.wav", "bird"},
      {"sound-icons/gummy-cat-2.wav", "cat"}, {"sound-icons/cockchafer-gentleman-1.wav", "beetle"},
      {"sound-icons/glass-water-1.wav", "water"}, {"sound-icons/pipe.wav", "pipe"},
      {"sound-icons/chord-7.wav", ""}, {"sound-icons/pisk-up.wav", ""}, {"sound-icons/prompt.wav", ""},
      {"freedesktop/stereo/bell.oga", "bell"}, {"freedesktop/stereo/phone-incoming-call.oga", "phone_ring"},
      {"freedesktop/stereo/alarm-clock-elapsed.oga", "alarm"}, {"freedesktop/stereo/audio-channel-front-left.oga", ""},
      {"freedesktop/stereo/dialog-warning.oga", ""}, {"Oxygen-Im-Phone-Ring.ogg", "phone_ring"},
      {"Oxygen-Sys-Log-In.ogg", ""},
  };
  return names;
}

const std::vector<std::string> kLabels = {"alarm", "beetle", "bell",   "bird",       "cat",   "cello",
                                          "cymbals", "guitar", "harpsichord", "noise", "percussion", "phone_ring",
                                          "piano", "pipe",   "speech", "trumpet",    "water", "xylophone"};

/// A synthetic sound root under the installed names (a distinct tone per file, 0.4 s at 16 kHz)
/// plus alias symlinks like the packages'.
void write_fake_root(const fs::path& root) {
  int i = 0;
  for (const auto& [name, label] : installed_names()) {
    const fs::path p = root / name;
    fs::create_directories(p.parent_path());
    const Tensor x = burst(200.0 + 37.0 * i++, 0.4, 16000);
    if (p.extension() == ".oga") {  // libsndfile picks the container from the extension
      audio::save((p.parent_path() / (p.stem().string() + ".ogg")).string(), x, 16000);
      fs::rename(p.parent_path() / (p.stem().string() + ".ogg"), p);
    } else {
      audio::save(p.string(), x, 16000);
    }
  }
  fs::create_symlink("cembalo-6.wav", root / "sound-icons/at");
  fs::create_symlink("pipe.wav", root / "sound-icons/pipe");
  fs::create_symlink("cembalo-1.wav", root / "sound-icons/cembalo-99.wav");  // an alias that matches a pattern
  fs::create_symlink("bell.oga", root / "freedesktop/stereo/dialog-error.oga");
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

/// A small in-memory bank: `labels` labels with two tone clips each (0.3 s and 1.5 s at 8 kHz).
std::shared_ptr<ClipBank> tone_bank(int labels, int64_t sr = 8000, std::vector<double> speeds = {0.9, 1.0, 1.1}) {
  REQUIRE(labels <= 4);
  static const char* const kNames[] = {"c0", "c1", "c2", "c3"};
  const std::vector<std::string> names(kNames, kNames + labels);
  auto bank = std::make_shared<ClipBank>(names, sr, speeds);
  for (int l = 0; l < labels; ++l) {
    bank->add(l, burst(300.0 + 100 * l, 0.3, sr).narrow(0, sr / 20, sr * 3 / 10), "short");
    bank->add(l, burst(350.0 + 100 * l, 1.5, sr).narrow(0, sr / 20, sr * 3 / 2), "long");
  }
  return bank;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.sizes() == b.sizes() &&
         std::memcmp(a.contiguous().data_ptr(), b.contiguous().data_ptr(), static_cast<size_t>(a.numel()) * 4) == 0;
}

bool same_batch(const MixtureBatch& a, const MixtureBatch& b) {
  return same_bits(a.mixture, b.mixture) && same_bits(a.target, b.target) && same_bits(a.interference, b.interference) &&
         a.target_label == b.target_label && a.interference_label == b.interference_label && a.snr_db == b.snr_db;
}

double power_db(const float* x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(x[i]) * x[i];
  return 10 * std::log10(s / double(n));
}

const HeldOutSplit& installed_split() {
  static const HeldOutSplit s = split_builtin(kRoot);
  return s;
}

}  // namespace

TEST_CASE("train data: the built-in label table on the installed file names, aliases skipped") {
  tse::test::TempDir dir("tse_data");
  write_fake_root(dir.path);
  const SoundCatalog c = SoundCatalog::builtin(dir.path.string());
  CHECK(c.labels == kLabels);
  std::map<std::string, std::string> expect;
  for (const auto& [name, label] : installed_names())
    if (!label.empty()) expect[(dir.path / name).string()] = label;
  std::map<std::string, std::string> got;
  for (const SoundClip& clip : c.clips) {
    got[clip.path] = clip.label;
    CHECK_FALSE(fs::is_symlink(clip.path));
  }
  CHECK(got == expect);  // every regular file with its label; no alias, no left-out file
  CHECK(c.label_index("speech") == 14);
  const std::string msg = message_of([&] { c.label_index("violin"); });
  CHECK(msg.find("unknown label 'violin'") != std::string::npos);
  CHECK(msg.find("harpsichord") != std::string::npos);
  CHECK_THROWS_AS(c.label_index("violin"), ValueError);
}

TEST_CASE("train data: a missing root or missing files tell the user to run scripts/setup-deps") {
  tse::test::TempDir dir("tse_data");
  const std::string missing = (dir.path / "nowhere").string();
  CHECK_THROWS_AS(SoundCatalog::builtin(missing), IOError);
  std::string msg = message_of([&] { SoundCatalog::builtin(missing); });
  CHECK(msg.find("scripts/setup-deps") != std::string::npos);
  CHECK(msg.find("sound-icons") != std::string::npos);
  CHECK(msg.find(missing) != std::string::npos);
  write_fake_root(dir.path);
  fs::remove(dir.path / "freedesktop/stereo/bell.oga");
  msg = message_of([&] { SoundCatalog::builtin(dir.path.string()); });
  CHECK(msg.find("bell.oga") != std::string::npos);
  CHECK(msg.find("sound-theme-freedesktop") != std::string::npos);
  CHECK(msg.find("scripts/setup-deps") != std::string::npos);
  CHECK(msg.find("cembalo") == std::string::npos);  // names only what is missing
}

TEST_CASE("train data: the built-in catalog over the installed Debian sounds") {
  const SoundCatalog c = SoundCatalog::builtin(kRoot);
  CHECK(c.labels == kLabels);
  CHECK(c.clips.size() == 39);
  std::map<std::string, int> per;
  for (const SoundClip& clip : c.clips) {
    ++per[clip.label];
    CHECK(fs::is_regular_file(fs::symlink_status(clip.path)));
    CHECK(clip.path.find("audio-channel") == std::string::npos);
  }
  CHECK(per["speech"] == 8);
  CHECK(per["harpsichord"] == 7);
  CHECK(per["percussion"] == 4);
  CHECK(per["piano"] == 3);
  CHECK(per["phone_ring"] == 2);
}

TEST_CASE("train data: SoundCatalog.from_csv resolves relative paths against the CSV's folder") {
  tse::test::TempDir dir("tse_data");
  fs::create_directories(dir.path / "sub");
  {
    std::ofstream f(dir.path / "sub/list.csv");
    f << "label,path,comment\n\"dog, barking\",a.wav,x\ncat,/abs/b.wav,\"quoted \"\"y\"\"\"\n\ncat,c d.wav,\n";
  }
  const SoundCatalog c = SoundCatalog::from_csv((dir.path / "sub/list.csv").string());
  CHECK(c.labels == std::vector<std::string>{"cat", "dog, barking"});
  REQUIRE(c.clips.size() == 3);
  CHECK(c.clips[0].path == (dir.path / "sub/a.wav").string());
  CHECK(c.clips[0].label == "dog, barking");
  CHECK(c.clips[1].path == "/abs/b.wav");
  CHECK(c.clips[2].path == (dir.path / "sub/c d.wav").string());
  {
    std::ofstream f(dir.path / "bad.csv");
    f << "file,class\na.wav,cat\n";
  }
  CHECK(message_of([&] { SoundCatalog::from_csv((dir.path / "bad.csv").string()); }).find("path and label") !=
        std::string::npos);
  CHECK_THROWS_AS(SoundCatalog::from_csv((dir.path / "none.csv").string()), IOError);
}

TEST_CASE("train data: trim_silence and the bank's speed variants") {
  const Tensor x = burst(440, 0.5, 16000);  // 800 zeros, 8000 tone, 800 zeros
  const auto [b, e] = trim_silence(x, -50.0, 0);
  CHECK(b >= 800);
  CHECK(b <= 802);  // sin(0) = 0: the first sample or two of the tone sit below the threshold
  CHECK(e <= 8800);
  CHECK(e >= 8798);
  const auto [b2, e2] = trim_silence(x, -50.0, 100);
  CHECK(b2 == b - 100);
  CHECK(e2 == e + 100);
  CHECK(trim_silence(ops::zeros({10}), -50.0, 0) == std::pair<int64_t, int64_t>{0, 0});

  ClipBank bank({"a"}, 16000, {0.9, 1.0, 1.1});
  bank.add(0, x.narrow(0, 800, 8000), "tone");
  const BankClip& c = bank.clip(0);
  CHECK(c.variants.size() == 3);
  CHECK(bank.unit_speed() == 1);
  CHECK(same_bits(c.variants[1], c.samples));
  CHECK(std::abs(c.variants[0].numel() - 8000 / 0.9) <= 1.0);
  CHECK(std::abs(c.variants[2].numel() - 8000 / 1.1) <= 1.0);
  Tensor bad = ops::zeros({4});
  bad.data<float>()[2] = NAN;
  CHECK_THROWS_AS(bank.add(0, bad, "nan"), ValueError);
  CHECK_THROWS_AS(bank.add(1, x, "label"), ValueError);
  CHECK_THROWS_AS(ClipBank({"a"}, 16000, {0.9}), ValueError);  // speeds without 1.0
}

TEST_CASE("train data: the held-out split is disjoint (whole files, or non-overlapping time parts)") {
  const SoundCatalog cat = SoundCatalog::builtin(kRoot);
  const HeldOutSplit& s = installed_split();
  CHECK(s.train->labels() == kLabels);
  CHECK(s.test->labels() == kLabels);
  CHECK(s.train->speeds().size() == 5);
  CHECK(s.test->speeds() == std::vector<double>{1.0});
  CHECK(s.train->present_labels().size() == kLabels.size());
  CHECK(s.test->present_labels().size() == kLabels.size());
  std::map<std::string, int> files;
  for (const SoundClip& c : cat.clips) ++files[c.label];
  for (int64_t l = 0; l < static_cast<int64_t>(kLabels.size()); ++l) {
    const int n = files[kLabels[static_cast<size_t>(l)]];
    std::map<std::string, std::pair<int64_t, int64_t>> tr, te;
    for (int64_t i : s.train->clips_of(l)) tr[s.train->clip(i).source] = {s.train->clip(i).start, s.train->clip(i).end};
    for (int64_t i : s.test->clips_of(l)) te[s.test->clip(i).source] = {s.test->clip(i).start, s.test->clip(i).end};
    CAPTURE(kLabels[static_cast<size_t>(l)]);
    if (n >= 4) {  // whole files: disjoint sources, about a quarter held out
      CHECK(static_cast<int>(te.size()) == std::max(1, static_cast<int>(std::lround(0.25 * n))));
      CHECK(static_cast<int>(tr.size() + te.size()) == n);
      for (const auto& [src, range] : te) CHECK(tr.count(src) == 0);
      for (const auto& [src, range] : te) CHECK(range.first == 0);
    } else {  // every file in both, the test part the last 30 %, touching but not overlapping
      CHECK(static_cast<int>(tr.size()) == n);
      CHECK(static_cast<int>(te.size()) == n);
      for (const auto& [src, range] : te) {
        REQUIRE(tr.count(src) == 1);
        CHECK(tr[src].first == 0);
        CHECK(tr[src].second == range.first);  // train [0, cut), test [cut, end)
        CHECK(range.second > range.first);
        const double frac = double(range.second - range.first) / double(range.second);
        CHECK(frac == doctest::Approx(0.3).epsilon(0.01));
      }
    }
  }
  // The held-out choice is a function of the file names only.
  tse::test::TempDir dir("tse_data");
  write_fake_root(dir.path);
  const HeldOutSplit fake = split_builtin(dir.path.string());
  std::set<std::string> held, held_fake;
  for (const BankClip& c : s.test->clips())
    if (files[kLabels[static_cast<size_t>(c.label)]] >= 4) held.insert(fs::path(c.source).filename().string());
  for (const BankClip& c : fake.test->clips())
    if (files[kLabels[static_cast<size_t>(c.label)]] >= 4) held_fake.insert(fs::path(c.source).filename().string());
  CHECK(held == held_fake);
  CHECK(held.size() == 2 + 2 + 1);  // speech 8 -> 2, harpsichord 7 -> 2, percussion 4 -> 1
}

TEST_CASE("train data: a batch is a pure function of (seed, index), on 1 and 2 threads") {
  auto run = [](const std::shared_ptr<const ClipBank>& bank, const MixtureOptions& o) {
    const MixtureSampler s(bank, o, 7);
    MixtureBatch one, two, again;
    {
      ThreadCount t(1);
      one = s.batch(3, 6);
    }
    {
      ThreadCount t(2);
      two = s.batch(3, 6);
      again = MixtureSampler(bank, o, 7).batch(3, 6);  // a fresh sampler: nothing is carried over
    }
    CHECK(same_batch(one, two));
    CHECK(same_batch(one, again));
    CHECK_FALSE(same_bits(one.mixture, s.batch(4, 6).mixture));
    CHECK_FALSE(same_bits(one.mixture, MixtureSampler(bank, o, 8).batch(3, 6).mixture));
    // Item b depends on (seed, index, b) only: a smaller batch is a prefix.
    const MixtureBatch prefix = s.batch(3, 2);
    CHECK(same_bits(prefix.mixture, one.mixture.narrow(0, 0, 2)));
    CHECK(one.mixture.sizes() == Shape{6, o.segment_samples});
    CHECK(one.target.sizes() == Shape{6, o.segment_samples});
    CHECK(one.interference.sizes() == Shape{6, o.segment_samples});
  };
  MixtureOptions o;
  o.sample_rate = 8000;
  o.segment_samples = 8000;
  run(tone_bank(4), o);
  run(installed_split().train, MixtureOptions{});
}

TEST_CASE("train data: labels differ within an item, the achieved SNR is the drawn one, peaks <= 0.9 when scaled") {
  const auto& bank = installed_split().train;
  MixtureOptions o;
  o.num_interferers = 1;
  const MixtureSampler s(bank, o, 11);
  const int64_t B = 64, L = o.segment_samples;
  const MixtureBatch b = s.batch(0, B);
  std::set<int64_t> targets;
  int scaled = 0;
  for (int64_t i = 0; i < B; ++i) {
    CAPTURE(i);
    CHECK(b.target_label[static_cast<size_t>(i)] != b.interference_label[static_cast<size_t>(i)]);
    targets.insert(b.target_label[static_cast<size_t>(i)]);
    const double snr = b.snr_db[static_cast<size_t>(i)];
    CHECK(snr >= o.snr_db_min);
    CHECK(snr <= o.snr_db_max);
    const float* t = b.target.data<float>() + i * L;
    const float* n = b.interference.data<float>() + i * L;
    const float* m = b.mixture.data<float>() + i * L;
    CHECK(power_db(t, L) - power_db(n, L) == doctest::Approx(snr).epsilon(0).scale(0).epsilon(1e-3));
    float peak = 0.f, err = 0.f;
    for (int64_t j = 0; j < L; ++j) {
      peak = std::max(peak, std::fabs(m[j]));
      err = std::max(err, std::fabs(m[j] - (t[j] + n[j])));
      CHECK_MESSAGE(std::isfinite(m[j]), "non-finite mixture");
    }
    CHECK(peak <= 1.0f);
    CHECK(err <= 1e-6f);
    if (std::fabs(peak - 0.9f) < 1e-6f) ++scaled;
  }
  CHECK(targets.size() >= 12);  // class-balanced draws over 18 labels reach most in 64 items
  // Loud sources: every mixture exceeds 1 and is scaled to peak 0.9 exactly; the SNR holds.
  o.gain_db_min = o.gain_db_max = 20;
  const MixtureBatch loud = MixtureSampler(bank, o, 11).batch(0, 16);
  for (int64_t i = 0; i < 16; ++i) {
    const float* m = loud.mixture.data<float>() + i * L;
    float peak = 0.f;
    for (int64_t j = 0; j < L; ++j) peak = std::max(peak, std::fabs(m[j]));
    CHECK(peak == doctest::Approx(0.9).epsilon(1e-6));
    CHECK(power_db(loud.target.data<float>() + i * L, L) - power_db(loud.interference.data<float>() + i * L, L) ==
          doctest::Approx(loud.snr_db[static_cast<size_t>(i)]).scale(0).epsilon(1e-3));
  }
  // Without normalisation the sources keep their gain: loud mixtures exceed 1.
  o.peak_normalize = false;
  const MixtureBatch raw = MixtureSampler(bank, o, 11).batch(0, 4);
  float raw_peak = 0.f;
  for (int64_t j = 0; j < raw.mixture.numel(); ++j) raw_peak = std::max(raw_peak, std::fabs(raw.mixture.data<float>()[j]));
  CHECK(raw_peak > 1.0f);
}

TEST_CASE("train data: targets are never silent, redrawn deterministically") {
  // Label 0 has a loud clip and a silent-looking one (-86 dB); label 1 a loud one.
  const int64_t sr = 8000;
  auto bank = std::make_shared<ClipBank>(std::vector<std::string>{"a", "b"}, sr);
  bank->add(0, burst(300, 0.5, sr, 0.5f), "loud-a");
  bank->add(0, burst(300, 0.5, sr, 1e-4f), "quiet-a");
  bank->add(1, burst(700, 0.5, sr, 0.5f), "loud-b");
  MixtureOptions o;
  o.sample_rate = sr;
  o.segment_samples = sr;
  o.augment = false;
  o.peak_normalize = false;
  const MixtureBatch b = MixtureSampler(bank, o, 5).batch(0, 64);
  int label0 = 0;
  for (int64_t i = 0; i < 64; ++i) {
    const float* t = b.target.data<float>() + i * sr;
    CHECK(power_db(t, sr) > -20.0);  // a 0.6 s tone of amplitude 0.5 in 1 s: -12 dB
    label0 += b.target_label[static_cast<size_t>(i)] == 0;
  }
  CHECK(label0 > 16);
  CHECK(label0 < 48);
  // The installed train bank with its real pauses: no target below the threshold.
  const auto& real = installed_split().train;
  MixtureOptions r;
  r.augment = false;
  r.peak_normalize = false;
  const MixtureBatch rb = MixtureSampler(real, r, 3).batch(1, 48);
  for (int64_t i = 0; i < 48; ++i) {
    const float* t = rb.target.data<float>() + i * r.segment_samples;
    double s = 0;
    int64_t nz = 0;
    for (int64_t j = 0; j < r.segment_samples; ++j)
      if (t[j] != 0.f) s += double(t[j]) * t[j], ++nz;
    REQUIRE(nz > 0);
    CHECK(10 * std::log10(s / double(nz)) >= r.silence_db - 1e-6);
  }
  // Nothing audible at all: a clear error after max_draws, not a hang.
  auto silent = std::make_shared<ClipBank>(std::vector<std::string>{"a", "b"}, sr);
  silent->add(0, burst(300, 0.5, sr, 1e-5f), "qa");
  silent->add(1, burst(300, 0.5, sr, 1e-5f), "qb");
  const std::string msg = message_of([&] { MixtureSampler(silent, o, 5).batch(0, 1); });
  CHECK(msg.find("non-silent") != std::string::npos);
}

TEST_CASE("train data: augmentation places, loops, crops and speed-perturbs") {
  const int64_t sr = 8000;
  auto bank = std::make_shared<ClipBank>(std::vector<std::string>{"a", "b"}, sr, std::vector<double>{0.9, 1.0, 1.1});
  bank->add(0, burst(300, 0.25, sr).narrow(0, sr / 20, sr / 4), "short");  // 2000 samples
  bank->add(1, burst(700, 3.0, sr).narrow(0, sr / 20, 3 * sr), "long");
  MixtureOptions o;
  o.sample_rate = sr;
  o.segment_samples = sr;
  o.peak_normalize = false;
  o.gain_db_min = o.gain_db_max = 0;
  o.loop_probability = 0.0;
  o.speed_perturb = false;
  const MixtureBatch b = MixtureSampler(bank, o, 1).batch(0, 64);
  std::set<int64_t> offsets;
  for (int64_t i = 0; i < 64; ++i) {
    if (b.target_label[static_cast<size_t>(i)] != 0) continue;
    const float* t = b.target.data<float>() + i * sr;
    int64_t first = 0, nz = 0;
    while (first < sr && t[first] == 0.f) ++first;
    for (int64_t j = 0; j < sr; ++j) nz += t[j] != 0.f;
    offsets.insert(first);
    CHECK(nz <= 2000);  // placed once, zero padded
  }
  CHECK(offsets.size() > 5);  // random placement
  o.loop_probability = 1.0;
  const MixtureBatch l = MixtureSampler(bank, o, 1).batch(0, 16);
  for (int64_t i = 0; i < 16; ++i) {
    if (l.target_label[static_cast<size_t>(i)] != 0) continue;
    const float* t = l.target.data<float>() + i * sr;
    for (int64_t j = 0; j + 2000 < sr; ++j) CHECK(t[j] == t[j + 2000]);  // tiled with period 2000
  }
  // Speed variants change the tone's period: with speed_perturb the loop periods vary.
  o.speed_perturb = true;
  const MixtureBatch sp = MixtureSampler(bank, o, 1).batch(0, 64);
  std::set<bool> exact;
  for (int64_t i = 0; i < 64; ++i) {
    if (sp.target_label[static_cast<size_t>(i)] != 0) continue;
    const float* t = sp.target.data<float>() + i * sr;
    bool periodic = true;
    for (int64_t j = 0; j + 2000 < sr && periodic; ++j) periodic = t[j] == t[j + 2000];
    exact.insert(periodic);
  }
  CHECK(exact.size() == 2);  // some items use speed 1 (period 2000), some 0.9 / 1.1
}

TEST_CASE("train data: the held-out test mixtures are fixed and class-balanced at 0 dB") {
  const auto& test = *installed_split().test;
  const MixtureBatch a = make_test_mixtures(test);
  const MixtureBatch b = make_test_mixtures(test);
  CHECK(same_batch(a, b));
  CHECK(a.mixture.sizes() == Shape{200, 32000});
  std::map<int64_t, int> per;
  for (size_t i = 0; i < 200; ++i) {
    ++per[a.target_label[i]];
    CHECK(a.target_label[i] == static_cast<int64_t>(i % 18));
    CHECK(a.interference_label[i] != a.target_label[i]);
    CHECK(a.snr_db[i] == 0.0);
    CHECK(power_db(a.target.data<float>() + i * 32000, 32000) -
              power_db(a.interference.data<float>() + i * 32000, 32000) ==
          doctest::Approx(0.0).scale(1).epsilon(1e-3));
  }
  CHECK(per.size() == 18);
  for (const auto& [label, n] : per) CHECK((n == 11 || n == 12));
  CHECK_FALSE(same_bits(make_test_mixtures(test, 200, 0.0, 32000, 1).mixture, a.mixture));
  const MixtureBatch c = make_test_mixtures(test, 20, 5.0, 16000);
  CHECK(c.mixture.sizes() == Shape{20, 16000});
  CHECK(c.snr_db[3] == 5.0);
}

TEST_CASE("train data: bad arguments raise ValueError naming the argument") {
  const auto bank = tone_bank(3);
  MixtureOptions o;
  o.sample_rate = 8000;
  const MixtureSampler s(bank, o, 1);
  auto msg = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const ValueError& e) {
      return std::string(e.what());
    }
    return std::string("(no ValueError)");
  };
  CHECK(msg([&] { s.batch(0, 0); }).find("batch_size") != std::string::npos);
  CHECK(msg([&] { s.batch(-1, 2); }).find("index") != std::string::npos);
  MixtureOptions bad = o;
  bad.snr_db_min = 6;
  bad.snr_db_max = 5;
  CHECK(msg([&] { MixtureSampler(bank, bad, 1); }).find("snr_db_min") != std::string::npos);
  bad = o;
  bad.sample_rate = 16000;
  CHECK(msg([&] { MixtureSampler(bank, bad, 1); }).find("sample_rate") != std::string::npos);
  bad = o;
  bad.segment_samples = 0;
  CHECK(msg([&] { MixtureSampler(bank, bad, 1); }).find("segment_samples") != std::string::npos);
  auto empty = std::make_shared<ClipBank>(std::vector<std::string>{"a", "b"}, 8000);
  CHECK(msg([&] { MixtureSampler(empty, o, 1); }).find("bank") != std::string::npos);
  CHECK(msg([&] { MixtureSampler(nullptr, o, 1); }).find("bank") != std::string::npos);
  auto one_label = std::make_shared<ClipBank>(std::vector<std::string>{"a", "b"}, 8000);
  one_label->add(0, burst(300, 0.3, 8000), "x");
  CHECK(msg([&] { MixtureSampler(one_label, o, 1); }).find("2 labels") != std::string::npos);
  CHECK(msg([&] { make_test_mixtures(*empty); }).find("empty") != std::string::npos);
  CHECK(msg([&] { make_test_mixtures(*bank, 0); }).find("count") != std::string::npos);
  SplitOptions so;
  so.time_test_fraction = 1.5;
  CHECK(msg([&] { split(SoundCatalog::builtin(kRoot), so); }).find("time_test_fraction") != std::string::npos);
}
