/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Races between processes on one home, on a real btrfs:
 * - two (or more) sweeps at once keep every qgroup marker, so no qgroup of
 *   a deleted subvolume is kept for good (item 2);
 * - a racer that swaps the `.tmp-*` being built for its own writable
 *   subvolume never gets it published as a read-only layer (item 12);
 * - a racer that bind-mounts an outside subvolume onto each new `.tmp-*`
 *   never gets the library to change or delete it (item 21).
 * The racers are processes pinned to the library's CPU, at a real-time
 * priority when the kernel allows it, so that an inotify event wakes them
 * before the library's next step: the windows are then hit often, not
 * once in thousands.
 *
 * Environment: BTRFSLAYER_RACE_SECONDS (time bound of each racer test,
 * default 8) and BTRFSLAYER_RACE_CREATES (their creates, default 3000),
 * BTRFSLAYER_RACE_SWEEPERS (processes opening at once, default 4) and
 * BTRFSLAYER_RACE_ROUNDS (of those, default 3),
 * BTRFSLAYER_TEST_FILTER (a cmocka test name pattern).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <btrfsutil.h>
#include <cmocka.h>

#include "btrfslayer.h"
#include "check.h"
#include "fsprobe.h"
#include "harness.h"

#define HOME_MAX 128
#define TOMBSTONES 30
/* a slot no live handle holds (session.c: 4096 slots) */
#define DEAD_SLOT 4000
#define ATTACKER_FILE "ATTACKER"
#define SENTINEL_FILE "sentinel"
#define SENTINEL_TEXT "outside home: must survive\n"
#define SWAPS_MAX 8192

struct ctx {
	char home[HOME_MAX];
};

static const char *const no_mount[] = { "btrfs.mount_home=false" };
static const char *const size16[] = { "size=16M" };

/* The racer of a failed test is stopped by its teardown. */
static pid_t racer = -1;
static struct racer_state {
	volatile int stop;
	volatile int ready;
	int events;
	int hits;
	bool realtime;
	/* for item 12: the delay (µs) after which evil-<n> was swapped in */
	long swap_delay[SWAPS_MAX];
} *shared;

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	harness_new_home(c->home, sizeof(c->home));
	*state = c;
	return 0;
}

static void stop_racer(void)
{
	if (racer <= 0)
		return;
	shared->stop = 1;
	int status;
	alarm(30);
	waitpid(racer, &status, 0);
	alarm(0);
	racer = -1;
}

static int teardown(void **state)
{
	stop_racer();
	free(*state);
	return 0;
}

static unsigned long env_number(const char *name, unsigned long fallback)
{
	const char *v = getenv(name);
	return v && *v ? strtoul(v, NULL, 10) : fallback;
}

/* Memory shared with the children forked after. */
static void *shared_memory(size_t size)
{
	int prot = PROT_READ | PROT_WRITE, flags = MAP_SHARED | MAP_ANONYMOUS;
	/* cppcheck-suppress invalidFunctionArg ; fd -1 is MAP_ANONYMOUS's (mmap(2)) */
	void *p = mmap(NULL, size, prot, flags, -1, 0);
	assert_true(p != MAP_FAILED);
	return p;
}

static void pause_us(long us)
{
	struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = us % 1000000 * 1000 };
	nanosleep(&ts, NULL);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void layer_path(const char *home, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/subvolumes/%s", home, name);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* ---- item 2: sweeps at once keep every qgroup marker ------------------------ */

/* Open and close the home in `n` processes that start at once. */
static void open_at_once(const char *home, const char *const *opts, size_t n_opts, int n)
{
	pthread_barrier_t *barrier = shared_memory(sizeof(*barrier));
	pthread_barrierattr_t attr;
	pthread_barrierattr_init(&attr);
	pthread_barrierattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	assert_int_equal(pthread_barrier_init(barrier, &attr, (unsigned)n), 0);
	pthread_barrierattr_destroy(&attr);
	pid_t pids[16];
	for (int i = 0; i < n; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			btrfslayer *h = NULL;
			alarm(120);
			pthread_barrier_wait(barrier);
			int r = btrfslayer_open(home, opts, n_opts, NULL, 0, NULL, 0, &h, NULL);
			_exit(r == 0 && btrfslayer_close(h, NULL) == 0 ? 0 : 1);
		}
	}
	for (int i = 0; i < n; i++) {
		int status;
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			fail_msg("sweeper %d: open or close failed (status 0x%x)", i, status);
	}
	pthread_barrier_destroy(barrier);
	munmap(barrier, sizeof(*barrier));
}

