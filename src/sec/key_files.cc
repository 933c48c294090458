// Key file format v1 and the `cosmos keys` library functions.
#include "sec/key_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace cosmos::sec {
namespace {

constexpr std::string_view kHeader = "cosmos-key v1\n";

bool IsPrivate(KeyKind k) {
  return k == KeyKind::kPlatformPrivate || k == KeyKind::kSealingSecret ||
         k == KeyKind::kClientPrivate || k == KeyKind::kRegionKey;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

std::string_view KeyKindName(KeyKind kind) {
  switch (kind) {
    case KeyKind::kPlatformPrivate:
      return "platform-private";
    case KeyKind::kPlatformPublic:
      return "platform-public";
    case KeyKind::kSealingSecret:
      return "sealing-secret";
    case KeyKind::kClientPrivate:
      return "client-private";
    case KeyKind::kClientPublic:
      return "client-public";
    case KeyKind::kMeasurement:
      return "measurement";
    case KeyKind::kRegionKey:
      return "region-key";
  }
  return "unknown";
}

std::string FormatKeyFile(KeyKind kind, ByteSpan key) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out(kHeader);
  out += "kind: ";
  out += KeyKindName(kind);
  out += "\nkey: ";
  for (uint8_t b : key) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  out += "\n";
  return out;
}

Result<Bytes> ParseKeyFile(std::string_view text, KeyKind expected) {
  if (text.substr(0, kHeader.size()) != kHeader) {
    return Status::Corruption("key file: missing 'cosmos-key v1' header");
  }
  text.remove_prefix(kHeader.size());
  const std::string kind_line = "kind: " + std::string(KeyKindName(expected)) + "\n";
  if (text.substr(0, kind_line.size()) != kind_line) {
    return Status::Corruption("key file: not a " + std::string(KeyKindName(expected)) + " key");
  }
  text.remove_prefix(kind_line.size());
  constexpr std::string_view kKey = "key: ";
  if (text.substr(0, kKey.size()) != kKey) return Status::Corruption("key file: missing key");
  text.remove_prefix(kKey.size());
  if (text.size() != 64 + 1 || text.back() != '\n') {
    return Status::Corruption("key file: key must be 64 hex digits and a newline");
  }
  Bytes key(32);
  for (size_t i = 0; i < 32; ++i) {
    const int hi = HexValue(text[2 * i]), lo = HexValue(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return Status::Corruption("key file: bad hex digit");
    key[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return key;
}

Status WriteKeyFile(const std::string& path, KeyKind kind, ByteSpan key, bool overwrite) {
  std::error_code ec;
  if (!overwrite && std::filesystem::exists(path, ec)) {
    return Status::AlreadyExists(path + " exists (not replaced)");
  }
  std::string text = FormatKeyFile(kind, key);
  const std::string tmp = path + ".tmp";
  int fd =
      ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, IsPrivate(kind) ? 0600 : 0644);
  if (fd < 0) return Status::FromErrno(errno, "create " + tmp);
  ssize_t n = ::write(fd, text.data(), text.size());
  const int werr = errno;
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  SecureWipe(MutableByteSpan(reinterpret_cast<uint8_t*>(text.data()), text.size()));
  if (n != static_cast<ssize_t>(text.size())) return Status::FromErrno(werr, "write " + tmp);
  if (!synced) return Status::FromErrno(errno, "fsync " + tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Status::FromErrno(errno, "rename " + tmp);
  return Status::Ok();
}

Result<Bytes> ReadKeyFile(const std::string& path, KeyKind expected) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot open key file " + path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.size() > 4096) return Status::Corruption("key file " + path + " too large");
  auto key = ParseKeyFile(text, expected);
  SecureWipe(MutableByteSpan(reinterpret_cast<uint8_t*>(text.data()), text.size()));
  if (!key.ok()) return key.status().WithContext(path);
  return key;
}

Status GeneratePlatformKeys(const std::string& dir, bool overwrite, std::string_view identity) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IoError("create " + dir + ": " + ec.message());
  for (const char* f : {"platform.key", "platform.pub", "sealing.secret", "measurement"}) {
    if (!overwrite && std::filesystem::exists(dir + "/" + f, ec)) {
      return Status::AlreadyExists(dir + "/" + f + " exists");
    }
  }
  COSMOS_ASSIGN_OR_RETURN(Ed25519KeyPair kp, GenerateEd25519());
  SecretArray<32> secret;
  COSMOS_RETURN_IF_ERROR(RandomBytes(secret.mutable_span()));
  COSMOS_RETURN_IF_ERROR(
      WriteKeyFile(dir + "/platform.key", KeyKind::kPlatformPrivate, kp.seed.span(), overwrite));
  COSMOS_RETURN_IF_ERROR(
      WriteKeyFile(dir + "/platform.pub", KeyKind::kPlatformPublic, kp.public_key, overwrite));
  COSMOS_RETURN_IF_ERROR(
      WriteKeyFile(dir + "/sealing.secret", KeyKind::kSealingSecret, secret.span(), overwrite));
  return WriteKeyFile(dir + "/measurement", KeyKind::kMeasurement, SimulatedMeasurement(identity),
                      overwrite);
}

Status GenerateClientCredentials(const std::string& dir, const std::string& name, bool overwrite) {
  if (name.empty() || name.find('/') != std::string::npos) {
    return Status::InvalidArgument("client name must be a plain file name");
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IoError("create " + dir + ": " + ec.message());
  COSMOS_ASSIGN_OR_RETURN(Ed25519KeyPair kp, GenerateEd25519());
  COSMOS_RETURN_IF_ERROR(
      WriteKeyFile(dir + "/" + name + ".key", KeyKind::kClientPrivate, kp.seed.span(), overwrite));
  return WriteKeyFile(dir + "/" + name + ".pub", KeyKind::kClientPublic, kp.public_key, overwrite);
}

Status GenerateRegionKey(const std::string& path, bool overwrite) {
  SecretArray<32> key;
  COSMOS_RETURN_IF_ERROR(RandomBytes(key.mutable_span()));
  return WriteKeyFile(path, KeyKind::kRegionKey, key.span(), overwrite);
}

Result<Ed25519KeyPair> LoadSigningKey(const std::string& path, KeyKind kind) {
  COSMOS_ASSIGN_OR_RETURN(Bytes seed, ReadKeyFile(path, kind));
  auto kp = Ed25519FromSeed(seed);
  SecureWipe(seed);
  return kp;
}

Result<Ed25519PublicKey> LoadPublicKey(const std::string& path, KeyKind kind) {
  COSMOS_ASSIGN_OR_RETURN(Bytes b, ReadKeyFile(path, kind));
  Ed25519PublicKey k;
  std::memcpy(k.data(), b.data(), k.size());
  return k;
}

Result<std::vector<Ed25519PublicKey>> ParsePublicKeyList(std::string_view text, KeyKind kind) {
  // Every v1 key file of one kind has the same length.
  const size_t one = kHeader.size() + std::string_view("kind: ").size() + KeyKindName(kind).size() +
                     1 + std::string_view("key: ").size() + 64 + 1;
  if (text.empty() || text.size() % one != 0) {
    return Status::Corruption("key list: not a concatenation of " + std::string(KeyKindName(kind)) +
                              " key files");
  }
  if (text.size() / one > kMaxKeyListEntries) {
    return Status::Corruption("key list: more than " + std::to_string(kMaxKeyListEntries) +
                              " keys");
  }
  std::vector<Ed25519PublicKey> keys;
  for (size_t at = 0; at < text.size(); at += one) {
    auto key = ParseKeyFile(text.substr(at, one), kind);
    if (!key.ok()) {
      return key.status().WithContext("key list entry " + std::to_string(keys.size() + 1));
    }
    Ed25519PublicKey k;
    std::memcpy(k.data(), key->data(), k.size());
    for (const auto& seen : keys) {
      if (seen == k) return Status::Corruption("key list: a key is listed twice");
    }
    keys.push_back(k);
  }
  return keys;
}

Result<std::vector<Ed25519PublicKey>> LoadPublicKeyList(const std::string& path, KeyKind kind) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot open key file " + path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.size() > kMaxKeyListEntries * 256) {
    return Status::Corruption("key file " + path + " too large");
  }
  auto keys = ParsePublicKeyList(text, kind);
  if (!keys.ok()) return keys.status().WithContext(path);
  return keys;
}

Result<AttestationPolicy> LoadAttestationPolicy(const std::string& platform_public_path,
                                                const std::string& measurement_path) {
  AttestationPolicy p;
  COSMOS_ASSIGN_OR_RETURN(std::vector<Ed25519PublicKey> keys,
                          LoadPublicKeyList(platform_public_path, KeyKind::kPlatformPublic));
  p.platform_public_key = keys.front();
  p.more_platform_keys.assign(keys.begin() + 1, keys.end());
  COSMOS_ASSIGN_OR_RETURN(Bytes m, ReadKeyFile(measurement_path, KeyKind::kMeasurement));
  std::memcpy(p.expected_measurement.data(), m.data(), m.size());
  return p;
}

}  // namespace cosmos::sec
