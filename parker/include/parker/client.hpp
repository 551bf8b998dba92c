// parker::Client — the library a server links to park idle connections with parker.
//
// What it does: keeps one session with the parker daemon (connect, HELLO, WELCOME), sends it
// parked connections (fd + your 64-bit id + an opaque state blob), and hands them back to you
// when parker wakes them (the client spoke, hung up, hit its deadline, or you recalled it).
// When parker goes away it reconnects with exponential back-off and says HELLO again; the
// connections parked under your pool name survive that (parker holds their wakes).
//
// This class is the loop-agnostic core: no threads, no libuv, no logging. It exposes its
// socket and "call me when readable / writable / the timer fired"; an event loop drives it.
// For libuv use parker::UvClient (client_uv.hpp), which does all of that for you.
//
// Ownership of fds — nothing is ever lost:
//   * park() takes the fd only when it succeeds; when it fails the fd is still yours.
//   * A park parker refuses comes back through on_rejected, with its fd.
//   * A park still queued when the connection to parker dies (or when you close()) comes
//     back through on_rejected with its fd and blob; it never reached parker.
//   * Every fd the library hands you (woken, rejected) is a UniqueFd: keep it by moving it
//     out of the callback's argument, or it is closed when the callback returns.
// (Protocol 1.0 only: a frame already half-written when the connection dies has delivered
// its fds; parker closes those with the broken frame.)
//
// Exactly once (protocol 1.1, negotiated at HELLO; a 1.0 parker gets 1.0 behaviour):
//   * A park is confirmed by parker (on_parked). Until then the library keeps its own copy
//     of the fd and the blob; if the session ends first because parker ended it or died,
//     the park comes back through on_rejected (reason empty) — nothing is lost with parker.
//     unconfirmed_parks() counts what is still waiting. (The library's copy of a confirmed
//     park closes at the next flush(), after the frames that flush sends.)
//   * A wake is acknowledged to parker after on_wake returns (batched, at the next flush);
//     until then parker keeps its own copy, so an owner that dies holding wakes loses none:
//     parker hands them to another session of the pool, or holds them for the next one.
//     With ClientOptions::auto_acknowledge = false the program calls acknowledge(seq) once it
//     has really adopted a woken connection (e.g. on another thread).
//   * leave() ends the session cleanly: parks in flight are confirmed or come back, wakes
//     that arrive after it are not adopted (they stay parker's and go to another session of
//     the pool), then on_left. close() is abrupt: parks already sent are left to parker.
//
// Flow control: parker grants credit (WELCOME, then CREDIT messages) so it is never sent more
// fds than it has room for. Each park() consumes one; park() with no credit left fails at
// once with ENOBUFS and leaves you the fd. credit() tells what is left; on_credit says when
// more arrives.
//
// Batching: park(), recall() and drop() only queue. flush() sends what was queued — up to 253
// parks per PARK frame — so call it once per loop iteration, after your callbacks have run
// (UvClient does it in a uv_prepare_t).
//
// Callbacks run from inside connect(), close(), on_readable(), on_writable(), flush(),
// on_timer(), abandon_connection() and on_socket_error() — never from park(), recall() or
// drop(). They may call any method, close() included; they must not throw, and must not
// destroy the Client.
//
// Usage with a hand-written poll() loop (UvClient is the short way for libuv programs):
//
//   parker::ClientCallbacks callbacks;
//   callbacks.on_wake = [&](parker::WokenConnection woken) {
//     resume_session(std::move(woken.fd), woken.id, woken.blob);   // the fd is yours again
//   };
//   callbacks.on_rejected = [&](parker::RejectedPark park) {
//     keep_serving(std::move(park.fd), park.id);                   // never lost
//   };
//   parker::Client client(std::move(callbacks));
//   client.connect(parker::default_socket_path(), "my_server");
//   ...
//   parker::UniqueFd idle = ...;                                   // a quiet client socket
//   parker::ParkOptions options;
//   options.deadline = std::chrono::minutes(10);
//   if (parker::Error e = client.park(idle, 42, serialised_session, options); e.failed()) {
//     // not connected (ENOTCONN), no credit (ENOBUFS), ...: `idle` is still yours
//   }
//   ...
//   for (;;) {                     // each iteration: flush, then wait on client.fd()
//     client.flush();
//     poll for client.fd(): POLLIN, plus POLLOUT if client.wants_write(),
//                           with the timeout client.timer_deadline() asks for;
//     if readable (POLLIN, POLLHUP or POLLERR): client.on_readable();
//     if writable: client.on_writable();
//     if the timer deadline passed: client.on_timer();
//   }
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "parker/error.hpp"
#include "parker/frame_reader.hpp"
#include "parker/protocol.hpp"
#include "parker/send_queue.hpp"
#include "parker/unique_fd.hpp"

