/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The kernel's btrfs interface.  libbtrfsutil does the subvolume work; raw
 * ioctls cover what it lacks (filesystem uuid, quotas).  No other
 * module issues a btrfs ioctl.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <endian.h>
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

bool bl_stat_is_subvolume(const struct stat *st)
{
	return S_ISDIR(st->st_mode) && st->st_ino == BTRFS_FIRST_FREE_OBJECTID;
}

bool bl_statx_is_subvolume(const struct statx *stx)
{
	return S_ISDIR(stx->stx_mode) && stx->stx_ino == BTRFS_FIRST_FREE_OBJECTID;
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
	return UTIL(btrfs_util_delete_subvolume_by_id_fd(fd, id));
}

int bl_ioctl_subvolume_info(int fd, struct bl_subvolume_info *out)
{
	struct btrfs_util_subvolume_info info;
	int r = UTIL(btrfs_util_subvolume_info_fd(fd, 0, &info));
	if (r < 0)
		return r;
	out->id = info.id;
	memcpy(out->uuid, info.uuid, sizeof(out->uuid));
	memcpy(out->parent_uuid, info.parent_uuid, sizeof(out->parent_uuid));
	out->read_only = info.flags & BTRFS_ROOT_SUBVOL_RDONLY;
	out->created = info.otransid;
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

int bl_ioctl_nested_subvolumes(int fd, struct bl_subvolume **out, size_t *n)
{
	struct btrfs_util_subvolume_iterator *iter;
	struct bl_subvolume *list = NULL;
	size_t count = 0, cap = 0;

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
		if (r < 0)
			goto fail;
		if (count == cap) {
			size_t ncap = cap ? 2 * cap : 8;
			struct bl_subvolume *grown = reallocarray(list, ncap, sizeof(*list));
			if (!grown) {
				free(path);
				r = -ENOMEM;
				goto fail;
			}
			list = grown;
			cap = ncap;
		}
		list[count++] = (struct bl_subvolume){
			.id = info.id,
			.parent_id = info.parent_id,
			.read_only = info.flags & BTRFS_ROOT_SUBVOL_RDONLY,
			.path = path,
		};
	}
	btrfs_util_destroy_subvolume_iterator(iter);
	*out = list;
	*n = count;
	return 0;
fail:
	btrfs_util_destroy_subvolume_iterator(iter);
	bl_subvolumes_free(list, count);
	return r;
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
	struct btrfs_ioctl_qgroup_limit_args args;
	memset(&args, 0, sizeof(args));
	args.qgroupid = 0;	/* the subvolume fd is in */
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
