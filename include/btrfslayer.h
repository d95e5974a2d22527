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
 * - A handle may be used from many threads at once, and several handles, in
 *   one process or many, may share a home (see "Threads, processes and
 *   crashes" below).
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
 *   file, a fifo, a socket, a plain directory, a mount point of anything but
 *   that layer): get, remove and create with it as parent say -ENOENT "not
 *   a layer"; exists says 0; layers and status leave it out; create of that
 *   id says -EEXIST.  A layer that is a mount point of itself (a runtime
 *   bind-mounted it onto itself, for mount propagation) is still the layer:
 *   exists says 1, get and the other calls work, remove says -EBUSY.
 * - get() hands out a path string, so it checks that the path still leads
 *   to the layer: -ESTALE if home or HOME/subvolumes was moved or replaced
 *   since open (open the home again).
 * - HOME/.lock that is a symlink (-ELOOP) or not a regular file (-EINVAL;
 *   a fifo never blocks open): refused at open.
 *
 * Threads, processes and crashes.  Every call is atomic as the next call,
 * the next open or another process sees it: a layer is there whole (with
 * its owner, label, read-only flag, size limit and recorded limit) or not
 * at all.  create builds the layer under a reserved name
 * (HOME/subvolumes/.tmp-*) and renames it to its id last; remove deletes a
 * layer without nested subvolumes in one step, and renames one with them
 * to a reserved tombstone (.tomb-*) first, so exists() is 0 from then on.
 * With one handle or several, from any threads:
 * - two creates of one id: one returns 0, the others -EEXIST, and the
 *   losers leave nothing behind;
 * - create, remove, get and the quota calls on one id see each other whole:
 *   remove of a layer being created finds it complete or -ENOENT; a second
 *   remove of a layer gets -ENOENT;
 * - create from a parent being removed makes a complete snapshot of the
 *   parent, taken before its deletion, or fails with -ENOENT: never a child
 *   of a half-removed parent;
 * - get() of a layer being removed returns its path or -ENOENT; a path
 *   handed out before the removal stops leading to the layer.
 * Durability: when create, remove, set_read_only, set_quota or clear_quota
 * returns 0, its result survives a power cut that comes at any later
 * moment: its last step commits the filesystem's transaction (syncfs(2),
 * which also writes back the file data that containers wrote since the last
 * commit).  A crash
 * or a power cut during a call leaves the layer whole or absent, and its
 * limit and record both old or both new, once the next open has run.
 * Handles sharing a home: each holds a slot in HOME/.lock (an open file
 * description lock, released when the handle is closed or its process dies,
 * however it dies), and the steps that rename a layer or write its quota
 * file take a lock in that file too.  A home may be opened by up to 4096
 * handles at once (-EBUSY beyond).
 * Privilege.  Each call says, on a "Privilege:" line, what it needs and what
 * happens without it.  Root is not required: with btrfs.mount_home=false, on
 * a btrfs mounted with user_subvol_rm_allowed, a user who owns home (or root
 * of a user namespace, as under `unshare -r`, with no CAP_SYS_ADMIN in the
 * initial namespace) can open, create, snapshot, get, list and remove
 * layers, nested subvolumes included: the library then lists nested
 * subvolumes with BTRFS_IOC_GET_SUBVOL_ROOTREF and BTRFS_IOC_INO_LOOKUP_USER
 * and reads quota state from /sys/fs/btrfs, where a privileged caller reads
 * the root and quota trees.  Without user_subvol_rm_allowed, only
 * CAP_SYS_ADMIN deletes a subvolume.  What only CAP_SYS_ADMIN may do is
 * -EPERM with a message that says so: the bind mount at home (open with
 * btrfs.mount_home=false instead), turning quotas on and setting or clearing
 * a limit.  The calls that take no handle (errors, strerror, parse_size,
 * version, set_log_fn, the list accessors) need no privilege at all.
 * Recovery: open finishes what handles that died mid-call left, and only
 * that: it finishes removals (tombstones), deletes unfinished layers,
 * finishes limit changes and removals from their intents (quotas/.staging/
 * .tmp-* and .tomb-* carrying the attribute user.btrfslayer.intent, written and
 * synced before the change they announce), and destroys the qgroups of
 * deleted subvolumes that the kernel keeps (quotas/.staging/.qgroup-<n>
 * records them before a subvolume is deleted, with simple quotas, and with
 * full qgroups before Linux 6.11, which destroys those itself).  It never looks at a layer or a limit no
 * call was changing, so a limit set by hand stays, and it costs one read of
 * subvolumes/ and quotas/ plus the unfinished work, whatever the number of
 * layers.  It never waits for a live handle: what a live handle is still
 * doing, or an id one has locked, is left (sweep_left).  Each step is logged
 * (BTRFSLAYER_LOG_INFO, "recovery: ...") and status() counts them.  A step
 * that fails is logged as a warning and does not fail open.
 */
#ifndef BTRFSLAYER_H
#define BTRFSLAYER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BTRFSLAYER_API __attribute__((visibility("default")))

/* The version of this header.  CMake reads the project version from these
 * three lines, and btrfslayer_version() reports the library's own.  The
 * major is the SONAME's (libbtrfslayer.so.1): it changes only with an ABI
 * break, which the 1.x series never has. */
#define BTRFSLAYER_VERSION_MAJOR 1
#define BTRFSLAYER_VERSION_MINOR 0
#define BTRFSLAYER_VERSION_PATCH 0

/* "Prerequisites not met": home is not on btrfs.  Returned negated.  Above
 * the kernel's largest errno (4095), so it never collides with one. */
#define BTRFSLAYER_ENOTBTRFS 4096
/* Quotas are off on the filesystem, so there is no usage to report.
 * Returned negated. */
