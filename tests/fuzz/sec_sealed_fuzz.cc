// Fuzzes sealed-blob parsing and unsealing: anything but an authentic blob
// (e.g. the corpus seed) is an integrity violation, never a crash.
#include <cstdint>
#include <cstdlib>

#include "sec/sealing.h"

using namespace cosmos::sec;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Sealer* sealer = [] {
    auto key = DeriveSealingKey(Bytes(32, 1), AsBytes("fuzz"));
    return Sealer::Create(key->span())->release();
  }();
  ByteSpan in(data, size);
  auto view = ParseSealedBlob(in);
  if (view.ok() && view->header.size() + view->ciphertext.size() + kGcmTagSize != size) {
    std::abort();
  }
  auto plain = sealer->Unseal("cosmos.fuzz", 1, {}, in);
  if (plain.ok()) {
    if (!view.ok() || plain->size() != view->ciphertext.size()) std::abort();
    return 0;
  }
  if (plain.status().code() != cosmos::StatusCode::kIntegrityViolation) std::abort();
  return 0;
}
