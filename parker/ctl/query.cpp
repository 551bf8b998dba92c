#include "query.hpp"

#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <variant>

#include <fmt/format.h>

#include "parker/fd_passing.hpp"
#include "parker/frame_reader.hpp"
#include "parker/protocol.hpp"
#include "parker/unix_socket.hpp"

namespace parker::ctl {
namespace {

Answer failed(std::string text) { return {Answer::Status::failed, std::move(text)}; }

// The connect error, said the way an operator needs to hear it.
Answer unreachable(const std::string& path, Error e) {
  std::string why;
  switch (e.code) {
    case ENOENT: why = "no socket there: is parker running? (start it, or pass --socket)"; break;
    case ECONNREFUSED: why = "nobody is listening there: parker is not running (a stale socket file)"; break;
    case EACCES:
    case EPERM: why = "permission denied: run as the user parker runs as (or root), or see --socket-mode"; break;
    case ENOTDIR: why = "a component of the path is not a directory"; break;
    case ENAMETOOLONG: why = "the path is too long for a Unix socket"; break;
    case EAGAIN: why = "parker is not accepting connections (its listen queue is full)"; break;
    default: why = describe(e); break;
  }
  return {Answer::Status::unreachable, fmt::format("cannot connect to parker at {}: {}", path, why)};
}

void set_timeouts(int fd, std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// Reads frames until one of type T arrives. An ERROR from parker, the end of the connection
// or a malformed frame is a failure, described in `problem`.
template <class T>
std::optional<T> wait_for(int fd, protocol::FrameReader& reader, std::string& problem) {
  for (;;) {
    while (auto frame = reader.next()) {
      if (auto* wanted = std::get_if<T>(&frame->message)) return std::move(*wanted);
      if (auto* error = std::get_if<protocol::ErrorMessage>(&frame->message)) {
        problem = fmt::format("parker refused: {} ({})", error->text, protocol::to_string(error->code));
        return std::nullopt;
      }
      // Anything else (a CREDIT, say) is not for an observer's question: skip it.
    }
    if (reader.error() != protocol::DecodeError::none) {
      problem = fmt::format("parker sent a malformed frame: {}", protocol::to_string(reader.error()));
      return std::nullopt;
    }
    Error e = reader.read_from(fd);
    if (e.is(EAGAIN)) {
      problem = "timed out waiting for parker to answer";
      return std::nullopt;
    }
    if (e.is(ECONNRESET)) {
      problem = "parker closed the connection before answering";
      return std::nullopt;
    }
    if (e.failed()) {
      problem = "reading from parker: " + describe(e);
      return std::nullopt;
    }
  }
}

Error send_message(int fd, const protocol::Message& message) {
  auto bytes = protocol::encode(message);
  return send_all_with_fds(fd, bytes, {});
}

}  // namespace

Answer ask_parker(const std::string& socket_path, Question question, std::chrono::milliseconds timeout) {
  auto connected = connect_unix(socket_path);
  if (!connected.ok()) return unreachable(socket_path, connected.error);
  int fd = connected.value.get();
  set_timeouts(fd, timeout);

  if (Error e = send_message(fd, protocol::Hello{protocol::kVersionMajor, protocol::kVersionMinor, ""}); e.failed()) {
    return failed("sending HELLO to parker: " + describe(e));
  }
  protocol::FrameReader reader;
  std::string problem;
  auto welcome = wait_for<protocol::Welcome>(fd, reader, problem);
  if (!welcome) return failed(problem);

  protocol::Message request = question == Question::stats ? protocol::Message{protocol::StatsRequest{}}
                                                          : protocol::Message{protocol::ListRequest{}};
  if (Error e = send_message(fd, request); e.failed()) return failed("sending the request to parker: " + describe(e));
  if (question == Question::stats) {
    auto reply = wait_for<protocol::StatsReply>(fd, reader, problem);
    if (!reply) return failed(problem);
    return {Answer::Status::ok, std::move(reply->text)};
  }
  auto reply = wait_for<protocol::ListReply>(fd, reader, problem);
  if (!reply) return failed(problem);
  return {Answer::Status::ok, std::move(reply->text)};
}

}  // namespace parker::ctl
