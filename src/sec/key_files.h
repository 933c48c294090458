// Key files for `cosmos keys`: the platform key pair and sealing secret of a
// memory node, client identity credentials, and the expected measurement a
// client pins. Text format v1 (docs/security.md "Key files"):
//   cosmos-key v1\nkind: <kind>\nkey: <64 lowercase hex digits>\n
// Private material is written with mode 0600.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "cosmos/result.h"
#include "sec/attestation.h"
#include "sec/bytes.h"
#include "sec/crypto.h"

namespace cosmos::sec {

enum class KeyKind {
  kPlatformPrivate,  // Ed25519 seed signing quotes (node only)
  kPlatformPublic,   // distributed to clients
  kSealingSecret,    // platform secret the sealing key is derived from (node only)
  kClientPrivate,    // Ed25519 seed of a client identity (client only)
  kClientPublic,     // goes into the node allow list and region access lists
  kMeasurement,      // expected enclave measurement (clients pin it)
  kRegionKey,        // a user-supplied region key (user_key.h; client only)
};

// The stable name used in the file ("platform-private", ...).
std::string_view KeyKindName(KeyKind kind);

// Formats a v1 key file.
std::string FormatKeyFile(KeyKind kind, ByteSpan key);
// Strictly parses a v1 key file of the expected kind. Corruption on any
// deviation (header, kind, hex, length, trailing bytes).
Result<Bytes> ParseKeyFile(std::string_view text, KeyKind expected);

// Writes a key file (0600 for private kinds, 0644 otherwise; written to a
// temporary file and renamed). AlreadyExists unless `overwrite`.
[[nodiscard]] Status WriteKeyFile(const std::string& path, KeyKind kind, ByteSpan key,
                                  bool overwrite = false);
// Reads and parses a key file. IoError / NotFound / Corruption.
Result<Bytes> ReadKeyFile(const std::string& path, KeyKind expected);

// `cosmos keys platform DIR`: creates DIR/platform.key, DIR/platform.pub,
// DIR/sealing.secret and DIR/measurement (the simulated enclave's
// measurement for `identity`). AlreadyExists unless `overwrite`.
[[nodiscard]] Status GeneratePlatformKeys(const std::string& dir, bool overwrite = false,
                                          std::string_view identity = kSimulatedEnclaveIdentity);
// `cosmos keys client DIR NAME`: creates DIR/NAME.key and DIR/NAME.pub.
[[nodiscard]] Status GenerateClientCredentials(const std::string& dir, const std::string& name,
                                               bool overwrite = false);

// `cosmos keys region-key FILE`: 32 random bytes as a region-key file (0600).
// AlreadyExists unless `overwrite`.
[[nodiscard]] Status GenerateRegionKey(const std::string& path, bool overwrite = false);

// Loads an Ed25519 key pair from a private key file of `kind`
// (kPlatformPrivate or kClientPrivate).
Result<Ed25519KeyPair> LoadSigningKey(const std::string& path, KeyKind kind);
// Loads a public key file of `kind` (kPlatformPublic or kClientPublic).
Result<Ed25519PublicKey> LoadPublicKey(const std::string& path, KeyKind kind);
// Parses a trust list: one or more v1 public key files of `kind` concatenated
// (`cat n1/platform.pub n2/platform.pub > cluster.pub`), at most
// kMaxKeyListEntries, no duplicates. Corruption on any deviation.
inline constexpr size_t kMaxKeyListEntries = 64;
Result<std::vector<Ed25519PublicKey>> ParsePublicKeyList(std::string_view text, KeyKind kind);
// Reads and parses a trust list file. IoError / NotFound / Corruption.
Result<std::vector<Ed25519PublicKey>> LoadPublicKeyList(const std::string& path, KeyKind kind);
// Loads what a client trusts: the platform public key(s) (one key file, or a
// trust list of a cluster's nodes) + the expected measurement.
Result<AttestationPolicy> LoadAttestationPolicy(const std::string& platform_public_path,
                                                const std::string& measurement_path);

}  // namespace cosmos::sec
