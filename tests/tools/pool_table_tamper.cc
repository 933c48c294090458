// pool_table_tamper: plays the untrusted host in scripts/demo.sh and manual
// security tests by editing a stopped node's pool region table (checksums
// fixed up). A testing tool: never installed, never used by COSMOS itself.
//   pool_table_tamper POOL swap-names A B
//   pool_table_tamper POOL clear-secure NAME
#include <cstdio>
#include <string>

#include "tools/pool_table_editor.h"

int main(int argc, char** argv) {
  const std::string usage =
      "usage: pool_table_tamper POOL swap-names A B | pool_table_tamper POOL clear-secure NAME\n"
      "Edits the region table of a pool no process has open, as an untrusted host could.\n";
  if (argc >= 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
    std::fputs(usage.c_str(), stdout);
    return 0;
  }
  if (argc < 4) {
    std::fputs(usage.c_str(), stderr);
    return 2;
  }
  cosmos::testing::PoolTableEditor edit(argv[1]);
  if (!edit.loaded()) {
    std::fprintf(stderr, "pool_table_tamper: cannot read a pool header from %s\n", argv[1]);
    return 1;
  }
  const std::string verb = argv[2];
  bool ok = false;
  if (verb == "swap-names" && argc == 5) {
    ok = edit.SwapNames(argv[3], argv[4]);
  } else if (verb == "clear-secure" && argc == 4) {
    const int i = edit.Find(argv[3]);
    ok = i >= 0 && edit.SetFlags(argv[3], edit.Entry(i).flags & ~1u);
  } else {
    std::fputs(usage.c_str(), stderr);
    return 2;
  }
  if (!ok) {
    std::fprintf(stderr, "pool_table_tamper: no such region in %s\n", argv[1]);
    return 1;
  }
  if (!edit.Save()) {
    std::fprintf(stderr, "pool_table_tamper: cannot write %s\n", argv[1]);
    return 1;
  }
  std::printf("pool_table_tamper: %s done on %s (entry checksums fixed up)\n", verb.c_str(),
              argv[1]);
  return 0;
}
