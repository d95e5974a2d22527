/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Running the workload on a fresh btrfs, and checking one disk image: what
 * the recorded mode and the copy mode share. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cuts.h"
#include "powercut.h"
#include "rig.h"
#include "workload.h"

/* Dirty the filesystem and sync it: a commit, whose superblock write the
 * block layer brackets with cache flushes. */
static int probe_flush(void)
{
	char path[160];
	snprintf(path, sizeof(path), "%s/.powercut-probe", rig.mnt);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int r = fd < 0 || write(fd, "probe\n", 6) != 6 || syncfs(fd) < 0 ? -errno : 0;
	if (fd >= 0)
		close(fd);
	if (r < 0)
		fprintf(stderr, "powercut: write and syncfs %s: %s\n", path, strerror(-r));
	return r;
}

int pc_record(const struct pc_mode *m, bool recorded, const char *mount_opts, uint64_t seed,
	      void (*after)(int index, void *data), void *data, uint64_t probe[2])
{
	char home[160];
	snprintf(home, sizeof(home), "%s/home", rig.mnt);
	if (rig_record_start(mount_opts, recorded) < 0)
		return -1;
	if (recorded) {
		probe[0] = rig_position();
		if (probe_flush() < 0)
			return -1;
		probe[1] = rig_position();
	}
	struct pc_workload_args a = {
		.home = home, .opts = m->opts, .n_opts = m->n_opts,
		.position = recorded ? rig.position : NULL, .results = rig.results,
		.seed = seed, .calls = WORKLOAD_CALLS, .after_call = after, .data = data,
	};
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		perror("powercut: fork the workload");
		return -1;
	}
	if (pid == 0)
		pc_workload(&a);
	rig_child = pid;
	int status = 0;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			break;
	rig_child = 0;
	int r = rig_record_stop();
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "powercut: %s: the workload failed (status %#x)\n", m->name,
			(unsigned)status);
		return -1;
	}
	return r;
}

unsigned long pc_check_image(const struct pc_mode *m, const char *image,
			     const struct pc_call *calls, int n_calls, uint64_t pos,
			     const char *label, struct pc_tally *t, int *inflight)
{
	struct pc_expect x;
	char home[160];
	int r = rig_check_mount(image);
	if (r < 0) {
		printf("%s: violation: mount %s at %s: %s\n", label, image, rig.check,
		       strerror(-r));
		t->violations++;
		return 1;
	}
	pc_expect_at(calls, n_calls, pos, &x);
	*inflight = x.inflight;
	snprintf(home, sizeof(home), "%s/home", rig.check);
	unsigned long problems = pc_check(home, m->opts, m->n_opts, &x, calls, label, t);
	rig_check_umount();
	return problems;
}