#define BTRFSLAYER_ENOQUOTA 4097

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

/* Parse a size in Docker's syntax, as size= and btrfs.min_space= take it:
 * "10G", "512m", "1.5GiB", "4096" (binary units, k = 1024, fractions
 * truncated).  -EINVAL when malformed, -ERANGE past 64 bits. */
BTRFSLAYER_API int btrfslayer_parse_size(const char *s, uint64_t *bytes);

/* "1.0.0": the version of the library actually loaded, which may be newer
 * than the header a program was built with (compare BTRFSLAYER_VERSION_*). */
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
 * a library call, from several at once; it must not call back into the
 * library.
 * Replacing or removing the callback waits for the calls of the old one
 * that are running in other threads: once this returns, the old callback
 * is not running and will not be called again, so its userdata may be
 * freed.  So do not call it while holding a lock the callback takes.  (A
 * callback that calls this anyway, against the rule above, gets the change
 * without that wait, which would never end.) */
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
 * is a symlink is refused (-ELOOP).  Creates home, HOME/subvolumes,
 * HOME/quotas, HOME/.lock and HOME/.idmap (below), then runs the recovery
 * sweep (see "Threads, processes and crashes" above).  A symlink, a
 * non-directory (-ENOTDIR) or a mount point (-EXDEV) at subvolumes/ or
 * quotas/ is refused before anything is made.  An open that fails later
 * takes back what it made in home (subvolumes/, quotas/, .lock, .idmap, the
 * bind mount) unless another handle has opened home meanwhile, and logs
 * nothing unless that cleanup itself fails; an empty home it made stays.
 *
 * options: n_options "key=value" strings, keys case-insensitive:
 *   btrfs.min_space=SIZE   the smallest per-layer size limit; turns quotas
 *                          on at open when they are off (as Docker does).
 *   btrfs.quota_mode=qgroup|simple
 *                          the quota mode to turn on when quotas are off (see
 *                          "quotas" below for what each means and costs).  It
 *                          turns nothing on by itself: quotas are turned on, in
 *                          this mode, by the first call that sets a limit
 *                          (create with size=, set_quota), or at open with
 *                          btrfs.min_space.  When quotas are on in the other
 *                          mode, open (when they are on already) or that call
 *                          (when they came on in between) fails with -EBUSY:
 *                          switching modes drops every limit on the filesystem,
 *                          so it is left to the administrator.  "simple" on a
 *                          kernel without simple quotas (before Linux 6.7) is
 *                          -EOPNOTSUPP at open.
 *   btrfs.mount_home=BOOL  make home a mount point of its own (below); true
 *                          by default.  true/false, yes/no or 1/0, any case.
 *   btrfs.read_only=BOOL   a read-only handle, for additional (shared,
 *                          read-only) image stores and homes on read-only
 *                          mounts; false by default.  Open makes nothing
 *                          (home, subvolumes/ and quotas/ must exist: -ENOENT
 *                          otherwise), changes no owner or mode, mounts nothing
 *                          (btrfs.mount_home is ignored), runs no recovery
 *                          sweep, turns no quota on, and neither makes nor
 *                          opens HOME/.lock, so the handle holds nothing open
 *                          for writing (the filesystem can be remounted
 *                          read-only under it).  get, get_fd, exists, layers,
 *                          layer_info, get_usage and status work (get applies
 *                          no recorded limit); every call that changes the
 *                          store (create, remove, set_quota, clear_quota,
 *                          set_read_only, apply) is -EROFS, saying so, with no
 *                          side effect.  Without a session slot it takes no
 *                          lock other handles see: a layer another handle
 *                          removes meanwhile is -ENOENT to it, as to anyone.
 * An unknown key, a duplicate key, an empty key or value, a key byte outside
 * [A-Za-z0-9._-], a string over 4096 bytes, a NULL entry or a malformed
 * value is -EINVAL naming it; a size past 64 bits is -ERANGE.
 * Without btrfs.min_space, open leaves quotas as they are; a later call
 * that sets a limit (create with size=, set_quota) turns them on: in
 * btrfs.quota_mode, else simple quotas where the kernel has them, else full
 * qgroups.  get never does.  Turning on simple quotas sets a filesystem
 * feature that kernels before 6.7 cannot mount.
 *
 * uid_map/gid_map: the user-namespace maps of remapped containers, or NULL
 * with a count of 0.  They must map container id 0, must not overlap and must
 * not overflow 32 bits (-EINVAL).  New empty layers' roots are owned by the
 * host ids of container root, mode 0755.  A home records the maps it was
 * laid out for in HOME/.idmap (written atomically: temporary file, fsync,
 * rename, fsync of home), and an open never re-owns a home on its own:
 *   - home has a record: an open without maps adopts the recorded maps (new
 *     layers belong to their container root); an open with maps that differ
 *     (in anything but order) fails with -EBUSY, naming home and both maps.
 *     Nothing is re-owned either way.
 *   - home has no record: when this open makes home, or is given maps, home,
 *     HOME/subvolumes and HOME/quotas (found or made) get the layout of
 *     moby's CVE-2021-21284 fix: owner the caller's effective uid, group the
 *     host gid of container root, mode 0710 (quotas/: 0700); then the record
 *     is written (no maps: a record of none).  Otherwise (a home made by
 *     hand or by an older version, opened without maps) the directories
 *     found keep their owner and mode, and no record is written.
 * To change a home's maps, close every handle and remove HOME/.idmap;
 * layers made before keep their owners.  A record that does not parse
 * fails the open (-EINVAL, naming it).
 *
 * Home as a mount point.  Shared mount propagation between a container and
 * the host needs home to be a mount point.  When this process's mount table
 * (read with libmount) has no mount at home, open bind-mounts home onto
 * itself, records it in HOME/.mount, and the handle works through that
 * mount.  This needs CAP_SYS_ADMIN in the mount namespace;
 * btrfs.mount_home=false turns it off (such a handle never mounts or
 * unmounts).  The mount belongs to the home, not to the handle that made
 * it: every later open (in any process) finds it and works through it, and
 * the close of the last handle on home takes it down, whichever handle made
 * it.  Opens and closes decide this under a lock in HOME/.lock, so any
 * number of them may run at once.  A mount at home that the record does not
 * name (made before open, or by someone else, or stacked on ours) is never
 * touched.  One mount namespace per home: a handle in another namespace
 * sees its own mount table.
 *
 * Privilege: read and write access to home (or its parent, to make it).
 * The bind mount at home needs CAP_SYS_ADMIN in the mount namespace:
 * without it open fails with -EPERM, saying to pass btrfs.mount_home=false
 * (it never falls back silently, since a runtime that needs mount
 * propagation must know).  btrfs.min_space with quotas off needs
 * CAP_SYS_ADMIN to turn them on (-EPERM).  A read-only handle needs read
 * access only.
 */
