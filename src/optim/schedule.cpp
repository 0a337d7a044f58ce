// Learning-rate schedules: the step-driven base (lr = lr_at(initial_lr, k)), Saijo et al.'s
// warm-up / hold / step decay, cosine annealing, and PyTorch's ReduceLROnPlateau.
#include "tse/optim/schedule.hpp"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <numbers>

namespace tse::optim {

namespace {

nlohmann::json parse(const std::string& json, const std::string& who, const std::string& type) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json);
  } catch (const nlohmann::json::exception& e) {
    throw ValueError(who + ": the state JSON does not parse: " + e.what());
  }
  TSE_CHECK(j.is_object() && j.contains("type") && j.contains("step"), who,
            ": the state JSON must be an object with 'type' and 'step'");
  TSE_CHECK(j["type"].is_string() && j["type"].get<std::string>() == type, who, ": the state is of scheduler ",
            j["type"].dump(), ", this scheduler is ", type);
  TSE_CHECK(j["step"].is_number_integer() && j["step"].get<int64_t>() >= 0, who,
            ": 'step' must be an integer >= 0, got ", j["step"].dump());
  return j;
}

// +-inf (ReduceLROnPlateau's initial best) has no JSON number: written as a string.
nlohmann::json encode(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

double decode(const nlohmann::json& v, const std::string& who, const char* key) {
  if (v.is_string() && v.get<std::string>() == "inf") return std::numeric_limits<double>::infinity();
  if (v.is_string() && v.get<std::string>() == "-inf") return -std::numeric_limits<double>::infinity();
  TSE_CHECK(v.is_number(), who, ": '", key, "' must be a number, got ", v.dump());
  return v.get<double>();
}

void check_settings(const nlohmann::json& j, const std::vector<std::pair<std::string, double>>& ours,
                    const std::string& who) {
  for (const auto& [k, v] : ours) {
    TSE_CHECK(j.contains(k), who, ": the state JSON has no '", k, "'");
    const double theirs = decode(j[k], who, k.c_str());
    TSE_CHECK(theirs == v, who, ": the state has ", k, " = ", theirs, ", this scheduler has ", v);
  }
}

}  // namespace

// ---- LRScheduler --------------------------------------------------------------------------------

void LRScheduler::apply() {
  last_lr_.clear();
  for (size_t g = 0; g < opt_.num_groups(); ++g) {
    const double lr = lr_at(opt_.param_groups()[g].initial_lr, step_);
    opt_.set_lr(g, lr);
    last_lr_.push_back(lr);
  }
}

void LRScheduler::step() {
  ++step_;
  apply();
}

std::string LRScheduler::state_json() const {
  nlohmann::ordered_json j;
  j["type"] = type_name();
  j["step"] = step_;
  for (const auto& [k, v] : settings()) j[k] = encode(v);
  return j.dump();
}

void LRScheduler::load_state_json(const std::string& json) {
  const std::string who = type_name() + ".load_state_json";
  const nlohmann::json j = parse(json, who, type_name());
  check_settings(j, settings(), who);
  step_ = j["step"].get<int64_t>();
  last_lr_.clear();
  for (size_t g = 0; g < opt_.num_groups(); ++g) last_lr_.push_back(lr_at(opt_.param_groups()[g].initial_lr, step_));
}

// ---- WarmupHoldDecay ----------------------------------------------------------------------------

WarmupHoldDecay::WarmupHoldDecay(Optimizer& optimizer, int64_t warmup_steps, int64_t hold_steps, double decay_factor,
                                 int64_t decay_every)
    : LRScheduler(optimizer), warmup_(warmup_steps), hold_(hold_steps), every_(decay_every), decay_(decay_factor) {
  TSE_CHECK(warmup_steps >= 0, "WarmupHoldDecay: 'warmup_steps' must be >= 0, got ", warmup_steps);
  TSE_CHECK(hold_steps >= 0, "WarmupHoldDecay: 'hold_steps' must be >= 0, got ", hold_steps);
  TSE_CHECK(decay_factor > 0.0 && decay_factor <= 1.0, "WarmupHoldDecay: 'decay_factor' must be in (0, 1], got ",
            decay_factor);
  TSE_CHECK(decay_every >= 1, "WarmupHoldDecay: 'decay_every' must be >= 1, got ", decay_every);
  apply();
}

