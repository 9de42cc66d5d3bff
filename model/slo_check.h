/* Whether a class's latency targets can be met at all: on an idle worker,
 * by the model's own step times (model/step.h), for every prompt the
 * worker takes. A target no idle worker meets is a configuration error,
 * not a load problem, so the cluster file's loader, the simulator and the
 * scheduler (when a worker registers) say so. */
#ifndef INFSCHED_MODEL_SLO_CHECK_H
#define INFSCHED_MODEL_SLO_CHECK_H

#include "infsched/profile.h"
#include "slo.h"

#include <stddef.h>

/* ms from submit to the first token of a prompt of n uncached tokens on an
 * idle worker: its steps, each as much of the prompt as the token budget
 * holds, as the engine runs them. */
double slo_check_idle_ttft_ms(const infs_profile_t *p, uint32_t n);
/* ms per output token of one sequence alone on the worker, holding ctx
 * tokens of KV. */
double slo_check_idle_tpot_ms(const infs_profile_t *p, uint32_t ctx);

/* Checks every class's targets against an idle worker of profile p, for
 * prompts from 1 token to the profile's max_context - 1. Returns 0, or
 * INFS_ECONFIG with err naming the class, the worker class and profile,
 * and the idle figure against the target. */
int slo_check_profile(const slo_t slo[INFS_CLASS_COUNT],
                      const infs_profile_t *p, char *err, size_t errlen);

#endif
