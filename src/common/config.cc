// toml++ (built without exceptions) behind the ConfigFile interface.
#include "common/config.h"

#include <toml++/toml.h>

#include <fstream>
#include <sstream>

namespace cosmos {

struct ConfigFile::Impl {
  toml::table table;
};

ConfigFile::ConfigFile(std::unique_ptr<Impl> impl, std::string origin)
    : impl_(std::move(impl)), origin_(std::move(origin)) {}
ConfigFile::ConfigFile(ConfigFile&&) noexcept = default;
ConfigFile& ConfigFile::operator=(ConfigFile&&) noexcept = default;
ConfigFile::~ConfigFile() = default;

Result<ConfigFile> ConfigFile::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("config file " + path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  return Parse(ss.str(), path);
}

Result<ConfigFile> ConfigFile::Parse(std::string_view text, std::string origin) {
  toml::parse_result parsed = toml::parse(text, origin);
  if (!parsed) {
    const auto& err = parsed.error();
    std::ostringstream m;
    m << "config " << origin << " line " << err.source().begin.line << " column "
      << err.source().begin.column << ": " << err.description();
    return Status::InvalidArgument(m.str());
  }
  auto impl = std::make_unique<Impl>();
  impl->table = std::move(parsed).table();
  return ConfigFile(std::move(impl), std::move(origin));
}

namespace {
Status WrongType(const std::string& origin, std::string_view key, const char* want) {
  return Status::InvalidArgument("config " + origin + ": key '" + std::string(key) + "' must be " +
                                 want);
}
}  // namespace

bool ConfigFile::Has(std::string_view key) const {
  return static_cast<bool>(impl_->table.at_path(key));
}

Result<std::string> ConfigFile::GetString(std::string_view key, std::string fallback) const {
  auto node = impl_->table.at_path(key);
  if (!node) return fallback;
  if (auto v = node.value<std::string>(); v && node.is_string()) return *v;
  return WrongType(origin_, key, "a string");
}

Result<int64_t> ConfigFile::GetInt(std::string_view key, int64_t fallback, int64_t min,
                                   int64_t max) const {
  auto node = impl_->table.at_path(key);
  if (!node) return fallback;
  if (!node.is_integer()) return WrongType(origin_, key, "an integer");
  int64_t v = *node.value<int64_t>();
  if (v < min || v > max) {
    return Status::InvalidArgument("config " + origin_ + ": key '" + std::string(key) +
                                   "' = " + std::to_string(v) + " outside [" + std::to_string(min) +
                                   ", " + std::to_string(max) + "]");
  }
  return v;
}

Result<bool> ConfigFile::GetBool(std::string_view key, bool fallback) const {
  auto node = impl_->table.at_path(key);
  if (!node) return fallback;
  if (!node.is_boolean()) return WrongType(origin_, key, "a boolean");
  return *node.value<bool>();
}

Result<double> ConfigFile::GetDouble(std::string_view key, double fallback) const {
  auto node = impl_->table.at_path(key);
  if (!node) return fallback;
  if (!node.is_number()) return WrongType(origin_, key, "a number");
  return *node.value<double>();
}

Result<size_t> ConfigFile::TableArraySize(std::string_view key) const {
  auto node = impl_->table.at_path(key);
  if (!node) return size_t{0};
  if (!node.is_array_of_tables()) return WrongType(origin_, key, "an array of tables");
  return node.as_array()->size();
}

Result<ConfigFile> ConfigFile::TableArrayElement(std::string_view key, size_t index) const {
  auto node = impl_->table.at_path(key);
  if (!node || !node.is_array_of_tables()) return WrongType(origin_, key, "an array of tables");
  const toml::array& arr = *node.as_array();
  if (index >= arr.size()) return Status::OutOfRange("config " + origin_ + ": index past end");
  auto impl = std::make_unique<Impl>();
  impl->table = *arr[index].as_table();
  return ConfigFile(std::move(impl),
                    origin_ + ":" + std::string(key) + "[" + std::to_string(index) + "]");
}

}  // namespace cosmos
