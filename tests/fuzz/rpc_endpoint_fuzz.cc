// libFuzzer target: the Rpc endpoint receive path. Datagrams carved from the
// input are injected into a live server and client (in-memory transport), some
// patched with the real session number and epoch so session-level checks are
// reached; the endpoints must never crash and keep serving.
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "common/endian.h"
#include "rpc/rpc.h"
#include "rpc/transport_memory.h"

namespace {

using namespace cosmos::rpc;

constexpr NetAddress kServer{0x0a000001, 1};
constexpr NetAddress kClient{0x0a000002, 2};
constexpr NetAddress kStranger{0x0a000003, 3};

struct World {
  std::shared_ptr<MemoryNetwork> net = std::make_shared<MemoryNetwork>();
  Nexus nexus;
  std::unique_ptr<Rpc> server;
  std::unique_ptr<Rpc> client;
  SessionId session = 0;

  World() {
    nexus.RegisterHandler(1, [](Rpc& rpc, const IncomingRequest& req) {
      rpc.EnqueueResponse(req.handle, req.payload).IgnoreError();  // session may be gone
    });
    RpcOptions o;
    o.min_rto_ns = 200'000;
    o.initial_rto_ns = 200'000;
    o.max_message_size = 1 << 20;
    server = std::move(
        *Rpc::Create(&nexus, std::move(*OpenMemoryTransport(net, {.address = kServer})), o));
    client = std::move(
        *Rpc::Create(&nexus, std::move(*OpenMemoryTransport(net, {.address = kClient})), o));
    Reconnect();
  }

  void Pump(int n) {
    for (int i = 0; i < n; ++i) {
      server->RunEventLoopOnce();
      client->RunEventLoopOnce();
    }
  }

  void Reconnect() {
    if (session != 0) client->DestroySession(session).IgnoreError();  // may already be gone
    session = 0;
    auto id = client->CreateSession(kServer, {}, nullptr);
    if (!id.ok()) return;
    for (int i = 0; i < 100 && !client->IsConnected(*id); ++i) Pump(1);
    if (client->IsConnected(*id)) session = *id;
  }
};

World& TheWorld() {
  static World* w = new World();
  return *w;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World& w = TheWorld();
  // Input: repeated [flags u8][len u8][len bytes]. flags bit0: to client;
  // bit1: patch dest_session/epoch with live values; bit2: spoof the peer's address.
  size_t pos = 0;
  int packets = 0;
  while (pos + 2 <= size && packets < 64) {
    const uint8_t flags = data[pos];
    const size_t len = std::min<size_t>(data[pos + 1] * 8u, size - pos - 2);
    std::vector<std::byte> d(reinterpret_cast<const std::byte*>(data + pos + 2),
                             reinterpret_cast<const std::byte*>(data + pos + 2 + len));
    pos += 2 + len;
    ++packets;
    const bool to_client = flags & 1;
    if ((flags & 2) && d.size() >= kHeaderSize) {
      d[kOffVersion] = std::byte{kWireVersion};
      if (to_client) {
        cosmos::StoreLE<uint32_t>(d.data() + kOffDestSession, w.session);
      } else {
        // Server session numbers start at generation 1, index 0..3.
        cosmos::StoreLE<uint32_t>(d.data() + kOffDestSession, (1u << 20) | (flags >> 5));
        cosmos::StoreLE<uint32_t>(d.data() + kOffEpoch, w.server->epoch());
      }
    }
    const NetAddress from = (flags & 4) ? (to_client ? kServer : kClient) : kStranger;
    w.net->Inject(from, to_client ? kClient : kServer, d);
  }
  w.Pump(4);
  // Keep serving: one real request must still be possible.
  if (w.session == 0 || !w.client->IsConnected(w.session)) w.Reconnect();
  if (w.session != 0) {
    bool done = false;
    std::byte req[16] = {};
    if (w.client
            ->EnqueueRequest(w.session, 1, req, [&](const cosmos::Status&, auto) { done = true; })
            .ok()) {
      for (int i = 0; i < 200 && !done; ++i) w.Pump(1);
      if (!done) {
        // A spoofed packet may legitimately have disturbed the session; start over.
        w.client->DestroySession(w.session).IgnoreError();
        w.session = 0;
        w.Pump(2);
      }
    }
  }
  return 0;
}
