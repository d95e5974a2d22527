/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The recovery sweep at open and handles sharing a home, on a real btrfs.
 * Leftovers are planted by hand exactly as a handle killed mid-call leaves
 * them (tests/crash makes them for real); the sweep must clean what a dead
 * handle left and nothing a live one is still building.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <btrfsutil.h>
#include <cmocka.h>

#include "btrfslayer.h"
#include "check.h"
#include "harness.h"

#define HOME_MAX 128
#define MiB (UINT64_C(1) << 20)
#define SHARED_IDS 40

struct ctx {
	char home[HOME_MAX];
};

/* ---- what the library logs ------------------------------------------------ */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_text[16384];

static void capture_log(int level, const char *message, void *userdata)
{
	(void)userdata;
	pthread_mutex_lock(&log_lock);
	size_t used = strlen(log_text);
	snprintf(log_text + used, sizeof(log_text) - used, "%d %s\n", level, message);
	pthread_mutex_unlock(&log_lock);
}

static void assert_logged(int level, const char *needle)
{
	char want[256];
	snprintf(want, sizeof(want), "%d %s", level, needle);
	if (!strstr(log_text, want))
		fail_msg("log lacks \"%s\"; it has:\n%s", want, log_text);
}

/* ---- the store, as an operator sees it ------------------------------------- */

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	harness_new_home(c->home, sizeof(c->home));
	log_text[0] = '\0';
	btrfslayer_set_log_fn(capture_log, NULL);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	btrfslayer_set_log_fn(NULL, NULL);
	free(*state);
	return 0;
}

/* Handles that share a home do not make it a mount point: closing the
 * one that did while another is open would be -EBUSY (see test_host.c). */
static const char *const no_mount[] = { "btrfs.mount_home=false" };

static btrfslayer *open_home(const struct ctx *c)
{
	btrfslayer *h = NULL;
	assert_ok(btrfslayer_open(c->home, no_mount, 1, NULL, 0, NULL, 0, &h, ERR));
	return h;
}

static void close_home(btrfslayer *h)
{
	assert_ok(btrfslayer_close(h, ERR));
}

static unsigned long status_count(btrfslayer *h, const char *key)
{
	btrfslayer_list *list = NULL;
	assert_ok(btrfslayer_status(h, &list, ERR));
	for (size_t i = 0; i < btrfslayer_list_count(list); i++) {
		if (strcmp(btrfslayer_list_key(list, i), key))
			continue;
		unsigned long n = strtoul(btrfslayer_list_value(list, i), NULL, 10);
		btrfslayer_list_free(list);
		return n;
	}
	btrfslayer_list_free(list);
	fail_msg("status has no %s", key);
	return 0;
}

static void assert_sweep(btrfslayer *h, unsigned long tombstones, unsigned long temporaries,
			 unsigned long quota_files, unsigned long left)
{
	assert_int_equal(status_count(h, "sweep_tombstones"), tombstones);
	assert_int_equal(status_count(h, "sweep_temporaries"), temporaries);
	assert_int_equal(status_count(h, "sweep_quota_files"), quota_files);
	assert_int_equal(status_count(h, "sweep_left"), left);
}

/* quotas/.qgroup-<n> records a deleted subvolume's qgroup until the
 * kernel's cleaner lets it be destroyed: it may outlive a call. */
static bool markers_too;

static int not_a_marker(const struct dirent *d)
{
	/* nor the empty template, which stays with no layer */
	if (harness_is_template(d->d_name))
		return 0;
	return markers_too || strncmp(d->d_name, ".qgroup-", 8);
}

/* The names in HOME/<dir>, sorted, space-separated, and for quotas/ those
 * in its .staging directory too (where the library keeps its reserved
 * files): qgroup markers only when markers_too is set. */
