#include "machine.hpp"

#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <uv.h>

#include <ctime>
#include <fstream>

#include <fmt/format.h>

namespace parker::bench {
namespace {

std::string first_value_of(const char* path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) != 0) continue;
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    auto start = line.find_first_not_of(" \t", colon + 1);
    return start == std::string::npos ? std::string() : line.substr(start);
  }
  return {};
}

}  // namespace

MachineInfo describe_machine() {
  MachineInfo m;
  m.cores = ::sysconf(_SC_NPROCESSORS_ONLN);
  utsname u{};
  if (::uname(&u) == 0) {
    m.kernel = fmt::format("{} {} {}", u.sysname, u.release, u.machine);
    m.kernel_version = u.version;
  }
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    m.nofile_soft = rl.rlim_cur;
    m.nofile_hard = rl.rlim_max;
  }
  m.libuv = uv_version_string();
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char date[64];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
  m.date = date;
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) == 0) m.hostname = host;
  m.cpu_model = first_value_of("/proc/cpuinfo", "model name");
  std::string mem = first_value_of("/proc/meminfo", "MemTotal");
  if (!mem.empty()) m.memory_total_kb = std::stoull(mem);
#ifdef BENCH_BUILD_TYPE
  m.build_type = BENCH_BUILD_TYPE;
#endif
#ifdef BENCH_SANITIZED
  m.sanitized = true;
#endif
  return m;
}

}  // namespace parker::bench
