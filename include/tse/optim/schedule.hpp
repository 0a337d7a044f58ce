#pragma once
/// \file schedule.hpp
/// Learning-rate schedules bound to an Optimizer (which must outlive them).
///
/// Step-driven schedules (WarmupHoldDecay, CosineSchedule) count scheduler steps k = 0, 1, ...:
/// constructing one sets every group's lr to lr_at(initial_lr, 0), and the k-th call of step()
/// sets it to lr_at(initial_lr, k). Call step() once after each optimiser step, so the n-th
/// optimiser update (n = 1, 2, ...) runs with lr_at(initial_lr, n - 1):
/// \code
///   optim::AdamW opt(model->parameters(), {.lr = 1e-3});
///   optim::WarmupHoldDecay sched(opt, 4000, 0, 0.9, 10000);
///   for (...) { ...; opt.step(); sched.step(); }
/// \endcode
/// ReduceLROnPlateau instead lowers the current lr from a validation metric: step(metric).
///
/// Checkpoints: state_json() holds the step count and every setting; load_state_json() checks the
/// type and the settings and restores the counters (the lr itself comes back with the optimiser's
/// load_state). Bad arguments raise ValueError naming the argument.
#include <cstdint>
#include <string>
#include <vector>

#include "tse/optim/optimizer.hpp"

namespace tse::optim {

class TSE_API LRScheduler {
 public:
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;
  virtual ~LRScheduler() = default;

  virtual std::string type_name() const = 0;
  /// Advances one step and sets every group's lr to lr_at(initial_lr, steps()).
  /// ReduceLROnPlateau: ValueError (it needs the metric: step(metric)).
  virtual void step();
  /// Scheduler steps taken so far (0 after construction).
  int64_t steps() const { return step_; }
  /// Every group's lr as this scheduler last set it (PyTorch's get_last_lr()).
  const std::vector<double>& last_lr() const { return last_lr_; }
  /// The lr of a group whose initial_lr is `initial_lr` after `step` scheduler steps.
  virtual double lr_at(double initial_lr, int64_t step) const = 0;

  virtual std::string state_json() const;
  virtual void load_state_json(const std::string& json);

 protected:
  explicit LRScheduler(Optimizer& optimizer) : opt_(optimizer) {}
  /// Sets every group's lr to lr_at(initial_lr, step_) and records last_lr.
  void apply();
  /// The settings written by state_json and compared by load_state_json, as (name, value).
  virtual std::vector<std::pair<std::string, double>> settings() const = 0;

  Optimizer& opt_;
  int64_t step_ = 0;
  std::vector<double> last_lr_;
};

/// Saijo et al.'s schedule: linear warm-up to the peak (initial_lr), a hold, then a step decay.
/// With n = k + 1 the index of the optimiser update that uses the lr (see the file comment):
///   n <= warmup_steps:  factor = n / warmup_steps           (1/W, 2/W, ..., 1: the ramp from 0)
///   otherwise:          factor = decay_factor ^ floor((n - 1 - warmup_steps - hold_steps)^+ / decay_every)
/// so updates warmup+1 .. warmup+hold+decay_every run at the peak, the next decay_every at
/// peak x decay_factor, and so on. The paper: warmup 4000, hold 0, decay_factor 0.9, decay_every
/// 10000. Arguments: warmup_steps >= 0, hold_steps >= 0, 0 < decay_factor <= 1, decay_every >= 1.
class TSE_API WarmupHoldDecay : public LRScheduler {
 public:
  WarmupHoldDecay(Optimizer& optimizer, int64_t warmup_steps, int64_t hold_steps, double decay_factor,
                  int64_t decay_every);
  std::string type_name() const override { return "WarmupHoldDecay"; }
  double lr_at(double initial_lr, int64_t step) const override;

 protected:
  std::vector<std::pair<std::string, double>> settings() const override;

 private:
  int64_t warmup_, hold_, every_;
  double decay_;
};

/// Linear warm-up then cosine annealing to min_lr. With n = k + 1 as above:
///   n <= warmup_steps: lr = initial_lr * n / warmup_steps
///   otherwise:         t = min(1, (n - 1 - warmup_steps) / (total_steps - warmup_steps)),
///                      lr = min_lr + (initial_lr - min_lr) * (1 + cos(pi t)) / 2
/// (min_lr is reached at update total_steps + 1 and kept). Arguments: total_steps >= 1,
/// 0 <= warmup_steps < total_steps, min_lr >= 0.
class TSE_API CosineSchedule : public LRScheduler {
 public:
  CosineSchedule(Optimizer& optimizer, int64_t total_steps, int64_t warmup_steps = 0, double min_lr = 0.0);
  std::string type_name() const override { return "CosineSchedule"; }
  double lr_at(double initial_lr, int64_t step) const override;

 protected:
  std::vector<std::pair<std::string, double>> settings() const override;

 private:
  int64_t total_, warmup_;
  double min_lr_;
};

struct PlateauOptions {
  std::string mode = "min";            ///< "min": lower is better; "max": higher is better
  double factor = 0.3;                 ///< new lr = max(lr * factor, min_lr); 0 <= factor < 1
  int64_t patience = 5;                ///< bad steps tolerated before a reduction (>= 0)
  double threshold = 1e-4;             ///< what counts as better (>= 0)
  std::string threshold_mode = "rel";  ///< "rel": beyond best * (1 -+ threshold); "abs": best -+ threshold
  int64_t cooldown = 0;                ///< steps after a reduction during which bad steps are not counted
  double min_lr = 5e-6;                ///< floor of every group's lr (>= 0)
  double eps = 1e-8;                   ///< a reduction smaller than this is skipped
};

/// PyTorch's ReduceLROnPlateau (defaults here: CLAPSep's factor 0.3, patience 5, floor 5e-6).
/// step(metric): if the metric is better than the best so far (per mode and threshold) it becomes
/// the best and the bad count resets, else the bad count grows; during a cooldown the cooldown
/// counter drops by one and bad steps are not counted; when the bad count exceeds patience every
/// group's lr becomes max(lr * factor, min_lr) (unless that changes it by <= eps), the cooldown
/// starts and the bad count resets. A NaN metric is never better.
class TSE_API ReduceLROnPlateau : public LRScheduler {
 public:
  explicit ReduceLROnPlateau(Optimizer& optimizer, const PlateauOptions& options = {});
  std::string type_name() const override { return "ReduceLROnPlateau"; }
  void step() override;  // ValueError: use step(metric)
  void step(double metric);
  double lr_at(double initial_lr, int64_t step) const override;  // ValueError: metric-driven
  double best() const { return best_; }
  int64_t num_bad_steps() const { return num_bad_; }
  int64_t cooldown_counter() const { return cooldown_counter_; }
  std::string state_json() const override;
  void load_state_json(const std::string& json) override;

 protected:
  std::vector<std::pair<std::string, double>> settings() const override;

 private:
  bool is_better(double a) const;
  PlateauOptions o_;
  double best_;
  int64_t num_bad_ = 0;
  int64_t cooldown_counter_ = 0;
};

}  // namespace tse::optim
