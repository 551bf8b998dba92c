// The keeper's store (parker/keeper/kept_store.*): what parker's updates do to the copies it
// keeps, with real socket fds — the count of open fds tells whether a copy closed.
#include <catch2/catch.hpp>

#include "kept_store.hpp"
#include "parker/unix_socket.hpp"
#include "support/fd_count.hpp"

namespace proto = parker::protocol;
using parker::keeper::KeptStore;

namespace {

std::uint64_t fake_now_ms = 1000;
std::uint64_t fake_clock() { return fake_now_ms; }

parker::UniqueFd socket_fd() {
  auto pair = parker::make_socket_pair();
  REQUIRE(pair.ok());
  return std::move(pair.value.first);  // the other end closes: a socket all the same
}

proto::HandoverRecord parked(const std::string& pool, std::uint64_t id, std::uint32_t deadline_left_ms = 0) {
  return {proto::HandoverKind::parked, pool, 1000, id, 0, deadline_left_ms, "blob-" + std::to_string(id), {}};
}

}  // namespace

TEST_CASE("keeper store: woken then forgotten closes the copy and a re-park replaces an unacknowledged wake",
          "[keeper]") {
  const std::size_t fds_before = parker::test::open_fd_count();
  {
    KeptStore store(fake_clock);
    store.keep(parked("web", 1), socket_fd());
    store.keep(parked("web", 2), socket_fd());
    store.keep(parked("api", 1), socket_fd());  // the same id in another pool is another connection
    REQUIRE(store.size() == 3);
    REQUIRE(parker::test::open_fd_count() == fds_before + 3);

    // Woken: kept as a held wake until the owner has it for sure.
    CHECK(store.update({proto::KeepOp::woken, "web", 1}));
    CHECK(store.held() == 1);
    // Parked again before the ACK came: the new copy replaces the held one...
    store.keep(parked("web", 1), socket_fd());
    CHECK(store.size() == 3);
    CHECK(store.held() == 0);
    CHECK(parker::test::open_fd_count() == fds_before + 3);
    // ...and the late ACK of the old wake does not forget the new park.
    CHECK_FALSE(store.update({proto::KeepOp::forget_woken, "web", 1}));
    CHECK(store.size() == 3);

    CHECK(store.update({proto::KeepOp::forget, "web", 2}));
    CHECK(store.update({proto::KeepOp::woken, "api", 1}));
    CHECK(store.update({proto::KeepOp::forget_woken, "api", 1}));
    CHECK_FALSE(store.update({proto::KeepOp::forget, "nope", 7}));
    CHECK(store.size() == 1);
    CHECK(parker::test::open_fd_count() == fds_before + 1);
  }
  CHECK(parker::test::open_fd_count() == fds_before);
}

TEST_CASE("keeper store: lends every copy with the time left to its deadline", "[keeper]") {
  KeptStore store(fake_clock);
  fake_now_ms = 1000;
  store.keep(parked("web", 1, 5000), socket_fd());
  store.keep(parked("web", 2), socket_fd());
  store.keep(parked("web", 3, 100), socket_fd());
  REQUIRE(store.update({proto::KeepOp::woken, "web", 2}));
  fake_now_ms = 3000;  // two seconds later, in a new parker
  auto lent = store.lend_all();
  REQUIRE(lent.size() == 3);
  std::map<std::uint64_t, proto::HandoverRecord> by_id;
  for (auto& l : lent) {
    CHECK(l.fd >= 0);
    by_id[l.record.id] = l.record;
  }
  CHECK(by_id[1].kind == proto::HandoverKind::parked);
  CHECK(by_id[1].deadline_left_ms == 3000);
  CHECK(by_id[1].blob == "blob-1");
  CHECK(by_id[2].kind == proto::HandoverKind::held);
  CHECK(by_id[2].flags == static_cast<std::uint8_t>(proto::WakeReason::readable));
  CHECK(by_id[3].deadline_left_ms == 1);  // passed meanwhile: at once in the new parker
  store.clear();
  CHECK(store.size() == 0);
}

TEST_CASE("keeper store: a wake with unsent bytes is lent with them until forgotten or parked again",
          "[keeper][write]") {
  const std::size_t fds_before = parker::test::open_fd_count();
  {
    KeptStore store(fake_clock);
    store.keep(parked("web", 1, 5000), socket_fd());
    store.keep(parked("web", 2), socket_fd());
    REQUIRE(store.update({proto::KeepOp::woken_unsent, "web", 1, "rest of a message"}));
    CHECK(store.held() == 1);
    CHECK(store.with_unsent() == 1);
    auto lent = store.lend_all();
    REQUIRE(lent.size() == 2);
    for (auto& l : lent) {
      if (l.record.id != 1) {
        CHECK(l.record.unsent.empty());
        continue;
      }
      CHECK(l.record.kind == proto::HandoverKind::held);
      CHECK(l.record.flags == static_cast<std::uint8_t>(proto::WakeReason::write_blocked));
      CHECK(l.record.deadline_left_ms == 0);  // a held wake has no deadline
      CHECK(l.record.blob == "blob-1");
      CHECK(l.record.unsent == "rest of a message");
    }
    // Parked again before the ACK: the new copy has no unsent bytes.
    store.keep(parked("web", 1), socket_fd());
    CHECK(store.with_unsent() == 0);
    CHECK(store.held() == 0);
    // A held wake with unsent bytes kept whole (HANDOVER kind 4, from a parker of level 1
    // that finds a new keeper) keeps them; the ACK closes it.
    proto::HandoverRecord held{proto::HandoverKind::held, "web", 1000, 3, 6, 0, "blob-3", "$3\r\nabc\r\n"};
    store.keep(held, socket_fd());
    CHECK(store.with_unsent() == 1);
    bool found = false;
    for (auto& l : store.lend_all()) {
      if (l.record.id == 3) found = l.record == held;
    }
    CHECK(found);
    CHECK(store.update({proto::KeepOp::forget_woken, "web", 3}));
    CHECK(store.with_unsent() == 0);
    // A parked record never carries any, whatever it says.
    auto odd = parked("web", 4);
    odd.unsent = "x";
    store.keep(odd, socket_fd());
    CHECK(store.with_unsent() == 0);
    CHECK(store.size() == 3);
    CHECK(parker::test::open_fd_count() == fds_before + 3);
  }
  CHECK(parker::test::open_fd_count() == fds_before);
}
