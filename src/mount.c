/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Home as a mount point of its own.
 *
 * Shared mount propagation between a container and the host does not work
 * on btrfs unless home is a mount point.  A home that is a plain directory
 * gets a bind mount of itself at open.  The mount belongs to the home, not
 * to the handle that made it: every handle with btrfs.mount_home=true works
 * through it, and the last one to close takes it down.
 *
 * HOME/.mount records it (boot id, mount id, unique mount id where the
 * kernel has one): a mount at home that the record does not name is someone
 * else's and is never touched.  Opens and closes decide under the home lock
 * (session.c), so "last" is exact: a closer that sees no other session slot
 * knows every other opener is still to take the home lock.  Only a busy
 * unmount (a working directory under home, an opener that already resolved
 * home on it) leaves the mount, still recorded, for the next open to adopt.
 * The record needs no fsync: a mount does not outlive a boot, and a record
 * of another boot counts as none.
 *
 * "Is a mount point" is asked of this process's mount table, through
 * libmount.  Device numbers cannot answer it: every btrfs subvolume has an
 * st_dev of its own, mount point or not.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libmount.h>

#include "internal.h"

#define MOUNT_TABLE "/proc/self/mountinfo"
#define MOUNT_FILE ".mount"
#define BOOT_ID "/proc/sys/kernel/random/boot_id"
#define BOOT_ID_MAX 40
#define RECORD_MAX 128
/* How often open resolves home again when the mounts at home change
 * between its look at the table and its open (someone else's mount). */
#define RESOLVE_ATTEMPTS 8
#ifndef STATX_MNT_ID_UNIQUE
#define STATX_MNT_ID_UNIQUE 0x00004000U	/* Linux 6.8; not in older headers */
#endif

struct mount_record {
	char boot[BOOT_ID_MAX];
	uint64_t id;		/* as in /proc/self/mountinfo */
	uint64_t unique;	/* never reused within a boot; 0: unknown */
};

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

/* Whether mount `id` is one of the mounts stacked at `path`. */
static int mounted_at(const char *path, uint64_t id, bool *present)
{
	struct libmnt_table *table = mnt_new_table();
	struct libmnt_iter *it = mnt_new_iter(MNT_ITER_FORWARD);
	struct libmnt_fs *fs;
	int r = table && it ? mnt_table_parse_file(table, MOUNT_TABLE) : -ENOMEM;
	*present = false;
	while (r == 0 && mnt_table_next_fs(table, it, &fs) == 0) {
		const char *target = mnt_fs_get_target(fs);
		if (target && !strcmp(target, path) && (uint64_t)mnt_fs_get_id(fs) == id)
			*present = true;
	}
	mnt_free_iter(it);
	mnt_unref_table(table);
	return r < 0 ? r : 0;
}

/* The mount id no later mount reuses, of the mount fd is on; 0 before
 * Linux 6.8. */
static uint64_t unique_mount_id(int fd)
{
	struct statx stx;
	if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID_UNIQUE, &stx) < 0 ||
	    !(stx.stx_mask & STATX_MNT_ID_UNIQUE))
		return 0;
	return stx.stx_mnt_id;
}

static bool on_mount(int fd, uint64_t id)
{
	uint64_t on;
	return fd >= 0 && bl_mount_id(fd, "", &on) == 0 && on == id;
}

static void boot_id(char buf[BOOT_ID_MAX])
{
	int fd = open(BOOT_ID, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, BOOT_ID_MAX - 1);
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	if (!*buf)
		strcpy(buf, "unknown");
}

/* The directory fd the records are kept through: the private one when the
 * handle has it. */
static int record_dir(const btrfslayer *h)
{
	return h->base_fd >= 0 ? h->base_fd : h->home_fd;
}

/* HOME/.mount, if there is one of this boot.  Anything unreadable counts as
 * none: a mount the library cannot prove to be its own is left alone. */
static bool record_read(const btrfslayer *h, struct mount_record *rec)
{
	char text[RECORD_MAX], path[PATH_MAX], now[BOOT_ID_MAX], extra;
	btrfslayer_error *err = NULL;
	snprintf(path, sizeof(path), "%s/" MOUNT_FILE, h->home);
	int r = bl_record_read(record_dir(h), MOUNT_FILE, text, sizeof(text), path, &err);
	if (r == -ENOENT)
		return false;
	if (r < 0 || sscanf(text, "%39s %" SCNu64 " %" SCNu64 " %c", rec->boot, &rec->id,
			    &rec->unique, &extra) != 3 || !rec->id) {
		bl_log(BTRFSLAYER_LOG_WARNING, "%s; no mount at home is taken for the library's",
		       r < 0 ? btrfslayer_error_message(err) : "read record: malformed");
		btrfslayer_error_free(err);
		return false;
	}
	boot_id(now);
	return !strcmp(rec->boot, now);
}

