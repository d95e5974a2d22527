/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The library on kernels older than openat2 (5.6), STATX_MNT_ID (5.8) and
 * open_tree/move_mount (5.2), RHEL 8's 4.18 among them, on a real loopback
 * btrfs.  The library's objects are linked into this program with
 * -Wl,--wrap for the calls an old kernel lacks (CMakeLists.txt lists them),
 * and the wrappers below answer as such a kernel does:
 *
 *   syscall(SYS_openat2)   ENOSYS, always (the library remembers it)
 *   statx()                STATX_MNT_ID left out of stx_mask, or ENOSYS
 *   open_tree, move_mount  ENOSYS, for the kernels before 5.2
 *   open("/proc/self/fdinfo/N")   ENOENT, for a host without it
 *   name_to_handle_at()    ENOSYS, for a host without it
 *
 * For each kernel: open with the defaults works (home is bind-mounted onto
 * itself, by mount(2) when open_tree is missing) and layers can be made,
 * snapshotted, found and removed; with btrfs.mount_home=false, a bind mount
 * of a subvolume from outside home planted at subvolumes/<id> is no layer
 * (get, create from it, remove: -ENOENT; exists: 0), and a bind mount
 * planted at subvolumes/ fails open with -EXDEV.  When no way to learn a
 * mount id is left, open fails and says so: "cannot tell" is never taken
 * for "the same mount".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include <btrfsutil.h>

#include "btrfslayer.h"
#include "check.h"
#include "harness.h"

/* ---- the old kernel ---------------------------------------------------------- */

struct kernel {
	const char *name;
	bool statx_enosys;	/* no statx at all (before 4.11) */
	bool no_open_tree;	/* no open_tree/move_mount (before 5.2) */
	bool no_fdinfo;		/* no /proc/self/fdinfo/N */
	bool no_handles;	/* no name_to_handle_at */
	/* which fallback must have told the mount ids: fdinfo or handles */
	bool expect_fdinfo, expect_handles;
};

static const struct kernel *kernel;	/* NULL: the real one */
static unsigned openat2_calls, statx_stripped, fdinfo_opens, handle_calls, open_tree_calls;

#define DECLARE(sym) __typeof__(sym) __real_##sym, __wrap_##sym

DECLARE(statx);
int __wrap_statx(int dirfd, const char *path, int flags, unsigned int mask,
		 struct statx *stx)
{
	if (kernel && kernel->statx_enosys) {
		statx_stripped++;
		errno = ENOSYS;
		return -1;
	}
	int r = __real_statx(dirfd, path, flags, mask, stx);
	if (r == 0 && kernel && (stx->stx_mask & STATX_MNT_ID)) {
		statx_stripped++;
		stx->stx_mask &= ~(unsigned)STATX_MNT_ID;
		stx->stx_mnt_id = 0;
	}
	return r;
}

