// Session blobs (what parker keeps for a parked connection) and keyspace snapshots: exact round
// trips, and garbage of every kind refused with an error — never a crash, never a huge
// allocation. Also the working set really occupying and returning memory.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "heavy/info.hpp"
#include "heavy/session_blob.hpp"
#include "heavy/snapshot.hpp"
#include "heavy/working_set.hpp"
#include "support/process.hpp"

using namespace heavy;

namespace {

Session full_session() {
  Session s;
  s.id = 0x0102030405060708ull;
  s.name = "alice";
  s.db = 15;
  s.in_multi = true;
  s.multi_queue = {{"SET", "k", std::string("bin\0ary", 7)}, {"INCR", "n"}};
  s.multi_queue_bytes = 3 + 1 + 7 + 4 + 1;
  s.channels = {"news", "sport", std::string(300, 'c')};
  s.patterns = {"ne*", "s[pq]ort"};
  s.unparsed_input = "*3\r\n$3\r\nSET\r\n$1\r\nk";  // a partial request
  s.unsent_output = "+OK\r\n:42\r\n";
  s.counters = {1700000000000ull, 42, 3, 2};
  return s;
}

std::vector<std::byte> encode(const Session& s) {
  auto blob = encode_session(s);
  REQUIRE(blob);
  return *blob;
}

std::uint32_t fnv1a(const std::byte* p, std::size_t n) {
  std::uint32_t h = 2166136261u;
  for (std::size_t i = 0; i < n; ++i) {
    h ^= static_cast<std::uint8_t>(p[i]);
    h *= 16777619u;
  }
  return h;
}

// Rewrites the trailing checksum so a deliberately wrong field is judged on its own merits.
void reseal(std::vector<std::byte>& blob) {
  const std::uint32_t h = fnv1a(blob.data(), blob.size() - 4);
  for (int i = 0; i < 4; ++i) blob[blob.size() - 4 + static_cast<std::size_t>(i)] = static_cast<std::byte>(h >> (8 * i));
}

std::string decode_error(std::span<const std::byte> blob) {
  auto r = decode_session(blob);
  CHECK_FALSE(r.session);
  return std::string(r.error);
}

// Offsets in a version-1 blob of a session without a name.
constexpr std::size_t kVersionAt = 4, kFlagsAt = 6, kDbAt = 16, kNameLengthAt = 17;

}  // namespace

TEST_CASE("a session survives encode and decode exactly", "[heavy][blob]") {
  const Session s = full_session();
  const auto blob = encode(s);
  auto r = decode_session(blob);
  REQUIRE(r.session);
  CHECK(r.error.empty());
  CHECK(*r.session == s);

  Session empty;
  auto r2 = decode_session(encode(empty));
  REQUIRE(r2.session);
  CHECK(*r2.session == empty);
}

// A blob parked by a process of the previous version must still restore in a new one.
TEST_CASE("a version-1 blob (no patterns, no buffers) is still read", "[heavy][blob]") {
  Session s = full_session();
  s.patterns.clear();
  s.unparsed_input.clear();
  s.unsent_output.clear();
  auto blob = encode(s);
  // Version 2 adds three empty fields before the checksum: a u32 count and two u32 lengths.
  blob.erase(blob.end() - 4 - 12, blob.end() - 4);
  blob[kVersionAt] = std::byte{1};
  reseal(blob);
  auto r = decode_session(blob);
  REQUIRE(r.session);
  CHECK(*r.session == s);
}

TEST_CASE("an ordinary idle session fits in a small blob", "[heavy][blob]") {
  Session s;
  s.id = 12345;
  s.name = "worker-17";
  s.db = 3;
  CHECK(encode(s).size() < 100);
}

TEST_CASE("encoding refuses a session larger than the blob limit", "[heavy][blob]") {
  const Session s = full_session();
  const std::size_t size = encode(s).size();
  CHECK(encode_session(s, size));
  CHECK_FALSE(encode_session(s, size - 1));
}

TEST_CASE("every truncation of a blob is refused", "[heavy][blob]") {
  const auto blob = encode(full_session());
  for (std::size_t n = 0; n < blob.size(); ++n) {
    INFO("length " << n);
    CHECK_FALSE(decode_session(std::span(blob).first(n)).session);
  }
}

TEST_CASE("every flipped bit of a blob is refused", "[heavy][blob]") {
  const auto blob = encode(full_session());
  for (std::size_t i = 0; i < blob.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      auto bad = blob;
      bad[i] ^= static_cast<std::byte>(1 << bit);
      INFO("byte " << i << " bit " << bit);
      CHECK_FALSE(decode_session(bad).session);
    }
  }
}

TEST_CASE("random garbage is refused", "[heavy][blob]") {
  std::mt19937 rng(20260101);
  for (int round = 0; round < 2000; ++round) {
    std::vector<std::byte> junk(rng() % 200);
    for (auto& b : junk) b = static_cast<std::byte>(rng());
    if (round % 2 == 0 && junk.size() >= 8) {
      std::memcpy(junk.data(), "HVSS\x01\x00", 6);  // get past the magic and version
      reseal(junk);                                // and the checksum
    }
    CHECK_FALSE(decode_session(junk).session);
  }
}

