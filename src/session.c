/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Handles sharing a home, in one process or many.
 *
 * HOME/.lock is never written, only locked, with open-file-description
 * locks: they belong to the handle's own open of the file (two handles of
 * one process do not share them) and vanish when the process dies, however
 * it dies.  Its bytes [0, BL_SESSION_SLOTS) are session slots, one held by
 * each open handle; the next BL_ID_LOCKS bytes are the id locks, and the
 * byte after them is the home lock.  A name a handle reserves carries its
 * slot, so the sweep of a later open can tell what a dead handle left from
 * what a live one is still building.  The byte after the home lock guards
 * the list of qgroup markers (marker.c) while a handle rewrites it.
 *
 * The home lock serializes what opens and closes decide about home itself:
 * the bind mount on it, its records (.idmap, .mount) and its layout.  An
 * opener takes its slot first, then the home lock; a closer that holds the
 * home lock and sees no other slot held knows that every other opener is
 * still to take the home lock, and will see what it leaves.  A closer may
 * remove a .lock its failed open made: an opener checks, under the home
 * lock, that the file it locked is still HOME/.lock, and starts over if not.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define LOCK_FILE ".lock"
#define ID_LOCKS_START BL_SESSION_SLOTS
#define HOME_LOCK (ID_LOCKS_START + BL_ID_LOCKS)
#define MARKERS_LOCK (HOME_LOCK + 1)

static int byte_lock(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl = {
		.l_type = type,
		.l_whence = SEEK_SET,
		.l_start = start,
		.l_len = len,
	};
	while (fcntl(fd, cmd, &fl) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return cmd == F_OFD_GETLK ? fl.l_type : 0;
}

int bl_session_open(btrfslayer *h, btrfslayer_error **err)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/" LOCK_FILE, h->home);
	/* a regular file only: a device planted here is never opened */
	int fd = bl_open_regular_beneath(h->home_fd, LOCK_FILE, O_RDWR | O_CREAT, 0600);
	if (bl_refusal_reason(fd))
		return bl_fail_msg(err, fd, "open lock file: %s: %s, refusing to use it", path,
				   bl_refusal_reason(fd));
	if (fd < 0)
		return bl_fail(err, fd, "open lock file: %s", path);
	for (unsigned slot = 0; slot < BL_SESSION_SLOTS; slot++) {
		int r = byte_lock(fd, F_OFD_SETLK, F_WRLCK, slot, 1);
		if (r == 0) {
			h->lock_fd = fd;
			h->slot = slot;
			return 0;
		}
		if (r != -EAGAIN && r != -EACCES) {
			close(fd);
			return bl_fail(err, r, "lock %s", path);
		}
	}
	close(fd);
	return bl_fail_msg(err, -EBUSY, "open: %s: %d handles have this home open already",
			   h->home, BL_SESSION_SLOTS);
}

void bl_session_close(btrfslayer *h)
{
	if (h->lock_fd >= 0)
		close(h->lock_fd);	/* releases every lock the handle holds */
	h->lock_fd = -1;
}

/* Wait for the lock byte at `at` of the handle's .lock, or let it go. */
static void hold_byte(btrfslayer *h, off_t at)
{
	if (h->lock_fd < 0)
		return;	/* a read-only handle holds no slot */
	int r = byte_lock(h->lock_fd, F_OFD_SETLKW, F_WRLCK, at, 1);
	if (r < 0)	/* only -ENOLCK is possible: go on, as before locks */
		bl_log(BTRFSLAYER_LOG_WARNING, "lock %s/" LOCK_FILE ": %s", h->home,
		       btrfslayer_strerror(r));
}

static void release_byte(btrfslayer *h, off_t at)
{
	if (h->lock_fd >= 0)
		byte_lock(h->lock_fd, F_OFD_SETLK, F_UNLCK, at, 1);
}

void bl_session_lock_id(btrfslayer *h, unsigned index)
{
	hold_byte(h, ID_LOCKS_START + index);
}

