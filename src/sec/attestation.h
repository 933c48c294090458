// Attestation: the quote a node's enclave produces (measurement, a fresh
// X25519 key-exchange key, the client's nonce and report data, signed by the
// platform Ed25519 key) and its verification on the client. Format:
// docs/security.md ("Quote").
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "cosmos/result.h"
#include "sec/bytes.h"
#include "sec/crypto.h"

namespace cosmos::sec {

inline constexpr uint32_t kQuoteMagic = 0x54515343;  // "CSQT"
inline constexpr uint16_t kQuoteVersion = 1;
inline constexpr size_t kQuoteSize = 208;
inline constexpr size_t kNonceSize = 32;

// Identity string the simulated enclave measures (bump on any change to the
// trusted code so clients pinning the old measurement refuse the new build).
inline constexpr std::string_view kSimulatedEnclaveIdentity = "cosmos-sec-enclave/1/simulated";

// Measurement of the simulated enclave: SHA-256("cosmos-measurement-v1" ||
// identity). A stand-in for MRENCLAVE: it names the code version, it does not
// hash the code that actually runs.
Digest SimulatedMeasurement(std::string_view identity);

// First 8 bytes of SHA-256(platform public key): names the signing key.
std::array<uint8_t, 8> PlatformKeyId(const Ed25519PublicKey& key);

struct Quote {
  Digest measurement{};
  X25519PublicKey kex_public{};
  std::array<uint8_t, kNonceSize> nonce{};
  Digest report_data{};  // binds the quote to its context (e.g. the handshake)
  std::array<uint8_t, 8> platform_key_id{};
  Ed25519Signature signature{};
};

// Serializes to exactly kQuoteSize bytes.
Bytes SerializeQuote(const Quote& q);
// Strict parser: exact size, magic, version, zero reserved field.
// Corruption otherwise. Does not verify the signature.
Result<Quote> ParseQuote(ByteSpan bytes);
// Fills platform_key_id and signature with the platform key.
[[nodiscard]] Status SignQuote(const Ed25519KeyPair& platform_key, Quote* q);

// What a client trusts: the platform public key(s) and the expected
// measurement (configured out of band, e.g. from `cosmos keys`). A cluster
// has one platform key per node: `more_platform_keys` lists the others (a
// quote signed by any of them is accepted; the key id in the quote picks it).
struct AttestationPolicy {
  Ed25519PublicKey platform_public_key{};
  Digest expected_measurement{};
  std::vector<Ed25519PublicKey> more_platform_keys;
};

// Checks key id (against every trusted platform key), signature,
// measurement, nonce and report data. IntegrityViolation naming the first
// mismatch.
[[nodiscard]] Status VerifyQuote(const Quote& q, const AttestationPolicy& policy,
                                 ByteSpan expected_nonce, ByteSpan expected_report_data);

}  // namespace cosmos::sec
