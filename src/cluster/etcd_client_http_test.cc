// Tests of the HTTP backend that need no etcd: endpoint parsing, option
// checks, and a bounded Unavailable when nothing listens (the real-etcd
// tests are in tests/integration/cluster_etcd_test.cc).
#include "cluster/etcd_client_http.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace cosmos::cluster {
namespace {

TEST(EtcdEndpoints, ParsesListsAndAddsTheScheme) {
  auto e = ParseEtcdEndpoints("127.0.0.1:2379,http://h:2380/");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(*e, (std::vector<std::string>{"http://127.0.0.1:2379", "http://h:2380"}));
}

TEST(EtcdEndpoints, RejectsBadEntries) {
  for (std::string_view bad : {"", "a:1,", "https://h:2379", "h", "h:", "h:0", "h:99999", "h:12x",
                               "http://h:2379/v3", ":2379"}) {
    EXPECT_EQ(ParseEtcdEndpoints(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(EtcdHttpClient, RejectsBadOptions) {
  EXPECT_EQ(OpenEtcdHttpClient({}).status().code(), StatusCode::kInvalidArgument);
  EtcdHttpOptions o;
  o.endpoints = {"127.0.0.1:2379"};
  EXPECT_EQ(OpenEtcdHttpClient(o).status().code(), StatusCode::kInvalidArgument);
}

// A loopback port with nothing listening: bound, then closed.
int ClosedPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  close(fd);
  return ntohs(addr.sin_port);
}

TEST(EtcdHttpClient, NoListeningEndpointIsUnavailable) {
  EtcdHttpOptions o;
  o.endpoints = {"http://127.0.0.1:" + std::to_string(ClosedPort()),
                 "http://127.0.0.1:" + std::to_string(ClosedPort())};
  auto client = OpenEtcdHttpClient(o);
  ASSERT_TRUE(client.ok()) << client.status();
  auto range = (*client)->Range(KeyRange::Single("/a"));
  EXPECT_EQ(range.status().code(), StatusCode::kUnavailable) << range.status();
  // Every endpoint is named, so an operator sees what was tried.
  EXPECT_NE(range.status().message().find(o.endpoints[1]), std::string::npos);
  EXPECT_EQ((*client)->Put("/a", "b").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ((*client)->Watch(KeyRange::Single("/a"), 0).status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace cosmos::cluster
