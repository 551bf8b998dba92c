#include "heavy/snapshot.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string_view>

#include "parker/unique_fd.hpp"

namespace heavy {

namespace {

constexpr char kMagic[8] = {'H', 'V', 'S', 'N', 'A', 'P', '0', '1'};
constexpr std::uint32_t kVersion = 1;
constexpr std::uint8_t kTagEntry = 1;
constexpr std::uint8_t kTagEnd = 0xff;
constexpr std::size_t kFlushAt = 1 << 20;

class Fnv1a {
 public:
  void add(const char* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      hash_ ^= static_cast<unsigned char>(p[i]);
      hash_ *= 16777619u;
    }
  }
  [[nodiscard]] std::uint32_t value() const { return hash_; }

 private:
  std::uint32_t hash_ = 2166136261u;
};

std::string errno_text(std::string_view call, const std::string& path) {
  return std::string(call) + " " + path + ": " + std::strerror(errno);
}

bool write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

template <class T>
void put(std::string& out, T v) {
  for (std::size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

class Cursor {
 public:
  explicit Cursor(std::string_view in) : in_(in) {}
  template <class T>
  bool get(T& v) {
    if (in_.size() - at_ < sizeof(T)) return false;
    v = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) {
      v |= static_cast<T>(static_cast<T>(static_cast<unsigned char>(in_[at_ + i])) << (8 * i));
    }
    at_ += sizeof(T);
    return true;
  }
  bool str(std::string_view& s) {
    std::uint32_t n = 0;
    if (!get(n) || in_.size() - at_ < n) return false;
    s = in_.substr(at_, n);
    at_ += n;
    return true;
  }
  [[nodiscard]] std::size_t left() const { return in_.size() - at_; }

 private:
  std::string_view in_;
  std::size_t at_ = 0;
};

std::string directory_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

SnapshotClock snapshot_clock_now(std::int64_t monotonic_ms) {
  using namespace std::chrono;
  return {monotonic_ms, duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count()};
}

SnapshotResult save_snapshot(const Keyspace& keyspace, const std::string& path, SnapshotClock clock) {
  SnapshotResult result;
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  parker::UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) {
    result.error = errno_text("open", temp);
    return result;
  }
  Fnv1a sum;
  std::string buf;
  buf.reserve(kFlushAt + 1024);
  auto flush = [&]() {
    sum.add(buf.data(), buf.size());
    const bool ok = write_all(fd.get(), buf.data(), buf.size());
    buf.clear();
    return ok;
  };
  bool ok = true;
  buf.append(kMagic, sizeof kMagic);
  put(buf, kVersion);
  for (int db = 0; db < kDatabases && ok; ++db) {
    for (const auto& [key, value] : keyspace.db(db).entries()) {
      std::int64_t expire_unix = 0;
      if (value.expire_at_ms != 0) {
        if (value.expire_at_ms <= clock.monotonic_ms) continue;  // already expired
        expire_unix = clock.unix_ms + (value.expire_at_ms - clock.monotonic_ms);
      }
      put(buf, kTagEntry);
      put(buf, static_cast<std::uint8_t>(db));
      put(buf, static_cast<std::uint32_t>(key.size()));
      buf.append(key);
      put(buf, static_cast<std::uint32_t>(value.data.size()));
      buf.append(value.data);
      put(buf, static_cast<std::uint64_t>(expire_unix));
      ++result.keys;
      if (buf.size() >= kFlushAt && !flush()) {
        ok = false;
        break;
      }
    }
  }
  if (ok) {
    put(buf, kTagEnd);
    ok = flush();
  }
  if (ok) {
    std::string tail;
    put(tail, sum.value());
    ok = write_all(fd.get(), tail.data(), tail.size());
  }
  if (!ok) {
    result.error = errno_text("write", temp);
  } else if (::fsync(fd.get()) != 0) {
    result.error = errno_text("fsync", temp);
    ok = false;
  } else if (::close(fd.release()) != 0) {
    result.error = errno_text("close", temp);
    ok = false;
  } else if (::rename(temp.c_str(), path.c_str()) != 0) {
    result.error = errno_text("rename", path);
    ok = false;
  }
  if (!ok) {
    ::unlink(temp.c_str());
    return result;
  }
  // The rename is durable only once the directory is synced.
  const std::string dir = directory_of(path);
  parker::UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd) (void)::fsync(dfd.get());
  result.ok = true;
  return result;
}

SnapshotResult load_snapshot(Keyspace& keyspace, const std::string& path, SnapshotClock clock) {
  SnapshotResult result;
  parker::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) {
      result.ok = true;
      result.missing = true;
    } else {
      result.error = errno_text("open", path);
    }
    return result;
  }
  std::string data;
  char chunk[65536];
  while (true) {
    ssize_t n = ::read(fd.get(), chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      result.error = errno_text("read", path);
      return result;
    }
    if (n == 0) break;
    data.append(chunk, static_cast<std::size_t>(n));
  }

  auto bad = [&](std::string_view why) {
    keyspace.clear();
    result.keys = 0;
    result.error = path + ": " + std::string(why);
    return result;
  };
  if (data.size() < sizeof kMagic + 4 + 1 + 4 || std::memcmp(data.data(), kMagic, sizeof kMagic) != 0) {
    return bad("not a heavy_server snapshot");
  }
  const std::string_view body(data.data(), data.size() - 4);
  Cursor tail(std::string_view(data).substr(data.size() - 4));
  std::uint32_t checksum = 0;
  (void)tail.get(checksum);
  Fnv1a sum;
  sum.add(body.data(), body.size());
  if (sum.value() != checksum) return bad("checksum mismatch (truncated or damaged)");

  Cursor in(body.substr(sizeof kMagic));
  std::uint32_t version = 0;
  if (!in.get(version) || version != kVersion) return bad("unsupported snapshot version");
  while (true) {
    std::uint8_t tag = 0;
    if (!in.get(tag)) return bad("truncated");
    if (tag == kTagEnd) break;
    if (tag != kTagEntry) return bad("unknown record");
    std::uint8_t db = 0;
    std::string_view key, value;
    std::uint64_t expire_unix = 0;
    if (!in.get(db) || !in.str(key) || !in.str(value) || !in.get(expire_unix)) return bad("truncated");
    if (db >= kDatabases) return bad("bad database index");
    std::int64_t expire_at = 0;
    if (expire_unix != 0) {
      const std::int64_t left = static_cast<std::int64_t>(expire_unix) - clock.unix_ms;
      if (left <= 0) continue;  // expired while we were down
      expire_at = clock.monotonic_ms + left;
    }
    keyspace.db(db).set(key, value, expire_at);
    ++result.keys;
  }
  if (in.left() != 0) return bad("trailing bytes");
  result.ok = true;
  return result;
}

}  // namespace heavy
