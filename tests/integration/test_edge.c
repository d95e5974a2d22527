/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Edge cases of "trustworthy state", on a real btrfs, as a user checks them:
 * - a sweep never waits on a live handle's id lock, whether another open
 *   file holds it or a handle stopped inside set_quota does; what it could
 *   not lock it leaves and counts (sweep_left) (item 4);
 * - on a small filesystem of its own, with only data full, then with data
 *   and metadata full, in each quota mode: remove works (a plain layer, one
 *   with a recorded limit, one with a nested subvolume); create, snapshot,
 *   create with size= and set_quota succeed or fail with an error that
 *   names the layer (never a reserved .tmp-/.tomb- name) and leave nothing:
 *   no reserved name, no record, no subvolume, no limit (items 20, 24);
 * - a remove that meets a nested subvolume held by `btrfs send` either
 *   changes nothing or says that the layer is gone and the rest is deleted
 *   later, and close/open clean up once the send is over (item 22);
 * - a layer bind-mounted onto itself is still a layer (exists, get; remove
 *   is -EBUSY and keeps it); another subvolume mounted at a layer's name is
 *   not that layer (item 23).
 * BTRFSLAYER_TEST_FILTER runs the tests whose name matches a pattern.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <btrfsutil.h>
#include <cmocka.h>

#include "btrfslayer.h"
#include "check.h"
#include "fsprobe.h"
#include "harness.h"

#define MiB (UINT64_C(1) << 20)
/* HOME/.lock: session slots first, then one byte per id lock (session.c) */
#define LOCK_SLOTS 4096
#define ID_LOCKS 64
/* mkfs.btrfs (6.2) makes a filesystem down to about 114 MiB */
#define SMALL_FS_SIZE (128LL << 20)

#define HOME_MAX 128

struct ctx {
	char home[HOME_MAX];
};

static const char *const no_mount[] = { "btrfs.mount_home=false" };

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	harness_new_home(c->home, sizeof(c->home));
	*state = c;
	return 0;
}

/* What a failed test leaves mounted or running goes in its teardown. */
static char mounted[4][PATH_MAX];
static pid_t running = -1;

static int teardown(void **state)
{
	for (size_t i = 0; i < sizeof(mounted) / sizeof(mounted[0]); i++)
		if (mounted[i][0] && umount2(mounted[i], MNT_DETACH) == 0)
			mounted[i][0] = '\0';
	if (running > 0) {
		kill(running, SIGKILL);
		waitpid(running, NULL, 0);
		running = -1;
	}
	free(*state);
	return 0;
}

static btrfslayer *open_home(const char *home, const char *const *opts, size_t n)
{
	btrfslayer *h = NULL;
	assert_ok(btrfslayer_open(home, opts, n, NULL, 0, NULL, 0, &h, ERR));
	return h;
}

static void close_home(btrfslayer *h)
{
	assert_ok(btrfslayer_close(h, ERR));
}

/* A status key's number, or -1 (no assertion: usable in a child). */
static long status_number(btrfslayer *h, const char *key)
{
	btrfslayer_list *list = NULL;
	long n = -1;
	if (btrfslayer_status(h, &list, NULL) < 0)
		return -1;
	for (size_t i = 0; i < btrfslayer_list_count(list); i++)
		if (!strcmp(btrfslayer_list_key(list, i), key))
			n = strtol(btrfslayer_list_value(list, i), NULL, 10);
	btrfslayer_list_free(list);
	return n;
}

static void layer_path(const char *home, const char *id, char *buf, size_t len)
{
	snprintf(buf, len, "%s/subvolumes/%s", home, id);
}

static void write_file(const char *path, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	char block[4096];
	assert_true(fd >= 0);
	memset(block, 'x', sizeof(block));
	for (size_t done = 0; done < size; done += sizeof(block))
		assert_int_equal(write(fd, block, sizeof(block)), sizeof(block));
	assert_int_equal(close(fd), 0);
}

static uint64_t qgroup_limit(const char *mnt, uint64_t subvolume)
{
	struct probe_qgroup *q;
	uint64_t limit = 0;
	size_t n = probe_qgroups(mnt, &q);
	for (size_t i = 0; i < n; i++)
		if (q[i].id == subvolume)
			limit = q[i].max_referenced;
	free(q);
	return limit;
}

/* ---- item 4: the sweep never waits on a live handle ------------------------- */

/* The library's id lock index: FNV-1a of the id, modulo the id locks. */
static unsigned id_lock_index(const char *id)
{
	uint32_t hash = 2166136261u;
	for (; *id; id++)
		hash = (hash ^ (unsigned char)*id) * 16777619u;
	return hash % ID_LOCKS;
}

/* Open the home in a child, as a second process would, and report what the
 * open returned, its sweep_left and how long it took.  The child dies of
 * SIGALRM after `bound` seconds. */
struct child_open {
	int r;
	long left;
	double seconds;
	bool timed_out;
};

