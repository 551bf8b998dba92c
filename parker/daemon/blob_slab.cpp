#include "blob_slab.hpp"

#include <array>
#include <cstring>
#include <new>
#include <vector>

namespace parker::daemon {
namespace {

constexpr std::size_t kStep = 8;
constexpr std::size_t kMaxSlab = 512;  // size header included
constexpr std::size_t kClasses = kMaxSlab / kStep;
constexpr std::size_t kChunkBytes = 4096 - 16;  // small: fits the holes freed memory leaves in the heap

struct FreeSlot {
  FreeSlot* next;
};

class Slab {
 public:
  ~Slab() { release_all(); }

  std::byte* allocate(std::size_t total) {
    const std::size_t c = class_of(total);
    Class& k = classes_[c];
    ++live_;
    if (k.free != nullptr) {
      FreeSlot* slot = k.free;
      k.free = slot->next;
      return reinterpret_cast<std::byte*>(slot);
    }
    const std::size_t slot_bytes = (c + 1) * kStep;
    if (k.left < slot_bytes) {
      chunks_.push_back(std::make_unique_for_overwrite<std::byte[]>(kChunkBytes));
      k.next = chunks_.back().get();
      k.left = kChunkBytes;
    }
    std::byte* slot = k.next;
    k.next += slot_bytes;
    k.left -= slot_bytes;
    return slot;
  }

  void free(std::byte* slot, std::size_t total) noexcept {
    Class& k = classes_[class_of(total)];
    auto* f = reinterpret_cast<FreeSlot*>(slot);
    f->next = k.free;
    k.free = f;
    if (--live_ == 0) release_all();
  }

  [[nodiscard]] BlobSlabStats stats() const noexcept { return {live_, chunks_.size() * kChunkBytes}; }

 private:
  struct Class {
    FreeSlot* free = nullptr;
    std::byte* next = nullptr;  // bump pointer in the newest chunk of this class
    std::size_t left = 0;
  };
  static std::size_t class_of(std::size_t total) noexcept { return (total + kStep - 1) / kStep - 1; }
  void release_all() noexcept {
    chunks_.clear();
    chunks_.shrink_to_fit();
    classes_ = {};
  }

  std::array<Class, kClasses> classes_{};
  std::vector<std::unique_ptr<std::byte[]>> chunks_;
  std::size_t live_ = 0;
};

Slab& slab() {
  static Slab the_slab;
  return the_slab;
}

}  // namespace

void BlobFree::operator()(std::byte* blob) const noexcept {
  const std::size_t total = sizeof(std::uint32_t) + blob_size(blob);
  if (total > kMaxSlab) {
    ::operator delete[](blob);
  } else {
    slab().free(blob, total);
  }
}

BlobPtr make_blob(std::string_view bytes) {
  if (bytes.empty()) return nullptr;
  const auto size = static_cast<std::uint32_t>(bytes.size());
  const std::size_t total = sizeof size + size;
  auto* blob = total > kMaxSlab ? static_cast<std::byte*>(::operator new[](total)) : slab().allocate(total);
  std::memcpy(blob, &size, sizeof size);
  std::memcpy(blob + sizeof size, bytes.data(), size);
  return BlobPtr(blob);
}

std::uint32_t blob_size(const std::byte* blob) noexcept {
  std::uint32_t size = 0;
  if (blob != nullptr) std::memcpy(&size, blob, sizeof size);
  return size;
}

std::string_view blob_bytes(const std::byte* blob) noexcept {
  if (blob == nullptr) return {};
  return {reinterpret_cast<const char*>(blob + sizeof(std::uint32_t)), blob_size(blob)};
}

BlobSlabStats blob_slab_stats() noexcept { return slab().stats(); }

}  // namespace parker::daemon
