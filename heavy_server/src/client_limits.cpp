#include "heavy/client_limits.hpp"

#include <charconv>
#include <vector>

namespace heavy {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
  return out;
}

std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    const std::size_t start = i;
    while (i < s.size() && s[i] != ' ') ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

std::string format_one(std::string_view name, const OutputBufferLimit& l) {
  return std::string(name) + " " + std::to_string(l.hard_bytes) + " " + std::to_string(l.soft_bytes) + " " +
         std::to_string(l.soft_seconds);
}

}  // namespace

std::optional<std::size_t> parse_memory(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) return std::nullopt;
  const std::string unit = lower(text.substr(digits));
  std::size_t mul = 1;
  if (unit.empty() || unit == "b") {
    mul = 1;
  } else if (unit == "k") {
    mul = 1000;
  } else if (unit == "kb") {
    mul = 1024;
  } else if (unit == "m") {
    mul = 1000 * 1000;
  } else if (unit == "mb") {
    mul = 1024 * 1024;
  } else if (unit == "g") {
    mul = 1000L * 1000 * 1000;
  } else if (unit == "gb") {
    mul = 1024L * 1024 * 1024;
  } else {
    return std::nullopt;
  }
  std::size_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + digits, value);
  if (ec != std::errc() || end != text.data() + digits || value > SIZE_MAX / mul) return std::nullopt;
  return value * mul;
}

std::string apply_output_limit(std::string_view spec, ClientLimits& limits) {
  const auto w = words(spec);
  if (w.size() != 4) return "client-output-buffer-limit takes CLASS HARD SOFT SECONDS, e.g. \"pubsub 32mb 8mb 60\"";
  const std::string cls = lower(w[0]);
  OutputBufferLimit* target = cls == "normal" ? &limits.normal : cls == "pubsub" ? &limits.pubsub : nullptr;
  if (target == nullptr) return "client-output-buffer-limit: class '" + std::string(w[0]) + "' (normal or pubsub)";
  const auto hard = parse_memory(w[1]);
  const auto soft = parse_memory(w[2]);
  std::uint64_t seconds = 0;
  auto [end, ec] = std::from_chars(w[3].data(), w[3].data() + w[3].size(), seconds);
  if (!hard || !soft || ec != std::errc() || end != w[3].data() + w[3].size()) {
    return "client-output-buffer-limit: bad number in '" + std::string(spec) + "'";
  }
  *target = {*hard, *soft, seconds};
  return {};
}

std::string format_output_limits(const ClientLimits& limits) {
  return format_one("normal", limits.normal) + " slave 268435456 67108864 60 " + format_one("pubsub", limits.pubsub);
}

}  // namespace heavy
