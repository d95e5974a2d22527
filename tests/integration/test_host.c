/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Host integration on a real btrfs: home as a mount point, SELinux labels,
 * user-namespace ownership, checked the way a user would check them. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>
#include <libmount.h>
#include <selinux/selinux.h>

#include "btrfslayer.h"
#include "check.h"
#include "harness.h"

#define HOME_MAX 128
#define N(a) (sizeof(a) / sizeof((a)[0]))

static btrfslayer *open_home(const char *home, const char *const *opts, size_t n)
{
	btrfslayer *h = NULL;
	assert_ok(btrfslayer_open(home, opts, n, NULL, 0, NULL, 0, &h, ERR));
	return h;
}

/* A fresh home path, canonical as it appears in the mount table. */
static void new_home(char *buf, size_t len)
{
	char real[PATH_MAX], fresh[HOME_MAX];
	assert_non_null(realpath(harness_btrfs(), real));
	harness_new_home(fresh, sizeof(fresh));
	assert_true(snprintf(buf, len, "%s%s", real, strrchr(fresh, '/')) < (int)len);
}

static int run(const char *a0, const char *a1, const char *a2, const char *a3)
{
	const char *const argv[] = { a0, a1, a2, a3, NULL };
	return harness_run(argv);
}

static bool path_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

static bool path_exists_in(const char *dir, const char *name)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return path_exists(path);
}

static void assert_owner_mode(const char *path, uid_t uid, gid_t gid, mode_t mode);

/* ---- the mount table, as libmount reads it ------------------------------------ */

struct mount_at {
	int count;		/* mounts whose mount point is the path */
	int id;			/* the topmost one's id; 0 when none */
	bool shared;		/* the topmost one has shared propagation */
};

static struct mount_at mount_at(const char *path)
{
	struct mount_at m = { 0, 0, false };
	struct libmnt_table *table = mnt_new_table();
	struct libmnt_iter *it = mnt_new_iter(MNT_ITER_FORWARD);
	struct libmnt_fs *fs;
	assert_non_null(table);
	assert_non_null(it);
	assert_int_equal(mnt_table_parse_file(table, "/proc/self/mountinfo"), 0);
	while (mnt_table_next_fs(table, it, &fs) == 0) {
		if (strcmp(mnt_fs_get_target(fs), path))
			continue;
		const char *fields = mnt_fs_get_optional_fields(fs);
		m.count++;
		m.id = mnt_fs_get_id(fs);
		m.shared = fields && strstr(fields, "shared:");
	}
	mnt_free_iter(it);
	mnt_unref_table(table);
	return m;
}

static bool is_mount_point(const char *path)
{
	return mount_at(path).count > 0;
}

/* Mount ids of this process's fds on `dir` itself, from /proc/self/fdinfo;
 * returns how many there are. */
static int fds_on(const char *dir, int ids[], int max)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;
	assert_non_null(d);
	while ((e = readdir(d))) {
		char link[PATH_MAX], target[PATH_MAX], info[4096];
		snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
		ssize_t len = readlink(link, target, sizeof(target) - 1);
		if (len < 0)
			continue;
		target[len] = '\0';
		if (strcmp(target, dir) || n == max)
			continue;
		snprintf(link, sizeof(link), "/proc/self/fdinfo/%s", e->d_name);
		FILE *f = fopen(link, "r");
		assert_non_null(f);
		size_t got = fread(info, 1, sizeof(info) - 1, f);
		fclose(f);
		info[got] = '\0';
		const char *mnt = strstr(info, "mnt_id:");
		assert_non_null(mnt);
		ids[n++] = atoi(mnt + strlen("mnt_id:"));
	}
	closedir(d);
	return n;
}

/* ---- mount propagation --------------------------------------------------------- */

