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
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define SUBVOLUMES BL_SUBVOLUMES
#define DIR_FLAGS BL_DIR_FLAGS
/* Home and subvolumes/, as moby after CVE-2021-21284: owned by the caller,
 * traversable by the remapped root's group, readable by nobody else.
 * quotas/ is the library's alone. */
#define HOME_MODE 0710
#define QUOTAS_MODE 0700
#define LAYER_ROOT_MODE 0755
/* Pending qgroups retried per remove; close retries them all. */
#define QGROUP_RETRIES_PER_REMOVE 8

void bl_layer_path(const btrfslayer *h, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/" SUBVOLUMES "/%s", h->home, name);
}

/* FNV-1a: any fixed spread will do, ids are not adversarial here (a
 * collision only makes two ids share a lock). */
static unsigned id_lock_index(const char *id)
{
	uint32_t hash = 2166136261u;
	for (; *id; id++)
		hash = (hash ^ (unsigned char)*id) * 16777619u;
	return hash % BL_ID_LOCKS;
}

/* The handle's mutex first: the byte lock in HOME/.lock belongs to the
 * handle's open file, so it keeps other handles out but not our threads. */
void bl_id_lock(btrfslayer *h, const char *id)
{
	unsigned i = id_lock_index(id);
	pthread_mutex_lock(&h->id_locks[i]);
	bl_session_lock_id(h, i);
}

void bl_id_unlock(btrfslayer *h, const char *id)
{
	unsigned i = id_lock_index(id);
	bl_session_unlock_id(h, i);
	pthread_mutex_unlock(&h->id_locks[i]);
}

/* ---- open / close --------------------------------------------------------- */

static int parse_open_options(btrfslayer *h, const char *const *options,
			      size_t n, bool *quotas_wanted, btrfslayer_error **err)
{
	struct bl_option *opts = NULL;
	char quoted[BL_QUOTE_MAX];
	int r = bl_options_parse(options, n, "option", &opts, err);
	if (r < 0)
		return r;
	for (size_t i = 0; r == 0 && i < n; i++) {
		const char *key = opts[i].key, *value = opts[i].value;
		if (!strcmp(key, "btrfs.min_space")) {
			r = bl_parse_size(value, &h->min_space);
			if (r < 0)
				bl_fail(err, r, "invalid option btrfs.min_space=%s",
					bl_quote(quoted, sizeof(quoted), value));
			*quotas_wanted = true;
		} else if (!strcmp(key, "btrfs.quota_mode")) {
			r = bl_quota_parse_mode(value, &h->quota_mode);
			if (r < 0)
				bl_fail_msg(err, r, "invalid option btrfs.quota_mode=%s "
					    "(known: qgroup, simple)",
					    bl_quote(quoted, sizeof(quoted), value));
			*quotas_wanted = true;
		} else if (!strcmp(key, "btrfs.mount_home")) {
			r = bl_parse_bool(value, &h->mount_home);
			if (r < 0)
				bl_fail_msg(err, r, "invalid option btrfs.mount_home=%s: "
					    "expected true or false",
					    bl_quote(quoted, sizeof(quoted), value));
		} else {
			r = bl_fail_msg(err, -EINVAL, "unknown option %s (known: btrfs.min_space, "
					"btrfs.quota_mode, btrfs.mount_home)",
					bl_quote(quoted, sizeof(quoted), key));
		}
	}
	bl_options_free(opts, n);
	return r;
}

/* Give a directory of the layout its owner and mode, whether new or found:
 * a home made before the CVE-2021-21284 layout must not stay open. */
static int set_layout(int fd, mode_t mode, uid_t uid, gid_t gid, const char *path,
		      btrfslayer_error **err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return bl_fail(err, -errno, "stat: %s", path);
	if ((st.st_uid != uid || st.st_gid != gid) && fchown(fd, uid, gid) < 0)
		return bl_fail(err, -errno, "set owner: %s", path);
	/* after the chown, which may clear set-id bits */
	if ((st.st_mode & 07777) != mode && fchmod(fd, mode) < 0)
		return bl_fail(err, -errno, "set mode: %s", path);
	return 0;
}

