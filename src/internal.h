/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Declarations shared by the library's modules; nothing here is exported. */
#ifndef BTRFSLAYER_INTERNAL_H
#define BTRFSLAYER_INTERNAL_H

#include <fcntl.h>
#include <locale.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "btrfslayer.h"

#define BL_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* Names that start with these are the library's own: a layer (or quota
 * file) being built, and one being removed.  Each has an entry in a staging
 * directory (staging.c), where the sweep finds it.
 * Ids never start with '.'.  The full form is <prefix><slot>-<16 hex>: the
 * session slot of the handle that made it says whether its maker still
 * lives (session.c). */
#define BL_TMP_PREFIX ".tmp-"
#define BL_TOMB_PREFIX ".tomb-"
#define BL_RESERVED_NAME_MAX 32
#define BL_RESERVED_NAME_ATTEMPTS 8
/* quotas/.staging/.qgroup-<subvolume id>: the qgroup of a deleted
 * subvolume that is still to be destroyed, when it cannot be in the list
 * kept as an attribute of subvolumes/ (marker.c). */
#define BL_MARKER_PREFIX ".qgroup-"

/* Handles sharing a home: each holds one of these slots in HOME/.lock. */
#define BL_SESSION_SLOTS 4096

#define BL_SUBVOLUMES "subvolumes"
#define BL_QUOTAS "quotas"
/* subvolumes/.staging and quotas/.staging: where every reserved name lives
 * (staging.c). */
#define BL_STAGING ".staging"

/* Operations on one id take one of these, picked by a hash of the id, for
 * the short steps that must not interleave (a layer's rename and its quota
 * file).  Different ids rarely share one. */
#define BL_ID_LOCKS 64

enum bl_quota_mode {
	BL_QUOTA_OFF,
	BL_QUOTA_QGROUP,	/* full qgroup accounting */
	BL_QUOTA_SIMPLE,	/* simple quotas (kernel >= 6.7) */
};

/* How every directory the library keeps is opened: never through a symlink. */
#define BL_DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

/* Counts of what the recovery sweep at open did (sweep.c). */
struct bl_sweep_report {
	unsigned tombstones;	/* removals finished */
	unsigned temporaries;	/* unfinished layers deleted */
	unsigned quota_files;	/* quota files of no layer, temporary or buried */
	unsigned qgroups;	/* qgroups of deleted subvolumes destroyed */
	unsigned limits;	/* size limits put back in line with their record */
	unsigned left;		/* leftovers kept: a live handle's, or failed */
};

/* ---- kernel.c: the running kernel's release -------------------------------- */

/* Whether the running kernel is release major.minor or later. */
bool bl_kernel_at_least(unsigned major, unsigned minor);

/* ---- record_cache.c: limits read from HOME/quotas/<id> ------------------ */

#define BL_RECORD_CACHE_SLOTS 64

struct bl_cached_record {
	bool valid;
	uint64_t id_hash;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec ctime, mtime;
	uint64_t limit;
};

struct bl_record_cache {
	pthread_mutex_t lock;
	struct bl_cached_record slots[BL_RECORD_CACHE_SLOTS];
};

void bl_record_cache_init(struct bl_record_cache *cache);
void bl_record_cache_destroy(struct bl_record_cache *cache);
/* 1 with *limit set when the record at dirfd/id is the file last stored
 * for id, 0 when it cannot tell (read it), -ENOENT when there is none. */
int bl_record_cache_lookup(struct bl_record_cache *cache, int dirfd, const char *id,
			   uint64_t *limit);
/* Remember the limit read from the file st describes (fstat before the
 * read: a change meanwhile moves the file's times, never the cached ones). */
void bl_record_cache_store(struct bl_record_cache *cache, const char *id, const struct stat *st,
			   uint64_t limit);

struct btrfslayer {
	char *home;		/* absolute path, for messages and get() */
	int home_fd;		/* O_DIRECTORY|O_NOFOLLOW, opened once */
	int subvolumes_fd;	/* HOME/subvolumes, likewise */
	int quotas_fd;		/* HOME/quotas, likewise */
	int staging_fd;		/* HOME/subvolumes/.staging, likewise */
	int quota_staging_fd;	/* HOME/quotas/.staging, likewise */
	bool staging_made;	/* this open made them (for a failed open's undo) */
	uint64_t min_space;	/* btrfs.min_space; 0 when not given */
	enum bl_quota_mode quota_mode;	/* btrfs.quota_mode; OFF: not given */
	uint32_t root_uid;	/* host ids of container root 0:0 */
	uint32_t root_gid;
	pthread_mutex_t id_locks[BL_ID_LOCKS];
	pthread_mutex_t quota_lock;	/* enabling quotas; pending_qgroups */
	struct bl_record_cache records;	/* limits read from quotas/ */
	uint64_t *pending_qgroups;	/* see bl_quota_forget_subvolume() */
	size_t n_pending_qgroups;
	uint64_t pending_tried_ns;	/* CLOCK_MONOTONIC of the last retry */
	int lock_fd;		/* HOME/.lock; holds this handle's session slot */
	unsigned slot;		/* this handle's session slot */
	struct bl_sweep_report sweep;	/* what open's recovery sweep did */
	bool mount_home;	/* btrfs.mount_home; true unless turned off */
	unsigned leftovers;	/* reserved names a failed call of this handle
				 * could not clean up (atomic): close sweeps
				 * its own slot only when there are some */
	int base_fd;		/* home on a private clone of its mount, which
				 * no unmount at home waits for (mount.c); -1 */
	bool home_made;		/* this open made home */
	bool lock_made;		/* ... HOME/.lock */
	bool layout_made[2];	/* ... HOME/subvolumes, HOME/quotas */
	bool idmap_written;	/* ... HOME/.idmap */
	bool read_only;		/* btrfs.read_only: changes nothing (readonly.c) */
	uint64_t subvolumes_mount;	/* mount id of subvolumes_fd, read at its
					 * first use (atomic); 0 until then */
	pthread_mutex_t marker_lock;	/* rewriting the marker list (marker.c) */
	pthread_mutex_t template_lock;	/* the three below */
	int template_fd;	/* the empty template (template.c); -1 */
	bool template_refused;	/* what sits at its name is not one: said once */
};

/* ---- handle.c: shared with the modules that implement API calls ---------- */

