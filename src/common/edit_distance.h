// Edit distance and "did you mean" lookup for operator-facing names (config
// keys, CLI verbs): one helper so every binary suggests the same way.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

namespace cosmos {

// Levenshtein distance (insertions, deletions, substitutions each cost 1)
// between `a` and `b`, case-sensitive. Thread-safe (pure function).
size_t EditDistance(std::string_view a, std::string_view b);

// The element of `candidates` nearest to `word` by EditDistance (the first
// one on a tie); empty when `candidates` is empty. The returned view points
// into `candidates`' storage.
std::string_view NearestName(std::string_view word, std::span<const std::string_view> candidates);

}  // namespace cosmos
