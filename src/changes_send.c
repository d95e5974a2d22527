/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The changes from the send stream (changes.c says what they are).
 *
 * BTRFS_IOC_SEND of the layer against its parent, without file data, is the
 * list of commands that turn the parent into the layer: make, link, rename,
 * unlink and rmdir for names; chmod, chown, utimes, truncate, xattrs and
 * extent updates for inodes.  Its paths are those of the tree as it stands
 * at each command, halfway between the two, and new or displaced inodes
 * first get orphan names ("o<ino>-<gen>-<n>") at the root.  So the stream
 * is replayed on a sparse model of that tree: a node for every name a
 * command touched, made on first use; a name no command touched is still
 * the parent's name at the same place, so a node made on first use knows
 * where it stood in the parent (its origin).  At the end each node knows
 * where it stands in the layer, if anywhere, and where it stood in the
 * parent, if anywhere; orphan names have been renamed away like any other.
 *
 * The model only says which paths to look at.  What is reported is decided
 * by looking at them in both trees with the walk's comparison, so Docker's
 * rules (a directory's mtime does not count, a file's does, ...) hold
 * whatever the kernel chose to send:
 * - a name made or moved by the stream: the subtree there is walked
 *   (everything below a new or moved directory is new to its path);
 * - an inode whose attributes or data the stream touched: its path, and
 *   every other link of it (BTRFS_IOC_INO_PATHS), since the stream names
 *   one link only;
 * - where a moved or removed name stood in the parent: a deletion, or
 *   whatever replaced it;
 * then every directory above a change is modified, as Docker's is.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

enum {
	NODE_NEW = 1,		/* made by the stream (mk*, link, symlink) */
	NODE_MOVED = 2,		/* renamed by the stream */
	NODE_TOUCHED = 4,	/* its inode's attributes or data changed */
	NODE_GONE = 8,		/* unlinked, removed or renamed over */
};

struct vnode {
	struct vnode *parent;	/* NULL for the root and detached nodes */
	char *name;
	char *origin;		/* "/a/b" in the parent tree; NULL when new */
	unsigned flags;
	struct vnode *hash_next;
	struct vnode *all_next;
};

struct model {
	struct vnode root;
	struct vnode **buckets;
	size_t n_buckets, n_nodes;
	struct vnode *all;
};

static size_t hash_of(const struct vnode *parent, const char *name)
{
	uint64_t h = 14695981039346656037ULL ^ (uint64_t)(uintptr_t)parent;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return (size_t)(h ^ (h >> 29));
}

static struct vnode **slot_of(struct model *m, const struct vnode *parent, const char *name)
{
	struct vnode **s = &m->buckets[hash_of(parent, name) & (m->n_buckets - 1)];
	while (*s && !((*s)->parent == parent && !strcmp((*s)->name, name)))
		s = &(*s)->hash_next;
	return s;
}

