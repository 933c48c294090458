// Argument parsers, number formatting and store-error replies shared by the
// cosmos-kv command handlers (Redis's util.c rules).
#include "kv/command_util.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "kv/resp.h"

namespace cosmos::kv {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string Lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return r;
}

bool ParseInt64(std::string_view s, int64_t* v) {
  if (s.empty() || s.size() > 20) return false;
  if (s[0] == '+' || (s.size() > 1 && s[0] == '0') || (s.size() > 2 && s[0] == '-' && s[1] == '0'))
    return false;
  if (s == "-0") return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), *v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool ParseUint64(std::string_view s, uint64_t* v) {
  if (s.empty() || s.size() > 20 || s[0] == '+' || s[0] == '-') return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), *v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

namespace {

// strtod/strtold need a terminated copy; Redis caps the length the same way.
constexpr size_t kMaxNumberChars = 5 * 1024;

bool NumberShapeOk(std::string_view s) {
  return !s.empty() && s.size() < kMaxNumberChars &&
         !std::isspace(static_cast<unsigned char>(s[0]));
}

}  // namespace

bool ParseDouble(std::string_view s, double* v) {
  if (!NumberShapeOk(s)) return false;
  const std::string copy(s);
  char* end = nullptr;
  errno = 0;
  const double d = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size() || std::isnan(d)) return false;
  if (errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL || std::fpclassify(d) == FP_ZERO)) {
    return false;
  }
  *v = d;
  return true;
}

bool ParseLongDouble(std::string_view s, long double* v) {
  if (!NumberShapeOk(s)) return false;
  const std::string copy(s);
  char* end = nullptr;
  errno = 0;
  const long double d = std::strtold(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size() || std::isnan(d) || std::isinf(d) || errno == ERANGE) {
    return false;
  }
  *v = d;
  return true;
}

std::string FormatDouble(double d) {
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  const int n = std::snprintf(buf, sizeof(buf), "%.17g", d);
  return std::string(buf, static_cast<size_t>(n));
}

std::string FormatLongDouble(long double d) {
  char buf[5 * 1024];
  int n = std::snprintf(buf, sizeof(buf), "%.17Lf", d);
  if (n <= 0 || static_cast<size_t>(n) >= sizeof(buf)) return "0";
  std::string s(buf, static_cast<size_t>(n));
  if (s.find('.') != std::string::npos) {
    while (!s.empty() && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
  }
  if (s == "-0") s = "0";
  return s;
}

std::string_view TypeName(ValueType type) {
  switch (type) {
    case ValueType::kString:
      return "string";
    case ValueType::kHash:
      return "hash";
    case ValueType::kList:
      return "list";
    case ValueType::kSet:
      return "set";
    case ValueType::kZSet:
      return "zset";
  }
  return "unknown";
}

void AppendStoreError(std::string* out, const Status& s) {
  switch (s.code()) {
    case StatusCode::kResourceExhausted:
      AppendError(out, "OOM command not allowed: cosmos-kv log full (" + s.message() + ")");
      break;
    case StatusCode::kFailedPrecondition:
      AppendError(out,
                  "MISCONF cosmos-kv storage failed; restart to recover the durable "
                  "state (" +
                      s.message() + ")");
      break;
    case StatusCode::kInvalidArgument:
      AppendError(out, "ERR " + s.message());
      break;
    default:
      AppendError(out, "ERR storage error: " + s.ToString());
      break;
  }
}

}  // namespace cosmos::kv
