// Encoding and decoding of protocol v1 frames. Pure: no I/O, no fds, no allocation beyond
// the message itself. Every length is checked before it is used.
#include <algorithm>
#include <cstring>
#include <type_traits>

#include "parker/protocol.hpp"

namespace parker::protocol {
namespace {

// ---- writing ---------------------------------------------------------------------------

class Writer {
 public:
  explicit Writer(std::vector<std::byte>& out) : out_(out) {}
  template <class T>
  void put(T value) {
    static_assert(std::is_unsigned_v<T>);
    for (std::size_t i = 0; i < sizeof(T); ++i) {
      out_.push_back(static_cast<std::byte>((value >> (8 * i)) & 0xff));
    }
  }
  void put_bytes(std::string_view s) {
    const auto* p = reinterpret_cast<const std::byte*>(s.data());
    out_.insert(out_.end(), p, p + s.size());
  }
  [[nodiscard]] std::size_t size() const { return out_.size(); }
  void patch_u32(std::size_t at, std::uint32_t value) {
    for (std::size_t i = 0; i < 4; ++i) out_[at + i] = static_cast<std::byte>((value >> (8 * i)) & 0xff);
  }

 private:
  std::vector<std::byte>& out_;
};

void write_body(Writer& w, const Hello& m) {
  w.put(m.major);
  w.put(m.minor);
  w.put(static_cast<std::uint16_t>(m.pool.size()));
  w.put_bytes(m.pool);
}
void write_body(Writer& w, const Welcome& m) {
  w.put(m.major);
  w.put(m.minor);
  w.put(m.max_blob);
  w.put(m.max_parked_per_owner);
  w.put(m.credit);
  w.put(m.session_id);
  w.put(m.parked_in_pool);
}
void write_body(Writer& w, const ErrorMessage& m) {
  w.put(static_cast<std::uint16_t>(m.code));
  w.put(static_cast<std::uint8_t>(m.fatal ? 1 : 0));
  w.put(m.id);
  w.put(static_cast<std::uint32_t>(m.text.size()));
  w.put_bytes(m.text);
}
void write_body(Writer& w, const Park& m) {
  w.put(static_cast<std::uint16_t>(m.records.size()));
  for (const auto& r : m.records) {
    w.put(r.id);
    w.put(r.deadline_ms);
    w.put(r.flags);
    w.put(static_cast<std::uint32_t>(r.blob.size()));
    w.put_bytes(r.blob);
  }
}
void write_body(Writer& w, const Rejected& m) {
  w.put(static_cast<std::uint16_t>(m.records.size()));
  for (const auto& r : m.records) {
    w.put(r.id);
    w.put(static_cast<std::uint16_t>(r.reason));
    w.put(static_cast<std::uint32_t>(r.blob.size()));
    w.put_bytes(r.blob);
  }
}
void write_body(Writer& w, const Wake& m) {
  const bool unsent = has_unsent(m);  // WAKE_UNSENT: each record also carries its unsent bytes
  w.put(static_cast<std::uint16_t>(m.records.size()));
  for (const auto& r : m.records) {
    w.put(r.id);
    w.put(static_cast<std::uint8_t>(r.reason));
    w.put(static_cast<std::uint32_t>(r.blob.size()));
    w.put_bytes(r.blob);
    if (unsent) {
      w.put(static_cast<std::uint32_t>(r.unsent.size()));
      w.put_bytes(r.unsent);
    }
  }
}
void write_body(Writer& w, const Closed& m) {
  w.put(static_cast<std::uint32_t>(m.records.size()));
  for (const auto& r : m.records) {
    w.put(r.id);
    w.put(static_cast<std::uint8_t>(r.reason));
  }
}
void write_ids(Writer& w, const std::vector<std::uint64_t>& ids) {
  w.put(static_cast<std::uint32_t>(ids.size()));
  for (auto id : ids) w.put(id);
}
void write_body(Writer& w, const Recall& m) { write_ids(w, m.ids); }
void write_body(Writer& w, const Drop& m) { write_ids(w, m.ids); }
void write_body(Writer& w, const Credit& m) { w.put(m.grant); }
void write_body(Writer&, const StatsRequest&) {}
void write_body(Writer& w, const StatsReply& m) { w.put_bytes(m.text); }
void write_body(Writer&, const ListRequest&) {}
void write_body(Writer& w, const ListReply& m) { w.put_bytes(m.text); }
void write_body(Writer& w, const Ack& m) { w.put(m.wakes); }
void write_body(Writer& w, const Parked& m) { w.put(m.parks); }
void write_body(Writer&, const InventoryRequest&) {}
void write_body(Writer& w, const InventoryReply& m) {
  w.put(static_cast<std::uint8_t>(m.last ? 1 : 0));
  w.put(static_cast<std::uint32_t>(m.records.size()));
  for (const auto& r : m.records) {
    w.put(r.id);
    w.put(static_cast<std::uint8_t>(r.state));
    w.put(r.flags);
    w.put(r.deadline_left_ms);
    w.put(static_cast<std::uint32_t>(r.blob.size()));
    w.put_bytes(r.blob);
  }
}
void write_body(Writer&, const Goodbye&) {}
void write_body(Writer& w, const Reclaim& m) { w.put(m.wanted); }
void write_body(Writer& w, const CreditReturn& m) { w.put(m.returned); }
void write_body(Writer& w, const TakeOver& m) { w.put(m.room); }
void write_pool(Writer& w, const std::string& pool, std::uint32_t uid) {
  w.put(static_cast<std::uint8_t>(pool.size()));
  w.put_bytes(pool);
  w.put(uid);
}
void write_body(Writer& w, const Handover& m) {
  w.put(static_cast<std::uint16_t>(m.records.size()));
  for (const auto& r : m.records) {
    const bool unsent = r.kind == HandoverKind::held && !r.unsent.empty();
    w.put(unsent ? kHandoverHeldUnsent : static_cast<std::uint8_t>(r.kind));
    write_pool(w, r.pool, r.uid);
    w.put(r.id);
    w.put(r.flags);
    w.put(r.deadline_left_ms);
    w.put(static_cast<std::uint32_t>(r.blob.size()));
    w.put_bytes(r.blob);
    if (unsent) {
      w.put(static_cast<std::uint32_t>(r.unsent.size()));
      w.put_bytes(r.unsent);
    }
  }
}
void write_body(Writer& w, const HandoverEnd& m) {
  w.put(m.records);
  w.put(static_cast<std::uint32_t>(m.closed.size()));
  for (const auto& c : m.closed) {
    write_pool(w, c.pool, c.uid);
    w.put(c.id);
    w.put(static_cast<std::uint8_t>(c.reason));
  }
}
void write_body(Writer& w, const Taken& m) { w.put(m.records); }
void write_body(Writer& w, const Write& m) {
  write_ids(w, m.ids);
  w.put(static_cast<std::uint32_t>(m.payload.size()));
  w.put_bytes(m.payload);
}
void write_body(Writer& w, const WriteResult& m) {
  w.put(m.write);
  w.put(m.written);
  write_ids(w, m.not_parked);
}
void write_body(Writer& w, const KeepaliveRules& m) {
  w.put(m.set);
  w.put(static_cast<std::uint8_t>(m.rules.size()));
  for (const auto& rule : m.rules) {
    w.put(static_cast<std::uint8_t>(rule.request.size()));
    w.put_bytes(rule.request);
    w.put(static_cast<std::uint16_t>(rule.reply.size()));
    w.put_bytes(rule.reply);
  }
}
void write_body(Writer& w, const KeepUpdate& m) {
  w.put(static_cast<std::uint32_t>(m.records.size()));
  for (const auto& r : m.records) {
    w.put(static_cast<std::uint8_t>(r.op));
    w.put(static_cast<std::uint8_t>(r.pool.size()));
    w.put_bytes(r.pool);
    w.put(r.id);
    if (r.op == KeepOp::woken_unsent) {
      w.put(static_cast<std::uint32_t>(r.unsent.size()));
      w.put_bytes(r.unsent);
    }
  }
}
void write_body(Writer& w, const KeepControl& m) {
  w.put(static_cast<std::uint8_t>(m.command));
  w.put(m.count);
}
void write_body(Writer& w, const HandoverRules& m) {
  write_pool(w, m.pool, m.uid);
  write_body(w, m.rules);
}
void write_body(Writer& w, const HandoverCounters& m) {
  w.put(static_cast<std::uint32_t>(m.values.size()));
  for (const auto& v : m.values) {
    w.put(static_cast<std::uint16_t>(v.name.size()));
    w.put_bytes(v.name);
    w.put(static_cast<std::uint8_t>(v.kind));
    w.put(v.value);
  }
}

// ---- reading ---------------------------------------------------------------------------

// Reads little-endian fields from a body; any read past the end sets `failed`.
class Reader {
 public:
  explicit Reader(std::span<const std::byte> body) : body_(body) {}
  template <class T>
  T get() {
    static_assert(std::is_unsigned_v<T>);
    if (!has(sizeof(T))) return T{};
    T value = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) {
      value |= static_cast<T>(static_cast<T>(body_[pos_ + i]) << (8 * i));
    }
    pos_ += sizeof(T);
    return value;
  }
  std::string get_string(std::size_t n) {
    if (!has(n)) return {};
    std::string s(reinterpret_cast<const char*>(body_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  std::string rest() { return get_string(body_.size() - pos_); }
  [[nodiscard]] bool failed() const { return failed_; }
  [[nodiscard]] bool at_end() const { return pos_ == body_.size(); }

 private:
  bool has(std::size_t n) {
    if (failed_ || body_.size() - pos_ < n) {
      failed_ = true;
      return false;
    }
    return true;
  }
  std::span<const std::byte> body_;
  std::size_t pos_ = 0;
  bool failed_ = false;
};

bool known(WakeReason r) { return r >= WakeReason::readable && r <= WakeReason::write_blocked; }
bool known(CloseReason r) { return r >= CloseReason::hangup && r <= CloseReason::shutdown; }
bool known(RejectReason r) { return r >= RejectReason::quota_owner && r <= RejectReason::no_rules; }
bool known(ErrorCode c) { return c >= ErrorCode::bad_version && c <= ErrorCode::not_owner; }
bool known(InventoryState s) { return s == InventoryState::parked || s == InventoryState::held; }

// Each read_* fills `m` and returns DecodeError::none or what was wrong with the body
// (beyond truncation and trailing bytes, which decode() checks for all of them).
DecodeError read_body(Reader& r, Hello& m) {
  m.major = r.get<std::uint16_t>();
  m.minor = r.get<std::uint16_t>();
  auto len = r.get<std::uint16_t>();
  m.pool = r.get_string(len);
  // An unknown major version is answered by the daemon (bad_version), not a decode error.
  if (!r.failed() && !valid_pool_name(m.pool) && !m.pool.empty()) return DecodeError::bad_value;
  return DecodeError::none;
}
DecodeError read_body(Reader& r, Welcome& m) {
  m.major = r.get<std::uint16_t>();
  m.minor = r.get<std::uint16_t>();
  m.max_blob = r.get<std::uint32_t>();
  m.max_parked_per_owner = r.get<std::uint32_t>();
  m.credit = r.get<std::uint32_t>();
  m.session_id = r.get<std::uint64_t>();
  m.parked_in_pool = r.get<std::uint32_t>();
  return DecodeError::none;
}
DecodeError read_body(Reader& r, ErrorMessage& m) {
  m.code = static_cast<ErrorCode>(r.get<std::uint16_t>());
  auto fatal = r.get<std::uint8_t>();
  m.fatal = fatal != 0;
  m.id = r.get<std::uint64_t>();
  auto len = r.get<std::uint32_t>();
  m.text = r.get_string(len);
  if (r.failed()) return DecodeError::none;
  return known(m.code) && fatal <= 1 ? DecodeError::none : DecodeError::bad_value;
}
DecodeError read_body(Reader& r, Park& m, std::size_t fds) {
  auto count = r.get<std::uint16_t>();
  if (r.failed()) return DecodeError::none;
  if (count != fds) return DecodeError::record_count;
  m.records.reserve(count);
  for (std::size_t i = 0; i < count && !r.failed(); ++i) {
    ParkRecord rec;
    rec.id = r.get<std::uint64_t>();
    rec.deadline_ms = r.get<std::uint32_t>();
    rec.flags = r.get<std::uint8_t>();
    auto len = r.get<std::uint32_t>();
    rec.blob = r.get_string(len);
    // socket_checked is decoded on every session; one before 1.4 refuses it (control_session.cpp).
    if ((rec.flags & ~kKnownParkFlags14) != 0) return DecodeError::bad_value;
    m.records.push_back(std::move(rec));
  }
  return DecodeError::none;
}
DecodeError read_body(Reader& r, Rejected& m, std::size_t fds) {
  auto count = r.get<std::uint16_t>();
  if (r.failed()) return DecodeError::none;
  if (count != fds) return DecodeError::record_count;
  m.records.reserve(count);
  for (std::size_t i = 0; i < count && !r.failed(); ++i) {
    RejectRecord rec;
    rec.id = r.get<std::uint64_t>();
    rec.reason = static_cast<RejectReason>(r.get<std::uint16_t>());
    auto len = r.get<std::uint32_t>();
    rec.blob = r.get_string(len);
    if (!r.failed() && !known(rec.reason)) return DecodeError::bad_value;
    m.records.push_back(std::move(rec));
  }
  return DecodeError::none;
}
DecodeError read_body(Reader& r, Wake& m, std::size_t fds, bool unsent = false) {
  auto count = r.get<std::uint16_t>();
  if (r.failed()) return DecodeError::none;
  if (count != fds) return DecodeError::record_count;
  m.records.reserve(count);
  for (std::size_t i = 0; i < count && !r.failed(); ++i) {
    WakeRecord rec;
    rec.id = r.get<std::uint64_t>();
    rec.reason = static_cast<WakeReason>(r.get<std::uint8_t>());
    auto len = r.get<std::uint32_t>();
    rec.blob = r.get_string(len);
    if (unsent) rec.unsent = r.get_string(r.get<std::uint32_t>());
    if (!r.failed() && !known(rec.reason)) return DecodeError::bad_value;
    m.records.push_back(std::move(rec));
  }
  return DecodeError::none;
}
DecodeError read_body(Reader& r, Closed& m) {
  auto count = r.get<std::uint32_t>();
  // Each record is 9 bytes: refuse a count the body cannot hold before reserving for it.
  if (r.failed() || count > kMaxFrameBody / 9) return r.failed() ? DecodeError::none : DecodeError::record_count;
  for (std::size_t i = 0; i < count && !r.failed(); ++i) {
    CloseRecord rec;
    rec.id = r.get<std::uint64_t>();
    rec.reason = static_cast<CloseReason>(r.get<std::uint8_t>());
    if (!r.failed() && !known(rec.reason)) return DecodeError::bad_value;
    m.records.push_back(rec);
  }
  return DecodeError::none;
}
DecodeError read_ids(Reader& r, std::vector<std::uint64_t>& ids) {
  auto count = r.get<std::uint32_t>();
  if (r.failed() || count > kMaxFrameBody / 8) return r.failed() ? DecodeError::none : DecodeError::record_count;
  for (std::size_t i = 0; i < count && !r.failed(); ++i) ids.push_back(r.get<std::uint64_t>());
  return DecodeError::none;
}
DecodeError read_body(Reader& r, Recall& m) { return read_ids(r, m.ids); }
DecodeError read_body(Reader& r, Drop& m) { return read_ids(r, m.ids); }
DecodeError read_body(Reader& r, Credit& m) {
  m.grant = r.get<std::uint32_t>();
  return DecodeError::none;
}
DecodeError read_body(Reader&, StatsRequest&) { return DecodeError::none; }
DecodeError read_body(Reader& r, StatsReply& m) {
  m.text = r.rest();
  return DecodeError::none;
}
DecodeError read_body(Reader&, ListRequest&) { return DecodeError::none; }
DecodeError read_body(Reader& r, ListReply& m) {
  m.text = r.rest();
  return DecodeError::none;
}

DecodeError read_body(Reader& r, Ack& m) {
  m.wakes = r.get<std::uint64_t>();
  return DecodeError::none;
}
DecodeError read_body(Reader& r, Parked& m) {
  m.parks = r.get<std::uint64_t>();
  return DecodeError::none;
}
DecodeError read_body(Reader&, InventoryRequest&) { return DecodeError::none; }
DecodeError read_body(Reader& r, InventoryReply& m) {
  auto last = r.get<std::uint8_t>();
  auto count = r.get<std::uint32_t>();
  // Each record is at least 18 bytes: refuse a count the body cannot hold before reserving.
  if (r.failed()) return DecodeError::none;
  if (last > 1) return DecodeError::bad_value;
  if (count > kMaxFrameBody / 18) return DecodeError::record_count;
  m.last = last != 0;
  for (std::size_t i = 0; i < count && !r.failed(); ++i) {
    InventoryRecord rec;
    rec.id = r.get<std::uint64_t>();
    rec.state = static_cast<InventoryState>(r.get<std::uint8_t>());
    rec.flags = r.get<std::uint8_t>();
    rec.deadline_left_ms = r.get<std::uint32_t>();
    auto len = r.get<std::uint32_t>();
    rec.blob = r.get_string(len);
    if (r.failed()) break;
    if (!known(rec.state) || (rec.flags & ~kKnownParkFlags11) != 0) return DecodeError::bad_value;
    m.records.push_back(std::move(rec));
  }
  return DecodeError::none;
}
DecodeError read_body(Reader&, Goodbye&) { return DecodeError::none; }
DecodeError read_body(Reader& r, Reclaim& m) {
  m.wanted = r.get<std::uint32_t>();
  return DecodeError::none;
}
DecodeError read_body(Reader& r, CreditReturn& m) {
  m.returned = r.get<std::uint32_t>();
  return DecodeError::none;
}

DecodeError read_body(Reader& r, TakeOver& m) {
  m.room = r.get<std::uint32_t>();
  return DecodeError::none;
}
// A pool name (1..64 bytes, or empty for the listener) and its uid.
DecodeError read_pool(Reader& r, std::string& pool, std::uint32_t& uid) {
  auto len = r.get<std::uint8_t>();
  pool = r.get_string(len);
  uid = r.get<std::uint32_t>();
  if (!r.failed() && !pool.empty() && !valid_pool_name(pool)) return DecodeError::bad_value;
  return DecodeError::none;
}
DecodeError read_body(Reader& r, Handover& m, std::size_t fds) {
  auto count = r.get<std::uint16_t>();
  if (r.failed()) return DecodeError::none;
  if (count != fds) return DecodeError::record_count;
  m.records.reserve(count);
  for (std::size_t i = 0; i < count && !r.failed(); ++i) {
    HandoverRecord rec;
    const std::uint8_t kind = r.get<std::uint8_t>();
    const bool with_unsent = kind == kHandoverHeldUnsent;  // 1.2: a held wake with unsent bytes
    rec.kind = with_unsent ? HandoverKind::held : static_cast<HandoverKind>(kind);
    if (auto e = read_pool(r, rec.pool, rec.uid); e != DecodeError::none) return e;
    rec.id = r.get<std::uint64_t>();
    rec.flags = r.get<std::uint8_t>();
    rec.deadline_left_ms = r.get<std::uint32_t>();
    auto len = r.get<std::uint32_t>();
    rec.blob = r.get_string(len);
    if (with_unsent) rec.unsent = r.get_string(r.get<std::uint32_t>());
    if (r.failed()) break;
    // Kind 4 without unsent bytes would be another record's bytes (kind 3's): never sent.
    if (with_unsent && rec.unsent.empty()) return DecodeError::bad_value;
    bool listener = rec.kind == HandoverKind::listener;
    bool flags_ok = rec.kind == HandoverKind::parked ? (rec.flags & ~kKnownParkFlags11) == 0
                                                     : rec.kind != HandoverKind::held ||
                                                           known(static_cast<WakeReason>(rec.flags));
    if (rec.kind < HandoverKind::listener || rec.kind > HandoverKind::held || listener != rec.pool.empty() ||
        !flags_ok) {
      return DecodeError::bad_value;
    }
    m.records.push_back(std::move(rec));
  }
  return DecodeError::none;
}
DecodeError read_body(Reader& r, HandoverEnd& m) {
  m.records = r.get<std::uint64_t>();
  auto count = r.get<std::uint32_t>();
  // Each record is at least 15 bytes: refuse a count the body cannot hold before reading.
  if (r.failed()) return DecodeError::none;
  if (count > kMaxFrameBody / 15) return DecodeError::record_count;
  for (std::size_t i = 0; i < count && !r.failed(); ++i) {
    HandoverClosed c;
    if (auto e = read_pool(r, c.pool, c.uid); e != DecodeError::none) return e;
    c.id = r.get<std::uint64_t>();
    c.reason = static_cast<CloseReason>(r.get<std::uint8_t>());
    if (r.failed()) break;
    if (c.pool.empty() || !known(c.reason)) return DecodeError::bad_value;
    m.closed.push_back(std::move(c));
  }
  return DecodeError::none;
}
DecodeError read_body(Reader& r, Taken& m) {
  m.records = r.get<std::uint64_t>();
  return DecodeError::none;
}
DecodeError read_body(Reader& r, Write& m) {
  if (auto e = read_ids(r, m.ids); e != DecodeError::none) return e;
  auto len = r.get<std::uint32_t>();
  if (r.failed()) return DecodeError::none;
  if (m.ids.empty()) return DecodeError::record_count;
  if (len == 0 || len > kMaxWritePayload) return DecodeError::bad_value;
  m.payload = r.get_string(len);
  return DecodeError::none;
}
DecodeError read_body(Reader& r, WriteResult& m) {
  m.write = r.get<std::uint64_t>();
  m.written = r.get<std::uint32_t>();
  return read_ids(r, m.not_parked);
}
DecodeError read_body(Reader& r, KeepaliveRules& m) {
  m.set = r.get<std::uint8_t>();
  auto count = r.get<std::uint8_t>();
  if (r.failed()) return DecodeError::none;
  if (m.set == 0 || m.set > kMaxKeepaliveSets) return DecodeError::bad_value;
  if (count > kMaxKeepaliveRules) return DecodeError::record_count;
  for (std::size_t i = 0; i < count && !r.failed(); ++i) {
    KeepaliveRule rule;
    rule.request = r.get_string(r.get<std::uint8_t>());
    rule.reply = r.get_string(r.get<std::uint16_t>());
    if (r.failed()) break;
    if (rule.request.empty() || rule.request.size() > kMaxKeepaliveRequest ||
        rule.reply.size() > kMaxKeepaliveReply) {
      return DecodeError::bad_value;
    }
    m.rules.push_back(std::move(rule));
  }
  return DecodeError::none;
}
DecodeError read_body(Reader& r, KeepUpdate& m) {
  auto count = r.get<std::uint32_t>();
  // Each record is at least 11 bytes: refuse a count the body cannot hold before reading.
  if (r.failed()) return DecodeError::none;
  if (count > kMaxFrameBody / 11) return DecodeError::record_count;
  m.records.reserve(count);
  for (std::size_t i = 0; i < count && !r.failed(); ++i) {
    KeepUpdateRecord rec;
    rec.op = static_cast<KeepOp>(r.get<std::uint8_t>());
    auto len = r.get<std::uint8_t>();
    rec.pool = r.get_string(len);
    rec.id = r.get<std::uint64_t>();
    if (r.failed()) break;
    if (rec.op < KeepOp::woken || rec.op > KeepOp::woken_unsent || !valid_pool_name(rec.pool)) {
      return DecodeError::bad_value;
    }
    if (rec.op == KeepOp::woken_unsent) {
      rec.unsent = r.get_string(r.get<std::uint32_t>());
      if (r.failed()) break;
      // Without bytes it would be `woken`, which has its own op: never sent.
      if (rec.unsent.empty()) return DecodeError::bad_value;
    }
    m.records.push_back(std::move(rec));
  }
  return DecodeError::none;
}
DecodeError read_body(Reader& r, KeepControl& m) {
  m.command = static_cast<KeepCommand>(r.get<std::uint8_t>());
  m.count = r.get<std::uint64_t>();
  if (!r.failed() && (m.command < KeepCommand::hello || m.command > KeepCommand::level)) return DecodeError::bad_value;
  return DecodeError::none;
}

bool valid_counter_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxCounterName) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return c > ' ' && c <= '~'; });
}
DecodeError read_body(Reader& r, HandoverCounters& m) {
  auto count = r.get<std::uint32_t>();
  // Each value is at least 12 bytes: refuse a count the body cannot hold before reading.
  if (r.failed()) return DecodeError::none;
  if (count > kMaxFrameBody / 12) return DecodeError::record_count;
  for (std::size_t i = 0; i < count && !r.failed(); ++i) {
    CounterValue v;
    v.name = r.get_string(r.get<std::uint16_t>());
    v.kind = static_cast<CounterKind>(r.get<std::uint8_t>());
    v.value = r.get<std::uint64_t>();
    if (r.failed()) break;
    if (!valid_counter_name(v.name) || (v.kind != CounterKind::count && v.kind != CounterKind::real)) {
      return DecodeError::bad_value;
    }
    m.values.push_back(std::move(v));
  }
  return DecodeError::none;
}

