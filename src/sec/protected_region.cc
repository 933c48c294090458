// ProtectedRegion: per-block AES-GCM + Merkle tree + sealed root record +
// redo log over an untrusted store. Layout and formats: docs/security.md.
#include "sec/protected_region.h"

#include <algorithm>
#include <cstring>
#include <string_view>
#include <unordered_map>

#include "common/check.h"
#include "common/endian.h"
#include "common/log.h"
#include "sec/user_key.h"

namespace cosmos::sec {
namespace {

constexpr uint64_t kSlotSize = 1024;
constexpr uint64_t kSlotOffset[2] = {0, kSlotSize};
constexpr uint64_t kLogOffset = 2 * kSlotSize;
constexpr uint32_t kLogMagic = 0x474C5243;  // "CRLG"
constexpr uint16_t kLogVersion = 1;
constexpr size_t kLogHeaderSize = 64;
constexpr size_t kLogEntryHeader = 16;  // u64 offset, u32 length, u32 reserved
constexpr uint64_t kMetaSize = 32;
constexpr uint64_t kNodeSize = 32;
constexpr char kRootPurpose[] = "cosmos.region.root";
constexpr uint16_t kRootRecordVersion = 2;
constexpr size_t kRootFixedSize = 170;
constexpr uint64_t kAutoCacheNodes = 16384;
constexpr uint64_t kMaxBlocks = 1ull << 32;

uint64_t RoundUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

// Per-block metadata as stored (32 bytes): u64 version, u32 key epoch,
// u32 incarnation (selects the block sub-key), u8[16] GCM tag. All-zero =
// never written (reads as zeros).
struct BlockMeta {
  std::array<uint8_t, kMetaSize> raw{};
  uint64_t version() const { return LoadLE<uint64_t>(raw.data()); }
  uint32_t epoch() const { return LoadLE<uint32_t>(raw.data() + 8); }
  uint32_t incarnation() const { return LoadLE<uint32_t>(raw.data() + 12); }
  ByteSpan tag() const { return ByteSpan(raw.data() + 16, kGcmTagSize); }
  MutableByteSpan mutable_tag() { return MutableByteSpan(raw.data() + 16, kGcmTagSize); }
  void Set(uint64_t version, uint32_t epoch, uint32_t incarnation) {
    StoreLE<uint64_t>(raw.data(), version);
    StoreLE<uint32_t>(raw.data() + 8, epoch);
    StoreLE<uint32_t>(raw.data() + 12, incarnation);
  }
};

struct Layout {
  uint64_t block_count = 0;
  uint64_t block_size = 0;
  uint32_t levels = 0;              // tree levels including the root level
  uint32_t cut = 0;                 // first level held in enclave memory; levels < cut are stored
  std::vector<uint64_t> nodes;      // nodes per level
  std::vector<uint64_t> level_off;  // store offset of stored level l (l < cut)
  uint64_t log_bytes = 0;
  uint64_t meta_off = 0;
  uint64_t data_off = 0;
  uint64_t total = 0;
};

struct RootRecord {
  uint64_t region_id = 0;
  uint64_t block_count = 0;
  uint32_t block_size = 0;
  uint32_t cached_levels = 0;
  uint32_t log_capacity_blocks = 0;
  uint64_t counter = 0;
  uint32_t key_epoch = 0;
  uint32_t incarnation = 0;  // >= 1; +1 at every Open
  bool rotating = false;
  uint64_t rotation_cursor = 0;
  // Counter value of the record that started this incarnation, and the
  // stable counter value it jumped from (see StartIncarnation).
  uint64_t incarnation_counter = 0;
  uint64_t incarnation_base = 0;
  Digest root{};
  Bytes acl;
};

bool IsPowerOfTwo(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

Status CheckGeometry(uint64_t block_size, uint64_t block_count, uint32_t log_cap) {
  if (!IsPowerOfTwo(block_size) || block_size < 512 || block_size > 65536) {
    return Status::InvalidArgument("block size must be a power of two in [512, 65536]");
  }
  if (block_count == 0 || block_count > kMaxBlocks) {
    return Status::InvalidArgument("region must have 1..2^32 blocks");
  }
  if (log_cap == 0 || log_cap > 4096) {
    return Status::InvalidArgument("log capacity must be 1..4096 blocks");
  }
  return Status::Ok();
}

// cached_levels == 0 means automatic. Returns the resolved count in *resolved.
Layout MakeLayout(uint64_t block_size, uint64_t block_count, uint32_t cached_levels,
                  uint32_t log_cap, uint32_t* resolved) {
  Layout l;
  l.block_count = block_count;
  l.block_size = block_size;
  for (uint64_t n = block_count;; n = (n + 1) / 2) {
    l.nodes.push_back(n);
    if (n == 1) break;
  }
  l.levels = static_cast<uint32_t>(l.nodes.size());
  if (cached_levels == 0) {
    uint32_t cut = 0;
    while (l.nodes[cut] > kAutoCacheNodes) ++cut;
    cached_levels = l.levels - cut;
  }
  cached_levels = std::clamp<uint32_t>(cached_levels, 1, l.levels);
  *resolved = cached_levels;
  l.cut = l.levels - cached_levels;
  const uint64_t entry = kLogEntryHeader;
  l.log_bytes = RoundUp(kLogHeaderSize + kSlotSize +
                            uint64_t{log_cap} * ((entry + block_size) + (entry + kMetaSize) +
                                                 uint64_t{l.cut} * (entry + kNodeSize)),
                        4096);
  uint64_t off = kLogOffset + l.log_bytes;
  l.meta_off = off;
  off += block_count * kMetaSize;
  for (uint32_t lv = 0; lv < l.cut; ++lv) {
    l.level_off.push_back(off);
    off += l.nodes[lv] * kNodeSize;
  }
  l.data_off = RoundUp(off, 4096);
  l.total = l.data_off + block_count * block_size;
  return l;
}

Bytes SerializeRoot(const RootRecord& r, ByteSpan keys) {
  Bytes out;
  out.reserve(kRootFixedSize + r.acl.size());
  ByteWriter w(&out);
  w.U16(kRootRecordVersion);
  w.U16(r.rotating ? 1 : 0);
  w.U32(r.block_size);
  w.U64(r.region_id);
  w.U64(r.block_count);
  w.U32(r.cached_levels);
  w.U32(r.log_capacity_blocks);
  w.U64(r.counter);
  w.U32(r.key_epoch);
  w.U32(r.incarnation);
  w.U64(r.rotation_cursor);
  w.U64(r.incarnation_counter);
  w.U64(r.incarnation_base);
  w.Raw(keys.subspan(0, 64));
  w.Raw(r.root);
  w.U16(static_cast<uint16_t>(r.acl.size()));
  w.Raw(r.acl);
  return out;
}

// Parses a root-record plaintext; copies the two keys into `keys` (64 bytes)
// when given.
Result<RootRecord> ParseRoot(ByteSpan in, MutableByteSpan keys) {
  ByteReader rd(in);
  RootRecord r;
  const uint16_t version = rd.U16();
  const uint16_t flags = rd.U16();
  r.block_size = rd.U32();
  r.region_id = rd.U64();
  r.block_count = rd.U64();
  r.cached_levels = rd.U32();
  r.log_capacity_blocks = rd.U32();
  r.counter = rd.U64();
  r.key_epoch = rd.U32();
  r.incarnation = rd.U32();
  r.rotation_cursor = rd.U64();
  r.incarnation_counter = rd.U64();
  r.incarnation_base = rd.U64();
  ByteSpan k = rd.View(64);
  rd.Raw(r.root);
  const uint16_t acl_len = rd.U16();
  if (!rd.ok()) return Status::Corruption("root record: truncated");
  if (version != kRootRecordVersion) return Status::Corruption("root record: unknown version");
  if ((flags & ~1u) != 0) return Status::Corruption("root record: bad flags");
  r.rotating = (flags & 1) != 0;
  if (acl_len > kMaxAccessListBlob) return Status::Corruption("root record: ACL too large");
  ByteSpan acl = rd.View(acl_len);
  if (!rd.AtEndOk()) return Status::Corruption("root record: length mismatch");
  r.acl.assign(acl.begin(), acl.end());
  COSMOS_RETURN_IF_ERROR(
      CheckGeometry(r.block_size, r.block_count, r.log_capacity_blocks).WithContext("root record"));
  if (r.cached_levels == 0 || r.cached_levels > 64 || r.key_epoch == 0 || r.incarnation == 0 ||
      r.rotation_cursor > r.block_count || r.incarnation_counter > r.counter ||
      r.incarnation_base >= r.incarnation_counter) {
    return Status::Corruption("root record: field out of range");
  }
  if (!keys.empty()) std::memcpy(keys.data(), k.data(), 64);
  return r;
}

// AAD of every sealed root record: the host's claims about the region.
Bytes RegionAad(const RegionBinding& b) {
  Bytes aad;
  ByteWriter w(&aad);
  w.Raw(AsBytes("cosmos.region.binding.v1"));
  w.U8(static_cast<uint8_t>(b.pool_uuid.size()));
  w.Raw(AsBytes(b.pool_uuid));
  w.U64(b.region_id);
  w.U16(static_cast<uint16_t>(b.name.size()));
  w.Raw(AsBytes(b.name));
  return aad;
}

std::string Label(const RegionBinding& b) { return "region '" + b.name + "' (" + b.Key() + ")"; }

constexpr size_t kMaxBlockSubkeys = 8;

struct LogView {
  uint64_t counter = 0;
  ByteSpan root_blob;
  ByteSpan entries;
};

// Parses the redo log image (header + body); Corruption when absent or torn.
Result<LogView> ParseLog(ByteSpan log) {
  ByteReader rd(log);
  const uint32_t magic = rd.U32();
  const uint16_t version = rd.U16();
  rd.U16();
  rd.U32();  // entry count: informational, entries are self-delimiting
  const uint32_t root_len = rd.U32();
  const uint64_t body_len = rd.U64();
  LogView v;
  v.counter = rd.U64();
  ByteSpan digest = rd.View(kSha256Size);
  if (!rd.ok() || magic != kLogMagic || version != kLogVersion) {
    return Status::Corruption("redo log: no valid header");
  }
  if (root_len > kSlotSize || body_len < root_len || body_len > rd.remaining()) {
    return Status::Corruption("redo log: lengths out of range");
  }
  ByteSpan body = rd.View(body_len);
  Sha256Hasher h;
  h.Update(log.subspan(0, kLogHeaderSize - kSha256Size));
  h.Update(body);
  Digest d = h.Final();
  if (!ConstantTimeEqual(d, digest)) return Status::Corruption("redo log: digest mismatch (torn)");
  v.root_blob = body.subspan(0, root_len);
  v.entries = body.subspan(root_len);
  return v;
}

uint64_t NodeKey(uint32_t level, uint64_t index) { return (uint64_t{level} << 40) | index; }

thread_local int no_counter_wait_depth = 0;
constexpr std::string_view kCounterWaitNeeded =
    "call would wait for the trusted counter (no-wait scope)";

Status CounterWaitNeeded() { return Status::WouldBlock(std::string(kCounterWaitNeeded)); }

// WaitStable, or CounterWaitNeeded() under a NoCounterWaitScope.
Status WaitStableOrRefuse(MonotonicCounter* counter, uint64_t value) {
  if (no_counter_wait_depth > 0 && !counter->IsStable(value)) return CounterWaitNeeded();
  return counter->WaitStable(value);
}

}  // namespace

NoCounterWaitScope::NoCounterWaitScope() { ++no_counter_wait_depth; }
NoCounterWaitScope::~NoCounterWaitScope() { --no_counter_wait_depth; }
bool NoCounterWaitScope::active() { return no_counter_wait_depth > 0; }

bool IsCounterWaitNeeded(const Status& s) { return s.code() == StatusCode::kWouldBlock; }

class ProtectedRegion::Impl {
 public:
  uint64_t region_id = 0;
  RegionBinding binding;
  std::string label;  // for messages
  Layout layout;
  RegionPolicy policy;
  UntrustedStore* store = nullptr;
  MonotonicCounter* counter = nullptr;
  Sealer* sealer = nullptr;
  RootRecord rec;
  std::unique_ptr<LockedBuffer> keys;  // [0,32) current key, [32,64) previous key
  // Block sub-keys HKDF(epoch key, incarnation) by (epoch << 32 | incarnation);
  // at most kMaxBlockSubkeys, the current one always among them.
  std::map<uint64_t, std::unique_ptr<AesGcm>> block_keys;
  // Counter value of the record that started this incarnation: no block is
  // encrypted under the incarnation's sub-key before it is stable.
  uint64_t incarnation_counter = 0;
  std::vector<std::vector<Digest>> cache;  // cache[l - cut] for levels >= cut
  std::map<uint64_t, Bytes> dirty;         // block index -> pending plaintext
  Sha256Hasher hasher;
  Bytes scratch;
  std::mutex mu;
  bool failed = false;
  RegionStats stats;