static struct child_open open_in_child(const char *home, unsigned bound)
{
	struct child_open out = { .r = 1, .left = -1 };
	struct timespec t0, t1;
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		btrfslayer *h = NULL;
		alarm(bound);
		close(fds[0]);
		out.r = btrfslayer_open(home, no_mount, 1, NULL, 0, NULL, 0, &h, NULL);
		if (out.r == 0)
			out.left = status_number(h, "sweep_left");
		btrfslayer_close(h, NULL);
		_exit(write(fds[1], &out, sizeof(out)) == (ssize_t)sizeof(out) ? 0 : 1);
	}
	close(fds[1]);
	int status;
	ssize_t got = read(fds[0], &out, sizeof(out));
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	out.seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	out.timed_out = WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM;
	if (!out.timed_out && got != (ssize_t)sizeof(out))
		fail_msg("the child that opens the home died (status 0x%x)", status);
	return out;
}

static char *read_text(const char *path)
{
	static char text[64];
	FILE *f = fopen(path, "r");
	text[0] = '\0';
	if (f) {
		if (!fgets(text, sizeof(text), f))
			text[0] = '\0';
		fclose(f);
	}
	return text;
}

/* A handle stuck inside a call on id "stuck" holds that id's lock (taken
 * here on our own open of HOME/.lock, as another handle's open file holds
 * it).  The sweep has work on that id: a dead handle's intent to set its
 * limit to 16 MiB (quotas/.tmp-<dead slot>-<hex>, user.btrfslayer.intent
 * "set <subvolume> stuck", as intent.c writes it; the library of
 * 2026-12-02 instead sets every layer's limit back to its record, under
 * the id's lock).  Open from another process must return 0 within 5 s,
 * leave that work as it is and count it (sweep_left); once the lock is
 * free, the next open finishes it: limit and record agree. */
static void test_sweep_never_waits_on_live_handle(void **state)
{
	struct ctx *c = *state;
	char path[PATH_MAX], lock_path[PATH_MAX], intent_path[PATH_MAX + 32], record[PATH_MAX];
	char intent[64];
	const char *size[] = { "size=8M" };

	btrfslayer *h = open_home(c->home, no_mount, 1);
	assert_ok(btrfslayer_create(h, "stuck", NULL, 0, NULL, size, 1, ERR));
	close_home(h);
	layer_path(c->home, "stuck", path, sizeof(path));
	uint64_t subvolume = probe_subvolume_id(path);
	/* where the library keeps reserved names: quotas/.staging since
	 * 2026-12-02 */
	char quota_dir[PATH_MAX];
	bool staged;
	probe_reserved_dir(c->home, "quotas", quota_dir, sizeof(quota_dir), &staged);
	snprintf(intent_path, sizeof(intent_path), "%s/.tmp-4000-00000000deadbeef", quota_dir);
	snprintf(record, sizeof(record), "%s/quotas/stuck", c->home);
	FILE *f = fopen(intent_path, "w");
	assert_non_null(f);
	fputs("16777216\n", f);
	assert_int_equal(fclose(f), 0);
	int len = snprintf(intent, sizeof(intent), "set %llu stuck", (unsigned long long)subvolume);
	assert_int_equal(setxattr(intent_path, "user.btrfslayer.intent", intent, (size_t)len, 0), 0);

	unsigned index = id_lock_index("stuck");
	snprintf(lock_path, sizeof(lock_path), "%s/.lock", c->home);
	int lock_fd = open(lock_path, O_RDWR | O_CLOEXEC);
	assert_true(lock_fd >= 0);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
			    .l_start = LOCK_SLOTS + index, .l_len = 1 };
	assert_int_equal(fcntl(lock_fd, F_OFD_SETLK, &fl), 0);

	struct child_open got = open_in_child(c->home, 5);
	print_message("open with id lock %u held elsewhere: %s after %.2f s, sweep_left %ld\n",
		      index, got.timed_out ? "still blocked (SIGALRM)" : "returned", got.seconds,
		      got.left);
	if (got.timed_out)
		fail_msg("open blocked for 5 s: its sweep waits for the id lock of \"stuck\" "
			 "that a live handle holds");
	assert_int_equal(got.r, 0);
	if (got.left < 1)
		fail_msg("sweep_left is %ld: the work on the locked id was neither done nor "
			 "counted as left", got.left);
	/* what it could not lock, it left as it was */
	assert_int_equal(qgroup_limit(harness_btrfs(), subvolume), 8 * MiB);
	assert_int_equal(strtoull(read_text(record), NULL, 10), 8 * MiB);
	assert_int_equal(access(intent_path, F_OK), 0);

	/* the stuck handle goes: the next open does the work */
	assert_int_equal(close(lock_fd), 0);
	h = open_home(c->home, no_mount, 1);
	assert_int_equal(status_number(h, "sweep_left"), 0);
	btrfslayer_usage u;
	assert_ok(btrfslayer_get_usage(h, "stuck", 0, &u, sizeof(u), ERR));
	print_message("after the lock is free: limit %llu, recorded %llu\n",
		      (unsigned long long)u.limit, (unsigned long long)u.recorded_limit);
	assert_int_equal(u.limit, u.recorded_limit);
	assert_true(u.limit == 8 * MiB || u.limit == 16 * MiB);
	assert_int_equal(access(intent_path, F_OK), -1);
	assert_ok(btrfslayer_remove(h, "stuck", ERR));
	close_home(h);
}