DecodeError read_body(Reader& r, HandoverRules& m) {
  if (auto e = read_pool(r, m.pool, m.uid); e != DecodeError::none) return e;
  if (!r.failed() && m.pool.empty()) return DecodeError::bad_value;  // rules belong to a pool
  return read_body(r, m.rules);
}

bool carries_fds(MessageType t) {
  return t == MessageType::park || t == MessageType::rejected || t == MessageType::wake ||
         t == MessageType::handover || t == MessageType::wake_unsent;
}

// Decodes a body of a known type into the matching alternative of Message.
template <class T>
DecodeError decode_as(Reader& r, Message& out, std::size_t fds) {
  T m;
  DecodeError e;
  if constexpr (std::is_same_v<T, Park> || std::is_same_v<T, Rejected> || std::is_same_v<T, Wake> ||
                std::is_same_v<T, Handover>) {
    e = read_body(r, m, fds);
  } else {
    e = read_body(r, m);
  }
  if (e != DecodeError::none) return e;
  if (r.failed()) return DecodeError::truncated_body;
  if (!r.at_end()) return DecodeError::trailing_bytes;
  out = std::move(m);
  return DecodeError::none;
}

DecodeError decode_body(MessageType type, Reader& r, Message& out, std::size_t fds) {
  switch (type) {
    case MessageType::hello: return decode_as<Hello>(r, out, fds);
    case MessageType::welcome: return decode_as<Welcome>(r, out, fds);
    case MessageType::error: return decode_as<ErrorMessage>(r, out, fds);
    case MessageType::park: return decode_as<Park>(r, out, fds);
    case MessageType::rejected: return decode_as<Rejected>(r, out, fds);
    case MessageType::wake: return decode_as<Wake>(r, out, fds);
    case MessageType::closed: return decode_as<Closed>(r, out, fds);
    case MessageType::recall: return decode_as<Recall>(r, out, fds);
    case MessageType::drop: return decode_as<Drop>(r, out, fds);
    case MessageType::credit: return decode_as<Credit>(r, out, fds);
    case MessageType::stats: return decode_as<StatsRequest>(r, out, fds);
    case MessageType::stats_reply: return decode_as<StatsReply>(r, out, fds);
    case MessageType::list: return decode_as<ListRequest>(r, out, fds);
    case MessageType::list_reply: return decode_as<ListReply>(r, out, fds);
    case MessageType::ack: return decode_as<Ack>(r, out, fds);
    case MessageType::parked: return decode_as<Parked>(r, out, fds);
    case MessageType::inventory: return decode_as<InventoryRequest>(r, out, fds);
    case MessageType::inventory_reply: return decode_as<InventoryReply>(r, out, fds);
    case MessageType::goodbye: return decode_as<Goodbye>(r, out, fds);
    case MessageType::reclaim: return decode_as<Reclaim>(r, out, fds);
    case MessageType::credit_return: return decode_as<CreditReturn>(r, out, fds);
    case MessageType::take_over: return decode_as<TakeOver>(r, out, fds);
    case MessageType::handover: return decode_as<Handover>(r, out, fds);
    case MessageType::handover_end: return decode_as<HandoverEnd>(r, out, fds);
    case MessageType::taken: return decode_as<Taken>(r, out, fds);
    case MessageType::write: return decode_as<Write>(r, out, fds);
    case MessageType::write_result: return decode_as<WriteResult>(r, out, fds);
    case MessageType::keepalive_rules: return decode_as<KeepaliveRules>(r, out, fds);
    case MessageType::wake_unsent: {
      Wake m;
      if (auto e = read_body(r, m, fds, true); e != DecodeError::none) return e;
      if (r.failed()) return DecodeError::truncated_body;
      if (!r.at_end()) return DecodeError::trailing_bytes;
      // A WAKE_UNSENT is a WAKE with unsent bytes: without any, it would be another frame's
      // bytes (a WAKE's), and senders never send one.
      if (!has_unsent(m)) return DecodeError::bad_value;
      out = std::move(m);
      return DecodeError::none;
    }
    case MessageType::keep_update: return decode_as<KeepUpdate>(r, out, fds);
    case MessageType::keep_control: return decode_as<KeepControl>(r, out, fds);
    case MessageType::counters: return decode_as<HandoverCounters>(r, out, fds);
    case MessageType::handover_rules: return decode_as<HandoverRules>(r, out, fds);
  }
  return DecodeError::unknown_type;
}

