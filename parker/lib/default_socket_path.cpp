#include "parker/default_socket_path.hpp"

#include <unistd.h>

#include <cstdlib>

namespace parker {
namespace {
// getenv() that treats an empty value as unset: `PARKER_SOCKET= parker` means "default".
const char* env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && value[0] != '\0' ? value : nullptr;
}
}  // namespace

std::string default_socket_path() {
  if (const char* explicit_path = env("PARKER_SOCKET")) return explicit_path;
  if (::geteuid() == 0) return "/run/parker/parker.sock";
  if (const char* runtime_dir = env("XDG_RUNTIME_DIR")) return std::string(runtime_dir) + "/parker.sock";
  return "/tmp/parker-" + std::to_string(::geteuid()) + ".sock";
}

}  // namespace parker
