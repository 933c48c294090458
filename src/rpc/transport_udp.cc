// Kernel UDP backend of Transport: batched syscalls, GSO on send, GRO on receive.
#include "rpc/transport_udp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "common/check.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

namespace cosmos::rpc {
namespace {

constexpr size_t kRecvBatch = 32;
constexpr size_t kSendBatch = 64;
constexpr size_t kMaxGsoSegments = 64;
constexpr size_t kMaxGsoBytes = 65000;
constexpr size_t kGroBufferBytes = 65536;
constexpr int kUdpIpv4Overhead = 28;  // IPv4 header (no options) + UDP header
constexpr int kUdpIpv6Overhead = 48;  // IPv6 header (no extensions) + UDP header

class UdpTransport final : public Transport {
 public:
  UdpTransport(int fd, int family, NetAddress local, bool gso, bool gro, size_t rcvbuf,
               size_t max_dgram, bool congestion_control_local)
      : fd_(fd),
        family_(family),
        local_(local),
        gso_(gso),
        gro_(gro),
        rcvbuf_(rcvbuf),
        max_dgram_(max_dgram),
        congestion_control_local_(congestion_control_local) {
    rx_buf_size_ = gro_ ? kGroBufferBytes : max_dgram_;
    rx_storage_.resize(kRecvBatch * rx_buf_size_);
    pending_.reserve(kRecvBatch * kMaxGsoSegments);
    name_ = "udp";
    if (gso_) name_ += "+gso";
    if (gro_) name_ += "+gro";
  }
  ~UdpTransport() override { ::close(fd_); }

  size_t SendBurst(std::span<const TxDatagram> batch) override {
    if (batch.size() == 1 && batch[0].tail_len == 0) {
      // One small datagram (the latency path): plain sendto is the cheapest syscall.
      sockaddr_storage to;
      const socklen_t to_len = batch[0].to.ToSockaddr(family_, &to);
      ssize_t r = -1;
      if (to_len != 0) {  // (0: an IPv6 peer on an IPv4 socket, unreachable)
        do {
          r = ::sendto(fd_, batch[0].data, batch[0].len, MSG_DONTWAIT,
                       reinterpret_cast<const sockaddr*>(&to), to_len);
        } while (r < 0 && errno == EINTR);
      }
      if (r < 0) {
        ++stats_.send_errors;
        return 0;
      }
      ++stats_.datagrams_sent;
      return 1;
    }
    size_t sent = 0;
    size_t i = 0;
    while (i < batch.size()) {
      // Build up to kSendBatch messages, each one datagram or one GSO run.
      mmsghdr msgs[kSendBatch];
      sockaddr_storage addrs[kSendBatch];
      size_t counts[kSendBatch];
      size_t iov_counts[kSendBatch];
      size_t nmsg = 0;
      size_t iov_used = 0;
      while (i < batch.size() && nmsg < kSendBatch) {
        const TxDatagram& first = batch[i];
        size_t run = 1;
        size_t bytes = first.size();
        size_t iovs = first.tail_len ? 2 : 1;
        if (gso_) {
          while (i + run < batch.size() && run < kMaxGsoSegments) {
            const TxDatagram& d = batch[i + run];
            if (!(d.to == first.to) || d.size() > first.size() || bytes + d.size() > kMaxGsoBytes) {
              break;
            }
            bytes += d.size();
            iovs += d.tail_len ? 2 : 1;
            ++run;
            if (d.size() < first.size()) break;  // a shorter segment must be the last
          }
        }
        if (iov_used + iovs > iov_.size()) iov_.resize(std::max(iov_.size() * 2, iov_used + iovs));
        // Pieces that are contiguous in memory share one iovec: the kernel's
        // copy costs per iovec as well as per byte, and a caller packing a
        // run of packets back to back gets one iovec for the whole run.
        size_t v = iov_used;
        auto add = [&](const std::byte* p, size_t n) {
          if (v > iov_used &&
              static_cast<const std::byte*>(iov_[v - 1].iov_base) + iov_[v - 1].iov_len == p) {
            iov_[v - 1].iov_len += n;
          } else {
            iov_[v++] = {const_cast<std::byte*>(p), n};
          }
        };
        for (size_t k = 0; k < run; ++k) {
          const TxDatagram& d = batch[i + k];
          add(d.data, d.len);
          if (d.tail_len) add(d.tail, d.tail_len);
        }
        iovs = v - iov_used;
        mmsghdr& m = msgs[nmsg];
        std::memset(&m, 0, sizeof(m));
        m.msg_hdr.msg_name = &addrs[nmsg];
        // (0 for an IPv6 peer on an IPv4 socket: the kernel refuses the send.)
        m.msg_hdr.msg_namelen = first.to.ToSockaddr(family_, &addrs[nmsg]);
        m.msg_hdr.msg_iovlen = iovs;
        counts[nmsg] = run;
        iov_counts[nmsg] = iovs;
        if (run > 1) {
          char* c = cmsg_[nmsg];
          std::memset(c, 0, sizeof(cmsg_[nmsg]));
          m.msg_hdr.msg_control = c;
          m.msg_hdr.msg_controllen = CMSG_SPACE(sizeof(uint16_t));
          cmsghdr* cm = CMSG_FIRSTHDR(&m.msg_hdr);
          cm->cmsg_level = SOL_UDP;
          cm->cmsg_type = UDP_SEGMENT;
          cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
          const uint16_t seg = static_cast<uint16_t>(first.size());
          std::memcpy(CMSG_DATA(cm), &seg, sizeof(seg));
        }
        iov_used += iovs;
        i += run;
        ++nmsg;
      }
      // iov_ may have been reallocated while building; set pointers now.
      size_t off = 0;
      for (size_t k = 0; k < nmsg; ++k) {
        msgs[k].msg_hdr.msg_iov = &iov_[off];
        off += iov_counts[k];
      }
      size_t done = 0;
      while (done < nmsg) {
        int r = ::sendmmsg(fd_, msgs + done, static_cast<unsigned>(nmsg - done), MSG_DONTWAIT);
        if (r > 0) {
          for (int k = 0; k < r; ++k) {
            sent += counts[done + k];
            if (counts[done + k] > 1) ++stats_.gso_sends;
          }
          done += static_cast<size_t>(r);
          continue;
        }
        if (r < 0 && errno == EINTR) continue;
        // The first message of the remainder failed: count it and move on.
        stats_.send_errors += counts[done];
        ++done;
      }
    }
    stats_.datagrams_sent += sent;
    return sent;
  }

