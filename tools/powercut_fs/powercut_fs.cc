// The power-cut file system's model: pending pages per file, a journal of
// namespace changes, and their commit to the backing directory on fsync.
#include "powercut_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>

namespace cosmos::powercut {
namespace {

constexpr const char* kStaging = ".powercut-staging";

timespec Now() {
  timespec t{};
  clock_gettime(CLOCK_REALTIME, &t);
  return t;
}

// "/a/b" -> "a/b"; "/" -> ".".
std::string Relative(const std::string& path) {
  std::string r = path;
  while (!r.empty() && r.front() == '/') r.erase(r.begin());
  return r.empty() ? "." : r;
}

std::string StagingName(uint64_t ino) { return "ino-" + std::to_string(ino); }

}  // namespace

Node::~Node() {
  if (data_fd >= 0) close(data_fd);
}

std::unique_ptr<PowercutFs> PowercutFs::Open(const std::string& backing, std::string* error) {
  const int backing_fd = open(backing.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (backing_fd < 0) {
    *error = "open backing directory " + backing + ": " + std::strerror(errno);
    return nullptr;
  }
  // Files that never got a durable name are orphans of the last run: gone,
  // as a journaling file system's recovery frees them.
  std::error_code ec;
  std::filesystem::remove_all(std::filesystem::path(backing) / kStaging, ec);
  if (mkdirat(backing_fd, kStaging, 0700) != 0) {
    *error = "create staging directory in " + backing + ": " + std::strerror(errno);
    close(backing_fd);
    return nullptr;
  }
  const int staging_fd = openat(backing_fd, kStaging, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (staging_fd < 0) {
    *error = "open staging directory: " + std::string(std::strerror(errno));
    close(backing_fd);
    return nullptr;
  }
  std::unique_ptr<PowercutFs> fs(new PowercutFs(backing, backing_fd, staging_fd));
  struct stat st {};
  fstat(backing_fd, &st);
  fs->root_ = fs->NewNode(true, st.st_mode & 07777);
  fs->root_->ino = 1;
  const int dup_fd = fcntl(backing_fd, F_DUPFD_CLOEXEC, 0);
  if (int rc = fs->LoadDir(dup_fd, fs->root_); rc != 0) {
    *error = "load backing directory " + backing + ": " + std::strerror(-rc);
    return nullptr;
  }
  return fs;
}

PowercutFs::PowercutFs(std::string backing, int backing_fd, int staging_fd)
    : backing_(std::move(backing)), backing_fd_(backing_fd), staging_fd_(staging_fd) {}

PowercutFs::~PowercutFs() {
  root_.reset();
  journal_.clear();
  std::error_code ec;
  std::filesystem::remove_all(std::filesystem::path(backing_) / kStaging, ec);
  close(staging_fd_);
  close(backing_fd_);
}

// Takes ownership of `dir_fd`.
int PowercutFs::LoadDir(int dir_fd, const std::shared_ptr<Node>& dir) {
  DIR* d = fdopendir(dir_fd);
  if (d == nullptr) {
    close(dir_fd);
    return -errno;
  }
  int rc = 0;
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == ".." || (dir == root_ && name == kStaging)) continue;
    struct stat st {};
    if (fstatat(dir_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      rc = -errno;
      break;
    }
    if (S_ISDIR(st.st_mode)) {
      auto child = NewNode(true, st.st_mode & 07777);
      const int fd = openat(dir_fd, e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0 || (rc = LoadDir(fd, child)) != 0) {
        if (fd < 0) rc = -errno;
        break;
      }
      child->mtime = st.st_mtim;
      dir->children[name] = child;
    } else if (S_ISREG(st.st_mode)) {
      auto child = NewNode(false, st.st_mode & 07777);
      child->data_fd = openat(dir_fd, e->d_name, O_RDWR | O_CLOEXEC);
      if (child->data_fd < 0) {
        rc = -errno;
        break;
      }
      child->size = static_cast<uint64_t>(st.st_size);
      child->uid = st.st_uid;
      child->gid = st.st_gid;
      child->atime = st.st_atim;
      child->mtime = st.st_mtim;
      child->ctime = st.st_ctim;
      dir->children[name] = child;
    }
  }
  closedir(d);
  return rc;
}

std::shared_ptr<Node> PowercutFs::NewNode(bool is_dir, mode_t mode) {
  auto n = std::make_shared<Node>();
  n->is_dir = is_dir;
  n->ino = next_ino_++;
  n->mode = mode & 07777;
  n->atime = n->mtime = n->ctime = Now();
  return n;
}

std::shared_ptr<Node> PowercutFs::Find(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  return FindLocked(path);
}

std::shared_ptr<Node> PowercutFs::FindLocked(const std::string& path) {
  std::shared_ptr<Node> n = root_;
  std::stringstream ss(path);
  std::string part;
  while (std::getline(ss, part, '/')) {
    if (part.empty()) continue;
    if (!n->is_dir) return nullptr;
    auto it = n->children.find(part);
    if (it == n->children.end()) return nullptr;
    n = it->second;
  }
  return n;
}

int PowercutFs::Parent(const std::string& path, std::shared_ptr<Node>* parent, std::string* name) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos || slash + 1 >= path.size()) return -EINVAL;
  *name = path.substr(slash + 1);
  *parent = FindLocked(path.substr(0, slash));
  if (*parent == nullptr) return -ENOENT;
  if (!(*parent)->is_dir) return -ENOTDIR;
  return 0;
}

