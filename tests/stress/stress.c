/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Many threads on one handle, on a real loopback btrfs: the thread guarantees
 * of include/btrfslayer.h under contention.
 *
 *   1. create race: all threads create one fresh id at once (barrier):
 *      exactly one gets 0, the others -EEXIST, no reserved name is left;
 *      every other round they then all remove it: one 0, the others -ENOENT.
 *   2. parent race: one thread removes a parent while others snapshot it and
 *      get it: a child is a complete copy (the parent's marker file) or its
 *      create said -ENOENT; get says 0 or -ENOENT.
 *   3. removal race: one thread removes a layer while the others get it,
 *      read its usage, set and clear its limit until it is gone: each call
 *      says 0 or -ENOENT, and no quota file outlives the layer.
 *   4. mix: random operations on a small pool of ids, so that they collide.
 *      Only -EEXIST (create of an existing id) and -ENOENT (layer or parent
 *      missing) may fail a call.
 *   5. end: no reserved name under home, every layer's kernel limit is its
 *      recorded one, every quota file has a layer; after removing every
 *      layer and the cleaner, an open's sweep leaves only qgroup 0/5.
 * Any unexpected result, or a library log at LOG_ERR, fails the program.
 *
 * Environment: BTRFSLAYER_STRESS_THREADS (8), BTRFSLAYER_STRESS_OPS (400
 * per thread), BTRFSLAYER_STRESS_ROUNDS (16, for 1-3),
 * BTRFSLAYER_STRESS_SEED (time), BTRFSLAYER_STRESS_QUOTA_MODE (simple where
 * the kernel has it, else qgroup), BTRFSLAYER_STRESS_HANDLES (1: handles on
 * the same home, the threads sharing them round-robin).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "btrfslayer.h"
#include "harness.h"

#define MAX_THREADS 64
#define POOL 32u			/* ids of the mix: few, so that calls collide */
#define FAILURES_SHOWN 40	/* past this, failures are only counted */
#define MARKER "marker"
#define MAX_HANDLES 8
#define INFOS_SHOWN 20

/* Every call goes through the calling thread's handle: thread i uses
 * handles[i % n_handles], the main thread handles[0]. */
static btrfslayer *handles[MAX_HANDLES];
static unsigned n_handles = 1;
static _Thread_local btrfslayer *h;
static char home[512];	/* short: harness_new_home() */
static char open_option[64];
static unsigned n_threads = 8, n_ops = 2000, n_rounds = 40;
static uint64_t seed;

static atomic_uint failures;
static atomic_uint log_errors, log_warnings, log_infos;

/* ---- reporting ---------------------------------------------------------------- */

static void failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void failf(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (atomic_fetch_add(&failures, 1) < FAILURES_SHOWN)
		fprintf(stderr, "FAIL: %s\n", msg);
}

static const char *message(const btrfslayer_error *err)
{
	return err ? btrfslayer_error_message(err) : "(no error object)";
}

/* Called from any thread inside a library call. */
static void on_log(int level, const char *msg, void *userdata)
{
	(void)userdata;
	if (level <= BTRFSLAYER_LOG_ERR) {
		atomic_fetch_add(&log_errors, 1);
		failf("library logged an error: %s", msg);
	} else if (level == BTRFSLAYER_LOG_WARNING) {
		atomic_fetch_add(&log_warnings, 1);
		fprintf(stderr, "library warning: %s\n", msg);
	} else if (atomic_fetch_add(&log_infos, 1) < INFOS_SHOWN) {
		fprintf(stderr, "library info: %s\n", msg);
	}
}

static unsigned env_unsigned(const char *name, unsigned def, unsigned min, unsigned max)
{
	const char *s = getenv(name);
	if (!s || !*s)
		return def;
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (*end || v < min || v > max) {
		fprintf(stderr, "stress: %s=%s: want %u..%u\n", name, s, min, max);
		exit(2);
	}
	return (unsigned)v;
}

/* xorshift64*: per thread, no locks */
static uint32_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return (uint32_t)((*s * UINT64_C(2685821657736338717)) >> 32);
}

static uint64_t rnd_seed(unsigned stream)
{
	/* odd, so never 0, which xorshift never leaves */
	return ((seed + stream) * UINT64_C(0x9E3779B97F4A7C15)) | 1;
}

/* Seconds since t0. */
static double since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Busy-wait up to `max_us`: shifts which thread of a race goes first. */
static void jitter(uint64_t *s, unsigned max_us)
{
	struct timespec t0, t;
	unsigned us = max_us ? rnd(s) % max_us : 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do
		clock_gettime(CLOCK_MONOTONIC, &t);
	while ((t.tv_sec - t0.tv_sec) * 1000000 + (t.tv_nsec - t0.tv_nsec) / 1000 < us);
}

/* ---- small helpers on the store ---------------------------------------------- */

static int create(const char *id, const char *parent, uint32_t flags, const char *size,
		  btrfslayer_error **err)
{
	const char *opts[1] = { size };
	return btrfslayer_create(h, id, parent, flags, NULL, size ? opts : NULL, size ? 1 : 0, err);
}

/* A call that must succeed (setup and checks, no contention).  Takes &err:
 * the call, an argument too, may run after err would have been read. */