/* With every handle closed, each qgroup of a deleted subvolume that the
 * kernel still keeps must have its marker, or nobody will destroy it.  With
 * full qgroups on Linux 6.11 and later the kernel destroys them itself once
 * its cleaner is done, and the library leaves no marker: each must go. */
static void expect_marked(const char *home, const char *mode)
{
	char *stale = probe_stale_qgroups(harness_btrfs());
	int n_stale = 0, lost = 0;
	char lost_ids[1024] = "";
	for (char *save = NULL, *q = strtok_r(stale, " ", &save); q; q = strtok_r(NULL, " ", &save)) {
		n_stale++;
		bool found = harness_marked(home, strtoull(q + 2, NULL, 10));
		if (!found && !strcmp(mode, "qgroup") && harness_kernel_drops_qgroups() &&
		    harness_qgroup_left_to_kernel(harness_btrfs(), strtoull(q + 2, NULL, 10)))
			continue;
		if (!found && lost++ < 40) {
			strcat(lost_ids, q);
			strcat(lost_ids, " ");
		}
	}
	print_message("%s: after the sweeps, %d qgroups of deleted subvolumes kept by the kernel, "
		      "%d without a marker\n", mode, n_stale, lost);
	if (lost)
		fail_msg("%s: %d qgroups of deleted subvolumes have lost their marker, so nobody "
			 "will destroy them: %s", mode, lost, lost_ids);
	free(stale);
}

/* ~30 tombstones of a dead handle (layers with data, renamed to
 * `.tomb-<dead slot>-<16 hex>`, quota files too, as remove buries them),
 * each the parent of a live layer that shares its data: with simple quotas
 * the kernel then keeps the deleted parent's qgroup, charged for that data,
 * until the child goes, and only a marker remembers to destroy it.  Several
 * processes open at once; then the children are removed.  Once the
 * kernel's cleaner is done and one more open/close ran: no level-0 qgroup
 * without a subvolume, no marker, nothing buried. */
