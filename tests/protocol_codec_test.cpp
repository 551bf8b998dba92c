// The pure codec of protocol v1: every message round-trips, and every malformed input gives
// its precise DecodeError (or need_more while a frame is incomplete), never a crash.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "parker/protocol.hpp"

namespace proto = parker::protocol;
using proto::DecodeError;
using proto::DecodeStatus;
using proto::Message;
using proto::MessageType;
using Bytes = std::vector<std::byte>;

namespace {

std::string binary_blob(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + 7) & 0xff);  // zeros and high bytes
  return s;
}

proto::Park park_of(std::size_t records, std::size_t blob_size = 5) {
  proto::Park p;
  for (std::size_t i = 0; i < records; ++i) {
    p.records.push_back({0x0123456789abcdefULL + i, static_cast<std::uint32_t>(i * 1000),
                         static_cast<std::uint8_t>(i % 4), binary_blob(blob_size + i % 3)});
  }
  return p;
}

proto::Wake wake_of(std::size_t records) {
  proto::Wake w;
  for (std::size_t i = 0; i < records; ++i) {
    w.records.push_back({~std::uint64_t{0} - i, static_cast<proto::WakeReason>(1 + i % 5), binary_blob(i % 4)});
  }
  return w;
}

// One sample of each message type, plus edge shapes (empty, biggest batch, binary blobs).
std::vector<Message> sample_messages() {
  std::vector<Message> m;
  m.emplace_back(proto::Hello{1, 0, "heavy_server-1.a"});
  m.emplace_back(proto::Hello{1, 7, ""});  // observer
  m.emplace_back(proto::Hello{9, 0, std::string(proto::kMaxPoolName, 'p')});  // version is the daemon's call
  m.emplace_back(proto::Welcome{1, 0, 65536, 1000, 512, 0xfeedfacecafebeefULL, 42});
  m.emplace_back(proto::ErrorMessage{proto::ErrorCode::unknown_id, false, 77, "id 77 is not parked"});
  m.emplace_back(proto::ErrorMessage{proto::ErrorCode::not_owner, true, 0, ""});
  m.emplace_back(proto::Park{});
  m.emplace_back(park_of(1));
  m.emplace_back(park_of(3, 0));
  m.emplace_back(park_of(proto::kMaxRecordsPerFrame, 2));
  m.emplace_back(proto::Park{{{1, 0, proto::kWakeOnDeadline | proto::kWakeOnHangup, binary_blob(65536)}}});
  m.emplace_back(proto::Rejected{{{1, proto::RejectReason::quota_owner, "session state"}, {2, proto::RejectReason::watch_failed, ""}}});
  m.emplace_back(proto::Wake{});
  m.emplace_back(wake_of(5));
  m.emplace_back(wake_of(proto::kMaxRecordsPerFrame));
  m.emplace_back(proto::Closed{});
  m.emplace_back(proto::Closed{{{5, proto::CloseReason::hangup}, {6, proto::CloseReason::shutdown}}});
  m.emplace_back(proto::Recall{});
  m.emplace_back(proto::Recall{{1, 2, ~std::uint64_t{0}}});
  m.emplace_back(proto::Drop{{0}});
  m.emplace_back(proto::Credit{0});
  m.emplace_back(proto::Credit{0xffffffffu});
  m.emplace_back(proto::StatsRequest{});
  m.emplace_back(proto::StatsReply{"# TYPE parker_parked_connections gauge\nparker_parked_connections 3\n"});
  m.emplace_back(proto::StatsReply{""});
  m.emplace_back(proto::ListRequest{});
  m.emplace_back(proto::ListReply{"web 12\nimap 3\n"});
  // 1.1
  m.emplace_back(proto::Ack{0});
  m.emplace_back(proto::Ack{~std::uint64_t{0}});
  m.emplace_back(proto::Parked{12345});
  m.emplace_back(proto::InventoryRequest{});
  m.emplace_back(proto::InventoryReply{true, {}});
  m.emplace_back(proto::InventoryReply{
      false, {{7, proto::InventoryState::parked, proto::kWakeOnHangup, 1500, "blob"},
              {~std::uint64_t{0}, proto::InventoryState::held, 0, 0, binary_blob(300)}}});
  m.emplace_back(proto::Goodbye{});
  m.emplace_back(proto::Reclaim{100});
  m.emplace_back(proto::CreditReturn{0});
  m.emplace_back(proto::TakeOver{19000});
  m.emplace_back(proto::Handover{{{proto::HandoverKind::listener, "", 0, 0, 0, 0, "", ""},
                                  {proto::HandoverKind::parked, "web", 1000, 7, proto::kWakeOnHangup, 5000, "s", ""},
                                  {proto::HandoverKind::held, "web", 1000, 8, 1, 0, "", ""},
                                  {proto::HandoverKind::held, "web", 1000, 9, 6, 0, "b", "unsent"}}});
  m.emplace_back(proto::HandoverEnd{4, {{"web", 1000, 9, proto::CloseReason::deadline}}});
  m.emplace_back(proto::Taken{4});
  // 1.2, parker to parker
  m.emplace_back(proto::HandoverRules{"web", 1000, {3, {{"*1\r\n$4\r\nPING\r\n", "+PONG\r\n"}}}});
  m.emplace_back(proto::HandoverRules{"w", 0, {15, {}}});
  m.emplace_back(proto::HandoverCounters{});
  m.emplace_back(proto::HandoverCounters{{{"parker_parks_total", proto::CounterKind::count, 12},
                                          {"parker_wakes_total{reason=\"readable\"}", proto::CounterKind::count, ~std::uint64_t{0}},
                                          {"parker_time_parked_seconds_sum", proto::CounterKind::real, 0x4059000000000000}}});
  // 1.1 write-through and keep-alive rules
  m.emplace_back(proto::Write{{1}, "+x\r\n"});
  m.emplace_back(proto::Write{{1, 2, ~std::uint64_t{0}}, binary_blob(70000)});
  m.emplace_back(proto::WriteResult{1, 3, {}});
  m.emplace_back(proto::WriteResult{~std::uint64_t{0}, 0, {7, 8}});
  m.emplace_back(proto::KeepaliveRules{1, {}});
  m.emplace_back(proto::KeepaliveRules{15, {{"*1\r\n$4\r\nPING\r\n", "+PONG\r\n"}, {"PING\r\n", ""},
                                             {std::string(proto::kMaxKeepaliveRequest, 'r'), std::string(proto::kMaxKeepaliveReply, 'R')}}});
  m.emplace_back(proto::Wake{{{1, proto::WakeReason::write_blocked, "b", "rest of a message"},
                              {2, proto::WakeReason::readable, "", ""}}});  // WAKE_UNSENT
  m.emplace_back(proto::Park{{{1, 0, static_cast<std::uint8_t>(proto::kWakeOnHangup | 0xf0), "s"}}});
  m.emplace_back(proto::KeepUpdate{{{proto::KeepOp::woken, "web", 7},
                                    {proto::KeepOp::forget, "web-2", ~std::uint64_t{0}},
                                    {proto::KeepOp::forget_woken, "a", 0}}});
  m.emplace_back(proto::KeepControl{proto::KeepCommand::state, 19000});
  // Keeper level 1: a held wake's unsent bytes, amid the other ops; the keeper's level.
  m.emplace_back(proto::KeepUpdate{{{proto::KeepOp::woken, "web", 6},
                                    {proto::KeepOp::woken_unsent, "web", 7, "$7\r\nmessage\r\n"},
                                    {proto::KeepOp::woken_unsent, "p", ~std::uint64_t{0}, binary_blob(70000)},
                                    {proto::KeepOp::forget_woken, "web", 7}}});
  m.emplace_back(proto::KeepControl{proto::KeepCommand::hello, proto::kKeeperLevel});
  m.emplace_back(proto::KeepControl{proto::KeepCommand::level, proto::kKeeperLevel});
  return m;
}

