/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Per-layer size limits and usage, on full qgroups or simple quotas.
 *
 * A layer's limit lives in two places: the kernel's qgroup limit, which is
 * what is enforced, and HOME/quotas/<id>, which is what survives a quota
 * reset and is applied again by get() (with quotas on).  Both change
 * through an intent (intent.c), which open's sweep finishes after a crash.
 * The file is read strictly (quotafile.c); a file that does not parse is
 * ignored with a warning, never turned into a limit.
 *
 * The qgroup of a deleted subvolume may outlive it: the kernel holds it
 * until its cleaner has dropped the subvolume, and simple quotas keep it for
 * as long as a snapshot shares data it is charged for.
 * A marker (marker.c) records such a qgroup before its subvolume is
 * deleted, so that whichever handle comes next destroys it, even after a
 * crash.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* Ids of deleted subvolumes whose qgroups wait for the kernel, kept in
 * memory; beyond this many the oldest wait for the next open's sweep. */
#define PENDING_QGROUPS_MAX 4096
/* How often a removal tries them again: the cleaner drops deleted
 * subvolumes on its own time (seconds to tens of seconds), so a removal
 * seldom finds one ready, and on a cold cache each try reads the root and
 * quota trees.  Close tries them all. */
#define PENDING_RETRY_INTERVAL_NS 1000000000u

static const char *const mode_names[] = {
	[BL_QUOTA_OFF] = "off",
	[BL_QUOTA_QGROUP] = "qgroup",
	[BL_QUOTA_SIMPLE] = "simple",
};

const char *bl_quota_mode_name(enum bl_quota_mode mode)
{
	return mode_names[mode];
}

int bl_quota_parse_mode(const char *value, enum bl_quota_mode *mode)
{
	if (!strcmp(value, "qgroup"))
		*mode = BL_QUOTA_QGROUP;
	else if (!strcmp(value, "simple"))
		*mode = BL_QUOTA_SIMPLE;
	else
		return -EINVAL;
	return 0;
}

/* The mode to turn on when quotas are off: the caller's, else simple quotas
 * where the kernel has them (their cost does not grow with snapshots). */
static enum bl_quota_mode mode_to_enable(const btrfslayer *h)
{
	if (h->quota_mode != BL_QUOTA_OFF)
		return h->quota_mode;
	return bl_kernel_has_simple_quota() ? BL_QUOTA_SIMPLE : BL_QUOTA_QGROUP;
}

static int enable_locked(btrfslayer *h, enum bl_quota_mode *mode,
			 btrfslayer_error **err)
{
	bool inconsistent;
	int r = bl_ioctl_quota_status(h->home_fd, mode, &inconsistent);
	if (r < 0)
		return bl_fail(err, r, "read quota status: %s", h->home);
	if (*mode != BL_QUOTA_OFF)
		return 0;

	enum bl_quota_mode want = mode_to_enable(h);
	if (want == BL_QUOTA_SIMPLE && !bl_kernel_has_simple_quota())
		return bl_fail_msg(err, -EOPNOTSUPP,
				   "enable simple quotas: %s: this kernel has no simple quotas "
				   "(Linux 6.7 or later); use btrfs.quota_mode=qgroup", h->home);
	r = bl_ioctl_quota_enable(h->home_fd, want);
	if (r == 0)
		r = bl_ioctl_quota_status(h->home_fd, mode, &inconsistent);
	if (r == 0 && *mode == BL_QUOTA_OFF)
		r = -EIO;	/* the kernel said yes and did nothing */
	if (r == -EPERM)
		return bl_fail(err, r, "enable %s quotas: %s (needs CAP_SYS_ADMIN; without it, "
			       "create layers without size= and leave quotas to the administrator)",
			       mode_names[want], h->home);
	if (r < 0)
		return bl_fail(err, r, "enable %s quotas: %s", mode_names[want], h->home);
	bl_log(BTRFSLAYER_LOG_INFO, "enabled %s quotas on the filesystem of %s",
	       mode_names[*mode], h->home);
	return 0;
}