static bool ok(int r, btrfslayer_error **err, const char *what)
{
	if (r >= 0)
		return true;
	failf("%s = %d: %s", what, r, message(*err));
	btrfslayer_error_free(*err);
	*err = NULL;
	return false;
}

static bool starts_with(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

static bool is_reserved(const char *name)
{
	return starts_with(name, ".tmp-") || starts_with(name, ".tomb-");
}

/* "quotas/.qgroup-N": a qgroup waiting for the kernel, not a leftover */
static bool is_qgroup_marker(const char *name)
{
	const char *p = name + strlen(".qgroup-");
	if (!starts_with(name, ".qgroup-") || !*p)
		return false;
	return strspn(p, "0123456789") == strlen(p);
}

/* Names in HOME/<sub>, and in its .staging directory (where the library
 * keeps its reserved names), for checks made while no call runs; `visit`
 * returns nothing, it reports.  Returns the number of entries. */
static int scan(const char *sub, void (*visit)(const char *sub, const char *name, const char *when),
		const char *when)
{
	char dir_path[PATH_MAX];
	snprintf(dir_path, sizeof(dir_path), "%s/%s", home, sub);
	DIR *d = opendir(dir_path);
	if (!d) {
		failf("%s: opendir %s: %s", when, dir_path, strerror(errno));
		return 0;
	}
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (!strcmp(e->d_name, ".staging")) {
			char staging[PATH_MAX];
			snprintf(staging, sizeof(staging), "%s/.staging", sub);
			n += scan(staging, visit, when);
			continue;
		}
		n++;
		if (visit)
			visit(sub, e->d_name, when);
	}
	closedir(d);
	return n;
}

static void no_reserved(const char *sub, const char *name, const char *when)
{
	if (is_reserved(name))
		failf("%s: %s/%s/%s left behind", when, home, sub, name);
}

static void check_no_reserved(const char *when)
{
	scan("subvolumes", no_reserved, when);
	scan("quotas", no_reserved, when);
}

/* Read the marker file of the layer at `dir`: 0, or an errno. */
static int read_marker(const char *dir, char *buf, size_t len)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/" MARKER, dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	ssize_t n = read(fd, buf, len - 1);
	int r = n < 0 ? errno : 0;
	close(fd);
	buf[n < 0 ? 0 : n] = '\0';
	return r;
}

static bool write_file(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return false;
	size_t len = strlen(text);
	bool done = write(fd, text, len) == (ssize_t)len;
	return close(fd) == 0 && done;
}

/* A fresh layer with a marker file written through get()'s path. */
static bool make_marked(const char *id, const char *size, const char *text)
{
	btrfslayer_error *err = NULL;
	char *path = NULL, what[128];
	snprintf(what, sizeof(what), "create %s", id);
	if (!ok(create(id, NULL, 0, size, &err), &err, what))
		return false;
	snprintf(what, sizeof(what), "get %s", id);
	if (!ok(btrfslayer_get(h, id, NULL, &path, &err), &err, what))
		return false;
	bool r = write_file(path, MARKER, text);
	if (!r)
		failf("write %s/" MARKER ": %s", path, strerror(errno));
	free(path);
	return r;
}

/* The layer exists (or not), by exists(). */
static void expect_exists(const char *id, int want, const char *when)
{
	btrfslayer_error *err = NULL;
	int r = btrfslayer_exists(h, id, &err);
	if (r != want)
		failf("%s: exists(%s) = %d, want %d (%s)", when, id, r, want,
		      r < 0 ? message(err) : "no error");
	btrfslayer_error_free(err);
}

static void remove_quietly(const char *id)
{
	btrfslayer_error *err = NULL;
	char what[128];
	snprintf(what, sizeof(what), "remove %s", id);
	ok(btrfslayer_remove(h, id, &err), &err, what);
}

/* Size limit in bytes of a "size=NM" option; 0 for none. */
static uint64_t size_bytes(const char *size)
{
	return size ? strtoull(size + strlen("size="), NULL, 10) << 20 : 0;
}

/* A layer a create said it made is whole: a layer with the limit it was
 * given (kernel and record), read-only if asked, and holding `marker` (the
 * parent's) or, when that is NULL, no marker at all. */
static void check_layer(const char *id, uint64_t limit, bool read_only, const char *marker,
			const char *when)
{
	btrfslayer_error *err = NULL;
	btrfslayer_usage u;
	char *path = NULL, text[128];
	expect_exists(id, 1, when);
	int r = btrfslayer_get_usage(h, id, 0, &u, sizeof(u), &err);
	if (r < 0)
		failf("%s: get_usage %s = %d: %s", when, id, r, message(err));
	else if (u.limit != limit || u.recorded_limit != limit)
		failf("%s: layer %s: limit %" PRIu64 ", recorded %" PRIu64 ", want %" PRIu64,
		      when, id, u.limit, u.recorded_limit, limit);
	btrfslayer_error_free(err);
	err = NULL;
	if ((r = btrfslayer_get(h, id, NULL, &path, &err)) < 0) {
		failf("%s: get %s = %d: %s", when, id, r, message(err));
		btrfslayer_error_free(err);
		return;
	}
	int e = read_marker(path, text, sizeof(text));
	if (marker && e)
		failf("%s: layer %s has no marker: %s", when, id, strerror(e));
	else if (marker && strcmp(text, marker))
		failf("%s: layer %s: marker holds \"%s\", want \"%s\"", when, id, text, marker);
	else if (!marker && e != ENOENT)
		failf("%s: empty layer %s has a marker (%s)", when, id, e ? strerror(e) : text);
	bool wrote = write_file(path, "probe", "probe\n");
	e = errno;
	if (read_only && (wrote || e != EROFS))
		failf("%s: read-only layer %s: write %s", when, id,
		      wrote ? "succeeded" : strerror(e));
	else if (!read_only && !wrote)
		failf("%s: layer %s: write failed: %s", when, id, strerror(e));
	free(path);
}

