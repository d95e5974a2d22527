/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Limits that nested subvolumes cannot escape, with simple quotas.
 *
 * A qgroup limit on a layer's level-0 qgroup counts what the layer's own
 * subvolume holds: a container that makes a subvolume inside its layer
 * writes there past any size= (btrfs subvolume create needs no privilege).
 * So with simple quotas a limited layer gets a level-1 qgroup of its own,
 * 1/<subvolume id>, with the layer's 0/<subvolume id> as a member and the
 * same limit.  Since Linux 6.7 a subvolume (or snapshot) made inside a
 * subvolume joins, in simple mode, every higher-level qgroup the enclosing
 * subvolume is a member of (the kernel's auto-inherit), so whatever a
 * container nests, at any depth, is charged to 1/<id> and stopped at the
 * limit (EDQUOT).  Subvolumes already nested when a limit is set are made
 * members here.  A snapshot the library takes of a layer is made in
 * subvolumes/, not inside the layer, so it joins nothing.
 *
 * Full qgroups have no auto-inherit: a nested subvolume is a qgroup of its
 * own that no limit of the layer counts, so the limit holds for the layer's
 * own subvolume only (the header and README say so), and no level-1 qgroup
 * is made.
 *
 * The level-1 qgroup goes with the layer: its subvolume id is in the
 * marker quotas/.staging/.qgroup-<id> written before the layer is deleted
 * (quota.c), whose follow-up destroys 0/<id> and then 1/<id>; the marker
 * stays until both are gone, so a crash in between leaves it for the next
 * open.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

uint64_t bl_nested_qgroup(uint64_t subvolume)
{
	return (UINT64_C(1) << 48) | subvolume;
}

/* The directory the layer's root (fd) is in, on the same filesystem: the
 * qgroup ioctls go through it, since the kernel charges their transaction
 * to the subvolume they are asked through, and a layer at or over its
 * limit has no room for it (EDQUOT). */
static int open_outside(int fd)
{
	uint8_t fsid[16], up_fsid[16];
	int up = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (up < 0)
		return -errno;
	int r = bl_ioctl_fs_uuid(fd, fsid);
	if (r == 0)
		r = bl_ioctl_fs_uuid(up, up_fsid);
	if (r == 0 && memcmp(fsid, up_fsid, sizeof(fsid)))
		r = -EXDEV;
	if (r < 0) {
		close(up);
		return r;
	}
	return up;
}

/* Every subvolume nested in the layer (fd) already: a member of group. */
static int adopt_nested(int fd, int via, uint64_t group)
{
	struct bl_subvolume *nested;
	size_t n;
	int r = bl_ioctl_nested_subvolumes(fd, &nested, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; r == 0 && i < n; i++) {
		r = bl_ioctl_qgroup_assign(via, nested[i].id, group);
		if (r == -EEXIST)
			r = 0;
	}
	bl_subvolumes_free(nested, n);
	return r;
}

int bl_nested_limit(int fd, uint64_t size, const char *path, btrfslayer_error **err)
{
	enum bl_quota_mode mode;
	bool inconsistent;
	uint64_t subvolume;
	int r = bl_ioctl_quota_status(fd, &mode, &inconsistent);
	if (r == 0 && mode != BL_QUOTA_SIMPLE)
		return 0;
	if (r == 0)
		r = bl_ioctl_subvolume_id(fd, &subvolume);
	if (r < 0)
		return bl_fail(err, r, "limit nested subvolumes: %s", path);
	uint64_t group = bl_nested_qgroup(subvolume);
	int via = open_outside(fd);
	if (via < 0)
		return bl_fail(err, via, "limit nested subvolumes: %s: open the directory it is in",
			       path);
	if (!size) {
		/* the qgroup stays, empty of limits, until the layer goes */
		r = bl_ioctl_qgroup_limit_id(via, group, 0);
		close(via);
		if (r < 0 && r != -ENOENT)
			return bl_fail(err, r, "clear size limit of nested subvolumes (qgroup "
				       "1/%" PRIu64 "): %s%s", subvolume, path,
				       r == -EPERM ? " (needs CAP_SYS_ADMIN)" : "");
		return 0;
	}
	r = bl_ioctl_qgroup_create(via, group);
	if (r == 0 || r == -EEXIST)
		r = bl_ioctl_qgroup_assign(via, subvolume, group);
	if (r == -ENOENT) {
		/* the layer's own qgroup, destroyed by hand: make it again */
		r = bl_ioctl_qgroup_create(via, subvolume);
		if (r == 0 || r == -EEXIST)
			r = bl_ioctl_qgroup_assign(via, subvolume, group);
	}
	if (r == 0 || r == -EEXIST)
		r = adopt_nested(fd, via, group);
	if (r == 0)
		r = bl_ioctl_qgroup_limit_id(via, group, size);
	close(via);
	if (r < 0)
		return bl_fail(err, r, "set size limit %" PRIu64 " of nested subvolumes (qgroup "
			       "1/%" PRIu64 "): %s%s", size, subvolume, path,
			       r == -EPERM ? " (needs CAP_SYS_ADMIN)" : "");
	return 0;
}

int bl_nested_limit_destroy(int fd, uint64_t subvolume)
{
	int r = bl_ioctl_qgroup_destroy(fd, bl_nested_qgroup(subvolume));
	/* none (full qgroups, or never limited), or quotas off */
	return r == -ENOENT || r == -ENOTCONN ? 0 : r;
}

int bl_nested_limit_lift(int fd, uint64_t subvolume, uint64_t *was)
{
	struct bl_qgroup group;
	int r = bl_ioctl_qgroup_info(fd, bl_nested_qgroup(subvolume), &group);
	if (r == 0 && !group.max_referenced)
		r = -ENOENT;
	if (r == 0)
		r = bl_ioctl_qgroup_limit_id(fd, bl_nested_qgroup(subvolume), 0);
	if (r == 0)
		*was = group.max_referenced;
	return r;
}

void bl_nested_limit_restore(int fd, uint64_t subvolume, uint64_t limit, const char *path)
{
	int r = bl_ioctl_qgroup_limit_id(fd, bl_nested_qgroup(subvolume), limit);
	if (r < 0)
		bl_log(BTRFSLAYER_LOG_ERR, "%s: could not put back the size limit %" PRIu64
		       " of its nested subvolumes (qgroup 1/%" PRIu64 ") after a failed "
		       "removal: %s", path, limit, subvolume, btrfslayer_strerror(r));
}
