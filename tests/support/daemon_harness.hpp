// Test support for the parker daemon (header-only): a parker process on a temporary socket,
// a RawOwner that speaks protocol v1 directly (codec + send_with_fds + FrameReader), and
// real TCP loopback connections to park.
//
// The RawOwner is deliberately not the client library: it lets tests send exactly the
// frames they want (garbage included) and see exactly what parker answers.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "parker/fd_passing.hpp"
#include "parker/frame_reader.hpp"
#include "parker/protocol.hpp"
#include "parker/unique_fd.hpp"
#include "parker/unix_socket.hpp"
#include "support/fd_count.hpp"
#include "support/process.hpp"

namespace parker::test {

namespace proto = parker::protocol;

// ---- a parker process ------------------------------------------------------------------------

class ParkerProcess {
 public:
  // Starts build/bin/parker on a socket in a fresh temporary directory, with `args` added,
  // and waits until it listens.
  // `prefix` runs parker through another program (e.g. {"/usr/bin/prlimit", "--nofile=200:200"}).
  explicit ParkerProcess(std::vector<std::string> args = {}, std::vector<std::string> prefix = {})
      : socket_path_(dir_.file("parker.sock")), process_(make_argv(prefix, socket_path_, args)) {
    // With --log-file the start is announced in the file, not on stderr.
    std::string log_file;
    for (std::size_t i = 0; i + 1 < args.size(); ++i) {
      if (args[i] == "--log-file") log_file = args[i + 1];
    }
    bool started = log_file.empty() ? process_.wait_for_output("listening on", 10s) : eventually([&] {
      return run_command("grep -q 'listening on' " + log_file).code == 0;
    });
    if (!started) throw std::runtime_error("parker did not start: " + process_.output());
  }

  [[nodiscard]] const std::string& socket_path() const noexcept { return socket_path_; }
  [[nodiscard]] pid_t pid() const noexcept { return process_.pid(); }
  [[nodiscard]] Process& process() noexcept { return process_; }
  [[nodiscard]] TempDir& dir() noexcept { return dir_; }
  [[nodiscard]] std::size_t fd_count() const { return open_fd_count(process_.pid()); }

  // Waits until parker's open fd count equals `expected`; returns the last count seen.
  std::size_t settle_fd_count(std::size_t expected, std::chrono::milliseconds timeout = 10s) {
    std::size_t seen = 0;
    eventually([&] { return (seen = fd_count()) == expected; }, timeout);
    return seen;
  }

  // SIGTERM and wait; returns the exit code (-signal if killed, -100 on timeout).
  int terminate(std::chrono::milliseconds timeout = 10s) {
    process_.signal(SIGTERM);
    auto status = process_.wait(timeout);
    if (!status) return -100;
    return exit_code(*status);
  }

 private:
  static std::vector<std::string> make_argv(std::vector<std::string> argv, const std::string& path,
                                            const std::vector<std::string>& args) {
    argv.insert(argv.end(), {program_path("parker"), "--socket", path});
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  TempDir dir_;
  std::string socket_path_;
  Process process_;
};

// ---- a raw protocol peer ---------------------------------------------------------------------

struct ReceivedWake {
  proto::WakeRecord record;
  UniqueFd fd;
  std::uint64_t parked_before = 0;  // 1.1: the last PARKED count when this wake arrived
};
struct ReceivedReject {
  proto::RejectRecord record;
  UniqueFd fd;
};

// Everything parker has sent to a RawOwner so far, sorted by kind.
struct Inbox {
  std::optional<proto::Welcome> welcome;
  std::uint64_t credit = 0;  // what the owner may still park
  std::vector<ReceivedWake> wakes;
  std::vector<proto::CloseRecord> closed;
  std::vector<ReceivedReject> rejected;
  std::vector<proto::ErrorMessage> errors;
  std::vector<std::string> stats;
  std::vector<std::string> lists;
  // 1.1
  std::uint64_t parked = 0;      // the last PARKED count
  std::vector<proto::InventoryRecord> inventory;
  bool inventory_done = false;   // the INVENTORY_REPLY with `last` arrived
  bool goodbye = false;
  // Hand-over (a RawOwner playing a successor parker): records and fds received, and the end.
  std::vector<proto::HandoverRecord> handover;
  std::vector<UniqueFd> handover_fds;
  std::optional<proto::HandoverEnd> handover_end;
  std::optional<proto::HandoverCounters> handover_counters;  // 1.2: COUNTERS, before the end
  std::vector<std::uint32_t> reclaims;
  std::vector<proto::WriteResult> write_results;  // 1.1 write-through answers, in order
  bool eof = false;              // parker closed the connection
  bool send_failed = false;      // a send found the connection closed
  proto::DecodeError decode_error = proto::DecodeError::none;
};

class RawOwner {
 public:
  explicit RawOwner(const std::string& socket_path) {
    auto c = connect_unix(socket_path);
    if (!c.ok()) throw std::runtime_error("connect to parker: " + describe(c.error));
    fd_ = std::move(c.value);
  }
  // Over a socket already connected to parker (an in-process daemon's socketpair).
  explicit RawOwner(UniqueFd connected) : fd_(std::move(connected)) {}
  RawOwner(const RawOwner&) = delete;
  RawOwner& operator=(const RawOwner&) = delete;

