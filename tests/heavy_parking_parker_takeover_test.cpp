// parker itself is replaced under a heavy_server with parked clients: a successor takes every
// connection over (`parker --take-over`), the old parker exits 0, heavy_server reconnects by
// itself — and every client, parked all along, is answered with its session afterwards.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "support/heavy_parking_support.hpp"

using namespace heavy::test;
using namespace std::chrono_literals;
using parker::test::eventually;

TEST_CASE("heavy: parker replaced by its successor under 500 parked clients and every one answered with its session",
          "[heavy][parking][takeover]") {
  constexpr int kClients = 500;
  parker::test::TempDir dir;
  ParkerProcess old_parker(dir.file("parker.sock"));
  auto server = start_parking_server(old_parker.socket_path());
  auto clients = parked_clients_with_sessions(*server, kClients);
  REQUIRE(clients.size() == kClients);

  parker::test::Process successor(
      {parker::test::program_path("parker"), "--socket", old_parker.socket_path(), "--take-over"});
  REQUIRE(successor.wait_for_output("listening on", 30s));
  auto status = old_parker.process().wait(30s);
  REQUIRE(status.has_value());
  CHECK(parker::test::exit_code(*status) == 0);
  CHECK(successor.wait_for_output("took over " + std::to_string(kClients) + " parked", 10s));

  // heavy_server's session was ended by the old parker; it reconnects to the successor, which
  // holds the wakes of clients that speak before it is back.
  for (auto& c : clients) c->send({"CLIENT", "GETNAME"});
  CHECK(answered_with_their_names(clients) == kClients);
  CHECK(dbs_kept(clients));  // and their db: a key set in db i%16 is seen there only
  successor.signal(SIGTERM);
  CHECK(successor.wait(30s).has_value());
}
