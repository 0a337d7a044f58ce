#include "tse/train/trainer.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "src/core/atomic_file.hpp"
#include "src/core/config_fields.hpp"
#include "tse/autograd/grad_mode.hpp"
#include "tse/core/autocast.hpp"
#include "tse/core/error.hpp"
#include "tse/io/safetensors.hpp"
#include "tse/metrics/metrics.hpp"
#include "tse/nn/loss.hpp"
#include "tse/ops/factory.hpp"
#include "tse/ops/random.hpp"
#include "tse/ops/shape.hpp"
#include "tse/optim/clip.hpp"

namespace fs = std::filesystem;

namespace tse::train {
namespace {

enum class QuerySides { positive, negative, both };

// A model with negative queries takes concat(positive, negative) of two embeddings.
int64_t embedding_dim_for(const models::Separator& m) {
  return m.supports_negative_queries() ? m.query_dim() / 2 : m.query_dim();
}

// The query rows of a batch: the target's embedding, or for a model with negative queries
// concat(target's or zeros, interference's or zeros) as `sides` says.
Tensor compose_queries(const models::Separator& model, const Tensor& table, const std::vector<int64_t>& target,
                       const std::vector<int64_t>& interference, QuerySides sides) {
  const int64_t v = table.size(0), d = table.size(1);
  const bool negative = model.supports_negative_queries();
  const int64_t width = negative ? 2 * d : d;
  const Tensor t = table.to(DType::f32).contiguous();
  const float* src = static_cast<const float*>(t.data_ptr());
  Tensor out = ops::zeros({static_cast<int64_t>(target.size()), width}, DType::f32);
  float* dst = static_cast<float*>(out.data_ptr());
  auto row = [&](int64_t label, float* to) {
    TSE_CHECK(label >= 0 && label < v, "Trainer: label index ", label, " outside the ", v, " labels");
    std::copy(src + label * d, src + (label + 1) * d, to);
  };
  for (size_t i = 0; i < target.size(); ++i) {
    float* r = dst + static_cast<int64_t>(i) * width;
    if (!negative || sides != QuerySides::negative) row(target[i], r);
    if (negative && sides != QuerySides::positive) {
      TSE_CHECK(i < interference.size(), "Trainer: no interference label for mixture ", i);
      row(interference[i], r + d);
    }
  }
  return out;
}


constexpr const char* kCheckpointFormat = "tse.train.checkpoint";
constexpr const char* kCheckpointVersion = "1";

const detail::ConfigFields<TrainerConfig>& config_fields() {
  using C = TrainerConfig;
  static const auto* fields = [] {
    auto* f = new detail::ConfigFields<C>("TrainerConfig");
    f->add("max_steps", &C::max_steps)
        .add("batch_size", &C::batch_size)
        .add("loss", &C::loss)
        .add("optimizer", &C::optimizer)
        .add("lr", &C::lr)
        .add("weight_decay", &C::weight_decay)
        .add("beta1", &C::beta1)
        .add("beta2", &C::beta2)
        .add("adam_eps", &C::adam_eps)
        .add("amsgrad", &C::amsgrad)
        .add("momentum", &C::momentum)
        .add("schedule", &C::schedule)
        .add("warmup_steps", &C::warmup_steps)
        .add("hold_steps", &C::hold_steps)
        .add("decay_every", &C::decay_every)
        .add("decay_factor", &C::decay_factor)
        .add("min_lr", &C::min_lr)
        .add("plateau_factor", &C::plateau_factor)
        .add("plateau_patience", &C::plateau_patience)
        .add("grad_clip", &C::grad_clip)
        .add("eval_every", &C::eval_every)
        .add("eval_batch_size", &C::eval_batch_size)
        .add("checkpoint_every", &C::checkpoint_every)
        .add("keep_last", &C::keep_last)
        .add("log_every", &C::log_every)
        .add("output_dir", &C::output_dir)
        .add("progress", &C::progress)
        .add("seed", &C::seed)
        .add("negative_queries", &C::negative_queries)
        .add("precision", &C::precision);
    return f;
  }();
  return *fields;
}

double median_of(std::vector<double> v) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string checkpoint_name(int64_t step) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "step-%08lld.safetensors", static_cast<long long>(step));
  return buf;
}