  [[nodiscard]] int fd() const noexcept { return fd_.get(); }
  [[nodiscard]] Inbox& inbox() noexcept { return inbox_; }
  [[nodiscard]] const proto::FrameReader& reader() const noexcept { return reader_; }

  // Sends HELLO and waits for WELCOME (or an ERROR, then returns nullopt).
  // A raw owner speaks protocol 1.0 unless asked for another minor: the tests written
  // against it prove that 1.0 peers keep their semantics.
  std::optional<proto::Welcome> hello(const std::string& pool, std::uint16_t major = proto::kVersionMajor,
                                      std::uint16_t minor = 0) {
    send(proto::Hello{major, minor, pool});
    wait_for([&] { return inbox_.welcome.has_value() || !inbox_.errors.empty() || inbox_.eof; });
    return inbox_.welcome;
  }

  void send(const proto::Message& message, std::span<const int> fds = {}) {
    send_bytes(proto::encode(message), fds);
  }
  // A connection parker already closed is not an error here (EPIPE/ECONNRESET): what
  // parker said before closing is still there to read.
  // On a non-blocking socket that is full (parker paused reading us), what parker sends is
  // read meanwhile, for up to 10 s: it may be waiting for us to take its REJECTED frames.
  void send_bytes(std::span<const std::byte> bytes, std::span<const int> fds = {}) {
    std::size_t done = 0;
    const auto until = std::chrono::steady_clock::now() + 10s;
    for (;;) {
      std::size_t n = 0;
      Error e = send_all_with_fds(fd_.get(), bytes.subspan(done), done == 0 ? fds : std::span<const int>{}, &n);
      done += n;
      if (e.is(EAGAIN) && std::chrono::steady_clock::now() < until) {
        pollfd p{fd_.get(), POLLOUT, 0};
        (void)::poll(&p, 1, 10);
        poll_once(std::chrono::milliseconds(0));
        continue;
      }
      if (e.is(EPIPE) || e.is(ECONNRESET)) {
        inbox_.send_failed = true;
      } else if (e.failed()) {
        throw std::runtime_error("send to parker: " + describe(e));
      }
      return;
    }
  }

  // Parks records[i] with fds[i], in frames of up to 253, each when credit allows.
  void park(const std::vector<proto::ParkRecord>& records, const std::vector<int>& fds,
            std::chrono::milliseconds timeout = 10s) {
    if (records.size() != fds.size()) throw std::logic_error("park: records and fds differ in number");
    for (std::size_t at = 0; at < records.size();) {
      std::size_t n = std::min(records.size() - at, proto::kMaxRecordsPerFrame);
      if (!wait_for([&] { return inbox_.credit > 0 || inbox_.eof; }, timeout) || inbox_.eof) {
        throw std::runtime_error("park: no credit from parker");
      }
      n = std::min<std::size_t>(n, inbox_.credit);
      proto::Park frame;
      frame.records.assign(records.begin() + static_cast<std::ptrdiff_t>(at),
                           records.begin() + static_cast<std::ptrdiff_t>(at + n));
      send(frame, std::span(fds).subspan(at, n));
      inbox_.credit -= n;
      at += n;
    }
  }
  void park_one(int fd, std::uint64_t id, std::string blob = {}, std::uint32_t deadline_ms = 0,
                std::uint8_t flags = 0) {
    park({proto::ParkRecord{id, deadline_ms, flags, std::move(blob)}}, {fd});
  }

