/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Home as a mount point of its own.
 *
 * Shared mount propagation between a container and the host does not work
 * on btrfs unless home is a mount point.  A home that is a plain directory
 * gets a bind mount of itself at open, which the same handle removes at
 * close.
 *
 * "Is a mount point" is asked of this process's mount table, through
 * libmount.  Device numbers cannot answer it: every btrfs subvolume has an
 * st_dev of its own, mount point or not.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libmount.h>

#include "internal.h"

#define MOUNT_TABLE "/proc/self/mountinfo"

/* The id of the topmost mount whose mount point is `path` (canonical), or 0
 * when path is no mount point. */
static int topmost_mount_at(const char *path, uint64_t *id)
{
	struct libmnt_table *table = mnt_new_table();
	if (!table)
		return -ENOMEM;
	int r = mnt_table_parse_file(table, MOUNT_TABLE);
	if (r == 0) {
		/* the table lists mounts in the order they were attached, so
		 * the last one at path is the one a lookup of path reaches */
		struct libmnt_fs *fs = mnt_table_find_target(table, path, MNT_ITER_BACKWARD);
		*id = fs ? (uint64_t)mnt_fs_get_id(fs) : 0;
	}
	mnt_unref_table(table);
	return r < 0 ? r : 0;
}

/* Bind-mount home onto itself through its fd, so that the mount lands on the
 * directory that was checked, not on whatever the path names by now.  The
 * mount's id and a directory fd on it come back. */
static int bind_by_fd(btrfslayer *h, uint64_t *made, int *fd)
{
	int tree = open_tree(h->home_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
	if (tree < 0)
		return -errno;
	/* the clone keeps its id when attached: learn it before that, so that
	 * once attached, nothing stands between the mount and its record */
	int r = bl_mount_id(tree, "", made);
	if (r == 0 && move_mount(tree, "", h->home_fd, "",
				 MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		r = -errno;
	if (r == 0 && (*fd = openat(tree, ".", BL_DIR_FLAGS)) < 0) {
		r = -errno;
		umount2(h->home, UMOUNT_NOFOLLOW);	/* ours: attached a moment ago */
	}
	close(tree);
	return r;
}

/* The same with mount(2) on the path, which is then checked, by fd, to have
 * covered our directory and not something put in its place. */
static int bind_by_path(btrfslayer *h, uint64_t *made, int *fd)
{
	struct stat old, new;
	if (mount(h->home, h->home, "none", MS_BIND, NULL) < 0)
		return -errno;
	*fd = open(h->home, BL_DIR_FLAGS);
	int r = *fd < 0 ? -errno : bl_mount_id(*fd, "", made);
	if (r == 0 && (fstat(*fd, &new) < 0 || fstat(h->home_fd, &old) < 0))
		r = -errno;
	if (r == 0 && (new.st_dev != old.st_dev || new.st_ino != old.st_ino))
		r = -EAGAIN;	/* home was replaced under us */
	if (r < 0) {
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		umount2(h->home, UMOUNT_NOFOLLOW);
	}
	return r;
}

int bl_home_mount(btrfslayer *h, btrfslayer_error **err)
{
	uint64_t at_home, home_fd_on, made;
	int r = topmost_mount_at(h->home, &at_home);
	if (r == 0)
		r = bl_mount_id(h->home_fd, "", &home_fd_on);
	if (r < 0)
		return bl_fail(err, r, "look up home in the mount table " MOUNT_TABLE ": %s",
			       h->home);
	if (at_home && at_home == home_fd_on)
		return 0;	/* a mount point already, whoever made it */
	if (at_home)
		return bl_fail_msg(err, -EAGAIN, "open home: %s: mounted over while being opened",
				   h->home);

	int fd = -1;
	r = bind_by_fd(h, &made, &fd);
	if (r == -ENOSYS)	/* before Linux 5.2, or under valgrind */
		r = bind_by_path(h, &made, &fd);
	if (r < 0)
		return bl_fail(err, r, "bind-mount home onto itself "
			       "(btrfs.mount_home=false turns this off): %s", h->home);
	h->home_mount_id = made;	/* from here on, close unmounts it */
	/* The old home_fd is on the mount below: a container's mount
	 * propagation happens on the new one, so the handle must work there. */
	close(h->home_fd);
	h->home_fd = fd;

	/* get() hands out paths under home: they must reach the new mount */
	r = topmost_mount_at(h->home, &at_home);
	if (r < 0)
		return bl_fail(err, r, "look up home in the mount table " MOUNT_TABLE ": %s",
			       h->home);
	if (at_home != made)
		return bl_fail_msg(err, -EAGAIN, "bind-mount home onto itself: %s: "
				   "the mount is not where the path leads (home moved?)", h->home);
	return 0;
}

int bl_home_unmount(btrfslayer *h, btrfslayer_error **err)
{
	uint64_t at_home;
	if (!h->home_mount_id)
		return 0;
	/* home_fd, reopened on our mount, pins it: no other mount can have
	 * taken over its id, so equal ids mean it is still ours, on top. */
	int r = topmost_mount_at(h->home, &at_home);
	if (r < 0)
		return bl_fail(err, r, "look up home in the mount table " MOUNT_TABLE ": %s",
			       h->home);
	if (at_home != h->home_mount_id) {
		bl_log(BTRFSLAYER_LOG_WARNING, "close: %s: the bind mount this handle made is "
		       "gone or covered by another; leaving the mounts at home alone", h->home);
		return 0;
	}
	if (h->subvolumes_fd >= 0)
		close(h->subvolumes_fd);
	close(h->home_fd);
	h->subvolumes_fd = h->home_fd = -1;
	/* Not MNT_DETACH: a busy mount (another handle on this home, a process
	 * whose cwd is in it, a mount below it) stays, and the caller hears
	 * EBUSY.  A lazy detach would hide it from view while in use. */
	if (umount2(h->home, UMOUNT_NOFOLLOW) < 0)
		return bl_fail(err, -errno, "unmount home (the bind mount open made): %s", h->home);
	return 0;
}
