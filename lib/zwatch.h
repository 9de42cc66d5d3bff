/* Joins a ZeroMQ socket to a libuv loop. ZMQ_FD is edge-triggered and a send
 * can make the socket readable without a new edge, so the callback runs both
 * on a poll wake-up and after every loop iteration in which ZMQ_EVENTS says
 * readable. The callback must receive with ZMQ_DONTWAIT until EAGAIN. */
#ifndef INFSCHED_ZWATCH_H
#define INFSCHED_ZWATCH_H

#include <uv.h>

typedef struct zwatch zwatch_t;
typedef void (*zwatch_cb)(void *zsock, void *arg);

/* Starts watching zsock (borrowed; close it after zwatch_close). */
int zwatch_start(uv_loop_t *loop, void *zsock, zwatch_cb cb, void *arg,
                 zwatch_t **out);
/* Stops watching; memory is released from the handles' close callbacks. */
void zwatch_close(zwatch_t *w);

#endif
