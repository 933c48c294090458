// Fuzzes the quote parser and verifier: parse/serialize must round-trip and
// no random quote may verify against a fixed policy.
#include <cstdint>
#include <cstdlib>

#include "sec/attestation.h"

using namespace cosmos::sec;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Ed25519KeyPair* platform = new Ed25519KeyPair(*Ed25519FromSeed(Bytes(32, 3)));
  ByteSpan in(data, size);
  auto q = ParseQuote(in);
  if (!q.ok()) return 0;
  if (SerializeQuote(*q) != Bytes(in.begin(), in.end())) std::abort();
  AttestationPolicy policy{platform->public_key, SimulatedMeasurement(kSimulatedEnclaveIdentity)};
  if (VerifyQuote(*q, policy, q->nonce, q->report_data).ok()) std::abort();
  return 0;
}