BTRFSLAYER_API int btrfslayer_open(const char *home,
				   const char *const *options, size_t n_options,
				   const btrfslayer_idmap *uid_map, size_t n_uid_map,
				   const btrfslayer_idmap *gid_map, size_t n_gid_map,
				   btrfslayer **out, btrfslayer_error **err);

/* Free the handle (always, even when it returns an error).  Never changes a
 * filesystem-wide setting: quotas stay on and every limit stays.  NULL is a
 * no-op.
 * When this is the last handle on home (in any process) and the topmost
 * mount at home is the library's bind mount (HOME/.mount), close unmounts
 * it.  The unmount is never lazy: while the mount is in use (a process
 * whose working directory or an open file is under it, a mount below it, or
 * a handle being opened right then) it stays, still recorded, close returns
 * 0 and logs that at BTRFSLAYER_LOG_INFO, and the next open adopts it; the
 * close of the last handle after that takes it down.  While other handles
 * are open the mount stays for them, and close returns 0.  A handle opened
 * with btrfs.mount_home=false counts among them but never unmounts: when it
 * is the last, the mount stays recorded for the next open.
 * Privilege: none beyond what open had; the unmount needs what the mount
 * did (a handle that could not mount never unmounts).  Destroying the
 * qgroups of deleted subvolumes needs CAP_SYS_ADMIN: without it they wait
 * (their markers stay) for a privileged handle. */
BTRFSLAYER_API int btrfslayer_close(btrfslayer *h, btrfslayer_error **err);

/* ---- layers -------------------------------------------------------------- */

/* The layer is read-only from birth: a snapshot is taken read-only, an empty
 * layer is sealed before it appears under its id. */
#define BTRFSLAYER_CREATE_READ_ONLY (UINT32_C(1) << 0)
#define BTRFSLAYER_CREATE_MASK BTRFSLAYER_CREATE_READ_ONLY

/*
 * Create layer `id`: an empty subvolume when parent is NULL, else a snapshot
 * of layer `parent`.  The layer appears under its id only once complete.
 * An empty layer with no label, mode or size is a snapshot of the home's
 * empty template, HOME/subvolumes/.empty-<mode>-<uid>-<gid> (made by the first
 * such create, then kept): its parent uuid is the template's, which
 * btrfslayer_layer_info() does not report as a parent.
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
 * storage_opts: n_storage_opts "key=value" strings (Docker's --storage-opt),
 *   keys case-insensitive:
 *     size=SIZE   limit the layer's size (see "quotas" below), turning quotas
 *                 on if they are off.  0, a malformed size or one below
 *                 btrfs.min_space is -EINVAL; 2^64-1 or more (the kernel's
 *                 "no limit") is -ERANGE.
 *     mode=OCTAL  the mode of the layer's root directory, 1 to 5 octal
 *                 digits up to 07777 ("0555", as containers/storage makes
 *                 its layers; set-id and sticky bits allowed); anything else
 *                 is -EINVAL.  Default: 0755 for an empty layer, the
 *                 parent's mode for a snapshot.  Set while the layer is
 *                 still hidden under its reserved name (before a read-only
 *                 layer is sealed), so the layer never appears with another
 *                 mode.
 *   An unknown key is -EINVAL.  Every option is checked before anything is
 *   made.
 *
 * -EEXIST if id exists, -ENOENT if parent does not; nothing changes then.
 * -EAGAIN when something else was put under the layer's reserved name while
 * it was being made (or all reserved names drawn were taken), or when the
 * empty template was changed while a layer was made of it, -EBUSY when
 * something was mounted on it: nothing is made then either.  -EROFS on a
 * read-only handle.
 * Durable: when it returns 0, the layer survives a power cut.
 * Privilege: write access to HOME/subvolumes, and for a snapshot ownership
 * of the parent layer's root (the kernel's rule), or CAP_SYS_ADMIN.  No
 * CAP_SYS_ADMIN is needed otherwise, in a user namespace too.  size=
 * needs CAP_SYS_ADMIN (a qgroup limit, and turning quotas on): without it,
 * -EPERM saying so, and nothing is made.  Setting the owner of a new
 * empty layer to the host ids of container root needs CAP_CHOWN over them.
 */
BTRFSLAYER_API int btrfslayer_create(btrfslayer *h, const char *id,
				     const char *parent, uint32_t flags,
				     const char *mount_label,
				     const char *const *storage_opts,
				     size_t n_storage_opts,
				     btrfslayer_error **err);