static char *listing(const struct ctx *c, const char *dir_name)
{
	char path[PATH_MAX];
	char *out = calloc(1, 4096);
	for (int staged = 0; staged < 1 + !strcmp(dir_name, "quotas"); staged++) {
		struct dirent **names;
		snprintf(path, sizeof(path), "%s/%s%s", c->home, dir_name,
			 staged ? "/.staging" : "");
		int n = scandir(path, &names, not_a_marker, alphasort);
		assert_true(n >= 0 || (staged && errno == ENOENT));
		for (int i = 0; i < n; i++) {
			const char *name = names[i]->d_name;
			if (strcmp(name, ".") && strcmp(name, "..") &&
			    (staged || strcmp(name, ".staging"))) {
				strcat(out, *out ? " " : "");
				strncat(out, name, 4096 - strlen(out) - 2);
			}
			free(names[i]);
		}
		if (n >= 0)
			free(names);
	}
	return out;
}

static void assert_listing(const struct ctx *c, const char *dir_name, const char *want)
{
	char *got = listing(c, dir_name);
	if (strcmp(got, want))
		fail_msg("%s/%s holds \"%s\", want \"%s\"", c->home, dir_name, got, want);
	free(got);
}

/* Where the library keeps a file of quotas/: reserved ones in .staging. */
static const char *place(const char *name)
{
	return name[0] == '.' ? "/.staging" : "";
}

/* A reserved subvolume has its stand-in in subvolumes/.staging. */
static void plant_stand_in(const struct ctx *c, const char *name)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/subvolumes/.staging/%s", c->home, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
}

static void plant_subvolume(const struct ctx *c, const char *name, bool nested,
			    bool read_only)
{
	char path[PATH_MAX], inner[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/subvolumes/%s", c->home, name);
	if (name[0] == '.')
		plant_stand_in(c, name);
	assert_int_equal(btrfs_util_create_subvolume(path, 0, NULL, NULL), BTRFS_UTIL_OK);
	if (nested) {
		snprintf(inner, sizeof(inner), "%s/nested", path);
		assert_int_equal(btrfs_util_create_subvolume(inner, 0, NULL, NULL), BTRFS_UTIL_OK);
	}
	if (read_only)
		assert_int_equal(btrfs_util_set_subvolume_read_only(path, true), BTRFS_UTIL_OK);
}

static void plant_file(const struct ctx *c, const char *dir_name, const char *name,
		       const char *content)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s%s/%s", c->home, dir_name, place(name), name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	assert_int_equal(fclose(f), 0);
}

/* Subvolumes of the filesystem, other than the top one and the library's
 * empty template. */
static int count_subvolumes(void)
{
	struct btrfs_util_subvolume_iterator *iter;
	char *path;
	int n = 0;
	assert_int_equal(btrfs_util_create_subvolume_iterator(harness_btrfs(), 5, 0, &iter),
			 BTRFS_UTIL_OK);
	while (btrfs_util_subvolume_iterator_next(iter, &path, NULL) == BTRFS_UTIL_OK) {
		n += !harness_is_template(path);	/* it stays: the library's own */
		free(path);
	}
	btrfs_util_destroy_subvolume_iterator(iter);
	return n;
}

/* ---- the sweep -------------------------------------------------------------- */

/* Everything a killed handle can leave, and one thing the library never
 * makes (a plain directory under a reserved name), which stays. */