/* openat2 has no glibc wrapper: the library calls syscall(SYS_openat2). */
DECLARE(syscall);
long __wrap_syscall(long number, ...)
{
	long a[6];
	va_list ap;
	va_start(ap, number);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (number == SYS_openat2) {
		openat2_calls++;
		errno = ENOSYS;
		return -1;
	}
	return __real_syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

DECLARE(open);
int __wrap_open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {
		va_list ap;
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	if (!strncmp(path, "/proc/self/fdinfo/", strlen("/proc/self/fdinfo/"))) {
		fdinfo_opens++;
		if (kernel && kernel->no_fdinfo) {
			errno = ENOENT;
			return -1;
		}
	}
	return __real_open(path, flags, mode);
}

DECLARE(name_to_handle_at);
int __wrap_name_to_handle_at(int dirfd, const char *path, struct file_handle *handle,
			     int *mount_id, int flags)
{
	handle_calls++;
	if (kernel && kernel->no_handles) {
		errno = ENOSYS;
		return -1;
	}
	return __real_name_to_handle_at(dirfd, path, handle, mount_id, flags);
}

DECLARE(open_tree);
int __wrap_open_tree(int dirfd, const char *path, unsigned int flags)
{
	open_tree_calls++;
	if (kernel && kernel->no_open_tree) {
		errno = ENOSYS;
		return -1;
	}
	return __real_open_tree(dirfd, path, flags);
}

DECLARE(move_mount);
int __wrap_move_mount(int from_dirfd, const char *from, int to_dirfd, const char *to,
		      unsigned int flags)
{
	if (kernel && kernel->no_open_tree) {
		errno = ENOSYS;
		return -1;
	}
	return __real_move_mount(from_dirfd, from, to_dirfd, to, flags);
}

static const struct kernel rhel8 = {
	"4.18 (RHEL 8): no openat2, no STATX_MNT_ID, no open_tree",
	.no_open_tree = true, .expect_fdinfo = true,
};
static const struct kernel linux_5_4 = {
	"5.4: no openat2, no STATX_MNT_ID",
	.expect_fdinfo = true,
};
static const struct kernel no_statx_no_fdinfo = {
	"no statx, no open_tree, no /proc/self/fdinfo: name_to_handle_at",
	.statx_enosys = true, .no_open_tree = true, .no_fdinfo = true, .expect_handles = true,
};
static const struct kernel blind = {
	"no STATX_MNT_ID, no /proc/self/fdinfo, no name_to_handle_at",
	.no_fdinfo = true, .no_handles = true,
};

/* ---- helpers ------------------------------------------------------------------- */

static const char *const no_mount[] = { "btrfs.mount_home=false" };

struct fixture {
	char home[256];
	char planted[300];	/* a bind mount the test made; "" if none */
	char outside[300];	/* a subvolume outside home; "" if none */
	btrfslayer *h;
};

static void on_log(int level, const char *message, void *userdata)
{
	(void)userdata;
	fprintf(stderr, "#   log %d: %s\n", level, message);
}

static int setup(void **state)
{
	static struct fixture f;
	memset(&f, 0, sizeof(f));
	harness_new_home(f.home, sizeof(f.home));
	kernel = *state;
	fprintf(stderr, "# kernel: %s\n", kernel->name);
	statx_stripped = fdinfo_opens = handle_calls = open_tree_calls = 0;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	kernel = NULL;
	btrfslayer_close(f->h, NULL);
	f->h = NULL;
	if (f->planted[0]) {
		umount2(f->planted, MNT_DETACH);
		if (rmdir(f->planted) < 0)
			unlink(f->planted);
	}
	if (f->outside[0])
		btrfs_util_delete_subvolume(f->outside, BTRFS_UTIL_DELETE_SUBVOLUME_RECURSIVE);
	return 0;
}

/* Whether `path` is a mount point in this process's mount table. */
static bool is_mount_point(const char *path)
{
	const char *const findmnt[] = { "findmnt", "-n", "--mountpoint", path, NULL };
	return harness_run(findmnt) == 0;
}

/* The fallback this kernel leaves must be the one that answered. */
static void assert_fallback_used(void)
{
	assert_true(openat2_calls > 0);	/* tried once, heard ENOSYS, remembers it */
	assert_true(statx_stripped > 0);
	if (kernel->expect_fdinfo)
		assert_true(fdinfo_opens > 0);
	if (kernel->expect_handles)
		assert_true(handle_calls > 0);
}

/* A subvolume outside home, with a file in it, and a bind mount of it
 * planted at `at` (relative to home). */
static void plant_bind_of_outside(struct fixture *f, const char *at)
{
	snprintf(f->outside, sizeof(f->outside), "%s-outside", f->home);
	assert_int_equal(btrfs_util_create_subvolume(f->outside, 0, NULL, NULL),
			 BTRFS_UTIL_OK);
	char file[400];
	snprintf(file, sizeof(file), "%s/secret", f->outside);
	int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	snprintf(f->planted, sizeof(f->planted), "%s/%s", f->home, at);
	assert_int_equal(mkdir(f->planted, 0755), 0);
	if (mount(f->outside, f->planted, "none", MS_BIND, NULL) < 0) {
		rmdir(f->planted);
		f->planted[0] = '\0';
		fail_msg("bind-mount %s: %s", f->outside, strerror(errno));
	}
}

/* ---- tests ----------------------------------------------------------------------- */

/* Open with the defaults: home becomes a mount point of its own, layers
 * work, close takes the mount away again. */
static void test_open_defaults(void **state)
{
	static const char *const sized[] = { "size=8M" };
	struct fixture *f = *state;
	char *path = NULL;
	btrfslayer_list *list = NULL;
	btrfslayer_usage usage;
	struct stat st;

	assert_ok(btrfslayer_open(f->home, NULL, 0, NULL, 0, NULL, 0, &f->h, ERR));
	assert_true(is_mount_point(f->home));
	if (kernel->no_open_tree)
		assert_true(open_tree_calls > 0);	/* and mount(2) did it */
	/* a size limit: its record in quotas/ is read, and remove writes
	 * qgroup markers there */
	assert_ok(btrfslayer_create(f->h, "base", NULL, 0, NULL, sized, 1, ERR));
	assert_ok(btrfslayer_create(f->h, "child", "base", BTRFSLAYER_CREATE_READ_ONLY, NULL,
				    NULL, 0, ERR));
	assert_ok(btrfslayer_get_usage(f->h, "base", 0, &usage, sizeof(usage), ERR));
	assert_int_equal(usage.recorded_limit, 8 << 20);
	assert_int_equal(usage.limit, 8 << 20);
	assert_int_equal(btrfslayer_exists(f->h, "child", NULL), 1);
	assert_ok(btrfslayer_get(f->h, "child", NULL, &path, ERR));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_ino, 256);	/* a subvolume root */
	assert_ptr_equal(strstr(path, f->home), path);
	free(path);
	assert_ok(btrfslayer_layers(f->h, &list, ERR));
	assert_int_equal(btrfslayer_list_count(list), 2);
	btrfslayer_list_free(list);
	assert_ok(btrfslayer_remove(f->h, "child", ERR));
	assert_ok(btrfslayer_remove(f->h, "base", ERR));
	assert_int_equal(btrfslayer_exists(f->h, "base", NULL), 0);
	assert_fallback_used();
	assert_ok(btrfslayer_close(f->h, ERR));
	f->h = NULL;
	assert_false(is_mount_point(f->home));
}

