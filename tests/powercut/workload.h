/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef POWERCUT_WORKLOAD_H
#define POWERCUT_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

struct pc_workload_args {
	const char *home;
	const char *const *opts;
	size_t n_opts;
	/* the recorder's position file, or NULL: positions then only count
	 * reads (start and end of each call still order the calls) */
	const char *position;
	const char *results;
	uint64_t seed;
	unsigned calls;
	/* called after each create, remove, set_quota and clear_quota that
	 * returned 0, before the next call; may be NULL */
	void (*after_call)(int index, void *data);
	void *data;
};

/* In a forked child: open the home on the recorded btrfs, make a->calls
 * calls (every kind of create, the quota calls, remove, a layer with a
 * nested subvolume), and write one line per call to a->results (model.h),
 * each with the position read before and after it.  Exits: 0 when every
 * call did what it should, 1 when one failed (said on stderr), 2 when the
 * position or the results file could not be used. */
void pc_workload(const struct pc_workload_args *a) __attribute__((noreturn));

#endif
