// Pool and Region: format, validation, recovery, allocation and the
// crash-atomic metadata operations of the version 1 layout.
#include "pmem/pool.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "common/check.h"
#include "common/file_system.h"
#include "common/log.h"

namespace cosmos::pmem {

using layout::PoolHeader;
using layout::PoolState;
using layout::RegionEntry;

namespace internal {

// Shared by the Pool and its Region handles. `mu` guards the metadata cache
// and handle counts; the data path never takes it.
struct PoolCore {
  std::string name;
  std::unique_ptr<Mapping> mapping;
  PoolHeader header{};
  bool read_only = false;
  RecoveryOutcome recovery = RecoveryOutcome::kClean;

  mutable std::mutex mu;
  PoolState state{};
  std::vector<RegionEntry> entries;      // cache of the region table
  std::map<uint64_t, int> open_handles;  // region id -> handle count
  bool closed = false;
  bool failed = false;       // a metadata commit failed: view may be ahead of the medium
  std::string backend_name;  // cached: the mapping is released by Close()
  DurabilityLevel durability = DurabilityLevel::kNone;

  std::string Where() const { return "pool " + name; }
};

}  // namespace internal

namespace {

using internal::PoolCore;

uint64_t NowUnixNanos() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

std::string UuidString(const uint8_t (&u)[16]) {
  char buf[37];
  std::snprintf(buf, sizeof(buf),
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
                u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
                u[15]);
  return buf;
}

std::string EntryName(const RegionEntry& e) {
  return std::string(e.name, std::min<uint32_t>(e.name_length, layout::kMaxRegionNameLength));
}

bool ValidNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-' || c == ':';
}

Status ValidateName(std::string_view pool, std::string_view name) {
  if (name.empty()) {
    return Status::InvalidArgument("pool " + std::string(pool) + ": region name is empty");
  }
  if (name.size() > layout::kMaxRegionNameLength) {
    return Status::InvalidArgument("pool " + std::string(pool) + ": region name '" +
                                   std::string(name.substr(0, 16)) + "...' is " +
                                   std::to_string(name.size()) + " bytes; the limit is " +
                                   std::to_string(layout::kMaxRegionNameLength));
  }
  for (char c : name) {
    if (!ValidNameChar(c)) {
      return Status::InvalidArgument("pool " + std::string(pool) + ": region name '" +
                                     std::string(name) +
                                     "' may only contain letters, digits and . _ : -");
    }
  }
  return Status::Ok();
}

RegionEntry FreeEntry() {
  RegionEntry e{};
  e.checksum = layout::EntryChecksum(e);
  return e;
}

RegionInfo InfoOf(const RegionEntry& e) {
  return RegionInfo{EntryName(e), e.region_id,       e.offset,         e.size,
                    e.flags,      e.metadata_length, e.created_unix_ns};
}

template <typename T>
std::vector<std::byte> BytesOf(const T& v) {
  std::vector<std::byte> out(sizeof(T));
  std::memcpy(out.data(), &v, sizeof(T));
  return out;
}

uint64_t EntryOffset(const PoolHeader& h, uint32_t index) {
  return h.region_table_offset + uint64_t{index} * sizeof(RegionEntry);
}

RedoLog LogOf(const PoolCore& core) {
  return RedoLog(core.mapping.get(), core.header.redo_log_offset, core.header.redo_log_size,
                 layout::kStateOffset, core.header.redo_log_offset, core.name);
}

// Validates the immutable header against the mapping size.
Status ValidateHeader(const std::string& where, const PoolHeader& h, uint64_t mapped_size) {
  if (std::memcmp(h.magic, layout::kPoolMagic, sizeof(h.magic)) != 0) {
    return Status::Corruption(where + ": header: bad magic, not a COSMOS pool");
  }
  if (h.version != layout::kFormatVersion) {
    return Status::FailedPrecondition(where + ": header: unsupported format version " +
                                      std::to_string(h.version) + " (this build reads version " +
                                      std::to_string(layout::kFormatVersion) + ")");
  }
  if (h.header_size != sizeof(PoolHeader)) {
    return Status::Corruption(where + ": header: header_size " + std::to_string(h.header_size) +
                              " != " + std::to_string(sizeof(PoolHeader)));
  }
  if (layout::HeaderChecksum(h) != h.checksum) {
    return Status::Corruption(where + ": header: checksum mismatch");
  }
  if (h.pool_size > mapped_size) {
    return Status::Corruption(where + ": truncated: header says the pool is " +
                              std::to_string(h.pool_size) + " bytes but only " +
                              std::to_string(mapped_size) + " are present");
  }
  layout::Geometry g;
  Status gs = layout::ComputeGeometry(h.pool_size, h.region_table_capacity, &g);
  if (!gs.ok()) return Status::Corruption(where + ": header: " + gs.message());
  if (h.region_table_offset != g.region_table_offset || h.redo_log_offset != g.redo_log_offset ||
      h.redo_log_size != g.redo_log_size || h.data_offset != g.data_offset ||
      h.data_size != g.data_size || h.region_entry_size != sizeof(RegionEntry)) {
    return Status::Corruption(where +
                              ": header: area offsets/sizes are inconsistent with "
                              "pool_size and region table capacity");
  }
  if (!DurabilityFromValue(h.durability_at_creation)) {
    return Status::Corruption(where + ": header: unknown durability level " +
                              std::to_string(h.durability_at_creation));
  }
  return Status::Ok();
}

// Validates state and table as read from `base`; fills the caches.
Status ValidateMetadata(const std::string& where, const PoolHeader& h, const std::byte* base,
                        PoolState* state_out, std::vector<RegionEntry>* entries_out) {
  PoolState st;
  std::memcpy(&st, base + layout::kStateOffset, sizeof(st));
  if (layout::StateChecksum(st) != st.checksum) {
    return Status::Corruption(where + ": pool state record: checksum mismatch");
  }
  std::vector<RegionEntry> entries(h.region_table_capacity);
  const RegionEntry free_entry = FreeEntry();
  std::set<std::string> names;
  std::set<uint64_t> ids;
  std::vector<std::pair<uint64_t, uint64_t>> extents;  // offset, allocated end
  const uint64_t data_begin = h.data_offset;
  const uint64_t data_end = h.data_offset + h.data_size;
  uint32_t used = 0;
  for (uint32_t i = 0; i < h.region_table_capacity; ++i) {
    RegionEntry& e = entries[i];
    std::memcpy(&e, base + EntryOffset(h, i), sizeof(e));
    const std::string at = where + ": region table entry " + std::to_string(i);
    if (layout::EntryChecksum(e) != e.checksum)
      return Status::Corruption(at + ": checksum mismatch");
    if (e.state == layout::kEntryFree) {
      if (std::memcmp(&e, &free_entry, sizeof(e)) != 0) {
        return Status::Corruption(at + ": free entry is not zeroed");
      }
      continue;
    }
    if (e.state != layout::kEntryInUse) {
      return Status::Corruption(at + ": unknown state " + std::to_string(e.state));
    }
    ++used;
    if (e.name_length == 0 || e.name_length > layout::kMaxRegionNameLength) {
      return Status::Corruption(at + ": name length " + std::to_string(e.name_length));
    }
    const std::string name = EntryName(e);
    if (!ValidateName(where, name).ok()) return Status::Corruption(at + ": invalid name");
    if (e.metadata_length > layout::kMetadataSlotSize) {
      return Status::Corruption(at + " ('" + name + "'): metadata length " +
                                std::to_string(e.metadata_length));
    }
    if (e.size == 0 || e.offset % layout::kBlockSize != 0 || e.offset < data_begin ||
        e.offset >= data_end || e.size > data_end - e.offset) {
      return Status::Corruption(at + " ('" + name + "'): extent [" + std::to_string(e.offset) +
                                ", +" + std::to_string(e.size) + ") lies outside the data area [" +
                                std::to_string(data_begin) + ", " + std::to_string(data_end) + ")");
    }
    if (e.region_id == 0 || e.region_id >= st.next_region_id) {
      return Status::Corruption(at + " ('" + name + "'): region id " + std::to_string(e.region_id) +
                                " not below next id " + std::to_string(st.next_region_id));
    }
    if (!names.insert(name).second)
      return Status::Corruption(at + ": duplicate name '" + name + "'");
    if (!ids.insert(e.region_id).second) return Status::Corruption(at + ": duplicate region id");
    extents.emplace_back(
        e.offset, std::min(data_end, e.offset + layout::AlignUp(e.size, layout::kBlockSize)));
  }
  std::sort(extents.begin(), extents.end());
  for (size_t i = 1; i < extents.size(); ++i) {
    if (extents[i].first < extents[i - 1].second) {
      return Status::Corruption(where + ": region table: regions overlap at offset " +
                                std::to_string(extents[i].first));
    }
  }
  if (used != st.region_count) {
    return Status::Corruption(where + ": pool state record counts " +
                              std::to_string(st.region_count) + " regions, table holds " +
                              std::to_string(used));
  }
  *state_out = st;
  *entries_out = std::move(entries);
  return Status::Ok();
}

// Free extents of the data area, ordered by offset.
std::vector<std::pair<uint64_t, uint64_t>> FreeExtents(const PoolHeader& h,
                                                       const std::vector<RegionEntry>& entries) {
  std::vector<std::pair<uint64_t, uint64_t>> used;
  for (const auto& e : entries) {
    if (e.state == layout::kEntryInUse) {
      used.emplace_back(e.offset, e.offset + layout::AlignUp(e.size, layout::kBlockSize));
    }
  }
  std::sort(used.begin(), used.end());
  std::vector<std::pair<uint64_t, uint64_t>> free;  // begin, end
  uint64_t cursor = h.data_offset;
  for (const auto& [b, e] : used) {
    if (b > cursor) free.emplace_back(cursor, b);
    cursor = std::max(cursor, e);
  }
  const uint64_t end = h.data_offset + h.data_size;
  if (end > cursor) free.emplace_back(cursor, end);
  return free;
}

Status OpenError(int err, const std::string& path, bool read_only) {
  if (err == ENOENT) return Status::NotFound("pool " + path + " does not exist");
  if (err == EACCES || err == EPERM || err == EROFS) {
    return Status::PermissionDenied(
        "pool " + path + ": cannot open " + (read_only ? "read-only" : "read-write") + ": " +
        std::strerror(err) + (read_only ? "" : " (open it read-only to inspect it)"));
  }
  return Status::FromErrno(err, "pool " + path + ": open");
}

// Maps `fd` with the backend chosen by `options`; consumes fd.
Result<std::unique_ptr<Mapping>> MapWithBackend(int fd, size_t size, const PoolOptions& options,
                                                const std::string& path) {
  switch (options.backend) {
    case BackendKind::kFile:
      return MapFile(fd, size, true, path);
    case BackendKind::kPmem2Dax:
      return MapPmem2(fd, size, false, path);
    case BackendKind::kPmem2Emulated:
      return MapPmem2(fd, size, true, path);
    case BackendKind::kAuto: {
      const int probe_fd = dup(fd);
      if (probe_fd < 0) {
        const int err = errno;
        close(fd);
        return Status::FromErrno(err, "pool " + path + ": dup");
      }
      auto dax = MapPmem2(probe_fd, size, false, path);
      if (dax.ok()) {
        close(fd);
        return dax;
      }
      // Not DAX (the usual case), or libpmem2 cannot use this file at all:
      // the page backend works on any mappable file.
      COSMOS_LOG_DEBUG("pool {}: using the page backend: {}", path, dax.status().ToString());
      return MapFile(fd, size, true, path);
    }
    case BackendKind::kDram:
      break;
  }
  close(fd);
  return Status::InvalidArgument("pool " + path + ": backend 'dram' cannot map a file");
}

}  // namespace

