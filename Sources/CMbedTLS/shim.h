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

static inline const char *cmbedtls_version(void) {
    static char v[32];
    mbedtls_version_get_string(v);
    return v;
}
#endif
