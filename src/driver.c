/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The driver: HOME/subvolumes/<id> layout, options, and the life of layers.
 *
 * Everything on disk is reached through directory fds opened once at open
 * with O_NOFOLLOW, never through a path string rebuilt and resolved again.
 * A layer is built under a reserved name and renamed to its id only when
 * complete; a removal starts by renaming it to a reserved tombstone name.
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
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define SUBVOLUMES "subvolumes"
#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
/* Home and subvolumes/, as moby after CVE-2021-21284: traversable by the
 * remapped root's group, readable by nobody else. */
#define HOME_MODE 0710
#define LAYER_ROOT_MODE 0755
#define RESERVED_NAME_MAX 32
#define RESERVED_NAME_ATTEMPTS 8

/* "<home>/subvolumes/<name>", for messages and get(); names are checked. */
static void layer_path(const btrfslayer *h, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/" SUBVOLUMES "/%s", h->home, name);
}

/* A fresh name in the library's reserved namespace (leading '.'). */
static void reserved_name(const char *prefix, char buf[RESERVED_NAME_MAX])
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
	snprintf(buf, RESERVED_NAME_MAX, "%s%016" PRIx64, prefix, r);
}

/* ---- open / close --------------------------------------------------------- */

static int parse_open_options(btrfslayer *h, const char *const *options,
			      size_t n, btrfslayer_error **err)
{
	struct bl_option *opts = NULL;
	char quoted[BL_QUOTE_MAX];
	int r = bl_options_parse(options, n, "option", &opts, err);
	if (r < 0)
		return r;
	for (size_t i = 0; r == 0 && i < n; i++) {
		if (!strcmp(opts[i].key, "btrfs.min_space")) {
			r = bl_parse_size(opts[i].value, &h->min_space);
			if (r < 0)
				bl_fail(err, r, "invalid option btrfs.min_space=%s",
					bl_quote(quoted, sizeof(quoted), opts[i].value));
		} else {
			r = bl_fail_msg(err, -EINVAL,
					"unknown option %s (known: btrfs.min_space)",
					bl_quote(quoted, sizeof(quoted), opts[i].key));
		}
	}
	bl_options_free(opts, n);
	return r;
}

/* Create directory `name` in dirfd with the layout's owner and mode, or
 * open it if it is there; refuse a symlink or a non-directory. */
static int open_or_make_dir(int dirfd, const char *name, uid_t uid, gid_t gid,
			    const char *path, btrfslayer_error **err)
{
	if (mkdirat(dirfd, name, HOME_MODE) == 0) {
		int fd = openat(dirfd, name, DIR_FLAGS);
		if (fd < 0)
			return bl_fail(err, -errno, "open new directory: %s", path);
		/* mkdir's mode went through the umask; ownership is the layout's */
		if (fchown(fd, uid, gid) < 0 || fchmod(fd, HOME_MODE) < 0) {
			int r = bl_fail(err, -errno, "set owner and mode: %s", path);
			close(fd);
			return r;
		}
		return fd;
	}
	if (errno != EEXIST)
		return bl_fail(err, -errno, "create directory: %s", path);
	int fd = bl_open_dir_beneath(dirfd, name);
	if (fd >= 0)
		return fd;
	if (fd == -EXDEV)
		return bl_fail_msg(err, -EXDEV, "open directory: %s: is a mount point, refusing to use it",
				   path);
	struct stat st;
	if ((fd == -ELOOP || fd == -ENOTDIR) &&
	    fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode))
		return bl_fail_msg(err, -ENOTDIR, "open directory: %s: %s, refusing to use it",
				   path, S_ISLNK(st.st_mode) ? "is a symbolic link" : "is not a directory");
	return bl_fail(err, fd, "open directory: %s", path);
}

/* Open home, creating it (not its parents) when missing.  The filesystem
 * that is checked is home's when it exists, else its parent's. */
