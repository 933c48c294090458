// QoS building blocks of the memory node: token buckets (bytes/s, ops/s) and
// a fair round-robin queue across sessions. Both take time as an argument so
// tests drive them with a fake clock.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <utility>

namespace cosmos::server {

// A token bucket refilled at `rate` tokens per second up to `burst` tokens.
// rate == 0 means unlimited. Not thread-safe (owned by one worker).
class TokenBucket {
 public:
  TokenBucket() = default;
  TokenBucket(double rate, double burst) : rate_(rate), burst_(burst), tokens_(burst) {}

  bool unlimited() const { return rate_ <= 0; }
  // True (and the tokens are taken) if `cost` tokens are available at
  // `now_ns`. A cost larger than the burst is admitted once the bucket is
  // full (it then goes negative), so no request is starved forever.
  bool TryTake(double cost, uint64_t now_ns) {
    if (!CanTake(cost, now_ns)) return false;
    Take(cost);
    return true;
  }
  // As TryTake without taking: lets a caller check several buckets first.
  bool CanTake(double cost, uint64_t now_ns) {
    if (unlimited()) return true;
    Refill(now_ns);
    return tokens_ >= cost || tokens_ >= burst_;
  }
  // Takes `cost` tokens (may go negative). REQUIRES: CanTake was true.
  void Take(double cost) {
    if (!unlimited()) tokens_ -= cost;
  }
  double tokens(uint64_t now_ns) {
    Refill(now_ns);
    return tokens_;
  }

 private:
  void Refill(uint64_t now_ns) {
    if (last_ns_ != 0 && now_ns > last_ns_) {
      tokens_ += rate_ * static_cast<double>(now_ns - last_ns_) / 1e9;
      if (tokens_ > burst_) tokens_ = burst_;
    }
    if (now_ns > last_ns_) last_ns_ = now_ns;
  }
  double rate_ = 0;
  double burst_ = 0;
  double tokens_ = 0;
  uint64_t last_ns_ = 0;
};

// Per-key FIFO queues served round-robin: each Pop takes the head of the
// next key (in key order after the last served key) whose head is eligible,
// so a key with many queued items gets one turn per round, like every other.
// Not thread-safe (callers lock).
template <typename Key, typename Item>
class FairQueue {
 public:
  void Push(const Key& key, Item item) {
    queues_[key].push_back(std::move(item));
    ++size_;
  }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // Pops the next eligible item in round-robin order; `eligible(key, item)`
  // may refuse a head (e.g. out of tokens), which keeps it queued. nullopt
  // when no head is eligible.
  template <typename Pred>
  std::optional<std::pair<Key, Item>> Pop(Pred eligible) {
    if (size_ == 0) return std::nullopt;
    auto start = last_.has_value() ? queues_.upper_bound(*last_) : queues_.begin();
    for (size_t pass = 0; pass < 2; ++pass) {
      auto begin = pass == 0 ? start : queues_.begin();
      auto end = pass == 0 ? queues_.end() : start;
      for (auto it = begin; it != end; ++it) {
        if (it->second.empty() || !eligible(it->first, it->second.front())) continue;
        std::pair<Key, Item> out{it->first, std::move(it->second.front())};
        it->second.pop_front();
        --size_;
        last_ = it->first;
        if (it->second.empty()) queues_.erase(it);
        return out;
      }
    }
    return std::nullopt;
  }
  std::optional<std::pair<Key, Item>> Pop() {
    return Pop([](const Key&, const Item&) { return true; });
  }

 private:
  std::map<Key, std::deque<Item>> queues_;
  std::optional<Key> last_;
  size_t size_ = 0;
};

}  // namespace cosmos::server
