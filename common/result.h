// sqlpost/common/result.h — the one error vocabulary shared by every module.
//
// Contract: every fallible function in sqlpost returns Result<T> (or Result<>
// for no value). An Error carries a code an administrator or caller can act on
// and a one-line message naming the problem. No exception crosses a module
// boundary. It lives in common/, the lowest layer of the build: common/ depends
// on nothing else of ours and on no library, and does no I/O.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace sqlpost {

enum class Errc {
  kInvalidArgument,  // the caller asked for something malformed
  kNotFound,         // a named thing does not exist
  kAlreadyExists,    // a named thing exists already
  kCorruption,       // input (usually from a mailbox) is malformed or forged
  kAuthentication,   // a message failed authentication / wrong key
  kUnsupported,      // a newer format version or an unsupported feature
  kLimitExceeded,    // a named size/count limit was exceeded
  kIOError,          // file system failure
  kDatabase,         // SQLite failure
  kBusy,             // another connection held the database's write lock too long
  kAgentRunning,     // another sqlpost agent holds this database's agent lock
  kConfig,           // missing or invalid control parameters
  kTransient,        // transport failure worth retrying later (4xx, timeout)
  kPermanent,        // transport failure not worth retrying (5xx)
  kTimeout,          // an operation took longer than allowed
  kInternal,         // an invariant of ours was violated
};

const char* errc_name(Errc code);

struct [[nodiscard]] Error {
  Errc code;
  std::string message;
};

template <class T = void>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : state_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  [[nodiscard]] bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(state_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(state_);
  }
  // By value: `for (auto& x : *f())` must not refer into a destroyed temporary.
  T value() && {
    assert(ok());
    return std::get<0>(std::move(state_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T operator*() && { return std::move(*this).value(); }

  [[nodiscard]] const Error& error() const {
    assert(!ok());
    return std::get<1>(state_);
  }
  Error&& take_error() {
    assert(!ok());
    return std::get<1>(std::move(state_));
  }

 private:
  std::variant<T, Error> state_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error)
      : error_(std::move(error)), ok_(false) {}  // NOLINT(google-explicit-constructor)

  [[nodiscard]] bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  [[nodiscard]] const Error& error() const {
    assert(!ok_);
    return error_;
  }
  Error&& take_error() {
    assert(!ok_);
    return std::move(error_);
  }

 private:
  Error error_{Errc::kInternal, {}};
  bool ok_ = true;
};

inline Error make_error(Errc code, std::string message) { return Error{code, std::move(message)}; }

inline Result<> success() { return {}; }

}  // namespace sqlpost

// Early return of the error of a Result-returning expression.
// NOLINTBEGIN(cppcoreguidelines-macro-usage)
#define SQLPOST_CONCAT_INNER(a, b) a##b
#define SQLPOST_CONCAT(a, b) SQLPOST_CONCAT_INNER(a, b)
#define SQLPOST_TRY(expr)                      \
  do {                                         \
    auto&& sqlpost_try_result_ = (expr);       \
    if (!sqlpost_try_result_.ok()) {           \
      return sqlpost_try_result_.take_error(); \
    }                                          \
  } while (false)
// Declares `var` from the value of a Result-returning expression, or returns its error.
#define SQLPOST_TRY_ASSIGN(var, expr)                           \
  auto SQLPOST_CONCAT(sqlpost_try_, __LINE__) = (expr);         \
  if (!SQLPOST_CONCAT(sqlpost_try_, __LINE__).ok()) {           \
    return SQLPOST_CONCAT(sqlpost_try_, __LINE__).take_error(); \
  }                                                             \
  var = std::move(SQLPOST_CONCAT(sqlpost_try_, __LINE__)).value()
// NOLINTEND(cppcoreguidelines-macro-usage)
