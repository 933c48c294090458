// `cosmos remote region create|list|delete|write|read|verify|grant|revoke|
// access|rotate-key --server H:P` (also spelled `cosmos region VERB ...
// --server H:P`, see main.cc): regions on a cosmosd node, through the client
// library, over a plain or a secure connection.
#include "remote_cmd.h"

#include <algorithm>
#include <memory>
#include <optional>

#include "cosmos/client.h"
#include "sec/key_files.h"

namespace cosmos::cli {
namespace {

// The region key in a `cosmos keys region-key` file.
Result<UserKey> LoadUserKey(const std::string& path) {
  COSMOS_ASSIGN_OR_RETURN(sec::Bytes bytes, sec::ReadKeyFile(path, sec::KeyKind::kRegionKey));
  UserKey key;
  if (bytes.size() != key.bytes.size()) {
    return Status::Corruption(path + ": a region key is 32 bytes");
  }
  std::copy(bytes.begin(), bytes.end(), key.bytes.begin());
  sec::SecureWipe(bytes);
  return key;
}

nlohmann::ordered_json InfoJson(const RegionInfo& r) {
  return {{"name", r.name},
          {"size", r.size},
          {"durability", DurabilityName(r.durability)},
          {"secure", r.secure}};
}

Result<std::unique_ptr<Client>> ConnectTo(const ClientOptions& options) {
  return Client::Connect(options);
}

// `grant`, `revoke`, `access`, `rotate-key`: a secure region's access list
// and key (admin right, secure connection).
void RegisterAccessCommands(CLI::App& region, Context& ctx,
                            const std::shared_ptr<ClientOptions>& copts) {
  {
    auto* cmd = region.add_subcommand(
        "grant", "Give a client rights on a secure region (replaces its earlier rights)");
    auto name = std::make_shared<std::string>();
    auto key = std::make_shared<std::string>();
    auto rights = std::make_shared<std::string>();
    cmd->add_option("name", *name, "Region name")->required();
    cmd->add_option("client_pub", *key,
                    "The client's public key (NAME.pub from `cosmos keys "
                    "client`)")
        ->required();
    cmd->add_option("--rights", *rights,
                    "r, w, a letters (e.g. rw) or read,write,admin words; admin lets the client "
                    "grant, revoke, rotate the key and delete the region")
        ->required();
    cmd->callback([&ctx, copts, name, key, rights] {
      auto bits = ParseRights(*rights);
      if (!bits.ok()) return void(ctx.status = bits.status());
      auto who = ClientIdentity::FromPublicKeyFile(*key);
      if (!who.ok()) return void(ctx.status = who.status());
      auto c = ConnectTo(*copts);
      if (!c.ok()) return void(ctx.status = c.status());
      ctx.status = (*c)->GrantAccess(*name, *who, *bits);
      if (!ctx.status.ok()) return;
      ctx.Emit("granted " + RightsName(*bits) + " on region " + *name + " to client " +
                   who->Fingerprint() + "\n",
               {{"region", *name}, {"client", who->Fingerprint()}, {"rights", RightsName(*bits)}});
    });
  }
  {
    auto* cmd = region.add_subcommand("revoke", "Take every right of a client on a secure region");
    auto name = std::make_shared<std::string>();
    auto key = std::make_shared<std::string>();
    cmd->add_option("name", *name, "Region name")->required();
    cmd->add_option("client_pub", *key, "The client's public key (NAME.pub)")->required();
    cmd->callback([&ctx, copts, name, key] {
      auto who = ClientIdentity::FromPublicKeyFile(*key);
      if (!who.ok()) return void(ctx.status = who.status());
      auto c = ConnectTo(*copts);
      if (!c.ok()) return void(ctx.status = c.status());
      ctx.status = (*c)->RevokeAccess(*name, *who);
      if (!ctx.status.ok()) return;
      ctx.Emit("revoked every right on region " + *name + " of client " + who->Fingerprint() + "\n",
               {{"region", *name}, {"client", who->Fingerprint()}, {"rights", RightsName(0)}});
    });
  }
  {
    auto* cmd = region.add_subcommand(
        "access", "Show a secure region's access list (client fingerprints) and key epoch");
    auto name = std::make_shared<std::string>();
    cmd->add_option("name", *name, "Region name")->required();
    cmd->callback([&ctx, copts, name] {
      auto c = ConnectTo(*copts);
      if (!c.ok()) return void(ctx.status = c.status());
      auto info = (*c)->ListAccess(*name);
      if (!info.ok()) return void(ctx.status = info.status());
      std::string text = "region " + *name + ", key epoch " + std::to_string(info->key_epoch) +
                         "\nCLIENT FINGERPRINT\t\t\tRIGHTS\n";
      nlohmann::ordered_json arr = nlohmann::ordered_json::array();
      for (const auto& e : info->entries) {
        text += e.fingerprint + "\t" + RightsName(e.rights) + "\n";
        arr.push_back({{"client", e.fingerprint}, {"rights", RightsName(e.rights)}});
      }
      ctx.Emit(text, {{"region", *name}, {"key_epoch", info->key_epoch}, {"access", arr}});
    });
  }
  {
    auto* cmd = region.add_subcommand(
        "rotate-key", "Re-encrypt a secure region under a fresh key (data stays readable)");
    auto name = std::make_shared<std::string>();
    auto key_file = std::make_shared<std::string>();
    cmd->add_option("name", *name, "Region name")->required();
    cmd->add_option("--user-key-file", *key_file,
                    "Derive the new key from this region key (`cosmos keys region-key`) "
                    "instead of one the enclave draws");
    cmd->callback([&ctx, copts, name, key_file] {
      std::optional<UserKey> key;
      if (!key_file->empty()) {
        auto loaded = LoadUserKey(*key_file);
        if (!loaded.ok()) return void(ctx.status = loaded.status());
        key = *loaded;
      }
      auto c = ConnectTo(*copts);
      if (!c.ok()) return void(ctx.status = c.status());
      auto epoch = key ? (*c)->RotateKeyToUserKey(*name, *key) : (*c)->RotateKey(*name);
      if (!epoch.ok()) return void(ctx.status = epoch.status());
      ctx.Emit("region " + *name + " re-encrypted under key epoch " + std::to_string(*epoch) + "\n",
               {{"region", *name}, {"key_epoch", *epoch}});
    });
  }
}

}  // namespace

void AddConnectOptions(CLI::App& cmd, ClientOptions& options) {
  cmd.add_option("--server", options.server, "cosmosd address HOST:PORT")->capture_default_str();
  cmd.add_option("--cluster", options.cluster,
                 "Cluster mode: etcd endpoints (host:port,...); regions are found in etcd and "
                 "used through their primary (docs/cluster.md); --server is then not used");
  cmd.add_option("--platform-pub", options.platform_public_key_file,
                 "Secure connection: the node's platform public key (platform.pub from "
                 "`cosmos keys platform`)");
  cmd.add_option("--measurement", options.measurement_file,
                 "Secure connection: the enclave measurement the node must attest to");
  cmd.add_option("--client-key", options.client_key_file,
                 "Secure connection: this client's credentials (NAME.key from `cosmos keys "
                 "client`)");
  cmd.add_option("--timeout-ms", options.timeout_ms, "Per-call timeout")
      ->check(cosmos::app::NonNegativeInteger(UINT32_MAX))
      ->capture_default_str();
  cmd.add_option("--mtu", options.mtu,
                 "Largest UDP payload per datagram; the session uses the smaller of this, the "
                 "node's and the path MTU - 28 (8972 suits jumbo frames and loopback)")
      ->check(CLI::Range(256, 9000))
      ->capture_default_str();
}

void RegisterRemoteCommands(CLI::App& app, Context& ctx) {
  CLI::App* remote =
      app.add_subcommand("remote", "Regions on a cosmosd memory node (--server HOST:PORT)");
  remote->require_subcommand(1);
  CLI::App* region =
      remote->add_subcommand("region",
                             "Create, list, delete, write, read, verify remote regions; grant, "
                             "revoke, list access to and rotate the key of secure ones");
  region->require_subcommand(1);
  auto copts = std::make_shared<ClientOptions>();
  AddConnectOptions(*region, *copts);

  {
    auto* cmd = region->add_subcommand("create", "Create a zero-filled region on the node");
    auto name = std::make_shared<std::string>();
    auto size = std::make_shared<std::string>();
    auto pool = std::make_shared<std::string>();
    cmd->add_option("name", *name, "Region name")->required();
    cmd->add_option("--size", *size, "Region size, e.g. 4K or 16M")
        ->check(cosmos::app::SizeValidator())
        ->required();
    auto secure = std::make_shared<bool>(false);
    auto replicas = std::make_shared<int>(0);
    cmd->add_option("--replicas", *replicas,
                    "Cluster mode (--cluster): copies on distinct nodes, 1..5 (default 1)")
        ->check(CLI::Range(1, 5));
    cmd->add_option("--pool", *pool, "Pool on the node (default: its first)");
    cmd->add_flag("--secure", *secure,
                  "Protected region: encrypted, integrity- and freshness-checked by the node's "
                  "enclave; needs a secure connection (--platform-pub, --measurement, "
                  "--client-key)");
    auto key_file = std::make_shared<std::string>();
    cmd->add_option("--user-key-file", *key_file,
                    "With --secure: derive the region key from this region key (`cosmos keys "
                    "region-key`) instead of one the enclave draws");
    cmd->callback([&ctx, copts, name, size, pool, secure, replicas, key_file] {
      auto bytes = ParseSize(*size);
      if (!bytes.ok()) return void(ctx.status = bytes.status());
      std::optional<UserKey> key;
      if (!key_file->empty()) {
        if (!*secure) {
          return void(ctx.status = Status::InvalidArgument("--user-key-file needs --secure"));
        }
        auto loaded = LoadUserKey(*key_file);
        if (!loaded.ok()) return void(ctx.status = loaded.status());
        key = *loaded;
      }
      auto c = ConnectTo(*copts);
      if (!c.ok()) return void(ctx.status = c.status());
      RegionOptions o;
      o.pool = *pool;
      o.secure = *secure;
      o.replicas = *replicas;
      if (key) o.user_key = &*key;
      if (*replicas != 0 && copts->cluster.empty()) {
        return void(ctx.status = Status::InvalidArgument("--replicas needs --cluster"));
      }
      auto info = (*c)->CreateRegion(*name, *bytes, o);
      if (!info.ok()) return void(ctx.status = info.status());
      ctx.Emit("created " + std::string(info->secure ? "secure " : "") + "region " + info->name +
                   " (" + HumanBytes(info->size) + ", durability " +
                   DurabilityName(info->durability) + ") on " + copts->server + "\n",
               InfoJson(*info));
    });
  }
  {
    auto* cmd = region->add_subcommand("list", "List the node's regions");
    cmd->callback([&ctx, copts] {
      auto c = ConnectTo(*copts);
      if (!c.ok()) return void(ctx.status = c.status());
      auto list = (*c)->ListRegions();
      if (!list.ok()) return void(ctx.status = list.status());
      std::vector<RegionRow> rows;
      nlohmann::ordered_json arr = nlohmann::ordered_json::array();
      for (const auto& r : *list) {
        rows.push_back(
            {r.name, r.size, {std::string(DurabilityName(r.durability)), r.secure ? "yes" : "no"}});
        arr.push_back(InfoJson(r));
      }
      EmitRegionList(ctx, {"DURABILITY", "SECURE"}, rows, "server", copts->server, arr);
    });
  }
  {
    auto* cmd = region->add_subcommand("delete", "Delete a region on the node");
    auto name = std::make_shared<std::string>();
    cmd->add_option("name", *name, "Region name")->required();
    cmd->callback([&ctx, copts, name] {
      auto c = ConnectTo(*copts);
      if (!c.ok()) return void(ctx.status = c.status());
      ctx.status = (*c)->DeleteRegion(*name);
      if (ctx.status.ok()) ctx.Emit("deleted region '" + *name + "'\n", {{"deleted", *name}});
    });
  }
  {
    auto* cmd = region->add_subcommand("write", "Write bytes and flush them (durable on success)");
    auto name = std::make_shared<std::string>();
    auto range = std::make_shared<RangeFlags>();
    auto payload = std::make_shared<PayloadFlags>();
    cmd->add_option("name", *name, "Region name")->required();
    AddOffsetOption(cmd, range.get());
    AddPayloadOptions(cmd, payload.get(), "Write");
    cmd->callback([&ctx, copts, name, range, payload] {
      auto bytes = LoadPayload(*payload);
      if (!bytes.ok()) return void(ctx.status = bytes.status());
      auto c = ConnectTo(*copts);
      if (!c.ok()) return void(ctx.status = c.status());
      auto r = (*c)->OpenRegion(*name);
      if (!r.ok()) return void(ctx.status = r.status());
      Status s = (*r)->Write(range->offset, *bytes);
      if (s.ok()) s = (*r)->Flush(range->offset, bytes->size());
      if (!s.ok()) return void(ctx.status = s);
      EmitWrite(ctx, *name, range->offset, bytes->size(), DurabilityName((*r)->info().durability));
    });
  }
  {
    auto* cmd = region->add_subcommand("read", "Print bytes of a remote region (text, or hex)");
    auto name = std::make_shared<std::string>();
    auto range = std::make_shared<RangeFlags>();
    cmd->add_option("name", *name, "Region name")->required();
    AddReadOptions(cmd, range.get());
    cmd->callback([&ctx, copts, name, range] {
      auto c = ConnectTo(*copts);
      if (!c.ok()) return void(ctx.status = c.status());
      auto r = (*c)->OpenRegion(*name);
      if (!r.ok()) return void(ctx.status = r.status());
      std::vector<std::byte> out(range->length);
      Status s = (*r)->Read(range->offset, out);
      if (!s.ok()) return void(ctx.status = s);
      EmitRead(ctx, *name, range->offset, out, range->hex);
    });
  }
  {
    auto* cmd = region->add_subcommand("verify",
                                       "Check that the region's durable bytes equal --data/--file");
    auto name = std::make_shared<std::string>();
    auto range = std::make_shared<RangeFlags>();
    auto payload = std::make_shared<PayloadFlags>();
    cmd->add_option("name", *name, "Region name")->required();
    AddOffsetOption(cmd, range.get());
    AddPayloadOptions(cmd, payload.get(), "Expected");
    cmd->callback([&ctx, copts, name, range, payload] {
      auto bytes = LoadPayload(*payload);
      if (!bytes.ok()) return void(ctx.status = bytes.status());
      auto c = ConnectTo(*copts);
      if (!c.ok()) return void(ctx.status = c.status());
      auto r = (*c)->OpenRegion(*name);
      if (!r.ok()) return void(ctx.status = r.status());
      ctx.status = (*r)->Verify(range->offset, *bytes);
      if (ctx.status.ok()) EmitVerified(ctx, *name, range->offset, bytes->size());
    });
  }
  RegisterAccessCommands(*region, ctx, copts);
  // Connection flags may follow the verb: `region create NAME --server H:P`.
  for (CLI::App* verb : region->get_subcommands({})) verb->fallthrough();
}

}  // namespace cosmos::cli