/* Whether another open file holds the lock of `index` (our fd holds
 * nothing). */
static bool id_lock_held(int fd, unsigned index)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
			    .l_start = LOCK_SLOTS + index, .l_len = 1 };
	return fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
}

/* The same with a real handle: a process looping set_quota on "stuck" is
 * stopped (SIGSTOP) at a moment it holds the id's lock.  Open from another
 * process returns 0 within 5 s. */
static void test_sweep_never_waits_on_stopped_handle(void **state)
{
	struct ctx *c = *state;
	char lock_path[PATH_MAX];
	const char *size[] = { "size=8M" };
	btrfslayer *h = open_home(c->home, no_mount, 1);
	assert_ok(btrfslayer_create(h, "stuck", NULL, 0, NULL, size, 1, ERR));
	close_home(h);
	snprintf(lock_path, sizeof(lock_path), "%s/.lock", c->home);
	int fd = open(lock_path, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);

	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (btrfslayer_open(c->home, no_mount, 1, NULL, 0, NULL, 0, &h, NULL) < 0)
			_exit(1);
		for (uint64_t i = 0;; i++)
			btrfslayer_set_quota(h, "stuck", (8 + i % 8) * MiB, NULL);
	}
	running = pid;
	unsigned index = id_lock_index("stuck");
	bool held = false;
	for (int attempt = 0; attempt < 2000 && !held; attempt++) {
		nanosleep(&(struct timespec){ .tv_nsec = (attempt % 7) * 100 * 1000 }, NULL);
		assert_int_equal(kill(pid, SIGSTOP), 0);
		assert_int_equal(waitpid(pid, NULL, WUNTRACED), pid);
		held = id_lock_held(fd, index);
		if (!held)
			assert_int_equal(kill(pid, SIGCONT), 0);
	}
	close(fd);
	if (!held)
		fail_msg("the set_quota loop was never stopped holding the id lock");

	struct child_open got = open_in_child(c->home, 5);
	print_message("open while a handle is stopped inside set_quota: %s after %.2f s, "
		      "sweep_left %ld\n", got.timed_out ? "still blocked (SIGALRM)" : "returned",
		      got.seconds, got.left);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	running = -1;
	if (got.timed_out)
		fail_msg("open blocked for 5 s behind a handle stopped inside set_quota");
	assert_int_equal(got.r, 0);
	assert_true(got.left >= 0);

	/* the stopped handle is gone: everything is whole again */
	h = open_home(c->home, no_mount, 1);
	assert_int_equal(status_number(h, "sweep_left"), 0);
	assert_ok(btrfslayer_remove(h, "stuck", ERR));
	close_home(h);
}

/* ---- item 23: a layer's own mount does not hide it ------------------------- */

static void bind_mount(const char *from, const char *to)
{
	if (mount(from, to, NULL, MS_BIND, NULL) < 0)
		fail_msg("bind mount %s on %s: %s", from, to, strerror(errno));
	for (size_t i = 0; i < sizeof(mounted) / sizeof(mounted[0]); i++)
		if (!mounted[i][0]) {
			snprintf(mounted[i], sizeof(mounted[i]), "%s", to);
			break;
		}
}

static void unmount(const char *path)
{
	if (umount2(path, 0) < 0)
		fail_msg("umount %s: %s", path, strerror(errno));
	for (size_t i = 0; i < sizeof(mounted) / sizeof(mounted[0]); i++)
		if (!strcmp(mounted[i], path))
			mounted[i][0] = '\0';
}

static void test_layer_mounted_on_itself(void **state)
{
	struct ctx *c = *state;
	char path[PATH_MAX], file[PATH_MAX + 16], *got = NULL;
	btrfslayer *h = open_home(c->home, no_mount, 1);
	assert_ok(btrfslayer_create(h, "bound", NULL, 0, NULL, NULL, 0, ERR));
	layer_path(c->home, "bound", path, sizeof(path));
	snprintf(file, sizeof(file), "%s/data", path);
	write_file(file, 4096);

	/* as a runtime does for mount propagation */
	bind_mount(path, path);
	int exists = btrfslayer_exists(h, "bound", NULL);
	if (exists != 1)
		fail_msg("exists(bound) = %d for a layer bind-mounted onto itself: want 1", exists);
	assert_ok(btrfslayer_get(h, "bound", NULL, &got, ERR));
	assert_string_equal(got, path);
	free(got);
	expect_fail(btrfslayer_remove(h, "bound", ERR), -EBUSY, "bound");
	assert_int_equal(btrfslayer_exists(h, "bound", NULL), 1);
	assert_int_equal(access(file, F_OK), 0);
	unmount(path);
	/* intact under its mount, and removable once it is gone */
	assert_int_equal(btrfslayer_exists(h, "bound", NULL), 1);
	assert_int_equal(access(file, F_OK), 0);
	assert_int_equal(probe_read_only(path), 0);
	assert_ok(btrfslayer_remove(h, "bound", ERR));

	/* another subvolume mounted at a layer's name is not that layer */
	char foreign[PATH_MAX], sentinel[PATH_MAX + 16];
	snprintf(foreign, sizeof(foreign), "%s/foreign-subvolume", harness_btrfs());
	assert_int_equal(btrfs_util_create_subvolume(foreign, 0, NULL, NULL), BTRFS_UTIL_OK);
	snprintf(sentinel, sizeof(sentinel), "%s/sentinel", foreign);
	write_file(sentinel, 4096);
	assert_ok(btrfslayer_create(h, "covered", NULL, 0, NULL, NULL, 0, ERR));
	layer_path(c->home, "covered", path, sizeof(path));
	bind_mount(foreign, path);
	assert_int_equal(btrfslayer_exists(h, "covered", NULL), 0);
	expect_fail(btrfslayer_get(h, "covered", NULL, &got, ERR), -ENOENT, "not a layer");
	expect_fail(btrfslayer_remove(h, "covered", ERR), -ENOENT, "not a layer");
	unmount(path);
	assert_int_equal(access(sentinel, F_OK), 0);
	assert_int_equal(probe_read_only(foreign), 0);
	assert_int_equal(btrfslayer_exists(h, "covered", NULL), 1);
	assert_ok(btrfslayer_remove(h, "covered", ERR));
	assert_int_equal(btrfs_util_delete_subvolume(foreign, 0), BTRFS_UTIL_OK);
	close_home(h);
}

