// Store implementation: format/recovery, group-committing flusher thread,
// index maintenance with lazy expiry, and two-half background compaction.
#include "kv/store.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>

#include "common/check.h"
#include "common/checksum.h"
#include "common/endian.h"
#include "common/log.h"

namespace cosmos::kv {
namespace {

constexpr uint64_t kScanSeed = 0x7363616e'6b657973ull;

int64_t WallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool Expired(int64_t expiry_ms, int64_t now) { return expiry_ms != 0 && expiry_ms <= now; }

// The value type of a record: strings are kPut records; a kPutTyped record
// names its type in the value header (`value` holds at least the bytes of
// that header that exist).
ValueType RecordValueType(RecordType type, std::string_view value) {
  if (type != RecordType::kPutTyped || value.size() <= TypedValueLayout::kType) {
    return ValueType::kString;
  }
  return static_cast<ValueType>(value[TypedValueLayout::kType]);
}

}  // namespace

Store::Store(LogDevice* device, StoreOptions options)
    : device_(device), options_(std::move(options)) {
  if (!options_.now_ms) options_.now_ms = WallClockMs;
}

Result<std::unique_ptr<Store>> Store::Open(LogDevice* device, StoreOptions options) {
  COSMOS_CHECK(device != nullptr);
  if (device->Size() < kMinDeviceSize) {
    return Status::InvalidArgument("kv log device too small: " + std::to_string(device->Size()) +
                                   " bytes, need at least " + std::to_string(kMinDeviceSize));
  }
  std::unique_ptr<Store> store(new Store(device, std::move(options)));
  char sb[kSuperblockSize];
  COSMOS_RETURN_IF_ERROR(device->Read(0, sb, sizeof(sb)));
  bool blank = std::all_of(sb, sb + sizeof(sb), [](char c) { return c == 0; });
  if (blank) {
    COSMOS_RETURN_IF_ERROR(store->Format());
  }
  COSMOS_RETURN_IF_ERROR(store->Recover());
  store->flusher_ = std::thread([s = store.get()] { s->FlusherLoop(); });
  if (store->options_.background_compaction) {
    store->compactor_ = std::thread([s = store.get()] { s->CompactorLoop(); });
  }
  return store;
}

Store::~Store() {
  {
    std::lock_guard l(mu_);
    stopping_ = true;
    flush_requested_ = true;
  }
  compact_cv_.notify_all();
  if (compactor_.joinable()) compactor_.join();
  flush_cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
}

// Format order: segment header and control words first, superblock last, so a
// valid superblock implies a complete format.
Status Store::Format() {
  const uint64_t size = device_->Size() & ~4095ull;
  const uint64_t half = ((size - kHeaderAreaSize) / 2) & ~4095ull;
  char seg[kSegmentHeaderSize];
  EncodeSegmentHeader(0, seg);
  COSMOS_RETURN_IF_ERROR(device_->Write(kHeaderAreaSize, seg, sizeof(seg)));
  COSMOS_RETURN_IF_ERROR(device_->Flush(kHeaderAreaSize, sizeof(seg)));
  COSMOS_RETURN_IF_ERROR(device_->WriteAfterFlush(kTailOffset0, 0));
  COSMOS_RETURN_IF_ERROR(device_->WriteAfterFlush(kTailOffset1, 0));
  COSMOS_RETURN_IF_ERROR(device_->WriteAfterFlush(kActiveGenerationOffset, 0));
  COSMOS_RETURN_IF_ERROR(device_->WriteAfterFlush(kOpenEpochOffset, 0));
  COSMOS_RETURN_IF_ERROR(device_->WriteAfterFlush(kBaseSequenceOffset0, 0));
  COSMOS_RETURN_IF_ERROR(device_->WriteAfterFlush(kBaseSequenceOffset1, 0));
  char sb[kSuperblockSize];
  EncodeSuperblock(size, half, sb);
  COSMOS_RETURN_IF_ERROR(device_->Write(0, sb, sizeof(sb)));
  COSMOS_RETURN_IF_ERROR(device_->Flush(0, sizeof(sb)));
  COSMOS_LOG_INFO("kv: formatted log ({} bytes, two halves of {} bytes)", size, half);
  return Status::Ok();
}

Status Store::Recover() {
  char sb[kSuperblockSize];
  COSMOS_RETURN_IF_ERROR(device_->Read(0, sb, sizeof(sb)));
  if (LoadLE<uint64_t>(sb + SuperblockLayout::kMagic) != kSuperblockMagic) {
    return Status::Corruption("kv log superblock: bad magic (not a cosmos-kv log)");
  }
  if (LoadLE<uint64_t>(sb + SuperblockLayout::kChecksum) !=
      Checksum64(sb, SuperblockLayout::kChecksum, kSuperblockSeed)) {
    return Status::Corruption("kv log superblock: checksum mismatch");
  }
  const uint32_t version = LoadLE<uint32_t>(sb + SuperblockLayout::kVersion);
  if (version < kOldestReadableFormatVersion || version > kFormatVersion) {
    return Status::Corruption("kv log superblock: unsupported format version " +
                              std::to_string(version) + " (this build reads " +
                              std::to_string(kOldestReadableFormatVersion) + " to " +
                              std::to_string(kFormatVersion) + ")");
  }
  const uint64_t dev_size = LoadLE<uint64_t>(sb + SuperblockLayout::kDeviceSize);
  const uint64_t half = LoadLE<uint64_t>(sb + SuperblockLayout::kHalfSize);
  half_offset_[0] = LoadLE<uint64_t>(sb + SuperblockLayout::kHalf0);
  half_offset_[1] = LoadLE<uint64_t>(sb + SuperblockLayout::kHalf1);
  if (dev_size > device_->Size() || half <= kSegmentHeaderSize ||
      half_offset_[0] != kHeaderAreaSize || half_offset_[1] != kHeaderAreaSize + half ||
      half_offset_[1] + half > dev_size) {
    return Status::Corruption("kv log superblock: inconsistent geometry");
  }
  capacity_ = half - kSegmentHeaderSize;

  // Control words: generation, tail 0, tail 1, open epoch, base sequence 0, 1.
  uint64_t words[6];
  static_assert(kBaseSequenceOffset1 == kActiveGenerationOffset + 5 * 8);
  COSMOS_RETURN_IF_ERROR(device_->Read(kActiveGenerationOffset, words, sizeof(words)));
  const uint64_t gen = words[0];
  const int h = static_cast<int>(gen % 2);
  const uint64_t tail = words[1 + h];
  const uint64_t last_epoch = words[3];
  const uint64_t base_seq = words[4 + h];
  char seg[kSegmentHeaderSize];
  COSMOS_RETURN_IF_ERROR(device_->Read(half_offset_[h], seg, sizeof(seg)));
  if (LoadLE<uint64_t>(seg + SegmentLayout::kMagic) != kSegmentMagic ||
      LoadLE<uint64_t>(seg + SegmentLayout::kChecksum) !=
          Checksum64(seg, SegmentLayout::kChecksum, kSegmentSeed) ||
      LoadLE<uint64_t>(seg + SegmentLayout::kGeneration) != gen) {
    return Status::Corruption("kv log segment header of half " + std::to_string(h) +
                              ": invalid or not generation " + std::to_string(gen));
  }
  if (tail > capacity_ || tail % 8 != 0) {
    return Status::Corruption("kv log tail pointer " + std::to_string(tail) +
                              " beyond half capacity " + std::to_string(capacity_));
  }
  uint64_t end = tail;
  {
    std::lock_guard l(mu_);
    generation_ = gen;
    half_ = h;
    last_seq_ = base_seq;
    COSMOS_RETURN_IF_ERROR(ReplayHalf(h, tail));
    COSMOS_ASSIGN_OR_RETURN(end, ReplayPastTail(h, tail, last_epoch));
    DropExpired();
    append_pos_ = durable_pos_ = staging_start_ = RecordBase(h) + end;
    durable_seq_ = last_seq_;
    epoch_ = last_epoch + 1;
  }
  // Before the first append: the tail word covers everything recovered (so a
  // later recovery checks it strictly), and the new epoch is durable (so
  // stale records of this or earlier opens past the tail never validate).
  if (end != tail) COSMOS_RETURN_IF_ERROR(device_->WriteAfterFlush(TailWordOffset(h), end));
  COSMOS_RETURN_IF_ERROR(device_->WriteAfterFlush(kOpenEpochOffset, epoch_));
  if (version < kFormatVersion) {
    EncodeSuperblock(dev_size, half, sb);
    COSMOS_RETURN_IF_ERROR(device_->Write(0, sb, sizeof(sb)));
    COSMOS_RETURN_IF_ERROR(device_->Flush(0, sizeof(sb)));
    COSMOS_LOG_INFO("kv: upgraded log format v{} -> v{}", version, kFormatVersion);
  }
  COSMOS_LOG_INFO(
      "kv: recovered generation {} ({} keys, {} log bytes, last sequence {}, {} records past the "
      "tail word), open epoch {}",
      gen, index_.size(), end, last_seq_, recovered_past_tail_, epoch_);
  return Status::Ok();
}

Status Store::ReplayHalf(int half, uint64_t tail) {
  const uint64_t base = RecordBase(half);
  std::string buf;
  uint64_t off = 0;
  while (off < tail) {
    char hdr[kRecordHeaderSize];
    const uint64_t avail = tail - off;
    const std::string where = "half " + std::to_string(half) + " offset " + std::to_string(off);
    if (avail < kRecordHeaderSize) {
      return Status::Corruption("kv log record at " + where + ": truncated header");
    }
    COSMOS_RETURN_IF_ERROR(device_->Read(base + off, hdr, sizeof(hdr)));
    COSMOS_ASSIGN_OR_RETURN(RecordHeader h, DecodeRecordHeader(hdr, avail, where));
    buf.resize(h.size);
    COSMOS_RETURN_IF_ERROR(device_->Read(base + off, buf.data(), h.size));
    if (!RecordChecksumOk(buf.data(), h)) {
      return Status::Corruption("kv log record at " + where + ": checksum mismatch");
    }
    last_seq_ = std::max(last_seq_, h.sequence);
    const std::string_view value(buf.data() + kRecordHeaderSize + h.key_len, h.value_len);
    ReplayRecord(h, std::string_view(buf.data() + kRecordHeaderSize, h.key_len),
                 RecordValueType(h.type, value), base + off);
    off += h.size;
  }
  return Status::Ok();
}

// Every record is applied, even a put whose own expiry has passed: a later
// expire record (PERSIST, EXPIRE) may have changed it. Keys still expired
// once the whole log is replayed are dropped by DropExpired.
void Store::ReplayRecord(const RecordHeader& h, std::string_view key, ValueType type,
                         uint64_t pos) {
  ApplyRecord(h.type, key, pos, h.value_len, h.expiry_ms, h.key_len, type);
}

void Store::DropExpired() {
  const int64_t now = options_.now_ms();
  for (auto it = index_.begin(); it != index_.end();) {
    auto next = std::next(it);
    if (Expired(it->second.expiry_ms, now)) EraseKey(it);
    it = next;
  }
}

// Commits flush only their records (one durability point per commit), so
// acknowledged records may lie past the durable tail word. They are found
// here: a record past the tail counts only if it decodes, its checksum holds,
// it was written by the last open (epoch) and its sequence follows the
// previous one; records apply only in complete commit groups (batch-end
// flag). The first record failing any check ends the log: it and what
// follows were never acknowledged (a commit is acknowledged only after its
// flush returned, and every earlier commit's flush returned before it).
// Stale bytes cannot pass: records of earlier opens fail the epoch check,
// and records of an earlier generation of this half carry sequences at or
// below the half's base sequence.
Result<uint64_t> Store::ReplayPastTail(int half, uint64_t tail, uint64_t epoch) {
  const uint64_t base = RecordBase(half);
  const uint32_t want_epoch = static_cast<uint32_t>(epoch);
  struct Pending {
    RecordHeader h;
    uint64_t pos;
    std::string key;
    ValueType type;
  };
  std::vector<Pending> group;
  uint64_t off = tail, end = tail, seq = last_seq_;
  std::string buf;
  while (capacity_ - off >= kRecordHeaderSize) {
    char hdr[kRecordHeaderSize];
    COSMOS_RETURN_IF_ERROR(device_->Read(base + off, hdr, sizeof(hdr)));
    Result<RecordHeader> h = DecodeRecordHeader(hdr, capacity_ - off, "past the tail");
    if (!h.ok() || h->epoch != want_epoch || h->sequence != seq + 1) break;
    buf.resize(h->size);
    COSMOS_RETURN_IF_ERROR(device_->Read(base + off, buf.data(), h->size));
    if (!RecordChecksumOk(buf.data(), *h)) break;
    const std::string_view value(buf.data() + kRecordHeaderSize + h->key_len, h->value_len);
    group.push_back({*h, base + off, buf.substr(kRecordHeaderSize, h->key_len),
                     RecordValueType(h->type, value)});
    seq = h->sequence;
    off += h->size;
    if ((h->flags & kRecordFlagBatchEnd) != 0) {
      for (const Pending& p : group) ReplayRecord(p.h, p.key, p.type, p.pos);
      recovered_past_tail_ += group.size();
      group.clear();
      last_seq_ = seq;
      end = off;
    }
  }
  return end;
}

void Store::DropChain(std::string_view key, uint32_t key_len) {
  auto c = chains_.find(key);
  if (c == chains_.end()) return;
  for (const DeltaRef& d : c->second) live_bytes_ -= RecordSize(key_len, d.value_len);
  chains_.erase(c);
}

KeyVersion Store::VersionOf(const Index::value_type& entry) {
  KeyVersion v{generation_, entry.second.pos, entry.second.expiry_ms};
  if (auto c = chains_.find(entry.first); c != chains_.end() && !c->second.empty()) {
    v.value_pos = c->second.back().pos;
  }
  return v;
}

void Store::EraseKey(Index::iterator it) {
  DropChain(it->first, it->second.key_len);
  live_bytes_ -= RecordSize(it->second.key_len, it->second.value_len);
  scan_order_.erase({it->second.scan_hash, std::string_view(it->first)});
  SetExpiry(it, 0);
  index_.erase(it);
}

void Store::ApplyRecord(RecordType type, std::string_view key, uint64_t pos, uint64_t value_len,
                        int64_t expiry_ms, uint32_t key_len, ValueType value_type) {
  switch (type) {
    case RecordType::kPut:
    case RecordType::kPutTyped: {
      auto it = index_.find(key);
      if (it == index_.end()) {
        it = index_.emplace(std::string(key), Entry{}).first;
        it->second.scan_hash = Checksum64(key.data(), key.size(), kScanSeed);
        scan_order_.insert({it->second.scan_hash, std::string_view(it->first)});
      } else {
        DropChain(key, it->second.key_len);  // a new whole value replaces the deltas
        live_bytes_ -= RecordSize(it->second.key_len, it->second.value_len);
      }
      SetExpiry(it, expiry_ms);
      Entry& e = it->second;
      e.pos = pos;
      e.value_len = value_len;
      e.key_len = key_len;
      e.type = value_type;
      live_bytes_ += RecordSize(key_len, value_len);
      break;
    }
    case RecordType::kDelete: {
      auto it = index_.find(key);
      if (it != index_.end()) EraseKey(it);
      break;
    }
    case RecordType::kExpire: {
      auto it = index_.find(key);
      if (it != index_.end()) SetExpiry(it, expiry_ms);
      break;
    }
    case RecordType::kTypedDelta: {
      // Writers append deltas only to live typed keys; a key missing here
      // expired (or was dropped) in the meantime, and its deltas go with it.
      auto it = index_.find(key);
      if (it == index_.end() || it->second.type == ValueType::kString) break;
      chains_[it->first].push_back({pos, value_len});
      live_bytes_ += RecordSize(key_len, value_len);
      break;
    }
    case RecordType::kClear:
      index_.clear();
      chains_.clear();
      scan_order_.clear();
      expiry_order_.clear();
      live_bytes_ = 0;
      break;
  }
}

void Store::SetExpiry(Index::iterator it, int64_t expiry_ms) {
  Entry& e = it->second;
  if (e.expiry_ms == expiry_ms) return;
  if (e.expiry_ms != 0) expiry_order_.erase({e.expiry_ms, std::string_view(it->first)});
  e.expiry_ms = expiry_ms;
  if (expiry_ms != 0) expiry_order_.insert({expiry_ms, std::string_view(it->first)});
}

Result<std::optional<std::string>> Store::RandomKey() {
  std::lock_guard l(mu_);
  if (!failed_.ok()) return failed_;
  thread_local std::mt19937_64 rng{std::random_device{}()};
  while (!scan_order_.empty()) {
    auto it = scan_order_.lower_bound({rng(), std::string_view()});
    if (it == scan_order_.end()) it = scan_order_.begin();
    auto entry = index_.find(it->second);
    if (!Expired(entry->second.expiry_ms, options_.now_ms())) {
      return std::optional<std::string>(entry->first);
    }
    EraseKey(entry);  // lazy expiry, as FindLive
  }
  return std::optional<std::string>();
}

int64_t Store::NextExpiry() {
  std::lock_guard l(mu_);
  return expiry_order_.empty() ? 0 : expiry_order_.begin()->first;
}

std::vector<std::string> Store::ExpiredKeys(size_t max) {
  std::lock_guard l(mu_);
  const int64_t now = options_.now_ms();
  std::vector<std::string> keys;
  for (auto it = expiry_order_.begin();
       it != expiry_order_.end() && keys.size() < max && Expired(it->first, now); ++it) {
    keys.emplace_back(it->second);
  }
  return keys;
}

Store::Index::iterator Store::FindLive(std::string_view key) {
  auto it = index_.find(key);
  if (it == index_.end()) return it;
  if (Expired(it->second.expiry_ms, options_.now_ms())) {
    // Lazy expiry: the record's absolute expiry makes it expired after a
    // restart too, so no log record is needed.
    EraseKey(it);
    return index_.end();
  }
  return it;
}

Status Store::ReadLog(uint64_t pos, void* out, uint64_t len) {
  if (pos >= staging_start_) {
    std::memcpy(out, staging_.data() + (pos - staging_start_), len);
    return Status::Ok();
  }
  if (!inflight_.empty() && pos >= inflight_start_) {
    std::memcpy(out, inflight_.data() + (pos - inflight_start_), len);
    return Status::Ok();
  }
  return device_->Read(pos, out, len);
}

void Store::Fail(const Status& s) {
  if (failed_.ok()) {
    // The front end says "storage failed; restart to recover"; this says why.
    failed_ = Status::FailedPrecondition("a commit to the log failed: " + s.ToString());
    COSMOS_LOG_ERROR("kv: store failed, restart to recover: {}", failed_.message());
    // Wake the front end so writes waiting on a commit that will never come
    // get an error instead of hanging (on_durable is cheap and never calls
    // back into the Store, so calling it with mu_ held is safe).
    if (options_.on_durable) options_.on_durable(durable_seq_);
  }
  durable_cv_.notify_all();
}

Result<uint64_t> Store::Apply(const WriteBatch& batch) {
  uint64_t need = 0;
  for (const auto& op : batch.ops_) {
    if (op.value.size() > options_.max_value_size) {
      return Status::InvalidArgument("value of " + std::to_string(op.value.size()) +
                                     " bytes exceeds proto-max-bulk-len " +
                                     std::to_string(options_.max_value_size));
    }
    if (op.key.size() > UINT32_MAX) return Status::InvalidArgument("key too long");
    need += RecordSize(op.key.size(), op.value.size());
  }
  for (int attempt = 0;; ++attempt) {
    std::unique_lock l(mu_);
    if (!failed_.ok()) return failed_;
    if (batch.ops_.empty()) return last_seq_;
    const uint64_t end = RecordBase(half_) + capacity_;
    if (need > end - append_pos_) {
      // Compaction helps only if live data plus this batch fits in a half.
      // Inside an atomic section this thread holds commit_mu_, which
      // compaction needs: fail instead (nothing of this batch is applied).
      if (attempt == 0 && !atomic_ && live_bytes_ + need <= capacity_ &&
          (append_pos_ - RecordBase(half_)) > live_bytes_) {
        l.unlock();
        COSMOS_RETURN_IF_ERROR(Compact());
        continue;
      }
      return Status::ResourceExhausted("log full: " + std::to_string(need) + " bytes needed, " +
                                       std::to_string(live_bytes_) + " bytes live of " +
                                       std::to_string(capacity_));
    }
    for (size_t i = 0; i < batch.ops_.size(); ++i) {
      const auto& op = batch.ops_[i];
      const uint64_t pos = append_pos_;
      const uint64_t seq = ++last_seq_;
      // In an atomic section EndAtomic flags the section's last record.
      const uint8_t flags = !atomic_ && i + 1 == batch.ops_.size() ? kRecordFlagBatchEnd : 0;
      if (atomic_) atomic_last_record_ = staging_.size();
      EncodeRecord(op.type, seq, op.expiry_ms, op.key, op.value, flags,
                   static_cast<uint32_t>(epoch_), &staging_);
      append_pos_ += RecordSize(op.key.size(), op.value.size());
      const ValueType value_type = RecordValueType(op.type, op.value);
      ApplyRecord(op.type, op.key, pos, op.value.size(), op.expiry_ms,
                  static_cast<uint32_t>(op.key.size()), value_type);
      if (op.type == RecordType::kPutTyped && typed_put_observer_) {
        typed_put_observer_(op.key, value_type);
      }
      ++records_pending_;
    }
    MaybeTriggerCompaction();
    return last_seq_;
  }
}

void Store::MaybeTriggerCompaction() {
  if (!options_.background_compaction || compact_requested_) return;
  const uint64_t used = append_pos_ - RecordBase(half_);
  if (used > options_.compaction_trigger * static_cast<double>(capacity_) &&
      live_bytes_ * 2 < used) {
    compact_requested_ = true;
    compact_cv_.notify_one();
  }
}

Result<bool> Store::Get(std::string_view key, std::string* value) {
  std::lock_guard l(mu_);
  if (!failed_.ok()) return failed_;
  auto it = FindLive(key);
  if (it == index_.end() || it->second.type != ValueType::kString) return false;
  value->resize(it->second.value_len);
  COSMOS_RETURN_IF_ERROR(ReadLog(it->second.pos + kRecordHeaderSize + it->second.key_len,
                                 value->data(), it->second.value_len));
  return true;
}

Result<bool> Store::GetValue(std::string_view key, ValueType* type, std::string* value,
                             std::vector<std::string>* deltas) {
  std::lock_guard l(mu_);
  if (!failed_.ok()) return failed_;
  auto it = FindLive(key);
  if (it == index_.end()) return false;
  *type = it->second.type;
  if (deltas != nullptr) deltas->clear();
  if (auto c = chains_.find(key); c != chains_.end()) {
    COSMOS_CHECK(deltas != nullptr);
    for (const DeltaRef& d : c->second) {
      std::string& v = deltas->emplace_back(d.value_len, '\0');
      COSMOS_RETURN_IF_ERROR(
          ReadLog(d.pos + kRecordHeaderSize + it->second.key_len, v.data(), d.value_len));
    }
  }
  value->resize(it->second.value_len);
  COSMOS_RETURN_IF_ERROR(ReadLog(it->second.pos + kRecordHeaderSize + it->second.key_len,
                                 value->data(), it->second.value_len));
  return true;
}

Result<std::optional<KeyInfo>> Store::Lookup(std::string_view key) {
  std::lock_guard l(mu_);
  if (!failed_.ok()) return failed_;
  auto it = FindLive(key);
  if (it == index_.end()) return std::optional<KeyInfo>();
  const Entry& e = it->second;
  KeyInfo info{e.value_len, e.expiry_ms, e.type, VersionOf(*it), 0, 0};
  if (auto c = chains_.find(key); c != chains_.end()) {
    info.delta_count = static_cast<uint32_t>(c->second.size());
    for (const DeltaRef& d : c->second) info.delta_bytes += d.value_len;
  }
  return std::optional<KeyInfo>(info);
}

Result<std::vector<std::string>> Store::Keys(std::string_view pattern) {
  std::lock_guard l(mu_);
  if (!failed_.ok()) return failed_;
  const int64_t now = options_.now_ms();
  std::vector<std::string> out;
  for (const auto& [k, e] : index_) {
    if (!Expired(e.expiry_ms, now) && GlobMatch(pattern, k)) out.push_back(k);
  }
  return out;
}

Result<uint64_t> Store::Scan(uint64_t cursor, std::string_view pattern, uint64_t count,
                             std::vector<std::string>* keys) {
  std::lock_guard l(mu_);
  if (!failed_.ok()) return failed_;
  const int64_t now = options_.now_ms();
  auto it = scan_order_.lower_bound({cursor, std::string_view()});
  for (uint64_t n = 0; it != scan_order_.end() && n < std::max<uint64_t>(count, 1); ++it, ++n) {
    auto e = index_.find(it->second);
    if (e != index_.end() && !Expired(e->second.expiry_ms, now) && GlobMatch(pattern, e->first)) {
      keys->emplace_back(e->first);
    }
  }
  // The next cursor is the next key's hash; hash 0 would end the scan early
  // (probability 2^-64 per key).
  return it == scan_order_.end() ? 0 : it->first;
}

uint64_t Store::KeyCount() {
  std::lock_guard l(mu_);
  return index_.size();
}

uint64_t Store::last_sequence() {
  std::lock_guard l(mu_);
  return last_seq_;
}

uint64_t Store::durable_sequence() {
  std::lock_guard l(mu_);
  return durable_seq_;
}

Status Store::failure() {
  std::lock_guard l(mu_);
  return failed_;
}

void Store::RequestFlush() {
  {
    std::lock_guard l(mu_);
    if (staging_.empty() || flush_requested_) return;
    flush_requested_ = true;
  }
  flush_cv_.notify_one();
}

Status Store::WaitDurable(uint64_t sequence) {
  RequestFlush();
  std::unique_lock l(mu_);
  durable_cv_.wait(l, [&] { return durable_seq_ >= sequence || !failed_.ok() || stopping_; });
  if (durable_seq_ >= sequence) return Status::Ok();
  if (!failed_.ok()) return failed_;
  return Status::Cancelled("kv store shutting down");
}

// Group commit: everything staged when the flusher wakes is written and
// flushed as one group; writes arriving meanwhile wait for the next round.
// One flush per commit: the records are self-validating (checksum, sequence,
// open epoch, batch-end flag), so recovery finds acknowledged records past a
// stale tail word (ReplayPastTail). The tail word is a posted write here and
// is made durable every kTailPersistCommits commits, when the flusher has
// been idle for kTailIdlePersist, at compaction and at shutdown; it bounds
// how much of the log recovery checks leniently.
namespace {
constexpr uint64_t kTailPersistCommits = 256;
constexpr std::chrono::milliseconds kTailIdlePersist{50};
}  // namespace

Status Store::PersistTail() {
  uint64_t value = 0;
  int half = 0;
  {
    std::lock_guard l(mu_);
    if (!tail_dirty_ || !failed_.ok()) return Status::Ok();
    half = half_;
    value = durable_pos_ - RecordBase(half_);
  }
  Status s = device_->WriteAfterFlush(TailWordOffset(half), value);
  std::lock_guard l(mu_);
  if (!s.ok()) {
    Fail(s);
    return failed_;
  }
  tail_dirty_ = false;  // commit_mu_ held: no commit or switch ran meanwhile
  commits_since_tail_persist_ = 0;
  return Status::Ok();
}

void Store::FlusherLoop() {
  for (;;) {
    {
      std::unique_lock l(mu_);
      const auto ready = [&] { return stopping_ || (flush_requested_ && !staging_.empty()); };
      // Only a lagging tail word needs the idle timer; otherwise sleep until work.
      bool woken = true;
      if (tail_dirty_) {
        woken = flush_cv_.wait_for(l, kTailIdlePersist, ready);
      } else {
        flush_cv_.wait(l, ready);
      }
      if (!woken || (stopping_ && (staging_.empty() || !failed_.ok()))) {
        const bool exiting = stopping_;
        const bool dirty = tail_dirty_ && failed_.ok();
        l.unlock();
        if (dirty) {
          std::lock_guard c(commit_mu_);
          Status p = PersistTail();
          if (!p.ok()) COSMOS_LOG_WARN("kv: cannot persist the log tail word: {}", p.ToString());
        }
        if (exiting) return;
        continue;
      }
      if (!failed_.ok()) {
        flush_requested_ = false;
        continue;
      }
    }
    std::unique_lock c(commit_mu_);  // lock order: commit_mu_ before mu_
    std::unique_lock l(mu_);
    flush_requested_ = false;
    if (staging_.empty()) continue;  // a compaction committed it meanwhile
    inflight_.swap(staging_);
    staging_.clear();
    inflight_start_ = staging_start_;
    staging_start_ += inflight_.size();
    const uint64_t end = staging_start_;
    const uint64_t seq = last_seq_;
    const uint64_t records = records_pending_;
    records_pending_ = 0;
    const int half = half_;
    l.unlock();

    Status s = device_->Write(inflight_start_, inflight_.data(), inflight_.size());
    if (s.ok()) s = device_->Flush(inflight_start_, inflight_.size());
    const uint64_t tail_value = end - RecordBase(half);
    if (s.ok()) s = device_->Write(TailWordOffset(half), &tail_value, sizeof(tail_value));

    l.lock();
    bool persist_tail = false;
    if (!s.ok()) {
      Fail(s);
    } else {
      durable_seq_ = seq;
      durable_pos_ = end;
      ++group_commits_;
      records_committed_ += records;
      inflight_.clear();
      tail_dirty_ = true;
      persist_tail = ++commits_since_tail_persist_ >= kTailPersistCommits;
    }
    l.unlock();
    durable_cv_.notify_all();
    if (s.ok() && options_.on_durable) options_.on_durable(seq);
    if (persist_tail) {
      Status p = PersistTail();  // after the acknowledgement, still under commit_mu_
      if (!p.ok()) COSMOS_LOG_WARN("kv: cannot persist the log tail word: {}", p.ToString());
    }
  }
}

void Store::CompactorLoop() {
  for (;;) {
    {
      std::unique_lock l(mu_);
      compact_cv_.wait(l, [&] { return stopping_ || compact_requested_; });
      if (stopping_) return;
    }
    Status s = Compact();
    if (!s.ok()) COSMOS_LOG_WARN("kv: background compaction failed: {}", s.ToString());
    std::lock_guard l(mu_);
    compact_requested_ = false;
  }
}

Status Store::Compact() {
  std::lock_guard cl(compact_mu_);
  return CompactLocked();
}

// Compaction into the other half (generation g -> g + 1):
//  1. snapshot the live entries below the durable tail T0 and copy them
//     (no lock held: durable bytes of the active half never change);
//  2. copy the raw records in [T0, T1) that became durable meanwhile;
//  3. flush the new half; then, holding commit_mu_ and mu_ (clients wait for
//     about one flush), copy the remaining records, flush, WriteAfterFlush
//     the new half's tail and finally the active generation word. A crash
//     before the generation word is durable leaves generation g intact.
// Copying raw records after T0 keeps their order, so deletes and expiry
// changes made during compaction replay correctly.
Status Store::CompactLocked() {
  struct Item {
    std::string key;
    uint64_t old_pos;
    uint64_t new_pos;
    uint64_t value_len;
    int64_t expiry_ms;
    uint32_t key_len;
    std::vector<DeltaRef> chain;  // the key's delta records below t0, copied after it
    std::vector<uint64_t> new_chain;
  };
  std::vector<Item> items;
  uint64_t t0, new_gen, base_seq;
  int old_half, new_half;
  {
    std::lock_guard l(mu_);
    if (!failed_.ok()) return failed_;
    const int64_t now = options_.now_ms();
    t0 = durable_pos_;
    // Every sequence assigned so far is <= base_seq or lands in the new
    // half's records below its tail (the raw copies): recovery of the new
    // generation starts its sequence check from here.
    base_seq = last_seq_;
    old_half = half_;
    new_gen = generation_ + 1;
    new_half = static_cast<int>(new_gen % 2);
    items.reserve(index_.size());
    for (const auto& [k, e] : index_) {
      if (e.pos < t0 && !Expired(e.expiry_ms, now)) {
        items.push_back({k, e.pos, 0, e.value_len, e.expiry_ms, e.key_len, {}, {}});
        if (auto c = chains_.find(k); c != chains_.end()) {
          for (const DeltaRef& d : c->second) {
            if (d.pos < t0) items.back().chain.push_back(d);  // a prefix: chains only grow
          }
        }
      }
    }
  }
  const uint64_t base = RecordBase(new_half);
  const uint64_t old_base = RecordBase(old_half);
  char seg[kSegmentHeaderSize];
  EncodeSegmentHeader(new_gen, seg);
  COSMOS_RETURN_IF_ERROR(device_->Write(half_offset_[new_half], seg, sizeof(seg)));

  uint64_t out = base;
  std::string chunk, rec;
  auto flush_chunk = [&]() -> Status {
    if (chunk.empty()) return Status::Ok();
    COSMOS_RETURN_IF_ERROR(device_->Write(out, chunk.data(), chunk.size()));
    out += chunk.size();
    chunk.clear();
    return Status::Ok();
  };
  for (auto& it : items) {
    const uint64_t size = RecordSize(it.key_len, it.value_len);
    rec.resize(size);
    COSMOS_RETURN_IF_ERROR(device_->Read(it.old_pos, rec.data(), size));
    COSMOS_ASSIGN_OR_RETURN(RecordHeader h, DecodeRecordHeader(rec.data(), size, "compaction"));
    // Rewrite with the index's expiry (an EXPIRE before T0 may have changed it).
    if (h.expiry_ms != it.expiry_ms) {
      std::string k = rec.substr(kRecordHeaderSize, h.key_len);
      std::string v = rec.substr(kRecordHeaderSize + h.key_len, h.value_len);
      rec.clear();
      EncodeRecord(h.type, h.sequence, it.expiry_ms, k, v, h.flags, h.epoch, &rec);
    }
    it.new_pos = out + chunk.size();
    chunk += rec;
    // The key's deltas follow its base record, in order (raw copies).
    for (const DeltaRef& d : it.chain) {
      const uint64_t dsize = RecordSize(it.key_len, d.value_len);
      rec.resize(dsize);
      COSMOS_RETURN_IF_ERROR(device_->Read(d.pos, rec.data(), dsize));
      it.new_chain.push_back(out + chunk.size());
      chunk += rec;
    }
    if (chunk.size() >= (4u << 20)) COSMOS_RETURN_IF_ERROR(flush_chunk());
  }
  COSMOS_RETURN_IF_ERROR(flush_chunk());
  const uint64_t copied_base = out;  // raw copies of [t0, ...) start here

  // Raw copy of what became durable meanwhile.
  auto copy_raw = [&](uint64_t from, uint64_t to) -> Status {
    for (uint64_t p = from; p < to;) {
      const uint64_t n = std::min<uint64_t>(to - p, 4u << 20);
      chunk.resize(n);
      COSMOS_RETURN_IF_ERROR(device_->Read(p, chunk.data(), n));
      COSMOS_RETURN_IF_ERROR(flush_chunk());
      p += n;
    }
    return Status::Ok();
  };
  uint64_t t1;
  {
    std::lock_guard l(mu_);
    t1 = durable_pos_;
  }
  COSMOS_RETURN_IF_ERROR(copy_raw(t0, t1));
  COSMOS_RETURN_IF_ERROR(device_->Flush(half_offset_[new_half], out - half_offset_[new_half]));
  const uint64_t flushed_to = out;

  // Switch: clients and the flusher wait from here.
  std::lock_guard c(commit_mu_);
  std::lock_guard l(mu_);
  if (!failed_.ok()) return failed_;
  Status s = copy_raw(t1, durable_pos_);
  if (s.ok() && !staging_.empty()) {
    chunk = staging_;
    s = flush_chunk();
  }
  if (s.ok()) s = device_->Flush(flushed_to, out - flushed_to);
  if (s.ok()) s = device_->WriteAfterFlush(TailWordOffset(new_half), out - base);
  if (s.ok()) s = device_->WriteAfterFlush(BaseSequenceOffset(new_half), base_seq);
  if (s.ok()) s = device_->WriteAfterFlush(kActiveGenerationOffset, new_gen);
  if (!s.ok()) {
    Fail(s);
    return failed_;
  }
  // Remap the index: snapshot entries still at their old position move to
  // their copy; entries at or after t0 shift with the raw copy; entries
  // below t0 not in the snapshot were expired and are dropped.
  const uint64_t old_end = old_base + capacity_;
  for (const auto& it : items) {
    auto e = index_.find(it.key);
    if (e == index_.end() || e->second.pos != it.old_pos) continue;
    e->second.pos = it.new_pos;
    // Base unchanged, so its chain still starts with the snapshot's prefix.
    if (!it.chain.empty()) {
      std::vector<DeltaRef>& chain = chains_.at(it.key);
      COSMOS_CHECK(chain.size() >= it.chain.size());
      for (size_t i = 0; i < it.chain.size(); ++i) {
        COSMOS_CHECK(chain[i].pos == it.chain[i].pos);
        chain[i].pos = it.new_chain[i];
      }
    }
  }
  for (auto e = index_.begin(); e != index_.end();) {
    uint64_t& pos = e->second.pos;
    if (pos >= old_base && pos < old_end) {
      if (pos >= t0) {
        pos = pos - t0 + copied_base;
      } else {
        auto dead = e++;
        EraseKey(dead);
        continue;
      }
    }
    ++e;
  }
  // Deltas appended since t0 shift with the raw copy (keys that died above
  // took their chains with them in EraseKey).
  for (auto& [k, chain] : chains_) {
    for (DeltaRef& d : chain) {
      if (d.pos >= old_base && d.pos < old_end) {
        COSMOS_CHECK(d.pos >= t0);
        d.pos = d.pos - t0 + copied_base;
      }
    }
  }
  live_bytes_ = 0;
  for (const auto& [k, e] : index_) {
    live_bytes_ += RecordSize(e.key_len, e.value_len);
    if (auto c = chains_.find(k); c != chains_.end()) {
      for (const DeltaRef& d : c->second) live_bytes_ += RecordSize(e.key_len, d.value_len);
    }
  }
  const uint64_t old_used = append_pos_ - old_base;
  generation_ = new_gen;
  half_ = new_half;
  append_pos_ = durable_pos_ = staging_start_ = out;
  staging_.clear();
  durable_seq_ = last_seq_;
  records_committed_ += records_pending_;
  records_pending_ = 0;
  flush_requested_ = false;
  tail_dirty_ = false;  // the new half's tail word was written durably above
  commits_since_tail_persist_ = 0;
  ++compactions_;
  COSMOS_LOG_INFO("kv: compacted generation {} -> {}: {} -> {} log bytes, {} keys", new_gen - 1,
                  new_gen, old_used, out - base, index_.size());
  durable_cv_.notify_all();
  if (options_.on_durable) options_.on_durable(durable_seq_);
  return Status::Ok();
}

void Store::BeginAtomic() {
  commit_mu_.lock();  // no group commit or compaction switch until EndAtomic
  std::lock_guard l(mu_);
  COSMOS_CHECK(!atomic_);
  atomic_ = true;
  atomic_last_record_ = SIZE_MAX;
}

void Store::EndAtomic() {
  {
    std::lock_guard l(mu_);
    COSMOS_CHECK(atomic_);
    // staging_ only grew since BeginAtomic (commits and compaction switches
    // need commit_mu_), so the offset still names the section's last record.
    if (atomic_last_record_ != SIZE_MAX) MarkBatchEnd(staging_.data() + atomic_last_record_);
    atomic_ = false;
    atomic_last_record_ = SIZE_MAX;
  }
  commit_mu_.unlock();
}

StoreStats Store::Stats() {
  std::lock_guard l(mu_);
  StoreStats s;
  s.keys = index_.size();
  s.keys_with_expiry = expiry_order_.size();
  if (!expiry_order_.empty()) {
    const int64_t now = options_.now_ms();
    long double sum = 0;
    for (const auto& [expiry, key] : expiry_order_) sum += std::max<int64_t>(expiry - now, 0);
    s.avg_ttl_ms = static_cast<int64_t>(sum / static_cast<long double>(expiry_order_.size()));
  }
  s.generation = generation_;
  s.log_capacity = capacity_;
  s.log_used = append_pos_ - RecordBase(half_);
  s.live_bytes = live_bytes_;
  s.last_sequence = last_seq_;
  s.durable_sequence = durable_seq_;
  s.group_commits = group_commits_;
  s.records_committed = records_committed_;
  s.compactions = compactions_;
  s.device_backend = std::string(device_->BackendName());
  s.durability = std::string(device_->DurabilityLevel());
  return s;
}

Result<uint32_t> Store::DurableBackups() {
  {
    std::lock_guard l(mu_);
    if (!failed_.ok()) return failed_;
  }
  return device_->DurableBackups();
}

bool GlobMatch(std::string_view p, std::string_view s) {
  size_t pi = 0, si = 0;
  size_t star_p = std::string_view::npos, star_s = 0;
  while (si < s.size()) {
    if (pi < p.size()) {
      const char c = p[pi];
      if (c == '*') {
        while (pi < p.size() && p[pi] == '*') ++pi;
        if (pi == p.size()) return true;
        star_p = pi;
        star_s = si;
        continue;
      }
      if (c == '?') {
        ++pi;
        ++si;
        continue;
      }
      if (c == '[') {
        size_t q = pi + 1;
        bool negate = false;
        if (q < p.size() && p[q] == '^') {
          negate = true;
          ++q;
        }
        bool match = false;
        bool closed = false;
        while (q < p.size()) {
          if (p[q] == '\\' && q + 1 < p.size()) {
            if (p[q + 1] == s[si]) match = true;
            q += 2;
          } else if (p[q] == ']') {
            closed = true;
            break;
          } else if (q + 2 < p.size() && p[q + 1] == '-' && p[q + 2] != ']') {
            char lo = p[q], hi = p[q + 2];
            if (lo > hi) std::swap(lo, hi);
            if (s[si] >= lo && s[si] <= hi) match = true;
            q += 3;
          } else {
            if (p[q] == s[si]) match = true;
            ++q;
          }
        }
        if (negate) match = !match;
        if (match) {
          pi = closed ? q + 1 : q;
          ++si;
          continue;
        }
      } else if (c == '\\' && pi + 1 < p.size()) {
        if (p[pi + 1] == s[si]) {
          pi += 2;
          ++si;
          continue;
        }
      } else if (c == s[si]) {
        ++pi;
        ++si;
        continue;
      }
    }
    if (star_p == std::string_view::npos) return false;
    pi = star_p;
    si = ++star_s;
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

}  // namespace cosmos::kv
