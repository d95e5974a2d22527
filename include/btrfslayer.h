/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libbtrfslayer — container image and container layers as btrfs subvolumes.
 *
 * A handle owns a home directory on btrfs.  Layer <id> is the subvolume
 * HOME/subvolumes/<id>; a layer made from a parent is a snapshot of the
 * parent's subvolume, so creating it is O(1) and shares all data.
 *
 * Conventions, for every call below:
 * - Return 0 (or a count, or a boolean 1/0 where said) on success and a
 *   negative errno on failure; -BTRFSLAYER_ENOTBTRFS when the home is not on
 *   btrfs, so a runtime can fall through to its next driver.
 * - The last parameter, `err`, may be NULL.  Otherwise *err is set to NULL on
 *   success and to a new error object on failure; free it with
 *   btrfslayer_error_free().  The error travels with the call, not with the
 *   thread, so it is safe from Go (goroutines move between OS threads).
 * - Every argument is checked before anything on disk changes: a call that
 *   fails on its arguments has no side effect.
 * - A handle may be used from many threads at once.
 * - The library never prints; see btrfslayer_set_log_fn().
 */
#ifndef BTRFSLAYER_H
#define BTRFSLAYER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BTRFSLAYER_API __attribute__((visibility("default")))

#define BTRFSLAYER_VERSION_MAJOR 0
#define BTRFSLAYER_VERSION_MINOR 1
#define BTRFSLAYER_VERSION_PATCH 0

/* "Prerequisites not met": home is not on btrfs.  Returned negated.  Above
 * the kernel's largest errno (4095), so it never collides with one. */
#define BTRFSLAYER_ENOTBTRFS 4096

/* Longest layer id, in bytes (one path component). */
#define BTRFSLAYER_ID_MAX 255

/* ---- errors -------------------------------------------------------------- */

typedef struct btrfslayer_error btrfslayer_error;

/* The negative code the failing call returned (-ENOMEM instead, in the rare
 * case where memory for the error object itself ran out). */
BTRFSLAYER_API int btrfslayer_error_code(const btrfslayer_error *err);
/* "<step>: <path>: <reason>"; valid until btrfslayer_error_free(). */
BTRFSLAYER_API const char *btrfslayer_error_message(const btrfslayer_error *err);
/* NULL is a no-op. */
BTRFSLAYER_API void btrfslayer_error_free(btrfslayer_error *err);

/* Description of a code (negative or positive errno, or
 * BTRFSLAYER_ENOTBTRFS); a static string, never NULL. */
BTRFSLAYER_API const char *btrfslayer_strerror(int code);

/* "0.1.0": the version of the library actually loaded. */
BTRFSLAYER_API const char *btrfslayer_version(void);

/* ---- logging ------------------------------------------------------------- */

/* syslog(3) priorities. */
enum {
	BTRFSLAYER_LOG_ERR = 3,
	BTRFSLAYER_LOG_WARNING = 4,
	BTRFSLAYER_LOG_INFO = 6,
	BTRFSLAYER_LOG_DEBUG = 7,
};

typedef void (*btrfslayer_log_fn)(int level, const char *message, void *userdata);

/* Process-wide: what the library has to say beyond return codes (cleanup
 * that failed after an error, recovery work).  NULL turns logging off, which
 * is the default.  The callback may be called from any thread that is inside
 * a library call; it must not call back into the library. */
BTRFSLAYER_API void btrfslayer_set_log_fn(btrfslayer_log_fn fn, void *userdata);

/* ---- handle -------------------------------------------------------------- */

typedef struct btrfslayer btrfslayer;

/* One line of a user-namespace map, as in /proc/PID/uid_map and Docker's
 * idtools: container ids [container_id, container_id + size) are host ids
 * [host_id, host_id + size). */
typedef struct btrfslayer_idmap {
	uint32_t container_id;
	uint32_t host_id;
	uint32_t size;
} btrfslayer_idmap;

/*
 * Open (creating if needed) the store at `home`.  If home exists it must be on
 * btrfs, else its parent must be; otherwise -BTRFSLAYER_ENOTBTRFS.  A home that
 * is a symlink is refused (-ELOOP).  Creates home and HOME/subvolumes.
 *
 * options: n_options "key=value" strings, keys case-insensitive:
 *   btrfs.min_space=SIZE   smallest per-layer size limit (quotas).
 *   btrfs.mount_home=BOOL  make home a mount point of its own (below); true
 *                          by default.  true/false, yes/no or 1/0, any case.
 * An unknown key, a duplicate key or a malformed value is -EINVAL naming it.
 *
 * uid_map/gid_map: the user-namespace maps of remapped containers, or NULL
 * with a count of 0.  They must map container id 0, must not overlap and must
 * not overflow 32 bits (-EINVAL).  New empty layers' roots are owned by the
 * host ids of container root, mode 0755.  Home and HOME/subvolumes, made
 * now or found, get the layout of moby's CVE-2021-21284 fix: owner the
 * caller's effective uid, group the host gid of container root, mode 0710.
 *
 * Home as a mount point.  Shared mount propagation between a container and
 * the host needs home to be a mount point.  When this process's mount table
 * (read with libmount) has no mount at home, open bind-mounts home onto
 * itself, and the handle works through that mount.  This needs CAP_SYS_ADMIN
 * in the mount namespace; btrfs.mount_home=false turns it off.  Close
 * unmounts it only if it is still the topmost mount at home; a mount that
 * was at home before open is never touched.  A second handle on the same home
 * finds a mount point and makes none: the mount is the first handle's.
 * Closing the first while the second is open gets -EBUSY (see close).
 */
