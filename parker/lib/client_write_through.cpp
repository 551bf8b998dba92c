// parker::Client, protocol 1.1: write-through (WRITE) and keep-alive rule sets.
#include "parker/client.hpp"

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
    send_queue_.push(std::move(message));
  }
  queued_writes_.clear();
}

}  // namespace parker
