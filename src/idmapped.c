/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * btrfslayer_mount_idmapped(): a detached, idmapped mount of a layer, so
 * that a runtime shows a layer to a user namespace without chowning it
 * (O(1) instead of O(files)), and the layer stays shareable.
 *
 * An idmapped mount translates ids with a user namespace: with a map
 * "container 0 is host H", a file stored as uid 0 is seen through the mount
 * as uid H, and a file created through the mount by a caller whose fsuid is
 * H (container root) is stored as uid 0.  The user namespace exists only to
 * carry the maps: a child process is cloned into a new one, its maps are
 * written, /proc/<pid>/ns/user is opened, and the child is released and
 * reaped.  The child runs no code of the caller's (raw clone, no atfork
 * handlers) and sends no SIGCHLD (exit signal 0), so a runtime's own child
 * handling never sees it.
 *
 * Kernel: open_tree (5.2), mount_setattr with MOUNT_ATTR_IDMAP (5.12), and
 * idmapped mounts on btrfs (5.15).  Privilege: CAP_SYS_ADMIN in the initial
 * user namespace (btrfs is not mountable in another), and the right to
 * write the maps (CAP_SETUID/CAP_SETGID over the host ids).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

/* The kernel's limit on lines in uid_map and gid_map (Linux 4.15). */
#define MAP_LINES_MAX 340

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Write /proc/<pid>/<file> ("uid_map" or "gid_map") in one write(2), as
 * the kernel wants it. */
static int write_map(pid_t pid, const char *file, const btrfslayer_idmap *map, size_t n,
		     btrfslayer_error **err)
{
	/* a line is at most 3 * 10 digits, 2 spaces and a newline */
	char text[MAP_LINES_MAX * 33 + 1], path[64];
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "%" PRIu32 " %" PRIu32
					" %" PRIu32 "\n", map[i].container_id, map[i].host_id,
					map[i].size);
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	int r = fd < 0 ? -errno : write_all(fd, text, len);
	if (fd >= 0)
		close(fd);
	if (r < 0)
		return bl_fail(err, r, "idmapped mount: write the user namespace's %s", file);
	return 0;
}

/* A user namespace with the given maps, as an fd (close() it). */
static int make_userns(const btrfslayer_idmap *uid_map, size_t n_uid_map,
		       const btrfslayer_idmap *gid_map, size_t n_gid_map, btrfslayer_error **err)
{
	int hold[2];
	if (pipe2(hold, O_CLOEXEC) < 0)
		return bl_fail(err, -errno, "idmapped mount: make a user namespace: pipe");
	/* a fork-like clone: the child gets a copy of this thread only, and
	 * exit signal 0 (no SIGCHLD) */
	pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)CLONE_NEWUSER, NULL, NULL, NULL, NULL);
	if (pid == 0) {
		/* the child, raw syscalls only: it waits to be killed once the
		 * parent has its namespace; if the parent dies first, the
		 * death signal or EOF on the pipe ends it */
		char c;
		syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		syscall(SYS_close, hold[1]);
		while (syscall(SYS_read, hold[0], &c, 1) < 0)
			;
		syscall(SYS_exit_group, 0);
	}
	int r = pid < 0 ? -errno : 0;
	close(hold[0]);
	if (r < 0) {
		close(hold[1]);
		if (r == -EINVAL || r == -ENOSYS)
			return bl_fail_msg(err, -EOPNOTSUPP, "idmapped mount: the kernel cannot make "
					   "user namespaces (%s)", btrfslayer_strerror(r));
		return bl_fail(err, r, "idmapped mount: make a user namespace");
	}
	r = write_map(pid, "uid_map", uid_map, n_uid_map, err);
	if (r == 0)
		r = write_map(pid, "gid_map", gid_map, n_gid_map, err);
	int ns = -1;
	if (r == 0) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
		ns = open(path, O_RDONLY | O_CLOEXEC);
		if (ns < 0)
			r = bl_fail(err, -errno, "idmapped mount: open %s", path);
	}
	kill(pid, SIGKILL);	/* the child ends */
	close(hold[1]);
	while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR)
		;
	return r < 0 ? r : ns;
}

