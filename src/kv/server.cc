// RespServer implementation: epoll (level-triggered) event loop, per
// connection input buffer + incremental parser, and durability-gated replies.
#include "kv/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "kv/server_conn.h"

namespace cosmos::kv {

namespace {

std::string FormatAddress(const sockaddr_in& a) {
  char ip[INET_ADDRSTRLEN] = "?";
  inet_ntop(AF_INET, &a.sin_addr, ip, sizeof(ip));
  return std::string(ip) + ":" + std::to_string(ntohs(a.sin_port));
}

}  // namespace

Result<std::unique_ptr<Waker>> Waker::Create() {
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "eventfd");
  return std::unique_ptr<Waker>(new Waker(fd));
}

Waker::~Waker() { close(fd_); }

void Waker::Wake() const {
  uint64_t one = 1;
  ssize_t r = write(fd_, &one, sizeof(one));
  (void)r;  // EAGAIN means a wake-up is already pending
}

void Waker::Drain() const {
  uint64_t v;
  while (read(fd_, &v, sizeof(v)) > 0) {
  }
}

RespServer::RespServer(Store* store, Waker* durable_waker, ServerOptions options)
    : store_(store), durable_waker_(durable_waker), options_(std::move(options)) {}

RespServer::~RespServer() {
  store_->SetTypedPutObserver(nullptr);
  for (auto& [fd, c] : conns_) close(fd);
  if (listen_fd_ >= 0) close(listen_fd_);
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

Result<int> BindListener(const std::string& bind_address, int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, bind_address.c_str(), &addr.sin_addr) != 1) {
    return Status::InvalidArgument("bad bind address '" + bind_address + "' (IPv4 expected)");
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno(errno, "socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    Status s = Status::FromErrno(errno, "bind " + bind_address + ":" + std::to_string(port));
    close(fd);
    return s;
  }
  return fd;
}

