// Graceful restarts for tests: TERM a heavy_server with parker, check it left cleanly, start
// its successor on the same pool (it takes the listening socket over from parker), and the
// real-client driver (heavy_real_clients.py, Debian's python3-redis) that counts every client.
#pragma once

#include <signal.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "support/heavy_parking_support.hpp"

namespace heavy::test {

// TERMs `old` (a graceful restart) and starts the successor with the same arguments. The old
// one must exit 0 having handed everything over — nothing left behind, nothing closed.
inline std::unique_ptr<HeavyServerProcess> restart(std::unique_ptr<HeavyServerProcess> old,
                                                   const std::string& parker_socket, int park_after_ms,
                                                   const std::vector<std::string>& extra) {
  old->process().signal(SIGTERM);
  const auto status = old->process().wait(30s);
  REQUIRE(status.has_value());
  CHECK(parker::test::exit_code(*status) == 0);
  old->process().drain_output(5s);
  const std::string& log = old->process().output();
  INFO("old heavy_server's log (tail):\n" << log.substr(log.size() > 4000 ? log.size() - 4000 : 0));
  CHECK(log.find("graceful restart: parker holds") != std::string::npos);
  CHECK(log.find("anyway") == std::string::npos);           // confirmed and left in time
  CHECK(log.find("closing it") == std::string::npos);       // no client closed on the way
  CHECK(log.find("could not be handed over") == std::string::npos);
  return start_parking_server(parker_socket, park_after_ms, extra);
}

// heavy_real_clients.py next to this header's directory (tests/).
inline std::string real_clients_script() {
  return (std::filesystem::path(__FILE__).parent_path().parent_path() / "heavy_real_clients.py").string();
}

// The driver, in `mode` ("load" or "light") against `port`; returns once it said "ready".
inline std::unique_ptr<parker::test::Process> start_real_clients(std::uint16_t port, const std::string& mode) {
  parker::test::SpawnOptions o;
  o.pipe_stdin = true;
  auto p = std::make_unique<parker::test::Process>(
      std::vector<std::string>{"/usr/bin/python3", real_clients_script(), std::to_string(port), mode}, o);
  if (!p->wait_for_output("ready clients=", 60s) || !p->wait_for_output("\n", 5s)) {
    throw std::runtime_error("the real clients did not start: " + p->output());
  }
  return p;
}

// The driver's report line starting with `prefix`, once it is whole (the driver follows each
// report with "done TAG"), waited for up to `timeout`; empty if it did not come.
inline std::string driver_line(parker::test::Process& p, const std::string& prefix, const std::string& tag,
                               std::chrono::seconds timeout) {
  if (!p.wait_for_output("\ndone " + tag + "\n", timeout)) return {};
  const std::string needle = "\n" + prefix;
  const auto at = p.output().rfind(needle);
  if (at == std::string::npos) return {};
  const auto end = p.output().find('\n', at + 1);
  return p.output().substr(at + 1, end - at - 1);
}

// A "k=v" field of a driver line, or -1.
inline long long driver_field(const std::string& line, const std::string& key) {
  const auto at = line.find(" " + key + "=");
  if (at == std::string::npos) return -1;
  return std::stoll(line.substr(at + key.size() + 2));
}

}  // namespace heavy::test