static void test_mount_home_made_and_removed(void **state)
{
	(void)state;
	char home[HOME_MAX], subvolumes[HOME_MAX + 16];
	int ids[8];
	new_home(home, sizeof(home));
	snprintf(subvolumes, sizeof(subvolumes), "%s/subvolumes", home);

	btrfslayer *h = open_home(home, NULL, 0);
	struct mount_at m = mount_at(home);
	assert_int_equal(m.count, 1);
	/* what shared propagation needs: --make-shared refuses a non-mount */
	assert_int_equal(run("mount", "--make-shared", home, NULL), 0);
	m = mount_at(home);
	assert_true(m.shared);

	/* the handle works through the new mount, not the one below it */
	assert_int_equal(fds_on(home, ids, N(ids)), 1);
	assert_int_equal(ids[0], m.id);
	assert_int_equal(fds_on(subvolumes, ids, N(ids)), 1);
	assert_int_equal(ids[0], m.id);

	/* layers are reached through it, and outlive it */
	assert_ok(btrfslayer_create(h, "layer", NULL, 0, NULL, NULL, 0, ERR));
	assert_ok(btrfslayer_close(h, ERR));
	assert_false(is_mount_point(home));
	char layer_dir[HOME_MAX + 32];
	snprintf(layer_dir, sizeof(layer_dir), "%s/layer", subvolumes);
	assert_true(path_exists(layer_dir));

	/* and again: a fresh mount for each open */
	h = open_home(home, NULL, 0);
	assert_int_equal(mount_at(home).count, 1);
	assert_ok(btrfslayer_close(h, ERR));
	assert_false(is_mount_point(home));
}

static void test_mount_home_preexisting_survives(void **state)
{
	(void)state;
	char home[HOME_MAX];
	new_home(home, sizeof(home));
	assert_int_equal(mkdir(home, 0700), 0);
	assert_int_equal(run("mount", "--bind", home, home), 0);
	struct mount_at before = mount_at(home);
	assert_int_equal(before.count, 1);

	btrfslayer *h = open_home(home, NULL, 0);
	struct mount_at during = mount_at(home);
	assert_int_equal(during.count, 1);	/* nothing stacked on it */
	assert_int_equal(during.id, before.id);
	assert_ok(btrfslayer_close(h, ERR));

	struct mount_at after = mount_at(home);
	assert_int_equal(after.count, 1);
	assert_int_equal(after.id, before.id);
	assert_int_equal(run("umount", home, NULL, NULL), 0);
	assert_false(is_mount_point(home));
}

static void test_mount_home_off(void **state)
{
	(void)state;
	static const char *const off[] = { "btrfs.mount_home=false", "BTRFS.Mount_Home= NO ",
					   "btrfs.mount_home=0" };
	static const char *const on[] = { "btrfs.mount_home=TRUE", "btrfs.mount_home=yes",
					  "btrfs.mount_home=1" };
	char home[HOME_MAX];
	new_home(home, sizeof(home));
	for (size_t i = 0; i < N(off); i++) {
		btrfslayer *h = open_home(home, &off[i], 1);
		assert_false(is_mount_point(home));
		assert_ok(btrfslayer_close(h, ERR));
	}
	for (size_t i = 0; i < N(on); i++) {
		btrfslayer *h = open_home(home, &on[i], 1);
		assert_true(is_mount_point(home));
		assert_ok(btrfslayer_close(h, ERR));
		assert_false(is_mount_point(home));
	}
}

static void test_mount_home_bad_value(void **state)
{
	(void)state;
	static const char *const bad[] = { "btrfs.mount_home=maybe", "btrfs.mount_home=2",
					   "btrfs.mount_home=on", "btrfs.mount_home=" };
	char home[HOME_MAX];
	btrfslayer *h;
	new_home(home, sizeof(home));
	for (size_t i = 0; i < N(bad); i++) {
		expect_fail(btrfslayer_open(home, &bad[i], 1, NULL, 0, NULL, 0, &h, ERR),
			    -EINVAL, "btrfs.mount_home");
		assert_false(path_exists(home));
	}
}

/* Close takes off only its own mount: one stacked on it stays. */
static void test_mount_covered_survives(void **state)
{
	(void)state;
	char home[HOME_MAX];
	new_home(home, sizeof(home));
	btrfslayer *h = open_home(home, NULL, 0);
	int ours = mount_at(home).id;
	assert_int_equal(run("mount", "--bind", home, home), 0);
	struct mount_at covered = mount_at(home);
	assert_int_equal(covered.count, 2);
	assert_int_not_equal(covered.id, ours);

	assert_ok(btrfslayer_close(h, ERR));
	struct mount_at after = mount_at(home);
	assert_int_equal(after.count, 2);
	assert_int_equal(after.id, covered.id);
	assert_int_equal(run("umount", home, NULL, NULL), 0);
	assert_int_equal(mount_at(home).id, ours);	/* ours, now nobody's */
	assert_int_equal(run("umount", home, NULL, NULL), 0);
	assert_false(is_mount_point(home));
}

