/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The 1.0 calls on a real btrfs: layer info, seal and unseal, layers as
 * fds, idmapped mounts, create's mode= option and the usage walk.  What is
 * checked is what a user would check: libbtrfsutil's view of the
 * subvolumes, stat(2) of the files, ownership on disk. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <btrfsutil.h>
#include <linux/btrfs.h>
#include <linux/capability.h>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#include "btrfslayer.h"
#include "check.h"
#include "fsprobe.h"
#include "harness.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void create_opts(struct harness_home *c, const char *id, const char *parent, uint32_t flags,
			const char *opt)
{
	const char *opts[1] = { opt };
	assert_ok(btrfslayer_create(c->h, id, parent, flags, NULL, opt ? opts : NULL, opt ? 1 : 0,
				    ERR));
}

static void create(struct harness_home *c, const char *id, const char *parent, uint32_t flags)
{
	create_opts(c, id, parent, flags, NULL);
}

/* HOME/subvolumes/<id>[/<sub>] */
static void layer_path(struct harness_home *c, const char *id, const char *sub, char *buf,
		       size_t len)
{
	snprintf(buf, len, "%s/subvolumes/%s%s%s", c->home, id, sub ? "/" : "", sub ? sub : "");
}

/* Write `size` bytes to path: 0 or errno. */
static int write_file(const char *path, size_t size)
{
	static char block[4096];
	memset(block, 'x', sizeof(block));
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return errno;
	int r = 0;
	for (size_t done = 0; r == 0 && done < size; done += sizeof(block))
		if (write(fd, block, sizeof(block)) != (ssize_t)sizeof(block))
			r = errno;
	if (close(fd) < 0 && r == 0)
		r = errno;
	return r;
}

static void make_subvolume(const char *path, bool read_only)
{
	assert_int_equal(btrfs_util_create_subvolume(path, 0, NULL, NULL), BTRFS_UTIL_OK);
	if (read_only)
		assert_int_equal(btrfs_util_set_subvolume_read_only(path, true), BTRFS_UTIL_OK);
}

static bool read_only(const char *path)
{
	bool ro = false;
	assert_int_equal(btrfs_util_get_subvolume_read_only(path, &ro), BTRFS_UTIL_OK);
	return ro;
}

/* What a call that fails on its arguments must leave as it was. */
static char *fs_state(struct harness_home *c)
{
	char *state = probe_fs_state(harness_btrfs(), c->home);
	assert_non_null(state);
	return state;
}

static btrfslayer_info info_of(struct harness_home *c, const char *id)
{
	btrfslayer_info info;
	memset(&info, 0xa5, sizeof(info));
	assert_ok(btrfslayer_layer_info(c->h, id, &info, sizeof(info), ERR));
	return info;
}

/* ---- layer info ------------------------------------------------------------------ */

static void test_info_matches_btrfs(void **state)
{
	struct harness_home *c = *state;
	char path[PATH_MAX];
	struct btrfs_util_subvolume_info sub;
	time_t before = time(NULL);
	create(c, "base", NULL, 0);
	create(c, "child", "base", 0);
	create(c, "sealed", "base", BTRFSLAYER_CREATE_READ_ONLY);
	time_t after = time(NULL);

	btrfslayer_info base = info_of(c, "base");
	layer_path(c, "base", NULL, path, sizeof(path));
	assert_int_equal(btrfs_util_subvolume_info(path, 0, &sub), BTRFS_UTIL_OK);
	assert_int_equal(base.subvolume_id, sub.id);
	assert_int_equal(base.generation, sub.generation);
	assert_int_equal(base.otime_sec, sub.otime.tv_sec);
	assert_int_equal(base.otime_nsec, sub.otime.tv_nsec);
	assert_true(base.otime_sec >= before - 1 && base.otime_sec <= after + 1);
	assert_int_equal(base.flags, 0);
	assert_string_equal(base.parent, "");

	btrfslayer_info child = info_of(c, "child");
	assert_string_equal(child.parent, "base");
	assert_int_equal(child.flags, 0);
	assert_int_not_equal(child.subvolume_id, base.subvolume_id);

	btrfslayer_info sealed = info_of(c, "sealed");
	assert_string_equal(sealed.parent, "base");
	assert_int_equal(sealed.flags, BTRFSLAYER_INFO_READ_ONLY);

	/* a grandchild names its own parent, not the first ancestor */
	create(c, "grandchild", "child", 0);
	assert_string_equal(info_of(c, "grandchild").parent, "child");

	/* nested subvolumes, read-only or not, at any depth below */
	layer_path(c, "child", "nested", path, sizeof(path));
	make_subvolume(path, false);
	assert_int_equal(info_of(c, "child").flags, BTRFSLAYER_INFO_HAS_NESTED);
	layer_path(c, "grandchild", "dir", path, sizeof(path));
	assert_int_equal(mkdir(path, 0755), 0);
	layer_path(c, "grandchild", "dir/nested", path, sizeof(path));
	make_subvolume(path, true);
	assert_int_equal(info_of(c, "grandchild").flags, BTRFSLAYER_INFO_HAS_NESTED);
}

