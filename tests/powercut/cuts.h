/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Where to cut the power, and what the calls promise at a cut. */
#ifndef POWERCUT_CUTS_H
#define POWERCUT_CUTS_H

#include <stddef.h>
#include <stdint.h>

#include "check.h"
#include "model.h"
#include "replay.h"

enum pc_cut_kind {
	PC_CUT_END,		/* the whole log: everything durable */
	PC_CUT_RETURNED,	/* the moment a call returned */
	PC_CUT_FLUSH,		/* just after a cache flush */
	PC_CUT_INSIDE,		/* while a call was running */
	PC_CUT_ANYWHERE,
	PC_CUT_KINDS,
};

extern const char *const pc_cut_kind_names[PC_CUT_KINDS];

struct pc_cut {
	uint64_t pos;		/* entries [0, pos) were sent to the disk */
	enum pc_cut_kind kind;
};

/* Up to `max` distinct cut points over the recording, drawn from `rng`:
 * the end of the log first, then the kinds above in turn.  Count. */
size_t pc_cuts_choose(const struct pc_log *log, const struct pc_call *calls, int n_calls,
		      uint64_t *rng, size_t max, struct pc_cut *out);

/* What must hold after a cut at `pos`: the calls that ended by then, and the
 * call that was running, if any, either undone or whole. */
void pc_expect_at(const struct pc_call *calls, int n_calls, uint64_t pos, struct pc_expect *x);

#endif
