#pragma once
// Thread-local gradient recording switch (on by default), with RAII guards.
#include "tse/export.hpp"

namespace tse::autograd {

struct TSE_API GradMode {
  static bool is_enabled();
  static void set_enabled(bool enabled);
};

/// Restores the previous mode on destruction.
class AutoGradMode {
 public:
  explicit AutoGradMode(bool enabled) : prev_(GradMode::is_enabled()) { GradMode::set_enabled(enabled); }
  ~AutoGradMode() { GradMode::set_enabled(prev_); }
  AutoGradMode(const AutoGradMode&) = delete;
  AutoGradMode& operator=(const AutoGradMode&) = delete;

 private:
  bool prev_;
};

/// Turns recording off in this thread for the guard's lifetime (inference, optimizer steps).
class NoGradGuard : public AutoGradMode {
 public:
  NoGradGuard() : AutoGradMode(false) {}
};

}  // namespace tse::autograd

namespace tse {
using autograd::NoGradGuard;
}
