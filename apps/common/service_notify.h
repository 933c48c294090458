// Readiness notification to a service manager (systemd's sd_notify
// protocol): one datagram with "KEY=VALUE" lines to the unix socket named by
// $NOTIFY_SOCKET. Written here instead of linking libsystemd: the protocol is
// a documented stable interface (sd_notify(3), "may be reimplemented"), is
// ~40 lines, and keeps a libsystemd dependency out of every binary and out
// of the exported cosmos::client.
#pragma once

#include <string_view>

#include "cosmos/status.h"

namespace cosmos::app {

// Sends `state` (e.g. "READY=1\nSTATUS=serving on port 7410") to the socket
// named by $NOTIFY_SOCKET: a path ("/run/systemd/notify") or an abstract
// socket ("@name"). Ok without doing anything when the variable is unset
// (not run by a service manager). IoError when the socket cannot be reached;
// InvalidArgument for a name that is not a unix socket address. Thread-safe.
[[nodiscard]] Status NotifyServiceManager(std::string_view state);

}  // namespace cosmos::app