  using NodeMap = std::unordered_map<uint64_t, Digest>;

  Digest LeafHash(uint64_t index, const BlockMeta& m) {
    uint8_t hdr[9];
    hdr[0] = 0x00;
    StoreLE<uint64_t>(hdr + 1, index);
    hasher.Update(ByteSpan(hdr, sizeof(hdr)));
    hasher.Update(m.raw);
    return hasher.Final();
  }
  Digest NodeHash(uint32_t level, uint64_t index, const Digest& left, const Digest& right) {
    uint8_t hdr[13];
    hdr[0] = 0x01;
    StoreLE<uint32_t>(hdr + 1, level);
    StoreLE<uint64_t>(hdr + 5, index);
    hasher.Update(ByteSpan(hdr, sizeof(hdr)));
    hasher.Update(left);
    hasher.Update(right);
    return hasher.Final();
  }

  Status ReadMeta(uint64_t i, BlockMeta* m) {
    return store->Read(layout.meta_off + i * kMetaSize, m->raw);
  }

  // Checks block i's metadata against the trusted cached tree level using
  // sibling nodes from the store; records every node value it establishes in
  // `known` (when given) for a following commit.
  Status VerifyPath(uint64_t i, const BlockMeta& m, NodeMap* known) {
    Digest node = LeafHash(i, m);
    uint64_t idx = i;
    static const Digest kZero{};
    for (uint32_t l = 0; l < layout.cut; ++l) {
      const uint64_t sib = idx ^ 1;
      Digest sv = kZero;
      if (sib < layout.nodes[l]) {
        auto it = known ? known->find(NodeKey(l, sib)) : NodeMap::iterator();
        if (known && it != known->end()) {
          sv = it->second;
        } else {
          COSMOS_RETURN_IF_ERROR(store->Read(layout.level_off[l] + sib * kNodeSize, sv));
        }
      }
      if (known) {
        (*known)[NodeKey(l, sib)] = sv;
        (*known)[NodeKey(l, idx)] = node;
      }
      node = (idx & 1) ? NodeHash(l + 1, idx / 2, sv, node) : NodeHash(l + 1, idx / 2, node, sv);
      idx /= 2;
    }
    if (!ConstantTimeEqual(node, cache[0][idx])) {
      return Status::IntegrityViolation(label + " block " + std::to_string(i) +
                                        ": metadata or tree node does not match the trusted root");
    }
    return Status::Ok();
  }

  static constexpr size_t kBlockAadSize = 32;
  // Nonce: LE64 version || LE32 block index (unique per block sub-key: the
  // version of a block only grows within an incarnation). AAD binds region
  // id, index, version, epoch and incarnation.
  void BlockNonceAad(uint64_t i, const BlockMeta& m, GcmNonce* nonce, uint8_t aad[kBlockAadSize]) {
    StoreLE<uint64_t>(nonce->data(), m.version());
    StoreLE<uint32_t>(nonce->data() + 8, static_cast<uint32_t>(i));
    StoreLE<uint64_t>(aad, region_id);
    StoreLE<uint64_t>(aad + 8, i);
    StoreLE<uint64_t>(aad + 16, m.version());
    StoreLE<uint32_t>(aad + 24, m.epoch());
    StoreLE<uint32_t>(aad + 28, m.incarnation());
  }

