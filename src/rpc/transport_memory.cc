// In-memory backend of Transport with seeded fault injection (tests, fuzzing).
#include "rpc/transport_memory.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <vector>

#include "common/check.h"
#include "common/clock.h"

namespace cosmos::rpc {
namespace {

struct Datagram {
  NetAddress from;
  std::vector<std::byte> bytes;
  uint64_t deliver_at_ns = 0;
};

uint64_t AddressKey(NetAddress a) { return (static_cast<uint64_t>(a.ip) << 16) | a.port; }

}  // namespace

struct Mailbox {
  std::mutex mu;
  std::deque<Datagram> queue;
  size_t queued_bytes = 0;
  size_t capacity = 0;
  int event_fd = -1;
  uint64_t overflow_drops = 0;
};

struct MemoryNetwork::Impl {
  std::mutex mu;
  std::map<uint64_t, std::shared_ptr<Mailbox>> boxes;

  std::shared_ptr<Mailbox> Find(NetAddress a) {
    std::lock_guard<std::mutex> l(mu);
    auto it = boxes.find(AddressKey(a));
    return it == boxes.end() ? nullptr : it->second;
  }

  bool Deliver(NetAddress from, NetAddress to, std::span<const std::byte> data,
               uint64_t deliver_at) {
    std::shared_ptr<Mailbox> box = Find(to);
    if (!box) return false;
    std::lock_guard<std::mutex> l(box->mu);
    if (box->queued_bytes + data.size() > box->capacity) {
      ++box->overflow_drops;
      return false;
    }
    box->queue.push_back({from, std::vector<std::byte>(data.begin(), data.end()), deliver_at});
    box->queued_bytes += data.size();
    uint64_t one = 1;
    ssize_t w = ::write(box->event_fd, &one, sizeof(one));
    (void)w;  // eventfd write only fails on counter overflow, which cannot happen here
    return true;
  }
};

MemoryNetwork::MemoryNetwork() : impl_(std::make_unique<Impl>()) {}
MemoryNetwork::~MemoryNetwork() = default;

bool MemoryNetwork::Inject(NetAddress from, NetAddress to, std::span<const std::byte> data) {
  return impl_->Deliver(from, to, data, 0);
}

namespace {

class MemoryTransport final : public Transport {
 public:
  MemoryTransport(std::shared_ptr<MemoryNetwork> net, std::shared_ptr<Mailbox> box,
                  const MemoryTransportOptions& o)
      : net_(std::move(net)), box_(std::move(box)), options_(o), rng_(o.faults.seed) {}

  ~MemoryTransport() override {
    {
      std::lock_guard<std::mutex> l(net_->impl()->mu);
      net_->impl()->boxes.erase(AddressKey(options_.address));
    }
    ::close(box_->event_fd);
  }

  size_t SendBurst(std::span<const TxDatagram> batch) override {
    size_t sent = 0;
    for (const TxDatagram& d : batch) {
      SendOne(d);
      ++sent;
    }
    stats_.datagrams_sent += sent;
    return sent;
  }

  size_t RecvBurst(std::span<RxDatagram> out) override {
    rx_.clear();
    const uint64_t now = MonotonicNanos();
    {
      std::lock_guard<std::mutex> l(box_->mu);
      while (rx_.size() < out.size() && !box_->queue.empty() &&
             box_->queue.front().deliver_at_ns <= now) {
        box_->queued_bytes -= box_->queue.front().bytes.size();
        rx_.push_back(std::move(box_->queue.front()));
        box_->queue.pop_front();
      }
      if (box_->queue.empty()) {
        uint64_t v;
        ssize_t r = ::read(box_->event_fd, &v, sizeof(v));
        (void)r;  // EAGAIN when already drained is fine
      }
      stats_.overflow_drops = box_->overflow_drops;
    }
    for (size_t k = 0; k < rx_.size(); ++k) {
      out[k] = {rx_[k].from, rx_[k].bytes.data(), static_cast<uint32_t>(rx_[k].bytes.size())};
    }
    stats_.datagrams_received += rx_.size();
    return rx_.size();
  }