static void test_sweep_cleans_after_dead_handle(void **state)
{
	struct ctx *c = *state;
	btrfslayer *h = open_home(c);
	const char *size[] = { "size=8M" };
	assert_ok(btrfslayer_create(h, "keep", NULL, 0, NULL, size, 1, ERR));
	close_home(h);
	int subvolumes_before = count_subvolumes();

	/* a create killed before its rename, with a nested subvolume made
	 * meanwhile; a remove killed after burying a read-only layer */
	plant_subvolume(c, ".tmp-5-0123456789abcdef", true, false);
	plant_subvolume(c, ".tomb-6-0123456789abcdef", false, true);
	plant_file(c, "quotas", ".tomb-6-0123456789abcdef", "1048576\n");
	plant_file(c, "quotas", ".tmp-7-0123456789abcdef", "2097152\n");
	plant_file(c, "quotas", "gone", "8388608\n");
	char junk[PATH_MAX];
	snprintf(junk, sizeof(junk), "%s/subvolumes/.tmp-junk", c->home);
	assert_int_equal(mkdir(junk, 0700), 0);
	plant_stand_in(c, ".tmp-junk");

	h = open_home(c);
	/* a record of no layer is not looked for (that would cost a look-up
	 * per record at every open): it is harmless, and replaced or removed
	 * when a layer of that id is made */
	assert_sweep(h, 1, 1, 2, 1);
	assert_listing(c, "subvolumes", ".tmp-junk keep");
	assert_listing(c, "quotas", "gone keep");
	assert_int_equal(count_subvolumes(), subvolumes_before);
	assert_logged(BTRFSLAYER_LOG_INFO, "recovery: deleted unfinished layer");
	assert_logged(BTRFSLAYER_LOG_INFO, "recovery: finished removing a layer");
	assert_logged(BTRFSLAYER_LOG_INFO, "recovery: deleted an unfinished quota file");
	assert_logged(BTRFSLAYER_LOG_WARNING, "recovery: ");

	/* what was kept is whole */
	btrfslayer_usage u;
	assert_ok(btrfslayer_get_usage(h, "keep", 0, &u, sizeof(u), ERR));
	assert_int_equal(u.limit, 8 * MiB);
	assert_int_equal(u.recorded_limit, 8 * MiB);
	close_home(h);

	/* once the kernel's cleaner is done, the next open destroys what
	 * qgroups it left and their markers go; then nothing but the junk */
	const char *sync_fs[] = { "btrfs", "filesystem", "sync", harness_btrfs(), NULL };
	const char *sync_cleaner[] = { "btrfs", "subvolume", "sync", harness_btrfs(), NULL };
	assert_int_equal(harness_run(sync_fs), 0);
	assert_int_equal(harness_run(sync_cleaner), 0);
	h = open_home(c);
	assert_sweep(h, 0, 0, 0, 1);
	markers_too = true;
	assert_listing(c, "quotas", "gone keep");
	markers_too = false;
	/* a layer made under that id takes the stale record's place */
	assert_ok(btrfslayer_create(h, "gone", NULL, 0, NULL, NULL, 0, ERR));
	assert_listing(c, "quotas", "keep");
	assert_ok(btrfslayer_get_usage(h, "gone", 0, &u, sizeof(u), ERR));
	assert_int_equal(u.recorded_limit, 0);
	close_home(h);
}

static uint64_t subvolume_of(const struct ctx *c, const char *id)
{
	char path[PATH_MAX];
	uint64_t subvolume;
	snprintf(path, sizeof(path), "%s/subvolumes/%s", c->home, id);
	assert_int_equal(btrfs_util_subvolume_id(path, &subvolume), BTRFS_UTIL_OK);
	return subvolume;
}

/* An intent as a set_quota (size) or clear_quota (0) of a dead handle's
 * slot 9 leaves it, for layer `id` in subvolume `subvolume`. */
static void plant_intent(const struct ctx *c, const char *name, const char *id,
			 uint64_t subvolume, uint64_t size)
{
	char path[PATH_MAX], intent[320];
	snprintf(intent, sizeof(intent), "%s %llu %s", size ? "set" : "clear",
		 (unsigned long long)subvolume, id);
	char content[32] = "";
	if (size)
		snprintf(content, sizeof(content), "%llu", (unsigned long long)size);
	plant_file(c, "quotas", name, content);
	snprintf(path, sizeof(path), "%s/quotas/.staging/%s", c->home, name);
	assert_int_equal(setxattr(path, "user.btrfslayer.intent", intent, strlen(intent), 0), 0);
}

