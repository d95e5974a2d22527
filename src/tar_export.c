/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Export of a layer's changes as an OCI image-layer tar (uncompressed),
 * written with libarchive (pax, with ustar headers wherever they suffice).
 *
 * What goes in: the change list of changes.c (bl_changes_get(), Docker's
 * semantics), read from the tree it describes (a read-only snapshot when
 * the layer is writable and the send stream served):
 * - added and modified paths as entries: directories, regular files (their
 *   holes as a GNU 1.0 sparse map, never as zeros), symlinks, hard links
 *   (the second and later paths of an inode are links to the first one
 *   written, or to a path of it that the parent has and the layer did not
 *   change, so that a link stays a link), character and block devices, fifos;
 *   xattrs user.*, trusted.* and security.* (security.capability among them;
 *   not security.selinux,
 *   which belongs to the host) as pax SCHILY.xattr records;
 * - deleted paths as whiteouts, ".wh.<name>" in the same directory;
 * - a directory replaced by another (the same path, another inode) as the
 *   directory, then "<dir>/.wh..wh..opq", then its whole content: an
 *   applier empties it of the parent's entries first.
 *
 * The same layer always gives the same bytes: entries sorted by path
 * (strcmp), the opaque marker right after its directory; numeric owners
 * only (no user or group names), mtime in whole seconds, no atime or
 * ctime, xattrs sorted by name (as SCHILY.xattr records only, which GNU tar
 * reads too), fixed values for the whiteouts' own header (mode 0, owner
 * 0:0, mtime 0).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <linux/limits.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "internal.h"

#define WHITEOUT ".wh."
#define OPAQUE ".wh..wh..opq"
#define CHUNK (256 * 1024)
/* How often progress is told, in bytes written. */
#define PROGRESS_STEP (UINT64_C(1) << 20)

/* One entry of the tar, before sorting. */
struct item {
	char *path;		/* "a/b": from the layer's root */
	int kind;		/* BTRFSLAYER_CHANGE_* */
	bool opaque;		/* a replaced directory: its opaque marker follows */
};

struct exporter {
	struct archive *a;
	int root;			/* the tree the changes describe */
	int parent;			/* the parent's, or -1 */
	const char *where;		/* the layer, for messages */
	btrfslayer_error **err;
	struct item *items;
	size_t n, cap;
	struct link { dev_t dev; ino_t ino; char *path; } *links;
	size_t n_links, cap_links;
	btrfslayer_progress_fn progress;
	void *userdata;
	uint64_t total, done, told;
	char *buf;			/* CHUNK bytes */
};

static int fail_at(struct exporter *ex, int code, const char *path, const char *step)
{
	char quoted[BL_QUOTE_MAX];
	return bl_fail(ex->err, code, "export: %s: %s: %s", ex->where,
		       bl_quote(quoted, sizeof(quoted), path), step);
}

static int fail_archive(struct exporter *ex, const char *path)
{
	char quoted[BL_QUOTE_MAX];
	int code = archive_errno(ex->a) > 0 ? -archive_errno(ex->a) : -EIO;
	const char *why = archive_error_string(ex->a);
	return bl_fail_msg(ex->err, code, "export: %s: %s: write the tar: %s", ex->where,
			   bl_quote(quoted, sizeof(quoted), path), why ? why : "failed");
}

/* -ECANCELED when the caller's callback asks to stop. */
static int tell_progress(struct exporter *ex, bool force)
{
	if (ex->progress && (force || ex->done - ex->told >= PROGRESS_STEP)) {
		ex->told = ex->done;
		if (ex->progress(ex->done, ex->total, ex->userdata) != 0)
			return bl_fail_msg(ex->err, -ECANCELED, "export: %s: stopped by the "
					   "progress callback after %" PRIu64 " bytes", ex->where,
					   ex->done);
	}
	return 0;
}

/* ---- the list of entries ---------------------------------------------------- */

