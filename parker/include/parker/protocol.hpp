// Wire protocol 1.2 between parker and the servers that park connections with it (1.0 peers
// keep working: 1.1 and 1.2 only add messages, used only on sessions that negotiated them;
// 1.2 adds only parker-to-parker hand-over messages, so owners see no difference from 1.1).
// docs/PROTOCOL.md is the normative description; this header is its code.
//
// Every message is one frame on a SOCK_STREAM Unix socket:
//
//   u32 body_length | u16 type | u16 fd_count | body (body_length bytes)      little-endian
//
// and the frame's fd_count fds ride on its first byte (one sendmsg per frame). Frames and
// fds are matched by the counts frames declare, never by recvmsg boundaries: a receiver
// queues the fds it gets and hands each complete frame exactly fd_count of them. For PARK,
// REJECTED and WAKE the n-th fd belongs to the n-th record; other types carry none.
//
// Decoding is a pure function of (bytes, number of fds received) — decode() below — so it
// can be tested exhaustively and fuzzed; I/O lives in FrameReader (frame_reader.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace parker::protocol {

inline constexpr std::uint16_t kVersionMajor = 1;
inline constexpr std::uint16_t kVersionMinor = 4;
// The first minor version with acknowledged wakes, confirmed parks, INVENTORY, GOODBYE and
// credit reclaim.
inline constexpr std::uint16_t kMinorExactlyOnce = 1;
// The first minor version whose hand-over to a successor also carries parker's cumulative
// counters (COUNTERS). A successor that says HELLO 1.1 gets the 1.1 hand-over.
inline constexpr std::uint16_t kMinorHandoverState = 2;
// The first minor version in which parker, ending a session itself, says how far it got: its
// fatal ERROR carries in `id` the number of the last WRITE it handled (it reads nothing after
// deciding to end the session), so every later WRITE is known not to have been handled.
inline constexpr std::uint16_t kMinorWritesHandled = 3;
// The first minor version with the `socket_checked` park flag: the owner says it has checked
// that the fd is a socket, and parker skips its own check (one syscall per park).
inline constexpr std::uint16_t kMinorSocketChecked = 4;
// The highest minor with anything for an owner: what the client library offers by default
// (1.2 only added parker-to-parker messages; 1.3 adds the WRITE count of a fatal ERROR; 1.4
// the socket_checked park flag).
inline constexpr std::uint16_t kOwnerMinor = 4;

inline constexpr std::size_t kHeaderSize = 8;
inline constexpr std::size_t kMaxFrameBody = 16u << 20;   // 16 MiB
inline constexpr std::size_t kMaxRecordsPerFrame = 253;   // SCM_MAX_FD
inline constexpr std::size_t kMaxPoolName = 64;
inline constexpr std::size_t kMaxText = kMaxFrameBody;

enum class MessageType : std::uint16_t {
  hello = 1,        // owner -> parker
  welcome = 2,      // parker -> owner
  error = 3,        // parker -> peer
  park = 4,         // owner -> parker, one fd per record
  rejected = 5,     // parker -> owner, one fd per record (the refused fd, returned)
  wake = 6,         // parker -> owner, one fd per record
  closed = 7,       // parker -> owner
  recall = 8,       // owner -> parker
  drop = 9,         // owner -> parker
  credit = 10,      // parker -> owner
  stats = 11,       // peer -> parker
  stats_reply = 12, // parker -> peer
  list = 13,        // peer -> parker
  list_reply = 14,  // parker -> peer
  // 1.1
  ack = 15,              // owner -> parker: wakes received so far on this session
  parked = 16,           // parker -> owner: parks of this session handled so far
  inventory = 17,        // owner -> parker: the records of everything parked in the pool
  inventory_reply = 18,  // parker -> owner: a batch of them
  goodbye = 19,          // owner -> parker: leaving; parker -> owner: everything confirmed
  reclaim = 20,          // parker -> owner: please give back unused credit
  credit_return = 21,    // owner -> parker: credit given back
  // 1.1, between parkers (docs/PROTOCOL.md, "Hand-over to a successor")
  take_over = 22,        // successor -> parker: hand everything over to me
  handover = 23,         // parker -> successor: the listener, parked and held fds with their records
  handover_end = 24,     // parker -> successor: that was all (with the held CLOSED records)
  taken = 25,            // successor -> parker: received everything; yours may close
  // 1.1: talking to parked clients without waking them (docs/PROTOCOL.md, "Write-through")
  write = 26,            // owner -> parker: write one payload to these parked connections
  write_result = 27,     // parker -> owner: a WRITE handled; the ids it could not write to
  keepalive_rules = 28,  // owner -> parker: a set of request -> reply rules for the pool
  wake_unsent = 29,      // parker -> owner: WAKE whose records carry bytes not yet written
  // 1.1, parker to its keeper (docs/PROTOCOL.md, "The keeper: surviving a crash")
  keep_update = 32,      // parker -> keeper: connections woken or gone (no fds)
  keep_control = 33,     // both ways: hello, the keeper's state, restore, bye
  // 1.2, between parkers: what a hand-over carries besides the fds
  counters = 30,         // parker -> successor: its cumulative counters, to continue from
  handover_rules = 31,   // parker -> successor: a keep-alive rule set of a pool it hands over
};

