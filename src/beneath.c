/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Names directly below a directory fd, reached without leaving it: no
 * symlink is followed and no mount point is crossed, so nothing planted
 * under home (a symlink, a bind mount, another filesystem) leads an
 * operation elsewhere.  openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 * RESOLVE_NO_XDEV) where the kernel has it (5.6), else openat(O_NOFOLLOW)
 * and a comparison of mount ids (statx, 5.8).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/openat2.h>

#include "internal.h"

#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

int bl_check_component(const char *name)
{
	if (!name || !*name || !strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	size_t len = strnlen(name, NAME_MAX + 1);
	if (len > NAME_MAX)
		return -ENAMETOOLONG;
	return memchr(name, '/', len) ? -EINVAL : 0;
}

int bl_mount_id(int dirfd, const char *name, uint64_t *id)
{
	struct statx stx;
	int flags = AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | (*name ? 0 : AT_EMPTY_PATH);
	if (statx(dirfd, name, flags, STATX_MNT_ID, &stx) < 0)
		return -errno;
	if (!(stx.stx_mask & STATX_MNT_ID))
		return -EOPNOTSUPP;	/* before Linux 5.8 */
	*id = stx.stx_mnt_id;
	return 0;
}

/* 0 if name in dirfd is on dirfd's mount, -EXDEV if it is a mount point. */
static int same_mount(int dirfd, const char *name)
{
	uint64_t here, there;
	int r = bl_mount_id(dirfd, "", &here);
	if (r == 0)
		r = bl_mount_id(dirfd, name, &there);
	if (r == -EOPNOTSUPP || r == -ENOSYS)
		return 0;	/* before Linux 5.8: openat2 did the check */
	if (r < 0)
		return r;
	return here == there ? 0 : -EXDEV;
}

/* Set once openat2 turned out to be missing: ask once, not on every call. */
static bool no_openat2;

/* openat2() beneath dirfd with every resolve restriction, or -ENOSYS. */
static int openat2_beneath(int dirfd, const char *path, int flags)
{
	if (__atomic_load_n(&no_openat2, __ATOMIC_RELAXED))
		return -ENOSYS;
	struct open_how how = {
		.flags = (uint64_t)flags,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
			   RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
	};
	int fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	if (fd >= 0)
		return fd;
	if (errno == ENOSYS)
		__atomic_store_n(&no_openat2, true, __ATOMIC_RELAXED);
	return -errno;
}

static int open_beneath(int dirfd, const char *name, int flags)
{
	int r = bl_check_component(name);
	if (r < 0)
		return r;
	int fd = openat2_beneath(dirfd, name, flags);
	if (fd != -ENOSYS)
		return fd;
	/* before Linux 5.6 (or under a tool that does not know openat2) */
	fd = openat(dirfd, name, flags);
	if (fd < 0)
		return -errno;
	r = same_mount(dirfd, name);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

int bl_open_dir_beneath(int dirfd, const char *name)
{
	return open_beneath(dirfd, name, DIR_FLAGS);
}

int bl_open_file_beneath(int dirfd, const char *name, int flags)
{
	return open_beneath(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC);
}

int bl_lookup_layer(int dirfd, const char *name)
{
	struct stat st;
	int r = bl_check_component(name);
	if (r < 0)
		return r;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!bl_stat_is_subvolume(&st))
		return 0;
	r = same_mount(dirfd, name);
	if (r == -EXDEV)
		return 0;	/* a subvolume mounted here from elsewhere */
	return r < 0 ? r : 1;
}

int bl_path_leads_to(const char *path, int fd)
{
	struct stat by_path, by_fd;
	if (fstat(fd, &by_fd) < 0)
		return -errno;
	if (stat(path, &by_path) < 0)
		return errno == ENOENT || errno == ENOTDIR || errno == ELOOP ? -ESTALE : -errno;
	return by_path.st_dev == by_fd.st_dev && by_path.st_ino == by_fd.st_ino ? 0 : -ESTALE;
}

int bl_open_path_beneath(int dirfd, const char *path)
{
	if (!path || !*path || *path == '/')
		return -EINVAL;
	if (strnlen(path, PATH_MAX) >= PATH_MAX)
		return -ENAMETOOLONG;
	int fd = openat2_beneath(dirfd, path, DIR_FLAGS);
	if (fd != -ENOSYS)
		return fd;
	/* one component at a time, each checked like a single name */
	fd = -EINVAL;
	char name[NAME_MAX + 1];
	int cur = -1;
	const char *p = path;
	while (*p) {
		size_t len = strcspn(p, "/");
		if (len > NAME_MAX) {
			fd = -ENAMETOOLONG;
			break;
		}
		memcpy(name, p, len);
		name[len] = '\0';
		p += len;
		while (*p == '/')
			p++;
		if (len == 0 || !strcmp(name, "."))
			continue;
		fd = bl_open_dir_beneath(cur < 0 ? dirfd : cur, name);
		if (cur >= 0)
			close(cur);
		cur = -1;
		if (fd < 0)
			break;
		cur = fd;
	}
	/* "..", a symlink, a mount point or a missing name on the way */
	return cur >= 0 ? cur : fd;
}
