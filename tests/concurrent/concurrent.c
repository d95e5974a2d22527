/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One home, opened and closed by many processes and threads at once, with
 * the default btrfs.mount_home=true: the bind mount on home belongs to the
 * home, so every open and close must succeed whoever else is opening or
 * closing, and once the last handle is gone no mount of the library's may
 * be left at home (nor its record, HOME/.mount).
 *
 *   concurrent PATH/TO/btrfslayer
 *
 * Waves of BTRFSLAYER_CONCURRENT_PROCS (100) CLI processes started at once
 * (create, then rm, with ls in between), BTRFSLAYER_CONCURRENT_ROUNDS (3)
 * times; then BTRFSLAYER_CONCURRENT_THREADS (16) threads, each opening a
 * handle, creating, getting and removing a layer and closing it,
 * BTRFSLAYER_CONCURRENT_LOOPS (25) times, while one more wave of CLI ls
 * runs.  After each wave: every command exited 0, and /proc/self/mountinfo
 * has no mount at home.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "btrfslayer.h"
#include "harness.h"

extern char **environ;

static char cli[PATH_MAX], home[PATH_MAX];
static pthread_mutex_t failures_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned failures;

__attribute__((format(printf, 1, 2)))
static void failure(const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&failures_lock);
	if (++failures <= 60) {	/* enough to see what goes wrong */
		fputs("FAIL: ", stderr);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	pthread_mutex_unlock(&failures_lock);
}

static unsigned env_unsigned(const char *name, unsigned fallback)
{
	const char *s = getenv(name);
	char *end;
	unsigned long v = s && *s ? strtoul(s, &end, 10) : 0;
	return s && *s && !*end && v > 0 && v < 100000 ? (unsigned)v : fallback;
}