enum class WakeReason : std::uint8_t {
  readable = 1, hangup = 2, deadline = 3, recalled = 4, shutdown = 5,
  write_blocked = 6,  // 1.1: a write-through or keep-alive reply did not fit: the rest is in `unsent`
};
enum class CloseReason : std::uint8_t {
  hangup = 1,      // the client went away with nothing to read
  deadline = 2,    // the idle deadline passed and the park asked for close
  dropped = 3,     // the owner sent DROP
  owner_gone = 4,  // a wake waited longer than the owner grace for its pool to come back
  error = 5,       // the socket reported an error
  shutdown = 6,    // parker stopped and no session of the pool was connected
};
enum class RejectReason : std::uint16_t {
  quota_owner = 1,    // --max-parked-per-owner reached for this pool
  quota_total = 2,    // --max-parked reached, or no fd room left in parker
  not_socket = 3,     // the fd is not a socket (S_ISSOCK)
  blob_too_big = 4,   // larger than the welcome's max_blob
  duplicate_id = 5,   // the pool already has a parked connection with this id
  no_credit = 6,      // sent beyond the credit parker granted
  shutting_down = 7,  // parker is stopping
  watch_failed = 8,   // parker could not watch it (e.g. the poll registration failed)
  no_rules = 9,       // 1.1: the park names a keep-alive rule set the pool has not declared
};
enum class ErrorCode : std::uint16_t {
  bad_version = 1,      // fatal: unknown major version
  not_allowed = 2,      // fatal: peer uid/gid not allowed
  pool_taken = 3,       // fatal: pool belongs to another uid
  bad_frame = 4,        // fatal: malformed frame
  fd_mismatch = 5,      // fatal: fds do not match the declared counts
  unknown_id = 6,       // not fatal: recall/drop of an id that is not parked
  hello_required = 7,   // fatal: first frame was not HELLO (or HELLO sent twice)
  bad_pool_name = 8,    // fatal
  shutting_down = 9,    // fatal: parker is stopping
  not_owner = 10,       // not fatal: an observer session (empty pool) cannot park
};

// Flags of a parked connection.
inline constexpr std::uint8_t kWakeOnDeadline = 0x01;  // at the deadline hand back (else close)
inline constexpr std::uint8_t kWakeOnHangup = 0x02;    // a bare hang-up is handed back (else closed)
inline constexpr std::uint8_t kKnownParkFlags = kWakeOnDeadline | kWakeOnHangup;
// 1.1: the high nibble of a park's flags names a keep-alive rule set of the pool (1..15; 0:
// none). A 1.0 session that sets it gets bad_frame from parker.
inline constexpr std::uint8_t kKeepaliveSetMask = 0xf0;
inline constexpr unsigned kKeepaliveSetShift = 4;
inline constexpr std::uint8_t kKnownParkFlags11 = kKnownParkFlags | kKeepaliveSetMask;
// 1.4: the owner has checked that the fd is a socket (S_ISSOCK), so parker need not. It rides
// only in PARK: parker does not keep it (INVENTORY and HANDOVER never carry it). On a session
// before 1.4 it is malformed, as it was before 1.4 existed.
inline constexpr std::uint8_t kSocketChecked = 0x04;
inline constexpr std::uint8_t kKnownParkFlags14 = kKnownParkFlags11 | kSocketChecked;
[[nodiscard]] constexpr std::uint8_t keepalive_set_of(std::uint8_t flags) noexcept {
  return static_cast<std::uint8_t>(flags >> kKeepaliveSetShift);
}
// Bounds of write-through and keep-alive rules (docs/PROTOCOL.md).
inline constexpr std::size_t kMaxWritePayload = 1u << 20;  // 1 MiB per WRITE
inline constexpr std::size_t kMaxKeepaliveSets = 15;
inline constexpr std::size_t kMaxKeepaliveRules = 8;        // per set
inline constexpr std::size_t kMaxKeepaliveRequest = 64;
inline constexpr std::size_t kMaxKeepaliveReply = 512;