  // The block cipher for (epoch, incarnation): the epoch key must be the
  // current one or, during a rotation, the previous one. IntegrityViolation
  // for any other epoch or incarnation 0 / beyond the current one.
  Result<AesGcm*> BlockCipher(uint64_t i, uint32_t epoch, uint32_t incarnation) {
    const uint8_t* key = nullptr;
    if (epoch == rec.key_epoch) {
      key = keys->data();
    } else if (rec.rotating && epoch + 1 == rec.key_epoch) {
      key = keys->data() + 32;
    } else {
      return Status::IntegrityViolation(label + " block " + std::to_string(i) +
                                        ": unknown key epoch");
    }
    // The tree authenticates the metadata; this only keeps a corrupt value
    // from deriving keys (incarnations of the previous epoch are not bounded
    // by the current record).
    if (incarnation == 0 || (epoch == rec.key_epoch && incarnation > rec.incarnation)) {
      return Status::IntegrityViolation(label + " block " + std::to_string(i) +
                                        ": incarnation out of range");
    }
    const uint64_t k = (uint64_t{epoch} << 32) | incarnation;
    if (auto it = block_keys.find(k); it != block_keys.end()) return it->second.get();
    SecretArray<kAesKeySize> sub;
    uint8_t info[4 + 22];
    std::memcpy(info, "cosmos-block-subkey-v1", 22);
    StoreLE<uint32_t>(info + 22, incarnation);
    COSMOS_RETURN_IF_ERROR(
        HkdfSha256(ByteSpan(key, 32), {}, ByteSpan(info, sizeof(info)), sub.mutable_span()));
    std::unique_ptr<AesGcm> gcm;
    if (block_keys.size() >= kMaxBlockSubkeys) {
      // Recycle an entry other than the current incarnation's.
      const uint64_t keep = (uint64_t{rec.key_epoch} << 32) | rec.incarnation;
      auto victim = block_keys.begin();
      if (victim->first == keep) ++victim;
      gcm = std::move(victim->second);
      block_keys.erase(victim);
      COSMOS_RETURN_IF_ERROR(gcm->Rekey(sub.span()));
    } else {
      COSMOS_ASSIGN_OR_RETURN(gcm, AesGcm::Create(sub.span()));
    }
    ++stats.block_subkeys_derived;
    AesGcm* out = gcm.get();
    block_keys[k] = std::move(gcm);
    return out;
  }

  // Drops cached sub-keys of an epoch key that changed or was wiped.
  void ForgetBlockKeys() { block_keys.clear(); }

  // Reads and authenticates the durable content of block i into out.
  Status ReadDurableBlock(uint64_t i, MutableByteSpan out) {
    BlockMeta m;
    COSMOS_RETURN_IF_ERROR(ReadMeta(i, &m));
    COSMOS_RETURN_IF_ERROR(VerifyPath(i, m, nullptr));
    if (m.version() == 0) {
      std::memset(out.data(), 0, out.size());
      return Status::Ok();
    }
    COSMOS_ASSIGN_OR_RETURN(AesGcm * gcm, BlockCipher(i, m.epoch(), m.incarnation()));
    scratch.resize(layout.block_size);
    COSMOS_RETURN_IF_ERROR(store->Read(layout.data_off + i * layout.block_size, scratch));
    GcmNonce nonce;
    uint8_t aad[kBlockAadSize];
    BlockNonceAad(i, m, &nonce, aad);
    Status s = gcm->Open(nonce, ByteSpan(aad, sizeof(aad)), scratch, m.tag(), out);
    if (!s.ok()) {
      return Status::IntegrityViolation(label + " block " + std::to_string(i) + ": " + s.message());
    }
    return Status::Ok();
  }

  Status ReadBlock(uint64_t i, MutableByteSpan out) {
    auto it = dirty.find(i);
    if (it != dirty.end()) {
      std::memcpy(out.data(), it->second.data(), out.size());
      return Status::Ok();
    }
    return ReadDurableBlock(i, out);
  }

  Status SealRecord(const RootRecord& r, Bytes* blob) {
    Bytes plain = SerializeRoot(r, keys->span());
    auto sealed = sealer->Seal(kRootPurpose, kRootRecordVersion, RegionAad(binding), plain);
    SecureWipe(plain);
    if (!sealed.ok()) return sealed.status();
    *blob = std::move(*sealed);
    COSMOS_CHECK(blob->size() + 4 <= kSlotSize);
    return Status::Ok();
  }

  Status WriteSlot(uint64_t counter_value, const Bytes& blob) {
    Bytes slot(4 + blob.size());
    StoreLE<uint32_t>(slot.data(), static_cast<uint32_t>(blob.size()));
    std::memcpy(slot.data() + 4, blob.data(), blob.size());
    const uint64_t off = kSlotOffset[counter_value % 2];
    COSMOS_RETURN_IF_ERROR(store->Write(off, slot));
    ByteRange r{off, slot.size()};
    ++stats.persists;
    return store->Persist({&r, 1});
  }

