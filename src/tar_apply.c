/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Apply an OCI image-layer tar (plain, gzip or zstd) to a directory fd.
 *
 * libarchive only reads the archive here; it never writes to disk
 * (archive_write_disk works by path strings and would have to be trusted
 * not to follow a symlink the archive itself planted).  Every entry is
 * made by this file, relative to a directory fd that was reached beneath
 * the layer's root with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 * RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV) (bl_open_path_beneath()), and
 * the last component is created with *at() calls that never follow a
 * symlink (O_CREAT|O_EXCL|O_NOFOLLOW, mknodat, symlinkat, linkat without
 * AT_SYMLINK_FOLLOW, AT_SYMLINK_NOFOLLOW for owners and times).  So:
 * - an absolute name or one with a ".." component is refused before
 *   anything is done for it;
 * - a name that goes through a symlink inside the layer ("a -> /etc", then
 *   "a/passwd") is refused (ELOOP from the beneath open), and so is one
 *   through a mount point;
 * - a hard link's target is resolved the same way, so it is always a file
 *   inside the layer;
 * - an entry whose name exists is replaced: the old name is unlinked
 *   (a directory removed with its contents, beneath its own fd), never
 *   written through.  A directory over a directory merges, as in tar.
 * The first refused entry stops the apply with an error that names it;
 * what the entries before it made stays (inside the layer): a failed
 * apply leaves a layer to remove, as in every other graph driver.
 *
 * OCI whiteouts: ".wh.<name>" removes <name> from its directory (entry
 * and whiteout both vanish), ".wh..wh..opq" empties its directory of
 * everything this same archive did not put there (the paths unpacked so
 * far, and their parents, are kept: the spec lets the opaque marker come
 * after its siblings).
 *
 * Directory times are set at the end, once nothing more is created in
 * them.
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
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "internal.h"

#define WHITEOUT ".wh."
#define OPAQUE ".wh..wh..opq"
/* How often progress is told, in bytes of archive read. */
#define PROGRESS_STEP (UINT64_C(1) << 20)
/* Largest value of one extended attribute (the kernel's XATTR_SIZE_MAX). */
#define XATTR_VALUE_MAX 65536

/* ---- a set of paths: what this archive unpacked ------------------------- */

struct pathset {
	char **slots;
	size_t cap, n;		/* cap a power of two, n < cap / 2 */
};

static uint64_t hash_path(const char *s)
{
	uint64_t h = UINT64_C(1469598103934665603);
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
	return h;
}

static bool pathset_has(const struct pathset *set, const char *path)
{
	if (!set->cap)
		return false;
	for (size_t i = hash_path(path) & (set->cap - 1);; i = (i + 1) & (set->cap - 1)) {
		if (!set->slots[i])
			return false;
		if (!strcmp(set->slots[i], path))
			return true;
	}
}

static int pathset_add_one(struct pathset *set, const char *path, size_t len)
{
	if ((set->n + 1) * 2 > set->cap) {
		size_t cap = set->cap ? set->cap * 2 : 64;
		char **slots = calloc(cap, sizeof(*slots));
		if (!slots)
			return -ENOMEM;
		for (size_t j = 0; j < set->cap; j++) {
			char *s = set->slots[j];
			if (!s)
				continue;
			size_t i = hash_path(s) & (cap - 1);
			while (slots[i])
				i = (i + 1) & (cap - 1);
			slots[i] = s;
		}
		free(set->slots);
		set->slots = slots;
		set->cap = cap;
	}
	char *copy = strndup(path, len);
	if (!copy)
		return -ENOMEM;
	size_t i = hash_path(copy) & (set->cap - 1);
	for (; set->slots[i]; i = (i + 1) & (set->cap - 1)) {
		if (!strcmp(set->slots[i], copy)) {
			free(copy);
			return 0;
		}
	}
	set->slots[i] = copy;
	set->n++;
	return 0;
}

/* Add path and each of its parents. */
static int pathset_add(struct pathset *set, const char *path)
{
	for (const char *p = path; (p = strchr(p, '/')); p++) {
		int r = pathset_add_one(set, path, (size_t)(p - path));
		if (r < 0)
			return r;
	}
	return pathset_add_one(set, path, strlen(path));
}

static void pathset_free(struct pathset *set)
{
	for (size_t i = 0; i < set->cap; i++)
		free(set->slots[i]);
	free(set->slots);
}