static int ensure(btrfslayer *h, enum bl_quota_mode *mode, btrfslayer_error **err)
{
	pthread_mutex_lock(&h->quota_lock);
	int r = enable_locked(h, mode, err);
	pthread_mutex_unlock(&h->quota_lock);
	return r;
}

/* Quotas on in `mode` must be in h's (btrfs.quota_mode), when it names one:
 * switching means disabling, which drops every limit on the filesystem. */
static int check_mode(const btrfslayer *h, enum bl_quota_mode mode, btrfslayer_error **err)
{
	if (h->quota_mode == BL_QUOTA_OFF || mode == BL_QUOTA_OFF || mode == h->quota_mode)
		return 0;
	return bl_fail_msg(err, -EBUSY,
			   "btrfs.quota_mode=%s: %s: quotas are already on in %s mode; "
			   "switching would drop every limit on the filesystem, so it is "
			   "left to the administrator", mode_names[h->quota_mode], h->home,
			   mode_names[mode]);
}

int bl_quota_ensure(btrfslayer *h, btrfslayer_error **err)
{
	enum bl_quota_mode mode;
	int r = ensure(h, &mode, err);
	return r < 0 ? r : check_mode(h, mode, err);
}

int bl_quota_open(btrfslayer *h, bool enable, btrfslayer_error **err)
{
	enum bl_quota_mode mode;
	bool inconsistent;
	if (h->quota_mode == BL_QUOTA_SIMPLE && !bl_kernel_has_simple_quota())
		return bl_fail_msg(err, -EOPNOTSUPP,
				   "btrfs.quota_mode=simple: %s: this kernel has no simple quotas "
				   "(Linux 6.7 or later); use btrfs.quota_mode=qgroup", h->home);
	if (enable)
		return bl_quota_ensure(h, err);
	/* btrfs.quota_mode alone turns nothing on: the first limit does */
	int r = bl_ioctl_quota_status(h->home_fd, &mode, &inconsistent);
	if (r < 0)
		return bl_fail(err, r, "read quota status: %s", h->home);
	return check_mode(h, mode, err);
}

int bl_quota_check_size(const btrfslayer *h, uint64_t size, const char *given,
			btrfslayer_error **err)
{
	char quoted[BL_QUOTE_MAX];
	if (given)
		bl_quote(quoted, sizeof(quoted), given);
	else
		snprintf(quoted, sizeof(quoted), "%" PRIu64, size);
	if (size == 0)
		return bl_fail_msg(err, -EINVAL, "invalid size %s: a limit must be above 0", quoted);
	/* the kernel takes it for "clear the limit" (btrfs_limit_qgroup()) */
	if (size == UINT64_MAX)
		return bl_fail_msg(err, -ERANGE, "invalid size %s: 2^64-1 bytes means no limit "
				   "to the kernel; a limit must be below it", quoted);
	if (size < h->min_space)
		return bl_fail_msg(err, -EINVAL,
				   "invalid size %s: below btrfs.min_space (%" PRIu64 " bytes)",
				   quoted, h->min_space);
	return 0;
}

int bl_quota_parse_size(const btrfslayer *h, const char *value, uint64_t *size,
			btrfslayer_error **err)
{
	int r = bl_parse_size(value, size);
	if (r < 0) {
		char quoted[BL_QUOTE_MAX];
		return bl_fail(err, r, "invalid size %s", bl_quote(quoted, sizeof(quoted), value));
	}
	return bl_quota_check_size(h, *size, value, err);
}

