#pragma once
/// \file trainer.hpp
/// The Trainer: trains any models::Separator on batches from a MixtureSampler with our autograd,
/// validates (SI-SDRi per class), logs (metrics CSV, a progress line) and checkpoints.
///
/// Exact resume: a batch is a pure function of (data seed, step), and a checkpoint holds the
/// weights, the optimiser and scheduler state, the global generator (dropout) and the step, so
/// training N steps equals training N/2, stopping (even by SIGKILL), resuming and training the
/// rest, bit for bit, on CPU with a fixed thread count.
///
/// Checkpoints are safetensors files written atomically (temp file, fsync, rename, fsync of the
/// folder): `model.<name>` and `optimizer.<name>` tensors, and metadata with the step, the
/// trainer config, the optimiser / scheduler / generator state, the model's own metadata (under
/// `model.<key>`) and the query encoder. They live in `<output_dir>/checkpoints/step-NNNNNNNN
/// .safetensors`, the last `keep_last` kept, and `<output_dir>/checkpoints/latest` names the
/// newest, replaced atomically after the checkpoint itself is in place.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tse/models/query_encoder.hpp"
#include "tse/models/separator.hpp"
#include "tse/optim/optimizer.hpp"
#include "tse/optim/schedule.hpp"
#include "tse/train/data.hpp"

namespace tse::train {

struct TSE_API TrainerConfig {
  int64_t max_steps = 1000;
  int64_t batch_size = 16;
  std::string loss = "neg_si_sdr";   // "neg_si_sdr" (Saijo et al.) or "clapsep" (-0.9 SNR - 0.1 SI-SNR)
  std::string optimizer = "adamw";   // "adamw" or "sgd"
  double lr = 1e-3;                  // the peak learning rate
  double weight_decay = 1e-2;
  double beta1 = 0.9, beta2 = 0.999, adam_eps = 1e-8;
  bool amsgrad = false;
  double momentum = 0.9;             // sgd
  /// "constant", "warmup_hold_decay" (linear warm-up over warmup_steps, hold for hold_steps,
  /// then x decay_factor every decay_every steps), "cosine" (optional warm-up, down to min_lr
  /// at max_steps) or "plateau" (x plateau_factor after plateau_patience validations without a
  /// better mean SI-SDRi, floor min_lr).
  std::string schedule = "constant";
  int64_t warmup_steps = 0;
  int64_t hold_steps = 0;
  int64_t decay_every = 10000;
  double decay_factor = 0.9;
  double min_lr = 0.0;
  double plateau_factor = 0.3;
  int64_t plateau_patience = 5;
  double grad_clip = 0.0;            // max global 2-norm of the gradients; 0: no clipping
  int64_t eval_every = 0;            // validate every N steps (and at the end); 0: at the end only
  int64_t eval_batch_size = 20;
  int64_t checkpoint_every = 0;      // checkpoint every N steps (and at the end); 0: at the end only
  int64_t keep_last = 3;             // checkpoints kept in <output_dir>/checkpoints
  int64_t log_every = 10;            // progress line / metrics CSV row every N steps
  std::string output_dir;            // "": nothing is written
  bool progress = true;              // a progress line on stderr
  uint64_t seed = 0;                 // seeds the global generator (dropout) at construction
  /// Queries of a model that takes negative ones (CLAPSep: concat(positive, negative) of the
  /// encoder's embeddings of the target's and the interference's labels): "clapsep" draws per
  /// batch positive only (25 %), negative only (25 %) or both (MODELS.md A s.5); "positive" or
  /// "both" always. Validation always gives both. Other models take the target's embedding.
  std::string negative_queries = "clapsep";
  /// "f32", or "bf16": training steps and validation run under AutocastGuard (bf16 GEMM operands,
  /// f32 accumulation; parameters, gradients and optimizer state stay f32), the CLAPSep recipe's
  /// bf16 mixed precision. About 2x faster GEMMs on CPUs with AVX512_BF16.
  std::string precision = "f32";

