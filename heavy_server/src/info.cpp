#include "heavy/info.hpp"

#include <malloc.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include <fmt/format.h>

#include "heavy/version.hpp"

namespace heavy {

namespace {

std::int64_t unix_ms_now() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string human_bytes(std::uint64_t n) {
  const char* units[] = {"B", "K", "M", "G", "T"};
  double v = static_cast<double>(n);
  std::size_t u = 0;
  while (v >= 1024 && u + 1 < std::size(units)) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{}B", n) : fmt::format("{:.2f}{}", v, units[u]);
}

void section_server(std::string& out, Engine& e) {
  utsname uts{};
  ::uname(&uts);
  const std::int64_t uptime_s = (unix_ms_now() - e.identity().started_unix_ms) / 1000;
  fmt::format_to(std::back_inserter(out),
                 "# Server\r\n"
                 "redis_version:{}\r\n"
                 "heavy_server_version:{}\r\n"
                 "redis_mode:standalone\r\n"
                 "os:{} {} {}\r\n"
                 "arch_bits:{}\r\n"
                 "multiplexing_api:libuv\r\n"
                 "process_id:{}\r\n"
                 "tcp_port:{}\r\n"
                 "uptime_in_seconds:{}\r\n"
                 "uptime_in_days:{}\r\n"
                 "session_bytes:{}\r\n"
                 "\r\n",
                 kRedisCompatibleVersion, kHeavyServerVersion, uts.sysname, uts.release, uts.machine,
                 sizeof(void*) * 8, ::getpid(), e.identity().tcp_port, uptime_s, uptime_s / 86400,
                 e.identity().session_bytes);
}

void section_clients(std::string& out, Engine& e) {
  const ServerStats& s = e.stats();
  fmt::format_to(std::back_inserter(out),
                 "# Clients\r\n"
                 "connected_clients:{}\r\n"
                 "pubsub_clients:{}\r\n"
                 "blocked_clients:0\r\n"
                 "parked_clients:{}\r\n"
                 "\r\n",
                 s.active_connections + s.parking.parked_connections, s.subscriber_connections,
                 s.parking.parked_connections);
}

void section_memory(std::string& out, Engine& e) {
  (void)e;
  const struct mallinfo2 mi = ::mallinfo2();
  const std::uint64_t used = mi.uordblks + mi.hblkhd;
  const std::uint64_t rss = resident_memory_bytes();
  fmt::format_to(std::back_inserter(out),
                 "# Memory\r\n"
                 "used_memory:{}\r\n"
                 "used_memory_human:{}\r\n"
                 "used_memory_rss:{}\r\n"
                 "used_memory_rss_human:{}\r\n"
                 "mem_allocator:libc\r\n"
                 "\r\n",
                 used, human_bytes(used), rss, human_bytes(rss));
}

void section_stats(std::string& out, Engine& e) {
  const ServerStats& s = e.stats();
  fmt::format_to(std::back_inserter(out),
                 "# Stats\r\n"
                 "total_connections_received:{}\r\n"
                 "total_commands_processed:{}\r\n"
                 "rejected_connections:{}\r\n"
                 "total_protocol_errors:{}\r\n"
                 "pubsub_channels:{}\r\n"
                 "pubsub_patterns:{}\r\n"
                 "timed_out_clients:{}\r\n"
                 "client_limit_closes:{}\r\n"
                 "\r\n",
                 s.connections_received, s.commands_processed, s.rejected_connections, s.protocol_errors,
                 e.pubsub().channel_count(), e.pubsub().pattern_count(), s.timed_out_clients, s.client_limit_closes);
}

void section_parking(std::string& out, Engine& e) {
  const ServerStats& s = e.stats();
  fmt::format_to(std::back_inserter(out),
                 "# Parking\r\n"
                 "parked_connections:{}\r\n"
                 "active_connections:{}\r\n"
                 "parks_total:{}\r\n"
                 "wakes_total:{}\r\n"
                 "park_failures_total:{}\r\n"
                 "write_through_messages_total:{}\r\n"
                 "write_through_bytes_total:{}\r\n"
                 "write_through_returned_total:{}\r\n"
                 "keepalive_parks_total:{}\r\n"
                 "\r\n",
                 s.parking.parked_connections, s.active_connections, s.parking.parks_total, s.parking.wakes_total,
                 s.parking.park_failures_total, s.parking.write_through_messages_total,
                 s.parking.write_through_bytes_total, s.parking.write_through_returned_total,
                 s.parking.keepalive_parks_total);
  // Per parker (shard), as redis lists its replicas: slave0:ip=...,port=...
  if (s.parking.shards.empty()) return;
  out.resize(out.size() - 2);  // before the section's blank line
  std::size_t connected = 0;
  for (const ParkingStats::Shard& shard : s.parking.shards) connected += shard.connected ? 1 : 0;
  fmt::format_to(std::back_inserter(out), "parker_shards:{}\r\nparker_shards_connected:{}\r\n", s.parking.shards.size(),
                 connected);
  for (std::size_t i = 0; i < s.parking.shards.size(); ++i) {
    const ParkingStats::Shard& shard = s.parking.shards[i];
    fmt::format_to(std::back_inserter(out), "shard{}:path={},connected={},parked={},credit={}\r\n", i, shard.path,
                   shard.connected ? 1 : 0, shard.parked, shard.credit);
  }
  out.append("\r\n");
}

void section_keyspace(std::string& out, Engine& e) {
  out.append("# Keyspace\r\n");
  for (int i = 0; i < kDatabases; ++i) {
    const Database& db = e.keyspace().db(i);
    if (db.size() == 0) continue;
    fmt::format_to(std::back_inserter(out), "db{}:keys={},expires={},avg_ttl=0\r\n", i, db.size(),
                   db.volatile_count());
  }
  out.append("\r\n");
}

struct Section {
  std::string_view name;
  void (*write)(std::string&, Engine&);
};

constexpr Section kSections[] = {
    {"server", section_server}, {"clients", section_clients}, {"memory", section_memory},
    {"stats", section_stats},   {"parking", section_parking}, {"keyspace", section_keyspace},
};

}  // namespace

std::uint64_t resident_memory_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "re");
  if (f == nullptr) return 0;
  unsigned long long size = 0, resident = 0;
  const int n = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  if (n != 2) return 0;
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

std::string build_info(Engine& engine, Args sections) {
  bool wanted[std::size(kSections)] = {};
  bool any = false;
  for (std::string_view s : sections) {
    if (equals_ignore_case(s, "all") || equals_ignore_case(s, "default") || equals_ignore_case(s, "everything")) {
      std::fill(std::begin(wanted), std::end(wanted), true);
      any = true;
      continue;
    }
    for (std::size_t i = 0; i < std::size(kSections); ++i) {
      if (equals_ignore_case(s, kSections[i].name)) {
        wanted[i] = true;
        any = true;
      }
    }
  }
  if (sections.empty()) std::fill(std::begin(wanted), std::end(wanted), true);
  std::string out;
  if (!sections.empty() && !any) return out;
  for (std::size_t i = 0; i < std::size(kSections); ++i) {
    if (wanted[i]) kSections[i].write(out, engine);
  }
  if (out.size() >= 2) out.resize(out.size() - 2);  // no blank line after the last section
  return out;
}

}  // namespace heavy