int bl_quota_limit(int fd, uint64_t size, const char *path, btrfslayer_error **err)
{
	/* what the layer nests first, with simple quotas (nestlimit.c): a
	 * failure there leaves the layer's own limit, the one its record
	 * speaks of, as it was */
	int r = bl_nested_limit(fd, size, path, err);
	if (r < 0)
		return r;
	r = bl_ioctl_qgroup_limit(fd, size);
	if (r == -ENOENT) {
		/* a qgroup someone destroyed by hand: make it again */
		uint64_t id;
		r = bl_ioctl_subvolume_id(fd, &id);
		if (r == 0)
			r = bl_ioctl_qgroup_create(fd, id);
		if (r == 0 || r == -EEXIST)
			r = bl_ioctl_qgroup_limit(fd, size);
	}
	const char *why = r == -EPERM ? " (needs CAP_SYS_ADMIN)" : "";
	if (r < 0)
		return size ? bl_fail(err, r, "set size limit %" PRIu64 ": %s%s", size, path, why)
			    : bl_fail(err, r, "clear size limit: %s%s", path, why);
	return 0;
}

int bl_quota_has_limit(int fd, const char *path, btrfslayer_error **err)
{
	enum bl_quota_mode mode;
	bool inconsistent;
	struct bl_qgroup qgroup;
	uint64_t id;
	int r = bl_ioctl_quota_status(fd, &mode, &inconsistent);
	if (r == 0 && mode == BL_QUOTA_OFF)
		return 0;
	if (r == 0)
		r = bl_ioctl_subvolume_id(fd, &id);
	if (r == 0)
		r = bl_ioctl_qgroup_info(fd, id, &qgroup);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return bl_fail(err, r, "read size limit: %s", path);
	return !bl_qgroup_limited_to(&qgroup, 0);
}

int bl_quota_drop_inherited(int fd, const char *path, btrfslayer_error **err)
{
	/* every limit counts: the kernel copied them all, the exclusive one
	 * (btrfs qgroup limit -e) as much as the referenced one */
	int r = bl_quota_has_limit(fd, path, err);
	return r == 1 ? bl_quota_limit(fd, 0, path, err) : r;
}

/* Make the kernel's referenced limit of fd's subvolume `size` (0: none): 1
 * if it changed it (which also clears any other limit, as every limit the
 * library sets does), 0 if it was so already.  The quota tree is read
 * first, as a read is cheaper than the limit's transaction. */
static int limit_to(int fd, uint64_t size, const char *path, btrfslayer_error **err)
{
	uint64_t subvolume;
	struct bl_qgroup qgroup = { 0 };	/* no qgroup is no limit */
	int r = bl_ioctl_subvolume_id(fd, &subvolume);
	if (r == 0)
		r = bl_ioctl_qgroup_info(fd, subvolume, &qgroup);
	/* only the limit the record speaks of: a read path leaves any other
	 * limit (an administrator's exclusive one) alone */
	if ((r == 0 || r == -ENOENT) && qgroup.max_referenced == size)
		return 0;
	r = bl_quota_limit(fd, size, path, err);
	return r < 0 ? r : 1;
}

int bl_quota_limit_is(int fd, uint64_t size)
{
	uint64_t subvolume, max;
	return bl_ioctl_subvolume_id(fd, &subvolume) == 0 &&
	       bl_ioctl_qgroup_max_referenced(fd, subvolume, &max) == 0 && max == size;
}

