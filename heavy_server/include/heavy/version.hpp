#pragma once

namespace heavy {

inline constexpr const char* kHeavyServerVersion = "0.1.0";
// What INFO reports as redis_version: the RESP2 feature level clients may assume.
inline constexpr const char* kRedisCompatibleVersion = "7.0.0";

}  // namespace heavy
