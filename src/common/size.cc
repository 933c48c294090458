// ParseSize / FormatSize: the single size parser (see size.h).
#include "common/size.h"

#include <array>
#include <cctype>

namespace cosmos {
namespace {

struct Unit {
  std::string_view name;  // lower case
  int shift;
};

constexpr std::array<Unit, 14> kUnits = {{{"", 0},
                                          {"b", 0},
                                          {"k", 10},
                                          {"kb", 10},
                                          {"kib", 10},
                                          {"m", 20},
                                          {"mb", 20},
                                          {"mib", 20},
                                          {"g", 30},
                                          {"gb", 30},
                                          {"gib", 30},
                                          {"t", 40},
                                          {"tb", 40},
                                          {"tib", 40}}};

Status BadSize(std::string_view text, std::string_view why) {
  return Status::InvalidArgument("invalid size '" + std::string(text) + "': " + std::string(why) +
                                 " (expected bytes or a number with unit K, M, G or T, e.g. "
                                 "4096, 64K, 64M, 64MiB, 64mb)");
}

}  // namespace

Result<uint64_t> ParseSize(std::string_view text) {
  size_t pos = 0;
  uint64_t value = 0;
  while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
    const uint64_t digit = static_cast<uint64_t>(text[pos] - '0');
    if (value > (UINT64_MAX - digit) / 10) return BadSize(text, "too large");
    value = value * 10 + digit;
    ++pos;
  }
  if (pos == 0) return BadSize(text, "does not start with a digit");
  std::string unit;
  for (char c : text.substr(pos)) {
    unit.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  int shift = -1;
  for (const Unit& u : kUnits) {
    if (u.name == unit) shift = u.shift;
  }
  if (shift < 0) return BadSize(text, "unknown unit '" + std::string(text.substr(pos)) + "'");
  if (shift > 0 && value > (UINT64_MAX >> shift)) return BadSize(text, "too large");
  return value << shift;
}

std::string FormatSize(uint64_t bytes) {
  static constexpr std::array<std::pair<int, char>, 4> kShifts = {
      {{40, 'T'}, {30, 'G'}, {20, 'M'}, {10, 'K'}}};
  if (bytes != 0) {
    for (const auto& [shift, letter] : kShifts) {
      const uint64_t unit = uint64_t{1} << shift;
      if (bytes % unit == 0) return std::to_string(bytes >> shift) + letter;
    }
  }
  return std::to_string(bytes);
}

}  // namespace cosmos