// Step of a "step-NNNNNNNN.safetensors" name, or -1.
int64_t checkpoint_step(const std::string& name) {
  if (name.size() != 25 || name.rfind("step-", 0) != 0 || name.substr(13) != ".safetensors") return -1;
  int64_t step = 0;
  for (size_t i = 5; i < 13; ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
    step = step * 10 + (name[i] - '0');
  }
  return step;
}

// Checkpoints of a folder, newest first.
std::vector<std::pair<int64_t, fs::path>> list_checkpoints(const fs::path& dir) {
  std::vector<std::pair<int64_t, fs::path>> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const int64_t s = checkpoint_step(e.path().filename().string());
    if (s >= 0 && e.is_regular_file()) out.emplace_back(s, e.path());
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  return out;
}

void write_text_atomically(const std::string& path, const std::string& text, const char* who) {
  detail::AtomicFile f(path, who);
  f.write(text.data(), text.size());
  f.commit();
}

std::string format_seconds(double s) {
  const int64_t t = static_cast<int64_t>(std::llround(std::max(0.0, s)));
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(t / 3600),
                  static_cast<long long>(t / 60 % 60), static_cast<long long>(t % 60));
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", static_cast<long long>(t / 60), static_cast<long long>(t % 60));
  return buf;
}

}  // namespace

// ---- config --------------------------------------------------------------------------------

std::string TrainerConfig::to_json() const { return config_fields().to_json(*this).dump(); }

TrainerConfig TrainerConfig::from_json(const std::string& json) {
  TrainerConfig c = config_fields().from_json_text(json);
  c.validate();
  return c;
}

void TrainerConfig::validate() const {
  auto positive = [](const char* field, int64_t v) {
    TSE_CHECK(v > 0, "TrainerConfig: ", field, " must be positive, got ", v);
  };
  auto non_negative = [](const char* field, double v) {
    TSE_CHECK(v >= 0 && std::isfinite(v), "TrainerConfig: ", field, " must be >= 0, got ", v);
  };
  TSE_CHECK(max_steps >= 0, "TrainerConfig: max_steps must be >= 0, got ", max_steps);
  positive("batch_size", batch_size);
  positive("eval_batch_size", eval_batch_size);
  positive("keep_last", keep_last);
  positive("log_every", log_every);
  positive("decay_every", decay_every);
  positive("plateau_patience", plateau_patience);
  TSE_CHECK(negative_queries == "clapsep" || negative_queries == "positive" || negative_queries == "both",
            "TrainerConfig: negative_queries must be \"clapsep\", \"positive\" or \"both\", got \"", negative_queries, "\"");
  TSE_CHECK(precision == "f32" || precision == "bf16", "TrainerConfig: precision must be \"f32\" or \"bf16\", got \"",
            precision, "\"");
  TSE_CHECK(loss == "neg_si_sdr" || loss == "clapsep", "TrainerConfig: loss must be \"neg_si_sdr\" or \"clapsep\", got \"",
            loss, "\"");
  TSE_CHECK(optimizer == "adamw" || optimizer == "sgd", "TrainerConfig: optimizer must be \"adamw\" or \"sgd\", got \"",
            optimizer, "\"");
  TSE_CHECK(schedule == "constant" || schedule == "warmup_hold_decay" || schedule == "cosine" || schedule == "plateau",
            "TrainerConfig: schedule must be \"constant\", \"warmup_hold_decay\", \"cosine\" or \"plateau\", got \"",
            schedule, "\"");
  TSE_CHECK(lr > 0 && std::isfinite(lr), "TrainerConfig: lr must be positive, got ", lr);
  non_negative("weight_decay", weight_decay);
  non_negative("min_lr", min_lr);
  non_negative("grad_clip", grad_clip);
  non_negative("momentum", momentum);
  TSE_CHECK(warmup_steps >= 0 && hold_steps >= 0 && eval_every >= 0 && checkpoint_every >= 0,
            "TrainerConfig: warmup_steps, hold_steps, eval_every and checkpoint_every must be >= 0");
  TSE_CHECK(decay_factor > 0 && decay_factor <= 1, "TrainerConfig: decay_factor must be in (0, 1], got ", decay_factor);
  TSE_CHECK(plateau_factor > 0 && plateau_factor < 1, "TrainerConfig: plateau_factor must be in (0, 1), got ",
            plateau_factor);
}

// ---- trainer -------------------------------------------------------------------------------

