/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The calls on a layer's size limit: set_quota, clear_quota and
 * get_usage.  A change goes through an intent (intent.c) over the kernel's
 * limit and the layer's record (quota.c), and is durable when it returns.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* Make layer id's (open as fd) limit `size` (0: none), in the kernel and
 * in its record, through an intent (intent.c); durable when it returns 0.
 * A failure before the record's step leaves both as they were.  Called
 * with the id's lock. */
static int change_limit(btrfslayer *h, const char *id, int fd, uint64_t size,
			btrfslayer_error **err)
{
	char path[PATH_MAX];
	const char *step = size ? "set size limit" : "clear size limit";
	struct bl_intent intent;
	enum bl_quota_mode mode;
	bool inconsistent;
	uint64_t subvolume, before;

	bl_layer_path(h, id, path, sizeof(path));
	int r = bl_ioctl_subvolume_id(fd, &subvolume);
	if (r == 0)
		r = bl_ioctl_quota_status(fd, &mode, &inconsistent);
	if (r < 0)
		return bl_fail(err, r, "%s: %s", step, path);
	if (bl_quota_file_read(h, id, &before) < 0)
		before = 0;
	r = bl_intent_begin(h, size ? BL_INTENT_SET : BL_INTENT_CLEAR, id, subvolume, size,
			    &intent, path, err);
	if (r < 0)
		return r;
	/* with quotas off (clear only) the record is all there is */
	if (mode != BL_QUOTA_OFF && (r = bl_quota_limit(fd, size, path, err)) < 0) {
		bl_intent_abort(h, &intent, id);
		return r;
	}
	r = bl_intent_finish(h, id, &intent, path, err);
	if (r < 0) {
		/* the record is as it was: so must the kernel's limit be */
		if (mode != BL_QUOTA_OFF && bl_quota_limit(fd, before, path, NULL) < 0) {
			bl_log(BTRFSLAYER_LOG_ERR, "%s: %s: could not put back the limit as it was; "
			       "the intent %s/" BL_QUOTAS "/%s is left for the next open", step,
			       path, h->home, intent.name);
			close(intent.fd);
			bl_note_leftover(h);
		} else {
			bl_intent_abort(h, &intent, id);
		}
		return r;
	}
	return bl_commit(h, step, path, err);
}

BTRFSLAYER_API int btrfslayer_set_quota(btrfslayer *h, const char *id, uint64_t size,
					btrfslayer_error **err)
{
	int r = bl_check_handle_and_id(h, id, err);
	if (r < 0)
		return r;
	if ((r = bl_quota_check_size(h, size, NULL, err)) < 0)
		return r;
	if ((r = bl_check_writable(h, "set size limit", err)) < 0)
		return r;
	if ((r = bl_quota_ensure(h, err)) < 0)
		return r;
	bl_id_lock(h, id);
	int fd = bl_open_layer(h, id, "set size limit", err);
	r = fd < 0 ? fd : change_limit(h, id, fd, size, err);
	if (fd >= 0)
		close(fd);
	bl_id_unlock(h, id);
	return r;
}

BTRFSLAYER_API int btrfslayer_clear_quota(btrfslayer *h, const char *id,
					  btrfslayer_error **err)
{
	int r = bl_check_handle_and_id(h, id, err);
	if (r < 0)
		return r;
	if ((r = bl_check_writable(h, "clear size limit", err)) < 0)
		return r;
	bl_id_lock(h, id);
	int fd = bl_open_layer(h, id, "clear size limit", err);
	r = fd < 0 ? fd : change_limit(h, id, fd, 0, err);
	if (fd >= 0)
		close(fd);
	bl_id_unlock(h, id);
	return r;
}

