/* throughput: a one-session libssh2 port forwarder (like ssh -N -L) for measuring tunnel throughput.
 *
 *   throughput -p SSHPORT -k KEY [-u USER] -l LOCALPORT -t TARGETPORT [-n CONNECTIONS] [-c CIPHER] [-M MAC]
 *
 * Connects to sshd on 127.0.0.1:SSHPORT (KEX curve25519-sha256, cipher aes128-ctr and MAC hmac-sha2-256 unless
 * given), authenticates with KEY from memory, then serves CONNECTIONS (default 1) connections to 127.0.0.1:LOCALPORT
 * one after the other, each through its own direct-tcpip channel to 127.0.0.1:TARGETPORT. Relays with a poll loop
 * in non-blocking mode and 256 KiB reads, propagating EOF both ways. Drive it with tcpbench; after every connection
 * it prints the process CPU time that connection used. */
#include <libssh2.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF (256 * 1024)

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int tcp(int port, int listening) {
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (listening) {
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, 4)) { perror("bind"); exit(1); }
  } else if (connect(fd, (struct sockaddr *)&sa, sizeof sa)) { perror("connect"); exit(1); }
  return fd;
}

static void die(LIBSSH2_SESSION *s, const char *what, int rc) {
  char *m = NULL;
  libssh2_session_last_error(s, &m, NULL, 0);
  fprintf(stderr, "%s: %d %s\n", what, rc, m ? m : "");
  exit(1);
}

static int soft(ssize_t rc) { /* "try again later" results (see c-libraries.md §0) */
  return rc == LIBSSH2_ERROR_EAGAIN || rc == LIBSSH2_ERROR_BAD_USE || rc == LIBSSH2_ERROR_SOCKET_SEND;
}

static void relay(LIBSSH2_SESSION *s, int sfd, int lfd, int target) {
  LIBSSH2_CHANNEL *ch;
  while (!(ch = libssh2_channel_direct_tcpip(s, "127.0.0.1", target))) {
    if (libssh2_session_last_errno(s) != LIBSSH2_ERROR_EAGAIN) die(s, "direct-tcpip", -1);
    struct pollfd p = {sfd, POLLIN, 0};
    poll(&p, 1, 100);
  }
  fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK);
  static char up[BUF], down[BUF];
  size_t up_len = 0, up_off = 0, down_len = 0, down_off = 0;
  int local_eof = 0, eof_sent = 0, chan_eof = 0, local_shut = 0;
  while (!(eof_sent && local_shut)) {
    int progress = 0;
    /* local -> channel */
    if (up_off == up_len && !local_eof) {
      ssize_t r = read(lfd, up, BUF);
      if (r > 0) { up_len = r; up_off = 0; progress = 1; }
      else if (r == 0) { local_eof = 1; progress = 1; }
      else if (errno != EAGAIN) { perror("read"); local_eof = 1; }
    }
    while (up_off < up_len) {
      ssize_t w = libssh2_channel_write(ch, up + up_off, up_len - up_off);
      if (w > 0) { up_off += w; progress = 1; continue; }
      if (w == 0 || soft(w)) break;
      die(s, "channel_write", (int)w);
    }
    if (local_eof && up_off == up_len && !eof_sent) {
      int rc = libssh2_channel_send_eof(ch);
      if (rc == 0) { eof_sent = 1; progress = 1; }
      else if (!soft(rc)) die(s, "send_eof", rc);
    }
    /* channel -> local */
    if (down_off == down_len && !chan_eof) {
      ssize_t r = libssh2_channel_read(ch, down, BUF);
      if (r > 0) { down_len = r; down_off = 0; progress = 1; }
      else if (r == 0 && libssh2_channel_eof(ch)) { chan_eof = 1; progress = 1; }
      else if (r < 0 && !soft(r)) die(s, "channel_read", (int)r);
    }
    while (down_off < down_len) {
      ssize_t w = write(lfd, down + down_off, down_len - down_off);
      if (w > 0) { down_off += w; progress = 1; continue; }
      if (w < 0 && errno == EAGAIN) break;
      perror("write"); chan_eof = 1; down_off = down_len;
    }
    if (chan_eof && down_off == down_len && !local_shut) { shutdown(lfd, SHUT_WR); local_shut = 1; progress = 1; }
    if (progress) continue;
    struct pollfd p[2] = {{lfd, 0, 0}, {sfd, POLLIN, 0}};
    if (up_off == up_len && !local_eof) p[0].events |= POLLIN;
    if (down_off < down_len) p[0].events |= POLLOUT;
    if (libssh2_session_block_directions(s) & LIBSSH2_SESSION_BLOCK_OUTBOUND) p[1].events |= POLLOUT;
    poll(p, 2, 50);
  }
  while (libssh2_channel_close(ch) == LIBSSH2_ERROR_EAGAIN) { struct pollfd p = {sfd, POLLIN, 0}; poll(&p, 1, 50); }
  while (libssh2_channel_free(ch) == LIBSSH2_ERROR_EAGAIN) { struct pollfd p = {sfd, POLLIN, 0}; poll(&p, 1, 50); }
}