/* Delete layer `id` and every subvolume nested in it (read-only ones too),
 * and its recorded size limit.  The id is gone from the first step on.
 * -ENOENT if there is no such layer; -EBUSY, with nothing changed, if the
 * layer is a mount point (mounted on itself).  It works on a full
 * filesystem: a layer without nested subvolumes goes in one deletion, which
 * needs no free space.  On failure before anything is deleted, the layer
 * keeps its id, whole; once part of it is gone, the rest stays under its
 * tombstone and is deleted at close or at the next open, and the error says
 * so ("the layer is gone, but deleting what it held stopped half-way";
 * exists() says 0).  Never waits for quota accounting: the
 * qgroups of the deleted subvolumes are destroyed as soon as the kernel lets
 * go of them (recent kernels drop them themselves).  -EROFS on a read-only
 * handle.
 * Privilege: CAP_SYS_ADMIN, or, on a btrfs mounted with
 * user_subvol_rm_allowed, write access to the layer and to what it nests
 * (the kernel's rule for deleting a subvolume); read-only ones are made
 * writable first, which needs their ownership.  Without either: -EPERM,
 * saying so, and the layer keeps its id, whole. */
BTRFSLAYER_API int btrfslayer_remove(btrfslayer *h, const char *id,
				     btrfslayer_error **err);

/* Absolute path of layer `id` in *path (free() it; NULL on failure).
 * mount_label is accepted for the graph-driver contract and not used.
 * -ENOENT if missing; -ESTALE if the path no longer leads to the layer
 * because home or HOME/subvolumes was moved or replaced since open.
 * When quotas are on, a layer with a recorded size limit gets it applied
 * again, so a limit survives a quota disable/enable.  get never turns quotas
 * on: with quotas off it changes nothing.  A recorded limit that does not
 * parse is ignored with a warning through the log callback.  A read-only
 * handle applies nothing.
 * Privilege: search (x) access to home and HOME/subvolumes.  Applying a
 * recorded limit again needs CAP_SYS_ADMIN: without it, a warning through
 * the log callback, and the path is returned all the same. */
BTRFSLAYER_API int btrfslayer_get(btrfslayer *h, const char *id,
				  const char *mount_label, char **path,
				  btrfslayer_error **err);

/* Release what get acquired: nothing today; kept for the contract.  Checks
 * the id only.  Privilege: none. */
BTRFSLAYER_API int btrfslayer_put(btrfslayer *h, const char *id,
				  btrfslayer_error **err);

/* 1 if layer `id` exists, 0 if not, negative errno on error.
 * Privilege: search access to HOME/subvolumes. */
BTRFSLAYER_API int btrfslayer_exists(btrfslayer *h, const char *id,
				     btrfslayer_error **err);

/* ---- quotas -------------------------------------------------------------- */

/*
 * A layer's size limit is the qgroup limit on its referenced bytes, and it is
 * recorded in HOME/quotas/<id> so that get() can apply it again.  It is the
 * layer's only limit: a snapshot never keeps the limits full qgroups copy
 * from its parent, and whatever sets the size limit (create with size=,
 * set_quota, clear_quota, get re-applying the record, open's sweep putting
 * it back in line with the record) clears an exclusive limit (btrfs qgroup
 * limit -e) on the layer's qgroup.  What it counts depends on the
 * filesystem's quota mode:
 *   qgroup  (full qgroups) every byte the layer references, including data
 *           it shares with its parent: the size of the whole filesystem a
 *           container sees, as Docker means it.  Exact, but the kernel's work
 *           grows with the number of snapshots sharing data.
 *   simple  (simple quotas, Linux 6.7) only the bytes the layer itself
 *           allocated, after it was created: what a container writes.  A
 *           snapshot starts at 0 however large its parent; data it shares
 *           stays counted against the layer that wrote it.  Cheap.
 * Nested subvolumes.  A container may make subvolumes inside its layer
 * (no privilege needed) and write there:
 *   simple  the limit holds for them too.  A limited layer's qgroup
 *           0/<subvolume id> is put in a level-1 qgroup of its own,
 *           1/<subvolume id>, carrying the same limit; the kernel makes
 *           every subvolume later nested in the layer, at any depth, a
 *           member of it, and those nested before the limit was set are
 *           made members when it is.  Writing past size= anywhere in the
 *           layer fails with EDQUOT.  Remove destroys 1/<id> with the layer
 *           (after a crash, the next open does).
 *   qgroup  the limit holds for the layer's own subvolume only: full qgroups
 *           join no nested subvolume to any group of the layer's, so a
 *           container escapes size= by writing into a subvolume it nests.
 *           Use simple quotas where that matters.
 * Privilege: quotas are CAP_SYS_ADMIN's: turning them on and setting or
 * clearing a limit are -EPERM without it, saying so.  Reading them
 * (get_usage, status) is not: without CAP_SYS_ADMIN they are read from
 * /sys/fs/btrfs.
 */

/* Limit layer `id` to `size` bytes (> 0, at least btrfs.min_space; else
 * -EINVAL; below 2^64-1, which the kernel takes for "no limit"; else
 * -ERANGE), replacing any limit, and record it.  Turns quotas on (in
 * btrfs.quota_mode) when they are off; -EBUSY when they are on in another
 * mode than btrfs.quota_mode names.  -EROFS on a read-only handle.
 * Privilege: CAP_SYS_ADMIN (-EPERM without it, saying so). */
BTRFSLAYER_API int btrfslayer_set_quota(btrfslayer *h, const char *id, uint64_t size,
					btrfslayer_error **err);
