/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Modes of a handle and of quotas, on a real loopback btrfs:
 * - btrfs.read_only=true: a handle that changes nothing, opened on a home of
 *   a writable filesystem and on one mounted read-only, which lets the
 *   filesystem be remounted read-only while it is open;
 * - btrfs.quota_mode names the mode and quotas come on at the first limit
 *   (btrfs.min_space: at open), never switching a mode already on;
 * - limits that nested subvolumes cannot escape with simple quotas, and
 *   what full qgroups do instead.
 * The tests run in order on one filesystem: quotas are filesystem-wide.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "btrfslayer.h"
#include "check.h"
#include "harness.h"

#define HOME_MAX 512
#define MiB (1024ull * 1024)

/* Run `btrfs A B MOUNT`; its exit status. */
static int btrfs_on_fs(const char *a, const char *b)
{
	const char *argv[] = { "btrfs", a, b, harness_btrfs(), NULL };
	return harness_run(argv);
}

static int remount(const char *how)
{
	char opt[64];
	snprintf(opt, sizeof(opt), "remount,%s", how);
	const char *argv[] = { "mount", "-o", opt, harness_btrfs(), NULL };
	return harness_run(argv);
}

static bool quotas_on(void)
{
	char cmd[PATH_MAX];
	snprintf(cmd, sizeof(cmd), "btrfs qgroup show '%s' >/dev/null 2>&1", harness_btrfs());
	return system(cmd) == 0;
}

static void quotas_off(void)
{
	if (quotas_on() && btrfs_on_fs("quota", "disable") != 0)
		fail_msg("btrfs quota disable failed");
	assert_false(quotas_on());
}

static btrfslayer *open_home(const char *home, const char *const *opts, size_t n)
{
	btrfslayer *h = NULL;
	assert_ok(btrfslayer_open(home, opts, n, NULL, 0, NULL, 0, &h, ERR));
	return h;
}

/* The status list's value for `key`, copied into buf. */
static const char *status_of(btrfslayer *h, const char *key, char *buf, size_t len)
{
	btrfslayer_list *list = NULL;
	assert_ok(btrfslayer_status(h, &list, ERR));
	snprintf(buf, len, "(missing)");
	for (size_t i = 0; i < btrfslayer_list_count(list); i++)
		if (!strcmp(btrfslayer_list_key(list, i), key))
			snprintf(buf, len, "%s", btrfslayer_list_value(list, i));
	btrfslayer_list_free(list);
	return buf;
}

static char *layer_path(btrfslayer *h, const char *id)
{
	char *path = NULL;
	assert_ok(btrfslayer_get(h, id, NULL, &path, ERR));
	return path;
}


/* ---- read-only handles ---------------------------------------------------- */

/* Every call that changes the store is -EROFS, saying so, and changes
 * nothing: the home's tree is byte for byte what it was. */
static void check_read_only_handle(btrfslayer *ro, const char *home)
{
	char buf[64];
	char *before = harness_tree_snapshot(home);
	assert_non_null(before);

	btrfslayer_list *list = NULL;
	assert_ok(btrfslayer_layers(ro, &list, ERR));
	assert_int_equal(btrfslayer_list_count(list), 2);
	assert_string_equal(btrfslayer_list_key(list, 0), "base");
	btrfslayer_list_free(list);
	assert_int_equal(btrfslayer_exists(ro, "base", NULL), 1);
	assert_int_equal(btrfslayer_exists(ro, "nope", NULL), 0);
	free(layer_path(ro, "snap"));
	assert_string_equal(status_of(ro, "layers", buf, sizeof(buf)), "2");

	const char *size[] = { "size=64M" };
	expect_fail(btrfslayer_create(ro, "new", NULL, 0, NULL, NULL, 0, ERR), -EROFS,
		    "btrfs.read_only=true");
	expect_fail(btrfslayer_create(ro, "new", "base", 0, NULL, size, 1, ERR), -EROFS,
		    "read-only");
	expect_fail(btrfslayer_remove(ro, "base", ERR), -EROFS, "read-only");
	expect_fail(btrfslayer_set_quota(ro, "base", 64 * MiB, ERR), -EROFS, "read-only");
	expect_fail(btrfslayer_clear_quota(ro, "base", ERR), -EROFS, "read-only");
	expect_fail(btrfslayer_set_read_only(ro, "base", 1, ERR), -EROFS, "read-only");
	expect_fail(btrfslayer_set_read_only(ro, "snap", 0, ERR), -EROFS, "read-only");
	const btrfslayer_idmap map = { 0, 100000, 65536 };
	int mount_fd = 0;
	expect_fail(btrfslayer_mount_idmapped(ro, "base", &map, 1, &map, 1, 0, &mount_fd, ERR),
		    -EROFS, "read-only");
	assert_int_equal(mount_fd, -1);
	/* fds and info are reads */
	int fd = -1;
	assert_ok(btrfslayer_get_fd(ro, "base", 0, &fd, ERR));
	assert_true(fd >= 0);
	close(fd);
	btrfslayer_info info;
	assert_ok(btrfslayer_layer_info(ro, "snap", &info, sizeof(info), ERR));
	assert_string_equal(info.parent, "base");
	assert_true(info.flags & BTRFSLAYER_INFO_READ_ONLY);
	/* arguments are still checked first */
	expect_fail(btrfslayer_remove(ro, ".bad", ERR), -EINVAL, NULL);

	char *after = harness_tree_snapshot(home);
	assert_non_null(after);
	assert_string_equal(before, after);
	free(before);
	free(after);
}