/* -EINVAL unless h is a handle and id a valid layer id; clears *err. */
int bl_check_handle_and_id(btrfslayer *h, const char *id, btrfslayer_error **err);
/* Open layer `id` (a subvolume directly under subvolumes/) or fail with
 * -ENOENT; `step` starts the error message. */
int bl_open_layer(btrfslayer *h, const char *id, const char *step,
		  btrfslayer_error **err);
/* subvolumes/<id> is a mount point: an fd of its root when the mount shows
 * that very layer (a runtime bind-mounted it onto itself), else -ENOENT. */
int bl_open_self_mounted_layer(btrfslayer *h, const char *id);
/* "<home>/subvolumes/<name>", for messages. */
void bl_layer_path(const btrfslayer *h, const char *name, char *buf, size_t len);
/* Lock out every other thread and handle from the steps that change id's
 * name or quota file (a mutex of the handle, then a byte of HOME/.lock). */
void bl_id_lock(btrfslayer *h, const char *id);
void bl_id_unlock(btrfslayer *h, const char *id);
/* The same without waiting: false when a thread or another handle holds
 * it (the sweep never waits for a live handle). */
bool bl_id_trylock(btrfslayer *h, const char *id);
/* A failed call left a reserved name of this handle behind: close sweeps
 * its own slot. */
void bl_note_leftover(btrfslayer *h);
/* Make every change made so far durable (bl_ioctl_commit()): the last step
 * of each call that changes the store.  The message is "<step>: <path>:
 * commit to disk: <reason>". */
int bl_commit(btrfslayer *h, const char *step, const char *path, btrfslayer_error **err);

/* ---- template.c: what a plain empty layer is a snapshot of ------------- */

/* subvolumes/.empty-<mode>-<uid>-<gid>: never an id, never swept. */
#define BL_TEMPLATE_PREFIX ".empty-"
/* The mode of a new empty layer's root, unless mode= says otherwise. */
#define BL_LAYER_ROOT_MODE 0755

/* init: with the handle; close: its fd goes (before home is unmounted),
 * and the lock stays for the handle's free. */
void bl_template_init(btrfslayer *h);
void bl_template_close(btrfslayer *h);
/* A new fd of the home's empty template for h's owner, made when there is
 * none; a negative errno when none can serve (the layer is made without). */
int bl_template_get(btrfslayer *h);
/* The template the handle holds went (a snapshot of it said -ENOENT): the
 * next bl_template_get() looks at its name again. */
void bl_template_forget(btrfslayer *h);
/* 1 when fd is the root of an empty subvolume with the owner and mode of a
 * new empty layer of h (what the template is), 0 when not, a negative errno
 * when that cannot be told. */
int bl_template_fits(const btrfslayer *h, int fd);

/* ---- readonly.c: read-only handles ------------------------------------------ */

/* The door of every call that changes the store: -EROFS, with the message
 * "<step>: <home>: the handle is read-only (...)", when h was opened with
 * btrfs.read_only=true; 0 otherwise.  Call it after the argument checks and
 * before anything else. */
int bl_check_writable(const btrfslayer *h, const char *step, btrfslayer_error **err);
/* Open of a read-only handle, in place of the session and set-up steps:
 * subvolumes/ and quotas/ must exist (-ENOENT otherwise) and are opened
 * as found; id maps are checked against HOME/.idmap, nothing is written. */
int bl_read_only_layout(btrfslayer *h, const btrfslayer_idmap *uid_map, size_t n_uid_map,
			const btrfslayer_idmap *gid_map, size_t n_gid_map, btrfslayer_error **err);

/* ---- session.c: handles sharing a home ----------------------------------- */

/* Open (creating) HOME/.lock and take a free session slot in it; the slot
 * is held until the handle is closed or its process dies. */
int bl_session_open(btrfslayer *h, btrfslayer_error **err);
void bl_session_close(btrfslayer *h);
/* Take or release byte `index` (< BL_ID_LOCKS) of the id locks in HOME/.lock,
 * waiting for another handle that holds it. */
void bl_session_lock_id(btrfslayer *h, unsigned index);
void bl_session_unlock_id(btrfslayer *h, unsigned index);
/* bl_session_lock_id() without waiting: false when another handle holds it. */
bool bl_session_trylock_id(btrfslayer *h, unsigned index);
/* The home lock (session.c's header comment says what it serializes),
 * waiting for another handle that holds it. */
void bl_session_lock_home(btrfslayer *h);
void bl_session_unlock_home(btrfslayer *h);
/* The lock of the qgroup marker list (marker.c), across processes: taken
 * with the handle's marker_lock held. */
void bl_session_lock_markers(btrfslayer *h);
void bl_session_unlock_markers(btrfslayer *h);
/* The home lock on a fresh open of dirfd's .lock, for a handle that had to
 * let go of its own: the fd that holds it, or a negative errno. */
int bl_session_lock_home_at(int dirfd);
/* Whether the file the handle locked is still HOME/.lock (through
 * h->home_fd): a failed open may have removed it since.  Under the home
 * lock. */
bool bl_session_current(const btrfslayer *h);
/* Whether dirfd has a .lock (or something in its place). */
bool bl_session_exists(int dirfd);
/* Whether no other handle holds a session slot. */
bool bl_session_alone(const btrfslayer *h);
/* Remove dirfd's .lock if it is the file the handle holds (a failed open
 * that made it).  Under the home lock, with bl_session_alone(). */
void bl_session_remove(btrfslayer *h, int dirfd);
/* A fresh reserved name of this handle: <prefix><slot>-<16 hex>. */
void bl_reserved_name(const btrfslayer *h, const char *prefix,
		      char buf[BL_RESERVED_NAME_MAX]);
/* Whether the handle that made reserved name `name` (which starts with
 * `prefix`) is gone, so that what it left may be cleaned up: its slot is
 * free or is h's own (h has made nothing yet when it sweeps).  A name
 * without a slot is only taken as gone when no other handle is open. */
bool bl_reserved_name_abandoned(const btrfslayer *h, const char *name,
				const char *prefix);
/* Whether reserved name `name` carries h's own slot. */
bool bl_reserved_name_mine(const btrfslayer *h, const char *name, const char *prefix);

/* ---- staging.c: where reserved names live ------------------------------ */

/* Open, making them when missing, subvolumes/.staging and quotas/.staging
 * (h->staging_fd, h->quota_staging_fd); the open that makes them moves the
 * reserved names an older version left in subvolumes/ and quotas/ there. */