// ---------------------------------------------------------------------------
// Creation and opening.

Result<std::unique_ptr<Pool>> Pool::CreateOnMapping(std::unique_ptr<Mapping> mapping,
                                                    std::string name, uint32_t max_regions) {
  COSMOS_CHECK(mapping != nullptr);
  const std::string where = "pool " + name;
  if (!mapping->writable()) return Status::FailedPrecondition(where + ": mapping is read-only");
  layout::Geometry g;
  Status gs = layout::ComputeGeometry(mapping->size(), max_regions, &g);
  if (!gs.ok()) return Status::InvalidArgument(where + ": " + gs.message());

  std::byte* base = mapping->base();
  // Metadata first (state, free table, empty log), header last: until the
  // header is durable the medium is not a pool.
  std::memset(base, 0, g.data_offset);
  PoolState st{};
  st.next_region_id = 1;
  st.checksum = layout::StateChecksum(st);
  std::memcpy(base + layout::kStateOffset, &st, sizeof(st));
  const RegionEntry free_entry = FreeEntry();
  for (uint32_t i = 0; i < max_regions; ++i) {
    std::memcpy(base + g.region_table_offset + uint64_t{i} * sizeof(RegionEntry), &free_entry,
                sizeof(free_entry));
  }
  COSMOS_RETURN_IF_ERROR(mapping->Persist(0, g.data_offset));

  PoolHeader h{};
  std::memcpy(h.magic, layout::kPoolMagic, sizeof(h.magic));
  h.version = layout::kFormatVersion;
  h.header_size = sizeof(PoolHeader);
  if (getrandom(h.uuid, sizeof(h.uuid), 0) != static_cast<ssize_t>(sizeof(h.uuid))) {
    return Status::FromErrno(errno, where + ": getrandom for the pool UUID");
  }
  h.uuid[6] = static_cast<uint8_t>((h.uuid[6] & 0x0f) | 0x40);  // RFC 4122 version 4
  h.uuid[8] = static_cast<uint8_t>((h.uuid[8] & 0x3f) | 0x80);
  h.pool_size = mapping->size() & ~(layout::kBlockSize - 1);
  h.created_unix_ns = NowUnixNanos();
  h.region_table_offset = g.region_table_offset;
  h.region_table_capacity = g.region_table_capacity;
  h.region_entry_size = sizeof(RegionEntry);
  h.redo_log_offset = g.redo_log_offset;
  h.redo_log_size = g.redo_log_size;
  h.data_offset = g.data_offset;
  h.data_size = g.data_size;
  h.durability_at_creation = static_cast<uint32_t>(mapping->durability());
  h.checksum = layout::HeaderChecksum(h);
  std::memcpy(base, &h, sizeof(h));
  COSMOS_RETURN_IF_ERROR(mapping->Persist(0, sizeof(h)));
  return OpenMapped(std::move(mapping), std::move(name), false);
}

