#include "parker_stats.hpp"

#include "query.hpp"

namespace parker::bench {

long long metric_value(const std::string& text, const std::string& name) {
  for (std::size_t at = 0; at < text.size();) {
    std::size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    if (text.compare(at, name.size() + 1, name + " ") == 0) {
      return std::stoll(text.substr(at + name.size() + 1, end - at - name.size() - 1));
    }
    at = end + 1;
  }
  return -1;
}

long long parker_metric(const std::filesystem::path& socket, const std::string& name,
                        std::chrono::milliseconds timeout) {
  auto answer = ctl::ask_parker(socket.string(), ctl::Question::stats, timeout);
  if (answer.status != ctl::Answer::Status::ok) return -1;
  return metric_value(answer.text, name);
}

}  // namespace parker::bench
