// RESP2 (Redis serialization protocol) request parser and reply encoders.
// The parser is incremental: it keeps its progress across calls so half-sent
// frames and pipelined requests cost linear time, and it enforces limits on
// bulk length, array size and inline length for untrusted input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cosmos::kv {

struct RespLimits {
  uint64_t max_bulk_len = 512ull << 20;  // proto-max-bulk-len
  uint64_t max_array_len = 1u << 20;     // arguments per command
  uint64_t max_inline_len = 64u << 10;   // inline command line / length headers
};

// Parses requests: multibulk arrays of bulk strings ("*2\r\n$3\r\nGET\r\n...")
// and inline commands ("PING\r\n"), like Redis.
// Thread-safety: one parser per connection; not thread-safe.
class RespParser {
 public:
  enum class Outcome { kCommand, kNeedMore, kError };

  explicit RespParser(RespLimits limits = {}) : limits_(limits) {}

  // Parses the next request at the start of `input` (the connection's
  // unconsumed bytes). kCommand: `*args` holds views valid until `input`
  // changes or the next call, `*consumed` is the request's byte count (an
  // empty array "*0" yields a command with no args). kNeedMore: progress is
  // kept; call again with the same bytes plus more appended (nothing is
  // consumed). kError: error() holds the Redis error text ("Protocol error:
  // ..."); the connection should reply it and close.
  Outcome Parse(std::string_view input, size_t* consumed, std::vector<std::string_view>* args);

  // Bytes needed beyond `input.size()` to finish the current bulk, 0 if unknown.
  uint64_t bulk_bytes_missing(size_t input_size) const;
  const std::string& error() const { return error_; }

 private:
  Outcome Fail(std::string message);
  Outcome ParseInline(std::string_view input, size_t* consumed,
                      std::vector<std::string_view>* args);
  void ResetState();

  RespLimits limits_;
  std::string error_;
  // Multibulk progress (offsets into the input).
  bool in_array_ = false;
  int64_t array_len_ = 0;
  int64_t bulk_len_ = -1;  // -1: next bulk header not parsed yet
  size_t pos_ = 0;
  std::vector<std::pair<size_t, size_t>> arg_spans_;
  std::vector<std::string> inline_args_;
};

// Reply encoders (append to `out`).
void AppendSimple(std::string* out, std::string_view s);  // +s\r\n
void AppendError(std::string* out, std::string_view s);   // -s\r\n (s has the code)
void AppendInteger(std::string* out, int64_t v);          // :v\r\n
void AppendBulk(std::string* out, std::string_view s);    // $n\r\ns\r\n
void AppendNull(std::string* out);                        // $-1\r\n
void AppendArrayHeader(std::string* out, int64_t n);      // *n\r\n

}  // namespace cosmos::kv
