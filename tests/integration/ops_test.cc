// Operator behaviour of the built binaries: every binary answers --version,
// usage errors exit 2 with one message, and SIGHUP no longer kills cosmosd or
// cosmos-kv: it reopens the log file and reloads what can change safely.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/build_info.h"

namespace {

const std::string kBin = COSMOS_BINARY_DIR;
const std::string kCosmosd = kBin + "/apps/cosmosd/cosmosd";
const std::string kKv = kBin + "/apps/cosmos-kv/cosmos-kv";
const std::string kCosmos = kBin + "/apps/cosmos/cosmos";

struct Outcome {
  int exit_code;
  std::string out;  // stdout and stderr
};

Outcome Shell(const std::string& command) {
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Polls `path` until it contains `needle` (5 s at most).
bool WaitForText(const std::string& path, const std::string& needle) {
  for (int i = 0; i < 500; ++i) {
    if (Slurp(path).find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/cosmos_ops_XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

// A child process started from argv; killed at destruction if still running.
class Child {
 public:
  explicit Child(std::vector<std::string> argv) {
    pid_ = fork();
    if (pid_ == 0) {
      std::vector<char*> cargv;
      for (auto& a : argv) cargv.push_back(a.data());
      cargv.push_back(nullptr);
      execv(cargv[0], cargv.data());
      _exit(127);
    }
  }
  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  bool Alive() {
    int status = 0;
    if (pid_ <= 0) return false;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    return true;
  }
  void Signal(int sig) { kill(pid_, sig); }
  // SIGTERM, then the wait status.
  int Stop() {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_ = -1;
};

TEST(Version, EveryBinaryPrintsVersionCommitAndBuildType) {
  std::vector<std::pair<std::string, std::string>> binaries = {
      {kCosmosd, "cosmosd"}, {kKv, "cosmos-kv"}, {kCosmos, "cosmos"}};
#ifdef COSMOS_HAVE_EXAMPLES
  binaries.push_back({kBin + "/examples/remote_log/remote_log", "remote_log"});
  binaries.push_back({kBin + "/examples/rpc_echo/rpc_echo", "rpc_echo"});
#endif
  for (const auto& [path, name] : binaries) {
    Outcome r = Shell(path + " --version");
    EXPECT_EQ(r.exit_code, 0) << name << ": " << r.out;
    EXPECT_EQ(r.out, cosmos::VersionLine(name) + "\n") << name;
  }
}

TEST(Version, CosmosVersionJsonNamesBuildFacts) {
  Outcome r = Shell(kCosmos + " version --json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const cosmos::BuildInfo& b = cosmos::GetBuildInfo();
  for (const std::string& want :
       {"\"version\": \"" + std::string(b.version) + "\"",
        "\"git_commit\": \"" + std::string(b.git_commit) + "\"",
        "\"build_type\": \"" + std::string(b.build_type) + "\"", std::string("\"pmem2\""),
        std::string("\"enclave\": \"simulated\"")}) {
    EXPECT_NE(r.out.find(want), std::string::npos) << want << " in " << r.out;
  }
  Outcome human = Shell(kCosmos + " version");
  EXPECT_EQ(human.exit_code, 0);
  EXPECT_NE(human.out.find(std::string(b.git_commit)), std::string::npos) << human.out;
}

TEST(UsageErrors, ExitTwoWithTheSameMessageInEveryBinary) {
  for (const std::string& bin : {kCosmosd, kKv, kCosmos}) {
    Outcome r = Shell(bin + " --log-level bogus" + (bin == kCosmos ? " pool info x" : ""));
    EXPECT_EQ(r.exit_code, 2) << bin << ": " << r.out;
    EXPECT_NE(r.out.find("unknown log level 'bogus' (expected trace, debug, info, warn, error "
                         "or off)"),
              std::string::npos)
        << bin << ": " << r.out;
  }
  const std::string bad_unit = "invalid size '64Q': unknown unit 'Q'";
  for (const std::string& cmd :
       {kCosmosd + " --pool /nonexistent/p.pool,size=64Q,create", kKv + " --pool-size 64Q",
        kCosmos + " pool create /nonexistent/p.pool --size 64Q"}) {
    Outcome r = Shell(cmd);
    EXPECT_EQ(r.exit_code, 2) << cmd << ": " << r.out;
    EXPECT_NE(r.out.find(bad_unit), std::string::npos) << cmd << ": " << r.out;
  }
  Outcome typo = Shell(kCosmos + " regoin list x.pool");
  EXPECT_EQ(typo.exit_code, 2) << typo.out;
  EXPECT_NE(typo.out.find("unknown command 'regoin' for 'cosmos' (did you mean 'region'?)"),
            std::string::npos)
      << typo.out;
  Outcome negative = Shell(kCosmos + " region read x.pool r --length -1");
  EXPECT_EQ(negative.exit_code, 2) << negative.out;
  EXPECT_NE(negative.out.find("--length"), std::string::npos) << negative.out;
}

TEST(UsageErrors, ConfigTypoIsRefusedWithLineAndNearestKey) {
  TempDir dir;
  const std::string config = dir.path + "/cosmosd.toml";
  std::ofstream(config) << "[server]\nport = 0\nworkrs = 4\n";
  Outcome r = Shell(kCosmosd + " -c " + config + " --pool " + dir.path + "/p.pool,size=16M,create");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("config " + config +
                       " line 3: unknown key 'server.workrs' (did you mean 'server.workers'?)"),
            std::string::npos)
      << r.out;
  EXPECT_FALSE(std::filesystem::exists(dir.path + "/p.pool"));
}

TEST(Sighup, CosmosdReopensItsLogReloadsTheLevelAndNamesWhatNeedsARestart) {
  TempDir dir;
  const std::string config = dir.path + "/cosmosd.toml";
  const std::string log = dir.path + "/cosmosd.log";
  auto write_config = [&](const std::string& level, int workers, const std::string& extra) {
    std::ofstream(config) << "[server]\nlisten = \"127.0.0.1\"\nport = 0\nworkers = " << workers
                          << "\nlog_level = \"" << level << "\"\nlog_file = \"" << log << "\"\n"
                          << extra << "[[pool]]\npath = \"" << dir.path
                          << "/p.pool\"\nsize = \"16M\"\ncreate = true\n";
  };
  write_config("info", 1, "");
  Child d({kCosmosd, "-c", config, "--port-file", dir.path + "/port"});
  ASSERT_TRUE(WaitForText(log, "ready on port")) << Slurp(log);

  // logrotate: move the file away, then SIGHUP with a new level and a change
  // that cannot apply without a restart.
  std::filesystem::rename(log, log + ".1");
  write_config("debug", 2, "");
  d.Signal(SIGHUP);
  ASSERT_TRUE(WaitForText(log, "SIGHUP: reopened log " + log)) << Slurp(log);
  ASSERT_TRUE(WaitForText(log, "needs a restart")) << Slurp(log);
  const std::string text = Slurp(log);
  EXPECT_NE(text.find("reloaded: server.log_level = debug"), std::string::npos) << text;
  EXPECT_NE(text.find("needs a restart to apply: server.workers"), std::string::npos) << text;
  EXPECT_EQ(Slurp(log + ".1").find("SIGHUP"), std::string::npos);
  EXPECT_TRUE(d.Alive());

  // QoS limits apply without a restart.
  write_config("debug", 2, "[qos]\nclient_ops_per_sec = 5000\n");
  d.Signal(SIGHUP);
  ASSERT_TRUE(WaitForText(log, "reloaded: qos (client unlimited and 5000 ops/s")) << Slurp(log);
  EXPECT_NE(Slurp(log).find("QoS limits now: client unlimited and 5000 ops/s"), std::string::npos);
  // The second "needs a restart" line (this reload's) names workers only.
  const auto second_restart_line = [&] {
    const std::string t = Slurp(log);
    const size_t first = t.find("needs a restart to apply:");
    const size_t second = t.find("needs a restart to apply:", first + 1);
    return second == std::string::npos ? std::string()
                                       : t.substr(second, t.find('\n', second) - second);
  };
  for (int i = 0; i < 500 && second_restart_line().empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(second_restart_line(), "needs a restart to apply: server.workers") << Slurp(log);

  // A typo in the new file is refused and changes nothing.
  write_config("info", 2, "workrs = 3\n");
  d.Signal(SIGHUP);
  ASSERT_TRUE(WaitForText(log, "configuration refused, nothing changed")) << Slurp(log);
  EXPECT_NE(Slurp(log).find("server.workrs"), std::string::npos);
  EXPECT_TRUE(d.Alive());
  const int status = d.Stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(Sighup, CosmosKvReopensItsLogAndKeepsServing) {
  TempDir dir;
  const std::string log = dir.path + "/kv.log";
  Child kv({kKv, "--backend", "memory", "--log-size", "4M", "--port", "0", "--log-file", log});
  ASSERT_TRUE(WaitForText(log, "ready to accept connections")) << Slurp(log);
  std::filesystem::rename(log, log + ".1");
  kv.Signal(SIGHUP);
  ASSERT_TRUE(WaitForText(log, "SIGHUP: reopened log " + log)) << Slurp(log);
  EXPECT_NE(Slurp(log).find("needs a restart"), std::string::npos);
  EXPECT_TRUE(kv.Alive());
  const int status = kv.Stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

// A start that fails leaves nothing behind: a bad --listen is refused before
// the pool file is created (usage error, exit 2); a taken port is found only
// when binding, after the pool was created, and the file is removed again.
TEST(FailedStart, LeavesNoPoolFileBehind) {
  TempDir dir;
  const std::string pool = dir.path + "/p.pool";
  for (const std::string listen : {"300.1.2.3", "localhost", "10.0.0.1:7410"}) {
    Outcome r =
        Shell(kCosmosd + " --listen " + listen + " --port 0 --pool " + pool + ",size=16M,create");
    EXPECT_EQ(r.exit_code, 2) << listen << ": " << r.out;
    EXPECT_NE(r.out.find("server.listen: '" + listen + "' is not an IPv4 or IPv6 address"),
              std::string::npos)
        << r.out;
    EXPECT_FALSE(std::filesystem::exists(pool)) << listen;
  }
  Outcome cluster = Shell(kCosmosd + " --zone a --port 0 --pool " + pool + ",size=16M,create");
  EXPECT_EQ(cluster.exit_code, 2) << cluster.out;
  EXPECT_FALSE(std::filesystem::exists(pool));

  // Hold a UDP port so that cosmosd's bind fails.
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string port = std::to_string(ntohs(addr.sin_port));
  Outcome taken = Shell(kCosmosd + " --listen 127.0.0.1 --port " + port + " --workers 1 --pool " +
                        pool + ",size=16M,create");
  close(fd);
  EXPECT_EQ(taken.exit_code, 1) << taken.out;
  EXPECT_NE(taken.out.find("removed pool file " + pool), std::string::npos) << taken.out;
  EXPECT_FALSE(std::filesystem::exists(pool)) << taken.out;

  // An existing pool is never removed by a failed start.
  ASSERT_EQ(Shell(kCosmos + " pool create " + pool + " --size 16M").exit_code, 0);
  const int fd2 = socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_EQ(bind(fd2, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  Outcome again = Shell(kCosmosd + " --listen 127.0.0.1 --port " + port + " --workers 1 --pool " +
                        pool + ",size=16M,create");
  close(fd2);
  EXPECT_EQ(again.exit_code, 1) << again.out;
  EXPECT_TRUE(std::filesystem::exists(pool));
}

// cosmos-kv listens before it opens its storage: a bad --bind (usage error,
// exit 2) or a taken port (exit 1) creates neither a log nor a pool file.
TEST(FailedStart, CosmosKvCreatesNoStorageWhenItCannotListen) {
  TempDir dir;
  const std::string log = dir.path + "/kv.log", pool = dir.path + "/kv.pool";
  Outcome bad = Shell(kKv + " --bind 300.1.2.3 --port 0 --log " + log);
  EXPECT_EQ(bad.exit_code, 2) << bad.out;
  EXPECT_NE(bad.out.find("bad bind address '300.1.2.3'"), std::string::npos) << bad.out;
  EXPECT_FALSE(std::filesystem::exists(log));

  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string port = std::to_string(ntohs(addr.sin_port));
  Outcome taken_file = Shell(kKv + " --port " + port + " --log " + log);
  Outcome taken_pool = Shell(kKv + " --port " + port + " --pool " + pool + " --pool-size 4M");
  close(fd);
  EXPECT_EQ(taken_file.exit_code, 1) << taken_file.out;
  EXPECT_NE(taken_file.out.find("Address already in use"), std::string::npos) << taken_file.out;
  EXPECT_FALSE(std::filesystem::exists(log)) << taken_file.out;
  EXPECT_EQ(taken_pool.exit_code, 1) << taken_pool.out;
  EXPECT_FALSE(std::filesystem::exists(pool)) << taken_pool.out;
}

// Under systemd (Type=notify) cosmosd and cosmos-kv report READY=1 only once
// they serve (sockets bound) and STOPPING=1 at shutdown. A fake service
// manager socket receives the datagrams.
class FakeServiceManager {
 public:
  explicit FakeServiceManager(const std::string& path) : path_(path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
    bound_ = bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    setenv("NOTIFY_SOCKET", path.c_str(), 1);
  }
  ~FakeServiceManager() {
    unsetenv("NOTIFY_SOCKET");
    close(fd_);
  }
  bool bound() const { return bound_; }
  // The next datagram (empty after 10 s without one).
  std::string Next() {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 10'000) != 1) return "";
    char buf[1024];
    const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }

 private:
  std::string path_;
  int fd_ = -1;
  bool bound_ = false;
};

// True if UDP `port` on 127.0.0.1 is taken (by the daemon).
bool UdpPortTaken(int port) {
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool taken = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0;
  close(fd);
  return taken;
}

TEST(ServiceManager, CosmosdNotifiesReadyOnceBoundAndStoppingAtShutdown) {
  TempDir dir;
  FakeServiceManager manager(dir.path + "/notify");
  ASSERT_TRUE(manager.bound());
  Child d({kCosmosd, "--listen", "127.0.0.1", "--port", "0", "--workers", "1", "--port-file",
           dir.path + "/port", "--pool", dir.path + "/p.pool,size=16M,create"});
  const std::string ready = manager.Next();
  ASSERT_EQ(ready.rfind("READY=1\n", 0), 0u) << ready;
  // At READY=1 the node serves: its port file is written and its port bound.
  const std::string port = Slurp(dir.path + "/port");
  ASSERT_FALSE(port.empty());
  EXPECT_NE(ready.find("STATUS=serving on port " + std::to_string(std::stoi(port))),
            std::string::npos)
      << ready;
  EXPECT_TRUE(UdpPortTaken(std::stoi(port)));
  d.Signal(SIGHUP);
  EXPECT_EQ(manager.Next(), "RELOADING=1");
  EXPECT_EQ(manager.Next(), "READY=1");
  const int status = d.Stop();  // SIGTERM
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(manager.Next(), "STOPPING=1");
}

TEST(ServiceManager, CosmosKvNotifiesReadyOnceListeningAndStoppingAtShutdown) {
  TempDir dir;
  FakeServiceManager manager(dir.path + "/notify");
  ASSERT_TRUE(manager.bound());
  const std::string log = dir.path + "/kv.log";
  Child kv({kKv, "--backend", "memory", "--log-size", "4M", "--port", "0", "--log-file", log});
  const std::string ready = manager.Next();
  ASSERT_EQ(ready.rfind("READY=1\n", 0), 0u) << ready;
  EXPECT_NE(Slurp(log).find("ready to accept connections"), std::string::npos) << Slurp(log);
  const int status = kv.Stop();  // SIGTERM
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(manager.Next(), "STOPPING=1");
}

}  // namespace
