// `cosmos pool create|info|check`: pool lifecycle and inspection.
#include <ctime>
#include <memory>
#include <sstream>
#include <string>

#include "cli.h"
#include "pmem/pool.h"

namespace cosmos::cli {
namespace {

std::string FormatTime(uint64_t unix_ns) {
  const std::time_t t = static_cast<std::time_t>(unix_ns / 1000000000ull);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::string DurabilityNote(pmem::DurabilityLevel level) {
  switch (level) {
    case pmem::DurabilityLevel::kNone:
      return "none (NOT durable: memory, tmpfs, emulation or read-only view)";
    case pmem::DurabilityLevel::kPage:
      return "page (durable after msync of the containing pages)";
    case pmem::DurabilityLevel::kCacheline:
      return "cacheline (durable after cache-line flush + fence)";
    case pmem::DurabilityLevel::kByte:
      return "byte (every store is durable: eADR)";
  }
  return "unknown";
}

nlohmann::ordered_json InfoJson(const pmem::PoolInfo& i) {
  return {{"path", i.path},
          {"uuid", i.uuid},
          {"format_version", i.format_version},
          {"pool_size", i.pool_size},
          {"data_offset", i.data_offset},
          {"data_size", i.data_size},
          {"used_bytes", i.used_bytes},
          {"free_bytes", i.free_bytes},
          {"largest_free_extent", i.largest_free_extent},
          {"region_count", i.region_count},
          {"max_regions", i.max_regions},
          {"metadata_sequence", i.metadata_sequence},
          {"backend", i.backend},
          {"durability", std::string(pmem::DurabilityName(i.durability))},
          {"durability_at_creation", std::string(pmem::DurabilityName(i.durability_at_creation))},
          {"read_only", i.read_only},
          {"recovery", std::string(pmem::RecoveryOutcomeName(i.recovery))},
          {"created", FormatTime(i.created_unix_ns)}};
}

std::string InfoText(const pmem::PoolInfo& i) {
  std::ostringstream out;
  out << "pool " << i.path << "\n"
      << "  uuid:                   " << i.uuid << "\n"
      << "  format version:         " << i.format_version << "\n"
      << "  created:                " << FormatTime(i.created_unix_ns) << "\n"
      << "  size:                   " << HumanBytes(i.pool_size) << " (" << i.pool_size
      << " bytes)\n"
      << "  data area:              " << HumanBytes(i.data_size) << " at offset " << i.data_offset
      << "\n"
      << "  used / free:            " << HumanBytes(i.used_bytes) << " / "
      << HumanBytes(i.free_bytes) << " (largest free extent " << HumanBytes(i.largest_free_extent)
      << ")\n"
      << "  regions:                " << i.region_count << " of " << i.max_regions << "\n"
      << "  backend:                " << i.backend << (i.read_only ? " (read-only view)" : "")
      << "\n"
      << "  durability now:         " << DurabilityNote(i.durability) << "\n"
      << "  durability at creation: " << pmem::DurabilityName(i.durability_at_creation) << "\n"
      << "  metadata sequence:      " << i.metadata_sequence << "\n"
      << "  recovery at open:       " << pmem::RecoveryOutcomeName(i.recovery) << "\n";
  return out.str();
}

void AddBackendOption(CLI::App* cmd, std::string* backend) {
  cmd->add_option("--backend", *backend,
                  "auto (libpmem2 on DAX, else mmap+msync), file, pmem2, pmem2-emulated, dram")
      ->capture_default_str();
}

}  // namespace

void RegisterPoolCommands(CLI::App& app, Context& ctx) {
  CLI::App* pool = app.add_subcommand("pool", "Create and inspect pools");
  pool->require_subcommand(1);

  // pool create
  {
    auto* cmd = pool->add_subcommand("create", "Create a new pool file");
    auto path = std::make_shared<std::string>();
    auto size = std::make_shared<std::string>();
    auto backend = std::make_shared<std::string>("auto");
    auto max_regions = std::make_shared<uint32_t>(pmem::layout::kDefaultMaxRegions);
    cmd->add_option("path", *path, "Pool file to create (must not exist)")->required();
    cmd->add_option("--size", *size, "Pool size, e.g. 64M or 1G")
        ->check(cosmos::app::SizeValidator())
        ->required();
    cmd->add_option("--max-regions", *max_regions, "Capacity of the region table")
        ->check(cosmos::app::NonNegativeInteger(UINT32_MAX))
        ->capture_default_str();
    AddBackendOption(cmd, backend.get());
    cmd->callback([&ctx, path, size, backend, max_regions] {
      ctx.status = [&]() -> Status {
        COSMOS_ASSIGN_OR_RETURN(uint64_t bytes, ParseSize(*size));
        COSMOS_ASSIGN_OR_RETURN(pmem::BackendKind kind, pmem::BackendFromName(*backend));
        if (kind == pmem::BackendKind::kDram) {
          return Status::InvalidArgument("a dram pool would vanish when this command exits");
        }
        COSMOS_ASSIGN_OR_RETURN(
            auto p,
            pmem::Pool::Create(*path, bytes, {.backend = kind, .max_regions = *max_regions}));
        const pmem::PoolInfo info = p->Info();
        COSMOS_RETURN_IF_ERROR(p->Close());
        ctx.Emit("created " + InfoText(info), InfoJson(info));
        return Status::Ok();
      }();
    });
  }

  // pool info
  {
    auto* cmd = pool->add_subcommand("info", "Show a pool's header, usage and durability");
    auto path = std::make_shared<std::string>();
    auto backend = std::make_shared<std::string>("auto");
    auto read_only = std::make_shared<bool>(false);
    cmd->add_option("path", *path, "Pool file")->required();
    cmd->add_flag("--read-only", *read_only,
                  "Inspect without writing (a pending redo record is applied in memory only)");
    AddBackendOption(cmd, backend.get());
    cmd->callback([&ctx, path, backend, read_only] {
      ctx.status = [&]() -> Status {
        COSMOS_ASSIGN_OR_RETURN(pmem::BackendKind kind, pmem::BackendFromName(*backend));
        COSMOS_ASSIGN_OR_RETURN(
            auto p, pmem::Pool::Open(*path, {.backend = kind, .read_only = *read_only}));
        const pmem::PoolInfo info = p->Info();
        ctx.Emit(InfoText(info), InfoJson(info));
        return p->Close();
      }();
    });
  }

  // pool check
  {
    auto* cmd = pool->add_subcommand(
        "check", "Validate every on-media structure without modifying the pool");
    auto path = std::make_shared<std::string>();
    cmd->add_option("path", *path, "Pool file")->required();
    cmd->callback([&ctx, path] {
      ctx.status = [&]() -> Status {
        // Read-only: a check never alters the pool, even to replay its log.
        COSMOS_ASSIGN_OR_RETURN(auto p, pmem::Pool::Open(*path, {.read_only = true}));
        COSMOS_RETURN_IF_ERROR(p->Check());
        const pmem::PoolInfo info = p->Info();
        std::ostringstream out;
        out << "pool " << info.path << ": ok\n"
            << "  header, pool state, " << info.max_regions << " region table entries ("
            << info.region_count << " in use), allocation and redo log are valid\n"
            << "  redo log at open: " << pmem::RecoveryOutcomeName(info.recovery)
            << (info.recovery == pmem::RecoveryOutcome::kClean
                    ? ""
                    : " (in memory only; the next read-write open does it on the pool)")
            << "\n";
        ctx.Emit(out.str(), {{"path", info.path},
                             {"ok", true},
                             {"region_count", info.region_count},
                             {"recovery", std::string(pmem::RecoveryOutcomeName(info.recovery))}});
        return p->Close();
      }();
    });
  }
}

}  // namespace cosmos::cli
