/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The kernel's btrfs interface.  libbtrfsutil does the subvolume work; raw
 * ioctls cover what it lacks (filesystem uuid, quotas).  No other
 * module issues a btrfs ioctl.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <endian.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <btrfsutil.h>
#include <linux/btrfs.h>
#include <linux/btrfs_tree.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <linux/magic.h>

#include "internal.h"

/* Simple quotas (kernel 6.7) postdate Debian 12's headers. */
#ifndef BTRFS_QGROUP_STATUS_FLAG_SIMPLE_MODE
#define BTRFS_QGROUP_STATUS_FLAG_SIMPLE_MODE (1ULL << 3)
#endif

/* libbtrfsutil reports an enum and leaves the syscall's errno behind. */
static int from_util(enum btrfs_util_error e)
{
	switch (e) {
	case BTRFS_UTIL_OK:
		return 0;
	case BTRFS_UTIL_ERROR_NO_MEMORY:
		return -ENOMEM;
	case BTRFS_UTIL_ERROR_NOT_BTRFS:
		return -BTRFSLAYER_ENOTBTRFS;
	case BTRFS_UTIL_ERROR_NOT_SUBVOLUME:
		return -ENOTDIR;
	case BTRFS_UTIL_ERROR_SUBVOLUME_NOT_FOUND:
		return -ENOENT;
	default:
		return errno > 0 ? -errno : -EIO;
	}
}

#define UTIL(call) (errno = 0, from_util(call))

/* A name the kernel copies into a fixed buffer: one non-empty component
 * that fits, checked here rather than trusted. */
static int check_name(const char *name, size_t buffer_size)
{
	if (!name || !*name || strchr(name, '/') || !strcmp(name, ".") ||
	    !strcmp(name, ".."))
		return -EINVAL;
	size_t len = strnlen(name, NAME_MAX + 1);
	if (len > NAME_MAX || len >= buffer_size)
		return -ENAMETOOLONG;
	return 0;
}

int bl_check_btrfs(int fd)
{
	struct statfs sfs;
	if (fstatfs(fd, &sfs) < 0)
		return -errno;
	return sfs.f_type == BTRFS_SUPER_MAGIC ? 0 : -BTRFSLAYER_ENOTBTRFS;
}

int bl_ioctl_fs_uuid(int fd, uint8_t uuid[16])
{
	struct btrfs_ioctl_fs_info_args args;
	int r = bl_check_btrfs(fd);
	if (r < 0)
		return r;
	memset(&args, 0, sizeof(args));
	if (ioctl(fd, BTRFS_IOC_FS_INFO, &args) < 0)
		return -errno;
	memcpy(uuid, args.fsid, 16);
	return 0;
}

int bl_ioctl_is_subvolume(int fd)
{
	int r = UTIL(btrfs_util_is_subvolume_fd(fd));
	if (r == -ENOTDIR)
		return 0;
	return r < 0 ? r : 1;
}

int bl_ioctl_subvolume_id(int fd, uint64_t *id)
{
	return UTIL(btrfs_util_subvolume_id_fd(fd, id));
}

int bl_ioctl_get_read_only(int fd, bool *read_only)
{
	return UTIL(btrfs_util_get_subvolume_read_only_fd(fd, read_only));
}

int bl_ioctl_set_read_only(int fd, bool read_only)
{
	return UTIL(btrfs_util_set_subvolume_read_only_fd(fd, read_only));
}

int bl_ioctl_subvolume_create(int dirfd, const char *name)
{
	int r = check_name(name, sizeof(((struct btrfs_ioctl_vol_args_v2 *)0)->name));
	if (r < 0)
		return r;
	return UTIL(btrfs_util_create_subvolume_fd(dirfd, name, 0, NULL, NULL));
}

int bl_ioctl_snapshot(int source_fd, int dirfd, const char *name, bool read_only)
{
	int r = check_name(name, sizeof(((struct btrfs_ioctl_vol_args_v2 *)0)->name));
	if (r < 0)
		return r;
	int flags = read_only ? BTRFS_UTIL_CREATE_SNAPSHOT_READ_ONLY : 0;
	return UTIL(btrfs_util_create_snapshot_fd2(source_fd, dirfd, name, flags,
						   NULL, NULL));
}

int bl_ioctl_destroy(int dirfd, const char *name)
{
	int r = check_name(name, sizeof(((struct btrfs_ioctl_vol_args *)0)->name));
	if (r < 0)
		return r;
	return UTIL(btrfs_util_delete_subvolume_fd(dirfd, name, 0));
}

int bl_ioctl_destroy_by_id(int fd, uint64_t id)
{
	int r = UTIL(btrfs_util_delete_subvolume_by_id_fd(fd, id));
	if (r != -EINVAL)
		return r;
	/* Without CAP_SYS_ADMIN (user_subvol_rm_allowed) the kernel refuses,
	 * with EINVAL, a deletion asked through an fd inside the subvolume to
	 * delete.  The id says what goes, whatever the fd: ask through the
	 * directory the subvolume's root is in, on the same filesystem. */
	uint8_t fsid[16], up_fsid[16];
	uint64_t own;
	if (UTIL(btrfs_util_subvolume_id_fd(fd, &own)) < 0 || own != id)
		return r;
	int up = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (up < 0)
		return r;
	if (bl_ioctl_fs_uuid(fd, fsid) == 0 && bl_ioctl_fs_uuid(up, up_fsid) == 0 &&
	    !memcmp(fsid, up_fsid, sizeof(fsid)))
		r = UTIL(btrfs_util_delete_subvolume_by_id_fd(up, id));
	close(up);
	return r;
}

