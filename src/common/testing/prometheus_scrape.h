// Test helper: GETs a URL path from a loopback HTTP server over a plain
// socket and parses the Prometheus text format just enough to read samples
// (tests of cosmosd --metrics-listen and of the metrics exporter).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <sstream>
#include <string>

namespace cosmos::testing {

// A TCP loopback socket bound to an ephemeral port (listening when asked):
// a port to hand a server under test (close it first) or one to keep taken.
struct LoopbackTcpPort {
  int fd = -1;
  uint16_t port = 0;
  explicit LoopbackTcpPort(bool listening) {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
      port = ntohs(a.sin_port);
    }
    if (listening && fd >= 0) (void)listen(fd, 1);
  }
  ~LoopbackTcpPort() {
    if (fd >= 0) close(fd);
  }
  LoopbackTcpPort(const LoopbackTcpPort&) = delete;
  LoopbackTcpPort& operator=(const LoopbackTcpPort&) = delete;
};

// The whole HTTP response (status line, headers, body) of `GET path` to
// 127.0.0.1:port, or nullopt when the connection fails or stalls (10 s per
// read: a loaded machine is slow, not broken).
inline std::optional<std::string> HttpGet(uint16_t port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return std::nullopt;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return std::nullopt;
  }
  const std::string request =
      "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    close(fd);
    return std::nullopt;
  }
  std::string response;
  char buffer[4096];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 10'000) != 1) {
      close(fd);
      return std::nullopt;
    }
    ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n < 0) {
      close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    response.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return response;
}

// Samples of a Prometheus text exposition: "name{labels}" exactly as
// written (labels in the exporter's order) -> value. Comments are skipped.
inline std::map<std::string, double> ParsePrometheusText(const std::string& text) {
  std::map<std::string, double> samples;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    if (space == std::string::npos) continue;
    std::string key = line.substr(0, space);
    // A timestamp would follow the value; the exporters used here write none.
    samples[key] = std::strtod(line.c_str() + space + 1, nullptr);
  }
  return samples;
}

// The body of an HTTP response (after the blank line), or "".
inline std::string HttpBody(const std::string& response) {
  const size_t at = response.find("\r\n\r\n");
  return at == std::string::npos ? std::string() : response.substr(at + 4);
}

}  // namespace cosmos::testing
