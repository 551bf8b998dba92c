#include "owner_cycle.hpp"

#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>

#include <cstdio>
#include <new>
#include <stdexcept>

#include <fmt/format.h>

namespace parker::bench {

SharedOwnerControl::SharedOwnerControl() {
  void* memory = ::mmap(nullptr, sizeof(OwnerControl), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) throw std::runtime_error("mmap failed");
  control_ = new (memory) OwnerControl();
}

SharedOwnerControl::~SharedOwnerControl() { ::munmap(control_, sizeof(OwnerControl)); }

void wait_until_owner_ready(OwnerControl* control, ChildProcess& owner, const std::string& what) {
  using namespace std::chrono_literals;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (control->ready == 0) {
    if (std::chrono::steady_clock::now() > deadline || !owner.running()) {
      throw std::runtime_error(fmt::format("the owner did not {}: {}", what, control->error));
    }
    std::this_thread::sleep_for(2ms);
  }
}

void set_error(OwnerControl* control, const std::string& what) {
  if (control->error[0] != 0) return;  // the first one says what went wrong
  std::snprintf(control->error, sizeof control->error, "%s", what.c_str());
}

ClientCallbacks CycleSink::callbacks() {
  ClientCallbacks callbacks;
  callbacks.on_wake = [this](WokenConnection woken) noexcept {
    if (back.empty()) first_wake = now_seconds();
    back.push_back(std::move(woken.fd));
  };
  callbacks.on_rejected = [this](RejectedPark park) noexcept {
    set_error(control, "parker rejected a park: " + park.describe());
    back.push_back(std::move(park.fd));
  };
  callbacks.on_closed = [this](std::uint64_t id, protocol::CloseReason) noexcept {
    set_error(control, fmt::format("parker closed parked connection {}", id));
  };
  callbacks.on_error = [this](const protocol::ErrorMessage& e) noexcept {
    if (e.code == protocol::ErrorCode::unknown_id && e.id == barrier_id) {
      barrier_seen = true;
    } else {
      set_error(control, fmt::format("parker: {} ({})", protocol::to_string(e.code), e.text));
    }
  };
  callbacks.on_disconnected = [this](Error e, std::chrono::milliseconds) noexcept {
    set_error(control, "the session with parker ended: " + describe(e));
  };
  return callbacks;
}

CpuMark cpu_mark(pid_t parker) {
  if (parker <= 0) return {};
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return {static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9,
          scheduled_cpu_seconds(parker).value_or(0)};
}

bool accept_connections(int listener, std::size_t m, std::vector<UniqueFd>& held, OwnerControl* control) {
  held.reserve(m);
  while (held.size() < m) {
    pollfd p{listener, POLLIN, 0};
    if (::poll(&p, 1, 60000) <= 0) return false;
    for (int c; (c = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;) held.emplace_back(c);
    control->accepted = held.size();
  }
  return true;
}

void run_owner_cycle(OwnerControl* control, ChildProcess& owner, std::uint64_t seq, std::size_t batch, int session,
                     pid_t parker) {
  control->batch = batch;
  control->session = session;
  control->parker_pid = parker;
  control->request = seq;
  auto until = std::chrono::steady_clock::now() + 90s;
  while (control->done.load() != seq) {
    if (std::chrono::steady_clock::now() > until || !owner.running()) {
      throw std::runtime_error(fmt::format("park/wake cycle with batch {} did not finish: {}", batch, control->error));
    }
    std::this_thread::sleep_for(1ms);
  }
  if (control->error[0] != 0) throw std::runtime_error(control->error);
}

}  // namespace parker::bench
