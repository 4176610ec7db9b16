/* mbedTLS for Sluice's own cryptography: HMAC-SHA256 (JWT), SHA-1 + base64 (WebSocket accept), random numbers,
 * PBKDF2 (password hashes). */
#ifndef SLUICE_CMBEDTLS_SHIM_H
#define SLUICE_CMBEDTLS_SHIM_H
#include <stddef.h>
#include <mbedtls/version.h>
#include <mbedtls/md.h>
#include <mbedtls/sha1.h>
#include <mbedtls/sha256.h>
#include <mbedtls/base64.h>
#include <mbedtls/pkcs5.h>
#include <mbedtls/constant_time.h>

/* The small flavour builds mbedTLS 3.6 (musl); the glibc flavours link Debian 12's 2.28 from the sysroot. The same
   Swift calls serve both: 3.x renamed the one-shot hashes (the `_ret` names are gone) and deprecated the PBKDF2 call
   that takes an MD context. */
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
static inline int mbedtls_sha1_ret(const unsigned char *in, size_t n, unsigned char out[20]) {
    return mbedtls_sha1(in, n, out);
}
static inline int mbedtls_sha256_ret(const unsigned char *in, size_t n, unsigned char out[32], int is224) {
    return mbedtls_sha256(in, n, out, is224);
}
#endif

static inline const char *cmbedtls_version(void) {
    static char v[32];
    mbedtls_version_get_string(v);
    return v;
}
/* PBKDF2-HMAC-SHA256 with its own MD context (the context type is awkward to set up from Swift). 0 on success. */
static inline int cmbedtls_pbkdf2_sha256(const unsigned char *password, size_t plen, const unsigned char *salt,
                                         size_t slen, unsigned int iterations, unsigned char *out, uint32_t outlen) {
#if MBEDTLS_VERSION_NUMBER >= 0x03030000
    return mbedtls_pkcs5_pbkdf2_hmac_ext(MBEDTLS_MD_SHA256, password, plen, salt, slen, iterations, outlen, out);
#else
    mbedtls_md_context_t ctx;
    mbedtls_md_init(&ctx);
    int rc = mbedtls_md_setup(&ctx, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), 1);
    if (rc == 0) rc = mbedtls_pkcs5_pbkdf2_hmac(&ctx, password, plen, salt, slen, iterations, outlen, out);
    mbedtls_md_free(&ctx);
    return rc;
#endif
}
#endif
