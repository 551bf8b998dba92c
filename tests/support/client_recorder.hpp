// Records what a parker::Client reports through its callbacks, for tests to look at.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "parker/client.hpp"

namespace parker::test {

struct ClientRecorder {
  std::vector<protocol::Welcome> connected;
  std::vector<std::pair<Error, std::chrono::milliseconds>> disconnected;
  std::vector<WokenConnection> woken;
  std::vector<std::pair<std::uint64_t, protocol::CloseReason>> closed;
  std::vector<RejectedPark> rejected;
  std::vector<protocol::ErrorMessage> errors;
  std::vector<std::uint32_t> credits;
  std::vector<std::uint64_t> parked;         // 1.1: confirmed park ids, in order
  std::vector<protocol::InventoryReply> inventory;
  std::vector<Error> left;                   // after leave()
  std::vector<protocol::WriteResult> write_results;  // 1.1
  std::vector<UnansweredWrites> unanswered;          // 1.1: writes a session ended without answering

  // Callbacks that append to the vectors above; `extra` runs after each, if set.
  ClientCallbacks callbacks() {
    ClientCallbacks c;
    c.on_connected = [this](const protocol::Welcome& w) { connected.push_back(w); };
    c.on_disconnected = [this](Error e, std::chrono::milliseconds retry) { disconnected.emplace_back(e, retry); };
    c.on_wake = [this](WokenConnection w) { woken.push_back(std::move(w)); };
    c.on_closed = [this](std::uint64_t id, protocol::CloseReason r) { closed.emplace_back(id, r); };
    c.on_rejected = [this](RejectedPark p) { rejected.push_back(std::move(p)); };
    c.on_error = [this](const protocol::ErrorMessage& m) { errors.push_back(m); };
    c.on_credit = [this](std::uint32_t available) { credits.push_back(available); };
    c.on_parked = [this](std::uint64_t id) { parked.push_back(id); };
    c.on_inventory = [this](const protocol::InventoryReply& r) { inventory.push_back(r); };
    c.on_left = [this](Error e) { left.push_back(e); };
    c.on_write_result = [this](const protocol::WriteResult& r) { write_results.push_back(r); };
    c.on_writes_unanswered = [this](const UnansweredWrites& w) { unanswered.push_back(w); };
    return c;
  }
};

}  // namespace parker::test
