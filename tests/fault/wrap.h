/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fault points: the library's objects are linked with -Wl,--wrap=SYMBOL for
 * each of these (CMakeLists.txt lists the same names), so each call they
 * make across an object boundary goes through __wrap_SYMBOL (wrap.c), which
 * counts it and, when armed for it, fails it instead of making it.
 */
#ifndef FAULT_WRAP_H
#define FAULT_WRAP_H

#include <stdbool.h>
#include <stddef.h>

/* X(point): libc calls first, then the library's btrfs layer (ioctl.c,
 * label.c).  "openat2" is syscall(SYS_openat2, ...), how beneath.c opens. */
#define FAULT_POINTS(X)                                                          \
	X(openat) X(open) X(openat2) X(renameat) X(renameat2) X(unlinkat)        \
	X(linkat) X(mkdirat) X(fsync) X(fdatasync) X(syncfs) X(fchown)           \
	X(fchmod) X(fstat) X(fstatat) X(stat) X(statx) X(read) X(write)          \
	X(pwrite) X(ftruncate) X(fcntl) X(fdopendir) X(readdir) X(getrandom)     \
	X(fsetxattr) X(fgetxattr) X(fremovexattr) X(flistxattr)                  \
	X(bl_check_btrfs) X(bl_ioctl_fs_uuid) X(bl_ioctl_is_subvolume)           \
	X(bl_ioctl_subvolume_id) X(bl_ioctl_get_read_only)                       \
	X(bl_ioctl_set_read_only) X(bl_ioctl_subvolume_create)                   \
	X(bl_ioctl_snapshot) X(bl_ioctl_destroy) X(bl_ioctl_destroy_by_id)       \
	X(bl_ioctl_subvolume_exists) X(bl_ioctl_nested_subvolumes)               \
	X(bl_ioctl_quota_status) X(bl_kernel_has_simple_quota)                   \
	X(bl_ioctl_quota_enable) X(bl_ioctl_qgroup_limit)                        \
	X(bl_ioctl_qgroup_create) X(bl_ioctl_qgroup_destroy)                     \
	X(bl_ioctl_qgroup_info) X(bl_ioctl_subvolume_info)                       \
	X(bl_ioctl_commit) X(bl_ioctl_generation) X(bl_ioctl_child_subvolume)           \
	X(bl_ioctl_has_nested) X(bl_ioctl_subvolumes_by_uuid)                    \
	X(bl_ioctl_subvolume_backref)                                            \
	X(bl_ioctl_child_subvolumes) X(bl_ioctl_qgroup_limit_id)                 \
	X(bl_ioctl_qgroup_assign) X(bl_ioctl_send) X(bl_ioctl_highest_inode)     \
	X(bl_ioctl_ino_paths) X(bl_ioctl_count_changed_inodes)                   \
	X(bl_ioctl_qgroup_max_referenced) X(bl_ioctl_settle_data)                \
	X(bl_label_apply)

enum fault_point {
#define FAULT_ENUM(name) FP_##name,
	FAULT_POINTS(FAULT_ENUM)
#undef FAULT_ENUM
	FP_COUNT
};

extern const char *const fault_point_names[FP_COUNT];

/* A call to fail: call number k (1-based) of `point`. */
struct fault_target {
	int point;
	unsigned k;
};
#define FAULT_TARGETS_MAX 2

/* From now on, on this thread only, count every call of every point and
 * fail the n calls targets[] name (n may be 0: only count). */
void fault_arm(const struct fault_target *targets, size_t n);
/* Stop counting; how many of the armed faults fired. */
unsigned fault_disarm(void);
/* Calls of `point` made while last armed. */
unsigned fault_calls(enum fault_point point);

/* The calls made while last armed, in order (up to a bound): point and
 * ordinal of each, and whether it was the one failed. */
struct fault_call {
	unsigned short point;
	unsigned short ordinal;
	bool failed;
};
size_t fault_trace(const struct fault_call **calls);

#endif