/* ---- the state of one apply ----------------------------------------------- */

struct dir_time {
	char *path;	/* "" for the root */
	struct timespec times[2];
};

struct applier {
	struct archive *a;
	int root;			/* the layer's root directory */
	const char *where;		/* the layer, for messages */
	btrfslayer_error **err;
	btrfslayer_progress_fn progress;
	void *userdata;
	uint64_t total;			/* size of the archive when known, else 0 */
	uint64_t told;			/* archive bytes at the last progress call */
	uint64_t unpacked;		/* bytes of regular files written */
	struct pathset done;
	struct dir_time *dirs;		/* directory times, set at the end */
	size_t n_dirs, cap_dirs;
	char entry[BL_QUOTE_MAX];	/* the entry's name quoted, for messages */
};

/* -ECANCELED when the caller's callback asks to stop. */
static int tell_progress(struct applier *ap, bool force)
{
	if (!ap->progress)
		return 0;
	la_int64_t bytes = archive_filter_bytes(ap->a, -1);
	uint64_t done = bytes > 0 ? (uint64_t)bytes : 0;
	if (!force && done - ap->told < PROGRESS_STEP)
		return 0;
	ap->told = done;
	if (ap->progress(done, ap->total, ap->userdata) != 0)
		return bl_fail_msg(ap->err, -ECANCELED, "apply: %s: stopped by the progress "
				   "callback after %" PRIu64 " bytes of archive", ap->where, done);
	return 0;
}

/* Fail on the current entry: "apply: <layer>: entry "<name>": <what>". */
static int entry_fail(struct applier *ap, int code, const char *what)
{
	return bl_fail(ap->err, code, "apply: %s: entry %s: %s", ap->where, ap->entry, what);
}

static int entry_refuse(struct applier *ap, int code, const char *why)
{
	return bl_fail_msg(ap->err, code, "apply: %s: entry %s refused: %s", ap->where, ap->entry,
			   why);
}

/* ---- names ------------------------------------------------------------------ */

/* Clean an entry name into out (PATH_MAX): no leading "./", no "." or empty
 * components, no trailing '/'.  "" is the root.  -EINVAL for an absolute
 * name or one with a ".." component, -ENAMETOOLONG past PATH_MAX or a
 * component past NAME_MAX. */
static int clean_path(const char *in, char *out)
{
	size_t len = 0;
	if (*in == '/')
		return -EINVAL;
	while (*in) {
		size_t n = strcspn(in, "/");
		if (n == 2 && in[0] == '.' && in[1] == '.')
			return -EINVAL;
		if (n > NAME_MAX)
			return -ENAMETOOLONG;
		if (n && !(n == 1 && in[0] == '.')) {
			if (len + (len > 0) + n >= PATH_MAX)
				return -ENAMETOOLONG;
			if (len)
				out[len++] = '/';
			memcpy(out + len, in, n);
			len += n;
		}
		in += n;
		in += strspn(in, "/");
	}
	out[len] = '\0';
	return 0;
}

/* Clean an entry's name (or hard link target) with a message on refusal. */
static int entry_path(struct applier *ap, const char *raw, char *out, const char *what)
{
	char msg[64 + BL_QUOTE_MAX];
	char quoted[BL_QUOTE_MAX];
	if (!raw || !*raw) {
		snprintf(msg, sizeof(msg), "%s is empty", what);
		return entry_refuse(ap, -EINVAL, msg);
	}
	int r = clean_path(raw, out);
	if (r == 0)
		return 0;
	bl_quote(quoted, sizeof(quoted), raw);
	if (r == -ENAMETOOLONG)
		snprintf(msg, sizeof(msg), "%s %s is too long", what, quoted);
	else if (*raw == '/')
		snprintf(msg, sizeof(msg), "%s %s is absolute", what, quoted);
	else
		snprintf(msg, sizeof(msg), "%s %s climbs out with \"..\"", what, quoted);
	return entry_refuse(ap, r, msg);
}

/* Why a beneath open of a directory on the way failed, for a message. */
static const char *on_the_way(int r)
{
	switch (r) {
	case -ELOOP:
		return "a symbolic link on the way (never followed)";
	case -EXDEV:
		return "a mount point on the way";
	case -ENOTDIR:
		return "a non-directory on the way";
	default:
		return NULL;
	}
}

