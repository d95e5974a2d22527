/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The public API against a real btrfs on a loopback device. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>
#include <btrfsutil.h>

#include "btrfslayer.h"
#include "check.h"
#include "fsprobe.h"
#include "harness.h"

/* ---- helpers ---------------------------------------------------------------- */

/* Paths in tests are short: the mount's path is < 64 bytes. */

static void create(struct harness_home *c, const char *id, const char *parent, uint32_t flags)
{
	assert_ok(btrfslayer_create(c->h, id, parent, flags, NULL, NULL, 0, ERR));
}

static char *layer(struct harness_home *c, const char *id)
{
	char *path = NULL;
	assert_ok(btrfslayer_get(c->h, id, NULL, &path, ERR));
	return path;
}

/* Write `text` to dir/name: 0 or the errno of the first failing step. */
static int write_file(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX + NAME_MAX + 2];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return errno;
	int r = write(fd, text, strlen(text)) == (ssize_t)strlen(text) ? 0 : errno;
	close(fd);
	return r;
}

static void assert_file(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX + NAME_MAX + 2], buf[256] = "";
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "r");
	if (!f)
		fail_msg("%s: %s", path, strerror(errno));
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	assert_string_equal(buf, text);
}

static bool path_exists(const char *dir, const char *name)
{
	char path[PATH_MAX + NAME_MAX + 2];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return lstat(path, &st) == 0;
}

/* What a call that fails on its arguments must leave as it was. */
static char *fs_state(struct harness_home *c)
{
	char *state = probe_fs_state(harness_btrfs(), c->home);
	assert_non_null(state);
	return state;
}

/* Subvolumes of the filesystem, other than the top one and the library's
 * empty template. */
static int count_subvolumes(void)
{
	struct btrfs_util_subvolume_iterator *it;
	char *sub;
	uint64_t id;
	int n = 0;
	assert_int_equal(btrfs_util_create_subvolume_iterator(harness_btrfs(), 5, 0, &it),
			 BTRFS_UTIL_OK);
	while (btrfs_util_subvolume_iterator_next(it, &sub, &id) == BTRFS_UTIL_OK) {
		n += !harness_is_template(sub);	/* it stays: the library's own */
		free(sub);
	}
	btrfs_util_destroy_subvolume_iterator(it);
	return n;
}

static void make_subvolume(const char *dir, const char *name, bool read_only)
{
	char path[PATH_MAX + NAME_MAX + 2];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(btrfs_util_create_subvolume(path, 0, NULL, NULL), BTRFS_UTIL_OK);
	if (read_only)
		assert_int_equal(btrfs_util_set_subvolume_read_only(path, true), BTRFS_UTIL_OK);
}

/* ---- open / close ------------------------------------------------------------- */

static void test_open_creates_layout(void **state)
{
	struct harness_home *c = *state;
	char path[PATH_MAX];
	struct stat st;
	assert_int_equal(stat(c->home, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0710);
	snprintf(path, sizeof(path), "%s/subvolumes", c->home);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0710);
	/* and it opens again, on what it made */
	btrfslayer *again;
	assert_ok(btrfslayer_open(c->home, NULL, 0, NULL, 0, NULL, 0, &again, ERR));
	assert_ok(btrfslayer_close(again, ERR));
}

static void test_open_not_btrfs(void **state)
{
	(void)state;
	char home[HARNESS_HOME_MAX];
	btrfslayer *h = (btrfslayer *)1;
	btrfslayer_error *err;
	/* missing home: its parent decides; nothing is created */
	snprintf(home, sizeof(home), "%s/home", harness_tmpfs());
	int r = btrfslayer_open(home, NULL, 0, NULL, 0, NULL, 0, &h, &err);
	check_fail(r, err, -BTRFSLAYER_ENOTBTRFS, home);
	assert_null(h);
	assert_false(path_exists(harness_tmpfs(), "home"));
	/* existing home */
	r = btrfslayer_open(harness_tmpfs(), NULL, 0, NULL, 0, NULL, 0, &h, &err);
	check_fail(r, err, -BTRFSLAYER_ENOTBTRFS, harness_tmpfs());
	assert_false(path_exists(harness_tmpfs(), "subvolumes"));
	assert_string_equal(btrfslayer_strerror(-BTRFSLAYER_ENOTBTRFS),
			    "Not on a btrfs filesystem (prerequisites not met)");
}