TEST_CASE("well-sealed blobs with wrong fields are refused with a reason", "[heavy][blob]") {
  const auto good = encode(Session{});

  auto version = good;
  version[kVersionAt] = std::byte{3};
  reseal(version);
  CHECK(decode_error(version) == "unsupported session blob version");

  auto flags = good;
  flags[kFlagsAt] = std::byte{0x80};
  reseal(flags);
  CHECK(decode_error(flags) == "session blob has unknown flags");

  auto db = good;
  db[kDbAt] = std::byte{16};
  reseal(db);
  CHECK(decode_error(db) == "session blob has a bad db index");

  // A name length of 4 GiB: refused from the bytes left, nothing allocated.
  auto huge = good;
  for (std::size_t i = 0; i < 4; ++i) huge[kNameLengthAt + i] = std::byte{0xff};
  reseal(huge);
  CHECK(decode_error(huge) == "session blob truncated");

  auto trailing = good;
  trailing.insert(trailing.end() - 4, std::byte{0});
  reseal(trailing);
  CHECK(decode_error(trailing) == "session blob has trailing bytes");

  auto magic = good;
  magic[0] = std::byte{'X'};
  CHECK(decode_error(magic) == "not a session blob (bad magic)");

  auto sum = good;
  sum.back() ^= std::byte{1};
  CHECK(decode_error(sum) == "session blob checksum mismatch");
}

TEST_CASE("a keyspace snapshot round-trips keys, databases and expiry", "[heavy][snapshot]") {
  parker::test::TempDir dir;
  const std::string path = dir.file("dump.hvs");
  Keyspace before;
  before.db(0).set("plain", "value", 0);
  before.db(3).set("bin", std::string("a\0b\r\n", 5), 0);
  before.db(15).set("ttl", "soon", 1'000'000 + 60'000);
  before.db(1).set("gone", "x", 1'000'000 - 1);  // already expired: not written
  const SnapshotClock at_save{1'000'000, 1'700'000'000'000};
  auto saved = save_snapshot(before, path, at_save);
  REQUIRE(saved.ok);
  CHECK(saved.keys == 3);
  // No temporary file is left behind.
  CHECK(std::distance(std::filesystem::directory_iterator(dir.path()), std::filesystem::directory_iterator{}) == 1);

  // Loaded 10 s of wall time later by a process whose monotonic clock reads 5.
  Keyspace after;
  auto loaded = load_snapshot(after, path, SnapshotClock{5, 1'700'000'010'000});
  REQUIRE(loaded.ok);
  CHECK(loaded.keys == 3);
  CHECK(after.db(0).find("plain", 5)->data == "value");
  CHECK(after.db(3).find("bin", 5)->data == std::string("a\0b\r\n", 5));
  const Value* ttl = after.db(15).find("ttl", 5);
  REQUIRE(ttl != nullptr);
  CHECK(ttl->expire_at_ms == 5 + 50'000);
  CHECK(after.db(1).size() == 0);

  // Loaded after the key's time has passed: it is not brought back.
  Keyspace late;
  REQUIRE(load_snapshot(late, path, SnapshotClock{5, 1'700'000'100'000}).ok);
  CHECK(late.db(15).size() == 0);
}

TEST_CASE("a missing snapshot is a first start and a damaged one is an error", "[heavy][snapshot]") {
  parker::test::TempDir dir;
  Keyspace ks;
  auto missing = load_snapshot(ks, dir.file("none"), {});
  CHECK(missing.ok);
  CHECK(missing.missing);

  Keyspace src;
  for (int i = 0; i < 100; ++i) src.db(i % 16).set("key" + std::to_string(i), std::string(i, 'v'), 0);
  const std::string path = dir.file("dump");
  REQUIRE(save_snapshot(src, path, {}).ok);
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});

  auto load_bytes = [&](const std::string& content) {
    const std::string p = dir.file("bad");
    std::ofstream(p, std::ios::binary | std::ios::trunc) << content;
    Keyspace target;
    auto r = load_snapshot(target, p, {});
    CHECK(target.total_keys() == (r.ok ? r.keys : 0));
    return r;
  };
  CHECK(load_bytes(bytes).ok);
  CHECK_FALSE(load_bytes("").ok);
  CHECK_FALSE(load_bytes("garbage garbage garbage").ok);
  for (std::size_t cut : {bytes.size() - 1, bytes.size() / 2, std::size_t{12}}) {
    CHECK_FALSE(load_bytes(bytes.substr(0, cut)).ok);
  }
  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x20;
  auto r = load_bytes(flipped);
  CHECK_FALSE(r.ok);
  CHECK(r.error.find("checksum") != std::string::npos);
}

TEST_CASE("a working set is resident while held and returned to the OS when released", "[heavy][blob]") {
  constexpr std::size_t kBytes = 64 * 1024 * 1024;
  const std::uint64_t before = resident_memory_bytes();
  {
    WorkingSet ws;
    REQUIRE(ws.allocate(kBytes));
    CHECK(ws.size() == kBytes);
    CHECK(ws.data()[kBytes - 1] != 0);
    const std::uint64_t held = resident_memory_bytes();
    CHECK(held >= before + kBytes * 9 / 10);
    ws.release();
    // Compared with the held size, not with `before`: under ASan, munmap itself touches
    // shadow memory (1/8 of the region).
    CHECK(resident_memory_bytes() <= held - kBytes * 8 / 10);
  }
  WorkingSet none;
  CHECK(none.allocate(0));
  CHECK(none.size() == 0);
}
