// parker daemon pieces in-process: the deadline heap, capacity and credit accounting, the
// output queue's fd accounting, the socket probe, options and stats rendering.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <new>
#include <optional>
#include <catch2/catch.hpp>
#include <random>
#include <vector>

#include "blob_slab.hpp"
#include "capacity.hpp"
#include "deadline_heap.hpp"
#include "options.hpp"
#include "output_queue.hpp"
#include "parked_index.hpp"
#include "parked_socket.hpp"
#include "parked_table.hpp"
#include "parker/unix_socket.hpp"
#include "stats.hpp"
#include "support/daemon_harness.hpp"

using namespace parker;
using namespace parker::daemon;

namespace {
struct Entry {
  std::uint64_t deadline = 0;
  std::uint32_t index = kNotInHeap;
};
}  // namespace

TEST_CASE("the deadline heap pops in deadline order and erases any entry", "[daemon][unit][deadline]") {
  std::mt19937_64 rng(12345);
  std::vector<Entry> entries(2000);
  DeadlineHeap<std::vector<Entry>> heap(entries);
  for (std::uint32_t k = 0; k < entries.size(); ++k) {
    entries[k].deadline = rng() % 500 + 1;
    heap.push(k);
  }
  REQUIRE(heap.size() == entries.size());
  // Erase every third one, from anywhere in the heap.
  for (std::uint32_t k = 0; k < entries.size(); k += 3) {
    heap.erase(k);
    CHECK(entries[k].index == kNotInHeap);
  }
  heap.erase(0);  // twice: a no-op
  std::size_t expected = entries.size() - (entries.size() + 2) / 3;
  REQUIRE(heap.size() == expected);

  CHECK_FALSE(heap.pop_expired(0).has_value());  // nothing due yet
  std::uint64_t last = 0;
  std::size_t popped = 0;
  for (std::uint64_t now = 0; now <= 500; now += 7) {
    while (std::optional<std::uint32_t> k = heap.pop_expired(now)) {
      const Entry& e = entries[*k];
      CHECK(e.deadline <= now);
      CHECK(e.deadline >= last);
      CHECK(e.index == kNotInHeap);
      last = e.deadline;
      ++popped;
    }
    if (heap.top()) CHECK(heap.deadline_of(*heap.top()) > now);
  }
  while (heap.pop_expired(1000)) ++popped;
  CHECK(popped == expected);
  CHECK(heap.empty());
}

TEST_CASE("the deadline heap keeps entry indexes right through mixed operations", "[daemon][unit][deadline]") {
  std::mt19937 rng(7);
  std::vector<Entry> entries(300);
  DeadlineHeap<std::vector<Entry>> heap(entries);
  for (int step = 0; step < 20000; ++step) {
    const auto k = static_cast<std::uint32_t>(rng() % entries.size());
    Entry& e = entries[k];
    if (e.index == kNotInHeap) {
      e.deadline = rng() % 1000;
      heap.push(k);
    } else {
      heap.erase(k);
    }
    if (step % 97 == 0) {
      // The top is the minimum of what is in the heap.
      std::uint64_t min = ~0ull;
      for (auto& x : entries) {
        if (x.index != kNotInHeap) min = std::min(min, x.deadline);
      }
      if (heap.top()) CHECK(heap.deadline_of(*heap.top()) == min);
    }
  }
  std::size_t in = static_cast<std::size_t>(
      std::count_if(entries.begin(), entries.end(), [](const Entry& x) { return x.index != kNotInHeap; }));
  CHECK(heap.size() == in);
}

