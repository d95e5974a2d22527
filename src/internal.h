/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Declarations shared by the library's modules; nothing here is exported. */
#ifndef BTRFSLAYER_INTERNAL_H
#define BTRFSLAYER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "btrfslayer.h"

#define BL_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* Names under subvolumes/ that start with these are the library's own: a
 * layer being built, and a layer being removed.  Ids never start with '.'. */
#define BL_TMP_PREFIX ".tmp-"
#define BL_TOMB_PREFIX ".tomb-"

struct btrfslayer {
	char *home;		/* absolute path, for messages and get() */
	int home_fd;		/* O_DIRECTORY|O_NOFOLLOW, opened once */
	int subvolumes_fd;	/* HOME/subvolumes, likewise */
	uint64_t min_space;	/* btrfs.min_space; 0 when not given */
	uint32_t root_uid;	/* host ids of container root 0:0 */
	uint32_t root_gid;
};

/* ---- error.c -------------------------------------------------------------- */

/* Set *err (when err is not NULL) to "<formatted>: <strerror(code)>" and
 * return code, which must be negative. */
int bl_fail(btrfslayer_error **err, int code, const char *fmt, ...) BL_PRINTF(3, 4);
/* Like bl_fail() but the message is used as given, with no reason appended. */
int bl_fail_msg(btrfslayer_error **err, int code, const char *fmt, ...) BL_PRINTF(3, 4);
static inline void bl_clear_error(btrfslayer_error **err)
{
	if (err)
		*err = NULL;
}

/* Write s into buf (size len) as a double-quoted C-style literal safe to put
 * in a message: non-printable bytes as \xNN, cut with "..." when too long.
 * Returns buf. */
char *bl_quote(char *buf, size_t len, const char *s);
#define BL_QUOTE_MAX 96	/* a good buffer size for bl_quote() */

/* ---- log.c ---------------------------------------------------------------- */

void bl_log(int level, const char *fmt, ...) BL_PRINTF(2, 3);

/* ---- id.c ----------------------------------------------------------------- */

/* 0 if id is a valid layer id, else -EINVAL with a message that says why.
 * `what` names the argument in that message ("layer id", "parent id"). */
int bl_id_check(const char *id, const char *what, btrfslayer_error **err);

/* ---- units.c -------------------------------------------------------------- */

/* Parse a size in Docker's syntax (go-units RAMInBytes): a decimal number,
 * one optional space, an optional unit k/m/g/t/p in any case (binary,
 * k = 1024), an optional 'i', an optional 'b'.  A fraction is allowed and the
 * result is truncated ("1.5k" = 1536).  -EINVAL when malformed, -ERANGE when
 * the value does not fit in 64 bits. */
int bl_parse_size(const char *s, uint64_t *out);

/* ---- quotafile.c --------------------------------------------------------- */

/* Room for a quota file's content: 20 digits of a uint64_t, a newline, NUL. */
#define BL_QUOTA_FILE_MAX 24

/* Parse a quota file's content (len bytes, not NUL-terminated): decimal
 * digits only, optionally one trailing newline, not 0.  -EINVAL when
 * malformed, -ERANGE past 64 bits; *bytes is untouched then. */
int bl_quota_file_parse(const char *buf, size_t len, uint64_t *bytes);
/* The content written for a limit; returns its length. */
int bl_quota_file_format(uint64_t bytes, char buf[BL_QUOTA_FILE_MAX]);

/* ---- options.c ------------------------------------------------------------ */

/* Longest "key=value" string accepted, in bytes. */
#define BL_OPTION_MAX 4096

struct bl_option {
	char *key;	/* whitespace-trimmed, lower-cased, not empty */
	char *value;	/* whitespace-trimmed, not empty */
};

/* Split n "key=value" strings at their first '='.  A missing '=', an empty
 * key or value, a string over BL_OPTION_MAX, a NULL entry or a key given
 * twice (after lower-casing) is -EINVAL with a message naming the string;
 * `what` names the list ("option", "storage option").  On success *out holds
 * n entries, freed with bl_options_free(). */
int bl_options_parse(const char *const *opts, size_t n, const char *what,
		     struct bl_option **out, btrfslayer_error **err);
void bl_options_free(struct bl_option *opts, size_t n);

/* ---- list.c --------------------------------------------------------------- */

btrfslayer_list *bl_list_new(void);
/* Append a copy of key and value; -ENOMEM on failure. */
int bl_list_add(btrfslayer_list *list, const char *key, const char *value);
int bl_list_addf(btrfslayer_list *list, const char *key, const char *fmt, ...) BL_PRINTF(3, 4);
void bl_list_sort_by_key(btrfslayer_list *list);

/* ---- idmap.c -------------------------------------------------------------- */

/* Check a user-namespace map (container id 0 mapped, no overlap on either
 * side, no 32-bit overflow) and find the host id of container id 0.  `what`
 * is "uid map" or "gid map".  An empty map means no remapping: host id 0. */
