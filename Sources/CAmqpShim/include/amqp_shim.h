#ifndef AMQP_SHIM_H
#define AMQP_SHIM_H
#include <amqp.h>

/// Swift cannot call the variadic amqp_login; this fixes its arguments for SASL PLAIN.
amqp_rpc_reply_t amqp_shim_login_plain(amqp_connection_state_t state, const char *vhost,
                                       int channel_max, int frame_max, int heartbeat,
                                       const char *user, const char *password);
#endif

#ifndef AMQP_SHIM_SSL_H
#define AMQP_SHIM_SSL_H
#include <stddef.h>
/// The oldest pending OpenSSL error of this thread as text ("certificate verify failed", ...),
/// copied into `buffer`; the queue is cleared. Returns 0 when there was none.
int amqp_shim_take_ssl_error(char *buffer, size_t length);
#endif
