// The command families beyond strings: hashes, lists, sets, sorted sets and
// type-agnostic keyspace commands (RENAME). Each family is a table of small
// handlers in its own file (types_hash.cc, types_list.cc, types_set.cc,
// types_zset.cc, types_keyspace.cc); the Dispatcher consults them after its
// string table. Values are whole-value kPutTyped records (value_codec.h):
// a handler loads and decodes the value, changes it, and writes it back as
// one batch, so each command is atomic and durable before its reply.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "kv/blocking.h"
#include "kv/store.h"
#include "kv/value_codec.h"

namespace cosmos::kv {

// Decoded large collections kept between commands, so a command on a
// collection of n elements costs O(change), not O(n) (decode, deltas),
// when the key was touched before. An entry is used only if the key's
// KeyVersion still names the record the value was built from (versions are
// exact), so any write that bypasses the cache (SET over the key, DEL,
// RENAME, FLUSHDB, a compaction moving records) turns it into a miss.
// Only values whose records take at least kMinDeltaBase bytes are kept;
// beyond `max_bytes` of those record bytes arbitrary entries are evicted
// (decoded values take a few times their record bytes of DRAM). Not
// thread-safe: one per Dispatcher.
class ValueCache {
 public:
  using Value = std::variant<HashValue, ListValue, SetValue, ZSetValue>;
  explicit ValueCache(uint64_t max_bytes = 64ull << 20) : max_bytes_(max_bytes) {}
  // Moves the value of `key` out if it was built at `version` (generation
  // and value position; expiry is ignored) and holds a T; nullopt otherwise.
  template <typename T>
  std::optional<T> Take(std::string_view key, const KeyVersion& version);
  // Keeps `value` (built at `version`, `bytes` of records) for `key`.
  void Put(std::string_view key, const KeyVersion& version, uint64_t bytes, Value value);
  void Erase(std::string_view key);
  uint64_t bytes() const { return bytes_; }
  size_t size() const { return map_.size(); }

 private:
  struct Entry {
    KeyVersion version;
    uint64_t bytes;
    Value value;
  };
  std::unordered_map<std::string, Entry> map_;
  uint64_t bytes_ = 0;
  const uint64_t max_bytes_;
};

// What a handler sees of one command.
struct TypedCtx {
  Store* store;
  std::span<const std::string_view> args;  // args[0] is the name
  std::string* out;                        // exactly one reply is appended
  ValueCache* cache = nullptr;             // null: no caching
  // Where a blocking command that finds nothing parks itself; null when it
  // may not block (inside EXEC), when it replies as on a timeout at once.
  BlockRequest* block = nullptr;
};

// Returns the sequence number that must be durable before the reply may be
// sent (the last applied sequence for reads, 0 when nothing was read).
using TypedHandler = uint64_t (*)(TypedCtx&);

struct TypedCommand {
  const char* name;  // lower case
  int arity;         // Redis convention: >0 exact, <0 at least -arity
  TypedHandler handler;
  bool write;
};

// The command of these families named `name` (any case), nullptr if none.
const TypedCommand* FindTypedCommand(std::string_view name);
// Number of commands in these families (COMMAND COUNT).
size_t TypedCommandCount();

// For string commands (GET, INCR, APPEND, ...; `lower_name` in lower case):
// if the key they read holds another type, appends Redis's WRONGTYPE error
// and returns true. Store errors are left to the command itself (false).
bool RejectStringCommandOnOtherType(Store* store, std::string_view lower_name,
                                    std::span<const std::string_view> args, std::string* out);

// The families' tables (one per file).
std::span<const TypedCommand> HashCommands();
std::span<const TypedCommand> ListCommands();
std::span<const TypedCommand> SetCommands();
std::span<const TypedCommand> ZSetCommands();
std::span<const TypedCommand> KeyspaceCommands();
std::span<const TypedCommand> StringCommands();  // types_string.cc

// ---- Helpers for the handlers (typed_commands.cc) ----

// A key's decoded value as loaded by a handler.
// On destruction a loaded value goes back to the ValueCache when that is
// safe: unchanged (empty, valid journal) at the version it was loaded at, or
// saved by Save* (which records the new version). A changed value that was
// not saved (a failed write, or a multi-key batch) is dropped.
template <typename T>
struct Loaded {
  Loaded() = default;
  Loaded(const Loaded&) = delete;
  Loaded& operator=(const Loaded&) = delete;
  Loaded(Loaded&& o) noexcept { *this = std::move(o); }
  Loaded& operator=(Loaded&& o) noexcept {
    found = o.found;
    expiry_ms = o.expiry_ms;
    value = std::move(o.value);
    base_len = o.base_len;
    delta_count = o.delta_count;
    delta_bytes = o.delta_bytes;
    cache = o.cache;
    key = std::move(o.key);
    version = o.version;
    saved = o.saved;
    o.cache = nullptr;
    return *this;
  }
  ~Loaded() { ReturnToCache(this); }