/* Open directory `name` of dirfd beneath it; create: make it (0755, as
 * tar makes missing parents) when missing.  A symlink is -ELOOP and any
 * other non-directory -ENOTDIR (openat2 says ENOTDIR for both). */
static int step_into(int dirfd, const char *name, bool create)
{
	int fd = bl_open_dir_beneath(dirfd, name);
	if (fd == -ENOENT && create) {
		if (mkdirat(dirfd, name, 0755) < 0 && errno != EEXIST)
			return -errno;
		fd = bl_open_dir_beneath(dirfd, name);
	}
	struct stat st;
	if ((fd == -ENOTDIR || fd == -ELOOP) &&
	    fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		fd = S_ISLNK(st.st_mode) ? -ELOOP : -ENOTDIR;
	return fd;
}

/* Open the directory that holds `path` (cleaned, not "") beneath the root
 * and point *name at its last component.  create: make missing parents.
 * -ENOENT without create when a parent is missing (no message then: the
 * caller decides). */
static int open_parent(struct applier *ap, char *path, bool create, const char **name)
{
	char *slash = strrchr(path, '/');
	if (!slash) {
		*name = path;
		int fd = fcntl(ap->root, F_DUPFD_CLOEXEC, 3);
		return fd < 0 ? entry_fail(ap, -errno, "dup the layer's fd") : fd;
	}
	*name = slash + 1;
	*slash = '\0';
	/* all at once when everything is there, else one component at a
	 * time, to make what is missing and to tell why one is refused */
	int fd = bl_open_path_beneath(ap->root, path);
	if (fd < 0) {
		int cur = fcntl(ap->root, F_DUPFD_CLOEXEC, 3);
		fd = cur < 0 ? -errno : cur;
		for (char *p = path; cur >= 0 && *p;) {
			char *end = strchr(p, '/');
			if (end)
				*end = '\0';
			fd = step_into(cur, p, create);
			if (end)
				*end = '/';
			close(cur);
			cur = fd;
			p = end ? end + 1 : p + strlen(p);
		}
	}
	*slash = '/';
	if (fd >= 0 || (fd == -ENOENT && !create))
		return fd;
	const char *why = on_the_way(fd);
	return why ? entry_refuse(ap, fd, why) : entry_fail(ap, fd, "open its directory");
}

/* ---- removing what is in the way ---------------------------------------- */

static int remove_children(int dirfd);

/* Remove name from dirfd, with its contents when it is a directory; never
 * leaves dirfd's tree (no symlink followed, no mount point entered). */
static int remove_at(int dirfd, const char *name)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dirfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
	int fd = bl_open_dir_beneath(dirfd, name);
	if (fd < 0)
		return fd;
	int r = remove_children(fd);
	close(fd);
	if (r == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		r = -errno;
	return r;
}

/* The names in directory fd (not "." and ".."), read whole before any is
 * removed; *n of them, malloc()ed. */
static int list_dir(int fd, char ***names, size_t *n)
{
	int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (dup_fd < 0)
		return -errno;
	DIR *d = fdopendir(dup_fd);
	if (!d) {
		close(dup_fd);
		return -errno;
	}
	char **v = NULL;
	size_t count = 0, cap = 0;
	int r = 0;
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (count == cap) {
			cap = cap ? cap * 2 : 16;
			char **nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				r = -ENOMEM;
				break;
			}
			v = nv;
		}
		if (!(v[count] = strdup(de->d_name))) {
			r = -ENOMEM;
			break;
		}
		count++;
		errno = 0;
	}
	if (r == 0 && errno)
		r = -errno;
	closedir(d);
	if (r < 0) {
		while (count)
			free(v[--count]);
		free(v);
		return r;
	}
	*names = v;
	*n = count;
	return 0;
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static int remove_children(int dirfd)
{
	char **names;
	size_t n;
	int r = list_dir(dirfd, &names, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; r == 0 && i < n; i++)
		r = remove_at(dirfd, names[i]);
	free_names(names, n);
	return r;
}

/* The opaque marker of directory `path` (fd dirfd): remove every child
 * this archive did not unpack, and look into the kept directories. */
