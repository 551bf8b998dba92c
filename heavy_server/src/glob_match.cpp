#include "heavy/glob_match.hpp"

namespace heavy {

namespace {

// redis' stringmatchlen_impl, with its `skipLongerMatches` guard: once a '*' has tried every
// suffix without success, an earlier '*' cannot do better, so the whole match fails at once.
// Without it "a*a*a*a*...b" against "aaaa...a" takes exponential time.
bool match(std::string_view p, std::string_view s, bool& give_up) noexcept {
  std::size_t pi = 0, si = 0;
  while (pi < p.size() && si < s.size()) {
    switch (p[pi]) {
      case '*': {
        while (pi + 1 < p.size() && p[pi + 1] == '*') ++pi;
        if (pi + 1 == p.size()) return true;
        for (std::size_t k = si; k <= s.size(); ++k) {
          if (match(p.substr(pi + 1), s.substr(k), give_up)) return true;
          if (give_up) return false;
        }
        give_up = true;
        return false;
      }
      case '?':
        ++si;
        break;
      case '[': {
        ++pi;
        const bool negate = pi < p.size() && p[pi] == '^';
        if (negate) ++pi;
        bool matched = false;
        while (pi < p.size()) {
          if (p[pi] == '\\' && pi + 1 < p.size()) {
            ++pi;
            if (p[pi] == s[si]) matched = true;
          } else if (p[pi] == ']') {
            break;
          } else if (pi + 2 < p.size() && p[pi + 1] == '-') {
            unsigned char lo = static_cast<unsigned char>(p[pi]);
            unsigned char hi = static_cast<unsigned char>(p[pi + 2]);
            if (lo > hi) std::swap(lo, hi);
            const auto c = static_cast<unsigned char>(s[si]);
            if (c >= lo && c <= hi) matched = true;
            pi += 2;
          } else if (p[pi] == s[si]) {
            matched = true;
          }
          ++pi;
        }
        if (pi >= p.size()) pi = p.size() - 1;  // unclosed '[': redis stops at the last byte
        if (negate) matched = !matched;
        if (!matched) return false;
        ++si;
        break;
      }
      case '\\':
        if (pi + 1 < p.size()) ++pi;
        [[fallthrough]];
      default:
        if (p[pi] != s[si]) return false;
        ++si;
        break;
    }
    ++pi;
    if (si == s.size()) {
      while (pi < p.size() && p[pi] == '*') ++pi;
      break;
    }
  }
  return pi == p.size() && si == s.size();
}

}  // namespace

bool glob_match(std::string_view pattern, std::string_view text) noexcept {
  bool give_up = false;
  return match(pattern, text, give_up);
}

}  // namespace heavy
