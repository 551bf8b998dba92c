// Keyspace: the 16 databases of string keys, with expiry.
//
// Times are milliseconds of a monotonic clock chosen by the caller (the server passes the loop's
// cached time, tests pass what they like); 0 means "no expiry". Expired keys disappear lazily on
// access and, a bounded number per call, through sweep().
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace heavy {

inline constexpr int kDatabases = 16;

// Lets the maps be searched with a string_view: no temporary std::string per GET.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

struct Value {
  std::string data;
  std::int64_t expire_at_ms = 0;  // 0: never
};

class Database {
 public:
  using Map = std::unordered_map<std::string, Value, StringHash, std::equal_to<>>;

  // The live value of `key`, or nullptr; an expired key found here is removed.
  [[nodiscard]] Value* find(std::string_view key, std::int64_t now_ms);
  // Creates or overwrites `key`. With keep_ttl an existing key keeps its expiry; otherwise the
  // expiry becomes `expire_at_ms`. Reuses the old value's storage when it is large enough.
  Value& set(std::string_view key, std::string_view data, std::int64_t expire_at_ms, bool keep_ttl = false);
  void set_expire(Value& value, std::int64_t expire_at_ms) noexcept;
  // Removes `key`; true when a live key was removed.
  bool erase(std::string_view key, std::int64_t now_ms);
  void clear() noexcept;
  // Removes expired keys from a bounded number of hash buckets; returns how many.
  std::size_t sweep(std::int64_t now_ms, std::size_t bucket_budget);

  [[nodiscard]] std::size_t size() const noexcept { return map_.size(); }
  [[nodiscard]] std::size_t volatile_count() const noexcept { return volatile_; }
  [[nodiscard]] const Map& entries() const noexcept { return map_; }

 private:
  Map map_;
  std::size_t volatile_ = 0;      // keys with an expiry
  std::size_t sweep_cursor_ = 0;  // next bucket sweep() looks at
};

class Keyspace {
 public:
  [[nodiscard]] Database& db(int index) noexcept { return dbs_[static_cast<std::size_t>(index)]; }
  [[nodiscard]] const Database& db(int index) const noexcept { return dbs_[static_cast<std::size_t>(index)]; }
  [[nodiscard]] bool has_volatile_keys() const noexcept;
  std::size_t sweep(std::int64_t now_ms, std::size_t bucket_budget_per_db);
  void clear() noexcept;
  [[nodiscard]] std::size_t total_keys() const noexcept;

 private:
  std::array<Database, kDatabases> dbs_;
};

}  // namespace heavy