static void make_store(char *home, size_t len)
{
	const char *opts[] = { "btrfs.mount_home=false" };
	harness_new_home(home, len);
	btrfslayer *h = open_home(home, opts, 1);
	assert_ok(btrfslayer_create(h, "base", NULL, 0, NULL, NULL, 0, ERR));
	assert_ok(btrfslayer_create(h, "snap", "base", BTRFSLAYER_CREATE_READ_ONLY, NULL, NULL, 0,
				    ERR));
	assert_ok(btrfslayer_close(h, ERR));
}

/* On a writable filesystem: reads work, writes are refused, and while the
 * handle is open the filesystem can be remounted read-only (a writable
 * handle holds HOME/.lock open for writing, which the kernel refuses to
 * remount under). */
static void test_read_only_on_writable_fs(void **state)
{
	(void)state;
	char home[HOME_MAX], lock[HOME_MAX + 8];
	make_store(home, sizeof(home));
	const char *opts[] = { "btrfs.read_only=true" };
	btrfslayer *ro = open_home(home, opts, 1);
	check_read_only_handle(ro, home);

	/* the counter-proof: a writable handle blocks the remount */
	const char *rw_opts[] = { "btrfs.mount_home=false" };
	btrfslayer *rw = open_home(home, rw_opts, 1);
	assert_int_not_equal(remount("ro"), 0);
	assert_ok(btrfslayer_close(rw, ERR));

	assert_int_equal(remount("ro"), 0);
	btrfslayer_list *list = NULL;
	assert_ok(btrfslayer_layers(ro, &list, ERR));
	assert_int_equal(btrfslayer_list_count(list), 2);
	btrfslayer_list_free(list);
	free(layer_path(ro, "base"));
	assert_int_equal(remount("rw"), 0);
	assert_ok(btrfslayer_close(ro, ERR));

	/* a read-only open of a home made by no one makes nothing */
	char missing[HOME_MAX];
	btrfslayer *h = NULL;
	harness_new_home(missing, sizeof(missing));
	expect_fail(btrfslayer_open(missing, opts, 1, NULL, 0, NULL, 0, &h, ERR), -ENOENT,
		    "missing");
	assert_null(h);
	struct stat st;
	assert_int_equal(lstat(missing, &st), -1);
	snprintf(lock, sizeof(lock), "%s/.lock", home);
	assert_int_equal(lstat(lock, &st), 0);	/* made by the writable opens */
}

/* A home on a read-only mount: a writable open fails on HOME/.lock, a
 * read-only one lists and reads. */
static void test_read_only_on_read_only_mount(void **state)
{
	(void)state;
	char home[HOME_MAX];
	make_store(home, sizeof(home));
	assert_int_equal(remount("ro"), 0);
	const char *rw_opts[] = { "btrfs.mount_home=false" };
	btrfslayer *h = NULL;
	expect_fail(btrfslayer_open(home, rw_opts, 1, NULL, 0, NULL, 0, &h, ERR), -EROFS,
		    NULL);
	const char *opts[] = { "btrfs.read_only=yes", "btrfs.quota_mode=simple" };
	h = NULL;
	int r = btrfslayer_open(home, opts, 2, NULL, 0, NULL, 0, &h, NULL);
	if (r == 0)
		check_read_only_handle(h, home);
	btrfslayer_close(h, NULL);
	assert_int_equal(remount("rw"), 0);
	assert_int_equal(r, 0);
}

/* ---- quota modes ------------------------------------------------------------ */

/* btrfs.quota_mode turns nothing on by itself: the first limit does, in
 * that mode; so does btrfs.min_space, at open. */