  size_t RecvBurst(std::span<RxDatagram> out) override {
    if (pending_pos_ == pending_.size()) {
      pending_.clear();
      pending_pos_ = 0;
      Receive();
    }
    size_t n = std::min(out.size(), pending_.size() - pending_pos_);
    for (size_t k = 0; k < n; ++k) out[k] = pending_[pending_pos_ + k];
    pending_pos_ += n;
    stats_.datagrams_received += n;
    return n;
  }

  int readable_fd() const override { return fd_; }
  NetAddress local_address() const override { return local_; }
  size_t receive_buffer_bytes() const override { return rcvbuf_; }
  size_t max_datagram_size() const override { return max_dgram_; }

  size_t PathMtu(NetAddress peer) const override {
    // The kernel reports the route MTU only for a connected socket; a
    // throwaway one asks without touching the endpoint's socket.
    const int family = peer.v6 ? AF_INET6 : AF_INET;
    const int overhead = peer.v6 ? kUdpIpv6Overhead : kUdpIpv4Overhead;
    int fd = ::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return max_dgram_;
    int mtu = 0;
    socklen_t len = sizeof(mtu);
    sockaddr_storage sa;
    const socklen_t sl = peer.ToSockaddr(family, &sa);
    const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sl) == 0 &&
                    (peer.v6 ? ::getsockopt(fd, IPPROTO_IPV6, IPV6_MTU, &mtu, &len)
                             : ::getsockopt(fd, IPPROTO_IP, IP_MTU, &mtu, &len)) == 0 &&
                    mtu > overhead;
    ::close(fd);
    if (!ok) return max_dgram_;  // no route now: the send itself will report it
    return std::min(max_dgram_, static_cast<size_t>(mtu - overhead));
  }
  const TransportStats& stats() const override { return stats_; }
  std::string_view name() const override { return name_; }
  bool congestion_controlled(NetAddress peer) const override {
    if (congestion_control_local_) return true;
    if (peer.IsLoopback()) return false;
    // Any address of this host is reached through the loopback device: the
    // source address the kernel picks for it is the address itself.
    const int family = peer.v6 ? AF_INET6 : AF_INET;
    int fd = ::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return true;
    sockaddr_storage sa;
    const socklen_t sl = peer.ToSockaddr(family, &sa);
    sockaddr_storage src{};
    socklen_t len = sizeof(src);
    const bool local = ::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sl) == 0 &&
                       ::getsockname(fd, reinterpret_cast<sockaddr*>(&src), &len) == 0 &&
                       NetAddress::FromSockaddr(src).HostKey() == peer.HostKey();
    ::close(fd);
    return !local;
  }