int bl_ioctl_subvolume_info(int fd, struct bl_subvolume_info *out)
{
	/* GET_SUBVOL_INFO (Linux 4.18) needs no privilege: a root without
	 * CAP_SYS_ADMIN (a default container) and a rootless caller get it
	 * too.  libbtrfsutil searches the root tree when euid is 0, which
	 * takes CAP_SYS_ADMIN; it is kept for older kernels only. */
	struct btrfs_ioctl_get_subvol_info_args *args = calloc(1, sizeof(*args));
	if (!args)
		return -ENOMEM;
	int r = bl_check_btrfs(fd);
	if (r == 0 && ioctl(fd, BTRFS_IOC_GET_SUBVOL_INFO, args) < 0)
		r = -errno;
	if (r == 0) {
		out->id = args->treeid;
		memcpy(out->uuid, args->uuid, sizeof(out->uuid));
		memcpy(out->parent_uuid, args->parent_uuid, sizeof(out->parent_uuid));
		out->read_only = args->flags & BTRFS_ROOT_SUBVOL_RDONLY;
		out->created = args->otransid;
		out->generation = args->generation;
		out->otime_sec = (int64_t)args->otime.sec;
		out->otime_nsec = args->otime.nsec;
	}
	free(args);
	if (r != -ENOTTY)
		return r;

	struct btrfs_util_subvolume_info info;
	r = UTIL(btrfs_util_subvolume_info_fd(fd, 0, &info));
	if (r < 0)
		return r;
	out->id = info.id;
	memcpy(out->uuid, info.uuid, sizeof(out->uuid));
	memcpy(out->parent_uuid, info.parent_uuid, sizeof(out->parent_uuid));
	out->read_only = info.flags & BTRFS_ROOT_SUBVOL_RDONLY;
	out->created = info.otransid;
	out->generation = info.generation;
	out->otime_sec = info.otime.tv_sec;
	out->otime_nsec = (uint32_t)info.otime.tv_nsec;
	return 0;
}

int bl_ioctl_has_nested(int fd)
{
	/* GET_SUBVOL_ROOTREF (Linux 4.18) lists the subvolume's own root
	 * refs, one per subvolume directly inside it, and needs no privilege.
	 * A full buffer says EOVERFLOW: there are more, so there are some. */
	struct btrfs_ioctl_get_subvol_rootref_args *args = calloc(1, sizeof(*args));
	if (!args)
		return -ENOMEM;
	int r = 0;
	if (ioctl(fd, BTRFS_IOC_GET_SUBVOL_ROOTREF, args) < 0)
		r = errno == EOVERFLOW ? 1 : -errno;
	else
		r = args->num_items > 0;
	free(args);
	return r;
}

int bl_ioctl_subvolumes_by_uuid(int fd, const uint8_t uuid[16], uint64_t *ids, size_t max)
{
	struct btrfs_ioctl_search_args args;
	struct btrfs_ioctl_search_header header;
	uint64_t objectid, offset;
	/* the uuid tree's key of a subvolume uuid: its two halves, little
	 * endian (btrfs_uuid_to_key()) */
	memcpy(&objectid, uuid, 8);
	memcpy(&offset, uuid + 8, 8);
	memset(&args, 0, sizeof(args));
	args.key.tree_id = BTRFS_UUID_TREE_OBJECTID;
	args.key.min_objectid = args.key.max_objectid = le64toh(objectid);
	args.key.min_type = args.key.max_type = BTRFS_UUID_KEY_SUBVOL;
	args.key.min_offset = args.key.max_offset = le64toh(offset);
	args.key.max_transid = UINT64_MAX;
	args.key.nr_items = 1;
	if (ioctl(fd, BTRFS_IOC_TREE_SEARCH, &args) < 0)
		return errno == ENOENT ? 0 : -errno;	/* ENOENT: no uuid tree */
	if (args.key.nr_items == 0)
		return 0;
	memcpy(&header, args.buf, sizeof(header));
	if (header.type != BTRFS_UUID_KEY_SUBVOL || header.len % 8 ||
	    header.len > sizeof(args.buf) - sizeof(header))
		return -EIO;
	size_t n = 0;
	for (size_t off = 0; off < header.len && n < max; off += 8, n++) {
		uint64_t id;
		memcpy(&id, args.buf + sizeof(header) + off, 8);
		ids[n] = le64toh(id);
	}
	return (int)n;
}

int bl_ioctl_subvolume_backref(int fd, uint64_t id, uint64_t parent_tree, uint64_t *dirid,
			       char *name, size_t size)
{
	struct btrfs_ioctl_search_args args;
	struct btrfs_ioctl_search_header header;
	struct btrfs_root_ref ref;
	memset(&args, 0, sizeof(args));
	args.key.tree_id = BTRFS_ROOT_TREE_OBJECTID;
	args.key.min_objectid = args.key.max_objectid = id;
	args.key.min_type = args.key.max_type = BTRFS_ROOT_BACKREF_KEY;
	args.key.min_offset = args.key.max_offset = parent_tree;
	args.key.max_transid = UINT64_MAX;
	args.key.nr_items = 1;
	if (ioctl(fd, BTRFS_IOC_TREE_SEARCH, &args) < 0)
		return -errno;
	if (args.key.nr_items == 0)
		return -ENOENT;
	memcpy(&header, args.buf, sizeof(header));
	if (header.type != BTRFS_ROOT_BACKREF_KEY || header.len < sizeof(ref) ||
	    header.len > sizeof(args.buf) - sizeof(header))
		return -EIO;
	memcpy(&ref, args.buf + sizeof(header), sizeof(ref));
	size_t len = le16toh(ref.name_len);
	if (len > header.len - sizeof(ref))
		return -EIO;
	if (len >= size)
		return -ENAMETOOLONG;
	memcpy(name, args.buf + sizeof(header) + sizeof(ref), len);
	name[len] = '\0';
	*dirid = le64toh(ref.dirid);
	return 0;
}

