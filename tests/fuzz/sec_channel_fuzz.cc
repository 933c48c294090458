// Fuzzes SecureChannel::Open with attacker-chosen sequence numbers, headers,
// payloads and tags: nothing forged may authenticate, nothing may crash.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "sec/secure_channel.h"

using namespace cosmos::sec;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8 + 16 + 1) return 0;
  SessionKeys keys;
  keys.client_to_server.bytes.fill(1);
  keys.server_to_client.bytes.fill(2);
  keys.verify.bytes.fill(3);
  ChannelOptions o;
  o.rekey_interval = 1 + data[0] % 8;
  auto server = SecureChannel::Create(ChannelRole::kServer, 9, keys, o);
  if (!server.ok()) std::abort();
  uint64_t seq;
  std::memcpy(&seq, data + 1, 8);
  ByteSpan tag(data + 9, 16);
  const size_t header_len = std::min<size_t>(data[0] >> 3, size - 25);
  ByteSpan header(data + 25, header_len);
  Bytes payload(data + 25 + header_len, data + size);
  if ((*server)->Open(seq, header, payload, tag).ok()) std::abort();
  // An authentic packet still opens after the forged attempt.
  auto client = SecureChannel::Create(ChannelRole::kClient, 9, keys, o);
  Bytes p(payload.size(), 0x41), t(16);
  const bool far = seq / o.rekey_interval > SecureChannel::kMaxEpochSkip;
  const bool sealed = (*client)->Seal(seq, header, p, t).ok();
  if (sealed == far) std::abort();  // only far jumps are refused
  if (sealed && !(*server)->Open(seq, header, p, t).ok()) std::abort();
  return 0;
}
