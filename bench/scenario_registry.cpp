// Every scenario, in the order a run executes them (numbers are issue 5's items).
// To add one: write scenario_<name>.cpp with run_<name>(), declare it in scenario.hpp,
// add a row here and the file to CMakeLists.txt.
#include "scenario.hpp"

namespace parker::bench {

const std::vector<Scenario>& all_scenarios() {
  static const std::vector<Scenario> table = {
      {"fd_passing_raw", "(1) fds/s through the library vs raw sendmsg/recvmsg vs libuv IPC",
       run_fd_passing_raw},
      {"park_wake_throughput", "(2) connections parked and woken per second through parker",
       run_park_wake_throughput},
      {"idle_scale", "(3) memory of N idle connections with and without parking",
       run_idle_scale},
      {"wake_latency", "(4) first-request round trip on a parked vs a live connection",
       run_wake_latency},
      {"proxy_nutcracker", "(5) nutcracker in front: memory per idle client, cost of the hop",
       run_proxy_nutcracker},
      {"idle_cost", "(6) CPU used while holding N parked connections with no traffic",
       run_idle_cost},
      {"server_speed", "(7) redis-benchmark ping/set/get: heavy_server vs redis-server",
       run_server_speed},
      {"ack_cost", "protocol 1.1: what acks cost, park/wake and wake latency with 1.0 vs 1.1 sessions",
       run_ack_cost},
      {"restart", "heavy_server graceful restart with N connections, 10% busy: time to restart, clients dropped",
       run_restart},
      {"handover", "parker hands N parked connections to a successor (--take-over): time, clients waiting, none lost",
       run_handover},
      {"fanout", "PUBLISH to N parked subscribers (write-through) vs live on heavy_server and redis-server; keep-alive PINGs",
       run_fanout},
      {"parked_memory", "parker's own memory per parked connection beyond its blob, at N = 1k, 10k, 19k",
       run_parked_memory},
      {"keeper_cost", "parker --keeper (crash survival): park/wake throughput and CPU against plain parker, in one run",
       run_keeper_cost},
      {"shards", "one heavy_server parking N idle clients over 3 parkers (6 with --big): time to park all, RSS and fds per parker, all answer PING",
       run_shards},
      {"late_close", "protocol 1.1: what closing a passed fd's copy after the receiver has it costs, against closing it at once",
       run_late_close},
  };
  return table;
}

}  // namespace parker::bench