std::string name_of(const Message& m) {
  return std::string(proto::to_string(proto::type_of(m))) + " with " + std::to_string(proto::fd_count(m)) + " fds";
}

void put_u16(Bytes& b, std::size_t at, std::uint16_t v) {
  b[at] = static_cast<std::byte>(v & 0xff);
  b[at + 1] = static_cast<std::byte>(v >> 8);
}
void put_u32(Bytes& b, std::size_t at, std::uint32_t v) {
  for (std::size_t i = 0; i < 4; ++i) b[at + i] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
}
std::uint32_t body_length(const Bytes& b) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(b[i]) << (8 * i);
  return v;
}

// A frame made by hand: header fields as given, then `body`.
Bytes raw_frame(std::uint16_t type, std::uint16_t fds, const Bytes& body, std::uint32_t length) {
  Bytes b(proto::kHeaderSize + body.size());
  put_u32(b, 0, length);
  put_u16(b, 4, type);
  put_u16(b, 6, fds);
  std::copy(body.begin(), body.end(), b.begin() + proto::kHeaderSize);
  return b;
}
Bytes raw_frame(std::uint16_t type, std::uint16_t fds, const Bytes& body) {
  return raw_frame(type, fds, body, static_cast<std::uint32_t>(body.size()));
}

// Little-endian body builder for hand-made malformed frames.
struct Body {
  Bytes bytes;
  Body& u8(std::uint8_t v) { return put(v, 1); }
  Body& u16(std::uint16_t v) { return put(v, 2); }
  Body& u32(std::uint32_t v) { return put(v, 4); }
  Body& u64(std::uint64_t v) { return put(v, 8); }
  Body& str(std::string_view s) {
    for (char c : s) bytes.push_back(static_cast<std::byte>(c));
    return *this;
  }
  Body& put(std::uint64_t v, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) bytes.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xff));
    return *this;
  }
};