int PowercutFs::GetAttr(const Node& node, struct stat* st) {
  std::lock_guard<std::mutex> lock(mu_);
  *st = {};
  st->st_ino = node.ino;
  st->st_mode = (node.is_dir ? S_IFDIR : S_IFREG) | node.mode;
  st->st_nlink = node.is_dir ? 2 : 1;
  st->st_uid = node.uid;
  st->st_gid = node.gid;
  st->st_size = node.is_dir ? 4096 : static_cast<off_t>(node.size);
  st->st_blksize = kPage;
  st->st_blocks = static_cast<blkcnt_t>((st->st_size + 511) / 512);
  st->st_atim = node.atime;
  st->st_mtim = node.mtime;
  st->st_ctim = node.ctime;
  return 0;
}

int PowercutFs::Create(const std::string& path, mode_t mode, std::shared_ptr<Node>* out) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cut_) return -EIO;
  std::shared_ptr<Node> parent;
  std::string name;
  if (int rc = Parent(path, &parent, &name); rc != 0) return rc;
  if (parent->children.count(name)) return -EEXIST;
  auto node = NewNode(false, mode);
  node->data_fd = openat(staging_fd_, StagingName(node->ino).c_str(),
                         O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, node->mode | 0600);
  if (node->data_fd < 0) return -errno;
  parent->children[name] = node;
  parent->mtime = parent->ctime = Now();
  journal_.push_back({DirOp::kCreate, Relative(path), "", mode, node, {parent.get()}});
  *out = node;
  return 0;
}

int PowercutFs::Mkdir(const std::string& path, mode_t mode) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cut_) return -EIO;
  std::shared_ptr<Node> parent;
  std::string name;
  if (int rc = Parent(path, &parent, &name); rc != 0) return rc;
  if (parent->children.count(name)) return -EEXIST;
  parent->children[name] = NewNode(true, mode);
  parent->mtime = parent->ctime = Now();
  journal_.push_back({DirOp::kMkdir, Relative(path), "", mode, nullptr, {parent.get()}});
  return 0;
}

int PowercutFs::Unlink(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cut_) return -EIO;
  std::shared_ptr<Node> parent;
  std::string name;
  if (int rc = Parent(path, &parent, &name); rc != 0) return rc;
  auto it = parent->children.find(name);
  if (it == parent->children.end()) return -ENOENT;
  if (it->second->is_dir) return -EISDIR;
  // The node lives on while a handle is open; its data descriptor stays valid
  // whatever happens to its name in the backing tree.
  parent->children.erase(it);
  parent->mtime = parent->ctime = Now();
  journal_.push_back({DirOp::kUnlink, Relative(path), "", 0, nullptr, {parent.get()}});
  return 0;
}

