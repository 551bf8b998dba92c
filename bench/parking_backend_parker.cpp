// HOOK: wake latency and idle cost "through the real parker daemon".
//
// Not wired yet: it needs parker's client library (parker/client.hpp, target parker::client),
// which is being written. Until then make_parker_backend() says why it cannot run, and the
// scenarios record that as a skipped part (never as numbers).
//
// To plug it in, implement a ParkingBackend (see parking_backend.hpp for the contract) here:
//   start(): make a temp dir; spawn config.program("parker") listening on a socket in it
//            (ChildProcess::spawn, log into config.out_dir); wait until the socket accepts;
//            fork a probe server (ChildProcess::fork_function) that does what
//            minimal_parker.cpp's server_main does, but parks with the client library
//            instead of send_fds(), and serves woken connections from its wake callback:
//            read the request, echo it, park the connection again. Keep a Shared counter in
//            MAP_SHARED memory: +1 when parker confirms a park, -1 on each wake.
//   watcher_pid(): parker's pid (what idle_cost samples); server_pid(): the probe server.
//   stop(): stop the server, then parker (ChildProcess::stop).
// Then add the source's dependency in bench/CMakeLists.txt (it already defines
// BENCH_HAVE_PARKER_CLIENT and links parker::client when that target exists).
#include <filesystem>

#include "parking_backend.hpp"

namespace parker::bench {

std::unique_ptr<ParkingBackend> make_parker_backend(const Config& config, std::string& why) {
  if (!std::filesystem::exists(config.program("parker"))) {
    why = "parker not built yet (no " + config.program("parker").string() + ")";
    return nullptr;
  }
#if defined(BENCH_HAVE_PARKER_CLIENT)
  why = "parker's client library exists but the bench backend on it is not written yet "
        "(bench/parking_backend_parker.cpp)";
#else
  why = "parker's client library (parker::client, parker/client.hpp) not built yet";
#endif
  return nullptr;
}

}  // namespace parker::bench
