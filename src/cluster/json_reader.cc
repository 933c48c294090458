// Strict, non-throwing JSON field readers for untrusted documents.
#include "cluster/json_reader.h"

#include <charconv>

namespace cosmos::cluster::json {
namespace {

Status Bad(std::string_view what, std::string_view field, std::string_view problem) {
  return Status::Corruption(std::string(what) + ": field '" + std::string(field) + "' " +
                            std::string(problem));
}

// The deepest nesting of brackets outside strings, stopping early past the
// limit. Bounds the parser's work before it allocates a tree.
int NestingDepth(std::string_view text) {
  int depth = 0;
  int deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      deepest = std::max(deepest, ++depth);
      if (deepest > kMaxDepth) return deepest;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return deepest;
}

}  // namespace

Result<Json> ParseObject(std::string_view text, std::string_view what) {
  if (text.size() > kMaxDocumentBytes) {
    return Status::Corruption(std::string(what) + ": " + std::to_string(text.size()) +
                              " bytes exceed the limit of " + std::to_string(kMaxDocumentBytes));
  }
  if (NestingDepth(text) > kMaxDepth) {
    return Status::Corruption(std::string(what) + ": nested deeper than " +
                              std::to_string(kMaxDepth));
  }
  Json doc = Json::parse(text.begin(), text.end(), /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Status::Corruption(std::string(what) + ": not valid JSON");
  if (!doc.is_object()) return Status::Corruption(std::string(what) + ": not a JSON object");
  return doc;
}

Result<int64_t> ParseInt64(std::string_view text, std::string_view what) {
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  const bool negative = !text.empty() && text.front() == '-';
  const size_t digits = text.size() - (negative ? 1 : 0);
  if (digits == 0 || digits > 20) {
    return Status::Corruption(std::string(what) + ": '" + std::string(text.substr(0, 24)) +
                              "' is not a decimal integer");
  }
  int64_t value = 0;
  const auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || ptr != end) {
    return Status::Corruption(std::string(what) + ": '" + std::string(text.substr(0, 24)) +
                              "' is not a 64-bit decimal integer");
  }
  return value;
}

Result<std::string> String(const Json& obj, std::string_view field, std::string_view what,
                           bool required) {
  const auto it = obj.find(field);
  if (it == obj.end()) {
    if (required) return Bad(what, field, "is missing");
    return std::string();
  }
  if (!it->is_string()) return Bad(what, field, "is not a string");
  return it->get_ref<const std::string&>();
}

Result<int64_t> Int64String(const Json& obj, std::string_view field, std::string_view what) {
  const auto it = obj.find(field);
  if (it == obj.end()) return int64_t{0};
  if (!it->is_string()) return Bad(what, field, "is not an int64 string");
  return ParseInt64(it->get_ref<const std::string&>(),
                    std::string(what) + ": field '" + std::string(field) + "'");
}

Result<bool> Bool(const Json& obj, std::string_view field, std::string_view what) {
  const auto it = obj.find(field);
  if (it == obj.end()) return false;
  if (!it->is_boolean()) return Bad(what, field, "is not a boolean");
  return it->get<bool>();
}

Result<uint64_t> Uint64Number(const Json& obj, std::string_view field, std::string_view what) {
  const auto it = obj.find(field);
  if (it == obj.end()) return Bad(what, field, "is missing");
  if (!it->is_number_unsigned()) return Bad(what, field, "is not a non-negative integer");
  return it->get<uint64_t>();
}

Status RecordFormat(const Json& obj, uint64_t newest, std::string_view what) {
  COSMOS_ASSIGN_OR_RETURN(uint64_t format, Uint64Number(obj, "format", what));
  if (format == 0) return Bad(what, "format", "is 0");
  if (format > newest) {
    return Status::FailedPrecondition(std::string(what) + ": format " + std::to_string(format) +
                                      " is newer than this build reads (" + std::to_string(newest) +
                                      ")");
  }
  return Status::Ok();
}

Result<Json> Object(const Json& obj, std::string_view field, std::string_view what, bool required) {
  const auto it = obj.find(field);
  if (it == obj.end()) {
    if (required) return Bad(what, field, "is missing");
    return Json();
  }
  if (!it->is_object()) return Bad(what, field, "is not an object");
  return *it;
}

Result<Json> Array(const Json& obj, std::string_view field, std::string_view what) {
  const auto it = obj.find(field);
  if (it == obj.end()) return Json::array();
  if (!it->is_array()) return Bad(what, field, "is not an array");
  return *it;
}

}  // namespace cosmos::cluster::json