int bl_idmap_root(const btrfslayer_idmap *map, size_t n, const char *what,
		  uint32_t *root, btrfslayer_error **err);

/* ---- label.c -------------------------------------------------------------- */

/* Check an SELinux context: with libselinux when SELinux is enabled, else its
 * user:role:type[:level] shape.  -EINVAL with a message when invalid. */
int bl_label_check(const char *label, btrfslayer_error **err);
/* Set security.selinux on the directory fd; `path` is for messages. */
int bl_label_apply(int fd, const char *label, const char *path,
		   btrfslayer_error **err);

/* ---- ioctl.c: the only module that speaks to btrfs ---------------------- */
/* Every function returns 0 (or what it says) or a negative errno;
 * -BTRFSLAYER_ENOTBTRFS when the fd is not on btrfs. */

/* 0 if fd is on btrfs (statfs magic), else -BTRFSLAYER_ENOTBTRFS. */
int bl_check_btrfs(int fd);
/* The filesystem's uuid (BTRFS_IOC_FS_INFO). */
int bl_ioctl_fs_uuid(int fd, uint8_t uuid[16]);
struct stat;
/* Whether an fstatat() result is a subvolume root (no fd needed). */
bool bl_stat_is_subvolume(const struct stat *st);
/* 1 if fd is the root of a subvolume, 0 if not. */
int bl_ioctl_is_subvolume(int fd);
int bl_ioctl_subvolume_id(int fd, uint64_t *id);
int bl_ioctl_get_read_only(int fd, bool *read_only);
int bl_ioctl_set_read_only(int fd, bool read_only);
/* Make subvolume `name` in directory dirfd: empty, or a snapshot of the
 * subvolume source_fd (read-only from birth when asked).  `name` must be one
 * path component that fits the ioctl's buffer, else -EINVAL/-ENAMETOOLONG. */
int bl_ioctl_subvolume_create(int dirfd, const char *name);
int bl_ioctl_snapshot(int source_fd, int dirfd, const char *name, bool read_only);
/* Delete subvolume `name` of directory dirfd, or subvolume `id` of fd's
 * filesystem: neither resolves a path inside a layer. */
int bl_ioctl_destroy(int dirfd, const char *name);
int bl_ioctl_destroy_by_id(int fd, uint64_t id);

struct bl_subvolume {
	uint64_t id;
	uint64_t parent_id;	/* the subvolume it is nested in */
	bool read_only;
	char *path;		/* relative to the top subvolume */
};
/* The subvolumes nested (at any depth) in the subvolume fd is the root of,
 * children before their parents, from the root tree's refs: no file of the
 * layer is read.  Free with bl_subvolumes_free(). */
int bl_ioctl_nested_subvolumes(int fd, struct bl_subvolume **out, size_t *n);
void bl_subvolumes_free(struct bl_subvolume *subvolumes, size_t n);

enum bl_quota_mode {
	BL_QUOTA_OFF,
	BL_QUOTA_QGROUP,	/* full qgroup accounting */
	BL_QUOTA_SIMPLE,	/* simple quotas (kernel >= 6.7) */
};
/* Quota mode, and whether the kernel marked its numbers inconsistent. */
int bl_ioctl_quota_status(int fd, enum bl_quota_mode *mode, bool *inconsistent);

/* ---- tree.c --------------------------------------------------------------- */

/* Delete subvolume `name` of directory dirfd, whose root fd is open, and every
 * subvolume nested in it, read-only ones included.  `path` is for messages.
 * Everything, the top included, is deleted by subvolume id from fd, so a
 * subvolume swapped in under `name` meanwhile is never the one deleted.
 * On failure a read-only top stays read-only. */
int bl_tree_destroy(int dirfd, const char *name, int fd, const char *path,
		    btrfslayer_error **err);

/* ---- beneath.c: names directly below a directory fd -------------------- */

/* 0 if name is one path component (not empty, ".", ".." and without '/')
 * of at most NAME_MAX bytes; -EINVAL or -ENAMETOOLONG otherwise. */
int bl_check_component(const char *name);
/* Open directory `name` of dirfd without following a symlink and without
 * crossing a mount point: an fd, or -ELOOP (a symlink), -ENOTDIR (not a
 * directory), -EXDEV (a mount point), -ENOENT, ... */
int bl_open_dir_beneath(int dirfd, const char *name);
/* Likewise for a relative path of several components: it may not climb
 * out with "..", follow a symlink or cross a mount point anywhere. */
int bl_open_path_beneath(int dirfd, const char *path);
/* 1 if `name` in dirfd is a layer (a subvolume root on dirfd's own mount,
 * not a symlink), 0 if it is something else, a negative errno (-ENOENT when
 * missing) on failure. */
int bl_lookup_layer(int dirfd, const char *name);
/* 0 if resolving `path` now reaches the file fd holds; -ESTALE if it reaches
 * something else or nothing (a component was moved, replaced or symlinked). */
int bl_path_leads_to(const char *path, int fd);

#endif /* BTRFSLAYER_INTERNAL_H */
