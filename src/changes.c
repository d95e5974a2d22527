/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What a layer changed relative to its parent, in the semantics of Docker's
 * archive.ChangesDirs (moby pkg/archive/changes.go), which `docker diff`,
 * `docker commit` and every naive graph driver use:
 *
 * - a path in the layer but not in the parent is added (A), and so is
 *   everything below it;
 * - a path in the parent but not in the layer is deleted (D) when its
 *   directory is still a directory in the layer; only the top of a deleted
 *   subtree is reported, and nothing below a directory that became a file;
 * - a path in both is modified (C) when its mode (type included), uid, gid,
 *   rdev or security.capability differ, or, for a non-directory, its size
 *   or its mtime (equal when the seconds match and the nanoseconds do, or
 *   one of them is 0, for tar's sake);
 * - a directory in both that holds a change at any depth is modified too;
 * - the root is never reported; with no parent, everything is added.
 *
 * Two ways reach that list.  The walk (changes_walk.c) compares both trees
 * in full, as Docker does: O(files).  The send stream (changes_send.c)
 * names the paths btrfs knows changed between a layer and the snapshot it
 * was made from, and only those paths are compared: O(changes).  The send
 * needs read-only subvolumes: a writable layer or parent is snapshotted,
 * read-only, under a reserved name of subvolumes/ (with its stand-in in
 * subvolumes/.staging, so that the sweep deletes it should we die), and the
 * snapshot is deleted when the list is released.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static int by_path(const void *a, const void *b)
{
	return strcmp(((const struct bl_change *)a)->path, ((const struct bl_change *)b)->path);
}

/* Sort by path; a path listed twice (the send mapping may look at one path
 * from two sides) is kept once. */
static void finish_list(struct bl_change_list *l)
{
	if (l->n)
		qsort(l->v, l->n, sizeof(*l->v), by_path);
	size_t out = 0;
	for (size_t i = 0; i < l->n; i++) {
		if (out && !strcmp(l->v[out - 1].path, l->v[i].path)) {
			free(l->v[i].path);
			continue;
		}
		l->v[out++] = l->v[i];
	}
	l->n = out;
}

/* ---- temporaries ---------------------------------------------------------- */

/* A read-only snapshot of the subvolume fd holds, under a fresh reserved
 * name (its stand-in first, so that the sweep finds it after a crash):
 * its fd, checked to be the snapshot just made. */
static int take_snapshot(btrfslayer *h, int fd, const char *id, char name[BL_RESERVED_NAME_MAX],
			 btrfslayer_error **err)
{
	char path[PATH_MAX];
	struct bl_subvolume_info source, made;
	bl_layer_path(h, id, path, sizeof(path));
	int r = bl_ioctl_subvolume_info(fd, &source);
	if (r < 0)
		return bl_fail(err, r, "changes: %s: read subvolume info", path);
	r = -EEXIST;
	for (int attempt = 0; r == -EEXIST && attempt < BL_RESERVED_NAME_ATTEMPTS; attempt++) {
		bl_reserved_name(h, BL_TMP_PREFIX, name);
		r = bl_staging_announce(h, name);
		if (r == -EEXIST)
			continue;
		if (r == 0) {
			r = bl_ioctl_snapshot(fd, h->subvolumes_fd, name, true);
			if (r < 0)
				bl_staging_retire(h, name);
		}
	}
	if (r < 0) {
		name[0] = '\0';
		return bl_fail(err, r, "changes: %s: take a read-only snapshot", path);
	}
	int snap = bl_open_dir_beneath(h->subvolumes_fd, name);
	r = snap < 0 ? snap : bl_ioctl_subvolume_info(snap, &made);
	if (r == 0 && (memcmp(made.parent_uuid, source.uuid, 16) || !made.read_only))
		r = -EAGAIN;	/* something else was put under the reserved name */
	if (r < 0) {
		if (snap >= 0)
			close(snap);
		if (r != -EAGAIN)
			bl_note_leftover(h);	/* the sweep deletes it */
		else
			bl_staging_retire(h, name);
		name[0] = '\0';
		return bl_fail(err, r, "changes: %s: open the read-only snapshot", path);
	}
	return snap;
}

static void drop_snapshot(btrfslayer *h, char name[BL_RESERVED_NAME_MAX], int fd)
{
	char path[PATH_MAX];
	if (!name[0])
		return;
	bl_layer_path(h, name, path, sizeof(path));
	btrfslayer_error *err = NULL;
	if (bl_tree_destroy(h, fd, path, NULL, &err) == 0) {
		bl_staging_retire(h, name);
	} else {
		bl_log(BTRFSLAYER_LOG_WARNING, "changes: delete temporary snapshot %s: %s; it goes "
		       "at close or at the next open", path, btrfslayer_error_message(err));
		bl_note_leftover(h);
	}
	btrfslayer_error_free(err);
	name[0] = '\0';
}

void bl_changes_release(btrfslayer *h, struct bl_changes *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].path);
	free(c->v);
	c->v = NULL;
	c->n = 0;
	if (c->layer_fd >= 0) {
		drop_snapshot(h, c->layer_tmp, c->layer_fd);
		close(c->layer_fd);
	}
	if (c->parent_fd >= 0) {
		drop_snapshot(h, c->parent_tmp, c->parent_fd);
		close(c->parent_fd);
	}
	c->layer_fd = c->parent_fd = -1;
}

