/* parker.h — the C API of the parker client library (C11; usable from C++ and any FFI).
 *
 * A server parks idle client sockets with the parker daemon and gets each back when its
 * client speaks, hangs up, reaches its deadline or is recalled. This is a thin layer over
 * parker::Client (parker/client.hpp): the same session, reconnects, batching, protocol 1.1
 * confirmations and acknowledgements, and the same rules for who owns each fd.
 *
 * Errors: every call that can fail returns 0 or a negative errno value (-ENOTCONN,
 * -ENOBUFS...), or one of the PARKER_E* codes below; parker_strerror() explains any of them.
 *
 * Ownership of fds — nothing is ever lost:
 *   - parker_park() takes the fd only when it returns 0; on failure the fd is still yours.
 *   - Every fd passed to a callback (on_wake, on_rejected) is yours from then on: keep it or
 *     close() it. When that callback is NULL the library closes the fd.
 *   - A park refused by parker, or never sent because the connection died (or you called
 *     parker_close()), comes back through on_rejected with its fd and blob.
 *   - A park parker has not confirmed yet when parker dies comes back through on_rejected
 *     too (protocol 1.1), so a dying parker loses nothing that was in flight.
 *   - A wake is acknowledged to parker after on_wake returns; an owner that dies holding a
 *     wake loses none (parker gives it to the next session of the pool).
 *
 * Driving it from any event loop (the library has no threads and never blocks):
 *   - watch parker_fd() for reading, and for writing while parker_wants_write() is true;
 *     it changes after connects and calls, so read both again each iteration;
 *   - on readable call parker_on_readable(), on writable parker_on_writable();
 *   - call parker_on_timer() when parker_timer_ms() milliseconds have passed (-1: no timer);
 *   - call parker_flush() once per iteration, after your own work: park(), recall() and
 *     drop() only queue, flush() sends (up to 253 parks per message).
 * parker_fd() is -1 while disconnected; the timer then says when to retry.
 *
 * Callbacks run only from inside parker_connect(), parker_close(), parker_flush(),
 * parker_on_readable(), parker_on_writable(), parker_on_timer() and parker_leave() — never
 * from park/recall/drop. They may call any function of the API except parker_client_free().
 * Pointers passed to callbacks (blob, message) are valid only until the callback returns.
 *
 * One client is used from one thread at a time.
 */
#ifndef PARKER_PARKER_H
#define PARKER_PARKER_H

#include <stddef.h>
#include <stdint.h>

#include "parker/version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Errors of our own, beyond errno values. */
#define PARKER_ECTRUNC (-0x10001)     /* the kernel truncated fds in transit (MSG_CTRUNC) */
#define PARKER_ENOTSOCKPATH (-0x10002) /* a path exists and is not a socket */

/* Why parker handed a connection back (on_wake). */
enum parker_wake_reason {
  PARKER_WAKE_READABLE = 1, /* the client sent something (unread: it is all yours) */
  PARKER_WAKE_HANGUP = 2,   /* the client hung up (parked with wake_on_hangup) */
  PARKER_WAKE_DEADLINE = 3, /* the idle deadline passed (parked with wake_on_deadline) */
  PARKER_WAKE_RECALLED = 4, /* you asked for it with parker_recall() */
  PARKER_WAKE_SHUTDOWN = 5  /* parker is stopping and hands everything back */
};

/* Why parker closed a parked connection itself (on_closed). */
enum parker_close_reason {
  PARKER_CLOSE_HANGUP = 1,
  PARKER_CLOSE_DEADLINE = 2,
  PARKER_CLOSE_DROPPED = 3,
  PARKER_CLOSE_OWNER_GONE = 4,
  PARKER_CLOSE_ERROR = 5,
  PARKER_CLOSE_SHUTDOWN = 6
};

/* Why a park came back (on_rejected). 0: it never reached parker, or parker died before
 * confirming it. */
enum parker_reject_reason {
  PARKER_REJECT_NOT_SENT = 0,
  PARKER_REJECT_QUOTA_OWNER = 1,
  PARKER_REJECT_QUOTA_TOTAL = 2,
  PARKER_REJECT_NOT_SOCKET = 3,
  PARKER_REJECT_BLOB_TOO_BIG = 4,
  PARKER_REJECT_DUPLICATE_ID = 5,
  PARKER_REJECT_NO_CREDIT = 6,
  PARKER_REJECT_SHUTTING_DOWN = 7,
  PARKER_REJECT_WATCH_FAILED = 8
};

typedef struct parker_client parker_client;

typedef struct parker_park_options {
  uint32_t deadline_ms; /* idle deadline from when parker receives it; 0: none */
  int wake_on_deadline; /* non-zero: at the deadline hand it back; else parker closes it */
  int wake_on_hangup;   /* non-zero: a bare hang-up is handed back; else closed and reported */
} parker_park_options;