static void assert_limits(btrfslayer *h, const char *id, uint64_t limit, uint64_t recorded)
{
	btrfslayer_usage u;
	assert_ok(btrfslayer_get_usage(h, id, 0, &u, sizeof(u), ERR));
	if (u.limit != limit || u.recorded_limit != recorded)
		fail_msg("%s: limit %llu recorded %llu, want %llu and %llu", id,
			 (unsigned long long)u.limit, (unsigned long long)u.recorded_limit,
			 (unsigned long long)limit, (unsigned long long)recorded);
}

/* A set_quota or clear_quota killed between the kernel's limit and the
 * record leaves its intent: the next open finishes what it announced, and
 * touches no other limit, not even one set by hand that no record has. */
static void test_sweep_finishes_limit_changes(void **state)
{
	struct ctx *c = *state;
	btrfslayer *h = open_home(c);
	const char *size[] = { "size=8M" };
	assert_ok(btrfslayer_create(h, "growing", NULL, 0, NULL, size, 1, ERR));
	assert_ok(btrfslayer_create(h, "cleared", NULL, 0, NULL, size, 1, ERR));
	assert_ok(btrfslayer_create(h, "by-hand", NULL, 0, NULL, NULL, 0, ERR));
	assert_ok(btrfslayer_create(h, "later", NULL, 0, NULL, NULL, 0, ERR));
	assert_ok(btrfslayer_create(h, "kept", NULL, 0, NULL, size, 1, ERR));
	close_home(h);

	/* killed after the kernel's step: growing has the new limit, cleared
	 * has none, but both records are the old ones */
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/subvolumes/growing", c->home);
	const char *grow[] = { "btrfs", "qgroup", "limit", "16M", path, NULL };
	assert_int_equal(harness_run(grow), 0);
	plant_intent(c, ".tmp-9-0123456789abcdef", "growing", subvolume_of(c, "growing"),
		     16 * MiB);
	snprintf(path, sizeof(path), "%s/subvolumes/cleared", c->home);
	const char *clear[] = { "btrfs", "qgroup", "limit", "none", path, NULL };
	assert_int_equal(harness_run(clear), 0);
	plant_intent(c, ".tmp-9-1123456789abcdef", "cleared", subvolume_of(c, "cleared"), 0);
	/* killed before its kernel step, of a layer removed and made again
	 * since: not the layer it was meant for */
	uint64_t earlier = subvolume_of(c, "later");
	snprintf(path, sizeof(path), "%s/subvolumes/later", c->home);
	const char *del[] = { "btrfs", "subvolume", "delete", path, NULL };
	assert_int_equal(harness_run(del), 0);
	assert_int_equal(btrfs_util_create_subvolume(path, 0, NULL, NULL), BTRFS_UTIL_OK);
	plant_intent(c, ".tmp-9-2123456789abcdef", "later", earlier, 4 * MiB);
	/* an administrator's limit, of no intent and no record */
	snprintf(path, sizeof(path), "%s/subvolumes/by-hand", c->home);
	const char *by_hand[] = { "btrfs", "qgroup", "limit", "32M", path, NULL };
	assert_int_equal(harness_run(by_hand), 0);

	h = open_home(c);
	assert_int_equal(status_count(h, "sweep_limits"), 3);
	assert_limits(h, "growing", 16 * MiB, 16 * MiB);
	assert_limits(h, "cleared", 0, 0);
	assert_limits(h, "later", 0, 0);
	assert_limits(h, "by-hand", 32 * MiB, 0);
	assert_logged(BTRFSLAYER_LOG_INFO, "recovery: finished an interrupted set of the size "
		      "limit of");
	assert_logged(BTRFSLAYER_LOG_INFO, "recovery: finished an interrupted clear of the size "
		      "limit of");
	assert_listing(c, "quotas", "growing kept");
	close_home(h);
}

