// ConfigFile: typed, error-checked access to a TOML configuration file
// (toml++). Config files are untrusted input: every malformed value yields a
// Status naming the file, key and expected type.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cosmos/result.h"

namespace cosmos {

class ConfigFile {
 public:
  // Parses the file at `path`. Errors: NotFound (missing file),
  // InvalidArgument (syntax error, with line and column).
  static Result<ConfigFile> Load(const std::string& path);
  // Parses TOML text; `origin` names it in error messages.
  static Result<ConfigFile> Parse(std::string_view text, std::string origin = "<string>");

  ConfigFile(ConfigFile&&) noexcept;
  ConfigFile& operator=(ConfigFile&&) noexcept;
  ~ConfigFile();

  // Dotted keys ("server.port"). A missing key returns `fallback`; a present
  // key of the wrong type or out of range is InvalidArgument.
  Result<std::string> GetString(std::string_view key, std::string fallback) const;
  Result<int64_t> GetInt(std::string_view key, int64_t fallback, int64_t min = INT64_MIN,
                         int64_t max = INT64_MAX) const;
  Result<bool> GetBool(std::string_view key, bool fallback) const;
  Result<double> GetDouble(std::string_view key, double fallback) const;
  bool Has(std::string_view key) const;

  // Number of elements of the array of tables at `key` ("pool" for [[pool]]),
  // and a sub-config view of element `index`. Missing key -> 0 elements.
  Result<size_t> TableArraySize(std::string_view key) const;
  Result<ConfigFile> TableArrayElement(std::string_view key, size_t index) const;

  // Refuses keys and sections the caller does not know, so a typo is an
  // error rather than a silently ignored setting. `known` lists every valid
  // key as a dotted path ("server.port"); keys of an array of tables use
  // "[]" ("pool[].path"). A section is valid when some known key lies under
  // it. Returns InvalidArgument for an unknown key or section (the first in
  // key order), naming the origin, its line and the nearest known name, e.g.
  // "config /etc/cosmosd.toml line 4: unknown key 'server.workrs' (did you
  // mean 'server.workers'?)"; Ok when every key is known.
  [[nodiscard]] Status CheckKnownKeys(std::span<const std::string_view> known) const;

  const std::string& origin() const { return origin_; }

  // A path taken from the file: relative paths resolve against the
  // directory of the file it was loaded from (as nginx and systemd read
  // theirs), so the daemon's working directory does not matter. Absolute
  // and empty paths, and any path of a config not loaded from a file
  // (Parse), are returned as they are.
  std::string ResolvePath(const std::string& path) const;
  // Like GetString, the value resolved with ResolvePath.
  Result<std::string> GetPath(std::string_view key, std::string fallback) const;

 private:
  struct Impl;
  ConfigFile(std::unique_ptr<Impl> impl, std::string origin);
  std::unique_ptr<Impl> impl_;
  std::string origin_;
  std::string base_dir_;  // directory of the loaded file; empty for Parse
};

}  // namespace cosmos
