/* The baseline of bench_transport: a raw ZeroMQ broker (zmq_proxy between a
 * ROUTER for clients and a DEALER for workers) and echo workers. Each runs
 * as a process of its own, as the scheduler and its workers do, so that the
 * comparison pays the same context switches and copies. */
#ifndef INFSCHED_BENCH_TRANSPORT_BASELINE_H
#define INFSCHED_BENCH_TRANSPORT_BASELINE_H

/* Queue bounds of every baseline socket: the scheduler's and the worker's,
 * so that neither side drops or blocks where the other would not. */
#define BASELINE_HWM 100000

/* Binds front (ROUTER) and back (DEALER), prints "broker ready" on stdout
 * and forwards until the process is killed. Returns an exit status when it
 * cannot start. */
int baseline_run_broker(const char *front, const char *back);

/* Connects a DEALER to the broker's back end, prints "echo ready" once the
 * ZeroMQ handshake has completed, then sends every message back unchanged
 * until the process is killed. Returns an exit status when it cannot
 * start. */
int baseline_run_echo(const char *back);

#endif