static int grow(struct model *m)
{
	size_t n = m->n_buckets ? 2 * m->n_buckets : 1024;
	struct vnode **b = calloc(n, sizeof(*b));
	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < m->n_buckets; i++) {
		for (struct vnode *v = m->buckets[i], *next; v; v = next) {
			next = v->hash_next;
			struct vnode **s = &b[hash_of(v->parent, v->name) & (n - 1)];
			v->hash_next = *s;
			*s = v;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->n_buckets = n;
	return 0;
}

static void attach(struct model *m, struct vnode *v, struct vnode *parent)
{
	v->parent = parent;
	struct vnode **s = &m->buckets[hash_of(parent, v->name) & (m->n_buckets - 1)];
	v->hash_next = *s;
	*s = v;
}

static void detach(struct model *m, struct vnode *v)
{
	struct vnode **s = slot_of(m, v->parent, v->name);
	if (*s == v)
		*s = v->hash_next;
	v->parent = NULL;
	v->hash_next = NULL;
}

/* A node for `name` under parent (not there yet). */
static struct vnode *new_node(struct model *m, struct vnode *parent, const char *name,
			      unsigned flags)
{
	if (m->n_nodes >= m->n_buckets && grow(m) < 0)
		return NULL;
	struct vnode *v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	v->name = strdup(name);
	v->flags = flags;
	if (!(flags & NODE_NEW) && parent->origin) {
		size_t len = strlen(parent->origin) + strlen(name) + 2;
		v->origin = malloc(len);
		if (v->origin)
			snprintf(v->origin, len, "%s%s%s", parent->origin,
				 strcmp(parent->origin, "/") ? "/" : "", name);
	}
	if (!v->name || (!(flags & NODE_NEW) && parent->origin && !v->origin)) {
		free(v->name);
		free(v->origin);
		free(v);
		return NULL;
	}
	v->all_next = m->all;
	m->all = v;
	m->n_nodes++;
	attach(m, v, parent);
	return v;
}

/* The node of directory entry `name` of dir, made from the parent tree on
 * first use.  -EBADMSG for a name the stream never made in a new directory. */
static int child(struct model *m, struct vnode *dir, const char *name, struct vnode **out)
{
	struct vnode **s = slot_of(m, dir, name);
	if (*s) {
		*out = *s;
		return 0;
	}
	if (!dir->origin)
		return -EBADMSG;
	*out = new_node(m, dir, name, 0);
	return *out ? 0 : -ENOMEM;
}

/* Split "a/b/c" into the node of "a/b" and the name "c" (in buf). */
static int resolve_dir(struct model *m, const char *path, struct vnode **dir,
		       char name[NAME_MAX + 1])
{
	struct vnode *cur = &m->root;
	const char *p = path;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		if (len > NAME_MAX)
			return -EBADMSG;
		memcpy(name, p, len);
		name[len] = '\0';
		if (!slash)
			break;
		int r = child(m, cur, name, &cur);
		if (r < 0)
			return r;
		p = slash + 1;
	}
	*dir = cur;
	return 0;
}

static int resolve(struct model *m, const char *path, struct vnode **out)
{
	char name[NAME_MAX + 1];
	struct vnode *dir;
	if (!*path) {
		*out = &m->root;
		return 0;
	}
	int r = resolve_dir(m, path, &dir, name);
	return r < 0 ? r : child(m, dir, name, out);
}

/* Make path a new name; whatever stood there goes. */
static int make(struct model *m, const char *path, struct vnode **out)
{
	char name[NAME_MAX + 1];
	struct vnode *dir;
	if (!*path)
		return -EBADMSG;
	int r = resolve_dir(m, path, &dir, name);
	if (r < 0)
		return r;
	struct vnode **s = slot_of(m, dir, name);
	if (*s) {
		(*s)->flags |= NODE_GONE;
		detach(m, *s);
	}
	*out = new_node(m, dir, name, NODE_NEW);
	return *out ? 0 : -ENOMEM;
}

static int rename_node(struct model *m, const char *from, const char *to)
{
	struct vnode *v, *dir;
	char name[NAME_MAX + 1];
	if (!*from || !*to)
		return -EBADMSG;
	int r = resolve(m, from, &v);
	if (r == 0)
		r = resolve_dir(m, to, &dir, name);
	if (r < 0)
		return r;
	for (struct vnode *a = dir; a; a = a->parent)
		if (a == v)
			return -EBADMSG;	/* into itself */
	detach(m, v);
	struct vnode **s = slot_of(m, dir, name);
	if (*s) {
		(*s)->flags |= NODE_GONE;
		detach(m, *s);
	}
	char *copy = strdup(name);
	if (!copy)
		return -ENOMEM;
	free(v->name);
	v->name = copy;
	v->flags |= NODE_MOVED;
	attach(m, v, dir);
	return 0;
}

static int on_command(const struct bl_send_cmd *c, void *userdata)
{
	struct model *m = userdata;
	struct vnode *v;
	int r;
	switch (c->cmd) {
	case BL_SEND_C_SUBVOL:
	case BL_SEND_C_SNAPSHOT:
	case BL_SEND_C_END:
		return 0;
	case BL_SEND_C_MKFILE:
	case BL_SEND_C_MKDIR:
	case BL_SEND_C_MKNOD:
	case BL_SEND_C_MKFIFO:
	case BL_SEND_C_MKSOCK:
	case BL_SEND_C_SYMLINK:
	case BL_SEND_C_LINK:
		return make(m, c->path, &v);
	case BL_SEND_C_RENAME:
		return rename_node(m, c->path, c->path_to);
	case BL_SEND_C_UNLINK:
	case BL_SEND_C_RMDIR:
		if (!*c->path)
			return -EBADMSG;
		r = resolve(m, c->path, &v);
		if (r == 0) {
			v->flags |= NODE_GONE;
			detach(m, v);
		}
		return r;
	case BL_SEND_C_SET_XATTR:
	case BL_SEND_C_REMOVE_XATTR:
	case BL_SEND_C_WRITE:
	case BL_SEND_C_CLONE:
	case BL_SEND_C_TRUNCATE:
	case BL_SEND_C_CHMOD:
	case BL_SEND_C_CHOWN:
	case BL_SEND_C_UTIMES:
	case BL_SEND_C_UPDATE_EXTENT:
	case BL_SEND_C_FALLOCATE:
	case BL_SEND_C_FILEATTR:
	case BL_SEND_C_ENCODED_WRITE:
	case BL_SEND_C_ENABLE_VERITY:
		r = resolve(m, c->path, &v);
		if (r == 0)
			v->flags |= NODE_TOUCHED;
		return r;
	default:
		return -EBADMSG;	/* a command this mapping does not know */
	}
}

