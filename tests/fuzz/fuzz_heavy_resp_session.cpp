// fuzz_heavy_resp_session: heavy_server's two decoders of untrusted bytes — the RESP request
// parser (what any TCP client sends) and the session-blob decoder (what comes back from
// parker, possibly written by another version of heavy_server).
//
// Input: u8 control, then the bytes. Bit 0 of control picks the decoder; the other bits give
// the size of the pieces the parser is fed (1..128 bytes), as a socket delivers them.
// Properties, each a trap when violated (besides never crashing, which ASan/UBSan watch):
//   * parser: fed piece by piece (as Connection does: the unparsed bytes again plus the new
//     ones) it yields exactly the requests, and the error, of one parse of the whole input —
//     a request split anywhere is the same request; `consumed` never exceeds the input, and
//     a complete request consumes at least one byte;
//   * parser: a fresh parser on the bytes left over (what a session blob carries across a
//     restart) sees the same thing as the parser that had seen them arrive;
//   * blob: a decoded session re-encodes and decodes to an equal session, and a version-2
//     blob re-encodes to the very bytes it was decoded from (one encoding per session).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "heavy/resp_parser.hpp"
#include "heavy/session_blob.hpp"

namespace {

void check(bool condition) {
  if (!condition) __builtin_trap();
}

// Small limits so the size checks are reached by small inputs.
heavy::RespLimits small_limits() {
  heavy::RespLimits l;
  l.max_inline = 64;
  l.max_bulk = 256;
  l.max_args = 16;
  l.max_request = 1024;
  return l;
}

struct Outcome {
  std::vector<std::vector<std::string>> requests;
  bool error = false;
  std::string rest;  // unparsed bytes at the end (a partial request)
  friend bool operator==(const Outcome&, const Outcome&) = default;
};

// Parses `input` as it arrives in pieces of `piece` bytes (all at once when piece is its size).
Outcome parse_in_pieces(std::string_view input, std::size_t piece) {
  heavy::RespParser parser(small_limits());
  Outcome out;
  std::string buffer;
  std::size_t fed = 0;
  while (fed < input.size() && !out.error) {
    const std::size_t n = std::min(piece, input.size() - fed);
    buffer.append(input.substr(fed, n));
    fed += n;
    // Bounded: each complete request consumes at least one byte.
    const std::size_t rounds = buffer.size();
    for (std::size_t round = 0; round < rounds && !buffer.empty(); ++round) {
      const heavy::ParseResult r = parser.parse(buffer);
      if (r.status == heavy::ParseStatus::need_more) break;
      if (r.status == heavy::ParseStatus::error) {
        check(!parser.error().empty());
        out.error = true;
        break;
      }
      check(r.consumed > 0 && r.consumed <= buffer.size());
      std::vector<std::string> args(parser.args().begin(), parser.args().end());
      out.requests.push_back(std::move(args));
      buffer.erase(0, r.consumed);
    }
  }
  if (!out.error) out.rest = buffer;
  return out;
}

void fuzz_parser(std::string_view input, std::size_t piece) {
  const Outcome whole = parse_in_pieces(input, std::max<std::size_t>(input.size(), 1));
  const Outcome pieces = parse_in_pieces(input, piece);
  check(whole == pieces);
  if (!whole.error && !whole.rest.empty()) {
    // A partial request handed over in a blob: a fresh parser must still be waiting for more.
    heavy::RespParser fresh(small_limits());
    check(fresh.parse(whole.rest).status == heavy::ParseStatus::need_more);
  }
}

void fuzz_blob(std::span<const std::byte> bytes) {
  const heavy::SessionDecodeResult r = heavy::decode_session(bytes);
  if (!r.session) {
    check(!r.error.empty());
    return;
  }
  check(r.error.empty());
  const auto again = heavy::encode_session(*r.session);
  check(again.has_value());
  const heavy::SessionDecodeResult back = heavy::decode_session(*again);
  check(back.session.has_value() && *back.session == *r.session);
  const bool version_2 = bytes.size() > 5 && bytes[4] == std::byte{2} && bytes[5] == std::byte{0};
  if (version_2) check(again->size() == bytes.size() && std::equal(again->begin(), again->end(), bytes.begin()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t control = data[0];
  const auto* body = reinterpret_cast<const char*>(data + 1);
  const std::size_t length = size - 1;
  if ((control & 1) == 0) {
    fuzz_parser(std::string_view(body, length), static_cast<std::size_t>(control >> 1) + 1);
  } else {
    fuzz_blob(std::as_bytes(std::span<const char>(body, length)));
  }
  return 0;
}
