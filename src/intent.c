/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Intents: the journal of limit changes and removals in flight.
 *
 * A layer's limit lives in the kernel (the qgroup limit) and in its record,
 * HOME/quotas/<id>.  No single step changes both, so every call that changes
 * them first writes an intent: a file in quotas/.staging (staging.c) whose
 * extended attribute user.btrfslayer.intent says "set <subvolume> <id>",
 * "clear <subvolume> <id>" or "remove <subvolume> <id>"; the subvolume id
 * tells the layer it was meant for from a later layer of the same id.
 * - set (set_quota, create with size=): .tmp-<slot>-<hex> holds the new
 *   record, and becomes quotas/<id> by a rename, its last step;
 * - clear (clear_quota): .tmp-<slot>-<hex>, unlinked after the record;
 * - remove: the record itself, renamed to .tomb-<slot>-<hex> before the
 *   layer goes, and unlinked after it.
 *
 * Invariant: while a layer's kernel limit and record may disagree, or its
 * record may outlive it, an intent naming the layer exists, and it is on
 * disk before any of the changes it announces.  No fsync is needed for
 * that: the intent is metadata (an inode, its name, its attribute) and so
 * are the changes it announces (the quota tree, which only a transaction
 * commit writes, and names in home); btrfs commits its transactions whole
 * and in order, so no crash keeps a change and loses the intent made
 * before it, and the call's final commit (bl_commit()) makes both durable.
 * A SET intent's data, the new record, is put into the running
 * transaction before anything else happens (bl_ioctl_settle_data()): a
 * commit writes metadata, not data still in the page cache, and a record
 * renamed into place without its decimal would be garbage.
 * So a crash or a power cut leaves either nothing to do or an intent of a
 * dead handle's slot, and open's sweep finishes that intent: only what the
 * library was changing when it died is touched, never a limit an
 * administrator set by hand, and the sweep costs what was in flight, not
 * what is stored.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "internal.h"

#define INTENT_XATTR "user.btrfslayer.intent"
/* "clear ", a subvolume id, a space and a layer id */
#define INTENT_MAX (6 + 20 + 1 + BTRFSLAYER_ID_MAX + 1)

static void quotas_path(const btrfslayer *h, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/" BL_QUOTAS "/%s", h->home, name);
}

static const char *const op_names[] = {
	[BL_INTENT_SET] = "set",
	[BL_INTENT_CLEAR] = "clear",
	[BL_INTENT_REMOVE] = "remove",
};

