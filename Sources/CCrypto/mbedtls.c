/* CCrypto on mbedTLS 3.6 (the small flavour, musl): the library its libssh2 already runs on. */
#ifdef SLUICE_CRYPTO_MBEDTLS
#include "ccrypto.h"
#include <mbedtls/constant_time.h>
#include <mbedtls/md.h>
#include <mbedtls/pkcs5.h>
#include <mbedtls/sha1.h>
#include <mbedtls/sha256.h>
#include <mbedtls/version.h>

int ccrypto_hmac_sha256(const uint8_t *key, size_t keylen, const uint8_t *msg, size_t msglen, uint8_t out[32]) {
    return mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), key, keylen, msg, msglen, out) == 0 ? 0 : -1;
}

int ccrypto_sha1(const uint8_t *in, size_t len, uint8_t out[20]) { return mbedtls_sha1(in, len, out) == 0 ? 0 : -1; }

int ccrypto_sha256(const uint8_t *in, size_t len, uint8_t out[32]) {
    return mbedtls_sha256(in, len, out, 0) == 0 ? 0 : -1;
}

int ccrypto_pbkdf2_sha256(const uint8_t *password, size_t plen, const uint8_t *salt, size_t slen,
                          uint32_t iterations, uint8_t *out, size_t outlen) {
    if (iterations == 0 || outlen > UINT32_MAX) return -1;
    return mbedtls_pkcs5_pbkdf2_hmac_ext(MBEDTLS_MD_SHA256, password, plen, salt, slen, iterations,
                                         (uint32_t)outlen, out) == 0 ? 0 : -1;
}

int ccrypto_memcmp(const uint8_t *a, const uint8_t *b, size_t n) { return mbedtls_ct_memcmp(a, b, n) == 0 ? 0 : 1; }

const char *ccrypto_library(void) { return "mbedTLS"; }
/* linked statically: the header's version is the library's */
const char *ccrypto_version(void) { return MBEDTLS_VERSION_STRING; }
#endif
