// make_seeds: writes the fuzzers' seed corpus, valid frames of every message type, so that
// libFuzzer starts from inputs that get past the header checks instead of finding them by
// chance.
//
//   make_seeds DIR    writes DIR/fuzz_protocol_decode/, DIR/fuzz_frame_reader/ and
//                     DIR/fuzz_client_incoming/, each in its target's input format
//
// It walks every alternative of protocol::Message, so a message type added later gets seeds
// as soon as this is re-run: by default its default value, or the examples given below.
// `./dev.sh fuzz` runs it into build-fuzz on every run; to refresh the seeds kept in the
// tree, `rm -r tests/fuzz/corpus && build-fuzz/bin/make_seeds tests/fuzz/corpus`.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "fuzz_support.hpp"
#include "parker/protocol.hpp"

namespace proto = parker::protocol;
namespace fs = std::filesystem;

namespace {

// Examples of each message type. A type without its own list is seeded with its default
// value, which is valid for every type whose fields are counts, numbers and strings; give
// one where a default enum or flag would not decode.
template <class T>
std::vector<T> examples() {
  return {T{}};
}
template <>
std::vector<proto::Hello> examples() {
  return {{proto::kVersionMajor, 0, "web-1"}, {proto::kVersionMajor, 0, ""}};
}
template <>
std::vector<proto::Welcome> examples() {
  return {{proto::kVersionMajor, 0, 65536, 10000, 64, 0x1122334455667788, 3}};
}
template <>
std::vector<proto::ErrorMessage> examples() {
  return {{proto::ErrorCode::unknown_id, false, 42, "not parked"},
          {proto::ErrorCode::bad_version, true, 0, "parker speaks 1"}};
}
template <>
std::vector<proto::Park> examples() {
  return {{{{1, 60000, proto::kWakeOnDeadline | proto::kWakeOnHangup, "session-state"}, {2, 0, 0, ""}}},
          {{{5, 1000, proto::kWakeOnHangup, "a"}}}};
}
template <>
std::vector<proto::Handover> examples() {
  using K = proto::HandoverKind;
  return {{{{K::listener, "", 0, 0, 0, 0, "", ""}}},
          {{{K::parked, "web", 1000, 7, proto::kWakeOnHangup, 5000, "session", ""},
            {K::held, "web", 1000, 8, static_cast<std::uint8_t>(proto::WakeReason::readable), 0, "b", ""}}},
          // 1.2: a held wake with unsent bytes (wire kind 4)
          {{{K::held, "web", 1000, 9, static_cast<std::uint8_t>(proto::WakeReason::write_blocked), 0, "c",
             "$5\r\nhello\r\n"}}}};
}
template <>
std::vector<proto::HandoverEnd> examples() {
  return {{3, {{"web", 1000, 9, proto::CloseReason::hangup}}}, {0, {}}};
}
template <>
std::vector<proto::HandoverRules> examples() {
  return {{"web", 1000, {1, {{"*1\r\n$4\r\nPING\r\n", "+PONG\r\n"}, {"PING\r\n", "+PONG\r\n"}}}}};
}
template <>
std::vector<proto::HandoverCounters> examples() {
  using K = proto::CounterKind;
  return {{{{"parker_parks_total", K::count, 300},
            {"parker_wakes_total{reason=\"readable\"}", K::count, 299},
            {"parker_time_parked_seconds_bucket{le=\"+Inf\"}", K::count, 299},
            {"parker_time_parked_seconds_sum", K::real, 0x4059000000000000}}},
          {}};
}
template <>
std::vector<proto::KeepUpdate> examples() {
  return {{{{proto::KeepOp::woken, "web", 7}, {proto::KeepOp::forget_woken, "web", 8}}},
          // keeper level 1: a held wake's unsent bytes
          {{{proto::KeepOp::woken_unsent, "web", 9, "$5\r\nhello\r\n"}, {proto::KeepOp::forget, "web", 7}}}};
}
template <>
std::vector<proto::KeepControl> examples() {
  return {{proto::KeepCommand::hello, 0}, {proto::KeepCommand::state, 3},
          {proto::KeepCommand::hello, proto::kKeeperLevel}, {proto::KeepCommand::level, proto::kKeeperLevel}};
}
template <>
std::vector<proto::Rejected> examples() {
  return {{{{7, proto::RejectReason::quota_owner, "session-state"}}},
          {{{8, proto::RejectReason::no_credit, ""}, {9, proto::RejectReason::duplicate_id, "b"}}}};
}
template <>
std::vector<proto::Wake> examples() {
  return {{{{1, proto::WakeReason::readable, "session-state"}, {2, proto::WakeReason::hangup, ""}}},
          {{{3, proto::WakeReason::deadline, "c"},
            {4, proto::WakeReason::recalled, ""},
            {5, proto::WakeReason::shutdown, "dd"}}},
          // WAKE_UNSENT (1.1): a record with bytes parker could not write
          {{{6, proto::WakeReason::write_blocked, "e", "$5\r\nhello\r\n"}, {7, proto::WakeReason::readable, "", ""}}}};
}
template <>
std::vector<proto::Write> examples() {
  return {{{1, 2, 3}, "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n"}};
}
template <>
std::vector<proto::WriteResult> examples() {
  return {{1, 2, {3}}, {2, 3, {}}};
}
template <>
std::vector<proto::KeepaliveRules> examples() {
  return {{1, {{"*1\r\n$4\r\nPING\r\n", "+PONG\r\n"}, {"PING\r\n", "+PONG\r\n"}}}, {2, {}}};
}
template <>
std::vector<proto::Closed> examples() {
  return {{{{3, proto::CloseReason::deadline}, {4, proto::CloseReason::dropped}}}};
}
template <>
std::vector<proto::Recall> examples() {
  return {{{1, 2}}};
}
template <>
std::vector<proto::Drop> examples() {
  return {{{3}}};
}
template <>
std::vector<proto::Credit> examples() {
  return {{64}};
}
template <>
std::vector<proto::StatsReply> examples() {
  return {{"parker_parked 3\n"}};
}
template <>
std::vector<proto::ListReply> examples() {
  return {{"web-1 3\n"}};
}

template <class F, std::size_t... I>
void for_each_alternative(F&& f, std::index_sequence<I...>) {
  (f.template operator()<std::variant_alternative_t<I, proto::Message>>(), ...);
}

using Bytes = std::vector<std::byte>;

void append_chunk(Bytes& out, const proto::Message& message, std::uint8_t flags) {
  Bytes frame = proto::encode(message);
  out.push_back(static_cast<std::byte>(parker::fuzz::kFdsAsDeclared));
  out.push_back(static_cast<std::byte>(flags));
  out.push_back(static_cast<std::byte>(frame.size() & 0xff));
  out.push_back(static_cast<std::byte>(frame.size() >> 8));
  out.insert(out.end(), frame.begin(), frame.end());
}

void write_file(const fs::path& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "make_seeds: cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

// Each frame as a well-behaved sender writes it: one sendmsg with its fds (socket ends, so a
// client that parks a woken fd again can), the receiver reading after it.
constexpr std::uint8_t kFrameChunk = parker::fuzz::kDrainAfter | parker::fuzz::kSocketFds;

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds DIR\n");
    return 2;
  }
  const fs::path root = argv[1];
  const fs::path decode_dir = root / "fuzz_protocol_decode";
  const fs::path reader_dir = root / "fuzz_frame_reader";
  const fs::path client_dir = root / "fuzz_client_incoming";
  for (const auto& dir : {decode_dir, reader_dir, client_dir}) fs::create_directories(dir);

