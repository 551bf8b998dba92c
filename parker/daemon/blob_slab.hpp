// BlobSlab: where parked connections' blobs live — size classes of 8-byte steps carved out
// of 4 KiB chunks, instead of one malloc each. (Small chunks on purpose: they fit the
// holes that freed buffers leave in the heap; 64 KiB ones cost more RSS than they saved.)
//
// Why: glibc rounds a malloc to 16 bytes and adds an 8-byte header, so heavy_server's
// 65-byte blob (69 with its size) took an 80-byte chunk; here it takes 72. At parker's
// scale (tens of thousands of blobs, one size for most) that is the difference between
// meeting and missing the memory budget per parked connection (parked_table.hpp). Blobs
// over kMaxSlab bytes, rare, go to operator new as before.
//
// A blob is [u32 size][size bytes]; freeing reads the size to find the class, so the
// deleter carries no state and a blob pointer stays 8 bytes. Freed slots go on their
// class's free list; when the last blob is freed every chunk goes back to malloc (and so
// a crowd that leaves does not leave its blobs' memory behind). Single-threaded, as parker
// is: one slab a process.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

namespace parker::daemon {

struct BlobFree {
  void operator()(std::byte* blob) const noexcept;
};
using BlobPtr = std::unique_ptr<std::byte[], BlobFree>;

// [u32 size][bytes] holding `bytes`; null when empty.
[[nodiscard]] BlobPtr make_blob(std::string_view bytes);
[[nodiscard]] std::uint32_t blob_size(const std::byte* blob) noexcept;
[[nodiscard]] std::string_view blob_bytes(const std::byte* blob) noexcept;

// For tests and the memory figures: blobs alive, and bytes held in chunks.
struct BlobSlabStats {
  std::size_t live = 0;
  std::size_t chunk_bytes = 0;
};
[[nodiscard]] BlobSlabStats blob_slab_stats() noexcept;

}  // namespace parker::daemon