  // Atomically replaces the given blocks (plaintext) and installs `next` as
  // the root record. Verification failures leave the region unchanged; any
  // failure after the redo log is written marks the region failed.
  // `jump_to` != 0: `next` starts an incarnation at counter value `jump_to`
  // (StartIncarnation: past every value an earlier run may have used; the
  // counter moves there only once the record is in the durable redo log, and
  // the unstable bound does not apply to the jump).
  Status Commit(const std::vector<std::pair<uint64_t, const Bytes*>>& batch, RootRecord next,
                uint64_t jump_to = 0) {
    const bool incarnation_start = jump_to != 0;
    NodeMap known;
    std::vector<BlockMeta> metas(batch.size());
    if (!batch.empty() && !counter->IsStable(incarnation_counter)) {
      // The record that started this incarnation must be stable before its
      // sub-key encrypts anything (else a crash could bring the incarnation
      // back with other plaintext under the same nonces).
      COSMOS_RETURN_IF_ERROR(WaitStableOrRefuse(counter, incarnation_counter));
    }
    AesGcm* block_gcm = nullptr;
    if (!batch.empty()) {
      COSMOS_ASSIGN_OR_RETURN(block_gcm,
                              BlockCipher(batch[0].first, next.key_epoch, next.incarnation));
    }
    for (size_t k = 0; k < batch.size(); ++k) {
      COSMOS_RETURN_IF_ERROR(ReadMeta(batch[k].first, &metas[k]));
      COSMOS_RETURN_IF_ERROR(VerifyPath(batch[k].first, metas[k], &known));
    }
    std::vector<std::pair<uint64_t, Bytes>> writes;  // store offset -> bytes
    std::map<uint64_t, Digest> level;                // dirty nodes of the current level
    for (size_t k = 0; k < batch.size(); ++k) {
      const uint64_t i = batch[k].first;
      const BlockMeta& old = metas[k];
      // Versions keep growing across incarnations (the tree makes them fresh);
      // uniqueness of a nonce needs them to grow only within one sub-key.
      const uint64_t version =
          (old.version() > 0 && old.epoch() == next.key_epoch) ? old.version() + 1 : 1;
      COSMOS_CHECK(version < (1ull << 63));
      BlockMeta nm;
      nm.Set(version, next.key_epoch, next.incarnation);
      GcmNonce nonce;
      uint8_t aad[kBlockAadSize];
      BlockNonceAad(i, nm, &nonce, aad);
      Bytes ct(layout.block_size);
      COSMOS_RETURN_IF_ERROR(block_gcm->Seal(nonce, ByteSpan(aad, sizeof(aad)), *batch[k].second,
                                             ct, nm.mutable_tag()));
      writes.emplace_back(layout.data_off + i * layout.block_size, std::move(ct));
      writes.emplace_back(layout.meta_off + i * kMetaSize, Bytes(nm.raw.begin(), nm.raw.end()));
      level[i] = LeafHash(i, nm);
    }
    static const Digest kZero{};
    std::vector<std::pair<uint64_t, Digest>> cache_updates;  // NodeKey -> value
    for (uint32_t l = 0; l < layout.levels && !level.empty(); ++l) {
      auto get = [&](uint64_t x) -> Result<Digest> {
        if (x >= layout.nodes[l]) return kZero;
        auto it = level.find(x);
        if (it != level.end()) return it->second;
        if (l >= layout.cut) return cache[l - layout.cut][x];
        auto k = known.find(NodeKey(l, x));
        if (k == known.end()) return Status::Internal("commit: sibling node not verified");
        return k->second;
      };
      for (const auto& [idx, v] : level) {
        if (l < layout.cut) {
          writes.emplace_back(layout.level_off[l] + idx * kNodeSize, Bytes(v.begin(), v.end()));
        } else {
          cache_updates.emplace_back(NodeKey(l, idx), v);
        }
      }
      if (l + 1 == layout.levels) break;
      std::map<uint64_t, Digest> parents;
      for (const auto& [idx, v] : level) {
        const uint64_t p = idx / 2;
        if (parents.count(p)) continue;
        COSMOS_ASSIGN_OR_RETURN(Digest left, get(2 * p));
        COSMOS_ASSIGN_OR_RETURN(Digest right, get(2 * p + 1));
        parents[p] = NodeHash(l + 1, p, left, right);
      }
      level = std::move(parents);
    }
    if (!batch.empty()) {
      next.root = level.begin()->second;
    } else {
      next.root = cache.back()[0];
    }
    // Keep the unstable increments within the mode's bound (strict: this one
    // only; relaxed: the window). Flush waits for this outside the mutex
    // first, so only early or multi-batch commits wait here.
    if (const uint64_t need = StableNeededBeforeIncrement(); need > 0 && !incarnation_start) {
      COSMOS_RETURN_IF_ERROR(WaitStableOrRefuse(counter, need));
    }
    next.counter = incarnation_start ? jump_to : counter->Current() + 1;
    if (incarnation_start) next.incarnation_counter = next.counter;

    // From here on a failure leaves the in-enclave state behind the store.
    failed = true;
    Bytes blob;
    COSMOS_RETURN_IF_ERROR(SealRecord(next, &blob));
    Bytes log(kLogHeaderSize);
    ByteWriter w(&log);
    w.Raw(blob);
    for (const auto& [off, bytes] : writes) {
      w.U64(off);
      w.U32(static_cast<uint32_t>(bytes.size()));
      w.U32(0);
      w.Raw(bytes);
    }
    COSMOS_CHECK(log.size() <= layout.log_bytes);
    StoreLE<uint32_t>(log.data(), kLogMagic);
    StoreLE<uint16_t>(log.data() + 4, kLogVersion);
    StoreLE<uint16_t>(log.data() + 6, 0);
    StoreLE<uint32_t>(log.data() + 8, static_cast<uint32_t>(writes.size()));
    StoreLE<uint32_t>(log.data() + 12, static_cast<uint32_t>(blob.size()));
    StoreLE<uint64_t>(log.data() + 16, log.size() - kLogHeaderSize);
    StoreLE<uint64_t>(log.data() + 24, next.counter);
    hasher.Update(ByteSpan(log.data(), kLogHeaderSize - kSha256Size));
    hasher.Update(ByteSpan(log.data() + kLogHeaderSize, log.size() - kLogHeaderSize));
    Digest d = hasher.Final();
    std::memcpy(log.data() + 32, d.data(), d.size());
    COSMOS_RETURN_IF_ERROR(store->Write(kLogOffset, log));
    ByteRange log_range{kLogOffset, log.size()};
    ++stats.persists;
    COSMOS_RETURN_IF_ERROR(store->Persist({&log_range, 1}));

    uint64_t c = 0;
    if (incarnation_start) {
      COSMOS_RETURN_IF_ERROR(counter->AdvanceTo(next.counter));
      c = counter->Current();
    } else {
      COSMOS_ASSIGN_OR_RETURN(c, counter->Increment());
    }
    if (c != next.counter) {
      return Status::Internal("trusted counter moved under " + label);
    }
    std::vector<ByteRange> ranges;
    for (const auto& [off, bytes] : writes) {
      COSMOS_RETURN_IF_ERROR(store->Write(off, bytes));
      ranges.push_back({off, bytes.size()});
    }
    if (!ranges.empty()) {
      ++stats.persists;
      COSMOS_RETURN_IF_ERROR(store->Persist(ranges));
    }
    COSMOS_RETURN_IF_ERROR(WriteSlot(next.counter, blob));
    for (const auto& [key, v] : cache_updates) {
      const uint32_t l = static_cast<uint32_t>(key >> 40);
      cache[l - layout.cut][key & ((1ull << 40) - 1)] = v;
    }
    rec = std::move(next);
    failed = false;
    ++stats.commits;
    stats.blocks_written += batch.size();
    return Status::Ok();
  }

  // Starts the next incarnation: commits a record with incarnation + 1 (its
  // counter value must be stable before the first block is encrypted under
  // it; Commit enforces that). `rotate`: the counter was re-anchored by the
  // operator, so incarnations used under lost counter values could repeat;
  // rotating to a fresh random key makes every later (key, nonce) new.
  //
  // The record's counter value jumps past every value an earlier run may have
  // used: `stable_at_open` (the counter's stable value when this Open began)
  // plus the mode's unstable bound. Without the jump, a record of this
  // incarnation could share a counter value with an unstable record of the
  // previous run, and a host holding both could later present either (a
  // fork), starting the same incarnation twice. The jump leaves the record
  // up to bound + 1 ahead of the counter until it is stable, which Open
  // accepts for an incarnation-start record whose base is not above the
  // trusted counter (no acknowledged state lies in the skipped values).
  Status StartIncarnation(bool rotate, uint64_t stable_at_open) {
    if (rec.incarnation == UINT32_MAX) {
      // 2^32 - 1 opens of one region: practically unreachable. A rotation
      // gives a fresh key under which incarnations may start again at 1.
      rotate = true;
    }
    const uint64_t jump_to = std::max(stable_at_open + UnstableBound(), counter->Current()) + 1;
    RootRecord next = rec;
    next.incarnation_base = stable_at_open;
    if (rotate) {
      if (rec.rotating) COSMOS_RETURN_IF_ERROR(RotationStepLocked(layout.block_count));
      next = rec;
      next.incarnation_base = stable_at_open;
      next.incarnation = 1;
      COSMOS_RETURN_IF_ERROR(StartRotationLocked(&next, jump_to));
    } else {
      next.incarnation = rec.incarnation + 1;
      COSMOS_RETURN_IF_ERROR(Commit({}, next, jump_to));
    }
    incarnation_counter = rec.counter;
    return Status::Ok();
  }

  Status CheckUsable() {
    if (failed) {
      return Status::FailedPrecondition(label + " failed during a commit; reopen to recover");
    }
    return Status::Ok();
  }

  // Commits every dirty block, in batches of the log capacity, starting a
  // key rotation first when a version would reach the rekey threshold.
  Status CommitDirty() {
    if (dirty.empty()) return Status::Ok();
    for (const auto& [i, plain] : dirty) {
      BlockMeta m;
      COSMOS_RETURN_IF_ERROR(ReadMeta(i, &m));
      COSMOS_RETURN_IF_ERROR(VerifyPath(i, m, nullptr));
      if (m.epoch() == rec.key_epoch && m.version() + 1 >= policy.rekey_version_threshold) {
        COSMOS_LOG_INFO("{}: block {} version {} reached the rekey threshold; rotating key", label,
                        i, m.version());
        if (rec.rotating) COSMOS_RETURN_IF_ERROR(RotationStepLocked(layout.block_count));
        COSMOS_RETURN_IF_ERROR(StartRotationLocked());
        break;
      }
    }
    std::vector<std::pair<uint64_t, const Bytes*>> batch;
    for (auto it = dirty.begin(); it != dirty.end(); ++it) {
      batch.emplace_back(it->first, &it->second);
      if (batch.size() == rec.log_capacity_blocks || std::next(it) == dirty.end()) {
        COSMOS_RETURN_IF_ERROR(Commit(batch, rec));
        batch.clear();
      }
    }
    for (auto& [i, plain] : dirty) SecureWipe(plain);
    dirty.clear();
    return Status::Ok();
  }