std::uint32_t read_u32(std::span<const std::byte> b, std::size_t at) {
  return static_cast<std::uint32_t>(b[at]) | static_cast<std::uint32_t>(b[at + 1]) << 8 |
         static_cast<std::uint32_t>(b[at + 2]) << 16 | static_cast<std::uint32_t>(b[at + 3]) << 24;
}
std::uint16_t read_u16(std::span<const std::byte> b, std::size_t at) {
  return static_cast<std::uint16_t>(static_cast<unsigned>(b[at]) | static_cast<unsigned>(b[at + 1]) << 8);
}

DecodeResult failure(DecodeError e) {
  DecodeResult r;
  r.status = DecodeStatus::error;
  r.error = e;
  return r;
}

}  // namespace

bool has_unsent(const Wake& wake) noexcept {
  return std::any_of(wake.records.begin(), wake.records.end(), [](const WakeRecord& r) { return !r.unsent.empty(); });
}

MessageType type_of(const Message& message) {
  if (auto* w = std::get_if<Wake>(&message); w != nullptr && has_unsent(*w)) return MessageType::wake_unsent;
  if (std::holds_alternative<KeepUpdate>(message)) return MessageType::keep_update;
  if (std::holds_alternative<KeepControl>(message)) return MessageType::keep_control;
  if (std::holds_alternative<HandoverCounters>(message)) return MessageType::counters;
  if (std::holds_alternative<HandoverRules>(message)) return MessageType::handover_rules;
  return static_cast<MessageType>(message.index() + 1);  // alternatives follow the type codes
}