/* How many mounts are stacked at `path` in this process's mount table. */
static int mounts_at(const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[8192], target[PATH_MAX];
	int n = 0;
	if (!f) {
		failure("open /proc/self/mountinfo: %s", strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%*s %*s %*s %*s %4095s", target) == 1 && !strcmp(target, path))
			n++;
	fclose(f);
	return n;
}

static bool in_home(const char *name)
{
	char path[2 * PATH_MAX];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", home, name);
	return lstat(path, &st) == 0;
}

/* ---- processes ------------------------------------------------------------------ */

struct proc {
	pid_t pid;
	int err_fd;		/* a memfd that receives its stderr */
	char what[PATH_MAX];
};

static void spawn(struct proc *p, const char *command, const char *id)
{
	const char *const argv[] = { cli, "--home", home, command, id, NULL };
	posix_spawn_file_actions_t fa;
	snprintf(p->what, sizeof(p->what), "%s%s%s", command, id ? " " : "", id ? id : "");
	p->pid = -1;
	p->err_fd = memfd_create("stderr", MFD_CLOEXEC);
	if (p->err_fd < 0) {
		failure("%s: memfd_create: %s", p->what, strerror(errno));
		return;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p->err_fd, STDERR_FILENO);
	int r = posix_spawn(&p->pid, cli, &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0) {
		p->pid = -1;
		failure("%s: spawn %s: %s", p->what, cli, strerror(r));
	}
}

/* Wait for it; a non-zero exit is a failure, reported with its stderr. */
static void reap(struct proc *p)
{
	char err[1024] = "";
	int status;
	if (p->pid > 0) {
		while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR)
			;
		ssize_t n = pread(p->err_fd, err, sizeof(err) - 1, 0);
		err[n > 0 ? n : 0] = '\0';
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failure("btrfslayer %s: exit status %d: %s", p->what,
				WIFEXITED(status) ? WEXITSTATUS(status) : -1, err);
	}
	if (p->err_fd >= 0)
		close(p->err_fd);
}

/* `n` processes at once: `command` on the ids "<prefix><i>" for three in
 * four of them, ls for the rest. */
static void wave(struct proc *procs, unsigned n, const char *command, const char *prefix)
{
	char ids[n][32];
	for (unsigned i = 0; i < n; i++) {
		snprintf(ids[i], sizeof(ids[i]), "%s%u", prefix, i);
		if (i % 4 == 3)
			spawn(&procs[i], "ls", NULL);
		else
			spawn(&procs[i], command, ids[i]);
	}
}

static void reap_all(struct proc *procs, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		reap(&procs[i]);
}

/* Once every handle is closed: nothing of the library's is mounted at home. */
static void check_no_mount(const char *after)
{
	int n = mounts_at(home);
	if (n != 0)
		failure("after %s: %d mount(s) left at %s", after, n, home);
	/* take them down, so that the next wave starts from a plain home */
	for (int i = 0; i < n; i++)
		if (umount2(home, 0) < 0)
			failure("umount %s: %s", home, strerror(errno));
	if (in_home(".mount"))
		failure("after %s: %s/.mount is left", after, home);
}

/* ---- threads -------------------------------------------------------------------- */

static unsigned loops;

static bool ok(int r, btrfslayer_error *err, const char *what, unsigned t, unsigned i)
{
	if (r >= 0)
		return true;
	failure("thread %u, loop %u: %s = %d: %s", t, i, what, r,
		err ? btrfslayer_error_message(err) : "no error object");
	btrfslayer_error_free(err);
	return false;
}

static void *thread_main(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;
	for (unsigned i = 0; i < loops; i++) {
		btrfslayer_error *err = NULL;
		btrfslayer *h = NULL;
		char id[32], *path = NULL;
		snprintf(id, sizeof(id), "t%u-%u", t, i);
		if (!ok(btrfslayer_open(home, NULL, 0, NULL, 0, NULL, 0, &h, &err), err, "open",
			t, i))
			continue;
		if (ok(btrfslayer_create(h, id, NULL, 0, NULL, NULL, 0, &err), err, "create", t, i) &&
		    ok(btrfslayer_get(h, id, NULL, &path, &err), err, "get", t, i))
			ok(btrfslayer_remove(h, id, &err), err, "remove", t, i);
		free(path);
		ok(btrfslayer_close(h, &err), err, "close", t, i);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: concurrent PATH/TO/btrfslayer\n");
		return 2;
	}
	if (!realpath(argv[1], cli)) {
		fprintf(stderr, "FAIL: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	harness_start();
	char base[PATH_MAX], fresh[PATH_MAX];
	if (!realpath(harness_btrfs(), base)) {
		fprintf(stderr, "FAIL: %s: %s\n", harness_btrfs(), strerror(errno));
		return 1;
	}
	harness_new_home(fresh, sizeof(fresh));
	snprintf(home, sizeof(home), "%s%s", base, strrchr(fresh, '/'));

	unsigned n = env_unsigned("BTRFSLAYER_CONCURRENT_PROCS", 100);
	unsigned rounds = env_unsigned("BTRFSLAYER_CONCURRENT_ROUNDS", 3);
	unsigned threads = env_unsigned("BTRFSLAYER_CONCURRENT_THREADS", 16);
	loops = env_unsigned("BTRFSLAYER_CONCURRENT_LOOPS", 25);
	struct proc *procs = calloc(n, sizeof(*procs));
	pthread_t *tids = calloc(threads, sizeof(*tids));
	if (!procs || !tids)
		return 1;

	/* the first wave also makes home: many opens of a home that is not
	 * there yet */
	for (unsigned r = 0; r < rounds; r++) {
		char prefix[32], what[128];
		snprintf(prefix, sizeof(prefix), "r%u-", r);
		wave(procs, n, "create", prefix);
		reap_all(procs, n);
		snprintf(what, sizeof(what), "round %u: %u parallel create/ls", r, n);
		check_no_mount(what);
		for (unsigned i = 0; i < n; i++) {
			char id[64];
			snprintf(id, sizeof(id), "subvolumes/%s%u", prefix, i);
			if (i % 4 != 3 && !in_home(id))
				failure("%s: %s/%s is missing", what, home, id);
		}
		wave(procs, n, "rm", prefix);
		reap_all(procs, n);
		snprintf(what, sizeof(what), "round %u: %u parallel rm/ls", r, n);
		check_no_mount(what);
		for (unsigned i = 0; i < n; i++) {
			char id[64];
			snprintf(id, sizeof(id), "subvolumes/%s%u", prefix, i);
			if (in_home(id))
				failure("%s: %s/%s is left", what, home, id);
		}
	}

	/* threads of one process, each with handles of its own, and processes
	 * at the same time */
	wave(procs, n, "exists", "none-");
	for (unsigned t = 0; t < threads; t++)
		if (pthread_create(&tids[t], NULL, thread_main, (void *)(uintptr_t)t) != 0)
			failure("pthread_create: %s", strerror(errno));
	for (unsigned t = 0; t < threads; t++)
		pthread_join(tids[t], NULL);
	for (unsigned i = 0; i < n; i++) {
		/* exists of a missing id exits 1: that is the answer, not a
		 * failure; only ls must exit 0 */
		if (i % 4 != 3) {
			int status;
			while (waitpid(procs[i].pid, &status, 0) < 0 && errno == EINTR)
				;
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 1)
				failure("btrfslayer exists none-%u: exit status %d, want 1", i,
					WIFEXITED(status) ? WEXITSTATUS(status) : -1);
			close(procs[i].err_fd);
		} else {
			reap(&procs[i]);
		}
	}
	char what[96];
	snprintf(what, sizeof(what), "%u threads x %u open/close with %u parallel processes",
		 threads, loops, n);
	check_no_mount(what);

	printf("concurrent: %u rounds of 2 x %u parallel processes, %u threads x %u opens: "
	       "%u failures, %d mount(s) left at home\n", rounds, n, threads, loops, failures,
	       mounts_at(home));
	free(procs);
	free(tids);
	return failures ? 1 : 0;
}