struct Hello {
  std::uint16_t major = kVersionMajor;
  std::uint16_t minor = kVersionMinor;
  std::string pool;  // empty: an observer (stats/list only)
  friend bool operator==(const Hello&, const Hello&) = default;
};

struct Welcome {
  std::uint16_t major = kVersionMajor;
  std::uint16_t minor = kVersionMinor;
  std::uint32_t max_blob = 0;
  std::uint32_t max_parked_per_owner = 0;
  std::uint32_t credit = 0;         // parks this session may have in flight right now
  std::uint64_t session_id = 0;
  std::uint32_t parked_in_pool = 0; // connections of the pool parked at this moment
  friend bool operator==(const Welcome&, const Welcome&) = default;
};

struct ErrorMessage {
  ErrorCode code{};
  bool fatal = false;
  // The id concerned, or 0. 1.3, a fatal ERROR: the number of the last WRITE parker handled
  // on this session (0: none); it handled none after it.
  std::uint64_t id = 0;
  std::string text;
  friend bool operator==(const ErrorMessage&, const ErrorMessage&) = default;
};

struct ParkRecord {
  std::uint64_t id = 0;
  std::uint32_t deadline_ms = 0;  // idle deadline from arrival in parker; 0 = none
  std::uint8_t flags = 0;         // kWakeOnDeadline | kWakeOnHangup
  std::string blob;               // opaque to parker
  friend bool operator==(const ParkRecord&, const ParkRecord&) = default;
};
struct Park {
  std::vector<ParkRecord> records;
  friend bool operator==(const Park&, const Park&) = default;
};

struct RejectRecord {
  std::uint64_t id = 0;
  RejectReason reason{};
  std::string blob;  // the park's blob, returned with its fd: the owner may have freed its state
  friend bool operator==(const RejectRecord&, const RejectRecord&) = default;
};
struct Rejected {
  std::vector<RejectRecord> records;
  friend bool operator==(const Rejected&, const Rejected&) = default;
};

struct WakeRecord {
  std::uint64_t id = 0;
  WakeReason reason{};
  std::string blob;
  // 1.1: bytes parker accepted for this connection (WRITE, keep-alive reply) and could not
  // write; the owner must write them to the client before anything else. A Wake with any
  // record carrying some travels as WAKE_UNSENT (only on 1.1 sessions).
  std::string unsent{};
  friend bool operator==(const WakeRecord&, const WakeRecord&) = default;
};
struct Wake {
  std::vector<WakeRecord> records;
  friend bool operator==(const Wake&, const Wake&) = default;
};

struct CloseRecord {
  std::uint64_t id = 0;
  CloseReason reason{};
  friend bool operator==(const CloseRecord&, const CloseRecord&) = default;
};
struct Closed {
  std::vector<CloseRecord> records;
  friend bool operator==(const Closed&, const Closed&) = default;
};

struct Recall {
  std::vector<std::uint64_t> ids;
  friend bool operator==(const Recall&, const Recall&) = default;
};
struct Drop {
  std::vector<std::uint64_t> ids;
  friend bool operator==(const Drop&, const Drop&) = default;
};
struct Credit {
  std::uint32_t grant = 0;  // added to the session's credit
  friend bool operator==(const Credit&, const Credit&) = default;
};
struct StatsRequest {
  friend bool operator==(const StatsRequest&, const StatsRequest&) = default;
};
struct StatsReply {
  std::string text;  // Prometheus text exposition
  friend bool operator==(const StatsReply&, const StatsReply&) = default;
};
struct ListRequest {
  friend bool operator==(const ListRequest&, const ListRequest&) = default;
};
struct ListReply {
  std::string text;  // one line per pool
  friend bool operator==(const ListReply&, const ListReply&) = default;
};

// ---- 1.1 --------------------------------------------------------------------------------

