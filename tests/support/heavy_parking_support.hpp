// Test support for heavy_server with parking: a real parker on a socket in a temp dir, a
// heavy_server parking with it (or one on a given port), RESP clients on raw sockets (a
// persistent connection is what gets parked), parker's metrics through parkerctl, and the RSS
// of a process. Header-only, like heavy_support.hpp.
#pragma once

#include <signal.h>

#include <fstream>
#include <initializer_list>
#include <iterator>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "support/heavy_support.hpp"
#include "support/process.hpp"

namespace heavy::test {

// The real parker daemon listening on DIR/parker.sock; killed when destroyed if still running.
class ParkerProcess {
 public:
  explicit ParkerProcess(const std::string& socket_path, std::vector<std::string> extra = {})
      : socket_path_(socket_path) {
    std::vector<std::string> args{parker::test::program_path("parker"), "--socket", socket_path_};
    args.insert(args.end(), extra.begin(), extra.end());
    process_ = std::make_unique<parker::test::Process>(args);
    if (!process_->wait_for_output("listening on", 10s)) {
      throw std::runtime_error("parker did not start: " + process_->output());
    }
  }
  [[nodiscard]] const std::string& socket_path() const noexcept { return socket_path_; }
  [[nodiscard]] parker::test::Process& process() noexcept { return *process_; }
  [[nodiscard]] pid_t pid() const noexcept { return process_->pid(); }

 private:
  std::string socket_path_;
  std::unique_ptr<parker::test::Process> process_;
};

// heavy_server parking with `parker_socket` after `park_after_ms` of silence.
inline std::unique_ptr<HeavyServerProcess> start_parking_server(const std::string& parker_socket,
                                                                int park_after_ms = 200,
                                                                std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"--parker", parker_socket, "--park-after", std::to_string(park_after_ms)};
  args.insert(args.end(), extra.begin(), extra.end());
  return std::make_unique<HeavyServerProcess>(args);
}

// Where one complete RESP value starting at `at` ends, or npos while it is incomplete.
inline std::size_t resp_value_end(const std::string& s, std::size_t at) {
  if (at >= s.size()) return std::string::npos;
  const std::size_t eol = s.find("\r\n", at);
  if (eol == std::string::npos) return std::string::npos;
  const char type = s[at];
  if (type == '+' || type == '-' || type == ':') return eol + 2;
  const long n = std::stol(s.substr(at + 1, eol - at - 1));
  if (type == '$') {
    if (n < 0) return eol + 2;
    const std::size_t end = eol + 2 + static_cast<std::size_t>(n) + 2;
    return end <= s.size() ? end : std::string::npos;
  }
  if (type == '*') {
    std::size_t pos = eol + 2;
    for (long i = 0; i < n; ++i) {
      pos = resp_value_end(s, pos);
      if (pos == std::string::npos) return pos;
    }
    return pos;
  }
  throw std::runtime_error("not RESP: " + s.substr(at));
}

inline std::string resp_command(const std::vector<std::string>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const std::string& a : args) out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return out;
}

// One persistent client connection speaking RESP.
class RespClient {
 public:
  explicit RespClient(std::uint16_t port) : fd_(connect_tcp(port)) {}
  [[nodiscard]] int fd() const noexcept { return fd_.get(); }
  void close() { fd_.reset(); }

  void send(const std::vector<std::string>& args) { send_all(fd_.get(), resp_command(args)); }
  // The next whole reply (raw RESP), or empty after `timeout` or at end of stream.
  std::string reply(std::chrono::milliseconds timeout = 10s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const std::size_t end = resp_value_end(buffer_, 0);
      if (end != std::string::npos) {
        std::string value = buffer_.substr(0, end);
        buffer_.erase(0, end);
        return value;
      }
      if (std::chrono::steady_clock::now() >= deadline) return {};
      bool eof = false;
      buffer_ += recv_some(fd_.get(), 20ms, &eof);
      if (eof) return {};
    }
  }
  std::string call(const std::vector<std::string>& args, std::chrono::milliseconds timeout = 10s) {
    send(args);
    return reply(timeout);
  }

 private:
  UniqueFd fd_;
  std::string buffer_;
};

inline std::string bulk(const std::string& s) { return "$" + std::to_string(s.size()) + "\r\n" + s + "\r\n"; }