int bl_staging_open(btrfslayer *h, btrfslayer_error **err);
void bl_staging_close(btrfslayer *h);
/* A failed open: close them, and remove them when `made`. */
void bl_staging_undo(btrfslayer *h, bool made);
/* Reserved subvolume `name` of subvolumes/ is about to be made (or a layer
 * renamed to it): its stand-in, subvolumes/.staging/<name>, an empty file
 * (-EEXIST when the name is taken).  retire: the subvolume is gone (or was
 * never made); a failure is logged and left for close. */
int bl_staging_announce(btrfslayer *h, const char *name);
void bl_staging_retire(btrfslayer *h, const char *name);
/* "<home>/<dir_name>/.staging/<name>", for messages. */
void bl_staging_path(const btrfslayer *h, const char *dir_name, const char *name, char *buf,
		     size_t len);

/* ---- sweep.c -------------------------------------------------------------- */

/* Clean up after handles that died (open calls it): finish removals, delete
 * unfinished layers and quota files of no layer, destroy qgroups left by
 * deleted subvolumes.  Logs each step and counts it in h->sweep; a failure
 * is logged and counted, never fatal. */
void bl_sweep(btrfslayer *h);
/* At close: the same for the reserved names of h's own slot only (what a
 * call that failed could not clean up). */
void bl_sweep_own(btrfslayer *h);

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
 * malformed, -ERANGE past 64 bits or at 2^64-1 (the kernel's "no limit",
 * never written as a limit); *bytes is untouched then. */
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

/* Parse a boolean option value: true/false, yes/no, 1/0, in any case.
 * -EINVAL for anything else; *out is untouched then. */
int bl_parse_bool(const char *s, bool *out);

/* ---- list.c --------------------------------------------------------------- */

btrfslayer_list *bl_list_new(void);
/* Append a copy of key and value; -ENOMEM on failure. */
int bl_list_add(btrfslayer_list *list, const char *key, const char *value);
int bl_list_addf(btrfslayer_list *list, const char *key, const char *fmt, ...) BL_PRINTF(3, 4);
void bl_list_sort_by_key(btrfslayer_list *list);
/* Append key with the value prefix + key, in one allocation (list of
 * layers: a path per id); -ENOMEM on failure. */
int bl_list_add_path(btrfslayer_list *list, const char *prefix, size_t prefix_len,
		     const char *key);

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

/* ---- homemap.c: records in home ------------------------------------------- */

/* Read record `name` of dirfd (regular file, no symlink) into buf, NUL-
 * terminated: its length, -ENOENT (no error set) when there is none, -EFBIG
 * when it does not fit.  `path` is for messages. */
int bl_record_read(int dirfd, const char *name, char *buf, size_t size, const char *path,
		   btrfslayer_error **err);
/* Write record `name` whole: "<name>.tmp", then rename; with fsync of both
 * when durable.  Under the home lock. */
int bl_record_write(int dirfd, const char *name, const char *text, bool durable,
		    const char *path, btrfslayer_error **err);
/* Remove it; a missing one is fine, a failure is logged. */
void bl_record_remove(int dirfd, const char *name, const char *path);
/* Under the home lock: check the caller's id maps against HOME/.idmap.  A
 * record and no maps: adopt the record's (h->root_uid/gid).  A record and
 * other maps: -EBUSY naming both.  No record: *lay_out says whether home is
 * to be laid out for the caller's maps and the record written
 * (bl_home_maps_write(), last): when maps are given or home_made.  Without
 * either, home is someone else's and stays as it is. */
int bl_home_maps_check(btrfslayer *h, const btrfslayer_idmap *uid_map, size_t n_uid_map,
		       const btrfslayer_idmap *gid_map, size_t n_gid_map, bool home_made,
		       bool *lay_out, btrfslayer_error **err);
int bl_home_maps_write(btrfslayer *h, const btrfslayer_idmap *uid_map, size_t n_uid_map,
		       const btrfslayer_idmap *gid_map, size_t n_gid_map, btrfslayer_error **err);
/* A failed open takes back the record it wrote (through dirfd). */
void bl_home_maps_undo(btrfslayer *h, int dirfd);

/* ---- mount.c -------------------------------------------------------------- */

/* Before the session: move h->home_fd onto a private clone of home's mount,
 * so that HOME/.lock, opened through it, never keeps a mount at home busy.
 * Without open_tree (or the privilege) h->home_fd stays as it is. */
void bl_home_private(btrfslayer *h);
/* Under the home lock: resolve home again by path, and make it a mount
 * point of its own when it is not one (bind-mount it onto itself and record
 * that in HOME/.mount).  h->home_fd ends on the topmost mount at home, and
 * h->base_fd takes the private one. */
int bl_home_mount(btrfslayer *h, btrfslayer_error **err);
/* Under the home lock, when no other handle is open: if the topmost mount
 * at home is the one HOME/.mount records, close the handle's fds on it and
 * unmount it.  A busy one stays recorded, for the next open to adopt, and is
 * no error.  Anything else at home is left alone. */
int bl_home_unmount(btrfslayer *h, btrfslayer_error **err);

/* ---- ioctl.c: the only module that speaks to btrfs ---------------------- */
/* Every function returns 0 (or what it says) or a negative errno;
 * -BTRFSLAYER_ENOTBTRFS when the fd is not on btrfs. */

/* 0 if fd is on btrfs (statfs magic), else -BTRFSLAYER_ENOTBTRFS. */
int bl_check_btrfs(int fd);
/* The filesystem's uuid (BTRFS_IOC_FS_INFO). */
int bl_ioctl_fs_uuid(int fd, uint8_t uuid[16]);
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
struct bl_subvolume_info {
	uint64_t id;
	uint8_t uuid[16];
	uint8_t parent_uuid[16];	/* of the snapshot's source; zeros if none */
	uint64_t created;	/* the transaction that made it */
	uint64_t generation;	/* the last transaction that changed it */
	int64_t otime_sec;	/* when it was made */
	uint32_t otime_nsec;
	bool read_only;
};
/* 1 if the subvolume fd is the root of holds a subvolume directly, 0 if
 * not (GET_SUBVOL_ROOTREF: no privilege needed). */
int bl_ioctl_has_nested(int fd);
/* The subvolumes of fd's filesystem whose uuid is `uuid`, from the uuid
 * tree (one lookup, whatever the number of subvolumes; CAP_SYS_ADMIN):
 * up to max ids in ids, and their count (0: none). */
