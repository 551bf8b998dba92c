// What demo_server and demo_client agree on: where the socket is and how to ask.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <string>

namespace demo {

// $XDG_RUNTIME_DIR/parker-demo.sock (a per-user directory) when that is set, else
// /tmp/parker-demo.sock.
inline std::string default_socket_path() {
  const char* runtime_dir = std::getenv("XDG_RUNTIME_DIR");
  std::string dir = (runtime_dir != nullptr && *runtime_dir != '\0') ? runtime_dir : "/tmp";
  return dir + "/parker-demo.sock";
}

// The client's request, one byte: "please pass me your stdout".
inline constexpr std::byte kAskForStdout{'?'};

}  // namespace demo