  // Reads whatever parker sent within `timeout` (at least one read attempt); false on timeout.
  bool poll_once(std::chrono::milliseconds timeout) {
    if (inbox_.eof) return false;
    pollfd p{fd_.get(), POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (r <= 0) return false;
    Error e = reader_.read_from(fd_.get());
    if (e.failed() && !e.is(EAGAIN)) {
      inbox_.eof = true;
    }
    while (auto frame = reader_.next()) take(*frame);
    if (reader_.error() != proto::DecodeError::none) {
      inbox_.decode_error = reader_.error();
      inbox_.eof = true;
    }
    return true;
  }

  // Reads until `condition` holds or `timeout` passes.
  template <class Condition>
  bool wait_for(Condition condition, std::chrono::milliseconds timeout = 10s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!condition()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || inbox_.eof) return condition();
      poll_once(std::min(left, std::chrono::milliseconds(100)));
    }
    return true;
  }
  bool wait_for_wakes(std::size_t n, std::chrono::milliseconds timeout = 10s) {
    return wait_for([&] { return inbox_.wakes.size() >= n; }, timeout);
  }
  bool wait_for_closed(std::size_t n, std::chrono::milliseconds timeout = 10s) {
    return wait_for([&] { return inbox_.closed.size() >= n; }, timeout);
  }
  bool wait_for_rejected(std::size_t n, std::chrono::milliseconds timeout = 10s) {
    return wait_for([&] { return inbox_.rejected.size() >= n; }, timeout);
  }
  bool wait_for_eof(std::chrono::milliseconds timeout = 10s) {
    return wait_for([&] { return inbox_.eof; }, timeout);
  }

  std::string stats(std::chrono::milliseconds timeout = 10s) {
    std::size_t before = inbox_.stats.size();
    send(proto::StatsRequest{});
    if (!wait_for([&] { return inbox_.stats.size() > before; }, timeout)) throw std::runtime_error("no STATS_REPLY");
    return inbox_.stats.back();
  }
  std::string list(std::chrono::milliseconds timeout = 10s) {
    std::size_t before = inbox_.lists.size();
    send(proto::ListRequest{});
    if (!wait_for([&] { return inbox_.lists.size() > before; }, timeout)) throw std::runtime_error("no LIST_REPLY");
    return inbox_.lists.back();
  }

  // The wake for `id`, if one arrived.
  ReceivedWake* wake_for(std::uint64_t id) {
    for (auto& w : inbox_.wakes) {
      if (w.record.id == id) return &w;
    }
    return nullptr;
  }

 private:
  void take(proto::Frame& frame) {
    auto& m = frame.message;
    if (auto* w = std::get_if<proto::Welcome>(&m)) {
      inbox_.welcome = *w;
      inbox_.credit += w->credit;
    } else if (auto* c = std::get_if<proto::Credit>(&m)) {
      inbox_.credit += c->grant;
    } else if (auto* wake = std::get_if<proto::Wake>(&m)) {
      for (std::size_t i = 0; i < wake->records.size(); ++i) {
        inbox_.wakes.push_back({std::move(wake->records[i]), std::move(frame.fds[i]), inbox_.parked});
      }
    } else if (auto* rej = std::get_if<proto::Rejected>(&m)) {
      for (std::size_t i = 0; i < rej->records.size(); ++i) {
        inbox_.rejected.push_back({rej->records[i], std::move(frame.fds[i])});
        // A record refused for want of credit did not use any; every other did.
      }
    } else if (auto* closed = std::get_if<proto::Closed>(&m)) {
      inbox_.closed.insert(inbox_.closed.end(), closed->records.begin(), closed->records.end());
    } else if (auto* e = std::get_if<proto::ErrorMessage>(&m)) {
      inbox_.errors.push_back(*e);
    } else if (auto* s = std::get_if<proto::StatsReply>(&m)) {
      inbox_.stats.push_back(s->text);
    } else if (auto* l = std::get_if<proto::ListReply>(&m)) {
      inbox_.lists.push_back(l->text);
    } else if (auto* p = std::get_if<proto::Parked>(&m)) {
      inbox_.parked = p->parks;
    } else if (auto* inv = std::get_if<proto::InventoryReply>(&m)) {
      inbox_.inventory.insert(inbox_.inventory.end(), inv->records.begin(), inv->records.end());
      inbox_.inventory_done = inv->last;
    } else if (std::holds_alternative<proto::Goodbye>(m)) {
      inbox_.goodbye = true;
    } else if (auto* r = std::get_if<proto::Reclaim>(&m)) {
      inbox_.reclaims.push_back(r->wanted);
    } else if (auto* h = std::get_if<proto::Handover>(&m)) {
      for (std::size_t i = 0; i < h->records.size(); ++i) {
        inbox_.handover.push_back(std::move(h->records[i]));
        inbox_.handover_fds.push_back(std::move(frame.fds[i]));
      }
    } else if (auto* counters = std::get_if<proto::HandoverCounters>(&m)) {
      inbox_.handover_counters = std::move(*counters);
    } else if (auto* end = std::get_if<proto::HandoverEnd>(&m)) {
      inbox_.handover_end = std::move(*end);
    } else if (auto* wr = std::get_if<proto::WriteResult>(&m)) {
      inbox_.write_results.push_back(std::move(*wr));
    }
  }

