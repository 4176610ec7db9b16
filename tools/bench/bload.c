/* bload: the load generator of `make bench` (compiled at bench time; never a Python data mover).
 *
 *   bload serve PORT                      target server, one thread per connection. Each connection starts with a
 *                                         9-byte command: 'S' + u64 n (send n bytes, then close), 'R' + u64 n (read
 *                                         n bytes or to EOF, answer the u64 count), 'E' (echo until EOF).
 *   bload up   PORT BYTES STREAMS [SOCKS_DST_PORT]   client -> server, BYTES split over STREAMS connections
 *   bload down PORT BYTES STREAMS [SOCKS_DST_PORT]   server -> client
 *   bload rr   PORT COUNT [SOCKS_DST_PORT]            1-byte request/response, prints p50/p99 in microseconds
 *   bload hold PORT N                      opens N echo connections, checks each, prints "ready", holds until stdin EOF
 * Clients connect to 127.0.0.1:PORT; with SOCKS_DST_PORT they speak SOCKS5 there first (to 127.0.0.1:DST).
 * BLOAD_ADDR (an IPv4 address) replaces 127.0.0.1 for `serve`'s bind and the clients' connect (the delay line).
 * Output is one line of key=value pairs. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (256 * 1024)

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) { fprintf(stderr, "bload: %s: %s\n", what, strerror(errno)); exit(2); }

static int read_full(int fd, void *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

static int write_full(int fd, const void *buf, size_t n) {
    size_t put = 0;
    while (put < n) {
        ssize_t r = send(fd, (const char *)buf + put, n - put, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        put += (size_t)r;
    }
    return 0;
}

static void put64(unsigned char *p, uint64_t v) { for (int i = 7; i >= 0; i--) { p[i] = v & 0xff; v >>= 8; } }
static uint64_t get64(const unsigned char *p) { uint64_t v = 0; for (int i = 0; i < 8; i++) v = v << 8 | p[i]; return v; }

/* ---- server ---- */
static void *serve_one(void *arg) {
    int fd = (int)(intptr_t)arg;
    unsigned char cmd[9];
    char *buf = malloc(CHUNK);
    memset(buf, 0x5a, CHUNK);
    if (read_full(fd, cmd, 1) == 0) {
        if (cmd[0] == 'S' && read_full(fd, cmd + 1, 8) == 0) {
            uint64_t left = get64(cmd + 1);
            while (left > 0) {
                size_t n = left < CHUNK ? left : CHUNK;
                if (write_full(fd, buf, n) < 0) break;
                left -= n;
            }
            shutdown(fd, SHUT_WR);
            while (read(fd, buf, CHUNK) > 0) {}
        } else if (cmd[0] == 'R' && read_full(fd, cmd + 1, 8) == 0) {
            uint64_t want = get64(cmd + 1), got = 0;
            while (got < want) {
                size_t ask = want - got < CHUNK ? want - got : CHUNK;
                ssize_t r = read(fd, buf, ask);
                if (r < 0 && errno == EINTR) continue;
                if (r <= 0) break;
                got += (uint64_t)r;
            }
            unsigned char ans[8];
            put64(ans, got);
            write_full(fd, ans, 8);
        } else if (cmd[0] == 'E') {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            for (;;) {
                ssize_t r = read(fd, buf, CHUNK);
                if (r < 0 && errno == EINTR) continue;
                if (r <= 0 || write_full(fd, buf, (size_t)r) < 0) break;
            }
        }
    }
    free(buf);
    close(fd);
    return NULL;
}

static in_addr_t address(void) {
    const char *text = getenv("BLOAD_ADDR");
    struct in_addr a = {htonl(INADDR_LOOPBACK)};
    if (text && inet_pton(AF_INET, text, &a) != 1) { fprintf(stderr, "bload: BLOAD_ADDR %s\n", text); exit(2); }
    return a.s_addr;
}

static int serve(int port) __attribute__((noreturn));
static int serve(int port) {
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = address()};
    if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
    if (listen(ls, 4096) < 0) die("listen");
    printf("listening port=%d\n", port);
    fflush(stdout);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (;;) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0) { if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE) continue; die("accept"); }
        pthread_t t;
        if (pthread_create(&t, &attr, serve_one, (void *)(intptr_t)fd) != 0) close(fd);
    }
}

/* ---- clients ---- */
static int g_port, g_socks;