Result<std::unique_ptr<Pool>> Pool::OpenOnMapping(std::unique_ptr<Mapping> mapping,
                                                  std::string name, bool read_only) {
  COSMOS_CHECK(mapping != nullptr);
  return OpenMapped(std::move(mapping), std::move(name), read_only);
}

Result<std::unique_ptr<Pool>> Pool::OpenMapped(std::unique_ptr<Mapping> mapping, std::string name,
                                               bool read_only) {
  auto core = std::make_shared<PoolCore>();
  core->name = std::move(name);
  core->read_only = read_only || !mapping->writable();
  const std::string where = core->Where();
  if (mapping->size() < layout::kBlockSize) {
    return Status::Corruption(where + ": truncated: " + std::to_string(mapping->size()) +
                              " bytes, smaller than the " + std::to_string(layout::kBlockSize) +
                              "-byte header block");
  }
  std::memcpy(&core->header, mapping->base(), sizeof(PoolHeader));
  COSMOS_RETURN_IF_ERROR(ValidateHeader(where, core->header, mapping->size()));
  core->mapping = std::move(mapping);
  core->backend_name = std::string(core->mapping->backend_name());
  core->durability = core->mapping->durability();

  // Validate the log before touching anything, then replay. A read-only
  // pool replays into its private view only.
  COSMOS_ASSIGN_OR_RETURN(core->recovery, LogOf(*core).Recover(!core->read_only));
  if (core->recovery != RecoveryOutcome::kClean) {
    COSMOS_LOG_INFO("{}: recovery: {}", where, RecoveryOutcomeName(core->recovery));
  }
  COSMOS_RETURN_IF_ERROR(
      ValidateMetadata(where, core->header, core->mapping->base(), &core->state, &core->entries));
  if (core->mapping->durability() == DurabilityLevel::kNone) {
    COSMOS_LOG_DEBUG("{}: backend {} is not durable (durability none)", where,
                     core->mapping->backend_name());
  }
  return std::unique_ptr<Pool>(new Pool(std::move(core)));
}

