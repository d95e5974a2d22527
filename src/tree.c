/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Deleting a subvolume together with every subvolume a container nested in
 * it.  The nested ones come from the root tree (no walk of the layer's
 * files) and are deleted by id, so no path inside the layer — which the
 * container controls — is ever resolved to delete something.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* A container may add a subvolume while we delete: list again, a few times. */
#define DESTROY_ATTEMPTS 3

/* Set the read-only flag of nested subvolume `sub` (reached by its path
 * below the top, checked to still be it). */
static int set_nested_read_only(int top_fd, const struct bl_subvolume *sub, bool read_only)
{
	uint64_t id = 0;
	int fd = bl_open_path_beneath(top_fd, sub->path);
	int r = fd < 0 ? fd : bl_ioctl_subvolume_id(fd, &id);
	if (r == 0 && id != sub->id)
		r = -ESTALE;	/* the path no longer leads to it */
	if (r == 0)
		r = bl_ioctl_set_read_only(fd, read_only);
	if (fd >= 0)
		close(fd);
	return r;
}

/* Make every read-only nested subvolume writable, and the top too when it
 * has children, before anything is deleted: a child of a read-only
 * subvolume cannot be deleted (EROFS), and a subvolume that a send is
 * reading refuses this (EPERM) just as it refuses deletion, so a busy one
 * is found now, while the layer is still whole.  On failure what this made
 * writable is made read-only again; *spoiled says when that failed, or
 * when it succeeded with a nested one made writable. */
static int unseal(int top_fd, bool *top_unsealed, bool *spoiled,
		  const struct bl_subvolume *list, size_t n, const char *path,
		  btrfslayer_error **err)
{
	size_t i = 0;
	int r = 0;
	bool ro = false;
	if (n && !*top_unsealed) {
		r = bl_ioctl_get_read_only(top_fd, &ro);
		if (r == 0 && ro)
			r = bl_ioctl_set_read_only(top_fd, false);
		if (r < 0)
			return bl_fail(err, r, "make writable to delete nested subvolumes: %s", path);
		*top_unsealed = ro;
	}
	bool unsealed = false;
	for (; i < n; i++) {
		if (list[i].read_only && (r = set_nested_read_only(top_fd, &list[i], false)) < 0)
			break;
		unsealed |= list[i].read_only;
	}
	if (r == 0) {
		/* a later failure could not give the tree back as it was */
		*spoiled |= unsealed;
		return 0;
	}
	bl_fail(err, r, "make writable to delete nested subvolumes: %s/%s%s", path, list[i].path,
		r == -EPERM ? " (busy: a send reads it?)" : "");
	while (i-- > 0)
		if (list[i].read_only && set_nested_read_only(top_fd, &list[i], true) < 0)
			*spoiled = true;
	return r;
}

/* Record every subvolume of the tree as doomed (quota.c), before any goes:
 * if we die halfway, their qgroups are still found and destroyed. */
static int mark_doomed(btrfslayer *h, uint64_t top_id, const struct bl_subvolume *list,
		       size_t n, btrfslayer_error **err)
{
	uint64_t *ids = calloc(n + 1, sizeof(*ids));
	if (!ids)
		return bl_fail(err, -ENOMEM, "delete subvolumes");
	for (size_t i = 0; i < n; i++)
		ids[i] = list[i].id;
	ids[n] = top_id;
	int r = bl_quota_mark_doomed(h, ids, n + 1, err);
	free(ids);
	return r;
}

/* Delete nested subvolume `id`; at EDQUOT (the layer's limit on what it
 * nests is reached, and a deletion is charged to it), lift that limit
 * (*lifted, its value in *limit) and try again. */
static int destroy_one(int top_fd, uint64_t top_id, uint64_t id, bool *lifted, uint64_t *limit)
{
	int r = bl_ioctl_destroy_by_id(top_fd, id);
	if (r == -EDQUOT && !*lifted && bl_nested_limit_lift(top_fd, top_id, limit) == 0) {
		*lifted = true;
		r = bl_ioctl_destroy_by_id(top_fd, id);
	}
	return r;
}

