// One log format for every program of the project (parker, parkerctl, heavy_server):
//
//   on a terminal or a file:  2026-12-01T20:51:37.733 parker info listening on /run/parker/parker.sock
//   under systemd's journal:  <6>info listening on /run/parker/parker.sock
//
// The journal stamps each line with its own time and the unit's name, and reads a leading
// "<N>" as the syslog priority (sd-daemon(3)), so there the time and name are left out. The
// library itself never logs; only programs call this.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace parker::logs {

// True when stderr is the stream systemd connected to the journal ($JOURNAL_STREAM names
// its device and inode). A program started from a service but with stderr redirected
// elsewhere gets the plain format.
[[nodiscard]] bool stderr_is_journal() noexcept;

// Gives `logger` the project's format: the journal form when `journal`, else the plain one.
void apply_format(spdlog::logger& logger, bool journal);

// A logger named `program` writing to stderr in the project's format, at `level`
// ("trace" ... "off"). Installed as spdlog's default when `make_default`.
std::shared_ptr<spdlog::logger> stderr_logger(const std::string& program, const std::string& level = "info",
                                              bool make_default = true);

}  // namespace parker::logs
