// Test helper: mounts cosmos-powercut-fs over a backing directory, cuts the
// power, reads its counters and unmounts. Used by the file system's own test
// and by the whole-process power-loss tests.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace cosmos::powercut {

inline std::string PowercutFsBinary() {
  return std::string(COSMOS_BINARY_DIR) + "/tools/powercut_fs/cosmos-powercut-fs";
}

// Why FUSE cannot be mounted here, or "" if it can (root and /dev/fuse).
inline std::string FuseUnavailableReason() {
  if (geteuid() != 0) return "needs root to mount a FUSE file system";
  const int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (fd < 0) return std::string("cannot open /dev/fuse: ") + std::strerror(errno);
  close(fd);
  return "";
}

class PowercutMount {
 public:
  PowercutMount(std::filesystem::path backing, std::filesystem::path mountpoint)
      : backing_(std::move(backing)), mountpoint_(std::move(mountpoint)) {}
  ~PowercutMount() {
    if (pid_ > 0) {
      umount2(mountpoint_.c_str(), MNT_DETACH);
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  PowercutMount(const PowercutMount&) = delete;
  PowercutMount& operator=(const PowercutMount&) = delete;

  const std::filesystem::path& path() const { return mountpoint_; }

  // Starts the file system and waits until the mount answers. On failure
  // returns false with the reason (and the daemon's stderr) in *error.
  bool Mount(std::string* error) {
    std::filesystem::create_directories(backing_);
    std::filesystem::create_directories(mountpoint_);
    const std::string log = (backing_.parent_path() / "powercut-fs.log").string();
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      const int out = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (out >= 0) {
        dup2(out, 1);
        dup2(out, 2);
      }
      const std::string bin = PowercutFsBinary();
      execl(bin.c_str(), bin.c_str(), backing_.c_str(), mountpoint_.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    // A hang guard only (60 s): the mount normally answers in milliseconds.
    const std::string control = (mountpoint_ / ".powercut").string();
    for (int i = 0; i < 6000; ++i) {
      struct stat st {};
      if (stat(control.c_str(), &st) == 0) return true;
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        std::ifstream in(log);
        std::stringstream ss;
        ss << in.rdbuf();
        *error = "cosmos-powercut-fs exited (status " + std::to_string(status) + "): " + ss.str();
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    *error = "cosmos-powercut-fs did not answer on " + control + " within 60 s";
    return false;
  }

  // The power cut: every unsynced byte and name change is dropped, and the
  // mount fails every later operation with EIO.
  bool Cut() { return Control("cut"); }
  // Arms the cut at the `n`th fsync (of a file or a directory) from now:
  // that sync fails with EIO and everything unsynced is dropped.
  bool CutAtSync(uint64_t n) { return Control("cut-at-sync " + std::to_string(n)); }

  // The counters of the control file as text ("name value" lines).
  std::string StatsText() const {
    std::ifstream in(mountpoint_ / ".powercut");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  // One counter; -1 if absent.
  int64_t Stat(const std::string& name) const {
    std::istringstream in(StatsText());
    std::string key;
    std::string value;
    while (in >> key >> value) {
      if (key == name) return value == "live" ? 0 : value == "cut" ? 1 : std::stoll(value);
    }
    return -1;
  }

  // Unmounts and reaps the daemon (which keeps nothing: whatever was not
  // synced is gone). REQUIRES: no process still has files open on the mount.
  bool Unmount() {
    if (pid_ <= 0) return true;
    bool ok = umount2(mountpoint_.c_str(), 0) == 0;
    if (!ok) ok = umount2(mountpoint_.c_str(), MNT_DETACH) == 0;
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return ok;
  }

 private:
  bool Control(const std::string& command) {
    const int fd = open((mountpoint_ / ".powercut").c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    const bool ok =
        write(fd, command.data(), command.size()) == static_cast<ssize_t>(command.size());
    close(fd);
    return ok;
  }

  std::filesystem::path backing_;
  std::filesystem::path mountpoint_;
  pid_t pid_ = -1;
};

}  // namespace cosmos::powercut