/* Where v stands in the layer ("/a/b"): 1, or 0 when it is in no tree. */
static int final_path(const struct model *m, const struct vnode *v, char *buf, size_t size)
{
	const struct vnode *chain[PATH_MAX / 2];
	size_t n = 0;
	for (; v && v != &m->root; v = v->parent) {
		if (n == sizeof(chain) / sizeof(chain[0]))
			return -ENAMETOOLONG;
		chain[n++] = v;
	}
	if (!v)
		return 0;	/* detached on the way up */
	size_t len = 0;
	if (!n) {
		snprintf(buf, size, "/");
		return 1;
	}
	while (n--) {
		int k = snprintf(buf + len, size - len, "/%s", chain[n]->name);
		if (k < 0 || (size_t)k >= size - len)
			return -ENAMETOOLONG;
		len += (size_t)k;
	}
	return 1;
}

static void model_free(struct model *m)
{
	for (struct vnode *v = m->all, *next; v; v = next) {
		next = v->all_next;
		free(v->name);
		free(v->origin);
		free(v);
	}
	free(m->buckets);
}

/* ---- looking at the named paths ------------------------------------------- */

struct pathset {
	char **v;
	size_t n, cap;
};

static int pathset_add(struct pathset *s, const char *path)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		char **v = realloc(s->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n] = strdup(path);
	if (!s->v[s->n])
		return -ENOMEM;
	s->n++;
	return 0;
}

static int by_string(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sort and drop duplicates. */
static void pathset_finish(struct pathset *s)
{
	if (s->n)
		qsort(s->v, s->n, sizeof(*s->v), by_string);
	size_t out = 0;
	for (size_t i = 0; i < s->n; i++) {
		if (out && !strcmp(s->v[out - 1], s->v[i]))
			free(s->v[i]);
		else
			s->v[out++] = s->v[i];
	}
	s->n = out;
}

static void pathset_free(struct pathset *s)
{
	bl_strv_free(s->v, s->n);
	memset(s, 0, sizeof(*s));
}

static bool pathset_has(const struct pathset *s, const char *path)
{
	return s->n && bsearch(&path, s->v, s->n, sizeof(*s->v), by_string);
}

/* Whether path or a directory above it (strictly above: !self) is in the
 * sorted set of subtree roots. */
static bool under_root(const struct pathset *roots, const char *path, bool self)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", path);
	if (self && pathset_has(roots, buf))
		return true;
	for (char *slash = strrchr(buf, '/'); slash && slash != buf; slash = strrchr(buf, '/')) {
		*slash = '\0';
		if (pathset_has(roots, buf))
			return true;
	}
	return false;
}

/* The directory part of "/a/b" ("/a"; "/" for "/a"). */
static void dirname_of(const char *path, char *buf, size_t size)
{
	const char *slash = strrchr(path, '/');
	size_t len = slash && slash != path ? (size_t)(slash - path) : 1;
	if (len >= size)
		len = size - 1;
	memcpy(buf, path, len);
	buf[len] = '\0';
}