BTRFSLAYER_API int btrfslayer_get_usage(btrfslayer *h, const char *id, uint32_t flags,
				    btrfslayer_usage *out, size_t out_size,
				    btrfslayer_error **err)
{
	char path[PATH_MAX];
	btrfslayer_usage usage = {0};
	enum bl_quota_mode mode;
	bool inconsistent;
	struct bl_qgroup qgroup;

	int r = bl_check_handle_and_id(h, id, err);
	if (r < 0)
		return r;
	if (!out || out_size < BTRFSLAYER_USAGE_SIZE_V1)
		return bl_fail_msg(err, -EINVAL, "usage of layer %s: out is NULL or out_size "
				   "below %zu", id, (size_t)BTRFSLAYER_USAGE_SIZE_V1);
	if (flags & ~BTRFSLAYER_USAGE_MASK)
		return bl_fail_msg(err, -EINVAL, "usage of layer %s: unknown flags 0x%" PRIx32,
				   id, flags & ~BTRFSLAYER_USAGE_MASK);
	if ((flags & BTRFSLAYER_USAGE_WALK) && out_size < BTRFSLAYER_USAGE_SIZE_V3)
		return bl_fail_msg(err, -EINVAL, "usage of layer %s: BTRFSLAYER_USAGE_WALK needs "
				   "out_size of at least %zu (walk_bytes, walk_inodes)", id,
				   (size_t)BTRFSLAYER_USAGE_SIZE_V3);
	int fd = bl_open_layer(h, id, "usage of layer", err);
	if (fd < 0)
		return fd;
	bl_layer_path(h, id, path, sizeof(path));
	/* the quota tree is updated when a transaction commits */
	if ((flags & BTRFSLAYER_USAGE_SYNC) && syncfs(fd) < 0) {
		r = bl_fail(err, -errno, "usage of layer: sync %s", path);
		goto out;
	}
	r = bl_ioctl_quota_status(fd, &mode, &inconsistent);
	if (r == 0 && mode == BL_QUOTA_OFF && !(flags & BTRFSLAYER_USAGE_WALK)) {
		r = bl_fail_msg(err, -BTRFSLAYER_ENOQUOTA,
				"usage of layer: %s: quotas are off on this filesystem "
				"(open with btrfs.quota_mode or btrfs.min_space to turn them on, "
				"or ask for BTRFSLAYER_USAGE_WALK)",
				path);
		goto out;
	}
	if (r == 0)
		r = bl_ioctl_subvolume_id(fd, &usage.subvolume_id);
	if (r == 0 && mode != BL_QUOTA_OFF)
		r = bl_ioctl_qgroup_info(fd, usage.subvolume_id, &qgroup);
	if (r < 0) {
		bl_fail(err, r, "usage of layer: read quota tree: %s", path);
		goto out;
	}
	if (bl_quota_file_read(h, id, &usage.recorded_limit) < 0)
		usage.recorded_limit = 0;
	if (mode != BL_QUOTA_OFF) {
		usage.referenced = qgroup.referenced;
		usage.exclusive = qgroup.exclusive;
		usage.limit = qgroup.max_referenced;
		usage.exclusive_limit = qgroup.max_exclusive;
		usage.quota_mode = mode == BL_QUOTA_SIMPLE ? BTRFSLAYER_QUOTA_SIMPLE
							   : BTRFSLAYER_QUOTA_QGROUP;
		usage.consistent = !inconsistent;
	}
	/* the documented walk, only when asked for (walk_usage.c) */
	if ((flags & BTRFSLAYER_USAGE_WALK) &&
	    (r = bl_walk_usage(fd, &usage.walk_bytes, &usage.walk_inodes, path, err)) < 0)
		goto out;
	/* whole versions only: a caller built against an older header gets the
	 * fields it knows, one built against a newer header zeros past ours */
	size_t known = out_size < BTRFSLAYER_USAGE_SIZE_V2   ? BTRFSLAYER_USAGE_SIZE_V1
		       : out_size < BTRFSLAYER_USAGE_SIZE_V3 ? BTRFSLAYER_USAGE_SIZE_V2
							     : BTRFSLAYER_USAGE_SIZE_V3;
	memset(out, 0, out_size);
	memcpy(out, &usage, known);
out:
	close(fd);
	return r;
}

_Static_assert(offsetof(btrfslayer_usage, exclusive_limit) == BTRFSLAYER_USAGE_SIZE_V1,
	       "the fields of BTRFSLAYER_USAGE_SIZE_V1 moved");
_Static_assert(offsetof(btrfslayer_usage, walk_bytes) == BTRFSLAYER_USAGE_SIZE_V2,
	       "the fields of BTRFSLAYER_USAGE_SIZE_V2 moved");
_Static_assert(sizeof(btrfslayer_usage) == BTRFSLAYER_USAGE_SIZE_V3,
	       "btrfslayer_usage grew: add BTRFSLAYER_USAGE_SIZE_V4, keep V1 to V3");
_Static_assert(sizeof(btrfslayer_info) == BTRFSLAYER_INFO_SIZE_V1,
	       "btrfslayer_info grew: add BTRFSLAYER_INFO_SIZE_V2, keep V1");