int bl_ioctl_child_subvolume(int dirfd, const char *name, uint64_t *id)
{
	struct btrfs_ioctl_search_args args;
	struct stat st;
	uint64_t parent;
	size_t len = strlen(name);
	int r = UTIL(btrfs_util_subvolume_id_fd(dirfd, &parent));
	if (r < 0)
		return r;
	if (fstat(dirfd, &st) < 0)
		return -errno;
	memset(&args, 0, sizeof(args));
	args.key.tree_id = BTRFS_ROOT_TREE_OBJECTID;
	args.key.min_objectid = args.key.max_objectid = parent;
	args.key.min_type = args.key.max_type = BTRFS_ROOT_REF_KEY;
	args.key.max_offset = UINT64_MAX;
	args.key.max_transid = UINT64_MAX;
	for (;;) {
		args.key.nr_items = 4096;
		if (ioctl(dirfd, BTRFS_IOC_TREE_SEARCH, &args) < 0)
			return -errno;
		if (args.key.nr_items == 0)
			return -ENOENT;
		size_t off = 0;
		struct btrfs_ioctl_search_header header;
		for (uint32_t i = 0; i < args.key.nr_items; i++) {
			struct btrfs_root_ref ref;
			memcpy(&header, args.buf + off, sizeof(header));
			off += sizeof(header);
			if (header.type == BTRFS_ROOT_REF_KEY && header.len >= sizeof(ref)) {
				memcpy(&ref, args.buf + off, sizeof(ref));
				if (le64toh(ref.dirid) == st.st_ino &&
				    le16toh(ref.name_len) == len && len <= header.len - sizeof(ref) &&
				    !memcmp(args.buf + off + sizeof(ref), name, len)) {
					*id = header.offset;
					return 0;
				}
			}
			off += header.len;
		}
		if (header.offset == UINT64_MAX)
			return -ENOENT;
		args.key.min_offset = header.offset + 1;
	}
}

int bl_ioctl_generation(int fd, uint64_t *generation)
{
	struct btrfs_ioctl_fs_info_args args;
	memset(&args, 0, sizeof(args));
	args.flags = BTRFS_FS_INFO_FLAG_GENERATION;
	if (ioctl(fd, BTRFS_IOC_FS_INFO, &args) < 0)
		return -errno;
	if (!(args.flags & BTRFS_FS_INFO_FLAG_GENERATION))
		return -EOPNOTSUPP;	/* before Linux 5.14 */
	*generation = args.generation;
	return 0;
}

int bl_ioctl_settle_data(int fd)
{
	/* fm_extent_count 0: only the sync and a count, no extent copied */
	struct fiemap map;
	memset(&map, 0, sizeof(map));
	map.fm_length = FIEMAP_MAX_OFFSET;
	map.fm_flags = FIEMAP_FLAG_SYNC;
	if (ioctl(fd, FS_IOC_FIEMAP, &map) == 0)
		return 0;
	return fdatasync(fd) < 0 ? -errno : 0;
}

int bl_ioctl_commit(int fd)
{
	/* syncfs() commits the transaction synchronously (btrfs_sync_fs).  Not
	 * BTRFS_IOC_START_SYNC + WAIT_SYNC, which would write back no file
	 * data: on Linux 6.18, START_SYNC calls made while a snapshot's own
	 * commit runs were seen to wait out the 30 s commit interval. */
	return syncfs(fd) < 0 ? -errno : 0;
}

int bl_ioctl_subvolume_exists(int fd, uint64_t id)
{
	struct btrfs_util_subvolume_info info;
	/* the root item stays until the cleaner has dropped the subvolume */
	int r = UTIL(btrfs_util_subvolume_info_fd(fd, id, &info));
	if (r == -ENOENT)
		return 0;
	return r < 0 ? r : 1;
}

void bl_subvolumes_free(struct bl_subvolume *subvolumes, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(subvolumes[i].path);
	free(subvolumes);
}

/* A growing list of struct bl_subvolume. */
struct subvolume_list {
	struct bl_subvolume *items;
	size_t count, cap;
};

/* Append; takes `path` (freed on failure). */
static int list_append(struct subvolume_list *list, uint64_t id, uint64_t parent_id,
		       bool read_only, char *path)
{
	if (list->count == list->cap) {
		size_t ncap = list->cap ? 2 * list->cap : 8;
		struct bl_subvolume *grown = reallocarray(list->items, ncap, sizeof(*grown));
		if (!grown) {
			free(path);
			return -ENOMEM;
		}
		list->items = grown;
		list->cap = ncap;
	}
	list->items[list->count++] = (struct bl_subvolume){
		.id = id, .parent_id = parent_id, .read_only = read_only, .path = path,
	};
	return 0;
}

int bl_ioctl_child_subvolumes(int fd, struct bl_child_subvolume **out, size_t *n)
{
	struct btrfs_ioctl_get_subvol_rootref_args args;
	struct bl_child_subvolume *children = NULL;
	size_t count = 0;
	int r;

	memset(&args, 0, sizeof(args));
	do {
		/* EOVERFLOW: a full batch, and min_treeid set for the next */
		r = ioctl(fd, BTRFS_IOC_GET_SUBVOL_ROOTREF, &args) < 0 ? -errno : 0;
		if (r < 0 && r != -EOVERFLOW)
			break;
		struct bl_child_subvolume *grown =
			reallocarray(children, count + args.num_items + 1, sizeof(*grown));
		if (!grown) {
			r = -ENOMEM;
			break;
		}
		children = grown;
		for (unsigned i = 0; i < args.num_items; i++) {
			struct btrfs_ioctl_ino_lookup_user_args lookup;
			memset(&lookup, 0, sizeof(lookup));
			lookup.treeid = args.rootref[i].treeid;
			lookup.dirid = args.rootref[i].dirid;
			if (ioctl(fd, BTRFS_IOC_INO_LOOKUP_USER, &lookup) < 0) {
				r = -errno;
				break;
			}
			/* "a/b/" (or "") leads from fd to the directory, then
			 * the subvolume's name in it */
			lookup.path[sizeof(lookup.path) - 1] = '\0';
			lookup.name[sizeof(lookup.name) - 1] = '\0';
			const char *sep = *lookup.path &&
					  lookup.path[strlen(lookup.path) - 1] != '/' ? "/" : "";
			char *path;
			if (asprintf(&path, "%s%s%s", lookup.path, sep, lookup.name) < 0) {
				r = -ENOMEM;
				break;
			}
			children[count++] = (struct bl_child_subvolume){
				.id = args.rootref[i].treeid, .path = path,
			};
		}
	} while (r == -EOVERFLOW);
	if (r < 0) {
		bl_child_subvolumes_free(children, count);
		return r;
	}
	*out = children;
	*n = count;
	return 0;
}

