/* delayline: a fixed one-way delay between the root network namespace and a private one, for `make bench`.
 *
 *     delayline NETNS DELAY_US IF_ROOT IF_NS
 *
 * Creates the TUN device IF_ROOT here and IF_NS inside /run/netns/NETNS, prints "ready" and then moves every IP
 * packet read from one device to the other DELAY_US microseconds later, in order, dropping none (the kernel's TCP on
 * both sides sees a real round trip of 2 × DELAY_US: this kernel has no netem). The caller gives the devices their
 * addresses (point-to-point) and brings them up. A direction whose queue is full (QUEUE packets in flight) stops
 * being read: the TUN device's own queue then holds the packets. Ends on SIGTERM/SIGINT or when stdin closes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define SLOT 65536                      /* the largest packet a TUN device hands out (MTU <= 65535) */
#define QUEUE 8192                      /* packets in flight per direction: 512 MiB of address space, touched as used */

struct line {
    int in, out;
    unsigned char *data;                /* QUEUE slots of SLOT bytes */
    uint64_t due[QUEUE];
    uint32_t len[QUEUE];
    unsigned head, count;
    uint64_t moved, failed;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig) { (void)sig; stop = 1; }

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int tun(const char *name) {
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads every packet waiting (up to a full queue), each due `delay` from now. */
static int take(struct line *l, uint64_t delay) {
    while (l->count < QUEUE) {
        unsigned slot = (l->head + l->count) % QUEUE;
        ssize_t n = read(l->in, l->data + (size_t)slot * SLOT, SLOT);
        if (n < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
        l->due[slot] = now_ns() + delay;
        l->len[slot] = (uint32_t)n;
        l->count++;
    }
    return 0;
}

/* Writes every packet whose time has come; returns ns until the next one is due (or -1 for none). */
static int64_t give(struct line *l) {
    uint64_t now = now_ns();
    while (l->count) {
        unsigned slot = l->head;
        if (l->due[slot] > now) return (int64_t)(l->due[slot] - now);
        /* a TUN write hands the packet to the stack at once (no EAGAIN); what the stack then does with it is what
           a real link's receiver would do */
        if (write(l->out, l->data + (size_t)slot * SLOT, l->len[slot]) < 0) l->failed++;
        l->head = (l->head + 1) % QUEUE;
        l->count--;
        l->moved++;
    }
    return -1;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: delayline NETNS DELAY_US IF_ROOT IF_NS\n");
        return 2;
    }
    uint64_t delay = strtoull(argv[2], NULL, 10) * 1000u;
    int root = tun(argv[3]);
    if (root < 0) {
        perror("tun (root namespace)");
        return 1;
    }
    char path[256];
    snprintf(path, sizeof path, "/run/netns/%s", argv[1]);
    int ns = open(path, O_RDONLY | O_CLOEXEC);
    if (ns < 0 || setns(ns, CLONE_NEWNET) < 0) {
        perror(path);
        return 1;
    }
    int far = tun(argv[4]);
    if (far < 0) {
        perror("tun (private namespace)");
        return 1;
    }
    static struct line lines[2];
    lines[0].in = root;
    lines[0].out = far;
    lines[1].in = far;
    lines[1].out = root;
    for (int i = 0; i < 2; i++) {
        lines[i].data = malloc((size_t)QUEUE * SLOT);
        if (!lines[i].data) {
            perror("malloc");
            return 1;
        }
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    printf("ready\n");
    fflush(stdout);
    while (!stop) {
        int64_t wait = -1;
        for (int i = 0; i < 2; i++) {
            int64_t w = give(&lines[i]);
            if (w >= 0 && (wait < 0 || w < wait)) wait = w;
        }
        struct pollfd p[3] = {{root, lines[0].count < QUEUE ? POLLIN : 0, 0},
                              {far, lines[1].count < QUEUE ? POLLIN : 0, 0},
                              {0, POLLIN, 0}};
        struct timespec t = {(time_t)(wait / 1000000000), (long)(wait % 1000000000)};
        int r = ppoll(p, 3, wait < 0 ? NULL : &t, NULL);
        if (r < 0 && errno != EINTR) break;
        if (p[2].revents) break;                            /* stdin closed: the bench is gone */
        for (int i = 0; i < 2; i++) {
            if (p[i].revents & POLLIN && take(&lines[i], delay) < 0) {
                perror("read");
                stop = 1;
            }
        }
    }
    fprintf(stderr, "delayline: moved %llu / %llu packets, %llu / %llu refused by the stack\n",
            (unsigned long long)lines[0].moved, (unsigned long long)lines[1].moved,
            (unsigned long long)lines[0].failed, (unsigned long long)lines[1].failed);
    return 0;
}
