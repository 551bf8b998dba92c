#include "take_over.hpp"

#include <spdlog/spdlog.h>

#include "blocking_conversation.hpp"
#include "parker/unix_socket.hpp"

namespace parker::daemon {
namespace proto = protocol;

TakenOver take_over(const std::string& socket_path, std::uint32_t room, std::chrono::milliseconds frame_timeout) {
  TakenOver out;
  auto connected = connect_unix(socket_path, 0, /*nonblocking=*/true);
  if (!connected.ok()) {
    out.error = fmt::format("cannot reach the running parker at {}: {}", socket_path, describe(connected.error));
    return out;
  }
  UniqueFd socket = std::move(connected.value);
  BlockingConversation talk(socket.get(), frame_timeout, "the running parker");
  // 1.2 gets the counters too; a 1.1 parker answers 1.1 and hands over without them.
  if (Error e = talk.send(proto::Hello{proto::kVersionMajor, proto::kMinorHandoverState, ""}); e.failed()) {
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
    } else if (auto* rules = std::get_if<proto::HandoverRules>(&m)) {
      out.rules.push_back(std::move(*rules));
    } else if (auto* counters = std::get_if<proto::HandoverCounters>(&m)) {
      out.counters = std::move(counters->values);
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