double WarmupHoldDecay::lr_at(double initial_lr, int64_t k) const {
  const int64_t n = k + 1;
  if (n <= warmup_) return initial_lr * static_cast<double>(n) / static_cast<double>(warmup_);
  const int64_t past = std::max<int64_t>(0, n - 1 - warmup_ - hold_);
  return initial_lr * std::pow(decay_, static_cast<double>(past / every_));
}

std::vector<std::pair<std::string, double>> WarmupHoldDecay::settings() const {
  return {{"warmup_steps", static_cast<double>(warmup_)},
          {"hold_steps", static_cast<double>(hold_)},
          {"decay_factor", decay_},
          {"decay_every", static_cast<double>(every_)}};
}

// ---- CosineSchedule -----------------------------------------------------------------------------

CosineSchedule::CosineSchedule(Optimizer& optimizer, int64_t total_steps, int64_t warmup_steps, double min_lr)
    : LRScheduler(optimizer), total_(total_steps), warmup_(warmup_steps), min_lr_(min_lr) {
  TSE_CHECK(total_steps >= 1, "CosineSchedule: 'total_steps' must be >= 1, got ", total_steps);
  TSE_CHECK(warmup_steps >= 0 && warmup_steps < total_steps,
            "CosineSchedule: 'warmup_steps' must be in [0, total_steps), got ", warmup_steps, " with total_steps ",
            total_steps);
  TSE_CHECK(std::isfinite(min_lr) && min_lr >= 0.0, "CosineSchedule: 'min_lr' must be a finite number >= 0, got ",
            min_lr);
  apply();
}

double CosineSchedule::lr_at(double initial_lr, int64_t k) const {
  const int64_t n = k + 1;
  if (n <= warmup_) return initial_lr * static_cast<double>(n) / static_cast<double>(warmup_);
  const double t =
      std::min(1.0, static_cast<double>(n - 1 - warmup_) / static_cast<double>(total_ - warmup_));
  return min_lr_ + (initial_lr - min_lr_) * 0.5 * (1.0 + std::cos(std::numbers::pi * t));
}

std::vector<std::pair<std::string, double>> CosineSchedule::settings() const {
  return {{"total_steps", static_cast<double>(total_)},
          {"warmup_steps", static_cast<double>(warmup_)},
          {"min_lr", min_lr_}};
}

// ---- ReduceLROnPlateau --------------------------------------------------------------------------

ReduceLROnPlateau::ReduceLROnPlateau(Optimizer& optimizer, const PlateauOptions& o) : LRScheduler(optimizer), o_(o) {
  TSE_CHECK(o.mode == "min" || o.mode == "max", "ReduceLROnPlateau: 'mode' must be \"min\" or \"max\", got \"",
            o.mode, "\"");
  TSE_CHECK(o.threshold_mode == "rel" || o.threshold_mode == "abs",
            "ReduceLROnPlateau: 'threshold_mode' must be \"rel\" or \"abs\", got \"", o.threshold_mode, "\"");
  TSE_CHECK(o.factor >= 0.0 && o.factor < 1.0, "ReduceLROnPlateau: 'factor' must be in [0, 1), got ", o.factor);
  TSE_CHECK(o.patience >= 0, "ReduceLROnPlateau: 'patience' must be >= 0, got ", o.patience);
  TSE_CHECK(std::isfinite(o.threshold) && o.threshold >= 0.0,
            "ReduceLROnPlateau: 'threshold' must be a finite number >= 0, got ", o.threshold);
  TSE_CHECK(o.cooldown >= 0, "ReduceLROnPlateau: 'cooldown' must be >= 0, got ", o.cooldown);
  TSE_CHECK(std::isfinite(o.min_lr) && o.min_lr >= 0.0, "ReduceLROnPlateau: 'min_lr' must be a finite number >= 0, got ",
            o.min_lr);
  TSE_CHECK(std::isfinite(o.eps) && o.eps >= 0.0, "ReduceLROnPlateau: 'eps' must be a finite number >= 0, got ", o.eps);
  best_ = o.mode == "min" ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity();
  for (size_t g = 0; g < opt_.num_groups(); ++g) last_lr_.push_back(opt_.lr(g));
}

