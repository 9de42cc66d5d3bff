/* The settings (lib/settings.h) that configure the scheduling core, applied
 * to its configuration: by the scheduler's flags and the simulator's. Kept
 * beside the core so that the settings table links nothing of it. */
#ifndef INFSCHED_SETTINGS_CORE_H
#define INFSCHED_SETTINGS_CORE_H

#include "core.h"
#include "settings.h"

/* Applies a parsed value to a core configuration. Returns 0, or 1 when the
 * setting is not one of the core's (endpoints, HTTP, worker settings). */
int settings_apply_core(core_config_t *c, const setting_t *s,
                        const setting_value_t *v);

#endif
