// Result<T>: a value or an error Status, shaped like std::expected<T, Status>.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <type_traits>
#include <utility>

#include "cosmos/status.h"

namespace cosmos {

// Holds either a T or a non-ok Status. Accessing the value of an error Result
// is a programmer error and aborts with the status printed.
template <typename T>
class [[nodiscard]] Result {
 public:
  using value_type = T;

  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  // REQUIRES: !status.ok(). An ok status without a value is a bug.
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    if (status_.ok()) {
      std::fprintf(stderr, "cosmos: Result constructed from ok Status without a value\n");
      std::abort();
    }
  }
  template <typename U, typename = std::enable_if_t<std::is_constructible_v<T, U&&> &&
                                                    !std::is_same_v<std::decay_t<U>, T> &&
                                                    !std::is_same_v<std::decay_t<U>, Status>>>
  Result(U&& value) : value_(T(std::forward<U>(value))) {}  // NOLINT

  bool ok() const { return value_.has_value(); }
  // The error, or an ok Status when a value is held.
  const Status& status() const { return status_; }

  T& value() & {
    CheckOk();
    return *value_;
  }
  const T& value() const& {
    CheckOk();
    return *value_;
  }
  T&& value() && {
    CheckOk();
    return std::move(*value_);
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  template <typename U>
  T value_or(U&& fallback) const& {
    return ok() ? *value_ : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  void CheckOk() const {
    if (!value_.has_value()) {
      std::fprintf(stderr, "cosmos: value() on error Result: %s\n", status_.ToString().c_str());
      std::abort();
    }
  }

  std::optional<T> value_;
  Status status_;
};

namespace internal {
template <typename T>
const Status& StatusOf(const Result<T>& r) {
  return r.status();
}
}  // namespace internal

}  // namespace cosmos

#define COSMOS_CONCAT_INNER_(a, b) a##b
#define COSMOS_CONCAT_(a, b) COSMOS_CONCAT_INNER_(a, b)

// Evaluates `expr` (a Result<T>); on error returns its Status, otherwise
// move-assigns the value to `lhs` (which may be a declaration: `auto x`).
#define COSMOS_ASSIGN_OR_RETURN(lhs, expr) \
  COSMOS_ASSIGN_OR_RETURN_IMPL_(COSMOS_CONCAT_(cosmos_result_, __LINE__), lhs, expr)
#define COSMOS_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(*tmp)