  UniqueFd fd_;
  proto::FrameReader reader_;
  Inbox inbox_;
};

// The value of one series in Prometheus text ("name" or "name{label=\"v\"}"), or -1.
inline long long metric(const std::string& text, const std::string& series) {
  std::size_t at = 0;
  while ((at = text.find(series + " ", at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') return std::stoll(text.substr(at + series.size() + 1));
    at += series.size();
  }
  return -1;
}

// Asks a running parker for one metric through an observer session.
inline long long parker_metric(const std::string& socket_path, const std::string& series) {
  RawOwner observer(socket_path);
  if (!observer.hello("")) return -1;
  return metric(observer.stats(), series);
}

// The whole STATS text of a running parker (for diagnostics).
inline std::string parker_stats_text(const std::string& socket_path) {
  RawOwner observer(socket_path);
  if (!observer.hello("")) return "(no WELCOME)";
  return observer.stats();
}

// ---- TCP loopback connections -----------------------------------------------------------------

struct TcpPair {
  UniqueFd client;  // the remote end: what a real client would hold
  UniqueFd server;  // the accepted end: what an owner parks
};

class TcpListener {
 public:
  TcpListener() {
    fd_ = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd_) throw std::runtime_error("socket");
    int on = 1;
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;  // an ephemeral port: tests run in parallel
    if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) throw std::runtime_error("bind");
    if (::listen(fd_.get(), 4096) != 0) throw std::runtime_error("listen");
    socklen_t len = sizeof addr;
    ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  [[nodiscard]] int fd() const noexcept { return fd_.get(); }
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }

  [[nodiscard]] UniqueFd connect() const {
    UniqueFd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port_);
    if (!c || ::connect(c.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      throw std::runtime_error("connect to the test listener");
    }
    return c;
  }
  [[nodiscard]] UniqueFd accept() const {
    UniqueFd s(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!s) throw std::runtime_error("accept on the test listener");
    return s;
  }
  [[nodiscard]] TcpPair pair() const {
    TcpPair p;
    p.client = connect();
    p.server = accept();
    return p;
  }

 private:
  UniqueFd fd_;
  std::uint16_t port_ = 0;
};

// Writes all of `text` on a (blocking) socket.
inline void write_text(int fd, const std::string& text) {
  if (::send(fd, text.data(), text.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(text.size())) {
    throw std::runtime_error("write_text");
  }
}

// Reads what is available within `timeout` (up to `max` bytes); "" on timeout or EOF.
inline std::string read_text(int fd, std::chrono::milliseconds timeout = 5s, std::size_t max = 4096) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return {};
  std::string out(max, '\0');
  ssize_t n = ::recv(fd, out.data(), max, MSG_DONTWAIT);
  out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  return out;
}

// Reads exactly `n` bytes within `timeout` (fewer on timeout or EOF).
inline std::string read_exactly(int fd, std::size_t n, std::chrono::milliseconds timeout = 5s) {
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out.size() < n) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[65536];
    ssize_t got = ::recv(fd, buf, std::min(sizeof buf, n - out.size()), MSG_DONTWAIT);
    if (got <= 0) break;
    out.append(buf, static_cast<std::size_t>(got));
  }
  return out;
}

// Everything readable now, until the socket has been quiet for `quiet`.
inline std::string drain(int fd, std::chrono::milliseconds quiet = 200ms) {
  std::string out;
  for (;;) {
    std::string more = read_text(fd, quiet, 1 << 20);
    if (more.empty()) return out;
    out += more;
  }
}

// True when the peer of `fd` has closed it (EOF after any data).
inline bool peer_closed(int fd, std::chrono::milliseconds timeout = 5s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0) return true;
    if (n < 0 && errno != EAGAIN) return true;  // reset counts as closed
  }
}

// The inode of an fd: the same open socket seen through two fds has the same one.
}  // namespace parker::test
