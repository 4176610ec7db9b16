/* libssh2: its function-like macros wrapped as functions Swift can call. */
#ifndef SLUICE_CSSH2_SHIM_H
#define SLUICE_CSSH2_SHIM_H
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <libssh2.h>
#if defined(__x86_64__)
#include <cpuid.h>
#elif defined(__aarch64__)
#include <sys/auxv.h>
#endif

/* 1 when the CPU has AES instructions with carry-less multiply (what AES-GCM needs to be fast): x86 AES-NI and
   PCLMULQDQ from CPUID leaf 1 (masked by OPENSSL_ia32cap's first word as OpenSSL masks it, so both agree under a
   "no AES instructions" run), or the ARMv8 crypto extensions' AES and PMULL from AT_HWCAP. */
static inline int cssh2_cpu_has_aes(void) {
#if defined(__x86_64__)
    unsigned int a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    unsigned long long caps = ((unsigned long long)c << 32) | d;
    const char *env = getenv("OPENSSL_ia32cap");
    if (env && *env && *env != ':') {
        int invert = *env == '~';
        unsigned long long v = strtoull(env + invert, NULL, 0);
        caps = invert ? (caps & ~v) : v;
    }
    return (int)((caps >> 57) & 1) && (int)((caps >> 33) & 1);
#elif defined(__aarch64__)
    unsigned long hw = getauxval(AT_HWCAP);
    return (hw & (1UL << 3)) != 0 && (hw & (1UL << 4)) != 0;   /* HWCAP_AES, HWCAP_PMULL */
#else
    return 0;
#endif
}

/* The negotiated method of a kind (LIBSSH2_METHOD_*), or "" before the handshake. */
static inline const char *cssh2_method(LIBSSH2_SESSION *s, int kind) {
    const char *m = libssh2_session_methods(s, kind);
    return m ? m : "";
}

static inline const char *cssh2_version(void) { return libssh2_version(0); }
/* The ciphers this libssh2 build can negotiate, comma-separated into out (its crypto backend decides: AES-GCM is
   not there on mbedTLS). Returns how many were written, or -1 when libssh2 could not say. */
static inline int cssh2_supported_ciphers(char *out, size_t outlen) {
    if (outlen == 0) return -1;
    out[0] = 0;
    LIBSSH2_SESSION *s = libssh2_session_init_ex(NULL, NULL, NULL, NULL);
    if (!s) return -1;
    const char **algs = NULL;
    int n = libssh2_session_supported_algs(s, LIBSSH2_METHOD_CRYPT_CS, &algs);
    size_t used = 0;
    int written = 0;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(algs[i]);
        if (used + l + 2 > outlen) break;
        if (used) out[used++] = ',';
        memcpy(out + used, algs[i], l);
        used += l;
        out[used] = 0;
        written++;
    }
    if (n > 0) libssh2_free(s, algs);
    libssh2_session_free(s);
    return n < 0 ? -1 : written;
}
static inline LIBSSH2_SESSION *cssh2_session_init(void *abstract) {
    return libssh2_session_init_ex(NULL, NULL, NULL, abstract);
}
static inline int cssh2_session_free(LIBSSH2_SESSION *s) { return libssh2_session_free(s); }
static inline const char *cssh2_last_error(LIBSSH2_SESSION *s) {
    char *msg = NULL;
    libssh2_session_last_error(s, &msg, NULL, 0);
    return msg;
}

/* The session's socket I/O goes through Swift: the send side never reports EAGAIN (see c-libraries.md §0). */
typedef ssize_t (*cssh2_send_fn)(libssh2_socket_t, const void *, size_t, int, void **);
typedef ssize_t (*cssh2_recv_fn)(libssh2_socket_t, void *, size_t, int, void **);
static inline void cssh2_set_io(LIBSSH2_SESSION *s, cssh2_send_fn snd, cssh2_recv_fn rcv) {
    libssh2_session_callback_set(s, LIBSSH2_CALLBACK_SEND, (void *)snd);
    libssh2_session_callback_set(s, LIBSSH2_CALLBACK_RECV, (void *)rcv);
}

/* libssh2 frees the answers with the default allocator, so they must come from malloc. */
static inline void cssh2_kbd_answer_all(const char *answer, int num_prompts,
                                        LIBSSH2_USERAUTH_KBDINT_RESPONSE *responses) {
    for (int i = 0; i < num_prompts; i++) {
        responses[i].text = strdup(answer);
        responses[i].length = responses[i].text ? (unsigned int)strlen(answer) : 0;
    }
}

static inline ssize_t cssh2_channel_read(LIBSSH2_CHANNEL *c, void *buf, size_t len) {
    return libssh2_channel_read_ex(c, 0, (char *)buf, len);
}
static inline ssize_t cssh2_channel_write(LIBSSH2_CHANNEL *c, const void *buf, size_t len) {
    return libssh2_channel_write_ex(c, 0, (const char *)buf, len);
}
static inline int cssh2_disconnect(LIBSSH2_SESSION *s, const char *why) {
    return libssh2_session_disconnect_ex(s, SSH_DISCONNECT_BY_APPLICATION, why, "");
}

static const int CSSH2_KH_PLAIN_RAW = LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW;
static const int CSSH2_KH_KEY_SSHRSA = LIBSSH2_KNOWNHOST_KEY_SSHRSA;
static const int CSSH2_KH_KEY_SSHDSS = LIBSSH2_KNOWNHOST_KEY_SSHDSS;
static const int CSSH2_KH_KEY_ECDSA_256 = LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
static const int CSSH2_KH_KEY_ECDSA_384 = LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
static const int CSSH2_KH_KEY_ECDSA_521 = LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
static const int CSSH2_KH_KEY_ED25519 = LIBSSH2_KNOWNHOST_KEY_ED25519;
static const int CSSH2_KH_KEY_UNKNOWN = LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
#endif