static int make_opaque(struct applier *ap, int dirfd, char *path, size_t len)
{
	char **names;
	size_t n;
	int r = list_dir(dirfd, &names, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; r == 0 && i < n; i++) {
		size_t nl = strlen(names[i]);
		if (len + 1 + nl >= PATH_MAX) {
			r = -ENAMETOOLONG;
			break;
		}
		size_t at = len ? len + 1 : 0;
		if (len)
			path[len] = '/';
		memcpy(path + at, names[i], nl + 1);
		if (!pathset_has(&ap->done, path)) {
			r = remove_at(dirfd, names[i]);
		} else {
			int sub = bl_open_dir_beneath(dirfd, names[i]);
			if (sub >= 0) {
				r = make_opaque(ap, sub, path, at + nl);
				close(sub);
			} else if (sub != -ENOTDIR && sub != -ELOOP) {
				r = sub;	/* a kept non-directory is left as it is */
			}
		}
		path[len] = '\0';
	}
	free_names(names, n);
	return r;
}

/* A whiteout entry: `path` (cleaned) ends in base, which starts with .wh. */
static int whiteout(struct applier *ap, char *path, const char *base)
{
	const char *name;
	bool opaque = !strcmp(base, OPAQUE);
	const char *gone = base + strlen(WHITEOUT);
	if (!opaque && (!*gone || !strcmp(gone, ".") || !strcmp(gone, "..")))
		return entry_refuse(ap, -EINVAL, "a whiteout of no name, \".\" or \"..\"");
	int dirfd = open_parent(ap, path, false, &name);
	if (dirfd == -ENOENT)
		return 0;	/* its directory is gone already */
	if (dirfd < 0)
		return dirfd;
	int r;
	if (opaque) {
		char dir[PATH_MAX];
		size_t len = name > path ? (size_t)(name - path - 1) : 0;
		memcpy(dir, path, len);
		dir[len] = '\0';
		r = make_opaque(ap, dirfd, dir, len);
	} else {
		r = remove_at(dirfd, name + strlen(WHITEOUT));	/* = gone */
	}
	close(dirfd);
	return r < 0 ? entry_fail(ap, r, opaque ? "empty the opaque directory" : "remove")
		     : 0;
}

/* ---- metadata --------------------------------------------------------------- */

/* Whether an extended attribute of the archive is one to restore: user.*,
 * trusted.* and security.* (file capabilities) but not security.selinux,
 * the host's label, which the runtime sets (export leaves it out too). */
static bool xattr_wanted(const char *name)
{
	return !strncmp(name, "user.", 5) || !strncmp(name, "trusted.", 8) ||
	       (!strncmp(name, "security.", 9) && strcmp(name, "security.selinux"));
}

/* Set the entry's xattrs on fd, or on the file a /proc/self/fd path of an
 * O_PATH fd leads to (devices and fifos, whose open might do something). */
static int set_xattrs(struct applier *ap, struct archive_entry *e, int fd, bool by_proc)
{
	const char *xname;
	const void *value;
	size_t size;
	char proc[sizeof("/proc/self/fd/") + 3 * sizeof(int)];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &xname, &value, &size) == ARCHIVE_OK) {
		if (!xname || !xattr_wanted(xname)) {
			bl_log(BTRFSLAYER_LOG_DEBUG, "apply: %s: entry %s: xattr %s skipped",
			       ap->where, ap->entry, xname ? xname : "(null)");
			continue;
		}
		if (size > XATTR_VALUE_MAX)
			return entry_refuse(ap, -E2BIG, "an extended attribute value over 64 KiB");
		int r = by_proc ? setxattr(proc, xname, value, size, 0)
				: fsetxattr(fd, xname, value, size, 0);
		if (r < 0) {
			char msg[64 + XATTR_NAME_MAX];
			snprintf(msg, sizeof(msg), "set extended attribute %.*s", XATTR_NAME_MAX,
				 xname);
			return entry_fail(ap, -errno, msg);
		}
	}
	return 0;
}

static int entry_ids(struct applier *ap, struct archive_entry *e, uid_t *uid, gid_t *gid)
{
	la_int64_t u = archive_entry_uid(e), g = archive_entry_gid(e);
	if (u < 0 || u >= UINT32_MAX || g < 0 || g >= UINT32_MAX)
		return entry_refuse(ap, -EINVAL, "an owner out of range");
	*uid = (uid_t)u;
	*gid = (gid_t)g;
	return 0;
}