/* Explain why mount_setattr() refused an idmapped mount. */
static int setattr_failed(int r, const char *path, btrfslayer_error **err)
{
	if (r == -ENOSYS)
		return bl_fail_msg(err, -EOPNOTSUPP, "idmapped mount: %s: the kernel has no "
				   "mount_setattr (Linux 5.12)", path);
	if (r == -EINVAL)
		return bl_fail_msg(err, -EOPNOTSUPP, "idmapped mount: %s: the kernel cannot make "
				   "idmapped mounts of btrfs (Linux 5.15)", path);
	if (r == -EPERM)
		return bl_fail_msg(err, -EPERM, "idmapped mount: %s: not permitted (needs "
				   "CAP_SYS_ADMIN in the initial user namespace)", path);
	return bl_fail(err, r, "idmapped mount: %s: set the id mapping", path);
}

BTRFSLAYER_API int btrfslayer_mount_idmapped(btrfslayer *h, const char *id,
					     const btrfslayer_idmap *uid_map, size_t n_uid_map,
					     const btrfslayer_idmap *gid_map, size_t n_gid_map,
					     uint32_t flags, int *mount_fd,
					     btrfslayer_error **err)
{
	char path[PATH_MAX];
	uint32_t root;
	if (mount_fd)
		*mount_fd = -1;
	int r = bl_check_handle_and_id(h, id, err);
	if (r < 0)
		return r;
	if (flags & ~BTRFSLAYER_MOUNT_MASK)
		return bl_fail_msg(err, -EINVAL, "idmapped mount of layer %s: unknown flags 0x%"
				   PRIx32, id, flags & ~BTRFSLAYER_MOUNT_MASK);
	if (!mount_fd)
		return bl_fail_msg(err, -EINVAL, "idmapped mount of layer %s: no place for the "
				   "mount fd (NULL)", id);
	/* the maps as open checks them, and present: a namespace with no map
	 * would show every file as the overflow id */
	if (!n_uid_map || !n_gid_map)
		return bl_fail_msg(err, -EINVAL, "idmapped mount of layer %s: needs a uid map and "
				   "a gid map", id);
	if (n_uid_map > MAP_LINES_MAX || n_gid_map > MAP_LINES_MAX)
		return bl_fail_msg(err, -EINVAL, "idmapped mount of layer %s: a map has more than "
				   "%d entries", id, MAP_LINES_MAX);
	if ((r = bl_idmap_root(uid_map, n_uid_map, "uid map", &root, err)) < 0 ||
	    (r = bl_idmap_root(gid_map, n_gid_map, "gid map", &root, err)) < 0)
		return r;
	/* a read-only handle hands out read-only mounts only: writing through
	 * the mount would change a store it promised not to change */
	if (!(flags & BTRFSLAYER_MOUNT_READ_ONLY) &&
	    (r = bl_check_writable(h, "writable idmapped mount of layer", err)) < 0)
		return r;

	int fd = bl_open_layer(h, id, "idmapped mount of layer", err);
	if (fd < 0)
		return fd;
	bl_layer_path(h, id, path, sizeof(path));
	int tree = open_tree(fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
	close(fd);
	if (tree < 0) {
		r = -errno;
		if (r == -ENOSYS)
			return bl_fail_msg(err, -EOPNOTSUPP, "idmapped mount: %s: the kernel has no "
					   "open_tree (Linux 5.2)", path);
		return bl_fail(err, r, "idmapped mount: %s: clone the layer's mount", path);
	}
	int ns = make_userns(uid_map, n_uid_map, gid_map, n_gid_map, err);
	if (ns < 0) {
		close(tree);
		return ns;
	}
	struct mount_attr attr = {
		.attr_set = MOUNT_ATTR_IDMAP | ((flags & BTRFSLAYER_MOUNT_READ_ONLY) ?
						MOUNT_ATTR_RDONLY : 0),
		.userns_fd = (uint64_t)ns,
	};
	r = mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0 ? -errno : 0;
	close(ns);
	if (r < 0) {
		close(tree);
		return setattr_failed(r, path, err);
	}
	*mount_fd = tree;
	return 0;
}