  // What the client sees first in a real session: without it every other message is refused.
  const proto::Message welcome = examples<proto::Welcome>().front();
  Bytes all_frames;  // every example in one stream, no reads in between: reads coalesce
  bool every_type_seeded = true;

  for_each_alternative(
      [&]<class T>() {
        std::vector<T> list = examples<T>();
        int written = 0;
        for (std::size_t i = 0; i < list.size(); ++i) {
          const proto::Message message = list[i];
          const Bytes frame = proto::encode(message);
          const std::size_t fds = proto::fd_count(message);
          proto::DecodeResult check = proto::decode(frame, fds);
          const std::string type(proto::to_string(proto::type_of(message)));
          if (check.status != proto::DecodeStatus::ok || check.message != message) {
            std::fprintf(stderr, "make_seeds: example %zu of %s does not decode (%s); give it a valid one\n", i,
                         type.c_str(), std::string(proto::to_string(check.error)).c_str());
            continue;
          }
          char name[64];
          std::snprintf(name, sizeof name, "%02u-%s-%zu", static_cast<unsigned>(proto::type_of(message)),
                        type.c_str(), i + 1);

          Bytes decode_seed{static_cast<std::byte>(fds)};
          decode_seed.insert(decode_seed.end(), frame.begin(), frame.end());
          write_file(decode_dir / name, decode_seed);

          Bytes reader_seed;
          append_chunk(reader_seed, message, kFrameChunk);
          write_file(reader_dir / name, reader_seed);
          append_chunk(all_frames, message, parker::fuzz::kSocketFds);

          Bytes client_seed{std::byte{0}};  // mode 0: callbacks only drop what they get
          if (!std::holds_alternative<proto::Welcome>(message)) append_chunk(client_seed, welcome, kFrameChunk);
          append_chunk(client_seed, message, kFrameChunk);
          write_file(client_dir / name, client_seed);
          ++written;
        }
        if (written == 0) every_type_seeded = false;
      },
      std::make_index_sequence<std::variant_size_v<proto::Message>>{});

