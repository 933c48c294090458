// User-supplied region keys: wrap, unwrap, receipt, per-epoch derivation.
#include "sec/user_key.h"

#include <cstring>
#include <string>

#include "common/endian.h"

namespace cosmos::sec {
namespace {

constexpr std::string_view kWrapLabel = "cosmos user key wrap v1";
constexpr std::string_view kReceiptLabel = "cosmos user key receipt v1";
constexpr std::string_view kDeriveLabel = "cosmos user region key v1";

// label | use | u8 name length | name.
Bytes AssociatedData(std::string_view label, UserKeyUse use, std::string_view name) {
  Bytes aad(label.begin(), label.end());
  aad.push_back(static_cast<uint8_t>(use));
  aad.push_back(static_cast<uint8_t>(name.size() > 255 ? 255 : name.size()));
  aad.insert(aad.end(), name.begin(), name.end());
  return aad;
}

}  // namespace

Result<Bytes> WrapUserKey(ByteSpan wrap_key, UserKeyUse use, std::string_view region_name,
                          ByteSpan material) {
  if (material.size() != kUserKeySize) {
    return Status::InvalidArgument("a user region key is " + std::to_string(kUserKeySize) +
                                   " bytes, not " + std::to_string(material.size()));
  }
  COSMOS_ASSIGN_OR_RETURN(auto gcm, AesGcm::Create(wrap_key));
  Bytes out(kWrappedUserKeySize, 0);
  out[0] = kWrappedUserKeyVersion;
  MutableByteSpan nonce(out.data() + 1, kGcmNonceSize);
  COSMOS_RETURN_IF_ERROR(RandomBytes(nonce));
  const Bytes aad = AssociatedData(kWrapLabel, use, region_name);
  COSMOS_RETURN_IF_ERROR(
      gcm->Seal(nonce, aad, material, MutableByteSpan(out.data() + 1 + kGcmNonceSize, kUserKeySize),
                MutableByteSpan(out.data() + 1 + kGcmNonceSize + kUserKeySize, kGcmTagSize)));
  return out;
}

Result<SecretArray<kUserKeySize>> UnwrapUserKey(ByteSpan wrap_key, UserKeyUse use,
                                                std::string_view region_name, ByteSpan wrapped) {
  if (wrapped.size() != kWrappedUserKeySize) {
    return Status::InvalidArgument("wrapped user key must be " +
                                   std::to_string(kWrappedUserKeySize) + " bytes");
  }
  if (wrapped[0] != kWrappedUserKeyVersion) {
    return Status::InvalidArgument("wrapped user key: unknown version " +
                                   std::to_string(wrapped[0]));
  }
  COSMOS_ASSIGN_OR_RETURN(auto gcm, AesGcm::Create(wrap_key));
  SecretArray<kUserKeySize> material;
  const Bytes aad = AssociatedData(kWrapLabel, use, region_name);
  Status s = gcm->Open(
      wrapped.subspan(1, kGcmNonceSize), aad, wrapped.subspan(1 + kGcmNonceSize, kUserKeySize),
      wrapped.subspan(1 + kGcmNonceSize + kUserKeySize, kGcmTagSize), material.mutable_span());
  if (!s.ok()) {
    return Status::IntegrityViolation(
        "wrapped user key does not open under this session for this region and use");
  }
  return material;
}

Digest UserKeyReceipt(ByteSpan wrap_key, UserKeyUse use, std::string_view region_name,
                      uint32_t key_epoch, ByteSpan material) {
  HmacSha256Hasher mac(wrap_key);
  mac.Update(AssociatedData(kReceiptLabel, use, region_name));
  uint8_t epoch[4];
  StoreLE<uint32_t>(epoch, key_epoch);
  mac.Update(ByteSpan(epoch, 4));
  mac.Update(Sha256(material));
  return mac.Final();
}

Status DeriveRegionKeyFromUserKey(ByteSpan material, ByteSpan salt, std::string_view binding_key,
                                  uint32_t epoch, MutableByteSpan out) {
  if (material.size() != kUserKeySize || salt.size() != 32 || out.size() != 32) {
    return Status::InvalidArgument("user key derivation: wrong sizes");
  }
  Bytes info(kDeriveLabel.begin(), kDeriveLabel.end());
  info.insert(info.end(), binding_key.begin(), binding_key.end());
  uint8_t e[4];
  StoreLE<uint32_t>(e, epoch);
  info.insert(info.end(), e, e + 4);
  return HkdfSha256(material, salt, info, out);
}

}  // namespace cosmos::sec
