// SUBSCRIBE'd clients are parked too; PUBLISH counts them, and the message reaches them
// through parker's write-through without waking them (protocol 1.1; heavy_write_through_test
// has the scale and the corner cases).
#include <catch2/catch.hpp>

#include "support/heavy_parking_support.hpp"

using namespace heavy::test;
using namespace std::chrono_literals;
using parker::test::eventually;

namespace {

const std::string kMessage = "*3\r\n" + bulk("message") + bulk("news") + bulk("hello");

}  // namespace

TEST_CASE("a parked subscriber is counted by PUBLISH and receives the message", "[heavy][parking]") {
  parker::test::TempDir dir;
  ParkerProcess parker(dir.file("parker.sock"));
  auto server = start_parking_server(parker.socket_path());

  RespClient parked(server->port());
  CHECK(parked.call({"SUBSCRIBE", "news"}) == "*3\r\n" + bulk("subscribe") + bulk("news") + ":1\r\n");
  REQUIRE(eventually([&] { return info_number(*server, "parked_connections") == 1; }));

  RespClient publisher(server->port());
  CHECK(publisher.call({"PUBLISH", "news", "hello"}) == ":1\r\n");
  CHECK(parked.reply() == kMessage);
  CHECK(info_number(*server, "wakes_total") == 0);  // written through: not woken
  CHECK(info_number(*server, "write_through_messages_total") == 1);

  // Parked again (and the publisher too); a second, active subscriber joins: both counted.
  REQUIRE(eventually([&] { return info_number(*server, "parked_connections") == 2; }));
  RespClient active(server->port());
  CHECK(active.call({"SUBSCRIBE", "news"}) == "*3\r\n" + bulk("subscribe") + bulk("news") + ":1\r\n");
  CHECK(publisher.call({"PUBLISH", "news", "hello"}) == ":2\r\n");
  CHECK(active.reply() == kMessage);
  CHECK(parked.reply() == kMessage);
  CHECK(publisher.call({"PUBLISH", "elsewhere", "x"}) == ":0\r\n");

  // Still subscribed after the wake, and it can leave the channel.
  CHECK(parked.call({"UNSUBSCRIBE", "news"}) == "*3\r\n" + bulk("unsubscribe") + bulk("news") + ":0\r\n");
  CHECK(eventually([&] { return publisher.call({"PUBLISH", "news", "hello"}) == ":1\r\n"; }));
}

TEST_CASE("a subscriber that hangs up while parked is no longer counted", "[heavy][parking]") {
  parker::test::TempDir dir;
  ParkerProcess parker(dir.file("parker.sock"));
  auto server = start_parking_server(parker.socket_path());
  {
    RespClient gone(server->port());
    CHECK(gone.call({"SUBSCRIBE", "news", "sport"}).find("subscribe") != std::string::npos);
    (void)gone.reply();  // the second channel's confirmation
    REQUIRE(eventually([&] { return info_number(*server, "parked_connections") == 1; }));
  }
  CHECK(eventually([&] { return info_number(*server, "parked_connections") == 0; }));
  CHECK(server->cli("PUBLISH news x").output == "0\n");
  CHECK(server->cli("PUBLISH sport x").output == "0\n");
}