/* ---- choosing the way ----------------------------------------------------- */

/* Whether the send stream can serve: the layer is a snapshot of the parent
 * (else the stream would be as long as the trees), and neither holds nested
 * subvolumes (a snapshot shows them as empty directories, which the walk
 * of the layer would not). */
static bool send_fits(int layer_fd, int parent_fd)
{
	struct bl_subvolume_info layer, parent;
	if (bl_ioctl_subvolume_info(layer_fd, &layer) < 0 ||
	    bl_ioctl_subvolume_info(parent_fd, &parent) < 0 ||
	    memcmp(layer.parent_uuid, parent.uuid, 16))
		return false;
	int fds[2] = { layer_fd, parent_fd };
	for (int i = 0; i < 2; i++) {
		struct bl_subvolume *list;
		size_t n;
		if (bl_ioctl_nested_subvolumes(fds[i], &list, &n) < 0)
			return false;
		bl_subvolumes_free(list, n);
		if (n)
			return false;
	}
	return true;
}

/* The read-only tree to send from for layer `id` (open as *fd): the layer
 * itself when it is read-only, else a snapshot that replaces *fd. */
static int read_only_tree(btrfslayer *h, const char *id, int *fd, char tmp[BL_RESERVED_NAME_MAX],
			  btrfslayer_error **err)
{
	bool read_only = false;
	int r = bl_ioctl_get_read_only(*fd, &read_only);
	if (r < 0 || read_only)
		return r;
	int snap = take_snapshot(h, *fd, id, tmp, err);
	if (snap < 0)
		return snap;
	close(*fd);
	*fd = snap;
	return 0;
}

/* Whether the layer and its parent changed so much since the layer was made
 * that the send would be cut short (more than one changed inode for every
 * two commands of the limit): then the walk is taken up front, without the
 * temporary snapshots and the part of the stream that a late cut costs.
 * Only an estimate: a send that runs long all the same is still cut. */
static bool too_many_changes(int layer_fd, int parent_fd, uint64_t limit)
{
	struct bl_subvolume_info info;
	uint64_t max = limit / 2, in_layer = 0, in_parent = 0;
	if (bl_ioctl_subvolume_info(layer_fd, &info) < 0 ||
	    bl_ioctl_count_changed_inodes(layer_fd, info.created, max, &in_layer) < 0 ||
	    (in_layer < max &&
	     bl_ioctl_count_changed_inodes(parent_fd, info.created, max - in_layer, &in_parent) < 0))
		return false;	/* the send says */
	return in_layer + in_parent >= max;
}

static int by_send(btrfslayer *h, const char *id, const char *parent, bool no_limit,
		   struct bl_changes *c, struct bl_change_list *l, btrfslayer_error **err)
{
	uint64_t limit = 0;
	int r = no_limit ? 0 : bl_changes_send_limit(c->layer_fd, &limit);
	if (r == -EPERM)
		r = -EOPNOTSUPP;	/* no CAP_SYS_ADMIN */
	if (r == 0 && limit && too_many_changes(c->layer_fd, c->parent_fd, limit))
		r = -E2BIG;
	if (r == 0)
		r = read_only_tree(h, id, &c->layer_fd, c->layer_tmp, err);
	if (r == 0)
		r = read_only_tree(h, parent, &c->parent_fd, c->parent_tmp, err);
	if (r == 0)
		r = bl_changes_send(c->layer_fd, c->parent_fd, limit, l);
	if (r == -E2BIG)
		bl_fail_msg(err, r, "changes: %s: more changes than the send stream is worth "
			    "(the walk is faster)", id);
	if (r < 0 && r != -E2BIG) {
		char path[PATH_MAX];
		bl_layer_path(h, id, path, sizeof(path));
		bl_fail(err, r, "changes: %s: from the send stream against %s", path, parent);
	}
	return r;
}

int bl_changes_get(btrfslayer *h, const char *id, const char *parent, uint32_t flags,
		   struct bl_changes *out, btrfslayer_error **err)
{
	memset(out, 0, sizeof(*out));
	out->layer_fd = out->parent_fd = -1;
	int r = bl_check_handle_and_id(h, id, err);
	if (r < 0)
		return r;
	if (parent && (r = bl_id_check(parent, "parent id", err)) < 0)
		return r;
	if (flags & ~(BTRFSLAYER_CHANGES_MASK | BL_CHANGES_SEND_ONLY))
		return bl_fail_msg(err, -EINVAL, "changes of layer %s: unknown flags 0x%" PRIx32,
				   id, flags & ~(BTRFSLAYER_CHANGES_MASK | BL_CHANGES_SEND_ONLY));
	out->layer_fd = bl_open_layer(h, id, "changes: open layer", err);
	if (out->layer_fd < 0)
		return out->layer_fd;
	if (parent) {
		out->parent_fd = bl_open_layer(h, parent, "changes: open parent layer", err);
		if (out->parent_fd < 0) {
			r = out->parent_fd;
			bl_changes_release(h, out);
			return r;
		}
	}