DecodeError error_of(const Bytes& frame, std::size_t fds) {
  auto r = proto::decode(frame, fds);
  INFO("status " << static_cast<int>(r.status));
  REQUIRE(r.status == DecodeStatus::error);
  return r.error;
}

bool text_type(MessageType t) { return t == MessageType::stats_reply || t == MessageType::list_reply; }

}  // namespace

TEST_CASE("every message type round-trips through encode and decode", "[protocol][codec]") {
  std::size_t types_seen = 0;
  std::vector<bool> seen(static_cast<std::size_t>(MessageType::wake_unsent) + 1, false);
  for (const auto& message : sample_messages()) {
    INFO(name_of(message));
    Bytes frame = proto::encode(message);
    REQUIRE(frame.size() >= proto::kHeaderSize);
    CHECK(body_length(frame) == frame.size() - proto::kHeaderSize);
    auto r = proto::decode(frame, proto::fd_count(message));
    REQUIRE(r.status == DecodeStatus::ok);
    CHECK(r.error == DecodeError::none);
    CHECK(r.consumed == frame.size());
    CHECK(r.fds == proto::fd_count(message));
    CHECK(proto::type_of(r.message) == proto::type_of(message));
    CHECK(r.message == message);
    auto t = static_cast<std::size_t>(proto::type_of(message));
    if (!seen[t]) ++types_seen;
    seen[t] = true;
  }
  CHECK(types_seen == std::variant_size_v<Message> + 1);  // + WAKE_UNSENT, the other form of Wake
}

TEST_CASE("encode appends to what the buffer already holds", "[protocol][codec]") {
  Bytes out;
  proto::encode(proto::Credit{5}, out);
  proto::encode(proto::Hello{1, 0, "a"}, out);
  auto first = proto::decode(out, 0);
  REQUIRE(first.status == DecodeStatus::ok);
  CHECK(first.message == Message{proto::Credit{5}});
  auto second = proto::decode(std::span(out).subspan(first.consumed), 0);
  REQUIRE(second.status == DecodeStatus::ok);
  CHECK(second.message == Message{proto::Hello{1, 0, "a"}});
  CHECK(first.consumed + second.consumed == out.size());
}

TEST_CASE("decode takes only the first of several frames", "[protocol][codec]") {
  Bytes out = proto::encode(park_of(2));
  std::size_t first_size = out.size();
  proto::encode(wake_of(3), out);
  auto r = proto::decode(out, 5);  // five fds queued: the first frame takes its two
  REQUIRE(r.status == DecodeStatus::ok);
  CHECK(r.consumed == first_size);
  CHECK(r.fds == 2);
}

TEST_CASE("encoded_size is what a record adds to its frame", "[protocol][codec]") {
  for (std::size_t blob : {0u, 1u, 1000u}) {
    proto::ParkRecord park{1, 2, 0, std::string(blob, 'x')};
    proto::WakeRecord wake{1, proto::WakeReason::readable, std::string(blob, 'x')};
    CHECK(proto::encode(proto::Park{{park}}).size() == proto::kHeaderSize + 2 + proto::encoded_size(park));
    CHECK(proto::encode(proto::Wake{{wake}}).size() == proto::kHeaderSize + 2 + proto::encoded_size(wake));
    proto::HandoverRecord handover{proto::HandoverKind::parked, "pool", 1, 2, 0, 3, std::string(blob, 'x'), ""};
    CHECK(proto::encode(proto::Handover{{handover}}).size() == proto::kHeaderSize + 2 + proto::encoded_size(handover));
  }
}

TEST_CASE("every proper prefix of every frame needs more bytes", "[protocol][codec][truncation]") {
  for (const auto& message : sample_messages()) {
    INFO(name_of(message));
    Bytes frame = proto::encode(message);
    std::size_t fds = proto::fd_count(message);
    // The big samples have long blobs; every offset of the header and of the first and last
    // 4 KiB covers every field boundary, and the middle is blob bytes.
    for (std::size_t n = 0; n < frame.size(); ++n) {
      if (n > 4096 && n + 4096 < frame.size()) continue;
      auto r = proto::decode(std::span(frame.data(), n), fds);
      if (r.status != DecodeStatus::need_more) FAIL("prefix of " << n << " bytes did not need more");
    }
    // Having fewer fds than declared is not an error while the frame is incomplete.
    if (fds > 0) CHECK(proto::decode(std::span(frame.data(), frame.size() - 1), 0).status == DecodeStatus::need_more);
  }
}