int bl_ioctl_subvolumes_by_uuid(int fd, const uint8_t uuid[16], uint64_t *ids, size_t max);
/* The name (NUL-terminated, in size bytes) and directory inode under which
 * subvolume `id` sits in subvolume `parent_tree`, from its root backref
 * (CAP_SYS_ADMIN).  -ENOENT when it is not directly in parent_tree. */
int bl_ioctl_subvolume_backref(int fd, uint64_t id, uint64_t parent_tree, uint64_t *dirid,
			       char *name, size_t size);
/* The subvolume whose root is entry `name` of directory dirfd, from the
 * root tree's refs: what sits there below any mount (CAP_SYS_ADMIN;
 * -ENOENT when none). */
int bl_ioctl_child_subvolume(int dirfd, const char *name, uint64_t *id);
/* The id of the filesystem's running transaction (Linux 5.14;
 * -EOPNOTSUPP before): what a subvolume made from now on is born in, or
 * later. */
int bl_ioctl_generation(int fd, uint64_t *generation);
/* What the root tree says of the subvolume fd is the root of. */
int bl_ioctl_subvolume_info(int fd, struct bl_subvolume_info *out);
/* Put the data just written to the small file fd into the running
 * transaction: written back, with its extent items in the metadata (FIEMAP
 * with FIEMAP_FLAG_SYNC waits for the ordered extents to complete), so
 * that any later transaction commit carries it.  No device flush: that is
 * the commit's.  Falls back to fdatasync() where FIEMAP cannot. */
int bl_ioctl_settle_data(int fd);
/* Commit the running transaction of fd's filesystem and wait for it: what
 * was changed before the call survives a power cut.  File data still in
 * the page cache is written back too (syncfs). */
int bl_ioctl_commit(int fd);
/* 1 if the filesystem of fd still has subvolume `id` (a deleted one counts
 * until the kernel's cleaner has dropped it), 0 if not. */
int bl_ioctl_subvolume_exists(int fd, uint64_t id);

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
/* bl_ioctl_nested_subvolumes() reads the root tree with libbtrfsutil's
 * iterator, which needs CAP_SYS_ADMIN when geteuid() is 0; without it (root
 * in a user namespace: unshare -r) it walks with the two calls below, which
 * any user who can read the layer may make.  So do rootless callers that
 * only ask for a layer's direct children: */
struct bl_child_subvolume {
	uint64_t id;
	char *path;	/* relative to fd: "dir/name", or "name" */
};
/* The subvolumes directly below the subvolume fd is in (not nested
 * deeper), with their paths from fd (BTRFS_IOC_GET_SUBVOL_ROOTREF and
 * BTRFS_IOC_INO_LOOKUP_USER, Linux 4.18: no privilege; fd should be the
 * subvolume's root, as INO_LOOKUP_USER builds paths from it and fails with
 * -EACCES for a directory not below fd).  Free with
 * bl_child_subvolumes_free(). */
int bl_ioctl_child_subvolumes(int fd, struct bl_child_subvolume **out, size_t *n);
void bl_child_subvolumes_free(struct bl_child_subvolume *children, size_t n);

/* Write the send stream of read-only subvolume fd against read-only
 * subvolume parent_fd (-1: a full stream), without file data
 * (BTRFS_SEND_FLAG_NO_FILE_DATA), protocol `version` (0: the kernel's
 * default), into *out (malloc()ed, *len bytes).  CAP_SYS_ADMIN. */
int bl_ioctl_send(int fd, int parent_fd, uint32_t version, uint64_t max_commands,
		  uint8_t **out, size_t *len);
/* (bl_ioctl_send: past max_commands commands (0: no limit) the send is cut
 * short and -ECANCELED returned.) */
/* The highest inode number of the subvolume fd is in (tree search):
 * inode numbers are handed out in order, so it bounds the inode count.
 * CAP_SYS_ADMIN. */
int bl_ioctl_highest_inode(int fd, uint64_t *ino);
/* How many inodes of the subvolume fd is in changed after transaction
 * `since` (their inode item's transid), counting up to max only: a tree
 * search that the kernel restricts to the nodes and leaves written after
 * `since`, so its cost follows the change, not the subvolume's size.
 * CAP_SYS_ADMIN. */
int bl_ioctl_count_changed_inodes(int fd, uint64_t since, uint64_t max, uint64_t *count);
/* Every path ("a/b", relative to the subvolume fd is in) of inode `ino`
 * (BTRFS_IOC_INO_PATHS): *out holds *n malloc()ed strings, freed with
 * bl_strv_free().  CAP_SYS_ADMIN. */
int bl_ioctl_ino_paths(int fd, uint64_t ino, char ***out, size_t *n);
void bl_strv_free(char **v, size_t n);

/* Quota mode, and whether the kernel marked its numbers inconsistent (from
 * sysfs without CAP_SYS_ADMIN). */
int bl_ioctl_quota_status(int fd, enum bl_quota_mode *mode, bool *inconsistent);
/* Whether the running kernel offers simple quotas (Linux 6.7). */
bool bl_kernel_has_simple_quota(void);
/* Turn quotas on for fd's filesystem in `mode` (QGROUP or SIMPLE). */
int bl_ioctl_quota_enable(int fd, enum bl_quota_mode mode);
/* Limit the referenced bytes of the subvolume fd is in (0 clears that limit),
 * and clear every other limit of its qgroup (exclusive, reserved). */
int bl_ioctl_qgroup_limit(int fd, uint64_t max_referenced);
/* The same for qgroup `qgroupid` (any level; 0: the subvolume fd is in). */
int bl_ioctl_qgroup_limit_id(int fd, uint64_t qgroupid, uint64_t max_referenced);
int bl_ioctl_qgroup_create(int fd, uint64_t qgroupid);
int bl_ioctl_qgroup_destroy(int fd, uint64_t qgroupid);
/* Make qgroup `member` a member of `parent` (-EEXIST when it is one). */
int bl_ioctl_qgroup_assign(int fd, uint64_t member, uint64_t parent);

struct bl_qgroup {
	uint64_t referenced;
	uint64_t exclusive;
	uint64_t limit_flags;		/* BTRFS_QGROUP_LIMIT_{MAX,RSV}_{RFER,EXCL} set */
	uint64_t max_referenced;	/* 0 unless its flag is set */
	uint64_t max_exclusive;		/* likewise */
};
/* What the quota tree says of qgroup `qgroupid` (level 0: a subvolume id):
 * numbers as of the last transaction commit.  -ENOENT when there is no such
 * qgroup or quotas are off.  Without CAP_SYS_ADMIN, from sysfs. */