/* Remove layer `id`'s limit and its record.  Does not turn quotas on.
 * -EROFS on a read-only handle.
 * Privilege: CAP_SYS_ADMIN when quotas are on (-EPERM without it, saying
 * so); with quotas off only the record goes, which needs write access to
 * HOME/quotas. */
BTRFSLAYER_API int btrfslayer_clear_quota(btrfslayer *h, const char *id,
					  btrfslayer_error **err);

enum {
	BTRFSLAYER_QUOTA_OFF = 0,	/* usage with BTRFSLAYER_USAGE_WALK only */
	BTRFSLAYER_QUOTA_QGROUP = 1,
	BTRFSLAYER_QUOTA_SIMPLE = 2,
};

/* What btrfslayer_get_usage() reports.  Fields are only ever added at the end;
 * pass sizeof(btrfslayer_usage) as out_size.  A caller built against an
 * older header passes its smaller size and gets the fields it knows. */
typedef struct btrfslayer_usage {
	uint64_t referenced;	/* bytes the layer's qgroup references */
	uint64_t exclusive;	/* bytes no other subvolume shares */
	uint64_t limit;		/* the limit the kernel enforces; 0: none */
	uint64_t recorded_limit; /* HOME/quotas/<id>; 0: none (or unreadable) */
	uint64_t subvolume_id;	/* the layer's subvolume, and level-0 qgroup */
	uint32_t quota_mode;	/* BTRFSLAYER_QUOTA_* */
	uint32_t consistent;	/* 0: the kernel marked its numbers inconsistent
				 * (after a big subvolume drop, say) until a
				 * rescan; limits may misbehave meanwhile */
	/* ---- end of BTRFSLAYER_USAGE_SIZE_V1 (0.2.0) ---- */
	uint64_t exclusive_limit; /* the kernel's limit on exclusive bytes; 0:
				   * none.  Only an administrator sets one (btrfs
				   * qgroup limit -e); the library clears one it
				   * finds (see "quotas" above) */
	/* ---- end of BTRFSLAYER_USAGE_SIZE_V2 (0.2.0) ---- */
	uint64_t walk_bytes;	/* BTRFSLAYER_USAGE_WALK only (else 0): bytes
				 * allocated to the layer's files (st_blocks *
				 * 512), each inode counted once */
	uint64_t walk_inodes;	/* BTRFSLAYER_USAGE_WALK only (else 0): distinct
				 * inodes in the layer, its root included */
} btrfslayer_usage;
#define BTRFSLAYER_USAGE_SIZE_V1 48
#define BTRFSLAYER_USAGE_SIZE_V2 56	/* exclusive_limit */
#define BTRFSLAYER_USAGE_SIZE_V3 72	/* walk_bytes, walk_inodes (1.0.0) */

/* Commit the filesystem's transaction first: the numbers then include every
 * write made so far (they are updated at each commit, every 30 s or so). */
#define BTRFSLAYER_USAGE_SYNC (UINT32_C(1) << 0)
/* Also walk the layer's files (without crossing into nested subvolumes or
 * mounts) and fill walk_bytes and walk_inodes: O(files), the library's one
 * documented walk, for runtimes that need a size or an inode count with
 * quotas off.  With this flag and quotas off the call succeeds: the quota
 * fields are 0 and quota_mode is 0. */
#define BTRFSLAYER_USAGE_WALK (UINT32_C(1) << 1)
#define BTRFSLAYER_USAGE_MASK (BTRFSLAYER_USAGE_SYNC | BTRFSLAYER_USAGE_WALK)

/* Fill *out (out_size bytes, at least BTRFSLAYER_USAGE_SIZE_V1, and at least
 * BTRFSLAYER_USAGE_SIZE_V3 with BTRFSLAYER_USAGE_WALK; else -EINVAL) with
 * layer `id`'s usage from the quota tree.  flags: BTRFSLAYER_USAGE_*; unknown
 * bits are -EINVAL.  -ENOENT if there is no such layer.  When quotas are off:
 * -BTRFSLAYER_ENOQUOTA, never a guess, unless BTRFSLAYER_USAGE_WALK is given:
 * then the kernel's quota fields (referenced, exclusive, limit,
 * exclusive_limit, quota_mode, consistent) are 0, and subvolume_id,
 * recorded_limit and the walk's fields are filled.  Without that flag the
 * call never walks the layer's files.
 * The walk: bytes are st_blocks * 512 of every inode once (hard links
 * counted once; extents shared with other layers counted in full, so it is
 * the size of the layer's own tree, not what removing it frees), inodes
 * count the layer's root too; symlinks are counted, never followed; nested
 * subvolumes and mount points are left out.  It is not atomic: files that
 * change meanwhile are counted as found.  A tree deeper than the fds left to
 * the process fails with -EMFILE (one fd per level of depth).
 * Privilege: none beyond reading home: without CAP_SYS_ADMIN the quota tree
 * is read from /sys/fs/btrfs (where the kernel has it, Linux 5.9); the walk
 * needs only read access to the layer's directories. */
BTRFSLAYER_API int btrfslayer_get_usage(btrfslayer *h, const char *id, uint32_t flags,
				    btrfslayer_usage *out, size_t out_size,
				    btrfslayer_error **err);

/* ---- layer info, seal, fds, idmapped mounts ------------------------------ */

/* btrfslayer_info.flags */
#define BTRFSLAYER_INFO_READ_ONLY (UINT32_C(1) << 0)	/* the layer is sealed */
#define BTRFSLAYER_INFO_HAS_NESTED (UINT32_C(1) << 1)	/* it holds nested subvolumes */

/* What btrfslayer_layer_info() reports.  Fields are only ever added at the
 * end; pass sizeof(btrfslayer_info) as out_size. */
