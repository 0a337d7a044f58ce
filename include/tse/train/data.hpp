#pragma once
/// \file data.hpp
/// The training data pipeline: a catalog of labelled sound files (the built-in one reads real
/// recordings installed from Debian packages), the decoded clip bank, the held-out split, and a
/// sampler that mixes targets and interferers on the fly. Every batch is a pure function of
/// (seed, batch index, batch size): resuming a run replays it bit for bit, on any thread count.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tse/core/tensor.hpp"

namespace tse::train {

/// One labelled sound file.
struct SoundClip {
  std::string path;
  std::string label;
};

/// Labelled sound files. labels are sorted and unique; every clip's label is one of them.
struct TSE_API SoundCatalog {
  std::vector<std::string> labels;
  std::vector<SoundClip> clips;

  /// The built-in catalog: real recordings the Debian packages sound-icons, alsa-utils,
  /// sound-theme-freedesktop and oxygen-sounds install under root (the table in data.cpp maps
  /// file names to 18 labels). Only regular files count (sound-icons' alias symlinks are
  /// skipped). IOError telling the user to run scripts/setup-deps when root or an expected file
  /// is missing. The files are GPL / CC-BY-SA: read in place, never copied into the project.
  static SoundCatalog builtin(const std::string& root = "/usr/share/sounds");
  /// A CSV with a header row naming the columns path and label (in any order; other columns are
  /// ignored; fields may be double-quoted). Relative paths are relative to the CSV's folder.
  /// IOError when the file cannot be read, ValueError naming the line when a row is malformed.
  static SoundCatalog from_csv(const std::string& path);

  /// A catalog of the given clips; labels are the sorted distinct clip labels. ValueError on an
  /// empty path or label.
  static SoundCatalog from_clips(std::vector<SoundClip> clips);

  /// Index of label in labels; ValueError listing the known labels when it is not one.
  int64_t label_index(const std::string& label) const;
};

/// One decoded clip (or a time part of one file) in a bank.
struct BankClip {
  Tensor samples;                 // (L,) float32, mono, at the bank's rate, silence-trimmed
  std::vector<Tensor> variants;   // one per bank speed (variants[k] played speeds[k] times faster)
  int64_t label = 0;              // index into the bank's labels
  std::string source;             // the file it came from
  int64_t start = 0;              // [start, end): its samples within the trimmed decoded file
  int64_t end = 0;
};

/// Decoded clips, mono float32 at one sample rate, each with its label index and source file.
/// Immutable once built, so it is shared by samplers across threads.
class TSE_API ClipBank {
 public:
  /// An empty bank over labels at sample_rate. speeds: the speed-perturbation factors whose
  /// variants add() pre-computes (libsoxr, so sampling needs no resampling); must contain 1.0.
  ClipBank(std::vector<std::string> labels, int64_t sample_rate, std::vector<double> speeds = {1.0});

  /// Adds a clip: samples (L,) or (1, L) float32, finite, L >= 1. ValueError on NaN/Inf or a bad label.
  void add(int64_t label, const Tensor& samples, const std::string& source = "", int64_t start = 0);

  /// Decodes every catalog clip (audio::load at sample_rate, mono) and trims its leading and
  /// trailing silence (see trim_silence).
  static ClipBank load(const SoundCatalog& catalog, int64_t sample_rate, std::vector<double> speeds = {1.0});

  int64_t size() const { return static_cast<int64_t>(clips_.size()); }
  const BankClip& clip(int64_t i) const;
  const std::vector<BankClip>& clips() const { return clips_; }
  const std::vector<std::string>& labels() const { return labels_; }
  int64_t num_labels() const { return static_cast<int64_t>(labels_.size()); }
  int64_t sample_rate() const { return sample_rate_; }
  const std::vector<double>& speeds() const { return speeds_; }
  /// Index of speed 1.0 in speeds().
  int64_t unit_speed() const { return unit_speed_; }
  /// Indices of the clips of label (ascending).
  const std::vector<int64_t>& clips_of(int64_t label) const;
  /// Labels that have at least one clip (ascending).
  const std::vector<int64_t>& present_labels() const { return present_; }
  /// Total samples of the unit-speed clips.
  int64_t total_samples() const;

