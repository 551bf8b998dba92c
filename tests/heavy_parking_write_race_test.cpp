// heavy_server against a scripted parker (FakeParker), for a moment the real one reaches only
// by luck: a PUBLISH written through to a parked subscriber, and in the same loop iteration
// the subscriber's WAKE and the end of the session (parker stopping). The WRITE is still in
// heavy_server's batch, unsent, when the wake comes, so the subscriber waits for it to be
// answered (Parking::waiting_) — and the batch then fails (no session). That failure used
// to settle the write without serving the waiting subscriber: it stayed with heavy_server,
// connected, for ever, and got nothing more (seen once in heavy_write_handover_test under
// ASan: all 200 subscribers silent after parker's SIGTERM).
//
// Both frames reach heavy_server while it is stopped (SIGSTOP), the PUBLISH first, so one
// epoll_wait returns them in that order when it continues.
#include <signal.h>

#include <catch2/catch.hpp>

#include "support/client_fake_parker.hpp"
#include "support/heavy_parking_support.hpp"

using namespace heavy::test;
using namespace std::chrono_literals;
using parker::test::eventually;
using parker::test::FakeParker;
namespace proto = parker::protocol;

TEST_CASE("heavy: a subscriber woken while its write-through is still unsent is served when the session ends",
          "[heavy][parking][write_through]") {
  parker::test::TempDir dir;
  FakeParker fake(dir.file("parker.sock"));
  parker::test::Process server({parker::test::program_path("heavy_server"), "--port", "0", "--parker", fake.path(),
                                "--park-after", "100"});
  // Startup: HELLO, then the inventory heavy_server asks for before it serves.
  REQUIRE(parker::test::pump_until(fake, [&] { return !fake.take<proto::Hello>().empty(); }));
  fake.welcome(64, 65536, 1, proto::kMinorSocketChecked);
  REQUIRE(parker::test::pump_until(fake, [&] { return !fake.take<proto::InventoryRequest>().empty(); }));
  fake.send(proto::InventoryReply{true, {}});
  REQUIRE(server.wait_for_output("listening on ", 20s));
  REQUIRE(server.wait_for_output("\n", 1s));
  const std::uint16_t port = listening_port(server.output());

  // A real subscriber, parked: the fake parker holds its socket.
  const std::string received = dir.file("sub.out");
  parker::test::Process subscriber(
      {"/bin/sh", "-c", "exec redis-cli -p " + std::to_string(port) + " SUBSCRIBE news > " + received});
  std::vector<std::pair<proto::Park, std::vector<parker::UniqueFd>>> parks;
  REQUIRE(parker::test::pump_until(fake, [&] {
    for (auto& p : fake.take<proto::Park>()) parks.push_back(std::move(p));
    return !parks.empty();
  }, 20s));
  REQUIRE(parks[0].first.records.size() == 1);
  const proto::ParkRecord parked = parks[0].first.records[0];
  parker::UniqueFd parked_fd = std::move(parks[0].second[0]);
  fake.send(proto::Parked{1});
  REQUIRE(eventually([&] { return file_text(received).find("subscribe\nnews\n1\n") != std::string::npos; }, 10s));

  // A first message goes through the fake as a WRITE, written to the socket and answered.
  RespClient publisher(port);
  CHECK(publisher.call({"PUBLISH", "news", "first"}) == ":1\r\n");
  std::vector<std::pair<proto::Write, std::vector<parker::UniqueFd>>> writes;
  REQUIRE(parker::test::pump_until(fake, [&] {
    for (auto& w : fake.take<proto::Write>()) writes.push_back(std::move(w));
    return !writes.empty();
  }));
  REQUIRE(::send(parked_fd.get(), writes[0].first.payload.data(), writes[0].first.payload.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(writes[0].first.payload.size()));
  fake.send(proto::WriteResult{1, 1, {}});
  REQUIRE(eventually([&] { return file_text(received).find("\nfirst\n") != std::string::npos; }, 10s));

  // The race: PUBLISH, then the WAKE and parker's last ERROR (it handled write 1 only),
  // all waiting for heavy_server at once.
  server.signal(SIGSTOP);
  publisher.send({"PUBLISH", "news", "second"});
  fake.send(proto::Wake{{{parked.id, proto::WakeReason::shutdown, parked.blob}}}, {parked_fd.get()});
  parked_fd.reset();
  fake.send(proto::ErrorMessage{proto::ErrorCode::shutting_down, true, 1, "parker is shutting down"});
  fake.close_connection();
  server.signal(SIGCONT);

  CHECK(publisher.reply(10s) == ":1\r\n");  // counted: the subscriber is still subscribed
  const bool delivered = eventually([&] { return file_text(received).find("\nsecond\n") != std::string::npos; }, 10s);
  INFO("subscriber received:\n" << file_text(received) << "heavy_server:\n" << server.output());
  CHECK(delivered);
  // Served again, not waiting: it answers as an active subscriber would.
  CHECK(publisher.call({"PUBLISH", "news", "third"}) == ":1\r\n");
  CHECK(eventually([&] { return file_text(received).find("\nthird\n") != std::string::npos; }, 10s));
}
