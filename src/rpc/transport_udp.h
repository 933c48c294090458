// UdpTransport: kernel UDP sockets with sendmmsg/recvmmsg batching, UDP GSO
// (UDP_SEGMENT) for runs of equal-sized datagrams and UDP GRO on receive,
// each probed at open and silently disabled where the kernel lacks it.
#pragma once

#include <memory>

#include "rpc/transport.h"

namespace cosmos::rpc {

struct UdpTransportOptions {
  NetAddress bind;                        // ip 0 = any; port 0 = ephemeral
  size_t receive_buffer_bytes = 8 << 20;  // requested SO_RCVBUF (FORCE when root)
  size_t send_buffer_bytes = 8 << 20;     // requested SO_SNDBUF
  bool enable_gso = true;                 // use UDP_SEGMENT if the kernel supports it
  bool enable_gro = true;                 // use UDP_GRO if the kernel supports it
  size_t max_datagram = 9000;             // largest datagram sent/received (without GRO)
  // Run congestion control (RpcOptions::congestion) on paths that stay inside
  // this host too (loopback and own addresses), where it is off by default
  // (see Transport::congestion_controlled). For measuring its cost on an
  // idle path (bench/rpc: rtt_32B_cc_*); not for production use.
  bool congestion_control_local = false;
};

// Opens a UDP socket bound to `options.bind`. Errors: IoError (socket, bind).
// The returned transport reports whether GSO/GRO are active in name().
Result<std::unique_ptr<Transport>> OpenUdpTransport(const UdpTransportOptions& options);

}  // namespace cosmos::rpc
