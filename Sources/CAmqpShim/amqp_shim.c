#include "amqp_shim.h"
#include <stdio.h>

amqp_rpc_reply_t amqp_shim_login_plain(amqp_connection_state_t state, const char *vhost,
                                       int channel_max, int frame_max, int heartbeat,
                                       const char *user, const char *password) {
    return amqp_login(state, vhost, channel_max, frame_max, heartbeat,
                      AMQP_SASL_METHOD_PLAIN, user, password);
}

#include <openssl/err.h>

int amqp_shim_take_ssl_error(char *buffer, size_t length) {
    unsigned long code = ERR_get_error();
    if (code == 0 || length == 0) { ERR_clear_error(); return 0; }
    const char *reason = ERR_reason_error_string(code);
    if (reason != NULL) {
        snprintf(buffer, length, "%s", reason);
    } else {
        ERR_error_string_n(code, buffer, length);
    }
    ERR_clear_error();
    return 1;
}
