/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The check of one rebuilt disk: what the calls that returned before the
 * cut promise, seen through a fresh open (which runs the recovery sweep). */
#ifndef POWERCUT_CHECK_H
#define POWERCUT_CHECK_H

#include <stddef.h>

#include "model.h"

struct pc_expect {
	struct pc_layer before[PC_POOL];	/* every call that ended by the cut */
	struct pc_layer after[PC_POOL];		/* and the call in flight, whole */
	int inflight;				/* that call, or -1 */
};

struct pc_tally {
	unsigned long layers;	/* layer states checked */
	unsigned long lost;	/* a returned call's result not there */
	unsigned long lost_by[PC_OP_COUNT];	/* of them, by the kind of the last
						 * call that returned on the layer */
	unsigned long violations;	/* anything else: torn layer, limit and
					 * record apart, leftovers, no open */
};

/* Open `home` with `opts`, check every layer of the pool against `x` and
 * that nothing reserved is left, close.  Each problem is printed, prefixed
 * with `label`; returns how many there were. */
unsigned long pc_check(const char *home, const char *const *opts, size_t n_opts,
		       const struct pc_expect *x, const struct pc_call *calls,
		       const char *label, struct pc_tally *t);

/* " (create 3, remove 2)", or "" when nothing was lost. */
void pc_tally_lost_by(const struct pc_tally *t, char *buf, size_t len);

#endif
