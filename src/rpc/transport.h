// Transport: the runtime-chosen datagram interface under an Rpc endpoint, with
// a burst-shaped API (send and receive batches). Backends: transport_udp.h
// (kernel UDP, sendmmsg/recvmmsg, GSO/GRO) and transport_memory.h (in-process,
// with deterministic fault injection).
#pragma once

#include <netinet/in.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "cosmos/result.h"

namespace cosmos::rpc {

// A UDP endpoint address: IPv4 (`ip`, host byte order) or, when `v6`, IPv6
// (`ip6`, network byte order; `ip` is 0), and a port (host byte order). The
// in-memory transport uses the IPv4 shape with made-up addresses. An IPv4
// peer reached through a dual-stack IPv6 socket is an IPv4 address here (the
// v4-mapped form never appears).
struct NetAddress {
  uint32_t ip = 0;
  uint16_t port = 0;
  bool v6 = false;
  std::array<uint8_t, 16> ip6{};
  // IPv6 zone (link-local addresses): the interface index, 0 for none.
  uint32_t scope_id = 0;
  friend bool operator==(const NetAddress&, const NetAddress&) = default;
  // "a.b.c.d:port", "[v6]:port" or "[v6%interface]:port" (the interface's
  // name, or its index when it has none).
  std::string ToString() const;
  // Parses "a.b.c.d:port", "[v6]:port", "v6:port" (the last colon starts the
  // port) or "localhost:port"; an IPv6 address may carry a zone,
  // "[fe80::1%eth0]:port" or "[fe80::1%2]:port" (interface name or index).
  // InvalidArgument on bad text or an unknown interface.
  static Result<NetAddress> Parse(std::string_view text);
  // The IPv6 address `bytes` (network order) and `port`; a v4-mapped
  // address (::ffff:a.b.c.d) becomes the IPv4 address.
  static NetAddress Ipv6(const std::array<uint8_t, 16>& bytes, uint16_t port);
  // REQUIRES: !v6.
  sockaddr_in ToSockaddr() const;
  static NetAddress FromSockaddr(const sockaddr_in& sa);
  // Either family, for a socket of `family` (AF_INET or AF_INET6): an IPv4
  // address on an AF_INET6 socket is written v4-mapped. Returns the length,
  // or 0 if an IPv6 address was asked for on an AF_INET socket.
  socklen_t ToSockaddr(int family, sockaddr_storage* out) const;
  // AF_INET or AF_INET6 (v4-mapped becomes IPv4).
  static NetAddress FromSockaddr(const sockaddr_storage& sa);
  // 64 bits identifying the host part (the port left out), e.g. for
  // per-source limits: the IPv4 address itself, or a fold of the IPv6 one.
  uint64_t HostKey() const;
  // 127.0.0.0/8 or ::1.
  bool IsLoopback() const;
};

// One datagram to send: `data` followed by the optional `tail` (so a header
// and a payload living elsewhere go out without being copied together). The
// bytes are owned by the caller and only read during SendBurst.
struct TxDatagram {
  NetAddress to;
  const std::byte* data = nullptr;
  uint32_t len = 0;
  const std::byte* tail = nullptr;
  uint32_t tail_len = 0;
  uint32_t size() const { return len + tail_len; }
};

// One received datagram. `data` points into transport-owned memory that stays
// valid (and writable, for in-place decryption) until the next RecvBurst.
struct RxDatagram {
  NetAddress from;
  std::byte* data = nullptr;
  uint32_t len = 0;
};

// Transport counters (monotonic).
struct TransportStats {
  uint64_t datagrams_sent = 0;
  uint64_t datagrams_received = 0;
  uint64_t send_errors = 0;     // datagrams the kernel refused (EAGAIN, ENOBUFS, ...)
  uint64_t gso_sends = 0;       // super-datagrams sent with UDP_SEGMENT
  uint64_t gro_receives = 0;    // coalesced receives split by UDP_GRO
  uint64_t injected_drops = 0;  // in-memory only
  uint64_t injected_duplicates = 0;
  uint64_t injected_reorders = 0;
  uint64_t injected_corruptions = 0;
  uint64_t overflow_drops = 0;  // in-memory only: receive queue full
};

// Thread-safety: a Transport is owned by one Rpc and used only from that
// endpoint's thread, except where a backend says otherwise.
class Transport {
 public:
  virtual ~Transport() = default;

  // Sends up to `batch.size()` datagrams; returns how many were handed to the
  // network (the rest were dropped and counted in send_errors). Datagrams to
  // the same peer that are consecutive in `batch`, of equal length (the last
  // may be shorter), may be coalesced into one GSO send.
  virtual size_t SendBurst(std::span<const TxDatagram> batch) = 0;

  // Receives up to `out.size()` datagrams without blocking; returns the count.
  virtual size_t RecvBurst(std::span<RxDatagram> out) = 0;

  // A file descriptor that polls readable when datagrams may be waiting, for
  // blocking (adaptive) polling; -1 if the backend cannot block.
  virtual int readable_fd() const = 0;

  // The local address datagrams are received on.
  virtual NetAddress local_address() const = 0;

  // Bytes the receive queue can hold (SO_RCVBUF as the kernel reports it for
  // UDP). Used for the credit budget check at connect.
  virtual size_t receive_buffer_bytes() const = 0;

  // Largest datagram this transport can carry.
  virtual size_t max_datagram_size() const = 0;

  // Largest datagram that reaches `peer` without IP fragmentation as far as
  // this host knows now (for UDP over IPv4: the route's MTU, including a
  // path MTU learned from ICMP, minus 28 header bytes), capped at
  // max_datagram_size(). Backends without a path notion return
  // max_datagram_size(). May cost a few syscalls: call per session, not per packet.
  virtual size_t PathMtu(NetAddress /*peer*/) const { return max_datagram_size(); }

  // Whether the endpoint runs congestion control (RpcOptions::congestion)
  // for sessions to `peer`: a network path with queues to fill says yes; a
  // path that stays inside this host (UDP to a loopback or local address:
  // the only queue is the receiver's socket, which credits already bound,
  // and delay there is CPU scheduling) and the in-memory transport (unless
  // asked) say no. Called once per session.
  virtual bool congestion_controlled(NetAddress /*peer*/) const { return false; }

  virtual const TransportStats& stats() const = 0;
  // "udp", "udp+gso+gro", "memory", ...
  virtual std::string_view name() const = 0;
};

}  // namespace cosmos::rpc