	struct bl_change_list l = { 0 };
	bool walk = (flags & BTRFSLAYER_CHANGES_WALK) || !parent;
	if (!walk && !(flags & BL_CHANGES_SEND_ONLY) && !send_fits(out->layer_fd, out->parent_fd))
		walk = true;
	if (!walk) {
		btrfslayer_error *send_err = NULL;
		/* the layers themselves, for a walk after all: their inodes are
		 * cached, a fresh snapshot's are not */
		int live[2] = { dup(out->layer_fd), dup(out->parent_fd) };
		r = live[0] < 0 || live[1] < 0 ? bl_fail(&send_err, -errno, "changes: %s", id) : 0;
		if (r == 0)
			r = by_send(h, id, parent, flags & BL_CHANGES_SEND_ONLY, out, &l, &send_err);
		out->by_send = r == 0;
		if (r < 0 && !(flags & BL_CHANGES_SEND_ONLY) && live[0] >= 0 && live[1] >= 0) {
			/* the walk gives the same answer */
			bl_log(BTRFSLAYER_LOG_DEBUG, "%s; walking both trees instead",
			       btrfslayer_error_message(send_err));
			bl_change_list_free(&l);
			bl_changes_release(h, out);
			out->layer_fd = live[0];
			out->parent_fd = live[1];
			live[0] = live[1] = -1;
			walk = true;
			r = 0;
		} else if (r < 0 && err) {
			*err = send_err;
			send_err = NULL;
		}
		btrfslayer_error_free(send_err);
		for (int i = 0; i < 2; i++)
			if (live[i] >= 0)
				close(live[i]);
	}
	if (walk && r == 0) {
		r = bl_changes_walk(out->layer_fd, out->parent_fd, "/", &l);
		if (r < 0) {
			char path[PATH_MAX];
			bl_layer_path(h, id, path, sizeof(path));
			bl_fail(err, r, "changes: %s: walk the layer%s%s", path,
				parent ? " and its parent " : "", parent ? parent : "");
		}
	}
	if (r < 0) {
		bl_change_list_free(&l);
		bl_changes_release(h, out);
		return r;
	}
	finish_list(&l);
	out->v = l.v;
	out->n = l.n;
	return 0;
}

/* ---- the public calls ----------------------------------------------------- */

BTRFSLAYER_API int btrfslayer_changes(btrfslayer *h, const char *id, const char *parent,
				      uint32_t flags, btrfslayer_change_fn fn, void *userdata,
				      btrfslayer_error **err)
{
	struct bl_changes c;
	bl_clear_error(err);
	if (!fn)
		return bl_fail_msg(err, -EINVAL, "changes: no callback (fn is NULL)");
	if (flags & BL_CHANGES_SEND_ONLY)
		return bl_fail_msg(err, -EINVAL, "changes of layer %s: unknown flags 0x%" PRIx32,
				   id ? id : "(null)", flags & BL_CHANGES_SEND_ONLY);
	int r = bl_changes_get(h, id, parent, flags, &c, err);
	if (r < 0)
		return r;
	for (size_t i = 0; r == 0 && i < c.n; i++)
		r = fn(c.v[i].kind, c.v[i].path, userdata);
	bl_changes_release(h, &c);
	return r;
}

/* Docker's ChangesSize(): the size of every added or modified path that is
 * not a directory, in the layer; an inode with several links counted once. */
BTRFSLAYER_API int btrfslayer_diff_size(btrfslayer *h, const char *id, const char *parent,
					uint64_t *size, btrfslayer_error **err)
{
	struct bl_changes c;
	bl_clear_error(err);
	if (!size)
		return bl_fail_msg(err, -EINVAL, "diff size: no place for the size (size is NULL)");
	*size = 0;
	int r = bl_changes_get(h, id, parent, 0, &c, err);
	if (r < 0)
		return r;
	uint64_t total = 0, *seen = NULL;
	size_t n_seen = 0;
	for (size_t i = 0; r == 0 && i < c.n; i++) {
		struct bl_entry e;
		if (c.v[i].kind == BTRFSLAYER_CHANGE_DELETED || S_ISDIR(c.v[i].mode))
			continue;
		r = bl_entry_lookup(c.layer_fd, c.v[i].path, &e);
		if (r < 0 || !e.exists)
			continue;
		if (e.st.nlink > 1) {
			size_t k = 0;
			while (k < n_seen && seen[k] != e.st.ino)
				k++;
			if (k < n_seen)
				continue;
			uint64_t *grown = realloc(seen, (n_seen + 1) * sizeof(*seen));
			if (!grown) {
				r = -ENOMEM;
				break;
			}
			seen = grown;
			seen[n_seen++] = e.st.ino;
		}
		total += e.st.size;
	}
	free(seen);
	bl_changes_release(h, &c);
	if (r < 0)
		return bl_fail(err, r, "diff size of layer %s", id);
	*size = total;
	return 0;
}