int bl_ioctl_qgroup_info(int fd, uint64_t qgroupid, struct bl_qgroup *out);
/* Only its referenced limit (0: none), in one search: -ENOENT when the
 * qgroup was never limited, has no qgroup, or quotas are off. */
int bl_ioctl_qgroup_max_referenced(int fd, uint64_t qgroupid, uint64_t *max_referenced);
/* Whether the qgroup's only limit is max_referenced (0: it has none at all,
 * of any kind): what bl_ioctl_qgroup_limit() leaves. */
bool bl_qgroup_limited_to(const struct bl_qgroup *qgroup, uint64_t max_referenced);

/* ---- quota.c -------------------------------------------------------------- */

const char *bl_quota_mode_name(enum bl_quota_mode mode);
/* "qgroup" or "simple"; -EINVAL for anything else. */
int bl_quota_parse_mode(const char *value, enum bl_quota_mode *mode);
/* A call that sets a limit: make sure quotas are on, turning them on in h's
 * mode (btrfs.quota_mode, else simple where the kernel has them, else
 * qgroup) when they are off; -EBUSY when they are on in another mode than
 * btrfs.quota_mode names. */
int bl_quota_ensure(btrfslayer *h, btrfslayer_error **err);
/* At open: the same when `enable` (btrfs.min_space was given); otherwise
 * (btrfs.quota_mode alone) only the check of a mode already on. */
int bl_quota_open(btrfslayer *h, bool enable, btrfslayer_error **err);
/* A size limit must be above 0 and at least btrfs.min_space (-EINVAL), and
 * below 2^64-1, which the kernel takes for "no limit" (-ERANGE).  `given` is
 * the text the caller wrote, for the message, or NULL. */
int bl_quota_check_size(const btrfslayer *h, uint64_t size, const char *given,
			btrfslayer_error **err);
/* bl_parse_size() and then bl_quota_check_size(). */
int bl_quota_parse_size(const btrfslayer *h, const char *value, uint64_t *size,
			btrfslayer_error **err);
/* Set (size > 0) or clear (0) the limit of the subvolume fd is the root of
 * (and, with simple quotas, of what it nests: nestlimit.c). */
int bl_quota_limit(int fd, uint64_t size, const char *path, btrfslayer_error **err);
/* get(): apply the limit recorded for layer `id` (open as fd) again when the
 * kernel no longer has it, in case quotas were reset.  Only when quotas are
 * on: it never turns them on.  No or a garbage record is not an error
 * (garbage is logged). */
int bl_quota_reapply(btrfslayer *h, const char *id, int fd, const char *path,
		     btrfslayer_error **err);
/* Whether the kernel's referenced limit of the subvolume fd is the root
 * of is `size` (what get() would otherwise apply again): 1 if so, 0 if not
 * (or when it cannot tell), read without a transaction. */
int bl_quota_limit_is(int fd, uint64_t size);
/* 1 when quotas are on and the subvolume fd is the root of has a limit of
 * any kind (which a snapshot of it gets from the kernel), 0 when not. */
int bl_quota_has_limit(int fd, const char *path, btrfslayer_error **err);
/* A snapshot taken with full qgroups gets its source's limit from the
 * kernel; a layer must have only the limit it was given: clear it. */
int bl_quota_drop_inherited(int fd, const char *path, btrfslayer_error **err);
/* HOME/quotas/<id>, written through an intent (intent.c): 0, -ENOENT
 * when there is none, -EINVAL (after a logged warning) when it is not a
 * regular file holding a valid size. */
int bl_quota_file_read(btrfslayer *h, const char *id, uint64_t *size);
/* A missing file is not an error. */
int bl_quota_file_remove(btrfslayer *h, const char *name, btrfslayer_error **err);
/* Subvolumes `ids` are about to be deleted: when quotas are on, write their
 * markers (marker.c) so that their qgroups get destroyed even if this
 * process dies.  1 when quotas are on (their qgroups can outlive them:
 * pass them to bl_quota_forget_subvolume() once deleted), 0 when off.  A
 * marker that finds no space is logged and skipped (deleting must work on a
 * full filesystem); another failure fails: then nothing must be deleted. */
int bl_quota_mark_doomed(btrfslayer *h, const uint64_t *ids, size_t n,
			 btrfslayer_error **err);
/* Subvolume `id` was not deleted after all: drop its marker. */
void bl_quota_unmark(btrfslayer *h, uint64_t id);
/* Subvolume `id` was deleted: destroy its qgroup once the kernel's cleaner
 * has dropped the subvolume, at a later remove, close or open.  Recent
 * kernels drop most such qgroups themselves; then this finds nothing to do.
 * Simple quotas keep the qgroup of a removed parent while a snapshot shares
 * its data: it goes when the last byte it is charged for is freed. */
void bl_quota_forget_subvolume(btrfslayer *h, uint64_t id);
/* Try again for up to `max` of the oldest waiting qgroups; returns how many
 * this call destroyed.  _due: only when a second has passed since the
 * last such try (a removal's; close tries them all, at once). */
unsigned bl_quota_retry_pending(btrfslayer *h, size_t max);
unsigned bl_quota_retry_pending_due(btrfslayer *h, size_t max);
/* Open's sweep found quotas/.staging/<name>: if it is a marker, its qgroup
 * is tried now and, while the kernel still holds it, kept waiting.  1 if
 * this destroyed the qgroup or found it gone (the marker is deleted;
 * logged), 0 if not, -EINVAL if name is not a marker's. */
int bl_quota_adopt_marker(btrfslayer *h, const char *name);
/* The same for every marker kept as an attribute of subvolumes/; how many
 * qgroups it destroyed or found gone. */
unsigned bl_quota_adopt_attribute_markers(btrfslayer *h);

/* ---- marker.c: where a qgroup to destroy is recorded ------------------- */

/* Record qgroup 0/id: in the list kept as an attribute of subvolumes/, or
 * as a file in quotas/.staging when that cannot be.  -ENOSPC or -EDQUOT when
 * there is room for neither (a removal goes on without it). */