// The owner has received `wakes` WAKE records on this session so far (cumulative): parker
// may close its copies of those fds. Until then they are still parker's.
struct Ack {
  std::uint64_t wakes = 0;
  friend bool operator==(const Ack&, const Ack&) = default;
};
// Parker has handled the first `parks` PARK records of this session (cumulative): each is
// parked now, or was returned in a REJECTED frame sent before this one.
struct Parked {
  std::uint64_t parks = 0;
  friend bool operator==(const Parked&, const Parked&) = default;
};
struct InventoryRequest {
  friend bool operator==(const InventoryRequest&, const InventoryRequest&) = default;
};
enum class InventoryState : std::uint8_t { parked = 1, held = 2 };
struct InventoryRecord {
  std::uint64_t id = 0;
  InventoryState state = InventoryState::parked;
  std::uint8_t flags = 0;             // as parked
  std::uint32_t deadline_left_ms = 0; // 0: no deadline (at least 1 when there is one)
  std::string blob;
  friend bool operator==(const InventoryRecord&, const InventoryRecord&) = default;
};
struct InventoryReply {
  bool last = false;  // the final batch of this inventory
  std::vector<InventoryRecord> records;
  friend bool operator==(const InventoryReply&, const InventoryReply&) = default;
};
struct Goodbye {
  friend bool operator==(const Goodbye&, const Goodbye&) = default;
};
struct Reclaim {
  std::uint32_t wanted = 0;  // credit parker would like back
  friend bool operator==(const Reclaim&, const Reclaim&) = default;
};
struct CreditReturn {
  std::uint32_t returned = 0;  // credit the owner gives up (at most what it holds)
  friend bool operator==(const CreditReturn&, const CreditReturn&) = default;
};

// ---- 1.1, parker to parker: hand-over to a successor ----------------------------------

// The successor (a new parker started with --take-over) can hold `room` more fds.
struct TakeOver {
  std::uint32_t room = 0;
  friend bool operator==(const TakeOver&, const TakeOver&) = default;
};
enum class HandoverKind : std::uint8_t { listener = 1, parked = 2, held = 3 };
// One fd handed over, with what parker knows of it. `pool` and `uid` are empty and 0 for
// the listener; `flags` are the park flags (parked) or the WakeReason (held). A held wake
// with `unsent` bytes (1.2) travels as wire kind 4, its record one blob longer (as a
// WAKE_UNSENT is a WAKE); only a 1.2 successor is sent one, and between parker and its keeper
// only at keeper level 1 (kKeeperLevel), both ways.
struct HandoverRecord {
  HandoverKind kind = HandoverKind::parked;
  std::string pool;
  std::uint32_t uid = 0;
  std::uint64_t id = 0;
  std::uint8_t flags = 0;
  std::uint32_t deadline_left_ms = 0;  // parked: 0 = no deadline (at least 1 when there is one)
  std::string blob;
  std::string unsent;  // held only (1.2): bytes of the client's output stream not yet written
  friend bool operator==(const HandoverRecord&, const HandoverRecord&) = default;
};
struct Handover {
  std::vector<HandoverRecord> records;  // one fd each
  friend bool operator==(const Handover&, const Handover&) = default;
};
struct HandoverClosed {
  std::string pool;
  std::uint32_t uid = 0;
  std::uint64_t id = 0;
  CloseReason reason = CloseReason::hangup;
  friend bool operator==(const HandoverClosed&, const HandoverClosed&) = default;
};
struct HandoverEnd {
  std::uint64_t records = 0;            // HANDOVER records sent in all
  std::vector<HandoverClosed> closed;   // CLOSED records held for absent owners
  friend bool operator==(const HandoverEnd&, const HandoverEnd&) = default;
};
struct Taken {
  std::uint64_t records = 0;  // HANDOVER records received
  friend bool operator==(const Taken&, const Taken&) = default;
};

// ---- 1.1: write-through and keep-alive rules ------------------------------------------

// Write `payload` to each of `ids` (parked connections of the session's pool), in order
// after any earlier WRITE to them. WRITE frames of a session are numbered 1, 2, ...
struct Write {
  std::vector<std::uint64_t> ids;
  std::string payload;  // 1..kMaxWritePayload bytes
  friend bool operator==(const Write&, const Write&) = default;
};
// The answer to WRITE number `write`: `written` ids took the payload (wholly, or the rest
// comes back as `unsent` in a WAKE_UNSENT); `not_parked` were not parked (woken, closed,
// never parked): parker wrote nothing to them, the owner delivers the payload itself.
struct WriteResult {
  std::uint64_t write = 0;
  std::uint32_t written = 0;
  std::vector<std::uint64_t> not_parked;
  friend bool operator==(const WriteResult&, const WriteResult&) = default;
};
struct KeepaliveRule {
  std::string request;  // 1..kMaxKeepaliveRequest bytes, matched exactly
  std::string reply;    // 0..kMaxKeepaliveReply bytes written back
  friend bool operator==(const KeepaliveRule&, const KeepaliveRule&) = default;
};
// Declares (or replaces; no rules: removes) rule set `set` (1..15) of the session's pool.
struct KeepaliveRules {
  std::uint8_t set = 1;
  std::vector<KeepaliveRule> rules;  // at most kMaxKeepaliveRules
  friend bool operator==(const KeepaliveRules&, const KeepaliveRules&) = default;
};

