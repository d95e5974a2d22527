/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The empty template: what a plain empty layer is a snapshot of.
 *
 * An empty subvolume is not born finished: the create ioctl gives its root
 * the caller's owner and umask, and it is not durable until a commit of its
 * own.  So a layer made that way needs a reserved name, a stand-in, a chown
 * and chmod, a rename and a commit.  A snapshot is born whole instead: the
 * kernel copies the source's root (owner, mode, no entries) and commits the
 * new subvolume before the ioctl returns.  So each home keeps one empty,
 * read-only subvolume per owner, subvolumes/.empty-<mode>-<uid>-<gid>, made
 * the long way the first time a plain empty layer is asked for, and every
 * later one is a snapshot of it made under its id in one ioctl
 * (snapshot_at_id() in driver.c): a crash leaves the layer whole or absent.
 *
 * The name is never an id (ids do not start with '.'), so lists, the sweep
 * and Docker's driver pass it by.  What sits there is used only while it is
 * a subvolume root, read-only, empty (a btrfs directory's size counts its
 * entries' names), with the owner and mode its name says; anything else is
 * left alone and layers are made the long way.  A layer made from it has
 * the template as its parent uuid (never reported as a parent layer: its
 * name is not an id), and its root carries the template's times.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static void template_name(const btrfslayer *h, char *buf, size_t len)
{
	snprintf(buf, len, BL_TEMPLATE_PREFIX "%04o-%u-%u", (unsigned)BL_LAYER_ROOT_MODE,
		 (unsigned)h->root_uid, (unsigned)h->root_gid);
}

int bl_template_fits(const btrfslayer *h, int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	return bl_stat_is_subvolume(&st) && st.st_size == 0 && st.st_uid == h->root_uid &&
	       st.st_gid == h->root_gid && (st.st_mode & 07777) == BL_LAYER_ROOT_MODE;
}

/* Make the template `name` the long way: under a reserved name with its
 * stand-in (the sweep deletes it after a crash), owner, mode and seal set,
 * then renamed to `name`, which it reaches whole or not at all.  No commit:
 * the snapshot taken of it commits it.  Its fd, -EEXIST when another handle
 * made one first, or a negative errno. */
static int make_template(btrfslayer *h, const char *name, const char *path)
{
	static const uint8_t no_uuid[16];
	char tmp[BL_RESERVED_NAME_MAX];
	uint64_t born_after = 0;	/* before Linux 5.14: the other checks only */
	int r = bl_ioctl_generation(h->subvolumes_fd, &born_after);
	if (r < 0 && r != -EOPNOTSUPP)
		return r;
	bl_reserved_name(h, BL_TMP_PREFIX, tmp);
	r = bl_staging_announce(h, tmp);
	if (r < 0)
		return r;
	r = bl_ioctl_subvolume_create(h->subvolumes_fd, tmp);
	if (r < 0) {
		bl_staging_retire(h, tmp);
		return r;
	}
	/* what sits at the reserved name must be what was just made: an
	 * empty subvolume nobody's snapshot, born now; anything else was put
	 * there by someone else, and is left alone (so, unfound, is ours) */
	int fd = bl_open_dir_beneath(h->subvolumes_fd, tmp);
	if (fd < 0 && fd != -EXDEV && fd != -ENOENT)
		fd = bl_open_dir_beneath(h->subvolumes_fd, tmp);	/* a second try */
	if (fd < 0) {
		bl_note_leftover(h);	/* the sweep at close deletes it */
		return fd;
	}
	struct bl_subvolume_info info;
	struct stat st;
	r = bl_ioctl_subvolume_info(fd, &info);
	if (r == 0 && fstat(fd, &st) < 0)
		r = -errno;
	if (r == 0 && (info.created < born_after || memcmp(info.parent_uuid, no_uuid, 16) ||
		       st.st_size != 0)) {
		close(fd);
		bl_staging_retire(h, tmp);
		return -EAGAIN;
	}
	if (r == 0 && fchown(fd, h->root_uid, h->root_gid) < 0)
		r = -errno;
	if (r == 0 && fchmod(fd, BL_LAYER_ROOT_MODE) < 0)
		r = -errno;
	if (r == 0)
		r = bl_ioctl_set_read_only(fd, true);
	if (r == 0 && renameat2(h->subvolumes_fd, tmp, h->subvolumes_fd, name, RENAME_NOREPLACE) < 0)
		r = -errno;
	if (r == 0) {
		struct stat at, ours;
		if (fstatat(h->subvolumes_fd, name, &at, AT_SYMLINK_NOFOLLOW) == 0 &&
		    fstat(fd, &ours) == 0 && at.st_dev == ours.st_dev && at.st_ino == ours.st_ino) {
			bl_staging_retire(h, tmp);
			return fd;
		}
		/* swapped for something else at once: ours is deleted by fd */
		r = -EAGAIN;
	}
	int c = bl_tree_destroy(h, fd, path, NULL, NULL);
	close(fd);
	if (c == 0)
		bl_staging_retire(h, tmp);
	else
		bl_note_leftover(h);
	return r;
}

/* Open the template at its name, making it when there is none.  Called
 * with template_lock. */
static int open_template(btrfslayer *h)
{
	char name[BL_RESERVED_NAME_MAX + 32], path[PATH_MAX];
	template_name(h, name, sizeof(name));
	bl_layer_path(h, name, path, sizeof(path));
	int fd = -ENOENT;
	for (int attempt = 0; fd == -ENOENT && attempt < 2; attempt++) {
		fd = bl_open_dir_beneath(h->subvolumes_fd, name);
		if (fd == -ENOENT) {
			fd = make_template(h, name, path);
			if (fd == -EEXIST)	/* another handle's, made meanwhile */
				fd = -ENOENT;
		}
	}
	if (fd < 0) {
		bl_log(BTRFSLAYER_LOG_DEBUG, "empty template %s: %s; empty layers are made "
		       "without it", path, btrfslayer_strerror(fd));
		return fd;
	}
	struct bl_subvolume_info info;
	if (bl_template_fits(h, fd) == 1 && bl_ioctl_subvolume_info(fd, &info) == 0 &&
	    info.read_only)
		return fd;
	if (!h->template_refused)
		bl_log(BTRFSLAYER_LOG_WARNING, "%s is not an empty, read-only subvolume of mode "
		       "%04o owned by %u:%u: left alone; empty layers are made without it", path,
		       (unsigned)BL_LAYER_ROOT_MODE, (unsigned)h->root_uid, (unsigned)h->root_gid);
	h->template_refused = true;
	close(fd);
	return -EINVAL;
}

int bl_template_get(btrfslayer *h)
{
	pthread_mutex_lock(&h->template_lock);
	if (h->template_fd >= 0 && bl_template_fits(h, h->template_fd) != 1) {
		close(h->template_fd);
		h->template_fd = -1;
	}
	if (h->template_fd < 0) {
		int fd = open_template(h);
		h->template_fd = fd < 0 ? -1 : fd;
	}
	/* a copy: another thread may drop the handle's meanwhile */
	int fd = h->template_fd >= 0 ? fcntl(h->template_fd, F_DUPFD_CLOEXEC, 0) : -1;
	pthread_mutex_unlock(&h->template_lock);
	return fd;
}

void bl_template_forget(btrfslayer *h)
{
	pthread_mutex_lock(&h->template_lock);
	if (h->template_fd >= 0)
		close(h->template_fd);
	h->template_fd = -1;
	pthread_mutex_unlock(&h->template_lock);
}

void bl_template_init(btrfslayer *h)
{
	h->template_fd = -1;
	pthread_mutex_init(&h->template_lock, NULL);
}

void bl_template_close(btrfslayer *h)
{
	if (h->template_fd >= 0)
		close(h->template_fd);
	h->template_fd = -1;
}