TEST_CASE("a body that ends inside a field is truncated_body, at every offset", "[protocol][codec][truncation]") {
  for (const auto& message : sample_messages()) {
    auto type = proto::type_of(message);
    if (text_type(type)) continue;  // their text is the rest of the body: any length is whole
    INFO(name_of(message));
    Bytes full = proto::encode(message);
    std::size_t length = full.size() - proto::kHeaderSize;
    std::size_t fds = proto::fd_count(message);
    for (std::size_t cut = 0; cut < length; ++cut) {
      if (cut > 4096 && cut + 4096 < length) continue;
      // The header claims `cut` bytes of body and the frame is whole: the body ends early.
      Bytes frame(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(proto::kHeaderSize + cut));
      put_u32(frame, 0, static_cast<std::uint32_t>(cut));
      auto r = proto::decode(frame, fds);
      if (r.status != DecodeStatus::error || r.error != DecodeError::truncated_body) {
        FAIL("body cut to " << cut << " of " << length << " bytes gave status " << static_cast<int>(r.status)
                            << " error " << proto::to_string(r.error));
      }
    }
  }
}

TEST_CASE("text replies take the rest of the body, whatever its length", "[protocol][codec]") {
  Bytes full = proto::encode(proto::StatsReply{"abcdef"});
  for (std::size_t cut = 0; cut <= 6; ++cut) {
    Bytes frame(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(proto::kHeaderSize + cut));
    put_u32(frame, 0, static_cast<std::uint32_t>(cut));
    auto r = proto::decode(frame, 0);
    REQUIRE(r.status == DecodeStatus::ok);
    CHECK(std::get<proto::StatsReply>(r.message).text == std::string("abcdef").substr(0, cut));
  }
}

TEST_CASE("bytes left over after the last field are trailing_bytes", "[protocol][codec]") {
  for (const auto& message : sample_messages()) {
    if (text_type(proto::type_of(message))) continue;
    INFO(name_of(message));
    Bytes frame = proto::encode(message);
    frame.push_back(std::byte{0});
    put_u32(frame, 0, body_length(frame) + 1);
    CHECK(error_of(frame, proto::fd_count(message)) == DecodeError::trailing_bytes);
  }
}

TEST_CASE("a frame longer than 16 MiB is refused from its header alone", "[protocol][codec]") {
  Bytes header = raw_frame(static_cast<std::uint16_t>(MessageType::stats_reply), 0, {},
                           static_cast<std::uint32_t>(proto::kMaxFrameBody + 1));
  CHECK(error_of(header, 0) == DecodeError::frame_too_big);
  put_u32(header, 0, 0xffffffffu);
  CHECK(error_of(header, 0) == DecodeError::frame_too_big);
  // Exactly the limit is allowed: the decoder waits for the body.
  put_u32(header, 0, static_cast<std::uint32_t>(proto::kMaxFrameBody));
  CHECK(proto::decode(header, 0).status == DecodeStatus::need_more);
}

TEST_CASE("the largest allowed frame decodes", "[protocol][codec]") {
  proto::StatsReply big{std::string(proto::kMaxFrameBody, 'm')};
  Bytes frame = proto::encode(big);
  auto r = proto::decode(frame, 0);
  REQUIRE(r.status == DecodeStatus::ok);
  CHECK(std::get<proto::StatsReply>(r.message).text.size() == proto::kMaxFrameBody);
}

TEST_CASE("unknown message types are refused from the header alone", "[protocol][codec]") {
  for (std::uint16_t type : {0, 34, 35, 0x100, 0xffff}) {
    INFO("type " << type);
    CHECK(error_of(raw_frame(type, 0, {}), 0) == DecodeError::unknown_type);
    CHECK(error_of(raw_frame(type, 0, {}, 100), 0) == DecodeError::unknown_type);  // body not there yet
  }
}

TEST_CASE("fds declared on a type that carries none are fd_count_invalid", "[protocol][codec]") {
  for (std::uint16_t type = 1; type <= 21; ++type) {
    auto t = static_cast<MessageType>(type);
    if (t == MessageType::park || t == MessageType::rejected || t == MessageType::wake) continue;
    INFO(proto::to_string(t));
    CHECK(error_of(raw_frame(type, 1, {}, 50), 1) == DecodeError::fd_count_invalid);
    CHECK(error_of(raw_frame(type, 253, {}, 50), 253) == DecodeError::fd_count_invalid);
  }
}

TEST_CASE("more than 253 fds in one frame is fd_count_invalid", "[protocol][codec]") {
  for (auto t : {MessageType::park, MessageType::rejected, MessageType::wake}) {
    INFO(proto::to_string(t));
    CHECK(error_of(raw_frame(static_cast<std::uint16_t>(t), 254, {}, 10), 254) == DecodeError::fd_count_invalid);
    CHECK(error_of(raw_frame(static_cast<std::uint16_t>(t), 0xffff, {}, 10), 0) == DecodeError::fd_count_invalid);
  }
}

TEST_CASE("a whole frame with fewer fds than it declares is fd_mismatch", "[protocol][codec]") {
  for (const Message& m : {Message{park_of(3)}, Message{wake_of(3)},
                           Message{proto::Rejected{{{1, proto::RejectReason::no_credit, ""}}}}}) {
    INFO(name_of(m));
    Bytes frame = proto::encode(m);
    std::size_t fds = proto::fd_count(m);
    CHECK(error_of(frame, fds - 1) == DecodeError::fd_mismatch);
    CHECK(error_of(frame, 0) == DecodeError::fd_mismatch);
    CHECK(proto::decode(frame, fds).status == DecodeStatus::ok);
    CHECK(proto::decode(frame, fds + 10).fds == fds);  // extra queued fds belong to later frames
  }
}

