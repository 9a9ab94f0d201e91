#ifndef AMQP_SHIM_H
#define AMQP_SHIM_H
#include <amqp.h>

/// Swift cannot call the variadic amqp_login; this fixes its arguments for SASL PLAIN.
amqp_rpc_reply_t amqp_shim_login_plain(amqp_connection_state_t state, const char *vhost,
                                       int channel_max, int frame_max, int heartbeat,
                                       const char *user, const char *password);
#endif