int bl_intent_begin(btrfslayer *h, enum bl_intent_op op, const char *id, uint64_t subvolume,
		    uint64_t size, struct bl_intent *in, const char *layer_path,
		    btrfslayer_error **err)
{
	char intent[INTENT_MAX];
	int r = 0;

	in->op = op;
	in->fd = -1;
	for (int attempt = 0; in->fd < 0 && attempt < BL_RESERVED_NAME_ATTEMPTS; attempt++) {
		bl_reserved_name(h, BL_TMP_PREFIX, in->name);
		/* O_EXCL: a fresh file, never one planted under this name */
		in->fd = openat(h->quota_staging_fd, in->name,
				O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (in->fd < 0 && errno != EEXIST)
			break;
	}
	if (in->fd < 0)
		return bl_fail(err, -errno, "record size limit of layer %s", layer_path);
	int len = snprintf(intent, sizeof(intent), "%s %" PRIu64 " %s", op_names[op],
			   subvolume, id);
	if (op == BL_INTENT_SET) {
		char content[BL_QUOTA_FILE_MAX];
		size_t n = (size_t)bl_quota_file_format(size, content);
		ssize_t w = write(in->fd, content, n);
		if (w != (ssize_t)n)
			r = w < 0 ? -errno : -EIO;
	}
	/* the record's decimal in the running transaction, or earlier */
	if (r == 0 && op == BL_INTENT_SET)
		r = bl_ioctl_settle_data(in->fd);
	/* on disk no later than anything it announces, with no fsync: see
	 * the invariant above */
	if (r == 0 && fsetxattr(in->fd, INTENT_XATTR, intent, (size_t)len, XATTR_CREATE) < 0)
		r = -errno;
	if (r < 0) {
		/* the file is the library's business: the message names the layer */
		bl_intent_abort(h, in, id);
		return bl_fail(err, r, "record size limit of layer %s", layer_path);
	}
	return 0;
}

int bl_intent_stash_record(btrfslayer *h, const char *id, uint64_t subvolume,
			   struct bl_intent *in, const char *layer_path, btrfslayer_error **err)
{
	char intent[INTENT_MAX], path[PATH_MAX];
	in->op = BL_INTENT_REMOVE;
	in->fd = bl_open_regular_beneath(h->quotas_fd, id, O_RDONLY, 0);
	/* none, or something planted that no call reads as a record: it is
	 * removed after the layer, as a record with no space to bury is */
	if (in->fd == -ENOENT || bl_refusal_reason(in->fd)) {
		in->fd = -1;
		return 0;
	}
	quotas_path(h, id, path, sizeof(path));
	if (in->fd < 0)
		return bl_fail(err, in->fd, "remove layer %s: open its quota file %s", layer_path,
			       path);
	int len = snprintf(intent, sizeof(intent), "%s %" PRIu64 " %s",
			   op_names[BL_INTENT_REMOVE], subvolume, id);
	int r = 0;
	/* committed no later than the rename that makes it count (the
	 * invariant above); the record's data is an earlier call's, settled */
	if (fsetxattr(in->fd, INTENT_XATTR, intent, (size_t)len, 0) < 0)
		r = -errno;
	for (int attempt = 0; r == 0 && attempt < BL_RESERVED_NAME_ATTEMPTS; attempt++) {
		bl_reserved_name(h, BL_TOMB_PREFIX, in->name);
		if (renameat2(h->quotas_fd, id, h->quota_staging_fd, in->name, RENAME_NOREPLACE) == 0)
			return 0;
		if (errno != EEXIST)
			r = -errno;
	}
	if (r == 0)
		r = -EAGAIN;
	fremovexattr(in->fd, INTENT_XATTR);
	close(in->fd);
	in->fd = -1;
	/* no space for it: the record goes after the layer, unannounced */
	if (r == -ENOSPC || r == -EDQUOT)
		return 0;
	return bl_fail(err, r, "remove layer %s: bury its quota file %s", layer_path, path);
}

/* The intent's last step: it goes.  An unlink that fails leaves it
 * without its attribute, a plain temporary that announces nothing. */
static void drop(btrfslayer *h, struct bl_intent *in, bool neutralize_first)
{
	if (neutralize_first)
		fremovexattr(in->fd, INTENT_XATTR);
	if (unlinkat(h->quota_staging_fd, in->name, 0) < 0 && errno != ENOENT) {
		int e = errno;
		if (!neutralize_first)
			fremovexattr(in->fd, INTENT_XATTR);
		bl_log(BTRFSLAYER_LOG_WARNING, "remove %s/" BL_QUOTAS "/" BL_STAGING "/%s: %s; it "
		       "goes at close or at the next open", h->home, in->name, strerror(e));
		bl_note_leftover(h);
	}
	close(in->fd);
	in->fd = -1;
}

int bl_intent_finish(btrfslayer *h, const char *id, struct bl_intent *in,
		     const char *layer_path, btrfslayer_error **err)
{
	if (in->op == BL_INTENT_SET) {
		/* the intent becomes the record: one atomic step */
		if (renameat(h->quota_staging_fd, in->name, h->quotas_fd, id) < 0)
			return bl_fail(err, -errno, "record size limit of layer %s: rename "
				       "%s/" BL_QUOTAS "/" BL_STAGING "/%s to ../%s", layer_path, h->home,
				       in->name, id);
		close(in->fd);
		in->fd = -1;
		return 0;
	}
	/* a buried record (REMOVE) is the intent itself */
	if (in->op == BL_INTENT_CLEAR && unlinkat(h->quotas_fd, id, 0) < 0 && errno != ENOENT)
		return bl_fail(err, -errno, "remove the size limit record of layer %s: "
			       "%s/" BL_QUOTAS "/%s", layer_path, h->home, id);
	drop(h, in, false);
	return 0;
}

bool bl_intent_abort(btrfslayer *h, struct bl_intent *in, const char *id)
{
	if (in->fd < 0)
		return true;
	if (in->op != BL_INTENT_REMOVE) {
		drop(h, in, true);
		return true;
	}
	/* the layer stays: so does its record, back under its id */
	if (renameat2(h->quota_staging_fd, in->name, h->quotas_fd, id, RENAME_NOREPLACE) < 0) {
		bl_log(BTRFSLAYER_LOG_ERR, "remove layer %s: its quota file could not be put back "
		       "from %s/" BL_QUOTAS "/" BL_STAGING "/%s: %s", id, h->home, in->name,
		       strerror(errno));
		return false;	/* the intent stays, and in->fd open */
	}
	fremovexattr(in->fd, INTENT_XATTR);
	close(in->fd);
	in->fd = -1;
	return true;
}

/* What the intent file fd holds announces: its bl_intent_op, with the
 * layer in id and *subvolume, and the new size in *size (0 when its content
 * does not parse: it died before its data settled); -ENODATA when it is a plain
 * temporary file. */
static int read_intent(int fd, char id[BTRFSLAYER_ID_MAX + 1], uint64_t *subvolume,
		       uint64_t *size)
{
	char intent[INTENT_MAX + 1], content[BL_QUOTA_FILE_MAX];
	ssize_t n = fgetxattr(fd, INTENT_XATTR, intent, INTENT_MAX);
	if (n < 0)
		return errno == ENODATA ? -ENODATA : -EINVAL;
	ssize_t c = read(fd, content, sizeof(content));
	int r = 0;
	intent[n] = '\0';
	const char *rest = NULL;
	for (int op = 0; op <= BL_INTENT_REMOVE && !rest; op++) {
		size_t len = strlen(op_names[op]);
		if (!strncmp(intent, op_names[op], len) && intent[len] == ' ')
			r = op, rest = intent + len + 1;
	}
	if (!rest)
		return -EINVAL;
	char *end;
	if (*rest < '1' || *rest > '9')
		return -EINVAL;
	errno = 0;
	*subvolume = strtoull(rest, &end, 10);
	if (errno || *end != ' ')
		return -EINVAL;
	rest = end + 1;
	if (bl_id_check(rest, "layer id", NULL) < 0)
		return -EINVAL;
	strcpy(id, rest);
	*size = 0;
	if (r == BL_INTENT_SET && (c < 0 || bl_quota_file_parse(content, (size_t)c, size) < 0))
		*size = 0;
	return r;
}

/* Finish what a dead call announced, on layer id if it is still the
 * subvolume the intent names: a limit set (or, when the intent's content
 * never reached the disk, put back to the record) or cleared; for a
 * removal, the record of a layer that is gone.  Called with the id's lock. */
static int roll_forward(btrfslayer *h, struct bl_intent *in, const char *id,
			uint64_t subvolume, uint64_t size, btrfslayer_error **err)
{
	char path[PATH_MAX];
	enum bl_quota_mode mode;
	bool inconsistent;
	uint64_t found = 0;
	bl_layer_path(h, id, path, sizeof(path));
	int fd = bl_open_layer(h, id, "recovery: size limit of layer", NULL);
	if (fd >= 0 && bl_ioctl_subvolume_id(fd, &found) == 0 && found != subvolume) {
		/* a later layer of that id: the intent is not about it */
		close(fd);
		fd = -ENOENT;
		if (in->op == BL_INTENT_REMOVE) {
			drop(h, in, false);	/* the old layer is gone with its record */
			return 0;
		}
	}
	if (fd < 0 && fd != -ENOENT)
		return fd;
	if (in->op == BL_INTENT_REMOVE) {
		if (fd >= 0) {
			close(fd);
			if (!bl_intent_abort(h, in, id))	/* it never went: record back */
				return -EIO;
		} else {
			drop(h, in, false);	/* it went: so does its record */
		}
		return 0;
	}
	if (fd < 0) {
		/* a create that died before publishing, or a layer removed
		 * since: no limit to finish */
		drop(h, in, false);
		return 0;
	}
	uint64_t limit = size;
	if (in->op == BL_INTENT_SET && !size && bl_quota_file_read(h, id, &limit) < 0)
		limit = 0;	/* back to the record, which says none */
	int r = bl_ioctl_quota_status(fd, &mode, &inconsistent);
	/* quotas turned off meanwhile: only the record is ours to finish */
	if (r == 0 && mode != BL_QUOTA_OFF)
		r = bl_quota_limit(fd, limit, path, err);
	close(fd);
	if (r < 0)
		return r;
	if (in->op == BL_INTENT_SET && !size) {
		drop(h, in, false);
		return 0;
	}
	return bl_intent_finish(h, id, in, path, err);
}

int bl_intent_recover(btrfslayer *h, const char *name)
{
	char id[BTRFSLAYER_ID_MAX + 1], path[PATH_MAX];
	uint64_t subvolume, size;
	struct bl_intent in;
	snprintf(in.name, sizeof(in.name), "%s", name);
	in.fd = bl_open_regular_beneath(h->quota_staging_fd, name, O_RDONLY, 0);
	if (in.fd == -ENOENT)
		return 0;	/* another sweep took it */
	if (in.fd < 0)
		return bl_refusal_reason(in.fd) ? -ENODATA : in.fd;	/* not ours: deleted */
	int op = read_intent(in.fd, id, &subvolume, &size);
	if (op < 0) {
		close(in.fd);
		return -ENODATA;	/* a plain temporary: the caller deletes it */
	}
	in.op = (enum bl_intent_op)op;
	if (!bl_id_trylock(h, id)) {
		close(in.fd);
		return -EBUSY;	/* a live call on that id: never wait for it */
	}
	btrfslayer_error *err = NULL;
	int r = roll_forward(h, &in, id, subvolume, size, &err);
	bl_id_unlock(h, id);
	if (in.fd >= 0)
		close(in.fd);
	bl_layer_path(h, id, path, sizeof(path));
	if (r < 0)
		bl_log(BTRFSLAYER_LOG_WARNING, "recovery: size limit of %s: %s", path,
		       err ? btrfslayer_error_message(err) : btrfslayer_strerror(r));
	else
		bl_log(BTRFSLAYER_LOG_INFO, "recovery: finished an interrupted %s of the size "
		       "limit of %s", op_names[op], path);
	btrfslayer_error_free(err);
	return r < 0 ? r : 1;
}
