// AccessList: rights per client identity and its compact blob format.
#include "sec/access_list.h"

#include <algorithm>
#include <cstring>

namespace cosmos::sec {

IdentityFingerprint FingerprintOf(const Ed25519PublicKey& key) {
  Digest d = Sha256(key);
  IdentityFingerprint f;
  std::memcpy(f.data(), d.data(), f.size());
  return f;
}

Status AccessList::Grant(const Ed25519PublicKey& identity, uint8_t rights) {
  if (rights > 7) return Status::InvalidArgument("unknown access right bits");
  const IdentityFingerprint f = FingerprintOf(identity);
  auto it = std::lower_bound(
      entries_.begin(), entries_.end(), f,
      [](const Entry& e, const IdentityFingerprint& x) { return e.fingerprint < x; });
  const bool present = it != entries_.end() && it->fingerprint == f;
  if (rights == 0) {
    if (present) entries_.erase(it);
    return Status::Ok();
  }
  if (present) {
    it->rights = rights;
    return Status::Ok();
  }
  if (entries_.size() >= kMaxAccessListEntries) {
    return Status::ResourceExhausted("access list full (14 identities fit in 256 bytes)");
  }
  entries_.insert(it, Entry{f, rights});
  return Status::Ok();
}

uint8_t AccessList::RightsOf(const Ed25519PublicKey& identity) const {
  const IdentityFingerprint f = FingerprintOf(identity);
  for (const Entry& e : entries_) {
    if (e.fingerprint == f) return e.rights;
  }
  return 0;
}

bool AccessList::HasAdmin() const {
  return std::any_of(entries_.begin(), entries_.end(),
                     [](const Entry& e) { return (e.rights & kRightAdmin) != 0; });
}

Status AccessList::Check(const Ed25519PublicKey& identity, uint8_t right) const {
  if ((RightsOf(identity) & right) != right) {
    return Status::PermissionDenied("client lacks the required right on this region");
  }
  return Status::Ok();
}

Bytes AccessList::Serialize() const {
  Bytes out;
  ByteWriter w(&out);
  w.U8(kAccessListVersion);
  w.U8(static_cast<uint8_t>(entries_.size()));
  for (const Entry& e : entries_) {
    w.Raw(e.fingerprint);
    w.U8(e.rights);
  }
  return out;
}

Result<AccessList> AccessList::Parse(ByteSpan blob) {
  ByteReader r(blob);
  const uint8_t version = r.U8();
  const uint8_t count = r.U8();
  if (!r.ok() || version != kAccessListVersion || count > kMaxAccessListEntries) {
    return Status::Corruption("access list: bad header");
  }
  AccessList list;
  for (uint8_t i = 0; i < count; ++i) {
    Entry e;
    r.Raw(e.fingerprint);
    e.rights = r.U8();
    if (!r.ok() || e.rights == 0 || e.rights > 7) {
      return Status::Corruption("access list: bad entry");
    }
    if (!list.entries_.empty() && !(list.entries_.back().fingerprint < e.fingerprint)) {
      return Status::Corruption("access list: entries not strictly sorted");
    }
    list.entries_.push_back(e);
  }
  if (!r.AtEndOk()) return Status::Corruption("access list: trailing bytes");
  return list;
}

}  // namespace cosmos::sec
