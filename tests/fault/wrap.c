/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The --wrap side of the fault test.  Every __wrap_X passes the call on to
 * __real_X unless the test thread armed a fault for exactly this call; then
 * it fails the way X fails (-1 and errno EIO for libc, -EIO for the
 * library's btrfs functions) without doing anything.
 *
 * Each __real_X and __wrap_X is declared with __typeof__(X): a wrapper whose
 * signature no longer matches the library's declaration does not compile.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "internal.h"
#include "wrap.h"

#define TRACE_MAX 1024

const char *const fault_point_names[FP_COUNT] = {
#define FAULT_NAME(name) [FP_##name] = #name,
	FAULT_POINTS(FAULT_NAME)
#undef FAULT_NAME
};

/* Thread-local: a thread the library might start never counts. */
static __thread bool armed;
static struct fault_target targets[FAULT_TARGETS_MAX];
static size_t n_targets;
static unsigned fired;
static unsigned counts[FP_COUNT];
static struct fault_call trace[TRACE_MAX];
static size_t n_trace;

void fault_arm(const struct fault_target *t, size_t n)
{
	for (size_t i = 0; i < FP_COUNT; i++)
		counts[i] = 0;
	n_trace = 0;
	n_targets = 0;
	for (size_t i = 0; i < n && i < FAULT_TARGETS_MAX; i++)
		targets[n_targets++] = t[i];
	fired = 0;
	armed = true;
}

unsigned fault_disarm(void)
{
	armed = false;
	return fired;
}

unsigned fault_calls(enum fault_point point)
{
	return counts[point];
}

size_t fault_trace(const struct fault_call **calls)
{
	*calls = trace;
	return n_trace;
}

/* Count a call of `point`; true when this is the one to fail. */
static bool hit(enum fault_point point)
{
	if (!armed)
		return false;
	unsigned n = ++counts[point];
	bool fail = false;
	for (size_t i = 0; i < n_targets && !fail; i++)
		fail = targets[i].point == (int)point && targets[i].k == n;
	fired += fail;
	if (n_trace < TRACE_MAX)
		trace[n_trace++] = (struct fault_call){
			.point = (unsigned short)point,
			.ordinal = (unsigned short)n,
			.failed = fail,
		};
	return fail;
}

#define LIBC_FAULT(point)                                                        \
	do {                                                                     \
		if (hit(FP_##point)) {                                           \
			errno = EIO;                                             \
			return -1;                                               \
		}                                                                \
	} while (0)
#define BL_FAULT(point)                                                          \
	do {                                                                     \
		if (hit(FP_##point))                                             \
			return -EIO;                                             \
	} while (0)
#define DECLARE(sym) __typeof__(sym) __real_##sym, __wrap_##sym

/* ---- libc ------------------------------------------------------------------ */

/* open(2)'s mode argument is there only when the flags create a file. */
static bool has_mode(int flags)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
}

DECLARE(openat);
int __wrap_openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	if (has_mode(flags)) {
		va_list ap;
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	LIBC_FAULT(openat);
	return __real_openat(dirfd, path, flags, mode);
}

DECLARE(open);
int __wrap_open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	if (has_mode(flags)) {
		va_list ap;
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	LIBC_FAULT(open);
	return __real_open(path, flags, mode);
}

/* beneath.c reaches openat2 through syscall(); only that one is a point. */
DECLARE(syscall);
long __wrap_syscall(long number, ...)
{
	long a[6];
	va_list ap;
	va_start(ap, number);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (number == SYS_openat2)
		LIBC_FAULT(openat2);
	return __real_syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

DECLARE(fcntl);
int __wrap_fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);	/* an int or a pointer: one register */
	va_end(ap);
	LIBC_FAULT(fcntl);
	return __real_fcntl(fd, cmd, arg);
}

DECLARE(renameat);
int __wrap_renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath)
{
	LIBC_FAULT(renameat);
	return __real_renameat(olddirfd, oldpath, newdirfd, newpath);
}

DECLARE(renameat2);
int __wrap_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
		     unsigned int flags)
{
	LIBC_FAULT(renameat2);
	return __real_renameat2(olddirfd, oldpath, newdirfd, newpath, flags);
}

