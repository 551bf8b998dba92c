#include "kept_store.hpp"

#include <time.h>

#include <algorithm>

namespace parker::keeper {

using protocol::HandoverKind;
using protocol::KeepOp;

std::uint64_t monotonic_ms() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1000000;
}

void KeptStore::keep(protocol::HandoverRecord record, UniqueFd fd) {
  Kept kept;
  if (record.kind == HandoverKind::parked && record.deadline_left_ms != 0) {
    kept.deadline_ms = clock_() + record.deadline_left_ms;
  }
  record.deadline_left_ms = 0;
  kept.fd = std::move(fd);
  Pool& pool = pools_[record.pool];
  const std::uint64_t id = record.id;
  const bool held = record.kind == HandoverKind::held;
  if (!held) record.unsent.clear();  // only a held wake has any
  const bool unsent = !record.unsent.empty();
  kept.record = std::move(record);
  auto [it, inserted] = pool.try_emplace(id);
  if (!inserted) {
    if (it->second.record.kind == HandoverKind::held) --held_;
    if (!it->second.record.unsent.empty()) --with_unsent_;
    --size_;
  }
  it->second = std::move(kept);  // an older copy closes here
  ++size_;
  if (held) ++held_;
  if (unsent) ++with_unsent_;
}

bool KeptStore::update(const protocol::KeepUpdateRecord& u) {
  auto pool = pools_.find(u.pool);
  if (pool == pools_.end()) return false;
  auto it = pool->second.find(u.id);
  if (it == pool->second.end()) return false;
  Kept& kept = it->second;
  const bool held = kept.record.kind == HandoverKind::held;
  switch (u.op) {
    case KeepOp::woken:
      if (held) return true;
      // A held wake's flags are its WakeReason; which one no longer matters to an owner that
      // gets it after a crash, so say what is most likely: data arrived.
      kept.record.kind = HandoverKind::held;
      kept.record.flags = static_cast<std::uint8_t>(protocol::WakeReason::readable);
      kept.deadline_ms = 0;
      ++held_;
      return true;
    case KeepOp::woken_unsent:
      // Here the reason matters: the owner must write these bytes before anything else, as
      // the WAKE_UNSENT that parker sent (or was about to send) says.
      if (!held) ++held_;
      if (kept.record.unsent.empty()) ++with_unsent_;
      kept.record.kind = HandoverKind::held;
      kept.record.flags = static_cast<std::uint8_t>(protocol::WakeReason::write_blocked);
      kept.record.unsent = u.unsent;
      kept.deadline_ms = 0;
      return true;
    case KeepOp::forget_woken:
      if (!held) return false;  // parked again since: that copy stays
      break;
    case KeepOp::forget:
      break;
  }
  if (held) --held_;
  if (!kept.record.unsent.empty()) --with_unsent_;
  --size_;
  pool->second.erase(it);
  if (pool->second.empty()) pools_.erase(pool);
  return true;
}

std::vector<KeptStore::Lent> KeptStore::lend_all() const {
  std::vector<Lent> out;
  out.reserve(size_);
  const std::uint64_t now = clock_();
  for (const auto& [name, pool] : pools_) {
    for (const auto& [id, kept] : pool) {
      Lent lent{kept.record, kept.fd.get()};
      if (kept.deadline_ms != 0) {
        // At least 1: a deadline that passed while parker was away passes at once in the new one.
        lent.record.deadline_left_ms = static_cast<std::uint32_t>(
            std::clamp<std::uint64_t>(kept.deadline_ms > now ? kept.deadline_ms - now : 1, 1, UINT32_MAX));
      }
      out.push_back(std::move(lent));
    }
  }
  return out;
}

void KeptStore::clear() noexcept {
  pools_.clear();
  size_ = held_ = with_unsent_ = 0;
}

}  // namespace parker::keeper
