// Test helper: runs a check in a forked child that owns a directory but is
// not root, so file-mode tricks (a directory it may write into but not open)
// work even when the suite itself runs as root.
#pragma once

#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>

namespace cosmos::testing {

// The uid/gid the child runs as when the caller is root ("nobody").
inline constexpr uid_t kUnprivilegedId = 65534;

// Forks; the child becomes the owner of `dir` without root privileges (as
// root: `dir` is chowned to nobody and the child drops to nobody; otherwise
// the child keeps the caller's ids), runs `body` and exits with its return
// value. Returns that value, or -1 if the child could not drop privileges or
// died from a signal. `body` runs in a child process: it must report through
// its return value (gtest assertions there do not reach the parent).
// REQUIRES: `dir` exists and every directory above it is searchable by nobody.
inline int RunAsOwnerOf(const std::string& dir, const std::function<int()>& body) {
  const bool root = geteuid() == 0;
  if (root && chown(dir.c_str(), kUnprivilegedId, kUnprivilegedId) != 0) return -1;
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (root && (setgroups(0, nullptr) != 0 ||
                 setresgid(kUnprivilegedId, kUnprivilegedId, kUnprivilegedId) != 0 ||
                 setresuid(kUnprivilegedId, kUnprivilegedId, kUnprivilegedId) != 0)) {
      _exit(255);
    }
    _exit(body());
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status) == 255 ? -1 : WEXITSTATUS(status);
}

// A directory mode that allows creating and renaming entries but not opening
// the directory itself (so it cannot be fsynced).
inline constexpr mode_t kWriteOnlyDirectory = 0300;

}  // namespace cosmos::testing