/* An open that fails after the bind mount takes it down again. */
static void test_mount_failed_open_leaves_none(void **state)
{
	(void)state;
	char home[HOME_MAX], planted[HOME_MAX + 16];
	btrfslayer *h;
	new_home(home, sizeof(home));
	assert_int_equal(mkdir(home, 0700), 0);
	snprintf(planted, sizeof(planted), "%s/subvolumes", home);
	assert_int_equal(symlink("/", planted), 0);
	expect_fail(btrfslayer_open(home, NULL, 0, NULL, 0, NULL, 0, &h, ERR), -ENOTDIR,
		    "symbolic link");
	assert_false(is_mount_point(home));
}

/* Two handles on one home: the second finds the mount and makes none.  The
 * mount is the home's: it goes with the last handle's close, in either
 * order, and no close fails for the other handle. */
static void test_mount_two_handles(void **state)
{
	(void)state;
	char home[HOME_MAX];
	new_home(home, sizeof(home));

	btrfslayer *first = open_home(home, NULL, 0);
	int id = mount_at(home).id;
	btrfslayer *second = open_home(home, NULL, 0);
	assert_int_equal(mount_at(home).count, 1);
	assert_int_equal(mount_at(home).id, id);
	assert_ok(btrfslayer_close(second, ERR));
	assert_int_equal(mount_at(home).id, id);	/* the first still uses it */
	assert_ok(btrfslayer_close(first, ERR));
	assert_false(is_mount_point(home));

	/* the other order: the maker closes first */
	first = open_home(home, NULL, 0);
	id = mount_at(home).id;
	second = open_home(home, NULL, 0);
	assert_ok(btrfslayer_close(first, ERR));
	assert_int_equal(mount_at(home).count, 1);
	assert_int_equal(mount_at(home).id, id);
	assert_ok(btrfslayer_create(second, "still-works", NULL, 0, NULL, NULL, 0, ERR));
	assert_ok(btrfslayer_close(second, ERR));
	assert_false(is_mount_point(home));	/* the last close took it down */
	assert_false(path_exists_in(home, ".mount"));
}

/* A busy mount (a working directory under home) outlives the last close,
 * which still succeeds; the next open adopts it, stacks nothing on it, and
 * its close takes it down once it is free. */
static void test_mount_busy_is_adopted(void **state)
{
	(void)state;
	char home[HOME_MAX];
	new_home(home, sizeof(home));
	btrfslayer *h = open_home(home, NULL, 0);
	int id = mount_at(home).id;
	int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(cwd >= 0);
	assert_int_equal(chdir(home), 0);	/* pins the mount */
	assert_ok(btrfslayer_close(h, ERR));
	assert_int_equal(mount_at(home).count, 1);
	assert_int_equal(mount_at(home).id, id);
	assert_true(path_exists_in(home, ".mount"));	/* still the library's */

	h = open_home(home, NULL, 0);
	assert_int_equal(mount_at(home).count, 1);	/* adopted, nothing stacked */
	assert_int_equal(mount_at(home).id, id);
	assert_int_equal(fchdir(cwd), 0);
	close(cwd);
	assert_ok(btrfslayer_close(h, ERR));
	assert_false(is_mount_point(home));
	assert_false(path_exists_in(home, ".mount"));
}

/* A mount someone else made at home is used, never taken down, even by
 * the last close, and never recorded as the library's. */
static void test_mount_foreign_never_touched(void **state)
{
	(void)state;
	char home[HOME_MAX];
	new_home(home, sizeof(home));
	btrfslayer *h = open_home(home, NULL, 0);	/* makes home */
	assert_ok(btrfslayer_close(h, ERR));
	assert_int_equal(run("mount", "--bind", home, home), 0);
	int id = mount_at(home).id;
	btrfslayer *a = open_home(home, NULL, 0), *b = open_home(home, NULL, 0);
	assert_ok(btrfslayer_close(a, ERR));
	assert_ok(btrfslayer_close(b, ERR));
	assert_int_equal(mount_at(home).count, 1);
	assert_int_equal(mount_at(home).id, id);
	assert_false(path_exists_in(home, ".mount"));
	assert_int_equal(run("umount", home, NULL, NULL), 0);
}