typedef struct btrfslayer_info {
	uint64_t subvolume_id;	/* the layer's subvolume (and level-0 qgroup) */
	uint64_t generation;	/* the subvolume's last changed transaction */
	int64_t otime_sec;	/* creation time (btrfs otime), UTC */
	uint32_t otime_nsec;
	uint32_t flags;		/* BTRFSLAYER_INFO_* */
	/* the parent layer's id: the layer of this home whose subvolume uuid is
	 * this subvolume's parent uuid; "" when the layer is not a snapshot of
	 * a layer or that layer is gone */
	char parent[BTRFSLAYER_ID_MAX + 1];
} btrfslayer_info;
#define BTRFSLAYER_INFO_SIZE_V1 288

/* Fill *out (out_size bytes, at least BTRFSLAYER_INFO_SIZE_V1; else, or when
 * out is NULL, -EINVAL) with what btrfs knows of layer `id`; bytes past the
 * fields this library knows are zeroed.  Works with quotas off, and without
 * taking the layer's lock.  -EINVAL for a bad id or handle; -ENOENT if there
 * is no such layer (or what is there is not a layer).
 * The parent is found in two lookups of the kernel's uuid and root trees,
 * whatever the number of layers; without CAP_SYS_ADMIN (rootless) those are
 * refused and the layers' uuids are compared one by one instead
 * (O(layers)), with the same answer.
 * Privilege: none beyond reading home (GET_SUBVOL_INFO and
 * GET_SUBVOL_ROOTREF, Linux 4.18, need none). */
BTRFSLAYER_API int btrfslayer_layer_info(btrfslayer *h, const char *id,
					 btrfslayer_info *out, size_t out_size,
					 btrfslayer_error **err);

/* Seal (read_only != 0) or unseal (0) layer `id`, and every subvolume
 * nested in it at any depth, so that a sealed layer holds no writable part
 * (image layers: create writable, fill, seal).  Unsealing makes the nested
 * subvolumes writable too, those that were read-only before the seal
 * included.  Every subvolume is opened and checked before any flag changes;
 * one that fails to flip has the others put back (best effort, logged).
 * Sealing a sealed layer, or unsealing a writable one, is a no-op.  Takes
 * the layer's lock, as create and remove do.  Durable when it returns 0.
 * Files already open for writing in the layer fail their next write with
 * EROFS.
 * -EINVAL for a bad id or handle; -ENOENT if there is no such layer;
 * -EXDEV (or -ELOOP) if a nested subvolume can only be reached across a
 * mount point (or a symlink), -EAGAIN if one was replaced while being
 * sealed: nothing is changed then; -EPERM without the privilege below.
 * Privilege: owner of the subvolumes or CAP_FOWNER; listing the nested
 * subvolumes needs what remove needs for it. */
BTRFSLAYER_API int btrfslayer_set_read_only(btrfslayer *h, const char *id, int read_only,
					    btrfslayer_error **err);

/* An fd of the layer's root directory (O_PATH instead of O_RDONLY). */
#define BTRFSLAYER_FD_PATH (UINT32_C(1) << 0)
#define BTRFSLAYER_FD_MASK BTRFSLAYER_FD_PATH

/* *fd = an O_RDONLY|O_DIRECTORY|O_CLOEXEC fd of layer `id`'s root (close()
 * it), or with BTRFSLAYER_FD_PATH an O_PATH|O_DIRECTORY|O_CLOEXEC one, for
 * runtimes that work relative to fds and never want a path.  The same checks
 * as get (a symlink, a file, a plain directory or a foreign mount at the
 * layer's name is no layer) and, like get, a recorded size limit the kernel
 * lost is applied again; no path is resolved after the check.  *fd is -1 on
 * failure.  -EINVAL for a bad id or handle, unknown flags or a NULL fd;
 * -ENOENT if there is no such layer.  Privilege: none beyond reading home. */
BTRFSLAYER_API int btrfslayer_get_fd(btrfslayer *h, const char *id, uint32_t flags, int *fd,
				     btrfslayer_error **err);

/* The idmapped mount is read-only. */
#define BTRFSLAYER_MOUNT_READ_ONLY (UINT32_C(1) << 0)
#define BTRFSLAYER_MOUNT_MASK BTRFSLAYER_MOUNT_READ_ONLY

/* *mount_fd = a detached mount of layer `id` (open_tree(OPEN_TREE_CLONE))
 * made idmapped (mount_setattr(MOUNT_ATTR_IDMAP)) with a user namespace of
 * the given maps, for the runtime to attach with move_mount(2) (close() it;
 * a mount never attached goes with its last fd).  Nested subvolumes show
 * through it; mounts on the layer do not.
 * uid_map, gid_map: the container's maps, as open takes them (container id
 * 0 mapped, no overlap, below 2^32), both given (n >= 1), at most 340 lines
 * each (the kernel's limit); else -EINVAL.  Through the mount, a file stored
 * with uid U (on disk) is seen as the host id the map gives container id U,
 * and a file created by a caller whose fsuid is host id H is stored as the
 * container id H maps to: with "0 100000 65536", container root (host
 * 100000) creates files stored as uid 0, and a file stored as uid 0 is seen
 * as 100000.  So a layer stays owned by unmapped ids on disk and is shared
 * by containers of any maps, with no chown.
 * flags: BTRFSLAYER_MOUNT_*; unknown bits are -EINVAL.
 * *mount_fd is -1 on failure.  -EINVAL for a bad id or handle or a NULL
 * mount_fd; -ENOENT if there is no such layer; -EROFS on a read-only
 * handle without BTRFSLAYER_MOUNT_READ_ONLY; -EOPNOTSUPP, saying why, where the kernel cannot (open_tree before 5.2,
 * mount_setattr before 5.12, idmapped btrfs before 5.15); -EPERM without
 * the privilege.  Nothing on disk changes.
 * Privilege: CAP_SYS_ADMIN in the initial user namespace, and CAP_SETUID and
 * CAP_SETGID over the maps' host ids (to write the namespace's maps).  The
 * user namespace is made by a short-lived child process (cloned without
 * SIGCHLD, reaped before the call returns). */