 private:
  std::vector<std::string> labels_;
  int64_t sample_rate_;
  std::vector<double> speeds_;
  int64_t unit_speed_ = 0;
  std::vector<BankClip> clips_;
  std::vector<std::vector<int64_t>> by_label_;
  std::vector<int64_t> present_;
};

/// Samples with |x| <= peak * 10^(threshold_db / 20) at either end of x (L,) removed, keeping
/// margin samples of the removed part on each side (a fade-in or decay tail is not cut short).
/// -> [begin, end) into x; a silent x gives [0, 0).
TSE_API std::pair<int64_t, int64_t> trim_silence(const Tensor& x, double threshold_db = -50.0, int64_t margin = 0);

/// How split() holds out test material.
struct SplitOptions {
  int64_t sample_rate = 32000;
  /// Classes with at least min_files_for_file_split files hold out whole files:
  /// max(1, round(file_test_fraction * files)) of them, chosen by a fixed hash of the file name.
  int64_t min_files_for_file_split = 4;
  double file_test_fraction = 0.25;
  /// Smaller classes split every file in time: the last time_test_fraction of its (trimmed)
  /// samples go to the test bank, the rest to the train bank; no sample is in both.
  double time_test_fraction = 0.3;
  /// Speed-perturbation variants pre-computed in the train bank (the test bank has only 1.0).
  std::vector<double> train_speeds{0.9, 0.95, 1.0, 1.05, 1.1};
};

/// The train and test banks of one held-out split (same labels, same rate).
struct HeldOutSplit {
  std::shared_ptr<const ClipBank> train;
  std::shared_ptr<const ClipBank> test;
};

/// Decodes the catalog and splits it with the held-out protocol of SplitOptions. Deterministic.
TSE_API HeldOutSplit split(const SoundCatalog& catalog, const SplitOptions& options = {});
/// split(SoundCatalog::builtin(root), options).
TSE_API HeldOutSplit split_builtin(const std::string& root = "/usr/share/sounds", const SplitOptions& options = {});

/// How MixtureSampler builds its mixtures.
struct MixtureOptions {
  int64_t sample_rate = 32000;     // must equal the bank's
  int64_t segment_samples = 32000; // L of every signal in a batch
  double snr_db_min = -5, snr_db_max = 5;  // target-to-interference SNR ~ U[min, max]
  bool peak_normalize = true;      // audio::mix_at_snr: mixtures peaking above 1 scaled to peak 0.9
  int64_t num_interferers = 1;     // each from a label other than the target's
  bool augment = true;             // false: no gain or speed (looping, placement and crop stay random)
  double gain_db_min = -6, gain_db_max = 6;  // per source, before mixing (with augment)
  bool speed_perturb = true;       // a speed variant ~ U(bank speeds) per source (with augment)
  double loop_probability = 0.5;   // a clip shorter than L is tiled from a random phase, else zero-padded
  /// A source segment whose clip samples (the zero padding of a short clip not counted) have a
  /// mean power below this (dBFS, before gain) is redrawn, deterministically.
  double silence_db = -50;
  int64_t max_draws = 64;          // redraws before giving up with an error
};

/// One batch: B mixtures of L samples, mixture = target + interference.
struct MixtureBatch {
  Tensor mixture, target, interference;  // (B, L) float32
  std::vector<int64_t> target_label;     // the query: the label index of the target, per item
  std::vector<int64_t> interference_label;  // the first interferer's label, per item
  std::vector<double> snr_db;            // the drawn SNR, per item
};

/// Draws targets (class-balanced: a label uniformly, then one of its clips), interferers of other
/// labels, augments and mixes them at a uniform SNR with audio::mix_at_snr. Randomness comes
/// from a counter-based generator keyed by (seed, batch index, item), so batch() is a pure
/// function of (seed, index, batch_size): thread-safe and independent of the thread count.
class TSE_API MixtureSampler {
 public:
  /// ValueError naming the argument when the bank is null, has fewer than 2 labels with clips,
  /// a different sample rate, or the options are out of range.
  MixtureSampler(std::shared_ptr<const ClipBank> bank, MixtureOptions options, uint64_t seed);

  /// Batch number index (>= 0) of batch_size (>= 1) items; items run in parallel.
  MixtureBatch batch(int64_t index, int64_t batch_size) const;

  const MixtureOptions& options() const { return options_; }
  uint64_t seed() const { return seed_; }
  const std::shared_ptr<const ClipBank>& bank() const { return bank_; }

 private:
  std::shared_ptr<const ClipBank> bank_;
  MixtureOptions options_;
  uint64_t seed_;
};

inline constexpr uint64_t kTestMixtureSeed = 20240917;

/// The fixed held-out set: count mixtures of segment_samples at snr_db, peak-normalised, no
/// augmentation, clips shorter than the segment tiled from a random phase (so that target and
/// interferer overlap throughout, not just where a short clip happens to sit); item i's target label is present_labels()[i % labels] (so every label gets
/// count / labels items, the first count % labels one more), its interferer from another label.
TSE_API MixtureBatch make_test_mixtures(const ClipBank& test, int64_t count = 200, double snr_db = 0.0,
                                        int64_t segment_samples = 32000, uint64_t seed = kTestMixtureSeed);

}  // namespace tse::train
