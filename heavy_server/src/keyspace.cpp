#include "heavy/keyspace.hpp"

#include <vector>

namespace heavy {

namespace {
bool expired(const Value& v, std::int64_t now_ms) { return v.expire_at_ms != 0 && v.expire_at_ms <= now_ms; }
}  // namespace

Value* Database::find(std::string_view key, std::int64_t now_ms) {
  auto it = map_.find(key);
  if (it == map_.end()) return nullptr;
  if (expired(it->second, now_ms)) {
    --volatile_;
    map_.erase(it);
    return nullptr;
  }
  return &it->second;
}

Value& Database::set(std::string_view key, std::string_view data, std::int64_t expire_at_ms, bool keep_ttl) {
  auto it = map_.find(key);
  if (it == map_.end()) {
    it = map_.emplace(std::string(key), Value{}).first;
    keep_ttl = false;
  }
  Value& v = it->second;
  v.data.assign(data);
  if (!keep_ttl) set_expire(v, expire_at_ms);
  return v;
}

void Database::set_expire(Value& value, std::int64_t expire_at_ms) noexcept {
  if (value.expire_at_ms == 0 && expire_at_ms != 0) ++volatile_;
  if (value.expire_at_ms != 0 && expire_at_ms == 0) --volatile_;
  value.expire_at_ms = expire_at_ms;
}

bool Database::erase(std::string_view key, std::int64_t now_ms) {
  auto it = map_.find(key);
  if (it == map_.end()) return false;
  const bool live = !expired(it->second, now_ms);
  if (it->second.expire_at_ms != 0) --volatile_;
  map_.erase(it);
  return live;
}

void Database::clear() noexcept {
  map_.clear();
  volatile_ = 0;
  sweep_cursor_ = 0;
}

std::size_t Database::sweep(std::int64_t now_ms, std::size_t bucket_budget) {
  if (volatile_ == 0 || map_.empty()) return 0;
  // Keys are collected first and erased afterwards: erasing while walking a bucket would
  // invalidate the walk. Pointers to the keys stay valid until their own node is erased.
  std::vector<const std::string*> doomed;
  const std::size_t buckets = map_.bucket_count();
  for (std::size_t i = 0; i < bucket_budget && i < buckets; ++i) {
    const std::size_t b = sweep_cursor_++ % buckets;
    for (auto it = map_.cbegin(b); it != map_.cend(b); ++it) {
      if (expired(it->second, now_ms)) doomed.push_back(&it->first);
    }
  }
  for (const std::string* key : doomed) {
    auto it = map_.find(*key);
    --volatile_;
    map_.erase(it);
  }
  return doomed.size();
}

bool Keyspace::has_volatile_keys() const noexcept {
  for (const Database& d : dbs_) {
    if (d.volatile_count() != 0) return true;
  }
  return false;
}

std::size_t Keyspace::sweep(std::int64_t now_ms, std::size_t bucket_budget_per_db) {
  std::size_t removed = 0;
  for (Database& d : dbs_) removed += d.sweep(now_ms, bucket_budget_per_db);
  return removed;
}

void Keyspace::clear() noexcept {
  for (Database& d : dbs_) d.clear();
}

std::size_t Keyspace::total_keys() const noexcept {
  std::size_t n = 0;
  for (const Database& d : dbs_) n += d.size();
  return n;
}

}  // namespace heavy