 private:
  // Points the prebuilt receive headers back at their buffers (recvmmsg
  // overwrites lengths). Only the entries the last call used need it.
  void ResetRxHeaders(size_t count) {
    for (size_t k = 0; k < count; ++k) {
      rx_iov_[k].iov_base = rx_storage_.data() + k * rx_buf_size_;
      rx_iov_[k].iov_len = rx_buf_size_;
      msghdr& h = rx_msgs_[k].msg_hdr;
      h.msg_name = &rx_addrs_[k];
      h.msg_namelen = sizeof(sockaddr_storage);
      h.msg_iov = &rx_iov_[k];
      h.msg_iovlen = 1;
      h.msg_control = gro_ ? rx_cmsgs_[k] : nullptr;
      h.msg_controllen = gro_ ? sizeof(rx_cmsgs_[k]) : 0;
      h.msg_flags = 0;
    }
  }

  void Receive() {
    ResetRxHeaders(rx_dirty_);
    rx_dirty_ = 0;
    mmsghdr* msgs = rx_msgs_;
    iovec* iov = rx_iov_;
    sockaddr_storage* addrs = rx_addrs_;
    // recvmmsg returning one datagram has already tried for a second and
    // found the queue empty: on a request/response path that extra attempt
    // is paid on every packet by both peers. After an empty or single
    // receive, poll with plain recvmsg (one datagram, no second attempt);
    // after a datagram or a full batch, expect more and use recvmmsg.
    int r;
    if (expect_more_) {
      r = ::recvmmsg(fd_, msgs, kRecvBatch, MSG_DONTWAIT, nullptr);
      expect_more_ = r > 1;
    } else {
      const ssize_t n = ::recvmsg(fd_, &msgs[0].msg_hdr, MSG_DONTWAIT);
      r = n < 0 ? -1 : 1;
      if (n >= 0) msgs[0].msg_len = static_cast<unsigned>(n);
      expect_more_ = n >= 0;
    }
    if (r <= 0) return;
    rx_dirty_ = static_cast<size_t>(r);
    for (int k = 0; k < r; ++k) {
      const mmsghdr& m = msgs[k];
      if (m.msg_hdr.msg_flags & MSG_TRUNC) continue;  // larger than any valid packet
      NetAddress from = NetAddress::FromSockaddr(addrs[k]);
      std::byte* base = static_cast<std::byte*>(iov[k].iov_base);
      size_t len = m.msg_len;
      size_t seg = 0;
      if (gro_) {
        for (cmsghdr* cm = CMSG_FIRSTHDR(&m.msg_hdr); cm != nullptr;
             cm = CMSG_NXTHDR(const_cast<msghdr*>(&m.msg_hdr), cm)) {
          if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
            int v = 0;
            std::memcpy(&v, CMSG_DATA(cm), sizeof(v));
            if (v > 0) seg = static_cast<size_t>(v);
          }
        }
      }
      if (seg == 0 || seg >= len) {
        pending_.push_back({from, base, static_cast<uint32_t>(len)});
        continue;
      }
      ++stats_.gro_receives;
      for (size_t off = 0; off < len; off += seg) {
        pending_.push_back({from, base + off, static_cast<uint32_t>(std::min(seg, len - off))});
      }
    }
  }

  int fd_;
  int family_;  // AF_INET, or AF_INET6 (dual-stack: IPv4 peers v4-mapped)
  NetAddress local_;
  bool gso_;
  bool gro_;
  size_t rcvbuf_;
  size_t max_dgram_;
  bool congestion_control_local_;
  size_t rx_buf_size_ = 0;
  std::vector<std::byte> rx_storage_;
  std::vector<RxDatagram> pending_;
  size_t pending_pos_ = 0;
  std::vector<iovec> iov_ = std::vector<iovec>(kSendBatch * 4);
  alignas(cmsghdr) char cmsg_[kSendBatch][CMSG_SPACE(sizeof(uint16_t))];
  mmsghdr rx_msgs_[kRecvBatch] = {};
  iovec rx_iov_[kRecvBatch] = {};
  sockaddr_storage rx_addrs_[kRecvBatch] = {};
  alignas(cmsghdr) char rx_cmsgs_[kRecvBatch][CMSG_SPACE(sizeof(int))] = {};
  size_t rx_dirty_ = kRecvBatch;  // headers to reset before the next recvmmsg
  bool expect_more_ = false;      // the last receive suggests a backlog: use recvmmsg
  TransportStats stats_;
  std::string name_;
};

}  // namespace

