/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* See shim.h. */
#include <errno.h>
#include <stddef.h>

#include "shim.h"
#include "_cgo_export.h"

/* Weak: resolved to NULL when the loaded library predates 1.0. */
#pragma weak btrfslayer_layer_info
#pragma weak btrfslayer_set_read_only
#pragma weak btrfslayer_get_fd
#pragma weak btrfslayer_mount_idmapped
#pragma weak btrfslayer_changes
#pragma weak btrfslayer_diff_size
#pragma weak btrfslayer_export
#pragma weak btrfslayer_apply

int blgo_layer_info(btrfslayer *h, const char *id, btrfslayer_info *out,
		    btrfslayer_error **err)
{
	if (!btrfslayer_layer_info)
		return -ENOSYS;
	return btrfslayer_layer_info(h, id, out, sizeof(*out), err);
}

int blgo_set_read_only(btrfslayer *h, const char *id, int read_only,
		       btrfslayer_error **err)
{
	if (!btrfslayer_set_read_only)
		return -ENOSYS;
	return btrfslayer_set_read_only(h, id, read_only, err);
}

int blgo_get_fd(btrfslayer *h, const char *id, uint32_t flags, int *fd,
		btrfslayer_error **err)
{
	if (!btrfslayer_get_fd)
		return -ENOSYS;
	return btrfslayer_get_fd(h, id, flags, fd, err);
}

int blgo_mount_idmapped(btrfslayer *h, const char *id,
			const btrfslayer_idmap *uid_map, size_t n_uid_map,
			const btrfslayer_idmap *gid_map, size_t n_gid_map,
			uint32_t flags, int *mount_fd, btrfslayer_error **err)
{
	if (!btrfslayer_mount_idmapped)
		return -ENOSYS;
	return btrfslayer_mount_idmapped(h, id, uid_map, n_uid_map, gid_map, n_gid_map,
					 flags, mount_fd, err);
}

static int change_cb(int kind, const char *path, void *userdata)
{
	return blgoChange(kind, (char *)path, (uintptr_t)userdata);
}

int blgo_changes(btrfslayer *h, const char *id, const char *parent, uint32_t flags,
		 uintptr_t fn_handle, btrfslayer_error **err)
{
	if (!btrfslayer_changes)
		return -ENOSYS;
	return btrfslayer_changes(h, id, parent, flags, change_cb, (void *)fn_handle, err);
}

int blgo_diff_size(btrfslayer *h, const char *id, const char *parent, uint64_t *size,
		   btrfslayer_error **err)
{
	if (!btrfslayer_diff_size)
		return -ENOSYS;
	return btrfslayer_diff_size(h, id, parent, size, err);
}

static int progress_cb(uint64_t done, uint64_t total, void *userdata)
{
	return blgoProgress(done, total, (uintptr_t)userdata);
}

int blgo_export(btrfslayer *h, const char *id, const char *parent, int fd,
		uintptr_t progress_handle, btrfslayer_error **err)
{
	if (!btrfslayer_export)
		return -ENOSYS;
	return btrfslayer_export(h, id, parent, fd, 0, progress_handle ? progress_cb : NULL,
				 (void *)progress_handle, err);
}

int blgo_apply(btrfslayer *h, const char *id, int fd, uintptr_t progress_handle,
	       uint64_t *unpacked, btrfslayer_error **err)
{
	if (!btrfslayer_apply)
		return -ENOSYS;
	return btrfslayer_apply(h, id, fd, 0, progress_handle ? progress_cb : NULL,
				(void *)progress_handle, unpacked, err);
}

static void log_cb(int level, const char *message, void *userdata)
{
	(void)userdata;
	blgoLog(level, (char *)message);
}

void blgo_set_log(int on)
{
	btrfslayer_set_log_fn(on ? log_cb : NULL, NULL);
}
