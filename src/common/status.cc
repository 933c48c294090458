// Status names, formatting and errno conversion.
#include "cosmos/status.h"

#include <cstring>

namespace cosmos {

std::string_view StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "ok";
    case StatusCode::kNotFound:
      return "not_found";
    case StatusCode::kInvalidArgument:
      return "invalid_argument";
    case StatusCode::kIoError:
      return "io_error";
    case StatusCode::kCorruption:
      return "corruption";
    case StatusCode::kIntegrityViolation:
      return "integrity_violation";
    case StatusCode::kPermissionDenied:
      return "permission_denied";
    case StatusCode::kUnavailable:
      return "unavailable";
    case StatusCode::kTimeout:
      return "timeout";
    case StatusCode::kResourceExhausted:
      return "resource_exhausted";
    case StatusCode::kInternal:
      return "internal";
    case StatusCode::kAlreadyExists:
      return "already_exists";
    case StatusCode::kFailedPrecondition:
      return "failed_precondition";
    case StatusCode::kOutOfRange:
      return "out_of_range";
    case StatusCode::kCancelled:
      return "cancelled";
    case StatusCode::kAborted:
      return "aborted";
    case StatusCode::kWouldBlock:
      return "would_block";
  }
  return "unknown";
}

StatusCode StatusCodeFromByte(uint8_t byte) {
  if (byte <= static_cast<uint8_t>(StatusCode::kWouldBlock)) return static_cast<StatusCode>(byte);
  return StatusCode::kInternal;
}

Status Status::FromErrno(int err, std::string_view context) {
  char buf[128];
  // GNU strerror_r returns the message pointer (may not use buf).
  const char* msg = strerror_r(err, buf, sizeof(buf));
  std::string m(context);
  m += ": ";
  m += msg;
  StatusCode code = StatusCode::kIoError;
  if (err == ENOENT) code = StatusCode::kNotFound;
  if (err == EACCES || err == EPERM || err == EROFS) code = StatusCode::kPermissionDenied;
  if (err == ENOSPC || err == ENOMEM) code = StatusCode::kResourceExhausted;
  if (err == EEXIST) code = StatusCode::kAlreadyExists;
  if (err == EINVAL) code = StatusCode::kInvalidArgument;
  return Status(code, std::move(m));
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string s(StatusCodeName(code_));
  s += ": ";
  s += message_;
  return s;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string m(context);
  m += ": ";
  m += message_;
  return Status(code_, std::move(m));
}

std::ostream& operator<<(std::ostream& os, const Status& s) { return os << s.ToString(); }

}  // namespace cosmos
