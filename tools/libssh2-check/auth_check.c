/* auth_check: public-key authentication (and optionally a cipher round trip) of libssh2 against an sshd.
 *
 *   auth_check [-p PORT] [-u USER] [-m memory|file|both] [-P] [-H HOSTKEY_ALGS] [-c CIPHER] [-M MAC] [-e BYTES]
 *              KEY[:PASSPHRASE]...
 *
 * For every key and mode: blocking session to 127.0.0.1:PORT -> handshake -> libssh2_userauth_publickey_frommemory
 * (private key only, public key derived; with -P also KEY.pub) or _fromfile_ex (public key file NULL, or KEY.pub
 * with -P) -> exec "echo ok". With -e BYTES the
 * session also runs "cat" and checks that BYTES of random data come back unchanged (exercises the cipher both ways;
 * -c forces the cipher, -M the MAC of both directions). One line per attempt; exit status 1 when any attempt failed. */
#include <libssh2.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int port = 22;
static const char *user = "sluice-e2e", *hostkey_algs, *cipher, *mac;
static long echo_bytes;
static int with_pub; /* -P: pass KEY.pub as well (default: public key derived from the private key) */

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = malloc(1 << 20);
  *len = fread(buf, 1, 1 << 20, f);
  fclose(f);
  return buf;
}

static int connect_local(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) { perror("connect"); exit(2); }
  return fd;
}

static const char *errmsg(LIBSSH2_SESSION *s) {
  char *m = NULL;
  libssh2_session_last_error(s, &m, NULL, 0);
  return m ? m : "";
}

static int exec_echo(LIBSSH2_SESSION *s, char *out, size_t outlen) {
  LIBSSH2_CHANNEL *ch = libssh2_channel_open_session(s);
  if (!ch) return -1;
  if (libssh2_channel_exec(ch, "echo ok") != 0) return -2;
  ssize_t n, got = 0;
  while ((n = libssh2_channel_read(ch, out + got, outlen - 1 - got)) > 0) got += n;
  out[got] = 0;
  if (got && out[got - 1] == '\n') out[got - 1] = 0;
  libssh2_channel_close(ch);
  libssh2_channel_free(ch);
  return strcmp(out, "ok") == 0 ? 0 : -3;
}

/* "cat" round trip of random bytes: writes and reads interleaved in non-blocking mode */
static int echo_check(LIBSSH2_SESSION *s, long total) {
  LIBSSH2_CHANNEL *ch = libssh2_channel_open_session(s);
  if (!ch || libssh2_channel_exec(ch, "cat") != 0) return -1;
  unsigned char *src = malloc(total), *dst = malloc(total);
  FILE *r = fopen("/dev/urandom", "rb");
  if (fread(src, 1, total, r) != (size_t)total) return -2;
  fclose(r);
  libssh2_session_set_blocking(s, 0);
  long wrote = 0, got = 0;
  int eof_sent = 0;
  while (got < total) {
    int progress = 0;
    if (wrote < total) {
      ssize_t w = libssh2_channel_write(ch, (char *)src + wrote, total - wrote > 65536 ? 65536 : total - wrote);
      if (w > 0) { wrote += w; progress = 1; }
      else if (w < 0 && w != LIBSSH2_ERROR_EAGAIN && w != LIBSSH2_ERROR_BAD_USE) return (int)w;
    } else if (!eof_sent) {
      int rc = libssh2_channel_send_eof(ch);
      if (rc == 0) eof_sent = 1; else if (rc != LIBSSH2_ERROR_EAGAIN) return rc;
    }
    ssize_t n = libssh2_channel_read(ch, (char *)dst + got, total - got);
    if (n > 0) { got += n; progress = 1; }
    else if (n < 0 && n != LIBSSH2_ERROR_EAGAIN && n != LIBSSH2_ERROR_SOCKET_SEND) return (int)n;
    else if (n == 0 && libssh2_channel_eof(ch)) break;
    if (!progress) usleep(200);
  }
  libssh2_session_set_blocking(s, 1);
  int ok = got == total && memcmp(src, dst, total) == 0;
  libssh2_channel_close(ch);
  libssh2_channel_free(ch);
  free(src); free(dst);
  return ok ? 0 : -4;
}

