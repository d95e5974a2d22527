/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Names directly below a directory fd, reached without leaving it: no
 * symlink is followed and no mount point is crossed, so nothing planted
 * under home (a symlink, a bind mount, another filesystem) leads an
 * operation elsewhere.  openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 * RESOLVE_NO_XDEV) where the kernel has it (5.6), else openat(O_NOFOLLOW)
 * and a comparison of mount ids.
 *
 * A mount id comes from statx (STATX_MNT_ID, 5.8), else from
 * /proc/self/fdinfo/<fd> of an O_PATH fd ("mnt_id:", 3.15), else from
 * name_to_handle_at().  When none of them answers, the check fails
 * (-EOPNOTSUPP): "cannot tell" is never taken for "the same mount".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/openat2.h>

#include "internal.h"

/* The root of every subvolume is inode BTRFS_FIRST_FREE_OBJECTID (256) of
 * its tree: a stat result tells a subvolume root with no ioctl. */
#define SUBVOLUME_ROOT_INO 256

bool bl_stat_is_subvolume(const struct stat *st)
{
	return S_ISDIR(st->st_mode) && st->st_ino == SUBVOLUME_ROOT_INO;
}

bool bl_statx_is_subvolume(const struct statx *stx)
{
	return S_ISDIR(stx->stx_mode) && stx->stx_ino == SUBVOLUME_ROOT_INO;
}

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

/* Whether a failure of one way to learn a mount id only means that this
 * kernel or host does not offer it (so that the next way is worth trying). */
static bool unsupported(int r)
{
	return r == -ENOSYS || r == -EOPNOTSUPP || r == -ENOENT || r == -EPERM ||
	       r == -EACCES || r == -EINVAL || r == -EOVERFLOW;
}

/* The "mnt_id:" line of /proc/self/fdinfo/<fd> (Linux 3.15); -EOPNOTSUPP
 * when fdinfo has none, -ENOENT when there is no fdinfo (no /proc). */
