/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the two ways of cutting the power share: the quota modes, running
 * the workload, and checking one disk image. */
#ifndef POWERCUT_H
#define POWERCUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "check.h"
#include "model.h"

#define WORKLOAD_CALLS 30

struct pc_mode {
	const char *name;
	const char *opts[3];
	size_t n_opts;
};

/* Cut points (or copies) that held, and that did not. */
extern unsigned long pc_passed, pc_failed;

/* Make a fresh btrfs (recorded or not, see rig_record_start()), mount it
 * with `mount_opts`, run the workload on it in a child, and unmount.
 * `after` goes to the workload (struct pc_workload_args).  With `recorded`,
 * probe[0..1] receive the recorder's positions around a syncfs() made
 * before the workload: the log must show a flush between them.  0, or -1
 * after saying what failed. */
int pc_record(const struct pc_mode *m, bool recorded, const char *mount_opts, uint64_t seed,
	      void (*after)(int index, void *data), void *data, uint64_t probe[2]);

/* Mount `image`, check it against the calls that ended by position `pos`
 * (pc_check()), unmount.  The number of problems found, each printed with
 * `label`; a mount that fails is one. */
unsigned long pc_check_image(const struct pc_mode *m, const char *image,
			     const struct pc_call *calls, int n_calls, uint64_t pos,
			     const char *label, struct pc_tally *t, int *inflight);

/* copymode.c: the cheaper check (no recorder): commit=300, and a copy of
 * the disk image right after each call returns, checked later. */
void pc_copy_mode(const struct pc_mode *m, uint64_t seed);

#endif