Trainer::Trainer(std::shared_ptr<models::Separator> model, std::shared_ptr<const models::QueryEncoder> queries,
                 std::shared_ptr<const MixtureSampler> data, TrainerConfig config)
    : model_(std::move(model)), queries_(std::move(queries)), data_(std::move(data)), config_(std::move(config)) {
  TSE_CHECK(model_, "Trainer: model is null");
  TSE_CHECK(queries_, "Trainer: queries is null");
  TSE_CHECK(data_, "Trainer: data is null");
  labels_ = data_->bank()->labels();
  TSE_CHECK(!labels_.empty(), "Trainer: the data has no labels");
  TSE_CHECK(data_->options().sample_rate == model_->sample_rate(), "Trainer: the data is at ",
            data_->options().sample_rate, " Hz but the model at ", model_->sample_rate(), " Hz");
  config_.validate();
  manual_seed(config_.seed);
  query_table_ = queries_->encode_text(labels_);
  TSE_CHECK(query_table_.size(1) == embedding_dim_for(*model_), "Trainer: the query encoder gives ", query_table_.size(1),
            "-d embeddings but the model takes ", embedding_dim_for(*model_),
            model_->supports_negative_queries() ? " (half its query: positive and negative side by side)" : "");
  for (const Tensor& p : model_->parameters())
    if (p.requires_grad()) params_.push_back(p);
  TSE_CHECK(!params_.empty(), "Trainer: the model has no trainable parameters");

  if (config_.optimizer == "adamw") {
    optimizer_ = std::make_unique<optim::AdamW>(
        params_, optim::AdamWOptions{.lr = config_.lr,
                                     .beta1 = config_.beta1,
                                     .beta2 = config_.beta2,
                                     .eps = config_.adam_eps,
                                     .weight_decay = config_.weight_decay,
                                     .amsgrad = config_.amsgrad});
  } else {
    optimizer_ = std::make_unique<optim::SGD>(
        params_, optim::SGDOptions{.lr = config_.lr, .momentum = config_.momentum, .weight_decay = config_.weight_decay});
  }
  if (config_.schedule == "warmup_hold_decay") {
    scheduler_ = std::make_unique<optim::WarmupHoldDecay>(*optimizer_, config_.warmup_steps, config_.hold_steps,
                                                          config_.decay_factor, config_.decay_every);
  } else if (config_.schedule == "cosine") {
    scheduler_ = std::make_unique<optim::CosineSchedule>(*optimizer_, std::max<int64_t>(config_.max_steps, 1),
                                                         config_.warmup_steps, config_.min_lr);
  } else if (config_.schedule == "plateau") {
    plateau_ = std::make_unique<optim::ReduceLROnPlateau>(
        *optimizer_, optim::PlateauOptions{.mode = "max",
                                           .factor = config_.plateau_factor,
                                           .patience = config_.plateau_patience,
                                           .min_lr = config_.min_lr});
  }
  if (config_.loss == "clapsep")
    loss_ = std::make_shared<nn::CLAPSepLoss>();
  else
    loss_ = std::make_shared<nn::NegSISDR>();
}

Trainer::~Trainer() = default;

void Trainer::set_validation(MixtureBatch mixtures) {
  TSE_CHECK(mixtures.mixture.defined() && mixtures.mixture.dim() == 2 && mixtures.mixture.size(0) > 0,
            "Trainer.set_validation: expected a batch of (N, L) mixtures");
  TSE_CHECK(static_cast<int64_t>(mixtures.target_label.size()) == mixtures.mixture.size(0),
            "Trainer.set_validation: one target label per mixture expected");
  validation_ = std::move(mixtures);
  has_validation_ = true;
}

Tensor Trainer::queries_for(const std::vector<int64_t>& labels) const {
  return compose_queries(*model_, query_table_, labels, {}, QuerySides::positive);
}

Tensor Trainer::batch_queries(const MixtureBatch& batch) const {
  QuerySides sides = QuerySides::both;
  if (config_.negative_queries == "positive") {
    sides = QuerySides::positive;
  } else if (config_.negative_queries == "clapsep") {
    // One draw per batch, a pure function of (seed, step) so that a resumed run draws the same.
    uint64_t z = config_.seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(step_) + 0x632BE59BD9B4E019ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    const double u = static_cast<double>((z ^ (z >> 31)) >> 11) * 0x1p-53;
    sides = u < 0.25 ? QuerySides::positive : (u < 0.5 ? QuerySides::negative : QuerySides::both);
  }
  return compose_queries(*model_, query_table_, batch.target_label, batch.interference_label, sides);
}

