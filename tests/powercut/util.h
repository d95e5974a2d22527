/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Small helpers shared by the power-cut test's files. */
#ifndef POWERCUT_UTIL_H
#define POWERCUT_UTIL_H

#include <spawn.h>
#include <stddef.h>
#include <stdint.h>

/* splitmix64: the one random source, so that a seed replays a run. */
uint64_t pc_rng(uint64_t *state);

/* Run a command (argv, NULL-terminated) with stdout to /dev/null, or into
 * `out` (len bytes, NUL-terminated, trailing newline cut) when out is not
 * NULL.  Its exit status, or -1 if it could not run or was killed. */
int pc_run(const char *const argv[], char *out, size_t len);

/* Spawn attributes for a child that starts with no signal held and default
 * handlers, whatever this process holds at the moment. */
void pc_spawnattr_init(posix_spawnattr_t *attr);

/* CLOCK_MONOTONIC in seconds. */
double pc_now(void);

#endif
