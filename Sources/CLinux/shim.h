/* libc for Swift without `import Glibc` (not available in Embedded Swift). Macros, TLS errno and types that differ
 * between glibc and musl are wrapped here so the Swift side never depends on either. */
#ifndef SLUICE_CLINUX_SHIM_H
#define SLUICE_CLINUX_SHIM_H
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <dirent.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/uio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sys/resource.h>
#include <sys/random.h>
#include <sys/ioctl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <netdb.h>

static inline int clinux_errno(void) { return errno; }
static inline void clinux_set_errno(int e) { errno = e; }

/* enums in glibc, macros in musl */
static const int CL_SOCK_STREAM = SOCK_STREAM;
static const int CL_SOCK_DGRAM = SOCK_DGRAM;
static const int CL_SOCK_NONBLOCK = SOCK_NONBLOCK;
static const int CL_SOCK_CLOEXEC = SOCK_CLOEXEC;
static const int CL_IPPROTO_TCP = IPPROTO_TCP;
/* epoll events: enum members in glibc, macros in musl */
static const uint32_t CL_EPOLLIN = EPOLLIN;
static const uint32_t CL_EPOLLOUT = EPOLLOUT;
static const uint32_t CL_EPOLLERR = EPOLLERR;
static const uint32_t CL_EPOLLHUP = EPOLLHUP;
static const uint32_t CL_EPOLLRDHUP = EPOLLRDHUP;

/* pthread_t is an integer in glibc and a pointer in musl: keep it opaque */
typedef void *(*cl_thread_fn)(void *);
static inline void *cl_thread_spawn(cl_thread_fn fn, void *arg) {
    pthread_t *t = malloc(sizeof *t);
    if (t == NULL) return NULL;
    if (pthread_create(t, NULL, fn, arg) != 0) { free(t); return NULL; }
    return t;
}
static inline int cl_thread_join(void *h) { pthread_t *t = h; int rc = pthread_join(*t, NULL); free(t); return rc; }

/* pthread_mutex_t is a union that Swift cannot initialise portably */
static inline pthread_mutex_t *cl_mutex_new(void) {
    pthread_mutex_t *m = malloc(sizeof *m);
    if (m != NULL) pthread_mutex_init(m, NULL);
    return m;
}
static inline void cl_mutex_free(pthread_mutex_t *m) { pthread_mutex_destroy(m); free(m); }

/* argv: CommandLine does not exist in Embedded Swift, and musl passes nothing to constructors.
 * Returns a malloc'd copy of /proc/self/cmdline (NUL-separated); *len receives its size. */
static inline char *cl_read_cmdline(size_t *len) {
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
        if (n == cap) {
            if (cap >= (1u << 20)) break;
            char *bigger = realloc(buf, cap * 2);
            if (bigger == NULL) { free(buf); buf = NULL; break; }
            buf = bigger; cap *= 2;
        }
    }
    close(fd);
    *len = n;
    return buf;
}

/* signal sets are macros or arrays depending on the libc */
static inline int cl_block_signals(const int *sigs, int count) {
    sigset_t set; sigemptyset(&set);
    for (int i = 0; i < count; i++) sigaddset(&set, sigs[i]);
    return pthread_sigmask(SIG_BLOCK, &set, NULL);
}
/* Waits up to timeout_ms for one of the blocked signals; returns it, or 0 on timeout. */
static inline int cl_wait_signal(const int *sigs, int count, long timeout_ms) {
    sigset_t set; sigemptyset(&set);
    for (int i = 0; i < count; i++) sigaddset(&set, sigs[i]);
    struct timespec ts = { timeout_ms / 1000, (timeout_ms % 1000) * 1000000L };
    int s = sigtimedwait(&set, NULL, &ts);
    return s < 0 ? 0 : s;
}

/* Turns terminal echo on fd off (on = 0) or back (on = 1); returns the previous state, or -1 when not a tty. */
#include <termios.h>
static inline int cl_echo(int fd, int on) {
    struct termios t;
    if (tcgetattr(fd, &t) != 0) return -1;
    int was = (t.c_lflag & ECHO) ? 1 : 0;
    if (on) t.c_lflag |= ECHO; else t.c_lflag &= ~(tcflag_t)ECHO;
    tcsetattr(fd, TCSANOW, &t);
    return was;
}

/* open(2) is variadic, so Swift cannot call it */
static inline int cl_open(const char *path, int flags, unsigned mode) { return open(path, flags | O_CLOEXEC, mode); }

/* SIG_IGN is a cast macro Swift cannot import */
static inline void cl_ignore_sigpipe(void) { signal(SIGPIPE, SIG_IGN); }

static inline int cl_stat_mode(const char *path, unsigned *mode) {
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    *mode = st.st_mode;
    return 0;
}