static void entry_times(struct archive_entry *e, struct timespec times[2])
{
	times[1].tv_sec = archive_entry_mtime(e);
	times[1].tv_nsec = archive_entry_mtime_nsec(e);
	if (!archive_entry_mtime_is_set(e) || times[1].tv_nsec < 0 || times[1].tv_nsec > 999999999)
		times[1].tv_nsec = UTIME_OMIT;
	times[0] = times[1];
	if (archive_entry_atime_is_set(e)) {
		times[0].tv_sec = archive_entry_atime(e);
		times[0].tv_nsec = archive_entry_atime_nsec(e);
		if (times[0].tv_nsec < 0 || times[0].tv_nsec > 999999999)
			times[0].tv_nsec = UTIME_OMIT;
	}
}

/* Whether the entry carries xattr `name`. */
static bool entry_has_xattr(struct archive_entry *e, const char *name)
{
	const char *xname;
	const void *value;
	size_t size;
	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &xname, &value, &size) == ARCHIVE_OK)
		if (xname && !strcmp(xname, name))
			return true;
	return false;
}

/* A directory kept (a directory entry over a directory) takes the entry's
 * xattrs: those it had and the entry has not go, in the namespaces that
 * are restored (so a security.selinux label stays). */
static int drop_other_xattrs(struct applier *ap, struct archive_entry *e, int fd)
{
	ssize_t len = flistxattr(fd, NULL, 0);
	if (len <= 0)
		return len == 0 || errno == ENOTSUP ? 0 : entry_fail(ap, -errno, "list its xattrs");
	char *list = malloc((size_t)len);
	if (!list)
		return entry_fail(ap, -ENOMEM, "list its xattrs");
	int r = 0;
	len = flistxattr(fd, list, (size_t)len);
	if (len < 0)
		r = entry_fail(ap, -errno, "list its xattrs");
	for (char *p = list; r == 0 && p < list + len; p += strlen(p) + 1) {
		if (!xattr_wanted(p) || entry_has_xattr(e, p))
			continue;
		if (fremovexattr(fd, p) < 0 && errno != ENODATA)
			r = entry_fail(ap, -errno, "remove an xattr it no longer has");
	}
	free(list);
	return r;
}

/* Owner, mode and xattrs of a regular file or directory through its fd:
 * owner first (a chown drops set-id bits and file capabilities), then the
 * mode, then the xattrs. */
static int set_fd_meta(struct applier *ap, struct archive_entry *e, int fd)
{
	uid_t uid = 0;
	gid_t gid = 0;
	int r = entry_ids(ap, e, &uid, &gid);
	if (r < 0)
		return r;
	if (fchown(fd, uid, gid) < 0)
		return entry_fail(ap, -errno, "set its owner");
	if (fchmod(fd, archive_entry_perm(e) & 07777) < 0)
		return entry_fail(ap, -errno, "set its mode");
	return set_xattrs(ap, e, fd, false);
}