TEST_CASE("a record count that differs from fd_count is record_count", "[protocol][codec]") {
  for (const Message& m : {Message{park_of(3)}, Message{wake_of(3)},
                           Message{proto::Rejected{{{1, proto::RejectReason::no_credit, ""},
                                                    {2, proto::RejectReason::no_credit, ""},
                                                    {3, proto::RejectReason::no_credit, ""}}}}}) {
    INFO(name_of(m));
    Bytes frame = proto::encode(m);
    put_u16(frame, 6, 2);  // three records, two fds declared
    CHECK(error_of(frame, 3) == DecodeError::record_count);
    put_u16(frame, 6, 4);  // three records, four fds declared
    CHECK(error_of(frame, 4) == DecodeError::record_count);
    put_u16(frame, 6, 0);
    CHECK(error_of(frame, 0) == DecodeError::record_count);
  }
}

TEST_CASE("id lists and CLOSED batches larger than any frame can hold are record_count", "[protocol][codec]") {
  const auto closed = static_cast<std::uint16_t>(MessageType::closed);
  CHECK(error_of(raw_frame(closed, 0, Body{}.u32(0xffffffffu).bytes), 0) == DecodeError::record_count);
  CHECK(error_of(raw_frame(closed, 0, Body{}.u32(proto::kMaxFrameBody / 9 + 1).bytes), 0) == DecodeError::record_count);
  for (auto t : {MessageType::recall, MessageType::drop}) {
    INFO(proto::to_string(t));
    CHECK(error_of(raw_frame(static_cast<std::uint16_t>(t), 0, Body{}.u32(0xffffffffu).bytes), 0) ==
          DecodeError::record_count);
    // A plausible count the body does not hold is a truncation, not an allocation.
    CHECK(error_of(raw_frame(static_cast<std::uint16_t>(t), 0, Body{}.u32(1000).u64(1).bytes), 0) ==
          DecodeError::truncated_body);
  }
  CHECK(error_of(raw_frame(closed, 0, Body{}.u32(1000).u64(1).u8(1).bytes), 0) == DecodeError::truncated_body);
}

TEST_CASE("keeper messages with an op or command keeper level 1 does not define are bad_value", "[protocol][codec]") {
  const auto update = static_cast<std::uint16_t>(proto::MessageType::keep_update);
  const auto control = static_cast<std::uint16_t>(proto::MessageType::keep_control);
  for (std::uint8_t op : {0, 5, 255}) {
    INFO("op " << int(op));
    CHECK(error_of(raw_frame(update, 0, Body{}.u32(1).u8(op).u8(3).str("web").u64(1).bytes), 0) ==
          DecodeError::bad_value);
  }
  for (std::uint8_t command : {0, 6}) {
    INFO("command " << int(command));
    CHECK(error_of(raw_frame(control, 0, Body{}.u8(command).u64(0).bytes), 0) == DecodeError::bad_value);
  }
}

TEST_CASE("KEEP_UPDATE woken_unsent carries its bytes and without any is malformed", "[protocol][codec][keeper]") {
  proto::KeepUpdate u{{{proto::KeepOp::woken_unsent, "web", 8, "rest of a message"}}};
  Bytes frame = proto::encode(u);
  CHECK(frame.size() == proto::kHeaderSize + 4 + proto::encoded_size(u.records[0]));
  CHECK(proto::encoded_size(u.records[0]) == 1 + 1 + 3 + 8 + 4 + 17);
  auto d = proto::decode(frame, 0);
  REQUIRE(d.status == DecodeStatus::ok);
  CHECK(std::get<proto::KeepUpdate>(d.message) == u);
  // The other ops carry no bytes: what a record holds there is not encoded.
  CHECK(proto::encoded_size(proto::KeepUpdateRecord{proto::KeepOp::woken, "web", 8, "ignored"}) == 1 + 1 + 3 + 8);
  const auto update = static_cast<std::uint16_t>(MessageType::keep_update);
  // An empty unsent blob: never sent (it would be `woken`).
  auto empty = Body{}.u32(1).u8(4).u8(3).str("web").u64(8).u32(0).bytes;
  CHECK(error_of(raw_frame(update, 0, empty), 0) == DecodeError::bad_value);
  // A blob longer than the body, and a body cut inside the blob: truncated, never a crash.
  auto too_long = Body{}.u32(1).u8(4).u8(3).str("web").u64(8).u32(0xffffffff).str("abc").bytes;
  CHECK(error_of(raw_frame(update, 0, too_long), 0) == DecodeError::truncated_body);
  auto cut = Body{}.u32(1).u8(4).u8(3).str("web").u64(8).u32(5).str("ab").bytes;
  CHECK(error_of(raw_frame(update, 0, cut), 0) == DecodeError::truncated_body);
  auto no_length = Body{}.u32(1).u8(4).u8(3).str("web").u64(8).u8(1).bytes;
  CHECK(error_of(raw_frame(update, 0, no_length), 0) == DecodeError::truncated_body);
}