static void test_open_refuses_symlink_home(void **state)
{
	struct harness_home *c = *state;
	char link[PATH_MAX];
	btrfslayer *h;
	btrfslayer_error *err;
	snprintf(link, sizeof(link), "%s-link", c->home);
	assert_int_equal(symlink(c->home, link), 0);
	int r = btrfslayer_open(link, NULL, 0, NULL, 0, NULL, 0, &h, &err);
	check_fail(r, err, -ELOOP, link);
	unlink(link);
}

static void test_open_refuses_planted_subvolumes(void **state)
{
	(void)state;
	char home[HARNESS_HOME_MAX], path[PATH_MAX];
	btrfslayer *h;
	btrfslayer_error *err;
	harness_new_home(home, sizeof(home));
	assert_int_equal(mkdir(home, 0700), 0);
	snprintf(path, sizeof(path), "%s/subvolumes", home);
	assert_int_equal(symlink(harness_tmpfs(), path), 0);
	int r = btrfslayer_open(home, NULL, 0, NULL, 0, NULL, 0, &h, &err);
	check_fail(r, err, -ENOTDIR, "symbolic link");
}

static void test_open_missing_parent(void **state)
{
	(void)state;
	char home[HARNESS_HOME_MAX];
	btrfslayer *h;
	snprintf(home, sizeof(home), "%s/no/such/home", harness_btrfs());
	expect_fail(btrfslayer_open(home, NULL, 0, NULL, 0, NULL, 0, &h, ERR),
		    -ENOENT, home);
}

static void test_open_options(void **state)
{
	(void)state;
	static const struct {
		const char *option;
		int code;
		const char *needle;
	} bad[] = {
		{ "btrfs.unknown=1", -EINVAL, "unknown option \"btrfs.unknown\"" },
		{ "btrfs.min_space=abc", -EINVAL, "\"abc\"" },
		{ "btrfs.min_space=-1G", -EINVAL, "btrfs.min_space" },
		{ "btrfs.min_space=", -EINVAL, "btrfs.min_space" },
		{ "btrfs.min_space=99999999999P", -ERANGE, "btrfs.min_space" },
		{ "btrfs.quota_mode=full", -EINVAL, "btrfs.quota_mode" },
		{ "btrfs.quota_mode=", -EINVAL, "btrfs.quota_mode" },
		{ "novalue", -EINVAL, "novalue" },
	};
	char home[HARNESS_HOME_MAX];
	btrfslayer *h;
	btrfslayer_error *err;
	harness_new_home(home, sizeof(home));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *opts[] = { bad[i].option };
		int r = btrfslayer_open(home, opts, 1, NULL, 0, NULL, 0, &h, &err);
		check_fail(r, err, bad[i].code, bad[i].needle);
		assert_false(path_exists(home, "."));	/* nothing made */
	}
	const char *dup[] = { "btrfs.min_space=1G", "BTRFS.MIN_SPACE=2G" };
	expect_fail(btrfslayer_open(home, dup, 2, NULL, 0, NULL, 0, &h, ERR),
		    -EINVAL, "btrfs.min_space");

	/* keys are case-insensitive, values trimmed, sizes binary */
	const char *good[] = { " BTRFS.Min_Space = 1.5G " };
	btrfslayer_list *status;
	assert_ok(btrfslayer_open(home, good, 1, NULL, 0, NULL, 0, &h, ERR));
	assert_ok(btrfslayer_status(h, &status, ERR));
	bool seen = false;
	for (size_t i = 0; i < btrfslayer_list_count(status); i++)
		if (!strcmp(btrfslayer_list_key(status, i), "min_space")) {
			assert_string_equal(btrfslayer_list_value(status, i), "1610612736");
			seen = true;
		}
	assert_true(seen);
	btrfslayer_list_free(status);
	btrfslayer_close(h, NULL);
}

