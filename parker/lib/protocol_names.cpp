// Names of protocol values, as they appear in logs, errors and metrics labels.
#include "parker/protocol.hpp"

namespace parker::protocol {

static_assert(std::variant_size_v<Message> == static_cast<std::size_t>(MessageType::keepalive_rules) + 4,
              "Message alternatives must follow the MessageType codes, in order (then the keeper's two, then 1.2's)");

std::string_view to_string(MessageType type) {
  switch (type) {
    case MessageType::hello: return "hello";
    case MessageType::welcome: return "welcome";
    case MessageType::error: return "error";
    case MessageType::park: return "park";
    case MessageType::rejected: return "rejected";
    case MessageType::wake: return "wake";
    case MessageType::closed: return "closed";
    case MessageType::recall: return "recall";
    case MessageType::drop: return "drop";
    case MessageType::credit: return "credit";
    case MessageType::stats: return "stats";
    case MessageType::stats_reply: return "stats_reply";
    case MessageType::list: return "list";
    case MessageType::list_reply: return "list_reply";
    case MessageType::ack: return "ack";
    case MessageType::parked: return "parked";
    case MessageType::inventory: return "inventory";
    case MessageType::inventory_reply: return "inventory_reply";
    case MessageType::goodbye: return "goodbye";
    case MessageType::reclaim: return "reclaim";
    case MessageType::credit_return: return "credit_return";
    case MessageType::take_over: return "take_over";
    case MessageType::handover: return "handover";
    case MessageType::handover_end: return "handover_end";
    case MessageType::taken: return "taken";
    case MessageType::write: return "write";
    case MessageType::write_result: return "write_result";
    case MessageType::keepalive_rules: return "keepalive_rules";
    case MessageType::wake_unsent: return "wake_unsent";
    case MessageType::keep_update: return "keep_update";
    case MessageType::keep_control: return "keep_control";
    case MessageType::counters: return "counters";
    case MessageType::handover_rules: return "handover_rules";
  }
  return "unknown";
}

std::string_view to_string(WakeReason reason) {
  switch (reason) {
    case WakeReason::readable: return "readable";
    case WakeReason::hangup: return "hangup";
    case WakeReason::deadline: return "deadline";
    case WakeReason::recalled: return "recalled";
    case WakeReason::shutdown: return "shutdown";
    case WakeReason::write_blocked: return "write_blocked";
  }
  return "unknown";
}

std::string_view to_string(CloseReason reason) {
  switch (reason) {
    case CloseReason::hangup: return "hangup";
    case CloseReason::deadline: return "deadline";
    case CloseReason::dropped: return "dropped";
    case CloseReason::owner_gone: return "owner_gone";
    case CloseReason::error: return "error";
    case CloseReason::shutdown: return "shutdown";
  }
  return "unknown";
}

std::string_view to_string(RejectReason reason) {
  switch (reason) {
    case RejectReason::quota_owner: return "quota_owner";
    case RejectReason::quota_total: return "quota_total";
    case RejectReason::not_socket: return "not_socket";
    case RejectReason::blob_too_big: return "blob_too_big";
    case RejectReason::duplicate_id: return "duplicate_id";
    case RejectReason::no_credit: return "no_credit";
    case RejectReason::shutting_down: return "shutting_down";
    case RejectReason::watch_failed: return "watch_failed";
    case RejectReason::no_rules: return "no_rules";
  }
  return "unknown";
}

std::string_view to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::bad_version: return "bad_version";
    case ErrorCode::not_allowed: return "not_allowed";
    case ErrorCode::pool_taken: return "pool_taken";
    case ErrorCode::bad_frame: return "bad_frame";
    case ErrorCode::fd_mismatch: return "fd_mismatch";
    case ErrorCode::unknown_id: return "unknown_id";
    case ErrorCode::hello_required: return "hello_required";
    case ErrorCode::bad_pool_name: return "bad_pool_name";
    case ErrorCode::shutting_down: return "shutting_down";
    case ErrorCode::not_owner: return "not_owner";
  }
  return "unknown";
}

std::string_view to_string(DecodeError error) {
  switch (error) {
    case DecodeError::none: return "none";
    case DecodeError::frame_too_big: return "frame larger than the protocol allows";
    case DecodeError::unknown_type: return "unknown message type";
    case DecodeError::fd_count_invalid: return "invalid fd count for the message type";
    case DecodeError::record_count: return "record count does not match the fds declared";
    case DecodeError::truncated_body: return "message body ends inside a field";
    case DecodeError::trailing_bytes: return "bytes left over after the message body";
    case DecodeError::bad_value: return "a field holds a value protocol v1 does not define";
    case DecodeError::fd_mismatch: return "fewer fds arrived than the frame declares";
  }
  return "unknown";
}

std::string_view to_string(InventoryState state) {
  switch (state) {
    case InventoryState::parked: return "parked";
    case InventoryState::held: return "held";
  }
  return "unknown";
}

}  // namespace parker::protocol