TEST_CASE("capacity follows the fd limit and never grants beyond it", "[daemon][unit][capacity]") {
  Capacity cap(20000);
  // One frame's fds (253) stay free besides, so that a read can never be truncated.
  CHECK(cap.budget() == 20000 - cap.fixed_reserve() - cap.session_reserve() - 253);
  CHECK(cap.budget() > 19600);
  CHECK(cap.budget() < 20000);

  std::size_t budget = cap.budget();
  // Two sessions take credit; credit is room reserved for fds in flight.
  std::uint32_t a = cap.grant(2048), b = cap.grant(2048);
  CHECK(a == 2048);
  CHECK(b == 2048);
  CHECK(cap.used() == 4096);
  // Parks arrive: credit turns into held fds, used stays the same.
  cap.fds_arrived(1000, 0);
  CHECK(cap.client_fds() == 1000);
  CHECK(cap.credit() == 3096);
  CHECK(cap.used() == 4096);
  // Fill up: no grant can exceed the budget.
  std::uint32_t rest = cap.grant(1u << 30);
  CHECK(cap.used() == budget);
  CHECK(rest == budget - 4096);
  CHECK(cap.grant(1) == 0);
  CHECK(cap.available() == 0);
  // Sent or closed fds make room again.
  cap.fds_released(10);
  CHECK(cap.available() == 10);
  CHECK(cap.grant(100) == 10);
  // A closed session's credit comes back.
  cap.return_credit(2048);
  CHECK(cap.available() == 2048);
  // Fds beyond credit (a misbehaving peer) are counted while parker holds them.
  cap.fds_arrived(0, 5);
  CHECK(cap.available() == 2043);
}

TEST_CASE("sessions beyond the session reserve shrink the budget", "[daemon][unit][capacity]") {
  Capacity cap(20000);
  std::size_t budget = cap.budget();
  for (std::size_t i = 0; i < cap.session_reserve(); ++i) cap.session_opened();
  CHECK(cap.budget() == budget);
  cap.session_opened();
  CHECK(cap.budget() == budget - 1);
  cap.session_closed();
  CHECK(cap.budget() == budget);
}

TEST_CASE("capacity stays sane with tiny fd limits", "[daemon][unit][capacity]") {
  for (std::size_t limit : {0, 1, 10, 40, 200}) {
    Capacity cap(limit);
    CHECK(cap.budget() <= limit);
    CHECK(cap.grant(1000) <= cap.budget());
  }
}

