#include "parked_index.hpp"

#include <bit>

namespace parker::daemon {
namespace {

constexpr std::size_t kMinBuckets = 16;

}  // namespace

ParkedIndex::ParkedIndex(const ParkedTable& table) : table_(table) {
  // fd + 1 must fit the low bits; the rest of the entry is tag.
  const unsigned fd_bits = static_cast<unsigned>(std::bit_width(table.capacity() + 1));
  fd_mask_ = fd_bits >= 32 ? 0xffffffffu : (std::uint32_t{1} << fd_bits) - 1;
  tag_mask_ = ~fd_mask_;
}

std::uint64_t ParkedIndex::hash(std::uint64_t id) noexcept {
  // splitmix64's finaliser: owners' ids are often sequential; every bit must count.
  id ^= id >> 30;
  id *= 0xbf58476d1ce4e5b9ull;
  id ^= id >> 27;
  id *= 0x94d049bb133111ebull;
  id ^= id >> 31;
  return id;
}

std::uint32_t ParkedIndex::entry_for(const ParkedSocket& socket, std::uint64_t h) const noexcept {
  return tag_of(h) | (static_cast<std::uint32_t>(table_.fd_of(socket)) + 1);
}

ParkedSocket* ParkedIndex::find(std::uint64_t id) const noexcept {
  if (size_ == 0) return nullptr;
  const std::uint64_t h = hash(id);
  const std::uint32_t tag = tag_of(h);
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = home(h);; i = (i + 1) & mask) {
    std::uint32_t e = slots_[i];
    if (e == 0) return nullptr;
    if ((e & tag_mask_) == tag) {
      ParkedSocket& s = table_[fd_of(e)];
      if (s.id == id) return &s;
    }
  }
}

void ParkedIndex::place(std::uint32_t entry, std::uint64_t h) noexcept {
  const std::size_t mask = slots_.size() - 1;
  std::size_t i = home(h);
  while (slots_[i] != 0) i = (i + 1) & mask;
  slots_[i] = entry;
}

void ParkedIndex::insert(const ParkedSocket& socket) {
  if ((size_ + 1) * 4 > slots_.size() * 3) resize(slots_.empty() ? kMinBuckets : slots_.size() * 2);
  const std::uint64_t h = hash(socket.id);
  place(entry_for(socket, h), h);
  ++size_;
}

void ParkedIndex::erase(const ParkedSocket& socket) noexcept {
  if (size_ == 0) return;
  const std::uint64_t h = hash(socket.id);
  const std::uint32_t target = entry_for(socket, h);
  const std::size_t mask = slots_.size() - 1;
  std::size_t i = home(h);
  while (slots_[i] != target) {
    if (slots_[i] == 0) return;  // not here
    i = (i + 1) & mask;
  }
  // Backward shift: move up each later entry of the run whose home is not after the hole.
  for (std::size_t j = (i + 1) & mask; slots_[j] != 0; j = (j + 1) & mask) {
    const std::size_t k = home(hash(table_[fd_of(slots_[j])].id));
    // Entry j may fill hole i unless its home k lies cyclically in (i, j].
    const bool home_after_hole = i <= j ? (i < k && k <= j) : (i < k || k <= j);
    if (home_after_hole) continue;
    slots_[i] = slots_[j];
    i = j;
  }
  slots_[i] = 0;
  --size_;
  if (slots_.size() > kMinBuckets && size_ * 8 < slots_.size()) resize(slots_.size() / 2);
  if (size_ == 0) {
    std::vector<std::uint32_t>().swap(slots_);
    shift_ = 64;
  }
}

void ParkedIndex::resize(std::size_t buckets) {
  std::vector<std::uint32_t> old(buckets, 0);
  old.swap(slots_);
  shift_ = 64 - static_cast<unsigned>(std::countr_zero(buckets));
  for (std::uint32_t e : old) {
    if (e != 0) place(e, hash(table_[fd_of(e)].id));
  }
}

std::vector<int> ParkedIndex::fds() const {
  std::vector<int> out;
  out.reserve(size_);
  for (std::uint32_t e : slots_) {
    if (e != 0) out.push_back(static_cast<int>(fd_of(e)));
  }
  return out;
}

}  // namespace parker::daemon
