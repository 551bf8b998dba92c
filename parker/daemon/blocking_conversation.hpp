// BlockingConversation: frames one at a time with a peer parker talks to before its loop
// runs — the running parker it takes over from (take_over.hpp), its keeper (keeper_link.hpp)
// — every wait bounded by a timeout. The socket stays its owner's.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "parker/error.hpp"
#include "parker/frame_reader.hpp"
#include "parker/protocol.hpp"

namespace parker::daemon {

class BlockingConversation {
 public:
  // `peer` names it in errors ("the running parker", "the keeper").
  BlockingConversation(int socket, std::chrono::milliseconds timeout, std::string peer)
      : socket_(socket), timeout_(timeout), peer_(std::move(peer)) {}

  [[nodiscard]] Error send(const protocol::Message& message);
  // The next frame, or nothing with `why` set (timeout, end of stream, malformed).
  std::optional<protocol::Frame> next(std::string& why);

 private:
  int socket_;
  std::chrono::milliseconds timeout_;
  std::string peer_;
  protocol::FrameReader reader_;
};

}  // namespace parker::daemon
