#include "processes.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

#include <fmt/format.h>

namespace parker::bench {
namespace {

// In a fresh child: die with the harness, and undo the harness's SIGPIPE setting.
void become_child(pid_t parent) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(111);  // the parent died before prctl took effect
  ::signal(SIGPIPE, SIG_DFL);
}

// Closes every fd >= 3 except those in `keep`.
void close_other_fds(std::vector<int> keep) {
  std::sort(keep.begin(), keep.end());
  unsigned next = 3;
  for (int fd : keep) {
    if (fd < 3) continue;
    if (static_cast<unsigned>(fd) > next) ::close_range(next, static_cast<unsigned>(fd) - 1, 0);
    next = static_cast<unsigned>(fd) + 1;
  }
  ::close_range(next, ~0U, 0);
}

}  // namespace

double now_seconds() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !reaped_) {
    ::kill(pid_, SIGKILL);
    (void)wait(5s);
  }
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), reaped_(other.reaped_), status_(other.status_) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    ChildProcess old(std::move(*this));
    pid_ = std::exchange(other.pid_, -1);
    reaped_ = other.reaped_;
    status_ = other.status_;
  }
  return *this;
}

ChildProcess ChildProcess::fork_function(const std::function<int()>& body, std::vector<int> keep) {
  pid_t parent = ::getpid();
  std::fflush(nullptr);  // buffered output must not be written twice
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(fmt::format("fork: {}", std::strerror(errno)));
  if (pid == 0) {
    become_child(parent);
    close_other_fds(std::move(keep));
    int code = 1;
    try {
      code = body();
    } catch (const std::exception& e) {
      fmt::print(stderr, "child {}: {}\n", ::getpid(), e.what());
    } catch (...) {
    }
    ::_exit(code);
  }
  return ChildProcess(pid);
}

ChildProcess ChildProcess::spawn(const std::vector<std::string>& argv,
                                 const std::filesystem::path& log_file) {
  if (argv.empty()) throw std::invalid_argument("spawn: empty argv");
  pid_t parent = ::getpid();
  // Everything the child needs is prepared before fork: after it only async-signal-safe calls.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int log = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) throw std::runtime_error(fmt::format("open {}: {}", log_file.string(), std::strerror(errno)));
  int null_in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    ::close(log);
    ::close(null_in);
    throw std::runtime_error(fmt::format("fork: {}", std::strerror(e)));
  }
  if (pid == 0) {
    become_child(parent);
    ::dup2(null_in, 0);
    ::dup2(log, 1);
    ::dup2(log, 2);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(log);
  ::close(null_in);
  return ChildProcess(pid);
}

bool ChildProcess::running() {
  if (pid_ <= 0 || reaped_) return false;
  return !wait(0ms).has_value();
}

std::optional<int> ChildProcess::wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return std::nullopt;
  if (reaped_) return status_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_ || (r < 0 && errno == ECHILD)) {
      reaped_ = true;
      status_ = status;
      return status_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(2ms);
  }
}

std::optional<int> ChildProcess::stop(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return std::nullopt;
  if (reaped_) return status_;
  ::kill(pid_, SIGTERM);
  if (auto s = wait(grace)) return s;
  ::kill(pid_, SIGKILL);
  return wait(5s);
}

namespace {

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::optional<std::uint64_t> rss_bytes(pid_t pid) {
  auto text = read_file(fmt::format("/proc/{}/status", pid));
  if (!text) return std::nullopt;
  auto at = text->find("VmRSS:");
  if (at == std::string::npos) return std::nullopt;
  return std::stoull(text->substr(at + 6)) * 1024;
}

std::optional<double> cpu_seconds(pid_t pid) {
  auto text = read_file(fmt::format("/proc/{}/stat", pid));
  if (!text) return std::nullopt;
  // The command name (field 2) may contain spaces: fields are counted after its ')'.
  auto close = text->rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(text->substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

std::optional<double> scheduled_cpu_seconds(pid_t pid) {
  DIR* tasks = ::opendir(fmt::format("/proc/{}/task", pid).c_str());
  if (tasks == nullptr) return std::nullopt;
  unsigned long long ns = 0;
  bool any = false;
  while (dirent* e = ::readdir(tasks)) {
    if (e->d_name[0] == '.') continue;
    int fd = ::open(fmt::format("/proc/{}/task/{}/schedstat", pid, e->d_name).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;  // a thread that just ended
    char buf[128];
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0) continue;
    buf[n] = '\0';
    ns += std::strtoull(buf, nullptr, 10);  // the first field: time on a CPU, in ns
    any = true;
  }
  ::closedir(tasks);
  if (!any) return std::nullopt;
  return static_cast<double>(ns) / 1e9;
}

std::optional<std::size_t> open_fd_count(pid_t pid) {
  DIR* dir = ::opendir(fmt::format("/proc/{}/fd", pid).c_str());
  if (dir == nullptr) return std::nullopt;
  std::size_t count = 0;
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') ++count;
  }
  ::closedir(dir);
  return count;
}

std::optional<std::filesystem::path> find_in_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  dirs += ":/usr/sbin:/sbin";  // nutcracker lives in /usr/sbin, often not on a user's PATH
  std::istringstream in(dirs);
  std::string dir;
  while (std::getline(in, dir, ':')) {
    if (dir.empty()) continue;
    std::filesystem::path candidate = std::filesystem::path(dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

CommandOutput run_capture(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                          const std::filesystem::path& stderr_log) {
  CommandOutput result;
  if (argv.empty()) return result;
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return result;
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int err = stderr_log.empty() ? ::open("/dev/null", O_WRONLY | O_CLOEXEC)
                               : ::open(stderr_log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int null_in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t parent = ::getpid();
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    become_child(parent);
    ::dup2(null_in, 0);
    ::dup2(out[1], 1);
    ::dup2(err, 2);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err);
  ::close(null_in);
  if (pid < 0) {
    ::close(out[0]);
    return result;
  }
  ChildProcess child = ChildProcess::adopt(pid);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{out[0], POLLIN, 0};
    int rc = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (rc < 0 && errno != EINTR) break;
    if (rc <= 0) continue;
    ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    result.out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(out[0]);
  auto status = child.wait(std::chrono::milliseconds(200));
  if (!status) status = child.stop(1s);
  if (status && WIFEXITED(*status)) result.code = WEXITSTATUS(*status);
  return result;
}

}  // namespace parker::bench
