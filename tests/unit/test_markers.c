/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The qgroup marker list (marker.c) rewritten by many handles at once: four
 * processes of two threads each add and then drop ids as fast as they can,
 * each process with a handle of its own on one home.  The list is a single
 * attribute rewritten whole, so without its lock two writers that read the
 * same list lose one's change; here every id written must be found, once,
 * in the list or as a file, and none may be left after they are dropped.
 * No btrfs needed: any filesystem with user extended attributes (tmpfs
 * before Linux 6.6 has none: then TMPDIR elsewhere).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "internal.h"

#define PROCESSES 4
#define THREADS 2
#define IDS_EACH 150	/* 1200 in all: more than the list holds, so files too */
#define FIRST_ID 100000

static char home[256];

static void make_dir(const char *name)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", home, name);
	assert_int_equal(mkdir(path, 0700), 0);
}

/* A handle with what marker.c uses, on home: its own open of .lock. */
static btrfslayer *handle(void)
{
	btrfslayer *h = calloc(1, sizeof(*h));
	assert_non_null(h);
	h->home = home;
	char path[PATH_MAX];
	h->home_fd = open(home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	snprintf(path, sizeof(path), "%s/subvolumes", home);
	h->subvolumes_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	snprintf(path, sizeof(path), "%s/quotas/.staging", home);
	h->quota_staging_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(h->home_fd >= 0 && h->subvolumes_fd >= 0 && h->quota_staging_fd >= 0);
	h->lock_fd = -1;
	pthread_mutex_init(&h->marker_lock, NULL);
	btrfslayer_error *err = NULL;
	if (bl_session_open(h, &err) < 0)
		fail_msg("session: %s", btrfslayer_error_message(err));
	return h;
}

struct writer {
	btrfslayer *h;
	uint64_t first;
	bool drop;
	int failed;	/* how many writes failed; the last one's errno */
	int error;
};

static void *write_ids(void *arg)
{
	struct writer *w = arg;
	int r;
	for (uint64_t id = w->first; id < w->first + IDS_EACH; id++) {
		if (w->drop)
			bl_marker_remove(w->h, id);
		else if ((r = bl_marker_write(w->h, id)) < 0) {
			w->failed++;
			w->error = -r;
		}
	}
	return NULL;
}

/* PROCESSES processes of THREADS threads, each writing (or dropping) its
 * IDS_EACH ids, all at once. */
static void at_once(bool drop)
{
	int go[2];
	assert_int_equal(pipe(go), 0);
	pid_t pids[PROCESSES];
	for (int p = 0; p < PROCESSES; p++) {
		pids[p] = fork();
		assert_true(pids[p] >= 0);
		if (pids[p])
			continue;
		close(go[1]);
		btrfslayer *h = handle();
		struct writer w[THREADS];
		pthread_t t[THREADS];
		char byte;
		if (read(go[0], &byte, 1) != 0)	/* closed: everyone starts */
			_exit(3);
		for (int i = 0; i < THREADS; i++) {
			w[i] = (struct writer){ h, FIRST_ID + (uint64_t)(p * THREADS + i) * IDS_EACH,
						drop, 0, 0 };
			pthread_create(&t[i], NULL, write_ids, &w[i]);
		}
		int failed = 0;
		for (int i = 0; i < THREADS; i++) {
			pthread_join(t[i], NULL);
			failed += w[i].failed;
			if (w[i].failed)
				fprintf(stderr, "writer %d.%d: %d markers not written: %s\n", p, i,
					w[i].failed, strerror(w[i].error));
		}
		_exit(failed ? 1 : 0);
	}
	close(go[0]);
	close(go[1]);
	for (int p = 0; p < PROCESSES; p++) {
		int status;
		assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			fail_msg("writer %d: a marker could not be written (status 0x%x)", p, status);
	}
}

/* How many times each id is marked, in the list and in files. */
static void count_marks(unsigned counts[PROCESSES * THREADS * IDS_EACH], size_t *in_list,
			size_t *in_files)
{
	memset(counts, 0, sizeof(unsigned) * PROCESSES * THREADS * IDS_EACH);
	*in_list = *in_files = 0;
	char path[PATH_MAX], list[8192];
	snprintf(path, sizeof(path), "%s/subvolumes", home);
	ssize_t n = getxattr(path, "user.btrfslayer.qgroups", list, sizeof(list) - 1);
	list[n > 0 ? n : 0] = '\0';
	for (char *save = NULL, *id = strtok_r(list, " ", &save); id;
	     id = strtok_r(NULL, " ", &save)) {
		uint64_t v = strtoull(id, NULL, 10) - FIRST_ID;
		assert_true(v < PROCESSES * THREADS * IDS_EACH);
		counts[v]++;
		(*in_list)++;
	}
	snprintf(path, sizeof(path), "%s/quotas/.staging", home);
	DIR *dir = opendir(path);
	assert_non_null(dir);
	for (struct dirent *d; (d = readdir(dir));) {
		uint64_t v = bl_marker_file_id(d->d_name);
		if (!v)
			continue;
		v -= FIRST_ID;
		assert_true(v < PROCESSES * THREADS * IDS_EACH);
		counts[v]++;
		(*in_files)++;
	}
	closedir(dir);
}

static void none_lost_at_once(void **state)
{
	(void)state;
	const char *tmp = getenv("TMPDIR");
	snprintf(home, sizeof(home), "%s/markers-XXXXXX", tmp && *tmp ? tmp : "/var/tmp");
	assert_non_null(mkdtemp(home));
	make_dir("subvolumes");
	make_dir("quotas");
	make_dir("quotas/.staging");
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/subvolumes", home);
	if (setxattr(path, "user.probe", "", 0, 0) < 0) {
		const char *ci = getenv("CI");
		if (ci && !strcmp(ci, "true"))
			fail_msg("%s has no user extended attributes: %s (CI=true: no skipping)",
				 home, strerror(errno));
		print_message("SKIP: %s has no user extended attributes (%s); set TMPDIR\n", home,
			      strerror(errno));
		skip();
	}
	removexattr(path, "user.probe");

	static unsigned counts[PROCESSES * THREADS * IDS_EACH];
	size_t in_list, in_files;
	at_once(false);
	count_marks(counts, &in_list, &in_files);
	for (size_t i = 0; i < PROCESSES * THREADS * IDS_EACH; i++)
		if (counts[i] != 1)
			fail_msg("qgroup 0/%zu marked %u times, not once (%zu in the list, %zu "
				 "as files)", FIRST_ID + i, counts[i], in_list, in_files);
	print_message("%zu markers in the list, %zu as files\n", in_list, in_files);
	assert_true(in_list > 100 && in_files > 0);	/* both ways taken */

	at_once(true);
	count_marks(counts, &in_list, &in_files);
	if (in_list || in_files)
		fail_msg("%zu markers left in the list and %zu as files after every one was "
			 "dropped", in_list, in_files);
	assert_true(getxattr(path, "user.btrfslayer.qgroups", NULL, 0) < 0 && errno == ENODATA);

	static const char *const made[] = { "quotas/.staging", "quotas", "subvolumes", ".lock" };
	for (size_t i = 0; i < sizeof(made) / sizeof(made[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", home, made[i]);
		assert_int_equal(remove(path), 0);
	}
	assert_int_equal(rmdir(home), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(none_lost_at_once),
	};
	return cmocka_run_group_tests_name("markers", tests, NULL, NULL);
}
