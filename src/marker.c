/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Qgroup markers: where the qgroup of a subvolume about to be deleted is
 * recorded until it is destroyed (quota.c says when one is needed).
 *
 * A marker is an extended attribute user.btrfslayer.qgroup.<subvolume id>
 * of HOME/subvolumes.  The deletion changes that directory anyway (the
 * layer's entry goes), and its attributes sort next to its entries in the
 * tree, so the marker costs the commit next to nothing; a file of its own,
 * quotas/.staging/.qgroup-<id>, added an inode, two names and a directory
 * change to every removal (20 to 40% of one with simple quotas).  Both are
 * metadata of the one btrfs the deletion changes, written before it, so no
 * crash keeps the deletion and loses its marker.
 *
 * Such a file is still what versions before this one wrote, and what is
 * written when the attribute cannot be: the names of a directory's
 * attributes must fit in 64 KiB to be listed, so past MARKER_NAMES_MAX
 * bytes of them markers are files again.  Open's sweep adopts both.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "internal.h"

#define MARKER_ATTRIBUTE_PREFIX "user.btrfslayer.qgroup."
/* Half the 64 KiB listxattr() can return: about 700 markers at once, with
 * room for whatever other attributes the directory has. */
#define MARKER_NAMES_MAX 32768

static void attribute_name(uint64_t id, char *buf, size_t len)
{
	snprintf(buf, len, MARKER_ATTRIBUTE_PREFIX "%" PRIu64, id);
}

static void file_name(uint64_t id, char buf[BL_RESERVED_NAME_MAX])
{
	snprintf(buf, BL_RESERVED_NAME_MAX, BL_MARKER_PREFIX "%" PRIu64, id);
}

/* The subvolume id in a marker's name (after `prefix`), or 0 when it is
 * not one: digits only, no leading zero, no overflow. */
static uint64_t marker_id(const char *name, const char *prefix)
{
	size_t len = strlen(prefix);
	const char *digits = name + len;
	if (strncmp(name, prefix, len) || *digits < '1' || *digits > '9')
		return 0;
	char *end;
	errno = 0;
	uint64_t id = strtoull(digits, &end, 10);
	return errno || *end ? 0 : id;
}

uint64_t bl_marker_file_id(const char *name)
{
	return marker_id(name, BL_MARKER_PREFIX);
}

int bl_marker_write(btrfslayer *h, uint64_t id)
{
	char name[sizeof(MARKER_ATTRIBUTE_PREFIX) + 20];
	ssize_t used = flistxattr(h->subvolumes_fd, NULL, 0);
	if (used >= 0 && used < MARKER_NAMES_MAX) {
		attribute_name(id, name, sizeof(name));
		if (fsetxattr(h->subvolumes_fd, name, "", 0, 0) == 0)
			return 0;
		if (errno == ENOSPC || errno == EDQUOT)
			return -errno;
	}
	/* no room for its name, or no attributes here (a caller who does
	 * not own the directory): a file */
	file_name(id, name);
	int fd = bl_open_regular_beneath(h->quota_staging_fd, name, O_WRONLY | O_CREAT, 0600);
	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

void bl_marker_file_path(const btrfslayer *h, uint64_t id, char *buf, size_t len)
{
	char name[BL_RESERVED_NAME_MAX];
	file_name(id, name);
	bl_staging_path(h, BL_QUOTAS, name, buf, len);
}

void bl_marker_remove(btrfslayer *h, uint64_t id)
{
	char name[sizeof(MARKER_ATTRIBUTE_PREFIX) + 20];
	attribute_name(id, name, sizeof(name));
	if (fremovexattr(h->subvolumes_fd, name) < 0 && errno != ENODATA)
		bl_log(BTRFSLAYER_LOG_WARNING, "remove attribute %s of %s/" BL_SUBVOLUMES ": %s",
		       name, h->home, strerror(errno));
	file_name(id, name);
	if (unlinkat(h->quota_staging_fd, name, 0) < 0 && errno != ENOENT)
		bl_log(BTRFSLAYER_LOG_WARNING, "remove %s/" BL_QUOTAS "/" BL_STAGING "/%s: %s",
		       h->home, name, strerror(errno));
}

int bl_marker_attributes(btrfslayer *h, uint64_t **ids, size_t *n)
{
	*ids = NULL;
	*n = 0;
	char *names = NULL;
	ssize_t size = -1;
	errno = ERANGE;
	/* another handle may add one between the two calls: then again */
	for (int attempt = 0; size < 0 && errno == ERANGE && attempt < 4; attempt++) {
		free(names);
		names = NULL;
		size = flistxattr(h->subvolumes_fd, NULL, 0);
		if (size <= 0)
			break;
		names = malloc((size_t)size);
		if (!names)
			return -ENOMEM;
		size = flistxattr(h->subvolumes_fd, names, (size_t)size);
	}
	if (size < 0) {
		int r = -errno;
		free(names);
		return r;
	}
	size_t count = 0;
	for (ssize_t at = 0; at < size; at += (ssize_t)strlen(names + at) + 1)
		count += marker_id(names + at, MARKER_ATTRIBUTE_PREFIX) != 0;
	*ids = count ? calloc(count, sizeof(**ids)) : NULL;
	if (count && !*ids) {
		free(names);
		return -ENOMEM;
	}
	for (ssize_t at = 0; at < size; at += (ssize_t)strlen(names + at) + 1) {
		uint64_t id = marker_id(names + at, MARKER_ATTRIBUTE_PREFIX);
		if (id && *n < count)
			(*ids)[(*n)++] = id;
	}
	free(names);
	return 0;
}
