// RespServer::Conn: one client connection's state, shared by the server's
// implementation files (server.cc, server_pubsub.cc). Private to the server.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "kv/commands.h"
#include "kv/resp.h"
#include "kv/server.h"

namespace cosmos::kv {

struct RespServer::Conn {
  int fd;
  explicit Conn(int f, RespLimits limits) : fd(f), parser(limits) {}
  std::string in;
  size_t in_off = 0;
  RespParser parser;
  std::string out;  // replies ready to send
  size_t out_off = 0;
  std::string pending;  // replies waiting for pending_seq to be durable
  uint64_t pending_seq = 0;
  bool waiting = false;
  bool close_after_write = false;
  bool want_write = false;
  bool reading = true;
  bool reading_registered = true;
  ClientSession session;
  std::vector<std::string_view> args;
  bool blocked = false;  // parked by a blocking command (session.block)
  bool has_deadline = false;
  std::multimap<std::chrono::steady_clock::time_point, Conn*>::iterator deadline;
  std::vector<std::string> channels, patterns;  // pub/sub, in subscription order
  // CLIENT LIST / INFO.
  std::string addr, laddr;
  std::chrono::steady_clock::time_point created, last_active;
  std::string last_command;  // as sent (lower-cased when listed)
  bool killed = false;       // CLIENT KILL: closed after the current command
};

}  // namespace cosmos::kv
