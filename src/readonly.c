/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Read-only handles (btrfs.read_only=true): for additional, shared image
 * stores and for homes on read-only mounts.
 *
 * Such a handle changes nothing and holds nothing open for writing: open
 * makes no directory, owns and modes nothing, mounts nothing (neither the
 * bind mount at home nor open_tree's private clone), takes no session slot
 * (HOME/.lock is neither made nor opened, so a remount read-only of the
 * filesystem is not refused because of it), runs no sweep and turns no
 * quota on.  Without a slot it also takes no id lock in HOME/.lock: what it
 * reads may be changed meanwhile by a writable handle, as it may for any
 * reader between two calls; each call still sees a layer whole or not at
 * all, since a layer appears and goes by a rename.  Every call that would
 * change the store is refused at its door by bl_check_writable().
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

int bl_check_writable(const btrfslayer *h, const char *step, btrfslayer_error **err)
{
	if (!h->read_only)
		return 0;
	return bl_fail_msg(err, -EROFS, "%s: %s: the handle is read-only (opened with "
			   "btrfs.read_only=true)", step, h->home);
}

/* Directory `name` of home, which must be there: never made. */
static int open_existing(btrfslayer *h, const char *name, btrfslayer_error **err)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", h->home, name);
	int fd = bl_open_dir_checked(h->home_fd, name, path, err);
	if (fd == -ENOENT)
		return bl_fail_msg(err, -ENOENT, "open home read-only: %s: missing (a read-only "
				   "handle makes nothing: open it writable once)", path);
	return fd;
}

int bl_read_only_layout(btrfslayer *h, const btrfslayer_idmap *uid_map, size_t n_uid_map,
			const btrfslayer_idmap *gid_map, size_t n_gid_map, btrfslayer_error **err)
{
	bool lay_out;
	uint8_t home_fs[16], subvolumes_fs[16];
	/* maps that differ from the record are refused as for any open; a
	 * home without a record is left as it is */
	int r = bl_home_maps_check(h, uid_map, n_uid_map, gid_map, n_gid_map, false, &lay_out,
				   err);
	if (r < 0)
		return r;
	h->subvolumes_fd = open_existing(h, BL_SUBVOLUMES, err);
	if (h->subvolumes_fd < 0)
		return h->subvolumes_fd;
	h->quotas_fd = open_existing(h, BL_QUOTAS, err);
	if (h->quotas_fd < 0)
		return h->quotas_fd;
	r = bl_ioctl_fs_uuid(h->home_fd, home_fs);
	if (r == 0)
		r = bl_ioctl_fs_uuid(h->subvolumes_fd, subvolumes_fs);
	if (r < 0)
		return bl_fail(err, r, "check filesystem: %s/" BL_SUBVOLUMES, h->home);
	if (memcmp(home_fs, subvolumes_fs, sizeof(home_fs)))
		return bl_fail_msg(err, -EXDEV, "check filesystem: %s/" BL_SUBVOLUMES ": not on "
				   "home's btrfs filesystem", h->home);
	return 0;
}
