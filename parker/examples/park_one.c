/* park_one.c — the parker C API in one page: park a connection, get it back.
 *
 * Build against an installed libparker and run beside a running parker:
 *   cc -std=c11 park_one.c $(pkg-config --cflags --libs parker) -o park_one
 *   ./park_one /run/parker/parker.sock
 *
 * It makes a loopback TCP connection, parks the server's end with parker, writes from the
 * client's end, waits for parker to hand the server's end back, checks that it is the same
 * socket (same inode) carrying the same id and blob, and exits 0. Any failure: exit 1. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <parker/parker.h>

struct state {
  int connected;
  int woken_fd; /* ours once on_wake gave it to us */
  uint64_t woken_id;
  char blob[64];
  int reason;
};

static void on_connected(void *user) { ((struct state *)user)->connected = 1; }

static void on_wake(void *user, int fd, uint64_t id, const void *blob, size_t size, int reason) {
  struct state *s = user;
  s->woken_fd = fd;
  s->woken_id = id;
  s->reason = reason;
  if (size >= sizeof s->blob) size = sizeof s->blob - 1;
  memcpy(s->blob, blob, size);
  s->blob[size] = '\0';
}

static void on_rejected(void *user, int fd, uint64_t id, const void *blob, size_t size, int reason) {
  (void)user, (void)blob, (void)size;
  fprintf(stderr, "park_one: park %llu refused (reason %d)\n", (unsigned long long)id, reason);
  close(fd); /* it is ours again; this example just gives up on it */
}

static long long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* One turn of an event loop that only drives the client: flush, wait, dispatch. */
static void turn(parker_client *client, int max_wait_ms) {
  parker_flush(client);
  struct pollfd p = {parker_fd(client), POLLIN, 0};
  if (parker_wants_write(client)) p.events |= POLLOUT;
  int timeout = parker_timer_ms(client);
  if (timeout < 0 || timeout > max_wait_ms) timeout = max_wait_ms;
  int n = poll(&p, p.fd >= 0 ? 1 : 0, timeout);
  if (n > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR))) parker_on_readable(client);
  if (n > 0 && (p.revents & POLLOUT)) parker_on_writable(client);
  if (parker_timer_ms(client) == 0) parker_on_timer(client);
}

/* A loopback TCP connection: *server_end and *client_end. */
static int tcp_pair(int *server_end, int *client_end) {
  struct sockaddr_in addr = {0};
  socklen_t len = sizeof addr;
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 1) != 0 ||
      getsockname(listener, (struct sockaddr *)&addr, &len) != 0) {
    perror("park_one: listen");
    return -1;
  }
  *client_end = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (*client_end < 0 || connect(*client_end, (struct sockaddr *)&addr, sizeof addr) != 0) {
    perror("park_one: connect");
    return -1;
  }
  *server_end = accept(listener, NULL, NULL);
  close(listener);
  return *server_end < 0 ? -1 : 0;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s PARKER_SOCKET\n", argv[0]);
    return 1;
  }
  struct state s = {0, -1, 0, "", 0};
  parker_callbacks callbacks = {0};
  callbacks.user = &s;
  callbacks.on_connected = on_connected;
  callbacks.on_wake = on_wake;
  callbacks.on_rejected = on_rejected;

  parker_client *client = NULL;
  int rc = parker_client_new(&callbacks, &client);
  if (rc == 0) rc = parker_connect(client, argv[1], "park-one-example");
  if (rc != 0) {
    fprintf(stderr, "park_one: %s\n", parker_strerror(rc));
    return 1;
  }
  long long give_up = now_ms() + 10000;
  while (!s.connected && now_ms() < give_up) turn(client, 100);
  if (!s.connected) {
    fprintf(stderr, "park_one: no session with parker at %s\n", argv[1]);
    return 1;
  }

  int server_end = -1, client_end = -1;
  if (tcp_pair(&server_end, &client_end) != 0) return 1;
  struct stat parked;
  fstat(server_end, &parked);
  if ((rc = parker_park(client, server_end, 1, "hello", 5, NULL)) != 0) {
    fprintf(stderr, "park_one: park: %s\n", parker_strerror(rc));
    return 1;
  }
  /* server_end is parker's now (the library keeps it until parker confirms). */
  parker_flush(client);
  if (write(client_end, "ping", 4) != 4) {
    perror("park_one: write");
    return 1;
  }
  while (s.woken_fd < 0 && now_ms() < give_up) turn(client, 100);
  if (s.woken_fd < 0) {
    fprintf(stderr, "park_one: no wake within 10 s\n");
    return 1;
  }

  struct stat woken;
  fstat(s.woken_fd, &woken);
  char buffer[8] = {0};
  ssize_t n = read(s.woken_fd, buffer, sizeof buffer - 1);
  int same = woken.st_dev == parked.st_dev && woken.st_ino == parked.st_ino;
  int ok = same && s.woken_id == 1 && strcmp(s.blob, "hello") == 0 && s.reason == PARKER_WAKE_READABLE &&
           n == 4 && memcmp(buffer, "ping", 4) == 0;
  printf("park_one: woken id %llu, blob \"%s\", %s socket, read \"%s\": %s\n", (unsigned long long)s.woken_id,
         s.blob, same ? "same" : "another", buffer, ok ? "ok" : "FAILED");
  close(s.woken_fd);
  close(client_end);
  parker_close(client);
  parker_client_free(client);
  return ok ? 0 : 1;
}
