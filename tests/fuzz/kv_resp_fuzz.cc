// Fuzz target: untrusted bytes through the RESP parser (small limits) and
// every parsed command through the Dispatcher over an in-memory Store.
#include <spdlog/spdlog.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kv/commands.h"
#include "kv/log_device_memory.h"
#include "kv/resp.h"
#include "kv/store.h"

namespace {

struct Env {
  Env() : device(2 << 20) {
    spdlog::set_level(spdlog::level::off);
    cosmos::kv::StoreOptions o;
    o.background_compaction = false;
    o.max_value_size = 64 << 10;
    o.now_ms = [] { return int64_t{1'700'000'000'000}; };
    store = std::move(*cosmos::kv::Store::Open(&device, o));
    cosmos::kv::DispatcherOptions d;
    d.max_bulk_len = 64 << 10;
    dispatcher = std::make_unique<cosmos::kv::Dispatcher>(store.get(), d);
  }
  cosmos::kv::MemoryLogDevice device;
  std::unique_ptr<cosmos::kv::Store> store;
  std::unique_ptr<cosmos::kv::Dispatcher> dispatcher;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Env* env = new Env();
  cosmos::kv::RespLimits limits;
  limits.max_bulk_len = 64 << 10;
  limits.max_array_len = 1024;
  limits.max_inline_len = 4096;
  cosmos::kv::RespParser parser(limits);
  cosmos::kv::ClientSession session;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> args;
  std::string out;
  // Feed in two pieces to exercise resumption after a half-sent frame.
  const size_t split = size / 2;
  std::string buf(input.substr(0, split));
  size_t fed = split, off = 0;
  for (int steps = 0; steps < 10000; ++steps) {
    size_t consumed = 0;
    auto outcome = parser.Parse(std::string_view(buf).substr(off), &consumed, &args);
    if (outcome == cosmos::kv::RespParser::Outcome::kError) break;
    if (outcome == cosmos::kv::RespParser::Outcome::kNeedMore) {
      if (fed == size) break;
      buf.append(input.substr(fed));
      fed = size;
      continue;
    }
    if (!args.empty()) {
      out.clear();
      env->dispatcher->Execute(session, args, &out);
      // A blocking command that found nothing parks the client instead of
      // replying: the server would answer it later (served or timed out).
      if (session.block.blocked) {
        if (!out.empty() || session.block.keys.empty()) __builtin_trap();
        session.block = cosmos::kv::BlockRequest{};
        out = "*-1\r\n";
      }
      if (session.shutdown) break;        // SHUTDOWN closes without a reply
      if (out.empty()) __builtin_trap();  // every command must reply
    }
    off += consumed;
    if (session.quit) break;
  }
  env->store->RequestFlush();
  if (env->store->KeyCount() > 5000) {
    cosmos::kv::WriteBatch b;
    b.Clear();
    (void)env->store->Apply(b);
  }
  return 0;
}