static void test_quota_mode_on_first_limit(void **state)
{
	(void)state;
	char home[HOME_MAX], buf[64];
	quotas_off();
	harness_new_home(home, sizeof(home));
	const char *opts[] = { "btrfs.mount_home=false", "btrfs.quota_mode=qgroup" };
	btrfslayer *h = open_home(home, opts, 2);
	assert_false(quotas_on());
	assert_ok(btrfslayer_create(h, "plain", NULL, 0, NULL, NULL, 0, ERR));
	free(layer_path(h, "plain"));
	assert_false(quotas_on());
	const char *size[] = { "size=32M" };
	assert_ok(btrfslayer_create(h, "sized", NULL, 0, NULL, size, 1, ERR));
	assert_true(quotas_on());
	assert_string_equal(status_of(h, "quota_mode", buf, sizeof(buf)), "qgroup");
	assert_ok(btrfslayer_close(h, ERR));

	/* set_quota is a first limit too */
	quotas_off();
	h = open_home(home, opts, 2);
	assert_false(quotas_on());
	assert_ok(btrfslayer_set_quota(h, "plain", 32 * MiB, ERR));
	assert_string_equal(status_of(h, "quota_mode", buf, sizeof(buf)), "qgroup");
	assert_ok(btrfslayer_close(h, ERR));

	/* btrfs.min_space: at open, as Docker does */
	quotas_off();
	const char *min[] = { "btrfs.mount_home=false", "btrfs.quota_mode=qgroup",
			      "btrfs.min_space=1M" };
	h = open_home(home, min, 3);
	assert_true(quotas_on());
	assert_ok(btrfslayer_close(h, ERR));
	quotas_off();
}

/* Quotas on in the other mode: -EBUSY at open when they are on already, and
 * at the first limit when they came on in between. */
static void test_quota_mode_never_switches(void **state)
{
	(void)state;
	char home[HOME_MAX];
	quotas_off();
	harness_new_home(home, sizeof(home));
	const char *qgroup[] = { "btrfs.mount_home=false", "btrfs.quota_mode=qgroup" };
	const char *simple[] = { "btrfs.mount_home=false", "btrfs.quota_mode=simple" };
	const char *size[] = { "size=32M" };
	btrfslayer *q = open_home(home, qgroup, 2);
	btrfslayer *s = open_home(home, simple, 2);
	assert_false(quotas_on());
	assert_ok(btrfslayer_create(s, "a", NULL, 0, NULL, size, 1, ERR));
	expect_fail(btrfslayer_create(q, "b", NULL, 0, NULL, size, 1, ERR), -EBUSY,
		    "already on in simple mode");
	assert_int_equal(btrfslayer_exists(q, "b", NULL), 0);
	expect_fail(btrfslayer_set_quota(q, "a", 64 * MiB, ERR), -EBUSY, "already on");
	assert_ok(btrfslayer_close(q, ERR));
	btrfslayer *h = NULL;
	expect_fail(btrfslayer_open(home, qgroup, 2, NULL, 0, NULL, 0, &h, ERR), -EBUSY,
		    "already on");
	assert_null(h);
	assert_ok(btrfslayer_remove(s, "a", ERR));
	assert_ok(btrfslayer_close(s, ERR));
}

/* ---- nested subvolumes and limits --------------------------------------- */

/* Whether `btrfs qgroup show` lists qgroup <level>/<id>. */
static bool qgroup_listed(unsigned level, uint64_t id)
{
	char cmd[PATH_MAX], want[64], line[512];
	bool found = false;
	snprintf(cmd, sizeof(cmd), "btrfs qgroup show --raw '%s' 2>&1", harness_btrfs());
	snprintf(want, sizeof(want), "%u/%llu ", level, (unsigned long long)id);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	while (fgets(line, sizeof(line), p))
		found |= !strncmp(line, want, strlen(want));
	pclose(p);
	return found;
}

static uint64_t subvolume_of(btrfslayer *h, const char *id)
{
	btrfslayer_usage u;
	assert_ok(btrfslayer_get_usage(h, id, 0, &u, sizeof(u), ERR));
	return u.subvolume_id;
}

/* A subvolume nested in a layer, as a container makes one (no privilege
 * needed). */
static void nest(const char *layer, const char *rel)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", layer, rel);
	const char *argv[] = { "btrfs", "-q", "subvolume", "create", path, NULL };
	if (harness_run(argv) != 0)
		fail_msg("btrfs subvolume create %s failed", path);
}

/* With simple quotas a container cannot write past its layer's size= by
 * nesting a subvolume, at any depth, made before or after the limit. */
