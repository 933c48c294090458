// Process-crash test on a real pool file: a forked child runs metadata and
// data operations in a loop and is killed with SIGKILL at pseudo-random
// moments; after every kill the parent reopens the pool and checks it. What
// the child acknowledged as persisted must be there. (SIGKILL keeps the page
// cache, so this tests interrupted metadata updates, not power loss; the
// fault-injection twin covers lost and torn writes.)
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <thread>

#include "common/checksum.h"
#include "pmem/pool.h"

namespace cosmos::pmem {
namespace {

constexpr int kKills = 30;
constexpr uint64_t kPoolSize = 4 << 20;

// Metadata blob: 8-byte counter + checksum of it, so a torn slot is visible.
std::vector<std::byte> MetaBlob(uint64_t counter) {
  std::vector<std::byte> b(16);
  const uint64_t sum = Checksum64(&counter, 8, 99);
  std::memcpy(b.data(), &counter, 8);
  std::memcpy(b.data() + 8, &sum, 8);
  return b;
}

// The child: open, then loop over random operations forever, acknowledging
// every persisted counter value over `ack_fd` as "<region-id> <value>".
[[noreturn]] void ChildLoop(const std::string& path, int ack_fd, uint64_t seed) {
  auto pool = Pool::Open(path);
  if (!pool.ok()) {
    std::fprintf(stderr, "child: %s\n", pool.status().ToString().c_str());
    _exit(2);
  }
  std::mt19937_64 rng(seed);
  uint64_t counter = seed << 20;
  while (true) {
    const int slot = static_cast<int>(rng() % 6);
    const std::string name = "r" + std::to_string(slot);
    switch (rng() % 4) {
      case 0:
        (*pool)->CreateRegion(name, 4096 + rng() % 60000).status().IgnoreError();  // may exist
        break;
      case 1:
        (*pool)->DeleteRegion(name).IgnoreError();  // may be missing
        break;
      default: {
        auto r = (*pool)->OpenRegion(name);
        if (!r.ok()) break;
        ++counter;
        if (!r->AtomicStore64(0, counter).ok()) _exit(3);
        if (!r->WriteMetadata(MetaBlob(counter)).ok()) _exit(4);
        const std::string ack = std::to_string(r->id()) + " " + std::to_string(counter) + "\n";
        if (write(ack_fd, ack.data(), ack.size()) != static_cast<ssize_t>(ack.size())) _exit(5);
        break;
      }
    }
  }
}

TEST(SigkillCrash, PoolSurvivesRepeatedKillsMidOperation) {
  char tmpl[] = "/tmp/cosmos_sigkill_XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/kill.pool";
  {
    auto pool = Pool::Create(path, kPoolSize, {.backend = BackendKind::kFile, .max_regions = 8});
    ASSERT_TRUE(pool.ok()) << pool.status();
  }
  std::mt19937_64 rng(2024);
  std::map<uint64_t, uint64_t> acked;  // region id -> last acknowledged counter
  uint64_t last_sequence = 0;
  uint64_t verified_acks = 0;
  for (int kill_round = 0; kill_round < kKills; ++kill_round) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fds[0]);
      ChildLoop(path, fds[1], static_cast<uint64_t>(kill_round) + 1);
    }
    close(fds[1]);
    std::this_thread::sleep_for(std::chrono::microseconds(2000 + rng() % 20000));
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited early with " << WEXITSTATUS(status);
    // Collect acknowledgements: the last value per region the child persisted.
    std::string acks;
    char buf[4096];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof(buf))) > 0) acks.append(buf, static_cast<size_t>(n));
    close(fds[0]);
    size_t pos = 0;
    while (pos < acks.size()) {
      const size_t nl = acks.find('\n', pos);
      if (nl == std::string::npos) break;
      unsigned long long id, value;
      if (std::sscanf(acks.c_str() + pos, "%llu %llu", &id, &value) == 2) acked[id] = value;
      pos = nl + 1;
    }

    auto pool = Pool::Open(path);
    ASSERT_TRUE(pool.ok()) << "round " << kill_round << ": " << pool.status();
    ASSERT_TRUE((*pool)->Check().ok()) << "round " << kill_round;
    const PoolInfo info = (*pool)->Info();
    ASSERT_GE(info.metadata_sequence, last_sequence);
    last_sequence = info.metadata_sequence;
    for (const auto& r : (*pool)->ListRegions()) {
      auto region = (*pool)->OpenRegion(r.name);
      ASSERT_TRUE(region.ok());
      auto meta = region->ReadMetadata();
      ASSERT_TRUE(meta.ok());
      if (meta->empty()) continue;
      ASSERT_EQ(meta->size(), 16u) << r.name;
      uint64_t counter, sum;
      std::memcpy(&counter, meta->data(), 8);
      std::memcpy(&sum, meta->data() + 8, 8);
      ASSERT_EQ(sum, Checksum64(&counter, 8, 99)) << "torn metadata slot in " << r.name;
      uint64_t stored;
      std::memcpy(&stored, region->data(), 8);
      // The data word is persisted before the metadata: never behind it.
      ASSERT_GE(stored, counter) << r.name;
      // Region ids are never reused, so an acknowledged value of a region
      // that still exists must have survived.
      if (auto it = acked.find(r.id); it != acked.end()) {
        ASSERT_GE(stored, it->second) << "lost acknowledged data write in " << r.name;
        ASSERT_GE(counter, it->second) << "lost acknowledged metadata write in " << r.name;
        ++verified_acks;
      }
    }
  }
  std::printf("sigkill crash test: %d kills, %llu acknowledged writes verified\n", kKills,
              static_cast<unsigned long long>(verified_acks));
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace cosmos::pmem