std::size_t fd_count(const Message& message) {
  if (auto* p = std::get_if<Park>(&message)) return p->records.size();
  if (auto* r = std::get_if<Rejected>(&message)) return r->records.size();
  if (auto* w = std::get_if<Wake>(&message)) return w->records.size();
  if (auto* h = std::get_if<Handover>(&message)) return h->records.size();
  return 0;
}

void encode(const Message& message, std::vector<std::byte>& out) {
  Writer w(out);
  std::size_t start = w.size();
  w.put(std::uint32_t{0});  // body length, patched below
  w.put(static_cast<std::uint16_t>(type_of(message)));
  w.put(static_cast<std::uint16_t>(fd_count(message)));
  std::visit([&](const auto& m) { write_body(w, m); }, message);
  w.patch_u32(start, static_cast<std::uint32_t>(w.size() - start - kHeaderSize));
}

std::vector<std::byte> encode(const Message& message) {
  std::vector<std::byte> out;
  encode(message, out);
  return out;
}

std::size_t encoded_size(const ParkRecord& record) { return 8 + 4 + 1 + 4 + record.blob.size(); }
std::size_t encoded_size(const WakeRecord& record) {
  // Counted as in WAKE_UNSENT when it has unsent bytes; a frame mixing records then carries
  // 4 more bytes for each of the others, which the frame limits leave room for.
  return 8 + 1 + 4 + record.blob.size() + (record.unsent.empty() ? 0 : 4 + record.unsent.size());
}
std::size_t encoded_size(const InventoryRecord& record) { return 8 + 1 + 1 + 4 + 4 + record.blob.size(); }
std::size_t encoded_size(const HandoverRecord& record) {
  const bool unsent = record.kind == HandoverKind::held && !record.unsent.empty();
  return 1 + 1 + record.pool.size() + 4 + 8 + 1 + 4 + 4 + record.blob.size() + (unsent ? 4 + record.unsent.size() : 0);
}