static int dial(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(g_port), .sin_addr.s_addr = address()};
    for (int tries = 0;; tries++) {
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) break;
        if (tries > 50) die("connect");
        close(fd);
        fd = socket(AF_INET, SOCK_STREAM, 0);
        usleep(20000);
    }
    if (g_socks) {
        unsigned char hello[3] = {5, 1, 0}, ans[10];
        unsigned char req[10] = {5, 1, 0, 1, 127, 0, 0, 1, (unsigned char)(g_socks >> 8), (unsigned char)g_socks};
        if (write_full(fd, hello, 3) < 0 || read_full(fd, ans, 2) < 0 || ans[1] != 0) { fprintf(stderr, "bload: socks greeting\n"); exit(2); }
        if (write_full(fd, req, 10) < 0 || read_full(fd, ans, 10) < 0 || ans[1] != 0) { fprintf(stderr, "bload: socks connect\n"); exit(2); }
    }
    return fd;
}

struct job { uint64_t bytes; int up; uint64_t done; };

static void *transfer(void *arg) {
    struct job *j = arg;
    int fd = dial();
    char *buf = malloc(CHUNK);
    memset(buf, 0xa5, CHUNK);
    unsigned char cmd[9];
    cmd[0] = j->up ? 'R' : 'S';
    put64(cmd + 1, j->bytes);
    if (write_full(fd, cmd, 9) < 0) die("command");
    if (j->up) {
        uint64_t left = j->bytes;
        while (left > 0) {
            size_t n = left < CHUNK ? left : CHUNK;
            if (write_full(fd, buf, n) < 0) die("write");
            left -= n;
        }
        unsigned char ans[8];
        if (read_full(fd, ans, 8) < 0) die("count");
        j->done = get64(ans);
    } else {
        uint64_t got = 0;
        for (;;) {
            ssize_t r = read(fd, buf, CHUNK);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            got += (uint64_t)r;
        }
        j->done = got;
    }
    close(fd);
    free(buf);
    return NULL;
}

static int bulk(int up, uint64_t bytes, int streams) {
    struct job jobs[256];
    pthread_t th[256];
    if (streams < 1 || streams > 256) streams = 1;
    double t0 = now();
    for (int i = 0; i < streams; i++) {
        jobs[i] = (struct job){bytes / streams, up, 0};
        pthread_create(&th[i], NULL, transfer, &jobs[i]);
    }
    uint64_t total = 0;
    for (int i = 0; i < streams; i++) { pthread_join(th[i], NULL); total += jobs[i].done; }
    double dt = now() - t0;
    uint64_t want = (bytes / streams) * streams;
    printf("bytes=%llu seconds=%.4f mbps=%.1f ok=%d\n", (unsigned long long)total, dt, total / dt / 1e6, total == want);
    return total == want ? 0 : 1;
}

static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }

static int rr(int count) {
    int fd = dial(), one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (write_full(fd, "E", 1) < 0) die("command");
    double *lat = malloc(sizeof(double) * count);
    char c = 'x';
    int warm = count / 10 + 10;
    for (int i = -warm; i < count; i++) {
        double t = now();
        if (write_full(fd, &c, 1) < 0 || read_full(fd, &c, 1) < 0) die("rr");
        if (i >= 0) lat[i] = (now() - t) * 1e6;
    }
    qsort(lat, count, sizeof(double), cmp);
    printf("count=%d p50_us=%.1f p99_us=%.1f\n", count, lat[count / 2], lat[(int)(count * 0.99)]);
    close(fd);
    return 0;
}

static int hold(int n) {
    struct rlimit rl = {65536, 65536};
    setrlimit(RLIMIT_NOFILE, &rl);
    int *fds = malloc(sizeof(int) * n);
    for (int i = 0; i < n; i++) {
        fds[i] = dial();
        char c = 'h';
        if (write_full(fds[i], "E", 1) < 0 || write_full(fds[i], &c, 1) < 0 || read_full(fds[i], &c, 1) < 0 || c != 'h') {
            fprintf(stderr, "bload: connection %d not forwarded\n", i);
            return 1;
        }
    }
    printf("ready connections=%d\n", n);
    fflush(stdout);
    char b[64];
    while (read(0, b, sizeof b) > 0) {}
    for (int i = 0; i < n; i++) close(fds[i]);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: see the header of bload.c\n"); return 2; }
    const char *mode = argv[1];
    if (!strcmp(mode, "serve")) return serve(atoi(argv[2]));
    g_port = atoi(argv[2]);
    if (!strcmp(mode, "up") || !strcmp(mode, "down")) {
        if (argc < 5) return 2;
        if (argc > 5) g_socks = atoi(argv[5]);
        return bulk(!strcmp(mode, "up"), strtoull(argv[3], NULL, 10), atoi(argv[4]));
    }
    if (!strcmp(mode, "rr")) { if (argc > 4) g_socks = atoi(argv[4]); return rr(atoi(argv[3])); }
    if (!strcmp(mode, "hold")) return hold(atoi(argv[3]));
    return 2;
}
