// RespServer over a real TCP socket with an in-memory log device: a write
// whose group commit fails is answered with a MISCONF error and the
// connection is closed; it never hangs and never gets +OK.
#include "kv/server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "kv/log_device_memory.h"
#include "kv/store.h"

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

class ServerFixture : public ::testing::Test {
 protected:
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

TEST_F(ServerFixture, DurableWriteIsAcknowledged) {
  int fd = ConnectTo(server_->port());
  ASSERT_GE(fd, 0);
  EXPECT_EQ(Exchange(fd, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n", 5), "+OK\r\n");
  EXPECT_EQ(Exchange(fd, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", 7), "$1\r\nv\r\n");
  close(fd);
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
  close(fd);
}

}  // namespace
}  // namespace cosmos::kv