void bl_child_subvolumes_free(struct bl_child_subvolume *children, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(children[i].path);
	free(children);
}

/* Nesting deeper than this is refused (-ELOOP) by the unprivileged walk. */
#define NESTING_MAX 64

/* The unprivileged walk: the children of the subvolume fd is the root of
 * (its id: `id`, its path below the top: `prefix`), then theirs, each
 * child after its own children.  Each child is opened by its path below
 * its parent, without following a symlink or crossing a mount, and taken
 * only if it is still the subvolume the root tree named; one moved
 * meanwhile is skipped (a deletion of the top then fails with ENOTEMPTY,
 * and the caller lists again). */
static int walk_unprivileged(int fd, uint64_t id, const char *prefix, int depth,
			     struct subvolume_list *list)
{
	struct bl_child_subvolume *children;
	size_t n;
	if (depth > NESTING_MAX)
		return -ELOOP;
	int r = bl_ioctl_child_subvolumes(fd, &children, &n);
	for (size_t i = 0; r == 0 && i < n; i++) {
		uint64_t child_id;
		bool read_only = false;
		char *path;
		int child = bl_open_path_beneath(fd, children[i].path);
		if (child < 0) {
			if (child != -ENOENT && child != -ENOTDIR && child != -EXDEV)
				r = child;
			continue;
		}
		if (bl_ioctl_subvolume_id(child, &child_id) < 0 || child_id != children[i].id ||
		    bl_ioctl_is_subvolume(child) != 1) {
			close(child);
			continue;
		}
		if (asprintf(&path, "%s%s%s", prefix, *prefix ? "/" : "", children[i].path) < 0) {
			close(child);
			r = -ENOMEM;
			break;
		}
		r = walk_unprivileged(child, child_id, path, depth + 1, list);
		if (r == 0)
			r = bl_ioctl_get_read_only(child, &read_only);
		close(child);
		if (r == 0)
			r = list_append(list, child_id, id, read_only, path);
		else
			free(path);
	}
	bl_child_subvolumes_free(children, n);
	return r;
}

int bl_ioctl_nested_subvolumes(int fd, struct bl_subvolume **out, size_t *n)
{
	struct btrfs_util_subvolume_iterator *iter;
	struct subvolume_list list = { 0 };
	uint64_t top;

	int r = UTIL(btrfs_util_create_subvolume_iterator_fd(
		fd, 0, BTRFS_UTIL_SUBVOLUME_ITERATOR_POST_ORDER, &iter));
	if (r < 0)
		return r;
	for (;;) {
		struct btrfs_util_subvolume_info info;
		char *path;
		errno = 0;
		enum btrfs_util_error e =
			btrfs_util_subvolume_iterator_next_info(iter, &path, &info);
		if (e == BTRFS_UTIL_ERROR_STOP_ITERATION)
			break;
		r = from_util(e);
		if (r == 0)
			r = list_append(&list, info.id, info.parent_id,
					info.flags & BTRFS_ROOT_SUBVOL_RDONLY, path);
		if (r < 0)
			break;
	}
	btrfs_util_destroy_subvolume_iterator(iter);
	/* libbtrfsutil searches the root tree when geteuid() is 0, which needs
	 * CAP_SYS_ADMIN: root in a user namespace (unshare -r) gets EPERM
	 * before any answer, and takes the way any user may */
	if (r == -EPERM && list.count == 0) {
		r = bl_ioctl_subvolume_id(fd, &top);
		if (r == 0)
			r = walk_unprivileged(fd, top, "", 0, &list);
	}
	if (r < 0) {
		bl_subvolumes_free(list.items, list.count);
		return r;
	}
	*out = list.items;
	*n = list.count;
	return 0;
}

/* /sys/fs/btrfs/<fsid>/qgroups/<name> of fd's filesystem, read as text
 * into buf (NUL-terminated, trailing newline dropped); -ENOENT when it is
 * not there, -EPERM when sysfs has no entry for the filesystem at all (the
 * caller's answer stands).  sysfs tells anyone what the quota tree tells CAP_SYS_ADMIN:
 * the way for callers without it.  The qgroups directory exists while
 * quotas are on (Linux 5.9). */