static void sweeps_at_once_round(const struct ctx *c, const char *mode)
{
	char opt[64], from[PATH_MAX], to[PATH_MAX + 64], file[PATH_MAX + 16], id[16], child[16];
	const char *opts[] = { "btrfs.mount_home=false", opt };
	static char data[64 * 1024];
	snprintf(opt, sizeof(opt), "btrfs.quota_mode=%s", mode);
	/* start from quotas off, so that the mode can be picked */
	const char *const disable[] = { "btrfs", "quota", "disable", harness_btrfs(), NULL };
	harness_run(disable);
	memset(data, 'd', sizeof(data));

	btrfslayer *h = NULL;
	assert_ok(btrfslayer_open(c->home, opts, 2, NULL, 0, NULL, 0, &h, ERR));
	for (int i = 0; i < TOMBSTONES; i++) {
		snprintf(id, sizeof(id), "t%d", i);
		assert_ok(btrfslayer_create(h, id, NULL, 0, NULL, size16, 1, ERR));
		layer_path(c->home, id, from, sizeof(from));
		snprintf(file, sizeof(file), "%s/data", from);
		FILE *f = fopen(file, "w");
		assert_non_null(f);
		assert_int_equal(fwrite(data, 1, sizeof(data), f), sizeof(data));
		assert_int_equal(fclose(f), 0);
	}
	probe_settle(harness_btrfs());	/* the data is charged to t<i> */
	for (int i = 0; i < TOMBSTONES; i++) {
		snprintf(id, sizeof(id), "t%d", i);
		snprintf(child, sizeof(child), "s%d", i);
		assert_ok(btrfslayer_create(h, child, id, 0, NULL, NULL, 0, ERR));
	}
	assert_ok(btrfslayer_close(h, ERR));
	probe_settle(harness_btrfs());
	/* where the library keeps reserved names: .staging since 2026-12-02 */
	char quota_dir[PATH_MAX], stand_ins[PATH_MAX];
	bool staged, subvolumes_staged;
	probe_reserved_dir(c->home, "quotas", quota_dir, sizeof(quota_dir), &staged);
	probe_reserved_dir(c->home, "subvolumes", stand_ins, sizeof(stand_ins),
			   &subvolumes_staged);
	for (int i = 0; i < TOMBSTONES; i++) {
		char tomb[40];
		snprintf(tomb, sizeof(tomb), ".tomb-%d-%016x", DEAD_SLOT, 0xdead0000u + (unsigned)i);
		if (subvolumes_staged) {
			snprintf(to, sizeof(to), "%s/%s", stand_ins, tomb);
			write_text(to, "");
		}
		snprintf(from, sizeof(from), "%s/subvolumes/t%d", c->home, i);
		snprintf(to, sizeof(to), "%s/subvolumes/%s", c->home, tomb);
		assert_int_equal(rename(from, to), 0);
		snprintf(from, sizeof(from), "%s/quotas/t%d", c->home, i);
		snprintf(to, sizeof(to), "%s/%s", quota_dir, tomb);
		assert_int_equal(rename(from, to), 0);
	}

	int sweepers = (int)env_number("BTRFSLAYER_RACE_SWEEPERS", 4);
	sweepers = sweepers < 1 ? 1 : sweepers > 16 ? 16 : sweepers;
	open_at_once(c->home, opts, 2, sweepers);
	expect_marked(c->home, mode);

	/* the children go as a user removes them */
	probe_settle(harness_btrfs());
	assert_ok(btrfslayer_open(c->home, opts, 2, NULL, 0, NULL, 0, &h, ERR));
	for (int i = 0; i < TOMBSTONES; i++) {
		snprintf(child, sizeof(child), "s%d", i);
		assert_ok(btrfslayer_remove(h, child, ERR));
	}
	assert_ok(btrfslayer_close(h, ERR));
	/* everything settled: the cleaner is done, one more open and close */
	probe_settle(harness_btrfs());
	assert_ok(btrfslayer_open(c->home, opts, 2, NULL, 0, NULL, 0, &h, ERR));
	assert_ok(btrfslayer_close(h, ERR));
	probe_settle(harness_btrfs());

	char *quotas = probe_home_listing(c->home, "quotas", NULL);
	char *subvolumes = probe_home_listing(c->home, "subvolumes", NULL);
	char *stale = probe_stale_qgroups(harness_btrfs());
	uint64_t marked[64];
	int markers = harness_markers(c->home, marked, 64), n_stale = 0;
	for (const char *p = stale; (p = strstr(p, "0/")); p++)
		n_stale++;
	print_message("%s: %d sweepers at once over %d tombstones: %d stale qgroups \"%s\", "
		      "%d markers left, quotas/ \"%s\", subvolumes/ \"%s\"\n", mode, sweepers,
		      TOMBSTONES, n_stale, stale, markers, quotas, subvolumes);
	if (*stale)
		fail_msg("%s: %d qgroups without a subvolume kept after the sweeps settled: %s",
			 mode, n_stale, stale);
	if (markers)
		fail_msg("%s: %d qgroup markers left, the first of 0/%" PRIu64, mode, markers,
			 marked[0]);
	assert_string_equal(subvolumes, "");
	assert_string_equal(quotas, "");
	free(stale);
	free(quotas);
	free(subvolumes);
}

