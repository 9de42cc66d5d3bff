/* Builds the Status reply (pool view and counters) from the core. */
#ifndef INFSCHED_SCHEDULER_STATUS_H
#define INFSCHED_SCHEDULER_STATUS_H

#include "infsched.pb-c.h"
#include "core.h"

/* Returns an envelope owned by the caller; free it with status_free. */
Infsched__Envelope *status_build(const core_t *core, infs_time_t now,
                                 infs_time_t uptime,
                                 uint64_t bad_messages,
                                 uint64_t handshakes_refused);
void status_free(Infsched__Envelope *env);

#endif