namespace {
// A frame of `size` bytes carrying two fresh fds; a WAKE-like frame when `wake`.
OutgoingFrame big_frame(std::size_t size, bool wake) {
  OutgoingFrame f;
  f.bytes.assign(size, std::byte{'x'});
  for (int i = 0; i < 2; ++i) {
    f.fds.emplace_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (wake) f.wakes.push_back({static_cast<std::uint64_t>(i + 1), parker::protocol::WakeReason::readable, "b"});
  }
  return f;
}
// A socketpair whose first end takes only a few KB at a time.
Result<std::pair<UniqueFd, UniqueFd>> small_buffer_pair() {
  auto pair = make_socket_pair(SOCK_STREAM, true);
  REQUIRE(pair.ok());
  int sndbuf = 4096;
  ::setsockopt(pair.value.first.get(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  return pair;
}
}  // namespace

TEST_CASE("the output queue releases refused fds exactly when their frame starts going out", "[daemon][unit][output]") {
  auto pair = small_buffer_pair();
  std::size_t fds_before = test::open_fd_count();

  OutputQueue out;
  for (int i = 0; i < 3; ++i) out.push(big_frame(100 * 1024, false));  // far more than the socket takes
  CHECK(out.queued_fds() == 6);
  CHECK(out.queued_returned_fds() == 6);
  auto first = out.flush(pair.value.first.get());
  CHECK(first.error.is(EAGAIN));
  CHECK(first.fds_released == 2);  // the first frame started: its fds went with its first byte
  CHECK(out.queued_fds() == 4);
  CHECK(out.take_wakes(true).empty());  // no wakes to hand back
  // Drain the peer; the partly sent first frame completes without counting fds again.
  std::vector<std::byte> sink(1 << 20);
  std::vector<UniqueFd> received;
  std::size_t released = first.fds_released;
  for (int i = 0; i < 10000 && !out.empty(); ++i) {
    (void)receive_with_fds(pair.value.second.get(), sink, received);
    released += out.flush(pair.value.first.get()).fds_released;
  }
  CHECK(out.empty());
  CHECK(released == 6);
  CHECK(received.size() == 6);
  received.clear();
  CHECK(test::open_fd_count() == fds_before);
}

TEST_CASE("1.1 wake frames keep parker's fds until written whole, and hand back unwritten ones", "[daemon][unit][output]") {
  auto pair = small_buffer_pair();
  std::size_t fds_before = test::open_fd_count();
  {
    OutputQueue out;
    out.set_keep_woken(true);
    for (int i = 0; i < 3; ++i) out.push(big_frame(100 * 1024, true));
    auto first = out.flush(pair.value.first.get());
    CHECK(first.error.is(EAGAIN));
    CHECK(first.fds_released == 0);  // started, not whole: still ours
    CHECK(first.written_wakes.empty());
    CHECK(out.queued_fds() == 6);
    // While the session lives only frames not started can be taken back...
    auto unstarted = out.take_wakes(false);
    CHECK(unstarted.size() == 4);
    CHECK(out.queued_fds() == 2);
    // ...and when it is being closed the started one too: its fds are still ours.
    auto started = out.take_wakes(true);
    REQUIRE(started.size() == 2);
    CHECK(started[0].record.id == 1);
    CHECK(started[0].fd.valid());
    CHECK(out.empty());
  }
  CHECK(test::open_fd_count() == fds_before);  // in flight to the peer is not in our table
}

TEST_CASE("a 1.1 wake frame written whole moves its records and fds out for acknowledgement", "[daemon][unit][output]") {
  auto pair = make_socket_pair(SOCK_STREAM, true);
  REQUIRE(pair.ok());
  OutputQueue out;
  out.set_keep_woken(true);
  out.push(big_frame(64, true));
  auto r = out.flush(pair.value.first.get());
  CHECK(r.error.ok());
  CHECK(r.fds_released == 0);
  REQUIRE(r.written_wakes.size() == 1);  // one frame, moved as a whole
  const WrittenWakes& frame = r.written_wakes[0];
  REQUIRE(frame.records.size() == 2);
  REQUIRE(frame.fds.size() == 2);
  CHECK(frame.records[1].id == 2);
  CHECK(frame.fds[1].valid());
  CHECK(out.queued_fds() == 0);
}

TEST_CASE("the socket probe tells readable, hang-up and nothing apart without reading", "[daemon][unit][probe]") {
  test::TcpListener listener;
  auto pair = listener.pair();
  CHECK(probe_socket(pair.server.get()) == SocketEvent::spurious);
  test::write_text(pair.client.get(), "ab");
  REQUIRE(parker::test::eventually([&] { return probe_socket(pair.server.get()) == SocketEvent::readable; }));
  ::shutdown(pair.client.get(), SHUT_WR);
  CHECK(probe_socket(pair.server.get()) == SocketEvent::readable);  // data, then FIN
  CHECK(test::read_text(pair.server.get()) == "ab");                // the peek left the bytes
  REQUIRE(parker::test::eventually([&] { return probe_socket(pair.server.get()) == SocketEvent::hangup; }));

  CHECK(probe_socket(listener.fd()) == SocketEvent::readable);  // a listener: readiness means a connection
  int unconnected = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(probe_socket(unconnected) == SocketEvent::hangup);
  ::close(unconnected);

  auto reset = listener.pair();
  linger lin{1, 0};
  ::setsockopt(reset.client.get(), SOL_SOCKET, SO_LINGER, &lin, sizeof lin);
  reset.client.reset();
  // The first probe after a reset reports it (reading the pending error clears it).
  SocketEvent seen = SocketEvent::spurious;
  REQUIRE(parker::test::eventually([&] { return (seen = probe_socket(reset.server.get())) != SocketEvent::spurious; }));
  CHECK(seen == SocketEvent::error);
}

TEST_CASE("a parked socket fits the memory budget", "[daemon][unit][memory]") {
  // The record is the fd's slot in the ParkedTable: 32 bytes, no node, no fd, no pool pointer.
  CHECK(sizeof(ParkedSocket) == 32);
}

TEST_CASE("blobs keep their bytes in the slab and its chunks go when the last blob does", "[daemon][unit][memory]") {
  REQUIRE(blob_slab_stats().live == 0);
  std::mt19937 rng(5);
  std::vector<std::pair<BlobPtr, std::string>> blobs;
  for (int i = 0; i < 20000; ++i) {
    // Mostly heavy_server-sized blobs, some of every size up to past the slab's limit.
    std::size_t size = i % 4 == 0 ? rng() % 700 : 65;
    std::string bytes(size, '\0');
    for (auto& c : bytes) c = static_cast<char>(rng());
    BlobPtr blob = make_blob(bytes);
    CHECK((blob == nullptr) == bytes.empty());
    blobs.emplace_back(std::move(blob), std::move(bytes));
    if (i % 3 == 0) {  // free some as we go: their slots are reused
      std::size_t k = rng() % blobs.size();
      std::swap(blobs[k], blobs.back());
      blobs.pop_back();
    }
  }
  for (const auto& [blob, bytes] : blobs) {
    CHECK(blob_size(blob.get()) == bytes.size());
    CHECK(blob_bytes(blob.get()) == bytes);
  }
  CHECK(blob_slab_stats().chunk_bytes > 0);
  blobs.clear();
  CHECK(blob_slab_stats().live == 0);
  CHECK(blob_slab_stats().chunk_bytes == 0);
}

TEST_CASE("the parked table owns each fd by its slot and gives it back", "[daemon][unit][memory]") {
  const std::size_t fds_before = parker::test::open_fd_count();
  {
    ParkedTable table(20000);
    int pool_owner = 0;  // any object stands for a Pool: the table only keeps the pointer
    const std::uint16_t pool = table.add_pool(*reinterpret_cast<Pool*>(&pool_owner));
    REQUIRE(pool == 1);
    auto pair = make_socket_pair(SOCK_STREAM, true);
    REQUIRE(pair.ok());
    auto& [a, b] = pair.value;
    const int raw = a.get();
    ParkedSocket* s = table.insert(a, 42, pool);
    REQUIRE(s != nullptr);
    CHECK_FALSE(a);  // the table's now
    CHECK(table.fd_of(*s) == raw);
    CHECK(&table[static_cast<std::uint32_t>(raw)] == s);
    CHECK(s->id == 42);
    CHECK(s->pool == pool);
    s->set_blob("state");
    CHECK(s->blob_view() == "state");
    // A second record for the same fd, or an fd beyond the table, is refused and left alone.
    UniqueFd same(::dup(b.get()));
    UniqueFd copy_of_raw(raw);  // pretend: the same number again
    CHECK(table.insert(copy_of_raw, 7, pool) == nullptr);
    CHECK(copy_of_raw.get() == raw);
    (void)copy_of_raw.release();  // not ours: the table owns `raw`
    ParkedTable tiny(4);
    CHECK(tiny.insert(same, 1, 1) == nullptr);
    CHECK(same);
    UniqueFd back = table.erase(*s);
    CHECK(back.get() == raw);
    CHECK(table.size() == 0);
    // A record still there when the table goes is closed with it.
    REQUIRE(table.insert(back, 43, pool) != nullptr);
    table.remove_pool(pool);
    CHECK(table.add_pool(*reinterpret_cast<Pool*>(&pool_owner)) == pool);  // numbers are reused
  }
  CHECK(parker::test::open_fd_count() == fds_before);
}

TEST_CASE("the parked index finds every id through inserts and erases", "[daemon][unit][memory]") {
  ParkedTable table(4096);
  ParkedIndex index(table);
  // Records for slots 0..N-1 without real fds: the index only reads ids from the table.
  constexpr std::uint32_t kSlots = 3000;
  std::vector<bool> in(kSlots, false);
  auto record = [&](std::uint32_t fd) -> ParkedSocket& { return table[fd]; };
  std::mt19937_64 rng(99);
  std::vector<std::uint64_t> ids(kSlots);
  for (std::uint32_t fd = 0; fd < kSlots; ++fd) {
    ids[fd] = fd % 3 == 0 ? fd : rng();  // sequential ids and random ones
    new (&table[fd]) ParkedSocket(ids[fd], 1);
  }
  for (int step = 0; step < 60000; ++step) {
    const auto fd = static_cast<std::uint32_t>(rng() % kSlots);
    if (in[fd]) {
      index.erase(record(fd));
    } else {
      index.insert(record(fd));
    }
    in[fd] = !in[fd];
    if (step % 5000 == 0) {
      std::size_t count = 0;
      for (std::uint32_t f = 0; f < kSlots; ++f) {
        CHECK((index.find(ids[f]) == (in[f] ? &record(f) : nullptr)));
        count += in[f] ? 1 : 0;
      }
      CHECK(index.size() == count);
      CHECK(index.fds().size() == count);
    }
  }
  for (std::uint32_t fd = 0; fd < kSlots; ++fd) {
    if (in[fd]) index.erase(record(fd));
  }
  CHECK(index.empty());
  CHECK_FALSE(index.contains(ids[0]));
  for (std::uint32_t fd = 0; fd < kSlots; ++fd) table[fd].~ParkedSocket();
}

TEST_CASE("options: defaults, octal modes, repeatable uids, clear errors", "[daemon][unit][options]") {
  auto parse = [](std::vector<std::string> args) {
    args.insert(args.begin(), "parker");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    return parse_options(static_cast<int>(argv.size()), argv.data());
  };
  ::setenv("PARKER_SOCKET", "/tmp/x.sock", 1);
  auto defaults = parse({});
  ::unsetenv("PARKER_SOCKET");
  REQUIRE(defaults.options);
  CHECK(defaults.options->config.socket_path == "/tmp/x.sock");
  CHECK(defaults.options->config.socket_mode == 0600);
  CHECK(defaults.options->config.max_blob == 65536);
  CHECK(defaults.options->config.owner_grace == std::chrono::milliseconds(60000));
  CHECK(defaults.options->log_level == "info");

  auto full = parse({"--socket", "/tmp/p.sock", "--socket-mode", "0660", "--allow-uid", "1000", "--allow-uid", "1001",
                     "--allow-gid", "50", "--max-parked", "100", "--max-parked-per-owner", "10", "--max-blob", "1024",
                     "--owner-grace", "1.5", "--log-level", "debug", "--log-file", "/tmp/p.log"});
  REQUIRE(full.options);
  auto& c = full.options->config;
  CHECK(c.socket_path == "/tmp/p.sock");
  CHECK(c.socket_mode == 0660);
  CHECK(c.allowed_uids == std::vector<uid_t>{1000, 1001});
  CHECK(c.allowed_gids == std::vector<gid_t>{50});
  CHECK(c.max_parked == 100);
  CHECK(c.max_parked_per_owner == 10);
  CHECK(c.max_blob == 1024);
  CHECK(c.owner_grace == std::chrono::milliseconds(1500));
  CHECK(full.options->log_file == "/tmp/p.log");

  CHECK_FALSE(parse({"--socket-mode", "rw-"}).options);
  CHECK_FALSE(parse({"--max-parked", "-3"}).options);
  CHECK_FALSE(parse({"--owner-grace", "soon"}).options);
  CHECK(parse({"--socket-mode", "9"}).exit_code != 0);
}

TEST_CASE("stats render as Prometheus text with every reason", "[daemon][unit][stats]") {
  Counters c;
  c.parks_total = 5;
  c.count(protocol::WakeReason::readable);
  c.count(protocol::WakeReason::readable);
  c.count(protocol::CloseReason::owner_gone);
  c.count(protocol::RejectReason::not_socket);
  Gauges g;
  g.parked = 3;
  g.blob_bytes = 99;
  std::string text = render_prometheus(c, g);
  CHECK(test::metric(text, "parker_parks_total") == 5);
  CHECK(test::metric(text, "parker_parked_connections") == 3);
  CHECK(test::metric(text, "parker_blob_bytes") == 99);
  CHECK(test::metric(text, "parker_wakes_total{reason=\"readable\"}") == 2);
  CHECK(test::metric(text, "parker_wakes_total{reason=\"shutdown\"}") == 0);
  CHECK(test::metric(text, "parker_closed_total{reason=\"owner_gone\"}") == 1);
  CHECK(test::metric(text, "parker_rejected_total{reason=\"not_socket\"}") == 1);
  CHECK(test::metric(text, "parker_rejected_total{reason=\"watch_failed\"}") == 0);
  CHECK(text.find("# TYPE parker_wakes_total counter") != std::string::npos);
  CHECK(text.back() == '\n');

  auto list = render_pool_list({{"b", 1, 2, 3, 4, 5}, {"a", 0, 0, 0, 0, 0}});
  CHECK(list == "pool=a uid=0 sessions=0 parked=0 held=0 blob_bytes=0\n"
                "pool=b uid=1 sessions=2 parked=3 held=4 blob_bytes=5\n");
}

// COUNTERS (protocol 1.2): what a parker hands over names exactly the series its STATS
// shows, with the same values, and a successor that adds them shows them again.
TEST_CASE("counters exported for a hand-over are the STATS series and continue in the successor",
          "[daemon][unit][stats]") {
  Counters old_counters;
  old_counters.parks_total = 7;
  old_counters.count(protocol::WakeReason::hangup);
  old_counters.count(protocol::ErrorCode::bad_frame);
  old_counters.writes_total = 3;
  old_counters.time_parked.observe(0.0625);  // binary fractions: the sums are exact
  old_counters.time_parked.observe(120);
  old_counters.wake_delivery.observe(30e-6);
  const std::string old_text = render_prometheus(old_counters, Gauges{});
  std::vector<protocol::CounterValue> values = export_counters(old_counters);
  for (const auto& v : values) {
    INFO(v.name);
    if (v.kind == protocol::CounterKind::count) CHECK(test::metric(old_text, v.name) == static_cast<long long>(v.value));
    CHECK(old_text.find("\n" + v.name + " ") != std::string::npos);
  }

  Counters successor;
  successor.sessions_total = 1;  // its own, counted before the hand-over ends
  successor.time_parked.observe(2);
  ImportedCounters imported = import_counters(successor, values);
  CHECK(imported.added == values.size());
  CHECK(imported.unknown == 0);
  const std::string text = render_prometheus(successor, Gauges{});
  CHECK(test::metric(text, "parker_parks_total") == 7);
  CHECK(test::metric(text, "parker_wakes_total{reason=\"hangup\"}") == 1);
  CHECK(test::metric(text, "parker_errors_total{code=\"bad_frame\"}") == 1);
  CHECK(test::metric(text, "parker_writes_total") == 3);
  CHECK(successor.sessions_total == 1 + old_counters.sessions_total);
  CHECK(test::metric(text, "parker_time_parked_seconds_count") == 3);
  CHECK(test::metric(text, "parker_time_parked_seconds_bucket{le=\"0.1\"}") == 1);
  CHECK(test::metric(text, "parker_time_parked_seconds_bucket{le=\"10\"}") == 2);
  CHECK(test::metric(text, "parker_time_parked_seconds_bucket{le=\"+Inf\"}") == 3);
  CHECK(text.find("parker_time_parked_seconds_sum 122.0625\n") != std::string::npos);
  CHECK(test::metric(text, "parker_wake_delivery_seconds_count") == 1);

  // Another version's series: unknown names are dropped, counted; a histogram whose series
  // do not add up (other buckets) is left out whole.
  std::vector<protocol::CounterValue> odd{{"parker_future_total", protocol::CounterKind::count, 5},
                                          {"parker_parks_total", protocol::CounterKind::real, 5},
                                          {"parker_wake_delivery_seconds_count", protocol::CounterKind::count, 9}};
  Counters other;
  ImportedCounters partial = import_counters(other, odd);
  CHECK(partial.added == 0);
  CHECK(partial.unknown == 3);
  CHECK(other.parks_total == 0);
  CHECK(other.wake_delivery.count() == 0);
}