int PowercutFs::Rmdir(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cut_) return -EIO;
  std::shared_ptr<Node> parent;
  std::string name;
  if (int rc = Parent(path, &parent, &name); rc != 0) return rc;
  auto it = parent->children.find(name);
  if (it == parent->children.end()) return -ENOENT;
  if (!it->second->is_dir) return -ENOTDIR;
  if (!it->second->children.empty()) return -ENOTEMPTY;
  parent->children.erase(it);
  parent->mtime = parent->ctime = Now();
  journal_.push_back({DirOp::kRmdir, Relative(path), "", 0, nullptr, {parent.get()}});
  return 0;
}

int PowercutFs::Rename(const std::string& from, const std::string& to, unsigned flags) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cut_) return -EIO;
  if ((flags & ~RENAME_NOREPLACE) != 0) return -EINVAL;  // RENAME_EXCHANGE, WHITEOUT
  std::shared_ptr<Node> from_parent, to_parent;
  std::string from_name, to_name;
  if (int rc = Parent(from, &from_parent, &from_name); rc != 0) return rc;
  if (int rc = Parent(to, &to_parent, &to_name); rc != 0) return rc;
  auto src = from_parent->children.find(from_name);
  if (src == from_parent->children.end()) return -ENOENT;
  auto dst = to_parent->children.find(to_name);
  if (dst != to_parent->children.end()) {
    if (dst->second == src->second) return 0;
    if (flags & RENAME_NOREPLACE) return -EEXIST;
    if (src->second->is_dir && !dst->second->is_dir) return -ENOTDIR;
    if (!src->second->is_dir && dst->second->is_dir) return -EISDIR;
    if (dst->second->is_dir && !dst->second->children.empty()) return -ENOTEMPTY;
  }
  // The kernel refuses to move a directory below itself before asking us.
  auto node = src->second;
  from_parent->children.erase(src);
  to_parent->children[to_name] = node;
  from_parent->mtime = from_parent->ctime = to_parent->mtime = to_parent->ctime = Now();
  journal_.push_back({DirOp::kRename,
                      Relative(from),
                      Relative(to),
                      0,
                      nullptr,
                      {from_parent.get(), to_parent.get()}});
  return 0;
}

void PowercutFs::ReadDurable(Node& node, char* out, size_t len, uint64_t offset) {
  size_t got = 0;
  while (got < len && offset + got < node.hide_from) {
    const size_t want =
        static_cast<size_t>(std::min<uint64_t>(len - got, node.hide_from - (offset + got)));
    const ssize_t r = pread(node.data_fd, out + got, want, static_cast<off_t>(offset + got));
    if (r <= 0) break;  // end of the durable bytes
    got += static_cast<size_t>(r);
  }
  std::memset(out + got, 0, len - got);
}

std::vector<char>& PowercutFs::Page(Node& node, uint64_t index) {
  auto it = node.pages.find(index);
  if (it != node.pages.end()) return it->second;
  std::vector<char>& page = node.pages[index];
  page.resize(kPage);
  ReadDurable(node, page.data(), kPage, index * kPage);
  // Bytes past the live size are zero (a truncate may have hidden them).
  if (node.size < (index + 1) * kPage) {
    const uint64_t keep = node.size > index * kPage ? node.size - index * kPage : 0;
    std::memset(page.data() + keep, 0, kPage - keep);
  }
  return page;
}

int PowercutFs::Read(Node& node, char* out, size_t len, uint64_t offset) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cut_) return -EIO;
  if (node.is_dir) return -EISDIR;
  if (offset >= node.size) return 0;
  len = static_cast<size_t>(std::min<uint64_t>(len, node.size - offset));
  size_t done = 0;
  while (done < len) {
    const uint64_t pos = offset + done;
    const uint64_t index = pos / kPage, in_page = pos % kPage;
    const size_t n = static_cast<size_t>(std::min<uint64_t>(len - done, kPage - in_page));
    auto it = node.pages.find(index);
    if (it != node.pages.end()) {
      std::memcpy(out + done, it->second.data() + in_page, n);
    } else {
      ReadDurable(node, out + done, n, pos);
    }
    done += n;
  }
  node.atime = Now();
  return static_cast<int>(len);
}