TEST_CASE("enum and flag values v1 does not define are bad_value", "[protocol][codec]") {
  const auto wake = static_cast<std::uint16_t>(MessageType::wake);
  const auto rejected = static_cast<std::uint16_t>(MessageType::rejected);
  const auto closed = static_cast<std::uint16_t>(MessageType::closed);
  const auto park = static_cast<std::uint16_t>(MessageType::park);
  const auto error = static_cast<std::uint16_t>(MessageType::error);
  const auto hello = static_cast<std::uint16_t>(MessageType::hello);

  SECTION("wake reason") {
    for (std::uint8_t reason : {0, 7, 0xff}) {
      CHECK(error_of(raw_frame(wake, 1, Body{}.u16(1).u64(1).u8(reason).u32(0).bytes), 1) == DecodeError::bad_value);
    }
    // A bad value in a later record, too.
    auto body = Body{}.u16(2).u64(1).u8(1).u32(0).u64(2).u8(9).u32(0).bytes;
    CHECK(error_of(raw_frame(wake, 2, body), 2) == DecodeError::bad_value);
  }
  SECTION("reject reason") {
    for (std::uint16_t reason : {0, 10, 0xffff}) {
      CHECK(error_of(raw_frame(rejected, 1, Body{}.u16(1).u64(1).u16(reason).u32(0).bytes), 1) == DecodeError::bad_value);
    }
  }
  SECTION("close reason") {
    for (std::uint8_t reason : {0, 7, 0xff}) {
      CHECK(error_of(raw_frame(closed, 0, Body{}.u32(1).u64(1).u8(reason).bytes), 0) == DecodeError::bad_value);
    }
  }
  SECTION("park flags") {
    // The high nibble is 1.1's rule set, 0x04 1.4's socket_checked (refused by a session before
    // 1.4, not by the decoder).
    for (std::uint8_t flags : {0x08, 0x0c, 0xff}) {
      CHECK(error_of(raw_frame(park, 1, Body{}.u16(1).u64(1).u32(0).u8(flags).u32(0).bytes), 1) ==
            DecodeError::bad_value);
    }
  }
  SECTION("error code and fatal byte") {
    for (std::uint16_t code : {0, 11, 0xffff}) {
      CHECK(error_of(raw_frame(error, 0, Body{}.u16(code).u8(1).u64(0).u32(0).bytes), 0) == DecodeError::bad_value);
    }
    CHECK(error_of(raw_frame(error, 0, Body{}.u16(1).u8(2).u64(0).u32(0).bytes), 0) == DecodeError::bad_value);
  }
  SECTION("pool names") {
    for (const std::string& pool : std::vector<std::string>{"a b", "slash/pool", std::string(proto::kMaxPoolName + 1, 'a'), std::string("nul\0", 4),
                             std::string("\xc3\xa9t\xc3\xa9")}) {
      INFO("pool '" << pool << "'");
      auto body = Body{}.u16(1).u16(0).u16(static_cast<std::uint16_t>(pool.size())).str(pool).bytes;
      CHECK(error_of(raw_frame(hello, 0, body), 0) == DecodeError::bad_value);
    }
  }
}

TEST_CASE("valid_pool_name accepts exactly the documented form", "[protocol][codec]") {
  CHECK(proto::valid_pool_name("a"));
  CHECK(proto::valid_pool_name("Heavy_Server-2.prod"));
  CHECK(proto::valid_pool_name(std::string(proto::kMaxPoolName, 'z')));
  CHECK_FALSE(proto::valid_pool_name(""));
  CHECK_FALSE(proto::valid_pool_name(std::string(proto::kMaxPoolName + 1, 'z')));
  CHECK_FALSE(proto::valid_pool_name("a:b"));
  CHECK_FALSE(proto::valid_pool_name("a\n"));
}

TEST_CASE("every decode error and protocol value has a name", "[protocol][codec]") {
  for (int e = 0; e <= static_cast<int>(DecodeError::fd_mismatch); ++e) {
    CHECK(proto::to_string(static_cast<DecodeError>(e)) != "unknown");
  }
  for (int t = 1; t <= 14; ++t) CHECK(proto::to_string(static_cast<MessageType>(t)) != "unknown");
  for (int t = 15; t <= 29; ++t) CHECK(proto::to_string(static_cast<MessageType>(t)) != "unknown");
  for (int r = 1; r <= 6; ++r) CHECK(proto::to_string(static_cast<proto::WakeReason>(r)) != "unknown");
  for (int r = 1; r <= 6; ++r) CHECK(proto::to_string(static_cast<proto::CloseReason>(r)) != "unknown");
  for (int r = 1; r <= 9; ++r) CHECK(proto::to_string(static_cast<proto::RejectReason>(r)) != "unknown");
  for (int c = 1; c <= 10; ++c) CHECK(proto::to_string(static_cast<proto::ErrorCode>(c)) != "unknown");
  CHECK(proto::to_string(static_cast<MessageType>(99)) == "unknown");
}