static void test_open_idmaps(void **state)
{
	(void)state;
	char home[HARNESS_HOME_MAX];
	btrfslayer *h;
	const btrfslayer_idmap uids[] = { { 0, 100000, 65536 } };
	const btrfslayer_idmap gids[] = { { 0, 200000, 65536 } };
	const btrfslayer_idmap no_root[] = { { 1, 100000, 65536 } };
	const btrfslayer_idmap overlapping[] = { { 0, 100000, 10 }, { 5, 300000, 10 } };
	const btrfslayer_idmap overflow[] = { { 0, 0xfffffff0u, 0x20 } };

	harness_new_home(home, sizeof(home));
	expect_fail(btrfslayer_open(home, NULL, 0, no_root, 1, gids, 1, &h, ERR),
		    -EINVAL, "container id 0 is not mapped");
	expect_fail(btrfslayer_open(home, NULL, 0, uids, 1, overlapping, 2, &h, ERR),
		    -EINVAL, "overlap");
	expect_fail(btrfslayer_open(home, NULL, 0, overflow, 1, gids, 1, &h, ERR),
		    -EINVAL, "2^32");
	assert_false(path_exists(home, "."));

	/* a remapped root owns new empty layers */
	assert_ok(btrfslayer_open(home, NULL, 0, uids, 1, gids, 1, &h, ERR));
	assert_ok(btrfslayer_create(h, "layer", NULL, 0, NULL, NULL, 0, ERR));
	char *path;
	struct stat st;
	assert_ok(btrfslayer_get(h, "layer", NULL, &path, ERR));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, 100000);
	assert_int_equal(st.st_gid, 200000);
	assert_int_equal(st.st_mode & 07777, 0755);
	assert_int_equal(stat(home, &st), 0);
	assert_int_equal(st.st_gid, 200000);
	free(path);
	btrfslayer_close(h, NULL);
}

static void test_open_bad_arguments(void **state)
{
	(void)state;
	btrfslayer *h;
	expect_fail(btrfslayer_open(NULL, NULL, 0, NULL, 0, NULL, 0, &h, ERR), -EINVAL, "home");
	expect_fail(btrfslayer_open("", NULL, 0, NULL, 0, NULL, 0, &h, ERR), -EINVAL, "home");
	expect_fail(btrfslayer_open(harness_btrfs(), NULL, 0, NULL, 0, NULL, 0, NULL, ERR),
		    -EINVAL, "handle");
	/* NULL err is allowed everywhere */
	assert_int_equal(btrfslayer_open("", NULL, 0, NULL, 0, NULL, 0, &h, NULL), -EINVAL);
	assert_int_equal(btrfslayer_close(NULL, NULL), 0);
	btrfslayer_error_free(NULL);
}

/* ---- create / get / exists ----------------------------------------------------- */

static void test_create_empty(void **state)
{
	struct harness_home *c = *state;
	assert_int_equal(btrfslayer_exists(c->h, "base", NULL), 0);
	create(c, "base", NULL, 0);
	assert_int_equal(btrfslayer_exists(c->h, "base", NULL), 1);
	char *path = layer(c, "base"), expected[PATH_MAX + 32], real[PATH_MAX];
	assert_non_null(realpath(c->home, real));
	snprintf(expected, sizeof(expected), "%s/subvolumes/base", real);
	assert_string_equal(path, expected);
	assert_int_equal(btrfs_util_is_subvolume(path), BTRFS_UTIL_OK);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	assert_int_equal(write_file(path, "f", "x"), 0);
	assert_ok(btrfslayer_put(c->h, "base", ERR));
	free(path);
	/* nothing of the library's own is left in view */
	char *s = fs_state(c);
	assert_null(strstr(s, "/.tmp-"));
	free(s);
}

