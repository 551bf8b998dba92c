#include "latency_probe.hpp"

#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "stats.hpp"

namespace parker::bench {

void set_io_timeouts(int fd, std::chrono::milliseconds timeout) {
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

double round_trip_us(int fd) {
  timespec start{}, end{};
  char request = 'q', reply = 0;
  ::clock_gettime(CLOCK_MONOTONIC, &start);
  if (::send(fd, &request, 1, MSG_NOSIGNAL) != 1) {
    throw std::runtime_error(fmt::format("probe send: {}", std::strerror(errno)));
  }
  ssize_t n;
  do {
    n = ::recv(fd, &reply, 1, 0);
  } while (n < 0 && errno == EINTR);
  ::clock_gettime(CLOCK_MONOTONIC, &end);
  if (n != 1) {
    throw std::runtime_error(n == 0 ? std::string("probe: server closed the connection")
                                    : fmt::format("probe recv: {}", std::strerror(errno)));
  }
  return static_cast<double>(end.tv_sec - start.tv_sec) * 1e6 +
         static_cast<double>(end.tv_nsec - start.tv_nsec) / 1e3;
}

Percentiles percentiles(std::vector<double>& samples) {
  std::sort(samples.begin(), samples.end());
  return {quantile_of_sorted(samples, 0.50), quantile_of_sorted(samples, 0.99),
          quantile_of_sorted(samples, 0.999)};
}

}  // namespace parker::bench
