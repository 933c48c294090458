// The production EtcdClient backend: etcd's v3 JSON gateway over HTTP/1.1
// (libcurl), with several endpoints, failover between them and a deadline on
// every call.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/etcd_client.h"
#include "cosmos/result.h"

namespace cosmos::cluster {

struct EtcdHttpOptions {
  // Base URLs of etcd members ("http://127.0.0.1:2379"); at least one.
  std::vector<std::string> endpoints;
  // Bound of one call, across every endpoint it tries.
  std::chrono::milliseconds request_timeout{3000};
  // Bound of one TCP connect; an endpoint that does not accept by then is
  // skipped for this call.
  std::chrono::milliseconds connect_timeout{500};
  // Replies larger than this are Corruption (a misbehaving peer cannot make
  // the client allocate without bound).
  size_t max_reply_bytes = 16u << 20;
};

// Parses a comma-separated endpoint list ("127.0.0.1:2379,http://h:2379").
// A bare host:port gets "http://". InvalidArgument for an empty list, an
// empty entry, another scheme (TLS is not wired yet), a path, or a missing
// or invalid port.
Result<std::vector<std::string>> ParseEtcdEndpoints(std::string_view list);

// Creates a client. No connection is made until the first call, so this
// succeeds with etcd down. InvalidArgument for bad options.
//
// Failover: calls start at the endpoint that last answered. An endpoint that
// refuses or does not accept the connection is skipped; an idempotent call
// (Range, KeepAlive, Watch) also moves on after a timeout or an Unavailable
// reply, splitting what is left of its deadline among the endpoints left. A mutating call that was
// sent and got no reply is not resent (that could apply it twice): it returns Timeout.
Result<std::unique_ptr<EtcdClient>> OpenEtcdHttpClient(EtcdHttpOptions options);

}  // namespace cosmos::cluster