static int add_item(struct exporter *ex, const char *path, int kind, bool opaque)
{
	if (ex->n == ex->cap) {
		size_t cap = ex->cap ? ex->cap * 2 : 64;
		struct item *v = realloc(ex->items, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		ex->items = v;
		ex->cap = cap;
	}
	while (*path == '/')
		path++;
	char *copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	ex->items[ex->n++] = (struct item){ copy, kind, opaque };
	return 0;
}

static int cmp_items(const void *a, const void *b)
{
	return strcmp(((const struct item *)a)->path, ((const struct item *)b)->path);
}

/* Whether path ("a/b/c") lies strictly below dir ("a/b"). */
static bool below(const char *path, const char *dir)
{
	size_t len = strlen(dir);
	return !strncmp(path, dir, len) && path[len] == '/';
}

/* Everything below directory `path` (fd dirfd) as added entries. */
static int add_subtree(struct exporter *ex, int dirfd, char *path, size_t len)
{
	int dup_fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
	if (dup_fd < 0)
		return -errno;
	DIR *d = fdopendir(dup_fd);
	if (!d) {
		close(dup_fd);
		return -errno;
	}
	int r = 0;
	struct dirent *de;
	while (r == 0 && (errno = 0, de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		size_t nl = strlen(de->d_name);
		if (len + 1 + nl >= PATH_MAX) {
			r = -ENAMETOOLONG;
			break;
		}
		path[len] = '/';
		memcpy(path + len + 1, de->d_name, nl + 1);
		r = add_item(ex, path, BTRFSLAYER_CHANGE_ADDED, false);
		if (r == 0 && de->d_type == DT_DIR) {
			int sub = bl_open_dir_beneath(dirfd, de->d_name);
			r = sub < 0 ? sub : add_subtree(ex, sub, path, len + 1 + nl);
			if (sub >= 0)
				close(sub);
		}
		path[len] = '\0';
	}
	if (r == 0 && errno)
		r = -errno;
	closedir(d);
	return r;
}

/* Whether path lies below one of the n replaced directories in dirs. */
static bool below_any(const char *path, char *const *dirs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (below(path, dirs[i]))
			return true;
	return false;
}

/* The change list as tar entries: a replaced directory's content whole
 * (after its opaque marker), the rest as reported. */
static int build_items(struct exporter *ex, const struct bl_changes *c)
{
	/* the replaced directories so far (strcmp order does not keep a
	 * directory's content together: "a.txt" sorts between "a" and "a/b") */
	char **opaque = NULL;
	size_t n_opaque = 0;
	int r = 0;
	for (size_t i = 0; r == 0 && i < c->n; i++) {
		const struct bl_change *ch = &c->v[i];
		const char *path = ch->path + (ch->path[0] == '/');
		if (!*path || below_any(path, opaque, n_opaque))
			continue;	/* the root, or listed with its directory */
		bool replaced = ch->kind != BTRFSLAYER_CHANGE_DELETED && ch->replaced &&
				S_ISDIR(ch->mode) && S_ISDIR(ch->parent_mode);
		r = add_item(ex, path, ch->kind, replaced);
		if (r < 0) {
			r = fail_at(ex, r, path, "list it");
			break;
		}
		if (!replaced)
			continue;
		char **grown = realloc(opaque, (n_opaque + 1) * sizeof(*opaque));
		if (!grown) {
			r = fail_at(ex, -ENOMEM, path, "list it");
			break;
		}
		opaque = grown;
		opaque[n_opaque++] = ex->items[ex->n - 1].path;
		char buf[PATH_MAX];
		snprintf(buf, sizeof(buf), "%s", path);
		int fd = bl_open_path_beneath(ex->root, buf);
		r = fd < 0 ? fd : add_subtree(ex, fd, buf, strlen(buf));
		if (fd >= 0)
			close(fd);
		if (r < 0)
			r = fail_at(ex, r, path, "list the replaced directory");
	}
	free(opaque);
	/* the change list is sorted, but a replaced directory's content was
	 * added in directory order */
	if (r == 0)
		qsort(ex->items, ex->n, sizeof(*ex->items), cmp_items);
	return r;
}

/* ---- entries ------------------------------------------------------------------ */

/* Open the directory holding `path` beneath root; *name: its last
 * component. */
static int open_parent_in(int root, const char *path, char *dir, const char **name)
{
	const char *slash = strrchr(path, '/');
	if (!slash) {
		*name = path;
		int fd = fcntl(root, F_DUPFD_CLOEXEC, 3);
		return fd < 0 ? -errno : fd;
	}
	*name = slash + 1;
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	return bl_open_path_beneath(root, dir);
}

static int open_parent(struct exporter *ex, const char *path, char *dir, const char **name)
{
	return open_parent_in(ex->root, path, dir, name);
}

static bool xattr_exported(const char *name)
{
	return !strncmp(name, "user.", 5) || !strncmp(name, "trusted.", 8) ||
	       (!strncmp(name, "security.", 9) && strcmp(name, "security.selinux"));
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Add the xattrs of `name` in dirfd (never followed), sorted by name. */
static int add_xattrs(struct exporter *ex, struct archive_entry *e, int dirfd,
		      const char *name, const char *path)
{
	char proc[64 + NAME_MAX];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d/%s", dirfd, name);
	ssize_t len = llistxattr(proc, NULL, 0);
	if (len < 0)
		return errno == ENOTSUP ? 0 : fail_at(ex, -errno, path, "list its xattrs");
	if (len == 0)
		return 0;
	char *list = malloc((size_t)len + 1), **names = NULL, *value = NULL;
	int r = 0;
	if (!list) {
		r = fail_at(ex, -ENOMEM, path, "list its xattrs");
		goto out;
	}
	len = llistxattr(proc, list, (size_t)len);
	if (len < 0) {
		r = fail_at(ex, -errno, path, "list its xattrs");
		goto out;
	}
	size_t n = 0;
	names = calloc((size_t)len, sizeof(*names));	/* at most one per byte */
	value = malloc(XATTR_SIZE_MAX);
	if (!names || !value) {
		r = fail_at(ex, -ENOMEM, path, "read its xattrs");
		goto out;
	}
	for (char *p = list; p < list + len; p += strlen(p) + 1)
		if (xattr_exported(p))
			names[n++] = p;
	qsort(names, n, sizeof(*names), cmp_names);
	for (size_t i = 0; r == 0 && i < n; i++) {
		ssize_t vl = lgetxattr(proc, names[i], value, XATTR_SIZE_MAX);
		if (vl < 0 && errno == ENODATA)
			continue;	/* gone meanwhile */
		if (vl < 0)
			r = fail_at(ex, -errno, path, "read an xattr");
		else
			archive_entry_xattr_add_entry(e, names[i], value, (size_t)vl);
	}
out:
	free(value);
	free(names);
	free(list);
	return r;
}

/* The data regions of fd (size bytes) as the entry's sparse map, when the
 * file has a hole; 1 if it has, 0 if not. */
static int add_sparse_map(int fd, off_t size, struct archive_entry *e)
{
	off_t hole = lseek(fd, 0, SEEK_HOLE);
	if (hole < 0 || hole >= size)
		return 0;	/* no hole, or a filesystem that cannot tell */
	off_t at = 0;
	while (at < size) {
		off_t data = lseek(fd, at, SEEK_DATA);
		if (data < 0)
			break;	/* ENXIO: a hole to the end */
		off_t end = lseek(fd, data, SEEK_HOLE);
		if (end < 0 || end > size)
			end = size;
		archive_entry_sparse_add_entry(e, data, end - data);
		at = end;
	}
	/* the map ends at the file's size (a trailing hole included) */
	if (archive_entry_sparse_count(e) == 0)
		archive_entry_sparse_add_entry(e, size, 0);
	return 1;
}

/* Read as zeros for the holes of a sparse file: the writer skips them, so
 * only their length matters.  Never written. */
static char zeros[CHUNK];

/* Write bytes [from, to) of the file: read from fd, or zeros for a hole. */
static int write_range(struct exporter *ex, int fd, off_t from, off_t to, bool data,
		       const char *path)
{
	while (from < to) {
		size_t want = (size_t)(to - from < CHUNK ? to - from : CHUNK);
		const char *p = zeros;
		if (data) {
			ssize_t got = pread(fd, ex->buf, want, from);
			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0)
				return fail_at(ex, -errno, path, "read it");
			if (got == 0)
				return fail_at(ex, -EIO, path, "read it: it shrank meanwhile");
			want = (size_t)got;
			p = ex->buf;
		}
		if (archive_write_data(ex->a, p, want) != (la_ssize_t)want)
			return fail_archive(ex, path);
		from += (off_t)want;
		if (data) {
			ex->done += want;
			int cancelled = tell_progress(ex, false);
			if (cancelled < 0)
				return cancelled;
		}
	}
	return 0;
}

/* Write the file's data: size bytes, read where the sparse map has data
 * and passed as zeros where it has holes. */
static int write_data(struct exporter *ex, int fd, struct archive_entry *e, off_t size,
		      bool sparse, const char *path)
{
	if (!sparse)
		return write_range(ex, fd, 0, size, true, path);
	la_int64_t off, len;
	off_t at = 0;
	int r = 0;
	archive_entry_sparse_reset(e);
	while (r == 0 && archive_entry_sparse_next(e, &off, &len) == ARCHIVE_OK) {
		if (off < at || off + len > size)
			return fail_at(ex, -EIO, path, "read it: its extents changed meanwhile");
		r = write_range(ex, fd, at, off, false, path);
		if (r == 0)
			r = write_range(ex, fd, off, off + len, true, path);
		at = off + len;
	}
	if (r == 0)
		r = write_range(ex, fd, at, size, false, path);
	return r;
}

/* Whole seconds, as Docker writes them (and as its change detection
 * expects: an mtime with 0 nanoseconds equals any with the same seconds):
 * the nanoseconds would cost a pax header for nearly every entry. */
static void set_times(struct archive_entry *e, const struct stat *st)
{
	archive_entry_set_mtime(e, st->st_mtim.tv_sec, 0);
}

static int cmp_item_path(const void *key, const void *item)
{
	return strcmp(key, ((const struct item *)item)->path);
}

/* An unchanged path of the same inode that the parent has too (it is not
 * in the tar, so an applier finds it on disk, from the parent): the first
 * of them by name, malloc()ed, or NULL.  That keeps a link made in the
 * layer to a file of the parent a link, not a copy. */
static char *parent_link(struct exporter *ex, const struct stat *st, const char *path)
{
	char **paths = NULL, *found = NULL;
	size_t n = 0;
	if (ex->parent < 0 || bl_ioctl_ino_paths(ex->root, st->st_ino, &paths, &n) < 0)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const char *p = paths[i], *name;
		char dir[PATH_MAX];
		struct stat was;
		if (!strcmp(p, path) || (found && strcmp(p, found) >= 0) ||
		    bsearch(p, ex->items, ex->n, sizeof(*ex->items), cmp_item_path))
			continue;
		int dirfd = open_parent_in(ex->parent, p, dir, &name);
		if (dirfd < 0)
			continue;
		if (fstatat(dirfd, name, &was, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(was.st_mode) &&
		    was.st_ino == st->st_ino && was.st_size == st->st_size &&
		    was.st_mtim.tv_sec == st->st_mtim.tv_sec &&
		    was.st_mtim.tv_nsec == st->st_mtim.tv_nsec)
			found = paths[i];
		close(dirfd);
	}
	found = found ? strdup(found) : NULL;
	bl_strv_free(paths, n);
	return found;
}

/* The link target for this inode: the path it was first written under, or
 * an unchanged path of the parent's; NULL when this is the first (and it
 * is remembered as written under path). */
static const char *link_target(struct exporter *ex, const struct stat *st, const char *path)
{
	for (size_t i = 0; i < ex->n_links; i++)
		if (ex->links[i].dev == st->st_dev && ex->links[i].ino == st->st_ino)
			return ex->links[i].path;
	if (ex->n_links == ex->cap_links) {
		size_t cap = ex->cap_links ? ex->cap_links * 2 : 16;
		struct link *v = realloc(ex->links, cap * sizeof(*v));
		if (!v)
			return NULL;	/* then written as a copy: still right */
		ex->links = v;
		ex->cap_links = cap;
	}
	char *outside = parent_link(ex, st, path);
	char *copy = outside ? outside : strdup(path);
	if (copy)
		ex->links[ex->n_links++] = (struct link){ st->st_dev, st->st_ino, copy };
	return outside;
}

static int write_whiteout(struct exporter *ex, const char *path, const char *base_name)
{
	char wh[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
	if (dir_len + strlen(WHITEOUT) + strlen(base_name) >= sizeof(wh))
		return fail_at(ex, -ENAMETOOLONG, path, "name its whiteout");
	memcpy(wh, path, dir_len);
	snprintf(wh + dir_len, sizeof(wh) - dir_len, "%s%s", WHITEOUT, base_name);
	struct archive_entry *e = archive_entry_new();
	if (!e)
		return -ENOMEM;
	archive_entry_set_pathname(e, wh);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0);
	archive_entry_set_size(e, 0);
	archive_entry_set_mtime(e, 0, 0);
	int r = archive_write_header(ex->a, e) == ARCHIVE_OK ? 0 : fail_archive(ex, wh);
	archive_entry_free(e);
	return r;
}

static int write_item(struct exporter *ex, const struct item *it)
{
	const char *path = it->path, *name;
	char dir[PATH_MAX];
	if (it->kind == BTRFSLAYER_CHANGE_DELETED) {
		const char *slash = strrchr(path, '/');
		return write_whiteout(ex, path, slash ? slash + 1 : path);
	}
	int dirfd = open_parent(ex, path, dir, &name);
	if (dirfd < 0)
		return fail_at(ex, dirfd, path, "open its directory");
	struct stat st;
	int r = 0, fd = -1;
	struct archive_entry *e = NULL;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		r = fail_at(ex, -errno, path, "stat it");
		goto out;
	}
	e = archive_entry_new();
	if (!e) {
		r = fail_at(ex, -ENOMEM, path, "describe it");
		goto out;
	}
	archive_entry_set_pathname(e, path);
	archive_entry_set_uid(e, st.st_uid);
	archive_entry_set_gid(e, st.st_gid);
	archive_entry_set_perm(e, st.st_mode & 07777);
	set_times(e, &st);
	const char *target = NULL;
	bool sparse = false;
	if (S_ISREG(st.st_mode) && st.st_nlink > 1)
		target = link_target(ex, &st, path);
	if (target) {
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_hardlink(e, target);
		archive_entry_set_size(e, 0);
	} else if (S_ISREG(st.st_mode)) {
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_size(e, st.st_size);
		fd = bl_open_regular_beneath(dirfd, name, O_RDONLY, 0);
		if (fd < 0) {
			r = fail_at(ex, fd, path, "open it");
			goto out;
		}
		sparse = add_sparse_map(fd, st.st_size, e) == 1;
	} else if (S_ISDIR(st.st_mode)) {
		archive_entry_set_filetype(e, AE_IFDIR);
	} else if (S_ISLNK(st.st_mode)) {
		char link[PATH_MAX];
		ssize_t n = readlinkat(dirfd, name, link, sizeof(link) - 1);
		if (n < 0) {
			r = fail_at(ex, -errno, path, "read the symlink");
			goto out;
		}
		link[n] = '\0';
		archive_entry_set_filetype(e, AE_IFLNK);
		archive_entry_set_symlink(e, link);
	} else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
		archive_entry_set_filetype(e, S_ISCHR(st.st_mode) ? AE_IFCHR : AE_IFBLK);
		archive_entry_set_rdevmajor(e, major(st.st_rdev));
		archive_entry_set_rdevminor(e, minor(st.st_rdev));
	} else if (S_ISFIFO(st.st_mode)) {
		archive_entry_set_filetype(e, AE_IFIFO);
	} else {
		/* a socket: a tar has no such entry, and a layer none worth
		 * keeping (Docker skips them too) */
		bl_log(BTRFSLAYER_LOG_DEBUG, "export: %s: %s: a socket, left out", ex->where, path);
		goto out;
	}
	if (!target && (r = add_xattrs(ex, e, dirfd, name, path)) < 0)
		goto out;
	if (archive_write_header(ex->a, e) != ARCHIVE_OK) {
		r = fail_archive(ex, path);
		goto out;
	}
	if (fd >= 0)
		r = write_data(ex, fd, e, st.st_size, sparse, path);
	if (r == 0 && it->opaque) {
		char marker[PATH_MAX + sizeof(OPAQUE)];
		snprintf(marker, sizeof(marker), "%s/", path);
		r = write_whiteout(ex, marker, &OPAQUE[sizeof(WHITEOUT) - 1]);
	}
out:
	if (e)
		archive_entry_free(e);
	if (fd >= 0)
		close(fd);
	close(dirfd);
	return r;
}