/* subvolumes/x is a bind mount of a subvolume from outside home: no call
 * takes it for a layer. */
static void test_planted_layer(void **state)
{
	struct fixture *f = *state;
	char *path = NULL;
	char where[400], child[400];
	btrfslayer_list *list = NULL;
	struct stat st;

	assert_ok(btrfslayer_open(f->home, no_mount, 1, NULL, 0, NULL, 0, &f->h, ERR));
	assert_ok(btrfslayer_create(f->h, "base", NULL, 0, NULL, NULL, 0, ERR));
	plant_bind_of_outside(f, "subvolumes/x");
	snprintf(where, sizeof(where), "%s/subvolumes/x", f->home);

	expect_fail(btrfslayer_get(f->h, "x", NULL, &path, ERR), -ENOENT, where);
	assert_null(path);
	expect_fail(btrfslayer_get(f->h, "x", NULL, &path, ERR), -ENOENT, "not a layer");
	expect_fail(btrfslayer_create(f->h, "child", "x", 0, NULL, NULL, 0, ERR), -ENOENT, where);
	expect_fail(btrfslayer_remove(f->h, "x", ERR), -ENOENT, where);
	assert_int_equal(btrfslayer_exists(f->h, "x", NULL), 0);
	assert_ok(btrfslayer_layers(f->h, &list, ERR));
	assert_int_equal(btrfslayer_list_count(list), 1);
	assert_string_equal(btrfslayer_list_key(list, 0), "base");
	btrfslayer_list_free(list);

	/* nothing was made of it, and it is whole */
	snprintf(child, sizeof(child), "%s/subvolumes/child", f->home);
	assert_int_equal(lstat(child, &st), -1);
	assert_int_equal(btrfslayer_exists(f->h, "child", NULL), 0);
	snprintf(child, sizeof(child), "%s/secret", f->outside);
	assert_int_equal(lstat(child, &st), 0);
	assert_int_equal(btrfs_util_is_subvolume(f->outside), BTRFS_UTIL_OK);
	assert_fallback_used();
}