static int qgroups_sysfs_read(int fd, const char *name, char *buf, size_t size)
{
	struct btrfs_ioctl_fs_info_args info;
	char path[PATH_MAX], uuid[37];
	memset(&info, 0, sizeof(info));
	if (ioctl(fd, BTRFS_IOC_FS_INFO, &info) < 0)
		return -errno;
	const uint8_t *u = info.fsid;
	snprintf(uuid, sizeof(uuid), "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7],
		 u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
	/* no /sys/fs/btrfs/<fsid> (no sysfs in this mount namespace): sysfs
	 * cannot tell, which is not "quotas off" */
	snprintf(path, sizeof(path), "/sys/fs/btrfs/%s", uuid);
	if (access(path, F_OK) < 0)
		return -EPERM;
	snprintf(path, sizeof(path), "/sys/fs/btrfs/%s/qgroups%s%s", uuid, *name ? "/" : "",
		 name);
	int file = open(path, O_RDONLY | O_CLOEXEC | (*name ? 0 : O_DIRECTORY));
	if (file < 0)
		return -errno;
	ssize_t len = *name ? read(file, buf, size - 1) : 0;
	int r = len < 0 ? -errno : 0;
	close(file);
	if (r < 0)
		return r;
	buf[len] = '\0';
	if (len && buf[len - 1] == '\n')
		buf[len - 1] = '\0';
	return 0;
}

static int qgroups_sysfs_u64(int fd, const char *name, uint64_t *value)
{
	char buf[32], *end;
	int r = qgroups_sysfs_read(fd, name, buf, sizeof(buf));
	if (r < 0)
		return r;
	errno = 0;
	*value = strtoull(buf, &end, 0);
	return errno || end == buf || *end ? -EIO : 0;
}

/* Quota status from sysfs, for a caller without CAP_SYS_ADMIN. */
static int quota_status_sysfs(int fd, enum bl_quota_mode *mode, bool *inconsistent)
{
	char text[32];
	uint64_t flag = 0;
	*mode = BL_QUOTA_OFF;
	*inconsistent = false;
	int r = qgroups_sysfs_read(fd, "", text, sizeof(text));
	if (r == -ENOENT)
		return 0;	/* no qgroups directory: quotas are off */
	if (r == 0)
		r = qgroups_sysfs_read(fd, "mode", text, sizeof(text));
	if (r == -ENOENT) {	/* before Linux 6.7: full qgroups only */
		strcpy(text, "qgroup");
		r = 0;
	}
	if (r == 0 && qgroups_sysfs_u64(fd, "inconsistent", &flag) == 0)
		*inconsistent = flag != 0;
	if (r < 0)
		return r;
	if (!strcmp(text, "qgroup"))
		*mode = BL_QUOTA_QGROUP;
	else if (!strcmp(text, "squota"))
		*mode = BL_QUOTA_SIMPLE;
	else if (strcmp(text, "disabled"))
		return -EIO;
	return 0;
}

int bl_ioctl_quota_status(int fd, enum bl_quota_mode *mode, bool *inconsistent)
{
	struct btrfs_ioctl_search_args args;

	memset(&args, 0, sizeof(args));
	args.key.tree_id = BTRFS_QUOTA_TREE_OBJECTID;
	args.key.min_type = BTRFS_QGROUP_STATUS_KEY;
	args.key.max_type = BTRFS_QGROUP_STATUS_KEY;
	args.key.max_offset = UINT64_MAX;
	args.key.max_transid = UINT64_MAX;
	args.key.nr_items = 1;
	if (ioctl(fd, BTRFS_IOC_TREE_SEARCH, &args) < 0) {
		if (errno == EPERM)	/* no CAP_SYS_ADMIN */
			return quota_status_sysfs(fd, mode, inconsistent);
		int e = -errno;
		if (e != -ENOENT) {	/* ENOENT: no quota tree, quotas off */
			/* not btrfs at all, rather than the ioctl's -ENOTTY; asked
			 * only then (a statfs less on every call) */
			int r = bl_check_btrfs(fd);
			return r < 0 ? r : e;
		}
		args.key.nr_items = 0;
	}

	*mode = BL_QUOTA_OFF;
	*inconsistent = false;
	if (args.key.nr_items == 0)
		return 0;

	struct btrfs_ioctl_search_header header;
	struct btrfs_qgroup_status_item item;
	memcpy(&header, args.buf, sizeof(header));
	if (header.type != BTRFS_QGROUP_STATUS_KEY ||
	    header.len < offsetof(struct btrfs_qgroup_status_item, rescan))
		return -EIO;
	memset(&item, 0, sizeof(item));
	memcpy(&item, args.buf + sizeof(header),
	       header.len < sizeof(item) ? header.len : sizeof(item));
	uint64_t flags = le64toh(item.flags);
	if (flags & BTRFS_QGROUP_STATUS_FLAG_ON)
		*mode = (flags & BTRFS_QGROUP_STATUS_FLAG_SIMPLE_MODE) ?
			BL_QUOTA_SIMPLE : BL_QUOTA_QGROUP;
	*inconsistent = flags & BTRFS_QGROUP_STATUS_FLAG_INCONSISTENT;
	return 0;
}

/* ---- quotas ---------------------------------------------------------------- */

/* Also newer than Debian 12's headers. */
#ifndef BTRFS_QUOTA_CTL_ENABLE_SIMPLE_QUOTA
#define BTRFS_QUOTA_CTL_ENABLE_SIMPLE_QUOTA 4
#endif
/* QGROUP_LIMIT with this value for a limit clears it. */
#define QGROUP_LIMIT_CLEAR UINT64_MAX
/* Every limit a qgroup may carry; the kernel enforces the first two
 * (qgroup_check_limits()), and a snapshot copies all four from its source
 * with full qgroups (btrfs_qgroup_inherit()).  The *_CMPR flags limit
 * nothing. */
#define BL_QGROUP_LIMITS (BTRFS_QGROUP_LIMIT_MAX_RFER | BTRFS_QGROUP_LIMIT_MAX_EXCL | \
			  BTRFS_QGROUP_LIMIT_RSV_RFER | BTRFS_QGROUP_LIMIT_RSV_EXCL)

bool bl_kernel_has_simple_quota(void)
{
	/* the kernel lists what it supports, whatever the filesystem has */
	return access("/sys/fs/btrfs/features/simple_quota", F_OK) == 0;
}

int bl_ioctl_quota_enable(int fd, enum bl_quota_mode mode)
{
	struct btrfs_ioctl_quota_ctl_args args = {
		.cmd = mode == BL_QUOTA_SIMPLE ? BTRFS_QUOTA_CTL_ENABLE_SIMPLE_QUOTA
					       : BTRFS_QUOTA_CTL_ENABLE,
	};
	if (mode == BL_QUOTA_OFF)
		return -EINVAL;
	return ioctl(fd, BTRFS_IOC_QUOTA_CTL, &args) < 0 ? -errno : 0;
}

int bl_ioctl_qgroup_limit(int fd, uint64_t max_referenced)
{
	return bl_ioctl_qgroup_limit_id(fd, 0, max_referenced);
}