static void test_create_existing(void **state)
{
	struct harness_home *c = *state;
	create(c, "base", NULL, 0);
	char *path = layer(c, "base");
	assert_int_equal(write_file(path, "keep", "me"), 0);
	char *before = fs_state(c);
	expect_fail(btrfslayer_create(c->h, "base", NULL, 0, NULL, NULL, 0, ERR),
		    -EEXIST, path);
	create(c, "other", NULL, 0);
	expect_fail(btrfslayer_create(c->h, "base", "other", 0, NULL, NULL, 0, ERR),
		    -EEXIST, path);
	assert_ok(btrfslayer_remove(c->h, "other", ERR));
	char *after = fs_state(c);
	assert_string_equal(before, after);
	assert_file(path, "keep", "me");
	free(before);
	free(after);
	free(path);
}

static void test_create_missing_parent(void **state)
{
	struct harness_home *c = *state;
	char *before = fs_state(c);
	expect_fail(btrfslayer_create(c->h, "child", "nope", 0, NULL, NULL, 0, ERR),
		    -ENOENT, "/subvolumes/nope");
	char *after = fs_state(c);
	assert_string_equal(before, after);
	assert_int_equal(btrfslayer_exists(c->h, "child", NULL), 0);
	free(before);
	free(after);
}

static void test_snapshot_isolation(void **state)
{
	struct harness_home *c = *state;
	create(c, "base", NULL, 0);
	char *base = layer(c, "base");
	assert_int_equal(write_file(base, "shared", "v1"), 0);
	create(c, "child", "base", 0);
	char *child = layer(c, "child");
	assert_file(child, "shared", "v1");
	/* child -> parent */
	assert_int_equal(write_file(child, "shared", "v2"), 0);
	assert_int_equal(write_file(child, "only-child", "c"), 0);
	assert_file(base, "shared", "v1");
	assert_false(path_exists(base, "only-child"));
	/* parent -> child */
	assert_int_equal(write_file(base, "only-base", "b"), 0);
	assert_false(path_exists(child, "only-base"));
	/* a parent can go while its child lives on */
	assert_ok(btrfslayer_remove(c->h, "base", ERR));
	assert_file(child, "shared", "v2");
	free(base);
	free(child);
}

static void test_read_only(void **state)
{
	struct harness_home *c = *state;
	create(c, "base", NULL, 0);
	char *base = layer(c, "base");
	assert_int_equal(write_file(base, "f", "data"), 0);
	create(c, "image", "base", BTRFSLAYER_CREATE_READ_ONLY);
	create(c, "empty-ro", NULL, BTRFSLAYER_CREATE_READ_ONLY);
	const char *ids[] = { "image", "empty-ro" };
	for (size_t i = 0; i < 2; i++) {
		char *path = layer(c, ids[i]);
		bool ro = false;
		assert_int_equal(btrfs_util_get_subvolume_read_only(path, &ro), BTRFS_UTIL_OK);
		assert_true(ro);
		assert_int_equal(write_file(path, "new", "x"), EROFS);
		if (i == 0) {
			assert_int_equal(write_file(path, "f", "changed"), EROFS);
			assert_file(path, "f", "data");
			/* a child of a read-only layer is writable */
			create(c, "container", "image", 0);
			char *cont = layer(c, "container");
			assert_int_equal(write_file(cont, "f", "mine"), 0);
			free(cont);
		}
		assert_ok(btrfslayer_remove(c->h, ids[i], ERR));
		assert_int_equal(btrfslayer_exists(c->h, ids[i], NULL), 0);
		free(path);
	}
	free(base);
}

