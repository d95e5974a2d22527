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
#include <sys/sysmacros.h>
#include <unistd.h>

#include "internal.h"

#define SUBVOLUMES BL_SUBVOLUMES
#define DIR_FLAGS BL_DIR_FLAGS
/* Home and subvolumes/, as moby after CVE-2021-21284: owned by the caller,
 * traversable by the remapped root's group, readable by nobody else.
 * quotas/ is the library's alone. */
#define HOME_MODE 0710
#define QUOTAS_MODE 0700
/* Pending qgroups a remove retries (at most once a second, quota.c); close
 * retries them all. */
#define QGROUP_RETRIES_PER_REMOVE 8

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
		} else if (!strcmp(key, "btrfs.read_only")) {
			r = bl_parse_bool(value, &h->read_only);
			if (r < 0)
				bl_fail_msg(err, r, "invalid option btrfs.read_only=%s: "
					    "expected true or false",
					    bl_quote(quoted, sizeof(quoted), value));
		} else if (!strcmp(key, "btrfs.mount_home")) {
			r = bl_parse_bool(value, &h->mount_home);
			if (r < 0)
				bl_fail_msg(err, r, "invalid option btrfs.mount_home=%s: "
					    "expected true or false",
					    bl_quote(quoted, sizeof(quoted), value));
		} else {
			r = bl_fail_msg(err, -EINVAL, "unknown option %s (known: btrfs.min_space, "
					"btrfs.quota_mode, btrfs.mount_home, btrfs.read_only)",
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

/* Finish what bl_open_dir_checked() found at `name`: when it was missing
 * (-ENOENT), make it (*made says so) and open it; then give it the layout's
 * owner and mode if it was made or lay_out says so. */
static int make_dir_if_missing(int fd, int dirfd, const char *name, mode_t mode, uid_t uid,
			       gid_t gid, bool lay_out, bool *made, const char *path,
			       btrfslayer_error **err)
{
	*made = false;
	if (fd == -ENOENT) {
		*made = mkdirat(dirfd, name, mode) == 0;
		if (!*made && errno != EEXIST)
			return bl_fail(err, -errno, "create directory: %s", path);
		fd = bl_open_dir_checked(dirfd, name, path, err);
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
	if (!exists && h->read_only) {
		r = bl_fail_msg(err, -ENOENT, "open home read-only: %s: missing (a read-only "
				"handle makes nothing)", home);
	} else if (!exists) {
		/* a failed open leaves it empty: it takes back what it made in it */
		h->home_made = mkdirat(parent_fd, base, HOME_MODE) == 0;
		if (!h->home_made && errno != EEXIST) {
			r = bl_fail(err, -errno, "create directory: %s", home);
		} else {
			/* as a home found: another open may have made it meanwhile,
			 * and bind-mounted it already */
			int fd = openat(parent_fd, base, DIR_FLAGS);
			r = fd < 0 ? -errno : bl_check_btrfs(fd);
			if (fd >= 0)
				h->home_fd = fd;
			if (r < 0)
				bl_fail(err, r, "open new directory: %s", home);
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
		found[i] = r < 0 ? -ENOENT
				 : bl_open_dir_checked(h->home_fd, names[i], paths[i], err);
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
		int fd = bl_open_dir_checked(h->home_fd, names[i], path, err);
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
	if (r == 0)
		r = bl_staging_open(h, err);
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
	/* what a failed call of ours left; nothing to look for otherwise */
	if (!failed && h->lock_fd >= 0 && h->staging_fd >= 0 && h->quota_staging_fd >= 0 &&
	    __atomic_load_n(&h->leftovers, __ATOMIC_RELAXED))
		bl_sweep_own(h);
	if (!failed && h->home_fd >= 0)
		bl_quota_retry_pending(h, SIZE_MAX);
	/* every fd on home's mount goes before the unmount (a failed open's
	 * undo, below, still needs those it made things in) */
	bl_template_close(h);
	if (!failed) {
		bl_staging_close(h);
		if (h->quotas_fd >= 0)
			close(h->quotas_fd);
		h->quotas_fd = -1;
	}
	if (h->lock_fd >= 0) {
		bl_session_lock_home(h);
		if (bl_session_alone(h)) {
			if (failed && h->home_fd >= 0) {
				bl_staging_undo(h, h->staging_made);
				undo_layout(h);
			}
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
	bl_staging_close(h);
	if (h->quotas_fd >= 0)
		close(h->quotas_fd);
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
	pthread_mutex_destroy(&h->marker_lock);
	pthread_mutex_destroy(&h->template_lock);
	bl_record_cache_destroy(&h->records);
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
	h->staging_fd = h->quota_staging_fd = -1;
	h->mount_home = true;
	for (size_t i = 0; i < BL_ID_LOCKS; i++)
		pthread_mutex_init(&h->id_locks[i], NULL);
	pthread_mutex_init(&h->quota_lock, NULL);
	pthread_mutex_init(&h->marker_lock, NULL);
	bl_record_cache_init(&h->records);
	bl_template_init(h);

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
	if (r == 0 && h->read_only) {
		/* no mount, no slot, nothing made, no sweep (readonly.c) */
		h->mount_home = false;
		r = bl_read_only_layout(h, uid_map, n_uid_map, gid_map, n_gid_map, err);
	} else if (r == 0) {
		if (h->mount_home)
			bl_home_private(h);	/* before HOME/.lock is opened through it */
		r = take_session(h, err);
		if (r == 0)
			r = set_up_home(h, uid_map, n_uid_map, gid_map, n_gid_map, err);
		if (r == 0)
			bl_session_unlock_home(h);
		if (r == 0 && (quotas_wanted || h->quota_mode != BL_QUOTA_OFF))
			r = bl_quota_open(h, quotas_wanted, err);
		if (r == 0)
			bl_sweep(h);
	}
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

/* The mount id of h->subvolumes_fd, read once: -EOPNOTSUPP when the
 * kernel cannot tell. */
static int subvolumes_mount(btrfslayer *h, uint64_t *id)
{
	*id = __atomic_load_n(&h->subvolumes_mount, __ATOMIC_RELAXED);
	if (*id)
		return 0;
	int r = bl_mount_id(h->subvolumes_fd, "", id);
	if (r == 0)
		__atomic_store_n(&h->subvolumes_mount, *id, __ATOMIC_RELAXED);
	return r;
}

/* bl_lookup_layer() of `name` in dirfd (a directory on subvolumes/' mount)
 * in one statx; -EOPNOTSUPP when that cannot tell. */
static int lookup_layer_statx(btrfslayer *h, int dirfd, const char *name, struct statx *stx)
{
	uint64_t mount;
	int r = subvolumes_mount(h, &mount);
	return r < 0 ? r : bl_lookup_layer_on(dirfd, mount, name, stx);
}

/* 1 if `name` is a layer, 0 if not (bl_lookup_layer(), and a layer mounted
 * on itself counts). */
static int lookup_layer(btrfslayer *h, int dirfd, const char *name)
{
	struct statx stx;
	int r = lookup_layer_statx(h, dirfd, name, &stx);
	if (r == -EOPNOTSUPP)
		r = bl_lookup_layer(dirfd, name);
	if (r != 0)
		return r;
	int fd = bl_open_self_mounted_layer(h, name);
	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}

/* Whether the layer fd holds is on a mount of its own (mounted on itself). */
static bool layer_is_mounted(btrfslayer *h, int fd)
{
	uint64_t here, there;
	return bl_mount_id(h->subvolumes_fd, "", &here) == 0 && bl_mount_id(fd, "", &there) == 0 &&
	       here != there;
}

/* mode=OCTAL: 1 to 5 octal digits ("00755" too), at most 07777 (permission bits, with
 * set-id and sticky); -EINVAL otherwise. */
static int parse_mode(const char *value, mode_t *mode, btrfslayer_error **err)
{
	size_t len = strspn(value, "01234567");
	if (len == 0 || len > 5 || value[len] || strtoul(value, NULL, 8) > 07777) {
		char quoted[BL_QUOTE_MAX];
		return bl_fail_msg(err, -EINVAL, "invalid storage option mode=%s: expected an "
				   "octal mode such as 0755 or 0555",
				   bl_quote(quoted, sizeof(quoted), value));
	}
	*mode = (mode_t)strtoul(value, NULL, 8);
	return 0;
}

/* Docker's --storage-opt; *size is 0 when no limit is asked for, *mode
 * (mode_t)-1 when no mode is. */
static int parse_storage_options(btrfslayer *h, const char *const *opts, size_t n,
				 uint64_t *size, mode_t *mode, btrfslayer_error **err)
{
	struct bl_option *parsed = NULL;
	char quoted[BL_QUOTE_MAX];
	int r = bl_options_parse(opts, n, "storage option", &parsed, err);
	*size = 0;
	*mode = (mode_t)-1;
	for (size_t i = 0; r == 0 && i < n; i++) {
		if (!strcmp(parsed[i].key, "size"))
			r = bl_quota_parse_size(h, parsed[i].value, size, err);
		else if (!strcmp(parsed[i].key, "mode"))
			r = parse_mode(parsed[i].value, mode, err);
		else
			r = bl_fail_msg(err, -EINVAL, "unknown storage option %s (known: size, mode)",
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

/* 1 if the directory fd holds has no entries, 0 if it has, or -errno. */
static int dir_is_empty(int fd)
{
	int dup_fd = openat(fd, ".", BL_DIR_FLAGS);
	DIR *dir = dup_fd < 0 ? NULL : fdopendir(dup_fd);
	struct dirent *d;
	if (!dir) {
		int r = -errno;
		if (dup_fd >= 0)
			close(dup_fd);
		return r;
	}
	int empty = 1;
	while (empty && (errno = 0, d = readdir(dir)))
		empty = !strcmp(d->d_name, ".") || !strcmp(d->d_name, "..");
	if (empty && errno)
		empty = -errno;
	closedir(dir);
	return empty;
}

/* The subvolume just made at `tmp`, opened without following a symlink or
 * crossing a mount point, and checked to be what was made: born in
 * transaction `born_after` or later, a snapshot of the parent, or an empty
 * subvolume that is nobody's snapshot.  Every later step works on this fd,
 * never on the name again: whatever is mounted (-EBUSY) or renamed
 * (-EAGAIN) onto the name meanwhile is never worked on, nor deleted. */
static int open_new_layer(btrfslayer *h, const char *tmp, int parent_fd, uint64_t born_after,
			  const char *path, btrfslayer_error **err)
{
	static const uint8_t no_uuid[16];
	struct bl_subvolume_info info, parent;
	int fd = bl_open_dir_beneath(h->subvolumes_fd, tmp);
	if (fd == -EXDEV)
		return bl_fail_msg(err, -EBUSY, "open new layer: %s: something was mounted on it "
				   "while it was being made", path);
	if (fd < 0)
		return bl_fail(err, fd, "open new layer: %s", path);
	int r = bl_ioctl_subvolume_info(fd, &info);
	if (r == 0 && parent_fd >= 0)
		r = bl_ioctl_subvolume_info(parent_fd, &parent);
	int empty = r == 0 && parent_fd < 0 ? dir_is_empty(fd) : 1;
	if (r == 0 && empty < 0)
		r = empty;
	if (r < 0) {
		close(fd);
		return bl_fail(err, r, "open new layer: %s", path);
	}
	if (info.created < born_after ||
	    memcmp(info.parent_uuid, parent_fd >= 0 ? parent.uuid : no_uuid, 16) || !empty) {
		close(fd);
		return bl_fail_msg(err, -EAGAIN, "open new layer: %s: not the subvolume just made "
				   "(replaced while being made)", path);
	}
	return fd;
}

/* Owner, mode, label, size limit and seal of the layer root, while it is
 * still hidden.  mode: (mode_t)-1 for the default (BL_LAYER_ROOT_MODE for an
 * empty layer, the parent's for a snapshot). */
static int finish_layer(btrfslayer *h, int fd, bool empty, const char *label,
			uint64_t size, mode_t mode, bool seal, const char *path,
			btrfslayer_error **err)
{
	if (empty && mode == (mode_t)-1)
		mode = BL_LAYER_ROOT_MODE;
	if (empty && fchown(fd, h->root_uid, h->root_gid) < 0)
		return bl_fail(err, -errno, "set owner of layer root: %s", path);
	/* after the chown, which clears set-id bits */
	if (mode != (mode_t)-1 && fchmod(fd, mode) < 0)
		return bl_fail(err, -errno, "set mode of layer root: %s", path);
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

/* Whether `name` in dirfd is the file fd holds. */
static bool same_inode(int dirfd, const char *name, int fd)
{
	struct stat a, b;
	return fstatat(dirfd, name, &a, AT_SYMLINK_NOFOLLOW) == 0 && fstat(fd, &b) == 0 &&
	       a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* Take a layer this call published (open as fd) back to its reserved
 * name, for the caller to delete by fd (which deletes it under its id if
 * the rename fails).  Called with the id's lock. */
static void unpublish_layer(btrfslayer *h, const char *tmp, const char *id, int fd)
{
	if (same_inode(h->subvolumes_fd, id, fd))
		renameat2(h->subvolumes_fd, id, h->subvolumes_fd, tmp, RENAME_NOREPLACE);
}

/* The record a layer taken back got from this call: buried as an intent in
 * *record, for the caller to drop once the layer is gone (a crash in
 * between is finished by the next open), else removed.  Called with the
 * id's lock, so the record at id can only be this call's. */
static void unpublish_record(btrfslayer *h, const char *id, int fd, struct bl_intent *record,
			     const char *path)
{
	uint64_t subvolume;
	if ((bl_ioctl_subvolume_id(fd, &subvolume) < 0 ||
	     bl_intent_stash_record(h, id, subvolume, record, path, NULL) < 0 ||
	     record->fd < 0) && bl_quota_file_remove(h, id, NULL) < 0)
		bl_log(BTRFSLAYER_LOG_ERR, "create layer: %s: its quota file is left", path);
}

/* Give the finished layer `tmp` (open as fd) its id, and its record: an
 * intent holds the record until the layer has its id, then becomes it (a
 * crash in between is finished by the next open).  Called with the id's
 * lock. */
static int publish_layer(btrfslayer *h, const char *tmp, const char *id, int fd,
			 uint64_t size, const char *path, btrfslayer_error **err)
{
	struct bl_intent intent = { .fd = -1 };
	uint64_t subvolume;
	struct stat st;
	int r;

	if (fstatat(h->subvolumes_fd, id, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return bl_fail(err, -EEXIST, "create layer: %s", path);
	if (!size) {
		/* the record of an earlier layer of this id, which a remove
		 * that died on a full filesystem can leave, is not this one's */
		r = bl_quota_file_remove(h, id, err);
	} else if ((r = bl_ioctl_subvolume_id(fd, &subvolume)) < 0) {
		bl_fail(err, r, "create layer: %s", path);
	} else {
		r = bl_intent_begin(h, BL_INTENT_SET, id, subvolume, size, &intent, path, err);
	}
	if (r < 0)
		return r;
	if (renameat2(h->subvolumes_fd, tmp, h->subvolumes_fd, id, RENAME_NOREPLACE) < 0) {
		r = bl_fail(err, -errno, "create layer: %s", path);
	} else if (!same_inode(h->subvolumes_fd, id, fd)) {
		/* something else was put under the reserved name: it goes back
		 * there, and ours is deleted by its fd */
		r = bl_fail_msg(err, -EAGAIN, "create layer: %s: the new layer was replaced "
				"while being made", path);
		if (renameat2(h->subvolumes_fd, id, h->subvolumes_fd, tmp, RENAME_NOREPLACE) < 0)
			bl_log(BTRFSLAYER_LOG_ERR, "create layer: %s: could not take back what was "
			       "put in place of the new layer: %s", path, strerror(errno));
	} else if (size && (r = bl_intent_finish(h, id, &intent, path, err)) < 0) {
		unpublish_layer(h, tmp, id, fd);
	}
	if (r < 0)
		bl_intent_abort(h, &intent, id);
	return r;
}

/* A snapshot that needs no step after the ioctl (no label, mode or limit
 * of its own, none to drop from the parent) is made under its id at once:
 * the kernel makes it whole in one transaction and commits that before the
 * ioctl returns, so it is durable as it appears, and a crash leaves it whole
 * or absent.  No reserved name, no rename, no second commit.  Called with
 * the id's lock, which every call that makes or removes layer `id` holds,
 * so nothing the library does can put anything else at the id meanwhile. */
static int snapshot_at_id(btrfslayer *h, const char *id, int parent_fd, bool from_template,
			  bool read_only, uint64_t born_after, const char *path,
			  btrfslayer_error **err)
{
	struct stat st;
	if (fstatat(h->subvolumes_fd, id, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return bl_fail(err, -EEXIST, "create layer: %s", path);
	/* the record of an earlier layer of this id is not this one's
	 * (publish_layer()); its removal is in the snapshot's commit */
	int r = bl_quota_file_remove(h, id, err);
	if (r < 0)
		return r;
	/* the parent as it is now: it may be removed once the snapshot is
	 * taken, which does not make the snapshot any less whole */
	struct bl_subvolume_info parent, made;
	r = bl_ioctl_subvolume_info(parent_fd, &parent);
	if (from_template && r == -ENOENT)
		return 1;	/* deleted since it was opened */
	if (r < 0)
		return bl_fail(err, r, "create layer: %s: read the parent layer", path);
	r = bl_ioctl_snapshot(parent_fd, h->subvolumes_fd, id, read_only);
	/* nothing made: a template deleted since it was opened, or a caller
	 * who may create subvolumes but not snapshot this one */
	if (from_template && (r == -ENOENT || r == -EPERM || r == -EACCES))
		return 1;
	if (r < 0)
		return bl_fail(err, r, from_template ? "create layer: %s" : "create snapshot: %s",
			       path);
	/* The layer is made, whole and on disk.  What follows checks it: a
	 * subvolume found to be another one (put there by someone else since)
	 * is left alone, -EAGAIN; a check that cannot be made (it fails) does
	 * not undo a layer that is there, and is logged. */
	btrfslayer_error *check_err = NULL;
	int fd = bl_open_dir_beneath(h->subvolumes_fd, id);
	int checked = fd < 0 ? fd : bl_ioctl_subvolume_info(fd, &made);
	if (checked == 0 && (made.created < born_after || memcmp(made.parent_uuid, parent.uuid, 16))) {
		close(fd);
		return bl_fail_msg(err, -EAGAIN, "create layer: %s: not the snapshot just made "
				   "(replaced while being made)", path);
	}
	/* the template is read-only, but root may make it writable: one
	 * found changed after the snapshot may have been so during it, and
	 * what was made of it goes (the layer itself is anybody's to write
	 * to from the moment it has its id: it is not looked at) */
	int fits = checked == 0 && from_template ? bl_template_fits(h, parent_fd) : 1;
	if (fits == 0)
		r = bl_fail_msg(err, -EAGAIN, "create layer: %s: the empty template %s/"
				BL_SUBVOLUMES "/" BL_TEMPLATE_PREFIX "... was changed while in "
				"use", path, h->home);
	if (fits < 0)
		checked = fits;
	if (checked < 0)
		bl_fail(&check_err, checked, "open new layer: %s", path);
	/* a limit given to the parent since it was read came with it */
	int limited = checked < 0 || r < 0 ? checked : bl_quota_has_limit(fd, path, &check_err);
	if (limited == 1 && (r = bl_quota_limit(fd, 0, path, err)) == 0)
		r = bl_commit(h, "create layer", path, err);
	if (limited < 0)
		bl_log(BTRFSLAYER_LOG_WARNING, "create layer: %s: made; checking it failed: %s",
		       path, btrfslayer_error_message(check_err));
	btrfslayer_error_free(check_err);
	if (r < 0) {
		/* a failed call makes nothing: what was made goes, for good */
		int c = bl_tree_destroy(h, fd, path, NULL, NULL);
		if (c == 0)
			c = bl_ioctl_commit(h->home_fd);
		if (c < 0)
			bl_log(BTRFSLAYER_LOG_ERR, "cleanup after failed create: delete %s: %s",
			       path, btrfslayer_strerror(c));
	}
	if (fd >= 0)
		close(fd);
	return r;
}

/* An empty layer with nothing of its own (no label, mode or limit) is a
 * snapshot of the home's empty template (template.c), made under its id as
 * a plain snapshot is.  1 when the template cannot serve: nothing was made,
 * and the caller makes the layer the long way. */
static int empty_at_id(btrfslayer *h, const char *id, bool read_only, uint64_t born_after,
		       const char *path, btrfslayer_error **err)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		int template_fd = bl_template_get(h);
		if (template_fd < 0)
			return 1;
		/* a limit on the template would be copied to the layer */
		int limited = bl_quota_has_limit(template_fd, path, NULL);
		int r = 1;
		if (limited == 0) {
			bl_id_lock(h, id);
			r = snapshot_at_id(h, id, template_fd, true, read_only, born_after, path,
					   err);
			bl_id_unlock(h, id);
		}
		close(template_fd);
		/* a limit on it (someone else's): the long way */
		if (r != 1 || limited == 1)
			return r;
		/* deleted since it was opened: looked up (or made) again, once */
		bl_template_forget(h);
	}
	return 1;
}

BTRFSLAYER_API int btrfslayer_create(btrfslayer *h, const char *id,
				     const char *parent, uint32_t flags,
				     const char *mount_label,
				     const char *const *storage_opts,
				     size_t n_storage_opts,
				     btrfslayer_error **err)
{
	char path[PATH_MAX], tmp_path[PATH_MAX], tmp[BL_RESERVED_NAME_MAX];
	struct bl_intent record = { .fd = -1 };
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
	mode_t mode;
	if ((r = parse_storage_options(h, storage_opts, n_storage_opts, &size, &mode, err)) < 0)
		return r;
	if ((r = bl_check_writable(h, "create layer", err)) < 0)
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
	bool born_read_only = read_only && !empty && !mount_label && mode == (mode_t)-1;
	uint64_t born_after = 0;	/* before Linux 5.14: the other checks only */
	r = bl_ioctl_generation(h->subvolumes_fd, &born_after);
	if (r < 0 && r != -EOPNOTSUPP) {
		bl_fail(err, r, "create layer: %s: read the filesystem's generation", path);
		goto out;
	}
	if (!empty && !mount_label && mode == (mode_t)-1 && !size) {
		char parent_path[PATH_MAX];
		bl_layer_path(h, parent, parent_path, sizeof(parent_path));
		r = bl_quota_has_limit(parent_fd, parent_path, err);
		if (r < 0)
			goto out;
		if (r == 0) {
			bl_id_lock(h, id);
			r = snapshot_at_id(h, id, parent_fd, false, read_only, born_after, path,
					   err);
			bl_id_unlock(h, id);
			goto out;
		}
	}
	if (empty && !mount_label && mode == (mode_t)-1 && !size) {
		r = empty_at_id(h, id, read_only, born_after, path, err);
		if (r <= 0)
			goto out;
	}
	r = -EEXIST;
	for (int attempt = 0; r == -EEXIST && attempt < BL_RESERVED_NAME_ATTEMPTS; attempt++) {
		bl_reserved_name(h, BL_TMP_PREFIX, tmp);
		bl_layer_path(h, tmp, tmp_path, sizeof(tmp_path));
		/* its stand-in first: the sweep finds a name by its stand-in */
		r = bl_staging_announce(h, tmp);
		if (r == -EEXIST)
			continue;
		if (r < 0) {
			bl_fail(err, r, "create layer: %s: reserve a name in " BL_SUBVOLUMES "/"
				BL_STAGING, path);
			goto out;
		}
		btrfslayer_error *attempt_err = NULL;
		r = make_subvolume(h, tmp, parent_fd, born_read_only, tmp_path, &attempt_err);
		if (r < 0)
			bl_staging_retire(h, tmp);
		if (r != -EEXIST && err)
			*err = attempt_err;
		else
			btrfslayer_error_free(attempt_err);
	}
	if (r == -EEXIST) {
		/* a name of our own slot and 64 random bits taken 8 times over:
		 * something is squatting on subvolumes/ */
		r = bl_fail_msg(err, -EAGAIN, "create layer: %s: no free reserved name after %d "
				"attempts", path, BL_RESERVED_NAME_ATTEMPTS);
		goto out;
	}
	if (r < 0)
		goto out;
	made = true;

	fd = open_new_layer(h, tmp, parent_fd, born_after, tmp_path, err);
	if (fd == -EAGAIN) {
		/* what sits at the reserved name now is not what this call
		 * made: it is left alone (and so, unfound, is what was made);
		 * under a mount (-EBUSY), what was made is deleted once the
		 * mount is gone */
		bl_staging_retire(h, tmp);
		made = false;
	}
	if (fd < 0) {
		r = fd;
		goto out;
	}
	r = finish_layer(h, fd, empty, mount_label, size, mode, read_only && !born_read_only,
			 tmp_path, err);
	if (r < 0)
		goto out;
	bl_id_lock(h, id);
	r = publish_layer(h, tmp, id, fd, size, path, err);
	bl_id_unlock(h, id);
	if (r < 0)
		goto out;
	/* the snapshot ioctl commits, but the rename to the id does not */
	r = bl_commit(h, "create layer", path, err);
	if (r < 0) {
		/* not known to survive a power cut: not made at all */
		bl_id_lock(h, id);
		unpublish_layer(h, tmp, id, fd);
		if (size)
			unpublish_record(h, id, fd, &record, path);
		bl_id_unlock(h, id);
		goto out;
	}
	made = false;
	bl_staging_retire(h, tmp);
out:
	if (made) {
		/* never leave a half-made layer behind: deleted by its fd (a
		 * second try to open it without crossing a mount, if need be);
		 * what cannot be deleted now goes at close or the next open */
		if (fd < 0)
			fd = bl_open_dir_beneath(h->subvolumes_fd, tmp);
		int c = fd >= 0 ? bl_tree_destroy(h, fd, tmp_path, NULL, NULL) : fd;
		if (c < 0) {
			bl_log(BTRFSLAYER_LOG_ERR, "cleanup after failed create: delete %s: %s",
			       tmp_path, btrfslayer_strerror(c));
			bl_note_leftover(h);
		} else {
			bl_staging_retire(h, tmp);
		}
		/* the record of a layer taken back goes with it, now or, from
		 * its intent, when the sweep has deleted the layer */
		if (c == 0 && record.fd >= 0)
			bl_intent_finish(h, id, &record, path, NULL);
		else if (record.fd >= 0)
			close(record.fd);
	}
	if (fd >= 0)
		close(fd);
	if (parent_fd >= 0)
		close(parent_fd);
	return r;
}

/* Rename layer `id` (open as fd) to `tomb`; *buried says whether what was
 * at the id is at `tomb` now (also when it was found swapped and could not
 * be given its name back).  Called with the id's lock. */
static int bury_layer(btrfslayer *h, const char *id, int fd, const char *tomb,
		      bool *buried, const char *path, btrfslayer_error **err)
{
	*buried = false;
	if (renameat2(h->subvolumes_fd, id, h->subvolumes_fd, tomb, RENAME_NOREPLACE) < 0)
		return bl_fail(err, -errno, "remove layer: rename to %s: %s", tomb, path);
	*buried = true;
	if (same_inode(h->subvolumes_fd, tomb, fd))
		return 0;
	/* swapped between our open and our rename: not ours to delete */
	if (renameat2(h->subvolumes_fd, tomb, h->subvolumes_fd, id, RENAME_NOREPLACE) == 0)
		*buried = false;
	else
		bl_log(BTRFSLAYER_LOG_ERR, "remove layer: %s was replaced during removal and is "
		       "left as %s", path, tomb);
	return bl_fail_msg(err, -EAGAIN, "remove layer: %s: replaced during removal", path);
}

/* A removal that failed before it changed the layer: give the id back, so
 * that the caller may retry.  What cannot go back stays buried, and is
 * deleted at close or at the next open.  Called with the id's lock. */
static bool unbury_layer(btrfslayer *h, const char *id, const char *tomb, const char *path)
{
	if (renameat2(h->subvolumes_fd, tomb, h->subvolumes_fd, id, RENAME_NOREPLACE) == 0) {
		bl_staging_retire(h, tomb);
		return true;
	}
	bl_log(BTRFSLAYER_LOG_ERR, "remove layer: failed removal of %s is left as %s", path, tomb);
	bl_note_leftover(h);
	return false;
}

/* A deletion that stopped after changing the layer for good: say so in the
 * error, which so far names only the step that failed. */
static void say_half_way(btrfslayer_error **err, int r, const char *path, const char *tomb)
{
	char *step = err && *err ? strdup(btrfslayer_error_message(*err)) : NULL;
	if (err && *err) {
		btrfslayer_error_free(*err);
		*err = NULL;
	}
	if (tomb)
		bl_fail_msg(err, r, "remove layer: %s: the layer is gone, but deleting what it "
			    "held stopped half-way (%s); the rest, buried as %s, is deleted at "
			    "close or at the next open", path, step ? step : btrfslayer_strerror(r),
			    tomb);
	else
		bl_fail_msg(err, r, "remove layer: %s: deleting it stopped half-way (%s): part "
			    "of what it held is gone; remove it again", path,
			    step ? step : btrfslayer_strerror(r));
	free(step);
}

/* A layer with nested subvolumes takes several deletions: it is buried
 * first (*buried), so that its id is gone at once.  One without them goes
 * in one deletion, which needs no tombstone and no free space (a rename
 * does): so does one on a full filesystem, in as many deletions as it
 * takes (0 then, with *buried false).  Called with the id's lock. */
static int bury_nested(btrfslayer *h, const char *id, int fd, const char *tomb, bool *buried,
		       const char *path, btrfslayer_error **err)
{
	btrfslayer_error *bury_err = NULL;
	*buried = false;
	int r = bl_staging_announce(h, tomb);
	if (r == 0)
		r = bury_layer(h, id, fd, tomb, buried, path, &bury_err);
	else
		bl_fail(&bury_err, r, "remove layer: %s: reserve %s", path, tomb);
	if (r < 0 && !*buried)
		bl_staging_retire(h, tomb);
	if (r == -ENOSPC || r == -EDQUOT)
		r = 0;
	if (r < 0 && err)
		*err = bury_err, bury_err = NULL;
	btrfslayer_error_free(bury_err);
	return r;
}

/* A removal failed with r: what nothing changed goes back (the record
 * first, then the layer: a layer must not be seen without it); what part
 * of it is gone, or cannot go back, stays buried with its record's intent,
 * for close or the next open to finish.  Called with the id's lock. */
static void after_failed_removal(btrfslayer *h, const char *id, int fd, const char *tomb,
				 bool buried, bool spoiled, struct bl_intent *intent, int r,
				 const char *path, btrfslayer_error **err)
{
	if (spoiled)
		say_half_way(err, r, path, buried ? tomb : NULL);
	if (buried && !spoiled) {
		if (bl_intent_abort(h, intent, id) && !unbury_layer(h, id, tomb, path) &&
		    bl_quota_file_remove(h, id, NULL) < 0)
			bl_log(BTRFSLAYER_LOG_ERR, "remove layer %s: its quota file is left", path);
		buried = intent->fd >= 0 || !same_inode(h->subvolumes_fd, id, fd);
	}
	if (buried) {
		bl_note_leftover(h);
		if (intent->fd >= 0)
			close(intent->fd);
		intent->fd = -1;
	}
	if (!bl_intent_abort(h, intent, id)) {
		close(intent->fd);	/* the next open puts it back */
		intent->fd = -1;
		bl_note_leftover(h);
	}
}

/* The whole removal runs under the id's lock: a layer made again under
 * the id cannot meet this one's record. */
BTRFSLAYER_API int btrfslayer_remove(btrfslayer *h, const char *id,
				     btrfslayer_error **err)
{
	char path[PATH_MAX], tomb[BL_RESERVED_NAME_MAX];
	struct bl_subvolume *nested = NULL;
	struct bl_intent intent = { .fd = -1 };
	size_t n_nested = 0;
	bool spoiled = false;
	int r = bl_check_handle_and_id(h, id, err);
	if (r < 0)
		return r;
	if ((r = bl_check_writable(h, "remove layer", err)) < 0)
		return r;
	bl_id_lock(h, id);
	int fd = bl_open_layer(h, id, "remove layer", err);
	if (fd < 0) {
		bl_id_unlock(h, id);
		return fd;
	}
	bl_layer_path(h, id, path, sizeof(path));
	if (layer_is_mounted(h, fd)) {
		r = bl_fail_msg(err, -EBUSY, "remove layer: %s: the layer is a mount point (mounted "
				"on itself); unmount it first", path);
		goto out;
	}
	bl_reserved_name(h, BL_TOMB_PREFIX, tomb);
	r = bl_ioctl_nested_subvolumes(fd, &nested, &n_nested);
	bl_subvolumes_free(nested, n_nested);
	if (r < 0)
		bl_fail(err, r, "remove layer: list nested subvolumes: %s", path);
	uint64_t subvolume;
	if (r == 0 && (r = bl_ioctl_subvolume_id(fd, &subvolume)) < 0)
		bl_fail(err, r, "remove layer: %s", path);
	/* the record leaves its id with the layer, as an intent that lets a
	 * crash be finished either way (intent.c) */
	if (r == 0)
		r = bl_intent_stash_record(h, id, subvolume, &intent, path, err);
	if (r < 0)
		goto out;
	bool buried = false;
	if (n_nested)
		r = bury_nested(h, id, fd, tomb, &buried, path, err);
	if (r == 0)
		r = bl_tree_destroy(h, fd, path, &spoiled, err);
	if (r < 0) {
		after_failed_removal(h, id, fd, tomb, buried, spoiled, &intent, r, path, err);
		goto out;
	}
	if (buried)
		bl_staging_retire(h, tomb);
	/* the layer is gone: its record goes (with no space to bury it, it
	 * was left under the id) */
	if (intent.fd >= 0)
		bl_intent_finish(h, id, &intent, path, NULL);
	else if (bl_quota_file_remove(h, id, NULL) < 0)
		bl_log(BTRFSLAYER_LOG_WARNING, "remove layer %s: its quota file is left", path);
	/* a deletion is not committed by the kernel: without this, a power
	 * cut could bring the layer back under its id */
	r = bl_commit(h, "remove layer", path, err);
out:
	bl_id_unlock(h, id);
	close(fd);
	if (r == 0)
		bl_quota_retry_pending_due(h, QGROUP_RETRIES_PER_REMOVE);
	return r;
}

/* get() without the id's lock, when there is nothing to write: a layer
 * with no record (found in one statx), or with one whose limit the kernel
 * has, and the path leading to it.  0 with *out set, or 1 when it cannot
 * tell: then the locked path decides (and waits out a removal in flight). */
/* "<home>/subvolumes/<id>", malloc'ed: the path get() hands out, built
 * without printf, whose formatting was a third of a get's instructions. */
static char *layer_path_dup(const btrfslayer *h, const char *id)
{
	static const char middle[] = "/" SUBVOLUMES "/";
	size_t home_len = strlen(h->home), id_len = strlen(id);
	char *p = malloc(home_len + sizeof(middle) - 1 + id_len + 1);
	if (!p)
		return NULL;
	memcpy(p, h->home, home_len);
	memcpy(p + home_len, middle, sizeof(middle) - 1);
	memcpy(p + home_len + sizeof(middle) - 1, id, id_len + 1);
	return p;
}

static int get_unlocked(btrfslayer *h, const char *id, char **out)
{
	struct statx stx;
	struct stat st;
	uint64_t size;
	/* none, or garbage (logged): no limit to apply, as in
	 * bl_quota_reapply() */
	if (bl_quota_file_read(h, id, &size) == 0) {
		int fd = bl_open_dir_beneath(h->subvolumes_fd, id);
		bool kept = fd >= 0 && fstat(fd, &st) == 0 && bl_stat_is_subvolume(&st) &&
			    bl_quota_limit_is(fd, size);
		if (fd >= 0)
			close(fd);
		if (!kept)
			return 1;
		stx.stx_ino = st.st_ino;
		stx.stx_dev_major = major(st.st_dev);
		stx.stx_dev_minor = minor(st.st_dev);
	} else if (lookup_layer_statx(h, h->subvolumes_fd, id, &stx) != 1) {
		return 1;
	}
	char *p = layer_path_dup(h, id);
	if (!p)
		return 1;
	if (bl_path_leads_to_statx(p, &stx) < 0) {
		free(p);
		return 1;
	}
	*out = p;
	return 0;
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
	if (get_unlocked(h, id, path) == 0)
		return 0;
	char layer[PATH_MAX], *p = NULL;
	bl_id_lock(h, id);
	int fd = bl_open_layer(h, id, "get layer", err);
	if (fd < 0) {
		bl_id_unlock(h, id);
		return fd;
	}
	bl_layer_path(h, id, layer, sizeof(layer));
	r = bl_quota_reapply(h, id, fd, layer, err);
	if (r == 0 && !(p = layer_path_dup(h, id)))
		r = bl_fail(err, -ENOMEM, "get layer: %s", layer);
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
	r = lookup_layer(h, h->subvolumes_fd, id);
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
	bl_layer_path(h, "", path, sizeof(path));
	size_t prefix_len = strlen(path);
	while (r == 0 && (errno = 0, d = readdir(dir))) {
		/* the reserved names and anything that is not a layer stay out */
		if (bl_id_check(d->d_name, "layer id", NULL) < 0 ||
		    lookup_layer(h, fd, d->d_name) != 1)
			continue;
		r = bl_list_add_path(list, path, prefix_len, d->d_name);
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