/* Open directory `name` of dirfd, refusing a symlink, a non-directory or a
 * mount point; -ENOENT, with no error set, when it is missing. */
static int open_dir(int dirfd, const char *name, const char *path, btrfslayer_error **err)
{
	int fd = bl_open_dir_beneath(dirfd, name);
	if (fd >= 0 || fd == -ENOENT)
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

/* Finish what open_dir() found at `name`: when it was missing (-ENOENT),
 * make it (*made says so) and open it; then give it the layout's owner and
 * mode if it was made or lay_out says so. */
static int make_dir_if_missing(int fd, int dirfd, const char *name, mode_t mode, uid_t uid,
			       gid_t gid, bool lay_out, bool *made, const char *path,
			       btrfslayer_error **err)
{
	*made = false;
	if (fd == -ENOENT) {
		*made = mkdirat(dirfd, name, mode) == 0;
		if (!*made && errno != EEXIST)
			return bl_fail(err, -errno, "create directory: %s", path);
		fd = open_dir(dirfd, name, path, err);
		if (fd == -ENOENT)
			return bl_fail(err, fd, "open new directory: %s", path);
	}
	if (fd < 0 || !(lay_out || *made))
		return fd;
	int r = set_layout(fd, mode, uid, gid, path, err);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

/* Find or make home; its owner and mode are set later, under the home
 * lock (set_up_home()).  h->home_made says whether this call made it. */
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
		/* a failed open leaves it empty: it takes back what it made in it */
		h->home_made = mkdirat(parent_fd, base, HOME_MODE) == 0;
		if (!h->home_made && errno != EEXIST)
			r = bl_fail(err, -errno, "create directory: %s", home);
		else if ((r = open_dir(parent_fd, base, home, err)) == -ENOENT)
			bl_fail(err, r, "open new directory: %s", home);
		if (r >= 0) {
			h->home_fd = r;
			r = 0;
		}
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

/* subvolumes/, which must be on home's btrfs, and quotas/.  Whatever is
 * planted at either is refused before the other is made.  Found ones get
 * the layout only when lay_out says so; h->layout_made says which of them
 * this call created, for undo_layout(). */
static int open_layout(btrfslayer *h, bool lay_out, btrfslayer_error **err)
{
	static const char *const names[2] = { SUBVOLUMES, BL_QUOTAS };
	static const mode_t modes[2] = { HOME_MODE, QUOTAS_MODE };
	int *fds[2] = { &h->subvolumes_fd, &h->quotas_fd };
	char paths[2][PATH_MAX];
	int found[2], r = 0;

	for (int i = 0; i < 2; i++) {
		snprintf(paths[i], sizeof(paths[i]), "%s/%s", h->home, names[i]);
		found[i] = r < 0 ? -ENOENT : open_dir(h->home_fd, names[i], paths[i], err);
		if (found[i] < 0 && found[i] != -ENOENT)
			r = found[i];
	}
	for (int i = 0; i < 2; i++) {
		if (r < 0) {
			if (found[i] >= 0)
				close(found[i]);
			continue;
		}
		r = make_dir_if_missing(found[i], h->home_fd, names[i], modes[i], geteuid(),
					h->root_gid, lay_out, &h->layout_made[i], paths[i], err);
		if (r >= 0)
			*fds[i] = r;
	}
	if (r < 0)
		return r;

	uint8_t home_fs[16], subvolumes_fs[16];
	r = bl_ioctl_fs_uuid(h->home_fd, home_fs);
	if (r == 0)
		r = bl_ioctl_fs_uuid(h->subvolumes_fd, subvolumes_fs);
	if (r < 0)
		return bl_fail(err, r, "check filesystem: %s", paths[0]);
	if (memcmp(home_fs, subvolumes_fs, sizeof(home_fs)))
		return bl_fail_msg(err, -EXDEV, "check filesystem: %s: not on home's btrfs filesystem",
				   paths[0]);
	return 0;
}

/* Refuse what is planted at subvolumes/ or quotas/ before anything is made
 * in home, HOME/.lock included; open_layout() checks again under the home
 * lock. */
static int check_layout(btrfslayer *h, btrfslayer_error **err)
{
	static const char *const names[2] = { SUBVOLUMES, BL_QUOTAS };
	char path[PATH_MAX];
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", h->home, names[i]);
		int fd = open_dir(h->home_fd, names[i], path, err);
		if (fd < 0 && fd != -ENOENT)
			return fd;
		if (fd >= 0)
			close(fd);
	}
	return 0;
}

/* A failed open takes back what it made in home: subvolumes/, quotas/ and
 * the id-map record.  Under the home lock, with no other handle open. */
static void undo_layout(btrfslayer *h)
{
	static const char *const names[2] = { SUBVOLUMES, BL_QUOTAS };
	if (h->subvolumes_fd >= 0)
		close(h->subvolumes_fd);
	if (h->quotas_fd >= 0)
		close(h->quotas_fd);
	h->subvolumes_fd = h->quotas_fd = -1;
	for (int i = 0; i < 2; i++)
		if (h->layout_made[i] && unlinkat(h->home_fd, names[i], AT_REMOVEDIR) < 0)
			bl_log(BTRFSLAYER_LOG_WARNING, "cleanup after failed open: remove %s/%s: %s",
			       h->home, names[i], strerror(errno));
	bl_home_maps_undo(h, h->home_fd);
}

/* A slot in HOME/.lock, then the home lock, on the file that is still
 * HOME/.lock: a failed open may remove a .lock it made (shut()). */
static int take_session(btrfslayer *h, btrfslayer_error **err)
{
	for (int attempt = 0; attempt < BL_RESERVED_NAME_ATTEMPTS; attempt++) {
		h->lock_made = !bl_session_exists(h->home_fd);
		int r = bl_session_open(h, err);
		if (r < 0)
			return r;
		bl_session_lock_home(h);
		if (bl_session_current(h))
			return 0;
		bl_session_close(h);
	}
	return bl_fail_msg(err, -EAGAIN, "open lock file: %s/.lock: removed again and again "
			   "while being opened", h->home);
}

/* Under the home lock: the mount at home, the id maps and the layout.  The
 * id-map record is written last: a home that has one is laid out for it. */
static int set_up_home(btrfslayer *h, const btrfslayer_idmap *uid_map, size_t n_uid_map,
		       const btrfslayer_idmap *gid_map, size_t n_gid_map,
		       btrfslayer_error **err)
{
	bool lay_out = false;
	int r = h->mount_home ? bl_home_mount(h, err) : 0;
	if (r == 0)
		r = bl_home_maps_check(h, uid_map, n_uid_map, gid_map, n_gid_map, h->home_made,
				       &lay_out, err);
	if (r == 0 && lay_out)
		r = set_layout(h->home_fd, HOME_MODE, geteuid(), h->root_gid, h->home, err);
	if (r == 0)
		r = open_layout(h, lay_out, err);
	if (r == 0 && lay_out)
		r = bl_home_maps_write(h, uid_map, n_uid_map, gid_map, n_gid_map, err);
	return r;
}

/* Close the handle.  A failed open also takes back what it made in home
 * (when no other handle has come to use it meanwhile): the layout, the
 * id-map record and HOME/.lock.  An empty home it made stays. */
static int shut(btrfslayer *h, bool failed, btrfslayer_error **err)
{
	int r = 0;
	if (!failed && h->lock_fd >= 0 && h->subvolumes_fd >= 0 && h->quotas_fd >= 0)
		bl_sweep_own(h);	/* what a failed call of ours left */
	if (!failed && h->home_fd >= 0)
		bl_quota_retry_pending(h, SIZE_MAX);
	/* every fd on home's mount goes before the unmount */
	if (h->quotas_fd >= 0)
		close(h->quotas_fd);
	h->quotas_fd = -1;
	if (h->lock_fd >= 0) {
		bl_session_lock_home(h);
		if (bl_session_alone(h)) {
			if (failed && h->home_fd >= 0)
				undo_layout(h);
			if (h->mount_home)
				r = bl_home_unmount(h, err);
			if (failed && h->lock_made && h->lock_fd >= 0) {
				int fd = h->base_fd >= 0 ? h->base_fd : h->home_fd;
				int own = fd < 0 ? open(h->home, DIR_FLAGS) : -1;
				bl_session_remove(h, fd >= 0 ? fd : own);
				if (own >= 0)
					close(own);
			}
		}
	}
	/* every fd on home goes while the session is held: the next closer
	 * to see itself alone must find the mount free of this handle */
	if (h->subvolumes_fd >= 0)
		close(h->subvolumes_fd);
	if (h->home_fd >= 0)
		close(h->home_fd);
	if (h->base_fd >= 0)
		close(h->base_fd);
	bl_session_close(h);	/* releases every lock the handle holds */
	for (size_t i = 0; i < BL_ID_LOCKS; i++)
		pthread_mutex_destroy(&h->id_locks[i]);
	pthread_mutex_destroy(&h->quota_lock);
	free(h->pending_qgroups);
	free(h->home);
	free(h);
	return r;
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
	h->home_fd = h->subvolumes_fd = h->quotas_fd = h->lock_fd = h->base_fd = -1;
	h->mount_home = true;
	for (size_t i = 0; i < BL_ID_LOCKS; i++)
		pthread_mutex_init(&h->id_locks[i], NULL);
	pthread_mutex_init(&h->quota_lock, NULL);

	bool quotas_wanted = false;
	int r = parse_open_options(h, options, n_options, &quotas_wanted, err);
	if (r == 0)
		r = bl_idmap_root(uid_map, n_uid_map, "uid map", &h->root_uid, err);
	if (r == 0)
		r = bl_idmap_root(gid_map, n_gid_map, "gid map", &h->root_gid, err);
	if (r == 0)
		r = open_home(h, home, err);
	if (r == 0)
		r = resolve_home(h, home, err);
	if (r == 0)
		r = check_layout(h, err);
	if (r == 0 && h->mount_home)
		bl_home_private(h);	/* before HOME/.lock is opened through it */
	if (r == 0)
		r = take_session(h, err);
	if (r == 0)
		r = set_up_home(h, uid_map, n_uid_map, gid_map, n_gid_map, err);
	if (r == 0)
		bl_session_unlock_home(h);
	if (r == 0 && quotas_wanted)
		r = bl_quota_open(h, err);
	if (r == 0)
		bl_sweep(h);
	if (r < 0) {
		btrfslayer_error *cleanup = NULL;
		/* a failed open leaves no mount behind */
		if (shut(h, true, &cleanup) < 0)
			bl_log(BTRFSLAYER_LOG_ERR, "cleanup after failed open: %s",
			       btrfslayer_error_message(cleanup));
		btrfslayer_error_free(cleanup);
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
	return shut(h, false, err);
}

/* ---- layers ---------------------------------------------------------------- */

int bl_open_layer(btrfslayer *h, const char *id, const char *step,
		  btrfslayer_error **err)
{
	char path[PATH_MAX];
	bl_layer_path(h, id, path, sizeof(path));
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

int bl_check_handle_and_id(btrfslayer *h, const char *id, btrfslayer_error **err)
{
	bl_clear_error(err);
	if (!h)
		return bl_fail_msg(err, -EINVAL, "no handle (NULL)");
	return bl_id_check(id, "layer id", err);
}

/* Docker's --storage-opt; *size is 0 when no limit is asked for. */
static int parse_storage_options(btrfslayer *h, const char *const *opts, size_t n,
				 uint64_t *size, btrfslayer_error **err)
{
	struct bl_option *parsed = NULL;
	char quoted[BL_QUOTE_MAX];
	int r = bl_options_parse(opts, n, "storage option", &parsed, err);
	*size = 0;
	for (size_t i = 0; r == 0 && i < n; i++) {
		if (!strcmp(parsed[i].key, "size"))
			r = bl_quota_parse_size(h, parsed[i].value, size, err);
		else
			r = bl_fail_msg(err, -EINVAL, "unknown storage option %s (known: size)",
					bl_quote(quoted, sizeof(quoted), parsed[i].key));
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

/* Owner, mode, label, size limit and seal of the layer root, while it is
 * still hidden. */
static int finish_layer(btrfslayer *h, int fd, bool empty, const char *label,
			uint64_t size, bool seal, const char *path,
			btrfslayer_error **err)
{
	if (empty && (fchown(fd, h->root_uid, h->root_gid) < 0 ||
		      fchmod(fd, LAYER_ROOT_MODE) < 0))
		return bl_fail(err, -errno, "set owner and mode of layer root: %s", path);
	int r;
	if (label && (r = bl_label_apply(fd, label, path, err)) < 0)
		return r;
	r = size ? bl_quota_limit(fd, size, path, err)
		     : empty ? 0 : bl_quota_drop_inherited(fd, path, err);
	if (r < 0)
		return r;
	if (seal && (r = bl_ioctl_set_read_only(fd, true)) < 0)
		return bl_fail(err, r, "make read-only: %s", path);
	return 0;
}

/* Give the finished layer `tmp` its id, with its quota file in place first:
 * a layer is never seen without the limit it was created with.  A quota file
 * of an earlier layer of that id (left by a crash) must not outlive it.
 * Called with the id's lock. */
static int publish_layer(btrfslayer *h, const char *tmp, const char *id,
			 uint64_t size, const char *path, btrfslayer_error **err)
{
	struct stat st;
	if (fstatat(h->subvolumes_fd, id, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return bl_fail(err, -EEXIST, "create layer: %s", path);
	int r = bl_quota_file_set(h, id, size, err);
	if (r == 0 &&
	    renameat2(h->subvolumes_fd, tmp, h->subvolumes_fd, id, RENAME_NOREPLACE) == 0)
		return 0;
	if (r == 0)
		r = bl_fail(err, -errno, "create layer: %s", path);
	/* a write may fail after its rename (the directory's fsync) */
	if (size)
		bl_quota_file_remove(h, id, NULL);
	return r;
}

BTRFSLAYER_API int btrfslayer_create(btrfslayer *h, const char *id,
				     const char *parent, uint32_t flags,
				     const char *mount_label,
				     const char *const *storage_opts,
				     size_t n_storage_opts,
				     btrfslayer_error **err)
{
	char path[PATH_MAX], tmp_path[PATH_MAX], tmp[BL_RESERVED_NAME_MAX];
	int parent_fd = -1, fd = -1;
	bool made = false;

	/* every argument first: a bad one changes nothing */
	int r = bl_check_handle_and_id(h, id, err);
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
	uint64_t size;
	if ((r = parse_storage_options(h, storage_opts, n_storage_opts, &size, err)) < 0)
		return r;

	bl_layer_path(h, id, path, sizeof(path));
	struct stat st;
	if (fstatat(h->subvolumes_fd, id, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return bl_fail(err, -EEXIST, "create layer: %s", path);
	if (parent && (parent_fd = bl_open_layer(h, parent, "open parent layer", err)) < 0)
		return parent_fd;
	if (size && (r = bl_quota_ensure(h, err)) < 0)
		goto out;

	bool read_only = flags & BTRFSLAYER_CREATE_READ_ONLY;
	bool empty = parent_fd < 0;
	/* a snapshot nobody writes to is born read-only; others are sealed
	 * after their last write, still under the reserved name */
	bool born_read_only = read_only && !empty && !mount_label;
	for (int attempt = 0; attempt < BL_RESERVED_NAME_ATTEMPTS; attempt++) {
		bl_reserved_name(h, BL_TMP_PREFIX, tmp);
		bl_layer_path(h, tmp, tmp_path, sizeof(tmp_path));
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
	r = finish_layer(h, fd, empty, mount_label, size, read_only && !born_read_only,
			 tmp_path, err);
	if (r < 0)
		goto out;
	bl_id_lock(h, id);
	r = publish_layer(h, tmp, id, size, path, err);
	bl_id_unlock(h, id);
	if (r < 0)
		goto out;
	made = false;
out:
	if (made) {
		/* never leave a half-made layer behind; what cannot be deleted
		 * now goes at close or at the next open */
		if (fd < 0)
			fd = openat(h->subvolumes_fd, tmp, DIR_FLAGS);
		int c = fd >= 0 ? bl_tree_destroy(h, fd, tmp_path, NULL, NULL) : -errno;
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

/* Rename layer `id` (open as fd) and its quota file to `tomb`.  Called with
 * the id's lock. */
static int bury_layer(btrfslayer *h, const char *id, int fd, const char *tomb,
		      const char *path, bool *quota_buried, btrfslayer_error **err)
{
	if (renameat2(h->subvolumes_fd, id, h->subvolumes_fd, tomb, RENAME_NOREPLACE) < 0)
		return bl_fail(err, -errno, "remove layer: rename to %s: %s", tomb, path);
	if (!same_inode(h->subvolumes_fd, tomb, fd)) {
		/* swapped between our open and our rename: not ours to delete */
		if (renameat2(h->subvolumes_fd, tomb, h->subvolumes_fd, id, RENAME_NOREPLACE) < 0)
			bl_log(BTRFSLAYER_LOG_ERR, "remove layer: %s was replaced during removal "
			       "and is left as %s", path, tomb);
		return bl_fail_msg(err, -EAGAIN, "remove layer: %s: replaced during removal", path);
	}
	int r = bl_quota_file_rename(h, id, tomb);
	*quota_buried = r == 0;
	if (r == 0 || r == -ENOENT)
		return 0;
	/* a quota file left under the id would outlive its layer */
	if (renameat2(h->subvolumes_fd, tomb, h->subvolumes_fd, id, RENAME_NOREPLACE) < 0)
		bl_log(BTRFSLAYER_LOG_ERR, "remove layer: %s is left as %s", path, tomb);
	return bl_fail(err, r, "remove layer: %s: rename quota file", path);
}

/* A removal that failed before it changed the layer: give the id back, so
 * that the caller may retry.  The quota file goes back first: a layer must
 * never be seen without it.  Whatever cannot go back stays buried, and is
 * deleted at close or at the next open. */
static void unbury_layer(btrfslayer *h, const char *id, const char *tomb,
			 bool quota_buried, const char *path)
{
	bl_id_lock(h, id);
	if (quota_buried && bl_quota_file_rename(h, tomb, id) < 0) {
		bl_log(BTRFSLAYER_LOG_ERR, "remove layer: %s stays buried as %s: its quota file "
		       "could not be put back", path, tomb);
	} else if (renameat2(h->subvolumes_fd, tomb, h->subvolumes_fd, id,
			     RENAME_NOREPLACE) < 0) {
		bl_log(BTRFSLAYER_LOG_ERR, "remove layer: failed removal of %s is left as %s",
		       path, tomb);
		if (quota_buried && bl_quota_file_rename(h, id, tomb) < 0)
			bl_log(BTRFSLAYER_LOG_ERR, "remove layer: the quota file of %s is left "
			       "under its id", path);
	}
	bl_id_unlock(h, id);
}

BTRFSLAYER_API int btrfslayer_remove(btrfslayer *h, const char *id,
				     btrfslayer_error **err)
{
	char path[PATH_MAX], tomb[BL_RESERVED_NAME_MAX];
	bool quota_buried = false;
	int r = bl_check_handle_and_id(h, id, err);
	if (r < 0)
		return r;
	bl_id_lock(h, id);
	int fd = bl_open_layer(h, id, "remove layer", err);
	if (fd < 0) {
		bl_id_unlock(h, id);
		return fd;
	}
	/* from here on the id is gone, whatever happens to the deletion */
	bl_layer_path(h, id, path, sizeof(path));
	bl_reserved_name(h, BL_TOMB_PREFIX, tomb);
	r = bury_layer(h, id, fd, tomb, path, &quota_buried, err);
	bl_id_unlock(h, id);
	if (r < 0)
		goto out;

	bool spoiled;
	r = bl_tree_destroy(h, fd, path, &spoiled, err);
	if (r < 0 && !spoiled) {
		unbury_layer(h, id, tomb, quota_buried, path);
		goto out;
	}
	if (r < 0) {
		/* part of it is gone: it can only go on being removed */
		bl_log(BTRFSLAYER_LOG_ERR, "remove layer: %s was partly deleted; the rest, "
		       "buried as %s, is deleted at close or at the next open", path, tomb);
		goto out;
	}
	if (quota_buried && bl_quota_file_remove(h, tomb, NULL) < 0)
		bl_log(BTRFSLAYER_LOG_WARNING, "remove layer %s: the quota file is left as %s",
		       path, tomb);
	bl_quota_retry_pending(h, QGROUP_RETRIES_PER_REMOVE);
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
	int r = bl_check_handle_and_id(h, id, err);
	if (r < 0)
		return r;
	if (!path)
		return bl_fail_msg(err, -EINVAL, "get layer %s: no place for the path (NULL)", id);
	char layer[PATH_MAX], *p = NULL;
	bl_id_lock(h, id);
	int fd = bl_open_layer(h, id, "get layer", err);
	if (fd < 0) {
		bl_id_unlock(h, id);
		return fd;
	}
	bl_layer_path(h, id, layer, sizeof(layer));
	r = bl_quota_reapply(h, id, fd, layer, err);
	if (r == 0 && asprintf(&p, "%s/" SUBVOLUMES "/%s", h->home, id) < 0) {
		p = NULL;
		r = bl_fail(err, -ENOMEM, "get layer: %s", layer);
	}
	/* the one path handed out must lead to the layer, not to whatever
	 * now sits where home or subvolumes/ used to be; under the id's lock,
	 * where no remove can bury the layer meanwhile */
	if (r == 0 && (r = bl_path_leads_to(p, fd)) < 0)
		bl_fail_msg(err, r, "get layer: %s: the path no longer leads to the layer "
			    "(home or subvolumes/ moved or replaced since open)", p);
	bl_id_unlock(h, id);
	close(fd);
	if (r < 0) {
		free(p);
		return r;
	}
	*path = p;
	return 0;
}

BTRFSLAYER_API int btrfslayer_put(btrfslayer *h, const char *id,
				  btrfslayer_error **err)
{
	return bl_check_handle_and_id(h, id, err);
}

BTRFSLAYER_API int btrfslayer_exists(btrfslayer *h, const char *id,
				     btrfslayer_error **err)
{
	int r = bl_check_handle_and_id(h, id, err);
	if (r < 0)
		return r;
	r = bl_lookup_layer(h->subvolumes_fd, id);
	if (r >= 0)
		return r;
	if (r == -ENOENT)
		return 0;
	char path[PATH_MAX];
	bl_layer_path(h, id, path, sizeof(path));
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
		bl_layer_path(h, d->d_name, path, sizeof(path));
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
