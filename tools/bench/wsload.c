/* wsload: the WebSocket load client of `make bench` (compiled at bench time).
 *
 *   wsload PORT PATH MODE BYTES [TOKEN ENDPOINT_PORT [SOURCE_HOST_ID]]
 * MODE: down (server -> client: asks the bload server behind the relay for BYTES), up (client -> server: BYTES in
 * 64 KiB binary frames, then waits for the server's count), openready (opens a stream, then a second one while the
 * first stays open, and prints both open -> ready times).
 * With TOKEN it speaks the Sluice C2S protocol (tunnels-api.md §9: Bearer JWT on the upgrade, {"type":"open",...}
 * text message, {"type":"ready"} answer); without it, plain binary frames (websockify).
 * Client frames are masked with the all-zero key, so the payload goes out without a copy or an XOR pass.
 * A refused upgrade prints "unavailable status=N" and exits 3. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define BUFSZ (512 * 1024)
#define FRAME (64 * 1024)

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) { fprintf(stderr, "wsload: %s: %s\n", what, errno ? strerror(errno) : "protocol"); exit(2); }

struct conn { int fd; unsigned char *buf; size_t start, end; };

static int port;
static const char *path, *token;
static int endpoint, host_id;

static int write_full(int fd, const void *b, size_t n) {
    while (n > 0) {
        ssize_t r = send(fd, b, n, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        b = (const char *)b + r;
        n -= (size_t)r;
    }
    return 0;
}

static int fill(struct conn *c) {
    if (c->start > 0 && c->start == c->end) c->start = c->end = 0;
    if (c->end == BUFSZ) {
        memmove(c->buf, c->buf + c->start, c->end - c->start);
        c->end -= c->start;
        c->start = 0;
    }
    for (;;) {
        ssize_t r = read(c->fd, c->buf + c->end, BUFSZ - c->end);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        c->end += (size_t)r;
        return 0;
    }
}

/* one masked client frame, header and payload in one writev */
static int send_frame(struct conn *c, int opcode, const void *data, size_t n) {
    unsigned char h[14];
    size_t hl = 2;
    h[0] = 0x80 | opcode;
    if (n < 126) h[1] = 0x80 | n;
    else if (n < 65536) { h[1] = 0x80 | 126; h[2] = n >> 8; h[3] = n & 0xff; hl = 4; }
    else { h[1] = 0x80 | 127; for (int i = 0; i < 8; i++) h[2 + i] = (uint64_t)n >> (56 - 8 * i); hl = 10; }
    memset(h + hl, 0, 4); /* mask key 0: payload unchanged */
    hl += 4;
    struct iovec v[2] = {{h, hl}, {(void *)data, n}};
    size_t total = hl + n;
    while (total > 0) {
        ssize_t r = writev(c->fd, v, 2);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        total -= (size_t)r;
        for (int i = 0; i < 2; i++) {
            size_t k = (size_t)r < v[i].iov_len ? (size_t)r : v[i].iov_len;
            v[i].iov_base = (char *)v[i].iov_base + k;
            v[i].iov_len -= k;
            r -= (ssize_t)k;
        }
    }
    return 0;
}

/* next server frame: opcode, payload pointer into the buffer (valid until the next call), length.
 * Payloads longer than the buffer are delivered in pieces with opcode 0 (continuation) after the first. */
static uint64_t pending_payload;
static int read_frame(struct conn *c, int *opcode, unsigned char **payload, size_t *len) {
    if (pending_payload > 0) {
        if (c->start == c->end && fill(c) < 0) return -1;
        size_t n = c->end - c->start;
        if (n > pending_payload) n = pending_payload;
        *opcode = 0; *payload = c->buf + c->start; *len = n;
        c->start += n;
        pending_payload -= n;
        return 0;
    }
    while (c->end - c->start < 2) if (fill(c) < 0) return -1;
    unsigned char *p = c->buf + c->start;
    size_t hl = 2;
    uint64_t n = p[1] & 0x7f;
    if (n == 126) hl = 4; else if (n == 127) hl = 10;
    if (p[1] & 0x80) hl += 4;
    while (c->end - c->start < hl) { if (fill(c) < 0) return -1; p = c->buf + c->start; }
    if (n == 126) n = (uint64_t)p[2] << 8 | p[3];
    else if (n == 127) { n = 0; for (int i = 0; i < 8; i++) n = n << 8 | p[2 + i]; }
    *opcode = p[0] & 0x0f;
    c->start += hl;
    if (c->start == c->end && n > 0 && fill(c) < 0) return -1;
    size_t have = c->end - c->start;
    if (n <= have || n > BUFSZ / 2) {
        size_t take = n < have ? n : have;
        *payload = c->buf + c->start; *len = take;
        c->start += take;
        pending_payload = n - take;
        return 0;
    }
    while (c->end - c->start < n) if (fill(c) < 0) return -1;   /* a small frame split over reads */
    *payload = c->buf + c->start; *len = n;
    c->start += n;
    return 0;
}