static int fdinfo_mount_id(int fd, uint64_t *id)
{
	char path[sizeof("/proc/self/fdinfo/") + 3 * sizeof(int)], buf[4096];
	size_t len = 0;
	ssize_t n;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	int info = open(path, O_RDONLY | O_CLOEXEC);
	if (info < 0)
		return -errno;
	while (len < sizeof(buf) - 1 && (n = read(info, buf + len, sizeof(buf) - 1 - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int r = -errno;
			close(info);
			return r;
		}
		len += (size_t)n;
	}
	close(info);
	buf[len] = '\0';
	const char *digits = strncmp(buf, "mnt_id:", 7) ? strstr(buf, "\nmnt_id:") : buf;
	if (!digits)
		return -EOPNOTSUPP;	/* before Linux 3.15 */
	digits += (*digits == '\n') + strlen("mnt_id:");
	digits += strspn(digits, " \t");
	char *end;
	errno = 0;
	uint64_t value = strtoull(digits, &end, 10);
	if (errno || end == digits || (*end != '\n' && *end != '\0'))
		return -EIO;	/* not what the kernel writes */
	*id = value;
	return 0;
}

/* The mount id name_to_handle_at() gives with a handle of fd (Linux
 * 2.6.39; filesystems that cannot make handles say EOPNOTSUPP). */
static int handle_mount_id(int fd, uint64_t *id)
{
	struct file_handle *handle = malloc(sizeof(*handle) + MAX_HANDLE_SZ);
	int mount_id = -1, r = 0;
	if (!handle)
		return -ENOMEM;
	handle->handle_bytes = MAX_HANDLE_SZ;
	/* EOVERFLOW (a handle bigger than MAX_HANDLE_SZ) still fills in the
	 * mount id: only the id is wanted here */
	if (name_to_handle_at(fd, "", handle, &mount_id, AT_EMPTY_PATH) < 0 &&
	    (errno != EOVERFLOW || mount_id < 0))
		r = -errno;
	free(handle);
	if (r == 0)
		*id = (uint64_t)mount_id;
	return r;
}

/* The mount id of what fd holds (an O_PATH fd will do) without statx's:
 * fdinfo, then a file handle. */
static int fd_mount_id_fallback(int fd, uint64_t *id)
{
	static bool told;
	int r = fdinfo_mount_id(fd, id);
	if (r == 0)
		return 0;
	int r2 = handle_mount_id(fd, id);
	if (r2 == 0)
		return 0;
	if (!unsupported(r))
		return r;
	if (!unsupported(r2))
		return r2;
	if (!__atomic_exchange_n(&told, true, __ATOMIC_RELAXED))
		bl_log(BTRFSLAYER_LOG_WARNING, "cannot tell which mount a file is on: neither "
		       "statx (STATX_MNT_ID, Linux 5.8) nor /proc/self/fdinfo (mnt_id, Linux "
		       "3.15, /proc mounted: %s) nor name_to_handle_at() (%s) gives a mount id; "
		       "refusing what may be a mount point", strerror(-r), strerror(-r2));
	return -EOPNOTSUPP;
}

int bl_mount_id(int dirfd, const char *name, uint64_t *id)
{
	struct statx stx;
	int flags = AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | (*name ? 0 : AT_EMPTY_PATH);
	if (statx(dirfd, name, flags, STATX_MNT_ID, &stx) == 0) {
		if (stx.stx_mask & STATX_MNT_ID) {
			*id = stx.stx_mnt_id;
			return 0;
		}
	} else if (errno != ENOSYS && errno != EPERM) {
		return -errno;	/* EPERM: a seccomp filter that does not know statx */
	}
	/* before Linux 5.8 (or 4.11 for statx itself) */
	if (!*name)
		return fd_mount_id_fallback(dirfd, id);
	int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = fd_mount_id_fallback(fd, id);
	close(fd);
	return r;
}

/* 0 if name in dirfd (fd, when it is not -1, being what it names) is on
 * dirfd's mount, -EXDEV if it is a mount point; any other failure, such as
 * -EOPNOTSUPP when this kernel cannot tell, is returned as it is. */
static int same_mount(int dirfd, const char *name, int fd)
{
	uint64_t here, there;
	int r = bl_mount_id(dirfd, "", &here);
	if (r == 0)
		r = fd >= 0 ? bl_mount_id(fd, "", &there) : bl_mount_id(dirfd, name, &there);
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
	/* before Linux 5.6 (or under a tool that does not know openat2): the
	 * fd's own mount, not the name's, which may be another file by now */
	fd = openat(dirfd, name, flags);
	if (fd < 0)
		return -errno;
	r = same_mount(dirfd, name, fd);
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

int bl_open_dir_checked(int dirfd, const char *name, const char *path, btrfslayer_error **err)
{
	int fd = bl_open_dir_beneath(dirfd, name);
	if (fd >= 0 || fd == -ENOENT)
		return fd;
	if (fd == -EXDEV)
		return bl_fail_msg(err, -EXDEV, "open directory: %s: is a mount point, refusing to use it",
				   path);
	struct stat st;
	if ((fd == -ELOOP || fd == -ENOTDIR) &&
	    fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode))
		return bl_fail_msg(err, -ENOTDIR, "open directory: %s: %s, refusing to use it",
				   path, S_ISLNK(st.st_mode) ? "is a symbolic link" : "is not a directory");
	return bl_fail(err, fd, "open directory: %s", path);
}

int bl_open_file_beneath(int dirfd, const char *name, int flags)
{
	return open_beneath(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC);
}

/* Flags an O_PATH open may carry under openat2, which refuses any other. */
#define PATH_FLAGS (O_PATH | O_NOFOLLOW | O_CLOEXEC)

/* Reopen the regular file path_fd (O_PATH) holds with `flags`: the same
 * inode, never what its name leads to now. */
static int reopen(int path_fd, int flags)
{
	char proc[sizeof("/proc/self/fd/") + 3 * sizeof(int)];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", path_fd);
	/* the magic link is followed, whatever O_NOFOLLOW would say */
	int fd = open(proc, (flags & ~(O_CREAT | O_EXCL | O_NOFOLLOW)) | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	/* path_fd is open, so only a missing /proc says ENOENT: that is not
	 * "no such file" for the caller */
	return errno == ENOENT ? -EOPNOTSUPP : -errno;
}

int bl_open_regular_beneath(int dirfd, const char *name, int flags, mode_t create_mode)
{
	int r = bl_check_component(name);
	if (r < 0)
		return r;
	/* a name made a moment ago, or one another process removed between
	 * our two tries: a few rounds, then its -ENOENT */
	for (int attempt = 0; attempt < 4; attempt++) {
		if (flags & O_CREAT) {
			/* O_EXCL: a file made now is regular and cannot be a
			 * mount point; O_EXCL never follows a symlink either */
			int fd = openat(dirfd, name, flags | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
					create_mode);
			if (fd >= 0)
				return fd;
			if (errno != EEXIST || (flags & O_EXCL))
				return -errno;
		}
		int path_fd = open_beneath(dirfd, name, PATH_FLAGS);
		if (path_fd == -ENOENT && (flags & O_CREAT))
			continue;
		if (path_fd < 0)
			return path_fd;
		struct stat st;
		if (fstat(path_fd, &st) < 0)
			r = -errno;
		else if (S_ISLNK(st.st_mode))
			r = -ELOOP;	/* O_PATH | O_NOFOLLOW holds the link itself */
		else if (S_ISDIR(st.st_mode))
			r = -EISDIR;
		else if (!S_ISREG(st.st_mode))
			r = -EINVAL;	/* a device, fifo or socket: never opened */
		else
			r = reopen(path_fd, flags);
		close(path_fd);
		return r;
	}
	return -ENOENT;
}

const char *bl_refusal_reason(int r)
{
	switch (r) {
	case -ELOOP:
		return "is a symbolic link";
	case -EXDEV:
		return "is a mount point";
	case -EISDIR:
		return "is a directory";
	case -EINVAL:
		return "is not a regular file";
	default:
		return NULL;
	}
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
	r = same_mount(dirfd, name, -1);
	if (r == -EXDEV)
		return 0;	/* a subvolume mounted here from elsewhere */
	return r < 0 ? r : 1;
}

int bl_lookup_layer_on(int dirfd, uint64_t dir_mount, const char *name, struct statx *stx)
{
	/* one statx: type, inode and mount id at once (the mount id of dirfd
	 * is the caller's, read once) */
	if (statx(dirfd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT,
		  STATX_TYPE | STATX_INO | STATX_MNT_ID, stx) < 0)
		return errno == ENOSYS || errno == EPERM ? -EOPNOTSUPP : -errno;
	if (!(stx->stx_mask & STATX_MNT_ID))
		return -EOPNOTSUPP;	/* before Linux 5.8 */
	if (!bl_statx_is_subvolume(stx))
		return 0;
	return stx->stx_mnt_id == dir_mount;	/* another: mounted here */
}

int bl_path_leads_to_statx(const char *path, const struct statx *stx)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return errno == ENOENT || errno == ENOTDIR || errno == ELOOP ? -ESTALE : -errno;
	return st.st_dev == makedev(stx->stx_dev_major, stx->stx_dev_minor) &&
	       st.st_ino == stx->stx_ino ? 0 : -ESTALE;
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