  int readable_fd() const override { return box_->event_fd; }
  NetAddress local_address() const override { return options_.address; }
  size_t receive_buffer_bytes() const override { return options_.receive_buffer_bytes; }
  size_t max_datagram_size() const override { return options_.max_datagram; }
  const TransportStats& stats() const override { return stats_; }
  std::string_view name() const override { return "memory"; }
  bool congestion_controlled(NetAddress) const override { return options_.congestion_control; }

 private:
  bool Chance(double p) { return p > 0 && dist_(rng_) < p; }

  void SendOne(const TxDatagram& d) {
    const FaultConfig& f = options_.faults;
    std::span<const std::byte> bytes(d.data, d.len);
    std::vector<std::byte> joined;
    if (d.tail_len > 0) {
      joined.assign(d.data, d.data + d.len);
      joined.insert(joined.end(), d.tail, d.tail + d.tail_len);
      bytes = joined;
    }
    if (Chance(f.drop)) {
      ++stats_.injected_drops;
      ReleaseHeld();
      return;
    }
    std::vector<std::byte> copy;
    if (Chance(f.corrupt) && !bytes.empty()) {
      copy.assign(bytes.begin(), bytes.end());
      const size_t pos = rng_() % copy.size();
      copy[pos] ^= static_cast<std::byte>(1u << (rng_() % 8));
      bytes = copy;
      ++stats_.injected_corruptions;
    }
    uint64_t at = 0;
    if (Chance(f.delay)) at = MonotonicNanos() + f.delay_ns;
    const int copies = Chance(f.duplicate) ? 2 : 1;
    if (copies == 2) ++stats_.injected_duplicates;
    if (!held_.has && Chance(f.reorder)) {
      held_.has = true;
      held_.to = d.to;
      held_.at = at;
      held_.bytes.assign(bytes.begin(), bytes.end());
      held_.copies = copies;
      ++stats_.injected_reorders;
      return;
    }
    for (int c = 0; c < copies; ++c) net_->impl()->Deliver(options_.address, d.to, bytes, at);
    ReleaseHeld();
  }

  void ReleaseHeld() {
    if (!held_.has) return;
    held_.has = false;
    for (int c = 0; c < held_.copies; ++c) {
      net_->impl()->Deliver(options_.address, held_.to, held_.bytes, held_.at);
    }
  }

  struct Held {
    bool has = false;
    NetAddress to;
    uint64_t at = 0;
    int copies = 1;
    std::vector<std::byte> bytes;
  };

  std::shared_ptr<MemoryNetwork> net_;
  std::shared_ptr<Mailbox> box_;
  MemoryTransportOptions options_;
  std::mt19937_64 rng_;
  std::uniform_real_distribution<double> dist_{0.0, 1.0};
  std::vector<Datagram> rx_;
  Held held_;
  TransportStats stats_;
};

}  // namespace

Result<std::unique_ptr<Transport>> OpenMemoryTransport(std::shared_ptr<MemoryNetwork> network,
                                                       const MemoryTransportOptions& options) {
  COSMOS_CHECK(network != nullptr);
  auto box = std::make_shared<Mailbox>();
  box->capacity = options.receive_buffer_bytes;
  box->event_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (box->event_fd < 0) return Status::FromErrno(errno, "memory transport: eventfd");
  {
    std::lock_guard<std::mutex> l(network->impl()->mu);
    auto [it, inserted] = network->impl()->boxes.emplace(AddressKey(options.address), box);
    if (!inserted) {
      ::close(box->event_fd);
      return Status::AlreadyExists("memory transport: address " + options.address.ToString() +
                                   " already in use");
    }
  }
  return std::unique_ptr<Transport>(new MemoryTransport(std::move(network), box, options));
}

}  // namespace cosmos::rpc
