// glob_match: redis' pattern matching (util.c stringmatchlen), for PSUBSCRIBE and CONFIG GET.
//   *  any run of bytes     ?  one byte     [abc] [^abc] [a-z]  a set     \x  x itself
// Byte-wise and case-sensitive, like redis; an unclosed '[' matches up to the end of the
// pattern, as redis' does. Pure; recursion depth is bounded by the number of '*' in a row
// being collapsed, and each '*' tries every suffix, as in redis (patterns are short).
#pragma once

#include <string_view>

namespace heavy {

[[nodiscard]] bool glob_match(std::string_view pattern, std::string_view text) noexcept;

}  // namespace heavy
