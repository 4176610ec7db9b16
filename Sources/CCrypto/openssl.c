/* CCrypto on OpenSSL's libcrypto (the default flavour). The one-shot EVP calls fetch from the default provider,
 * the only one built in (tools/deps.sh: no legacy provider, no modules, no config file). */
#ifndef SLUICE_CRYPTO_MBEDTLS
#include "ccrypto.h"
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

int ccrypto_hmac_sha256(const uint8_t *key, size_t keylen, const uint8_t *msg, size_t msglen, uint8_t out[32]) {
    unsigned int len = 0;
    if (keylen > INT_MAX) return -1;
    if (!HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, out, &len) || len != 32) return -1;
    return 0;
}

int ccrypto_sha1(const uint8_t *in, size_t len, uint8_t out[20]) {
    return EVP_Digest(in, len, out, NULL, EVP_sha1(), NULL) == 1 ? 0 : -1;
}

int ccrypto_sha256(const uint8_t *in, size_t len, uint8_t out[32]) {
    return EVP_Digest(in, len, out, NULL, EVP_sha256(), NULL) == 1 ? 0 : -1;
}

int ccrypto_pbkdf2_sha256(const uint8_t *password, size_t plen, const uint8_t *salt, size_t slen,
                          uint32_t iterations, uint8_t *out, size_t outlen) {
    if (plen > INT_MAX || slen > INT_MAX || outlen > INT_MAX || iterations == 0 || iterations > INT_MAX) return -1;
    return PKCS5_PBKDF2_HMAC((const char *)password, (int)plen, salt, (int)slen, (int)iterations, EVP_sha256(),
                             (int)outlen, out) == 1 ? 0 : -1;
}

int ccrypto_memcmp(const uint8_t *a, const uint8_t *b, size_t n) { return CRYPTO_memcmp(a, b, n) == 0 ? 0 : 1; }

const char *ccrypto_library(void) { return "OpenSSL"; }
/* the library linked, not the header compiled against */
const char *ccrypto_version(void) { return OpenSSL_version(OPENSSL_VERSION_STRING); }
#endif
