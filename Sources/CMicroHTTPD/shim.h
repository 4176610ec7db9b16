/* libmicrohttpd, built without TLS. MHD_start_daemon is variadic, which Swift cannot call: options go through
 * MHD_OPTION_ARRAY instead, so the C types of every option value are fixed here, not guessed in Swift. */
#ifndef SLUICE_CMICROHTTPD_SHIM_H
#define SLUICE_CMICROHTTPD_SHIM_H
#include <sys/types.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <stdint.h>
#include <stdarg.h>
#include <microhttpd.h>

/* The daemon's mode: one internal epoll thread; suspend/resume for SSE; upgrade for WebSocket. */
static const unsigned int CMHD_SERVER_FLAGS = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME
    | MHD_ALLOW_UPGRADE | MHD_USE_TURBO;
static const unsigned int CMHD_USE_IPV6 = MHD_USE_IPv6;
static const uint64_t CMHD_SIZE_UNKNOWN = MHD_SIZE_UNKNOWN;
static const ssize_t CMHD_READER_END = MHD_CONTENT_READER_END_OF_STREAM;

typedef struct {
    const struct sockaddr *address;   /* listen address (IPv4 or IPv6) */
    unsigned int connection_limit;
    unsigned int per_ip_limit;        /* 0: none */
    unsigned int timeout_seconds;
    size_t memory_limit;
    unsigned int thread_pool_size;    /* 0 or 1: the one polling thread */
    MHD_NotifyConnectionCallback notify_connection;   /* started/closed, on MHD's thread; may be NULL */
    void *notify_cls;
} cmhd_options;

static const int CMHD_NOTIFY_STARTED = MHD_CONNECTION_NOTIFY_STARTED;
static const int CMHD_NOTIFY_CLOSED = MHD_CONNECTION_NOTIFY_CLOSED;

static inline struct MHD_Daemon *cmhd_start_daemon(unsigned int flags, const cmhd_options *o,
                                                   MHD_AccessHandlerCallback handler, void *cls,
                                                   MHD_RequestCompletedCallback completed, void *completed_cls) {
    struct MHD_OptionItem items[] = {
        { MHD_OPTION_SOCK_ADDR, 0, (void *)o->address },
        { MHD_OPTION_CONNECTION_LIMIT, (intptr_t)o->connection_limit, NULL },
        { MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t)o->per_ip_limit, NULL },
        { MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)o->timeout_seconds, NULL },
        { MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)o->memory_limit, NULL },
        { MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)(o->thread_pool_size ? o->thread_pool_size : 1), NULL },
        { MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)completed, completed_cls },
        { MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)o->notify_connection, o->notify_cls },
        { MHD_OPTION_END, 0, NULL },
    };
    if (o->notify_connection == NULL) items[7].option = MHD_OPTION_END;
    if (completed == NULL) items[6].option = MHD_OPTION_END;
    return MHD_start_daemon(flags, 0, NULL, NULL, handler, cls, MHD_OPTION_ARRAY, items, MHD_OPTION_END);
}

/* The peer's address (MHD_get_connection_info is variadic); NULL when unknown. */
static inline const struct sockaddr *cmhd_client_address(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *i = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    return i ? i->client_addr : NULL;
}

/* The connection's socket (MHD_get_connection_info is variadic); -1 when unknown. */
static inline int cmhd_connection_fd(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *i = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return i ? i->connect_fd : -1;
}

/* Ends an upgraded connection: MHD closes the socket (MHD_upgrade_action is variadic). */
static inline int cmhd_upgrade_close(struct MHD_UpgradeResponseHandle *urh) {
    return MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE) == MHD_YES;
}

/* "Connection: keep-alive" on an HTTP/1.1 answer (tunnels-api.md §6 wants it on SSE): MHD drops that header
   when it is added by name, and sends it only with this flag (MHD_set_response_options is variadic). */
static inline int cmhd_send_keep_alive_header(struct MHD_Response *r) {
    return MHD_set_response_options(r, MHD_RF_SEND_KEEP_ALIVE_HEADER, MHD_RO_END) == MHD_YES;
}

/* A connection's idle timeout from now on (MHD_set_connection_option is variadic): the daemon's own timeout is
   short and covers the request headers; once they are in, the request gets the longer one. */
static inline void cmhd_set_timeout(struct MHD_Connection *c, unsigned int seconds) {
    (void)MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, seconds);
}

static inline uint16_t cmhd_bound_port(struct MHD_Daemon *d) {
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    return i ? i->port : 0;
}
#endif
