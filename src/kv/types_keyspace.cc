// Type-agnostic keyspace commands that move or copy values between keys:
// RENAME, RENAMENX and COPY (value, type and TTL together, as one batch).
#include "kv/command_util.h"
#include "kv/resp.h"
#include "kv/typed_commands.h"

namespace cosmos::kv {
namespace {

// The value of a live key as one whole record (deltas folded in), for
// commands that write it under another key. False after appending an error.
bool ReadWhole(TypedCtx& c, std::string_view key, ValueType* type, std::string* value) {
  std::vector<std::string> deltas;
  auto got = c.store->GetValue(key, type, value, &deltas);
  if (!got.ok()) {
    AppendStoreError(c.out, got.status());
    return false;
  }
  if (!deltas.empty()) {
    auto folded = FoldTypedValue(*value, deltas);
    if (!folded.ok()) {
      AppendError(c.out, "ERR cosmos-kv cannot decode the value of this key: " +
                             folded.status().ToString());
      return false;
    }
    *value = std::move(*folded);
  }
  return true;
}

uint64_t RenameImpl(TypedCtx& c, bool nx) {
  auto info = c.store->Lookup(c.args[1]);
  if (!info.ok()) {
    AppendStoreError(c.out, info.status());
    return 0;
  }
  if (!info->has_value()) {
    AppendError(c.out, "ERR no such key");
    return ReadSeq(c);
  }
  if (nx) {
    auto dst = c.store->Lookup(c.args[2]);
    if (!dst.ok()) {
      AppendStoreError(c.out, dst.status());
      return 0;
    }
    if (dst->has_value()) {
      AppendInteger(c.out, 0);
      return ReadSeq(c);
    }
  }
  if (c.args[1] == c.args[2]) {
    if (nx) {
      AppendInteger(c.out, 0);
    } else {
      AppendSimple(c.out, "OK");
    }
    return ReadSeq(c);
  }
  ValueType type;
  std::string value;
  if (!ReadWhole(c, c.args[1], &type, &value)) return 0;
  WriteBatch b;
  if (type == ValueType::kString) {
    b.Put(c.args[2], value, (*info)->expiry_ms);
  } else {
    b.PutTyped(c.args[2], value, (*info)->expiry_ms);
  }
  b.Delete(c.args[1]);
  uint64_t seq;
  if (!ApplyBatch(c, b, &seq)) return 0;
  if (nx) {
    AppendInteger(c.out, 1);
  } else {
    AppendSimple(c.out, "OK");
  }
  return seq;
}

// COPY source destination [DB 0] [REPLACE]: the value (any type, folded to
// one whole record) and TTL; 1 if copied, 0 if the destination exists
// without REPLACE or the source is missing.
uint64_t Copy(TypedCtx& c) {
  bool replace = false;
  for (size_t i = 3; i < c.args.size(); ++i) {
    if (EqualsIgnoreCase(c.args[i], "replace")) {
      replace = true;
    } else if (EqualsIgnoreCase(c.args[i], "db") && i + 1 < c.args.size()) {
      int64_t db;
      if (!ParseIntArg(c, i + 1, &db)) return 0;
      if (db != 0) {
        AppendError(c.out, "ERR DB index is out of range");
        return 0;
      }
      ++i;
    } else {
      AppendError(c.out, kSyntax);
      return 0;
    }
  }
  if (c.args[1] == c.args[2]) {
    AppendError(c.out, "ERR source and destination objects are the same");
    return 0;
  }
  auto src = c.store->Lookup(c.args[1]);
  auto dst = c.store->Lookup(c.args[2]);
  if (!src.ok() || !dst.ok()) {
    AppendStoreError(c.out, src.ok() ? dst.status() : src.status());
    return 0;
  }
  if (!src->has_value() || (dst->has_value() && !replace)) {
    AppendInteger(c.out, 0);
    return ReadSeq(c);
  }
  std::string value;
  ValueType type;
  if (!ReadWhole(c, c.args[1], &type, &value)) return 0;
  WriteBatch b;
  if (type == ValueType::kString) {
    b.Put(c.args[2], value, (*src)->expiry_ms);
  } else {
    b.PutTyped(c.args[2], value, (*src)->expiry_ms);
  }
  uint64_t seq;
  if (!ApplyBatch(c, b, &seq)) return 0;
  AppendInteger(c.out, 1);
  return seq;
}

uint64_t Rename(TypedCtx& c) { return RenameImpl(c, false); }
uint64_t RenameNx(TypedCtx& c) { return RenameImpl(c, true); }

constexpr TypedCommand kKeyspaceCommands[] = {
    {"rename", 3, &Rename, true},
    {"renamenx", 3, &RenameNx, true},
    {"copy", -3, &Copy, true},
};

}  // namespace

std::span<const TypedCommand> KeyspaceCommands() { return kKeyspaceCommands; }

}  // namespace cosmos::kv
