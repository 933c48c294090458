// RemoteLog: append with write + flush + write_after_flush; recovery by
// scanning and validating the records before the durable tail.
#include "remote_log.h"

#include <cstring>

#include "common/checksum.h"
#include "common/endian.h"

namespace remote_log {

using cosmos::Result;
using cosmos::Status;

uint64_t RecordChecksum(uint64_t sequence, std::span<const std::byte> payload) {
  cosmos::Checksum64Builder b(0x524c4f47);
  b.Update(&sequence, sizeof(sequence));
  b.Update(payload.data(), payload.size());
  return b.Finish();
}

namespace {
uint64_t Padded(uint64_t n) { return (n + 7) & ~uint64_t{7}; }
}  // namespace

Result<std::unique_ptr<RemoteLog>> RemoteLog::Open(cosmos::Region* region) {
  if (region->info().size < kDataStart + kRecordHeader) {
    return Status::InvalidArgument("region too small for a log");
  }
  std::unique_ptr<RemoteLog> log(new RemoteLog(region));
  COSMOS_RETURN_IF_ERROR(log->Recover());
  return log;
}

Status RemoteLog::Recover() {
  COSMOS_ASSIGN_OR_RETURN(auto records, ReadAll());
  next_sequence_ = records.empty() ? 1 : records.back().sequence + 1;
  return Status::Ok();
}

Result<std::vector<Record>> RemoteLog::ReadAll() {
  std::byte word[8];
  COSMOS_RETURN_IF_ERROR(region_->Read(0, word));
  uint64_t tail = cosmos::LoadLE<uint64_t>(word);
  if (tail == 0) tail = kDataStart;
  if (tail < kDataStart || tail > region_->info().size) {
    return Status::Corruption("remote log: tail " + std::to_string(tail) + " outside the region");
  }
  std::vector<std::byte> body(tail - kDataStart);
  if (!body.empty()) COSMOS_RETURN_IF_ERROR(region_->Read(kDataStart, body));
  std::vector<Record> out;
  uint64_t pos = 0;
  uint64_t expect_seq = 0;
  while (pos < body.size()) {
    if (body.size() - pos < kRecordHeader)
      return Status::Corruption("remote log: truncated record header");
    const std::byte* h = body.data() + pos;
    uint32_t magic = cosmos::LoadLE<uint32_t>(h);
    uint64_t len = cosmos::LoadLE<uint32_t>(h + 4);
    uint64_t seq = cosmos::LoadLE<uint64_t>(h + 8);
    uint64_t sum = cosmos::LoadLE<uint64_t>(h + 16);
    if (magic != kRecordMagic || body.size() - pos - kRecordHeader < len) {
      return Status::Corruption("remote log: bad record at offset " +
                                std::to_string(kDataStart + pos));
    }
    std::span<const std::byte> payload(h + kRecordHeader, len);
    if (RecordChecksum(seq, payload) != sum || (expect_seq != 0 && seq != expect_seq)) {
      return Status::Corruption("remote log: record " + std::to_string(seq) +
                                " fails its checksum");
    }
    out.push_back(Record{seq, std::vector<std::byte>(payload.begin(), payload.end())});
    expect_seq = seq + 1;
    pos += Padded(kRecordHeader + len);
  }
  tail_ = tail;
  return out;
}

Result<uint64_t> RemoteLog::Append(std::span<const std::byte> payload) {
  uint64_t total = Padded(kRecordHeader + payload.size());
  if (payload.size() > UINT32_MAX || total > region_->info().size - tail_) {
    return Status::ResourceExhausted("remote log: region full");
  }
  std::vector<std::byte> rec(total);
  uint64_t seq = next_sequence_;
  cosmos::StoreLE<uint32_t>(rec.data(), kRecordMagic);
  cosmos::StoreLE<uint32_t>(rec.data() + 4, static_cast<uint32_t>(payload.size()));
  cosmos::StoreLE<uint64_t>(rec.data() + 8, seq);
  cosmos::StoreLE<uint64_t>(rec.data() + 16, RecordChecksum(seq, payload));
  if (!payload.empty()) std::memcpy(rec.data() + kRecordHeader, payload.data(), payload.size());
  // The talk's pattern: posted write, flush, then the non-posted tail update
  // that the node executes only after the flush is durable. All three leave
  // in one batch (one round trip).
  COSMOS_RETURN_IF_ERROR(region_->Write(tail_, rec));
  cosmos::Range r{tail_, total};
  COSMOS_RETURN_IF_ERROR(region_->AsyncFlush(std::span<const cosmos::Range>(&r, 1)));
  COSMOS_RETURN_IF_ERROR(region_->WriteAfterFlush(0, tail_ + total));
  tail_ += total;
  next_sequence_ = seq + 1;
  return seq;
}

}  // namespace remote_log