namespace parker {

// How parker should treat a parked connection.
struct ParkOptions {
  // Idle deadline counted from when parker receives the park; zero means none. At most
  // 2^32-1 ms (about 49 days).
  std::chrono::milliseconds deadline{0};
  bool wake_on_deadline = false;  // at the deadline hand it back (WAKE deadline); else parker closes it
  bool wake_on_hangup = false;    // a bare hang-up is handed back (WAKE hangup); else closed and reported
  // 1.1: the keep-alive rule set (1..15, declared with declare_keepalive_rules) parker
  // answers this connection's keep-alive requests with while it is parked; 0: none.
  std::uint8_t keepalive_set = 0;
  // You know the fd is a socket (it came from accept(), socket() or a WAKE): park() skips its
  // check (an fstat: on this machine's VMs a syscall is about a third of what a park costs the
  // owner). A 1.4 parker is told it was checked either way; an fd that is not a socket after
  // all only hurts you: parker refuses to watch a regular file (watch_failed) and hands back
  // a pipe at its first event.
  bool socket_known = false;
};

// A connection parker handed back: it is yours again.
struct WokenConnection {
  UniqueFd fd;
  std::uint64_t id = 0;
  std::string blob;                   // exactly as parked
  protocol::WakeReason reason{};      // readable, hangup, deadline, recalled, shutdown
  std::uint64_t seq = 0;              // 1.1: its number on this session, for acknowledge()
  // 1.1: bytes parker accepted for this client (write(), a keep-alive reply) and could not
  // write (reason write_blocked): write them to the client before anything else.
  std::string unsent{};
};

// A park that did not happen: the fd is yours again.
struct RejectedPark {
  UniqueFd fd;
  std::uint64_t id = 0;
  // Set: parker refused it (quota, duplicate id, ...). Empty: it never reached parker (the
  // connection died or you closed the client first). Either way `blob` is the one you parked
  // it with, so a session whose state was freed at park() can be restored.
  std::optional<protocol::RejectReason> reason;
  std::string blob;
  // "parker refused it: quota_owner" / "not sent: the connection to parker was lost"
  [[nodiscard]] std::string describe() const;
};

// 1.1: the writes of a session that ended before parker answered them, numbers first..last
// (write()'s numbers), oldest first, split by what is known of each:
//   * first..unknown_upto: unknown — their frames reached parker's socket whole and parker
//     may or may not have handled them (it died, or ended the session without saying how far
//     it got: a parker before 1.3, or its last frames never arrived). Nobody can say now.
//   * unknown_upto+1..last: not sent — parker never handled them: they never left whole, or
//     (1.3) parker's fatal ERROR said it had handled only those before. Nothing was written
//     to any of their ids: deliver them yourself, or write them again on the next session.
struct UnansweredWrites {
  std::uint64_t first = 0;
  std::uint64_t unknown_upto = 0;  // first - 1: none is unknown
  std::uint64_t last = 0;
};

// What the program hears from the client. Every member may be left empty; fds handed to an
// empty callback are closed.
struct ClientCallbacks {
  // The session is up (after every connect or reconnect): parks are accepted from now on.
  std::function<void(const protocol::Welcome&)> on_connected;
  // The session ended, or an attempt to open one failed; the client retries after
  // `retry_in` (unless close() was called). Typical errors: ENOENT or ECONNREFUSED (parker
  // not running), EACCES (socket permissions), ECONNRESET (parker went away), ETIMEDOUT
  // (no WELCOME in time), EPROTO (garbage from parker), ECONNABORTED (parker sent a fatal
  // ERROR, reported through on_error first).
  std::function<void(Error error, std::chrono::milliseconds retry_in)> on_disconnected;
  std::function<void(WokenConnection)> on_wake;
  // Parker closed a parked connection itself (hang-up, deadline, drop).
  std::function<void(std::uint64_t id, protocol::CloseReason reason)> on_closed;
  std::function<void(RejectedPark)> on_rejected;
  // An ERROR from parker: non-fatal ones (unknown_id: a recall or drop crossed a wake on the
  // wire, usually harmless), or the fatal one that ends a session (bad_version, pool_taken...).
  std::function<void(const protocol::ErrorMessage&)> on_error;
  // Parker granted more credit; `available` is the total now.
  std::function<void(std::uint32_t available)> on_credit;
  // 1.1: parker confirmed a park: the connection is parker's now.
  std::function<void(std::uint64_t id)> on_parked;
  // 1.1: a batch of the inventory asked for with request_inventory(); `last` ends it.
  std::function<void(const protocol::InventoryReply&)> on_inventory;
  // 1.1: parker handled write() number `result.write`: the ids in `result.not_parked` were
  // not parked (woken meanwhile, closed, never parked): nothing was written to them, the
  // program delivers the payload itself. Results come in the order of the writes.
  std::function<void(const protocol::WriteResult&)> on_write_result;
  // 1.1: the session ended with writes unanswered (see UnansweredWrites); called once per
  // session that had any, before on_disconnected (or on_left). Not after close().
  std::function<void(const UnansweredWrites&)> on_writes_unanswered;
  // After leave(): the session is over; ok when parker confirmed everything (GOODBYE),
  // else why it ended first. No reconnect follows.
  std::function<void(Error)> on_left;
};

struct ClientOptions {
  std::chrono::milliseconds reconnect_min{50};    // first retry after a failure
  std::chrono::milliseconds reconnect_max{5000};  // the delay doubles up to this
  std::chrono::milliseconds hello_timeout{5000};  // no WELCOME within this: drop and retry
  bool reconnect = true;                          // false: after a failure stay disconnected
  // 1.1: acknowledge each wake when on_wake returns. Off: call acknowledge() yourself.
  bool auto_acknowledge = true;
  // The highest protocol minor version to offer (0: speak 1.0, e.g. to measure or to match
  // an old peer's behaviour).
  std::uint16_t max_minor = protocol::kOwnerMinor;
};

// What the client asks of the event loop that drives it. UvClient implements it; a program
// with its own loop may implement it too, or ignore it and poll fd() / wants_write() /
// timer_deadline() every iteration instead.
class ClientLoop {
 public:
  virtual ~ClientLoop() = default;
  // Watch `fd` for readability, and for writability when `writable`. Called for each new
  // connection and whenever write interest changes.
  virtual void watch(int fd, bool writable) noexcept = 0;
  // Stop watching `fd`: the client is about to close it (a poller must let go first, as
  // libuv requires, because the next connection may get the same fd number).
  virtual void unwatch(int fd) noexcept = 0;
  // Call on_timer() after `delay` (replacing any earlier request), or never (nullopt).
  virtual void set_timer(std::optional<std::chrono::milliseconds> delay) noexcept = 0;
  // Something was queued: call flush() before the loop next waits for events.
  virtual void flush_needed() noexcept = 0;
};

class Client {
 public:
  enum class State {
    idle,         // connect() not called yet, or close()d
    waiting,      // connected, HELLO sent, waiting for WELCOME
    ready,        // session open: park, recall and drop work
    backing_off,  // disconnected; retries when the timer fires
    leaving,      // leave() called: waiting for parker's GOODBYE
  };

