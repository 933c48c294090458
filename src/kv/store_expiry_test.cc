// Recovery of expiry changes: a put record whose own expiry has passed at
// recovery time may have been made persistent (PERSIST) or given a later
// expiry (EXPIRE) by a later record; recovery must honour the last record.
#include <gtest/gtest.h>

#include <atomic>

#include "kv/log_device_memory.h"
#include "kv/store.h"

namespace cosmos::kv {
namespace {

struct Clocked {
  std::atomic<int64_t> now{10'000};
  StoreOptions Options() {
    StoreOptions o;
    o.background_compaction = false;
    o.now_ms = [this] { return now.load(); };
    return o;
  }
};

void ApplySync(Store* s, const WriteBatch& b) {
  auto seq = s->Apply(b);
  ASSERT_TRUE(seq.ok()) << seq.status();
  ASSERT_TRUE(s->WaitDurable(*seq).ok());
}

TEST(StoreExpiry, PersistAfterPutWithTtlSurvivesRestartPastTheOldExpiry) {
  MemoryLogDevice dev(1 << 20);
  Clocked clock;
  {
    auto s = Store::Open(&dev, clock.Options());
    ASSERT_TRUE(s.ok());
    WriteBatch put;
    put.Put("k", "v", 11'000);  // SET k v PX 1000
    ApplySync(s->get(), put);
    WriteBatch persist;
    persist.Expire("k", 0);  // PERSIST k
    ApplySync(s->get(), persist);
  }
  clock.now = 20'000;  // past the put record's own expiry
  auto s = Store::Open(&dev, clock.Options());
  ASSERT_TRUE(s.ok());
  std::string v;
  EXPECT_TRUE(*(*s)->Get("k", &v)) << "a persisted key was lost by recovery";
}

TEST(StoreExpiry, LaterExpireExtendsAPutsTtlAcrossRestart) {
  MemoryLogDevice dev(1 << 20);
  Clocked clock;
  {
    auto s = Store::Open(&dev, clock.Options());
    ASSERT_TRUE(s.ok());
    WriteBatch put;
    put.Put("k", "v", 11'000);
    ApplySync(s->get(), put);
    WriteBatch extend;
    extend.Expire("k", 50'000);
    ApplySync(s->get(), extend);
  }
  clock.now = 20'000;
  {
    auto s = Store::Open(&dev, clock.Options());
    ASSERT_TRUE(s.ok());
    auto info = (*s)->Lookup("k");
    ASSERT_TRUE(info.ok() && info->has_value());
    EXPECT_EQ((*info)->expiry_ms, 50'000);
  }
  clock.now = 60'000;
  auto s = Store::Open(&dev, clock.Options());
  ASSERT_TRUE(s.ok());
  std::string v;
  EXPECT_FALSE(*(*s)->Get("k", &v));
  EXPECT_EQ((*s)->KeyCount(), 0u) << "expired keys are dropped at recovery";
}

}  // namespace
}  // namespace cosmos::kv