Result<std::unique_ptr<RespServer>> RespServer::Listen(Store* store, Waker* durable_waker,
                                                       ServerOptions options) {
  const int given_fd = options.listen_fd;
  std::unique_ptr<RespServer> s(new RespServer(store, durable_waker, std::move(options)));
  // Owned from here on: the destructor closes it on every error path below.
  s->listen_fd_ = given_fd;
  COSMOS_ASSIGN_OR_RETURN(s->stop_waker_, Waker::Create());
  if (s->listen_fd_ < 0) {
    COSMOS_ASSIGN_OR_RETURN(s->listen_fd_, BindListener(s->options_.bind, s->options_.port));
  }
  // Only now, with the store open, do connections queue up: a client that
  // connects sees a server that can answer.
  if (listen(s->listen_fd_, 511) != 0) return Status::FromErrno(errno, "listen");
  sockaddr_in addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(s->listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return Status::FromErrno(errno, "getsockname");
  }
  s->port_ = ntohs(addr.sin_port);
  s->epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (s->epoll_fd_ < 0) return Status::FromErrno(errno, "epoll_create1");
  for (int fd : {s->listen_fd_, s->stop_waker_->fd(), durable_waker->fd()}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (epoll_ctl(s->epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      return Status::FromErrno(errno, "epoll_ctl");
    }
  }
  DispatcherOptions dopts;
  dopts.max_bulk_len = s->options_.limits.max_bulk_len;
  dopts.security_mode = s->options_.security_mode;
  dopts.tcp_port = s->port_;
  dopts.info_clients = [raw = s.get()] { return raw->ClientsInfo(); };
  dopts.info_stats = [raw = s.get()] { return raw->StatsInfo(); };
  dopts.client_admin = [raw = s.get()](ClientSession& session,
                                       std::span<const std::string_view> args,
                                       std::string* out) { raw->ClientAdmin(session, args, out); };
  dopts.config_params = [raw = s.get()] {
    const ServerOptions& o = raw->options_;
    return std::vector<std::pair<std::string, std::string>>{
        {"port", std::to_string(raw->port_)},
        {"bind", o.bind},
        {"maxclients", std::to_string(o.max_clients)},
        {"client-query-buffer-limit", std::to_string(o.query_buffer_limit_bytes)},
        {"timeout", "0"},  // idle clients are never closed
    };
  };
  dopts.pubsub.publish = [raw = s.get()](std::string_view channel, std::string_view message) {
    return raw->Publish(channel, message);
  };
  dopts.pubsub.subscribe = [raw = s.get()](
                               ClientSession& session, std::span<const std::string_view> args,
                               std::string* out) { raw->SubscribeCommand(session, args, out); };
  dopts.pubsub.introspect = [raw = s.get()](std::span<const std::string_view> args,
                                            std::string* out) { raw->PubSubIntrospect(args, out); };
  s->dispatcher_ = std::make_unique<Dispatcher>(store, std::move(dopts));
  // Apply runs on the event-loop thread only (the Dispatcher's), so the
  // observer may touch the server's blocked-key table.
  store->SetTypedPutObserver([raw = s.get()](std::string_view key, ValueType) {
    if (!raw->blocked_keys_.empty() && raw->blocked_keys_.count(std::string(key)) != 0) {
      raw->ready_keys_.emplace_back(key);
    }
  });
  return s;
}

std::string RespServer::ClientsInfo() const {
  return "connected_clients:" + std::to_string(conns_.size()) +
         "\r\nblocked_clients:" + std::to_string(blocked_clients()) +
         "\r\nrejected_connections:" + std::to_string(rejected_clients_) +
         "\r\nprotocol_errors:" + std::to_string(protocol_errors_) +
         "\r\nclient_query_buffer_limit_closes:" + std::to_string(query_limit_closes_) +
         "\r\nclient_output_buffer_limit_closes:" + std::to_string(output_limit_closes_) + "\r\n";
}

void RespServer::Stop() {
  stop_.store(true);
  if (stop_waker_) stop_waker_->Wake();
}

Status RespServer::Run() {
  std::vector<epoll_event> events(256);
  while (!stop_.load()) {
    int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), EpollTimeoutMs());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "epoll_wait");
    }
    bool durable_event = false;
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == listen_fd_) {
        Accept();
        continue;
      }
      if (fd == stop_waker_->fd()) {
        stop_waker_->Drain();
        continue;
      }
      if (fd == durable_waker_->fd()) {
        durable_waker_->Drain();
        durable_event = true;
        continue;
      }
      auto it = conns_.find(fd);
      if (it == conns_.end()) continue;
      Conn* c = it->second.get();
      if (events[i].events & (EPOLLERR | EPOLLHUP)) {
        if (!(events[i].events & EPOLLIN)) {
          Close(c);
          continue;
        }
      }
      if (events[i].events & EPOLLOUT) {
        if (!WriteOut(c)) continue;
        if (c->reading && c->in.size() > c->in_off) ProcessInput(c);
        if (conns_.count(fd) == 0) continue;
      }
      if (events[i].events & EPOLLIN) OnReadable(c);
    }
    if (!block_deadlines_.empty()) TimeOutBlocked();
    ResumeUnblocked();
    if (!killed_.empty()) CloseKilled();
    ActiveExpire();
    // Group commit: everything applied in this loop iteration shares a flush.
    if (wrote_since_flush_) {
      wrote_since_flush_ = false;
      writes_since_kick_ = 0;
      store_->RequestFlush();
    }
    if (durable_event && !waiting_.empty()) {
      const Status failure = store_->failure();
      if (!failure.ok()) FailWaiting(failure);
    }
    if (durable_event && !waiting_.empty()) {
      const uint64_t durable = store_->durable_sequence();
      std::vector<Conn*> still;
      std::vector<Conn*> ready;
      for (Conn* c : waiting_) {
        if (c->pending_seq <= durable) {
          ready.push_back(c);
        } else {
          still.push_back(c);
        }
      }
      waiting_.swap(still);
      for (Conn* c : ready) {
        c->waiting = false;
        Release(c, durable);
        if (!WriteOut(c)) continue;
        if (c->reading && c->in.size() > c->in_off) ProcessInput(c);
      }
      ResumeUnblocked();
      if (wrote_since_flush_) {
        wrote_since_flush_ = false;
        store_->RequestFlush();
      }
    }
  }
  COSMOS_LOG_INFO("cosmos-kv: stopping, closing {} connections", conns_.size());
  for (auto& [fd, c] : conns_) close(fd);
  conns_.clear();
  waiting_.clear();
  blocked_keys_.clear();
  block_deadlines_.clear();
  block_count_ = 0;
  conns_by_id_.clear();
  channels_.clear();
  patterns_.clear();
  unblocked_.clear();
  return Status::Ok();
}