/* A remove killed after burying the record (its intent, intent.c): the
 * record comes back when the layer is still there, and goes with it. */
static void test_sweep_finishes_removals(void **state)
{
	struct ctx *c = *state;
	btrfslayer *h = open_home(c);
	const char *size[] = { "size=8M" };
	assert_ok(btrfslayer_create(h, "kept", NULL, 0, NULL, size, 1, ERR));
	assert_ok(btrfslayer_create(h, "gone", NULL, 0, NULL, size, 1, ERR));
	close_home(h);
	char from[PATH_MAX], to[PATH_MAX], intent[320];
	const char *ids[] = { "kept", "gone" };
	for (int i = 0; i < 2; i++) {
		snprintf(intent, sizeof(intent), "remove %llu %s",
			 (unsigned long long)subvolume_of(c, ids[i]), ids[i]);
		snprintf(from, sizeof(from), "%s/quotas/%s", c->home, ids[i]);
		snprintf(to, sizeof(to), "%s/quotas/.staging/.tomb-9-%d123456789abcdef", c->home, i);
		assert_int_equal(setxattr(from, "user.btrfslayer.intent", intent, strlen(intent),
					  0), 0);
		assert_int_equal(rename(from, to), 0);
	}
	snprintf(from, sizeof(from), "%s/subvolumes/gone", c->home);
	const char *del[] = { "btrfs", "subvolume", "delete", from, NULL };
	assert_int_equal(harness_run(del), 0);

	h = open_home(c);
	assert_int_equal(status_count(h, "sweep_limits"), 2);
	assert_limits(h, "kept", 8 * MiB, 8 * MiB);
	assert_listing(c, "quotas", "kept");
	assert_logged(BTRFSLAYER_LOG_INFO, "recovery: finished an interrupted remove");
	close_home(h);
}

/* A home a version before the staging directories used keeps its reserved
 * names in subvolumes/ and quotas/: the first open moves them to the
 * staging directories and sweeps them there. */
static void test_sweep_adopts_older_layout(void **state)
{
	struct ctx *c = *state;
	btrfslayer *h = open_home(c);
	assert_ok(btrfslayer_create(h, "keep", NULL, 0, NULL, NULL, 0, ERR));
	close_home(h);
	char path[PATH_MAX];
	const char *dirs[] = { "subvolumes", "quotas" };
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s/.staging", c->home, dirs[i]);
		assert_int_equal(rmdir(path), 0);
	}
	snprintf(path, sizeof(path), "%s/subvolumes/.tomb-3-0123456789abcdef", c->home);
	assert_int_equal(btrfs_util_create_subvolume(path, 0, NULL, NULL), BTRFS_UTIL_OK);
	snprintf(path, sizeof(path), "%s/quotas/.tmp-3-0123456789abcdef", c->home);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fclose(f), 0);

	h = open_home(c);
	assert_sweep(h, 1, 0, 1, 0);
	assert_listing(c, "subvolumes", "keep");
	assert_listing(c, "quotas", "");
	assert_listing(c, "subvolumes/.staging", "");
	close_home(h);
}

/* Names reserved by a handle that is still open are its work in progress. */
static void test_sweep_spares_live_handle(void **state)
{
	struct ctx *c = *state;
	btrfslayer *a = open_home(c);	/* the first handle: slot 0 */
	plant_subvolume(c, ".tmp-0-aaaaaaaaaaaaaaaa", false, false);
	plant_file(c, "quotas", ".tomb-0-bbbbbbbbbbbbbbbb", "1048576\n");
	/* a name without a slot, as version 0.2 made them */
	plant_subvolume(c, ".tmp-0123456789abcdef", false, false);

	btrfslayer *b = open_home(c);
	assert_sweep(b, 0, 0, 0, 3);
	assert_listing(c, "subvolumes", ".tmp-0-aaaaaaaaaaaaaaaa .tmp-0123456789abcdef");
	close_home(b);
	/* a closing handle whose calls left nothing behind looks for nothing */
	close_home(a);

	/* the names of a closed handle's slot go at the next open, and the
	 * one without a slot when no other handle is open */
	btrfslayer *alone = open_home(c);
	assert_sweep(alone, 0, 2, 1, 0);
	assert_listing(c, "subvolumes", "");
	assert_listing(c, "subvolumes/.staging", "");
	assert_listing(c, "quotas", "");
	close_home(alone);
}

