/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The pieces of a layer's changes (changes.c) that both ways to them, the
 * walk (changes_walk.c) and the send stream (changes_send.c), share: one
 * path as it stands in one tree, whether it differs from the other tree's,
 * and the growing list of changes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "internal.h"

#define CAPABILITY_XATTR "security.capability"

/* ---- one path in one tree ------------------------------------------------- */

#ifndef SYS_getxattrat
#define SYS_getxattrat 464	/* Linux 6.13, the same number on every arch */
#endif
/* struct xattr_args of the kernel (read by it, not by us) */
struct xattr_args_v0 {
	uint64_t value;	/* cppcheck-suppress unusedStructMember */
	uint32_t size;	/* cppcheck-suppress unusedStructMember */
	uint32_t flags;	/* cppcheck-suppress unusedStructMember */
};

/* security.capability of `name` in dirfd ("" for dirfd itself), without
 * following a symlink: getxattrat(2) where the kernel has it, else
 * lgetxattr(2) through /proc/self/fd (the directory stays pinned by its fd). */
static int read_capability(int dirfd, const char *name, struct bl_entry *e)
{
	static int no_getxattrat;
	ssize_t n = -1;
	if (!__atomic_load_n(&no_getxattrat, __ATOMIC_RELAXED)) {
		struct xattr_args_v0 args = { .value = (uint64_t)(uintptr_t)e->cap,
					      .size = sizeof(e->cap) };
		n = syscall(SYS_getxattrat, dirfd, name,
			    AT_SYMLINK_NOFOLLOW | (*name ? 0 : AT_EMPTY_PATH), CAPABILITY_XATTR,
			    &args, sizeof(args));
		if (n < 0 && errno == ENOSYS)
			__atomic_store_n(&no_getxattrat, 1, __ATOMIC_RELAXED);
		else
			goto done;
	}
	char path[64 + NAME_MAX];
	snprintf(path, sizeof(path), "/proc/self/fd/%d%s%s", dirfd, *name ? "/" : "", name);
	n = lgetxattr(path, CAPABILITY_XATTR, e->cap, sizeof(e->cap));
done:
	if (n >= 0) {
		e->cap_len = (size_t)n;
		return 0;
	}
	e->cap_len = 0;
	/* none, or a file system or file type without xattrs */
	if (errno == ENODATA || errno == ENOTSUP || errno == EPERM)
		return 0;
	return errno == ERANGE ? -EFBIG : -errno;
}

int bl_entry_at(int dirfd, const char *name, struct bl_entry *e)
{
	struct stat st;
	memset(e, 0, sizeof(*e));
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW | (*name ? 0 : AT_EMPTY_PATH)) < 0)
		return errno == ENOENT ? 0 : -errno;
	e->exists = true;
	e->st.mode = st.st_mode;
	e->st.uid = st.st_uid;
	e->st.gid = st.st_gid;
	e->st.rdev = st.st_rdev;
	e->st.size = (uint64_t)st.st_size;
	e->st.ino = st.st_ino;
	e->st.nlink = st.st_nlink;
	e->st.mtime_sec = st.st_mtim.tv_sec;
	e->st.mtime_nsec = (uint32_t)st.st_mtim.tv_nsec;
	return read_capability(dirfd, name, e);
}

int bl_entry_lookup(int root_fd, const char *path, struct bl_entry *e)
{
	memset(e, 0, sizeof(*e));
	if (root_fd < 0)
		return 0;
	while (*path == '/')
		path++;
	if (!*path)
		return bl_entry_at(root_fd, "", e);
	const char *slash = strrchr(path, '/');
	if (!slash)
		return bl_entry_at(root_fd, path, e);
	char dir[PATH_MAX];
	size_t len = (size_t)(slash - path);
	if (len >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, path, len);
	dir[len] = '\0';
	int fd = bl_open_path_beneath(root_fd, dir);
	/* a missing directory, or a symlink or a file on the way: not there */
	if (fd == -ENOENT || fd == -ENOTDIR || fd == -ELOOP)
		return 0;
	if (fd < 0)
		return fd;
	int r = bl_entry_at(fd, slash + 1, e);
	close(fd);
	return r;
}

/* Docker's sameFsTimeSpec(). */
static bool same_time(const struct bl_entry *a, const struct bl_entry *b)
{
	return a->st.mtime_sec == b->st.mtime_sec &&
	       (a->st.mtime_nsec == b->st.mtime_nsec || !a->st.mtime_nsec || !b->st.mtime_nsec);
}

bool bl_entry_differs(const struct bl_entry *before, const struct bl_entry *now)
{
	if (before->st.mode != now->st.mode || before->st.uid != now->st.uid ||
	    before->st.gid != now->st.gid || before->st.rdev != now->st.rdev)
		return true;
	/* a directory's size and mtime say nothing (moby#9874) */
	if (!S_ISDIR(before->st.mode) &&
	    (!same_time(before, now) || before->st.size != now->st.size))
		return true;
	return before->cap_len != now->cap_len || memcmp(before->cap, now->cap, now->cap_len);
}

/* ---- the list ------------------------------------------------------------- */

int bl_change_list_add(struct bl_change_list *l, const char *path, int kind,
		       const struct bl_entry *now, const struct bl_entry *before)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		struct bl_change *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	struct bl_change *c = &l->v[l->n];
	c->path = strdup(path);
	if (!c->path)
		return -ENOMEM;
	c->kind = kind;
	c->mode = now && now->exists ? now->st.mode : 0;
	c->parent_mode = before && before->exists ? before->st.mode : 0;
	c->replaced = now && before && now->exists && before->exists &&
		      now->st.ino != before->st.ino;
	l->n++;
	return 0;
}

void bl_change_list_free(struct bl_change_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
	memset(l, 0, sizeof(*l));
}