static int open_home(btrfslayer *h, const char *home, btrfslayer_error **err)
{
	char *copy = strdup(home);
	int r, parent_fd = -1;
	if (!copy)
		return bl_fail(err, -ENOMEM, "open home: %s", home);

	/* split into parent and last component; "a/b//" -> "a" and "b" */
	size_t len = strlen(copy);
	while (len > 1 && copy[len - 1] == '/')
		copy[--len] = '\0';
	char *slash = strrchr(copy, '/');
	const char *base = slash ? slash + 1 : copy;
	const char *parent = slash ? (slash == copy ? "/" : copy) : ".";
	if (slash && slash != copy)
		*slash = '\0';
	if (!*base) {	/* home is "/" */
		parent_fd = open("/", DIR_FLAGS);
		base = ".";
	} else {
		parent_fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (parent_fd < 0) {
		r = bl_fail(err, -errno, "open parent directory of home: %s", home);
		goto out;
	}
	struct stat st;
	bool exists = fstatat(parent_fd, base, &st, AT_SYMLINK_NOFOLLOW) == 0;
	if (exists && S_ISLNK(st.st_mode)) {
		r = bl_fail_msg(err, -ELOOP, "open home: %s: is a symbolic link, refusing to use it", home);
		goto out;
	}
	if (exists) {
		int fd = openat(parent_fd, base, DIR_FLAGS);
		r = fd < 0 ? -errno : bl_check_btrfs(fd);
		if (fd >= 0)
			h->home_fd = fd;
	} else {
		r = bl_check_btrfs(parent_fd);
	}
	if (r < 0) {
		bl_fail(err, r, "open home: %s", home);
		goto out;
	}
	if (!exists) {
		r = open_or_make_dir(parent_fd, base, geteuid(), h->root_gid, home, err);
		if (r < 0)
			goto out;
		h->home_fd = r;
		r = 0;
	}
out:
	if (parent_fd >= 0)
		close(parent_fd);
	free(copy);
	return r;
}

/* The absolute path of the home we hold open, checked to still be it. */
static int resolve_home(btrfslayer *h, const char *home, btrfslayer_error **err)
{
	struct stat by_fd, by_path;
	h->home = realpath(home, NULL);
	if (!h->home)
		return bl_fail(err, -errno, "resolve home: %s", home);
	if (fstat(h->home_fd, &by_fd) < 0 || stat(h->home, &by_path) < 0)
		return bl_fail(err, -errno, "stat home: %s", home);
	if (by_fd.st_dev != by_path.st_dev || by_fd.st_ino != by_path.st_ino)
		return bl_fail_msg(err, -EAGAIN, "open home: %s: replaced while being opened", home);
	return 0;
}

static int open_layout(btrfslayer *h, btrfslayer_error **err)
{
	char path[PATH_MAX];
	uint8_t home_fs[16], subvolumes_fs[16];

	snprintf(path, sizeof(path), "%s/" SUBVOLUMES, h->home);
	int fd = open_or_make_dir(h->home_fd, SUBVOLUMES, geteuid(), h->root_gid, path, err);
	if (fd < 0)
		return fd;
	h->subvolumes_fd = fd;
	int r = bl_ioctl_fs_uuid(h->home_fd, home_fs);
	if (r == 0)
		r = bl_ioctl_fs_uuid(fd, subvolumes_fs);
	if (r < 0)
		return bl_fail(err, r, "check filesystem: %s", path);
	if (memcmp(home_fs, subvolumes_fs, sizeof(home_fs)))
		return bl_fail_msg(err, -EXDEV, "check filesystem: %s: not on home's btrfs filesystem", path);
	return 0;
}

BTRFSLAYER_API int btrfslayer_open(const char *home,
				   const char *const *options, size_t n_options,
				   const btrfslayer_idmap *uid_map, size_t n_uid_map,
				   const btrfslayer_idmap *gid_map, size_t n_gid_map,
				   btrfslayer **out, btrfslayer_error **err)
{
	bl_clear_error(err);
	if (!out)
		return bl_fail_msg(err, -EINVAL, "open: no place for the handle (out is NULL)");
	*out = NULL;
	if (!home || !*home)
		return bl_fail_msg(err, -EINVAL, "open: home is empty");
	if (strnlen(home, PATH_MAX) >= PATH_MAX)
		return bl_fail_msg(err, -ENAMETOOLONG, "open: home is longer than PATH_MAX");

	btrfslayer *h = calloc(1, sizeof(*h));
	if (!h)
		return bl_fail(err, -ENOMEM, "open: %s", home);
	h->home_fd = h->subvolumes_fd = -1;

	int r = parse_open_options(h, options, n_options, err);
	if (r == 0)
		r = bl_idmap_root(uid_map, n_uid_map, "uid map", &h->root_uid, err);
	if (r == 0)
		r = bl_idmap_root(gid_map, n_gid_map, "gid map", &h->root_gid, err);
	if (r == 0)
		r = open_home(h, home, err);
	if (r == 0)
		r = resolve_home(h, home, err);
	if (r == 0)
		r = open_layout(h, err);
	if (r < 0) {
		btrfslayer_close(h, NULL);
		return r;
	}
	*out = h;
	return 0;
}

BTRFSLAYER_API int btrfslayer_close(btrfslayer *h, btrfslayer_error **err)
{
	bl_clear_error(err);
	if (!h)
		return 0;
	if (h->subvolumes_fd >= 0)
		close(h->subvolumes_fd);
	if (h->home_fd >= 0)
		close(h->home_fd);
	free(h->home);
	free(h);
	return 0;
}

/* ---- layers ---------------------------------------------------------------- */

/* Open layer `id` for use: a subvolume directly under subvolumes/. */
static int open_layer(btrfslayer *h, const char *id, const char *step,
		      btrfslayer_error **err)
{
	char path[PATH_MAX];
	layer_path(h, id, path, sizeof(path));
	int fd = bl_open_dir_beneath(h->subvolumes_fd, id);
	if (fd == -ELOOP || fd == -ENOTDIR)
		return bl_fail_msg(err, -ENOENT, "%s: %s: not a layer (a symbolic link or a file)",
				   step, path);
	if (fd == -EXDEV)
		return bl_fail_msg(err, -ENOENT, "%s: %s: not a layer (a mount point)", step, path);
	if (fd < 0)
		return bl_fail(err, fd, "%s: %s", step, path);
	int r = bl_ioctl_is_subvolume(fd);
	if (r == 1)
		return fd;
	close(fd);
	if (r == 0)
		return bl_fail_msg(err, -ENOENT, "%s: %s: not a layer (not a btrfs subvolume)",
				   step, path);
	return bl_fail(err, r, "%s: %s", step, path);
}

static int check_handle_and_id(btrfslayer *h, const char *id, btrfslayer_error **err)
{
	bl_clear_error(err);
	if (!h)
		return bl_fail_msg(err, -EINVAL, "no handle (NULL)");
	return bl_id_check(id, "layer id", err);
}

static int check_storage_options(const char *const *opts, size_t n,
				 btrfslayer_error **err)
{
	struct bl_option *parsed = NULL;
	char quoted[BL_QUOTE_MAX];
	int r = bl_options_parse(opts, n, "storage option", &parsed, err);
	for (size_t i = 0; r == 0 && i < n; i++) {
		bl_quote(quoted, sizeof(quoted), parsed[i].key);
		if (!strcmp(parsed[i].key, "size"))
			r = bl_fail_msg(err, -EOPNOTSUPP,
					"storage option %s: per-layer size limits are not supported yet",
					quoted);
		else
			r = bl_fail_msg(err, -EINVAL, "unknown storage option %s", quoted);
	}
	if (parsed)
		bl_options_free(parsed, n);
	return r;
}

/* Make the subvolume `tmp`: a snapshot of parent_fd or an empty one.  A
 * snapshot that needs no later write is taken read-only at once. */
static int make_subvolume(btrfslayer *h, const char *tmp, int parent_fd,
			  bool read_only_now, const char *path, btrfslayer_error **err)
{
	int r;
	if (parent_fd >= 0) {
		r = bl_ioctl_snapshot(parent_fd, h->subvolumes_fd, tmp, read_only_now);
		if (r < 0)
			return bl_fail(err, r, "create snapshot: %s", path);
	} else {
		r = bl_ioctl_subvolume_create(h->subvolumes_fd, tmp);
		if (r < 0)
			return bl_fail(err, r, "create subvolume: %s", path);
	}
	return 0;
}

/* Owner, mode, label and seal of the layer root, while it is still hidden. */
static int finish_layer(btrfslayer *h, int fd, bool empty, const char *label,
			bool seal, const char *path, btrfslayer_error **err)
{
	if (empty && (fchown(fd, h->root_uid, h->root_gid) < 0 ||
		      fchmod(fd, LAYER_ROOT_MODE) < 0))
		return bl_fail(err, -errno, "set owner and mode of layer root: %s", path);
	if (label) {
		int r = bl_label_apply(fd, label, path, err);
		if (r < 0)
			return r;
	}
	if (seal) {
		int r = bl_ioctl_set_read_only(fd, true);
		if (r < 0)
			return bl_fail(err, r, "make read-only: %s", path);
	}
	return 0;
}

BTRFSLAYER_API int btrfslayer_create(btrfslayer *h, const char *id,
				     const char *parent, uint32_t flags,
				     const char *mount_label,
				     const char *const *storage_opts,
				     size_t n_storage_opts,
				     btrfslayer_error **err)
{
	char path[PATH_MAX], tmp_path[PATH_MAX], tmp[RESERVED_NAME_MAX];
	int parent_fd = -1, fd = -1;
	bool made = false;

	/* every argument first: a bad one changes nothing */
	int r = check_handle_and_id(h, id, err);
	if (r < 0)
		return r;
	if (parent && (r = bl_id_check(parent, "parent id", err)) < 0)
		return r;
	if (flags & ~BTRFSLAYER_CREATE_MASK)
		return bl_fail_msg(err, -EINVAL, "create layer %s: unknown flags 0x%" PRIx32,
				   id, flags & ~BTRFSLAYER_CREATE_MASK);
	if (mount_label && !*mount_label)
		mount_label = NULL;
	if (mount_label && (r = bl_label_check(mount_label, err)) < 0)
		return r;
	if ((r = check_storage_options(storage_opts, n_storage_opts, err)) < 0)
		return r;

	layer_path(h, id, path, sizeof(path));
	struct stat st;
	if (fstatat(h->subvolumes_fd, id, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return bl_fail(err, -EEXIST, "create layer: %s", path);
	if (parent && (parent_fd = open_layer(h, parent, "open parent layer", err)) < 0)
		return parent_fd;

	bool read_only = flags & BTRFSLAYER_CREATE_READ_ONLY;
	bool empty = parent_fd < 0;
	/* a snapshot nobody writes to is born read-only; others are sealed
	 * after their last write, still under the reserved name */
	bool born_read_only = read_only && !empty && !mount_label;
	for (int attempt = 0; attempt < RESERVED_NAME_ATTEMPTS; attempt++) {
		reserved_name(BL_TMP_PREFIX, tmp);
		layer_path(h, tmp, tmp_path, sizeof(tmp_path));
		bl_clear_error(err);
		r = make_subvolume(h, tmp, parent_fd, born_read_only, tmp_path, err);
		if (r != -EEXIST)
			break;
	}
	if (r < 0)
		goto out;
	made = true;

	fd = openat(h->subvolumes_fd, tmp, DIR_FLAGS);
	if (fd < 0) {
		r = bl_fail(err, -errno, "open new layer: %s", tmp_path);
		goto out;
	}
	r = finish_layer(h, fd, empty, mount_label, read_only && !born_read_only,
			 tmp_path, err);
	if (r < 0)
		goto out;
	if (renameat2(h->subvolumes_fd, tmp, h->subvolumes_fd, id, RENAME_NOREPLACE) < 0) {
		r = bl_fail(err, -errno, "create layer: %s", path);
		goto out;
	}
	made = false;
out:
	if (made) {
		/* never leave a half-made layer behind */
		int c = fd >= 0 ? bl_tree_destroy(h->subvolumes_fd, tmp, fd, tmp_path, NULL)
				: bl_ioctl_destroy(h->subvolumes_fd, tmp);
		if (c < 0)
			bl_log(BTRFSLAYER_LOG_ERR, "cleanup after failed create: delete %s: %s",
			       tmp_path, btrfslayer_strerror(c));
	}
	if (fd >= 0)
		close(fd);
	if (parent_fd >= 0)
		close(parent_fd);
	return r;
}

/* The tombstone found at `name` must be what we opened as the layer. */
static bool same_inode(int dirfd, const char *name, int fd)
{
	struct stat a, b;
	return fstatat(dirfd, name, &a, AT_SYMLINK_NOFOLLOW) == 0 && fstat(fd, &b) == 0 &&
	       a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

BTRFSLAYER_API int btrfslayer_remove(btrfslayer *h, const char *id,
				     btrfslayer_error **err)
{
	char path[PATH_MAX], tomb[RESERVED_NAME_MAX];
	int r = check_handle_and_id(h, id, err);
	if (r < 0)
		return r;
	int fd = open_layer(h, id, "remove layer", err);
	if (fd < 0)
		return fd;

	/* from here on the id is gone, whatever happens to the deletion */
	layer_path(h, id, path, sizeof(path));
	reserved_name(BL_TOMB_PREFIX, tomb);
	if (renameat2(h->subvolumes_fd, id, h->subvolumes_fd, tomb, RENAME_NOREPLACE) < 0) {
		r = bl_fail(err, -errno, "remove layer: rename to %s: %s", tomb, path);
		goto out;
	}
	if (!same_inode(h->subvolumes_fd, tomb, fd)) {
		/* swapped between our open and our rename: not ours to delete */
		if (renameat2(h->subvolumes_fd, tomb, h->subvolumes_fd, id, RENAME_NOREPLACE) < 0)
			bl_log(BTRFSLAYER_LOG_ERR, "remove layer: %s was replaced during removal "
			       "and is left as %s", path, tomb);
		r = bl_fail_msg(err, -EAGAIN, "remove layer: %s: replaced during removal", path);
		goto out;
	}
	r = bl_tree_destroy(h->subvolumes_fd, tomb, fd, path, err);
	if (r < 0 &&
	    renameat2(h->subvolumes_fd, tomb, h->subvolumes_fd, id, RENAME_NOREPLACE) < 0)
		/* the caller's retry needs the id back; say where it went */
		bl_log(BTRFSLAYER_LOG_ERR, "remove layer: failed removal of %s is left as %s",
		       path, tomb);
out:
	close(fd);
	return r;
}

BTRFSLAYER_API int btrfslayer_get(btrfslayer *h, const char *id,
				  const char *mount_label, char **path,
				  btrfslayer_error **err)
{
	(void)mount_label;
	if (path)
		*path = NULL;
	int r = check_handle_and_id(h, id, err);
	if (r < 0)
		return r;
	if (!path)
		return bl_fail_msg(err, -EINVAL, "get layer %s: no place for the path (NULL)", id);
	int fd = open_layer(h, id, "get layer", err);
	if (fd < 0)
		return fd;
	char *p;
	if (asprintf(&p, "%s/" SUBVOLUMES "/%s", h->home, id) < 0) {
		close(fd);
		return bl_fail(err, -ENOMEM, "get layer: %s/" SUBVOLUMES "/%s", h->home, id);
	}
	/* the one path handed out must lead to the layer, not to whatever
	 * now sits where home or subvolumes/ used to be */
	r = bl_path_leads_to(p, fd);
	close(fd);
	if (r < 0) {
		bl_fail_msg(err, r, "get layer: %s: the path no longer leads to the layer "
			    "(home or subvolumes/ moved or replaced since open)", p);
		free(p);
		return r;
	}
	*path = p;
	return 0;
}

BTRFSLAYER_API int btrfslayer_put(btrfslayer *h, const char *id,
				  btrfslayer_error **err)
{
	return check_handle_and_id(h, id, err);
}

BTRFSLAYER_API int btrfslayer_exists(btrfslayer *h, const char *id,
				     btrfslayer_error **err)
{
	int r = check_handle_and_id(h, id, err);
	if (r < 0)
		return r;
	r = bl_lookup_layer(h->subvolumes_fd, id);
	if (r >= 0)
		return r;
	if (r == -ENOENT)
		return 0;
	char path[PATH_MAX];
	layer_path(h, id, path, sizeof(path));
	return bl_fail(err, r, "look up layer: %s", path);
}

BTRFSLAYER_API int btrfslayer_layers(btrfslayer *h, btrfslayer_list **out,
				     btrfslayer_error **err)
{
	bl_clear_error(err);
	if (!h || !out)
		return bl_fail_msg(err, -EINVAL, "list layers: NULL handle or result");
	*out = NULL;

	char dir_path[PATH_MAX], path[PATH_MAX];
	snprintf(dir_path, sizeof(dir_path), "%s/" SUBVOLUMES, h->home);
	/* a fresh fd: a DIR's position is per open file, and h is shared */
	int fd = openat(h->subvolumes_fd, ".", DIR_FLAGS);
	DIR *dir = fd < 0 ? NULL : fdopendir(fd);
	if (!dir) {
		int r = bl_fail(err, -errno, "list layers: %s", dir_path);
		if (fd >= 0)
			close(fd);
		return r;
	}
	btrfslayer_list *list = bl_list_new();
	int r = list ? 0 : -ENOMEM;
	struct dirent *d;
	while (r == 0 && (errno = 0, d = readdir(dir))) {
		/* the reserved names and anything that is not a layer stay out */
		if (bl_id_check(d->d_name, "layer id", NULL) < 0 ||
		    bl_lookup_layer(fd, d->d_name) != 1)
			continue;
		layer_path(h, d->d_name, path, sizeof(path));
		r = bl_list_add(list, d->d_name, path);
	}
	if (r == 0 && errno)
		r = -errno;
	closedir(dir);
	if (r < 0) {
		btrfslayer_list_free(list);
		return bl_fail(err, r, "list layers: %s", dir_path);
	}
	bl_list_sort_by_key(list);
	*out = list;
	return 0;
}
