/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * btrfslayer_set_read_only(): seal or unseal a layer and every subvolume
 * nested in it, so that a sealed layer has no writable part left (a
 * container could otherwise keep writing into a nested subvolume of an
 * image layer).
 *
 * Every subvolume is opened, and checked to be the one the root tree
 * lists, before any flag changes: a layer that cannot be sealed whole is
 * left as it was.  Sealing goes children first and the layer last,
 * unsealing the layer first: whatever the order a reader sees, a sealed
 * layer is never found with a writable child.  A flip that fails midway is
 * undone, best effort (a failure to undo is logged).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

struct part {
	int fd;
	bool was_read_only;
	bool flipped;
};

/* Open nested subvolume `sub` of the layer fd holds, by its path from the
 * layer root (no symlink, no mount point crossed), and check it is still
 * that subvolume. */
static int open_nested(int fd, const struct bl_subvolume *sub, const char *path,
		       const char *step, btrfslayer_error **err)
{
	uint64_t id;
	int nested = bl_open_path_beneath(fd, sub->path);
	if (nested < 0)
		return bl_fail(err, nested, "%s: %s: open nested subvolume %s", step, path,
			       sub->path);
	int r = bl_ioctl_subvolume_id(nested, &id);
	if (r == 0 && (bl_ioctl_is_subvolume(nested) != 1 || id != sub->id))
		r = bl_fail_msg(err, -EAGAIN, "%s: %s: nested subvolume %s was replaced meanwhile",
				step, path, sub->path);
	else if (r < 0)
		bl_fail(err, r, "%s: %s: nested subvolume %s", step, path, sub->path);
	if (r < 0) {
		close(nested);
		return r;
	}
	return nested;
}

/* Flip parts [0, n) in the given order to read_only; on failure undo the
 * ones flipped. */
static int flip(struct part *parts, size_t n, bool forward, bool read_only,
		const char *const *names, const char *path, const char *step,
		btrfslayer_error **err)
{
	int r = 0;
	size_t i;
	for (size_t k = 0; r == 0 && k < n; k++) {
		i = forward ? k : n - 1 - k;
		if (parts[i].was_read_only == read_only)
			continue;
		r = bl_ioctl_set_read_only(parts[i].fd, read_only);
		if (r < 0)
			bl_fail(err, r, "%s: %s%s%s", step, path, *names[i] ? ": nested subvolume " : "",
				names[i]);
		else
			parts[i].flipped = true;
	}
	if (r == 0)
		return 0;
	for (size_t k = 0; k < n; k++) {
		i = forward ? n - 1 - k : k;	/* the other way round */
		if (parts[i].flipped && bl_ioctl_set_read_only(parts[i].fd, !read_only) < 0)
			bl_log(BTRFSLAYER_LOG_ERR, "%s: %s: could not put back the read-only flag of "
			       "%s", step, path, *names[i] ? names[i] : "the layer");
	}
	return r;
}

BTRFSLAYER_API int btrfslayer_set_read_only(btrfslayer *h, const char *id, int read_only,
					    btrfslayer_error **err)
{
	const char *step = read_only ? "seal layer" : "unseal layer";
	struct bl_subvolume *nested = NULL;
	struct part *parts = NULL;
	const char **names = NULL;
	size_t n_nested = 0, n = 0;
	char path[PATH_MAX];

	int r = bl_check_handle_and_id(h, id, err);
	if (r < 0 || (r = bl_check_writable(h, step, err)) < 0)
		return r;
	bl_id_lock(h, id);
	int fd = bl_open_layer(h, id, step, err);
	if (fd < 0) {
		bl_id_unlock(h, id);
		return fd;
	}
	bl_layer_path(h, id, path, sizeof(path));
	r = bl_ioctl_nested_subvolumes(fd, &nested, &n_nested);
	if (r < 0) {
		bl_fail(err, r, "%s: list nested subvolumes: %s", step, path);
		goto out;
	}
	/* children before their parents (post order), the layer last */
	parts = calloc(n_nested + 1, sizeof(*parts));
	names = calloc(n_nested + 1, sizeof(*names));
	if (!parts || !names) {
		r = bl_fail(err, -ENOMEM, "%s: %s", step, path);
		goto out;
	}
	for (; n < n_nested; n++) {
		parts[n].fd = open_nested(fd, &nested[n], path, step, err);
		if (parts[n].fd < 0) {
			r = parts[n].fd;
			goto out;
		}
		names[n] = nested[n].path;
	}
	parts[n].fd = fd;
	names[n++] = "";
	for (size_t i = 0; i < n; i++) {
		r = bl_ioctl_get_read_only(parts[i].fd, &parts[i].was_read_only);
		if (r < 0) {
			bl_fail(err, r, "%s: %s: read the read-only flag", step, path);
			goto out;
		}
	}
	r = flip(parts, n, read_only, read_only, names, path, step, err);
	/* durable, as every change the library makes (a no-op too: what it
	 * found may be a concurrent call's change not yet committed) */
	if (r == 0)
		r = bl_commit(h, step, path, err);
out:
	bl_id_unlock(h, id);
	for (size_t i = 0; parts && i < n; i++)
		if (parts[i].fd != fd)
			close(parts[i].fd);
	close(fd);
	free(parts);
	free(names);
	bl_subvolumes_free(nested, n_nested);
	return r;
}