/* Each round loses markers about twice in three on the library of
 * 2026-12-02: a few rounds, on fresh homes. */
static void sweeps_at_once(struct ctx *c, const char *mode)
{
	unsigned long rounds = env_number("BTRFSLAYER_RACE_ROUNDS", 3);
	for (unsigned long i = 0; i < rounds; i++) {
		if (i)
			harness_new_home(c->home, sizeof(c->home));
		sweeps_at_once_round(c, mode);
	}
}

static void test_sweeps_at_once_qgroup(void **state)
{
	sweeps_at_once(*state, "qgroup");
}

static void test_sweeps_at_once_simple(void **state)
{
	sweeps_at_once(*state, "simple");
}

/* ---- racers ------------------------------------------------------------------ */

/* The library's CPU, and the racer's: the same one, so that a racer woken
 * by inotify at a real-time priority runs before the library's next step. */
static void pin_to_first_cpu(void)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(0, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static void become_realtime(void)
{
	struct sched_param param = { .sched_priority = 1 };
	shared->realtime = sched_setscheduler(0, SCHED_FIFO, &param) == 0;
}

typedef void (*racer_fn)(int subvolumes_fd, const char *subvolumes, const char *name,
			 void *arg);

/* Fork a racer that calls `on_tmp` for each `.tmp-*` made in
 * HOME/subvolumes, until shared->stop.  `on_stop` runs last. */
static void start_racer(const char *home, racer_fn on_tmp, void (*on_stop)(void *),
			void *arg)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/subvolumes", home);
	if (!shared) {
		shared = shared_memory(sizeof(*shared));
	}
	memset((void *)shared, 0, sizeof(*shared));
	pin_to_first_cpu();
	racer = fork();
	assert_true(racer >= 0);
	if (racer > 0) {
		while (!shared->ready)
			pause_us(1000);
		return;
	}
	become_realtime();
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int in = inotify_init1(IN_CLOEXEC);
	if (fd < 0 || in < 0 || inotify_add_watch(in, dir, IN_CREATE) < 0)
		_exit(2);
	shared->ready = 1;
	char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
	while (!shared->stop) {
		struct pollfd p = { .fd = in, .events = POLLIN };
		if (poll(&p, 1, 50) <= 0)
			continue;
		ssize_t n = read(in, buf, sizeof(buf));
		for (char *e = buf; n > 0 && e < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)e;
			if (ev->len && !strncmp(ev->name, ".tmp-", 5)) {
				shared->events++;
				on_tmp(fd, dir, ev->name, arg);
			}
			e += sizeof(*ev) + ev->len;
		}
	}
	if (on_stop)
		on_stop(arg);
	_exit(0);
}

/* ---- item 12: the published layer is the one that was built ---------------- */

/* Writable subvolumes of the racer's, each with ATTACKER_FILE, named
 * evil-<n>; after a swap, evil-<n> holds what the library had built. */
struct swap_arg {
	int next;	/* the next evil-<n> to make */
	int used;	/* evil-<used>..evil-<next - 1> are ready */
};

