// Who is on the other end of a connected Unix domain socket, as the kernel saw it at
// connect() time: Linux SO_PEERCRED; getpeereid()/LOCAL_PEERCRED on the BSDs and macOS.
#pragma once

#include <sys/types.h>

#include "parker/error.hpp"

namespace parker {

struct PeerCredentials {
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
  pid_t pid = 0;  // 0 where the platform does not tell
};

[[nodiscard]] Result<PeerCredentials> peer_credentials(int socket);

}  // namespace parker
