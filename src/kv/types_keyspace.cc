// Type-agnostic keyspace commands that move values between keys: RENAME and
// RENAMENX (value, type and TTL move together, as one batch).
#include "kv/command_util.h"
#include "kv/resp.h"
#include "kv/typed_commands.h"

namespace cosmos::kv {
namespace {

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
  std::vector<std::string> deltas;
  auto got = c.store->GetValue(c.args[1], &type, &value, &deltas);
  if (!got.ok()) {
    AppendStoreError(c.out, got.status());
    return 0;
  }
  if (!deltas.empty()) {  // the new key starts with one whole value
    auto folded = FoldTypedValue(value, deltas);
    if (!folded.ok()) {
      AppendError(c.out, "ERR cosmos-kv cannot decode the value of this key: " +
                             folded.status().ToString());
      return 0;
    }
    value = std::move(*folded);
  }
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

uint64_t Rename(TypedCtx& c) { return RenameImpl(c, false); }
uint64_t RenameNx(TypedCtx& c) { return RenameImpl(c, true); }

constexpr TypedCommand kKeyspaceCommands[] = {
    {"rename", 3, &Rename, true},
    {"renamenx", 3, &RenameNx, true},
};

}  // namespace

std::span<const TypedCommand> KeyspaceCommands() { return kKeyspaceCommands; }

}  // namespace cosmos::kv