/* ---- 1. create race -------------------------------------------------------- */

struct racer {
	pthread_barrier_t *barrier;
	unsigned index;
	const char *id;
	const char *parent;
	uint32_t flags;
	const char *size;
	int rc;
	btrfslayer_error *err;
	/* parent and removal races */
	int role;
	const char *marker;
	uint64_t rnd;
};

static void *race_create(void *arg)
{
	struct racer *r = arg;
	h = handles[r->index % n_handles];
	pthread_barrier_wait(r->barrier);
	r->rc = create(r->id, r->parent, r->flags, r->size, &r->err);
	return NULL;
}

static void *race_remove(void *arg)
{
	struct racer *r = arg;
	h = handles[r->index % n_handles];
	pthread_barrier_wait(r->barrier);
	r->rc = btrfslayer_remove(h, r->id, &r->err);
	return NULL;
}

/* Run fn on n racers released together. */
static void run_racers(struct racer *racers, unsigned n, void *(*fn)(void *))
{
	pthread_t tids[MAX_THREADS];
	pthread_barrier_t barrier;
	pthread_barrier_init(&barrier, NULL, n);
	for (unsigned i = 0; i < n; i++) {
		racers[i].barrier = &barrier;
		racers[i].rc = 0;
		racers[i].err = NULL;
		int e = pthread_create(&tids[i], NULL, fn, &racers[i]);
		if (e) {
			/* the barrier would wait forever: give up the program */
			fprintf(stderr, "stress: pthread_create: %s\n", strerror(e));
			exit(1);
		}
	}
	for (unsigned i = 0; i < n; i++)
		pthread_join(tids[i], NULL);
	pthread_barrier_destroy(&barrier);
}

/* Exactly one racer got 0, every other `loser` (-EEXIST, -ENOENT). */
static void expect_one_winner(struct racer *racers, unsigned n, int loser, const char *when)
{
	unsigned winners = 0;
	for (unsigned i = 0; i < n; i++) {
		if (racers[i].rc == 0)
			winners++;
		else if (racers[i].rc != loser)
			failf("%s: thread %u: %d (want 0 or %d): %s", when, i, racers[i].rc,
			      loser, message(racers[i].err));
		btrfslayer_error_free(racers[i].err);
		racers[i].err = NULL;
	}
	if (winners != 1)
		failf("%s: %u threads got 0, want exactly 1", when, winners);
}

static void create_race(void)
{
	struct racer racers[MAX_THREADS];
	char id[64], when[128];
	static const char base[] = "race-base";
	if (!make_marked(base, NULL, "race base\n"))
		return;
	for (unsigned round = 0; round < n_rounds; round++) {
		/* empty, empty with a limit, snapshot, read-only snapshot with a limit */
		unsigned kind = round % 4;
		snprintf(id, sizeof(id), "race-%u", round);
		for (unsigned i = 0; i < n_threads; i++)
			racers[i] = (struct racer){
				.index = i, .id = id,
				.parent = kind >= 2 ? base : NULL,
				.flags = kind == 3 ? BTRFSLAYER_CREATE_READ_ONLY : 0,
				.size = kind == 1 ? "size=64M" : kind == 3 ? "size=32M" : NULL,
			};
		run_racers(racers, n_threads, race_create);
		snprintf(when, sizeof(when), "create race %u (kind %u)", round, kind);
		expect_one_winner(racers, n_threads, -EEXIST, when);
		check_layer(id, size_bytes(racers[0].size), kind == 3,
			    kind >= 2 ? "race base\n" : NULL, when);
		check_no_reserved(when);
		if (round % 2) {
			snprintf(when, sizeof(when), "remove race %u", round);
			run_racers(racers, n_threads, race_remove);
			expect_one_winner(racers, n_threads, -ENOENT, when);
			expect_exists(id, 0, when);
			check_no_reserved(when);
		} else {
			remove_quietly(id);
		}
	}
	remove_quietly(base);
	printf("create race: %u rounds of %u threads\n", n_rounds, n_threads);
}

/* ---- 2. parent race -------------------------------------------------------- */

enum { ROLE_REMOVE, ROLE_CHILD, ROLE_GET, ROLE_USAGE, ROLE_SET_QUOTA, ROLE_CLEAR_QUOTA,
       N_ROLES };

static const char *const role_names[N_ROLES] = {
	[ROLE_GET] = "get", [ROLE_USAGE] = "get_usage", [ROLE_SET_QUOTA] = "set_quota",
	[ROLE_CLEAR_QUOTA] = "clear_quota",
};

static atomic_ulong children_made, children_enoent;
/* calls made on a layer being removed: [role][0: returned 0, 1: -ENOENT] */
static atomic_ulong until_gone[N_ROLES][2];

/* One call of r's role on layer r->id; a get also checks the marker, when
 * still readable through the path. */
