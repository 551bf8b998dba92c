// fuzz_protocol_decode: the pure decoder, protocol::decode(bytes, fds_available), on any input.
//
// Input: u8 fds_available, then the bytes (the first frame of which is decoded).
// Properties, each a trap when violated (besides never crashing, which ASan/UBSan watch):
//   * the result is self-consistent: an `ok` frame lies within the bytes, takes exactly the
//     fds its message carries and no more than are available, and has the header's type;
//   * round trip: an `ok` message re-encodes to the very bytes it was decoded from (there is
//     one encoding per message, so a decoder that accepts any other is lax), and those decode
//     to the same message, `consumed` and `fds`;
//   * a frame cut short is `need_more`, never an error or a message: a receiver must be able
//     to wait for the rest of any valid frame;
//   * a frame given one fd fewer than it takes is `fd_mismatch` (its fds ride on its first
//     byte, so by its last byte they must all be here).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "parker/protocol.hpp"

namespace proto = parker::protocol;

namespace {

void check(bool condition) {
  if (!condition) __builtin_trap();
}

std::uint16_t header_type(std::span<const std::byte> frame) {
  return static_cast<std::uint16_t>(static_cast<unsigned>(frame[4]) | static_cast<unsigned>(frame[5]) << 8);
}

void check_ok(std::span<const std::byte> bytes, std::size_t fds_available, const proto::DecodeResult& r) {
  check(r.error == proto::DecodeError::none);
  check(r.consumed >= proto::kHeaderSize && r.consumed <= bytes.size());
  check(r.fds <= fds_available && r.fds == proto::fd_count(r.message));
  check(static_cast<std::uint16_t>(proto::type_of(r.message)) == header_type(bytes));
  (void)proto::to_string(proto::type_of(r.message));

  std::span<const std::byte> frame = bytes.first(r.consumed);
  std::vector<std::byte> again = proto::encode(r.message);
  check(again.size() == frame.size() && std::equal(again.begin(), again.end(), frame.begin()));

  proto::DecodeResult back = proto::decode(again, r.fds);
  check(back.status == proto::DecodeStatus::ok);
  check(back.message == r.message && back.consumed == r.consumed && back.fds == r.fds);

  // Cut short at the places a decoder is most likely to get wrong: inside the header, right
  // after it, and one byte before the end.
  for (std::size_t cut : {proto::kHeaderSize - 1, proto::kHeaderSize, r.consumed - 1}) {
    if (cut >= r.consumed) continue;
    proto::DecodeResult part = proto::decode(frame.first(cut), fds_available);
    check(part.status == proto::DecodeStatus::need_more && part.consumed == 0);
  }

  if (r.fds > 0) {
    proto::DecodeResult short_of_fds = proto::decode(frame, r.fds - 1);
    check(short_of_fds.status == proto::DecodeStatus::error &&
          short_of_fds.error == proto::DecodeError::fd_mismatch);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::size_t fds_available = data[0];
  std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data + 1), size - 1);

  proto::DecodeResult r = proto::decode(bytes, fds_available);
  switch (r.status) {
    case proto::DecodeStatus::ok:
      check_ok(bytes, fds_available, r);
      break;
    case proto::DecodeStatus::need_more:
      check(r.error == proto::DecodeError::none && r.consumed == 0);
      break;
    case proto::DecodeStatus::error:
      check(r.error != proto::DecodeError::none);
      (void)proto::to_string(r.error);
      break;
  }
  return 0;
}
