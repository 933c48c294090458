// Sealed RPM batches: how a secure client's batch on a secure region reaches
// the node's enclave without its plaintext ever passing through host memory.
//
// The client seals a whole RPM request batch (rpm_protocol.h) end to end for
// the enclave under the session's batch key (a key of the secure handshake
// that only the client and the enclave hold), inside an RPC request of type
// kRpmSealedRequestType. The host reads only the clear header below, which
// is the AEAD's associated data: it routes the batch to the region's enclave
// state and to a thread, and hands the whole message to the enclave in one
// ecall. The enclave opens it, checks the header against the authenticated
// region identity, executes every op and seals the RPM response for the
// client. Spec: docs/semantics.md "Sealed batches". Little-endian.
//
// Request:  u32 magic "CMSB", u16 version, u16 flags, u64 region handle,
//           u64 seq, u8 name_len, u8[3] 0, name, [u64 epoch: only with
//           kSealedFlagEpoch], ciphertext, u8[16] tag (associated data:
//           everything before the ciphertext).
// Response: u32 magic "CMSR", u16 version, u16 flags, u64 request seq,
//           u64 response seq, then either ciphertext and u8[16] tag
//           (associated data: the 24-byte header), or, with
//           kSealedResponseHostError, a plain RPM response holding one error
//           that the host (not the enclave) reports: the batch did not run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "cosmos/result.h"
#include "cosmos/status.h"

namespace cosmos::protocol {

// RPC request type of a sealed batch (registered by the server).
inline constexpr uint16_t kRpmSealedRequestType = 0x0401;

inline constexpr uint32_t kSealedRequestMagic = 0x42534d43;   // "CMSB"
inline constexpr uint32_t kSealedResponseMagic = 0x52534d43;  // "CMSR"
inline constexpr uint16_t kSealedVersion = 1;
inline constexpr size_t kSealedTagSize = 16;
inline constexpr size_t kSealedRequestFixedSize = 28;  // up to and including the 3 zero bytes
inline constexpr size_t kSealedResponseHeaderSize = 24;

// Request flag: every op of the batch is a READ (the host may run it on a
// worker thread: it never waits for the trusted counter). The enclave
// refuses a batch with this flag that holds any other op.
inline constexpr uint16_t kSealedFlagReadOnly = 1;
// Request flag: the header carries the epoch of a replicated region (the
// host checks it, as the EPOCH op of a plain batch: docs/cluster.md); the
// client authenticates it with the rest of the header.
inline constexpr uint16_t kSealedFlagEpoch = 2;
// Response flag: the host could not hand the batch to the enclave (unknown
// or plain region, node shutting down, enclave refused the message); the
// body is a plain RPM response with one error result.
inline constexpr uint16_t kSealedResponseHostError = 1;

struct SealedRequestHeader {
  uint16_t flags = 0;
  uint64_t handle = 0;    // the node's region handle (routing only)
  uint64_t seq = 0;       // the client's batch sequence number (nonce, replay window)
  std::string_view name;  // the region's name as the client opened it
  uint64_t epoch = 0;     // with kSealedFlagEpoch only
};

// A parsed sealed request; spans point into the parsed buffer.
struct SealedRequestView {
  SealedRequestHeader header;
  std::span<const std::byte> associated_data;  // the clear header
  std::span<const std::byte> ciphertext;
  std::span<const std::byte> tag;
};

// Encodes the clear header (the associated data) of a sealed request.
// REQUIRES: name.size() <= kMaxNameLength (rpm_protocol.h).
std::vector<std::byte> EncodeSealedRequestHeader(const SealedRequestHeader& header);

// Parses an untrusted sealed request (lengths only; authenticity is the
// enclave's check). Corruption (bad magic, truncated, bad name length,
// nonzero reserved bytes, unknown flags, epoch 0 with kSealedFlagEpoch),
// FailedPrecondition (version).
Result<SealedRequestView> ParseSealedRequest(std::span<const std::byte> bytes);

struct SealedResponseHeader {
  uint16_t flags = 0;
  uint64_t request_seq = 0;
  uint64_t response_seq = 0;
};

struct SealedResponseView {
  SealedResponseHeader header;
  std::span<const std::byte> associated_data;  // the 24-byte header
  // With kSealedResponseHostError: the plain RPM response; else ciphertext.
  std::span<const std::byte> body;
  std::span<const std::byte> tag;  // empty with kSealedResponseHostError
};

void EncodeSealedResponseHeader(const SealedResponseHeader& header,
                                std::span<std::byte, kSealedResponseHeaderSize> out);

// A host-error response: the header (request seq, flags = host error) and a
// plain RPM response with `status` as its one result.
std::vector<std::byte> EncodeSealedHostError(uint64_t request_seq, const Status& status);

// Parses an untrusted sealed response. Corruption (bad magic, truncated,
// unknown flags), FailedPrecondition (version).
Result<SealedResponseView> ParseSealedResponse(std::span<const std::byte> bytes);

// Replicated secure regions (docs/cluster.md "Secure replicated regions"):
// the primary's enclave seals what a batch changed for each backup's enclave
// over the attested peer channel between them (sec/peer_handshake.h); the
// primary's host forwards the message as RPC type kReplicaBatchRequestType
// and the backup's host hands it to its enclave. The hosts read only the
// clear header (associated data):
//   u32 magic "CMRB", u16 version, u16 flags (0), u64 channel id, u64 seq,
//   u64 epoch, u8 name_len, u8[3] 0, name, ciphertext, u8[16] tag.
// The plaintext is an RPM request (rpm_protocol.h) of WRITE and FLUSH ops
// with handle 0: the primary's effects in its order (an atomic as the write
// of its outcome). The response is an RPM response with one result: Ok once
// the backup's enclave applied and flushed everything.
inline constexpr uint16_t kReplicaBatchRequestType = 0x0402;
// Peer handshake over RPC: request = PeerHello, response = PeerReply
// (sec/peer_handshake.h), or an RPM response with one error.
inline constexpr uint16_t kPeerHelloRequestType = 0x0403;
inline constexpr uint32_t kReplicaBatchMagic = 0x42524d43;  // "CMRB"
inline constexpr size_t kReplicaBatchFixedSize = 36;

struct ReplicaBatchHeader {
  uint64_t channel_id = 0;  // the peer channel (the responder's id)
  uint64_t seq = 0;         // nonce and replay window of the channel
  uint64_t epoch = 0;       // the region's epoch at the primary (fencing)
  std::string_view name;    // the region
};

struct ReplicaBatchView {
  ReplicaBatchHeader header;
  std::span<const std::byte> associated_data;
  std::span<const std::byte> ciphertext;
  std::span<const std::byte> tag;
};

// REQUIRES: 1 <= name.size() <= kMaxNameLength.
std::vector<std::byte> EncodeReplicaBatchHeader(const ReplicaBatchHeader& header);
// Parses an untrusted replica batch (framing only). Corruption (magic,
// truncation, flags, reserved bytes, name length, epoch 0),
// FailedPrecondition (version).
Result<ReplicaBatchView> ParseReplicaBatch(std::span<const std::byte> bytes);

}  // namespace cosmos::protocol