bool bl_session_trylock_id(btrfslayer *h, unsigned index)
{
	if (h->lock_fd < 0)
		return true;
	int r = byte_lock(h->lock_fd, F_OFD_SETLK, F_WRLCK, ID_LOCKS_START + index, 1);
	return r != -EAGAIN && r != -EACCES;	/* -ENOLCK: go on, as above */
}

void bl_session_unlock_id(btrfslayer *h, unsigned index)
{
	release_byte(h, ID_LOCKS_START + index);
}

void bl_session_lock_home(btrfslayer *h)
{
	hold_byte(h, HOME_LOCK);
}

void bl_session_unlock_home(btrfslayer *h)
{
	release_byte(h, HOME_LOCK);
}

void bl_session_lock_markers(btrfslayer *h)
{
	hold_byte(h, MARKERS_LOCK);
}

void bl_session_unlock_markers(btrfslayer *h)
{
	release_byte(h, MARKERS_LOCK);
}

int bl_session_lock_home_at(int dirfd)
{
	int fd = openat(dirfd, LOCK_FILE, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = byte_lock(fd, F_OFD_SETLKW, F_WRLCK, HOME_LOCK, 1);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

/* Whether the file the handle holds locks in is dirfd's .lock. */
static bool is_lock_file(const btrfslayer *h, int dirfd)
{
	struct stat held, named;
	return fstat(h->lock_fd, &held) == 0 && held.st_nlink > 0 &&
	       fstatat(dirfd, LOCK_FILE, &named, AT_SYMLINK_NOFOLLOW) == 0 &&
	       held.st_dev == named.st_dev && held.st_ino == named.st_ino;
}

bool bl_session_current(const btrfslayer *h)
{
	return is_lock_file(h, h->home_fd);
}

bool bl_session_exists(int dirfd)
{
	struct stat st;
	return fstatat(dirfd, LOCK_FILE, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT;
}

void bl_session_remove(btrfslayer *h, int dirfd)
{
	if (is_lock_file(h, dirfd) && unlinkat(dirfd, LOCK_FILE, 0) < 0)
		bl_log(BTRFSLAYER_LOG_WARNING, "cleanup after failed open: remove %s/" LOCK_FILE
		       ": %s", h->home, strerror(errno));
}

void bl_reserved_name(const btrfslayer *h, const char *prefix,
		      char buf[BL_RESERVED_NAME_MAX])
{
	uint64_t r;
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
		/* entropy pool not ready at early boot: unique is enough */
		static uint64_t counter;
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		r = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^
		    ((uint64_t)getpid() << 40) ^ __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
	}
	snprintf(buf, BL_RESERVED_NAME_MAX, "%s%u-%016" PRIx64, prefix, h->slot, r);
}

/* The slot in "<prefix><slot>-<16 hex>", or -1 when name is not of that
 * form. */
static long slot_of(const char *name, const char *prefix)
{
	const char *p = name + strlen(prefix);
	char *end;
	if (*p < '0' || *p > '9')
		return -1;
	errno = 0;
	unsigned long slot = strtoul(p, &end, 10);
	if (errno || slot >= BL_SESSION_SLOTS || *end != '-' || strlen(end + 1) != 16 ||
	    strspn(end + 1, "0123456789abcdef") != 16)
		return -1;
	return (long)slot;
}

/* Whether another handle holds a lock in [start, start + len): our own
 * locks never conflict with us, so they do not count. */
static bool held_by_another(const btrfslayer *h, off_t start, off_t len)
{
	int type = byte_lock(h->lock_fd, F_OFD_GETLK, F_WRLCK, start, len);
	return type != F_UNLCK;	/* an error counts as held: keep things */
}

bool bl_session_alone(const btrfslayer *h)
{
	return !held_by_another(h, 0, BL_SESSION_SLOTS);
}

bool bl_reserved_name_mine(const btrfslayer *h, const char *name, const char *prefix)
{
	return slot_of(name, prefix) == (long)h->slot;
}

bool bl_reserved_name_abandoned(const btrfslayer *h, const char *name,
				const char *prefix)
{
	long slot = slot_of(name, prefix);
	if (slot < 0)
		return !held_by_another(h, 0, BL_SESSION_SLOTS);
	return (unsigned long)slot == h->slot || !held_by_another(h, slot, 1);
}