TEST_CASE("random corruption of valid frames never crashes the decoder", "[protocol][codec][fuzz]") {
  // A cheap, deterministic fuzz: flip bytes of every sample at many offsets and decode with
  // several fd counts. Any status is acceptable; a crash or a sanitizer report is not, and an
  // ok result must account for no more bytes than there are.
  std::uint64_t state = 0x9e3779b97f4a7c15ULL;
  auto next = [&] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  for (const auto& message : sample_messages()) {
    Bytes frame = proto::encode(message);
    if (frame.size() > 8192) frame.resize(8192);  // still a valid prefix to corrupt
    for (int round = 0; round < 200; ++round) {
      Bytes mutated = frame;
      int flips = 1 + static_cast<int>(next() % 4);
      for (int i = 0; i < flips; ++i) {
        mutated[next() % mutated.size()] = static_cast<std::byte>(next() & 0xff);
      }
      auto r = proto::decode(mutated, next() % 300);
      if (r.status == DecodeStatus::ok) {
        REQUIRE(r.consumed <= mutated.size());
        REQUIRE(r.fds == proto::fd_count(r.message));
      } else if (r.status == DecodeStatus::error) {
        REQUIRE(r.error != DecodeError::none);
      }
    }
  }
}

TEST_CASE("HANDOVER: bad kinds, pools and flags are malformed", "[protocol][codec]") {
  using K = proto::HandoverKind;
  for (const proto::HandoverRecord& r : std::vector<proto::HandoverRecord>{
           {K::listener, "web", 0, 0, 0, 0, "", ""},       // a listener belongs to no pool
           {K::parked, "", 0, 1, 0, 0, "", ""},            // a connection belongs to one
           {K::parked, "bad pool!", 0, 1, 0, 0, "", ""},   // not a pool name
           {K::parked, "web", 0, 1, 0x04, 0, "", ""},      // unknown park flag (0xf0 is the 1.1 rule set)
           {K::held, "web", 0, 1, 9, 0, "", ""},           // unknown wake reason
           {static_cast<K>(5), "web", 0, 1, 0, 0, "", ""}}) {
    Bytes frame = proto::encode(proto::Handover{{r}});
    auto d = proto::decode(frame, 1);
    CHECK(d.status == DecodeStatus::error);
    CHECK(d.error == DecodeError::bad_value);
  }
}

TEST_CASE("HANDOVER: a held wake's unsent bytes travel as kind 4 and kind 4 without any is malformed",
          "[protocol][codec]") {
  proto::Handover h{{{proto::HandoverKind::held, "web", 1000, 8, 6, 0, "blob", "rest of a message"}}};
  Bytes frame = proto::encode(h);
  CHECK(static_cast<std::uint8_t>(frame[proto::kHeaderSize + 2]) == proto::kHandoverHeldUnsent);
  CHECK(frame.size() == proto::kHeaderSize + 2 + proto::encoded_size(h.records[0]));
  auto d = proto::decode(frame, 1);
  REQUIRE(d.status == DecodeStatus::ok);
  CHECK(std::get<proto::Handover>(d.message) == h);
  // Kind 4 with an empty unsent blob: never sent (it would be kind 3).
  const auto handover = static_cast<std::uint16_t>(MessageType::handover);
  auto empty = Body{}.u16(1).u8(4).u8(3).str("web").u32(0).u64(8).u8(6).u32(0).u32(0).u32(0).bytes;
  CHECK(error_of(raw_frame(handover, 1, empty), 1) == DecodeError::bad_value);
  // And kind 4 must be a held wake's: its flags a wake reason.
  auto bad_reason = Body{}.u16(1).u8(4).u8(3).str("web").u32(0).u64(8).u8(9).u32(0).u32(0).u32(1).str("x").bytes;
  CHECK(error_of(raw_frame(handover, 1, bad_reason), 1) == DecodeError::bad_value);
}

