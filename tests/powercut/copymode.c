/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The cheaper check, without the recorder: btrfs mounted with commit=300,
 * so that nothing reaches the disk in the background during the run, and a
 * copy of the disk image taken right after each call returns, while the
 * filesystem is still mounted.  The loop device writes through the image's
 * page cache, so the copy holds everything btrfs had sent to its disk at
 * that moment: a power cut there with a disk that lost nothing it was sent.
 * Each copy must show every call that returned before it.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "powercut.h"
#include "replay.h"
#include "rig.h"
#include "util.h"

#define COPY_MOUNT_OPTS "nodiscard,commit=300"

static void copy_path(int index, char *buf, size_t len)
{
	snprintf(buf, len, "%s-%03d.img", rig.copies, index);
}

/* In the workload child, right after call `index` returned. */
static void copy_image(int index, void *data)
{
	(void)data;
	char path[128];
	copy_path(index, path, sizeof(path));
	int r = pc_copy_sparse(rig.image, path);
	if (r < 0)
		fprintf(stderr, "powercut: copy %s to %s: %s\n", rig.image, path, strerror(-r));
}

void pc_copy_mode(const struct pc_mode *m, uint64_t seed)
{
	struct pc_call *calls = NULL;
	struct pc_tally t = { 0 };
	unsigned long held = 0, tried = 0;
	double t0 = pc_now();
	printf("powercut: copy mode (quota mode %s, -o %s): %d calls, a copy of the disk after "
	       "each\n", m->name, COPY_MOUNT_OPTS, WORKLOAD_CALLS);
	fflush(stdout);
	int n = pc_record(m, false, COPY_MOUNT_OPTS, seed, copy_image, NULL, NULL) < 0
		? -1 : pc_results_load(rig.results, &calls);
	if (n < 0) {
		printf("powercut: copy mode: FAIL: no workload to check\n");
		pc_failed++;
		rig_remove_copies();
		return;
	}
	for (int i = 0; i < n; i++) {
		char path[128], label[96], desc[128];
		if (calls[i].rc != 0 || calls[i].op < PC_OP_CREATE || calls[i].op > PC_OP_REMOVE)
			continue;
		copy_path(i, path, sizeof(path));
		pc_call_describe(&calls[i], desc, sizeof(desc));
		snprintf(label, sizeof(label), "powercut: copy after call #%d", i);
		int inflight;
		unsigned long problems = pc_check_image(m, path, calls, n, calls[i].end, label, &t,
							&inflight);
		printf("%s: %s (%s)\n", label, problems ? "FAIL" : "held", desc);
		fflush(stdout);
		remove(path);
		tried++;
		held += problems == 0;
	}
	pc_passed += held;
	pc_failed += tried - held;
	char by[256];
	pc_tally_lost_by(&t, by, sizeof(by));
	printf("powercut: copy mode: %lu copies checked, %lu held; %lu layer states checked, "
	       "%lu lost%s, %lu other violations; %.1f s\n",
	       tried, held, t.layers, t.lost, by, t.violations, pc_now() - t0);
	free(calls);
}