/* TCP relay (Relay/Net, Relay/Splice): accept4 and F_SETPIPE_SZ are GNU extensions too; SHUT_WR is an enum in glibc */
#if !defined(_GNU_SOURCE)
extern int accept4(int, struct sockaddr *, socklen_t *, int);
#endif
static const int CL_SHUT_WR = SHUT_WR;
/* glibc declares these as enum members, musl as macros */
static const int CL_MSG_NOSIGNAL = MSG_NOSIGNAL;
static const int CL_MSG_MORE = MSG_MORE;
static const int CL_SHUT_RDWR = SHUT_RDWR;
/* one end per session of a managed tunnel (a stream between two SSH sessions) */
static inline int cl_socketpair(int *sv) { return socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv); }
static inline int cl_accept(int fd) { return accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC); }
/* The soft RLIMIT_NOFILE (0 when unknown). */
static inline long cl_fd_limit(void) { struct rlimit r; return getrlimit(RLIMIT_NOFILE, &r) == 0 ? (long)r.rlim_cur : 0; }
static inline int cl_set_int_option(int fd, int level, int name, int value) {
    return setsockopt(fd, level, name, &value, sizeof value);
}
/* the round trip of a TCP socket's path in microseconds: the kernel's minimum RTT seen (tcpi_min_rtt, Linux 4.9+;
   the smoothed RTT also counts the peer's delayed ACKs), else its smoothed RTT; -1 when `fd` is not a TCP socket.
   Read as the kernel's ABI lays out struct tcp_info (tcpi_rtt is 32-bit word 17, tcpi_min_rtt word 37), since not
   every sysroot's <netinet/tcp.h> declares the struct. */
#ifndef TCP_INFO
#define TCP_INFO 11
#endif
static inline int64_t cl_tcp_rtt_us(int fd) {
    uint32_t info[64]; socklen_t n = sizeof info;
    memset(info, 0, sizeof info);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, info, &n) != 0 || n < 18 * sizeof(uint32_t)) return -1;
    if (n >= 38 * sizeof(uint32_t) && info[37] != 0 && info[37] != 0xFFFFFFFFu) return (int64_t)info[37];
    return (int64_t)info[17];
}
/* the pending error of a non-blocking connect (0: connected) */
static inline int cl_socket_error(int fd) {
    int e = 0; socklen_t n = sizeof e;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &n) != 0) return errno;
    return e;
}
static inline int cl_local_port(int fd) {
    struct sockaddr_storage ss; socklen_t n = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &n) != 0) return -1;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}
static inline int cl_set_pipe_size(int fd, int size) { return fcntl(fd, 1031 /* F_SETPIPE_SZ */, size); }
/* Blocking name lookup (worker threads only): numeric addresses, NUL-separated, into out; returns the bytes used,
 * or -1 when the name does not resolve. Static glibc answers from /etc/hosts and DNS only (no NSS modules). */
/* glibc: host lookups use its built-in "files" and "dns" services only, whatever /etc/nsswitch.conf says. A static
 * binary cannot load NSS modules safely (a module such as Raspberry Pi OS's mdns4_minimal would be dlopen'ed with
 * the board's shared libc beside our static one); since glibc 2.34 files and dns are part of libc itself, so this
 * needs no module at all and answers the same on every board. musl reads /etc/hosts and resolv.conf itself. */
#if defined(__GLIBC__)
extern int __nss_configure_lookup(const char *dbname, const char *service_line);
static inline int cl_resolver_configure(void) { return __nss_configure_lookup("hosts", "files dns"); }
#else
static inline int cl_resolver_configure(void) { return 0; }
#endif
static inline int cl_resolve(const char *name, char *out, size_t cap) {
    struct addrinfo hints, *res = NULL, *p;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(name, NULL, &hints, &res) != 0) return -1;
    size_t used = 0;
    for (p = res; p != NULL; p = p->ai_next) {
        char text[INET6_ADDRSTRLEN];
        const void *a = p->ai_family == AF_INET ? (const void *)&((struct sockaddr_in *)p->ai_addr)->sin_addr
                      : p->ai_family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)p->ai_addr)->sin6_addr : NULL;
        if (a == NULL || inet_ntop(p->ai_family, a, text, sizeof text) == NULL) continue;
        size_t len = strlen(text);
        if (used + len + 1 > cap) break;
        memcpy(out + used, text, len + 1);
        used += len + 1;
    }
    freeaddrinfo(res);
    return used == 0 ? -1 : (int)used;
}
/* ioctl is variadic */
static inline int cl_fionread(int fd) { int n = 0; return ioctl(fd, FIONREAD, &n) == 0 ? n : 0; }

/* splice: glibc hides it behind _GNU_SOURCE, which breaks the socket prototypes for Swift */
#ifndef SPLICE_F_MOVE
#define SPLICE_F_MOVE 1
#define SPLICE_F_NONBLOCK 2
#define SPLICE_F_MORE 4
#define SPLICE_F_GIFT 8
extern ssize_t splice(int, long long *, int, long long *, size_t, unsigned int);
extern ssize_t tee(int, int, size_t, unsigned int);
extern int pipe2(int pipefd[2], int flags);
#endif
#endif