StepStats Trainer::train_step() {
  const auto t0 = std::chrono::steady_clock::now();
  const MixtureBatch batch = data_->batch(step_, config_.batch_size);
  const Tensor query = batch_queries(batch);
  model_->train();
  optimizer_->zero_grad(/*set_to_none=*/true);
  const AutocastGuard autocast(config_.precision == "bf16");  // the backward follows the forward's mode
  const Tensor estimate = model_->forward(batch.mixture, query);
  Tensor loss = config_.loss == "clapsep"
                    ? static_cast<const nn::CLAPSepLoss&>(*loss_).forward(estimate, batch.target)
                    : static_cast<const nn::NegSISDR&>(*loss_).forward(estimate, batch.target);
  const double loss_value = loss.item();
  TSE_CHECK_T(::tse::Error, std::isfinite(loss_value), "Trainer: the loss is ", loss_value, " at step ", step_,
            " (the update was not applied); lower the learning rate or enable grad_clip");
  loss.backward();
  StepStats s;
  s.lr = optimizer_->lr(0);
  const double clip = config_.grad_clip > 0 ? config_.grad_clip : std::numeric_limits<double>::max();  // max: the norm only
  s.grad_norm = optim::clip_grad_norm_(params_, clip);
  optimizer_->step();
  if (scheduler_) scheduler_->step();
  ++step_;
  s.step = step_;
  s.loss = loss_value;
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  s.mixtures_per_second = static_cast<double>(config_.batch_size) / s.seconds;
  return s;
}

EvalResult evaluate(models::Separator& model, const models::QueryEncoder& queries, const std::vector<std::string>& labels,
                    const MixtureBatch& mixtures, int64_t batch_size) {
  TSE_CHECK(batch_size > 0, "evaluate: batch_size must be positive, got ", batch_size);
  TSE_CHECK(!labels.empty(), "evaluate: labels is empty");
  TSE_CHECK(mixtures.mixture.defined() && mixtures.mixture.dim() == 2 && mixtures.target.defined() &&
                mixtures.target.sizes() == mixtures.mixture.sizes(),
            "evaluate: expected (N, L) mixtures and targets of one shape");
  TSE_CHECK(static_cast<int64_t>(mixtures.target_label.size()) == mixtures.mixture.size(0),
            "evaluate: one target label per mixture expected");
  const Tensor table = queries.encode_text(labels);
  TSE_CHECK(table.size(1) == embedding_dim_for(model), "evaluate: the query encoder gives ", table.size(1),
            "-d embeddings but the model takes ", embedding_dim_for(model));
  const auto t0 = std::chrono::steady_clock::now();
  EvalResult r;
  r.labels = labels;
  const int64_t n = mixtures.mixture.size(0);
  r.target_label = mixtures.target_label;
  for (int64_t start = 0; start < n; start += batch_size) {
    const int64_t len = std::min(batch_size, n - start);
    const Tensor mix = mixtures.mixture.narrow(0, start, len).contiguous();
    const Tensor ref = mixtures.target.narrow(0, start, len).contiguous();
    const std::vector<int64_t> lab(mixtures.target_label.begin() + start, mixtures.target_label.begin() + start + len);
    std::vector<int64_t> interf;
    if (model.supports_negative_queries()) {
      TSE_CHECK(mixtures.interference_label.size() == mixtures.target_label.size(),
                "evaluate: a model with negative queries needs one interference label per mixture");
      interf.assign(mixtures.interference_label.begin() + start, mixtures.interference_label.begin() + start + len);
    }
    const Tensor est = model.separate(mix, compose_queries(model, table, lab, interf, QuerySides::both));
    const Tensor sdr = metrics::si_sdr(est, ref).to(DType::f64).contiguous();
    const Tensor sdri = metrics::si_sdri(est, ref, mix).to(DType::f64).contiguous();
    const double* a = static_cast<const double*>(sdr.data_ptr());
    const double* b = static_cast<const double*>(sdri.data_ptr());
    r.si_sdr.insert(r.si_sdr.end(), a, a + len);
    r.si_sdri.insert(r.si_sdri.end(), b, b + len);
  }
  const size_t v = labels.size();
  std::vector<std::vector<double>> per_class(v);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t l = r.target_label[static_cast<size_t>(i)];
    TSE_CHECK(l >= 0 && l < static_cast<int64_t>(v), "Trainer.evaluate: label index ", l, " outside the ", v, " labels");
    per_class[static_cast<size_t>(l)].push_back(r.si_sdri[static_cast<size_t>(i)]);
  }
  for (const auto& c : per_class) {
    r.class_count.push_back(static_cast<int64_t>(c.size()));
    double sum = 0;
    for (double x : c) sum += x;
    r.class_mean.push_back(c.empty() ? std::numeric_limits<double>::quiet_NaN() : sum / static_cast<double>(c.size()));
    r.class_median.push_back(median_of(c));
  }
  double sum = 0;
  for (double x : r.si_sdri) sum += x;
  r.mean = n ? sum / static_cast<double>(n) : std::numeric_limits<double>::quiet_NaN();
  r.median = median_of(r.si_sdri);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