static int record_write(const btrfslayer *h, uint64_t id, uint64_t unique,
			btrfslayer_error **err)
{
	char text[RECORD_MAX], path[PATH_MAX], boot[BOOT_ID_MAX];
	boot_id(boot);
	snprintf(path, sizeof(path), "%s/" MOUNT_FILE, h->home);
	snprintf(text, sizeof(text), "%s %" PRIu64 " %" PRIu64 "\n", boot, id, unique);
	return bl_record_write(record_dir(h), MOUNT_FILE, text, false, path, err);
}

static void record_remove(const btrfslayer *h)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/" MOUNT_FILE, h->home);
	bl_record_remove(record_dir(h), MOUNT_FILE, path);
}

void bl_home_private(btrfslayer *h)
{
	/* not recursive: nothing mounted at or below home is in the clone */
	int tree = open_tree(h->home_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
	if (tree < 0)
		return;
	close(h->home_fd);
	h->home_fd = tree;
}

/* Bind-mount home onto itself through its fd, so that the mount lands on the
 * directory that was checked, not on whatever the path names by now.  The
 * mount's id and a directory fd on it come back.  -ENOSYS (no error set)
 * without open_tree. */
static int bind_by_fd(btrfslayer *h, uint64_t *made, int *fd, btrfslayer_error **err)
{
	int tree = open_tree(h->home_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
	if (tree < 0 && errno == ENOSYS)
		return -ENOSYS;
	if (tree < 0 && errno == EPERM)
		return bl_fail(err, -EPERM, "bind-mount home onto itself: %s (needs CAP_SYS_ADMIN "
			       "in the mount namespace; rootless, open with "
			       "btrfs.mount_home=false)", h->home);
	if (tree < 0)
		return bl_fail(err, -errno, "bind-mount home onto itself "
			       "(btrfs.mount_home=false turns this off): %s", h->home);
	/* the clone keeps its ids when attached: record them before that, so
	 * that once attached, nothing stands between the mount and its record */
	int r = bl_mount_id(tree, "", made);
	if (r < 0)
		bl_fail(err, r, "bind-mount home onto itself: %s", h->home);
	else
		r = record_write(h, *made, unique_mount_id(tree), err);
	if (r == 0 && move_mount(tree, "", h->home_fd, "",
				 MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0) {
		r = bl_fail(err, -errno, "bind-mount home onto itself "
			    "(btrfs.mount_home=false turns this off): %s", h->home);
		record_remove(h);
	}
	if (r == 0 && (*fd = openat(tree, ".", BL_DIR_FLAGS)) < 0) {
		r = bl_fail(err, -errno, "open home on its new mount: %s", h->home);
		umount2(h->home, UMOUNT_NOFOLLOW);	/* ours: attached a moment ago */
		record_remove(h);
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

/* Open home by path, on the topmost mount at home, checked to be the
 * directory `want`: *fd, and the mount it is on in *top (0 when home is no
 * mount point). */
static int resolve(btrfslayer *h, const struct stat *want, int *fd, uint64_t *top,
		   btrfslayer_error **err)
{
	for (int attempt = 0; attempt < RESOLVE_ATTEMPTS; attempt++) {
		uint64_t again, on;
		struct stat st;
		int r = topmost_mount_at(h->home, top);
		if (r < 0)
			return bl_fail(err, r, "look up home in the mount table " MOUNT_TABLE ": %s",
				       h->home);
		*fd = open(h->home, BL_DIR_FLAGS);
		if (*fd < 0)
			return bl_fail(err, -errno, "open home: %s", h->home);
		r = fstat(*fd, &st) < 0 ? -errno : bl_mount_id(*fd, "", &on);
		if (r == 0 && (st.st_dev != want->st_dev || st.st_ino != want->st_ino))
			r = bl_fail_msg(err, -EAGAIN, "open home: %s: replaced while being opened",
					h->home);
		else if (r == 0)
			r = topmost_mount_at(h->home, &again);
		else
			bl_fail(err, r, "open home: %s", h->home);
		if (r == 0 && again == *top && (!*top || on == *top))
			return 0;
		close(*fd);
		*fd = -1;
		if (r < 0)
			return r;
	}
	return bl_fail_msg(err, -EAGAIN, "open home: %s: the mounts at home kept changing "
			   "while it was being opened", h->home);
}

int bl_home_mount(btrfslayer *h, btrfslayer_error **err)
{
	struct stat want;
	uint64_t top, made;
	int fd = -1;
	if (fstat(h->home_fd, &want) < 0)
		return bl_fail(err, -errno, "stat home: %s", h->home);
	int r = resolve(h, &want, &fd, &top, err);
	if (r < 0)
		return r;
	/* from here on the private fd (open_tree's are O_PATH) is for the
	 * records, fd for the rest; without one, fd is for everything */
	if (fcntl(h->home_fd, F_GETFL) & O_PATH)
		h->base_fd = h->home_fd;
	else
		close(h->home_fd);
	h->home_fd = fd;
	/* A mount at home already: the library's (the record names it), which
	 * this handle adopts, or someone else's, which it uses and never
	 * touches.  Either way there is nothing to do here: the last close
	 * asks the record again. */
	if (top)
		return 0;

	fd = -1;
	r = bind_by_fd(h, &made, &fd, err);
	if (r == -ENOSYS) {	/* before Linux 5.2, or under valgrind */
		r = bind_by_path(h, &made, &fd);
		if (r < 0)
			return bl_fail(err, r, "bind-mount home onto itself "
				       "(btrfs.mount_home=false turns this off): %s", h->home);
		r = record_write(h, made, unique_mount_id(fd), err);
		if (r < 0) {
			close(fd);
			umount2(h->home, UMOUNT_NOFOLLOW);	/* ours: made a moment ago */
			return r;
		}
	}
	if (r < 0)
		return r;
	/* The old home_fd is on the mount below: a container's mount
	 * propagation happens on the new one, so the handle must work there. */
	close(h->home_fd);
	h->home_fd = fd;

	/* get() hands out paths under home: they must reach the new mount */
	r = topmost_mount_at(h->home, &top);
	if (r < 0)
		return bl_fail(err, r, "look up home in the mount table " MOUNT_TABLE ": %s",
			       h->home);
	if (top != made)
		return bl_fail_msg(err, -EAGAIN, "bind-mount home onto itself: %s: "
				   "the mount is not where the path leads (home moved?)", h->home);
	return 0;
}

/* After the unmount: remove the record of mount `id`.  Without a private
 * clone it is reached from below, by path; and when the handle had to let
 * go of the home lock, under the home lock again, unless an opener has
 * mounted home anew meanwhile (its record is not ours). */
static void forget_unmounted(const btrfslayer *h, uint64_t id)
{
	char path[PATH_MAX];
	bool present = true;
	int dirfd = h->base_fd >= 0 ? h->base_fd : open(h->home, BL_DIR_FLAGS);
	int lock = dirfd >= 0 && h->lock_fd < 0 ? bl_session_lock_home_at(dirfd) : -1;
	snprintf(path, sizeof(path), "%s/" MOUNT_FILE, h->home);
	if (dirfd >= 0 && (h->lock_fd >= 0 || lock >= 0) &&
	    mounted_at(h->home, id, &present) == 0 && !present)
		bl_record_remove(dirfd, MOUNT_FILE, path);
	if (lock >= 0)
		close(lock);
	if (dirfd >= 0 && dirfd != h->base_fd)
		close(dirfd);
}

int bl_home_unmount(btrfslayer *h, btrfslayer_error **err)
{
	struct mount_record rec;
	uint64_t top;
	bool present = false;
	if (record_dir(h) < 0 || !record_read(h, &rec))
		return 0;
	int r = topmost_mount_at(h->home, &top);
	if (r == 0)
		r = mounted_at(h->home, rec.id, &present);
	if (r < 0)
		return bl_fail(err, r, "look up home in the mount table " MOUNT_TABLE ": %s",
			       h->home);
	if (!present) {		/* someone took it down */
		record_remove(h);
		return 0;
	}
	if (top != rec.id) {
		bl_log(BTRFSLAYER_LOG_WARNING, "close: %s: the bind mount the library made is "
		       "covered by another mount; leaving the mounts at home alone", h->home);
		return 0;
	}
	int fd = open(h->home, BL_DIR_FLAGS);
	uint64_t unique = fd < 0 ? 0 : unique_mount_id(fd);
	if (fd >= 0)
		close(fd);
	if (rec.unique && unique && unique != rec.unique) {
		record_remove(h);	/* its id now names another mount */
		return 0;
	}

	/* every fd on the mount goes first: it would keep it busy */
	if (h->subvolumes_fd >= 0)
		close(h->subvolumes_fd);
	if (h->home_fd >= 0)
		close(h->home_fd);
	h->subvolumes_fd = h->home_fd = -1;
	/* Without a private clone (no open_tree), the lock and the records may
	 * be on the mount too.  Then the home lock goes before the unmount: an
	 * opener checks the mount it resolved home on, and takes a record of a
	 * mount that is gone for none. */
	if (on_mount(h->base_fd, rec.id)) {
		close(h->base_fd);
		h->base_fd = -1;
	}
	if (on_mount(h->lock_fd, rec.id))
		bl_session_close(h);
	/* Not MNT_DETACH: a lazy detach would hide a mount still in use. */
	if (umount2(h->home, UMOUNT_NOFOLLOW) == 0) {
		forget_unmounted(h, rec.id);
		return 0;
	}
	if (errno == EBUSY) {
		bl_log(BTRFSLAYER_LOG_INFO, "close: %s: the bind mount on home is in use (a "
		       "working directory or an open file under it, or a handle being opened); "
		       "it stays, recorded in " MOUNT_FILE ", for the next open to adopt",
		       h->home);
		return 0;
	}
	return bl_fail(err, -errno, "unmount home (the bind mount the library made): %s",
		       h->home);
}