/* ---- item 22: a remove that meets a busy nested subvolume ------------------- */

/* `btrfs send` of `path` into a pipe nobody reads: it blocks with the
 * subvolume held (the kernel refuses to delete it meanwhile).  *reader is
 * the pipe's read end. */
static pid_t start_blocked_send(const char *path, int *reader)
{
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(fds[1], STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		close(fds[0]);
		execlp("btrfs", "btrfs", "send", "-q", path, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	*reader = fds[0];
	running = pid;
	/* wait until the pipe is full and stays so: send is then stuck in
	 * the middle of the stream */
	int last = -1, steady = 0;
	for (int i = 0; i < 500 && steady < 5; i++) {
		int queued = 0;
		nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
		if (ioctl(fds[0], FIONREAD, &queued) < 0 || waitpid(pid, NULL, WNOHANG) != 0)
			break;
		steady = queued >= 16 * 1024 && queued == last ? steady + 1 : 0;
		last = queued;
	}
	if (steady == 5)
		return pid;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	running = -1;
	fail_msg("btrfs send %s never filled its pipe", path);
	return -1;
}

static void stop_send(pid_t pid, int reader)
{
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	running = -1;
	close(reader);
}

/* Layer `id` with nested subvolumes "ro" (read-only, 4 MiB of data) and
 * "rw", made in the order given. */
static void make_nested_layer(btrfslayer *h, const char *home, const char *id, bool ro_first,
			      uint64_t ids[2])
{
	char path[PATH_MAX], ro[PATH_MAX + 8], rw[PATH_MAX + 8], data[PATH_MAX + 16];
	assert_ok(btrfslayer_create(h, id, NULL, 0, NULL, NULL, 0, ERR));
	layer_path(home, id, path, sizeof(path));
	snprintf(ro, sizeof(ro), "%s/ro", path);
	snprintf(rw, sizeof(rw), "%s/rw", path);
	for (int i = 0; i < 2; i++) {
		const char *sub = (i == 0) == ro_first ? ro : rw;
		assert_int_equal(btrfs_util_create_subvolume(sub, 0, NULL, NULL), BTRFS_UTIL_OK);
	}
	snprintf(data, sizeof(data), "%s/data", ro);
	write_file(data, 4 * MiB);
	snprintf(data, sizeof(data), "%s/data", rw);
	write_file(data, 4096);
	probe_settle(harness_btrfs());
	assert_int_equal(btrfs_util_set_subvolume_read_only(ro, true), BTRFS_UTIL_OK);
	ids[0] = probe_subvolume_id(ro);
	ids[1] = probe_subvolume_id(rw);
}

static bool subvolume_alive(uint64_t id)
{
	uint64_t *ids;
	size_t n = probe_subvolumes(harness_btrfs(), &ids);
	bool found = false;
	for (size_t i = 0; i < n; i++)
		found |= ids[i] == id;
	free(ids);
	return found;
}

/* One order of nested subvolumes: remove while "ro" is being sent. */
static void remove_while_sending(const struct ctx *c, const char *id, bool ro_first)
{
	char path[PATH_MAX], ro[PATH_MAX + 8], rw_data[PATH_MAX + 16];
	uint64_t nested[2];
	btrfslayer *h = open_home(c->home, no_mount, 1);
	make_nested_layer(h, c->home, id, ro_first, nested);
	layer_path(c->home, id, path, sizeof(path));
	snprintf(ro, sizeof(ro), "%s/ro", path);
	snprintf(rw_data, sizeof(rw_data), "%s/rw/data", path);
	int reader;
	pid_t send = start_blocked_send(ro, &reader);

	btrfslayer_error *err = NULL;
	int r = btrfslayer_remove(h, id, &err);
	int exists = btrfslayer_exists(h, id, NULL);
	const char *msg = err ? btrfslayer_error_message(err) : "(no error)";
	print_message("remove %s (nested %s first) during send: %d, exists %d: %s\n", id,
		      ro_first ? "ro" : "rw", r, exists, msg);
	bool gone = exists == 0;
	if (r < 0 && exists == 1) {
		/* failed before changing anything: whole, under its id */
		assert_int_equal(probe_read_only(path), 0);
		assert_int_equal(probe_read_only(ro), 1);
		assert_int_equal(access(rw_data, F_OK), 0);
		assert_true(subvolume_alive(nested[0]) && subvolume_alive(nested[1]));
	} else if (r < 0) {
		if (!strstr(msg, id) ||
		    !(strstr(msg, "later") || strstr(msg, "at close") || strstr(msg, "next open")))
			fail_msg("remove %s stopped half-way (the id is gone) but its error does "
				 "not say that the layer is gone and the rest is deleted later: "
				 "\"%s\"", id, msg);
	} else {
		assert_int_equal(exists, 0);
	}
	btrfslayer_error_free(err);
	stop_send(send, reader);

	/* once the send is over, close and the next open clean up */
	close_home(h);
	h = open_home(c->home, no_mount, 1);
	if (gone) {
		char *left = probe_home_listing(c->home, "subvolumes", NULL);
		assert_string_equal(left, "");
		free(left);
		probe_settle(harness_btrfs());
		assert_false(subvolume_alive(nested[0]));
		assert_false(subvolume_alive(nested[1]));
	} else {
		assert_ok(btrfslayer_remove(h, id, ERR));
	}
	assert_int_equal(btrfslayer_exists(h, id, NULL), 0);
	close_home(h);
}

static void test_remove_meets_busy_nested(void **state)
{
	const struct ctx *c = *state;
	remove_while_sending(c, "nest-ro-first", true);
	remove_while_sending(c, "nest-rw-first", false);
}

/* ---- items 20 and 24: a full filesystem ------------------------------------ */

/* A small btrfs of its own, below the harness's mount (so that the
 * harness's safety net unmounts it recursively should we die). */
struct small {
	char image[HOME_MAX], mnt[HOME_MAX], home[HOME_MAX + 8], fill[HOME_MAX + 8];
	bool mounted;
	btrfslayer *h;	/* open on it, closed by the teardown of a failed test */
};

static struct small small;
/* What went wrong at ENOSPC, all of it: the test fails at its end. */
static char problems[8192];

static void small_teardown(void)
{
	btrfslayer_close(small.h, NULL);
	small.h = NULL;
	if (small.mounted && umount2(small.mnt, 0) < 0 && umount2(small.mnt, MNT_DETACH) < 0)
		fprintf(stderr, "umount %s: %s\n", small.mnt, strerror(errno));
	small.mounted = false;
	if (small.mnt[0])
		rmdir(small.mnt);
	if (small.image[0])
		unlink(small.image);
}

static int small_test_teardown(void **state)
{
	(void)state;
	problems[0] = '\0';
	small_teardown();
	return 0;
}

static void small_make(void)
{
	/* the image on the host's disk: filling it must not fill the harness's
	 * btrfs */
	snprintf(small.image, sizeof(small.image), "%s/../small.img", harness_btrfs());
	snprintf(small.mnt, sizeof(small.mnt), "%s/small", harness_btrfs());
	snprintf(small.home, sizeof(small.home), "%s/home", small.mnt);
	snprintf(small.fill, sizeof(small.fill), "%s/fill", small.mnt);
	int fd = open(small.image, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, SMALL_FS_SIZE), 0);
	close(fd);
	assert_int_equal(mkdir(small.mnt, 0755), 0);
	const char *const mkfs[] = { "mkfs.btrfs", "-q", "-f", small.image, NULL };
	assert_int_equal(harness_run(mkfs), 0);
	const char *const mnt[] = { "mount", "-t", "btrfs", "-o", "loop", small.image,
				    small.mnt, NULL };
	assert_int_equal(harness_run(mnt), 0);
	small.mounted = true;
	assert_int_equal(mkdir(small.fill, 0755), 0);
}

/* Write `fd` until ENOSPC, in ever smaller pieces, committing between
 * rounds (a commit returns what reservations held back); the bytes. */
static uint64_t fill_data(void)
{
	static char block[MiB];
	char path[PATH_MAX + 16];
	uint64_t total = 0;
	snprintf(path, sizeof(path), "%s/big", small.fill);
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	memset(block, 'f', sizeof(block));
	for (int round = 0; round < 4; round++) {
		uint64_t before = total;
		for (size_t piece = MiB; piece >= 4096; piece /= 4) {
			ssize_t n;
			while ((n = write(fd, block, piece)) > 0)
				total += (uint64_t)n;
		}
		fsync(fd);
		syncfs(fd);
		if (total == before)
			break;
	}
	close(fd);
	return total;
}

/* Metadata: files with big xattrs, then empty files and directories, until
 * ENOSPC, committing between rounds; the number of entries made. */
static unsigned long fill_metadata(void)
{
	static char value[3800];
	char path[PATH_MAX + 32];
	unsigned long made = 0;
	memset(value, 'm', sizeof(value));
	for (int round = 0; round < 6; round++) {
		unsigned long before = made;
		for (int kind = 0; kind < 3; kind++) {
			for (;;) {
				snprintf(path, sizeof(path), "%s/m%d-%lu", small.fill, kind, made);
				if (kind == 2 && mkdir(path, 0755) < 0)
					break;
				int fd = kind == 2 ? -1 : open(path, O_WRONLY | O_CREAT | O_EXCL |
							       O_CLOEXEC, 0644);
				if (kind != 2 && fd < 0)
					break;
				if (fd >= 0)
					close(fd);
				made++;
				if (kind == 0 && setxattr(path, "user.fill", value, sizeof(value), 0) < 0)
					break;
			}
		}
		sync();
		if (made == before)
			break;
	}
	return made;
}


__attribute__((format(printf, 1, 2)))
static void problem(const char *fmt, ...)
{
	size_t used = strlen(problems);
	va_list ap;
	if (used + 2 >= sizeof(problems))
		return;
	if (used)
		strcat(problems, "\n");
	va_start(ap, fmt);
	vsnprintf(problems + strlen(problems), sizeof(problems) - strlen(problems), fmt, ap);
	va_end(ap);
}

static void no_problems(void)
{
	if (!problems[0])
		return;
	int n = 0;
	/* cmocka cuts long messages: one line each, then the verdict */
	for (char *save = NULL, *line = strtok_r(problems, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		print_message("PROBLEM %d: %s\n", ++n, line);
	fail_msg("%d problems at ENOSPC (listed above)", n);
}

/* What a failed call must not have changed. */
struct fs_state {
	char *subvolumes, *quotas, *limits, *stale_limits;
	uint64_t *ids;
	size_t n_ids;
};

static void state_take(struct fs_state *s)
{
	s->subvolumes = probe_home_listing(small.home, "subvolumes", NULL);
	/* markers of qgroups waiting for the kernel's cleaner may come and go */
	s->quotas = probe_home_listing(small.home, "quotas", ".qgroup-");
	s->limits = probe_limits(small.mnt, false);
	s->stale_limits = probe_limits(small.mnt, true);
	s->n_ids = probe_subvolumes(small.mnt, &s->ids);
}

static void state_free(struct fs_state *s)
{
	free(s->subvolumes);
	free(s->quotas);
	free(s->limits);
	free(s->stale_limits);
	free(s->ids);
}

static void state_expect(const struct fs_state *before, const char *what)
{
	struct fs_state now;
	state_take(&now);
	/* (what an earlier call left is that call's problem) */
	if (strcmp(now.subvolumes, before->subvolumes))
		problem("%s changed subvolumes/: \"%s\", was \"%s\"", what, now.subvolumes,
			 before->subvolumes);
	if (strcmp(now.quotas, before->quotas))
		problem("%s changed quotas/: \"%s\", was \"%s\"", what, now.quotas, before->quotas);
	if (now.n_ids != before->n_ids ||
	    memcmp(now.ids, before->ids, now.n_ids * sizeof(*now.ids)))
		problem("%s: %zu subvolumes on the filesystem now, there were %zu", what,
			 now.n_ids, before->n_ids);
	if (strcmp(now.limits, before->limits))
		problem("%s changed the qgroup limits: \"%s\", were \"%s\"", what, now.limits,
			 before->limits);
	/* the qgroup of a subvolume it made and deleted may wait for the
	 * kernel's cleaner; once that is done, no limit of it may stay */
	if (strcmp(now.stale_limits, before->stale_limits)) {
		probe_settle(small.mnt);
		char *stale = probe_limits(small.mnt, true);
		if (strcmp(stale, before->stale_limits))
			problem("%s left qgroups with limits whose subvolume is gone, after the "
				 "kernel's cleaner was done: \"%s\", were \"%s\"", what, stale,
				 before->stale_limits);
		free(stale);
	}
	state_free(&now);
}

/* A call on layer `id` at ENOSPC: it succeeded (the layer is there), or it
 * failed with an error that names the layer, not a reserved name, and left
 * the filesystem as it was. */
static void expect_clean(btrfslayer *h, int r, btrfslayer_error *err, const char *id,
			 const char *what, const struct fs_state *before)
{
	const char *msg = err ? btrfslayer_error_message(err) : NULL;
	print_message("  %s: %d%s%s\n", what, r, msg ? ": " : "", msg ? msg : "");
	if (r == 0) {
		assert_int_equal(btrfslayer_exists(h, id, NULL), 1);
		return;
	}
	if (!msg) {
		problem("%s failed (%d) without an error object", what, r);
		return;
	}
	if (!strstr(msg, id) || strstr(msg, ".tmp-") || strstr(msg, ".tomb-"))
		problem("%s: the error must name layer %s, not a reserved name: \"%s\"", what, id,
			 msg);
	btrfslayer_error_free(err);
	state_expect(before, what);
}

static const char *const size16[] = { "size=16M" };

/* After close: no reserved name in subvolumes/ or quotas/. */
static void expect_nothing_reserved(void)
{
	struct fs_state now;
	state_take(&now);
	if (probe_has_reserved(now.subvolumes) || probe_has_reserved(now.quotas))
		problem("after close, %s holds subvolumes \"%s\" and quotas \"%s\"", small.home,
			now.subvolumes, now.quotas);
	state_free(&now);
}

/* Open the small home in `mode` (NULL: quotas off) with layers "base" (a
 * snapshot source), "victim", "victim-sized" (16 MiB limit with quotas on)
 * and "victim-nested" (a subvolume nested in it) to remove, and "limited"
 * (size limit 32 MiB,
 * when quotas are on). */
static btrfslayer *small_home(const char *mode)
{
	char opt[64], file[PATH_MAX + 32];
	const char *opts[2] = { "btrfs.mount_home=false", opt };
	snprintf(opt, sizeof(opt), "btrfs.quota_mode=%s", mode ? mode : "");
	btrfslayer *h = small.h = open_home(small.home, opts, mode ? 2 : 1);
	const char *limit[] = { "size=32M" };
	assert_ok(btrfslayer_create(h, "base", NULL, 0, NULL, NULL, 0, ERR));
	assert_ok(btrfslayer_create(h, "victim", NULL, 0, NULL, NULL, 0, ERR));
	assert_ok(btrfslayer_create(h, "victim-sized", NULL, 0, NULL, size16, mode ? 1 : 0, ERR));
	assert_ok(btrfslayer_create(h, "victim-nested", NULL, 0, NULL, NULL, 0, ERR));
	snprintf(file, sizeof(file), "%s/subvolumes/victim-nested/inner", small.home);
	assert_int_equal(btrfs_util_create_subvolume(file, 0, NULL, NULL), BTRFS_UTIL_OK);
	snprintf(file, sizeof(file), "%s/subvolumes/victim-nested/inner/data", small.home);
	write_file(file, 64 * 1024);
	assert_ok(btrfslayer_create(h, "limited", NULL, 0, NULL, limit, mode ? 1 : 0, ERR));
	snprintf(file, sizeof(file), "%s/subvolumes/base/data", small.home);
	write_file(file, MiB);
	snprintf(file, sizeof(file), "%s/subvolumes/victim/data", small.home);
	write_file(file, 2 * MiB);
	return h;
}

/* set_quota at ENOSPC: it took (limit and record), or it failed and left
 * both. */
static void set_quota_clean(btrfslayer *h, uint64_t size, const struct fs_state *before)
{
	char path[PATH_MAX + 32];
	btrfslayer_error *err = NULL;
	btrfslayer_usage u;
	char record[PATH_MAX + 32], was[64];
	snprintf(record, sizeof(record), "%s/quotas/limited", small.home);
	snprintf(was, sizeof(was), "%s", read_text(record));
	int r = btrfslayer_set_quota(h, "limited", size, &err);
	expect_clean(h, r, err, "limited", "set_quota limited", before);
	if (r < 0 && strcmp(read_text(record), was))
		problem("set_quota limited failed but changed its record: \"%s\", was \"%s\"",
			read_text(record), was);
	snprintf(path, sizeof(path), "%s/subvolumes/limited", small.home);
	if (r == 0) {
		assert_ok(btrfslayer_get_usage(h, "limited", 0, &u, sizeof(u), ERR));
		assert_int_equal(u.limit, size);
		assert_int_equal(u.recorded_limit, size);
	}
}

/* Remove layer `id` on a full filesystem (item 20): it succeeds, and the
 * layer is gone whole, subvolumes (nested ones too) and record, nothing
 * buried. */
static void remove_full(btrfslayer *h, const char *id)
{
	char path[PATH_MAX + 32], inner[PATH_MAX + 48], what[64];
	btrfslayer_error *err = NULL;
	struct fs_state after;
	snprintf(what, sizeof(what), "remove %s (full)", id);
	snprintf(path, sizeof(path), "%s/subvolumes/%s", small.home, id);
	snprintf(inner, sizeof(inner), "%s/inner", path);
	uint64_t ids[2] = { probe_subvolume_id(path), probe_subvolume_id(inner) };
	assert_true(ids[0] > 0);
	int r = btrfslayer_remove(h, id, &err);
	print_message("  %s: %d%s%s\n", what, r, err ? ": " : "",
		      err ? btrfslayer_error_message(err) : "");
	if (r < 0)
		problem("%s: %d: %s", what, r, err ? btrfslayer_error_message(err) : "no error");
	btrfslayer_error_free(err);
	if (r < 0)
		return;
	state_take(&after);
	if (btrfslayer_exists(h, id, NULL) != 0)
		problem("%s returned 0 but the layer still exists", what);
	if (probe_has_reserved(after.subvolumes) || probe_has_reserved(after.quotas))
		problem("%s returned 0 but left subvolumes \"%s\", quotas \"%s\"", what,
			after.subvolumes, after.quotas);
	for (const char *q = after.quotas; (q = strstr(q, id)); q++)
		if ((q == after.quotas || q[-1] == ' ') && (q[strlen(id)] == ' ' || !q[strlen(id)]))
			problem("%s returned 0 but its record quotas/%s is still there", what, id);
	for (size_t i = 0; i < after.n_ids; i++)
		for (int k = 0; k < 2; k++)
			if (ids[k] && after.ids[i] == ids[k])
				problem("%s returned 0 but subvolume %llu of it is still there", what,
					(unsigned long long)ids[k]);
	state_free(&after);
}

/* With only data full (item 24): create with size= and set_quota, whose
 * records need a data reservation, succeed or fail cleanly, naming the
 * layer. */
static void data_full(const char *mode)
{
	struct fs_state before;
	btrfslayer_error *err = NULL;
	small_make();
	btrfslayer *h = small_home(mode);
	uint64_t data = fill_data();
	print_message("%s: data full after %llu MiB\n", mode ? mode : "off",
		      (unsigned long long)(data / MiB));
	state_take(&before);
	int r = btrfslayer_create(h, "a-sized", NULL, 0, NULL, size16, 1, &err);
	expect_clean(h, r, err, "a-sized", "create a-sized size=16M (data full)", &before);
	state_free(&before);
	state_take(&before);
	set_quota_clean(h, 48 * MiB, &before);
	state_free(&before);
	small.h = NULL;
	close_home(h);
	expect_nothing_reserved();
	no_problems();
}

/* With data and metadata full (items 20, 24): remove works; create,
 * snapshot, create with size= and set_quota succeed or fail cleanly. */
static void all_full(const char *mode)
{
	struct fs_state before;
	btrfslayer_error *err = NULL;
	small_make();
	btrfslayer *h = small_home(mode);
	uint64_t data = fill_data();
	unsigned long entries = fill_metadata();
	print_message("%s: full after %llu MiB of data and %lu entries\n", mode ? mode : "off",
		      (unsigned long long)(data / MiB), entries);
	int r;

	static const struct {
		const char *id, *parent;
		bool sized;
	} creates[] = {
		{ "b-empty", NULL, false },
		{ "b-snapshot", "base", false },
		{ "b-sized", NULL, true },
		{ "b-sized-snapshot", "base", true },
	};
	for (size_t i = 0; i < sizeof(creates) / sizeof(creates[0]); i++) {
		char what[96];
		snprintf(what, sizeof(what), "create %s%s%s%s (full)", creates[i].id,
			 creates[i].parent ? " from " : "", creates[i].parent ? creates[i].parent : "",
			 creates[i].sized ? " size=16M" : "");
		state_take(&before);
		err = NULL;
		r = btrfslayer_create(h, creates[i].id, creates[i].parent, 0, NULL, size16,
				      creates[i].sized, &err);
		expect_clean(h, r, err, creates[i].id, what, &before);
		state_free(&before);
	}
	state_take(&before);
	set_quota_clean(h, 40 * MiB, &before);
	state_free(&before);
	/* last, as they free space: a plain layer, one with a recorded limit
	 * (with quotas on), one with a subvolume nested in it */
	remove_full(h, "victim");
	remove_full(h, "victim-sized");
	remove_full(h, "victim-nested");
	/* a little room back, where other steps run out of it */
	state_take(&before);
	err = NULL;
	r = btrfslayer_create(h, "c-sized", NULL, 0, NULL, size16, 1, &err);
	expect_clean(h, r, err, "c-sized", "create c-sized size=16M (after the removals)", &before);
	state_free(&before);
	state_take(&before);
	set_quota_clean(h, 48 * MiB, &before);
	state_free(&before);
	small.h = NULL;
	close_home(h);
	expect_nothing_reserved();
	no_problems();
}

static void test_enospc_data_full_quotas_off(void **state)
{
	(void)state;
	data_full(NULL);
}

static void test_enospc_data_full_qgroup(void **state)
{
	(void)state;
	data_full("qgroup");
}

static void test_enospc_data_full_simple(void **state)
{
	(void)state;
	data_full("simple");
}

static void test_enospc_full_quotas_off(void **state)
{
	(void)state;
	all_full(NULL);
}

static void test_enospc_full_qgroup(void **state)
{
	(void)state;
	all_full("qgroup");
}

static void test_enospc_full_simple(void **state)
{
	(void)state;
	all_full("simple");
}

int main(void)
{
	const char *filter = getenv("BTRFSLAYER_TEST_FILTER");
	if (filter)
		cmocka_set_test_filter(filter);
	harness_start();
	atexit(small_teardown);	/* before the harness's own teardown */
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
#define S(f) cmocka_unit_test_teardown(f, small_test_teardown)
	const struct CMUnitTest tests[] = {
		T(test_sweep_never_waits_on_live_handle),
		T(test_sweep_never_waits_on_stopped_handle),
		T(test_layer_mounted_on_itself),
		T(test_remove_meets_busy_nested),
		S(test_enospc_data_full_quotas_off),
		S(test_enospc_data_full_qgroup),
		S(test_enospc_data_full_simple),
		S(test_enospc_full_quotas_off),
		S(test_enospc_full_qgroup),
		S(test_enospc_full_simple),
	};
	return cmocka_run_group_tests_name("integration.edge", tests, NULL, NULL);
}