EvalResult Trainer::evaluate(const MixtureBatch& mixtures) const {
  const AutocastGuard autocast(config_.precision == "bf16");
  return train::evaluate(*model_, *queries_, labels_, mixtures, config_.eval_batch_size);
}

EvalResult Trainer::fit(const StepCallback& callback) {
  EvalResult last;
  const bool tty = config_.progress && isatty(STDERR_FILENO);
  if (!config_.output_dir.empty()) {
    fs::create_directories(fs::path(config_.output_dir) / "checkpoints");
    truncate_metrics_after(step_);
  }
  const int64_t first = step_;
  const auto start = std::chrono::steady_clock::now();
  double ema_rate = 0.0, window_loss = 0.0;
  int64_t window_steps = 0;
  bool stopped = false, evaluated_now = false, saved_now = false;
  while (step_ < config_.max_steps && !stopped) {
    const StepStats s = train_step();
    evaluated_now = saved_now = false;
    ema_rate = ema_rate == 0.0 ? s.mixtures_per_second : 0.9 * ema_rate + 0.1 * s.mixtures_per_second;
    window_loss += s.loss;
    ++window_steps;
    double val = std::numeric_limits<double>::quiet_NaN();
    if (has_validation_ && config_.eval_every > 0 && step_ % config_.eval_every == 0) {
      last = evaluate(validation_);
      val = last.mean;
      evaluated_now = true;
      if (plateau_) plateau_->step(last.mean);
    }
    if (!config_.output_dir.empty() && (step_ % config_.log_every == 0 || evaluated_now)) write_metrics_row(s, val);
    if (config_.progress && (tty || step_ % config_.log_every == 0 || evaluated_now)) {
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const double per_step = elapsed / static_cast<double>(step_ - first);
      const int64_t total = config_.max_steps;
      const int width = 24;
      const int filled = static_cast<int>(width * step_ / std::max<int64_t>(total, 1));
      std::string bar(static_cast<size_t>(filled), '#');
      bar.resize(width, '.');
      std::fprintf(stderr, "%s[%s] step %lld/%lld  loss %.3f  lr %.2e  %.1f mix/s  %s<%s", tty ? "\r" : "",
                   bar.c_str(), static_cast<long long>(step_), static_cast<long long>(total),
                   window_loss / static_cast<double>(window_steps), s.lr, ema_rate, format_seconds(elapsed).c_str(),
                   format_seconds(per_step * static_cast<double>(total - step_)).c_str());
      if (evaluated_now) std::fprintf(stderr, "  val SI-SDRi %.2f dB", last.mean);
      std::fprintf(stderr, "%s", tty && !evaluated_now ? "\033[K" : "\n");
      std::fflush(stderr);
      if (!tty || evaluated_now) window_loss = 0.0, window_steps = 0;
    }
    if (!config_.output_dir.empty() && config_.checkpoint_every > 0 && step_ % config_.checkpoint_every == 0) {
      save_checkpoint();
      saved_now = true;
    }
    if (callback && !callback(s)) stopped = true;
  }
  if (tty) std::fprintf(stderr, "\n");
  if (has_validation_ && !evaluated_now) {
    last = evaluate(validation_);
    if (!config_.output_dir.empty()) {
      StepStats s;
      s.step = step_;
      s.lr = optimizer_->lr(0);
      s.loss = std::numeric_limits<double>::quiet_NaN();
      write_metrics_row(s, last.mean);
    }
  }
  if (!config_.output_dir.empty() && !saved_now && step_ > first) save_checkpoint();
  return last;
}

// ---- checkpoints ---------------------------------------------------------------------------