// ---- 1.2, parker to parker: the rest of a hand-over -------------------------------------

// One cumulative metric, named as parker's STATS exposition names the series (labels
// included: `parker_wakes_total{reason="readable"}`, `parker_time_parked_seconds_bucket{le="60"}`).
enum class CounterKind : std::uint8_t {
  count = 1,  // `value` is the count
  real = 2,   // `value` holds the IEEE 754 binary64 bits of a sum (a histogram's _sum)
};
inline constexpr std::size_t kMaxCounterName = 200;
// The wire kind of a held HandoverRecord with unsent bytes.
inline constexpr std::uint8_t kHandoverHeldUnsent = 4;
struct CounterValue {
  std::string name;  // 1..kMaxCounterName bytes of printable ASCII, no space
  CounterKind kind = CounterKind::count;
  std::uint64_t value = 0;
  friend bool operator==(const CounterValue&, const CounterValue&) = default;
};
// HANDOVER_RULES: rule set `rules.set` of pool `pool` (of `uid`), sent before the HANDOVER
// records of the pool's parked connections, so the successor answers their keep-alive
// requests before the owner comes back to declare them again.
struct HandoverRules {
  std::string pool;
  std::uint32_t uid = 0;
  KeepaliveRules rules;
  friend bool operator==(const HandoverRules&, const HandoverRules&) = default;
};
// COUNTERS: the old parker's counters, sent after the last HANDOVER and before HANDOVER_END
// on a 1.2 session. The successor adds the ones it knows to its own and ignores the others.
struct HandoverCounters {
  std::vector<CounterValue> values;
  friend bool operator==(const HandoverCounters&, const HandoverCounters&) = default;
};

// ---- 1.1, parker to its keeper -----------------------------------------------------------
// parker sends the keeper a copy of every connection it parks (HANDOVER frames, one fd per
// record) and tells it, with KEEP_UPDATE, when one is woken (the keeper's copy is then a
// held wake) or gone (the copy closes). A connection is known by its pool and id.
enum class KeepOp : std::uint8_t {
  woken = 1,         // parked -> held: on its way to an owner
  forget = 2,        // gone, whatever its state (closed, dropped, let go)
  forget_woken = 3,  // the owner has it (acknowledged, or sent on a 1.0 session): only a held copy goes
  woken_unsent = 4,  // keeper level 1: woken write_blocked; the record carries the unsent bytes
};
struct KeepUpdateRecord {
  KeepOp op = KeepOp::forget;
  std::string pool;
  std::uint64_t id = 0;
  std::string unsent{};  // woken_unsent only, and never empty there: the WAKE_UNSENT record's bytes
  friend bool operator==(const KeepUpdateRecord&, const KeepUpdateRecord&) = default;
};
struct KeepUpdate {
  std::vector<KeepUpdateRecord> records;
  friend bool operator==(const KeepUpdate&, const KeepUpdate&) = default;
};
enum class KeepCommand : std::uint8_t {
  hello = 1,    // parker -> keeper, first: `count` = 0
  state = 2,    // keeper -> parker: the answer to hello, `count` = connections it holds
  restore = 3,  // parker -> keeper: send me copies of them all (HANDOVER ... HANDOVER_END)
  bye = 4,      // parker -> keeper: stopping cleanly, nothing is left to keep: exit
  level = 5,    // keeper -> parker, right before state, only to a hello of level >= 1: `count` = its level
};
// The keeper protocol's level, negotiated in hello (`count`: parker's level; 0 from parkers
// before levels) and `level` (the keeper's; a keeper before levels sends none, only state).
// Each side uses the lower one. Level 1: held wakes keep their unsent bytes (KEEP_UPDATE
// woken_unsent, HANDOVER kind 4 both ways). Neither side sends the other what its level lacks.
inline constexpr std::uint64_t kKeeperLevel = 1;
inline constexpr std::uint64_t kKeeperLevelUnsent = 1;
struct KeepControl {
  KeepCommand command = KeepCommand::hello;
  std::uint64_t count = 0;
  friend bool operator==(const KeepControl&, const KeepControl&) = default;
};

