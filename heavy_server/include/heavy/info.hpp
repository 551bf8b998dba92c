// INFO: the server's state as redis' "field:value" text, section by section.
#pragma once

#include <cstdint>
#include <string>

#include "heavy/engine.hpp"

namespace heavy {

// The text INFO answers for `sections` (empty: the default set, which here is every section).
// Sections: server, clients, memory, stats, parking, keyspace; "all", "default" and
// "everything" mean all of them; unknown names add nothing, as in redis.
[[nodiscard]] std::string build_info(Engine& engine, Args sections);

// Resident set size of this process in bytes (from /proc/self/statm), 0 when unknown.
[[nodiscard]] std::uint64_t resident_memory_bytes();

}  // namespace heavy
