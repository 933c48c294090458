// RESP2 parser state machine and reply encoders.
#include "kv/resp.h"

#include <charconv>
#include <cstring>

namespace cosmos::kv {
namespace {

// Parses a signed decimal that must span all of `s`.
bool ParseInt(std::string_view s, int64_t* v) {
  if (s.empty() || s.size() > 20) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), *v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Splits an inline line into arguments like Redis's sdssplitargs: blanks
// separate, "double quotes" with \n \r \t \b \a \\ \" \xHH escapes, 'single'
// quotes with \'. Returns false on unbalanced quotes.
bool SplitInline(std::string_view line, std::vector<std::string>* out) {
  size_t i = 0;
  while (true) {
    while (i < line.size() && std::strchr(" \t\r\n\v\f", line[i]) && line[i] != '\0') ++i;
    if (i >= line.size()) return true;
    std::string cur;
    bool inq = false, insq = false, done = false;
    while (!done) {
      if (inq) {
        if (i >= line.size()) return false;
        if (line[i] == '\\' && i + 3 < line.size() && line[i + 1] == 'x' &&
            HexValue(line[i + 2]) >= 0 && HexValue(line[i + 3]) >= 0) {
          cur.push_back(static_cast<char>(HexValue(line[i + 2]) * 16 + HexValue(line[i + 3])));
          i += 3;
        } else if (line[i] == '\\' && i + 1 < line.size()) {
          char c = line[++i];
          switch (c) {
            case 'n':
              c = '\n';
              break;
            case 'r':
              c = '\r';
              break;
            case 't':
              c = '\t';
              break;
            case 'b':
              c = '\b';
              break;
            case 'a':
              c = '\a';
              break;
            default:
              break;
          }
          cur.push_back(c);
        } else if (line[i] == '"') {
          if (i + 1 < line.size() && !std::strchr(" \t\r\n\v\f", line[i + 1])) return false;
          done = true;
        } else {
          cur.push_back(line[i]);
        }
      } else if (insq) {
        if (i >= line.size()) return false;
        if (line[i] == '\\' && i + 1 < line.size() && line[i + 1] == '\'') {
          ++i;
          cur.push_back('\'');
        } else if (line[i] == '\'') {
          if (i + 1 < line.size() && !std::strchr(" \t\r\n\v\f", line[i + 1])) return false;
          done = true;
        } else {
          cur.push_back(line[i]);
        }
      } else {
        if (i >= line.size()) {
          done = true;
          break;
        }
        switch (line[i]) {
          case ' ':
          case '\n':
          case '\r':
          case '\t':
          case '\v':
          case '\f':
            done = true;
            break;
          case '"':
            inq = true;
            break;
          case '\'':
            insq = true;
            break;
          default:
            cur.push_back(line[i]);
            break;
        }
      }
      if (i < line.size()) ++i;
    }
    out->push_back(std::move(cur));
  }
}

}  // namespace

void RespParser::ResetState() {
  in_array_ = false;
  array_len_ = 0;
  bulk_len_ = -1;
  pos_ = 0;
  arg_spans_.clear();
}

RespParser::Outcome RespParser::Fail(std::string message) {
  error_ = std::move(message);
  ResetState();
  return Outcome::kError;
}

uint64_t RespParser::bulk_bytes_missing(size_t input_size) const {
  if (!in_array_ || bulk_len_ < 0) return 0;
  const uint64_t need = pos_ + static_cast<uint64_t>(bulk_len_) + 2;
  return need > input_size ? need - input_size : 0;
}

RespParser::Outcome RespParser::ParseInline(std::string_view input, size_t* consumed,
                                            std::vector<std::string_view>* args) {
  const size_t nl = input.find('\n');
  if (nl == std::string_view::npos) {
    if (input.size() > limits_.max_inline_len)
      return Fail("Protocol error: too big inline request");
    return Outcome::kNeedMore;
  }
  if (nl > limits_.max_inline_len) return Fail("Protocol error: too big inline request");
  std::string_view line = input.substr(0, nl);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  inline_args_.clear();
  if (!SplitInline(line, &inline_args_)) {
    return Fail("Protocol error: unbalanced quotes in request");
  }
  for (const auto& a : inline_args_) args->emplace_back(a);
  *consumed = nl + 1;
  return Outcome::kCommand;
}

RespParser::Outcome RespParser::Parse(std::string_view input, size_t* consumed,
                                      std::vector<std::string_view>* args) {
  args->clear();
  *consumed = 0;
  if (!in_array_) {
    if (input.empty()) return Outcome::kNeedMore;
    if (input[0] != '*') return ParseInline(input, consumed, args);
    const size_t cr = input.find("\r\n");
    if (cr == std::string_view::npos) {
      if (input.size() > limits_.max_inline_len) {
        return Fail("Protocol error: too big mbulk count string");
      }
      return Outcome::kNeedMore;
    }
    int64_t n;
    if (!ParseInt(input.substr(1, cr - 1), &n) || n > static_cast<int64_t>(limits_.max_array_len)) {
      return Fail("Protocol error: invalid multibulk length");
    }
    if (n <= 0) {
      *consumed = cr + 2;
      return Outcome::kCommand;
    }
    in_array_ = true;
    array_len_ = n;
    bulk_len_ = -1;
    pos_ = cr + 2;
    arg_spans_.clear();
    arg_spans_.reserve(static_cast<size_t>(std::min<int64_t>(n, 1024)));
  }
  while (static_cast<int64_t>(arg_spans_.size()) < array_len_) {
    if (bulk_len_ < 0) {
      if (pos_ >= input.size()) return Outcome::kNeedMore;
      const size_t cr = input.find("\r\n", pos_);
      if (cr == std::string_view::npos) {
        if (input.size() - pos_ > limits_.max_inline_len) {
          return Fail("Protocol error: too big bulk count string");
        }
        return Outcome::kNeedMore;
      }
      if (input[pos_] != '$') {
        return Fail(std::string("Protocol error: expected '$', got '") + input[pos_] + "'");
      }
      int64_t n;
      if (!ParseInt(input.substr(pos_ + 1, cr - pos_ - 1), &n) || n < 0 ||
          static_cast<uint64_t>(n) > limits_.max_bulk_len) {
        return Fail("Protocol error: invalid bulk length");
      }
      bulk_len_ = n;
      pos_ = cr + 2;
    }
    const uint64_t need = pos_ + static_cast<uint64_t>(bulk_len_) + 2;
    if (input.size() < need) return Outcome::kNeedMore;
    arg_spans_.emplace_back(pos_, static_cast<size_t>(bulk_len_));
    pos_ = static_cast<size_t>(need);  // Redis skips the trailing CRLF unchecked
    bulk_len_ = -1;
  }
  for (auto [off, len] : arg_spans_) args->emplace_back(input.data() + off, len);
  *consumed = pos_;
  ResetState();
  return Outcome::kCommand;
}

void AppendSimple(std::string* out, std::string_view s) {
  out->push_back('+');
  out->append(s);
  out->append("\r\n");
}

void AppendError(std::string* out, std::string_view s) {
  out->push_back('-');
  // An error line may not contain CR or LF.
  for (char c : s) out->push_back(c == '\r' || c == '\n' ? ' ' : c);
  out->append("\r\n");
}

static void AppendPrefixed(std::string* out, char prefix, int64_t v) {
  char buf[24];
  buf[0] = prefix;
  auto r = std::to_chars(buf + 1, buf + sizeof(buf) - 2, v);
  *r.ptr++ = '\r';
  *r.ptr++ = '\n';
  out->append(buf, static_cast<size_t>(r.ptr - buf));
}

void AppendInteger(std::string* out, int64_t v) { AppendPrefixed(out, ':', v); }

void AppendBulk(std::string* out, std::string_view s) {
  AppendPrefixed(out, '$', static_cast<int64_t>(s.size()));
  out->append(s);
  out->append("\r\n");
}

void AppendNull(std::string* out) { out->append("$-1\r\n"); }

void AppendArrayHeader(std::string* out, int64_t n) { AppendPrefixed(out, '*', n); }

}  // namespace cosmos::kv