int bl_marker_write(btrfslayer *h, uint64_t id);
/* Drop both kinds of marker of qgroup 0/id (a failure is logged). */
void bl_marker_remove(btrfslayer *h, uint64_t id);
/* The ids in the list kept as an attribute (*ids freed by the caller). */
int bl_marker_attributes(btrfslayer *h, uint64_t **ids, size_t *n);
/* The id in a marker file's name (.qgroup-<id>), or 0 when it is not one. */
uint64_t bl_marker_file_id(const char *name);
/* "<home>/quotas/.staging/.qgroup-<id>", for messages. */
void bl_marker_file_path(const btrfslayer *h, uint64_t id, char *buf, size_t len);

/* ---- nestlimit.c: limits nested subvolumes cannot escape ---------------- */

/* 1/<subvolume>: the level-1 qgroup of a limited layer, simple quotas. */
uint64_t bl_nested_qgroup(uint64_t subvolume);
/* With simple quotas, give the layer (fd, its root) the level-1 qgroup
 * 1/<its id> holding it and every subvolume nested in it, limited to `size`
 * (0: its limit cleared); nothing in another mode.  bl_quota_limit() does
 * this first, then the layer's own limit. */
int bl_nested_limit(int fd, uint64_t size, const char *path, btrfslayer_error **err);
/* Destroy 1/<subvolume> of fd's filesystem: 0 when gone or never made,
 * -EBUSY while a qgroup is still a member of it. */
int bl_nested_limit_destroy(int fd, uint64_t subvolume);
/* Deleting a nested subvolume charges its parent's qgroups, so a layer
 * whose 1/<subvolume> is at its limit cannot delete what it nests (EDQUOT):
 * a removal lifts that limit first (*was: what it was; -ENOENT when there
 * is none), and puts it back if the layer survives whole. */
int bl_nested_limit_lift(int fd, uint64_t subvolume, uint64_t *was);
void bl_nested_limit_restore(int fd, uint64_t subvolume, uint64_t limit, const char *path);

/* ---- intent.c: the journal of limit changes in flight -------------------- */

enum bl_intent_op {
	BL_INTENT_SET,		/* the record and the kernel's limit become size */
	BL_INTENT_CLEAR,	/* both go */
	BL_INTENT_REMOVE,	/* the layer goes; the intent is its buried record */
};
struct bl_intent {
	enum bl_intent_op op;
	int fd;
	char name[BL_RESERVED_NAME_MAX];
};
/* Announce `op` on layer `id` (subvolume `subvolume`), with the new limit
 * `size` for BL_INTENT_SET: quotas/<in->name>, a fresh reserved name,
 * committed with the changes it announces, never after them (intent.c).
 * `layer_path` is for messages.  Make the changes, then bl_intent_finish(),
 * or bl_intent_abort() when nothing was changed. */
int bl_intent_begin(btrfslayer *h, enum bl_intent_op op, const char *id, uint64_t subvolume,
		    uint64_t size, struct bl_intent *in, const char *layer_path,
		    btrfslayer_error **err);
/* The record's step: for SET the intent becomes quotas/<id>; otherwise
 * quotas/<id> is removed, then the intent. */
int bl_intent_finish(btrfslayer *h, const char *id, struct bl_intent *in,
		     const char *layer_path, btrfslayer_error **err);
/* Drop an intent whose call changed nothing (a no-op once finished); for
 * REMOVE, put the record back under id: false when that failed (the
 * intent then stays, in->fd open). */
bool bl_intent_abort(btrfslayer *h, struct bl_intent *in, const char *id);
/* Before removing layer `id` (subvolume `subvolume`): its record, if it
 * has one, becomes a REMOVE intent, quotas/.tomb-<slot>-<16 hex> (in->fd
 * -1 when there is no record).  Without space for that, nothing is done
 * and 0 returned: the caller removes the record after the layer. */
int bl_intent_stash_record(btrfslayer *h, const char *id, uint64_t subvolume,
			   struct bl_intent *in, const char *layer_path, btrfslayer_error **err);
/* The sweep found quotas/<name>, a dead handle's temporary: if it is an
 * intent, finish it (under the id's lock, taken without waiting): 1 when
 * done, -EBUSY when the id is locked by a live call, -ENODATA when it is
 * no intent (a plain temporary, for the caller to delete), another
 * negative errno (logged) on failure. */
int bl_intent_recover(btrfslayer *h, const char *name);

/* ---- tree.c --------------------------------------------------------------- */

/* Delete the subvolume whose root fd is open and every subvolume nested in
 * it, read-only ones included.  `path` is for messages.
 * Everything, the top included, is deleted by subvolume id from fd, so a
 * subvolume swapped in under its name meanwhile is never the one deleted.
 * On failure a read-only top stays read-only, and *spoiled (unless NULL)
 * says whether the tree was changed for good before it (a nested subvolume
 * deleted or made writable): then it cannot be given back as it was.  When
 * h is not NULL, the subvolumes are recorded before they go
 * (bl_quota_mark_doomed()) and every deleted one's qgroup goes to
 * bl_quota_forget_subvolume(). */
int bl_tree_destroy(btrfslayer *h, int fd, const char *path, bool *spoiled,
		    btrfslayer_error **err);

/* ---- sendstream.c: the btrfs send stream, parsed (no I/O) ---------------- */

/* Command and attribute numbers of the stream (the kernel's send.h). */
enum {
	BL_SEND_C_UNSPEC, BL_SEND_C_SUBVOL, BL_SEND_C_SNAPSHOT,
	BL_SEND_C_MKFILE, BL_SEND_C_MKDIR, BL_SEND_C_MKNOD, BL_SEND_C_MKFIFO,
	BL_SEND_C_MKSOCK, BL_SEND_C_SYMLINK,
	BL_SEND_C_RENAME, BL_SEND_C_LINK, BL_SEND_C_UNLINK, BL_SEND_C_RMDIR,
	BL_SEND_C_SET_XATTR, BL_SEND_C_REMOVE_XATTR,
	BL_SEND_C_WRITE, BL_SEND_C_CLONE,
	BL_SEND_C_TRUNCATE, BL_SEND_C_CHMOD, BL_SEND_C_CHOWN, BL_SEND_C_UTIMES,
	BL_SEND_C_END, BL_SEND_C_UPDATE_EXTENT,
	/* version 2 */
	BL_SEND_C_FALLOCATE, BL_SEND_C_FILEATTR, BL_SEND_C_ENCODED_WRITE,
	/* version 3 */
	BL_SEND_C_ENABLE_VERITY,
};
enum {
	BL_SEND_A_PATH = 15,
	BL_SEND_A_PATH_TO = 16,
	BL_SEND_A_PATH_LINK = 17,
	BL_SEND_A_DATA = 19,
};