/* A caller built against a newer header passes a bigger struct: zeros past
 * the fields the library knows. */
static void test_info_bigger_struct(void **state)
{
	struct harness_home *c = *state;
	unsigned char buf[BTRFSLAYER_INFO_SIZE_V1 + 64];
	create(c, "a", NULL, 0);
	memset(buf, 0xa5, sizeof(buf));
	assert_ok(btrfslayer_layer_info(c->h, "a", (btrfslayer_info *)(void *)buf, sizeof(buf),
					ERR));
	for (size_t i = BTRFSLAYER_INFO_SIZE_V1; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0);
	assert_int_not_equal(((btrfslayer_info *)(void *)buf)->subvolume_id, 0);
}

static void test_info_parent_gone(void **state)
{
	struct harness_home *c = *state;
	create(c, "p", NULL, 0);
	create(c, "c", "p", 0);
	assert_string_equal(info_of(c, "c").parent, "p");
	assert_ok(btrfslayer_remove(c->h, "p", ERR));
	assert_string_equal(info_of(c, "c").parent, "");
	/* a new layer under the old id is not the parent: another subvolume */
	create(c, "p", NULL, 0);
	assert_string_equal(info_of(c, "c").parent, "");
	/* a snapshot of a subvolume that is no layer of this home has no parent
	 * layer: one of a nested subvolume */
	char path[PATH_MAX], snap[PATH_MAX];
	layer_path(c, "c", "nested", path, sizeof(path));
	make_subvolume(path, false);
	layer_path(c, "p", "snap", snap, sizeof(snap));
	assert_int_equal(btrfs_util_create_snapshot(path, snap, 0, NULL, NULL), BTRFS_UTIL_OK);
	create(c, "of-p", "p", 0);
	assert_string_equal(info_of(c, "of-p").parent, "p");
}

/* Without CAP_SYS_ADMIN (a root in a default container, or a rootless
 * runtime), the uuid and root trees cannot be searched: the parent is still
 * found, by comparing the layers' uuids, and every field is the same.  A
 * child process that dropped CAP_SYS_ADMIN uses the handle opened before. */
