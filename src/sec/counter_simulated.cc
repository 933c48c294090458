// SimulatedCounter: file-backed monotonic counter with modelled stabilisation.
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/checksum.h"
#include "common/clock.h"
#include "common/endian.h"
#include "common/file_system.h"
#include "sec/counter.h"

namespace cosmos::sec {
namespace {

constexpr uint32_t kCounterMagic = 0x52544343;  // "CCTR"
constexpr uint32_t kCounterVersion = 1;
constexpr size_t kCounterFileSize = 24;  // magic, version, value, checksum
constexpr uint64_t kCounterSeed = 0x636f756e746572ull;

Status WriteAll(int fd, const uint8_t* p, size_t n, const std::string& path) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "write " + path);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

}  // namespace

Result<uint64_t> SimulatedCounter::ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "open counter " + path);
  uint8_t buf[kCounterFileSize + 1];
  ssize_t n = ::read(fd, buf, sizeof(buf));
  ::close(fd);
  if (n != static_cast<ssize_t>(kCounterFileSize) || LoadLE<uint32_t>(buf) != kCounterMagic ||
      LoadLE<uint32_t>(buf + 4) != kCounterVersion ||
      LoadLE<uint64_t>(buf + 16) != Checksum64(buf, 16, kCounterSeed)) {
    return Status::Corruption("counter file " + path + " is malformed");
  }
  return LoadLE<uint64_t>(buf + 8);
}

Result<std::unique_ptr<SimulatedCounter>> SimulatedCounter::Open(Options options) {
  const bool background = !options.manual && !options.now_ns && !options.sleep_ns;
  if (!options.now_ns) options.now_ns = [] { return MonotonicNanos(); };
  if (!options.sleep_ns) {
    options.sleep_ns = [](uint64_t ns) {
      timespec ts{static_cast<time_t>(ns / 1000000000ull), static_cast<long>(ns % 1000000000ull)};
      while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
      }
    };
  }
  std::unique_ptr<SimulatedCounter> c(new SimulatedCounter(std::move(options)));
  std::error_code ec;
  if (std::filesystem::exists(c->options_.path, ec)) {
    COSMOS_ASSIGN_OR_RETURN(c->stable_, ReadFile(c->options_.path));
    c->file_value_ = c->stable_;
  } else if (c->options_.must_exist) {
    return Status::NotFound("trusted counter file " + c->options_.path + " is missing");
  } else {
    COSMOS_RETURN_IF_ERROR(c->PersistLocked(0));
  }
  c->current_ = c->stable_;
  if (background) {
    c->background_ = true;
    c->stabiliser_ = std::thread([p = c.get()] { p->StabiliserLoop(); });
  }
  return c;
}

SimulatedCounter::~SimulatedCounter() {
  if (!background_) return;
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  stabiliser_.join();
}

void SimulatedCounter::StabiliserLoop() {
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    cv_.wait(l, [&] { return stop_ || !pending_.empty(); });
    if (pending_.empty()) return;  // stopping, nothing unstable
    const uint64_t now = options_.now_ns();
    if (pending_.front().due_ns > now) {
      const uint64_t wait = pending_.front().due_ns - now;
      l.unlock();
      options_.sleep_ns(wait);  // bounded by the delay, also when stopping
      l.lock();
      continue;
    }
    // One round: every value due by now, in one file write.
    uint64_t best = 0;
    for (const Pending& p : pending_) {
      if (p.due_ns > now) break;
      best = p.value;
    }
    l.unlock();
    Status s = WriteFile(best);
    l.lock();
    ++rounds_;
    if (s.ok()) {
      stable_ = std::max(stable_, best);
      size_t n = 0;
      while (n < pending_.size() && pending_[n].value <= best) ++n;
      pending_.erase(pending_.begin(), pending_.begin() + static_cast<ptrdiff_t>(n));
      round_error_ = Status::Ok();
    } else {
      round_error_ = s;  // waiters see it; the next round retries
    }
    cv_.notify_all();
    if (!s.ok()) {
      if (stop_) return;
      l.unlock();
      options_.sleep_ns(1'000'000);  // do not spin on a failing file system
      l.lock();
    }
  }
}

uint64_t SimulatedCounter::rounds() {
  std::lock_guard<std::mutex> l(mu_);
  return rounds_;
}

Status SimulatedCounter::PersistLocked(uint64_t value) {
  COSMOS_RETURN_IF_ERROR(WriteFile(value));
  stable_ = value;
  return Status::Ok();
}

