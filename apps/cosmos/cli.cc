// Output and parsing helpers of the admin CLI.
#include "cli.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include "common/build_info.h"
#include "cosmos/client.h"

namespace cosmos::cli {

void Context::Emit(std::string human, nlohmann::ordered_json json_doc) {
  text = std::move(human);
  output = std::move(json_doc);
}

Result<uint8_t> ParseRights(std::string_view text) {
  const Status bad = Status::InvalidArgument("rights '" + std::string(text) +
                                             "': use letters of rwa (e.g. rw) or read,write,admin");
  uint8_t rights = 0;
  if (text.find_first_not_of("rwa") == std::string_view::npos) {
    for (char c : text) rights |= c == 'r' ? kAccessRead : c == 'w' ? kAccessWrite : kAccessAdmin;
  } else {
    size_t pos = 0;
    while (pos <= text.size()) {
      const size_t comma = std::min(text.find(',', pos), text.size());
      const std::string_view word = text.substr(pos, comma - pos);
      if (word == "read") {
        rights |= kAccessRead;
      } else if (word == "write") {
        rights |= kAccessWrite;
      } else if (word == "admin") {
        rights |= kAccessAdmin;
      } else {
        return bad;
      }
      pos = comma + 1;
    }
  }
  if (rights == 0) return bad;
  return rights;
}

std::string RightsName(uint8_t rights) {
  std::string out = "---";
  if (rights & kAccessRead) out[0] = 'r';
  if (rights & kAccessWrite) out[1] = 'w';
  if (rights & kAccessAdmin) out[2] = 'a';
  return out;
}

std::string HumanBytes(uint64_t bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int unit = 0;
  while (v >= 1024 && unit < 4) {
    v /= 1024;
    ++unit;
  }
  char buf[32];
  if (unit == 0) {
    std::snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(buf, sizeof(buf), "%.1f %s", v, kUnits[unit]);
  }
  return buf;
}

void AddOffsetOption(CLI::App* cmd, RangeFlags* flags) {
  cmd->add_option("--offset", flags->offset, "Byte offset within the region (4096, 4K, ...)")
      ->transform(cosmos::app::ByteCount())
      ->capture_default_str();
}

void AddReadOptions(CLI::App* cmd, RangeFlags* flags) {
  AddOffsetOption(cmd, flags);
  cmd->add_option("--length", flags->length, "Number of bytes (64, 4K, ...; at most 64M)")
      ->transform(cosmos::app::ByteCount(kMaxReadLength))
      ->capture_default_str();
  cmd->add_flag("--hex", flags->hex, "Always print hex (default: text when printable)");
}

void AddPayloadOptions(CLI::App* cmd, PayloadFlags* flags, std::string_view what) {
  // One of the two is required: a group needing exactly one option makes a
  // missing or doubled payload a usage error (exit 2) like any other.
  CLI::Option_group* group =
      cmd->add_option_group("Payload", "exactly one of --data TEXT or --file PATH");
  flags->data_option =
      group->add_option("--data", flags->data, std::string(what) + ": these bytes (as given)");
  flags->file_option =
      group->add_option("--file", flags->file, std::string(what) + ": the contents of this file");
  group->require_option(1);
}

Result<std::vector<std::byte>> LoadPayload(const PayloadFlags& flags) {
  std::string raw;
  if (flags.file_option != nullptr && flags.file_option->count() > 0) {
    std::ifstream in(flags.file, std::ios::binary);
    if (!in) return Status::NotFound("cannot read input file " + flags.file);
    raw.assign(std::istreambuf_iterator<char>(in), {});
  } else if (flags.data_option != nullptr && flags.data_option->count() > 0) {
    raw = flags.data;
  } else {
    return Status::InvalidArgument("give --data TEXT or --file PATH");
  }
  std::vector<std::byte> out(raw.size());
  std::memcpy(out.data(), raw.data(), raw.size());
  return out;
}

namespace {

bool AllPrintable(std::span<const std::byte> bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](std::byte b) {
    const auto c = static_cast<unsigned char>(b);
    return std::isprint(c) || c == '\n' || c == '\t';
  });
}

std::string Hex(std::span<const std::byte> bytes, bool wrap) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < bytes.size(); ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
    if (wrap && i % 32 == 31 && i + 1 < bytes.size()) out.push_back('\n');
  }
  return out;
}

}  // namespace