Result<std::unique_ptr<Pool>> Pool::Create(const std::string& path, uint64_t size,
                                           const PoolOptions& options) {
  if (options.backend == BackendKind::kDram) {
    COSMOS_ASSIGN_OR_RETURN(auto mapping, MapDram(size & ~(layout::kBlockSize - 1)));
    return CreateOnMapping(std::move(mapping), path, options.max_regions);
  }
  layout::Geometry g;
  Status gs = layout::ComputeGeometry(size, options.max_regions, &g);
  if (!gs.ok()) return Status::InvalidArgument("pool " + path + ": " + gs.message());
  size &= ~(layout::kBlockSize - 1);

  struct stat st {};
  if (stat(path.c_str(), &st) == 0)
    return Status::AlreadyExists("pool " + path + " already exists");
  const std::string temp = path + ".creating";
  const int fd = open(temp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) {
      return Status::NotFound("pool " + path + ": the directory does not exist");
    }
    return OpenError(err, path, false);
  }
  auto fail = [&](Status s) -> Status {
    unlink(temp.c_str());
    return s;
  };
  if (int rc = posix_fallocate(fd, 0, static_cast<off_t>(size)); rc != 0) {
    close(fd);
    if (rc == ENOSPC || rc == EFBIG) {
      return fail(Status::ResourceExhausted("pool " + path + ": no space for " +
                                            std::to_string(size) + " bytes: " + std::strerror(rc)));
    }
    return fail(
        Status::FromErrno(rc, "pool " + path + ": allocate " + std::to_string(size) + " bytes"));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    close(fd);
    return fail(Status::FromErrno(err, "pool " + path + ": lock"));
  }
  auto mapping = MapWithBackend(fd, size, options, path);
  if (!mapping.ok()) return fail(mapping.status());
  auto pool = CreateOnMapping(std::move(*mapping), path, options.max_regions);
  if (!pool.ok()) return fail(pool.status());
  // The pool is complete and durable; publish it without clobbering a file
  // that appeared meanwhile.
  if (renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) != 0) {
    const int err = errno;
    (*pool)->Close().IgnoreError();  // no handles exist yet; releases the mapping
    if (err == EEXIST) return fail(Status::AlreadyExists("pool " + path + " already exists"));
    return fail(Status::FromErrno(err, "pool " + path + ": rename from " + temp));
  }
  COSMOS_RETURN_IF_ERROR(SyncDirectoryOf(path));  // the new name survives a crash
  return pool;
}

