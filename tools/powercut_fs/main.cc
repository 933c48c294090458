// cosmos-powercut-fs: a FUSE file system for whole-process power-loss tests
// (after Jepsen's LazyFS). It passes through to a backing directory but keeps
// every unsynced write and namespace change in memory; writing "cut" to the
// control file /.powercut drops them, as a power cut would.
#define FUSE_USE_VERSION 31
#include <fuse.h>
#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "powercut_fs.h"

namespace cosmos::powercut {
namespace {

constexpr const char* kControl = "/.powercut";
constexpr uint64_t kControlIno = UINT32_MAX;

PowercutFs* Fs() { return static_cast<PowercutFs*>(fuse_get_context()->private_data); }

// fi->fh: kControlHandle for the control file, else an owned
// std::shared_ptr<Node>* (never 0 or 1). Paths may be null for open files
// (nullpath_ok), so an open file is known by its handle only.
constexpr uint64_t kControlHandle = 1;

std::shared_ptr<Node> NodeOf(const char* path, fuse_file_info* fi) {
  if (fi != nullptr && fi->fh > kControlHandle) {
    return *reinterpret_cast<std::shared_ptr<Node>*>(fi->fh);
  }
  if (path == nullptr) return nullptr;
  return Fs()->Find(path);
}

bool IsControl(const char* path, fuse_file_info* fi) {
  if (fi != nullptr && fi->fh != 0) return fi->fh == kControlHandle;
  return path != nullptr && std::strcmp(path, kControl) == 0;
}

uint64_t Hold(std::shared_ptr<Node> node) {
  return reinterpret_cast<uint64_t>(new std::shared_ptr<Node>(std::move(node)));
}

void Drop(fuse_file_info* fi) {
  if (fi->fh > kControlHandle) delete reinterpret_cast<std::shared_ptr<Node>*>(fi->fh);
  fi->fh = 0;
}

void* Init(fuse_conn_info* conn, fuse_config* cfg) {
  cfg->use_ino = 1;
  cfg->nullpath_ok = 1;
  cfg->hard_remove = 1;  // no .fuse_hidden files: an unlinked open file lives in memory
  // The page cache stays coherent: every change comes through this mount.
  // Writes go through to us at once (no writeback cache), so every byte an
  // application wrote reaches our pending pages before its fsync returns;
  // mmap'ed pages come as write requests when the kernel writes them back
  // (msync(MS_SYNC) writes them back before it sends the fsync).
  conn->want &= ~(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_ATOMIC_O_TRUNC | FUSE_CAP_AUTO_INVAL_DATA);
  return fuse_get_context()->private_data;
}

int GetAttr(const char* path, struct stat* st, fuse_file_info* fi) {
  if (IsControl(path, fi)) {
    *st = {};
    st->st_ino = kControlIno;
    st->st_mode = S_IFREG | 0600;
    st->st_nlink = 1;
    st->st_size = 4096;  // reads are direct; the size only lets tools read it
    return 0;
  }
  auto node = NodeOf(path, fi);
  if (node == nullptr) return -ENOENT;
  return Fs()->GetAttr(*node, st);
}

int OpenDir(const char* path, fuse_file_info* fi) {
  auto node = Fs()->Find(path);
  if (node == nullptr) return -ENOENT;
  if (!node->is_dir) return -ENOTDIR;
  fi->fh = Hold(std::move(node));
  return 0;
}

int ReleaseDir(const char*, fuse_file_info* fi) {
  Drop(fi);
  return 0;
}

int ReadDir(const char* path, void* buf, fuse_fill_dir_t fill, off_t, fuse_file_info* fi,
            fuse_readdir_flags) {
  auto node = NodeOf(path, fi);
  if (node == nullptr) return -ENOENT;
  std::vector<std::string> names;
  if (int rc = Fs()->ReadDir(*node, &names); rc != 0) return rc;
  fill(buf, ".", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
  fill(buf, "..", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
  for (const auto& n : names) fill(buf, n.c_str(), nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
  return 0;
}

int FsyncDir(const char* path, int, fuse_file_info* fi) {
  auto node = NodeOf(path, fi);
  if (node == nullptr) return -ENOENT;
  return Fs()->FsyncDir(*node);
}

int Create(const char* path, mode_t mode, fuse_file_info* fi) {
  if (IsControl(path, nullptr)) return -EEXIST;
  std::shared_ptr<Node> node;
  if (int rc = Fs()->Create(path, mode, &node); rc != 0) return rc;
  fi->fh = Hold(std::move(node));
  fi->keep_cache = 1;
  return 0;
}

int Open(const char* path, fuse_file_info* fi) {
  if (IsControl(path, nullptr)) {
    fi->fh = kControlHandle;
    fi->direct_io = 1;
    return 0;
  }
  auto node = Fs()->Find(path);
  if (node == nullptr) return -ENOENT;
  if (node->is_dir) return -EISDIR;
  fi->fh = Hold(std::move(node));
  fi->keep_cache = 1;
  return 0;
}

int Release(const char*, fuse_file_info* fi) {
  Drop(fi);
  return 0;
}

int Read(const char* path, char* buf, size_t size, off_t off, fuse_file_info* fi) {
  if (IsControl(path, fi)) {
    const std::string text = Fs()->StatsText();
    if (static_cast<size_t>(off) >= text.size()) return 0;
    const size_t n = std::min(size, text.size() - static_cast<size_t>(off));
    std::memcpy(buf, text.data() + off, n);
    return static_cast<int>(n);
  }
  auto node = NodeOf(path, fi);
  if (node == nullptr) return -ENOENT;
  return Fs()->Read(*node, buf, size, static_cast<uint64_t>(off));
}

int Write(const char* path, const char* buf, size_t size, off_t off, fuse_file_info* fi) {
  if (IsControl(path, fi)) {
    const std::string cmd(buf, size);
    if (cmd == "cut" || cmd == "cut\n") {
      Fs()->Cut();
      return static_cast<int>(size);
    }
    // "cut-at-sync N": the Nth sync from now is replaced by the cut.
    if (cmd.rfind("cut-at-sync ", 0) == 0) {
      char* end = nullptr;
      const unsigned long long n = std::strtoull(cmd.c_str() + 12, &end, 10);
      if (end == cmd.c_str() + 12 || (*end != '\0' && *end != '\n')) return -EINVAL;
      Fs()->CutAtSync(n);
      return static_cast<int>(size);
    }
    return -EINVAL;
  }
  auto node = NodeOf(path, fi);
  if (node == nullptr) return -ENOENT;
  return Fs()->Write(*node, buf, size, static_cast<uint64_t>(off));
}

int Truncate(const char* path, off_t size, fuse_file_info* fi) {
  if (IsControl(path, fi)) return 0;  // "echo cut > .powercut" truncates first
  auto node = NodeOf(path, fi);
  if (node == nullptr) return -ENOENT;
  return Fs()->Truncate(*node, static_cast<uint64_t>(size));
}

int Fallocate(const char* path, int mode, off_t off, off_t len, fuse_file_info* fi) {
  auto node = NodeOf(path, fi);
  if (node == nullptr) return -ENOENT;
  return Fs()->Fallocate(*node, mode, static_cast<uint64_t>(off), static_cast<uint64_t>(len));
}

int Fsync(const char* path, int, fuse_file_info* fi) {
  if (IsControl(path, fi)) return 0;
  auto node = NodeOf(path, fi);
  if (node == nullptr) return -ENOENT;
  return Fs()->Fsync(*node);
}

int Flush(const char*, fuse_file_info*) { return 0; }  // close() syncs nothing

int Mkdir(const char* path, mode_t mode) { return Fs()->Mkdir(path, mode); }
int Unlink(const char* path) { return IsControl(path, nullptr) ? -EPERM : Fs()->Unlink(path); }
int Rmdir(const char* path) { return Fs()->Rmdir(path); }

int Rename(const char* from, const char* to, unsigned flags) {
  if (IsControl(from, nullptr) || IsControl(to, nullptr)) return -EPERM;
  return Fs()->Rename(from, to, flags);
}

int Chmod(const char* path, mode_t mode, fuse_file_info* fi) {
  if (IsControl(path, fi)) return -EPERM;
  auto node = NodeOf(path, fi);
  if (node == nullptr) return -ENOENT;
  return Fs()->Chmod(*node, mode);
}

int Chown(const char* path, uid_t uid, gid_t gid, fuse_file_info* fi) {
  if (IsControl(path, fi)) return -EPERM;
  auto node = NodeOf(path, fi);
  if (node == nullptr) return -ENOENT;
  return Fs()->Chown(*node, uid, gid);
}

int Utimens(const char* path, const timespec tv[2], fuse_file_info* fi) {
  if (IsControl(path, fi)) return 0;
  auto node = NodeOf(path, fi);
  if (node == nullptr) return -ENOENT;
  return Fs()->Utimens(*node, tv);
}

int StatFs(const char*, struct statvfs* st) { return Fs()->StatFs(st); }

fuse_operations Operations() {
  fuse_operations ops{};
  ops.init = Init;
  ops.getattr = GetAttr;
  ops.opendir = OpenDir;
  ops.releasedir = ReleaseDir;
  ops.readdir = ReadDir;
  ops.fsyncdir = FsyncDir;
  ops.create = Create;
  ops.open = Open;
  ops.release = Release;
  ops.read = Read;
  ops.write = Write;
  ops.truncate = Truncate;
  ops.fallocate = Fallocate;
  ops.fsync = Fsync;
  ops.flush = Flush;
  ops.mkdir = Mkdir;
  ops.unlink = Unlink;
  ops.rmdir = Rmdir;
  ops.rename = Rename;
  ops.chmod = Chmod;
  ops.chown = Chown;
  ops.utimens = Utimens;
  ops.statfs = StatFs;
  return ops;
}

constexpr const char* kHelp = R"(usage: cosmos-powercut-fs [--debug] BACKING_DIR MOUNTPOINT

A FUSE file system for power-loss tests (after Jepsen's LazyFS). It shows
BACKING_DIR at MOUNTPOINT, but BACKING_DIR only ever holds what was synced:
  - file data and size reach it on fsync/fdatasync of the file (msync(MS_SYNC)
    of an mmap'ed range writes the pages back and then fsyncs);
  - creates, mkdirs, unlinks, rmdirs and renames reach it on fsync of a
    directory they touched (in order: every earlier change is committed too).
Everything else stays in this process's memory. Writing "cut" to
MOUNTPOINT/.powercut is the power cut: all of it is dropped and every later
operation fails with EIO. Writing "cut-at-sync N" arms the cut at the
Nth fsync (file or directory) from then on: that sync does not happen and
fails with EIO (0 disarms). Unmount (umount MOUNTPOINT) and mount again over
BACKING_DIR to "reboot". Reading MOUNTPOINT/.powercut gives counters.
Stopping this process without a cut drops the unsynced state too.
Runs in the foreground, single-threaded; needs /dev/fuse and root (or fusermount3).
Not modelled: torn sectors or pages inside one write, metadata other than
size (modes, times), hard links, symlinks, special files.

  --debug   print every FUSE request (libfuse -d)
  --help    this text
)";

int Main(int argc, char** argv) {
  std::vector<std::string> positional;
  bool debug = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kHelp, stdout);
      return 0;
    }
    if (a == "--debug") {
      debug = true;
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "cosmos-powercut-fs: unknown option %s (see --help)\n", a.c_str());
      return 2;
    } else {
      positional.push_back(a);
    }
  }
  if (positional.size() != 2) {
    std::fputs("cosmos-powercut-fs: need BACKING_DIR and MOUNTPOINT (see --help)\n", stderr);
    return 2;
  }
  std::string error;
  auto fs = PowercutFs::Open(positional[0], &error);
  if (fs == nullptr) {
    std::fprintf(stderr, "cosmos-powercut-fs: %s\n", error.c_str());
    return 1;
  }
  std::vector<std::string> args = {argv[0], "-o", "fsname=cosmos-powercut,subtype=powercut"};
  if (debug) args.push_back("-d");
  std::vector<char*> cargs;
  for (auto& a : args) cargs.push_back(a.data());
  fuse_args fargs = FUSE_ARGS_INIT(static_cast<int>(cargs.size()), cargs.data());
  const fuse_operations ops = Operations();
  fuse* f = fuse_new(&fargs, &ops, sizeof(ops), fs.get());
  fuse_opt_free_args(&fargs);  // fuse_new copies what it keeps
  if (f == nullptr) {
    std::fputs("cosmos-powercut-fs: fuse_new failed\n", stderr);
    return 1;
  }
  if (fuse_mount(f, positional[1].c_str()) != 0) {
    std::fprintf(stderr, "cosmos-powercut-fs: cannot mount on %s\n", positional[1].c_str());
    fuse_destroy(f);
    return 1;
  }
  fuse_session* se = fuse_get_session(f);
  fuse_set_signal_handlers(se);
  // Single-threaded: requests are handled in arrival order, so a "cut"
  // takes effect between two requests, never inside one.
  const int rc = fuse_loop(f);
  fuse_remove_signal_handlers(se);
  fuse_unmount(f);
  fuse_destroy(f);
  return rc == 0 ? 0 : 1;
}

}  // namespace
}  // namespace cosmos::powercut

int main(int argc, char** argv) { return cosmos::powercut::Main(argc, argv); }