/* The same for a symlink, device or fifo `name` of dirfd, never followed. */
static int set_node_meta(struct applier *ap, struct archive_entry *e, int dirfd,
			 const char *name, bool link)
{
	uid_t uid = 0;
	gid_t gid = 0;
	struct timespec times[2];
	int r = entry_ids(ap, e, &uid, &gid);
	if (r < 0)
		return r;
	if (fchownat(dirfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		return entry_fail(ap, -errno, "set its owner");
	if (!link) {
		/* through an O_PATH fd of the node itself: chmod and setxattr
		 * by its /proc/self/fd link reach that inode, nothing else */
		int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return entry_fail(ap, -errno, "open it");
		struct stat st;
		char proc[sizeof("/proc/self/fd/") + 3 * sizeof(int)];
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		if (fstat(fd, &st) < 0 || S_ISLNK(st.st_mode))
			r = entry_fail(ap, S_ISLNK(st.st_mode) ? -ELOOP : -errno, "stat it");
		else if (chmod(proc, archive_entry_perm(e) & 07777) < 0)
			r = entry_fail(ap, -errno, "set its mode");
		else
			r = set_xattrs(ap, e, fd, true);
		close(fd);
		if (r < 0)
			return r;
	} else if (archive_entry_xattr_count(e) > 0) {
		bl_log(BTRFSLAYER_LOG_DEBUG, "apply: %s: entry %s: xattrs of a symlink skipped",
		       ap->where, ap->entry);
	}
	entry_times(e, times);
	if (utimensat(dirfd, name, times, AT_SYMLINK_NOFOLLOW) < 0)
		return entry_fail(ap, -errno, "set its times");
	return 0;
}

static int defer_dir_time(struct applier *ap, const char *path, struct archive_entry *e)
{
	if (ap->n_dirs == ap->cap_dirs) {
		size_t cap = ap->cap_dirs ? ap->cap_dirs * 2 : 32;
		struct dir_time *v = realloc(ap->dirs, cap * sizeof(*v));
		if (!v)
			return entry_fail(ap, -ENOMEM, "remember its times");
		ap->dirs = v;
		ap->cap_dirs = cap;
	}
	struct dir_time *d = &ap->dirs[ap->n_dirs];
	if (!(d->path = strdup(path)))
		return entry_fail(ap, -ENOMEM, "remember its times");
	entry_times(e, d->times);
	ap->n_dirs++;
	return 0;
}

/* ---- the kinds of entries -------------------------------------------------- */

static int write_data(struct applier *ap, struct archive_entry *e, int fd)
{
	const void *buf;
	size_t size;
	la_int64_t offset;
	int r;
	while ((r = archive_read_data_block(ap->a, &buf, &size, &offset)) == ARCHIVE_OK ||
	       r == ARCHIVE_WARN) {
		const char *p = buf;
		if (offset < 0)
			return entry_refuse(ap, -EINVAL, "data at a negative offset");
		while (size > 0) {
			ssize_t n = pwrite(fd, p, size, (off_t)offset);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return entry_fail(ap, n < 0 ? -errno : -EIO, "write its data");
			p += n;
			size -= (size_t)n;
			offset += n;
			ap->unpacked += (uint64_t)n;
		}
		int cancelled = tell_progress(ap, false);
		if (cancelled < 0)
			return cancelled;
	}
	if (r != ARCHIVE_EOF) {
		char msg[64 + 256];
		snprintf(msg, sizeof(msg), "read its data: %.256s", archive_error_string(ap->a) ?
			 archive_error_string(ap->a) : "truncated archive");
		return bl_fail_msg(ap->err, -EIO, "apply: %s: entry %s: %s", ap->where, ap->entry,
				   msg);
	}
	la_int64_t total = archive_entry_size(e);
	/* the size the archive says, holes included (a sparse entry's data
	 * blocks end before it) */
	if (total > 0 && ftruncate(fd, (off_t)total) < 0)
		return entry_fail(ap, -errno, "set its size");
	return 0;
}

static int make_regular(struct applier *ap, struct archive_entry *e, int dirfd,
			const char *name)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return entry_fail(ap, -errno, "create it");
	int r = write_data(ap, e, fd);
	if (r == 0)
		r = set_fd_meta(ap, e, fd);
	if (r == 0) {
		struct timespec times[2];
		entry_times(e, times);
		if (futimens(fd, times) < 0)
			r = entry_fail(ap, -errno, "set its times");
	}
	close(fd);
	return r;
}

static int make_dir(struct applier *ap, struct archive_entry *e, int dirfd,
		    const char *name, const char *path)
{
	if (mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST)
		return entry_fail(ap, -errno, "make it");
	int fd = step_into(dirfd, name, false);
	if (fd < 0) {
		const char *why = on_the_way(fd);
		return why ? entry_refuse(ap, fd, why) : entry_fail(ap, fd, "open it");
	}
	int r = drop_other_xattrs(ap, e, fd);
	if (r == 0)
		r = set_fd_meta(ap, e, fd);
	close(fd);
	return r < 0 ? r : defer_dir_time(ap, path, e);
}

static int make_link(struct applier *ap, struct archive_entry *e, int dirfd,
		     const char *name, const char *target_raw)
{
	char target[PATH_MAX];
	const char *target_name;
	int r = entry_path(ap, target_raw, target, "its hard link target");
	if (r < 0)
		return r;
	if (!*target)
		return entry_refuse(ap, -EINVAL, "a hard link to the layer's root");
	int tdir = open_parent(ap, target, false, &target_name);
	if (tdir == -ENOENT)
		return entry_refuse(ap, -ENOENT, "its hard link target is not in the layer");
	if (tdir < 0)
		return tdir;
	/* flags 0: a symlink target is linked itself, never followed */
	if (linkat(tdir, target_name, dirfd, name, 0) < 0)
		r = entry_fail(ap, -errno, errno == ENOENT ?
			       "link it: its target is not in the layer" : "link it");
	close(tdir);
	(void)e;
	return r;
}

static int make_node(struct applier *ap, struct archive_entry *e, int dirfd,
		     const char *name, mode_t type)
{
	dev_t dev = 0;
	if (type == S_IFCHR || type == S_IFBLK)
		dev = makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
	if (mknodat(dirfd, name, type | 0600, dev) < 0)
		return entry_fail(ap, -errno, "make it");
	return set_node_meta(ap, e, dirfd, name, false);
}

static int make_symlink(struct applier *ap, struct archive_entry *e, int dirfd,
			const char *name)
{
	const char *target = archive_entry_symlink(e);
	if (!target || !*target)
		return entry_refuse(ap, -EINVAL, "a symbolic link to nothing");
	/* its target is only text: it is never followed here */
	if (symlinkat(target, dirfd, name) < 0)
		return entry_fail(ap, -errno, "make it");
	return set_node_meta(ap, e, dirfd, name, true);
}

static int apply_entry(struct applier *ap, struct archive_entry *e)
{
	const char *raw = archive_entry_pathname(e);
	char path[PATH_MAX];
	bl_quote(ap->entry, sizeof(ap->entry), raw ? raw : "");
	int r = entry_path(ap, raw, path, "its name");
	if (r < 0)
		return r;
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	if (!strncmp(base, WHITEOUT, strlen(WHITEOUT)))
		return whiteout(ap, path, base);

	const char *hardlink = archive_entry_hardlink(e);
	mode_t type = hardlink ? 0 : archive_entry_filetype(e);
	if (!*path) {
		/* "./": the layer's root itself */
		if (hardlink || type != AE_IFDIR)
			return entry_refuse(ap, -EINVAL, "the layer's root as a non-directory");
		r = set_fd_meta(ap, e, ap->root);
		return r < 0 ? r : defer_dir_time(ap, path, e);
	}
	if (!hardlink && type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK &&
	    type != AE_IFCHR && type != AE_IFBLK && type != AE_IFIFO)
		return entry_refuse(ap, -EINVAL, "a file type tar layers do not have");

	const char *name;
	int dirfd = open_parent(ap, path, true, &name);
	if (dirfd < 0)
		return dirfd;
	/* what is in the way goes, unless a directory meets a directory */
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    !(type == AE_IFDIR && S_ISDIR(st.st_mode))) {
		r = remove_at(dirfd, name);
		if (r < 0)
			r = entry_fail(ap, r, "remove what was there");
	}
	if (r == 0) {
		if (hardlink)
			r = make_link(ap, e, dirfd, name, hardlink);
		else if (type == AE_IFREG)
			r = make_regular(ap, e, dirfd, name);
		else if (type == AE_IFDIR)
			r = make_dir(ap, e, dirfd, name, path);
		else if (type == AE_IFLNK)
			r = make_symlink(ap, e, dirfd, name);
		else
			r = make_node(ap, e, dirfd, name, type);
	}
	close(dirfd);
	if (r == 0 && (r = pathset_add(&ap->done, path)) < 0)
		r = entry_fail(ap, r, "remember it");
	return r;
}

