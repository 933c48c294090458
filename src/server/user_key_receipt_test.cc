// A host that drops a client's user-supplied region key (so the region gets
// a key the enclave draws instead) is caught by the client: the enclave's
// receipt is missing or does not match, and the client reports
// IntegrityViolation instead of believing its key is in use. The host here
// is a SecureRegionEngine that forwards to the real one but strips the key
// (the host owns everything outside the enclave, including this code).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "cosmos/client.h"
#include "pmem/pool.h"
#include "sec/enclave_simulated.h"
#include "sec/key_files.h"
#include "server/enclave_region_engine.h"
#include "server/forwarding_engine_test_util.h"
#include "server/secure_node_test_util.h"
#include "server/server.h"

namespace cosmos::server {
namespace {

// Forwards every call to the real engine; Format and RotateKey drop the
// client's wrapped key (the receipt the server sends stays all zero). With
// `forge_receipt` it fills in a receipt of its own making (the host cannot
// compute the real one without the session's key-wrap key).
class KeyStrippingEngine final : public ForwardingSecureEngine {
 public:
  KeyStrippingEngine(SecureRegionEngine* real, bool forge_receipt)
      : ForwardingSecureEngine(real), forge_(forge_receipt) {}
  Status Format(Requester r, RegionEntry& e, UserKeyTransfer* user_key) override {
    Status s = real_->Format(r, e, nullptr);
    if (s.ok() && user_key != nullptr && forge_) user_key->receipt.fill(std::byte{0x42});
    return s;
  }
  Result<uint32_t> RotateKey(Requester r, RegionEntry& e, UserKeyTransfer* user_key) override {
    auto epoch = real_->RotateKey(r, e, nullptr);
    if (epoch.ok() && user_key != nullptr && forge_) user_key->receipt.fill(std::byte{0x42});
    return epoch;
  }

 private:
  bool forge_;
};

class UserKeyReceiptTest : public ::testing::TestWithParam<bool> {};

TEST_P(UserKeyReceiptTest, ClientCatchesAHostThatDropsItsKey) {
  const bool forge = GetParam();
  InProcessSecureNode node([forge](SecureRegionEngine* real) {
    return std::make_unique<KeyStrippingEngine>(real, /*forge_receipt=*/forge);
  });
  ASSERT_TRUE(node.ok());
  ClientOptions co = node.SecureClientOptions();
  auto c = Client::Connect(co);
  ASSERT_TRUE(c.ok()) << c.status();
  UserKey key;
  key.bytes.fill(0x61);
  // The receipt the host answers (all zero, or forged) does not match what the
  // client computes: it refuses to believe its key is in use.
  const StatusCode expect = StatusCode::kIntegrityViolation;
  EXPECT_EQ((*c)->CreateRegion("k", 8192, {.secure = true, .user_key = &key}).status().code(),
            expect);
  // A region created without a user key, then rotated "to" one.
  ASSERT_TRUE((*c)->CreateRegion("r", 8192, {.secure = true}).ok());
  EXPECT_EQ((*c)->RotateKeyToUserKey("r", key).status().code(), expect);
}

INSTANTIATE_TEST_SUITE_P(ReceiptStrippedOrForged, UserKeyReceiptTest, ::testing::Bool());

}  // namespace
}  // namespace cosmos::server
