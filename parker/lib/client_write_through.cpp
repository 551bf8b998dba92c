// parker::Client, protocol 1.1: write-through (WRITE) and keep-alive rule sets.
#include "parker/client.hpp"

#include <algorithm>

namespace parker {

Error Client::write(std::vector<std::uint64_t> ids, std::string payload, std::uint64_t* number) {
  if (Error e = ensure_owner_session(); e.failed()) return e;
  if (!exactly_once()) return Error{ENOTSUP};
  if (ids.empty()) return Error{EINVAL};
  // The frame is 8 + 4 + 8n + 4 + payload bytes.
  if (payload.empty() || payload.size() > protocol::kMaxWritePayload ||
      16 + ids.size() * 8 + payload.size() > protocol::kMaxFrameBody) {
    return Error{EMSGSIZE};
  }
  queued_writes_.push_back(protocol::Write{std::move(ids), std::move(payload)});
  ++writes_queued_;
  if (number != nullptr) *number = writes_queued_;
  if (loop_ != nullptr) loop_->flush_needed();
  return {};
}

Error Client::declare_keepalive_rules(std::uint8_t set, std::vector<protocol::KeepaliveRule> rules) {
  if (Error e = ensure_owner_session(); e.failed()) return e;
  if (!exactly_once()) return Error{ENOTSUP};
  if (set == 0 || set > protocol::kMaxKeepaliveSets || rules.size() > protocol::kMaxKeepaliveRules) return Error{EINVAL};
  for (const auto& rule : rules) {
    if (rule.request.empty() || rule.request.size() > protocol::kMaxKeepaliveRequest ||
        rule.reply.size() > protocol::kMaxKeepaliveReply) {
      return Error{EINVAL};
    }
  }
  send_now(protocol::KeepaliveRules{set, std::move(rules)});
  return {};
}

void Client::encode_writes() {
  for (const protocol::Write& w : queued_writes_) {
    OutgoingMessage message;
    protocol::encode(w, message.bytes);
    write_frames_.push_back(send_queue_.pushed());
    send_queue_.push(std::move(message));
  }
  queued_writes_.clear();
}

void Client::handle_write_result(const protocol::WriteResult& result) {
  if (result.write > writes_answered_) {
    // Results come in order: this one answers every write up to its number.
    for (std::uint64_t n = writes_answered_; n < result.write && !write_frames_.empty(); ++n) write_frames_.pop_front();
    writes_answered_ = result.write;
  }
  if (callbacks_.on_write_result) callbacks_.on_write_result(result);
}

// The session is ending (the send queue still says which frames left whole). A frame parker
// did not get whole it cannot have handled; nor, on a 1.3 session it ended with a fatal ERROR,
// any write after the count that ERROR gave. What is left may or may not have been handled.
std::optional<UnansweredWrites> Client::take_unanswered_writes() {
  const std::uint64_t first = writes_answered_ + 1;
  const std::uint64_t last = writes_queued_;
  if (last < first || !exactly_once()) return std::nullopt;
  std::uint64_t reached = writes_answered_;  // the last write whose frame left whole
  for (std::uint64_t frame : write_frames_) {
    if (frame >= send_queue_.completed()) break;
    ++reached;
  }
  std::uint64_t unknown_upto = reached;
  if (parker_handled_writes_) unknown_upto = std::min(reached, std::max(*parker_handled_writes_, writes_answered_));
  writes_answered_ = last;  // reported: once
  write_frames_.clear();
  return UnansweredWrites{first, unknown_upto, last};
}

}  // namespace parker