/* One command, as the parser hands it out (valid during the callback). */
struct bl_send_cmd {
	unsigned cmd;		/* BL_SEND_C_*; unknown numbers are passed on */
	uint32_t version;	/* the stream's */
	char *path;		/* relative to the subvolume ("" is its root);
				 * the subvolume's name in SUBVOL, SNAPSHOT */
	char *path_to;		/* RENAME: the new path */
	char *path_link;	/* LINK: the existing path; SYMLINK: the target */
};
/* A non-zero return stops the parse, which returns it. */
typedef int (*bl_send_cmd_fn)(const struct bl_send_cmd *cmd, void *userdata);
/* Parse a whole stream (versions 1 to 3): the header, every command, END
 * last.  -EBADMSG when malformed (see sendstream.c), -EPROTONOSUPPORT for
 * another version; every command up to the bad one was handed out. */
int bl_sendstream_parse(const uint8_t *data, size_t len, bl_send_cmd_fn fn, void *userdata);
/* 0 if path is "" or relative components joined by single slashes, none
 * empty, "." or ".." or longer than NAME_MAX; else -EBADMSG. */
int bl_send_path_check(const char *path);

/* ---- changes.c: what a layer changed, as Docker's archive.ChangesDirs ---- */

/* One changed path. */
struct bl_change {
	char *path;		/* "/a/b": from the layer's root */
	int kind;		/* BTRFSLAYER_CHANGE_ADDED, _MODIFIED, _DELETED */
	uint32_t mode;		/* st_mode in the layer; 0 when deleted */
	uint32_t parent_mode;	/* st_mode in the parent; 0 when it has none */
	bool replaced;		/* in both trees, but not the same inode: deleted
				 * and made again, or another one renamed over it
				 * (a directory then holds none of the parent's
				 * entries but those reported unchanged) */
};

/* The changes of a layer against its parent, sorted by path (strcmp, so a
 * directory comes before what it holds).  The trees stay open while the
 * list lives: export reads the files from layer_fd. */
struct bl_changes {
	struct bl_change *v;
	size_t n;
	int layer_fd;		/* root of the layer as the changes describe it:
				 * a read-only snapshot taken for the call, or
				 * the layer itself (when it is read-only, or
				 * when the changes were walked: WALK, no parent,
				 * or the send did not serve) */
	int parent_fd;		/* likewise for the parent; -1 without one */
	bool by_send;		/* computed from the send stream (else walked) */
	/* temporaries to drop (reserved names in subvolumes/; "" if none) */
	char layer_tmp[BL_RESERVED_NAME_MAX];
	char parent_tmp[BL_RESERVED_NAME_MAX];
};

/* Internal flags of bl_changes_get(), above the public ones. */
#define BL_CHANGES_SEND_ONLY (UINT32_C(1) << 31)	/* fail instead of walking */

/* Compute layer id's changes against parent (NULL: everything is added),
 * per Docker's archive.ChangesDirs.  flags: BTRFSLAYER_CHANGES_*, and
 * BL_CHANGES_SEND_ONLY for the tests.  Release with bl_changes_release(),
 * which drops the temporaries. */
int bl_changes_get(btrfslayer *h, const char *id, const char *parent, uint32_t flags,
		   struct bl_changes *out, btrfslayer_error **err);
void bl_changes_release(btrfslayer *h, struct bl_changes *c);

/* ---- change_entry.c: what both ways to the changes share ---------------- */

/* What a path is in a tree, for the comparison. */
struct bl_entry {
	bool exists;
	struct stat_lite {
		uint32_t mode, uid, gid;
		uint64_t rdev, size, ino, nlink;
		int64_t mtime_sec;
		uint32_t mtime_nsec;
	} st;
	size_t cap_len;		/* security.capability; 0 when none */
	uint8_t cap[64];
};
/* A list being built; sorted and deduplicated by bl_change_list_finish(). */
struct bl_change_list {
	struct bl_change *v;
	size_t n, cap;
};
int bl_change_list_add(struct bl_change_list *l, const char *path, int kind,
		       const struct bl_entry *now, const struct bl_entry *before);
void bl_change_list_free(struct bl_change_list *l);
/* Look `path` ("/a/b") up in the tree root_fd: without following a
 * symlink, through directories only.  *e says whether it is there; a
 * negative errno for a failure other than its absence. */
int bl_entry_lookup(int root_fd, const char *path, struct bl_entry *e);
/* Fill e from an open fd or a name in dirfd. */
int bl_entry_at(int dirfd, const char *name, struct bl_entry *e);
/* Docker's statDifferent() plus security.capability. */
bool bl_entry_differs(const struct bl_entry *before, const struct bl_entry *now);

/* ---- changes_walk.c: the changes by walking both trees ------------------- */

/* Docker's comparison of the subtree at `path` ("/" or "/a/b") of the
 * layer (layer_fd) against the same path in the parent (parent_fd, or -1):
 * the path itself (unless "/"), then everything below it, appended to l. */
int bl_changes_walk(int layer_fd, int parent_fd, const char *path, struct bl_change_list *l);

/* ---- changes_send.c: the changes from the send stream -------------------- */

/* The changes of the read-only subvolume layer_fd against the read-only
 * subvolume parent_fd (its snapshot ancestor), from the send stream and a
 * look at each path it names, appended to l.  -EOPNOTSUPP when the send
 * is not possible (no CAP_SYS_ADMIN), -EBADMSG when the stream says what
 * the mapping does not understand, -E2BIG when the stream runs past `limit`
 * commands (0: no limit), where the walk is faster: the caller walks
 * instead. */
int bl_changes_send(int layer_fd, int parent_fd, uint64_t limit, struct bl_change_list *l);
/* The number of commands past which a send of the layer fd is the root
 * of (or of a snapshot of it) is cut short: beyond, the walk is faster. */
int bl_changes_send_limit(int layer_fd, uint64_t *limit);
/* The stream's replay alone (no I/O but INO_PATHS on layer_fd; -1: none):
 * the sorted paths ("/a/b") whose subtree is to be walked (*roots) and
 * those to look at (*paths), each freed with bl_strv_free().  -EBADMSG
 * for a stream that is malformed or does not replay. */