static int call_role(struct racer *r)
{
	char *path = NULL, text[128];
	btrfslayer_usage u;
	int rc;
	switch (r->role) {
	case ROLE_GET:
		rc = btrfslayer_get(h, r->id, NULL, &path, &r->err);
		if (rc == 0 && read_marker(path, text, sizeof(text)) == 0 &&
		    strcmp(text, r->marker))
			failf("get %s during removal: marker holds \"%s\"", r->id, text);
		free(path);
		return rc;
	case ROLE_USAGE:
		return btrfslayer_get_usage(h, r->id, 0, &u, sizeof(u), &r->err);
	case ROLE_SET_QUOTA:
		return btrfslayer_set_quota(h, r->id, UINT64_C(32) << 20, &r->err);
	default:
		return btrfslayer_clear_quota(h, r->id, &r->err);
	}
}

/* Calls on a layer being removed until it is gone: each one sees the whole
 * layer (0) or none (-ENOENT).  Stops at the first other result, which stays
 * in r->rc; r->rc is 0 otherwise.  The time limit only ends a round whose
 * removal failed (which its remover reports). */
static void call_until_gone(struct racer *r)
{
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (since(&t0) < 10) {
		r->rc = call_role(r);
		if (r->rc == 0) {
			atomic_fetch_add(&until_gone[r->role][0], 1);
			/* gets hunt for the instant of the removal; the cheap
			 * calls leave the remover a core (small machines have 2) */
			if (r->role != ROLE_GET)
				nanosleep(&(struct timespec){ .tv_nsec = rnd(&r->rnd) % 100000 },
					  NULL);
			continue;
		}
		if (r->rc == -ENOENT) {
			atomic_fetch_add(&until_gone[r->role][1], 1);
			btrfslayer_error_free(r->err);
			r->err = NULL;
			r->rc = 0;
		}
		return;
	}
}

static void print_until_gone(void)
{
	printf("  calls on a layer being removed (returned 0 / -ENOENT):");
	for (int role = ROLE_GET; role < N_ROLES; role++)
		printf(" %s %lu/%lu", role_names[role], atomic_load(&until_gone[role][0]),
		       atomic_load(&until_gone[role][1]));
	printf("\n");
}

static void *race_role(void *arg)
{
	struct racer *r = arg;
	h = handles[r->index % n_handles];
	pthread_barrier_wait(r->barrier);
	jitter(&r->rnd, r->role == ROLE_REMOVE ? 4000 : 2000);
	switch (r->role) {
	case ROLE_REMOVE:
		r->rc = btrfslayer_remove(h, r->id, &r->err);
		break;
	case ROLE_CHILD:
		r->rc = create(r->id, r->parent, r->flags, r->size, &r->err);
		break;
	default:
		call_until_gone(r);
	}
	return NULL;
}

static void check_parent_race(struct racer *racers, const char *parent, const char *when)
{
	for (unsigned i = 0; i < n_threads; i++) {
		struct racer *r = &racers[i];
		if (r->role == ROLE_REMOVE && r->rc != 0)
			failf("%s: remove %s = %d: %s", when, parent, r->rc, message(r->err));
		if (r->role >= ROLE_GET && r->rc != 0)
			failf("%s: %s %s = %d (want 0 or -ENOENT): %s", when,
			      role_names[r->role], parent, r->rc, message(r->err));
		if (r->role == ROLE_CHILD) {
			if (r->rc == 0) {
				atomic_fetch_add(&children_made, 1);
				check_layer(r->id, size_bytes(r->size),
					    r->flags & BTRFSLAYER_CREATE_READ_ONLY, r->marker, when);
				remove_quietly(r->id);
			} else if (r->rc == -ENOENT) {
				atomic_fetch_add(&children_enoent, 1);
				expect_exists(r->id, 0, when);
			} else {
				failf("%s: create %s from %s = %d (want 0 or -ENOENT): %s", when,
				      r->id, parent, r->rc, message(r->err));
			}
		}
		btrfslayer_error_free(r->err);
		r->err = NULL;
	}
	expect_exists(parent, 0, when);
	check_no_reserved(when);
}

static void parent_race(void)
{
	struct racer racers[MAX_THREADS];
	char parent[64], marker[64], when[128];
	char children[MAX_THREADS][96];
	/* one remover, about half creating children, the rest getting */
	unsigned n_children = n_threads / 2 ? n_threads / 2 : 1;
	if (n_children > n_threads - 1)
		n_children = n_threads - 1;
	for (unsigned round = 0; round < n_rounds; round++) {
		snprintf(parent, sizeof(parent), "parent-%u", round);
		snprintf(marker, sizeof(marker), "the parent of round %u\n", round);
		if (!make_marked(parent, round % 2 ? "size=64M" : NULL, marker))
			return;
		for (unsigned i = 0; i < n_threads; i++) {
			int role = i == 0 ? ROLE_REMOVE : i <= n_children ? ROLE_CHILD : ROLE_GET;
			snprintf(children[i], sizeof(children[i]), "%s-child-%u", parent, i);
			racers[i] = (struct racer){
				.index = i, .role = role, .marker = marker,
				.id = role == ROLE_CHILD ? children[i] : parent,
				.parent = parent,
				.flags = i % 2 ? BTRFSLAYER_CREATE_READ_ONLY : 0,
				.size = i % 3 == 2 ? "size=16M" : NULL,
				.rnd = rnd_seed(1000 + round * MAX_THREADS + i),
			};
		}
		run_racers(racers, n_threads, race_role);
		snprintf(when, sizeof(when), "parent race %u", round);
		check_parent_race(racers, parent, when);
	}
	printf("parent race: %u rounds; children created %lu, -ENOENT %lu\n", n_rounds,
	       atomic_load(&children_made), atomic_load(&children_enoent));
}