BTRFSLAYER_API int btrfslayer_mount_idmapped(btrfslayer *h, const char *id,
					     const btrfslayer_idmap *uid_map, size_t n_uid_map,
					     const btrfslayer_idmap *gid_map, size_t n_gid_map,
					     uint32_t flags, int *mount_fd,
					     btrfslayer_error **err);

/* ---- changes, export, apply ----------------------------------------------- */

enum {
	BTRFSLAYER_CHANGE_ADDED = 1,
	BTRFSLAYER_CHANGE_MODIFIED = 2,
	BTRFSLAYER_CHANGE_DELETED = 3,
};

/* Called once per changed path ("/a/b"), in path order.  A non-zero return
 * stops the walk; btrfslayer_changes() then returns it. */
typedef int (*btrfslayer_change_fn)(int kind, const char *path, void *userdata);

/* Compute the changes by walking both trees, never by the send stream. */
#define BTRFSLAYER_CHANGES_WALK (UINT32_C(1) << 0)
#define BTRFSLAYER_CHANGES_MASK BTRFSLAYER_CHANGES_WALK

/* Progress of export and apply: bytes done so far, and the total (0 when
 * unknown).  Return 0 to go on; any other value stops the call, which then
 * returns -ECANCELED and ends as it does on any other failure (see export
 * and apply). */
typedef int (*btrfslayer_progress_fn)(uint64_t done, uint64_t total, void *userdata);

/* No flags are defined yet for export and apply: any bit is -EINVAL. */
#define BTRFSLAYER_EXPORT_MASK UINT32_C(0)
#define BTRFSLAYER_APPLY_MASK UINT32_C(0)

/*
 * Call fn once per path that layer `id` changed relative to layer `parent`,
 * in path order (strcmp of the paths, so a directory comes before what it
 * holds), with the semantics of Docker's archive.ChangesDirs, which
 * `docker diff` shows:
 *   BTRFSLAYER_CHANGE_ADDED     in the layer, not in the parent; so is
 *                               everything below an added directory;
 *   BTRFSLAYER_CHANGE_DELETED   in the parent, not in the layer, where its
 *                               directory is still a directory: only the top
 *                               of a deleted subtree is reported;
 *   BTRFSLAYER_CHANGE_MODIFIED  in both, with a different mode (file type
 *                               included), uid, gid, rdev or
 *                               security.capability, or, for a non-directory,
 *                               a different size or mtime (mtimes that agree
 *                               on the second are equal when either has 0
 *                               nanoseconds, as Docker has it for tar); and
 *                               every directory that holds a change.
 * The root is never reported.  parent NULL: everything in the layer is
 * added.  Nested subvolumes are walked into like directories.
 * How: when the layer is a snapshot of the parent (as a container is of its
 * image) and neither holds nested subvolumes, from the btrfs send stream
 * between the two (BTRFS_IOC_SEND without file data): only the paths it
 * names are looked at, so the cost follows the number of changes, not of
 * files.  A writable layer or parent is first snapshotted read-only, O(1),
 * under a reserved name (HOME/subvolumes/.tmp-*, deleted before the call
 * returns, or by the next open's sweep after a crash).  Otherwise, without
 * CAP_SYS_ADMIN, or with BTRFSLAYER_CHANGES_WALK, both trees are walked in
 * full, with the same result.  A layer that is being written to meanwhile
 * gives the changes of one moment of it (the send) or of the walk's pass.
 * fn: called with the kind, the path ("/a/b") and userdata; a non-zero
 *   return stops the calls, and btrfslayer_changes() returns that value.
 * flags: BTRFSLAYER_CHANGES_*; unknown bits are -EINVAL.
 * Errors: -EINVAL (bad id, flags or a NULL fn), -ENOENT (no such layer or
 * parent), or the errno of the failing step, named in the message.
 * Privilege: reading both layers; the send stream needs CAP_SYS_ADMIN
 * (without it the call walks).  Changes nothing but the temporaries.
 */
BTRFSLAYER_API int btrfslayer_changes(btrfslayer *h, const char *id, const char *parent,
				      uint32_t flags, btrfslayer_change_fn fn, void *userdata,
				      btrfslayer_error **err);
/* *size = the bytes of layer `id`'s changes against `parent` (NULL: all of
 * the layer), as Docker's DiffSize: the size (st_size) of every added or
 * modified path that is not a directory (a symlink counts its target's
 * length), an inode with several links counted once.  Found as
 * btrfslayer_changes() finds the changes, with the same errors and
 * privilege. */
BTRFSLAYER_API int btrfslayer_diff_size(btrfslayer *h, const char *id, const char *parent,
					uint64_t *size, btrfslayer_error **err);