void ReduceLROnPlateau::step() {
  throw ValueError("ReduceLROnPlateau.step: needs the monitored metric: call step(metric)");
}

double ReduceLROnPlateau::lr_at(double, int64_t) const {
  throw ValueError("ReduceLROnPlateau.lr_at: the lr depends on the metrics, not on the step count");
}

bool ReduceLROnPlateau::is_better(double a) const {
  const bool rel = o_.threshold_mode == "rel";
  if (o_.mode == "min") return rel ? a < best_ * (1.0 - o_.threshold) : a < best_ - o_.threshold;
  return rel ? a > best_ * (o_.threshold + 1.0) : a > best_ + o_.threshold;
}

void ReduceLROnPlateau::step(double metric) {
  ++step_;
  if (is_better(metric)) {
    best_ = metric;
    num_bad_ = 0;
  } else {
    ++num_bad_;
  }
  if (cooldown_counter_ > 0) {
    --cooldown_counter_;
    num_bad_ = 0;  // bad steps in a cooldown do not count
  }
  if (num_bad_ > o_.patience) {
    for (size_t g = 0; g < opt_.num_groups(); ++g) {
      const double old_lr = opt_.lr(g);
      const double new_lr = std::max(old_lr * o_.factor, o_.min_lr);
      if (old_lr - new_lr > o_.eps) opt_.set_lr(g, new_lr);
    }
    cooldown_counter_ = o_.cooldown;
    num_bad_ = 0;
  }
  last_lr_.clear();
  for (size_t g = 0; g < opt_.num_groups(); ++g) last_lr_.push_back(opt_.lr(g));
}

std::vector<std::pair<std::string, double>> ReduceLROnPlateau::settings() const {
  return {{"factor", o_.factor},
          {"patience", static_cast<double>(o_.patience)},
          {"threshold", o_.threshold},
          {"cooldown", static_cast<double>(o_.cooldown)},
          {"min_lr", o_.min_lr},
          {"eps", o_.eps}};
}

std::string ReduceLROnPlateau::state_json() const {
  nlohmann::ordered_json j;
  j["type"] = type_name();
  j["step"] = step_;
  j["mode"] = o_.mode;
  j["threshold_mode"] = o_.threshold_mode;
  for (const auto& [k, v] : settings()) j[k] = encode(v);
  j["best"] = encode(best_);
  j["num_bad_steps"] = num_bad_;
  j["cooldown_counter"] = cooldown_counter_;
  return j.dump();
}

void ReduceLROnPlateau::load_state_json(const std::string& json) {
  const std::string who = "ReduceLROnPlateau.load_state_json";
  const nlohmann::json j = parse(json, who, type_name());
  for (const char* k : {"mode", "threshold_mode"}) {
    TSE_CHECK(j.contains(k) && j[k].is_string(), who, ": the state JSON has no '", k, "'");
    const std::string& ours = std::string(k) == "mode" ? o_.mode : o_.threshold_mode;
    TSE_CHECK(j[k].get<std::string>() == ours, who, ": the state has ", k, " = \"", j[k].get<std::string>(),
              "\", this scheduler has \"", ours, "\"");
  }
  check_settings(j, settings(), who);
  TSE_CHECK(j.contains("best"), who, ": the state JSON has no 'best'");
  const double best = decode(j["best"], who, "best");
  for (const char* k : {"num_bad_steps", "cooldown_counter"})
    TSE_CHECK(j.contains(k) && j[k].is_number_integer() && j[k].get<int64_t>() >= 0, who, ": '", k,
              "' must be an integer >= 0");
  step_ = j["step"].get<int64_t>();
  best_ = best;
  num_bad_ = j["num_bad_steps"].get<int64_t>();
  cooldown_counter_ = j["cooldown_counter"].get<int64_t>();
  last_lr_.clear();
  for (size_t g = 0; g < opt_.num_groups(); ++g) last_lr_.push_back(opt_.lr(g));
}

}  // namespace tse::optim
