/* A profile's fields by name, with the loader's table of them
 * (lib/profile_load.c): an entry of a profiles file written from a
 * profile, and one field set from its text, so that a tool that writes or
 * adjusts profiles reads and writes them exactly as the loader does. */
#ifndef INFSCHED_PROFILE_FIELDS_H
#define INFSCHED_PROFILE_FIELDS_H

#include "buf.h"
#include "infsched/profile.h"

#include <stddef.h>

/* A comment for a field's line, or NULL for none. */
typedef const char *(*profile_note_cb)(void *arg, const char *field);

/* Appends p to out as an entry of a profiles file's "profiles:" mapping:
 * its name indented by two spaces, then every field in the loader's order
 * indented by four, each followed by "  # NOTE" when note (may be NULL)
 * gives one. Numbers are the shortest text that loads back as p's value. */
void profile_format(buf_t *out, const infs_profile_t *p, profile_note_cb note,
                    void *arg);

/* Sets field name of p from value, written as in a profiles file. Returns
 * 0; INFS_EUNKNOWN for no such field; INFS_ECONFIG for a bad value. *why
 * says what is wrong. p is not validated (profile_validate). */
int profile_set_field(infs_profile_t *p, const char *name, const char *value,
                      char *why, size_t whylen);

#endif