/* ---- 3. removal race ------------------------------------------------------- */

/* One thread removes a layer while the others get it, read its usage, set
 * and clear its limit until it is gone.  Afterwards nothing of it is left,
 * its quota file included: a limit set during the removal went with it. */
static void removal_race(void)
{
	struct racer racers[MAX_THREADS];
	char id[64], marker[64], when[128], quota[PATH_MAX];
	struct stat st;
	for (unsigned round = 0; round < n_rounds; round++) {
		snprintf(id, sizeof(id), "gone-%u", round);
		snprintf(marker, sizeof(marker), "removed in round %u\n", round);
		if (!make_marked(id, round % 2 ? "size=64M" : NULL, marker))
			return;
		for (unsigned i = 0; i < n_threads; i++)
			racers[i] = (struct racer){
				.index = i, .id = id, .marker = marker,
				.role = i == 0 ? ROLE_REMOVE : ROLE_GET + (int)((i - 1) % 4),
				.rnd = rnd_seed(500000 + round * MAX_THREADS + i),
			};
		run_racers(racers, n_threads, race_role);
		snprintf(when, sizeof(when), "removal race %u", round);
		check_parent_race(racers, id, when);
		snprintf(quota, sizeof(quota), "%s/quotas/%s", home, id);
		if (lstat(quota, &st) == 0)
			failf("%s: %s outlives its layer", when, quota);
	}
	printf("removal race: %u rounds\n", n_rounds);
	print_until_gone();
}

/* ---- 4. the mix ------------------------------------------------------------- */

enum op {
	OP_CREATE, OP_CREATE_SIZED, OP_CREATE_RO, OP_SNAPSHOT, OP_SNAPSHOT_RO,
	OP_REMOVE, OP_GET, OP_EXISTS, OP_SET_QUOTA, OP_CLEAR_QUOTA, OP_USAGE,
	OP_LAYERS, OP_STATUS, N_OPS
};

static const struct {
	const char *name;
	unsigned weight;
} ops[N_OPS] = {
	[OP_CREATE] = { "create", 8 },
	[OP_CREATE_SIZED] = { "create size=", 5 },
	[OP_CREATE_RO] = { "create read-only", 3 },
	[OP_SNAPSHOT] = { "create snapshot", 10 },
	[OP_SNAPSHOT_RO] = { "create snapshot read-only", 4 },
	[OP_REMOVE] = { "remove", 22 },
	[OP_GET] = { "get + put", 14 },
	[OP_EXISTS] = { "exists", 8 },
	[OP_SET_QUOTA] = { "set_quota", 8 },
	[OP_CLEAR_QUOTA] = { "clear_quota", 5 },
	[OP_USAGE] = { "get_usage", 8 },
	[OP_LAYERS] = { "layers", 3 },
	[OP_STATUS] = { "status", 2 },
};

enum outcome { OUT_OK, OUT_EEXIST, OUT_ENOENT, OUT_UNEXPECTED, N_OUTCOMES };

struct worker {
	unsigned index;
	uint64_t rnd;
	unsigned long tally[N_OPS][N_OUTCOMES];
};

static void pool_id(struct worker *w, char buf[16])
{
	snprintf(buf, 16, "L%02u", rnd(&w->rnd) % POOL);
}

static enum op pick_op(struct worker *w)
{
	unsigned total = 0;
	for (int i = 0; i < N_OPS; i++)
		total += ops[i].weight;
	unsigned x = rnd(&w->rnd) % total;
	for (int i = 0; i < N_OPS; i++) {
		if (x < ops[i].weight)
			return i;
		x -= ops[i].weight;
	}
	return OP_EXISTS;
}

/* Sort a call's result into the tally; eexist_ok and enoent_ok say which
 * failures contention explains for this operation. */
static void tally(struct worker *w, enum op op, const char *id, int r,
		  btrfslayer_error *err, bool eexist_ok, bool enoent_ok)
{
	enum outcome o = r >= 0 ? OUT_OK
		: r == -EEXIST && eexist_ok ? OUT_EEXIST
		: r == -ENOENT && enoent_ok ? OUT_ENOENT : OUT_UNEXPECTED;
	w->tally[op][o]++;
	if (o == OUT_UNEXPECTED)
		failf("mix: thread %u: %s %s = %d (%s): %s", w->index, ops[op].name, id, r,
		      btrfslayer_strerror(r), message(err));
	btrfslayer_error_free(err);
}

/* Some data in a layer: snapshots then share it and quotas count it.  A
 * read-only layer, a limit or a removal may refuse it: not the library's
 * business. */
static void scribble(struct worker *w, const char *dir)
{
	char name[32], text[64];
	snprintf(name, sizeof(name), "w%u-%u", w->index, rnd(&w->rnd) % 8);
	snprintf(text, sizeof(text), "written by thread %u\n", w->index);
	write_file(dir, name, text);
}

