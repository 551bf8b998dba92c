// The heavy_server program around a Server: logging, the snapshot, signals, the loop.
#pragma once

#include "heavy/config.hpp"

namespace heavy {

// Runs heavy_server until TERM or INT; returns the process exit code.
[[nodiscard]] int run_app(const Config& config);

}  // namespace heavy