int bl_ioctl_qgroup_limit_id(int fd, uint64_t qgroupid, uint64_t max_referenced)
{
	struct btrfs_ioctl_qgroup_limit_args args;
	memset(&args, 0, sizeof(args));
	args.qgroupid = qgroupid;	/* 0: the subvolume fd is in */
	/* One ioctl sets every limit the kernel keeps: a flag given with the
	 * value QGROUP_LIMIT_CLEAR clears that limit (btrfs_limit_qgroup()),
	 * and a flag left out would leave it as it is, such as the exclusive
	 * limit a snapshot copies from its source with full qgroups. */
	args.lim.flags = BL_QGROUP_LIMITS;
	args.lim.max_rfer = max_referenced ? max_referenced : QGROUP_LIMIT_CLEAR;
	args.lim.max_excl = QGROUP_LIMIT_CLEAR;
	args.lim.rsv_rfer = QGROUP_LIMIT_CLEAR;
	args.lim.rsv_excl = QGROUP_LIMIT_CLEAR;
	if (ioctl(fd, BTRFS_IOC_QGROUP_LIMIT, &args) == 0)
		return 0;
	if (errno != EDQUOT)
		return -errno;
	/* The kernel reserves the ioctl's transaction against the subvolume
	 * of the fd it is given (btrfs_start_transaction(root, 1)), so a
	 * subvolume over its limit cannot have that limit raised or cleared
	 * through itself.  Through the directory its root is in, which is in
	 * another subvolume, naming its qgroup, it can. */
	uint8_t fsid[16] = { 0 }, up_fsid[16] = { 0 };
	uint64_t id;
	int up = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (up < 0)
		return -EDQUOT;
	/* the same filesystem (a qgroup id means nothing on another), or
	 * the first answer stands */
	int r = UTIL(btrfs_util_subvolume_id_fd(fd, &id));
	if (r == 0)
		r = bl_ioctl_fs_uuid(fd, fsid);
	if (r == 0)
		r = bl_ioctl_fs_uuid(up, up_fsid);
	if (r < 0 || memcmp(fsid, up_fsid, sizeof(fsid))) {
		r = -EDQUOT;
	} else {
		if (!args.qgroupid)
			args.qgroupid = id;
		r = ioctl(up, BTRFS_IOC_QGROUP_LIMIT, &args) < 0 ? -errno : 0;
	}
	close(up);
	return r;
}

static int qgroup_create_or_destroy(int fd, uint64_t qgroupid, bool create)
{
	struct btrfs_ioctl_qgroup_create_args args = {
		.create = create,
		.qgroupid = qgroupid,
	};
	return ioctl(fd, BTRFS_IOC_QGROUP_CREATE, &args) < 0 ? -errno : 0;
}

int bl_ioctl_qgroup_create(int fd, uint64_t qgroupid)
{
	return qgroup_create_or_destroy(fd, qgroupid, true);
}

int bl_ioctl_qgroup_destroy(int fd, uint64_t qgroupid)
{
	return qgroup_create_or_destroy(fd, qgroupid, false);
}

int bl_ioctl_qgroup_assign(int fd, uint64_t member, uint64_t parent)
{
	struct btrfs_ioctl_qgroup_assign_args args = {
		.assign = 1,
		.src = member,
		.dst = parent,
	};
	/* above 0: the kernel marked full qgroups inconsistent (a rescan is
	 * due); simple quotas account without it */
	int r = ioctl(fd, BTRFS_IOC_QGROUP_ASSIGN, &args);
	return r < 0 ? -errno : 0;
}

/* Copy the quota tree's item (0, type, qgroupid), of `size` bytes, into
 * item; -ENOENT when there is none or quotas are off. */
static int quota_tree_item(int fd, uint8_t type, uint64_t qgroupid, void *item, size_t size)
{
	struct btrfs_ioctl_search_args args;
	struct btrfs_ioctl_search_header header;

	memset(&args, 0, sizeof(args));
	args.key.tree_id = BTRFS_QUOTA_TREE_OBJECTID;
	args.key.min_type = args.key.max_type = type;
	args.key.min_offset = args.key.max_offset = qgroupid;
	args.key.max_transid = UINT64_MAX;
	args.key.nr_items = 1;
	if (ioctl(fd, BTRFS_IOC_TREE_SEARCH, &args) < 0)
		return -errno;	/* ENOENT: no quota tree */
	if (args.key.nr_items == 0)
		return -ENOENT;
	memcpy(&header, args.buf, sizeof(header));
	if (header.type != type || header.offset != qgroupid || header.len < size ||
	    header.len > sizeof(args.buf) - sizeof(header))
		return -EIO;
	memcpy(item, args.buf + sizeof(header), size);
	return 0;
}

/* A qgroup from sysfs (qgroups/<level>_<id>/), for a caller without
 * CAP_SYS_ADMIN. */
static int qgroup_info_sysfs(int fd, uint64_t qgroupid, struct bl_qgroup *out)
{
	static const char *const names[] = { "referenced", "exclusive", "limit_flags",
					     "max_referenced", "max_exclusive" };
	uint64_t values[5];
	char name[64];
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "%llu_%llu/%s",
			 (unsigned long long)(qgroupid >> BTRFS_QGROUP_LEVEL_SHIFT),
			 (unsigned long long)(qgroupid & ((1ULL << BTRFS_QGROUP_LEVEL_SHIFT) - 1)),
			 names[i]);
		int r = qgroups_sysfs_u64(fd, name, &values[i]);
		if (r < 0)
			return r;
	}
	out->referenced = values[0];
	out->exclusive = values[1];
	out->limit_flags = values[2] & BL_QGROUP_LIMITS;
	if (out->limit_flags & BTRFS_QGROUP_LIMIT_MAX_RFER)
		out->max_referenced = values[3];
	if (out->limit_flags & BTRFS_QGROUP_LIMIT_MAX_EXCL)
		out->max_exclusive = values[4];
	return 0;
}

int bl_ioctl_qgroup_max_referenced(int fd, uint64_t qgroupid, uint64_t *max_referenced)
{
	struct btrfs_qgroup_limit_item limit;
	int r = quota_tree_item(fd, BTRFS_QGROUP_LIMIT_KEY, qgroupid, &limit, sizeof(limit));
	*max_referenced = 0;
	if (r == 0 && (le64toh(limit.flags) & BTRFS_QGROUP_LIMIT_MAX_RFER))
		*max_referenced = le64toh(limit.max_rfer);
	return r;
}