  explicit Client(ClientCallbacks callbacks, ClientLoop* loop = nullptr);
  // Closes the connection; queued parks' fds are closed without callbacks. Call close() first
  // to get them back.
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Starts the session with parker at `path` for `pool` (1-64 bytes of [A-Za-z0-9._-]; empty
  // for an observer that can only ask for stats). Makes the first attempt now; a failure is
  // reported through on_disconnected and retried with back-off. Returns EINVAL for a bad
  // pool name or empty path, ENAMETOOLONG for a path that does not fit a socket address,
  // EISCONN when already started.
  Error connect(std::string_view path, std::string_view pool, const ClientOptions& options = {});

  // Queues `fd` to be parked under `id` (unique within the pool while parked) with `blob`
  // (opaque to parker, returned with the fd). On success `fd` is taken; on failure it is
  // left untouched, and the error says why:
  //   EBADF     `fd` is not open            ENOTSOCK  `fd` is not a socket
  //   ENOTCONN  no session with parker now  ENOBUFS   no credit left (see credit())
  //   EMSGSIZE  blob over parker's max_blob (or over what one frame can carry)
  //   EINVAL    an observer session, or a deadline out of range
  // The socket check (ENOTSOCK) is made here, once (or not at all: ParkOptions::socket_known):
  // on a 1.4 session the park tells parker so (socket_checked) and parker does not check
  // again; an older parker checks itself.
  Error park(UniqueFd& fd, std::uint64_t id, std::string_view blob, const ParkOptions& options = {});

  // Asks for a parked connection back now: it comes through on_wake (reason recalled).
  // ENOTCONN without a session; EINVAL for an observer.
  Error recall(std::uint64_t id);
  // Asks parker to close a parked connection: reported through on_closed (reason dropped).
  Error drop(std::uint64_t id);

  // 1.1: the program has adopted every woken connection up to `seq` (WokenConnection::seq)
  // of this session; parker may let go of its copies. Only needed without auto_acknowledge.
  // ENOTCONN without a session; EINVAL for a seq not received; ENOTSUP on a 1.0 session.
  Error acknowledge(std::uint64_t seq);
  // 1.1: asks for the records (id, blob, deadline left, flags; no fds) of everything parked
  // in the pool: they come through on_inventory in batches. ENOTSUP on a 1.0 session.
  Error request_inventory();
  // 1.1 write-through: asks parker to write `payload` (1 byte..1 MiB) to each of the parked
  // connections `ids`, without waking them, in order after everything queued before (parks
  // included). Returns the write's number (1, 2, ... per session) in `number`; its result
  // comes through on_write_result. A connection that cannot take it all comes back woken
  // (write_blocked) with the rest in WokenConnection::unsent. ENOTSUP on a 1.0 session,
  // EMSGSIZE for a payload out of range, EINVAL for no ids. A write in flight when the
  // session ends is reported through on_writes_unanswered: not sent when parker is known not
  // to have handled it (1.3: parker ended the session and said how far it got; or its frame
  // never left whole), else unknown (parker died with it, or a parker before 1.3).
  Error write(std::vector<std::uint64_t> ids, std::string payload, std::uint64_t* number = nullptr);
  // 1.1: declares (replaces; no rules: removes) keep-alive rule set `set` (1..15) of the
  // pool, for parks that name it (ParkOptions::keepalive_set). Sent at once, so before
  // any park still queued. Declare them again after each reconnect (on_connected).
  // EINVAL for a set or rule out of range (protocol::kMaxKeepalive*), ENOTSUP on 1.0.
  Error declare_keepalive_rules(std::uint8_t set, std::vector<protocol::KeepaliveRule> rules);
  // Ends the session cleanly (see above), then on_left. On a 1.0 session: flushes, closes and
  // calls on_left at once. ENOTCONN without a session.
  Error leave();

  // Sends what park(), recall() and drop() queued, as few frames as possible. Once per loop
  // iteration, after the callbacks of that iteration. On a 1.1 session it also reads what
  // parker answered once every kReadAfterParks parks sent (its callbacks may then run): a
  // loop that parks without reading would otherwise close its copies of confirmed parks
  // thousands of parks late, cold in the CPU's caches (bench/README.md, ack_cost).
  void flush();
  static constexpr std::uint64_t kReadAfterParks = 256;  // about one full PARK frame

  // Stops for good: no reconnects. Parks queued but not sent come back through on_rejected
  // before close() returns; no callback after that. Idempotent. connect() may start again.
  void close();

  // ---- driving it from an event loop ----------------------------------------------------
  [[nodiscard]] int fd() const noexcept { return socket_.get(); }  // -1 while disconnected
  [[nodiscard]] bool wants_write() const noexcept { return wants_write_; }
  void on_readable();
  void on_writable();
  // When it is due (see ClientLoop::set_timer, or timer_deadline()).
  void on_timer();
  // Ends the current connection as if it had failed with `why`, for a loop that cannot watch
  // the socket. Parks not sent come back through on_rejected; the client retries.
  void abandon_connection(Error why);
  // The socket is in error (poll's POLLERR; libuv reports it as UV_EBADF): parker has gone,
  // here with frames of ours it never read. What it sent before it went is read and handled
  // first (its wakes carry fds that only we hold now), then the session ends.
  void on_socket_error(Error why);
  [[nodiscard]] std::optional<std::chrono::steady_clock::time_point> timer_deadline() const noexcept {
    return timer_deadline_;
  }
  // Something is queued that flush() would send.
  [[nodiscard]] bool has_queued() const noexcept;

  // ---- state ------------------------------------------------------------------------------
  [[nodiscard]] State state() const noexcept { return state_; }
  [[nodiscard]] bool connected() const noexcept { return state_ == State::ready; }
  [[nodiscard]] std::uint32_t credit() const noexcept { return credit_; }
  // The protocol minor version of the current session (0 to kOwnerMinor).
  [[nodiscard]] std::uint16_t protocol_minor() const noexcept { return welcome_.minor; }
  [[nodiscard]] bool exactly_once() const noexcept { return welcome_.minor >= protocol::kMinorExactlyOnce; }
  // 1.1: parks sent (or queued) that parker has not confirmed yet.
  [[nodiscard]] std::size_t unconfirmed_parks() const noexcept { return unconfirmed_.size() + queued_parks_.size(); }
  // The WELCOME of the current session (limits, session id); meaningful when connected().
  [[nodiscard]] const protocol::Welcome& welcome() const noexcept { return welcome_; }
  // Delay before the next reconnect attempt (grows with each failure, reset by a WELCOME).
  [[nodiscard]] std::chrono::milliseconds reconnect_delay() const noexcept { return next_delay_; }

 private:
  struct QueuedPark {
    UniqueFd fd;
    protocol::ParkRecord record;
  };
  // 1.1: a park sent and not yet confirmed: our copy of its fd and blob.
  struct UnconfirmedPark {
    std::uint64_t seq = 0;    // its number among this session's park records
    std::uint64_t frame = 0;  // the send queue's number of the PARK frame that carries it
    std::uint64_t id = 0;
    UniqueFd fd;
    std::string blob;
  };
  // Who ended a session decides who keeps parks in flight (docs/PROTOCOL.md, 1.1).
  enum class Ending { by_parker, by_us };

  void attempt_connection();
  void disconnect(Error why, Ending ending = Ending::by_parker);
  [[nodiscard]] std::vector<RejectedPark> drop_connection(Ending ending);
  void end_leaving(Error why);
  void tell_parker_what_we_adopted();
  void fail_attempt(Error why);
  void arm_timer(std::optional<std::chrono::milliseconds> delay);
  void set_write_interest(bool on);
  Error ensure_owner_session() const;
  void send_queued();
  void encode_parks();
  void encode_ids(protocol::MessageType type, std::vector<std::uint64_t>& ids);
  void write_out();
  std::vector<RejectedPark> take_unsent_parks(Ending ending);
  void encode_ack();
  void encode_writes();  // client_write_through.cpp
  void send_now(const protocol::Message& message);
  void return_parks(std::vector<RejectedPark> parks);
  void read_frames(int max_reads);
  void dispatch(protocol::Frame& frame);
  void handle_welcome(const protocol::Welcome& welcome);
  void handle_wake(protocol::Wake& wake, std::vector<UniqueFd>& fds);
  void handle_rejected(const protocol::Rejected& rejected, std::vector<UniqueFd>& fds);
  void handle_closed(const protocol::Closed& closed);
  void handle_error(const protocol::ErrorMessage& error);
  void handle_credit(const protocol::Credit& credit);
  void handle_parked(const protocol::Parked& parked);
  void handle_reclaim(const protocol::Reclaim& reclaim);
  void handle_goodbye();
  void handle_write_result(const protocol::WriteResult& result);
  [[nodiscard]] std::optional<UnansweredWrites> take_unanswered_writes();  // client_write_through.cpp

  ClientCallbacks callbacks_;
  ClientLoop* loop_;
  ClientOptions options_;
  std::string path_;
  std::string pool_;

  State state_ = State::idle;
  UniqueFd socket_;
  protocol::FrameReader reader_;
  SendQueue send_queue_;
  bool wants_write_ = false;
  std::optional<std::chrono::steady_clock::time_point> timer_deadline_;
  std::chrono::milliseconds next_delay_{0};
  // Bumped whenever the connection is replaced or closed, so code that ran callbacks can tell
  // that the connection it was working on is gone.
  std::uint64_t generation_ = 0;

  protocol::Welcome welcome_;
  std::uint32_t credit_ = 0;
  std::vector<QueuedPark> queued_parks_;
  std::vector<std::uint64_t> queued_recalls_;
  std::vector<std::uint64_t> queued_drops_;

  // 1.1 state of the current session.
  std::deque<UnconfirmedPark> unconfirmed_;
  // Our copies of parks parker has confirmed, closed at the next flush() once what is queued
  // has been written: PARKED and the CREDIT that lets us park more arrive in the same read,
  // and closing a batch of copies first (about a microsecond each) would keep parker waiting
  // for the next PARK frame. They are parker's already; we only let go later.
  std::vector<UniqueFd> confirmed_copies_;
  std::uint64_t parks_sent_ = 0;      // park records framed on this session
  std::uint64_t parks_sent_at_read_ = 0;  // parks_sent_ when flush() last read PARKED itself
  std::uint64_t wakes_received_ = 0;  // WAKE records received on this session
  std::uint64_t acknowledged_ = 0;    // what the program has adopted
  std::uint64_t ack_sent_ = 0;        // what the last ACK said
  bool inventory_wanted_ = false;
  // 1.1 write-through: WRITE frames queued, in order, for flush() (after the parks).
  std::vector<protocol::Write> queued_writes_;
  std::uint64_t writes_queued_ = 0;  // WRITE frames queued on this session (their numbers)
  std::uint64_t writes_answered_ = 0;  // the number of the last WRITE_RESULT (they come in order)
  // The send queue's number of the frame of each WRITE framed and not answered yet, in order
  // (the first is write writes_answered_ + 1): which of them left whole.
  std::deque<std::uint64_t> write_frames_;
  // 1.3: the number of the last WRITE parker handled, from the fatal ERROR that ended the session.
  std::optional<std::uint64_t> parker_handled_writes_;
};

[[nodiscard]] std::string_view to_string(Client::State state);

}  // namespace parker
