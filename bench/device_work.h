/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What one call makes the kernel write, counted rather than timed: where a
 * library call costs more than its bare ioctl made durable, these counts
 * say whether the library asks the kernel for more work or the same work
 * costs more.  Counts do not depend on how busy the host's disk is, which
 * the times do.
 */
#ifndef BENCH_DEVICE_WORK_H
#define BENCH_DEVICE_WORK_H

#include <stdbool.h>
#include <stdint.h>

/* The trees whose blocks a commit writes, as the bench tells them apart. */
enum work_tree {
	WORK_HOME,	/* the tree holding home: its directories and records */
	WORK_QUOTA,	/* the quota tree: qgroups and their limits */
	WORK_LAYERS,	/* any other subvolume's tree: the layers' own */
	WORK_OTHER,	/* root, extent, free space, checksum, log trees */
	N_WORK_TREES
};

struct work_sample {
	double kib_written;	/* written to the loop device */
	double flushes;		/* cache flushes sent to it */
	double commits;		/* transaction commits */
	double blocks[N_WORK_TREES];	/* tree blocks copied on write */
};

struct work_samples {
	struct work_sample *v;
	int n;
};

/* What device_work_start() could turn on. */
enum {
	WORK_DEVICE_COUNTS = 1,	/* KiB written, flushes */
	WORK_TREE_COUNTS = 2,	/* commits, tree blocks */
};

/*
 * Start counting on the filesystem at fs_fd, on loop device loopdev
 * ("/dev/loopN"), whose tree home_tree holds home.  The device counts need
 * the loop device's statistics in sysfs; the commits and blocks need
 * tracefs (a tracing instance of the bench's own, taken back by
 * device_work_stop).  Returns the WORK_* counts that are on; *why says
 * what is missing when one is not.
 */
int device_work_start(int fs_fd, const char *loopdev, uint64_t home_tree, const char **why);
void device_work_stop(void);

/* Around one timed call: begin, the call, end (which adds the sample). */
void device_work_begin(void);
void device_work_end(struct work_samples *into);

/* The median of each count over the samples. */
void device_work_median(const struct work_samples *s, struct work_sample *out);
void device_work_append(struct work_samples *into, const struct work_samples *from);

#endif