/* *marked says whether the qgroups of what goes must be followed up. */
static int destroy_nested(btrfslayer *h, int top_fd, uint64_t top_id, bool *top_unsealed,
			  bool *spoiled, bool *marked, bool *lifted, uint64_t *limit,
			  const char *path, btrfslayer_error **err)
{
	struct bl_subvolume *list;
	size_t n, i = 0;

	int r = bl_ioctl_nested_subvolumes(top_fd, &list, &n);
	if (r < 0)
		return bl_fail(err, r, "list nested subvolumes: %s", path);
	*marked = false;
	if (h) {
		r = mark_doomed(h, top_id, list, n, err);
		*marked = r == 1;
		r = r < 0 ? r : 0;
	}
	if (r == 0)
		r = unseal(top_fd, top_unsealed, spoiled, list, n, path, err);
	/* children come before their parents */
	for (; r == 0 && i < n; i++) {
		r = destroy_one(top_fd, top_id, list[i].id, lifted, limit);
		if (r == 0)
			*spoiled = true;
		if (r == 0 && *marked)
			bl_quota_forget_subvolume(h, list[i].id);
		if (r == -ENOENT)	/* gone already */
			r = 0;
		if (r < 0)
			bl_fail(err, r, "delete nested subvolume: %s/%s", path, list[i].path);
	}
	/* what was not deleted needs no qgroup destroyed */
	if (r < 0 && *marked)
		for (i = i ? i - 1 : 0; i < n; i++)
			bl_quota_unmark(h, list[i].id);
	bl_subvolumes_free(list, n);
	return r;
}

/* Without CAP_SYS_ADMIN (a rootless caller, on a filesystem mounted with
 * user_subvol_rm_allowed) the kernel deletes a subvolume only if the caller
 * could write to its root, which a read-only subvolume refuses with EROFS:
 * make it writable (*top_unsealed) and try again. */
static int destroy_read_only_top(int fd, uint64_t top_id, bool *top_unsealed)
{
	bool ro = false;
	int r = bl_ioctl_get_read_only(fd, &ro);
	if (r == 0 && !ro)
		return -EROFS;	/* not why it was refused */
	if (r == 0)
		r = bl_ioctl_set_read_only(fd, false);
	if (r < 0)
		return r;
	*top_unsealed = true;
	return bl_ioctl_destroy_by_id(fd, top_id);
}

int bl_tree_destroy(btrfslayer *h, int fd, const char *path, bool *spoiled,
		    btrfslayer_error **err)
{
	bool top_unsealed = false, spoiled_here = false, marked = false, lifted = false;
	uint64_t top_id, limit = 0;

	if (!spoiled)
		spoiled = &spoiled_here;
	*spoiled = false;
	/* The top too goes by the id of the subvolume fd holds, not by name:
	 * whatever is renamed to its name meanwhile is not what gets deleted. */
	int r = bl_ioctl_subvolume_id(fd, &top_id);
	if (r < 0)
		return bl_fail(err, r, "read subvolume id: %s", path);
	for (int attempt = 0; attempt < DESTROY_ATTEMPTS; attempt++) {
		r = destroy_nested(h, fd, top_id, &top_unsealed, spoiled, &marked, &lifted, &limit,
				   path, err);
		if (r < 0)
			break;
		r = bl_ioctl_destroy_by_id(fd, top_id);
		if (r == -EROFS && !top_unsealed)
			r = destroy_read_only_top(fd, top_id, &top_unsealed);
		/* ENOENT: another handle's sweep deleted it first; its qgroup
		 * is still to be destroyed, so the marker stays */
		if (r == -ENOENT)
			r = 0;
		if (r != -ENOTEMPTY)
			break;
	}
	if (r == 0) {
		if (marked)
			bl_quota_forget_subvolume(h, top_id);
		return 0;
	}
	if (marked)
		bl_quota_unmark(h, top_id);
	if (lifted && !*spoiled)
		bl_nested_limit_restore(fd, top_id, limit, path);
	if (err && !*err)	/* the failing step may have said it already */
		bl_fail(err, r, "delete subvolume: %s%s", path,
			r == -EPERM ? " (without CAP_SYS_ADMIN, the filesystem must be mounted "
				      "with user_subvol_rm_allowed)" : "");
	/* leave a read-only layer read-only when it survives */
	if (top_unsealed && bl_ioctl_set_read_only(fd, true) < 0) {
		bl_log(BTRFSLAYER_LOG_WARNING,
		       "could not make %s read-only again after a failed removal", path);
		*spoiled = true;
	}
	return r;
}