/* ---- a failed open ---------------------------------------------------------------- */

static char *logged;	/* what the library logged, one message a line */

static void collect_log(int level, const char *message, void *userdata)
{
	(void)userdata;
	size_t len = logged ? strlen(logged) : 0;
	char *grown = realloc(logged, len + strlen(message) + 16);
	assert_non_null(grown);
	sprintf(grown + len, "%d %s\n", level, message);
	logged = grown;
}

/* The names in dir, sorted, space-separated; "" when empty. */
static char *listing(const char *dir)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort);
	char *out = calloc(1, 4096);
	assert_true(n >= 0);
	assert_non_null(out);
	for (int i = 0; i < n; i++) {
		if (strcmp(names[i]->d_name, ".") && strcmp(names[i]->d_name, "..")) {
			if (*out)
				strcat(out, " ");
			strncat(out, names[i]->d_name, 4096 - strlen(out) - 2);
		}
		free(names[i]);
	}
	free(names);
	return out;
}

/* quota_mode=qgroup on a filesystem with simple quotas fails (-EBUSY) after
 * home, its lock and its layout were made: the open logs nothing (no false
 * recovery warnings) and takes back everything it made in home. */
static void test_failed_open_leaves_nothing(void **state)
{
	(void)state;
	/* btrfs.min_space: quotas on at open, not at the first limit */
	static const char *const simple[] = { "btrfs.quota_mode=simple", "btrfs.min_space=1" };
	static const char *const qgroup[] = { "btrfs.quota_mode=qgroup" };
	char home[HOME_MAX], used[HOME_MAX];
	btrfslayer *h = NULL;
	if (access("/sys/fs/btrfs/features/simple_quota", F_OK) < 0)
		skip();
	new_home(used, sizeof(used));
	h = open_home(used, simple, 2);	/* simple quotas on, for the whole fs */
	assert_ok(btrfslayer_create(h, "layer", NULL, 0, NULL, NULL, 0, ERR));
	assert_ok(btrfslayer_close(h, ERR));
	char *before = listing(used);

	btrfslayer_set_log_fn(collect_log, NULL);
	/* a home the open makes: it stays, empty */
	new_home(home, sizeof(home));
	expect_fail(btrfslayer_open(home, qgroup, 1, NULL, 0, NULL, 0, &h, ERR), -EBUSY,
		    "simple");
	assert_null(h);
	char *after = listing(home);
	assert_string_equal(after, "");
	free(after);
	assert_false(is_mount_point(home));
	/* a home made by hand, empty: likewise */
	assert_int_equal(rmdir(home), 0);
	assert_int_equal(mkdir(home, 0750), 0);
	expect_fail(btrfslayer_open(home, qgroup, 1, NULL, 0, NULL, 0, &h, ERR), -EBUSY,
		    "simple");
	after = listing(home);
	assert_string_equal(after, "");
	free(after);
	assert_owner_mode(home, geteuid(), getegid(), 0750);
	/* a home in use before: as it was */
	expect_fail(btrfslayer_open(used, qgroup, 1, NULL, 0, NULL, 0, &h, ERR), -EBUSY,
		    "simple");
	after = listing(used);
	assert_string_equal(after, before);
	free(after);
	assert_false(is_mount_point(used));
	btrfslayer_set_log_fn(NULL, NULL);
	if (logged)
		fail_msg("a failed open logged:\n%s", logged);
	free(before);
}

/* ---- SELinux labels ------------------------------------------------------------- */

#define LABEL "system_u:object_r:container_file_t:s0:c1,c2"
#define OTHER_LABEL "system_u:object_r:container_file_t:s0:c3,c4"
#define IMAGE_LABEL "system_u:object_r:container_ro_file_t:s0"

struct ctx {
	char home[HOME_MAX];
	btrfslayer *h;
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	new_home(c->home, sizeof(c->home));
	if (btrfslayer_open(c->home, NULL, 0, NULL, 0, NULL, 0, &c->h, NULL) < 0) {
		free(c);
		return -1;
	}
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	assert_int_equal(btrfslayer_close(c->h, NULL), 0);
	free(c);
	return 0;
}

