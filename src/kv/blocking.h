// What a blocking command (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BZPOPMIN,
// BZPOPMAX, BLMPOP, BZMPOP) leaves for the RESP server when it found nothing to serve: the
// keys it waits on, its timeout, and the command to run again once one of
// the keys receives a value of the wanted type.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kv/log_format.h"

namespace cosmos::kv {

struct BlockRequest {
  bool blocked = false;               // set by the command: park the client
  std::vector<std::string> args;      // the command, run again when a key is ready
  std::vector<std::string> keys;      // in the command's order (duplicates removed)
  ValueType type = ValueType::kList;  // a key is ready when it holds this type
  int64_t timeout_ms = 0;             // 0: wait forever; the timeout reply is *-1
};

}  // namespace cosmos::kv
