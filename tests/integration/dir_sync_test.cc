// A file whose directory entry cannot be fsynced is not durable: code that
// creates or renames such a file must fail instead of reporting success.
// Uses a directory its (non-root) owner may write into but not open.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "common/testing/unprivileged.h"
#include "sec/counter.h"

namespace cosmos {
namespace {

std::string MakeTempDir(const std::string& tag) {
  std::string tmpl = std::filesystem::temp_directory_path() / ("cosmos_" + tag + "_XXXXXX");
  EXPECT_NE(mkdtemp(tmpl.data()), nullptr);
  return tmpl;
}

// The simulated trusted counter writes a temp file and renames it over the
// counter file; only a directory fsync makes the rename durable. When the
// directory cannot be opened the value must stay unstable (it used to skip
// the fsync and report the value stable).
TEST(SimulatedCounterDirectorySync, ValueStaysUnstableWhenTheDirectoryCannotBeSynced) {
  const std::string dir = MakeTempDir("counter_dirsync");
  const int rc = testing::RunAsOwnerOf(dir, [&] {
    sec::SimulatedCounter::Options o;
    o.path = dir + "/counter";
    o.manual = true;
    auto counter = sec::SimulatedCounter::Open(o);
    if (!counter.ok()) return 10;
    if (chmod(dir.c_str(), testing::kWriteOnlyDirectory) != 0) return 11;
    auto v = (*counter)->Increment();
    if (!v.ok() || *v != 1) return 12;
    if ((*counter)->StabiliseAll().ok()) return 1;  // claimed durable
    if ((*counter)->Stable() != 0 || (*counter)->IsStable(1)) return 2;
    return 0;
  });
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all);
  std::filesystem::remove_all(dir);
  EXPECT_EQ(rc, 0) << "1: StabiliseAll succeeded without a directory fsync; 2: value "
                      "reported stable; >= 10: setup failed";
}

}  // namespace
}  // namespace cosmos