DECLARE(unlinkat);
int __wrap_unlinkat(int dirfd, const char *path, int flags)
{
	LIBC_FAULT(unlinkat);
	return __real_unlinkat(dirfd, path, flags);
}

DECLARE(linkat);
int __wrap_linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
		  int flags)
{
	LIBC_FAULT(linkat);
	return __real_linkat(olddirfd, oldpath, newdirfd, newpath, flags);
}

DECLARE(mkdirat);
int __wrap_mkdirat(int dirfd, const char *path, mode_t mode)
{
	LIBC_FAULT(mkdirat);
	return __real_mkdirat(dirfd, path, mode);
}

DECLARE(fsync);
int __wrap_fsync(int fd)
{
	LIBC_FAULT(fsync);
	return __real_fsync(fd);
}

DECLARE(fdatasync);
int __wrap_fdatasync(int fd)
{
	LIBC_FAULT(fdatasync);
	return __real_fdatasync(fd);
}

DECLARE(syncfs);
int __wrap_syncfs(int fd)
{
	LIBC_FAULT(syncfs);
	return __real_syncfs(fd);
}

DECLARE(fchown);
int __wrap_fchown(int fd, uid_t uid, gid_t gid)
{
	LIBC_FAULT(fchown);
	return __real_fchown(fd, uid, gid);
}

DECLARE(fchmod);
int __wrap_fchmod(int fd, mode_t mode)
{
	LIBC_FAULT(fchmod);
	return __real_fchmod(fd, mode);
}

DECLARE(fstat);
int __wrap_fstat(int fd, struct stat *st)
{
	LIBC_FAULT(fstat);
	return __real_fstat(fd, st);
}

DECLARE(fstatat);
int __wrap_fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
	LIBC_FAULT(fstatat);
	return __real_fstatat(dirfd, path, st, flags);
}

DECLARE(stat);
int __wrap_stat(const char *path, struct stat *st)
{
	LIBC_FAULT(stat);
	return __real_stat(path, st);
}

DECLARE(statx);
int __wrap_statx(int dirfd, const char *path, int flags, unsigned int mask,
		 struct statx *stx)
{
	LIBC_FAULT(statx);
	return __real_statx(dirfd, path, flags, mask, stx);
}

DECLARE(read);
ssize_t __wrap_read(int fd, void *buf, size_t len)
{
	LIBC_FAULT(read);
	return __real_read(fd, buf, len);
}

DECLARE(write);
ssize_t __wrap_write(int fd, const void *buf, size_t len)
{
	LIBC_FAULT(write);
	return __real_write(fd, buf, len);
}

DECLARE(pwrite);
ssize_t __wrap_pwrite(int fd, const void *buf, size_t len, off_t offset)
{
	LIBC_FAULT(pwrite);
	return __real_pwrite(fd, buf, len, offset);
}

DECLARE(ftruncate);
int __wrap_ftruncate(int fd, off_t len)
{
	LIBC_FAULT(ftruncate);
	return __real_ftruncate(fd, len);
}

DECLARE(getrandom);
ssize_t __wrap_getrandom(void *buf, size_t len, unsigned int flags)
{
	LIBC_FAULT(getrandom);
	return __real_getrandom(buf, len, flags);
}

DECLARE(fsetxattr);
int __wrap_fsetxattr(int fd, const char *name, const void *value, size_t size, int flags)
{
	LIBC_FAULT(fsetxattr);
	return __real_fsetxattr(fd, name, value, size, flags);
}

DECLARE(fgetxattr);
ssize_t __wrap_fgetxattr(int fd, const char *name, void *value, size_t size)
{
	LIBC_FAULT(fgetxattr);
	return __real_fgetxattr(fd, name, value, size);
}