static void mix_get(struct worker *w, const char *id)
{
	btrfslayer_error *err = NULL;
	char *path = NULL, want[PATH_MAX];
	int r = btrfslayer_get(h, id, NULL, &path, &err);
	if (r == 0) {
		snprintf(want, sizeof(want), "%s/subvolumes/%s", home, id);
		if (!path || strcmp(path, want))
			failf("mix: get %s: path %s, want %s", id, path ? path : "NULL", want);
		else if (rnd(&w->rnd) % 4 == 0)
			scribble(w, path);
		free(path);
		int p = btrfslayer_put(h, id, NULL);
		if (p < 0)
			failf("mix: put %s = %d", id, p);
	} else if (path) {
		failf("mix: get %s failed (%d) but set a path", id, r);
	}
	tally(w, OP_GET, id, r, err, false, true);
}

static void mix_exists(struct worker *w, const char *id)
{
	btrfslayer_error *err = NULL;
	int r = btrfslayer_exists(h, id, &err);
	/* 0 (absent) is counted as -ENOENT */
	if (r == 0)
		w->tally[OP_EXISTS][OUT_ENOENT]++;
	else if (r == 1)
		w->tally[OP_EXISTS][OUT_OK]++;
	else
		tally(w, OP_EXISTS, id, r < 0 ? r : -EPROTO, err, false, false);
}

static void mix_usage(struct worker *w, const char *id)
{
	btrfslayer_error *err = NULL;
	btrfslayer_usage u;
	int r = btrfslayer_get_usage(h, id, 0, &u, sizeof(u), &err);
	tally(w, OP_USAGE, id, r, err, false, true);
}

/* The ids listed are ids: no reserved name leaks into the list. */
static void mix_list(struct worker *w, enum op op)
{
	btrfslayer_error *err = NULL;
	btrfslayer_list *list = NULL;
	int r = op == OP_LAYERS ? btrfslayer_layers(h, &list, &err)
				: btrfslayer_status(h, &list, &err);
	for (size_t i = 0; op == OP_LAYERS && r == 0 && i < btrfslayer_list_count(list); i++)
		if (btrfslayer_list_key(list, i)[0] == '.')
			failf("mix: layers lists %s", btrfslayer_list_key(list, i));
	btrfslayer_list_free(list);
	tally(w, op, "", r, err, false, false);
}

static void mix_one(struct worker *w)
{
	static const char *const sizes[] = { "size=16M", "size=64M", "size=1G" };
	btrfslayer_error *err = NULL;
	char id[16], parent[16];
	enum op op = pick_op(w);
	pool_id(w, id);
	pool_id(w, parent);
	const char *size = sizes[rnd(&w->rnd) % 3];
	uint64_t limit = (uint64_t)(16 + rnd(&w->rnd) % 1024) << 20;
	uint32_t ro = BTRFSLAYER_CREATE_READ_ONLY;
	/* what contention explains: -EEXIST for creates, -ENOENT for a missing
	 * layer or parent */
	bool eexist_ok = false, enoent_ok = true;
	int r;
	switch (op) {
	case OP_CREATE:
	case OP_CREATE_SIZED:
	case OP_CREATE_RO:
		r = create(id, NULL, op == OP_CREATE_RO ? ro : 0, op == OP_CREATE_SIZED ? size : NULL,
			   &err);
		eexist_ok = true;
		enoent_ok = false;	/* no parent to miss */
		break;
	case OP_SNAPSHOT:
	case OP_SNAPSHOT_RO:
		r = create(id, parent, op == OP_SNAPSHOT_RO ? ro : 0,
			   op == OP_SNAPSHOT && rnd(&w->rnd) % 2 ? size : NULL, &err);
		eexist_ok = true;
		break;
	case OP_REMOVE:
		r = btrfslayer_remove(h, id, &err);
		break;
	case OP_SET_QUOTA:
		r = btrfslayer_set_quota(h, id, limit, &err);
		break;
	case OP_CLEAR_QUOTA:
		r = btrfslayer_clear_quota(h, id, &err);
		break;
	case OP_GET:
		mix_get(w, id);
		return;
	case OP_EXISTS:
		mix_exists(w, id);
		return;
	case OP_USAGE:
		mix_usage(w, id);
		return;
	default:
		mix_list(w, op);
		return;
	}
	tally(w, op, id, r, err, eexist_ok, enoent_ok);
}

static void *mix_thread(void *arg)
{
	struct worker *w = arg;
	h = handles[w->index % n_handles];
	for (unsigned i = 0; i < n_ops; i++)
		mix_one(w);
	return NULL;
}

