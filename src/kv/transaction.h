// Per-connection MULTI/EXEC/WATCH state. The Dispatcher queues commands
// while a transaction is open and runs them in EXEC inside one Store atomic
// section, so an EXEC is isolated (one event-loop thread), atomic and
// durable as one commit group.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kv/store.h"

namespace cosmos::kv {

struct TransactionState {
  bool in_multi = false;
  // A command was rejected while queueing (unknown, wrong arity): EXEC
  // discards the transaction with EXECABORT.
  bool queue_error = false;
  std::vector<std::vector<std::string>> queued;
  // WATCHed keys with the Store version token seen at WATCH time (nullopt:
  // absent). EXEC fails (nil) if any token changed.
  std::vector<std::pair<std::string, std::optional<KeyVersion>>> watched;

  // Leaves MULTI and forgets queued commands and watched keys.
  void Reset() {
    in_multi = false;
    queue_error = false;
    queued.clear();
    watched.clear();
  }
};

}  // namespace cosmos::kv
