#include "heavy/session_blob.hpp"

#include <cstring>
#include <string>

#include "heavy/keyspace.hpp"

namespace heavy {

namespace {

constexpr char kMagic[4] = {'H', 'V', 'S', 'S'};
constexpr std::uint16_t kFlagInMulti = 1;
constexpr std::uint16_t kFlagMultiFailed = 2;
constexpr std::uint16_t kKnownFlags = kFlagInMulti | kFlagMultiFailed;

std::uint32_t fnv1a(std::span<const std::byte> bytes) {
  std::uint32_t h = 2166136261u;
  for (std::byte b : bytes) {
    h ^= static_cast<std::uint8_t>(b);
    h *= 16777619u;
  }
  return h;
}

class Writer {
 public:
  void bytes(const void* p, std::size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    out_.insert(out_.end(), b, b + n);
  }
  template <class T>
  void uint(T v) {
    for (std::size_t i = 0; i < sizeof(T); ++i) out_.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xff));
  }
  void str(std::string_view s) {
    uint(static_cast<std::uint32_t>(s.size()));
    bytes(s.data(), s.size());
  }
  std::vector<std::byte>& out() { return out_; }

 private:
  std::vector<std::byte> out_;
};

class Reader {
 public:
  explicit Reader(std::span<const std::byte> in) : in_(in) {}
  [[nodiscard]] std::size_t left() const { return in_.size() - at_; }
  template <class T>
  bool uint(T& v) {
    if (left() < sizeof(T)) return false;
    v = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) v |= static_cast<T>(static_cast<T>(in_[at_ + i]) << (8 * i));
    at_ += sizeof(T);
    return true;
  }
  bool str(std::string& s) {
    std::uint32_t n = 0;
    if (!uint(n) || left() < n) return false;
    s.assign(reinterpret_cast<const char*>(in_.data() + at_), n);
    at_ += n;
    return true;
  }
  bool magic() {
    if (left() < sizeof kMagic || std::memcmp(in_.data(), kMagic, sizeof kMagic) != 0) return false;
    at_ += sizeof kMagic;
    return true;
  }

 private:
  std::span<const std::byte> in_;
  std::size_t at_ = 0;
};

constexpr std::size_t kStrOverhead = 4;

// A u32 count, then that many strings in strictly ascending order (channels, patterns).
bool read_names(Reader& r, std::set<std::string, std::less<>>& names) {
  std::uint32_t count = 0;
  if (!r.uint(count) || count > r.left() / kStrOverhead) return false;
  for (std::uint32_t i = 0; i < count; ++i) {
    std::string name;
    if (!r.str(name)) return false;
    if (!names.empty() && !(*names.rbegin() < name)) return false;
    names.emplace_hint(names.end(), std::move(name));
  }
  return true;
}

}  // namespace

std::optional<std::vector<std::byte>> encode_session(const Session& s, std::size_t max_bytes) {
  // Size first, so an oversized session is refused before building anything.
  std::size_t size = 4 + 2 + 2 + 8 + 1 + kStrOverhead + s.name.size() + 4 * 8 + 4 + 4 + 4;
  for (const std::string& c : s.channels) size += kStrOverhead + c.size();
  size += 4 + 2 * kStrOverhead + s.unparsed_input.size() + s.unsent_output.size();
  for (const std::string& p : s.patterns) size += kStrOverhead + p.size();
  for (const auto& cmd : s.multi_queue) {
    size += 4;
    for (const std::string& a : cmd) size += kStrOverhead + a.size();
  }
  if (size > max_bytes) return std::nullopt;

  Writer w;
  w.out().reserve(size);
  w.bytes(kMagic, sizeof kMagic);
  w.uint(kSessionBlobVersion);
  w.uint(static_cast<std::uint16_t>((s.in_multi ? kFlagInMulti : 0) | (s.multi_failed ? kFlagMultiFailed : 0)));
  w.uint(s.id);
  w.uint(static_cast<std::uint8_t>(s.db));
  w.str(s.name);
  w.uint(s.counters.created_unix_ms);
  w.uint(s.counters.commands);
  w.uint(s.counters.parks);
  w.uint(s.counters.wakes);
  w.uint(static_cast<std::uint32_t>(s.channels.size()));
  for (const std::string& c : s.channels) w.str(c);
  w.uint(static_cast<std::uint32_t>(s.multi_queue.size()));
  for (const auto& cmd : s.multi_queue) {
    w.uint(static_cast<std::uint32_t>(cmd.size()));
    for (const std::string& a : cmd) w.str(a);
  }
  w.uint(static_cast<std::uint32_t>(s.patterns.size()));
  for (const std::string& p : s.patterns) w.str(p);
  w.str(s.unparsed_input);
  w.str(s.unsent_output);
  w.uint(fnv1a(w.out()));
  return std::move(w.out());
}

SessionDecodeResult decode_session(std::span<const std::byte> blob) {
  auto bad = [](std::string_view why) { return SessionDecodeResult{std::nullopt, why}; };
  if (blob.size() < 4) return bad("session blob too short");
  const auto body = blob.first(blob.size() - 4);
  Reader tail(blob.last(4));
  std::uint32_t checksum = 0;
  (void)tail.uint(checksum);

  Reader r(body);
  if (!r.magic()) return bad("not a session blob (bad magic)");
  std::uint16_t version = 0, flags = 0;
  if (!r.uint(version)) return bad("session blob truncated");
  if (version != 1 && version != kSessionBlobVersion) return bad("unsupported session blob version");
  if (checksum != fnv1a(body)) return bad("session blob checksum mismatch");
  if (!r.uint(flags)) return bad("session blob truncated");
  if ((flags & ~kKnownFlags) != 0) return bad("session blob has unknown flags");

  Session s;
  s.in_multi = (flags & kFlagInMulti) != 0;
  s.multi_failed = (flags & kFlagMultiFailed) != 0;
  std::uint8_t db = 0;
  if (!r.uint(s.id) || !r.uint(db) || !r.str(s.name)) return bad("session blob truncated");
  if (db >= kDatabases) return bad("session blob has a bad db index");
  s.db = db;
  if (!r.uint(s.counters.created_unix_ms) || !r.uint(s.counters.commands) || !r.uint(s.counters.parks) ||
      !r.uint(s.counters.wakes)) {
    return bad("session blob truncated");
  }

  if (!read_names(r, s.channels)) return bad("session blob channels truncated or not in order");

  std::uint32_t queued = 0;
  if (!r.uint(queued) || queued > r.left() / 4) return bad("session blob truncated");
  if (queued != 0 && !s.in_multi) return bad("session blob queues commands outside MULTI");
  s.multi_queue.reserve(queued);
  for (std::uint32_t i = 0; i < queued; ++i) {
    std::uint32_t argc = 0;
    if (!r.uint(argc) || argc > r.left() / kStrOverhead) return bad("session blob truncated");
    if (argc == 0) return bad("session blob has an empty queued command");
    std::vector<std::string> cmd(argc);
    for (std::string& a : cmd) {
      if (!r.str(a)) return bad("session blob truncated");
      s.multi_queue_bytes += a.size();
    }
    s.multi_queue.push_back(std::move(cmd));
  }
  if (version >= 2) {
    if (!read_names(r, s.patterns)) return bad("session blob patterns truncated or not in order");
    if (!r.str(s.unparsed_input) || !r.str(s.unsent_output)) return bad("session blob truncated");
  }
  if (r.left() != 0) return bad("session blob has trailing bytes");
  return {std::move(s), {}};
}

}  // namespace heavy