Result<std::unique_ptr<Transport>> OpenUdpTransport(const UdpTransportOptions& options) {
  // An IPv6 bind address opens a dual-stack IPv6 socket (IPv4 peers too,
  // v4-mapped; "::" listens on both); an IPv4 one an IPv4 socket.
  const int family = options.bind.v6 ? AF_INET6 : AF_INET;
  int fd = ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno(errno, "udp transport: socket");
  auto fail = [fd](const char* what) {
    Status s = Status::FromErrno(errno, what);
    ::close(fd);
    return s;
  };
  int rcv = static_cast<int>(options.receive_buffer_bytes);
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv)) != 0) {
    // Not privileged: the request is capped at net.core.rmem_max.
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv)) != 0) {
      return fail("udp transport: SO_RCVBUF");
    }
  }
  int snd = static_cast<int>(options.send_buffer_bytes);
  if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &snd, sizeof(snd)) != 0) {
    if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof(snd)) != 0) {
      return fail("udp transport: SO_SNDBUF");
    }
  }
  // Never fragment: datagrams go out with DF set, and one larger than the
  // known path MTU fails to send instead of being split into IP fragments.
  // Sessions size their packets to PathMtu() so this does not happen.
  // (On an IPv6 socket the IPv4 option covers its v4-mapped traffic.)
  int pmtu = IP_PMTUDISC_DO;
  if (::setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof(pmtu)) != 0) {
    return fail("udp transport: IP_MTU_DISCOVER");
  }
  if (family == AF_INET6) {
    int pmtu6 = IPV6_PMTUDISC_DO;
    if (::setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &pmtu6, sizeof(pmtu6)) != 0) {
      return fail("udp transport: IPV6_MTU_DISCOVER");
    }
    int off = 0;
    if (::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) != 0) {
      return fail("udp transport: IPV6_V6ONLY");
    }
  }
  sockaddr_storage sa;
  const socklen_t bind_len = options.bind.ToSockaddr(family, &sa);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), bind_len) != 0) {
    return fail(("udp transport: bind " + options.bind.ToString()).c_str());
  }
  socklen_t sl = sizeof(sa);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &sl) != 0) {
    return fail("udp transport: getsockname");
  }
  NetAddress local = NetAddress::FromSockaddr(sa);
  int actual = 0;
  socklen_t al = sizeof(actual);
  if (::getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &actual, &al) != 0) {
    return fail("udp transport: getsockopt SO_RCVBUF");
  }
  bool gso = false;
  if (options.enable_gso) {
    int seg = 1200;
    if (::setsockopt(fd, SOL_UDP, UDP_SEGMENT, &seg, sizeof(seg)) == 0) {
      gso = true;
      seg = 0;  // per-send segment sizes come in a cmsg
      if (::setsockopt(fd, SOL_UDP, UDP_SEGMENT, &seg, sizeof(seg)) != 0) gso = false;
    }
  }
  bool gro = false;
  if (options.enable_gro) {
    int on = 1;
    gro = ::setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof(on)) == 0;
  }
  return std::unique_ptr<Transport>(
      new UdpTransport(fd, family, local, gso, gro, static_cast<size_t>(actual),
                       options.max_datagram, options.congestion_control_local));
}

std::string NetAddress::ToString() const {
  if (v6) {
    char buf[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET6, ip6.data(), buf, sizeof(buf));
    std::string scope;
    if (scope_id != 0) {
      char name[IF_NAMESIZE] = {};
      scope = "%" + (::if_indextoname(scope_id, name) != nullptr ? std::string(name)
                                                                 : std::to_string(scope_id));
    }
    return "[" + std::string(buf) + scope + "]:" + std::to_string(port);
  }
  char buf[INET_ADDRSTRLEN] = {};
  in_addr a{htonl(ip)};
  ::inet_ntop(AF_INET, &a, buf, sizeof(buf));
  return std::string(buf) + ":" + std::to_string(port);
}

