#include "blocking_conversation.hpp"

#include <poll.h>

#include <cerrno>

#include <fmt/format.h>

#include "parker/fd_passing.hpp"

namespace parker::daemon {

Error BlockingConversation::send(const protocol::Message& message) {
  return send_all_with_fds(socket_, protocol::encode(message), {});
}

std::optional<protocol::Frame> BlockingConversation::next(std::string& why) {
  for (;;) {
    if (auto frame = reader_.next()) return frame;
    if (reader_.error() != protocol::DecodeError::none) {
      why = fmt::format("malformed frame from {}: {}", peer_, protocol::to_string(reader_.error()));
      return std::nullopt;
    }
    pollfd p{socket_, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(timeout_.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      why = fmt::format("{} sent nothing for {} ms", peer_, timeout_.count());
      return std::nullopt;
    }
    Error e = reader_.read_from(socket_);
    if (e.is(EAGAIN) || e.is(EINTR)) continue;
    if (e.failed()) {
      why = fmt::format("{} went away: {}", peer_, describe(e));
      return std::nullopt;
    }
  }
}

}  // namespace parker::daemon