std::size_t encoded_size(const KeepUpdateRecord& record) {
  return 1 + 1 + record.pool.size() + 8 + (record.op == KeepOp::woken_unsent ? 4 + record.unsent.size() : 0);
}

DecodeResult decode(std::span<const std::byte> bytes, std::size_t fds_available) {
  if (bytes.size() < kHeaderSize) return {};
  std::uint32_t length = read_u32(bytes, 0);
  auto type = static_cast<MessageType>(read_u16(bytes, 4));
  std::size_t fds = read_u16(bytes, 6);
  if (length > kMaxFrameBody) return failure(DecodeError::frame_too_big);
  if ((type < MessageType::hello || type > MessageType::wake_unsent) && type != MessageType::keep_update &&
      type != MessageType::keep_control && type != MessageType::counters &&
      type != MessageType::handover_rules) {
    return failure(DecodeError::unknown_type);
  }
  if (fds > kMaxRecordsPerFrame || (fds != 0 && !carries_fds(type))) {
    return failure(DecodeError::fd_count_invalid);
  }
  if (bytes.size() < kHeaderSize + length) return {};
  // The fds ride on the frame's first byte, so by the time its last byte is here they are
  // too; fewer means the peer sent a frame that lies about them.
  if (fds_available < fds) return failure(DecodeError::fd_mismatch);
  Reader reader(bytes.subspan(kHeaderSize, length));
  DecodeResult result;
  if (auto e = decode_body(type, reader, result.message, fds); e != DecodeError::none) return failure(e);
  result.status = DecodeStatus::ok;
  result.consumed = kHeaderSize + length;
  result.fds = fds;
  return result;
}

bool valid_pool_name(std::string_view pool) {
  if (pool.empty() || pool.size() > kMaxPoolName) return false;
  return std::all_of(pool.begin(), pool.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

}  // namespace parker::protocol