Result<std::unique_ptr<Pool>> Pool::Open(const std::string& path, const PoolOptions& options) {
  if (options.backend == BackendKind::kDram) {
    return Status::InvalidArgument("pool " + path +
                                   ": dram pools live only in memory; there is nothing to open");
  }
  const bool ro = options.read_only;
  const int fd = open(path.c_str(), (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (fd < 0) return OpenError(errno, path, ro);
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    return Status::FromErrno(err, "pool " + path + ": stat");
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return Status::InvalidArgument("pool " + path + " is not a regular file");
  }
  // Root bypasses permission bits; honour them anyway so an operator's
  // chmod a-w protects a pool from being opened for writing.
  if (!ro && (st.st_mode & (S_IWUSR | S_IWGRP | S_IWOTH)) == 0) {
    close(fd);
    return Status::PermissionDenied("pool " + path +
                                    ": file is read-only (no write permission bits); open it "
                                    "read-only to inspect it");
  }
  if (static_cast<uint64_t>(st.st_size) < layout::kBlockSize) {
    close(fd);
    return Status::Corruption("pool " + path + ": truncated: " + std::to_string(st.st_size) +
                              " bytes, smaller than the " + std::to_string(layout::kBlockSize) +
                              "-byte header block");
  }
  if (flock(fd, (ro ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
    const int err = errno;
    close(fd);
    if (err == EWOULDBLOCK) {
      return Status::Unavailable("pool " + path + (ro ? " is open read-write" : " is open") +
                                 " in another process");
    }
    return Status::FromErrno(err, "pool " + path + ": lock");
  }
  // Validate the header through pread first so a foreign file is rejected
  // before anything maps it writable.
  PoolHeader h{};
  if (pread(fd, &h, sizeof(h), 0) != static_cast<ssize_t>(sizeof(h))) {
    const int err = errno;
    close(fd);
    return Status::FromErrno(err, "pool " + path + ": read header");
  }
  if (Status s = ValidateHeader("pool " + path, h, static_cast<uint64_t>(st.st_size)); !s.ok()) {
    close(fd);
    return s;
  }
  Result<std::unique_ptr<Mapping>> mapping =
      ro ? MapFile(fd, h.pool_size, false, path) : MapWithBackend(fd, h.pool_size, options, path);
  if (!mapping.ok()) return mapping.status();
  return OpenMapped(std::move(*mapping), path, ro);
}

Pool::~Pool() { Close().IgnoreError(); /* destructor: see Close() for errors */ }

Status Pool::Close() {
  std::lock_guard<std::mutex> lock(core_->mu);
  if (core_->closed) return Status::Ok();
  size_t open = 0;
  for (const auto& [id, n] : core_->open_handles) open += static_cast<size_t>(n);
  if (open > 0) {
    return Status::FailedPrecondition(core_->Where() + ": " + std::to_string(open) +
                                      " region handle(s) still open");
  }
  core_->closed = true;
  // No handle can reach the mapping any more: unmap and unlock the file now.
  core_->mapping.reset();
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Metadata operations.

namespace {

// REQUIRES: core.mu held.
Status CheckMutable(const PoolCore& core) {
  if (core.closed) return Status::FailedPrecondition(core.Where() + " is closed");
  if (core.read_only) return Status::FailedPrecondition(core.Where() + " is open read-only");
  if (core.failed) {
    return Status::FailedPrecondition(core.Where() +
                                      ": an earlier metadata update failed; reopen the pool");
  }
  return Status::Ok();
}

// Commits new contents for entry `index` and the pool state through the redo
// log, then updates the cache. REQUIRES: core.mu held.
Status CommitEntry(PoolCore& core, uint32_t index, RegionEntry entry, PoolState state) {
  state.metadata_sequence = core.state.metadata_sequence + 1;
  state.checksum = layout::StateChecksum(state);
  entry.checksum = layout::EntryChecksum(entry);
  std::vector<RedoWrite> writes;
  writes.push_back({EntryOffset(core.header, index), BytesOf(entry)});
  writes.push_back({layout::kStateOffset, BytesOf(state)});
  Status s = LogOf(core).Commit(state.metadata_sequence, writes);
  if (!s.ok()) {
    // The view may hold part of the update; the medium holds a state that
    // recovery makes consistent. Refuse further metadata changes.
    core.failed = true;
    return s;
  }
  core.entries[index] = entry;
  core.state = state;
  return Status::Ok();
}

std::optional<uint32_t> FindEntry(const PoolCore& core, std::string_view name) {
  for (uint32_t i = 0; i < core.entries.size(); ++i) {
    const RegionEntry& e = core.entries[i];
    if (e.state == layout::kEntryInUse && EntryName(e) == name) return i;
  }
  return std::nullopt;
}

}  // namespace

Result<Region> Pool::CreateRegion(std::string_view name, uint64_t size, uint32_t flags) {
  PoolCore& core = *core_;
  std::lock_guard<std::mutex> lock(core.mu);
  COSMOS_RETURN_IF_ERROR(CheckMutable(core));
  COSMOS_RETURN_IF_ERROR(ValidateName(core.name, name));
  const std::string where = core.Where() + ": region '" + std::string(name) + "'";
  if (size == 0) return Status::InvalidArgument(where + ": size must be > 0");
  if (FindEntry(core, name)) return Status::AlreadyExists(where + " already exists");
  std::optional<uint32_t> slot;
  for (uint32_t i = 0; i < core.entries.size() && !slot; ++i) {
    if (core.entries[i].state == layout::kEntryFree) slot = i;
  }
  if (!slot) {
    return Status::ResourceExhausted(where + ": region table full (" +
                                     std::to_string(core.entries.size()) + " regions)");
  }
  uint64_t largest = 0;
  std::optional<uint64_t> offset;
  const uint64_t need =
      size > core.header.data_size ? UINT64_MAX : layout::AlignUp(size, layout::kBlockSize);
  for (const auto& [b, e] : FreeExtents(core.header, core.entries)) {
    largest = std::max(largest, e - b);
    if (!offset && e - b >= need) offset = b;
  }
  if (!offset) {
    return Status::ResourceExhausted(where + ": pool full: need " + std::to_string(size) +
                                     " bytes, largest free extent is " + std::to_string(largest));
  }

  // Zero the extent durably before the entry that exposes it commits: a
  // region never shows bytes of a deleted one.
  std::memset(core.mapping->base() + *offset, 0, size);
  if (Status s = core.mapping->Persist(*offset, size); !s.ok()) return s;

  RegionEntry e{};
  e.state = layout::kEntryInUse;
  e.flags = flags;
  e.region_id = core.state.next_region_id;
  e.offset = *offset;
  e.size = size;
  e.created_unix_ns = NowUnixNanos();
  e.name_length = static_cast<uint32_t>(name.size());
  std::memcpy(e.name, name.data(), name.size());
  PoolState st = core.state;
  st.next_region_id += 1;
  st.region_count += 1;
  COSMOS_RETURN_IF_ERROR(CommitEntry(core, *slot, e, st));
  core.open_handles[e.region_id] += 1;
  return Region(core_, *slot, InfoOf(e));
}

Result<Region> Pool::OpenRegion(std::string_view name) {
  PoolCore& core = *core_;
  std::lock_guard<std::mutex> lock(core.mu);
  if (core.closed) return Status::FailedPrecondition(core.Where() + " is closed");
  auto index = FindEntry(core, name);
  if (!index) {
    return Status::NotFound(core.Where() + ": no region named '" + std::string(name) + "'");
  }
  const RegionEntry& e = core.entries[*index];
  core.open_handles[e.region_id] += 1;
  return Region(core_, *index, InfoOf(e));
}

std::vector<RegionInfo> Pool::ListRegions() const {
  std::lock_guard<std::mutex> lock(core_->mu);
  std::vector<RegionInfo> out;
  for (const auto& e : core_->entries) {
    if (e.state == layout::kEntryInUse) out.push_back(InfoOf(e));
  }
  std::sort(out.begin(), out.end(),
            [](const RegionInfo& a, const RegionInfo& b) { return a.offset < b.offset; });
  return out;
}

Status Pool::DeleteRegion(std::string_view name) {
  PoolCore& core = *core_;
  std::lock_guard<std::mutex> lock(core.mu);
  COSMOS_RETURN_IF_ERROR(CheckMutable(core));
  auto index = FindEntry(core, name);
  if (!index) {
    return Status::NotFound(core.Where() + ": no region named '" + std::string(name) + "'");
  }
  const uint64_t id = core.entries[*index].region_id;
  if (auto it = core.open_handles.find(id); it != core.open_handles.end() && it->second > 0) {
    return Status::FailedPrecondition(core.Where() + ": region '" + std::string(name) + "' has " +
                                      std::to_string(it->second) + " open handle(s)");
  }
  PoolState st = core.state;
  st.region_count -= 1;
  return CommitEntry(core, *index, RegionEntry{}, st);
}

PoolInfo Pool::Info() const {
  const PoolCore& core = *core_;
  std::lock_guard<std::mutex> lock(core.mu);
  PoolInfo info;
  info.path = core.name;
  info.uuid = UuidString(core.header.uuid);
  info.format_version = core.header.version;
  info.pool_size = core.header.pool_size;
  info.data_offset = core.header.data_offset;
  info.data_size = core.header.data_size;
  for (const auto& [b, e] : FreeExtents(core.header, core.entries)) {
    info.free_bytes += e - b;
    info.largest_free_extent = std::max(info.largest_free_extent, e - b);
  }
  info.used_bytes = info.data_size - info.free_bytes;
  info.region_count = core.state.region_count;
  info.max_regions = core.header.region_table_capacity;
  info.metadata_sequence = core.state.metadata_sequence;
  info.backend = core.backend_name;
  info.durability = core.durability;
  info.durability_at_creation = static_cast<DurabilityLevel>(core.header.durability_at_creation);
  info.read_only = core.read_only;
  info.recovery = core.recovery;
  info.created_unix_ns = core.header.created_unix_ns;
  return info;
}

DurabilityLevel Pool::durability() const { return core_->durability; }

Status Pool::Check() const {
  const PoolCore& core = *core_;
  std::lock_guard<std::mutex> lock(core.mu);
  const std::string where = core.Where();
  if (core.closed) return Status::FailedPrecondition(where + " is closed");
  PoolHeader h;
  std::memcpy(&h, core.mapping->base(), sizeof(h));
  COSMOS_RETURN_IF_ERROR(ValidateHeader(where, h, core.mapping->size()));
  if (std::memcmp(&h, &core.header, sizeof(h)) != 0) {
    return Status::Corruption(where + ": header changed since open");
  }
  COSMOS_RETURN_IF_ERROR(LogOf(core).CheckEmpty());
  PoolState st;
  std::vector<RegionEntry> entries;
  COSMOS_RETURN_IF_ERROR(ValidateMetadata(where, h, core.mapping->base(), &st, &entries));
  if (std::memcmp(&st, &core.state, sizeof(st)) != 0 ||
      std::memcmp(entries.data(), core.entries.data(), entries.size() * sizeof(RegionEntry)) != 0) {
    return Status::Corruption(where + ": metadata on media differs from the open pool's view");
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Region.

Region::Region(std::shared_ptr<internal::PoolCore> core, uint32_t index, const RegionInfo& info)
    : core_(std::move(core)),
      mapping_(core_->mapping.get()),
      read_only_(core_->read_only),
      index_(index),
      id_(info.id),
      pool_offset_(info.offset),
      size_(info.size),
      flags_(info.flags),
      data_(core_->mapping->base() + info.offset),
      name_(info.name) {}

Region::Region(Region&& other) noexcept
    : core_(std::move(other.core_)),
      mapping_(other.mapping_),
      read_only_(other.read_only_),
      index_(other.index_),
      id_(other.id_),
      pool_offset_(other.pool_offset_),
      size_(other.size_),
      flags_(other.flags_),
      data_(other.data_),
      name_(std::move(other.name_)) {
  other.core_.reset();
}

Region& Region::operator=(Region&& other) noexcept {
  if (this != &other) {
    Release();
    core_ = std::move(other.core_);
    other.core_.reset();
    mapping_ = other.mapping_;
    read_only_ = other.read_only_;
    index_ = other.index_;
    id_ = other.id_;
    pool_offset_ = other.pool_offset_;
    size_ = other.size_;
    flags_ = other.flags_;
    data_ = other.data_;
    name_ = std::move(other.name_);
  }
  return *this;
}

Region::~Region() { Release(); }

void Region::Release() {
  if (!core_) return;
  {
    std::lock_guard<std::mutex> lock(core_->mu);
    auto it = core_->open_handles.find(id_);
    COSMOS_CHECK(it != core_->open_handles.end() && it->second > 0);
    if (--it->second == 0) core_->open_handles.erase(it);
  }
  core_.reset();
}

DurabilityLevel Region::durability() const {
  COSMOS_CHECK_MSG(core_ != nullptr, "use of a moved-from Region");
  return mapping_->durability();
}

Status Region::CheckRange(uint64_t offset, uint64_t len) const {
  COSMOS_CHECK_MSG(core_ != nullptr, "use of a moved-from Region");
  if (offset > size_ || len > size_ - offset) {
    return Status::OutOfRange(core_->Where() + ": region '" + name_ + "': range [" +
                              std::to_string(offset) + ", +" + std::to_string(len) +
                              ") is outside the region of " + std::to_string(size_) + " bytes");
  }
  return Status::Ok();
}

Status Region::CheckWritable() const {
  if (read_only_) {
    return Status::FailedPrecondition(core_->Where() + " is open read-only");
  }
  return Status::Ok();
}

Status Region::Flush(uint64_t offset, uint64_t len) const {
  COSMOS_RETURN_IF_ERROR(CheckRange(offset, len));
  COSMOS_RETURN_IF_ERROR(CheckWritable());
  return mapping_->Flush(pool_offset_ + offset, len);
}

Status Region::Drain() const {
  COSMOS_CHECK_MSG(core_ != nullptr, "use of a moved-from Region");
  COSMOS_RETURN_IF_ERROR(CheckWritable());
  return mapping_->Drain();
}

Status Region::Persist(uint64_t offset, uint64_t len) const {
  COSMOS_RETURN_IF_ERROR(CheckRange(offset, len));
  COSMOS_RETURN_IF_ERROR(CheckWritable());
  return mapping_->Persist(pool_offset_ + offset, len);
}

Status Region::MemcpyPersist(uint64_t offset, const void* src, uint64_t len) const {
  COSMOS_RETURN_IF_ERROR(CheckRange(offset, len));
  COSMOS_RETURN_IF_ERROR(CheckWritable());
  return mapping_->MemcpyPersist(pool_offset_ + offset, src, len);
}

Status Region::AtomicStore64(uint64_t offset, uint64_t value) const {
  COSMOS_RETURN_IF_ERROR(CheckRange(offset, sizeof(uint64_t)));
  COSMOS_RETURN_IF_ERROR(CheckWritable());
  // Region offsets are block aligned, so region alignment is pool alignment.
  if (offset % alignof(uint64_t) != 0) {
    return Status::InvalidArgument(core_->Where() + ": region '" + name_ + "': offset " +
                                   std::to_string(offset) +
                                   " of an atomic store is not 8-byte "
                                   "aligned");
  }
  std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(data_ + offset))
      .store(value, std::memory_order_release);
  return mapping_->Persist(pool_offset_ + offset, sizeof(uint64_t));
}

Result<std::vector<std::byte>> Region::ReadMetadata() const {
  COSMOS_CHECK_MSG(core_ != nullptr, "use of a moved-from Region");
  std::lock_guard<std::mutex> lock(core_->mu);
  const RegionEntry& e = core_->entries[index_];
  COSMOS_CHECK(e.region_id == id_);  // handles pin their region
  const auto* p = reinterpret_cast<const std::byte*>(e.metadata);
  return std::vector<std::byte>(p, p + e.metadata_length);
}

Status Region::WriteMetadata(std::span<const std::byte> bytes) const {
  COSMOS_CHECK_MSG(core_ != nullptr, "use of a moved-from Region");
  PoolCore& core = *core_;
  std::lock_guard<std::mutex> lock(core.mu);
  COSMOS_RETURN_IF_ERROR(CheckMutable(core));
  if (bytes.size() > layout::kMetadataSlotSize) {
    return Status::InvalidArgument(core.Where() + ": region '" + name_ + "': metadata of " +
                                   std::to_string(bytes.size()) + " bytes exceeds the " +
                                   std::to_string(layout::kMetadataSlotSize) + "-byte slot");
  }
  RegionEntry e = core.entries[index_];
  COSMOS_CHECK(e.region_id == id_);
  std::memset(e.metadata, 0, sizeof(e.metadata));
  if (!bytes.empty()) std::memcpy(e.metadata, bytes.data(), bytes.size());
  e.metadata_length = static_cast<uint32_t>(bytes.size());
  return CommitEntry(core, index_, e, core.state);
}

}  // namespace cosmos::pmem
