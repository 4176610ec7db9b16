/* libssh2: its function-like macros wrapped as functions Swift can call. */
#ifndef SLUICE_CSSH2_SHIM_H
#define SLUICE_CSSH2_SHIM_H
#include <string.h>
#include <sys/types.h>
#include <libssh2.h>

static inline const char *cssh2_version(void) { return libssh2_version(0); }
static inline LIBSSH2_SESSION *cssh2_session_init(void *abstract) {
    return libssh2_session_init_ex(NULL, NULL, NULL, abstract);
}
static inline int cssh2_session_free(LIBSSH2_SESSION *s) { return libssh2_session_free(s); }
static inline const char *cssh2_last_error(LIBSSH2_SESSION *s) {
    char *msg = NULL;
    libssh2_session_last_error(s, &msg, NULL, 0);
    return msg;
}
#endif