/* Set the directory times kept for the end; one removed since is skipped. */
static int set_dir_times(struct applier *ap)
{
	for (size_t i = 0; i < ap->n_dirs; i++) {
		struct dir_time *d = &ap->dirs[i];
		int fd = *d->path ? bl_open_path_beneath(ap->root, d->path)
				  : fcntl(ap->root, F_DUPFD_CLOEXEC, 3);
		if (fd < 0 && *d->path)
			continue;	/* whited out or replaced later */
		if (fd < 0 || futimens(fd, d->times) < 0) {
			int r = -errno;
			if (fd >= 0)
				close(fd);
			bl_quote(ap->entry, sizeof(ap->entry), d->path);
			return entry_fail(ap, r, "set its times");
		}
		close(fd);
	}
	return 0;
}

/* Set up the reader: tar formats only (ustar, pax, GNU), and only the
 * compressions libarchive does itself (never an external program). */
static int open_reader(struct applier *ap, int tarfd)
{
	ap->a = archive_read_new();
	if (!ap->a)
		return bl_fail(ap->err, -ENOMEM, "apply: %s: start reading the archive", ap->where);
	if (archive_read_support_format_tar(ap->a) != ARCHIVE_OK ||
	    archive_read_support_filter_none(ap->a) != ARCHIVE_OK ||
	    archive_read_support_filter_gzip(ap->a) != ARCHIVE_OK ||
	    archive_read_support_filter_zstd(ap->a) != ARCHIVE_OK)
		return bl_fail_msg(ap->err, -EOPNOTSUPP, "apply: %s: this libarchive cannot read "
				   "tar with gzip and zstd by itself: %s", ap->where,
				   archive_error_string(ap->a) ? archive_error_string(ap->a) : "?");
	if (archive_read_open_fd(ap->a, tarfd, 64 * 1024) != ARCHIVE_OK)
		return bl_fail_msg(ap->err, -EINVAL, "apply: %s: not a tar archive (plain, gzip or "
				   "zstd): %s", ap->where, archive_error_string(ap->a) ?
				   archive_error_string(ap->a) : "unreadable");
	return 0;
}

