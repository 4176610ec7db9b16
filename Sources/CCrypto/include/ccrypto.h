/* Sluice's own cryptography (JWT HMAC-SHA256, the WebSocket accept's SHA-1, SHA-256, PBKDF2 password hashes,
 * constant-time compares) from the crypto library the flavour already links for libssh2: OpenSSL's libcrypto in the
 * default flavour (openssl.c), mbedTLS in the small one (mbedtls.c). Swift sees only these functions, so one Swift
 * API serves both and no call site names a library. */
#ifndef SLUICE_CCRYPTO_H
#define SLUICE_CCRYPTO_H
#include <stddef.h>
#include <stdint.h>

/* Each returns 0 on success, -1 on failure. */
int ccrypto_hmac_sha256(const uint8_t *key, size_t keylen, const uint8_t *msg, size_t msglen, uint8_t out[32]);
int ccrypto_sha1(const uint8_t *in, size_t len, uint8_t out[20]);
int ccrypto_sha256(const uint8_t *in, size_t len, uint8_t out[32]);
int ccrypto_pbkdf2_sha256(const uint8_t *password, size_t plen, const uint8_t *salt, size_t slen,
                          uint32_t iterations, uint8_t *out, size_t outlen);
/* 0 when the n bytes are equal; the time taken depends on n only. */
int ccrypto_memcmp(const uint8_t *a, const uint8_t *b, size_t n);
/* "OpenSSL" or "mbedTLS", and the version of the library linked ("3.0.22"), for `sluice version`. */
const char *ccrypto_library(void);
const char *ccrypto_version(void);
#endif
