// parker::Client — what goes to parker: batching queued parks into PARK frames (at most 253
// records and kMaxFrameBody bytes each), RECALL/DROP id lists, writing, and giving back the
// parks that never left when the connection dies.
#include <cerrno>

#include "parker/client.hpp"

namespace parker {
namespace {
// Body of a RECALL/DROP frame: u32 count, then 8 bytes per id.
constexpr std::size_t kMaxIdsPerFrame = (protocol::kMaxFrameBody - 4) / 8;
}  // namespace

void Client::flush() {
  if (!socket_) {
    confirmed_copies_.clear();
    return;
  }
  // The ACK goes first: a connection re-parked below must not still be unacknowledged.
  encode_ack();
  if (inventory_wanted_) {
    inventory_wanted_ = false;
    OutgoingMessage message;
    protocol::encode(protocol::InventoryRequest{}, message.bytes);
    send_queue_.push(std::move(message));
  }
  encode_parks();
  encode_writes();  // after the parks: a write may name a connection parked just before
  encode_ids(protocol::MessageType::recall, queued_recalls_);
  encode_ids(protocol::MessageType::drop, queued_drops_);
  write_out();
  // Confirmations read here close our copies while warm (see kReadAfterParks); one recvmsg
  // per 256 parks costs nothing measurable.
  if (exactly_once() && parks_sent_ - parks_sent_at_read_ >= kReadAfterParks && socket_) {
    parks_sent_at_read_ = parks_sent_;
    on_readable();
  }
  confirmed_copies_.clear();  // parker's since PARKED: closed now that it has our next frames
}

void Client::encode_ack() {
  if (!exactly_once() || acknowledged_ == ack_sent_) return;
  ack_sent_ = acknowledged_;
  OutgoingMessage message;
  protocol::encode(protocol::Ack{acknowledged_}, message.bytes);
  send_queue_.push(std::move(message));
}

void Client::send_now(const protocol::Message& m) {
  OutgoingMessage message;
  protocol::encode(m, message.bytes);
  send_queue_.push(std::move(message));
  write_out();
}

void Client::encode_parks() {
  const bool keep_copies = exactly_once();
  // park() checked each fd is a socket (ENOTSOCK): parker need not check again (1.4).
  const std::uint8_t checked = welcome_.minor >= protocol::kMinorSocketChecked ? protocol::kSocketChecked : 0;
  std::size_t next = 0;
  while (next < queued_parks_.size()) {
    protocol::Park park;
    OutgoingMessage message;
    std::size_t body = 2;  // the record count
    while (next < queued_parks_.size() && park.records.size() < protocol::kMaxRecordsPerFrame) {
      QueuedPark& queued = queued_parks_[next];
      std::size_t size = protocol::encoded_size(queued.record);
      if (!park.records.empty() && body + size > protocol::kMaxFrameBody) break;
      body += size;
      queued.record.flags |= checked;
      park.records.push_back(std::move(queued.record));
      if (keep_copies) {
        // Ours until parker confirms it: lent to the frame, kept in unconfirmed_.
        message.lent_fds.push_back(queued.fd.get());
        unconfirmed_.push_back({++parks_sent_, send_queue_.pushed(), park.records.back().id, std::move(queued.fd), {}});
      } else {
        message.fds.push_back(std::move(queued.fd));
      }
      ++next;
    }
    protocol::encode(park, message.bytes);
    if (keep_copies) {
      std::size_t first = unconfirmed_.size() - park.records.size();
      for (std::size_t i = 0; i < park.records.size(); ++i) unconfirmed_[first + i].blob = std::move(park.records[i].blob);
    }
    send_queue_.push(std::move(message));
  }
  queued_parks_.clear();
}

void Client::encode_ids(protocol::MessageType type, std::vector<std::uint64_t>& ids) {
  for (std::size_t start = 0; start < ids.size(); start += kMaxIdsPerFrame) {
    auto end = ids.begin() + static_cast<std::ptrdiff_t>(std::min(ids.size(), start + kMaxIdsPerFrame));
    std::vector<std::uint64_t> chunk(ids.begin() + static_cast<std::ptrdiff_t>(start), end);
    OutgoingMessage message;
    if (type == protocol::MessageType::recall) {
      protocol::encode(protocol::Recall{std::move(chunk)}, message.bytes);
    } else {
      protocol::encode(protocol::Drop{std::move(chunk)}, message.bytes);
    }
    send_queue_.push(std::move(message));
  }
  ids.clear();
}

void Client::write_out() {
  if (!socket_) return;
  if (send_queue_.empty()) {
    set_write_interest(false);
    return;
  }
  Error e = send_queue_.flush(socket_.get());
  if (e.ok()) {
    set_write_interest(false);
  } else if (e.is(EAGAIN)) {
    set_write_interest(true);  // parker is slow to read: wait until the socket drains
  } else if (e.is(EPIPE) || e.is(ECONNRESET)) {
    // Parker has closed its end, maybe right after writing WAKE frames: their fds are ours
    // alone now, and closing the socket unread would close every one of those clients. The
    // socket reads as ended (or in error) from now on: the read side ends the session once
    // everything before the end is handled.
    set_write_interest(false);
  } else {
    disconnect(e);
  }
}

void Client::set_write_interest(bool on) {
  if (wants_write_ == on) return;
  wants_write_ = on;
  if (loop_ != nullptr && socket_) loop_->watch(socket_.get(), on);
}

void Client::on_writable() {
  if (socket_) write_out();
}

// Every park that is still ours when a session ends. 1.1: every unconfirmed park if parker
// ended the session (or died); if we ended it, those whose frame parker got whole are its
// now, the rest come back. 1.0: frames nothing of which was written (decoded back from our
// own bytes, so the ids and blobs come back too). Then parks not yet framed.
std::vector<RejectedPark> Client::take_unsent_parks(Ending ending) {
  std::vector<RejectedPark> parks;
  const std::uint64_t written_whole = send_queue_.completed();
  for (UnconfirmedPark& u : unconfirmed_) {
    if (ending == Ending::by_us && u.frame < written_whole) continue;  // parker's: our copy closes
    parks.push_back({std::move(u.fd), u.id, std::nullopt, std::move(u.blob)});
  }
  unconfirmed_.clear();
  for (OutgoingMessage& message : send_queue_.take_unsent()) {
    if (message.fds.empty()) continue;  // HELLO, RECALL, DROP: nothing to give back
    auto decoded = protocol::decode(message.bytes, message.fds.size());
    const auto* park = decoded.status == protocol::DecodeStatus::ok ? std::get_if<protocol::Park>(&decoded.message)
                                                                    : nullptr;
    for (std::size_t i = 0; i < message.fds.size(); ++i) {
      RejectedPark returned;
      returned.fd = std::move(message.fds[i]);
      if (park != nullptr && i < park->records.size()) {
        returned.id = park->records[i].id;
        returned.blob = park->records[i].blob;
      }
      parks.push_back(std::move(returned));
    }
  }
  for (QueuedPark& queued : queued_parks_) {
    parks.push_back({std::move(queued.fd), queued.record.id, std::nullopt, std::move(queued.record.blob)});
  }
  queued_parks_.clear();
  return parks;
}

void Client::return_parks(std::vector<RejectedPark> parks) {
  // Delivered even if a callback calls close() halfway: these fds are the caller's clients.
  for (RejectedPark& park : parks) {
    if (callbacks_.on_rejected) callbacks_.on_rejected(std::move(park));
  }
}

}  // namespace parker
