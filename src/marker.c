/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Qgroup markers: where the qgroup of a subvolume about to be deleted is
 * recorded until it is destroyed (quota.c says when one is needed).
 *
 * The markers are one list, the extended attribute user.btrfslayer.qgroups
 * of HOME/subvolumes: subvolume ids in decimal, one space between two.  The
 * deletion changes that directory anyway (the layer's entry goes, its
 * times change), and the attribute's item sits in the tree right after the
 * directory's inode, so a marker costs the commit next to nothing.  One
 * attribute per marker cost as little while they were few, but with simple
 * quotas a removed parent's qgroup waits as long as a snapshot shares its
 * data, and a hundred or more waiting markers split the directory's leaf:
 * every later removal then wrote a block more of home's tree (as a file of
 * its own, quotas/.staging/.qgroup-<id>, a marker added an inode, two names
 * and a directory change to every removal: 20 to 40% of one with simple
 * quotas).  A list is rewritten whole, so a handle rewrites it holding a
 * lock (marker_lock against its own threads, a byte of HOME/.lock against
 * other handles).  The marker is metadata of the one btrfs the deletion
 * changes, written before it, so no crash keeps the deletion and loses it.
 *
 * A file is still what versions before this one wrote, and what is written
 * when the list cannot take the id: past MARKER_LIST_MAX bytes (the item
 * stays small beside the directory's inode), or where attributes cannot be
 * set.  Open's sweep adopts both.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "internal.h"

#define MARKER_ATTRIBUTE "user.btrfslayer.qgroups"
/* Some 300 ids of six digits: an eighth of a 16 KiB leaf at most, and
 * within the largest attribute a btrfs of 4 KiB leaves takes (some 3.9 KiB;
 * past it, as on a full filesystem, setting it fails with ENOSPC). */
#define MARKER_LIST_MAX 2048

static void file_name(uint64_t id, char buf[BL_RESERVED_NAME_MAX])
{
	snprintf(buf, BL_RESERVED_NAME_MAX, BL_MARKER_PREFIX "%" PRIu64, id);
}

/* The subvolume id `digits` spells, or 0 when it is not one: digits only,
 * no leading zero, no overflow. */
static uint64_t parse_id(const char *digits, size_t len)
{
	if (!len || len > 20 || *digits < '1' || *digits > '9')
		return 0;
	uint64_t id = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned)(digits[i] - '0');
		if (d > 9 || id > (UINT64_MAX - d) / 10)
			return 0;
		id = id * 10 + d;
	}
	return id;
}

uint64_t bl_marker_file_id(const char *name)
{
	size_t len = strlen(BL_MARKER_PREFIX);
	if (strncmp(name, BL_MARKER_PREFIX, len))
		return 0;
	return parse_id(name + len, strlen(name + len));
}

/* The list as it is now into buf (NUL-terminated; "" when there is none):
 * its length, or a negative errno. */
static ssize_t read_list(const btrfslayer *h, char buf[MARKER_LIST_MAX + 1])
{
	ssize_t n = fgetxattr(h->subvolumes_fd, MARKER_ATTRIBUTE, buf, MARKER_LIST_MAX);
	if (n < 0) {
		buf[0] = '\0';
		/* ERANGE: longer than this library writes it; not ours */
		return errno == ENODATA ? 0 : -errno;
	}
	buf[n] = '\0';
	return n;
}

/* Where id is in list, or NULL. */
static char *find_id(char *list, uint64_t id)
{
	for (char *at = list; *at;) {
		size_t len = strcspn(at, " ");
		if (parse_id(at, len) == id)
			return at;
		at += len;
		at += *at == ' ';
	}
	return NULL;
}

/* Add id to the list; 1 when there is no room for it there, a negative
 * errno when the attribute cannot be read or set. */
