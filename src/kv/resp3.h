// RESP3 replies for connections that sent HELLO 3. Every command encodes its
// reply in RESP2; for a RESP3 connection the Dispatcher rewrites it into the
// types Redis 7.0 sends for that command (maps, sets, doubles, the null `_`,
// verbatim strings, push messages). One table (ReplyShapeOf) says which
// command gets which shape, so the commands themselves stay protocol-free.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace cosmos::kv {

// How a command's RESP2 reply maps to RESP3 (Redis 7.0's choices).
enum class ReplyShape {
  kPlain,          // nulls ($-1, *-1) become `_`; everything else unchanged
  kMap,            // a flat array of 2n elements becomes a map of n pairs
  kSet,            // an array becomes a set
  kDouble,         // a bulk string becomes a double
  kDoubles,        // an array of bulk strings becomes an array of doubles
  kScorePairs,     // [m1, s1, m2, s2, ...] -> [[m1, s1], ...], scores doubles
  kFieldPairs,     // [f1, v1, ...] -> [[f1, v1], ...], values unchanged
  kLastDouble,     // an array whose last element becomes a double
  kKeyScorePairs,  // [key, [[m, s], ...]] with each s a double (ZMPOP)
  kVerbatim,       // a bulk string becomes a verbatim string of format "txt"
  kPush,           // every array becomes a push message
};

// The shape of the reply to `args` (args[0] is the command name, any case).
ReplyShape ReplyShapeOf(std::span<const std::string_view> args);

// Rewrites the RESP2 replies in `*out` from byte `start` on (the replies the
// command `args` appended: one, or one per channel for (P)(UN)SUBSCRIBE)
// into RESP3. Bytes before `start` are untouched. Returns false, leaving
// `*out` unchanged, if those bytes are not complete RESP2 replies (never for
// the Dispatcher's own encoders).
bool ConvertRepliesToResp3(std::span<const std::string_view> args, std::string* out, size_t start);

// The RESP3 form of a pub/sub message encoded as a RESP2 array: the same
// bytes with the push type.
std::string PushMessage(std::string_view resp2_message);

}  // namespace cosmos::kv
