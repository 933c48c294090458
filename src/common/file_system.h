// Facts and durability steps about local files that every layer needs: is a
// file system volatile (tmpfs, ramfs), and the directory fsync that makes a
// newly created or renamed file survive a power loss.
#pragma once

#include <string>

#include "cosmos/result.h"
#include "cosmos/status.h"

namespace cosmos {

// True when the file system holding the open file `fd` keeps its data only
// in memory (tmpfs, ramfs): nothing on it survives a power loss, whatever
// fsync/msync report. Errors: IoError if fstatfs fails.
// Thread-safe.
[[nodiscard]] Result<bool> IsVolatileFileSystem(int fd);

// Makes the directory entry of `path` durable: opens the directory that
// contains `path` ("." for a bare name) and fsyncs it. Call after creating,
// renaming or unlinking a file whose existence must survive a crash (POSIX
// does not make a new name durable with the file's own fsync). Errors:
// IoError (or PermissionDenied) if the directory cannot be opened or synced;
// the caller must then treat the file as not durable.
// Thread-safe.
[[nodiscard]] Status SyncDirectoryOf(const std::string& path);

}  // namespace cosmos
