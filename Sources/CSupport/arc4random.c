/* Swift's Hashable seeds Dictionary and Set from arc4random_buf, which glibc 2.36 has and musl 1.2.3 does not. */
#include "CSupport.h"
#include <stddef.h>

int csupport_linked(void) { return 1; }

#if !defined(__GLIBC__)
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

void arc4random_buf(void *buffer, size_t length) {
    unsigned char *p = buffer;
    while (length > 0) {
        ssize_t n = getrandom(p, length, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            abort();   /* no weak fallback: a predictable seed would be worse than stopping */
        }
        p += n;
        length -= (size_t)n;
    }
}
#endif
