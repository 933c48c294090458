// Status: the error value every fallible COSMOS call returns. No COSMOS code
// throws; errors travel as [[nodiscard]] values across every layer.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>

namespace cosmos {

// The small, stable set of error codes. Values are part of the wire format
// (the RPC and server layers send them to clients), so never renumber.
enum class StatusCode : uint8_t {
  kOk = 0,
  kNotFound = 1,
  kInvalidArgument = 2,
  kIoError = 3,
  kCorruption = 4,          // on-media or on-wire structure is malformed
  kIntegrityViolation = 5,  // authentication/freshness check failed (security)
  kPermissionDenied = 6,
  kUnavailable = 7,  // peer down, session ended, retry later
  kTimeout = 8,
  kResourceExhausted = 9,  // pool full, quota, window full
  kInternal = 10,
  kAlreadyExists = 11,
  kFailedPrecondition = 12,  // object in the wrong state for the call
  kOutOfRange = 13,          // offset/length outside a valid extent
  kCancelled = 14,
  kAborted = 15,  // lost a race: a compare-and-swap saw a newer version
  // The call would have had to block and was asked not to (inside a node:
  // a secure-region op on a worker thread that would wait for the trusted
  // counter). Repeat it where blocking is allowed. Never sent to clients.
  kWouldBlock = 16,
};

// Returns the stable lower-case name of `code` ("ok", "not_found", ...).
std::string_view StatusCodeName(StatusCode code);

// Converts a wire byte back to a code; unknown values map to kInternal.
StatusCode StatusCodeFromByte(uint8_t byte);

// A code plus a human-readable message naming the object and structure at
// fault. An ok Status carries no message and costs no allocation.
// Thread-safety: a Status is a value; distinct objects may be used from any
// thread.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status InvalidArgument(std::string m) {
    return {StatusCode::kInvalidArgument, std::move(m)};
  }
  static Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
  static Status Corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
  static Status IntegrityViolation(std::string m) {
    return {StatusCode::kIntegrityViolation, std::move(m)};
  }
  static Status PermissionDenied(std::string m) {
    return {StatusCode::kPermissionDenied, std::move(m)};
  }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status Timeout(std::string m) { return {StatusCode::kTimeout, std::move(m)}; }
  static Status ResourceExhausted(std::string m) {
    return {StatusCode::kResourceExhausted, std::move(m)};
  }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
  static Status FailedPrecondition(std::string m) {
    return {StatusCode::kFailedPrecondition, std::move(m)};
  }
  static Status OutOfRange(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
  static Status Cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }
  static Status Aborted(std::string m) { return {StatusCode::kAborted, std::move(m)}; }
  static Status WouldBlock(std::string m) { return {StatusCode::kWouldBlock, std::move(m)}; }
  // An I/O error built from errno: "<context>: <strerror(err)>".
  static Status FromErrno(int err, std::string_view context);

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "ok" or "<code_name>: <message>".
  std::string ToString() const;

  // Returns a copy whose message is "<context>: <message>"; ok stays ok.
  Status WithContext(std::string_view context) const;

  // Explicitly discards a status where ignoring it is correct (say why at the
  // call site).
  void IgnoreError() const {}

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

std::ostream& operator<<(std::ostream& os, const Status& s);

}  // namespace cosmos

// Evaluates `expr` (a Status or Result) and returns its Status from the
// enclosing function if it is not ok.
#define COSMOS_RETURN_IF_ERROR(expr)                            \
  do {                                                          \
    const auto& cosmos_status_tmp_ = (expr);                    \
    if (!::cosmos::internal::StatusOf(cosmos_status_tmp_).ok()) \
      return ::cosmos::internal::StatusOf(cosmos_status_tmp_);  \
  } while (0)

namespace cosmos::internal {
inline const Status& StatusOf(const Status& s) { return s; }
}  // namespace cosmos::internal
