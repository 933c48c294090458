// RespServer over a real TCP socket with an in-memory log device: an
// acknowledged write is in the durable image; a write whose group commit
// fails is answered with a MISCONF error and the connection is closed (never
// +OK, never a hang); clients over the query or output buffer limit are
// closed while the server keeps serving others.
#include "kv/server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "kv/log_device_memory.h"
#include "kv/store.h"
#include "kv/value_codec.h"

namespace cosmos::kv {
namespace {

int ConnectTo(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  // A hang (the bug this file guards against) ends the read as a failure
  // instead of blocking the suite; never reached when the server works.
  timeval tv{.tv_sec = 30, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Sends `request` and reads until the peer closes or `want` bytes arrived.
std::string Exchange(int fd, const std::string& request, size_t want) {
  EXPECT_EQ(send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  std::string got;
  char buf[4096];
  while (got.size() < want) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

// Sends `chunk` repeatedly (up to `max_bytes` in all) until the server
// closes the connection. Returns the errno of the failed send (ECONNRESET or
// EPIPE once the peer closed), 0 if every send succeeded, EAGAIN if a send
// timed out (the hang guard: the server neither read nor closed).
int SendUntilClosed(int fd, const std::string& chunk, size_t max_bytes) {
  timeval tv{.tv_sec = 30, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  for (size_t sent = 0; sent < max_bytes; sent += chunk.size()) {
    if (send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL) < 0) return errno;
  }
  return 0;
}

// Reads one INFO field (e.g. "client_query_buffer_limit_closes", any section) over a new
// connection; "" if absent.
std::string InfoField(int port, const std::string& field) {
  int fd = ConnectTo(port);
  if (fd < 0) return "";
  const std::string reply = Exchange(fd, "*1\r\n$4\r\nINFO\r\n", 1);
  std::string all = reply;
  // The reply is one bulk: read until its announced length arrived.
  const size_t header_end = all.find("\r\n");
  if (all.rfind("$", 0) == 0 && header_end != std::string::npos) {
    const size_t want = header_end + 2 + std::stoul(all.substr(1, header_end - 1)) + 2;
    char buf[4096];
    while (all.size() < want) {
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      all.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  const size_t at = all.find(field + ":");
  if (at == std::string::npos) return "";
  const size_t begin = at + field.size() + 1;
  return all.substr(begin, all.find("\r\n", begin) - begin);
}

class ServerFixture : public ::testing::Test {
 protected:
  // Server options for this fixture (a subclass tightens limits).
  virtual void Configure(ServerOptions* /*options*/) {}

  void SetUp() override {
    auto waker = Waker::Create();
    ASSERT_TRUE(waker.ok());
    waker_ = std::move(*waker);
    StoreOptions so;
    so.on_durable = [w = waker_.get()](uint64_t) { w->Wake(); };
    auto store = Store::Open(&dev_, so);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    ServerOptions opts;
    opts.port = 0;
    Configure(&opts);
    auto server = RespServer::Listen(store_.get(), waker_.get(), opts);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    thread_ = std::thread([this] { ASSERT_TRUE(server_->Run().ok()); });
  }
  void TearDown() override {
    if (server_) server_->Stop();
    if (thread_.joinable()) thread_.join();
    server_.reset();
    store_.reset();
  }

  MemoryLogDevice dev_{1 << 20};
  std::unique_ptr<Waker> waker_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<RespServer> server_;
  std::thread thread_;
};

// The +OK is a durability promise: at the moment it arrives, a restart from
// the device's durable image (what survives power loss) must find the value.
TEST_F(ServerFixture, DurableWriteIsAcknowledged) {
  int fd = ConnectTo(server_->port());
  ASSERT_GE(fd, 0);
  EXPECT_EQ(Exchange(fd, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n", 5), "+OK\r\n");
  const std::string image = dev_.DurableImage();
  EXPECT_EQ(Exchange(fd, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", 7), "$1\r\nv\r\n");
  close(fd);

  MemoryLogDevice restarted(image.size());
  ASSERT_TRUE(restarted.Write(0, image.data(), image.size()).ok());
  ASSERT_TRUE(restarted.Flush(0, image.size()).ok());
  auto reopened = Store::Open(&restarted, StoreOptions{});
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  std::string value;
  auto found = (*reopened)->Get("k", &value);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_TRUE(*found);
  EXPECT_EQ(value, "v");
}

TEST_F(ServerFixture, FailedCommitAnswersMisconfAndClosesInsteadOfHanging) {
  int fd = ConnectTo(server_->port());
  ASSERT_GE(fd, 0);
  EXPECT_EQ(Exchange(fd, "*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n", 5), "+OK\r\n");
  dev_.FailNextPersists(1);
  // Two pipelined writes wait on the failing commit: the client gets one
  // error and then EOF (Exchange returns at EOF), never +OK.
  const std::string reply = Exchange(fd,
                                     "*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\n2\r\n"
                                     "*3\r\n$3\r\nSET\r\n$1\r\nc\r\n$1\r\n3\r\n",
                                     1 << 20);
  EXPECT_EQ(reply.rfind("-MISCONF", 0), 0u) << reply;
  EXPECT_EQ(reply.find("+OK"), std::string::npos) << reply;
  close(fd);
  EXPECT_EQ(store_->failure().code(), StatusCode::kFailedPrecondition);
  // A new client is told the store failed, too.
  fd = ConnectTo(server_->port());
  ASSERT_GE(fd, 0);
  const std::string later = Exchange(fd, "*3\r\n$3\r\nSET\r\n$1\r\nd\r\n$1\r\n4\r\n", 8);
  EXPECT_EQ(later.rfind("-MISCONF", 0), 0u) << later;
  // Said once, with the cause (the store's message does not repeat it).
  EXPECT_EQ(later.find("restart to recover"), later.rfind("restart to recover")) << later;
  EXPECT_NE(later.find("a commit to the log failed"), std::string::npos) << later;
  close(fd);
}

// Small limits so the attackers below reach them after a few hundred KB.
class LimitedServer : public ServerFixture {
 protected:
  static constexpr size_t kQueryLimit = 256u << 10;
  static constexpr size_t kOutputLimit = 1u << 20;
  void Configure(ServerOptions* options) override {
    options->query_buffer_limit_bytes = kQueryLimit;
    options->output_buffer_limit_bytes = kOutputLimit;
  }

  // The server is still healthy for everybody else.
  void ExpectServing() {
    int fd = ConnectTo(server_->port());
    ASSERT_GE(fd, 0);
    EXPECT_EQ(Exchange(fd, "*1\r\n$4\r\nPING\r\n", 7), "+PONG\r\n");
    close(fd);
  }
};

// Attacker 1a: announces a bulk larger than the query limit (but within
// proto-max-bulk-len) and keeps sending its bytes.
TEST_F(LimitedServer, QueryBufferLimitClosesAnEndlessBulk) {
  int fd = ConnectTo(server_->port());
  ASSERT_GE(fd, 0);
  const std::string header = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$400000000\r\n";
  ASSERT_EQ(send(fd, header.data(), header.size(), 0), static_cast<ssize_t>(header.size()));
  const int err = SendUntilClosed(fd, std::string(16 << 10, 'x'), 64u << 20);
  EXPECT_TRUE(err == ECONNRESET || err == EPIPE) << "send: " << std::strerror(err);
  close(fd);
  EXPECT_EQ(InfoField(server_->port(), "client_query_buffer_limit_closes"), "1");
  ExpectServing();
}

// Attacker 1b: an array whose elements never end (each bulk is small).
TEST_F(LimitedServer, QueryBufferLimitClosesAnEndlessArray) {
  int fd = ConnectTo(server_->port());
  ASSERT_GE(fd, 0);
  const std::string header = "*1000000\r\n$4\r\nMSET\r\n";
  ASSERT_EQ(send(fd, header.data(), header.size(), 0), static_cast<ssize_t>(header.size()));
  std::string chunk;
  while (chunk.size() < (16u << 10)) chunk += "$1\r\na\r\n";
  const int err = SendUntilClosed(fd, chunk, 64u << 20);
  EXPECT_TRUE(err == ECONNRESET || err == EPIPE) << "send: " << std::strerror(err);
  close(fd);
  EXPECT_EQ(InfoField(server_->port(), "client_query_buffer_limit_closes"), "1");
  ExpectServing();
}

// Attacker 2: pipelines GETs of a 64 KB value and never reads a reply. Its
// unsent replies pass the output limit and the server closes it (without
// the limit the server stops reading at output_backpressure_bytes and holds
// the replies for as long as the client stays connected).
TEST_F(LimitedServer, OutputBufferLimitClosesAClientThatNeverReads) {
  int fd = ConnectTo(server_->port());
  ASSERT_GE(fd, 0);
  const std::string value(64 << 10, 'v');
  const std::string set =
      "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$" + std::to_string(value.size()) + "\r\n" + value + "\r\n";
  EXPECT_EQ(Exchange(fd, set, 5), "+OK\r\n");
  int small = 4096;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  std::string gets;
  while (gets.size() < (16u << 10)) gets += "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
  // 64 MB of GETs would ask for ~300 GB of replies.
  const int err = SendUntilClosed(fd, gets, 64u << 20);
  EXPECT_TRUE(err == ECONNRESET || err == EPIPE) << "send: " << std::strerror(err);
  close(fd);
  EXPECT_EQ(InfoField(server_->port(), "client_output_buffer_limit_closes"), "1");
  ExpectServing();
}

// ---- Blocking commands (BLPOP, BLMOVE, ...) ----

std::string Cmd(std::initializer_list<std::string_view> args) {
  std::string s = "*" + std::to_string(args.size()) + "\r\n";
  for (auto a : args) s += "$" + std::to_string(a.size()) + "\r\n" + std::string(a) + "\r\n";
  return s;
}

// Waits (without a deadline deciding the outcome) until INFO reports
// `n` blocked clients, so a push is sent only after the pop is parked.
void AwaitBlocked(int port, const std::string& n) {
  while (InfoField(port, "blocked_clients") != n) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

// A parked BLPOP is served by another client's push, after its pop is
// durable: a restart from the durable image at the moment the reply arrives
// no longer holds the element. Commands pipelined behind the BLPOP wait for
// it and then run in order.
TEST_F(ServerFixture, BlockedPopIsServedByAnotherClientsPush) {
  int a = ConnectTo(server_->port());
  int b = ConnectTo(server_->port());
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  const std::string blpop = Cmd({"BLPOP", "none", "k", "0"}) + Cmd({"PING"});
  ASSERT_EQ(send(a, blpop.data(), blpop.size(), 0), static_cast<ssize_t>(blpop.size()));
  AwaitBlocked(server_->port(), "1");
  EXPECT_EQ(Exchange(b, Cmd({"RPUSH", "k", "v1", "v2"}), std::string_view(":2\r\n").size()),
            ":2\r\n");
  const std::string want = "*2\r\n$1\r\nk\r\n$2\r\nv1\r\n+PONG\r\n";
  EXPECT_EQ(Exchange(a, "", want.size()), want);
  const std::string image = dev_.DurableImage();
  EXPECT_EQ(InfoField(server_->port(), "blocked_clients"), "0");
  EXPECT_EQ(
      Exchange(b, Cmd({"LRANGE", "k", "0", "-1"}), std::string_view("*1\r\n$2\r\nv2\r\n").size()),
      "*1\r\n$2\r\nv2\r\n");
  close(a);
  close(b);

  MemoryLogDevice restarted(image.size());
  ASSERT_TRUE(restarted.Write(0, image.data(), image.size()).ok());
  ASSERT_TRUE(restarted.Flush(0, image.size()).ok());
  auto reopened = Store::Open(&restarted, StoreOptions{});
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  ValueType type;
  std::string value;
  std::vector<std::string> deltas;
  auto found = (*reopened)->GetValue("k", &type, &value, &deltas);
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_TRUE(*found);
  auto folded = FoldTypedValue(value, deltas);
  ASSERT_TRUE(folded.ok()) << folded.status();
  auto list = DecodeList(*folded);
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 1u);  // v1 was popped durably before the reply
  EXPECT_EQ(list->front(), "v2");
}

// Clients blocked on one key are served first come, first served, one
// element each; BLMOVE's push wakes a client blocked on its destination.
TEST_F(ServerFixture, BlockedClientsAreServedInOrderAndChainThroughBlmove) {
  int first = ConnectTo(server_->port());
  int second = ConnectTo(server_->port());
  int mover = ConnectTo(server_->port());
  int pusher = ConnectTo(server_->port());
  const std::string pop = Cmd({"BRPOP", "k", "0"});
  ASSERT_EQ(send(first, pop.data(), pop.size(), 0), static_cast<ssize_t>(pop.size()));
  AwaitBlocked(server_->port(), "1");
  ASSERT_EQ(send(second, pop.data(), pop.size(), 0), static_cast<ssize_t>(pop.size()));
  AwaitBlocked(server_->port(), "2");
  const std::string move = Cmd({"BLMOVE", "src", "k", "LEFT", "RIGHT", "0"});
  ASSERT_EQ(send(mover, move.data(), move.size(), 0), static_cast<ssize_t>(move.size()));
  AwaitBlocked(server_->port(), "3");
  EXPECT_EQ(Exchange(pusher, Cmd({"RPUSH", "src", "m"}), std::string_view(":1\r\n").size()),
            ":1\r\n");
  EXPECT_EQ(Exchange(mover, "", std::string_view("$1\r\nm\r\n").size()), "$1\r\nm\r\n");
  EXPECT_EQ(Exchange(first, "", std::string_view("*2\r\n$1\r\nk\r\n$1\r\nm\r\n").size()),
            "*2\r\n$1\r\nk\r\n$1\r\nm\r\n");
  EXPECT_EQ(InfoField(server_->port(), "blocked_clients"), "1");  // second still waits
  EXPECT_EQ(Exchange(pusher, Cmd({"LPUSH", "k", "n"}), std::string_view(":1\r\n").size()),
            ":1\r\n");
  EXPECT_EQ(Exchange(second, "", std::string_view("*2\r\n$1\r\nk\r\n$1\r\nn\r\n").size()),
            "*2\r\n$1\r\nk\r\n$1\r\nn\r\n");
  for (int fd : {first, second, mover, pusher}) close(fd);
}

// Timeouts answer a nil array (Redis 7.0, BLMOVE included); a client that disconnects while blocked
// is forgotten and takes nothing; a sorted-set waiter ignores a list under its key.
TEST_F(ServerFixture, BlockedClientsTimeOutOrLeave) {
  int fd = ConnectTo(server_->port());
  EXPECT_EQ(Exchange(fd, Cmd({"BLPOP", "k", "0.01"}), std::string_view("*-1\r\n").size()),
            "*-1\r\n");
  EXPECT_EQ(Exchange(fd, Cmd({"BLMOVE", "k", "d", "LEFT", "LEFT", "0.01"}),
                     std::string_view("*-1\r\n").size()),
            "*-1\r\n");
  EXPECT_EQ(Exchange(fd, Cmd({"BZPOPMIN", "k", "0.01"}), std::string_view("*-1\r\n").size()),
            "*-1\r\n");
  int gone = ConnectTo(server_->port());
  const std::string pop = Cmd({"BLPOP", "k", "0"});
  ASSERT_EQ(send(gone, pop.data(), pop.size(), 0), static_cast<ssize_t>(pop.size()));
  AwaitBlocked(server_->port(), "1");
  close(gone);
  AwaitBlocked(server_->port(), "0");
  int zwait = ConnectTo(server_->port());
  const std::string bz = Cmd({"BZPOPMAX", "k", "0"});
  ASSERT_EQ(send(zwait, bz.data(), bz.size(), 0), static_cast<ssize_t>(bz.size()));
  AwaitBlocked(server_->port(), "1");
  EXPECT_EQ(Exchange(fd, Cmd({"RPUSH", "k", "a"}), std::string_view(":1\r\n").size()), ":1\r\n");
  EXPECT_EQ(Exchange(fd, Cmd({"LLEN", "k"}), std::string_view(":1\r\n").size()),
            ":1\r\n");  // nobody took it
  EXPECT_EQ(InfoField(server_->port(), "blocked_clients"), "1");
  EXPECT_EQ(Exchange(fd, Cmd({"DEL", "k"}), std::string_view(":1\r\n").size()), ":1\r\n");
  EXPECT_EQ(Exchange(fd, Cmd({"ZADD", "k", "1", "x", "2", "y"}), std::string_view(":2\r\n").size()),
            ":2\r\n");
  EXPECT_EQ(Exchange(zwait, "", std::string_view("*3\r\n$1\r\nk\r\n$1\r\ny\r\n$1\r\n2\r\n").size()),
            "*3\r\n$1\r\nk\r\n$1\r\ny\r\n$1\r\n2\r\n");
  close(zwait);
  close(fd);
}

// The pop that serves a blocked client is a write like any other: if its
// commit fails the client gets MISCONF, never the element.
TEST_F(ServerFixture, BlockedPopWhoseCommitFailsIsNotAcknowledged) {
  int a = ConnectTo(server_->port());
  int b = ConnectTo(server_->port());
  const std::string pop = Cmd({"BLPOP", "k", "0"});
  ASSERT_EQ(send(a, pop.data(), pop.size(), 0), static_cast<ssize_t>(pop.size()));
  AwaitBlocked(server_->port(), "1");
  dev_.FailNextPersists(1000);
  const std::string pushed = Exchange(b, Cmd({"RPUSH", "k", "v"}), 1 << 20);
  EXPECT_EQ(pushed.rfind("-MISCONF", 0), 0u) << pushed;
  const std::string popped = Exchange(a, "", 1 << 20);
  EXPECT_EQ(popped.rfind("-MISCONF", 0), 0u) << popped;
  EXPECT_EQ(popped.find("$1\r\nv"), std::string::npos) << popped;
  close(a);
  close(b);
}

// ---- Active expiry and idling ----

// A key whose TTL passes is deleted by the server without being touched
// (DBSIZE, which counts untouched expired keys, drops to 0), and the
// deletion goes through the log: a restart from the durable image with a
// clock from before the expiry does not find the key.
TEST_F(ServerFixture, ActiveExpiryDeletesThroughTheLog) {
  int fd = ConnectTo(server_->port());
  const int64_t before = store_->NowMs();
  EXPECT_EQ(Exchange(fd, Cmd({"SET", "k", "v", "PX", "30"}), 5), "+OK\r\n");
  EXPECT_EQ(Exchange(fd, Cmd({"SET", "keep", "v", "EX", "3600"}), 5), "+OK\r\n");
  for (int i = 0;; ++i) {  // hang guard only: active expiry needs ~30 ms
    ASSERT_LT(i, 5000) << "the expired key was never deleted";
    if (Exchange(fd, Cmd({"DBSIZE"}), 4) == ":1\r\n") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(InfoField(server_->port(), "expired_keys"), "1");
  // The delete is committed with the next group: a write after it is
  // durable only once the delete is.
  EXPECT_EQ(Exchange(fd, Cmd({"SET", "later", "x"}), 5), "+OK\r\n");
  const std::string image = dev_.DurableImage();
  close(fd);
  MemoryLogDevice restarted(image.size());
  ASSERT_TRUE(restarted.Write(0, image.data(), image.size()).ok());
  ASSERT_TRUE(restarted.Flush(0, image.size()).ok());
  StoreOptions past;
  past.now_ms = [before] { return before; };  // k's own expiry has not passed yet
  auto reopened = Store::Open(&restarted, past);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  auto k = (*reopened)->Lookup("k");
  ASSERT_TRUE(k.ok());
  EXPECT_FALSE(k->has_value()) << "the expiry was not logged as a delete";
  auto keep = (*reopened)->Lookup("keep");
  ASSERT_TRUE(keep.ok());
  EXPECT_TRUE(keep->has_value());
}

// CPU time the server's event-loop thread used so far.
std::chrono::nanoseconds ThreadCpu(std::thread& t) {
  clockid_t clock;
  EXPECT_EQ(pthread_getcpuclockid(t.native_handle(), &clock), 0);
  timespec ts{};
  clock_gettime(clock, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

// With clients parked (one forever, one with a long timeout) and keys that
// expire in an hour, the event loop sleeps: it uses (almost) no CPU over a
// second. CPU time, not wall time, so a loaded machine cannot fail it; a
// loop that polls with a zero timeout uses the whole second.
TEST_F(ServerFixture, IdleServerWithParkedClientsAndTtlsSleeps) {
  int fd = ConnectTo(server_->port());
  EXPECT_EQ(Exchange(fd, Cmd({"SET", "k", "v", "EX", "3600"}), 5), "+OK\r\n");
  int forever = ConnectTo(server_->port());
  int later = ConnectTo(server_->port());
  const std::string a = Cmd({"BLPOP", "x", "0"}), b = Cmd({"BZPOPMIN", "y", "100"});
  ASSERT_EQ(send(forever, a.data(), a.size(), 0), static_cast<ssize_t>(a.size()));
  ASSERT_EQ(send(later, b.data(), b.size(), 0), static_cast<ssize_t>(b.size()));
  AwaitBlocked(server_->port(), "2");
  const auto cpu_before = ThreadCpu(thread_);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const auto used = ThreadCpu(thread_) - cpu_before;
  EXPECT_LT(used, std::chrono::milliseconds(100))
      << "event loop used " << std::chrono::duration_cast<std::chrono::milliseconds>(used).count()
      << " ms of CPU in 1 s of idling";
  for (int f : {fd, forever, later}) close(f);
}

}  // namespace
}  // namespace cosmos::kv