void RespServer::Accept() {
  for (;;) {
    sockaddr_in peer{};
    socklen_t peer_len = sizeof(peer);
    int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &peer_len,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        COSMOS_LOG_WARN("cosmos-kv: accept: {}", std::strerror(errno));
      }
      return;
    }
    if (conns_.size() >= options_.max_clients) {
      static const char kMsg[] = "-ERR max number of clients reached\r\n";
      ssize_t r = write(fd, kMsg, sizeof(kMsg) - 1);
      (void)r;
      close(fd);
      ++rejected_clients_;
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    auto c = std::make_unique<Conn>(fd, options_.limits);
    c->session.id = next_client_id_++;
    c->addr = FormatAddress(peer);
    sockaddr_in local{};
    socklen_t local_len = sizeof(local);
    getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len);
    c->laddr = FormatAddress(local);
    c->created = c->last_active = Clock::now();
    conns_by_id_[c->session.id] = c.get();
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      close(fd);
      continue;
    }
    conns_.emplace(fd, std::move(c));
  }
}

void RespServer::OnReadable(Conn* c) {
  if (!c->reading) return;
  c->last_active = Clock::now();
  // Read at least 16 KB, more when a large bulk is known to be coming.
  const uint64_t missing = c->parser.bulk_bytes_missing(c->in.size() - c->in_off);
  const size_t want = static_cast<size_t>(std::clamp<uint64_t>(missing, 16 << 10, 4 << 20));
  // Read into a reused scratch buffer (no zero-fill of the connection buffer).
  if (read_buffer_.size() < want) read_buffer_.resize(want);
  ssize_t r = read(c->fd, read_buffer_.data(), want);
  if (r <= 0) {
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
    Close(c);
    return;
  }
  c->in.append(read_buffer_.data(), static_cast<size_t>(r));
  // Checked before parsing, like Redis: complete pipelined requests count too,
  // so the buffer never holds more than the limit plus one read.
  const size_t buffered = c->in.size() - c->in_off;
  if (options_.query_buffer_limit_bytes != 0 && buffered > options_.query_buffer_limit_bytes) {
    ++query_limit_closes_;
    CloseForLimit(c, "query buffer", buffered, options_.query_buffer_limit_bytes);
    return;
  }
  ProcessInput(c);
}

void RespServer::ProcessInput(Conn* c) {
  const int fd = c->fd;
  while (c->in_off < c->in.size() && !c->close_after_write && !c->blocked && !c->killed) {
    if (c->out.size() - c->out_off + c->pending.size() > options_.output_backpressure_bytes) {
      c->reading = false;  // resume when the client drains its replies
      break;
    }
    size_t consumed = 0;
    std::string_view input(c->in.data() + c->in_off, c->in.size() - c->in_off);
    auto outcome = c->parser.Parse(input, &consumed, &c->args);
    if (outcome == RespParser::Outcome::kNeedMore) break;
    if (outcome == RespParser::Outcome::kError) {
      ++protocol_errors_;
      AppendError(&c->pending, "ERR " + c->parser.error());
      c->close_after_write = true;
      c->in.clear();
      c->in_off = 0;
      break;
    }
    if (!c->args.empty()) {
      c->last_command.assign(c->args[0].substr(0, 32));
      const uint64_t seq = dispatcher_->Execute(c->session, c->args, &c->pending);
      if (c->session.shutdown) {
        COSMOS_LOG_INFO("cosmos-kv: SHUTDOWN by client id={}", c->session.id);
        Stop();
      }
      c->pending_seq = std::max(c->pending_seq, seq);
      if (c->session.quit) c->close_after_write = true;
      if (c->session.block.blocked) BlockClient(c);
      if (!ready_keys_.empty()) ServeReadyKeys();
    }
    c->in_off += consumed;
    if (OverOutputLimit(c)) {
      ++output_limit_closes_;
      CloseForLimit(c, "output buffer", c->out.size() - c->out_off + c->pending.size(),
                    options_.output_buffer_limit_bytes);
      return;
    }
  }
  // Drop consumed input; keep the buffer when a partial request is pending.
  if (c->in_off == c->in.size()) {
    c->in.clear();
    c->in_off = 0;
    if (c->in.capacity() > (1u << 20)) c->in.shrink_to_fit();
  } else if (c->in_off > (64u << 10) && c->in_off * 2 > c->in.size()) {
    c->in.erase(0, c->in_off);
    c->in_off = 0;
  }
  if (c->pending.empty()) {
    if (c->close_after_write) WriteOut(c);
    return;
  }
  const uint64_t durable = store_->durable_sequence();
  if (c->pending_seq <= durable) {
    Release(c, durable);
    WriteOut(c);
  } else {
    // Group commit: the flusher is kicked at the end of this loop iteration,
    // or earlier once enough writes wait, so it syncs one group while this
    // loop keeps parsing the next (pipelining across clients).
    wrote_since_flush_ = true;
    if (options_.early_commit_clients > 0 &&
        ++writes_since_kick_ >= options_.early_commit_clients) {
      writes_since_kick_ = 0;
      store_->RequestFlush();
    }
    if (!c->waiting) {
      c->waiting = true;
      waiting_.push_back(c);
    }
    UpdateEvents(c);
  }
  (void)fd;
}