  write_file(reader_dir / "all-frames", all_frames);

  // A whole session as parker runs it, with a program that answers (re-parks woken fds,
  // drops closed ids), then hangs up.
  Bytes session{std::byte{0x01 | 0x02}};
  append_chunk(session, welcome, kFrameChunk);
  for (const proto::Message& m :
       {proto::Message{examples<proto::Credit>().front()}, proto::Message{examples<proto::Wake>().front()},
        proto::Message{examples<proto::Rejected>().front()}, proto::Message{examples<proto::Closed>().front()},
        proto::Message{examples<proto::ErrorMessage>().front()},
        proto::Message{examples<proto::StatsReply>().front()}}) {
    append_chunk(session, m, kFrameChunk);
  }
  write_file(client_dir / "session", session);

  // fuzz_heavy_resp_session, parser side (control byte 0x00: whole input; 0x0e: pieces of 8):
  // the requests real clients send. Its blob seeds, which need heavy_server's encoder, are
  // kept in tests/fuzz/corpus/fuzz_heavy_resp_session/.
  const fs::path heavy_dir = root / "fuzz_heavy_resp_session";
  fs::create_directories(heavy_dir);
  const std::pair<const char*, std::string_view> requests[] = {
      {"multibulk", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n*1\r\n$4\r\nPING\r\n"},
      {"inline", "PING\r\nSET k \"a b\\x41\" 'c\\'d'\r\n\r\n"},
      {"partial", "*2\r\n$3\r\nGET\r\n$3\r\nke"},
      {"pipeline", "*2\r\n$10\r\nPSUBSCRIBE\r\n$3\r\nne*\r\n*1\r\n$5\r\nRESET\r\n*0\r\n*-1\r\n"},
  };
  for (const auto& [name, text] : requests) {
    for (const std::uint8_t control : {std::uint8_t{0x00}, std::uint8_t{0x0e}}) {
      Bytes seed{static_cast<std::byte>(control)};
      for (char c : text) seed.push_back(static_cast<std::byte>(c));
      write_file(heavy_dir / (std::string("resp-") + name + (control == 0 ? "" : "-pieces")), seed);
    }
  }

  return every_type_seeded ? 0 : 1;
}
