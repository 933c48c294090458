// RESP2 -> RESP3 reply rewriting for HELLO 3 connections: which command
// gets which RESP3 shape (as Redis 7.0 replies; kv_redis_diff_test compares
// the bytes with a real redis-server), and the rewriting walk itself.
#include "kv/resp3.h"

#include <charconv>
#include <cstdint>

#include "kv/command_util.h"

namespace cosmos::kv {

namespace {

// True if an argument at index >= `from` equals `word` (any case).
bool HasOption(std::span<const std::string_view> args, size_t from, std::string_view word) {
  for (size_t i = from; i < args.size(); ++i) {
    if (EqualsIgnoreCase(args[i], word)) return true;
  }
  return false;
}

// ZUNION/ZINTER/ZDIFF numkeys key [key ...] [options]: WITHSCORES among the
// options (a key may be named "withscores").
bool AlgebraWithScores(std::span<const std::string_view> args) {
  int64_t numkeys = 0;
  if (args.size() < 2 || !ParseInt64(args[1], &numkeys) || numkeys < 0 ||
      static_cast<uint64_t>(numkeys) > args.size()) {
    return false;
  }
  return HasOption(args, 2 + static_cast<size_t>(numkeys), "withscores");
}

// Reads the RESP2 replies the Dispatcher produced and writes their RESP3
// form. Every read is bounds-checked: a malformed input makes the walk fail
// (the caller keeps the RESP2 bytes) instead of reading past the end.
class Rewriter {
 public:
  Rewriter(std::string_view in, std::string* out) : in_(in), out_(out) {}

  bool done() const { return pos_ >= in_.size(); }

  bool Reply(ReplyShape shape) {
    switch (shape) {
      case ReplyShape::kPlain:
        return Plain(0);
      case ReplyShape::kDouble:
        return Double();
      case ReplyShape::kVerbatim:
        return Verbatim();
      default:
        return Aggregate(shape);
    }
  }

 private:
  static constexpr int kMaxDepth = 16;

  // Reads "<type><line>\r\n" at pos_ without consuming it.
  bool PeekHeader(char* type, std::string_view* line, size_t* end) const {
    if (pos_ >= in_.size()) return false;
    const size_t crlf = in_.find("\r\n", pos_);
    if (crlf == std::string_view::npos) return false;
    *type = in_[pos_];
    *line = in_.substr(pos_ + 1, crlf - pos_ - 1);
    *end = crlf + 2;
    return true;
  }
  static bool Number(std::string_view s, int64_t* v) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
    return ec == std::errc() && p == s.data() + s.size();
  }
  // Reads a bulk's payload (after its header ending at `end`, length n >= 0).
  bool Payload(size_t end, int64_t n, std::string_view* payload) {
    if (n < 0 || static_cast<uint64_t>(n) + 2 > in_.size() - end) return false;
    *payload = in_.substr(end, static_cast<size_t>(n));
    pos_ = end + static_cast<size_t>(n) + 2;
    return true;
  }
  void Header(char type, int64_t n) {
    out_->push_back(type);
    out_->append(std::to_string(n));
    out_->append("\r\n");
  }

  // One reply, nulls as `_`, aggregates recursively.
  bool Plain(int depth) {
    char type;
    std::string_view line;
    size_t end;
    if (depth > kMaxDepth || !PeekHeader(&type, &line, &end)) return false;
    switch (type) {
      case '+':
      case '-':
      case ':':
        out_->append(in_.substr(pos_, end - pos_));
        pos_ = end;
        return true;
      case '$': {
        int64_t n;
        if (!Number(line, &n)) return false;
        if (n < 0) {
          out_->append("_\r\n");
          pos_ = end;
          return true;
        }
        const size_t begin = pos_;
        std::string_view payload;
        if (!Payload(end, n, &payload)) return false;
        out_->append(in_.substr(begin, pos_ - begin));
        return true;
      }
      case '*': {
        int64_t n;
        if (!Number(line, &n)) return false;
        pos_ = end;
        if (n < 0) {
          out_->append("_\r\n");
          return true;
        }
        Header('*', n);
        for (int64_t i = 0; i < n; ++i) {
          if (!Plain(depth + 1)) return false;
        }
        return true;
      }
      default:
        return false;
    }
  }

  // A bulk string as a double (",<text>"), anything else as Plain.
  bool Double() {
    char type;
    std::string_view line;
    size_t end;
    if (!PeekHeader(&type, &line, &end)) return false;
    int64_t n;
    if (type != '$' || !Number(line, &n) || n < 0) return Plain(1);
    std::string_view payload;
    if (!Payload(end, n, &payload)) return false;
    out_->push_back(',');
    out_->append(payload);
    out_->append("\r\n");
    return true;
  }

  bool Verbatim() {
    char type;
    std::string_view line;
    size_t end;
    if (!PeekHeader(&type, &line, &end)) return false;
    int64_t n;
    if (type != '$' || !Number(line, &n) || n < 0) return Plain(1);
    std::string_view payload;
    if (!Payload(end, n, &payload)) return false;
    Header('=', n + 4);
    out_->append("txt:");
    out_->append(payload);
    out_->append("\r\n");
    return true;
  }

  // [a, b] with b as a double (a member and its score).
  bool ScorePair() {
    Header('*', 2);
    return Plain(2) && Double();
  }