static int attempt(const char *spec, int from_file) {
  char path[4096];
  snprintf(path, sizeof path, "%s", spec);
  char *pass = strchr(path, ':');
  if (pass) *pass++ = 0;
  int fd = connect_local();
  LIBSSH2_SESSION *s = libssh2_session_init();
  if (hostkey_algs && libssh2_session_method_pref(s, LIBSSH2_METHOD_HOSTKEY, hostkey_algs) != 0) {
    printf("%-28s %-6s method_pref(HOSTKEY, %s) failed: %s\n", spec, from_file ? "file" : "memory", hostkey_algs,
           errmsg(s));
    return 1;
  }
  if (cipher && (libssh2_session_method_pref(s, LIBSSH2_METHOD_CRYPT_CS, cipher) != 0 ||
                 libssh2_session_method_pref(s, LIBSSH2_METHOD_CRYPT_SC, cipher) != 0)) {
    printf("%-28s cipher %s not supported: %s\n", spec, cipher, errmsg(s));
    return 1;
  }
  if (mac && (libssh2_session_method_pref(s, LIBSSH2_METHOD_MAC_CS, mac) != 0 ||
              libssh2_session_method_pref(s, LIBSSH2_METHOD_MAC_SC, mac) != 0)) {
    printf("%-28s mac %s not supported: %s\n", spec, mac, errmsg(s));
    return 1;
  }
  int rc = libssh2_session_handshake(s, fd);
  if (rc) {
    printf("%-28s %-6s handshake %d %s\n", spec, from_file ? "file" : "memory", rc, errmsg(s));
    return 1;
  }
  const char *hk = libssh2_session_methods(s, LIBSSH2_METHOD_HOSTKEY);
  const char *cr = libssh2_session_methods(s, LIBSSH2_METHOD_CRYPT_CS);
  const char *ma = libssh2_session_methods(s, LIBSSH2_METHOD_MAC_SC);
  char pubpath[4200];
  snprintf(pubpath, sizeof pubpath, "%s.pub", path);
  if (from_file) {
    rc = libssh2_userauth_publickey_fromfile_ex(s, user, strlen(user), with_pub ? pubpath : NULL, path, pass);
  } else {
    size_t len = 0, publen = 0;
    char *priv = slurp(path, &len), *pub = with_pub ? slurp(pubpath, &publen) : NULL;
    if (!priv || (with_pub && !pub)) { perror(path); return 1; }
    rc = libssh2_userauth_publickey_frommemory(s, user, strlen(user), pub, publen, priv, len, pass);
    free(priv);
    free(pub);
  }
  char out[256] = "";
  int failed = 0;
  if (rc == 0) {
    int e = exec_echo(s, out, sizeof out);
    if (e) { snprintf(out, sizeof out, "exec failed %d %s", e, errmsg(s)); failed = 1; }
  } else {
    snprintf(out, sizeof out, "auth rc=%d %s", rc, errmsg(s));
    failed = 1;
  }
  char echo[64] = "";
  if (!failed && echo_bytes) {
    int e = echo_check(s, echo_bytes);
    snprintf(echo, sizeof echo, " echo %ld B: %s", echo_bytes, e ? "FAILED" : "ok");
    if (e) { failed = 1; fprintf(stderr, "echo rc %d %s\n", e, errmsg(s)); }
  }
  printf("%-28s %-6s%s hostkey=%-20s cipher=%-12s%s%s %s%s\n", spec, from_file ? "file" : "memory", with_pub ? "+pub" : "",
         hk ? hk : "?", cr ? cr : "?", mac ? " mac=" : "", mac ? (ma ? ma : "?") : "", rc == 0 ? (failed ? out : "OK (echo ok)") : out, echo);
  libssh2_session_disconnect(s, "bye");
  libssh2_session_free(s);
  close(fd);
  return failed;
}

int main(int argc, char **argv) {
  const char *mode = "both";
  int opt;
  while ((opt = getopt(argc, argv, "p:u:m:PH:c:M:e:")) != -1) {
    switch (opt) {
    case 'p': port = atoi(optarg); break;
    case 'u': user = optarg; break;
    case 'm': mode = optarg; break;
    case 'P': with_pub = 1; break;
    case 'H': hostkey_algs = optarg; break;
    case 'c': cipher = optarg; break;
    case 'M': mac = optarg; break;
    case 'e': echo_bytes = atol(optarg); break;
    default: fprintf(stderr, "usage: see the comment at the top of auth_check.c\n"); return 2;
    }
  }
  libssh2_init(0);
  int failures = 0;
  for (int i = optind; i < argc; i++) {
    if (strcmp(mode, "file") != 0) failures += attempt(argv[i], 0);
    if (strcmp(mode, "memory") != 0) failures += attempt(argv[i], 1);
  }
  libssh2_exit();
  return failures ? 1 : 0;
}