void Trainer::save_checkpoint_to(const std::string& path) const {
  nn::NamedTensors tensors;
  for (auto& [name, t] : model_->state_dict()) tensors.emplace_back("model." + name, t);
  for (auto& [name, t] : optimizer_->state_tensors()) tensors.emplace_back("optimizer." + name, t);
  std::map<std::string, std::string> meta;
  meta["format"] = kCheckpointFormat;
  meta["format_version"] = kCheckpointVersion;
  meta["step"] = std::to_string(step_);
  meta["trainer_config"] = config_.to_json();
  meta["optimizer"] = optimizer_->state_json();
  if (scheduler_) meta["scheduler"] = scheduler_->state_json();
  if (plateau_) meta["scheduler"] = plateau_->state_json();
  const GeneratorState rng = get_rng_state();
  meta["rng"] = nlohmann::json{{"seed", rng.seed}, {"offset", rng.offset}}.dump();
  meta["labels"] = nlohmann::json(labels_).dump();
  try {
    meta["query_encoder"] = queries_->to_json();
  } catch (const NotImplementedError&) {
  }
  for (const auto& [k, v] : model_->metadata()) meta["model." + k] = v;
  io::save_safetensors(path, tensors, meta);
}

std::string Trainer::save_checkpoint() {
  TSE_CHECK(!config_.output_dir.empty(), "Trainer.save_checkpoint: output_dir is not set");
  const fs::path dir = fs::path(config_.output_dir) / "checkpoints";
  fs::create_directories(dir);
  const fs::path path = dir / checkpoint_name(step_);
  save_checkpoint_to(path.string());
  // The pointer moves only once the checkpoint it names is durable.
  write_text_atomically((dir / "latest").string(), path.filename().string() + "\n", "Trainer.save_checkpoint");
  const auto all = list_checkpoints(dir);
  for (size_t i = static_cast<size_t>(config_.keep_last); i < all.size(); ++i) {
    std::error_code ec;
    fs::remove(all[i].second, ec);
  }
  return path.string();
}

void Trainer::load_checkpoint(const std::string& path) {
  const io::SafetensorsFile file = io::SafetensorsFile::open(path);
  const auto& meta = file.metadata();
  auto field = [&](const std::string& key) -> const std::string& {
    auto it = meta.find(key);
    TSE_CHECK(it != meta.end(), "Trainer.load_checkpoint: '", path, "' has no \"", key,
              "\" metadata (not a libtse training checkpoint?)");
    return it->second;
  };
  TSE_CHECK(field("format") == kCheckpointFormat, "Trainer.load_checkpoint: '", path, "' is not a training checkpoint");
  TSE_CHECK(field("format_version") == kCheckpointVersion, "Trainer.load_checkpoint: '", path, "' has format version ",
            field("format_version"), "; this libtse reads version ", kCheckpointVersion);
  for (const auto& [k, v] : model_->metadata()) {
    const std::string& theirs = field("model." + k);
    TSE_CHECK(theirs == v, "Trainer.load_checkpoint: '", path, "' was written for another model: its ", k, " is ", theirs,
              ", this model's is ", v);
  }
  const std::string labels = nlohmann::json(labels_).dump();
  TSE_CHECK(field("labels") == labels, "Trainer.load_checkpoint: '", path, "' was trained on the labels ",
            field("labels"), ", this trainer has ", labels);
  nn::NamedTensors model_state;
  std::map<std::string, Tensor> optim_state;
  for (const auto& name : file.names()) {
    if (name.rfind("model.", 0) == 0)
      model_state.emplace_back(name.substr(6), file.tensor(name));
    else if (name.rfind("optimizer.", 0) == 0)
      optim_state.emplace(name.substr(10), file.tensor(name));
    else
      throw ValueError("Trainer.load_checkpoint: '" + path + "' holds an unexpected tensor \"" + name + "\"");
  }
  int64_t step = 0;
  try {
    step = std::stoll(field("step"));
  } catch (const std::exception&) {
    throw ValueError("Trainer.load_checkpoint: '" + path + "' has a malformed step \"" + field("step") + "\"");
  }
  GeneratorState rng;
  try {
    const auto j = nlohmann::json::parse(field("rng"));
    rng.seed = j.at("seed").get<uint64_t>();
    rng.offset = j.at("offset").get<uint64_t>();
  } catch (const nlohmann::json::exception&) {
    throw ValueError("Trainer.load_checkpoint: '" + path + "' has a malformed generator state");
  }
  // Everything checks out or throws before anything changes: the model first (it validates all
  // keys before copying), then the optimiser and scheduler states.
  model_->load_state_dict(model_state);
  optimizer_->load_state(optim_state, field("optimizer"));
  if (scheduler_) scheduler_->load_state_json(field("scheduler"));
  if (plateau_) plateau_->load_state_json(field("scheduler"));
  set_rng_state(rng);
  step_ = step;
}