// The alternatives follow the type codes (index + 1), but for WAKE_UNSENT, which is the wire
// form of a Wake whose records carry unsent bytes, the keeper's two and those of 1.2 (type_of
// says which).
using Message = std::variant<Hello, Welcome, ErrorMessage, Park, Rejected, Wake, Closed, Recall,
                             Drop, Credit, StatsRequest, StatsReply, ListRequest, ListReply,
                             Ack, Parked, InventoryRequest, InventoryReply, Goodbye, Reclaim,
                             CreditReturn, TakeOver, Handover, HandoverEnd, Taken,
                             Write, WriteResult, KeepaliveRules, KeepUpdate, KeepControl,
                             HandoverCounters, HandoverRules>;
// Messages of minor version 1: a session that negotiated 1.0 neither sends nor accepts them.
[[nodiscard]] constexpr bool is_minor_1(MessageType type) noexcept {
  return (type >= MessageType::ack && type <= MessageType::wake_unsent) || type == MessageType::keep_update ||
         type == MessageType::keep_control;
}
// Messages of minor version 2 (parker to parker).
[[nodiscard]] constexpr bool is_minor_2(MessageType type) noexcept {
  return type == MessageType::counters || type == MessageType::handover_rules;
}
// A Wake that must travel as WAKE_UNSENT.
[[nodiscard]] bool has_unsent(const Wake& wake) noexcept;

// The number of fds a message carries on the wire.
[[nodiscard]] std::size_t fd_count(const Message& message);
[[nodiscard]] MessageType type_of(const Message& message);

// Appends the frame for `message` to `out`. Batches must not exceed kMaxRecordsPerFrame
// records or kMaxFrameBody bytes (split them; the client and daemon do).
void encode(const Message& message, std::vector<std::byte>& out);
[[nodiscard]] std::vector<std::byte> encode(const Message& message);
// Body bytes a record adds to a PARK or WAKE frame, to split batches by size.
[[nodiscard]] std::size_t encoded_size(const ParkRecord& record);
[[nodiscard]] std::size_t encoded_size(const WakeRecord& record);  // in WAKE_UNSENT if it has unsent bytes
[[nodiscard]] std::size_t encoded_size(const InventoryRecord& record);
[[nodiscard]] std::size_t encoded_size(const HandoverRecord& record);
[[nodiscard]] std::size_t encoded_size(const KeepUpdateRecord& record);

enum class DecodeStatus {
  ok,         // `message` holds a frame of `consumed` bytes that takes `fds` fds
  need_more,  // not a whole frame yet (or its fds have not all arrived)
  error,      // malformed: the connection must be closed with every fd received on it
};

enum class DecodeError {
  none,
  frame_too_big,     // body_length over kMaxFrameBody
  unknown_type,
  fd_count_invalid,  // a type that carries no fds declares some, or over kMaxRecordsPerFrame
  record_count,      // record count does not match fd_count, or is over the limit
  truncated_body,    // the body ends inside a field
  trailing_bytes,    // bytes left in the body after the last field
  bad_value,         // an enum or flag value that v1 does not define, or a bad pool name
  fd_mismatch,       // the frame is whole but fewer fds arrived than it declares
};

struct DecodeResult {
  DecodeStatus status = DecodeStatus::need_more;
  Message message;
  std::size_t consumed = 0;  // bytes of the frame, header included
  std::size_t fds = 0;       // fds the frame takes from the receiver's queue
  DecodeError error = DecodeError::none;
};

// Decodes the first frame in `bytes`, given how many received fds are waiting for it.
[[nodiscard]] DecodeResult decode(std::span<const std::byte> bytes, std::size_t fds_available);

[[nodiscard]] std::string_view to_string(MessageType type);
[[nodiscard]] std::string_view to_string(WakeReason reason);
[[nodiscard]] std::string_view to_string(CloseReason reason);
[[nodiscard]] std::string_view to_string(RejectReason reason);
[[nodiscard]] std::string_view to_string(ErrorCode code);
[[nodiscard]] std::string_view to_string(DecodeError error);
[[nodiscard]] std::string_view to_string(InventoryState state);

// A pool name is 1..kMaxPoolName bytes of [A-Za-z0-9._-]; empty means an observer.
[[nodiscard]] bool valid_pool_name(std::string_view pool);

}  // namespace parker::protocol
