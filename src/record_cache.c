/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The limits read from HOME/quotas/<id>, remembered per handle.
 *
 * get and usage read a layer's record on every call.  Read safely (an
 * O_PATH open, a check that it is a regular file, a reopen through /proc:
 * beneath.c) that is six syscalls, more than the rest of a get.  A record
 * is never changed where it lies: the library writes a new file and renames
 * it into place, and Docker's driver rewrites the file, which moves its
 * change time.  So one statx of the name tells whether the file is the one
 * read before: same filesystem, inode, change and modification time and
 * size.  A file that is a mount point is never taken from here (the safe
 * read refuses it).  The cache has a fixed number of slots, indexed by a
 * hash of the id: its memory does not grow with the number of layers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "internal.h"

/* FNV-1a: ids are short, and a collision only costs a miss (the slot
 * holds the whole hash, and the file's identity besides). */
static uint64_t id_hash(const char *id)
{
	uint64_t hash = 0xcbf29ce484222325ULL;
	for (; *id; id++)
		hash = (hash ^ (unsigned char)*id) * 0x100000001b3ULL;
	return hash;
}

static struct bl_cached_record *slot_of(struct bl_record_cache *cache, uint64_t hash)
{
	return &cache->slots[hash % BL_RECORD_CACHE_SLOTS];
}

static void key_from_stat(const struct stat *st, uint64_t hash, struct bl_cached_record *key)
{
	memset(key, 0, sizeof(*key));
	key->id_hash = hash;
	key->dev = st->st_dev;
	key->ino = st->st_ino;
	key->size = st->st_size;
	key->ctime = st->st_ctim;
	key->mtime = st->st_mtim;
}

static bool same_file(const struct bl_cached_record *a, const struct bl_cached_record *b)
{
	return a->id_hash == b->id_hash && a->dev == b->dev && a->ino == b->ino &&
	       a->size == b->size && a->ctime.tv_sec == b->ctime.tv_sec &&
	       a->ctime.tv_nsec == b->ctime.tv_nsec && a->mtime.tv_sec == b->mtime.tv_sec &&
	       a->mtime.tv_nsec == b->mtime.tv_nsec;
}

void bl_record_cache_init(struct bl_record_cache *cache)
{
	memset(cache->slots, 0, sizeof(cache->slots));
	pthread_mutex_init(&cache->lock, NULL);
}

void bl_record_cache_destroy(struct bl_record_cache *cache)
{
	pthread_mutex_destroy(&cache->lock);
}

int bl_record_cache_lookup(struct bl_record_cache *cache, int dirfd, const char *id,
			   uint64_t *limit)
{
	struct statx stx;
	if (statx(dirfd, id, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT,
		  STATX_TYPE | STATX_INO | STATX_SIZE | STATX_CTIME | STATX_MTIME, &stx) < 0)
		return errno == ENOENT ? -ENOENT : 0;
	if (!S_ISREG(stx.stx_mode) || (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT))
		return 0;
	struct stat st = {
		.st_dev = makedev(stx.stx_dev_major, stx.stx_dev_minor),
		.st_ino = stx.stx_ino,
		.st_size = (off_t)stx.stx_size,
		.st_ctim = { stx.stx_ctime.tv_sec, stx.stx_ctime.tv_nsec },
		.st_mtim = { stx.stx_mtime.tv_sec, stx.stx_mtime.tv_nsec },
	};
	struct bl_cached_record key;
	uint64_t hash = id_hash(id);
	key_from_stat(&st, hash, &key);
	struct bl_cached_record *slot = slot_of(cache, hash);
	pthread_mutex_lock(&cache->lock);
	bool hit = slot->valid && same_file(slot, &key);
	if (hit)
		*limit = slot->limit;
	pthread_mutex_unlock(&cache->lock);
	return hit;
}

void bl_record_cache_store(struct bl_record_cache *cache, const char *id, const struct stat *st,
			   uint64_t limit)
{
	uint64_t hash = id_hash(id);
	struct bl_cached_record *slot = slot_of(cache, hash);
	pthread_mutex_lock(&cache->lock);
	key_from_stat(st, hash, slot);
	slot->limit = limit;
	slot->valid = true;
	pthread_mutex_unlock(&cache->lock);
}