Status SimulatedCounter::WriteFile(uint64_t value) {
  std::lock_guard<std::mutex> fl(file_mu_);
  if (value != 0 && value <= file_value_) return Status::Ok();  // never move the file back
  uint8_t buf[kCounterFileSize];
  StoreLE<uint32_t>(buf, kCounterMagic);
  StoreLE<uint32_t>(buf + 4, kCounterVersion);
  StoreLE<uint64_t>(buf + 8, value);
  StoreLE<uint64_t>(buf + 16, Checksum64(buf, 16, kCounterSeed));
  const std::string tmp = options_.path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno(errno, "create " + tmp);
  Status s = WriteAll(fd, buf, sizeof(buf), tmp);
  if (s.ok() && ::fsync(fd) != 0) s = Status::FromErrno(errno, "fsync " + tmp);
  ::close(fd);
  COSMOS_RETURN_IF_ERROR(s);
  if (::rename(tmp.c_str(), options_.path.c_str()) != 0) {
    return Status::FromErrno(errno, "rename " + tmp);
  }
  // Only the directory fsync makes the rename durable: a value whose
  // directory cannot be opened or synced is not stable (the caller keeps it
  // pending and reports the error).
  COSMOS_RETURN_IF_ERROR(SyncDirectoryOf(options_.path));
  file_value_ = value;
  return Status::Ok();
}

Status SimulatedCounter::PromoteLocked() {
  if (background_ || pending_.empty() || options_.manual) return Status::Ok();
  const uint64_t now = options_.now_ns();
  uint64_t best = 0;
  size_t done = 0;
  for (const Pending& p : pending_) {
    if (p.due_ns > now) break;
    best = p.value;
    ++done;
  }
  if (done == 0) return Status::Ok();
  COSMOS_RETURN_IF_ERROR(PersistLocked(best));
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<ptrdiff_t>(done));
  return Status::Ok();
}

uint64_t SimulatedCounter::Current() {
  std::lock_guard<std::mutex> l(mu_);
  return current_;
}

uint64_t SimulatedCounter::Stable() {
  std::lock_guard<std::mutex> l(mu_);
  PromoteLocked().IgnoreError();  // an I/O failure leaves the value unstable
  return stable_;
}

Result<uint64_t> SimulatedCounter::Increment() {
  std::lock_guard<std::mutex> l(mu_);
  const uint64_t v = ++current_;
  if (background_) {
    pending_.push_back({v, options_.now_ns() + options_.stabilisation_delay_ns});
    cv_.notify_all();
    return v;
  }
  if (!options_.manual && options_.stabilisation_delay_ns == 0) {
    COSMOS_RETURN_IF_ERROR(PersistLocked(v));
    pending_.clear();
  } else {
    pending_.push_back({v, options_.now_ns() + options_.stabilisation_delay_ns});
  }
  return v;
}

Status SimulatedCounter::AdvanceTo(uint64_t value) {
  std::lock_guard<std::mutex> l(mu_);
  if (value <= current_) return Status::Ok();
  current_ = value;
  if (background_) {
    pending_.push_back({value, options_.now_ns() + options_.stabilisation_delay_ns});
    cv_.notify_all();
    return Status::Ok();
  }
  if (!options_.manual && options_.stabilisation_delay_ns == 0) {
    pending_.clear();
    return PersistLocked(value);
  }
  pending_.push_back({value, options_.now_ns() + options_.stabilisation_delay_ns});
  return Status::Ok();
}

bool SimulatedCounter::IsStable(uint64_t value) {
  std::lock_guard<std::mutex> l(mu_);
  PromoteLocked().IgnoreError();  // an I/O failure leaves the value unstable
  return value <= stable_;
}

Status SimulatedCounter::WaitStable(uint64_t value) {
  std::unique_lock<std::mutex> l(mu_);
  if (value > current_) return Status::InvalidArgument("WaitStable beyond current value");
  if (background_) {
    uint64_t seen = rounds_;
    while (value > stable_) {
      cv_.wait(l, [&] { return value <= stable_ || rounds_ != seen; });
      if (value > stable_ && !round_error_.ok()) return round_error_;
      seen = rounds_;
    }
    return Status::Ok();
  }
  while (true) {
    COSMOS_RETURN_IF_ERROR(PromoteLocked());
    if (value <= stable_) return Status::Ok();
    if (options_.manual) return Status::Unavailable("counter value not stable (manual mode)");
    uint64_t due = 0;
    for (const Pending& p : pending_) {
      if (p.value >= value) {
        due = p.due_ns;
        break;
      }
    }
    const uint64_t now = options_.now_ns();
    l.unlock();
    options_.sleep_ns(due > now ? due - now : 0);
    l.lock();
  }
}

Status SimulatedCounter::StabiliseAll() {
  std::lock_guard<std::mutex> l(mu_);
  if (background_) {
    if (current_ <= stable_) return Status::Ok();
    // Only this thread and the stabiliser write the file; both write values
    // that are stable from then on, so a racing round is harmless.
    COSMOS_RETURN_IF_ERROR(PersistLocked(current_));
    pending_.clear();
    cv_.notify_all();
    return Status::Ok();
  }
  if (pending_.empty()) return Status::Ok();
  COSMOS_RETURN_IF_ERROR(PersistLocked(current_));
  pending_.clear();
  return Status::Ok();
}

}  // namespace cosmos::sec
