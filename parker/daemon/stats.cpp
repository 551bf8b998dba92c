#include "stats.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>

namespace parker::daemon {
namespace {

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void value(std::string& out, std::string_view name, std::uint64_t v) {
  fmt::format_to(std::back_inserter(out), "{} {}\n", name, v);
}

// One series per enum value, 0 included, so dashboards see every reason from the start.
template <class Enum, std::size_t N>
void by_reason(std::string& out, std::string_view name, std::string_view label,
               const std::array<std::uint64_t, N>& values) {
  for (std::size_t i = 1; i < N; ++i) {
    fmt::format_to(std::back_inserter(out), "{}{{{}=\"{}\"}} {}\n", name, label,
                   protocol::to_string(static_cast<Enum>(i)), values[i]);
  }
}

// Every plain counter of `c` with its series name, as render_prometheus writes it.
template <class C, class Add>
void each_counter(C& c, Add&& add) {
  add(std::string("parker_parks_total"), c.parks_total);
  auto by = [&](std::string_view name, std::string_view label, auto& values, auto as_enum) {
    for (std::size_t i = 1; i < values.size(); ++i) {
      add(fmt::format("{}{{{}=\"{}\"}}", name, label, protocol::to_string(static_cast<decltype(as_enum)>(i))),
          values[i]);
    }
  };
  by("parker_wakes_total", "reason", c.wakes, protocol::WakeReason{});
  by("parker_closed_total", "reason", c.closed, protocol::CloseReason{});
  by("parker_rejected_total", "reason", c.rejected, protocol::RejectReason{});
  by("parker_errors_total", "code", c.errors, protocol::ErrorCode{});
  add(std::string("parker_sessions_total"), c.sessions_total);
  add(std::string("parker_refused_peers_total"), c.refused_peers_total);
  add(std::string("parker_accept_emfile_total"), c.accept_emfile_total);
  add(std::string("parker_fds_truncated_total"), c.truncated_total);
  add(std::string("parker_hello_timeouts_total"), c.hello_timeouts_total);
  add(std::string("parker_input_paused_for_room_total"), c.paused_for_room_total);
  add(std::string("parker_peers_refused_for_room_total"), c.peers_refused_for_room_total);
  add(std::string("parker_writes_total"), c.writes_total);
  add(std::string("parker_write_bytes_total"), c.write_bytes_total);
  add(std::string("parker_writes_not_parked_total"), c.writes_not_parked_total);
  add(std::string("parker_keepalive_replies_total"), c.keepalive_replies_total);
  add(std::string("parker_keepalive_partial_total"), c.keepalive_partial_total);
}

constexpr std::string_view kTimeParked = "parker_time_parked_seconds";
constexpr std::string_view kWakeDelivery = "parker_wake_delivery_seconds";

}  // namespace

std::vector<protocol::CounterValue> export_counters(const Counters& c) {
  std::vector<protocol::CounterValue> out;
  each_counter(c, [&](std::string name, std::uint64_t value) {
    out.push_back({std::move(name), protocol::CounterKind::count, value});
  });
  c.time_parked.export_values(kTimeParked, out);
  c.wake_delivery.export_values(kWakeDelivery, out);
  return out;
}

ImportedCounters import_counters(Counters& c, const std::vector<protocol::CounterValue>& values) {
  std::map<std::string, protocol::CounterValue> left;
  for (const auto& v : values) left.insert_or_assign(v.name, v);
  ImportedCounters result;
  const std::size_t given = left.size();
  each_counter(c, [&](const std::string& name, std::uint64_t& value) {
    auto it = left.find(name);
    if (it == left.end() || it->second.kind != protocol::CounterKind::count) return;
    value += it->second.value;
    left.erase(it);
  });
  c.time_parked.import_values(kTimeParked, left);
  c.wake_delivery.import_values(kWakeDelivery, left);
  result.unknown = left.size();
  result.added = given - left.size();
  return result;
}

std::string render_prometheus(const Counters& c, const Gauges& g) {
  std::string out;
  header(out, "parker_parked_connections", "gauge", "Connections parked now.");
  value(out, "parker_parked_connections", g.parked);
  header(out, "parker_held_wakes", "gauge", "Woken connections waiting for their pool's owner to come back.");
  value(out, "parker_held_wakes", g.held_wakes);
  header(out, "parker_blob_bytes", "gauge", "Bytes of state blobs stored for parked connections.");
  value(out, "parker_blob_bytes", g.blob_bytes);
  header(out, "parker_owner_sessions", "gauge", "Owner sessions connected now.");
  value(out, "parker_owner_sessions", g.owner_sessions);
  header(out, "parker_observer_sessions", "gauge", "Observer sessions (stats, list) connected now.");
  value(out, "parker_observer_sessions", g.observer_sessions);
  header(out, "parker_pools", "gauge", "Pools known now.");
  value(out, "parker_pools", g.pools);
  header(out, "parker_fd_budget", "gauge", "Client fds parker may hold (from RLIMIT_NOFILE).");
  value(out, "parker_fd_budget", g.fd_budget);
  header(out, "parker_client_fds", "gauge", "Client fds held now: parked, held and queued for sending.");
  value(out, "parker_client_fds", g.client_fds);
  header(out, "parker_credit_outstanding", "gauge", "Park credit granted to owners and not yet used.");
  value(out, "parker_credit_outstanding", g.credit_outstanding);
  header(out, "parker_unacked_wakes", "gauge", "Woken fds sent to 1.1 owners and not yet acknowledged (still held).");
  value(out, "parker_unacked_wakes", g.unacked_wakes);
  header(out, "parker_output_queued_bytes", "gauge",
         "Bytes queued for peers and not yet written (a session stops reading at 4 MiB of them).");
  value(out, "parker_output_queued_bytes", g.output_queued_bytes);

  header(out, "parker_parks_total", "counter", "Connections accepted for parking.");
  value(out, "parker_parks_total", c.parks_total);
  header(out, "parker_wakes_total", "counter", "Connections handed back, by reason.");
  by_reason<protocol::WakeReason>(out, "parker_wakes_total", "reason", c.wakes);
  header(out, "parker_closed_total", "counter", "Connections parker closed itself, by reason.");
  by_reason<protocol::CloseReason>(out, "parker_closed_total", "reason", c.closed);
  header(out, "parker_rejected_total", "counter", "Parks refused (fd returned), by reason.");
  by_reason<protocol::RejectReason>(out, "parker_rejected_total", "reason", c.rejected);
  header(out, "parker_errors_total", "counter", "ERROR messages sent to peers, by code.");
  by_reason<protocol::ErrorCode>(out, "parker_errors_total", "code", c.errors);
  header(out, "parker_sessions_total", "counter", "Control sessions accepted.");
  value(out, "parker_sessions_total", c.sessions_total);
  header(out, "parker_refused_peers_total", "counter", "Peers refused for their credentials.");
  value(out, "parker_refused_peers_total", c.refused_peers_total);
  header(out, "parker_accept_emfile_total", "counter", "Connections shed because parker was out of fds.");
  value(out, "parker_accept_emfile_total", c.accept_emfile_total);
  header(out, "parker_fds_truncated_total", "counter", "Reads where the kernel truncated fds in transit (MSG_CTRUNC).");
  value(out, "parker_fds_truncated_total", c.truncated_total);
  header(out, "parker_hello_timeouts_total", "counter", "Peers dropped for not saying HELLO in time.");
  value(out, "parker_hello_timeouts_total", c.hello_timeouts_total);
  header(out, "parker_input_paused_for_room_total", "counter",
         "Times a session's input waited because parker had no room for a frame's fds.");
  value(out, "parker_input_paused_for_room_total", c.paused_for_room_total);
  header(out, "parker_peers_refused_for_room_total", "counter",
         "New peers closed at once because their descriptor slot was already promised (credit, read headroom).");
  value(out, "parker_peers_refused_for_room_total", c.peers_refused_for_room_total);
  header(out, "parker_writes_total", "counter", "Write-through payloads written to parked connections (one per id).");
  value(out, "parker_writes_total", c.writes_total);
  header(out, "parker_write_bytes_total", "counter", "Write-through and keep-alive reply bytes parked sockets took.");
  value(out, "parker_write_bytes_total", c.write_bytes_total);
  header(out, "parker_writes_not_parked_total", "counter", "Write-through ids that were not parked (left to the owner).");
  value(out, "parker_writes_not_parked_total", c.writes_not_parked_total);
  header(out, "parker_keepalive_replies_total", "counter", "Keep-alive requests parker consumed and answered by rule.");
  value(out, "parker_keepalive_replies_total", c.keepalive_replies_total);
  header(out, "parker_keepalive_partial_total", "counter", "Keep-alive partial matches that waited for the rest of a request.");
  value(out, "parker_keepalive_partial_total", c.keepalive_partial_total);
  c.time_parked.render(out, kTimeParked,
                       "How long connections stayed parked, from park to wake or close.");
  c.wake_delivery.render(out, kWakeDelivery,
                         "From the wake decision to the WAKE frame written whole to a 1.1 owner.");
  return out;
}

std::string render_pool_list(std::vector<PoolLine> pools) {
  std::sort(pools.begin(), pools.end(), [](const PoolLine& a, const PoolLine& b) { return a.name < b.name; });
  std::string out;
  for (const auto& p : pools) {
    fmt::format_to(std::back_inserter(out), "pool={} uid={} sessions={} parked={} held={} blob_bytes={}\n",
                   p.name, p.owner_uid, p.sessions, p.parked, p.held, p.blob_bytes);
  }
  return out;
}

}  // namespace parker::daemon
