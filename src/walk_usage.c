/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The library's one walk of a layer's files: get_usage with
 * BTRFSLAYER_USAGE_WALK, for runtimes that need a size or an inode count
 * with quotas off.  Never used otherwise (the quota tree is O(1)).
 *
 * Every step is relative to the directory fd above it: no symlink is
 * followed (symlinks are counted, not entered), no mount point is crossed
 * and no nested subvolume entered (each btrfs subvolume has its own st_dev,
 * and a mount is told by its mount id where statx gives one, else by
 * bl_open_dir_beneath() refusing it).  Each inode counts once (hard links),
 * the root included; bytes are st_blocks * 512, what the files hold on
 * disk (shared extents counted in full).
 *
 * Memory: one fd and the names of one directory per level of depth; a tree
 * deeper than the fds left to the process fails with -EMFILE, saying so.
 * The walk is not a snapshot: files changing meanwhile are counted as
 * found (one that vanishes is skipped).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "internal.h"

/* One directory being walked: its fd and the names still to visit. */
struct level {
	int fd;
	char **names;
	size_t n, next;
};

/* Inodes with more than one link, so that each is counted once: a sorted
 * set would do too; an open-addressing hash keeps it O(1). */
struct inode_set {
	uint64_t *slots;	/* 0: empty (no btrfs inode is 0) */
	size_t cap, used;
};

/* 1 if added, 0 if already there, -ENOMEM. */
static int set_add(struct inode_set *s, uint64_t ino)
{
	if (2 * (s->used + 1) > s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		uint64_t *slots = calloc(cap, sizeof(*slots));
		if (!slots)
			return -ENOMEM;
		for (size_t i = 0; i < s->cap; i++) {
			if (!s->slots[i])
				continue;
			size_t j = (s->slots[i] * 0x9E3779B97F4A7C15ull) & (cap - 1);
			while (slots[j])
				j = (j + 1) & (cap - 1);
			slots[j] = s->slots[i];
		}
		free(s->slots);
		s->slots = slots;
		s->cap = cap;
	}
	size_t j = (ino * 0x9E3779B97F4A7C15ull) & (s->cap - 1);
	for (; s->slots[j]; j = (j + 1) & (s->cap - 1))
		if (s->slots[j] == ino)
			return 0;
	s->slots[j] = ino;
	s->used++;
	return 1;
}

/* Read the names of the directory fd holds (a dup of it, so that fd keeps
 * its own position), "." and ".." left out. */
static int read_names(int fd, struct level *l)
{
	int dup_fd = openat(fd, ".", BL_DIR_FLAGS);
	DIR *dir = dup_fd < 0 ? NULL : fdopendir(dup_fd);
	struct dirent *d;
	size_t cap = 0;
	if (!dir) {
		int r = -errno;
		if (dup_fd >= 0)
			close(dup_fd);
		return r;
	}
	int r = 0;
	while (r == 0 && (errno = 0, d = readdir(dir))) {
		if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
			continue;
		if (l->n == cap) {
			size_t ncap = cap ? 2 * cap : 16;
			char **grown = reallocarray(l->names, ncap, sizeof(*grown));
			if (!grown) {
				r = -ENOMEM;
				break;
			}
			l->names = grown;
			cap = ncap;
		}
		l->names[l->n] = strdup(d->d_name);
		if (!l->names[l->n])
			r = -ENOMEM;
		else
			l->n++;
	}
	if (r == 0 && errno)
		r = -errno;
	closedir(dir);
	return r;
}

static void level_free(struct level *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->names[i]);
	free(l->names);
	if (l->fd >= 0)
		close(l->fd);
}

/* statx with the mount id where the kernel has it (Linux 5.8). */
static int stat_entry(int dirfd, const char *name, struct statx *stx)
{
	int flags = AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | (*name ? 0 : AT_EMPTY_PATH);
	if (statx(dirfd, name, flags, STATX_BASIC_STATS | STATX_MNT_ID, stx) < 0)
		return -errno;
	return 0;
}