static struct conn *ws_open(double *ready_ms) {
    struct conn *c = calloc(1, sizeof *c);
    c->buf = malloc(BUFSZ);
    double t0 = now();
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
    char req[4096];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s%s%s\r\n",
                     path, port, token ? "Authorization: Bearer " : "", token ? token : "", token ? "\r\n" : "");
    if (write_full(c->fd, req, (size_t)n) < 0) die("upgrade");
    char *end = NULL;
    while (!end) {
        if (fill(c) < 0) { printf("unavailable status=closed\n"); exit(3); }
        c->buf[c->end < BUFSZ ? c->end : BUFSZ - 1] = 0;
        end = strstr((char *)c->buf, "\r\n\r\n");
    }
    int status = 0;
    sscanf((char *)c->buf, "HTTP/1.%*d %d", &status);
    if (status != 101) { printf("unavailable status=%d\n", status); exit(3); }
    c->start = (size_t)(end + 4 - (char *)c->buf);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (token) {
        char open[512];
        n = snprintf(open, sizeof open, "{\"type\":\"open\",\"tunnelConfig\":{\"sourceHostId\":%d,\"mode\":\"local\",\"endpointPort\":%d,"
                     "\"targetHost\":\"127.0.0.1\"}}", host_id, endpoint);
        if (send_frame(c, 1, open, (size_t)n) < 0) die("open");
        for (;;) {
            int op; unsigned char *p; size_t len;
            if (read_frame(c, &op, &p, &len) < 0) die("ready");
            if (op == 8) { printf("unavailable status=closed-before-ready\n"); exit(3); }
            if (op == 1) {
                char text[512];
                size_t k = len < sizeof text - 1 ? len : sizeof text - 1;
                memcpy(text, p, k); text[k] = 0;
                if (strstr(text, "\"ready\"")) break;
                if (strstr(text, "\"error\"")) {
                    for (char *q = text; *q; q++) if (*q == ' ') *q = '_';
                    printf("unavailable error=%s\n", text);
                    exit(3);
                }
            }
        }
    }
    if (ready_ms) *ready_ms = (now() - t0) * 1e3;
    int zero = 0;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &zero, sizeof zero);
    return c;
}

static void put64(unsigned char *p, uint64_t v) { for (int i = 7; i >= 0; i--) { p[i] = v & 0xff; v >>= 8; } }

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: wsload PORT PATH down|up|openready BYTES [TOKEN ENDPOINT_PORT]\n"); return 2; }
    port = atoi(argv[1]);
    path = argv[2];
    const char *mode = argv[3];
    uint64_t bytes = strtoull(argv[4], NULL, 10);
    if (argc > 6) { token = argv[5]; endpoint = atoi(argv[6]); }
    if (argc > 7) host_id = atoi(argv[7]);
    if (!strcmp(mode, "openready")) {
        double first, second;
        struct conn *a = ws_open(&first);
        struct conn *b = ws_open(&second);
        printf("first_ms=%.2f second_ms=%.2f\n", first, second);
        close(a->fd); close(b->fd);
        return 0;
    }
    struct conn *c = ws_open(NULL);
    unsigned char cmd[9];
    cmd[0] = !strcmp(mode, "up") ? 'R' : 'S';
    put64(cmd + 1, bytes);
    double t0 = now();
    if (send_frame(c, 2, cmd, 9) < 0) die("command");
    uint64_t got = 0;
    if (cmd[0] == 'S') {
        while (got < bytes) {
            int op; unsigned char *p; size_t len;
            if (read_frame(c, &op, &p, &len) < 0) break;
            if (op == 8) break;
            if (op == 0 || op == 2) got += len;
        }
    } else {
        unsigned char *data = malloc(FRAME);
        memset(data, 0xa5, FRAME);
        for (uint64_t left = bytes; left > 0;) {
            size_t n = left < FRAME ? left : FRAME;
            if (send_frame(c, 2, data, n) < 0) die("write");
            left -= n;
        }
        unsigned char ans[8];
        size_t have = 0;
        while (have < 8) {
            int op; unsigned char *p; size_t len;
            if (read_frame(c, &op, &p, &len) < 0 || op == 8) die("count");
            if (op == 0 || op == 2) { size_t k = len < 8 - have ? len : 8 - have; memcpy(ans + have, p, k); have += k; }
        }
        for (int i = 0; i < 8; i++) got = got << 8 | ans[i];
    }
    double dt = now() - t0;
    printf("bytes=%llu seconds=%.4f mbps=%.1f ok=%d\n", (unsigned long long)got, dt, got / dt / 1e6, got == bytes);
    /* close frame, then leave */
    unsigned char code[2] = {0x03, 0xe8};
    send_frame(c, 8, code, 2);
    close(c->fd);
    return got == bytes ? 0 : 1;
}