/* ---- two processes on one home ---------------------------------------------- */

/* Both children start each call at once (a process-shared barrier). */
static pthread_barrier_t *barrier;

/* In a child: open the home, say so on `ready`, wait for a byte on `go`,
 * then create (then remove) ids 0..SHARED_IDS-1 with limit `size`, racing
 * the other child call by call.  Byte i of won[pass] says whether this one made (then
 * removed) id i; written to `result`.  Exits 0 when every call got 0 or
 * the one expected error. */
static void __attribute__((noreturn))
race(const char *home, uint64_t size, int ready, int go, int result)
{
	btrfslayer *h = NULL;
	char opt[64], id[16], byte, won[2][SHARED_IDS];
	snprintf(opt, sizeof(opt), "size=%llu", (unsigned long long)size);
	const char *opts[] = { opt };
	alarm(120);	/* never wait forever at the barrier for a dead sibling */
	if (btrfslayer_open(home, no_mount, 1, NULL, 0, NULL, 0, &h, NULL) < 0 ||
	    write(ready, "r", 1) != 1 || read(go, &byte, 1) != 1)
		_exit(1);
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < SHARED_IDS; i++) {
			snprintf(id, sizeof(id), "shared-%d", i);
			pthread_barrier_wait(barrier);
			int r = pass ? btrfslayer_remove(h, id, NULL)
				     : btrfslayer_create(h, id, NULL, 0, NULL, opts, 1, NULL);
			if (r < 0 && r != (pass ? -ENOENT : -EEXIST))
				_exit(1);
			won[pass][i] = r == 0;
		}
	}
	bool ok = btrfslayer_close(h, NULL) == 0 &&
		  write(result, won, sizeof(won)) == (ssize_t)sizeof(won);
	_exit(ok ? 0 : 1);
}

static void test_two_processes_share_a_home(void **state)
{
	struct ctx *c = *state;
	int ready[2], go[2], result[2][2];
	char won[2][2][SHARED_IDS], byte;
	pid_t pids[2];
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	btrfslayer_close(open_home(c), NULL);	/* make the home */
	barrier = mmap(NULL, sizeof(*barrier), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(barrier != MAP_FAILED);
	pthread_barrierattr_t attr;
	pthread_barrierattr_init(&attr);
	pthread_barrierattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	assert_int_equal(pthread_barrier_init(barrier, &attr, 2), 0);
	pthread_barrierattr_destroy(&attr);

	for (int p = 0; p < 2; p++) {
		assert_int_equal(pipe(result[p]), 0);
		pids[p] = fork();
		assert_true(pids[p] >= 0);
		if (pids[p] == 0)
			race(c->home, (16 + 8 * (uint64_t)p) * MiB, ready[1], go[0], result[p][1]);
		close(result[p][1]);
	}
	for (int p = 0; p < 2; p++)
		assert_int_equal(read(ready[0], &byte, 1), 1);
	assert_int_equal(write(go[1], "gg", 2), 2);	/* both at once */
	for (int p = 0; p < 2; p++) {
		int status;
		assert_int_equal(read(result[p][0], won[p], sizeof(won[p])), sizeof(won[p]));
		assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		close(result[p][0]);
	}

	int first_creates = 0;
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < SHARED_IDS; i++) {
			if (won[0][pass][i] == won[1][pass][i])
				fail_msg("%s shared-%d: both or neither succeeded",
					 pass ? "remove" : "create", i);
			first_creates += !pass && won[0][pass][i];
		}
	int first_removes = 0;
	for (int i = 0; i < SHARED_IDS; i++)
		first_removes += won[0][1][i];
	print_message("two processes: one created %d of %d ids and removed %d, the other created %d\n",
		      first_creates, SHARED_IDS, first_removes, SHARED_IDS - first_creates);
	assert_listing(c, "subvolumes", "");
	assert_listing(c, "quotas", "");
	for (int i = 0; i < 2; i++) {
		close(ready[i]);
		close(go[i]);
	}
	pthread_barrier_destroy(barrier);
	munmap(barrier, sizeof(*barrier));
}