/* subvolumes/ itself is a bind mount of a subvolume from outside home. */
static void test_planted_subvolumes(void **state)
{
	struct fixture *f = *state;
	char where[400];
	const struct kernel *old = kernel;

	kernel = NULL;	/* a home made on today's kernel */
	assert_ok(btrfslayer_open(f->home, no_mount, 1, NULL, 0, NULL, 0, &f->h, ERR));
	assert_ok(btrfslayer_close(f->h, ERR));
	f->h = NULL;
	kernel = old;
	snprintf(where, sizeof(where), "%s/subvolumes/.staging", f->home);
	assert_int_equal(rmdir(where), 0);
	snprintf(where, sizeof(where), "%s/subvolumes", f->home);
	assert_int_equal(rmdir(where), 0);
	plant_bind_of_outside(f, "subvolumes");
	expect_fail(btrfslayer_open(f->home, no_mount, 1, NULL, 0, NULL, 0, &f->h, ERR), -EXDEV,
		    where);
	assert_null(f->h);
	assert_fallback_used();
}

/* HOME/.lock is a bind mount of a file from outside home. */
static void test_planted_lock_file(void **state)
{
	struct fixture *f = *state;
	char lock[400];

	assert_int_equal(mkdir(f->home, 0710), 0);
	snprintf(f->outside, sizeof(f->outside), "%s-outside", f->home);
	assert_int_equal(btrfs_util_create_subvolume(f->outside, 0, NULL, NULL), BTRFS_UTIL_OK);
	snprintf(lock, sizeof(lock), "%s/lock", f->outside);
	int fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	snprintf(f->planted, sizeof(f->planted), "%s/.lock", f->home);
	fd = open(f->planted, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	if (mount(lock, f->planted, "none", MS_BIND, NULL) < 0) {
		unlink(f->planted);
		f->planted[0] = '\0';
		fail_msg("bind-mount %s: %s", lock, strerror(errno));
	}
	expect_fail(btrfslayer_open(f->home, no_mount, 1, NULL, 0, NULL, 0, &f->h, ERR), -EXDEV,
		    "is a mount point");
	assert_null(f->h);
	assert_fallback_used();
}

/* No way to learn a mount id is left: open fails, saying what it could not
 * check, with the defaults and without the bind mount. */
static void test_cannot_tell(void **state)
{
	struct fixture *f = *state;
	char where[400];

	expect_fail(btrfslayer_open(f->home, NULL, 0, NULL, 0, NULL, 0, &f->h, ERR), -EOPNOTSUPP,
		    f->home);
	assert_null(f->h);
	assert_false(is_mount_point(f->home));
	snprintf(where, sizeof(where), "%s/subvolumes", f->home);
	expect_fail(btrfslayer_open(f->home, no_mount, 1, NULL, 0, NULL, 0, &f->h, ERR),
		    -EOPNOTSUPP, where);
	assert_null(f->h);
}

#define ON(test, k) cmocka_unit_test_prestate_setup_teardown(test, setup, teardown, (void *)&(k))

int main(void)
{
	harness_start();
	btrfslayer_set_log_fn(on_log, NULL);
	const struct CMUnitTest tests[] = {
		ON(test_open_defaults, rhel8),
		ON(test_planted_layer, rhel8),
		ON(test_planted_subvolumes, rhel8),
		ON(test_planted_lock_file, rhel8),
		ON(test_open_defaults, linux_5_4),
		ON(test_planted_layer, linux_5_4),
		ON(test_planted_subvolumes, linux_5_4),
		ON(test_open_defaults, no_statx_no_fdinfo),
		ON(test_planted_layer, no_statx_no_fdinfo),
		ON(test_planted_subvolumes, no_statx_no_fdinfo),
		ON(test_planted_lock_file, no_statx_no_fdinfo),
		ON(test_cannot_tell, blind),
	};
	return cmocka_run_group_tests_name("oldkernel", tests, NULL, NULL);
}
