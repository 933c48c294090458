// toml++ (built without exceptions) behind the ConfigFile interface.
#include "common/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "common/edit_distance.h"

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
  COSMOS_ASSIGN_OR_RETURN(ConfigFile f, Parse(ss.str(), path));
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(path, ec);
  f.base_dir_ =
      ec ? std::filesystem::path(path).parent_path().string() : abs.parent_path().string();
  if (f.base_dir_.empty()) f.base_dir_ = ".";
  return f;
}

std::string ConfigFile::ResolvePath(const std::string& path) const {
  if (path.empty() || base_dir_.empty() || std::filesystem::path(path).is_absolute()) return path;
  return (std::filesystem::path(base_dir_) / path).lexically_normal().string();
}

Result<std::string> ConfigFile::GetPath(std::string_view key, std::string fallback) const {
  if (!Has(key)) return fallback;
  COSMOS_ASSIGN_OR_RETURN(std::string p, GetString(key, ""));
  return ResolvePath(p);
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
  ConfigFile element(std::move(impl),
                     origin_ + ":" + std::string(key) + "[" + std::to_string(index) + "]");
  element.base_dir_ = base_dir_;
  return element;
}

namespace {

// Walks a table against the known dotted keys (see CheckKnownKeys).
class KeyChecker {
 public:
  KeyChecker(const std::string& origin, std::span<const std::string_view> known)
      : origin_(origin), known_(known) {
    for (std::string_view k : known_) {
      for (size_t dot = k.find('.'); dot != std::string_view::npos; dot = k.find('.', dot + 1)) {
        sections_.push_back(k.substr(0, dot));
      }
    }
  }

  Status Check(const toml::table& table, const std::string& prefix) const {
    for (const auto& [key, node] : table) {
      const std::string name = prefix + std::string(key.str());
      if (const toml::table* sub = node.as_table()) {
        if (!IsSection(name)) return Unknown(key, true, name, sections_);
        COSMOS_RETURN_IF_ERROR(Check(*sub, name + "."));
      } else if (node.is_array_of_tables()) {
        const std::string array = name + "[]";
        if (!IsSection(array)) {
          return Unknown(key, true, array, sections_);
        }
        for (const toml::node& element : *node.as_array()) {
          COSMOS_RETURN_IF_ERROR(Check(*element.as_table(), array + "."));
        }
      } else if (std::find(known_.begin(), known_.end(), name) == known_.end()) {
        return Unknown(key, false, name, known_);
      }
    }
    return Status::Ok();
  }

 private:
  bool IsSection(std::string_view name) const {
    return std::find(sections_.begin(), sections_.end(), name) != sections_.end();
  }

  // "[name]" / "[[name]]" for a section ("name[]" is an array of tables),
  // "'name'" for a key.
  static std::string Shown(std::string_view name, bool section) {
    if (!section) return "'" + std::string(name) + "'";
    if (name.ends_with("[]")) return "[[" + std::string(name.substr(0, name.size() - 2)) + "]]";
    return "[" + std::string(name) + "]";
  }

  Status Unknown(const toml::key& key, bool section, const std::string& name,
                 std::span<const std::string_view> candidates) const {
    std::string m = "config " + origin_ + " line " + std::to_string(key.source().begin.line) +
                    ": unknown " + (section ? "section " : "key ") + Shown(name, section);
    // A valid key in the wrong section ("port" under [qos]) is best named
    // where it belongs; otherwise the nearest name by edit distance.
    std::string_view nearest;
    if (!section) {
      const std::string leaf = "." + std::string(key.str());
      for (std::string_view c : candidates) {
        if (c.ends_with(leaf) && nearest.empty()) nearest = c;
      }
    }
    if (nearest.empty()) nearest = NearestName(name, candidates);
    if (!nearest.empty()) m += " (did you mean " + Shown(nearest, section) + "?)";
    return Status::InvalidArgument(m);
  }

  const std::string& origin_;
  std::span<const std::string_view> known_;
  std::vector<std::string_view> sections_;
};

}  // namespace

Status ConfigFile::CheckKnownKeys(std::span<const std::string_view> known) const {
  return KeyChecker(origin_, known).Check(impl_->table, "");
}

}  // namespace cosmos