  // The array shapes; a reply that is not an array of the expected form
  // (an error, a null, an integer) goes through Plain.
  bool Aggregate(ReplyShape shape) {
    char type;
    std::string_view line;
    size_t end;
    if (!PeekHeader(&type, &line, &end)) return false;
    int64_t n;
    if (type != '*' || !Number(line, &n) || n < 0) return Plain(0);
    const bool pairs = shape == ReplyShape::kMap || shape == ReplyShape::kScorePairs ||
                       shape == ReplyShape::kFieldPairs;
    if ((pairs && n % 2 != 0) || (shape == ReplyShape::kLastDouble && n == 0) ||
        (shape == ReplyShape::kKeyScorePairs && n != 2)) {
      return Plain(0);
    }
    pos_ = end;
    switch (shape) {
      case ReplyShape::kMap:
        Header('%', n / 2);
        for (int64_t i = 0; i < n; ++i) {
          if (!Plain(1)) return false;
        }
        return true;
      case ReplyShape::kSet:
      case ReplyShape::kPush:
        Header(shape == ReplyShape::kSet ? '~' : '>', n);
        for (int64_t i = 0; i < n; ++i) {
          if (!Plain(1)) return false;
        }
        return true;
      case ReplyShape::kDoubles:
        Header('*', n);
        for (int64_t i = 0; i < n; ++i) {
          if (!Double()) return false;
        }
        return true;
      case ReplyShape::kScorePairs:
      case ReplyShape::kFieldPairs:
        Header('*', n / 2);
        for (int64_t i = 0; i < n / 2; ++i) {
          if (shape == ReplyShape::kScorePairs) {
            if (!ScorePair()) return false;
          } else {
            Header('*', 2);
            if (!Plain(2) || !Plain(2)) return false;
          }
        }
        return true;
      case ReplyShape::kLastDouble:
        Header('*', n);
        for (int64_t i = 0; i + 1 < n; ++i) {
          if (!Plain(1)) return false;
        }
        return Double();
      case ReplyShape::kKeyScorePairs: {
        Header('*', 2);
        if (!Plain(1)) return false;
        int64_t m;
        if (!PeekHeader(&type, &line, &end) || type != '*' || !Number(line, &m) || m < 0) {
          return false;
        }
        pos_ = end;
        Header('*', m);
        for (int64_t i = 0; i < m; ++i) {
          if (!PeekHeader(&type, &line, &end) || line != "2" || type != '*') return false;
          pos_ = end;
          if (!ScorePair()) return false;
        }
        return true;
      }
      default:
        return false;
    }
  }

  std::string_view in_;
  size_t pos_ = 0;
  std::string* out_;
};

}  // namespace

ReplyShape ReplyShapeOf(std::span<const std::string_view> args) {
  if (args.empty()) return ReplyShape::kPlain;
  const std::string name = Lower(args[0]);
  const auto sub = [&](std::string_view s) {
    return args.size() > 1 && EqualsIgnoreCase(args[1], s);
  };
  if (name == "hgetall" || name == "hello" || (name == "config" && sub("get")) ||
      (name == "command" && sub("docs")) || (name == "lcs" && HasOption(args, 3, "idx"))) {
    return ReplyShape::kMap;
  }
  if (name == "smembers" || name == "sinter" || name == "sunion" || name == "sdiff" ||
      (name == "spop" && args.size() == 3)) {
    return ReplyShape::kSet;
  }
  if (name == "zscore" || name == "zincrby" || name == "zadd") return ReplyShape::kDouble;
  if (name == "zmscore") return ReplyShape::kDoubles;
  if (((name == "zrange" || name == "zrangebyscore" || name == "zrevrangebyscore" ||
        name == "zrevrange") &&
       HasOption(args, 4, "withscores")) ||
      (name == "zrandmember" && HasOption(args, 3, "withscores")) ||
      ((name == "zunion" || name == "zinter" || name == "zdiff") && AlgebraWithScores(args))) {
    return ReplyShape::kScorePairs;
  }
  if (name == "hrandfield" && args.size() == 4) return ReplyShape::kFieldPairs;
  if (name == "zpopmin" || name == "zpopmax") {
    return args.size() == 2 ? ReplyShape::kLastDouble : ReplyShape::kScorePairs;
  }
  if (name == "bzpopmin" || name == "bzpopmax") return ReplyShape::kLastDouble;
  if (name == "zmpop" || name == "bzmpop") return ReplyShape::kKeyScorePairs;
  if (name == "info" || (name == "client" && (sub("info") || sub("list")))) {
    return ReplyShape::kVerbatim;
  }
  if (name == "subscribe" || name == "unsubscribe" || name == "psubscribe" ||
      name == "punsubscribe") {
    return ReplyShape::kPush;
  }
  return ReplyShape::kPlain;
}

bool ConvertRepliesToResp3(std::span<const std::string_view> args, std::string* out, size_t start) {
  if (start >= out->size()) return true;
  const std::string_view tail = std::string_view(*out).substr(start);
  const ReplyShape shape = ReplyShapeOf(args);
  // Fast path: a status, error, integer or non-null bulk reply of a
  // command without a special shape is the same in both protocols.
  if (shape == ReplyShape::kPlain && tail[0] != '*' && tail.substr(0, 3) != "$-1") return true;
  std::string converted;
  converted.reserve(tail.size());
  Rewriter rewriter(tail, &converted);
  while (!rewriter.done()) {
    if (!rewriter.Reply(shape)) return false;
  }
  out->resize(start);
  out->append(converted);
  return true;
}

std::string PushMessage(std::string_view resp2_message) {
  std::string m(resp2_message);
  if (!m.empty() && m[0] == '*') m[0] = '>';
  return m;
}

}  // namespace cosmos::kv