DECLARE(fremovexattr);
int __wrap_fremovexattr(int fd, const char *name)
{
	LIBC_FAULT(fremovexattr);
	return __real_fremovexattr(fd, name);
}

DECLARE(flistxattr);
ssize_t __wrap_flistxattr(int fd, char *list, size_t size)
{
	LIBC_FAULT(flistxattr);
	return __real_flistxattr(fd, list, size);
}

DECLARE(fdopendir);
DIR *__wrap_fdopendir(int fd)
{
	if (hit(FP_fdopendir)) {
		errno = EIO;
		return NULL;	/* like a real failure: fd stays the caller's */
	}
	return __real_fdopendir(fd);
}

DECLARE(readdir);
struct dirent *__wrap_readdir(DIR *dir)
{
	if (hit(FP_readdir)) {
		errno = EIO;
		return NULL;
	}
	return __real_readdir(dir);
}

/* ---- the library's btrfs layer ------------------------------------------- */

DECLARE(bl_check_btrfs);
int __wrap_bl_check_btrfs(int fd)
{
	BL_FAULT(bl_check_btrfs);
	return __real_bl_check_btrfs(fd);
}

DECLARE(bl_ioctl_fs_uuid);
int __wrap_bl_ioctl_fs_uuid(int fd, uint8_t uuid[16])
{
	BL_FAULT(bl_ioctl_fs_uuid);
	return __real_bl_ioctl_fs_uuid(fd, uuid);
}

DECLARE(bl_ioctl_is_subvolume);
int __wrap_bl_ioctl_is_subvolume(int fd)
{
	BL_FAULT(bl_ioctl_is_subvolume);
	return __real_bl_ioctl_is_subvolume(fd);
}

DECLARE(bl_ioctl_subvolume_id);
int __wrap_bl_ioctl_subvolume_id(int fd, uint64_t *id)
{
	BL_FAULT(bl_ioctl_subvolume_id);
	return __real_bl_ioctl_subvolume_id(fd, id);
}

DECLARE(bl_ioctl_get_read_only);
int __wrap_bl_ioctl_get_read_only(int fd, bool *read_only)
{
	BL_FAULT(bl_ioctl_get_read_only);
	return __real_bl_ioctl_get_read_only(fd, read_only);
}

DECLARE(bl_ioctl_set_read_only);
int __wrap_bl_ioctl_set_read_only(int fd, bool read_only)
{
	BL_FAULT(bl_ioctl_set_read_only);
	return __real_bl_ioctl_set_read_only(fd, read_only);
}

DECLARE(bl_ioctl_subvolume_create);
int __wrap_bl_ioctl_subvolume_create(int dirfd, const char *name)
{
	BL_FAULT(bl_ioctl_subvolume_create);
	return __real_bl_ioctl_subvolume_create(dirfd, name);
}

DECLARE(bl_ioctl_snapshot);
int __wrap_bl_ioctl_snapshot(int source_fd, int dirfd, const char *name, bool read_only)
{
	BL_FAULT(bl_ioctl_snapshot);
	return __real_bl_ioctl_snapshot(source_fd, dirfd, name, read_only);
}

DECLARE(bl_ioctl_destroy);
int __wrap_bl_ioctl_destroy(int dirfd, const char *name)
{
	BL_FAULT(bl_ioctl_destroy);
	return __real_bl_ioctl_destroy(dirfd, name);
}

DECLARE(bl_ioctl_destroy_by_id);
int __wrap_bl_ioctl_destroy_by_id(int fd, uint64_t id)
{
	BL_FAULT(bl_ioctl_destroy_by_id);
	return __real_bl_ioctl_destroy_by_id(fd, id);
}

DECLARE(bl_ioctl_subvolume_exists);
int __wrap_bl_ioctl_subvolume_exists(int fd, uint64_t id)
{
	BL_FAULT(bl_ioctl_subvolume_exists);
	return __real_bl_ioctl_subvolume_exists(fd, id);
}

