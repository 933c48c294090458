// Fuzzes the handshake parsers and the server's handling of a ClientHello and
// the client's handling of a ServerHello, and both ends of the peer
// (enclave-to-enclave) handshake: no input may crash or be accepted
// unless it is authentic.
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "sec/handshake.h"
#include "sec/peer_handshake.h"

using namespace cosmos::sec;

namespace {
struct State {
  Ed25519KeyPair platform = std::move(*Ed25519FromSeed(Bytes(32, 7)));
  Ed25519KeyPair client = std::move(*Ed25519FromSeed(Bytes(32, 8)));
  AttestationPolicy policy{platform.public_key, SimulatedMeasurement(kSimulatedEnclaveIdentity)};
};
State& S() {
  static State* s = new State();
  return *s;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteSpan in(data, size);
  auto ch = ParseClientHello(in);
  if (ch.ok() && SerializeClientHello(*ch) != Bytes(in.begin(), in.end())) std::abort();
  auto sh = ParseServerHello(in);
  if (sh.ok() && SerializeServerHello(*sh) != Bytes(in.begin(), in.end())) std::abort();
  // Server side: only an authentic hello (e.g. a corpus seed) is accepted,
  // and then its reply parses.
  auto accepted = AcceptClientHello(in, S().platform, S().policy.expected_measurement,
                                    [](const Ed25519PublicKey&) { return true; });
  if (accepted.ok() && !ParseServerHello(accepted->server_hello).ok()) std::abort();
  if (!accepted.ok() && accepted.status().code() != cosmos::StatusCode::kIntegrityViolation) {
    std::abort();
  }
  // Client side: no server hello answers a handshake started just now (its
  // nonce is fresh), so nothing is accepted.
  auto hs = ClientHandshake::Start(S().client, S().policy);
  if (!hs.ok()) std::abort();
  if ((*hs)->Finish(in).ok()) std::abort();
  // Peer handshake (enclave to enclave): a hello is accepted only when its
  // quote is authentic (the fuzzer cannot sign with the platform key), and
  // no reply finishes an attempt started just now.
  auto peer = AcceptPeerHello(in, S().platform, S().policy.expected_measurement, S().policy);
  if (peer.ok() && peer->reply.size() != kPeerReplySize) std::abort();
  if (!peer.ok() && peer.status().code() != cosmos::StatusCode::kIntegrityViolation) std::abort();
  auto init = PeerInitiator::Start(S().platform, S().policy.expected_measurement, S().policy);
  if (!init.ok()) std::abort();
  uint64_t id = 0;
  if ((*init)->Finish(in, &id).ok()) std::abort();
  return 0;
}