/* What progress counts as the total: the data of every regular file to
 * be written (each inode once). */
static void count_total(struct exporter *ex)
{
	if (!ex->progress)
		return;
	for (size_t i = 0; i < ex->n; i++) {
		struct stat st;
		char dir[PATH_MAX];
		const char *name;
		if (ex->items[i].kind == BTRFSLAYER_CHANGE_DELETED)
			continue;
		int dirfd = open_parent(ex, ex->items[i].path, dir, &name);
		if (dirfd < 0)
			continue;
		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
		    (st.st_nlink == 1 || !link_target(ex, &st, ex->items[i].path)))
			ex->total += (uint64_t)st.st_size;
		close(dirfd);
	}
	for (size_t i = 0; i < ex->n_links; i++)
		free(ex->links[i].path);
	ex->n_links = 0;
}

static bool utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		int n = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 ? 1 : (*p & 0xf0) == 0xe0 ? 2 :
			(*p & 0xf8) == 0xf0 ? 3 : -1;
		if (n < 0 || (n == 1 && *p < 0xc2))
			return false;
		p++;
		for (; n > 0; n--, p++)
			if ((*p & 0xc0) != 0x80)
				return false;
	}
	return true;
}

/* Whether every name to be written, and every symlink target, is UTF-8. */
static bool all_utf8(struct exporter *ex)
{
	for (size_t i = 0; i < ex->n; i++) {
		if (!utf8(ex->items[i].path))
			return false;
		char dir[PATH_MAX], target[PATH_MAX];
		const char *name;
		int dirfd = open_parent(ex, ex->items[i].path, dir, &name);
		if (dirfd < 0)
			continue;
		ssize_t n = readlinkat(dirfd, name, target, sizeof(target) - 1);
		close(dirfd);
		if (n > 0) {
			target[n] = '\0';
			if (!utf8(target))
				return false;
		}
	}
	return true;
}

