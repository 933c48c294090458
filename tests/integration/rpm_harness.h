// Test harness for the remote persistent-memory integration tests: runs the
// real cosmosd binary as a child process on a pool under a temp dir.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace rpm_test {

inline std::string CosmosdPath() {
  return std::string(COSMOS_BINARY_DIR) + "/apps/cosmosd/cosmosd";
}

// A temp directory removed at destruction.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/cosmos_rpm_XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

// One cosmosd child process.
class Daemon {
 public:
  // Starts cosmosd with `args` plus --port 0 --port-file; waits until it is
  // ready. Returns false if it exited or did not come up within 10 s.
  // `log`: when set, the daemon's stdout and stderr are appended to it.
  bool Start(const std::string& dir, const std::vector<std::string>& args,
             const std::string& log = "") {
    port_file_ = dir + "/port";
    std::filesystem::remove(port_file_);
    std::vector<std::string> argv = {CosmosdPath(), "--port",      "0",   "--port-file",
                                     port_file_,    "--log-level", "warn"};
    argv.insert(argv.end(), args.begin(), args.end());
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ == 0) {
      // Die with the test process: an aborted test must not leave a child
      // holding ctest's output pipe (ctest would wait for its timeout).
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      if (!log.empty()) {
        const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
          dup2(fd, 1);
          dup2(fd, 2);
        }
      }
      std::vector<char*> cargv;
      for (auto& a : argv) cargv.push_back(a.data());
      cargv.push_back(nullptr);
      execv(cargv[0], cargv.data());
      _exit(127);
    }
    for (int i = 0; i < 1000; ++i) {
      std::ifstream in(port_file_);
      int port = 0;
      if (in >> port && port > 0) {
        port_ = port;
        return true;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        exit_status_ = status;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  // Sends `sig` and reaps the process; returns its wait status.
  int Stop(int sig = SIGTERM) {
    if (pid_ <= 0) return exit_status_;
    kill(pid_, sig);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    exit_status_ = status;
    return status;
  }
  ~Daemon() { Stop(SIGKILL); }
  pid_t pid() const { return pid_; }
  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  int exit_status_ = 0;
  std::string port_file_;
};

}  // namespace rpm_test
