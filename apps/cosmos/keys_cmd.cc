// `cosmos keys platform|client|region-key`: creates the memory node's
// platform key pair, sealing secret and expected measurement, client identity
// credentials, and user-supplied region keys (file format and key hierarchy:
// docs/security.md "Key files", "User keys").
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>

#include "cli.h"
#include "sec/key_files.h"

namespace cosmos::cli {
namespace {

std::string HexOf(const uint8_t* p, size_t n) {
  std::string out;
  char buf[4];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof(buf), "%02x", static_cast<unsigned>(p[i]));
    out += buf;
  }
  return out;
}

// An existing key file is never replaced silently; say which flag does it.
Status WithForceHint(Status s) {
  if (s.code() != StatusCode::kAlreadyExists) return s;
  return Status(s.code(), s.message() + "; --force replaces it");
}

}  // namespace

void RegisterKeysCommands(CLI::App& app, Context& ctx) {
  CLI::App* keys =
      app.add_subcommand("keys", "Create platform keys, client credentials and region keys");
  keys->require_subcommand(1);

  // keys platform DIR
  {
    auto* cmd = keys->add_subcommand(
        "platform",
        "Create DIR/platform.key (private, 0600), DIR/platform.pub, DIR/sealing.secret "
        "(private, 0600) and DIR/measurement for a memory node (simulated enclave)");
    auto dir = std::make_shared<std::string>();
    auto force = std::make_shared<bool>(false);
    cmd->add_option("dir", *dir, "Directory for the key files (created if missing)")->required();
    cmd->add_flag("--force", *force, "Overwrite existing key files");
    cmd->callback([&ctx, dir, force] {
      ctx.status = [&]() -> Status {
        COSMOS_RETURN_IF_ERROR(WithForceHint(sec::GeneratePlatformKeys(*dir, *force)));
        COSMOS_ASSIGN_OR_RETURN(
            sec::Ed25519PublicKey pub,
            sec::LoadPublicKey(*dir + "/platform.pub", sec::KeyKind::kPlatformPublic));
        COSMOS_ASSIGN_OR_RETURN(
            sec::Bytes measurement,
            sec::ReadKeyFile(*dir + "/measurement", sec::KeyKind::kMeasurement));
        const std::string pub_hex = HexOf(pub.data(), pub.size());
        const std::string m_hex = HexOf(measurement.data(), measurement.size());
        std::ostringstream out;
        out << "platform keys in " << *dir << "\n"
            << "  platform.key     private signing key (keep on the memory node, mode 0600)\n"
            << "  sealing.secret   sealing secret (keep on the memory node, mode 0600)\n"
            << "  platform.pub     public key " << pub_hex << " (give to clients)\n"
            << "  measurement      " << m_hex << " (give to clients)\n"
            << "  note: the enclave is SIMULATED (no hardware isolation); see "
               "docs/threat_model.md\n";
        ctx.Emit(out.str(), {{"dir", *dir},
                             {"platform_private", *dir + "/platform.key"},
                             {"platform_public", *dir + "/platform.pub"},
                             {"sealing_secret", *dir + "/sealing.secret"},
                             {"measurement_file", *dir + "/measurement"},
                             {"platform_public_key", pub_hex},
                             {"measurement", m_hex},
                             {"enclave", "simulated"}});
        return Status::Ok();
      }();
    });
  }

  // keys client DIR NAME
  {
    auto* cmd = keys->add_subcommand(
        "client", "Create client credentials DIR/NAME.key (private, 0600) and DIR/NAME.pub");
    auto dir = std::make_shared<std::string>();
    auto name = std::make_shared<std::string>();
    auto force = std::make_shared<bool>(false);
    cmd->add_option("dir", *dir, "Directory for the key files (created if missing)")->required();
    cmd->add_option("name", *name, "Client name (a plain file name)")->required();
    cmd->add_flag("--force", *force, "Overwrite existing key files");
    cmd->callback([&ctx, dir, name, force] {
      ctx.status = [&]() -> Status {
        COSMOS_RETURN_IF_ERROR(WithForceHint(sec::GenerateClientCredentials(*dir, *name, *force)));
        const std::string pub_path = *dir + "/" + *name + ".pub";
        COSMOS_ASSIGN_OR_RETURN(sec::Ed25519PublicKey pub,
                                sec::LoadPublicKey(pub_path, sec::KeyKind::kClientPublic));
        const std::string pub_hex = HexOf(pub.data(), pub.size());
        std::ostringstream out;
        out << "client " << *name << " credentials in " << *dir << "\n"
            << "  " << *name << ".key  private identity key (keep on the client, mode 0600)\n"
            << "  " << *name << ".pub  public key " << pub_hex
            << " (add to the node allow list and region access lists)\n";
        ctx.Emit(out.str(), {{"dir", *dir},
                             {"name", *name},
                             {"client_private", *dir + "/" + *name + ".key"},
                             {"client_public", pub_path},
                             {"client_public_key", pub_hex}});
        return Status::Ok();
      }();
    });
  }

  // keys region-key FILE
  {
    auto* cmd = keys->add_subcommand(
        "region-key",
        "Create a region key FILE (32 random bytes, mode 0600) for `region create --secure "
        "--user-key-file` and `region rotate-key --user-key-file`");
    auto path = std::make_shared<std::string>();
    auto force = std::make_shared<bool>(false);
    cmd->add_option("file", *path, "Key file to create")->required();
    cmd->add_flag("--force", *force, "Overwrite an existing file");
    cmd->callback([&ctx, path, force] {
      ctx.status = WithForceHint(sec::GenerateRegionKey(*path, *force));
      if (ctx.status.ok()) {
        ctx.Emit("region key in " + *path +
                     " (keep it on the client; the node never stores it in clear)\n",
                 {{"file", *path}});
      }
    });
  }
}

}  // namespace cosmos::cli
