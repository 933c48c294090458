// MemoryTransport: an in-process datagram network for tests, fuzzing and
// loss benchmarks, with deterministic (seeded) drop, duplicate, reorder,
// corrupt and delay injection applied on the sending side.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "rpc/transport.h"

namespace cosmos::rpc {

// Fault probabilities in [0, 1], applied independently to every datagram a
// transport sends, drawn from a generator seeded with `seed` (same seed and
// same send sequence => same faults).
struct FaultConfig {
  double drop = 0;
  double duplicate = 0;
  double reorder = 0;  // held back and delivered after the sender's next datagram
  double corrupt = 0;  // one random bit flipped
  double delay = 0;    // delivered only after delay_ns
  uint64_t delay_ns = 0;
  uint64_t seed = 1;
};

// The shared medium. Thread-safe: endpoints on different threads may share a
// network (each mailbox has its own mutex; this is a test transport, the UDP
// path takes no locks).
class MemoryNetwork {
 public:
  MemoryNetwork();
  ~MemoryNetwork();
  MemoryNetwork(const MemoryNetwork&) = delete;
  MemoryNetwork& operator=(const MemoryNetwork&) = delete;

  // Delivers `data` to `to` as if sent by `from`, bypassing fault injection
  // (for fuzzers and hostile-input tests). Returns false if nobody listens at
  // `to` or its queue is full.
  bool Inject(NetAddress from, NetAddress to, std::span<const std::byte> data);

  struct Impl;
  Impl* impl() { return impl_.get(); }

 private:
  std::unique_ptr<Impl> impl_;
};

struct MemoryTransportOptions {
  NetAddress address;                      // must be unique on the network
  FaultConfig faults;                      // applied to datagrams this transport sends
  size_t receive_buffer_bytes = 16 << 20;  // queue bound; excess datagrams are dropped
  size_t max_datagram = 65000;
  bool congestion_control = false;  // Transport::congestion_controlled()
};

// Attaches a transport at `options.address`. Errors: AlreadyExists if the
// address is taken. The network must outlive the transport.
Result<std::unique_ptr<Transport>> OpenMemoryTransport(std::shared_ptr<MemoryNetwork> network,
                                                       const MemoryTransportOptions& options);

}  // namespace cosmos::rpc