static int list_add(btrfslayer *h, uint64_t id)
{
	char list[MARKER_LIST_MAX + 1];
	ssize_t len = read_list(h, list);
	if (len < 0)
		return (int)len;
	if (find_id(list, id))
		return 0;
	int added = snprintf(list + len, sizeof(list) - (size_t)len, "%s%" PRIu64,
			     len ? " " : "", id);
	if (added < 0 || (size_t)len + (size_t)added > MARKER_LIST_MAX)
		return 1;
	if (fsetxattr(h->subvolumes_fd, MARKER_ATTRIBUTE, list, (size_t)len + (size_t)added, 0) < 0)
		return -errno;
	return 0;
}

static int list_remove(btrfslayer *h, uint64_t id)
{
	char list[MARKER_LIST_MAX + 1];
	ssize_t len = read_list(h, list);
	if (len < 0)
		return (int)len;
	char *at = find_id(list, id);
	if (!at)
		return 0;
	size_t skip = strcspn(at, " ");
	skip += at[skip] == ' ';
	memmove(at, at + skip, strlen(at + skip) + 1);
	len = (ssize_t)strlen(list);
	if (len && list[len - 1] == ' ')
		list[--len] = '\0';	/* it was the last of several */
	int r = len ? fsetxattr(h->subvolumes_fd, MARKER_ATTRIBUTE, list, (size_t)len, 0)
		    : fremovexattr(h->subvolumes_fd, MARKER_ATTRIBUTE);
	return r < 0 && errno != ENODATA ? -errno : 0;
}

static void lock_list(btrfslayer *h)
{
	pthread_mutex_lock(&h->marker_lock);
	bl_session_lock_markers(h);
}

static void unlock_list(btrfslayer *h)
{
	bl_session_unlock_markers(h);
	pthread_mutex_unlock(&h->marker_lock);
}

int bl_marker_write(btrfslayer *h, uint64_t id)
{
	lock_list(h);
	int r = list_add(h, id);
	unlock_list(h);
	if (r == 0)
		return 0;
	/* no room in the list, no attributes here (a caller who does not own
	 * the directory), or ENOSPC: a full filesystem, or a list longer than
	 * this one's leaves take.  A file, then; on a full filesystem that
	 * fails with ENOSPC too, and the caller goes on without a marker. */
	char name[BL_RESERVED_NAME_MAX];
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
	lock_list(h);
	int r = list_remove(h, id);
	unlock_list(h);
	if (r < 0)
		bl_log(BTRFSLAYER_LOG_WARNING, "remove qgroup 0/%" PRIu64 " from attribute %s of "
		       "%s/" BL_SUBVOLUMES ": %s", id, MARKER_ATTRIBUTE, h->home, strerror(-r));
	char name[BL_RESERVED_NAME_MAX];
	file_name(id, name);
	if (unlinkat(h->quota_staging_fd, name, 0) < 0 && errno != ENOENT)
		bl_log(BTRFSLAYER_LOG_WARNING, "remove %s/" BL_QUOTAS "/" BL_STAGING "/%s: %s",
		       h->home, name, strerror(errno));
}

int bl_marker_attributes(btrfslayer *h, uint64_t **ids, size_t *n)
{
	*ids = NULL;
	*n = 0;
	/* one read of one attribute: no lock, it is whole either way */
	char list[MARKER_LIST_MAX + 1];
	ssize_t len = read_list(h, list);
	if (len <= 0)
		return (int)len;
	size_t count = 1;
	for (ssize_t i = 0; i < len; i++)
		count += list[i] == ' ';
	*ids = calloc(count, sizeof(**ids));
	if (!*ids)
		return -ENOMEM;
	for (char *at = list; *at;) {
		size_t digits = strcspn(at, " ");
		uint64_t id = parse_id(at, digits);
		if (id && *n < count)
			(*ids)[(*n)++] = id;	/* what is not an id is skipped */
		at += digits;
		at += *at == ' ';
	}
	return 0;
}
