// The order of messages for a parked subscriber when some go through parker (write-through)
// and some are kept by heavy_server: whatever parker returns from a WRITE goes out before any
// message published after that WRITE. In-process, with a write-through that records what it
// was given; the real-process side is heavy_write_through_test.
#include <catch2/catch.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "heavy/parked_subscriber.hpp"

using namespace heavy;

namespace {

// Takes every message while `open`, as parker's write-through does while a session is up.
struct RecordingWriteThrough final : WriteThrough {
  bool open = true;
  std::vector<std::string> taken;
  bool write_through(std::uint64_t /*id*/, std::string_view /*pattern*/, std::string_view /*channel*/,
                     std::string_view message) override {
    if (!open) return false;
    taken.emplace_back(message);
    return true;
  }
};

std::string push(std::string_view message) {
  ReplyBuffer r;
  r.array(3);
  r.bulk("message");
  r.bulk("news");
  r.bulk(message);
  return std::string(r.pending());
}

struct Subscriber {
  RecordingWriteThrough writer;
  std::vector<std::uint64_t> recalls;
  std::function<void(std::uint64_t)> recall = [this](std::uint64_t id) { recalls.push_back(id); };
  ParkedSubscriber s{7, {"news"}, {}, &recall, &writer};
};

}  // namespace

TEST_CASE("a message published between a wake and the WRITE_RESULT goes after what that write returns",
          "[heavy][write_through]") {
  Subscriber sub;
  sub.s.deliver("news", "one");  // to parker
  REQUIRE(sub.writer.taken == std::vector<std::string>{"one"});
  REQUIRE(sub.s.writes_in_flight() == 1);

  sub.s.set_woken();             // parker woke it before it got the WRITE
  sub.s.deliver("news", "two");  // published meanwhile: kept here
  CHECK(sub.writer.taken.size() == 1);
  CHECK(sub.s.pending().empty());  // not ahead of "one", which may still come back

  sub.s.keep_returned(push("one"), false);  // parker: not parked
  sub.s.write_answered();
  CHECK(sub.s.writes_in_flight() == 0);
  CHECK(sub.s.pending() == push("one") + push("two"));
}

TEST_CASE("while messages wait behind writes in flight no newer one goes through parker", "[heavy][write_through]") {
  Subscriber sub;
  sub.s.deliver("news", "one");  // to parker
  sub.writer.open = false;
  sub.s.deliver("news", "two");  // write-through refuses (say, a restart began): kept, recalled
  CHECK(sub.recalls == std::vector<std::uint64_t>{7});
  sub.writer.open = true;
  sub.s.deliver("news", "three");  // would overtake "two" if it went to parker
  CHECK(sub.writer.taken == std::vector<std::string>{"one"});
  CHECK(sub.s.wants_recall());

  sub.s.write_answered();  // "one" was written to the socket
  CHECK(sub.s.pending() == push("two") + push("three"));
}

TEST_CASE("messages kept with no write in flight keep their order", "[heavy][write_through]") {
  Subscriber sub;
  sub.writer.open = false;
  sub.s.deliver("news", "one");
  sub.s.deliver_pattern("n*", "news", "two");
  ReplyBuffer two;
  two.array(4);
  two.bulk("pmessage");
  two.bulk("n*");
  two.bulk("news");
  two.bulk("two");
  CHECK(sub.s.pending() == push("one") + std::string(two.pending()));
  CHECK(sub.recalls.size() == 1);  // recalled once, not per message
}