static char *layer(struct ctx *c, const char *id)
{
	char *path = NULL;
	assert_ok(btrfslayer_get(c->h, id, NULL, &path, ERR));
	return path;
}

/* Fail unless `path` carries label `want`, read with lgetfilecon. */
static void assert_label(const char *path, const char *want)
{
	char *got = NULL;
	if (lgetfilecon(path, &got) < 0)
		fail_msg("lgetfilecon %s: %s", path, strerror(errno));
	if (strcmp(got, want))
		fail_msg("%s is labelled %s, want %s", path, got, want);
	freecon(got);
}

static void test_label_empty_layer(void **state)
{
	struct ctx *c = *state;
	char value[256];
	assert_ok(btrfslayer_create(c->h, "labelled", NULL, 0, LABEL, NULL, 0, ERR));
	char *path = layer(c, "labelled");
	assert_label(path, LABEL);
	/* the raw xattr, as the kernel stores it */
	ssize_t n = lgetxattr(path, "security.selinux", value, sizeof(value));
	assert_int_equal(n, strlen(LABEL) + 1);
	assert_string_equal(value, LABEL);
	free(path);

	/* no label given: none set (SELinux is off here, so none by default) */
	assert_ok(btrfslayer_create(c->h, "plain", NULL, 0, "", NULL, 0, ERR));
	path = layer(c, "plain");
	if (is_selinux_enabled() <= 0) {
		assert_int_equal(lgetxattr(path, "security.selinux", value, sizeof(value)), -1);
		assert_int_equal(errno, ENODATA);
	}
	free(path);
}

/* The documented choice: a snapshot's root is labelled, nothing inside it
 * is walked; its files keep the labels they share with the parent. */
static void test_label_snapshot_root_only(void **state)
{
	struct ctx *c = *state;
	char file[PATH_MAX], dir[PATH_MAX];
	assert_ok(btrfslayer_create(c->h, "image", NULL, 0, IMAGE_LABEL, NULL, 0, ERR));
	char *image = layer(c, "image");
	snprintf(file, sizeof(file), "%s/file", image);
	snprintf(dir, sizeof(dir), "%s/dir", image);
	int fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0644);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(lsetfilecon(file, IMAGE_LABEL), 0);
	assert_int_equal(lsetfilecon(dir, IMAGE_LABEL), 0);

	assert_ok(btrfslayer_create(c->h, "container", "image", 0, LABEL, NULL, 0, ERR));
	assert_ok(btrfslayer_create(c->h, "other", "image", BTRFSLAYER_CREATE_READ_ONLY,
				    OTHER_LABEL, NULL, 0, ERR));
	char *container = layer(c, "container"), *other = layer(c, "other");
	assert_label(container, LABEL);
	assert_label(other, OTHER_LABEL);
	assert_label(image, IMAGE_LABEL);	/* the parent is untouched */
	const char *inside[] = { "file", "dir" };
	for (size_t i = 0; i < N(inside); i++) {
		snprintf(file, sizeof(file), "%s/%s", container, inside[i]);
		assert_label(file, IMAGE_LABEL);
		snprintf(file, sizeof(file), "%s/%s", other, inside[i]);
		assert_label(file, IMAGE_LABEL);
	}
	free(image);
	free(container);
	free(other);
}

static int count_entries(const char *dir)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort);
	assert_true(n >= 0);
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return n;
}

static void test_label_invalid(void **state)
{
	struct ctx *c = *state;
	static const char *const bad[] = { "not-a-label", "user:role", "u:r:t:", "u::t",
					   "u:r:t:s0 c1", "u:r:t\n", ":r:t" };
	char subvolumes[PATH_MAX];
	snprintf(subvolumes, sizeof(subvolumes), "%s/subvolumes", c->home);
	assert_ok(btrfslayer_create(c->h, "base", NULL, 0, NULL, NULL, 0, ERR));
	int before = count_entries(subvolumes);
	for (size_t i = 0; i < N(bad); i++) {
		expect_fail(btrfslayer_create(c->h, "l", NULL, 0, bad[i], NULL, 0, ERR),
			    -EINVAL, "invalid mount label");
		expect_fail(btrfslayer_create(c->h, "l", "base", 0, bad[i], NULL, 0, ERR),
			    -EINVAL, "invalid mount label");
	}
	assert_int_equal(count_entries(subvolumes), before);
	assert_int_equal(btrfslayer_exists(c->h, "l", NULL), 0);
}

