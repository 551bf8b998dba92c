#include "keeper_link.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <utility>
#include <chrono>
#include <thread>

#include <spdlog/spdlog.h>

#include "parker/fd_passing.hpp"
#include "parker/unix_socket.hpp"

extern char** environ;

namespace parker::daemon {

namespace proto = protocol;

namespace {

constexpr std::size_t kKeepFrameBytes = 256 * 1024;
constexpr std::size_t kUpdatesPerFrame = 4096;
constexpr auto kStartTimeout = std::chrono::seconds(5);
constexpr auto kAnswerTimeout = std::chrono::seconds(10);

// The keeper runs in a session of its own: a terminal's ^C or the end of our process group
// does not reach it, so it outlives a parker that dies.
Error spawn_keeper(const std::string& exe, const std::string& path) {
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
  std::vector<std::string> args{exe, "--socket", path};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, exe.c_str(), nullptr, &attr, argv.data(), environ);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return Error(rc);
  spdlog::info("started parker-keeper (pid {}) on {}", pid, path);
  return {};
}

}  // namespace

KeeperLink::KeeperLink(UniqueFd socket)
    : socket_(std::move(socket)), talk_(socket_.get(), kAnswerTimeout, "the keeper") {}

std::unique_ptr<KeeperLink> KeeperLink::open(const std::string& path, const std::string& keeper_exe,
                                             std::uint64_t& held, std::string& why) {
  auto connected = connect_unix(path);
  if (!connected.ok() && (connected.error.is(ENOENT) || connected.error.is(ECONNREFUSED))) {
    if (Error e = spawn_keeper(keeper_exe, path); e.failed()) {
      why = "cannot start " + keeper_exe + ": " + describe(e);
      return nullptr;
    }
    // Bounded: it listens within milliseconds, or it failed (its own log says why).
    const auto until = std::chrono::steady_clock::now() + kStartTimeout;
    do {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      connected = connect_unix(path);
    } while (!connected.ok() && std::chrono::steady_clock::now() < until);
  }
  if (!connected.ok()) {
    why = fmt::format("cannot reach the keeper at {}: {}", path, describe(connected.error));
    return nullptr;
  }
  UniqueFd socket = std::move(connected.value);
  // A big send buffer: batches of parks seldom have to wait for the keeper to read.
  int size = 4 << 20;
  ::setsockopt(socket.get(), SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  std::unique_ptr<KeeperLink> link(new KeeperLink(std::move(socket)));
  // Our level in hello's count: a keeper of level 1 or more answers with its own (`level`)
  // and then state; one before levels ignores the count and answers with state alone.
  if (Error e = link->talk_.send(proto::KeepControl{proto::KeepCommand::hello, proto::kKeeperLevel}); e.failed()) {
    why = "cannot say hello to the keeper: " + describe(e);
    return nullptr;
  }
  auto frame = link->talk_.next(why);
  auto* state = frame ? std::get_if<proto::KeepControl>(&frame->message) : nullptr;
  if (state != nullptr && state->command == proto::KeepCommand::level) {
    link->level_ = std::min(state->count, proto::kKeeperLevel);
    frame = link->talk_.next(why);
    state = frame ? std::get_if<proto::KeepControl>(&frame->message) : nullptr;
  }
  if (state == nullptr || state->command != proto::KeepCommand::state) {
    if (why.empty()) why = "the keeper did not answer hello with its state";
    return nullptr;
  }
  held = state->count;
  if (link->level_ < proto::kKeeperLevelUnsent) {
    spdlog::info("the keeper at {} is of an older version (keeper level {}): the unsent bytes of a connection "
                 "woken write_blocked will not survive a crash of parker",
                 path, link->level_);
  }
  return link;
}

std::string KeeperLink::restore(std::vector<HandoverItem>& out) {
  if (Error e = talk_.send(proto::KeepControl{proto::KeepCommand::restore, 0}); e.failed()) {
    return "cannot ask the keeper for its connections: " + describe(e);
  }
  std::uint64_t received = 0;
  for (;;) {
    std::string why;
    auto frame = talk_.next(why);
    if (!frame) return why;
    if (auto* h = std::get_if<proto::Handover>(&frame->message)) {
      for (std::size_t i = 0; i < h->records.size(); ++i) {
        out.push_back({std::move(h->records[i]), std::move(frame->fds[i])});
        ++received;
      }
    } else if (auto* end = std::get_if<proto::HandoverEnd>(&frame->message)) {
      if (end->records != received) return fmt::format("the keeper sent {} of {} connections", received, end->records);
      return {};
    } else {
      return fmt::format("unexpected {} from the keeper", proto::to_string(proto::type_of(frame->message)));
    }
  }
}

void KeeperLink::start(uv_loop_t* loop, std::function<void()> caught_up, std::function<void()> lost) {
  caught_up_ = std::move(caught_up);
  lost_ = std::move(lost);
  (void)set_nonblocking(socket_.get());
  poll_ = new uv_poll_t{};
  poll_->data = this;
  uv_poll_init(loop, poll_, socket_.get());
  // Readable: the keeper never writes unasked, so that is its end of stream.
  uv_poll_start(poll_, UV_READABLE | UV_DISCONNECT, on_poll);
}

void KeeperLink::close() noexcept {
  if (poll_ != nullptr) {
    poll_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
  }
}

KeeperLink::~KeeperLink() { close(); }

void KeeperLink::on_poll(uv_poll_t* handle, int status, int events) noexcept {
  auto* self = static_cast<KeeperLink*>(handle->data);
  if (self == nullptr) return;
  if (status < 0 || (events & (UV_READABLE | UV_DISCONNECT)) != 0) {
    self->fail(status < 0 ? uv_strerror(status) : "it closed the connection");
    return;
  }
  if ((events & UV_WRITABLE) != 0) (void)self->flush();
}

void KeeperLink::kept(const proto::HandoverRecord& record, int fd) {
  if (!ok_) return;
  pending_.push_back({record, fd});
  // A held wake's unsent bytes travel as HANDOVER kind 4, which a keeper below level 1 may
  // not read: it keeps the wake without them.
  if (level_ < proto::kKeeperLevelUnsent) pending_.back().record.unsent.clear();
}

void KeeperLink::update(proto::KeepOp op, const std::string& pool, std::uint64_t id, std::string_view unsent) {
  if (!ok_) return;
  if (op == proto::KeepOp::woken_unsent && (unsent.empty() || level_ < proto::kKeeperLevelUnsent)) {
    op = proto::KeepOp::woken;  // open() said once that these bytes do not survive a crash
    unsent = {};
  }
  // A connection parked in this very batch: change or drop its record instead (its fd is
  // about to be closed or handed away, so the batch must not keep borrowing it).
  if (!pending_.empty()) {
    auto it = std::find_if(pending_.rbegin(), pending_.rend(),
                           [&](const Pending& p) { return p.record.id == id && p.record.pool == pool; });
    if (it != pending_.rend()) {
      if (op == proto::KeepOp::woken || op == proto::KeepOp::woken_unsent) {
        // As the keeper's store would make it (kept_store.cpp): HANDOVER kind 3, or 4 with bytes.
        const bool blocked = op == proto::KeepOp::woken_unsent;
        it->record.kind = proto::HandoverKind::held;
        it->record.flags = static_cast<std::uint8_t>(blocked ? proto::WakeReason::write_blocked : proto::WakeReason::readable);
        it->record.deadline_left_ms = 0;
        it->record.unsent = std::string(unsent);
      } else if (op == proto::KeepOp::forget || it->record.kind == proto::HandoverKind::held) {
        pending_.erase(std::next(it).base());
      }
      // forget_woken of an older copy, the new one parked: the new record replaces it anyway.
      return;
    }
  }
  updates_.push_back({op, pool, id, std::string(unsent)});
}

void KeeperLink::encode_pending() {
  // Frames of up to 4096 records and, with unsent bytes aboard, about 256 KiB (one record
  // may make one larger: up to a WRITE's 1 MiB, far below a frame's 16 MiB).
  for (std::size_t at = 0; at < updates_.size();) {
    proto::KeepUpdate u;
    std::size_t bytes = 0;
    while (at < updates_.size() && u.records.size() < kUpdatesPerFrame) {
      std::size_t size = proto::encoded_size(updates_[at]);
      if (!u.records.empty() && bytes + size > kKeepFrameBytes) break;
      bytes += size;
      u.records.push_back(std::move(updates_[at]));
      ++at;
    }
    queued_.push_back({proto::encode(u), {}, 0});
  }
  updates_.clear();
  // KEEP frames are written at once below, borrowing the fds; only what the socket does not
  // take gets duplicates of its own.
  std::size_t at = 0;
  while (at < pending_.size()) {
    proto::Handover batch;
    std::vector<int> fds;
    std::size_t bytes = 0;
    while (at < pending_.size() && batch.records.size() < kMaxFdsPerMessage) {
      std::size_t size = proto::encoded_size(pending_[at].record);
      if (!batch.records.empty() && bytes + size > kKeepFrameBytes) break;
      bytes += size;
      fds.push_back(pending_[at].fd);
      batch.records.push_back(std::move(pending_[at].record));
      ++at;
    }
    Queued q{proto::encode(batch), {}, 0};
    if (queued_.empty() && ok_) {
      auto sent = send_with_fds(socket_.get(), q.bytes, fds);
      if (sent.ok()) {
        q.sent = sent.value;  // the fds went with the first byte
        if (q.sent == q.bytes.size()) continue;
        queued_.push_back(std::move(q));
        continue;
      }
      if (!sent.error.is(EAGAIN)) {
        fail("write failed: " + describe(sent.error));
        break;
      }
    }
    for (int fd : fds) {
      UniqueFd copy(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
      if (!copy) {
        fail("cannot duplicate an fd to wait for the keeper: " + describe(Error::from_errno()));
        break;
      }
      q.fds.push_back(std::move(copy));
    }
    if (!ok_) break;
    queued_.push_back(std::move(q));
  }
  pending_.clear();
}

bool KeeperLink::flush() {
  if (!ok_) return true;  // without a keeper, nothing waits for it
  // Updates queued before KEEP frames would reorder them: write what waits first.
  while (!queued_.empty() && ok_) {
    Queued& q = queued_.front();
    std::vector<int> fds;
    if (q.sent == 0) {
      for (const UniqueFd& fd : q.fds) fds.push_back(fd.get());
    }
    auto sent = send_with_fds(socket_.get(), std::span(q.bytes).subspan(q.sent), fds);
    if (!sent.ok()) {
      if (sent.error.is(EAGAIN)) break;
      fail("write failed: " + describe(sent.error));
      return true;
    }
    if (q.sent == 0) q.fds.clear();  // the keeper has its copies
    q.sent += sent.value;
    if (q.sent == q.bytes.size()) queued_.pop_front();
  }
  if (queued_.empty() && ok_) {
    encode_pending();
  }
  if (!ok_) return true;
  const bool done = queued_.empty();
  if (poll_ != nullptr) {
    uv_poll_start(poll_, UV_READABLE | UV_DISCONNECT | (done ? 0 : UV_WRITABLE), on_poll);
  }
  // Whoever drained it (the writable event, the daemon's flush, a session's pump), the
  // sessions held back meanwhile are told.
  if (!done) {
    held_back_ = true;
  } else if (std::exchange(held_back_, false) && caught_up_) {
    caught_up_();
  }
  return done;
}

void KeeperLink::fail(const std::string& why) {
  if (!ok_) return;
  ok_ = false;
  spdlog::error("lost the keeper ({}): a crash of parker would now lose its parked connections", why);
  pending_.clear();
  updates_.clear();
  queued_.clear();
  close();
  socket_.reset();
  if (lost_) lost_();
}

void KeeperLink::drain() {
  if (!ok_) return;
  (void)flush();
  if (queued_.empty()) return;
  (void)set_nonblocking(socket_.get(), false);
  for (Queued& q : queued_) {
    std::vector<int> fds;
    if (q.sent == 0) for (const UniqueFd& fd : q.fds) fds.push_back(fd.get());
    if (Error e = send_all_with_fds(socket_.get(), std::span(q.bytes).subspan(q.sent), fds); e.failed()) {
      queued_.clear();
      fail("write failed: " + describe(e));
      return;
    }
  }
  queued_.clear();
  (void)set_nonblocking(socket_.get(), true);
  encode_pending();
  if (!queued_.empty()) drain();
}

void KeeperLink::bye() {
  if (!ok_) return;
  drain();
  if (!ok_) return;
  (void)set_nonblocking(socket_.get(), false);
  (void)talk_.send(proto::KeepControl{proto::KeepCommand::bye, 0});
}

}  // namespace parker::daemon