static void mix(void)
{
	static struct worker workers[MAX_THREADS];
	pthread_t tids[MAX_THREADS];
	unsigned long sum[N_OPS][N_OUTCOMES] = {{0}};
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned i = 0; i < n_threads; i++) {
		workers[i] = (struct worker){ .index = i, .rnd = rnd_seed(i) };
		int e = pthread_create(&tids[i], NULL, mix_thread, &workers[i]);
		if (e) {
			fprintf(stderr, "stress: pthread_create: %s\n", strerror(e));
			exit(1);
		}
	}
	for (unsigned i = 0; i < n_threads; i++)
		pthread_join(tids[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;

	unsigned long total = 0;
	printf("mix: %u threads x %u operations on %u ids in %.1f s\n", n_threads, n_ops,
	       POOL, secs);
	printf("  %-26s %8s %8s %8s %10s\n", "operation", "ok", "EEXIST", "ENOENT", "unexpected");
	for (int op = 0; op < N_OPS; op++) {
		for (unsigned i = 0; i < n_threads; i++)
			for (int o = 0; o < N_OUTCOMES; o++)
				sum[op][o] += workers[i].tally[op][o];
		printf("  %-26s %8lu %8lu %8lu %10lu\n", ops[op].name, sum[op][OUT_OK],
		       sum[op][OUT_EEXIST], sum[op][OUT_ENOENT], sum[op][OUT_UNEXPECTED]);
		for (int o = 0; o < N_OUTCOMES; o++)
			total += sum[op][o];
	}
	printf("  (exists: ok = 1, ENOENT = 0); %lu calls, %.0f/s\n", total,
	       secs > 0 ? total / secs : 0.0);
}

/* ---- 5. the end state --------------------------------------------------------- */

static void layer_entry(const char *sub, const char *name, const char *when)
{
	if (is_reserved(name))
		return;		/* no_reserved() says it */
	if (harness_is_template(name)) {
		/* the library's own, whole whatever the threads did */
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s/%s", home, sub, name);
		const char *flaw = harness_template_flaw(path);
		if (flaw)
			failf("%s: empty template %s: %s", when, path, flaw);
		return;
	}
	expect_exists(name, 1, when);
}

/* A quota file belongs to a layer; a marker waits for the kernel. */
static void quota_entry(const char *sub, const char *name, const char *when)
{
	(void)sub;
	btrfslayer_error *err = NULL;
	if (is_reserved(name) || is_qgroup_marker(name))
		return;
	if (btrfslayer_exists(h, name, &err) != 1)
		failf("%s: quota file %s/quotas/%s has no layer", when, home, name);
	btrfslayer_error_free(err);
}

/* The kernel's limit is the recorded one, and the file is there iff a limit
 * is recorded. */
static void check_limits(const char *id, const char *when)
{
	btrfslayer_error *err = NULL;
	btrfslayer_usage u;
	char path[PATH_MAX];
	struct stat st;
	int r = btrfslayer_get_usage(h, id, 0, &u, sizeof(u), &err);
	if (r < 0) {
		failf("%s: get_usage %s = %d: %s", when, id, r, message(err));
		btrfslayer_error_free(err);
		return;
	}
	if (u.limit != u.recorded_limit)
		failf("%s: layer %s: kernel limit %" PRIu64 ", recorded %" PRIu64, when, id,
		      u.limit, u.recorded_limit);
	snprintf(path, sizeof(path), "%s/quotas/%s", home, id);
	bool file = lstat(path, &st) == 0;
	if (file != (u.recorded_limit != 0))
		failf("%s: layer %s: quota file %s but recorded limit %" PRIu64, when, id,
		      file ? "present" : "absent", u.recorded_limit);
}

static unsigned check_end_state(const char *when)
{
	btrfslayer_error *err = NULL;
	btrfslayer_list *list = NULL;
	check_no_reserved(when);
	scan("subvolumes", layer_entry, when);
	scan("quotas", quota_entry, when);
	if (!ok(btrfslayer_layers(h, &list, &err), &err, "layers"))
		return 0;
	unsigned n = (unsigned)btrfslayer_list_count(list);
	for (size_t i = 0; i < n; i++)
		check_limits(btrfslayer_list_key(list, i), when);
	btrfslayer_list_free(list);
	return n;
}

static void remove_all(void)
{
	btrfslayer_error *err = NULL;
	btrfslayer_list *list = NULL;
	if (!ok(btrfslayer_layers(h, &list, &err), &err, "layers"))
		return;
	for (size_t i = 0; i < btrfslayer_list_count(list); i++)
		remove_quietly(btrfslayer_list_key(list, i));
	btrfslayer_list_free(list);
}

static bool open_store(unsigned n)
{
	/* quotas on from open: btrfs.quota_mode alone waits for a limit */
	const char *opts[] = { open_option, "btrfs.min_space=1" };
	for (unsigned i = 0; i < n; i++) {
		btrfslayer_error *err = NULL;
		if (!ok(btrfslayer_open(home, opts, 2, NULL, 0, NULL, 0, &handles[i], &err),
			&err, "open"))
			return false;
	}
	h = handles[0];
	return true;
}

/* The first handle last: it made home's mount, which the others keep busy. */
static void close_store(unsigned n)
{
	while (n--) {
		btrfslayer_error *err = NULL;
		ok(btrfslayer_close(handles[n], &err), &err, "close");
		handles[n] = NULL;
	}
	h = NULL;
}

/* The open's recovery sweep had nothing to recover after a clean close
 * (qgroups of deleted subvolumes may still be due). */
static void check_sweep(void)
{
	btrfslayer_error *err = NULL;
	btrfslayer_list *list = NULL;
	static const char *const keys[] = {
		"sweep_tombstones", "sweep_temporaries", "sweep_quota_files", "sweep_left",
	};
	if (!ok(btrfslayer_status(h, &list, &err), &err, "status"))
		return;
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		const char *v = NULL;
		for (size_t i = 0; i < btrfslayer_list_count(list); i++)
			if (!strcmp(btrfslayer_list_key(list, i), keys[k]))
				v = btrfslayer_list_value(list, i);
		if (!v)
			failf("reopen: status has no %s", keys[k]);
		else if (strcmp(v, "0"))
			failf("reopen after a clean close: %s = %s, want 0", keys[k], v);
	}
	btrfslayer_list_free(list);
}