/* ---- user-namespace ownership --------------------------------------------------- */

static const btrfslayer_idmap uids[] = { { 0, 100000, 65536 } };
static const btrfslayer_idmap gids[] = { { 0, 200000, 65536 } };

static void assert_owner_mode(const char *path, uid_t uid, gid_t gid, mode_t mode)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		fail_msg("stat %s: %s", path, strerror(errno));
	if (st.st_uid != uid || st.st_gid != gid || (st.st_mode & 07777) != mode)
		fail_msg("%s is %u:%u %04o, want %u:%u %04o", path, st.st_uid, st.st_gid,
			 st.st_mode & 07777, uid, gid, mode);
}

static void test_idmap_new_layout(void **state)
{
	(void)state;
	char home[HOME_MAX], subvolumes[HOME_MAX + 16], quotas[HOME_MAX + 16];
	btrfslayer *h;
	new_home(home, sizeof(home));
	snprintf(subvolumes, sizeof(subvolumes), "%s/subvolumes", home);
	snprintf(quotas, sizeof(quotas), "%s/quotas", home);
	assert_ok(btrfslayer_open(home, NULL, 0, uids, 1, gids, 1, &h, ERR));
	assert_owner_mode(home, geteuid(), 200000, 0710);
	assert_owner_mode(subvolumes, geteuid(), 200000, 0710);
	assert_owner_mode(quotas, geteuid(), 200000, 0700);	/* the library's alone */

	assert_ok(btrfslayer_create(h, "empty", NULL, 0, NULL, NULL, 0, ERR));
	assert_ok(btrfslayer_create(h, "child", "empty", 0, NULL, NULL, 0, ERR));
	char *path = NULL;
	assert_ok(btrfslayer_get(h, "empty", NULL, &path, ERR));
	assert_owner_mode(path, 100000, 200000, 0755);
	free(path);
	assert_ok(btrfslayer_get(h, "child", NULL, &path, ERR));
	assert_owner_mode(path, 100000, 200000, 0755);	/* as its parent */
	free(path);
	assert_ok(btrfslayer_close(h, ERR));

	/* without maps, container root is host root */
	new_home(home, sizeof(home));
	snprintf(subvolumes, sizeof(subvolumes), "%s/subvolumes", home);
	assert_ok(btrfslayer_open(home, NULL, 0, NULL, 0, NULL, 0, &h, ERR));
	assert_owner_mode(home, geteuid(), 0, 0710);
	assert_owner_mode(subvolumes, geteuid(), 0, 0710);
	assert_ok(btrfslayer_close(h, ERR));
}

/* A home found without a record (made by hand, or by a version before
 * records) is someone else's: an open without maps leaves it as it is and
 * records nothing; an open with maps gives it the layout and the record. */
static void test_idmap_existing_home_without_record(void **state)
{
	(void)state;
	char home[HOME_MAX], subvolumes[HOME_MAX + 16], quotas[HOME_MAX + 16];
	btrfslayer *h;
	new_home(home, sizeof(home));
	snprintf(subvolumes, sizeof(subvolumes), "%s/subvolumes", home);
	snprintf(quotas, sizeof(quotas), "%s/quotas", home);
	assert_int_equal(mkdir(home, 0700), 0);
	assert_int_equal(mkdir(subvolumes, 0700), 0);
	assert_int_equal(mkdir(quotas, 0755), 0);
	assert_int_equal(chown(home, 1234, 5678), 0);
	assert_int_equal(chmod(home, 02755), 0);
	assert_int_equal(chown(subvolumes, 42, 43), 0);
	assert_int_equal(chmod(subvolumes, 0777), 0);

	assert_ok(btrfslayer_open(home, NULL, 0, NULL, 0, NULL, 0, &h, ERR));
	assert_ok(btrfslayer_close(h, ERR));
	assert_owner_mode(home, 1234, 5678, 02755);
	assert_owner_mode(subvolumes, 42, 43, 0777);
	assert_owner_mode(quotas, geteuid(), getegid(), 0755);
	assert_false(path_exists_in(home, ".idmap"));

	assert_ok(btrfslayer_open(home, NULL, 0, uids, 1, gids, 1, &h, ERR));
	assert_owner_mode(home, geteuid(), 200000, 0710);
	assert_owner_mode(subvolumes, geteuid(), 200000, 0710);
	assert_owner_mode(quotas, geteuid(), 200000, 0700);
	assert_true(path_exists_in(home, ".idmap"));
	assert_ok(btrfslayer_close(h, ERR));
}

