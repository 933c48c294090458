// Test harness: a real single-member etcd (Debian's etcd-server) as a child
// process on free loopback ports with a data dir under a temp directory,
// killed and removed at the end. For the cluster integration tests.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "cluster/etcd_client_http.h"

namespace cluster_test {

// The etcd binary, or "" when etcd-server is not installed.
inline std::string EtcdBinary() {
  for (const char* dir : {"/usr/bin", "/usr/local/bin", "/usr/sbin"}) {
    const std::string path = std::string(dir) + "/etcd";
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  return "";
}

// A loopback TCP port that was free a moment ago (bound, then released).
inline int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) close(fd);
    return 0;
  }
  close(fd);
  return ntohs(addr.sin_port);
}

// Waits for `cond` up to `deadline`, polling every 20 ms. Deadlines are
// generous: they bound a hang, they do not judge speed.
template <typename Cond>
bool WaitFor(Cond cond, std::chrono::milliseconds deadline = std::chrono::seconds(20)) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (!cond()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

class EtcdProcess {
 public:
  EtcdProcess() {
    char tmpl[] = "/tmp/cosmos_etcd_XXXXXX";
    const char* dir = mkdtemp(tmpl);
    dir_ = dir != nullptr ? dir : "";
  }
  ~EtcdProcess() {
    Kill();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // Starts etcd and waits until it serves reads. Short heartbeat and
  // election timeouts make a single member lead quickly and allow 1 s
  // leases. Returns false (see log()) when it did not come up.
  bool Start() {
    for (int attempt = 0; attempt < 3; ++attempt) {  // a port may be taken meanwhile
      client_port_ = FreePort();
      peer_port_ = FreePort();
      if (Launch()) return true;
      Kill();
    }
    return false;
  }

  // Starts etcd again after Kill() on the same ports and data dir (the
  // cluster's endpoints stay valid; its keys and leases are kept).
  bool Restart() {
    Kill();
    if (client_port_ == 0 || !Launch()) {
      Kill();
      return false;
    }
    return true;
  }

  // Before Start(): etcd also serves clients on `host` (same port), e.g. a
  // veth address that a node in another network namespace reaches.
  void set_extra_host(std::string host) { extra_host_ = std::move(host); }
  std::string endpoint_on(const std::string& host) const {
    return "http://" + host + ":" + std::to_string(client_port_);
  }

 private:
  bool Launch() {
    std::string client = "http://127.0.0.1:" + std::to_string(client_port_);
    if (!extra_host_.empty()) client += "," + endpoint_on(extra_host_);
    const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
    std::vector<std::string> args = {EtcdBinary(),
                                     "--name=cosmos-test",
                                     "--data-dir=" + dir_ + "/data",
                                     "--listen-client-urls=" + client,
                                     "--advertise-client-urls=" + client,
                                     "--listen-peer-urls=" + peer,
                                     "--initial-advertise-peer-urls=" + peer,
                                     "--initial-cluster=cosmos-test=" + peer,
                                     "--heartbeat-interval=50",
                                     "--election-timeout=500",
                                     "--logger=zap",
                                     "--log-outputs=stderr"};
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ == 0) {
      // Die with the test process: an aborted test must not leave a child
      // holding ctest's output pipe (ctest would wait for its timeout).
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      const int log_fd = open(log().c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (log_fd >= 0) {
        dup2(log_fd, 1);
        dup2(log_fd, 2);
      }
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    return WaitServing();
  }

 public:
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGCONT);
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  void Pause() { kill(pid_, SIGSTOP); }
  void Resume() { kill(pid_, SIGCONT); }

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(client_port_); }
  std::string log() const { return dir_ + "/etcd.log"; }

  // A client of this etcd with the given request timeout.
  std::unique_ptr<cosmos::cluster::EtcdClient> Client(
      std::chrono::milliseconds timeout = std::chrono::seconds(5)) const {
    cosmos::cluster::EtcdHttpOptions options;
    options.endpoints = {endpoint()};
    options.request_timeout = timeout;
    auto client = cosmos::cluster::OpenEtcdHttpClient(options);
    return client.ok() ? std::move(*client) : nullptr;
  }

 private:
  bool WaitServing() {
    auto client = Client(std::chrono::milliseconds(500));
    return client != nullptr && WaitFor([&] {
             int status = 0;
             if (waitpid(pid_, &status, WNOHANG) == pid_) {
               pid_ = -1;
               return true;  // exited: stop waiting
             }
             return client->Range(cosmos::cluster::KeyRange::Single("/ready")).ok();
           }) &&
           pid_ > 0;
  }

  std::string dir_;
  std::string extra_host_;
  pid_t pid_ = -1;
  int client_port_ = 0;
  int peer_port_ = 0;
};

}  // namespace cluster_test