static void test_create_arguments(void **state)
{
	struct harness_home *c = *state;
	create(c, "base", NULL, 0);
	char *before = fs_state(c);
	const char *size[] = { "size=10 apples" };
	const char *unknown[] = { "color=blue" };
	const char *malformed[] = { "size" };
	/* size limits have their own tests (test_quota.c); a bad one is
	 * refused before quotas are turned on */
	expect_fail(btrfslayer_create(c->h, "l", NULL, 0, NULL, size, 1, ERR),
		    -EINVAL, "\"10 apples\"");
	expect_fail(btrfslayer_create(c->h, "l", "base", 0, NULL, unknown, 1, ERR),
		    -EINVAL, "unknown storage option \"color\"");
	expect_fail(btrfslayer_create(c->h, "l", NULL, 0, NULL, malformed, 1, ERR),
		    -EINVAL, "\"size\"");
	expect_fail(btrfslayer_create(c->h, "l", NULL, 0x2, NULL, NULL, 0, ERR),
		    -EINVAL, "unknown flags");
	expect_fail(btrfslayer_create(c->h, "l", NULL, 0, "not-a-label", NULL, 0, ERR),
		    -EINVAL, "mount label");
	expect_fail(btrfslayer_create(NULL, "l", NULL, 0, NULL, NULL, 0, ERR),
		    -EINVAL, "handle");
	char *after = fs_state(c);
	assert_string_equal(before, after);
	free(before);
	free(after);
}

static void test_label(void **state)
{
	struct harness_home *c = *state;
	const char *label = "system_u:object_r:container_file_t:s0:c1,c2";
	char value[256];
	assert_ok(btrfslayer_create(c->h, "labelled", NULL, 0, label, NULL, 0, ERR));
	char *path = layer(c, "labelled");
	ssize_t n = lgetxattr(path, "security.selinux", value, sizeof(value) - 1);
	assert_true(n > 0);
	value[n] = '\0';
	assert_string_equal(value, label);
	/* read-only and labelled: the label lands before the seal */
	assert_ok(btrfslayer_create(c->h, "ro-labelled", "labelled",
				    BTRFSLAYER_CREATE_READ_ONLY, label, NULL, 0, ERR));
	char *ro = layer(c, "ro-labelled");
	n = lgetxattr(ro, "security.selinux", value, sizeof(value) - 1);
	assert_true(n > 0);
	bool sealed = false;
	assert_int_equal(btrfs_util_get_subvolume_read_only(ro, &sealed), BTRFS_UTIL_OK);
	assert_true(sealed);
	free(path);
	free(ro);
}

static void test_get_missing(void **state)
{
	struct harness_home *c = *state;
	char *path = (char *)1, planted[PATH_MAX];
	expect_fail(btrfslayer_get(c->h, "nope", NULL, &path, ERR), -ENOENT,
		    "/subvolumes/nope");
	/* a symlink or a plain directory planted under subvolumes/ is no layer */
	snprintf(planted, sizeof(planted), "%s/subvolumes/evil", c->home);
	assert_int_equal(symlink("/", planted), 0);
	expect_fail(btrfslayer_get(c->h, "evil", NULL, &path, ERR), -ENOENT, "not a layer");
	assert_int_equal(btrfslayer_exists(c->h, "evil", NULL), 0);
	expect_fail(btrfslayer_remove(c->h, "evil", ERR), -ENOENT, "not a layer");
	snprintf(planted, sizeof(planted), "%s/subvolumes/plain", c->home);
	assert_int_equal(mkdir(planted, 0700), 0);
	expect_fail(btrfslayer_get(c->h, "plain", NULL, &path, ERR), -ENOENT,
		    "not a btrfs subvolume");
	assert_int_equal(btrfslayer_exists(c->h, "plain", NULL), 0);
	expect_fail(btrfslayer_create(c->h, "child", "evil", 0, NULL, NULL, 0, ERR),
		    -ENOENT, "evil");
	assert_true(path_exists("/", "."));
}

/* ---- remove ------------------------------------------------------------------ */