DECLARE(bl_ioctl_nested_subvolumes);
int __wrap_bl_ioctl_nested_subvolumes(int fd, struct bl_subvolume **out, size_t *n)
{
	BL_FAULT(bl_ioctl_nested_subvolumes);
	return __real_bl_ioctl_nested_subvolumes(fd, out, n);
}

DECLARE(bl_ioctl_quota_status);
int __wrap_bl_ioctl_quota_status(int fd, enum bl_quota_mode *mode, bool *inconsistent)
{
	BL_FAULT(bl_ioctl_quota_status);
	return __real_bl_ioctl_quota_status(fd, mode, inconsistent);
}

/* Not an I/O step: its "failure" is a kernel without simple quotas. */
DECLARE(bl_kernel_has_simple_quota);
bool __wrap_bl_kernel_has_simple_quota(void)
{
	if (hit(FP_bl_kernel_has_simple_quota))
		return false;
	return __real_bl_kernel_has_simple_quota();
}

DECLARE(bl_ioctl_quota_enable);
int __wrap_bl_ioctl_quota_enable(int fd, enum bl_quota_mode mode)
{
	BL_FAULT(bl_ioctl_quota_enable);
	return __real_bl_ioctl_quota_enable(fd, mode);
}

DECLARE(bl_ioctl_qgroup_limit);
int __wrap_bl_ioctl_qgroup_limit(int fd, uint64_t max_referenced)
{
	BL_FAULT(bl_ioctl_qgroup_limit);
	return __real_bl_ioctl_qgroup_limit(fd, max_referenced);
}

DECLARE(bl_ioctl_qgroup_create);
int __wrap_bl_ioctl_qgroup_create(int fd, uint64_t qgroupid)
{
	BL_FAULT(bl_ioctl_qgroup_create);
	return __real_bl_ioctl_qgroup_create(fd, qgroupid);
}

DECLARE(bl_ioctl_qgroup_destroy);
int __wrap_bl_ioctl_qgroup_destroy(int fd, uint64_t qgroupid)
{
	BL_FAULT(bl_ioctl_qgroup_destroy);
	return __real_bl_ioctl_qgroup_destroy(fd, qgroupid);
}

DECLARE(bl_ioctl_qgroup_info);
int __wrap_bl_ioctl_qgroup_info(int fd, uint64_t qgroupid, struct bl_qgroup *out)
{
	BL_FAULT(bl_ioctl_qgroup_info);
	return __real_bl_ioctl_qgroup_info(fd, qgroupid, out);
}

DECLARE(bl_ioctl_qgroup_max_referenced);
int __wrap_bl_ioctl_qgroup_max_referenced(int fd, uint64_t qgroupid, uint64_t *max_referenced)
{
	BL_FAULT(bl_ioctl_qgroup_max_referenced);
	return __real_bl_ioctl_qgroup_max_referenced(fd, qgroupid, max_referenced);
}

DECLARE(bl_ioctl_settle_data);
int __wrap_bl_ioctl_settle_data(int fd)
{
	BL_FAULT(bl_ioctl_settle_data);
	return __real_bl_ioctl_settle_data(fd);
}

DECLARE(bl_ioctl_subvolume_info);
int __wrap_bl_ioctl_subvolume_info(int fd, struct bl_subvolume_info *out)
{
	BL_FAULT(bl_ioctl_subvolume_info);
	return __real_bl_ioctl_subvolume_info(fd, out);
}

DECLARE(bl_ioctl_commit);
int __wrap_bl_ioctl_commit(int fd)
{
	BL_FAULT(bl_ioctl_commit);
	return __real_bl_ioctl_commit(fd);
}

DECLARE(bl_ioctl_generation);
int __wrap_bl_ioctl_generation(int fd, uint64_t *generation)
{
	BL_FAULT(bl_ioctl_generation);
	return __real_bl_ioctl_generation(fd, generation);
}

