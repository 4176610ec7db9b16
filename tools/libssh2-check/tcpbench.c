/* tcpbench: the two ends of a bulk TCP transfer, for comparing tunnels (ssh -L, throughput.c).
 *
 *   tcpbench serve PORT              on 127.0.0.1: per connection, read 'U' or 'D' + 8-byte big-endian count;
 *                                    U: read until EOF, then answer the 8-byte count received; D: send count bytes, close
 *   tcpbench up|down PORT MIB        connect to 127.0.0.1:PORT (the tunnel's local end) and move MIB MiB;
 *                                    prints MB/s (10^6 bytes/s) from the first byte to completion */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (256 * 1024)

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static int readn(int fd, void *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, (char *)buf + got, n - got);
    if (r <= 0) return -1;
    got += r;
  }
  return 0;
}

static int writen(int fd, const void *buf, size_t n) {
  size_t done = 0;
  while (done < n) {
    ssize_t w = write(fd, (const char *)buf + done, n - done);
    if (w <= 0) return -1;
    done += w;
  }
  return 0;
}

static void put64(unsigned char *b, uint64_t v) { for (int i = 7; i >= 0; i--, v >>= 8) b[i] = v & 0xff; }
static uint64_t get64(const unsigned char *b) { uint64_t v = 0; for (int i = 0; i < 8; i++) v = v << 8 | b[i]; return v; }

static void serve_one(int c) {
  static char buf[CHUNK];
  unsigned char hdr[9];
  if (readn(c, hdr, 9)) return;
  uint64_t count = get64(hdr + 1);
  if (hdr[0] == 'U') {
    uint64_t got = 0;
    ssize_t r;
    while ((r = read(c, buf, sizeof buf)) > 0) got += r;
    put64(hdr, got);
    writen(c, hdr, 8);
  } else {
    memset(buf, 'x', sizeof buf);
    while (count) {
      size_t n = count < sizeof buf ? count : sizeof buf;
      if (writen(c, buf, n)) break;
      count -= n;
    }
  }
}

static int serve(int port) {
  int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(l, (struct sockaddr *)&sa, sizeof sa) || listen(l, 16)) { perror("bind"); return 1; }
  signal(SIGCHLD, SIG_IGN);
  for (;;) {
    int c = accept(l, NULL, NULL);
    if (c < 0) continue;
    if (fork() == 0) { close(l); serve_one(c); close(c); _exit(0); }
    close(c);
  }
}

static int client(int up, int port, long mib) {
  static char buf[CHUNK];
  uint64_t total = (uint64_t)mib << 20;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa)) { perror("connect"); return 1; }
  unsigned char hdr[9];
  hdr[0] = up ? 'U' : 'D';
  put64(hdr + 1, total);
  writen(fd, hdr, 9);
  double t0 = now();
  uint64_t moved = 0;
  if (up) {
    memset(buf, 'y', sizeof buf);
    while (moved < total) {
      size_t n = total - moved < sizeof buf ? total - moved : sizeof buf;
      if (writen(fd, buf, n)) { fprintf(stderr, "write failed\n"); return 1; }
      moved += n;
    }
    shutdown(fd, SHUT_WR);
    if (readn(fd, hdr, 8)) { fprintf(stderr, "no acknowledgement\n"); return 1; }
    moved = get64(hdr);
  } else {
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0) moved += r;
  }
  double dt = now() - t0;
  printf("%s %llu bytes in %.2f s: %.0f MB/s%s\n", up ? "up" : "down", (unsigned long long)moved, dt,
         moved / dt / 1e6, moved == total ? "" : " INCOMPLETE");
  return moved == total ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "serve")) return serve(atoi(argv[2]));
  if (argc == 4 && (!strcmp(argv[1], "up") || !strcmp(argv[1], "down")))
    return client(argv[1][0] == 'u', atoi(argv[2]), atol(argv[3]));
  fprintf(stderr, "usage: tcpbench serve PORT | tcpbench up|down PORT MIB\n");
  return 2;
}
