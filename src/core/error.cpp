#include "tse/core/error.hpp"

namespace tse::detail {

void throw_internal(const char* file, int line, const char* cond, const std::string& msg) {
  throw InternalError(str_cat("libtse internal error at ", file, ":", line, ": ", cond,
                              msg.empty() ? "" : " (", msg, msg.empty() ? "" : ")",
                              "; please report this bug"));
}

}  // namespace tse::detail
