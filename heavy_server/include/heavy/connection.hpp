// Connection: one client's TCP connection while this process serves it.
//
// Why the socket is watched with a uv_poll_t and not owned by a uv_tcp_t: parking hands the
// socket to another process and takes it back later, possibly into a new process. With
// uv_poll the fd never belongs to libuv — the Connection owns it in a UniqueFd — so detaching
// is "stop the poll, close the watcher, release the fd", and adopting is "init a poll on the
// fd"; nothing of the client's byte stream can be left inside libuv. A uv_tcp_t closes its fd
// in uv_close (handing it off would need dup() and care about libuv's read/write queues).
// The same choice makes the request path lean: recv() straight into our input buffer (no
// alloc callback), send() straight from our reply buffer (no uv_write_t per reply) — what
// redis' own ae loop does.
//
// Lifetime: created on the heap by Server, never copied or moved (libuv points into poll_);
// close() or detach() stop the watcher at once, and the object is deleted in the close
// callback, nowhere else.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "heavy/engine.hpp"
#include "heavy/input_buffer.hpp"
#include "heavy/pubsub.hpp"
#include "heavy/reply_buffer.hpp"
#include "heavy/resp_parser.hpp"
#include "heavy/session.hpp"
#include "heavy/working_set.hpp"
#include "parker/unique_fd.hpp"

namespace heavy {

class Server;

class Connection final : public PubSubSink {
 public:
  // Starts serving `fd` (a connected, non-blocking socket) with `session`, taking the fd.
  // Allocates the working set. Returns nullptr when that or the watcher fails; `fd` is then
  // left with the caller, still open.
  static Connection* start(Server& server, parker::UniqueFd& fd, Session session);

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Stops serving and closes the socket. Idempotent.
  void close() noexcept;
  // Stops serving and gives the socket to the caller, still open; frees the working set and
  // buffers (encode_blob() first: what they hold travels in the blob). The object goes away in
  // its close callback, like after close().
  [[nodiscard]] parker::UniqueFd detach() noexcept;
  // The session blob with the bytes buffered either way (unparsed input, unsent output), or
  // nullopt when it would exceed max_bytes.
  [[nodiscard]] std::optional<std::vector<std::byte>> encode_blob(std::size_t max_bytes);
  // After start(): sends the output and runs the requests a blob brought along.
  void resume() noexcept;

  // Graceful shutdown: finish the request in progress and what is buffered, send every reply,
  // then close. A connection with nothing in progress closes at once.
  void begin_drain() noexcept;

  // Waiting for the client: nothing to send, no request to run (a partial one may be buffered;
  // it travels in the blob, and the rest of it wakes the connection). The parking timer parks
  // only these.
  [[nodiscard]] bool idle() const noexcept;
  // Between two requests and not about to close (QUIT, a protocol error): a graceful restart
  // hands it over now, whatever it has buffered.
  [[nodiscard]] bool can_hand_over() const noexcept { return !closing_ && !close_after_reply_; }
  [[nodiscard]] bool closing() const noexcept { return closing_; }
  // Loop time (uv_now) of the last bytes received, or of the start.
  [[nodiscard]] std::uint64_t last_input_ms() const noexcept { return last_input_ms_; }
  [[nodiscard]] std::uint64_t id() const noexcept { return session_.id; }
  [[nodiscard]] const Session& session() const noexcept { return session_; }
  [[nodiscard]] int fd() const noexcept { return fd_.get(); }

  // PubSubSink: queue ["message", channel, payload]; it is sent when the server flushes.
  void deliver(std::string_view channel, std::string_view message) override;
  // PubSubSink: queue ["pmessage", pattern, channel, payload].
  void deliver_pattern(std::string_view pattern, std::string_view channel, std::string_view message) override;
  // Messages kept for it while it was parked, already as RESP2 pushes.
  void deliver_raw(std::string_view pushes);
  // Called by the server after deliveries: send queued output (or close if over the limit).
  void flush_queued() noexcept;

 private:
  friend class Server;
  Connection(Server& server, parker::UniqueFd fd, Session session);
  ~Connection() = default;

  static void on_poll(uv_poll_t* handle, int status, int events) noexcept;
  static void on_closed(uv_handle_t* handle) noexcept;
  void on_readable() noexcept;
  // Runs requests and sends replies as far as possible without blocking, then sets which
  // events to wait for.
  void service() noexcept;
  void process_input();
  // Sends pending output until done or the socket is full; false on a fatal socket error.
  bool send_output() noexcept;
  void update_events() noexcept;
  void stop_watching() noexcept;
  // After output was queued: whether client-output-buffer-limit says to close it now.
  [[nodiscard]] bool output_over_limit() noexcept;
  void queue_delivery() noexcept;

  uv_poll_t poll_{};
  bool poll_started_ = false;  // poll_ initialised (and therefore must be uv_close'd)
  Server& server_;
  parker::UniqueFd fd_;
  Session session_;
  WorkingSet working_set_;
  InputBuffer input_;
  RespParser parser_;
  ReplyBuffer output_;
  Client client_;
  std::uint64_t last_input_ms_ = 0;
  int events_ = 0;                   // what poll_ waits for now
  bool closing_ = false;
  bool close_after_reply_ = false;   // QUIT, protocol error, or draining with nothing left
  bool draining_ = false;
  bool paused_ = false;              // too much output pending: stop taking requests
  bool over_limit_ = false;          // past an output buffer limit: to be closed
  std::uint64_t soft_limit_since_ms_ = 0;  // when output went past the soft limit (0: it is not)
  bool flush_queued_ = false;        // in the server's list of connections to flush
  // The server's activity list, ordered by last_input_ms_ (see Server::for_each_quiet_since).
  Connection* older_ = nullptr;
  Connection* newer_ = nullptr;
};

}  // namespace heavy
