// `cosmos region create|list|delete|write|read|verify POOL ...`: regions of
// a local pool, with the flags and output formats of the remote verbs (cli.h).
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cli.h"
#include "pmem/pool.h"

namespace cosmos::cli {
namespace {

nlohmann::ordered_json RegionJson(const pmem::RegionInfo& r) {
  return {{"name", r.name}, {"id", r.id},       {"offset", r.offset},
          {"size", r.size}, {"flags", r.flags}, {"metadata_length", r.metadata_length}};
}

// Common arguments: the pool path and, for most verbs, a region name.
struct Target {
  std::string path;
  std::string name;
};

void AddTarget(CLI::App* cmd, Target* t, bool with_name) {
  cmd->add_option("path", t->path, "Pool file")->required();
  if (with_name) cmd->add_option("name", t->name, "Region name")->required();
}

}  // namespace

void RegisterRegionCommands(CLI::App& app, Context& ctx) {
  CLI::App* region = app.add_subcommand(
      "region",
      "Create, list, delete, write, read and verify regions of a local pool (region VERB POOL "
      "...), or with --server HOST:PORT the regions of a cosmosd node (region VERB ... --server "
      "H:P; every remote flag and verb: `cosmos remote region --help`)");
  region->require_subcommand(1);
  // Never parsed here: main.cc routes any `region ... --server` command line
  // to `remote region`. Declared so that help and completion show it.
  static std::string unused_server;
  region
      ->add_option("--server", unused_server,
                   "cosmosd node HOST:PORT: run the verb there instead of on a local POOL "
                   "(connection flags: `cosmos remote region --help`)")
      ->group("Remote (cosmosd node)");

  // region create
  {
    auto* cmd = region->add_subcommand("create", "Create a zero-filled region");
    auto t = std::make_shared<Target>();
    auto size = std::make_shared<std::string>();
    auto flags = std::make_shared<uint32_t>(0);
    AddTarget(cmd, t.get(), true);
    cmd->add_option("--size", *size, "Region size, e.g. 4K or 16M")
        ->check(cosmos::app::SizeValidator())
        ->required();
    cmd->add_option("--flags", *flags, "Flags stored for upper layers")
        ->check(cosmos::app::NonNegativeInteger(UINT32_MAX))
        ->capture_default_str();
    cmd->callback([&ctx, t, size, flags] {
      ctx.status = [&]() -> Status {
        COSMOS_ASSIGN_OR_RETURN(uint64_t bytes, ParseSize(*size));
        COSMOS_ASSIGN_OR_RETURN(auto pool, pmem::Pool::Open(t->path));
        pmem::RegionInfo info;
        {
          COSMOS_ASSIGN_OR_RETURN(pmem::Region r, pool->CreateRegion(t->name, bytes, *flags));
          info = {r.name(), r.id(), 0, r.size(), r.flags(), 0, 0};
        }
        for (const auto& r : pool->ListRegions()) {
          if (r.name == t->name) info = r;
        }
        ctx.Emit("created region '" + info.name + "' (" + HumanBytes(info.size) + ", id " +
                     std::to_string(info.id) + ", pool offset " + std::to_string(info.offset) +
                     ")\n",
                 RegionJson(info));
        return pool->Close();
      }();
    });
  }

  // region list
  {
    auto* cmd = region->add_subcommand("list", "List the regions of a pool");
    auto t = std::make_shared<Target>();
    AddTarget(cmd, t.get(), false);
    cmd->callback([&ctx, t] {
      ctx.status = [&]() -> Status {
        COSMOS_ASSIGN_OR_RETURN(auto pool, pmem::Pool::Open(t->path, {.read_only = true}));
        std::vector<RegionRow> rows;
        nlohmann::ordered_json list = nlohmann::ordered_json::array();
        for (const auto& r : pool->ListRegions()) {
          rows.push_back(
              {r.name,
               r.size,
               {std::to_string(r.id), std::to_string(r.offset), std::to_string(r.flags)}});
          list.push_back(RegionJson(r));
        }
        EmitRegionList(ctx, {"ID", "POOL_OFFSET", "FLAGS"}, rows, "path", t->path, list);
        return pool->Close();
      }();
    });
  }

  // region delete
  {
    auto* cmd = region->add_subcommand("delete", "Delete a region and free its extent");
    auto t = std::make_shared<Target>();
    AddTarget(cmd, t.get(), true);
    cmd->callback([&ctx, t] {
      ctx.status = [&]() -> Status {
        COSMOS_ASSIGN_OR_RETURN(auto pool, pmem::Pool::Open(t->path));
        COSMOS_RETURN_IF_ERROR(pool->DeleteRegion(t->name));
        ctx.Emit("deleted region '" + t->name + "'\n", {{"deleted", t->name}});
        return pool->Close();
      }();
    });
  }

  // region write
  {
    auto* cmd = region->add_subcommand("write", "Write bytes into a region and persist them");
    auto t = std::make_shared<Target>();
    auto range = std::make_shared<RangeFlags>();
    auto payload = std::make_shared<PayloadFlags>();
    AddTarget(cmd, t.get(), true);
    AddOffsetOption(cmd, range.get());
    AddPayloadOptions(cmd, payload.get(), "Write");
    cmd->callback([&ctx, t, range, payload] {
      ctx.status = [&]() -> Status {
        COSMOS_ASSIGN_OR_RETURN(std::vector<std::byte> bytes, LoadPayload(*payload));
        COSMOS_ASSIGN_OR_RETURN(auto pool, pmem::Pool::Open(t->path));
        {
          COSMOS_ASSIGN_OR_RETURN(pmem::Region r, pool->OpenRegion(t->name));
          COSMOS_RETURN_IF_ERROR(r.MemcpyPersist(range->offset, bytes.data(), bytes.size()));
          EmitWrite(ctx, t->name, range->offset, bytes.size(),
                    pmem::DurabilityName(r.durability()));
        }
        return pool->Close();
      }();
    });
  }

  // region read / verify: both check the range against the region first.
  auto in_region = [](const Target& t, const pmem::Region& r, uint64_t offset,
                      uint64_t length) -> Status {
    if (offset <= r.size() && length <= r.size() - offset) return Status::Ok();
    return Status::OutOfRange("pool " + t.path + ": region '" + t.name + "': range [" +
                              std::to_string(offset) + ", +" + std::to_string(length) +
                              ") is outside the region of " + std::to_string(r.size()) + " bytes");
  };
  {
    auto* cmd = region->add_subcommand("read", "Print bytes of a region (text, or hex)");
    auto t = std::make_shared<Target>();
    auto range = std::make_shared<RangeFlags>();
    AddTarget(cmd, t.get(), true);
    AddReadOptions(cmd, range.get());
    cmd->callback([&ctx, t, range, in_region] {
      ctx.status = [&]() -> Status {
        COSMOS_ASSIGN_OR_RETURN(auto pool, pmem::Pool::Open(t->path, {.read_only = true}));
        {
          COSMOS_ASSIGN_OR_RETURN(pmem::Region r, pool->OpenRegion(t->name));
          COSMOS_RETURN_IF_ERROR(in_region(*t, r, range->offset, range->length));
          EmitRead(ctx, t->name, range->offset,
                   std::span<const std::byte>(r.data() + range->offset, range->length), range->hex);
        }
        return pool->Close();
      }();
    });
  }
  {
    auto* cmd = region->add_subcommand(
        "verify", "Check that the region's persisted bytes equal --data/--file");
    auto t = std::make_shared<Target>();
    auto range = std::make_shared<RangeFlags>();
    auto payload = std::make_shared<PayloadFlags>();
    AddTarget(cmd, t.get(), true);
    AddOffsetOption(cmd, range.get());
    AddPayloadOptions(cmd, payload.get(), "Expected");
    cmd->callback([&ctx, t, range, payload, in_region] {
      ctx.status = [&]() -> Status {
        COSMOS_ASSIGN_OR_RETURN(std::vector<std::byte> bytes, LoadPayload(*payload));
        COSMOS_ASSIGN_OR_RETURN(auto pool, pmem::Pool::Open(t->path, {.read_only = true}));
        {
          COSMOS_ASSIGN_OR_RETURN(pmem::Region r, pool->OpenRegion(t->name));
          COSMOS_RETURN_IF_ERROR(in_region(*t, r, range->offset, bytes.size()));
          if (!bytes.empty() &&
              std::memcmp(r.data() + range->offset, bytes.data(), bytes.size()) != 0) {
            return Status::IntegrityViolation(
                "region '" + t->name + "': the bytes at offset " + std::to_string(range->offset) +
                " differ from the expected " + std::to_string(bytes.size()) + " bytes");
          }
          EmitVerified(ctx, t->name, range->offset, bytes.size());
        }
        return pool->Close();
      }();
    });
  }
}

}  // namespace cosmos::cli