int bl_tar_export(const struct bl_changes *c, int fd, const char *where,
		  btrfslayer_progress_fn progress, void *userdata, btrfslayer_error **err)
{
	struct exporter ex = {
		.root = c->layer_fd, .parent = c->parent_fd, .where = where, .err = err,
		.progress = progress, .userdata = userdata,
	};
	int r = 0;
	struct bl_tar_locale loc = bl_tar_locale_enter();
	ex.buf = malloc(CHUNK);
	ex.a = archive_write_new();
	if (!ex.buf || !ex.a) {
		r = bl_fail(err, -ENOMEM, "export: %s: start the tar", where);
		goto out;
	}
	/* pax (ustar headers where they do, pax records where needed), no
	 * compression, no padding of the last record past the end blocks */
	if (archive_write_set_format_pax_restricted(ex.a) != ARCHIVE_OK ||
	    archive_write_add_filter_none(ex.a) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(ex.a, 1) != ARCHIVE_OK ||
	    archive_write_set_options(ex.a, "xattrheader=SCHILY") != ARCHIVE_OK) {
		r = fail_archive(&ex, "");
		goto out;
	}
	r = build_items(&ex, c);
	/* names that are not UTF-8 go raw, the archive saying so in each pax
	 * header (hdrcharset=BINARY): libarchive cannot choose per entry */
	if (r == 0 && !all_utf8(&ex) &&
	    archive_write_set_options(ex.a, "hdrcharset=BINARY") != ARCHIVE_OK)
		r = fail_archive(&ex, "");
	if (r == 0 && archive_write_open_fd(ex.a, fd) != ARCHIVE_OK)
		r = fail_archive(&ex, "");
	if (r == 0)
		count_total(&ex);
	for (size_t i = 0; r == 0 && i < ex.n; i++)
		r = write_item(&ex, &ex.items[i]);
	if (r == 0 && archive_write_close(ex.a) != ARCHIVE_OK)
		r = fail_archive(&ex, "");
	if (r == 0)
		r = tell_progress(&ex, true);
out:
	if (ex.a)
		archive_write_free(ex.a);
	bl_tar_locale_leave(loc);
	for (size_t i = 0; i < ex.n; i++)
		free(ex.items[i].path);
	free(ex.items);
	for (size_t i = 0; i < ex.n_links; i++)
		free(ex.links[i].path);
	free(ex.links);
	free(ex.buf);
	return r;
}

int btrfslayer_export(btrfslayer *h, const char *id, const char *parent, int fd,
		      uint32_t flags, btrfslayer_progress_fn progress, void *userdata,
		      btrfslayer_error **err)
{
	int r = bl_check_handle_and_id(h, id, err);
	if (r < 0)
		return r;
	if (flags & ~(uint32_t)BL_EXPORT_FLAGS)
		return bl_fail_msg(err, -EINVAL, "export: %s: unknown flags 0x%x", id,
				   (unsigned)(flags & ~(uint32_t)BL_EXPORT_FLAGS));
	if (fd < 0)
		return bl_fail_msg(err, -EBADF, "export: %s: no output file descriptor (%d)", id,
				   fd);
	struct bl_changes c;
	r = bl_changes_get(h, id, parent, 0, &c, err);
	if (r < 0)
		return r;
	char path[PATH_MAX];
	bl_layer_path(h, id, path, sizeof(path));
	r = bl_tar_export(&c, fd, path, progress, userdata, err);
	bl_changes_release(h, &c);
	return r;
}