int main(int argc, char **argv) {
  int sshport = 0, lport = 0, target = 0, conns = 1, opt;
  const char *user = "sluice-e2e", *key = NULL, *cipher = "aes128-ctr", *mac = "hmac-sha2-256";
  while ((opt = getopt(argc, argv, "p:k:u:l:t:n:c:M:")) != -1) {
    switch (opt) {
    case 'p': sshport = atoi(optarg); break;
    case 'k': key = optarg; break;
    case 'u': user = optarg; break;
    case 'l': lport = atoi(optarg); break;
    case 't': target = atoi(optarg); break;
    case 'n': conns = atoi(optarg); break;
    case 'c': cipher = optarg; break;
    case 'M': mac = optarg; break;
    default: return 2;
    }
  }
  if (!sshport || !key || !lport || !target) { fprintf(stderr, "usage: see throughput.c\n"); return 2; }
  FILE *f = fopen(key, "rb");
  if (!f) { perror(key); return 1; }
  static char priv[65536];
  size_t privlen = fread(priv, 1, sizeof priv, f);
  fclose(f);

  libssh2_init(0);
  int lfd = tcp(lport, 1), sfd = tcp(sshport, 0);
  LIBSSH2_SESSION *s = libssh2_session_init();
  libssh2_session_method_pref(s, LIBSSH2_METHOD_KEX, "curve25519-sha256");
  libssh2_session_method_pref(s, LIBSSH2_METHOD_CRYPT_CS, cipher);
  libssh2_session_method_pref(s, LIBSSH2_METHOD_CRYPT_SC, cipher);
  libssh2_session_method_pref(s, LIBSSH2_METHOD_MAC_CS, mac);
  libssh2_session_method_pref(s, LIBSSH2_METHOD_MAC_SC, mac);
  int rc = libssh2_session_handshake(s, sfd);
  if (rc) die(s, "handshake", rc);
  rc = libssh2_userauth_publickey_frommemory(s, user, strlen(user), NULL, 0, priv, privlen, NULL);
  if (rc) die(s, "auth", rc);
  fprintf(stderr, "throughput: %s/%s, listening on %d\n", libssh2_session_methods(s, LIBSSH2_METHOD_CRYPT_CS),
          libssh2_session_methods(s, LIBSSH2_METHOD_MAC_CS), lport);
  libssh2_session_set_blocking(s, 0);
  for (int i = 0; i < conns; i++) {
    int c = accept(lfd, NULL, NULL);
    double c0 = cpu_seconds();
    relay(s, sfd, c, target);
    close(c);
    printf("connection %d: %.2f CPU-s\n", i + 1, cpu_seconds() - c0);
    fflush(stdout);
  }
  libssh2_session_set_blocking(s, 1);
  libssh2_session_disconnect(s, "done");
  libssh2_session_free(s);
  libssh2_exit();
  return 0;
}
