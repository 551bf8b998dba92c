#include "logging.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <memory>

#include "log_format.hpp"

namespace parker::daemon {
namespace {

std::string install(const LogSettings& settings) {
  try {
    std::shared_ptr<spdlog::logger> logger;
    if (settings.file.empty()) {
      logger = std::make_shared<spdlog::logger>("parker", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    } else {
      logger = std::make_shared<spdlog::logger>(
          "parker", std::make_shared<spdlog::sinks::basic_file_sink_mt>(settings.file, false));
    }
    logger->set_level(spdlog::level::from_str(settings.level));
    // The journal form only when stderr really is the journal: a --log-file keeps times.
    logs::apply_format(*logger, settings.file.empty() && logs::stderr_is_journal());
    // Info and above are rare (no per-connection lines): write them through at once, so an
    // operator tailing the file sees them; debug and trace stay buffered.
    logger->flush_on(spdlog::level::info);
    if (auto old = spdlog::default_logger()) old->flush();
    spdlog::set_default_logger(std::move(logger));
    return {};
  } catch (const spdlog::spdlog_ex& e) {
    return e.what();
  }
}

}  // namespace

std::string setup_logging(const LogSettings& settings) { return install(settings); }

std::string reopen_log_file(const LogSettings& settings) {
  if (settings.file.empty()) return {};
  return install(settings);
}

}  // namespace parker::daemon
