#include "take_over.hpp"

#include <poll.h>

#include <spdlog/spdlog.h>

#include "parker/fd_passing.hpp"
#include "parker/frame_reader.hpp"
#include "parker/unix_socket.hpp"

namespace parker::daemon {
namespace {

namespace proto = protocol;

// A blocking conversation with the old parker, one frame at a time.
class Conversation {
 public:
  Conversation(UniqueFd socket, std::chrono::milliseconds timeout) : socket_(std::move(socket)), timeout_(timeout) {}

  [[nodiscard]] Error send(const proto::Message& message) {
    std::vector<std::byte> bytes = proto::encode(message);
    return send_all_with_fds(socket_.get(), bytes, {});
  }

  // The next frame, or nothing with `why` set (timeout, end of stream, malformed).
  std::optional<proto::Frame> next(std::string& why) {
    for (;;) {
      if (auto frame = reader_.next()) return frame;
      if (reader_.error() != proto::DecodeError::none) {
        why = fmt::format("malformed frame from the running parker: {}", proto::to_string(reader_.error()));
        return std::nullopt;
      }
      pollfd p{socket_.get(), POLLIN, 0};
      int r = ::poll(&p, 1, static_cast<int>(timeout_.count()));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        why = fmt::format("the running parker sent nothing for {} ms", timeout_.count());
        return std::nullopt;
      }
      Error e = reader_.read_from(socket_.get());
      if (e.is(EAGAIN) || e.is(EINTR)) continue;
      if (e.failed()) {
        why = "the running parker went away: " + describe(e);
        return std::nullopt;
      }
    }
  }

 private:
  UniqueFd socket_;
  std::chrono::milliseconds timeout_;
  proto::FrameReader reader_;
};

}  // namespace

TakenOver take_over(const std::string& socket_path, std::uint32_t room, std::chrono::milliseconds frame_timeout) {
  TakenOver out;
  auto connected = connect_unix(socket_path, 0, /*nonblocking=*/true);
  if (!connected.ok()) {
    out.error = fmt::format("cannot reach the running parker at {}: {}", socket_path, describe(connected.error));
    return out;
  }
  Conversation talk(std::move(connected.value), frame_timeout);
  if (Error e = talk.send(proto::Hello{proto::kVersionMajor, proto::kMinorExactlyOnce, ""}); e.failed()) {
    out.error = "cannot send HELLO: " + describe(e);
    return out;
  }
  std::uint64_t received = 0;
  for (;;) {
    auto frame = talk.next(out.error);
    if (!frame) return out;
    proto::Message& m = frame->message;
    if (auto* w = std::get_if<proto::Welcome>(&m)) {
      if (w->minor < proto::kMinorExactlyOnce) {
        out.error = fmt::format("the running parker speaks protocol 1.{}; a hand-over needs 1.1", w->minor);
        return out;
      }
      if (Error e = talk.send(proto::TakeOver{room}); e.failed()) {
        out.error = "cannot send TAKE_OVER: " + describe(e);
        return out;
      }
    } else if (auto* h = std::get_if<proto::Handover>(&m)) {
      for (std::size_t i = 0; i < h->records.size(); ++i) {
        ++received;
        if (h->records[i].kind == proto::HandoverKind::listener) {
          out.listener = std::move(frame->fds[i]);
        } else {
          out.items.push_back({std::move(h->records[i]), std::move(frame->fds[i])});
        }
      }
    } else if (auto* end = std::get_if<proto::HandoverEnd>(&m)) {
      if (end->records != received || !out.listener) {
        out.error = fmt::format("the hand-over ended with {} records received of {}{}", received, end->records,
                                out.listener ? "" : ", and no listener");
        return out;
      }
      out.closed = std::move(end->closed);
      // From here on, everything is ours: the old parker closes its copies and exits.
      if (Error e = talk.send(proto::Taken{received}); e.failed()) {
        out.error = "cannot send TAKEN: " + describe(e);
        return out;
      }
      return out;
    } else if (auto* error = std::get_if<proto::ErrorMessage>(&m)) {
      out.error = fmt::format("the running parker refused: {} ({})", proto::to_string(error->code), error->text);
      return out;
    }
    // CREDIT and the like, for an observer session: nothing to do.
  }
}

}  // namespace parker::daemon