int PowercutFs::Write(Node& node, const char* data, size_t len, uint64_t offset) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cut_) return -EIO;
  if (node.is_dir) return -EISDIR;
  size_t done = 0;
  while (done < len) {
    const uint64_t pos = offset + done;
    const uint64_t index = pos / kPage, in_page = pos % kPage;
    const size_t n = static_cast<size_t>(std::min<uint64_t>(len - done, kPage - in_page));
    std::memcpy(Page(node, index).data() + in_page, data + done, n);
    done += n;
  }
  node.size = std::max<uint64_t>(node.size, offset + len);
  node.mtime = node.ctime = Now();
  ++stats_.writes;
  stats_.write_bytes += len;
  return static_cast<int>(len);
}

int PowercutFs::Truncate(Node& node, uint64_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cut_) return -EIO;
  if (node.is_dir) return -EISDIR;
  if (size < node.size) {
    // Zero the tail of the page holding the new end, forget the pages past
    // it, and hide the durable bytes past it until the next fsync.
    if (size % kPage != 0) {
      std::vector<char>& page = Page(node, size / kPage);
      std::memset(page.data() + size % kPage, 0, kPage - size % kPage);
    }
    node.pages.erase(node.pages.lower_bound((size + kPage - 1) / kPage), node.pages.end());
    node.hide_from = std::min(node.hide_from, size);
  }
  node.size = size;
  node.mtime = node.ctime = Now();
  return 0;
}

int PowercutFs::Fallocate(Node& node, int mode, uint64_t offset, uint64_t len) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cut_) return -EIO;
  if (node.is_dir) return -EISDIR;
  if (mode == FALLOC_FL_KEEP_SIZE) return 0;
  if (mode != 0) return -EOPNOTSUPP;
  // Space is not reserved in the backing file before the fsync: the size
  // change is pending like a write of zeros.
  if (offset + len > node.size) {
    node.size = offset + len;
    node.mtime = node.ctime = Now();
  }
  return 0;
}

int PowercutFs::Chmod(Node& node, mode_t mode) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cut_) return -EIO;
  node.mode = mode & 07777;
  node.ctime = Now();
  // Metadata other than size is not modelled: it reaches the backing file at once.
  if (!node.is_dir && fchmod(node.data_fd, node.mode) != 0) return -errno;
  return 0;
}

int PowercutFs::Chown(Node& node, uid_t uid, gid_t gid) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cut_) return -EIO;
  if (uid != static_cast<uid_t>(-1)) node.uid = uid;
  if (gid != static_cast<gid_t>(-1)) node.gid = gid;
  node.ctime = Now();
  return 0;
}

int PowercutFs::Utimens(Node& node, const timespec tv[2]) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cut_) return -EIO;
  const timespec now = Now();
  auto pick = [&](const timespec& t, timespec* out) {
    if (t.tv_nsec == UTIME_OMIT) return;
    *out = t.tv_nsec == UTIME_NOW ? now : t;
  };
  pick(tv[0], &node.atime);
  pick(tv[1], &node.mtime);
  node.ctime = now;
  return 0;
}

int PowercutFs::ReadDir(const Node& dir, std::vector<std::string>* names) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cut_) return -EIO;
  if (!dir.is_dir) return -ENOTDIR;
  for (const auto& [name, child] : dir.children) names->push_back(name);
  return 0;
}

int PowercutFs::Fsync(Node& node) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cut_ || CutHere()) return -EIO;
  ++stats_.fsyncs;
  if (node.is_dir) return 0;
  struct stat st {};
  if (fstat(node.data_fd, &st) != 0) return -errno;
  const uint64_t durable_size = static_cast<uint64_t>(st.st_size);
  if (node.hide_from < durable_size && ftruncate(node.data_fd, node.hide_from) != 0) return -errno;
  if (ftruncate(node.data_fd, static_cast<off_t>(node.size)) != 0) return -errno;
  for (auto& [index, page] : node.pages) {
    const uint64_t begin = index * kPage;
    if (begin >= node.size) continue;
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kPage, node.size - begin));
    if (pwrite(node.data_fd, page.data(), n, static_cast<off_t>(begin)) !=
        static_cast<ssize_t>(n)) {
      return errno != 0 ? -errno : -EIO;
    }
    stats_.synced_bytes += n;
  }
  // The backing file itself is not fsynced: the backing file system's page
  // cache survives the simulated power cut, which is all the model needs.
  node.pages.clear();
  node.hide_from = UINT64_MAX;
  return 0;
}

