// Helpers for cosmos-kv integration tests: start/stop the real binary on a
// free port, a minimal blocking RESP client, and running redis-cli.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace cosmos::kv::testing {

inline std::string CosmosKvBinary() {
  return std::string(COSMOS_BINARY_DIR) + "/apps/cosmos-kv/cosmos-kv";
}

// A port the kernel considers free right now.
inline int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// Connects to 127.0.0.1:port; -1 on failure.
inline int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

// A cosmos-kv child process.
class KvServer {
 public:
  // `log_path` non-empty: passes --log PATH (local-file backend); empty:
  // only `extra` (e.g. the default pool backend or --backend remote).
  KvServer(std::string log_path, std::vector<std::string> extra = {})
      : log_path_(std::move(log_path)), extra_(std::move(extra)) {}
  ~KvServer() { Kill(SIGKILL); }

  // Starts the server and waits until it accepts connections.
  bool Start() {
    port_ = FreePort();
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ == 0) {
      // Die with the test process: an aborted test must not leave a child
      // holding ctest's output pipe (ctest would wait for its timeout).
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      std::vector<std::string> args = {CosmosKvBinary(), "--port", std::to_string(port_),
                                       "--log-level", "warn"};
      if (!log_path_.empty()) {
        args.push_back("--log");
        args.push_back(log_path_);
      }
      args.insert(args.end(), extra_.begin(), extra_.end());
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    for (int i = 0; i < 1000; ++i) {
      int fd = Connect(port_);
      if (fd >= 0) {
        close(fd);
        return true;
      }
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  // Sends `sig` and reaps the process; returns its wait status (or -1).
  int Kill(int sig) {
    if (pid_ <= 0) return -1;
    kill(pid_, sig);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  // Replaces the extra arguments used by the next Start().
  void set_extra(std::vector<std::string> extra) { extra_ = std::move(extra); }

 private:
  std::string log_path_;
  std::vector<std::string> extra_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// One RESP reply, flattened: type char and text; arrays keep elements.
struct Reply {
  // + - : $ * (RESP2; '$' or '*' with null=true for nil), and RESP3's
  // , _ # ( = ! ~ > % (a map's elements are its keys and values in turn).
  char type = 0;
  std::string text;
  bool null = false;
  std::vector<Reply> elements;
};

// Blocking RESP2/RESP3 client for tests (no pipelining beyond SendRaw).
class RespClient {
 public:
  explicit RespClient(int port) : fd_(Connect(port)) {}
  ~RespClient() {
    if (fd_ >= 0) close(fd_);
  }
  bool connected() const { return fd_ >= 0; }

  bool SendRaw(const std::string& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t w = send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (w <= 0) return false;
      off += static_cast<size_t>(w);
    }
    return true;
  }

  static std::string Encode(const std::vector<std::string>& args) {
    std::string s = "*" + std::to_string(args.size()) + "\r\n";
    for (const auto& a : args) s += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
    return s;
  }

  // Sends a command and reads its reply; nullopt if the connection failed.
  std::optional<Reply> Call(const std::vector<std::string>& args) {
    if (!SendRaw(Encode(args))) return std::nullopt;
    return ReadReply();
  }

  std::optional<Reply> ReadReply() {
    std::string line;
    if (!ReadLine(&line) || line.empty()) return std::nullopt;
    Reply r;
    r.type = line[0];
    std::string rest = line.substr(1);
    switch (r.type) {
      case '+':
      case '-':
      case ':':
      case ',':
      case '#':
      case '(':
        r.text = rest;
        return r;
      case '_':
        r.null = true;
        return r;
      case '=':
      case '!':
      case '$': {
        long n = std::stol(rest);
        if (n < 0) {
          r.null = true;
          return r;
        }
        if (!ReadN(static_cast<size_t>(n) + 2, &r.text)) return std::nullopt;
        r.text.resize(static_cast<size_t>(n));
        return r;
      }
      case '*':
      case '~':
      case '>':
      case '%': {
        long n = std::stol(rest);
        if (n < 0) {  // nil array (*-1)
          r.null = true;
          return r;
        }
        if (r.type == '%') n *= 2;
        for (long i = 0; i < n; ++i) {
          auto e = ReadReply();
          if (!e) return std::nullopt;
          r.elements.push_back(*e);
        }
        return r;
      }
      default:
        return std::nullopt;
    }
  }

  // As ReadReply, but gives up (nullopt) when no byte arrives for `tv`.
  std::optional<Reply> ReadReplyWithTimeout(timeval tv) {
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    auto r = ReadReply();
    timeval none{0, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
    return r;
  }

  // True if the server closed the connection (reads EOF within ~2 s).
  bool ClosedByPeer() {
    timeval tv{2, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char c;
    for (;;) {
      if (buf_off_ < buf_.size()) {
        ++buf_off_;
        continue;
      }
      ssize_t r = recv(fd_, &c, 1, 0);
      if (r == 0) return true;
      if (r < 0) return errno == ECONNRESET;
    }
  }

 private:
  bool Fill() {
    if (buf_off_ > 0 && buf_off_ == buf_.size()) {
      buf_.clear();
      buf_off_ = 0;
    }
    char tmp[65536];
    ssize_t r = recv(fd_, tmp, sizeof(tmp), 0);
    if (r <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(r));
    return true;
  }
  bool ReadLine(std::string* line) {
    for (;;) {
      size_t p = buf_.find("\r\n", buf_off_);
      if (p != std::string::npos) {
        *line = buf_.substr(buf_off_, p - buf_off_);
        buf_off_ = p + 2;
        return true;
      }
      if (!Fill()) return false;
    }
  }
  bool ReadN(size_t n, std::string* out) {
    while (buf_.size() - buf_off_ < n) {
      if (!Fill()) return false;
    }
    *out = buf_.substr(buf_off_, n);
    buf_off_ += n;
    return true;
  }

  int fd_;
  std::string buf_;
  size_t buf_off_ = 0;
};

// Runs redis-cli with `args` (and optional stdin file); returns stdout.
inline std::string RedisCli(int port, const std::string& args, const std::string& stdin_file = "") {
  std::string cmd = "redis-cli --no-raw -p " + std::to_string(port) + " " + args;
  if (!stdin_file.empty()) cmd += " < " + stdin_file;
  cmd += " 2>&1";
  FILE* f = popen(cmd.c_str(), "r");
  if (f == nullptr) return "<popen failed>";
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), f)) > 0) out.append(buf.data(), n);
  pclose(f);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// A fresh directory for a test's log files on the real file system.
inline std::filesystem::path TestDir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() /
           ("cosmos_kv_" + name + "_" + std::to_string(getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

}  // namespace cosmos::kv::testing
