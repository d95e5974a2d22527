/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The recovery sweep at open: what handles that died left behind.
 *
 * A crash can only leave the library's reserved names (a layer being built
 * or removed, an intent (intent.c)) and markers of qgroups still to
 * destroy, and each has an entry in a staging directory (staging.c).  Names
 * a live handle reserved are left to it, and the sweep never waits for a
 * live handle: an id it cannot lock now is left (sweep_left).  Layers and
 * their records are never looked at, so the sweep costs one read of each
 * staging directory plus what was left unfinished, whatever the number of
 * layers.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* The reserved prefix `name` starts with, or NULL. */
static const char *reserved_prefix(const char *name)
{
	if (!strncmp(name, BL_TMP_PREFIX, strlen(BL_TMP_PREFIX)))
		return BL_TMP_PREFIX;
	if (!strncmp(name, BL_TOMB_PREFIX, strlen(BL_TOMB_PREFIX)))
		return BL_TOMB_PREFIX;
	return NULL;
}

static DIR *open_listing(btrfslayer *h, int dirfd, const char *dir_name)
{
	/* a fresh fd: a DIR's position is per open file */
	int fd = openat(dirfd, ".", BL_DIR_FLAGS);
	DIR *dir = fd < 0 ? NULL : fdopendir(fd);
	if (!dir) {
		bl_log(BTRFSLAYER_LOG_WARNING, "recovery: read %s/%s: %s", h->home, dir_name,
		       strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	return dir;
}

/* Delete the reserved subvolume `name` of subvolumes/ (tree and all): true
 * when it is gone (its stand-in may go).  Another handle's sweep may be at
 * it too: what is gone meanwhile is not a failure. */
static bool sweep_subvolume(btrfslayer *h, const char *name, const char *prefix)
{
	char path[PATH_MAX];
	bl_layer_path(h, name, path, sizeof(path));
	bool tomb = !strcmp(prefix, BL_TOMB_PREFIX);
	int r = bl_lookup_layer(h->subvolumes_fd, name);
	if (r == -ENOENT)
		return true;
	if (r == 0) {
		/* the library only ever makes subvolumes there */
		bl_log(BTRFSLAYER_LOG_WARNING, "recovery: %s is not a subvolume; left alone", path);
		h->sweep.left++;
		return false;
	}
	int fd = r < 0 ? r : bl_open_dir_beneath(h->subvolumes_fd, name);
	btrfslayer_error *err = NULL;
	r = fd < 0 ? fd : bl_tree_destroy(h, fd, path, NULL, &err);
	if (fd >= 0)
		close(fd);
	if (r == -ENOENT) {
		btrfslayer_error_free(err);
		return true;
	}
	if (r < 0) {
		bl_log(BTRFSLAYER_LOG_WARNING, "recovery: could not delete %s: %s", path,
		       err ? btrfslayer_error_message(err) : btrfslayer_strerror(r));
		btrfslayer_error_free(err);
		h->sweep.left++;
		return false;
	}
	bl_log(BTRFSLAYER_LOG_INFO, tomb ? "recovery: finished removing a layer: deleted %s"
					 : "recovery: deleted unfinished layer %s", path);
	if (tomb)
		h->sweep.tombstones++;
	else
		h->sweep.temporaries++;
	return true;
}

/* Whether the reserved name `name` is to be cleaned up: at open, what
 * a dead handle left; at close, what this one left. */
static bool to_sweep(btrfslayer *h, const char *name, const char *prefix, bool own)
{
	return own ? bl_reserved_name_mine(h, name, prefix)
		   : bl_reserved_name_abandoned(h, name, prefix);
}

static void sweep_subvolumes(btrfslayer *h, bool own)
{
	DIR *dir = open_listing(h, h->staging_fd, BL_SUBVOLUMES "/" BL_STAGING);
	struct dirent *d;
	if (!dir)
		return;
	while ((d = readdir(dir))) {
		/* layers are not looked at: only what calls left unfinished */
		const char *prefix = reserved_prefix(d->d_name);
		if (!prefix)
			continue;
		if (to_sweep(h, d->d_name, prefix, own)) {
			if (sweep_subvolume(h, d->d_name, prefix))
				bl_staging_retire(h, d->d_name);
		} else if (!own) {
			h->sweep.left++;	/* a live handle's work */
		}
	}
	closedir(dir);
}

static void unlink_quota_file(btrfslayer *h, const char *name, const char *why)
{
	if (unlinkat(h->quota_staging_fd, name, 0) == 0) {
		bl_log(BTRFSLAYER_LOG_INFO, "recovery: deleted %s %s/" BL_QUOTAS "/" BL_STAGING "/%s",
		       why, h->home, name);
		h->sweep.quota_files++;
	} else if (errno != ENOENT) {
		bl_log(BTRFSLAYER_LOG_WARNING, "recovery: could not delete %s/" BL_QUOTAS "/"
		       BL_STAGING "/%s: %s", h->home, name, strerror(errno));
		h->sweep.left++;
	}
}

/* A dead call's reserved name in quotas/: an intent is finished
 * (intent.c), a plain temporary or buried record deleted. */
static void sweep_quota_temporary(btrfslayer *h, const char *name, const char *prefix)
{
	int r = bl_intent_recover(h, name);
	if (r == 1)
		h->sweep.limits++;
	else if (r == -ENODATA)
		unlink_quota_file(h, name, !strcmp(prefix, BL_TMP_PREFIX)
					   ? "an unfinished quota file"
					   : "the quota file of a removed layer");
	else if (r < 0)
		h->sweep.left++;	/* a live call holds its id, or it failed */
}

static void sweep_quota_files(btrfslayer *h, bool own)
{
	DIR *dir = open_listing(h, h->quota_staging_fd, BL_QUOTAS "/" BL_STAGING);
	struct dirent *d;
	if (!dir)
		return;
	while ((d = readdir(dir))) {
		/* records are not looked at: only what calls left unfinished */
		const char *prefix = reserved_prefix(d->d_name);
		if (prefix && to_sweep(h, d->d_name, prefix, own)) {
			sweep_quota_temporary(h, d->d_name, prefix);
		} else if (prefix && !own) {
			h->sweep.left++;
		} else if (!prefix && !own && bl_quota_adopt_marker(h, d->d_name) == 1) {
			h->sweep.qgroups++;
		}
	}
	closedir(dir);
}

void bl_sweep_own(btrfslayer *h)
{
	sweep_subvolumes(h, true);
	sweep_quota_files(h, true);
}

void bl_sweep(btrfslayer *h)
{
	/* subvolumes first: a removal finished here leaves its quota file and
	 * the markers of its qgroups to the pass over quotas/ */
	sweep_subvolumes(h, false);
	sweep_quota_files(h, false);
	h->sweep.qgroups += bl_quota_adopt_attribute_markers(h);
	if (h->sweep.qgroups)
		bl_log(BTRFSLAYER_LOG_INFO, "recovery: destroyed %u qgroups of deleted subvolumes "
		       "in %s", h->sweep.qgroups, h->home);
}