std::string ShowBytes(std::span<const std::byte> bytes, bool hex) {
  if (!hex && AllPrintable(bytes))
    return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return Hex(bytes, true);
}

void EmitRead(Context& ctx, std::string_view region, uint64_t offset,
              std::span<const std::byte> bytes, bool hex) {
  nlohmann::ordered_json text = nullptr;
  if (AllPrintable(bytes))
    text = std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  ctx.Emit(ShowBytes(bytes, hex) + "\n", {{"region", region},
                                          {"offset", offset},
                                          {"length", bytes.size()},
                                          {"text", text},
                                          {"hex", Hex(bytes, false)}});
}

void EmitWrite(Context& ctx, std::string_view region, uint64_t offset, uint64_t length,
               std::string_view durability) {
  ctx.Emit(
      "wrote and persisted " + std::to_string(length) + " bytes at offset " +
          std::to_string(offset) + " of region '" + std::string(region) + "' (durability " +
          std::string(durability) + ")\n",
      {{"region", region}, {"offset", offset}, {"length", length}, {"durability", durability}});
}

void EmitVerified(Context& ctx, std::string_view region, uint64_t offset, uint64_t length) {
  ctx.Emit("verified " + std::to_string(length) + " durable bytes at offset " +
               std::to_string(offset) + " of region '" + std::string(region) + "'\n",
           {{"region", region}, {"offset", offset}, {"length", length}, {"verified", true}});
}

void EmitRegionList(Context& ctx, const std::vector<std::string>& extra_columns,
                    const std::vector<RegionRow>& rows, std::string_view source_key,
                    std::string_view source, nlohmann::ordered_json regions) {
  std::vector<std::vector<std::string>> table;
  table.push_back({"NAME", "SIZE", "BYTES"});
  table.back().insert(table.back().end(), extra_columns.begin(), extra_columns.end());
  for (const RegionRow& r : rows) {
    table.push_back({r.name, HumanBytes(r.size), std::to_string(r.size)});
    table.back().insert(table.back().end(), r.extra.begin(), r.extra.end());
  }
  std::vector<size_t> width(table.front().size(), 0);
  for (const auto& row : table) {
    for (size_t c = 0; c < row.size() && c < width.size(); ++c)
      width[c] = std::max(width[c], row[c].size());
  }
  std::string text;
  for (const auto& row : table) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line += std::string(width[c] - row[c].size() + 2, ' ');
    }
    text += line + "\n";
  }
  text += std::to_string(rows.size()) + " region(s)\n";
  ctx.Emit(text, {{std::string(source_key), source}, {"regions", std::move(regions)}});
}

void RegisterVersionCommand(CLI::App& app, Context& ctx) {
  CLI::App* cmd = app.add_subcommand(
      "version", "Print the version, git commit, build type, backends and enclave kind");
  cmd->callback([&ctx] {
    const BuildInfo& b = GetBuildInfo();
    auto list = [](std::span<const std::string_view> items) {
      nlohmann::ordered_json a = nlohmann::ordered_json::array();
      for (std::string_view i : items) a.push_back(i);
      return a;
    };
    auto join = [](std::span<const std::string_view> items) {
      std::string out;
      for (std::string_view i : items) out += (out.empty() ? "" : ", ") + std::string(i);
      return out;
    };
    nlohmann::ordered_json j = {{"version", b.version},
                                {"git_commit", b.git_commit},
                                {"build_type", b.build_type},
                                {"compiler", b.compiler},
                                {"sanitizers", b.sanitizers},
                                {"pool_backends", list(b.pool_backends)},
                                {"kv_backends", list(b.kv_backends)},
                                {"transports", list(b.transports)},
                                {"enclave", b.enclave}};
    std::string text = VersionLine("cosmos") + "\n";
    text += "  pool backends: " + join(b.pool_backends) + "\n";
    text += "  kv backends:   " + join(b.kv_backends) + "\n";
    text += "  transports:    " + join(b.transports) + "\n";
    text += "  enclave:       " + std::string(b.enclave) + " (no hardware isolation)\n";
    text += "  compiler:      " + std::string(b.compiler) + "\n";
    ctx.Emit(text, j);
  });
}

}  // namespace cosmos::cli