  // `base`: the record to start from (default: the current one).
  // `user_material`: kUserKeySize bytes the new key derives from (user_key.h);
  // empty: a random key.
  Status StartRotationLocked(const RootRecord* base = nullptr, uint64_t jump_to = 0,
                             ByteSpan user_material = {}) {
    const bool incarnation_start = jump_to != 0;
    if (!user_material.empty() && user_material.size() != kUserKeySize) {
      return Status::InvalidArgument("a user region key is 32 bytes");
    }
    if (rec.rotating) return Status::FailedPrecondition("key rotation already in progress");
    // Wait for room for the commit's increment before changing any state.
    if (const uint64_t need = StableNeededBeforeIncrement(); need > 0 && !incarnation_start) {
      COSMOS_RETURN_IF_ERROR(WaitStableOrRefuse(counter, need));
    }
    // Derive into scratch first: a failure leaves the current keys in place.
    SecretArray<32> fresh;
    COSMOS_RETURN_IF_ERROR(EpochKey(user_material, rec.key_epoch + 1, fresh.mutable_span()));
    std::memcpy(keys->data() + 32, keys->data(), 32);
    std::memcpy(keys->data(), fresh.data(), 32);
    // Cached sub-keys are keyed by epoch number, which the new key does not
    // reuse; dropping them anyway keeps the cache small and simple.
    ForgetBlockKeys();
    RootRecord next = base != nullptr ? *base : rec;
    next.key_epoch = rec.key_epoch + 1;
    next.rotating = true;
    next.rotation_cursor = 0;
    // Blocks written from now on use the new key; the record carries both.
    rec.key_epoch = next.key_epoch;
    rec.rotating = true;
    ++stats.key_rotations;
    return Commit({}, next, jump_to);
  }

  // Migrates blocks [cursor, cursor + max_blocks) still under the previous
  // key. Dirty blocks are skipped: their pending plaintext is committed under
  // the new key by the next CommitDirty.
  // `single_commit`: stop after the first commit (a background step).
  Status RotationStepLocked(uint64_t max_blocks, bool single_commit = false) {
    if (!rec.rotating) return Status::Ok();
    const uint64_t end = std::min(layout.block_count, rec.rotation_cursor + max_blocks);
    uint64_t i = rec.rotation_cursor;
    while (true) {
      std::vector<Bytes> plains;
      std::vector<uint64_t> idxs;
      for (; i < end && plains.size() < rec.log_capacity_blocks; ++i) {
        if (dirty.count(i)) continue;
        BlockMeta m;
        COSMOS_RETURN_IF_ERROR(ReadMeta(i, &m));
        COSMOS_RETURN_IF_ERROR(VerifyPath(i, m, nullptr));
        if (m.version() > 0 && m.epoch() != rec.key_epoch) {
          plains.emplace_back(layout.block_size);
          COSMOS_RETURN_IF_ERROR(ReadDurableBlock(i, plains.back()));
          idxs.push_back(i);
        }
      }
      std::vector<std::pair<uint64_t, const Bytes*>> batch;
      for (size_t k = 0; k < idxs.size(); ++k) batch.emplace_back(idxs[k], &plains[k]);
      RootRecord next = rec;
      next.rotation_cursor = i;
      const bool done = i == layout.block_count;
      if (done) next.rotating = false;
      Status s = Commit(batch, next);
      for (auto& p : plains) SecureWipe(p);
      COSMOS_RETURN_IF_ERROR(s);
      if (done) {
        SecureWipe(MutableByteSpan(keys->data() + 32, 32));
        ForgetBlockKeys();
        COSMOS_LOG_INFO("{}: key rotation to epoch {} complete", label, rec.key_epoch);
        return Status::Ok();
      }
      if (i >= end || single_commit) return Status::Ok();
    }
  }

  // Most increments the mode lets be unstable at once (and so how far a
  // sealed record may be ahead of the trusted counter after a crash).
  uint64_t UnstableBound() const {
    return policy.counter_mode == CounterMode::kStrict
               ? 1
               : std::max<uint64_t>(1, policy.relaxed_window);
  }

  // The counter value that must be stable before the next Increment keeps
  // the unstable increments within UnstableBound(); 0 if none (or already).
  uint64_t StableNeededBeforeIncrement() {
    const uint64_t next = counter->Current() + 1;
    const uint64_t bound = UnstableBound();
    if (next <= bound) return 0;
    const uint64_t need = next - bound;
    return counter->IsStable(need) ? 0 : need;
  }

  // Acknowledgement rule for a flush whose state carries counter `value`:
  // strict waits until it is stable; relaxed until at most `relaxed_window`
  // values are unstable. Needs no region mutex (the counter is thread-safe).
  Status WaitForCounter(uint64_t value) {
    if (policy.counter_mode == CounterMode::kStrict) return WaitStableOrRefuse(counter, value);
    const uint64_t bound = UnstableBound();
    if (value > bound && !counter->IsStable(value - bound)) {
      return WaitStableOrRefuse(counter, value - bound);
    }
    return Status::Ok();
  }
  Status WaitForCounter() { return WaitForCounter(rec.counter); }

  // Builds the cached tree levels from the store and checks them against the
  // sealed root hash.
  Status BuildCache() {
    cache.assign(layout.levels - layout.cut, {});
    std::vector<Digest>& base = cache[0];
    base.resize(layout.nodes[layout.cut]);
    if (layout.cut == 0) {
      const uint64_t chunk = 2048;
      Bytes buf(chunk * kMetaSize);
      for (uint64_t i = 0; i < layout.block_count; i += chunk) {
        const uint64_t n = std::min(chunk, layout.block_count - i);
        COSMOS_RETURN_IF_ERROR(store->Read(layout.meta_off + i * kMetaSize,
                                           MutableByteSpan(buf.data(), n * kMetaSize)));
        for (uint64_t k = 0; k < n; ++k) {
          BlockMeta m;
          std::memcpy(m.raw.data(), buf.data() + k * kMetaSize, kMetaSize);
          base[i + k] = LeafHash(i + k, m);
        }
      }
    } else {
      const uint32_t below = layout.cut - 1;
      std::vector<Digest> nodes(layout.nodes[below]);
      COSMOS_RETURN_IF_ERROR(store->Read(
          layout.level_off[below],
          MutableByteSpan(reinterpret_cast<uint8_t*>(nodes.data()), nodes.size() * kNodeSize)));
      static const Digest kZero{};
      for (uint64_t p = 0; p < base.size(); ++p) {
        const Digest& right = 2 * p + 1 < nodes.size() ? nodes[2 * p + 1] : kZero;
        base[p] = NodeHash(layout.cut, p, nodes[2 * p], right);
      }
    }
    FillCacheAbove();
    if (!ConstantTimeEqual(cache.back()[0], rec.root)) {
      return Status::IntegrityViolation(label + ": tree does not match the sealed root hash");
    }
    return Status::Ok();
  }

  void FillCacheAbove() {
    static const Digest kZero{};
    for (uint32_t l = layout.cut + 1; l < layout.levels; ++l) {
      const auto& below = cache[l - 1 - layout.cut];
      auto& cur = cache[l - layout.cut];
      cur.resize(layout.nodes[l]);
      for (uint64_t p = 0; p < cur.size(); ++p) {
        const Digest& right = 2 * p + 1 < below.size() ? below[2 * p + 1] : kZero;
        cur[p] = NodeHash(l, p, below[2 * p], right);
      }
    }
  }

  // The key of key epoch `epoch`: random, or from the user's material with a
  // fresh random salt (distinct per region and epoch even for equal material).
  Status EpochKey(ByteSpan user_material, uint32_t epoch, MutableByteSpan out) const {
    if (user_material.empty()) return RandomBytes(out);
    uint8_t salt[32];
    COSMOS_RETURN_IF_ERROR(RandomBytes(MutableByteSpan(salt, 32)));
    return DeriveRegionKeyFromUserKey(user_material, ByteSpan(salt, 32), binding.Key(), epoch, out);
  }

  Status InitKeys(ByteSpan key_bytes) {
    COSMOS_ASSIGN_OR_RETURN(keys, LockedBuffer::Create(64));
    std::memcpy(keys->data(), key_bytes.data(), 64);
    return Status::Ok();
  }