std::string Trainer::latest_checkpoint(const std::string& output_dir) {
  const fs::path dir = fs::path(output_dir) / "checkpoints";
  std::ifstream in(dir / "latest");
  std::string name;
  if (!in || !std::getline(in, name) || checkpoint_step(name) < 0) return "";
  std::error_code ec;
  return fs::is_regular_file(dir / name, ec) ? (dir / name).string() : "";
}

std::string Trainer::resume(const std::string& checkpoint_or_output_dir) {
  std::error_code ec;
  if (!fs::is_directory(checkpoint_or_output_dir, ec)) {
    TSE_CHECK_T(::tse::IOError, fs::is_regular_file(checkpoint_or_output_dir, ec), "Trainer.resume: '", checkpoint_or_output_dir,
                 "' is neither a checkpoint file nor an output folder");
    load_checkpoint(checkpoint_or_output_dir);
    return checkpoint_or_output_dir;
  }
  std::vector<std::string> candidates;
  if (const std::string latest = latest_checkpoint(checkpoint_or_output_dir); !latest.empty()) candidates.push_back(latest);
  for (const auto& [s, p] : list_checkpoints(fs::path(checkpoint_or_output_dir) / "checkpoints"))
    if (std::find(candidates.begin(), candidates.end(), p.string()) == candidates.end()) candidates.push_back(p.string());
  for (const auto& c : candidates) {
    try {
      load_checkpoint(c);
      return c;
    } catch (const ValueError&) {
      throw;  // a sound file for another model or optimiser: the user must know
    } catch (const std::exception& e) {
      std::fprintf(stderr, "Trainer.resume: skipping '%s': %s\n", c.c_str(), e.what());
    }
  }
  throw IOError("Trainer.resume: no loadable checkpoint in '" + checkpoint_or_output_dir + "/checkpoints'");
}

void Trainer::export_model(const std::string& path) const {
  std::map<std::string, std::string> extra;
  try {
    extra["query_encoder"] = queries_->to_json();
  } catch (const NotImplementedError&) {
  }
  extra["trained_steps"] = std::to_string(step_);
  model_->save(path, extra);
}

// ---- metrics CSV ---------------------------------------------------------------------------

void Trainer::write_metrics_row(const StepStats& s, double val_si_sdri) {
  const fs::path path = fs::path(config_.output_dir) / "metrics.csv";
  const bool fresh = !fs::exists(path);
  std::ofstream out(path, std::ios::app);
  TSE_CHECK_T(::tse::IOError, out.good(), "Trainer: cannot write '", path.string(), "'");
  if (fresh) out << "step,loss,lr,grad_norm,mixtures_per_s,val_si_sdri\n";
  auto num = [](double x) {
    if (!std::isfinite(x)) return std::string();
    std::ostringstream os;
    os.precision(7);
    os << x;
    return os.str();
  };
  out << s.step << ',' << num(s.loss) << ',' << num(s.lr) << ',' << num(s.grad_norm) << ','
      << num(s.mixtures_per_second) << ',' << num(val_si_sdri) << '\n';
}

// On (re)start, rows past the resumed step belong to a run that was cut off: drop them so the
// file describes one run.
void Trainer::truncate_metrics_after(int64_t step) {
  const fs::path path = fs::path(config_.output_dir) / "metrics.csv";
  std::error_code ec;
  if (!fs::exists(path, ec)) return;
  if (step == 0) {
    fs::remove(path, ec);
    return;
  }
  std::ifstream in(path);
  std::string line, kept;
  bool header = true;
  while (std::getline(in, line)) {
    if (header) {
      kept += line + "\n";
      header = false;
      continue;
    }
    const auto comma = line.find(',');
    try {
      if (std::stoll(line.substr(0, comma)) <= step) kept += line + "\n";
    } catch (const std::exception&) {
    }
  }
  in.close();
  write_text_atomically(path.string(), kept, "Trainer");
}

}  // namespace tse::train
