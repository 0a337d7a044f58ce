#pragma once
// The tse::Error hierarchy. The library never aborts: user errors throw (TSE_CHECK), broken
// invariants throw InternalError with "please report" (TSE_ASSERT). pybind11 maps ValueError
// (std::invalid_argument) to Python's ValueError and IndexError (std::out_of_range) to IndexError;
// the bindings map the rest to RuntimeError / NotImplementedError.
#include <sstream>
#include <stdexcept>
#include <string>

#include "tse/export.hpp"

namespace tse {

/// Base of every exception libtse throws.
class TSE_API Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A bad argument value: wrong shape, dtype, device, NaN audio, ... (Python: ValueError).
class TSE_API ValueError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// An index or dimension out of range (Python: IndexError).
class TSE_API IndexError : public std::out_of_range {
 public:
  using std::out_of_range::out_of_range;
};

/// A missing kernel or backward (Python: NotImplementedError). Never silently replaced by zeros.
class TSE_API NotImplementedError : public Error {
 public:
  using Error::Error;
};

/// A failure reported by a backend library (CUDA, cuBLAS, oneDNN, FFTW) (Python: RuntimeError).
class TSE_API BackendError : public Error {
 public:
  using Error::Error;
};

/// A file that cannot be read or written: missing, unreadable, malformed, truncated (Python:
/// RuntimeError, like soundfile's errors). The message names the file.
class TSE_API IOError : public Error {
 public:
  using Error::Error;
};

/// An autograd misuse: a saved tensor modified in place, backward through a freed graph, ...
class TSE_API AutogradError : public Error {
 public:
  using Error::Error;
};

/// A broken library invariant: a bug in libtse.
class TSE_API InternalError : public Error {
 public:
  using Error::Error;
};

namespace detail {
template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream os;
  ((os << args), ...);
  return os.str();
}
[[noreturn]] TSE_API void throw_internal(const char* file, int line, const char* cond, const std::string& msg);
}  // namespace detail

}  // namespace tse

/// User error: throws ErrorType(message) when cond is false. The message names op, argument, shapes.
#define TSE_CHECK_T(ErrorType, cond, ...)                        \
  do {                                                           \
    if (!(cond)) [[unlikely]] {                                  \
      throw ErrorType(::tse::detail::str_cat(__VA_ARGS__));      \
    }                                                            \
  } while (0)

#define TSE_CHECK(cond, ...) TSE_CHECK_T(::tse::ValueError, cond, __VA_ARGS__)
#define TSE_CHECK_INDEX(cond, ...) TSE_CHECK_T(::tse::IndexError, cond, __VA_ARGS__)

/// Library invariant; a failure is a libtse bug.
#define TSE_ASSERT(cond, ...)                                                                    \
  do {                                                                                           \
    if (!(cond)) [[unlikely]] {                                                                  \
      ::tse::detail::throw_internal(__FILE__, __LINE__, #cond, ::tse::detail::str_cat(__VA_ARGS__)); \
    }                                                                                            \
  } while (0)
