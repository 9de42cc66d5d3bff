/* Joins a ZeroMQ socket to a libuv loop. ZMQ_FD is edge-triggered: after a
 * send (from any callback, or before the loop runs) it signals again only
 * once ZMQ_EVENTS has been read. So the callback runs on a poll wake-up and
 * before every wait of the loop in which ZMQ_EVENTS says readable, and that
 * read comes before the loop blocks. The callback must receive with
 * ZMQ_DONTWAIT until EAGAIN. */
#ifndef INFSCHED_ZWATCH_H
#define INFSCHED_ZWATCH_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct zwatch zwatch_t;
typedef void (*zwatch_cb)(void *zsock, void *arg);

/* Starts watching zsock (borrowed; close it after zwatch_close). */
int zwatch_start(uv_loop_t *loop, void *zsock, zwatch_cb cb, void *arg,
                 zwatch_t **out);
/* Stops watching; memory is released from the handles' close callbacks. */
void zwatch_close(zwatch_t *w);

/* Receives one event from a zmq_socket_monitor PAIR socket without
 * waiting: its number, and the endpoint it names into endpoint (may be
 * NULL). Returns 0, or -1 when there is none. */
int zwatch_monitor_event(void *monitor, uint16_t *event, char *endpoint,
                         size_t len);

#endif