/* Count one inode: blocks and the inode, once. */
static int count(const struct statx *stx, struct inode_set *seen, uint64_t *bytes,
		 uint64_t *inodes)
{
	if (!S_ISDIR(stx->stx_mode) && stx->stx_nlink > 1) {
		int r = set_add(seen, stx->stx_ino);
		if (r <= 0)
			return r;
	}
	*bytes += stx->stx_blocks * 512;
	*inodes += 1;
	return 0;
}

/* Whether the directory fd holds is the one stx described (a nested
 * subvolume swapped in meanwhile is not). */
static bool same_directory(int fd, const struct statx *stx)
{
	struct stat st;
	return fstat(fd, &st) == 0 && st.st_ino == stx->stx_ino &&
	       major(st.st_dev) == stx->stx_dev_major && minor(st.st_dev) == stx->stx_dev_minor;
}

int bl_walk_usage(int layer_fd, uint64_t *bytes, uint64_t *inodes, const char *path,
		  btrfslayer_error **err)
{
	struct inode_set seen = { 0 };
	struct level *stack = NULL;
	size_t depth = 0, cap = 0;
	struct statx root;
	*bytes = *inodes = 0;

	int r = stat_entry(layer_fd, "", &root);
	if (r == 0)
		r = count(&root, &seen, bytes, inodes);
	bool have_mnt_id = r == 0 && (root.stx_mask & STATX_MNT_ID);
	int fd = r < 0 ? r : openat(layer_fd, ".", BL_DIR_FLAGS);
	if (r == 0 && fd < 0)
		r = -errno;
	while (r == 0) {
		if (fd >= 0) {	/* descend into fd */
			if (depth == cap) {
				size_t ncap = cap ? 2 * cap : 16;
				struct level *grown = reallocarray(stack, ncap, sizeof(*grown));
				if (!grown) {
					close(fd);
					r = -ENOMEM;
					break;
				}
				stack = grown;
				cap = ncap;
			}
			stack[depth] = (struct level){ .fd = fd };
			r = read_names(fd, &stack[depth++]);
			fd = -1;
			continue;
		}
		if (!depth)
			break;
		struct level *l = &stack[depth - 1];
		if (l->next == l->n) {	/* done with this directory */
			level_free(l);
			depth--;
			continue;
		}
		const char *name = l->names[l->next++];
		struct statx stx;
		r = stat_entry(l->fd, name, &stx);
		if (r == -ENOENT) {	/* gone meanwhile */
			r = 0;
			continue;
		}
		if (r < 0)
			break;
		/* a nested subvolume, another filesystem or a mount: not the
		 * layer's */
		if (stx.stx_dev_major != root.stx_dev_major || stx.stx_dev_minor != root.stx_dev_minor ||
		    (have_mnt_id && (stx.stx_mask & STATX_MNT_ID) && stx.stx_mnt_id != root.stx_mnt_id))
			continue;
		r = count(&stx, &seen, bytes, inodes);
		if (r < 0 || !S_ISDIR(stx.stx_mode))
			continue;
		fd = bl_open_dir_beneath(l->fd, name);
		if (fd == -ENOENT || fd == -EXDEV || fd == -ELOOP || fd == -ENOTDIR)
			fd = -1;	/* gone, or replaced by a mount or a symlink */
		else if (fd < 0)
			r = fd;
		else if (!same_directory(fd, &stx)) {
			close(fd);	/* swapped for another since its statx */
			fd = -1;
		}
	}
	while (depth)
		level_free(&stack[--depth]);
	free(stack);
	free(seen.slots);
	if (r == -EMFILE || r == -ENFILE)
		return bl_fail(err, r, "usage of layer: walk %s: too deep for the fds left to the "
			       "process", path);
	if (r < 0)
		return bl_fail(err, r, "usage of layer: walk %s", path);
	return 0;
}