static void make_evil(const char *subvolumes, int n)
{
	char path[PATH_MAX + 32], file[PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s/evil-%d", subvolumes, n);
	if (btrfs_util_create_subvolume(path, 0, NULL, NULL) != BTRFS_UTIL_OK)
		return;
	snprintf(file, sizeof(file), "%s/" ATTACKER_FILE, path);
	int fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
	else	/* never one without its mark: the audit tells them apart by it */
		btrfs_util_delete_subvolume(path, 0);
}

static void swap_tmp(int fd, const char *subvolumes, const char *name, void *arg)
{
	struct swap_arg *a = arg;
	char evil[32];
	while (a->next < a->used + 4)	/* a few ready ahead: the swap is one call */
		make_evil(subvolumes, a->next++);
	/* now at once, a little later, or during the fsyncs */
	static const long delays[] = { 0, 0, 200, 1000, 3000 };
	long delay = delays[shared->events % 5];
	if (delay)
		pause_us(delay);
	snprintf(evil, sizeof(evil), "evil-%d", a->used);
	if (renameat2(fd, evil, fd, name, RENAME_EXCHANGE) == 0) {
		shared->hits++;
		if (a->used < SWAPS_MAX)
			shared->swap_delay[a->used] = delay;
		a->used++;
	} else if (faccessat(fd, evil, F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
		a->used++;	/* it could not be made: the next one */
	}
}

/* Every subvolume under HOME/subvolumes is a layer that create returned 0
 * for, the library's empty template, or the racer's (with `racer_file`, unless NULL), or one the racer
 * moved to a name of its own (evil-N) before the library could open what
 * it had made: the library never learns that subvolume's id or name, so it
 * cannot delete it (a limit, counted and printed); quotas/ holds records
 * of those layers only.  Fails naming anything else left behind. */
static void audit_home(const char *home, char **made, int n_made, const char *racer_file)
{
	char dir[PATH_MAX], left[1024] = "";
	int n_left = 0, at_once = 0, later = 0;
	snprintf(dir, sizeof(dir), "%s/subvolumes", home);
	char *names = probe_home_listing(home, "subvolumes", NULL);
	for (char *save = NULL, *name = strtok_r(names, " ", &save); name;
	     name = strtok_r(NULL, " ", &save)) {
		bool layer = false;
		for (int i = 0; i < n_made && !layer; i++)
			layer = !strcmp(made[i], name);
		if (layer)
			continue;
		char path[PATH_MAX + 300], sub[PATH_MAX + 256];
		bool racers = false;
		snprintf(sub, sizeof(sub), "%s/%s", dir, name);
		if (harness_is_template(name)) {
			/* the library's own: whole whatever the racer did */
			const char *flaw = harness_template_flaw(sub);
			if (flaw)
				fail_msg("empty template %s: %s", sub, flaw);
			continue;
		}
		if (racer_file) {
			snprintf(path, sizeof(path), "%s/%s", sub, racer_file);
			racers = access(path, F_OK) == 0;
		}
		if (racers)
			continue;
		int n;
		if (sscanf(name, "evil-%d", &n) == 1 && n >= 0 && n < SWAPS_MAX) {
			if (shared->swap_delay[n])
				later++;
			else
				at_once++;
			continue;
		}
		if (n_left++ < 4) {
			snprintf(path, sizeof(path), "%s/from-base", sub);
			size_t used = strlen(left);
			snprintf(left + used, sizeof(left) - used, "%s%s (%s%s)", used ? ", " : "",
				 name, probe_read_only(sub) == 1 ? "read-only" :
				 probe_read_only(sub) == 0 ? "writable" : "not a subvolume",
				 access(path, F_OK) == 0 ? ", a snapshot of base" : "");
		}
	}
	free(names);
	if (at_once + later)
		print_message("%d subvolumes the library made were moved by the racer to names of "
			      "its own before the library could open them (%d as soon as the .tmp- "
			      "appeared, %d after 200 us or more): left where the racer put them\n",
			      at_once + later, at_once, later);
	if (n_left)
		fail_msg("%d entries of %s are left behind, neither a layer that a create returned 0 "
			 "for nor the racer's: %s%s", n_left, dir, left, n_left > 4 ? ", ..." : "");
	snprintf(dir, sizeof(dir), "%s/quotas", home);
	names = probe_home_listing(home, "quotas", ".qgroup-");
	for (char *save = NULL, *name = strtok_r(names, " ", &save); name;
	     name = strtok_r(NULL, " ", &save)) {
		bool layer = false;
		for (int i = 0; i < n_made && !layer; i++)
			layer = !strcmp(made[i], name);
		if (!layer)
			fail_msg("%s/%s is left behind: no layer that a create returned 0 for", dir,
				 name);
	}
	free(names);
}

static void test_publish_checks_identity(void **state)
{
	const struct ctx *c = *state;
	btrfslayer *h = NULL;
	char path[PATH_MAX + 64], file[PATH_MAX + 96];
	assert_ok(btrfslayer_open(c->home, no_mount, 1, NULL, 0, NULL, 0, &h, ERR));
	assert_ok(btrfslayer_create(h, "base", NULL, 0, NULL, NULL, 0, ERR));
	layer_path(c->home, "base", path, sizeof(path));
	snprintf(file, sizeof(file), "%s/from-base", path);
	write_text(file, "base\n");

	struct swap_arg arg = { 0 };
	start_racer(c->home, swap_tmp, NULL, &arg);
	double seconds = (double)env_number("BTRFSLAYER_RACE_SECONDS", 8);
	unsigned long max = env_number("BTRFSLAYER_RACE_CREATES", 3000);
	char **made = calloc(max + 1, sizeof(*made));
	int n_made = 0, failed = 0, wrong[2] = { 0, 0 };
	char first_error[512] = "", example[2][512] = { "", "" };
	double end = now() + seconds;
	made[n_made++] = strdup("base");
	for (unsigned long i = 0; i < max && now() < end; i++) {
		char id[32];
		btrfslayer_error *err = NULL;
		bool snapshot = i % 2;
		snprintf(id, sizeof(id), "ro-%lu", i);
		int r = btrfslayer_create(h, id, snapshot ? "base" : NULL, BTRFSLAYER_CREATE_READ_ONLY,
					  NULL, size16, 1, &err);
		if (r < 0) {
			if (!err)
				fail_msg("create %s failed (%d) without an error", id, r);
			if (!failed++)
				snprintf(first_error, sizeof(first_error), "%s",
					 btrfslayer_error_message(err));
			btrfslayer_error_free(err);
			assert_int_equal(btrfslayer_exists(h, id, NULL), 0);
			continue;
		}
		made[n_made++] = strdup(id);
		layer_path(c->home, id, path, sizeof(path));
		snprintf(file, sizeof(file), "%s/" ATTACKER_FILE, path);
		int ro = probe_read_only(path);
		bool attacker = access(file, F_OK) == 0;
		snprintf(file, sizeof(file), "%s/from-base", path);
		bool from_base = access(file, F_OK) == 0;
		if (ro != 1 || attacker || from_base != snapshot) {
			int kind = ro != 1 ? 0 : 1;
			if (!wrong[kind]++)
				snprintf(example[kind], sizeof(example[kind]),
					 "create --read-only %s%s returned 0: the layer is %s, %s the "
					 "racer's file, %s the parent's", id,
					 snapshot ? " (snapshot of base)" : "",
					 ro == 1 ? "read-only" : ro == 0 ? "WRITABLE" : "not a subvolume",
					 attacker ? "WITH" : "without", from_base ? "with" : "without");
		}
	}
	stop_racer();
	print_message("%d creates, %d failed, racer: %d .tmp- seen, %d swapped%s; "
		      "first error: %s\n", n_made - 1 + failed, failed, shared->events, shared->hits,
		      shared->realtime ? "" : " (no real-time priority)", first_error);
	if (wrong[0] || wrong[1])
		fail_msg("%d creates returned 0 with a writable layer (e.g. %s), %d with a read-only "
			 "one that is not what was built (e.g. %s)", wrong[0], example[0], wrong[1],
			 example[1]);
	assert_ok(btrfslayer_close(h, ERR));
	audit_home(c->home, made, n_made, ATTACKER_FILE);
	for (int i = 0; i < n_made; i++)
		free(made[i]);
	free(made);
}

/* ---- item 21: a mount on a `.tmp-*` never leads outside home --------------- */

struct mount_arg {
	const char *outside;
	char last[PATH_MAX];
};

static void mount_on_tmp(int fd, const char *subvolumes, const char *name, void *arg)
{
	struct mount_arg *a = arg;
	(void)fd;
	if (a->last[0])
		umount2(a->last, MNT_DETACH);	/* the previous create is over */
	snprintf(a->last, sizeof(a->last), "%s/%s", subvolumes, name);
	if (mount(a->outside, a->last, NULL, MS_BIND, NULL) == 0)
		shared->hits++;
	else
		a->last[0] = '\0';
}

static void unmount_last(void *arg)
{
	struct mount_arg *a = arg;
	if (a->last[0])
		umount2(a->last, MNT_DETACH);
}

/* What a user sees of the outside subvolume. */
struct outside {
	uint64_t subvolume;
	uid_t uid;
	gid_t gid;
	mode_t mode;
	int read_only;
	bool sentinel;
};

static struct outside look_outside(const char *path)
{
	struct outside o = { 0 };
	struct stat st;
	char file[PATH_MAX + 16], text[64] = "";
	o.subvolume = probe_subvolume_id(path);
	if (stat(path, &st) == 0) {
		o.uid = st.st_uid;
		o.gid = st.st_gid;
		o.mode = st.st_mode & 07777;
	}
	o.read_only = probe_read_only(path);
	snprintf(file, sizeof(file), "%s/" SENTINEL_FILE, path);
	FILE *f = fopen(file, "r");
	if (f) {
		o.sentinel = fgets(text, sizeof(text), f) && !strcmp(text, SENTINEL_TEXT);
		fclose(f);
	}
	return o;
}

static uint64_t limit_of(uint64_t subvolume)
{
	struct probe_qgroup *q;
	uint64_t limit = 0;
	size_t n = probe_qgroups(harness_btrfs(), &q);
	for (size_t i = 0; i < n; i++)
		if (q[i].id == subvolume)
			limit = q[i].max_referenced;
	free(q);
	return limit;
}

static void expect_outside(const char *path, const struct outside *want, uint64_t limit,
			   const char *when)
{
	struct outside got = look_outside(path);
	if (got.subvolume != want->subvolume || got.uid != want->uid || got.gid != want->gid ||
	    got.mode != want->mode || got.read_only != want->read_only || !got.sentinel)
		fail_msg("%s: the subvolume outside home changed: subvolume %" PRIu64 " (was %"
			 PRIu64 "), owner %u:%u (was %u:%u), mode %04o (was %04o), read-only %d "
			 "(was %d), sentinel %s", when, got.subvolume, want->subvolume, got.uid,
			 got.gid, want->uid, want->gid, got.mode, want->mode, got.read_only,
			 want->read_only, got.sentinel ? "intact" : "GONE or changed");
	if (limit != UINT64_MAX) {
		uint64_t now_limit = limit_of(want->subvolume);
		if (now_limit != limit)
			fail_msg("%s: the qgroup limit of the subvolume outside home is %" PRIu64
				 ", was %" PRIu64, when, now_limit, limit);
	}
}

static void test_mount_on_tmp_stays_outside(void **state)
{
	const struct ctx *c = *state;
	btrfslayer *h = NULL;
	char outside[PATH_MAX], path[PATH_MAX + 64], file[PATH_MAX + 96];
	assert_ok(btrfslayer_open(c->home, no_mount, 1, NULL, 0, NULL, 0, &h, ERR));
	/* quotas on (size=), in whatever mode the filesystem has */
	assert_ok(btrfslayer_create(h, "first", NULL, 0, NULL, size16, 1, ERR));

	snprintf(outside, sizeof(outside), "%s/outside-%d", harness_btrfs(), (int)getpid());
	assert_int_equal(btrfs_util_create_subvolume(outside, 0, NULL, NULL), BTRFS_UTIL_OK);
	snprintf(file, sizeof(file), "%s/" SENTINEL_FILE, outside);
	write_text(file, SENTINEL_TEXT);
	assert_int_equal(chown(outside, 4321, 4322), 0);
	assert_int_equal(chmod(outside, 0751), 0);
	const char *const limit[] = { "btrfs", "qgroup", "limit", "64M", outside, NULL };
	assert_int_equal(harness_run(limit), 0);
	struct outside before = look_outside(outside);
	uint64_t limit_before = limit_of(before.subvolume);
	assert_int_equal(limit_before, UINT64_C(64) << 20);

	struct mount_arg arg = { .outside = outside };
	start_racer(c->home, mount_on_tmp, unmount_last, &arg);
	double seconds = (double)env_number("BTRFSLAYER_RACE_SECONDS", 8);
	unsigned long max = env_number("BTRFSLAYER_RACE_CREATES", 3000);
	char **made = calloc(max + 2, sizeof(*made));
	int n_made = 0, failed = 0;
	char first_error[512] = "";
	double end = now() + seconds;
	made[n_made++] = strdup("first");
	unsigned long i;
	for (i = 0; i < max && now() < end; i++) {
		char id[32], when[64];
		btrfslayer_error *err = NULL;
		uint32_t flags = i % 2 ? BTRFSLAYER_CREATE_READ_ONLY : 0;
		size_t n_opts = i % 3 ? 1 : 0;
		snprintf(id, sizeof(id), "m-%lu", i);
		int r = btrfslayer_create(h, id, NULL, flags, NULL, size16, n_opts, &err);
		snprintf(when, sizeof(when), "after create %s (%d mounts so far)", id, shared->hits);
		expect_outside(outside, &before, UINT64_MAX, when);
		if (r < 0) {
			if (!err)
				fail_msg("create %s failed (%d) without an error", id, r);
			if (!failed++)
				snprintf(first_error, sizeof(first_error), "%s",
					 btrfslayer_error_message(err));
			btrfslayer_error_free(err);
			assert_int_equal(btrfslayer_exists(h, id, NULL), 0);
			continue;
		}
		made[n_made++] = strdup(id);
		layer_path(c->home, id, path, sizeof(path));
		struct stat st;
		snprintf(file, sizeof(file), "%s/" SENTINEL_FILE, path);
		if (stat(path, &st) < 0 || st.st_uid != 0 || st.st_gid != 0 ||
		    (st.st_mode & 07777) != 0755 || access(file, F_OK) == 0 ||
		    probe_is_mount_point(path) || probe_read_only(path) != (flags ? 1 : 0))
			fail_msg("create %s returned 0 but the layer is not what was asked for "
				 "(owner, mode, read-only flag, a mount, or the outside's files)", id);
	}
	stop_racer();
	print_message("%lu creates, %d failed, racer: %d .tmp- seen, %d mounted%s; "
		      "first error: %s\n", i, failed, shared->events, shared->hits,
		      shared->realtime ? "" : " (no real-time priority)", first_error);
	expect_outside(outside, &before, limit_before, "after every create");
	/* the layers made have their limits, the others none */
	probe_settle(harness_btrfs());
	for (int k = 1; k < n_made; k++) {
		unsigned long n = strtoul(made[k] + 2, NULL, 10);
		layer_path(c->home, made[k], path, sizeof(path));
		uint64_t want = n % 3 ? UINT64_C(16) << 20 : 0;
		if (limit_of(probe_subvolume_id(path)) != want)
			fail_msg("layer %s has limit %" PRIu64 ", want %" PRIu64, made[k],
				 limit_of(probe_subvolume_id(path)), want);
		if (k > 40)
			break;	/* a sample: each look runs btrfs-progs */
	}
	assert_ok(btrfslayer_close(h, ERR));
	audit_home(c->home, made, n_made, NULL);
	expect_outside(outside, &before, limit_before, "after close");
	for (int k = 0; k < n_made; k++)
		free(made[k]);
	free(made);
}

int main(void)
{
	const char *filter = getenv("BTRFSLAYER_TEST_FILTER");
	if (filter)
		cmocka_set_test_filter(filter);
	harness_start();
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_sweeps_at_once_qgroup),
		T(test_sweeps_at_once_simple),
		T(test_publish_checks_identity),
		T(test_mount_on_tmp_stays_outside),
	};
	return cmocka_run_group_tests_name("race", tests, NULL, NULL);
}
