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
 * - Strings are C strings: one ends at its first NUL, and only what comes
 *   before it is seen and checked ("btrfs.min_space=1G\0junk" is
 *   "btrfs.min_space=1G").
 *
 * A tampered home.  Everything under home is reached through directory fds
 * opened once, without following symlinks or crossing mount points, so
 * nothing planted there leads an operation outside home:
 * - home that is a symlink: -ELOOP; not a directory: -ENOTDIR; not on btrfs:
 *   -BTRFSLAYER_ENOTBTRFS (open).
 * - HOME/subvolumes that is a symlink, a file, a fifo or a socket: -ENOTDIR;
 *   a mount point or on another filesystem: -EXDEV (open).
 * - HOME/subvolumes/<id> that is not a layer of this home (a symlink, a
 *   file, a fifo, a socket, a plain directory, a mount point): get, remove
 *   and create with it as parent say -ENOENT "not a layer"; exists says 0;
 *   layers and status leave it out; create of that id says -EEXIST.
 * - get() hands out a path string, so it checks that the path still leads
 *   to the layer: -ESTALE if home or HOME/subvolumes was moved or replaced
 *   since open (open the home again).
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
 * An unknown key, a duplicate key, an empty key or value, a key byte outside
 * [A-Za-z0-9._-], a string over 4096 bytes, a NULL entry or a malformed
 * value is -EINVAL naming it; a size past 64 bits is -ERANGE.
 *
 * uid_map/gid_map: the user-namespace maps of remapped containers, or NULL
 * with a count of 0.  They must map container id 0, must not overlap and must
 * not overflow 32 bits (-EINVAL).  New empty layers' roots are owned by the
 * host ids of container root.
 */
BTRFSLAYER_API int btrfslayer_open(const char *home,
				   const char *const *options, size_t n_options,
				   const btrfslayer_idmap *uid_map, size_t n_uid_map,
				   const btrfslayer_idmap *gid_map, size_t n_gid_map,
				   btrfslayer **out, btrfslayer_error **err);

/* Free the handle (always, even when it returns an error).  Never changes a
 * filesystem-wide setting.  NULL is a no-op. */
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
 * mount_label: SELinux context for the layer root, or NULL/"" for none.
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

/* Absolute path of layer `id` in *path (free() it; NULL on failure).
 * mount_label is accepted for the graph-driver contract and not used.
 * -ENOENT if missing; -ESTALE if the path no longer leads to the layer
 * because home or HOME/subvolumes was moved or replaced since open. */
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
