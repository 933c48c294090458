// Tests of the sd_notify datagram protocol against a fake service manager
// socket (a path socket and an abstract one).
#include "service_notify.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace cosmos::app {
namespace {

// A datagram socket bound to `name` ("/path" or "@abstract").
int BindFakeManager(const std::string& name) {
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, name.data(), name.size());
  if (name[0] == '@') addr.sun_path[0] = '\0';
  const socklen_t length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
  EXPECT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), length), 0) << strerror(errno);
  return fd;
}

// The next datagram on `fd` (empty if none arrives within 10 s).
std::string Receive(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 10'000) != 1) return "";
  char buf[512];
  const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

TEST(ServiceNotify, SendsTheStateToAPathAndAnAbstractSocket) {
  char tmpl[] = "/tmp/cosmos_notify_XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/notify";
  const int fd = BindFakeManager(path);
  ASSERT_EQ(setenv("NOTIFY_SOCKET", path.c_str(), 1), 0);
  ASSERT_TRUE(NotifyServiceManager("READY=1\nSTATUS=serving").ok());
  EXPECT_EQ(Receive(fd), "READY=1\nSTATUS=serving");
  ::close(fd);
  ::unlink(path.c_str());
  ::rmdir(tmpl);

  const std::string abstract = "@cosmos_notify_test_" + std::to_string(getpid());
  const int afd = BindFakeManager(abstract);
  ASSERT_EQ(setenv("NOTIFY_SOCKET", abstract.c_str(), 1), 0);
  ASSERT_TRUE(NotifyServiceManager("STOPPING=1").ok());
  EXPECT_EQ(Receive(afd), "STOPPING=1");
  ::close(afd);
  unsetenv("NOTIFY_SOCKET");
}

TEST(ServiceNotify, UnsetIsANoOpAndBadNamesAreErrors) {
  unsetenv("NOTIFY_SOCKET");
  EXPECT_TRUE(NotifyServiceManager("READY=1").ok());
  ASSERT_EQ(setenv("NOTIFY_SOCKET", "relative/socket", 1), 0);
  EXPECT_EQ(NotifyServiceManager("READY=1").code(), StatusCode::kInvalidArgument);
  ASSERT_EQ(setenv("NOTIFY_SOCKET", "/nonexistent/notify", 1), 0);
  EXPECT_FALSE(NotifyServiceManager("READY=1").ok());
  unsetenv("NOTIFY_SOCKET");
}

}  // namespace
}  // namespace cosmos::app