/* An open without maps (an administrator's `btrfslayer ls`) adopts the
 * maps home records: it re-owns nothing, and the layers it makes belong to
 * the remapped root.  The CVE-2021-21284 layout stays. */
static void test_idmap_adopted_without_maps(void **state)
{
	(void)state;
	char home[HOME_MAX], subvolumes[HOME_MAX + 16];
	btrfslayer *h;
	new_home(home, sizeof(home));
	snprintf(subvolumes, sizeof(subvolumes), "%s/subvolumes", home);
	assert_ok(btrfslayer_open(home, NULL, 0, uids, 1, gids, 1, &h, ERR));
	btrfslayer *admin;
	assert_ok(btrfslayer_open(home, NULL, 0, NULL, 0, NULL, 0, &admin, ERR));
	assert_ok(btrfslayer_close(admin, ERR));
	assert_ok(btrfslayer_close(h, ERR));
	assert_owner_mode(home, geteuid(), 200000, 0710);
	assert_owner_mode(subvolumes, geteuid(), 200000, 0710);

	assert_ok(btrfslayer_open(home, NULL, 0, NULL, 0, NULL, 0, &admin, ERR));
	assert_ok(btrfslayer_create(admin, "by-admin", NULL, 0, NULL, NULL, 0, ERR));
	char *path = NULL;
	assert_ok(btrfslayer_get(admin, "by-admin", NULL, &path, ERR));
	assert_owner_mode(path, 100000, 200000, 0755);
	free(path);
	assert_ok(btrfslayer_close(admin, ERR));
	assert_owner_mode(home, geteuid(), 200000, 0710);
	assert_owner_mode(subvolumes, geteuid(), 200000, 0710);

	/* the same maps, in another order, are the same maps */
	static const btrfslayer_idmap two[] = { { 1000, 300000, 10 }, { 0, 100000, 1000 } };
	static const btrfslayer_idmap two_sorted[] = { { 0, 100000, 1000 }, { 1000, 300000, 10 } };
	new_home(home, sizeof(home));
	assert_ok(btrfslayer_open(home, NULL, 0, two, 2, gids, 1, &h, ERR));
	assert_ok(btrfslayer_close(h, ERR));
	assert_ok(btrfslayer_open(home, NULL, 0, two_sorted, 2, gids, 1, &h, ERR));
	assert_ok(btrfslayer_close(h, ERR));
}

/* An open with other maps than home records is refused, naming home and
 * both maps, and changes nothing.  A home made without maps records that
 * too. */
static void test_idmap_other_maps_refused(void **state)
{
	(void)state;
	static const btrfslayer_idmap other[] = { { 0, 300000, 65536 } };
	char home[HOME_MAX], want[HOME_MAX + 64];
	btrfslayer *h;
	new_home(home, sizeof(home));
	assert_ok(btrfslayer_open(home, NULL, 0, uids, 1, gids, 1, &h, ERR));
	assert_ok(btrfslayer_close(h, ERR));
	expect_fail(btrfslayer_open(home, NULL, 0, other, 1, gids, 1, &h, ERR), -EBUSY,
		    "uid map 0:100000:65536, gid map 0:200000:65536, this open asks for "
		    "uid map 0:300000:65536, gid map 0:200000:65536");
	snprintf(want, sizeof(want), "check id maps: %s: ", home);
	expect_fail(btrfslayer_open(home, NULL, 0, uids, 1, NULL, 0, &h, ERR), -EBUSY, want);
	assert_owner_mode(home, geteuid(), 200000, 0710);
	assert_false(is_mount_point(home));

	new_home(home, sizeof(home));
	assert_ok(btrfslayer_open(home, NULL, 0, NULL, 0, NULL, 0, &h, ERR));
	assert_ok(btrfslayer_close(h, ERR));
	expect_fail(btrfslayer_open(home, NULL, 0, uids, 1, gids, 1, &h, ERR), -EBUSY,
		    "laid out for uid map none, gid map none");
	assert_owner_mode(home, geteuid(), 0, 0710);
}