  Status CheckRange(uint64_t offset, uint64_t len) const {
    if (offset > layout.block_count * layout.block_size ||
        len > layout.block_count * layout.block_size - offset) {
      return Status::OutOfRange("range outside " + label);
    }
    return Status::Ok();
  }
};

ProtectedRegion::ProtectedRegion(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)), binding_(impl_->binding) {
  geometry_.size = impl_->layout.block_count * impl_->layout.block_size;
  geometry_.block_size = static_cast<uint32_t>(impl_->layout.block_size);
  geometry_.cached_levels = impl_->rec.cached_levels;
  geometry_.log_capacity_blocks = impl_->rec.log_capacity_blocks;
}

ProtectedRegion::~ProtectedRegion() {
  if (impl_) {
    for (auto& [i, plain] : impl_->dirty) SecureWipe(plain);
  }
}

Result<uint64_t> ProtectedRegion::RequiredStoreSize(const RegionGeometry& g) {
  if (g.block_size == 0 || g.size % g.block_size != 0) {
    return Status::InvalidArgument("region size must be a multiple of the block size");
  }
  COSMOS_RETURN_IF_ERROR(CheckGeometry(g.block_size, g.size / g.block_size, g.log_capacity_blocks));
  uint32_t resolved = 0;
  return MakeLayout(g.block_size, g.size / g.block_size, g.cached_levels, g.log_capacity_blocks,
                    &resolved)
      .total;
}

Result<std::unique_ptr<ProtectedRegion>> ProtectedRegion::Create(
    const RegionBinding& binding, const RegionGeometry& g, ByteSpan access_list,
    UntrustedStore* store, MonotonicCounter* counter, Sealer* sealer, const RegionPolicy& policy,
    ByteSpan user_material) {
  COSMOS_RETURN_IF_ERROR(binding.Validate());
  const uint64_t region_id = binding.region_id;
  COSMOS_ASSIGN_OR_RETURN(uint64_t need, RequiredStoreSize(g));
  if (store->Size() < need) {
    return Status::InvalidArgument("store of " + std::to_string(store->Size()) +
                                   " bytes is too small; region needs " + std::to_string(need));
  }
  if (access_list.size() > kMaxAccessListBlob) {
    return Status::InvalidArgument("access list larger than 256 bytes");
  }
  auto impl = std::make_unique<Impl>();
  impl->region_id = region_id;
  impl->binding = binding;
  impl->label = Label(binding);
  impl->policy = policy;
  impl->store = store;
  impl->counter = counter;
  impl->sealer = sealer;
  RootRecord& r = impl->rec;
  r.region_id = region_id;
  r.block_size = g.block_size;
  r.block_count = g.size / g.block_size;
  r.log_capacity_blocks = g.log_capacity_blocks;
  impl->layout = MakeLayout(g.block_size, r.block_count, g.cached_levels, g.log_capacity_blocks,
                            &r.cached_levels);
  r.key_epoch = 1;
  r.incarnation = 1;
  r.acl.assign(access_list.begin(), access_list.end());
  if (!user_material.empty() && user_material.size() != kUserKeySize) {
    return Status::InvalidArgument("a user region key is 32 bytes");
  }
  Bytes key_bytes(64, 0);
  COSMOS_RETURN_IF_ERROR(impl->EpochKey(user_material, 1, MutableByteSpan(key_bytes.data(), 32)));
  Status ks = impl->InitKeys(key_bytes);
  SecureWipe(key_bytes);
  COSMOS_RETURN_IF_ERROR(ks);

  const Layout& L = impl->layout;
  // Metadata all zero (never written), a fresh tree, and no redo log.
  Bytes zeros(64 * 1024, 0);
  for (uint64_t off = L.meta_off; off < L.data_off; off += zeros.size()) {
    const uint64_t n = std::min<uint64_t>(zeros.size(), L.data_off - off);
    COSMOS_RETURN_IF_ERROR(store->Write(off, ByteSpan(zeros.data(), n)));
  }
  COSMOS_RETURN_IF_ERROR(store->Write(kLogOffset, ByteSpan(zeros.data(), kLogHeaderSize)));
  std::vector<Digest> level(L.block_count);
  BlockMeta empty;
  for (uint64_t i = 0; i < L.block_count; ++i) level[i] = impl->LeafHash(i, empty);
  static const Digest kZero{};
  for (uint32_t l = 0; l < L.cut; ++l) {
    COSMOS_RETURN_IF_ERROR(store->Write(
        L.level_off[l],
        ByteSpan(reinterpret_cast<const uint8_t*>(level.data()), level.size() * kNodeSize)));
    std::vector<Digest> up(L.nodes[l + 1]);
    for (uint64_t p = 0; p < up.size(); ++p) {
      const Digest& right = 2 * p + 1 < level.size() ? level[2 * p + 1] : kZero;
      up[p] = impl->NodeHash(l + 1, p, level[2 * p], right);
    }
    level = std::move(up);
  }
  impl->cache.assign(L.levels - L.cut, {});
  impl->cache[0] = std::move(level);
  impl->FillCacheAbove();
  r.root = impl->cache.back()[0];
  ByteRange meta{kLogOffset, L.data_off - kLogOffset};
  COSMOS_RETURN_IF_ERROR(store->Persist({&meta, 1}));
  r.incarnation_base = counter->Stable();
  COSMOS_ASSIGN_OR_RETURN(r.counter, counter->Increment());
  r.incarnation_counter = r.counter;
  Bytes blob;
  COSMOS_RETURN_IF_ERROR(impl->SealRecord(r, &blob));
  COSMOS_RETURN_IF_ERROR(impl->WriteSlot(r.counter, blob));
  COSMOS_RETURN_IF_ERROR(impl->WriteSlot(r.counter + 1, blob));
  // No wait before the first block: the key is fresh and random, and every
  // record that will ever carry it has incarnation >= 1, so no later Open can
  // start incarnation 1 again under it.
  impl->incarnation_counter = 0;
  COSMOS_RETURN_IF_ERROR(impl->WaitForCounter());
  COSMOS_LOG_INFO("created protected {}: {} blocks of {} B, {} cached tree levels", impl->label,
                  L.block_count, L.block_size, r.cached_levels);
  return std::unique_ptr<ProtectedRegion>(new ProtectedRegion(std::move(impl)));
}

Result<std::unique_ptr<ProtectedRegion>> ProtectedRegion::Open(const RegionBinding& binding,
                                                               UntrustedStore* store,
                                                               MonotonicCounter* counter,
                                                               Sealer* sealer,
                                                               const RegionPolicy& policy) {
  COSMOS_RETURN_IF_ERROR(binding.Validate());
  const uint64_t region_id = binding.region_id;
  const std::string name = Label(binding);
  if (store->Size() < kLogOffset + kLogHeaderSize) {
    return Status::IntegrityViolation(name + ": store truncated");
  }
  const Bytes aad = RegionAad(binding);
  std::optional<RootRecord> best;
  Bytes best_keys(64), keys(64);
  for (uint64_t off : kSlotOffset) {
    Bytes slot(kSlotSize);
    COSMOS_RETURN_IF_ERROR(store->Read(off, slot));
    const uint32_t len = LoadLE<uint32_t>(slot.data());
    if (len > kSlotSize - 4) continue;
    auto plain =
        sealer->Unseal(kRootPurpose, kRootRecordVersion, aad, ByteSpan(slot.data() + 4, len));
    if (!plain.ok()) continue;
    auto r = ParseRoot(*plain, keys);
    SecureWipe(*plain);
    if (!r.ok() || r->region_id != region_id) continue;
    if (!best || r->counter > best->counter) {
      best = std::move(*r);
      best_keys.swap(keys);
    }
  }
  if (!best) {
    SecureWipe(best_keys);
    return Status::IntegrityViolation(
        name + ": no authentic root record (forged, wiped, foreign, or pool/id/name edited)");
  }
  auto impl = std::make_unique<Impl>();
  impl->region_id = region_id;
  impl->binding = binding;
  impl->label = name;
  impl->policy = policy;
  impl->store = store;
  impl->counter = counter;
  impl->sealer = sealer;
  uint32_t resolved = 0;
  impl->layout = MakeLayout(best->block_size, best->block_count, best->cached_levels,
                            best->log_capacity_blocks, &resolved);
  const Layout& L = impl->layout;
  if (resolved != best->cached_levels || store->Size() < L.total) {
    SecureWipe(best_keys);
    return Status::IntegrityViolation(name + ": store truncated or geometry inconsistent");
  }

  // Redo log: replay it when it carries an authentic record newer than the slots.
  Bytes log(L.log_bytes);
  COSMOS_RETURN_IF_ERROR(store->Read(kLogOffset, log));
  bool replayed = false;
  if (auto view = ParseLog(log); view.ok() && view->counter > best->counter) {
    auto plain = sealer->Unseal(kRootPurpose, kRootRecordVersion, aad, view->root_blob);
    std::optional<RootRecord> lr;
    if (plain.ok()) {
      auto r = ParseRoot(*plain, keys);
      SecureWipe(*plain);
      if (r.ok() && r->region_id == region_id && r->counter == view->counter &&
          r->block_size == best->block_size && r->block_count == best->block_count &&
          r->cached_levels == best->cached_levels &&
          r->log_capacity_blocks == best->log_capacity_blocks) {
        lr = std::move(*r);
      }
    }
    if (lr) {
      ByteReader rd(view->entries);
      std::vector<ByteRange> ranges;
      while (rd.remaining() > 0) {
        const uint64_t off = rd.U64();
        const uint32_t len = rd.U32();
        rd.U32();
        ByteSpan bytes = rd.View(len);
        if (!rd.ok() || off < L.meta_off || off > L.total || len > L.total - off) {
          SecureWipe(best_keys);
          SecureWipe(keys);
          return Status::IntegrityViolation(name + ": redo log entry out of bounds");
        }
        COSMOS_RETURN_IF_ERROR(store->Write(off, bytes));
        ranges.push_back({off, len});
      }
      COSMOS_RETURN_IF_ERROR(store->Persist(ranges));
      best = std::move(lr);
      best_keys.swap(keys);
      replayed = true;
    }
  }
  SecureWipe(keys);
  impl->rec = std::move(*best);
  Status ks = impl->InitKeys(best_keys);
  SecureWipe(best_keys);
  COSMOS_RETURN_IF_ERROR(ks);
  if (replayed) {
    Bytes blob;
    COSMOS_RETURN_IF_ERROR(impl->SealRecord(impl->rec, &blob));
    COSMOS_RETURN_IF_ERROR(impl->WriteSlot(impl->rec.counter, blob));
    ++impl->stats.recovered_logs;
  }
  COSMOS_RETURN_IF_ERROR(impl->BuildCache());

  // Freshness: the record must not be older than the trusted counter.
  bool reset_accepted = false;
  const uint64_t trusted = counter->Current();
  const uint64_t stable_at_open = counter->Stable();
  if (impl->rec.counter < trusted) {
    return Status::IntegrityViolation(
        name + ": rolled back (root record counter " + std::to_string(impl->rec.counter) +
        " older than trusted counter " + std::to_string(trusted) + ")");
  }
  if (impl->rec.counter > trusted) {
    // The last commits' increments never stabilised before the crash: at most
    // as many as the mode lets be unstable. More means the counter was reset,
    // lost or rolled back, which would let the host roll the region back to
    // any state between the counter and the record.
    const uint64_t ahead = impl->rec.counter - trusted;
    const uint64_t bound = impl->UnstableBound();
    // An incarnation-start record jumped over values no state was ever
    // committed under (StartIncarnation); the counter must not be below
    // the value it jumped from.
    const bool incarnation_jump =
        impl->rec.counter == impl->rec.incarnation_counter && trusted >= impl->rec.incarnation_base;
    if (ahead > bound && !incarnation_jump) {
      const std::string what =
          name + ": root record counter " + std::to_string(impl->rec.counter) + " is " +
          std::to_string(ahead) + " ahead of the trusted counter " + std::to_string(trusted) +
          "; " + (policy.counter_mode == CounterMode::kStrict ? "strict" : "relaxed") +
          " mode allows at most " + std::to_string(bound) +
          " unstable increments (trusted counter reset, lost or rolled back?)";
      if (!policy.accept_counter_reset) {
        return Status::IntegrityViolation(
            what +
            "; refusing to open. If the counter state was lost and the pool is known "
            "to be current, restart once with --accept-counter-reset "
            "(docs/operations.md)");
      }
      COSMOS_LOG_WARN(
          "{}; accepted because of --accept-counter-reset: rollback protection of "
          "this region restarts from counter {}, and its key is rotated (an incarnation "
          "may have been used under the lost counter values)",
          what, impl->rec.counter);
      reset_accepted = true;
    }
    COSMOS_RETURN_IF_ERROR(counter->AdvanceTo(impl->rec.counter));
    COSMOS_RETURN_IF_ERROR(impl->WaitForCounter());
  }
  COSMOS_RETURN_IF_ERROR(impl->StartIncarnation(policy.accept_counter_reset && reset_accepted,
                                                std::max(stable_at_open, trusted)));
  return std::unique_ptr<ProtectedRegion>(new ProtectedRegion(std::move(impl)));
}

Status ProtectedRegion::Read(uint64_t offset, MutableByteSpan out) {
  std::lock_guard<std::mutex> l(impl_->mu);
  COSMOS_RETURN_IF_ERROR(impl_->CheckUsable());
  COSMOS_RETURN_IF_ERROR(impl_->CheckRange(offset, out.size()));
  const uint64_t bs = impl_->layout.block_size;
  Bytes block(bs);
  uint64_t pos = 0;
  while (pos < out.size()) {
    const uint64_t abs = offset + pos;
    const uint64_t i = abs / bs, in = abs % bs;
    const uint64_t n = std::min<uint64_t>(bs - in, out.size() - pos);
    Status s = impl_->ReadBlock(i, block);
    if (!s.ok()) {
      SecureWipe(out);
      return s;
    }
    std::memcpy(out.data() + pos, block.data() + in, n);
    pos += n;
  }
  SecureWipe(block);
  return Status::Ok();
}

Status ProtectedRegion::Write(uint64_t offset, ByteSpan data) {
  std::lock_guard<std::mutex> l(impl_->mu);
  COSMOS_RETURN_IF_ERROR(impl_->CheckUsable());
  COSMOS_RETURN_IF_ERROR(impl_->CheckRange(offset, data.size()));
  const uint64_t bs = impl_->layout.block_size;
  uint64_t pos = 0;
  while (pos < data.size()) {
    const uint64_t abs = offset + pos;
    const uint64_t i = abs / bs, in = abs % bs;
    const uint64_t n = std::min<uint64_t>(bs - in, data.size() - pos);
    auto it = impl_->dirty.find(i);
    if (it == impl_->dirty.end()) {
      if (impl_->dirty.size() >= impl_->rec.log_capacity_blocks) {
        COSMOS_RETURN_IF_ERROR(impl_->CommitDirty());
      }
      Bytes block(bs, 0);
      if (n != bs) COSMOS_RETURN_IF_ERROR(impl_->ReadDurableBlock(i, block));
      it = impl_->dirty.emplace(i, std::move(block)).first;
    }
    std::memcpy(it->second.data() + in, data.data() + pos, n);
    pos += n;
  }
  return Status::Ok();
}

Result<uint64_t> ProtectedRegion::ApplyAtomic(const AtomicUpdate& update) {
  if (update.offset % 8 != 0) {
    return Status::InvalidArgument("atomic offset " + std::to_string(update.offset) +
                                   " is not 8-byte aligned");
  }
  std::lock_guard<std::mutex> l(impl_->mu);
  COSMOS_RETURN_IF_ERROR(impl_->CheckUsable());
  COSMOS_RETURN_IF_ERROR(impl_->CheckRange(update.offset, 8));
  // Blocks are at least 512 bytes and powers of two: an aligned word never
  // straddles two blocks.
  const uint64_t bs = impl_->layout.block_size;
  const uint64_t i = update.offset / bs, in = update.offset % bs;
  Bytes block(bs);
  Status read = impl_->ReadBlock(i, block);
  if (!read.ok()) {
    SecureWipe(block);
    return read;
  }
  const uint64_t before = LoadLE<uint64_t>(block.data() + in);
  uint64_t after = before;
  if (update.kind == AtomicUpdate::Kind::kFetchAdd) {
    after = before + update.operand;
  } else if (before == update.operand) {
    after = update.desired;
  }
  if (after != before) {
    auto it = impl_->dirty.find(i);
    if (it == impl_->dirty.end()) {
      // Make room first: if that commit cannot proceed, nothing has changed.
      if (impl_->dirty.size() >= impl_->rec.log_capacity_blocks) {
        Status committed = impl_->CommitDirty();
        if (!committed.ok()) {
          SecureWipe(block);
          return committed;
        }
      }
      it = impl_->dirty.emplace(i, std::move(block)).first;
    } else {
      SecureWipe(block);
    }
    StoreLE<uint64_t>(it->second.data() + in, after);
  } else {
    SecureWipe(block);
  }
  return before;
}

Status ProtectedRegion::Flush() {
  std::unique_lock<std::mutex> l(impl_->mu);
  uint64_t target = 0;
  for (;;) {
    COSMOS_RETURN_IF_ERROR(impl_->CheckUsable());
    if (impl_->dirty.empty()) {
      // Nothing of ours is pending: our writes are in a commit <= rec.counter
      // (maybe one another flush made while we waited: group commit).
      target = impl_->rec.counter;
      break;
    }
    uint64_t need = impl_->StableNeededBeforeIncrement();
    if (!impl_->counter->IsStable(impl_->incarnation_counter)) {
      // The incarnation's first block commit waits for its record (after an
      // open): wait here, without the mutex, rather than inside Commit.
      need = std::max(need, impl_->incarnation_counter);
    }
    if (need == 0) {
      COSMOS_RETURN_IF_ERROR(impl_->CommitDirty());
      target = impl_->rec.counter;
      break;
    }
    // An increment is pending (strict) or the window is full (relaxed): wait
    // for the counter without the mutex, so reads, writes and other flushes
    // of the region go on; flushes that wait together then share one commit.
    if (NoCounterWaitScope::active()) return CounterWaitNeeded();
    uint64_t wait_for = need;
    if (impl_->policy.counter_mode == CounterMode::kRelaxed) {
      // Window full: wait until half of it is free, so the following flushes
      // pass without waiting (one wait per half window, instead of a short
      // wait on nearly every flush while a client runs at the rate limit).
      const uint64_t next = impl_->counter->Current() + 1;
      wait_for = std::max(need, next - std::max<uint64_t>(1, impl_->UnstableBound() / 2));
    }
    l.unlock();
    Status s = impl_->counter->WaitStable(wait_for);
    l.lock();
    COSMOS_RETURN_IF_ERROR(s);
  }
  l.unlock();
  return impl_->WaitForCounter(target);
}

Result<Digest> ProtectedRegion::Verify(std::span<const ByteRange> ranges, ByteSpan mac_key) {
  if (mac_key.empty()) return Status::InvalidArgument("verify needs a MAC key");
  std::lock_guard<std::mutex> l(impl_->mu);
  COSMOS_RETURN_IF_ERROR(impl_->CheckUsable());
  HmacSha256Hasher mac(mac_key);
  const uint64_t bs = impl_->layout.block_size;
  Bytes block(bs);
  for (const ByteRange& r : ranges) {
    COSMOS_RETURN_IF_ERROR(impl_->CheckRange(r.offset, r.length));
    uint8_t hdr[16];
    StoreLE<uint64_t>(hdr, r.offset);
    StoreLE<uint64_t>(hdr + 8, r.length);
    mac.Update(ByteSpan(hdr, sizeof(hdr)));
    uint64_t pos = 0;
    while (pos < r.length) {
      const uint64_t abs = r.offset + pos;
      const uint64_t i = abs / bs, in = abs % bs;
      const uint64_t n = std::min<uint64_t>(bs - in, r.length - pos);
      COSMOS_RETURN_IF_ERROR(impl_->ReadDurableBlock(i, block));
      mac.Update(ByteSpan(block.data() + in, n));
      pos += n;
    }
  }
  SecureWipe(block);
  return mac.Final();
}

Status ProtectedRegion::StartKeyRotation(ByteSpan user_material) {
  std::lock_guard<std::mutex> l(impl_->mu);
  COSMOS_RETURN_IF_ERROR(impl_->CheckUsable());
  return impl_->StartRotationLocked(nullptr, 0, user_material);
}

Status ProtectedRegion::RotationStep(uint64_t max_blocks) {
  std::lock_guard<std::mutex> l(impl_->mu);
  COSMOS_RETURN_IF_ERROR(impl_->CheckUsable());
  COSMOS_RETURN_IF_ERROR(impl_->CommitDirty());
  COSMOS_RETURN_IF_ERROR(impl_->RotationStepLocked(max_blocks));
  return impl_->WaitForCounter();
}

Status ProtectedRegion::RotateKey(ByteSpan user_material) {
  std::lock_guard<std::mutex> l(impl_->mu);
  COSMOS_RETURN_IF_ERROR(impl_->CheckUsable());
  COSMOS_RETURN_IF_ERROR(impl_->CommitDirty());
  if (impl_->rec.rotating) {
    COSMOS_RETURN_IF_ERROR(impl_->RotationStepLocked(impl_->layout.block_count));
  }
  COSMOS_RETURN_IF_ERROR(impl_->StartRotationLocked(nullptr, 0, user_material));
  COSMOS_RETURN_IF_ERROR(impl_->RotationStepLocked(impl_->layout.block_count));
  return impl_->WaitForCounter();
}

Status ProtectedRegion::BackgroundRotationStep(uint64_t max_blocks, bool* done) {
  *done = false;
  std::unique_lock<std::mutex> l(impl_->mu);
  for (;;) {
    COSMOS_RETURN_IF_ERROR(impl_->CheckUsable());
    if (!impl_->rec.rotating) {
      *done = true;
      return Status::Ok();
    }
    // Room for one increment, and the incarnation stable before any block is
    // encrypted: wait for either outside the mutex.
    uint64_t wait_for = impl_->StableNeededBeforeIncrement();
    if (!impl_->counter->IsStable(impl_->incarnation_counter)) {
      wait_for = std::max(wait_for, impl_->incarnation_counter);
    }
    if (wait_for > 0) {
      l.unlock();
      Status s = impl_->counter->WaitStable(wait_for);
      l.lock();
      COSMOS_RETURN_IF_ERROR(s);
      continue;
    }
    if (!impl_->dirty.empty()) {
      // Posted writes first (their blocks are skipped by a step, and the
      // step that ends the rotation must not leave one under the old key);
      // at most one commit, since Write keeps dirty within a commit.
      COSMOS_RETURN_IF_ERROR(impl_->CommitDirty());
      continue;
    }
    return impl_->RotationStepLocked(std::max<uint64_t>(max_blocks, 1), /*single_commit=*/true);
  }
}

bool ProtectedRegion::rotation_in_progress() {
  std::lock_guard<std::mutex> l(impl_->mu);
  return impl_->rec.rotating;
}

Status ProtectedRegion::SetAccessList(ByteSpan access_list) {
  if (access_list.size() > kMaxAccessListBlob) {
    return Status::InvalidArgument("access list larger than 256 bytes");
  }
  std::lock_guard<std::mutex> l(impl_->mu);
  COSMOS_RETURN_IF_ERROR(impl_->CheckUsable());
  COSMOS_RETURN_IF_ERROR(impl_->CommitDirty());
  RootRecord next = impl_->rec;
  next.acl.assign(access_list.begin(), access_list.end());
  COSMOS_RETURN_IF_ERROR(impl_->Commit({}, next));
  return impl_->WaitForCounter();
}

Bytes ProtectedRegion::access_list() {
  std::lock_guard<std::mutex> l(impl_->mu);
  return impl_->rec.acl;
}

uint32_t ProtectedRegion::key_epoch() {
  std::lock_guard<std::mutex> l(impl_->mu);
  return impl_->rec.key_epoch;
}

uint64_t ProtectedRegion::committed_counter() {
  std::lock_guard<std::mutex> l(impl_->mu);
  return impl_->rec.counter;
}

uint32_t ProtectedRegion::incarnation() {
  std::lock_guard<std::mutex> l(impl_->mu);
  return impl_->rec.incarnation;
}

Status RegionBinding::Validate() const {
  if (pool_uuid.empty() || pool_uuid.size() > 64) {
    return Status::InvalidArgument("region binding: pool identity must be 1..64 bytes");
  }
  if (name.empty() || name.size() > 255) {
    return Status::InvalidArgument("region binding: name must be 1..255 bytes");
  }
  return Status::Ok();
}

RegionStats ProtectedRegion::stats() {
  std::lock_guard<std::mutex> l(impl_->mu);
  return impl_->stats;
}

Status ParseRootRecordForFuzzing(ByteSpan plaintext) { return ParseRoot(plaintext, {}).status(); }

Status ParseRedoLogForFuzzing(ByteSpan log) { return ParseLog(log).status(); }

}  // namespace cosmos::sec