int PowercutFs::Commit(const DirOp& op) {
  int rc = 0;
  switch (op.kind) {
    case DirOp::kCreate:
      rc = renameat(staging_fd_, StagingName(op.node->ino).c_str(), backing_fd_, op.path.c_str());
      break;
    case DirOp::kMkdir:
      rc = mkdirat(backing_fd_, op.path.c_str(), op.mode);
      break;
    case DirOp::kUnlink:
      rc = unlinkat(backing_fd_, op.path.c_str(), 0);
      break;
    case DirOp::kRmdir:
      rc = unlinkat(backing_fd_, op.path.c_str(), AT_REMOVEDIR);
      break;
    case DirOp::kRename:
      rc = renameat(backing_fd_, op.path.c_str(), backing_fd_, op.path2.c_str());
      break;
  }
  return rc == 0 ? 0 : -errno;
}

int PowercutFs::FsyncDir(Node& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cut_ || CutHere()) return -EIO;
  ++stats_.dir_fsyncs;
  size_t end = 0;
  for (size_t i = 0; i < journal_.size(); ++i) {
    const auto& p = journal_[i].parents;
    if (std::find(p.begin(), p.end(), &dir) != p.end()) end = i + 1;
  }
  // The backing tree replays the live tree's history in order, so each
  // recorded path names the same object at commit as when it was recorded.
  for (size_t i = 0; i < end; ++i) {
    if (int rc = Commit(journal_[i]); rc != 0) {
      journal_.erase(journal_.begin(), journal_.begin() + static_cast<std::ptrdiff_t>(i));
      return rc;
    }
    ++stats_.committed_dir_ops;
  }
  journal_.erase(journal_.begin(), journal_.begin() + static_cast<std::ptrdiff_t>(end));
  return 0;
}

int PowercutFs::StatFs(struct statvfs* st) {
  if (fstatvfs(backing_fd_, st) != 0) return -errno;
  return 0;
}

uint64_t PowercutFs::PendingBytes() const {
  uint64_t bytes = 0;
  std::vector<const Node*> todo = {root_.get()};
  while (!todo.empty()) {
    const Node* n = todo.back();
    todo.pop_back();
    bytes += n->pages.size() * kPage;
    for (const auto& [name, child] : n->children) todo.push_back(child.get());
  }
  return bytes;
}

void PowercutFs::Cut() {
  std::lock_guard<std::mutex> lock(mu_);
  CutLocked();
}

void PowercutFs::CutAtSync(uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  cut_at_sync_ = n;
}

bool PowercutFs::CutHere() {
  if (cut_at_sync_ == 0 || --cut_at_sync_ != 0) return false;
  CutLocked();
  return true;
}

void PowercutFs::CutLocked() {
  if (cut_) return;
  stats_.dropped_bytes = PendingBytes();
  stats_.dropped_dir_ops = journal_.size();
  // Nothing pending ever reaches the backing directory now; the live view
  // is dead, like a machine without power.
  cut_ = true;
  journal_.clear();
  std::vector<Node*> todo = {root_.get()};
  while (!todo.empty()) {
    Node* n = todo.back();
    todo.pop_back();
    n->pages.clear();
    for (auto& [name, child] : n->children) todo.push_back(child.get());
  }
}

std::string PowercutFs::StatsText() {
  std::lock_guard<std::mutex> lock(mu_);
  std::ostringstream o;
  o << "state " << (cut_ ? "cut" : "live") << "\n"
    << "writes " << stats_.writes << "\n"
    << "write_bytes " << stats_.write_bytes << "\n"
    << "fsyncs " << stats_.fsyncs << "\n"
    << "dir_fsyncs " << stats_.dir_fsyncs << "\n"
    << "synced_bytes " << stats_.synced_bytes << "\n"
    << "committed_dir_ops " << stats_.committed_dir_ops << "\n"
    << "pending_bytes " << (cut_ ? 0 : PendingBytes()) << "\n"
    << "pending_dir_ops " << journal_.size() << "\n"
    << "dropped_bytes " << stats_.dropped_bytes << "\n"
    << "dropped_dir_ops " << stats_.dropped_dir_ops << "\n"
    << "cut_at_sync " << cut_at_sync_ << "\n";
  return o.str();
}

}  // namespace cosmos::powercut