int bl_quota_reapply(btrfslayer *h, const char *id, int fd, const char *path,
		     btrfslayer_error **err)
{
	enum bl_quota_mode mode;
	bool inconsistent;
	uint64_t size;
	if (h->read_only)
		return 0;	/* a read-only handle changes nothing */
	if (bl_quota_file_read(h, id, &size) < 0)
		return 0;	/* none, or garbage: logged, never a wrong limit */
	/* Never turns quotas on: get is a read, and turning them on is a
	 * filesystem-wide switch an administrator may have undone on purpose
	 * (simple quotas also set a feature older kernels cannot mount).  The
	 * limit comes back when quotas do. */
	int r = bl_ioctl_quota_status(fd, &mode, &inconsistent);
	if (r < 0)
		return bl_fail(err, r, "read quota status: %s", path);
	if (mode == BL_QUOTA_OFF)
		return 0;
	btrfslayer_error *limit_err = NULL;
	r = limit_to(fd, size, path, &limit_err);
	if (r == -EPERM) {
		/* a read must work without CAP_SYS_ADMIN: the limit waits for
		 * a privileged get */
		bl_log(BTRFSLAYER_LOG_WARNING, "%s", btrfslayer_error_message(limit_err));
		r = 0;
	}
	if (r < 0 && err)
		*err = limit_err;
	else
		btrfslayer_error_free(limit_err);
	return r < 0 ? r : 0;
}

/* ---- HOME/quotas/<id> ------------------------------------------------------ */

static void quota_path(const btrfslayer *h, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/" BL_QUOTAS "/%s", h->home, name);
}

int bl_quota_file_read(btrfslayer *h, const char *id, uint64_t *size)
{
	char buf[BL_QUOTA_FILE_MAX], path[PATH_MAX];
	/* the file read before, unchanged: one statx (record_cache.c) */
	int cached = bl_record_cache_lookup(&h->records, h->quotas_fd, id, size);
	if (cached != 0)
		return cached > 0 ? 0 : cached;
	/* a regular file only: a device or fifo planted here is never opened */
	int fd = bl_open_regular_beneath(h->quotas_fd, id, O_RDONLY, 0);
	if (fd == -ENOENT)
		return -ENOENT;
	quota_path(h, id, path, sizeof(path));
	if (fd < 0) {
		const char *why = bl_refusal_reason(fd);
		bl_log(BTRFSLAYER_LOG_WARNING, "ignoring quota file %s: %s%s", path,
		       why ? "it " : "", why ? why : btrfslayer_strerror(fd));
		return -EINVAL;
	}
	/* the file's times before the read: a change during it moves them
	 * past what is cached, so the next read sees a miss */
	struct stat st;
	bool stated = fstat(fd, &st) == 0;
	ssize_t n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0 || bl_quota_file_parse(buf, (size_t)n, size) < 0) {
		bl_log(BTRFSLAYER_LOG_WARNING,
		       "ignoring quota file %s: not a decimal byte count", path);
		return -EINVAL;
	}
	if (stated)
		bl_record_cache_store(&h->records, id, &st, *size);
	return 0;
}

int bl_quota_file_remove(btrfslayer *h, const char *name, btrfslayer_error **err)
{
	if (unlinkat(h->quotas_fd, name, 0) == 0 || errno == ENOENT)
		return 0;
	char path[PATH_MAX];
	quota_path(h, name, path, sizeof(path));
	return bl_fail(err, -errno, "remove quota file: %s", path);
}

/* ---- qgroups of deleted subvolumes ---------------------------------------- */