/* One path named by the stream, outside every walked subtree. */
static int look_at(int layer_fd, int parent_fd, const char *path, struct pathset *roots,
		   struct bl_change_list *l)
{
	struct bl_entry now, before;
	int r = bl_entry_lookup(layer_fd, path, &now);
	if (r == 0)
		r = bl_entry_lookup(parent_fd, path, &before);
	if (r < 0)
		return r;
	if (now.exists && S_ISDIR(now.st.mode) &&
	    (!before.exists || !S_ISDIR(before.st.mode) || before.st.ino != now.st.ino))
		return pathset_add(roots, path);	/* all of it is new to its path */
	if (now.exists && !before.exists)
		return bl_change_list_add(l, path, BTRFSLAYER_CHANGE_ADDED, &now, &before);
	if (now.exists)
		return bl_entry_differs(&before, &now)
		       ? bl_change_list_add(l, path, BTRFSLAYER_CHANGE_MODIFIED, &now, &before) : 0;
	if (!before.exists)
		return 0;
	/* gone: reported where its directory still is one */
	char dir[PATH_MAX];
	struct bl_entry up;
	dirname_of(path, dir, sizeof(dir));
	r = bl_entry_lookup(layer_fd, dir, &up);
	if (r < 0 || !up.exists || !S_ISDIR(up.st.mode))
		return r;
	return bl_change_list_add(l, path, BTRFSLAYER_CHANGE_DELETED, NULL, &before);
}

/* Every other link of the inode at path (in the layer), when it has some. */
static int add_links(int layer_fd, const char *path, struct pathset *paths)
{
	struct bl_entry e;
	int r = bl_entry_lookup(layer_fd, path, &e);
	if (r < 0 || !e.exists || S_ISDIR(e.st.mode) || e.st.nlink < 2)
		return r;
	char **links;
	size_t n;
	r = bl_ioctl_ino_paths(layer_fd, e.st.ino, &links, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; r == 0 && i < n; i++) {
		char abs[PATH_MAX];
		if (snprintf(abs, sizeof(abs), "/%s", links[i]) >= (int)sizeof(abs))
			r = -ENAMETOOLONG;
		else
			r = pathset_add(paths, abs);
	}
	bl_strv_free(links, n);
	return r;
}

/* What the model says to look at: subtrees to walk, and single paths. */
static int collect(const struct model *m, int layer_fd, struct pathset *roots,
		   struct pathset *paths)
{
	char path[PATH_MAX];
	int r = 0;
	for (const struct vnode *v = m->all; r == 0 && v; v = v->all_next) {
		int in_layer = final_path(m, v, path, sizeof(path));
		if (in_layer < 0)
			return in_layer;
		if (in_layer && (v->flags & (NODE_NEW | NODE_MOVED)))
			r = pathset_add(roots, path);
		else if (in_layer && (v->flags & NODE_TOUCHED))
			r = pathset_add(paths, path);
		if (r == 0 && in_layer && (v->flags & NODE_TOUCHED) && layer_fd >= 0)
			r = add_links(layer_fd, path, paths);
		if (r == 0 && v->origin && (!in_layer || strcmp(path, v->origin)))
			r = pathset_add(paths, v->origin);
	}
	return r;
}

