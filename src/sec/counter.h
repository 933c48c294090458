// Trusted monotonic counters with a stabilisation notion (after the
// literature on asynchronous trusted counters): Increment() returns a new
// value at once, the value becomes "stable" (survives a crash) later.
// Counter modes and the rollback window: docs/security.md.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cosmos/result.h"
#include "cosmos/status.h"

namespace cosmos::sec {

// How a protected region uses its counter on Flush.
//  kStrict: a flush is acknowledged only once its counter value is stable, so
//           no acknowledged state can ever be rolled back. At most one
//           increment is unstable at a time; flushes arriving meanwhile wait
//           and then share the next value (group commit).
//  kRelaxed: a flush is acknowledged after Increment(); at most
//           `relaxed_window` increments may be unstable at once, so a crash
//           plus a host rollback can lose at most that many acknowledged
//           flushes (the bounded rollback window).
enum class CounterMode { kStrict, kRelaxed };

// A trusted monotonic counter. Thread-safe.
class MonotonicCounter {
 public:
  virtual ~MonotonicCounter() = default;
  // Highest value returned by Increment/AdvanceTo (stable or not).
  virtual uint64_t Current() = 0;
  // Highest value known to be stable (what a restart would read back).
  virtual uint64_t Stable() = 0;
  // Returns Current()+1 and starts stabilising it. IoError if the backend
  // fails.
  virtual Result<uint64_t> Increment() = 0;
  // Raises the counter to `value` if it is lower (used on recovery when a
  // sealed record is ahead of a counter whose last increment never became
  // stable). No-op when value <= Current().
  [[nodiscard]] virtual Status AdvanceTo(uint64_t value) = 0;
  // True when `value` <= Stable().
  virtual bool IsStable(uint64_t value) = 0;
  // Blocks until `value` is stable. InvalidArgument if value > Current();
  // Unavailable if the backend cannot make progress on its own (manual mode).
  [[nodiscard]] virtual Status WaitStable(uint64_t value) = 0;
};

// Simulated counter: the value lives in a small file (magic, version, value,
// checksum) rewritten atomically (write temp, fsync, rename). This models the
// latency of a real (hardware or remote) trusted counter but NOT its trust:
// the host can edit, delete or roll back the file. Replace with a hardware or
// replicated counter.
//
// Two ways to stabilise (chosen by the options):
//  - background (real clock, not manual; what cosmosd uses): a value is due
//    `stabilisation_delay_ns` after its increment (increments pipeline, as
//    in asynchronous trusted counters); a stabiliser thread wakes when the
//    oldest value is due and persists the highest due value in one file
//    write (a "round"), making every value up to it stable. Increment never
//    touches the file.
//  - caller-driven (an injected clock or sleep; tests): a value is due
//    `stabilisation_delay_ns` after its increment and is persisted by the
//    first Stable/IsStable/WaitStable call after that (no thread, no timing in
//    tests). With delay 0, Increment persists at once.
class SimulatedCounter final : public MonotonicCounter {
 public:
  struct Options {
    std::string path;                              // counter file; created at 0 if missing
    uint64_t stabilisation_delay_ns = 20'000'000;  // 20 ms, typical of TPM/ROTE
    // Values stabilise only via StabiliseAll() (test twin; no timing).
    bool manual = false;
    // Injectable clock and sleep (default: CLOCK_MONOTONIC and nanosleep).
    // Injecting either selects caller-driven stabilisation.
    std::function<uint64_t()> now_ns;
    std::function<void(uint64_t)> sleep_ns;
    // Open fails with NotFound instead of creating a missing file (a region
    // whose sealed state exists must find its counter).
    bool must_exist = false;
  };
  // Opens or creates the counter file. Corruption if the file is malformed,
  // NotFound if it is missing and `must_exist`, IoError on I/O failure.
  static Result<std::unique_ptr<SimulatedCounter>> Open(Options options);
  // Background mode: waits for the running round and persists any value
  // still unstable (clean shutdown leaves nothing unstable), then stops.
  ~SimulatedCounter() override;

  uint64_t Current() override;
  uint64_t Stable() override;
  Result<uint64_t> Increment() override;
  Status AdvanceTo(uint64_t value) override;
  bool IsStable(uint64_t value) override;
  Status WaitStable(uint64_t value) override;

  // Test twin: makes every pending value stable now (persists the file).
  [[nodiscard]] Status StabiliseAll();

  // Reads the stable value stored in a counter file (tests, tools).
  static Result<uint64_t> ReadFile(const std::string& path);

  // True when a stabiliser thread runs the rounds (see the class comment).
  bool background() const { return background_; }
  // Background mode: rounds completed (file writes, each covering every value
  // due by then); tests and `info`.
  uint64_t rounds();

 private:
  explicit SimulatedCounter(Options o) : options_(std::move(o)) {}
  Status PromoteLocked();                // caller-driven: stabilises due values
  Status PersistLocked(uint64_t value);  // writes the file; sets stable_
  Status WriteFile(uint64_t value);      // the file write alone (no lock needed)
  void StabiliserLoop();

  Options options_;
  bool background_ = false;
  std::mutex mu_;
  std::condition_variable cv_;  // background: a round ended / work arrived
  uint64_t current_ = 0;
  uint64_t stable_ = 0;
  uint64_t rounds_ = 0;
  bool stop_ = false;
  Status round_error_;  // background: the last round's failure (cleared by a success)
  struct Pending {
    uint64_t value;
    uint64_t due_ns;
  };
  std::vector<Pending> pending_;  // unstable values in increment order
  std::thread stabiliser_;
  std::mutex file_mu_;       // serialises file writes (taken after mu_, never before)
  uint64_t file_value_ = 0;  // highest value written to the file
};

}  // namespace cosmos::sec