Result<NetAddress> NetAddress::Parse(std::string_view text) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return Status::InvalidArgument("address '" + std::string(text) + "': expected ip:port");
  }
  std::string host(text.substr(0, colon));
  std::string port(text.substr(colon + 1));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "localhost") host = "127.0.0.1";
  char* end = nullptr;
  long p = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end != '\0' || p < 0 || p > 65535) {
    return Status::InvalidArgument("address '" + std::string(text) + "': bad port");
  }
  // An IPv6 zone: "fe80::1%eth0" or "fe80::1%2" (interface name or index).
  uint32_t scope = 0;
  if (const size_t pct = host.find('%'); pct != std::string::npos) {
    const std::string zone = host.substr(pct + 1);
    host.resize(pct);
    char* zend = nullptr;
    const unsigned long index = std::strtoul(zone.c_str(), &zend, 10);
    scope = !zone.empty() && *zend == '\0' ? static_cast<uint32_t>(index)
                                           : ::if_nametoindex(zone.c_str());
    if (zone.empty() || scope == 0) {
      return Status::InvalidArgument("address '" + std::string(text) + "': unknown interface '" +
                                     zone + "'");
    }
    std::array<uint8_t, 16> a6{};
    if (::inet_pton(AF_INET6, host.c_str(), a6.data()) != 1) {
      return Status::InvalidArgument("address '" + std::string(text) +
                                     "': a zone (%interface) needs an IPv6 address");
    }
    NetAddress a = Ipv6(a6, static_cast<uint16_t>(p));
    if (!a.v6) {
      return Status::InvalidArgument("address '" + std::string(text) +
                                     "': a zone (%interface) needs an IPv6 address");
    }
    a.scope_id = scope;
    return a;
  }
  in_addr a{};
  if (::inet_pton(AF_INET, host.c_str(), &a) == 1) {
    return NetAddress{ntohl(a.s_addr), static_cast<uint16_t>(p)};
  }
  std::array<uint8_t, 16> a6{};
  if (::inet_pton(AF_INET6, host.c_str(), a6.data()) == 1) {
    return Ipv6(a6, static_cast<uint16_t>(p));
  }
  return Status::InvalidArgument("address '" + std::string(text) +
                                 "': bad IPv4 or IPv6 address (IPv6 as [addr]:port)");
}

NetAddress NetAddress::Ipv6(const std::array<uint8_t, 16>& bytes, uint16_t port) {
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(bytes.data(), kMapped, sizeof(kMapped)) == 0) {
    uint32_t v4 = 0;
    std::memcpy(&v4, bytes.data() + 12, 4);
    return NetAddress{ntohl(v4), port};
  }
  NetAddress a;
  a.port = port;
  a.v6 = true;
  a.ip6 = bytes;
  return a;
}

sockaddr_in NetAddress::ToSockaddr() const {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(ip);
  sa.sin_port = htons(port);
  return sa;
}

NetAddress NetAddress::FromSockaddr(const sockaddr_in& sa) {
  return NetAddress{ntohl(sa.sin_addr.s_addr), ntohs(sa.sin_port)};
}

socklen_t NetAddress::ToSockaddr(int family, sockaddr_storage* out) const {
  std::memset(out, 0, sizeof(*out));
  if (family == AF_INET) {
    if (v6) return 0;
    const sockaddr_in sa = ToSockaddr();
    std::memcpy(out, &sa, sizeof(sa));
    return sizeof(sa);
  }
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_port = htons(port);
  if (v6) {
    std::memcpy(&sa.sin6_addr, ip6.data(), 16);
    sa.sin6_scope_id = scope_id;
  } else {  // v4-mapped ::ffff:a.b.c.d
    sa.sin6_addr.s6_addr[10] = 0xff;
    sa.sin6_addr.s6_addr[11] = 0xff;
    const uint32_t v4 = htonl(ip);
    std::memcpy(&sa.sin6_addr.s6_addr[12], &v4, 4);
  }
  std::memcpy(out, &sa, sizeof(sa));
  return sizeof(sa);
}

NetAddress NetAddress::FromSockaddr(const sockaddr_storage& sa) {
  if (sa.ss_family == AF_INET6) {
    sockaddr_in6 s6;
    std::memcpy(&s6, &sa, sizeof(s6));
    std::array<uint8_t, 16> bytes;
    std::memcpy(bytes.data(), &s6.sin6_addr, 16);
    NetAddress a = Ipv6(bytes, ntohs(s6.sin6_port));
    if (a.v6) a.scope_id = s6.sin6_scope_id;
    return a;
  }
  sockaddr_in s4;
  std::memcpy(&s4, &sa, sizeof(s4));
  return FromSockaddr(s4);
}

uint64_t NetAddress::HostKey() const {
  if (!v6) return ip;
  uint64_t hi = 0, lo = 0;
  std::memcpy(&hi, ip6.data(), 8);
  std::memcpy(&lo, ip6.data() + 8, 8);
  // Never equal to an IPv4 key (those fit in 32 bits). The zone is part of
  // the host: fe80::1 on two interfaces are two neighbours.
  return (hi * 0x9e3779b97f4a7c15ull ^ lo ^ (static_cast<uint64_t>(scope_id) << 32)) | (1ull << 63);
}

bool NetAddress::IsLoopback() const {
  if (!v6) return (ip >> 24) == 127;
  static constexpr std::array<uint8_t, 16> kLoop = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return ip6 == kLoop;
}

}  // namespace cosmos::rpc