/* Binary search of the sorted, deduplicated list. */
static bool listed(const struct bl_change_list *l, const char *path)
{
	size_t lo = 0, hi = l->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(l->v[mid].path, path);
		if (!c)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static int by_change_path(const void *a, const void *b)
{
	return strcmp(((const struct bl_change *)a)->path, ((const struct bl_change *)b)->path);
}

/* Every directory above a change is modified (Docker's rule); those the
 * list lacks are in both trees, or they would have been walked as new. */
static int add_ancestors(int layer_fd, int parent_fd, struct bl_change_list *l)
{
	struct pathset up = { 0 };
	int r = 0;
	if (l->n)
		qsort(l->v, l->n, sizeof(*l->v), by_change_path);
	for (size_t i = 0; r == 0 && i < l->n; i++) {
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%s", l->v[i].path);
		for (char *slash = strrchr(dir, '/'); r == 0 && slash && slash != dir;
		     slash = strrchr(dir, '/')) {
			*slash = '\0';
			if (!listed(l, dir))
				r = pathset_add(&up, dir);
		}
	}
	if (r == 0)
		pathset_finish(&up);
	for (size_t i = 0; r == 0 && i < up.n; i++) {
		struct bl_entry now, before;
		r = bl_entry_lookup(layer_fd, up.v[i], &now);
		if (r == 0)
			r = bl_entry_lookup(parent_fd, up.v[i], &before);
		if (r == 0)
			r = bl_change_list_add(l, up.v[i], before.exists ? BTRFSLAYER_CHANGE_MODIFIED
								     : BTRFSLAYER_CHANGE_ADDED,
					       &now, &before);
	}
	pathset_free(&up);
	return r;
}

int bl_send_replay(const uint8_t *stream, size_t len, int layer_fd, char ***roots,
		   size_t *n_roots, char ***paths, size_t *n_paths)
{
	struct model m = { .root = { .origin = (char *)"/", .name = (char *)"" } };
	struct pathset r_set = { 0 }, p_set = { 0 };
	int r = grow(&m);
	if (r == 0)
		r = bl_sendstream_parse(stream, len, on_command, &m);
	if (r == 0)
		r = collect(&m, layer_fd, &r_set, &p_set);
	model_free(&m);
	if (r < 0) {
		pathset_free(&r_set);
		pathset_free(&p_set);
		return r;
	}
	pathset_finish(&r_set);
	pathset_finish(&p_set);
	*roots = r_set.v;
	*n_roots = r_set.n;
	*paths = p_set.v;
	*n_paths = p_set.n;
	return 0;
}

/* How long a stream may run before the walk is the faster way.  Measured
 * on a 100k-file layer (README): the kernel spends some 70 us of CPU per
 * changed inode (two commands or so), and the mapping looks at each path
 * named; a warm walk costs some 3 us per file in each tree, and the
 * temporary snapshot a few ms (a transaction commit).  So the send is cut
 * short after one command per 128 inodes of the layer: a send that the walk
 * then replaces has cost a tenth of the walk or less, and one that finishes
 * is faster than the walk.  Most such sends are never started: changes.c
 * counts the changed inodes first (too_many_changes()). */
#define COMMANDS_PER_INODES 128
#define MIN_COMMAND_LIMIT 256

int bl_changes_send_limit(int layer_fd, uint64_t *limit)
{
	uint64_t highest = 0;
	int r = bl_ioctl_highest_inode(layer_fd, &highest);
	if (r < 0)
		return r;
	*limit = highest / COMMANDS_PER_INODES;
	if (*limit < MIN_COMMAND_LIMIT)
		*limit = MIN_COMMAND_LIMIT;
	return 0;
}

int bl_changes_send(int layer_fd, int parent_fd, uint64_t limit, struct bl_change_list *l)
{
	uint8_t *stream = NULL;
	size_t len = 0;
	int r = bl_ioctl_send(layer_fd, parent_fd, 0, limit, &stream, &len);
	if (r == -EPERM)
		r = -EOPNOTSUPP;	/* no CAP_SYS_ADMIN */
	if (r == -ECANCELED)
		r = -E2BIG;
	if (r < 0)
		return r;
	struct pathset roots = { 0 }, paths = { 0 };
	r = bl_send_replay(stream, len, layer_fd, &roots.v, &roots.n, &paths.v, &paths.n);
	free(stream);
	roots.cap = roots.n;
	paths.cap = paths.n;
	size_t start = l->n;
	/* single paths first: a directory found new joins the roots (after:
	 * roots must stay sorted while they are searched) */
	struct pathset found = { 0 };
	for (size_t i = 0; r == 0 && i < paths.n; i++)
		if (strcmp(paths.v[i], "/") && !under_root(&roots, paths.v[i], true))
			r = look_at(layer_fd, parent_fd, paths.v[i], &found, l);
	for (size_t i = 0; r == 0 && i < found.n; i++)
		r = pathset_add(&roots, found.v[i]);
	pathset_free(&found);
	if (r == 0)
		pathset_finish(&roots);
	for (size_t i = 0; r == 0 && i < roots.n; i++) {
		if (!strcmp(roots.v[i], "/"))
			continue;
		/* a root below another is walked with it */
		if (under_root(&roots, roots.v[i], false))
			continue;
		r = bl_changes_walk(layer_fd, parent_fd, roots.v[i], l);
	}
	/* the walks and single looks may name a path twice */
	if (r == 0) {
		if (l->n > start)
			qsort(l->v + start, l->n - start, sizeof(*l->v), by_change_path);
		size_t out = start;
		for (size_t i = start; i < l->n; i++) {
			if (out > start && !strcmp(l->v[out - 1].path, l->v[i].path))
				free(l->v[i].path);
			else
				l->v[out++] = l->v[i];
		}
		l->n = out;
		r = add_ancestors(layer_fd, parent_fd, l);
	}
	pathset_free(&roots);
	pathset_free(&paths);
	return r;
}
