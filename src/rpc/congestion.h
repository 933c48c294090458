// Per-session congestion control of the RPC client: a delay-based AIMD rate
// controller after Swift (Kumar et al., SIGCOMM 2020) driven by the RTT
// samples the endpoint takes, and a token-bucket pacer that spaces packets at
// the controlled rate. Pure logic with explicit time (no clock inside), so
// both are tested with a fake clock and a simulated link (docs/rpc.md,
// "Congestion control").
#pragma once

#include <cstddef>
#include <cstdint>

namespace cosmos::rpc {

struct CongestionOptions {
  bool enabled = true;
  // Ceiling of the rate and the rate a session starts at (bytes per second).
  // A session at the ceiling is not paced at all.
  double max_rate = 1.25e9;  // 10 Gbit/s
  double min_rate = 125e3;   // 1 Mbit/s
  // Round-trip time the controller aims for. Absolute, as Swift's base
  // target: a target relative to each session's lowest RTT favours a
  // session that joined when a queue already stood (it never saw the empty
  // path) and breaks fairness. Should exceed the path's unloaded RTT with
  // its usual jitter (a veth pair on the reference VM: p50 ~65 us, p99
  // 130-200 us; a LAN: tens of us). Chosen with the incast benchmark.
  uint64_t target_delay_ns = 150'000;
  // Flow scaling (Swift): a slower session aims for up to this much more
  // delay (in proportion to 1/sqrt(rate) between max_rate and min_rate), so
  // it keeps growing while faster sessions on the same queue shrink: the
  // force that makes sessions converge to a fair share.
  uint64_t flow_scaling_range_ns = 150'000;
  // Additive increase per update interval while below target (bytes/s),
  // growing by one step for every `increase_growth` increases in a row, so
  // a session far below the ceiling (after a stall or a loss) climbs back
  // in tens of milliseconds while sessions sharing a bottleneck, whose runs
  // of increases the shared queue keeps short, move in small steps.
  double additive_increase = 62.5e3;  // 0.5 Mbit/s
  uint32_t increase_growth = 8;
  // Multiplicative decrease: rate *= 1 - beta * (rtt - target) / rtt, by at
  // most max_decrease, at most once per update interval.
  double beta = 0.8;
  double max_decrease = 0.5;
  // Shortest update interval; the interval is max(this, smoothed RTT).
  uint64_t min_update_interval_ns = 20'000;
  // Packets a paced session may send back to back (token bucket depth).
  uint32_t burst_packets = 4;
};

// The rate of one session. Thread-compatible (owned by one endpoint).
class RateController {
 public:
  explicit RateController(const CongestionOptions& options);

  // One round-trip sample: a packet's send to its acknowledgement, taken
  // only from packets that were not retransmitted (Karn).
  void OnRttSample(uint64_t rtt_ns, uint64_t now_ns);
  // A round trip that includes server work (a request's last packet to its
  // response): an upper bound of the network delay. At or below the target it
  // proves the path uncongested and counts as a sample; above it, the server's
  // time may explain it and it is ignored. Without it a session of
  // single-packet requests (which give no other samples) could only be cut
  // (by timeouts) and never climb back.
  void OnUpperBoundSample(uint64_t rtt_ns, uint64_t now_ns);
  // A retransmission timeout: loss is the strongest congestion signal.
  void OnTimeout(uint64_t now_ns);

  double rate() const { return rate_; }
  // True while the rate is at the ceiling: packets go out unpaced.
  bool unlimited() const { return rate_ >= options_.max_rate; }
  uint64_t min_rtt_ns() const { return min_rtt_ns_; }
  // The delay this session aims for at its current rate.
  uint64_t target_ns() const;

 private:
  uint64_t Interval() const;

  CongestionOptions options_;
  double rate_;
  uint64_t min_rtt_ns_ = 0;
  uint64_t srtt_ns_ = 0;
  uint64_t last_update_ns_ = 0;
  bool updated_ = false;
  uint32_t increases_in_a_row_ = 0;
};

// Token bucket over bytes: refills at the controller's rate up to
// burst_packets x packet size. Thread-compatible.
class Pacer {
 public:
  // Nanoseconds until `bytes` may be sent at `rate` (0: now, and the tokens
  // are taken). `burst_bytes` bounds the bucket.
  uint64_t Reserve(size_t bytes, double rate, size_t burst_bytes, uint64_t now_ns);
  // Forget the bucket (the session went unpaced; it restarts full).
  void Reset() { primed_ = false; }

 private:
  double tokens_ = 0;
  uint64_t last_ns_ = 0;
  bool primed_ = false;
};

}  // namespace cosmos::rpc
