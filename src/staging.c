/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The staging directories: subvolumes/.staging and quotas/.staging hold
 * an entry for every name the library reserves, and nothing else.  So what
 * calls left unfinished is found by listing them, whatever the number of
 * layers, and a layer or a record is never among what the sweep reads.
 *
 * quotas/.staging holds the reserved files themselves (intents, buried
 * records, qgroup markers): a regular file moves between it and quotas/ by
 * a rename within one btrfs subvolume.  A reserved subvolume (a layer being
 * built or removed) stays in subvolumes/, since a read-only subvolume
 * cannot move to another directory (its ".." would change: EROFS); an
 * empty file of the same name in subvolumes/.staging stands for it, made
 * before the subvolume and removed after it.
 *
 * A home used by a version before the staging directories kept its
 * reserved names in subvolumes/ and quotas/ themselves: the open that
 * makes the staging directories moves those names into them, once.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define STAGING_MODE 0700

/* Open (making, *made) directory BL_STAGING of parent_fd: no symlink, no
 * mount point, nothing but a directory. */
static int open_staging(btrfslayer *h, int parent_fd, const char *parent_name, bool *made,
			btrfslayer_error **err)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s/" BL_STAGING, h->home, parent_name);
	*made = false;
	int fd = bl_open_dir_checked(parent_fd, BL_STAGING, path, err);
	if (fd == -ENOENT) {
		*made = mkdirat(parent_fd, BL_STAGING, STAGING_MODE) == 0;
		if (!*made && errno != EEXIST)
			return bl_fail(err, -errno, "create directory: %s", path);
		fd = bl_open_dir_checked(parent_fd, BL_STAGING, path, err);
		if (fd == -ENOENT)	/* removed again meanwhile */
			return bl_fail(err, fd, "open directory: %s", path);
	}
	return fd;
}

int bl_staging_announce(btrfslayer *h, const char *name)
{
	int fd = openat(h->staging_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
			O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

void bl_staging_retire(btrfslayer *h, const char *name)
{
	if (unlinkat(h->staging_fd, name, 0) < 0 && errno != ENOENT) {
		bl_log(BTRFSLAYER_LOG_WARNING, "remove %s/" BL_SUBVOLUMES "/" BL_STAGING "/%s: %s; "
		       "it goes at close or at the next open", h->home, name, strerror(errno));
		bl_note_leftover(h);
	}
}

/* Bring the reserved names a version before the staging directories left
 * in dirfd into staging_fd, for the sweep to find there: files move,
 * subvolumes get their stand-in (files == false). */
static void adopt_legacy_names(btrfslayer *h, int dirfd, int staging_fd, const char *dir_name,
			       bool files)
{
	int fd = openat(dirfd, ".", BL_DIR_FLAGS);
	DIR *dir = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *d;
	if (!dir) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((d = readdir(dir))) {
		const char *n = d->d_name;
		if (strncmp(n, BL_TMP_PREFIX, strlen(BL_TMP_PREFIX)) &&
		    strncmp(n, BL_TOMB_PREFIX, strlen(BL_TOMB_PREFIX)) &&
		    strncmp(n, BL_MARKER_PREFIX, strlen(BL_MARKER_PREFIX)))
			continue;
		int r = files ? (renameat2(dirfd, n, staging_fd, n, RENAME_NOREPLACE) < 0 ? -errno : 0)
			      : bl_staging_announce(h, n);
		if (r < 0 && r != -EEXIST)
			bl_log(BTRFSLAYER_LOG_WARNING, "recovery: bring %s/%s/%s into " BL_STAGING
			       ": %s", h->home, dir_name, n, strerror(-r));
	}
	closedir(dir);
}

int bl_staging_open(btrfslayer *h, btrfslayer_error **err)
{
	bool made[2];
	h->staging_fd = open_staging(h, h->subvolumes_fd, BL_SUBVOLUMES, &made[0], err);
	if (h->staging_fd < 0)
		return h->staging_fd;
	h->quota_staging_fd = open_staging(h, h->quotas_fd, BL_QUOTAS, &made[1], err);
	if (h->quota_staging_fd < 0) {
		int r = h->quota_staging_fd;
		bl_staging_undo(h, made[0]);
		return r;
	}
	h->staging_made = made[0] && made[1];
	if (made[0])
		adopt_legacy_names(h, h->subvolumes_fd, h->staging_fd, BL_SUBVOLUMES, false);
	if (made[1])
		adopt_legacy_names(h, h->quotas_fd, h->quota_staging_fd, BL_QUOTAS, true);
	return 0;
}

void bl_staging_close(btrfslayer *h)
{
	if (h->staging_fd >= 0)
		close(h->staging_fd);
	if (h->quota_staging_fd >= 0)
		close(h->quota_staging_fd);
	h->staging_fd = h->quota_staging_fd = -1;
}

void bl_staging_undo(btrfslayer *h, bool made)
{
	bl_staging_close(h);
	/* only empty ones: what a failed open made holds nothing yet */
	if (made) {
		unlinkat(h->subvolumes_fd, BL_STAGING, AT_REMOVEDIR);
		unlinkat(h->quotas_fd, BL_STAGING, AT_REMOVEDIR);
	}
}

void bl_staging_path(const btrfslayer *h, const char *dir_name, const char *name, char *buf,
		     size_t len)
{
	snprintf(buf, len, "%s/%s/" BL_STAGING "/%s", h->home, dir_name, name);
}
