// A description of the machine a run measured, stored with its results so numbers from
// different machines are never compared blindly.
#pragma once

#include <string>

namespace parker::bench {

struct MachineInfo {
  long cores = 0;                   // online CPUs
  std::string kernel;               // uname: sysname release machine
  std::string kernel_version;       // uname version string
  unsigned long long nofile_soft = 0;  // RLIMIT_NOFILE
  unsigned long long nofile_hard = 0;
  std::string libuv;                // uv_version_string()
  std::string date;                 // UTC, ISO 8601
  std::string hostname;
  std::string cpu_model;            // first "model name" of /proc/cpuinfo
  unsigned long long memory_total_kb = 0;
  std::string build_type;           // CMAKE_BUILD_TYPE of parker_bench
  bool sanitized = false;           // built with ASan/UBSan: timings are not representative
};

[[nodiscard]] MachineInfo describe_machine();

}  // namespace parker::bench