// The store failed: replies held back for writes that will never be durable
// are dropped. Each such client gets one MISCONF error (its pipelined replies
// cannot be told apart any more) and the connection is closed after it, so no
// client ever sees +OK for a write that is not durable.
void RespServer::FailWaiting(const Status& failure) {
  std::vector<Conn*> failed;
  failed.swap(waiting_);
  for (Conn* c : failed) {
    c->waiting = false;
    c->pending.clear();
    c->pending_seq = 0;
    AppendError(&c->out,
                "MISCONF cosmos-kv storage failed; restart to recover the durable "
                "state (" +
                    failure.message() + ")");
    c->close_after_write = true;
    WriteOut(c);
  }
}

void RespServer::Release(Conn* c, uint64_t durable) {
  (void)durable;
  if (c->out_off == c->out.size()) {
    c->out.clear();
    c->out_off = 0;
    c->out.swap(c->pending);
  } else {
    c->out.append(c->pending);
    c->pending.clear();
  }
  c->pending_seq = 0;
}

bool RespServer::WriteOut(Conn* c) {
  while (c->out_off < c->out.size()) {
    ssize_t w = write(c->fd, c->out.data() + c->out_off, c->out.size() - c->out_off);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      Close(c);
      return false;
    }
    c->out_off += static_cast<size_t>(w);
  }
  if (c->out_off == c->out.size()) {
    c->out.clear();
    c->out_off = 0;
    if (c->out.capacity() > (4u << 20)) c->out.shrink_to_fit();
    if (c->close_after_write && c->pending.empty()) {
      Close(c);
      return false;
    }
    if (!c->reading && c->pending.size() <= options_.output_backpressure_bytes) {
      c->reading = true;
    }
  }
  UpdateEvents(c);
  return true;
}

void RespServer::UpdateEvents(Conn* c) {
  const bool want_write = c->out_off < c->out.size();
  // Stop polling input while the client is over its output budget or is
  // being closed; level-triggered epoll re-reports unread bytes later.
  const bool want_read = c->reading && !c->close_after_write;
  uint32_t events = (want_read ? EPOLLIN : 0u) | (want_write ? EPOLLOUT : 0u);
  const uint32_t current = (c->want_write ? EPOLLOUT : 0u) | (c->reading_registered ? EPOLLIN : 0u);
  if (events == current) return;
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = c->fd;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c->fd, &ev);
  c->want_write = want_write;
  c->reading_registered = want_read;
}

bool RespServer::OverOutputLimit(const Conn* c) const {
  const size_t limit = options_.output_buffer_limit_bytes;
  return limit != 0 && c->out.size() - c->out_off + c->pending.size() > limit;
}

// The client's replies (also those waiting for durability) are dropped with
// the connection; the writes it sent stay applied, as when a client
// disconnects before reading its replies.
void RespServer::CloseForLimit(Conn* c, const char* what, size_t bytes, size_t limit) {
  COSMOS_LOG_WARN("cosmos-kv: closing client id={}: {} of {} bytes exceeds its limit of {} bytes",
                  c->session.id, what, bytes, limit);
  Close(c);
}

void RespServer::Close(Conn* c) {
  const int fd = c->fd;
  if (c->blocked) UnblockClient(c);
  while (!c->channels.empty()) Unsubscribe(c, std::string(c->channels.back()), false, nullptr);
  while (!c->patterns.empty()) Unsubscribe(c, std::string(c->patterns.back()), true, nullptr);
  conns_by_id_.erase(c->session.id);
  unblocked_.erase(std::remove(unblocked_.begin(), unblocked_.end(), c), unblocked_.end());
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  close(fd);
  if (c->waiting) {
    waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), c), waiting_.end());
  }
  conns_.erase(fd);
}

void RespServer::BlockClient(Conn* c) {
  c->blocked = true;
  ++block_count_;
  const BlockRequest& req = c->session.block;
  for (const std::string& key : req.keys) blocked_keys_[key].push_back(c);
  // Timeouts beyond ~35 years are as good as none (and would overflow the clock).
  if (req.timeout_ms > 0 && req.timeout_ms < (int64_t{1} << 40)) {
    c->deadline =
        block_deadlines_.emplace(Clock::now() + std::chrono::milliseconds(req.timeout_ms), c);
    c->has_deadline = true;
  }
}

