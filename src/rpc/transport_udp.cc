// Kernel UDP backend of Transport: batched syscalls, GSO on send, GRO on receive.
#include "rpc/transport_udp.h"

#include <arpa/inet.h>
#include <errno.h>
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

class UdpTransport final : public Transport {
 public:
  UdpTransport(int fd, NetAddress local, bool gso, bool gro, size_t rcvbuf, size_t max_dgram,
               bool congestion_control_local)
      : fd_(fd),
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
      const sockaddr_in to = batch[0].to.ToSockaddr();
      ssize_t r;
      do {
        r = ::sendto(fd_, batch[0].data, batch[0].len, MSG_DONTWAIT,
                     reinterpret_cast<const sockaddr*>(&to), sizeof(to));
      } while (r < 0 && errno == EINTR);
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
      sockaddr_in addrs[kSendBatch];
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
        addrs[nmsg] = first.to.ToSockaddr();
        mmsghdr& m = msgs[nmsg];
        std::memset(&m, 0, sizeof(m));
        m.msg_hdr.msg_name = &addrs[nmsg];
        m.msg_hdr.msg_namelen = sizeof(sockaddr_in);
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
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return max_dgram_;
    int mtu = 0;
    socklen_t len = sizeof(mtu);
    const sockaddr_in sa = peer.ToSockaddr();
    const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) == 0 &&
                    ::getsockopt(fd, IPPROTO_IP, IP_MTU, &mtu, &len) == 0 && mtu > kUdpIpv4Overhead;
    ::close(fd);
    if (!ok) return max_dgram_;  // no route now: the send itself will report it
    return std::min(max_dgram_, static_cast<size_t>(mtu - kUdpIpv4Overhead));
  }
  const TransportStats& stats() const override { return stats_; }
  std::string_view name() const override { return name_; }
  bool congestion_controlled(NetAddress peer) const override {
    if (congestion_control_local_) return true;
    if ((peer.ip >> 24) == 127) return false;
    // Any address of this host is reached through the loopback device: the
    // source address the kernel picks for it is the address itself.
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return true;
    const sockaddr_in sa = peer.ToSockaddr();
    sockaddr_in src{};
    socklen_t len = sizeof(src);
    const bool local = ::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) == 0 &&
                       ::getsockname(fd, reinterpret_cast<sockaddr*>(&src), &len) == 0 &&
                       NetAddress::FromSockaddr(src).ip == peer.ip;
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
      h.msg_namelen = sizeof(sockaddr_in);
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
    sockaddr_in* addrs = rx_addrs_;
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
  sockaddr_in rx_addrs_[kRecvBatch] = {};
  alignas(cmsghdr) char rx_cmsgs_[kRecvBatch][CMSG_SPACE(sizeof(int))] = {};
  size_t rx_dirty_ = kRecvBatch;  // headers to reset before the next recvmmsg
  bool expect_more_ = false;      // the last receive suggests a backlog: use recvmmsg
  TransportStats stats_;
  std::string name_;
};

}  // namespace

Result<std::unique_ptr<Transport>> OpenUdpTransport(const UdpTransportOptions& options) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
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
  int pmtu = IP_PMTUDISC_DO;
  if (::setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof(pmtu)) != 0) {
    return fail("udp transport: IP_MTU_DISCOVER");
  }
  sockaddr_in sa = options.bind.ToSockaddr();
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
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
      new UdpTransport(fd, local, gso, gro, static_cast<size_t>(actual), options.max_datagram,
                       options.congestion_control_local));
}

std::string NetAddress::ToString() const {
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
  if (host == "localhost") host = "127.0.0.1";
  in_addr a{};
  if (::inet_pton(AF_INET, host.c_str(), &a) != 1) {
    return Status::InvalidArgument("address '" + std::string(text) + "': bad IPv4 address");
  }
  char* end = nullptr;
  long p = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end != '\0' || p < 0 || p > 65535) {
    return Status::InvalidArgument("address '" + std::string(text) + "': bad port");
  }
  return NetAddress{ntohl(a.s_addr), static_cast<uint16_t>(p)};
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

}  // namespace cosmos::rpc
