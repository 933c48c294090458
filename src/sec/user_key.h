// Region keys the user supplies ("user data with user key", the talk): 32
// bytes of key material a client hands to the node's enclave for a new secure
// region or a key rotation, instead of letting the enclave draw one.
//
// The material travels wrapped (AES-256-GCM) under the secure session's
// key-wrap key, which only the client and the enclave derive from their
// handshake (handshake.h), bound to its use and the region's name: neither
// the network nor the host that relays the request (and today sees decrypted
// request payloads, docs/threat_model.md) learns it or can move it to
// another region or operation. The enclave answers with a receipt, a MAC
// under the same key, that the client checks: a host that drops the wrapped
// key (so the region silently gets an enclave-drawn key) is caught.
//
// The enclave never uses the material as a block key directly: each key
// epoch's key is HKDF(material, fresh random salt, region binding, epoch),
// so the same material given for two regions or two rotations still yields
// distinct keys and no (key, nonce) pair repeats across regions.
//
// What it is and is not (docs/security.md "User keys"): the enclave keeps the
// derived key sealed like an enclave-drawn one (bring-your-own-key); the node
// does not need the user to unlock the region after a restart, and the
// material cannot decrypt a pool outside COSMOS (the salt is sealed).
#pragma once

#include <cstdint>
#include <string_view>

#include "cosmos/result.h"
#include "sec/bytes.h"
#include "sec/crypto.h"

namespace cosmos::sec {

inline constexpr size_t kUserKeySize = 32;
inline constexpr uint8_t kWrappedUserKeyVersion = 1;
// u8 version, 12-byte nonce, 32-byte ciphertext, 16-byte tag.
inline constexpr size_t kWrappedUserKeySize = 1 + kGcmNonceSize + kUserKeySize + kGcmTagSize;
inline constexpr size_t kUserKeyReceiptSize = kSha256Size;

// What the material is handed over for (part of the wrap's and the
// receipt's authenticated data).
enum class UserKeyUse : uint8_t { kCreateRegion = 1, kRotateKey = 2 };

// Client side: wraps `material` (kUserKeySize bytes) for `use` on region
// `region_name` under the session's `wrap_key` (32 bytes), with a fresh
// random nonce. InvalidArgument for wrong sizes.
Result<Bytes> WrapUserKey(ByteSpan wrap_key, UserKeyUse use, std::string_view region_name,
                          ByteSpan material);

// Enclave side: the material in `wrapped` (untrusted bytes from the request).
// InvalidArgument for a wrong size or version; IntegrityViolation when it
// was wrapped under another session, for another use or region name, or
// modified.
Result<SecretArray<kUserKeySize>> UnwrapUserKey(ByteSpan wrap_key, UserKeyUse use,
                                                std::string_view region_name, ByteSpan wrapped);

// The receipt the enclave returns once the material is in use for
// `key_epoch`: HMAC-SHA256(wrap_key, label | use | name | epoch | SHA-256 of
// the material). The client recomputes and compares it.
Digest UserKeyReceipt(ByteSpan wrap_key, UserKeyUse use, std::string_view region_name,
                      uint32_t key_epoch, ByteSpan material);

// The key of key epoch `epoch` of the region named by `binding_key`
// (RegionBinding::Key()) from user material and a random `salt` (32 bytes,
// drawn per epoch by the caller). InvalidArgument for wrong sizes.
[[nodiscard]] Status DeriveRegionKeyFromUserKey(ByteSpan material, ByteSpan salt,
                                                std::string_view binding_key, uint32_t epoch,
                                                MutableByteSpan out);

}  // namespace cosmos::sec