int bl_ioctl_qgroup_info(int fd, uint64_t qgroupid, struct bl_qgroup *out)
{
	struct btrfs_qgroup_info_item info;
	struct btrfs_qgroup_limit_item limit;

	int r = quota_tree_item(fd, BTRFS_QGROUP_INFO_KEY, qgroupid, &info, sizeof(info));
	if (r == -EPERM)
		return qgroup_info_sysfs(fd, qgroupid, out);
	if (r < 0)
		return r;
	memset(out, 0, sizeof(*out));
	out->referenced = le64toh(info.rfer);
	out->exclusive = le64toh(info.excl);
	r = quota_tree_item(fd, BTRFS_QGROUP_LIMIT_KEY, qgroupid, &limit, sizeof(limit));
	if (r == -ENOENT)	/* never limited */
		return 0;
	if (r < 0)
		return r;
	/* a value counts only with its flag: a cleared limit keeps a 0 */
	out->limit_flags = le64toh(limit.flags) & BL_QGROUP_LIMITS;
	if (out->limit_flags & BTRFS_QGROUP_LIMIT_MAX_RFER)
		out->max_referenced = le64toh(limit.max_rfer);
	if (out->limit_flags & BTRFS_QGROUP_LIMIT_MAX_EXCL)
		out->max_exclusive = le64toh(limit.max_excl);
	return 0;
}

bool bl_qgroup_limited_to(const struct bl_qgroup *qgroup, uint64_t max_referenced)
{
	uint64_t want = max_referenced ? BTRFS_QGROUP_LIMIT_MAX_RFER : 0;
	return qgroup->limit_flags == want && qgroup->max_referenced == max_referenced;
}

/* ---- send, and the paths of an inode (changes) ---------------------------- */

/* The send ioctl writes into a pipe and blocks while it is full: a thread
 * drains it meanwhile. */
struct pipe_drain {
	int fd;
	uint8_t *buf;
	size_t len, cap;
	int error;		/* a negative errno, or 0 */
	uint64_t max_commands;	/* 0: no limit */
	uint64_t commands;	/* whole commands read so far */
	size_t next;		/* offset of the next command's header */
};

/* Count the whole commands read so far; past the limit, close the pipe: the
 * kernel's next write fails (EPIPE) and the send ends early. */
static bool over_limit(struct pipe_drain *d)
{
	while (d->len >= d->next + 10) {
		const uint8_t *p = d->buf + d->next;
		uint32_t len = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
			       (uint32_t)p[3] << 24;
		d->next += 10 + (size_t)len;
		d->commands++;
	}
	if (!d->max_commands || d->commands <= d->max_commands)
		return false;
	d->error = -ECANCELED;
	close(d->fd);
	d->fd = -1;
	return true;
}

static void *drain_pipe(void *arg)
{
	struct pipe_drain *d = arg;
	uint8_t scratch[4096] = { 0 };
	for (;;) {
		if (!d->error && d->cap - d->len < 65536) {
			size_t cap = d->cap ? 2 * d->cap : 1 << 20;
			uint8_t *grown = realloc(d->buf, cap);
			if (grown) {
				d->buf = grown;
				d->cap = cap;
			} else {
				d->error = -ENOMEM;	/* read on: the sender must end */
			}
		}
		uint8_t *to = d->error ? scratch : d->buf + d->len;
		size_t room = d->error ? sizeof(scratch) : d->cap - d->len;
		ssize_t n = read(d->fd, to, room);
		if (n == 0)
			return NULL;
		if (n < 0 && errno != EINTR) {
			/* the sender then fails with EPIPE once we close */
			d->error = -errno;
			return NULL;
		}
		if (n > 0 && !d->error) {
			d->len += (size_t)n;
			if (over_limit(d))
				return NULL;
		}
	}
}

int bl_ioctl_send(int fd, int parent_fd, uint32_t version, uint64_t max_commands,
		  uint8_t **out, size_t *len)
{
	struct btrfs_ioctl_send_args args;
	uint64_t parent_root = 0;
	int r = bl_check_btrfs(fd);
	if (r == 0 && parent_fd >= 0)
		r = bl_ioctl_subvolume_id(parent_fd, &parent_root);
	if (r < 0)
		return r;
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	fcntl(p[0], F_SETPIPE_SZ, 1 << 20);	/* fewer wake-ups; a hint */
	/* the stream header, then commands */
	struct pipe_drain d = { .fd = p[0], .max_commands = max_commands, .next = 17 };
	pthread_t thread;
	r = pthread_create(&thread, NULL, drain_pipe, &d);
	if (r != 0) {
		close(p[0]);
		close(p[1]);
		return -r;
	}
	memset(&args, 0, sizeof(args));
	args.send_fd = p[1];
	args.parent_root = parent_root;
	args.flags = BTRFS_SEND_FLAG_NO_FILE_DATA;
	if (version) {
		args.flags |= BTRFS_SEND_FLAG_VERSION;
		args.version = version;
	}
	/* a send cut short writes to a closed pipe: SIGPIPE, for this thread,
	 * held back and taken here instead of ending the process */
	sigset_t pipe_set, old_mask, pending;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	sigpending(&pending);
	bool was_pending = sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
	r = ioctl(fd, BTRFS_IOC_SEND, &args) < 0 ? -errno : 0;
	close(p[1]);	/* the drain sees the end */
	pthread_join(thread, NULL);
	if (d.fd >= 0)
		close(d.fd);
	sigpending(&pending);
	if (!was_pending && sigismember(&pending, SIGPIPE)) {
		const struct timespec zero = { 0, 0 };
		sigtimedwait(&pipe_set, NULL, &zero);
	}
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	if (d.error == -ECANCELED)
		r = 0;	/* the EPIPE was ours */
	if (r == 0)
		r = d.error;
	if (r < 0) {
		free(d.buf);
		return r;
	}
	*out = d.buf;
	*len = d.len;
	return 0;
}

void bl_strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Room for the paths of one inode: the kernel's limit for this ioctl. */
#define INO_PATHS_BUF 65536

