#include "heavy/listener_blob.hpp"

#include <algorithm>

namespace heavy {

namespace {

constexpr std::string_view kMagic = "HVLS";
constexpr std::uint16_t kVersion = 1;
constexpr std::size_t kHeader = 4 + 2 + 4;
constexpr std::uint64_t kSubscriberBit = std::uint64_t{1} << 63;

void put(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::uint64_t get(std::string_view in, std::size_t at, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= std::uint64_t{static_cast<unsigned char>(in[at + static_cast<std::size_t>(i)])} << (8 * i);
  return v;
}

}  // namespace

std::string encode_listener_blob(std::span<const ParkedClientRef> clients, std::size_t max_bytes) {
  const std::size_t room = max_bytes > kHeader ? (max_bytes - kHeader) / 8 : 0;
  const std::size_t n = std::min(clients.size(), room);
  std::string out;
  out.reserve(kHeader + 8 * n);
  out.append(kMagic);
  put(out, kVersion, 2);
  put(out, n, 4);
  for (std::size_t i = 0; i < n; ++i) {
    put(out, (clients[i].id & ~kSubscriberBit) | (clients[i].subscriber ? kSubscriberBit : 0), 8);
  }
  return out;
}

std::optional<std::vector<ParkedClientRef>> decode_listener_blob(std::string_view blob) {
  if (blob.size() < kHeader || blob.substr(0, 4) != kMagic || get(blob, 4, 2) != kVersion) return std::nullopt;
  const std::uint64_t n = get(blob, 6, 4);
  if (n != (blob.size() - kHeader) / 8 || (blob.size() - kHeader) % 8 != 0) return std::nullopt;
  std::vector<ParkedClientRef> clients;
  clients.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t v = get(blob, kHeader + 8 * i, 8);
    clients.push_back({v & ~kSubscriberBit, (v & kSubscriberBit) != 0});
  }
  return clients;
}

}  // namespace heavy