  /// Every field as a JSON object; from_json starts from the defaults, sets the keys given and
  /// rejects unknown keys and wrong types, naming them, then validates.
  std::string to_json() const;
  static TrainerConfig from_json(const std::string& json);
  /// ValueError naming the field when a value is out of range or unknown.
  void validate() const;
};

/// One optimiser step.
struct TSE_API StepStats {
  int64_t step = 0;               // steps done after this one
  double loss = 0.0;
  double lr = 0.0;                // the learning rate this step used
  double grad_norm = 0.0;         // global 2-norm before clipping
  double seconds = 0.0;           // wall time of the step (data, forward, backward, update)
  double mixtures_per_second = 0.0;
};

/// Separation quality on a fixed set of mixtures.
struct TSE_API EvalResult {
  std::vector<std::string> labels;       // class names, indexed by label
  std::vector<int64_t> target_label;     // per mixture
  std::vector<double> si_sdr;            // per mixture: SI-SDR of the estimate, dB
  std::vector<double> si_sdri;           // per mixture: improvement over the mixture, dB
  std::vector<int64_t> class_count;      // per label
  std::vector<double> class_mean;        // per label mean SI-SDRi (NaN without mixtures)
  std::vector<double> class_median;      // per label median SI-SDRi (NaN without mixtures)
  double mean = 0.0;                     // over all mixtures
  double median = 0.0;
  double seconds = 0.0;
};

/// SI-SDR and SI-SDRi of `model` (eval mode, no gradients) on fixed mixtures, each queried by
/// queries.encode_text of its target's label name; `batch_size` mixtures at a time.
TSE_API EvalResult evaluate(models::Separator& model, const models::QueryEncoder& queries,
                            const std::vector<std::string>& labels, const MixtureBatch& mixtures,
                            int64_t batch_size = 20);

class TSE_API Trainer {
 public:
  /// model: what to train (its parameters with requires_grad are optimised); queries: turns
  /// the data's class names (data->bank()->labels()) into query embeddings (encode_text);
  /// data: the training batches.
  Trainer(std::shared_ptr<models::Separator> model, std::shared_ptr<const models::QueryEncoder> queries,
          std::shared_ptr<const MixtureSampler> data, TrainerConfig config);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  /// The mixtures validated every eval_every steps and at the end of fit().
  void set_validation(MixtureBatch mixtures);

  /// Called after every step; returning false stops fit() (after a checkpoint when output_dir
  /// is set).
  using StepCallback = std::function<bool(const StepStats&)>;
  /// Trains from step() to config.max_steps, validating, logging and checkpointing on schedule.
  /// Returns the last validation (empty without validation mixtures).
  EvalResult fit(const StepCallback& callback = {});
  /// One optimiser step on batch number step(). Error when the loss is not finite (the update
  /// is not applied).
  StepStats train_step();
  /// SI-SDR and SI-SDRi of the model (eval mode, no gradients) on the given mixtures.
  EvalResult evaluate(const MixtureBatch& mixtures) const;

  /// Writes a checkpoint to <output_dir>/checkpoints, updates `latest`, prunes to keep_last;
  /// returns its path. ValueError when output_dir is empty.
  std::string save_checkpoint();
  /// Writes a checkpoint to `path` (atomically).
  void save_checkpoint_to(const std::string& path) const;
  /// Restores weights, optimiser, scheduler, generator and step from a checkpoint file.
  /// ValueError when it was written for another model (type or config) or optimiser.
  void load_checkpoint(const std::string& path);
  /// Resumes from a checkpoint file or from the newest loadable checkpoint of an output
  /// folder (`latest` first, then the others newest first: a damaged file is reported on
  /// stderr and skipped). Returns the file loaded; IOError when there is none.
  std::string resume(const std::string& checkpoint_or_output_dir);
  /// The newest checkpoint a folder's `latest` names ("" when none).
  static std::string latest_checkpoint(const std::string& output_dir);

  /// The model alone with its query encoder (models::load_separator reads it back).
  void export_model(const std::string& path) const;

  int64_t step() const { return step_; }
  const TrainerConfig& config() const { return config_; }
  const std::vector<std::string>& labels() const { return labels_; }
  optim::Optimizer& optimizer() { return *optimizer_; }
  /// Query embeddings (B, query_dim) of the given label indices: the targets' embeddings, for
  /// a model with negative queries concat(target's, zeros) (a positive-only query).
  Tensor queries_for(const std::vector<int64_t>& labels) const;
  /// The queries of a training batch (negative_queries decides the sides for such models).
  Tensor batch_queries(const MixtureBatch& batch) const;

 private:
  void write_metrics_row(const StepStats& s, double val_si_sdri);
  void truncate_metrics_after(int64_t step);

  std::shared_ptr<models::Separator> model_;
  std::shared_ptr<const models::QueryEncoder> queries_;
  std::vector<std::string> labels_;
  std::shared_ptr<const MixtureSampler> data_;
  TrainerConfig config_;
  std::vector<Tensor> params_;
  std::unique_ptr<optim::Optimizer> optimizer_;
  std::unique_ptr<optim::LRScheduler> scheduler_;       // per-step schedules
  std::unique_ptr<optim::ReduceLROnPlateau> plateau_;   // "plateau"
  std::shared_ptr<nn::Module> loss_;
  Tensor query_table_;   // (V, D)
  MixtureBatch validation_;
  bool has_validation_ = false;
  int64_t step_ = 0;
};

}  // namespace tse::train