static void test_nested_cannot_escape_simple(void **state)
{
	(void)state;
	char home[HOME_MAX], dir[PATH_MAX];
	int error;
	quotas_off();
	harness_new_home(home, sizeof(home));
	const char *opts[] = { "btrfs.mount_home=false", "btrfs.quota_mode=simple" };
	btrfslayer *h = open_home(home, opts, 2);
	const char *size[] = { "size=32M" };
	assert_ok(btrfslayer_create(h, "box", NULL, 0, NULL, size, 1, ERR));
	char *box = layer_path(h, "box");
	uint64_t box_id = subvolume_of(h, "box");
	assert_true(qgroup_listed(1, box_id));
	nest(box, "n");
	nest(box, "n/deeper");
	snprintf(dir, sizeof(dir), "%s/n/deeper", box);
	uint64_t written = harness_write_data(dir, "big", 100 * MiB, &error);
	assert_int_equal(error, EDQUOT);
	assert_true(written <= 33 * MiB);

	/* a limit set on a layer that nests a subvolume already */
	assert_ok(btrfslayer_create(h, "late", NULL, 0, NULL, NULL, 0, ERR));
	char *late = layer_path(h, "late");
	nest(late, "early");
	assert_ok(btrfslayer_set_quota(h, "late", 16 * MiB, ERR));
	snprintf(dir, sizeof(dir), "%s/early", late);
	written = harness_write_data(dir, "big", 100 * MiB, &error);
	assert_int_equal(error, EDQUOT);
	assert_true(written <= 17 * MiB);

	/* a cleared limit lets it write */
	assert_ok(btrfslayer_clear_quota(h, "late", ERR));
	written = harness_write_data(dir, "more", 24 * MiB, &error);
	assert_int_equal(error, 0);
	assert_int_equal(written, 24 * MiB);

	/* full layers with nested subvolumes are removed whole */
	assert_ok(btrfslayer_remove(h, "box", ERR));
	assert_ok(btrfslayer_remove(h, "late", ERR));
	assert_int_equal(btrfslayer_exists(h, "box", NULL), 0);
	struct stat st;
	assert_int_equal(lstat(box, &st), -1);
	free(box);
	free(late);
	assert_ok(btrfslayer_close(h, ERR));

	/* the level-1 qgroup goes with the layer, once the kernel's cleaner
	 * has dropped what it held: the close after that destroys it */
	const char *sync[] = { "btrfs", "subvolume", "sync", harness_btrfs(), NULL };
	assert_int_equal(harness_run(sync), 0);
	h = open_home(home, opts, 2);
	assert_ok(btrfslayer_close(h, ERR));
	assert_false(qgroup_listed(0, box_id));
	assert_false(qgroup_listed(1, box_id));
}

/* Full qgroups: the limit holds for what the layer's own subvolume holds,
 * and not for a subvolume nested in it, which is a qgroup of its own that
 * joins no group of the layer's (there is no auto-inherit in this mode).
 * What the header and README say. */
static void test_nested_full_qgroups(void **state)
{
	(void)state;
	char home[HOME_MAX], dir[PATH_MAX];
	int error;
	quotas_off();
	harness_new_home(home, sizeof(home));
	const char *opts[] = { "btrfs.mount_home=false", "btrfs.quota_mode=qgroup" };
	btrfslayer *h = open_home(home, opts, 2);
	const char *size[] = { "size=32M" };
	assert_ok(btrfslayer_create(h, "box", NULL, 0, NULL, size, 1, ERR));
	char *box = layer_path(h, "box");
	uint64_t written = harness_write_data(box, "big", 100 * MiB, &error);
	assert_int_equal(error, EDQUOT);	/* holds: the layer itself */
	assert_true(written <= 33 * MiB);
	snprintf(dir, sizeof(dir), "%s/big", box);
	assert_int_equal(unlink(dir), 0);
	nest(box, "n");
	snprintf(dir, sizeof(dir), "%s/n", box);
	written = harness_write_data(dir, "big", 64 * MiB, &error);
	assert_int_equal(error, 0);	/* does not hold: a nested subvolume */
	assert_int_equal(written, 64 * MiB);
	assert_ok(btrfslayer_remove(h, "box", ERR));
	free(box);
	assert_ok(btrfslayer_close(h, ERR));
	quotas_off();
}

int main(void)
{
	harness_start();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_only_on_writable_fs),
		cmocka_unit_test(test_read_only_on_read_only_mount),
		cmocka_unit_test(test_quota_mode_on_first_limit),
		cmocka_unit_test(test_quota_mode_never_switches),
		cmocka_unit_test(test_nested_cannot_escape_simple),
		cmocka_unit_test(test_nested_full_qgroups),
	};
	return cmocka_run_group_tests_name("modes", tests, NULL, NULL);
}