int bl_quota_mark_doomed(btrfslayer *h, const uint64_t *ids, size_t n,
			 btrfslayer_error **err)
{
	char path[PATH_MAX];
	enum bl_quota_mode mode;
	bool inconsistent;
	int r = bl_ioctl_quota_status(h->home_fd, &mode, &inconsistent);
	if (r < 0)
		return bl_fail(err, r, "read quota status: %s", h->home);
	if (mode == BL_QUOTA_OFF)
		return 0;	/* no qgroup can outlive a subvolume */
	/* With full accounting, Linux 6.11 and later destroy the level-0
	 * qgroup of a deleted subvolume themselves once the cleaner has
	 * dropped it (its numbers are zero then), also after a crash: the
	 * cleaner takes deleted subvolumes up again at mount.  Simple quotas
	 * keep one that is still charged for extents a snapshot shares, and
	 * never the level-1 qgroup of a limit (nestlimit.c): those stay ours
	 * to follow up. */
	if (mode == BL_QUOTA_QGROUP && bl_kernel_at_least(6, 11))
		return 0;
	for (size_t i = 0; i < n; i++) {
		r = bl_marker_write(h, ids[i]);
		if (r == -ENOSPC || r == -EDQUOT) {
			/* a deletion frees space and must work on a full
			 * filesystem: the qgroup waits in this handle only */
			bl_log(BTRFSLAYER_LOG_WARNING, "record qgroup 0/%" PRIu64 " to destroy in "
			       "%s/" BL_SUBVOLUMES ": %s; destroyed by this handle only", ids[i],
			       h->home, strerror(-r));
			continue;
		}
		if (r < 0) {
			bl_marker_file_path(h, ids[i], path, sizeof(path));
			if (bl_refusal_reason(r))
				return bl_fail_msg(err, r, "record qgroup to destroy: %s: %s, "
						   "refusing to use it", path, bl_refusal_reason(r));
			return bl_fail(err, r, "record qgroup to destroy: %s", path);
		}
	}
	/* No fsync: the markers and the deletions that follow are changes to
	 * one btrfs, which commits its transactions in order, so no crash can
	 * keep a deletion and lose the marker written before it. */
	return 1;
}

void bl_quota_unmark(btrfslayer *h, uint64_t id)
{
	bl_marker_remove(h, id);
}

/* One waiting qgroup: 1 when destroyed, 0 when it is gone otherwise, -EBUSY
 * while it must wait, another negative errno when trying is pointless. */
static int try_destroy(btrfslayer *h, uint64_t id)
{
	/* never the qgroup of a live subvolume: older kernels would destroy
	 * it; and a deleted one's waits for the cleaner anyway */
	int r = bl_ioctl_subvolume_exists(h->home_fd, id);
	if (r == 1)
		return -EBUSY;
	if (r == 0)
		r = bl_ioctl_qgroup_destroy(h->home_fd, id);
	/* ENOENT: the kernel dropped it; ENOTCONN: quotas are off */
	if (r == 0 || r == -ENOENT || r == -ENOTCONN) {
		/* then the level-1 qgroup of a limit with simple quotas
		 * (nestlimit.c), once no nested subvolume's is left in it */
		int l1 = bl_nested_limit_destroy(h->home_fd, id);
		if (l1 < 0 && l1 != -EBUSY)
			bl_log(BTRFSLAYER_LOG_WARNING, "destroy qgroup 1/%" PRIu64 " of %s: %s",
			       id, h->home, btrfslayer_strerror(l1));
		if (l1 < 0)
			return l1;
		bl_quota_unmark(h, id);
		return r == 0;
	}
	/* EBUSY: simple quotas still charge it for data a snapshot shares */
	if (r != -EBUSY)
		bl_log(BTRFSLAYER_LOG_WARNING, "destroy qgroup 0/%" PRIu64 " of %s: %s",
		       id, h->home, btrfslayer_strerror(r));
	return r;
}

/* Try up to `max` of the waiting qgroups, oldest first; those that must
 * wait more go to the back, so that every one gets its turn.  Called with
 * quota_lock. */
static unsigned retry_pending_locked(btrfslayer *h, size_t max)
{
	size_t n = h->n_pending_qgroups < max ? h->n_pending_qgroups : max;
	uint64_t *busy = calloc(n ? n : 1, sizeof(*busy));
	size_t n_busy = 0;
	unsigned destroyed = 0;
	if (!busy)
		return 0;
	for (size_t i = 0; i < n; i++) {
		int r = try_destroy(h, h->pending_qgroups[i]);
		if (r == -EBUSY)
			busy[n_busy++] = h->pending_qgroups[i];
		else if (r == 1)
			destroyed++;
	}
	size_t rest = h->n_pending_qgroups - n;
	memmove(h->pending_qgroups, h->pending_qgroups + n, rest * sizeof(*busy));
	memcpy(h->pending_qgroups + rest, busy, n_busy * sizeof(*busy));
	h->n_pending_qgroups = rest + n_busy;
	free(busy);
	return destroyed;
}

