#include "systemd.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>

namespace parker::daemon::systemd {
namespace {

constexpr int kListenFdsStart = 3;  // SD_LISTEN_FDS_START

bool parse_number(const char* text, unsigned long long& out) {
  if (text == nullptr || *text == '\0') return false;
  const char* end = text + std::strlen(text);
  auto [ptr, ec] = std::from_chars(text, end, out);
  return ec == std::errc{} && ptr == end;
}

}  // namespace

Error notify(std::string_view state) {
  const char* where = std::getenv("NOTIFY_SOCKET");
  if (where == nullptr || *where == '\0') return {};
  std::size_t length = std::strlen(where);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (length >= sizeof addr.sun_path || (where[0] != '/' && where[0] != '@')) return Error{EINVAL};
  std::memcpy(addr.sun_path, where, length);
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';  // the abstract namespace
  auto addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + length);

  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return Error::from_errno();
  for (;;) {
    ssize_t n = ::sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr),
                         addr_len);
    if (n >= 0) return {};
    if (errno != EINTR) return Error::from_errno();
  }
}

std::chrono::microseconds watchdog_interval() {
  unsigned long long usec = 0, pid = 0;
  if (!parse_number(std::getenv("WATCHDOG_USEC"), usec) || usec == 0) return std::chrono::microseconds{0};
  if (const char* p = std::getenv("WATCHDOG_PID"); p != nullptr && *p != '\0') {
    if (!parse_number(p, pid) || pid != static_cast<unsigned long long>(::getpid())) return std::chrono::microseconds{0};
  }
  return std::chrono::microseconds(usec);
}

ListenFds listen_fds() {
  ListenFds result;
  const char* fds_text = std::getenv("LISTEN_FDS");
  if (fds_text == nullptr) return result;
  unsigned long long count = 0, pid = 0;
  const char* pid_text = std::getenv("LISTEN_PID");
  bool for_us = parse_number(pid_text, pid) && pid == static_cast<unsigned long long>(::getpid());
  std::string names = std::getenv("LISTEN_FDNAMES") != nullptr ? std::getenv("LISTEN_FDNAMES") : "";
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDNAMES");
  if (!for_us) return result;  // meant for a parent that exec'd us without clearing them
  if (!parse_number(fds_text, count) || count > 1024) {
    result.problem = "LISTEN_FDS is not a number of descriptors: '" + std::string(fds_text) + "'";
    return result;
  }
  for (unsigned long long i = 0; i < count; ++i) {
    int fd = kListenFdsStart + static_cast<int>(i);
    if (::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
      result.problem = "LISTEN_FDS names fd " + std::to_string(fd) + ", which is not open";
      result.fds.clear();
      return result;
    }
    result.fds.emplace_back(fd);
  }
  for (std::size_t start = 0; !names.empty() && start <= names.size();) {
    std::size_t colon = names.find(':', start);
    if (colon == std::string::npos) colon = names.size();
    result.names.push_back(names.substr(start, colon - start));
    start = colon + 1;
  }
  return result;
}

}  // namespace parker::daemon::systemd
