/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The changes by walking both trees (changes.c says what they are): what
 * Docker's ChangesDirs does, O(files).  Used when the send stream cannot
 * serve (no CAP_SYS_ADMIN, a parent that is not the layer's snapshot
 * ancestor, no parent at all, nested subvolumes), for the subtrees the send
 * stream says were moved or made, and as the oracle the tests hold the
 * send-based answer to.
 *
 * Every directory is opened beneath the one above it (no symlink followed,
 * no mount crossed); the names of a directory in the layer and in the
 * parent are read, sorted and merged.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

struct names {
	char **v;
	size_t n, cap;
};

static void names_free(struct names *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in directory fd (not "." or ".."), sorted. */
static int read_names(int fd, struct names *s)
{
	memset(s, 0, sizeof(*s));
	/* without touching its atime: a walk that wrote one into every
	 * directory of a writable layer would change what it looks at, and
	 * every later send of the layer would carry those directories */
	int dup_fd = openat(fd, ".", BL_DIR_FLAGS | O_NOATIME);
	if (dup_fd < 0 && errno == EPERM)	/* not the owner, no CAP_FOWNER */
		dup_fd = openat(fd, ".", BL_DIR_FLAGS);
	DIR *dir = dup_fd < 0 ? NULL : fdopendir(dup_fd);
	if (!dir) {
		int r = -errno;
		if (dup_fd >= 0)
			close(dup_fd);
		return r;
	}
	struct dirent *d;
	int r = 0;
	while (r == 0 && (errno = 0, d = readdir(dir))) {
		if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
			continue;
		if (s->n == s->cap) {
			size_t cap = s->cap ? 2 * s->cap : 32;
			char **v = realloc(s->v, cap * sizeof(*v));
			if (!v) {
				r = -ENOMEM;
				break;
			}
			s->v = v;
			s->cap = cap;
		}
		s->v[s->n] = strdup(d->d_name);
		if (!s->v[s->n])
			r = -ENOMEM;
		else
			s->n++;
	}
	if (r == 0 && errno)
		r = -errno;
	closedir(dir);
	if (r < 0) {
		names_free(s);
		return r;
	}
	if (s->n)
		qsort(s->v, s->n, sizeof(*s->v), by_name);
	return 0;
}

/* Join dir ("/" or "/a") and name into buf. */
static int join(char *buf, size_t size, const char *dir, const char *name)
{
	int n = snprintf(buf, size, "%s%s%s", dir, strcmp(dir, "/") ? "/" : "", name);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* Open directory `name` of dirfd for the walk; -1 when it cannot be
 * (no longer a directory: the walk does not go below it). */
static int open_child(int dirfd, const char *name, int *fd)
{
	*fd = bl_open_dir_beneath(dirfd, name);
	if (*fd == -ENOENT || *fd == -ENOTDIR || *fd == -ELOOP) {
		*fd = -1;
		return 0;
	}
	return *fd < 0 ? *fd : 0;
}

static int walk_dir(int layer_dir, int parent_dir, const char *path, struct bl_change_list *l);

/* One name of the directory at `dir` that the layer holds: compare it with
 * the parent's (parent_dir -1: none), then go below it. */
static int walk_entry(int layer_dir, int parent_dir, const char *dir, const char *name,
		      struct bl_change_list *l)
{
	char path[PATH_MAX];
	struct bl_entry now, before;
	now.exists = false;
	int r = join(path, sizeof(path), dir, name);
	if (r == 0)
		r = bl_entry_at(layer_dir, name, &now);
	if (r == 0 && parent_dir >= 0)
		r = bl_entry_at(parent_dir, name, &before);
	else
		memset(&before, 0, sizeof(before));
	if (r < 0 || !now.exists)	/* gone meanwhile: the layer is live */
		return r;
	size_t at_entry = l->n;
	bool reported = true;
	if (!before.exists)
		r = bl_change_list_add(l, path, BTRFSLAYER_CHANGE_ADDED, &now, &before);
	else if (bl_entry_differs(&before, &now))
		r = bl_change_list_add(l, path, BTRFSLAYER_CHANGE_MODIFIED, &now, &before);
	else
		reported = false;
	if (r < 0 || !S_ISDIR(now.st.mode))
		return r;
	int child_layer = -1, child_parent = -1;
	r = open_child(layer_dir, name, &child_layer);
	/* Docker reads the parent's entries only where it has a directory */
	if (r == 0 && child_layer >= 0 && before.exists && S_ISDIR(before.st.mode))
		r = open_child(parent_dir, name, &child_parent);
	if (r == 0 && child_layer >= 0)
		r = walk_dir(child_layer, child_parent, path, l);
	if (child_layer >= 0)
		close(child_layer);
	if (child_parent >= 0)
		close(child_parent);
	/* a directory that holds a change is modified */
	if (r == 0 && !reported && l->n > at_entry)
		r = bl_change_list_add(l, path, BTRFSLAYER_CHANGE_MODIFIED, &now, &before);
	return r;
}

/* Everything below the directory at `path`: the layer's names, and the
 * parent's (parent_dir -1: it has no directory there) that the layer lost. */
static int walk_dir(int layer_dir, int parent_dir, const char *path, struct bl_change_list *l)
{
	struct names now, before = { 0 };
	int r = read_names(layer_dir, &now);
	if (r < 0)
		return r;
	if (parent_dir >= 0 && (r = read_names(parent_dir, &before)) < 0) {
		names_free(&now);
		return r;
	}
	size_t i = 0, j = 0;
	while (r == 0 && (i < now.n || j < before.n)) {
		int cmp = i == now.n ? 1 : j == before.n ? -1 : strcmp(now.v[i], before.v[j]);
		if (cmp <= 0) {
			r = walk_entry(layer_dir, parent_dir, path, now.v[i], l);
			i++;
			j += cmp == 0;
			continue;
		}
		/* deleted: only the top of what went */
		char child[PATH_MAX];
		struct bl_entry gone;
		r = join(child, sizeof(child), path, before.v[j]);
		if (r == 0)
			r = bl_entry_at(parent_dir, before.v[j], &gone);
		if (r == 0 && gone.exists)
			r = bl_change_list_add(l, child, BTRFSLAYER_CHANGE_DELETED, NULL, &gone);
		j++;
	}
	names_free(&now);
	names_free(&before);
	return r;
}

int bl_changes_walk(int layer_fd, int parent_fd, const char *path, struct bl_change_list *l)
{
	if (!strcmp(path, "/"))
		return walk_dir(layer_fd, parent_fd, "/", l);
	/* a subtree: walk its top as an entry of its directory */
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX];
	size_t len = (size_t)(slash - path);
	if (len >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, path, len);
	dir[len] = '\0';
	int layer_dir = len ? bl_open_path_beneath(layer_fd, dir + 1) : openat(layer_fd, ".", BL_DIR_FLAGS);
	if (layer_dir == -ENOENT || layer_dir == -ENOTDIR || layer_dir == -ELOOP)
		return 0;	/* not in the layer */
	if (layer_dir < 0)
		return layer_dir == -1 ? -errno : layer_dir;
	int parent_dir = -1, r = 0;
	if (parent_fd >= 0) {
		parent_dir = len ? bl_open_path_beneath(parent_fd, dir + 1)
				 : openat(parent_fd, ".", BL_DIR_FLAGS);
		if (parent_dir == -ENOENT || parent_dir == -ENOTDIR || parent_dir == -ELOOP)
			parent_dir = -1;
		else if (parent_dir < 0)
			r = parent_dir == -1 ? -errno : parent_dir;
	}
	if (r == 0)
		r = walk_entry(layer_dir, parent_dir, len ? dir : "/", slash + 1, l);
	close(layer_dir);
	if (parent_dir >= 0)
		close(parent_dir);
	return r;
}
