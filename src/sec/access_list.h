// Per-region access lists: read / write / admin rights per client identity
// (Ed25519 public key), serialized into a blob of at most 256 bytes that the
// protected region keeps inside its sealed, counter-protected root record.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "cosmos/result.h"
#include "sec/bytes.h"
#include "sec/crypto.h"

namespace cosmos::sec {

enum AccessRight : uint8_t {
  kRightRead = 1,
  kRightWrite = 2,
  kRightAdmin = 4,  // change the access list, rotate the region key
};

inline constexpr uint8_t kAccessListVersion = 1;
inline constexpr size_t kIdentityFingerprintSize = 16;
// 2 header bytes + 17 bytes per entry fit 14 entries into 256 bytes.
inline constexpr size_t kMaxAccessListEntries = 14;

// 128-bit fingerprint of a client identity: SHA-256(public key)[0..16).
using IdentityFingerprint = std::array<uint8_t, kIdentityFingerprintSize>;
IdentityFingerprint FingerprintOf(const Ed25519PublicKey& key);

// A value type; not synchronised.
class AccessList {
 public:
  // One stored entry: the identity's fingerprint (the list never holds the
  // public key itself) and its rights bits (1..7).
  struct Entry {
    IdentityFingerprint fingerprint;
    uint8_t rights;
  };

  // Sets the rights of `identity` (0 removes it). ResourceExhausted when a
  // new entry would exceed kMaxAccessListEntries.
  [[nodiscard]] Status Grant(const Ed25519PublicKey& identity, uint8_t rights);
  // Rights bits of `identity` (0 if absent).
  uint8_t RightsOf(const Ed25519PublicKey& identity) const;
  // Ok if `identity` holds every bit of `right`, else PermissionDenied.
  [[nodiscard]] Status Check(const Ed25519PublicKey& identity, uint8_t right) const;
  size_t size() const { return entries_.size(); }
  // The entries, sorted by fingerprint.
  const std::vector<Entry>& entries() const { return entries_; }
  // True when at least one identity holds kRightAdmin (a region whose list
  // has no admin could never change its list or key again).
  bool HasAdmin() const;

  // Blob format v1: u8 version, u8 count, count x {u8[16] fingerprint,
  // u8 rights}, sorted by fingerprint, no duplicates, rights in 1..7.
  Bytes Serialize() const;
  // Strict parser; Corruption on any deviation.
  static Result<AccessList> Parse(ByteSpan blob);

 private:
  std::vector<Entry> entries_;  // sorted by fingerprint
};

}  // namespace cosmos::sec