/* Any member may be NULL. `user` is passed to every callback. */
typedef struct parker_callbacks {
  void *user;
  /* The session is up (after every connect and reconnect): parks are accepted. */
  void (*on_connected)(void *user);
  /* The session ended or an attempt failed (error < 0: -ECONNREFUSED, -ENOENT, -ECONNRESET,
   * -ETIMEDOUT...); the library retries after retry_in_ms unless parker_close() was called. */
  void (*on_disconnected)(void *user, int error, uint32_t retry_in_ms);
  /* A connection is yours again: `fd` (yours now), your id and the blob you parked it with. */
  void (*on_wake)(void *user, int fd, uint64_t id, const void *blob, size_t blob_size, int wake_reason);
  /* A park that did not happen: `fd` and the blob are yours again. */
  void (*on_rejected)(void *user, int fd, uint64_t id, const void *blob, size_t blob_size, int reject_reason);
  /* Parker closed a parked connection itself. */
  void (*on_closed)(void *user, uint64_t id, int close_reason);
  /* Protocol 1.1: parker confirmed a park; the connection is parker's now. */
  void (*on_parked)(void *user, uint64_t id);
  /* An ERROR from parker (code as in docs/PROTOCOL.md, e.g. 6 unknown_id), with its text. */
  void (*on_error)(void *user, int code, const char *message);
  /* Parker granted more credit; `available` is the total now. */
  void (*on_credit)(void *user, uint32_t available);
  /* After parker_leave(): the session is over (0, or why it ended first). */
  void (*on_left)(void *user, int error);
} parker_callbacks;

/* Creates a client; the callbacks are copied. 0, -EINVAL (NULL out) or -ENOMEM. */
int parker_client_new(const parker_callbacks *callbacks, parker_client **out);
/* Closes the connection and frees the client. Parks still queued have their fds closed
 * without callbacks: call parker_close() first to get them back. NULL is ignored. */
void parker_client_free(parker_client *client);

/* Starts the session with parker at `path` (NULL: parker's default path) for `pool`
 * (1-64 bytes of [A-Za-z0-9._-]). Failures to reach parker are reported through
 * on_disconnected and retried with back-off. -EINVAL, -ENAMETOOLONG, -EISCONN. */
int parker_connect(parker_client *client, const char *path, const char *pool);
/* parker's default socket path (as parker computes it). Valid until the next call. */
const char *parker_default_socket_path(void);

/* Queues `fd` to be parked under `id` with `blob` (NULL when blob_size is 0). 0: the fd is
 * taken. Else it is still yours: -EBADF, -ENOTSOCK, -ENOTCONN (no session), -ENOBUFS (no
 * credit), -EMSGSIZE (blob too big), -EINVAL. `options` may be NULL. */
int parker_park(parker_client *client, int fd, uint64_t id, const void *blob, size_t blob_size,
                const parker_park_options *options);
/* Asks for a parked connection back now (on_wake, PARKER_WAKE_RECALLED). -ENOTCONN, -EINVAL. */
int parker_recall(parker_client *client, uint64_t id);
/* Asks parker to close a parked connection (on_closed, PARKER_CLOSE_DROPPED). */
int parker_drop(parker_client *client, uint64_t id);
/* Ends the session cleanly (parks in flight confirmed or returned), then on_left. */
int parker_leave(parker_client *client);
/* Sends what was queued. Once per loop iteration. */
void parker_flush(parker_client *client);
/* Stops for good: parks not sent come back through on_rejected before it returns. */
void parker_close(parker_client *client);

/* ---- driving it from an event loop ---- */
int parker_fd(const parker_client *client);          /* -1 while disconnected */
int parker_wants_write(const parker_client *client); /* 1: watch parker_fd() for writing too */
/* Milliseconds until parker_on_timer() is due (0: now), or -1 when no timer is set. */
int parker_timer_ms(const parker_client *client);
void parker_on_readable(parker_client *client);
void parker_on_writable(parker_client *client);
void parker_on_timer(parker_client *client);

/* ---- state ---- */
int parker_connected(const parker_client *client);     /* 1 when parks are accepted */
uint32_t parker_credit(const parker_client *client);   /* parks parker accepts now */
size_t parker_unconfirmed_parks(const parker_client *client);

/* "Connection refused (ECONNREFUSED)"... for any error this API returns. Never NULL. */
const char *parker_strerror(int error);
/* PARKER_VERSION of the library actually linked. */
const char *parker_version(void);

#ifdef __cplusplus
}
#endif

#endif /* PARKER_PARKER_H */