void RespServer::UnblockClient(Conn* c) {
  for (const std::string& key : c->session.block.keys) {
    auto it = blocked_keys_.find(key);
    if (it == blocked_keys_.end()) continue;
    std::erase(it->second, c);
    if (it->second.empty()) blocked_keys_.erase(it);
  }
  if (c->has_deadline) block_deadlines_.erase(c->deadline);
  c->has_deadline = false;
  c->blocked = false;
  --block_count_;
  c->session.block = BlockRequest{};
}

// Like Redis's handleClientsBlockedOnKeys: after each command, every key
// that received a value while clients wait on it serves them in the order
// they blocked, for as long as it holds a value of the type they wait for.
// A served command may make further keys ready (BLMOVE pushes): loop.
void RespServer::ServeReadyKeys() {
  std::vector<std::string_view> views;
  while (!ready_keys_.empty()) {
    std::vector<std::string> keys;
    keys.swap(ready_keys_);
    for (const std::string& key : keys) {
      for (;;) {
        auto it = blocked_keys_.find(key);
        if (it == blocked_keys_.end()) break;
        Conn* b = it->second.front();
        auto info = store_->Lookup(key);
        if (!info.ok() || !info->has_value() || (*info)->type != b->session.block.type) break;
        BlockRequest req = std::move(b->session.block);
        b->session.block = BlockRequest{};
        views.assign(req.args.begin(), req.args.end());
        const uint64_t seq = dispatcher_->Execute(b->session, views, &b->pending);
        if (b->session.block.blocked) {  // nothing served after all: keep waiting
          b->session.block = std::move(req);
          break;
        }
        b->session.block = std::move(req);  // UnblockClient needs its keys
        UnblockClient(b);
        b->pending_seq = std::max(b->pending_seq, seq);
        unblocked_.push_back(b);
      }
    }
  }
}

void RespServer::TimeOutBlocked() {
  const auto now = Clock::now();
  while (!block_deadlines_.empty() && block_deadlines_.begin()->first <= now) {
    Conn* b = block_deadlines_.begin()->second;
    // Redis 7.0: a nil array for every blocking command (RESP3: the null).
    b->pending.append(b->session.resp == 3 ? "_\r\n" : "*-1\r\n");
    UnblockClient(b);
    unblocked_.push_back(b);
  }
}

void RespServer::ResumeUnblocked() {
  while (!unblocked_.empty()) {
    Conn* b = unblocked_.front();
    unblocked_.erase(unblocked_.begin());
    ProcessInput(b);  // releases its reply (once durable) and reads on
  }
}

int RespServer::EpollTimeoutMs() {
  int64_t ms = -1;  // nothing timed: sleep until a socket or the flusher wakes us
  if (!block_deadlines_.empty()) {
    const auto left = block_deadlines_.begin()->first - Clock::now();
    ms = std::max<int64_t>(std::chrono::ceil<std::chrono::milliseconds>(left).count(), 0);
  }
  if (const int64_t next = store_->NextExpiry(); next != 0) {
    const int64_t due = std::max(next, expire_retry_after_ms_) - store_->NowMs();
    const int64_t wait = std::max<int64_t>(due, 0);
    ms = ms < 0 ? wait : std::min(ms, wait);
  }
  return static_cast<int>(std::min<int64_t>(ms, INT32_MAX));
}

void RespServer::ActiveExpire() {
  const int64_t next = store_->NextExpiry();
  const int64_t now = store_->NowMs();
  if (next == 0 || next > now || now < expire_retry_after_ms_) return;
  const std::vector<std::string> keys = store_->ExpiredKeys(kActiveExpireBatch);
  if (keys.empty()) return;
  WriteBatch batch;
  for (const std::string& k : keys) batch.Delete(k);
  auto seq = store_->Apply(batch);
  if (!seq.ok()) {
    // Log full or store failed: the keys stay (lazily expired on access);
    // retry in a second instead of spinning.
    expire_retry_after_ms_ = now + 1000;
    COSMOS_LOG_WARN("cosmos-kv: active expiry could not delete {} keys: {}", keys.size(),
                    seq.status().ToString());
    return;
  }
  expired_keys_ += keys.size();
  wrote_since_flush_ = true;  // committed with the next group
}

std::string RespServer::StatsInfo() const {
  return "expired_keys:" + std::to_string(expired_keys_) + "\r\n";
}

}  // namespace cosmos::kv