static void test_remove_nested(void **state)
{
	struct harness_home *c = *state;
	int before = count_subvolumes();
	create(c, "layer", NULL, 0);
	char *path = layer(c, "layer"), sub[PATH_MAX];
	/* two levels, read-only at each: layer/a (rw) > a/b (ro),
	 * layer/c (ro) > c/d (rw) whose parent is read-only */
	make_subvolume(path, "a", false);
	snprintf(sub, sizeof(sub), "%s/a", path);
	make_subvolume(sub, "b", true);
	make_subvolume(path, "c", false);
	snprintf(sub, sizeof(sub), "%s/c", path);
	make_subvolume(sub, "d", false);
	assert_int_equal(btrfs_util_set_subvolume_read_only(sub, true), BTRFS_UTIL_OK);
	assert_int_equal(write_file(path, "file", "x"), 0);
	assert_int_equal(count_subvolumes(), before + 5);

	assert_ok(btrfslayer_remove(c->h, "layer", ERR));
	assert_int_equal(btrfslayer_exists(c->h, "layer", NULL), 0);
	assert_int_equal(count_subvolumes(), before);
	char *s = fs_state(c);
	assert_null(strstr(s, "/.tomb-"));
	free(s);
	free(path);
}

static void test_remove_read_only_with_nested(void **state)
{
	struct harness_home *c = *state;
	int before = count_subvolumes();
	create(c, "layer", NULL, 0);
	char *path = layer(c, "layer");
	make_subvolume(path, "nested", true);
	assert_int_equal(btrfs_util_set_subvolume_read_only(path, true), BTRFS_UTIL_OK);
	assert_ok(btrfslayer_remove(c->h, "layer", ERR));
	assert_int_equal(count_subvolumes(), before);
	free(path);
}

static void test_remove_missing(void **state)
{
	struct harness_home *c = *state;
	expect_fail(btrfslayer_remove(c->h, "nope", ERR), -ENOENT, "/subvolumes/nope");
	create(c, "once", NULL, 0);
	assert_ok(btrfslayer_remove(c->h, "once", ERR));
	expect_fail(btrfslayer_remove(c->h, "once", ERR), -ENOENT, "/subvolumes/once");
}

/* ---- ids ---------------------------------------------------------------------- */

static void test_bad_ids(void **state)
{
	struct harness_home *c = *state;
	char long_id[300];
	memset(long_id, 'a', 256);
	long_id[256] = '\0';
	const char *bad[] = { "", ".", "..", ".hidden", ".tmp-0", "a/b", "../x", "/abs", "a b",
			      "a\nb", "tab\t", "caf\xc3\xa9", "a*", "a\\b", "a:b", long_id };
	create(c, "base", NULL, 0);
	char *before = fs_state(c);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *id = bad[i];
		char *path = NULL;
		expect_fail(btrfslayer_create(c->h, id, NULL, 0, NULL, NULL, 0, ERR),
			    -EINVAL, "invalid layer id");
		expect_fail(btrfslayer_create(c->h, id, "base", 0, NULL, NULL, 0, ERR),
			    -EINVAL, "invalid layer id");
		expect_fail(btrfslayer_create(c->h, "fine", id, 0, NULL, NULL, 0, ERR),
			    -EINVAL, "invalid parent id");
		expect_fail(btrfslayer_remove(c->h, id, ERR), -EINVAL, "invalid layer id");
		expect_fail(btrfslayer_get(c->h, id, NULL, &path, ERR), -EINVAL,
			    "invalid layer id");
		expect_fail(btrfslayer_exists(c->h, id, ERR), -EINVAL, "invalid layer id");
		expect_fail(btrfslayer_put(c->h, id, ERR), -EINVAL, "invalid layer id");
		assert_null(path);
	}
	expect_fail(btrfslayer_exists(c->h, NULL, ERR), -EINVAL, "layer id");
	char *after = fs_state(c);
	assert_string_equal(before, after);
	free(before);
	free(after);

	/* the longest id and every allowed character work */
	long_id[255] = '\0';
	create(c, long_id, NULL, 0);
	create(c, "Az09_.-x", long_id, 0);
	assert_int_equal(btrfslayer_exists(c->h, "Az09_.-x", NULL), 1);
	assert_ok(btrfslayer_remove(c->h, long_id, ERR));
}