/* Called with quota_lock.  Past PENDING_QGROUPS_MAX the oldest is dropped
 * from memory; its marker stays for the next open. */
static void add_pending_locked(btrfslayer *h, uint64_t id)
{
	for (size_t i = 0; i < h->n_pending_qgroups; i++)
		if (h->pending_qgroups[i] == id)
			return;
	if (!h->pending_qgroups)
		h->pending_qgroups = calloc(PENDING_QGROUPS_MAX, sizeof(*h->pending_qgroups));
	if (!h->pending_qgroups)
		return;
	if (h->n_pending_qgroups == PENDING_QGROUPS_MAX) {
		memmove(h->pending_qgroups, h->pending_qgroups + 1,
			(PENDING_QGROUPS_MAX - 1) * sizeof(*h->pending_qgroups));
		h->n_pending_qgroups--;
	}
	h->pending_qgroups[h->n_pending_qgroups++] = id;
}

void bl_quota_forget_subvolume(btrfslayer *h, uint64_t id)
{
	/* not tried now: the kernel holds the qgroup until its cleaner has
	 * dropped the subvolume, which takes a transaction or more */
	pthread_mutex_lock(&h->quota_lock);
	add_pending_locked(h, id);
	pthread_mutex_unlock(&h->quota_lock);
}

unsigned bl_quota_retry_pending(btrfslayer *h, size_t max)
{
	unsigned destroyed = 0;
	pthread_mutex_lock(&h->quota_lock);
	if (h->n_pending_qgroups)
		destroyed = retry_pending_locked(h, max);
	pthread_mutex_unlock(&h->quota_lock);
	return destroyed;
}

unsigned bl_quota_retry_pending_due(btrfslayer *h, size_t max)
{
	struct timespec now;
	unsigned destroyed = 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	uint64_t ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
	pthread_mutex_lock(&h->quota_lock);
	if (h->n_pending_qgroups && ns - h->pending_tried_ns >= PENDING_RETRY_INTERVAL_NS) {
		h->pending_tried_ns = ns;
		destroyed = retry_pending_locked(h, max);
	}
	pthread_mutex_unlock(&h->quota_lock);
	return destroyed;
}

/* A marker found at open: its qgroup destroyed now, or kept waiting. */
static int adopt(btrfslayer *h, uint64_t id)
{
	pthread_mutex_lock(&h->quota_lock);
	int r = try_destroy(h, id);
	if (r == -EBUSY)
		add_pending_locked(h, id);	/* only those that must wait */
	pthread_mutex_unlock(&h->quota_lock);
	if (r == 1)
		bl_log(BTRFSLAYER_LOG_INFO, "recovery: destroyed qgroup 0/%" PRIu64 " of a deleted "
		       "subvolume in %s", id, h->home);
	else if (r == 0)
		bl_log(BTRFSLAYER_LOG_INFO, "recovery: dropped the marker of qgroup 0/%" PRIu64
		       " in %s: the kernel already destroyed it", id, h->home);
	return r >= 0;
}

int bl_quota_adopt_marker(btrfslayer *h, const char *name)
{
	uint64_t id = bl_marker_file_id(name);
	return id ? adopt(h, id) : -EINVAL;
}

unsigned bl_quota_adopt_attribute_markers(btrfslayer *h)
{
	uint64_t *ids;
	size_t n;
	unsigned adopted = 0;
	int r = bl_marker_attributes(h, &ids, &n);
	if (r < 0) {
		bl_log(BTRFSLAYER_LOG_WARNING, "recovery: list the qgroup markers of %s/"
		       BL_SUBVOLUMES ": %s", h->home, strerror(-r));
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		adopted += adopt(h, ids[i]) == 1;
	free(ids);
	return adopted;
}
