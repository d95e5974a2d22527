/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * btrfslayer_get_fd(): a layer as a directory fd, for runtimes that work
 * relative to fds.  The same checks as get (the entry is this home's layer,
 * reached without following a symlink or crossing a mount point, a layer
 * mounted on itself included) and the same re-applied size limit, but no
 * path string: nothing can be swapped in between the check and the use.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <unistd.h>

#include "internal.h"

BTRFSLAYER_API int btrfslayer_get_fd(btrfslayer *h, const char *id, uint32_t flags, int *fd,
				     btrfslayer_error **err)
{
	char path[PATH_MAX];
	if (fd)
		*fd = -1;
	int r = bl_check_handle_and_id(h, id, err);
	if (r < 0)
		return r;
	if (flags & ~BTRFSLAYER_FD_MASK)
		return bl_fail_msg(err, -EINVAL, "get layer fd %s: unknown flags 0x%" PRIx32, id,
				   flags & ~BTRFSLAYER_FD_MASK);
	if (!fd)
		return bl_fail_msg(err, -EINVAL, "get layer fd %s: no place for the fd (NULL)", id);
	bl_id_lock(h, id);
	int layer = bl_open_layer(h, id, "get layer fd", err);
	if (layer < 0) {
		bl_id_unlock(h, id);
		return layer;
	}
	bl_layer_path(h, id, path, sizeof(path));
	/* as get(): a limit lost to a quota reset comes back */
	r = bl_quota_reapply(h, id, layer, path, err);
	bl_id_unlock(h, id);
	if (r == 0 && (flags & BTRFSLAYER_FD_PATH)) {
		/* the very directory just checked, reopened O_PATH through
		 * itself: no name is resolved again */
		int p = openat(layer, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (p < 0)
			r = bl_fail(err, -errno, "get layer fd: reopen O_PATH: %s", path);
		close(layer);
		layer = p;
	}
	if (r < 0) {
		if (layer >= 0)
			close(layer);
		return r;
	}
	*fd = layer;
	return 0;
}