static int count_level0_qgroups(void)
{
	char cmd[PATH_MAX], line[512];
	snprintf(cmd, sizeof(cmd), "btrfs qgroup show --raw '%s' 2>&1", harness_btrfs());
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	int n = 0;
	while (fgets(line, sizeof(line), p))
		n += starts_with(line, "0/");
	return pclose(p) == 0 ? n : -1;
}

static void btrfs_cmd(const char *group, const char *cmd)
{
	const char *const argv[] = { "btrfs", group, cmd, harness_btrfs(), NULL };
	if (harness_run(argv) != 0)
		failf("btrfs %s %s %s failed", group, cmd, harness_btrfs());
}

/* Every layer removed, the cleaner done, one more open + close: only qgroup
 * 0/5 and no marker remain. */
static void show_entry(const char *sub, const char *name, const char *when)
{
	static atomic_uint shown;
	if (atomic_fetch_add(&shown, 1) < 5)
		fprintf(stderr, "%s: %s/%s/%s\n", when, home, sub, name);
}

static void check_teardown(void)
{
	remove_all();
	close_store(n_handles);
	int markers = scan("quotas", NULL, "after close");
	btrfs_cmd("filesystem", "sync");
	btrfs_cmd("subvolume", "sync");
	if (!open_store(1))
		return;
	check_sweep();
	check_no_reserved("after the last open");
	close_store(1);
	uint64_t templates[4];
	/* 0/5 and the empty template's, which stays with no layer */
	int want = 1 + harness_template_ids(home, templates, 4);
	int qgroups = count_level0_qgroups();
	int left = scan("quotas", show_entry, "left after the last close");
	printf("teardown: %d entries in quotas/ after removing every layer and closing; "
	       "after the cleaner and one more open + close: %d level-0 qgroups, %d entries\n",
	       markers, qgroups, left);
	if (qgroups != want)
		failf("after removing every layer: %d level-0 qgroups, want %d (0/5 and the "
		      "empty template's)", qgroups, want);
	if (left)
		failf("after removing every layer: quotas/ holds %d entries, want none", left);
	uint64_t marked[8];
	int n_marked = harness_markers(home, marked, 8);
	if (n_marked)
		failf("after removing every layer: %d qgroup markers left, the first of 0/%" PRIu64,
		      n_marked, marked[0]);
}

/* ---- main ------------------------------------------------------------------------ */

static void configure(void)
{
	n_threads = env_unsigned("BTRFSLAYER_STRESS_THREADS", 8, 2, MAX_THREADS);
	/* every call that changes the store commits before it returns: the
	 * defaults keep the run to a minute or two; soak with more */
	n_ops = env_unsigned("BTRFSLAYER_STRESS_OPS", 400, 0, 10000000);
	n_rounds = env_unsigned("BTRFSLAYER_STRESS_ROUNDS", 16, 0, 100000);
	n_handles = env_unsigned("BTRFSLAYER_STRESS_HANDLES", 1, 1, MAX_HANDLES);
	const char *s = getenv("BTRFSLAYER_STRESS_SEED");
	seed = s && *s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)getpid();
	const char *mode = getenv("BTRFSLAYER_STRESS_QUOTA_MODE");
	if (!mode || !*mode)
		mode = access("/sys/fs/btrfs/features/simple_quota", F_OK) == 0 ? "simple"
										: "qgroup";
	snprintf(open_option, sizeof(open_option), "btrfs.quota_mode=%s", mode);
}

int main(void)
{
	struct timespec t0, t;
	setvbuf(stdout, NULL, _IOLBF, 0);
	configure();
	harness_start();
	btrfslayer_set_log_fn(on_log, NULL);
	harness_new_home(home, sizeof(home));
	printf("stress: %s, %u handle(s), %u threads, %u operations each, %u race rounds, "
	       "BTRFSLAYER_STRESS_SEED=%" PRIu64 "\n", open_option, n_handles, n_threads,
	       n_ops, n_rounds, seed);
	if (!open_store(n_handles))
		return 1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	t = t0;
	create_race();
	printf("  %.1f s\n", since(&t));
	clock_gettime(CLOCK_MONOTONIC, &t);
	parent_race();
	printf("  %.1f s\n", since(&t));
	clock_gettime(CLOCK_MONOTONIC, &t);
	removal_race();
	printf("  %.1f s\n", since(&t));
	mix();
	clock_gettime(CLOCK_MONOTONIC, &t);
	unsigned layers = check_end_state("after the mix");
	printf("end state: %u layers checked\n", layers);
	check_teardown();
	printf("  %.1f s\n", since(&t));

	unsigned f = atomic_load(&failures);
	printf("stress: %.1f s; library log: %u errors, %u warnings, %u info; %u failures%s\n",
	       since(&t0), atomic_load(&log_errors), atomic_load(&log_warnings),
	       atomic_load(&log_infos), f, f > FAILURES_SHOWN ? " (first ones shown)" : "");
	return f ? 1 : 0;
}
