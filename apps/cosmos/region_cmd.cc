// `cosmos region create|list|delete|write|read`: regions of a local pool.
#include <cctype>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
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

std::string Printable(const std::byte* p, size_t n, bool hex) {
  bool text = !hex;
  for (size_t i = 0; i < n && text; ++i) {
    const auto c = static_cast<unsigned char>(p[i]);
    text = std::isprint(c) || c == '\n' || c == '\t';
  }
  if (text) return std::string(reinterpret_cast<const char*>(p), n);
  std::string out;
  char buf[4];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof(buf), "%02x", static_cast<unsigned>(p[i]));
    out += buf;
  }
  return out;
}

}  // namespace

void RegisterRegionCommands(CLI::App& app, Context& ctx) {
  CLI::App* region = app.add_subcommand(
      "region",
      "Create, list, delete, write and read regions of a local pool (region VERB POOL ...); "
      "add --server HOST:PORT for the regions of a cosmosd node (flags: `cosmos remote region "
      "--help`)");
  region->require_subcommand(1);

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
    cmd->add_option("--flags", *flags, "Flags stored for upper layers")->capture_default_str();
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
        const auto regions = pool->ListRegions();
        nlohmann::ordered_json list = nlohmann::ordered_json::array();
        std::ostringstream out;
        char line[160];
        std::snprintf(line, sizeof(line), "%-24s %6s %12s %12s %14s %6s\n", "NAME", "ID", "SIZE",
                      "BYTES", "POOL_OFFSET", "FLAGS");
        out << line;
        for (const auto& r : regions) {
          std::snprintf(line, sizeof(line), "%-24s %6llu %12s %12llu %14llu %6u\n", r.name.c_str(),
                        static_cast<unsigned long long>(r.id), HumanBytes(r.size).c_str(),
                        static_cast<unsigned long long>(r.size),
                        static_cast<unsigned long long>(r.offset), r.flags);
          out << line;
          list.push_back(RegionJson(r));
        }
        out << regions.size() << " region(s)\n";
        ctx.Emit(out.str(), {{"path", t->path}, {"regions", list}});
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
    auto offset = std::make_shared<uint64_t>(0);
    auto data = std::make_shared<std::string>();
    auto file = std::make_shared<std::string>();
    AddTarget(cmd, t.get(), true);
    cmd->add_option("--offset", *offset, "Byte offset within the region")
        ->check(cosmos::app::NonNegativeInteger())
        ->capture_default_str();
    auto* data_opt = cmd->add_option("--data", *data, "Bytes to write (as given)");
    auto* file_opt = cmd->add_option("--file", *file, "Write the contents of this file");
    data_opt->excludes(file_opt);
    cmd->callback([&ctx, t, offset, data, file, data_opt, file_opt] {
      ctx.status = [&]() -> Status {
        std::string bytes = *data;
        if (file_opt->count() > 0) {
          std::ifstream in(*file, std::ios::binary);
          if (!in) return Status::NotFound("cannot read input file " + *file);
          bytes.assign(std::istreambuf_iterator<char>(in), {});
        } else if (data_opt->count() == 0) {
          return Status::InvalidArgument("give --data or --file");
        }
        COSMOS_ASSIGN_OR_RETURN(auto pool, pmem::Pool::Open(t->path));
        {
          COSMOS_ASSIGN_OR_RETURN(pmem::Region r, pool->OpenRegion(t->name));
          COSMOS_RETURN_IF_ERROR(r.MemcpyPersist(*offset, bytes.data(), bytes.size()));
          ctx.Emit("wrote and persisted " + std::to_string(bytes.size()) + " bytes at offset " +
                       std::to_string(*offset) + " of region '" + t->name + "' (durability " +
                       std::string(pmem::DurabilityName(r.durability())) + ")\n",
                   {{"region", t->name},
                    {"offset", *offset},
                    {"bytes", bytes.size()},
                    {"durability", std::string(pmem::DurabilityName(r.durability()))}});
        }
        return pool->Close();
      }();
    });
  }

  // region read
  {
    auto* cmd = region->add_subcommand("read", "Print bytes of a region (text, or hex)");
    auto t = std::make_shared<Target>();
    auto offset = std::make_shared<uint64_t>(0);
    auto length = std::make_shared<uint64_t>(64);
    auto hex = std::make_shared<bool>(false);
    AddTarget(cmd, t.get(), true);
    cmd->add_option("--offset", *offset, "Byte offset within the region")
        ->check(cosmos::app::NonNegativeInteger())
        ->capture_default_str();
    cmd->add_option("--length", *length, "Number of bytes")
        ->check(cosmos::app::NonNegativeInteger())
        ->capture_default_str();
    cmd->add_flag("--hex", *hex, "Always print hex");
    cmd->callback([&ctx, t, offset, length, hex] {
      ctx.status = [&]() -> Status {
        COSMOS_ASSIGN_OR_RETURN(auto pool, pmem::Pool::Open(t->path, {.read_only = true}));
        {
          COSMOS_ASSIGN_OR_RETURN(pmem::Region r, pool->OpenRegion(t->name));
          if (*offset > r.size() || *length > r.size() - *offset) {
            return Status::OutOfRange("pool " + t->path + ": region '" + t->name + "': range [" +
                                      std::to_string(*offset) + ", +" + std::to_string(*length) +
                                      ") is outside the region of " + std::to_string(r.size()) +
                                      " bytes");
          }
          const std::string shown = Printable(r.data() + *offset, *length, *hex);
          ctx.Emit(shown + "\n", {{"region", t->name},
                                  {"offset", *offset},
                                  {"length", *length},
                                  {"hex", Printable(r.data() + *offset, *length, true)}});
        }
        return pool->Close();
      }();
    });
  }
}

}  // namespace cosmos::cli
