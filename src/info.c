/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * btrfslayer_layer_info(): what btrfs knows of a layer, without quotas.
 *
 * The parent layer is found from the layer's parent uuid (the uuid of the
 * subvolume it is a snapshot of) in two lookups, whatever the number of
 * layers: the kernel's uuid tree gives the subvolume that has that uuid, and
 * its root backref gives the name it sits under, which must be an id in
 * subvolumes/ that still leads to that very subvolume.  Both searches take
 * CAP_SYS_ADMIN; without it (a rootless caller) the layers are compared one
 * by one instead (GET_SUBVOL_INFO needs no privilege): O(layers), the only
 * way left to an unprivileged caller.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* Subvolumes sharing one uuid: one, unless a tool wrote the same uuid
 * twice; a few are looked at. */
#define UUID_MATCHES_MAX 8

/* Whether `name` is a layer id of h whose subvolume is `subvolume`. */
static bool layer_is(btrfslayer *h, const char *name, uint64_t subvolume)
{
	uint64_t id;
	if (bl_id_check(name, "layer id", NULL) < 0)
		return false;	/* a reserved name: being made or removed */
	int fd = bl_open_layer(h, name, "layer info", NULL);
	if (fd < 0)
		return false;
	bool same = bl_ioctl_subvolume_id(fd, &id) == 0 && id == subvolume;
	close(fd);
	return same;
}

/* Rootless: every layer's uuid, one by one.  1 when found, 0 when not. */
static int parent_by_walk(btrfslayer *h, const uint8_t uuid[16], char parent[BTRFSLAYER_ID_MAX + 1])
{
	int fd = openat(h->subvolumes_fd, ".", BL_DIR_FLAGS);
	DIR *dir = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *d;
	int found = 0;
	if (!dir) {
		int r = -errno;
		if (fd >= 0)
			close(fd);
		return r;
	}
	while (!found && (errno = 0, d = readdir(dir))) {
		struct bl_subvolume_info info;
		if (bl_id_check(d->d_name, "layer id", NULL) < 0)
			continue;
		int layer = bl_open_layer(h, d->d_name, "layer info", NULL);
		if (layer < 0)
			continue;
		if (bl_ioctl_subvolume_info(layer, &info) == 0 && !memcmp(info.uuid, uuid, 16)) {
			snprintf(parent, BTRFSLAYER_ID_MAX + 1, "%s", d->d_name);
			found = 1;
		}
		close(layer);
	}
	int r = !found && errno ? -errno : found;
	closedir(dir);
	return r;
}

/* The id of the layer of h whose subvolume uuid is `uuid`, or "" when
 * there is none (never a snapshot, or its source is gone or not a layer of
 * this home). */
static int find_parent(btrfslayer *h, const uint8_t uuid[16], char parent[BTRFSLAYER_ID_MAX + 1])
{
	static const uint8_t none[16];
	uint64_t ids[UUID_MATCHES_MAX], here, dirid;
	char name[NAME_MAX + 1];
	struct stat st;

	parent[0] = '\0';
	if (!memcmp(uuid, none, sizeof(none)))
		return 0;
	int n = bl_ioctl_subvolumes_by_uuid(h->subvolumes_fd, uuid, ids, UUID_MATCHES_MAX);
	if (n == -EPERM || n == -EACCES) {
		n = parent_by_walk(h, uuid, parent);
		return n < 0 ? n : 0;
	}
	if (n < 0)
		return n;
	/* a layer's root backref names subvolumes/'s subvolume and inode */
	int r = bl_ioctl_subvolume_id(h->subvolumes_fd, &here);
	if (r < 0)
		return r;
	if (fstat(h->subvolumes_fd, &st) < 0)
		return -errno;
	for (int i = 0; i < n; i++) {
		r = bl_ioctl_subvolume_backref(h->subvolumes_fd, ids[i], here, &dirid, name,
					       sizeof(name));
		if (r == -ENOENT || r == -ENAMETOOLONG)
			continue;	/* elsewhere: not a layer of this home */
		if (r < 0)
			return r;
		if (dirid == st.st_ino && layer_is(h, name, ids[i])) {
			snprintf(parent, BTRFSLAYER_ID_MAX + 1, "%s", name);
			return 0;
		}
	}
	return 0;
}

BTRFSLAYER_API int btrfslayer_layer_info(btrfslayer *h, const char *id,
					 btrfslayer_info *out, size_t out_size,
					 btrfslayer_error **err)
{
	struct bl_subvolume_info sub;
	btrfslayer_info info;
	char path[PATH_MAX];

	int r = bl_check_handle_and_id(h, id, err);
	if (r < 0)
		return r;
	if (!out || out_size < BTRFSLAYER_INFO_SIZE_V1)
		return bl_fail_msg(err, -EINVAL, "layer info %s: out is NULL or out_size below %zu",
				   id, (size_t)BTRFSLAYER_INFO_SIZE_V1);
	int fd = bl_open_layer(h, id, "layer info", err);
	if (fd < 0)
		return fd;
	bl_layer_path(h, id, path, sizeof(path));
	memset(&info, 0, sizeof(info));
	r = bl_ioctl_subvolume_info(fd, &sub);
	int nested = r < 0 ? r : bl_ioctl_has_nested(fd);
	if (r == 0 && nested < 0)
		r = nested;
	if (r < 0) {
		bl_fail(err, r, "layer info: read the subvolume: %s", path);
		goto out;
	}
	r = find_parent(h, sub.parent_uuid, info.parent);
	if (r < 0) {
		bl_fail(err, r, "layer info: find the parent layer: %s", path);
		goto out;
	}
	info.subvolume_id = sub.id;
	info.generation = sub.generation;
	info.otime_sec = sub.otime_sec;
	info.otime_nsec = sub.otime_nsec;
	info.flags = (sub.read_only ? BTRFSLAYER_INFO_READ_ONLY : 0) |
		     (nested ? BTRFSLAYER_INFO_HAS_NESTED : 0);
	/* a caller built against a newer header gets zeros past our fields */
	memset(out, 0, out_size);
	memcpy(out, &info, BTRFSLAYER_INFO_SIZE_V1);
out:
	close(fd);
	return r;
}