int bl_tar_apply(int root, int tarfd, const char *where, btrfslayer_progress_fn progress,
		 void *userdata, uint64_t *unpacked, btrfslayer_error **err)
{
	struct applier ap = {
		.root = root, .where = where, .err = err,
		.progress = progress, .userdata = userdata,
	};
	struct stat st;
	if (fstat(tarfd, &st) == 0 && S_ISREG(st.st_mode))
		ap.total = (uint64_t)st.st_size;
	struct bl_tar_locale loc = bl_tar_locale_enter();
	int r = open_reader(&ap, tarfd);
	while (r == 0) {
		struct archive_entry *e;
		int ar = archive_read_next_header(ap.a, &e);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar == ARCHIVE_WARN) {
			bl_log(BTRFSLAYER_LOG_WARNING, "apply: %s: %s", where,
			       archive_error_string(ap.a));
		} else if (ar != ARCHIVE_OK) {
			const char *why = archive_error_string(ap.a);
			r = bl_fail_msg(err, -EINVAL, "apply: %s: bad or truncated archive after %s: "
					"%.256s", where, *ap.entry ? ap.entry : "its start",
					why ? why : "unreadable header");
			break;
		}
		r = apply_entry(&ap, e);
		if (r == 0)
			r = tell_progress(&ap, false);
	}
	if (r == 0)
		r = set_dir_times(&ap);
	if (r == 0)
		r = tell_progress(&ap, true);
	if (ap.a)
		archive_read_free(ap.a);
	bl_tar_locale_leave(loc);
	pathset_free(&ap.done);
	for (size_t i = 0; i < ap.n_dirs; i++)
		free(ap.dirs[i].path);
	free(ap.dirs);
	if (r == 0 && unpacked)
		*unpacked = ap.unpacked;
	return r;
}

int btrfslayer_apply(btrfslayer *h, const char *id, int fd, uint32_t flags,
		     btrfslayer_progress_fn progress, void *userdata, uint64_t *unpacked,
		     btrfslayer_error **err)
{
	if (unpacked)
		*unpacked = 0;
	int r = bl_check_handle_and_id(h, id, err);
	if (r < 0)
		return r;
	if (flags & ~(uint32_t)BL_APPLY_FLAGS)
		return bl_fail_msg(err, -EINVAL, "apply: %s: unknown flags 0x%x", id,
				   (unsigned)(flags & ~(uint32_t)BL_APPLY_FLAGS));
	if (fd < 0)
		return bl_fail_msg(err, -EBADF, "apply: %s: no archive file descriptor (%d)", id,
				   fd);
	if ((r = bl_check_writable(h, "apply", err)) < 0)
		return r;
	char path[PATH_MAX];
	bl_layer_path(h, id, path, sizeof(path));
	int layer = bl_open_layer(h, id, "apply", err);
	if (layer < 0)
		return layer;
	bool read_only = false;
	r = bl_ioctl_get_read_only(layer, &read_only);
	if (r < 0)
		r = bl_fail(err, r, "apply: %s: read its read-only flag", path);
	else if (read_only)
		r = bl_fail_msg(err, -EROFS, "apply: %s: the layer is read-only (sealed)", path);
	uint64_t size = 0;
	if (r == 0)
		r = bl_tar_apply(layer, fd, path, progress, userdata, &size, err);
	close(layer);
	if (r == 0)
		r = bl_commit(h, "apply", path, err);
	if (r == 0 && unpacked)
		*unpacked = size;
	return r;
}