TEST_CASE("COUNTERS: bad names and kinds are malformed and a count the body cannot hold is record_count",
          "[protocol][codec]") {
  const auto counters = static_cast<std::uint16_t>(MessageType::counters);
  auto one = [](std::string name, std::uint8_t kind) { return Body{}.u32(1).u16(static_cast<std::uint16_t>(name.size())).str(name).u8(kind).u64(1).bytes; };
  CHECK(proto::decode(raw_frame(counters, 0, one("parker_parks_total", 1)), 0).status == DecodeStatus::ok);
  CHECK(error_of(raw_frame(counters, 0, one("", 1)), 0) == DecodeError::bad_value);                     // no name
  CHECK(error_of(raw_frame(counters, 0, one("a b", 1)), 0) == DecodeError::bad_value);                  // a space
  CHECK(error_of(raw_frame(counters, 0, one("a\nb", 1)), 0) == DecodeError::bad_value);                 // a newline
  CHECK(error_of(raw_frame(counters, 0, one(std::string(proto::kMaxCounterName + 1, 'c'), 1)), 0) == DecodeError::bad_value);
  CHECK(error_of(raw_frame(counters, 0, one("c", 0)), 0) == DecodeError::bad_value);                    // kinds 1 and 2 only
  CHECK(error_of(raw_frame(counters, 0, one("c", 3)), 0) == DecodeError::bad_value);
  CHECK(error_of(raw_frame(counters, 0, Body{}.u32(0xffffffff).bytes), 0) == DecodeError::record_count);
  CHECK(error_of(raw_frame(counters, 0, Body{}.u32(2).u16(1).str("c").u8(1).u64(1).bytes), 0) == DecodeError::truncated_body);
  // Parker to parker, with no fds.
  CHECK(error_of(raw_frame(counters, 1, Body{}.u32(0).bytes), 1) == DecodeError::fd_count_invalid);
  // HANDOVER_RULES: a pool's (not the listener's empty one), with KEEPALIVE_RULES' bounds.
  const auto rules = static_cast<std::uint16_t>(MessageType::handover_rules);
  CHECK(error_of(raw_frame(rules, 0, Body{}.u8(0).u32(0).u8(1).u8(0).bytes), 0) == DecodeError::bad_value);
  CHECK(error_of(raw_frame(rules, 0, Body{}.u8(4).str("a b!").u32(0).u8(1).u8(0).bytes), 0) == DecodeError::bad_value);
  CHECK(error_of(raw_frame(rules, 0, Body{}.u8(3).str("web").u32(0).u8(16).u8(0).bytes), 0) == DecodeError::bad_value);
  CHECK(error_of(raw_frame(rules, 0, Body{}.u8(3).str("web").u32(0).u8(1).u8(9).bytes), 0) == DecodeError::record_count);
  CHECK(error_of(raw_frame(rules, 0, Body{}.u8(3).str("web").u32(0).u8(1).u8(1).u8(0).u16(0).bytes), 0) ==
        DecodeError::bad_value);
  CHECK(proto::is_minor_2(MessageType::handover_rules));
  CHECK(proto::is_minor_2(MessageType::counters));
  CHECK_FALSE(proto::is_minor_1(MessageType::counters));
}

TEST_CASE("WRITE and KEEPALIVE_RULES out of their bounds are malformed", "[protocol][codec]") {
  const auto write = static_cast<std::uint16_t>(MessageType::write);
  const auto rules = static_cast<std::uint16_t>(MessageType::keepalive_rules);
  // No ids; an empty payload; a payload over 1 MiB.
  CHECK(error_of(raw_frame(write, 0, Body{}.u32(0).u32(1).str("x").bytes), 0) == DecodeError::record_count);
  CHECK(error_of(raw_frame(write, 0, Body{}.u32(1).u64(1).u32(0).bytes), 0) == DecodeError::bad_value);
  CHECK(error_of(raw_frame(write, 0, Body{}.u32(1).u64(1).u32(proto::kMaxWritePayload + 1).bytes), 0) ==
        DecodeError::bad_value);
  // Set 0 and 16; an empty request; a request or reply too long; nine rules.
  CHECK(error_of(raw_frame(rules, 0, Body{}.u8(0).u8(0).bytes), 0) == DecodeError::bad_value);
  CHECK(error_of(raw_frame(rules, 0, Body{}.u8(16).u8(0).bytes), 0) == DecodeError::bad_value);
  CHECK(error_of(raw_frame(rules, 0, Body{}.u8(1).u8(1).u8(0).u16(0).bytes), 0) == DecodeError::bad_value);
  auto long_request = Body{}.u8(1).u8(1).u8(65).str(std::string(65, 'r')).u16(0).bytes;
  CHECK(error_of(raw_frame(rules, 0, long_request), 0) == DecodeError::bad_value);
  auto long_reply = Body{}.u8(1).u8(1).u8(1).str("r").u16(513).str(std::string(513, 'R')).bytes;
  CHECK(error_of(raw_frame(rules, 0, long_reply), 0) == DecodeError::bad_value);
  CHECK(error_of(raw_frame(rules, 0, Body{}.u8(1).u8(9).bytes), 0) == DecodeError::record_count);
  // WAKE_UNSENT carries fds like WAKE, and its records their unsent bytes.
  const auto unsent = static_cast<std::uint16_t>(MessageType::wake_unsent);
  CHECK(error_of(raw_frame(unsent, 1, Body{}.u16(1).u64(1).u8(6).u32(0).bytes), 1) == DecodeError::truncated_body);
  CHECK(error_of(raw_frame(unsent, 2, Body{}.u16(1).u64(1).u8(6).u32(0).u32(0).bytes), 2) == DecodeError::record_count);
}
