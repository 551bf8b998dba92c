// What demo_server and demo_client agree on: where the socket is and how to ask.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <string>

namespace demo {

// $XDG_RUNTIME_DIR/parker-demo.sock (a directory of your own) when that is set, else
// /tmp/parker-demo-<uid>.sock, so two users' demos never meet.
inline std::string default_socket_path() {
  const char* runtime_dir = std::getenv("XDG_RUNTIME_DIR");
  if (runtime_dir != nullptr && *runtime_dir != '\0') return std::string(runtime_dir) + "/parker-demo.sock";
  return "/tmp/parker-demo-" + std::to_string(::getuid()) + ".sock";
}

inline constexpr const char* kDefaultSocketRule =
    "Default socket: $XDG_RUNTIME_DIR/parker-demo.sock, else /tmp/parker-demo-<uid>.sock.";

// The client's request, one byte: "please pass me your stdout".
inline constexpr std::byte kAskForStdout{'?'};

}  // namespace demo