BTRFSLAYER_API int btrfslayer_open(const char *home,
				   const char *const *options, size_t n_options,
				   const btrfslayer_idmap *uid_map, size_t n_uid_map,
				   const btrfslayer_idmap *gid_map, size_t n_gid_map,
				   btrfslayer **out, btrfslayer_error **err);

/* Free the handle (always, even when it returns an error).  Never changes a
 * filesystem-wide setting.  NULL is a no-op.
 * Unmounts the bind mount open made on home, if any.  The unmount is never
 * lazy: while the mount is in use (another handle on this home, a process
 * whose working directory is under it, a mount below it) close returns
 * -EBUSY and leaves it, and from then on no handle owns it: a later open
 * uses it as a mount point and leaves it alone, as any mount made by
 * someone else. */
BTRFSLAYER_API int btrfslayer_close(btrfslayer *h, btrfslayer_error **err);

/* ---- layers -------------------------------------------------------------- */

/* The layer is read-only from birth: a snapshot is taken read-only, an empty
 * layer is sealed before it appears under its id. */
#define BTRFSLAYER_CREATE_READ_ONLY (UINT32_C(1) << 0)
#define BTRFSLAYER_CREATE_MASK BTRFSLAYER_CREATE_READ_ONLY

/*
 * Create layer `id`: an empty subvolume when parent is NULL, else a snapshot
 * of layer `parent`.  The layer appears under its id only once complete.
 *
 * id: 1-255 bytes of [A-Za-z0-9_.-], not starting with '.' (-EINVAL).
 * flags: BTRFSLAYER_CREATE_*; unknown bits are -EINVAL.
 * mount_label: SELinux context, or NULL/"" for none.  A caller passes one on
 *   SELinux hosts only.  -EINVAL, with nothing made, when SELinux is enabled
 *   and the loaded policy refuses it, and in any case when it is not of the
 *   form user:role:type[:level].  It is set (security.selinux) on the layer
 *   root only, for a snapshot too: the snapshot's files keep the labels they
 *   share with the parent, and files made later are labelled by the policy.
 *   That is O(1); relabelling every file, as Docker's driver does on every
 *   create, is O(files) and unshares each file's metadata from the parent.
 *   A runtime that needs the whole tree relabelled does it itself.
 * storage_opts: n_storage_opts "key=value" strings (Docker's --storage-opt);
 *   none is implemented yet: every key is refused, before anything is made
 *   (-EOPNOTSUPP for "size", -EINVAL for an unknown key).
 *
 * -EEXIST if id exists, -ENOENT if parent does not; nothing changes then.
 */
BTRFSLAYER_API int btrfslayer_create(btrfslayer *h, const char *id,
				     const char *parent, uint32_t flags,
				     const char *mount_label,
				     const char *const *storage_opts,
				     size_t n_storage_opts,
				     btrfslayer_error **err);

/* Delete layer `id` and every subvolume nested in it (read-only ones too).
 * The id is gone from the first step on.  -ENOENT if there is no such layer. */
BTRFSLAYER_API int btrfslayer_remove(btrfslayer *h, const char *id,
				     btrfslayer_error **err);

/* Absolute path of layer `id` in *path (free() it).  mount_label is accepted
 * for the graph-driver contract and not used.  -ENOENT if missing. */
BTRFSLAYER_API int btrfslayer_get(btrfslayer *h, const char *id,
				  const char *mount_label, char **path,
				  btrfslayer_error **err);

/* Release what get acquired: nothing today; kept for the contract.  Checks
 * the id only. */
BTRFSLAYER_API int btrfslayer_put(btrfslayer *h, const char *id,
				  btrfslayer_error **err);

/* 1 if layer `id` exists, 0 if not, negative errno on error. */
BTRFSLAYER_API int btrfslayer_exists(btrfslayer *h, const char *id,
				     btrfslayer_error **err);

/* ---- lists: layers and status --------------------------------------------- */

/* An ordered list of key/value string pairs.  Opaque so that it can grow. */
typedef struct btrfslayer_list btrfslayer_list;

BTRFSLAYER_API size_t btrfslayer_list_count(const btrfslayer_list *list);
/* Entry i's key and value (NULL when i is out of range); valid until
 * btrfslayer_list_free(). */
BTRFSLAYER_API const char *btrfslayer_list_key(const btrfslayer_list *list, size_t i);
BTRFSLAYER_API const char *btrfslayer_list_value(const btrfslayer_list *list, size_t i);
/* NULL is a no-op. */
BTRFSLAYER_API void btrfslayer_list_free(btrfslayer_list *list);

/* Every layer, sorted by id: key = id, value = absolute path. */
BTRFSLAYER_API int btrfslayer_layers(btrfslayer *h, btrfslayer_list **out,
				     btrfslayer_error **err);

/* What a runtime shows in `info`: library version, home, filesystem uuid,
 * quota mode, the kernel's btrfs features, layer count.  Keys are stable. */
BTRFSLAYER_API int btrfslayer_status(btrfslayer *h, btrfslayer_list **out,
				     btrfslayer_error **err);

#ifdef __cplusplus
}
#endif

#endif /* BTRFSLAYER_H */