DECLARE(bl_ioctl_child_subvolumes);
int __wrap_bl_ioctl_child_subvolumes(int fd, struct bl_child_subvolume **out, size_t *n)
{
	BL_FAULT(bl_ioctl_child_subvolumes);
	return __real_bl_ioctl_child_subvolumes(fd, out, n);
}

DECLARE(bl_ioctl_qgroup_limit_id);
int __wrap_bl_ioctl_qgroup_limit_id(int fd, uint64_t qgroupid, uint64_t max_referenced)
{
	BL_FAULT(bl_ioctl_qgroup_limit_id);
	return __real_bl_ioctl_qgroup_limit_id(fd, qgroupid, max_referenced);
}

DECLARE(bl_ioctl_qgroup_assign);
int __wrap_bl_ioctl_qgroup_assign(int fd, uint64_t member, uint64_t parent)
{
	BL_FAULT(bl_ioctl_qgroup_assign);
	return __real_bl_ioctl_qgroup_assign(fd, member, parent);
}

DECLARE(bl_ioctl_send);
int __wrap_bl_ioctl_send(int fd, int parent_fd, uint32_t version, uint64_t max_commands,
			 uint8_t **out, size_t *len)
{
	BL_FAULT(bl_ioctl_send);
	return __real_bl_ioctl_send(fd, parent_fd, version, max_commands, out, len);
}

DECLARE(bl_ioctl_highest_inode);
int __wrap_bl_ioctl_highest_inode(int fd, uint64_t *ino)
{
	BL_FAULT(bl_ioctl_highest_inode);
	return __real_bl_ioctl_highest_inode(fd, ino);
}

DECLARE(bl_ioctl_ino_paths);
int __wrap_bl_ioctl_ino_paths(int fd, uint64_t ino, char ***out, size_t *n)
{
	BL_FAULT(bl_ioctl_ino_paths);
	return __real_bl_ioctl_ino_paths(fd, ino, out, n);
}

DECLARE(bl_ioctl_count_changed_inodes);
int __wrap_bl_ioctl_count_changed_inodes(int fd, uint64_t since, uint64_t max, uint64_t *count)
{
	BL_FAULT(bl_ioctl_count_changed_inodes);
	return __real_bl_ioctl_count_changed_inodes(fd, since, max, count);
}

DECLARE(bl_ioctl_child_subvolume);
int __wrap_bl_ioctl_child_subvolume(int dirfd, const char *name, uint64_t *id)
{
	BL_FAULT(bl_ioctl_child_subvolume);
	return __real_bl_ioctl_child_subvolume(dirfd, name, id);
}

DECLARE(bl_ioctl_has_nested);
int __wrap_bl_ioctl_has_nested(int fd)
{
	BL_FAULT(bl_ioctl_has_nested);
	return __real_bl_ioctl_has_nested(fd);
}

DECLARE(bl_ioctl_subvolumes_by_uuid);
int __wrap_bl_ioctl_subvolumes_by_uuid(int fd, const uint8_t uuid[16], uint64_t *ids, size_t max)
{
	BL_FAULT(bl_ioctl_subvolumes_by_uuid);
	return __real_bl_ioctl_subvolumes_by_uuid(fd, uuid, ids, max);
}

DECLARE(bl_ioctl_subvolume_backref);
int __wrap_bl_ioctl_subvolume_backref(int fd, uint64_t id, uint64_t parent_tree, uint64_t *dirid,
				      char *name, size_t size)
{
	BL_FAULT(bl_ioctl_subvolume_backref);
	return __real_bl_ioctl_subvolume_backref(fd, id, parent_tree, dirid, name, size);
}

/* It reports its own failures through err: so does its fault. */
DECLARE(bl_label_apply);
int __wrap_bl_label_apply(int fd, const char *label, const char *path,
			  btrfslayer_error **err)
{
	if (hit(FP_bl_label_apply))
		return bl_fail(err, -EIO, "set SELinux label: %s", path);
	return __real_bl_label_apply(fd, label, path, err);
}