int bl_send_replay(const uint8_t *stream, size_t len, int layer_fd, char ***roots,
		   size_t *n_roots, char ***paths, size_t *n_paths);

/* ---- beneath.c: names directly below a directory fd -------------------- */

struct stat;
/* Whether an fstatat() result is a subvolume root (no fd needed). */
bool bl_stat_is_subvolume(const struct stat *st);
struct statx;
/* The same for a statx() result (with STATX_TYPE and STATX_INO). */
bool bl_statx_is_subvolume(const struct statx *stx);

/* 0 if name is one path component (not empty, ".", ".." and without '/')
 * of at most NAME_MAX bytes; -EINVAL or -ENAMETOOLONG otherwise. */
int bl_check_component(const char *name);
/* Open directory `name` of dirfd without following a symlink and without
 * crossing a mount point: an fd, or -ELOOP (a symlink), -ENOTDIR (not a
 * directory), -EXDEV (a mount point), -ENOENT, -EOPNOTSUPP (this kernel
 * cannot tell a mount point: see bl_mount_id()), ... */
int bl_open_dir_beneath(int dirfd, const char *name);
/* bl_open_dir_beneath() with the error said: "open directory: <path>: ..."
 * for a symlink, a non-directory or a mount point.  -ENOENT, with no error
 * set, when it is missing (the caller decides whether to make it). */
int bl_open_dir_checked(int dirfd, const char *name, const char *path, btrfslayer_error **err);
/* The same for a file, opened with `flags` (O_NOFOLLOW and O_CLOEXEC added),
 * whatever it is: a device or fifo is opened too.  For a file the library
 * keeps, bl_open_regular_beneath(). */
int bl_open_file_beneath(int dirfd, const char *name, int flags);
/* Likewise for a relative path of several components: it may not climb
 * out with "..", follow a symlink or cross a mount point anywhere. */
int bl_open_path_beneath(int dirfd, const char *path);
/* 1 if `name` in dirfd is a layer (a subvolume root on dirfd's own mount,
 * not a symlink), 0 if it is something else, a negative errno (-ENOENT when
 * missing) on failure. */
int bl_lookup_layer(int dirfd, const char *name);
/* bl_lookup_layer() in one statx, for the hot paths (exists, get, list):
 * dir_mount is dirfd's mount id (bl_mount_id(), read once).  1 or 0 as
 * bl_lookup_layer() (0 also for a subvolume mounted here), with what statx
 * said in *stx; -EOPNOTSUPP when statx cannot give the mount id (before
 * Linux 5.8): then ask bl_lookup_layer(). */
struct statx;
int bl_lookup_layer_on(int dirfd, uint64_t dir_mount, const char *name, struct statx *stx);
/* bl_path_leads_to() for the file statx described in *stx. */
int bl_path_leads_to_statx(const char *path, const struct statx *stx);
/* Open regular file `name` of dirfd without following a symlink, without
 * crossing a mount point and without opening anything else (a device, a
 * fifo): it is opened O_PATH and checked first, then that same inode is
 * opened with `flags` (O_CLOEXEC added).  With O_CREAT, a missing file is
 * made (O_EXCL, mode create_mode) and an existing one taken through the
 * same checks, unless flags has O_EXCL too (-EEXIST then).  An fd, or
 * -ELOOP (a symlink), -EISDIR (a directory), -EINVAL (a device, fifo or
 * socket: any other non-regular file), -EXDEV (a mount point), -ENOENT
 * (missing, without O_CREAT), -EOPNOTSUPP (no /proc to reopen through, or
 * no way to tell a mount point), ... */
int bl_open_regular_beneath(int dirfd, const char *name, int flags, mode_t create_mode);
/* Why bl_open_regular_beneath() refused a file, for a message: "is a
 * symbolic link" (-ELOOP), "is a mount point" (-EXDEV), "is a directory"
 * (-EISDIR), "is not a regular file" (-EINVAL); NULL for any other code. */
const char *bl_refusal_reason(int r);
/* The id of the mount `name` in dirfd ("": dirfd itself) is on, as in
 * /proc/self/mountinfo: from statx (Linux 5.8), else /proc/self/fdinfo
 * (3.15), else name_to_handle_at().  -EOPNOTSUPP when none of them can
 * tell (logged once), never a guess. */
int bl_mount_id(int dirfd, const char *name, uint64_t *id);
/* 0 if resolving `path` now reaches the file fd holds; -ESTALE if it reaches
 * something else or nothing (a component was moved, replaced or symlinked). */
int bl_path_leads_to(const char *path, int fd);

/* ---- walk_usage.c: the one walk of a layer's files ----------------------- */

/* Bytes allocated (st_blocks * 512) and distinct inodes of the layer whose
 * root fd is open, its root included, without following symlinks, crossing
 * mounts or entering nested subvolumes.  O(files); only for
 * BTRFSLAYER_USAGE_WALK.  `path` is for messages. */
int bl_walk_usage(int layer_fd, uint64_t *bytes, uint64_t *inodes, const char *path,
		  btrfslayer_error **err);

/* ---- tar_apply.c, tar_export.c: OCI layer tars --------------------------- */

/* The flags btrfslayer_apply() and btrfslayer_export() know: none yet. */
#define BL_APPLY_FLAGS 0u
#define BL_EXPORT_FLAGS 0u

/* Apply the tar read from tarfd (plain, gzip or zstd) to the directory
 * root, every file made beneath it (tar_apply.c says how); *unpacked: the
 * bytes of file data written.  `where` names root in messages.  Needs no
 * btrfs: the fuzzer runs it on a plain directory. */
int bl_tar_apply(int root, int tarfd, const char *where, btrfslayer_progress_fn progress,
		 void *userdata, uint64_t *unpacked, btrfslayer_error **err);

/* tar_locale.c: this thread in C.UTF-8 while libarchive runs (says why). */
struct bl_tar_locale {
	locale_t ours, old;
};
struct bl_tar_locale bl_tar_locale_enter(void);
void bl_tar_locale_leave(struct bl_tar_locale l);

/* Write the changes c describes as an OCI layer tar to fd, reading the
 * files from c->layer_fd (tar_export.c says what goes in and how). */
int bl_tar_export(const struct bl_changes *c, int fd, const char *where,
		  btrfslayer_progress_fn progress, void *userdata, btrfslayer_error **err);

#endif /* BTRFSLAYER_INTERNAL_H */
