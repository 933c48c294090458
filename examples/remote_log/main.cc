// remote_log: example log writer and recovery over a cosmosd region.
//   remote_log append  --server H:P --region NAME [--count N] [--size B] [--create-size BYTES]
//   remote_log recover --server H:P --region NAME
// Secure connection: add --platform-pub, --measurement and --client-key; a
// region created then is a protected (secure) region.
// `append` prints "acked SEQ" for every record once it is durable; `recover`
// prints the durable prefix it finds ("recovered N records, last SEQ").
#include <cstdio>

#include "app_flags.h"
#include "common/clock.h"
#include "common/size.h"
#include "remote_log.h"

namespace {

int Fail(const cosmos::Status& s) {
  std::fprintf(stderr, "remote_log: %s\n", s.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"remote_log: append to and recover a log kept in a remote COSMOS region"};
  app.require_subcommand(1);
  std::string region_name = "remote_log";
  uint64_t count = 1000, size = 100;
  std::string create_size = "4M";
  cosmos::ClientOptions opts;
  app.add_option("--server", opts.server, "cosmosd address HOST:PORT")->capture_default_str();
  app.add_option("--platform-pub", opts.platform_public_key_file,
                 "secure connection: the node's platform.pub");
  app.add_option("--measurement", opts.measurement_file,
                 "secure connection: the expected enclave measurement file");
  app.add_option("--client-key", opts.client_key_file, "secure connection: NAME.key");
  app.add_option("--region", region_name, "region holding the log")->capture_default_str();
  auto* append = app.add_subcommand("append", "append records (write + flush + write_after_flush)");
  append->add_option("--count", count, "records to append")->capture_default_str();
  append->add_option("--size", size, "payload bytes per record")->capture_default_str();
  append->add_option("--create-size", create_size, "region size if it must be created (e.g. 4M)")
      ->check(cosmos::app::SizeValidator())
      ->capture_default_str();
  auto* recover = app.add_subcommand("recover", "find and check the durable prefix");
  app.fallthrough();
  cosmos::app::AddVersionFlag(app, "remote_log");
  if (auto code = cosmos::app::Parse(app, argc, argv)) return *code;

  auto client = cosmos::Client::Connect(opts);
  if (!client.ok()) return Fail(client.status());
  auto region = (*client)->OpenRegion(region_name);
  if (!region.ok() && region.status().code() == cosmos::StatusCode::kNotFound && append->parsed()) {
    auto created = (*client)->CreateRegion(region_name, *cosmos::ParseSize(create_size),
                                           {.pool = "", .secure = opts.secure()});
    if (!created.ok()) return Fail(created.status());
    region = (*client)->OpenRegion(region_name);
  }
  if (!region.ok()) return Fail(region.status());
  std::printf("region %s: %llu bytes, durability %s%s\n", region_name.c_str(),
              static_cast<unsigned long long>((*region)->info().size),
              cosmos::DurabilityName((*region)->info().durability),
              (*region)->info().secure ? ", secure" : "");
  auto log = remote_log::RemoteLog::Open(region->get());
  if (!log.ok()) return Fail(log.status());

  if (recover->parsed()) {
    auto records = (*log)->ReadAll();
    if (!records.ok()) return Fail(records.status());
    std::printf("recovered %zu records, last %llu, tail %llu\n", records->size(),
                static_cast<unsigned long long>(records->empty() ? 0 : records->back().sequence),
                static_cast<unsigned long long>((*log)->tail()));
    return 0;
  }
  std::vector<std::byte> payload(size);
  uint64_t start = cosmos::MonotonicNanos();
  for (uint64_t i = 0; i < count; ++i) {
    for (size_t j = 0; j < payload.size(); ++j) payload[j] = std::byte(static_cast<uint8_t>(i + j));
    auto seq = (*log)->Append(payload);
    if (!seq.ok()) return Fail(seq.status());
    std::printf("acked %llu\n", static_cast<unsigned long long>(*seq));
  }
  double secs = static_cast<double>(cosmos::MonotonicNanos() - start) / 1e9;
  std::fprintf(stderr,
               "remote_log: %llu appends in %.3f s (%.1f us each, one round trip per append)\n",
               static_cast<unsigned long long>(count), secs, count ? secs * 1e6 / count : 0.0);
  return 0;
}