  bool found = false;
  int64_t expiry_ms = 0;  // kept when the value is written back
  T value{};              // its journal holds the command's changes
  // The key's records as loaded (for choosing a delta or a whole write).
  uint64_t base_len = 0;
  uint32_t delta_count = 0;
  uint64_t delta_bytes = 0;
  // Where the value goes back to (set by Load* when the key is cacheable).
  ValueCache* cache = nullptr;
  std::string key;
  KeyVersion version;
  bool saved = false;  // Save* wrote it and set `version` to the new records
};

// Puts a Loaded value back into its cache if that is safe (see Loaded).
template <typename T>
void ReturnToCache(Loaded<T>* v);

// Load `key` as the given type. Return false after appending an error reply
// (WRONGTYPE, a store error, or a value that fails to decode); true with
// found == false when the key is absent.
[[nodiscard]] bool LoadHash(TypedCtx& c, std::string_view key, Loaded<HashValue>* v);
[[nodiscard]] bool LoadList(TypedCtx& c, std::string_view key, Loaded<ListValue>* v);
[[nodiscard]] bool LoadSet(TypedCtx& c, std::string_view key, Loaded<SetValue>* v);
[[nodiscard]] bool LoadZSet(TypedCtx& c, std::string_view key, Loaded<ZSetValue>* v);

// Adds to `batch` the write of `v` under `key`: a delete when the value is
// empty (Redis removes empty collections); a delta record with the value's
// journal when the key existed, the journal is valid and the key's delta
// chain stays small next to its base (ShouldWriteDelta); else the whole
// value. Keeps v.expiry_ms. The encoded
// bytes are kept in `*storage` (they must outlive the Apply; a deque keeps
// earlier elements in place as it grows).
void StageHash(std::string_view key, const Loaded<HashValue>& v, WriteBatch* batch,
               std::deque<std::string>* storage);
void StageList(std::string_view key, const Loaded<ListValue>& v, WriteBatch* batch,
               std::deque<std::string>* storage);
void StageSet(std::string_view key, const Loaded<SetValue>& v, WriteBatch* batch,
              std::deque<std::string>* storage);
void StageZSet(std::string_view key, const Loaded<ZSetValue>& v, WriteBatch* batch,
               std::deque<std::string>* storage);

// True if a change of `journal_bytes` to a key with this base and chain
// should be logged as a delta rather than as the whole value: the base is
// not tiny, and the chain (read back on every cold load) stays within the
// base's size and kMaxDeltaChain records.
inline constexpr uint32_t kMaxDeltaChain = 1024;
inline constexpr uint64_t kMinDeltaBase = 1024;
bool ShouldWriteDelta(uint64_t base_len, uint32_t delta_count, uint64_t delta_bytes,
                      uint64_t journal_bytes);

// Applies `batch` (one atomic, durable-together group). Returns false after
// appending the store's error reply; else sets *seq.
[[nodiscard]] bool ApplyBatch(TypedCtx& c, const WriteBatch& batch, uint64_t* seq);

// Stage + Apply for a single key.
[[nodiscard]] bool SaveHash(TypedCtx& c, std::string_view key, Loaded<HashValue>& v, uint64_t* seq);
[[nodiscard]] bool SaveList(TypedCtx& c, std::string_view key, Loaded<ListValue>& v, uint64_t* seq);
[[nodiscard]] bool SaveSet(TypedCtx& c, std::string_view key, Loaded<SetValue>& v, uint64_t* seq);
[[nodiscard]] bool SaveZSet(TypedCtx& c, std::string_view key, Loaded<ZSetValue>& v, uint64_t* seq);

// The sequence a read-only reply waits for (the last applied one).
uint64_t ReadSeq(TypedCtx& c);
// Parses args[i] as a Redis integer; false after appending the Redis error.
[[nodiscard]] bool ParseIntArg(TypedCtx& c, size_t i, int64_t* v);
// The count of SRANDMEMBER, HRANDFIELD and ZRANDMEMBER in args[i]: any
// integer except INT64_MIN and counts below -kMaxRandomCount (a reply of
// gigabytes, which Redis would build; cosmos-kv refuses). False after
// appending the error.
inline constexpr int64_t kMaxRandomCount = int64_t{1} << 24;
[[nodiscard]] bool ParseRandomCount(TypedCtx& c, size_t i, int64_t* count);
// Indexes into n elements for a random pick: count >= 0 gives min(count, n)
// distinct indexes in random order, count < 0 gives -count indexes drawn
// with repetition (none when n == 0).
std::vector<size_t> PickIndexes(size_t n, int64_t count);
// Parses a blocking command's timeout (seconds, fractions allowed) in
// args[i] into milliseconds, rounded up, as Redis does; false after
// appending Redis's error (not a float, out of range, negative).
[[nodiscard]] bool ParseBlockTimeout(TypedCtx& c, size_t i, int64_t* timeout_ms);
// A blocking command found none of `keys` ready: parks it in c.block (the
// server runs c.args again once a key holds `type`; a timeout answers a nil
// array, as Redis 7.0 does for every blocking command), or, when c.block is
// null (inside EXEC), appends Redis's immediate reply: *-1, or $-1 if
// !null_array (BLMOVE, BRPOPLPUSH).
void BlockOrTimeOut(TypedCtx& c, std::vector<std::string> keys, ValueType type, int64_t timeout_ms,
                    bool null_array);
// Appends "ERR wrong number of arguments for '<name>' command".
void AppendArityError(TypedCtx& c);
// LMPOP/BLMPOP/ZMPOP/BZMPOP arguments from args[numkeys_index] on:
// numkeys key [key ...] <end> [COUNT count], where <end> is `first` (LEFT,
// MIN) or `second` (RIGHT, MAX), any case.
struct MultiPopArgs {
  size_t first_key = 0;  // index of the first key in args
  size_t numkeys = 0;
  bool second = false;  // the end named `second` was chosen
  int64_t count = 1;    // at least 1
};
// False after appending Redis 7.0's error (its order of checks: numkeys,
// the end, COUNT).
[[nodiscard]] bool ParseMultiPopArgs(TypedCtx& c, size_t numkeys_index, std::string_view first,
                                     std::string_view second, MultiPopArgs* out);
// The cursor/MATCH/COUNT arguments of HSCAN/SSCAN/ZSCAN (from args[2]).
struct ScanArgs {
  uint64_t cursor = 0;
  std::string_view pattern = "*";
  uint64_t count = 10;
};
// Parses them; false after appending Redis's error.
[[nodiscard]] bool ParseScanArgs(TypedCtx& c, ScanArgs* args);
// One HSCAN/SSCAN/ZSCAN step over a collection of `n` elements named by
// name_of(i). Up to kScanAllAtOnce elements answer everything in one call
// with cursor 0, as Redis's compact encodings do. Larger collections are
// walked in the order of a 64-bit hash of each element's name (never 0):
// the cursor is the hash the next call starts at, so every element present
// for a whole iteration is returned at least once however the collection
// changes in between (an element may come twice). Fills `picked` with about
// `count` indexes and returns the next cursor (0: done). O(n) per call.
inline constexpr size_t kScanAllAtOnce = 128;
uint64_t PickScanBatch(size_t n, const std::function<std::string_view(size_t)>& name_of,
                       const ScanArgs& args, std::vector<size_t>* picked);

}  // namespace cosmos::kv