int bl_ioctl_ino_paths(int fd, uint64_t ino, char ***out, size_t *n)
{
	struct btrfs_ioctl_ino_path_args args;
	struct btrfs_data_container *c = calloc(1, INO_PATHS_BUF);
	if (!c)
		return -ENOMEM;
	memset(&args, 0, sizeof(args));
	args.inum = ino;
	args.size = INO_PATHS_BUF;
	args.fspath = (uint64_t)(uintptr_t)c;
	if (ioctl(fd, BTRFS_IOC_INO_PATHS, &args) < 0) {
		int r = -errno;
		free(c);
		return r;
	}
	if (c->elem_missed) {
		free(c);
		return -E2BIG;	/* more links than fit: the caller walks */
	}
	char **v = calloc(c->elem_cnt ? c->elem_cnt : 1, sizeof(*v));
	int r = v ? 0 : -ENOMEM;
	size_t i = 0;
	for (; r == 0 && i < c->elem_cnt; i++) {
		/* offsets from the start of val[] */
		uint64_t off = c->val[i];
		if (off >= INO_PATHS_BUF - offsetof(struct btrfs_data_container, val)) {
			r = -EIO;
			break;
		}
		const char *s = (const char *)c->val + off;
		size_t max = INO_PATHS_BUF - offsetof(struct btrfs_data_container, val) - off;
		v[i] = strndup(s, strnlen(s, max));
		if (!v[i])
			r = -ENOMEM;
	}
	if (r < 0) {
		bl_strv_free(v, i);
		free(c);
		return r;
	}
	*out = v;
	*n = c->elem_cnt;
	free(c);
	return 0;
}

/* Whether the subvolume fd is in has an item with objectid >= from (and
 * <= BTRFS_LAST_FREE_OBJECTID): 1 with the first such objectid, 0, or a
 * negative errno. */
static int first_object_from(int fd, uint64_t from, uint64_t *found)
{
	struct btrfs_ioctl_search_args args;
	memset(&args, 0, sizeof(args));
	args.key.tree_id = 0;	/* fd's subvolume */
	args.key.min_objectid = from;
	args.key.max_objectid = BTRFS_LAST_FREE_OBJECTID;
	args.key.max_type = (uint32_t)-1;
	args.key.max_offset = (uint64_t)-1;
	args.key.max_transid = (uint64_t)-1;
	args.key.nr_items = 1;
	if (ioctl(fd, BTRFS_IOC_TREE_SEARCH, &args) < 0)
		return -errno;
	if (args.key.nr_items < 1)
		return 0;
	const struct btrfs_ioctl_search_header *sh = (const void *)args.buf;
	*found = sh->objectid;
	return 1;
}

int bl_ioctl_highest_inode(int fd, uint64_t *ino)
{
	/* inode numbers are handed out in order: the highest one bounds how
	 * many the subvolume holds (256 is its root directory) */
	uint64_t lo = BTRFS_FIRST_FREE_OBJECTID, hi = BTRFS_LAST_FREE_OBJECTID, found;
	/* doubling steps first: a layer holds far fewer than 2^64 inodes */
	for (uint64_t step = 1024; step < (UINT64_C(1) << 62); step *= 2) {
		int r = first_object_from(fd, lo + step, &found);
		if (r < 0)
			return r;
		if (!r) {
			hi = lo + step;
			break;
		}
		lo = found;
	}
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;
		int r = first_object_from(fd, mid, &found);
		if (r < 0)
			return r;
		if (r)
			lo = found;
		else
			hi = mid;
	}
	*ino = lo;
	return 0;
}

/* Room for one batch of a tree search: some 1,500 items of a layer. */
#define CHANGED_SEARCH_BUF (128 * 1024)

int bl_ioctl_count_changed_inodes(int fd, uint64_t since, uint64_t max, uint64_t *count)
{
	/* zeroed whole: what the kernel writes in it, memcheck cannot see */
	struct btrfs_ioctl_search_args_v2 *args = calloc(1, sizeof(*args) + CHANGED_SEARCH_BUF);
	if (!args)
		return -ENOMEM;
	args->key.tree_id = 0;	/* fd's subvolume */
	args->key.min_objectid = BTRFS_FIRST_FREE_OBJECTID;
	args->key.max_objectid = BTRFS_LAST_FREE_OBJECTID;
	args->key.max_type = (uint32_t)-1;
	args->key.max_offset = (uint64_t)-1;
	/* the kernel skips every node and leaf older than this: the search
	 * costs what changed, not what the subvolume holds */
	args->key.min_transid = since + 1;
	args->key.max_transid = (uint64_t)-1;
	uint64_t n = 0;
	int r = 0;
	for (;;) {
		args->key.nr_items = (uint32_t)-1;
		args->buf_size = CHANGED_SEARCH_BUF;
		if (ioctl(fd, BTRFS_IOC_TREE_SEARCH_V2, args) < 0) {
			r = -errno;
			break;
		}
		if (!args->key.nr_items)
			break;
		size_t off = 0;
		struct btrfs_ioctl_search_header sh;
		for (uint32_t i = 0; i < args->key.nr_items; i++) {
			memcpy(&sh, (const char *)args->buf + off, sizeof(sh));
			off += sizeof(sh);
			/* a leaf that changed holds unchanged items too: the
			 * inode item's own transid says whether it changed */
			if (sh.type == BTRFS_INODE_ITEM_KEY &&
			    sh.len >= sizeof(struct btrfs_inode_item)) {
				struct btrfs_inode_item item;
				memcpy(&item, (const char *)args->buf + off, sizeof(item));
				if (le64toh(item.transid) > since && ++n >= max)
					goto done;
			}
			off += sh.len;
		}
		/* on from the key after the last one */
		args->key.min_objectid = sh.objectid;
		args->key.min_type = sh.type;
		args->key.min_offset = sh.offset;
		if (args->key.min_offset < (uint64_t)-1) {
			args->key.min_offset++;
		} else if (args->key.min_type < 255) {
			args->key.min_offset = 0;
			args->key.min_type++;
		} else if (args->key.min_objectid < BTRFS_LAST_FREE_OBJECTID) {
			args->key.min_offset = 0;
			args->key.min_type = 0;
			args->key.min_objectid++;
		} else {
			break;
		}
	}
done:
	free(args);
	*count = n;
	return r;
}