/*
 * Write layer `id`'s changes against layer `parent` (NULL: the whole layer)
 * to fd as an OCI image-layer tar, uncompressed (pax format, ustar headers
 * wherever they suffice; libarchive writes it), which docker load/push and
 * every OCI tool read:
 * - the paths btrfslayer_changes() reports as added or modified, as
 *   entries: directories, regular files (holes as a sparse map, not as
 *   zeros), symlinks, hard links (a second path of an inode is a link to
 *   the first one written, or to an unchanged path the parent has),
 *   character and block devices, fifos (sockets are left out); numeric
 *   owners, the mode, the mtime in whole seconds (as Docker), and the
 *   xattrs user.*, trusted.* and security.* but security.selinux (file
 *   capabilities among them) as SCHILY.xattr pax records;
 * - a deleted path as a whiteout, "<dir>/.wh.<name>";
 * - a directory replaced by another one (same path, another inode) as the
 *   directory, "<dir>/.wh..wh..opq" and everything it holds.
 * The same layer and parent always give the same bytes (and digest):
 * entries sorted by path, no user or group names, no atime or ctime.
 * Names that are not UTF-8 are written raw (pax hdrcharset=BINARY).
 * The files are read from a read-only snapshot when the changes come from
 * the send stream (see btrfslayer_changes()); otherwise from the layer
 * itself, which should then not be written to meanwhile.
 * fd: where the tar goes (a file, a pipe, a socket), written from where it
 *   is; not closed.  flags: none yet (0), else -EINVAL.
 * progress: when not NULL, called now and then (about every MiB) and at the
 *   end with the bytes of file data written and their total; userdata is
 *   passed to it.
 * Errors: -EINVAL (bad id, parent or flags), -EBADF (fd < 0), -ENOENT (no
 * such layer or parent), the errno of a failing read or write, each
 * naming the path and step; -ECANCELED when progress asked to stop.  What
 * was written to fd before a failure is not a whole tar.  Writing to a pipe whose reader is gone raises SIGPIPE
 * unless the caller ignores it (-EPIPE then).
 * Privilege: reading the layers (root for files only root can read); the
 * send stream and the snapshots need CAP_SYS_ADMIN, else the trees are
 * walked.  Changes nothing in the store.
 */
BTRFSLAYER_API int btrfslayer_export(btrfslayer *h, const char *id, const char *parent,
				     int fd, uint32_t flags, btrfslayer_progress_fn progress,
				     void *userdata, btrfslayer_error **err);
/*
 * Apply the OCI image-layer tar read from fd (plain, gzip or zstd; ustar,
 * pax or GNU tar) to writable layer `id`, as a runtime does on a pull:
 * entries are made with their owner (numeric ids, as stored), mode, mtime
 * and xattrs (user.*, trusted.*, security.* but security.selinux), hard
 * links, symlinks, devices, fifos and sparse files included; an entry
 * replaces what is at its path (a directory over a directory is kept and
 * takes the entry's metadata); missing parent directories are made (0755).
 * Whiteouts: "<dir>/.wh.<name>" deletes <name> (a directory with its
 * content); "<dir>/.wh..wh..opq" empties <dir> of everything this tar did
 * not put there.  Whiteout entries themselves are not made.
 * Safety: every file is made beneath the layer's root through directory fds
 * (openat2 RESOLVE_BENEATH, no symlink or mount point crossed), never by a
 * path string.  An entry with an absolute name, a ".." component, a name
 * that leads through a symlink or a non-directory inside the layer, or a
 * hard link whose target is not a file inside the layer is refused, as is a
 * bad, truncated or oversized header: the call stops at the first such
 * entry with an error naming it, and nothing outside the layer is written.
 * What the entries before it made stays in the layer: remove the layer (as
 * a runtime does with a failed pull).
 * fd: the tar, read from where it is to its end; not closed.  flags: none
 * yet (0), else -EINVAL.  progress: when not NULL, called about every MiB
 * of the tar read and at the end, with the bytes read and the fd's size
 * when it is a regular file (else 0); userdata is passed to it.
 * unpacked: when not NULL, set to the bytes of file data written (holes
 * not counted), 0 on failure.
 * Errors: -EINVAL (bad id or flags; an entry refused as above, or an
 * archive that is not a tar), -ELOOP (a symlink on an entry's way),
 * -ENAMETOOLONG (a name past PATH_MAX), -EIO (data cut short), -EBADF
 * (fd < 0), -ENOENT (no such layer; a hard link to a path the layer does
 * not have), -EROFS (the layer is read-only, or the handle is),
 * -ECANCELED (progress asked to stop), or the errno of the failing step,
 * each naming the entry.
 * Privilege: root (CAP_CHOWN, CAP_MKNOD, CAP_SYS_ADMIN for trusted.*
 * xattrs and file capabilities) to restore what the tar says.  Durable on
 * success (a commit of the filesystem).
 */
BTRFSLAYER_API int btrfslayer_apply(btrfslayer *h, const char *id, int fd, uint32_t flags,
				    btrfslayer_progress_fn progress, void *userdata,
				    uint64_t *unpacked, btrfslayer_error **err);

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

/* Every layer, sorted by id: key = id, value = absolute path.
 * Privilege: read access to HOME/subvolumes. */
BTRFSLAYER_API int btrfslayer_layers(btrfslayer *h, btrfslayer_list **out,
				     btrfslayer_error **err);

/* What a runtime shows in `info`: library version, home, filesystem uuid,
 * quota mode, the kernel's btrfs features, layer count, and what the
 * recovery sweep of this handle's open did: sweep_tombstones (removals
 * finished), sweep_temporaries (unfinished layers deleted),
 * sweep_quota_files (unfinished or buried quota files deleted),
 * sweep_qgroups (qgroups of deleted subvolumes destroyed, or their markers
 * found done), sweep_limits (intents of limit changes and removals
 * finished), sweep_left (leftovers kept: a live handle's, an id a live
 * handle holds, or a deletion that failed).  Keys are stable.
 * Privilege: none beyond reading home (quota state from /sys/fs/btrfs
 * without CAP_SYS_ADMIN). */
BTRFSLAYER_API int btrfslayer_status(btrfslayer *h, btrfslayer_list **out,
				     btrfslayer_error **err);

#ifdef __cplusplus
}
#endif

#endif /* BTRFSLAYER_H */