/* A record that does not parse fails the open, naming it. */
static void test_idmap_bad_record(void **state)
{
	(void)state;
	static const char *const bad[] = { "uid 0 100000\n", "uid 0 100000 65536 7\n",
					   "pid 0 1 1\n", "uid 1 100000 10\n",
					   "uid 0 -1 10\n", "uid 0 4294967296 1\n" };
	char home[HOME_MAX], record[HOME_MAX + 16];
	btrfslayer *h;
	new_home(home, sizeof(home));
	snprintf(record, sizeof(record), "%s/.idmap", home);
	assert_ok(btrfslayer_open(home, NULL, 0, uids, 1, gids, 1, &h, ERR));
	assert_ok(btrfslayer_close(h, ERR));
	for (size_t i = 0; i < N(bad); i++) {
		FILE *f = fopen(record, "w");
		assert_non_null(f);
		fputs(bad[i], f);
		fclose(f);
		expect_fail(btrfslayer_open(home, NULL, 0, NULL, 0, NULL, 0, &h, ERR), -EINVAL,
			    record);
	}
	assert_int_equal(unlink(record), 0);
	assert_int_equal(symlink("/etc/passwd", record), 0);
	expect_fail(btrfslayer_open(home, NULL, 0, NULL, 0, NULL, 0, &h, ERR), -ELOOP, record);
	assert_int_equal(unlink(record), 0);
}

static void test_idmap_bad_maps(void **state)
{
	(void)state;
	static const btrfslayer_idmap no_root[] = { { 1, 100000, 65536 } };
	static const btrfslayer_idmap overlap_host[] = { { 0, 100000, 100 }, { 100, 100050, 10 } };
	static const btrfslayer_idmap overlap_container[] = { { 0, 100000, 100 }, { 50, 300000, 10 } };
	static const btrfslayer_idmap overflow_host[] = { { 0, 0xffffff00u, 0x101 } };
	static const btrfslayer_idmap overflow_container[] = { { 0, 1000, 10 },
							       { 0xfffffff0u, 2000, 0x11 } };
	static const struct {
		const btrfslayer_idmap *map;
		size_t n;
		const char *needle;
	} bad[] = {
		{ no_root, 1, "container id 0 is not mapped" },
		{ overlap_host, 2, "overlap" },
		{ overlap_container, 2, "overlap" },
		{ overflow_host, 1, "2^32" },
		{ overflow_container, 2, "2^32" },
	};
	char home[HOME_MAX];
	btrfslayer *h;
	new_home(home, sizeof(home));
	for (size_t i = 0; i < N(bad); i++) {
		expect_fail(btrfslayer_open(home, NULL, 0, bad[i].map, bad[i].n, gids, 1, &h, ERR),
			    -EINVAL, bad[i].needle);
		expect_fail(btrfslayer_open(home, NULL, 0, uids, 1, bad[i].map, bad[i].n, &h, ERR),
			    -EINVAL, "gid map");
		assert_false(path_exists(home));
	}
}

int main(void)
{
	harness_start();
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mount_home_made_and_removed),
		cmocka_unit_test(test_mount_home_preexisting_survives),
		cmocka_unit_test(test_mount_home_off),
		cmocka_unit_test(test_mount_home_bad_value),
		cmocka_unit_test(test_mount_covered_survives),
		cmocka_unit_test(test_mount_failed_open_leaves_none),
		cmocka_unit_test(test_mount_two_handles),
		cmocka_unit_test(test_mount_busy_is_adopted),
		cmocka_unit_test(test_mount_foreign_never_touched),
		T(test_label_empty_layer),
		T(test_label_snapshot_root_only),
		T(test_label_invalid),
		cmocka_unit_test(test_idmap_new_layout),
		cmocka_unit_test(test_idmap_existing_home_without_record),
		cmocka_unit_test(test_idmap_adopted_without_maps),
		cmocka_unit_test(test_idmap_other_maps_refused),
		cmocka_unit_test(test_idmap_bad_record),
		cmocka_unit_test(test_idmap_bad_maps),
		/* last: it turns simple quotas on for the whole filesystem */
		cmocka_unit_test(test_failed_open_leaves_nothing),
	};
	return cmocka_run_group_tests_name("integration.host", tests, NULL, NULL);
}