static void test_info_without_cap_sys_admin(void **state)
{
	struct harness_home *c = *state;
	char path[PATH_MAX];
	create(c, "p", NULL, 0);
	create(c, "c", "p", 0);
	create(c, "other", NULL, 0);
	layer_path(c, "c", "nested", path, sizeof(path));
	make_subvolume(path, false);
	btrfslayer_info privileged = info_of(c, "c");
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
		struct __user_cap_data_struct caps[2];
		btrfslayer_info info;
		if (syscall(SYS_capget, &header, caps) < 0)
			_exit(100);
		caps[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective &= ~CAP_TO_MASK(CAP_SYS_ADMIN);
		caps[CAP_TO_INDEX(CAP_SYS_ADMIN)].permitted &= ~CAP_TO_MASK(CAP_SYS_ADMIN);
		if (syscall(SYS_capset, &header, caps) < 0)
			_exit(101);
		/* the fallback is taken: the privileged search is refused */
		int fd = open(c->home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		struct btrfs_ioctl_search_args args = { .key = { .tree_id = 1, .nr_items = 1 } };
		if (fd < 0 || ioctl(fd, BTRFS_IOC_TREE_SEARCH, &args) == 0 || errno != EPERM)
			_exit(102);
		close(fd);
		if (btrfslayer_layer_info(c->h, "c", &info, sizeof(info), NULL) < 0)
			_exit(103);
		_exit(strcmp(info.parent, "p") ? 104 :
		      memcmp(&info, &privileged, sizeof(info)) ? 105 : 0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_info_errors(void **state)
{
	struct harness_home *c = *state;
	btrfslayer_info info;
	char path[PATH_MAX];
	create(c, "a", NULL, 0);
	expect_fail(btrfslayer_layer_info(c->h, "missing", &info, sizeof(info), ERR), -ENOENT,
		    "missing");
	expect_fail(btrfslayer_layer_info(c->h, "a", NULL, sizeof(info), ERR), -EINVAL, "out");
	expect_fail(btrfslayer_layer_info(c->h, "a", &info, BTRFSLAYER_INFO_SIZE_V1 - 1, ERR),
		    -EINVAL, "out_size");
	expect_fail(btrfslayer_layer_info(c->h, "../a", &info, sizeof(info), ERR), -EINVAL, NULL);
	expect_fail(btrfslayer_layer_info(NULL, "a", &info, sizeof(info), ERR), -EINVAL, NULL);
	/* a plain directory where a layer would be is not a layer */
	layer_path(c, "plain", NULL, path, sizeof(path));
	assert_int_equal(mkdir(path, 0755), 0);
	expect_fail(btrfslayer_layer_info(c->h, "plain", &info, sizeof(info), ERR), -ENOENT,
		    "not a layer");
}

/* ---- seal and unseal --------------------------------------------------------------- */

static void test_seal_with_nested(void **state)
{
	struct harness_home *c = *state;
	char top[PATH_MAX], nested[PATH_MAX], deeper[PATH_MAX], ro[PATH_MAX], file[PATH_MAX];
	create(c, "img", NULL, 0);
	layer_path(c, "img", NULL, top, sizeof(top));
	layer_path(c, "img", "nested", nested, sizeof(nested));
	layer_path(c, "img", "nested/deeper", deeper, sizeof(deeper));
	layer_path(c, "img", "ro", ro, sizeof(ro));
	make_subvolume(nested, false);
	make_subvolume(deeper, false);
	make_subvolume(ro, true);

	assert_ok(btrfslayer_set_read_only(c->h, "img", 1, ERR));
	assert_true(read_only(top));
	assert_true(read_only(nested));
	assert_true(read_only(deeper));
	assert_true(read_only(ro));
	assert_int_equal(info_of(c, "img").flags,
			 BTRFSLAYER_INFO_READ_ONLY | BTRFSLAYER_INFO_HAS_NESTED);
	/* nothing in it can be written */
	layer_path(c, "img", "f", file, sizeof(file));
	assert_int_equal(write_file(file, 4096), EROFS);
	layer_path(c, "img", "nested/deeper/f", file, sizeof(file));
	assert_int_equal(write_file(file, 4096), EROFS);

	/* sealing a sealed layer: a no-op (any non-zero value seals) */
	assert_ok(btrfslayer_set_read_only(c->h, "img", 2, ERR));
	assert_true(read_only(top));

	/* unseal: the layer and everything nested in it, as the header says */
	assert_ok(btrfslayer_set_read_only(c->h, "img", 0, ERR));
	assert_false(read_only(top));
	assert_false(read_only(nested));
	assert_false(read_only(deeper));
	assert_false(read_only(ro));
	assert_int_equal(write_file(file, 4096), 0);
	assert_int_equal(info_of(c, "img").flags, BTRFSLAYER_INFO_HAS_NESTED);
	/* and unsealing an unsealed layer is a no-op too */
	assert_ok(btrfslayer_set_read_only(c->h, "img", 0, ERR));
}

/* The containers/storage order: create writable, fill, seal, then snapshot
 * it for a container; the snapshot is writable, its parent stays sealed. */
static void test_seal_then_snapshot(void **state)
{
	struct harness_home *c = *state;
	char file[PATH_MAX], top[PATH_MAX];
	create(c, "image", NULL, 0);
	layer_path(c, "image", "data", file, sizeof(file));
	assert_int_equal(write_file(file, 8192), 0);
	assert_ok(btrfslayer_set_read_only(c->h, "image", 1, ERR));
	create(c, "container", "image", 0);
	layer_path(c, "container", "more", file, sizeof(file));
	assert_int_equal(write_file(file, 4096), 0);
	layer_path(c, "image", NULL, top, sizeof(top));
	assert_true(read_only(top));
	assert_string_equal(info_of(c, "container").parent, "image");
	/* a sealed layer still goes with remove */
	assert_ok(btrfslayer_remove(c->h, "container", ERR));
	assert_ok(btrfslayer_remove(c->h, "image", ERR));
}

static void test_seal_errors(void **state)
{
	struct harness_home *c = *state;
	char path[PATH_MAX];
	create(c, "a", NULL, 0);
	layer_path(c, "plain", NULL, path, sizeof(path));
	assert_int_equal(mkdir(path, 0755), 0);
	char *before = fs_state(c);
	expect_fail(btrfslayer_set_read_only(c->h, "missing", 1, ERR), -ENOENT, "missing");
	expect_fail(btrfslayer_set_read_only(c->h, "plain", 1, ERR), -ENOENT, "not a layer");
	expect_fail(btrfslayer_set_read_only(c->h, ".a", 1, ERR), -EINVAL, NULL);
	expect_fail(btrfslayer_set_read_only(c->h, NULL, 1, ERR), -EINVAL, NULL);
	expect_fail(btrfslayer_set_read_only(NULL, "a", 1, ERR), -EINVAL, NULL);
	char *after = fs_state(c);
	assert_string_equal(before, after);
	free(before);
	free(after);

	/* a nested subvolume that cannot be reached without crossing a mount
	 * (something mounted over its directory): refused, and nothing of the
	 * layer is sealed */
	char top[PATH_MAX], sub[PATH_MAX], nested[PATH_MAX];
	create(c, "m", NULL, 0);
	layer_path(c, "m", NULL, top, sizeof(top));
	layer_path(c, "m", "sub", sub, sizeof(sub));
	layer_path(c, "m", "sub/n", nested, sizeof(nested));
	assert_int_equal(mkdir(sub, 0755), 0);
	make_subvolume(nested, false);
	assert_int_equal(mount("tmpfs", sub, "tmpfs", 0, "size=1m"), 0);
	expect_fail(btrfslayer_set_read_only(c->h, "m", 1, ERR), -EXDEV, "sub/n");
	assert_int_equal(umount2(sub, 0), 0);
	assert_false(read_only(top));
	assert_false(read_only(nested));
	assert_ok(btrfslayer_set_read_only(c->h, "m", 1, ERR));
	assert_true(read_only(nested));
}

/* ---- a layer as an fd -------------------------------------------------------------- */

static void test_get_fd(void **state)
{
	struct harness_home *c = *state;
	char path[PATH_MAX];
	struct stat by_fd, by_path;
	int fd = -2;
	create(c, "a", NULL, 0);
	layer_path(c, "a", NULL, path, sizeof(path));
	assert_ok(btrfslayer_get_fd(c->h, "a", 0, &fd, ERR));
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &by_fd), 0);
	assert_int_equal(stat(path, &by_path), 0);
	assert_int_equal(by_fd.st_dev, by_path.st_dev);
	assert_int_equal(by_fd.st_ino, by_path.st_ino);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(fcntl(fd, F_GETFL) & (O_PATH | O_ACCMODE), O_RDONLY);
	/* fd-relative work in the layer: make a file, list it */
	int f = openat(fd, "made-by-fd", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(f >= 0);
	close(f);
	layer_path(c, "a", "made-by-fd", path, sizeof(path));
	assert_int_equal(access(path, F_OK), 0);
	int dup_fd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fdopendir(dup_fd);
	assert_non_null(dir);
	closedir(dir);
	close(fd);

	/* O_PATH: the same directory, for *at() calls, not for reading */
	fd = -2;
	assert_ok(btrfslayer_get_fd(c->h, "a", BTRFSLAYER_FD_PATH, &fd, ERR));
	assert_true(fcntl(fd, F_GETFL) & O_PATH);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(fstatat(fd, "made-by-fd", &by_fd, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(fstat(fd, &by_fd), 0);
	assert_int_equal(by_fd.st_ino, by_path.st_ino);
	char buf[4096];
	assert_true(read(fd, buf, sizeof(buf)) < 0);
	close(fd);
}

static void test_get_fd_errors(void **state)
{
	struct harness_home *c = *state;
	char path[PATH_MAX], target[PATH_MAX];
	int fd = -2;
	create(c, "a", NULL, 0);
	expect_fail(btrfslayer_get_fd(c->h, "missing", 0, &fd, ERR), -ENOENT, "missing");
	assert_int_equal(fd, -1);
	fd = -2;
	expect_fail(btrfslayer_get_fd(c->h, "a", 1u << 7, &fd, ERR), -EINVAL, "flags");
	assert_int_equal(fd, -1);
	expect_fail(btrfslayer_get_fd(c->h, "a", 0, NULL, ERR), -EINVAL, "NULL");
	expect_fail(btrfslayer_get_fd(c->h, "", 0, &fd, ERR), -EINVAL, NULL);
	/* what is not a layer is refused, and nothing is followed */
	layer_path(c, "plain", NULL, path, sizeof(path));
	assert_int_equal(mkdir(path, 0755), 0);
	expect_fail(btrfslayer_get_fd(c->h, "plain", 0, &fd, ERR), -ENOENT, "not a layer");
	layer_path(c, "a", NULL, target, sizeof(target));
	layer_path(c, "link", NULL, path, sizeof(path));
	assert_int_equal(symlink(target, path), 0);
	expect_fail(btrfslayer_get_fd(c->h, "link", 0, &fd, ERR), -ENOENT, "not a layer");
	expect_fail(btrfslayer_get_fd(c->h, "link", BTRFSLAYER_FD_PATH, &fd, ERR), -ENOENT,
		    "not a layer");
	layer_path(c, "file", NULL, path, sizeof(path));
	assert_int_equal(write_file(path, 0), 0);
	expect_fail(btrfslayer_get_fd(c->h, "file", 0, &fd, ERR), -ENOENT, "not a layer");
	/* a nested subvolume is no layer of its own */
	layer_path(c, "a", "nested", path, sizeof(path));
	make_subvolume(path, false);
	expect_fail(btrfslayer_get_fd(c->h, "a/nested", 0, &fd, ERR), -EINVAL, NULL);
	assert_int_equal(fd, -1);
}

/* ---- idmapped mounts ----------------------------------------------------------------- */

#define HOST_BASE 100000u
#define MAP_SIZE 65536u

static const btrfslayer_idmap map[] = { { 0, HOST_BASE, MAP_SIZE } };

/* Attach mount_fd at a fresh directory under the btrfs mount. */
static void attach(int mount_fd, char *target, size_t len)
{
	static int n;
	snprintf(target, len, "%s/idmapped-target-%d", harness_btrfs(), ++n);
	assert_int_equal(mkdir(target, 0755), 0);
	assert_int_equal(move_mount(mount_fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH), 0);
}

static void detach(const char *target)
{
	assert_int_equal(umount2(target, 0), 0);
	assert_int_equal(rmdir(target), 0);
}

/* In a child that runs as host uid/gid `id`: create dir/name.  0 or an
 * errno.  dir is opened first, as root: the test's directories above it
 * are not for other users to traverse. */
static int create_as(uid_t id, const char *dir, const char *name)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (dirfd < 0 || setgroups(0, NULL) < 0 || setresgid(id, id, id) < 0 ||
		    setresuid(id, id, id) < 0)
			_exit(100);
		int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		_exit(fd < 0 ? errno : 0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void test_mount_idmapped(void **state)
{
	struct harness_home *c = *state;
	char target[HARNESS_HOME_MAX], path[PATH_MAX];
	struct stat st;
	int mfd = -2;
	create(c, "a", NULL, 0);
	/* on disk: owned by host root, as a layer of a home without maps is */
	layer_path(c, "a", "by-host-root", path, sizeof(path));
	assert_int_equal(write_file(path, 4096), 0);
	assert_int_equal(chown(path, 0, 0), 0);
	layer_path(c, "a", "nested", path, sizeof(path));
	make_subvolume(path, false);
	layer_path(c, "a", "nested/inside", path, sizeof(path));
	assert_int_equal(write_file(path, 4096), 0);

	btrfslayer_error *err = NULL;
	int r = btrfslayer_mount_idmapped(c->h, "a", map, 1, map, 1, 0, &mfd, &err);
	if (r == -EOPNOTSUPP && RUNNING_ON_VALGRIND) {
		/* valgrind 3.19 knows neither open_tree nor mount_setattr */
		btrfslayer_error_free(err);
		skip();
	}
	if (r < 0)
		fail_msg("mount_idmapped: %s", btrfslayer_error_message(err));
	assert_true(mfd >= 0);
	assert_true(fcntl(mfd, F_GETFD) & FD_CLOEXEC);
	attach(mfd, target, sizeof(target));
	close(mfd);

	/* a file owned by uid 0 on disk reads as the map's host id of 0 */
	snprintf(path, sizeof(path), "%s/by-host-root", target);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, HOST_BASE);
	assert_int_equal(st.st_gid, HOST_BASE);
	assert_int_equal(stat(target, &st), 0);
	assert_int_equal(st.st_uid, HOST_BASE);
	/* a nested subvolume shows through it, mapped too */
	snprintf(path, sizeof(path), "%s/nested/inside", target);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, HOST_BASE);

	/* container root (host uid HOST_BASE) creates a file through the
	 * mount: on disk it is owned by uid 0, unmapped */
	assert_int_equal(create_as(HOST_BASE, target, "by-container-root"), 0);
	assert_int_equal(create_as(HOST_BASE + 1000, target, "by-container-1000"), EACCES);
	layer_path(c, "a", "by-container-root", path, sizeof(path));
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_gid, 0);
	/* and through the mount, it is container root's */
	snprintf(path, sizeof(path), "%s/by-container-root", target);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, HOST_BASE);
	/* the layer itself is not changed: its root is still host root's */
	layer_path(c, "a", NULL, path, sizeof(path));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, 0);
	detach(target);

	/* read-only */
	mfd = -2;
	assert_ok(btrfslayer_mount_idmapped(c->h, "a", map, 1, map, 1, BTRFSLAYER_MOUNT_READ_ONLY,
					    &mfd, ERR));
	attach(mfd, target, sizeof(target));
	close(mfd);
	assert_int_equal(create_as(HOST_BASE, target, "refused"), EROFS);
	layer_path(c, "a", "refused", path, sizeof(path));
	assert_int_equal(access(path, F_OK), -1);
	detach(target);
}

static void test_mount_idmapped_errors(void **state)
{
	struct harness_home *c = *state;
	static const btrfslayer_idmap no_root[] = { { 1, HOST_BASE, 10 } };
	static const btrfslayer_idmap overlap[] = { { 0, HOST_BASE, 10 }, { 5, 0, 10 } };
	static const btrfslayer_idmap empty[] = { { 0, HOST_BASE, 0 } };
	int mfd = -2;
	create(c, "a", NULL, 0);
	char *before = fs_state(c);
	expect_fail(btrfslayer_mount_idmapped(c->h, "missing", map, 1, map, 1, 0, &mfd, ERR),
		    -ENOENT, "missing");
	assert_int_equal(mfd, -1);
	mfd = -2;
	expect_fail(btrfslayer_mount_idmapped(c->h, "a", map, 1, map, 1, 1u << 5, &mfd, ERR),
		    -EINVAL, "flags");
	assert_int_equal(mfd, -1);
	expect_fail(btrfslayer_mount_idmapped(c->h, "a", map, 1, map, 1, 0, NULL, ERR), -EINVAL,
		    "NULL");
	expect_fail(btrfslayer_mount_idmapped(c->h, "a", NULL, 0, map, 1, 0, &mfd, ERR), -EINVAL,
		    "uid map");
	expect_fail(btrfslayer_mount_idmapped(c->h, "a", map, 1, NULL, 0, 0, &mfd, ERR), -EINVAL,
		    "gid map");
	expect_fail(btrfslayer_mount_idmapped(c->h, "a", no_root, 1, map, 1, 0, &mfd, ERR),
		    -EINVAL, "container id 0 is not mapped");
	expect_fail(btrfslayer_mount_idmapped(c->h, "a", map, 1, overlap, 2, 0, &mfd, ERR),
		    -EINVAL, "gid map: entries 0 and 1 overlap");
	expect_fail(btrfslayer_mount_idmapped(c->h, "a", empty, 1, map, 1, 0, &mfd, ERR),
		    -EINVAL, "uid map");
	expect_fail(btrfslayer_mount_idmapped(c->h, "a", NULL, 1, map, 1, 0, &mfd, ERR),
		    -EINVAL, "no array");
	expect_fail(btrfslayer_mount_idmapped(c->h, "a/b", map, 1, map, 1, 0, &mfd, ERR),
		    -EINVAL, NULL);
	assert_int_equal(mfd, -1);
	char *after = fs_state(c);
	assert_string_equal(before, after);
	free(before);
	free(after);
}

/* ---- mode= ------------------------------------------------------------------------------ */

static mode_t mode_of(struct harness_home *c, const char *id)
{
	char path[PATH_MAX];
	struct stat st;
	layer_path(c, id, NULL, path, sizeof(path));
	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

static void test_create_mode(void **state)
{
	struct harness_home *c = *state;
	char path[PATH_MAX];
	create(c, "default", NULL, 0);
	assert_int_equal(mode_of(c, "default"), 0755);
	create_opts(c, "c-s", NULL, 0, "mode=0555");	/* containers/storage's */
	assert_int_equal(mode_of(c, "c-s"), 0555);
	create_opts(c, "sticky", NULL, 0, "MODE = 1777");
	assert_int_equal(mode_of(c, "sticky"), 01777);
	/* a snapshot keeps its parent's mode, unless given one */
	create(c, "snap", "c-s", 0);
	assert_int_equal(mode_of(c, "snap"), 0555);
	create_opts(c, "snap-mode", "c-s", 0, "mode=700");
	assert_int_equal(mode_of(c, "snap-mode"), 0700);
	assert_int_equal(mode_of(c, "c-s"), 0555);
	/* read-only, and still given its mode (set before the seal) */
	create_opts(c, "ro-snap", "c-s", BTRFSLAYER_CREATE_READ_ONLY, "mode=0750");
	assert_int_equal(mode_of(c, "ro-snap"), 0750);
	layer_path(c, "ro-snap", NULL, path, sizeof(path));
	assert_true(read_only(path));
	create_opts(c, "ro-empty", NULL, BTRFSLAYER_CREATE_READ_ONLY, "mode=0511");
	assert_int_equal(mode_of(c, "ro-empty"), 0511);
}

static void test_create_mode_invalid(void **state)
{
	struct harness_home *c = *state;
	static const char *const bad[] = { "mode=8", "mode=0x755", "mode=-1", "mode=17777",
					   "mode=0755a", "mode=077777", "mode=+755", "mode=7 55" };
	create(c, "base", NULL, 0);
	char *before = fs_state(c);
	for (size_t i = 0; i < N(bad); i++) {
		const char *opts[] = { bad[i] };
		expect_fail(btrfslayer_create(c->h, "new", NULL, 0, NULL, opts, 1, ERR), -EINVAL,
			    "mode=");
		expect_fail(btrfslayer_create(c->h, "new", "base", 0, NULL, opts, 1, ERR), -EINVAL,
			    "mode=");
	}
	const char *twice[] = { "mode=0755", "mode=0555" };
	expect_fail(btrfslayer_create(c->h, "new", NULL, 0, NULL, twice, 2, ERR), -EINVAL, NULL);
	const char *empty[] = { "mode=" };
	expect_fail(btrfslayer_create(c->h, "new", NULL, 0, NULL, empty, 1, ERR), -EINVAL, NULL);
	char *after = fs_state(c);
	assert_string_equal(before, after);
	free(before);
	free(after);
}

/* ---- the usage walk ---------------------------------------------------------------------- */

/* st_blocks * 512 of path, not following a symlink. */
static uint64_t allocated(const char *path)
{
	struct stat st;
	assert_int_equal(lstat(path, &st), 0);
	return (uint64_t)st.st_blocks * 512;
}

static void test_usage_walk_quotas_off(void **state)
{
	struct harness_home *c = *state;
	char path[PATH_MAX], other[PATH_MAX], target[PATH_MAX];
	btrfslayer_usage u;
	create(c, "w", NULL, 0);
	create(c, "elsewhere", NULL, 0);
	/* the layer: a directory, three files of 64 KiB (one of them hard
	 * linked twice more), a symlink to something big outside */
	layer_path(c, "w", "dir", path, sizeof(path));
	assert_int_equal(mkdir(path, 0755), 0);
	const char *files[] = { "f1", "dir/f2", "dir/f3" };
	for (size_t i = 0; i < N(files); i++) {
		layer_path(c, "w", files[i], path, sizeof(path));
		assert_int_equal(write_file(path, 65536), 0);
	}
	layer_path(c, "w", "f1", path, sizeof(path));
	layer_path(c, "w", "link1", other, sizeof(other));
	assert_int_equal(link(path, other), 0);
	layer_path(c, "w", "dir/link2", other, sizeof(other));
	assert_int_equal(link(path, other), 0);
	layer_path(c, "elsewhere", "big", target, sizeof(target));
	assert_int_equal(write_file(target, 1 << 20), 0);
	layer_path(c, "w", "symlink", path, sizeof(path));
	assert_int_equal(symlink(target, path), 0);
	layer_path(c, "w", "dirlink", path, sizeof(path));
	layer_path(c, "elsewhere", NULL, target, sizeof(target));
	assert_int_equal(symlink(target, path), 0);
	/* not the layer's: a nested subvolume and a bind mount, both holding
	 * 1 MiB */
	layer_path(c, "w", "nested", path, sizeof(path));
	make_subvolume(path, false);
	layer_path(c, "w", "nested/big", path, sizeof(path));
	assert_int_equal(write_file(path, 1 << 20), 0);
	layer_path(c, "w", "mnt", path, sizeof(path));
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(mount(target, path, "none", MS_BIND, NULL), 0);

	/* what the walk should find, by lstat */
	uint64_t want = 0;
	const char *counted[] = { "", "dir", "f1", "dir/f2", "dir/f3", "symlink", "dirlink" };
	for (size_t i = 0; i < N(counted); i++) {
		layer_path(c, "w", *counted[i] ? counted[i] : NULL, path, sizeof(path));
		want += allocated(path);
	}

	/* quotas are off: the quota path refuses, the walk answers */
	expect_fail(btrfslayer_get_usage(c->h, "w", 0, &u, sizeof(u), ERR),
		    -BTRFSLAYER_ENOQUOTA, "quotas are off");
	memset(&u, 0xa5, sizeof(u));
	int r;
	{
		btrfslayer_error *e_ = NULL;
		r = btrfslayer_get_usage(c->h, "w", BTRFSLAYER_USAGE_WALK, &u, sizeof(u), &e_);
		if (r < 0)
			fail_msg("%s", btrfslayer_error_message(e_));
	}
	layer_path(c, "w", "mnt", path, sizeof(path));
	assert_int_equal(umount2(path, 0), 0);
	/* root, dir, f1 (3 links), f2, f3, symlink, dirlink, and the mount
	 * point "mnt" is not counted: what is there is a mount */
	assert_int_equal(u.walk_inodes, 7);
	assert_int_equal(u.walk_bytes, want);
	assert_true(u.walk_bytes >= 3 * 65536 && u.walk_bytes < (1 << 20));
	assert_int_equal(u.referenced, 0);
	assert_int_equal(u.exclusive, 0);
	assert_int_equal(u.limit, 0);
	assert_int_equal(u.exclusive_limit, 0);
	assert_int_equal(u.quota_mode, 0);
	assert_int_equal(u.consistent, 0);
	layer_path(c, "w", NULL, path, sizeof(path));
	uint64_t id;
	assert_int_equal(btrfs_util_subvolume_id(path, &id), BTRFS_UTIL_OK);
	assert_int_equal(u.subvolume_id, id);

	/* an empty layer: its root */
	assert_ok(btrfslayer_get_usage(c->h, "elsewhere", BTRFSLAYER_USAGE_WALK | BTRFSLAYER_USAGE_SYNC,
				       &u, sizeof(u), ERR));
	assert_int_equal(u.walk_inodes, 2);	/* its root and big */
}

static void test_usage_walk_errors(void **state)
{
	struct harness_home *c = *state;
	btrfslayer_usage u;
	create(c, "a", NULL, 0);
	expect_fail(btrfslayer_get_usage(c->h, "a", BTRFSLAYER_USAGE_WALK, &u,
					 BTRFSLAYER_USAGE_SIZE_V2, ERR), -EINVAL, "out_size");
	expect_fail(btrfslayer_get_usage(c->h, "a", 1u << 9, &u, sizeof(u), ERR), -EINVAL, "flags");
	expect_fail(btrfslayer_get_usage(c->h, "missing", BTRFSLAYER_USAGE_WALK, &u, sizeof(u), ERR),
		    -ENOENT, "missing");
}

/* Last: it turns quotas on for the filesystem all tests share.  With
 * quotas on, the walk comes on top of the quota numbers. */
static void test_usage_walk_quotas_on(void **state)
{
	(void)state;
	char home[HARNESS_HOME_MAX], path[PATH_MAX];
	const char *opts[] = { "btrfs.quota_mode=qgroup" };
	btrfslayer *h = NULL;
	btrfslayer_usage u;
	harness_new_home(home, sizeof(home));
	assert_ok(btrfslayer_open(home, opts, 1, NULL, 0, NULL, 0, &h, ERR));
	const char *size[] = { "size=64M" };
	assert_ok(btrfslayer_create(h, "q", NULL, 0, NULL, size, 1, ERR));
	snprintf(path, sizeof(path), "%s/subvolumes/q/f", home);
	assert_int_equal(write_file(path, 65536), 0);
	assert_ok(btrfslayer_get_usage(h, "q", BTRFSLAYER_USAGE_WALK | BTRFSLAYER_USAGE_SYNC, &u,
				       sizeof(u), ERR));
	assert_int_equal(u.quota_mode, BTRFSLAYER_QUOTA_QGROUP);
	assert_int_equal(u.limit, 64 << 20);
	assert_true(u.referenced >= 65536);
	assert_int_equal(u.walk_inodes, 2);
	uint64_t want = allocated(path);
	snprintf(path, sizeof(path), "%s/subvolumes/q", home);
	assert_int_equal(u.walk_bytes, want + allocated(path));
	/* without the flag: no walk */
	assert_ok(btrfslayer_get_usage(h, "q", 0, &u, sizeof(u), ERR));
	assert_int_equal(u.walk_inodes, 0);
	assert_int_equal(u.walk_bytes, 0);
	assert_ok(btrfslayer_close(h, ERR));
}

int main(void)
{
	const char *filter = getenv("BTRFSLAYER_TEST_FILTER");
	if (filter)
		cmocka_set_test_filter(filter);
	harness_start();
#define T(f) cmocka_unit_test_setup_teardown(f, harness_home_setup, harness_home_teardown)
	const struct CMUnitTest tests[] = {
		T(test_info_matches_btrfs),
		T(test_info_bigger_struct),
		T(test_info_parent_gone),
		T(test_info_without_cap_sys_admin),
		T(test_info_errors),
		T(test_seal_with_nested),
		T(test_seal_then_snapshot),
		T(test_seal_errors),
		T(test_get_fd),
		T(test_get_fd_errors),
		T(test_mount_idmapped),
		T(test_mount_idmapped_errors),
		T(test_create_mode),
		T(test_create_mode_invalid),
		T(test_usage_walk_quotas_off),
		T(test_usage_walk_errors),
		cmocka_unit_test(test_usage_walk_quotas_on),	/* last: quotas on */
	};
	return cmocka_run_group_tests_name("integration.calls", tests, NULL, NULL);
}