/* While both are open, each id's quota file is the winner's, never the
 * loser's: the per-id steps are serialized across processes. */
static void test_quota_file_is_the_winners(void **state)
{
	struct ctx *c = *state;
	btrfslayer *a = open_home(c), *b = open_home(c);
	const char *small[] = { "size=16M" }, *big[] = { "size=24M" };
	for (int i = 0; i < 20; i++) {
		char id[16];
		btrfslayer_usage u;
		snprintf(id, sizeof(id), "l%d", i);
		assert_ok(btrfslayer_create(i % 2 ? a : b, id, NULL, 0, NULL, i % 2 ? small : big,
					    1, ERR));
		expect_fail(btrfslayer_create(i % 2 ? b : a, id, NULL, 0, NULL, i % 2 ? big : small,
					      1, ERR), -EEXIST, "create layer");
		assert_ok(btrfslayer_get_usage(a, id, 0, &u, sizeof(u), ERR));
		assert_int_equal(u.recorded_limit, (i % 2 ? 16 : 24) * MiB);
		assert_int_equal(u.limit, u.recorded_limit);
	}
	close_home(b);
	close_home(a);
}

/* ---- HOME/.lock ------------------------------------------------------------- */

static void test_planted_lock_file(void **state)
{
	struct ctx *c = *state;
	char lock[PATH_MAX], target[PATH_MAX];
	btrfslayer *h = NULL;
	assert_int_equal(mkdir(c->home, 0710), 0);
	snprintf(lock, sizeof(lock), "%s/.lock", c->home);
	snprintf(target, sizeof(target), "%s/elsewhere", harness_btrfs());

	assert_int_equal(symlink(target, lock), 0);
	expect_fail(btrfslayer_open(c->home, NULL, 0, NULL, 0, NULL, 0, &h, ERR), -ELOOP,
		    "is a symbolic link");
	assert_int_equal(access(target, F_OK), -1);	/* nothing made through it */
	assert_int_equal(unlink(lock), 0);

	assert_int_equal(mkfifo(lock, 0600), 0);	/* must not block */
	expect_fail(btrfslayer_open(c->home, NULL, 0, NULL, 0, NULL, 0, &h, ERR), -EINVAL,
		    "not a regular file");
	assert_int_equal(unlink(lock), 0);

	assert_int_equal(mkdir(lock, 0700), 0);
	expect_fail(btrfslayer_open(c->home, NULL, 0, NULL, 0, NULL, 0, &h, ERR), -EISDIR,
		    "open lock file");
	assert_null(h);
	/* a failed open takes back the directories it made */
	assert_listing(c, "", ".lock");
}

int main(void)
{
	harness_start();
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_sweep_cleans_after_dead_handle),
		T(test_sweep_finishes_limit_changes),
		T(test_sweep_finishes_removals),
		T(test_sweep_adopts_older_layout),
		T(test_sweep_spares_live_handle),
		T(test_two_processes_share_a_home),
		T(test_quota_file_is_the_winners),
		T(test_planted_lock_file),
	};
	return cmocka_run_group_tests_name("integration.recovery", tests, NULL, NULL);
}