/* ---- listing and status -------------------------------------------------------- */

static void test_layers_and_status(void **state)
{
	struct harness_home *c = *state;
	char junk[PATH_MAX];
	create(c, "b", NULL, 0);
	create(c, "a", "b", 0);
	create(c, "c-init", "a", BTRFSLAYER_CREATE_READ_ONLY);
	snprintf(junk, sizeof(junk), "%s/subvolumes/junk", c->home);
	assert_int_equal(mkdir(junk, 0700), 0);

	btrfslayer_list *list;
	assert_ok(btrfslayer_layers(c->h, &list, ERR));
	assert_int_equal(btrfslayer_list_count(list), 3);
	const char *ids[] = { "a", "b", "c-init" };
	for (size_t i = 0; i < 3; i++) {
		char *path = layer(c, ids[i]);
		assert_string_equal(btrfslayer_list_key(list, i), ids[i]);
		assert_string_equal(btrfslayer_list_value(list, i), path);
		free(path);
	}
	assert_null(btrfslayer_list_key(list, 3));
	btrfslayer_list_free(list);

	assert_ok(btrfslayer_status(c->h, &list, ERR));
	const char *want[] = { "library_version", "home", "filesystem_uuid", "layers",
			       "quota_mode", "kernel_features" };
	for (size_t w = 0; w < sizeof(want) / sizeof(want[0]); w++) {
		const char *value = NULL;
		for (size_t i = 0; i < btrfslayer_list_count(list); i++)
			if (!strcmp(btrfslayer_list_key(list, i), want[w]))
				value = btrfslayer_list_value(list, i);
		if (!value)
			fail_msg("status lacks %s", want[w]);
		if (!strcmp(want[w], "library_version"))
			assert_string_equal(value, btrfslayer_version());
		if (!strcmp(want[w], "layers"))
			assert_string_equal(value, "3");
		if (!strcmp(want[w], "quota_mode"))	/* min_space turned them on */
			assert_true(!strcmp(value, "simple") || !strcmp(value, "qgroup"));
		if (!strcmp(want[w], "filesystem_uuid"))
			assert_int_equal(strlen(value), 36);
		if (!strcmp(want[w], "kernel_features"))
			assert_non_null(strstr(value, "default_subvol"));
	}
	btrfslayer_list_free(list);
	assert_int_equal(btrfslayer_list_count(NULL), 0);
	btrfslayer_list_free(NULL);
}

int main(void)
{
	harness_start();
#define T(f) cmocka_unit_test_setup_teardown(f, harness_home_setup, harness_home_teardown)
	const struct CMUnitTest tests[] = {
		T(test_open_creates_layout),
		cmocka_unit_test(test_open_not_btrfs),
		T(test_open_refuses_symlink_home),
		cmocka_unit_test(test_open_refuses_planted_subvolumes),
		cmocka_unit_test(test_open_missing_parent),
		cmocka_unit_test(test_open_options),
		cmocka_unit_test(test_open_idmaps),
		cmocka_unit_test(test_open_bad_arguments),
		T(test_create_empty),
		T(test_create_existing),
		T(test_create_missing_parent),
		T(test_snapshot_isolation),
		T(test_read_only),
		T(test_create_arguments),
		T(test_label),
		T(test_get_missing),
		T(test_remove_nested),
		T(test_remove_read_only_with_nested),
		T(test_remove_missing),
		T(test_bad_ids),
		T(test_layers_and_status),
	};
	return cmocka_run_group_tests_name("integration.layers", tests, NULL, NULL);
}
