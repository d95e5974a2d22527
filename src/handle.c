/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What every module that implements a call does with the handle: check it
 * and the id, name and open a layer, take the id's lock, note a leftover,
 * commit.  Below every call's module and above the kernel's, so that those
 * modules never call back into the driver (driver.c) that calls them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

void bl_layer_path(const btrfslayer *h, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/" BL_SUBVOLUMES "/%s", h->home, name);
}

/* FNV-1a: any fixed spread will do, ids are not adversarial here (a
 * collision only makes two ids share a lock). */
static unsigned id_lock_index(const char *id)
{
	uint32_t hash = 2166136261u;
	for (; *id; id++)
		hash = (hash ^ (unsigned char)*id) * 16777619u;
	return hash % BL_ID_LOCKS;
}

/* The handle's mutex first: the byte lock in HOME/.lock belongs to the
 * handle's open file, so it keeps other handles out but not our threads. */
void bl_id_lock(btrfslayer *h, const char *id)
{
	unsigned i = id_lock_index(id);
	pthread_mutex_lock(&h->id_locks[i]);
	bl_session_lock_id(h, i);
}

void bl_id_unlock(btrfslayer *h, const char *id)
{
	unsigned i = id_lock_index(id);
	bl_session_unlock_id(h, i);
	pthread_mutex_unlock(&h->id_locks[i]);
}

bool bl_id_trylock(btrfslayer *h, const char *id)
{
	unsigned i = id_lock_index(id);
	if (pthread_mutex_trylock(&h->id_locks[i]) != 0)
		return false;
	if (bl_session_trylock_id(h, i))
		return true;
	pthread_mutex_unlock(&h->id_locks[i]);
	return false;
}

void bl_note_leftover(btrfslayer *h)
{
	__atomic_add_fetch(&h->leftovers, 1, __ATOMIC_RELAXED);
}

int bl_commit(btrfslayer *h, const char *step, const char *path, btrfslayer_error **err)
{
	int r = bl_ioctl_commit(h->home_fd);
	if (r < 0)
		return bl_fail(err, r, "%s: %s: commit to disk", step, path);
	return 0;
}

/* A mount point at subvolumes/<id> whose mount shows that very layer (a
 * runtime bind-mounted the layer onto itself, for propagation): the layer,
 * there and whole.  An fd of its root, or -ENOENT when the mount shows
 * anything else (then it is no layer: something planted). */
int bl_open_self_mounted_layer(btrfslayer *h, const char *id)
{
	uint8_t home_fs[16], fs[16];
	uint64_t below, shown;
	int fd = openat(h->subvolumes_fd, id, BL_DIR_FLAGS);	/* the mount's root */
	if (fd < 0)
		return -ENOENT;
	if (bl_ioctl_child_subvolume(h->subvolumes_fd, id, &below) < 0 ||
	    bl_ioctl_fs_uuid(h->subvolumes_fd, home_fs) < 0 || bl_ioctl_fs_uuid(fd, fs) < 0 ||
	    memcmp(home_fs, fs, sizeof(fs)) || bl_ioctl_is_subvolume(fd) != 1 ||
	    bl_ioctl_subvolume_id(fd, &shown) < 0 || shown != below) {
		close(fd);
		return -ENOENT;
	}
	return fd;
}

int bl_open_layer(btrfslayer *h, const char *id, const char *step,
		  btrfslayer_error **err)
{
	char path[PATH_MAX];
	bl_layer_path(h, id, path, sizeof(path));
	int fd = bl_open_dir_beneath(h->subvolumes_fd, id);
	if (fd == -ELOOP || fd == -ENOTDIR)
		return bl_fail_msg(err, -ENOENT, "%s: %s: not a layer (a symbolic link or a file)",
				   step, path);
	if (fd == -EXDEV) {
		fd = bl_open_self_mounted_layer(h, id);
		if (fd >= 0)
			return fd;
		return bl_fail_msg(err, -ENOENT, "%s: %s: not a layer (a mount point)", step, path);
	}
	if (fd < 0)
		return bl_fail(err, fd, "%s: %s", step, path);
	/* on subvolumes/' own mount, so on its btrfs: the inode tells */
	struct stat st;
	int r = fstat(fd, &st) < 0 ? -errno : bl_stat_is_subvolume(&st);
	if (r == 1)
		return fd;
	close(fd);
	if (r == 0)
		return bl_fail_msg(err, -ENOENT, "%s: %s: not a layer (not a btrfs subvolume)",
				   step, path);
	return bl_fail(err, r, "%s: %s", step, path);
}

int bl_check_handle_and_id(btrfslayer *h, const char *id, btrfslayer_error **err)
{
	bl_clear_error(err);
	if (!h)
		return bl_fail_msg(err, -EINVAL, "no handle (NULL)");
	return bl_id_check(id, "layer id", err);
}
