#include "parker/peer_credentials.hpp"

#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>
#if defined(__APPLE__) || defined(__FreeBSD__)
#include <sys/ucred.h>
#include <sys/un.h>
#endif

namespace parker {

// One function per platform family; Linux is the one tested here.
Result<PeerCredentials> peer_credentials(int socket) {
#if defined(__linux__)
  struct ucred cred {};
  socklen_t len = sizeof cred;
  if (::getsockopt(socket, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return {{}, Error::from_errno()};
  }
  return {{cred.uid, cred.gid, cred.pid}, {}};
#else
  PeerCredentials out;
  if (::getpeereid(socket, &out.uid, &out.gid) != 0) return {{}, Error::from_errno()};
#if defined(__APPLE__) && defined(LOCAL_PEERPID)
  pid_t pid = 0;
  socklen_t len = sizeof pid;
  if (::getsockopt(socket, SOL_LOCAL, LOCAL_PEERPID, &pid, &len) == 0) out.pid = pid;
#elif defined(__FreeBSD__) && defined(LOCAL_PEERCRED)
  struct xucred xu {};
  socklen_t len = sizeof xu;
  if (::getsockopt(socket, SOL_LOCAL, LOCAL_PEERCRED, &xu, &len) == 0) out.pid = xu.cr_pid;
#endif
  return {out, {}};
#endif
}

}  // namespace parker
