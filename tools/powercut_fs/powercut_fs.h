// The power-cut file system's model (tests only): a live view served to the
// kernel and a backing directory that holds exactly what was synced. Every
// write, truncate and namespace change stays in memory until its fsync (file
// data) or the fsync of its directory (names); Cut() drops all of it.
#pragma once

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace cosmos::powercut {

// One file or directory of the live view.
struct Node {
  bool is_dir = false;
  uint64_t ino = 0;
  mode_t mode = 0;  // permission bits only
  uid_t uid = 0;
  gid_t gid = 0;
  timespec atime{}, mtime{}, ctime{};
  // Directories: live entries.
  std::map<std::string, std::shared_ptr<Node>> children;
  // Regular files. `data_fd` is open on the file's durable bytes: its name in
  // the backing tree, or a staging file while no durable name exists yet (an
  // open descriptor follows every rename of the backing file).
  int data_fd = -1;
  uint64_t size = 0;                // live size
  uint64_t hide_from = UINT64_MAX;  // durable bytes at or after this offset read as zero
  std::map<uint64_t, std::vector<char>> pages;  // unsynced pages (kPage bytes) by index

  ~Node();
};

// Counters reported through the control file.
struct Stats {
  uint64_t writes = 0, write_bytes = 0;
  uint64_t fsyncs = 0, dir_fsyncs = 0;
  uint64_t synced_bytes = 0, committed_dir_ops = 0;
  uint64_t dropped_bytes = 0, dropped_dir_ops = 0;
};

// All operations return 0 or a negative errno, as FUSE handlers do. Paths
// are absolute within the mount ("/", "/a/b"). Thread-safe (one mutex).
class PowercutFs {
 public:
  static constexpr uint64_t kPage = 4096;

  // Loads the live view from `backing` (regular files and directories; other
  // kinds are not shown) after discarding the staging area left by an
  // earlier run. Returns nullptr and sets *error on failure.
  static std::unique_ptr<PowercutFs> Open(const std::string& backing, std::string* error);
  ~PowercutFs();

  // Looks up `path`; nullptr if absent.
  std::shared_ptr<Node> Find(const std::string& path);

  int GetAttr(const Node& node, struct stat* st);
  int Create(const std::string& path, mode_t mode, std::shared_ptr<Node>* out);
  int Mkdir(const std::string& path, mode_t mode);
  int Unlink(const std::string& path);
  int Rmdir(const std::string& path);
  int Rename(const std::string& from, const std::string& to, unsigned flags);
  int Read(Node& node, char* out, size_t len, uint64_t offset);
  int Write(Node& node, const char* data, size_t len, uint64_t offset);
  int Truncate(Node& node, uint64_t size);
  int Fallocate(Node& node, int mode, uint64_t offset, uint64_t len);
  int Chmod(Node& node, mode_t mode);
  int Chown(Node& node, uid_t uid, gid_t gid);
  int Utimens(Node& node, const timespec tv[2]);
  int ReadDir(const Node& dir, std::vector<std::string>* names);
  // fsync/fdatasync of a file: its pending bytes and size reach the backing file.
  int Fsync(Node& node);
  // fsync of a directory: every pending namespace change up to the last one
  // that touched this directory reaches the backing tree, in order (a
  // journaling file system's commit: a later change is never durable while
  // an earlier one is not).
  int FsyncDir(Node& dir);
  int StatFs(struct statvfs* st);

  // The power cut: drops every unsynced byte and namespace change; from now
  // on every operation fails with EIO (the kernel's page cache still holds
  // the dropped data, so the mount must not be used again: unmount it and
  // mount a new instance over the backing directory).
  void Cut();
  // Arms a cut at a sync: the `n`th fsync (of a file or a directory) from
  // now does not happen; the power is cut instead and it fails with EIO.
  // n = 0 disarms. Lets a test cut at every sync point of a process.
  void CutAtSync(uint64_t n);
  bool cut() const { return cut_; }
  // Human-readable counters, one "name value" per line.
  std::string StatsText();

 private:
  struct DirOp {
    enum Kind { kCreate, kMkdir, kUnlink, kRmdir, kRename } kind;
    std::string path, path2;  // relative to the backing directory
    mode_t mode = 0;
    std::shared_ptr<Node> node;        // kCreate: the new file
    std::vector<const Node*> parents;  // directories this change touched
  };

  PowercutFs(std::string backing, int backing_fd, int staging_fd);
  int LoadDir(int dir_fd, const std::shared_ptr<Node>& dir);
  // Splits `path` into its parent directory and last name.
  int Parent(const std::string& path, std::shared_ptr<Node>* parent, std::string* name);
  std::shared_ptr<Node> FindLocked(const std::string& path);
  std::shared_ptr<Node> NewNode(bool is_dir, mode_t mode);
  std::vector<char>& Page(Node& node, uint64_t index);
  void ReadDurable(Node& node, char* out, size_t len, uint64_t offset);
  int Commit(const DirOp& op);
  uint64_t PendingBytes() const;
  void CutLocked();
  // True (and the power cut) when this sync is the armed one.
  bool CutHere();

  std::mutex mu_;
  const std::string backing_;
  const int backing_fd_;
  const int staging_fd_;
  std::shared_ptr<Node> root_;
  std::vector<DirOp> journal_;
  uint64_t next_ino_ = 2;
  bool cut_ = false;
  uint64_t cut_at_sync_ = 0;  // syncs until the armed cut; 0: none armed
  Stats stats_;
};

}  // namespace cosmos::powercut