// parker's metrics (parkerctl stats): series name, labels included (parker_wakes_total{reason="readable"})
// -> value. Empty when parkerctl could not ask.
inline std::map<std::string, long long> parker_metrics(const std::string& parker_socket) {
  std::map<std::string, long long> metrics;
  const auto result =
      parker::test::run_command(parker::test::program_path("parkerctl") + " --socket " + parker_socket + " stats", 30s);
  if (result.code != 0) return metrics;
  std::istringstream in(result.output);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.rfind(' ');
    if (space == std::string::npos) continue;
    try {
      metrics[line.substr(0, space)] = std::stoll(line.substr(space + 1));
    } catch (const std::exception&) {
    }
  }
  return metrics;
}

// One of parker_metrics(), or -1 when absent.
inline long long metric(const std::map<std::string, long long>& metrics, const std::string& series) {
  auto it = metrics.find(series);
  return it == metrics.end() ? -1 : it->second;
}

// A numeric INFO field, asked over a fresh redis-cli connection; -1 when absent.
template <class Server>
inline long long info_number(const Server& server, const std::string& field) {
  const std::string v = server.info_field(field);
  return v.empty() ? -1 : std::stoll(v);
}

// Resident set size of `pid`, in bytes (VmRSS), or 0.
inline std::size_t rss_bytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

// The value "k" holds in database `db` of a snapshot from write_db_marker_snapshot.
inline std::string db_marker(int db) { return "v" + std::to_string(db); }

// Writes a keyspace snapshot at `path` with key "k" = db_marker(db) in each of the 16
// databases (through a heavy_server without parking), so that a client's GET k tells which
// db its session is in — in a process that starts from that snapshot.
inline void write_db_marker_snapshot(const std::string& path) {
  HeavyServerProcess seed({"--parker", "", "--snapshot", path});
  RespClient setup(seed.port());
  for (int db = 0; db < 16; ++db) {
    if (setup.call({"SELECT", std::to_string(db)}) != "+OK\r\n" || setup.call({"SET", "k", db_marker(db)}) != "+OK\r\n") {
      throw std::runtime_error("cannot write the db marker snapshot");
    }
  }
  seed.process().signal(SIGTERM);
  const auto status = seed.process().wait(20s);
  if (!status || parker::test::exit_code(*status) != 0) throw std::runtime_error("the snapshot writer did not exit 0");
}

// How many times `needle` occurs in `text`.
// The whole of a file (what a redis-cli wrote there so far), or empty.
inline std::string file_text(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// The client i of a session test: named c<i> (CLIENT SETNAME), in db i % 16.
inline std::string session_name(int i) { return "c" + std::to_string(i); }
inline std::string bulk_reply(const std::string& s) { return "$" + std::to_string(s.size()) + "\r\n" + s + "\r\n"; }

// `n` clients of `server`, each given its session (name and db), then left idle until all
// are parked. Empty if any of that did not happen in time.
inline std::vector<std::unique_ptr<RespClient>> parked_clients_with_sessions(const HeavyServerProcess& server, int n) {
  std::vector<std::unique_ptr<RespClient>> clients;
  for (int i = 0; i < n; ++i) {
    clients.push_back(std::make_unique<RespClient>(server.port()));
    clients.back()->send({"CLIENT", "SETNAME", session_name(i)});
    clients.back()->send({"SELECT", std::to_string(i % 16)});
  }
  for (auto& c : clients) {
    if (c->reply(30s) != "+OK\r\n" || c->reply(30s) != "+OK\r\n") return {};
  }
  if (!parker::test::eventually([&] { return info_number(server, "parked_connections") == n; }, 60s)) return {};
  return clients;
}

// How many of `clients` answer the CLIENT GETNAME each was sent with its own name.
inline int answered_with_their_names(std::vector<std::unique_ptr<RespClient>>& clients) {
  int answered = 0;
  for (std::size_t i = 0; i < clients.size(); ++i) {
    answered += clients[i]->reply(30s) == bulk_reply(session_name(static_cast<int>(i))) ? 1 : 0;
  }
  return answered;
}

// Whether the clients' dbs are theirs still: a key set by client 3 (db 3) is seen by client 19
// (db 3 too) and not by client 4 (db 4).
inline bool dbs_kept(std::vector<std::unique_ptr<RespClient>>& clients) {
  clients[3]->send({"SET", "k", "v"});
  if (clients[3]->reply(30s) != "+OK\r\n") return false;
  clients[19]->send({"GET", "k"});
  clients[4]->send({"GET", "k"});
  return clients[19]->reply(30s) == "$1\r\nv\r\n" && clients[4]->reply(30s) == "$-1\r\n";
}

}  // namespace heavy::test
